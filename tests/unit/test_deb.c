/* deb.c: path cleaning, apt-cache stanza parsing, .deb reading (a .deb made
 * by dpkg-deb, and hostile ones made with ar + a crafted tar). */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deb.h"
#include "strbuf.h"
#include "tap.h"
#include "util.h"

TEST(path_clean)
{
	struct {
		const char *in, *out;
	} cases[] = {
		{"./usr/bin/runc", "usr/bin/runc"}, {"/etc//x/", "etc/x"}, {"./", ""},
		{"a/./b", "a/b"},		    {".", ""},		   {"../etc", NULL},
		{"a/../../b", NULL},		    {"usr/..", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_free char *got = deb_path_clean(cases[i].in);
		if (cases[i].out == NULL)
			ok(got == NULL, "`%s` refused", cases[i].in);
		else
			is_str(got, cases[i].out, cases[i].in);
	}
}

static const char show[] =
	"Package: runc\n"
	"Version: 1.1.5+ds1-1+deb12u1\n"
	"Architecture: amd64\n"
	"Depends: libc6 (>= 2.34), libseccomp2 (>= 2.5.0)\n"
	"Filename: pool/main/r/runc/runc_1.1.5+ds1-1+deb12u1_amd64.deb\n"
	"Size: 2810376\n"
	"SHA256: 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
	"\n"
	"Package: runc\n"
	"Version: 9.9\n"
	"SHA256: ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n";

TEST(parse_show_first_stanza)
{
	struct deb_info info;
	cleanup_error struct kiln_error *err = NULL;
	is_int(deb_parse_show("runc", show, &info, &err), 0, "parses");
	if (err)
		return;
	is_str(info.name, "runc", "name");
	is_str(info.version, "1.1.5+ds1-1+deb12u1", "version of the first stanza");
	is_str(info.arch, "amd64", "arch");
	is_str(info.sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	       "sha256");
	ok(info.size == 2810376, "size");
	deb_info_release(&info);
}

TEST(parse_show_refuses_virtual_and_bad_hash)
{
	struct deb_info info;
	cleanup_error struct kiln_error *err = NULL;
	is_int(deb_parse_show("mail-transport-agent", "", &info, &err), -1, "empty output refused");
	ok(err && strstr(err->msg, "virtual"), "says why: %s", err ? err->msg : "");
	kiln_error_release(&err);
	is_int(deb_parse_show("x",
			      "Package: x\nVersion: 1\nFilename: pool/x.deb\nSHA256: 12zz\n",
			      &info, &err),
	       -1, "malformed SHA256 refused");
}

static int sh(const char *cmd)
{
	int r = system(cmd);
	return WIFEXITED(r) ? WEXITSTATUS(r) : -1;
}

struct seen {
	struct strbuf names;
	int files;
	char content[64];
};

static int collect(struct archive *a, struct archive_entry *e, const char *path,
		   const char *hardlink, void *arg, struct kiln_error **err)
{
	(void)err;
	struct seen *s = arg;
	strbuf_printf(&s->names, "%s%s%s;", path, hardlink ? "=>" : "", hardlink ? hardlink : "");
	if (S_ISREG(archive_entry_mode(e)) && !hardlink && !strcmp(path, "usr/share/x/hello")) {
		la_ssize_t n = archive_read_data(a, s->content, sizeof s->content - 1);
		s->content[n > 0 ? n : 0] = '\0';
	}
	s->files++;
	return 0;
}

TEST(unpack_dpkg_deb)
{
	if (sh("command -v dpkg-deb >/dev/null") != 0)
		skip("no dpkg-deb");
	ok(sh("mkdir -p p/DEBIAN p/usr/share/x && printf 'Package: t\\nVersion: 1\\n"
	      "Architecture: all\\nMaintainer: k <k@k>\\nDescription: t\\n' > p/DEBIAN/control && "
	      "echo hi > p/usr/share/x/hello && ln p/usr/share/x/hello p/usr/share/x/hl && "
	      "ln -s hello p/usr/share/x/sl && "
	      "dpkg-deb -Zxz --root-owner-group --build p t.deb >/dev/null") == 0,
	   "dpkg-deb builds a fixture");
	struct seen s = {STRBUF_INIT, 0, ""};
	cleanup_error struct kiln_error *err = NULL;
	is_int(deb_unpack("t.deb", collect, &s, &err), 0, "unpacks");
	ok(s.names.buf && strstr(s.names.buf, "usr/share/x/hello;"), "regular file seen: %s",
	   s.names.buf ? s.names.buf : "");
	ok(s.names.buf && strstr(s.names.buf, "usr/share/x/sl;"), "symlink seen");
	ok(s.names.buf && (strstr(s.names.buf, "usr/share/x/hl=>usr/share/x/hello") ||
			   strstr(s.names.buf, "usr/share/x/hello=>usr/share/x/hl")),
	   "hard link seen with a cleaned target");
	is_str(s.content, "hi\n", "data readable through the nested archive");
	strbuf_release(&s.names);
}

TEST(unpack_refuses_escape_and_non_deb)
{
	ok(sh("python3 -c \"import tarfile,io\n"
	      "t=tarfile.open('data.tar','w')\n"
	      "i=tarfile.TarInfo('./../../etc/evil'); i.size=1\n"
	      "t.addfile(i, io.BytesIO(b'x')); t.close()\" && printf '2.0\\n' > debian-binary && "
	      "tar -cf control.tar debian-binary && ar rc evil.deb debian-binary control.tar data.tar") ==
		   0,
	   "hostile fixture made");
	struct seen s = {STRBUF_INIT, 0, ""};
	cleanup_error struct kiln_error *err = NULL;
	is_int(deb_unpack("evil.deb", collect, &s, &err), -1, "`..` entry refused");
	ok(err && strstr(err->msg, "leaves the root"), "message: %s", err ? err->msg : "");
	kiln_error_release(&err);
	ok(sh("ar rc nodata.deb debian-binary control.tar") == 0, "a .deb without data.tar");
	is_int(deb_unpack("nodata.deb", collect, &s, &err), -1, "refused");
	ok(err && strstr(err->msg, "no data.tar"), "message: %s", err ? err->msg : "");
	strbuf_release(&s.names);
}

TEST(verify_checks_hash_and_size)
{
	ok(sh("printf abc > f") == 0, "file");
	cleanup_error struct kiln_error *err = NULL;
	const char *abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	is_int(deb_verify("f", abc, 3, &err), 0, "matches");
	is_int(deb_verify("f", abc, 4, &err), -1, "size mismatch");
	kiln_error_release(&err);
	is_int(deb_verify("f", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ae", 0,
			  &err),
	       -1, "hash mismatch");
	ok(err && strstr(err->msg, "SHA256 mismatch"), "message: %s", err ? err->msg : "");
}

TEST(parse_depends_one_package)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_free char *pinned = deb_parse_depends(
		"linux-image-amd64:depends",
		"Package: linux-image-amd64\nVersion: 6.1.192-2\n"
		"Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)\n\nDepends: other\n",
		&err);
	is_str(pinned, "linux-image-6.1.0-56-amd64=6.1.192-2", "(= V) pins the version");
	cleanup_free char *bare = deb_parse_depends("m:depends", "Package: m\nDepends: real\n", &err);
	is_str(bare, "real", "no version: the candidate");
	cleanup_free char *ge =
		deb_parse_depends("m:depends", "Package: m\nDepends: real (>= 2)\n", &err);
	is_str(ge, "real", ">= V: the candidate");
	ok(err == NULL, "no error");
}

TEST(parse_depends_refuses_lists)
{
	const char *bad[] = {
		"Package: m\nDepends: a, b\n",
		"Package: m\nDepends: a | b\n",
		"Package: m\nPre-Depends: a\n",
		"Package: m\n\nDepends: a\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cleanup_error struct kiln_error *err = NULL;
		char *got = deb_parse_depends("m:depends", bad[i], &err);
		ok(got == NULL && err && strstr(err->msg, "m:depends"), "refused: %s",
		   err ? err->msg : "(accepted)");
		free(got);
	}
}

/* Against the host's apt: the metapackage resolves to the versioned kernel. */
TEST(resolve_depends_kernel)
{
	if (system("apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1") != 0)
		skip("apt knows no linux-image-amd64");
	char *specs[] = {"linux-image-amd64:depends", "linux-image-amd64:depends"};
	struct deb_info info[2];
	cleanup_error struct kiln_error *err = NULL;
	is_int(deb_resolve_all(specs, 1, info, ".", &err), 0, "resolves");
	if (err) {
		ok(0, "%s", err->msg);
		return;
	}
	ok(str_has_prefix(info[0].name, "linux-image-") && info[0].name[12] >= '0' &&
		   info[0].name[12] <= '9',
	   "a linux-image-[0-9]* package: %s", info[0].name);
	ok(strlen(info[0].sha256) == 64, "with its SHA256");
	/* Again from the cache this run wrote (no apt-cache). */
	is_int(deb_resolve_all(specs + 1, 1, info + 1, ".", &err), 0, "resolves from the cache");
	if (err == NULL)
		is_str(info[1].name, info[0].name, "same package");
	deb_info_release(&info[0]);
	deb_info_release(&info[1]);
}

/* The control file from control.tar, as dpkg-deb wrote it. */
TEST(control_read)
{
	if (sh("command -v dpkg-deb >/dev/null") != 0)
		skip("no dpkg-deb");
	ok(sh("mkdir -p c/DEBIAN c/usr && printf 'Package: c\\nVersion: 2\\n"
	      "Architecture: all\\nMaintainer: k <k@k>\\nDescription: c\\n more\\n' > "
	      "c/DEBIAN/control && "
	      "printf '#!/bin/sh\\n' > c/DEBIAN/postinst && chmod 755 c/DEBIAN/postinst && "
	      "dpkg-deb -Zzstd --root-owner-group --build c c.deb >/dev/null") == 0,
	   "dpkg-deb builds a fixture (zstd)");
	cleanup_free char *text = NULL;
	cleanup_error struct kiln_error *err = NULL;
	is_int(deb_control("c.deb", &text, &err), 0, "reads it");
	is_str(text,
	       "Package: c\nVersion: 2\nArchitecture: all\nMaintainer: k <k@k>\n"
	       "Description: c\n more\n",
	       "the control file's bytes");
	ok(sh("printf x > bad.deb") == 0, "not a .deb");
	cleanup_free char *none = NULL;
	is_int(deb_control("bad.deb", &none, &err), -1, "refused");
	ok(err && strstr(err->msg, "bad.deb"), "naming it: %s", err ? err->msg : "");
}

TEST(status_stanza)
{
	cleanup_error struct kiln_error *err = NULL;
	char *name = NULL;
	cleanup_free char *s1 = deb_status_stanza("Source: x\r\nPackage: p\r\nStatus: purge\r\n"
						  "Version: 1\r\n\r\nPackage: second\n",
						  &name, &err);
	is_str(s1, "Source: x\nPackage: p\nStatus: install ok installed\nVersion: 1\n",
	       "Status after Package, the control's own left out, one stanza, LF");
	is_str(name, "p", "the name");
	free(name);
	char *none = deb_status_stanza("Version: 1\n", &name, &err);
	ok(none == NULL && err && strstr(err->msg, "Package"), "no Package refused");
	kiln_error_release(&err);
	none = deb_status_stanza("Package: ../x\nVersion: 1\n", &name, &err);
	ok(none == NULL && err && strstr(err->msg, "../x"), "a Package that is no file name");
}

/* The kinds deb822_next gives each line of TEXT, one letter each:
 * B break, C continuation, F field, O other. */
static char *kinds(const char *text)
{
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "");
	const char *p = text, *end = text + strlen(text);
	struct deb822_line l;
	for (enum deb822_kind k; (k = deb822_next(&p, end, &l)) != DEB822_END;)
		strbuf_putc(&sb, "?BCFO"[k]);
	return strbuf_detach(&sb, NULL);
}

TEST(deb822_lines)
{
	cleanup_free char *a = kinds("A: 1\n Cont\n\tmore\n .\n\nB: 2\n");
	is_str(a, "FCCCBF", "continuation lines (space, tab, \" .\") and a blank line");
	cleanup_free char *b = kinds("A: 1\r\n \r\n\t\nB: 2\r\n\r\nC: 3");
	is_str(b, "FBBFBF", "CRLF; whitespace-only lines break stanzas; no final newline");
	cleanup_free char *c = kinds("no colon\nA:\n");
	is_str(c, "OF", "a line without a colon; an empty value");
	cleanup_free char *d = kinds("");
	is_str(d, "", "empty text: no lines");

	const char *text = "Package:  libc6 \t\r\nversion:1.0\nX-Y: a: b\n", *p = text;
	const char *end = text + strlen(text);
	struct deb822_line l;
	ok(deb822_next(&p, end, &l) == DEB822_FIELD && deb822_is(&l, "Package") &&
	       !deb822_is(&l, "Packag"),
	   "Package field");
	ok(l.value_len == 5 && memcmp(l.value, "libc6", 5) == 0, "value without blanks or CR");
	ok(l.len == strlen("Package:  libc6 \t"), "the line without its CR");
	ok(deb822_next(&p, end, &l) == DEB822_FIELD && deb822_is(&l, "VERSION") &&
	       l.value_len == 3 && memcmp(l.value, "1.0", 3) == 0,
	   "names are case-insensitive; no space after the colon");
	ok(deb822_next(&p, end, &l) == DEB822_FIELD && deb822_is(&l, "X-Y") &&
	       l.value_len == 4 && memcmp(l.value, "a: b", 4) == 0,
	   "the first colon ends the name");
	ok(deb822_next(&p, end, &l) == DEB822_END && p == end, "the end");
}

TEST(status_stanza_edges)
{
	cleanup_error struct kiln_error *err = NULL;
	char *name = NULL;
	/* a whitespace-only line ends the stanza, as in dpkg; continuation
	 * lines stay as they are; no final newline */
	cleanup_free char *s = deb_status_stanza("package: p\nVersion: 2\nDescription: d\n long\n"
						 "  \t\nPackage: other",
						 &name, &err);
	is_str(s, "package: p\nStatus: install ok installed\nVersion: 2\nDescription: d\n long\n",
	       "first stanza, continuation kept, lower-case name");
	is_str(name, "p", "the name");
	free(name);
	cleanup_free char *t = deb_status_stanza("Package: q\nVersion: 3", &name, &err);
	is_str(t, "Package: q\nStatus: install ok installed\nVersion: 3\n",
	       "no final newline: one is added");
	free(name);
	char *none = deb_status_stanza("Package: r\n \nVersion: 1\n", &name, &err);
	ok(none == NULL && err, "Version after a whitespace-only line is another stanza");
}
