/* The shared-library check of `kiln pkg build`: an image in which an ELF
 * program or library needs a library (DT_NEEDED) that the image does not
 * hold, or names an interpreter (PT_INTERP) that is absent, is refused,
 * naming the binary and what it lacks.  The search follows the dynamic
 * loader: DT_RPATH (when there is no DT_RUNPATH), LD_LIBRARY_PATH from the
 * image's Env, DT_RUNPATH, the directories of the image's ld.so.cache
 * source (ld.so.conf, only when the image has /etc/ld.so.cache: glibc reads
 * the cache, never the .conf files), then the default directories of glibc
 * on Debian (/lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, /lib,
 * /usr/lib) and of musl (/lib, /usr/local/lib, /usr/lib).  $ORIGIN, $LIB and
 * $PLATFORM are expanded. */
#ifndef KILN_ELFCHECK_H
#define KILN_ELFCHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct elf_deps {
	char *interp;    /* PT_INTERP or NULL */
	char **needed;   /* DT_NEEDED names, in order */
	size_t nneeded;
	char **rpath;    /* DT_RPATH entries (split at ':') */
	size_t nrpath;
	char **runpath;  /* DT_RUNPATH entries */
	size_t nrunpath;
};

/* Reads the dynamic dependencies of the file at FILE.  Returns 1 when it is
 * a 64-bit ELF executable or shared object (D filled; release with
 * elf_deps_release), 0 when it is not an ELF file or has nothing to check
 * (relocatable objects such as kernel modules, core files, 32-bit ELF), -1
 * when it is a malformed ELF file. */
int elf_deps_read(const char *file, struct elf_deps *d, struct kiln_error **err);
void elf_deps_release(struct elf_deps *d);

/* true when absolute PATH names an existing file in the image (symlinks
 * followed inside the image). */
typedef bool (*elfcheck_exists_fn)(const char *path, void *arg);

/* Checks D, read from the file at absolute image path BINARY.  EXTRA_DIRS
 * (NEXTRA entries, absolute) are searched after DT_RUNPATH and before the
 * defaults (LD_LIBRARY_PATH and ld.so.conf directories).  Returns 0, or -1
 * with "BINARY needs LIB, which is not in the image (searched …)". */
int elfcheck_deps(const char *binary, const struct elf_deps *d, char *const *extra_dirs,
		  size_t nextra, elfcheck_exists_fn exists, void *arg, struct kiln_error **err);

#endif
