/* The content-addressed image store: an OCI image layout directory
 * (oci-layout, index.json, blobs/sha256/<hex>), the same layout as
 * LinuxKit's ~/.linuxkit/cache, so either tool reads the other's.
 * Default location: $KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
 *
 * Blobs are written to a temp file in blobs/sha256/, hashed while written,
 * fsynced and renamed into place only when the digest matches, so a killed
 * process never leaves a corrupt blob under its final name.  index.json is
 * updated under flock(2) on <dir>/.lock and replaced atomically. */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sha256.h"

struct store;

/* The default store directory (see above).  Caller frees. */
char *store_default_dir(void);

/* Opens (creating if needed) the layout at DIR, or the default when DIR is
 * NULL.  Release with store_close(). */
struct store *store_open(const char *dir, struct kiln_error **err);
void store_close(struct store *s);
#define cleanup_store __attribute__((cleanup(store_closep)))
void store_closep(struct store **s);

const char *store_dir(const struct store *s);

/* Streaming blob writes. */
struct blob_writer;
struct blob_writer *store_blob_create(struct store *s, struct kiln_error **err);
int blob_writer_write(struct blob_writer *w, const void *buf, size_t len, struct kiln_error **err);
/* Bytes written so far. */
uint64_t blob_writer_size(const struct blob_writer *w);
/* Finishes W (always frees it): when EXPECTED is non-NULL the computed digest
 * must equal it ("digest mismatch (got …)" otherwise, nothing kept).  fsync,
 * rename to blobs/sha256/<hex>.  DIGEST_OUT may be NULL. */
int blob_writer_commit(struct blob_writer *w, const char *expected, char digest_out[DIGEST_STRLEN],
		       struct kiln_error **err);
/* Discards W and its temp file. */
void blob_writer_abort(struct blob_writer *w);

/* Stores a blob held in memory. */
int store_put_blob(struct store *s, const void *data, size_t len, char digest_out[DIGEST_STRLEN],
		   struct kiln_error **err);
bool store_has_blob(struct store *s, const char *digest);
/* Path of a blob (need not exist).  Caller frees. */
char *store_blob_path(struct store *s, const char *digest);
/* Opens a blob read-only; returns an fd or -1. */
int store_blob_open(struct store *s, const char *digest, struct kiln_error **err);
/* Reads a whole blob of at most MAX bytes and checks its digest. Caller frees. */
char *store_blob_read(struct store *s, const char *digest, size_t max, size_t *len,
		      struct kiln_error **err);

/* index.json: names a root manifest or index by the annotation
 * org.opencontainers.image.ref.name (a normalised reference string).
 * Replaces an existing entry of the same name. */
int store_tag(struct store *s, const char *name, const char *digest, const char *media_type,
	      int64_t size, struct kiln_error **err);
/* Looks NAME up in index.json.  Returns 1 and fills DIGEST_OUT when found,
 * 0 when absent, -1 on error. */
int store_lookup(struct store *s, const char *name, char digest_out[DIGEST_STRLEN],
		 struct kiln_error **err);

#endif
