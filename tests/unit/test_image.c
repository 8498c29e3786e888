/* image_load against images made by the real umoci and skopeo
 * (tests/fixtures/mkimages.sh). */
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "image.h"
#include "oci.h"
#include "store.h"
#include "tap.h"
#include "util.h"

static char top[4096];
static char fixture_dir[4096]; /* the images mkimages.sh makes, once named */
static char fixture[4200];     /* its OCI layout */
static int fixture_state;      /* 0 not built, 1 built, -1 unavailable */

__attribute__((constructor)) static void remember_top(void)
{
	if (getcwd(top, sizeof top) == NULL)
		top[0] = '\0';
}

/* The whole directory: the layout and the docker-save and oci-archive tars
 * beside it, or what a failed mkimages.sh left. */
static void remove_fixture(void)
{
	if (fixture_dir[0])
		rm_rf(fixture_dir, NULL);
}

/* Builds the fixture images once per run; returns the OCI layout or NULL. */
static const char *fixture_layout(void)
{
	if (fixture_state == 0) {
		fixture_state = -1;
		const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(fixture_dir, sizeof fixture_dir, "%s/kiln-image-fixture-%d", base,
			 (int)getpid());
		atexit(remove_fixture);
		cleanup_free char *cmd =
		    xasprintf("command -v umoci >/dev/null && command -v skopeo >/dev/null && "
			      "'%s/tests/fixtures/mkimages.sh' '%s' >/dev/null",
			      top, fixture_dir);
		int st = system(cmd);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			fixture_state = 1;
			snprintf(fixture, sizeof fixture, "%s/layout", fixture_dir);
		}
	}
	return fixture_state == 1 ? fixture : NULL;
}

/* A private, writable copy of the fixture layout at ./c. */
static struct store *fixture_copy(void)
{
	const char *l = fixture_layout();
	if (l == NULL)
		return NULL;
	cleanup_free char *cmd = xasprintf("cp -r '%s' c && chmod -R u+w c", l);
	if (system(cmd) != 0)
		return NULL;
	return store_open("c", NULL);
}

static char *digest_of(struct store *s, const char *name)
{
	char d[DIGEST_STRLEN];
	if (store_lookup(s, name, d, NULL) != 1)
		return xstrdup("");
	return xstrdup(d);
}

#define NEED_FIXTURE(s)                                                                            \
	if ((s) == NULL)                                                                           \
	skip("umoci/skopeo fixtures unavailable")

TEST(single_platform_oci)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = fixture_copy();
	NEED_FIXTURE(s);
	cleanup_image struct image *img = image_load(s, "base", "amd64", &err);
	ok(img != NULL, "load base (%s)", err ? err->msg : "");
	if (!img)
		return;
	cleanup_free char *d = digest_of(s, "base");
	is_str(img->root_digest, d, "root digest");
	is_str(img->manifest_digest, d, "manifest is the root");
	is_int(img->nlayers, 1, "one layer");
	is_str(img->layers[0].media_type, OCI_MEDIA_LAYER_GZIP, "gzip layer");
	ok(img->layers[0].size > 500000, "layer holds busybox");
	is_str(img->architecture, "amd64", "arch");
	is_str(img->os, "linux", "os");
	is_str(img->manifest_media_type, OCI_MEDIA_MANIFEST, "manifest type");
	is_str(image_label(img, "org.mobyproject.config"),
	       "{\"binds\":[\"/var:/var\"],\"readonly\":true}", "label");
	ok(image_label(img, "nope") == NULL, "absent label");
	ok(store_has_blob(s, img->config_digest), "config present");
	json_t *cmd = json_object_get(json_object_get(img->config, "config"), "Cmd");
	is_str(json_string_value(json_array_get(cmd, 0)), "/bin/sh", "Cmd");
	int fd = store_blob_open(s, img->layers[0].digest, &err);
	ok(fd >= 0, "layer opens");
	if (fd >= 0)
		close(fd);

	/* uname spelling and the host default. */
	cleanup_image struct image *img2 = image_load(s, "base", "x86_64", &err);
	ok(img2 != NULL, "x86_64 alias");
	cleanup_image struct image *img3 = image_load(s, d, NULL, &err);
	ok(img3 != NULL, "by digest, host arch");
	cleanup_image struct image *img4 = image_load(s, "base", "arm64", &err);
	ok(img4 == NULL && err &&
	       strstr(err->msg, "image base: image is linux/amd64, not linux/arm64"),
	   "wrong arch: %s", err ? err->msg : "");
}

TEST(compressions_and_docker)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = fixture_copy();
	NEED_FIXTURE(s);
	static const struct {
		const char *name, *layer_type, *manifest_type;
	} cases[] = {
	    {"two", OCI_MEDIA_LAYER_GZIP, OCI_MEDIA_MANIFEST},
	    {"zstd", OCI_MEDIA_LAYER_ZSTD, OCI_MEDIA_MANIFEST},
	    {"plain", OCI_MEDIA_LAYER, OCI_MEDIA_MANIFEST},
	    {"docker", DOCKER_MEDIA_LAYER_GZIP, DOCKER_MEDIA_MANIFEST},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_image struct image *img = image_load(s, cases[i].name, "amd64", &err);
		ok(img != NULL, "%s loads (%s)", cases[i].name, err ? err->msg : "");
		kiln_error_release(&err);
		if (!img)
			continue;
		is_int(img->nlayers, 2, cases[i].name);
		is_str(img->layers[0].media_type, cases[i].layer_type, cases[i].name);
		is_str(img->layers[1].media_type, cases[i].layer_type, cases[i].name);
		is_str(img->manifest_media_type, cases[i].manifest_type, cases[i].name);
		ok(image_label(img, "org.mobyproject.config") != NULL, "%s: label", cases[i].name);
	}
	cleanup_image struct image *z = image_load(s, "zstd", "amd64", &err);
	ok(z && oci_layer_compression(z->layers[0].media_type) == OCI_COMPRESSION_ZSTD, "zstd");
}

TEST(index_platform_choice)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = fixture_copy();
	NEED_FIXTURE(s);
	cleanup_free char *two = digest_of(s, "two");
	cleanup_free char *arm = digest_of(s, "two-arm64");
	cleanup_free char *multi = digest_of(s, "multi");
	cleanup_free char *docker = digest_of(s, "docker");
	cleanup_image struct image *a = image_load(s, "multi", "amd64", &err);
	ok(a != NULL, "amd64 from index (%s)", err ? err->msg : "");
	if (a) {
		is_str(a->root_digest, multi, "root is the index");
		is_str(a->root_media_type, OCI_MEDIA_INDEX, "root type");
		is_str(a->manifest_digest, two, "amd64 manifest");
	}
	cleanup_image struct image *b = image_load(s, "multi", "arm64", &err);
	ok(b && strcmp(b->manifest_digest, arm) == 0, "arm64 manifest");
	cleanup_image struct image *c = image_load(s, "multi", "arm64/v8", &err);
	ok(c && strcmp(c->manifest_digest, arm) == 0, "arm64/v8 manifest");
	cleanup_image struct image *c2 = image_load(s, "multi", "linux/aarch64", &err);
	ok(c2 && strcmp(c2->manifest_digest, arm) == 0, "linux/aarch64 manifest");
	cleanup_image struct image *d = image_load(s, "multi", "arm64/v7", &err);
	ok(d == NULL && err && strstr(err->msg, "no linux/arm64/v7 image"), "v7 refused: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	cleanup_image struct image *e = image_load(s, "multi", "riscv64", &err);
	ok(e == NULL && err && strstr(err->msg, "(it has linux/amd64, linux/arm64/v8)"),
	   "riscv64 refused: %s", err ? err->msg : "");
	kiln_error_release(&err);
	cleanup_image struct image *f = image_load(s, "multi-docker", "amd64", &err);
	ok(f && strcmp(f->manifest_digest, docker) == 0 &&
	       strcmp(f->root_media_type, DOCKER_MEDIA_MANIFEST_LIST) == 0,
	   "Docker manifest list (%s)", err ? err->msg : "");
	kiln_error_release(&err);
	/* The arm64 manifest not pulled: a clear error. */
	store_blob_remove(s, arm, &err);
	cleanup_image struct image *g = image_load(s, "multi", "arm64", &err);
	ok(g == NULL && err && strstr(err->msg, "linux/arm64 manifest") &&
	       strstr(err->msg, "is not in the store"),
	   "missing platform manifest: %s", err ? err->msg : "");
}

TEST(names)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = fixture_copy();
	NEED_FIXTURE(s);
	cleanup_free char *two = digest_of(s, "two");
	int64_t size = store_blob_size(s, two);
	ok(store_tag(s, "docker.io/library/alpine:latest", two, OCI_MEDIA_MANIFEST, size, &err) ==
	       0,
	   "tag");
	cleanup_image struct image *a = image_load(s, "alpine", "amd64", &err);
	ok(a && strcmp(a->manifest_digest, two) == 0, "short name normalised");
	cleanup_free char *pinned = xasprintf("example.com/x@%s", two);
	cleanup_image struct image *b = image_load(s, pinned, "amd64", &err);
	ok(b && strcmp(b->manifest_digest, two) == 0, "pinned digest present");
	cleanup_image struct image *c = image_load(s, "nothere:1", "amd64", &err);
	ok(c == NULL && err && strstr(err->msg, "image nothere:1: not in the store"), "absent: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	char root[DIGEST_STRLEN];
	is_int(image_resolve_name(s, "nothere:1", root, &err), 0, "resolve absent");
	is_int(image_resolve_name(s, "alpine", root, &err), 1, "resolve normalised");
}

TEST(hostile_store)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = fixture_copy();
	NEED_FIXTURE(s);
	cleanup_image struct image *img = image_load(s, "two", "amd64", &err);
	ok(img != NULL, "loads");
	if (!img)
		return;
	/* A corrupted config. */
	cleanup_free char *cp = store_blob_path(s, img->config_digest);
	write_file_atomic(cp, "{}", 2, 0644, NULL);
	cleanup_image struct image *a = image_load(s, "two", "amd64", &err);
	ok(a == NULL && err && strstr(err->msg, "digest mismatch"), "corrupt config: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	/* A missing layer. */
	store_blob_remove(s, img->layers[1].digest, &err);
	cleanup_image struct image *b = image_load(s, "docker", "amd64", &err);
	ok(b == NULL && err && strstr(err->msg, "is not in the store"), "missing layer: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	/* An oversized manifest. */
	size_t big = OCI_MANIFEST_MAX + 10;
	char *data = xmalloc(big);
	memset(data, ' ', big);
	data[0] = '{';
	data[big - 1] = '}';
	char d[DIGEST_STRLEN];
	store_put_blob(s, data, big, d, &err);
	free(data);
	store_tag(s, "big", d, OCI_MEDIA_MANIFEST, (int64_t)big, &err);
	cleanup_image struct image *c = image_load(s, "big", "amd64", &err);
	ok(c == NULL && err && strstr(err->msg, "more than the limit"), "oversized: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	/* A manifest with a layer type kiln cannot read, and an artifact. */
	const char *bad[] = {
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" OCI_MEDIA_CONFIG "\",\"digest\":"
	    "\"%s\",\"size\":2},\"layers\":[{\"mediaType\":\"application/x-foo\",\"digest\":"
	    "\"%s\",\"size\":2}]}",
	    "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.cncf.helm.config."
	    "v1+json\",\"digest\":\"%s\",\"size\":2},\"layers\":[]}",
	    "{\"schemaVersion\":1,\"config\":{}}",
	    "[1,2]",
	    "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"x\",\"digest\":\"sha256:zz\","
	    "\"size\":1}]}",
	    /* Found by fuzz_image: the message used the media type after its
	     * JSON was freed. */
	    "{\"schemaVersion\":2,\"mediaType\":\"application/x-weird\",\"config\":{}}",
	    "{\"schemaVersion\":1,\"mediaType\":\"application/vnd.docker.distribution.manifest."
	    "v1+prettyjws\"}",
	};
	const char *why[] = {"unsupported media type `application/x-foo`",
			     "not an image config",
			     "schemaVersion is not 2",
			     "not a JSON object",
			     "manifests[0]",
			     "neither an image manifest nor an index but application/x-weird",
			     "Docker schema 1 manifests are not supported"};
	char e2[DIGEST_STRLEN];
	store_put_blob(s, "{}", 2, e2, &err);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		cleanup_free char *m = xasprintf(bad[i], e2, e2);
#pragma GCC diagnostic pop
		store_put_blob(s, m, strlen(m), d, &err);
		store_tag(s, "bad", d, OCI_MEDIA_MANIFEST, (int64_t)strlen(m), &err);
		cleanup_image struct image *x = image_load(s, "bad", "amd64", &err);
		ok(x == NULL && err && strstr(err->msg, why[i]), "bad %zu: %s", i,
		   err ? err->msg : "");
		kiln_error_release(&err);
	}
}
