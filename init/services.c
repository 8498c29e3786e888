/* Services under containerd, started by init's own gRPC client, and the
 * kiln-service command (LinuxKit's `service`). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "init.h"

struct splice {
	size_t at, remove;
	char *text; /* heap */
};

static int splice_cmp(const void *a, const void *b)
{
	const struct splice *x = a, *y = b;
	return x->at < y->at ? -1 : x->at > y->at;
}

/* Reads BUNDLE/config.json and returns it (caller frees) edited in place,
 * keeping every other byte: root.path made absolute (BUNDLE/rootfs when
 * relative), as containerd's shim needs; and, when GROUP is set, the
 * annotation io.containerd.runc.v2.group=GROUP, so that all services share one
 * runc shim (one Go process and ~10 MB less per service, and under emulation
 * a second less to start each). */
char *service_spec_edit(const char *text, size_t n, const char *bundle, const char *group,
			size_t *len, struct kiln_error **err)
{
	struct json *j = json_parse(text, n, err);
	if (j == NULL || j->type != JSON_OBJECT) {
		if (j)
			kiln_error_make(err, 0, "not a JSON object");
		json_free(j);
		return NULL;
	}
	struct splice edits[3];
	size_t nedits = 0;
	/* Insertions right after the top-level '{' end with a comma when the
	 * object has members; they are gathered in TOP. */
	char *top = xstrdup("");
	size_t top_at = (size_t)(j->raw - text) + 1;

	struct json *root = json_get(j, "root");
	struct json *rp = json_get(root, "path");
	if (!(rp && rp->type == JSON_STRING && rp->str[0] == '/')) {
		cleanup_free char *abs =
		    path_join(bundle, rp && rp->type == JSON_STRING ? rp->str : "rootfs");
		size_t olen = 0;
		char *lit = NULL;
		json_append_string(&lit, &olen, abs);
		if (rp) {
			edits[nedits++] =
			    (struct splice){(size_t)(rp->raw - text), rp->raw_len, lit};
		} else if (root && root->type == JSON_OBJECT) {
			char *ins = xasprintf("\"path\":%s%s", lit, root->count ? "," : "");
			edits[nedits++] = (struct splice){(size_t)(root->raw - text) + 1, 0, ins};
			free(lit);
		} else {
			char *t = xasprintf("%s\"root\":{\"path\":%s},", top, lit);
			free(top);
			top = t;
			free(lit);
		}
	}
	if (group) {
		cleanup_free char *g = NULL;
		size_t glen = 0;
		json_append_string(&g, &glen, group);
		struct json *ann = json_get(j, "annotations");
		if (ann && ann->type == JSON_OBJECT) {
			if (json_get(ann, "io.containerd.runc.v2.group") == NULL) {
				char *ins = xasprintf("\"io.containerd.runc.v2.group\":%s%s", g,
						      ann->count ? "," : "");
				edits[nedits++] =
				    (struct splice){(size_t)(ann->raw - text) + 1, 0, ins};
			}
		} else if (ann == NULL) {
			char *t = xasprintf(
			    "%s\"annotations\":{\"io.containerd.runc.v2.group\":%s},", top, g);
			free(top);
			top = t;
		}
	}
	if (*top) {
		if (j->count == 0)
			top[strlen(top) - 1] = '\0';
		edits[nedits++] = (struct splice){top_at, 0, top};
	} else {
		free(top);
	}
	json_free(j);
	qsort(edits, nedits, sizeof *edits, splice_cmp);
	size_t total = n;
	for (size_t i = 0; i < nedits; i++)
		total += strlen(edits[i].text) - edits[i].remove;
	char *out = xmalloc(total + 1);
	size_t o = 0, from = 0;
	for (size_t i = 0; i < nedits; i++) {
		memcpy(out + o, text + from, edits[i].at - from);
		o += edits[i].at - from;
		size_t tl = strlen(edits[i].text);
		memcpy(out + o, edits[i].text, tl);
		o += tl;
		from = edits[i].at + edits[i].remove;
		free(edits[i].text);
	}
	memcpy(out + o, text + from, n - from);
	o += n - from;
	out[o] = '\0';
	*len = o;
	return out;
}

static char *service_spec(const char *bundle, const char *group, size_t *len,
			  struct kiln_error **err)
{
	cleanup_free char *path = path_join(bundle, "config.json");
	size_t n;
	cleanup_free char *text = read_file(path, 4 << 20, &n, err);
	if (text == NULL)
		return NULL;
	char *out = service_spec_edit(text, n, bundle, group, len, err);
	if (out == NULL)
		kiln_error_wrap(err, "%s", path);
	return out;
}

/* binary:///path/to/init?kiln-log=LOGDIR/NAME: the shim runs
 * `init kiln-log LOGDIR/NAME` with the container's stdout and stderr on fds 3
 * and 4 (containerd's logging-binary protocol). */
static char *service_log_uri(const struct service_opts *o, const char *name)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		strcpy(self, "/sbin/init");
	else
		self[n] = '\0';
	return xasprintf("binary://%s?kiln-log=%s/%s", self, o->log_dir, name);
}

static void ignore_error(struct kiln_error **err)
{
	kiln_error_release(err);
}

/* Removes task and container ID, whatever state they are in. */
static void service_remove(struct grpc_conn *c, const char *ns, const char *id)
{
	struct kiln_error *err = NULL;
	struct task_info t;
	if (ctrd_task_get(c, ns, id, &t, &err) == 0) {
		if (t.status == TASK_RUNNING || t.status == TASK_PAUSED) {
			ctrd_task_kill(c, ns, id, SIGKILL, true, &err);
			ignore_error(&err);
			for (int i = 0; i < 50; i++) {
				struct task_info s;
				if (ctrd_task_get(c, ns, id, &s, &err) < 0) {
					ignore_error(&err);
					break;
				}
				int st = s.status;
				task_info_release(&s);
				if (st == TASK_STOPPED)
					break;
				usleep(20000);
			}
		}
		task_info_release(&t);
		ctrd_task_delete(c, ns, id, NULL, &err);
	}
	ignore_error(&err);
	ctrd_container_delete(c, ns, id, &err);
	ignore_error(&err);
}

const char *service_default_shim(void)
{
	return access(SHIM_KILN_BIN, X_OK) == 0 ? SHIM_KILN : SHIM_RUNC;
}

static const char *service_ns(const struct service_opts *o, const struct runtime_config *rc)
{
	return rc->namespace ? rc->namespace : o->namespace;
}

int service_start(struct grpc_conn *c, const struct service_opts *o, const char *name,
		  struct kiln_error **err)
{
	cleanup_free char *bundle = path_join(o->dir, name);
	struct stat st;
	if (stat(bundle, &st) < 0 || !S_ISDIR(st.st_mode))
		return kiln_error_make(err, ENOENT, "service %s: no bundle at %s", name, bundle);
	struct runtime_config rc;
	if (runtime_config_load(bundle, &rc, err) < 0)
		return kiln_error_wrap(err, "service %s", name);
	int ret = -1;
	const char *ns = service_ns(o, &rc);
	size_t spec_len = 0;
	/* One runc shim (Go) for all services saves memory and a second a
	 * service under emulation; kiln's (C) costs nothing to start. */
	const char *group = strcmp(o->shim, SHIM_RUNC) == 0 ? o->shim_group : NULL;
	cleanup_free char *spec = service_spec(bundle, group, &spec_len, err);
	/* containerd's shim sends both streams of a file:// URI to one file; a
	 * logging binary (this program, `kiln-log`) keeps them apart. */
	cleanup_free char *log_uri = service_log_uri(o, name);
	uint32_t pid = 0;
	if (spec == NULL)
		goto out;
	if (ctrd_container_create(c, ns, name, spec, spec_len, o->shim, o->runtime_binary, err) < 0) {
		/* A stale container of the same name (a restart, a second start):
		 * remove it and undo its runtime mounts before starting afresh. */
		if ((*err)->msg == NULL || strstr((*err)->msg, "already exists") == NULL)
			goto out;
		kiln_error_release(err);
		service_remove(c, ns, name);
		runtime_cleanup(&rc);
		if (ctrd_container_create(c, ns, name, spec, spec_len, o->shim, o->runtime_binary, err) < 0)
			goto out;
	}
	if (runtime_prepare_filesystem(&rc, err) < 0)
		goto out_container;
	double t0 = init_uptime();
	if (ctrd_task_create(c, ns, name, log_uri, log_uri, &pid, err) < 0)
		goto out_container;
	init_debug_log("service %s: task created (pid %u) in %.3f s", name, pid,
		       init_uptime() - t0);
	t0 = init_uptime();
	if (runtime_prepare_process(&rc, (pid_t)pid, err) < 0)
		goto out_task;
	if (ctrd_task_start(c, ns, name, NULL, err) < 0)
		goto out_task;
	init_debug_log("service %s: task started in %.3f s", name, init_uptime() - t0);
	ret = 0;
	goto out;
out_task : {
	struct kiln_error *e2 = NULL;
	ctrd_task_delete(c, ns, name, NULL, &e2);
	ignore_error(&e2);
}
out_container : {
	struct kiln_error *e2 = NULL;
	ctrd_container_delete(c, ns, name, &e2);
	ignore_error(&e2);
}
out:
	if (ret < 0)
		kiln_error_wrap(err, "service %s", name);
	runtime_config_release(&rc);
	return ret;
}

int service_stop(struct grpc_conn *c, const struct service_opts *o, const char *name,
		 struct kiln_error **err)
{
	cleanup_free char *bundle = path_join(o->dir, name);
	struct runtime_config rc;
	if (runtime_config_load(bundle, &rc, err) < 0)
		return kiln_error_wrap(err, "service %s", name);
	const char *ns = service_ns(o, &rc);
	struct task_info t;
	int ret = 0;
	if (ctrd_task_get(c, ns, name, &t, err) == 0) {
		if (t.status == TASK_RUNNING || t.status == TASK_PAUSED) {
			if (ctrd_task_kill(c, ns, name, SIGTERM, false, err) < 0)
				kiln_error_release(err);
			/* Up to 5 s for a clean exit, then KILL and up to 5 s more. */
			for (int i = 0; i < 200; i++) {
				if (i == 100) {
					ctrd_task_kill(c, ns, name, SIGKILL, true, err);
					kiln_error_release(err);
				}
				struct task_info s;
				if (ctrd_task_get(c, ns, name, &s, err) < 0) {
					kiln_error_release(err);
					break;
				}
				int stt = s.status;
				task_info_release(&s);
				if (stt == TASK_STOPPED)
					break;
				usleep(50000);
			}
		}
		task_info_release(&t);
		if (ctrd_task_delete(c, ns, name, NULL, err) < 0)
			kiln_error_release(err);
	} else {
		kiln_error_release(err);
	}
	if (ctrd_container_delete(c, ns, name, err) < 0)
		ret = kiln_error_wrap(err, "service %s", name);
	runtime_cleanup(&rc);
	runtime_config_release(&rc);
	return ret;
}

static int dirent_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int services_start_all(struct grpc_conn *c, const struct service_opts *o)
{
	struct dirent **names;
	int n = scandir(o->dir, &names, NULL, dirent_cmp);
	if (n < 0)
		return 0;
	int failed = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		cleanup_free char *bundle = path_join(o->dir, name);
		struct stat st;
		if (name[0] != '.' && stat(bundle, &st) == 0 && S_ISDIR(st.st_mode)) {
			struct kiln_error *err = NULL;
			double t0 = init_uptime();
			if (service_start(c, o, name, &err) < 0) {
				failed++;
				init_log_error(&err, "service not started");
			} else {
				init_log("service %s: started (%.3f s)", name, init_uptime() - t0);
			}
		}
		free(names[i]);
	}
	free(names);
	return failed;
}

/* ---- kiln-service ---- */

static void watch_print(void *opaque, const uint8_t *data, size_t len)
{
	const char *want_ns = opaque;
	char *ns, *id;
	uint32_t status;
	if (ctrd_parse_exit(data, len, &ns, &id, &status) == 1) {
		if (strcmp(ns, want_ns) == 0)
			printf("%s exited (exit status %u)\n", id, status);
		free(ns);
		free(id);
	}
}

static void service_usage(FILE *f)
{
	fprintf(
	    f,
	    "Usage: kiln-service [OPTIONS] list|start NAME|stop NAME|restart NAME|start-all|watch\n"
	    "       kiln-service [OPTIONS] stats\n"
	    "Manages the services of a kiln image through containerd.  stats: each\n"
	    "running service's processes, CPU time and memory (its cgroup's figures).\n"
	    "  --address SOCK     containerd socket (default /run/containerd/containerd.sock)\n"
	    "  --namespace NS     containerd namespace (default services.linuxkit)\n"
	    "  --dir DIR          service bundles (default /containers/services)\n"
	    "  --log-dir DIR      service logs (default /var/log)\n"
	    "  --shim NAME        containerd runtime: kiln (kiln's C shim, the default when\n"
	    "                     " SHIM_KILN_BIN " exists), runc (containerd's\n"
	    "                     Go shim), or a full runtime name\n"
	    "  --shim-per-service one runc shim per service (default: one shared shim)\n"
	    "  --runtime PATH     OCI runtime the shim runs (default " OCI_CRUN " if present,\n"
	    "                     else the shim's runc)\n");
}

int service_main(int argc, char **argv)
{
	struct service_opts o = SERVICE_OPTS_DEFAULT;
	o.runtime_binary = oci_runtime_for_shim();
	o.shim = service_default_shim();
	static const struct option longopts[] = {
	    {"address", required_argument, NULL, 'a'},
	    {"namespace", required_argument, NULL, 'n'},
	    {"containerd-namespace", required_argument, NULL, 'n'},
	    {"dir", required_argument, NULL, 'd'},
	    {"log-dir", required_argument, NULL, 'l'},
	    {"shim-per-service", no_argument, NULL, 's'},
	    {"runtime", required_argument, NULL, 'r'},
	    {"shim", required_argument, NULL, 'S'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;
	optind = 1;
	while ((ch = getopt_long_only(argc, argv, "+", longopts, NULL)) != -1) {
		switch (ch) {
		case 'a':
			o.address = optarg;
			break;
		case 'n':
			o.namespace = optarg;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'l':
			o.log_dir = optarg;
			break;
		case 's':
			o.shim_group = NULL;
			break;
		case 'r':
			o.runtime_binary = optarg;
			break;
		case 'S':
			o.shim = strcmp(optarg, "kiln") == 0   ? SHIM_KILN
				 : strcmp(optarg, "runc") == 0 ? SHIM_RUNC
							       : optarg;
			break;
		case 'h':
			service_usage(stdout);
			return 0;
		default:
			service_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		service_usage(stderr);
		return 2;
	}
	const char *verb = argv[optind];
	const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
	bool needs_name =
	    strcmp(verb, "start") == 0 || strcmp(verb, "stop") == 0 || strcmp(verb, "restart") == 0;
	if (needs_name && name == NULL) {
		fprintf(stderr, "kiln-service: %s needs a service name\n", verb);
		return 2;
	}
	struct kiln_error *err = NULL;
	struct grpc_conn *c = grpc_connect(o.address, &err);
	if (c == NULL) {
		fprintf(stderr, "kiln-service: %s\n", err->msg);
		kiln_error_release(&err);
		return 1;
	}
	int rc = 0;
	if (strcmp(verb, "list") == 0 || strcmp(verb, "ls") == 0) {
		char **ids;
		size_t nids;
		struct task_info *tasks;
		size_t ntasks;
		if (ctrd_container_list(c, o.namespace, &ids, &nids, &err) < 0 ||
		    ctrd_task_list(c, o.namespace, &tasks, &ntasks, &err) < 0) {
			fprintf(stderr, "kiln-service: %s\n", err->msg);
			kiln_error_release(&err);
			grpc_close(c);
			return 1;
		}
		printf("%-24s %-10s %s\n", "NAME", "STATUS", "PID");
		for (size_t i = 0; i < nids; i++) {
			const struct task_info *t = NULL;
			for (size_t k = 0; k < ntasks; k++)
				if (strcmp(tasks[k].id, ids[i]) == 0)
					t = &tasks[k];
			if (t && t->status == TASK_STOPPED)
				printf("%-24s %-10s %u (exit status %u)\n", ids[i], "stopped",
				       t->pid, t->exit_status);
			else if (t)
				printf("%-24s %-10s %u\n", ids[i], task_status_name(t->status),
				       t->pid);
			else
				printf("%-24s %-10s -\n", ids[i], "no-task");
			free(ids[i]);
		}
		for (size_t k = 0; k < ntasks; k++)
			task_info_release(&tasks[k]);
		free(tasks);
		free(ids);
	} else if (strcmp(verb, "stats") == 0) {
		struct task_metrics *m;
		size_t n;
		rc = ctrd_task_metrics(c, o.namespace, &m, &n, &err);
		if (rc == 0)
			printf("%-24s %6s %12s %12s %12s\n", "NAME", "PIDS", "CPU", "MEMORY",
			       "LIMIT");
		for (size_t i = 0; i < n; i++) {
			char lim[32] = "max";
			if (m[i].memory_limit != UINT64_MAX)
				snprintf(lim, sizeof lim, "%.1f MiB",
					 (double)m[i].memory_limit / 1048576);
			if (m[i].v2)
				printf("%-24s %6llu %10.3f s %8.1f MiB %12s\n", m[i].id,
				       (unsigned long long)m[i].pids, (double)m[i].cpu_usec / 1e6,
				       (double)m[i].memory / 1048576, lim);
			else
				printf("%-24s (no cgroup v2 figures)\n", m[i].id);
			free(m[i].id);
		}
		free(m);
	} else if (strcmp(verb, "start") == 0) {
		rc = service_start(c, &o, name, &err);
	} else if (strcmp(verb, "stop") == 0) {
		rc = service_stop(c, &o, name, &err);
	} else if (strcmp(verb, "restart") == 0) {
		rc = service_stop(c, &o, name, &err);
		if (rc < 0) {
			kiln_error_release(&err);
			rc = 0;
		}
		rc = service_start(c, &o, name, &err);
	} else if (strcmp(verb, "watch") == 0) {
		/* Prints each service exit as containerd reports it, until the
		 * connection ends. */
		if (ctrd_subscribe_exits(c, &err) == 0) {
			setvbuf(stdout, NULL, _IOLBF, 0);
			while (grpc_stream_pump(c, watch_print, (void *)o.namespace, &err) == 0)
				;
		}
		rc = -1;
	} else if (strcmp(verb, "start-all") == 0) {
		rc = services_start_all(c, &o) ? -1 : 0;
		if (rc < 0)
			err = NULL;
	} else {
		fprintf(stderr, "kiln-service: unknown command `%s`\n", verb);
		grpc_close(c);
		return 2;
	}
	grpc_close(c);
	if (rc < 0) {
		fprintf(stderr, "kiln-service: %s\n", err ? err->msg : "some services failed");
		kiln_error_release(&err);
		return 1;
	}
	return 0;
}
