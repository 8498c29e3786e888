/* Children of init: spawning with a clean signal state, waiting while
 * adopting orphans, and the onboot/onshutdown runner over runc. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

void child_reset_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	for (int s = 1; s < NSIG; s++)
		signal(s, SIG_DFL);
	sigprocmask(SIG_SETMASK, &all, NULL);
}

int spawn_nice;

pid_t spawn(char *const *argv, int out_fd, int err_fd, struct kiln_error **err)
{
	pid_t pid = fork();
	if (pid < 0)
		return kiln_error_make(err, errno, "fork for %s", argv[0]);
	if (pid == 0) {
		child_reset_signals();
		if (spawn_nice)
			setpriority(PRIO_PROCESS, 0, spawn_nice);
		setsid();
		int null = open("/dev/null", O_RDWR);
		if (null >= 0)
			dup2(null, 0);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		if (err_fd >= 0)
			dup2(err_fd, 2);
		if (null > 2)
			close(null);
		execv(argv[0], argv);
		dprintf(2, "kiln-init: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

pid_t reaped_watch_pid;
int reaped_watch_status = -1;

void note_reaped(pid_t pid, int status)
{
	if (pid > 0 && pid == reaped_watch_pid) {
		reaped_watch_status = status;
		reaped_watch_pid = 0;
	}
}

int wait_for(pid_t pid)
{
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, 0);
		if (p == pid)
			return status;
		note_reaped(p, status);
		if (p < 0 && errno == ECHILD)
			return -1;
	}
}

/* crun refuses cgroup v1 and hybrid hierarchies ("cgroups in hybrid mode not
 * supported"), which runc handles: it is used only on a unified cgroup2
 * /sys/fs/cgroup, as init mounts it (a host where kiln-service runs for
 * tests may have another). */
static bool crun_usable(void)
{
	struct statfs fs;
	return access(OCI_CRUN, X_OK) == 0 && statfs("/sys/fs/cgroup", &fs) == 0 &&
	       fs.f_type == CGROUP2_SUPER_MAGIC;
}

const char *oci_runtime(void)
{
	return crun_usable() ? OCI_CRUN : OCI_RUNC;
}

const char *oci_runtime_for_shim(void)
{
	return crun_usable() ? OCI_CRUN : NULL;
}

/* ---- the runtimes' binaries, sealed in memory ----
 * Against CVE-2019-5736, `runc init` (and crun at every start) re-executes
 * itself from a copy the container cannot write unless /proc/self/exe is
 * already a memfd sealed against writes.  runc 1.1 first tries a read-only
 * bind of itself, but on a tmpfs root (a kernel+initrd boot) F_GET_SEALS
 * answers for the bound file, so it does not count: it binds again, which
 * fails on the detached mount, then copies its 8.7 MB into a memfd and
 * re-executes a third time, for every container.  runc's own memfd-bind
 * tool (contrib/cmd/memfd-bind) does what this does once per boot: the
 * runtime copied into a sealed memfd, bound over its path, which runc and
 * crun then take as already cloned.  The copy costs the runtime's size in
 * RAM, once, and a descriptor PID 1 keeps. */
#define RUNTIME_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

int runtime_seal(const char *path, struct kiln_error **err)
{
	char real[PATH_MAX], path_link[64], path_exe[64];
	const char *step = "resolve";
	struct stat st;
	cleanup_close int src = -1, mfd = -1, link = -1, exe = -1;
	if (realpath(path, real) == NULL)
		goto fail;
	step = "open";
	src = open(real, O_RDONLY | O_CLOEXEC);
	if (src < 0 || fstat(src, &st) < 0)
		goto fail;
	if (fcntl(src, F_GET_SEALS) == RUNTIME_SEALS)
		return 0; /* already sealed (a second init, kiln-service) */
	step = "copy into a memfd";
	mfd = memfd_create("kiln-sealed-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		goto fail;
	for (off_t done = 0; done < st.st_size;) {
		ssize_t n = sendfile(mfd, src, NULL, (size_t)(st.st_size - done));
		if (n <= 0 && !(n < 0 && errno == EINTR))
			goto fail; /* n == 0: the file shrank under us */
		done += n > 0 ? n : 0;
	}
	step = "seal";
	if (fchmod(mfd, st.st_mode & 0755) < 0 || fcntl(mfd, F_ADD_SEALS, RUNTIME_SEALS) < 0)
		goto fail;
	/* A memfd lives on the kernel's internal mount, which cannot be bound
	 * from; its /proc/self/fd link can, and resolves while init keeps the
	 * memfd open: it does, for good (PID 1 never exits). */
	step = "bind the sealed copy over";
	snprintf(path_link, sizeof path_link, "/proc/self/fd/%d", mfd);
	link = open(path_link, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	exe = open(real, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	snprintf(path_link, sizeof path_link, "/proc/self/fd/%d", link);
	snprintf(path_exe, sizeof path_exe, "/proc/self/fd/%d", exe);
	if (link < 0 || exe < 0 || mount(path_link, path_exe, NULL, MS_BIND, NULL) < 0)
		goto fail;
	mfd = -1; /* kept open: the bind resolves through it */
	return 0;
fail:
	return kiln_error_make(err, errno ? errno : EIO, "%s %s", step, path);
}

/* ---- the onboot runner ---- */

struct pump_stream {
	int fd;		/* read end, -1 when closed */
	int log_fd;	/* the log file */
	char line[512]; /* a partial line for the console */
	size_t len;
};

struct pump {
	struct pump_stream s[2]; /* stdout, stderr */
	const char *prefix;
	bool to_console;
	pid_t pids[3];
	int status[3];
	bool done[3];
};

static void pump_console_line(struct pump *p, const char *text, size_t len)
{
	char buf[700];
	int n = snprintf(buf, sizeof buf, "[%12.6f] %s: %.*s\n", init_uptime(), p->prefix, (int)len,
			 text);
	if (n > (int)sizeof buf)
		n = sizeof buf;
	if (write(init_log_fd, buf, (size_t)n) < 0) {
		/* console gone: the log file still has it */
	}
}

static void pump_data(struct pump *p, struct pump_stream *s, const char *data, size_t n)
{
	if (s->log_fd >= 0 && write(s->log_fd, data, n) < 0) {
		/* a full /var: keep the console copy */
	}
	if (!p->to_console)
		return;
	for (size_t i = 0; i < n; i++) {
		if (data[i] == '\n' || s->len == sizeof s->line) {
			pump_console_line(p, s->line, s->len);
			s->len = 0;
			if (data[i] == '\n')
				continue;
		}
		s->line[s->len++] = data[i];
	}
}

static void pump_flush(struct pump *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->to_console && p->s[i].len) {
			pump_console_line(p, p->s[i].line, p->s[i].len);
			p->s[i].len = 0;
		}
	}
}

/* Moves data and reaps children until PID (one of p->pids) has exited, or
 * with PID 0 until the streams are closed or nothing is left to read. */
static void pump_until(struct pump *p, pid_t pid, bool drain)
{
	for (;;) {
		for (;;) {
			int status;
			pid_t r = waitpid(-1, &status, WNOHANG);
			if (r <= 0)
				break;
			note_reaped(r, status);
			for (int i = 0; i < 3; i++)
				if (p->pids[i] == r) {
					p->done[i] = true;
					p->status[i] = status;
				}
		}
		bool finished = false;
		for (int i = 0; i < 3; i++)
			if (pid && p->pids[i] == pid && p->done[i])
				finished = true;
		if (pid == 0 && p->s[0].fd < 0 && p->s[1].fd < 0)
			return;
		struct pollfd fds[2];
		int nfds = 0;
		for (int i = 0; i < 2; i++)
			if (p->s[i].fd >= 0)
				fds[nfds++] = (struct pollfd){.fd = p->s[i].fd, .events = POLLIN};
		int timeout = finished || drain ? 0 : 10;
		int r = nfds ? poll(fds, (nfds_t)nfds, timeout) : (usleep(timeout * 1000), 0);
		bool any = false;
		for (int k = 0; k < nfds && r > 0; k++) {
			if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			struct pump_stream *s = p->s[0].fd == fds[k].fd ? &p->s[0] : &p->s[1];
			char buf[4096];
			ssize_t n = read(s->fd, buf, sizeof buf);
			if (n > 0) {
				pump_data(p, s, buf, (size_t)n);
				any = true;
			} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
				close(s->fd);
				s->fd = -1;
			}
		}
		if ((finished || drain) && !any)
			return;
	}
}

static pid_t pump_spawn(struct pump *p, int slot, char *const *argv, int out_w, int err_w)
{
	struct kiln_error *err = NULL;
	pid_t pid = spawn(argv, out_w, err_w, &err);
	if (pid < 0) {
		init_log_error(&err, p->prefix);
		return -1;
	}
	p->pids[slot] = pid;
	p->done[slot] = false;
	return pid;
}

static const char *exit_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status %#x", status);
	return buf;
}

/* WAIT false: the delete runs on while init goes on (PID 1's loops reap it). */
static void runc_delete(const char *runc, const char *name, bool wait)
{
	char *argv[] = {(char *)runc, "delete", "--force", (char *)name, NULL};
	struct kiln_error *err = NULL;
	int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pid_t pid = spawn(argv, devnull, devnull, &err);
	if (devnull >= 0)
		close(devnull);
	if (pid < 0)
		init_log_error(&err, "runc delete");
	else if (wait)
		wait_for(pid);
}

/* One onboot container from bundle to exit: onboot_begin (runtime.json's
 * filesystem, the logs, `runc run`, or `runc create` when something must
 * happen between create and start or the start is to wait), then
 * onboot_finish (start, wait, delete, clean up). */
struct onboot {
	char name[256];
	const char *runc;
	char *bundle, *out_log, *err_log, *pidfile;
	struct runtime_config rc;
	int out_p[2], err_p[2];
	struct pump p;
	pid_t cpid;
	double t0;
	bool created; /* runc create done: start pending */
	bool failed;  /* reported; only the clean-up is left */
};

static void onboot_close_writers(struct onboot *o)
{
	for (int i = 0; i < 2; i++) {
		int *w = i ? &o->err_p[1] : &o->out_p[1];
		if (*w >= 0)
			close(*w);
		*w = -1;
	}
}

/* Returns 0, or -1 when the container failed before its process ran (reported;
 * onboot_finish still cleans up). */
static int onboot_begin(struct onboot *o, const char *dir, const char *name, const char *log_dir,
			const char *runc, bool to_console, bool hold)
{
	*o = (struct onboot){.runc = runc, .t0 = init_uptime(), .out_p = {-1, -1}, .err_p = {-1, -1}};
	snprintf(o->name, sizeof o->name, "%s", name);
	o->p = (struct pump){.prefix = o->name, .to_console = to_console};
	o->p.s[0].fd = o->p.s[1].fd = o->p.s[0].log_fd = o->p.s[1].log_fd = -1;
	o->bundle = path_join(dir, name);
	struct kiln_error *err = NULL;
	o->failed = true;
	if (runtime_config_load(o->bundle, &o->rc, &err) < 0) {
		init_log_error(&err, name);
		return -1;
	}
	if (runtime_prepare_filesystem(&o->rc, &err) < 0) {
		init_log_error(&err, name);
		return -1;
	}
	mkdir_p(log_dir, 0755, NULL);
	o->out_log = xasprintf("%s/%s.out.log", log_dir, name);
	o->err_log = xasprintf("%s/%s.log", log_dir, name);
	o->p.s[0].log_fd = open(o->out_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	o->p.s[1].log_fd = open(o->err_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (pipe2(o->out_p, O_CLOEXEC) < 0 || pipe2(o->err_p, O_CLOEXEC) < 0) {
		init_log("%s: pipe: %s", name, strerror(errno));
		return -1;
	}
	o->p.s[0].fd = o->out_p[0];
	o->p.s[1].fd = o->err_p[0];
	mkdir_p("/run/kiln-init", 0700, NULL);
	o->pidfile = xasprintf("/run/kiln-init/%s.pid", name);
	unlink(o->pidfile);
	char *argv[10];
	int k = 0;
	argv[k++] = (char *)runc;
	if (init_debug)
		argv[k++] = "--debug";
	char why[64];
	if (!hold && o->rc.nifaces == 0 && !runtime_has_bind_ns(&o->rc)) {
		/* Nothing to do between create and start: one runc process (`runc
		 * run` waits for the container and deletes it) instead of three,
		 * which under emulation saves a second per container. */
		argv[k++] = "run";
		argv[k++] = "--bundle";
		argv[k++] = o->bundle;
		argv[k++] = o->name;
		argv[k] = NULL;
		init_debug_log("%s: runc run", name);
		o->cpid = pump_spawn(&o->p, 2, argv, o->out_p[1], o->err_p[1]);
		onboot_close_writers(o);
		o->failed = o->cpid < 0;
		return o->failed ? -1 : 0;
	}
	argv[k++] = "create";
	argv[k++] = "--bundle";
	argv[k++] = o->bundle;
	argv[k++] = "--pid-file";
	argv[k++] = o->pidfile;
	argv[k++] = o->name;
	argv[k] = NULL;
	init_debug_log("%s: runc create", name);
	if (pump_spawn(&o->p, 0, argv, o->out_p[1], o->err_p[1]) < 0)
		return -1;
	o->created = true; /* from here on, runc delete cleans up */
	pump_until(&o->p, o->p.pids[0], false);
	if (o->p.status[0] != 0) {
		pump_until(&o->p, 0, true);
		init_log("%s: runc create failed (%s)", name, exit_text(o->p.status[0], why, sizeof why));
		return -1;
	}
	cleanup_free char *pidtext = read_file(o->pidfile, 64, NULL, &err);
	if (pidtext == NULL) {
		init_log_error(&err, name);
		return -1;
	}
	o->cpid = (pid_t)atoi(pidtext);
	o->p.pids[2] = o->cpid;
	if (runtime_prepare_process(&o->rc, o->cpid, &err) < 0) {
		init_log_error(&err, name);
		return -1;
	}
	o->failed = false;
	return 0;
}

/* The first onboot container, created (not started) while init still loads
 * the modules: see onboot_create_early. */
static struct onboot early;
static bool early_pending;

/* Starts what onboot_begin created, waits for the process, reports, cleans
 * up.  Returns 0 when it exited 0. */
static int onboot_finish(struct onboot *o)
{
	char why[64];
	int rcode = -1;
	if (o->failed)
		goto out;
	if (o->created) {
		char *start[] = {(char *)o->runc, "start", o->name, NULL};
		init_debug_log("%s: runc start (pid %d)", o->name, (int)o->cpid);
		bool spawned = pump_spawn(&o->p, 1, start, o->out_p[1], o->err_p[1]) >= 0;
		onboot_close_writers(o);
		if (!spawned)
			goto out;
		pump_until(&o->p, o->p.pids[1], false);
		if (o->p.status[1] != 0) {
			pump_until(&o->p, 0, true);
			init_log("%s: runc start failed (%s)", o->name,
				 exit_text(o->p.status[1], why, sizeof why));
			goto out;
		}
	}
	pump_until(&o->p, o->cpid, false);
	pump_until(&o->p, 0, true);
	pump_flush(&o->p);
	rcode = o->p.status[2] == 0 ? 0 : -1;
	init_log("%s: exited (%s) after %.3f s", o->name, exit_text(o->p.status[2], why, sizeof why),
		 init_uptime() - o->t0);
out:
	pump_flush(&o->p);
	/* `runc run` deletes its own.  The container created early is deleted in
	 * the background once it ran: nothing after it needs its state gone. */
	if (o->created)
		runc_delete(o->runc, o->name, o->failed || o != &early);
	for (int i = 0; i < 2; i++) {
		if (o->p.s[i].fd >= 0)
			close(o->p.s[i].fd);
		if (o->p.s[i].log_fd >= 0)
			close(o->p.s[i].log_fd);
	}
	onboot_close_writers(o);
	runtime_cleanup(&o->rc);
	runtime_config_release(&o->rc);
	free(o->bundle);
	free(o->out_log);
	free(o->err_log);
	free(o->pidfile);
	return rcode;
}

static int dirent_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* DIR/NAME (heap) when it is a bundle, a directory not hidden; else NULL. */
static char *bundle_path(const char *dir, const char *name)
{
	struct stat st;
	char *bundle = name[0] != '.' ? path_join(dir, name) : NULL;
	if (bundle && (stat(bundle, &st) < 0 || !S_ISDIR(st.st_mode))) {
		free(bundle);
		bundle = NULL;
	}
	return bundle;
}

/* Why the bundle in DIR may not be created before the hardware is probed
 * (NULL: it may).  Creating sets up the namespaces, cgroup and mounts, and
 * runs hooks; only the process waits for `start`.  So: no hooks, sysctls,
 * terminal, or UTS namespace that would copy the hostname init has not set
 * yet; no bind of anything under /dev or /sys (a disk not probed yet), and
 * runtime.json with nothing but directories and mounts of no device. */
static const char *early_refusal(const char *bundle, const struct runtime_config *rc)
{
	if (rc->nifaces || runtime_has_bind_ns(rc))
		return "runtime.json: interfaces or bindNS";
	for (size_t i = 0; i < rc->nmounts; i++)
		if (rc->mounts[i].source && strncmp(rc->mounts[i].source, "/dev/", 5) == 0)
			return "runtime.json mounts a device";
	cleanup_free char *path = path_join(bundle, "config.json");
	size_t len;
	cleanup_free char *text = read_file(path, 1 << 20, &len, NULL);
	struct kiln_error *err = NULL;
	struct json *c = text ? json_parse(text, len, &err) : NULL;
	kiln_error_release(&err);
	const char *why = c ? NULL : "config.json unreadable";
	const struct json *linux_ = json_get(c, "linux"), *process = json_get(c, "process");
	const struct json *terminal = json_get(process, "terminal"), *ns = json_get(linux_, "namespaces");
	if (why == NULL && (json_get(c, "hooks") || json_get(linux_, "sysctl")))
		why = "hooks or sysctls";
	if (why == NULL && terminal && terminal->type == JSON_BOOL && terminal->boolean)
		why = "a terminal";
	for (size_t i = 0; why == NULL && ns && ns->type == JSON_ARRAY && i < ns->count; i++) {
		const char *t = json_get_str(ns->items[i], "type");
		if (t && strcmp(t, "uts") == 0 && !json_get_str(c, "hostname"))
			why = "a UTS namespace without a hostname";
	}
	const struct json *mounts = json_get(c, "mounts");
	for (size_t i = 0; why == NULL && mounts && mounts->type == JSON_ARRAY && i < mounts->count; i++) {
		const char *src = json_get_str(mounts->items[i], "source");
		const char *type = json_get_str(mounts->items[i], "type");
		if (src && type && strcmp(type, "bind") == 0 &&
		    (strncmp(src, "/dev/", 5) == 0 || strncmp(src, "/sys/", 5) == 0))
			why = "a bind of something under /dev or /sys";
	}
	json_free(c);
	return why;
}

int onboot_create_early(const char *dir, const char *log_dir, const char *runc)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, dirent_cmp);
	const char *name = NULL;
	cleanup_free char *bundle = NULL;
	for (int i = 0; i < n && bundle == NULL; i++)
		if ((bundle = bundle_path(dir, names[i]->d_name)))
			name = names[i]->d_name;
	int r = -1;
	struct runtime_config rc;
	struct kiln_error *err = NULL;
	if (bundle && runtime_config_load(bundle, &rc, &err) == 0) {
		const char *why = early_refusal(bundle, &rc);
		runtime_config_release(&rc);
		if (why) {
			init_debug_log("%s: not created early: %s", name, why);
		} else {
			init_log("%s: starting (created while the hardware is probed)", name);
			if (onboot_begin(&early, dir, name, log_dir, runc, true, true) == 0) {
				early_pending = true;
				r = 0;
			} else { /* undone: it runs again in turn, as any other */
				early.failed = true;
				onboot_finish(&early);
			}
		}
	}
	kiln_error_release(&err);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

int onboot_run_dir(const char *dir, const char *log_dir, const char *runc, bool to_console)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, dirent_cmp);
	if (n < 0)
		return 0;
	int failed = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		cleanup_free char *bundle = bundle_path(dir, name);
		if (bundle) {
			struct onboot o;
			int r;
			if (early_pending && strcmp(early.name, name) == 0 &&
			    strcmp(early.runc, runc) == 0) {
				early_pending = false;
				r = onboot_finish(&early);
			} else {
				init_log("%s: starting", name);
				r = onboot_begin(&o, dir, name, log_dir, runc, to_console, false);
				r = onboot_finish(&o) < 0 || r < 0 ? -1 : 0;
			}
			if (r < 0) {
				failed++;
				init_log("%s: FAILED; carrying on (logs in %s/%s.log)", name,
					 log_dir, name);
			}
		}
		free(names[i]);
	}
	free(names);
	if (early_pending) { /* not reached (another directory): undo */
		early_pending = false;
		early.failed = true;
		onboot_finish(&early);
	}
	return failed;
}
