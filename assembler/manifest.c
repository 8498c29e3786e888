/* The manifest: top-level schema (kernel, init, onboot, onshutdown,
 * services, files, volumes, trust), cross-entry checks (unique service and
 * volume names, image references), loading files and stdin, the multi-file
 * merge and the uid/gid name map. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manifest_internal.h"
#include "ref.h"
#include "util.h"

#define KEY_IS(k, s) ((k)->len == strlen(s) && strcmp((k)->value, (s)) == 0)
#define FOR_EACH_PAIR(node, k, v, i)                                                               \
	for (size_t i = 0; i + 1 < (node)->n; i += 2)                                              \
		for (const struct ynode *k = (node)->items[i], *v = (node)->items[i + 1]; k;       \
		     k = NULL, (void)v)

static struct manifest_pos pos_of(const struct ynode *n)
{
	return (struct manifest_pos){n->line, n->col};
}

static int check_ref(struct mctx *c, const struct ynode *n, const char *what, const char *s)
{
	struct image_ref ref;
	struct kiln_error *e = NULL;
	if (ref_parse(s, &ref, &e) < 0) {
		int r = mctx_fail(c, n, "%s: %s", what, e ? e->msg : "invalid image reference");
		kiln_error_release(&e);
		return r;
	}
	ref_release(&ref);
	return 0;
}

/* A container name becomes a directory name (containers/services/NAME). */
static int check_container_name(struct mctx *c, const struct ynode *n, const char *what,
				const char *name)
{
	if (name[0] == '\0')
		return mctx_fail(c, n, "%s: the name is empty", what);
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return mctx_fail(c, n, "%s: name \"%s\" is not a single path component", what,
				 name);
	for (const char *p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return mctx_fail(c, n, "%s: name contains a control character", what);
	return 0;
}

static int kernel_from_node(struct mctx *c, const struct ynode *n, struct manifest_kernel *k)
{
	if (mctx_expect(c, n, YNODE_MAPPING, "kernel") < 0)
		return -1;
	k->set = true;
	k->pos = pos_of(n);
	k->file = xstrdup(c->file);
	FOR_EACH_PAIR(n, key, v, i)
	{
		char **dst = KEY_IS(key, "image")     ? &k->image
			     : KEY_IS(key, "cmdline") ? &k->cmdline
			     : KEY_IS(key, "binary")  ? &k->binary
			     : KEY_IS(key, "tar")     ? &k->tar
			     : KEY_IS(key, "ucode")   ? &k->ucode
						      : NULL;
		if (dst == NULL)
			return mctx_fail(c, key, "unknown field \"%s\" in kernel", key->value);
		cleanup_free char *w = xasprintf("kernel.%s", key->value);
		if (mctx_string(c, v, w, dst) < 0)
			return -1;
		if (dst == &k->image && check_ref(c, v, w, k->image) < 0)
			return -1;
		if ((dst == &k->binary || dst == &k->ucode) && strstr(*dst, ".."))
			return mctx_fail(c, v, "%s: \"%s\" must not contain \"..\"", w, *dst);
	}
	return 0;
}

static int images_from_node(struct mctx *c, const struct ynode *n, const char *section,
			    struct manifest_image_list *out)
{
	if (mctx_expect(c, n, YNODE_SEQUENCE, section) < 0)
		return -1;
	out->v = xcalloc(n->n + 1, sizeof *out->v);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *m = n->items[i];
		cleanup_free char *w = xasprintf("%s[%zu]", section, i);
		if (mctx_expect(c, m, YNODE_MAPPING, w) < 0)
			return -1;
		struct manifest_image *e = &out->v[out->n++];
		e->file = xstrdup(c->file);
		e->pos = pos_of(m);
		c->entry = w;
		int r = image_config_from_node(c, m, &e->config, &e->name, &e->image, &e->image_pos);
		c->entry = NULL;
		if (r < 0)
			return -1;
		if (e->name == NULL)
			return mctx_fail(c, m, "%s: missing required field \"name\"", w);
		if (e->image == NULL)
			return mctx_fail(c, m, "%s: missing required field \"image\"", w);
		const struct ynode *name_node = m, *image_node = m;
		FOR_EACH_PAIR(m, k, v, j)
		{
			if (KEY_IS(k, "name"))
				name_node = v;
			if (KEY_IS(k, "image"))
				image_node = v;
		}
		if (check_container_name(c, name_node, w, e->name) < 0)
			return -1;
		cleanup_free char *wi = xasprintf("%s \"%s\": image", w, e->name);
		if (check_ref(c, image_node, wi, e->image) < 0)
			return -1;
	}
	return 0;
}

static int check_path(struct mctx *c, const struct ynode *n, const char *what, const char *path)
{
	if (path[0] == '\0')
		return mctx_fail(c, n, "%s: the path is empty", what);
	const char *p = path;
	while (*p == '/')
		p++;
	if (*p == '\0')
		return mctx_fail(c, n, "%s: path \"%s\" names the root directory", what, path);
	for (const char *s = p; *s;) {
		const char *e = strchrnul(s, '/');
		if (e - s == 2 && s[0] == '.' && s[1] == '.')
			return mctx_fail(c, n, "%s: path \"%s\" contains \"..\"", what, path);
		s = *e ? e + 1 : e;
	}
	return 0;
}

static int files_from_node(struct mctx *c, const struct ynode *n, struct manifest *m)
{
	if (mctx_expect(c, n, YNODE_SEQUENCE, "files") < 0)
		return -1;
	m->files = xcalloc(n->n + 1, sizeof *m->files);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *fn = n->items[i];
		cleanup_free char *w = xasprintf("files[%zu]", i);
		if (mctx_expect(c, fn, YNODE_MAPPING, w) < 0)
			return -1;
		struct manifest_file *f = &m->files[m->nfiles++];
		f->file = xstrdup(c->file);
		f->pos = pos_of(fn);
		const struct ynode *path_node = fn, *meta_node = fn;
		FOR_EACH_PAIR(fn, k, v, j)
		{
			cleanup_free char *fw = xasprintf("%s.%s", w, k->value);
			int r;
			if (KEY_IS(k, "path")) {
				path_node = v;
				r = mctx_string(c, v, fw, &f->path);
			} else if (KEY_IS(k, "directory")) {
				r = mctx_bool(c, v, fw, &f->directory);
			} else if (KEY_IS(k, "symlink")) {
				r = mctx_string(c, v, fw, &f->symlink);
			} else if (KEY_IS(k, "contents")) {
				r = mctx_string(c, v, fw, &f->contents);
			} else if (KEY_IS(k, "source")) {
				r = mctx_string(c, v, fw, &f->source);
			} else if (KEY_IS(k, "metadata")) {
				meta_node = v;
				r = mctx_string(c, v, fw, &f->metadata);
			} else if (KEY_IS(k, "optional")) {
				r = mctx_bool(c, v, fw, &f->optional);
			} else if (KEY_IS(k, "mode")) {
				r = mctx_mode(c, v, fw, &f->mode);
			} else if (KEY_IS(k, "uid")) {
				r = mctx_id(c, v, fw, &f->uid);
			} else if (KEY_IS(k, "gid")) {
				r = mctx_id(c, v, fw, &f->gid);
			} else {
				r = mctx_fail(c, k, "unknown field \"%s\" in %s", k->value, w);
			}
			if (r < 0)
				return -1;
		}
		if (f->path == NULL)
			return mctx_fail(c, fn, "%s: missing required field \"path\"", w);
		cleanup_free char *pw = xasprintf("%s.path", w);
		if (check_path(c, path_node, pw, f->path) < 0)
			return -1;
		/* LinuxKit treats an empty symlink/source/metadata as absent. */
		bool dir = f->directory.set && f->directory.value;
		bool link = f->symlink && f->symlink[0];
		bool src = f->source && f->source[0];
		bool meta = f->metadata && f->metadata[0];
		bool cont = f->contents != NULL;
		int kinds = dir + link + src + meta + cont;
		if (kinds == 0)
			return mctx_fail(c, fn,
					 "%s (%s): no contents: give one of contents, source, "
					 "metadata, symlink or directory: true",
					 w, f->path);
		if (kinds > 1) {
			const char *names[5];
			int nn = 0;
			if (dir)
				names[nn++] = "directory";
			if (link)
				names[nn++] = "symlink";
			if (cont)
				names[nn++] = "contents";
			if (src)
				names[nn++] = "source";
			if (meta)
				names[nn++] = "metadata";
			return mctx_fail(c, fn, "%s (%s): both %s and %s given; a file has exactly one "
						"of contents, source, metadata, symlink, directory",
					 w, f->path, names[0], names[1]);
		}
		if (meta && strcmp(f->metadata, "yaml") != 0 && strcmp(f->metadata, "json") != 0)
			return mctx_fail(c, meta_node, "%s.metadata: \"%s\" is not yaml or json", w,
					 f->metadata);
	}
	return 0;
}

static bool volume_name_ok(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
			return false;
	return true;
}

static int check_unique_volumes(const struct manifest *m, struct kiln_error **err);

static int volumes_from_node(struct mctx *c, const struct ynode *n, struct manifest *m)
{
	if (mctx_expect(c, n, YNODE_SEQUENCE, "volumes") < 0)
		return -1;
	m->volumes = xcalloc(n->n + 1, sizeof *m->volumes);
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *vn = n->items[i];
		cleanup_free char *w = xasprintf("volumes[%zu]", i);
		if (mctx_expect(c, vn, YNODE_MAPPING, w) < 0)
			return -1;
		struct manifest_volume *vol = &m->volumes[m->nvolumes++];
		vol->file = xstrdup(c->file);
		vol->pos = pos_of(vn);
		const struct ynode *name_node = vn;
		FOR_EACH_PAIR(vn, k, v, j)
		{
			cleanup_free char *fw = xasprintf("%s.%s", w, k->value);
			int r;
			if (KEY_IS(k, "name")) {
				name_node = v;
				r = mctx_string(c, v, fw, &vol->name);
			} else if (KEY_IS(k, "image")) {
				r = mctx_string(c, v, fw, &vol->image);
				if (r == 0 && vol->image[0])
					r = check_ref(c, v, fw, vol->image);
			} else if (KEY_IS(k, "readonly")) {
				r = mctx_bool(c, v, fw, &vol->readonly);
			} else if (KEY_IS(k, "format")) {
				r = mctx_string(c, v, fw, &vol->format);
				if (r == 0 && strcmp(vol->format, "oci") != 0 &&
				    strcmp(vol->format, "filesystem") != 0)
					r = mctx_fail(c, v, "%s: \"%s\" is not oci or filesystem", fw,
						      vol->format);
			} else if (KEY_IS(k, "platforms")) {
				r = mctx_strlist(c, v, fw, &vol->platforms);
				for (size_t p = 0; r == 0 && p < vol->platforms.n; p++) {
					const char *pl = vol->platforms.v[p];
					const char *slash = strchr(pl, '/');
					if (slash == NULL || slash == pl || slash[1] == '\0' ||
					    slash[1] == '/')
						r = mctx_fail(c, v->items[p],
							      "%s: \"%s\" is not os/arch[/variant]", fw,
							      pl);
				}
			} else {
				r = mctx_fail(c, k, "unknown field \"%s\" in %s", k->value, w);
			}
			if (r < 0)
				return -1;
		}
		if (vol->name == NULL)
			vol->name = xstrdup("");
		if (!volume_name_ok(vol->name))
			return mctx_fail(c, name_node,
					 "%s: invalid volume name \"%s\" (allowed: a-z 0-9 _ -)", w,
					 vol->name);
		if (vol->name[0] == '\0')
			return mctx_fail(c, name_node, "%s: the volume name is empty", w);
	}
	return check_unique_volumes(m, c->err);
}

static int trust_from_node(struct mctx *c, const struct ynode *n, struct manifest *m)
{
	if (mctx_expect(c, n, YNODE_MAPPING, "trust") < 0)
		return -1;
	m->has_trust = true;
	FOR_EACH_PAIR(n, k, v, i)
	{
		if (!KEY_IS(k, "image") && !KEY_IS(k, "org"))
			return mctx_fail(c, k, "unknown field \"%s\" in trust", k->value);
		struct manifest_strlist l = {0};
		cleanup_free char *w = xasprintf("trust.%s", k->value);
		int r = mctx_strlist(c, v, w, &l);
		manifest_strlist_release(&l);
		if (r < 0)
			return -1;
	}
	return 0;
}

static int name_index_compare(const void *x, const void *y, void *data)
{
	const char *const *names = data;
	size_t i = *(const size_t *)x, j = *(const size_t *)y;
	int c = strcmp(names[i], names[j]);
	if (c != 0)
		return c;
	return i < j ? -1 : i > j;
}

/* The index of the first of NAMES (in order) equal to an earlier one, or
 * SIZE_MAX; *FIRST gets the earlier one.  O(n log n) for hostile sizes. */
static size_t first_duplicate(const char *const *names, size_t n, size_t *first)
{
	size_t dup = SIZE_MAX;
	if (n < 2)
		return dup;
	size_t *idx = xmalloc(n * sizeof *idx);
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	qsort_r(idx, n, sizeof *idx, name_index_compare, (void *)names);
	for (size_t i = 1; i < n; i++)
		if (strcmp(names[idx[i - 1]], names[idx[i]]) == 0 && idx[i] < dup) {
			dup = idx[i];
			size_t j = i - 1;
			while (j > 0 && strcmp(names[idx[j - 1]], names[idx[i]]) == 0)
				j--;
			*first = idx[j];
		}
	free(idx);
	return dup;
}

static int check_unique_services(const struct manifest *m, struct kiln_error **err)
{
	const char **names = xcalloc(m->services.n + 1, sizeof *names);
	for (size_t i = 0; i < m->services.n; i++)
		names[i] = m->services.v[i].name;
	size_t first = 0, dup = first_duplicate(names, m->services.n, &first);
	free(names);
	if (dup == SIZE_MAX)
		return 0;
	const struct manifest_image *a = &m->services.v[first], *b = &m->services.v[dup];
	return kiln_error_make(err, 0, "%s:%u:%u: duplicate service name \"%s\" (first at %s:%u)",
			       b->file, b->pos.line, b->pos.col, b->name, a->file, a->pos.line);
}

static int check_unique_volumes(const struct manifest *m, struct kiln_error **err)
{
	const char **names = xcalloc(m->nvolumes + 1, sizeof *names);
	for (size_t i = 0; i < m->nvolumes; i++)
		names[i] = m->volumes[i].name;
	size_t first = 0, dup = first_duplicate(names, m->nvolumes, &first);
	free(names);
	if (dup == SIZE_MAX)
		return 0;
	const struct manifest_volume *a = &m->volumes[first], *b = &m->volumes[dup];
	return kiln_error_make(err, 0, "%s:%u:%u: duplicate volume name \"%s\" (first at %s:%u)",
			       b->file, b->pos.line, b->pos.col, b->name, a->file, a->pos.line);
}

static int manifest_from_root(struct mctx *c, const struct ynode *root, struct manifest *m)
{
	if (root->kind != YNODE_MAPPING)
		return mctx_fail(c, root, "a manifest is a mapping (kernel:, init:, …), not %s",
				 root->kind == YNODE_SEQUENCE ? "a list" : "a scalar");
	FOR_EACH_PAIR(root, k, v, i)
	{
		int r;
		if (KEY_IS(k, "kernel")) {
			r = kernel_from_node(c, v, &m->kernel);
		} else if (KEY_IS(k, "init")) {
			r = mctx_expect(c, v, YNODE_SEQUENCE, "init");
			if (r == 0)
				m->init = xcalloc(v->n + 1, sizeof *m->init);
			for (size_t j = 0; r == 0 && j < v->n; j++) {
				struct manifest_init *e = &m->init[m->ninit++];
				cleanup_free char *w = xasprintf("init[%zu]", j);
				e->file = xstrdup(c->file);
				e->pos = pos_of(v->items[j]);
				r = mctx_string(c, v->items[j], w, &e->image);
				if (r == 0)
					r = check_ref(c, v->items[j], w, e->image);
			}
		} else if (KEY_IS(k, "onboot")) {
			r = images_from_node(c, v, "onboot", &m->onboot);
		} else if (KEY_IS(k, "onshutdown")) {
			r = images_from_node(c, v, "onshutdown", &m->onshutdown);
		} else if (KEY_IS(k, "services")) {
			r = images_from_node(c, v, "services", &m->services);
		} else if (KEY_IS(k, "files")) {
			r = files_from_node(c, v, m);
		} else if (KEY_IS(k, "volumes")) {
			r = volumes_from_node(c, v, m);
		} else if (KEY_IS(k, "trust")) {
			r = trust_from_node(c, v, m);
		} else {
			r = mctx_fail(c, k,
				      "unknown top-level field \"%s\" (expected kernel, init, onboot, "
				      "onshutdown, services, files, volumes or trust)",
				      k->value);
		}
		if (r < 0)
			return -1;
	}
	return check_unique_services(m, c->err);
}

static char *output_name(const char *filename)
{
	if (strcmp(filename, "-") == 0)
		return xstrdup("moby");
	const char *base = strrchr(filename, '/');
	base = base ? base + 1 : filename;
	size_t len = strlen(base);
	if (str_has_suffix(base, ".yml"))
		len -= 4;
	else if (str_has_suffix(base, ".yaml"))
		len -= 5;
	return xstrndup(base, len);
}

struct manifest *manifest_parse(const char *text, size_t len, const char *filename,
				const char *base_dir, const struct manifest_parse_options *opts,
				struct kiln_error **err)
{
	struct ytree tree;
	if (ytree_parse(&tree, text, len, filename, err) < 0)
		return NULL;
	cleanup_free char *dir = NULL;
	if (base_dir == NULL) {
		cleanup_free char *copy = xstrdup(filename);
		dir = xstrdup(strcmp(filename, "-") == 0 ? "." : dirname(copy));
		base_dir = dir;
	}
	struct mctx c = {.file = filename, .base_dir = base_dir, .opts = opts, .err = err};
	struct manifest *m = xcalloc(1, sizeof *m);
	m->name = output_name(filename);
	int r;
	if (tree.root == NULL || (tree.root->kind == YNODE_SCALAR && tree.root->type == YS_NULL))
		r = kiln_error_make(err, 0, "%s:1:1: empty manifest (no YAML document)", filename);
	else
		r = manifest_from_root(&c, tree.root, m);
	ytree_release(&tree);
	if (r < 0) {
		manifest_error_one_line(err);
		manifest_free(m);
		return NULL;
	}
	return m;
}

struct manifest *manifest_load(const char *path, const struct manifest_parse_options *opts,
			       struct kiln_error **err)
{
	size_t len = 0;
	cleanup_free char *text = NULL;
	struct kiln_error *e = NULL;
	if (strcmp(path, "-") == 0)
		text = read_fd(STDIN_FILENO, MANIFEST_MAX_SIZE, &len, &e);
	else
		text = read_file(path, MANIFEST_MAX_SIZE, &len, &e);
	if (text == NULL) {
		int status = e ? e->status : EIO;
		kiln_error_release(&e);
		if (status == EFBIG)
			kiln_error_make(err, 0, "%s:1:1: input larger than the %u bytes allowed", path,
					MANIFEST_MAX_SIZE);
		else
			kiln_error_make(err, status, "cannot read %s", path);
		return NULL;
	}
	return manifest_parse(text, len, path, NULL, opts, err);
}

static void image_list_release(struct manifest_image_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].name);
		free(l->v[i].image);
		free(l->v[i].file);
		image_config_release(&l->v[i].config);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

void manifest_free(struct manifest *m)
{
	if (m == NULL)
		return;
	struct manifest_kernel *k = &m->kernel;
	free(k->image);
	free(k->cmdline);
	free(k->binary);
	free(k->tar);
	free(k->ucode);
	free(k->file);
	for (size_t i = 0; i < m->ninit; i++) {
		free(m->init[i].image);
		free(m->init[i].file);
	}
	free(m->init);
	image_list_release(&m->onboot);
	image_list_release(&m->onshutdown);
	image_list_release(&m->services);
	for (size_t i = 0; i < m->nfiles; i++) {
		struct manifest_file *f = &m->files[i];
		free(f->path);
		free(f->symlink);
		free(f->contents);
		free(f->source);
		free(f->metadata);
		free(f->uid.name);
		free(f->gid.name);
		free(f->file);
	}
	free(m->files);
	for (size_t i = 0; i < m->nvolumes; i++) {
		struct manifest_volume *v = &m->volumes[i];
		free(v->name);
		free(v->image);
		free(v->format);
		manifest_strlist_release(&v->platforms);
		free(v->file);
	}
	free(m->volumes);
	free(m->name);
	free(m);
}

void manifest_freep(struct manifest **m)
{
	manifest_free(*m);
	*m = NULL;
}

/* Moves SRC's elements to the end of DST (arrays of N and SN elements). */
#define APPEND_ARRAY(dst, dn, src, sn)                                                             \
	do {                                                                                       \
		(dst) = xrealloc((dst), ((dn) + (sn) + 1) * sizeof *(dst));                        \
		if (sn)                                                                            \
			memcpy((dst) + (dn), (src), (sn) * sizeof *(dst));                         \
		(dn) += (sn);                                                                      \
		free(src);                                                                         \
		(src) = NULL;                                                                      \
		(sn) = 0;                                                                          \
	} while (0)

static void replace_str(char **dst, char **src, bool nonempty_only)
{
	if (*src == NULL || (nonempty_only && (*src)[0] == '\0'))
		return;
	free(*dst);
	*dst = *src;
	*src = NULL;
}

int manifest_append(struct manifest *dst, struct manifest *src, struct kiln_error **err)
{
	struct manifest_kernel *dk = &dst->kernel, *sk = &src->kernel;
	if (sk->set) {
		if (!dk->set) {
			dk->set = true;
			dk->pos = sk->pos;
			free(dk->file);
			dk->file = xstrdup(sk->file);
		}
		replace_str(&dk->image, &sk->image, true);
		replace_str(&dk->cmdline, &sk->cmdline, true);
		replace_str(&dk->binary, &sk->binary, true);
		replace_str(&dk->tar, &sk->tar, false);
		replace_str(&dk->ucode, &sk->ucode, false);
	}
	APPEND_ARRAY(dst->init, dst->ninit, src->init, src->ninit);
	APPEND_ARRAY(dst->onboot.v, dst->onboot.n, src->onboot.v, src->onboot.n);
	APPEND_ARRAY(dst->onshutdown.v, dst->onshutdown.n, src->onshutdown.v, src->onshutdown.n);
	APPEND_ARRAY(dst->services.v, dst->services.n, src->services.v, src->services.n);
	APPEND_ARRAY(dst->files, dst->nfiles, src->files, src->nfiles);
	APPEND_ARRAY(dst->volumes, dst->nvolumes, src->volumes, src->nvolumes);
	dst->has_trust |= src->has_trust;
	free(dst->name);
	dst->name = src->name;
	src->name = NULL;
	manifest_free(src);
	if (check_unique_volumes(dst, err) < 0 || check_unique_services(dst, err) < 0) {
		manifest_error_one_line(err);
		return -1;
	}
	return 0;
}

/* The container names sorted, for O(log n) lookups while validating. */
struct name_index {
	size_t n;
	const char **names;
	size_t nvolumes;
	const struct manifest_volume **volumes; /* sorted by name */
};

static int volume_ptr_compare(const void *a, const void *b)
{
	return strcmp((*(const struct manifest_volume *const *)a)->name,
		      (*(const struct manifest_volume *const *)b)->name);
}

static int str_ptr_compare(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void name_index_build(struct name_index *ix, const struct manifest *m)
{
	const struct manifest_image_list *lists[] = {&m->onboot, &m->onshutdown, &m->services};
	ix->n = 0;
	ix->names = xcalloc(m->onboot.n + m->onshutdown.n + m->services.n + 1, sizeof *ix->names);
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
		for (size_t i = 0; i < lists[l]->n; i++)
			ix->names[ix->n++] = lists[l]->v[i].name;
	qsort(ix->names, ix->n, sizeof *ix->names, str_ptr_compare);
	ix->nvolumes = m->nvolumes;
	ix->volumes = xcalloc(m->nvolumes + 1, sizeof *ix->volumes);
	for (size_t i = 0; i < m->nvolumes; i++)
		ix->volumes[i] = &m->volumes[i];
	qsort(ix->volumes, ix->nvolumes, sizeof *ix->volumes, volume_ptr_compare);
}

static int check_id(const struct name_index *ix, const char *file, const struct manifest_pos *epos,
		    const char *what, const struct manifest_id *id, struct kiln_error **err)
{
	if (!id->set || id->name == NULL || id->name[0] == '\0' || strcmp(id->name, "root") == 0)
		return 0;
	if (bsearch(&id->name, ix->names, ix->n, sizeof *ix->names, str_ptr_compare))
		return 0;
	const struct manifest_pos *p = id->pos.line ? &id->pos : epos;
	return kiln_error_make(err, 0,
			       "%s:%u:%u: %s: cannot find id: %s (no onboot, onshutdown or service "
			       "container has that name)",
			       file, p->line, p->col, what, id->name);
}

static const struct manifest_volume *volume_named(const struct name_index *ix, const char *name)
{
	struct manifest_volume key = {.name = (char *)name};
	const struct manifest_volume *kp = &key;
	const struct manifest_volume *const *r =
		bsearch(&kp, ix->volumes, ix->nvolumes, sizeof *ix->volumes, volume_ptr_compare);
	return r ? *r : NULL;
}

/* A bind "src:dst[:opts]" whose SRC is a volume name. */
static int check_volume_bind(const struct name_index *ix, const struct manifest_image *e,
			     const char *what, const char *bind, struct kiln_error **err)
{
	if (bind[0] == '/')
		return 0;
	const char *colon = strchr(bind, ':');
	cleanup_free char *src = xstrndup(bind, colon ? (size_t)(colon - bind) : strlen(bind));
	const struct manifest_volume *v = volume_named(ix, src);
	if (v == NULL)
		return kiln_error_make(err, 0, "%s:%u:%u: %s \"%s\": %s: volume \"%s\" not found",
				       e->file, e->pos.line, e->pos.col, what, e->name, bind, src);
	const char *opts = colon ? strchr(colon + 1, ':') : NULL;
	if (v->readonly.set && v->readonly.value && (opts == NULL || strcmp(opts + 1, "ro") != 0))
		return kiln_error_make(err, 0,
				       "%s:%u:%u: %s \"%s\": %s: volume \"%s\" is read-only, but "
				       "is bound read-write (add :ro)",
				       e->file, e->pos.line, e->pos.col, what, e->name, bind, src);
	return 0;
}

static int validate_entry(const struct name_index *ix,
			  const char *section, size_t i, const struct manifest_image *e,
			  struct kiln_error **err)
{
	const struct image_config *c = &e->config;
	cleanup_free char *w = xasprintf("%s[%zu]", section, i);
	if (check_id(ix, e->file, &e->pos, "uid", &c->uid, err) < 0 ||
	    check_id(ix, e->file, &e->pos, "gid", &c->gid, err) < 0)
		return -1;
	for (size_t j = 0; j < c->additional_gids.n; j++)
		if (check_id(ix, e->file, &e->pos, "additionalGids", &c->additional_gids.v[j], err) < 0)
			return -1;
	for (size_t j = 0; j < c->binds.n; j++)
		if (check_volume_bind(ix, e, w, c->binds.v[j], err) < 0)
			return -1;
	for (size_t j = 0; j < c->binds_add.n; j++)
		if (check_volume_bind(ix, e, w, c->binds_add.v[j], err) < 0)
			return -1;
	for (size_t j = 0; j < c->mounts.n; j++) {
		const struct manifest_mount *mt = &c->mounts.v[j];
		if (mt->type == NULL || strcmp(mt->type, "bind") != 0 || mt->source == NULL ||
		    mt->source[0] == '/')
			continue;
		const struct manifest_volume *v = volume_named(ix, mt->source);
		if (v == NULL)
			return kiln_error_make(err, 0,
					       "%s:%u:%u: %s \"%s\": mounts[%zu]: volume \"%s\" not found",
					       e->file, e->pos.line, e->pos.col, w, e->name, j,
					       mt->source);
		bool ro = false;
		for (size_t k = 0; k < mt->options.n; k++) {
			if (strcmp(mt->options.v[k], "rw") == 0)
				break;
			if (strcmp(mt->options.v[k], "ro") == 0) {
				ro = true;
				break;
			}
		}
		if (v->readonly.set && v->readonly.value && !ro)
			return kiln_error_make(err, 0,
					       "%s:%u:%u: %s \"%s\": mounts[%zu]: volume \"%s\" is "
					       "read-only, but is mounted read-write (add ro)",
					       e->file, e->pos.line, e->pos.col, w, e->name, j,
					       mt->source);
	}
	return 0;
}

int manifest_validate(const struct manifest *m, struct kiln_error **err)
{
	const struct {
		const char *name;
		const struct manifest_image_list *l;
	} sections[] = {{"onboot", &m->onboot}, {"onshutdown", &m->onshutdown},
			{"services", &m->services}};
	struct name_index ix;
	name_index_build(&ix, m);
	int r = 0;
	for (size_t s = 0; r == 0 && s < ARRAY_SIZE(sections); s++)
		for (size_t i = 0; r == 0 && i < sections[s].l->n; i++)
			r = validate_entry(&ix, sections[s].name, i, &sections[s].l->v[i], err);
	for (size_t i = 0; r == 0 && i < m->nfiles; i++) {
		const struct manifest_file *f = &m->files[i];
		if (check_id(&ix, f->file, &f->pos, "uid", &f->uid, err) < 0 ||
		    check_id(&ix, f->file, &f->pos, "gid", &f->gid, err) < 0)
			r = -1;
	}
	free(ix.names);
	free(ix.volumes);
	if (r < 0)
		manifest_error_one_line(err);
	return r;
}

struct manifest *manifest_load_files(char *const *paths, size_t n,
				     const struct manifest_parse_options *opts,
				     struct kiln_error **err)
{
	if (n == 0) {
		kiln_error_make(err, 0, "no manifest file given");
		return NULL;
	}
	struct manifest *m = manifest_load(paths[0], opts, err);
	if (m == NULL)
		return NULL;
	for (size_t i = 1; i < n; i++) {
		struct manifest *next = manifest_load(paths[i], opts, err);
		if (next == NULL || manifest_append(m, next, err) < 0) {
			manifest_free(m);
			return NULL;
		}
	}
	if (manifest_validate(m, err) < 0) {
		manifest_free(m);
		return NULL;
	}
	return m;
}

/* ------------------------------------------------------------ uid/gid map */

static int find_id(const struct manifest *m, const char *name, uint32_t *out)
{
	uint32_t id = 100;
	const struct manifest_image_list *lists[] = {&m->onboot, &m->onshutdown, &m->services};
	int found = 0;
	for (size_t l = 0; l < ARRAY_SIZE(lists); l++)
		for (size_t i = 0; i < lists[l]->n; i++, id++)
			if (strcmp(lists[l]->v[i].name, name) == 0) {
				/* LinuxKit's map keeps the last entry of a repeated name */
				*out = id;
				found = 1;
			}
	return found;
}

int manifest_resolve_id(const struct manifest *m, const char *name_or_number, uint32_t *out,
			struct kiln_error **err)
{
	const char *s = name_or_number;
	if (s == NULL || s[0] == '\0' || strcmp(s, "root") == 0) {
		*out = 0;
		return 0;
	}
	if (strspn(s, "0123456789") == strlen(s)) {
		uint64_t v;
		if (parse_u64(s, 10, &v) < 0 || v > UINT32_MAX)
			return kiln_error_make(err, 0, "id %s is out of range", s);
		*out = (uint32_t)v;
		return 0;
	}
	if (find_id(m, s, out))
		return 0;
	return kiln_error_make(err, 0, "cannot find id: %s (no onboot, onshutdown or service "
				       "container has that name)",
			       s);
}

int manifest_id_resolve(const struct manifest *m, const struct manifest_id *id, uint32_t *out,
			struct kiln_error **err)
{
	if (!id->set) {
		*out = 0;
		return 0;
	}
	if (id->name == NULL) {
		*out = id->number;
		return 0;
	}
	if (id->name[0] == '\0' || strcmp(id->name, "root") == 0) {
		*out = 0;
		return 0;
	}
	if (find_id(m, id->name, out))
		return 0;
	return kiln_error_make(err, 0, "cannot find id: %s (no onboot, onshutdown or service "
				       "container has that name)",
			       id->name);
}
