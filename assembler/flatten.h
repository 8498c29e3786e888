/* Layer flattening: an image's layers (tar, tar+gzip, tar+zstd) applied in
 * ONE streaming pass, top layer first, the way LinuxKit's
 * go-containerregistry mutate.Extract does it: an entry is emitted the
 * first time its path is met; lower entries that a higher layer replaced,
 * whited out (`.wh.NAME`), hid under an opaque directory (`.wh..wh..opq`)
 * or under a non-directory are skipped.  Memory is a compact index of the
 * paths seen (pathmap), bounded by the number of entries, never by their
 * sizes: file data flows from the layer reader straight to the sink.
 *
 * Emission order is therefore "top layer first, then each layer in its own
 * tar order", which is deterministic for given layers.  Because a child can
 * be met before its parent directory (the directory may live in a lower
 * layer), a parent that has not been emitted yet is emitted first as a
 * synthesized directory (0755, root, EPOCH); the real directory entry, when
 * a lower layer has it, is emitted again later with its own metadata (tar
 * and the kernel's cpio unpacker both apply a repeated directory's mode and
 * owner).  So every entry follows its parents: the stream can be unpacked
 * by the kernel's initramfs code, which does not create parents itself.
 *
 * Hard links: a link whose target is emitted earlier is emitted as a link.
 * A link to a file of a lower layer waits until that file is met; if that
 * file turns out to be hidden (deleted or replaced above), the first waiting
 * link becomes the file (with the hidden file's data) and the other links
 * point at it.  A link to a file of its own layer that was hidden makes the
 * flattener read that layer a second time (only then) to recover the data.
 *
 * Every name and link target goes through pathsafe_check (pathsafe.h).
 * Errors name the image, the layer (index and digest) and the entry. */
#ifndef KILN_FLATTEN_H
#define KILN_FLATTEN_H

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>

#include "error.h"

struct flatten_layer {
	const char *path;   /* the blob file (any of tar, tar+gzip, tar+zstd; detected) */
	const char *digest; /* for error messages; may be NULL */
	/* When non-NULL: an open reader (borrowed) used instead of PATH, e.g.
	 * a tar nested in another archive.  It cannot be read twice, so the
	 * rare same-layer hard link to a hidden file is an error there. */
	struct archive *archive;
};

/* Called once per emitted entry.  E's pathname is PREFIX + the cleaned path
 * (directories without a trailing '/'), its hardlink (if any) PREFIX + the
 * cleaned target; uname/gname are cleared.  For a regular file with a
 * non-zero size, DATA is the layer reader positioned at its data: read
 * exactly archive_entry_size(E) bytes with archive_read_data (or none: the
 * rest is skipped).  DATA is NULL otherwise.  Return -1 with *ERR to stop. */
typedef int (*flatten_emit_fn)(void *ctx, struct archive_entry *e, struct archive *data,
			       struct kiln_error **err);

/* Called for every visible entry before emission with its cleaned path
 * (without PREFIX); return 1 to drop it (LinuxKit's excluded and replaced
 * files), 0 to keep it. */
typedef int (*flatten_filter_fn)(void *ctx, const char *path, struct archive_entry *e);

struct flatten_options {
	const char *image;  /* image name for error messages */
	const char *prefix; /* "" or a directory path ending in '/' */
	int64_t epoch;	    /* mtime of synthesized parent directories */
	flatten_emit_fn emit;
	flatten_filter_fn filter; /* may be NULL */
	void *ctx;		  /* passed to emit and filter */
	uint64_t max_entry_size;  /* 0 = FLATTEN_MAX_ENTRY_SIZE */
};

/* Largest expanded file accepted (newc cpio cannot carry more anyway). */
#define FLATTEN_MAX_ENTRY_SIZE ((uint64_t)4 << 30)

/* Flattens LAYERS[0..N) (bottom layer first, as in an image manifest). */
int flatten_image(const struct flatten_layer *layers, size_t n, const struct flatten_options *o,
		  struct kiln_error **err);

/* Opens a layer blob for reading as a tar with every compression libarchive
 * detects (gzip, zstd, none, …).  Caller archive_read_free()s. */
struct archive *flatten_open_layer(const char *path, struct kiln_error **err);

#define cleanup_archive_read __attribute__((cleanup(flatten_archive_read_freep)))
void flatten_archive_read_freep(struct archive **a);

#endif
