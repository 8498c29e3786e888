/* The registry options shared by `kiln pull`, `kiln push` (and any verb
 * that talks to registries): a getopt_long table fragment, its help text
 * and the handler.  Option values use codes >= 0x300. */
#ifndef KILN_REGISTRY_CLI_H
#define KILN_REGISTRY_CLI_H

#include <getopt.h>

#include "error.h"
#include "registry.h"
#include "store.h"

enum {
	REGISTRY_OPT_CACHE = 0x300,
	REGISTRY_OPT_ARCH,
	REGISTRY_OPT_PLATFORM,
	REGISTRY_OPT_INSECURE,
	REGISTRY_OPT_CERT_FILE,
	REGISTRY_OPT_MIRROR,
	REGISTRY_OPT_JOBS,
	REGISTRY_OPT_AUTH_FILE,
	REGISTRY_OPT_PROGRESS,
	REGISTRY_OPT_CHUNK_SIZE,
	REGISTRY_OPT_NO_MOUNT,
};

#define REGISTRY_CLI_LONGOPTS                                                                      \
	{"cache", required_argument, 0, REGISTRY_OPT_CACHE},                                       \
	    {"arch", required_argument, 0, REGISTRY_OPT_ARCH},                                     \
	    {"platform", required_argument, 0, REGISTRY_OPT_PLATFORM},                             \
	    {"insecure-registry", required_argument, 0, REGISTRY_OPT_INSECURE},                    \
	    {"cert-file", required_argument, 0, REGISTRY_OPT_CERT_FILE},                           \
	    {"mirror", required_argument, 0, REGISTRY_OPT_MIRROR},                                 \
	    {"jobs", required_argument, 0, REGISTRY_OPT_JOBS},                                     \
	    {"auth-file", required_argument, 0, REGISTRY_OPT_AUTH_FILE},                           \
	    {"progress", required_argument, 0, REGISTRY_OPT_PROGRESS},                             \
	    {"chunk-size", required_argument, 0, REGISTRY_OPT_CHUNK_SIZE},                         \
	{                                                                                          \
		"no-mount", no_argument, 0, REGISTRY_OPT_NO_MOUNT                                  \
	}

#define REGISTRY_CLI_HELP                                                                          \
	"  --cache DIR               the store (default $KILN_CACHE or ~/.cache/kiln)\n"           \
	"  --arch ARCH               platform to pull from an index: amd64, arm64, arm/v7\n"       \
	"  --platform OS/ARCH[/VAR]  the same with an OS\n"                                        \
	"  --insecure-registry HOST  allow plain HTTP and unverified TLS for HOST[:PORT]\n"        \
	"  --cert-file FILE          CA bundle (PEM) to verify registries with\n"                  \
	"  --mirror REG=URL          fetch REG (e.g. docker.io) from URL ($LINUXKIT_MIRROR)\n"     \
	"  --jobs N                  parallel blob downloads (default 4)\n"                        \
	"  --auth-file FILE          credentials file (default $REGISTRY_AUTH_FILE, then\n"        \
	"                            $DOCKER_CONFIG/config.json or ~/.docker/config.json)\n"       \
	"  --progress auto|plain|none  bars on a terminal, one line per image, or nothing\n"

/* The environment the registry client reads, for the verbs' help. */
#define REGISTRY_CLI_ENV_HELP                                                                      \
	"\nEnvironment:\n"                                                                         \
	"  REGISTRY_AUTH_FILE, DOCKER_CONFIG  where credentials are (\"auths\" entries)\n"         \
	"  KILN_MIRROR, LINUXKIT_MIRROR       REG=URL mirrors, space or comma separated\n"         \
	"  KILN_RETRY_BASE_MS                 first retry delay (default 500; doubles)\n"          \
	"  KILN_STALL_TIMEOUT                 seconds without a byte before a retry (30)\n"        \
	"  http_proxy, https_proxy, no_proxy  as libcurl reads them\n"

/* What a registry verb works with once its command line is read. */
struct registry_cli {
	struct registry_options o;
	struct store *s;
	struct registry_client *c;
	char **operands; /* into argv */
	int n_operands;
};

/* The start of a registry verb (`kiln pull`, `kiln push`): reads ARGV with
 * the registry options and -v/-q/-h, wants MIN to MAX operands, applies
 * $KILN_MIRROR/$LINUXKIT_MIRROR, opens the store and makes the client.
 * Returns 0 with CLI filled (release it with registry_cli_close()), or -1
 * with *STATUS the verb's exit status: 0 after -h, 2 with USAGE on stderr
 * for a bad command line, 1 after printing an error; CLI is then released. */
int registry_cli_open(struct registry_cli *cli, int argc, char **argv, const char *usage, int min,
		      int max, int *status);
void registry_cli_close(struct registry_cli *cli);

/* Applies option OPT with ARG to O (--cache goes to *CACHE).  -1 on a bad value. */
int registry_cli_option(int opt, const char *arg, struct registry_options *o, char **cache,
			struct kiln_error **err);
/* Applies $LINUXKIT_MIRROR / $KILN_MIRROR (space or comma separated REG=URL). */
int registry_cli_env(struct registry_options *o, struct kiln_error **err);

#endif
