/* The calls of containerd's API (v1, as in containerd 1.6 and later) that a
 * service manager needs, encoded by hand from api/services/{containers,tasks}
 * and api/types/task. */
#include <stdlib.h>
#include <string.h>

#include "init.h"

#define SVC_CONTAINERS "/containerd.services.containers.v1.Containers/"
#define SVC_TASKS      "/containerd.services.tasks.v1.Tasks/"
#define SPEC_TYPE_URL  "types.containerd.io/opencontainers/runtime-spec/1/Spec"
#define RUNC_OPTIONS_TYPE_URL "containerd.runc.v1.Options"

/* Calls METHOD with REQ and hands each top-level field of the response to
 * ON_FIELD (when not NULL), which returns < 0 (with *err) to stop.  Failures
 * are wrapped with WHAT. */
typedef int (*ctrd_field_fn)(const struct pb_field *f, void *opaque, struct kiln_error **err);

static int ctrd_call(struct grpc_conn *c, const char *ns, const char *method,
		     const struct pb_buf *req, ctrd_field_fn on_field, void *opaque,
		     const char *what, struct kiln_error **err)
{
	cleanup_free uint8_t *resp = NULL;
	size_t len;
	if (grpc_call(c, ns, method, req, &resp, &len, NULL, err) < 0)
		return kiln_error_wrap(err, "%s", what);
	if (on_field == NULL)
		return 0;
	struct pb_reader r = {resp, resp + len};
	struct pb_field f;
	int k;
	while ((k = pb_next(&r, &f, err)) > 0)
		if (on_field(&f, opaque, err) < 0)
			return kiln_error_wrap(err, "%s", what);
	return k < 0 ? kiln_error_wrap(err, "%s", what) : 0;
}

/* A request of one field, the id (field 1). */
static int ctrd_call_id(struct grpc_conn *c, const char *ns, const char *method, const char *id,
			ctrd_field_fn on_field, void *opaque, const char *what,
			struct kiln_error **err)
{
	cleanup_pb_buf struct pb_buf req = {0};
	pb_put_string(&req, 1, id);
	return ctrd_call(c, ns, method, &req, on_field, opaque, what, err);
}

/* For ctrd_call: the varint field `number` of the response into *value. */
struct varint_field {
	int number;
	uint32_t *value;
};

static int take_varint(const struct pb_field *f, void *opaque, struct kiln_error **err)
{
	(void)err;
	struct varint_field *v = opaque;
	if (f->number == v->number && f->wire == 0 && v->value)
		*v->value = (uint32_t)f->varint;
	return 0;
}

int ctrd_container_create(struct grpc_conn *c, const char *ns, const char *id,
			  const char *spec_json, size_t spec_len, const char *runtime_name,
			  const char *runtime_binary, struct kiln_error **err)
{
	cleanup_pb_buf struct pb_buf runtime = {0};
	pb_put_string(&runtime, 1, runtime_name);
	if (runtime_binary) {
		/* Runtime.options: Any {type_url 1, value 2} holding the shim's
		 * containerd.runc.v1.Options {binary_name 6}; containerd passes
		 * them on at task create (no task options of its own), and both
		 * the runc shim and kiln's read them. */
		cleanup_pb_buf struct pb_buf options = {0};
		pb_put_string(&options, 6, runtime_binary);
		cleanup_pb_buf struct pb_buf any = {0};
		pb_put_string(&any, 1, RUNC_OPTIONS_TYPE_URL);
		pb_put_message(&any, 2, &options);
		pb_put_message(&runtime, 2, &any);
	}
	cleanup_pb_buf struct pb_buf spec = {0};
	pb_put_string(&spec, 1, SPEC_TYPE_URL);
	pb_put_bytes(&spec, 2, spec_json, spec_len);
	cleanup_pb_buf struct pb_buf container = {0};
	pb_put_string(&container, 1, id);
	pb_put_message(&container, 4, &runtime);
	pb_put_message(&container, 5, &spec);
	cleanup_pb_buf struct pb_buf req = {0};
	pb_put_message(&req, 1, &container);
	cleanup_free char *what = xasprintf("create container %s", id);
	return ctrd_call(c, ns, SVC_CONTAINERS "Create", &req, NULL, NULL, what, err);
}

int ctrd_container_delete(struct grpc_conn *c, const char *ns, const char *id,
			  struct kiln_error **err)
{
	cleanup_free char *what = xasprintf("delete container %s", id);
	return ctrd_call_id(c, ns, SVC_CONTAINERS "Delete", id, NULL, NULL, what, err);
}

/* ListContainersResponse {containers 1: Container {id 1, …}}: the ids. */
struct id_list {
	char ***ids;
	size_t *n;
};

static int take_container_id(const struct pb_field *f, void *opaque, struct kiln_error **err)
{
	struct id_list *l = opaque;
	if (f->number != 1 || f->wire != 2)
		return 0;
	struct pb_reader cr = {f->data, f->data + f->len};
	struct pb_field cf;
	int k;
	while ((k = pb_next(&cr, &cf, err)) > 0) {
		if (cf.number == 1 && cf.wire == 2) {
			*l->ids = xrealloc(*l->ids, (*l->n + 1) * sizeof **l->ids);
			(*l->ids)[(*l->n)++] = pb_field_strdup(&cf);
		}
	}
	return k;
}

int ctrd_container_list(struct grpc_conn *c, const char *ns, char ***ids, size_t *n,
			struct kiln_error **err)
{
	*ids = NULL;
	*n = 0;
	cleanup_pb_buf struct pb_buf req = {0};
	struct id_list l = {ids, n};
	return ctrd_call(c, ns, SVC_CONTAINERS "List", &req, take_container_id, &l,
			 "list containers", err);
}

int ctrd_task_create(struct grpc_conn *c, const char *ns, const char *id, const char *stdout_uri,
		     const char *stderr_uri, uint32_t *pid, struct kiln_error **err)
{
	cleanup_pb_buf struct pb_buf req = {0};
	pb_put_string(&req, 1, id);
	pb_put_string(&req, 5, stdout_uri);
	pb_put_string(&req, 6, stderr_uri);
	*pid = 0;
	struct varint_field v = {2, pid};
	cleanup_free char *what = xasprintf("create task %s", id);
	return ctrd_call(c, ns, SVC_TASKS "Create", &req, take_varint, &v, what, err);
}

int ctrd_task_start(struct grpc_conn *c, const char *ns, const char *id, uint32_t *pid,
		    struct kiln_error **err)
{
	if (pid)
		*pid = 0;
	struct varint_field v = {1, pid};
	cleanup_free char *what = xasprintf("start task %s", id);
	return ctrd_call_id(c, ns, SVC_TASKS "Start", id, take_varint, &v, what, err);
}

int ctrd_task_kill(struct grpc_conn *c, const char *ns, const char *id, int sig, bool all,
		   struct kiln_error **err)
{
	cleanup_pb_buf struct pb_buf req = {0};
	pb_put_string(&req, 1, id);
	pb_put_uint(&req, 3, (uint64_t)sig);
	pb_put_bool(&req, 4, all);
	cleanup_free char *what = xasprintf("kill task %s", id);
	return ctrd_call(c, ns, SVC_TASKS "Kill", &req, NULL, NULL, what, err);
}

int ctrd_task_delete(struct grpc_conn *c, const char *ns, const char *id, uint32_t *exit_status,
		     struct kiln_error **err)
{
	struct varint_field v = {3, exit_status};
	cleanup_free char *what = xasprintf("delete task %s", id);
	return ctrd_call_id(c, ns, SVC_TASKS "Delete", id, take_varint, &v, what, err);
}

static int task_info_parse(const uint8_t *data, size_t len, struct task_info *t,
			   struct kiln_error **err)
{
	memset(t, 0, sizeof *t);
	struct pb_reader r = {data, data + len};
	struct pb_field f;
	int k;
	while ((k = pb_next(&r, &f, err)) > 0) {
		if ((f.number == 1 || f.number == 2) && f.wire == 2 && f.len > 0) {
			/* container_id, or for Tasks.List only id (the same name). */
			if (f.number == 1 || t->id == NULL) {
				free(t->id);
				t->id = pb_field_strdup(&f);
			}
		} else if (f.number == 3 && f.wire == 0) {
			t->pid = (uint32_t)f.varint;
		} else if (f.number == 4 && f.wire == 0) {
			t->status = (int)f.varint;
		} else if (f.number == 9 && f.wire == 0) {
			t->exit_status = (uint32_t)f.varint;
		}
	}
	if (t->id == NULL)
		t->id = xstrdup("");
	return k;
}

/* GetResponse {process 1: Process}: the last one into *info. */
static int take_task(const struct pb_field *f, void *opaque, struct kiln_error **err)
{
	struct task_info *info = opaque;
	if (f->number != 1 || f->wire != 2)
		return 0;
	task_info_release(info);
	return task_info_parse(f->data, f->len, info, err);
}

int ctrd_task_get(struct grpc_conn *c, const char *ns, const char *id, struct task_info *info,
		  struct kiln_error **err)
{
	memset(info, 0, sizeof *info);
	cleanup_free char *what = xasprintf("get task %s", id);
	if (ctrd_call_id(c, ns, SVC_TASKS "Get", id, take_task, info, what, err) < 0)
		return -1;
	if (info->id == NULL)
		info->id = xstrdup(id);
	return 0;
}

/* ListTasksResponse {tasks 1: Process}: each appended. */
struct task_list {
	struct task_info **tasks;
	size_t *n;
};

static int take_task_entry(const struct pb_field *f, void *opaque, struct kiln_error **err)
{
	struct task_list *l = opaque;
	if (f->number != 1 || f->wire != 2)
		return 0;
	*l->tasks = xrealloc(*l->tasks, (*l->n + 1) * sizeof **l->tasks);
	if (task_info_parse(f->data, f->len, &(*l->tasks)[*l->n], err) < 0) {
		task_info_release(&(*l->tasks)[*l->n]);
		return -1;
	}
	(*l->n)++;
	return 0;
}

int ctrd_task_list(struct grpc_conn *c, const char *ns, struct task_info **tasks, size_t *n,
		   struct kiln_error **err)
{
	*tasks = NULL;
	*n = 0;
	cleanup_pb_buf struct pb_buf req = {0};
	struct task_list l = {tasks, n};
	return ctrd_call(c, ns, SVC_TASKS "List", &req, take_task_entry, &l, "list tasks", err);
}

static uint64_t pb_path_uint(const uint8_t *data, size_t len, const int *path)
{
	struct pb_field f;
	return pb_path(data, len, path, &f) && f.wire == 0 ? f.varint : 0;
}

/* One Metric {timestamp 1, id 2, data 3: Any {type_url 1, value 2}}; the
 * figures only when the Any is cgroup v2's Metrics (pids 1 {current 1},
 * cpu 2 {usage_usec 1}, memory 4 {usage 32, usage_limit 33}). */
void ctrd_metric_parse(const uint8_t *data, size_t len, struct task_metrics *m)
{
	static const int id[] = {2, 0}, type[] = {3, 1, 0}, pids[] = {3, 2, 1, 1, 0},
			 cpu[] = {3, 2, 2, 1, 0}, mem[] = {3, 2, 4, 32, 0},
			 lim[] = {3, 2, 4, 33, 0};
	static const char v2[] = "io.containerd.cgroups.v2.Metrics";
	memset(m, 0, sizeof *m);
	struct pb_field f;
	m->id = pb_path(data, len, id, &f) && f.wire == 2 ? pb_field_strdup(&f) : xstrdup("");
	m->v2 = pb_path(data, len, type, &f) && f.wire == 2 && f.len >= sizeof v2 - 1 &&
		memcmp(f.data + f.len - (sizeof v2 - 1), v2, sizeof v2 - 1) == 0;
	if (!m->v2)
		return;
	m->pids = pb_path_uint(data, len, pids);
	m->cpu_usec = pb_path_uint(data, len, cpu);
	m->memory = pb_path_uint(data, len, mem);
	m->memory_limit = pb_path_uint(data, len, lim);
}

/* MetricsResponse {metrics 1: Metric}: each appended. */
struct metric_list {
	struct task_metrics **m;
	size_t *n;
};

static int take_metric(const struct pb_field *f, void *opaque, struct kiln_error **err)
{
	(void)err;
	struct metric_list *l = opaque;
	if (f->number != 1 || f->wire != 2)
		return 0;
	*l->m = xrealloc(*l->m, (*l->n + 1) * sizeof **l->m);
	ctrd_metric_parse(f->data, f->len, &(*l->m)[(*l->n)++]);
	return 0;
}

int ctrd_task_metrics(struct grpc_conn *c, const char *ns, struct task_metrics **m, size_t *n,
		      struct kiln_error **err)
{
	*m = NULL;
	*n = 0;
	cleanup_pb_buf struct pb_buf req = {0}; /* no filters: every task */
	struct metric_list l = {m, n};
	return ctrd_call(c, ns, SVC_TASKS "Metrics", &req, take_metric, &l, "task metrics", err);
}

void task_info_release(struct task_info *t)
{
	free(t->id);
	t->id = NULL;
}

const char *task_status_name(int status)
{
	static const char *const names[] = {"unknown", "created", "running",
					    "stopped", "paused",  "pausing"};
	return status >= 0 && status < 6 ? names[status] : "unknown";
}

int ctrd_subscribe_exits(struct grpc_conn *c, struct kiln_error **err)
{
	cleanup_pb_buf struct pb_buf req = {0};
	pb_put_string(&req, 1, "topic==\"/tasks/exit\"");
	if (grpc_stream_open(c, NULL, "/containerd.services.events.v1.Events/Subscribe", &req,
			     err) < 0)
		return kiln_error_wrap(err, "subscribe to task exits");
	return 0;
}

int ctrd_parse_exit(const uint8_t *data, size_t len, char **ns, char **id, uint32_t *status)
{
	/* Envelope {timestamp 1, namespace 2, topic 3, event 4 (Any {type_url 1, value 2})};
	 * TaskExit {container_id 1, id 2, pid 3, exit_status 4, exited_at 5}. */
	struct pb_reader r = {data, data + len};
	struct pb_field f;
	cleanup_free char *namespace = NULL, *topic = NULL;
	const uint8_t *value = NULL;
	size_t value_len = 0;
	while (pb_next(&r, &f, NULL) > 0) {
		if (f.number == 2 && f.wire == 2) {
			free(namespace);
			namespace = pb_field_strdup(&f);
		} else if (f.number == 3 && f.wire == 2) {
			free(topic);
			topic = pb_field_strdup(&f);
		} else if (f.number == 4 && f.wire == 2) {
			struct pb_reader a = {f.data, f.data + f.len};
			struct pb_field af;
			while (pb_next(&a, &af, NULL) > 0)
				if (af.number == 2 && af.wire == 2) {
					value = af.data;
					value_len = af.len;
				}
		}
	}
	if (topic == NULL || strcmp(topic, "/tasks/exit") != 0 || value == NULL)
		return 0;
	cleanup_free char *cid = NULL, *eid = NULL;
	uint32_t st = 0;
	struct pb_reader t = {value, value + value_len};
	while (pb_next(&t, &f, NULL) > 0) {
		if (f.number == 1 && f.wire == 2) {
			free(cid);
			cid = pb_field_strdup(&f);
		} else if (f.number == 2 && f.wire == 2) {
			free(eid);
			eid = pb_field_strdup(&f);
		} else if (f.number == 4 && f.wire == 0) {
			st = (uint32_t)f.varint;
		}
	}
	/* The main process's exec id is the container id (or empty). */
	if (cid == NULL || (eid && *eid && strcmp(eid, cid) != 0))
		return 0;
	*ns = namespace ? steal_pointer(&namespace) : xstrdup("");
	*id = steal_pointer(&cid);
	*status = st;
	return 1;
}
