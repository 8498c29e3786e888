/* containerd-shim-kiln-v1: containerd's runtime v2 shim, in C.
 *
 * containerd runs one shim per task; the shim owns the container's init
 * process (as its subreaper), its stdio, and answers containerd's
 * containerd.task.v2.Task calls over ttrpc on a unix socket.  The runc shim
 * that ships with containerd is a Go program started twice per task (`start`,
 * then the daemon it re-executes); under emulation that alone takes most of a
 * second per service.  This one is init itself under another name, forks
 * instead of re-executing, and runs the OCI runtime (runc or crun, the
 * runtime options' binary_name) for create, start, pause, resume, update and
 * delete, as the runc shim does.
 *
 * It runs exec'd processes (`RUNTIME exec --detach`, then its child as
 * their subreaper) and terminals (the runtime's --console-socket; the shim
 * pumps the master to and from the client's FIFOs in its poll loop).  What
 * it does not do, and says so: checkpoints and stats.  Rootfs mounts from a
 * snapshotter are mounted on BUNDLE/rootfs (kiln's services have their
 * rootfs in the bundle).
 *
 * Protocol facts (containerd 1.6 runtime/v2): containerd runs
 * `containerd-shim-kiln-v1 -namespace NS -address SOCK -publish-binary BIN
 * -id ID start` in the bundle directory with TTRPC_ADDRESS in the
 * environment and the runtime options on stdin, reads the shim's socket
 * address from its stdout and connects; on a dead shim it runs the same with
 * `-bundle DIR delete` and reads a DeleteResponse from stdout.  ttrpc frames
 * are a 10-byte header (length and stream id, big-endian u32; type 1 request,
 * 2 response; flags) and a protobuf Request {service 1, method 2, payload 3,
 * timeout_nano 4, metadata 5} or Response {status 1 (google.rpc.Status
 * {code 1, message 2}), payload 2}.  Exits are published to containerd's
 * containerd.services.events.ttrpc.v1.Events/Forward as /tasks/exit. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

#define TTRPC_REQUEST  1
#define TTRPC_RESPONSE 2
#define TTRPC_MAX      (4u << 20)
#define TASK_SERVICE   "containerd.task.v2.Task"

/* google.rpc codes */
#define CODE_NOT_FOUND		 5
#define CODE_ALREADY_EXISTS	 6
#define CODE_FAILED_PRECONDITION 9
#define CODE_UNIMPLEMENTED	 12
#define CODE_INTERNAL		 13

struct shim_conn {
	int fd; /* -1 when unused */
	uint8_t *in;
	size_t len, cap;
};

struct shim_waiter {
	int conn;
	uint32_t stream;
};

/* A byte pump between two descriptors the poll loop serves: a terminal's
 * master to the client's stdout, the client's stdin to a pipe or master. */
struct shim_pump {
	int from, to; /* -1 when unused */
	bool close_to; /* `to` is ours alone: close it when the pump ends */
	bool eof;      /* the source ended: end once the buffer is out */
	bool drain;    /* CloseIO: end once the source has nothing more */
	size_t off, len;
	char buf[4096];
};

#define MAX_CONNS   8
#define MAX_WAITERS 32
#define MAX_ZOMBIES 64
#define MAX_PROCS   16 /* the task's init and its exec'd processes */

/* The task's init (procs[0], exec_id NULL) or an exec'd process. */
struct shim_proc {
	bool used, terminal;
	char *exec_id;
	char *spec; /* exec: the OCI process JSON */
	size_t spec_len;
	int status; /* enum task_status */
	pid_t pid;
	uint32_t exit_status;
	struct timespec exited_at;
	char *stdio[3]; /* the URIs as given */
	pid_t logger;
	struct shim_pump in, out; /* stdin; the terminal's output */
	int pty;		  /* the terminal's master, or -1 */
	struct shim_waiter waiters[MAX_WAITERS];
	size_t nwaiters;
};

struct shim {
	const char *ns, *id, *address, *ttrpc_address;
	char *bundle;
	char *socket_path;
	char *runtime; /* binary */
	char *root;    /* --root */
	bool no_pivot, no_new_keyring, systemd_cgroup;
	bool created, deleted, rootfs_mounted;
	struct shim_proc procs[MAX_PROCS];
	struct shim_conn conns[MAX_CONNS];
	struct {
		pid_t pid;
		int status;
	} zombies[MAX_ZOMBIES]; /* reaped before their pid was known */
	size_t nzombies;
	unsigned exec_seq; /* names the exec'd processes' files */
	bool exit_now;
};

/* ---- small protobuf helpers ---- */

static void put_timestamp(struct pb_buf *b, int field, const struct timespec *ts)
{
	cleanup_pb_buf struct pb_buf t = {0};
	pb_put_uint(&t, 1, (uint64_t)ts->tv_sec);
	pb_put_uint(&t, 2, (uint64_t)ts->tv_nsec);
	pb_put_message(b, field, &t);
}

/* The value (field 2) of a google.protobuf.Any {type_url 1, value 2}, or
 * NULL. */
static const uint8_t *any_value(const uint8_t *any, size_t len, size_t *vlen)
{
	static const int value[] = {2, 0};
	struct pb_field f;
	if (any == NULL || !pb_path(any, len, value, &f) || f.wire != 2)
		return NULL;
	*vlen = f.len;
	return f.data;
}

/* A request's fields 1-10 by number: varints in v[], length-delimited ones
 * both as strings (s[], owned) and as raw bytes (msg[], borrowed); the
 * repeated field REPEATED_FIELD of req_parse (Create's rootfs mounts) in
 * rootfs[]. */
struct req_fields {
	char *s[11]; /* string fields by number (1..10), owned */
	uint64_t v[11];
	const uint8_t *msg[11]; /* length-delimited fields, borrowed */
	size_t msg_len[11];
	size_t nrootfs;
	const uint8_t *rootfs[4];
	size_t rootfs_len[4];
};

static int req_parse(const uint8_t *data, size_t len, struct req_fields *q, int repeated_field,
		     struct kiln_error **err)
{
	memset(q, 0, sizeof *q);
	struct pb_reader r = {data, data + len};
	struct pb_field f;
	int k;
	while ((k = pb_next(&r, &f, err)) > 0) {
		if (f.number < 1 || f.number > 10)
			continue;
		if (f.wire == 0) {
			q->v[f.number] = f.varint;
		} else if (f.wire == 2) {
			if (f.number == repeated_field) {
				if (q->nrootfs < 4) {
					q->rootfs[q->nrootfs] = f.data;
					q->rootfs_len[q->nrootfs++] = f.len;
				}
				continue;
			}
			free(q->s[f.number]);
			q->s[f.number] = pb_field_strdup(&f);
			q->msg[f.number] = f.data;
			q->msg_len[f.number] = f.len;
		}
	}
	return k;
}

static void req_release(struct req_fields *q)
{
	for (int i = 0; i < 11; i++)
		free(q->s[i]);
}

/* ---- ttrpc ---- */

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int frame_send(int fd, uint32_t stream, int type, const struct pb_buf *msg)
{
	uint8_t hdr[10];
	put_be32(hdr, (uint32_t)msg->len);
	put_be32(hdr + 4, stream);
	hdr[8] = (uint8_t)type;
	hdr[9] = 0;
	if (write_all(fd, hdr, sizeof hdr, NULL) < 0 ||
	    (msg->len && write_all(fd, msg->data, msg->len, NULL) < 0))
		return -1;
	return 0;
}

/* Response {status 1 {code 1, message 2}, payload 2}. */
static void respond(struct shim *s, int conn, uint32_t stream, int code, const char *message,
		    const struct pb_buf *payload)
{
	cleanup_pb_buf struct pb_buf resp = {0};
	if (code) {
		cleanup_pb_buf struct pb_buf st = {0};
		pb_put_uint(&st, 1, (uint64_t)code);
		pb_put_string(&st, 2, message);
		pb_put_message(&resp, 1, &st);
	} else if (payload && payload->len) {
		pb_put_bytes(&resp, 2, payload->data, payload->len);
	}
	if (s->conns[conn].fd >= 0 && frame_send(s->conns[conn].fd, stream, TTRPC_RESPONSE, &resp) < 0)
		fprintf(stderr, "kiln shim %s: reply: %s\n", s->id, strerror(errno));
}

static void respond_error(struct shim *s, int conn, uint32_t stream, int code,
			  struct kiln_error **err)
{
	respond(s, conn, stream, code, (*err && (*err)->msg) ? (*err)->msg : "error", NULL);
	kiln_error_release(err);
}

/* Publishes EVENT (TYPE_URL) on TOPIC to containerd's ttrpc socket; a
 * failure is logged, never fatal (containerd also asks State). */
static void publish(struct shim *s, const char *topic, const char *type_url,
		    const struct pb_buf *event)
{
	if (s->ttrpc_address == NULL || *s->ttrpc_address == '\0')
		return;
	const char *path = s->ttrpc_address;
	if (strncmp(path, "unix://", 7) == 0)
		path += 7;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		return;
	strcpy(sa.sun_path, path);
	cleanup_close int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "kiln shim %s: publish %s: %s: %s\n", s->id, topic, path,
			strerror(errno));
		return;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	cleanup_pb_buf struct pb_buf any = {0};
	pb_put_string(&any, 1, type_url);
	pb_put_bytes(&any, 2, event->data, event->len);
	cleanup_pb_buf struct pb_buf env = {0};
	put_timestamp(&env, 1, &now);
	pb_put_string(&env, 2, s->ns);
	pb_put_string(&env, 3, topic);
	pb_put_message(&env, 4, &any);
	cleanup_pb_buf struct pb_buf fwd = {0};
	pb_put_message(&fwd, 1, &env);
	cleanup_pb_buf struct pb_buf md = {0};
	pb_put_string(&md, 1, "containerd-namespace-ttrpc");
	pb_put_string(&md, 2, s->ns);
	cleanup_pb_buf struct pb_buf req = {0};
	pb_put_string(&req, 1, "containerd.services.events.ttrpc.v1.Events");
	pb_put_string(&req, 2, "Forward");
	pb_put_bytes(&req, 3, fwd.data, fwd.len);
	pb_put_message(&req, 5, &md);
	if (frame_send(fd, 1, TTRPC_REQUEST, &req) < 0)
		return;
	/* The reply (an Empty or an error); wait for it so the event is in
	 * before the shim answers anything that depends on it. */
	uint8_t hdr[10];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) == 1 && read(fd, hdr, sizeof hdr) == (ssize_t)sizeof hdr) {
		uint32_t n = get_be32(hdr);
		char sink[512];
		while (n > 0) {
			ssize_t k = read(fd, sink, n < sizeof sink ? n : sizeof sink);
			if (k <= 0)
				break;
			n -= (uint32_t)k;
		}
	}
}

/* ---- the OCI runtime ---- */

/* Runs the runtime with ARGS (after its global options) and STDIO (-1:
 * /dev/null), waits for it, and returns 0, or -1 and *err with the last
 * error the runtime logged. */
static int runtime_run(struct shim *s, const char *const *args, const int stdio[3],
		       struct kiln_error **err)
{
	cleanup_free char *log = path_join(s->bundle, "log.json");
	unlink(log);
	const char *argv[32];
	size_t n = 0;
	argv[n++] = s->runtime;
	argv[n++] = "--root";
	argv[n++] = s->root;
	argv[n++] = "--log";
	argv[n++] = log;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	if (s->systemd_cgroup)
		argv[n++] = "--systemd-cgroup";
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	if (pid < 0)
		return kiln_error_make(err, errno, "fork for %s", s->runtime);
	if (pid == 0) {
		child_reset_signals();
		int null = open("/dev/null", O_RDWR);
		for (int i = 0; i < 3; i++) {
			int fd = stdio && stdio[i] >= 0 ? stdio[i] : null;
			if (fd == i)
				fcntl(fd, F_SETFD, 0);
			else if (fd >= 0)
				dup2(fd, i);
		}
		if (strchr(s->runtime, '/'))
			execv(s->runtime, (char *const *)argv);
		else
			execvp(s->runtime, (char *const *)argv);
		dprintf(2, "exec %s: %s\n", s->runtime, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return kiln_error_make(err, errno, "wait for %s", s->runtime);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	/* The runtime's last logged error: {"level":"error","msg":"…"} lines. */
	size_t len = 0;
	cleanup_free char *text = read_file(log, 1 << 20, &len, NULL);
	cleanup_free char *msg = NULL;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		struct kiln_error *e2 = NULL;
		struct json *j = json_parse(line, strlen(line), &e2);
		kiln_error_release(&e2);
		const char *m = json_get_str(j, "msg");
		const char *lvl = json_get_str(j, "level");
		if (m && (lvl == NULL || strcmp(lvl, "error") == 0 || strcmp(lvl, "fatal") == 0)) {
			free(msg);
			msg = xstrdup(m);
		}
		json_free(j);
		line = nl ? nl + 1 : NULL;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && msg == NULL)
		return kiln_error_make(err, 0, "%s: not found", s->runtime);
	return kiln_error_make(err, 0, "%s %s: %s", s->runtime, args[0],
			       msg ? msg : WIFEXITED(status) ? "failed" : "killed");
}

/* ---- stdio: "" (nothing), binary://PATH?K=V (containerd's logging binary
 * protocol: the streams on fds 3 and 4, fd 5 closed when ready), file://PATH,
 * or a FIFO path ---- */

static int open_uri(const char *uri, int flags, struct kiln_error **err)
{
	if (uri == NULL || *uri == '\0')
		return open("/dev/null", flags | O_CLOEXEC);
	if (strncmp(uri, "file://", 7) == 0) {
		int fd = open(uri + 7, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd < 0)
			kiln_error_make(err, errno, "%s", uri);
		return fd;
	}
	if (strstr(uri, "://"))
		return kiln_error_make(err, 0, "%s: unsupported stdio scheme", uri);
	/* A FIFO the client opened for reading (or writing, for stdin). */
	int fd = open(uri, flags | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "%s", uri);
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	return fd;
}

/* Starts the logging binary of URI with the read ends of two new pipes and
 * returns their write ends in OUT[0] and OUT[1]. */
static int start_logger(struct shim *s, struct shim_proc *pr, const char *uri, int out[2],
			struct kiln_error **err)
{
	const char *rest = uri + strlen("binary://");
	const char *q = strchr(rest, '?');
	cleanup_free char *path = percent_decode(rest, q ? (size_t)(q - rest) : strlen(rest), true);
	char *args[34];
	size_t na = 0;
	args[na++] = path;
	for (const char *p = q ? q + 1 : NULL; p && *p && na < 32;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		args[na++] = percent_decode(p, eq ? (size_t)(eq - p) : len, true);
		if (eq && na < 32)
			args[na++] = percent_decode(eq + 1, len - (size_t)(eq + 1 - p), true);
		p = amp ? amp + 1 : NULL;
	}
	args[na] = NULL;
	/* stdout, stderr, and the one the logger closes once ready */
	int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	int ret = -1;
	pid_t pid = -1;
	for (int i = 0; i < 3; i++) {
		if (pipe2(p[i], O_CLOEXEC) < 0) {
			kiln_error_make(err, errno, "pipe");
			goto out;
		}
	}
	pid = fork();
	if (pid == 0) {
		child_reset_signals();
		int null = open("/dev/null", O_RDWR);
		/* fds 3, 4, 5 from fds that may sit anywhere: move them high first. */
		int a = fcntl(p[0][0], F_DUPFD_CLOEXEC, 10), b = fcntl(p[1][0], F_DUPFD_CLOEXEC, 10),
		    c = fcntl(p[2][1], F_DUPFD_CLOEXEC, 10);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		dup2(a, 3);
		dup2(b, 4);
		dup2(c, 5);
		char env_id[512], env_ns[512];
		snprintf(env_id, sizeof env_id, "CONTAINER_ID=%s", s->id);
		snprintf(env_ns, sizeof env_ns, "CONTAINER_NAMESPACE=%s", s->ns);
		char *envp[] = {env_id, env_ns, NULL};
		execve(path, args, envp);
		_exit(127);
	}
	if (pid < 0) {
		kiln_error_make(err, errno, "fork for %s", path);
		goto out;
	}
	pr->logger = pid;
	/* Our copies of the logger's ends go first, so that its exit before
	 * getting ready still ends the read below. */
	close(p[0][0]);
	close(p[1][0]);
	close(p[2][1]);
	p[0][0] = p[1][0] = p[2][1] = -1;
	char c;
	while (read(p[2][0], &c, 1) < 0 && errno == EINTR)
		;
	out[0] = p[0][1];
	out[1] = p[1][1];
	p[0][1] = p[1][1] = -1;
	ret = 0;
out:
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 2; k++)
			if (p[i][k] >= 0)
				close(p[i][k]);
	for (size_t i = 1; i < na; i++)
		free(args[i]);
	return ret;
}

/* ---- byte pumps (stdin, a terminal's output) ---- */

static void pump_reset(struct shim_pump *p)
{
	p->from = p->to = -1;
	p->close_to = p->eof = p->drain = false;
	p->off = p->len = 0;
}

static bool pump_active(const struct shim_pump *p)
{
	return p->from >= 0 && p->to >= 0;
}

/* Ends P: closes the source (always ours) and the sink when it is ours. */
static void pump_end(struct shim_pump *p)
{
	if (p->from >= 0)
		close(p->from);
	if (p->close_to && p->to >= 0)
		close(p->to);
	pump_reset(p);
}

/* Moves what it can without blocking: reads when the buffer is empty, then
 * writes.  EOF or an error on the source (a master whose terminal every
 * process closed reads EIO), or with DRAIN (CloseIO) a source with nothing
 * more, ends it once the buffer is out; a sink gone (EPIPE) drops the rest. */
static void pump_run(struct shim_pump *p)
{
	while (pump_active(p)) {
		if (p->len == 0 && !p->eof) {
			ssize_t n = read(p->from, p->buf, sizeof p->buf);
			if (n > 0) {
				p->off = 0;
				p->len = (size_t)n;
			} else if (n == 0 || (errno != EAGAIN && errno != EINTR) || p->drain) {
				p->eof = true;
			}
		}
		while (p->len > 0) {
			ssize_t n = write(p->to, p->buf + p->off, p->len);
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			if (n <= 0) {
				p->len = 0;
				p->eof = true;
				break;
			}
			p->off += (size_t)n;
			p->len -= (size_t)n;
		}
		if (p->eof)
			pump_end(p);
		if (!p->drain)
			return;
	}
}

/* Its poll entry: the source while the buffer is empty, else the sink. */
static bool pump_poll(const struct shim_pump *p, struct pollfd *pfd)
{
	if (!pump_active(p))
		return false;
	*pfd = p->len ? (struct pollfd){.fd = p->to, .events = POLLOUT}
		      : (struct pollfd){.fd = p->from, .events = POLLIN};
	return true;
}

/* What a terminal still holds goes out before its process is deleted: the
 * pump runs until its source ends, for at most two seconds, or until it has
 * been quiet for a tenth of one (a daemon the process started may hold the
 * terminal open forever). */
static void pump_drain(struct shim_pump *p)
{
	double end = init_uptime() + 2.0;
	struct pollfd pfd;
	while (pump_poll(p, &pfd) && init_uptime() < end) {
		if (poll(&pfd, 1, 100) == 0)
			break;
		pump_run(p);
	}
	pump_end(p);
}

/* ---- processes: the init and the exec'd ---- */

static struct shim_proc *proc_find(struct shim *s, const char *exec_id)
{
	if (exec_id == NULL || *exec_id == '\0')
		return &s->procs[0];
	for (int i = 1; i < MAX_PROCS; i++)
		if (s->procs[i].used && strcmp(s->procs[i].exec_id, exec_id) == 0)
			return &s->procs[i];
	return NULL;
}

static void proc_init(struct shim_proc *pr)
{
	memset(pr, 0, sizeof *pr);
	pump_reset(&pr->in);
	pump_reset(&pr->out);
	pr->pty = -1;
	pr->status = TASK_UNKNOWN;
}

/* Closes what PR's I/O holds, the terminal's output drained first. */
static void proc_close_io(struct shim_proc *pr)
{
	pump_drain(&pr->out);
	pump_end(&pr->in);
	if (pr->pty >= 0)
		close(pr->pty);
	pr->pty = -1;
}

static void proc_release(struct shim_proc *pr)
{
	proc_close_io(pr);
	free(pr->exec_id);
	free(pr->spec);
	for (int i = 0; i < 3; i++)
		free(pr->stdio[i]);
	proc_init(pr);
}

/* Opens the three streams of PR into FDS (-1: /dev/null) for the runtime;
 * the caller closes them once it has passed them on.  Stdin, a FIFO the
 * client writes, is opened read-write (no EOF before the client comes) and
 * pumped into a pipe that CloseIO closes, as containerd's shims do; with a
 * terminal, stdin and stdout are pumped to and from its master instead (set
 * by the caller), and the runtime gets none of them. */
static int open_stdio(struct shim *s, struct shim_proc *pr, int fds[3], struct kiln_error **err)
{
	fds[0] = fds[1] = fds[2] = -1;
	const char *out = pr->stdio[1], *errs = pr->stdio[2];
	if (out && str_has_prefix(out, "binary://")) {
		int w[2] = {-1, -1};
		if (start_logger(s, pr, out, w, err) < 0)
			return -1;
		fds[1] = w[0];
		fds[2] = w[1];
	} else if (out && errs && *out && strcmp(out, errs) == 0 && str_has_prefix(out, "file://")) {
		if ((fds[1] = open_uri(out, O_WRONLY, err)) < 0)
			return -1;
		fds[2] = fcntl(fds[1], F_DUPFD_CLOEXEC, 3);
	} else {
		if ((fds[1] = open_uri(out, O_WRONLY, err)) < 0 ||
		    (!pr->terminal && (fds[2] = open_uri(errs, O_WRONLY, err)) < 0))
			goto fail;
	}
	if (pr->stdio[0] && *pr->stdio[0]) {
		pr->in.from = open(pr->stdio[0], O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (pr->in.from < 0) {
			kiln_error_make(err, errno, "%s", pr->stdio[0]);
			goto fail;
		}
		int p[2];
		if (!pr->terminal) {
			if (pipe2(p, O_CLOEXEC) < 0) {
				kiln_error_make(err, errno, "pipe");
				goto fail;
			}
			fds[0] = p[0];
			pr->in.to = p[1];
			pr->in.close_to = true;
			fcntl(p[1], F_SETFL, O_NONBLOCK);
		}
	}
	if (pr->terminal) {
		pr->out.to = fds[1];
		pr->out.close_to = true;
		fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK);
		if (fds[2] >= 0)
			close(fds[2]);
		fds[1] = fds[2] = -1;
	}
	return 0;
fail:
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	pump_end(&pr->in);
	return -1;
}

/* ---- terminals: the runtime's --console-socket ---- */

struct console_sock {
	char dir[32];
	char path[48];
	int fd;
};

static int console_listen(struct console_sock *c, struct kiln_error **err)
{
	strcpy(c->dir, "/tmp/kiln-pty.XXXXXX");
	c->fd = -1;
	if (mkdtemp(c->dir) == NULL)
		return kiln_error_make(err, errno, "mkdtemp %s", c->dir);
	snprintf(c->path, sizeof c->path, "%s/sock", c->dir);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	strcpy(sa.sun_path, c->path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(c->fd, 1) < 0)
		return kiln_error_make(err, errno, "console socket %s", c->path);
	return 0;
}

/* The terminal's master the runtime sent (SCM_RIGHTS; the data is its
 * name).  The runtime has exited by now, so its connection is queued. */
static int console_receive(struct console_sock *c, struct kiln_error **err)
{
	int master = -1;
	cleanup_close int conn = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
	if (conn < 0) {
		kiln_error_make(err, errno, "the runtime sent no terminal");
	} else {
		char name[256];
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(sizeof(int))];
		} u;
		struct iovec iov = {name, sizeof name};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
				   .msg_controllen = sizeof u.buf};
		struct cmsghdr *h;
		if (recvmsg(conn, &m, MSG_CMSG_CLOEXEC) >= 0 && (h = CMSG_FIRSTHDR(&m)) &&
		    h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
			memcpy(&master, CMSG_DATA(h), sizeof master);
		else
			kiln_error_make(err, errno, "the runtime sent no terminal");
	}
	return master;
}

static void console_close(struct console_sock *c)
{
	if (c->fd >= 0)
		close(c->fd);
	unlink(c->path);
	rmdir(c->dir);
}

/* Runs the runtime's create or exec for PR with its stdio and, with a
 * terminal, a console socket whose master then feeds the pumps. */
static int proc_run(struct shim *s, struct shim_proc *pr, const char **args, size_t na,
		    struct kiln_error **err)
{
	int fds[3];
	if (open_stdio(s, pr, fds, err) < 0)
		return -1;
	struct console_sock con = {.fd = -1};
	int rc = 0;
	if (pr->terminal) {
		rc = console_listen(&con, err);
		args[na++] = "--console-socket";
		args[na++] = con.path;
	}
	args[na++] = s->id;
	args[na] = NULL;
	if (rc == 0)
		rc = runtime_run(s, args, fds, err);
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (rc == 0 && pr->terminal && (pr->pty = console_receive(&con, err)) < 0)
		rc = -1;
	if (pr->terminal)
		console_close(&con);
	if (pr->pty >= 0) {
		fcntl(pr->pty, F_SETFL, fcntl(pr->pty, F_GETFL) | O_NONBLOCK);
		pr->out.from = fcntl(pr->pty, F_DUPFD_CLOEXEC, 3);
		pr->in.to = pr->pty;
	}
	if (rc < 0) {
		if (pr->logger > 0)
			kill(pr->logger, SIGKILL);
		proc_close_io(pr);
	}
	return rc;
}

/* ---- the task ---- */

static void task_exited(struct shim *s, struct shim_proc *pr, int status)
{
	pr->status = TASK_STOPPED;
	pr->exit_status = WIFEXITED(status)	? (uint32_t)WEXITSTATUS(status)
			  : WIFSIGNALED(status) ? 128u + (uint32_t)WTERMSIG(status)
						: 255u;
	clock_gettime(CLOCK_REALTIME, &pr->exited_at);
	cleanup_pb_buf struct pb_buf ev = {0};
	pb_put_string(&ev, 1, s->id);
	pb_put_string(&ev, 2, pr->exec_id ? pr->exec_id : s->id);
	pb_put_uint(&ev, 3, (uint64_t)pr->pid);
	pb_put_uint(&ev, 4, pr->exit_status);
	put_timestamp(&ev, 5, &pr->exited_at);
	publish(s, "/tasks/exit", "containerd.events.TaskExit", &ev);
	/* Every Wait pending on it. */
	cleanup_pb_buf struct pb_buf w = {0};
	pb_put_uint(&w, 1, pr->exit_status);
	put_timestamp(&w, 2, &pr->exited_at);
	for (size_t i = 0; i < pr->nwaiters; i++)
		respond(s, pr->waiters[i].conn, pr->waiters[i].stream, 0, NULL, &w);
	pr->nwaiters = 0;
}

static void reap(struct shim *s)
{
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);
		if (p <= 0)
			return;
		bool known = false;
		for (int i = 0; i < MAX_PROCS && !known; i++) {
			struct shim_proc *pr = &s->procs[i];
			if (!pr->used)
				continue;
			if (p == pr->logger) {
				pr->logger = 0;
				known = true;
			} else if (pr->pid > 0 && p == pr->pid && pr->status != TASK_STOPPED) {
				task_exited(s, pr, status);
				known = true;
			}
		}
		if (!known && s->nzombies < MAX_ZOMBIES) {
			s->zombies[s->nzombies].pid = p;
			s->zombies[s->nzombies++].status = status;
		}
	}
}

/* The runtime options (containerd.runc.v1.Options, kept by containerd as
 * the container's runtime options): no_pivot_root 1, no_new_keyring 2,
 * systemd_cgroup 3, binary_name 6, root 7. */
static void take_options(struct shim *s, const uint8_t *any, size_t len)
{
	size_t vlen = 0;
	const uint8_t *value = any_value(any, len, &vlen);
	if (value == NULL)
		return;
	struct pb_field f;
	struct pb_reader o = {value, value + vlen};
	while (pb_next(&o, &f, NULL) > 0) {
		if (f.wire == 0 && f.number == 1)
			s->no_pivot = f.varint != 0;
		else if (f.wire == 0 && f.number == 2)
			s->no_new_keyring = f.varint != 0;
		else if (f.wire == 0 && f.number == 3)
			s->systemd_cgroup = f.varint != 0;
		else if (f.wire == 2 && f.number == 6 && f.len) {
			free(s->runtime);
			s->runtime = pb_field_strdup(&f);
		} else if (f.wire == 2 && f.number == 7 && f.len) {
			free(s->root);
			s->root = pb_field_strdup(&f);
		}
	}
}

/* Mount {type 1, source 2, target 3, options 4} of a snapshotter onto
 * BUNDLE/rootfs. */
static int mount_rootfs(struct shim *s, const uint8_t *m, size_t len, struct kiln_error **err)
{
	struct pb_reader r = {m, m + len};
	struct pb_field f;
	cleanup_free char *type = NULL, *source = NULL;
	char *opts[64];
	size_t nopts = 0;
	while (pb_next(&r, &f, NULL) > 0 && f.wire == 2) {
		if (f.number == 1)
			type = pb_field_strdup(&f);
		else if (f.number == 2)
			source = pb_field_strdup(&f);
		else if (f.number == 4 && nopts < 63)
			opts[nopts++] = pb_field_strdup(&f);
	}
	opts[nopts] = NULL;
	cleanup_free char *data = NULL;
	unsigned long flags = runtime_mount_flags(opts, &data);
	for (size_t i = 0; i < nopts; i++)
		free(opts[i]);
	cleanup_free char *target = path_join(s->bundle, "rootfs");
	mkdir(target, 0711);
	if (mount(source, target, type, flags, data) < 0)
		return kiln_error_make(err, errno, "mount %s (%s) on %s", source ? source : "",
				       type ? type : "", target);
	s->rootfs_mounted = true;
	return 0;
}

static bool zombie_take(struct shim *s, pid_t pid, int *status)
{
	for (size_t i = 0; i < s->nzombies; i++) {
		if (s->zombies[i].pid == pid) {
			*status = s->zombies[i].status;
			s->zombies[i] = s->zombies[--s->nzombies];
			return true;
		}
	}
	return false;
}

/* After the runtime's create or exec: the process's pid from PIDFILE, and
 * its exit if it already happened. */
static int proc_started(struct shim *s, struct shim_proc *pr, const char *pidfile,
			struct kiln_error **err)
{
	cleanup_free char *pidtext = read_file(pidfile, 64, NULL, err);
	unlink(pidfile);
	if (pidtext == NULL || (pr->pid = (pid_t)atoi(pidtext)) <= 0) {
		if (*err == NULL)
			kiln_error_make(err, 0, "%s: no pid", pidfile);
		return -1;
	}
	int status;
	if (zombie_take(s, pr->pid, &status))
		task_exited(s, pr, status);
	return 0;
}

static void respond_pid(struct shim *s, int conn, uint32_t stream, pid_t pid)
{
	cleanup_pb_buf struct pb_buf resp = {0};
	pb_put_uint(&resp, 1, (uint64_t)pid);
	respond(s, conn, stream, 0, NULL, &resp);
}

static void do_create(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct kiln_error *err = NULL;
	struct shim_proc *pr = &s->procs[0];
	if (s->created)
		return respond(s, conn, stream, CODE_ALREADY_EXISTS, "task already created", NULL);
	if (q->s[8] && *q->s[8])
		return respond(s, conn, stream, CODE_UNIMPLEMENTED,
			       "the kiln shim does not restore checkpoints", NULL);
	if (q->msg[10])
		take_options(s, q->msg[10], q->msg_len[10]);
	if (q->s[2] && *q->s[2]) {
		free(s->bundle);
		s->bundle = xstrdup(q->s[2]);
	}
	for (size_t i = 0; i < q->nrootfs; i++) {
		if (i > 0 || mount_rootfs(s, q->rootfs[i], q->rootfs_len[i], &err) < 0) {
			if (err == NULL)
				kiln_error_make(&err, 0, "more than one rootfs mount");
			return respond_error(s, conn, stream, CODE_INTERNAL, &err);
		}
	}
	pr->terminal = q->v[4] != 0;
	for (int i = 0; i < 3; i++) {
		free(pr->stdio[i]);
		pr->stdio[i] = xstrdup(q->s[5 + i] ? q->s[5 + i] : "");
	}
	/* For `delete` after a crash: which runtime, which root. */
	cleanup_free char *saved = xasprintf("%s\n%s\n", s->runtime, s->root);
	cleanup_free char *saved_path = path_join(s->bundle, "kiln-shim-runtime");
	write_file_atomic(saved_path, saved, strlen(saved), 0600, NULL);

	cleanup_free char *pidfile = path_join(s->bundle, "init.pid");
	unlink(pidfile);
	const char *args[16] = {"create", "--bundle", s->bundle, "--pid-file", pidfile};
	size_t na = 5;
	if (s->no_pivot)
		args[na++] = "--no-pivot";
	if (s->no_new_keyring)
		args[na++] = "--no-new-keyring";
	if (proc_run(s, pr, args, na, &err) < 0 || proc_started(s, pr, pidfile, &err) < 0)
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	s->created = true;
	if (pr->status != TASK_STOPPED)
		pr->status = TASK_CREATED;
	respond_pid(s, conn, stream, pr->pid);
}

/* Whether the task exists (else answered NOT_FOUND), for the calls on the
 * whole container (Pause, Resume, Update, Pids), which carry no exec id:
 * Update's field 2 is its resources. */
static bool task_matches(struct shim *s, int conn, uint32_t stream)
{
	if (!s->created || s->deleted) {
		respond(s, conn, stream, CODE_NOT_FOUND, "task not created", NULL);
		return false;
	}
	return true;
}

/* The process a request names (its exec_id, field 2; the init without
 * one), or NULL after answering that there is none. */
static struct shim_proc *proc_for(struct shim *s, int conn, uint32_t stream,
				  const struct req_fields *q)
{
	if (!task_matches(s, conn, stream))
		return NULL;
	struct shim_proc *pr = proc_find(s, q->s[2]);
	if (pr == NULL) {
		cleanup_free char *m = xasprintf("process %s not found", q->s[2]);
		respond(s, conn, stream, CODE_NOT_FOUND, m, NULL);
	}
	return pr;
}

static void publish_exec(struct shim *s, struct shim_proc *pr, const char *topic,
			 const char *type_url)
{
	cleanup_pb_buf struct pb_buf ev = {0};
	pb_put_string(&ev, 1, s->id);
	pb_put_string(&ev, 2, pr->exec_id);
	pb_put_uint(&ev, 3, (uint64_t)pr->pid);
	publish(s, topic, type_url, &ev);
}

/* Exec {id 1, exec_id 2, terminal 3, stdin 4, stdout 5, stderr 6, spec 7
 * (an Any of the OCI process JSON)}: recorded; Start runs it. */
static void do_exec(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	if (!s->created || s->deleted || s->procs[0].status == TASK_STOPPED)
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION, "the task is not running",
			       NULL);
	if (q->s[2] == NULL || *q->s[2] == '\0')
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION, "exec without an id", NULL);
	if (proc_find(s, q->s[2]))
		return respond(s, conn, stream, CODE_ALREADY_EXISTS, "exec id already in use", NULL);
	struct shim_proc *pr = NULL;
	for (int i = 1; i < MAX_PROCS && pr == NULL; i++)
		if (!s->procs[i].used)
			pr = &s->procs[i];
	if (pr == NULL)
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION,
			       "the kiln shim runs at most 15 exec'd processes at once", NULL);
	size_t vlen = 0;
	const uint8_t *value = any_value(q->msg[7], q->msg_len[7], &vlen);
	if (value == NULL)
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION, "exec without a process spec",
			       NULL);
	proc_init(pr);
	pr->used = true;
	pr->exec_id = xstrdup(q->s[2]);
	pr->spec = xmalloc(vlen);
	memcpy(pr->spec, value, vlen);
	pr->spec_len = vlen;
	pr->terminal = q->v[3] != 0;
	for (int i = 0; i < 3; i++)
		pr->stdio[i] = xstrdup(q->s[4 + i] ? q->s[4 + i] : "");
	pr->status = TASK_CREATED;
	publish_exec(s, pr, "/tasks/exec-added", "containerd.events.TaskExecAdded");
	respond(s, conn, stream, 0, NULL, NULL);
}

/* An exec'd process: `RUNTIME exec --detach` with its spec in a file; it
 * is the shim's (the subreaper's) child once the runtime exits. */
static int exec_start(struct shim *s, struct shim_proc *pr, struct kiln_error **err)
{
	unsigned n = ++s->exec_seq;
	char name[32];
	snprintf(name, sizeof name, "kiln-exec-%u.json", n);
	cleanup_free char *spec = path_join(s->bundle, name);
	snprintf(name, sizeof name, "kiln-exec-%u.pid", n);
	cleanup_free char *pidfile = path_join(s->bundle, name);
	if (write_file_atomic(spec, pr->spec, pr->spec_len, 0600, err) < 0)
		return -1;
	const char *args[16] = {"exec", "--process", spec, "--detach", "--pid-file", pidfile};
	int rc = proc_run(s, pr, args, 6, err);
	unlink(spec);
	if (rc == 0)
		rc = proc_started(s, pr, pidfile, err);
	return rc;
}

static void do_start(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	if (pr->status != TASK_CREATED)
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION,
			       "process is not in created state", NULL);
	struct kiln_error *err = NULL;
	const char *args[] = {"start", s->id, NULL};
	if ((pr->exec_id ? exec_start(s, pr, &err) : runtime_run(s, args, NULL, &err)) < 0)
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	if (pr->status == TASK_CREATED)
		pr->status = TASK_RUNNING;
	if (pr->exec_id)
		publish_exec(s, pr, "/tasks/exec-started", "containerd.events.TaskExecStarted");
	respond_pid(s, conn, stream, pr->pid);
}

static void do_state(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	cleanup_pb_buf struct pb_buf resp = {0};
	pb_put_string(&resp, 1, s->id);
	pb_put_string(&resp, 2, s->bundle);
	pb_put_uint(&resp, 3, (uint64_t)pr->pid);
	pb_put_uint(&resp, 4, (uint64_t)pr->status);
	pb_put_string(&resp, 5, pr->stdio[0]);
	pb_put_string(&resp, 6, pr->stdio[1]);
	pb_put_string(&resp, 7, pr->stdio[2]);
	pb_put_bool(&resp, 8, pr->terminal);
	pb_put_uint(&resp, 9, pr->exit_status);
	put_timestamp(&resp, 10, &pr->exited_at);
	pb_put_string(&resp, 11, pr->exec_id);
	respond(s, conn, stream, 0, NULL, &resp);
}

static void do_kill(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	int sig = (int)q->v[3];
	bool all = q->v[4] != 0;
	if (pr->status == TASK_STOPPED && !all)
		return respond(s, conn, stream, CODE_NOT_FOUND, "process already finished", NULL);
	struct kiln_error *err = NULL;
	if (pr->exec_id && pr->status == TASK_CREATED) {
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION, "process not started", NULL);
	} else if (!pr->exec_id && (all || pr->status == TASK_CREATED || pr->status == TASK_PAUSED)) {
		/* The whole cgroup, or a process the runtime holds in its init. */
		char signum[16];
		snprintf(signum, sizeof signum, "%d", sig);
		const char *args_all[] = {"kill", "--all", s->id, signum, NULL};
		const char *args[] = {"kill", s->id, signum, NULL};
		if (runtime_run(s, all ? args_all : args, NULL, &err) < 0)
			return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	} else if (kill(pr->pid, sig) < 0) {
		if (errno == ESRCH)
			return respond(s, conn, stream, CODE_NOT_FOUND, "process already finished",
				       NULL);
		kiln_error_make(&err, errno, "kill %d", (int)pr->pid);
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	}
	respond(s, conn, stream, 0, NULL, NULL);
}

static void do_wait(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	if (pr->status == TASK_STOPPED) {
		cleanup_pb_buf struct pb_buf w = {0};
		pb_put_uint(&w, 1, pr->exit_status);
		put_timestamp(&w, 2, &pr->exited_at);
		return respond(s, conn, stream, 0, NULL, &w);
	}
	if (pr->nwaiters == MAX_WAITERS)
		return respond(s, conn, stream, CODE_INTERNAL, "too many waiters", NULL);
	pr->waiters[pr->nwaiters].conn = conn;
	pr->waiters[pr->nwaiters++].stream = stream;
}

static void do_delete(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	if (pr->status == TASK_RUNNING || pr->status == TASK_PAUSED)
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION,
			       "cannot delete a running process", NULL);
	if (pr->exec_id == NULL) {
		struct kiln_error *err = NULL;
		const char *args[] = {"delete", "--force", s->id, NULL};
		if (runtime_run(s, args, NULL, &err) < 0) {
			/* Already gone from the runtime's state is fine. */
			kiln_error_release(&err);
		}
		if (pr->status == TASK_CREATED) {
			/* Killed before it ran: its pid was reaped or will be. */
			reap(s);
			if (pr->status != TASK_STOPPED)
				task_exited(s, pr, SIGKILL); /* a wait status: killed by KILL */
		}
		proc_close_io(pr);
		if (s->rootfs_mounted) {
			cleanup_free char *target = path_join(s->bundle, "rootfs");
			umount2(target, MNT_DETACH);
			s->rootfs_mounted = false;
		}
		s->deleted = true;
	}
	cleanup_pb_buf struct pb_buf resp = {0};
	pb_put_uint(&resp, 1, (uint64_t)pr->pid);
	pb_put_uint(&resp, 2, pr->exit_status);
	put_timestamp(&resp, 3, &pr->exited_at);
	/* An exec'd process, never started or exited: its terminal's last
	 * output goes out, then its slot is free. */
	if (pr->exec_id)
		proc_release(pr);
	respond(s, conn, stream, 0, NULL, &resp);
}

/* Pause, Resume: the whole container (no exec_id). */
static void do_simple(struct shim *s, int conn, uint32_t stream, const char *verb,
		      int new_status)
{
	if (!task_matches(s, conn, stream))
		return;
	struct kiln_error *err = NULL;
	const char *args[] = {verb, s->id, NULL};
	if (runtime_run(s, args, NULL, &err) < 0)
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	if (s->procs[0].status != TASK_STOPPED)
		s->procs[0].status = new_status;
	respond(s, conn, stream, 0, NULL, NULL);
}

/* ResizePty {id 1, exec_id 2, width 3, height 4}. */
static void do_resize(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	struct winsize ws = {.ws_col = (unsigned short)q->v[3], .ws_row = (unsigned short)q->v[4]};
	if (pr->pty < 0)
		return respond(s, conn, stream, CODE_FAILED_PRECONDITION, "the process has no terminal",
			       NULL);
	if (ioctl(pr->pty, TIOCSWINSZ, &ws) < 0) {
		struct kiln_error *err = NULL;
		kiln_error_make(&err, errno, "resize the terminal");
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	}
	respond(s, conn, stream, 0, NULL, NULL);
}

/* CloseIO {id 1, exec_id 2, stdin 3}: the process reads EOF once what the
 * client wrote is through (the FIFO itself never ends: the shim holds it
 * open for writing too). */
static void do_close_io(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	struct shim_proc *pr = proc_for(s, conn, stream, q);
	if (pr == NULL)
		return;
	if (q->v[3]) {
		pr->in.drain = true;
		pump_run(&pr->in);
	}
	respond(s, conn, stream, 0, NULL, NULL);
}

/* Update {id 1, resources 2 (Any of the OCI LinuxResources JSON)}. */
static void do_update(struct shim *s, int conn, uint32_t stream, const struct req_fields *q)
{
	if (!task_matches(s, conn, stream))
		return;
	size_t vlen = 0;
	const uint8_t *value = any_value(q->msg[2], q->msg_len[2], &vlen);
	struct kiln_error *err = NULL;
	cleanup_free char *file = path_join(s->bundle, "kiln-resources.json");
	if (write_file_atomic(file, value ? (const char *)value : "{}", value ? vlen : 2, 0600,
			      &err) < 0)
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	const char *args[] = {"update", "--resources", file, s->id, NULL};
	int rc = runtime_run(s, args, NULL, &err);
	unlink(file);
	if (rc < 0)
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	respond(s, conn, stream, 0, NULL, NULL);
}

/* ---- Stats: the task's cgroup v2 figures as containerd's
 * io.containerd.cgroups.v2.Metrics (what `ctr task metrics` prints and
 * containerd's Metrics call returns), read from the cgroup of the task's init
 * process.  Fields as in containerd/cgroups' cgroup2/stats/metrics.proto;
 * hugetlb and rdma are left out. */

/* A cgroup file's value: "max" (no limit) is UINT64_MAX, as containerd's
 * reader has it. */
static uint64_t stat_value(const char *v)
{
	return strncmp(v, "max", 3) == 0 ? UINT64_MAX : strtoull(v, NULL, 10);
}

/* For each "KEY VALUE" line of TEXT (NULL: none) whose KEY is KEYS[i]:
 * VALUE as field i + 1 of OUT. */
static void stat_keys(struct pb_buf *out, const char *text, const char *const *keys, size_t n)
{
	for (const char *line = text; line && *line;) {
		size_t k = strcspn(line, " \n");
		for (size_t i = 0; i < n && line[k] == ' '; i++)
			if (strlen(keys[i]) == k && memcmp(line, keys[i], k) == 0)
				pb_put_uint(out, (int)i + 1, stat_value(line + k + 1));
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
}

/* io.stat's lines, "MAJ:MIN rbytes=N wbytes=N rios=N wios=N ...", as
 * IOStat's repeated IOEntry {major 1, minor 2, rbytes 3 ... wios 6}. */
static void io_stat(struct pb_buf *out, const char *text)
{
	static const char *const keys[] = {"rbytes=", "wbytes=", "rios=", "wios="};
	for (const char *line = text; line && *line;) {
		size_t len = strcspn(line, "\n");
		char *end;
		unsigned long maj = strtoul(line, &end, 10);
		if (*end == ':' && end < line + len) {
			cleanup_pb_buf struct pb_buf e = {0};
			pb_put_uint(&e, 1, maj);
			pb_put_uint(&e, 2, strtoul(end + 1, &end, 10));
			for (const char *w = end; w < line + len; w += strcspn(w, " \n")) {
				w += strspn(w, " ");
				for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
					if (strncmp(w, keys[i], strlen(keys[i])) == 0)
						pb_put_uint(
						    &e, (int)i + 3,
						    strtoull(w + strlen(keys[i]), NULL, 10));
			}
			pb_put_message(out, 1, &e);
		}
		line = line[len] ? line + len + 1 : NULL;
	}
}

static char *cgroup_file(const char *dir, const char *name)
{
	cleanup_free char *path = xasprintf("%s/%s", dir, name);
	return read_file(path, 1 << 16, NULL, NULL);
}

/* Metrics for the cgroup v2 directory DIR. */
static void cgroup_metrics(const char *dir, struct pb_buf *m)
{
	static const char *const mem_keys[] = {"anon",
					       "file",
					       "kernel_stack",
					       "slab",
					       "sock",
					       "shmem",
					       "file_mapped",
					       "file_dirty",
					       "file_writeback",
					       "anon_thp",
					       "inactive_anon",
					       "active_anon",
					       "inactive_file",
					       "active_file",
					       "unevictable",
					       "slab_reclaimable",
					       "slab_unreclaimable",
					       "pgfault",
					       "pgmajfault",
					       "workingset_refault",
					       "workingset_activate",
					       "workingset_nodereclaim",
					       "pgrefill",
					       "pgscan",
					       "pgsteal",
					       "pgactivate",
					       "pgdeactivate",
					       "pglazyfree",
					       "pglazyfreed",
					       "thp_fault_alloc",
					       "thp_collapse_alloc"};
	static const char *const cpu_keys[] = {"usage_usec", "user_usec",    "system_usec",
					       "nr_periods", "nr_throttled", "throttled_usec"};
	static const char *const event_keys[] = {"low", "high", "max", "oom", "oom_kill"};
	/* one value each: PidsStat 1-2, then MemoryStat 32-37 */
	static const char *const single[] = {
	    "pids.current",	   "pids.max",	      "memory.current", "memory.max",
	    "memory.swap.current", "memory.swap.max", "memory.peak",	"memory.swap.peak"};
	cleanup_pb_buf struct pb_buf pids = {0}, cpu = {0}, mem = {0}, io = {0}, ev = {0};
	for (size_t i = 0; i < ARRAY_SIZE(single); i++) {
		cleanup_free char *v = cgroup_file(dir, single[i]);
		if (v)
			pb_put_uint(i < 2 ? &pids : &mem, i < 2 ? (int)i + 1 : (int)i + 30,
				    stat_value(v));
	}
	cleanup_free char *c = cgroup_file(dir, "cpu.stat");
	cleanup_free char *ms = cgroup_file(dir, "memory.stat");
	cleanup_free char *e = cgroup_file(dir, "memory.events");
	cleanup_free char *i = cgroup_file(dir, "io.stat");
	stat_keys(&cpu, c, cpu_keys, ARRAY_SIZE(cpu_keys));
	stat_keys(&mem, ms, mem_keys, ARRAY_SIZE(mem_keys));
	stat_keys(&ev, e, event_keys, ARRAY_SIZE(event_keys));
	io_stat(&io, i);
	pb_put_message(m, 1, &pids);
	pb_put_message(m, 2, &cpu);
	pb_put_message(m, 4, &mem);
	pb_put_message(m, 6, &io);
	pb_put_message(m, 8, &ev);
}

/* The cgroup v2 path in /proc/PID/cgroup's TEXT ("0::/path"), cut in place. */
static char *cgroup_v2_path(char *text)
{
	if (text == NULL)
		return NULL;
	char *p = strncmp(text, "0::", 3) == 0 ? text : strstr(text, "\n0::");
	if (p == NULL)
		return NULL;
	p += *p == '\n' ? 4 : 3;
	p[strcspn(p, "\n")] = '\0';
	return p;
}

static void do_stats(struct shim *s, int conn, uint32_t stream)
{
	if (!task_matches(s, conn, stream))
		return;
	struct shim_proc *pr = &s->procs[0];
	cleanup_free char *path = xasprintf("/proc/%d/cgroup", (int)pr->pid);
	cleanup_free char *text =
	    pr->pid > 0 && pr->status != TASK_STOPPED ? read_file(path, 4096, NULL, NULL) : NULL;
	const char *cg = cgroup_v2_path(text);
	if (cg == NULL)
		return respond(s, conn, stream, CODE_NOT_FOUND,
			       "no cgroup v2 for the task (it is not running)", NULL);
	/* (a cgroup v1 host: /sys/fs/cgroup is not the v2 tree there) */
	cleanup_free char *dir = xasprintf("/sys/fs/cgroup%s", cg);
	cleanup_free char *ctl = xasprintf("%s/cgroup.controllers", dir);
	if (access(ctl, F_OK) < 0)
		return respond(s, conn, stream, CODE_NOT_FOUND,
			       "no cgroup v2 directory for the task", NULL);
	cleanup_pb_buf struct pb_buf m = {0}, any = {0}, resp = {0};
	cgroup_metrics(dir, &m);
	pb_put_string(&any, 1, "io.containerd.cgroups.v2.Metrics");
	pb_put_message(&any, 2, &m);
	pb_put_message(&resp, 1, &any);
	respond(s, conn, stream, 0, NULL, &resp);
}

/* Pids: the task's cgroup members, from `RUNTIME ps --format json` (a JSON
 * array of numbers) into ProcessInfo {pid 1}. */
static void do_pids(struct shim *s, int conn, uint32_t stream)
{
	if (!task_matches(s, conn, stream))
		return;
	struct kiln_error *err = NULL;
	char tmpl[] = "/tmp/kiln-shim-ps.XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0) {
		kiln_error_make(&err, errno, "mkstemp");
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	}
	unlink(tmpl);
	int stdio[3] = {-1, fd, -1};
	const char *args[] = {"ps", "--format", "json", s->id, NULL};
	if (runtime_run(s, args, stdio, &err) < 0) {
		close(fd);
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	}
	lseek(fd, 0, SEEK_SET);
	size_t len;
	cleanup_free char *text = read_fd(fd, 1 << 20, &len, NULL);
	close(fd);
	cleanup_pb_buf struct pb_buf resp = {0};
	for (char *p = text; p && *p;) {
		char *end;
		long v = strtol(p, &end, 10);
		if (end == p) {
			p++;
			continue;
		}
		cleanup_pb_buf struct pb_buf pi = {0};
		pb_put_uint(&pi, 1, (uint64_t)v);
		/* an exec'd process: info, an Any of ProcessDetails {exec_id 1} */
		for (int i = 1; i < MAX_PROCS; i++) {
			if (!s->procs[i].used || s->procs[i].pid != (pid_t)v)
				continue;
			cleanup_pb_buf struct pb_buf d = {0}, any = {0};
			pb_put_string(&d, 1, s->procs[i].exec_id);
			pb_put_string(&any, 1, "containerd.runc.v1.ProcessDetails");
			pb_put_message(&any, 2, &d);
			pb_put_message(&pi, 2, &any);
		}
		pb_put_message(&resp, 1, &pi);
		p = end;
	}
	respond(s, conn, stream, 0, NULL, &resp);
}

static bool task_alive(const struct shim *s)
{
	return s->created && !s->deleted && s->procs[0].status != TASK_STOPPED;
}

static void dispatch(struct shim *s, int conn, uint32_t stream, const uint8_t *data, size_t len)
{
	struct kiln_error *err = NULL;
	struct req_fields r;
	if (req_parse(data, len, &r, 0, &err) < 0) {
		req_release(&r);
		return respond_error(s, conn, stream, CODE_INTERNAL, &err);
	}
	const char *service = r.s[1] ? r.s[1] : "", *method = r.s[2] ? r.s[2] : "";
	struct req_fields q;
	if (req_parse(r.msg[3] ? r.msg[3] : (const uint8_t *)"", r.msg[3] ? r.msg_len[3] : 0, &q,
		      strcmp(method, "Create") == 0 ? 3 : 0, &err) < 0) {
		respond_error(s, conn, stream, CODE_INTERNAL, &err);
		goto out;
	}
	if (strcmp(service, TASK_SERVICE) != 0) {
		respond(s, conn, stream, CODE_UNIMPLEMENTED, "unknown service", NULL);
	} else if (strcmp(method, "Create") == 0) {
		do_create(s, conn, stream, &q);
	} else if (strcmp(method, "Start") == 0) {
		do_start(s, conn, stream, &q);
	} else if (strcmp(method, "State") == 0) {
		do_state(s, conn, stream, &q);
	} else if (strcmp(method, "Kill") == 0) {
		do_kill(s, conn, stream, &q);
	} else if (strcmp(method, "Wait") == 0) {
		do_wait(s, conn, stream, &q);
	} else if (strcmp(method, "Delete") == 0) {
		do_delete(s, conn, stream, &q);
	} else if (strcmp(method, "Pause") == 0) {
		do_simple(s, conn, stream, "pause", TASK_PAUSED);
	} else if (strcmp(method, "Resume") == 0) {
		do_simple(s, conn, stream, "resume", TASK_RUNNING);
	} else if (strcmp(method, "Update") == 0) {
		do_update(s, conn, stream, &q);
	} else if (strcmp(method, "Pids") == 0) {
		do_pids(s, conn, stream);
	} else if (strcmp(method, "Stats") == 0) {
		do_stats(s, conn, stream);
	} else if (strcmp(method, "Exec") == 0) {
		do_exec(s, conn, stream, &q);
	} else if (strcmp(method, "ResizePty") == 0) {
		do_resize(s, conn, stream, &q);
	} else if (strcmp(method, "CloseIO") == 0) {
		do_close_io(s, conn, stream, &q);
	} else if (strcmp(method, "Connect") == 0) {
		cleanup_pb_buf struct pb_buf resp = {0};
		pb_put_uint(&resp, 1, (uint64_t)getpid());
		pb_put_uint(&resp, 2, (uint64_t)s->procs[0].pid);
		pb_put_string(&resp, 3, "kiln");
		respond(s, conn, stream, 0, NULL, &resp);
	} else if (strcmp(method, "Shutdown") == 0) {
		/* Only once nothing runs (or when told `now`); the reply may be
		 * lost as the shim exits, which containerd expects. */
		respond(s, conn, stream, 0, NULL, NULL);
		if (q.v[2] || !task_alive(s))
			s->exit_now = true;
	} else {
		cleanup_free char *m =
		    xasprintf("%s is not implemented by the kiln shim; use io.containerd.runc.v2",
			      method);
		respond(s, conn, stream, CODE_UNIMPLEMENTED, m, NULL);
	}
out:
	req_release(&q);
	req_release(&r);
}

/* Reads what CONN has; handles every whole frame.  false when it closed. */
static bool conn_read(struct shim *s, int conn)
{
	struct shim_conn *c = &s->conns[conn];
	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 131072;
		c->in = xrealloc(c->in, c->cap);
	}
	ssize_t n = read(c->fd, c->in + c->len, c->cap - c->len);
	if (n <= 0)
		return n < 0 && (errno == EINTR || errno == EAGAIN);
	c->len += (size_t)n;
	while (c->len >= 10) {
		uint32_t len = get_be32(c->in);
		uint32_t stream = get_be32(c->in + 4);
		int type = c->in[8];
		if (len > TTRPC_MAX)
			return false;
		if (c->len < 10 + (size_t)len) {
			if (c->cap < 10 + (size_t)len) {
				c->cap = 10 + (size_t)len;
				c->in = xrealloc(c->in, c->cap);
			}
			break;
		}
		if (type == TTRPC_REQUEST)
			dispatch(s, conn, stream, c->in + 10, len);
		if (c->fd < 0)
			return false;
		memmove(c->in, c->in + 10 + len, c->len - 10 - len);
		c->len -= 10 + (size_t)len;
	}
	return true;
}

static void conn_close(struct shim *s, int conn)
{
	struct shim_conn *c = &s->conns[conn];
	close(c->fd);
	c->fd = -1;
	free(c->in);
	c->in = NULL;
	c->len = c->cap = 0;
	for (int k = 0; k < MAX_PROCS; k++) {
		struct shim_proc *pr = &s->procs[k];
		for (size_t i = 0; i < pr->nwaiters;)
			if (pr->waiters[i].conn == conn)
				pr->waiters[i] = pr->waiters[--pr->nwaiters];
			else
				i++;
	}
}

static int serve(struct shim *s, int lfd)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGPIPE);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGPIPE);
	int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	for (int i = 0; i < MAX_CONNS; i++)
		s->conns[i].fd = -1;
	while (!s->exit_now) {
		struct pollfd p[MAX_CONNS + 2 + 2 * MAX_PROCS];
		int map[MAX_CONNS + 2 + 2 * MAX_PROCS];
		int np = 0;
		p[np] = (struct pollfd){.fd = lfd, .events = POLLIN};
		map[np++] = -1;
		p[np] = (struct pollfd){.fd = sfd, .events = POLLIN};
		map[np++] = -2;
		for (int i = 0; i < MAX_CONNS; i++)
			if (s->conns[i].fd >= 0) {
				p[np] = (struct pollfd){.fd = s->conns[i].fd, .events = POLLIN};
				map[np++] = i;
			}
		/* the pumps: 100 + 2 * process + (0 stdin, 1 output) */
		for (int i = 0; i < MAX_PROCS; i++) {
			if (pump_poll(&s->procs[i].in, &p[np]))
				map[np++] = 100 + 2 * i;
			if (pump_poll(&s->procs[i].out, &p[np]))
				map[np++] = 101 + 2 * i;
		}
		if (poll(p, (nfds_t)np, -1) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		for (int k = 0; k < np; k++) {
			if (!p[k].revents)
				continue;
			if (map[k] == -1) {
				int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				/* containerd runs as the shim's user; nobody else may
				 * drive the task (the runc shim checks the same). */
				struct ucred cred;
				socklen_t cl = sizeof cred;
				if (fd >= 0 && (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 ||
						cred.uid != getuid())) {
					close(fd);
					fd = -1;
				}
				int slot = -1;
				for (int i = 0; i < MAX_CONNS && fd >= 0; i++)
					if (s->conns[i].fd < 0) {
						slot = i;
						break;
					}
				if (slot < 0) {
					if (fd >= 0)
						close(fd);
				} else {
					s->conns[slot].fd = fd;
				}
			} else if (map[k] == -2) {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
					;
				reap(s);
			} else if (map[k] >= 100) {
				struct shim_proc *pr = &s->procs[(map[k] - 100) / 2];
				pump_run(map[k] % 2 ? &pr->out : &pr->in);
			} else if (!conn_read(s, map[k])) {
				conn_close(s, map[k]);
			}
		}
		/* A Create or Delete may have reaped nothing yet left zombies. */
		reap(s);
	}
	unlink(s->socket_path);
	return 0;
}

/* /run/containerd/s/kiln-HASH beside containerd's own socket directory: the
 * sockets of the runc shims live there too. */
static char *socket_path_for(const char *address, const char *ns, const char *id)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a over "NS/ID" */
	for (const char *p = ns; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ '/') * 1099511628211ull;
	for (const char *p = id; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	cleanup_free char *dir = xstrdup(address);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir)
		*slash = '\0';
	else
		strcpy(dir, "/run/containerd");
	return xasprintf("%s/s/kiln-%016llx", dir, (unsigned long long)h);
}

static int shim_start(struct shim *s)
{
	/* The runtime options come on stdin (an Any); Create has them too. */
	size_t len = 0;
	cleanup_free char *opts = read_fd(0, 1 << 20, &len, NULL);
	if (opts && len)
		take_options(s, (const uint8_t *)opts, len);
	s->socket_path = socket_path_for(s->address, s->ns, s->id);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(s->socket_path) >= sizeof sa.sun_path) {
		fprintf(stderr, "kiln shim: socket path too long: %s\n", s->socket_path);
		return 1;
	}
	strcpy(sa.sun_path, s->socket_path);
	cleanup_free char *dir = xstrdup(s->socket_path);
	*strrchr(dir, '/') = '\0';
	struct kiln_error *err = NULL;
	if (mkdir_p(dir, 0711, &err) < 0) {
		fprintf(stderr, "kiln shim: %s\n", err->msg);
		kiln_error_release(&err);
		return 1;
	}
	unlink(s->socket_path);
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 16) < 0) {
		fprintf(stderr, "kiln shim: listen on %s: %s\n", s->socket_path, strerror(errno));
		return 1;
	}
	cleanup_free char *address = xasprintf("unix://%s", s->socket_path);
	write_file_atomic("address", address, strlen(address), 0600, NULL);
	pid_t pid = fork();
	if (pid < 0) {
		fprintf(stderr, "kiln shim: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		char pidtext[16];
		snprintf(pidtext, sizeof pidtext, "%d", (int)pid);
		write_file_atomic("shim.pid", pidtext, strlen(pidtext), 0600, NULL);
		printf("%s\n", address);
		return 0;
	}
	/* The daemon: its own session; stdio off containerd's pipe (it waits
	 * for EOF), errors to the bundle's log FIFO containerd reads. */
	setsid();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int null = open("/dev/null", O_RDWR);
	dup2(null, 0);
	dup2(null, 1);
	int log = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	dup2(log >= 0 ? log : null, 2);
	if (log > 2)
		close(log);
	if (null > 2)
		close(null);
	exit(serve(s, lfd));
}

/* After a shim died: the runtime's delete, and a DeleteResponse on stdout. */
static int shim_delete(struct shim *s)
{
	size_t len;
	cleanup_free char *saved = read_file("kiln-shim-runtime", 8192, &len, NULL);
	if (saved) {
		char *nl = strchr(saved, '\n');
		if (nl) {
			*nl = '\0';
			free(s->runtime);
			s->runtime = xstrdup(saved);
			char *nl2 = strchr(nl + 1, '\n');
			if (nl2)
				*nl2 = '\0';
			free(s->root);
			s->root = xstrdup(nl + 1);
		}
	}
	/* After a clean Delete the runtime holds nothing: no exec then. */
	cleanup_free char *state = path_join(s->root, s->id);
	struct kiln_error *err = NULL;
	const char *args[] = {"delete", "--force", s->id, NULL};
	if (access(state, F_OK) == 0 && runtime_run(s, args, NULL, &err) < 0)
		kiln_error_release(&err);
	cleanup_free char *rootfs = path_join(s->bundle, "rootfs");
	umount2(rootfs, MNT_DETACH);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	cleanup_pb_buf struct pb_buf resp = {0};
	pb_put_uint(&resp, 2, 128 + SIGKILL);
	put_timestamp(&resp, 3, &now);
	return write_all(1, resp.data, resp.len, NULL) < 0;
}

int shim_main(int argc, char **argv)
{
	struct shim s = {.ns = getenv("NAMESPACE"), .ttrpc_address = getenv("TTRPC_ADDRESS")};
	const char *action = NULL, *bundle = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] != '-') {
			action = a;
			continue;
		}
		a += a[1] == '-' ? 2 : 1;
		const char *eq = strchr(a, '=');
		size_t alen = eq ? (size_t)(eq - a) : strlen(a);
		if (strncmp(a, "debug", alen) == 0 || strncmp(a, "v", alen) == 0) {
			if (strncmp(a, "v", alen) == 0 && alen == 1) {
				printf("containerd-shim-kiln-v1 (kiln)\n");
				return 0;
			}
			continue;
		}
		const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : "");
		if (strncmp(a, "namespace", alen) == 0 && alen == 9)
			s.ns = val;
		else if (strncmp(a, "address", alen) == 0 && alen == 7)
			s.address = val;
		else if (strncmp(a, "id", alen) == 0 && alen == 2)
			s.id = val;
		else if (strncmp(a, "bundle", alen) == 0 && alen == 6)
			bundle = val;
		/* -publish-binary, -socket, -ttrpc-address: not needed */
	}
	if (action == NULL || s.id == NULL || s.ns == NULL || s.address == NULL) {
		fprintf(stderr, "Usage: containerd-shim-kiln-v1 -namespace NS -address SOCK -id ID "
				"start|delete\n(run by containerd for the runtime io.containerd.kiln.v1)\n");
		return 2;
	}
	char cwd[4096];
	s.bundle = xstrdup(bundle ? bundle : getcwd(cwd, sizeof cwd) ? cwd : ".");
	s.runtime = xstrdup("runc");
	s.root = xasprintf("/run/containerd/runc/%s", s.ns);
	for (int i = 0; i < MAX_PROCS; i++)
		proc_init(&s.procs[i]);
	s.procs[0].used = true;
	if (strcmp(action, "start") == 0)
		return shim_start(&s);
	if (strcmp(action, "delete") == 0)
		return shim_delete(&s);
	fprintf(stderr, "containerd-shim-kiln-v1: unknown action %s\n", action);
	return 2;
}
