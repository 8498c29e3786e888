/* kiln cache: list, remove, clean, verify, import and export images in the
 * store. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "image.h"
#include "log.h"
#include "oci.h"
#include "ref.h"
#include "store.h"
#include "store_archive.h"
#include "util.h"

static const char usage[] =
    "usage: kiln cache [--cache DIR] COMMAND [ARGS]\n"
    "\n"
    "The image store is an OCI image layout (the same layout as LinuxKit's\n"
    "~/.linuxkit/cache).  Default: $KILN_CACHE, else $XDG_CACHE_HOME/kiln, else\n"
    "~/.cache/kiln.\n"
    "\n"
    "Commands:\n"
    "  ls                        list images: name, root digest, size of the blobs present\n"
    "  rm NAME...                remove images, then the blobs no other image uses\n"
    "  clean                     remove every image and every blob\n"
    "  clean --unreferenced      remove only blobs no image uses and stale temp files\n"
    "        [--dry-run]         (with either) show what would be removed\n"
    "  verify [--keep-temp]      re-hash every blob and check that every image is\n"
    "                            complete; remove temp files older than an hour\n"
    "                            (--keep-temp: only report them); exit 1 on any problem\n"
    "  import PATH... [--name NAME]\n"
    "                            import an OCI layout directory, an OCI layout tar or a\n"
    "                            `docker save` archive (- reads a tar from stdin);\n"
    "                            --name names a single image\n"
    "  inspect NAME [--arch ARCH]\n"
    "                            print the resolved image as JSON: root, platform\n"
    "                            manifest, config, layers, labels\n"
    "  export NAME -o FILE|DIR/ [--format oci|docker|dir] [--arch ARCH] [--name AS]\n"
    "                            write an OCI layout tar (default), a `docker save`\n"
    "                            archive of one platform, or into an OCI layout\n"
    "                            directory (-o DIR/, an existing directory, or --format\n"
    "                            dir; --name AS names it there); -o - writes to stdout\n"
    "                            (LinuxKit's --outfile and --platform linux/ARCH work too)\n"
    "\n"
    "Options:\n"
    "  --cache DIR   the store to use\n"
    "  -v, -q        more or less output\n";

struct cache_opts {
	const char *cache;
	bool unreferenced, dry_run, keep_temp;
	const char *name, *output, *format, *arch;
};

static void print_size(char *buf, size_t n, int64_t size)
{
	const char *units[] = {"B", "kB", "MB", "GB", "TB"};
	double v = (double)size;
	size_t u = 0;
	while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, n, "%lld B", (long long)size);
	else
		snprintf(buf, n, "%.1f %s", v, units[u]);
}

static int cache_ls(struct store *s)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_json json_t *index = store_index(s, &err);
	if (index == NULL)
		return cli_fail(&err);
	json_t *ms = json_object_get(index, "manifests");
	/* Sorted by name (unnamed last) so the listing is stable. */
	size_t count = json_array_size(ms);
	for (size_t a = 1; a < count; a++) {
		for (size_t b = a; b > 0; b--) {
			json_t *x = json_array_get(ms, b - 1), *y = json_array_get(ms, b);
			const char *nx = json_string_value(json_object_get(
			    json_object_get(x, "annotations"), OCI_ANNOTATION_REF_NAME));
			const char *ny = json_string_value(json_object_get(
			    json_object_get(y, "annotations"), OCI_ANNOTATION_REF_NAME));
			if (ny == NULL || (nx && strcmp(nx, ny) <= 0))
				break;
			json_incref(x);
			json_array_set(ms, b - 1, y);
			json_array_set_new(ms, b, x);
		}
	}
	int width = 4;
	size_t i;
	json_t *e;
	json_array_foreach(ms, i, e)
	{
		const char *n = json_string_value(
		    json_object_get(json_object_get(e, "annotations"), OCI_ANNOTATION_REF_NAME));
		if (n && (int)strlen(n) > width)
			width = (int)strlen(n);
	}
	printf("%-*s  %-71s  %s\n", width, "NAME", "DIGEST", "SIZE");
	json_array_foreach(ms, i, e)
	{
		const char *n = json_string_value(
		    json_object_get(json_object_get(e, "annotations"), OCI_ANNOTATION_REF_NAME));
		const char *d = json_string_value(json_object_get(e, "digest"));
		const char *mt = json_string_value(json_object_get(e, "mediaType"));
		char size[32] = "-";
		if (digest_is_valid(d)) {
			if (store_has_blob(s, d))
				print_size(size, sizeof size, store_image_size(s, d, mt));
			else
				snprintf(size, sizeof size, "missing");
		}
		printf("%-*s  %-71s  %s\n", width, n ? n : "(unnamed)", d ? d : "?", size);
	}
	return 0;
}

static void report_removed(const char *path, int64_t size, void *arg)
{
	const bool *dry = arg;
	char sz[32];
	print_size(sz, sizeof sz, size);
	if (kiln_log_level >= LOG_VERBOSE || *dry)
		printf("%s %s (%s)\n", *dry ? "would remove" : "removed", path, sz);
}

struct removal_total {
	bool dry;
	int64_t bytes;
	int files;
};

static void count_removed(const char *path, int64_t size, void *arg)
{
	struct removal_total *t = arg;
	report_removed(path, size, &t->dry);
	t->bytes += size;
	t->files++;
}

static int cache_rm(struct store *s, int argc, char **argv)
{
	int status = 0;
	for (int i = 0; i < argc; i++) {
		cleanup_error struct kiln_error *err = NULL;
		int r = store_untag(s, argv[i], &err);
		if (r == 0) {
			/* Try the normal form of a short name ("alpine"). */
			struct image_ref ref;
			if (ref_parse(argv[i], &ref, NULL) == 0) {
				cleanup_free char *norm = ref_string(&ref);
				ref_release(&ref);
				if (strcmp(norm, argv[i]) != 0)
					r = store_untag(s, norm, &err);
			}
		}
		if (r < 0) {
			status = cli_fail(&err);
		} else if (r == 0) {
			fprintf(stderr, "kiln: cache rm: %s: not in the store `%s`\n", argv[i],
				store_dir(s));
			status = 1;
		} else {
			log_info("removed %s", argv[i]);
		}
	}
	cleanup_error struct kiln_error *err = NULL;
	struct removal_total t = {0};
	if (store_gc(s, false, 3600, count_removed, &t, &err) < 0) {
		log_warn("%s; unreferenced blobs stay until `kiln cache clean --unreferenced`",
			 err->msg);
		return status;
	}
	if (t.files) {
		char sz[32];
		print_size(sz, sizeof sz, t.bytes);
		log_info("freed %s in %d blobs", sz, t.files);
	}
	return status;
}

static int cache_clean(struct store *s, const struct cache_opts *o)
{
	cleanup_error struct kiln_error *err = NULL;
	struct removal_total t = {.dry = o->dry_run};
	int r;
	if (o->unreferenced)
		r = store_gc(s, o->dry_run, 3600, count_removed, &t, &err);
	else if (o->dry_run)
		r = store_gc(s, true, 0, count_removed, &t, &err) < 0
			? -1
			: 0; /* what is unreferenced; images listed below */
	else
		r = store_clear(s, count_removed, &t, &err);
	if (r < 0)
		return cli_fail(&err);
	if (o->dry_run && !o->unreferenced) {
		cleanup_json json_t *index = store_index(s, &err);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(index, "manifests"), i, e)
		{
			const char *n = json_string_value(json_object_get(
			    json_object_get(e, "annotations"), OCI_ANNOTATION_REF_NAME));
			printf("would remove image %s\n", n ? n : "(unnamed)");
		}
	}
	char sz[32];
	print_size(sz, sizeof sz, t.bytes);
	log_info("%s %s in %d files", o->dry_run ? "would free" : "freed", sz, t.files);
	return 0;
}

struct verify_state {
	int problems;
};

static void verify_problem(const char *what, const char *why, void *arg)
{
	struct verify_state *v = arg;
	v->problems++;
	fprintf(stderr, "kiln: cache verify: %s: %s\n", what, why);
}

static void verify_temp(const char *path, int64_t size, void *arg)
{
	const bool *keep = arg;
	(void)size;
	if (*keep)
		printf("stale temp file %s\n", path);
	else
		printf("removed stale temp file %s\n", path);
}

static int cache_verify(struct store *s, const struct cache_opts *o)
{
	cleanup_error struct kiln_error *err = NULL;
	struct verify_state v = {0};
	int r = store_verify(s, verify_problem, &v, &err);
	if (r < 0)
		return cli_fail(&err);
	bool keep = o->keep_temp;
	int temps = store_clean_temp(s, 3600, keep, verify_temp, &keep, &err);
	if (temps < 0)
		return cli_fail(&err);
	cleanup_json json_t *index = store_index(s, &err);
	size_t images = index ? json_array_size(json_object_get(index, "manifests")) : 0;
	if (r > 0) {
		fprintf(stderr, "kiln: cache verify: %d problem%s in `%s`\n", r, r == 1 ? "" : "s",
			store_dir(s));
		return 1;
	}
	log_info("%s: %zu image%s, all blobs verified", store_dir(s), images,
		 images == 1 ? "" : "s");
	return 0;
}

static void print_imported(const char *name, const char *digest, void *arg)
{
	(void)arg;
	log_info("imported %s %s", name, digest);
}

static int cache_import(struct store *s, const struct cache_opts *o, int argc, char **argv)
{
	if (argc == 0) {
		fprintf(stderr, "kiln: cache import: give a file or directory\n");
		return 2;
	}
	if (o->name && argc > 1) {
		fprintf(stderr, "kiln: cache import: --name takes one source\n");
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		cleanup_error struct kiln_error *err = NULL;
		if (store_import(s, argv[i], o->name, print_imported, NULL, &err) < 0) {
			kiln_error_wrap(&err, "cache import");
			return cli_fail(&err);
		}
	}
	return 0;
}

static int cache_export(struct store *s, const struct cache_opts *o, int argc, char **argv)
{
	if (argc != 1 || o->output == NULL) {
		fprintf(stderr, "kiln: cache export: usage: kiln cache export NAME -o FILE\n");
		return 2;
	}
	enum store_export_format fmt = STORE_EXPORT_OCI;
	if (o->format && strcmp(o->format, "docker") == 0)
		fmt = STORE_EXPORT_DOCKER;
	else if (o->format && strcmp(o->format, "oci") != 0 && strcmp(o->format, "dir") != 0) {
		fprintf(stderr, "kiln: cache export: unknown --format `%s` (oci, docker or dir)\n",
			o->format);
		return 2;
	}
	cleanup_error struct kiln_error *err = NULL;
	struct stat st;
	bool to_dir = (o->format && strcmp(o->format, "dir") == 0) ||
		      (stat(o->output, &st) == 0 && S_ISDIR(st.st_mode)) ||
		      str_has_suffix(o->output, "/");
	if (to_dir) {
		if (store_export_dir(s, argv[0], o->output, o->name, &err) < 0)
			return cli_fail(&err);
		log_info("exported %s to the OCI layout %s", argv[0], o->output);
		return 0;
	}
	if (strcmp(o->output, "-") == 0) {
		if (store_export(s, argv[0], o->arch, fmt, STDOUT_FILENO, &err) < 0)
			return cli_fail(&err);
		return 0;
	}
	cleanup_free char *tmp = xasprintf("%s.tmp-XXXXXX", o->output);
	cleanup_close int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		kiln_error_make(&err, errno, "cache export: create `%s`", tmp);
		return cli_fail(&err);
	}
	if (store_export(s, argv[0], o->arch, fmt, fd, &err) < 0 || fchmod(fd, 0644) < 0 ||
	    fsync(fd) < 0 || rename(tmp, o->output) < 0) {
		if (err == NULL)
			kiln_error_make(&err, errno, "cache export: write `%s`", o->output);
		unlink(tmp);
		return cli_fail(&err);
	}
	log_info("exported %s to %s", argv[0], o->output);
	return 0;
}

static json_t *descriptor_json(const char *digest, const char *media_type, int64_t size)
{
	return json_pack("{s:s, s:s?, s:I}", "digest", digest, "mediaType", media_type, "size",
			 (json_int_t)size);
}

static int cache_inspect(struct store *s, const struct cache_opts *o, int argc, char **argv)
{
	if (argc != 1) {
		fprintf(stderr,
			"kiln: cache inspect: usage: kiln cache inspect NAME [--arch ARCH]\n");
		return 2;
	}
	cleanup_error struct kiln_error *err = NULL;
	cleanup_image struct image *img = image_load(s, argv[0], o->arch, &err);
	if (img == NULL)
		return cli_fail(&err);
	cleanup_json json_t *out = json_object();
	json_object_set_new(out, "name", json_string(img->name));
	json_object_set_new(
	    out, "root", descriptor_json(img->root_digest, img->root_media_type, img->root_size));
	json_object_set_new(
	    out, "manifest",
	    descriptor_json(img->manifest_digest, img->manifest_media_type, img->manifest_size));
	json_object_set_new(
	    out, "config",
	    descriptor_json(img->config_digest,
			    json_string_value(json_object_get(
				json_object_get(img->manifest, "config"), "mediaType")),
			    store_blob_size(s, img->config_digest)));
	cleanup_free char *platform =
	    xasprintf("%s/%s%s%s", img->os ? img->os : "linux",
		      img->architecture ? img->architecture : "unknown", img->variant ? "/" : "",
		      img->variant ? img->variant : "");
	json_object_set_new(out, "platform", json_string(platform));
	json_t *layers = json_array();
	for (size_t i = 0; i < img->nlayers; i++)
		json_array_append_new(layers, descriptor_json(img->layers[i].digest,
							      img->layers[i].media_type,
							      img->layers[i].size));
	json_object_set_new(out, "layers", layers);
	json_t *labels = json_object_get(json_object_get(img->config, "config"), "Labels");
	json_object_set(out, "labels", json_is_object(labels) ? labels : json_object());
	char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (text == NULL)
		oom();
	puts(text);
	free(text);
	return 0;
}

int cmd_cache(int argc, char **argv);
int cmd_cache(int argc, char **argv)
{
	enum { OPT_CACHE = 1000, OPT_UNREF, OPT_DRY, OPT_KEEP, OPT_NAME, OPT_FORMAT, OPT_ARCH };
	static const struct option longopts[] = {
	    {"cache", required_argument, 0, OPT_CACHE},
	    {"unreferenced", no_argument, 0, OPT_UNREF},
	    {"dry-run", no_argument, 0, OPT_DRY},
	    {"keep-temp", no_argument, 0, OPT_KEEP},
	    {"name", required_argument, 0, OPT_NAME},
	    {"output", required_argument, 0, 'o'},
	    {"outfile", required_argument, 0, 'o'}, /* linuxkit cache export */
	    {"platform", required_argument, 0, OPT_ARCH},
	    {"format", required_argument, 0, OPT_FORMAT},
	    {"arch", required_argument, 0, OPT_ARCH},
	    CLI_COMMON_LONGOPTS,
	    {0, 0, 0, 0},
	};
	struct cache_opts o = {0};
	int c;
	optind = 1;
	while ((c = getopt_long_only(argc, argv, "o:" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		int common = cli_common_option(c, usage);
		if (common == CLI_OPT_HELP)
			return 0;
		if (common == CLI_OPT_DONE)
			continue;
		switch (c) {
		case OPT_CACHE:
			o.cache = optarg;
			break;
		case OPT_UNREF:
			o.unreferenced = true;
			break;
		case OPT_DRY:
			o.dry_run = true;
			break;
		case OPT_KEEP:
			o.keep_temp = true;
			break;
		case OPT_NAME:
			o.name = optarg;
			break;
		case 'o':
			o.output = optarg;
			break;
		case OPT_FORMAT:
			o.format = optarg;
			break;
		case OPT_ARCH:
			o.arch = optarg;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		fputs(usage, stderr);
		return 2;
	}
	const char *sub = argv[optind];
	int nargs = argc - optind - 1;
	char **args = argv + optind + 1;
	static const char *const subs[] = {"ls",     "rm",     "clean",	 "verify",
					   "import", "export", "inspect"};
	bool known = false;
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		known |= strcmp(sub, subs[i]) == 0;
	if (!known) {
		fprintf(stderr, "kiln: cache: unknown command `%s`\n%s", sub, usage);
		return 2;
	}
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open(o.cache, &err);
	if (s == NULL)
		return cli_fail(&err);
	if (strcmp(sub, "ls") == 0)
		return cache_ls(s);
	if (strcmp(sub, "rm") == 0) {
		if (nargs == 0) {
			fprintf(stderr, "kiln: cache rm: give at least one image name\n");
			return 2;
		}
		return cache_rm(s, nargs, args);
	}
	if (strcmp(sub, "clean") == 0)
		return cache_clean(s, &o);
	if (strcmp(sub, "verify") == 0)
		return cache_verify(s, &o);
	if (strcmp(sub, "import") == 0)
		return cache_import(s, &o, nargs, args);
	if (strcmp(sub, "inspect") == 0)
		return cache_inspect(s, &o, nargs, args);
	return cache_export(s, &o, nargs, args);
}
