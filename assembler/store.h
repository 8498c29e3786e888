/* The content-addressed image store: an OCI image layout directory
 * (oci-layout, index.json, blobs/sha256/<hex>), the same layout as
 * LinuxKit's ~/.linuxkit/cache, so either tool reads the other's.
 * Default location: $KILN_CACHE, else $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
 *
 * Blobs are written to a temp file in blobs/sha256/, hashed while written,
 * fsynced and renamed into place only when the digest matches, so a killed
 * process never leaves a corrupt blob under its final name.  index.json is
 * updated under flock(2) on <dir>/.lock and replaced atomically.  Every open
 * store holds a shared flock on <dir>/.users.lock for its lifetime; garbage
 * collection (store_gc, store_clear) needs it exclusively and refuses while
 * another handle is open, so blobs written but not yet tagged are never
 * collected.  Lock order: .users.lock, then .lock. */
#ifndef KILN_STORE_H
#define KILN_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "sha256.h"

struct store;

/* The default store directory (see above), absolute (a relative
 * $KILN_CACHE is taken against the working directory).  Caller frees. */
char *store_default_dir(void);

/* Opens (creating if needed) the layout at DIR, or the default when DIR is
 * NULL.  A relative DIR is made absolute against the working directory here,
 * once, so store_dir() names the same place from any directory (a package's
 * build command runs in its own).  Release with store_close(). */
struct store *store_open(const char *dir, struct kiln_error **err);
void store_close(struct store *s);
#define cleanup_store __attribute__((cleanup(store_closep)))
void store_closep(struct store **s);

/* The store's directory: always an absolute path. */
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

/* ---- Additions (store helper) ---- */

/* Removes every index.json entry named NAME.  Returns 1 when one was
 * removed, 0 when there was none, -1 on error.  Blobs stay (see store_gc). */
int store_untag(struct store *s, const char *name, struct kiln_error **err);

/* A snapshot of index.json (read under a shared lock); caller json_decref()s. */
json_t *store_index(struct store *s, struct kiln_error **err);

/* Size of a stored blob, or -1 when absent. */
int64_t store_blob_size(struct store *s, const char *digest);

/* Re-hashes a stored blob: 0 when its content matches DIGEST, -1 otherwise
 * (missing, unreadable or "digest mismatch (got …)"). */
int store_blob_verify(struct store *s, const char *digest, struct kiln_error **err);

/* Removes a blob (absent is not an error). */
int store_blob_remove(struct store *s, const char *digest, struct kiln_error **err);

/* Opens a blob writer that can resume a transfer broken in an earlier run:
 * the partial data of EXPECTED lives in blobs/sha256/.partial-<hex> (a
 * named file, unlike store_blob_create's anonymous temp file), is re-hashed
 * on open, and blob_writer_size() tells where to continue (an HTTP Range).
 * Call blob_writer_truncate(w, 0) to start over when the server does not
 * honour the range.  Only one process may resume a digest at a time; a
 * second one gets EBUSY. */
struct blob_writer *store_blob_resume(struct store *s, const char *expected,
				      struct kiln_error **err);
/* Drops everything after the first SIZE bytes (only SIZE 0 is supported for
 * an anonymous writer that has already hashed past it). */
int blob_writer_truncate(struct blob_writer *w, uint64_t size, struct kiln_error **err);

/* The blobs reachable from index.json: every root, and for every root that is
 * an index or manifest, every descriptor it names, recursively (only blobs
 * present are followed).  Calls FN for each digest once, sorted.  Read under
 * a shared lock. */
int store_walk_referenced(struct store *s, void (*fn)(const char *digest, void *arg), void *arg,
			  struct kiln_error **err);

/* Garbage collection: removes every blob not reachable from index.json and
 * every temp file (.tmp-*, .partial-*, index.json.tmp-*) older than
 * TEMP_MIN_AGE seconds.  Refuses (EBUSY) while another process has the store
 * open, so that a pull that has written blobs but not yet tagged them is
 * never robbed.  When DRY_RUN nothing is removed.  FN (may be NULL) is
 * called for each file removed (or that would be), with its size.  Returns
 * the number of files. */
int store_gc(struct store *s, bool dry_run, int64_t temp_min_age,
	     void (*fn)(const char *path, int64_t size, void *arg), void *arg,
	     struct kiln_error **err);

/* A streaming reader that checks a blob's digest: blob_reader_read returns
 * 0 (end) only after the bytes read hash to the blob's name, and -1 with
 * "blob …: digest mismatch (got …)" otherwise, so a consumer that streams a
 * layer (libarchive's archive_read_open callbacks) fails before it finishes
 * with bytes the store should never have held.  Close with
 * blob_reader_close(). */
struct blob_reader;
struct blob_reader *store_blob_reader_open(struct store *s, const char *digest,
					   struct kiln_error **err);
/* Reads up to LEN bytes; returns the count, 0 at a verified end, -1 on error. */
ssize_t blob_reader_read(struct blob_reader *r, void *buf, size_t len, struct kiln_error **err);
/* Bytes read so far and the blob's size. */
uint64_t blob_reader_offset(const struct blob_reader *r);
uint64_t blob_reader_size(const struct blob_reader *r);
void blob_reader_close(struct blob_reader *r);

/* Removes every index.json entry and every blob (and stale temp files),
 * like store_gc with nothing referenced; refuses while another process has
 * the store open.  Returns the number of files removed. */
int store_clear(struct store *s, void (*fn)(const char *path, int64_t size, void *arg), void *arg,
		struct kiln_error **err);

/* Total size of the distinct blobs reachable from ROOT that are present. */
int64_t store_image_size(struct store *s, const char *root, const char *media_type);

/* Removes abandoned temp files (blobs/sha256/.tmp-*, .partial-*, and
 * *.tmp-* beside index.json) older than MIN_AGE seconds and not locked by a
 * live writer.  When DRY_RUN nothing is removed.  FN as for store_gc.
 * Returns the number of files. */
int store_clean_temp(struct store *s, int64_t min_age, bool dry_run,
		     void (*fn)(const char *path, int64_t size, void *arg), void *arg,
		     struct kiln_error **err);

/* Checks the whole store: every blob's content matches its name, every
 * index.json root exists, every manifest present has its config and layers,
 * every index present has at least one of its manifests.  Calls FN once per
 * problem (WHAT is the digest or file, WHY a sentence).  Returns the number
 * of problems, or -1 when the check itself could not run. */
int store_verify(struct store *s, void (*fn)(const char *what, const char *why, void *arg),
		 void *arg, struct kiln_error **err);

#endif
