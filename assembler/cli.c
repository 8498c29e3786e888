#include "cli.h"

#include <stdio.h>

#include "log.h"

int cli_fail(struct kiln_error **err)
{
	if (err && *err) {
		fprintf(stderr, "kiln: %s\n", (*err)->msg);
		kiln_error_release(err);
	}
	return 1;
}

static void cli_verbosity(int opt)
{
	if (opt == 'v')
		kiln_log_level = kiln_log_level < 0 ? 1 : kiln_log_level + 1;
	else if (opt == 'q')
		kiln_log_level = LOG_QUIET;
}

enum cli_common cli_common_option(int opt, const char *usage)
{
	switch (opt) {
	case 'v':
	case 'q':
		cli_verbosity(opt);
		return CLI_OPT_DONE;
	case 'h':
		if (usage)
			cli_print_help(usage);
		return CLI_OPT_HELP;
	default:
		return CLI_OPT_OTHER;
	}
}

void cli_print_help(const char *usage)
{
	fputs(usage, stdout);
}
