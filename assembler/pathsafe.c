/* See pathsafe.h.  This file is the one place that decides whether a path
 * from untrusted input may enter the tree: keep it small and audited. */
#include "pathsafe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

char *pathsafe_clean(const char *name, unsigned flags, struct kiln_error **err)
{
	if (name == NULL) {
		kiln_error_make(err, EINVAL, "missing entry name");
		return NULL;
	}
	size_t n = strlen(name);
	if (n > PATHSAFE_MAX) {
		kiln_error_make(err, ENAMETOOLONG, "name `%.64s…` is longer than %d bytes", name,
				PATHSAFE_MAX);
		return NULL;
	}
	const char *p = name;
	if (*p == '/') {
		if (!(flags & PATHSAFE_STRIP_ROOT)) {
			kiln_error_make(err, EPERM, "absolute name `%s` refused", name);
			return NULL;
		}
		while (*p == '/')
			p++;
	}
	char *out = xmalloc(n + 1);
	size_t o = 0;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len == 0 || (len == 1 && p[0] == '.')) {
			/* empty or "." component: skip */
		} else if (len == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			kiln_error_make(err, EPERM, "name `%s` has a `..` component", name);
			return NULL;
		} else {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, len);
			o += len;
		}
		p += len;
		while (*p == '/')
			p++;
	}
	out[o] = '\0';
	return out;
}

/* Every proper parent of PATH (a cleaned path) must be absent (the consumer
 * creates it as a directory) or a directory. */
static int check_parents(const char *path, pathsafe_lookup_fn lookup, void *ctx,
			 struct kiln_error **err)
{
	if (!lookup)
		return 0;
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		size_t len = (size_t)(s - path);
		enum pathsafe_type t = lookup(ctx, path, len);
		if (t == PATHSAFE_SYMLINK)
			return kiln_error_make(err, EPERM, "parent `%.*s` of `%s` is a symlink",
					       (int)len, path, path);
		if (t == PATHSAFE_OTHER)
			return kiln_error_make(err, ENOTDIR,
					       "parent `%.*s` of `%s` is not a directory", (int)len,
					       path, path);
	}
	return 0;
}

int pathsafe_check(const char *name, const char *hardlink, unsigned flags,
		   pathsafe_lookup_fn lookup, void *ctx, char **clean_out, char **link_out,
		   struct kiln_error **err)
{
	cleanup_free char *clean = pathsafe_clean(name, flags, err);
	if (!clean)
		return -1;
	if (check_parents(clean, lookup, ctx, err) < 0)
		return -1;
	if (hardlink) {
		cleanup_free char *target = pathsafe_clean(hardlink, flags, err);
		if (!target)
			return kiln_error_wrap(err, "hard link `%s`", clean);
		if (!*target || strcmp(target, clean) == 0)
			return kiln_error_make(
			    err, EPERM, "hard link `%s` points at itself or the root", clean);
		if (check_parents(target, lookup, ctx, err) < 0)
			return kiln_error_wrap(err, "hard link `%s`", clean);
		if (lookup && !(flags & PATHSAFE_LINK_DEFERRED)) {
			enum pathsafe_type t = lookup(ctx, target, strlen(target));
			if (t == PATHSAFE_ABSENT)
				return kiln_error_make(
				    err, ENOENT, "hard link `%s` to `%s` which is not in the tree",
				    clean, target);
			if (t == PATHSAFE_DIR)
				return kiln_error_make(err, EPERM,
						       "hard link `%s` to directory `%s` refused",
						       clean, target);
		}
		if (link_out)
			*link_out = steal_pointer(&target);
	} else if (link_out) {
		*link_out = NULL;
	}
	*clean_out = steal_pointer(&clean);
	return 0;
}

/* ---- pathmap: open addressing over pointers to items laid out as
 * [struct item][value, VALUE_SIZE rounded to 8][key NUL]. ---- */

struct item {
	uint32_t hash;
	uint32_t keylen;
	uint32_t vsize; /* rounded value size: the key starts this far after the value */
	uint32_t pad;
};

struct pathmap {
	size_t value_size;
	size_t count;
	size_t cap; /* power of two */
	struct item **slots;
};

static uint32_t hash_bytes(const char *s, size_t len)
{
	/* FNV-1a: adequate spread for paths and deterministic. */
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

struct pathmap *pathmap_new(size_t value_size)
{
	struct pathmap *m = xcalloc(1, sizeof(*m));
	m->value_size = (value_size + 7) & ~(size_t)7;
	m->cap = 256;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	return m;
}

void pathmap_free(struct pathmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i]);
	free(m->slots);
	free(m);
}

void pathmap_freep(struct pathmap **m)
{
	pathmap_free(*m);
}

static inline void *item_value(struct item *it)
{
	return (char *)it + sizeof(struct item);
}

static inline const char *item_key(const struct item *it)
{
	return (const char *)it + sizeof(struct item) + it->vsize;
}

const char *pathmap_key(const void *value)
{
	const struct item *it = (const struct item *)((const char *)value - sizeof(struct item));
	return item_key(it);
}

size_t pathmap_count(const struct pathmap *m)
{
	return m->count;
}

static size_t find_slot(struct item *const *slots, size_t cap, uint32_t h, const char *key,
			size_t len)
{
	size_t i = h & (cap - 1);
	while (slots[i]) {
		struct item *it = slots[i];
		if (it->hash == h && it->keylen == len && memcmp(item_key(it), key, len) == 0)
			return i;
		i = (i + 1) & (cap - 1);
	}
	return i;
}

void *pathmap_get(const struct pathmap *m, const char *key, size_t len)
{
	uint32_t h = hash_bytes(key, len);
	size_t i = find_slot(m->slots, m->cap, h, key, len);
	return m->slots[i] ? item_value(m->slots[i]) : NULL;
}

static void grow(struct pathmap *m)
{
	size_t ncap = m->cap * 2;
	struct item **ns = xcalloc(ncap, sizeof(*ns));
	for (size_t i = 0; i < m->cap; i++) {
		struct item *it = m->slots[i];
		if (!it)
			continue;
		size_t j = it->hash & (ncap - 1);
		while (ns[j])
			j = (j + 1) & (ncap - 1);
		ns[j] = it;
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
}

void *pathmap_put(struct pathmap *m, const char *key, size_t len, bool *created)
{
	uint32_t h = hash_bytes(key, len);
	size_t i = find_slot(m->slots, m->cap, h, key, len);
	if (m->slots[i]) {
		if (created)
			*created = false;
		return item_value(m->slots[i]);
	}
	if ((m->count + 1) * 4 > m->cap * 3) {
		grow(m);
		i = find_slot(m->slots, m->cap, h, key, len);
	}
	struct item *it = xcalloc(1, sizeof(struct item) + m->value_size + len + 1);
	it->hash = h;
	it->keylen = (uint32_t)len;
	it->vsize = (uint32_t)m->value_size;
	memcpy((char *)it + sizeof(struct item) + m->value_size, key, len);
	m->slots[i] = it;
	m->count++;
	if (created)
		*created = true;
	return item_value(it);
}

void pathmap_foreach(const struct pathmap *m, void (*fn)(void *value, void *ctx), void *ctx)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			fn(item_value(m->slots[i]), ctx);
}
