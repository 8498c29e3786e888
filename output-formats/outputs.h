/* Helpers shared by the output format writers: atomic installation of
 * output files, and the kernel+initrd producer every kernel/initrd based
 * format reuses (build_execute runs it once into the work dir when a
 * requested format has needs_kernel_initrd). */
#ifndef KILN_OUTPUTS_H
#define KILN_OUTPUTS_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "format.h"

enum initrd_compress {
	INITRD_GZIP = 0, /* default, as LinuxKit */
	INITRD_ZSTD,
	INITRD_NONE,
};

/* Uncompressed cpio bytes per compressed member (members end at entry
 * boundaries and never split a hard-link group). */
#define INITRD_CHUNK_SIZE ((uint64_t)4 << 20)

struct initrd_options {
	enum initrd_compress compress;
	int threads;	      /* 0 = online CPUs ($KILN_THREADS overrides) */
	const char *work_dir; /* for per-member temp files */
	const char
	    *cache_dir; /* NULL = no member cache; else reuse compressed members by content */
	/* The previous build's outputs (DIR/NAME-initrd.img, DIR/NAME-kernel), or
	 * NULL: with CACHE_DIR, a previous file whose record (an extended
	 * attribute) says it holds this build's leading sections is taken over
	 * (moved into the work directory and appended to) instead of copying
	 * those sections again.  See initrd.c. */
	const char *previous_initrd;
	const char *previous_kernel;
};

struct initrd_result {
	char *cmdline;		/* boot/cmdline ("" when absent); heap */
	bool has_ucode;		/* boot/ucode.cpio was present (and is prepended) */
	uint64_t cpio_bytes;	/* uncompressed cpio size */
	uint64_t members;	/* compressed members written */
	uint64_t reused;	/* of which taken from the cache */
	uint64_t kept_sections; /* leading sections kept from the previous initrd */
	uint64_t kept_bytes;	/* their bytes */
};

/* Converts the intermediate tar TAR_PATH as LinuxKit's tarToInitrd does:
 * boot/kernel → KERNEL_OUT, boot/cmdline → RES->cmdline, boot/ucode.cpio
 * prepended uncompressed to INITRD_OUT, every other boot/ entry dropped, the
 * rest written as newc cpio (hard links kept as hard links: one inode
 * number per group, the data on the first member) in compressed members,
 * each a complete cpio archive, compressed in parallel, concatenated in
 * order (the kernel unpacks concatenated archives).  Output is identical
 * whatever the number of threads.  Release RES with initrd_result_release. */
int initrd_from_tar(const char *tar_path, const char *kernel_out, const char *initrd_out,
		    const struct initrd_options *o, struct initrd_result *res,
		    struct kiln_error **err);
void initrd_result_release(struct initrd_result *res);

/* One section of the intermediate tar (assemble.h): its file holds entries
 * only.  With o->cache_dir and CACHEABLE, the section's compressed members
 * are kept as CACHE/<KEY>.cpio.gz|.cpio.zst|.cpio and reused by a later
 * build with the same key. */
struct initrd_section {
	const char *tar_path;
	const char *key;
	bool cacheable;
};

/* initrd_from_tar over a list of sections, in order; the members of one
 * section never span another, so the cached ones can be concatenated. */
int initrd_from_sections(const struct initrd_section *secs, size_t n, const char *kernel_out,
			 const char *initrd_out, const struct initrd_options *o,
			 struct initrd_result *res, struct kiln_error **err);

/* DIR/NAME. Caller frees. */
char *format_output_path(const struct format_ctx *ctx, const char *suffix);

/* Installs SRC as DST atomically: a hard link (or a copy when linking is
 * impossible) to a temp name in DST's directory, fsync, rename. */
int format_install_file(const char *src, const char *dst, mode_t mode, struct kiln_error **err);

/* Opens a temp file beside DST for writing (*TMP_OUT gets its name);
 * finish with format_commit_file (fsync + rename) or unlink on failure. */
int format_create_temp(const char *dst, char **tmp_out, struct kiln_error **err);
int format_commit_file(int fd, const char *tmp, const char *dst, struct kiln_error **err);

/* The kernel+initrd writer other formats may call: NAME-kernel,
 * NAME-initrd.img, NAME-cmdline from ctx->kernel_path/initrd_path/cmdline. */
int kernel_initrd_write(const struct format_ctx *ctx, struct kiln_error **err);

#endif
