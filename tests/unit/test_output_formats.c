/* Unit tests of the output-format writers' own encoders: GPT and MBR, the PE
 * section writer of UKIs, qcow2, VHD and VMDK headers, identifiers derived
 * from content, the tool runner.  The peers (qemu-img, sgdisk, xorriso,
 * fsck.fat) judge whole files in tests/integration/formats.sh. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "error.h"
#include "tap.h"
#include "util.h"
#include "writer.h"

static uint16_t le16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static unsigned char *slurp(const char *path, size_t *len)
{
	struct kiln_error *err = NULL;
	unsigned char *d = (unsigned char *)read_file(path, 1 << 30, len, &err);
	kiln_error_release(&err);
	return d;
}

static void make_sparse(const char *path, uint64_t size, uint64_t off, const char *data)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ok(fd >= 0, "create %s", path);
	ok(ftruncate(fd, (off_t)size) == 0, "size %s", path);
	ok(pwrite(fd, data, strlen(data), (off_t)off) == (ssize_t)strlen(data), "write %s", path);
	close(fd);
}

TEST(guid_is_v4_shaped_deterministic_and_label_bound)
{
	unsigned char seed[32] = {1, 2, 3}, a[16], b[16], c[16];
	format_guid(seed, "disk", a);
	format_guid(seed, "disk", b);
	format_guid(seed, "esp", c);
	ok(memcmp(a, b, 16) == 0, "same seed and label, same GUID");
	ok(memcmp(a, c, 16) != 0, "another label, another GUID");
	is_int(a[7] >> 4, 4, "version nibble (high nibble of on-disk byte 7)");
	is_int(a[8] >> 6, 2, "RFC 4122 variant");
	ok(format_id32(seed, "x") == format_id32(seed, "x"), "id32 deterministic");
	ok(format_id32(seed, "x") != format_id32(seed, "y"), "id32 label bound");
}

TEST(gpt_headers_entries_and_crcs)
{
	const uint64_t sectors = 8192;
	int fd = open("disk.img", O_RDWR | O_CREAT | O_TRUNC, 0644);
	ok(ftruncate(fd, (off_t)(sectors * 512)) == 0, "size");
	struct gpt_partition p = {.first_lba = 2048, .last_lba = 4095, .name = "EFI System"};
	memcpy(p.type, gpt_type_esp, 16);
	memset(p.guid, 0xab, 16);
	unsigned char dguid[16];
	memset(dguid, 0xcd, 16);
	struct kiln_error *err = NULL;
	is_int(gpt_write(fd, sectors, dguid, &p, 1, &err), 0, "gpt_write");
	close(fd);
	size_t len;
	cleanup_free unsigned char *d = slurp("disk.img", &len);
	if (!d || len != sectors * 512)
		return;
	is_int(d[510], 0x55, "protective MBR mark");
	is_int(d[446 + 4], 0xee, "protective partition type");
	is_int(le32(d + 446 + 8), 1, "protective partition starts at LBA 1");
	for (int which = 0; which < 2; which++) {
		const unsigned char *h = d + (which ? (sectors - 1) * 512 : 512);
		ok(memcmp(h, "EFI PART", 8) == 0, "header %d signature", which);
		unsigned char copy[92];
		memcpy(copy, h, 92);
		memset(copy + 16, 0, 4);
		is_int(le32(h + 16), (uint32_t)crc32(0, copy, 92), "header CRC");
		is_int(le64(h + 24), which ? sectors - 1 : 1, "MyLBA");
		is_int(le64(h + 32), which ? 1 : sectors - 1, "AlternateLBA");
		is_int(le64(h + 40), 34, "first usable LBA");
		is_int(le64(h + 48), sectors - 34, "last usable LBA");
		uint64_t elba = le64(h + 72);
		is_int(elba, which ? sectors - 33 : 2, "entries LBA");
		is_int(le32(h + 88), (uint32_t)crc32(0, d + elba * 512, 128 * 128), "entries CRC");
		ok(memcmp(d + elba * 512, gpt_type_esp, 16) == 0, "entry type is the ESP");
		is_int(le64(d + elba * 512 + 32), 2048, "entry first LBA");
		is_int(le16(d + elba * 512 + 56), 'E', "entry name UTF-16LE");
	}
	fd = open("disk.img", O_RDWR);
	p.last_lba = sectors - 10;
	ok(gpt_write(fd, sectors, dguid, &p, 1, &err) < 0,
	   "a partition over the backup GPT is refused");
	ok(err && strstr(err->msg, "outside the usable LBAs"), "with a reason");
	kiln_error_release(&err);
	close(fd);
}

TEST(mbr_entry_fields)
{
	int fd = open("mbr.img", O_RDWR | O_CREAT | O_TRUNC, 0644);
	unsigned char code[440];
	memset(code, 0x90, sizeof(code));
	struct mbr_partition p = {
	    .type = 0x0e, .active = true, .first_lba = 2048, .sectors = 16384};
	struct kiln_error *err = NULL;
	is_int(mbr_write(fd, code, sizeof(code), 0x12345678, &p, 1, &err), 0, "mbr_write");
	close(fd);
	size_t len;
	cleanup_free unsigned char *d = slurp("mbr.img", &len);
	if (!d)
		return;
	is_int(len, 512, "one sector");
	is_int(d[0], 0x90, "boot code");
	is_int(le32(d + 440), 0x12345678, "disk signature");
	is_int(d[446], 0x80, "active");
	is_int(d[450], 0x0e, "type");
	is_int(le32(d + 454), 2048, "first LBA");
	is_int(le32(d + 458), 16384, "sectors");
	is_int(d[447], 32, "CHS head of LBA 2048 (255/63 geometry)");
	is_int(d[448], 33, "CHS sector of LBA 2048");
}

/* A minimal PE32+ image: headers (0x400) and one 0x200-byte .text. */
static size_t tiny_pe(unsigned char *b, size_t cap)
{
	memset(b, 0, cap);
	b[0] = 'M';
	b[1] = 'Z';
	b[0x3c] = 0x80;
	memcpy(b + 0x80, "PE\0\0", 4);
	unsigned char *coff = b + 0x84;
	coff[0] = 0x64;
	coff[1] = 0x86;
	coff[2] = 1;	/* sections */
	coff[16] = 240; /* optional header size */
	unsigned char *opt = b + 0x98;
	opt[0] = 0x0b;
	opt[1] = 0x02;
	opt[33] = 0x10; /* SectionAlignment 0x1000 */
	opt[37] = 0x02; /* FileAlignment 0x200 */
	opt[57] = 0x20; /* SizeOfImage 0x2000 */
	opt[61] = 0x04; /* SizeOfHeaders 0x400 */
	opt[68] = 10;	/* EFI application */
	unsigned char *s = opt + 240;
	memcpy(s, ".text", 5);
	s[9] = 0x02;  /* VirtualSize 0x200 */
	s[13] = 0x10; /* VirtualAddress 0x1000 */
	s[17] = 0x02; /* SizeOfRawData 0x200 */
	s[21] = 0x04; /* PointerToRawData 0x400 */
	memset(b + 0x400, 0xc3, 0x200);
	return 0x600;
}

TEST(pe_sections_are_appended_aligned_with_checksum)
{
	unsigned char stub[0x600];
	size_t n = tiny_pe(stub, sizeof(stub));
	const char *big = "0123456789";
	struct pe_section_src secs[] = {
	    {.name = ".osrel", .data = "ID=kiln\n", .len = 8},
	    {.name = ".linux", .data = big, .len = 10},
	};
	struct kiln_error *err = NULL;
	is_int(pe_add_sections(stub, n, secs, 2, "out.efi", &err), 0, "pe_add_sections");
	if (err)
		printf("# %s\n", err->msg);
	size_t len;
	cleanup_free unsigned char *d = slurp("out.efi", &len);
	if (!d)
		return;
	is_int(le16(d + 0x86), 3, "three sections");
	const unsigned char *t = d + 0x98 + 240;
	ok(memcmp(t + 40, ".osrel", 6) == 0 && memcmp(t + 80, ".linux", 6) == 0, "names");
	is_int(le32(t + 40 + 12), 0x2000, ".osrel VMA after .text, page aligned");
	is_int(le32(t + 80 + 12), 0x3000, ".linux VMA next page");
	is_int(le32(t + 40 + 20), 0x600, ".osrel at the old end of file");
	is_int(le32(t + 80 + 20), 0x800, ".linux file-aligned");
	is_int(le32(t + 80 + 8), 10, ".linux virtual size");
	ok(memcmp(d + 0x800, big, 10) == 0, ".linux bytes");
	is_int(le32(d + 0x98 + 56), 0x4000, "SizeOfImage, a multiple of SectionAlignment");
	is_int(len, 0xa00, "file padded to the file alignment");
	/* Recompute the checksum. */
	uint32_t sum = 0;
	for (size_t i = 0; i < len; i += 2) {
		uint16_t w = (i >= 0x98 + 64 && i < 0x98 + 68) ? 0 : le16(d + i);
		sum += w;
		sum = (sum & 0xffff) + (sum >> 16);
	}
	is_int(le32(d + 0x98 + 64), sum + (uint32_t)len, "PE checksum");

	/* No room for more section headers: refused, not corrupted. */
	struct pe_section_src many[30];
	for (int i = 0; i < 30; i++)
		many[i] = (struct pe_section_src){.name = ".x", .data = "x", .len = 1};
	ok(pe_add_sections(stub, n, many, 30, "bad.efi", &err) < 0, "too many sections refused");
	ok(err && strstr(err->msg, "no room"), "with a reason");
	kiln_error_release(&err);
	ok(pe_add_sections((const unsigned char *)"nope", 4, secs, 1, "bad.efi", &err) < 0,
	   "not a PE image refused");
	kiln_error_release(&err);
}

TEST(qcow2_maps_only_written_clusters)
{
	make_sparse("raw.img", 8 << 20, 5 << 20, "hello qcow2");
	struct kiln_error *err = NULL;
	is_int(qcow2_write("raw.img", 32 << 20, "out.qcow2", &err), 0, "qcow2_write");
	size_t len;
	cleanup_free unsigned char *d = slurp("out.qcow2", &len);
	if (!d)
		return;
	ok(memcmp(d, "QFI\xfb", 4) == 0, "magic");
	is_int(be32(d + 4), 3, "version 3");
	is_int(be32(d + 20), 16, "64 KiB clusters");
	is_int(be64(d + 24), 32 << 20, "virtual size");
	is_int(be32(d + 96), 4, "16-bit refcounts");
	uint64_t l1 = be64(d + 40);
	uint64_t l2 = be64(d + l1) & 0x00fffffffffffe00ULL;
	ok(be64(d + l1) >> 63, "L1 entry COPIED");
	uint64_t idx = (5 << 20) / 65536;
	uint64_t data = be64(d + l2 + 8 * idx) & 0x00fffffffffffe00ULL;
	ok(data && memcmp(d + data, "hello qcow2", 11) == 0, "guest offset 5 MiB maps to the data");
	is_int(be64(d + l2), 0, "an all-zero cluster is unallocated");
	is_int(len, 6 * 65536, "header, refcount table+block, L1, one L2, one data cluster");
	/* Every cluster in the file has refcount 1. */
	uint64_t rb = be64(d + be64(d + 48));
	for (uint64_t c = 0; c < len / 65536; c++)
		is_int((d[rb + 2 * c] << 8) | d[rb + 2 * c + 1], 1, "refcount");
}

static uint32_t vhd_sum(const unsigned char *f)
{
	uint32_t s = 0;
	for (int i = 0; i < 512; i++)
		if (i < 64 || i >= 68)
			s += f[i];
	return ~s;
}

TEST(vhd_fixed_and_dynamic_footers)
{
	make_sparse("raw.img", 3 << 20, (3 << 20) - 100, "tail data");
	unsigned char seed[32] = {9};
	struct kiln_error *err = NULL;
	is_int(vhd_write_fixed("raw.img", 3 << 20, seed, 1700000000, "f.vhd", &err), 0, "fixed");
	size_t len;
	cleanup_free unsigned char *d = slurp("f.vhd", &len);
	if (!d)
		return;
	is_int(len, (3 << 20) + 512, "data then footer");
	const unsigned char *f = d + len - 512;
	ok(memcmp(f, "conectix", 8) == 0, "cookie");
	is_int(be32(f + 60), 2, "fixed disk type");
	is_int(be64(f + 48), 3 << 20, "current size");
	is_int(be32(f + 64), vhd_sum(f), "footer checksum");
	is_int(be32(f + 24), 1700000000 - 946684800, "timestamp from the epoch, VHD's 2000 origin");
	ok(memcmp(d + (3 << 20) - 100, "tail data", 9) == 0, "data in place");

	is_int(vhd_write_dynamic("raw.img", 8 << 20, seed, 1700000000, "d.vhd", &err), 0,
	       "dynamic");
	cleanup_free unsigned char *y = slurp("d.vhd", &len);
	if (!y)
		return;
	ok(memcmp(y, "conectix", 8) == 0 && memcmp(y + len - 512, y, 512) == 0,
	   "footer copy at the start equals the footer");
	is_int(be32(y + 60), 3, "dynamic disk type");
	ok(memcmp(y + 512, "cxsparse", 8) == 0, "dynamic header");
	is_int(be32(y + 512 + 28), 4, "4 BAT entries of 2 MiB for 8 MiB");
	const unsigned char *bat = y + 1536;
	is_int(be32(bat), 0xffffffffU, "block 0 (zeros) unallocated");
	ok(be32(bat + 4) != 0xffffffffU, "block 1 (the tail data) allocated");
	uint64_t blk = (uint64_t)be32(bat + 4) * 512 + 512;
	ok(memcmp(y + blk + (1 << 20) - 100, "tail data", 9) == 0, "block data after its bitmap");
	is_int(len, 1536 + 512 + 512 + (2 << 20) + 512, "only one block stored");
}

TEST(vmdk_stream_header_footer_and_end_marker)
{
	make_sparse("raw.img", 4 << 20, 1 << 20, "vmdk grain");
	unsigned char seed[32] = {7};
	struct kiln_error *err = NULL;
	is_int(vmdk_write("raw.img", 64 << 20, seed, "out.vmdk", &err), 0, "vmdk_write");
	size_t len;
	cleanup_free unsigned char *d = slurp("out.vmdk", &len);
	if (!d)
		return;
	is_int(le32(d), 0x564d444b, "KDMV");
	is_int(le64(d + 12), (64 << 20) / 512, "capacity in sectors");
	is_int(le64(d + 56), UINT64_MAX, "header: GD at end");
	ok(strstr((const char *)d + 512, "createType=\"streamOptimized\"") != NULL, "descriptor");
	ok(strstr((const char *)d + 512, "\"out.vmdk\"") != NULL, "extent names the file");
	is_int(len % 512, 0, "sector multiple");
	unsigned char zero[512] = {0};
	ok(memcmp(d + len - 512, zero, 512) == 0, "end-of-stream marker");
	const unsigned char *footer = d + len - 1024;
	is_int(le32(footer), 0x564d444b, "footer is a header");
	uint64_t gd = le64(footer + 56);
	ok(gd > 128 && gd * 512 < len, "footer points at the grain directory");
	is_int(le32(d + (gd - 1) * 512 + 12), 2, "grain directory marker before it");
	/* First grain: marker at sector 128 with LBA of 1 MiB, zlib data. */
	is_int(le64(d + 128 * 512), (1 << 20) / 512, "grain LBA");
	unsigned char grain[65536];
	uLongf glen = sizeof(grain);
	is_int(uncompress(grain, &glen, d + 128 * 512 + 12, le32(d + 128 * 512 + 8)), Z_OK,
	       "grain inflates");
	ok(glen == 65536 && memcmp(grain, "vmdk grain", 10) == 0, "grain bytes");
}

TEST(tool_run_reports_status_and_stderr)
{
	struct kiln_error *err = NULL;
	const char *good[] = {"sh", "-c", "test \"$SOURCE_DATE_EPOCH\" = 42 && test \"$TZ\" = UTC",
			      NULL};
	is_int(tool_run(good, 42, NULL, &err), 0, "environment fixed");
	const char *bad[] = {"sh", "-c", "echo boom >&2; exit 3", NULL};
	ok(tool_run(bad, 0, NULL, &err) < 0, "failure reported");
	ok(err && strstr(err->msg, "status 3") && strstr(err->msg, "boom"), "status and stderr");
	kiln_error_release(&err);
	char *out = NULL;
	const char *echo[] = {"echo", "hi", NULL};
	is_int(tool_run(echo, 0, &out, &err), 0, "stdout captured");
	is_str(out, "hi\n", "stdout");
	free(out);
	const char *missing[] = {"kiln-no-such-tool", NULL};
	ok(tool_run(missing, 0, NULL, &err) < 0, "missing tool");
	kiln_error_release(&err);
}

TEST(fat_sizes_are_whole_mebibytes_with_room)
{
	for (uint64_t p = 0; p < (600ULL << 20); p += 37ULL << 20) {
		uint64_t s = fat_size_for(p);
		ok(s % (1 << 20) == 0 && s >= p + (1 << 20) && s >= (8 << 20), "size for %llu",
		   (unsigned long long)p);
	}
}
