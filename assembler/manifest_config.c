/* The per-image configuration (struct image_config): reading it from a YAML
 * node with LinuxKit's schema and checks, the org.mobyproject.config label,
 * the label merge, deep copy and release, capability names and rlimits. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "manifest_internal.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

int mctx_fail(struct mctx *c, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = yaml_position_verror(c->err, c->file, n ? n->line : 1, n ? n->col : 1, fmt, ap);
	va_end(ap);
	return r;
}

static const char *article(const struct ynode *n)
{
	const char *t = ynode_type_name(n);
	return (t[0] == 'a' || t[0] == 'i') ? "an" : "a";
}

int mctx_expect(struct mctx *c, const struct ynode *n, enum ynode_kind kind, const char *what)
{
	if (n->kind == kind)
		return 0;
	const char *want = kind == YNODE_SEQUENCE  ? "a list"
			   : kind == YNODE_MAPPING ? "a mapping"
						   : "a scalar";
	return mctx_fail(c, n, "%s: expected %s, got %s %s", what, want, article(n),
			 ynode_type_name(n));
}

static int resolve_template(struct mctx *c, const struct ynode *n, char **out)
{
	const char *path = n->value + strlen("@pkg:");
	if (*path == '\0')
		return mctx_fail(c, n, "@pkg: template without a package path");
	cleanup_free char *base = realpath(c->base_dir, NULL);
	const char *rel = path;
	while (rel[0] == '.' && rel[1] == '/')
		rel += 2;
	cleanup_free char *joined =
		path[0] == '/' ? xstrdup(path) : path_join(base ? base : c->base_dir, rel);
	struct stat st;
	if (stat(joined, &st) < 0 || !S_ISDIR(st.st_mode))
		return mctx_fail(c, n, "@pkg:%s: package directory %s not found", path, joined);
	cleanup_free char *abs = realpath(joined, NULL);
	if (abs == NULL)
		return mctx_fail(c, n, "@pkg:%s: package directory %s: %s", path, joined,
				 strerror(errno));
	if (c->opts == NULL || c->opts->pkg_resolver == NULL)
		return mctx_fail(c, n,
				 "@pkg:%s: cannot compute the tag of package %s: no package "
				 "resolver in this build",
				 path, abs);
	struct kiln_error *e = NULL;
	char *tag = c->opts->pkg_resolver(abs, c->opts->pkg_data, &e);
	if (tag == NULL) {
		int r = mctx_fail(c, n, "@pkg:%s: %s", path, e ? e->msg : "cannot resolve package");
		kiln_error_release(&e);
		return r;
	}
	*out = tag;
	return 0;
}

static char *scalar_dup(const struct ynode *n)
{
	return xstrndup(n->value, n->len);
}

int mctx_string(struct mctx *c, const struct ynode *n, const char *what, char **out)
{
	if (n->kind != YNODE_SCALAR || n->type != YS_STRING)
		return mctx_fail(c, n, "%s: expected a string, got %s %s", what, article(n),
				 ynode_type_name(n));
	if (n->len != strlen(n->value))
		return mctx_fail(c, n, "%s: string contains a NUL character", what);
	char *v = NULL;
	if (c->base_dir && str_has_prefix(n->value, "@pkg:")) {
		if (resolve_template(c, n, &v) < 0)
			return -1;
	} else {
		v = scalar_dup(n);
	}
	free(*out);
	*out = v;
	return 0;
}

int mctx_bool(struct mctx *c, const struct ynode *n, const char *what, struct manifest_opt_bool *out)
{
	if (n->kind != YNODE_SCALAR || n->type != YS_BOOL)
		return mctx_fail(c, n, "%s: expected a boolean (true or false), got %s %s", what,
				 article(n), ynode_type_name(n));
	out->set = true;
	out->value = n->bool_value;
	return 0;
}

int mctx_int(struct mctx *c, const struct ynode *n, const char *what, struct manifest_opt_int *out)
{
	if (n->kind != YNODE_SCALAR || n->type != YS_INT)
		return mctx_fail(c, n, "%s: expected an integer, got %s %s", what, article(n),
				 ynode_type_name(n));
	if (n->int_overflow)
		return mctx_fail(c, n, "%s: integer %s out of range", what, n->value);
	out->set = true;
	out->value = n->int_value;
	return 0;
}

static int mctx_int_range(struct mctx *c, const struct ynode *n, const char *what, int64_t lo,
			  int64_t hi, int64_t *out)
{
	struct manifest_opt_int v = {0};
	if (mctx_int(c, n, what, &v) < 0)
		return -1;
	if (v.value < lo || v.value > hi)
		return mctx_fail(c, n, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]",
				 what, v.value, lo, hi);
	*out = v.value;
	return 0;
}

int mctx_strlist(struct mctx *c, const struct ynode *n, const char *what,
		 struct manifest_strlist *out)
{
	if (mctx_expect(c, n, YNODE_SEQUENCE, what) < 0)
		return -1;
	manifest_strlist_release(out);
	out->set = true;
	out->v = xcalloc(n->n + 1, sizeof *out->v);
	for (size_t i = 0; i < n->n; i++) {
		cleanup_free char *w = xasprintf("%s[%zu]", what, i);
		if (mctx_string(c, n->items[i], w, &out->v[i]) < 0)
			return -1;
		out->n++;
	}
	return 0;
}

int mctx_id(struct mctx *c, const struct ynode *n, const char *what, struct manifest_id *out)
{
	free(out->name);
	memset(out, 0, sizeof *out);
	out->pos = (struct manifest_pos){n->line, n->col};
	if (n->kind == YNODE_SCALAR && n->type == YS_INT) {
		int64_t v;
		if (mctx_int_range(c, n, what, 0, UINT32_MAX, &v) < 0)
			return -1;
		out->set = true;
		out->number = (uint32_t)v;
		return 0;
	}
	if (n->kind == YNODE_SCALAR && n->type == YS_STRING) {
		if (mctx_string(c, n, what, &out->name) < 0)
			return -1;
		out->set = true;
		return 0;
	}
	return mctx_fail(c, n, "%s: expected an integer or a container name, got %s %s", what,
			 article(n), ynode_type_name(n));
}

int mctx_mode(struct mctx *c, const struct ynode *n, const char *what, struct manifest_opt_int *out)
{
	if (n->kind == YNODE_SCALAR && n->type == YS_INT)
		return mctx_fail(c, n, "%s: the mode must be a quoted octal string (\"%s\")", what,
				 n->value);
	cleanup_free char *s = NULL;
	if (mctx_string(c, n, what, &s) < 0)
		return -1;
	uint64_t v;
	if (s[0] == '\0' || parse_u64(s, 8, &v) < 0 || strspn(s, "01234567") != strlen(s))
		return mctx_fail(c, n, "%s: \"%s\" is not an octal mode", what, s);
	if (v > 07777)
		return mctx_fail(c, n, "%s: mode %s has bits beyond 07777", what, s);
	out->set = true;
	out->value = (int64_t)v;
	return 0;
}

static int mctx_strmap(struct mctx *c, const struct ynode *n, const char *what,
		       struct manifest_strmap *out)
{
	if (mctx_expect(c, n, YNODE_MAPPING, what) < 0)
		return -1;
	size_t count = n->n / 2;
	out->set = true;
	out->keys = xcalloc(count + 1, sizeof *out->keys);
	out->values = xcalloc(count + 1, sizeof *out->values);
	for (size_t i = 0; i < count; i++) {
		const struct ynode *k = n->items[2 * i], *v = n->items[2 * i + 1];
		cleanup_free char *w = xasprintf("%s.%s", what, k->value);
		if (k->len != strlen(k->value))
			return mctx_fail(c, k, "%s: key contains a NUL character", what);
		out->keys[i] = scalar_dup(k);
		out->n++;
		if (mctx_string(c, v, w, &out->values[i]) < 0)
			return -1;
	}
	return 0;
}

/* Iterates over a mapping's key/value pairs. */
#define FOR_EACH_PAIR(node, k, v, i)                                                               \
	for (size_t i = 0; i + 1 < (node)->n; i += 2)                                              \
		for (const struct ynode *k = (node)->items[i], *v = (node)->items[i + 1]; k;       \
		     k = NULL, (void)v)

static int unknown_key(struct mctx *c, const struct ynode *k, const char *where)
{
	return mctx_fail(c, k, "unknown field \"%s\" in %s", k->value, where);
}

#define KEY_IS(k, s) ((k)->len == strlen(s) && strcmp((k)->value, (s)) == 0)

/* Appends one zeroed element to a {set, n, v} list and returns it. */
#define LIST_PUSH(list)                                                                            \
	((list).v = xrealloc((list).v, ((list).n + 1) * sizeof *(list).v),                         \
	 memset(&(list).v[(list).n], 0, sizeof *(list).v), &(list).v[(list).n++])

/* Reads the sequence SEQ (WHAT in messages) into the {set, n, v} list LIST:
 * each item fills a new zeroed element through READ(ctx, item, "WHAT[i]",
 * element).  Evaluates to 0, or < 0 at the first error. */
#define LIST_FROM_NODE(ctx, seq, what, list, read)                                                 \
	({                                                                                         \
		int r_ = mctx_expect((ctx), (seq), YNODE_SEQUENCE, (what));                        \
		(list).set = true;                                                                 \
		for (size_t i_ = 0; r_ == 0 && i_ < (seq)->n; i_++) {                              \
			cleanup_free char *w_ = xasprintf("%s[%zu]", (what), i_);                  \
			r_ = read((ctx), (seq)->items[i_], w_, LIST_PUSH(list));                   \
		}                                                                                  \
		r_;                                                                                \
	})

/* ------------------------------------------------------- capabilities etc */

static const char *const capability_names[] = {
	"CAP_CHOWN",	       "CAP_DAC_OVERRIDE",   "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID",	       "CAP_KILL",	     "CAP_SETGID",	    "CAP_SETUID",
	"CAP_SETPCAP",	       "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN",       "CAP_NET_RAW",	     "CAP_IPC_LOCK",	    "CAP_IPC_OWNER",
	"CAP_SYS_MODULE",      "CAP_SYS_RAWIO",	     "CAP_SYS_CHROOT",	    "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT",       "CAP_SYS_ADMIN",	     "CAP_SYS_BOOT",	    "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE",    "CAP_SYS_TIME",	     "CAP_SYS_TTY_CONFIG",  "CAP_MKNOD",
	"CAP_LEASE",	       "CAP_AUDIT_WRITE",    "CAP_AUDIT_CONTROL",   "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE",    "CAP_MAC_ADMIN",	     "CAP_SYSLOG",	    "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND",   "CAP_AUDIT_READ",     "CAP_PERFMON",	    "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

const char *const *manifest_capabilities_known(size_t *n)
{
	*n = ARRAY_SIZE(capability_names);
	return capability_names;
}

bool manifest_capability_is_known(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(capability_names); i++)
		if (strcmp(capability_names[i], name) == 0)
			return true;
	return false;
}

static int check_capabilities(struct mctx *c, const struct ynode *n, const char *what,
			      const struct manifest_strlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const char *s = l->v[i];
		if (strcasecmp(s, "all") == 0 || strcasecmp(s, "none") == 0) {
			if (l->n != 1)
				return mctx_fail(c, n->items[i],
						 "%s: \"%s\" must be the only entry of the list",
						 what, s);
			continue;
		}
		if (!manifest_capability_is_known(s))
			return mctx_fail(c, n->items[i],
					 "%s: unknown capability \"%s\" (expected CAP_* as in "
					 "capabilities(7), or all/none)",
					 what, s);
	}
	return 0;
}

static const char *const rlimit_names[] = {
	"CPU",	 "FSIZE", "DATA",	"STACK",    "CORE",	"RSS",	  "NPROC", "NOFILE",
	"MEMLOCK", "AS",  "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
};
static const char *const rlimit_types[] = {
	"RLIMIT_CPU",	  "RLIMIT_FSIZE",  "RLIMIT_DATA",	"RLIMIT_STACK",
	"RLIMIT_CORE",	  "RLIMIT_RSS",	   "RLIMIT_NPROC",	"RLIMIT_NOFILE",
	"RLIMIT_MEMLOCK", "RLIMIT_AS",	   "RLIMIT_LOCKS",	"RLIMIT_SIGPENDING",
	"RLIMIT_MSGQUEUE", "RLIMIT_NICE",  "RLIMIT_RTPRIO",	"RLIMIT_RTTIME",
};

static int rlimit_value(const char *s, uint64_t *out)
{
	if (strcasecmp(s, "unlimited") == 0) {
		*out = UINT64_MAX;
		return 0;
	}
	if (*s == '\0' || strspn(s, "0123456789") != strlen(s))
		return -1;
	return parse_u64(s, 10, out);
}

int manifest_rlimit_parse(const char *text, struct manifest_rlimit *out, struct kiln_error **err)
{
	cleanup_free char *copy = xstrdup(text);
	char *parts[4] = {0};
	int np = 0;
	for (char *save = NULL, *p = copy; np < 4; p = NULL) {
		char *t = strtok_r(p, ",", &save);
		if (t == NULL)
			break;
		parts[np++] = t;
	}
	/* strtok_r drops empty fields; count commas to be exact */
	size_t commas = 0;
	for (const char *p = text; *p; p++)
		commas += *p == ',';
	if (np != 3 || commas != 2)
		return kiln_error_make(err, 0,
				       "rlimit \"%s\": expected \"name,soft,hard\" (e.g. "
				       "\"nofile,1024,4096\")",
				       text);
	for (int i = 0; i < 3; i++) {
		char *s = parts[i];
		while (isspace((unsigned char)*s))
			s++;
		char *e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		parts[i] = s;
	}
	const char *name = parts[0];
	if (strncasecmp(name, "RLIMIT_", 7) == 0)
		name += 7;
	size_t k;
	for (k = 0; k < ARRAY_SIZE(rlimit_names); k++)
		if (strcasecmp(rlimit_names[k], name) == 0)
			break;
	if (k == ARRAY_SIZE(rlimit_names))
		return kiln_error_make(err, 0, "rlimit \"%s\": unknown limit \"%s\"", text, parts[0]);
	out->type = rlimit_types[k];
	if (rlimit_value(parts[1], &out->soft) < 0)
		return kiln_error_make(err, 0,
				       "rlimit \"%s\": soft limit \"%s\" is not a number or "
				       "\"unlimited\"",
				       text, parts[1]);
	if (rlimit_value(parts[2], &out->hard) < 0)
		return kiln_error_make(err, 0,
				       "rlimit \"%s\": hard limit \"%s\" is not a number or "
				       "\"unlimited\"",
				       text, parts[2]);
	if (out->soft > out->hard)
		return kiln_error_make(err, 0, "rlimit \"%s\": soft limit is above the hard limit",
				       text);
	return 0;
}

/* ------------------------------------------------------------- sub-objects */

static int idmapping_from_node(struct mctx *c, const struct ynode *m, const char *w,
			       struct manifest_idmapping *e)
{
	if (mctx_expect(c, m, YNODE_MAPPING, w) < 0)
		return -1;
	FOR_EACH_PAIR(m, k, v, j)
	{
		int64_t *dst = KEY_IS(k, "hostID")	  ? &e->host_id
			       : KEY_IS(k, "containerID") ? &e->container_id
			       : KEY_IS(k, "size")	  ? &e->size
							  : NULL;
		if (dst == NULL)
			return unknown_key(c, k, w);
		cleanup_free char *f = xasprintf("%s.%s", w, k->value);
		if (mctx_int_range(c, v, f, 0, UINT32_MAX, dst) < 0)
			return -1;
	}
	return 0;
}

static int idmappings_from_node(struct mctx *c, const struct ynode *n, const char *what,
				struct manifest_idmapping_list *out)
{
	return LIST_FROM_NODE(c, n, what, *out, idmapping_from_node);
}

/* One key of a flat mapping and where its value goes: exactly one of the
 * pointers is set, and it picks the reader. */
struct field {
	const char *key;
	char **str;
	struct manifest_opt_int *num;
	struct manifest_opt_bool *flag;
	struct manifest_strlist *list;
	struct manifest_idmapping_list *idmap;
};

/* Fills the mapping M (W in messages) from a table of fields; any other key
 * is an error. */
static int fields_from_node(struct mctx *c, const struct ynode *m, const char *w,
			    const struct field *fields, size_t nfields)
{
	if (mctx_expect(c, m, YNODE_MAPPING, w) < 0)
		return -1;
	FOR_EACH_PAIR(m, k, v, j)
	{
		size_t i;
		for (i = 0; i < nfields; i++)
			if (KEY_IS(k, fields[i].key))
				break;
		if (i == nfields)
			return unknown_key(c, k, w);
		const struct field *f = &fields[i];
		cleanup_free char *name = xasprintf("%s.%s", w, k->value);
		int r = f->str	  ? mctx_string(c, v, name, f->str)
			: f->num  ? mctx_int(c, v, name, f->num)
			: f->flag ? mctx_bool(c, v, name, f->flag)
			: f->list ? mctx_strlist(c, v, name, f->list)
				  : idmappings_from_node(c, v, name, f->idmap);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int mount_from_node(struct mctx *c, const struct ynode *m, const char *w,
			   struct manifest_mount *e)
{
	const struct field f[] = {
		{"destination", .str = &e->destination},
		{"type", .str = &e->type},
		{"source", .str = &e->source},
		{"options", .list = &e->options},
		{"uidmappings", .idmap = &e->uidmappings},
		{"gidmappings", .idmap = &e->gidmappings},
	};
	return fields_from_node(c, m, w, f, ARRAY_SIZE(f));
}

static int mounts_from_node(struct mctx *c, const struct ynode *n, const char *what,
			    struct manifest_mount_list *out)
{
	return LIST_FROM_NODE(c, n, what, *out, mount_from_node);
}

static int device_from_node(struct mctx *c, const struct ynode *m, const char *w,
			    struct manifest_device *e)
{
	if (mctx_expect(c, m, YNODE_MAPPING, w) < 0)
		return -1;
	FOR_EACH_PAIR(m, k, v, j)
	{
		cleanup_free char *f = xasprintf("%s.%s", w, k->value);
		struct manifest_opt_int tmp = {0};
		int r;
		if (KEY_IS(k, "path")) {
			r = mctx_string(c, v, f, &e->path);
		} else if (KEY_IS(k, "type")) {
			r = mctx_string(c, v, f, &e->type);
			if (r == 0 && strcmp(e->type, "b") != 0 && strcmp(e->type, "c") != 0 &&
			    strcmp(e->type, "u") != 0 && strcmp(e->type, "p") != 0 &&
			    strcmp(e->type, "a") != 0)
				r = mctx_fail(c, v,
					      "%s: device type \"%s\" is not one of b, c, "
					      "u, p, a",
					      f, e->type);
		} else if (KEY_IS(k, "major")) {
			r = mctx_int(c, v, f, &tmp);
			e->major = tmp.value;
		} else if (KEY_IS(k, "minor")) {
			r = mctx_int(c, v, f, &tmp);
			e->minor = tmp.value;
		} else if (KEY_IS(k, "mode")) {
			r = mctx_mode(c, v, f, &e->mode);
		} else {
			r = unknown_key(c, k, w);
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

static int throttle_device_from_node(struct mctx *c, const struct ynode *m, const char *w,
				     struct manifest_throttle_device *e)
{
	const struct field f[] = {
		{"major", .num = &e->major},
		{"minor", .num = &e->minor},
		{"rate", .num = &e->rate},
	};
	return fields_from_node(c, m, w, f, ARRAY_SIZE(f));
}

static int device_cgroup_from_node(struct mctx *c, const struct ynode *m, const char *w,
				   struct manifest_device_cgroup *e)
{
	const struct field f[] = {
		{"allow", .flag = &e->allow},
		{"type", .str = &e->type},
		{"access", .str = &e->access},
		{"major", .num = &e->major},
		{"minor", .num = &e->minor},
	};
	return fields_from_node(c, m, w, f, ARRAY_SIZE(f));
}

static int weight_device_from_node(struct mctx *c, const struct ynode *m, const char *w,
				   struct manifest_weight_device *e)
{
	const struct field f[] = {
		{"major", .num = &e->major},
		{"minor", .num = &e->minor},
		{"weight", .num = &e->weight},
		{"leafWeight", .num = &e->leaf_weight},
	};
	return fields_from_node(c, m, w, f, ARRAY_SIZE(f));
}

static int hugepage_limit_from_node(struct mctx *c, const struct ynode *m, const char *w,
				    struct manifest_hugepage_limit *e)
{
	const struct field f[] = {
		{"pageSize", .num = &e->page_size},
		{"limit", .num = &e->limit},
	};
	return fields_from_node(c, m, w, f, ARRAY_SIZE(f));
}

static int interface_priority_from_node(struct mctx *c, const struct ynode *m, const char *w,
					struct manifest_interface_priority *e)
{
	const struct field f[] = {
		{"name", .str = &e->name},
		{"priority", .num = &e->priority},
	};
	return fields_from_node(c, m, w, f, ARRAY_SIZE(f));
}

static int interface_from_node(struct mctx *c, const struct ynode *m, const char *w,
			       struct manifest_interface *e)
{
	const struct field f[] = {
		{"name", .str = &e->name},
		{"add", .str = &e->add},
		{"peer", .str = &e->peer},
		{"createInRoot", .flag = &e->create_in_root},
	};
	if (fields_from_node(c, m, w, f, ARRAY_SIZE(f)) < 0)
		return -1;
	if (e->name == NULL || e->name[0] == '\0')
		return mctx_fail(c, m, "%s: an interface needs a name", w);
	return 0;
}

static int resources_from_node(struct mctx *c, const struct ynode *n, const char *what,
			       struct manifest_resources *r)
{
	if (mctx_expect(c, n, YNODE_MAPPING, what) < 0)
		return -1;
	r->set = true;
	FOR_EACH_PAIR(n, k, v, j)
	{
		cleanup_free char *w = xasprintf("%s.%s", what, k->value);
		if (KEY_IS(k, "devices")) {
			if (LIST_FROM_NODE(c, v, w, r->devices, device_cgroup_from_node) < 0)
				return -1;
		} else if (KEY_IS(k, "memory")) {
			r->memory.set = true;
			const struct field f[] = {
				{"limit", .num = &r->memory.limit},
				{"reservation", .num = &r->memory.reservation},
				{"swap", .num = &r->memory.swap},
				{"kernel", .num = &r->memory.kernel},
				{"kernelTCP", .num = &r->memory.kernel_tcp},
				{"swappiness", .num = &r->memory.swappiness},
				{"disableOOMKiller", .flag = &r->memory.disable_oom_killer},
			};
			if (fields_from_node(c, v, w, f, ARRAY_SIZE(f)) < 0)
				return -1;
		} else if (KEY_IS(k, "cpu")) {
			r->cpu.set = true;
			const struct field f[] = {
				{"shares", .num = &r->cpu.shares},
				{"quota", .num = &r->cpu.quota},
				{"period", .num = &r->cpu.period},
				{"realtimeRuntime", .num = &r->cpu.realtime_runtime},
				{"realtimePeriod", .num = &r->cpu.realtime_period},
				{"cpus", .str = &r->cpu.cpus},
				{"mems", .str = &r->cpu.mems},
			};
			if (fields_from_node(c, v, w, f, ARRAY_SIZE(f)) < 0)
				return -1;
		} else if (KEY_IS(k, "pids")) {
			r->pids.set = true;
			const struct field f[] = {{"limit", .num = &r->pids.limit}};
			if (fields_from_node(c, v, w, f, ARRAY_SIZE(f)) < 0)
				return -1;
		} else if (KEY_IS(k, "blockio")) {
			if (mctx_expect(c, v, YNODE_MAPPING, w) < 0)
				return -1;
			r->blockio.set = true;
			FOR_EACH_PAIR(v, k2, v2, jj)
			{
				cleanup_free char *f = xasprintf("%s.%s", w, k2->value);
				int rr;
				if (KEY_IS(k2, "weight")) {
					rr = mctx_int(c, v2, f, &r->blockio.weight);
				} else if (KEY_IS(k2, "leafWeight")) {
					rr = mctx_int(c, v2, f, &r->blockio.leaf_weight);
				} else if (KEY_IS(k2, "weightDevice")) {
					rr = LIST_FROM_NODE(c, v2, f, r->blockio.weight_device,
							    weight_device_from_node);
				} else if (KEY_IS(k2, "throttleReadBpsDevice")) {
					rr = LIST_FROM_NODE(c, v2, f,
							    r->blockio.throttle_read_bps_device,
							    throttle_device_from_node);
				} else if (KEY_IS(k2, "throttleWriteBpsDevice")) {
					rr = LIST_FROM_NODE(c, v2, f,
							    r->blockio.throttle_write_bps_device,
							    throttle_device_from_node);
				} else if (KEY_IS(k2, "throttleReadIOPSDevice")) {
					rr = LIST_FROM_NODE(c, v2, f,
							    r->blockio.throttle_read_iops_device,
							    throttle_device_from_node);
				} else if (KEY_IS(k2, "throttleWriteIOPSDevice")) {
					rr = LIST_FROM_NODE(c, v2, f,
							    r->blockio.throttle_write_iops_device,
							    throttle_device_from_node);
				} else {
					rr = unknown_key(c, k2, w);
				}
				if (rr < 0)
					return -1;
			}
		} else if (KEY_IS(k, "hugepageLimits")) {
			if (LIST_FROM_NODE(c, v, w, r->hugepage_limits,
					   hugepage_limit_from_node) < 0)
				return -1;
		} else if (KEY_IS(k, "network")) {
			if (mctx_expect(c, v, YNODE_MAPPING, w) < 0)
				return -1;
			r->network.set = true;
			FOR_EACH_PAIR(v, k2, v2, jj)
			{
				cleanup_free char *f = xasprintf("%s.%s", w, k2->value);
				if (KEY_IS(k2, "classID")) {
					if (mctx_int(c, v2, f, &r->network.class_id) < 0)
						return -1;
				} else if (KEY_IS(k2, "priorities")) {
					if (LIST_FROM_NODE(c, v2, f, r->network.priorities,
							   interface_priority_from_node) < 0)
						return -1;
				} else {
					return unknown_key(c, k2, w);
				}
			}
		} else {
			return unknown_key(c, k, what);
		}
	}
	return 0;
}

static int runtime_from_node(struct mctx *c, const struct ynode *n, const char *what,
			     struct manifest_runtime *rt)
{
	if (mctx_expect(c, n, YNODE_MAPPING, what) < 0)
		return -1;
	rt->set = true;
	FOR_EACH_PAIR(n, k, v, j)
	{
		cleanup_free char *w = xasprintf("%s.%s", what, k->value);
		int r;
		if (KEY_IS(k, "cgroups")) {
			r = mctx_strlist(c, v, w, &rt->cgroups);
		} else if (KEY_IS(k, "mounts")) {
			r = mounts_from_node(c, v, w, &rt->mounts);
		} else if (KEY_IS(k, "mkdir")) {
			r = mctx_strlist(c, v, w, &rt->mkdir);
		} else if (KEY_IS(k, "namespace")) {
			r = mctx_string(c, v, w, &rt->namespace);
		} else if (KEY_IS(k, "interfaces")) {
			r = LIST_FROM_NODE(c, v, w, rt->interfaces, interface_from_node);
		} else if (KEY_IS(k, "bindNS")) {
			rt->bind_ns.set = true;
			const struct field f[] = {
				{"cgroup", .str = &rt->bind_ns.cgroup},
				{"ipc", .str = &rt->bind_ns.ipc},
				{"mnt", .str = &rt->bind_ns.mnt},
				{"net", .str = &rt->bind_ns.net},
				{"pid", .str = &rt->bind_ns.pid},
				{"user", .str = &rt->bind_ns.user},
				{"uts", .str = &rt->bind_ns.uts},
			};
			r = fields_from_node(c, v, w, f, ARRAY_SIZE(f));
		} else {
			r = unknown_key(c, k, what);
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

static int check_binds(struct mctx *c, const struct ynode *n, const char *what,
		       const struct manifest_strlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		size_t colons = 0;
		for (const char *p = l->v[i]; *p; p++)
			colons += *p == ':';
		if (colons < 1)
			return mctx_fail(c, n->items[i], "%s: bind \"%s\" has no ':' (want src:dst[:opts])",
					 what, l->v[i]);
		if (colons > 2)
			return mctx_fail(c, n->items[i],
					 "%s: bind \"%s\" has too many ':' (want src:dst[:opts])", what,
					 l->v[i]);
		const char *dst = strchr(l->v[i], ':') + 1;
		if (l->v[i][0] == ':' || *dst == ':' || *dst == '\0')
			return mctx_fail(c, n->items[i], "%s: bind \"%s\" has an empty source or destination",
					 what, l->v[i]);
	}
	return 0;
}

static int check_ns(struct mctx *c, const struct ynode *n, const char *what, const char *v)
{
	/* host/root, new/none, or a path to a namespace file */
	if (v[0] == '\0' || v[0] == '/' || strcmp(v, "host") == 0 || strcmp(v, "root") == 0 ||
	    strcmp(v, "new") == 0 || strcmp(v, "none") == 0)
		return 0;
	return mctx_fail(c, n, "%s: \"%s\" is not host, root, new, none or an absolute path", what,
			 v);
}

int image_config_from_node(struct mctx *c, const struct ynode *n, struct image_config *cfg,
			   char **name, char **image, struct manifest_pos *image_pos)
{
	FOR_EACH_PAIR(n, k, v, j)
	{
		const char *key = k->value;
		int r;
		if ((name && KEY_IS(k, "name")) || (image && KEY_IS(k, "image"))) {
			bool is_name = KEY_IS(k, "name");
			r = mctx_string(c, v, key, is_name ? name : image);
			if (!is_name && image_pos)
				*image_pos = (struct manifest_pos){v->line, v->col};
		} else if (!name && (KEY_IS(k, "name") || KEY_IS(k, "image"))) {
			r = mctx_fail(c, k, "%s cannot be set in the org.mobyproject.config label", key);
		} else if (KEY_IS(k, "capabilities") || KEY_IS(k, "capabilities.add") ||
			   KEY_IS(k, "ambient")) {
			struct manifest_strlist *l = KEY_IS(k, "capabilities")	   ? &cfg->capabilities
						     : KEY_IS(k, "capabilities.add") ? &cfg->capabilities_add
										     : &cfg->ambient;
			r = mctx_strlist(c, v, key, l);
			if (r == 0)
				r = check_capabilities(c, v, key, l);
		} else if (KEY_IS(k, "mounts")) {
			r = mounts_from_node(c, v, key, &cfg->mounts);
		} else if (KEY_IS(k, "binds") || KEY_IS(k, "binds.add")) {
			struct manifest_strlist *l = KEY_IS(k, "binds") ? &cfg->binds : &cfg->binds_add;
			r = mctx_strlist(c, v, key, l);
			if (r == 0)
				r = check_binds(c, v, key, l);
		} else if (KEY_IS(k, "devices")) {
			r = LIST_FROM_NODE(c, v, key, cfg->devices, device_from_node);
		} else if (KEY_IS(k, "tmpfs")) {
			r = mctx_strlist(c, v, key, &cfg->tmpfs);
			for (size_t i = 0; r == 0 && i < cfg->tmpfs.n; i++) {
				const char *t = cfg->tmpfs.v[i];
				const char *colon = strchr(t, ':');
				if (t[0] != '/' || (colon && strchr(colon + 1, ':')))
					r = mctx_fail(c, v->items[i],
						      "tmpfs: \"%s\" is not /destination[:opt,opt]", t);
			}
		} else if (KEY_IS(k, "command")) {
			r = mctx_strlist(c, v, key, &cfg->command);
		} else if (KEY_IS(k, "env")) {
			r = mctx_strlist(c, v, key, &cfg->env);
			for (size_t i = 0; r == 0 && i < cfg->env.n; i++)
				if (cfg->env.v[i][0] == '=' )
					r = mctx_fail(c, v->items[i],
						      "env: \"%s\" has no variable name (want NAME=value)",
						      cfg->env.v[i]);
		} else if (KEY_IS(k, "cwd")) {
			r = mctx_string(c, v, key, &cfg->cwd);
		} else if (KEY_IS(k, "net") || KEY_IS(k, "pid") || KEY_IS(k, "ipc") ||
			   KEY_IS(k, "uts") || KEY_IS(k, "userns")) {
			char **dst = KEY_IS(k, "net")	? &cfg->net
				     : KEY_IS(k, "pid") ? &cfg->pid
				     : KEY_IS(k, "ipc") ? &cfg->ipc
				     : KEY_IS(k, "uts") ? &cfg->uts
							: &cfg->userns;
			r = mctx_string(c, v, key, dst);
			if (r == 0)
				r = check_ns(c, v, key, *dst);
		} else if (KEY_IS(k, "hostname")) {
			r = mctx_string(c, v, key, &cfg->hostname);
		} else if (KEY_IS(k, "readonly")) {
			r = mctx_bool(c, v, key, &cfg->readonly);
		} else if (KEY_IS(k, "maskedPaths")) {
			r = mctx_strlist(c, v, key, &cfg->masked_paths);
		} else if (KEY_IS(k, "readonlyPaths")) {
			r = mctx_strlist(c, v, key, &cfg->readonly_paths);
		} else if (KEY_IS(k, "uid")) {
			r = mctx_id(c, v, key, &cfg->uid);
		} else if (KEY_IS(k, "gid")) {
			r = mctx_id(c, v, key, &cfg->gid);
		} else if (KEY_IS(k, "additionalGids")) {
			r = LIST_FROM_NODE(c, v, key, cfg->additional_gids, mctx_id);
		} else if (KEY_IS(k, "noNewPrivileges")) {
			r = mctx_bool(c, v, key, &cfg->no_new_privileges);
		} else if (KEY_IS(k, "oomScoreAdj")) {
			int64_t x;
			r = mctx_int_range(c, v, key, -1000, 1000, &x);
			cfg->oom_score_adj = (struct manifest_opt_int){r == 0, x};
		} else if (KEY_IS(k, "rootfsPropagation")) {
			r = mctx_string(c, v, key, &cfg->rootfs_propagation);
			static const char *const props[] = {"",	      "shared",	  "slave",   "private",
							    "rshared", "rslave", "rprivate", "unbindable",
							    "runbindable"};
			bool good = false;
			for (size_t i = 0; r == 0 && i < ARRAY_SIZE(props); i++)
				good |= strcmp(cfg->rootfs_propagation, props[i]) == 0;
			if (r == 0 && !good)
				r = mctx_fail(c, v,
					      "rootfsPropagation: \"%s\" is not one of shared, slave, "
					      "private, unbindable (or r-prefixed)",
					      cfg->rootfs_propagation);
		} else if (KEY_IS(k, "cgroupsPath")) {
			r = mctx_string(c, v, key, &cfg->cgroups_path);
		} else if (KEY_IS(k, "resources")) {
			r = resources_from_node(c, v, key, &cfg->resources);
		} else if (KEY_IS(k, "sysctl")) {
			r = mctx_strmap(c, v, key, &cfg->sysctl);
		} else if (KEY_IS(k, "annotations")) {
			r = mctx_strmap(c, v, key, &cfg->annotations);
		} else if (KEY_IS(k, "rlimits")) {
			r = mctx_strlist(c, v, key, &cfg->rlimits);
			for (size_t i = 0; r == 0 && i < cfg->rlimits.n; i++) {
				struct manifest_rlimit rl;
				struct kiln_error *e = NULL;
				if (manifest_rlimit_parse(cfg->rlimits.v[i], &rl, &e) < 0) {
					r = mctx_fail(c, v->items[i], "rlimits: %s", e->msg);
					kiln_error_release(&e);
				}
			}
		} else if (KEY_IS(k, "uidMappings")) {
			r = idmappings_from_node(c, v, key, &cfg->uid_mappings);
		} else if (KEY_IS(k, "gidMappings")) {
			r = idmappings_from_node(c, v, key, &cfg->gid_mappings);
		} else if (KEY_IS(k, "runtime")) {
			r = runtime_from_node(c, v, key, &cfg->runtime);
		} else {
			r = mctx_fail(c, k, "unknown field \"%s\" in %s", key,
				      name ? (c->entry ? c->entry : "image entry")
					   : "org.mobyproject.config label");
		}
		if (r < 0)
			return -1;
	}
	return 0;
}

struct image_config *image_config_parse_label(const char *text, struct kiln_error **err)
{
	static const char label_name[] = "org.mobyproject.config label";
	struct ytree tree;
	if (ytree_parse(&tree, text, strlen(text), label_name, err) < 0)
		return NULL;
	struct mctx c = {.file = label_name, .base_dir = NULL, .opts = NULL, .err = err};
	struct image_config *cfg = xcalloc(1, sizeof *cfg);
	int r;
	if (tree.root == NULL)
		r = kiln_error_make(err, 0, "%s:1:1: empty label", label_name);
	else if (tree.root->kind != YNODE_MAPPING)
		r = mctx_fail(&c, tree.root, "the label must be a JSON or YAML object, not %s %s",
			      article(tree.root), ynode_type_name(tree.root));
	else
		r = image_config_from_node(&c, tree.root, cfg, NULL, NULL, NULL);
	ytree_release(&tree);
	if (r < 0) {
		manifest_error_one_line(err);
		image_config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* ------------------------------------------------------- release and copy */

void manifest_strlist_release(struct manifest_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

void manifest_strlist_copy(struct manifest_strlist *dst, const struct manifest_strlist *src)
{
	dst->set = src->set;
	dst->n = src->n;
	dst->v = xcalloc(src->n + 1, sizeof *dst->v);
	for (size_t i = 0; i < src->n; i++)
		dst->v[i] = xstrdup(src->v[i]);
}

static void strmap_release(struct manifest_strmap *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->keys[i]);
		free(m->values[i]);
	}
	free(m->keys);
	free(m->values);
	memset(m, 0, sizeof *m);
}

static void strmap_copy(struct manifest_strmap *dst, const struct manifest_strmap *src)
{
	dst->set = src->set;
	dst->n = src->n;
	dst->keys = xcalloc(src->n + 1, sizeof *dst->keys);
	dst->values = xcalloc(src->n + 1, sizeof *dst->values);
	for (size_t i = 0; i < src->n; i++) {
		dst->keys[i] = xstrdup(src->keys[i]);
		dst->values[i] = xstrdup(src->values[i]);
	}
}

/* Copies a list of plain-old-data elements. */
#define POD_LIST_COPY(dst, src)                                                                    \
	do {                                                                                       \
		(dst).set = (src).set;                                                             \
		(dst).n = (src).n;                                                                 \
		(dst).v = xcalloc((src).n + 1, sizeof *(dst).v);                                   \
		if ((src).n)                                                                       \
			memcpy((dst).v, (src).v, (src).n * sizeof *(dst).v);                       \
	} while (0)

static void mount_list_release(struct manifest_mount_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		struct manifest_mount *m = &l->v[i];
		free(m->destination);
		free(m->type);
		free(m->source);
		manifest_strlist_release(&m->options);
		free(m->uidmappings.v);
		free(m->gidmappings.v);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void mount_list_copy(struct manifest_mount_list *dst, const struct manifest_mount_list *src)
{
	dst->set = src->set;
	dst->n = src->n;
	dst->v = xcalloc(src->n + 1, sizeof *dst->v);
	for (size_t i = 0; i < src->n; i++) {
		const struct manifest_mount *s = &src->v[i];
		struct manifest_mount *d = &dst->v[i];
		d->destination = xstrdup(s->destination);
		d->type = xstrdup(s->type);
		d->source = xstrdup(s->source);
		manifest_strlist_copy(&d->options, &s->options);
		POD_LIST_COPY(d->uidmappings, s->uidmappings);
		POD_LIST_COPY(d->gidmappings, s->gidmappings);
	}
}

static void id_release(struct manifest_id *id)
{
	free(id->name);
	memset(id, 0, sizeof *id);
}

static void id_copy(struct manifest_id *dst, const struct manifest_id *src)
{
	*dst = *src;
	dst->name = xstrdup(src->name);
}

static void resources_release(struct manifest_resources *r)
{
	for (size_t i = 0; i < r->devices.n; i++) {
		free(r->devices.v[i].type);
		free(r->devices.v[i].access);
	}
	free(r->devices.v);
	free(r->cpu.cpus);
	free(r->cpu.mems);
	free(r->blockio.weight_device.v);
	free(r->blockio.throttle_read_bps_device.v);
	free(r->blockio.throttle_write_bps_device.v);
	free(r->blockio.throttle_read_iops_device.v);
	free(r->blockio.throttle_write_iops_device.v);
	free(r->hugepage_limits.v);
	for (size_t i = 0; i < r->network.priorities.n; i++)
		free(r->network.priorities.v[i].name);
	free(r->network.priorities.v);
	memset(r, 0, sizeof *r);
}

static void resources_copy(struct manifest_resources *d, const struct manifest_resources *s)
{
	*d = *s; /* scalars and set flags; arrays and strings replaced below */
	POD_LIST_COPY(d->devices, s->devices);
	for (size_t i = 0; i < s->devices.n; i++) {
		d->devices.v[i].type = xstrdup(s->devices.v[i].type);
		d->devices.v[i].access = xstrdup(s->devices.v[i].access);
	}
	d->cpu.cpus = xstrdup(s->cpu.cpus);
	d->cpu.mems = xstrdup(s->cpu.mems);
	POD_LIST_COPY(d->blockio.weight_device, s->blockio.weight_device);
	POD_LIST_COPY(d->blockio.throttle_read_bps_device, s->blockio.throttle_read_bps_device);
	POD_LIST_COPY(d->blockio.throttle_write_bps_device, s->blockio.throttle_write_bps_device);
	POD_LIST_COPY(d->blockio.throttle_read_iops_device, s->blockio.throttle_read_iops_device);
	POD_LIST_COPY(d->blockio.throttle_write_iops_device, s->blockio.throttle_write_iops_device);
	POD_LIST_COPY(d->hugepage_limits, s->hugepage_limits);
	POD_LIST_COPY(d->network.priorities, s->network.priorities);
	for (size_t i = 0; i < s->network.priorities.n; i++)
		d->network.priorities.v[i].name = xstrdup(s->network.priorities.v[i].name);
}

static void interfaces_release(struct manifest_runtime *rt)
{
	for (size_t i = 0; i < rt->interfaces.n; i++) {
		free(rt->interfaces.v[i].name);
		free(rt->interfaces.v[i].add);
		free(rt->interfaces.v[i].peer);
	}
	free(rt->interfaces.v);
	rt->interfaces.v = NULL;
	rt->interfaces.n = 0;
	rt->interfaces.set = false;
}

static void interfaces_copy(struct manifest_runtime *d, const struct manifest_runtime *s)
{
	POD_LIST_COPY(d->interfaces, s->interfaces);
	for (size_t i = 0; i < s->interfaces.n; i++) {
		d->interfaces.v[i].name = xstrdup(s->interfaces.v[i].name);
		d->interfaces.v[i].add = xstrdup(s->interfaces.v[i].add);
		d->interfaces.v[i].peer = xstrdup(s->interfaces.v[i].peer);
	}
}

static void runtime_release(struct manifest_runtime *rt)
{
	manifest_strlist_release(&rt->cgroups);
	mount_list_release(&rt->mounts);
	manifest_strlist_release(&rt->mkdir);
	interfaces_release(rt);
	free(rt->bind_ns.cgroup);
	free(rt->bind_ns.ipc);
	free(rt->bind_ns.mnt);
	free(rt->bind_ns.net);
	free(rt->bind_ns.pid);
	free(rt->bind_ns.user);
	free(rt->bind_ns.uts);
	free(rt->namespace);
	memset(rt, 0, sizeof *rt);
}

static void runtime_copy(struct manifest_runtime *d, const struct manifest_runtime *s)
{
	memset(d, 0, sizeof *d);
	d->set = s->set;
	manifest_strlist_copy(&d->cgroups, &s->cgroups);
	mount_list_copy(&d->mounts, &s->mounts);
	manifest_strlist_copy(&d->mkdir, &s->mkdir);
	interfaces_copy(d, s);
	d->bind_ns.set = s->bind_ns.set;
	d->bind_ns.cgroup = xstrdup(s->bind_ns.cgroup);
	d->bind_ns.ipc = xstrdup(s->bind_ns.ipc);
	d->bind_ns.mnt = xstrdup(s->bind_ns.mnt);
	d->bind_ns.net = xstrdup(s->bind_ns.net);
	d->bind_ns.pid = xstrdup(s->bind_ns.pid);
	d->bind_ns.user = xstrdup(s->bind_ns.user);
	d->bind_ns.uts = xstrdup(s->bind_ns.uts);
	d->namespace = xstrdup(s->namespace);
}

static void devices_release(struct manifest_device_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].path);
		free(l->v[i].type);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void devices_copy(struct manifest_device_list *d, const struct manifest_device_list *s)
{
	POD_LIST_COPY(*d, *s);
	for (size_t i = 0; i < s->n; i++) {
		d->v[i].path = xstrdup(s->v[i].path);
		d->v[i].type = xstrdup(s->v[i].type);
	}
}

static void id_list_release(struct manifest_id_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		id_release(&l->v[i]);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static void id_list_copy(struct manifest_id_list *d, const struct manifest_id_list *s)
{
	POD_LIST_COPY(*d, *s);
	for (size_t i = 0; i < s->n; i++)
		d->v[i].name = xstrdup(s->v[i].name);
}

void image_config_release(struct image_config *c)
{
	if (c == NULL)
		return;
	manifest_strlist_release(&c->capabilities);
	manifest_strlist_release(&c->capabilities_add);
	manifest_strlist_release(&c->ambient);
	mount_list_release(&c->mounts);
	manifest_strlist_release(&c->binds);
	manifest_strlist_release(&c->binds_add);
	devices_release(&c->devices);
	manifest_strlist_release(&c->tmpfs);
	manifest_strlist_release(&c->command);
	manifest_strlist_release(&c->env);
	free(c->cwd);
	free(c->net);
	free(c->pid);
	free(c->ipc);
	free(c->uts);
	free(c->userns);
	free(c->hostname);
	manifest_strlist_release(&c->masked_paths);
	manifest_strlist_release(&c->readonly_paths);
	id_release(&c->uid);
	id_release(&c->gid);
	id_list_release(&c->additional_gids);
	free(c->rootfs_propagation);
	free(c->cgroups_path);
	resources_release(&c->resources);
	strmap_release(&c->sysctl);
	manifest_strlist_release(&c->rlimits);
	free(c->uid_mappings.v);
	free(c->gid_mappings.v);
	strmap_release(&c->annotations);
	runtime_release(&c->runtime);
	memset(c, 0, sizeof *c);
}

void image_config_free(struct image_config *c)
{
	image_config_release(c);
	free(c);
}

void image_config_copy(struct image_config *d, const struct image_config *s)
{
	memset(d, 0, sizeof *d);
	manifest_strlist_copy(&d->capabilities, &s->capabilities);
	manifest_strlist_copy(&d->capabilities_add, &s->capabilities_add);
	manifest_strlist_copy(&d->ambient, &s->ambient);
	mount_list_copy(&d->mounts, &s->mounts);
	manifest_strlist_copy(&d->binds, &s->binds);
	manifest_strlist_copy(&d->binds_add, &s->binds_add);
	devices_copy(&d->devices, &s->devices);
	manifest_strlist_copy(&d->tmpfs, &s->tmpfs);
	manifest_strlist_copy(&d->command, &s->command);
	manifest_strlist_copy(&d->env, &s->env);
	d->cwd = xstrdup(s->cwd);
	d->net = xstrdup(s->net);
	d->pid = xstrdup(s->pid);
	d->ipc = xstrdup(s->ipc);
	d->uts = xstrdup(s->uts);
	d->userns = xstrdup(s->userns);
	d->hostname = xstrdup(s->hostname);
	d->readonly = s->readonly;
	manifest_strlist_copy(&d->masked_paths, &s->masked_paths);
	manifest_strlist_copy(&d->readonly_paths, &s->readonly_paths);
	id_copy(&d->uid, &s->uid);
	id_copy(&d->gid, &s->gid);
	id_list_copy(&d->additional_gids, &s->additional_gids);
	d->no_new_privileges = s->no_new_privileges;
	d->oom_score_adj = s->oom_score_adj;
	d->rootfs_propagation = xstrdup(s->rootfs_propagation);
	d->cgroups_path = xstrdup(s->cgroups_path);
	resources_copy(&d->resources, &s->resources);
	strmap_copy(&d->sysctl, &s->sysctl);
	manifest_strlist_copy(&d->rlimits, &s->rlimits);
	POD_LIST_COPY(d->uid_mappings, s->uid_mappings);
	POD_LIST_COPY(d->gid_mappings, s->gid_mappings);
	strmap_copy(&d->annotations, &s->annotations);
	runtime_copy(&d->runtime, &s->runtime);
}

/* ------------------------------------------------------------------ merge */

/* LABEL + ADD, or YAML when set (LinuxKit's assignStrings(mergeStrings(...))). */
static void merge_add(struct manifest_strlist *dst, const struct manifest_strlist *yaml,
		      const struct manifest_strlist *add, const struct manifest_strlist *label)
{
	if (yaml->set) {
		manifest_strlist_copy(dst, yaml);
		return;
	}
	if (!label->set && !add->set) {
		memset(dst, 0, sizeof *dst);
		return;
	}
	dst->set = true;
	dst->n = label->n + add->n;
	dst->v = xcalloc(dst->n + 1, sizeof *dst->v);
	for (size_t i = 0; i < label->n; i++)
		dst->v[i] = xstrdup(label->v[i]);
	for (size_t i = 0; i < add->n; i++)
		dst->v[label->n + i] = xstrdup(add->v[i]);
}

/* Set-wins for pointer strings; NONEMPTY: LinuxKit's assignStringEmpty. */
static char *pick_str(const char *yaml, const char *label, bool nonempty)
{
	if (yaml && (!nonempty || yaml[0] != '\0'))
		return xstrdup(yaml);
	return xstrdup(label);
}

#define PICK(field) (yaml->field.set ? &yaml->field : &label->field)

struct image_config *image_config_merge(const struct image_config *yaml_in,
					const struct image_config *label_in)
{
	static const struct image_config empty;
	const struct image_config *yaml = yaml_in ? yaml_in : &empty;
	const struct image_config *label = label_in ? label_in : &empty;
	struct image_config *d = xcalloc(1, sizeof *d);

	merge_add(&d->capabilities, &yaml->capabilities, &yaml->capabilities_add,
		  &label->capabilities);
	manifest_strlist_copy(&d->ambient, PICK(ambient));
	mount_list_copy(&d->mounts, PICK(mounts));
	merge_add(&d->binds, &yaml->binds, &yaml->binds_add, &label->binds);
	devices_copy(&d->devices, PICK(devices));
	manifest_strlist_copy(&d->tmpfs, PICK(tmpfs));
	manifest_strlist_copy(&d->command, PICK(command));
	manifest_strlist_copy(&d->env, PICK(env));
	d->cwd = pick_str(yaml->cwd, label->cwd, true);
	d->net = pick_str(yaml->net, label->net, true);
	d->pid = pick_str(yaml->pid, label->pid, true);
	d->ipc = pick_str(yaml->ipc, label->ipc, true);
	d->uts = pick_str(yaml->uts, label->uts, true);
	d->userns = pick_str(yaml->userns, label->userns, true);
	d->hostname = pick_str(yaml->hostname, label->hostname, true);
	d->readonly = *PICK(readonly);
	manifest_strlist_copy(&d->masked_paths, PICK(masked_paths));
	manifest_strlist_copy(&d->readonly_paths, PICK(readonly_paths));
	id_copy(&d->uid, PICK(uid));
	id_copy(&d->gid, PICK(gid));
	id_list_copy(&d->additional_gids, PICK(additional_gids));
	d->no_new_privileges = *PICK(no_new_privileges);
	d->oom_score_adj = *PICK(oom_score_adj);
	d->rootfs_propagation = pick_str(yaml->rootfs_propagation, label->rootfs_propagation, false);
	d->cgroups_path = pick_str(yaml->cgroups_path, label->cgroups_path, false);
	resources_copy(&d->resources, PICK(resources));
	strmap_copy(&d->sysctl, PICK(sysctl));
	manifest_strlist_copy(&d->rlimits, PICK(rlimits));
	POD_LIST_COPY(d->uid_mappings, *PICK(uid_mappings));
	POD_LIST_COPY(d->gid_mappings, *PICK(gid_mappings));
	strmap_copy(&d->annotations, PICK(annotations));

	/* runtime: sub-field by sub-field */
	const struct manifest_runtime *yr = &yaml->runtime, *lr = &label->runtime;
	struct manifest_runtime *rt = &d->runtime;
	rt->set = yr->set || lr->set;
	manifest_strlist_copy(&rt->cgroups, yr->cgroups.set ? &yr->cgroups : &lr->cgroups);
	mount_list_copy(&rt->mounts, yr->mounts.set ? &yr->mounts : &lr->mounts);
	manifest_strlist_copy(&rt->mkdir, yr->mkdir.set ? &yr->mkdir : &lr->mkdir);
	interfaces_copy(rt, yr->interfaces.set ? yr : lr);
	rt->bind_ns.set = yr->bind_ns.set || lr->bind_ns.set;
	rt->bind_ns.cgroup = pick_str(yr->bind_ns.cgroup, lr->bind_ns.cgroup, false);
	rt->bind_ns.ipc = pick_str(yr->bind_ns.ipc, lr->bind_ns.ipc, false);
	rt->bind_ns.mnt = pick_str(yr->bind_ns.mnt, lr->bind_ns.mnt, false);
	rt->bind_ns.net = pick_str(yr->bind_ns.net, lr->bind_ns.net, false);
	rt->bind_ns.pid = pick_str(yr->bind_ns.pid, lr->bind_ns.pid, false);
	rt->bind_ns.user = pick_str(yr->bind_ns.user, lr->bind_ns.user, false);
	rt->bind_ns.uts = pick_str(yr->bind_ns.uts, lr->bind_ns.uts, false);
	rt->namespace = pick_str(yr->namespace, lr->namespace, false);
	return d;
}
