/* A resolved image in the store: the platform manifest chosen from an index
 * (or the manifest itself), its config and its layers, all digest-checked. */
#ifndef KILN_IMAGE_H
#define KILN_IMAGE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "sha256.h"
#include "store.h"

struct image_layer {
	char digest[DIGEST_STRLEN];
	char *media_type; /* tar, tar+gzip, tar+zstd (OCI or Docker names) */
	int64_t size;
};

struct image {
	char *name;			     /* the reference as looked up */
	char root_digest[DIGEST_STRLEN];     /* what index.json names (index or manifest) */
	char manifest_digest[DIGEST_STRLEN]; /* the platform manifest */
	char config_digest[DIGEST_STRLEN];
	json_t *config; /* the whole image config JSON (owned) */
	size_t nlayers;
	struct image_layer *layers;
	/* Additions (store helper). */
	json_t *manifest;		   /* the platform manifest JSON (owned) */
	char *manifest_media_type;	   /* OCI or Docker manifest media type */
	int64_t manifest_size;		   /* bytes of the manifest blob */
	char *root_media_type;		   /* index, list or manifest media type of the root */
	int64_t root_size;		   /* bytes of the root blob */
	char *os, *architecture, *variant; /* from the config (variant may be NULL) */
};

/* Loads NAME (a normalised reference string as in index.json, or a bare
 * "sha256:…" manifest/index digest) from the store only, selecting the
 * manifest for OS linux and ARCH ("amd64", "arm64", optionally
 * "arm64/v8") when the root is an index.  Release with image_free(). */
struct image *image_load(struct store *s, const char *name, const char *arch,
			 struct kiln_error **err);
void image_free(struct image *img);
#define cleanup_image __attribute__((cleanup(image_freep)))
void image_freep(struct image **img);

/* The label KEY (e.g. "org.mobyproject.config") of the image config
 * (config.Labels), or NULL.  Borrowed from IMG. */
const char *image_label(const struct image *img, const char *key);

/* Finds the root blob NAME names: a bare digest present in the store, an
 * index.json name as written, its normal form as a reference
 * ("alpine" -> docker.io/library/alpine:latest), or the digest pinned in it
 * (name@sha256:…) when that blob is present.  Returns 1 and fills ROOT, 0
 * when absent, -1 on error. */
int image_resolve_name(struct store *s, const char *name, char root[DIGEST_STRLEN],
		       struct kiln_error **err);

/* The host architecture in OCI spelling ("amd64", "arm64", …).  Static. */
const char *image_host_arch(void);

#endif
