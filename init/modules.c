/* Kernel modules the hardware asks for, without kmod: modalias of every
 * device against modules.alias (shell patterns), then the modules.dep closure
 * loaded dependencies first with finit_module(2).  Debian ships modules
 * uncompressed, which is all this handles. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <glob.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
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
	/* coldplug: wanted in this order (0 = not wanted), being loaded */
	int order;
	bool loading;
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

/* Whether the modules.alias pattern of A matches MODALIAS (its literal
 * prefix compared first: most patterns fail there, cheaply). */
static bool alias_matches(const struct alias *a, const char *modalias)
{
	return strncmp(a->pattern, modalias, a->literal) == 0 &&
	       fnmatch(a->pattern, modalias, 0) == 0;
}

/* finit_module(2) of M itself (its dependencies must be in); a module
 * already there counts as loaded.  Touches no state of the database, so the
 * coldplug threads call it without the lock. */
static int mod_finit(const struct moddb *db, const struct mod *m, struct kiln_error **err)
{
	cleanup_free char *path = path_join(db->dir, m->path);
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "module %s: open `%s`", m->name, path);
	/* Compressed modules are left to the kernel (CONFIG_MODULE_DECOMPRESS);
	 * Debian 12 ships them uncompressed. */
	int flags = str_has_suffix(m->path, ".ko") ? 0 : MODULE_INIT_COMPRESSED_FILE;
	if (syscall(SYS_finit_module, fd, "", flags) < 0 && errno != EEXIST)
		return kiln_error_make(err, errno, "load module %s", m->name);
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
	if (mod_finit(db, m, err) < 0) {
		m->failed = true;
		return -1;
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
		if (!alias_matches(a, modalias))
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

/* ---- coldplug: the modules the devices ask for, loaded in parallel ----
 * A module's init probes its devices, and some probes wait on the hardware
 * (ATA resets) or take long under emulation (ACPI interrupt routing of every
 * virtio device), so independent modules load at the same time on several
 * threads, each once its dependencies are in.  Drivers whose devices share a
 * naming domain (network interfaces eth0, eth1...; SCSI/ATA/virtio disks)
 * still load one at a time, in the order the devices asked for them, so the
 * names stay the same from one boot to the next. */

#define COLDPLUG_THREADS 4

struct coldplug {
	struct moddb *db;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int next_order; /* orders given out so far */
	int loading;	/* modules being loaded now */
	int uevent_fd;	/* the kernel's device events, or -1 */
	int stop_fd;	/* eventfd: the listener stops */
};

/* The naming domain of a module: the directory under kernel/drivers/ (disk
 * drivers under ata, scsi, block, nvme and usb/storage are one).  SCSI's
 * upper-level drivers (disks, CD-ROMs, generic) name devices in the order
 * the host drivers found them, so they need not wait for those. */
static void mod_group(const struct mod *m, char *out, size_t size)
{
	static const char *const upper[] = {"sd_mod", "sr_mod", "sg", "st", "cdrom"};
	const char *p = strstr(m->path, "drivers/");
	for (size_t i = 0; p && i < ARRAY_SIZE(upper); i++)
		if (strcmp(m->name, upper[i]) == 0)
			p = NULL;
	if (p == NULL) {
		snprintf(out, size, "%s", m->name); /* its own */
		return;
	}
	p += strlen("drivers/");
	size_t n = strcspn(p, "/");
	static const char *const storage[] = {"ata", "scsi", "block", "nvme"};
	for (size_t i = 0; i < ARRAY_SIZE(storage); i++)
		if (n == strlen(storage[i]) && strncmp(p, storage[i], n) == 0) {
			snprintf(out, size, "storage");
			return;
		}
	if (strncmp(p, "usb/storage/", 12) == 0) {
		snprintf(out, size, "storage");
		return;
	}
	snprintf(out, size, "%.*s", (int)n, p);
}

/* Marks M and what it needs as wanted, dependencies first. */
static void coldplug_want(struct coldplug *c, struct mod *m, int depth)
{
	if (m->loaded || m->failed || m->order || depth > 32)
		return;
	for (char **d = m->deps; d && *d; d++) {
		struct mod *dm = moddb_find(c->db, *d);
		if (dm == NULL) {
			init_log("warning: module %s: dependency %s not found", m->name, *d);
			m->failed = true;
			return;
		}
		coldplug_want(c, dm, depth + 1);
	}
	m->order = ++c->next_order;
}

/* Under the lock: the wanted module to load next, or NULL. */
static struct mod *coldplug_pick(struct coldplug *c)
{
	struct moddb *db = c->db;
	struct mod *best = NULL;
	for (size_t i = 0; i < db->nmods; i++) {
		struct mod *m = &db->mods[i];
		if (!m->order || m->loaded || m->failed || m->loading)
			continue;
		bool ready = true;
		for (char **d = m->deps; d && *d && ready; d++) {
			struct mod *dm = moddb_find(db, *d);
			if (dm == NULL || dm->failed) {
				init_log("warning: module %s: dependency %s failed", m->name, *d);
				m->failed = true;
				ready = false;
			} else if (!dm->loaded) {
				ready = false;
			}
		}
		if (!ready || m->failed)
			continue;
		/* The first of its naming domain still to load, and none of the
		 * domain loading now. */
		char group[64], other[64];
		mod_group(m, group, sizeof group);
		for (size_t k = 0; k < db->nmods && ready; k++) {
			struct mod *o = &db->mods[k];
			if (o == m || !o->order || o->loaded || o->failed)
				continue;
			if (!o->loading && o->order > m->order)
				continue;
			mod_group(o, other, sizeof other);
			if (strcmp(group, other) == 0)
				ready = false;
		}
		if (ready && (best == NULL || m->order < best->order))
			best = m;
	}
	return best;
}

static void *coldplug_worker(void *arg)
{
	struct coldplug *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		struct mod *m = coldplug_pick(c);
		if (m == NULL) {
			/* A module still loading may make devices whose drivers
			 * the uevent listener wants: wait for it. */
			if (c->loading == 0) {
				/* done, or what is left waits on what cannot load */
				pthread_cond_broadcast(&c->changed);
				break;
			}
			pthread_cond_wait(&c->changed, &c->lock);
			continue;
		}
		m->loading = true;
		c->loading++;
		pthread_mutex_unlock(&c->lock);

		double t0 = init_uptime();
		struct kiln_error *err = NULL;
		bool e = mod_finit(c->db, m, &err) < 0;
		if (e)
			init_log("warning: %s", err->msg);
		else
			init_debug_log("loaded module %s in %.3f s", m->name, init_uptime() - t0);
		kiln_error_release(&err);

		pthread_mutex_lock(&c->lock);
		m->loading = false;
		c->loading--;
		if (e) {
			m->failed = true;
		} else {
			m->loaded = true;
			c->db->loaded++;
		}
		pthread_cond_broadcast(&c->changed);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Under the lock: wants the modules matching the device modalias ALIAS;
 * returns how many were newly wanted (dependencies included). */
static int coldplug_want_alias(struct coldplug *c, const char *alias)
{
	int before = c->next_order;
	for (size_t k = 0; *alias && k < c->db->naliases; k++) {
		struct alias *a = &c->db->aliases[k];
		if (!alias_matches(a, alias))
			continue;
		struct mod *m = moddb_find(c->db, a->module);
		if (m)
			coldplug_want(c, m, 0);
	}
	return c->next_order - before;
}

/* Wants the modules of every device matching PATTERN; returns how many. */
static int coldplug_walk(struct coldplug *c, const char *pattern)
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
		pthread_mutex_lock(&c->lock);
		n += coldplug_want_alias(c, alias);
		pthread_mutex_unlock(&c->lock);
	}
	globfree(&g);
	return n;
}

/* Whether a wanted module is still to load (between rounds: no worker or
 * listener runs then). */
static bool coldplug_pending(const struct coldplug *c)
{
	for (size_t i = 0; i < c->db->nmods; i++) {
		const struct mod *m = &c->db->mods[i];
		if (m->order && !m->loaded && !m->failed)
			return true;
	}
	return false;
}

/* The kernel's uevents while modules load: a device that a module's probe
 * made (the CD-ROM behind ata_piix, the NIC behind virtio_pci) gets its
 * driver loading at once, not after every module of the round is in.  Only
 * the kernel's messages (sender 0) count. */
static int uevent_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -1;
	int size = 1 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = 1};
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void uevent_drain(struct coldplug *c)
{
	char buf[8192];
	for (;;) {
		struct sockaddr_nl from;
		struct iovec iov = {buf, sizeof buf - 1};
		struct msghdr msg = {.msg_name = &from, .msg_namelen = sizeof from,
				     .msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n = recvmsg(c->uevent_fd, &msg, 0);
		if (n <= 0)
			return;
		if (from.nl_pid != 0)
			continue;
		buf[n] = '\0';
		const char *alias = NULL;
		bool add = false;
		for (const char *f = buf; f < buf + n; f += strlen(f) + 1) {
			if (strcmp(f, "ACTION=add") == 0)
				add = true;
			else if (strncmp(f, "MODALIAS=", 9) == 0)
				alias = f + 9;
		}
		if (!add || alias == NULL)
			continue;
		pthread_mutex_lock(&c->lock);
		if (coldplug_want_alias(c, alias) > 0)
			pthread_cond_broadcast(&c->changed);
		pthread_mutex_unlock(&c->lock);
	}
}

static void *uevent_listener(void *arg)
{
	struct coldplug *c = arg;
	struct pollfd p[2] = {{.fd = c->uevent_fd, .events = POLLIN}, {.fd = c->stop_fd, .events = POLLIN}};
	while (poll(p, 2, -1) >= 0 || errno == EINTR) {
		if (p[0].revents & POLLIN)
			uevent_drain(c);
		uint64_t v;
		if (p[1].revents && read(c->stop_fd, &v, sizeof v) == sizeof v)
			break; /* told to stop (and the eventfd reset for the next round) */
	}
	return NULL;
}

static void coldplug_run(struct coldplug *c)
{
	pthread_t t[COLDPLUG_THREADS], listener;
	bool listening = c->uevent_fd >= 0 && c->stop_fd >= 0 &&
			 pthread_create(&listener, NULL, uevent_listener, c) == 0;
	int n = 0;
	for (; n < COLDPLUG_THREADS; n++)
		if (pthread_create(&t[n], NULL, coldplug_worker, c) != 0)
			break;
	if (n == 0)
		coldplug_worker(c);
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	if (listening) {
		uint64_t one = 1;
		while (write(c->stop_fd, &one, sizeof one) < 0 && errno == EINTR)
			;
		pthread_join(listener, NULL);
		uevent_drain(c); /* what came in after the workers ended */
	}
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
	struct coldplug c = {.db = &db, .uevent_fd = uevent_open(),
			     .stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.changed, NULL);
	/* Loading a bus driver (virtio_pci) makes new devices appear; so does the
	 * ACPI button for input.  The uevent listener wants their modules as they
	 * come; a walk again afterwards catches what it missed (no netlink, a
	 * full socket), while something new was wanted. */
	for (int round = 0; round < 4; round++) {
		int n = coldplug_walk(&c, "/sys/bus/*/devices/*/modalias");
		n += coldplug_walk(&c, "/sys/class/input/*/modalias");
		if (n == 0 && !coldplug_pending(&c))
			break;
		coldplug_run(&c);
	}
	if (c.uevent_fd >= 0)
		close(c.uevent_fd);
	if (c.stop_fd >= 0)
		close(c.stop_fd);
	int total = db.loaded;
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.changed);
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
