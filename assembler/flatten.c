/* See flatten.h for the model.  Layers are numbered here in processing
 * order: 0 is the top layer.  Node fields store that number + 1 so that a
 * zeroed node means "nothing known". */
#include "flatten.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pathsafe.h"
#include "util.h"

struct node {
	int32_t entry;	     /* layer that put the visible entry here */
	int32_t wh;	     /* layer whose whiteout removed this path from the layers below */
	int32_t opq;	     /* layer whose opaque marker hides the lower children */
	int32_t hidden;	     /* last layer in which a non-directory here was hidden */
	int32_t alias_layer; /* layer whose hidden file's data went out under ALIAS */
	uint8_t type;	     /* pathsafe_type of the visible entry */
	uint8_t implicit;    /* a synthesized parent directory */
	uint8_t emitted;     /* the entry is in the output stream already */
	char *alias;	     /* unprefixed output name carrying the hidden file's data */
};

/* Hard links waiting for their target to be emitted. */
struct pending {
	size_t layer; /* manifest index of the layer of the first link */
	size_t n;
	char **links; /* cleaned link names */
};

struct reread {
	char *target;
	char *link;
};

struct state {
	const struct flatten_options *o;
	const struct flatten_layer *layers;
	size_t nlayers;
	size_t li;	    /* current layer, processing order */
	size_t layer_index; /* current layer, manifest order (for messages) */
	struct pathmap *nodes;
	struct pathmap *pending;
	size_t npending;
	struct reread *rereads;
	size_t nrereads;
	uint64_t max_size;
};

static struct node *node_get(struct state *st, const char *p, size_t len)
{
	return pathmap_get(st->nodes, p, len);
}

static struct node *node_put(struct state *st, const char *p, size_t len)
{
	return pathmap_put(st->nodes, p, len, NULL);
}

static enum pathsafe_type lookup(void *ctx, const char *path, size_t len)
{
	struct node *n = node_get(ctx, path, len);
	return n && n->entry ? (enum pathsafe_type)n->type : PATHSAFE_ABSENT;
}

static enum pathsafe_type entry_type(struct archive_entry *e)
{
	switch (archive_entry_filetype(e)) {
	case AE_IFDIR:
		return PATHSAFE_DIR;
	case AE_IFLNK:
		return PATHSAFE_SYMLINK;
	default:
		return PATHSAFE_OTHER;
	}
}

static int layer_error(struct state *st, struct kiln_error **err, const char *entry)
{
	const struct flatten_layer *l = &st->layers[st->layer_index];
	if (entry)
		kiln_error_wrap(err, "entry `%s`", entry);
	return kiln_error_wrap(err, "image %s: layer %zu (%s)", st->o->image ? st->o->image : "?",
			       st->layer_index, l->digest ? l->digest : l->path);
}

/* Is an entry of the current layer at CLEAN hidden by what higher layers did? */
static bool is_hidden(struct state *st, const char *clean, bool is_dir)
{
	int32_t li = (int32_t)st->li;
	size_t len = strlen(clean);
	struct node *n = node_get(st, clean, len);
	if (n) {
		if (n->entry && n->entry - 1 < li && !(n->implicit && is_dir))
			return true;
		if (n->wh && n->wh - 1 < li)
			return true;
	}
	for (const char *s = strchr(clean, '/'); s; s = strchr(s + 1, '/')) {
		struct node *a = node_get(st, clean, (size_t)(s - clean));
		if (!a)
			continue;
		if (a->entry && a->entry - 1 < li && a->type != PATHSAFE_DIR)
			return true;
		if ((a->wh && a->wh - 1 < li) || (a->opq && a->opq - 1 < li))
			return true;
	}
	return false;
}

static char *prefixed(struct state *st, const char *clean)
{
	return xasprintf("%s%s", st->o->prefix ? st->o->prefix : "", clean);
}

static int call_emit(struct state *st, struct archive_entry *e, const char *clean, const char *link,
		     struct archive *data, struct kiln_error **err)
{
	cleanup_free char *name = prefixed(st, clean);
	archive_entry_set_pathname(e, name);
	if (link) {
		cleanup_free char *l = prefixed(st, link);
		archive_entry_set_hardlink(e, l);
		archive_entry_set_size(e, 0);
	} else {
		archive_entry_set_hardlink(e, NULL);
	}
	archive_entry_set_uname(e, NULL);
	archive_entry_set_gname(e, NULL);
	bool has_data = !link && archive_entry_filetype(e) == AE_IFREG && archive_entry_size(e) > 0;
	return st->o->emit(st->o->ctx, e, has_data ? data : NULL, err);
}

/* Emits a synthesized directory for every parent of CLEAN not emitted yet. */
static int ensure_parents(struct state *st, const char *clean, struct kiln_error **err)
{
	for (const char *s = strchr(clean, '/'); s; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - clean);
		struct node *a = node_get(st, clean, len);
		if (a && a->entry && a->emitted)
			continue;
		cleanup_free char *dir = xstrndup(clean, len);
		struct archive_entry *d = archive_entry_new();
		archive_entry_set_filetype(d, AE_IFDIR);
		archive_entry_set_perm(d, 0755);
		archive_entry_set_mtime(d, st->o->epoch, 0);
		int r = call_emit(st, d, dir, NULL, NULL, err);
		archive_entry_free(d);
		if (r < 0)
			return -1;
		a = node_put(st, clean, len);
		a->entry = (int32_t)st->li + 1;
		a->type = PATHSAFE_DIR;
		a->implicit = 1;
		a->emitted = 1;
	}
	return 0;
}

static void pending_add(struct state *st, const char *target, const char *link)
{
	struct pending *p = pathmap_put(st->pending, target, strlen(target), NULL);
	if (!p->n)
		p->layer = st->layer_index;
	p->links = xrealloc(p->links, (p->n + 1) * sizeof(*p->links));
	p->links[p->n++] = xstrdup(link);
	st->npending++;
}

/* CLEAN was just emitted: links waiting for it follow as hard links. */
static int resolve_pending(struct state *st, const char *clean, struct kiln_error **err)
{
	if (!st->npending)
		return 0;
	struct pending *p = pathmap_get(st->pending, clean, strlen(clean));
	if (!p || !p->n)
		return 0;
	size_t n = p->n;
	char **links = p->links;
	p->n = 0;
	p->links = NULL;
	st->npending -= n;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_filetype(e, AE_IFREG);
		archive_entry_set_perm(e, 0644);
		archive_entry_set_mtime(e, st->o->epoch, 0);
		r = ensure_parents(st, links[i], err);
		if (r == 0)
			r = call_emit(st, e, links[i], clean, NULL, err);
		archive_entry_free(e);
		if (r == 0) {
			struct node *ln = node_put(st, links[i], strlen(links[i]));
			ln->emitted = 1;
			r = resolve_pending(st, links[i], err);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(links[i]);
	free(links);
	return r;
}

/* The data of a hidden file goes out under the first name in LINKS (made a
 * regular file); the others become hard links to it. */
static int materialize(struct state *st, struct archive_entry *e, struct archive *a,
		       const char *hidden_path, char **links, size_t n, struct kiln_error **err)
{
	if (ensure_parents(st, links[0], err) < 0)
		return -1;
	if (call_emit(st, e, links[0], NULL, a, err) < 0)
		return -1;
	struct node *first = node_put(st, links[0], strlen(links[0]));
	first->emitted = 1;
	struct node *h = node_put(st, hidden_path, strlen(hidden_path));
	free(h->alias);
	h->alias = xstrdup(links[0]);
	h->alias_layer = (int32_t)st->li + 1;
	if (resolve_pending(st, links[0], err) < 0)
		return -1;
	for (size_t i = 1; i < n; i++) {
		struct archive_entry *l = archive_entry_new();
		archive_entry_set_filetype(l, AE_IFREG);
		archive_entry_set_perm(l, 0644);
		int r = ensure_parents(st, links[i], err);
		if (r == 0)
			r = call_emit(st, l, links[i], links[0], NULL, err);
		archive_entry_free(l);
		if (r < 0)
			return -1;
		node_put(st, links[i], strlen(links[i]))->emitted = 1;
		if (resolve_pending(st, links[i], err) < 0)
			return -1;
	}
	return 0;
}

static int check_size(struct state *st, struct archive_entry *e, struct kiln_error **err)
{
	if (archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) > st->max_size)
		return kiln_error_make(err, EFBIG, "size %lld exceeds the limit of %llu bytes",
				       (long long)archive_entry_size(e),
				       (unsigned long long)st->max_size);
	return 0;
}

/* A hidden non-directory: remember it (same-layer hard links may need its
 * data) and give its data to links waiting from higher layers. */
static int on_hidden(struct state *st, struct archive_entry *e, struct archive *a,
		     const char *clean, struct kiln_error **err)
{
	if (archive_entry_filetype(e) == AE_IFDIR || archive_entry_hardlink(e))
		return 0;
	struct node *n = node_put(st, clean, strlen(clean));
	n->hidden = (int32_t)st->li + 1;
	if (!st->npending)
		return 0;
	struct pending *p = pathmap_get(st->pending, clean, strlen(clean));
	if (!p || !p->n)
		return 0;
	if (check_size(st, e, err) < 0)
		return -1;
	size_t cnt = p->n;
	char **links = p->links;
	p->n = 0;
	p->links = NULL;
	st->npending -= cnt;
	int r = materialize(st, e, a, clean, links, cnt, err);
	for (size_t i = 0; i < cnt; i++)
		free(links[i]);
	free(links);
	return r;
}

static int on_hardlink(struct state *st, struct archive_entry *e, const char *clean,
		       const char *target, struct kiln_error **err)
{
	int32_t me = (int32_t)st->li + 1;
	struct node *t = node_get(st, target, strlen(target));
	struct node *n = node_put(st, clean, strlen(clean));
	n->entry = me;
	n->type = PATHSAFE_OTHER;
	n->implicit = 0;
	if (t && t->entry == me && t->type != PATHSAFE_DIR && t->emitted) {
		if (ensure_parents(st, clean, err) < 0)
			return -1;
		if (call_emit(st, e, clean, target, NULL, err) < 0)
			return -1;
		n = node_get(st, clean, strlen(clean));
		n->emitted = 1;
		return resolve_pending(st, clean, err);
	}
	if (t && t->alias && t->alias_layer == me) {
		if (ensure_parents(st, clean, err) < 0)
			return -1;
		if (call_emit(st, e, clean, t->alias, NULL, err) < 0)
			return -1;
		node_get(st, clean, strlen(clean))->emitted = 1;
		return resolve_pending(st, clean, err);
	}
	if (t && t->hidden == me) {
		st->rereads = xrealloc(st->rereads, (st->nrereads + 1) * sizeof(*st->rereads));
		st->rereads[st->nrereads++] = (struct reread){xstrdup(target), xstrdup(clean)};
		return 0;
	}
	pending_add(st, target, clean);
	return 0;
}

/* Handles one entry of the current layer. */
static int on_entry(struct state *st, struct archive *a, struct archive_entry *e,
		    struct kiln_error **err)
{
	const char *raw = archive_entry_pathname(e);
	cleanup_free char *clean = pathsafe_clean(raw, 0, err);
	if (!clean)
		return -1;
	if (!*clean)
		return 0; /* the root itself */
	const char *slash = strrchr(clean, '/');
	const char *base = slash ? slash + 1 : clean;
	size_t dirlen = slash ? (size_t)(slash - clean) : 0;

	if (strncmp(base, ".wh.", 4) == 0) {
		if (strcmp(base, ".wh..wh..opq") == 0) {
			cleanup_free char *dir = xstrndup(clean, dirlen);
			if (*dir && is_hidden(st, dir, true))
				return 0;
			struct node *n = node_put(st, dir, dirlen);
			if (!n->opq)
				n->opq = (int32_t)st->li + 1;
			return 0;
		}
		if (strncmp(base, ".wh..wh.", 8) == 0)
			return 0; /* AUFS metadata (.wh..wh.plnk, …) */
		const char *vb = base + 4;
		if (!*vb || strcmp(vb, ".") == 0)
			return kiln_error_make(err, EPERM, "whiteout `%s` names no entry", clean);
		cleanup_free char *victim_raw =
		    xasprintf("%.*s%s%s", (int)dirlen, clean, dirlen ? "/" : "", base + 4);
		cleanup_free char *victim = pathsafe_clean(victim_raw, 0, err);
		if (!victim)
			return kiln_error_wrap(err, "whiteout");
		if (!*victim || strchr(base + 4, '/'))
			return kiln_error_make(err, EPERM, "whiteout of `%s` refused", victim_raw);
		if (is_hidden(st, victim, true))
			return 0;
		struct node *n = node_put(st, victim, strlen(victim));
		if (!n->wh)
			n->wh = (int32_t)st->li + 1;
		return 0;
	}

	bool is_dir = archive_entry_filetype(e) == AE_IFDIR && !archive_entry_hardlink(e);
	if (is_hidden(st, clean, is_dir))
		return on_hidden(st, e, a, clean, err);

	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
	case AE_IFDIR:
	case AE_IFLNK:
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
		break;
	case AE_IFSOCK:
		return 0; /* sockets cannot be carried by an image */
	default:
		if (!archive_entry_hardlink(e))
			return kiln_error_make(err, EINVAL, "unsupported entry type 0%o",
					       (unsigned)archive_entry_filetype(e));
	}
	if (check_size(st, e, err) < 0)
		return -1;

	cleanup_free char *checked = NULL;
	cleanup_free char *target = NULL;
	if (pathsafe_check(clean, archive_entry_hardlink(e), PATHSAFE_LINK_DEFERRED, lookup, st,
			   &checked, &target, err) < 0)
		return -1;
	if (st->o->filter && st->o->filter(st->o->ctx, clean, e))
		return 0;
	if (target)
		return on_hardlink(st, e, clean, target, err);

	struct node *n = node_get(st, clean, strlen(clean));
	enum pathsafe_type type = entry_type(e);
	if (n && n->entry && n->emitted && n->type == PATHSAFE_DIR && type != PATHSAFE_DIR &&
	    !n->implicit)
		return kiln_error_make(err, EEXIST, "replaces directory `%s` of the same layer",
				       clean);
	if (ensure_parents(st, clean, err) < 0)
		return -1;
	if (call_emit(st, e, clean, NULL, a, err) < 0)
		return -1;
	n = node_put(st, clean, strlen(clean));
	n->entry = (int32_t)st->li + 1;
	n->type = (uint8_t)type;
	n->implicit = 0;
	n->emitted = 1;
	if (type != PATHSAFE_DIR)
		return resolve_pending(st, clean, err);
	return 0;
}

struct archive *flatten_open_layer(const char *path, struct kiln_error **err)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_support_format_empty(a);
	if (archive_read_open_filename(a, path, 256 * 1024) != ARCHIVE_OK) {
		kiln_error_make(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "open layer: %s",
				archive_error_string(a));
		archive_read_free(a);
		return NULL;
	}
	return a;
}

void flatten_archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}

static int next_header(struct archive *a, struct archive_entry **e, struct kiln_error **err)
{
	int r = archive_read_next_header(a, e);
	if (r == ARCHIVE_EOF)
		return 0;
	if (r == ARCHIVE_OK || r == ARCHIVE_WARN)
		return 1;
	return kiln_error_make(err, archive_errno(a) > 0 ? archive_errno(a) : 0, "read: %s",
			       archive_error_string(a) ? archive_error_string(a)
						       : "corrupt archive");
}

/* Makes sure a regular file's data is all there: libarchive reports a
 * truncated stream only when the data is read. */
static int finish_entry(struct archive *a, struct kiln_error **err)
{
	if (archive_read_data_skip(a) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "read: %s",
				       archive_error_string(a) ? archive_error_string(a)
							       : "truncated data");
	return 0;
}

static int do_rereads(struct state *st, struct kiln_error **err)
{
	const struct flatten_layer *l = &st->layers[st->layer_index];
	if (l->archive) {
		kiln_error_make(err, ENOTSUP, "hard link `%s` to hidden `%s` in a nested archive",
				st->rereads[0].link, st->rereads[0].target);
		return layer_error(st, err, NULL);
	}
	cleanup_archive_read struct archive *a = flatten_open_layer(l->path, err);
	if (!a)
		return layer_error(st, err, NULL);
	struct archive_entry *e;
	int r;
	while ((r = next_header(a, &e, err)) == 1) {
		cleanup_free char *clean = pathsafe_clean(archive_entry_pathname(e), 0, err);
		if (!clean)
			return layer_error(st, err, archive_entry_pathname(e));
		if (archive_entry_hardlink(e) || archive_entry_filetype(e) == AE_IFDIR)
			continue;
		size_t k = 0;
		char **links = NULL;
		for (size_t i = 0; i < st->nrereads; i++) {
			if (st->rereads[i].target && strcmp(st->rereads[i].target, clean) == 0) {
				links = xrealloc(links, (k + 1) * sizeof(*links));
				links[k++] = st->rereads[i].link;
				st->rereads[i].link = NULL;
				free(st->rereads[i].target);
				st->rereads[i].target = NULL;
			}
		}
		if (k) {
			r = materialize(st, e, a, clean, links, k, err);
			for (size_t i = 0; i < k; i++)
				free(links[i]);
			free(links);
			if (r < 0)
				return layer_error(st, err, clean);
		}
	}
	if (r < 0)
		return layer_error(st, err, NULL);
	for (size_t i = 0; i < st->nrereads; i++) {
		if (st->rereads[i].target) {
			kiln_error_make(err, ENOENT, "hard link `%s` to `%s`: target not found",
					st->rereads[i].link, st->rereads[i].target);
			return layer_error(st, err, NULL);
		}
	}
	return 0;
}

static void free_node(void *v, void *ctx)
{
	(void)ctx;
	free(((struct node *)v)->alias);
}

struct leftover {
	struct kiln_error **err;
	int found;
};

static void free_pending(void *v, void *ctx)
{
	struct pending *p = v;
	struct leftover *lo = ctx;
	if (lo && p->n && !lo->found) {
		lo->found = 1;
		kiln_error_make(lo->err, ENOENT,
				"layer %zu: entry `%s`: hard link to `%s` which no layer has",
				p->layer, p->links[0], pathmap_key(p));
	}
	for (size_t i = 0; i < p->n; i++)
		free(p->links[i]);
	free(p->links);
}

static void clear_rereads(struct state *st)
{
	for (size_t i = 0; i < st->nrereads; i++) {
		free(st->rereads[i].target);
		free(st->rereads[i].link);
	}
	free(st->rereads);
	st->rereads = NULL;
	st->nrereads = 0;
}

static int flatten_run(struct state *st, struct kiln_error **err)
{
	for (st->li = 0; st->li < st->nlayers; st->li++) {
		st->layer_index = st->nlayers - 1 - st->li;
		const struct flatten_layer *l = &st->layers[st->layer_index];
		cleanup_archive_read struct archive *owned = NULL;
		struct archive *a = l->archive;
		if (!a) {
			a = owned = flatten_open_layer(l->path, err);
			if (!a)
				return layer_error(st, err, NULL);
		}
		struct archive_entry *e;
		int r;
		while ((r = next_header(a, &e, err)) == 1) {
			cleanup_free char *name = xstrdup(archive_entry_pathname(e));
			if (on_entry(st, a, e, err) < 0 || finish_entry(a, err) < 0)
				return layer_error(st, err, name);
		}
		if (r < 0)
			return layer_error(st, err, NULL);
		if (st->nrereads) {
			r = do_rereads(st, err);
			clear_rereads(st);
			if (r < 0)
				return -1;
		}
	}
	if (st->npending) {
		struct leftover lo = {err, 0};
		pathmap_foreach(st->pending, free_pending, &lo);
		pathmap_free(st->pending);
		st->pending = pathmap_new(sizeof(struct pending));
		st->npending = 0;
		return kiln_error_wrap(err, "image %s", st->o->image ? st->o->image : "?");
	}
	return 0;
}

int flatten_image(const struct flatten_layer *layers, size_t n, const struct flatten_options *o,
		  struct kiln_error **err)
{
	struct state st = {
	    .o = o,
	    .layers = layers,
	    .nlayers = n,
	    .nodes = pathmap_new(sizeof(struct node)),
	    .pending = pathmap_new(sizeof(struct pending)),
	    .max_size = o->max_entry_size ? o->max_entry_size : FLATTEN_MAX_ENTRY_SIZE,
	};
	int r = flatten_run(&st, err);
	clear_rereads(&st);
	pathmap_foreach(st.nodes, free_node, NULL);
	pathmap_foreach(st.pending, free_pending, NULL);
	pathmap_free(st.nodes);
	pathmap_free(st.pending);
	return r;
}
