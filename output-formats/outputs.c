/* See outputs.h: atomic installation of output files, and the
 * kernel+initrd writer. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outputs.h"
#include "util.h"

char *format_output_path(const struct format_ctx *ctx, const char *suffix)
{
	return xasprintf("%s/%s%s", ctx->dir && *ctx->dir ? ctx->dir : ".", ctx->name, suffix);
}

static char *temp_name(const char *dst)
{
	const char *slash = strrchr(dst, '/');
	int dirlen = slash ? (int)(slash - dst) : 1;
	const char *dir = slash ? dst : ".";
	const char *base = slash ? slash + 1 : dst;
	static unsigned counter;
	return xasprintf("%.*s/.%s.tmp-%ld-%u", dirlen, dir, base, (long)getpid(), counter++);
}

int format_create_temp(const char *dst, char **tmp_out, struct kiln_error **err)
{
	char *tmp = temp_name(dst);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		kiln_error_make(err, errno, "create `%s`", tmp);
		free(tmp);
		return -1;
	}
	*tmp_out = tmp;
	return fd;
}

int format_commit_file(int fd, const char *tmp, const char *dst, struct kiln_error **err)
{
	if (fsync(fd) < 0) {
		int e = errno;
		unlink(tmp);
		return kiln_error_make(err, e, "fsync `%s`", tmp);
	}
	if (rename(tmp, dst) < 0) {
		int e = errno;
		unlink(tmp);
		return kiln_error_make(err, e, "rename to `%s`", dst);
	}
	return 0;
}

int format_install_file(const char *src, const char *dst, mode_t mode, struct kiln_error **err)
{
	cleanup_free char *tmp = temp_name(dst);
	if (link(src, tmp) == 0) {
		if (chmod(tmp, mode) < 0 || rename(tmp, dst) < 0) {
			int e = errno;
			unlink(tmp);
			return kiln_error_make(err, e, "install `%s`", dst);
		}
		return 0;
	}
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kiln_error_make(err, errno, "open `%s`", src);
	cleanup_close int out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0)
		return kiln_error_make(err, errno, "create `%s`", tmp);
	struct stat st;
	if (fstat(in, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", src);
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL))
			break;
		if (n <= 0) {
			unlink(tmp);
			return kiln_error_make(err, n < 0 ? errno : EIO, "copy to `%s`", tmp);
		}
		left -= n;
	}
	char buf[65536];
	while (left > 0) {
		ssize_t n = read(in, buf, sizeof(buf));
		if (n <= 0 || write_all(out, buf, (size_t)n, err) < 0) {
			unlink(tmp);
			return n <= 0 ? kiln_error_make(err, n < 0 ? errno : EIO, "read `%s`", src)
				      : -1;
		}
		left -= n;
	}
	if (fchmod(out, mode) < 0) {
		unlink(tmp);
		return kiln_error_make(err, errno, "chmod `%s`", tmp);
	}
	return format_commit_file(out, tmp, dst, err);
}

static int install_text(const char *dst, const char *text, struct kiln_error **err)
{
	cleanup_free char *tmp = NULL;
	cleanup_close int fd = format_create_temp(dst, &tmp, err);
	if (fd < 0)
		return -1;
	if (write_all(fd, text, strlen(text), err) < 0) {
		unlink(tmp);
		return -1;
	}
	return format_commit_file(fd, tmp, dst, err);
}

int kernel_initrd_write(const struct format_ctx *ctx, struct kiln_error **err)
{
	cleanup_free char *k = format_output_path(ctx, "-kernel");
	cleanup_free char *i = format_output_path(ctx, "-initrd.img");
	cleanup_free char *c = format_output_path(ctx, "-cmdline");
	if (format_install_file(ctx->kernel_path, k, 0644, err) < 0 ||
	    format_install_file(ctx->initrd_path, i, 0644, err) < 0 ||
	    install_text(c, ctx->cmdline ? ctx->cmdline : "", err) < 0)
		return -1;
	return 0;
}
