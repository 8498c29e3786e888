/* kiln's PID 1 and its parts: shared declarations.
 *
 * One static musl binary (build/init/init, installed as /init and /sbin/init;
 * the same program as build/init/kiln-service, which dispatches on argv[0]).
 * Errors follow assembler/error.h (STYLE.md §1): library parts return -1/NULL
 * and fill *err; only the top level (main.c, service.c's CLI) prints. */
#ifndef KILN_INIT_H
#define KILN_INIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "util.h"

/* ---- log.c: console lines stamped with the guest's uptime ---- */

/* Where init's own messages go (default 2).  Set after /dev/console is open. */
extern int init_log_fd;
/* true when the kernel command line has kiln.debug or linuxkit.runc_debug=1. */
extern bool init_debug;

/* Seconds since boot (CLOCK_MONOTONIC, the clock of the kernel's printk stamps). */
double init_uptime(void);
/* "[  1.234567] kiln-init: MESSAGE\n" on init_log_fd. */
void init_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Only when init_debug. */
void init_debug_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints and releases *ERR as a warning line: "warning: CONTEXT: msg". */
void init_log_error(struct kiln_error **err, const char *context);

/* ---- json.c: a small JSON reader (runtime.json, config.json) ---- */

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json {
	enum json_type type;
	const char *raw; /* this value's text in the source (not NUL-terminated) */
	size_t raw_len;
	char *str;	     /* JSON_STRING: decoded, NUL-terminated, owned */
	bool boolean;	     /* JSON_BOOL */
	double number;	     /* JSON_NUMBER */
	size_t count;	     /* JSON_ARRAY/OBJECT: number of items */
	char **keys;	     /* JSON_OBJECT: decoded keys, owned */
	struct json **items; /* JSON_ARRAY/OBJECT: values, owned */
};

/* Parses TEXT (LEN bytes; TEXT must outlive the result, as raw points into it).
 * Returns a tree the caller frees with json_free(), or NULL and *err. */
struct json *json_parse(const char *text, size_t len, struct kiln_error **err);
void json_free(struct json *j);
/* The member KEY of object J, or NULL (also when J is not an object). */
struct json *json_get(const struct json *j, const char *key);
/* The string value of member KEY, or NULL when absent or not a string. */
const char *json_get_str(const struct json *j, const char *key);
/* Appends S as a JSON string literal (with quotes) to the heap buffer *BUF of
 * length *LEN (reallocated). */
void json_append_string(char **buf, size_t *len, const char *s);

/* ---- pb.c: protocol buffers, by hand ---- */

struct pb_buf {
	uint8_t *data; /* heap, owned */
	size_t len, cap;
};

void pb_put_varint(struct pb_buf *b, uint64_t v);
void pb_put_bytes(struct pb_buf *b, int field, const void *data, size_t len);
void pb_put_string(struct pb_buf *b, int field, const char *s); /* skipped when NULL or "" */
void pb_put_uint(struct pb_buf *b, int field, uint64_t v);	/* skipped when 0 */
void pb_put_bool(struct pb_buf *b, int field, bool v);		/* skipped when false */
/* Appends field FIELD holding the whole of SUB (an embedded message). */
void pb_put_message(struct pb_buf *b, int field, const struct pb_buf *sub);
void pb_buf_release(struct pb_buf *b);
#define cleanup_pb_buf __attribute__((cleanup(pb_buf_release)))

/* A cursor over an encoded message; pb_next() yields one field at a time. */
struct pb_reader {
	const uint8_t *p, *end;
};
struct pb_field {
	int number;
	int wire;	     /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
	uint64_t varint;     /* wire 0, 1, 5 */
	const uint8_t *data; /* wire 2 */
	size_t len;	     /* wire 2 */
};
/* 1 and *F filled when a field was read, 0 at the end, -1 on malformed input. */
int pb_next(struct pb_reader *r, struct pb_field *f, struct kiln_error **err);
/* A new NUL-terminated copy of a length-delimited field; caller frees. */
char *pb_field_strdup(const struct pb_field *f);
/* The field at PATH (field numbers, outermost first, ending at 0) of the
 * message DATA into *OUT: the last such, as protobuf merges; false when
 * absent.  Malformed input ends the search where it starts. */
bool pb_path(const uint8_t *data, size_t len, const int *path, struct pb_field *out);

/* ---- h2.c: gRPC over HTTP/2 (prior knowledge) on a unix socket ---- */

struct grpc_conn;

/* Connects to the unix socket PATH and does the HTTP/2 handshake.  The caller
 * closes the result with grpc_close(). */
struct grpc_conn *grpc_connect(const char *path, struct kiln_error **err);
void grpc_close(struct grpc_conn *c);
/* Calls METHOD ("/pkg.Service/Method") with the protobuf REQ; NAMESPACE, when
 * not NULL, goes in the `containerd-namespace` header.  On success *RESP is a
 * heap copy of the response message (caller frees; may be empty) and *RESP_LEN
 * its length.  A non-zero grpc-status is an error naming the status and
 * grpc-message; *GRPC_STATUS (may be NULL) receives it (or -1 on a transport
 * error). */
int grpc_call(struct grpc_conn *c, const char *namespace, const char *method,
	      const struct pb_buf *req, uint8_t **resp, size_t *resp_len, int *grpc_status,
	      struct kiln_error **err);
/* A server-streaming call: sends the request; then, each time grpc_conn_fd()
 * is readable, grpc_stream_pump() reads one frame and calls FN for every
 * complete message (DATA/LEN valid during the call).  -1 and *err when the
 * stream or the connection ends. */
typedef void (*grpc_message_fn)(void *opaque, const uint8_t *data, size_t len);
int grpc_stream_open(struct grpc_conn *c, const char *namespace, const char *method,
		     const struct pb_buf *req, struct kiln_error **err);
int grpc_stream_pump(struct grpc_conn *c, grpc_message_fn fn, void *opaque,
		     struct kiln_error **err);
int grpc_conn_fd(const struct grpc_conn *c);
/* Decodes an HPACK Huffman string (RFC 7541 Appendix B).  Returns a heap
 * string the caller frees, or NULL on invalid input. */
char *hpack_huffman_decode(const uint8_t *in, size_t len);

/* ---- containerd.c: the containerd API calls a service manager needs ---- */

#define GRPC_NOT_FOUND	    5
#define GRPC_ALREADY_EXISTS 6

enum task_status { TASK_UNKNOWN, TASK_CREATED, TASK_RUNNING, TASK_STOPPED, TASK_PAUSED };

struct task_info {
	char *id; /* container id, owned */
	uint32_t pid;
	int status; /* enum task_status */
	uint32_t exit_status;
};

/* RUNTIME_NAME: containerd's runtime (SHIM_RUNC or SHIM_KILN);
 * RUNTIME_BINARY: the OCI runtime the shim runs for it (its
 * containerd.runc.v1.Options binary_name), or NULL for the shim's runc. */
int ctrd_container_create(struct grpc_conn *c, const char *ns, const char *id,
			  const char *spec_json, size_t spec_len, const char *runtime_name,
			  const char *runtime_binary, struct kiln_error **err);
int ctrd_container_delete(struct grpc_conn *c, const char *ns, const char *id,
			  struct kiln_error **err);
/* Fills *IDS with a heap array of heap strings (caller frees each and the
 * array) and *N with its length. */
int ctrd_container_list(struct grpc_conn *c, const char *ns, char ***ids, size_t *n,
			struct kiln_error **err);
/* STDOUT/STDERR are URIs or fifo paths as containerd's shim takes them. */
int ctrd_task_create(struct grpc_conn *c, const char *ns, const char *id, const char *stdout_uri,
		     const char *stderr_uri, uint32_t *pid, struct kiln_error **err);
int ctrd_task_start(struct grpc_conn *c, const char *ns, const char *id, uint32_t *pid,
		    struct kiln_error **err);
int ctrd_task_kill(struct grpc_conn *c, const char *ns, const char *id, int sig, bool all,
		   struct kiln_error **err);
/* *EXIT_STATUS may be NULL. */
int ctrd_task_delete(struct grpc_conn *c, const char *ns, const char *id, uint32_t *exit_status,
		     struct kiln_error **err);
/* *INFO is filled (its id owned by the caller: task_info_release). */
int ctrd_task_get(struct grpc_conn *c, const char *ns, const char *id, struct task_info *info,
		  struct kiln_error **err);
/* *TASKS: heap array of *N entries; free with task_info_release on each, then free. */
int ctrd_task_list(struct grpc_conn *c, const char *ns, struct task_info **tasks, size_t *n,
		   struct kiln_error **err);
void task_info_release(struct task_info *t);
/* A task's figures from containerd's Tasks.Metrics (the shim's Stats), when
 * its cgroup is v2 (V2; else only ID). */
struct task_metrics {
	char *id; /* heap */
	bool v2;
	uint64_t pids, cpu_usec, memory, memory_limit;
};
void ctrd_metric_parse(const uint8_t *data, size_t len, struct task_metrics *m);
/* *M: heap array of *N entries; free each id, then the array. */
int ctrd_task_metrics(struct grpc_conn *c, const char *ns, struct task_metrics **m, size_t *n,
		      struct kiln_error **err);
/* Subscribes C to containerd's /tasks/exit events (Events.Subscribe). */
int ctrd_subscribe_exits(struct grpc_conn *c, struct kiln_error **err);
/* Decodes one event Envelope; when it is a TaskExit of a container's main
 * process, fills *NS and *ID (heap, caller frees) and *STATUS and returns 1. */
int ctrd_parse_exit(const uint8_t *data, size_t len, char **ns, char **id, uint32_t *status);
const char *task_status_name(int status);

/* ---- runtime.c: LinuxKit's runtime.json (mounts, mkdir, cgroups, interfaces, bindNS) ---- */

struct runtime_mount {
	char *source, *destination, *type;
	char **options; /* NULL-terminated */
};
struct runtime_iface {
	char *name, *add, *peer;
	bool create_in_root;
};
struct runtime_config {
	struct runtime_mount *mounts;
	size_t nmounts;
	char **mkdir;	/* NULL-terminated */
	char **cgroups; /* NULL-terminated */
	struct runtime_iface *ifaces;
	size_t nifaces;
	char *bind_ns[7][2]; /* {namespace name, path}; unused rows have NULL */
	char *namespace;     /* containerd namespace or NULL */
};

/* Reads BUNDLE/runtime.json (missing file = empty config) into *RC; release
 * with runtime_config_release. */
int runtime_config_load(const char *bundle, struct runtime_config *rc, struct kiln_error **err);
void runtime_config_release(struct runtime_config *rc);
/* LinuxKit's prepareFilesystem: the mounts (mkdir -p of each destination first),
 * then mkdir, then cgroups (under /sys/fs/cgroup). */
int runtime_prepare_filesystem(const struct runtime_config *rc, struct kiln_error **err);
/* LinuxKit's prepareProcess on the created container PID: interfaces (veth
 * pairs, existing links) moved into its network namespace, then bindNS. */
int runtime_prepare_process(const struct runtime_config *rc, pid_t pid, struct kiln_error **err);
/* true when runtime.json binds any namespace. */
bool runtime_has_bind_ns(const struct runtime_config *rc);
/* Undoes the runtime mounts in reverse order (lazily); errors are ignored. */
void runtime_cleanup(const struct runtime_config *rc);
/* Splits LinuxKit mount options into mount(2) flags and a data string
 * (heap, caller frees; "" when none). */
unsigned long runtime_mount_flags(char *const *options, char **data);

/* ---- netlink.c ---- */

/* Brings up lo with 127.0.0.1/8. */
int net_loopback_up(struct kiln_error **err);
/* Creates a veth pair NAME/PEER in the current namespace. */
int net_veth_add(const char *name, const char *peer, struct kiln_error **err);
/* Creates a link of KIND (e.g. "bridge", "dummy") named NAME. */
int net_link_add(const char *name, const char *kind, struct kiln_error **err);
/* Moves link NAME into the network namespace of PID. */
int net_link_move_to_pid(const char *name, pid_t pid, struct kiln_error **err);
/* The MAC of the first non-loopback interface in sorted order, without colons
 * (heap, caller frees), or NULL when there is none. */
char *net_first_mac(void);

/* ---- run.c: children, logs, runc ---- */

/* Unblocks signals and restores default dispositions; call in a child before exec. */
void child_reset_signals(void);
/* Forks and execs ARGV with stdin /dev/null and stdout/stderr on OUT_FD and
 * ERR_FD (-1: inherit).  Returns the pid or -1 and *err. */
pid_t spawn(char *const *argv, int out_fd, int err_fd, struct kiln_error **err);
/* The nice value spawn() gives its children (0: as init's). */
extern int spawn_nice;
/* Waits for PID, reaping any other child on the way (PID 1 adopts orphans).
 * Returns its wait status. */
int wait_for(pid_t pid);
/* The OCI runtimes init knows: crun (C) when the image has it (and cgroup2 is
 * unified, which crun needs), as it starts a
 * container several times faster than runc (Go) under emulation; else runc,
 * LinuxKit's.  oci_runtime() is the one for onboot and onshutdown;
 * oci_runtime_for_shim() the binary_name containerd's runc shim gets for the
 * services, or NULL (the shim's own default, runc). */
#define OCI_RUNC "/usr/bin/runc"
#define OCI_CRUN "/usr/bin/crun"
const char *oci_runtime(void);
const char *oci_runtime_for_shim(void);
/* Binds a sealed in-memory copy of the runtime at PATH over it, so that runc
 * and crun skip copying themselves at every container start (run.c). */
int runtime_seal(const char *path, struct kiln_error **err);
/* Runs every bundle under DIR (sorted) with runc, each to completion.  LOG_DIR
 * gets NAME.log and NAME.out.log; output lines also go, prefixed, to the console.
 * Returns the number of bundles that failed. */
int onboot_run_dir(const char *dir, const char *log_dir, const char *runc, bool to_console);
/* Creates the first bundle under DIR (not started) when it cannot depend on
 * hardware not probed yet; onboot_run_dir then starts it in turn.  Returns 0
 * when it was created, -1 when it was not (it then runs as any other). */
int onboot_create_early(const char *dir, const char *log_dir, const char *runc);
/* A child reaped by one of the wait loops above while init waits for another:
 * when it is WATCH_PID, its status lands in reaped_watch_status (else -1). */
extern pid_t reaped_watch_pid;
extern int reaped_watch_status;
void note_reaped(pid_t pid, int status);

/* ---- early.c ---- */

/* true (and why, "NAME: reason", into WHY) when an onboot container of DIR
 * could mount over or under one of DIRS (NULL-terminated) in the host. */
bool onboot_may_touch(const char *dir, const char *const *dirs, char *why, size_t size);

/* ---- services.c ---- */

struct service_opts {
	const char *address;	/* containerd socket */
	const char *dir;	/* /containers/services */
	const char *log_dir;	/* /var/log */
	const char *namespace;	/* default services.linuxkit */
	const char *shim_group; /* io.containerd.runc.v2.group annotation, or NULL */
	const char *runtime_binary; /* OCI runtime for the shim (oci_runtime_for_shim) */
	const char *shim;	    /* containerd runtime: SHIM_KILN or SHIM_RUNC */
};
/* containerd's runc shim (Go, in the containerd package) and kiln's own
 * (shim.c: init as containerd-shim-kiln-v1, in the init package). */
#define SHIM_RUNC     "io.containerd.runc.v2"
#define SHIM_KILN     "io.containerd.kiln.v1"
#define SHIM_KILN_BIN "/usr/bin/containerd-shim-kiln-v1"
/* SHIM_KILN when its binary is installed, else SHIM_RUNC. */
const char *service_default_shim(void);
#define SERVICE_SHIM_GROUP "kiln-services"
#define SERVICE_OPTS_DEFAULT                                                                       \
	{                                                                                          \
		"/run/containerd/containerd.sock", "/containers/services", "/var/log",             \
		    "services.linuxkit", SERVICE_SHIM_GROUP, NULL, SHIM_RUNC                       \
	}

/* The config.json TEXT (N bytes) of BUNDLE as containerd gets it: root.path
 * made absolute, the shim GROUP annotation added (when not NULL); every other
 * byte kept.  Returns a heap string (caller frees) of *LEN bytes. */
char *service_spec_edit(const char *text, size_t n, const char *bundle, const char *group,
			size_t *len, struct kiln_error **err);
/* Starts service NAME from OPTS->dir/NAME: prepares its filesystem, creates the
 * container (config.json with root.path made absolute) and its task, runs
 * prepareProcess, starts it.  A stale container of the same id is removed first. */
int service_start(struct grpc_conn *c, const struct service_opts *o, const char *name,
		  struct kiln_error **err);
/* Kills (TERM, then KILL after a few seconds) and deletes task and container. */
int service_stop(struct grpc_conn *c, const struct service_opts *o, const char *name,
		 struct kiln_error **err);
/* Starts every service in OPTS->dir in sorted order; returns how many failed. */
int services_start_all(struct grpc_conn *c, const struct service_opts *o);
/* The kiln-service command. */
int service_main(int argc, char **argv);

/* ---- shim.c ---- */

/* containerd-shim-kiln-v1: containerd's runtime v2 shim (`start`, `delete`). */
int shim_main(int argc, char **argv);

/* ---- modules.c ---- */

/* Loads modules the hardware asks for (modalias walk, repeated while new
 * modules appear) from /lib/modules/RELEASE.  Returns the number loaded. */
int modules_coldplug(const char *root);
/* Loads NAME (a module name or an alias such as fs-overlay) and its
 * dependencies.  0 on success or when already loaded. */
int modules_load(const char *root, const char *name, struct kiln_error **err);

/* ---- system.c ---- */

/* Moves a RAM root to a fresh tmpfs and re-executes ARGV there; returns only
 * when there is nothing to do or on error. */
int system_switch_root_if_ram(char **argv, struct kiln_error **err);
/* Mounts /proc /sys /dev … /var and cgroup2, makes device nodes, rshared /. */
int system_mount_all(void);
void system_set_hostname(void);
void system_set_rlimits(void);
void system_resolv_conf(void);
/* Runs every file of DIR (/etc/init.d) in lexical order, synchronously. */
void system_run_initd(const char *dir);
/* Whether a process whose /proc/PID/status is STATUS cannot be ended by a
 * SIGTERM already sent: it ignores TERM, is stopped, is a zombie, or is the
 * init of a nested PID namespace with no TERM handler (the kernel drops a
 * default-action signal from an ancestor namespace).  Shutdown waits only
 * for the others. */
bool system_term_cannot_end(const char *status);
/* The processes other than PID 1 and kernel threads that TERM can still end
 * (see system_term_cannot_end); debug-logs each when LOG is set. */
int system_term_pending(bool log);
/* Sends SIG to this process's children; returns how many got it. */
int system_signal_children(int sig);
/* Mounts FS on TARGET; on ENODEV loads module fs-TYPE and retries. */
int system_mount(const char *source, const char *target, const char *type, unsigned long flags,
		 const char *data);

/* ---- volumes.c: LinuxKit's 005-volumes (manifest `volumes:`) ---- */

#define VOLUMES_DIR "/containers/volumes"
enum volume_kind { VOLUME_RW = 0, VOLUME_RO = 1 };
/* How volume NAME under DIR is to be mounted: VOLUME_RW when DIR/NAME/tmp/
 * exists (overlay), VOLUME_RO when it does not (read-only bind); -1 and *err
 * when lower/ or merged/ is missing or tmp is not a directory. */
int volume_kind(const char *dir, const char *name, struct kiln_error **err);
/* Mounts volume NAME under DIR as volume_kind says: read-write = tmpfs on
 * tmp/ holding upper/ and work/, overlay of lower/ + tmp/upper on merged/;
 * read-only = lower/ bound on merged/ and the bind remounted read-only.
 * Returns the kind, or -1 and *err (whatever was mounted is undone). */
int volume_mount(const char *dir, const char *name, struct kiln_error **err);
/* Mounts every volume under DIR in name order, one console line each (a
 * failure names the volume; the others still get mounted).  Returns the
 * number that failed; a missing DIR is no volumes. */
int volumes_mount_all(const char *dir);

#endif
