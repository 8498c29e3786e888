/* pkg.c: build.yml checks, the content tag, deterministic images, the ELF
 * check, build steps and the config label — packages without .debs, so no
 * network is needed (tests/integration/pkg.sh builds the real ones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image.h"
#include "oci.h"
#include "pkg.h"
#include "store.h"
#include "tap.h"
#include "util.h"

#define diag(...) (printf("# "), printf(__VA_ARGS__), printf("\n"))

static void put(const char *path, const char *text)
{
	struct kiln_error *err = NULL;
	cleanup_free char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = '\0';
		mkdir_p(dir, 0755, &err);
	}
	write_file_atomic(path, text, strlen(text), 0644, &err);
	kiln_error_release(&err);
}

static char *load_error(const char *yml)
{
	put("p/build.yml", yml);
	struct kiln_error *err = NULL;
	struct pkg *p = pkg_load("p", &err);
	pkg_free(p);
	char *msg = err ? xstrdup(err->msg) : xstrdup("(no error)");
	kiln_error_release(&err);
	return msg;
}

TEST(build_yml_is_strict)
{
	cleanup_free char *m1 = load_error("image: x\nfoo: 1\n");
	ok(strstr(m1, "p/build.yml:2:1: unknown key `foo`") != NULL, "unknown key: %s", m1);
	cleanup_free char *m2 = load_error("org: kiln\n");
	ok(strstr(m2, "`image` is required") != NULL, "image required: %s", m2);
	cleanup_free char *m3 =
		load_error("image: x\nfiles:\n  - path: /a\n    contents: x\n    source: y\n");
	ok(strstr(m3, "3:5: `files` entry `/a` needs exactly one of") != NULL, "one kind: %s", m3);
	cleanup_free char *m4 = load_error("image: x\nfiles:\n  - {path: /a, contents: x, mode: 9}\n");
	ok(strstr(m4, "`mode` must be an octal number") != NULL, "octal mode: %s", m4);
	cleanup_free char *m5 = load_error("image: Bad\n");
	ok(strstr(m5, "lowercase") != NULL, "image name checked as a reference: %s", m5);
	cleanup_free char *m6 = load_error("image: x\narches: [arm64]\n");
	ok(strstr(m6, "amd64") != NULL, "arches without amd64: %s", m6);
	cleanup_free char *m7 = load_error("image: x\nimage: y\n");
	ok(strstr(m7, "2:1: duplicate key `image`") != NULL, "duplicate key: %s", m7);
	cleanup_free char *m8 = load_error("image: x\nfiles:\n  - {path: ../../x, contents: x}\n");
	ok(strstr(m8, "not a path inside the image") != NULL, "escaping path: %s", m8);
}

static char *tag_of(const char *dir)
{
	struct kiln_error *err = NULL;
	char *ref = pkg_show_tag_ref(dir, &err);
	if (ref == NULL) {
		diag("%s", err->msg);
		kiln_error_release(&err);
		return xstrdup("(error)");
	}
	return ref;
}

TEST(tag_follows_inputs)
{
	put("p/build.yml", "image: t\nfiles:\n  - {path: /a, source: a.txt}\n");
	put("p/a.txt", "one\n");
	cleanup_free char *t1 = tag_of("p");
	cleanup_free char *t2 = tag_of("p");
	ok(str_has_prefix(t1, "kiln/t:") && strlen(t1) == strlen("kiln/t:") + 40,
	   "org/image:40-hex tag: %s", t1);
	is_str(t1, t2, "stable");
	put("p/a.txt", "two\n");
	cleanup_free char *t3 = tag_of("p");
	ok(strcmp(t1, t3) != 0, "a changed file changes the tag");
	chmod("p/a.txt", 0755);
	cleanup_free char *t4 = tag_of("p");
	ok(strcmp(t3, t4) != 0, "an executable bit changes the tag");
	put("p/build.yml", "image: t\nfiles:\n  - {path: /a, source: a.txt}\n# comment\n");
	cleanup_free char *t5 = tag_of("p");
	ok(strcmp(t4, t5) != 0, "build.yml bytes count");
	put("p/build.yml", "image: t\ntag: v1-{{.Hash}}\n");
	cleanup_free char *t6 = tag_of("p");
	ok(str_has_prefix(t6, "kiln/t:v1-"), "tag template: %s", t6);
	put("q/build.yml", "image: u\norg: example.com/team\nbuild:\n  command: [true]\n"
			   "  inputs: [../src]\n");
	put("src/x.c", "int x;\n");
	cleanup_free char *u1 = tag_of("q");
	ok(str_has_prefix(u1, "example.com/team/u:"), "org: %s", u1);
	put("src/x.c", "int y;\n");
	cleanup_free char *u2 = tag_of("q");
	ok(strcmp(u1, u2) != 0, "a build input changes the tag");
}

/* Builds DIR into the store at STORE; fills DIGEST. */
static int build(const char *dir, const char *store, bool force, char digest[DIGEST_STRLEN],
		 char **errmsg)
{
	struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open(store, &err);
	cleanup_pkg struct pkg *p = s ? pkg_load(dir, &err) : NULL;
	struct pkg_build_options o = {.force = force};
	struct pkg_result r;
	int rc = p ? pkg_build(p, s, &o, &r, &err) : -1;
	if (rc == 0) {
		memcpy(digest, r.manifest_digest, DIGEST_STRLEN);
		pkg_result_release(&r);
	}
	if (errmsg)
		*errmsg = err ? xstrdup(err->msg) : NULL;
	kiln_error_release(&err);
	return rc;
}

static const char simple_yml[] =
	"image: simple\n"
	"entrypoint: [/bin/hello]\n"
	"env: [A=1]\n"
	"files:\n"
	"  - {path: /etc/hello.conf, contents: \"x=1\\n\", mode: \"0640\", uid: 7, gid: 8}\n"
	"  - {path: /usr/share/doc/a, contents: kept}\n"
	"  - {path: /data, source: data}\n"
	"symlinks: {/bin/hello: ../etc/hello.conf}\n"
	"dirs: [/var/empty]\n"
	"config:\n"
	"  pid: host\n"
	"  readonly: true\n"
	"  oomScoreAdj: -800\n"
	"  binds: [\"/a:/b\"]\n"
	"  devices: [{path: /dev/x, type: c, major: 1, minor: 3, mode: \"0666\"}]\n";

TEST(build_is_deterministic)
{
	put("p/build.yml", simple_yml);
	put("p/data/z", "z\n");
	put("p/data/a/b", "b\n");
	char d1[DIGEST_STRLEN] = "", d2[DIGEST_STRLEN] = "", d3[DIGEST_STRLEN] = "",
	     d4[DIGEST_STRLEN] = "";
	cleanup_free char *e1 = NULL;
	is_int(build("p", "s1", false, d1, &e1), 0, "builds");
	if (e1)
		diag("%s", e1);
	is_int(build("p", "s1", true, d2, NULL), 0, "builds again (--force)");
	is_int(build("p", "s2", false, d3, NULL), 0, "builds in another store");
	is_str(d1, d2, "same digest twice");
	is_str(d1, d3, "same digest in another store");
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	is_int(build("p", "s3", false, d4, NULL), 0, "builds with SOURCE_DATE_EPOCH");
	unsetenv("SOURCE_DATE_EPOCH");
	ok(strcmp(d1, d4) != 0, "the epoch changes the image");

	struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("s1", &err);
	cleanup_free char *ref = tag_of("p");
	cleanup_free char *name = xasprintf("docker.io/%s", ref);
	cleanup_image struct image *img = s ? image_load(s, name, "amd64", &err) : NULL;
	ok(img != NULL, "image_load finds %s", name);
	if (img == NULL) {
		kiln_error_release(&err);
		return;
	}
	is_str(img->manifest_digest, d1, "the tagged manifest");
	is_int((int)img->nlayers, 1, "one layer");
	is_str(image_label(img, "org.mobyproject.config"),
	       "{\"binds\":[\"/a:/b\"],\"devices\":[{\"major\":1,\"minor\":3,\"mode\":\"0666\","
	       "\"path\":\"/dev/x\",\"type\":\"c\"}],\"oomScoreAdj\":-800,\"pid\":\"host\","
	       "\"readonly\":true}",
	       "label JSON typed as YAML says");
	json_t *cfg = json_object_get(img->config, "config");
	is_str(json_string_value(json_array_get(json_object_get(cfg, "Entrypoint"), 0)),
	       "/bin/hello", "Entrypoint");
	is_str(json_string_value(json_array_get(json_object_get(cfg, "Env"), 0)), "A=1", "Env");
	is_str(json_string_value(json_object_get(img->config, "created")), "1970-01-01T00:00:00Z",
	       "created = epoch");
	/* The layer as tar -tv sees it. */
	cleanup_free char *blob = store_blob_path(s, img->layers[0].digest);
	cleanup_free char *cmd = xasprintf("tar -tvzf %s --numeric-owner > list.txt", blob);
	is_int(system(cmd), 0, "tar reads the layer");
	cleanup_free char *list = read_file("list.txt", 1 << 20, NULL, &err);
	ok(list && strstr(list, "-rw-r----- 7/8 ") &&
		   strstr(list, " 4 1970-01-01 00:00 etc/hello.conf\n"),
	   "mode, owner, size, mtime kept:\n%s", list ? list : "");
	ok(list && strstr(list, "bin/hello -> ../etc/hello.conf"), "symlink");
	ok(list && strstr(list, "usr/share/doc/a"), "files: entries are never dropped");
	const char *order[] = {"bin/\n", "bin/hello", "data/\n", "data/a/\n", "data/a/b", "data/z",
			       "etc/\n", "etc/hello.conf", "usr/\n", "var/empty/\n"};
	const char *at = list ? list : "";
	bool sorted = true;
	for (size_t i = 0; i < ARRAY_SIZE(order) && sorted; i++) {
		const char *hit = strstr(at, order[i]);
		sorted = hit != NULL;
		at = hit ? hit : at;
	}
	ok(sorted, "entries sorted, parents synthesised");
	kiln_error_release(&err);
}

TEST(elf_check_names_binary_and_library)
{
	if (access("/bin/true", R_OK) != 0 || access("/lib/x86_64-linux-gnu/libc.so.6", R_OK) != 0)
		skip("no glibc /bin/true on this host");
	put("p/build.yml", "image: elf\n"
			   "files:\n"
			   "  - {path: /usr/bin/true, source: /bin/true}\n");
	char d[DIGEST_STRLEN];
	cleanup_free char *e1 = NULL;
	is_int(build("p", "s", false, d, &e1), -1, "an image without the interpreter is refused");
	ok(e1 && strstr(e1, "/usr/bin/true needs the ELF interpreter /lib64/ld-linux-x86-64.so.2"),
	   "names the interpreter: %s", e1 ? e1 : "");
/* /bin/true and the glibc loader; each case adds its own lines. */
#define ELF_TRUE_AND_LOADER                                                                        \
	"image: elf\n"                                                                             \
	"files:\n"                                                                                 \
	"  - {path: /usr/bin/true, source: /bin/true}\n"                                           \
	"  - {path: /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2, source: "                          \
	"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2}\n"
	put("p/build.yml", ELF_TRUE_AND_LOADER "symlinks: {/lib64/ld-linux-x86-64.so.2: "
					       "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2}\n");
	cleanup_free char *e2 = NULL;
	is_int(build("p", "s", false, d, &e2), -1, "an image without libc is refused");
	ok(e2 && strstr(e2, "/usr/bin/true needs libc.so.6, which is not in the image"),
	   "names binary and library: %s", e2 ? e2 : "");
	put("p/build.yml",
	    ELF_TRUE_AND_LOADER
	    "  - {path: /usr/lib/x86_64-linux-gnu/libc.so.6, source: "
	    "/lib/x86_64-linux-gnu/libc.so.6}\n"
	    "symlinks:\n"
	    "  /lib64/ld-linux-x86-64.so.2: ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2\n");
	cleanup_free char *e3 = NULL;
	is_int(build("p", "s", false, d, &e3), 0, "complete image builds (relative interp link)");
	if (e3)
		diag("%s", e3);
	put("p/build.yml", "image: elf\nelfcheck-ignore: [usr/bin/*]\n"
			   "files:\n  - {path: /usr/bin/true, source: /bin/true}\n");
	is_int(build("p", "s", false, d, NULL), 0, "elfcheck-ignore skips a file");
}

TEST(build_step_output)
{
	put("p/build.yml", "image: step\n"
			   "build: [sh, -c, 'echo \"$SOURCE_DATE_EPOCH\" > \"$KILN_PKG_OUT/out.txt\"']\n"
			   "files:\n  - {path: /out.txt, source: \"@out/out.txt\"}\n");
	char d[DIGEST_STRLEN];
	cleanup_free char *e1 = NULL;
	is_int(build("p", "s", false, d, &e1), 0, "build step runs, @out/ is its output");
	if (e1)
		diag("%s", e1);
	put("p/build.yml", "image: step\nbuild: [false]\n");
	cleanup_free char *e2 = NULL;
	is_int(build("p", "s", false, d, &e2), -1, "a failing build step fails the build");
	ok(e2 && strstr(e2, "build command `false` failed (exit status 1)"), "says so: %s",
	   e2 ? e2 : "");
	put("p/build.yml", "image: step\nfiles:\n  - {path: /x, source: \"@out/x\"}\n");
	cleanup_free char *e3 = NULL;
	is_int(build("p", "s", false, d, &e3), -1, "@out/ without a build step");
	ok(e3 && strstr(e3, "needs a `build` step"), "says so: %s", e3 ? e3 : "");
}

/* A store name replaced after kiln pkg built it (as `kiln cache import`
 * does: store_tag over the name) is rebuilt, not trusted. */
TEST(replaced_name_is_rebuilt)
{
	put("p/build.yml", "image: mine\nfiles:\n  - {path: /x, contents: mine}\n");
	put("q/build.yml", "image: other\nfiles:\n  - {path: /x, contents: other}\n");
	char dp[DIGEST_STRLEN] = "", dq[DIGEST_STRLEN] = "", again[DIGEST_STRLEN] = "";
	is_int(build("p", "s", false, dp, NULL), 0, "p builds");
	is_int(build("q", "s", false, dq, NULL), 0, "q builds");
	cleanup_free char *ref = tag_of("p");
	cleanup_free char *name = xasprintf("docker.io/%s", ref);
	struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("s", &err);
	char got[DIGEST_STRLEN] = "";
	int64_t qsize = s ? store_blob_size(s, dq) : -1;
	is_int(store_tag(s, name, dq, OCI_MEDIA_MANIFEST, qsize, &err), 0, "q tagged as p");
	is_int(build("p", "s", false, again, NULL), 0, "p builds again");
	is_str(again, dp, "rebuilt: p's own digest");
	is_int(store_lookup(s, name, got, &err), 1, "tagged");
	is_str(got, dp, "the name holds p again");

	is_int(store_tag(s, name, dq, OCI_MEDIA_MANIFEST, qsize, &err), 0, "q tagged as p again");
	cleanup_free char *r = pkg_ensure_built(s, "p", &err);
	is_str(r, ref, "pkg_ensure_built (@pkg:) answers p");
	is_int(store_lookup(s, name, got, &err), 1, "tagged");
	is_str(got, dp, "  ... after rebuilding it");

	/* Without a record (a store from before them, an image pulled under the
	 * name) the name is trusted as before. */
	is_int(system("rm -r s/kiln-pkgs"), 0, "records removed");
	is_int(store_tag(s, name, dq, OCI_MEDIA_MANIFEST, qsize, &err), 0, "q tagged as p");
	is_int(build("p", "s", false, again, NULL), 0, "p: in the store");
	is_str(again, dq, "  ... taken as it is");
	kiln_error_release(&err);
}

TEST(ensure_built_builds_once)
{
	put("p/build.yml", "image: once\nfiles:\n  - {path: /x, contents: x}\n");
	struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("s", &err);
	cleanup_free char *r1 = s ? pkg_ensure_built(s, "p", &err) : NULL;
	ok(r1 && str_has_prefix(r1, "kiln/once:"), "built: %s", r1 ? r1 : err->msg);
	char digest[DIGEST_STRLEN];
	cleanup_free char *name = r1 ? xasprintf("docker.io/%s", r1) : xstrdup("x");
	is_int(store_lookup(s, name, digest, &err), 1, "tagged in the store");
	cleanup_free char *r2 = pkg_ensure_built(s, "p", &err);
	is_str(r2, r1, "second call: same reference");
	kiln_error_release(&err);
}
