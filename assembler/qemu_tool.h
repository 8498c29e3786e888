/* Running the helper tools `kiln run` needs (qemu-img, mkfs.fat, mtools,
 * xorriso) as processes with argument vectors, never a shell string. */
#ifndef KILN_QEMU_TOOL_H
#define KILN_QEMU_TOOL_H

#include "error.h"

/* Runs ARGV (searched in PATH) with stdin from /dev/null and its output
 * captured; fails with the tool's last line of output when it exits
 * non-zero or cannot be started. */
int qemu_tool_run(const char *const argv[], struct kiln_error **err);

#endif
