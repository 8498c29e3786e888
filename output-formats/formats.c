/* The table of output formats (STYLE.md §5).  Adding a format is adding a
 * file that defines a `const struct output_format format_X` and one row here. */
#include <string.h>

#include "format.h"
#include "writer.h" /* the disk, ISO, UKI and rootfs-image rows */

extern const struct output_format format_kernel_initrd;
extern const struct output_format format_tar_kernel_initrd;
extern const struct output_format format_tar;
extern const struct output_format format_docker;

const struct output_format *const output_formats[] = {
	&format_kernel_initrd,
	&format_tar_kernel_initrd,
	&format_tar,
	&format_docker,
	&format_iso_bios,
	&format_iso_efi,
	&format_iso_efi_initrd,
	&format_raw_bios,
	&format_raw_efi,
	&format_uki,
	&format_qcow2_bios,
	&format_qcow2_efi,
	&format_vhd,
	&format_dynamic_vhd,
	&format_vmdk,
	&format_gcp,
	&format_aws,
	&format_kernel_squashfs,
	&format_kernel_erofs,
	NULL,
};

const struct output_format *format_find(const char *name)
{
	for (size_t i = 0; output_formats[i]; i++)
		if (strcmp(output_formats[i]->name, name) == 0)
			return output_formats[i];
	return NULL;
}
