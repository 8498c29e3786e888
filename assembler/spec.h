/* OCI runtime spec (config.json) and LinuxKit runtime.json generation for a
 * container, with LinuxKit's semantics (ConfigToOCI and ImageBundle; see
 * ../shared/reference/linuxkit.md §1.3-1.5, §2.2, §2.3):
 *
 *   merged = image_config_merge(YAML entry, org.mobyproject.config label)
 *   args/env/cwd fall back to the image config (Entrypoint+Cmd, Env,
 *   WorkingDir, then "/"); default mounts /proc /dev /dev/pts /sys
 *   /sys/fs/cgroup, then tmpfs, binds, mounts overwrite by destination, the
 *   list sorted by destination; no default capabilities ("all" = every
 *   capability the kernel knows); bounding = permitted = inheritable =
 *   sorted(caps ∪ ambient); pid namespace new by default, net/ipc/uts/user
 *   host by default, mount namespace always; no seccomp, no default masked
 *   paths.
 *
 * Output: jansson, 4-space indent, keys in the order of the Go structs of
 * runtime-spec (the order LinuxKit's json.MarshalIndent writes), map keys
 * (annotations, sysctl) sorted as Go sorts them, fields Go omits when empty
 * omitted, no trailing newline.  Deterministic by construction. */
#ifndef KILN_SPEC_H
#define KILN_SPEC_H

#include <jansson.h>

#include "error.h"
#include "manifest.h"

/* The runtime-spec version written as ociVersion. */
#define SPEC_OCI_VERSION "1.1.0"

struct spec_input {
	const struct manifest *m;	    /* for uid/gid names and volumes; may be NULL */
	const struct manifest_image *entry; /* the YAML entry (name, image, config) */
	json_t *image_config;		    /* the image's config JSON (borrowed), may be NULL */
	/* The bundle directory inside the root filesystem, without leading
	 * '/', e.g. "containers/onboot/000-sysctl".  NULL: runtime.json gets
	 * no rootfs mounts (inspect-spec of config.json alone). */
	const char *bundle;
	/* Where this container's image was extracted when an earlier container
	 * of the same image did it ("containers/services/a/lower"); NULL when
	 * this bundle holds its own extraction. */
	const char *shared_root;
};

/* The merged image config (YAML over label) of IN.  Caller frees with
 * image_config_free(). */
struct image_config *spec_merged_config(const struct spec_input *in, struct kiln_error **err);

/* config.json and runtime.json of IN as text (heap, caller frees). Either
 * out pointer may be NULL. */
int spec_generate(const struct spec_input *in, char **config_json, char **runtime_json,
		  struct kiln_error **err);

/* true when the merged config says readonly (decides the bundle layout). */
int spec_is_readonly(const struct spec_input *in, bool *readonly, struct kiln_error **err);

#endif
