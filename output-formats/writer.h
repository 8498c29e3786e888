/* Helpers shared by the output-format writers (not a public interface: the
 * build loop only sees format.h).  Tools run from argument vectors, never a
 * shell string; every identifier a writer invents comes from a content seed
 * and the epoch, never from the clock or a random source. */
#ifndef KILN_WRITER_H
#define KILN_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "format.h"

#define MIB    (1024ULL * 1024ULL)
#define SECTOR 512ULL

/* --- tool.c ------------------------------------------------------------ */

/* Runs ARGV (NULL-terminated; argv[0] looked up in PATH) with stdin from
 * /dev/null, in an environment with LC_ALL=C, TZ=UTC, SOURCE_DATE_EPOCH=EPOCH
 * and MTOOLS_SKIP_CHECK=1.  Its stdout is discarded unless OUT is non-NULL,
 * in which case *OUT gets a new NUL-terminated heap string (caller frees).
 * On failure the error names the tool and carries the tail of its stderr. */
int tool_run(const char *const argv[], int64_t epoch, char **out, struct kiln_error **err);

/* The same, asynchronous: the tool reads STDIN_FD (-1: /dev/null) and
 * writes its stdout to PROC->outfd (set by the caller; -1: discarded). */
struct tool_proc {
	pid_t pid;
	int outfd;
	int errfd;
	const char *name;
};
int tool_start(const char *const argv[], int64_t epoch, int stdin_fd, struct tool_proc *proc,
	       struct kiln_error **err);
/* Waits for PROC; an error when it failed (with the tail of its stderr). */
int tool_wait(struct tool_proc *proc, struct kiln_error **err);

/* --- common.c ---------------------------------------------------------- */

/* "DIR/NAMESUFFIX" for CTX.  Caller frees. */
char *writer_output_path(const struct format_ctx *ctx, const char *suffix);

/* A temporary name next to FINAL ("FINAL.tmp-kiln").  Caller frees. */
char *format_temp_path(const char *final);

/* fsyncs TMP and renames it over FINAL (atomic publication). */
int format_publish(const char *tmp, const char *final, struct kiln_error **err);

/* The 32-byte content seed of a bootable output: sha256 over the kernel, the
 * initrd, the command line, the epoch and SALT (the format name). */
int format_boot_seed(const struct format_ctx *ctx, const char *salt, unsigned char seed[32],
		     struct kiln_error **err);

/* The same over one file (the root filesystem tar). */
int format_file_seed(const char *path, const char *salt, int64_t epoch, unsigned char seed[32],
		     struct kiln_error **err);

/* Derives 16 bytes from SEED and LABEL, shaped as an RFC 4122 version 4
 * GUID in its on-disk (mixed-endian GPT) byte order. */
void format_guid(const unsigned char seed[32], const char *label, unsigned char guid[16]);

/* A 32-bit value derived from SEED and LABEL (FAT volume ids, MBR ids). */
uint32_t format_id32(const unsigned char seed[32], const char *label);

/* Copies all of SRC_PATH into DST_FD at DST_OFF, leaving holes where SRC has
 * holes or all-zero 64 KiB blocks (the result stays sparse).  *COPIED gets
 * the source size when non-NULL. */
int format_copy_sparse(int dst_fd, uint64_t dst_off, const char *src_path, uint64_t *copied,
		       struct kiln_error **err);

/* Size of PATH in bytes. */
int format_file_size(const char *path, uint64_t *size, struct kiln_error **err);

/* Sets PATH's mtime and atime to EPOCH without following a symlink. */
int format_set_time(const char *path, int64_t epoch, struct kiln_error **err);

/* Copies a whole file (mode 0644). */
int format_copy_file(const char *src, const char *dst, struct kiln_error **err);

static inline uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) / a * a;
}

/* Fixed-width integers stored in little- or big-endian byte order. */
static inline void put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline void put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static inline void put_be32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (24 - 8 * i));
}

static inline void put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* --- fat.c ------------------------------------------------------------- */

struct fat_file {
	const char *src; /* host path */
	const char *dst; /* path in the FAT, e.g. "EFI/BOOT/BOOTX64.EFI" */
};

/* The FAT size (bytes, a multiple of 1 MiB) that holds PAYLOAD bytes of
 * files with room for their directories and the FAT itself. */
uint64_t fat_size_for(uint64_t payload);

/* Creates IMG, a FAT filesystem of SIZE bytes (mkfs.fat; FAT16 below
 * 512 MiB, else FAT32) with volume id VOLID, label LABEL and HIDDEN sectors
 * before it (its partition offset), and copies FILES in with mtools; every
 * timestamp is EPOCH.  No mount, no loop device. */
int fat_build(const char *img, uint64_t size, uint32_t volid, const char *label, uint32_t hidden,
	      const struct fat_file *files, size_t nfiles, int64_t epoch, struct kiln_error **err);

/* --- disk.c ------------------------------------------------------------ */

struct mbr_partition {
	uint8_t type;
	bool active;
	uint64_t first_lba, sectors;
};

/* Writes sector 0 of FD: BOOT_CODE (up to 440 bytes, may be NULL), the disk
 * signature, up to 4 partitions and the 0x55AA mark. */
int mbr_write(int fd, const unsigned char *boot_code, size_t code_len, uint32_t signature,
	      const struct mbr_partition *parts, size_t nparts, struct kiln_error **err);

struct gpt_partition {
	unsigned char type[16]; /* on-disk byte order */
	unsigned char guid[16];
	uint64_t first_lba, last_lba, attributes;
	const char *name; /* ASCII, up to 36 characters */
};

extern const unsigned char gpt_type_esp[16];
extern const unsigned char gpt_type_linux[16];

/* Writes a protective MBR, the primary GPT header and entries (LBA 1..33)
 * and the backup entries and header at the end of a disk of DISK_SECTORS. */
int gpt_write(int fd, uint64_t disk_sectors, const unsigned char disk_guid[16],
	      const struct gpt_partition *parts, size_t nparts, struct kiln_error **err);

/* Writes all LEN bytes of BUF to FD at OFF, retrying short writes and
 * EINTR; a failure reads "WHAT: <strerror>". */
int disk_pwrite_all(int fd, const void *buf, size_t len, uint64_t off, const char *what,
		    struct kiln_error **err);

/* Opens the raw disk image RAW read-only and puts its size in *SIZE.
 * Returns the fd (the caller closes it), -1 on error. */
int disk_open_raw(const char *raw, uint64_t *size, struct kiln_error **err);

/* Reads LEN bytes (a multiple of 8) at OFF of FD, the image at PATH, into
 * BUF, zero-filled where the file ends before them; *ZERO tells whether
 * they are all zero. */
int disk_read_block(int fd, const char *path, unsigned char *buf, size_t len, uint64_t off,
		    bool *zero, struct kiln_error **err);

/* --- uki.c ------------------------------------------------------------- */

/* Writes OUT: systemd's EFI stub with .osrel, .cmdline, .initrd and .linux
 * sections from CTX (kernel, initrd, cmdline). */
int uki_build(const struct format_ctx *ctx, const char *out, struct kiln_error **err);

/* Appends sections to the PE image STUB (in memory) and writes the result
 * to OUT.  Exposed for the unit tests. */
struct pe_section_src {
	const char *name; /* at most 8 characters */
	const char *path; /* the contents: this file, or when NULL: */
	const void *data; /* these LEN bytes */
	size_t len;
};
int pe_add_sections(const unsigned char *stub, size_t stub_len, const struct pe_section_src *secs,
		    size_t nsecs, const char *out, struct kiln_error **err);

/* --- raw.c ------------------------------------------------------------- */

/* Writes a BIOS-bootable MBR disk image (syslinux on one FAT partition) to
 * OUT; its size is CTX->size when given (an error when too small), else
 * just what the partition needs. */
int raw_bios_build(const struct format_ctx *ctx, const char *out, uint64_t min_size,
		   struct kiln_error **err);

/* Writes a UEFI-bootable GPT disk image (ESP with EFI/BOOT/BOOTX64.EFI = a
 * UKI) to OUT, sized likewise. */
int raw_efi_build(const struct format_ctx *ctx, const char *out, uint64_t min_size,
		  struct kiln_error **err);

/* --- containers: qcow2.c vhd.c vmdk.c ----------------------------------- */

/* Each converts the raw disk image RAW (sparse or not) to OUT with a virtual
 * size of VSIZE bytes (>= RAW's size).  SEED gives the identifiers. */
int qcow2_write(const char *raw, uint64_t vsize, const char *out, struct kiln_error **err);
int vhd_write_fixed(const char *raw, uint64_t vsize, const unsigned char seed[32], int64_t epoch,
		    const char *out, struct kiln_error **err);
int vhd_write_dynamic(const char *raw, uint64_t vsize, const unsigned char seed[32], int64_t epoch,
		      const char *out, struct kiln_error **err);
int vmdk_write(const char *raw, uint64_t vsize, const unsigned char seed[32], const char *out,
	       struct kiln_error **err);

/* --- the format rows' writers ----------------------------------------- */

int format_write_uki(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_iso_bios(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_iso_efi(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_iso_efi_initrd(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_raw_bios(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_raw_efi(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_aws(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_gcp(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_qcow2_bios(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_qcow2_efi(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_vhd(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_dynamic_vhd(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_vmdk(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_kernel_squashfs(const struct format_ctx *ctx, struct kiln_error **err);
int format_write_kernel_erofs(const struct format_ctx *ctx, struct kiln_error **err);

/* Every row this family adds, NULL-terminated (formats.c lists them). */
extern const struct output_format format_uki, format_iso_bios, format_iso_efi,
    format_iso_efi_initrd, format_raw_bios, format_raw_efi, format_aws, format_gcp,
    format_qcow2_bios, format_qcow2_efi, format_vhd, format_dynamic_vhd, format_vmdk,
    format_kernel_squashfs, format_kernel_erofs;

#endif
