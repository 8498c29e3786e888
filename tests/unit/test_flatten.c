/* Layer flattening: whiteouts, opaque dirs, hard links across layers, every
 * entry type, compression, and hostile names.  Layers are written here with
 * libarchive; the flattened stream is collected as one line per entry. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "flatten.h"
#include "strbuf.h"
#include "tap.h"
#include "tarw.h"
#include "util.h"

/* One layer entry: TYPE f(ile) d(ir) l(symlink) h(ardlink) c(har dev) p(fifo) x(file with xattr).
 */
struct ent {
	char type;
	const char *name;
	const char *arg; /* content, or link target */
};

static void make_layer(const char *path, const char *filter, const struct ent *ents)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (filter && strcmp(filter, "gzip") == 0)
		archive_write_add_filter_gzip(a);
	else if (filter && strcmp(filter, "zstd") == 0)
		archive_write_add_filter_zstd(a);
	archive_write_open_filename(a, path);
	for (const struct ent *e = ents; e->type; e++) {
		struct archive_entry *ae = archive_entry_new();
		archive_entry_set_pathname(ae, e->name);
		archive_entry_set_mtime(ae, 1000, 0);
		archive_entry_set_uid(ae, 7);
		archive_entry_set_gid(ae, 8);
		size_t len = 0;
		switch (e->type) {
		case 'f':
		case 'x':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0640);
			len = e->arg ? strlen(e->arg) : 0;
			archive_entry_set_size(ae, (la_int64_t)len);
			if (e->type == 'x')
				archive_entry_xattr_add_entry(ae, "user.k", "v1", 2);
			break;
		case 'd':
			archive_entry_set_filetype(ae, AE_IFDIR);
			archive_entry_set_perm(ae, 0711);
			break;
		case 'l':
			archive_entry_set_filetype(ae, AE_IFLNK);
			archive_entry_set_perm(ae, 0777);
			archive_entry_set_symlink(ae, e->arg);
			break;
		case 'h':
			archive_entry_set_filetype(ae, AE_IFREG);
			archive_entry_set_perm(ae, 0640);
			archive_entry_set_hardlink(ae, e->arg);
			break;
		case 'c':
			archive_entry_set_filetype(ae, AE_IFCHR);
			archive_entry_set_perm(ae, 0600);
			archive_entry_set_rdevmajor(ae, 1);
			archive_entry_set_rdevminor(ae, 3);
			break;
		case 'p':
			archive_entry_set_filetype(ae, AE_IFIFO);
			archive_entry_set_perm(ae, 0600);
			break;
		}
		archive_write_header(a, ae);
		if (len)
			archive_write_data(a, e->arg, len);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
}

struct collect {
	struct strbuf sb;
};

static int collect_emit(void *ctx, struct archive_entry *e, struct archive *data,
			struct kiln_error **err)
{
	(void)err;
	struct collect *c = ctx;
	char t = '?';
	switch (archive_entry_filetype(e)) {
	case AE_IFREG:
		t = archive_entry_hardlink(e) ? 'h' : 'f';
		break;
	case AE_IFDIR:
		t = 'd';
		break;
	case AE_IFLNK:
		t = 'l';
		break;
	case AE_IFCHR:
		t = 'c';
		break;
	case AE_IFIFO:
		t = 'p';
		break;
	}
	if (archive_entry_hardlink(e))
		t = 'h';
	strbuf_printf(&c->sb, "%c %s", t, archive_entry_pathname(e));
	if (archive_entry_hardlink(e))
		strbuf_printf(&c->sb, " -> %s", archive_entry_hardlink(e));
	if (t == 'l')
		strbuf_printf(&c->sb, " -> %s", archive_entry_symlink(e));
	if (data) {
		char buf[256];
		la_ssize_t n = archive_read_data(data, buf, sizeof(buf) - 1);
		buf[n > 0 ? n : 0] = '\0';
		strbuf_printf(&c->sb, " =%s", buf);
	}
	strbuf_printf(&c->sb, "\n");
	return 0;
}

/* Flattens the layers l0..l(n-1) (bottom first); returns the listing or the error. */
static char *flat(size_t n, const char *prefix, char **errmsg)
{
	struct flatten_layer layers[8];
	char names[8][32];
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof(names[i]), "l%zu", i);
		layers[i] = (struct flatten_layer){names[i], NULL, NULL};
	}
	struct collect c = {STRBUF_INIT};
	struct flatten_options o = {
	    .image = "test/img", .prefix = prefix, .epoch = 5, .emit = collect_emit, .ctx = &c};
	cleanup_error struct kiln_error *err = NULL;
	int r = flatten_image(layers, n, &o, &err);
	if (errmsg)
		*errmsg = r < 0 ? xstrdup(err->msg) : NULL;
	strbuf_puts(&c.sb, "");
	return strbuf_detach(&c.sb, NULL);
}

TEST(single_layer_types)
{
	make_layer("l0", NULL,
		   (struct ent[]){{'d', "./", NULL},
				  {'d', "etc/", NULL},
				  {'f', "etc/a", "hello"},
				  {'l', "etc/s", "/a"},
				  {'c', "null", NULL},
				  {'p', "fifo", NULL},
				  {'h', "etc/b", "etc/a"},
				  {0, 0, 0}});
	cleanup_free char *got = flat(1, "", NULL);
	is_str(got, "d etc\nf etc/a =hello\nl etc/s -> /a\nc null\np fifo\nh etc/b -> etc/a\n",
	       "listing");
}

TEST(whiteouts_and_opaque)
{
	make_layer("l0", "gzip",
		   (struct ent[]){{'d', "a", NULL},
				  {'f', "a/x", "1"},
				  {'f', "a/y", "1"},
				  {'d', "b", NULL},
				  {'f', "b/z", "1"},
				  {'d', "c", NULL},
				  {'f', "c/w", "1"},
				  {'f', "keep", "1"},
				  {0, 0, 0}});
	make_layer("l1", "zstd",
		   (struct ent[]){{'f', "a/.wh.x", ""},
				  {'d', "b", NULL},
				  {'f', "b/.wh..wh..opq", ""},
				  {'f', "b/new", "2"},
				  {'f', ".wh.c", ""},
				  {'f', "keep", "2"},
				  {0, 0, 0}});
	cleanup_free char *got = flat(2, "", NULL);
	is_str(got, "d b\nf b/new =2\nf keep =2\nd a\nf a/y =1\n", "merged view");
}

TEST(parent_synthesized_and_prefix)
{
	make_layer("l0", NULL,
		   (struct ent[]){{'d', "usr", NULL}, {'d', "usr/bin", NULL}, {0, 0, 0}});
	make_layer("l1", NULL, (struct ent[]){{'f', "usr/bin/tool", "t"}, {0, 0, 0}});
	cleanup_free char *got = flat(2, "containers/x/rootfs/", NULL);
	is_str(got,
	       "d containers/x/rootfs/usr\nd containers/x/rootfs/usr/bin\n"
	       "f containers/x/rootfs/usr/bin/tool =t\n"
	       "d containers/x/rootfs/usr\nd containers/x/rootfs/usr/bin\n",
	       "parents first, real dirs re-emitted");
}

TEST(hardlink_across_layers)
{
	make_layer("l0", NULL, (struct ent[]){{'f', "orig", "data"}, {0, 0, 0}});
	make_layer("l1", NULL, (struct ent[]){{'h', "link", "orig"}, {0, 0, 0}});
	cleanup_free char *got = flat(2, "", NULL);
	is_str(got, "f orig =data\nh link -> orig\n", "link follows its lower target");
}

TEST(hardlink_original_deleted_above)
{
	make_layer("l0", NULL,
		   (struct ent[]){{'f', "a", "data"}, {'h', "b", "a"}, {'h', "c", "a"}, {0, 0, 0}});
	make_layer("l1", NULL, (struct ent[]){{'f', ".wh.a", ""}, {0, 0, 0}});
	cleanup_free char *got = flat(2, "", NULL);
	is_str(got, "f b =data\nh c -> b\n", "first surviving link becomes the file");
}

TEST(hardlink_original_replaced_above)
{
	make_layer("l0", NULL, (struct ent[]){{'f', "a", "old"}, {0, 0, 0}});
	make_layer("l1", NULL, (struct ent[]){{'h', "b", "a"}, {0, 0, 0}});
	make_layer("l2", NULL, (struct ent[]){{'f', "a", "new"}, {0, 0, 0}});
	cleanup_free char *got = flat(3, "", NULL);
	is_str(got, "f a =new\nf b =old\n", "b keeps the old data");
}

TEST(hardlink_to_hidden_file_of_same_layer)
{
	/* y links to x in the same layer, but a higher layer replaced x: the
	 * flattener reads the layer again to give y the old data. */
	make_layer("l0", "gzip",
		   (struct ent[]){{'f', "x", "old"}, {'h', "y", "x"}, {'h', "z", "x"}, {0, 0, 0}});
	make_layer("l1", NULL, (struct ent[]){{'f', "x", "new"}, {0, 0, 0}});
	cleanup_free char *got = flat(2, "", NULL);
	is_str(got, "f x =new\nf y =old\nh z -> y\n", "y and z keep the old data, linked");
}

TEST(xattr_and_long_names)
{
	char longname[400];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	make_layer(
	    "l0", NULL,
	    (struct ent[]){
		{'x', "x", "v"}, {'f', longname, "L"}, {'f', "caf\xc3\xa9", "u"}, {0, 0, 0}});
	cleanup_free char *got = flat(1, "", NULL);
	cleanup_free char *want = xasprintf("f x =v\nf %s =L\nf caf\xc3\xa9 =u\n", longname);
	is_str(got, want, "names kept");
}

static void expect_error(const char *what, const struct ent *ents, const char *needle)
{
	make_layer("l0", NULL, ents);
	char *msg = NULL;
	free(flat(1, "p/", &msg));
	ok(msg != NULL, "%s refused", what);
	if (msg) {
		ok(strstr(msg, needle) != NULL, "%s: message `%s` has `%s`", what, msg, needle);
		ok(strstr(msg, "image test/img: layer 0") != NULL, "%s: names image and layer (%s)",
		   what, msg);
	}
	free(msg);
}

TEST(hostile_names)
{
	expect_error("dotdot", (struct ent[]){{'f', "../evil", "x"}, {0, 0, 0}}, "`..`");
	expect_error("absolute", (struct ent[]){{'f', "/etc/passwd", "x"}, {0, 0, 0}}, "absolute");
	expect_error("symlink parent",
		     (struct ent[]){{'l', "lib", "/"}, {'f', "lib/x", "x"}, {0, 0, 0}},
		     "is a symlink");
	expect_error("hardlink out", (struct ent[]){{'h', "x", "../../etc/shadow"}, {0, 0, 0}},
		     "`..`");
	expect_error("whiteout dotdot", (struct ent[]){{'f', "a/.wh...", ""}, {0, 0, 0}}, "`..`");
	expect_error("whiteout dot", (struct ent[]){{'f', "a/.wh..", ""}, {0, 0, 0}},
		     "names no entry");
	expect_error("dangling hardlink", (struct ent[]){{'h', "x", "nothere"}, {0, 0, 0}},
		     "no layer has");
}

TEST(size_limit)
{
	make_layer("l0", NULL, (struct ent[]){{'f', "big", "0123456789"}, {0, 0, 0}});
	struct flatten_layer l = {"l0", "sha256:00", NULL};
	struct collect c = {STRBUF_INIT};
	struct flatten_options o = {
	    .image = "i", .prefix = "", .emit = collect_emit, .ctx = &c, .max_entry_size = 5};
	cleanup_error struct kiln_error *err = NULL;
	is_int(flatten_image(&l, 1, &o, &err), -1, "refused");
	ok(err && strstr(err->msg, "exceeds the limit"), "message %s", err ? err->msg : "");
	strbuf_release(&c.sb);
}

TEST(truncated_gzip)
{
	make_layer("l0", "gzip",
		   (struct ent[]){{'f', "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, {0, 0, 0}});
	struct stat st;
	stat("l0", &st);
	ok(truncate("l0", st.st_size / 2) == 0, "truncated");
	char *msg = NULL;
	free(flat(1, "", &msg));
	ok(msg != NULL, "truncated gzip refused: %s", msg ? msg : "");
	free(msg);
}

struct tarctx {
	struct tarw *w;
};

static int tar_emit(void *ctx, struct archive_entry *e, struct archive *data,
		    struct kiln_error **err)
{
	struct tarctx *t = ctx;
	return tarw_add(t->w, e, data, NULL, "img", "init[0]", err);
}

TEST(tarw_roundtrip)
{
	char longname[300];
	memset(longname, 'q', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	make_layer("l0", "gzip",
		   (struct ent[]){{'d', "d", NULL},
				  {'x', "d/x", "xx"},
				  {'f', longname, "L"},
				  {'h', "d/y", "d/x"},
				  {'c', "dev", NULL},
				  {0, 0, 0}});
	int fd = open("out.tar", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	struct tarctx t = {tarw_new(fd)};
	struct flatten_layer l = {"l0", NULL, NULL};
	struct flatten_options o = {.image = "i", .prefix = "", .emit = tar_emit, .ctx = &t};
	cleanup_error struct kiln_error *err = NULL;
	is_int(flatten_image(&l, 1, &o, &err), 0, "flatten");
	is_int(tarw_finish(t.w, &err), 0, "finish");
	tarw_free(t.w);
	close(fd);
	struct archive *a = archive_read_new();
	archive_read_support_format_tar(a);
	archive_read_open_filename(a, "out.tar", 10240);
	struct archive_entry *e;
	struct strbuf sb = STRBUF_INIT;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		strbuf_printf(&sb, "%s %o %lld %lld/%lld", archive_entry_pathname(e),
			      (unsigned)archive_entry_mode(e), (long long)archive_entry_size(e),
			      (long long)archive_entry_uid(e), (long long)archive_entry_gid(e));
		if (archive_entry_hardlink(e))
			strbuf_printf(&sb, " ->%s", archive_entry_hardlink(e));
		const char *xn;
		const void *xv;
		size_t xs;
		archive_entry_xattr_reset(e);
		while (archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK)
			strbuf_printf(&sb, " %s=%.*s", xn, (int)xs, (const char *)xv);
		strbuf_printf(&sb, ";");
	}
	archive_read_free(a);
	cleanup_free char *want = xasprintf("d/ 40711 0 7/8;d/x 100640 2 7/8 user.k=v1;%s 100640 1 "
					    "7/8;d/y 640 0 7/8 ->d/x;dev 20600 0 7/8;",
					    longname);
	is_str(sb.buf, want, "read back by libarchive");
	strbuf_release(&sb);
}
