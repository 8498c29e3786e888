/* Whether containerd may start before the onboot containers run.
 *
 * LinuxKit starts containerd after the last onboot container has ended.  Under
 * emulation containerd takes most of a second to be ready, time a second CPU
 * can spend while the onboot containers run, so init starts it first unless
 * one of them could change what containerd would see: a mount of the host's
 * (runtime.json's mounts are made in the host's mount namespace), a bind with
 * shared propagation (a mount made inside then appears in the host) or no
 * mount namespace of its own, over or under containerd's directories. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "init.h"

/* true when one of the paths A and B contains the other (or they are equal). */
static bool paths_nest(const char *a, const char *b)
{
	while (*a == '/' && a[1] == '/')
		a++;
	while (*b == '/' && b[1] == '/')
		b++;
	size_t la = strlen(a), lb = strlen(b);
	while (la > 1 && a[la - 1] == '/')
		la--;
	while (lb > 1 && b[lb - 1] == '/')
		lb--;
	if (la == 1 || lb == 1) /* "/" */
		return true;
	size_t n = la < lb ? la : lb;
	if (strncmp(a, b, n) != 0)
		return false;
	return la == lb || (la > lb ? a[n] : b[n]) == '/';
}

/* PATH as written and, when it exists, with its symlinks resolved (a bind
 * of a link to /var is one of /var). */
static bool nests_any(const char *path, const char *const *dirs)
{
	if (path == NULL)
		return false;
	char real[PATH_MAX];
	bool resolved = realpath(path, real) != NULL;
	for (; *dirs; dirs++)
		if (paths_nest(path, *dirs) || (resolved && paths_nest(real, *dirs)))
			return true;
	return false;
}

static bool option_shared(const struct json *options)
{
	for (size_t i = 0; options && options->type == JSON_ARRAY && i < options->count; i++) {
		const struct json *o = options->items[i];
		if (o->type == JSON_STRING &&
		    (strcmp(o->str, "shared") == 0 || strcmp(o->str, "rshared") == 0))
			return true;
	}
	return false;
}

/* Why the bundle BUNDLE could change the mounts at DIRS (into WHY), or false. */
static bool bundle_touches(const char *bundle, const char *const *dirs, char *why, size_t size)
{
	struct kiln_error *err = NULL;
	struct runtime_config rc;
	if (runtime_config_load(bundle, &rc, &err) < 0) {
		snprintf(why, size, "%s", err->msg);
		kiln_error_release(&err);
		return true;
	}
	bool touches = false;
	for (size_t i = 0; i < rc.nmounts && !touches; i++)
		if (nests_any(rc.mounts[i].destination, dirs)) {
			snprintf(why, size, "runtime.json mounts %s", rc.mounts[i].destination);
			touches = true;
		}
	runtime_config_release(&rc);
	if (touches)
		return true;

	cleanup_free char *path = path_join(bundle, "config.json");
	size_t len;
	cleanup_free char *text = read_file(path, 4 << 20, &len, &err);
	struct json *j = text ? json_parse(text, len, &err) : NULL;
	if (j == NULL) {
		snprintf(why, size, "%s", err ? err->msg : "config.json");
		kiln_error_release(&err);
		return true;
	}
	const struct json *mounts = json_get(j, "mounts");
	for (size_t i = 0; mounts && mounts->type == JSON_ARRAY && i < mounts->count; i++) {
		const struct json *m = mounts->items[i];
		const char *src = json_get_str(m, "source");
		if (src && *src == '/' && option_shared(json_get(m, "options")) &&
		    nests_any(src, dirs)) {
			snprintf(why, size, "binds %s with shared propagation", src);
			touches = true;
			break;
		}
	}
	const struct json *linux_ = json_get(j, "linux");
	const struct json *ns = linux_ ? json_get(linux_, "namespaces") : NULL;
	bool own_mnt = false;
	for (size_t i = 0; ns && ns->type == JSON_ARRAY && i < ns->count; i++) {
		const char *type = json_get_str(ns->items[i], "type");
		if (type && strcmp(type, "mount") == 0 && json_get(ns->items[i], "path") == NULL)
			own_mnt = true;
	}
	if (!touches && !own_mnt) {
		snprintf(why, size, "shares the host's mount namespace");
		touches = true;
	}
	json_free(j);
	return touches;
}

bool onboot_may_touch(const char *dir, const char *const *dirs, char *why, size_t size)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return false;
	bool touches = false;
	struct dirent *e;
	while (!touches && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		cleanup_free char *bundle = path_join(dir, e->d_name);
		char reason[256];
		if (bundle_touches(bundle, dirs, reason, sizeof reason)) {
			snprintf(why, size, "%s: %s", e->d_name, reason);
			touches = true;
		}
	}
	closedir(d);
	return touches;
}
