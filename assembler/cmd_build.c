/* `kiln build [options] FILE.yml...`: parses LinuxKit's build flags (GNU and
 * single-dash spellings through getopt_long_only), loads and merges the
 * manifests, and either prints the merged manifest (--dry-run) or hands over
 * to build_execute().
 *
 * Error shape: a manifest error is printed as exactly one line
 * `FILE:LINE:COL: message` (no "kiln: " prefix, like a compiler, so editors
 * can jump to it); every other error is `kiln: message`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build.h"
#include "cli.h"
#include "format.h"
#include "log.h"
#include "manifest.h"
#include "store.h"
#include "strbuf.h"
#include "util.h"

/* Implemented by the assembler (assembler/build.c); weak so that a tree
 * without it still builds and --dry-run works. */
extern int build_execute(const struct build_options *opts, struct manifest *m,
			 struct kiln_error **err) __attribute__((weak));

/* The package resolver for @pkg: templates (assembler/pkg.c); weak likewise.
 * Returns "org/image:tag" of the package in PKG_DIR. */
extern char *pkg_show_tag_ref(const char *dir, struct kiln_error **err) __attribute__((weak));
/* Builds the package into the store when the store lacks its tag (says so). */
extern char *pkg_ensure_built(struct store *s, const char *dir, struct kiln_error **err)
	__attribute__((weak));

static const char usage[] =
	"Usage: kiln build [OPTIONS] FILE.yml...\n"
	"\n"
	"Builds an image from one or more LinuxKit YAML manifests (merged left to\n"
	"right; '-' reads standard input).\n"
	"\n"
	"Options (single-dash LinuxKit spellings such as -format, -dir, -name also work):\n"
	"  -f, --format FMT        output format; repeat or comma-separate for several\n"
	"                          (default kernel+initrd, or tar when -o is given)\n"
	"      --name NAME         base name of the output files (default: the last\n"
	"                          manifest's file name without .yml)\n"
	"      --dir DIR           directory for the output files (default: .)\n"
	"  -o, --output FILE       single output file, or '-' for stdout (tar only)\n"
	"      --size SIZE         disk size for fixed-size formats: NNNM, NNNG, NNNK,\n"
	"                          NNNB; a bare number is GiB as in LinuxKit (default 1024M)\n"
	"      --pull              re-resolve image tags even when they are in the store\n"
	"      --arch ARCH         target architecture (default amd64)\n"
	"      --cache DIR         image store (default $KILN_CACHE, $LINUXKIT_CACHE or\n"
	"                          ~/.cache/kiln)\n"
	"      --dry-run           print the merged, template-resolved manifest and exit\n"
	"      --compress ALG      initrd compression: gzip (default), zstd or none\n"
	"      --decompress-kernel store the kernel uncompressed\n"
	"      --mirror REG=URL    pull REG's images from URL (repeatable)\n"
	"      --insecure-registry REG  allow plain HTTP / unverified TLS for REG (repeatable)\n"
	"      --cert-file FILE    extra CA certificate for registries\n"
	"      --docker            accepted for LinuxKit compatibility; ignored\n"
	"      --input-tar FILE    accepted for LinuxKit compatibility\n"
	"      --no-sbom           leave out the SPDX SBOM (sbom.spdx.json at /)\n"
	"      --sbom-output FILE  name of the SBOM at / (default sbom.spdx.json)\n"
	"      --sbom-current-time the SBOM's creation time is now, not SOURCE_DATE_EPOCH\n"
	"  -v, --verbose           more output (repeatable)\n"
	"  -q, --quiet             errors only\n"
	"  -h, --help              this help\n";

enum {
	OPT_NAME = 256,
	OPT_DIR,
	OPT_SIZE,
	OPT_PULL,
	OPT_ARCH,
	OPT_CACHE,
	OPT_DRY_RUN,
	OPT_DOCKER,
	OPT_DECOMPRESS_KERNEL,
	OPT_INPUT_TAR,
	OPT_NO_SBOM,
	OPT_SBOM_OUTPUT,
	OPT_SBOM_CURRENT_TIME,
	OPT_COMPRESS,
	OPT_MIRROR,
	OPT_CERT_FILE,
	OPT_INSECURE_REGISTRY,
};

static const struct option longopts[] = {
	{"format", required_argument, 0, 'f'},
	{"name", required_argument, 0, OPT_NAME},
	{"dir", required_argument, 0, OPT_DIR},
	{"output", required_argument, 0, 'o'},
	{"size", required_argument, 0, OPT_SIZE},
	{"pull", no_argument, 0, OPT_PULL},
	{"arch", required_argument, 0, OPT_ARCH},
	{"cache", required_argument, 0, OPT_CACHE},
	{"dry-run", no_argument, 0, OPT_DRY_RUN},
	{"docker", no_argument, 0, OPT_DOCKER},
	{"decompress-kernel", no_argument, 0, OPT_DECOMPRESS_KERNEL},
	{"input-tar", required_argument, 0, OPT_INPUT_TAR},
	{"no-sbom", no_argument, 0, OPT_NO_SBOM},
	{"sbom-output", required_argument, 0, OPT_SBOM_OUTPUT},
	{"sbom-current-time", no_argument, 0, OPT_SBOM_CURRENT_TIME},
	{"compress", required_argument, 0, OPT_COMPRESS},
	{"mirror", required_argument, 0, OPT_MIRROR},
	{"cert-file", required_argument, 0, OPT_CERT_FILE},
	{"insecure-registry", required_argument, 0, OPT_INSECURE_REGISTRY},
	CLI_COMMON_LONGOPTS,
	{0, 0, 0, 0},
};

void build_options_release(struct build_options *o)
{
	for (size_t i = 0; i < o->nformats; i++)
		free(o->formats[i]);
	free(o->formats);
	free(o->name);
	free(o->dir);
	free(o->output);
	free(o->arch);
	free(o->cache);
	free(o->input_tar);
	free(o->sbom_output);
	for (size_t i = 0; i < o->nmirrors; i++) {
		free(o->mirrors[i].registry);
		free(o->mirrors[i].url);
	}
	free(o->mirrors);
	free(o->cert_file);
	for (size_t i = 0; i < o->ninsecure; i++)
		free(o->insecure_registries[i]);
	free(o->insecure_registries);
	for (size_t i = 0; i < o->nfiles; i++)
		free(o->files[i]);
	free(o->files);
	memset(o, 0, sizeof *o);
}

static void add_format(struct build_options *o, const char *f)
{
	for (size_t i = 0; i < o->nformats; i++)
		if (strcmp(o->formats[i], f) == 0)
			return;
	o->formats = xrealloc(o->formats, (o->nformats + 1) * sizeof *o->formats);
	o->formats[o->nformats++] = xstrdup(f);
}

static int add_formats(struct build_options *o, const char *arg, struct kiln_error **err)
{
	cleanup_free char *copy = xstrdup(arg);
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*t == '\0')
			continue;
		add_format(o, t);
		n++;
	}
	if (n == 0)
		return kiln_error_make(err, 0, "build: empty --format");
	return 0;
}

/* LinuxKit's sizes: NNNM = MiB, NNNG or bare NNN = GiB; kiln also takes K and B. */
static int parse_size(const char *s, uint64_t *out, struct kiln_error **err)
{
	size_t len = strlen(s);
	uint64_t mult = 1024ull * 1024 * 1024;
	cleanup_free char *num = xstrdup(s);
	if (len > 0) {
		char last = s[len - 1];
		switch (last) {
		case 'B': case 'b':
			mult = 1, num[len - 1] = '\0';
			break;
		case 'K': case 'k':
			mult = 1024, num[len - 1] = '\0';
			break;
		case 'M': case 'm':
			mult = 1024 * 1024, num[len - 1] = '\0';
			break;
		case 'G': case 'g':
			num[len - 1] = '\0';
			break;
		}
	}
	uint64_t v;
	if (num[0] == '\0' || strspn(num, "0123456789") != strlen(num) || parse_u64(num, 10, &v) < 0 ||
	    v == 0 || v > UINT64_MAX / mult)
		return kiln_error_make(err, 0, "build: invalid --size `%s` (e.g. 1024M, 2G)", s);
	*out = v * mult;
	return 0;
}

static int parse_options(int argc, char **argv, struct build_options *o, bool *help,
			 struct kiln_error **err)
{
	o->size = 1024ull * 1024 * 1024;
	int opt;
	opterr = 0;
	while ((opt = getopt_long_only(argc, argv, "+:f:o:" CLI_COMMON_SHORTOPTS, longopts,
				       NULL)) != -1) {
		int common = cli_common_option(opt, NULL);
		if (common == CLI_OPT_HELP) {
			*help = true;
			return 0;
		}
		if (common == CLI_OPT_DONE)
			continue;
		switch (opt) {
		case 'f':
			if (add_formats(o, optarg, err) < 0)
				return -1;
			break;
		case OPT_NAME:
			free(o->name), o->name = xstrdup(optarg);
			break;
		case OPT_DIR:
			free(o->dir), o->dir = xstrdup(optarg);
			break;
		case 'o':
			free(o->output), o->output = xstrdup(optarg);
			break;
		case OPT_SIZE:
			if (parse_size(optarg, &o->size, err) < 0)
				return -1;
			break;
		case OPT_PULL:
			o->pull = true;
			break;
		case OPT_ARCH:
			free(o->arch), o->arch = xstrdup(optarg);
			break;
		case OPT_CACHE:
			free(o->cache), o->cache = xstrdup(optarg);
			break;
		case OPT_DRY_RUN:
			o->dry_run = true;
			break;
		case OPT_DOCKER:
			o->docker = true;
			break;
		case OPT_DECOMPRESS_KERNEL:
			o->decompress_kernel = true;
			break;
		case OPT_INPUT_TAR:
			free(o->input_tar), o->input_tar = xstrdup(optarg);
			break;
		case OPT_NO_SBOM:
			o->no_sbom = true;
			break;
		case OPT_SBOM_OUTPUT:
			free(o->sbom_output), o->sbom_output = xstrdup(optarg);
			break;
		case OPT_SBOM_CURRENT_TIME:
			o->sbom_current_time = true;
			break;
		case OPT_COMPRESS:
			if (strcmp(optarg, "gzip") == 0)
				o->compress = BUILD_COMPRESS_GZIP;
			else if (strcmp(optarg, "zstd") == 0)
				o->compress = BUILD_COMPRESS_ZSTD;
			else if (strcmp(optarg, "none") == 0)
				o->compress = BUILD_COMPRESS_NONE;
			else
				return kiln_error_make(err, 0,
						       "build: --compress `%s`: expected gzip, zstd or none",
						       optarg);
			break;
		case OPT_MIRROR: {
			const char *eq = strchr(optarg, '=');
			if (eq == NULL || eq == optarg || eq[1] == '\0')
				return kiln_error_make(err, 0,
						       "build: --mirror `%s`: expected REGISTRY=URL",
						       optarg);
			o->mirrors = xrealloc(o->mirrors, (o->nmirrors + 1) * sizeof *o->mirrors);
			o->mirrors[o->nmirrors++] = (struct build_mirror){
				xstrndup(optarg, (size_t)(eq - optarg)), xstrdup(eq + 1)};
			break;
		}
		case OPT_CERT_FILE:
			free(o->cert_file), o->cert_file = xstrdup(optarg);
			break;
		case OPT_INSECURE_REGISTRY:
			o->insecure_registries = xrealloc(o->insecure_registries,
							  (o->ninsecure + 1) * sizeof(char *));
			o->insecure_registries[o->ninsecure++] = xstrdup(optarg);
			break;
		case ':':
			return kiln_error_make(err, 0, "build: option `%s` needs a value",
					       argv[optind - 1]);
		default:
			return kiln_error_make(err, 0, "build: unknown option `%s` (see kiln build --help)",
					       argv[optind - 1]);
		}
	}
	for (int i = optind; i < argc; i++) {
		o->files = xrealloc(o->files, (o->nfiles + 1) * sizeof *o->files);
		o->files[o->nfiles++] = xstrdup(argv[i]);
	}
	if (o->nfiles == 0)
		return kiln_error_make(err, 0, "build: no manifest given (kiln build FILE.yml...)");
	if (o->nformats == 0)
		add_format(o, o->output ? "tar" : "kernel+initrd");
	if (o->output && o->nformats != 1)
		return kiln_error_make(err, 0, "build: -o needs exactly one output format");
	if (o->arch == NULL)
		o->arch = xstrdup("amd64");
	if (o->sbom_output == NULL)
		o->sbom_output = xstrdup("sbom.spdx.json");
	if (o->cache == NULL) {
		const char *e = getenv("KILN_CACHE");
		if (e == NULL || *e == '\0')
			e = getenv("LINUXKIT_CACHE");
		if (e && *e)
			o->cache = xstrdup(e);
		else {
			const char *xdg = getenv("XDG_CACHE_HOME");
			const char *home = getenv("HOME");
			if (xdg && *xdg)
				o->cache = xasprintf("%s/kiln", xdg);
			else
				o->cache = xasprintf("%s/.cache/kiln", home && *home ? home : ".");
		}
	}
	if (o->mirrors == NULL) {
		/* LINUXKIT_MIRROR: space- or comma-separated REG=URL pairs */
		const char *env = getenv("LINUXKIT_MIRROR");
		if (env && *env) {
			cleanup_free char *copy = xstrdup(env);
			char *save = NULL;
			for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
				char *eq = strchr(t, '=');
				if (eq == NULL || eq == t)
					continue;
				o->mirrors =
					xrealloc(o->mirrors, (o->nmirrors + 1) * sizeof *o->mirrors);
				o->mirrors[o->nmirrors++] = (struct build_mirror){
					xstrndup(t, (size_t)(eq - t)), xstrdup(eq + 1)};
			}
		}
	}
	return 0;
}

int cmd_build(int argc, char **argv);

/* true when MSG starts "FILE:LINE:COL: " (a manifest error with a position) */
static bool has_position(const char *msg)
{
	for (const char *p = strstr(msg, ": "); p; p = strstr(p + 1, ": ")) {
		/* walk back over ":COL" and ":LINE" */
		const char *q = p;
		for (int field = 0; field < 2; field++) {
			const char *d = q;
			while (d > msg && d[-1] >= '0' && d[-1] <= '9')
				d--;
			if (d == q || d == msg || d[-1] != ':')
				goto next;
			q = d - 1;
		}
		return q > msg;
	next:;
	}
	return false;
}

/* Refuses an unknown format before anything is read, pulled or built. */
static int check_formats(const struct build_options *o, struct kiln_error **err)
{
	for (size_t i = 0; i < o->nformats; i++) {
		if (format_find(o->formats[i]) != NULL)
			continue;
		cleanup_strbuf struct strbuf known = STRBUF_INIT;
		for (const struct output_format *const *f = output_formats; *f; f++)
			strbuf_printf(&known, "%s%s", known.len ? ", " : "", (*f)->name);
		return kiln_error_make(err, 0, "build: unknown output format `%s` (known: %s)",
				       o->formats[i], known.buf);
	}
	return 0;
}

static char *resolve_pkg(const char *dir, void *data, struct kiln_error **err)
{
	const struct build_options *o = data;
	/* A real build needs the image: build the package when the store lacks it. */
	if (o && !o->dry_run && pkg_ensure_built) {
		cleanup_store struct store *s = store_open(o->cache, err);
		return s ? pkg_ensure_built(s, dir, err) : NULL;
	}
	return pkg_show_tag_ref(dir, err);
}

int cmd_build(int argc, char **argv)
{
	struct build_options opts = {0};
	struct kiln_error *err = NULL;
	bool help = false;
	int status = 1;
	if (parse_options(argc, argv, &opts, &help, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	if (help) {
		cli_print_help(usage);
		status = 0;
		goto out;
	}
	if (check_formats(&opts, &err) < 0) {
		status = cli_fail(&err);
		goto out;
	}
	if (opts.docker)
		log_warn("build: --docker is accepted for LinuxKit compatibility and ignored "
			 "(kiln never uses a Docker daemon)");
	struct manifest_parse_options popts = {
		.pkg_resolver = pkg_show_tag_ref ? resolve_pkg : NULL,
		.pkg_data = &opts,
	};
	struct manifest *m = manifest_load_files(opts.files, opts.nfiles, &popts, &err);
	if (m == NULL) {
		if (err && has_position(err->msg)) {
			/* FILE:LINE:COL: message, alone on its line */
			fprintf(stderr, "%s\n", err->msg);
			kiln_error_release(&err);
		} else {
			kiln_error_wrap(&err, "build");
			cli_fail(&err);
		}
		goto out;
	}
	if (m->has_trust)
		log_warn("build: `trust` is ignored (content trust is not supported, as in "
			 "current LinuxKit)");
	if (opts.name == NULL)
		opts.name = xstrdup(m->name);
	if (opts.dry_run) {
		status = manifest_dump(m, stdout, &err) < 0 ? cli_fail(&err) : 0;
	} else if (build_execute == NULL) {
		kiln_error_make(&err, 0, "build: only --dry-run is available in this build");
		status = cli_fail(&err);
	} else {
		status = build_execute(&opts, m, &err) < 0 ? cli_fail(&err) : 0;
	}
	manifest_free(m);
out:
	build_options_release(&opts);
	return status;
}
