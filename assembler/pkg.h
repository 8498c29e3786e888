/* `kiln pkg`: packages are folders with a build.yml, turned into OCI images
 * in the store without Docker, from Debian packages, files of the folder and
 * the output of a build command.
 *
 * Naming: an image is `<org>/<image>:<tag>`; org defaults to "kiln", so the
 * runc package is "kiln/runc:<tag>", stored in index.json under its
 * normalised reference "docker.io/kiln/runc:<tag>" (assembler/ref.h), as
 * LinuxKit's "linuxkit/runc:<hash>" is.  The tag defaults to the first 40
 * hex digits of a SHA-256 over every input (PKG_FORMAT_VERSION, the epoch,
 * build.yml, every file of the folder with its mode, the build inputs, the
 * name, version and SHA256 of every .deb, and every `files` source outside the
 * folder that is not a build output), so it is known without building
 * (`show-tag`) and changes when any input changes.
 *
 * build.yml keys (unknown keys are errors, reported as FILE:LINE:COL):
 *   image (required), org, tag ("{{.Hash}}" is replaced by the hash),
 *   description, arches, config (-> label org.mobyproject.config, JSON),
 *   labels (map), debs (list of NAME or NAME=VERSION; unpacked in order),
 *   build (argv list, or {command: argv, inputs: [paths], debs: [names],
 *   record-debs: bool (the image's files come from build.debs: record them
 *   as `debs` are)}),
 *   files (list of {path, source | contents | symlink | directory, mode,
 *   uid, gid, optional}; a source "@out/X" is X in the build's output dir),
 *   symlinks (map path -> target), dirs (list), entrypoint, cmd, env,
 *   workdir, user, drop (globs), keep-docs (bool; default false: the
 *   documentation, man pages, info pages, locales and lintian/bug files of
 *   the .debs are dropped), elfcheck-ignore (globs), elfcheck (bool).
 *
 * Every .deb of `debs` (and of build.debs with record-debs) is recorded in
 * the image as var/lib/dpkg/status.d/PACKAGE (see PKG_DPKG_STATUS_D), so
 * SBOM tools (syft, trivy, kiln build's SBOM) find the Debian packages it
 * holds. */
#ifndef KILN_PKG_H
#define KILN_PKG_H

#include <stdbool.h>
#include <stdint.h>

#include "error.h"
#include "sha256.h"
#include "store.h"

/* Bump when the layer or image format changes: every tag changes with it.
 * 2: var/lib/dpkg/status.d/PACKAGE for the .debs. */
#define PKG_FORMAT_VERSION 2
/* Where each .deb of `debs` (and build.debs with record-debs) is recorded:
 * PKG_DPKG_STATUS_D/PACKAGE holds its control stanza with "Status: install
 * ok installed" (deb_status_stanza), mode 0644, root:root, as in distroless
 * images; `drop` does not remove it. */
#define PKG_DPKG_STATUS_D "var/lib/dpkg/status.d"
#define PKG_DEFAULT_ORG "kiln"

struct pkg;

/* Reads and checks DIR/build.yml.  Release with pkg_free(). */
struct pkg *pkg_load(const char *dir, struct kiln_error **err);
void pkg_free(struct pkg *p);
/* The same from build.yml's bytes (TEXT, LEN), for package folder DIR
 * (absolute); YML_PATH names the file in errors. */
struct pkg *pkg_parse(const char *dir, const char *yml_path, const char *text, size_t len,
		      struct kiln_error **err);
#define cleanup_pkg __attribute__((cleanup(pkg_freep)))
void pkg_freep(struct pkg **p);

/* Replaces the org (LinuxKit's `--org`), e.g. "127.0.0.1:5000/kiln". */
void pkg_set_org(struct pkg *p, const char *org);

/* The tag (computed once; resolves the .debs with apt-cache, reads every
 * input).  Borrowed from P. */
const char *pkg_tag(struct pkg *p, struct kiln_error **err);
/* "org/image:tag", as `kiln pkg show-tag` prints it.  Caller frees. */
char *pkg_ref(struct pkg *p, struct kiln_error **err);
/* The normalised name the store uses ("docker.io/kiln/runc:<tag>"). Caller frees. */
char *pkg_store_name(struct pkg *p, struct kiln_error **err);
const char *pkg_image(const struct pkg *p);
const char *pkg_description(const struct pkg *p);

struct pkg_build_options {
	const char *deb_cache; /* NULL: deb_cache_dir(store_dir) */
	bool force;            /* build even when the store has the tag */
};

struct pkg_result {
	char *ref;        /* "kiln/runc:<tag>" */
	char *store_name; /* "docker.io/kiln/runc:<tag>" */
	char manifest_digest[DIGEST_STRLEN];
	bool built;           /* false: the store had it */
	int64_t layer_size;   /* compressed (0 when not built now) */
	int64_t layer_usize;  /* uncompressed tar (0 when not built now) */
	uint64_t nentries;
};
void pkg_result_release(struct pkg_result *r);

/* Builds P into S unless S already has its tag as kiln pkg built it (and
 * O->force is false; a name another image was put under since, e.g. by
 * `kiln cache import`, is rebuilt after a one-line warning):
 * fetches and verifies the .debs, runs the build command, assembles the
 * entries, runs the ELF check, writes one deterministic gzip layer, the
 * image config and the manifest, and tags the manifest.  R is filled. */
int pkg_build(struct pkg *p, struct store *s, const struct pkg_build_options *o,
	      struct pkg_result *r, struct kiln_error **err);

/* For `@pkg:PATH` in manifests: "org/image:tag" of the package at DIR.
 * Caller frees. */
char *pkg_show_tag_ref(const char *dir, struct kiln_error **err);

/* Builds the package at DIR into S when S lacks its tag (logging "building
 * package DIR as REF" on the terminal); returns "org/image:tag".  Caller frees. */
char *pkg_ensure_built(struct store *s, const char *dir, struct kiln_error **err);

#endif
