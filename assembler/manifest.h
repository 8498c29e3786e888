/* The LinuxKit YAML manifest: parsing (libyaml event API), validation with
 * FILE:LINE:COL errors, @pkg: templates, multi-file merge, the
 * org.mobyproject.config label and its merge, the uid/gid name map, and the
 * YAML/JSON dump.  The schema is LinuxKit's (src/cmd/linuxkit/moby/schema.go);
 * see ../shared/reference/linuxkit.md §1.
 *
 * Conventions used by every struct below:
 * - `char *` fields: NULL = unset, "" = set to the empty string.
 * - `struct manifest_strlist` / `_strmap` / other lists carry `set`: false =
 *   the key was absent; true with n == 0 = the key was given as `[]` / `{}`.
 *   This distinction drives the label merge (YAML `[]` removes a label value).
 * - `struct manifest_opt_bool` / `manifest_opt_int`: `set` false = absent.
 * - All strings and arrays are heap memory owned by the enclosing struct and
 *   freed by manifest_free() / image_config_free().
 * - Field names follow the YAML keys in snake_case (capabilities.add →
 *   capabilities_add, maskedPaths → masked_paths, bindNS → bind_ns). */
#ifndef KILN_MANIFEST_H
#define KILN_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

/* Inputs larger than this are refused before parsing (also for labels). */
#define MANIFEST_MAX_SIZE (16u * 1024 * 1024)
/* Nesting deeper than this (sequences + mappings) is refused. */
#define MANIFEST_MAX_DEPTH 64
/* A document whose nodes, counting every alias expansion, exceed this is
 * refused (billion laughs). */
#define MANIFEST_MAX_NODES 1000000
/* ... or whose scalars, counting every alias expansion, exceed this many
 * bytes (one 8 MiB string aliased a million times). */
#define MANIFEST_MAX_EXPANDED_BYTES (64u * 1024 * 1024)

/* 1-based line and column of a YAML node in its file; 0 = unknown
 * (e.g. an entry built by code, or from a label). */
struct manifest_pos {
	unsigned line, col;
};

struct manifest_strlist {
	bool set;
	size_t n;
	char **v;
};

/* A string → string map in document order (keys unique). */
struct manifest_strmap {
	bool set;
	size_t n;
	char **keys;
	char **values;
};

struct manifest_opt_bool {
	bool set;
	bool value;
};

struct manifest_opt_int {
	bool set;
	int64_t value;
};

/* uid / gid / an additionalGids entry: an integer, or a string naming
 * another container ("redis"), or "root" / "" meaning 0.  Resolve with
 * manifest_id_resolve(). */
struct manifest_id {
	bool set;
	char *name;      /* the string form as written; NULL when given as an integer */
	uint32_t number; /* the integer form; 0 when NAME is set */
	struct manifest_pos pos; /* of the YAML value; 0:0 when not from a file */
};

struct manifest_id_list {
	bool set;
	size_t n;
	struct manifest_id *v;
};

/* OCI LinuxIDMapping (uidMappings, gidMappings, mount uidmappings). Unset
 * sub-fields are 0 as in LinuxKit. */
struct manifest_idmapping {
	int64_t host_id, container_id, size; /* YAML hostID, containerID, size */
};

struct manifest_idmapping_list {
	bool set;
	size_t n;
	struct manifest_idmapping *v;
};

/* An OCI mount as written in `mounts` / `runtime.mounts` (nothing inferred
 * yet: the defaults of §1.3 are the assembler's job). */
struct manifest_mount {
	char *destination, *type, *source;
	struct manifest_strlist options;
	struct manifest_idmapping_list uidmappings, gidmappings;
};

struct manifest_mount_list {
	bool set;
	size_t n;
	struct manifest_mount *v;
};

/* A `devices` entry.  MODE was an octal string in YAML ("0666"); parsed. */
struct manifest_device {
	char *path, *type;
	int64_t major, minor;           /* 0 when unset, as in LinuxKit */
	struct manifest_opt_int mode;   /* permission bits, e.g. 0666 */
};

struct manifest_device_list {
	bool set;
	size_t n;
	struct manifest_device *v;
};

/* resources.devices[] (OCI LinuxDeviceCgroup) */
struct manifest_device_cgroup {
	struct manifest_opt_bool allow;
	char *type, *access;
	struct manifest_opt_int major, minor;
};

struct manifest_weight_device {
	struct manifest_opt_int major, minor, weight, leaf_weight;
};

struct manifest_throttle_device {
	struct manifest_opt_int major, minor, rate;
};

struct manifest_throttle_list {
	bool set;
	size_t n;
	struct manifest_throttle_device *v;
};

struct manifest_hugepage_limit {
	struct manifest_opt_int page_size, limit; /* YAML pageSize, limit */
};

struct manifest_interface_priority {
	char *name;
	struct manifest_opt_int priority;
};

/* `resources`: the OCI LinuxResources subset LinuxKit's schema allows.
 * Each sub-object has its own `set`. */
struct manifest_resources {
	bool set;
	struct {
		bool set;
		size_t n;
		struct manifest_device_cgroup *v;
	} devices;
	struct {
		bool set;
		struct manifest_opt_int limit, reservation, swap, kernel, kernel_tcp, swappiness;
		struct manifest_opt_bool disable_oom_killer;
	} memory;
	struct {
		bool set;
		struct manifest_opt_int shares, quota, period, realtime_runtime, realtime_period;
		char *cpus, *mems;
	} cpu;
	struct {
		bool set;
		struct manifest_opt_int limit;
	} pids;
	struct {
		bool set;
		struct manifest_opt_int weight, leaf_weight;
		struct {
			bool set;
			size_t n;
			struct manifest_weight_device *v;
		} weight_device;
		struct manifest_throttle_list throttle_read_bps_device, throttle_write_bps_device,
			throttle_read_iops_device, throttle_write_iops_device;
	} blockio;
	struct {
		bool set;
		size_t n;
		struct manifest_hugepage_limit *v;
	} hugepage_limits;
	struct {
		bool set;
		struct manifest_opt_int class_id; /* YAML classID */
		struct {
			bool set;
			size_t n;
			struct manifest_interface_priority *v;
		} priorities;
	} network;
};

/* runtime.interfaces[] */
struct manifest_interface {
	char *name, *add, *peer;
	struct manifest_opt_bool create_in_root; /* YAML createInRoot */
};

/* `runtime`: not part of the OCI spec; becomes runtime.json. */
struct manifest_runtime {
	bool set;
	struct manifest_strlist cgroups;
	struct manifest_mount_list mounts;
	struct manifest_strlist mkdir;
	struct {
		bool set;
		size_t n;
		struct manifest_interface *v;
	} interfaces;
	struct {
		bool set;
		char *cgroup, *ipc, *mnt, *net, *pid, *user, *uts;
	} bind_ns; /* YAML bindNS */
	char *namespace;
};

/* The per-image fields of §1.3: used for a manifest entry (onboot,
 * onshutdown, services), for a parsed org.mobyproject.config label, and for
 * the result of image_config_merge().  Everything is optional. */
struct image_config {
	struct manifest_strlist capabilities;     /* CAP_* names, or a single "all"/"none" */
	struct manifest_strlist capabilities_add; /* YAML capabilities.add */
	struct manifest_strlist ambient;
	struct manifest_mount_list mounts;
	struct manifest_strlist binds;     /* "src:dst[:opt,opt]" */
	struct manifest_strlist binds_add; /* YAML binds.add */
	struct manifest_device_list devices;
	struct manifest_strlist tmpfs; /* "/dest[:opt,opt]" */
	struct manifest_strlist command;
	struct manifest_strlist env;
	char *cwd;
	char *net, *pid, *ipc, *uts, *userns; /* "host"/"root", "new"/"none", or a path */
	char *hostname;
	struct manifest_opt_bool readonly;
	struct manifest_strlist masked_paths;   /* YAML maskedPaths */
	struct manifest_strlist readonly_paths; /* YAML readonlyPaths */
	struct manifest_id uid, gid;
	struct manifest_id_list additional_gids; /* YAML additionalGids */
	struct manifest_opt_bool no_new_privileges;
	struct manifest_opt_int oom_score_adj;
	char *rootfs_propagation; /* YAML rootfsPropagation */
	char *cgroups_path;       /* YAML cgroupsPath */
	struct manifest_resources resources;
	struct manifest_strmap sysctl;
	struct manifest_strlist rlimits; /* "name,soft,hard" as written; see manifest_rlimit_parse */
	struct manifest_idmapping_list uid_mappings, gid_mappings;
	struct manifest_strmap annotations;
	struct manifest_runtime runtime;
};

/* An onboot / onshutdown / services entry. */
struct manifest_image {
	char *name;
	char *image; /* the reference as written (after @pkg: resolution) */
	struct image_config config;
	char *file;                    /* the manifest file it came from ("-" = stdin) */
	struct manifest_pos pos;       /* of the entry (its mapping) */
	struct manifest_pos image_pos; /* of the `image:` value */
};

struct manifest_image_list {
	size_t n;
	struct manifest_image *v;
};

struct manifest_kernel {
	bool set; /* a `kernel:` section was present */
	char *image, *cmdline;
	char *binary; /* unset = "kernel" */
	char *tar;    /* unset = "kernel.tar"; "" or "none" = no modules tarball */
	char *ucode;  /* unset = none */
	char *file;
	struct manifest_pos pos;
};

struct manifest_init {
	char *image;
	char *file;
	struct manifest_pos pos;
};

struct manifest_file {
	char *path; /* as written (leading '/' is the assembler's to strip) */
	struct manifest_opt_bool directory;
	char *symlink, *contents, *source;
	char *metadata; /* "yaml" or "json" */
	struct manifest_opt_bool optional;
	struct manifest_opt_int mode; /* parsed octal; unset = 0600 file / 0700 directory */
	struct manifest_id uid, gid;
	char *file;
	struct manifest_pos pos;
};

struct manifest_volume {
	char *name, *image;
	struct manifest_opt_bool readonly;
	char *format; /* "filesystem" (default) or "oci" */
	struct manifest_strlist platforms;
	char *file;
	struct manifest_pos pos;
};

struct manifest {
	struct manifest_kernel kernel;
	size_t ninit;
	struct manifest_init *init;
	struct manifest_image_list onboot, onshutdown, services;
	size_t nfiles;
	struct manifest_file *files;
	size_t nvolumes;
	struct manifest_volume *volumes;
	bool has_trust; /* `trust:` was given (accepted, ignored, not dumped) */
	/* Default output name: basename of the last file without .yml/.yaml
	 * ("moby" for stdin). */
	char *name;
};

/* Resolves an @pkg: template.  PKG_DIR_ABS is the absolute package
 * directory (PATH of "@pkg:PATH" made absolute against the manifest's
 * directory); it exists.  Returns the image reference to substitute (heap,
 * the parser frees it) or NULL with *err set. */
typedef char *(*manifest_pkg_resolver)(const char *pkg_dir_abs, void *data,
				       struct kiln_error **err);

struct manifest_parse_options {
	manifest_pkg_resolver pkg_resolver; /* NULL: every @pkg: is an error */
	void *pkg_data;
	bool quiet; /* do not log the `trust` warning */
};

/* Parses one manifest from TEXT (LEN bytes; need not be NUL-terminated).
 * FILENAME is used in error messages and as the entries' `file`; BASE_DIR is
 * where relative @pkg: paths start (NULL: the directory of FILENAME).
 * Every error is one line "FILENAME:LINE:COL: message".  OPTS may be NULL.
 * Returns a new manifest the caller frees with manifest_free(). */
struct manifest *manifest_parse(const char *text, size_t len, const char *filename,
				const char *base_dir, const struct manifest_parse_options *opts,
				struct kiln_error **err);

/* Reads PATH ("-" = stdin, named "-" in errors and "moby" as the output
 * name) and parses it.  Caller frees with manifest_free(). */
struct manifest *manifest_load(const char *path, const struct manifest_parse_options *opts,
			       struct kiln_error **err);

/* Loads N files and merges them left to right (§1.8). Caller frees. */
struct manifest *manifest_load_files(char *const *paths, size_t n,
				     const struct manifest_parse_options *opts,
				     struct kiln_error **err);

/* Appends SRC to DST as LinuxKit's AppendConfig does: kernel fields
 * replaced when set (non-empty for image/cmdline/binary), lists
 * concatenated, service names re-checked.  SRC is consumed (freed) in every
 * case. */
int manifest_append(struct manifest *dst, struct manifest *src, struct kiln_error **err);

/* The checks LinuxKit makes on the merged manifest at build time, made
 * early so --dry-run reports them with a position: uid/gid/additionalGids
 * names (in entries and files) name a container; binds, binds.add and bind
 * mounts whose source is not absolute name a volume; a read-only volume is
 * bound with "ro".  manifest_load_files() calls it after merging. */
int manifest_validate(const struct manifest *m, struct kiln_error **err);

void manifest_free(struct manifest *m);
#define cleanup_manifest __attribute__((cleanup(manifest_freep)))
void manifest_freep(struct manifest **m);

/* Writes M as YAML (deterministic: keys in schema order, only set fields).
 * Parsing the output gives a manifest that dumps identically. */
int manifest_dump(const struct manifest *m, FILE *out, struct kiln_error **err);

/* The manifest as "yaml" or "json" text (for `files: metadata:`).
 * Caller frees. */
char *manifest_dump_string(const struct manifest *m, const char *format,
			   struct kiln_error **err);

/* uid/gid name map (§1.5): onboot, then onshutdown, then services get 100,
 * 101, … in order.  NAME_OR_NUMBER is a decimal number, "root" or "" (0), or
 * a container name.  Unknown name → error "cannot find id: NAME". */
int manifest_resolve_id(const struct manifest *m, const char *name_or_number, uint32_t *out,
			struct kiln_error **err);
int manifest_id_resolve(const struct manifest *m, const struct manifest_id *id, uint32_t *out,
			struct kiln_error **err);

/* ---- image config ---- */

/* Parses an org.mobyproject.config label (JSON or YAML object) with the
 * same schema and checks as a manifest entry; `name`/`image` are errors.
 * Errors read "org.mobyproject.config label:LINE:COL: message".  Caller
 * frees with image_config_free(). */
struct image_config *image_config_parse_label(const char *text, struct kiln_error **err);

/* LinuxKit's merge (§1.4): every field of YAML that is set wins (for
 * cwd/net/pid/ipc/uts/userns/hostname: set and non-empty), else LABEL's.
 * capabilities = YAML.capabilities if set, else LABEL.capabilities followed
 * by YAML.capabilities_add (no dedupe); binds likewise with binds_add.
 * The result has capabilities_add / binds_add unset.  runtime merges
 * sub-field by sub-field (each bindNS entry on its own).  Either argument
 * may be NULL.  Nothing is expanded ("all" stays "all").  Caller frees the
 * result with image_config_free(). */
struct image_config *image_config_merge(const struct image_config *yaml,
					const struct image_config *label);

/* Deep copy into *DST (which is overwritten, not freed). */
void image_config_copy(struct image_config *dst, const struct image_config *src);
/* Frees the members of C (not C itself) and zeroes it. */
void image_config_release(struct image_config *c);
/* Frees C and its members; NULL is fine. */
void image_config_free(struct image_config *c);

/* Every capability name the kernel knows ("CAP_CHOWN" … "CAP_CHECKPOINT_RESTORE"),
 * in kernel number order; *N gets the count.  Static. */
const char *const *manifest_capabilities_known(size_t *n);
bool manifest_capability_is_known(const char *name);

/* One parsed rlimits entry. */
struct manifest_rlimit {
	const char *type; /* static, e.g. "RLIMIT_NOFILE" */
	uint64_t soft, hard; /* "unlimited" = UINT64_MAX */
};

/* Parses "name,soft,hard" (name case-insensitive, RLIMIT_ optional). */
int manifest_rlimit_parse(const char *text, struct manifest_rlimit *out, struct kiln_error **err);

#endif
