/* `kiln build`: the parsed command-line options and the build entry point.
 * assembler/cmd_build.c parses the options and the manifests; build_execute()
 * (assembler/build.c, the assembler) does the rest. */
#ifndef KILN_BUILD_H
#define KILN_BUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "manifest.h"

enum build_compress {
	BUILD_COMPRESS_DEFAULT = 0, /* the format's own default (gzip for initrds) */
	BUILD_COMPRESS_GZIP,
	BUILD_COMPRESS_ZSTD,
	BUILD_COMPRESS_NONE,
};

/* A --mirror REGISTRY=URL pair ("docker.io=http://127.0.0.1:5000"). */
struct build_mirror {
	char *registry;
	char *url;
};

struct build_options {
	/* Output formats in command-line order, de-duplicated ("kernel+initrd",
	 * "iso-bios", …).  Defaults to {"kernel+initrd"}, or {"tar"} with -o. */
	size_t nformats;
	char **formats;
	char *name;           /* --name; default: manifest->name (basename of the last file) */
	char *dir;            /* --dir; default: NULL = current directory */
	char *output;         /* -o FILE or "-"; NULL when not given */
	uint64_t size;        /* --size in bytes; default 1024 MiB */
	bool pull;            /* --pull: re-resolve tags even when in the store */
	char *arch;           /* --arch; default "amd64" */
	char *cache;          /* --cache; default $KILN_CACHE, $LINUXKIT_CACHE or ~/.cache/kiln */
	bool dry_run;         /* --dry-run: print the merged manifest and stop */
	bool docker;          /* --docker: accepted, warned, ignored */
	bool decompress_kernel;
	char *input_tar;      /* --input-tar: accepted */
	bool no_sbom;         /* --no-sbom: no SPDX SBOM in the image (sbom.h) */
	char *sbom_output;    /* --sbom-output; default "sbom.spdx.json" */
	bool sbom_current_time;
	enum build_compress compress;
	size_t nmirrors;
	struct build_mirror *mirrors;
	char *cert_file;      /* --cert-file */
	size_t ninsecure;
	char **insecure_registries; /* --insecure-registry, repeatable */
	/* The manifest files as given on the command line ("-" = stdin). */
	size_t nfiles;
	char **files;
};

/* Builds every format of OPTS from M (merged, templates resolved).  Returns 0
 * or -1 with *err set.  M may be modified (e.g. references pinned). */
int build_execute(const struct build_options *opts, struct manifest *m, struct kiln_error **err);

/* Frees the members of OPTS. */
void build_options_release(struct build_options *opts);

#endif
