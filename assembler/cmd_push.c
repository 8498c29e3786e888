/* kiln push: send an image from the store to a registry. */
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
	struct registry_cli cli;
	int rc;
	if (registry_cli_open(&cli, argc, argv, push_usage, 1, 2, &rc) < 0)
		return rc;
	cleanup_error struct kiln_error *err = NULL;
	if (registry_client_push(cli.c, cli.s, cli.operands[0],
				 cli.n_operands == 2 ? cli.operands[1] : NULL, NULL, &err) < 0)
		rc = cli_fail(&err);
	registry_cli_close(&cli);
	return rc;
}
