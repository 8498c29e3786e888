/* Disk container formats: a raw BIOS or EFI disk built in the work
 * directory, then converted by kiln's own writers (qcow2.c, vhd.c, vmdk.c)
 * or packed for GCP.  The virtual size is --size when given, else 1 GiB as
 * LinuxKit's defaults (sparse: the unused space costs nothing). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"
#include "writer.h"

#define DEFAULT_VSIZE (1024 * MIB)

typedef int (*raw_builder)(const struct format_ctx *, const char *, uint64_t, struct kiln_error **);
enum container { C_QCOW2, C_VHD_FIXED, C_VHD_DYNAMIC, C_VMDK };

static int container_write(const struct format_ctx *ctx, const char *fmt, const char *suffix,
			   raw_builder build, enum container kind, struct kiln_error **err)
{
	unsigned char seed[32];
	if (format_boot_seed(ctx, fmt, seed, err) < 0)
		return kiln_error_wrap(err, "%s", fmt);
	cleanup_free char *raw = xasprintf("%s/%s.raw", ctx->work_dir, fmt);
	cleanup_free char *final = writer_output_path(ctx, suffix);
	cleanup_free char *tmp = format_temp_path(final);
	uint64_t vsize = ctx->size ? ctx->size : DEFAULT_VSIZE;
	/* The raw disk is made at the virtual size so that what sits at its
	 * end (the backup GPT) is at the end of the virtual disk. */
	struct format_ctx c = *ctx;
	c.size = 0;
	int r = build(&c, raw, vsize, err);
	if (r == 0) {
		switch (kind) {
		case C_QCOW2:
			r = qcow2_write(raw, vsize, tmp, err);
			break;
		case C_VHD_FIXED:
			r = vhd_write_fixed(raw, vsize, seed, ctx->epoch, tmp, err);
			break;
		case C_VHD_DYNAMIC:
			r = vhd_write_dynamic(raw, vsize, seed, ctx->epoch, tmp, err);
			break;
		case C_VMDK:
			r = vmdk_write(raw, vsize, seed, tmp, err);
			break;
		}
	}
	unlink(raw);
	if (r == 0)
		r = format_publish(tmp, final, err);
	if (r < 0) {
		unlink(tmp);
		return kiln_error_wrap(err, "%s", fmt);
	}
	return 0;
}

int format_write_qcow2_bios(const struct format_ctx *ctx, struct kiln_error **err)
{
	return container_write(ctx, "qcow2-bios", ".qcow2", raw_bios_build, C_QCOW2, err);
}

int format_write_qcow2_efi(const struct format_ctx *ctx, struct kiln_error **err)
{
	return container_write(ctx, "qcow2-efi", "-efi.qcow2", raw_efi_build, C_QCOW2, err);
}

int format_write_vhd(const struct format_ctx *ctx, struct kiln_error **err)
{
	return container_write(ctx, "vhd", ".vhd", raw_bios_build, C_VHD_FIXED, err);
}

int format_write_dynamic_vhd(const struct format_ctx *ctx, struct kiln_error **err)
{
	return container_write(ctx, "dynamic-vhd", ".vhd", raw_bios_build, C_VHD_DYNAMIC, err);
}

int format_write_vmdk(const struct format_ctx *ctx, struct kiln_error **err)
{
	return container_write(ctx, "vmdk", ".vmdk", raw_bios_build, C_VMDK, err);
}

static void archive_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

/* gzip written with zlib so that runs of zeros (most of a sparse disk) cost
 * nothing: a 1 MiB zero chunk is deflated once, after a full flush (which
 * byte-aligns the stream and drops every back-reference), and its bytes are
 * repeated for every zero megabyte; the CRC is extended with crc32_combine.
 * The stream stays one standard gzip member, header fixed (no name, no
 * time), identical for identical input. */
#define GZ_ZCHUNK (1024 * 1024)
#define GZ_LEVEL  6

struct gz {
	int fd;
	z_stream z;
	bool z_ready;
	uLong crc;
	uint64_t isize;
	uint64_t zero_run;
	unsigned char *zchunk; /* the deflated zero megabyte */
	size_t zchunk_len;
	uLong zchunk_crc;
	unsigned char out[1 << 16];
	struct kiln_error **err;
	int failed;
};

static const unsigned char gz_zeros[GZ_ZCHUNK];

static int gz_emit(struct gz *g, const void *buf, size_t len)
{
	if (write_all(g->fd, buf, len, g->err) < 0) {
		g->failed = 1;
		return -1;
	}
	return 0;
}

static int gz_deflate(struct gz *g, const void *buf, size_t len, int flush)
{
	g->z.next_in = (Bytef *)buf;
	g->z.avail_in = (uInt)len;
	do {
		g->z.next_out = g->out;
		g->z.avail_out = sizeof(g->out);
		int r = deflate(&g->z, flush);
		if (r == Z_STREAM_ERROR) {
			g->failed = 1;
			return kiln_error_make(g->err, 0, "deflate failed");
		}
		if (gz_emit(g, g->out, sizeof(g->out) - g->z.avail_out) < 0)
			return -1;
	} while (g->z.avail_out == 0 || g->z.avail_in > 0);
	return 0;
}

static int gz_data(struct gz *g, const void *buf, size_t len)
{
	g->crc = crc32(g->crc, buf, (uInt)len);
	g->isize += len;
	return gz_deflate(g, buf, len, Z_NO_FLUSH);
}

static int gz_flush_zeros(struct gz *g)
{
	uint64_t n = g->zero_run / GZ_ZCHUNK, rest = g->zero_run % GZ_ZCHUNK;
	g->zero_run = 0;
	if (n) {
		if (gz_deflate(g, NULL, 0, Z_FULL_FLUSH) < 0)
			return -1;
		for (uint64_t i = 0; i < n; i++) {
			if (gz_emit(g, g->zchunk, g->zchunk_len) < 0)
				return -1;
			g->crc = crc32_combine(g->crc, g->zchunk_crc, GZ_ZCHUNK);
			g->isize += GZ_ZCHUNK;
		}
	}
	return rest ? gz_data(g, gz_zeros, (size_t)rest) : 0;
}

/* Length of the all-zero prefix of BUF (word at a time). */
static size_t zero_prefix(const unsigned char *buf, size_t len)
{
	size_t z = 0;
	while (z < len && ((uintptr_t)(buf + z) & 7))
		if (buf[z])
			return z;
		else
			z++;
	while (z + 8 <= len) {
		uint64_t w;
		memcpy(&w, buf + z, 8);
		if (w)
			break;
		z += 8;
	}
	while (z < len && !buf[z])
		z++;
	return z;
}

static int gz_write(struct gz *g, const unsigned char *buf, size_t len)
{
	while (len) {
		/* Zero bytes extend the run; data ends it at the next 4 KiB of
		 * zeros (aligned to BUF) or the end. */
		size_t z = zero_prefix(buf, len);
		g->zero_run += z;
		buf += z;
		len -= z;
		if (!len)
			break;
		size_t nz = 0;
		while (nz < len) {
			size_t step = len - nz < 4096 ? len - nz : 4096;
			if (step == 4096 && zero_prefix(buf + nz, step) == step)
				break;
			nz += step;
		}
		if (gz_flush_zeros(g) < 0 || gz_data(g, buf, nz) < 0)
			return -1;
		buf += nz;
		len -= nz;
	}
	return 0;
}

static int gz_open(struct gz *g, int fd, struct kiln_error **err)
{
	memset(g, 0, sizeof(*g));
	g->fd = fd;
	g->err = err;
	g->crc = crc32(0, NULL, 0);
	z_stream zz = {0};
	if (deflateInit2(&zz, GZ_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return kiln_error_make(err, 0, "deflateInit failed");
	size_t cap = deflateBound(&zz, GZ_ZCHUNK) + 64;
	g->zchunk = xmalloc(cap);
	zz.next_in = (Bytef *)gz_zeros;
	zz.avail_in = GZ_ZCHUNK;
	zz.next_out = g->zchunk;
	zz.avail_out = (uInt)cap;
	int r = deflate(&zz, Z_FULL_FLUSH);
	g->zchunk_len = cap - zz.avail_out;
	deflateEnd(&zz);
	if (r != Z_OK || zz.avail_in != 0)
		return kiln_error_make(err, 0, "deflate of the zero chunk failed");
	g->zchunk_crc = crc32(crc32(0, NULL, 0), gz_zeros, GZ_ZCHUNK);
	if (deflateInit2(&g->z, GZ_LEVEL, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return kiln_error_make(err, 0, "deflateInit failed");
	g->z_ready = true;
	/* Header: deflate, no flags, mtime 0, no extra flags, OS "unknown". */
	static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255};
	return gz_emit(g, head, sizeof(head));
}

static int gz_close(struct gz *g)
{
	if (gz_flush_zeros(g) < 0 || gz_deflate(g, NULL, 0, Z_FINISH) < 0)
		return -1;
	unsigned char tail[8];
	for (int i = 0; i < 4; i++) {
		tail[i] = (unsigned char)(g->crc >> (8 * i));
		tail[4 + i] = (unsigned char)(g->isize >> (8 * i));
	}
	return gz_emit(g, tail, sizeof(tail));
}

static void gz_release(struct gz *g)
{
	if (g->z_ready)
		deflateEnd(&g->z);
	free(g->zchunk);
	g->zchunk = NULL;
	g->z_ready = false;
}

static la_ssize_t gz_archive_write(struct archive *a, void *data, const void *buf, size_t len)
{
	struct gz *g = data;
	if (gz_write(g, buf, len) < 0) {
		archive_set_error(a, EIO, "gzip write failed");
		return -1;
	}
	return (la_ssize_t)len;
}

/* gcp: a BIOS disk of a whole number of GiB (Compute Engine's rule) as
 * disk.raw in a gzip'd GNU tar, every header field fixed. */
static int gcp_pack(const struct format_ctx *ctx, const char *raw, const char *out,
		    struct kiln_error **err)
{
	uint64_t size;
	if (format_file_size(raw, &size, err) < 0)
		return -1;
	cleanup_close int ofd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (ofd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);
	struct gz g;
	if (gz_open(&g, ofd, err) < 0) {
		gz_release(&g);
		return -1;
	}
	int r = -1;
	__attribute__((cleanup(archive_freep))) struct archive *a = archive_write_new();
	__attribute__((cleanup(entry_freep))) struct archive_entry *e = archive_entry_new();
	cleanup_close int fd = -1;
	cleanup_free char *buf = NULL;
	archive_write_set_format_gnutar(a);
	archive_write_set_bytes_per_block(a, 1 << 20);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open(a, &g, NULL, gz_archive_write, NULL) != ARCHIVE_OK) {
		kiln_error_make(err, 0, "write `%s`: %s", out, archive_error_string(a));
		goto done;
	}
	archive_entry_set_pathname(e, "disk.raw");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, (time_t)ctx->epoch, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		kiln_error_make(err, 0, "write `%s`: %s", out, archive_error_string(a));
		goto done;
	}
	fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		kiln_error_make(err, errno, "open `%s`", raw);
		goto done;
	}
	/* Holes are fed from a zero buffer rather than read. */
	buf = xmalloc(1 << 20);
	for (uint64_t pos = 0; pos < size;) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		uint64_t hole_end = data < 0 ? size : (uint64_t)data;
		if (data < 0 && errno != ENXIO)
			hole_end = pos; /* no SEEK_DATA: read everything */
		bool zeros = hole_end > pos;
		uint64_t end = zeros ? hole_end : size;
		if (!zeros) {
			off_t hole = lseek(fd, (off_t)pos, SEEK_HOLE);
			if (hole >= 0 && (uint64_t)hole > pos && (uint64_t)hole < size)
				end = (uint64_t)hole;
		}
		while (pos < end) {
			size_t want = end - pos < (1 << 20) ? (size_t)(end - pos) : (1 << 20);
			const void *src = gz_zeros;
			if (!zeros) {
				ssize_t n = pread(fd, buf, want, (off_t)pos);
				if (n <= 0) {
					kiln_error_make(err, n < 0 ? errno : EIO, "read `%s`", raw);
					goto done;
				}
				want = (size_t)n;
				src = buf;
			}
			if (archive_write_data(a, src, want) != (la_ssize_t)want) {
				if (!g.failed)
					kiln_error_make(err, 0, "write `%s`: %s", out,
							archive_error_string(a));
				goto done;
			}
			pos += want;
		}
	}
	if (archive_write_close(a) != ARCHIVE_OK) {
		if (!g.failed)
			kiln_error_make(err, 0, "write `%s`: %s", out, archive_error_string(a));
		goto done;
	}
	r = gz_close(&g);
done:
	gz_release(&g);
	return r;
}

int format_write_gcp(const struct format_ctx *ctx, struct kiln_error **err)
{
	cleanup_free char *raw = xasprintf("%s/gcp-disk.raw", ctx->work_dir);
	cleanup_free char *final = writer_output_path(ctx, ".img.tar.gz");
	cleanup_free char *tmp = format_temp_path(final);
	uint64_t gib = 1024 * MIB;
	uint64_t want = ctx->size ? round_up(ctx->size, gib) : gib;
	struct format_ctx c = *ctx;
	c.size = 0;
	int r = raw_bios_build(&c, raw, want, err);
	if (r == 0) {
		uint64_t got;
		r = format_file_size(raw, &got, err);
		if (r == 0 && got % gib) /* the boot partition alone outgrew WANT */
			r = truncate(raw, (off_t)round_up(got, gib)) < 0
				? kiln_error_make(err, errno, "size `%s`", raw)
				: 0;
	}
	if (r == 0)
		r = gcp_pack(ctx, raw, tmp, err);
	unlink(raw);
	if (r == 0)
		r = format_publish(tmp, final, err);
	if (r < 0) {
		unlink(tmp);
		return kiln_error_wrap(err, "gcp");
	}
	return 0;
}

#define ROW(var, nm, fl, fn)                                                                       \
	const struct output_format var = {                                                         \
	    .name = nm, .files = fl, .needs_kernel_initrd = true, .write = fn}
ROW(format_qcow2_bios, "qcow2-bios", "NAME.qcow2", format_write_qcow2_bios);
ROW(format_qcow2_efi, "qcow2-efi", "NAME-efi.qcow2", format_write_qcow2_efi);
ROW(format_vhd, "vhd", "NAME.vhd", format_write_vhd);
ROW(format_dynamic_vhd, "dynamic-vhd", "NAME.vhd", format_write_dynamic_vhd);
ROW(format_vmdk, "vmdk", "NAME.vmdk", format_write_vmdk);
ROW(format_gcp, "gcp", "NAME.img.tar.gz", format_write_gcp);
