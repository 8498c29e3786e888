/* LinuxKit's runtime.json: what init does around a container that the OCI
 * spec cannot express (prepareFilesystem before create, prepareProcess
 * between create and start). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

static const char *const ns_names[7] = {"cgroup", "ipc", "mnt", "net", "pid", "user", "uts"};

static char **json_string_list(const struct json *a)
{
	size_t n = a && a->type == JSON_ARRAY ? a->count : 0;
	char **out = xcalloc(n + 1, sizeof *out);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (a->items[i]->type == JSON_STRING)
			out[k++] = xstrdup(a->items[i]->str);
	return out;
}

static void string_list_free(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

int runtime_config_load(const char *bundle, struct runtime_config *rc, struct kiln_error **err)
{
	memset(rc, 0, sizeof *rc);
	cleanup_free char *path = path_join(bundle, "runtime.json");
	size_t len;
	cleanup_free char *text = read_file(path, 1 << 20, &len, err);
	if (text == NULL) {
		if ((*err)->status == ENOENT) {
			kiln_error_release(err);
			rc->mkdir = xcalloc(1, sizeof(char *));
			rc->cgroups = xcalloc(1, sizeof(char *));
			return 0;
		}
		return -1;
	}
	struct json *j = json_parse(text, len, err);
	if (j == NULL)
		return kiln_error_wrap(err, "%s", path);
	struct json *mounts = json_get(j, "mounts");
	if (mounts && mounts->type == JSON_ARRAY) {
		rc->mounts = xcalloc(mounts->count + 1, sizeof *rc->mounts);
		for (size_t i = 0; i < mounts->count; i++) {
			struct json *m = mounts->items[i];
			struct runtime_mount *rm = &rc->mounts[rc->nmounts++];
			rm->source = xstrdup(json_get_str(m, "source"));
			rm->destination = xstrdup(json_get_str(m, "destination"));
			rm->type = xstrdup(json_get_str(m, "type"));
			rm->options = json_string_list(json_get(m, "options"));
		}
	}
	rc->mkdir = json_string_list(json_get(j, "mkdir"));
	rc->cgroups = json_string_list(json_get(j, "cgroups"));
	struct json *ifaces = json_get(j, "interfaces");
	if (ifaces && ifaces->type == JSON_ARRAY) {
		rc->ifaces = xcalloc(ifaces->count + 1, sizeof *rc->ifaces);
		for (size_t i = 0; i < ifaces->count; i++) {
			struct json *f = ifaces->items[i];
			struct runtime_iface *ri = &rc->ifaces[rc->nifaces++];
			ri->name = xstrdup(json_get_str(f, "name"));
			ri->add = xstrdup(json_get_str(f, "add"));
			ri->peer = xstrdup(json_get_str(f, "peer"));
			struct json *cir = json_get(f, "createInRoot");
			ri->create_in_root = cir && cir->type == JSON_BOOL && cir->boolean;
		}
	}
	struct json *bind = json_get(j, "bindNS");
	for (int i = 0; i < 7; i++) {
		const char *p = json_get_str(bind, ns_names[i]);
		if (p && *p) {
			rc->bind_ns[i][0] = xstrdup(ns_names[i]);
			rc->bind_ns[i][1] = xstrdup(p);
		}
	}
	const char *ns = json_get_str(j, "namespace");
	rc->namespace = ns && *ns ? xstrdup(ns) : NULL;
	json_free(j);
	return 0;
}

void runtime_config_release(struct runtime_config *rc)
{
	for (size_t i = 0; i < rc->nmounts; i++) {
		free(rc->mounts[i].source);
		free(rc->mounts[i].destination);
		free(rc->mounts[i].type);
		string_list_free(rc->mounts[i].options);
	}
	free(rc->mounts);
	string_list_free(rc->mkdir);
	string_list_free(rc->cgroups);
	for (size_t i = 0; i < rc->nifaces; i++) {
		free(rc->ifaces[i].name);
		free(rc->ifaces[i].add);
		free(rc->ifaces[i].peer);
	}
	free(rc->ifaces);
	for (int i = 0; i < 7; i++) {
		free(rc->bind_ns[i][0]);
		free(rc->bind_ns[i][1]);
	}
	free(rc->namespace);
	memset(rc, 0, sizeof *rc);
}

unsigned long runtime_mount_flags(char *const *options, char **data)
{
	static const struct {
		const char *name;
		bool clear;
		unsigned long flag;
	} table[] = {
	    {"async", true, MS_SYNCHRONOUS},
	    {"atime", true, MS_NOATIME},
	    {"bind", false, MS_BIND},
	    {"defaults", false, 0},
	    {"dev", true, MS_NODEV},
	    {"diratime", true, MS_NODIRATIME},
	    {"dirsync", false, MS_DIRSYNC},
	    {"exec", true, MS_NOEXEC},
	    {"mand", false, MS_MANDLOCK},
	    {"noatime", false, MS_NOATIME},
	    {"nodev", false, MS_NODEV},
	    {"nodiratime", false, MS_NODIRATIME},
	    {"noexec", false, MS_NOEXEC},
	    {"nomand", true, MS_MANDLOCK},
	    {"norelatime", true, MS_RELATIME},
	    {"nostrictatime", true, MS_STRICTATIME},
	    {"nosuid", false, MS_NOSUID},
	    {"rbind", false, MS_BIND | MS_REC},
	    {"relatime", false, MS_RELATIME},
	    {"remount", false, MS_REMOUNT},
	    {"ro", false, MS_RDONLY},
	    {"rw", true, MS_RDONLY},
	    {"strictatime", false, MS_STRICTATIME},
	    {"suid", true, MS_NOSUID},
	    {"sync", false, MS_SYNCHRONOUS},
	    {"private", false, MS_PRIVATE},
	    {"rprivate", false, MS_PRIVATE | MS_REC},
	    {"shared", false, MS_SHARED},
	    {"rshared", false, MS_SHARED | MS_REC},
	    {"slave", false, MS_SLAVE},
	    {"rslave", false, MS_SLAVE | MS_REC},
	    {"unbindable", false, MS_UNBINDABLE},
	    {"runbindable", false, MS_UNBINDABLE | MS_REC},
	};
	unsigned long flags = 0;
	size_t dlen = 0;
	char *d = xstrdup("");
	for (char *const *o = options; o && *o; o++) {
		bool found = false;
		for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
			if (strcmp(*o, table[i].name) == 0) {
				if (table[i].clear)
					flags &= ~table[i].flag;
				else
					flags |= table[i].flag;
				found = true;
				break;
			}
		}
		if (found)
			continue;
		size_t ol = strlen(*o);
		d = xrealloc(d, dlen + ol + 2);
		if (dlen)
			d[dlen++] = ',';
		memcpy(d + dlen, *o, ol + 1);
		dlen += ol;
	}
	*data = d;
	return flags;
}

int runtime_prepare_filesystem(const struct runtime_config *rc, struct kiln_error **err)
{
	for (size_t i = 0; i < rc->nmounts; i++) {
		const struct runtime_mount *m = &rc->mounts[i];
		if (m->destination == NULL)
			return kiln_error_make(err, 0, "runtime mount %zu has no destination", i);
		if (mkdir_p(m->destination, 0755, err) < 0)
			return -1;
		/* An overlay on a fresh tmpfs (the builder's writable rootfs) needs
		 * its upper and work directories made first. */
		for (char *const *o = m->options;
		     m->type && strcmp(m->type, "overlay") == 0 && o && *o; o++) {
			const char *eq = strchr(*o, '=');
			if (eq &&
			    (str_has_prefix(*o, "upperdir=") || str_has_prefix(*o, "workdir=")) &&
			    mkdir_p(eq + 1, 0755, err) < 0)
				return -1;
		}
		cleanup_free char *data = NULL;
		unsigned long flags = runtime_mount_flags(m->options, &data);
		if (system_mount(m->source, m->destination, m->type, flags, *data ? data : NULL) <
		    0)
			return kiln_error_make(err, errno, "mount %s on %s (type %s, options %s)",
					       m->source ? m->source : "none", m->destination,
					       m->type ? m->type : "none", data);
	}
	for (char **d = rc->mkdir; d && *d; d++)
		if (mkdir_p(*d, 0755, err) < 0)
			return -1;
	for (char **g = rc->cgroups; g && *g; g++) {
		cleanup_free char *p = path_join("/sys/fs/cgroup", *g);
		if (mkdir_p(p, 0755, err) < 0)
			return -1;
	}
	return 0;
}

int runtime_prepare_process(const struct runtime_config *rc, pid_t pid, struct kiln_error **err)
{
	for (size_t i = 0; i < rc->nifaces; i++) {
		const struct runtime_iface *f = &rc->ifaces[i];
		if (f->name == NULL || *f->name == '\0')
			return kiln_error_make(err, 0, "interface %zu has no name", i);
		const char *add = f->add && *f->add ? f->add : NULL;
		if (add == NULL && f->peer && *f->peer)
			add = "veth";
		if (add && strcmp(add, "veth") == 0) {
			if (f->peer == NULL || *f->peer == '\0')
				return kiln_error_make(err, 0, "veth %s needs a peer", f->name);
			if (net_veth_add(f->name, f->peer, err) < 0)
				return -1;
		} else if (add) {
			/* Created in the root namespace, then moved: the container
			 * cannot be entered from here without setns. */
			if (net_link_add(f->name, add, err) < 0)
				return -1;
		}
		if (net_link_move_to_pid(f->name, pid, err) < 0)
			return -1;
	}
	for (int i = 0; i < 7; i++) {
		if (rc->bind_ns[i][0] == NULL)
			continue;
		const char *target = rc->bind_ns[i][1];
		cleanup_free char *dir = xstrdup(target);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir_p(dir, 0755, err) < 0)
				return -1;
		}
		int fd = open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0)
			return kiln_error_make(err, errno, "create `%s`", target);
		close(fd);
		char src[64];
		snprintf(src, sizeof src, "/proc/%d/ns/%s", (int)pid, rc->bind_ns[i][0]);
		if (mount(src, target, NULL, MS_BIND, NULL) < 0)
			return kiln_error_make(err, errno, "bind %s on %s", src, target);
	}
	return 0;
}

void runtime_cleanup(const struct runtime_config *rc)
{
	for (size_t i = rc->nmounts; i-- > 0;) {
		const struct runtime_mount *m = &rc->mounts[i];
		char *data = NULL;
		const unsigned long prop = MS_PRIVATE | MS_SHARED | MS_SLAVE | MS_UNBINDABLE;
		unsigned long flags = runtime_mount_flags(m->options, &data);
		bool propagation_only = (flags & prop) && !(flags & ~(prop | MS_REC)) && !*data;
		free(data);
		/* Repeated: a mount under a shared parent can appear twice. */
		for (int k = 0; m->destination && !propagation_only && k < 8; k++)
			if (umount2(m->destination, MNT_DETACH) < 0)
				break;
	}
}

bool runtime_has_bind_ns(const struct runtime_config *rc)
{
	for (int i = 0; i < 7; i++)
		if (rc->bind_ns[i][0])
			return true;
	return false;
}
