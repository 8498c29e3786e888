/* Unified kernel images: systemd's EFI stub (Debian's systemd-boot-efi)
 * with .osrel, .cmdline, .initrd and .linux sections appended by kiln's own
 * PE writer, laid out as ukify does: each new section after the stub's last
 * one, virtual addresses page-aligned, .linux last.  Deterministic: nothing
 * but the inputs goes in, the COFF time stamp stays the stub's (0). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"
#include "writer.h"

#define UKI_STUB_DEFAULT	     "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"
#define PE_SECTION_HEADER	     40
#define PE_SCN_INITIALIZED_DATA_READ 0x40000040U
#define UKI_VMA_ALIGN		     4096U

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The PE checksum: a 16-bit one's-complement-style sum of the file's
 * little-endian words (the checksum field counted as zero) plus its length. */
struct pe_sum {
	uint32_t sum;
	uint64_t len;
};

static void pe_sum_add(struct pe_sum *s, const unsigned char *p, size_t n)
{
	size_t i = 0;
	if ((s->len & 1) && n) { /* the high byte of a word begun in the last chunk */
		s->sum += (uint32_t)p[0] << 8;
		s->sum = (s->sum & 0xffff) + (s->sum >> 16);
		i = 1;
	}
	for (; i + 1 < n; i += 2) {
		s->sum += get16(p + i);
		s->sum = (s->sum & 0xffff) + (s->sum >> 16);
	}
	if (i < n) {
		s->sum += p[i];
		s->sum = (s->sum & 0xffff) + (s->sum >> 16);
	}
	s->len += n;
}

static int emit(int fd, struct pe_sum *sum, const void *buf, size_t len, struct kiln_error **err)
{
	pe_sum_add(sum, buf, len);
	return write_all(fd, buf, len, err);
}

static int emit_file(int fd, struct pe_sum *sum, const char *path, size_t len,
		     struct kiln_error **err)
{
	cleanup_close int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return kiln_error_make(err, errno, "open `%s`", path);
	cleanup_free unsigned char *buf = xmalloc(1 << 20);
	size_t left = len;
	while (left) {
		ssize_t r = read(in, buf, left < (1 << 20) ? left : (1 << 20));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return kiln_error_make(err, errno, "read `%s`", path);
		if (r == 0)
			return kiln_error_make(err, 0, "`%s` shrank while being read", path);
		if (emit(fd, sum, buf, (size_t)r, err) < 0)
			return -1;
		left -= (size_t)r;
	}
	return 0;
}

int pe_add_sections(const unsigned char *stub, size_t stub_len, const struct pe_section_src *secs,
		    size_t nsecs, const char *out, struct kiln_error **err)
{
	if (stub_len < 0x40 || stub[0] != 'M' || stub[1] != 'Z')
		return kiln_error_make(err, 0, "EFI stub: not a PE image (no MZ header)");
	uint32_t pe = get32(stub + 0x3c);
	if ((uint64_t)pe + 24 > stub_len || memcmp(stub + pe, "PE\0\0", 4) != 0)
		return kiln_error_make(err, 0, "EFI stub: no PE signature");
	const unsigned char *coff = stub + pe + 4;
	uint16_t nold = get16(coff + 2);
	uint16_t opt_size = get16(coff + 16);
	size_t opt = pe + 24;
	if (opt + opt_size > stub_len || get16(stub + opt) != 0x20b)
		return kiln_error_make(err, 0, "EFI stub: not PE32+");
	uint32_t sect_align = get32(stub + opt + 32), file_align = get32(stub + opt + 36);
	uint32_t size_headers = get32(stub + opt + 60);
	if (!sect_align || !file_align || (sect_align & (sect_align - 1)) ||
	    (file_align & (file_align - 1)))
		return kiln_error_make(err, 0, "EFI stub: bad alignments");
	size_t table = opt + opt_size;
	size_t table_end = table + (size_t)nold * PE_SECTION_HEADER;
	size_t new_end = table_end + nsecs * PE_SECTION_HEADER;
	uint64_t raw_end = 0, va_end = 0, min_raw = size_headers;
	for (uint16_t i = 0; i < nold; i++) {
		const unsigned char *s = stub + table + (size_t)i * PE_SECTION_HEADER;
		uint32_t vsize = get32(s + 8), va = get32(s + 12), rsize = get32(s + 16),
			 rptr = get32(s + 20);
		uint64_t span = vsize > rsize ? vsize : rsize;
		if (va + span > va_end)
			va_end = va + span;
		if (rsize && rptr + (uint64_t)rsize > raw_end)
			raw_end = rptr + (uint64_t)rsize;
		if (rsize && rptr < min_raw)
			min_raw = rptr;
	}
	if (raw_end > stub_len)
		return kiln_error_make(err, 0, "EFI stub: a section runs past the end of the file");
	if (new_end > size_headers || new_end > min_raw)
		return kiln_error_make(err, 0,
				       "EFI stub: no room for %zu more section headers "
				       "(headers end at %zu, first section at %llu)",
				       nsecs, new_end, (unsigned long long)min_raw);
	for (size_t i = table_end; i < new_end; i++)
		if (stub[i] != 0)
			return kiln_error_make(err, 0,
					       "EFI stub: section table is followed by data");

	/* Lay the new sections out. */
	unsigned char *hdr = xmalloc(size_headers);
	cleanup_free unsigned char *hdr_owner = hdr;
	memcpy(hdr, stub, size_headers);
	uint64_t file_pos = round_up(raw_end, file_align);
	uint64_t va = round_up(va_end, UKI_VMA_ALIGN > sect_align ? UKI_VMA_ALIGN : sect_align);
	uint64_t init_data = get32(hdr + opt + 8);
	cleanup_free size_t *lens = xcalloc(nsecs ? nsecs : 1, sizeof(*lens));
	for (size_t i = 0; i < nsecs; i++) {
		size_t len = secs[i].len;
		if (secs[i].path) {
			struct stat st;
			if (stat(secs[i].path, &st) < 0)
				return kiln_error_make(err, errno, "stat `%s`", secs[i].path);
			len = (size_t)st.st_size;
		}
		lens[i] = len;
		if (strlen(secs[i].name) > 8)
			return kiln_error_make(err, 0, "PE section name `%s` too long",
					       secs[i].name);
		uint64_t rsize = round_up(len, file_align);
		if (va + len > 0xffffffffULL || file_pos + rsize > 0xffffffffULL)
			return kiln_error_make(err, EFBIG, "UKI larger than 4 GiB");
		unsigned char *s = hdr + table_end + i * PE_SECTION_HEADER;
		memset(s, 0, PE_SECTION_HEADER);
		memcpy(s, secs[i].name, strlen(secs[i].name));
		put_le32(s + 8, (uint32_t)len);
		put_le32(s + 12, (uint32_t)va);
		put_le32(s + 16, (uint32_t)rsize);
		put_le32(s + 20, (uint32_t)file_pos);
		put_le32(s + 36, PE_SCN_INITIALIZED_DATA_READ);
		file_pos += rsize;
		init_data += rsize;
		uint64_t end = va + len;
		va = round_up(end, UKI_VMA_ALIGN);
		if (i + 1 == nsecs)
			put_le32(hdr + opt + 56,
				 (uint32_t)round_up(end, sect_align)); /* SizeOfImage */
	}
	put_le16(hdr + pe + 4 + 2, (uint16_t)(nold + nsecs));
	/* The stub's COFF symbol table (after its sections) is not carried
	 * over: image files need none, and it would point into our sections. */
	put_le32(hdr + pe + 4 + 8, 0);
	put_le32(hdr + pe + 4 + 12, 0);
	put_le32(hdr + opt + 8, (uint32_t)init_data);
	put_le32(hdr + opt + 64, 0); /* CheckSum, filled in below */

	cleanup_close int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return kiln_error_make(err, errno, "create `%s`", out);
	struct pe_sum sum = {0};
	static const unsigned char zeros[4096];
	if (emit(fd, &sum, hdr, size_headers, err) < 0 ||
	    emit(fd, &sum, stub + size_headers, raw_end - size_headers, err) < 0)
		return kiln_error_wrap(err, "write `%s`", out);
	uint64_t pos = raw_end;
	for (size_t i = 0; i < nsecs; i++) {
		uint64_t start = round_up(pos, file_align);
		for (; pos < start;) {
			size_t n = start - pos < sizeof(zeros) ? start - pos : sizeof(zeros);
			if (emit(fd, &sum, zeros, n, err) < 0)
				return kiln_error_wrap(err, "write `%s`", out);
			pos += n;
		}
		int r = secs[i].path ? emit_file(fd, &sum, secs[i].path, lens[i], err)
				     : emit(fd, &sum, secs[i].data, lens[i], err);
		if (r < 0)
			return kiln_error_wrap(err, "write `%s`", out);
		pos += lens[i];
	}
	uint64_t end = round_up(pos, file_align);
	while (pos < end) {
		size_t n = end - pos < sizeof(zeros) ? end - pos : sizeof(zeros);
		if (emit(fd, &sum, zeros, n, err) < 0)
			return kiln_error_wrap(err, "write `%s`", out);
		pos += n;
	}
	unsigned char ck[4];
	put_le32(ck, (uint32_t)((sum.sum & 0xffff) + sum.len));
	if (pwrite(fd, ck, 4, (off_t)(opt + 64)) != 4)
		return kiln_error_make(err, errno, "write `%s`", out);
	return 0;
}

int uki_build(const struct format_ctx *ctx, const char *out, struct kiln_error **err)
{
	const char *stub_path = getenv("KILN_UKI_STUB");
	if (!stub_path || !*stub_path)
		stub_path = UKI_STUB_DEFAULT;
	if (!ctx->kernel_path || !ctx->initrd_path)
		return kiln_error_make(err, 0, "UKI: needs a kernel and an initrd");
	size_t stub_len;
	cleanup_free char *stub = read_file(stub_path, 16 * MIB, &stub_len, err);
	if (!stub)
		return kiln_error_wrap(err, "UKI stub (Debian's systemd-boot-efi)");
	cleanup_free char *osrel = xasprintf("NAME=\"kiln\"\nID=kiln\nPRETTY_NAME=\"kiln %s\"\n",
					     ctx->name ? ctx->name : "image");
	const char *cmdline = ctx->cmdline ? ctx->cmdline : "";
	struct pe_section_src secs[] = {
	    {.name = ".osrel", .data = osrel, .len = strlen(osrel)},
	    {.name = ".cmdline", .data = cmdline, .len = strlen(cmdline)},
	    {.name = ".initrd", .path = ctx->initrd_path},
	    {.name = ".linux", .path = ctx->kernel_path},
	};
	if (pe_add_sections((const unsigned char *)stub, stub_len, secs, ARRAY_SIZE(secs), out,
			    err) < 0)
		return kiln_error_wrap(err, "UKI");
	return 0;
}

int format_write_uki(const struct format_ctx *ctx, struct kiln_error **err)
{
	cleanup_free char *final = writer_output_path(ctx, ".efi");
	cleanup_free char *tmp = format_temp_path(final);
	if (uki_build(ctx, tmp, err) < 0 || format_publish(tmp, final, err) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

const struct output_format format_uki = {
    .name = "uki",
    .files = "NAME.efi",
    .needs_kernel_initrd = true,
    .write = format_write_uki,
};
