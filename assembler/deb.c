/* Fetching, verifying and reading Debian packages (see deb.h). */
#include "deb.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "sha256.h"
#include "strbuf.h"
#include "util.h"

#define APT_SHOW_MAX ((size_t)1 << 20)

/* Runs ARGV in CWD (NULL: ours) with stdin from /dev/null; stdout and stderr
 * are captured together into *OUT (caller frees) when OUT is non-NULL.
 * Returns the exit status (>= 0) or -1 when the program could not run. */
static int run_capture(char *const argv[], const char *cwd, char **out, struct kiln_error **err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return kiln_error_make(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return kiln_error_make(err, e, "fork");
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		if (cwd && chdir(cwd) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	struct kiln_error *rerr = NULL;
	size_t len = 0;
	char *buf = read_fd(pipefd[0], APT_SHOW_MAX * 8, &len, &rerr);
	close(pipefd[0]);
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			break;
	if (buf == NULL) {
		kiln_error_release(&rerr);
		buf = xstrdup("");
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		free(buf);
		return kiln_error_make(err, 0, "cannot run `%s`", argv[0]);
	}
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void deb_info_release(struct deb_info *info)
{
	free(info->name);
	free(info->version);
	free(info->arch);
	free(info->filename);
	free(info->sha256);
	memset(info, 0, sizeof *info);
}

static char *field_value(const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	const char *v = colon + 1;
	while (v < line + len && (*v == ' ' || *v == '\t'))
		v++;
	const char *end = line + len;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	return xstrndup(v, (size_t)(end - v));
}

int deb_parse_show(const char *spec, const char *text, struct deb_info *info,
		   struct kiln_error **err)
{
	memset(info, 0, sizeof *info);
	char *size = NULL;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == 0 && info->name)
			break; /* end of the first stanza */
		struct {
			const char *key;
			char **dst;
		} fields[] = {
			{"Package:", &info->name},	 {"Version:", &info->version},
			{"Architecture:", &info->arch}, {"Filename:", &info->filename},
			{"SHA256:", &info->sha256},	 {"Size:", &size},
		};
		for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
			size_t kl = strlen(fields[i].key);
			if (len >= kl && memcmp(p, fields[i].key, kl) == 0 && *fields[i].dst == NULL)
				*fields[i].dst = field_value(p, len);
		}
		p = nl ? nl + 1 : p + len;
	}
	cleanup_free char *size_owned = size;
	if (!info->name || !info->version || !info->filename || !info->sha256) {
		deb_info_release(info);
		return kiln_error_make(err, 0,
				       "deb `%s`: apt-cache show gives no Package/Version/Filename/SHA256 "
				       "(a virtual package? name a real one)",
				       spec);
	}
	bool hex_ok = strlen(info->sha256) == SHA256_HEXLEN;
	for (const char *c = info->sha256; hex_ok && *c; c++)
		hex_ok = (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f');
	uint64_t sz = 0;
	if (!hex_ok || (size && parse_u64(size, 10, &sz) < 0) || strchr(info->filename, '\'')) {
		deb_info_release(info);
		return kiln_error_make(err, 0, "deb `%s`: malformed apt-cache show stanza", spec);
	}
	info->size = sz;
	if (!info->arch)
		info->arch = xstrdup("");
	return 0;
}

int deb_resolve(const char *spec, struct deb_info *info, struct kiln_error **err)
{
	if (spec[0] == '-' || strpbrk(spec, " \t\n/"))
		return kiln_error_make(err, 0, "deb `%s`: not a package name", spec);
	char *argv[] = {"apt-cache", "show", "--no-all-versions", (char *)spec, NULL};
	cleanup_free char *out = NULL;
	int rc = run_capture(argv, NULL, &out, err);
	if (rc < 0)
		return kiln_error_wrap(err, "deb `%s`", spec);
	if (rc != 0) {
		char *nl = strchr(out, '\n');
		if (nl)
			*nl = '\0';
		return kiln_error_make(err, 0, "deb `%s`: apt-cache show failed: %s", spec, out);
	}
	return deb_parse_show(spec, out, info, err);
}

char *deb_cache_dir(const char *store_dir)
{
	const char *env = getenv("KILN_DEB_CACHE");
	if (env && *env)
		return xstrdup(env);
	return path_join(store_dir, "debs");
}

int deb_verify(const char *path, const char *sha256, uint64_t size, struct kiln_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", path);
	struct sha256 h;
	sha256_init(&h);
	char buf[65536];
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			sha256_abort(&h);
			return kiln_error_make(err, e, "read `%s`", path);
		}
		if (n == 0)
			break;
		sha256_update(&h, buf, (size_t)n);
		total += (uint64_t)n;
	}
	char digest[DIGEST_STRLEN];
	sha256_final_digest(&h, digest);
	if (strcmp(digest + 7, sha256) != 0)
		return kiln_error_make(err, 0, "`%s`: SHA256 mismatch (apt says %s, file is %s)", path,
				       sha256, digest + 7);
	if (size && total != size)
		return kiln_error_make(err, 0, "`%s`: size %llu, apt says %llu", path,
				       (unsigned long long)total, (unsigned long long)size);
	return 0;
}

char *deb_fetch(const struct deb_info *info, const char *cache_dir, struct kiln_error **err)
{
	const char *base = strrchr(info->filename, '/');
	base = base ? base + 1 : info->filename;
	if (!*base || base[0] == '.')
		return kiln_error_make(err, 0, "deb `%s`: bad file name `%s`", info->name,
				       info->filename),
		       NULL;
	if (mkdir_p(cache_dir, 0755, err) < 0)
		return NULL;
	cleanup_free char *path = path_join(cache_dir, base);
	struct kiln_error *verr = NULL;
	if (access(path, F_OK) == 0) {
		if (deb_verify(path, info->sha256, info->size, &verr) == 0)
			return steal_pointer(&path);
		/* A corrupt or stale file: fetch it again. */
		log_warn("%s; downloading it again", verr->msg);
		kiln_error_release(&verr);
		unlink(path);
	}
	cleanup_free char *tmpl = path_join(cache_dir, ".dl-XXXXXX");
	if (mkdtemp(tmpl) == NULL)
		return kiln_error_make(err, errno, "mkdtemp in `%s`", cache_dir), NULL;
	cleanup_free char *spec = xasprintf("%s=%s", info->name, info->version);
	char *argv[] = {"apt-get", "download", "-q", spec, NULL};
	log_info("downloading %s %s", info->name, info->version);
	cleanup_free char *out = NULL;
	int rc = run_capture(argv, tmpl, &out, err);
	/* apt names the file after the package and version (with the epoch,
	 * URL-encoded), not after the pool file: take the one .deb there. */
	cleanup_free char *got = NULL;
	if (rc == 0) {
		cleanup_dir DIR *d = opendir(tmpl);
		struct dirent *de;
		while (d && (de = readdir(d)) != NULL)
			if (str_has_suffix(de->d_name, ".deb") && got == NULL)
				got = path_join(tmpl, de->d_name);
	}
	if (rc != 0 || got == NULL) {
		struct kiln_error *ignored = NULL;
		rm_rf(tmpl, &ignored);
		kiln_error_release(&ignored);
		if (rc < 0)
			return kiln_error_wrap(err, "deb `%s`", info->name), NULL;
		char *trim = out ? out + strlen(out) : NULL;
		while (trim && trim > out && (trim[-1] == '\n' || trim[-1] == ' '))
			*--trim = '\0';
		return kiln_error_make(err, 0, "deb `%s`: apt-get download %s failed: %s", info->name,
				       spec, out && *out ? out : "(no output)"),
		       NULL;
	}
	if (deb_verify(got, info->sha256, info->size, err) < 0 || rename(got, path) < 0) {
		int e = errno;
		struct kiln_error *ignored = NULL;
		rm_rf(tmpl, &ignored);
		kiln_error_release(&ignored);
		if (*err == NULL)
			kiln_error_make(err, e, "rename into `%s`", path);
		return NULL;
	}
	rmdir(tmpl);
	return steal_pointer(&path);
}

char *deb_path_clean(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	const char *p = path;
	while (*p) {
		while (*p == '/')
			p++;
		const char *end = strchrnul(p, '/');
		size_t n = (size_t)(end - p);
		if (n == 0)
			break;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			strbuf_release(&sb);
			return NULL;
		}
		if (!(n == 1 && p[0] == '.')) {
			if (sb.len)
				strbuf_putc(&sb, '/');
			strbuf_append(&sb, p, n);
		}
		p = end;
	}
	return strbuf_detach(&sb, NULL);
}

struct nested {
	struct archive *outer;
	char block[65536];
};

static la_ssize_t nested_read(struct archive *a, void *arg, const void **buf)
{
	(void)a;
	struct nested *n = arg;
	la_ssize_t r = archive_read_data(n->outer, n->block, sizeof n->block);
	*buf = n->block;
	return r;
}

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
#define cleanup_archive_read __attribute__((cleanup(archive_read_freep)))

/* Opens the tar inside member MEMBER of the .deb (OUTER positioned on it)
 * and passes each entry, path cleaned, to FN. */
static int unpack_member(struct archive *outer, const char *deb_path, const char *member,
			 deb_entry_fn fn, void *arg, struct kiln_error **err)
{
	cleanup_archive_read struct archive *in = archive_read_new();
	archive_read_support_filter_all(in);
	archive_read_support_format_tar(in);
	archive_read_support_format_gnutar(in);
	struct nested n = {.outer = outer};
	if (archive_read_open(in, &n, NULL, nested_read, NULL) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "`%s`: %s: %s", deb_path, member,
				       archive_error_string(in));
	struct archive_entry *e;
	int r;
	while ((r = archive_read_next_header(in, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
		const char *name = archive_entry_pathname(e);
		cleanup_free char *clean = deb_path_clean(name ? name : "");
		if (clean == NULL)
			return kiln_error_make(err, 0, "`%s`: %s: entry `%s` leaves the root", deb_path,
					       member, name);
		const char *hl = archive_entry_hardlink(e);
		cleanup_free char *hlclean = NULL;
		if (hl) {
			hlclean = deb_path_clean(hl);
			if (hlclean == NULL || !*hlclean)
				return kiln_error_make(err, 0, "`%s`: %s: hard link `%s` leaves the root",
						       deb_path, member, hl);
		}
		if (fn(in, e, clean, hlclean, arg, err) < 0)
			return -1;
	}
	if (r != ARCHIVE_EOF)
		return kiln_error_make(err, 0, "`%s`: %s: %s", deb_path, member,
				       archive_error_string(in));
	return 0;
}

/* Streams the tar member of DEB_PATH whose name starts with PREFIX
 * ("data.tar", "control.tar") through FN. */
static int unpack_tar(const char *deb_path, const char *prefix, deb_entry_fn fn, void *arg,
		      struct kiln_error **err)
{
	cleanup_archive_read struct archive *outer = archive_read_new();
	archive_read_support_format_ar(outer);
	if (archive_read_open_filename(outer, deb_path, 65536) != ARCHIVE_OK)
		return kiln_error_make(err, 0, "`%s`: %s", deb_path, archive_error_string(outer));
	struct archive_entry *e;
	int r;
	bool seen_binary = false;
	while ((r = archive_read_next_header(outer, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);
		if (name == NULL)
			continue;
		if (strcmp(name, "debian-binary") == 0) {
			char ver[16] = {0};
			archive_read_data(outer, ver, sizeof ver - 1);
			if (strncmp(ver, "2.", 2) != 0)
				return kiln_error_make(err, 0, "`%s`: unsupported .deb format `%.4s`",
						       deb_path, ver);
			seen_binary = true;
			continue;
		}
		if (str_has_prefix(name, prefix)) {
			if (!seen_binary)
				return kiln_error_make(err, 0, "`%s`: not a .deb (no debian-binary)",
						       deb_path);
			return unpack_member(outer, deb_path, name, fn, arg, err);
		}
	}
	if (r != ARCHIVE_EOF)
		return kiln_error_make(err, 0, "`%s`: %s", deb_path, archive_error_string(outer));
	return kiln_error_make(err, 0, "`%s`: no %s member (not a .deb?)", deb_path, prefix);
}

int deb_unpack(const char *deb_path, deb_entry_fn fn, void *arg, struct kiln_error **err)
{
	return unpack_tar(deb_path, "data.tar", fn, arg, err);
}

#define DEB_CONTROL_MAX ((size_t)1 << 20)

struct control_read {
	struct strbuf text;
	bool found;
};

static int control_entry(struct archive *a, struct archive_entry *e, const char *path,
			 const char *hardlink, void *arg, struct kiln_error **err)
{
	struct control_read *c = arg;
	if (strcmp(path, "control") != 0 || hardlink || !S_ISREG(archive_entry_mode(e)) || c->found)
		return 0;
	c->found = true;
	strbuf_puts(&c->text, "");
	char buf[8192];
	la_ssize_t n;
	while ((n = archive_read_data(a, buf, sizeof buf)) > 0) {
		if (c->text.len + (size_t)n > DEB_CONTROL_MAX)
			return kiln_error_make(err, 0, "control file over %zu bytes",
					       DEB_CONTROL_MAX);
		strbuf_append(&c->text, buf, (size_t)n);
	}
	if (n < 0)
		return kiln_error_make(err, 0, "control: %s", archive_error_string(a));
	if (memchr(c->text.buf, '\0', c->text.len))
		return kiln_error_make(err, 0, "control file holds a NUL byte");
	return 0;
}

int deb_control(const char *deb_path, char **text, struct kiln_error **err)
{
	struct control_read c = {STRBUF_INIT, false};
	*text = NULL;
	if (unpack_tar(deb_path, "control.tar", control_entry, &c, err) < 0) {
		strbuf_release(&c.text);
		return kiln_error_wrap(err, "`%s`", deb_path);
	}
	if (!c.found) {
		strbuf_release(&c.text);
		return kiln_error_make(err, 0, "`%s`: control.tar has no control file", deb_path);
	}
	*text = strbuf_detach(&c.text, NULL);
	return 0;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

enum deb822_kind deb822_next(const char **p, const char *end, struct deb822_line *out)
{
	memset(out, 0, sizeof *out);
	if (*p >= end)
		return DEB822_END;
	const char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
	size_t len = (size_t)((nl ? nl : end) - line);
	*p = nl ? nl + 1 : end;
	if (len && line[len - 1] == '\r')
		len--;
	out->line = line;
	out->len = len;
	size_t i = 0;
	while (i < len && (is_blank(line[i]) || line[i] == '\r'))
		i++;
	if (i == len)
		return DEB822_BREAK;
	if (i > 0)
		return DEB822_CONT;
	const char *colon = memchr(line, ':', len);
	if (colon == NULL)
		return DEB822_OTHER;
	out->key = line;
	out->key_len = (size_t)(colon - line);
	const char *v = colon + 1, *e = line + len;
	while (v < e && is_blank(*v))
		v++;
	while (e > v && (is_blank(e[-1]) || e[-1] == '\r'))
		e--;
	out->value = v;
	out->value_len = (size_t)(e - v);
	return DEB822_FIELD;
}

bool deb822_is(const struct deb822_line *out, const char *key)
{
	size_t kl = strlen(key);
	return out->key && out->key_len == kl && strncasecmp(out->key, key, kl) == 0;
}

/* The value of field KEY in the first stanza of deb822 TEXT, or NULL. */
static char *stanza_field(const char *text, const char *key)
{
	const char *p = text, *end = text + strlen(text);
	struct deb822_line l;
	for (enum deb822_kind k; (k = deb822_next(&p, end, &l)) != DEB822_END && k != DEB822_BREAK;)
		if (deb822_is(&l, key))
			return xstrndup(l.value, l.value_len);
	return NULL;
}

char *deb_status_stanza(const char *control, char **name, struct kiln_error **err)
{
	*name = NULL;
	cleanup_free char *pkg = stanza_field(control, "Package");
	cleanup_free char *version = stanza_field(control, "Version");
	if (pkg == NULL || !*pkg || version == NULL || !*version)
		return kiln_error_make(err, 0, "control file without Package and Version"), NULL;
	if (pkg[0] == '.' || pkg[0] == '-' || strpbrk(pkg, "/ \t\\"))
		return kiln_error_make(err, 0, "control file: bad Package `%s`", pkg), NULL;
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	const char *p = control, *end = control + strlen(control);
	struct deb822_line l;
	/* dpkg reads the first stanza */
	for (enum deb822_kind k; (k = deb822_next(&p, end, &l)) != DEB822_END && k != DEB822_BREAK;) {
		/* A Status the control file had (none should) is dpkg's to say. */
		if (!deb822_is(&l, "Status")) {
			strbuf_append(&sb, l.line, l.len);
			strbuf_putc(&sb, '\n');
		}
		if (deb822_is(&l, "Package"))
			strbuf_puts(&sb, "Status: install ok installed\n");
	}
	*name = steal_pointer(&pkg);
	return strbuf_detach(&sb, NULL);
}

/* ---- batched resolution with a cache keyed by apt's state ---- */

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void hash_dir_state(struct sha256 *h, const char *dir, int depth)
{
	cleanup_dir DIR *d = opendir(dir);
	if (d == NULL || depth > 3)
		return;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, "partial") || !strcmp(de->d_name, "lock"))
			continue;
		names = xrealloc(names, (n + 1) * sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	if (n)
		qsort(names, n, sizeof *names, cmp_cstr);
	for (size_t i = 0; i < n; i++) {
		cleanup_free char *path = path_join(dir, names[i]);
		struct stat st;
		if (stat(path, &st) == 0) {
			cleanup_free char *line =
				xasprintf("%s %lld %lld.%09ld\n", path, (long long)st.st_size,
					  (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			sha256_update(h, line, strlen(line));
			if (S_ISDIR(st.st_mode))
				hash_dir_state(h, path, depth + 1);
		}
		free(names[i]);
	}
	free(names);
}

static char *apt_state_key(void)
{
	struct sha256 h;
	sha256_init(&h);
	hash_dir_state(&h, "/var/lib/apt/lists", 0);
	hash_dir_state(&h, "/etc/apt", 0);
	char digest[DIGEST_STRLEN];
	sha256_final_digest(&h, digest);
	return xstrndup(digest + 7, 16);
}

char *deb_resolve_cache_path(const char *cache_dir)
{
	cleanup_free char *key = apt_state_key();
	cleanup_free char *base = xasprintf("apt-resolved-%s", key);
	return path_join(cache_dir, base);
}

/* Cache line: SPEC \t NAME \t VERSION \t ARCH \t FILENAME \t SHA256 \t SIZE */
static bool cache_lookup(const char *text, const char *spec, struct deb_info *info)
{
	size_t sl = strlen(spec);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > sl && !strncmp(p, spec, sl) && p[sl] == '\t') {
			cleanup_free char *line = xstrndup(p + sl + 1, len - sl - 1);
			char *f[6];
			char *save = NULL, *tok = strtok_r(line, "\t", &save);
			size_t k = 0;
			for (; tok && k < 6; tok = strtok_r(NULL, "\t", &save))
				f[k++] = tok;
			uint64_t size;
			if (k == 6 && parse_u64(f[5], 10, &size) == 0 && strlen(f[4]) == SHA256_HEXLEN) {
				memset(info, 0, sizeof *info);
				info->name = xstrdup(f[0]);
				info->version = xstrdup(f[1]);
				info->arch = xstrdup(f[2]);
				info->filename = xstrdup(f[3]);
				info->sha256 = xstrdup(f[4]);
				info->size = size;
				return true;
			}
		}
		p = nl ? nl + 1 : NULL;
	}
	return false;
}

/* Splits `apt-cache show` output into stanzas and finds the one for SPEC. */
static int match_stanza(const char *out, const char *spec, struct deb_info *info,
			struct kiln_error **err)
{
	cleanup_free char *name = xstrdup(spec);
	char *eq = strchr(name, '=');
	const char *version = NULL;
	if (eq) {
		*eq = '\0';
		version = eq + 1;
	}
	const char *p = out;
	while (*p) {
		const char *end = strstr(p, "\n\n");
		size_t len = end ? (size_t)(end - p) + 1 : strlen(p);
		cleanup_free char *stanza = xstrndup(p, len);
		struct deb_info cand;
		struct kiln_error *ignored = NULL;
		if (deb_parse_show(spec, stanza, &cand, &ignored) == 0) {
			if (!strcmp(cand.name, name) && (!version || !strcmp(cand.version, version))) {
				*info = cand;
				return 0;
			}
			deb_info_release(&cand);
		}
		kiln_error_release(&ignored);
		p += len;
		while (*p == '\n')
			p++;
	}
	return kiln_error_make(err, 0,
			       "deb `%s`: apt-cache show gives no Package/Version/Filename/SHA256 "
			       "(a virtual package? name a real one)",
			       spec);
}

char *deb_parse_depends(const char *spec, const char *text, struct kiln_error **err)
{
	cleanup_free char *depends = NULL;
	for (const char *p = text; *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len == 0)
			break; /* only the first stanza */
		if (len > 8 && memcmp(p, "Depends:", 8) == 0) {
			depends = field_value(p, len);
			break;
		}
		p = nl ? nl + 1 : p + len;
	}
	if (depends == NULL || !*depends)
		return kiln_error_make(err, 0, "deb `%s`: apt-cache show gives no Depends", spec),
		       NULL;
	if (strpbrk(depends, ",|"))
		return kiln_error_make(err, 0,
				       "deb `%s`: Depends `%s` is not exactly one package (name the "
				       "package itself)",
				       spec, depends),
		       NULL;
	/* "NAME", "NAME (= VERSION)", or "NAME (>= VERSION)" (any version). */
	char *name = depends, *rel = strchr(depends, '(');
	char *end = rel ? rel : name + strlen(name);
	while (end > name && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	const char *version = NULL;
	if (rel && str_has_prefix(rel + 1, "= ")) {
		version = rel + 3;
		char *close = strchr(rel + 3, ')');
		if (close == NULL)
			return kiln_error_make(err, 0, "deb `%s`: malformed Depends", spec), NULL;
		*close = '\0';
	}
	if (!*name || name[0] == '-' || strpbrk(name, " \t/=") ||
	    (version && (!*version || strpbrk(version, " \t/="))))
		return kiln_error_make(err, 0, "deb `%s`: malformed Depends", spec), NULL;
	return version ? xasprintf("%s=%s", name, version) : xstrdup(name);
}

/* For SPEC "META:depends", the spec of META's one dependency, from
 * `apt-cache show --no-all-versions META` (caller frees). */
static char *resolve_depends(const char *spec, struct kiln_error **err)
{
	cleanup_free char *meta = xstrndup(spec, strlen(spec) - strlen(DEB_DEPENDS_SUFFIX));
	char *argv[] = {"apt-cache", "show", "--no-all-versions", meta, NULL};
	cleanup_free char *text = NULL;
	int st = run_capture(argv, NULL, &text, err);
	if (st < 0)
		return kiln_error_wrap(err, "deb `%s`", spec), NULL;
	if (st != 0) {
		char *nl = strchr(text, '\n');
		if (nl)
			*nl = '\0';
		return kiln_error_make(err, 0, "deb `%s`: apt-cache show failed: %s", spec, text),
		       NULL;
	}
	return deb_parse_depends(spec, text, err);
}

int deb_resolve_all(char *const *specs, size_t n, struct deb_info *out, const char *cache_dir,
		    struct kiln_error **err)
{
	memset(out, 0, n * sizeof *out);
	cleanup_free char *cache_path = NULL;
	cleanup_free char *cached = NULL;
	if (cache_dir) {
		cache_path = deb_resolve_cache_path(cache_dir);
		struct kiln_error *ignored = NULL;
		cached = read_file(cache_path, 4 << 20, NULL, &ignored);
		kiln_error_release(&ignored);
	}
	char **argv = xcalloc(n + 4, sizeof *argv);
	size_t argc = 0;
	argv[argc++] = "apt-cache";
	argv[argc++] = "show";
	argv[argc++] = "--no-all-versions";
	bool *need = xcalloc(n + 1, sizeof *need);
	/* What apt-cache is asked for each spec: the spec, or for
	 * "META:depends" META's dependency (cached under the spec). */
	char **query = xcalloc(n + 1, sizeof *query);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		const char *s = specs[i];
		if (s[0] == '-' || s[0] == ':' || strpbrk(s, " \t\n/")) {
			rc = kiln_error_make(err, 0, "deb `%s`: not a package name", s);
			goto out;
		}
		if (cached && cache_lookup(cached, s, &out[i]))
			continue;
		need[i] = true;
		bool meta = str_has_suffix(s, DEB_DEPENDS_SUFFIX);
		query[i] = meta ? resolve_depends(s, err) : xstrdup(s);
		if (query[i] == NULL) {
			rc = -1;
			goto out;
		}
		argv[argc++] = query[i];
	}
	if (argc > 3) {
		cleanup_free char *text = NULL;
		int st = run_capture(argv, NULL, &text, err);
		if (st < 0) {
			rc = -1;
			goto out;
		}
		if (st != 0) {
			char *nl = strchr(text, '\n');
			if (nl)
				*nl = '\0';
			rc = kiln_error_make(err, 0, "apt-cache show failed: %s", text);
			goto out;
		}
		struct strbuf sb = STRBUF_INIT;
		if (cached)
			strbuf_puts(&sb, cached);
		for (size_t i = 0; i < n; i++) {
			if (!need[i])
				continue;
			if (match_stanza(text, query[i], &out[i], err) < 0) {
				if (strcmp(query[i], specs[i]) != 0)
					kiln_error_wrap(err, "deb `%s`", specs[i]);
				strbuf_release(&sb);
				rc = -1;
				goto out;
			}
			strbuf_printf(&sb, "%s\t%s\t%s\t%s\t%s\t%s\t%llu\n", specs[i], out[i].name,
				      out[i].version, out[i].arch, out[i].filename, out[i].sha256,
				      (unsigned long long)out[i].size);
		}
		struct kiln_error *ignored = NULL;
		if (cache_path && mkdir_p(cache_dir, 0755, &ignored) == 0)
			write_file_atomic(cache_path, sb.buf, sb.len, 0644, &ignored);
		kiln_error_release(&ignored);
		strbuf_release(&sb);
	}
out:
	if (rc < 0)
		for (size_t i = 0; i < n; i++)
			deb_info_release(&out[i]);
	for (size_t i = 0; i < n; i++)
		free(query[i]);
	free(query);
	free(argv);
	free(need);
	return rc;
}
