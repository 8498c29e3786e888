/* Partition tables written by kiln itself: an MBR (BIOS disks) and a GPT
 * (UEFI disks: protective MBR, primary header and 128 entries at LBA 1..33,
 * backup entries and header at the end), with zlib's crc32.  UEFI spec 2.10
 * §5.2-5.3.  Also the positioned I/O the disk container writers (qcow2.c,
 * vhd.c, vmdk.c) share. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util.h"
#include "writer.h"

/* C12A7328-F81F-11D2-BA4B-00A0C93EC93B and 0FC63DAF-8483-4772-8E79-3D69D8477DE4
 * in on-disk order (the first three fields little-endian). */
const unsigned char gpt_type_esp[16] = {0x28, 0x73, 0x2a, 0xc1, 0x1f, 0xf8, 0xd2, 0x11,
					0xba, 0x4b, 0x00, 0xa0, 0xc9, 0x3e, 0xc9, 0x3b};
const unsigned char gpt_type_linux[16] = {0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47,
					  0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4};

#define GPT_ENTRIES	  128
#define GPT_ENTRY_SIZE	  128
#define GPT_ENTRY_SECTORS (GPT_ENTRIES * GPT_ENTRY_SIZE / SECTOR)

int disk_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *what,
		    struct kiln_error **err)
{
	const unsigned char *p = buf;
	while (len) {
		ssize_t w = pwrite(fd, p, len, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return kiln_error_make(err, errno, "%s", what);
		}
		p += w;
		off += (uint64_t)w;
		len -= (size_t)w;
	}
	return 0;
}

int disk_open_raw(const char *raw, uint64_t *size, struct kiln_error **err)
{
	cleanup_close int fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", raw);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", raw);
	*size = (uint64_t)st.st_size;
	return steal_fd(&fd);
}

int disk_read_block(int fd, const char *path, unsigned char *buf, size_t len, uint64_t off,
		    bool *zero, struct kiln_error **err)
{
	memset(buf, 0, len);
	ssize_t r = pread(fd, buf, len, (off_t)off);
	if (r < 0)
		return kiln_error_make(err, errno, "read `%s`", path);
	bool z = true;
	for (size_t i = 0; i < len && z; i += 8) {
		uint64_t w;
		memcpy(&w, buf + i, 8);
		z = w == 0;
	}
	*zero = z;
	return 0;
}

static int table_write(int fd, const void *buf, size_t len, uint64_t off, struct kiln_error **err)
{
	return disk_pwrite_all(fd, buf, len, off, "write partition table", err);
}

/* CHS for an LBA as BIOSes expect in MBR entries (255 heads, 63 sectors;
 * 1023/254/63 once past the addressable range). */
static void lba_to_chs(uint64_t lba, unsigned char chs[3])
{
	uint64_t c = lba / (255 * 63), h = (lba / 63) % 255, s = lba % 63 + 1;
	if (c > 1023) {
		c = 1023;
		h = 254;
		s = 63;
	}
	chs[0] = (unsigned char)h;
	chs[1] = (unsigned char)(s | ((c >> 2) & 0xc0));
	chs[2] = (unsigned char)c;
}

static void mbr_entry(unsigned char *e, const struct mbr_partition *p)
{
	uint64_t last = p->first_lba + p->sectors - 1;
	e[0] = p->active ? 0x80 : 0x00;
	lba_to_chs(p->first_lba, e + 1);
	e[4] = p->type;
	lba_to_chs(last, e + 5);
	put_le32(e + 8, p->first_lba > 0xffffffffULL ? 0xffffffffU : (uint32_t)p->first_lba);
	put_le32(e + 12, p->sectors > 0xffffffffULL ? 0xffffffffU : (uint32_t)p->sectors);
}

int mbr_write(int fd, const unsigned char *boot_code, size_t code_len, uint32_t signature,
	      const struct mbr_partition *parts, size_t nparts, struct kiln_error **err)
{
	unsigned char s[SECTOR] = {0};
	if (code_len > 440 || nparts > 4)
		return kiln_error_make(err, EINVAL, "MBR: boot code or partition list too long");
	if (boot_code)
		memcpy(s, boot_code, code_len);
	put_le32(s + 440, signature);
	for (size_t i = 0; i < nparts; i++)
		mbr_entry(s + 446 + 16 * i, &parts[i]);
	s[510] = 0x55;
	s[511] = 0xaa;
	return table_write(fd, s, sizeof(s), 0, err);
}

static void gpt_header(unsigned char *h, uint64_t self, uint64_t alt, uint64_t first_usable,
		       uint64_t last_usable, const unsigned char disk_guid[16],
		       uint64_t entries_lba, uint32_t entries_crc)
{
	memset(h, 0, SECTOR);
	memcpy(h, "EFI PART", 8);
	put_le32(h + 8, 0x00010000);
	put_le32(h + 12, 92);
	put_le64(h + 24, self);
	put_le64(h + 32, alt);
	put_le64(h + 40, first_usable);
	put_le64(h + 48, last_usable);
	memcpy(h + 56, disk_guid, 16);
	put_le64(h + 72, entries_lba);
	put_le32(h + 80, GPT_ENTRIES);
	put_le32(h + 84, GPT_ENTRY_SIZE);
	put_le32(h + 88, entries_crc);
	put_le32(h + 16, (uint32_t)crc32(0, h, 92));
}

int gpt_write(int fd, uint64_t disk_sectors, const unsigned char disk_guid[16],
	      const struct gpt_partition *parts, size_t nparts, struct kiln_error **err)
{
	uint64_t first_usable = 2 + GPT_ENTRY_SECTORS;
	uint64_t last_usable = disk_sectors - 2 - GPT_ENTRY_SECTORS;
	if (disk_sectors < 2 * (2 + GPT_ENTRY_SECTORS) || nparts > GPT_ENTRIES)
		return kiln_error_make(err, EINVAL, "GPT: disk too small or too many partitions");
	for (size_t i = 0; i < nparts; i++)
		if (parts[i].first_lba < first_usable || parts[i].last_lba > last_usable ||
		    parts[i].first_lba > parts[i].last_lba)
			return kiln_error_make(err, EINVAL,
					       "GPT: partition %zu (LBA %llu-%llu) outside the "
					       "usable LBAs %llu-%llu",
					       i + 1, (unsigned long long)parts[i].first_lba,
					       (unsigned long long)parts[i].last_lba,
					       (unsigned long long)first_usable,
					       (unsigned long long)last_usable);

	/* Protective MBR: one 0xEE partition over the whole disk. */
	uint64_t pm_sectors = disk_sectors - 1;
	struct mbr_partition pmbr = {.type = 0xee,
				     .first_lba = 1,
				     .sectors =
					 pm_sectors > 0xffffffffULL ? 0xffffffffULL : pm_sectors};
	if (mbr_write(fd, NULL, 0, 0, &pmbr, 1, err) < 0)
		return -1;

	unsigned char entries[GPT_ENTRIES * GPT_ENTRY_SIZE] = {0};
	for (size_t i = 0; i < nparts; i++) {
		unsigned char *e = entries + i * GPT_ENTRY_SIZE;
		memcpy(e, parts[i].type, 16);
		memcpy(e + 16, parts[i].guid, 16);
		put_le64(e + 32, parts[i].first_lba);
		put_le64(e + 40, parts[i].last_lba);
		put_le64(e + 48, parts[i].attributes);
		for (size_t c = 0; parts[i].name && parts[i].name[c] && c < 36; c++)
			put_le16(e + 56 + 2 * c, (unsigned char)parts[i].name[c]);
	}
	uint32_t ecrc = (uint32_t)crc32(0, entries, sizeof(entries));
	unsigned char hdr[SECTOR];
	uint64_t last = disk_sectors - 1;
	gpt_header(hdr, 1, last, first_usable, last_usable, disk_guid, 2, ecrc);
	if (table_write(fd, hdr, SECTOR, SECTOR, err) < 0 ||
	    table_write(fd, entries, sizeof(entries), 2 * SECTOR, err) < 0)
		return -1;
	uint64_t backup_entries = last - GPT_ENTRY_SECTORS;
	gpt_header(hdr, last, 1, first_usable, last_usable, disk_guid, backup_entries, ecrc);
	if (table_write(fd, entries, sizeof(entries), backup_entries * SECTOR, err) < 0 ||
	    table_write(fd, hdr, SECTOR, last * SECTOR, err) < 0)
		return -1;
	return 0;
}
