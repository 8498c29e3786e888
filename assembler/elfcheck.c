/* ELF dynamic-dependency reading and the missing-library check (elfcheck.h). */
#include "elfcheck.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "strbuf.h"
#include "util.h"

#define ELF_MAX_PHDRS 4096
#define ELF_MAX_DYN 65536
#define ELF_MAX_STRTAB ((size_t)16 << 20)

static int pread_full(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, (char *)buf + done, len - done, off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

void elf_deps_release(struct elf_deps *d)
{
	free(d->interp);
	for (size_t i = 0; i < d->nneeded; i++)
		free(d->needed[i]);
	free(d->needed);
	for (size_t i = 0; i < d->nrpath; i++)
		free(d->rpath[i]);
	free(d->rpath);
	for (size_t i = 0; i < d->nrunpath; i++)
		free(d->runpath[i]);
	free(d->runpath);
	memset(d, 0, sizeof *d);
}

static void push(char ***v, size_t *n, char *s)
{
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = s;
}

static void split_path_list(const char *s, char ***v, size_t *n)
{
	const char *p = s;
	for (;;) {
		const char *end = strchrnul(p, ':');
		if (end > p)
			push(v, n, xstrndup(p, (size_t)(end - p)));
		if (!*end)
			break;
		p = end + 1;
	}
}

/* File offset of virtual address VADDR through the PT_LOAD segments. */
static int vaddr_to_offset(const Elf64_Phdr *ph, size_t nph, uint64_t vaddr, uint64_t *off)
{
	for (size_t i = 0; i < nph; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		if (vaddr >= ph[i].p_vaddr && vaddr - ph[i].p_vaddr < ph[i].p_filesz) {
			*off = ph[i].p_offset + (vaddr - ph[i].p_vaddr);
			return 0;
		}
	}
	return -1;
}

int elf_deps_read(const char *file, struct elf_deps *d, struct kiln_error **err)
{
	memset(d, 0, sizeof *d);
	cleanup_close int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return kiln_error_make(err, errno, "open `%s`", file);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return kiln_error_make(err, errno, "stat `%s`", file);
	Elf64_Ehdr eh;
	if ((uint64_t)st.st_size < sizeof eh || pread_full(fd, &eh, sizeof eh, 0) < 0)
		return 0;
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
		return 0;
	if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		return 0;
	if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
		return 0;
	if (eh.e_phnum == 0)
		return 0;
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > ELF_MAX_PHDRS ||
	    eh.e_phoff > (uint64_t)st.st_size)
		return kiln_error_make(err, 0, "`%s`: malformed ELF program headers", file);
	size_t nph = eh.e_phnum;
	cleanup_free Elf64_Phdr *ph = xcalloc(nph, sizeof *ph);
	if (pread_full(fd, ph, nph * sizeof *ph, (off_t)eh.e_phoff) < 0)
		return kiln_error_make(err, 0, "`%s`: truncated ELF program headers", file);
	const Elf64_Phdr *dyn = NULL;
	for (size_t i = 0; i < nph; i++) {
		if (ph[i].p_type == PT_INTERP && d->interp == NULL) {
			if (ph[i].p_filesz == 0 || ph[i].p_filesz > PATH_MAX ||
			    ph[i].p_offset + ph[i].p_filesz > (uint64_t)st.st_size)
				return kiln_error_make(err, 0, "`%s`: malformed PT_INTERP", file);
			char *s = xcalloc(1, ph[i].p_filesz + 1);
			if (pread_full(fd, s, ph[i].p_filesz, (off_t)ph[i].p_offset) < 0) {
				free(s);
				return kiln_error_make(err, 0, "`%s`: truncated PT_INTERP", file);
			}
			d->interp = s;
		} else if (ph[i].p_type == PT_DYNAMIC) {
			dyn = &ph[i];
		}
	}
	if (dyn == NULL)
		return 1; /* static (maybe with an interpreter, e.g. static-pie: none) */
	size_t ndyn = dyn->p_filesz / sizeof(Elf64_Dyn);
	if (ndyn > ELF_MAX_DYN || dyn->p_offset + dyn->p_filesz > (uint64_t)st.st_size) {
		elf_deps_release(d);
		return kiln_error_make(err, 0, "`%s`: malformed PT_DYNAMIC", file);
	}
	cleanup_free Elf64_Dyn *dy = xcalloc(ndyn ? ndyn : 1, sizeof *dy);
	if (pread_full(fd, dy, ndyn * sizeof *dy, (off_t)dyn->p_offset) < 0) {
		elf_deps_release(d);
		return kiln_error_make(err, 0, "`%s`: truncated PT_DYNAMIC", file);
	}
	uint64_t strtab = 0, strsz = 0;
	bool have_strtab = false;
	for (size_t i = 0; i < ndyn && dy[i].d_tag != DT_NULL; i++) {
		if (dy[i].d_tag == DT_STRTAB) {
			strtab = dy[i].d_un.d_ptr;
			have_strtab = true;
		} else if (dy[i].d_tag == DT_STRSZ) {
			strsz = dy[i].d_un.d_val;
		}
	}
	uint64_t stroff;
	if (!have_strtab || strsz == 0 || strsz > ELF_MAX_STRTAB ||
	    vaddr_to_offset(ph, nph, strtab, &stroff) < 0 || stroff + strsz > (uint64_t)st.st_size) {
		elf_deps_release(d);
		return kiln_error_make(err, 0, "`%s`: malformed dynamic string table", file);
	}
	cleanup_free char *str = xcalloc(1, strsz + 1);
	if (pread_full(fd, str, strsz, (off_t)stroff) < 0) {
		elf_deps_release(d);
		return kiln_error_make(err, 0, "`%s`: truncated dynamic string table", file);
	}
	for (size_t i = 0; i < ndyn && dy[i].d_tag != DT_NULL; i++) {
		int64_t tag = dy[i].d_tag;
		if (tag != DT_NEEDED && tag != DT_RPATH && tag != DT_RUNPATH)
			continue;
		uint64_t o = dy[i].d_un.d_val;
		if (o >= strsz) {
			elf_deps_release(d);
			return kiln_error_make(err, 0, "`%s`: dynamic entry outside the string table",
					       file);
		}
		const char *s = str + o;
		if (tag == DT_NEEDED)
			push(&d->needed, &d->nneeded, xstrdup(s));
		else if (tag == DT_RPATH)
			split_path_list(s, &d->rpath, &d->nrpath);
		else
			split_path_list(s, &d->runpath, &d->nrunpath);
	}
	return 1;
}

/* Expands $ORIGIN, ${ORIGIN}, $LIB and $PLATFORM in DIR for BINARY. */
static char *expand_dst(const char *dir, const char *binary)
{
	struct strbuf sb = STRBUF_INIT;
	cleanup_free char *origin = xstrdup(binary);
	char *slash = strrchr(origin, '/');
	if (slash == origin)
		origin[1] = '\0';
	else if (slash)
		*slash = '\0';
	for (const char *p = dir; *p;) {
		struct {
			const char *name;
			const char *value;
		} vars[] = {
			{"${ORIGIN}", origin}, {"$ORIGIN", origin},	  {"${LIB}", "lib/x86_64-linux-gnu"},
			{"$LIB", "lib/x86_64-linux-gnu"}, {"${PLATFORM}", "x86_64"}, {"$PLATFORM", "x86_64"},
		};
		bool done = false;
		for (size_t i = 0; i < ARRAY_SIZE(vars) && *p == '$'; i++) {
			size_t n = strlen(vars[i].name);
			if (strncmp(p, vars[i].name, n) == 0) {
				strbuf_puts(&sb, vars[i].value);
				p += n;
				done = true;
				break;
			}
		}
		if (!done)
			strbuf_putc(&sb, *p++);
	}
	return strbuf_detach(&sb, NULL);
}

static const char *const default_dirs[] = {
	"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib",
	"/lib64",		 "/usr/lib64",		      "/usr/local/lib",
};

static bool found_in(const char *dir, const char *lib, elfcheck_exists_fn exists, void *arg)
{
	if (dir[0] != '/')
		return false; /* relative search paths depend on the cwd: not trusted */
	cleanup_free char *p = path_join(dir, lib);
	return exists(p, arg);
}

int elfcheck_deps(const char *binary, const struct elf_deps *d, char *const *extra_dirs,
		  size_t nextra, elfcheck_exists_fn exists, void *arg, struct kiln_error **err)
{
	if (d->interp && !exists(d->interp, arg))
		return kiln_error_make(err, 0, "%s needs the ELF interpreter %s, which is not in the image",
				       binary, d->interp);
	for (size_t i = 0; i < d->nneeded; i++) {
		const char *lib = d->needed[i];
		bool ok = false;
		if (strchr(lib, '/')) {
			cleanup_free char *p = lib[0] == '/' ? xstrdup(lib) : expand_dst(lib, binary);
			ok = p[0] == '/' && exists(p, arg);
		}
		for (size_t j = 0; !ok && j < d->nrpath; j++) {
			cleanup_free char *dir = expand_dst(d->rpath[j], binary);
			ok = found_in(dir, lib, exists, arg);
		}
		for (size_t j = 0; !ok && j < d->nrunpath; j++) {
			cleanup_free char *dir = expand_dst(d->runpath[j], binary);
			ok = found_in(dir, lib, exists, arg);
		}
		for (size_t j = 0; !ok && j < nextra; j++)
			ok = found_in(extra_dirs[j], lib, exists, arg);
		for (size_t j = 0; !ok && j < ARRAY_SIZE(default_dirs); j++)
			ok = found_in(default_dirs[j], lib, exists, arg);
		if (!ok)
			return kiln_error_make(err, 0,
					       "%s needs %s, which is not in the image (searched its "
					       "RPATH/RUNPATH, ld.so.conf and /lib, /usr/lib and their "
					       "x86_64-linux-gnu directories)",
					       binary, lib);
	}
	return 0;
}
