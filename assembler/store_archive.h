/* Moving images between the store and files: OCI image layout directories,
 * OCI layout tarballs (as `skopeo copy … oci-archive:`, `docker buildx
 * --output type=oci` and Docker ≥ 25 `docker save` write them) and classic
 * `docker save` archives (manifest.json + repositories).
 *
 * Every blob that enters the store is streamed through a blob writer and
 * verified: blobs named by digest must match it. */
#ifndef KILN_STORE_ARCHIVE_H
#define KILN_STORE_ARCHIVE_H

#include "error.h"
#include "store.h"

/* Called once per image stored by an import: NAME as tagged in index.json,
 * DIGEST of its root. */
typedef void (*store_import_fn)(const char *name, const char *digest, void *arg);

/* Imports PATH (an OCI layout directory, or a tar file — optionally
 * compressed — holding an OCI layout or a `docker save` archive; "-" reads
 * the tar from standard input).
 * Names: an OCI index entry's io.containerd.image.name annotation, else its
 * org.opencontainers.image.ref.name when that is a whole reference
 * ("repo:tag", "host/repo…"), normalised; a bare tag ("latest", "two") is
 * kept as written unless NAME is given.  NAME (may be NULL) names the image
 * when the source holds exactly one (an error otherwise).  Docker archives
 * use their RepoTags.  Returns the number of images, -1 on error. */
int store_import(struct store *s, const char *path, const char *name, store_import_fn fn, void *arg,
		 struct kiln_error **err);

enum store_export_format {
	STORE_EXPORT_OCI,    /* OCI image layout tar: every blob of NAME present in the store */
	STORE_EXPORT_DOCKER, /* `docker save` tar of the ARCH image of NAME */
};

/* Writes image NAME as a tar to FD.  ARCH chooses the platform for the
 * Docker format (NULL: the host's).  Output is reproducible: sorted
 * entries, mtime SOURCE_DATE_EPOCH (default 0), owner 0:0. */
int store_export(struct store *s, const char *name, const char *arch,
		 enum store_export_format format, int fd, struct kiln_error **err);

/* Copies image NAME (every blob of it present in S, digest-checked) into
 * the OCI image layout DIR (created if needed; an existing layout keeps its
 * other images) and names it there NAME (or AS when not NULL). */
int store_export_dir(struct store *s, const char *name, const char *dir, const char *as,
		     struct kiln_error **err);

#endif
