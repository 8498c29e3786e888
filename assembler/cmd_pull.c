/* kiln pull: fetch images from registries into the store. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "registry.h"
#include "registry_cli.h"
#include "store.h"
#include "util.h"

static const char pull_usage[] =
    "Usage: kiln pull [OPTIONS] REF...\n"
    "\n"
    "Pulls each image REF into the store: the root index or manifest, and the\n"
    "manifest, config and layers of one platform, every blob sha256-checked.\n"
    "\n"
    "Options:\n" REGISTRY_CLI_HELP "  -q, --quiet               print nothing but errors\n"
    "  -v, --verbose             more detail (repeat for debug)\n" REGISTRY_CLI_ENV_HELP;

static void pull_failed(const char *ref, struct kiln_error **err, void *arg)
{
	(void)ref;
	(void)arg;
	cli_fail(err);
}

int cmd_pull(int argc, char **argv);
int cmd_pull(int argc, char **argv)
{
	struct option longopts[] = {REGISTRY_CLI_LONGOPTS, CLI_COMMON_LONGOPTS, {0, 0, 0, 0}};
	struct registry_options o;
	registry_options_init(&o);
	cleanup_free char *cache = NULL;
	cleanup_error struct kiln_error *err = NULL;
	int rc = 0, opt;
	while ((opt = getopt_long_only(argc, argv, "+vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v':
		case 'q':
			cli_verbosity(opt);
			break;
		case 'h':
			cli_print_help(pull_usage);
			registry_options_release(&o);
			return 0;
		case '?':
			fputs(pull_usage, stderr);
			registry_options_release(&o);
			return 2;
		default:
			if (registry_cli_option(opt, optarg, &o, &cache, &err) < 0) {
				registry_options_release(&o);
				return cli_fail(&err);
			}
		}
	}
	if (optind >= argc) {
		fputs(pull_usage, stderr);
		registry_options_release(&o);
		return 2;
	}
	if (registry_cli_env(&o, &err) < 0) {
		registry_options_release(&o);
		return cli_fail(&err);
	}
	struct store *s = store_open(cache, &err);
	if (s == NULL) {
		registry_options_release(&o);
		return cli_fail(&err);
	}
	struct registry_client *c = registry_client_new(&o, &err);
	if (c == NULL) {
		store_close(s);
		registry_options_release(&o);
		return cli_fail(&err);
	}
	if (registry_pull_many(c, s, argv + optind, (size_t)(argc - optind), NULL, pull_failed,
			       NULL) > 0)
		rc = 1;
	registry_client_free(c);
	store_close(s);
	registry_options_release(&o);
	return rc;
}
