/* FAT images for ESPs, El Torito EFI images and syslinux partitions, made
 * with mkfs.fat and mtools on a plain file: no mount, no loop device.
 * mkfs.fat --invariant fixes its time-based fields (and -i, given after it,
 * the volume id); mtools stamps what it creates with SOURCE_DATE_EPOCH, read
 * in UTC (tool_run sets both). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "strbuf.h"
#include "util.h"
#include "writer.h"

uint64_t fat_size_for(uint64_t payload)
{
	uint64_t size = payload + payload / 32 + 2 * MIB;
	size = round_up(size, MIB);
	return size < 8 * MIB ? 8 * MIB : size;
}

/* Creates every directory above DST not made yet (MADE is a "\n"-joined
 * list of the ones already there). */
static int fat_mkdirs(const char *img, const char *dst, struct strbuf *made, int64_t epoch,
		      struct kiln_error **err)
{
	cleanup_free char *path = xstrdup(dst);
	for (char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		cleanup_free char *key = xasprintf("\n%s\n", path);
		if (!made->buf || !strstr(made->buf, key)) {
			cleanup_free char *target = xasprintf("::%s", path);
			const char *argv[] = {"mmd", "-i", img, target, NULL};
			if (tool_run(argv, epoch, NULL, err) < 0)
				return -1;
			if (made->len == 0)
				strbuf_putc(made, '\n');
			strbuf_printf(made, "%s\n", path);
		}
		*slash = '/';
	}
	return 0;
}

int fat_build(const char *img, uint64_t size, uint32_t volid, const char *label, uint32_t hidden,
	      const struct fat_file *files, size_t nfiles, int64_t epoch, struct kiln_error **err)
{
	if (unlink(img) < 0 && errno != ENOENT)
		return kiln_error_make(err, errno, "remove `%s`", img);
	char volid_s[16], kib[32], hidden_s[16];
	snprintf(volid_s, sizeof(volid_s), "%08x", volid);
	snprintf(kib, sizeof(kib), "%llu", (unsigned long long)(size / 1024));
	snprintf(hidden_s, sizeof(hidden_s), "%u", hidden);
	const char *bits = size < 512 * MIB ? "16" : "32";
	const char *mkfs[] = {"mkfs.fat", "--invariant", "-i", volid_s, "-n", label, "-h",
			      hidden_s,	  "-F",		 bits, "-C",	img,  kib,   NULL};
	if (tool_run(mkfs, epoch, NULL, err) < 0)
		return kiln_error_wrap(err, "make FAT image `%s`", img);
	cleanup_strbuf struct strbuf made = STRBUF_INIT;
	for (size_t i = 0; i < nfiles; i++) {
		if (fat_mkdirs(img, files[i].dst, &made, epoch, err) < 0)
			return kiln_error_wrap(err, "FAT image `%s`", img);
		cleanup_free char *target = xasprintf("::%s", files[i].dst);
		const char *argv[] = {"mcopy", "-i", img, files[i].src, target, NULL};
		if (tool_run(argv, epoch, NULL, err) < 0)
			return kiln_error_wrap(err, "copy %s into FAT image `%s`", files[i].src,
					       img);
	}
	return 0;
}
