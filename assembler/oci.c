/* OCI media types and descriptors (see oci.h). */
#include <string.h>

#include "oci.h"
#include "util.h"

static const struct {
	const char *media_type;
	enum oci_compression compression;
} layer_types[] = {
    {OCI_MEDIA_LAYER, OCI_COMPRESSION_NONE},
    {OCI_MEDIA_LAYER_GZIP, OCI_COMPRESSION_GZIP},
    {OCI_MEDIA_LAYER_ZSTD, OCI_COMPRESSION_ZSTD},
    {OCI_MEDIA_LAYER_NONDIST, OCI_COMPRESSION_NONE},
    {OCI_MEDIA_LAYER_NONDIST_GZIP, OCI_COMPRESSION_GZIP},
    {OCI_MEDIA_LAYER_NONDIST_ZSTD, OCI_COMPRESSION_ZSTD},
    {DOCKER_MEDIA_LAYER, OCI_COMPRESSION_NONE},
    {DOCKER_MEDIA_LAYER_GZIP, OCI_COMPRESSION_GZIP},
    {DOCKER_MEDIA_LAYER_ZSTD, OCI_COMPRESSION_ZSTD},
    {DOCKER_MEDIA_LAYER_FOREIGN_GZIP, OCI_COMPRESSION_GZIP},
};

enum oci_compression oci_layer_compression(const char *media_type)
{
	if (media_type == NULL)
		return OCI_COMPRESSION_UNKNOWN;
	for (size_t i = 0; i < ARRAY_SIZE(layer_types); i++)
		if (strcmp(media_type, layer_types[i].media_type) == 0)
			return layer_types[i].compression;
	return OCI_COMPRESSION_UNKNOWN;
}

bool oci_is_index(const char *media_type)
{
	return media_type && (strcmp(media_type, OCI_MEDIA_INDEX) == 0 ||
			      strcmp(media_type, DOCKER_MEDIA_MANIFEST_LIST) == 0);
}

bool oci_is_manifest(const char *media_type)
{
	return media_type && (strcmp(media_type, OCI_MEDIA_MANIFEST) == 0 ||
			      strcmp(media_type, DOCKER_MEDIA_MANIFEST) == 0);
}

int oci_descriptor_parse(json_t *obj, struct oci_descriptor *d, struct kiln_error **err)
{
	memset(d, 0, sizeof *d);
	if (!json_is_object(obj))
		return kiln_error_make(err, 0, "descriptor is not a JSON object");
	json_t *mt = json_object_get(obj, "mediaType");
	json_t *dg = json_object_get(obj, "digest");
	json_t *sz = json_object_get(obj, "size");
	if (!json_is_string(mt))
		return kiln_error_make(err, 0, "descriptor without a mediaType string");
	if (!json_is_string(dg))
		return kiln_error_make(err, 0, "descriptor without a digest string");
	if (!digest_is_valid(json_string_value(dg)))
		return kiln_error_make(err, 0, "descriptor digest `%.80s` is not sha256:<64 hex>",
				       json_string_value(dg));
	if (!json_is_integer(sz) || json_integer_value(sz) < 0)
		return kiln_error_make(err, 0, "descriptor %s without a valid size",
				       json_string_value(dg));
	d->media_type = json_string_value(mt);
	d->digest = json_string_value(dg);
	d->size = json_integer_value(sz);
	json_t *p = json_object_get(obj, "platform");
	if (json_is_object(p)) {
		d->os = json_string_value(json_object_get(p, "os"));
		d->architecture = json_string_value(json_object_get(p, "architecture"));
		d->variant = json_string_value(json_object_get(p, "variant"));
	}
	return 0;
}

const char *oci_document_media_type(json_t *doc)
{
	const char *mt = json_string_value(json_object_get(doc, "mediaType"));
	if (mt)
		return mt;
	if (json_is_array(json_object_get(doc, "manifests")))
		return OCI_MEDIA_INDEX;
	if (json_is_object(json_object_get(doc, "config")))
		return OCI_MEDIA_MANIFEST;
	return NULL;
}

json_t *oci_json_parse(const char *data, size_t len, const char *what, struct kiln_error **err)
{
	json_error_t je;
	json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, &je);
	if (j == NULL) {
		kiln_error_make(err, 0, "%s: invalid JSON at line %d column %d: %s", what, je.line,
				je.column, je.text);
		return NULL;
	}
	return j;
}

char *oci_json_dump(json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	if (s == NULL)
		oom();
	if (len)
		*len = strlen(s);
	return s;
}
