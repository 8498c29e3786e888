/* VMDK streamOptimized (VMware's Virtual Disk Format 5.0, "Stream-Optimized
 * Compressed Sparse Extents"): header, embedded descriptor, then only the
 * non-zero 64 KiB grains, each deflated (zlib) behind a grain marker, then
 * every grain table, the grain directory, a footer (the header with the
 * directory's offset) and an end-of-stream marker, each behind its marker.
 * This is what cloud importers (vSphere, AWS, GCP) take. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "strbuf.h"
#include "util.h"
#include "writer.h"

#define VMDK_GRAIN_SECTORS 128ULL
#define VMDK_GRAIN	   (VMDK_GRAIN_SECTORS * SECTOR)
#define VMDK_GTES	   512ULL
#define VMDK_GT_SECTORS	   (VMDK_GTES * 4 / SECTOR)
#define VMDK_DESC_SECTORS  20ULL
#define VMDK_OVERHEAD	   128ULL
/* zlib level 1: a few per cent larger than the default level and several
 * times faster; the grains of a boot disk are mostly kernel and initrd,
 * already compressed. */
#define VMDK_ZLEVEL	   1
#define VMDK_MARKER_EOS	   0
#define VMDK_MARKER_GT	   1
#define VMDK_MARKER_GD	   2
#define VMDK_MARKER_FOOTER 3

static void vmdk_header(unsigned char h[512], uint64_t capacity, uint64_t gd_offset)
{
	memset(h, 0, 512);
	put_le32(h, 0x564d444b); /* "KDMV" */
	put_le32(h + 4, 3);
	put_le32(h + 8, 0x00030001); /* newline test valid, compressed grains, markers */
	put_le64(h + 12, capacity);
	put_le64(h + 20, VMDK_GRAIN_SECTORS);
	put_le64(h + 28, 1);
	put_le64(h + 36, VMDK_DESC_SECTORS);
	put_le32(h + 44, (uint32_t)VMDK_GTES);
	put_le64(h + 48, 0);
	put_le64(h + 56, gd_offset);
	put_le64(h + 64, VMDK_OVERHEAD);
	h[72] = 0;
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	h[77] = 1; /* compressAlgorithm: deflate */
}

struct vmdk_out {
	int fd;
	uint64_t pos; /* bytes */
};

static int out_write(struct vmdk_out *o, const void *buf, size_t len, struct kiln_error **err)
{
	if (write_all(o->fd, buf, len, err) < 0)
		return -1;
	o->pos += len;
	return 0;
}

static int out_pad(struct vmdk_out *o, struct kiln_error **err)
{
	static const unsigned char zeros[SECTOR];
	size_t pad = (size_t)(round_up(o->pos, SECTOR) - o->pos);
	return pad ? out_write(o, zeros, pad, err) : 0;
}

static int out_marker(struct vmdk_out *o, uint64_t val, uint32_t type, struct kiln_error **err)
{
	unsigned char m[SECTOR] = {0};
	put_le64(m, val);
	put_le32(m + 12, type);
	return out_write(o, m, sizeof(m), err);
}

int vmdk_write(const char *raw, uint64_t vsize, const unsigned char seed[32], const char *out,
	       struct kiln_error **err)
{
	uint64_t rsize;
	cleanup_close int in = disk_open_raw(raw, &rsize, err);
	if (in < 0)
		return -1;
	if (vsize < rsize)
		vsize = rsize;
	vsize = round_up(vsize, VMDK_GRAIN);
	uint64_t capacity = vsize / SECTOR;
	uint64_t ngrains = vsize / VMDK_GRAIN;
	uint64_t ngts = (ngrains + VMDK_GTES - 1) / VMDK_GTES;
	uint64_t gd_sectors = (ngts * 4 + SECTOR - 1) / SECTOR;

	cleanup_free uint32_t *gt = xcalloc(ngts * VMDK_GTES, sizeof(uint32_t));
	cleanup_close int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);
	struct vmdk_out o = {.fd = fd};

	/* Header and descriptor, then pad to the overhead. */
	unsigned char h[512];
	vmdk_header(h, capacity, UINT64_MAX /* GD_AT_END: see the footer */);
	const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	cleanup_free char *extent = xstrdup(base);
	char *tmp = strstr(extent, ".tmp-kiln");
	if (tmp)
		*tmp = '\0';
	uint64_t cyl = capacity / (255 * 63);
	if (cyl > 16383)
		cyl = 16383;
	cleanup_strbuf struct strbuf d = STRBUF_INIT;
	strbuf_printf(&d,
		      "# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\n"
		      "createType=\"streamOptimized\"\n\n# Extent description\n"
		      "RW %llu SPARSE \"%s\"\n\n# The Disk Data Base\n#DDB\n\n"
		      "ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"%llu\"\n"
		      "ddb.geometry.heads = \"255\"\nddb.geometry.sectors = \"63\"\n"
		      "ddb.adapterType = \"lsilogic\"\nddb.toolsVersion = \"2147483647\"\n",
		      format_id32(seed, "vmdk-cid"), (unsigned long long)capacity, extent,
		      (unsigned long long)cyl);
	if (d.len > VMDK_DESC_SECTORS * SECTOR)
		return kiln_error_make(err, 0, "VMDK descriptor too long");
	cleanup_free unsigned char *head = xcalloc(VMDK_OVERHEAD, SECTOR);
	memcpy(head, h, 512);
	memcpy(head + SECTOR, d.buf, d.len);
	if (out_write(&o, head, VMDK_OVERHEAD * SECTOR, err) < 0)
		return kiln_error_wrap(err, "`%s`", out);

	/* Grains. */
	cleanup_free unsigned char *grain = xmalloc(VMDK_GRAIN);
	uLong bound = compressBound(VMDK_GRAIN);
	cleanup_free unsigned char *z = xmalloc(12 + bound);
	for (uint64_t g = 0; g < ngrains && g * VMDK_GRAIN < rsize; g++) {
		off_t start = (off_t)(g * VMDK_GRAIN);
		off_t data = lseek(in, start, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data >= 0 && (uint64_t)data >= (g + 1) * VMDK_GRAIN) {
			g = (uint64_t)data / VMDK_GRAIN - 1; /* skip the hole */
			continue;
		}
		bool zero;
		if (disk_read_block(in, raw, grain, VMDK_GRAIN, (uint64_t)start, &zero, err) < 0)
			return -1;
		if (zero)
			continue;
		uLongf zlen = bound;
		if (compress2(z + 12, &zlen, grain, VMDK_GRAIN, VMDK_ZLEVEL) != Z_OK)
			return kiln_error_make(err, 0, "VMDK: deflate failed");
		put_le64(z, g * VMDK_GRAIN_SECTORS);
		put_le32(z + 8, (uint32_t)zlen);
		gt[g] = (uint32_t)(o.pos / SECTOR);
		if (out_write(&o, z, 12 + zlen, err) < 0 || out_pad(&o, err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
	}

	/* Grain tables (all of them), the directory, the footer, end of stream. */
	cleanup_free unsigned char *gd = xcalloc(gd_sectors, SECTOR);
	unsigned char gtbuf[VMDK_GTES * 4];
	for (uint64_t t = 0; t < ngts; t++) {
		if (out_marker(&o, VMDK_GT_SECTORS, VMDK_MARKER_GT, err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
		put_le32(gd + 4 * t, (uint32_t)(o.pos / SECTOR));
		for (uint64_t e = 0; e < VMDK_GTES; e++)
			put_le32(gtbuf + 4 * e, gt[t * VMDK_GTES + e]);
		if (out_write(&o, gtbuf, sizeof(gtbuf), err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
	}
	if (out_marker(&o, gd_sectors, VMDK_MARKER_GD, err) < 0)
		return kiln_error_wrap(err, "`%s`", out);
	uint64_t gd_offset = o.pos / SECTOR;
	if (out_write(&o, gd, gd_sectors * SECTOR, err) < 0 ||
	    out_marker(&o, 1, VMDK_MARKER_FOOTER, err) < 0)
		return kiln_error_wrap(err, "`%s`", out);
	vmdk_header(h, capacity, gd_offset);
	if (out_write(&o, h, 512, err) < 0 || out_marker(&o, 0, VMDK_MARKER_EOS, err) < 0)
		return kiln_error_wrap(err, "`%s`", out);
	return 0;
}
