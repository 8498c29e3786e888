/* OCI and Docker media types, the annotations kiln reads and writes, size
 * limits, and small jansson helpers shared by the store, the image resolver,
 * the registry client and the package builder. */
#ifndef KILN_OCI_H
#define KILN_OCI_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "sha256.h"

#define OCI_MEDIA_INDEX		     "application/vnd.oci.image.index.v1+json"
#define OCI_MEDIA_MANIFEST	     "application/vnd.oci.image.manifest.v1+json"
#define OCI_MEDIA_CONFIG	     "application/vnd.oci.image.config.v1+json"
#define OCI_MEDIA_LAYER		     "application/vnd.oci.image.layer.v1.tar"
#define OCI_MEDIA_LAYER_GZIP	     "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MEDIA_LAYER_ZSTD	     "application/vnd.oci.image.layer.v1.tar+zstd"
#define OCI_MEDIA_LAYER_NONDIST	     "application/vnd.oci.image.layer.nondistributable.v1.tar"
#define OCI_MEDIA_LAYER_NONDIST_GZIP "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
#define OCI_MEDIA_LAYER_NONDIST_ZSTD "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

#define DOCKER_MEDIA_MANIFEST_LIST	"application/vnd.docker.distribution.manifest.list.v2+json"
#define DOCKER_MEDIA_MANIFEST		"application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MEDIA_CONFIG		"application/vnd.docker.container.image.v1+json"
#define DOCKER_MEDIA_LAYER		"application/vnd.docker.image.rootfs.diff.tar"
#define DOCKER_MEDIA_LAYER_GZIP		"application/vnd.docker.image.rootfs.diff.tar.gzip"
#define DOCKER_MEDIA_LAYER_ZSTD		"application/vnd.docker.image.rootfs.diff.tar.zstd"
#define DOCKER_MEDIA_LAYER_FOREIGN_GZIP "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

/* The Accept header value a registry client sends for manifests. */
#define OCI_MANIFEST_ACCEPT                                                                        \
	OCI_MEDIA_INDEX ", " OCI_MEDIA_MANIFEST ", " DOCKER_MEDIA_MANIFEST_LIST                    \
			", " DOCKER_MEDIA_MANIFEST

#define OCI_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define OCI_ANNOTATION_CREATED	"org.opencontainers.image.created"

/* Largest manifest or index and largest image config kiln accepts. */
#define OCI_MANIFEST_MAX ((size_t)4 << 20)
#define OCI_CONFIG_MAX	 ((size_t)8 << 20)

enum oci_compression {
	OCI_COMPRESSION_UNKNOWN = -1,
	OCI_COMPRESSION_NONE = 0,
	OCI_COMPRESSION_GZIP,
	OCI_COMPRESSION_ZSTD,
};

/* The compression of a layer media type (OCI or Docker names), or
 * OCI_COMPRESSION_UNKNOWN when MEDIA_TYPE is not a layer type kiln reads. */
enum oci_compression oci_layer_compression(const char *media_type);

/* OCI image index or Docker manifest list. */
bool oci_is_index(const char *media_type);
/* OCI image manifest or Docker schema 2 manifest. */
bool oci_is_manifest(const char *media_type);

/* A content descriptor; the strings are borrowed from the JSON it came from. */
struct oci_descriptor {
	const char *media_type;
	const char *digest;			 /* validated: "sha256:<64 lowercase hex>" */
	int64_t size;				 /* >= 0 */
	const char *os, *architecture, *variant; /* platform, or NULL */
};

/* Reads and validates descriptor OBJ (mediaType, digest, size required). */
int oci_descriptor_parse(json_t *obj, struct oci_descriptor *d, struct kiln_error **err);

/* The media type of a manifest or index document: its mediaType field, or,
 * when absent (allowed by OCI), guessed from its shape: "manifests" means an
 * index, "config" a manifest.  NULL when it is neither.  Borrowed. */
const char *oci_document_media_type(json_t *doc);

/* Parses JSON DATA of LEN bytes (NUL bytes refused, duplicate keys refused).
 * WHAT names it in errors.  Caller json_decref()s. */
json_t *oci_json_parse(const char *data, size_t len, const char *what, struct kiln_error **err);

/* The canonical serialisation kiln writes (sorted keys, compact).  Caller frees. */
char *oci_json_dump(json_t *v, size_t *len);

static inline void oci_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}
#ifndef cleanup_json
#define cleanup_json __attribute__((cleanup(oci_json_decrefp)))
#endif

#endif
