/* kiln pull: fetch images from registries into the store. */
#include <limits.h>
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
	struct registry_cli cli;
	int rc;
	if (registry_cli_open(&cli, argc, argv, pull_usage, 1, INT_MAX, &rc) < 0)
		return rc;
	rc = registry_pull_many(cli.c, cli.s, cli.operands, (size_t)cli.n_operands, NULL,
				pull_failed, NULL) > 0;
	registry_cli_close(&cli);
	return rc;
}
