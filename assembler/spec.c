/* See spec.h.  Key order follows runtime-spec's Go structs so that the
 * output matches what LinuxKit writes; json_object_set_new keeps insertion
 * order in jansson >= 2.8 when dumped without JSON_SORT_KEYS. */
#include "spec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define cleanup_json __attribute__((cleanup(spec_json_decrefp)))
static void spec_json_decrefp(json_t **j)
{
	if (*j)
		json_decref(*j);
}

static json_t *strlist_json(const struct manifest_strlist *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

/* Go's omitempty: an empty array is left out. */
static void set_nonempty(json_t *obj, const char *key, json_t *arr)
{
	if (json_array_size(arr))
		json_object_set_new(obj, key, arr);
	else
		json_decref(arr);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A map as Go marshals map[string]string: keys sorted. */
static json_t *strmap_json(const struct manifest_strmap *m)
{
	json_t *o = json_object();
	char **keys = xcalloc(m->n ? m->n : 1, sizeof(*keys));
	for (size_t i = 0; i < m->n; i++)
		keys[i] = m->keys[i];
	qsort(keys, m->n, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < m->n; i++)
		for (size_t j = 0; j < m->n; j++)
			if (m->keys[j] == keys[i])
				json_object_set_new(o, keys[i], json_string(m->values[j]));
	free(keys);
	return o;
}

static const char *image_cfg_string(json_t *image_config, const char *key)
{
	json_t *c = image_config ? json_object_get(image_config, "config") : NULL;
	json_t *v = c ? json_object_get(c, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void image_cfg_append(json_t *arr, json_t *image_config, const char *key)
{
	json_t *c = image_config ? json_object_get(image_config, "config") : NULL;
	json_t *v = c ? json_object_get(c, key) : NULL;
	size_t i;
	json_t *x;
	if (json_is_array(v))
		json_array_foreach(v, i, x) if (json_is_string(x)) json_array_append(arr, x);
}

struct image_config *spec_merged_config(const struct spec_input *in, struct kiln_error **err)
{
	const char *label = NULL;
	json_t *c = in->image_config ? json_object_get(in->image_config, "config") : NULL;
	json_t *labels = c ? json_object_get(c, "Labels") : NULL;
	json_t *l = labels ? json_object_get(labels, "org.mobyproject.config") : NULL;
	if (json_is_string(l))
		label = json_string_value(l);
	struct image_config *lc = NULL;
	if (label) {
		lc = image_config_parse_label(label, err);
		if (!lc)
			return NULL;
	}
	struct image_config *merged = image_config_merge(in->entry ? &in->entry->config : NULL, lc);
	image_config_free(lc);
	return merged;
}

int spec_is_readonly(const struct spec_input *in, bool *readonly, struct kiln_error **err)
{
	struct image_config *mc = spec_merged_config(in, err);
	if (!mc)
		return -1;
	*readonly = mc->readonly.set && mc->readonly.value;
	image_config_free(mc);
	return 0;
}

/* ---- mounts: a list keyed by destination, sorted at the end ---- */

struct mount {
	char *destination, *type, *source;
	json_t *options; /* array, owned; NULL = none */
	json_t *uidmappings, *gidmappings;
};

struct mounts {
	size_t n;
	struct mount *v;
};

static void mounts_set(struct mounts *ms, const char *dest, const char *type, const char *source,
		       json_t *options, json_t *uidm, json_t *gidm)
{
	struct mount *m = NULL;
	for (size_t i = 0; i < ms->n; i++)
		if (strcmp(ms->v[i].destination, dest) == 0)
			m = &ms->v[i];
	if (m) {
		free(m->destination);
		free(m->type);
		free(m->source);
		json_decref(m->options);
		json_decref(m->uidmappings);
		json_decref(m->gidmappings);
	} else {
		ms->v = xrealloc(ms->v, (ms->n + 1) * sizeof(*ms->v));
		m = &ms->v[ms->n++];
	}
	*m = (struct mount){xstrdup(dest), xstrdup(type), xstrdup(source), options, uidm, gidm};
}

static void mounts_release(struct mounts *ms)
{
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->v[i].destination);
		free(ms->v[i].type);
		free(ms->v[i].source);
		json_decref(ms->v[i].options);
		json_decref(ms->v[i].uidmappings);
		json_decref(ms->v[i].gidmappings);
	}
	free(ms->v);
}

static int cmp_mount(const void *a, const void *b)
{
	return strcmp(((const struct mount *)a)->destination,
		      ((const struct mount *)b)->destination);
}

static json_t *opts_json(const char *const *o)
{
	json_t *a = json_array();
	for (; *o; o++)
		json_array_append_new(a, json_string(*o));
	return a;
}

static json_t *split_json(const char *s)
{
	json_t *a = json_array();
	cleanup_free char *copy = xstrdup(s);
	/* strings.Split keeps empty fields; so do we. */
	char *p = copy;
	for (;;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		json_array_append_new(a, json_string(p));
		if (!comma)
			break;
		p = comma + 1;
	}
	return a;
}

static json_t *mount_json(const char *dest, const char *type, const char *source, json_t *options,
			  json_t *uidm, json_t *gidm)
{
	json_t *o = json_object();
	json_object_set_new(o, "destination", json_string(dest));
	if (type && *type)
		json_object_set_new(o, "type", json_string(type));
	if (source && *source)
		json_object_set_new(o, "source", json_string(source));
	if (options && json_array_size(options))
		json_object_set(o, "options", options);
	if (uidm && json_array_size(uidm))
		json_object_set(o, "uidMappings", uidm);
	if (gidm && json_array_size(gidm))
		json_object_set(o, "gidMappings", gidm);
	return o;
}

static json_t *idmappings_json(const struct manifest_idmapping_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "containerID", json_integer(l->v[i].container_id));
		json_object_set_new(o, "hostID", json_integer(l->v[i].host_id));
		json_object_set_new(o, "size", json_integer(l->v[i].size));
		json_array_append_new(a, o);
	}
	return a;
}

static const struct manifest_volume *find_volume(const struct manifest *m, const char *name)
{
	for (size_t i = 0; m && i < m->nvolumes; i++)
		if (m->volumes[i].name && strcmp(m->volumes[i].name, name) == 0)
			return &m->volumes[i];
	return NULL;
}

static bool json_has_string(json_t *arr, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(arr, i, x) if (json_is_string(x) &&
					  strcmp(json_string_value(x), s) == 0) return true;
	return false;
}

/* *OUT = the merged directory of volume NAME when NAME is not an absolute
 * path (§1.7), else NULL; refuses a read-only volume mounted without ro. */
static int volume_source(const struct spec_input *in, const char *kind, const char *what,
			 const char *name, bool ro, char **out, struct kiln_error **err)
{
	*out = NULL;
	if (name[0] == '/')
		return 0;
	const struct manifest_volume *v = find_volume(in->m, name);
	if (!v)
		return kiln_error_make(err, ENOENT, "%s %s: volume %s not found", kind, what, name);
	if (v->readonly.set && v->readonly.value && !ro)
		return kiln_error_make(err, EPERM,
				       "volume %s is read-only, but attempting to write "
				       "into container read-write",
				       name);
	*out = xasprintf("/containers/volumes/%s/merged", name);
	return 0;
}

static bool strlist_has(const struct manifest_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

/* The mount is read-only: "ro" comes before any "rw" in its options (as
 * LinuxKit decides it for a volume mount). */
static bool first_access_is_ro(const struct manifest_strlist *opts)
{
	for (size_t i = 0; i < opts->n; i++) {
		if (strcmp(opts->v[i], "rw") == 0)
			return false;
		if (strcmp(opts->v[i], "ro") == 0)
			return true;
	}
	return false;
}

static int build_mounts(const struct spec_input *in, const struct image_config *mc, bool readonly,
			struct mounts *ms, struct kiln_error **err)
{
	static const char *const proc_o[] = {"nosuid", "nodev", "noexec", "relatime", NULL};
	static const char *const dev_o[] = {"nosuid", "strictatime", "mode=755", "size=65536k",
					    NULL};
	static const char *const pts_o[] = {"nosuid",	     "noexec",	  "newinstance",
					    "ptmxmode=0666", "mode=0620", NULL};
	static const char *const sys_o[] = {"nosuid", "noexec", "nodev", NULL};
	static const char *const cg_o[] = {"nosuid", "noexec", "nodev", "relatime", "ro", NULL};
	json_t *dev = opts_json(dev_o), *sys = opts_json(sys_o);
	if (readonly) {
		json_array_append_new(dev, json_string("ro"));
		json_array_append_new(sys, json_string("ro"));
	}
	mounts_set(ms, "/proc", "proc", "proc", opts_json(proc_o), NULL, NULL);
	mounts_set(ms, "/dev", "tmpfs", "tmpfs", dev, NULL, NULL);
	mounts_set(ms, "/dev/pts", "devpts", "devpts", opts_json(pts_o), NULL, NULL);
	mounts_set(ms, "/sys", "sysfs", "sysfs", sys, NULL, NULL);
	mounts_set(ms, "/sys/fs/cgroup", "cgroup", "cgroup", opts_json(cg_o), NULL, NULL);

	for (size_t i = 0; i < mc->tmpfs.n; i++) {
		const char *t = mc->tmpfs.v[i];
		const char *colon = strchr(t, ':');
		if (colon && strchr(colon + 1, ':'))
			return kiln_error_make(err, EINVAL, "cannot parse tmpfs, too many ':': %s",
					       t);
		cleanup_free char *dest = colon ? xstrndup(t, (size_t)(colon - t)) : xstrdup(t);
		json_t *opts = colon ? split_json(colon + 1) : json_array();
		mounts_set(ms, dest, "tmpfs", "tmpfs", opts, NULL, NULL);
	}
	for (size_t i = 0; i < mc->binds.n; i++) {
		const char *b = mc->binds.v[i];
		cleanup_free char *copy = xstrdup(b);
		char *parts[4] = {0};
		size_t np = 0;
		for (char *p = copy; np < 4;) {
			parts[np++] = p;
			char *c = strchr(p, ':');
			if (!c)
				break;
			*c = '\0';
			p = c + 1;
		}
		if (np < 2)
			return kiln_error_make(err, EINVAL, "cannot parse bind, missing ':': %s",
					       b);
		if (np > 3)
			return kiln_error_make(err, EINVAL, "cannot parse bind, too many ':': %s",
					       b);
		json_t *opts;
		if (np == 3) {
			opts = split_json(parts[2]);
			json_array_append_new(opts, json_string("rbind"));
		} else {
			opts = opts_json((const char *const[]){"rw", "rbind", "rshared", NULL});
		}
		cleanup_free char *src = NULL;
		if (volume_source(in, "bind", b, parts[0], json_has_string(opts, "ro"), &src,
				  err) < 0) {
			json_decref(opts);
			return -1;
		}
		mounts_set(ms, parts[1], "bind", src ? src : parts[0], opts, NULL, NULL);
	}
	for (size_t i = 0; i < mc->mounts.n; i++) {
		const struct manifest_mount *m = &mc->mounts.v[i];
		const char *type = m->type && *m->type ? m->type : NULL;
		if (!type) {
			static const char *const by_source[] = {"mqueue", "devpts", "proc",
								"sysfs",  "cgroup", NULL};
			for (size_t k = 0; m->source && by_source[k]; k++)
				if (strcmp(m->source, by_source[k]) == 0)
					type = by_source[k];
			if (m->destination && strcmp(m->destination, "/dev") == 0)
				type = "tmpfs";
		}
		if (!type)
			return kiln_error_make(err, EINVAL,
					       "mount for destination %s is missing type",
					       m->destination ? m->destination : "");
		const char *src = m->source && *m->source ? m->source : type;
		const char *dest = m->destination && *m->destination ? m->destination : NULL;
		if (!dest) {
			static const char *const defaults[][2] = {{"proc", "/proc"},
								  {"devpts", "/dev/pts"},
								  {"sysfs", "/sys"},
								  {"cgroup", "/sys/fs/cgroup"},
								  {"mqueue", "/dev/mqueue"}};
			for (size_t k = 0; k < ARRAY_SIZE(defaults); k++)
				if (strcmp(type, defaults[k][0]) == 0)
					dest = defaults[k][1];
		}
		if (!dest)
			return kiln_error_make(err, EINVAL, "mount type %s is missing destination",
					       type);
		/* A bind of a volume (§1.7): the source is the volume's merged
		 * directory.  LinuxKit means to do this too, but its loop assigns
		 * to a copy (updateMountsAndBindsFromVolumes) and leaves the bare
		 * name, which runc then resolves against the bundle. */
		cleanup_free char *vsrc = NULL;
		if (strcmp(type, "bind") == 0 &&
		    volume_source(in, "mount for destination", dest, src,
				  first_access_is_ro(&m->options), &vsrc, err) < 0)
			return -1;
		/* A bind mount needs bind or rbind among its options: runc and
		 * crun refuse "type: bind" alone ("no such device"), so a
		 * LinuxKit manifest written that way (test case 070_volumes/
		 * 006_mount_types) never ran.  kiln adds rbind, as binds do. */
		json_t *opts = strlist_json(&m->options);
		if (strcmp(type, "bind") == 0 && !strlist_has(&m->options, "bind") &&
		    !strlist_has(&m->options, "rbind"))
			json_array_append_new(opts, json_string("rbind"));
		mounts_set(ms, dest, type, vsrc ? vsrc : src, opts,
			   idmappings_json(&m->uidmappings), idmappings_json(&m->gidmappings));
	}
	qsort(ms->v, ms->n, sizeof(*ms->v), cmp_mount);
	return 0;
}

/* "all" / "none" expansion (a single entry, case-insensitive). */
static json_t *caps_expand(const struct manifest_strlist *l)
{
	if (l->n == 1 && strcasecmp(l->v[0], "none") == 0)
		return json_array();
	if (l->n == 1 && strcasecmp(l->v[0], "all") == 0) {
		size_t n;
		const char *const *known = manifest_capabilities_known(&n);
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, json_string(known[i]));
		return a;
	}
	return strlist_json(l);
}

static json_t *bounding_set(json_t *caps, json_t *ambient)
{
	size_t n = json_array_size(caps) + json_array_size(ambient);
	const char **v = xcalloc(n ? n : 1, sizeof(*v));
	size_t k = 0, i;
	json_t *x;
	json_array_foreach(caps, i, x) v[k++] = json_string_value(x);
	json_array_foreach(ambient, i, x) v[k++] = json_string_value(x);
	qsort(v, k, sizeof(*v), cmp_str);
	json_t *a = json_array();
	for (i = 0; i < k; i++)
		if (i == 0 || strcmp(v[i], v[i - 1]) != 0)
			json_array_append_new(a, json_string(v[i]));
	free(v);
	return a;
}

static int resolve_id(const struct spec_input *in, const struct manifest_id *id, uint32_t *out,
		      struct kiln_error **err)
{
	*out = 0;
	if (!id->set)
		return 0;
	if (in->m)
		return manifest_id_resolve(in->m, id, out, err);
	if (id->name && *id->name && strcmp(id->name, "root") != 0)
		return kiln_error_make(err, ENOENT, "cannot find id: %s", id->name);
	*out = id->number;
	return 0;
}

static void opt_int(json_t *o, const char *key, const struct manifest_opt_int *v)
{
	if (v->set)
		json_object_set_new(o, key, json_integer(v->value));
}

static json_t *throttle_json(const struct manifest_throttle_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "major", json_integer(l->v[i].major.value));
		json_object_set_new(o, "minor", json_integer(l->v[i].minor.value));
		json_object_set_new(o, "rate", json_integer(l->v[i].rate.value));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *resources_json(const struct manifest_resources *r, json_t *device_rules)
{
	json_t *o = json_object();
	json_t *devs = json_array();
	for (size_t i = 0; i < r->devices.n; i++) {
		const struct manifest_device_cgroup *d = &r->devices.v[i];
		json_t *x = json_object();
		json_object_set_new(x, "allow", json_boolean(d->allow.set && d->allow.value));
		if (d->type && *d->type)
			json_object_set_new(x, "type", json_string(d->type));
		opt_int(x, "major", &d->major);
		opt_int(x, "minor", &d->minor);
		if (d->access && *d->access)
			json_object_set_new(x, "access", json_string(d->access));
		json_array_append_new(devs, x);
	}
	json_array_extend(devs, device_rules);
	set_nonempty(o, "devices", devs);
	if (r->memory.set) {
		json_t *m = json_object();
		opt_int(m, "limit", &r->memory.limit);
		opt_int(m, "reservation", &r->memory.reservation);
		opt_int(m, "swap", &r->memory.swap);
		opt_int(m, "kernel", &r->memory.kernel);
		opt_int(m, "kernelTCP", &r->memory.kernel_tcp);
		opt_int(m, "swappiness", &r->memory.swappiness);
		if (r->memory.disable_oom_killer.set)
			json_object_set_new(m, "disableOOMKiller",
					    json_boolean(r->memory.disable_oom_killer.value));
		json_object_set_new(o, "memory", m);
	}
	if (r->cpu.set) {
		json_t *c = json_object();
		opt_int(c, "shares", &r->cpu.shares);
		opt_int(c, "quota", &r->cpu.quota);
		opt_int(c, "period", &r->cpu.period);
		opt_int(c, "realtimeRuntime", &r->cpu.realtime_runtime);
		opt_int(c, "realtimePeriod", &r->cpu.realtime_period);
		if (r->cpu.cpus && *r->cpu.cpus)
			json_object_set_new(c, "cpus", json_string(r->cpu.cpus));
		if (r->cpu.mems && *r->cpu.mems)
			json_object_set_new(c, "mems", json_string(r->cpu.mems));
		json_object_set_new(o, "cpu", c);
	}
	if (r->pids.set) {
		json_t *p = json_object();
		json_object_set_new(p, "limit", json_integer(r->pids.limit.value));
		json_object_set_new(o, "pids", p);
	}
	if (r->blockio.set) {
		json_t *b = json_object();
		opt_int(b, "weight", &r->blockio.weight);
		opt_int(b, "leafWeight", &r->blockio.leaf_weight);
		json_t *wd = json_array();
		for (size_t i = 0; i < r->blockio.weight_device.n; i++) {
			const struct manifest_weight_device *d = &r->blockio.weight_device.v[i];
			json_t *x = json_object();
			json_object_set_new(x, "major", json_integer(d->major.value));
			json_object_set_new(x, "minor", json_integer(d->minor.value));
			opt_int(x, "weight", &d->weight);
			opt_int(x, "leafWeight", &d->leaf_weight);
			json_array_append_new(wd, x);
		}
		set_nonempty(b, "weightDevice", wd);
		set_nonempty(b, "throttleReadBpsDevice",
			     throttle_json(&r->blockio.throttle_read_bps_device));
		set_nonempty(b, "throttleWriteBpsDevice",
			     throttle_json(&r->blockio.throttle_write_bps_device));
		set_nonempty(b, "throttleReadIOPSDevice",
			     throttle_json(&r->blockio.throttle_read_iops_device));
		set_nonempty(b, "throttleWriteIOPSDevice",
			     throttle_json(&r->blockio.throttle_write_iops_device));
		json_object_set_new(o, "blockIO", b);
	}
	if (r->hugepage_limits.n) {
		json_t *h = json_array();
		for (size_t i = 0; i < r->hugepage_limits.n; i++) {
			json_t *x = json_object();
			if (r->hugepage_limits.v[i].page_size.set) {
				cleanup_free char *ps = xasprintf(
				    "%lld", (long long)r->hugepage_limits.v[i].page_size.value);
				json_object_set_new(x, "pageSize", json_string(ps));
			}
			json_object_set_new(x, "limit",
					    json_integer(r->hugepage_limits.v[i].limit.value));
			json_array_append_new(h, x);
		}
		json_object_set_new(o, "hugepageLimits", h);
	}
	if (r->network.set) {
		json_t *n = json_object();
		opt_int(n, "classID", &r->network.class_id);
		json_t *pr = json_array();
		for (size_t i = 0; i < r->network.priorities.n; i++) {
			json_t *x = json_object();
			json_object_set_new(x, "name",
					    json_string(r->network.priorities.v[i].name
							    ? r->network.priorities.v[i].name
							    : ""));
			json_object_set_new(
			    x, "priority", json_integer(r->network.priorities.v[i].priority.value));
			json_array_append_new(pr, x);
		}
		set_nonempty(n, "priorities", pr);
		json_object_set_new(o, "network", n);
	}
	return o;
}

static void add_ns(json_t *nss, const char *type, const char *path)
{
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(type));
	if (path && *path)
		json_object_set_new(o, "path", json_string(path));
	json_array_append_new(nss, o);
}

static const char *nz(const char *s, const char *dflt)
{
	return s && *s ? s : dflt;
}

static json_t *namespaces_json(const struct image_config *mc)
{
	json_t *nss = json_array();
	const char *net = nz(mc->net, "root");
	if (strcmp(net, "host") != 0 && strcmp(net, "root") != 0)
		add_ns(nss, "network",
		       strcmp(net, "none") == 0 || strcmp(net, "new") == 0 ? "" : net);
	const char *ipc = nz(mc->ipc, "root");
	if (strcmp(ipc, "host") != 0 && strcmp(ipc, "root") != 0)
		add_ns(nss, "ipc", strcmp(ipc, "new") == 0 ? "" : ipc);
	const char *uts = nz(mc->uts, "root");
	if (strcmp(uts, "host") != 0 && strcmp(uts, "root") != 0)
		add_ns(nss, "uts", strcmp(uts, "new") == 0 ? "" : uts);
	const char *pid = nz(mc->pid, "");
	if (strcmp(pid, "host") != 0 && strcmp(pid, "root") != 0)
		add_ns(nss, "pid", strcmp(pid, "new") == 0 ? "" : pid);
	const char *user = nz(mc->userns, "root");
	if (strcmp(user, "host") != 0 && strcmp(user, "root") != 0)
		add_ns(nss, "user", strcmp(user, "new") == 0 ? "" : user);
	add_ns(nss, "mount", NULL);
	return nss;
}

static int devices_json(const struct image_config *mc, json_t **devices, json_t **rules,
			struct kiln_error **err)
{
	*devices = json_array();
	*rules = json_array();
	for (size_t i = 0; i < mc->devices.n; i++) {
		const struct manifest_device *d = &mc->devices.v[i];
		const char *type = d->type ? d->type : "";
		if (d->path && strcmp(d->path, "all") == 0) {
			if (strcmp(type, "a") && strcmp(type, "b") && strcmp(type, "c"))
				return kiln_error_make(
				    err, EINVAL, "device `all` needs type a, b or c, not `%s`",
				    type);
			json_t *r = json_object();
			json_object_set_new(r, "allow", json_true());
			json_object_set_new(r, "type", json_string(type));
			json_object_set_new(r, "access", json_string("rwm"));
			json_array_append_new(*rules, r);
			continue;
		}
		json_t *o = json_object();
		json_object_set_new(o, "path", json_string(d->path ? d->path : ""));
		json_object_set_new(o, "type", json_string(type));
		json_object_set_new(o, "major", json_integer(d->major));
		json_object_set_new(o, "minor", json_integer(d->minor));
		if (d->mode.set && d->mode.value)
			json_object_set_new(o, "fileMode", json_integer(d->mode.value));
		json_array_append_new(*devices, o);
		json_t *r = json_object();
		json_object_set_new(r, "allow", json_true());
		json_object_set_new(r, "type", json_string(type));
		json_object_set_new(r, "major", json_integer(d->major));
		json_object_set_new(r, "minor", json_integer(d->minor));
		json_object_set_new(r, "access", json_string("rwm"));
		json_array_append_new(*rules, r);
	}
	return 0;
}

static json_t *config_json(const struct spec_input *in, const struct image_config *mc,
			   struct kiln_error **err)
{
	bool readonly = mc->readonly.set && mc->readonly.value;
	json_t *spec = json_object();
	json_object_set_new(spec, "ociVersion", json_string(SPEC_OCI_VERSION));

	json_t *proc = json_object();
	json_t *user = json_object();
	uint32_t uid, gid;
	if (resolve_id(in, &mc->uid, &uid, err) < 0 || resolve_id(in, &mc->gid, &gid, err) < 0)
		goto fail;
	json_object_set_new(user, "uid", json_integer(uid));
	json_object_set_new(user, "gid", json_integer(gid));
	json_t *gids = json_array();
	for (size_t i = 0; i < mc->additional_gids.n; i++) {
		uint32_t g;
		if (resolve_id(in, &mc->additional_gids.v[i], &g, err) < 0) {
			json_decref(gids);
			json_decref(user);
			json_decref(proc);
			goto fail;
		}
		json_array_append_new(gids, json_integer(g));
	}
	set_nonempty(user, "additionalGids", gids);
	json_object_set_new(proc, "user", user);

	json_t *args = json_array();
	if (mc->command.set) {
		json_decref(args);
		args = strlist_json(&mc->command);
	} else {
		image_cfg_append(args, in->image_config, "Entrypoint");
		image_cfg_append(args, in->image_config, "Cmd");
	}
	set_nonempty(proc, "args", args);
	json_t *env = json_array();
	if (mc->env.set) {
		json_decref(env);
		env = strlist_json(&mc->env);
	} else {
		image_cfg_append(env, in->image_config, "Env");
	}
	set_nonempty(proc, "env", env);
	const char *cwd = nz(mc->cwd, nz(image_cfg_string(in->image_config, "WorkingDir"), "/"));
	json_object_set_new(proc, "cwd", json_string(cwd));

	json_t *caps = caps_expand(&mc->capabilities);
	json_t *ambient = caps_expand(&mc->ambient);
	json_t *bounding = bounding_set(caps, ambient);
	json_t *capo = json_object();
	set_nonempty(capo, "bounding", json_copy(bounding));
	set_nonempty(capo, "effective", caps);
	set_nonempty(capo, "inheritable", json_copy(bounding));
	set_nonempty(capo, "permitted", bounding);
	set_nonempty(capo, "ambient", ambient);
	json_object_set_new(proc, "capabilities", capo);

	json_t *rl = json_array();
	for (size_t i = 0; i < mc->rlimits.n; i++) {
		struct manifest_rlimit r;
		if (manifest_rlimit_parse(mc->rlimits.v[i], &r, err) < 0) {
			json_decref(rl);
			json_decref(proc);
			goto fail;
		}
		json_t *o = json_object();
		json_object_set_new(o, "type", json_string(r.type));
		json_object_set_new(o, "hard", json_integer((json_int_t)r.hard));
		json_object_set_new(o, "soft", json_integer((json_int_t)r.soft));
		json_array_append_new(rl, o);
	}
	set_nonempty(proc, "rlimits", rl);
	if (mc->no_new_privileges.set && mc->no_new_privileges.value)
		json_object_set_new(proc, "noNewPrivileges", json_true());
	if (mc->oom_score_adj.set)
		json_object_set_new(proc, "oomScoreAdj", json_integer(mc->oom_score_adj.value));
	json_object_set_new(spec, "process", proc);

	json_t *root = json_object();
	json_object_set_new(root, "path", json_string("rootfs"));
	if (readonly)
		json_object_set_new(root, "readonly", json_true());
	json_object_set_new(spec, "root", root);
	if (mc->hostname && *mc->hostname)
		json_object_set_new(spec, "hostname", json_string(mc->hostname));

	struct mounts ms = {0};
	if (build_mounts(in, mc, readonly, &ms, err) < 0) {
		mounts_release(&ms);
		goto fail;
	}
	json_t *mounts = json_array();
	for (size_t i = 0; i < ms.n; i++)
		json_array_append_new(mounts, mount_json(ms.v[i].destination, ms.v[i].type,
							 ms.v[i].source, ms.v[i].options,
							 ms.v[i].uidmappings, ms.v[i].gidmappings));
	mounts_release(&ms);
	set_nonempty(spec, "mounts", mounts);
	if (mc->annotations.n)
		json_object_set_new(spec, "annotations", strmap_json(&mc->annotations));

	json_t *linux_ = json_object();
	set_nonempty(linux_, "uidMappings", idmappings_json(&mc->uid_mappings));
	set_nonempty(linux_, "gidMappings", idmappings_json(&mc->gid_mappings));
	if (mc->sysctl.n)
		json_object_set_new(linux_, "sysctl", strmap_json(&mc->sysctl));
	json_t *devices, *rules;
	if (devices_json(mc, &devices, &rules, err) < 0) {
		json_decref(linux_);
		goto fail;
	}
	json_object_set_new(linux_, "resources", resources_json(&mc->resources, rules));
	json_decref(rules);
	if (mc->cgroups_path && *mc->cgroups_path)
		json_object_set_new(linux_, "cgroupsPath", json_string(mc->cgroups_path));
	json_object_set_new(linux_, "namespaces", namespaces_json(mc));
	set_nonempty(linux_, "devices", devices);
	if (mc->rootfs_propagation && *mc->rootfs_propagation)
		json_object_set_new(linux_, "rootfsPropagation",
				    json_string(mc->rootfs_propagation));
	set_nonempty(linux_, "maskedPaths", strlist_json(&mc->masked_paths));
	set_nonempty(linux_, "readonlyPaths", strlist_json(&mc->readonly_paths));
	json_object_set_new(spec, "linux", linux_);
	return spec;
fail:
	json_decref(spec);
	return NULL;
}

static json_t *manifest_mount_json(const struct manifest_mount *m)
{
	json_t *opts = strlist_json(&m->options);
	json_t *u = idmappings_json(&m->uidmappings), *g = idmappings_json(&m->gidmappings);
	json_t *o =
	    mount_json(m->destination ? m->destination : "", m->type, m->source, opts, u, g);
	json_decref(opts);
	json_decref(u);
	json_decref(g);
	return o;
}

static json_t *runtime_json(const struct spec_input *in, const struct image_config *mc)
{
	const struct manifest_runtime *r = &mc->runtime;
	bool readonly = mc->readonly.set && mc->readonly.value;
	json_t *o = json_object();
	if (r->cgroups.set)
		json_object_set_new(o, "cgroups", strlist_json(&r->cgroups));
	json_t *mounts = json_array();
	if (in->bundle) {
		const char *b = in->bundle;
		if (readonly) {
			cleanup_free char *dst = xasprintf("/%s/rootfs", b);
			cleanup_free char *src =
			    in->shared_root ? xasprintf("/%s", in->shared_root) : xstrdup(dst);
			json_t *opts = opts_json((const char *const[]){"bind", NULL});
			json_array_append_new(mounts, mount_json(dst, NULL, src, opts, NULL, NULL));
			json_decref(opts);
		} else {
			cleanup_free char *tmp = xasprintf("/%s/tmp", b);
			cleanup_free char *rootfs = xasprintf("/%s/rootfs", b);
			cleanup_free char *lower = in->shared_root
						       ? xasprintf("/%s", in->shared_root)
						       : xasprintf("/%s/lower", b);
			json_array_append_new(mounts,
					      mount_json(tmp, "tmpfs", "tmpfs", NULL, NULL, NULL));
			json_t *ro = opts_json((const char *const[]){"remount", "private", NULL});
			json_array_append_new(mounts, mount_json(tmp, NULL, NULL, ro, NULL, NULL));
			json_decref(ro);
			json_t *ov = json_array();
			cleanup_free char *l = xasprintf("lowerdir=%s", lower);
			cleanup_free char *u = xasprintf("upperdir=%s/upper", tmp);
			cleanup_free char *w = xasprintf("workdir=%s/work", tmp);
			json_array_append_new(ov, json_string(l));
			json_array_append_new(ov, json_string(u));
			json_array_append_new(ov, json_string(w));
			json_array_append_new(
			    mounts, mount_json(rootfs, "overlay", "overlay", ov, NULL, NULL));
			json_decref(ov);
		}
	}
	for (size_t i = 0; i < r->mounts.n; i++)
		json_array_append_new(mounts, manifest_mount_json(&r->mounts.v[i]));
	if (in->bundle || r->mounts.set)
		json_object_set_new(o, "mounts", mounts);
	else
		json_decref(mounts);
	if (r->mkdir.set)
		json_object_set_new(o, "mkdir", strlist_json(&r->mkdir));
	if (r->interfaces.set) {
		json_t *a = json_array();
		for (size_t i = 0; i < r->interfaces.n; i++) {
			const struct manifest_interface *x = &r->interfaces.v[i];
			json_t *io = json_object();
			if (x->name && *x->name)
				json_object_set_new(io, "name", json_string(x->name));
			if (x->add && *x->add)
				json_object_set_new(io, "add", json_string(x->add));
			if (x->peer && *x->peer)
				json_object_set_new(io, "peer", json_string(x->peer));
			json_object_set_new(
			    io, "createInRoot",
			    json_boolean(x->create_in_root.set && x->create_in_root.value));
			json_array_append_new(a, io);
		}
		json_object_set_new(o, "interfaces", a);
	}
	json_t *ns = json_object();
	const struct {
		const char *key, *val;
	} bns[] = {{"cgroup", r->bind_ns.cgroup}, {"ipc", r->bind_ns.ipc},
		   {"mnt", r->bind_ns.mnt},	  {"net", r->bind_ns.net},
		   {"pid", r->bind_ns.pid},	  {"user", r->bind_ns.user},
		   {"uts", r->bind_ns.uts}};
	for (size_t i = 0; i < ARRAY_SIZE(bns); i++)
		if (bns[i].val)
			json_object_set_new(ns, bns[i].key, json_string(bns[i].val));
	json_object_set_new(o, "bindNS", ns);
	if (r->namespace)
		json_object_set_new(o, "namespace", json_string(r->namespace));
	return o;
}

int spec_generate(const struct spec_input *in, char **config_out, char **runtime_out,
		  struct kiln_error **err)
{
	struct image_config *mc = spec_merged_config(in, err);
	if (!mc)
		return -1;
	cleanup_json json_t *cfg = config_json(in, mc, err);
	if (!cfg) {
		image_config_free(mc);
		return -1;
	}
	cleanup_json json_t *rt = runtime_json(in, mc);
	image_config_free(mc);
	if (config_out)
		*config_out = json_dumps(cfg, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	if (runtime_out)
		*runtime_out = json_dumps(rt, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
	return 0;
}
