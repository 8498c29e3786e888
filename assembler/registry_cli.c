/* Shared option handling for the verbs that talk to registries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "registry_cli.h"
#include "util.h"

static int parse_size(const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v = strtoull(arg, &end, 10);
	if (end == arg)
		return -1;
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K')
		mul = 1024, end++;
	else if (*end == 'm' || *end == 'M')
		mul = 1024 * 1024, end++;
	else if (*end == 'g' || *end == 'G')
		mul = 1024ULL * 1024 * 1024, end++;
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end)
		return -1;
	*out = v * mul;
	return 0;
}

int registry_cli_option(int opt, const char *arg, struct registry_options *o, char **cache,
			struct kiln_error **err)
{
	uint64_t v;
	switch (opt) {
	case REGISTRY_OPT_CACHE:
		free(*cache);
		*cache = xstrdup(arg);
		return 0;
	case REGISTRY_OPT_ARCH:
	case REGISTRY_OPT_PLATFORM:
		free(o->arch);
		o->arch = xstrdup(arg);
		return 0;
	case REGISTRY_OPT_INSECURE:
		registry_options_add_insecure(o, arg);
		return 0;
	case REGISTRY_OPT_CERT_FILE:
		free(o->cert_file);
		o->cert_file = xstrdup(arg);
		return 0;
	case REGISTRY_OPT_MIRROR:
		return registry_options_add_mirror(o, arg, err);
	case REGISTRY_OPT_JOBS:
		if (parse_u64(arg, 10, &v) < 0 || v < 1 || v > 64)
			return kiln_error_make(err, 0, "--jobs `%s`: expected 1 to 64", arg);
		o->jobs = (int)v;
		return 0;
	case REGISTRY_OPT_AUTH_FILE:
		free(o->auth_file);
		o->auth_file = xstrdup(arg);
		return 0;
	case REGISTRY_OPT_PROGRESS:
		if (strcmp(arg, "auto") == 0)
			o->progress = REGISTRY_PROGRESS_AUTO;
		else if (strcmp(arg, "plain") == 0 || strcmp(arg, "lines") == 0)
			o->progress = REGISTRY_PROGRESS_LINES;
		else if (strcmp(arg, "none") == 0 || strcmp(arg, "quiet") == 0)
			o->progress = REGISTRY_PROGRESS_NONE;
		else
			return kiln_error_make(
			    err, 0, "--progress `%s`: expected auto, plain or none", arg);
		return 0;
	case REGISTRY_OPT_CHUNK_SIZE:
		if (parse_size(arg, &v) < 0)
			return kiln_error_make(err, 0, "--chunk-size `%s`: expected a size", arg);
		o->chunk_size = v;
		return 0;
	case REGISTRY_OPT_NO_MOUNT:
		o->no_mount = true;
		return 0;
	default:
		return kiln_error_make(err, 0, "unknown option");
	}
}

int registry_cli_env(struct registry_options *o, struct kiln_error **err)
{
	const char *names[] = {"KILN_MIRROR", "LINUXKIT_MIRROR"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *v = getenv(names[i]);
		if (v == NULL || *v == 0)
			continue;
		cleanup_free char *copy = xstrdup(v);
		char *save = NULL;
		for (char *t = strtok_r(copy, " ,\t", &save); t;
		     t = strtok_r(NULL, " ,\t", &save)) {
			bool dup = false;
			const char *eq = strchr(t, '=');
			for (size_t k = 0; eq && k < o->nmirrors; k++)
				dup |= strlen(o->mirrors[k].domain) == (size_t)(eq - t) &&
				       strncmp(o->mirrors[k].domain, t, (size_t)(eq - t)) == 0;
			if (!dup && registry_options_add_mirror(o, t, err) < 0)
				return kiln_error_wrap(err, "$%s", names[i]);
		}
	}
	return 0;
}

int registry_cli_open(struct registry_cli *cli, int argc, char **argv, const char *usage, int min,
		      int max, int *status)
{
	struct option longopts[] = {REGISTRY_CLI_LONGOPTS, CLI_COMMON_LONGOPTS, {0, 0, 0, 0}};
	memset(cli, 0, sizeof *cli);
	registry_options_init(&cli->o);
	cleanup_free char *cache = NULL;
	cleanup_error struct kiln_error *err = NULL;
	int opt;
	*status = 0;
	while ((opt = getopt_long_only(argc, argv, "+" CLI_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
		int common = cli_common_option(opt, usage);
		if (common == CLI_OPT_HELP)
			goto stop;
		if (common == CLI_OPT_DONE)
			continue;
		switch (opt) {
		case '?':
			goto usage;
		default:
			if (registry_cli_option(opt, optarg, &cli->o, &cache, &err) < 0)
				goto failed;
		}
	}
	cli->operands = argv + optind;
	cli->n_operands = argc - optind;
	if (cli->n_operands < min || cli->n_operands > max)
		goto usage;
	if (registry_cli_env(&cli->o, &err) < 0 || (cli->s = store_open(cache, &err)) == NULL ||
	    (cli->c = registry_client_new(&cli->o, &err)) == NULL)
		goto failed;
	return 0;
usage:
	fputs(usage, stderr);
	*status = 2;
	goto stop;
failed:
	*status = cli_fail(&err);
stop:
	registry_cli_close(cli);
	return -1;
}

void registry_cli_close(struct registry_cli *cli)
{
	registry_client_free(cli->c);
	store_close(cli->s);
	registry_options_release(&cli->o);
	memset(cli, 0, sizeof *cli);
}
