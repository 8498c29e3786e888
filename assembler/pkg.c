/* `kiln pkg`: build.yml parsing, the content tag, and the image build (pkg.h). */
#include "pkg.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml.h>
#include <zlib.h>

#include "deb.h"
#include "elfcheck.h"
#include "log.h"
#include "manifest_internal.h"
#include "oci.h"
#include "ref.h"
#include "strbuf.h"
#include "util.h"

#define BUILD_YML_MAX ((size_t)1 << 20)
#define PKG_TAG_HEXLEN 40
#define PKG_GZIP_LEVEL 6

enum file_kind { FILE_SOURCE, FILE_CONTENTS, FILE_SYMLINK, FILE_DIRECTORY };

struct pkg_file {
	char *path; /* cleaned, relative */
	enum file_kind kind;
	char *value;    /* source path, contents or symlink target */
	bool from_out;  /* source is "@out/…" */
	bool optional;
	bool has_mode;
	unsigned mode;
	unsigned uid, gid;
	int line, col;
};

struct strv {
	char **v;
	size_t n;
	bool set;
};

struct pkg {
	char *dir;      /* absolute */
	char *yml_path; /* DIR/build.yml */
	char *yml;      /* its bytes */
	size_t yml_len;
	char *image, *org, *tag_template, *description;
	struct strv arches, debs, build_cmd, build_inputs, build_debs;
	struct pkg_file *files;
	size_t nfiles;
	struct strv entrypoint, cmd, env, drop, elf_ignore;
	char *workdir, *user;
	bool keep_docs;
	bool record_build_debs; /* build.record-debs: status.d files for build.debs too */
	bool elfcheck;
	json_t *config; /* the org.mobyproject.config label value, or NULL */
	json_t *labels; /* object */
	char *deb_cache; /* where .debs and the apt resolution cache live; NULL: default */
	/* computed */
	struct deb_info *debinfo, *build_debinfo;
	bool resolved;
	char *tag;
};

static void strv_release(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

static void strv_push(struct strv *s, char *str)
{
	s->v = xrealloc(s->v, (s->n + 2) * sizeof *s->v);
	s->v[s->n++] = str;
	s->v[s->n] = NULL;
}

void pkg_free(struct pkg *p)
{
	if (p == NULL)
		return;
	free(p->dir);
	free(p->yml_path);
	free(p->yml);
	free(p->image);
	free(p->org);
	free(p->tag_template);
	free(p->description);
	/* Before the lists: their lengths count the infos. */
	if (p->debinfo)
		for (size_t i = 0; i < p->debs.n; i++)
			deb_info_release(&p->debinfo[i]);
	free(p->debinfo);
	if (p->build_debinfo)
		for (size_t i = 0; i < p->build_debs.n; i++)
			deb_info_release(&p->build_debinfo[i]);
	free(p->build_debinfo);
	strv_release(&p->arches);
	strv_release(&p->debs);
	strv_release(&p->build_cmd);
	strv_release(&p->build_inputs);
	strv_release(&p->build_debs);
	for (size_t i = 0; i < p->nfiles; i++) {
		free(p->files[i].path);
		free(p->files[i].value);
	}
	free(p->files);
	strv_release(&p->entrypoint);
	strv_release(&p->cmd);
	strv_release(&p->env);
	strv_release(&p->drop);
	strv_release(&p->elf_ignore);
	free(p->workdir);
	free(p->user);
	if (p->config)
		json_decref(p->config);
	if (p->labels)
		json_decref(p->labels);
	free(p->tag);
	free(p->deb_cache);
	free(p);
}

void pkg_freep(struct pkg **p)
{
	pkg_free(*p);
}

void pkg_set_org(struct pkg *p, const char *org)
{
	free(p->org);
	p->org = xstrdup(org);
}

const char *pkg_image(const struct pkg *p)
{
	return p->image;
}

const char *pkg_description(const struct pkg *p)
{
	return p->description ? p->description : "";
}

/* ---- build.yml ---- */

struct yml {
	yaml_document_t doc;
	const char *file;
};

static int yml_error(struct yml *y, yaml_node_t *n, struct kiln_error **err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int yml_error(struct yml *y, yaml_node_t *n, struct kiln_error **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = yaml_position_verror(err, y->file, n->start_mark.line + 1, n->start_mark.column + 1,
				     fmt, ap);
	va_end(ap);
	return r;
}

static const char *node_kind(yaml_node_t *n)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return "a scalar";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a map";
	default:
		return "nothing";
	}
}

static const char *scalar(yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static int yml_string(struct yml *y, yaml_node_t *n, const char *key, char **out,
		      struct kiln_error **err)
{
	if (n->type != YAML_SCALAR_NODE)
		return yml_error(y, n, err, "`%s` must be a string, not %s", key, node_kind(n));
	if (strlen(scalar(n)) != n->data.scalar.length)
		return yml_error(y, n, err, "`%s` holds a NUL byte", key);
	free(*out);
	*out = xstrdup(scalar(n));
	return 0;
}

static int yml_bool(struct yml *y, yaml_node_t *n, const char *key, bool *out,
		    struct kiln_error **err)
{
	if (n->type == YAML_SCALAR_NODE) {
		const char *s = scalar(n);
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
			*out = true;
			return 0;
		}
		if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
			*out = false;
			return 0;
		}
	}
	return yml_error(y, n, err, "`%s` must be true or false", key);
}

static int yml_strv(struct yml *y, yaml_node_t *n, const char *key, struct strv *out,
		    struct kiln_error **err)
{
	if (n->type != YAML_SEQUENCE_NODE)
		return yml_error(y, n, err, "`%s` must be a list of strings, not %s", key,
				 node_kind(n));
	strv_release(out);
	out->set = true;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
	     it++) {
		yaml_node_t *item = yaml_document_get_node(&y->doc, *it);
		char *s = NULL;
		if (yml_string(y, item, key, &s, err) < 0)
			return -1;
		strv_push(out, s);
	}
	if (out->v == NULL)
		out->v = xcalloc(1, sizeof *out->v); /* an empty list that is set */
	return 0;
}

static int yml_uint(struct yml *y, yaml_node_t *n, const char *key, int base, unsigned max,
		    unsigned *out, struct kiln_error **err)
{
	uint64_t v;
	if (n->type != YAML_SCALAR_NODE || parse_u64(scalar(n), base, &v) < 0 || v > max)
		return yml_error(y, n, err, "`%s` must be %s number up to %u", key,
				 base == 8 ? "an octal" : "a", max);
	*out = (unsigned)v;
	return 0;
}

/* A YAML node as JSON, typing plain scalars as YAML does (true/false, null,
 * decimal integers, floats); quoted scalars stay strings.  Numbers with a
 * leading zero stay strings ("0644" is a mode, not 420). */
static json_t *yml_to_json(struct yml *y, yaml_node_t *n, int depth, struct kiln_error **err)
{
	if (depth > 64) {
		yml_error(y, n, err, "nested too deeply");
		return NULL;
	}
	if (n->type == YAML_SCALAR_NODE) {
		const char *s = scalar(n);
		if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
			return json_string(s);
		if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
			return json_true();
		if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE"))
			return json_false();
		if (!strcmp(s, "null") || !strcmp(s, "~") || !*s)
			return json_null();
		char *end;
		errno = 0;
		const char *digits = s + (*s == '-' || *s == '+');
		if (*digits >= '0' && *digits <= '9' && !(digits[0] == '0' && digits[1])) {
			long long v = strtoll(s, &end, 10);
			if (!*end && errno == 0)
				return json_integer(v);
			errno = 0;
			double d = strtod(s, &end);
			if (!*end && errno == 0)
				return json_real(d);
		}
		json_t *str = json_string(s);
		if (str == NULL)
			yml_error(y, n, err, "not valid UTF-8");
		return str;
	}
	if (n->type == YAML_SEQUENCE_NODE) {
		json_t *a = json_array();
		for (yaml_node_item_t *it = n->data.sequence.items.start;
		     it < n->data.sequence.items.top; it++) {
			json_t *v = yml_to_json(y, yaml_document_get_node(&y->doc, *it), depth + 1, err);
			if (v == NULL) {
				json_decref(a);
				return NULL;
			}
			json_array_append_new(a, v);
		}
		return a;
	}
	if (n->type == YAML_MAPPING_NODE) {
		json_t *o = json_object();
		for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
		     pr < n->data.mapping.pairs.top; pr++) {
			yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
			yaml_node_t *v = yaml_document_get_node(&y->doc, pr->value);
			if (k->type != YAML_SCALAR_NODE) {
				yml_error(y, k, err, "map keys must be strings");
				json_decref(o);
				return NULL;
			}
			if (json_object_get(o, scalar(k))) {
				yml_error(y, k, err, "duplicate key `%s`", scalar(k));
				json_decref(o);
				return NULL;
			}
			json_t *jv = yml_to_json(y, v, depth + 1, err);
			if (jv == NULL) {
				json_decref(o);
				return NULL;
			}
			json_object_set_new(o, scalar(k), jv);
		}
		return o;
	}
	yml_error(y, n, err, "unexpected YAML node");
	return NULL;
}

static int parse_file_entry(struct yml *y, yaml_node_t *n, struct pkg_file *f,
			    struct kiln_error **err)
{
	memset(f, 0, sizeof *f);
	f->line = (int)n->start_mark.line + 1;
	f->col = (int)n->start_mark.column + 1;
	if (n->type != YAML_MAPPING_NODE)
		return yml_error(y, n, err, "a `files` entry must be a map, not %s", node_kind(n));
	int kinds = 0;
	bool directory = false;
	cleanup_free char *path = NULL;
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&y->doc, pr->value);
		const char *key = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
		int r = 0;
		if (!strcmp(key, "path")) {
			r = yml_string(y, v, key, &path, err);
		} else if (!strcmp(key, "source") || !strcmp(key, "contents") ||
			   !strcmp(key, "symlink")) {
			kinds++;
			f->kind = key[0] == 's' ? (key[1] == 'o' ? FILE_SOURCE : FILE_SYMLINK)
						: FILE_CONTENTS;
			r = yml_string(y, v, key, &f->value, err);
		} else if (!strcmp(key, "directory")) {
			r = yml_bool(y, v, key, &directory, err);
			if (r == 0 && directory) {
				kinds++;
				f->kind = FILE_DIRECTORY;
			}
		} else if (!strcmp(key, "mode")) {
			f->has_mode = true;
			r = yml_uint(y, v, key, 8, 07777, &f->mode, err);
		} else if (!strcmp(key, "uid")) {
			r = yml_uint(y, v, key, 10, 0x7fffffff, &f->uid, err);
		} else if (!strcmp(key, "gid")) {
			r = yml_uint(y, v, key, 10, 0x7fffffff, &f->gid, err);
		} else if (!strcmp(key, "optional")) {
			r = yml_bool(y, v, key, &f->optional, err);
		} else {
			return yml_error(y, k, err,
					 "unknown key `%s` in a `files` entry (known: path, source, "
					 "contents, symlink, directory, mode, uid, gid, optional)",
					 key);
		}
		if (r < 0)
			return -1;
	}
	if (path == NULL)
		return yml_error(y, n, err, "a `files` entry needs `path`");
	if (kinds != 1)
		return yml_error(y, n, err,
				 "`files` entry `%s` needs exactly one of source, contents, symlink, "
				 "directory: true",
				 path);
	f->path = deb_path_clean(path);
	if (f->path == NULL || !*f->path)
		return yml_error(y, n, err, "`files` path `%s` is not a path inside the image", path);
	if (f->kind == FILE_SOURCE && str_has_prefix(f->value, "@out/")) {
		f->from_out = true;
		char *rest = deb_path_clean(f->value + 5);
		if (rest == NULL || !*rest) {
			free(rest);
			return yml_error(y, n, err, "`@out/` source `%s` leaves the build output",
					 f->value);
		}
		free(f->value);
		f->value = rest;
	}
	return 0;
}

static void pkg_add_file(struct pkg *p, struct pkg_file *f)
{
	p->files = xrealloc(p->files, (p->nfiles + 1) * sizeof *p->files);
	p->files[p->nfiles++] = *f;
}

static int parse_build(struct yml *y, yaml_node_t *n, struct pkg *p, struct kiln_error **err)
{
	if (n->type == YAML_SEQUENCE_NODE)
		return yml_strv(y, n, "build", &p->build_cmd, err);
	if (n->type != YAML_MAPPING_NODE)
		return yml_error(y, n, err, "`build` must be an argv list or a map");
	for (yaml_node_pair_t *pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top;
	     pr++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&y->doc, pr->value);
		const char *key = k->type == YAML_SCALAR_NODE ? scalar(k) : "";
		int r;
		if (!strcmp(key, "command"))
			r = yml_strv(y, v, "build.command", &p->build_cmd, err);
		else if (!strcmp(key, "inputs"))
			r = yml_strv(y, v, "build.inputs", &p->build_inputs, err);
		else if (!strcmp(key, "debs"))
			r = yml_strv(y, v, "build.debs", &p->build_debs, err);
		else if (!strcmp(key, "record-debs"))
			r = yml_bool(y, v, "build.record-debs", &p->record_build_debs, err);
		else
			return yml_error(
			    y, k, err,
			    "unknown key `%s` in `build` (known: command, inputs, debs, "
			    "record-debs)",
			    key);
		if (r < 0)
			return -1;
	}
	if (p->build_cmd.n == 0)
		return yml_error(y, n, err, "`build` needs a non-empty `command`");
	return 0;
}

static int parse_top(struct yml *y, yaml_node_t *root, struct pkg *p, struct kiln_error **err)
{
	if (root == NULL)
		return kiln_error_make(err, 0, "%s: empty file", y->file);
	if (root->type != YAML_MAPPING_NODE)
		return yml_error(y, root, err, "build.yml must be a map, not %s", node_kind(root));
	p->elfcheck = true;
	cleanup_free char *seen = xcalloc(1, 64);
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(&y->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(&y->doc, pr->value);
		if (k->type != YAML_SCALAR_NODE)
			return yml_error(y, k, err, "keys must be strings");
		const char *key = scalar(k);
		static const char *const known[] = {
			"image", "org",	    "tag",     "description", "arches",		 "config",
			"labels", "debs",   "build",   "files",	      "symlinks",	 "dirs",
			"entrypoint", "cmd", "env",    "workdir",     "user",		 "drop",
			"keep-docs", "elfcheck-ignore", "elfcheck",
		};
		size_t ki = ARRAY_SIZE(known);
		for (size_t i = 0; i < ARRAY_SIZE(known); i++)
			if (!strcmp(key, known[i]))
				ki = i;
		if (ki == ARRAY_SIZE(known))
			return yml_error(y, k, err, "unknown key `%s`", key);
		if (seen[ki])
			return yml_error(y, k, err, "duplicate key `%s`", key);
		seen[ki] = 1;
		int r = 0;
		if (!strcmp(key, "image"))
			r = yml_string(y, v, key, &p->image, err);
		else if (!strcmp(key, "org"))
			r = yml_string(y, v, key, &p->org, err);
		else if (!strcmp(key, "tag"))
			r = yml_string(y, v, key, &p->tag_template, err);
		else if (!strcmp(key, "description"))
			r = yml_string(y, v, key, &p->description, err);
		else if (!strcmp(key, "arches"))
			r = yml_strv(y, v, key, &p->arches, err);
		else if (!strcmp(key, "config")) {
			if (v->type != YAML_MAPPING_NODE)
				return yml_error(y, v, err, "`config` must be a map");
			p->config = yml_to_json(y, v, 0, err);
			if (p->config == NULL)
				return -1;
			if (json_object_get(p->config, "name") || json_object_get(p->config, "image"))
				return yml_error(y, v, err, "`config` must not set `name` or `image`");
		} else if (!strcmp(key, "labels")) {
			if (v->type != YAML_MAPPING_NODE)
				return yml_error(y, v, err, "`labels` must be a map of strings");
			for (yaml_node_pair_t *lp = v->data.mapping.pairs.start;
			     lp < v->data.mapping.pairs.top; lp++) {
				yaml_node_t *lk = yaml_document_get_node(&y->doc, lp->key);
				yaml_node_t *lv = yaml_document_get_node(&y->doc, lp->value);
				if (lk->type != YAML_SCALAR_NODE || lv->type != YAML_SCALAR_NODE)
					return yml_error(y, lk, err, "`labels` must be a map of strings");
				json_object_set_new(p->labels, scalar(lk), json_string(scalar(lv)));
			}
		} else if (!strcmp(key, "debs"))
			r = yml_strv(y, v, key, &p->debs, err);
		else if (!strcmp(key, "build"))
			r = parse_build(y, v, p, err);
		else if (!strcmp(key, "files")) {
			if (v->type != YAML_SEQUENCE_NODE)
				return yml_error(y, v, err, "`files` must be a list");
			for (yaml_node_item_t *it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top; it++) {
				struct pkg_file f;
				if (parse_file_entry(y, yaml_document_get_node(&y->doc, *it), &f,
						     err) < 0) {
					free(f.path);
					free(f.value);
					return -1;
				}
				pkg_add_file(p, &f);
			}
		} else if (!strcmp(key, "symlinks")) {
			if (v->type != YAML_MAPPING_NODE)
				return yml_error(y, v, err, "`symlinks` must be a map PATH: TARGET");
			for (yaml_node_pair_t *lp = v->data.mapping.pairs.start;
			     lp < v->data.mapping.pairs.top; lp++) {
				yaml_node_t *lk = yaml_document_get_node(&y->doc, lp->key);
				yaml_node_t *lv = yaml_document_get_node(&y->doc, lp->value);
				if (lk->type != YAML_SCALAR_NODE || lv->type != YAML_SCALAR_NODE)
					return yml_error(y, lk, err,
							 "`symlinks` must be a map PATH: TARGET");
				struct pkg_file f = {.kind = FILE_SYMLINK,
						     .path = deb_path_clean(scalar(lk)),
						     .value = xstrdup(scalar(lv)),
						     .line = (int)lk->start_mark.line + 1,
						     .col = (int)lk->start_mark.column + 1};
				if (f.path == NULL || !*f.path || !*f.value) {
					free(f.path);
					free(f.value);
					return yml_error(y, lk, err, "bad symlink `%s`", scalar(lk));
				}
				pkg_add_file(p, &f);
			}
		} else if (!strcmp(key, "dirs")) {
			struct strv dirs = {0};
			if (yml_strv(y, v, key, &dirs, err) < 0) {
				strv_release(&dirs);
				return -1;
			}
			for (size_t i = 0; i < dirs.n; i++) {
				struct pkg_file f = {.kind = FILE_DIRECTORY,
						     .path = deb_path_clean(dirs.v[i]),
						     .line = (int)v->start_mark.line + 1,
						     .col = (int)v->start_mark.column + 1};
				if (f.path == NULL || !*f.path) {
					free(f.path);
					r = yml_error(y, v, err, "bad directory `%s`", dirs.v[i]);
					break;
				}
				pkg_add_file(p, &f);
			}
			strv_release(&dirs);
		} else if (!strcmp(key, "entrypoint"))
			r = yml_strv(y, v, key, &p->entrypoint, err);
		else if (!strcmp(key, "cmd"))
			r = yml_strv(y, v, key, &p->cmd, err);
		else if (!strcmp(key, "env"))
			r = yml_strv(y, v, key, &p->env, err);
		else if (!strcmp(key, "workdir"))
			r = yml_string(y, v, key, &p->workdir, err);
		else if (!strcmp(key, "user"))
			r = yml_string(y, v, key, &p->user, err);
		else if (!strcmp(key, "drop"))
			r = yml_strv(y, v, key, &p->drop, err);
		else if (!strcmp(key, "keep-docs"))
			r = yml_bool(y, v, key, &p->keep_docs, err);
		else if (!strcmp(key, "elfcheck-ignore"))
			r = yml_strv(y, v, key, &p->elf_ignore, err);
		else if (!strcmp(key, "elfcheck"))
			r = yml_bool(y, v, key, &p->elfcheck, err);
		if (r < 0)
			return -1;
	}
	if (p->image == NULL)
		return yml_error(y, root, err, "`image` is required");
	return 0;
}

/* Checks that ORG/IMAGE:latest is a valid reference. */
static int check_name(struct pkg *p, struct kiln_error **err)
{
	cleanup_free char *s = xasprintf("%s/%s:latest", p->org, p->image);
	struct image_ref ref;
	if (ref_parse(s, &ref, err) < 0)
		return kiln_error_wrap(err, "%s: org/image", p->yml_path);
	ref_release(&ref);
	return 0;
}

struct pkg *pkg_load(const char *dir, struct kiln_error **err)
{
	char abs[PATH_MAX];
	if (realpath(dir, abs) == NULL)
		return kiln_error_make(err, errno, "package `%s`", dir), NULL;
	cleanup_free char *yml_path = path_join(dir, "build.yml");
	size_t len;
	cleanup_free char *yml = read_file(yml_path, BUILD_YML_MAX, &len, err);
	if (yml == NULL)
		return NULL;
	return pkg_parse(abs, yml_path, yml, len, err);
}

struct pkg *pkg_parse(const char *dir, const char *yml_path, const char *text, size_t len,
		      struct kiln_error **err)
{
	cleanup_pkg struct pkg *p = xcalloc(1, sizeof *p);
	p->dir = xstrdup(dir);
	p->yml_path = xstrdup(yml_path);
	p->yml = xmalloc(len + 1);
	memcpy(p->yml, text, len);
	p->yml[len] = '\0';
	p->yml_len = len;
	p->labels = json_object();
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)p->yml, p->yml_len);
	struct yml y = {.file = p->yml_path};
	if (!yaml_parser_load(&parser, &y.doc)) {
		kiln_error_make(err, 0, "%s:%zu:%zu: %s", p->yml_path, parser.problem_mark.line + 1,
				parser.problem_mark.column + 1,
				parser.problem ? parser.problem : "YAML error");
		yaml_parser_delete(&parser);
		return NULL;
	}
	int r = parse_top(&y, yaml_document_get_root_node(&y.doc), p, err);
	yaml_document_delete(&y.doc);
	yaml_parser_delete(&parser);
	if (r < 0)
		return NULL;
	if (p->org == NULL)
		p->org = xstrdup(PKG_DEFAULT_ORG);
	if (check_name(p, err) < 0)
		return NULL;
	if (p->arches.n) {
		bool ok = false;
		for (size_t i = 0; i < p->arches.n; i++)
			ok |= !strcmp(p->arches.v[i], "amd64");
		if (!ok)
			return kiln_error_make(err, 0, "%s: `arches` lacks amd64, the only one kiln builds",
					       p->yml_path),
			       NULL;
	}
	return steal_pointer(&p);
}

/* ---- the tag ---- */

static int64_t pkg_epoch(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	uint64_t v;
	if (s && *s && parse_u64(s, 10, &v) == 0 && v < ((uint64_t)1 << 33))
		return (int64_t)v;
	return 0;
}

static int hash_file_bytes(struct sha256 *h, const char *path, struct kiln_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", path);
	char buf[65536];
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return kiln_error_make(err, errno, "read `%s`", path);
		if (n == 0)
			return 0;
		sha256_update(h, buf, (size_t)n);
	}
}

static void hash_str(struct sha256 *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void hash_str(struct sha256 *h, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cleanup_free char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		oom();
	va_end(ap);
	sha256_update(h, s, strlen(s) + 1);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Hashes the file or tree at PATH, named REL in the stream: kind, name, mode
 * and bytes (or link target), children sorted by byte order. */
static int hash_tree(struct sha256 *h, const char *path, const char *rel, int depth,
		     struct kiln_error **err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", path);
	if (depth > 64)
		return kiln_error_make(err, ELOOP, "`%s`", path);
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n < 0)
			return kiln_error_make(err, errno, "readlink `%s`", path);
		target[n] = '\0';
		hash_str(h, "link %s %s", rel, target);
		return 0;
	}
	if (S_ISREG(st.st_mode)) {
		/* Only the executable bit, as git keeps it: a checkout under
		 * another umask gives the same tag. */
		hash_str(h, "file %s %o %lld", rel, (st.st_mode & 0111) ? 0755u : 0644u,
			 (long long)st.st_size);
		return hash_file_bytes(h, path, err);
	}
	if (!S_ISDIR(st.st_mode)) {
		hash_str(h, "special %s %o", rel, (unsigned)st.st_mode);
		return 0;
	}
	hash_str(h, "dir %s", rel);
	cleanup_dir DIR *d = opendir(path);
	if (d == NULL)
		return kiln_error_make(err, errno, "opendir `%s`", path);
	struct strv names = {0};
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		strv_push(&names, xstrdup(de->d_name));
	}
	if (names.n)
		qsort(names.v, names.n, sizeof *names.v, cmp_str);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		cleanup_free char *cp = path_join(path, names.v[i]);
		cleanup_free char *cr = *rel ? path_join(rel, names.v[i]) : xstrdup(names.v[i]);
		r = hash_tree(h, cp, cr, depth + 1, err);
	}
	strv_release(&names);
	return r;
}

static char *pkg_path(const struct pkg *p, const char *rel)
{
	return rel[0] == '/' ? xstrdup(rel) : path_join(p->dir, rel);
}

static int resolve_debs(struct pkg *p, struct kiln_error **err)
{
	if (p->resolved)
		return 0;
	/* One apt-cache run for both lists (each run loads apt's whole cache). */
	size_t n = p->debs.n + p->build_debs.n;
	if (n == 0) {
		p->resolved = true;
		return 0;
	}
	char **all = xcalloc(n, sizeof *all);
	for (size_t i = 0; i < p->debs.n; i++)
		all[i] = p->debs.v[i];
	for (size_t i = 0; i < p->build_debs.n; i++)
		all[p->debs.n + i] = p->build_debs.v[i];
	struct deb_info *infos = xcalloc(n, sizeof *infos);
	cleanup_free char *cache = p->deb_cache ? xstrdup(p->deb_cache) : NULL;
	if (cache == NULL) {
		cleanup_free char *sd = store_default_dir();
		cache = deb_cache_dir(sd);
	}
	int r = deb_resolve_all(all, n, infos, cache, err);
	free(all);
	if (r < 0) {
		free(infos);
		return kiln_error_wrap(err, "%s", p->yml_path);
	}
	p->debinfo = xcalloc(p->debs.n + 1, sizeof *p->debinfo);
	p->build_debinfo = xcalloc(p->build_debs.n + 1, sizeof *p->build_debinfo);
	memcpy(p->debinfo, infos, p->debs.n * sizeof *infos);
	memcpy(p->build_debinfo, infos + p->debs.n, p->build_debs.n * sizeof *infos);
	free(infos);
	p->resolved = true;
	return 0;
}

/* Feeds every input of P into H (see pkg.h). */
static int hash_inputs(struct pkg *p, struct sha256 *h, struct kiln_error **err)
{
	hash_str(h, "kiln-pkg %d epoch %lld", PKG_FORMAT_VERSION, (long long)pkg_epoch());
	hash_str(h, "build.yml %zu", p->yml_len);
	sha256_update(h, p->yml, p->yml_len);
	if (hash_tree(h, p->dir, "", 0, err) < 0)
		return -1;
	for (size_t i = 0; i < p->build_inputs.n; i++) {
		cleanup_free char *path = pkg_path(p, p->build_inputs.v[i]);
		hash_str(h, "input %s", p->build_inputs.v[i]);
		if (hash_tree(h, path, p->build_inputs.v[i], 0, err) < 0)
			return kiln_error_wrap(err, "%s: build input", p->yml_path);
	}
	for (size_t i = 0; i < p->debs.n; i++)
		hash_str(h, "deb %s %s %s %s", p->debinfo[i].name, p->debinfo[i].version,
			 p->debinfo[i].arch, p->debinfo[i].sha256);
	for (size_t i = 0; i < p->build_debs.n; i++)
		hash_str(h, "build-deb %s %s %s %s", p->build_debinfo[i].name,
			 p->build_debinfo[i].version, p->build_debinfo[i].arch,
			 p->build_debinfo[i].sha256);
	/* Sources outside the folder (inside it, the tree hash covers them). */
	for (size_t i = 0; i < p->nfiles; i++) {
		struct pkg_file *f = &p->files[i];
		if (f->kind != FILE_SOURCE || f->from_out)
			continue;
		cleanup_free char *path = pkg_path(p, f->value);
		char real[PATH_MAX];
		if (realpath(path, real) == NULL) {
			if (f->optional)
				continue;
			return kiln_error_make(err, errno, "%s:%d:%d: source `%s`", p->yml_path,
					       f->line, f->col, f->value);
		}
		size_t dl = strlen(p->dir);
		if (strncmp(real, p->dir, dl) == 0 && real[dl] == '/')
			continue;
		hash_str(h, "source %s", f->value);
		if (hash_tree(h, real, f->value, 0, err) < 0)
			return -1;
	}
	return 0;
}

const char *pkg_tag(struct pkg *p, struct kiln_error **err)
{
	if (p->tag)
		return p->tag;
	if (resolve_debs(p, err) < 0)
		return NULL;
	struct sha256 h;
	sha256_init(&h);
	if (hash_inputs(p, &h, err) < 0) {
		sha256_abort(&h);
		return NULL;
	}
	char digest[DIGEST_STRLEN];
	sha256_final_digest(&h, digest);
	cleanup_free char *hash = xstrndup(digest + 7, PKG_TAG_HEXLEN);
	const char *tmpl = p->tag_template ? p->tag_template : "{{.Hash}}";
	struct strbuf sb = STRBUF_INIT;
	for (const char *c = tmpl; *c;) {
		if (str_has_prefix(c, "{{.Hash}}")) {
			strbuf_puts(&sb, hash);
			c += 9;
		} else {
			strbuf_putc(&sb, *c++);
		}
	}
	p->tag = strbuf_detach(&sb, NULL);
	return p->tag;
}

char *pkg_ref(struct pkg *p, struct kiln_error **err)
{
	const char *tag = pkg_tag(p, err);
	if (tag == NULL)
		return NULL;
	return xasprintf("%s/%s:%s", p->org, p->image, tag);
}

char *pkg_store_name(struct pkg *p, struct kiln_error **err)
{
	cleanup_free char *r = pkg_ref(p, err);
	if (r == NULL)
		return NULL;
	struct image_ref ref;
	if (ref_parse(r, &ref, err) < 0)
		return kiln_error_wrap(err, "%s: tag", p->yml_path), NULL;
	char *s = ref_string(&ref);
	ref_release(&ref);
	return s;
}

/* ---- the image's entries ---- */

struct entry {
	char *path;    /* relative, cleaned; "" is the root */
	unsigned mode; /* S_IFMT bits and permissions */
	unsigned uid, gid;
	char *link; /* symlink target */
	char *src;  /* regular file: where its bytes are */
	uint64_t size;
	unsigned rmajor, rminor;
	size_t seq;
};

struct tree {
	struct entry *v;
	size_t n, cap, seq;
	bool sorted;
	char *stage; /* temp dir holding staged file contents */
	size_t nstaged;
	const struct pkg *p;
	const char *origin; /* what is being added, for errors */
};

static void entry_release(struct entry *e)
{
	free(e->path);
	free(e->link);
	free(e->src);
}

static void tree_release(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++)
		entry_release(&t->v[i]);
	free(t->v);
	if (t->stage) {
		struct kiln_error *ignored = NULL;
		rm_rf(t->stage, &ignored);
		kiln_error_release(&ignored);
		free(t->stage);
	}
	memset(t, 0, sizeof *t);
}

/* Appends E (taking its strings); a later entry of the same path wins. */
static void tree_add(struct tree *t, struct entry *e)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->v = xrealloc(t->v, t->cap * sizeof *t->v);
	}
	e->seq = t->seq++;
	t->v[t->n++] = *e;
	t->sorted = false;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);
	if (c)
		return c;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts by path and keeps the last entry of each path. */
static void tree_sort(struct tree *t)
{
	if (t->sorted)
		return;
	qsort(t->v, t->n, sizeof *t->v, entry_cmp);
	size_t out = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (i + 1 < t->n && !strcmp(t->v[i].path, t->v[i + 1].path)) {
			entry_release(&t->v[i]);
			continue;
		}
		t->v[out++] = t->v[i];
	}
	t->n = out;
	t->sorted = true;
}

static const struct entry *tree_find(struct tree *t, const char *path)
{
	tree_sort(t);
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->v[mid].path, path);
		if (c == 0)
			return &t->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Resolves absolute image path ABS, following symlinks inside the image.
 * Returns the entry (a directory for the root), or NULL. */
static const struct entry *tree_resolve(struct tree *t, const char *abs)
{
	struct strbuf cur = STRBUF_INIT, rest = STRBUF_INIT;
	strbuf_puts(&cur, "");
	strbuf_puts(&rest, abs);
	const struct entry *found = tree_find(t, "");
	int hops = 0;
	while (found) {
		const char *r = rest.buf;
		while (*r == '/')
			r++;
		if (!*r)
			break;
		const char *end = strchrnul(r, '/');
		cleanup_free char *comp = xstrndup(r, (size_t)(end - r));
		cleanup_free char *remain = xstrdup(end);
		strbuf_reset(&rest);
		strbuf_puts(&rest, remain);
		if (!strcmp(comp, "."))
			continue;
		if (!strcmp(comp, "..")) {
			char *slash = strrchr(cur.buf, '/');
			cur.len = slash ? (size_t)(slash - cur.buf) : 0;
			cur.buf[cur.len] = '\0';
			found = tree_find(t, cur.buf);
			continue;
		}
		if (found && !S_ISDIR(found->mode)) {
			found = NULL;
			break;
		}
		cleanup_free char *cand = cur.len ? xasprintf("%s/%s", cur.buf, comp) : xstrdup(comp);
		found = tree_find(t, cand);
		if (found == NULL)
			break;
		if (S_ISLNK(found->mode)) {
			if (++hops > 40) {
				found = NULL;
				break;
			}
			strbuf_reset(&rest);
			strbuf_printf(&rest, "%s%s", found->link, remain);
			if (found->link[0] == '/')
				strbuf_reset(&cur), strbuf_puts(&cur, "");
			found = tree_find(t, cur.buf);
			continue;
		}
		strbuf_reset(&cur);
		strbuf_puts(&cur, cand);
	}
	strbuf_release(&cur);
	strbuf_release(&rest);
	return found;
}

static bool tree_exists(const char *path, void *arg)
{
	const struct entry *e = tree_resolve(arg, path);
	return e != NULL && !S_ISDIR(e->mode);
}

/* A new staged file for content; returns its path (caller frees) and an fd. */
static char *stage_file(struct tree *t, int *fd, struct kiln_error **err)
{
	char *path = xasprintf("%s/%zu", t->stage, t->nstaged++);
	*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (*fd < 0) {
		kiln_error_make(err, errno, "create `%s`", path);
		free(path);
		return NULL;
	}
	return path;
}

static const char *const doc_globs[] = {
	"usr/share/doc",      "usr/share/man",	    "usr/share/info",	   "usr/share/locale",
	"usr/share/lintian",  "usr/share/linda",    "usr/share/bug",	   "usr/share/gtk-doc",
	"usr/share/help",     "usr/share/bash-completion", "usr/share/zsh", "usr/share/fish",
	"usr/share/common-licenses", "usr/share/menu", "usr/share/reportbug",
};

static bool glob_hit(const char *glob, const char *path)
{
	if (fnmatch(glob, path, FNM_PATHNAME) == 0)
		return true;
	/* A glob naming a directory drops everything beneath it. */
	cleanup_free char *prefix = xstrdup(path);
	for (char *s = strrchr(prefix, '/'); s; s = strrchr(prefix, '/')) {
		*s = '\0';
		if (fnmatch(glob, prefix, FNM_PATHNAME) == 0)
			return true;
	}
	return false;
}

static bool glob_any(const struct strv *globs, const char *path)
{
	for (size_t i = 0; i < globs->n; i++) {
		const char *g = globs->v[i];
		while (*g == '/')
			g++;
		if (glob_hit(g, path))
			return true;
	}
	return false;
}

static bool dropped(const struct pkg *p, const char *path)
{
	if (!*path)
		return false;
	if (!p->keep_docs)
		for (size_t i = 0; i < ARRAY_SIZE(doc_globs); i++)
			if (glob_hit(doc_globs[i], path))
				return true;
	return glob_any(&p->drop, path);
}

static int deb_entry(struct archive *a, struct archive_entry *ae, const char *path,
		     const char *hardlink, void *arg, struct kiln_error **err)
{
	struct tree *t = arg;
	if (dropped(t->p, path) || !*path)
		return 0;
	struct entry e = {.path = xstrdup(path),
			  .mode = archive_entry_mode(ae),
			  .uid = (unsigned)archive_entry_uid(ae),
			  .gid = (unsigned)archive_entry_gid(ae)};
	if (hardlink) {
		tree_sort(t);
		const struct entry *target = tree_find(t, hardlink);
		if (target == NULL || !S_ISREG(target->mode)) {
			free(e.path);
			return kiln_error_make(err, 0, "%s: hard link `%s` to missing `%s`", t->origin,
					       path, hardlink);
		}
		e.mode = target->mode;
		e.src = xstrdup(target->src);
		e.size = target->size;
		tree_add(t, &e);
		return 0;
	}
	switch (e.mode & S_IFMT) {
	case S_IFDIR:
		break;
	case S_IFLNK:
		e.link = xstrdup(archive_entry_symlink(ae) ? archive_entry_symlink(ae) : "");
		break;
	case S_IFCHR:
	case S_IFBLK:
		e.rmajor = archive_entry_rdevmajor(ae);
		e.rminor = archive_entry_rdevminor(ae);
		break;
	case S_IFIFO:
		break;
	case S_IFREG: {
		cleanup_close int fd = -1;
		e.src = stage_file(t, &fd, err);
		if (e.src == NULL) {
			free(e.path);
			return -1;
		}
		char buf[65536];
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
			if (write_all(fd, buf, (size_t)n, err) < 0) {
				entry_release(&e);
				return -1;
			}
			e.size += (uint64_t)n;
		}
		if (n < 0) {
			entry_release(&e);
			return kiln_error_make(err, 0, "%s: `%s`: %s", t->origin, path,
					       archive_error_string(a));
		}
		break;
	}
	default:
		free(e.path);
		return kiln_error_make(err, 0, "%s: `%s`: unsupported file type", t->origin, path);
	}
	tree_add(t, &e);
	return 0;
}

/* Adds the file or tree at host path SRC as image path PATH. */
static int add_source(struct tree *t, const char *src, const char *path, const struct pkg_file *f,
		      int depth, struct kiln_error **err)
{
	struct stat st;
	if (lstat(src, &st) < 0)
		return kiln_error_make(err, errno, "source `%s`", src);
	if (depth > 64)
		return kiln_error_make(err, ELOOP, "source `%s`", src);
	struct entry e = {.path = xstrdup(path), .uid = f->uid, .gid = f->gid};
	if (S_ISLNK(st.st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(src, target, sizeof target - 1);
		if (n < 0) {
			free(e.path);
			return kiln_error_make(err, errno, "readlink `%s`", src);
		}
		target[n] = '\0';
		e.mode = S_IFLNK | 0777;
		e.link = xstrdup(target);
	} else if (S_ISREG(st.st_mode)) {
		unsigned perm = (st.st_mode & 0111) ? 0755 : 0644;
		e.mode = S_IFREG | (f->has_mode && depth == 0 ? f->mode : perm);
		e.src = xstrdup(src);
		e.size = (uint64_t)st.st_size;
	} else if (S_ISDIR(st.st_mode)) {
		e.mode = S_IFDIR | (f->has_mode && depth == 0 ? f->mode : 0755);
		tree_add(t, &e);
		cleanup_dir DIR *d = opendir(src);
		if (d == NULL)
			return kiln_error_make(err, errno, "opendir `%s`", src);
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			cleanup_free char *cs = path_join(src, de->d_name);
			cleanup_free char *cp = path_join(path, de->d_name);
			if (add_source(t, cs, cp, f, depth + 1, err) < 0)
				return -1;
		}
		return 0;
	} else {
		free(e.path);
		return kiln_error_make(err, 0, "source `%s`: not a file, symlink or directory", src);
	}
	tree_add(t, &e);
	return 0;
}

/* Adds E (path and mode set) as a regular file holding TEXT, staged. */
static int add_contents(struct tree *t, struct entry *e, const char *text, struct kiln_error **err)
{
	cleanup_close int fd = -1;
	e->src = stage_file(t, &fd, err);
	e->size = strlen(text);
	if (e->src == NULL || write_all(fd, text, e->size, err) < 0) {
		entry_release(e);
		return -1;
	}
	tree_add(t, e);
	return 0;
}

/* Records the .deb at DEB_PATH as distroless images do, in the place syft,
 * trivy and kiln's SBOM read: its control stanza with "Status: install ok
 * installed" as var/lib/dpkg/status.d/PACKAGE, 0644 root:root (drop: and
 * the doc globs do not apply). */
static int add_deb_status(struct tree *t, const char *deb_path, struct kiln_error **err)
{
	cleanup_free char *control = NULL, *name = NULL;
	if (deb_control(deb_path, &control, err) < 0)
		return -1;
	cleanup_free char *stanza = deb_status_stanza(control, &name, err);
	if (stanza == NULL)
		return kiln_error_wrap(err, "`%s`", deb_path);
	struct entry e = {.path = xasprintf("%s/%s", PKG_DPKG_STATUS_D, name),
			  .mode = S_IFREG | 0644};
	return add_contents(t, &e, stanza, err);
}

static int add_files(struct tree *t, const struct pkg *p, const char *outdir,
		     struct kiln_error **err)
{
	for (size_t i = 0; i < p->nfiles; i++) {
		const struct pkg_file *f = &p->files[i];
		struct entry e = {.path = xstrdup(f->path), .uid = f->uid, .gid = f->gid};
		switch (f->kind) {
		case FILE_SOURCE: {
			free(e.path);
			if (f->from_out && outdir == NULL)
				return kiln_error_make(err, 0, "%s:%d:%d: `@out/` needs a `build` step",
						       p->yml_path, f->line, f->col);
			cleanup_free char *src =
				f->from_out ? path_join(outdir, f->value) : pkg_path(p, f->value);
			if (f->optional && access(src, F_OK) != 0)
				continue;
			if (add_source(t, src, f->path, f, 0, err) < 0)
				return kiln_error_wrap(err, "%s:%d:%d", p->yml_path, f->line, f->col);
			continue;
		}
		case FILE_CONTENTS:
			e.mode = S_IFREG | (f->has_mode ? f->mode : 0644);
			if (add_contents(t, &e, f->value, err) < 0)
				return -1;
			continue;
		case FILE_SYMLINK:
			e.mode = S_IFLNK | 0777;
			e.link = xstrdup(f->value);
			break;
		case FILE_DIRECTORY:
			e.mode = S_IFDIR | (f->has_mode ? f->mode : 0755);
			break;
		}
		tree_add(t, &e);
	}
	return 0;
}

/* Adds every missing parent directory (0755, root-owned) and the root. */
static void add_parents(struct tree *t)
{
	tree_sort(t);
	size_t n = t->n;
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *dir = xstrdup(t->v[i].path);
		for (char *s = strrchr(dir, '/'); s; s = strrchr(dir, '/')) {
			*s = '\0';
			bool have = false;
			size_t lo = 0, hi = n;
			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;
				int c = strcmp(t->v[mid].path, dir);
				if (c == 0) {
					have = true;
					break;
				}
				if (c < 0)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (have)
				break;
			/* Added at the front of the seq order so a real entry wins. */
			struct entry e = {.path = xstrdup(dir), .mode = S_IFDIR | 0755};
			tree_add(t, &e);
			t->v[t->n - 1].seq = 0;
		}
	}
	struct entry root = {.path = xstrdup(""), .mode = S_IFDIR | 0755};
	tree_add(t, &root);
	t->v[t->n - 1].seq = 0;
	t->sorted = false;
	tree_sort(t);
}

/* ---- the ELF check ---- */

static int elf_check(struct tree *t, const struct pkg *p, struct kiln_error **err)
{
	struct strv extra = {0};
	for (size_t i = 0; i < p->env.n; i++)
		if (str_has_prefix(p->env.v[i], "LD_LIBRARY_PATH=")) {
			const char *s = p->env.v[i] + 16;
			for (;;) {
				const char *end = strchrnul(s, ':');
				if (end > s)
					strv_push(&extra, xstrndup(s, (size_t)(end - s)));
				if (!*end)
					break;
				s = end + 1;
			}
		}
	/* glibc reads ld.so.cache, never ld.so.conf: the .conf directories
	 * count only when the image has a cache made from them. */
	if (tree_find(t, "etc/ld.so.cache")) {
		for (size_t i = 0; i < t->n; i++) {
			const struct entry *e = &t->v[i];
			if (!S_ISREG(e->mode) || !(str_has_prefix(e->path, "etc/ld.so.conf.d/") ||
						   !strcmp(e->path, "etc/ld.so.conf")))
				continue;
			struct kiln_error *ignored = NULL;
			cleanup_free char *text = read_file(e->src, 1 << 20, NULL, &ignored);
			kiln_error_release(&ignored);
			for (char *line = text ? strtok(text, "\n") : NULL; line;
			     line = strtok(NULL, "\n"))
				if (line[0] == '/')
					strv_push(&extra, xstrdup(line));
		}
	}
	struct strbuf problems = STRBUF_INIT;
	size_t nproblems = 0;
	int r = 0;
	for (size_t i = 0; i < t->n && r == 0; i++) {
		const struct entry *e = &t->v[i];
		if (!S_ISREG(e->mode) || e->size < 64 || glob_any(&p->elf_ignore, e->path))
			continue;
		struct elf_deps d;
		int k = elf_deps_read(e->src, &d, err);
		if (k < 0) {
			r = kiln_error_wrap(err, "/%s", e->path);
			break;
		}
		if (k == 0)
			continue;
		cleanup_free char *abs = xasprintf("/%s", e->path);
		struct kiln_error *perr = NULL;
		if (elfcheck_deps(abs, &d, extra.v, extra.n, tree_exists, t, &perr) < 0) {
			if (nproblems < 8)
				strbuf_printf(&problems, "%s%s", nproblems ? "; " : "", perr->msg);
			nproblems++;
			kiln_error_release(&perr);
		}
		elf_deps_release(&d);
	}
	strv_release(&extra);
	if (r == 0 && nproblems)
		r = kiln_error_make(err, 0, "ELF check: %s%s (add the missing .debs, or list the file "
				    "in `elfcheck-ignore`)",
				    problems.buf, nproblems > 8 ? "; …" : "");
	strbuf_release(&problems);
	return r;
}

/* ---- the layer ---- */

struct layer_sink {
	struct sha256 diff; /* of the uncompressed tar: the diff_id */
	z_stream z;
	struct blob_writer *w;
	uint64_t usize;
	struct kiln_error *err;
	unsigned char out[65536];
};

static int sink_deflate(struct layer_sink *s, const void *buf, size_t len, int flush)
{
	s->z.next_in = (unsigned char *)buf;
	s->z.avail_in = (uInt)len;
	do {
		s->z.next_out = s->out;
		s->z.avail_out = sizeof s->out;
		int zr = deflate(&s->z, flush);
		if (zr == Z_STREAM_ERROR)
			return kiln_error_make(&s->err, 0, "deflate failed");
		size_t have = sizeof s->out - s->z.avail_out;
		if (have && blob_writer_write(s->w, s->out, have, &s->err) < 0)
			return -1;
		if (flush == Z_FINISH && zr == Z_STREAM_END)
			return 0;
	} while (s->z.avail_out == 0 || (flush == Z_FINISH));
	return 0;
}

static la_ssize_t sink_write(struct archive *a, void *arg, const void *buf, size_t len)
{
	(void)a;
	struct layer_sink *s = arg;
	if (s->err)
		return -1;
	sha256_update(&s->diff, buf, len);
	s->usize += len;
	if (sink_deflate(s, buf, len, Z_NO_FLUSH) < 0)
		return -1;
	return (la_ssize_t)len;
}

static void archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

static void archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

static int write_entry(struct archive *a, const struct entry *e, int64_t epoch,
		       struct kiln_error **err)
{
	__attribute__((cleanup(archive_entry_freep))) struct archive_entry *ae = archive_entry_new();
	archive_entry_set_pathname(ae, e->path);
	archive_entry_set_mode(ae, e->mode);
	archive_entry_set_uid(ae, e->uid);
	archive_entry_set_gid(ae, e->gid);
	archive_entry_set_mtime(ae, epoch, 0);
	if (S_ISREG(e->mode))
		archive_entry_set_size(ae, (la_int64_t)e->size);
	else
		archive_entry_set_size(ae, 0);
	if (S_ISLNK(e->mode))
		archive_entry_set_symlink(ae, e->link);
	if (S_ISCHR(e->mode) || S_ISBLK(e->mode)) {
		archive_entry_set_rdevmajor(ae, e->rmajor);
		archive_entry_set_rdevminor(ae, e->rminor);
	}
	if (archive_write_header(a, ae) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "tar header of `%s`: %s", e->path,
				       archive_error_string(a));
	if (!S_ISREG(e->mode) || e->size == 0)
		return 0;
	cleanup_close int fd = open(e->src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", e->src);
	char buf[65536];
	uint64_t left = e->size;
	while (left) {
		ssize_t n = read(fd, buf, left < sizeof buf ? left : sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kiln_error_make(err, n < 0 ? errno : 0, "read `%s`: %s", e->src,
					       n < 0 ? "error" : "file shrank");
		if (archive_write_data(a, buf, (size_t)n) != n)
			return kiln_error_make(err, 0, "tar data of `%s`: %s", e->path,
					       archive_error_string(a));
		left -= (uint64_t)n;
	}
	return 0;
}

/* Writes T as one gzip layer into S.  DIFF_ID gets the digest of the tar,
 * DIGEST and SIZE those of the blob. */
static int write_layer(struct tree *t, struct store *s, int64_t epoch, char diff_id[DIGEST_STRLEN],
		       char digest[DIGEST_STRLEN], int64_t *size, uint64_t *usize,
		       struct kiln_error **err)
{
	struct layer_sink *sink = xcalloc(1, sizeof *sink);
	sink->w = store_blob_create(s, err);
	if (sink->w == NULL) {
		free(sink);
		return -1;
	}
	sha256_init(&sink->diff);
	/* windowBits 31: a gzip wrapper; zlib writes mtime 0, no name, OS 3. */
	if (deflateInit2(&sink->z, PKG_GZIP_LEVEL, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		blob_writer_abort(sink->w);
		sha256_abort(&sink->diff);
		free(sink);
		return kiln_error_make(err, 0, "deflateInit2 failed");
	}
	int r = 0;
	{
		__attribute__((cleanup(archive_write_freep))) struct archive *a = archive_write_new();
		archive_write_set_format_pax_restricted(a);
		archive_write_set_bytes_per_block(a, 10240);
		archive_write_set_bytes_in_last_block(a, 1);
		if (archive_write_open(a, sink, NULL, sink_write, NULL) != ARCHIVE_OK)
			r = kiln_error_make(err, 0, "tar: %s", archive_error_string(a));
		for (size_t i = 0; r == 0 && i < t->n; i++) {
			if (!*t->v[i].path)
				continue;
			r = write_entry(a, &t->v[i], epoch, err);
		}
		if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
			r = kiln_error_make(err, 0, "tar: %s", archive_error_string(a));
	}
	if (r == 0 && sink->err == NULL)
		sink_deflate(sink, NULL, 0, Z_FINISH);
	deflateEnd(&sink->z);
	if (sink->err) {
		if (r == 0 || (err && *err == NULL)) {
			kiln_error_release(err);
			*err = sink->err;
			sink->err = NULL;
		} else {
			kiln_error_release(&sink->err);
		}
		r = -1;
	}
	sha256_final_digest(&sink->diff, diff_id);
	*usize = sink->usize;
	if (r < 0) {
		blob_writer_abort(sink->w);
		free(sink);
		return -1;
	}
	*size = (int64_t)blob_writer_size(sink->w);
	r = blob_writer_commit(sink->w, NULL, digest, err);
	free(sink);
	return r;
}

static json_t *json_strv(const struct strv *v)
{
	json_t *a = json_array();
	for (size_t i = 0; i < v->n; i++)
		json_array_append_new(a, json_string(v->v[i]));
	return a;
}

static int put_json(struct store *s, json_t *doc, char digest[DIGEST_STRLEN], int64_t *size,
		    struct kiln_error **err)
{
	size_t len;
	cleanup_free char *text = oci_json_dump(doc, &len);
	*size = (int64_t)len;
	return store_put_blob(s, text, len, digest, err);
}

static json_t *image_config(const struct pkg *p, const char *diff_id, int64_t epoch)
{
	char created[64];
	time_t tt = (time_t)epoch;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_t *cfg = json_object();
	if (p->env.set)
		json_object_set_new(cfg, "Env", json_strv(&p->env));
	else
		json_object_set_new(
			cfg, "Env",
			json_pack("[s]", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
	if (p->entrypoint.set)
		json_object_set_new(cfg, "Entrypoint", json_strv(&p->entrypoint));
	if (p->cmd.set)
		json_object_set_new(cfg, "Cmd", json_strv(&p->cmd));
	if (p->workdir)
		json_object_set_new(cfg, "WorkingDir", json_string(p->workdir));
	if (p->user)
		json_object_set_new(cfg, "User", json_string(p->user));
	json_t *labels = json_deep_copy(p->labels);
	if (p->config) {
		size_t len;
		cleanup_free char *label = oci_json_dump(p->config, &len);
		json_object_set_new(labels, "org.mobyproject.config", json_string(label));
	}
	if (p->description)
		json_object_set_new(labels, "org.opencontainers.image.description",
				    json_string(p->description));
	json_object_set_new(cfg, "Labels", labels);
	return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:[s]}}", "architecture", "amd64", "os",
			 "linux", "created", created, "config", cfg, "rootfs", "type", "layers",
			 "diff_ids", diff_id);
}

/* ---- the build command ---- */

static int run_build(const struct pkg *p, const char *outdir, char *const *debs,
		     struct kiln_error **err)
{
	cleanup_free char *debs_env = NULL;
	struct strbuf sb = STRBUF_INIT;
	for (size_t i = 0; debs && debs[i]; i++)
		strbuf_printf(&sb, "%s%s", i ? " " : "", debs[i]);
	debs_env = strbuf_detach(&sb, NULL);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = '\0';
	log_verbose("%s: running %s", p->dir, p->build_cmd.v[0]);
	pid_t pid = fork();
	if (pid < 0)
		return kiln_error_make(err, errno, "fork");
	if (pid == 0) {
		if (chdir(p->dir) < 0)
			_exit(126);
		setenv("KILN_PKG_OUT", outdir, 1);
		setenv("KILN_PKG_DIR", p->dir, 1);
		setenv("KILN_BUILD_DEBS", debs_env, 1);
		if (*self)
			setenv("KILN", self, 1);
		char epoch[32];
		snprintf(epoch, sizeof epoch, "%lld", (long long)pkg_epoch());
		setenv("SOURCE_DATE_EPOCH", epoch, 1);
		dup2(2, 1); /* kiln's stdout carries results only */
		execvp(p->build_cmd.v[0], p->build_cmd.v);
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return kiln_error_make(err, errno, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		return kiln_error_make(err, 0, "%s: build: cannot run `%s`", p->yml_path,
				       p->build_cmd.v[0]);
	return kiln_error_make(err, 0, "%s: build command `%s` failed (%s %d)", p->yml_path,
			       p->build_cmd.v[0], WIFEXITED(status) ? "exit status" : "signal",
			       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
}

/* ---- pkg_build ---- */

void pkg_result_release(struct pkg_result *r)
{
	free(r->ref);
	free(r->store_name);
	memset(r, 0, sizeof *r);
}

static char *make_temp_dir(const char *what, struct kiln_error **err)
{
	const char *tmp = getenv("TMPDIR");
	char *t = xasprintf("%s/kiln-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
	if (mkdtemp(t) == NULL) {
		kiln_error_make(err, errno, "mkdtemp `%s`", t);
		free(t);
		return NULL;
	}
	return t;
}

static void remove_dir(char **dir)
{
	if (*dir) {
		struct kiln_error *ignored = NULL;
		rm_rf(*dir, &ignored);
		kiln_error_release(&ignored);
		free(*dir);
	}
}

static void strv_releasep(struct strv *s)
{
	strv_release(s);
}

/* What kiln pkg built under a store name: STORE/kiln-pkgs/<hex of SHA-256 of
 * the name> holds the manifest digest it tagged.  `kiln cache import` (or any
 * other tagger) can later put another image under the same name; the record
 * tells that apart from what these inputs build.  Caller frees. */
static char *built_record_path(struct store *s, const char *name)
{
	char h[DIGEST_STRLEN];
	sha256_digest(name, strlen(name), h);
	return xasprintf("%s/kiln-pkgs/%s", store_dir(s), h + strlen("sha256:"));
}

static int built_record_write(struct store *s, const char *name, const char *digest,
			      struct kiln_error **err)
{
	cleanup_free char *path = built_record_path(s, name);
	cleanup_free char *dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	cleanup_free char *line = xasprintf("%s\n", digest);
	if (mkdir_p(dir, 0755, err) < 0 ||
	    write_file_atomic(path, line, strlen(line), 0644, err) < 0)
		return kiln_error_wrap(err, "record the build of %s", name);
	return 0;
}

enum stored { STORED_ABSENT, STORED_BUILT, STORED_REPLACED };

/* Whether store S holds NAME (the package P's store name) as kiln pkg built
 * it: STORED_BUILT (DIGEST filled; also when no record exists: a store from
 * before the records, or an image pulled under the name), STORED_ABSENT, or
 * STORED_REPLACED (the name now holds another manifest than the recorded
 * one; said in one warning line), or -1 on error. */
static int stored_state(struct store *s, const struct pkg *p, const char *name,
			char digest[DIGEST_STRLEN], struct kiln_error **err)
{
	int k = store_lookup(s, name, digest, err);
	if (k <= 0)
		return k < 0 ? -1 : STORED_ABSENT;
	if (!store_has_blob(s, digest))
		return STORED_ABSENT;
	cleanup_free char *path = built_record_path(s, name);
	struct kiln_error *ignored = NULL;
	cleanup_free char *built = read_file(path, 256, NULL, &ignored);
	kiln_error_release(&ignored);
	if (built == NULL)
		return STORED_BUILT;
	built[strcspn(built, "\n")] = '\0';
	if (strcmp(built, digest) == 0)
		return STORED_BUILT;
	log_warn("%s: %s/%s:%s in the store is %s, not the %s kiln pkg built (replaced, e.g. by "
		 "kiln cache import): rebuilding",
		 p->dir, p->org, p->image, p->tag, digest, built);
	return STORED_REPLACED;
}

static int build_image(struct pkg *p, struct store *s, const struct pkg_build_options *o,
		       struct pkg_result *r, struct kiln_error **err)
{
	cleanup_free char *cache = p->deb_cache ? xstrdup(p->deb_cache)
				   : o && o->deb_cache ? xstrdup(o->deb_cache)
						       : deb_cache_dir(store_dir(s));
	__attribute__((cleanup(strv_releasep))) struct strv debs = {0}, build_debs = {0};
	for (size_t i = 0; i < p->debs.n; i++) {
		char *path = deb_fetch(&p->debinfo[i], cache, err);
		if (path == NULL)
			return -1;
		strv_push(&debs, path);
	}
	for (size_t i = 0; i < p->build_debs.n; i++) {
		char *path = deb_fetch(&p->build_debinfo[i], cache, err);
		if (path == NULL)
			return -1;
		strv_push(&build_debs, path);
	}
	__attribute__((cleanup(remove_dir))) char *outdir = NULL;
	if (p->build_cmd.n) {
		outdir = make_temp_dir("pkg-out", err);
		if (outdir == NULL || run_build(p, outdir, build_debs.v, err) < 0)
			return -1;
	}
	__attribute__((cleanup(tree_release))) struct tree t = {.p = p, .seq = 1};
	t.stage = make_temp_dir("pkg-stage", err);
	if (t.stage == NULL)
		return -1;
	for (size_t i = 0; i < debs.n; i++) {
		t.origin = debs.v[i];
		if (deb_unpack(debs.v[i], deb_entry, &t, err) < 0)
			return kiln_error_wrap(err, "deb %s", p->debinfo[i].name);
		if (add_deb_status(&t, debs.v[i], err) < 0)
			return kiln_error_wrap(err, "deb %s", p->debinfo[i].name);
	}
	for (size_t i = 0; p->record_build_debs && i < build_debs.n; i++)
		if (add_deb_status(&t, build_debs.v[i], err) < 0)
			return kiln_error_wrap(err, "deb %s", p->build_debinfo[i].name);
	if (add_files(&t, p, outdir, err) < 0)
		return -1;
	add_parents(&t);
	if (p->elfcheck && elf_check(&t, p, err) < 0)
		return -1;
	int64_t epoch = pkg_epoch();
	char diff_id[DIGEST_STRLEN], layer[DIGEST_STRLEN], cfg_digest[DIGEST_STRLEN];
	int64_t cfg_size, man_size;
	if (write_layer(&t, s, epoch, diff_id, layer, &r->layer_size, (uint64_t *)&r->layer_usize,
			err) < 0)
		return -1;
	r->nentries = t.n;
	cleanup_json json_t *cfg = image_config(p, diff_id, epoch);
	if (put_json(s, cfg, cfg_digest, &cfg_size, err) < 0)
		return -1;
	cleanup_json json_t *man = json_pack(
		"{s:i, s:s, s:{s:s, s:s, s:I}, s:[{s:s, s:s, s:I}]}", "schemaVersion", 2,
		"mediaType", OCI_MEDIA_MANIFEST, "config", "mediaType", OCI_MEDIA_CONFIG, "digest",
		cfg_digest, "size", (json_int_t)cfg_size, "layers", "mediaType",
		OCI_MEDIA_LAYER_GZIP, "digest", layer, "size", (json_int_t)r->layer_size);
	if (put_json(s, man, r->manifest_digest, &man_size, err) < 0)
		return -1;
	if (store_tag(s, r->store_name, r->manifest_digest, OCI_MEDIA_MANIFEST, man_size, err) < 0)
		return -1;
	if (built_record_write(s, r->store_name, r->manifest_digest, err) < 0)
		return -1;
	r->built = true;
	return 0;
}

int pkg_build(struct pkg *p, struct store *s, const struct pkg_build_options *o,
	      struct pkg_result *r, struct kiln_error **err)
{
	memset(r, 0, sizeof *r);
	if (p->deb_cache == NULL && p->tag == NULL)
		p->deb_cache = o && o->deb_cache ? xstrdup(o->deb_cache) : deb_cache_dir(store_dir(s));
	r->ref = pkg_ref(p, err);
	if (r->ref == NULL)
		return -1;
	r->store_name = pkg_store_name(p, err);
	if (r->store_name == NULL)
		goto fail;
	if (!(o && o->force)) {
		int k = stored_state(s, p, r->store_name, r->manifest_digest, err);
		if (k < 0)
			goto fail;
		if (k == STORED_BUILT)
			return 0;
	}
	if (build_image(p, s, o, r, err) < 0) {
		kiln_error_wrap(err, "pkg build %s", p->dir);
		goto fail;
	}
	return 0;
fail:
	pkg_result_release(r);
	return -1;
}

char *pkg_show_tag_ref(const char *dir, struct kiln_error **err)
{
	cleanup_pkg struct pkg *p = pkg_load(dir, err);
	if (p == NULL)
		return NULL;
	return pkg_ref(p, err);
}

char *pkg_ensure_built(struct store *s, const char *dir, struct kiln_error **err)
{
	cleanup_pkg struct pkg *p = pkg_load(dir, err);
	if (p == NULL)
		return NULL;
	cleanup_free char *name = pkg_store_name(p, err);
	if (name == NULL)
		return NULL;
	char digest[DIGEST_STRLEN];
	int k = stored_state(s, p, name, digest, err);
	if (k < 0)
		return NULL;
	if (k != STORED_BUILT) {
		if (k == STORED_ABSENT)
			log_info("building package %s as %s/%s:%s (not in the store)", dir, p->org,
				 p->image, p->tag);
		struct pkg_result r;
		/* Replaced: stored_state said so once; build without asking again. */
		struct pkg_build_options o = {.force = true};
		if (pkg_build(p, s, &o, &r, err) < 0)
			return NULL;
		log_info("built %s %s", r.ref, r.manifest_digest);
		pkg_result_release(&r);
	}
	return pkg_ref(p, err);
}
