/* pathsafe: the one audited path function, and pathmap. */
#include <errno.h>

#include "pathsafe.h"
#include "tap.h"
#include "util.h"

static char *clean(const char *name, unsigned flags)
{
	cleanup_error struct kiln_error *err = NULL;
	char *r = pathsafe_clean(name, flags, &err);
	return r ? r : xasprintf("ERR %s", err->msg);
}

#define CLEAN(in, fl, want)                                                                        \
	do {                                                                                       \
		cleanup_free char *g = clean(in, fl);                                              \
		is_str(g, want, in);                                                               \
	} while (0)

TEST(clean_normalises)
{
	CLEAN("./etc//passwd", 0, "etc/passwd");
	CLEAN("etc/./x/", 0, "etc/x");
	CLEAN(".", 0, "");
	CLEAN("./", 0, "");
	CLEAN("a/.../b", 0, "a/.../b");
	CLEAN("..a/b..", 0, "..a/b..");
	CLEAN("/etc/x", PATHSAFE_STRIP_ROOT, "etc/x");
	CLEAN("caf\xc3\xa9/\xff", 0, "caf\xc3\xa9/\xff");
}

TEST(clean_refuses)
{
	CLEAN("../x", 0, "ERR name `../x` has a `..` component: Operation not permitted");
	CLEAN("a/../../x", 0, "ERR name `a/../../x` has a `..` component: Operation not permitted");
	CLEAN("a/..", 0, "ERR name `a/..` has a `..` component: Operation not permitted");
	CLEAN("/etc/x", 0, "ERR absolute name `/etc/x` refused: Operation not permitted");
	CLEAN("/../x", PATHSAFE_STRIP_ROOT,
	      "ERR name `/../x` has a `..` component: Operation not permitted");
	char big[PATHSAFE_MAX + 10];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cleanup_free char *g = clean(big, 0);
	ok(str_has_prefix(g, "ERR name `aaaa"), "too long: %s", g);
}

static enum pathsafe_type tree_lookup(void *ctx, const char *path, size_t len)
{
	struct pathmap *m = ctx;
	uint8_t *t = pathmap_get(m, path, len);
	return t ? (enum pathsafe_type) * t : PATHSAFE_ABSENT;
}

static void tree_add(struct pathmap *m, const char *p, enum pathsafe_type t)
{
	*(uint8_t *)pathmap_put(m, p, strlen(p), NULL) = (uint8_t)t;
}

static char *check(struct pathmap *m, const char *name, const char *link, unsigned flags)
{
	cleanup_error struct kiln_error *err = NULL;
	char *c = NULL, *l = NULL;
	if (pathsafe_check(name, link, flags, tree_lookup, m, &c, &l, &err) < 0)
		return xasprintf("ERR %s", err->msg);
	char *r = xasprintf("%s%s%s", c, l ? " -> " : "", l ? l : "");
	free(c);
	free(l);
	return r;
}

TEST(check_parents_and_links)
{
	cleanup_pathmap struct pathmap *m = pathmap_new(1);
	tree_add(m, "lib", PATHSAFE_SYMLINK);
	tree_add(m, "etc", PATHSAFE_DIR);
	tree_add(m, "etc/passwd", PATHSAFE_OTHER);
	char *g;
	g = check(m, "./etc/shadow", NULL, 0);
	is_str(g, "etc/shadow", "plain");
	free(g);
	g = check(m, "lib/x", NULL, 0);
	is_str(g, "ERR parent `lib` of `lib/x` is a symlink: Operation not permitted",
	       "symlinked parent");
	free(g);
	g = check(m, "etc/passwd/x", NULL, 0);
	is_str(g, "ERR parent `etc/passwd` of `etc/passwd/x` is not a directory: Not a directory",
	       "file parent");
	free(g);
	g = check(m, "etc/pw2", "etc/passwd", 0);
	is_str(g, "etc/pw2 -> etc/passwd", "hard link inside");
	free(g);
	g = check(m, "etc/pw2", "../etc/passwd", 0);
	ok(str_has_prefix(g, "ERR hard link `etc/pw2`: name `../etc/passwd` has a `..`"), "%s", g);
	free(g);
	g = check(m, "x", "lib/libc.so", 0);
	ok(strstr(g, "is a symlink") != NULL, "link through symlink: %s", g);
	free(g);
	g = check(m, "x", "nothere", 0);
	ok(strstr(g, "not in the tree") != NULL, "link to absent: %s", g);
	free(g);
	g = check(m, "x", "nothere", PATHSAFE_LINK_DEFERRED);
	is_str(g, "x -> nothere", "deferred link");
	free(g);
	g = check(m, "x", "etc", 0);
	ok(strstr(g, "to directory") != NULL, "link to dir: %s", g);
	free(g);
	g = check(m, "x", "x", 0);
	ok(strstr(g, "itself") != NULL, "link to itself: %s", g);
	free(g);
}

TEST(pathmap_many)
{
	cleanup_pathmap struct pathmap *m = pathmap_new(sizeof(int));
	for (int i = 0; i < 20000; i++) {
		char k[32];
		int n = snprintf(k, sizeof(k), "dir/%d", i);
		bool created;
		int *v = pathmap_put(m, k, (size_t)n, &created);
		ok(created && *v == 0, "new %d", i);
		*v = i;
	}
	is_int(pathmap_count(m), 20000, "count");
	int bad = 0;
	for (int i = 0; i < 20000; i++) {
		char k[32];
		int n = snprintf(k, sizeof(k), "dir/%d", i);
		int *v = pathmap_get(m, k, (size_t)n);
		if (!v || *v != i || strcmp(pathmap_key(v), k) != 0)
			bad++;
	}
	is_int(bad, 0, "all found with their keys");
	ok(pathmap_get(m, "dir/", 4) == NULL, "absent");
}
