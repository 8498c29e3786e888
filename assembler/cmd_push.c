/* kiln push: send an image from the store to a registry. */
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

static const char push_usage[] =
    "Usage: kiln push [OPTIONS] REF [DEST-REF]\n"
    "\n"
    "Pushes the image the store names REF to DEST-REF (default REF): blobs the\n"
    "registry lacks (mounted from REF's repository when it is on the same\n"
    "registry), every manifest present of an index, then the root, all with\n"
    "their exact bytes so digests are kept.\n"
    "\n"
    "Options:\n" REGISTRY_CLI_HELP
    "  --chunk-size SIZE         upload blobs larger than SIZE in PATCH chunks of SIZE\n"
    "  --no-mount                never mount blobs from another repository\n"
    "  -q, --quiet               print nothing but errors\n"
    "  -v, --verbose             more detail (repeat for debug)\n" REGISTRY_CLI_ENV_HELP;

int cmd_push(int argc, char **argv);
int cmd_push(int argc, char **argv)
{
	struct option longopts[] = {REGISTRY_CLI_LONGOPTS, CLI_COMMON_LONGOPTS, {0, 0, 0, 0}};
	struct registry_options o;
	registry_options_init(&o);
	cleanup_free char *cache = NULL;
	cleanup_error struct kiln_error *err = NULL;
	int opt;
	while ((opt = getopt_long_only(argc, argv, "+vqh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'v':
		case 'q':
			cli_verbosity(opt);
			break;
		case 'h':
			cli_print_help(push_usage);
			registry_options_release(&o);
			return 0;
		case '?':
			fputs(push_usage, stderr);
			registry_options_release(&o);
			return 2;
		default:
			if (registry_cli_option(opt, optarg, &o, &cache, &err) < 0) {
				registry_options_release(&o);
				return cli_fail(&err);
			}
		}
	}
	int nargs = argc - optind;
	if (nargs < 1 || nargs > 2) {
		fputs(push_usage, stderr);
		registry_options_release(&o);
		return 2;
	}
	int rc = 0;
	struct store *s = NULL;
	struct registry_client *c = NULL;
	if (registry_cli_env(&o, &err) < 0 || (s = store_open(cache, &err)) == NULL ||
	    (c = registry_client_new(&o, &err)) == NULL ||
	    registry_client_push(c, s, argv[optind], nargs == 2 ? argv[optind + 1] : NULL, NULL,
				 &err) < 0)
		rc = cli_fail(&err);
	registry_client_free(c);
	if (s)
		store_close(s);
	registry_options_release(&o);
	return rc;
}
