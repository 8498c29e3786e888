/* sbom.c: dpkg/apk/os-release parsing, purls, the SPDX document's shape and
 * determinism, and reading the databases from real layers in a store
 * (whiteouts applied, the scan cache used). */
#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "pathsafe.h"
#include "sbom.h"
#include "store.h"
#include "tap.h"
#include "util.h"

#define DIGEST_A "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DIGEST_B "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

static const char dpkg_status[] = "Package: libc6\n"
				  "Status: install ok installed\n"
				  "Architecture: amd64\n"
				  "Source: glibc\n"
				  "Version: 2.36-9+deb12u4\n"
				  "Description: GNU C Library: Shared libraries\n"
				  " Package: not-a-package\n"
				  " Version: 0\n"
				  "\n"
				  "Package: oldthing\n"
				  "Status: deinstall ok config-files\n"
				  "Architecture: amd64\n"
				  "Version: 1.0\n"
				  "\n"
				  "Package: bsdutils\n"
				  "Status: install ok installed\n"
				  "Architecture: amd64\n"
				  "Source: util-linux (2.38.1-5)\n"
				  "Version: 1:2.38.1-5+b1\n";

static const char apk_db[] = "C:Q1abc=\n"
			     "P:musl\n"
			     "V:1.2.4-r2\n"
			     "A:x86_64\n"
			     "L:MIT\n"
			     "o:musl\n"
			     "\n"
			     "P:busybox-binsh\n"
			     "V:1.36.1-r15\n"
			     "A:x86_64\n"
			     "o:busybox\n"
			     "\n";

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);
	if (!j)
		printf("# JSON error: %s at %d:%d\n", e.text, e.line, e.column);
	return j;
}

/* The package whose name is NAME (not the image packages), or NULL. */
static json_t *find_package(json_t *doc, const char *name)
{
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(doc, "packages"), i, p)
	{
		const char *id = json_string_value(json_object_get(p, "SPDXID"));
		if (id && strncmp(id, "SPDXRef-Package-", 16) == 0 &&
		    strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
			return p;
	}
	return NULL;
}

static const char *purl_of(json_t *p)
{
	json_t *refs = json_object_get(p, "externalRefs");
	return json_string_value(json_object_get(json_array_get(refs, 0), "referenceLocator"));
}

static size_t count_prefix(json_t *doc, const char *prefix)
{
	size_t i, n = 0;
	json_t *p;
	json_array_foreach(json_object_get(doc, "packages"), i, p)
	{
		const char *id = json_string_value(json_object_get(p, "SPDXID"));
		n += id && strncmp(id, prefix, strlen(prefix)) == 0;
	}
	return n;
}

TEST(wants_path)
{
	ok(sbom_wants_path("var/lib/dpkg/status"), "dpkg status");
	ok(sbom_wants_path("var/lib/dpkg/status.d/libc6"), "status.d stanza");
	ok(!sbom_wants_path("var/lib/dpkg/status.d/libc6.md5sums"), "md5sums left out");
	ok(!sbom_wants_path("var/lib/dpkg/status.d/"), "the directory itself");
	ok(!sbom_wants_path("var/lib/dpkg/status.d/a/b"), "nested");
	ok(sbom_wants_path("lib/apk/db/installed"), "apk");
	ok(sbom_wants_path("usr/lib/os-release") && sbom_wants_path("etc/os-release"),
	   "os-release");
	ok(!sbom_wants_path("var/lib/dpkg/status-old") && !sbom_wants_path("etc/passwd"), "others");
}

TEST(dpkg_packages_and_purls)
{
	cleanup_sbom struct sbom *sb = sbom_new("img");
	size_t i = sbom_add_image(sb, "debian:12", DIGEST_A, "amd64", "init[0]");
	sbom_add_file(sb, i, "var/lib/dpkg/status", dpkg_status, strlen(dpkg_status));
	static const char osr[] = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"
				  "ID=debian\nVERSION_ID=\"12\"\n";
	sbom_add_file(sb, i, "usr/lib/os-release", osr, strlen(osr));
	cleanup_free char *text = sbom_write(sb, 0, NULL);
	json_t *doc = parse(text);
	ok(doc != NULL, "valid JSON");
	is_int(count_prefix(doc, "SPDXRef-Package-"), 2,
	       "installed packages (config-files left out)");
	json_t *libc = find_package(doc, "libc6"), *bsd = find_package(doc, "bsdutils");
	ok(libc && bsd, "libc6 and bsdutils listed");
	ok(find_package(doc, "not-a-package") == NULL, "continuation lines are not fields");
	if (libc && bsd) {
		is_str(json_string_value(json_object_get(libc, "versionInfo")), "2.36-9+deb12u4",
		       "version");
		is_str(purl_of(libc),
		       "pkg:deb/debian/"
		       "libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
		       "libc6 purl");
		is_str(purl_of(bsd),
		       "pkg:deb/debian/"
		       "bsdutils@1:2.38.1-5%2Bb1?arch=amd64&distro=debian-12&upstream=util-linux",
		       "epoch kept, source version dropped");
	}
	json_decref(doc);
}

TEST(dpkg_crlf_and_blank_lines)
{
	/* CRLF lines, a whitespace-only line between stanzas (deb822 lets it
	 * separate them, as dpkg does), a continuation line that looks like a
	 * field, a removed package, no final newline */
	static const char status[] = "Package: a\r\nStatus: install ok installed\r\n"
				     "Version: 1\r\nDescription: x\r\n Package: fake\r\n"
				     " \t\r\n"
				     "Package: gone\nStatus: deinstall ok config-files\nVersion: 2\n"
				     "\n\n"
				     "package: b\nversion: 3 \narchitecture: all";
	cleanup_sbom struct sbom *sb = sbom_new("img");
	size_t i = sbom_add_image(sb, "debian:12", DIGEST_A, "amd64", "init[0]");
	sbom_add_file(sb, i, "var/lib/dpkg/status", status, strlen(status));
	cleanup_free char *text = sbom_write(sb, 0, NULL);
	json_t *doc = parse(text);
	ok(doc != NULL, "valid JSON");
	is_int(count_prefix(doc, "SPDXRef-Package-"), 2, "a and b (gone left out)");
	json_t *a = find_package(doc, "a"), *b = find_package(doc, "b");
	ok(a && b && find_package(doc, "fake") == NULL && find_package(doc, "gone") == NULL,
	   "a and b listed, no fake, no gone");
	if (a && b) {
		is_str(json_string_value(json_object_get(a, "versionInfo")), "1",
		       "no CR in the version");
		is_str(json_string_value(json_object_get(b, "versionInfo")), "3",
		       "lower-case names, trailing blank dropped, no final newline");
	}
	json_decref(doc);
}

TEST(apk_packages)
{
	cleanup_sbom struct sbom *sb = sbom_new("img");
	size_t i = sbom_add_image(sb, "alpine:3.19", DIGEST_A, "amd64", "onboot[0] x");
	sbom_add_file(sb, i, "lib/apk/db/installed", apk_db, strlen(apk_db));
	static const char osr[] = "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n";
	/* etc/os-release first: usr/lib's wins whatever the order */
	sbom_add_file(sb, i, "etc/os-release", "ID=other\n", 9);
	sbom_add_file(sb, i, "usr/lib/os-release", osr, strlen(osr));
	sbom_add_file(sb, i, "etc/os-release", "ID=other\n", 9);
	cleanup_free char *text = sbom_write(sb, 0, NULL);
	json_t *doc = parse(text);
	json_t *musl = find_package(doc, "musl"), *bb = find_package(doc, "busybox-binsh");
	ok(musl && bb, "both apk packages listed");
	if (musl && bb) {
		is_str(purl_of(musl),
		       "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1",
		       "musl purl (origin = name: no upstream)");
		is_str(purl_of(bb),
		       "pkg:apk/alpine/"
		       "busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox",
		       "busybox-binsh purl");
	}
	json_decref(doc);
}

TEST(document_shape)
{
	cleanup_sbom struct sbom *sb = sbom_new("my image");
	size_t a = sbom_add_image(sb, "127.0.0.1:5000/kiln/getty:v1", DIGEST_A, "amd64",
				  "onshutdown[0] shutdown");
	size_t b = sbom_add_image(sb, "127.0.0.1:5000/kiln/getty:v1", DIGEST_A, "amd64",
				  "services[0] getty");
	is_int(a, b, "the same image twice is one image");
	size_t c = sbom_add_image(sb, "alpine", DIGEST_B, "amd64", "init[0]");
	sbom_add_file(sb, c, "lib/apk/db/installed", apk_db, strlen(apk_db));
	/* the same name twice in one image gets distinct ids */
	static const char two[] = "Package: x\nVersion: 1\nArchitecture: amd64\n\n"
				  "Package: x\nVersion: 1\nArchitecture: i386\n";
	sbom_add_file(sb, a, "var/lib/dpkg/status", two, strlen(two));
	cleanup_free char *text = sbom_write(sb, 1700000000, NULL);
	json_t *doc = parse(text);
	ok(doc != NULL, "valid JSON");
	if (!doc)
		return;
	static const char *const keys[] = {"spdxVersion", "dataLicense",       "SPDXID",
					   "name",	  "documentNamespace", "creationInfo",
					   "packages",	  "relationships"};
	const char *k = text;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		cleanup_free char *q = xasprintf("\n  \"%s\":", keys[i]);
		const char *at = strstr(text, q);
		ok(at && at > k - 1, "top-level key %s in order", keys[i]);
		if (at)
			k = at;
	}
	is_str(json_string_value(json_object_get(doc, "spdxVersion")), "SPDX-2.3", "version");
	is_str(json_string_value(json_object_get(json_object_get(doc, "creationInfo"), "created")),
	       "2023-11-14T22:13:20Z", "created from the time given");
	const char *ns = json_string_value(json_object_get(doc, "documentNamespace"));
	ok(ns && str_has_prefix(ns, "https://spdx.org/spdxdocs/kiln-my-image-") &&
	       strlen(ns) == strlen("https://spdx.org/spdxdocs/kiln-my-image-") + 64,
	   "namespace ends in a hash: %s", ns ? ns : "(null)");
	/* ids: unique, of SPDX's characters; relationships name existing ids */
	struct pathmap *ids = pathmap_new(0);
	size_t i;
	json_t *p;
	json_array_foreach(json_object_get(doc, "packages"), i, p)
	{
		const char *id = json_string_value(json_object_get(p, "SPDXID"));
		ok(id && strspn(id + 8, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
					"0123456789.-") == strlen(id + 8),
		   "id `%s` has SPDX characters only", id ? id : "");
		if (id == NULL)
			continue;
		bool created = false;
		pathmap_put(ids, id, strlen(id), &created);
		ok(created, "id `%s` is unique", id);
	}
	pathmap_put(ids, "SPDXRef-DOCUMENT", 16, NULL);
	is_int(json_array_size(json_object_get(doc, "packages")), 1 + 2 + 2 + 2,
	       "root, two images, two apk and two deb packages");
	json_t *r;
	size_t contains = 0;
	json_array_foreach(json_object_get(doc, "relationships"), i, r)
	{
		const char *x = json_string_value(json_object_get(r, "spdxElementId"));
		const char *y = json_string_value(json_object_get(r, "relatedSpdxElement"));
		ok(x && y && pathmap_get(ids, x, strlen(x)) && pathmap_get(ids, y, strlen(y)),
		   "relationship %s -> %s names packages", x, y);
		contains += strcmp(json_string_value(json_object_get(r, "relationshipType")),
				   "CONTAINS") == 0;
	}
	is_int(contains, 6, "CONTAINS: root->2 images, images->4 packages");
	pathmap_free(ids);
	json_t *img = json_array_get(json_object_get(doc, "packages"), 1);
	is_str(purl_of(img),
	       "pkg:oci/"
	       "getty@sha256%3Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	       "?arch=amd64&repository_url=127.0.0.1:5000/kiln/getty&tag=v1",
	       "image purl");
	is_str(json_string_value(json_object_get(img, "comment")),
	       "used at onshutdown[0] shutdown, services[0] getty", "both uses named");
	json_decref(doc);
}

/* Two documents from the same facts added in another order are the same
 * bytes; another version changes the namespace. */
TEST(deterministic)
{
	static const char s1[] = "Package: b\nVersion: 2\nArchitecture: amd64\n";
	static const char s2[] = "Package: a\nVersion: 1\nArchitecture: all\n";
	cleanup_sbom struct sbom *x = sbom_new("n");
	cleanup_sbom struct sbom *y = sbom_new("n");
	cleanup_sbom struct sbom *z = sbom_new("n");
	size_t xi = sbom_add_image(x, "r", DIGEST_A, "amd64", "init[0]");
	sbom_add_file(x, xi, "var/lib/dpkg/status.d/b", s1, strlen(s1));
	sbom_add_file(x, xi, "var/lib/dpkg/status.d/a", s2, strlen(s2));
	size_t yi = sbom_add_image(y, "r", DIGEST_A, "amd64", "init[0]");
	sbom_add_file(y, yi, "var/lib/dpkg/status.d/a", s2, strlen(s2));
	sbom_add_file(y, yi, "var/lib/dpkg/status.d/b", s1, strlen(s1));
	size_t zi = sbom_add_image(z, "r", DIGEST_A, "amd64", "init[0]");
	sbom_add_file(z, zi, "var/lib/dpkg/status.d/a", s2, strlen(s2));
	sbom_add_file(z, zi, "var/lib/dpkg/status.d/b", "Package: b\nVersion: 3\n", 22);
	cleanup_free char *tx = sbom_write(x, 5, NULL);
	cleanup_free char *ty = sbom_write(y, 5, NULL);
	cleanup_free char *tz = sbom_write(z, 5, NULL);
	cleanup_free char *tx6 = sbom_write(x, 6, NULL);
	is_str(tx, ty, "same bytes whatever the order of the files");
	ok(strcmp(tx, tz) != 0, "another version, another document");
	json_t *dx = parse(tx), *dz = parse(tz), *dx6 = parse(tx6);
	ok(strcmp(json_string_value(json_object_get(dx, "documentNamespace")),
		  json_string_value(json_object_get(dz, "documentNamespace"))) != 0 &&
	       strcmp(json_string_value(json_object_get(dx, "documentNamespace")),
		      json_string_value(json_object_get(dx6, "documentNamespace"))) != 0,
	   "the namespace follows the content and the time");
	json_t *a = find_package(dx, "a");
	ok(a && strcmp(json_string_value(json_object_get(a, "SPDXID")),
		       "SPDXRef-Package-0-deb-a-all") == 0,
	   "id from position, type, name, arch");
	json_decref(dx);
	json_decref(dz);
	json_decref(dx6);
}

/* A gzip tar layer with ENTRIES (path, contents; contents NULL = directory). */
static void put_layer(struct store *s, const char *const (*entries)[2], size_t n,
		      char digest[DIGEST_STRLEN])
{
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	size_t cap = 1 << 20, used = 0;
	char *buf = xmalloc(cap);
	archive_write_open_memory(a, buf, cap, &used);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, entries[i][0]);
		archive_entry_set_filetype(e, entries[i][1] ? AE_IFREG : AE_IFDIR);
		archive_entry_set_perm(e, entries[i][1] ? 0644 : 0755);
		size_t len = entries[i][1] ? strlen(entries[i][1]) : 0;
		archive_entry_set_size(e, (la_int64_t)len);
		archive_write_header(a, e);
		if (len)
			archive_write_data(a, entries[i][1], len);
		archive_entry_free(e);
	}
	archive_write_close(a);
	archive_write_free(a);
	struct kiln_error *err = NULL;
	ok(store_put_blob(s, buf, used, digest, &err) == 0, "layer stored");
	kiln_error_release(&err);
	free(buf);
}

TEST(scans_layers_with_whiteouts_and_cache)
{
	struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("store", &err);
	ok(s != NULL, "store opens");
	if (!s)
		return;
	static const char *const lower[][2] = {
	    {"var/", NULL},
	    {"var/lib/", NULL},
	    {"var/lib/dpkg/", NULL},
	    {"var/lib/dpkg/status.d/", NULL},
	    {"var/lib/dpkg/status.d/a", "Package: a\nVersion: 1\nArchitecture: amd64\n"},
	    {"var/lib/dpkg/status.d/b", "Package: b\nVersion: 1\nArchitecture: amd64\n"},
	    {"var/lib/dpkg/status.d/c", "Package: c\nVersion: 1\nArchitecture: amd64\n"},
	    {"etc/passwd", "root:x:0:0::/:/bin/sh\n"},
	};
	static const char *const upper[][2] = {
	    {"var/lib/dpkg/status.d/.wh.b", ""},
	    {"var/lib/dpkg/status.d/c", "Package: c\nVersion: 2\nArchitecture: amd64\n"},
	    {"usr/lib/os-release", "ID=debian\nVERSION_ID=\"12\"\n"},
	};
	struct image img = {.name = (char *)"test/img:1", .nlayers = 2};
	struct image_layer layers[2] = {0};
	put_layer(s, lower, ARRAY_SIZE(lower), layers[0].digest);
	put_layer(s, upper, ARRAY_SIZE(upper), layers[1].digest);
	img.layers = layers;
	strcpy(img.manifest_digest, DIGEST_A);
	ok(mkdir("cache", 0755) == 0, "cache dir");
	cleanup_free char *first = NULL;
	for (int round = 0; round < 2; round++) {
		cleanup_sbom struct sbom *sb = sbom_new("x");
		size_t i = sbom_add_image(sb, img.name, DIGEST_A, "amd64", "init[0]");
		int r = sbom_scan_image(sb, i, s, &img, "cache", &err);
		ok(r == 0, "scan %d: %s", round, err ? err->msg : "ok");
		kiln_error_release(&err);
		char *text = sbom_write(sb, 0, NULL);
		json_t *doc = parse(text);
		json_t *c = find_package(doc, "c");
		ok(find_package(doc, "a") && c && !find_package(doc, "b"),
		   "round %d: a and the upper c, b whited out", round);
		ok(c && strcmp(purl_of(c), "pkg:deb/debian/c@2?arch=amd64&distro=debian-12") == 0,
		   "round %d: upper layer's c with the os-release distro", round);
		json_decref(doc);
		if (round == 0) {
			first = text;
			/* the second round must come from the cache alone */
			for (int k = 0; k < 2; k++) {
				cleanup_free char *path = store_blob_path(s, layers[k].digest);
				ok(unlink(path) == 0, "layer %d removed", k);
			}
		} else {
			is_str(text, first, "the cached scan gives the same document");
			free(text);
		}
	}
	/* without a cache and without the layers: an error naming the image */
	cleanup_sbom struct sbom *sb = sbom_new("x");
	ok(sbom_scan_image(sb, sbom_add_image(sb, img.name, DIGEST_A, "amd64", "init[0]"), s, &img,
			   NULL, &err) < 0 &&
	       err && strstr(err->msg, "test/img:1"),
	   "missing layer is an error naming the image: %s", err ? err->msg : "(none)");
	kiln_error_release(&err);
}
