/* The content-addressed image store: an OCI image layout (see store.h).
 *
 * Invariants:
 *  - blobs/sha256/<hex> only ever appears with content whose sha256 is <hex>:
 *    writers write to an anonymous O_TMPFILE (or a flock'ed .tmp-* file when
 *    O_TMPFILE or /proc is unavailable), hash while writing, fsync, and link
 *    or rename into place only after the digest matched.
 *  - index.json is read-modify-written under an exclusive flock(2) on
 *    <dir>/.lock and replaced atomically; readers take the lock shared.
 *    Entries and fields kiln does not know are kept as they are.
 *  - every open store holds a shared flock on <dir>/.users.lock; garbage
 *    collection needs it exclusively, so it never removes blobs that a
 *    running pull has written but not yet tagged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "oci.h"
#include "store.h"
#include "util.h"

#define INDEX_MAX  ((size_t)64 << 20)
#define HASH_BUFSZ (128 * 1024)

struct store {
	char *dir;
	int dirfd;
	int blobfd;	 /* blobs/sha256 */
	int users_fd;	 /* .users.lock, held shared while open */
	bool tmpfile_ok; /* O_TMPFILE + /proc/self/fd linkat works here */
};

struct blob_writer {
	struct store *s;
	int fd;
	char *name;	    /* temp name in blobs/sha256, NULL for an O_TMPFILE */
	bool keep_on_abort; /* a resumable .partial-* file */
	struct sha256 h;
	bool hashing;
	uint64_t size;
};

/* DIR made absolute against the working directory (heap), so the store is
 * found from any directory: a package's build command runs in its own.
 * Kept as given when the working directory cannot be named. */
static char *store_absolute(const char *dir)
{
	if (dir[0] == '/')
		return xstrdup(dir);
	cleanup_free char *cwd = get_current_dir_name();
	return cwd ? path_join(cwd, dir) : xstrdup(dir);
}

char *store_default_dir(void)
{
	const char *e = getenv("KILN_CACHE");
	if (e && *e)
		return store_absolute(e);
	e = getenv("XDG_CACHE_HOME");
	if (e && *e == '/')
		return path_join(e, "kiln");
	e = getenv("HOME");
	if (e && *e)
		return xasprintf("%s/.cache/kiln", e);
	return store_absolute(".kiln-cache");
}

const char *store_dir(const struct store *s)
{
	return s->dir;
}

/* Opens and flocks <dir>/NAME.  Returns the fd (the lock goes with it), or
 * -1 with *err set. */
static int store_lock(struct store *s, const char *name, int op, struct kiln_error **err)
{
	int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 && (errno == EACCES || errno == EROFS))
		fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open lock `%s/%s`", s->dir, name);
	while (flock(fd, op) < 0) {
		if (errno == EINTR)
			continue;
		int e = errno;
		close(fd);
		return kiln_error_make(err, e, "lock `%s/%s`", s->dir, name);
	}
	return fd;
}

static const char empty_index[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" OCI_MEDIA_INDEX "\",\"manifests\":[]}";

static int store_init_layout(struct store *s, struct kiln_error **err)
{
	cleanup_free char *layout = path_join(s->dir, "oci-layout");
	if (access(layout, F_OK) == 0) {
		cleanup_free char *data = read_file(layout, 4096, NULL, err);
		if (data == NULL)
			return -1;
		cleanup_json json_t *j = oci_json_parse(data, strlen(data), "oci-layout", err);
		if (j == NULL || !json_is_string(json_object_get(j, "imageLayoutVersion")))
			return kiln_error_make(err, 0, "`%s` is not an OCI image layout file",
					       layout);
	}
	cleanup_free char *index = path_join(s->dir, "index.json");
	if (access(layout, F_OK) == 0 && access(index, F_OK) == 0)
		return 0;
	cleanup_close int lock = store_lock(s, ".lock", LOCK_EX, err);
	if (lock < 0)
		return -1;
	static const char layout_json[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	if (access(layout, F_OK) < 0 &&
	    write_file_atomic(layout, layout_json, strlen(layout_json), 0644, err) < 0)
		return -1;
	if (access(index, F_OK) < 0 &&
	    write_file_atomic(index, empty_index, strlen(empty_index), 0644, err) < 0)
		return -1;
	return 0;
}

struct store *store_open(const char *dir, struct kiln_error **err)
{
	cleanup_free char *d = dir ? store_absolute(dir) : store_default_dir();
	cleanup_free char *blobs = path_join(d, "blobs/sha256");
	if (mkdir_p(blobs, 0755, err) < 0) {
		kiln_error_wrap(err, "store `%s`", d);
		return NULL;
	}
	struct store *s = xcalloc(1, sizeof *s);
	s->dir = steal_pointer(&d);
	s->dirfd = s->blobfd = s->users_fd = -1;
	s->dirfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0) {
		kiln_error_make(err, errno, "open store `%s`", s->dir);
		goto fail;
	}
	s->blobfd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->blobfd < 0) {
		kiln_error_make(err, errno, "open `%s`", blobs);
		goto fail;
	}
	/* Lock order is always .users.lock, then .lock (as in store_gc). */
	s->users_fd = store_lock(s, ".users.lock", LOCK_SH, err);
	if (s->users_fd < 0)
		goto fail;
	if (store_init_layout(s, err) < 0)
		goto fail;
	/* KILN_STORE_NO_TMPFILE forces the named-temp-file path (tests). */
	s->tmpfile_ok =
	    access("/proc/self/fd", X_OK) == 0 && getenv("KILN_STORE_NO_TMPFILE") == NULL;
	return s;
fail:
	kiln_error_wrap(err, "store `%s`", s->dir);
	store_close(s);
	return NULL;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->users_fd >= 0)
		close(s->users_fd);
	if (s->blobfd >= 0)
		close(s->blobfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->dir);
	free(s);
}

void store_closep(struct store **s)
{
	store_close(*s);
	*s = NULL;
}

/* ---- blobs ---- */

static const char *digest_hex(const char *digest)
{
	return digest + 7;
}

char *store_blob_path(struct store *s, const char *digest)
{
	if (!digest_is_valid(digest))
		return path_join(s->dir, "blobs/sha256/.invalid-digest");
	return xasprintf("%s/blobs/sha256/%s", s->dir, digest_hex(digest));
}

bool store_has_blob(struct store *s, const char *digest)
{
	struct stat st;
	return digest_is_valid(digest) && fstatat(s->blobfd, digest_hex(digest), &st, 0) == 0 &&
	       S_ISREG(st.st_mode);
}

int64_t store_blob_size(struct store *s, const char *digest)
{
	struct stat st;
	if (!digest_is_valid(digest) || fstatat(s->blobfd, digest_hex(digest), &st, 0) < 0 ||
	    !S_ISREG(st.st_mode))
		return -1;
	return (int64_t)st.st_size;
}

int store_blob_open(struct store *s, const char *digest, struct kiln_error **err)
{
	if (!digest_is_valid(digest))
		return kiln_error_make(err, 0, "invalid digest `%.80s`", digest ? digest : "");
	int fd = openat(s->blobfd, digest_hex(digest), O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return kiln_error_make(err, 0, "blob %s is not in the store `%s`", digest,
					       s->dir);
		return kiln_error_make(err, errno, "open blob %s in `%s`", digest, s->dir);
	}
	return fd;
}

/* Hashes the rest of FD into H; returns bytes read or -1. */
static int64_t hash_fd(int fd, struct sha256 *h, struct kiln_error **err)
{
	cleanup_free char *buf = xmalloc(HASH_BUFSZ);
	int64_t total = 0;
	for (;;) {
		ssize_t r = read(fd, buf, HASH_BUFSZ);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return kiln_error_make(err, errno, "read");
		}
		if (r == 0)
			return total;
		sha256_update(h, buf, (size_t)r);
		total += r;
	}
}

char *store_blob_read(struct store *s, const char *digest, size_t max, size_t *len,
		      struct kiln_error **err)
{
	cleanup_close int fd = store_blob_open(s, digest, err);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		kiln_error_make(err, errno, "stat blob %s", digest);
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		kiln_error_make(err, 0, "blob %s is %lld bytes, more than the limit of %zu", digest,
				(long long)st.st_size, max);
		return NULL;
	}
	size_t n = 0;
	cleanup_free char *data = read_fd(fd, max, &n, err);
	if (data == NULL) {
		kiln_error_wrap(err, "blob %s", digest);
		return NULL;
	}
	char got[DIGEST_STRLEN];
	sha256_digest(data, n, got);
	if (strcmp(got, digest) != 0) {
		kiln_error_make(
		    err, 0, "blob %s in `%s`: digest mismatch (got %s); run `kiln cache verify`",
		    digest, s->dir, got);
		return NULL;
	}
	if (len)
		*len = n;
	return steal_pointer(&data);
}

int store_blob_verify(struct store *s, const char *digest, struct kiln_error **err)
{
	cleanup_close int fd = store_blob_open(s, digest, err);
	if (fd < 0)
		return -1;
	struct sha256 h;
	sha256_init(&h);
	if (hash_fd(fd, &h, err) < 0) {
		sha256_abort(&h);
		return kiln_error_wrap(err, "blob %s", digest);
	}
	char got[DIGEST_STRLEN];
	sha256_final_digest(&h, got);
	if (strcmp(got, digest) != 0)
		return kiln_error_make(err, 0, "blob %s: digest mismatch (got %s)", digest, got);
	return 0;
}

struct blob_reader {
	int fd;
	char digest[DIGEST_STRLEN];
	struct sha256 h;
	bool hashing;
	uint64_t offset, size;
};

struct blob_reader *store_blob_reader_open(struct store *s, const char *digest,
					   struct kiln_error **err)
{
	int fd = store_blob_open(s, digest, err);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		kiln_error_make(err, errno, "stat blob %s", digest);
		close(fd);
		return NULL;
	}
	struct blob_reader *r = xcalloc(1, sizeof *r);
	r->fd = fd;
	memcpy(r->digest, digest, DIGEST_STRLEN);
	sha256_init(&r->h);
	r->hashing = true;
	r->size = (uint64_t)st.st_size;
	return r;
}

ssize_t blob_reader_read(struct blob_reader *r, void *buf, size_t len, struct kiln_error **err)
{
	for (;;) {
		ssize_t n = read(r->fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_make(err, errno, "read blob %s", r->digest);
		if (n > 0) {
			if (!r->hashing)
				return kiln_error_make(err, 0, "blob %s grew while being read",
						       r->digest);
			sha256_update(&r->h, buf, (size_t)n);
			r->offset += (uint64_t)n;
			return n;
		}
		if (r->hashing) {
			char got[DIGEST_STRLEN];
			sha256_final_digest(&r->h, got);
			r->hashing = false;
			if (strcmp(got, r->digest) != 0)
				return kiln_error_make(
				    err, 0,
				    "blob %s: digest mismatch (got %s); run `kiln "
				    "cache verify`",
				    r->digest, got);
		}
		return 0;
	}
}

uint64_t blob_reader_offset(const struct blob_reader *r)
{
	return r->offset;
}

uint64_t blob_reader_size(const struct blob_reader *r)
{
	return r->size;
}

void blob_reader_close(struct blob_reader *r)
{
	if (r == NULL)
		return;
	if (r->hashing)
		sha256_abort(&r->h);
	close(r->fd);
	free(r);
}

int store_blob_remove(struct store *s, const char *digest, struct kiln_error **err)
{
	if (!digest_is_valid(digest))
		return kiln_error_make(err, 0, "invalid digest `%.80s`", digest ? digest : "");
	if (unlinkat(s->blobfd, digest_hex(digest), 0) < 0 && errno != ENOENT)
		return kiln_error_make(err, errno, "remove blob %s", digest);
	return 0;
}

static struct blob_writer *writer_new(struct store *s, int fd, char *name)
{
	struct blob_writer *w = xcalloc(1, sizeof *w);
	w->s = s;
	w->fd = fd;
	w->name = name;
	sha256_init(&w->h);
	w->hashing = true;
	return w;
}

struct blob_writer *store_blob_create(struct store *s, struct kiln_error **err)
{
	if (s->tmpfile_ok) {
		int fd = openat(s->blobfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
		if (fd >= 0)
			return writer_new(s, fd, NULL);
		if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT) {
			kiln_error_make(err, errno, "create temp blob in `%s/blobs/sha256`",
					s->dir);
			return NULL;
		}
		s->tmpfile_ok = false;
	}
	cleanup_free char *path = xasprintf("%s/blobs/sha256/.tmp-XXXXXX", s->dir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		kiln_error_make(err, errno, "create temp blob in `%s/blobs/sha256`", s->dir);
		return NULL;
	}
	/* The lock tells store_clean_temp that a live writer owns the file. */
	if (fchmod(fd, 0644) < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0) {
		kiln_error_make(err, errno, "prepare temp blob `%s`", path);
		unlink(path);
		close(fd);
		return NULL;
	}
	return writer_new(s, fd, xstrdup(strrchr(path, '/') + 1));
}

struct blob_writer *store_blob_resume(struct store *s, const char *expected,
				      struct kiln_error **err)
{
	if (!digest_is_valid(expected)) {
		kiln_error_make(err, 0, "invalid digest `%.80s`", expected ? expected : "");
		return NULL;
	}
	char *name = xasprintf(".partial-%s", digest_hex(expected));
	int fd = openat(s->blobfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		kiln_error_make(err, errno, "open partial blob %s", expected);
		free(name);
		return NULL;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno == EWOULDBLOCK ? EBUSY : errno;
		kiln_error_make(err, e, "partial blob %s is being written by another process",
				expected);
		close(fd);
		free(name);
		return NULL;
	}
	struct blob_writer *w = writer_new(s, fd, name);
	w->keep_on_abort = true;
	int64_t n = hash_fd(fd, &w->h, err);
	if (n < 0) {
		kiln_error_wrap(err, "partial blob %s", expected);
		blob_writer_abort(w);
		return NULL;
	}
	w->size = (uint64_t)n;
	return w;
}

int blob_writer_write(struct blob_writer *w, const void *buf, size_t len, struct kiln_error **err)
{
	if (write_all(w->fd, buf, len, err) < 0)
		return kiln_error_wrap(err, "write blob to `%s`", w->s->dir);
	sha256_update(&w->h, buf, len);
	w->size += len;
	return 0;
}

uint64_t blob_writer_size(const struct blob_writer *w)
{
	return w->size;
}

int blob_writer_truncate(struct blob_writer *w, uint64_t size, struct kiln_error **err)
{
	if (size > w->size)
		return kiln_error_make(err, EINVAL, "cannot truncate a blob writer forwards");
	if (ftruncate(w->fd, (off_t)size) < 0 || lseek(w->fd, 0, SEEK_SET) < 0)
		return kiln_error_make(err, errno, "truncate temp blob");
	sha256_abort(&w->h);
	sha256_init(&w->h);
	int64_t n = hash_fd(w->fd, &w->h, err);
	if (n < 0)
		return kiln_error_wrap(err, "re-read temp blob");
	w->size = (uint64_t)n;
	return 0;
}

static void writer_free(struct blob_writer *w, bool unlink_temp)
{
	if (w->hashing)
		sha256_abort(&w->h);
	if (w->name && unlink_temp)
		unlinkat(w->s->blobfd, w->name, 0);
	if (w->fd >= 0)
		close(w->fd);
	free(w->name);
	free(w);
}

void blob_writer_abort(struct blob_writer *w)
{
	if (w)
		writer_free(w, !w->keep_on_abort);
}

int blob_writer_commit(struct blob_writer *w, const char *expected, char digest_out[DIGEST_STRLEN],
		       struct kiln_error **err)
{
	char got[DIGEST_STRLEN];
	struct store *s = w->s;
	sha256_final_digest(&w->h, got);
	w->hashing = false;
	if (expected && strcmp(got, expected) != 0) {
		/* A resumable file that went wrong is useless: drop it too. */
		writer_free(w, true);
		if (!digest_is_valid(expected))
			return kiln_error_make(err, 0, "invalid expected digest `%.80s`", expected);
		return kiln_error_make(err, 0, "digest mismatch (got %s)", got);
	}
	if (fsync(w->fd) < 0) {
		int e = errno;
		writer_free(w, true);
		return kiln_error_make(err, e, "fsync blob %s", got);
	}
	const char *hex = digest_hex(got);
	if (w->name == NULL) {
		char proc[64];
		snprintf(proc, sizeof proc, "/proc/self/fd/%d", w->fd);
		if (linkat(AT_FDCWD, proc, s->blobfd, hex, AT_SYMLINK_FOLLOW) < 0 &&
		    errno != EEXIST) {
			int e = errno;
			writer_free(w, true);
			return kiln_error_make(err, e, "link blob %s into `%s`", got, s->dir);
		}
	} else if (renameat(s->blobfd, w->name, s->blobfd, hex) < 0) {
		int e = errno;
		writer_free(w, true);
		return kiln_error_make(err, e, "rename blob %s into `%s`", got, s->dir);
	}
	fsync(s->blobfd);
	writer_free(w, false);
	if (digest_out)
		memcpy(digest_out, got, DIGEST_STRLEN);
	return 0;
}

int store_put_blob(struct store *s, const void *data, size_t len, char digest_out[DIGEST_STRLEN],
		   struct kiln_error **err)
{
	char d[DIGEST_STRLEN];
	sha256_digest(data, len, d);
	if (!store_has_blob(s, d)) {
		struct blob_writer *w = store_blob_create(s, err);
		if (w == NULL)
			return -1;
		if (blob_writer_write(w, data, len, err) < 0) {
			blob_writer_abort(w);
			return -1;
		}
		if (blob_writer_commit(w, d, NULL, err) < 0)
			return -1;
	}
	if (digest_out)
		memcpy(digest_out, d, DIGEST_STRLEN);
	return 0;
}

/* ---- index.json ---- */

/* Reads index.json; the caller holds .lock.  A missing file is an empty
 * index. */
static json_t *index_read_locked(struct store *s, struct kiln_error **err)
{
	cleanup_free char *path = path_join(s->dir, "index.json");
	if (access(path, F_OK) < 0 && errno == ENOENT)
		return oci_json_parse(empty_index, strlen(empty_index), "index.json", err);
	size_t n = 0;
	cleanup_free char *data = read_file(path, INDEX_MAX, &n, err);
	if (data == NULL)
		return NULL;
	json_t *j = oci_json_parse(data, n, path, err);
	if (j == NULL)
		return NULL;
	if (!json_is_object(j)) {
		json_decref(j);
		kiln_error_make(err, 0, "`%s` is not a JSON object", path);
		return NULL;
	}
	json_t *m = json_object_get(j, "manifests");
	if (m == NULL) {
		json_object_set_new(j, "manifests", json_array());
	} else if (!json_is_array(m)) {
		json_decref(j);
		kiln_error_make(err, 0, "`%s`: \"manifests\" is not an array", path);
		return NULL;
	}
	return j;
}

static int index_write_locked(struct store *s, json_t *index, struct kiln_error **err)
{
	cleanup_free char *path = path_join(s->dir, "index.json");
	char *data = json_dumps(index, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (data == NULL)
		oom();
	cleanup_free char *text = xasprintf("%s\n", data);
	free(data);
	return write_file_atomic(path, text, strlen(text), 0644, err);
}

static const char *entry_name(json_t *entry)
{
	return json_string_value(
	    json_object_get(json_object_get(entry, "annotations"), OCI_ANNOTATION_REF_NAME));
}

json_t *store_index(struct store *s, struct kiln_error **err)
{
	cleanup_close int lock = store_lock(s, ".lock", LOCK_SH, err);
	if (lock < 0)
		return NULL;
	return index_read_locked(s, err);
}

int store_tag(struct store *s, const char *name, const char *digest, const char *media_type,
	      int64_t size, struct kiln_error **err)
{
	if (name == NULL || *name == '\0')
		return kiln_error_make(err, 0, "tag: empty name");
	if (!digest_is_valid(digest))
		return kiln_error_make(err, 0, "tag %s: invalid digest `%.80s`", name,
				       digest ? digest : "");
	if (media_type == NULL || size < 0)
		return kiln_error_make(err, 0, "tag %s: media type and size required", name);
	cleanup_close int lock = store_lock(s, ".lock", LOCK_EX, err);
	if (lock < 0)
		return -1;
	cleanup_json json_t *index = index_read_locked(s, err);
	if (index == NULL)
		return kiln_error_wrap(err, "tag %s", name);
	json_t *manifests = json_object_get(index, "manifests");
	bool done = false, changed = false;
	for (size_t i = 0; i < json_array_size(manifests);) {
		json_t *e = json_array_get(manifests, i);
		const char *n = entry_name(e);
		if (n == NULL || strcmp(n, name) != 0) {
			i++;
			continue;
		}
		if (done) {
			json_array_remove(manifests, i);
			changed = true;
			continue;
		}
		const char *old = json_string_value(json_object_get(e, "digest"));
		const char *old_type = json_string_value(json_object_get(e, "mediaType"));
		json_t *old_size = json_object_get(e, "size");
		if (old == NULL || strcmp(old, digest) != 0 || old_type == NULL ||
		    strcmp(old_type, media_type) != 0 || !json_is_integer(old_size) ||
		    json_integer_value(old_size) != size)
			changed = true;
		if (old == NULL || strcmp(old, digest) != 0) {
			/* Fields describing the old target are wrong for the new one. */
			json_object_del(e, "platform");
			json_object_del(e, "urls");
			json_object_del(e, "data");
			json_object_del(e, "artifactType");
		}
		json_object_set_new(e, "mediaType", json_string(media_type));
		json_object_set_new(e, "digest", json_string(digest));
		json_object_set_new(e, "size", json_integer(size));
		done = true;
		i++;
	}
	if (!done) {
		json_t *e = json_pack("{s:s, s:s, s:I, s:{s:s}}", "mediaType", media_type, "digest",
				      digest, "size", (json_int_t)size, "annotations",
				      OCI_ANNOTATION_REF_NAME, name);
		if (e == NULL)
			oom();
		json_array_append_new(manifests, e);
		changed = true;
	}
	/* Rebuilds re-tag the same target: leave index.json (and its fsync) alone. */
	if (changed && index_write_locked(s, index, err) < 0)
		return kiln_error_wrap(err, "tag %s", name);
	return 0;
}

int store_untag(struct store *s, const char *name, struct kiln_error **err)
{
	cleanup_close int lock = store_lock(s, ".lock", LOCK_EX, err);
	if (lock < 0)
		return -1;
	cleanup_json json_t *index = index_read_locked(s, err);
	if (index == NULL)
		return kiln_error_wrap(err, "untag %s", name);
	json_t *manifests = json_object_get(index, "manifests");
	int removed = 0;
	for (size_t i = 0; i < json_array_size(manifests);) {
		const char *n = entry_name(json_array_get(manifests, i));
		if (n && strcmp(n, name) == 0) {
			json_array_remove(manifests, i);
			removed = 1;
		} else {
			i++;
		}
	}
	if (removed && index_write_locked(s, index, err) < 0)
		return kiln_error_wrap(err, "untag %s", name);
	return removed;
}

int store_lookup(struct store *s, const char *name, char digest_out[DIGEST_STRLEN],
		 struct kiln_error **err)
{
	cleanup_json json_t *index = store_index(s, err);
	if (index == NULL)
		return kiln_error_wrap(err, "look up %s", name);
	json_t *manifests = json_object_get(index, "manifests");
	size_t i;
	json_t *e;
	json_array_foreach(manifests, i, e)
	{
		const char *n = entry_name(e);
		if (n == NULL || strcmp(n, name) != 0)
			continue;
		const char *d = json_string_value(json_object_get(e, "digest"));
		if (!digest_is_valid(d))
			return kiln_error_make(err, 0,
					       "`%s/index.json`: entry %s has digest `%.80s`, "
					       "not sha256:<64 hex>",
					       s->dir, name, d ? d : "");
		memcpy(digest_out, d, DIGEST_STRLEN);
		return 1;
	}
	return 0;
}

/* ---- reachability, verification, garbage collection ---- */

/* Adds D to SET (a JSON object used as a set) and to the work list TODO;
 * the value is the descriptor's media type (or null). */
static void mark(json_t *set, json_t *todo, const char *d, const char *media_type)
{
	if (!digest_is_valid(d) || json_object_get(set, d))
		return;
	json_object_set_new(set, d, media_type ? json_string(media_type) : json_null());
	json_array_append_new(todo, json_string(d));
}

/* Takes the last digest off the work list TODO into D; false when empty. */
static bool todo_pop(json_t *todo, char d[DIGEST_STRLEN])
{
	size_t n = json_array_size(todo);
	if (n == 0)
		return false;
	snprintf(d, DIGEST_STRLEN, "%s", json_string_value(json_array_get(todo, n - 1)));
	json_array_remove(todo, n - 1);
	return true;
}

static bool may_be_manifest(const char *media_type)
{
	if (media_type == NULL)
		return true;
	if (oci_is_index(media_type) || oci_is_manifest(media_type))
		return true;
	return oci_layer_compression(media_type) == OCI_COMPRESSION_UNKNOWN &&
	       strcmp(media_type, OCI_MEDIA_CONFIG) != 0 &&
	       strcmp(media_type, DOCKER_MEDIA_CONFIG) != 0;
}

/* The children of a manifest or index document. */
static void mark_children(json_t *doc, json_t *set, json_t *todo)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(doc, "manifests"), i, e)
	    mark(set, todo, json_string_value(json_object_get(e, "digest")),
		 json_string_value(json_object_get(e, "mediaType")));
	json_array_foreach(json_object_get(doc, "layers"), i, e)
	    mark(set, todo, json_string_value(json_object_get(e, "digest")),
		 json_string_value(json_object_get(e, "mediaType")));
	json_t *c = json_object_get(doc, "config");
	mark(set, todo, json_string_value(json_object_get(c, "digest")),
	     json_string_value(json_object_get(c, "mediaType")));
	json_t *subj = json_object_get(doc, "subject");
	mark(set, todo, json_string_value(json_object_get(subj, "digest")),
	     json_string_value(json_object_get(subj, "mediaType")));
}

/* The set of digests reachable from INDEX: a JSON object digest -> media
 * type.  Blobs that cannot be read or parsed are in the set but not followed. */
static json_t *reachable(struct store *s, json_t *index)
{
	json_t *set = json_object();
	cleanup_json json_t *todo = json_array();
	mark_children(index, set, todo);
	char d[DIGEST_STRLEN];
	while (todo_pop(todo, d)) {
		const char *mt = json_string_value(json_object_get(set, d));
		int64_t size = store_blob_size(s, d);
		if (size < 0 || (uint64_t)size > OCI_MANIFEST_MAX || !may_be_manifest(mt))
			continue;
		struct kiln_error *err = NULL;
		size_t n = 0;
		cleanup_free char *data = store_blob_read(s, d, OCI_MANIFEST_MAX, &n, &err);
		kiln_error_release(&err);
		if (data == NULL)
			continue;
		json_error_t je;
		cleanup_json json_t *doc = json_loadb(data, n, 0, &je);
		if (json_is_object(doc))
			mark_children(doc, set, todo);
	}
	return set;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int store_walk_referenced(struct store *s, void (*fn)(const char *digest, void *arg), void *arg,
			  struct kiln_error **err)
{
	cleanup_close int lock = store_lock(s, ".lock", LOCK_SH, err);
	if (lock < 0)
		return -1;
	cleanup_json json_t *index = index_read_locked(s, err);
	if (index == NULL)
		return -1;
	cleanup_json json_t *set = reachable(s, index);
	size_t n = json_object_size(set), i = 0;
	cleanup_free const char **keys = xcalloc(n + 1, sizeof *keys);
	const char *k;
	json_t *v;
	json_object_foreach(set, k, v) keys[i++] = k;
	qsort(keys, n, sizeof *keys, cmp_str);
	for (i = 0; i < n; i++)
		fn(keys[i], arg);
	return 0;
}

static bool is_hex64(const char *name)
{
	if (strlen(name) != SHA256_HEXLEN)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Calls FN(S, NAME, DIGEST, ARG, ERR) for every blob of S (the 64-hex names
 * in blobs/sha256) until FN returns < 0 (*ERR set).  Returns 0 or -1. */
static int for_each_blob(struct store *s,
			 int (*fn)(struct store *s, const char *name, const char *digest, void *arg,
				   struct kiln_error **err),
			 void *arg, struct kiln_error **err)
{
	int dup_fd = dup(s->blobfd);
	DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
	if (d == NULL) {
		int e = errno;
		if (dup_fd >= 0)
			close(dup_fd);
		return kiln_error_make(err, e, "open `%s/blobs/sha256`", s->dir);
	}
	rewinddir(d);
	struct dirent *de;
	int rc = 0;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (!is_hex64(de->d_name))
			continue;
		char digest[DIGEST_STRLEN];
		snprintf(digest, sizeof digest, "sha256:%.64s", de->d_name);
		rc = fn(s, de->d_name, digest, arg, err);
	}
	closedir(d);
	return rc;
}

/* Removes stale temp files in DIRFD (DIRPATH) whose names match. */
static int clean_temp_in(int dirfd, const char *dirpath, bool blobs, int64_t min_age, bool dry_run,
			 void (*fn)(const char *, int64_t, void *), void *arg,
			 struct kiln_error **err)
{
	int dup_fd = dup(dirfd);
	if (dup_fd < 0)
		return kiln_error_make(err, errno, "dup");
	DIR *d = fdopendir(dup_fd);
	if (d == NULL) {
		close(dup_fd);
		return kiln_error_make(err, errno, "open `%s`", dirpath);
	}
	rewinddir(d);
	time_t now = time(NULL);
	int count = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		bool temp = blobs ? (str_has_prefix(n, ".tmp-") || str_has_prefix(n, ".partial-"))
				  : (strstr(n, ".tmp-") != NULL);
		if (!temp)
			continue;
		struct stat st;
		if (fstatat(dirfd, n, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if ((int64_t)(now - st.st_mtime) < min_age)
			continue;
		/* A live writer holds an flock on its temp file. */
		int fd = openat(dirfd, n, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;
		bool busy = flock(fd, LOCK_EX | LOCK_NB) < 0;
		if (!busy && !dry_run)
			unlinkat(dirfd, n, 0);
		close(fd);
		if (busy)
			continue;
		count++;
		if (fn) {
			cleanup_free char *p = path_join(dirpath, n);
			fn(p, (int64_t)st.st_size, arg);
		}
	}
	closedir(d);
	return count;
}

int store_clean_temp(struct store *s, int64_t min_age, bool dry_run,
		     void (*fn)(const char *path, int64_t size, void *arg), void *arg,
		     struct kiln_error **err)
{
	cleanup_free char *blobs = path_join(s->dir, "blobs/sha256");
	int a = clean_temp_in(s->blobfd, blobs, true, min_age, dry_run, fn, arg, err);
	if (a < 0)
		return -1;
	int b = clean_temp_in(s->dirfd, s->dir, false, min_age, dry_run, fn, arg, err);
	if (b < 0)
		return -1;
	return a + b;
}

struct gc_state {
	json_t *reachable;
	bool dry_run;
	int count;
	void (*fn)(const char *path, int64_t size, void *arg);
	void *arg;
};

/* Removes blob NAME unless it is reachable. */
static int gc_blob(struct store *s, const char *name, const char *digest, void *arg,
		   struct kiln_error **err)
{
	struct gc_state *g = arg;
	if (json_object_get(g->reachable, digest))
		return 0;
	struct stat st;
	if (fstatat(s->blobfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	if (!g->dry_run && unlinkat(s->blobfd, name, 0) < 0)
		return kiln_error_make(err, errno, "remove blob %s", digest);
	g->count++;
	if (g->fn) {
		cleanup_free char *p = store_blob_path(s, digest);
		g->fn(p, (int64_t)st.st_size, g->arg);
	}
	return 0;
}

static int gc_locked(struct store *s, bool dry_run, bool clear, int64_t temp_min_age,
		     void (*fn)(const char *path, int64_t size, void *arg), void *arg,
		     struct kiln_error **err)
{
	cleanup_close int lock = store_lock(s, ".lock", LOCK_EX, err);
	if (lock < 0)
		return -1;
	cleanup_json json_t *index = index_read_locked(s, err);
	if (index == NULL)
		return -1;
	if (clear) {
		json_object_set_new(index, "manifests", json_array());
		if (!dry_run && index_write_locked(s, index, err) < 0)
			return -1;
	}
	cleanup_json json_t *set = reachable(s, index);
	int count = store_clean_temp(s, temp_min_age, dry_run, fn, arg, err);
	if (count < 0)
		return -1;
	struct gc_state g = {
	    .reachable = set, .dry_run = dry_run, .count = count, .fn = fn, .arg = arg};
	if (for_each_blob(s, gc_blob, &g, err) < 0)
		return -1;
	if (!dry_run)
		fsync(s->blobfd);
	return g.count;
}

static int gc_exclusive(struct store *s, bool dry_run, bool clear, int64_t temp_min_age,
			void (*fn)(const char *path, int64_t size, void *arg), void *arg,
			struct kiln_error **err)
{
	/* Converting our shared lock drops it first; take it back whatever
	 * happens. */
	if (flock(s->users_fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		flock(s->users_fd, LOCK_SH);
		if (e == EWOULDBLOCK)
			return kiln_error_make(err, 0,
					       "store `%s` is in use by another kiln process; "
					       "try again when it has finished",
					       s->dir);
		return kiln_error_make(err, e, "lock store `%s`", s->dir);
	}
	int count = gc_locked(s, dry_run, clear, temp_min_age, fn, arg, err);
	flock(s->users_fd, LOCK_SH);
	return count;
}

int store_gc(struct store *s, bool dry_run, int64_t temp_min_age,
	     void (*fn)(const char *path, int64_t size, void *arg), void *arg,
	     struct kiln_error **err)
{
	return gc_exclusive(s, dry_run, false, temp_min_age, fn, arg, err);
}

int store_clear(struct store *s, void (*fn)(const char *path, int64_t size, void *arg), void *arg,
		struct kiln_error **err)
{
	return gc_exclusive(s, false, true, 0, fn, arg, err);
}

int64_t store_image_size(struct store *s, const char *root, const char *media_type)
{
	cleanup_json json_t *index =
	    json_pack("{s:[{s:s, s:s?}]}", "manifests", "digest", root, "mediaType", media_type);
	if (index == NULL)
		return -1;
	cleanup_json json_t *set = reachable(s, index);
	int64_t total = 0;
	const char *k;
	json_t *v;
	json_object_foreach(set, k, v)
	{
		int64_t n = store_blob_size(s, k);
		if (n > 0)
			total += n;
	}
	return total;
}

/* Checks that blob D of a manifest exists. */
static int need_blob(struct store *s, const char *owner, json_t *desc, const char *role,
		     void (*fn)(const char *, const char *, void *), void *arg)
{
	const char *d = json_string_value(json_object_get(desc, "digest"));
	if (!digest_is_valid(d)) {
		cleanup_free char *why =
		    xasprintf("%s descriptor has an invalid digest `%.80s`", role, d ? d : "");
		fn(owner, why, arg);
		return 1;
	}
	if (!store_has_blob(s, d)) {
		cleanup_free char *why = xasprintf("%s %s is missing", role, d);
		fn(owner, why, arg);
		return 1;
	}
	return 0;
}

struct verify_state {
	void (*fn)(const char *what, const char *why, void *arg);
	void *arg;
	int problems;
};

/* Re-hashes one blob; a mismatch is a problem. */
static int verify_blob(struct store *s, const char *name, const char *digest, void *arg,
		       struct kiln_error **err)
{
	(void)name;
	(void)err;
	struct verify_state *v = arg;
	struct kiln_error *e = NULL;
	if (store_blob_verify(s, digest, &e) < 0) {
		v->fn(digest, e->msg, v->arg);
		v->problems++;
	}
	kiln_error_release(&e);
	return 0;
}

static void ignore_problem(const char *what, const char *why, void *arg)
{
	(void)what;
	(void)why;
	(void)arg;
}

int store_verify(struct store *s, void (*fn)(const char *what, const char *why, void *arg),
		 void *arg, struct kiln_error **err)
{
	if (fn == NULL)
		fn = ignore_problem;
	int problems = 0;
	cleanup_json json_t *index = store_index(s, err);
	if (index == NULL)
		return -1;

	/* 1. Every blob's content matches its name. */
	struct verify_state v = {.fn = fn, .arg = arg};
	if (for_each_blob(s, verify_blob, &v, err) < 0)
		return -1;
	problems += v.problems;

	/* 2. Roots exist; manifests present are complete; indexes present
	 * have at least one platform. */
	cleanup_json json_t *set = json_object();
	cleanup_json json_t *todo = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(index, "manifests"), i, e)
	{
		const char *name = entry_name(e);
		cleanup_free char *owner =
		    xasprintf("index.json entry %s", name ? name : "(unnamed)");
		if (need_blob(s, owner, e, "root", fn, arg)) {
			problems++;
			continue;
		}
		mark(set, todo, json_string_value(json_object_get(e, "digest")),
		     json_string_value(json_object_get(e, "mediaType")));
	}
	char dg[DIGEST_STRLEN];
	while (todo_pop(todo, dg)) {
		if (!store_has_blob(s, dg))
			continue;
		const char *mt = json_string_value(json_object_get(set, dg));
		if (!may_be_manifest(mt))
			continue;
		struct kiln_error *re = NULL;
		size_t n = 0;
		cleanup_free char *data = store_blob_read(s, dg, OCI_MANIFEST_MAX, &n, &re);
		if (data == NULL) {
			/* A mismatch was reported above already. */
			if (store_blob_verify(s, dg, NULL) == 0) {
				fn(dg, re->msg, arg);
				problems++;
			}
			kiln_error_release(&re);
			continue;
		}
		json_error_t je;
		cleanup_json json_t *doc = json_loadb(data, n, 0, &je);
		if (!json_is_object(doc)) {
			if (mt && (oci_is_index(mt) || oci_is_manifest(mt))) {
				fn(dg, "not a JSON object", arg);
				problems++;
			}
			continue;
		}
		const char *dmt = oci_document_media_type(doc);
		if (oci_is_manifest(dmt)) {
			problems +=
			    need_blob(s, dg, json_object_get(doc, "config"), "config", fn, arg);
			size_t j;
			json_t *l;
			json_array_foreach(json_object_get(doc, "layers"), j, l) problems +=
			    need_blob(s, dg, l, "layer", fn, arg);
		} else if (oci_is_index(dmt)) {
			size_t j, present = 0;
			json_t *m;
			json_t *ms = json_object_get(doc, "manifests");
			json_array_foreach(ms, j, m)
			{
				const char *md = json_string_value(json_object_get(m, "digest"));
				if (store_has_blob(s, md))
					present++;
				mark(set, todo, md,
				     json_string_value(json_object_get(m, "mediaType")));
			}
			if (json_array_size(ms) > 0 && present == 0) {
				fn(dg, "index has none of its manifests in the store", arg);
				problems++;
			}
		}
	}
	return problems;
}
