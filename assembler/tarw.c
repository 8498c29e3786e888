/* See tarw.h.  POSIX.1-2001 pax: ustar header blocks of 512 bytes, extended
 * header records "LEN KEY=VALUE\n" where LEN counts the whole record. */
#include "tarw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strbuf.h"
#include "util.h"

#define BLOCK 512
#define BUFSZ (1024 * 1024)

struct tarw {
	int fd;
	uint64_t offset;
	size_t used;
	unsigned char *buf;
};

struct tarw *tarw_new(int fd)
{
	struct tarw *w = xcalloc(1, sizeof(*w));
	w->fd = fd;
	w->buf = xmalloc(BUFSZ);
	return w;
}

void tarw_free(struct tarw *w)
{
	if (!w)
		return;
	free(w->buf);
	free(w);
}

uint64_t tarw_offset(const struct tarw *w)
{
	return w->offset;
}

static int flush(struct tarw *w, struct kiln_error **err)
{
	if (w->used && write_all(w->fd, w->buf, w->used, err) < 0)
		return -1;
	w->used = 0;
	return 0;
}

static int put(struct tarw *w, const void *p, size_t len, struct kiln_error **err)
{
	const unsigned char *s = p;
	while (len) {
		if (w->used == BUFSZ && flush(w, err) < 0)
			return -1;
		size_t n = BUFSZ - w->used;
		if (n > len)
			n = len;
		memcpy(w->buf + w->used, s, n);
		w->used += n;
		s += n;
		len -= n;
		w->offset += n;
	}
	return 0;
}

static int pad(struct tarw *w, uint64_t len, struct kiln_error **err)
{
	static const unsigned char zero[BLOCK];
	size_t r = (size_t)(len % BLOCK);
	return r ? put(w, zero, BLOCK - r, err) : 0;
}

static void record(struct strbuf *sb, const char *key, const char *val, size_t vlen)
{
	/* LEN includes its own digits: find the fixed point. */
	size_t body = 1 + strlen(key) + 1 + vlen + 1; /* " key=val\n" */
	size_t digits = 1, total;
	for (;;) {
		total = body + digits;
		size_t d = 1;
		for (size_t t = total; t >= 10; t /= 10)
			d++;
		if (d == digits)
			break;
		digits = d;
	}
	strbuf_printf(sb, "%zu %s=", total, key);
	strbuf_append(sb, val, vlen);
	strbuf_append(sb, "\n", 1);
}

static void octal(char *field, size_t width, uint64_t v)
{
	/* WIDTH-1 digits then NUL. */
	field[width - 1] = '\0';
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (char)('0' + (v & 7));
		v >>= 3;
	}
}

static bool fits(uint64_t v, size_t width)
{
	return width - 1 >= 22 || v < ((uint64_t)1 << (3 * (width - 1)));
}

static int header(struct tarw *w, const char *name, char type, uint64_t mode, uint64_t uid,
		  uint64_t gid, uint64_t size, int64_t mtime, const char *linkname,
		  unsigned devmajor, unsigned devminor, struct kiln_error **err)
{
	char h[BLOCK];
	memset(h, 0, sizeof(h));
	size_t nl = strlen(name);
	memcpy(h, name, nl > 99 ? 99 : nl);
	octal(h + 100, 8, mode & 07777);
	octal(h + 108, 8, fits(uid, 8) ? uid : 0);
	octal(h + 116, 8, fits(gid, 8) ? gid : 0);
	octal(h + 124, 12, fits(size, 12) ? size : 0);
	octal(h + 136, 12, mtime >= 0 && fits((uint64_t)mtime, 12) ? (uint64_t)mtime : 0);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (linkname) {
		size_t ll = strlen(linkname);
		memcpy(h + 157, linkname, ll > 99 ? 99 : ll);
	}
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	octal(h + 329, 8, devmajor);
	octal(h + 337, 8, devminor);
	unsigned sum = 0;
	for (size_t i = 0; i < BLOCK; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	return put(w, h, BLOCK, err);
}

static char type_of(struct archive_entry *e)
{
	if (archive_entry_hardlink(e))
		return '1';
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		return '0';
	case AE_IFLNK:
		return '2';
	case AE_IFCHR:
		return '3';
	case AE_IFBLK:
		return '4';
	case AE_IFDIR:
		return '5';
	case AE_IFIFO:
		return '6';
	default:
		return 0;
	}
}

static int tarw_add_any(struct tarw *w, struct archive_entry *e, struct archive *data,
			const void *buf, int fd, const char *source, const char *location,
			struct kiln_error **err)
{
	char type = type_of(e);
	const char *pathname = archive_entry_pathname(e);
	if (!type)
		return kiln_error_make(err, EINVAL, "`%s`: unsupported file type", pathname);
	cleanup_free char *name = NULL;
	if (type == '5' && !str_has_suffix(pathname, "/"))
		name = xasprintf("%s/", pathname);
	else
		name = xstrdup(pathname);
	const char *link = archive_entry_hardlink(e);
	if (!link && type == '2')
		link = archive_entry_symlink(e);
	uint64_t size = (type == '0') ? (uint64_t)archive_entry_size(e) : 0;
	uint64_t uid = (uint64_t)archive_entry_uid(e), gid = (uint64_t)archive_entry_gid(e);
	int64_t mtime = archive_entry_mtime(e);

	struct strbuf pax = STRBUF_INIT;
	record(&pax, "path", name, strlen(name));
	if (link)
		record(&pax, "linkpath", link, strlen(link));
	char num[32];
	if (!fits(size, 12)) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)size);
		record(&pax, "size", num, strlen(num));
	}
	if (!fits(uid, 8)) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)uid);
		record(&pax, "uid", num, strlen(num));
	}
	if (!fits(gid, 8)) {
		snprintf(num, sizeof(num), "%llu", (unsigned long long)gid);
		record(&pax, "gid", num, strlen(num));
	}
	if (mtime < 0 || !fits((uint64_t)mtime, 12)) {
		snprintf(num, sizeof(num), "%lld", (long long)mtime);
		record(&pax, "mtime", num, strlen(num));
	}
	if (source)
		record(&pax, "LINUXKIT.source", source, strlen(source));
	if (location)
		record(&pax, "LINUXKIT.location", location, strlen(location));
	/* xattrs in the order libarchive read them (the layer's order). */
	archive_entry_xattr_reset(e);
	const char *xname;
	const void *xval;
	size_t xsize;
	struct strbuf seen = STRBUF_INIT;
	strbuf_puts(&seen, "\n");
	while (archive_entry_xattr_next(e, &xname, &xval, &xsize) == ARCHIVE_OK) {
		/* libarchive reports an xattr twice when a layer carries both its
		 * LIBARCHIVE.xattr and SCHILY.xattr forms: keep the first. */
		cleanup_free char *mark = xasprintf("\n%s\n", xname);
		if (strstr(seen.buf, mark))
			continue;
		strbuf_printf(&seen, "%s\n", xname);
		cleanup_free char *key = xasprintf("SCHILY.xattr.%s", xname);
		record(&pax, key, xval, xsize);
	}
	strbuf_release(&seen);
	int r = header(w, "././@PaxHeader", 'x', 0644, 0, 0, pax.len, 0, NULL, 0, 0, err);
	if (r == 0)
		r = put(w, pax.buf, pax.len, err);
	if (r == 0)
		r = pad(w, pax.len, err);
	strbuf_release(&pax);
	if (r < 0)
		return -1;
	unsigned maj = 0, min = 0;
	if (type == '3' || type == '4') {
		maj = archive_entry_rdevmajor(e);
		min = archive_entry_rdevminor(e);
	}
	if (header(w, name, type, archive_entry_perm(e), uid, gid, size, mtime, link, maj, min,
		   err) < 0)
		return -1;
	if (size == 0)
		return 0;
	if (data) {
		uint64_t left = size;
		for (;;) {
			if (w->used == BUFSZ && flush(w, err) < 0)
				return -1;
			size_t want = BUFSZ - w->used;
			if (want > left)
				want = (size_t)left;
			if (want == 0)
				break;
			la_ssize_t n = archive_read_data(data, w->buf + w->used, want);
			if (n < 0)
				return kiln_error_make(err, 0, "`%s`: read: %s", pathname,
						       archive_error_string(data));
			if (n == 0)
				return kiln_error_make(err, 0, "`%s`: data truncated", pathname);
			w->used += (size_t)n;
			w->offset += (uint64_t)n;
			left -= (uint64_t)n;
		}
	} else if (buf) {
		if (put(w, buf, (size_t)size, err) < 0)
			return -1;
	} else if (fd >= 0) {
		uint64_t left = size;
		while (left) {
			if (w->used == BUFSZ && flush(w, err) < 0)
				return -1;
			size_t want = BUFSZ - w->used;
			if (want > left)
				want = (size_t)left;
			ssize_t n = read(fd, w->buf + w->used, want);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return kiln_error_make(err, errno, "`%s`: read", pathname);
			if (n == 0)
				return kiln_error_make(err, 0, "`%s`: file shrank while read",
						       pathname);
			w->used += (size_t)n;
			w->offset += (uint64_t)n;
			left -= (uint64_t)n;
		}
	} else {
		return kiln_error_make(err, EINVAL, "`%s`: no data", pathname);
	}
	return pad(w, size, err);
}

int tarw_add_root_dir(struct tarw *w, int64_t mtime, struct kiln_error **err)
{
	return header(w, "./", '5', 0755, 0, 0, 0, mtime, NULL, 0, 0, err);
}

int tarw_add(struct tarw *w, struct archive_entry *e, struct archive *data, const void *buf,
	     const char *source, const char *location, struct kiln_error **err)
{
	return tarw_add_any(w, e, data, buf, -1, source, location, err);
}

int tarw_add_fd(struct tarw *w, struct archive_entry *e, int fd, const char *source,
		const char *location, struct kiln_error **err)
{
	return tarw_add_any(w, e, NULL, NULL, fd, source, location, err);
}

int tarw_splice(struct tarw *w, int fd, uint64_t len, struct kiln_error **err)
{
	if (flush(w, err) < 0)
		return -1;
	while (len) {
		ssize_t n =
		    copy_file_range(fd, NULL, w->fd, NULL, len > (1u << 30) ? (1u << 30) : len, 0);
		if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS))
			break;
		if (n < 0)
			return kiln_error_make(err, errno, "copy");
		if (n == 0)
			return kiln_error_make(err, 0, "copy: source truncated");
		len -= (uint64_t)n;
		w->offset += (uint64_t)n;
	}
	while (len) {
		size_t want = len > BUFSZ ? BUFSZ : (size_t)len;
		ssize_t n = read(fd, w->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kiln_error_make(err, n < 0 ? errno : 0, "copy: read");
		if (write_all(w->fd, w->buf, (size_t)n, err) < 0)
			return -1;
		len -= (uint64_t)n;
		w->offset += (uint64_t)n;
	}
	return 0;
}

int tarw_flush(struct tarw *w, struct kiln_error **err)
{
	return flush(w, err);
}

int tarw_finish(struct tarw *w, struct kiln_error **err)
{
	static const unsigned char zero[2 * BLOCK];
	if (put(w, zero, sizeof(zero), err) < 0)
		return -1;
	return flush(w, err);
}
