/* Image references: the Docker reference grammar (distribution/reference),
 * normalised the way Docker and LinuxKit do:
 *   alpine              -> docker.io/library/alpine:latest
 *   foo/bar:1           -> docker.io/foo/bar:1
 *   127.0.0.1:5000/x@sha256:…  (domain kept, digest kept, no tag added)
 * A reference with both tag and digest keeps both; the digest wins. */
#ifndef KILN_REF_H
#define KILN_REF_H

#include "error.h"

struct image_ref {
	char *domain; /* "docker.io", "127.0.0.1:5000", "localhost" */
	char *path;   /* "library/alpine", "kiln/getty" */
	char *tag;    /* "latest" when neither tag nor digest was given; NULL if only a digest */
	char *digest; /* "sha256:<64 hex>" or NULL */
};

/* Parses S. On failure returns -1 with a precise message ("invalid reference
 * `X`: uppercase letters in repository name", "… tag longer than 128", …).
 * The result's strings are owned by REF; release with ref_release(). */
int ref_parse(const char *s, struct image_ref *ref, struct kiln_error **err);

/* "domain/path:tag@digest" with the parts that are set.  Caller frees. */
char *ref_string(const struct image_ref *ref);

/* "domain/path" (the repository name).  Caller frees. */
char *ref_repository(const struct image_ref *ref);

/* Host to contact for DOMAIN ("docker.io" -> "registry-1.docker.io"). Static. */
const char *ref_registry_host(const struct image_ref *ref);

void ref_release(struct image_ref *ref);

#endif
