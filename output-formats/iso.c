/* ISO images with xorriso (-as mkisofs), the root staying in RAM (no
 * root=, no CD-ROM driver needed):
 *   iso-bios        isolinux (El Torito no-emulation) + isohybrid MBR, so the
 *                   same file boots as a CD and as a disk;
 *   iso-efi         one hybrid ISO: the BIOS boot of iso-bios plus an El
 *                   Torito EFI image (FAT, mkfs.fat + mtools) whose
 *                   EFI/BOOT/BOOTX64.EFI is a UKI, also exposed as a GPT
 *                   partition for UEFI disk boot;
 *   iso-efi-initrd  the same layout under LinuxKit's name for the variant
 *                   with /kernel and /initrd.img as plain files (every kiln
 *                   ISO has them: isolinux boots from them).
 * xorriso honours SOURCE_DATE_EPOCH (volume dates, its GPT GUIDs); every
 * file date is set to the epoch (--set_all_file_dates), so kernel, initrd
 * and the isolinux files are grafted from where they are (-graft-points)
 * and only the generated files are staged. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"
#include "writer.h"

#define ISOLINUX_BIN "/usr/lib/ISOLINUX/isolinux.bin"
#define ISOHDPFX_BIN "/usr/lib/ISOLINUX/isohdpfx.bin"
#define LDLINUX_C32  "/usr/lib/syslinux/modules/bios/ldlinux.c32"

enum iso_kind { ISO_BIOS, ISO_EFI, ISO_EFI_INITRD };

/* A -graft-points pathspec "DEST=SRC", '=' and '\\' in SRC escaped. */
static char *graft(const char *dest, const char *src)
{
	size_t len = strlen(dest) + 2 * strlen(src) + 2;
	char *g = xmalloc(len), *p = stpcpy(stpcpy(g, dest), "=");
	for (; *src; src++) {
		if (*src == '=' || *src == '\\')
			*p++ = '\\';
		*p++ = *src;
	}
	*p = '\0';
	return g;
}

static int stage_text(const char *text, const char *dir, const char *name, int64_t epoch,
		      struct kiln_error **err)
{
	cleanup_free char *dst = path_join(dir, name);
	if (write_file_atomic(dst, text, strlen(text), 0644, err) < 0 ||
	    format_set_time(dst, epoch, err) < 0)
		return -1;
	return 0;
}

static int iso_build(const struct format_ctx *ctx, enum iso_kind kind, const char *out,
		     struct kiln_error **err)
{
	static const char *const salts[] = {"iso-bios", "iso-efi", "iso-efi-initrd"};
	unsigned char seed[32];
	if (format_boot_seed(ctx, salts[kind], seed, err) < 0)
		return -1;
	cleanup_free char *stage = xasprintf("%s/%s-stage", ctx->work_dir, salts[kind]);
	cleanup_free char *isodir = path_join(stage, "isolinux");
	cleanup_free char *efidir = path_join(stage, "EFI");
	cleanup_free char *uki = xasprintf("%s/%s-BOOTX64.EFI", ctx->work_dir, salts[kind]);
	cleanup_free char *g_kernel = graft("/kernel", ctx->kernel_path);
	cleanup_free char *g_initrd = graft("/initrd.img", ctx->initrd_path);
	cleanup_free char *dates = xasprintf("=%lld", (long long)ctx->epoch);
	cleanup_free char *cfg = xasprintf("DEFAULT linux\nPROMPT 0\nTIMEOUT 0\n"
					   "LABEL linux\n  KERNEL /kernel\n  INITRD /initrd.img\n"
					   "  APPEND %s\n",
					   ctx->cmdline ? ctx->cmdline : "");
	char volid[33];
	snprintf(volid, sizeof(volid), "KILN_%02X%02X%02X%02X", seed[0], seed[1], seed[2], seed[3]);
	int r = -1;
	if (rm_rf(stage, err) < 0 || mkdir_p(isodir, 0755, err) < 0)
		goto out;
	if (stage_text(ctx->cmdline ? ctx->cmdline : "", stage, "cmdline", ctx->epoch, err) < 0 ||
	    stage_text(cfg, isodir, "isolinux.cfg", ctx->epoch, err) < 0)
		goto out;
	if (kind != ISO_BIOS) {
		uint64_t usize;
		cleanup_free char *efiimg = path_join(efidir, "efiboot.img");
		if (mkdir_p(efidir, 0755, err) < 0 || uki_build(ctx, uki, err) < 0 ||
		    format_file_size(uki, &usize, err) < 0)
			goto out;
		struct fat_file files[] = {{uki, "EFI/BOOT/BOOTX64.EFI"}};
		if (fat_build(efiimg, fat_size_for(usize), format_id32(seed, "fat-volume-id"),
			      "KILN_EFI", 0, files, 1, ctx->epoch, err) < 0 ||
		    format_set_time(efiimg, ctx->epoch, err) < 0)
			goto out;
		unlink(uki);
	}
	if (format_set_time(isodir, ctx->epoch, err) < 0 ||
	    (kind != ISO_BIOS && format_set_time(efidir, ctx->epoch, err) < 0) ||
	    format_set_time(stage, ctx->epoch, err) < 0)
		goto out;

	const char *argv[48];
	size_t n = 0;
	argv[n++] = "xorriso";
	argv[n++] = "-as";
	argv[n++] = "mkisofs";
	argv[n++] = "-quiet";
	argv[n++] = "-o";
	argv[n++] = out;
	argv[n++] = "-V";
	argv[n++] = volid;
	argv[n++] = "-R";
	argv[n++] = "-J";
	argv[n++] = "-joliet-long";
	argv[n++] = "-isohybrid-mbr";
	argv[n++] = ISOHDPFX_BIN;
	argv[n++] = "-b";
	argv[n++] = "isolinux/isolinux.bin";
	argv[n++] = "-c";
	argv[n++] = "isolinux/boot.cat";
	argv[n++] = "-no-emul-boot";
	argv[n++] = "-boot-load-size";
	argv[n++] = "4";
	argv[n++] = "-boot-info-table";
	if (kind != ISO_BIOS) {
		argv[n++] = "-eltorito-alt-boot";
		argv[n++] = "-e";
		argv[n++] = "EFI/efiboot.img";
		argv[n++] = "-no-emul-boot";
		argv[n++] = "-isohybrid-gpt-basdat";
	}
	/* Kernel, initrd and the isolinux files go in from where they are
	 * (pathspecs, g_*), not copied into the stage; xorriso would take
	 * their dates from disk, hence --set_all_file_dates. */
	argv[n++] = "--set_all_file_dates";
	argv[n++] = dates;
	argv[n++] = "-graft-points";
	argv[n++] = g_kernel;
	argv[n++] = g_initrd;
	argv[n++] = "/isolinux/isolinux.bin=" ISOLINUX_BIN;
	argv[n++] = "/isolinux/ldlinux.c32=" LDLINUX_C32;
	argv[n++] = stage;
	argv[n] = NULL;
	if (tool_run(argv, ctx->epoch, NULL, err) < 0)
		goto out;
	r = 0;
out:
	unlink(uki);
	rm_rf(stage, NULL);
	return r < 0 ? kiln_error_wrap(err, "%s", salts[kind]) : 0;
}

static int iso_publish(const struct format_ctx *ctx, enum iso_kind kind, const char *suffix,
		       struct kiln_error **err)
{
	cleanup_free char *final = writer_output_path(ctx, suffix);
	cleanup_free char *tmp = format_temp_path(final);
	unlink(tmp);
	if (iso_build(ctx, kind, tmp, err) < 0 || format_publish(tmp, final, err) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

int format_write_iso_bios(const struct format_ctx *ctx, struct kiln_error **err)
{
	return iso_publish(ctx, ISO_BIOS, ".iso", err);
}

int format_write_iso_efi(const struct format_ctx *ctx, struct kiln_error **err)
{
	return iso_publish(ctx, ISO_EFI, "-efi.iso", err);
}

int format_write_iso_efi_initrd(const struct format_ctx *ctx, struct kiln_error **err)
{
	return iso_publish(ctx, ISO_EFI_INITRD, "-efi-initrd.iso", err);
}

const struct output_format format_iso_bios = {
    .name = "iso-bios",
    .files = "NAME.iso",
    .needs_kernel_initrd = true,
    .write = format_write_iso_bios,
};

const struct output_format format_iso_efi = {
    .name = "iso-efi",
    .files = "NAME-efi.iso",
    .needs_kernel_initrd = true,
    .write = format_write_iso_efi,
};

const struct output_format format_iso_efi_initrd = {
    .name = "iso-efi-initrd",
    .files = "NAME-efi-initrd.iso",
    .needs_kernel_initrd = true,
    .write = format_write_iso_efi_initrd,
};
