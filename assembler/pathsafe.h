/* The one audited place where a path taken from untrusted input (a layer
 * entry, a hard-link target, a manifest `files` path) becomes a path inside
 * the root filesystem kiln assembles (STYLE.md §8).
 *
 * kiln never writes through the host filesystem while assembling: it streams
 * tar/cpio entries.  The danger is the consumer of those archives (the
 * kernel's initramfs unpacker, `tar -x`, mksquashfs) following a name out of
 * its root.  So every entry name is cleaned to a relative path without `..`,
 * every parent on the way is checked not to be a symlink already in the tree
 * (a `lib -> /` then `lib/x` pair would write outside a container's rootfs),
 * and every hard-link target is cleaned the same way and must already exist
 * in the tree.
 *
 * Also here: pathmap, a compact hash map from path to a small fixed-size
 * value, used for the trees that layer flattening and assembly keep (its
 * memory grows with the number of entries, never with their sizes). */
#ifndef KILN_PATHSAFE_H
#define KILN_PATHSAFE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Flags for pathsafe_clean. */
enum {
	/* Strip leading '/' (LinuxKit does so for `files` paths) instead of
	 * refusing an absolute name. */
	PATHSAFE_STRIP_ROOT = 1 << 0,
	/* pathsafe_check: a hard-link target need not be in the tree yet (layer
	 * flattening resolves it against lower layers and fails at the end when
	 * no layer has it). */
	PATHSAFE_LINK_DEFERRED = 1 << 1,
};

/* Longest cleaned path accepted (PATH_MAX of Linux, less room for a prefix). */
#define PATHSAFE_MAX 3072

/* Cleans NAME into a relative path: drops "./" prefixes, "." components,
 * repeated and trailing slashes.  Refuses (error naming NAME): an absolute
 * name (unless PATHSAFE_STRIP_ROOT), any ".." component, an empty name
 * other than the root, a name longer than PATHSAFE_MAX.  The root itself
 * ("." "./" and, with PATHSAFE_STRIP_ROOT, "/") cleans to "".  Caller frees. */
char *pathsafe_clean(const char *name, unsigned flags, struct kiln_error **err);

enum pathsafe_type {
	PATHSAFE_ABSENT = 0,
	PATHSAFE_DIR,
	PATHSAFE_SYMLINK,
	PATHSAFE_OTHER, /* regular file, hard link, device, fifo, socket */
};

/* Answers "what is at PATH (LEN bytes, not NUL-terminated) in the tree as
 * built so far?" for pathsafe_check. */
typedef enum pathsafe_type (*pathsafe_lookup_fn)(void *ctx, const char *path, size_t len);

/* The audited check for one entry about to be added to a tree:
 * NAME is cleaned (pathsafe_clean with FLAGS), then every proper parent of
 * it is looked up and must not be a symlink nor a non-directory; when
 * HARDLINK is non-NULL it is cleaned likewise, its parents checked the same
 * way, and it must be present in the tree as a non-directory other than
 * NAME itself.  *CLEAN_OUT (and *LINK_OUT when HARDLINK is given) receive
 * the cleaned strings, which the caller frees.  Errors say which path and
 * why ("parent `a/b` is a symlink", "hard link to `x` which is not in the
 * image", …); the caller adds image, layer and entry context. */
int pathsafe_check(const char *name, const char *hardlink, unsigned flags,
		   pathsafe_lookup_fn lookup, void *ctx, char **clean_out, char **link_out,
		   struct kiln_error **err);

/* ---- pathmap ---- */

struct pathmap;

/* A map whose values are VALUE_SIZE bytes, zeroed when created. */
struct pathmap *pathmap_new(size_t value_size);
void pathmap_free(struct pathmap *m);
#define cleanup_pathmap __attribute__((cleanup(pathmap_freep)))
void pathmap_freep(struct pathmap **m);

/* The value stored for KEY (LEN bytes), or NULL.  The pointer stays valid
 * until the map is freed. */
void *pathmap_get(const struct pathmap *m, const char *key, size_t len);
/* The value for KEY, created (zeroed) when absent; *CREATED (may be NULL)
 * tells which. */
void *pathmap_put(struct pathmap *m, const char *key, size_t len, bool *created);
/* The key of a value returned by pathmap_get/put (NUL-terminated). */
const char *pathmap_key(const void *value);
size_t pathmap_count(const struct pathmap *m);
/* Calls FN for every value, in no particular order (do not insert meanwhile). */
void pathmap_foreach(const struct pathmap *m, void (*fn)(void *value, void *ctx), void *ctx);

#endif
