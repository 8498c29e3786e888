/* Allocation that never fails silently (STYLE.md §3), scope-bound cleanup
 * (STYLE.md §2) and small file helpers shared by every module. */
#ifndef KILN_UTIL_H
#define KILN_UTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "error.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Prints "kiln: out of memory" and aborts. */
__attribute__((noreturn)) void oom(void);

/* The x-allocators abort on OOM; they never return NULL (xmalloc(0) returns a
 * unique pointer).  The caller owns the result and frees it with free(). */
void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);            /* xstrdup(NULL) returns NULL */
char *xstrndup(const char *s, size_t n);
/* The N bytes of S with each %XX (two hex digits) decoded, and each '+' a
 * space when PLUS_SPACE (a URI query's form); a new NUL-terminated string. */
char *percent_decode(const char *s, size_t n, bool plus_space);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Cleanup helpers for __attribute__((cleanup)). */
void cleanup_freep(void *p);
void cleanup_closep(int *fd);
void cleanup_fclosep(FILE **f);
void cleanup_closedirp(DIR **d);

#define cleanup_free __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))
#define cleanup_file __attribute__((cleanup(cleanup_fclosep)))
#define cleanup_dir __attribute__((cleanup(cleanup_closedirp)))

/* Hands ownership out of a cleanup-managed variable. */
static inline void *take_pointer(void *pp)
{
	void **p = (void **)pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) take_pointer(pp)
static inline int steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

/* Reads all of PATH (at most MAX bytes; larger is an error) into a new
 * NUL-terminated buffer the caller frees; *LEN gets the length (may be NULL). */
char *read_file(const char *path, size_t max, size_t *len, struct kiln_error **err);

/* Reads all of FD (at most MAX bytes) likewise. */
char *read_fd(int fd, size_t max, size_t *len, struct kiln_error **err);

/* Writes LEN bytes to FD, retrying on EINTR and short writes. */
int write_all(int fd, const void *buf, size_t len, struct kiln_error **err);

/* Atomically replaces PATH with DATA: writes a temp file in the same
 * directory, fsyncs it, renames it over PATH and fsyncs the directory. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct kiln_error **err);

/* Creates PATH and its missing parents with MODE (like mkdir -p). */
int mkdir_p(const char *path, mode_t mode, struct kiln_error **err);

/* Removes PATH recursively (like rm -rf); missing PATH is not an error. */
int rm_rf(const char *path, struct kiln_error **err);

/* Joins two path parts with exactly one '/'.  Caller frees. */
char *path_join(const char *a, const char *b);

/* true when S ends with SUFFIX / starts with PREFIX. */
bool str_has_suffix(const char *s, const char *suffix);
bool str_has_prefix(const char *s, const char *prefix);

/* Parses a decimal or 0-prefixed unsigned integer fully; -1 on junk/overflow. */
int parse_u64(const char *s, int base, uint64_t *out);

#endif
