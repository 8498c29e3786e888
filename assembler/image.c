/* Resolving an image in the store: name -> root blob -> (platform choice in
 * an index or manifest list) -> manifest -> config and layers.  Every JSON
 * blob is size-limited and digest-checked as it is read (store_blob_read). */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "oci.h"
#include "ref.h"
#include "strbuf.h"
#include "util.h"

#define INDEX_DEPTH_MAX 4

const char *image_host_arch(void)
{
#if defined(__x86_64__)
	return "amd64";
#elif defined(__aarch64__)
	return "arm64";
#elif defined(__riscv) && __riscv_xlen == 64
	return "riscv64";
#elif defined(__s390x__)
	return "s390x";
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return "ppc64le";
#elif defined(__arm__)
	return "arm";
#elif defined(__i386__)
	return "386";
#else
	return "unknown";
#endif
}

/* Splits "ARCH[/VARIANT]" (also "linux/ARCH[/VARIANT]" and uname spellings
 * x86_64, aarch64) into *ARCH and *VARIANT (NULL when absent).  Caller frees
 * both. */
static void split_arch(const char *req, char **arch, char **variant)
{
	if (req == NULL || *req == '\0')
		req = image_host_arch();
	if (str_has_prefix(req, "linux/"))
		req += 6;
	const char *slash = strchr(req, '/');
	*arch = slash ? xstrndup(req, (size_t)(slash - req)) : xstrdup(req);
	*variant = slash && slash[1] ? xstrdup(slash + 1) : NULL;
	static const struct {
		const char *from, *to;
	} aliases[] = {{"x86_64", "amd64"},
		       {"x86-64", "amd64"},
		       {"aarch64", "arm64"},
		       {"armhf", "arm"},
		       {"i386", "386"}};
	for (size_t i = 0; i < ARRAY_SIZE(aliases); i++) {
		if (strcmp(*arch, aliases[i].from) == 0) {
			free(*arch);
			*arch = xstrdup(aliases[i].to);
		}
	}
}

/* arm64 without a variant means v8. */
static bool variant_matches(const char *arch, const char *want, const char *have)
{
	if (want == NULL)
		return true;
	if (have == NULL)
		return strcmp(arch, "arm64") == 0 && strcmp(want, "v8") == 0;
	return strcmp(want, have) == 0;
}

int image_resolve_name(struct store *s, const char *name, char root[DIGEST_STRLEN],
		       struct kiln_error **err)
{
	if (digest_is_valid(name)) {
		if (!store_has_blob(s, name))
			return 0;
		memcpy(root, name, DIGEST_STRLEN);
		return 1;
	}
	int r = store_lookup(s, name, root, err);
	if (r != 0)
		return r;
	/* Not as written: try the normal form ("alpine" -> docker.io/library/alpine:latest),
	 * then a pinned digest that is present. */
	struct image_ref ref;
	struct kiln_error *perr = NULL;
	if (ref_parse(name, &ref, &perr) < 0) {
		kiln_error_release(&perr);
		return 0;
	}
	cleanup_free char *norm = ref_string(&ref);
	if (strcmp(norm, name) != 0)
		r = store_lookup(s, norm, root, err);
	if (r == 0 && ref.digest && store_has_blob(s, ref.digest)) {
		memcpy(root, ref.digest, DIGEST_STRLEN);
		r = 1;
	}
	ref_release(&ref);
	return r;
}

/* Reads blob DIGEST as a JSON object (≤ MAX bytes, digest-checked) and checks
 * its size against the descriptor's SIZE (when >= 0). */
static json_t *read_json_blob(struct store *s, const char *digest, int64_t size, size_t max,
			      const char *what, struct kiln_error **err)
{
	size_t n = 0;
	cleanup_free char *data = store_blob_read(s, digest, max, &n, err);
	if (data == NULL) {
		kiln_error_wrap(err, "%s", what);
		return NULL;
	}
	if (size >= 0 && (uint64_t)size != n) {
		kiln_error_make(err, 0, "%s %s: descriptor says %lld bytes, blob has %zu", what,
				digest, (long long)size, n);
		return NULL;
	}
	cleanup_free char *label = xasprintf("%s %s", what, digest);
	json_t *j = oci_json_parse(data, n, label, err);
	if (j && !json_is_object(j)) {
		json_decref(j);
		kiln_error_make(err, 0, "%s: not a JSON object", label);
		return NULL;
	}
	return j;
}

/* Describes the platforms an index offers ("linux/amd64, linux/arm64/v8").
 * Caller frees. */
static char *platforms_of(json_t *manifests)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;
	json_t *m;
	json_array_foreach(manifests, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *a = json_string_value(json_object_get(p, "architecture"));
		const char *v = json_string_value(json_object_get(p, "variant"));
		if (os == NULL || a == NULL || strcmp(os, "unknown") == 0)
			continue;
		strbuf_printf(&sb, "%s%s/%s%s%s", sb.len ? ", " : "", os, a, v ? "/" : "",
			      v ? v : "");
	}
	if (sb.len == 0)
		strbuf_puts(&sb, "none");
	return strbuf_detach(&sb, NULL);
}

/* Chooses the linux/ARCH[/VARIANT] entry of index DOC.  Fills D (borrowed
 * from DOC). */
static int choose_platform(json_t *doc, const char *digest, const char *arch, const char *variant,
			   struct oci_descriptor *d, struct kiln_error **err)
{
	json_t *manifests = json_object_get(doc, "manifests");
	if (!json_is_array(manifests))
		return kiln_error_make(err, 0, "index %s has no \"manifests\" array", digest);
	int best = -1, best_score = 0;
	size_t i;
	json_t *m;
	json_array_foreach(manifests, i, m)
	{
		struct oci_descriptor c;
		if (oci_descriptor_parse(m, &c, err) < 0)
			return kiln_error_wrap(err, "index %s: manifests[%zu]", digest, i);
		if (c.os == NULL || strcmp(c.os, "linux") != 0 || c.architecture == NULL ||
		    strcmp(c.architecture, arch) != 0 || !variant_matches(arch, variant, c.variant))
			continue;
		/* Without a requested variant, prefer an entry without one (or v8
		 * on arm64); an exact variant match is best of all. */
		int score = variant ? (c.variant && strcmp(c.variant, variant) == 0 ? 3 : 2)
				    : (c.variant == NULL ? 3 : 1);
		if (score > best_score) {
			best = (int)i;
			best_score = score;
		}
	}
	if (best < 0) {
		cleanup_free char *have = platforms_of(manifests);
		return kiln_error_make(err, 0, "index %s has no linux/%s%s%s image (it has %s)",
				       digest, arch, variant ? "/" : "", variant ? variant : "",
				       have);
	}
	return oci_descriptor_parse(json_array_get(manifests, (size_t)best), d, err);
}

static bool is_config_type(const char *mt)
{
	return strcmp(mt, OCI_MEDIA_CONFIG) == 0 || strcmp(mt, DOCKER_MEDIA_CONFIG) == 0;
}

static int load_manifest(struct store *s, struct image *img, const char *arch,
			 struct kiln_error **err)
{
	const char *md = img->manifest_digest;
	json_t *doc = img->manifest;
	json_t *sv = json_object_get(doc, "schemaVersion");
	if (json_integer_value(sv) != 2)
		return kiln_error_make(err, 0, "manifest %s: schemaVersion is not 2", md);
	struct oci_descriptor cd;
	if (oci_descriptor_parse(json_object_get(doc, "config"), &cd, err) < 0)
		return kiln_error_wrap(err, "manifest %s: config", md);
	if (!is_config_type(cd.media_type))
		return kiln_error_make(err, 0,
				       "manifest %s: config media type `%s` is not an image "
				       "config (is this an artifact rather than an image?)",
				       md, cd.media_type);
	memcpy(img->config_digest, cd.digest, DIGEST_STRLEN);
	json_t *layers = json_object_get(doc, "layers");
	if (!json_is_array(layers))
		return kiln_error_make(err, 0, "manifest %s has no \"layers\" array", md);
	img->nlayers = json_array_size(layers);
	img->layers = xcalloc(img->nlayers + 1, sizeof *img->layers);
	for (size_t i = 0; i < img->nlayers; i++) {
		struct oci_descriptor ld;
		if (oci_descriptor_parse(json_array_get(layers, i), &ld, err) < 0)
			return kiln_error_wrap(err, "manifest %s: layers[%zu]", md, i);
		if (oci_layer_compression(ld.media_type) == OCI_COMPRESSION_UNKNOWN)
			return kiln_error_make(err, 0,
					       "manifest %s: layer %s has unsupported media type "
					       "`%s`",
					       md, ld.digest, ld.media_type);
		struct image_layer *l = &img->layers[i];
		memcpy(l->digest, ld.digest, DIGEST_STRLEN);
		l->media_type = xstrdup(ld.media_type);
		l->size = ld.size;
		int64_t have = store_blob_size(s, ld.digest);
		if (have < 0)
			return kiln_error_make(err, 0, "layer %s is not in the store `%s`",
					       ld.digest, store_dir(s));
		if (have != ld.size)
			return kiln_error_make(
			    err, 0, "layer %s: manifest says %lld bytes, the blob has %lld",
			    ld.digest, (long long)ld.size, (long long)have);
	}
	img->config = read_json_blob(s, cd.digest, cd.size, OCI_CONFIG_MAX, "config", err);
	if (img->config == NULL)
		return -1;
	img->os = xstrdup(json_string_value(json_object_get(img->config, "os")));
	img->architecture =
	    xstrdup(json_string_value(json_object_get(img->config, "architecture")));
	img->variant = xstrdup(json_string_value(json_object_get(img->config, "variant")));
	if (img->architecture && strcmp(img->architecture, arch) != 0)
		return kiln_error_make(err, 0, "image is %s/%s, not %s/%s",
				       img->os ? img->os : "linux", img->architecture,
				       img->os ? img->os : "linux", arch);
	json_t *diff_ids = json_object_get(json_object_get(img->config, "rootfs"), "diff_ids");
	if (json_is_array(diff_ids) && json_array_size(diff_ids) != img->nlayers)
		return kiln_error_make(err, 0,
				       "config %s lists %zu layer diff_ids but manifest %s has %zu "
				       "layers",
				       cd.digest, json_array_size(diff_ids), md, img->nlayers);
	return 0;
}

static int image_load_into(struct store *s, struct image *img, const char *name,
			   const char *arch_req, struct kiln_error **err)
{
	cleanup_free char *arch = NULL, *variant = NULL;
	split_arch(arch_req, &arch, &variant);
	int r = image_resolve_name(s, name, img->root_digest, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return kiln_error_make(err, 0, "not in the store `%s`", store_dir(s));

	char cur[DIGEST_STRLEN];
	memcpy(cur, img->root_digest, DIGEST_STRLEN);
	int64_t cur_size = -1;
	for (int depth = 0;; depth++) {
		json_t *doc = read_json_blob(s, cur, cur_size, OCI_MANIFEST_MAX,
					     depth ? "manifest" : "root", err);
		if (doc == NULL)
			return -1;
		const char *mt = oci_document_media_type(doc);
		if (depth == 0) {
			img->root_media_type = xstrdup(mt);
			img->root_size = store_blob_size(s, cur);
		}
		if (mt && str_has_prefix(mt, "application/vnd.docker.distribution.manifest.v1+")) {
			json_decref(doc);
			return kiln_error_make(
			    err, 0, "%s: Docker schema 1 manifests are not supported", cur);
		}
		if (oci_is_manifest(mt)) {
			memcpy(img->manifest_digest, cur, DIGEST_STRLEN);
			img->manifest = doc;
			img->manifest_media_type = xstrdup(mt);
			img->manifest_size = store_blob_size(s, cur);
			return load_manifest(s, img, arch, err);
		}
		if (!oci_is_index(mt)) {
			/* MT is borrowed from DOC: report before releasing it. */
			kiln_error_make(err, 0,
					"%s is neither an image manifest nor an index%s%.200s", cur,
					mt ? " but " : "", mt ? mt : "");
			json_decref(doc);
			return -1;
		}
		if (depth >= INDEX_DEPTH_MAX) {
			json_decref(doc);
			return kiln_error_make(err, 0, "indexes nested more than %d deep",
					       INDEX_DEPTH_MAX);
		}
		struct oci_descriptor d;
		if (choose_platform(doc, cur, arch, variant, &d, err) < 0) {
			json_decref(doc);
			return -1;
		}
		char next[DIGEST_STRLEN];
		memcpy(next, d.digest, DIGEST_STRLEN);
		cur_size = d.size;
		json_decref(doc);
		if (!store_has_blob(s, next))
			return kiln_error_make(err, 0,
					       "the linux/%s%s%s manifest %s of index %s is not in "
					       "the store `%s`",
					       arch, variant ? "/" : "", variant ? variant : "",
					       next, cur, store_dir(s));
		memcpy(cur, next, DIGEST_STRLEN);
	}
}

struct image *image_load(struct store *s, const char *name, const char *arch,
			 struct kiln_error **err)
{
	struct image *img = xcalloc(1, sizeof *img);
	img->name = xstrdup(name);
	if (image_load_into(s, img, name, arch, err) < 0) {
		kiln_error_wrap(err, "image %s", name);
		image_free(img);
		return NULL;
	}
	return img;
}

void image_free(struct image *img)
{
	if (img == NULL)
		return;
	for (size_t i = 0; i < img->nlayers && img->layers; i++)
		free(img->layers[i].media_type);
	free(img->layers);
	if (img->config)
		json_decref(img->config);
	if (img->manifest)
		json_decref(img->manifest);
	free(img->manifest_media_type);
	free(img->root_media_type);
	free(img->os);
	free(img->architecture);
	free(img->variant);
	free(img->name);
	free(img);
}

void image_freep(struct image **img)
{
	image_free(*img);
	*img = NULL;
}

const char *image_label(const struct image *img, const char *key)
{
	if (img == NULL || img->config == NULL)
		return NULL;
	json_t *labels = json_object_get(json_object_get(img->config, "config"), "Labels");
	return json_string_value(json_object_get(labels, key));
}
