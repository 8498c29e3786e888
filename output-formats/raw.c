/* Raw disk images.  raw-bios: an MBR (kiln's) with syslinux's mbr.bin boot
 * code and one active FAT partition at LBA 2048 holding kernel, initrd.img
 * and syslinux.cfg, syslinux installed into it.  raw-efi: a GPT (kiln's)
 * with one ESP at LBA 2048 whose EFI/BOOT/BOOTX64.EFI is a UKI.  Both are
 * sparse files; --size makes the disk that big, leaving the rest
 * unallocated for a data partition.  The root stays in RAM (no root=). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "writer.h"

#define PART_START_LBA 2048ULL
#define SYSLINUX_MBR   "/usr/lib/syslinux/mbr/mbr.bin"

static char *work_file(const struct format_ctx *ctx, const char *what)
{
	return xasprintf("%s/%s", ctx->work_dir ? ctx->work_dir : ".", what);
}

/* The disk size: what the partition needs (rounded to MiB, with room for a
 * backup GPT), or --size / MIN_SIZE when larger.  --size smaller than what
 * is needed is an error. */
static int disk_size(const struct format_ctx *ctx, uint64_t part_bytes, uint64_t min_size,
		     uint64_t *out, struct kiln_error **err)
{
	uint64_t need = round_up(PART_START_LBA * SECTOR + part_bytes + MIB, MIB);
	if (ctx->size) {
		if (ctx->size < need)
			return kiln_error_make(err, 0,
					       "--size %llu bytes is too small: the boot partition "
					       "needs a disk of %llu bytes",
					       (unsigned long long)ctx->size,
					       (unsigned long long)need);
		need = round_up(ctx->size, SECTOR);
	}
	if (min_size > need)
		need = round_up(min_size, SECTOR);
	*out = need;
	return 0;
}

static int syslinux_cfg(const struct format_ctx *ctx, const char *path, struct kiln_error **err)
{
	cleanup_free char *cfg = xasprintf("DEFAULT linux\nPROMPT 0\nTIMEOUT 0\n"
					   "LABEL linux\n  KERNEL /kernel\n  INITRD /initrd.img\n"
					   "  APPEND %s\n",
					   ctx->cmdline ? ctx->cmdline : "");
	return write_file_atomic(path, cfg, strlen(cfg), 0644, err);
}

/* syslinux rewrites a FAT32 boot sector but not its backup copy (at the
 * sector BPB_BkBootSec names): copy it, or fsck.fat reports a mismatch. */
static int fat32_sync_backup_boot(const char *img, struct kiln_error **err)
{
	cleanup_close int fd = open(img, O_RDWR | O_CLOEXEC);
	unsigned char boot[SECTOR];
	if (fd < 0 || pread(fd, boot, SECTOR, 0) != (ssize_t)SECTOR)
		return kiln_error_make(err, errno, "read `%s`", img);
	unsigned backup = boot[50] | boot[51] << 8;
	if (memcmp(boot + 82, "FAT32", 5) != 0 || backup == 0 || backup == 0xffff)
		return 0;
	if (pwrite(fd, boot, SECTOR, (off_t)backup * SECTOR) != (ssize_t)SECTOR)
		return kiln_error_make(err, errno, "write `%s`", img);
	return 0;
}

/* Creates OUT (truncating it) as a sparse file of SIZE bytes.  Returns the
 * fd (the caller closes it), -1 on error. */
static int create_sized(const char *out, uint64_t size, struct kiln_error **err)
{
	cleanup_close int fd = open(out, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);
	if (ftruncate(fd, (off_t)size) < 0)
		return kiln_error_make(err, errno, "size `%s`", out);
	return steal_fd(&fd);
}

int raw_bios_build(const struct format_ctx *ctx, const char *out, uint64_t min_size,
		   struct kiln_error **err)
{
	unsigned char seed[32];
	cleanup_free char *code = NULL;
	size_t code_len;
	if (format_boot_seed(ctx, "raw-bios", seed, err) < 0)
		return -1;
	uint64_t ksize, isize;
	if (format_file_size(ctx->kernel_path, &ksize, err) < 0 ||
	    format_file_size(ctx->initrd_path, &isize, err) < 0)
		return -1;
	cleanup_free char *cfg = work_file(ctx, "raw-bios-syslinux.cfg");
	cleanup_free char *fat = work_file(ctx, "raw-bios-fat.img");
	if (syslinux_cfg(ctx, cfg, err) < 0)
		return -1;
	uint64_t fat_bytes = fat_size_for(ksize + isize + MIB);
	struct fat_file files[] = {
	    {ctx->kernel_path, "kernel"},
	    {ctx->initrd_path, "initrd.img"},
	    {cfg, "syslinux.cfg"},
	};
	if (fat_build(fat, fat_bytes, format_id32(seed, "fat-volume-id"), "KILN_BOOT",
		      (uint32_t)PART_START_LBA, files, ARRAY_SIZE(files), ctx->epoch, err) < 0)
		goto fail;
	const char *sl[] = {"syslinux", "--install", fat, NULL};
	if (tool_run(sl, ctx->epoch, NULL, err) < 0) {
		kiln_error_wrap(err, "install syslinux");
		goto fail;
	}
	if (fat32_sync_backup_boot(fat, err) < 0)
		goto fail;
	uint64_t disk = 0;
	if (disk_size(ctx, fat_bytes, min_size, &disk, err) < 0)
		goto fail;
	code = read_file(SYSLINUX_MBR, 4096, &code_len, err);
	if (!code) {
		kiln_error_wrap(err, "syslinux MBR boot code");
		goto fail;
	}
	if (code_len > 440)
		code_len = 440;
	{
		cleanup_close int fd = create_sized(out, disk, err);
		if (fd < 0)
			goto fail;
		struct mbr_partition part = {
		    .type = fat_bytes < 512 * MIB ? 0x0e : 0x0c, /* FAT16/FAT32, LBA */
		    .active = true,
		    .first_lba = PART_START_LBA,
		    .sectors = fat_bytes / SECTOR,
		};
		if (mbr_write(fd, (const unsigned char *)code, code_len,
			      format_id32(seed, "mbr-signature"), &part, 1, err) < 0 ||
		    format_copy_sparse(fd, PART_START_LBA * SECTOR, fat, NULL, err) < 0)
			goto fail;
	}
	unlink(fat);
	unlink(cfg);
	return 0;
fail:
	unlink(fat);
	unlink(cfg);
	return kiln_error_wrap(err, "raw BIOS disk");
}

int raw_efi_build(const struct format_ctx *ctx, const char *out, uint64_t min_size,
		  struct kiln_error **err)
{
	unsigned char seed[32];
	if (format_boot_seed(ctx, "raw-efi", seed, err) < 0)
		return -1;
	cleanup_free char *uki = work_file(ctx, "raw-efi-BOOTX64.EFI");
	cleanup_free char *fat = work_file(ctx, "raw-efi-esp.img");
	uint64_t usize = 0, fat_bytes = 0, disk = 0;
	if (uki_build(ctx, uki, err) < 0 || format_file_size(uki, &usize, err) < 0)
		goto fail;
	fat_bytes = fat_size_for(usize);
	struct fat_file files[] = {{uki, "EFI/BOOT/BOOTX64.EFI"}};
	if (fat_build(fat, fat_bytes, format_id32(seed, "fat-volume-id"), "KILN_ESP",
		      (uint32_t)PART_START_LBA, files, ARRAY_SIZE(files), ctx->epoch, err) < 0)
		goto fail;
	if (disk_size(ctx, fat_bytes, min_size, &disk, err) < 0)
		goto fail;
	{
		cleanup_close int fd = create_sized(out, disk, err);
		if (fd < 0)
			goto fail;
		struct gpt_partition esp = {
		    .first_lba = PART_START_LBA,
		    .last_lba = PART_START_LBA + fat_bytes / SECTOR - 1,
		    .name = "EFI System",
		};
		memcpy(esp.type, gpt_type_esp, 16);
		format_guid(seed, "esp-partition-guid", esp.guid);
		unsigned char disk_guid[16];
		format_guid(seed, "disk-guid", disk_guid);
		if (gpt_write(fd, disk / SECTOR, disk_guid, &esp, 1, err) < 0 ||
		    format_copy_sparse(fd, PART_START_LBA * SECTOR, fat, NULL, err) < 0)
			goto fail;
	}
	unlink(fat);
	unlink(uki);
	return 0;
fail:
	unlink(fat);
	unlink(uki);
	return kiln_error_wrap(err, "raw EFI disk");
}

/* Builds a raw disk with BUILD into a temp name and publishes it as SUFFIX. */
static int publish_raw(const struct format_ctx *ctx, const char *suffix, uint64_t min_size,
		       int (*build)(const struct format_ctx *, const char *, uint64_t,
				    struct kiln_error **),
		       struct kiln_error **err)
{
	cleanup_free char *final = writer_output_path(ctx, suffix);
	cleanup_free char *tmp = format_temp_path(final);
	if (build(ctx, tmp, min_size, err) < 0 || format_publish(tmp, final, err) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int format_write_raw_bios(const struct format_ctx *ctx, struct kiln_error **err)
{
	return publish_raw(ctx, "-bios.img", 0, raw_bios_build, err);
}

int format_write_raw_efi(const struct format_ctx *ctx, struct kiln_error **err)
{
	return publish_raw(ctx, "-efi.img", 0, raw_efi_build, err);
}

/* aws: a raw BIOS disk of --size (LinuxKit's default 1 GiB), sparse. */
int format_write_aws(const struct format_ctx *ctx, struct kiln_error **err)
{
	return publish_raw(ctx, ".raw", ctx->size ? 0 : 1024 * MIB, raw_bios_build, err);
}

const struct output_format format_raw_bios = {
    .name = "raw-bios",
    .files = "NAME-bios.img",
    .needs_kernel_initrd = true,
    .write = format_write_raw_bios,
};

const struct output_format format_raw_efi = {
    .name = "raw-efi",
    .files = "NAME-efi.img",
    .needs_kernel_initrd = true,
    .write = format_write_raw_efi,
};

const struct output_format format_aws = {
    .name = "aws",
    .files = "NAME.raw",
    .needs_kernel_initrd = true,
    .write = format_write_aws,
};
