/* See assemble.h. */
#include "assemble.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <openssl/evp.h>

#include "flatten.h"
#include "oci.h"
#include "cli.h"
#include "pathsafe.h"
#include "sha256.h"
#include "spec.h"
#include "strbuf.h"
#include "tarw.h"
#include "util.h"

static const char hosts_file[] = "127.0.0.1       localhost\n"
				 "::1     localhost ip6-localhost ip6-loopback\n"
				 "fe00::0 ip6-localnet\n"
				 "ff00::0 ip6-mcastprefix\n"
				 "ff02::1 ip6-allnodes\n"
				 "ff02::2 ip6-allrouters\n";
static const char resolv_file[] = "\n# no resolv.conf configured\n";

struct assembly {
	const struct assemble_options *o;
	struct tarw *w;
	struct pathmap *tree;	/* every path written: uint8_t pathsafe_type */
	struct pathmap *shared; /* manifest digest → char * extraction dir */
	const char *source;	/* LINUXKIT.source of what is being written */
	char location[64];	/* LINUXKIT.location */
	const char *prefix;	/* of the image being extracted */
	/* sections */
	const char *work_dir, *cache_dir;
	struct assemble_result *res;
	unsigned char prev_key[32];
	int fd;		     /* the current section's temp file */
	char *tmp_path;	     /* its name */
	struct strbuf delta; /* paths the current section adds (type byte, path, NUL) */
	bool recording;
};

int64_t assemble_epoch(void)
{
	const char *s = getenv("SOURCE_DATE_EPOCH");
	uint64_t v;
	if (s && *s && parse_u64(s, 10, &v) == 0 && v < ((uint64_t)1 << 40))
		return (int64_t)v;
	return ASSEMBLE_DEFAULT_EPOCH;
}

char *assemble_bundle_dir(const char *section, size_t index, const char *name)
{
	if (strcmp(section, "services") == 0)
		return xasprintf("containers/services/%s", name);
	return xasprintf("containers/%s/%03zu-%s", section, index, name);
}

const struct manifest_image *assemble_find_container(const struct manifest *m, const char *name,
						     const char **section_out, size_t *index_out)
{
	const struct {
		const char *name;
		const struct manifest_image_list *l;
	} sections[] = {
	    {"onboot", &m->onboot}, {"onshutdown", &m->onshutdown}, {"services", &m->services}};
	for (size_t s = 0; s < ARRAY_SIZE(sections); s++)
		for (size_t i = 0; i < sections[s].l->n; i++)
			if (strcmp(sections[s].l->v[i].name, name) == 0) {
				if (section_out)
					*section_out = sections[s].name;
				if (index_out)
					*index_out = i;
				return &sections[s].l->v[i];
			}
	return NULL;
}

static enum pathsafe_type tree_lookup(void *ctx, const char *path, size_t len)
{
	struct assembly *A = ctx;
	uint8_t *t = pathmap_get(A->tree, path, len);
	return t ? (enum pathsafe_type) * t : PATHSAFE_ABSENT;
}

static bool tree_has(struct assembly *A, const char *path)
{
	return pathmap_get(A->tree, path, strlen(path)) != NULL;
}

static void tree_record(struct assembly *A, struct archive_entry *e)
{
	const char *p = archive_entry_pathname(e);
	size_t len = strlen(p);
	while (len && p[len - 1] == '/')
		len--;
	enum pathsafe_type t = PATHSAFE_OTHER;
	if (!archive_entry_hardlink(e)) {
		if (archive_entry_filetype(e) == AE_IFDIR)
			t = PATHSAFE_DIR;
		else if (archive_entry_filetype(e) == AE_IFLNK)
			t = PATHSAFE_SYMLINK;
	}
	*(uint8_t *)pathmap_put(A->tree, p, len, NULL) = (uint8_t)t;
	if (A->recording) {
		strbuf_putc(&A->delta, (char)('0' + t));
		strbuf_append(&A->delta, p, len);
		strbuf_putc(&A->delta, '\0');
	}
}

/* Entries from images were checked by the flattener against their own root. */
static int image_emit(void *ctx, struct archive_entry *e, struct archive *data,
		      struct kiln_error **err)
{
	struct assembly *A = ctx;
	tree_record(A, e);
	return tarw_add(A->w, e, data, NULL, A->source, A->location, err);
}

/* A generated entry (or a files entry): PATH goes through the audited check
 * against the whole tree so far. */
static int gen_entry(struct assembly *A, const char *path, mode_t type, mode_t mode, uint32_t uid,
		     uint32_t gid, const char *symlink, const void *buf, size_t len, int fd,
		     struct kiln_error **err)
{
	cleanup_free char *clean = NULL;
	if (pathsafe_check(path, NULL, PATHSAFE_STRIP_ROOT, tree_lookup, A, &clean, NULL, err) < 0)
		return -1;
	if (!*clean)
		return 0;
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, clean);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode & 07777);
	archive_entry_set_uid(e, uid);
	archive_entry_set_gid(e, gid);
	archive_entry_set_mtime(e, A->o->epoch, 0);
	if (symlink)
		archive_entry_set_symlink(e, symlink);
	if (type == AE_IFREG)
		archive_entry_set_size(e, (la_int64_t)len);
	tree_record(A, e);
	int r = fd >= 0 ? tarw_add_fd(A->w, e, fd, A->source, A->location, err)
			: tarw_add(A->w, e, NULL, len ? (buf ? buf : "") : NULL, A->source,
				   A->location, err);
	archive_entry_free(e);
	return r;
}

static int gen_dir(struct assembly *A, const char *path, mode_t mode, struct kiln_error **err)
{
	return gen_entry(A, path, AE_IFDIR, mode, 0, 0, NULL, NULL, 0, -1, err);
}

/* Emits PATH and its missing parents as 0755 root directories. */
static int gen_dirs(struct assembly *A, const char *path, struct kiln_error **err)
{
	cleanup_free char *p = xstrdup(path);
	for (char *s = p;; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (*p && !tree_has(A, p) && gen_dir(A, p, 0755, err) < 0)
				return -1;
			*s = c;
			if (!c)
				break;
		}
	}
	return 0;
}

/* LINUXKIT.location: "kernel" when INDEX is (size_t)-1, else "WHAT[INDEX]". */
static void set_location(struct assembly *A, const char *what, size_t index)
{
	if (index == (size_t)-1)
		snprintf(A->location, sizeof(A->location), "%s", what);
	else
		snprintf(A->location, sizeof(A->location), "%s[%zu]", what, index);
}

/* LinuxKit's excluded and replaced files (image.go). */
static int image_filter(void *ctx, const char *path, struct archive_entry *e)
{
	(void)ctx;
	(void)e;
	static const char *const drop[] = {".dockerenv", "Dockerfile",	   "dev/console",
					   "dev/pts",	 "dev/shm",	   "etc/hostname",
					   "etc/hosts",	 "etc/resolv.conf"};
	for (size_t i = 0; i < ARRAY_SIZE(drop); i++)
		if (strcmp(path, drop[i]) == 0)
			return 1;
	return 0;
}

static int image_layers(struct assembly *A, const struct image *img, struct flatten_layer **out,
			char ***paths_out)
{
	struct flatten_layer *layers = xcalloc(img->nlayers ? img->nlayers : 1, sizeof(*layers));
	char **paths = xcalloc(img->nlayers ? img->nlayers : 1, sizeof(*paths));
	for (size_t i = 0; i < img->nlayers; i++) {
		paths[i] = store_blob_path(A->o->store, img->layers[i].digest);
		layers[i] = (struct flatten_layer){paths[i], img->layers[i].digest, NULL};
	}
	*out = layers;
	*paths_out = paths;
	return 0;
}

static void free_paths(char **paths, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}

/* Extracts IMG under PREFIX ("" or "dir/…/" with the directory already
 * written), then LinuxKit's generated entries. */
static int extract_image(struct assembly *A, const struct image *img, const char *prefix,
			 bool resolv_symlink, struct kiln_error **err)
{
	struct flatten_layer *layers;
	char **paths;
	image_layers(A, img, &layers, &paths);
	struct flatten_options fo = {.image = img->name,
				     .prefix = prefix,
				     .epoch = A->o->epoch,
				     .emit = image_emit,
				     .filter = image_filter,
				     .ctx = A};
	int r = flatten_image(layers, img->nlayers, &fo, err);
	free(layers);
	free_paths(paths, img->nlayers);
	if (r < 0)
		return -1;
	/* Generated entries, in sorted order. */
	static const char *const dirs1[] = {"dev", "dev/pts", "dev/shm", "etc"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs1); i++) {
		cleanup_free char *p = xasprintf("%s%s", prefix, dirs1[i]);
		if (!tree_has(A, p) && gen_dir(A, p, 0755, err) < 0)
			return -1;
	}
	cleanup_free char *hosts = xasprintf("%setc/hosts", prefix);
	if (gen_entry(A, hosts, AE_IFREG, 0644, 0, 0, NULL, hosts_file, strlen(hosts_file), -1,
		      err) < 0)
		return -1;
	cleanup_free char *mtab = xasprintf("%setc/mtab", prefix);
	if (!tree_has(A, mtab) &&
	    gen_entry(A, mtab, AE_IFLNK, 0644, 0, 0, "/proc/mounts", NULL, 0, -1, err) < 0)
		return -1;
	cleanup_free char *resolv = xasprintf("%setc/resolv.conf", prefix);
	if (resolv_symlink) {
		if (gen_entry(A, resolv, AE_IFLNK, 0644, 0, 0, "/run/resolvconf/resolv.conf", NULL,
			      0, -1, err) < 0)
			return -1;
	} else if (gen_entry(A, resolv, AE_IFREG, 0644, 0, 0, NULL, resolv_file,
			     strlen(resolv_file), -1, err) < 0) {
		return -1;
	}
	static const char *const dirs2[] = {"proc", "sys"};
	for (size_t i = 0; i < ARRAY_SIZE(dirs2); i++) {
		cleanup_free char *p = xasprintf("%s%s", prefix, dirs2[i]);
		if (!tree_has(A, p) && gen_dir(A, p, 0755, err) < 0)
			return -1;
	}
	return 0;
}

/* ---- sections ---- */

#define SECTION_FORMAT "kiln-section-v1"

static void hex(const unsigned char *raw, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * n] = '\0';
}

static int load_delta(struct assembly *A, const char *tree_path, uint64_t *tar_size,
		      struct kiln_error **err)
{
	size_t len;
	cleanup_free char *buf = read_file(tree_path, (size_t)1 << 30, &len, err);
	if (!buf)
		return -1;
	char *nl = memchr(buf, '\n', len);
	unsigned long long size;
	if (!nl || sscanf(buf, SECTION_FORMAT " %llu", &size) != 1)
		return kiln_error_make(err, EINVAL, "`%s`: not a section tree", tree_path);
	*tar_size = size;
	for (char *p = nl + 1; p < buf + len;) {
		char *end = memchr(p, '\0', (size_t)(buf + len - p));
		if (!end || end == p)
			return kiln_error_make(err, EINVAL, "`%s`: truncated", tree_path);
		*(uint8_t *)pathmap_put(A->tree, p + 1, (size_t)(end - p - 1), NULL) =
		    (uint8_t)(p[0] - '0');
		p = end + 1;
	}
	return 0;
}

static void add_result(struct assembly *A, const char *key, char *tar_path, bool cacheable,
		       bool reused)
{
	struct assemble_result *r = A->res;
	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	struct assemble_section *sec = &r->v[r->n++];
	memset(sec, 0, sizeof(*sec));
	snprintf(sec->key, sizeof(sec->key), "%s", key);
	sec->tar_path = tar_path;
	sec->cacheable = cacheable;
	sec->reused = reused;
}

/* Starts a section described by DESC: returns 1 when it was found in the
 * cache (its paths are now in the tree, nothing to write), 0 when the
 * caller writes it (A->w is ready), -1 on error. */
static int begin_section(struct assembly *A, const struct strbuf *desc, bool cacheable,
			 struct kiln_error **err)
{
	unsigned char raw[32];
	unsigned int rawlen = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		oom();
	char epoch[32];
	snprintf(epoch, sizeof(epoch), "%lld\n", (long long)A->o->epoch);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, A->prev_key, sizeof(A->prev_key));
	EVP_DigestUpdate(md, SECTION_FORMAT "\n" KILN_VERSION "\n",
			 strlen(SECTION_FORMAT "\n" KILN_VERSION "\n"));
	EVP_DigestUpdate(md, epoch, strlen(epoch));
	EVP_DigestUpdate(md, desc->buf ? desc->buf : "", desc->len);
	EVP_DigestFinal_ex(md, raw, &rawlen);
	EVP_MD_CTX_free(md);
	memcpy(A->prev_key, raw, sizeof(A->prev_key));
	char key[65];
	hex(raw, 32, key);
	bool cache = cacheable && A->cache_dir;
	char *final = cache ? xasprintf("%s/%s.tar", A->cache_dir, key)
			    : xasprintf("%s/section-%03zu.tar", A->work_dir, A->res->n);
	if (cache) {
		cleanup_free char *tree = xasprintf("%s/%s.tree", A->cache_dir, key);
		struct stat st;
		uint64_t size = 0;
		struct kiln_error *e = NULL;
		if (stat(final, &st) == 0 && access(tree, R_OK) == 0 &&
		    load_delta(A, tree, &size, &e) == 0 && (uint64_t)st.st_size == size) {
			utimensat(AT_FDCWD, final, NULL, 0);
			utimensat(AT_FDCWD, tree, NULL, 0);
			add_result(A, key, final, true, true);
			return 1;
		}
		kiln_error_release(&e);
	}
	free(A->tmp_path);
	A->tmp_path = xasprintf("%s.tmp-%ld", final, (long)getpid());
	A->fd = open(A->tmp_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (A->fd < 0) {
		int e = errno;
		free(final);
		return kiln_error_make(err, e, "create `%s`", A->tmp_path);
	}
	A->w = tarw_new(A->fd);
	strbuf_reset(&A->delta);
	A->recording = true;
	add_result(A, key, final, cacheable, false);
	return 0;
}

static int end_section(struct assembly *A, struct kiln_error **err)
{
	struct assemble_section *sec = &A->res->v[A->res->n - 1];
	int r = tarw_flush(A->w, err);
	uint64_t size = tarw_offset(A->w);
	tarw_free(A->w);
	A->w = NULL;
	A->recording = false;
	if (r == 0 && close(A->fd) < 0)
		r = kiln_error_make(err, errno, "close `%s`", A->tmp_path);
	else if (r < 0)
		close(A->fd);
	A->fd = -1;
	if (r == 0 && rename(A->tmp_path, sec->tar_path) < 0)
		r = kiln_error_make(err, errno, "rename `%s`", sec->tar_path);
	if (r < 0) {
		unlink(A->tmp_path);
		return -1;
	}
	free(A->tmp_path);
	A->tmp_path = NULL;
	if (sec->cacheable && A->cache_dir) {
		cleanup_free char *tree = xasprintf("%s/%s.tree", A->cache_dir, sec->key);
		struct strbuf t = STRBUF_INIT;
		strbuf_printf(&t, SECTION_FORMAT " %llu\n", (unsigned long long)size);
		strbuf_append(&t, A->delta.buf ? A->delta.buf : "", A->delta.len);
		/* The cache is an optimisation: failing to keep an entry is not an error. */
		struct kiln_error *e = NULL;
		if (write_file_atomic(tree, t.buf, t.len, 0644, &e) < 0)
			kiln_error_release(&e);
		strbuf_release(&t);
	}
	return 0;
}

static void abort_section(struct assembly *A)
{
	if (A->w) {
		tarw_free(A->w);
		A->w = NULL;
	}
	if (A->fd >= 0) {
		close(A->fd);
		A->fd = -1;
	}
	if (A->tmp_path) {
		unlink(A->tmp_path);
		free(A->tmp_path);
		A->tmp_path = NULL;
	}
	A->recording = false;
}

/* ---- kernel ---- */

struct kernel_ctx {
	struct assembly *A;
	const char *binary, *tar, *ucode;
	bool got_kernel;
};

struct nested {
	struct archive *outer;
	char buf[64 * 1024];
};

static la_ssize_t nested_read(struct archive *a, void *ctx, const void **buf)
{
	(void)a;
	struct nested *n = ctx;
	la_ssize_t r = archive_read_data(n->outer, n->buf, sizeof(n->buf));
	*buf = n->buf;
	return r;
}

/* --decompress-kernel: a gzip (or other compressed) kernel is stored
 * decompressed; an uncompressed one as it is.  The size must be known
 * before the tar header, so the data is spooled to a work file. */
static int emit_decompressed(struct assembly *A, struct archive_entry *e, struct archive *data,
			     struct kiln_error **err)
{
	struct nested n = {.outer = data};
	struct archive *raw = archive_read_new();
	archive_read_support_filter_all(raw);
	archive_read_support_format_raw(raw);
	struct archive_entry *re;
	if (archive_read_open(raw, &n, NULL, nested_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(raw, &re) != ARCHIVE_OK) {
		kiln_error_make(err, 0, "decompress kernel: %s", archive_error_string(raw));
		archive_read_free(raw);
		return -1;
	}
	cleanup_free char *path =
	    xasprintf("%s/kernel.decompressed", A->work_dir ? A->work_dir : "/tmp");
	cleanup_close int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int r = fd < 0 ? kiln_error_make(err, errno, "create `%s`", path) : 0;
	char buf[65536];
	la_ssize_t got;
	while (r == 0 && (got = archive_read_data(raw, buf, sizeof(buf))) > 0)
		r = write_all(fd, buf, (size_t)got, err);
	if (r == 0 && got < 0)
		r = kiln_error_make(err, 0, "decompress kernel: %s", archive_error_string(raw));
	archive_read_free(raw);
	unlink(path);
	if (r < 0)
		return -1;
	off_t size = lseek(fd, 0, SEEK_CUR);
	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return kiln_error_make(err, errno, "seek `%s`", path);
	archive_entry_set_size(e, size);
	tree_record(A, e);
	return tarw_add_fd(A->w, e, fd, A->source, A->location, err);
}

static int kernel_emit(void *ctx, struct archive_entry *e, struct archive *data,
		       struct kiln_error **err)
{
	struct kernel_ctx *k = ctx;
	struct assembly *A = k->A;
	const char *name = archive_entry_pathname(e);
	if (archive_entry_filetype(e) != AE_IFREG || archive_entry_hardlink(e))
		return 0;
	if (strcmp(name, k->binary) == 0) {
		archive_entry_set_pathname(e, "boot/kernel");
		k->got_kernel = true;
		if (A->o->decompress_kernel && data)
			return emit_decompressed(A, e, data, err);
		return image_emit(A, e, data, err);
	}
	if (k->ucode && strcmp(name, k->ucode) == 0) {
		archive_entry_set_pathname(e, "boot/ucode.cpio");
		return image_emit(A, e, data, err);
	}
	if (k->tar && strcmp(name, k->tar) == 0 && data) {
		struct nested n = {.outer = data};
		struct archive *inner = archive_read_new();
		archive_read_support_filter_all(inner);
		archive_read_support_format_tar(inner);
		if (archive_read_open(inner, &n, NULL, nested_read, NULL) != ARCHIVE_OK) {
			kiln_error_make(err, 0, "%s: %s", k->tar, archive_error_string(inner));
			archive_read_free(inner);
			return -1;
		}
		struct flatten_layer l = {name, NULL, inner};
		struct flatten_options fo = {.image = name,
					     .prefix = "",
					     .epoch = A->o->epoch,
					     .emit = image_emit,
					     .ctx = A};
		int r = flatten_image(&l, 1, &fo, err);
		archive_read_free(inner);
		return r;
	}
	return 0;
}

static int kernel_section(struct assembly *A, struct kiln_error **err)
{
	const struct manifest_kernel *mk = &A->o->m->kernel;
	if (!mk->set || !mk->image)
		return 0;
	cleanup_image struct image *img = A->o->load(A->o->load_ctx, mk->image, err);
	if (!img)
		return kiln_error_wrap(err, "kernel %s", mk->image);
	A->source = mk->image;
	set_location(A, "kernel", (size_t)-1);
	struct strbuf desc = STRBUF_INIT;
	strbuf_printf(&desc, "kernel\n%s\n%s\n%s\n%s\n%s\n%s\n%d\n", img->manifest_digest,
		      mk->binary ? mk->binary : "-", mk->tar ? mk->tar : "-",
		      mk->ucode ? mk->ucode : "-", mk->cmdline ? mk->cmdline : "-", mk->image,
		      (int)A->o->decompress_kernel);
	int b = begin_section(A, &desc, true, err);
	strbuf_release(&desc);
	if (b != 0)
		return b < 0 ? -1 : 0;
	if (gen_dir(A, "boot", 0755, err) < 0)
		return -1;
	struct kernel_ctx k = {A, mk->binary && *mk->binary ? mk->binary : "kernel",
			       mk->tar ? mk->tar : "kernel.tar", mk->ucode, false};
	if (k.tar && (!*k.tar || strcmp(k.tar, "none") == 0))
		k.tar = NULL;
	if (k.ucode && !*k.ucode)
		k.ucode = NULL;
	struct flatten_layer *layers;
	char **paths;
	image_layers(A, img, &layers, &paths);
	struct flatten_options fo = {
	    .image = img->name, .prefix = "", .epoch = A->o->epoch, .emit = kernel_emit, .ctx = &k};
	int r = flatten_image(layers, img->nlayers, &fo, err);
	free(layers);
	free_paths(paths, img->nlayers);
	if (r < 0)
		return kiln_error_wrap(err, "kernel");
	if (!k.got_kernel)
		return kiln_error_make(err, ENOENT, "kernel image %s has no file `%s`", mk->image,
				       k.binary);
	const char *cmdline = mk->cmdline ? mk->cmdline : "";
	if (gen_entry(A, "boot/cmdline", AE_IFREG, 0644, 0, 0, NULL, cmdline, strlen(cmdline), -1,
		      err) < 0)
		return -1;
	return end_section(A, err);
}

/* ---- init, volumes, containers, files ---- */

static int init_section(struct assembly *A, struct kiln_error **err)
{
	for (size_t i = 0; i < A->o->m->ninit; i++) {
		const char *ref = A->o->m->init[i].image;
		cleanup_image struct image *img = A->o->load(A->o->load_ctx, ref, err);
		if (!img)
			return kiln_error_wrap(err, "init[%zu] %s", i, ref);
		A->source = ref;
		set_location(A, "init", i);
		struct strbuf desc = STRBUF_INIT;
		strbuf_printf(&desc, "init\n%zu\n%s\n%s\n", i, img->manifest_digest, ref);
		int b = begin_section(A, &desc, true, err);
		strbuf_release(&desc);
		if (b < 0)
			return -1;
		if (b == 1)
			continue;
		if (extract_image(A, img, "", true, err) < 0)
			return kiln_error_wrap(err, "init[%zu]", i);
		if (end_section(A, err) < 0)
			return -1;
	}
	return 0;
}

/* `format: oci`: the image as an OCI image layout under DIR (the root
 * index or manifest, and the manifest, config and layers of the platform
 * in the store), blobs copied byte for byte. */
static int volume_oci(struct assembly *A, const struct image *img, const char *dir,
		      struct kiln_error **err)
{
	size_t len;
	cleanup_free char *root =
	    store_blob_read(A->o->store, img->root_digest, OCI_MANIFEST_MAX, &len, err);
	if (!root)
		return -1;
	json_t *doc = oci_json_parse(root, len, "root", err);
	if (!doc)
		return -1;
	const char *mt = oci_document_media_type(doc);
	cleanup_free char *index = xasprintf("{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
					     "\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
					     mt ? mt : OCI_MEDIA_MANIFEST, img->root_digest, len);
	json_decref(doc);
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	cleanup_free char *p1 = xasprintf("%s/oci-layout", dir);
	cleanup_free char *p2 = xasprintf("%s/index.json", dir);
	cleanup_free char *p3 = xasprintf("%s/blobs/sha256", dir);
	if (gen_entry(A, p1, AE_IFREG, 0644, 0, 0, NULL, layout, strlen(layout), -1, err) < 0 ||
	    gen_entry(A, p2, AE_IFREG, 0644, 0, 0, NULL, index, strlen(index), -1, err) < 0 ||
	    gen_dirs(A, p3, err) < 0)
		return -1;
	size_t n = 3 + img->nlayers;
	const char **digests = xcalloc(n, sizeof(*digests));
	size_t k = 0;
	digests[k++] = img->root_digest;
	if (strcmp(img->manifest_digest, img->root_digest) != 0)
		digests[k++] = img->manifest_digest;
	digests[k++] = img->config_digest;
	for (size_t i = 0; i < img->nlayers; i++)
		digests[k++] = img->layers[i].digest;
	int r = 0;
	for (size_t i = 0; i < k && r == 0; i++) {
		cleanup_free char *bp = xasprintf("%s/%s", p3, digests[i] + strlen("sha256:"));
		if (tree_has(A, bp))
			continue;
		int64_t size = store_blob_size(A->o->store, digests[i]);
		int fd = store_blob_open(A->o->store, digests[i], err);
		if (fd < 0 || size < 0) {
			if (fd >= 0)
				close(fd);
			r = fd < 0 ? -1 : kiln_error_make(err, ENOENT, "blob %s", digests[i]);
			break;
		}
		r = gen_entry(A, bp, AE_IFREG, 0644, 0, 0, NULL, NULL, (size_t)size, fd, err);
		close(fd);
	}
	free(digests);
	return r;
}

static int volume_section(struct assembly *A, struct kiln_error **err)
{
	for (size_t i = 0; i < A->o->m->nvolumes; i++) {
		const struct manifest_volume *v = &A->o->m->volumes[i];
		A->source = "linuxkit.volumes";
		set_location(A, "volume", i);
		cleanup_image struct image *vimg = NULL;
		bool oci = v->format && strcmp(v->format, "oci") == 0;
		if (v->image && *v->image) {
			vimg = A->o->load(A->o->load_ctx, v->image, err);
			if (!vimg)
				return kiln_error_wrap(err, "volume %s", v->name);
		}
		struct strbuf desc = STRBUF_INIT;
		bool readonly = v->readonly.set && v->readonly.value;
		strbuf_printf(&desc, "volume\n%zu\n%s\n%s\n%s\n%d\n%d\n", i, v->name,
			      vimg ? vimg->manifest_digest : "-", v->image ? v->image : "-",
			      (int)oci, (int)readonly);
		int b = begin_section(A, &desc, vimg != NULL, err);
		strbuf_release(&desc);
		if (b < 0)
			return -1;
		if (b == 1)
			continue;
		cleanup_free char *dir = xasprintf("containers/volumes/%s", v->name);
		if (gen_dirs(A, dir, err) < 0)
			return -1;
		cleanup_free char *lower = xasprintf("%s/lower", dir);
		if (gen_dir(A, lower, 0755, err) < 0)
			return -1;
		if (vimg && oci) {
			A->source = v->image;
			if (volume_oci(A, vimg, lower, err) < 0)
				return kiln_error_wrap(err, "volume %s", v->name);
			A->source = "linuxkit.volumes";
		} else if (vimg) {
			A->source = v->image;
			cleanup_free char *prefix = xasprintf("%s/", lower);
			if (extract_image(A, vimg, prefix, true, err) < 0)
				return kiln_error_wrap(err, "volume %s", v->name);
			A->source = "linuxkit.volumes";
		}
		/* No tmp/ for a read-only volume: the init then binds lower/
		 * read-only instead of an overlay with a writable upper. */
		cleanup_free char *tmp = xasprintf("%s/tmp", dir);
		cleanup_free char *merged = xasprintf("%s/merged", dir);
		if ((!readonly && gen_dir(A, tmp, 0755, err) < 0) ||
		    gen_dir(A, merged, 0755, err) < 0)
			return -1;
		if (end_section(A, err) < 0)
			return -1;
	}
	return 0;
}

static int container(struct assembly *A, const char *section, size_t i,
		     const struct manifest_image *entry, struct kiln_error **err)
{
	cleanup_image struct image *img = A->o->load(A->o->load_ctx, entry->image, err);
	if (!img)
		return -1;
	A->source = entry->image;
	set_location(A, section, i);
	cleanup_free char *bundle = assemble_bundle_dir(section, i, entry->name);
	char **shared = pathmap_get(A->shared, img->manifest_digest, strlen(img->manifest_digest));
	struct spec_input in = {.m = A->o->m,
				.entry = entry,
				.image_config = img->config,
				.bundle = bundle,
				.shared_root = shared ? *shared : NULL};
	bool readonly;
	cleanup_free char *config = NULL, *runtime = NULL;
	if (spec_is_readonly(&in, &readonly, err) < 0 ||
	    spec_generate(&in, &config, &runtime, err) < 0)
		return -1;
	/* The generated specs capture every YAML, label and manifest input. */
	struct strbuf desc = STRBUF_INIT;
	strbuf_printf(&desc, "container\n%s\n%zu\n%s\n%s\n%s\n%d\n%s\n%s\n%s\n", section, i,
		      entry->name, img->manifest_digest, entry->image, (int)readonly,
		      shared ? *shared : "-", config, runtime);
	int b = begin_section(A, &desc, true, err);
	strbuf_release(&desc);
	if (b < 0)
		return -1;
	if (b == 1) {
		if (!shared) {
			char **slot = pathmap_put(A->shared, img->manifest_digest,
						  strlen(img->manifest_digest), NULL);
			*slot = xasprintf("%s/%s", bundle, readonly ? "rootfs" : "lower");
		}
		return 0;
	}
	if (gen_dirs(A, bundle, err) < 0)
		return -1;
	cleanup_free char *rootfs = xasprintf("%s/rootfs", bundle);
	cleanup_free char *lower = xasprintf("%s/lower", bundle);
	const char *extract_dir = readonly ? rootfs : lower;
	if (!shared) {
		if (gen_dir(A, extract_dir, 0755, err) < 0)
			return -1;
		cleanup_free char *prefix = xasprintf("%s/", extract_dir);
		if (extract_image(A, img, prefix, false, err) < 0)
			return -1;
		char **slot = pathmap_put(A->shared, img->manifest_digest,
					  strlen(img->manifest_digest), NULL);
		*slot = xstrdup(extract_dir);
	}
	if (!readonly) {
		cleanup_free char *tmp = xasprintf("%s/tmp", bundle);
		if (gen_dir(A, tmp, 0755, err) < 0)
			return -1;
	}
	if (!tree_has(A, rootfs) && gen_dir(A, rootfs, 0755, err) < 0)
		return -1;
	cleanup_free char *cpath = xasprintf("%s/config.json", bundle);
	cleanup_free char *rpath = xasprintf("%s/runtime.json", bundle);
	if (gen_entry(A, cpath, AE_IFREG, 0644, 0, 0, NULL, config, strlen(config), -1, err) < 0 ||
	    gen_entry(A, rpath, AE_IFREG, 0644, 0, 0, NULL, runtime, strlen(runtime), -1, err) < 0)
		return -1;
	return end_section(A, err);
}

static int containers_section(struct assembly *A, const char *section,
			      const struct manifest_image_list *l, struct kiln_error **err)
{
	for (size_t i = 0; i < l->n; i++)
		if (container(A, section, i, &l->v[i], err) < 0)
			return kiln_error_wrap(err, "%s[%zu] \"%s\"", section, i, l->v[i].name);
	return 0;
}

/* Adds x for every class (user, group, other) that has any bit: 0644 → 0755. */
static mode_t dir_mode_for(mode_t m)
{
	mode_t d = m & 0777;
	for (int shift = 0; shift < 9; shift += 3)
		if (d & (07u << shift))
			d |= 01u << shift;
	return d;
}

static char *expand_home(const char *p)
{
	if (strncmp(p, "~/", 2) != 0)
		return xstrdup(p);
	const char *home = getenv("HOME");
	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : "/";
	}
	return path_join(home, p + 2);
}

static int file_entry(struct assembly *A, size_t i, const struct manifest_file *f,
		      struct kiln_error **err)
{
	cleanup_free char *path = pathsafe_clean(f->path, PATHSAFE_STRIP_ROOT, err);
	if (!path)
		return -1;
	bool is_dir = f->directory.set && f->directory.value;
	mode_t mode = f->mode.set ? (mode_t)f->mode.value : (is_dir ? 0700 : 0600);
	uint32_t uid = 0, gid = 0;
	if ((f->uid.set && manifest_id_resolve(A->o->m, &f->uid, &uid, err) < 0) ||
	    (f->gid.set && manifest_id_resolve(A->o->m, &f->gid, &gid, err) < 0))
		return -1;
	cleanup_close int fd = -1;
	cleanup_free char *contents = NULL;
	size_t len = 0;
	if (f->source) {
		cleanup_free char *src = expand_home(f->source);
		fd = open(src, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			if (f->optional.set && f->optional.value)
				return 0;
			return kiln_error_make(err, fd < 0 ? errno : EINVAL,
					       "source `%s` is not a readable file", src);
		}
		len = (size_t)st.st_size;
	} else if (f->metadata) {
		contents = manifest_dump_string(A->o->m, f->metadata, err);
		if (!contents)
			return -1;
		len = strlen(contents);
	} else if (f->contents) {
		len = strlen(f->contents);
	}
	/* Missing parents: created with the file's owner and a mode derived
	 * from its mode; parents that exist (from images) are left alone. */
	for (char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		int r = 0;
		if (!tree_has(A, path))
			r = gen_entry(A, path, AE_IFDIR, dir_mode_for(mode), uid, gid, NULL, NULL,
				      0, -1, err);
		*s = '/';
		if (r < 0)
			return -1;
	}
	if (is_dir)
		return gen_entry(A, path, AE_IFDIR, mode, uid, gid, NULL, NULL, 0, -1, err);
	if (f->symlink)
		return gen_entry(A, path, AE_IFLNK, mode, uid, gid, f->symlink, NULL, 0, -1, err);
	(void)i;
	return gen_entry(A, path, AE_IFREG, mode, uid, gid, NULL, contents ? contents : f->contents,
			 len, fd, err);
}

static int files_section(struct assembly *A, struct kiln_error **err)
{
	if (A->o->m->nfiles == 0)
		return 0;
	struct strbuf desc = STRBUF_INIT;
	strbuf_puts(&desc, "files\n");
	int b = begin_section(A, &desc, false, err);
	strbuf_release(&desc);
	if (b < 0)
		return -1;
	for (size_t i = 0; i < A->o->m->nfiles; i++) {
		A->source = "linuxkit.files";
		set_location(A, "files", i);
		if (file_entry(A, i, &A->o->m->files[i], err) < 0)
			return kiln_error_wrap(err, "files[%zu] %s", i, A->o->m->files[i].path);
	}
	return end_section(A, err);
}

static void free_shared(void *v, void *ctx)
{
	(void)ctx;
	free(*(char **)v);
}

int assemble_sections(const struct assemble_options *o, const char *work_dir, const char *cache_dir,
		      struct assemble_result *res, struct kiln_error **err)
{
	memset(res, 0, sizeof(*res));
	if (cache_dir && mkdir_p(cache_dir, 0755, err) < 0)
		return -1;
	struct assembly A = {.o = o,
			     .tree = pathmap_new(1),
			     .shared = pathmap_new(sizeof(char *)),
			     .work_dir = work_dir,
			     .cache_dir = cache_dir,
			     .res = res,
			     .fd = -1,
			     .delta = STRBUF_INIT};
	int r = kernel_section(&A, err);
	if (r == 0)
		r = init_section(&A, err);
	if (r == 0)
		r = volume_section(&A, err);
	if (r == 0)
		r = containers_section(&A, "onboot", &o->m->onboot, err);
	if (r == 0)
		r = containers_section(&A, "onshutdown", &o->m->onshutdown, err);
	if (r == 0)
		r = containers_section(&A, "services", &o->m->services, err);
	if (r == 0)
		r = files_section(&A, err);
	abort_section(&A);
	strbuf_release(&A.delta);
	pathmap_free(A.tree);
	pathmap_foreach(A.shared, free_shared, NULL);
	pathmap_free(A.shared);
	if (r < 0)
		assemble_result_release(res);
	return r;
}

int assemble_concat(const struct assemble_result *res, int fd, struct kiln_error **err)
{
	struct tarw *w = tarw_new(fd);
	int r = 0;
	for (size_t i = 0; i < res->n && r == 0; i++) {
		cleanup_close int in = open(res->v[i].tar_path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (in < 0 || fstat(in, &st) < 0)
			r = kiln_error_make(err, errno, "open `%s`", res->v[i].tar_path);
		else
			r = tarw_splice(w, in, (uint64_t)st.st_size, err);
	}
	if (r == 0)
		r = tarw_finish(w, err);
	tarw_free(w);
	return r;
}

void assemble_result_release(struct assemble_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		free(res->v[i].tar_path);
	free(res->v);
	res->v = NULL;
	res->n = 0;
}

void assemble_cache_prune(const char *cache_dir, const struct assemble_result *res, int64_t max_age)
{
	cleanup_dir DIR *d = cache_dir ? opendir(cache_dir) : NULL;
	if (!d)
		return;
	time_t now = time(NULL);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || strlen(de->d_name) < 64)
			continue;
		bool used = false;
		for (size_t i = 0; i < res->n && !used; i++)
			used = strncmp(de->d_name, res->v[i].key, 64) == 0;
		struct stat st;
		if (used || fstatat(dirfd(d), de->d_name, &st, 0) < 0)
			continue;
		if (now - st.st_mtime > max_age)
			unlinkat(dirfd(d), de->d_name, 0);
	}
}

int assemble_tar(const struct assemble_options *o, int fd, struct kiln_error **err)
{
	const char *tmp = getenv("TMPDIR");
	cleanup_free char *work = xasprintf("%s/kiln-assemble-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(work))
		return kiln_error_make(err, errno, "mkdtemp `%s`", work);
	struct assemble_result res;
	int r = assemble_sections(o, work, NULL, &res, err);
	if (r == 0)
		r = assemble_concat(&res, fd, err);
	assemble_result_release(&res);
	struct kiln_error *e = NULL;
	rm_rf(work, &e);
	kiln_error_release(&e);
	return r;
}
