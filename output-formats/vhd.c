/* VHD (Microsoft's Virtual Hard Disk Image Format Specification 1.0):
 * fixed = the raw disk then a 512-byte footer; dynamic = footer copy,
 * dynamic header, block allocation table, 2 MiB blocks (each after a
 * 512-byte sector bitmap) holding only non-zero data, footer.  The creator
 * application is "qem2", the value by which readers (QEMU among them) know
 * the current-size field, not the CHS geometry, gives the disk size, so the
 * virtual size is exactly the one asked for. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "writer.h"

#define VHD_BLOCK      (2 * MIB)
#define VHD_EPOCH_2000 946684800LL

static uint32_t vhd_checksum(const unsigned char *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	return ~s;
}

/* The spec's CHS algorithm (appendix "CHS Calculation"). */
static void vhd_geometry(uint64_t size, unsigned char out[4])
{
	uint64_t total = size / 512, spt, heads, cth;
	if (total > 65535ULL * 16 * 255)
		total = 65535ULL * 16 * 255;
	if (total >= 65535ULL * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = total / spt;
	} else {
		spt = 17;
		cth = total / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cth = total / spt;
		}
		if (cth >= heads * 1024) {
			spt = 63;
			heads = 16;
			cth = total / spt;
		}
	}
	put_be16(out, (uint16_t)(cth / heads));
	out[2] = (unsigned char)heads;
	out[3] = (unsigned char)spt;
}

static void vhd_footer(unsigned char f[512], uint64_t vsize, bool dynamic,
		       const unsigned char seed[32], int64_t epoch)
{
	memset(f, 0, 512);
	memcpy(f, "conectix", 8);
	put_be32(f + 8, 2);
	put_be32(f + 12, 0x00010000);
	put_be64(f + 16, dynamic ? 512 : UINT64_MAX);
	int64_t t = epoch - VHD_EPOCH_2000;
	put_be32(f + 24, t < 0 ? 0 : (uint32_t)t);
	memcpy(f + 28, "qem2", 4);
	put_be32(f + 32, 0x00010000);
	memcpy(f + 36, "Wi2k", 4);
	put_be64(f + 40, vsize);
	put_be64(f + 48, vsize);
	vhd_geometry(vsize, f + 56);
	put_be32(f + 60, dynamic ? 3 : 2);
	format_guid(seed, dynamic ? "vhd-dynamic-unique-id" : "vhd-fixed-unique-id", f + 68);
	put_be32(f + 64, vhd_checksum(f, 512));
}

int vhd_write_fixed(const char *raw, uint64_t vsize, const unsigned char seed[32], int64_t epoch,
		    const char *out, struct kiln_error **err)
{
	uint64_t rsize;
	if (format_file_size(raw, &rsize, err) < 0)
		return -1;
	if (vsize < rsize)
		vsize = rsize;
	vsize = round_up(vsize, MIB); /* Azure wants whole MiB */
	cleanup_close int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);
	unsigned char f[512];
	vhd_footer(f, vsize, false, seed, epoch);
	if (ftruncate(fd, (off_t)vsize) < 0)
		return kiln_error_make(err, errno, "size `%s`", out);
	if (format_copy_sparse(fd, 0, raw, NULL, err) < 0 ||
	    disk_pwrite_all(fd, f, 512, vsize, "write", err) < 0)
		return kiln_error_wrap(err, "`%s`", out);
	return 0;
}

int vhd_write_dynamic(const char *raw, uint64_t vsize, const unsigned char seed[32], int64_t epoch,
		      const char *out, struct kiln_error **err)
{
	uint64_t rsize;
	cleanup_close int in = disk_open_raw(raw, &rsize, err);
	if (in < 0)
		return -1;
	if (vsize < rsize)
		vsize = rsize;
	vsize = round_up(vsize, MIB);
	uint64_t nblocks = (vsize + VHD_BLOCK - 1) / VHD_BLOCK;
	uint64_t bat_bytes = round_up(nblocks * 4, 512);
	cleanup_free unsigned char *bat = xmalloc(bat_bytes);
	memset(bat, 0xff, bat_bytes);
	cleanup_close int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);

	unsigned char f[512], h[1024] = {0};
	vhd_footer(f, vsize, true, seed, epoch);
	memcpy(h, "cxsparse", 8);
	put_be64(h + 8, UINT64_MAX);
	put_be64(h + 16, 1536);
	put_be32(h + 24, 0x00010000);
	put_be32(h + 28, (uint32_t)nblocks);
	put_be32(h + 32, (uint32_t)VHD_BLOCK);
	put_be32(h + 36, vhd_checksum(h, sizeof(h)));

	cleanup_free unsigned char *buf = xmalloc(VHD_BLOCK);
	unsigned char bitmap[512];
	memset(bitmap, 0xff, sizeof(bitmap));
	uint64_t pos = 1536 + bat_bytes;
	for (uint64_t b = 0; b < nblocks && b * VHD_BLOCK < rsize; b++) {
		off_t start = (off_t)(b * VHD_BLOCK);
		off_t data = lseek(in, start, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;
		if (data >= 0 && (uint64_t)data >= (b + 1) * VHD_BLOCK)
			continue; /* the whole block is a hole */
		bool zero;
		if (disk_read_block(in, raw, buf, VHD_BLOCK, (uint64_t)start, &zero, err) < 0)
			return -1;
		if (zero)
			continue;
		put_be32(bat + 4 * b, (uint32_t)(pos / 512));
		if (disk_pwrite_all(fd, bitmap, 512, pos, "write", err) < 0 ||
		    disk_pwrite_all(fd, buf, VHD_BLOCK, pos + 512, "write", err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
		pos += 512 + VHD_BLOCK;
	}
	if (disk_pwrite_all(fd, f, 512, 0, "write", err) < 0 ||
	    disk_pwrite_all(fd, h, 1024, 512, "write", err) < 0 ||
	    disk_pwrite_all(fd, bat, bat_bytes, 1536, "write", err) < 0 ||
	    disk_pwrite_all(fd, f, 512, pos, "write", err) < 0)
		return kiln_error_wrap(err, "`%s`", out);
	return 0;
}
