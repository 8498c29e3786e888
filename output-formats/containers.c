/* Disk container formats: a raw BIOS or EFI disk built in the work
 * directory, then converted by kiln's own writers (qcow2.c, vhd.c, vmdk.c)
 * or packed for GCP.  The virtual size is --size when given, else 1 GiB as
 * LinuxKit's defaults (sparse: the unused space costs nothing). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util.h"
#include "writer.h"

#define DEFAULT_VSIZE (1024 * MIB)

typedef int (*raw_builder)(const struct format_ctx *, const char *, uint64_t,
			   struct kiln_error **);
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
		case C_QCOW2: r = qcow2_write(raw, vsize, tmp, err); break;
		case C_VHD_FIXED: r = vhd_write_fixed(raw, vsize, seed, ctx->epoch, tmp, err); break;
		case C_VHD_DYNAMIC:
			r = vhd_write_dynamic(raw, vsize, seed, ctx->epoch, tmp, err);
			break;
		case C_VMDK: r = vmdk_write(raw, vsize, seed, tmp, err); break;
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

/* gcp: a BIOS disk of a whole number of GiB (Compute Engine's rule) as
 * disk.raw in a gzip'd GNU tar, every header field fixed. */
static int gcp_pack(const struct format_ctx *ctx, const char *raw, const char *out,
		    struct kiln_error **err)
{
	uint64_t size;
	if (format_file_size(raw, &size, err) < 0)
		return -1;
	__attribute__((cleanup(archive_freep))) struct archive *a = archive_write_new();
	if (archive_write_set_format_gnutar(a) != ARCHIVE_OK ||
	    archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK ||
	    archive_write_set_filter_option(a, "gzip", "compression-level", "1") != ARCHIVE_OK ||
	    archive_write_open_filename(a, out) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "write `%s`: %s", out, archive_error_string(a));
	__attribute__((cleanup(entry_freep))) struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "disk.raw");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)size);
	archive_entry_set_mtime(e, (time_t)ctx->epoch, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	if (archive_write_header(a, e) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "write `%s`: %s", out, archive_error_string(a));
	cleanup_close int fd = open(raw, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", raw);
	cleanup_free char *buf = xmalloc(1 << 20);
	ssize_t n;
	while ((n = read(fd, buf, 1 << 20)) > 0)
		if (archive_write_data(a, buf, (size_t)n) != n)
			return kiln_error_make(err, 0, "write `%s`: %s", out,
					       archive_error_string(a));
	if (n < 0)
		return kiln_error_make(err, errno, "read `%s`", raw);
	if (archive_write_close(a) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "write `%s`: %s", out, archive_error_string(a));
	return 0;
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
