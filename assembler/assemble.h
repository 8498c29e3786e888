/* The intermediate root filesystem of a manifest, streamed as one PAX tar
 * laid out exactly as LinuxKit lays it out (../shared/reference/linuxkit.md
 * §2.1, §2.2):
 *
 *   boot/kernel, boot/cmdline, boot/ucode.cpio      from the kernel image
 *   <kernel.tar contents>                            unpacked into /
 *   <init images>                                    merged at /, in order
 *   containers/volumes/<name>/{lower/,tmp/,merged/}
 *   containers/onboot/NNN-<name>/{config.json,runtime.json,rootfs/|lower/+tmp/+rootfs/}
 *   containers/onshutdown/NNN-<name>/…
 *   containers/services/<name>/…
 *   <files entries>
 *
 * Every entry carries the PAX records LINUXKIT.source (the image reference,
 * "linuxkit.files" or "linuxkit.volumes") and LINUXKIT.location ("kernel",
 * "init[0]", "onboot[1]", "services[2]", "volume[0]", "files[3]").
 *
 * Within an image, entries come in flattening order (flatten.h: top layer
 * first, then layer order), followed by LinuxKit's generated entries in
 * sorted order.  Entries kiln invents get mtime EPOCH.  LinuxKit's filters
 * apply to every image: `.dockerenv`, `Dockerfile`, `dev/console`,
 * `dev/pts`, `dev/shm`, `etc/hostname` are dropped; `etc/hosts` and
 * `etc/resolv.conf` are replaced (resolv.conf is a symlink to
 * /run/resolvconf/resolv.conf for init images and volumes); `dev/`,
 * `dev/pts/`, `dev/shm/`, `etc/`, `proc/`, `sys/` and `etc/mtab ->
 * /proc/mounts` are created when missing.  A container image used by
 * several containers is extracted once; the others reference it from
 * runtime.json (lowerdir or bind source).
 *
 * Not done (documented differences): init images' apk databases are not
 * merged into lib/apk/db/installed.  (The SBOM is a section sbom.h appends.)
 * Volumes with `format: oci` hold
 * the platform of the image that is in the store (not every platform). */
#ifndef KILN_ASSEMBLE_H
#define KILN_ASSEMBLE_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "image.h"
#include "manifest.h"
#include "store.h"

/* LinuxKit's fixed time for generated entries: 2017-04-18T16:30:00Z.  kiln
 * uses $SOURCE_DATE_EPOCH when set, else this. */
#define ASSEMBLE_DEFAULT_EPOCH 1492533000

/* Loads the image REF (as written in the manifest) for the build: resolves
 * it (store, then registry) and returns it loaded from the store.  Caller
 * frees with image_free(). */
typedef struct image *(*assemble_load_fn)(void *ctx, const char *ref, struct kiln_error **err);

struct assemble_options {
	const struct manifest *m;
	struct store *store;
	assemble_load_fn load;
	void *load_ctx;
	int64_t epoch;
	bool decompress_kernel;
};

/* SOURCE_DATE_EPOCH if set and valid, else ASSEMBLE_DEFAULT_EPOCH. */
int64_t assemble_epoch(void);

/* Writes the whole intermediate tar to FD (borrowed). */
int assemble_tar(const struct assemble_options *o, int fd, struct kiln_error **err);

/* ---- Sections and the rebuild cache ----
 *
 * The tar is made of sections, in order: kernel, init[i], volume[i],
 * onboot[i], onshutdown[i], services[i], files.  Each section's bytes depend
 * only on its inputs and on the sections before it, so each gets a key:
 * sha256(previous key, kiln's section format version, epoch, the section's
 * inputs: image manifest digest, kernel fields, the generated config.json
 * and runtime.json, …).  With a cache directory, sections that carry an
 * image are kept there as CACHE/<key>.tar (entries, no end blocks) with
 * CACHE/<key>.tree (the paths they add), and a later build whose section
 * has the same key reuses them without reading a layer.  The initrd writer
 * keeps its compressed members per section key too (outputs.h), so a
 * rebuild after a `files` change costs the files section only. */
struct assemble_section {
	char key[2 * 32 + 1]; /* hex sha256 */
	char *tar_path;	      /* the section's entries (no end blocks) */
	bool cacheable;	      /* kept in the cache directory */
	bool reused;	      /* taken from the cache by this build */
};

struct assemble_result {
	size_t n;
	struct assemble_section *v;
};

/* Writes every section as its own file: into CACHE_DIR when the section is
 * cacheable and CACHE_DIR is not NULL, else into WORK_DIR.  Fills RES
 * (release with assemble_result_release). */
int assemble_sections(const struct assemble_options *o, const char *work_dir, const char *cache_dir,
		      struct assemble_result *res, struct kiln_error **err);
/* The intermediate tar: every section's entries, then the end blocks. */
int assemble_concat(const struct assemble_result *res, int fd, struct kiln_error **err);
void assemble_result_release(struct assemble_result *res);
/* Removes cache files older than MAX_AGE seconds that RES does not use. */
void assemble_cache_prune(const char *cache_dir, const struct assemble_result *res,
			  int64_t max_age);

/* The bundle directory of a container, e.g. "containers/onboot/000-dhcpcd"
 * (SECTION is "onboot", "onshutdown" or "services").  Caller frees. */
char *assemble_bundle_dir(const char *section, size_t index, const char *name);

/* Finds a container by name in onboot, onshutdown, services (first match);
 * SECTION_OUT and INDEX_OUT (may be NULL) tell where. */
const struct manifest_image *assemble_find_container(const struct manifest *m, const char *name,
						     const char **section_out, size_t *index_out);

#endif
