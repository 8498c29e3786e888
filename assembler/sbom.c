/* See sbom.h.  SPDX 2.3: https://spdx.github.io/spdx-spec/v2.3/ ; package
 * URLs: https://github.com/package-url/purl-spec. */
#include "sbom.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "deb.h"
#include "flatten.h"
#include "pathsafe.h"
#include "ref.h"
#include "sha256.h"
#include "strbuf.h"
#include "tarw.h"
#include "util.h"

/* Bumped when what a scan keeps changes, so old cache files are not read. */
#define SBOM_SCAN_VERSION 1
/* A package database larger than this is not read (Debian's full status
 * file is a few MiB). */
#define SBOM_FILE_MAX ((size_t)64 << 20)

struct sbom_package {
	const char *type; /* "deb" or "apk" (static) */
	char *name, *version, *arch;
	char *source; /* source package (deb Source:, apk o:), NULL when the same */
	char *file;   /* the database it was read from */
};

struct sbom_image {
	char *ref, *digest, *arch;
	struct strbuf locations; /* "init[0], onboot[2] x" */
	char *os_id, *os_version;
	bool os_from_usr; /* usr/lib/os-release wins over etc/os-release */
	size_t n;
	struct sbom_package *v;
};

struct sbom {
	char *name;
	size_t n;
	struct sbom_image *v;
};

struct sbom *sbom_new(const char *name)
{
	struct sbom *sb = xcalloc(1, sizeof(*sb));
	sb->name = xstrdup(name && *name ? name : "kiln");
	return sb;
}

static void package_release(struct sbom_package *p)
{
	free(p->name);
	free(p->version);
	free(p->arch);
	free(p->source);
	free(p->file);
}

void sbom_free(struct sbom *sb)
{
	if (!sb)
		return;
	for (size_t i = 0; i < sb->n; i++) {
		struct sbom_image *im = &sb->v[i];
		free(im->ref);
		free(im->digest);
		free(im->arch);
		strbuf_release(&im->locations);
		free(im->os_id);
		free(im->os_version);
		for (size_t k = 0; k < im->n; k++)
			package_release(&im->v[k]);
		free(im->v);
	}
	free(sb->v);
	free(sb->name);
	free(sb);
}

void sbom_freep(struct sbom **sb)
{
	sbom_free(*sb);
}

size_t sbom_add_image(struct sbom *sb, const char *ref, const char *digest, const char *arch,
		      const char *location)
{
	size_t i;
	for (i = 0; i < sb->n; i++)
		if (strcmp(sb->v[i].ref, ref) == 0 && strcmp(sb->v[i].digest, digest) == 0)
			break;
	if (i == sb->n) {
		sb->v = xrealloc(sb->v, (sb->n + 1) * sizeof(*sb->v));
		sb->v[i] = (struct sbom_image){.ref = xstrdup(ref),
					       .digest = xstrdup(digest),
					       .arch = xstrdup(arch && *arch ? arch : "amd64"),
					       .locations = STRBUF_INIT};
		sb->n++;
	}
	strbuf_printf(&sb->v[i].locations, "%s%s", sb->v[i].locations.len ? ", " : "", location);
	return i;
}

/* ---- package databases ---- */

static const char dpkg_status[] = "var/lib/dpkg/status";
static const char dpkg_status_d[] = "var/lib/dpkg/status.d/";
static const char apk_installed[] = "lib/apk/db/installed";

bool sbom_wants_path(const char *path)
{
	if (strcmp(path, dpkg_status) == 0 || strcmp(path, apk_installed) == 0 ||
	    strcmp(path, "usr/lib/os-release") == 0 || strcmp(path, "etc/os-release") == 0)
		return true;
	/* distroless: one control stanza per package; NAME.md5sums lists files */
	return str_has_prefix(path, dpkg_status_d) && !strchr(path + strlen(dpkg_status_d), '/') &&
	       path[strlen(dpkg_status_d)] != '\0' && !str_has_suffix(path, ".md5sums");
}

/* The next line of [*P, END) without its newline; false at the end. */
static bool next_line(const char **p, const char *end, const char **line, size_t *len)
{
	if (*p >= end)
		return false;
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	*line = *p;
	*len = (size_t)((nl ? nl : end) - *p);
	*p = nl ? nl + 1 : end;
	return true;
}

static char *trimmed(const char *s, size_t len)
{
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r'))
		len--;
	return xstrndup(s, len);
}

static void image_add_package(struct sbom_image *im, const char *type, char **name, char **version,
			      char **arch, char **source, const char *file)
{
	if (*name && **name && *version && **version) {
		if (*source && strcmp(*source, *name) == 0) {
			free(*source);
			*source = NULL;
		}
		im->v = xrealloc(im->v, (im->n + 1) * sizeof(*im->v));
		im->v[im->n++] =
		    (struct sbom_package){type, *name, *version, *arch, *source, xstrdup(file)};
		*name = *version = *arch = *source = NULL;
	}
	free(*name);
	free(*version);
	free(*arch);
	free(*source);
	*name = *version = *arch = *source = NULL;
}

/* deb822 stanzas: Package, Version, Architecture, Source ("name" or
 * "name (version)"), Status (when present, only "… installed" counts;
 * status.d files have none).  Continuation lines are skipped. */
static void parse_dpkg(struct sbom_image *im, const char *file, const char *data, size_t len)
{
	const char *p = data, *end = data + len;
	char *name = NULL, *version = NULL, *arch = NULL, *source = NULL;
	bool installed = true;
	struct deb822_line l;
	for (;;) {
		enum deb822_kind k = deb822_next(&p, end, &l);
		if (k == DEB822_END || k == DEB822_BREAK) {
			if (!installed) {
				free(name);
				name = NULL;
			}
			image_add_package(im, "deb", &name, &version, &arch, &source, file);
			installed = true;
			if (k == DEB822_END)
				break;
			continue;
		}
		if (k != DEB822_FIELD)
			continue;
		char *value = xstrndup(l.value, l.value_len);
		char **slot = NULL;
		if (deb822_is(&l, "Package"))
			slot = &name;
		else if (deb822_is(&l, "Version"))
			slot = &version;
		else if (deb822_is(&l, "Architecture"))
			slot = &arch;
		else if (deb822_is(&l, "Source")) {
			value[strcspn(value, " (")] = '\0';
			slot = &source;
		} else if (deb822_is(&l, "Status"))
			installed = str_has_suffix(value, " installed");
		if (slot) {
			free(*slot);
			*slot = value;
		} else {
			free(value);
		}
	}
}

/* apk's installed database: "P:name", "V:version", "A:arch", "o:origin"
 * lines, a blank line between packages. */
static void parse_apk(struct sbom_image *im, const char *file, const char *data, size_t len)
{
	const char *p = data, *end = data + len, *line;
	size_t n;
	char *name = NULL, *version = NULL, *arch = NULL, *source = NULL;
	for (;;) {
		bool more = next_line(&p, end, &line, &n);
		if (!more || n == 0) {
			image_add_package(im, "apk", &name, &version, &arch, &source, file);
			if (!more)
				break;
			continue;
		}
		if (n < 2 || line[1] != ':')
			continue;
		char **slot = line[0] == 'P'   ? &name
			      : line[0] == 'V' ? &version
			      : line[0] == 'A' ? &arch
			      : line[0] == 'o' ? &source
					       : NULL;
		if (slot) {
			free(*slot);
			*slot = trimmed(line + 2, n - 2);
		}
	}
}

/* os-release: ID and VERSION_ID, quotes removed. */
static void parse_os_release(struct sbom_image *im, bool usr, const char *data, size_t len)
{
	if (im->os_from_usr && !usr)
		return;
	char *id = NULL, *version = NULL;
	const char *p = data, *end = data + len, *line;
	size_t n;
	while (next_line(&p, end, &line, &n)) {
		char **slot = NULL;
		size_t kl = 0;
		if (n > 3 && strncmp(line, "ID=", 3) == 0)
			slot = &id, kl = 3;
		else if (n > 11 && strncmp(line, "VERSION_ID=", 11) == 0)
			slot = &version, kl = 11;
		if (!slot)
			continue;
		char *v = trimmed(line + kl, n - kl);
		size_t vl = strlen(v);
		if (vl >= 2 && (v[0] == '"' || v[0] == '\'') && v[vl - 1] == v[0]) {
			memmove(v, v + 1, vl - 2);
			v[vl - 2] = '\0';
		}
		free(*slot);
		*slot = v;
	}
	if (!id) {
		free(version);
		return;
	}
	free(im->os_id);
	free(im->os_version);
	im->os_id = id;
	im->os_version = version;
	im->os_from_usr = usr;
}

void sbom_add_file(struct sbom *sb, size_t index, const char *path, const char *data, size_t len)
{
	if (index >= sb->n || !sbom_wants_path(path))
		return;
	struct sbom_image *im = &sb->v[index];
	if (strcmp(path, apk_installed) == 0)
		parse_apk(im, path, data, len);
	else if (strcmp(path, "usr/lib/os-release") == 0)
		parse_os_release(im, true, data, len);
	else if (strcmp(path, "etc/os-release") == 0)
		parse_os_release(im, false, data, len);
	else
		parse_dpkg(im, path, data, len);
}

/* ---- reading the files from an image's layers ---- */

/* Files found: "LEN PATH\n" then LEN bytes and "\n", in path order; the
 * same bytes are the cache file. */
struct scan {
	struct strbuf found;
	struct kiln_error *err;
};

static int scan_filter(void *ctx, const char *path, struct archive_entry *e)
{
	(void)ctx;
	(void)e;
	return !sbom_wants_path(path);
}

/* Flattening emits top layer first, so the order of the files depends on
 * the layers; the scan record is sorted afterwards (see scan_sorted). */
static int scan_emit(void *ctx, struct archive_entry *e, struct archive *data,
		     struct kiln_error **err)
{
	struct scan *sc = ctx;
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return 0;
	const char *path = archive_entry_pathname(e);
	int64_t size = archive_entry_size(e);
	if (size < 0 || (uint64_t)size > SBOM_FILE_MAX)
		return 0;
	strbuf_printf(&sc->found, "%lld %s\n", (long long)size, path);
	size_t at = sc->found.len;
	strbuf_grow(&sc->found, (size_t)size + 1);
	size_t got = 0;
	while (data && got < (size_t)size) {
		la_ssize_t r =
		    archive_read_data(data, sc->found.buf + at + got, (size_t)size - got);
		if (r < 0)
			return kiln_error_make(err, EIO, "read `%s`: %s", path,
					       archive_error_string(data));
		if (r == 0)
			break;
		got += (size_t)r;
	}
	if (got != (size_t)size)
		return kiln_error_make(err, EIO, "read `%s`: short file", path);
	sc->found.len = at + got;
	strbuf_putc(&sc->found, '\n');
	return 0;
}

/* Walks a scan record: calls FN for each file; false when malformed. */
typedef void (*scan_file_fn)(void *ctx, const char *path, const char *data, size_t len);

static bool scan_walk(const char *buf, size_t len, scan_file_fn fn, void *ctx)
{
	const char *p = buf, *end = buf + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *sp = nl ? memchr(p, ' ', (size_t)(nl - p)) : NULL;
		if (!sp)
			return false;
		cleanup_free char *num = xstrndup(p, (size_t)(sp - p));
		uint64_t size;
		if (parse_u64(num, 10, &size) < 0 || size > (uint64_t)(end - nl - 1) ||
		    (size_t)(end - nl - 1) - size < 1 || nl[1 + size] != '\n')
			return false;
		cleanup_free char *path = xstrndup(sp + 1, (size_t)(nl - sp - 1));
		if (fn)
			fn(ctx, path, nl + 1, (size_t)size);
		p = nl + 1 + size + 1;
	}
	return true;
}

struct scan_entry {
	char *path;
	const char *data;
	size_t len;
};
struct scan_list {
	size_t n;
	struct scan_entry *v;
};

static void scan_collect(void *ctx, const char *path, const char *data, size_t len)
{
	struct scan_list *l = ctx;
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct scan_entry){xstrdup(path), data, len};
}

static int scan_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct scan_entry *)a)->path, ((const struct scan_entry *)b)->path);
}

/* The record BUF rewritten in path order.  Caller frees. */
static char *scan_sorted(const char *buf, size_t len, size_t *out_len)
{
	struct scan_list l = {0};
	scan_walk(buf, len, scan_collect, &l);
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), scan_entry_cmp);
	struct strbuf sb = STRBUF_INIT;
	strbuf_grow(&sb, len + 1);
	for (size_t i = 0; i < l.n; i++) {
		strbuf_printf(&sb, "%zu %s\n", l.v[i].len, l.v[i].path);
		strbuf_append(&sb, l.v[i].data, l.v[i].len);
		strbuf_putc(&sb, '\n');
		free(l.v[i].path);
	}
	free(l.v);
	if (sb.buf == NULL)
		strbuf_grow(&sb, 1);
	return strbuf_detach(&sb, out_len);
}

struct add_ctx {
	struct sbom *sb;
	size_t index;
};

static void scan_add(void *ctx, const char *path, const char *data, size_t len)
{
	struct add_ctx *a = ctx;
	sbom_add_file(a->sb, a->index, path, data, len);
}

static char *scan_cache_path(const char *cache_dir, const char *manifest_digest)
{
	cleanup_free char *key_in =
	    xasprintf("kiln-sbom %d\n%s\n", SBOM_SCAN_VERSION, manifest_digest);
	char key[DIGEST_STRLEN];
	sha256_digest(key_in, strlen(key_in), key);
	return xasprintf("%s/%s.sbom", cache_dir, key + 7);
}

/* The scan record of IMG: from the cache, or from its layers. */
static char *scan_layers(struct store *store, const struct image *img, const char *cache_dir,
			 size_t *len, struct kiln_error **err)
{
	cleanup_free char *cpath =
	    cache_dir ? scan_cache_path(cache_dir, img->manifest_digest) : NULL;
	if (cpath) {
		struct kiln_error *ignored = NULL;
		char *buf = read_file(cpath, SIZE_MAX / 2, len, &ignored);
		kiln_error_release(&ignored);
		if (buf && scan_walk(buf, *len, NULL, NULL)) {
			/* used: keep it from assemble_cache_prune's age limit */
			utimensat(AT_FDCWD, cpath, NULL, 0);
			return buf;
		}
		free(buf);
	}
	struct flatten_layer *layers = xcalloc(img->nlayers ? img->nlayers : 1, sizeof(*layers));
	char **paths = xcalloc(img->nlayers ? img->nlayers : 1, sizeof(*paths));
	for (size_t i = 0; i < img->nlayers; i++) {
		paths[i] = store_blob_path(store, img->layers[i].digest);
		layers[i] = (struct flatten_layer){paths[i], img->layers[i].digest, NULL};
	}
	struct scan sc = {.found = STRBUF_INIT};
	struct flatten_options fo = {.image = img->name,
				     .prefix = "",
				     .epoch = 0,
				     .emit = scan_emit,
				     .filter = scan_filter,
				     .ctx = &sc};
	int r = flatten_image(layers, img->nlayers, &fo, err);
	for (size_t i = 0; i < img->nlayers; i++)
		free(paths[i]);
	free(paths);
	free(layers);
	if (r < 0) {
		strbuf_release(&sc.found);
		return NULL;
	}
	char *buf = scan_sorted(sc.found.buf ? sc.found.buf : "", sc.found.len, len);
	strbuf_release(&sc.found);
	if (cpath) {
		/* a cache that cannot be written only costs the next build a scan */
		struct kiln_error *ignored = NULL;
		write_file_atomic(cpath, buf, *len, 0644, &ignored);
		kiln_error_release(&ignored);
	}
	return buf;
}

int sbom_scan_image(struct sbom *sb, size_t index, struct store *store, const struct image *img,
		    const char *cache_dir, struct kiln_error **err)
{
	size_t len;
	cleanup_free char *buf = scan_layers(store, img, cache_dir, &len, err);
	if (!buf)
		return kiln_error_wrap(err, "sbom: %s",
				       img->name ? img->name : img->manifest_digest);
	struct add_ctx a = {sb, index};
	scan_walk(buf, len, scan_add, &a);
	return 0;
}

/* ---- the document ---- */

/* Percent-encodes S for a purl component: unreserved characters and those
 * of KEEP stay. */
static void purl_put(struct strbuf *out, const char *s, const char *keep)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("-._~", *c) || (keep && strchr(keep, *c)))
			strbuf_putc(out, (char)*c);
		else
			strbuf_printf(out, "%%%02X", *c);
	}
}

/* SPDXIDs take letters, digits, '.' and '-' only. */
static void spdxid_put(struct strbuf *out, const char *s)
{
	for (const char *c = s; *c; c++) {
		bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			  (*c >= '0' && *c <= '9') || *c == '.' || *c == '-';
		strbuf_putc(out, ok ? *c : '-');
	}
}

/* A JSON string; bytes that are not valid UTF-8 become '?'. */
static json_t *jstr(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	cleanup_free char *copy = xstrdup(s);
	for (char *c = copy; *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	return json_string(copy);
}

static int package_cmp(const void *a, const void *b)
{
	const struct sbom_package *x = a, *y = b;
	int r = strcmp(x->type, y->type);
	if (!r)
		r = strcmp(x->name, y->name);
	if (!r)
		r = strcmp(x->arch ? x->arch : "", y->arch ? y->arch : "");
	if (!r)
		r = strcmp(x->version, y->version);
	if (!r)
		r = strcmp(x->file, y->file);
	return r;
}

/* The distribution of IM for purls: namespace ("debian") and the distro
 * qualifier ("debian-12"), or NULL. */
static const char *purl_namespace(const struct sbom_image *im, const char *type)
{
	if (im->os_id && *im->os_id)
		return im->os_id;
	return strcmp(type, "apk") == 0 ? "alpine" : "debian";
}

static char *package_purl(const struct sbom_image *im, const struct sbom_package *p)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_printf(&sb, "pkg:%s/", p->type);
	purl_put(&sb, purl_namespace(im, p->type), NULL);
	strbuf_putc(&sb, '/');
	purl_put(&sb, p->name, NULL);
	strbuf_putc(&sb, '@');
	purl_put(&sb, p->version, ":");
	/* qualifiers in key order */
	char sep = '?';
	if (p->arch && *p->arch) {
		strbuf_printf(&sb, "%carch=", sep), sep = '&';
		purl_put(&sb, p->arch, NULL);
	}
	if (im->os_id && im->os_version) {
		strbuf_printf(&sb, "%cdistro=", sep), sep = '&';
		purl_put(&sb, im->os_id, NULL);
		strbuf_putc(&sb, '-');
		purl_put(&sb, im->os_version, NULL);
	}
	if (p->source) {
		strbuf_printf(&sb, "%cupstream=", sep), sep = '&';
		purl_put(&sb, p->source, NULL);
	}
	return strbuf_detach(&sb, NULL);
}

/* pkg:oci/NAME@sha256%3AHEX?arch=A&repository_url=DOMAIN/PATH&tag=TAG (the
 * reference's parts; a reference that does not parse keeps its text as
 * the name). */
static char *image_purl(const struct sbom_image *im)
{
	struct strbuf sb = STRBUF_INIT;
	struct image_ref r = {0};
	struct kiln_error *e = NULL;
	bool parsed = ref_parse(im->ref, &r, &e) == 0;
	kiln_error_release(&e);
	const char *name = im->ref;
	if (parsed) {
		const char *slash = strrchr(r.path, '/');
		name = slash ? slash + 1 : r.path;
	}
	strbuf_puts(&sb, "pkg:oci/");
	purl_put(&sb, name, NULL);
	strbuf_putc(&sb, '@');
	purl_put(&sb, im->digest, NULL);
	strbuf_puts(&sb, "?arch=");
	purl_put(&sb, im->arch, NULL);
	if (parsed) {
		strbuf_puts(&sb, "&repository_url=");
		purl_put(&sb, r.domain, ":");
		strbuf_putc(&sb, '/');
		purl_put(&sb, r.path, "/");
		if (r.tag) {
			strbuf_puts(&sb, "&tag=");
			purl_put(&sb, r.tag, NULL);
		}
		ref_release(&r);
	}
	return strbuf_detach(&sb, NULL);
}

/* The fields every SPDX package has, in a fixed order. */
static json_t *package_json(const char *name, const char *spdxid, const char *version,
			    const char *purl, const char *source_info, const char *comment)
{
	json_t *p = json_object();
	json_object_set_new(p, "name", jstr(name));
	json_object_set_new(p, "SPDXID", jstr(spdxid));
	if (version)
		json_object_set_new(p, "versionInfo", jstr(version));
	json_object_set_new(p, "supplier", json_string("NOASSERTION"));
	json_object_set_new(p, "downloadLocation", json_string("NOASSERTION"));
	json_object_set_new(p, "filesAnalyzed", json_false());
	if (source_info)
		json_object_set_new(p, "sourceInfo", jstr(source_info));
	json_object_set_new(p, "licenseConcluded", json_string("NOASSERTION"));
	json_object_set_new(p, "licenseDeclared", json_string("NOASSERTION"));
	json_object_set_new(p, "copyrightText", json_string("NOASSERTION"));
	if (comment)
		json_object_set_new(p, "comment", jstr(comment));
	if (purl)
		json_object_set_new(p, "externalRefs",
				    json_pack("[{s:s, s:s, s:o}]", "referenceCategory",
					      "PACKAGE-MANAGER", "referenceType", "purl",
					      "referenceLocator", jstr(purl)));
	return p;
}

static void relate(json_t *rels, const char *a, const char *type, const char *b)
{
	json_array_append_new(rels, json_pack("{s:s, s:s, s:s}", "spdxElementId", a,
					      "relationshipType", type, "relatedSpdxElement", b));
}

/* A unique SPDXID: BASE, or BASE-2, BASE-3… when taken (IDS: every id so far). */
static char *unique_id(struct pathmap *ids, const char *base)
{
	char *id = xstrdup(base);
	for (unsigned k = 2; pathmap_get(ids, id, strlen(id)); k++) {
		free(id);
		id = xasprintf("%s-%u", base, k);
	}
	pathmap_put(ids, id, strlen(id), NULL);
	return id;
}

static json_t *document(const struct sbom *sb, int64_t created, const char *namespace)
{
	char when[32];
	time_t t = (time_t)created;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *doc = json_object();
	json_object_set_new(doc, "spdxVersion", json_string("SPDX-2.3"));
	json_object_set_new(doc, "dataLicense", json_string("CC0-1.0"));
	json_object_set_new(doc, "SPDXID", json_string("SPDXRef-DOCUMENT"));
	json_object_set_new(doc, "name", jstr(sb->name));
	json_object_set_new(doc, "documentNamespace", jstr(namespace));
	json_object_set_new(
	    doc, "creationInfo",
	    json_pack("{s:[s], s:s}", "creators", "Tool: kiln-" KILN_VERSION, "created", when));
	json_t *pkgs = json_array(), *rels = json_array();
	struct pathmap *ids = pathmap_new(0);
	const char *root = "SPDXRef-OperatingSystem";
	pathmap_put(ids, root, strlen(root), NULL);
	json_t *rp = package_json(sb->name, root, NULL, NULL, NULL, "the image kiln built");
	json_object_set_new(rp, "primaryPackagePurpose", json_string("OPERATING-SYSTEM"));
	json_array_append_new(pkgs, rp);
	relate(rels, "SPDXRef-DOCUMENT", "DESCRIBES", root);
	for (size_t i = 0; i < sb->n; i++) {
		const struct sbom_image *im = &sb->v[i];
		cleanup_free char *purl = image_purl(im);
		/* the purl's name part, between "pkg:oci/" and '@' */
		cleanup_free char *short_name = xstrndup(purl + 8, strcspn(purl + 8, "@"));
		struct strbuf base = STRBUF_INIT;
		strbuf_printf(&base, "SPDXRef-Image-%zu-", i);
		spdxid_put(&base, short_name);
		cleanup_free char *iid = unique_id(ids, base.buf);
		strbuf_release(&base);
		cleanup_free char *comment = xasprintf("used at %s", im->locations.buf);
		json_t *ip = package_json(im->ref, iid, im->digest, purl, NULL, comment);
		json_object_set_new(
		    ip, "checksums",
		    json_pack(
			"[{s:s, s:o}]", "algorithm", "SHA256", "checksumValue",
			jstr(str_has_prefix(im->digest, "sha256:") ? im->digest + 7 : im->digest)));
		json_object_set_new(ip, "primaryPackagePurpose", json_string("CONTAINER"));
		json_array_append_new(pkgs, ip);
		relate(rels, root, "CONTAINS", iid);
		struct sbom_package *sorted = xcalloc(im->n ? im->n : 1, sizeof(*sorted));
		if (im->n) { /* an image without packages has no array (memcpy of NULL) */
			memcpy(sorted, im->v, im->n * sizeof(*sorted));
			qsort(sorted, im->n, sizeof(*sorted), package_cmp);
		}
		for (size_t k = 0; k < im->n; k++) {
			const struct sbom_package *p = &sorted[k];
			/* dpkg status and a status.d stanza may both list it */
			if (k > 0 && strcmp(p->type, sorted[k - 1].type) == 0 &&
			    strcmp(p->name, sorted[k - 1].name) == 0 &&
			    strcmp(p->version, sorted[k - 1].version) == 0 &&
			    strcmp(p->arch ? p->arch : "",
				   sorted[k - 1].arch ? sorted[k - 1].arch : "") == 0)
				continue;
			struct strbuf pb = STRBUF_INIT;
			strbuf_printf(&pb, "SPDXRef-Package-%zu-%s-", i, p->type);
			spdxid_put(&pb, p->name);
			if (p->arch && *p->arch) {
				strbuf_putc(&pb, '-');
				spdxid_put(&pb, p->arch);
			}
			cleanup_free char *pid = unique_id(ids, pb.buf);
			strbuf_release(&pb);
			cleanup_free char *ppurl = package_purl(im, p);
			cleanup_free char *info = xasprintf("from /%s of %s", p->file, im->ref);
			json_array_append_new(
			    pkgs, package_json(p->name, pid, p->version, ppurl, info, NULL));
			relate(rels, iid, "CONTAINS", pid);
		}
		free(sorted);
	}
	pathmap_free(ids);
	json_object_set_new(doc, "packages", pkgs);
	json_object_set_new(doc, "relationships", rels);
	return doc;
}

static char *dump(json_t *doc, size_t *len)
{
	char *s = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!s)
		oom(); /* the strings are valid UTF-8: only allocation fails */
	char *out = xasprintf("%s\n", s);
	free(s);
	if (len)
		*len = strlen(out);
	return out;
}

char *sbom_write(const struct sbom *sb, int64_t created, size_t *len)
{
	/* The namespace names this document: a hash of everything else in it. */
	json_t *doc = document(sb, created, "");
	cleanup_free char *body = dump(doc, NULL);
	json_decref(doc);
	char digest[DIGEST_STRLEN];
	sha256_digest(body, strlen(body), digest);
	struct strbuf ns = STRBUF_INIT;
	strbuf_puts(&ns, "https://spdx.org/spdxdocs/kiln-");
	spdxid_put(&ns, sb->name);
	strbuf_printf(&ns, "-%s", digest + 7);
	doc = document(sb, created, ns.buf);
	strbuf_release(&ns);
	char *out = dump(doc, len);
	json_decref(doc);
	return out;
}

/* ---- the build step ---- */

static int add_manifest_image(struct sbom *sb, const struct sbom_section_options *o,
			      const char *ref, const char *location, struct kiln_error **err)
{
	const struct assemble_options *ao = o->ao;
	cleanup_image struct image *img = ao->load(ao->load_ctx, ref, err);
	if (!img)
		return kiln_error_wrap(err, "sbom: %s %s", location, ref);
	size_t before = sb->n;
	size_t i = sbom_add_image(sb, ref, img->manifest_digest,
				  img->architecture ? img->architecture : o->arch, location);
	if (i < before)
		return 0; /* the same image again: scanned already */
	return sbom_scan_image(sb, i, ao->store, img, o->cache_dir, err);
}

static int add_list(struct sbom *sb, const struct sbom_section_options *o, const char *section,
		    const struct manifest_image_list *l, struct kiln_error **err)
{
	for (size_t i = 0; i < l->n; i++) {
		cleanup_free char *loc = xasprintf("%s[%zu] %s", section, i, l->v[i].name);
		if (add_manifest_image(sb, o, l->v[i].image, loc, err) < 0)
			return -1;
	}
	return 0;
}

static int collect(struct sbom *sb, const struct sbom_section_options *o, struct kiln_error **err)
{
	const struct manifest *m = o->ao->m;
	if (m->kernel.set && m->kernel.image && *m->kernel.image &&
	    add_manifest_image(sb, o, m->kernel.image, "kernel", err) < 0)
		return -1;
	for (size_t i = 0; i < m->ninit; i++) {
		cleanup_free char *loc = xasprintf("init[%zu]", i);
		if (add_manifest_image(sb, o, m->init[i].image, loc, err) < 0)
			return -1;
	}
	for (size_t i = 0; i < m->nvolumes; i++) {
		if (!m->volumes[i].image || !*m->volumes[i].image)
			continue;
		cleanup_free char *loc = xasprintf("volume[%zu] %s", i, m->volumes[i].name);
		if (add_manifest_image(sb, o, m->volumes[i].image, loc, err) < 0)
			return -1;
	}
	if (add_list(sb, o, "onboot", &m->onboot, err) < 0 ||
	    add_list(sb, o, "onshutdown", &m->onshutdown, err) < 0 ||
	    add_list(sb, o, "services", &m->services, err) < 0)
		return -1;
	return 0;
}

int sbom_append_section(const struct sbom_section_options *o, struct assemble_result *res,
			struct kiln_error **err)
{
	const char *file = o->file && *o->file ? o->file : "sbom.spdx.json";
	cleanup_free char *path = pathsafe_clean(file, PATHSAFE_STRIP_ROOT, err);
	if (!path)
		return kiln_error_wrap(err, "--sbom-output");
	if (!*path || strchr(path, '/'))
		return kiln_error_make(
		    err, EINVAL, "--sbom-output `%s`: expected a file name (it goes at /)", file);
	cleanup_sbom struct sbom *sb = sbom_new(o->name);
	if (collect(sb, o, err) < 0)
		return -1;
	size_t len;
	cleanup_free char *json = sbom_write(sb, o->created, &len);
	cleanup_free char *tar_path = xasprintf("%s/sbom-section.tar", o->work_dir);
	cleanup_close int fd = open(tar_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", tar_path);
	struct tarw *w = tarw_new(fd);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_mtime(e, o->ao->epoch, 0);
	archive_entry_set_size(e, (la_int64_t)len);
	int r = tarw_add(w, e, NULL, json, "linuxkit.sbom", "sbom", err);
	if (r == 0)
		r = tarw_flush(w, err);
	archive_entry_free(e);
	tarw_free(w);
	if (r < 0)
		return kiln_error_wrap(err, "sbom");
	struct strbuf key_in = STRBUF_INIT;
	strbuf_printf(&key_in, "kiln-sbom-section\n%s\n", path);
	strbuf_append(&key_in, json, len);
	char key[DIGEST_STRLEN];
	sha256_digest(key_in.buf, key_in.len, key);
	strbuf_release(&key_in);
	res->v = xrealloc(res->v, (res->n + 1) * sizeof(*res->v));
	struct assemble_section *s = &res->v[res->n++];
	memset(s, 0, sizeof(*s));
	memcpy(s->key, key + 7, SHA256_HEXLEN);
	s->key[SHA256_HEXLEN] = '\0';
	s->tar_path = steal_pointer(&tar_path);
	return 0;
}
