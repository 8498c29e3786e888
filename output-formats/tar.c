/* Streamable formats: `tar` (the intermediate root filesystem tar itself)
 * and `docker` (the same plus a Dockerfile entry), and `tar-kernel-initrd`
 * (a small tar of kernel, initrd.img, cmdline, ucode.cpio). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outputs.h"
#include "tarw.h"
#include "util.h"

/* Opens the destination of a streamable format: stdout for "-o -", a temp
 * file beside -o FILE or DIR/NAME+SUFFIX otherwise (*TMP and *DST set). */
static int open_stream_out(const struct format_ctx *ctx, const char *suffix, char **tmp, char **dst,
			   struct kiln_error **err)
{
	*tmp = *dst = NULL;
	if (ctx->output && strcmp(ctx->output, "-") == 0)
		return dup(STDOUT_FILENO);
	*dst = ctx->output ? xstrdup(ctx->output) : format_output_path(ctx, suffix);
	return format_create_temp(*dst, tmp, err);
}

static int close_stream_out(int fd, char *tmp, char *dst, int rc, struct kiln_error **err)
{
	if (!tmp) {
		close(fd);
		return rc;
	}
	if (rc < 0) {
		unlink(tmp);
		close(fd);
		return rc;
	}
	rc = format_commit_file(fd, tmp, dst, err);
	close(fd);
	return rc;
}

static int tar_write(const struct format_ctx *ctx, struct kiln_error **err)
{
	cleanup_free char *tmp = NULL, *dst = NULL;
	int fd = open_stream_out(ctx, ".tar", &tmp, &dst, err);
	if (fd < 0)
		return -1;
	cleanup_close int in = open(ctx->tar_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;
	if (in < 0 || fstat(in, &st) < 0)
		rc = kiln_error_make(err, errno, "open `%s`", ctx->tar_path);
	struct tarw *w = tarw_new(fd);
	if (rc == 0)
		rc = tarw_splice(w, in, (uint64_t)st.st_size, err);
	tarw_free(w);
	return close_stream_out(fd, tmp, dst, rc, err);
}

/* LinuxKit's Dockerfile names /bin/rc.init, which only its init image has;
 * /sbin/init is in kiln's init package (kiln's PID 1) and in LinuxKit's
 * (busybox init, whose sysinit is rc.init). */
static const char dockerfile[] = "FROM scratch\n"
				 "WORKDIR /\n"
				 "ENTRYPOINT [\"/sbin/init\"]\n"
				 "COPY . ./\n";

static int docker_write(const struct format_ctx *ctx, struct kiln_error **err)
{
	cleanup_free char *tmp = NULL, *dst = NULL;
	int fd = open_stream_out(ctx, ".docker", &tmp, &dst, err);
	if (fd < 0)
		return -1;
	cleanup_close int in = open(ctx->tar_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;
	if (in < 0 || fstat(in, &st) < 0 || st.st_size < 1024)
		rc = kiln_error_make(err, errno ? errno : EINVAL, "open `%s`", ctx->tar_path);
	struct tarw *w = tarw_new(fd);
	if (rc == 0)
		rc = tarw_add_root_dir(w, ctx->epoch, err);
	/* The intermediate tar ends with two zero blocks: splice what precedes. */
	if (rc == 0)
		rc = tarw_splice(w, in, (uint64_t)st.st_size - 1024, err);
	if (rc == 0) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, "Dockerfile");
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_mtime(e, ctx->epoch, 0);
		archive_entry_set_size(e, (la_int64_t)strlen(dockerfile));
		rc = tarw_add(w, e, NULL, dockerfile, "linuxkit.docker", "docker", err);
		archive_entry_free(e);
	}
	if (rc == 0)
		rc = tarw_finish(w, err);
	tarw_free(w);
	return close_stream_out(fd, tmp, dst, rc, err);
}

/* Adds NAME from PATH (skipping its first SKIP bytes) or from TEXT. */
static int add_file(struct archive *a, const char *name, const char *path, off_t skip,
		    const char *text, int64_t epoch, struct kiln_error **err)
{
	cleanup_close int fd = -1;
	struct stat st = {0};
	if (path) {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			return kiln_error_make(err, errno, "open `%s`", path);
		if (skip > st.st_size || lseek(fd, skip, SEEK_SET) < 0)
			return kiln_error_make(err, EINVAL, "`%s`: shorter than expected", path);
		st.st_size -= skip;
	} else {
		st.st_size = (off_t)strlen(text);
	}
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_mtime(e, epoch, 0);
	archive_entry_set_size(e, st.st_size);
	int rc = archive_write_header(a, e) == ARCHIVE_OK
		     ? 0
		     : kiln_error_make(err, 0, "tar: %s", archive_error_string(a));
	archive_entry_free(e);
	if (rc < 0)
		return -1;
	if (!path)
		return archive_write_data(a, text, strlen(text)) < 0
			   ? kiln_error_make(err, 0, "tar: %s", archive_error_string(a))
			   : 0;
	char buf[65536];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (archive_write_data(a, buf, (size_t)n) != n)
			return kiln_error_make(err, 0, "tar: %s", archive_error_string(a));
	return n < 0 ? kiln_error_make(err, errno, "read `%s`", path) : 0;
}

static int tar_kernel_initrd_write(const struct format_ctx *ctx, struct kiln_error **err)
{
	cleanup_free char *dst = format_output_path(ctx, "-initrd.tar");
	cleanup_free char *tmp = NULL;
	cleanup_close int fd = format_create_temp(dst, &tmp, err);
	if (fd < 0)
		return -1;
	struct archive *a = archive_write_new();
	archive_write_set_format_ustar(a);
	archive_write_set_bytes_in_last_block(a, 1);
	int rc = archive_write_open_fd(a, fd) == ARCHIVE_OK
		     ? 0
		     : kiln_error_make(err, 0, "tar: %s", archive_error_string(a));
	/* As LinuxKit: the microcode is its own entry, not prepended to
	 * initrd.img (the kernel+initrd writer left it in the work dir). */
	cleanup_free char *ucode = xasprintf("%s/ucode.cpio", ctx->work_dir ? ctx->work_dir : ".");
	struct stat ust;
	off_t usize = ctx->work_dir && stat(ucode, &ust) == 0 ? ust.st_size : 0;
	if (rc == 0)
		rc = add_file(a, "kernel", ctx->kernel_path, 0, NULL, ctx->epoch, err);
	if (rc == 0)
		rc = add_file(a, "initrd.img", ctx->initrd_path, usize, NULL, ctx->epoch, err);
	if (rc == 0)
		rc = add_file(a, "cmdline", NULL, 0, ctx->cmdline ? ctx->cmdline : "", ctx->epoch,
			      err);
	if (rc == 0 && usize)
		rc = add_file(a, "ucode.cpio", ucode, 0, NULL, ctx->epoch, err);
	if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
		rc = kiln_error_make(err, 0, "tar: %s", archive_error_string(a));
	archive_write_free(a);
	if (rc < 0) {
		unlink(tmp);
		return -1;
	}
	return format_commit_file(fd, tmp, dst, err);
}

const struct output_format format_tar = {"tar", "NAME.tar (or -o FILE|-)", false, true, tar_write};
const struct output_format format_docker = {"docker", "NAME.docker (or -o FILE|-)", false, true,
					    docker_write};
const struct output_format format_tar_kernel_initrd = {"tar-kernel-initrd", "NAME-initrd.tar", true,
						       false, tar_kernel_initrd_write};
const struct output_format format_kernel_initrd = {"kernel+initrd",
						   "NAME-kernel, NAME-initrd.img, NAME-cmdline",
						   true, false, kernel_initrd_write};
