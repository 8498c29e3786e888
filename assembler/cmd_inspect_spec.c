/* kiln inspect-spec FILE.yml... NAME: prints the config.json (or with
 * --runtime the runtime.json) kiln generates for container NAME, reading the
 * image's config (Entrypoint/Cmd/Env/WorkingDir and the
 * org.mobyproject.config label) from the store when the image is there, or
 * from a JSON file given with --image-config (tests/golden/compat uses this:
 * LinuxKit's images cannot be pulled here). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assemble.h"
#include "cli.h"
#include "image.h"
#include "log.h"
#include "manifest.h"
#include "pkg.h"
#include "registry.h"
#include "spec.h"
#include "store.h"
#include "util.h"

static const char usage[] =
    "Usage: kiln inspect-spec [OPTIONS] FILE.yml... NAME\n"
    "\n"
    "Prints the OCI runtime spec (config.json) kiln generates for the onboot,\n"
    "onshutdown or services container NAME, with LinuxKit's semantics: the YAML\n"
    "entry over the image's org.mobyproject.config label over the image config.\n"
    "NAME is an entry's name (the first entry of that name) or its bundle\n"
    "directory under containers/: onboot/001-format, services/getty.\n"
    "The image config is read from the store when the image is there (nothing\n"
    "is pulled); otherwise only the YAML is used and a warning says so.\n"
    "\n"
    "Options:\n"
    "      --runtime        print runtime.json instead\n"
    "      --image-config FILE  read the image config (OCI image config JSON)\n"
    "                       from FILE instead of the store\n"
    "      --cache DIR      the store (default $KILN_CACHE or ~/.cache/kiln)\n"
    "      --arch ARCH      platform of the image config (default amd64)\n"
    "      --no-image       do not read the image config at all\n"
    "  -q, --quiet          print nothing but errors\n"
    "  -v, --verbose        more detail\n";

/* --image-config FILE (an OCI image config JSON, {"config": {"Entrypoint",
 * "Cmd", "Env", "WorkingDir", "Labels"}}, read instead of the store) lets
 * tests/integration/spec-golden.sh give LinuxKit's image configs offline. */
enum { OPT_RUNTIME = 1000, OPT_CACHE, OPT_ARCH, OPT_NO_IMAGE, OPT_IMAGE_CONFIG };

/* @pkg:DIR resolves to the package's image name; nothing is built. */
static char *resolve_pkg(const char *dir, void *data, struct kiln_error **err)
{
	(void)data;
	return pkg_show_tag_ref(dir, err);
}

/* NAME, or a bundle directory SECTION/NNN-NAME (SECTION/NAME for services),
 * which tells apart onboot entries of the same name. */
static const struct manifest_image *find_container(const struct manifest *m, const char *name,
						   const char **section, size_t *index)
{
	const char *slash = strchr(name, '/');
	if (!slash)
		return assemble_find_container(m, name, section, index);
	const struct {
		const char *name;
		const struct manifest_image_list *l;
	} sections[] = {
	    {"onboot", &m->onboot}, {"onshutdown", &m->onshutdown}, {"services", &m->services}};
	for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
		if (strlen(sections[s].name) != (size_t)(slash - name) ||
		    strncmp(name, sections[s].name, (size_t)(slash - name)) != 0)
			continue;
		for (size_t i = 0; i < sections[s].l->n; i++) {
			cleanup_free char *dir =
			    assemble_bundle_dir(sections[s].name, i, sections[s].l->v[i].name);
			if (strcmp(dir + strlen("containers/"), name) == 0) {
				*section = sections[s].name;
				*index = i;
				return &sections[s].l->v[i];
			}
		}
	}
	return NULL;
}

int cmd_inspect_spec(int argc, char **argv);
int cmd_inspect_spec(int argc, char **argv)
{
	struct option longopts[] = {{"runtime", no_argument, 0, OPT_RUNTIME},
				    {"cache", required_argument, 0, OPT_CACHE},
				    {"arch", required_argument, 0, OPT_ARCH},
				    {"no-image", no_argument, 0, OPT_NO_IMAGE},
				    {"image-config", required_argument, 0, OPT_IMAGE_CONFIG},
				    CLI_COMMON_LONGOPTS,
				    {0, 0, 0, 0}};
	bool runtime = false, no_image = false;
	const char *cache = NULL, *arch = "amd64", *image_config = NULL;
	cleanup_error struct kiln_error *err = NULL;
	int opt;
	while ((opt = getopt_long_only(argc, argv, "+" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		int common = cli_common_option(opt, usage);
		if (common == CLI_OPT_HELP)
			return 0;
		if (common == CLI_OPT_DONE)
			continue;
		switch (opt) {
		case OPT_RUNTIME:
			runtime = true;
			break;
		case OPT_CACHE:
			cache = optarg;
			break;
		case OPT_ARCH:
			arch = optarg;
			break;
		case OPT_NO_IMAGE:
			no_image = true;
			break;
		case OPT_IMAGE_CONFIG:
			image_config = optarg;
			break;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (argc - optind < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *name = argv[argc - 1];
	struct manifest_parse_options popts = {.pkg_resolver = resolve_pkg};
	cleanup_manifest struct manifest *m =
	    manifest_load_files(argv + optind, (size_t)(argc - optind - 1), &popts, &err);
	if (!m)
		return cli_fail(&err);
	const char *section;
	size_t index;
	const struct manifest_image *entry = find_container(m, name, &section, &index);
	if (!entry) {
		kiln_error_make(&err, 0,
				"inspect-spec: no onboot, onshutdown or services entry named `%s`",
				name);
		return cli_fail(&err);
	}
	struct image *img = NULL;
	json_t *file_config = NULL;
	if (image_config) {
		json_error_t jerr;
		file_config = json_load_file(image_config, 0, &jerr);
		if (!file_config) {
			kiln_error_make(&err, 0, "inspect-spec: %s:%d: %s", image_config, jerr.line,
					jerr.text);
			return cli_fail(&err);
		}
		if (!json_is_object(file_config)) {
			json_decref(file_config);
			kiln_error_make(&err, 0, "inspect-spec: %s: not a JSON object", image_config);
			return cli_fail(&err);
		}
	} else if (!no_image) {
		struct store *s = store_open(cache ? cache : getenv("KILN_CACHE"), &err);
		if (!s)
			return cli_fail(&err);
		char digest[DIGEST_STRLEN];
		struct kiln_error *e2 = NULL;
		/* Store only: an empty registry list makes image_resolve fail fast. */
		if (image_resolve_name(s, entry->image, digest, &e2) == 1)
			img = image_load(s, digest, arch, &e2);
		if (!img)
			log_warn(
			    "inspect-spec: image %s is not in the store%s%s: using the YAML only",
			    entry->image, e2 ? ": " : "", e2 ? e2->msg : "");
		kiln_error_release(&e2);
		store_close(s);
	}
	cleanup_free char *bundle = assemble_bundle_dir(section, index, entry->name);
	struct spec_input in = {.m = m,
				.entry = entry,
				.image_config = img ? img->config : file_config,
				.bundle = bundle,
				.shared_root = NULL};
	cleanup_free char *config = NULL, *rt = NULL;
	int r = spec_generate(&in, &config, &rt, &err);
	image_free(img);
	json_decref(file_config);
	if (r < 0) {
		kiln_error_wrap(&err, "inspect-spec %s", name);
		return cli_fail(&err);
	}
	printf("%s\n", runtime ? rt : config);
	return 0;
}
