/* `kiln pkg build|show-tag|push`: the CLI over pkg.h. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "pkg.h"
#include "registry.h"
#include "store.h"
#include "util.h"

int cmd_pkg(int argc, char **argv);

static const char usage_text[] =
	"Usage: kiln pkg build [--cache DIR] [--deb-cache DIR] [--force] [--push] [--org ORG] DIR...\n"
	"       kiln pkg show-tag [--org ORG] DIR...\n"
	"       kiln pkg push [--cache DIR] [--deb-cache DIR] [--org ORG] DIR...\n"
	"\n"
	"Builds OCI images from package folders (DIR/build.yml) without Docker:\n"
	"Debian packages fetched with apt-get download and checked against apt's\n"
	"SHA256, files of the folder, the output of a build command.  Images are\n"
	"named ORG/IMAGE:TAG (ORG defaults to build.yml's org, else \"kiln\"; TAG to\n"
	"a hash of every input) and stored in the image store.\n"
	"\n"
	"  build      build each DIR unless the store has its tag; prints\n"
	"             `ORG/IMAGE:TAG DIGEST built|cached`\n"
	"  show-tag   print ORG/IMAGE:TAG without building\n"
	"  push       build if needed, then push to ORG/IMAGE:TAG\n"
	"\n"
	"Options:\n"
	"  --cache DIR       the image store (default $KILN_CACHE, else ~/.cache/kiln)\n"
	"  --deb-cache DIR   where .debs are kept (default $KILN_DEB_CACHE, else STORE/debs)\n"
	"  --force           build even when the store has the tag\n"
	"  --push            push after building (to --org when given)\n"
	"  --org ORG         push to ORG/IMAGE:TAG, e.g. 127.0.0.1:5000/kiln (the image is\n"
	"                    stored under build.yml's name; show-tag prints ORG's name)\n"
	"  --insecure-registry HOST  allow plain HTTP or unverified TLS to HOST\n"
	"  -v, -q            more or less output\n";

enum { OPT_CACHE = 256, OPT_DEB_CACHE, OPT_FORCE, OPT_PUSH, OPT_ORG, OPT_INSECURE };

static void human(char *buf, size_t len, int64_t n)
{
	if (n >= 1000000)
		snprintf(buf, len, "%.1f MB", (double)n / 1e6);
	else
		snprintf(buf, len, "%.1f kB", (double)n / 1e3);
}

static int do_push(struct store *s, struct pkg *p, const struct pkg_result *r, const char *org,
		   const struct registry_options *ro)
{
	struct kiln_error *err = NULL;
	cleanup_free char *dest = org ? xasprintf("%s/%s:%s", org, pkg_image(p), pkg_tag(p, &err))
				      : xstrdup(r->ref);
	if (registry_push(s, r->store_name, dest, ro, &err) < 0) {
		kiln_error_wrap(&err, "push %s", dest);
		return cli_fail(&err);
	}
	printf("pushed %s %s\n", dest, r->manifest_digest);
	return 0;
}

int cmd_pkg(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "-help") || !strcmp(argv[1], "help")) {
		cli_print_help(usage_text);
		return argc < 2 ? 1 : 0;
	}
	const char *sub = argv[1];
	bool build = !strcmp(sub, "build"), show = !strcmp(sub, "show-tag"),
	     push = !strcmp(sub, "push");
	if (!build && !show && !push) {
		fprintf(stderr, "kiln: pkg: unknown command `%s` (build, show-tag, push)\n", sub);
		return 2;
	}
	static const struct option longopts[] = {
		{"cache", required_argument, 0, OPT_CACHE},
		{"deb-cache", required_argument, 0, OPT_DEB_CACHE},
		{"force", no_argument, 0, OPT_FORCE},
		{"push", no_argument, 0, OPT_PUSH},
		{"org", required_argument, 0, OPT_ORG},
		{"insecure-registry", required_argument, 0, OPT_INSECURE},
		CLI_COMMON_LONGOPTS,
		{0, 0, 0, 0},
	};
	const char *cache = NULL, *deb_cache = NULL, *org = NULL;
	bool force = false;
	struct registry_options ro;
	registry_options_init(&ro);
	int opt;
	optind = 1;
	while ((opt = getopt_long_only(argc - 1, argv + 1, CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		int common = cli_common_option(opt, usage_text);
		if (common == CLI_OPT_HELP) {
			registry_options_release(&ro);
			return 0;
		}
		if (common == CLI_OPT_DONE)
			continue;
		switch (opt) {
		case OPT_CACHE:
			cache = optarg;
			break;
		case OPT_DEB_CACHE:
			deb_cache = optarg;
			break;
		case OPT_FORCE:
			force = true;
			break;
		case OPT_PUSH:
			push = true;
			break;
		case OPT_ORG:
			org = optarg;
			break;
		case OPT_INSECURE:
			registry_options_add_insecure(&ro, optarg);
			break;
		default:
			registry_options_release(&ro);
			return 2;
		}
	}
	int first = optind + 1;
	if (first >= argc) {
		fprintf(stderr, "kiln: pkg %s: name at least one package folder\n", sub);
		registry_options_release(&ro);
		return 2;
	}
	struct kiln_error *err = NULL;
	int rc = 0;
	if (show) {
		for (int i = first; i < argc && rc == 0; i++) {
			cleanup_pkg struct pkg *p = pkg_load(argv[i], &err);
			if (p && org)
				pkg_set_org(p, org);
			cleanup_free char *ref = p ? pkg_ref(p, &err) : NULL;
			if (ref == NULL)
				rc = cli_fail(&err);
			else
				printf("%s\n", ref);
		}
		registry_options_release(&ro);
		return rc;
	}
	cleanup_store struct store *s = store_open(cache, &err);
	if (s == NULL) {
		registry_options_release(&ro);
		return cli_fail(&err);
	}
	struct pkg_build_options bo = {.deb_cache = deb_cache, .force = force};
	for (int i = first; i < argc && rc == 0; i++) {
		cleanup_pkg struct pkg *p = pkg_load(argv[i], &err);
		struct pkg_result r;
		if (p == NULL || pkg_build(p, s, &bo, &r, &err) < 0) {
			rc = cli_fail(&err);
			break;
		}
		if (r.built) {
			char u[32], c[32];
			human(u, sizeof u, r.layer_usize);
			human(c, sizeof c, r.layer_size);
			log_verbose("%s: %llu entries, %s, %s gzip", r.ref,
				    (unsigned long long)r.nentries, u, c);
		}
		printf("%s %s %s\n", r.ref, r.manifest_digest, r.built ? "built" : "cached");
		fflush(stdout);
		if (push)
			rc = do_push(s, p, &r, org, &ro);
		pkg_result_release(&r);
	}
	registry_options_release(&ro);
	return rc;
}
