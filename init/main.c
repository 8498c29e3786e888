/* kiln's PID 1 (STYLE.md §7: signals through signalfd, reap everything, never
 * exit once children exist) and the entry of the multi-call binary:
 *   init, /sbin/init   PID 1
 *   kiln-service       the service manager command (services.c)
 *   poweroff, reboot, halt   ask PID 1 to shut down (busybox's signals)
 *   modprobe           the kernel's usermode helper for request_module()
 * In a container (docker output format) init runs in container mode
 * (container_main).  Not as PID 1, `init onboot DIR LOGDIR [RUNC]` runs
 * bundles as at boot (for tests) and `init service …` is kiln-service. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/input.h>
#include <linux/reboot.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"

#define CONTAINERD	"/usr/bin/containerd"
#define CONTAINERD_SOCK "/run/containerd/containerd.sock"
#define MAX_INPUTS	16

static const char *const input_dir = "/dev/input";

struct pid1 {
	int sigfd;
	int inputs[MAX_INPUTS];
	int ninputs;
	pid_t containerd;
	struct grpc_conn *events; /* subscribed to task exits, or NULL */
};

static bool cmdline_has(const char *cmdline, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = cmdline; (p = strstr(p, word)) != NULL; p += n)
		if ((p == cmdline || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ' || p[n] == '\n'))
			return true;
	return false;
}

static void console_open(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		dup2(fd, i);
	if (fd > 2)
		close(fd);
	init_log_fd = 2;
}

static bool has_bit(const unsigned long *bits, int bit)
{
	return (bits[bit / (8 * sizeof(long))] >> (bit % (8 * sizeof(long)))) & 1;
}

/* Opens the input devices that can report KEY_POWER (the ACPI power button
 * QEMU's system_powerdown presses). */
static void open_power_buttons(struct pid1 *p)
{
	cleanup_dir DIR *d = opendir(input_dir);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && p->ninputs < MAX_INPUTS) {
		if (strncmp(e->d_name, "event", 5) != 0)
			continue;
		cleanup_free char *path = path_join(input_dir, e->d_name);
		int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		unsigned long keys[KEY_MAX / (8 * sizeof(long)) + 1] = {0};
		if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys) >= 0 &&
		    has_bit(keys, KEY_POWER)) {
			char name[128] = "";
			ioctl(fd, EVIOCGNAME(sizeof name - 1), name);
			init_log("power button: %s (%s)", path, name);
			p->inputs[p->ninputs++] = fd;
		} else {
			close(fd);
		}
	}
}

/* Whether containerd is gone: reaped here or by the onboot wait loops. */
static void containerd_check(struct pid1 *p)
{
	if (p->containerd && reaped_watch_status != -1) {
		init_log("warning: containerd exited (status %#x); services are gone",
			 reaped_watch_status);
		p->containerd = 0;
		reaped_watch_status = -1;
	}
}

static void reap(struct pid1 *p)
{
	for (;;) {
		int status;
		pid_t pid = waitpid(-1, &status, WNOHANG);
		if (pid <= 0)
			return;
		note_reaped(pid, status);
		containerd_check(p);
	}
}

/* BACKGROUND: started before the onboot containers, it runs at nice
 * CONTAINERD_NICE until they end (renice_all), so that it takes only what
 * CPU they leave: they are on the way to the services, its start is not. */
#define CONTAINERD_NICE 10
static pid_t start_containerd(bool background)
{
	struct stat st;
	if (stat(CONTAINERD, &st) < 0)
		return 0;
	unlink(CONTAINERD_SOCK);
	mkdir_p("/var/log", 0755, NULL);
	int out =
	    open("/var/log/containerd.out.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int errf = open("/var/log/containerd.log", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	char *argv[] = {CONTAINERD, NULL};
	struct kiln_error *err = NULL;
	spawn_nice = background ? CONTAINERD_NICE : 0;
	pid_t pid = spawn(argv, out, errf, &err);
	spawn_nice = 0;
	if (out >= 0)
		close(out);
	if (errf >= 0)
		close(errf);
	if (pid < 0) {
		init_log_error(&err, "containerd");
		return 0;
	}
	reaped_watch_pid = pid;
	reaped_watch_status = -1;
	if (background)
		init_log("containerd started (pid %d, at nice %d until the onboot containers end)",
			 (int)pid, CONTAINERD_NICE);
	else
		init_log("containerd started (pid %d)", (int)pid);
	return pid;
}

static void report_exit(void *opaque, const uint8_t *data, size_t len)
{
	(void)opaque;
	char *ns, *id;
	uint32_t status;
	if (ctrd_parse_exit(data, len, &ns, &id, &status) == 1) {
		init_log("service %s exited (exit status %u)%s%s", id, status,
			 strcmp(ns, "services.linuxkit") ? " in namespace " : "",
			 strcmp(ns, "services.linuxkit") ? ns : "");
		free(ns);
		free(id);
	}
}

/* kiln.debug: where the CPUs' time went since boot (/proc/stat's user, nice,
 * system, idle), to tell waiting from work when reading a slow boot. */
static void log_cpu_since_boot(void)
{
	cleanup_free char *stat = read_file("/proc/stat", 65536, NULL, NULL);
	char *p = stat ? stat + strcspn(stat, " ") : NULL;
	double v[4], hz = (double)sysconf(_SC_CLK_TCK);
	for (int i = 0; p && i < 4; i++)
		v[i] = (double)strtoull(p, &p, 10) / hz;
	if (p)
		init_debug_log("CPU time since boot, all CPUs: user %.2f s, system %.2f s, idle %.2f s",
			       v[0] + v[1], v[2], v[3]);
}

static void start_services(struct pid1 *p, bool shim_per_service, bool shim_runc)
{
	struct service_opts o = SERVICE_OPTS_DEFAULT;
	if (shim_per_service)
		o.shim_group = NULL;
	o.runtime_binary = oci_runtime_for_shim();
	o.shim = shim_runc ? SHIM_RUNC : service_default_shim();
	struct grpc_conn *c = NULL;
	struct kiln_error *err = NULL;
	double t0 = init_uptime();
	containerd_check(p);
	/* containerd under emulation takes seconds: poll its socket. */
	while (p->containerd && init_uptime() - t0 < 120) {
		struct stat st;
		if (stat(CONTAINERD_SOCK, &st) == 0) {
			c = grpc_connect(CONTAINERD_SOCK, &err);
			if (c)
				break;
			kiln_error_release(&err);
		}
		reap(p);
		if (p->containerd == 0)
			break;
		usleep(10000);
	}
	if (c == NULL) {
		init_log("warning: containerd did not answer; no services started");
		return;
	}
	init_log("containerd ready (waited %.3f s)", init_uptime() - t0);
	/* Subscribed before the services start, so an early exit is reported. */
	p->events = grpc_connect(CONTAINERD_SOCK, &err);
	if (p->events == NULL || ctrd_subscribe_exits(p->events, &err) < 0) {
		init_log_error(&err, "service exits will not be reported");
		grpc_close(p->events);
		p->events = NULL;
	}
	int failed = services_start_all(c, &o);
	grpc_close(c);
	init_log("BENCH services-started (%d failed)", failed);
	if (init_debug)
		log_cpu_since_boot();
}

enum shutdown_kind { SHUT_POWEROFF, SHUT_REBOOT, SHUT_HALT };

static void unmount_all(void)
{
	/* Deepest first: /proc/self/mounts lists parents before children. */
	cleanup_free char *mounts = read_file("/proc/self/mounts", 1 << 20, NULL, NULL);
	if (mounts == NULL)
		return;
	char *targets[512];
	int n = 0;
	for (char *line = mounts, *next; line && *line && n < 512; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *sp = strchr(line, ' ');
		if (sp == NULL)
			continue;
		char *target = sp + 1;
		char *sp2 = strchr(target, ' ');
		if (sp2)
			*sp2 = '\0';
		targets[n++] = target;
	}
	for (int i = n - 1; i >= 0; i--) {
		const char *t = targets[i];
		if (strcmp(t, "/") == 0 || strcmp(t, "/proc") == 0 || strcmp(t, "/dev") == 0 ||
		    strcmp(t, "/sys") == 0)
			continue;
		if (umount2(t, 0) < 0)
			umount2(t, MNT_DETACH);
	}
	mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL);
}

__attribute__((noreturn)) static void shutdown_system(struct pid1 *p, enum shutdown_kind kind)
{
	static const char *const names[] = {"poweroff", "reboot", "halt"};
	init_log("shutting down (%s)", names[kind]);
	onboot_run_dir("/containers/onshutdown", "/var/log/onshutdown", oci_runtime(), true);
	init_log("sending TERM to all processes");
	kill(-1, SIGTERM);
	/* Up to 5 s, but only while a process TERM can end is still there:
	 * one that ignores TERM, or a container's init with no handler for it
	 * (the kernel drops the signal), would only make us wait the whole 5 s
	 * for the KILL it gets anyway. */
	double t0 = init_uptime();
	int pending = 0;
	while (init_uptime() - t0 < 5) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		if ((pending = system_term_pending(false)) == 0)
			break;
		usleep(50000);
	}
	if (pending)
		system_term_pending(true);
	init_log("sending KILL to all processes (%d still running after TERM, %.3f s)", pending,
		 init_uptime() - t0);
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	sync();
	unmount_all();
	sync();
	init_log("%s", kind == SHUT_REBOOT ? "rebooting"
		       : kind == SHUT_HALT ? "halted"
					   : "power off");
	(void)p;
	reboot(kind == SHUT_REBOOT ? RB_AUTOBOOT
	       : kind == SHUT_HALT ? RB_HALT_SYSTEM
				   : RB_POWER_OFF);
	for (;;)
		pause();
}

static void pid1_loop(struct pid1 *p)
{
	for (;;) {
		struct pollfd fds[2 + MAX_INPUTS];
		fds[0] = (struct pollfd){.fd = p->sigfd, .events = POLLIN};
		for (int i = 0; i < p->ninputs; i++)
			fds[1 + i] = (struct pollfd){.fd = p->inputs[i], .events = POLLIN};
		int evi = 1 + p->ninputs;
		fds[evi] = (struct pollfd){.fd = p->events ? grpc_conn_fd(p->events) : -1,
					   .events = POLLIN};
		if (poll(fds, (nfds_t)(evi + 1), -1) < 0)
			continue;
		if (p->events && (fds[evi].revents & (POLLIN | POLLHUP | POLLERR))) {
			struct kiln_error *err = NULL;
			if (grpc_stream_pump(p->events, report_exit, NULL, &err) < 0) {
				init_log_error(&err, "containerd events");
				grpc_close(p->events);
				p->events = NULL;
			}
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(p->sigfd, &si, sizeof si) == sizeof si) {
				switch (si.ssi_signo) {
				case SIGCHLD:
					reap(p);
					break;
				case SIGUSR1:
					shutdown_system(p, SHUT_HALT);
				case SIGUSR2:
				case SIGPWR:
					shutdown_system(p, SHUT_POWEROFF);
				case SIGTERM:
				case SIGINT: /* ctrl-alt-del */
					shutdown_system(p, SHUT_REBOOT);
				default:
					init_debug_log("ignoring signal %u", si.ssi_signo);
				}
			}
		}
		for (int i = 0; i < p->ninputs; i++) {
			if (!(fds[1 + i].revents & POLLIN))
				continue;
			struct input_event ev;
			while (read(p->inputs[i], &ev, sizeof ev) == sizeof ev)
				if (ev.type == EV_KEY && ev.code == KEY_POWER && ev.value == 1) {
					init_log("power button pressed");
					shutdown_system(p, SHUT_POWEROFF);
				}
		}
	}
}

/* Every signal but the faults goes through the returned signalfd; other
 * inherited descriptors are closed. */
static int block_signals(void)
{
	sigset_t set;
	sigfillset(&set);
	static const int faults[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};
	for (size_t i = 0; i < ARRAY_SIZE(faults); i++)
		sigdelset(&set, faults[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	int sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	for (int fd = 3; fd < 1024; fd++)
		if (fd != sigfd)
			close(fd);
	return sigfd;
}

/* Whether containerd may start before the onboot containers (early.c): it
 * exists, kiln.containerd=late is not set, and no onboot container could
 * mount over its store.  Not its state in /run: the default binds are
 * rshared and most containers bind /run or /var/run, yet nothing mounts over
 * /run/containerd. */
static bool containerd_early_ok(const char *cmdline)
{
	if ((cmdline && cmdline_has(cmdline, "kiln.containerd=late")) || access(CONTAINERD, X_OK) < 0)
		return false;
	static const char *const dirs[] = {"/var/lib/containerd", NULL};
	char why[512];
	if (onboot_may_touch("/containers/onboot", dirs, why, sizeof why)) {
		init_log("containerd starts after the onboot containers (%s)", why);
		return false;
	}
	return true;
}

/* true when DIR has no entry but dot files (or does not exist). */
static bool dir_empty(const char *dir)
{
	cleanup_dir DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			return false;
	return true;
}

/* What LinuxKit's rc.init does in both modes once the system is set up and
 * rlimits and the resolv.conf target are done: the volumes (its 005-volumes,
 * before the scripts and containers that bind them), /etc/init.d, then the
 * onboot containers with *RUNTIME.  Returns how many of those failed.  With
 * CONTAINERD non-NULL and *CONTAINERD 0, containerd starts (*CONTAINERD)
 * before the onboot containers. */
static int run_onboot_steps(const char **runtime, pid_t *containerd)
{
	volumes_mount_all(VOLUMES_DIR);
	system_run_initd("/etc/init.d");
	if (containerd && *containerd == 0)
		*containerd = start_containerd(true);
	*runtime = oci_runtime();
	init_log("OCI runtime: %s", *runtime);
	return onboot_run_dir("/containers/onboot", "/var/log/onboot", *runtime, true);
}

/* On a thread beside the module probes: the OCI runtime sealed in memory
 * (run.c's runtime_seal), then, when *ARG (a bool) is true, the first onboot
 * container created (run.c's onboot_create_early): with a second CPU, its
 * runtime's start (most of a second for runc under emulation) overlaps the
 * probes, and only its process waits for them. */
static void *seal_runtime(void *arg)
{
	const char *rt = oci_runtime();
	if (access(rt, X_OK) < 0)
		return NULL; /* no runtime in this image: nothing to seal or create */
	double t = init_uptime();
	struct kiln_error *err = NULL;
	if (runtime_seal(rt, &err) < 0)
		init_log_error(&err, "sealing the OCI runtime in memory (each container start copies it)");
	else
		init_debug_log("%s sealed in memory in %.3f s", rt, init_uptime() - t);
	if (*(const bool *)arg)
		onboot_create_early("/containers/onboot", "/var/log/onboot", rt);
	return NULL;
}

/* Every thread of PID back to nice 0 (twice: a thread made while the first
 * pass ran inherits its maker's). */
static void renice_all(pid_t pid)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	for (int pass = 0; pass < 2; pass++) {
		cleanup_dir DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.')
				setpriority(PRIO_PROCESS, (id_t)atoi(e->d_name), 0);
	}
}

static int pid1_main(char **argv)
{
	struct pid1 p = {.sigfd = -1};
	const char *t0 = getenv("KILN_INIT_T0");
	if (t0 == NULL) {
		char buf[32];
		snprintf(buf, sizeof buf, "%.6f", init_uptime());
		setenv("KILN_INIT_T0", buf, 1);
		init_log("BENCH init-start: kiln init");
	}
	struct kiln_error *err = NULL;
	if (system_switch_root_if_ram(argv, &err) < 0)
		init_log_error(&err, "staying on the RAM root (runc will fail to pivot_root)");
	unsetenv("KILN_INIT_MOVED");
	unsetenv("KILN_INIT_T0");

	p.sigfd = block_signals();
	reboot(RB_DISABLE_CAD); /* ctrl-alt-del becomes SIGINT */

	system_mount_all();
	console_open();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	cleanup_free char *cmdline = read_file("/proc/cmdline", 8192, NULL, NULL);
	if (cmdline) {
		init_debug = cmdline_has(cmdline, "kiln.debug") ||
			     cmdline_has(cmdline, "kiln.debug=1") ||
			     cmdline_has(cmdline, "linuxkit.runc_debug=1");
		if (!cmdline_has(cmdline, "kiln.rw") && !cmdline_has(cmdline, "kiln.rw=1") &&
		    mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
			init_log("warning: remount / read-only: %s", strerror(errno));
	}
	init_log("mounted /proc /sys /dev /run /tmp /var cgroup2");
	if (init_debug)
		log_cpu_since_boot();

	/* containerd needs no device: when it may start before the onboot
	 * containers and no /etc/init.d script comes first (one may prepare
	 * what it reads), it starts before the module probes, whose waits
	 * (ATA resets, the CD-ROM's) leave a CPU idle. */
	bool early = containerd_early_ok(cmdline), no_initd = dir_empty("/etc/init.d");
	/* rc.init's first steps: the rlimits containerd and the runtimes
	 * inherit, the resolv.conf target a container may bind */
	system_set_rlimits();
	system_resolv_conf();
	if (early && no_initd)
		p.containerd = start_containerd(true);
	/* The first onboot container may be created now when nothing LinuxKit
	 * runs before it is left (no /etc/init.d script, no volume to mount),
	 * with a second CPU to do it on, and with runc: crun creates a container
	 * in a quarter of runc's time, and paired boots showed no gain for it
	 * (the start and delete it adds cost as much as the overlap saves). */
	bool create_early = no_initd && dir_empty(VOLUMES_DIR) && sysconf(_SC_NPROCESSORS_ONLN) > 1 &&
			    strcmp(oci_runtime(), OCI_RUNC) == 0 &&
			    !(cmdline && cmdline_has(cmdline, "kiln.onboot=after-probes"));
	double tm = init_uptime();
	pthread_t sealer;
	bool sealing = pthread_create(&sealer, NULL, seal_runtime, &create_early) == 0;
	int nmods = modules_coldplug(NULL);
	init_log("loaded %d modules for the hardware in %.3f s", nmods, init_uptime() - tm);
	if (sealing)
		pthread_join(sealer, NULL);
	if (net_loopback_up(&err) < 0)
		init_log_error(&err, "loopback");
	system_set_hostname();
	open_power_buttons(&p);
	const char *runtime;
	int failed = run_onboot_steps(&runtime, early ? &p.containerd : NULL);
	init_log("BENCH onboot-done (%d failed)", failed);
	if (p.containerd)
		renice_all(p.containerd); /* before it starts shims, which inherit it */
	else
		p.containerd = start_containerd(false);
	if (p.containerd)
		start_services(&p, cmdline && cmdline_has(cmdline, "kiln.shim_per_service=1"),
			       cmdline && cmdline_has(cmdline, "kiln.shim=runc"));
	init_log("boot finished; reaping orphans");
	pid1_loop(&p);
	return 0;
}

/* ---- container mode (the docker output format's ENTRYPOINT) ----
 * LinuxKit's rc.init has a userspace mode: in a container the runtime has
 * already made /proc, /sys and /dev, and the root, hostname, network and
 * power belong to the host.  Why this init thinks it is in a container, in
 * the order checked, or NULL for a VM (a kernel cmdline knob cannot reach a
 * container, so the environment and the runtimes' marker files decide).
 * Not PID 1, only KILN_INIT_MODE=container is: `init` run by hand (in a dev
 * container too, /.dockerenv) must not run that system's /etc/init.d. */
static const char *container_reason(char *buf, size_t size)
{
	const char *mode = getenv("KILN_INIT_MODE");
	if (mode && strcmp(mode, "vm") == 0)
		return NULL;
	if (mode && strcmp(mode, "container") == 0)
		return "KILN_INIT_MODE=container";
	if (getpid() != 1)
		return NULL; /* a shell inside a container must not start a second init */
	const char *c = getenv("container"); /* docker, podman, systemd-nspawn, lxc */
	if (c && *c) {
		snprintf(buf, size, "container=%s", c);
		return buf;
	}
	static const char *const markers[] = {"/.dockerenv", "/run/.containerenv"};
	for (size_t i = 0; i < ARRAY_SIZE(markers); i++)
		if (access(markers[i], F_OK) == 0)
			return markers[i];
	return NULL;
}

/* Sends SIG to what container mode may signal: everything in the PID
 * namespace as its PID 1, else only its children (kill(-1) would reach the
 * host's processes); orphans reparent to the subreaper and get the next
 * round.  Returns how many were signalled (-1 for everything). */
static int signal_container(int sig)
{
	if (getpid() == 1)
		return kill(-1, sig) == 0 ? -1 : 0;
	return system_signal_children(sig);
}

static bool reap_until_echild(void)
{
	for (;;) {
		pid_t pid = waitpid(-1, NULL, WNOHANG);
		if (pid < 0 && errno == ECHILD)
			return true;
		if (pid <= 0)
			return false;
	}
}

__attribute__((noreturn)) static void container_shutdown(int sig)
{
	init_log("signal %d: stopping (container mode: no reboot)", sig);
	onboot_run_dir("/containers/onshutdown", "/var/log/onshutdown", oci_runtime(), true);
	init_log("sending TERM to all processes");
	double t0 = init_uptime();
	bool gone = false;
	while (!(gone = reap_until_echild()) && init_uptime() - t0 < 5) {
		signal_container(SIGTERM);
		usleep(50000);
	}
	if (!gone) {
		init_log("sending KILL to all processes (still running after TERM, %.3f s)",
			 init_uptime() - t0);
		while (!reap_until_echild()) {
			signal_container(SIGKILL);
			usleep(10000);
		}
	}
	init_log("all processes gone after %.3f s; exiting", init_uptime() - t0);
	exit(0);
}

static int container_main(const char *reason)
{
	/* Under docker run --init (tini as PID 1), orphans must still come here. */
	bool subreaper = getpid() != 1;
	init_log("container mode (%s%s)", reason, subreaper ? "; not PID 1: child subreaper" : "");
	if (subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		init_log("warning: PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	int sigfd = block_signals();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	/* The runtime mounts /proc, /sys and /dev; only /proc is needed here
	 * (volumes, onboot, finding children), as rc.init's /proc/self test. */
	if (access("/proc/self", F_OK) < 0) {
		mkdir("/proc", 0555);
		if (mount("proc", "/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL) < 0)
			init_log("warning: no /proc and mount proc: %s", strerror(errno));
		else
			init_log("mounted /proc (the runtime had not)");
	}
	const char *runtime;
	system_set_rlimits();
	system_resolv_conf();
	int failed = run_onboot_steps(&runtime, NULL);
	if (failed)
		init_log("warning: %d onboot containers failed (in a container %s needs "
			 "privileges: docker run --privileged)",
			 failed, runtime);
	struct pid1 p = {.sigfd = sigfd};
	p.containerd = start_containerd(false);
	if (p.containerd)
		start_services(&p, false, false);
	init_log("started; reaping children until none remain");
	for (;;) {
		if (reap_until_echild()) {
			init_log("no children left; exiting");
			return 0;
		}
		struct pollfd fd = {.fd = sigfd, .events = POLLIN};
		if (poll(&fd, 1, -1) < 0)
			continue;
		struct signalfd_siginfo si;
		while (read(sigfd, &si, sizeof si) == sizeof si)
			switch (si.ssi_signo) {
			case SIGCHLD:
				break;
			case SIGTERM:
			case SIGINT:
			case SIGUSR1:
			case SIGUSR2:
			case SIGPWR:
				container_shutdown((int)si.ssi_signo);
			default:
				init_debug_log("ignoring signal %u", si.ssi_signo);
			}
	}
}

static int modprobe_main(int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		if (argv[i][0] == '-')
			continue;
		struct kiln_error *err = NULL;
		if (modules_load(NULL, argv[i], &err) < 0) {
			fprintf(stderr, "modprobe: %s\n", err->msg);
			kiln_error_release(&err);
			rc = 1;
		}
	}
	return rc;
}

/* containerd's logging binary: stdout on fd 3, stderr on fd 4, and fd 5 to
 * close once ready.  Writes BASE.out.log and BASE.log until both streams end. */
static int kiln_log_main(const char *base)
{
	cleanup_free char *out_path = xasprintf("%s.out.log", base);
	cleanup_free char *err_path = xasprintf("%s.log", base);
	int files[2] = {open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644),
			open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)};
	close(5);
	struct pollfd fds[2] = {{.fd = 3, .events = POLLIN}, {.fd = 4, .events = POLLIN}};
	int open_streams = 2;
	while (open_streams > 0) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int i = 0; i < 2; i++) {
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			char buf[8192];
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n > 0) {
				if (files[i] >= 0 && write(files[i], buf, (size_t)n) < 0) {
					/* a full /var/log: drop, never block the service */
				}
			} else if (n == 0 || errno != EINTR) {
				close(fds[i].fd);
				fds[i].fd = -1;
				open_streams--;
			}
		}
	}
	return 0;
}

static int signal_init(int sig)
{
	if (kill(1, sig) < 0) {
		perror("kill 1");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	cleanup_free char *argv0 = xstrdup(argv[0]);
	const char *name = basename(argv0);
	if (strcmp(name, "kiln-service") == 0 || strcmp(name, "service") == 0)
		return service_main(argc, argv);
	if (strcmp(name, "containerd-shim-kiln-v1") == 0)
		return shim_main(argc, argv);
	if (strcmp(name, "modprobe") == 0)
		return modprobe_main(argc, argv);
	if (strcmp(name, "poweroff") == 0)
		return signal_init(SIGUSR2);
	if (strcmp(name, "reboot") == 0)
		return signal_init(SIGTERM);
	if (strcmp(name, "halt") == 0)
		return signal_init(SIGUSR1);
	char why[128];
	const char *reason = argc == 1 ? container_reason(why, sizeof why) : NULL;
	if (reason)
		return container_main(reason);
	if (getpid() == 1)
		return pid1_main(argv);
	if (argc == 3 && strcmp(argv[1], "kiln-log") == 0)
		return kiln_log_main(argv[2]);
	if (argc >= 2 && strcmp(argv[1], "service") == 0)
		return service_main(argc - 1, argv + 1);
	if (argc >= 4 && strcmp(argv[1], "onboot") == 0) {
		prctl(PR_SET_CHILD_SUBREAPER, 1);
		const char *rt = argc >= 5 ? argv[4] : OCI_RUNC;
		struct kiln_error *err = NULL; /* KILN_SEAL_RUNTIME: as PID 1 does, for tests */
		if (getenv("KILN_SEAL_RUNTIME") && runtime_seal(rt, &err) < 0)
			init_log_error(&err, "runtime");
		return onboot_run_dir(argv[2], argv[3], rt, true) ? 1 : 0;
	}
	if (argc >= 2 && (strcmp(argv[1], "poweroff") == 0 || strcmp(argv[1], "reboot") == 0 ||
			  strcmp(argv[1], "halt") == 0))
		return signal_init(argv[1][0] == 'p'   ? SIGUSR2
				   : argv[1][0] == 'r' ? SIGTERM
						       : SIGUSR1);
	fprintf(stderr, "Usage: init (as PID 1)\n"
			"       init onboot DIR LOGDIR [RUNC]\n"
			"       init service …   (= kiln-service)\n"
			"       init poweroff|reboot|halt\n");
	return 2;
}
