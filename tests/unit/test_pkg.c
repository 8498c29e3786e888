/* pkg.c: build.yml checks, the content tag, deterministic images, the ELF
 * check, build steps, the config label and the status.d records of .debs —
 * with no .debs or a dpkg-deb fixture, so no network is needed
 * (tests/integration/pkg.sh builds the real ones). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <limits.h>
#include <unistd.h>

#include "deb.h"
#include "image.h"
#include "oci.h"
#include "pkg.h"
#include "sbom.h"
#include "sha256.h"
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

/* Builds DIR into store s1, again there (--force) and into s2: the same
 * manifest digest each time, in D1. */
static void builds_alike(const char *dir, char d1[DIGEST_STRLEN])
{
	char d2[DIGEST_STRLEN] = "", d3[DIGEST_STRLEN] = "";
	cleanup_free char *e1 = NULL;
	is_int(build(dir, "s1", false, d1, &e1), 0, "builds");
	if (e1)
		diag("%s", e1);
	is_int(build(dir, "s1", true, d2, NULL), 0, "builds again (--force)");
	is_int(build(dir, "s2", false, d3, NULL), 0, "builds in another store");
	is_str(d1, d2, "same digest twice");
	is_str(d1, d3, "same digest in another store");
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
	char d1[DIGEST_STRLEN] = "", d4[DIGEST_STRLEN] = "";
	builds_alike("p", d1);
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

/* A .deb of `debs:` (a dpkg-deb fixture, put in the .deb cache with a line
 * in apt's resolution cache, so no apt or network is needed) is recorded as
 * var/lib/dpkg/status.d/NAME: its control stanza with a Status, 0644
 * root:root at the epoch, kept when `drop:` removes var/; the SBOM's parser
 * reads it back; two builds give the same image. */
TEST(debs_recorded_in_status_d)
{
	if (system("command -v dpkg-deb >/dev/null") != 0)
		skip("no dpkg-deb");
	static const char control[] = "Package: kiln-fixture\n"
				      "Source: kiln-src (1.0-1)\n"
				      "Version: 1:1.0-1\n"
				      "Architecture: all\n"
				      "Maintainer: k <k@k>\n"
				      "Multi-Arch: foreign\n"
				      "Description: a fixture\n"
				      " second line\n"
				      " .\n"
				      " Version: 0 (a continuation line, not a field)\n";
	put("d/DEBIAN/control", control);
	put("d/etc/kf.conf", "x\n");
	put("d/var/lib/kf/state", "s\n");
	ok(system("dpkg-deb -Zxz --root-owner-group --build d kiln-fixture.deb >/dev/null") == 0,
	   "dpkg-deb builds the fixture");
	struct kiln_error *err = NULL;
	size_t len = 0;
	cleanup_free char *bytes = read_file("kiln-fixture.deb", 1 << 20, &len, &err);
	char digest[DIGEST_STRLEN] = "sha256:";
	if (bytes)
		sha256_digest(bytes, len, digest);
	char cwd[PATH_MAX];
	ok(getcwd(cwd, sizeof cwd) != NULL, "cwd");
	cleanup_free char *debs = path_join(cwd, "debs");
	mkdir_p(debs, 0755, &err);
	ok(rename("kiln-fixture.deb", "debs/kiln-fixture_1.0-1_all.deb") == 0, "in the .deb cache");
	cleanup_free char *resolved = deb_resolve_cache_path(debs);
	cleanup_free char *line = xasprintf("kiln-fixture\tkiln-fixture\t1:1.0-1\tall\tpool/main/k/"
					    "kiln-fixture_1.0-1_all.deb\t%s\t%zu\n",
					    digest + 7, len);
	put(resolved, line);
	setenv("KILN_DEB_CACHE", debs, 1);
	put("p/build.yml", "image: withdeb\ndebs: [kiln-fixture]\ndrop: [var, etc/kf.conf]\n");
	char d1[DIGEST_STRLEN] = "";
	builds_alike("p", d1);
	unsetenv("KILN_DEB_CACHE");

	setenv("KILN_DEB_CACHE", debs, 1);
	cleanup_free char *ref = tag_of("p");
	unsetenv("KILN_DEB_CACHE");
	cleanup_free char *name = xasprintf("docker.io/%s", ref);
	cleanup_store struct store *s = store_open("s1", &err);
	cleanup_image struct image *img = s ? image_load(s, name, "amd64", &err) : NULL;
	ok(img != NULL, "the image is in the store");
	if (img == NULL) {
		kiln_error_release(&err);
		return;
	}
	cleanup_free char *blob = store_blob_path(s, img->layers[0].digest);
	cleanup_free char *cmd =
	    xasprintf("tar -tvzf %s --numeric-owner > list.txt && "
		      "tar -xOzf %s var/lib/dpkg/status.d/kiln-fixture > st.txt",
		      blob, blob);
	is_int(system(cmd), 0, "tar reads the layer and the status.d file");
	cleanup_free char *list = read_file("list.txt", 1 << 20, NULL, &err);
	cleanup_free char *st = read_file("st.txt", 1 << 20, NULL, &err);
	ok(list && strstr(list, "-rw-r--r-- 0/0 ") &&
	       strstr(list, " 1970-01-01 00:00 var/lib/dpkg/status.d/kiln-fixture\n"),
	   "0644 root:root at the epoch, though drop: names var/:\n%s", list ? list : "");
	ok(list && !strstr(list, "var/lib/kf") && !strstr(list, "etc/kf.conf"),
	   "drop: still drops the .deb's files");
	/* The control file's lines as they are, Status after Package. */
	const char *after_package = strchr(control, '\n') + 1;
	cleanup_free char *want =
	    xasprintf("Package: kiln-fixture\nStatus: install ok installed\n%s", after_package);
	is_str(st, want, "the control stanza with its Status");

	/* What kiln build's SBOM makes of it. */
	cleanup_sbom struct sbom *sb = sbom_new("img");
	size_t i = sbom_add_image(sb, "kiln/withdeb", d1, "amd64", "init[0]");
	ok(sbom_wants_path("var/lib/dpkg/status.d/kiln-fixture"), "a path the SBOM reads");
	if (st)
		sbom_add_file(sb, i, "var/lib/dpkg/status.d/kiln-fixture", st, strlen(st));
	cleanup_free char *text = sbom_write(sb, 0, NULL);
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je);
	json_t *found = NULL, *pk;
	size_t k;
	json_array_foreach(json_object_get(doc, "packages"), k, pk)
	{
		const char *id = json_string_value(json_object_get(pk, "SPDXID"));
		if (id && str_has_prefix(id, "SPDXRef-Package-"))
			found = found ? json_null() : pk;
	}
	ok(found && json_is_object(found), "one package in the SBOM");
	is_str(json_string_value(json_object_get(found, "name")), "kiln-fixture", "its name");
	is_str(json_string_value(json_object_get(found, "versionInfo")), "1:1.0-1", "its version");
	json_t *refs = json_object_get(found, "externalRefs");
	const char *purl =
	    json_string_value(json_object_get(json_array_get(refs, 0), "referenceLocator"));
	ok(purl && str_has_prefix(purl, "pkg:deb/") && strstr(purl, "/kiln-fixture@1:1.0-1") &&
	       strstr(purl, "arch=all") && strstr(purl, "upstream=kiln-src"),
	   "a deb purl with arch and upstream: %s", purl ? purl : "(none)");
	json_decref(doc);

	/* build.debs are recorded only with record-debs. */
	setenv("KILN_DEB_CACHE", debs, 1);
	put("b/build.yml", "image: b\nbuild: {command: [\"true\"], debs: [kiln-fixture]}\n"
			   "files: [{path: /x, contents: x}]\n");
	put("r/build.yml", "image: r\nbuild: {command: [\"true\"], debs: [kiln-fixture], "
			   "record-debs: true}\nfiles: [{path: /x, contents: x}]\n");
	char db[DIGEST_STRLEN] = "", dr[DIGEST_STRLEN] = "";
	is_int(build("b", "s1", false, db, NULL), 0, "build.debs without record-debs");
	is_int(build("r", "s1", false, dr, NULL), 0, "build.debs with record-debs");
	cleanup_free char *rb = tag_of("b"), *rr = tag_of("r");
	unsetenv("KILN_DEB_CACHE");
	cleanup_free char *nb = xasprintf("docker.io/%s", rb), *nr = xasprintf("docker.io/%s", rr);
	cleanup_image struct image *ib = image_load(s, nb, "amd64", &err);
	cleanup_image struct image *ir = ib ? image_load(s, nr, "amd64", &err) : NULL;
	ok(ir != NULL, "both in the store");
	if (ir) {
		cleanup_free char *bb = store_blob_path(s, ib->layers[0].digest);
		cleanup_free char *br = store_blob_path(s, ir->layers[0].digest);
		cleanup_free char *c2 = xasprintf("tar -tzf %s > b.txt && tar -xOzf %s "
						  "var/lib/dpkg/status.d/kiln-fixture > r.txt",
						  bb, br);
		is_int(system(c2), 0, "tar reads both");
		cleanup_free char *lb = read_file("b.txt", 1 << 20, NULL, &err);
		cleanup_free char *sr = read_file("r.txt", 1 << 20, NULL, &err);
		ok(lb && !strstr(lb, "var/lib/dpkg"), "not recorded without record-debs");
		is_str(sr, st, "recorded with record-debs, the same stanza");
	}
	kiln_error_release(&err);
}
