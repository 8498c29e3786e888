/* The manifest written back out: first as an ordered JSON tree (jansson keeps
 * insertion order), which is dumped as JSON or walked into libyaml emitter
 * events.  Keys follow the schema's order and only set fields appear, so the
 * output is deterministic and parses back to the same manifest. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "manifest_internal.h"
#include "strbuf.h"
#include "util.h"

static void put_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static void put_list(json_t *o, const char *key, const struct manifest_strlist *l)
{
	if (!l->set)
		return;
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	json_object_set_new(o, key, a);
}

static void put_map(json_t *o, const char *key, const struct manifest_strmap *m)
{
	if (!m->set)
		return;
	json_t *d = json_object();
	for (size_t i = 0; i < m->n; i++)
		json_object_set_new(d, m->keys[i], json_string(m->values[i]));
	json_object_set_new(o, key, d);
}

static void put_bool(json_t *o, const char *key, struct manifest_opt_bool b)
{
	if (b.set)
		json_object_set_new(o, key, json_boolean(b.value));
}

static void put_int(json_t *o, const char *key, struct manifest_opt_int i)
{
	if (i.set)
		json_object_set_new(o, key, json_integer(i.value));
}

static void put_mode(json_t *o, const char *key, struct manifest_opt_int i)
{
	if (!i.set)
		return;
	char buf[16];
	snprintf(buf, sizeof buf, "0%" PRIo64, (uint64_t)i.value);
	json_object_set_new(o, key, json_string(buf));
}

static json_t *id_json(const struct manifest_id *id)
{
	return id->name ? json_string(id->name) : json_integer(id->number);
}

static void put_id(json_t *o, const char *key, const struct manifest_id *id)
{
	if (id->set)
		json_object_set_new(o, key, id_json(id));
}

/* Adds the {set, n, v} list LIST to O as the array KEY when it is set, one
 * ELEMENT_JSON(&v[i]) per element. */
#define PUT_ARRAY(o, key, list, element_json)                                                      \
	do {                                                                                       \
		if ((list).set) {                                                                  \
			json_t *array_ = json_array();                                             \
			for (size_t i_ = 0; i_ < (list).n; i_++)                                   \
				json_array_append_new(array_, element_json(&(list).v[i_]));        \
			json_object_set_new((o), (key), array_);                                   \
		}                                                                                  \
	} while (0)

static json_t *idmapping_json(const struct manifest_idmapping *m)
{
	return json_pack("{sIsIsI}", "hostID", (json_int_t)m->host_id, "containerID",
			 (json_int_t)m->container_id, "size", (json_int_t)m->size);
}

static json_t *mount_json(const struct manifest_mount *m)
{
	json_t *e = json_object();
	put_str(e, "destination", m->destination);
	put_str(e, "type", m->type);
	put_str(e, "source", m->source);
	put_list(e, "options", &m->options);
	PUT_ARRAY(e, "uidmappings", m->uidmappings, idmapping_json);
	PUT_ARRAY(e, "gidmappings", m->gidmappings, idmapping_json);
	return e;
}

static json_t *device_json(const struct manifest_device *d)
{
	json_t *e = json_object();
	put_str(e, "path", d->path);
	put_str(e, "type", d->type);
	json_object_set_new(e, "major", json_integer(d->major));
	json_object_set_new(e, "minor", json_integer(d->minor));
	put_mode(e, "mode", d->mode);
	return e;
}

static json_t *device_cgroup_json(const struct manifest_device_cgroup *d)
{
	json_t *e = json_object();
	put_bool(e, "allow", d->allow);
	put_str(e, "type", d->type);
	put_int(e, "major", d->major);
	put_int(e, "minor", d->minor);
	put_str(e, "access", d->access);
	return e;
}

static json_t *weight_device_json(const struct manifest_weight_device *w)
{
	json_t *e = json_object();
	put_int(e, "major", w->major);
	put_int(e, "minor", w->minor);
	put_int(e, "weight", w->weight);
	put_int(e, "leafWeight", w->leaf_weight);
	return e;
}

static json_t *throttle_device_json(const struct manifest_throttle_device *t)
{
	json_t *e = json_object();
	put_int(e, "major", t->major);
	put_int(e, "minor", t->minor);
	put_int(e, "rate", t->rate);
	return e;
}

static json_t *hugepage_limit_json(const struct manifest_hugepage_limit *h)
{
	json_t *e = json_object();
	put_int(e, "pageSize", h->page_size);
	put_int(e, "limit", h->limit);
	return e;
}

static json_t *interface_priority_json(const struct manifest_interface_priority *p)
{
	json_t *e = json_object();
	put_str(e, "name", p->name);
	put_int(e, "priority", p->priority);
	return e;
}

static json_t *interface_json(const struct manifest_interface *f)
{
	json_t *e = json_object();
	put_str(e, "name", f->name);
	put_str(e, "add", f->add);
	put_str(e, "peer", f->peer);
	put_bool(e, "createInRoot", f->create_in_root);
	return e;
}

static json_t *resources_json(const struct manifest_resources *r)
{
	json_t *o = json_object();
	PUT_ARRAY(o, "devices", r->devices, device_cgroup_json);
	if (r->memory.set) {
		json_t *e = json_object();
		put_int(e, "limit", r->memory.limit);
		put_int(e, "reservation", r->memory.reservation);
		put_int(e, "swap", r->memory.swap);
		put_int(e, "kernel", r->memory.kernel);
		put_int(e, "kernelTCP", r->memory.kernel_tcp);
		put_int(e, "swappiness", r->memory.swappiness);
		put_bool(e, "disableOOMKiller", r->memory.disable_oom_killer);
		json_object_set_new(o, "memory", e);
	}
	if (r->cpu.set) {
		json_t *e = json_object();
		put_int(e, "shares", r->cpu.shares);
		put_int(e, "quota", r->cpu.quota);
		put_int(e, "period", r->cpu.period);
		put_int(e, "realtimeRuntime", r->cpu.realtime_runtime);
		put_int(e, "realtimePeriod", r->cpu.realtime_period);
		put_str(e, "cpus", r->cpu.cpus);
		put_str(e, "mems", r->cpu.mems);
		json_object_set_new(o, "cpu", e);
	}
	if (r->pids.set) {
		json_t *e = json_object();
		put_int(e, "limit", r->pids.limit);
		json_object_set_new(o, "pids", e);
	}
	if (r->blockio.set) {
		json_t *e = json_object();
		put_int(e, "weight", r->blockio.weight);
		put_int(e, "leafWeight", r->blockio.leaf_weight);
		PUT_ARRAY(e, "weightDevice", r->blockio.weight_device, weight_device_json);
		PUT_ARRAY(e, "throttleReadBpsDevice", r->blockio.throttle_read_bps_device,
			  throttle_device_json);
		PUT_ARRAY(e, "throttleWriteBpsDevice", r->blockio.throttle_write_bps_device,
			  throttle_device_json);
		PUT_ARRAY(e, "throttleReadIOPSDevice", r->blockio.throttle_read_iops_device,
			  throttle_device_json);
		PUT_ARRAY(e, "throttleWriteIOPSDevice", r->blockio.throttle_write_iops_device,
			  throttle_device_json);
		json_object_set_new(o, "blockio", e);
	}
	PUT_ARRAY(o, "hugepageLimits", r->hugepage_limits, hugepage_limit_json);
	if (r->network.set) {
		json_t *e = json_object();
		put_int(e, "classID", r->network.class_id);
		PUT_ARRAY(e, "priorities", r->network.priorities, interface_priority_json);
		json_object_set_new(o, "network", e);
	}
	return o;
}

static json_t *runtime_json(const struct manifest_runtime *rt)
{
	json_t *o = json_object();
	put_list(o, "cgroups", &rt->cgroups);
	PUT_ARRAY(o, "mounts", rt->mounts, mount_json);
	put_list(o, "mkdir", &rt->mkdir);
	PUT_ARRAY(o, "interfaces", rt->interfaces, interface_json);
	if (rt->bind_ns.set) {
		json_t *e = json_object();
		put_str(e, "cgroup", rt->bind_ns.cgroup);
		put_str(e, "ipc", rt->bind_ns.ipc);
		put_str(e, "mnt", rt->bind_ns.mnt);
		put_str(e, "net", rt->bind_ns.net);
		put_str(e, "pid", rt->bind_ns.pid);
		put_str(e, "user", rt->bind_ns.user);
		put_str(e, "uts", rt->bind_ns.uts);
		json_object_set_new(o, "bindNS", e);
	}
	put_str(o, "namespace", rt->namespace);
	return o;
}

/* Adds the fields of C to O in the schema's order. */
static void config_json(json_t *o, const struct image_config *c)
{
	put_list(o, "capabilities", &c->capabilities);
	put_list(o, "capabilities.add", &c->capabilities_add);
	put_list(o, "ambient", &c->ambient);
	PUT_ARRAY(o, "mounts", c->mounts, mount_json);
	put_list(o, "binds", &c->binds);
	put_list(o, "binds.add", &c->binds_add);
	PUT_ARRAY(o, "devices", c->devices, device_json);
	put_list(o, "tmpfs", &c->tmpfs);
	put_list(o, "command", &c->command);
	put_list(o, "env", &c->env);
	put_str(o, "cwd", c->cwd);
	put_str(o, "net", c->net);
	put_str(o, "pid", c->pid);
	put_str(o, "ipc", c->ipc);
	put_str(o, "uts", c->uts);
	put_str(o, "userns", c->userns);
	put_bool(o, "readonly", c->readonly);
	put_list(o, "maskedPaths", &c->masked_paths);
	put_list(o, "readonlyPaths", &c->readonly_paths);
	put_id(o, "uid", &c->uid);
	put_id(o, "gid", &c->gid);
	PUT_ARRAY(o, "additionalGids", c->additional_gids, id_json);
	put_bool(o, "noNewPrivileges", c->no_new_privileges);
	put_str(o, "hostname", c->hostname);
	put_int(o, "oomScoreAdj", c->oom_score_adj);
	put_str(o, "rootfsPropagation", c->rootfs_propagation);
	put_str(o, "cgroupsPath", c->cgroups_path);
	if (c->resources.set)
		json_object_set_new(o, "resources", resources_json(&c->resources));
	put_map(o, "sysctl", &c->sysctl);
	put_list(o, "rlimits", &c->rlimits);
	PUT_ARRAY(o, "uidMappings", c->uid_mappings, idmapping_json);
	PUT_ARRAY(o, "gidMappings", c->gid_mappings, idmapping_json);
	put_map(o, "annotations", &c->annotations);
	if (c->runtime.set)
		json_object_set_new(o, "runtime", runtime_json(&c->runtime));
}

static json_t *images_json(const struct manifest_image_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++) {
		json_t *e = json_object();
		put_str(e, "name", l->v[i].name);
		put_str(e, "image", l->v[i].image);
		config_json(e, &l->v[i].config);
		json_array_append_new(a, e);
	}
	return a;
}

static json_t *manifest_json(const struct manifest *m)
{
	json_t *o = json_object();
	if (m->kernel.set) {
		json_t *k = json_object();
		put_str(k, "image", m->kernel.image);
		put_str(k, "cmdline", m->kernel.cmdline);
		put_str(k, "binary", m->kernel.binary);
		put_str(k, "tar", m->kernel.tar);
		put_str(k, "ucode", m->kernel.ucode);
		json_object_set_new(o, "kernel", k);
	}
	if (m->ninit) {
		json_t *a = json_array();
		for (size_t i = 0; i < m->ninit; i++)
			json_array_append_new(a, json_string(m->init[i].image));
		json_object_set_new(o, "init", a);
	}
	if (m->onboot.n)
		json_object_set_new(o, "onboot", images_json(&m->onboot));
	if (m->onshutdown.n)
		json_object_set_new(o, "onshutdown", images_json(&m->onshutdown));
	if (m->services.n)
		json_object_set_new(o, "services", images_json(&m->services));
	if (m->nfiles) {
		json_t *a = json_array();
		for (size_t i = 0; i < m->nfiles; i++) {
			const struct manifest_file *f = &m->files[i];
			json_t *e = json_object();
			put_str(e, "path", f->path);
			put_bool(e, "directory", f->directory);
			put_str(e, "symlink", f->symlink);
			put_str(e, "contents", f->contents);
			put_str(e, "source", f->source);
			put_str(e, "metadata", f->metadata);
			put_bool(e, "optional", f->optional);
			put_mode(e, "mode", f->mode);
			put_id(e, "uid", &f->uid);
			put_id(e, "gid", &f->gid);
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "files", a);
	}
	if (m->nvolumes) {
		json_t *a = json_array();
		for (size_t i = 0; i < m->nvolumes; i++) {
			const struct manifest_volume *v = &m->volumes[i];
			json_t *e = json_object();
			put_str(e, "name", v->name);
			put_str(e, "image", v->image);
			put_bool(e, "readonly", v->readonly);
			put_str(e, "format", v->format);
			put_list(e, "platforms", &v->platforms);
			json_array_append_new(a, e);
		}
		json_object_set_new(o, "volumes", a);
	}
	return o;
}

/* ------------------------------------------------------------ YAML output */

static int emit(yaml_emitter_t *em, yaml_event_t *ev, struct kiln_error **err)
{
	if (!yaml_emitter_emit(em, ev))
		return kiln_error_make(err, 0, "writing YAML: %s",
				       em->problem ? em->problem : "emitter error");
	return 0;
}

static int emit_scalar(yaml_emitter_t *em, const char *s, bool is_string, struct kiln_error **err)
{
	yaml_event_t ev;
	yaml_scalar_style_t style = YAML_ANY_SCALAR_STYLE;
	if (is_string) {
		if (!yscalar_plain_is_string(s))
			style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
		else if (strchr(s, '\n'))
			style = YAML_LITERAL_SCALAR_STYLE;
	}
	/* plain_implicit only for non-strings and strings that read back as strings */
	int plain = !is_string || style != YAML_DOUBLE_QUOTED_SCALAR_STYLE;
	yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, 1,
				     style);
	return emit(em, &ev, err);
}

static int emit_json(yaml_emitter_t *em, json_t *j, struct kiln_error **err)
{
	yaml_event_t ev;
	char buf[32];
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
		if (emit(em, &ev, err) < 0)
			return -1;
		const char *key;
		json_t *v;
		json_object_foreach(j, key, v)
		{
			if (emit_scalar(em, key, true, err) < 0 || emit_json(em, v, err) < 0)
				return -1;
		}
		yaml_mapping_end_event_initialize(&ev);
		return emit(em, &ev, err);
	}
	case JSON_ARRAY: {
		yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
						     json_array_size(j) ? YAML_BLOCK_SEQUENCE_STYLE
									: YAML_FLOW_SEQUENCE_STYLE);
		if (emit(em, &ev, err) < 0)
			return -1;
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v)
		{
			if (emit_json(em, v, err) < 0)
				return -1;
		}
		yaml_sequence_end_event_initialize(&ev);
		return emit(em, &ev, err);
	}
	case JSON_STRING:
		return emit_scalar(em, json_string_value(j), true, err);
	case JSON_INTEGER:
		snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		return emit_scalar(em, buf, false, err);
	case JSON_TRUE:
		return emit_scalar(em, "true", false, err);
	case JSON_FALSE:
		return emit_scalar(em, "false", false, err);
	default:
		return emit_scalar(em, "null", false, err);
	}
}

static int write_to_strbuf(void *data, unsigned char *buffer, size_t size)
{
	strbuf_append(data, buffer, size);
	return 1;
}

static char *yaml_text(json_t *root, struct kiln_error **err)
{
	struct strbuf sb = STRBUF_INIT;
	yaml_emitter_t em;
	if (!yaml_emitter_initialize(&em))
		oom();
	yaml_emitter_set_output(&em, write_to_strbuf, &sb);
	yaml_emitter_set_unicode(&em, 1);
	yaml_emitter_set_width(&em, -1);
	yaml_emitter_set_indent(&em, 2);
	yaml_event_t ev;
	int r;
	yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
	r = emit(&em, &ev, err);
	if (r == 0) {
		yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
		r = emit(&em, &ev, err);
	}
	if (r == 0)
		r = emit_json(&em, root, err);
	if (r == 0) {
		yaml_document_end_event_initialize(&ev, 1);
		r = emit(&em, &ev, err);
	}
	if (r == 0) {
		yaml_stream_end_event_initialize(&ev);
		r = emit(&em, &ev, err);
	}
	yaml_emitter_delete(&em);
	if (r < 0) {
		strbuf_release(&sb);
		return NULL;
	}
	strbuf_putc(&sb, '\0'); /* ensure a buffer even when empty */
	sb.len--;
	return strbuf_detach(&sb, NULL);
}

char *manifest_dump_string(const struct manifest *m, const char *format, struct kiln_error **err)
{
	json_t *root = manifest_json(m);
	char *s = NULL;
	if (strcmp(format, "json") == 0) {
		char *j = json_dumps(root, JSON_INDENT(4) | JSON_PRESERVE_ORDER);
		if (j == NULL)
			oom();
		s = xasprintf("%s\n", j);
		free(j);
	} else if (strcmp(format, "yaml") == 0) {
		s = yaml_text(root, err);
	} else {
		kiln_error_make(err, 0, "unknown metadata format \"%s\" (yaml or json)", format);
	}
	json_decref(root);
	return s;
}

int manifest_dump(const struct manifest *m, FILE *out, struct kiln_error **err)
{
	cleanup_free char *s = manifest_dump_string(m, "yaml", err);
	if (s == NULL)
		return -1;
	if (fputs(s, out) == EOF || fflush(out) == EOF)
		return kiln_error_make(err, errno, "write manifest");
	return 0;
}
