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

/* Handles the options every verb takes: -v/--verbose (repeatable),
 * -q/--quiet.  Call from a getopt loop for those option characters. */
void cli_verbosity(int opt);

/* The long options every verb accepts, to splice into its table:
 *   {"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},
 *   {"help", no_argument, 0, 'h'} */
#define CLI_COMMON_LONGOPTS                                                                        \
	{"verbose", no_argument, 0, 'v'}, {"quiet", no_argument, 0, 'q'},                          \
	{"help", no_argument, 0, 'h'}

/* Prints the usage text of VERB (from the verb's help) to stdout. */
void cli_print_help(const char *usage);

#endif
