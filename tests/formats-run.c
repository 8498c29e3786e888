/* A test driver for the output-format writers: runs one writer on given
 * inputs, the way the build loop will (tests and `make bench-formats` use it
 * until `kiln build` reaches every format).
 *   formats-run FORMAT --dir D --name N --kernel K --initrd I --cmdline C
 *               [--tar T] [--size BYTES] [--epoch E] [--work W] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "util.h"
#include "writer.h"

static const struct output_format *const rows[] = {
    &format_uki,	&format_iso_bios,	 &format_iso_efi,      &format_iso_efi_initrd,
    &format_raw_bios,	&format_raw_efi,	 &format_aws,	       &format_gcp,
    &format_qcow2_bios, &format_qcow2_efi,	 &format_vhd,	       &format_dynamic_vhd,
    &format_vmdk,	&format_kernel_squashfs, &format_kernel_erofs,
};

int main(int argc, char **argv)
{
	struct format_ctx ctx = {.dir = ".", .name = "kiln", .epoch = 1700000000, .arch = "amd64"};
	static const struct option opts[] = {
	    {"dir", 1, NULL, 'd'},
	    {"name", 1, NULL, 'n'},
	    {"kernel", 1, NULL, 'k'},
	    {"initrd", 1, NULL, 'i'},
	    {"cmdline", 1, NULL, 'c'},
	    {"tar", 1, NULL, 't'},
	    {"size", 1, NULL, 's'},
	    {"epoch", 1, NULL, 'e'},
	    {"work", 1, NULL, 'w'},
	    {"verbose", 0, NULL, 'v'},
	    {0},
	};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			ctx.dir = optarg;
			break;
		case 'n':
			ctx.name = optarg;
			break;
		case 'k':
			ctx.kernel_path = optarg;
			break;
		case 'i':
			ctx.initrd_path = optarg;
			break;
		case 'c':
			ctx.cmdline = optarg;
			break;
		case 't':
			ctx.tar_path = optarg;
			break;
		case 's':
			ctx.size = strtoull(optarg, NULL, 0);
			break;
		case 'e':
			ctx.epoch = strtoll(optarg, NULL, 0);
			break;
		case 'w':
			ctx.work_dir = optarg;
			break;
		case 'v':
			kiln_log_level = LOG_DEBUG;
			break;
		default:
			return 2;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "usage: formats-run FORMAT [options]\n");
		return 2;
	}
	char work[] = "/tmp/formats-run-XXXXXX";
	if (!ctx.work_dir) {
		if (!mkdtemp(work)) {
			perror("mkdtemp");
			return 1;
		}
		ctx.work_dir = work;
	}
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		if (strcmp(rows[i]->name, argv[optind]) != 0)
			continue;
		struct kiln_error *err = NULL;
		int r = rows[i]->write(&ctx, &err);
		if (ctx.work_dir == work)
			rm_rf(work, NULL);
		if (r < 0) {
			fprintf(stderr, "formats-run: %s: %s\n", rows[i]->name,
				err ? err->msg : "?");
			kiln_error_release(&err);
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "formats-run: unknown format %s\n", argv[optind]);
	return 2;
}
