/* A PAX tar writer for the intermediate root filesystem.
 *
 * Why not libarchive's pax writer: every entry of LinuxKit's intermediate
 * tar carries the vendor records LINUXKIT.source and LINUXKIT.location, and
 * libarchive has no API to write arbitrary PAX keywords.  Reading stays with
 * libarchive.  Output is fully determined by the entries: every entry gets
 * one PAX extended header (path, linkpath, SCHILY.xattr.*, LINUXKIT.*,
 * and size/uid/gid/mtime when they exceed ustar's fields), a ustar header
 * with magic "ustar\0" "00", numeric owners only (no user/group names), and
 * the archive ends with two zero blocks. */
#ifndef KILN_TARW_H
#define KILN_TARW_H

#include <archive.h>
#include <archive_entry.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"

struct tarw;

/* Writes to FD (borrowed; not closed). */
struct tarw *tarw_new(int fd);
/* Frees W without writing the end blocks. */
void tarw_free(struct tarw *w);

/* Appends one entry.  For a regular file without hard link, DATA supplies
 * exactly archive_entry_size(E) bytes (read with archive_read_data), or
 * BUF does (when DATA is NULL; BUF may be NULL for an empty file).  SOURCE
 * and LOCATION become LINUXKIT.source and LINUXKIT.location (NULL: left
 * out).  A directory's name gets a trailing '/'. */
int tarw_add(struct tarw *w, struct archive_entry *e, struct archive *data, const void *buf,
	     const char *source, const char *location, struct kiln_error **err);

/* Like tarw_add for a regular file whose archive_entry_size(E) bytes come
 * from FD (read from its current offset; fewer bytes is an error). */
int tarw_add_fd(struct tarw *w, struct archive_entry *e, int fd, const char *source,
		const char *location, struct kiln_error **err);

/* Appends "./", the root directory (0755, root, MTIME), as a plain ustar
 * header without a pax header: the docker format's first entry, since
 * `docker build -` takes its input for a tar only when the first 1024 bytes
 * hold a whole entry (a pax header, its records and the entry take 1536). */
int tarw_add_root_dir(struct tarw *w, int64_t mtime, struct kiln_error **err);

/* Copies LEN bytes of raw tar stream (entries, no end blocks) from FD at
 * its current offset: used to splice in a cached section. */
int tarw_splice(struct tarw *w, int fd, uint64_t len, struct kiln_error **err);

/* Bytes written so far. */
uint64_t tarw_offset(const struct tarw *w);

/* Writes out buffered bytes (no end blocks: the entries can be spliced
 * into another tar). */
int tarw_flush(struct tarw *w, struct kiln_error **err);

/* Writes the two end blocks and flushes.  Does not free W. */
int tarw_finish(struct tarw *w, struct kiln_error **err);

#endif
