/* placeholder, replaced below */
#include "writer.h"
int format_write_kernel_squashfs(const struct format_ctx *ctx, struct kiln_error **err)
{
	(void)ctx;
	return kiln_error_make(err, 0, "kernel+squashfs: not yet");
}
int format_write_kernel_erofs(const struct format_ctx *ctx, struct kiln_error **err)
{
	(void)ctx;
	return kiln_error_make(err, 0, "kernel+erofs: not yet");
}
const struct output_format format_kernel_squashfs = {.name = "kernel+squashfs", .write = format_write_kernel_squashfs};
const struct output_format format_kernel_erofs = {.name = "kernel+erofs", .write = format_write_kernel_erofs};
