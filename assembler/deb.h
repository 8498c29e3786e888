/* Debian packages as a source of image content: resolve a package name to
 * the exact .deb apt would install (apt-cache show), fetch it with
 * `apt-get download` into a cache, check it against apt's SHA256, and read
 * its data.tar member with libarchive (a .deb is an `ar` archive holding
 * debian-binary, control.tar.* and data.tar.{xz,zst,gz}).  No dpkg database,
 * no root, no maintainer scripts: only the files. */
#ifndef KILN_DEB_H
#define KILN_DEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

struct archive;
struct archive_entry;

struct deb_info {
	char *name;     /* "runc" */
	char *version;  /* "1.1.5+ds1-1+deb12u1" */
	char *arch;     /* "amd64" or "all" */
	char *filename; /* pool path, "pool/main/r/runc/runc_1.1.5+ds1-1+deb12u1_amd64.deb" */
	char *sha256;   /* 64 lowercase hex digits */
	uint64_t size;
};

/* Resolves SPEC ("NAME" or "NAME=VERSION") to the candidate apt would
 * download, from `apt-cache show --no-all-versions`.  A virtual or unknown
 * package is an error naming it.  Release INFO with deb_info_release(). */
int deb_resolve(const char *spec, struct deb_info *info, struct kiln_error **err);
void deb_info_release(struct deb_info *info);

/* A spec "META:depends" names a metapackage that depends on exactly one
 * package (linux-image-amd64 -> linux-image-6.1.0-N-amd64 (= V)) and
 * resolves to that package, so a pin follows Debian's replacements. */
#define DEB_DEPENDS_SUFFIX ":depends"

/* Resolves N specs at once (one apt-cache run for all that are not in the
 * resolution cache, one more per uncached "META:depends"), in order, into
 * OUT (N entries; release each).  The cache is
 * CACHE_DIR/apt-resolved-<key>, where the key hashes the state of
 * apt's package lists and configuration (names, sizes, mtimes of
 * /var/lib/apt/lists and /etc/apt), so an `apt-get update` that changes a
 * candidate changes the key.  CACHE_DIR may be NULL (no cache). */
int deb_resolve_all(char *const *specs, size_t n, struct deb_info *out, const char *cache_dir,
		    struct kiln_error **err);

/* The resolution cache file deb_resolve_all reads and writes in CACHE_DIR
 * for apt's current state.  Its lines are SPEC, NAME, VERSION, ARCH,
 * FILENAME, SHA256 and SIZE separated by tabs.  Caller frees. */
char *deb_resolve_cache_path(const char *cache_dir);

/* Parses the first stanza of `apt-cache show` output TEXT into INFO (used by
 * deb_resolve; exposed for tests).  SPEC names the package in errors. */
int deb_parse_show(const char *spec, const char *text, struct deb_info *info,
		   struct kiln_error **err);

/* The one dependency in the Depends field of the first stanza of
 * `apt-cache show` output TEXT, as a spec: "NAME=VERSION" for "NAME (= VERSION)",
 * else "NAME".  Anything but exactly one package (a list, alternatives, no
 * Depends) is an error naming SPEC.  Exposed for tests.  Caller frees. */
char *deb_parse_depends(const char *spec, const char *text, struct kiln_error **err);

/* The default .deb cache: $KILN_DEB_CACHE, else STORE_DIR/debs.  Caller frees. */
char *deb_cache_dir(const char *store_dir);

/* Returns the path of INFO's .deb inside CACHE_DIR, downloading it with
 * `apt-get download NAME=VERSION` when absent.  The file is checked against
 * INFO->sha256 (and size) every time, a download only gets its final name
 * once it matches.  Caller frees the path. */
char *deb_fetch(const struct deb_info *info, const char *cache_dir, struct kiln_error **err);

/* 0 when the file at PATH has SHA256 (hex) and, when SIZE is non-zero, that size. */
int deb_verify(const char *path, const char *sha256, uint64_t size, struct kiln_error **err);

/* Called for each entry of a .deb's data.tar, in archive order.  PATH is the
 * cleaned relative path ("usr/bin/runc"; "" for the root directory); a hard
 * link's target is cleaned the same way in LINK (NULL otherwise).  The entry's
 * data is read with archive_read_data(A, …).  Return -1 (with *ERR) to stop. */
typedef int (*deb_entry_fn)(struct archive *a, struct archive_entry *e, const char *path,
			    const char *hardlink, void *arg, struct kiln_error **err);

/* Streams the data.tar member of DEB_PATH through FN.  Entries whose path
 * leaves the root (`..`) are refused. */
int deb_unpack(const char *deb_path, deb_entry_fn fn, void *arg, struct kiln_error **err);

/* Reads the `control` file of DEB_PATH's control.tar(.xz/.zst/.gz) member
 * into *TEXT (its bytes as they are, NUL-terminated; caller frees). */
int deb_control(const char *deb_path, char **text, struct kiln_error **err);

/* One line of deb822 text (dpkg status, control files, status.d): Debian
 * policy 5.1 separates stanzas by empty lines and lets parsers take lines of
 * only spaces and tabs as separators, as dpkg does; a line starting with a
 * space or tab continues the field above; field names are case-insensitive. */
enum deb822_kind {
	DEB822_END,   /* no more lines */
	DEB822_BREAK, /* empty or whitespace-only: the end of a stanza */
	DEB822_CONT,  /* a continuation line */
	DEB822_FIELD, /* "Key: value" */
	DEB822_OTHER, /* neither (no colon): skipped by readers */
};
struct deb822_line {
	const char *line; /* the line as it is, without newline or a final CR */
	size_t len;
	const char *key, *value; /* DEB822_FIELD: value without surrounding blanks */
	size_t key_len, value_len;
};

/* Reads the next line of [*P, END) into *OUT and advances *P past it; a
 * missing final newline ends the last line, "\r\n" ends lines too. */
enum deb822_kind deb822_next(const char **p, const char *end, struct deb822_line *out);

/* Whether OUT is field KEY (case-insensitive). */
bool deb822_is(const struct deb822_line *out, const char *key);

/* The dpkg status stanza of a package, from its control file CONTROL: the
 * lines of its first stanza as they are (a Status line, which no control
 * file should have, left out), with "Status: install ok installed" after
 * the Package line, ending in one newline: what dpkg writes into
 * var/lib/dpkg/status and distroless images hold as
 * var/lib/dpkg/status.d/PACKAGE.  *NAME gets the Package (caller frees
 * both).  A control file without Package or Version, or with a Package that
 * is not a file name, is an error. */
char *deb_status_stanza(const char *control, char **name, struct kiln_error **err);

/* Cleans an archive path: strips leading "./" and "/", collapses "//" and
 * "." components, removes a trailing '/'.  Returns NULL when a ".."
 * component remains.  Caller frees. */
char *deb_path_clean(const char *path);

#endif
