/* kiln: the command-line entry point and the verb table (STYLE.md §4). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

#define VERB(name) extern int cmd_##name(int argc, char **argv) __attribute__((weak));
VERB(build)
VERB(pull)
VERB(push)
VERB(cache)
VERB(pkg)
VERB(run)
VERB(inspect_spec)
#undef VERB

struct verb {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

static const struct verb verbs[] = {
	{"build", cmd_build, "build an image from LinuxKit YAML manifests"},
	{"pull", cmd_pull, "pull images from a registry into the store"},
	{"push", cmd_push, "push an image from the store to a registry"},
	{"cache", cmd_cache, "list, verify, import, export and clean the image store"},
	{"pkg", cmd_pkg, "build OCI images from Debian packages (build.yml)"},
	{"run", cmd_run, "boot a built image (qemu)"},
	{"inspect-spec", cmd_inspect_spec, "print the OCI runtime spec generated for one container"},
	{"version", cmd_version, "print kiln's version"},
	{"help", cmd_help, "show help for kiln or for one verb"},
};

static const struct verb *verb_find(const char *name)
{
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: kiln [-v|-q] VERB [OPTIONS] [ARGS]\n\n"
		   "kiln assembles bootable, immutable Linux OS images from OCI images,\n"
		   "driven by LinuxKit's YAML manifest format.\n\nVerbs:\n");
	for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
		fprintf(f, "  %-14s %s\n", verbs[i].name, verbs[i].summary);
	fprintf(f, "\nGlobal options: -v/--verbose (repeat for more), -q/--quiet\n"
		   "Run 'kiln help VERB' for the options of a verb.\n");
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("kiln version %s\n", KILN_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	const struct verb *v = verb_find(argv[1]);
	if (v == NULL) {
		fprintf(stderr, "kiln: help: unknown verb `%s`\n", argv[1]);
		return 1;
	}
	if (v->fn == cmd_help || v->fn == cmd_version) {
		printf("Usage: kiln %s\n\n%s\n", v->name, v->summary);
		return 0;
	}
	if (v->fn == NULL) {
		printf("kiln %s: %s (not available in this build)\n", v->name, v->summary);
		return 0;
	}
	char *args[] = {(char *)v->name, "--help", NULL};
	optind = 0;
	return v->fn(2, args);
}

int main(int argc, char **argv)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
			kiln_log_level = LOG_QUIET;
		else if (strcmp(a, "--verbose") == 0 || strcmp(a, "-verbose") == 0)
			kiln_log_level++;
		else if (a[1] == 'v' && strspn(a + 1, "v") == strlen(a + 1))
			kiln_log_level += (int)strlen(a + 1);
		else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			return cmd_version(0, NULL);
		} else {
			fprintf(stderr, "kiln: unknown option `%s`\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	const struct verb *v = verb_find(argv[i]);
	if (v == NULL) {
		fprintf(stderr, "kiln: unknown verb `%s` (see 'kiln help')\n", argv[i]);
		return 2;
	}
	if (v->fn == NULL) {
		fprintf(stderr, "kiln: %s: not available in this build yet\n", v->name);
		return 2;
	}
	optind = 0;
	return v->fn(argc - i, argv + i);
}
