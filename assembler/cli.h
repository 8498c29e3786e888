/* The verb table.  Each verb lives in its own assembler/cmd_<verb>.c, defines
 * `int cmd_<verb>(int argc, char **argv)` (argv[0] is the verb name) and
 * returns the process exit status.  Verbs print their own errors through
 * cli_fail().  Verbs are declared weak in main.c so the tree builds while a
 * verb is being written; a missing verb says so. */
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "error.h"

#define KILN_VERSION "0.1.0"

/* Prints "kiln: <err->msg>" (one line) and returns 1. Releases *err. */
int cli_fail(struct kiln_error **err);

/* The short options every verb accepts, to append to its getopt string. */
#define CLI_COMMON_SHORTOPTS "vqh"

enum cli_common {
	CLI_OPT_OTHER, /* not a common option: the verb handles it */
	CLI_OPT_DONE,  /* -v or -q: handled, keep parsing */
	CLI_OPT_HELP,  /* -h: USAGE printed (if not NULL), the verb returns */
};

/* Handles OPT, a value from getopt, if it is one of the options every verb
 * takes: -v/--verbose (repeatable) and -q/--quiet set the log level, -h/--help
 * prints USAGE to stdout.  Call first in a verb's getopt loop:
 *	int common = cli_common_option(opt, usage);
 *	if (common == CLI_OPT_HELP) return 0;
 *	if (common == CLI_OPT_DONE) continue; */
enum cli_common cli_common_option(int opt, const char *usage);

/* The long options every verb accepts, to splice into its table:
 *   {"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},
 *   {"help", no_argument, 0, 'h'} */
#define CLI_COMMON_LONGOPTS                                                                        \
	{"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},                          \
	{"help", no_argument, 0, 'h'}

/* Prints the usage text of VERB (from the verb's help) to stdout. */
void cli_print_help(const char *usage);

#endif
