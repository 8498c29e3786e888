/* The image's SBOM: one SPDX 2.3 JSON document, `sbom.spdx.json` at / of
 * the image (LinuxKit's name and place, --sbom-output renames it), listing
 * every image the manifest uses and the packages inside each of them.
 *
 * Unlike LinuxKit's, it is byte-for-byte reproducible: `created` is the build
 * epoch (SOURCE_DATE_EPOCH, else kiln's default) unless --sbom-current-time,
 * the documentNamespace ends in a sha256 of the document itself (not a random
 * UUID), SPDXIDs are derived from image positions and package names, keys
 * come in a fixed order and packages sorted.
 *
 * What it holds:
 *   SPDXRef-OperatingSystem   the built image (the document DESCRIBES it)
 *     CONTAINS SPDXRef-Image-N-NAME, one per distinct image (reference +
 *       manifest digest), purl pkg:oci/NAME@sha256%3A…?arch=…&repository_url=…&tag=…
 *       CONTAINS SPDXRef-Package-N-TYPE-NAME-ARCH, one per package recorded
 *         in the image's package databases: var/lib/dpkg/status and
 *         var/lib/dpkg/status.d/NAME (distroless style) as pkg:deb/…,
 *         lib/apk/db/installed as pkg:apk/…; the distribution (namespace and
 *         distro= qualifier) from usr/lib/os-release or etc/os-release.
 *
 * Package facts are read from the image's layers (flattened, so whiteouts
 * count), not from the assembled tree, so a rebuild that takes its sections
 * from the rebuild cache writes the same SBOM.  The files found are kept per
 * manifest digest in the cache directory (DIGEST-KEY.sbom), so layers are
 * read once per image. */
#ifndef KILN_SBOM_H
#define KILN_SBOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assemble.h"
#include "error.h"
#include "image.h"
#include "store.h"

struct sbom;

/* A document for the image NAME (the build's --name).  Free with sbom_free. */
struct sbom *sbom_new(const char *name);
void sbom_free(struct sbom *sb);
#define cleanup_sbom __attribute__((cleanup(sbom_freep)))
void sbom_freep(struct sbom **sb);

/* Adds the image REF (as written in the manifest) with manifest DIGEST for
 * ARCH, used at LOCATION ("onboot[1] dhcpcd").  The same REF and DIGEST
 * again only adds LOCATION.  Returns the image's index. */
size_t sbom_add_image(struct sbom *sb, const char *ref, const char *digest, const char *arch,
		      const char *location);

/* True when PATH (relative to an image root, cleaned) is a file the SBOM
 * reads: a package database or an os-release file. */
bool sbom_wants_path(const char *path);

/* Reads the file PATH of image INDEX (LEN bytes of DATA): packages from a
 * dpkg status or apk installed database, the distribution from os-release;
 * other paths are ignored. */
void sbom_add_file(struct sbom *sb, size_t index, const char *path, const char *data, size_t len);

/* Adds what the layers of IMG (blobs in STORE) hold at the paths
 * sbom_wants_path() accepts to image INDEX.  With CACHE_DIR (may be NULL)
 * the files found are kept there and read back on the next build. */
int sbom_scan_image(struct sbom *sb, size_t index, struct store *store, const struct image *img,
		    const char *cache_dir, struct kiln_error **err);

/* The SPDX 2.3 JSON document, CREATED (unix seconds) as its creation time,
 * ending in a newline.  Caller frees; *LEN gets its length. */
char *sbom_write(const struct sbom *sb, int64_t created, size_t *len);

/* The build's SBOM step: every image of AO's manifest (loaded through
 * AO->load), scanned as above, written as FILE (a name at /, mode 0644,
 * mtime AO->epoch, LINUXKIT.source "linuxkit.sbom", LINUXKIT.location
 * "sbom") in one more section appended to RES (its tar in WORK_DIR, not
 * cacheable).  CREATED: the document's time (the epoch, or now). */
struct sbom_section_options {
	const struct assemble_options *ao;
	const char *name;      /* the document's name: the build's --name */
	const char *file;      /* --sbom-output, default "sbom.spdx.json" */
	const char *arch;      /* the build's --arch */
	int64_t created;       /* AO->epoch, or time(NULL) with --sbom-current-time */
	const char *work_dir;  /* where the section's tar goes */
	const char *cache_dir; /* the rebuild cache, or NULL */
};
int sbom_append_section(const struct sbom_section_options *o, struct assemble_result *res,
			struct kiln_error **err);

#endif
