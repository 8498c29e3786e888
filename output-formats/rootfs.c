/* kernel+squashfs and kernel+erofs: the root filesystem tar (minus boot/,
 * as LinuxKit) as a read-only filesystem image, the kernel, the command
 * line, and a small initrd that finds that image on whatever disk it is on
 * (virtio, SATA, SCSI, NVMe: by its magic, so no root= is needed), mounts it
 * under a tmpfs overlay and switches root to it.
 *
 * squashfs: the tar is streamed (filtered in-process with libarchive) into
 * `mksquashfs - OUT -tar`, which takes owners, modes, device nodes, hard
 * links and xattrs from the tar headers: no staging tree, no root.
 * erofs (erofs-utils 1.5 reads only directories): the filtered tar is
 * extracted by GNU tar under fakeroot and mkfs.erofs runs under the same
 * fakeroot state, so owners and device nodes come from the tar without root.
 *
 * The small initrd (NAME-squashfs-initrd.img or NAME-erofs-initrd.img: not
 * NAME-initrd.img, which is kernel+initrd's full one and may be written into
 * the same directory; gzip'd newc cpio) holds the modules
 * needed to reach a disk and mount the image (their modules.dep closure,
 * read from each module's .modinfo "depends=") taken from the tar's
 * lib/modules, a static busybox (KILN_BUSYBOX, default /bin/busybox) and an
 * /init script.  Hand-off to kiln's init: when it learns `kiln.root=`, the
 * script can be replaced by it; the files it needs stay the same. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "writer.h"

#define MODULE_MAX (256 * MIB)

enum rootfs_kind { ROOTFS_SQUASHFS, ROOTFS_EROFS };

/* Modules the small initrd tries to load (absent ones are built in or not
 * available; either way the script carries on). */
static const char *const wanted_modules[] = {
    "crc32c_generic", /* libcrc32c (erofs) asks the crypto API for "crc32c" */
    "virtio_pci",     "virtio_blk", "virtio_scsi", "ahci",  "ata_piix",
    "sd_mod",	      "nvme",	    "squashfs",	   "erofs", "overlay",
};

struct module {
	char *name;    /* normalised: '-' -> '_' */
	char *path;    /* path in the tar */
	char *depends; /* comma-separated, normalised */
	bool wanted, emitted;
};

/* Which tar entry is the last for its path: the intermediate tar layers
 * images, and a later entry replaces an earlier one (as tar extraction and
 * the initrd do), while mksquashfs -tar would keep the first. */
struct last_seen {
	char **paths;
	size_t *last;
	size_t cap, n;
};

static uint64_t path_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static size_t *last_slot(struct last_seen *t, const char *path, bool insert)
{
	if (insert && (t->n + 1) * 2 > t->cap) {
		struct last_seen g = {.cap = t->cap ? t->cap * 2 : 1024};
		g.paths = xcalloc(g.cap, sizeof(*g.paths));
		g.last = xcalloc(g.cap, sizeof(*g.last));
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->paths[i])
				continue;
			size_t j = path_hash(t->paths[i]) & (g.cap - 1);
			while (g.paths[j])
				j = (j + 1) & (g.cap - 1);
			g.paths[j] = t->paths[i];
			g.last[j] = t->last[i];
		}
		g.n = t->n;
		free(t->paths);
		free(t->last);
		*t = g;
	}
	if (!t->cap)
		return NULL;
	size_t j = path_hash(path) & (t->cap - 1);
	while (t->paths[j]) {
		if (strcmp(t->paths[j], path) == 0)
			return &t->last[j];
		j = (j + 1) & (t->cap - 1);
	}
	if (!insert)
		return NULL;
	t->paths[j] = xstrdup(path);
	t->n++;
	return &t->last[j];
}

static void last_seen_release(struct last_seen *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->paths[i]);
	free(t->paths);
	free(t->last);
}

/* The path as a key: without leading "./" or "/" and trailing "/". */
static char *path_key(const char *rel)
{
	size_t n = strlen(rel);
	while (n > 1 && rel[n - 1] == '/')
		n--;
	return xstrndup(rel, n);
}

struct scan {
	struct module *mods;
	size_t nmods, cap;
	const char *kernel_out; /* write boot/kernel here when non-NULL */
	bool kernel_found;
	struct strbuf cmdline; /* boot/cmdline, when the build gave none */
	struct last_seen seen;
	size_t with_xattrs; /* entries carrying extended attributes */
};

static void scan_release(struct scan *s)
{
	for (size_t i = 0; i < s->nmods; i++) {
		free(s->mods[i].name);
		free(s->mods[i].path);
		free(s->mods[i].depends);
	}
	free(s->mods);
	strbuf_release(&s->cmdline);
	last_seen_release(&s->seen);
}

static void normalise(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

/* The entry's path without leading "./" or "/"; NULL for the root. */
static const char *rel_path(const char *p)
{
	for (;;) {
		if (p[0] == '/')
			p++;
		else if (p[0] == '.' && p[1] == '/')
			p += 2;
		else
			break;
	}
	if (!*p || strcmp(p, ".") == 0)
		return NULL;
	return p;
}

static bool in_boot(const char *rel)
{
	return rel && (strcmp(rel, "boot") == 0 || strcmp(rel, "boot/") == 0 ||
		       str_has_prefix(rel, "boot/"));
}

/* "lib/modules/VER/…/NAME.ko": returns NAME (caller frees) or NULL. */
static char *module_name(const char *rel)
{
	if (!rel || !str_has_prefix(rel, "lib/modules/"))
		return NULL;
	const char *base = strrchr(rel, '/') + 1;
	const char *ko = strstr(base, ".ko");
	if (!ko || (ko[3] != '\0' && ko[3] != '.'))
		return NULL;
	char *name = xstrndup(base, (size_t)(ko - base));
	normalise(name);
	return name;
}

/* The "depends=" value from a module's .modinfo (NUL-separated key=value
 * strings); "" when none. */
static char *module_depends(const unsigned char *data, size_t len)
{
	static const char key[] = "\0depends=";
	const unsigned char *p = memmem(data, len, key, sizeof(key) - 1);
	if (!p)
		return xstrdup("");
	p += sizeof(key) - 1;
	const unsigned char *end = memchr(p, '\0', len - (size_t)(p - data));
	char *d = xstrndup((const char *)p, end ? (size_t)(end - p) : 0);
	normalise(d);
	return d;
}

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static void archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

#define cleanup_archive_read  __attribute__((cleanup(archive_read_freep)))
#define cleanup_archive_write __attribute__((cleanup(archive_write_freep)))

static int open_tar(const char *path, struct archive **out, struct kiln_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_support_filter_all(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
		kiln_error_make(err, 0, "open `%s`: %s", path, archive_error_string(a));
		archive_read_free(a);
		return -1;
	}
	*out = a;
	return 0;
}

/* First pass: the index of the last entry of every path. */
static int index_tar(const struct format_ctx *ctx, struct scan *scan, struct kiln_error **err)
{
	cleanup_archive_read struct archive *in = NULL;
	if (open_tar(ctx->tar_path, &in, err) < 0)
		return -1;
	struct archive_entry *e;
	int r;
	size_t i = 0;
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		const char *rel = rel_path(archive_entry_pathname(e));
		if (rel) {
			cleanup_free char *key = path_key(rel);
			*last_slot(&scan->seen, key, true) = i;
		}
		i++;
	}
	if (r != ARCHIVE_EOF)
		return kiln_error_make(err, 0, "read `%s`: %s", ctx->tar_path,
				       archive_error_string(in));
	return 0;
}

/* libarchive write callback onto a socket (MSG_NOSIGNAL: a tool that dies
 * early gives EPIPE, not SIGPIPE). */
static la_ssize_t socket_write(struct archive *a, void *data, const void *buf, size_t len)
{
	int fd = *(int *)data;
	size_t done = 0;
	while (done < len) {
		ssize_t w = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			archive_set_error(a, errno, "write to tool");
			return -1;
		}
		done += (size_t)w;
	}
	return (la_ssize_t)len;
}

static int copy_data(struct archive *in, struct archive *out, struct strbuf *keep, int kernel_fd,
		     struct kiln_error **err)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
		if (keep) {
			if (keep->len + len > MODULE_MAX)
				return kiln_error_make(err, EFBIG, "module too large");
			strbuf_append(keep, buf, len);
		}
		if (kernel_fd >= 0 && write_all(kernel_fd, buf, len, err) < 0)
			return -1;
		if (out && archive_write_data(out, buf, len) != (la_ssize_t)len)
			return kiln_error_make(err, 0, "write tar: %s", archive_error_string(out));
	}
	if (r != ARCHIVE_EOF)
		return kiln_error_make(err, 0, "read tar: %s", archive_error_string(in));
	return 0;
}

/* Streams CTX's tar to FD without boot/ (the root entry first when
 * ROOT_ENTRY), noting every kernel module and capturing boot/kernel. */
static int filter_tar(const struct format_ctx *ctx, int fd, bool root_entry, struct scan *scan,
		      struct kiln_error **err)
{
	cleanup_archive_read struct archive *in = NULL;
	if (open_tar(ctx->tar_path, &in, err) < 0)
		return -1;
	cleanup_archive_write struct archive *out = archive_write_new();
	archive_write_set_format_pax_restricted(out);
	archive_write_set_bytes_in_last_block(out, 1);
	if (archive_write_open(out, &fd, NULL, socket_write, NULL) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "write tar: %s", archive_error_string(out));
	if (root_entry) {
		__attribute__((cleanup(entry_freep))) struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, "./");
		archive_entry_set_filetype(e, AE_IFDIR);
		archive_entry_set_perm(e, 0755);
		archive_entry_set_mtime(e, (time_t)ctx->epoch, 0);
		if (archive_write_header(out, e) != ARCHIVE_OK)
			return kiln_error_make(err, 0, "write tar: %s", archive_error_string(out));
	}
	struct archive_entry *e;
	int r;
	size_t index = 0;
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
		size_t i = index++;
		const char *rel = rel_path(archive_entry_pathname(e));
		if (!rel)
			continue; /* the root: mode set by the tool's options */
		cleanup_free char *key = path_key(rel);
		size_t *last = last_slot(&scan->seen, key, false);
		if (last && *last != i)
			continue; /* replaced by a later entry */
		if (in_boot(rel)) {
			if (scan->kernel_out && strcmp(rel, "boot/kernel") == 0 &&
			    archive_entry_filetype(e) == AE_IFREG) {
				cleanup_close int kfd =
				    open(scan->kernel_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
					 0644);
				if (kfd < 0)
					return kiln_error_make(err, errno, "create `%s`",
							       scan->kernel_out);
				if (copy_data(in, NULL, NULL, kfd, err) < 0)
					return -1;
				scan->kernel_found = true;
			} else if (strcmp(rel, "boot/cmdline") == 0 &&
				   archive_entry_filetype(e) == AE_IFREG) {
				strbuf_reset(&scan->cmdline);
				if (copy_data(in, NULL, &scan->cmdline, -1, err) < 0)
					return -1;
			}
			continue;
		}
		if (archive_write_header(out, e) != ARCHIVE_OK)
			return kiln_error_make(err, 0, "write tar: %s", archive_error_string(out));
		if (archive_entry_xattr_count(e) > 0)
			scan->with_xattrs++;
		cleanup_free char *mname =
		    archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e)
			? module_name(rel)
			: NULL;
		cleanup_strbuf struct strbuf data = STRBUF_INIT;
		if (copy_data(in, out, mname ? &data : NULL, -1, err) < 0)
			return -1;
		if (mname) {
			if (scan->nmods == scan->cap) {
				scan->cap = scan->cap ? 2 * scan->cap : 64;
				scan->mods = xrealloc(scan->mods, scan->cap * sizeof(*scan->mods));
			}
			struct module *m = &scan->mods[scan->nmods++];
			*m = (struct module){
			    .name = steal_pointer(&mname),
			    .path = xstrdup(rel),
			    .depends = module_depends((const unsigned char *)data.buf, data.len),
			};
		}
	}
	if (r != ARCHIVE_EOF)
		return kiln_error_make(err, 0, "read `%s`: %s", ctx->tar_path,
				       archive_error_string(in));
	if (archive_write_close(out) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "write tar: %s", archive_error_string(out));
	return 0;
}

/* Runs ARGV reading the filtered tar on its stdin. */
static int tool_from_tar(const char *const argv[], const struct format_ctx *ctx, bool root_entry,
			 struct scan *scan, struct kiln_error **err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return kiln_error_make(err, errno, "socketpair");
	shutdown(sv[0], SHUT_WR);
	struct tool_proc proc = {.outfd = -1};
	if (tool_start(argv, ctx->epoch, sv[0], &proc, err) < 0) {
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	close(sv[0]);
	struct kiln_error *ferr = NULL;
	int fr = index_tar(ctx, scan, &ferr);
	if (fr == 0)
		fr = filter_tar(ctx, sv[1], root_entry, scan, &ferr);
	close(sv[1]);
	int wr = tool_wait(&proc, err);
	if (wr < 0) {
		kiln_error_release(&ferr);
		return -1;
	}
	if (fr < 0) {
		*err = ferr;
		return -1;
	}
	return 0;
}

static struct module *find_module(struct scan *s, const char *name)
{
	for (size_t i = 0; i < s->nmods; i++)
		if (strcmp(s->mods[i].name, name) == 0)
			return &s->mods[i];
	return NULL;
}

/* Appends M's dependencies, then M, to ORDER (newline-separated tar paths). */
static void module_closure(struct scan *s, struct module *m, struct strbuf *order, int depth)
{
	if (m->emitted || depth > 64)
		return;
	m->emitted = true;
	cleanup_free char *deps = xstrdup(m->depends);
	for (char *save = NULL, *d = strtok_r(deps, ",", &save); d;
	     d = strtok_r(NULL, ",", &save)) {
		struct module *dm = find_module(s, d);
		if (dm)
			module_closure(s, dm, order, depth + 1);
	}
	m->wanted = true;
	strbuf_printf(order, "/%s\n", m->path);
}

/* The same script for both kinds: either initrd boots either image. */
static const char init_script[] =
    "#!/bin/busybox sh\n"
    "# kiln's small initrd: find the squashfs or erofs root image on any disk\n"
    "# by its magic, mount it read-only under a tmpfs overlay, switch to it.\n"
    "export PATH=/bin\n"
    "busybox mount -t proc proc /proc\n"
    "busybox mount -t sysfs sysfs /sys\n"
    "busybox mount -t devtmpfs devtmpfs /dev\n"
    "for m in $(busybox cat /etc/kiln-modules); do busybox insmod $m 2>/dev/null; done\n"
    "found=\n"
    "kind=\n"
    "i=0\n"
    "while [ -z \"$found\" ] && [ $i -lt 300 ]; do\n"
    "  for d in /sys/class/block/*; do\n"
    "    [ -e \"$d\" ] || continue\n"
    "    n=${d##*/}\n"
    "    [ -b \"/dev/$n\" ] || continue\n"
    "    m=$(busybox dd if=/dev/$n bs=4 count=1 2>/dev/null)\n"
    "    if [ \"$m\" = hsqs ]; then found=/dev/$n; kind=squashfs; break; fi\n"
    "    m=$(busybox dd if=/dev/$n bs=1 skip=1024 count=4 2>/dev/null | busybox hexdump -e '4/1 "
    "\"%02x\"')\n"
    "    if [ \"$m\" = e2e1f5e0 ]; then found=/dev/$n; kind=erofs; break; fi\n"
    "  done\n"
    "  [ -n \"$found\" ] || { busybox usleep 100000; i=$((i+1)); }\n"
    "done\n"
    "if [ -z \"$found\" ]; then echo \"kiln: no squashfs or erofs root image on any disk\"; "
    "busybox sleep 2; busybox poweroff -f; fi\n"
    "echo \"kiln: $kind root image on $found\"\n"
    "busybox mkdir -p /ro /rw /newroot\n"
    "busybox mount -t $kind -o ro $found /ro || { echo \"kiln: cannot mount $found\"; "
    "busybox poweroff -f; }\n"
    "busybox mount -t tmpfs -o mode=0755 tmpfs /rw\n"
    "busybox mkdir -p /rw/upper /rw/work\n"
    "if ! busybox mount -t overlay overlay -o lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work "
    "/newroot; then\n"
    "  echo \"kiln: no overlayfs: read-only root\"; busybox mount --move /ro /newroot\n"
    "fi\n"
    "init=/sbin/init\n"
    "for a in $(busybox cat /proc/cmdline); do case $a in init=*) init=${a#init=};; esac; done\n"
    "[ -x /newroot$init ] || [ -L /newroot$init ] || init=/init\n"
    "busybox umount /sys /proc\n"
    "busybox mount --move /dev /newroot/dev 2>/dev/null || busybox umount /dev\n"
    "exec busybox switch_root /newroot $init\n";

static int cpio_add(struct archive *a, const char *path, unsigned mode, const void *data,
		    size_t len, int64_t epoch, struct kiln_error **err)
{
	__attribute__((cleanup(entry_freep))) struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, path);
	archive_entry_set_mode(e, mode);
	archive_entry_set_mtime(e, (time_t)epoch, 0);
	archive_entry_set_nlink(e, S_ISDIR(mode) ? 2 : 1);
	if (S_ISCHR(mode))
		archive_entry_set_rdev(e, makedev(5, 1));
	archive_entry_set_size(e, S_ISREG(mode) ? (la_int64_t)len : 0);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    (S_ISREG(mode) && len && archive_write_data(a, data, len) != (la_ssize_t)len))
		return kiln_error_make(err, 0, "initrd: %s", archive_error_string(a));
	return 0;
}

/* Writes the small initrd: directories, busybox, /init, the modules in
 * SCAN marked wanted (read again from the tar) and their load order. */
static int small_initrd(const struct format_ctx *ctx, struct scan *scan, const char *out,
			struct kiln_error **err)
{
	cleanup_strbuf struct strbuf order = STRBUF_INIT;
	for (size_t w = 0; w < ARRAY_SIZE(wanted_modules); w++) {
		struct module *m = find_module(scan, wanted_modules[w]);
		if (m)
			module_closure(scan, m, &order, 0);
	}
	const char *bb_path = getenv("KILN_BUSYBOX");
	if (!bb_path || !*bb_path)
		bb_path = "/bin/busybox";
	size_t bb_len;
	cleanup_free char *bb = read_file(bb_path, 64 * MIB, &bb_len, err);
	if (!bb)
		return kiln_error_wrap(err, "small initrd: static busybox");
	const char *script = init_script;

	cleanup_archive_write struct archive *a = archive_write_new();
	archive_write_set_format_cpio_newc(a);
	archive_write_add_filter_gzip(a);
	archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open_filename(a, out) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "initrd `%s`: %s", out, archive_error_string(a));
	static const char *const dirs[] = {"bin", "dev", "etc", "proc",
					   "sys", "ro",	 "rw",	"newroot"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
		if (cpio_add(a, dirs[i], S_IFDIR | 0755, NULL, 0, ctx->epoch, err) < 0)
			return -1;
	if (cpio_add(a, "dev/console", S_IFCHR | 0600, NULL, 0, ctx->epoch, err) < 0 ||
	    cpio_add(a, "bin/busybox", S_IFREG | 0755, bb, bb_len, ctx->epoch, err) < 0 ||
	    cpio_add(a, "init", S_IFREG | 0755, script, strlen(script), ctx->epoch, err) < 0 ||
	    cpio_add(a, "etc/kiln-modules", S_IFREG | 0644, order.buf ? order.buf : "", order.len,
		     ctx->epoch, err) < 0)
		return -1;

	if (order.len) {
		cleanup_archive_read struct archive *in = NULL;
		if (open_tar(ctx->tar_path, &in, err) < 0)
			return -1;
		struct strbuf made = STRBUF_INIT;
		struct archive_entry *e;
		int r;
		while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK) {
			const char *rel = rel_path(archive_entry_pathname(e));
			struct module *m = NULL;
			for (size_t i = 0; rel && i < scan->nmods && !m; i++)
				if (scan->mods[i].wanted && strcmp(scan->mods[i].path, rel) == 0)
					m = &scan->mods[i];
			if (!m)
				continue;
			/* Parent directories, once each. */
			cleanup_free char *p = xstrdup(rel);
			for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
				*s = '\0';
				cleanup_free char *key = xasprintf("\n%s\n", p);
				if (!made.buf || !strstr(made.buf, key)) {
					if (cpio_add(a, p, S_IFDIR | 0755, NULL, 0, ctx->epoch,
						     err) < 0) {
						strbuf_release(&made);
						return -1;
					}
					strbuf_printf(&made, "%s%s\n", made.len ? "" : "\n", p);
				}
				*s = '/';
			}
			cleanup_strbuf struct strbuf data = STRBUF_INIT;
			if (copy_data(in, NULL, &data, -1, err) < 0 ||
			    cpio_add(a, rel, S_IFREG | 0644, data.buf, data.len, ctx->epoch, err) <
				0) {
				strbuf_release(&made);
				return -1;
			}
		}
		strbuf_release(&made);
		if (r != ARCHIVE_EOF)
			return kiln_error_make(err, 0, "read `%s`: %s", ctx->tar_path,
					       archive_error_string(in));
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "initrd `%s`: %s", out, archive_error_string(a));
	return 0;
}

static int rootfs_write(const struct format_ctx *ctx, enum rootfs_kind kind,
			struct kiln_error **err)
{
	const char *fmt = kind == ROOTFS_SQUASHFS ? "kernel+squashfs" : "kernel+erofs";
	if (!ctx->tar_path)
		return kiln_error_make(err, 0, "%s: needs the root filesystem tar", fmt);
	cleanup_free char *img =
	    writer_output_path(ctx, kind == ROOTFS_SQUASHFS ? "-squashfs.img" : "-erofs.img");
	cleanup_free char *kernel = writer_output_path(ctx, "-kernel");
	cleanup_free char *cmdline = writer_output_path(ctx, "-cmdline");
	cleanup_free char *initrd = writer_output_path(
	    ctx, kind == ROOTFS_SQUASHFS ? "-squashfs-initrd.img" : "-erofs-initrd.img");
	cleanup_free char *img_tmp = format_temp_path(img);
	cleanup_free char *kernel_tmp = format_temp_path(kernel);
	cleanup_free char *initrd_tmp = format_temp_path(initrd);
	cleanup_free char *stage = xasprintf("%s/%s-stage", ctx->work_dir, fmt);
	cleanup_free char *state = xasprintf("%s/%s-fakeroot", ctx->work_dir, fmt);
	char epoch_s[32];
	snprintf(epoch_s, sizeof(epoch_s), "%lld", (long long)ctx->epoch);
	struct scan scan = {.kernel_out = ctx->kernel_path ? NULL : kernel_tmp};
	int r = -1;
	unlink(img_tmp);

	if (kind == ROOTFS_SQUASHFS) {
		/* SOURCE_DATE_EPOCH (tool_run sets it) fixes the filesystem time
		 * and every inode time; mksquashfs refuses -all-time with it.
		 * zstd level 3: as small as gzip -6 and 7x faster to make (gzip
		 * -9, the default, is 25x slower); the kernel needs
		 * CONFIG_SQUASHFS_ZSTD (Debian's has it). */
		const char *argv[] = {"mksquashfs",
				      "-",
				      img_tmp,
				      "-tar",
				      "-noappend",
				      "-quiet",
				      "-no-progress",
				      "-comp",
				      "zstd",
				      "-Xcompression-level",
				      "3",
				      "-root-mode",
				      "755",
				      "-root-uid",
				      "0",
				      "-root-gid",
				      "0",
				      NULL};
		if (tool_from_tar(argv, ctx, false, &scan, err) < 0)
			goto out;
	} else {
		unsigned char seed[32];
		if (format_file_seed(ctx->tar_path, fmt, ctx->epoch, seed, err) < 0)
			goto out;
		unsigned char uuid[16];
		format_guid(seed, "erofs-uuid", uuid);
		char uuid_s[40];
		snprintf(uuid_s, sizeof(uuid_s),
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 uuid[0], uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7],
			 uuid[8], uuid[9], uuid[10], uuid[11], uuid[12], uuid[13], uuid[14],
			 uuid[15]);
		cleanup_free char *T = xasprintf("-T%s", epoch_s);
		cleanup_free char *U = xasprintf("-U%s", uuid_s);
		if (rm_rf(stage, err) < 0 || mkdir_p(stage, 0755, err) < 0)
			goto out;
		unlink(state);
		const char *untar[] = {
		    "fakeroot",	       "-s",	       state, "--",  "tar", "-x", "-p",
		    "--numeric-owner", "--same-owner", "-C",  stage, "-f",  "-",  NULL};
		if (tool_from_tar(untar, ctx, true, &scan, err) < 0)
			goto out;
		const char *mkfs[] = {"fakeroot", "-i", state,	 "--",	"mkfs.erofs", "--quiet",
				      T,	  U,	img_tmp, stage, NULL};
		if (tool_run(mkfs, ctx->epoch, NULL, err) < 0)
			goto out;
		/* GNU tar --xattrs pre-creates each file with mknodat(2) and no
		 * file type, which fakeroot 1.31 records as such (mkfs.erofs
		 * then fails with EINVAL); fakeroot's state file keeps no
		 * xattrs; erofs-utils 1.5 has no --tar.  Say what is lost. */
		if (scan.with_xattrs)
			log_warn("kernel+erofs: the extended attributes (file capabilities, ...) "
				 "of %zu entries are not in the EROFS image; "
				 "kernel+squashfs keeps them",
				 scan.with_xattrs);
	}
	if (!ctx->kernel_path && !scan.kernel_found) {
		kiln_error_make(err, 0, "no boot/kernel in `%s`", ctx->tar_path);
		goto out;
	}
	if (ctx->kernel_path && format_copy_file(ctx->kernel_path, kernel_tmp, err) < 0)
		goto out;
	if (small_initrd(ctx, &scan, initrd_tmp, err) < 0)
		goto out;
	const char *c = ctx->cmdline && *ctx->cmdline ? ctx->cmdline
			: scan.cmdline.buf	      ? scan.cmdline.buf
						      : "";
	if (write_file_atomic(cmdline, c, strlen(c), 0644, err) < 0 ||
	    format_publish(img_tmp, img, err) < 0 || format_publish(kernel_tmp, kernel, err) < 0 ||
	    format_publish(initrd_tmp, initrd, err) < 0)
		goto out;
	r = 0;
out:
	scan_release(&scan);
	unlink(img_tmp);
	unlink(kernel_tmp);
	unlink(initrd_tmp);
	unlink(state);
	rm_rf(stage, NULL);
	return r < 0 ? kiln_error_wrap(err, "%s", fmt) : 0;
}

int format_write_kernel_squashfs(const struct format_ctx *ctx, struct kiln_error **err)
{
	return rootfs_write(ctx, ROOTFS_SQUASHFS, err);
}

int format_write_kernel_erofs(const struct format_ctx *ctx, struct kiln_error **err)
{
	return rootfs_write(ctx, ROOTFS_EROFS, err);
}

const struct output_format format_kernel_squashfs = {
    .name = "kernel+squashfs",
    .files = "NAME-kernel NAME-squashfs.img NAME-squashfs-initrd.img NAME-cmdline",
    .needs_kernel_initrd = false,
    .write = format_write_kernel_squashfs,
};

const struct output_format format_kernel_erofs = {
    .name = "kernel+erofs",
    .files = "NAME-kernel NAME-erofs.img NAME-erofs-initrd.img NAME-cmdline",
    .needs_kernel_initrd = false,
    .write = format_write_kernel_erofs,
};
