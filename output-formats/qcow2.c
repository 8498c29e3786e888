/* qcow2 version 3 written from a raw disk image (QEMU's docs/interop/
 * qcow2.txt): 64 KiB clusters, one L1 table, L2 tables only where data is,
 * 16-bit refcounts, and only the clusters that hold non-zero data written.
 * Layout: header | refcount table | refcount blocks | L1 | L2s | data, each
 * cluster referenced once (refcount 1, every table entry marked COPIED). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "writer.h"

#define QCOW2_CLUSTER_BITS	  16
#define QCOW2_CLUSTER		  (1ULL << QCOW2_CLUSTER_BITS)
#define QCOW2_L2_ENTRIES	  (QCOW2_CLUSTER / 8)
#define QCOW2_REFCOUNTS_PER_BLOCK (QCOW2_CLUSTER / 2)
#define QCOW2_COPIED		  (1ULL << 63)

/* Marks in MAP (one byte per cluster) the clusters of FD (SIZE bytes) that
 * hold a non-zero byte; returns their count. */
static int scan_clusters(int fd, uint64_t size, unsigned char *map, uint64_t *count,
			 struct kiln_error **err)
{
	cleanup_free unsigned char *buf = xmalloc(QCOW2_CLUSTER);
	uint64_t pos = 0, n = 0;
	while (pos < size) {
		off_t data = lseek(fd, (off_t)pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break;
			data = (off_t)pos;
		}
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole > size)
			hole = (off_t)size;
		for (uint64_t c = (uint64_t)data / QCOW2_CLUSTER;
		     c * QCOW2_CLUSTER < (uint64_t)hole; c++) {
			ssize_t r = pread(fd, buf, QCOW2_CLUSTER, (off_t)(c * QCOW2_CLUSTER));
			if (r < 0)
				return kiln_error_make(err, errno, "read raw image");
			bool zero = true;
			for (ssize_t i = 0; i < r && zero; i++)
				zero = buf[i] == 0;
			if (!zero && !map[c]) {
				map[c] = 1;
				n++;
			}
		}
		pos = round_up((uint64_t)hole, QCOW2_CLUSTER);
	}
	*count = n;
	return 0;
}

int qcow2_write(const char *raw, uint64_t vsize, const char *out, struct kiln_error **err)
{
	uint64_t rsize;
	cleanup_close int in = disk_open_raw(raw, &rsize, err);
	if (in < 0)
		return -1;
	if (vsize < rsize)
		vsize = rsize;
	uint64_t vclusters = (vsize + QCOW2_CLUSTER - 1) / QCOW2_CLUSTER;
	cleanup_free unsigned char *map = xcalloc(vclusters ? vclusters : 1, 1);
	uint64_t ndata = 0;
	if (scan_clusters(in, rsize, map, &ndata, err) < 0)
		return kiln_error_wrap(err, "`%s`", raw);

	uint64_t l1_size = (vclusters + QCOW2_L2_ENTRIES - 1) / QCOW2_L2_ENTRIES;
	uint64_t l1_clusters = (l1_size * 8 + QCOW2_CLUSTER - 1) / QCOW2_CLUSTER;
	if (l1_clusters == 0)
		l1_clusters = 1;
	uint64_t nl2 = 0;
	for (uint64_t t = 0; t < l1_size; t++) {
		uint64_t lo = t * QCOW2_L2_ENTRIES, hi = lo + QCOW2_L2_ENTRIES;
		if (hi > vclusters)
			hi = vclusters;
		for (uint64_t c = lo; c < hi; c++)
			if (map[c]) {
				nl2++;
				break;
			}
	}
	/* The refcount structures count themselves: iterate to a fixed point. */
	uint64_t rb = 1, rt = 1, total;
	for (;;) {
		total = 1 + rt + rb + l1_clusters + nl2 + ndata;
		uint64_t rb2 = (total + QCOW2_REFCOUNTS_PER_BLOCK - 1) / QCOW2_REFCOUNTS_PER_BLOCK;
		uint64_t rt2 = (rb2 * 8 + QCOW2_CLUSTER - 1) / QCOW2_CLUSTER;
		if (rb2 == rb && rt2 == rt)
			break;
		rb = rb2;
		rt = rt2;
	}
	uint64_t rt_off = 1 * QCOW2_CLUSTER;
	uint64_t rb_off = rt_off + rt * QCOW2_CLUSTER;
	uint64_t l1_off = rb_off + rb * QCOW2_CLUSTER;
	uint64_t l2_off = l1_off + l1_clusters * QCOW2_CLUSTER;
	uint64_t data_off = l2_off + nl2 * QCOW2_CLUSTER;

	cleanup_close int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);

	unsigned char hdr[512] = {0};
	memcpy(hdr, "QFI\xfb", 4);
	put_be32(hdr + 4, 3);
	put_be32(hdr + 20, QCOW2_CLUSTER_BITS);
	put_be64(hdr + 24, vsize);
	put_be32(hdr + 36, (uint32_t)l1_size);
	put_be64(hdr + 40, l1_off);
	put_be64(hdr + 48, rt_off);
	put_be32(hdr + 56, (uint32_t)rt);
	put_be32(hdr + 96, 4); /* refcount_order: 16-bit refcounts */
	put_be32(hdr + 100, 104);
	/* A header extension end marker (type 0, length 0) follows at 104. */
	if (disk_pwrite_all(fd, hdr, sizeof(hdr), 0, "write", err) < 0)
		return kiln_error_wrap(err, "`%s`", out);

	/* Refcount table and blocks: every cluster up to TOTAL has refcount 1. */
	{
		cleanup_free unsigned char *table = xcalloc(rt, QCOW2_CLUSTER);
		for (uint64_t i = 0; i < rb; i++)
			put_be64(table + 8 * i, rb_off + i * QCOW2_CLUSTER);
		if (disk_pwrite_all(fd, table, rt * QCOW2_CLUSTER, rt_off, "write", err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
		cleanup_free unsigned char *blocks = xcalloc(rb, QCOW2_CLUSTER);
		for (uint64_t c = 0; c < total; c++) {
			blocks[2 * c] = 0;
			blocks[2 * c + 1] = 1;
		}
		if (disk_pwrite_all(fd, blocks, rb * QCOW2_CLUSTER, rb_off, "write", err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
	}

	/* L1, L2 and data in guest order. */
	cleanup_free unsigned char *l1 = xcalloc(l1_clusters, QCOW2_CLUSTER);
	cleanup_free unsigned char *l2 = xmalloc(QCOW2_CLUSTER);
	cleanup_free unsigned char *buf = xmalloc(QCOW2_CLUSTER);
	uint64_t next_l2 = l2_off, next_data = data_off;
	for (uint64_t t = 0; t < l1_size; t++) {
		uint64_t lo = t * QCOW2_L2_ENTRIES, hi = lo + QCOW2_L2_ENTRIES;
		if (hi > vclusters)
			hi = vclusters;
		bool any = false;
		memset(l2, 0, QCOW2_CLUSTER);
		for (uint64_t c = lo; c < hi; c++) {
			if (!map[c])
				continue;
			any = true;
			memset(buf, 0, QCOW2_CLUSTER);
			ssize_t r = pread(in, buf, QCOW2_CLUSTER, (off_t)(c * QCOW2_CLUSTER));
			if (r < 0)
				return kiln_error_make(err, errno, "read `%s`", raw);
			if (disk_pwrite_all(fd, buf, QCOW2_CLUSTER, next_data, "write", err) < 0)
				return kiln_error_wrap(err, "`%s`", out);
			put_be64(l2 + 8 * (c - lo), next_data | QCOW2_COPIED);
			next_data += QCOW2_CLUSTER;
		}
		if (!any)
			continue;
		if (disk_pwrite_all(fd, l2, QCOW2_CLUSTER, next_l2, "write", err) < 0)
			return kiln_error_wrap(err, "`%s`", out);
		put_be64(l1 + 8 * t, next_l2 | QCOW2_COPIED);
		next_l2 += QCOW2_CLUSTER;
	}
	if (disk_pwrite_all(fd, l1, l1_clusters * QCOW2_CLUSTER, l1_off, "write", err) < 0)
		return kiln_error_wrap(err, "`%s`", out);
	if (ftruncate(fd, (off_t)(total * QCOW2_CLUSTER)) < 0)
		return kiln_error_make(err, errno, "size `%s`", out);
	return 0;
}
