/* `kiln run qemu`: target detection, option grammars, state-dir preparation
 * and the qemu-system command line.  See qemu.h. */
#include "qemu.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qemu_tool.h"
#include "strbuf.h"
#include "util.h"

const char *qemu_boot_name(enum qemu_boot kind)
{
	switch (kind) {
	case QEMU_BOOT_KERNEL:
		return "kernel";
	case QEMU_BOOT_SQUASHFS:
		return "squashfs";
	case QEMU_BOOT_ISO:
		return "iso";
	case QEMU_BOOT_DISK:
		return "disk";
	case QEMU_BOOT_UKI:
		return "uki";
	case QEMU_BOOT_AUTO:
		break;
	}
	return "auto";
}

void qemu_target_release(struct qemu_target *t)
{
	free(t->name);
	free(t->kernel);
	free(t->initrd);
	free(t->cmdline);
	free(t->rootfs);
	free(t->image);
	free(t->disk_format);
	memset(t, 0, sizeof *t);
}

static bool is_regular(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* NAME-efi.iso, NAME-efi.img, NAME-efi.qcow2, ... : LinuxKit's names for
 * images that only boot under UEFI. */
static bool name_says_efi(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	size_t stem = dot ? (size_t)(dot - base) : strlen(base);
	return stem >= 4 && memcmp(base + stem - 4, "-efi", 4) == 0;
}

static char *strip_extension(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	if (dot == NULL || dot == base)
		return xstrdup(path);
	return xstrndup(path, (size_t)(dot - path));
}

/* PREFER: "squashfs" or "erofs" when the user named that root image (or its
 * initrd), else NULL (squashfs first).  kiln's kernel+squashfs and
 * kernel+erofs write their small initrd as NAME-squashfs-initrd.img and
 * NAME-erofs-initrd.img (NAME-initrd.img is kernel+initrd's, and several
 * formats may share one --dir); a root image without its own initrd boots
 * with NAME-initrd.img, if any. */
static int detect_prefix(const char *prefix, enum qemu_boot force, const char *prefer,
			 struct qemu_target *t, struct kiln_error **err)
{
	t->kernel = xasprintf("%s-kernel", prefix);
	if (!is_regular(t->kernel))
		return kiln_error_make(err, 0, "`%s` not found (a kernel boot needs NAME-kernel)",
				       t->kernel);
	t->name = xstrdup(prefix);
	cleanup_free char *cmdline_path = xasprintf("%s-cmdline", prefix);
	if (is_regular(cmdline_path)) {
		size_t len;
		char *c = read_file(cmdline_path, 1 << 16, &len, err);
		if (c == NULL)
			return -1;
		while (len > 0 && isspace((unsigned char)c[len - 1]))
			c[--len] = '\0';
		t->cmdline = c;
	}
	bool erofs_first = prefer && strcmp(prefer, "erofs") == 0;
	const char *roots[] = {erofs_first ? "erofs" : "squashfs",
			       erofs_first ? "squashfs" : "erofs"};
	const char *kind = NULL;
	for (size_t i = 0; force != QEMU_BOOT_KERNEL && kind == NULL && i < ARRAY_SIZE(roots);
	     i++) {
		char *r = xasprintf("%s-%s.img", prefix, roots[i]);
		if (is_regular(r)) {
			t->rootfs = r;
			kind = roots[i];
		} else {
			free(r);
		}
	}
	if (force == QEMU_BOOT_SQUASHFS && t->rootfs == NULL)
		return kiln_error_make(err, 0, "`%s-squashfs.img` not found", prefix);
	char *initrd = kind ? xasprintf("%s-%s-initrd.img", prefix, kind) : NULL;
	if (initrd == NULL || !is_regular(initrd)) {
		free(initrd);
		initrd = xasprintf("%s-initrd.img", prefix);
	}
	if (is_regular(initrd))
		t->initrd = initrd;
	else
		free(initrd);
	t->kind = t->rootfs ? QEMU_BOOT_SQUASHFS : QEMU_BOOT_KERNEL;
	return 0;
}

/* kiln's own small initrd for a root image finds the image by its magic on
 * any disk: no root= is needed. */
static bool initrd_finds_root(const struct qemu_target *t)
{
	return t->initrd && (str_has_suffix(t->initrd, "-squashfs-initrd.img") ||
			     str_has_suffix(t->initrd, "-erofs-initrd.img"));
}

const char *qemu_disk_format(const char *path, struct kiln_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", path), NULL;
	unsigned char head[512];
	ssize_t n = pread(fd, head, sizeof head, 0);
	if (n < 0)
		return kiln_error_make(err, errno, "read `%s`", path), NULL;
	if (n >= 4 && memcmp(head, "QFI\xfb", 4) == 0)
		return "qcow2";
	if (n >= 4 && memcmp(head, "KDMV", 4) == 0)
		return "vmdk";
	if (n >= 8 && memcmp(head, "conectix", 8) == 0)
		return "vpc"; /* a dynamic VHD starts with a copy of its footer */
	off_t size = lseek(fd, 0, SEEK_END);
	if (size >= 512) {
		unsigned char foot[8];
		if (pread(fd, foot, sizeof foot, size - 512) == (ssize_t)sizeof foot &&
		    memcmp(foot, "conectix", 8) == 0)
			return "vpc";
	}
	return "raw";
}

int qemu_detect(const char *path, enum qemu_boot force, struct qemu_target *out,
		struct kiln_error **err)
{
	memset(out, 0, sizeof *out);
	if (force == QEMU_BOOT_KERNEL || force == QEMU_BOOT_SQUASHFS) {
		/* Accept both NAME and NAME-kernel. */
		cleanup_free char *prefix = str_has_suffix(path, "-kernel")
						? xstrndup(path, strlen(path) - strlen("-kernel"))
						: xstrdup(path);
		if (detect_prefix(prefix, force, NULL, out, err) < 0) {
			qemu_target_release(out);
			return -1;
		}
		return 0;
	}
	if (force == QEMU_BOOT_AUTO && access(path, F_OK) != 0) {
		cleanup_free char *kernel = xasprintf("%s-kernel", path);
		if (is_regular(kernel)) {
			if (detect_prefix(path, force, NULL, out, err) < 0) {
				qemu_target_release(out);
				return -1;
			}
			return 0;
		}
		return kiln_error_make(err, 0, "`%s`: no such file, and no `%s-kernel` either",
				       path, path);
	}
	/* Any file of a kernel boot's set names the set: NAME-kernel,
	 * NAME-initrd.img, NAME-cmdline, NAME-squashfs.img, NAME-erofs.img and
	 * their initrds; naming a root image (or its initrd) picks that one. */
	static const struct {
		const char *suffix, *root;
	} members[] = {
	    {"-squashfs-initrd.img", "squashfs"},
	    {"-erofs-initrd.img", "erofs"},
	    {"-squashfs.img", "squashfs"},
	    {"-erofs.img", "erofs"},
	    {"-kernel", NULL},
	    {"-initrd.img", NULL},
	    {"-cmdline", NULL},
	};
	for (size_t i = 0; force == QEMU_BOOT_AUTO && i < ARRAY_SIZE(members); i++) {
		if (!str_has_suffix(path, members[i].suffix))
			continue;
		cleanup_free char *prefix =
		    xstrndup(path, strlen(path) - strlen(members[i].suffix));
		cleanup_free char *kernel = xasprintf("%s-kernel", prefix);
		if (!is_regular(kernel))
			break;
		if (detect_prefix(prefix, force, members[i].root, out, err) < 0) {
			qemu_target_release(out);
			return -1;
		}
		return 0;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return kiln_error_make(err, errno, "`%s`", path);
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return kiln_error_make(err, 0, "`%s` is not a regular file", path);
	out->image = xstrdup(path);
	out->name = strip_extension(path);
	out->uefi = name_says_efi(path);
	if (force == QEMU_BOOT_ISO || (force == QEMU_BOOT_AUTO && str_has_suffix(path, ".iso"))) {
		out->kind = QEMU_BOOT_ISO;
		return 0;
	}
	if (force == QEMU_BOOT_UKI || (force == QEMU_BOOT_AUTO && str_has_suffix(path, ".efi"))) {
		out->kind = QEMU_BOOT_UKI;
		out->uefi = true;
		return 0;
	}
	const char *fmt = qemu_disk_format(path, err);
	if (fmt == NULL) {
		qemu_target_release(out);
		return -1;
	}
	out->kind = QEMU_BOOT_DISK;
	out->disk_format = xstrdup(fmt);
	return 0;
}

/* ---- option grammars ---- */

void qemu_disk_release(struct qemu_disk *d)
{
	free(d->path);
	free(d->format);
	free(d->interface);
	memset(d, 0, sizeof *d);
}

static int parse_size_mb(const char *s, uint64_t *mb, struct kiln_error **err)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return kiln_error_make(err, 0, "bad size `%s`", s);
	uint64_t mult = 1024; /* LinuxKit: a bare number is GB */
	if (*end == 'M' || *end == 'm')
		mult = 1, end++;
	else if (*end == 'G' || *end == 'g')
		mult = 1024, end++;
	else if (*end == 'T' || *end == 't')
		mult = 1024 * 1024, end++;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || v == 0 || v > UINT64_MAX / mult)
		return kiln_error_make(err, 0, "bad size `%s` (e.g. 512M, 4G)", s);
	*mb = v * mult;
	return 0;
}

int qemu_parse_disk(const char *spec, struct qemu_disk *out, struct kiln_error **err)
{
	memset(out, 0, sizeof *out);
	cleanup_free char *copy = xstrdup(spec);
	char *save = NULL;
	bool first = true;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL) {
			if (!first || out->path) {
				qemu_disk_release(out);
				return kiln_error_make(err, 0, "--disk `%s`: `%s` is not KEY=VALUE",
						       spec, tok);
			}
			out->path = xstrdup(tok);
		} else {
			*eq = '\0';
			const char *v = eq + 1;
			if (strcmp(tok, "file") == 0 && !out->path && *v)
				out->path = xstrdup(v);
			else if (strcmp(tok, "size") == 0) {
				if (parse_size_mb(v, &out->size_mb, err) < 0) {
					qemu_disk_release(out);
					return kiln_error_wrap(err, "--disk `%s`", spec);
				}
			} else if (strcmp(tok, "format") == 0 && *v && !out->format)
				out->format = xstrdup(v);
			else if (strcmp(tok, "if") == 0 && *v && !out->interface)
				out->interface = xstrdup(v);
			else {
				qemu_disk_release(out);
				return kiln_error_make(err, 0,
						       "--disk `%s`: unknown or repeated key `%s` "
						       "(file, size, format, if)",
						       spec, tok);
			}
		}
		first = false;
	}
	if (out->path == NULL && out->size_mb == 0) {
		qemu_disk_release(out);
		return kiln_error_make(err, 0, "--disk `%s`: give a file, a size or both", spec);
	}
	return 0;
}

static int parse_port(const char *s, size_t len, unsigned *port)
{
	if (len == 0 || len > 5)
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

int qemu_parse_publish(const char *spec, struct qemu_publish *out, struct kiln_error **err)
{
	memset(out, 0, sizeof *out);
	const char *end = spec + strlen(spec);
	const char *slash = strchr(spec, '/');
	if (slash) {
		if (strcmp(slash, "/udp") == 0)
			out->udp = true;
		else if (strcmp(slash, "/tcp") != 0)
			return kiln_error_make(err, 0,
					       "--publish `%s`: protocol must be tcp or udp", spec);
		end = slash;
	}
	const char *colon = memrchr(spec, ':', (size_t)(end - spec));
	if (colon == NULL)
		return kiln_error_make(err, 0, "--publish `%s`: expected HOST:GUEST[/tcp|udp]",
				       spec);
	const char *host = spec;
	const char *hcolon = memrchr(spec, ':', (size_t)(colon - spec));
	if (hcolon)
		host = hcolon + 1; /* an address before the host port is accepted and ignored */
	if (parse_port(host, (size_t)(colon - host), &out->host_port) < 0 ||
	    parse_port(colon + 1, (size_t)(end - colon - 1), &out->guest_port) < 0)
		return kiln_error_make(err, 0, "--publish `%s`: ports must be 1-65535", spec);
	return 0;
}

void qemu_net_release(struct qemu_net *n)
{
	free(n->addr);
	memset(n, 0, sizeof *n);
}

/* [HOST:]PORT, host defaulting to DEFAULT_HOST; returns "HOST:PORT" (heap). */
static char *host_port(const char *s, const char *default_host)
{
	const char *colon = strrchr(s, ':');
	unsigned port;
	if (colon == NULL) {
		if (parse_port(s, strlen(s), &port) < 0)
			return NULL;
		return xasprintf("%s:%u", default_host, port);
	}
	if (parse_port(colon + 1, strlen(colon + 1), &port) < 0)
		return NULL;
	if (colon == s)
		return xasprintf("%s:%u", default_host, port);
	return xstrdup(s);
}

int qemu_parse_networking(const char *spec, struct qemu_net *out, struct kiln_error **err)
{
	memset(out, 0, sizeof *out);
	if (strcmp(spec, "user") == 0 || strcmp(spec, "default") == 0) {
		out->kind = QEMU_NET_USER;
		return 0;
	}
	if (strcmp(spec, "none") == 0) {
		out->kind = QEMU_NET_NONE;
		return 0;
	}
	struct {
		const char *prefix;
		enum qemu_net_kind kind;
		const char *default_host;
	} kinds[] = {
	    {"socket-listen=", QEMU_NET_LISTEN, "127.0.0.1"},
	    {"socket-connect=", QEMU_NET_CONNECT, "127.0.0.1"},
	    {"mcast=", QEMU_NET_MCAST, "230.0.0.1"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		if (!str_has_prefix(spec, kinds[i].prefix))
			continue;
		out->kind = kinds[i].kind;
		out->addr = host_port(spec + strlen(kinds[i].prefix), kinds[i].default_host);
		if (out->addr == NULL)
			return kiln_error_make(err, 0, "--networking `%s`: expected %s[HOST:]PORT",
					       spec, kinds[i].prefix);
		return 0;
	}
	return kiln_error_make(err, 0,
			       "--networking `%s`: expected user, none, socket-listen=[H:]PORT, "
			       "socket-connect=[H:]PORT or mcast=ADDR:PORT (tap and bridge need "
			       "root; kiln does not do them)",
			       spec);
}

/* ---- the command line ---- */

struct argv_builder {
	char **v;
	size_t n, cap;
};

static void argv_push(struct argv_builder *a, char *owned)
{
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		a->v = xrealloc(a->v, a->cap * sizeof *a->v);
	}
	a->v[a->n++] = owned;
	a->v[a->n] = NULL;
}

static void argv_add(struct argv_builder *a, const char *s)
{
	argv_push(a, xstrdup(s));
}

__attribute__((format(printf, 2, 3))) static void argv_addf(struct argv_builder *a, const char *fmt,
							    ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	argv_push(a, s);
}

void qemu_argv_free(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}

/* QEMU's -drive option syntax doubles commas inside values. */
static char *qemu_escape(const char *s)
{
	struct strbuf sb = STRBUF_INIT;
	for (; *s; s++) {
		strbuf_putc(&sb, *s);
		if (*s == ',')
			strbuf_putc(&sb, ',');
	}
	strbuf_putc(&sb, '\0');
	sb.len--;
	return strbuf_detach(&sb, NULL);
}

static void add_drive(struct argv_builder *a, const char *file, const char *format, int index,
		      const char *media, const char *interface, bool readonly)
{
	cleanup_free char *f = qemu_escape(file);
	struct strbuf sb = STRBUF_INIT;
	argv_add(a, "-drive");
	strbuf_printf(&sb, "file=%s,format=%s,index=%d,media=%s", f, format, index, media);
	if (interface)
		strbuf_printf(&sb, ",if=%s", interface);
	if (readonly)
		strbuf_puts(&sb, ",readonly=on");
	argv_push(a, strbuf_detach(&sb, NULL));
}

char **qemu_build_argv(const struct qemu_config *cfg, struct kiln_error **err)
{
	const struct qemu_target *t = cfg->target;
	if (t == NULL || t->kind == QEMU_BOOT_AUTO)
		return kiln_error_make(err, 0, "no boot target"), NULL;
	bool uefi = cfg->uefi || t->uefi;
	if (uefi && cfg->fw == NULL)
		return kiln_error_make(err, 0, "UEFI boot without firmware"), NULL;
	if (t->kind == QEMU_BOOT_UKI && cfg->esp_image == NULL)
		return kiln_error_make(err, 0, "UKI boot without an ESP image"), NULL;

	struct argv_builder a = {0};
	argv_add(&a, cfg->qemu_bin ? cfg->qemu_bin : "qemu-system-x86_64");
	argv_add(&a, "-smp");
	argv_addf(&a, "%u", cfg->cpus ? cfg->cpus : 1);
	argv_add(&a, "-m");
	argv_addf(&a, "%u", cfg->mem_mb ? cfg->mem_mb : 1024);
	if (cfg->uuid) {
		argv_add(&a, "-uuid");
		argv_add(&a, cfg->uuid);
	}
	if (cfg->pidfile) {
		argv_add(&a, "-pidfile");
		argv_add(&a, cfg->pidfile);
	}
	argv_add(&a, "-machine");
	argv_addf(&a, "q35,accel=%s", cfg->accel ? cfg->accel : "tcg");
	/* Under KVM the host's CPU model (QEMU's default, qemu64, hides
	 * SSE4.2, AVX, AES-NI...: images built for x86-64-v2 and later would
	 * not run); under TCG qemu64 stays, the fastest model to emulate. */
	if (cfg->accel && strcmp(cfg->accel, "kvm") == 0) {
		argv_add(&a, "-cpu");
		argv_add(&a, "host");
	}
	argv_add(&a, "-object");
	argv_add(&a, "rng-random,id=rng0,filename=/dev/urandom");
	argv_add(&a, "-device");
	argv_add(&a, "virtio-rng-pci,rng=rng0");
	if (uefi) {
		cleanup_free char *code = qemu_escape(cfg->fw);
		argv_add(&a, "-drive");
		if (cfg->fw_vars) {
			cleanup_free char *vars = qemu_escape(cfg->fw_vars);
			argv_addf(&a, "if=pflash,format=raw,unit=0,readonly=on,file=%s", code);
			argv_add(&a, "-drive");
			argv_addf(&a, "if=pflash,format=raw,unit=1,file=%s", vars);
		} else {
			argv_addf(&a, "if=pflash,format=raw,unit=0,file=%s", code);
		}
	}

	/* Disks: index 2 is the CD-ROM when booting an ISO (LinuxKit's hdc). */
	bool iso = t->kind == QEMU_BOOT_ISO;
	int index = 0;
#define NEXT_INDEX() (iso && index == 2 ? (index = 3, index++) : index++)
	if (t->kind == QEMU_BOOT_DISK)
		add_drive(&a, t->image, t->disk_format ? t->disk_format : "raw", NEXT_INDEX(),
			  "disk", NULL, false);
	else if (t->kind == QEMU_BOOT_SQUASHFS)
		add_drive(&a, t->rootfs, "raw", NEXT_INDEX(), "disk", NULL, false);
	else if (t->kind == QEMU_BOOT_UKI)
		add_drive(&a, cfg->esp_image, "raw", NEXT_INDEX(), "disk", NULL, false);
	for (size_t i = 0; i < cfg->n_disks; i++) {
		const struct qemu_disk *d = &cfg->disks[i];
		if (d->path == NULL) {
			qemu_argv_free(a.v);
			return kiln_error_make(err, 0, "disk %zu has no file (not prepared)", i),
			       NULL;
		}
		add_drive(&a, d->path, d->format ? d->format : "raw", NEXT_INDEX(), "disk",
			  d->interface, false);
	}
	if (iso) {
		cleanup_free char *f = qemu_escape(t->image);
		argv_add(&a, "-drive");
		argv_addf(&a, "file=%s,format=raw,index=2,media=cdrom,readonly=on", f);
		argv_add(&a, "-boot");
		argv_add(&a, "d");
	}
	for (size_t i = 0; i < cfg->n_cdroms; i++)
		add_drive(&a, cfg->cdroms[i], "raw", NEXT_INDEX(), "cdrom", NULL, true);
#undef NEXT_INDEX
	if (index > 6) {
		qemu_argv_free(a.v);
		return kiln_error_make(err, 0,
				       "%d drives: the q35 AHCI controller has 6 ports (use "
				       "if=virtio for more disks)",
				       index),
		       NULL;
	}

	if (t->kind == QEMU_BOOT_KERNEL || t->kind == QEMU_BOOT_SQUASHFS) {
		argv_add(&a, "-kernel");
		argv_add(&a, t->kernel);
		if (t->initrd) {
			argv_add(&a, "-initrd");
			argv_add(&a, t->initrd);
		}
		struct strbuf sb = STRBUF_INIT;
		strbuf_puts(&sb, t->cmdline ? t->cmdline : "console=ttyS0");
		if (t->kind == QEMU_BOOT_SQUASHFS && !initrd_finds_root(t))
			strbuf_puts(&sb, " root=/dev/sda");
		if (cfg->cmdline_append && *cfg->cmdline_append)
			strbuf_printf(&sb, " %s", cfg->cmdline_append);
		argv_add(&a, "-append");
		argv_push(&a, strbuf_detach(&sb, NULL));
	}

	/* Networking: one NIC per --networking (default: one user NIC). */
	struct qemu_net user_default = {QEMU_NET_USER, NULL};
	const struct qemu_net *nets = cfg->n_nets ? cfg->nets : &user_default;
	size_t n_nets = cfg->n_nets ? cfg->n_nets : 1;
	bool published = false;
	for (size_t i = 0; i < n_nets; i++) {
		const struct qemu_net *n = &nets[i];
		if (n->kind == QEMU_NET_NONE) {
			if (n_nets > 1) {
				qemu_argv_free(a.v);
				return kiln_error_make(err, 0,
						       "--networking none cannot be combined with "
						       "other networks"),
				       NULL;
			}
			argv_add(&a, "-nic");
			argv_add(&a, "none");
			break;
		}
		struct strbuf sb = STRBUF_INIT;
		switch (n->kind) {
		case QEMU_NET_USER:
			strbuf_printf(&sb, "user,id=net%zu", i);
			if (!published) {
				for (size_t p = 0; p < cfg->n_publish; p++)
					strbuf_printf(&sb, ",hostfwd=%s::%u-:%u",
						      cfg->publish[p].udp ? "udp" : "tcp",
						      cfg->publish[p].host_port,
						      cfg->publish[p].guest_port);
				published = true;
			}
			break;
		case QEMU_NET_LISTEN:
			strbuf_printf(&sb, "socket,id=net%zu,listen=%s", i, n->addr);
			break;
		case QEMU_NET_CONNECT:
			strbuf_printf(&sb, "socket,id=net%zu,connect=%s", i, n->addr);
			break;
		case QEMU_NET_MCAST:
			strbuf_printf(&sb, "socket,id=net%zu,mcast=%s", i, n->addr);
			break;
		case QEMU_NET_NONE:
			break;
		}
		argv_add(&a, "-netdev");
		argv_push(&a, strbuf_detach(&sb, NULL));
		argv_add(&a, "-device");
		if (cfg->macs && cfg->macs[i])
			argv_addf(&a, "virtio-net-pci,netdev=net%zu,mac=%s", i, cfg->macs[i]);
		else
			argv_addf(&a, "virtio-net-pci,netdev=net%zu", i);
	}
	if (cfg->n_publish && !published) {
		qemu_argv_free(a.v);
		return kiln_error_make(err, 0, "--publish needs user networking"), NULL;
	}

	for (size_t i = 0; i < cfg->n_devices; i++) {
		argv_add(&a, "-device");
		argv_add(&a, cfg->devices[i]);
	}
	/* The serial console (and QEMU's monitor, ctrl-a c) on stdio, which kiln
	 * reads through a pty; ctrl-a x quits as usual. */
	if (!cfg->gui)
		argv_add(&a, "-nographic");
	argv_add(&a, "-serial");
	argv_add(&a, "mon:stdio");
	if (cfg->qmp_socket) {
		cleanup_free char *s = qemu_escape(cfg->qmp_socket);
		argv_add(&a, "-qmp");
		argv_addf(&a, "unix:%s,server=on,wait=off", s);
	}
	if (cfg->monitor_socket) {
		cleanup_free char *s = qemu_escape(cfg->monitor_socket);
		argv_add(&a, "-monitor");
		argv_addf(&a, "unix:%s,server=on,wait=off", s);
	}
	if (cfg->no_reboot)
		argv_add(&a, "-no-reboot");
	for (size_t i = 0; i < cfg->n_extra_args; i++)
		argv_add(&a, cfg->extra_args[i]);
	return a.v;
}

/* ---- state ---- */

char *qemu_random_mac(void)
{
	unsigned char m[6];
	if (getrandom(m, sizeof m, 0) != (ssize_t)sizeof m) {
		/* getrandom on 6 bytes does not fail after boot; fall back anyway. */
		unsigned long r = (unsigned long)getpid() ^ (unsigned long)time(NULL);
		for (size_t i = 0; i < sizeof m; i++)
			m[i] = (unsigned char)(r >> (i * 5));
	}
	m[0] = (unsigned char)((m[0] & 0xfc) | 0x02); /* unicast, locally administered */
	return xasprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static bool mac_valid(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

char *qemu_state_mac(const char *state_dir, const char *file, bool dry_run, struct kiln_error **err)
{
	cleanup_free char *path = path_join(state_dir, file);
	if (is_regular(path)) {
		size_t len;
		cleanup_free char *c = read_file(path, 256, &len, err);
		if (c == NULL)
			return NULL;
		while (len > 0 && isspace((unsigned char)c[len - 1]))
			c[--len] = '\0';
		if (mac_valid(c))
			return steal_pointer(&c);
		return kiln_error_make(err, 0, "`%s`: not a MAC address", path), NULL;
	}
	cleanup_free char *mac = qemu_random_mac();
	if (dry_run)
		return steal_pointer(&mac);
	cleanup_free char *line = xasprintf("%s\n", mac);
	if (write_file_atomic(path, line, strlen(line), 0644, err) < 0)
		return NULL;
	return steal_pointer(&mac);
}

int qemu_disk_prepare(struct qemu_disk *disk, const char *state_dir, size_t index, bool dry_run,
		      struct kiln_error **err)
{
	if (disk->path == NULL)
		disk->path = index == 0 ? path_join(state_dir, "disk.img")
					: xasprintf("%s/disk%zu.img", state_dir, index);
	if (access(disk->path, F_OK) == 0) {
		if (disk->format == NULL) {
			const char *f = qemu_disk_format(disk->path, err);
			if (f == NULL)
				return -1;
			disk->format = xstrdup(f);
		}
		return 0;
	}
	if (disk->size_mb == 0)
		return kiln_error_make(err, 0, "disk `%s` does not exist and has no size",
				       disk->path);
	if (disk->format == NULL)
		disk->format = xstrdup("qcow2");
	if (dry_run)
		return 0;
	cleanup_free char *size = xasprintf("%" PRIu64 "M", disk->size_mb);
	const char *argv[] = {"qemu-img",   "create",	"-q", "-f",
			      disk->format, disk->path, size, NULL};
	if (qemu_tool_run(argv, err) < 0)
		return kiln_error_wrap(err, "create disk `%s`", disk->path);
	return 0;
}

char *qemu_make_overlay(const char *image, const char *format, const char *state_dir, bool dry_run,
			struct kiln_error **err)
{
	cleanup_free char *overlay = path_join(state_dir, "boot-overlay.qcow2");
	if (dry_run || access(overlay, F_OK) == 0)
		return steal_pointer(&overlay);
	/* The backing path is stored in the overlay: make it absolute. */
	cleanup_free char *abs = realpath(image, NULL);
	if (abs == NULL)
		return kiln_error_make(err, errno, "`%s`", image), NULL;
	cleanup_free char *tmp = path_join(state_dir, "boot-overlay.qcow2.tmp");
	unlink(tmp);
	const char *argv[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F",
			      format,	  "-b",	    abs,  tmp,	NULL};
	if (qemu_tool_run(argv, err) < 0) {
		unlink(tmp);
		return kiln_error_wrap(err, "overlay for `%s`", image), NULL;
	}
	if (rename(tmp, overlay) < 0) {
		unlink(tmp);
		return kiln_error_make(err, errno, "rename to `%s`", overlay), NULL;
	}
	return steal_pointer(&overlay);
}

char *qemu_make_esp(const char *uki, const char *state_dir, bool dry_run, struct kiln_error **err)
{
	struct stat st;
	if (stat(uki, &st) < 0)
		return kiln_error_make(err, errno, "`%s`", uki), NULL;
	cleanup_free char *esp = path_join(state_dir, "esp.img");
	if (dry_run)
		return steal_pointer(&esp);
	cleanup_free char *tmp = path_join(state_dir, "esp.img.tmp");
	unlink(tmp);
	/* The UKI, FAT overhead and some slack, in KiB, at least 34 MiB so
	 * mkfs.fat makes FAT32 as the UEFI spec asks of an ESP. */
	uint64_t kib = (uint64_t)st.st_size / 1024 * 11 / 10 + 4096;
	if (kib < 34 * 1024)
		kib = 34 * 1024;
	cleanup_free char *blocks = xasprintf("%" PRIu64, kib);
	const char *mkfs[] = {"mkfs.fat", "-C", "-F", "32", "-n", "KILN-ESP", tmp, blocks, NULL};
	const char *mmd[] = {"mmd", "-i", tmp, "::EFI", "::EFI/BOOT", NULL};
	const char *mcopy[] = {"mcopy", "-i", tmp, uki, "::EFI/BOOT/BOOTX64.EFI", NULL};
	if (qemu_tool_run(mkfs, err) < 0 || qemu_tool_run(mmd, err) < 0 ||
	    qemu_tool_run(mcopy, err) < 0) {
		unlink(tmp);
		return kiln_error_wrap(err, "make an ESP for `%s`", uki), NULL;
	}
	if (rename(tmp, esp) < 0) {
		unlink(tmp);
		return kiln_error_make(err, errno, "rename to `%s`", esp), NULL;
	}
	return steal_pointer(&esp);
}

static int copy_once(const char *src, const char *dst, bool dry_run, struct kiln_error **err)
{
	if (dry_run || access(dst, F_OK) == 0)
		return 0;
	size_t len;
	cleanup_free char *data = read_file(src, 256u << 20, &len, err);
	if (data == NULL)
		return -1;
	return write_file_atomic(dst, data, len, 0644, err);
}

int qemu_firmware_prepare(const char *fw, const char *fw_vars, const char *state_dir, bool dry_run,
			  char **code_out, char **vars_out, struct kiln_error **err)
{
	*code_out = *vars_out = NULL;
	if (fw == NULL) {
		static const char *const split[][2] = {
		    {"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
		    {"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
		};
		for (size_t i = 0; i < ARRAY_SIZE(split); i++) {
			if (is_regular(split[i][0]) && is_regular(split[i][1])) {
				fw = split[i][0];
				fw_vars = split[i][1];
				break;
			}
		}
		if (fw == NULL)
			fw = "/usr/share/ovmf/OVMF.fd";
	}
	if (!is_regular(fw))
		return kiln_error_make(
		    err, 0, "UEFI firmware `%s` not found (install ovmf or give --fw)", fw);
	if (fw_vars) {
		cleanup_free char *vars = path_join(state_dir, "OVMF_VARS.fd");
		if (copy_once(fw_vars, vars, dry_run, err) < 0)
			return kiln_error_wrap(err, "UEFI variables");
		*code_out = xstrdup(fw);
		*vars_out = steal_pointer(&vars);
		return 0;
	}
	cleanup_free char *copy = path_join(state_dir, "fw.fd");
	if (copy_once(fw, copy, dry_run, err) < 0)
		return kiln_error_wrap(err, "UEFI firmware");
	*code_out = steal_pointer(&copy);
	return 0;
}
