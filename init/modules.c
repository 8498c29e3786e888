/* Kernel modules the hardware asks for, without kmod: modalias of every
 * device against modules.alias (shell patterns), then the modules.dep closure
 * loaded dependencies first with finit_module(2).  Debian ships modules
 * uncompressed, which is all this handles. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "init.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4
#endif

struct mod {
	char *name;  /* normalised: '-' → '_' */
	char *path;  /* relative to the modules directory */
	char **deps; /* names, NULL-terminated */
	bool loaded, failed;
};

struct alias {
	char *pattern, *module;
	size_t literal; /* length of the pattern's prefix without wildcards */
};

struct moddb {
	char *dir;
	struct mod *mods;
	size_t nmods;
	struct alias *aliases;
	size_t naliases;
	int loaded; /* modules loaded by this process, dependencies included */
};

static void mod_normalise(char *s)
{
	for (; *s; s++)
		if (*s == '-')
			*s = '_';
}

/* "kernel/fs/overlayfs/overlay.ko" → "overlay" (heap). */
static char *mod_name_from_path(const char *path)
{
	const char *b = strrchr(path, '/');
	b = b ? b + 1 : path;
	const char *dot = strstr(b, ".ko");
	char *n = xstrndup(b, dot ? (size_t)(dot - b) : strlen(b));
	mod_normalise(n);
	return n;
}

static struct mod *moddb_find(struct moddb *db, const char *name)
{
	for (size_t i = 0; i < db->nmods; i++)
		if (strcmp(db->mods[i].name, name) == 0)
			return &db->mods[i];
	return NULL;
}

static void moddb_free(struct moddb *db)
{
	for (size_t i = 0; i < db->nmods; i++) {
		free(db->mods[i].name);
		free(db->mods[i].path);
		for (char **d = db->mods[i].deps; d && *d; d++)
			free(*d);
		free(db->mods[i].deps);
	}
	for (size_t i = 0; i < db->naliases; i++) {
		free(db->aliases[i].pattern);
		free(db->aliases[i].module);
	}
	free(db->mods);
	free(db->aliases);
	free(db->dir);
	memset(db, 0, sizeof *db);
}

static char *modules_dir(const char *root)
{
	struct utsname u;
	uname(&u);
	return xasprintf("%s/lib/modules/%s", root ? root : "", u.release);
}

static int moddb_load(struct moddb *db, const char *root, struct kiln_error **err)
{
	memset(db, 0, sizeof *db);
	db->dir = modules_dir(root);
	cleanup_free char *dep_path = path_join(db->dir, "modules.dep");
	cleanup_free char *deps = read_file(dep_path, 64 << 20, NULL, err);
	if (deps == NULL)
		return -1;
	size_t cap = 0;
	for (char *line = deps, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		*colon = '\0';
		if (db->nmods == cap) {
			cap = cap ? cap * 2 : 256;
			db->mods = xrealloc(db->mods, cap * sizeof *db->mods);
		}
		struct mod *m = &db->mods[db->nmods++];
		memset(m, 0, sizeof *m);
		m->path = xstrdup(line);
		m->name = mod_name_from_path(line);
		size_t nd = 0;
		for (char *tok = strtok(colon + 1, " \t"); tok; tok = strtok(NULL, " \t")) {
			m->deps = xrealloc(m->deps, (nd + 2) * sizeof *m->deps);
			m->deps[nd++] = mod_name_from_path(tok);
		}
		if (m->deps)
			m->deps[nd] = NULL;
	}
	cleanup_free char *alias_path = path_join(db->dir, "modules.alias");
	cleanup_free char *aliases = read_file(alias_path, 64 << 20, NULL, NULL);
	cap = 0;
	for (char *line = aliases, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "alias ", 6) != 0)
			continue;
		char *pat = line + 6;
		char *sp = strchr(pat, ' ');
		if (sp == NULL)
			continue;
		*sp = '\0';
		if (db->naliases == cap) {
			cap = cap ? cap * 2 : 1024;
			db->aliases = xrealloc(db->aliases, cap * sizeof *db->aliases);
		}
		struct alias *a = &db->aliases[db->naliases++];
		a->pattern = xstrdup(pat);
		a->module = xstrdup(sp + 1);
		mod_normalise(a->module);
		a->literal = strcspn(pat, "*?[\\");
	}
	/* What is loaded already (or built in) is never loaded again. */
	cleanup_free char *loaded = read_file("/proc/modules", 1 << 20, NULL, NULL);
	for (char *line = loaded, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *sp = strchr(line, ' ');
		if (sp)
			*sp = '\0';
		struct mod *m = moddb_find(db, line);
		if (m)
			m->loaded = true;
	}
	return 0;
}

/* 1 when loaded now, 0 when already there, -1 on failure. */
static int moddb_load_module(struct moddb *db, struct mod *m, int depth, struct kiln_error **err)
{
	if (m->loaded)
		return 0;
	if (m->failed)
		return kiln_error_make(err, 0, "module %s failed before", m->name);
	if (depth > 32)
		return kiln_error_make(err, 0, "module %s: dependency loop", m->name);
	for (char **d = m->deps; d && *d; d++) {
		struct mod *dm = moddb_find(db, *d);
		if (dm == NULL)
			return kiln_error_make(err, 0, "module %s: dependency %s not found",
					       m->name, *d);
		if (moddb_load_module(db, dm, depth + 1, err) < 0)
			return kiln_error_wrap(err, "module %s", m->name);
	}
	cleanup_free char *path = path_join(db->dir, m->path);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		m->failed = true;
		return kiln_error_make(err, errno, "module %s: open `%s`", m->name, path);
	}
	/* Compressed modules are left to the kernel (CONFIG_MODULE_DECOMPRESS);
	 * Debian 12 ships them uncompressed. */
	int flags = str_has_suffix(m->path, ".ko") ? 0 : MODULE_INIT_COMPRESSED_FILE;
	if (syscall(SYS_finit_module, fd, "", flags) < 0 && errno != EEXIST) {
		m->failed = true;
		return kiln_error_make(err, errno, "load module %s", m->name);
	}
	m->loaded = true;
	db->loaded++;
	init_debug_log("loaded module %s", m->name);
	return 1;
}

/* Loads every module whose alias pattern matches MODALIAS; returns the
 * number newly loaded. */
static int moddb_load_alias(struct moddb *db, const char *modalias, bool quiet, bool *matched)
{
	int n = 0;
	for (size_t i = 0; i < db->naliases; i++) {
		struct alias *a = &db->aliases[i];
		if (strncmp(a->pattern, modalias, a->literal) != 0)
			continue;
		if (fnmatch(a->pattern, modalias, 0) != 0)
			continue;
		struct mod *m = moddb_find(db, a->module);
		if (m && matched)
			*matched = true;
		if (m == NULL || m->loaded || m->failed)
			continue;
		struct kiln_error *err = NULL;
		int r = moddb_load_module(db, m, 0, &err);
		if (r < 0) {
			if (!quiet)
				init_log_error(&err, modalias);
			kiln_error_release(&err);
		} else {
			n += r;
		}
	}
	return n;
}

static int modules_walk(struct moddb *db, const char *pattern)
{
	glob_t g;
	int n = 0;
	if (glob(pattern, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		cleanup_free char *alias = read_file(g.gl_pathv[i], 4096, NULL, NULL);
		if (alias == NULL)
			continue;
		alias[strcspn(alias, "\n")] = '\0';
		if (*alias)
			n += moddb_load_alias(db, alias, false, NULL);
	}
	globfree(&g);
	return n;
}

int modules_coldplug(const char *root)
{
	struct moddb db;
	struct kiln_error *err = NULL;
	if (moddb_load(&db, root, &err) < 0) {
		init_debug_log("no modules: %s", err->msg);
		kiln_error_release(&err);
		moddb_free(&db);
		return 0;
	}
	int total = 0;
	/* Loading a bus driver (virtio_pci) makes new devices appear; so does the
	 * ACPI button for input: walk again while something new was loaded. */
	for (int round = 0; round < 4; round++) {
		int n = modules_walk(&db, "/sys/bus/*/devices/*/modalias");
		n += modules_walk(&db, "/sys/class/input/*/modalias");
		if (n == 0)
			break;
	}
	total = db.loaded;
	moddb_free(&db);
	return total;
}

int modules_load(const char *root, const char *name, struct kiln_error **err)
{
	struct moddb db;
	if (moddb_load(&db, root && *root ? root : NULL, err) < 0) {
		moddb_free(&db);
		return -1;
	}
	cleanup_free char *n = xstrdup(name);
	mod_normalise(n);
	struct mod *m = moddb_find(&db, n);
	int r;
	if (m) {
		r = moddb_load_module(&db, m, 0, err) < 0 ? -1 : 0;
	} else {
		bool matched = false;
		moddb_load_alias(&db, name, true, &matched);
		r = matched ? 0 : kiln_error_make(err, 0, "no module for %s", name);
	}
	moddb_free(&db);
	return r;
}
