/* The system setup LinuxKit's /init and rc.init do: leave the RAM root, mount
 * the kernel filesystems, device nodes, hostname, rlimits, resolv.conf,
 * /etc/init.d. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#define NEWROOT "/.kiln-newroot"

/* ---- moving a RAM root to tmpfs ---- */

struct hardlink {
	dev_t dev;
	ino_t ino;
	char *path;
};

struct mover {
	struct hardlink *links;
	size_t nlinks;
	dev_t root_dev;
};

static int copy_file(int sfd, int dfd, struct kiln_error **err)
{
	char buf[65536];
	for (;;) {
		ssize_t n = read(sfd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_make(err, errno, "read");
		if (n == 0)
			return 0;
		if (write_all(dfd, buf, (size_t)n, err) < 0)
			return -1;
	}
}

static int move_entry(struct mover *mv, const char *src, const char *dst, const char *name,
		      struct kiln_error **err);

/* Moves the contents of directory SRC to DST (which exists), entry by entry,
 * deleting each source as soon as it is copied so the peak RAM stays low. */
static int move_tree(struct mover *mv, const char *src, const char *dst, struct kiln_error **err)
{
	/* The names are read first: entries are deleted as they are moved. */
	struct dirent **names;
	int count = scandir(src, &names, NULL, NULL);
	if (count < 0)
		return kiln_error_make(err, errno, "open `%s`", src);
	int rc = 0;
	for (int i = 0; i < count && rc == 0; i++)
		rc = move_entry(mv, src, dst, names[i]->d_name, err);
	for (int i = 0; i < count; i++)
		free(names[i]);
	free(names);
	return rc;
}

static int move_entry(struct mover *mv, const char *src, const char *dst, const char *name,
		      struct kiln_error **err)
{
	{
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			return 0;
		cleanup_free char *s = path_join(src, name);
		cleanup_free char *t = path_join(dst, name);
		if (strcmp(s, NEWROOT) == 0)
			return 0;
		struct stat st;
		if (lstat(s, &st) < 0)
			return kiln_error_make(err, errno, "stat `%s`", s);
		if (st.st_dev != mv->root_dev)
			return 0; /* a mount point's contents are not ours to move */
		if (S_ISDIR(st.st_mode)) {
			if (mkdir(t, st.st_mode & 07777) < 0 && errno != EEXIST)
				return kiln_error_make(err, errno, "mkdir `%s`", t);
			if (move_tree(mv, s, t, err) < 0)
				return -1;
			if (lchown(t, st.st_uid, st.st_gid) < 0 || chmod(t, st.st_mode & 07777) < 0)
				return kiln_error_make(err, errno, "chown `%s`", t);
			rmdir(s);
			return 0;
		}
		if (S_ISREG(st.st_mode) && st.st_nlink > 1) {
			bool done = false;
			for (size_t i = 0; i < mv->nlinks; i++)
				if (mv->links[i].dev == st.st_dev &&
				    mv->links[i].ino == st.st_ino) {
					if (link(mv->links[i].path, t) < 0)
						return kiln_error_make(err, errno, "link `%s`", t);
					done = true;
				}
			if (done) {
				unlink(s);
				return 0;
			}
			mv->links = xrealloc(mv->links, (mv->nlinks + 1) * sizeof *mv->links);
			mv->links[mv->nlinks++] =
			    (struct hardlink){st.st_dev, st.st_ino, xstrdup(t)};
		}
		if (S_ISREG(st.st_mode)) {
			cleanup_close int sfd = open(s, O_RDONLY | O_CLOEXEC);
			cleanup_close int dfd =
			    open(t, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
			if (sfd < 0 || dfd < 0)
				return kiln_error_make(err, errno, "copy `%s`", s);
			if (copy_file(sfd, dfd, err) < 0)
				return kiln_error_wrap(err, "copy `%s`", s);
			if (fchown(dfd, st.st_uid, st.st_gid) < 0 ||
			    fchmod(dfd, st.st_mode & 07777) < 0)
				return kiln_error_make(err, errno, "chown `%s`", t);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlink(s, target, sizeof target - 1);
			if (n < 0)
				return kiln_error_make(err, errno, "readlink `%s`", s);
			target[n] = '\0';
			if (symlink(target, t) < 0)
				return kiln_error_make(err, errno, "symlink `%s`", t);
			if (lchown(t, st.st_uid, st.st_gid) < 0) {
				/* not fatal */
			}
		} else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
			if (mknod(t, st.st_mode, st.st_rdev) < 0)
				return kiln_error_make(err, errno, "mknod `%s`", t);
			if (lchown(t, st.st_uid, st.st_gid) < 0) {
				/* not fatal */
			}
		} else {
			return 0; /* sockets cannot be moved: leave them */
		}
		unlink(s);
	}
	return 0;
}

/* The kernel command line, read before /proc is mounted for good. */
static char *early_cmdline(void)
{
	mkdir("/proc", 0555);
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return xstrdup("");
	char *c = read_file("/proc/cmdline", 8192, NULL, NULL);
	umount2("/proc", MNT_DETACH);
	return c ? c : xstrdup("");
}

int system_switch_root_if_ram(char **argv, struct kiln_error **err)
{
	struct statfs sf;
	if (getenv("KILN_INIT_MOVED") || statfs("/", &sf) < 0)
		return 0;
	if (sf.f_type != RAMFS_MAGIC && sf.f_type != TMPFS_MAGIC)
		return 0;
	double t0 = init_uptime();
	cleanup_free char *cmdline = early_cmdline();
	/* By default a bind mount of the RAM root is put over itself: the root is
	 * then a mount with a parent, which is all pivot_root(2) asks, nothing is
	 * copied (a second saved under emulation for 70 MB) and the memory use is
	 * the same.  kiln.copyroot=1 copies to a fresh tmpfs as LinuxKit's /init
	 * does, freeing each file of the RAM root as it goes. */
	bool bind = strstr(cmdline, "kiln.copyroot=1") == NULL;
	struct stat st;
	if (stat("/", &st) < 0)
		return kiln_error_make(err, errno, "stat /");
	if (mkdir(NEWROOT, 0755) < 0 && errno != EEXIST)
		return kiln_error_make(err, errno, "mkdir %s", NEWROOT);
	if (bind) {
		if (mount("/", NEWROOT, NULL, MS_BIND | MS_REC, NULL) < 0)
			return kiln_error_make(err, errno, "bind / on %s", NEWROOT);
	} else {
		if (mount("rootfs", NEWROOT, "tmpfs", 0, "mode=755") < 0)
			return kiln_error_make(err, errno, "mount tmpfs on %s", NEWROOT);
		struct mover mv = {NULL, 0, st.st_dev};
		int r = move_tree(&mv, "/", NEWROOT, err);
		for (size_t i = 0; i < mv.nlinks; i++)
			free(mv.links[i].path);
		free(mv.links);
		if (r < 0)
			return kiln_error_wrap(err, "move the RAM root to tmpfs");
	}
	if (chdir(NEWROOT) < 0 || mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 ||
	    chdir("/") < 0)
		return kiln_error_make(err, errno, "switch to the new root");
	if (bind)
		rmdir(NEWROOT); /* the directory left in the RAM root under the bind */
	init_log("%s the root from RAM to tmpfs in %.3f s", bind ? "bound" : "moved",
		 init_uptime() - t0);
	setenv("KILN_INIT_MOVED", "1", 1);
	const char *self = access(argv[0], X_OK) == 0 ? argv[0] : "/sbin/init";
	execv(self, argv);
	return kiln_error_make(err, errno, "re-exec %s", self);
}

/* ---- mounts ---- */

int system_mount(const char *source, const char *target, const char *type, unsigned long flags,
		 const char *data)
{
	if (mount(source, target, type, flags, data) == 0)
		return 0;
	if (errno != ENODEV || type == NULL)
		return -1;
	/* The filesystem may be a module (overlay on Debian): fs-TYPE. */
	int saved = errno;
	cleanup_free char *alias = xasprintf("fs-%s", type);
	struct kiln_error *err = NULL;
	if (modules_load(NULL, alias, &err) < 0) {
		kiln_error_release(&err);
		errno = saved;
		return -1;
	}
	return mount(source, target, type, flags, data);
}

static void mount_or_warn(const char *src, const char *target, const char *type,
			  unsigned long flags, const char *data, bool optional)
{
	mkdir(target, 0755);
	if (system_mount(src, target, type, flags, data) < 0 && !optional && errno != EBUSY)
		init_log("warning: mount %s on %s: %s", type, target, strerror(errno));
}

static void enable_cgroup_controllers(void)
{
	cleanup_free char *ctrls = read_file("/sys/fs/cgroup/cgroup.controllers", 4096, NULL, NULL);
	if (ctrls == NULL)
		return;
	int fd = open("/sys/fs/cgroup/cgroup.subtree_control", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (char *tok = strtok(ctrls, " \n"); tok; tok = strtok(NULL, " \n")) {
		char buf[64];
		int n = snprintf(buf, sizeof buf, "+%s", tok);
		if (write(fd, buf, (size_t)n) < 0)
			init_debug_log("cgroup controller %s not enabled: %s", tok,
				       strerror(errno));
	}
	close(fd);
	/* The first cgroup below the root turns the kernel's memcg accounting on
	 * (a static key: the code of the page allocator is patched on the fly).
	 * Under QEMU's TCG with two or more vCPUs, that patching while another
	 * CPU runs the allocator can hang both (soft lockups in __alloc_pages,
	 * seen when runc made its first cgroup beside containerd starting).  So
	 * it happens here, once, while init is the only thing running. */
	if (mkdir("/sys/fs/cgroup/kiln-first", 0755) == 0)
		rmdir("/sys/fs/cgroup/kiln-first");
}

int system_mount_all(void)
{
	const unsigned long common = MS_NODEV | MS_NOSUID | MS_NOEXEC;
	mount_or_warn("proc", "/proc", "proc", common | MS_RELATIME, NULL, false);
	mount_or_warn("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC,
		      "size=10m,nr_inodes=248418,mode=755", false);
	/* rc.init's nodes (devtmpfs usually has them already). */
	static const struct {
		const char *path;
		mode_t mode;
		int major, minor;
	} nodes[] = {
	    {"/dev/console", 0600, 5, 1}, {"/dev/tty1", 0620, 4, 1},  {"/dev/tty", 0666, 5, 0},
	    {"/dev/null", 0666, 1, 3},	  {"/dev/kmsg", 0660, 1, 11},
	};
	for (size_t i = 0; i < ARRAY_SIZE(nodes); i++)
		if (mknod(nodes[i].path, S_IFCHR | nodes[i].mode,
			  makedev(nodes[i].major, nodes[i].minor)) < 0 &&
		    errno != EEXIST)
			init_log("warning: mknod %s: %s", nodes[i].path, strerror(errno));
	static const char *const links[][2] = {
	    {"/proc/self/fd", "/dev/fd"},	{"/proc/self/fd/0", "/dev/stdin"},
	    {"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	    {"/proc/kcore", "/dev/kcore"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlink(links[i][0], links[i][1]) < 0 && errno != EEXIST)
			init_log("warning: symlink %s: %s", links[i][1], strerror(errno));
	mount_or_warn("mqueue", "/dev/mqueue", "mqueue", common, NULL, true);
	mount_or_warn("shm", "/dev/shm", "tmpfs", common, "mode=1777", false);
	mount_or_warn("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		      "gid=5,mode=0620,ptmxmode=0666", false);
	mount_or_warn("sysfs", "/sys", "sysfs", common, NULL, false);
	mount_or_warn("tmpfs", "/run", "tmpfs", common, "size=10%,mode=755", false);
	mount_or_warn("tmpfs", "/tmp", "tmpfs", common, "size=10%,mode=1777", false);
	mount_or_warn("tmpfs", "/var", "tmpfs", common, "size=50%,mode=755", false);
	static const struct {
		const char *dir;
		mode_t mode;
	} var_dirs[] = {
	    {"/var/cache", 0755}, {"/var/empty", 0555}, {"/var/lib", 0755},
	    {"/var/local", 0755}, {"/var/lock", 0755},	{"/var/log", 0755},
	    {"/var/opt", 0755},	  {"/var/spool", 0755}, {"/var/tmp", 01777},
	};
	for (size_t i = 0; i < ARRAY_SIZE(var_dirs); i++) {
		mkdir(var_dirs[i].dir, var_dirs[i].mode);
		chmod(var_dirs[i].dir, var_dirs[i].mode);
	}
	if (symlink("/run", "/var/run") < 0 && errno != EEXIST)
		init_log("warning: symlink /var/run: %s", strerror(errno));
	static const char *const optional[][3] = {
	    {"securityfs", "/sys/kernel/security", "securityfs"},
	    {"debugfs", "/sys/kernel/debug", "debugfs"},
	    {"configfs", "/sys/kernel/config", "configfs"},
	    {"fusectl", "/sys/fs/fuse/connections", "fusectl"},
	    {"selinuxfs", "/sys/fs/selinux", "selinuxfs"},
	    {"pstore", "/sys/fs/pstore", "pstore"},
	    {"bpffs", "/sys/fs/bpf", "bpf"},
	    {"efivarfs", "/sys/firmware/efi/efivars", "efivarfs"},
	    {"binfmt_misc", "/proc/sys/fs/binfmt_misc", "binfmt_misc"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(optional); i++) {
		struct stat st;
		/* Only where the kernel made the mount point: no mkdir in sysfs. */
		if (stat(optional[i][1], &st) == 0 &&
		    mount(optional[i][0], optional[i][1], optional[i][2], common, NULL) < 0)
			init_debug_log("optional %s not mounted: %s", optional[i][2],
				       strerror(errno));
	}
	mount_or_warn("cgroup2", "/sys/fs/cgroup", "cgroup2", common | MS_RELATIME, NULL, false);
	enable_cgroup_controllers();
	if (mount(NULL, "/", NULL, MS_SHARED | MS_REC, NULL) < 0)
		init_log("warning: make / rshared: %s", strerror(errno));
	return 0;
}

/* ---- hostname, rlimits, resolv.conf, init.d ---- */

void system_set_hostname(void)
{
	cleanup_free char *name = read_file("/etc/hostname", 256, NULL, NULL);
	if (name)
		name[strcspn(name, " \t\r\n")] = '\0';
	if (name == NULL || *name == '\0') {
		free(name);
		cleanup_free char *mac = net_first_mac();
		name = mac ? xasprintf("kiln-%s", mac) : xstrdup("kiln");
	}
	if (sethostname(name, strlen(name)) < 0)
		init_log("warning: sethostname %s: %s", name, strerror(errno));
	else
		init_log("hostname %s", name);
}

/* Without CAP_SYS_RESOURCE (a container's default) the hard limit cannot be
 * raised: the soft one goes up to it. */
static void raise_rlimit(int resource, const char *name, rlim_t value)
{
	struct rlimit r = {value, value};
	if (setrlimit(resource, &r) == 0)
		return;
	int saved = errno;
	if (saved == EPERM && getrlimit(resource, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		if (setrlimit(resource, &r) == 0) {
			init_debug_log("%s: hard limit kept (%s), soft raised to it", name,
				       strerror(saved));
			return;
		}
	}
	init_log("warning: %s: %s", name, strerror(saved));
}

void system_set_rlimits(void)
{
	raise_rlimit(RLIMIT_NOFILE, "RLIMIT_NOFILE", 1048576);
	raise_rlimit(RLIMIT_NPROC, "RLIMIT_NPROC", RLIM_INFINITY);
}

void system_resolv_conf(void)
{
	char target[4096];
	ssize_t n = readlink("/etc/resolv.conf", target, sizeof target - 1);
	if (n <= 0)
		return;
	target[n] = '\0';
	cleanup_free char *abs = target[0] == '/' ? xstrdup(target) : path_join("/etc", target);
	cleanup_free char *dir = xstrdup(abs);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		mkdir_p(dir, 0755, NULL);
	}
	int fd = open(abs, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static int dirent_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

void system_run_initd(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, dirent_cmp);
	if (n < 0)
		return;
	for (int i = 0; i < n; i++) {
		cleanup_free char *path = path_join(dir, names[i]->d_name);
		struct stat st;
		if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			init_log("running %s", path);
			char *argv[] = {path, NULL};
			struct kiln_error *err = NULL;
			pid_t pid = spawn(argv, -1, -1, &err);
			if (pid < 0) {
				init_log_error(&err, path);
			} else {
				int status = wait_for(pid);
				if (status != 0)
					init_log("warning: %s exited with status %d", path,
						 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			}
		}
		free(names[i]);
	}
	free(names);
}

/* ---- waiting for TERM at shutdown ---- */

/* The value of "FIELD:\t…" in a /proc/PID/status text, or NULL. */
static const char *status_field(const char *status, const char *field)
{
	size_t n = strlen(field);
	for (const char *line = status; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			return line + n + 1 + strspn(line + n + 1, " \t");
	return NULL;
}

static bool status_mask_has(const char *status, const char *field, int sig)
{
	const char *v = status_field(status, field);
	return v && (strtoull(v, NULL, 16) >> (sig - 1)) & 1;
}

bool system_term_cannot_end(const char *status)
{
	const char *state = status_field(status, "State");
	if (state && (*state == 'Z' || *state == 'T' || *state == 't'))
		return true;
	if (status_mask_has(status, "SigIgn", SIGTERM))
		return true;
	/* NSpid lists the pid in each namespace, outermost first: ending in
	 * a 1 (after another) means the init of a nested PID namespace. */
	const char *nspid = status_field(status, "NSpid");
	if (nspid == NULL)
		return false;
	const char *end = nspid + strcspn(nspid, "\n");
	const char *last = end;
	while (last > nspid && last[-1] != ' ' && last[-1] != '\t')
		last--;
	bool nested_init = last > nspid && end - last == 1 && *last == '1';
	return nested_init && !status_mask_has(status, "SigCgt", SIGTERM);
}

/* Calls FN with the /proc/PID/status text of every process but PID 1 and
 * this one; sums what it returns. */
static int each_process(int (*fn)(long pid, const char *status, void *arg), void *arg)
{
	cleanup_dir DIR *d = opendir("/proc");
	if (d == NULL)
		return 0;
	int sum = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		char *endp;
		long pid = strtol(e->d_name, &endp, 10);
		if (*endp != '\0' || pid <= 1 || pid == getpid())
			continue;
		char path[64];
		snprintf(path, sizeof path, "/proc/%ld/status", pid);
		cleanup_free char *status = read_file(path, 16384, NULL, NULL);
		if (status)
			sum += fn(pid, status, arg); /* else gone */
	}
	return sum;
}

static int term_pending_one(long pid, const char *status, void *arg)
{
	const char *ppid = status_field(status, "PPid");
	if (pid == 2 || (ppid && atol(ppid) == 2))
		return 0; /* kernel threads */
	if (system_term_cannot_end(status))
		return 0;
	if (*(bool *)arg) {
		const char *name = status_field(status, "Name");
		init_debug_log("still running after TERM: %ld %.*s", pid,
			       name ? (int)strcspn(name, "\n") : 0, name ? name : "");
	}
	return 1;
}

int system_term_pending(bool log)
{
	return each_process(term_pending_one, &log);
}

static int signal_child_one(long pid, const char *status, void *arg)
{
	const char *ppid = status_field(status, "PPid");
	return ppid && atol(ppid) == getpid() && kill((pid_t)pid, *(int *)arg) == 0;
}

int system_signal_children(int sig)
{
	return each_process(signal_child_one, &sig);
}
