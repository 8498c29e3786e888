/* Small pieces every writer shares: output names, atomic publication,
 * content-derived identifiers, sparse copies. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"
#include "writer.h"

char *writer_output_path(const struct format_ctx *ctx, const char *suffix)
{
	return xasprintf("%s/%s%s", ctx->dir && *ctx->dir ? ctx->dir : ".", ctx->name, suffix);
}

char *format_temp_path(const char *final)
{
	return xasprintf("%s.tmp-kiln", final);
}

int format_publish(const char *tmp, const char *final, struct kiln_error **err)
{
	cleanup_close int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", tmp);
	if (fsync(fd) < 0)
		return kiln_error_make(err, errno, "fsync `%s`", tmp);
	if (rename(tmp, final) < 0)
		return kiln_error_make(err, errno, "rename `%s` to `%s`", tmp, final);
	return 0;
}

static int hash_file(struct sha256 *h, const char *path, struct kiln_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", path);
	cleanup_free unsigned char *buf = xmalloc(1 << 20);
	for (;;) {
		ssize_t r = read(fd, buf, 1 << 20);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return kiln_error_make(err, errno, "read `%s`", path);
		}
		if (r == 0)
			return 0;
		sha256_update(h, buf, (size_t)r);
	}
}

int format_boot_seed(const struct format_ctx *ctx, const char *salt, unsigned char seed[32],
		     struct kiln_error **err)
{
	struct sha256 h;
	sha256_init(&h);
	char head[64];
	int n = snprintf(head, sizeof(head), "kiln %s %lld\n", salt, (long long)ctx->epoch);
	sha256_update(&h, head, (size_t)n);
	const char *files[] = {ctx->kernel_path, ctx->initrd_path};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i])
			continue;
		if (hash_file(&h, files[i], err) < 0) {
			sha256_abort(&h);
			return -1;
		}
	}
	if (ctx->cmdline)
		sha256_update(&h, ctx->cmdline, strlen(ctx->cmdline));
	sha256_final_raw(&h, seed);
	return 0;
}

int format_file_seed(const char *path, const char *salt, int64_t epoch, unsigned char seed[32],
		     struct kiln_error **err)
{
	struct sha256 h;
	sha256_init(&h);
	char head[64];
	int n = snprintf(head, sizeof(head), "kiln %s %lld\n", salt, (long long)epoch);
	sha256_update(&h, head, (size_t)n);
	if (hash_file(&h, path, err) < 0) {
		sha256_abort(&h);
		return -1;
	}
	sha256_final_raw(&h, seed);
	return 0;
}

static void derive(const unsigned char seed[32], const char *label, unsigned char out[32])
{
	struct sha256 h;
	sha256_init(&h);
	sha256_update(&h, seed, 32);
	sha256_update(&h, label, strlen(label));
	sha256_final_raw(&h, out);
}

void format_guid(const unsigned char seed[32], const char *label, unsigned char guid[16])
{
	unsigned char d[32];
	derive(seed, label, d);
	memcpy(guid, d, 16);
	/* time_hi_and_version is stored little-endian at bytes 6-7: the version
	 * nibble is the high nibble of byte 7; the variant lives in byte 8. */
	guid[7] = (unsigned char)((guid[7] & 0x0f) | 0x40);
	guid[8] = (unsigned char)((guid[8] & 0x3f) | 0x80);
}

uint32_t format_id32(const unsigned char seed[32], const char *label)
{
	unsigned char d[32];
	derive(seed, label, d);
	uint32_t v = (uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3];
	return v ? v : 1;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	if (n == 0)
		return true;
	return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

int format_copy_sparse(int dst_fd, uint64_t dst_off, const char *src_path, uint64_t *copied,
		       struct kiln_error **err)
{
	cleanup_close int fd = open(src_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", src_path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", src_path);
	const size_t blk = 64 * 1024;
	cleanup_free unsigned char *buf = xmalloc(blk);
	off_t pos = 0;
	while (pos < st.st_size) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0) {
			if (errno == ENXIO)
				break; /* only a hole remains */
			data = pos;
		}
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			hole = st.st_size;
		for (pos = data; pos < hole;) {
			size_t want = (size_t)(hole - pos) < blk ? (size_t)(hole - pos) : blk;
			ssize_t r = pread(fd, buf, want, pos);
			if (r < 0) {
				if (errno == EINTR)
					continue;
				return kiln_error_make(err, errno, "read `%s`", src_path);
			}
			if (r == 0)
				break;
			if (!all_zero(buf, (size_t)r)) {
				size_t done = 0;
				while (done < (size_t)r) {
					ssize_t w = pwrite(dst_fd, buf + done, (size_t)r - done,
							   (off_t)(dst_off + (uint64_t)pos + done));
					if (w < 0) {
						if (errno == EINTR)
							continue;
						return kiln_error_make(err, errno, "write");
					}
					done += (size_t)w;
				}
			}
			pos += r;
		}
		pos = hole;
	}
	if (copied)
		*copied = (uint64_t)st.st_size;
	return 0;
}

int format_file_size(const char *path, uint64_t *size, struct kiln_error **err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", path);
	*size = (uint64_t)st.st_size;
	return 0;
}

int format_set_time(const char *path, int64_t epoch, struct kiln_error **err)
{
	struct timespec ts[2] = {{.tv_sec = (time_t)epoch}, {.tv_sec = (time_t)epoch}};
	if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return kiln_error_make(err, errno, "set time of `%s`", path);
	return 0;
}

int format_copy_file(const char *src, const char *dst, struct kiln_error **err)
{
	cleanup_close int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		return kiln_error_make(err, errno, "create `%s`", dst);
	cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kiln_error_make(err, errno, "open `%s`", src);
	struct stat st;
	if (fstat(in, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", src);
	off_t left = st.st_size;
	while (left > 0) {
		ssize_t r = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* Fall back to read/write (cross-device on old kernels). */
			cleanup_free unsigned char *buf = xmalloc(1 << 20);
			ssize_t n;
			while ((n = read(in, buf, 1 << 20)) > 0)
				if (write_all(out, buf, (size_t)n, err) < 0)
					return kiln_error_wrap(err, "copy to `%s`", dst);
			if (n < 0)
				return kiln_error_make(err, errno, "read `%s`", src);
			break;
		}
		left -= r;
	}
	return 0;
}
