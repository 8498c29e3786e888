/* kernel+initrd: the intermediate tar → kernel, cmdline and a newc cpio
 * initrd in independently compressed members (see outputs.h).
 *
 * Pass 1 reads the tar's headers (the tar is an uncompressed file, so
 * skipping data is a seek), pulls out boot/ entries, numbers the inodes, finds the
 * hard-link groups and cuts the entry list into members of about
 * INITRD_CHUNK_SIZE bytes at points no hard-link group spans (the kernel
 * forgets link targets at each archive's TRAILER!!!).  Pass 2 runs on
 * worker threads: each member reopens the tar at its first entry's header
 * offset, writes a complete newc archive through libarchive into a
 * compressor and a temp file; the main thread appends finished members in
 * order.  A member depends only on its entries, so any number of threads
 * gives the same bytes. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "outputs.h"
#include "pathsafe.h"
#include "sha256.h"
#include "strbuf.h"
#include "util.h"

#define GZIP_LEVEL 6
#define ZSTD_LEVEL 9

struct entry_info {
	int64_t pos; /* tar header offset */
	uint64_t size;
	uint32_t ino; /* inode number in the cpio (group leader's index + 1) */
	uint32_t nlink;
	uint32_t group_end; /* last index of the hard-link group this entry leads */
	uint32_t lead;	    /* for a hard link: the index of the entry it links to */
	uint8_t symlead;    /* a symlink other entries hard-link to */
	uint8_t skip;	    /* boot/… or the root */
	uint8_t ftype;	    /* for links: the target's file type >> 12 */
};

struct member {
	size_t start, end; /* entry indexes [start, end) */
	int done;	   /* 0 pending, 1 ok, -1 failed */
	char *path;	   /* compressed temp file */
	uint64_t cpio_bytes;
};

struct job {
	const char *tar_path;
	const struct initrd_options *o;
	struct entry_info *ents;
	struct member *members;
	size_t nmembers;
	size_t next;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct kiln_error *err; /* first worker error */
	bool stop;
};

/* ---- compressing sink for libarchive's writer ---- */

struct sink {
	int fd;
	enum initrd_compress c;
	z_stream z;
	ZSTD_CCtx *zc;
	unsigned char out[256 * 1024];
	uint64_t in_bytes;
	int failed_errno;
};

static int sink_flush_out(struct sink *s, size_t n)
{
	struct kiln_error *e = NULL;
	if (n && write_all(s->fd, s->out, n, &e) < 0) {
		s->failed_errno = e->status ? e->status : EIO;
		kiln_error_release(&e);
		return -1;
	}
	return 0;
}

static int sink_feed(struct sink *s, const void *buf, size_t len, bool end)
{
	s->in_bytes += len;
	if (s->c == INITRD_NONE) {
		struct kiln_error *e = NULL;
		if (len && write_all(s->fd, buf, len, &e) < 0) {
			s->failed_errno = e->status ? e->status : EIO;
			kiln_error_release(&e);
			return -1;
		}
		return 0;
	}
	if (s->c == INITRD_GZIP) {
		s->z.next_in = (Bytef *)buf;
		s->z.avail_in = (uInt)len;
		int flush = end ? Z_FINISH : Z_NO_FLUSH;
		int r;
		do {
			s->z.next_out = s->out;
			s->z.avail_out = sizeof(s->out);
			r = deflate(&s->z, flush);
			if (r == Z_STREAM_ERROR)
				return -1;
			if (sink_flush_out(s, sizeof(s->out) - s->z.avail_out) < 0)
				return -1;
		} while (s->z.avail_out == 0 || (end && r != Z_STREAM_END));
		return 0;
	}
	ZSTD_inBuffer in = {buf, len, 0};
	for (;;) {
		ZSTD_outBuffer out = {s->out, sizeof(s->out), 0};
		size_t r =
		    ZSTD_compressStream2(s->zc, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(r))
			return -1;
		if (sink_flush_out(s, out.pos) < 0)
			return -1;
		if (end ? r == 0 : in.pos == in.size)
			break;
	}
	return 0;
}

static la_ssize_t sink_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	(void)a;
	return sink_feed(ctx, buf, len, false) < 0 ? -1 : (la_ssize_t)len;
}

static int sink_init(struct sink *s, int fd, enum initrd_compress c)
{
	memset(s, 0, offsetof(struct sink, out));
	s->fd = fd;
	s->c = c;
	if (c == INITRD_GZIP)
		return deflateInit2(&s->z, GZIP_LEVEL, Z_DEFLATED, 15 + 16, 8,
				    Z_DEFAULT_STRATEGY) == Z_OK
			   ? 0
			   : -1;
	if (c == INITRD_ZSTD) {
		s->zc = ZSTD_createCCtx();
		if (!s->zc)
			return -1;
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, ZSTD_LEVEL);
		ZSTD_CCtx_setParameter(s->zc, ZSTD_c_checksumFlag, 1);
	}
	return 0;
}

static void sink_release(struct sink *s)
{
	if (s->c == INITRD_GZIP)
		deflateEnd(&s->z);
	if (s->zc)
		ZSTD_freeCCtx(s->zc);
}

/* ---- pass 2: one member ---- */

static char *cpio_name(const char *tarname)
{
	size_t n = strlen(tarname);
	while (n > 1 && tarname[n - 1] == '/')
		n--;
	return xstrndup(tarname, n);
}

static void free_string_value(void *v, void *ctx)
{
	(void)ctx;
	free(*(char **)v);
}

static int write_member(struct job *j, struct member *m, struct kiln_error **err)
{
	cleanup_close int in = open(j->tar_path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kiln_error_make(err, errno, "open `%s`", j->tar_path);
	if (lseek(in, j->ents[m->start].pos, SEEK_SET) < 0)
		return kiln_error_make(err, errno, "seek `%s`", j->tar_path);
	cleanup_close int out = open(m->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (out < 0)
		return kiln_error_make(err, errno, "create `%s`", m->path);
	struct sink *s = xmalloc(sizeof(*s));
	if (sink_init(s, out, j->o->compress) < 0) {
		free(s);
		return kiln_error_make(err, ENOMEM, "compressor init");
	}
	struct archive *r = archive_read_new();
	archive_read_support_format_tar(r);
	struct archive *w = archive_write_new();
	archive_write_set_format_cpio_newc(w);
	archive_write_set_bytes_per_block(w, 0);
	int rc = 0;
	if (archive_read_open_fd(r, in, 128 * 1024) != ARCHIVE_OK) {
		rc = kiln_error_make(err, 0, "read `%s`: %s", j->tar_path, archive_error_string(r));
		goto out;
	}
	if (archive_write_open(w, s, NULL, sink_write, NULL) != ARCHIVE_OK) {
		rc = kiln_error_make(err, 0, "cpio: %s", archive_error_string(w));
		goto out;
	}
	char *buf = xmalloc(128 * 1024);
	struct pathmap *symt = pathmap_new(sizeof(char *));
	for (size_t i = m->start; i < m->end && rc == 0; i++) {
		struct archive_entry *e;
		int h = archive_read_next_header(r, &e);
		if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
			rc = kiln_error_make(err, 0, "read `%s`: %s", j->tar_path,
					     archive_error_string(r));
			break;
		}
		struct entry_info *ei = &j->ents[i];
		if (ei->skip)
			continue;
		cleanup_free char *name = cpio_name(archive_entry_pathname(e));
		archive_entry_set_pathname(e, name);
		if (ei->symlead) {
			char key[16];
			int kl = snprintf(key, sizeof(key), "%zu", i);
			char **slot = pathmap_put(symt, key, (size_t)kl, NULL);
			free(*slot);
			*slot = xstrdup(archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
		}
		if (archive_entry_hardlink(e)) {
			archive_entry_set_hardlink(e, NULL);
			archive_entry_set_filetype(e, (unsigned)ei->ftype << 12);
			archive_entry_set_size(e, 0);
			if (ei->ftype == (AE_IFLNK >> 12)) {
				char key[16];
				int kl = snprintf(key, sizeof(key), "%u", ei->lead);
				char **slot = pathmap_get(symt, key, (size_t)kl);
				archive_entry_set_symlink(e, slot ? *slot : "");
				archive_entry_set_perm(e, 0777);
			}
		}
		archive_entry_set_ino(e, ei->ino);
		archive_entry_set_nlink(e, ei->nlink);
		archive_entry_set_dev(e, 0);
		archive_entry_set_uname(e, NULL);
		archive_entry_set_gname(e, NULL);
		archive_entry_xattr_clear(e);
		if (archive_write_header(w, e) != ARCHIVE_OK) {
			rc =
			    kiln_error_make(err, 0, "cpio `%s`: %s", name, archive_error_string(w));
			break;
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		for (int64_t left = archive_entry_size(e); left > 0;) {
			la_ssize_t n = archive_read_data(r, buf, 128 * 1024);
			if (n <= 0) {
				rc = kiln_error_make(err, 0, "read `%s`: %s", name,
						     n < 0 ? archive_error_string(r) : "truncated");
				break;
			}
			if (archive_write_data(w, buf, (size_t)n) != n) {
				rc = kiln_error_make(err, 0, "cpio `%s`: %s", name,
						     archive_error_string(w));
				break;
			}
			left -= n;
		}
	}
	free(buf);
	pathmap_foreach(symt, free_string_value, NULL);
	pathmap_free(symt);
	if (rc == 0 && archive_write_close(w) != ARCHIVE_OK)
		rc = kiln_error_make(err, s->failed_errno, "cpio: %s", archive_error_string(w));
	if (rc == 0 && sink_feed(s, NULL, 0, true) < 0)
		rc = kiln_error_make(err, s->failed_errno, "compress `%s`", m->path);
	m->cpio_bytes = s->in_bytes;
out:
	archive_write_free(w);
	archive_read_free(r);
	sink_release(s);
	free(s);
	return rc;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	for (;;) {
		pthread_mutex_lock(&j->lock);
		if (j->stop || j->next >= j->nmembers) {
			pthread_mutex_unlock(&j->lock);
			return NULL;
		}
		struct member *m = &j->members[j->next++];
		pthread_mutex_unlock(&j->lock);
		struct kiln_error *e = NULL;
		int r = write_member(j, m, &e);
		pthread_mutex_lock(&j->lock);
		m->done = r < 0 ? -1 : 1;
		if (r < 0) {
			if (!j->err)
				j->err = e;
			else
				kiln_error_release(&e);
			j->stop = true;
		}
		pthread_cond_broadcast(&j->cond);
		pthread_mutex_unlock(&j->lock);
	}
}

static int append_file(int out, const char *path, struct kiln_error **err)
{
	cleanup_close int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kiln_error_make(err, errno, "open `%s`", path);
	struct stat st;
	if (fstat(in, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", path);
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL))
			break;
		if (n <= 0)
			return kiln_error_make(err, n < 0 ? errno : EIO, "append `%s`", path);
		left -= n;
	}
	char buf[65536];
	while (left > 0) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n <= 0)
			return kiln_error_make(err, n < 0 ? errno : EIO, "read `%s`", path);
		if (write_all(out, buf, (size_t)n, err) < 0)
			return -1;
		left -= n;
	}
	return 0;
}

/* ---- pass 1 ---- */

static int copy_data_to(struct archive *a, const char *path, struct kiln_error **err)
{
	cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", path);
	char buf[65536];
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, sizeof(buf))) > 0)
		if (write_all(fd, buf, (size_t)n, err) < 0)
			return -1;
	if (n < 0)
		return kiln_error_make(err, 0, "read `%s`: %s", path, archive_error_string(a));
	return 0;
}

struct scan {
	struct entry_info *ents;
	size_t n, cap;
	char *cmdline;
	bool kernel, ucode;
};

static int scan_tar(const char *tar_path, const char *kernel_out, const char *ucode_out,
		    struct scan *sc, struct kiln_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	cleanup_pathmap struct pathmap *names = pathmap_new(sizeof(uint32_t));
	int rc = 0;
	if (archive_read_open_filename(a, tar_path, 128 * 1024) != ARCHIVE_OK) {
		rc = kiln_error_make(err, 0, "open `%s`: %s", tar_path, archive_error_string(a));
		goto out;
	}
	for (;;) {
		struct archive_entry *e;
		int h = archive_read_next_header(a, &e);
		/* The offset of this entry's first header block (its pax header). */
		int64_t pos = archive_read_header_position(a);
		if (h == ARCHIVE_EOF)
			break;
		if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
			rc = kiln_error_make(err, 0, "read `%s`: %s", tar_path,
					     archive_error_string(a));
			goto out;
		}
		if (sc->n == sc->cap) {
			sc->cap = sc->cap ? sc->cap * 2 : 4096;
			sc->ents = xrealloc(sc->ents, sc->cap * sizeof(*sc->ents));
		}
		size_t idx = sc->n++;
		struct entry_info *ei = &sc->ents[idx];
		*ei = (struct entry_info){.pos = pos,
					  .size = (uint64_t)archive_entry_size(e),
					  .ino = (uint32_t)idx + 1,
					  .nlink = archive_entry_filetype(e) == AE_IFDIR ? 2 : 1,
					  .group_end = (uint32_t)idx,
					  .ftype = (uint8_t)(archive_entry_filetype(e) >> 12)};
		cleanup_free char *name = cpio_name(archive_entry_pathname(e));
		if (!*name || strcmp(name, ".") == 0 || strcmp(name, "./") == 0) {
			ei->skip = 1;
			continue;
		}
		if (strcmp(name, "boot") == 0 || str_has_prefix(name, "boot/")) {
			ei->skip = 1;
			if (strcmp(name, "boot/kernel") == 0 && kernel_out) {
				if (copy_data_to(a, kernel_out, err) < 0) {
					rc = -1;
					goto out;
				}
				sc->kernel = true;
			} else if (strcmp(name, "boot/ucode.cpio") == 0) {
				if (copy_data_to(a, ucode_out, err) < 0) {
					rc = -1;
					goto out;
				}
				sc->ucode = true;
			} else if (strcmp(name, "boot/cmdline") == 0) {
				char buf[65536];
				la_ssize_t n = archive_read_data(a, buf, sizeof(buf) - 1);
				buf[n > 0 ? n : 0] = '\0';
				free(sc->cmdline);
				sc->cmdline = xstrdup(buf);
			}
			continue;
		}
		const char *link = archive_entry_hardlink(e);
		if (link) {
			cleanup_free char *target = cpio_name(link);
			uint32_t *t = pathmap_get(names, target, strlen(target));
			if (!t) {
				rc = kiln_error_make(err, ENOENT, "`%s`: hard link to unknown `%s`",
						     name, target);
				goto out;
			}
			struct entry_info *lead = &sc->ents[*t];
			lead->group_end = (uint32_t)idx;
			ei->lead = *t;
			ei->ftype = lead->ftype;
			ei->size = 0;
			if (lead->ftype == (AE_IFLNK >> 12)) {
				/* The kernel does not hard-link symlinks: the link
				 * becomes a second symlink with the same target. */
				lead->symlead = 1;
			} else {
				lead->nlink++;
				ei->ino = lead->ino;
			}
			*(uint32_t *)pathmap_put(names, name, strlen(name), NULL) = *t;
		} else if (archive_entry_filetype(e) != AE_IFDIR) {
			*(uint32_t *)pathmap_put(names, name, strlen(name), NULL) = (uint32_t)idx;
		}
	}
	/* Every member of a group carries the group's link count. */
	for (size_t i = 0; i < sc->n; i++)
		if (sc->ents[i].ino != i + 1)
			sc->ents[i].nlink = sc->ents[sc->ents[i].ino - 1].nlink;
out:
	archive_read_free(a);
	return rc;
}

static size_t plan_members(struct scan *sc, const char *work_dir, struct member **out)
{
	struct member *ms = NULL;
	size_t n = 0, start = 0;
	uint64_t acc = 0;
	uint32_t open_until = 0;
	for (size_t i = 0; i < sc->n; i++) {
		if (sc->ents[i].group_end > open_until)
			open_until = sc->ents[i].group_end;
		if (!sc->ents[i].skip)
			acc += sc->ents[i].size + 128;
		bool last = i + 1 == sc->n;
		if ((acc >= INITRD_CHUNK_SIZE && open_until <= i) || last) {
			ms = xrealloc(ms, (n + 1) * sizeof(*ms));
			ms[n] = (struct member){start, i + 1, 0,
						xasprintf("%s/member-%06zu", work_dir, n), 0};
			n++;
			start = i + 1;
			acc = 0;
		}
	}
	*out = ms;
	return n;
}

static int online_cpus(void)
{
	const char *t = getenv("KILN_THREADS");
	uint64_t v;
	if (t && parse_u64(t, 10, &v) == 0 && v >= 1 && v <= 64)
		return (int)v;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 16 ? 16 : (int)n;
}

/* ---- per-section boot files in the cache: KEY.boot says what the section
 * held ("kiln-boot-v1 KERNEL UCODE MEMBERS CMDLINE_LEN\nCMDLINE"). ---- */

struct boot_meta {
	bool kernel, ucode, members;
	char *cmdline;
};

static int read_boot_meta(const char *path, struct boot_meta *bm)
{
	memset(bm, 0, sizeof(*bm));
	struct kiln_error *e = NULL;
	size_t len;
	char *buf = read_file(path, 1 << 20, &len, &e);
	if (!buf) {
		kiln_error_release(&e);
		return -1;
	}
	int k, u, m;
	size_t clen;
	int off = 0;
	if (sscanf(buf, "kiln-boot-v1 %d %d %d %zu\n%n", &k, &u, &m, &clen, &off) != 4 ||
	    off <= 0 || (size_t)off + clen > len) {
		free(buf);
		return -1;
	}
	bm->kernel = k, bm->ucode = u, bm->members = m;
	bm->cmdline = (k || clen) ? xstrndup(buf + off, clen) : NULL;
	free(buf);
	return 0;
}

static int write_boot_meta(const char *path, bool kernel, bool ucode, bool members,
			   const char *cmdline, struct kiln_error **err)
{
	cleanup_free char *text =
	    xasprintf("kiln-boot-v1 %d %d %d %zu\n%s", kernel, ucode, members,
		      cmdline ? strlen(cmdline) : (size_t)0, cmdline ? cmdline : "");
	return write_file_atomic(path, text, strlen(text), 0644, err);
}

static const char *member_ext(enum initrd_compress c)
{
	return c == INITRD_GZIP ? "cpio.gz" : c == INITRD_ZSTD ? "cpio.zst" : "cpio";
}

static int copy_file_to(const char *src, const char *dst, struct kiln_error **err)
{
	cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return kiln_error_make(err, errno, "create `%s`", dst);
	return append_file(out, src, err);
}

/* ---- taking over the previous output ----
 *
 * The initrd (and kernel) a build writes records, in an extended attribute,
 * what its bytes are made of: "kiln-reuse-v1 SIZE MTIME_S MTIME_NS\n" then
 * the body (for the initrd: the compression, then "KEY END" for each leading
 * cacheable section, END being the offset where its bytes end; for the
 * kernel: the key of the section it came from).  A section's bytes depend
 * only on its key (and the compression), so a rebuild whose leading sections
 * have the same keys keeps the previous file's first bytes instead of
 * copying them again from the cache: the previous NAME-initrd.img is renamed
 * into the work directory, truncated after the last matching section and
 * appended to.  Only a file that is provably what the record says is taken:
 * one link, size and mtime as recorded, and not open anywhere (a write
 * lease, held across the rename, proves it: a process that opens it by then
 * breaks the lease and the file is put back untouched). */

#define REUSE_HEADER "kiln-reuse-v1"
#define INITRD_XATTR "user.kiln.initrd"
#define KERNEL_XATTR "user.kiln.kernel"

/* Stamps FD with XATTR = header + BODY; the record is an optimisation, so a
 * file system without user xattrs simply never has one. */
static void record_stamp(int fd, const char *xattr, const char *body)
{
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return;
	cleanup_free char *v =
	    xasprintf(REUSE_HEADER " %lld %lld %ld\n%s", (long long)st.st_size,
		      (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, body);
	if (fsetxattr(fd, xattr, v, strlen(v), 0) < 0)
		fremovexattr(fd, xattr);
}

/* Opens FINAL when it carries a valid XATTR record: returns the fd (read
 * only) and *BODY (heap), or -1. */
static int previous_open(const char *final, const char *xattr, char **body)
{
	*body = NULL;
	if (!final)
		return -1;
	int fd = open(final, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	struct stat st;
	char buf[64 * 1024];
	ssize_t n = -1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1)
		n = fgetxattr(fd, xattr, buf, sizeof(buf) - 1);
	long long size, sec;
	long nsec;
	int off = 0;
	if (n > 0) {
		buf[n] = '\0';
		if (sscanf(buf, REUSE_HEADER " %lld %lld %ld\n%n", &size, &sec, &nsec, &off) == 3 &&
		    off > 0 && size == (long long)st.st_size &&
		    sec == (long long)st.st_mtim.tv_sec && nsec == st.st_mtim.tv_nsec) {
			*body = xstrdup(buf + off);
			return fd;
		}
	}
	close(fd);
	return -1;
}

/* Moves the file open as FD from FINAL to WORK if no other process has it
 * open; closes FD.  Returns true when it moved. */
static bool previous_take(int fd, const char *final, const char *work)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGIO, &ign, &old); /* a lease break signals the holder */
	bool moved = false;
	if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0) {
		if (rename(final, work) == 0) {
			moved = fcntl(fd, F_GETLEASE) == F_WRLCK;
			if (!moved && rename(work, final) < 0)
				unlink(work);
		}
		fcntl(fd, F_SETLEASE, F_UNLCK);
	}
	sigaction(SIGIO, &old, NULL);
	close(fd);
	return moved;
}

/* The kernel of the section KEY: the previous output when it is that
 * kernel, else a copy of the cached one. */
static int kernel_from_cache(const char *cached, const char *key, const char *prev,
			     const char *kernel_out, struct kiln_error **err)
{
	cleanup_free char *body = NULL;
	int fd = previous_open(prev, KERNEL_XATTR, &body);
	if (fd >= 0 && strcmp(body, key) == 0 && previous_take(fd, prev, kernel_out))
		return 0;
	if (fd >= 0 && strcmp(body, key) != 0)
		close(fd);
	if (copy_file_to(cached, kernel_out, err) < 0)
		return -1;
	cleanup_close int k = open(kernel_out, O_RDONLY | O_CLOEXEC);
	record_stamp(k, KERNEL_XATTR, key);
	return 0;
}

/* How many leading sections of SECS the previous initrd (record BODY) holds,
 * each as a cache hit of this build; END[k] gets the offset where section k
 * ends in it. */
static size_t previous_match(const char *body, const struct initrd_section *secs, size_t n,
			     const struct initrd_options *o, uint64_t *end)
{
	const char *p = strchr(body, '\n');
	size_t ext = strlen(member_ext(o->compress));
	if (!p || (size_t)(p - body) != ext || strncmp(body, member_ext(o->compress), ext) != 0)
		return 0;
	size_t k = 0;
	for (p++; k < n && *p; k++) {
		char key[65];
		unsigned long long e;
		int used = 0;
		if (!secs[k].cacheable || !secs[k].key ||
		    sscanf(p, "%64s %llu\n%n", key, &e, &used) != 2 || used <= 0 ||
		    strcmp(key, secs[k].key) != 0)
			break;
		cleanup_free char *meta = xasprintf("%s/%s.boot", o->cache_dir, key);
		struct boot_meta bm;
		if (read_boot_meta(meta, &bm) < 0)
			break;
		free(bm.cmdline);
		end[k] = e;
		p += used;
	}
	return k;
}

/* Compresses the entries of one scanned section into members appended, in
 * order, to OUT. */
static int convert_section(const char *tar_path, struct scan *sc, int out,
			   const struct initrd_options *o, struct initrd_result *res,
			   struct kiln_error **err)
{
	struct member *ms = NULL;
	size_t nms = plan_members(sc, o->work_dir, &ms);
	struct job j = {.tar_path = tar_path,
			.o = o,
			.ents = sc->ents,
			.members = ms,
			.nmembers = nms,
			.lock = PTHREAD_MUTEX_INITIALIZER,
			.cond = PTHREAD_COND_INITIALIZER};
	int nthreads = o->threads > 0 ? o->threads : online_cpus();
	pthread_t th[16];
	int started = 0;
	for (int i = 0; i < nthreads && i < 16 && (size_t)i < nms; i++)
		if (pthread_create(&th[i], NULL, worker, &j) == 0)
			started++;
	if (started == 0)
		worker(&j);
	int rc = 0;
	for (size_t k = 0; k < nms; k++) {
		pthread_mutex_lock(&j.lock);
		while (ms[k].done == 0 && !(j.stop && j.next <= k))
			pthread_cond_wait(&j.cond, &j.lock);
		int done = ms[k].done;
		pthread_mutex_unlock(&j.lock);
		if (done != 1 || append_file(out, ms[k].path, err) < 0) {
			rc = -1;
			pthread_mutex_lock(&j.lock);
			j.stop = true;
			pthread_mutex_unlock(&j.lock);
			break;
		}
		unlink(ms[k].path);
		res->cpio_bytes += ms[k].cpio_bytes;
		res->members++;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (j.err) {
		kiln_error_release(err);
		if (err)
			*err = j.err;
		else
			kiln_error_release(&j.err);
		rc = -1;
	} else if (rc < 0 && err && !*err) {
		kiln_error_make(err, EIO, "initrd: a member failed");
	}
	for (size_t k = 0; k < nms; k++) {
		unlink(ms[k].path);
		free(ms[k].path);
	}
	free(ms);
	return rc;
}

int initrd_from_sections(const struct initrd_section *secs, size_t n, const char *kernel_out,
			 const char *initrd_out, const struct initrd_options *o,
			 struct initrd_result *res, struct kiln_error **err)
{
	memset(res, 0, sizeof(*res));
	cleanup_free char *ucode = xasprintf("%s/ucode.cpio", o->work_dir);
	/* The previous initrd's leading sections, when they are this build's. */
	size_t kept = 0;
	cleanup_free uint64_t *kept_end = xcalloc(n ? n : 1, sizeof(*kept_end));
	cleanup_free char *prev_body = NULL;
	int prev = o->cache_dir ? previous_open(o->previous_initrd, INITRD_XATTR, &prev_body) : -1;
	if (prev >= 0) {
		kept = previous_match(prev_body, secs, n, o, kept_end);
		if (kept && !previous_take(prev, o->previous_initrd, initrd_out))
			kept = 0;
		else if (!kept)
			close(prev);
	}
	cleanup_close int out = -1;
	if (kept) {
		out = open(initrd_out, O_WRONLY | O_CLOEXEC);
		if (out < 0 || ftruncate(out, (off_t)kept_end[kept - 1]) < 0 ||
		    lseek(out, 0, SEEK_END) != (off_t)kept_end[kept - 1])
			return kiln_error_make(err, errno, "reuse `%s`", initrd_out);
		res->kept_sections = kept;
		res->kept_bytes = kept_end[kept - 1];
	} else {
		out = open(initrd_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (out < 0)
			return kiln_error_make(err, errno, "create `%s`", initrd_out);
	}
	/* This initrd's record: its leading run of cacheable sections. */
	struct strbuf rec = STRBUF_INIT;
	strbuf_printf(&rec, "%s\n", member_ext(o->compress));
	bool recording = o->cache_dir != NULL;
	char *cmdline = NULL;
	bool kernel = false, wrote = false;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		bool cacheable = o->cache_dir && secs[i].cacheable && secs[i].key;
		recording &= cacheable;
		cleanup_free char *cached = NULL, *meta = NULL, *ckernel = NULL, *cucode = NULL;
		if (cacheable) {
			cached = xasprintf("%s/%s.%s", o->cache_dir, secs[i].key,
					   member_ext(o->compress));
			meta = xasprintf("%s/%s.boot", o->cache_dir, secs[i].key);
			ckernel = xasprintf("%s/%s.kernel", o->cache_dir, secs[i].key);
			cucode = xasprintf("%s/%s.ucode", o->cache_dir, secs[i].key);
		}
		/* A section seen before: its boot files and members come from the
		 * cache without reading its tar. */
		struct boot_meta bm;
		bool in_place = i < kept; /* its bytes are already in OUT */
		if (cacheable && read_boot_meta(meta, &bm) == 0 &&
		    (in_place || !bm.members || access(cached, R_OK) == 0)) {
			if (bm.ucode) {
				if (wrote)
					rc = kiln_error_make(err, EINVAL,
							     "boot/ucode.cpio must come first");
				else if (!in_place)
					rc = append_file(out, cucode, err);
				if (rc == 0)
					rc = copy_file_to(cucode, ucode, err);
				res->has_ucode = true;
			}
			if (rc == 0 && bm.kernel && kernel_out)
				rc = kernel_from_cache(ckernel, secs[i].key, o->previous_kernel,
						       kernel_out, err);
			kernel |= bm.kernel;
			if (bm.cmdline) {
				free(cmdline);
				cmdline = bm.cmdline;
				bm.cmdline = NULL;
			}
			if (rc == 0 && bm.members) {
				if (!in_place)
					rc = append_file(out, cached, err);
				wrote = true;
			}
			utimensat(AT_FDCWD, cached, NULL, 0);
			utimensat(AT_FDCWD, meta, NULL, 0);
			free(bm.cmdline);
			res->reused++;
			if (recording)
				strbuf_printf(&rec, "%s %lld\n", secs[i].key,
					      in_place ? (long long)kept_end[i]
						       : (long long)lseek(out, 0, SEEK_CUR));
			continue;
		}
		struct scan sc = {0};
		rc = scan_tar(secs[i].tar_path, kernel_out, ucode, &sc, err);
		if (rc == 0 && sc.ucode) {
			if (wrote)
				rc = kiln_error_make(
				    err, EINVAL, "boot/ucode.cpio must come before other content");
			else
				rc = append_file(out, ucode, err);
			res->has_ucode = true;
		}
		kernel |= sc.kernel;
		bool any = false;
		for (size_t k = 0; k < sc.n && !any; k++)
			any = !sc.ents[k].skip;
		if (rc == 0 && any && cacheable) {
			/* Compress into the cache entry, then append it. */
			cleanup_free char *tmp = xasprintf("%s.tmp-%ld", cached, (long)getpid());
			int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0) {
				rc = kiln_error_make(err, errno, "create `%s`", tmp);
			} else {
				rc = convert_section(secs[i].tar_path, &sc, fd, o, res, err);
				if (close(fd) < 0 && rc == 0)
					rc = kiln_error_make(err, errno, "close `%s`", tmp);
				if (rc == 0 && rename(tmp, cached) < 0)
					rc = kiln_error_make(err, errno, "rename `%s`", cached);
				if (rc < 0)
					unlink(tmp);
				else
					rc = append_file(out, cached, err);
			}
		} else if (rc == 0 && any) {
			rc = convert_section(secs[i].tar_path, &sc, out, o, res, err);
		}
		if (rc == 0 && cacheable) {
			/* Boot files for the next build; the cache is an optimisation, so
			 * failing to keep them is not an error. */
			struct kiln_error *e = NULL;
			bool okk =
			    (!sc.kernel || copy_file_to(kernel_out, ckernel, &e) == 0) &&
			    (!sc.ucode || copy_file_to(ucode, cucode, &e) == 0) &&
			    write_boot_meta(meta, sc.kernel, sc.ucode, any, sc.cmdline, &e) == 0;
			(void)okk;
			kiln_error_release(&e);
		}
		if (rc == 0 && cacheable && sc.kernel && kernel_out) {
			cleanup_close int k = open(kernel_out, O_RDONLY | O_CLOEXEC);
			record_stamp(k, KERNEL_XATTR, secs[i].key);
		}
		if (rc == 0 && recording)
			strbuf_printf(&rec, "%s %lld\n", secs[i].key,
				      (long long)lseek(out, 0, SEEK_CUR));
		if (sc.cmdline) {
			free(cmdline);
			cmdline = sc.cmdline;
			sc.cmdline = NULL;
		}
		if (any)
			wrote = true;
		free(sc.ents);
	}
	if (rc == 0)
		record_stamp(out, INITRD_XATTR, rec.buf);
	strbuf_release(&rec);
	/* WORK_DIR/ucode.cpio stays for tar-kernel-initrd, which carries it
	 * as its own entry. */
	if (!res->has_ucode)
		unlink(ucode);
	if (rc == 0 && kernel_out && !kernel)
		rc = kiln_error_make(err, ENOENT,
				     "no boot/kernel in the image (no kernel: section?)");
	/* No fsync here: this is a work file that the format writers install
	 * by link + rename (atomic against a killed build). */
	if (rc < 0) {
		free(cmdline);
		return -1;
	}
	res->cmdline = cmdline ? cmdline : xstrdup("");
	return 0;
}

int initrd_from_tar(const char *tar_path, const char *kernel_out, const char *initrd_out,
		    const struct initrd_options *o, struct initrd_result *res,
		    struct kiln_error **err)
{
	struct initrd_section sec = {tar_path, NULL, false};
	return initrd_from_sections(&sec, 1, kernel_out, initrd_out, o, res, err);
}

void initrd_result_release(struct initrd_result *res)
{
	free(res->cmdline);
	res->cmdline = NULL;
}
