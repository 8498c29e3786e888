/* The supervisor of a running VM: QEMU's stdio (serial console and monitor,
 * multiplexed) is a pty kiln holds the master of, so kiln sees every console
 * byte (echo, log, --until/--fail-on matching) while QEMU still believes it
 * talks to a terminal (ctrl-a x, ctrl-a c work when kiln forwards a TTY in
 * raw mode).  QEMU's exit is watched with a pidfd, so no SIGCHLD handler and
 * no process-wide state. */
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "strbuf.h"
#include "util.h"

#define LINE_MAX_KEEP 16384
#define KILL_GRACE_S  5.0

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- QMP ---- */

/* Reads one line (up to '\n') from FD into SB within DEADLINE.  0, or -1. */
static int qmp_read_line(int fd, struct strbuf *sb, double deadline, struct kiln_error **err)
{
	strbuf_reset(sb);
	for (;;) {
		double left = deadline - now_s();
		if (left <= 0)
			return kiln_error_make(err, 0, "QMP: no answer in time");
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno != EINTR)
			return kiln_error_make(err, errno, "QMP: poll");
		if (r <= 0)
			continue;
		char c;
		ssize_t n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_make(err, errno, "QMP: read");
		if (n == 0)
			return kiln_error_make(err, 0, "QMP: QEMU closed the connection");
		if (c == '\n')
			return 0;
		if (sb->len < 65536)
			strbuf_putc(sb, c);
	}
}

/* Sends COMMAND and reads lines until its reply (events are skipped). */
static int qmp_execute(int fd, const char *command, double deadline, struct kiln_error **err)
{
	cleanup_free char *msg = xasprintf("{\"execute\": \"%s\"}\n", command);
	if (write_all(fd, msg, strlen(msg), err) < 0)
		return kiln_error_wrap(err, "QMP %s", command);
	cleanup_strbuf struct strbuf line = STRBUF_INIT;
	for (;;) {
		if (qmp_read_line(fd, &line, deadline, err) < 0)
			return kiln_error_wrap(err, "QMP %s", command);
		if (line.buf == NULL)
			continue;
		if (strstr(line.buf, "\"return\""))
			return 0;
		if (strstr(line.buf, "\"error\""))
			return kiln_error_make(err, 0, "QMP %s: %s", command, line.buf);
	}
}

int qemu_qmp_command(const char *path, const char *command, int timeout_ms, struct kiln_error **err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		return kiln_error_make(err, 0, "QMP socket path `%s` is too long", path);
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return kiln_error_make(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return kiln_error_make(err, errno, "connect to QMP socket `%s`", path);
	double deadline = now_s() + timeout_ms / 1000.0;
	cleanup_strbuf struct strbuf greeting = STRBUF_INIT;
	if (qmp_read_line(fd, &greeting, deadline, err) < 0)
		return -1;
	if (greeting.buf == NULL || strstr(greeting.buf, "\"QMP\"") == NULL)
		return kiln_error_make(err, 0, "`%s` does not speak QMP", path);
	if (qmp_execute(fd, "qmp_capabilities", deadline, err) < 0)
		return -1;
	return qmp_execute(fd, command, deadline, err);
}

/* ---- the console ---- */

struct console {
	const struct qemu_supervise_opts *opts;
	regex_t until, fail_on;
	bool has_until, has_fail_on;
	struct strbuf line;
	bool matched, failed;
	/* Terminal escape sequences (SeaBIOS clears the screen, getty sets
	 * colours) are left out of the matched text, so `^login:` matches. */
	enum { TEXT, ESCAPE, ESCAPE_ARG, CSI, OSC } esc;
};

static bool console_match(struct console *c)
{
	if (c->line.len == 0)
		return false;
	if (c->has_fail_on && !c->failed && regexec(&c->fail_on, c->line.buf, 0, NULL, 0) == 0)
		c->failed = true;
	if (c->has_until && !c->matched && regexec(&c->until, c->line.buf, 0, NULL, 0) == 0)
		c->matched = true;
	return c->matched || c->failed;
}

/* Takes console bytes: echo, log, match line by line (a partial line, e.g.
 * a "login: " prompt, is matched too). */
static void console_feed(struct console *c, const char *buf, size_t n, int *echo_fd, int *log_fd)
{
	struct kiln_error *e = NULL;
	if (*echo_fd >= 0 && write_all(*echo_fd, buf, n, &e) < 0)
		*echo_fd = -1; /* a closed stdout must not stop the VM */
	if (*log_fd >= 0 && write_all(*log_fd, buf, n, &e) < 0)
		*log_fd = -1;
	kiln_error_release(&e);
	if (!c->has_until && !c->has_fail_on)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)buf[i];
		switch (c->esc) {
		case TEXT:
			break;
		case ESCAPE: /* ESC [ is CSI, ESC ] is OSC, ESC ( B picks a charset */
			c->esc = ch == '['		? CSI
				 : ch == ']'		? OSC
				 : strchr("()*+#%", ch) ? ESCAPE_ARG
							: TEXT;
			continue;
		case ESCAPE_ARG:
			c->esc = TEXT;
			continue;
		case CSI: /* parameters, then one final byte 0x40-0x7e */
			if (ch >= 0x40 && ch <= 0x7e)
				c->esc = TEXT;
			continue;
		case OSC: /* until BEL (or the ESC of ESC \) */
			if (ch == 0x07)
				c->esc = TEXT;
			else if (ch == 0x1b)
				c->esc = ESCAPE;
			continue;
		}
		if (ch == 0x1b) {
			c->esc = ESCAPE;
			continue;
		}
		if (ch == '\n') {
			console_match(c);
			strbuf_reset(&c->line);
		} else if (ch != '\r' && ch != '\0') {
			if (c->line.len >= LINE_MAX_KEEP)
				strbuf_reset(&c->line);
			strbuf_putc(&c->line, (char)ch);
		}
	}
	console_match(c);
}

/* Writes keystrokes to the (non-blocking) pty master; a paste larger than
 * the pty's buffer waits for QEMU to read, a second at most per chunk. */
static void console_input(int master, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(master, buf, len);
		if (w > 0) {
			buf += w;
			len -= (size_t)w;
		} else if (w < 0 && errno == EAGAIN) {
			struct pollfd p = {.fd = master, .events = POLLOUT};
			if (poll(&p, 1, 1000) <= 0)
				return;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else {
			return;
		}
	}
}

static void console_release(struct console *c)
{
	if (c->has_until)
		regfree(&c->until);
	if (c->has_fail_on)
		regfree(&c->fail_on);
	strbuf_release(&c->line);
}

static int compile(regex_t *re, const char *pattern, const char *what, struct kiln_error **err)
{
	int rc = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char msg[256];
		regerror(rc, re, msg, sizeof msg);
		return kiln_error_make(err, 0, "%s `%s`: %s", what, pattern, msg);
	}
	return 0;
}

/* ---- the child ---- */

static int open_pty(int *master_out, char **slave_name, struct kiln_error **err)
{
	cleanup_close int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return kiln_error_make(err, errno, "posix_openpt");
	if (grantpt(m) < 0 || unlockpt(m) < 0)
		return kiln_error_make(err, errno, "pty");
	char name[128];
	if (ptsname_r(m, name, sizeof name) != 0)
		return kiln_error_make(err, errno, "ptsname");
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		ioctl(m, TIOCSWINSZ, &ws);
	*slave_name = xstrdup(name);
	*master_out = steal_fd(&m);
	return 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static __attribute__((noreturn)) void child_exec(const char *slave, char *const *argv, pid_t parent)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	signal(SIGPIPE, SIG_DFL);
	/* QEMU must not outlive kiln (kill -9 of kiln, a crashed test). */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(127);
	setsid();
	int s = open(slave, O_RDWR); /* the controlling terminal of the new session */
	if (s < 0)
		_exit(127);
	struct termios t;
	if (tcgetattr(s, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(s, TCSANOW, &t);
	}
	dup2(s, 0);
	dup2(s, 1);
	if (s > 2)
		close(s);
	execvp(argv[0], argv);
	const char msg[] = "kiln: cannot execute QEMU\n";
	ssize_t w = write(2, msg, sizeof msg - 1);
	(void)w;
	_exit(127);
}

static bool wait_exit(pid_t pid, int pidfd, double seconds)
{
	if (pidfd >= 0) {
		struct pollfd p = {.fd = pidfd, .events = POLLIN};
		return poll(&p, 1, (int)(seconds * 1000)) > 0;
	}
	siginfo_t si;
	for (double waited = 0; waited < seconds; waited += 0.1) {
		memset(&si, 0, sizeof si);
		if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == pid)
			return true;
		usleep(100000);
	}
	return false;
}

/* Ends QEMU: QMP `quit` when there is a socket (a clean exit, no "terminating
 * on signal" noise), else or then SIGTERM, and SIGKILL as the last resort. */
static void stop_qemu(pid_t pid, int pidfd, const char *qmp_socket)
{
	if (qmp_socket) {
		struct kiln_error *e = NULL;
		int r = qemu_qmp_command(qmp_socket, "quit", 2000, &e);
		kiln_error_release(&e);
		if (r == 0 && wait_exit(pid, pidfd, KILL_GRACE_S))
			return;
	}
	kill(pid, SIGTERM);
	if (wait_exit(pid, pidfd, KILL_GRACE_S))
		return;
	kill(pid, SIGKILL);
}

int qemu_supervise(const struct qemu_supervise_opts *opts, struct qemu_result *result,
		   struct kiln_error **err)
{
	memset(result, 0, sizeof *result);
	result->exit_status = -1;
	struct console con = {.opts = opts, .line = STRBUF_INIT};
	if (opts->until) {
		if (compile(&con.until, opts->until, "--until", err) < 0)
			return -1;
		con.has_until = true;
	}
	if (opts->fail_on) {
		if (compile(&con.fail_on, opts->fail_on, "--fail-on", err) < 0) {
			console_release(&con);
			return -1;
		}
		con.has_fail_on = true;
	}
	if (opts->then == QEMU_THEN_POWERDOWN && opts->qmp_socket == NULL) {
		console_release(&con);
		return kiln_error_make(err, 0, "--then powerdown needs a QMP socket");
	}

	int master = -1;
	cleanup_free char *slave = NULL;
	if (open_pty(&master, &slave, err) < 0) {
		console_release(&con);
		return -1;
	}
	pid_t parent = getpid();
	double start = now_s();
	pid_t pid = fork();
	if (pid < 0) {
		close(master);
		console_release(&con);
		return kiln_error_make(err, errno, "fork");
	}
	if (pid == 0)
		child_exec(slave, opts->argv, parent);
	fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);

	enum { WAITING, AFTER_MATCH, STOPPING } state = WAITING;
	double deadline = opts->timeout_ms ? start + opts->timeout_ms / 1000.0 : 0;
	int echo_fd = opts->echo_fd, log_fd = opts->console_log_fd;
	int input_fd = opts->input_fd;
	bool exited = false, console_open = true;
	int status = 0;
	enum qemu_outcome outcome = QEMU_EXITED;
	bool outcome_set = false;
	char buf[8192];

	while (!exited) {
		struct pollfd p[4];
		int np = 0, i_master = -1, i_input = -1, i_sig = -1, i_pid = -1;
		if (console_open) {
			i_master = np;
			p[np++] = (struct pollfd){.fd = master, .events = POLLIN};
		}
		if (input_fd >= 0) {
			i_input = np;
			p[np++] = (struct pollfd){.fd = input_fd, .events = POLLIN};
		}
		if (opts->signal_fd >= 0) {
			i_sig = np;
			p[np++] = (struct pollfd){.fd = opts->signal_fd, .events = POLLIN};
		}
		if (pidfd >= 0) {
			i_pid = np;
			p[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
		int timeout = -1;
		if (pidfd < 0)
			timeout = 100; /* no pidfd (old kernel): poll waitpid */
		if (deadline > 0 && state != STOPPING) {
			double left = deadline - now_s();
			int ms = left <= 0 ? 0 : (int)(left * 1000) + 1;
			if (timeout < 0 || ms < timeout)
				timeout = ms;
		}
		int r = poll(p, (nfds_t)np, timeout);
		if (r < 0 && errno != EINTR) {
			kiln_error_make(err, errno, "poll");
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			close(master);
			if (pidfd >= 0)
				close(pidfd);
			console_release(&con);
			return -1;
		}
		if (i_master >= 0 && (p[i_master].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(master, buf, sizeof buf);
			if (n > 0) {
				console_feed(&con, buf, (size_t)n, &echo_fd, &log_fd);
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				console_open = false; /* EIO: QEMU closed its side */
			}
		}
		if (i_input >= 0 && (p[i_input].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t n = read(input_fd, buf, sizeof buf);
			if (n > 0) {
				console_input(master, buf, (size_t)n);
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				input_fd = -1;
			}
		}
		if (i_sig >= 0 && (p[i_sig].revents & POLLIN)) {
			struct signalfd_siginfo si;
			ssize_t n = read(opts->signal_fd, &si, sizeof si);
			if (n == (ssize_t)sizeof si && si.ssi_signo == SIGWINCH) {
				/* The user's terminal was resized: so is the guest's. */
				struct winsize ws;
				if (input_fd >= 0 && ioctl(input_fd, TIOCGWINSZ, &ws) == 0)
					ioctl(master, TIOCSWINSZ, &ws);
			} else if (n == (ssize_t)sizeof si && state != STOPPING) {
				outcome = QEMU_INTERRUPTED;
				outcome_set = true;
				state = STOPPING;
				stop_qemu(pid, pidfd, opts->qmp_socket);
			}
		}
		if (i_pid >= 0 && (p[i_pid].revents & POLLIN))
			exited = true;
		if (pidfd < 0 && waitpid(pid, &status, WNOHANG | WNOWAIT) == pid)
			exited = true;

		if (state == WAITING && (con.matched || con.failed)) {
			double t = now_s();
			if (con.failed) {
				outcome = QEMU_FAILED_MATCH;
				outcome_set = true;
				state = STOPPING;
				stop_qemu(pid, pidfd, opts->qmp_socket);
			} else {
				result->match_s = t - start;
				outcome = QEMU_MATCHED;
				outcome_set = true;
				state = AFTER_MATCH;
				/* --then continue: --timeout stays the limit of the whole run. */
				if (opts->then != QEMU_THEN_CONTINUE)
					deadline = 0;
				if (opts->then == QEMU_THEN_KILL) {
					state = STOPPING;
					stop_qemu(pid, pidfd, opts->qmp_socket);
				} else if (opts->then == QEMU_THEN_POWERDOWN) {
					struct kiln_error *e = NULL;
					if (qemu_qmp_command(opts->qmp_socket, "system_powerdown",
							     5000, &e) < 0) {
						snprintf(result->detail, sizeof result->detail,
							 "%s", e->msg);
						kiln_error_release(&e);
						outcome = QEMU_POWERDOWN_TIMEOUT;
						state = STOPPING;
						stop_qemu(pid, pidfd, opts->qmp_socket);
					} else {
						unsigned ms = opts->powerdown_timeout_ms
								  ? opts->powerdown_timeout_ms
								  : 60000;
						deadline = t + ms / 1000.0;
					}
				}
			}
		}
		if (!exited && deadline > 0 && state != STOPPING && now_s() >= deadline) {
			if (state == AFTER_MATCH && opts->then == QEMU_THEN_CONTINUE)
				result->stopped_at_timeout = true; /* still a match */
			else
				outcome =
				    state == AFTER_MATCH ? QEMU_POWERDOWN_TIMEOUT : QEMU_TIMED_OUT;
			outcome_set = true;
			state = STOPPING;
			result->elapsed_s = now_s() - start;
			stop_qemu(pid, pidfd, opts->qmp_socket);
		}
	}
	/* QEMU is gone: take what is left on the console. */
	while (console_open) {
		ssize_t n = read(master, buf, sizeof buf);
		if (n > 0)
			console_feed(&con, buf, (size_t)n, &echo_fd, &log_fd);
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (result->elapsed_s == 0)
		result->elapsed_s = now_s() - start;
	result->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	if (!outcome_set) {
		/* Exited by itself; the last bytes may still have matched. */
		if (con.failed)
			outcome = QEMU_FAILED_MATCH;
		else if (con.matched) {
			outcome = QEMU_MATCHED;
			result->match_s = result->elapsed_s;
		} else
			outcome = QEMU_EXITED;
	}
	result->outcome = outcome;
	close(master);
	if (pidfd >= 0)
		close(pidfd);
	console_release(&con);
	return 0;
}
