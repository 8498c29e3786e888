/* Import and export of OCI layouts and `docker save` archives (see
 * store_archive.h). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "oci.h"
#include "ref.h"
#include "store_archive.h"
#include "util.h"

#define COPY_BUFSZ     (256 * 1024)
#define SMALL_FILE_MAX ((size_t)64 << 20)

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define cleanup_archive_read_local __attribute__((cleanup(archive_read_freep)))

static void archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}
#define cleanup_archive_write_local __attribute__((cleanup(archive_write_freep)))

/* The name an imported image gets from RAW (a reference is normalised). */
static char *normalise_name(const char *raw)
{
	struct image_ref r;
	if (ref_parse(raw, &r, NULL) < 0)
		return xstrdup(raw);
	char *s = ref_string(&r);
	ref_release(&r);
	return s;
}

/* The name of an OCI index entry, or NULL when it has none. */
static char *oci_entry_name(json_t *entry)
{
	json_t *ann = json_object_get(entry, "annotations");
	const char *c = json_string_value(json_object_get(ann, "io.containerd.image.name"));
	if (c && *c)
		return normalise_name(c);
	const char *r = json_string_value(json_object_get(ann, OCI_ANNOTATION_REF_NAME));
	if (r == NULL || *r == '\0')
		return NULL;
	if (strpbrk(r, "/:@"))
		return normalise_name(r);
	return xstrdup(r);
}

/* ---- blob sources ---- */

/* Where an import reads a blob from: an OCI layout directory (SRC_DIR set)
 * or the store itself (blobs already streamed in from a tar). */
struct source {
	const char *dir; /* NULL: the blobs are already in the store */
};

static int source_blob_path(const struct source *src, const char *digest, char **out)
{
	*out = xasprintf("%s/blobs/sha256/%s", src->dir, digest + 7);
	return 0;
}

/* Copies blob DIGEST from SRC into the store (verified) unless present. */
static int copy_blob(struct store *s, const struct source *src, const char *digest,
		     struct kiln_error **err)
{
	if (!digest_is_valid(digest))
		return kiln_error_make(err, 0, "invalid digest `%.80s`",
				       digest ? digest : "(none)");
	if (store_has_blob(s, digest))
		return 0;
	if (src->dir == NULL)
		return kiln_error_make(err, 0, "blob %s is missing from the archive", digest);
	cleanup_free char *path = NULL;
	source_blob_path(src, digest, &path);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", path);
	struct blob_writer *w = store_blob_create(s, err);
	if (w == NULL)
		return -1;
	cleanup_free char *buf = xmalloc(COPY_BUFSZ);
	for (;;) {
		ssize_t n = read(fd, buf, COPY_BUFSZ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			blob_writer_abort(w);
			return kiln_error_make(err, errno, "read `%s`", path);
		}
		if (n == 0)
			break;
		if (blob_writer_write(w, buf, (size_t)n, err) < 0) {
			blob_writer_abort(w);
			return -1;
		}
	}
	if (blob_writer_commit(w, digest, NULL, err) < 0)
		return kiln_error_wrap(err, "`%s`", path);
	return 0;
}

/* Reads a JSON manifest/index blob from SRC (or the store), checking its
 * digest.  Returns NULL with *err set on failure, or NULL without error
 * (*absent = true) when the blob is not in SRC. */
static json_t *source_read_json(struct store *s, const struct source *src, const char *digest,
				bool *absent, struct kiln_error **err)
{
	*absent = false;
	cleanup_free char *data = NULL;
	size_t n = 0;
	if (src->dir && !store_has_blob(s, digest)) {
		cleanup_free char *path = NULL;
		source_blob_path(src, digest, &path);
		if (access(path, F_OK) < 0) {
			*absent = true;
			return NULL;
		}
		data = read_file(path, OCI_MANIFEST_MAX, &n, err);
		if (data == NULL)
			return NULL;
		char got[DIGEST_STRLEN];
		sha256_digest(data, n, got);
		if (strcmp(got, digest) != 0) {
			kiln_error_make(err, 0, "`%s`: digest mismatch (got %s)", path, got);
			return NULL;
		}
	} else {
		if (!store_has_blob(s, digest)) {
			*absent = true;
			return NULL;
		}
		data = store_blob_read(s, digest, OCI_MANIFEST_MAX, &n, err);
		if (data == NULL)
			return NULL;
	}
	return oci_json_parse(data, n, digest, err);
}

/* Copies the graph under descriptor DESC from SRC: an index and those of
 * its manifests present, a manifest and all its blobs. */
static int copy_graph(struct store *s, const struct source *src, json_t *desc, int depth,
		      struct kiln_error **err)
{
	struct oci_descriptor d;
	if (oci_descriptor_parse(desc, &d, err) < 0)
		return -1;
	if (depth > 4)
		return kiln_error_make(err, 0, "indexes nested too deep at %s", d.digest);
	if (oci_layer_compression(d.media_type) != OCI_COMPRESSION_UNKNOWN ||
	    strcmp(d.media_type, OCI_MEDIA_CONFIG) == 0 ||
	    strcmp(d.media_type, DOCKER_MEDIA_CONFIG) == 0)
		return copy_blob(s, src, d.digest, err);
	bool absent;
	cleanup_json json_t *doc = source_read_json(s, src, d.digest, &absent, err);
	if (doc == NULL) {
		if (absent)
			return kiln_error_make(err, 0, "blob %s is missing", d.digest);
		return -1;
	}
	const char *mt = oci_document_media_type(doc);
	if (oci_is_index(mt)) {
		size_t i, present = 0;
		json_t *m;
		json_t *ms = json_object_get(doc, "manifests");
		json_array_foreach(ms, i, m)
		{
			struct oci_descriptor c;
			if (oci_descriptor_parse(m, &c, err) < 0)
				return kiln_error_wrap(err, "index %s", d.digest);
			bool there = store_has_blob(s, c.digest);
			if (!there && src->dir) {
				cleanup_free char *p = NULL;
				source_blob_path(src, c.digest, &p);
				there = access(p, F_OK) == 0;
			}
			if (!there)
				continue; /* a platform that was not pulled */
			if (copy_graph(s, src, m, depth + 1, err) < 0)
				return -1;
			present++;
		}
		if (present == 0 && json_array_size(ms) > 0)
			return kiln_error_make(err, 0, "index %s has none of its manifests",
					       d.digest);
	} else if (oci_is_manifest(mt)) {
		if (copy_blob(s, src,
			      json_string_value(
				  json_object_get(json_object_get(doc, "config"), "digest")),
			      err) < 0)
			return kiln_error_wrap(err, "manifest %s: config", d.digest);
		size_t i;
		json_t *l;
		json_array_foreach(json_object_get(doc, "layers"), i, l)
		{
			const char *ld = json_string_value(json_object_get(l, "digest"));
			if (!digest_is_valid(ld))
				return kiln_error_make(
				    err, 0, "manifest %s: layers[%zu]: bad digest", d.digest, i);
			if (copy_blob(s, src, ld, err) < 0)
				return kiln_error_wrap(err, "manifest %s: layer", d.digest);
		}
	} else {
		return kiln_error_make(err, 0, "%s is neither an index nor a manifest", d.digest);
	}
	return copy_blob(s, src, d.digest, err);
}

/* Imports every entry of an OCI index.json (already parsed). */
static int import_oci_index(struct store *s, const struct source *src, json_t *index,
			    const char *name, store_import_fn fn, void *arg,
			    struct kiln_error **err)
{
	json_t *ms = json_object_get(index, "manifests");
	if (!json_is_array(ms))
		return kiln_error_make(err, 0, "index.json has no \"manifests\" array");
	if (name && json_array_size(ms) != 1)
		return kiln_error_make(err, 0,
				       "the source holds %zu images; a name can be given only for "
				       "one",
				       json_array_size(ms));
	size_t i;
	json_t *e;
	int count = 0;
	json_array_foreach(ms, i, e)
	{
		struct oci_descriptor d;
		if (oci_descriptor_parse(e, &d, err) < 0)
			return kiln_error_wrap(err, "index.json manifests[%zu]", i);
		cleanup_free char *n = name ? normalise_name(name) : oci_entry_name(e);
		if (copy_graph(s, src, e, 0, err) < 0)
			return kiln_error_wrap(err, "import %s", n ? n : d.digest);
		/* Keep the source's type for the root; guess it when absent. */
		if (n) {
			if (store_tag(s, n, d.digest, d.media_type, d.size, err) < 0)
				return -1;
		}
		if (fn)
			fn(n ? n : "(unnamed)", d.digest, arg);
		count++;
	}
	return count;
}

static int import_dir(struct store *s, const char *dir, const char *name, store_import_fn fn,
		      void *arg, struct kiln_error **err)
{
	cleanup_free char *layout = path_join(dir, "oci-layout");
	cleanup_free char *ip = path_join(dir, "index.json");
	if (access(layout, F_OK) < 0 || access(ip, F_OK) < 0)
		return kiln_error_make(err, 0,
				       "`%s` is not an OCI image layout (no oci-layout or "
				       "index.json)",
				       dir);
	size_t n = 0;
	cleanup_free char *data = read_file(ip, SMALL_FILE_MAX, &n, err);
	if (data == NULL)
		return -1;
	cleanup_json json_t *index = oci_json_parse(data, n, ip, err);
	if (index == NULL)
		return -1;
	struct source src = {.dir = dir};
	return import_oci_index(s, &src, index, name, fn, arg, err);
}

/* ---- tar import ---- */

struct tar_file {
	char digest[DIGEST_STRLEN];
	int64_t size;
	enum oci_compression compression;
};

/* Normalises a path inside an archive: no leading "./" or "/", no "."
 * components; ".." is kept literally (it never matches anything we look
 * up).  Caller frees. */
static char *tar_clean_path(const char *p)
{
	char *out = xmalloc(strlen(p) + 1);
	size_t o = 0;
	while (*p) {
		while (*p == '/')
			p++;
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (n == 0)
			break;
		if (!(n == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	out[o] = '\0';
	return out;
}

/* Resolves symlink TARGET found at PATH to a clean archive path. Caller frees. */
static char *tar_resolve_link(const char *path, const char *target)
{
	if (target[0] == '/')
		return tar_clean_path(target);
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		dir[0] = '\0';
	/* Fold "../" against DIR. */
	while (str_has_prefix(target, "../")) {
		target += 3;
		char *ls = strrchr(dir, '/');
		if (ls)
			*ls = '\0';
		else
			dir[0] = '\0';
	}
	cleanup_free char *joined = dir[0] ? xasprintf("%s/%s", dir, target) : xstrdup(target);
	return tar_clean_path(joined);
}

/* Streams the current entry of A into the store.  When EXPECTED is set the
 * content must match it. */
static int tar_entry_to_store(struct store *s, struct archive *a, const char *expected,
			      struct tar_file *f, struct kiln_error **err)
{
	struct blob_writer *w = store_blob_create(s, err);
	if (w == NULL)
		return -1;
	cleanup_free char *buf = xmalloc(COPY_BUFSZ);
	bool first = true;
	f->compression = OCI_COMPRESSION_NONE;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, COPY_BUFSZ);
		if (n < 0) {
			blob_writer_abort(w);
			return kiln_error_make(err, 0, "read archive: %s", archive_error_string(a));
		}
		if (n == 0)
			break;
		if (first && n >= 4) {
			const unsigned char *u = (const unsigned char *)buf;
			if (u[0] == 0x1f && u[1] == 0x8b)
				f->compression = OCI_COMPRESSION_GZIP;
			else if (u[0] == 0x28 && u[1] == 0xb5 && u[2] == 0x2f && u[3] == 0xfd)
				f->compression = OCI_COMPRESSION_ZSTD;
		}
		first = false;
		if (blob_writer_write(w, buf, (size_t)n, err) < 0) {
			blob_writer_abort(w);
			return -1;
		}
	}
	f->size = (int64_t)blob_writer_size(w);
	return blob_writer_commit(w, expected, f->digest, err);
}

static char *tar_entry_to_memory(struct archive *a, size_t max, size_t *len,
				 struct kiln_error **err)
{
	size_t cap = 4096, n = 0;
	cleanup_free char *buf = xmalloc(cap);
	for (;;) {
		if (cap - n < 4096) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		la_ssize_t r = archive_read_data(a, buf + n, cap - n - 1);
		if (r < 0) {
			kiln_error_make(err, 0, "read archive: %s", archive_error_string(a));
			return NULL;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max) {
			kiln_error_make(err, 0, "archive member larger than %zu bytes", max);
			return NULL;
		}
	}
	buf[n] = '\0';
	*len = n;
	return steal_pointer(&buf);
}

static const struct tar_file *tar_lookup(json_t *files, json_t *links, const char *path,
					 struct tar_file *store_space)
{
	cleanup_free char *p = tar_clean_path(path);
	for (int hops = 0; hops < 16; hops++) {
		json_t *f = json_object_get(files, p);
		if (f) {
			const char *d = json_string_value(json_object_get(f, "digest"));
			snprintf(store_space->digest, DIGEST_STRLEN, "%s", d);
			store_space->size = json_integer_value(json_object_get(f, "size"));
			store_space->compression =
			    (enum oci_compression)json_integer_value(json_object_get(f, "c"));
			return store_space;
		}
		const char *t = json_string_value(json_object_get(links, p));
		if (t == NULL)
			return NULL;
		char *next = xstrdup(t);
		free(p);
		p = next;
	}
	return NULL;
}

static const char *docker_layer_type(enum oci_compression c)
{
	switch (c) {
	case OCI_COMPRESSION_GZIP:
		return DOCKER_MEDIA_LAYER_GZIP;
	case OCI_COMPRESSION_ZSTD:
		return DOCKER_MEDIA_LAYER_ZSTD;
	default:
		return DOCKER_MEDIA_LAYER;
	}
}

/* Builds and stores a Docker schema 2 manifest for each image of a
 * `docker save` manifest.json. */
static int import_docker_manifest(struct store *s, json_t *manifest, json_t *files, json_t *links,
				  const char *name, store_import_fn fn, void *arg,
				  struct kiln_error **err)
{
	if (!json_is_array(manifest))
		return kiln_error_make(err, 0, "manifest.json is not an array");
	if (name && json_array_size(manifest) != 1)
		return kiln_error_make(err, 0,
				       "the archive holds %zu images; a name can be given only for "
				       "one",
				       json_array_size(manifest));
	size_t i;
	json_t *img;
	int count = 0;
	json_array_foreach(manifest, i, img)
	{
		const char *cfg = json_string_value(json_object_get(img, "Config"));
		json_t *layers = json_object_get(img, "Layers");
		if (cfg == NULL || !json_is_array(layers))
			return kiln_error_make(err, 0, "manifest.json[%zu]: no Config or Layers",
					       i);
		struct tar_file cf;
		if (tar_lookup(files, links, cfg, &cf) == NULL)
			return kiln_error_make(err, 0,
					       "manifest.json[%zu]: `%s` is not in the "
					       "archive",
					       i, cfg);
		cleanup_json json_t *m = json_pack(
		    "{s:i, s:s, s:{s:s, s:I, s:s}, s:[]}", "schemaVersion", 2, "mediaType",
		    DOCKER_MEDIA_MANIFEST, "config", "mediaType", DOCKER_MEDIA_CONFIG, "size",
		    (json_int_t)cf.size, "digest", cf.digest, "layers");
		size_t j;
		json_t *l;
		json_array_foreach(layers, j, l)
		{
			struct tar_file lf;
			const char *lp = json_string_value(l);
			if (lp == NULL || tar_lookup(files, links, lp, &lf) == NULL)
				return kiln_error_make(
				    err, 0,
				    "manifest.json[%zu]: layer `%s` is not in the "
				    "archive",
				    i, lp ? lp : "?");
			json_array_append_new(json_object_get(m, "layers"),
					      json_pack("{s:s, s:I, s:s}", "mediaType",
							docker_layer_type(lf.compression), "size",
							(json_int_t)lf.size, "digest", lf.digest));
		}
		size_t len = 0;
		cleanup_free char *text = oci_json_dump(m, &len);
		char md[DIGEST_STRLEN];
		if (store_put_blob(s, text, len, md, err) < 0)
			return -1;
		json_t *tags = json_object_get(img, "RepoTags");
		if (name) {
			cleanup_free char *n = normalise_name(name);
			if (store_tag(s, n, md, DOCKER_MEDIA_MANIFEST, (int64_t)len, err) < 0)
				return -1;
			if (fn)
				fn(n, md, arg);
		} else if (json_array_size(tags) == 0) {
			if (fn)
				fn("(unnamed)", md, arg);
		} else {
			size_t k;
			json_t *t;
			json_array_foreach(tags, k, t)
			{
				if (!json_is_string(t))
					continue;
				cleanup_free char *n = normalise_name(json_string_value(t));
				if (store_tag(s, n, md, DOCKER_MEDIA_MANIFEST, (int64_t)len, err) <
				    0)
					return -1;
				if (fn)
					fn(n, md, arg);
			}
		}
		count++;
	}
	return count;
}

static bool is_hex64(const char *p)
{
	if (strlen(p) != SHA256_HEXLEN)
		return false;
	for (; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int import_tar(struct store *s, const char *path, const char *name, store_import_fn fn,
		      void *arg, struct kiln_error **err)
{
	cleanup_archive_read_local struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_gnutar(a);
	int r0 = strcmp(path, "-") == 0 ? archive_read_open_fd(a, STDIN_FILENO, COPY_BUFSZ)
					: archive_read_open_filename(a, path, COPY_BUFSZ);
	if (r0 != ARCHIVE_OK)
		return kiln_error_make(err, 0, "open `%s`: %s", path, archive_error_string(a));
	cleanup_json json_t *files = json_object(); /* path -> {digest,size,c} */
	cleanup_json json_t *links = json_object(); /* path -> target path */
	cleanup_free char *index_json = NULL, *manifest_json = NULL;
	size_t index_len = 0, manifest_len = 0;
	bool has_layout = false;
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		cleanup_free char *p = tar_clean_path(archive_entry_pathname(e));
		mode_t type = archive_entry_filetype(e);
		if (type == AE_IFLNK || (type == AE_IFREG && archive_entry_hardlink(e))) {
			const char *t =
			    type == AE_IFLNK ? archive_entry_symlink(e) : archive_entry_hardlink(e);
			if (t) {
				cleanup_free char *target =
				    type == AE_IFLNK ? tar_resolve_link(p, t) : tar_clean_path(t);
				json_object_set_new(links, p, json_string(target));
			}
			continue;
		}
		if (type != AE_IFREG)
			continue;
		if (strcmp(p, "index.json") == 0) {
			free(index_json);
			index_json = tar_entry_to_memory(a, SMALL_FILE_MAX, &index_len, err);
			if (index_json == NULL)
				return kiln_error_wrap(err, "`%s`: index.json", path);
		} else if (strcmp(p, "manifest.json") == 0) {
			free(manifest_json);
			manifest_json = tar_entry_to_memory(a, SMALL_FILE_MAX, &manifest_len, err);
			if (manifest_json == NULL)
				return kiln_error_wrap(err, "`%s`: manifest.json", path);
		} else if (strcmp(p, "oci-layout") == 0) {
			has_layout = true;
		} else if (str_has_prefix(p, "blobs/sha256/") && is_hex64(p + 13)) {
			char want[DIGEST_STRLEN];
			snprintf(want, sizeof want, "sha256:%s", p + 13);
			struct tar_file f;
			if (tar_entry_to_store(s, a, want, &f, err) < 0)
				return kiln_error_wrap(err, "`%s`: %s", path, p);
			json_object_set_new(files, p,
					    json_pack("{s:s, s:I, s:i}", "digest", f.digest, "size",
						      (json_int_t)f.size, "c", (int)f.compression));
		} else if (str_has_suffix(p, ".tar") || str_has_suffix(p, ".json")) {
			/* A classic docker save layer (ID/layer.tar) or config (HEX.json). */
			struct tar_file f;
			if (tar_entry_to_store(s, a, NULL, &f, err) < 0)
				return kiln_error_wrap(err, "`%s`: %s", path, p);
			json_object_set_new(files, p,
					    json_pack("{s:s, s:I, s:i}", "digest", f.digest, "size",
						      (json_int_t)f.size, "c", (int)f.compression));
		}
	}
	if (r != ARCHIVE_EOF)
		return kiln_error_make(err, 0, "read `%s`: %s", path, archive_error_string(a));
	if (has_layout && index_json) {
		cleanup_json json_t *index =
		    oci_json_parse(index_json, index_len, "index.json", err);
		if (index == NULL)
			return kiln_error_wrap(err, "`%s`", path);
		struct source src = {.dir = NULL};
		int n = import_oci_index(s, &src, index, name, fn, arg, err);
		if (n < 0)
			kiln_error_wrap(err, "`%s`", path);
		return n;
	}
	if (manifest_json) {
		cleanup_json json_t *m =
		    oci_json_parse(manifest_json, manifest_len, "manifest.json", err);
		if (m == NULL)
			return kiln_error_wrap(err, "`%s`", path);
		int n = import_docker_manifest(s, m, files, links, name, fn, arg, err);
		if (n < 0)
			kiln_error_wrap(err, "`%s`", path);
		return n;
	}
	return kiln_error_make(err, 0,
			       "`%s` is neither an OCI layout tar (oci-layout, index.json) nor a "
			       "docker save archive (manifest.json)",
			       path);
}

int store_import(struct store *s, const char *path, const char *name, store_import_fn fn, void *arg,
		 struct kiln_error **err)
{
	struct stat st;
	if (strcmp(path, "-") == 0)
		return import_tar(s, path, name, fn, arg, err);
	if (stat(path, &st) < 0)
		return kiln_error_make(err, errno, "import `%s`", path);
	if (S_ISDIR(st.st_mode))
		return import_dir(s, path, name, fn, arg, err);
	return import_tar(s, path, name, fn, arg, err);
}

/* ---- export ---- */

struct tar_out {
	struct archive *a;
	time_t mtime;
};

static int tar_out_header(struct tar_out *t, const char *path, mode_t type, int64_t size,
			  struct kiln_error **err)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, type == AE_IFDIR ? 0 : size);
	archive_entry_set_mtime(e, t->mtime, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	int r = archive_write_header(t->a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK)
		return kiln_error_make(err, 0, "write tar header `%s`: %s", path,
				       archive_error_string(t->a));
	return 0;
}

static int tar_out_data(struct tar_out *t, const void *data, size_t len, struct kiln_error **err)
{
	if (len && archive_write_data(t->a, data, len) != (la_ssize_t)len)
		return kiln_error_make(err, 0, "write tar: %s", archive_error_string(t->a));
	return 0;
}

static int tar_out_mem(struct tar_out *t, const char *path, const void *data, size_t len,
		       struct kiln_error **err)
{
	if (tar_out_header(t, path, AE_IFREG, (int64_t)len, err) < 0)
		return -1;
	return tar_out_data(t, data, len, err);
}

/* Copies all of FD (SIZE bytes) as PATH. */
static int tar_out_fd(struct tar_out *t, const char *path, int fd, int64_t size,
		      struct kiln_error **err)
{
	if (tar_out_header(t, path, AE_IFREG, size, err) < 0)
		return -1;
	cleanup_free char *buf = xmalloc(COPY_BUFSZ);
	int64_t left = size;
	while (left > 0) {
		ssize_t n = read(fd, buf, COPY_BUFSZ);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_make(err, errno, "read");
		if (n == 0)
			return kiln_error_make(err, 0, "`%s` shrank while being exported", path);
		if (n > left)
			n = (ssize_t)left;
		if (tar_out_data(t, buf, (size_t)n, err) < 0)
			return -1;
		left -= n;
	}
	return 0;
}

static int tar_out_blob(struct store *s, struct tar_out *t, const char *digest,
			struct kiln_error **err)
{
	cleanup_close int fd = store_blob_open(s, digest, err);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kiln_error_make(err, errno, "stat blob %s", digest);
	cleanup_free char *p = xasprintf("blobs/sha256/%s", digest + 7);
	return tar_out_fd(t, p, fd, (int64_t)st.st_size, err);
}

static time_t export_mtime(void)
{
	const char *e = getenv("SOURCE_DATE_EPOCH");
	uint64_t v = 0;
	if (e && parse_u64(e, 10, &v) == 0)
		return (time_t)v;
	return 0;
}

/* Collects into SET the blobs of the graph under ROOT present in the store
 * (every manifest present must be complete). */
static int collect_graph(struct store *s, const char *digest, const char *media_type, json_t *set,
			 int depth, struct kiln_error **err)
{
	if (json_object_get(set, digest))
		return 0;
	if (!store_has_blob(s, digest))
		return kiln_error_make(err, 0, "blob %s is not in the store", digest);
	json_object_set_new(set, digest, json_true());
	if (depth > 4 || (media_type && !oci_is_index(media_type) && !oci_is_manifest(media_type)))
		return 0;
	size_t n = 0;
	cleanup_free char *data = store_blob_read(s, digest, OCI_MANIFEST_MAX, &n, err);
	if (data == NULL)
		return -1;
	cleanup_json json_t *doc = oci_json_parse(data, n, digest, err);
	if (doc == NULL)
		return -1;
	const char *mt = oci_document_media_type(doc);
	size_t i;
	json_t *c;
	if (oci_is_index(mt)) {
		json_array_foreach(json_object_get(doc, "manifests"), i, c)
		{
			const char *d = json_string_value(json_object_get(c, "digest"));
			if (!digest_is_valid(d))
				return kiln_error_make(err, 0, "index %s: bad digest", digest);
			if (!store_has_blob(s, d))
				continue;
			if (collect_graph(s, d, json_string_value(json_object_get(c, "mediaType")),
					  set, depth + 1, err) < 0)
				return -1;
		}
	} else if (oci_is_manifest(mt)) {
		const char *cd =
		    json_string_value(json_object_get(json_object_get(doc, "config"), "digest"));
		if (!digest_is_valid(cd) ||
		    collect_graph(s, cd, OCI_MEDIA_CONFIG, set, depth + 1, err) < 0)
			return kiln_error_wrap(err, "manifest %s: config", digest);
		json_array_foreach(json_object_get(doc, "layers"), i, c)
		{
			const char *d = json_string_value(json_object_get(c, "digest"));
			if (!digest_is_valid(d) ||
			    collect_graph(s, d, OCI_MEDIA_LAYER, set, depth + 1, err) < 0)
				return kiln_error_wrap(err, "manifest %s: layer", digest);
		}
	}
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int export_oci(struct store *s, const char *name, struct tar_out *t, struct kiln_error **err)
{
	char root[DIGEST_STRLEN];
	int r = image_resolve_name(s, name, root, err);
	if (r <= 0)
		return r < 0 ? -1 : kiln_error_make(err, 0, "not in the store `%s`", store_dir(s));
	size_t n = 0;
	cleanup_free char *data = store_blob_read(s, root, OCI_MANIFEST_MAX, &n, err);
	if (data == NULL)
		return -1;
	cleanup_json json_t *doc = oci_json_parse(data, n, root, err);
	if (doc == NULL)
		return -1;
	const char *mt = oci_document_media_type(doc);
	if (!oci_is_index(mt) && !oci_is_manifest(mt))
		return kiln_error_make(err, 0, "%s is neither an index nor a manifest", root);
	cleanup_json json_t *set = json_object();
	if (collect_graph(s, root, mt, set, 0, err) < 0)
		return -1;
	cleanup_json json_t *index =
	    json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2, "mediaType",
		      OCI_MEDIA_INDEX, "manifests", "mediaType", mt, "digest", root, "size",
		      (json_int_t)n, "annotations", OCI_ANNOTATION_REF_NAME, name);
	/* containerd and Docker ≥ 25 name images by this annotation; only a
	 * whole reference belongs there. */
	if (strpbrk(name, "/:@"))
		json_object_set_new(
		    json_object_get(json_array_get(json_object_get(index, "manifests"), 0),
				    "annotations"),
		    "io.containerd.image.name", json_string(name));
	size_t ilen = 0;
	cleanup_free char *itext = oci_json_dump(index, &ilen);
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	if (tar_out_mem(t, "oci-layout", layout, strlen(layout), err) < 0 ||
	    tar_out_mem(t, "index.json", itext, ilen, err) < 0 ||
	    tar_out_header(t, "blobs/", AE_IFDIR, 0, err) < 0 ||
	    tar_out_header(t, "blobs/sha256/", AE_IFDIR, 0, err) < 0)
		return -1;
	size_t count = json_object_size(set), i = 0;
	cleanup_free const char **keys = xcalloc(count + 1, sizeof *keys);
	const char *k;
	json_t *v;
	json_object_foreach(set, k, v) keys[i++] = k;
	qsort(keys, count, sizeof *keys, cmp_str);
	for (i = 0; i < count; i++)
		if (tar_out_blob(s, t, keys[i], err) < 0)
			return -1;
	return 0;
}

/* Decompresses layer L of IMG into an anonymous temp file; returns its fd
 * (positioned at 0), its size and its sha256 (the diff ID). */
static int layer_uncompressed(struct store *s, const struct image_layer *l, int64_t *size,
			      char diff_id[DIGEST_STRLEN], struct kiln_error **err)
{
	cleanup_close int in = store_blob_open(s, l->digest, err);
	if (in < 0)
		return -1;
	const char *tmpdir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	cleanup_close int out = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (out < 0) {
		cleanup_free char *tmpl = xasprintf("%s/kiln-layer-XXXXXX", tmpdir);
		out = mkostemp(tmpl, O_CLOEXEC);
		if (out < 0)
			return kiln_error_make(err, errno, "create temp file in `%s`", tmpdir);
		unlink(tmpl);
	}
	cleanup_archive_read_local struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	struct archive_entry *e;
	if (archive_read_open_fd(a, in, COPY_BUFSZ) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "layer %s: %s", l->digest, archive_error_string(a));
	struct sha256 h;
	sha256_init(&h);
	cleanup_free char *buf = xmalloc(COPY_BUFSZ);
	int64_t total = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(a, buf, COPY_BUFSZ);
		if (n < 0) {
			sha256_abort(&h);
			return kiln_error_make(err, 0, "decompress layer %s: %s", l->digest,
					       archive_error_string(a));
		}
		if (n == 0)
			break;
		sha256_update(&h, buf, (size_t)n);
		if (write_all(out, buf, (size_t)n, err) < 0) {
			sha256_abort(&h);
			return kiln_error_wrap(err, "temp file");
		}
		total += n;
	}
	sha256_final_digest(&h, diff_id);
	if (lseek(out, 0, SEEK_SET) < 0)
		return kiln_error_make(err, errno, "seek temp file");
	*size = total;
	return steal_fd(&out);
}

static int export_docker(struct store *s, const char *name, const char *arch, struct tar_out *t,
			 struct kiln_error **err)
{
	cleanup_image struct image *img = image_load(s, name, arch, err);
	if (img == NULL)
		return -1;
	json_t *diff_ids = json_object_get(json_object_get(img->config, "rootfs"), "diff_ids");
	cleanup_free char *cfg_path = xasprintf("blobs/sha256/%s", img->config_digest + 7);
	cleanup_json json_t *entry =
	    json_pack("{s:s, s:[s], s:[]}", "Config", cfg_path, "RepoTags", name, "Layers");
	if (tar_out_header(t, "blobs/", AE_IFDIR, 0, err) < 0 ||
	    tar_out_header(t, "blobs/sha256/", AE_IFDIR, 0, err) < 0 ||
	    tar_out_blob(s, t, img->config_digest, err) < 0)
		return -1;
	cleanup_json json_t *written = json_object();
	for (size_t i = 0; i < img->nlayers; i++) {
		int64_t size = 0;
		char diff_id[DIGEST_STRLEN];
		cleanup_close int fd = layer_uncompressed(s, &img->layers[i], &size, diff_id, err);
		if (fd < 0)
			return kiln_error_wrap(err, "image %s", name);
		const char *want = json_string_value(json_array_get(diff_ids, i));
		if (want && strcmp(want, diff_id) != 0)
			return kiln_error_make(
			    err, 0,
			    "image %s: layer %s uncompresses to %s, but the config "
			    "says %s",
			    name, img->layers[i].digest, diff_id, want);
		cleanup_free char *lp = xasprintf("blobs/sha256/%s", diff_id + 7);
		json_array_append_new(json_object_get(entry, "Layers"), json_string(lp));
		if (json_object_get(written, lp))
			continue;
		json_object_set_new(written, lp, json_true());
		if (tar_out_fd(t, lp, fd, size, err) < 0)
			return -1;
	}
	cleanup_json json_t *manifest = json_pack("[O]", entry);
	size_t len = 0;
	cleanup_free char *text = oci_json_dump(manifest, &len);
	return tar_out_mem(t, "manifest.json", text, len, err);
}

int store_export(struct store *s, const char *name, const char *arch,
		 enum store_export_format format, int fd, struct kiln_error **err)
{
	cleanup_archive_write_local struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_fd(a, fd) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "open output: %s", archive_error_string(a));
	struct tar_out t = {.a = a, .mtime = export_mtime()};
	int r = format == STORE_EXPORT_DOCKER ? export_docker(s, name, arch, &t, err)
					      : export_oci(s, name, &t, err);
	if (r < 0)
		return kiln_error_wrap(err, "export %s", name);
	if (archive_write_close(a) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "export %s: %s", name, archive_error_string(a));
	return 0;
}

int store_export_dir(struct store *s, const char *name, const char *dir, const char *as,
		     struct kiln_error **err)
{
	char root[DIGEST_STRLEN];
	int r = image_resolve_name(s, name, root, err);
	if (r <= 0) {
		if (r == 0)
			kiln_error_make(err, 0, "not in the store `%s`", store_dir(s));
		return kiln_error_wrap(err, "export %s", name);
	}
	size_t n = 0;
	cleanup_free char *data = store_blob_read(s, root, OCI_MANIFEST_MAX, &n, err);
	if (data == NULL)
		return kiln_error_wrap(err, "export %s", name);
	cleanup_json json_t *doc = oci_json_parse(data, n, root, err);
	if (doc == NULL)
		return kiln_error_wrap(err, "export %s", name);
	const char *mt = oci_document_media_type(doc);
	if (!oci_is_index(mt) && !oci_is_manifest(mt))
		return kiln_error_make(err, 0, "export %s: %s is neither an index nor a manifest",
				       name, root);
	cleanup_store struct store *dest = store_open(dir, err);
	if (dest == NULL)
		return kiln_error_wrap(err, "export %s", name);
	cleanup_json json_t *desc =
	    json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest", root, "size", (json_int_t)n);
	struct source src = {.dir = store_dir(s)};
	if (copy_graph(dest, &src, desc, 0, err) < 0 ||
	    store_tag(dest, as ? as : name, root, mt, (int64_t)n, err) < 0)
		return kiln_error_wrap(err, "export %s to `%s`", name, dir);
	return 0;
}
