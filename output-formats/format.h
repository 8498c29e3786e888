/* Output formats as a table of writers (STYLE.md §5).  The build loop knows
 * nothing about any particular format: it assembles the intermediate root
 * filesystem tar once, produces kernel/initrd/cmdline when a format asks for
 * them, and calls each requested format's writer. */
#ifndef KILN_FORMAT_H
#define KILN_FORMAT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

struct format_ctx {
	const char *name;        /* output base name (--name, default: manifest basename) */
	const char *dir;         /* output directory (--dir, default ".") */
	const char *tar_path;    /* the intermediate root filesystem tar (PAX) */
	const char *kernel_path; /* the kernel image (when the format needs_kernel_initrd) */
	const char *initrd_path; /* the compressed initrd (ucode prepended if any) */
	const char *cmdline;     /* kernel command line */
	const char *work_dir;    /* scratch directory private to this build */
	uint64_t size;           /* --size in bytes, 0 when not given */
	int64_t epoch;           /* SOURCE_DATE_EPOCH for every invented timestamp */
	const char *arch;        /* "amd64" or "arm64" */
	const char *output;      /* -o FILE or "-" for streaming formats, else NULL */
};

struct output_format {
	const char *name;         /* "kernel+initrd", "iso-bios", … as LinuxKit names them */
	const char *files;        /* human description of the files written, e.g. "NAME.iso" */
	bool needs_kernel_initrd; /* the build makes kernel + initrd before calling write */
	bool streamable;          /* may write to -o / stdout */
	int (*write)(const struct format_ctx *ctx, struct kiln_error **err);
};

/* The table of every format, NULL-terminated (output-formats/formats.c). */
extern const struct output_format *const output_formats[];
const struct output_format *format_find(const char *name);

#endif
