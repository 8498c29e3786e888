#include <string.h>

#include "ref.h"
#include "tap.h"
#include "util.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define DIG   "sha256:" HEX64

/* Parses IN and checks its normalised string and parts. */
static void check_ok(const char *in, const char *want, const char *domain, const char *path,
		     const char *tag, const char *digest)
{
	struct kiln_error *err = NULL;
	struct image_ref r;
	int rc = ref_parse(in, &r, &err);
	ok(rc == 0, "`%s` parses (%s)", in, err ? err->msg : "");
	if (rc != 0) {
		kiln_error_release(&err);
		return;
	}
	cleanup_free char *s = ref_string(&r);
	is_str(s, want, in);
	is_str(r.domain, domain, "domain");
	is_str(r.path, path, "path");
	is_str(r.tag, tag, "tag");
	is_str(r.digest, digest, "digest");
	/* The normal form parses to itself. */
	struct image_ref r2;
	ok(ref_parse(s, &r2, &err) == 0, "normal form `%s` parses", s);
	if (err == NULL) {
		cleanup_free char *s2 = ref_string(&r2);
		is_str(s2, s, "normal form is a fixed point");
		ref_release(&r2);
	}
	kiln_error_release(&err);
	ref_release(&r);
}

/* IN must be refused with a message containing WHY. */
static void check_bad(const char *in, const char *why)
{
	struct kiln_error *err = NULL;
	struct image_ref r;
	int rc = ref_parse(in, &r, &err);
	ok(rc == -1, "`%s` refused", in);
	ok(err != NULL && strstr(err->msg, why) != NULL, "`%s`: message `%s` mentions `%s`", in,
	   err ? err->msg : "(none)", why);
	ok(err == NULL || str_has_prefix(err->msg, "invalid reference `"), "message prefix");
	ok(r.domain == NULL && r.path == NULL && r.tag == NULL && r.digest == NULL,
	   "nothing left in ref");
	kiln_error_release(&err);
}

TEST(normalises_docker_hub)
{
	check_ok("alpine", "docker.io/library/alpine:latest", "docker.io", "library/alpine",
		 "latest", NULL);
	check_ok("alpine:3.19", "docker.io/library/alpine:3.19", "docker.io", "library/alpine",
		 "3.19", NULL);
	check_ok("foo/bar", "docker.io/foo/bar:latest", "docker.io", "foo/bar", "latest", NULL);
	check_ok("linuxkit/init:8f1e6a0747acbbb4d7e24dc98f97faa8d1c6cec7",
		 "docker.io/linuxkit/init:8f1e6a0747acbbb4d7e24dc98f97faa8d1c6cec7", "docker.io",
		 "linuxkit/init", "8f1e6a0747acbbb4d7e24dc98f97faa8d1c6cec7", NULL);
	check_ok("docker.io/alpine", "docker.io/library/alpine:latest", "docker.io",
		 "library/alpine", "latest", NULL);
	check_ok("index.docker.io/alpine:1", "docker.io/library/alpine:1", "docker.io",
		 "library/alpine", "1", NULL);
	check_ok("index.docker.io/foo/bar", "docker.io/foo/bar:latest", "docker.io", "foo/bar",
		 "latest", NULL);
	check_ok("docker.io/library/alpine:edge", "docker.io/library/alpine:edge", "docker.io",
		 "library/alpine", "edge", NULL);
	check_ok("a/b/c/d", "docker.io/a/b/c/d:latest", "docker.io", "a/b/c/d", "latest", NULL);
}

TEST(domains)
{
	check_ok("localhost/foo", "localhost/foo:latest", "localhost", "foo", "latest", NULL);
	check_ok("localhost:5000/foo/bar:v1", "localhost:5000/foo/bar:v1", "localhost:5000",
		 "foo/bar", "v1", NULL);
	check_ok("127.0.0.1:5000/kiln/getty", "127.0.0.1:5000/kiln/getty:latest", "127.0.0.1:5000",
		 "kiln/getty", "latest", NULL);
	check_ok("quay.io/coreos/etcd:v3.5.0", "quay.io/coreos/etcd:v3.5.0", "quay.io",
		 "coreos/etcd", "v3.5.0", NULL);
	check_ok("Example.COM/x", "Example.COM/x:latest", "Example.COM", "x", "latest", NULL);
	check_ok("my-registry.example-1.com:443/a", "my-registry.example-1.com:443/a:latest",
		 "my-registry.example-1.com:443", "a", "latest", NULL);
	check_ok("[::1]:5000/foo", "[::1]:5000/foo:latest", "[::1]:5000", "foo", "latest", NULL);
	check_ok("[2001:db8::1]/foo", "[2001:db8::1]/foo:latest", "[2001:db8::1]", "foo", "latest",
		 NULL);
	check_ok("registry:5000/x", "registry:5000/x:latest", "registry:5000", "x", "latest", NULL);
	/* An uppercase first component can only be a domain. */
	check_ok("Registry/x", "Registry/x:latest", "Registry", "x", "latest", NULL);
	/* A single component is never a domain. */
	check_ok("localhost", "docker.io/library/localhost:latest", "docker.io",
		 "library/localhost", "latest", NULL);
	check_ok("localhost:5000", "docker.io/library/localhost:5000", "docker.io",
		 "library/localhost", "5000", NULL);
}

TEST(separators)
{
	check_ok("x/a.b_c__d-e--f", "docker.io/x/a.b_c__d-e--f:latest", "docker.io",
		 "x/a.b_c__d-e--f", "latest", NULL);
	check_ok("foo---bar", "docker.io/library/foo---bar:latest", "docker.io",
		 "library/foo---bar", "latest", NULL);
	check_ok("0", "docker.io/library/0:latest", "docker.io", "library/0", "latest", NULL);
}

TEST(tags_and_digests)
{
	check_ok("alpine@" DIG, "docker.io/library/alpine@" DIG, "docker.io", "library/alpine",
		 NULL, DIG);
	check_ok("alpine:3.19@" DIG, "docker.io/library/alpine:3.19@" DIG, "docker.io",
		 "library/alpine", "3.19", DIG);
	check_ok("localhost:5000/a@" DIG, "localhost:5000/a@" DIG, "localhost:5000", "a", NULL,
		 DIG);
	check_ok("a:_x", "docker.io/library/a:_x", "docker.io", "library/a", "_x", NULL);
	check_ok("a:X.Y-z_1", "docker.io/library/a:X.Y-z_1", "docker.io", "library/a", "X.Y-z_1",
		 NULL);
	char tag128[129];
	memset(tag128, 'a', 128);
	tag128[128] = '\0';
	cleanup_free char *in = xasprintf("a:%s", tag128);
	cleanup_free char *want = xasprintf("docker.io/library/a:%s", tag128);
	check_ok(in, want, "docker.io", "library/a", tag128, NULL);
}

TEST(refuses_bad_names)
{
	check_bad("", "empty reference");
	check_bad("Alpine", "must be lowercase");
	check_bad("foo/Bar", "must be lowercase");
	check_bad("docker.io/Foo/bar", "must be lowercase");
	check_bad("foo//bar", "empty path component");
	check_bad("/foo", "empty path component");
	check_bad("foo/", "empty path component");
	check_bad("-foo", "must start with");
	check_bad("foo-", "must end with");
	check_bad("foo.", "must end with");
	check_bad("_foo", "must start with");
	check_bad("foo___bar", "invalid separator `___`");
	check_bad("foo._bar", "invalid separator `._`");
	check_bad("foo..bar", "invalid separator `..`");
	check_bad("foo-.bar", "invalid separator `-.`");
	check_bad("fo o", "invalid character ` `");
	check_bad("foo$bar", "invalid character `$`");
	check_bad("fo\no", "invalid byte 0x0a");
	check_bad("f\xc3\xa9", "invalid byte 0xc3");
	check_bad(":tag", "missing repository name");
	check_bad("@" DIG, "missing repository name");
	check_bad("localhost:5000/", "missing repository path");
	check_bad(HEX64, "image ID");
	char name[300];
	memset(name, 'a', 256);
	name[256] = '\0';
	check_bad(name, "longer than 255");
	/* 238 fits alone but not once docker.io/library/ is added. */
	name[238] = '\0';
	check_bad(name, "longer than 255 characters (256 once normalised)");
	memcpy(name, "x/", 2);
	{
		cleanup_free char *want = xasprintf("docker.io/%s:latest", name);
		check_ok(name, want, "docker.io", name, "latest", NULL);
	}
	char huge[5000];
	memset(huge, 'a', sizeof huge - 1);
	huge[sizeof huge - 1] = '\0';
	check_bad(huge, "reference longer than");
}

TEST(refuses_bad_domains)
{
	check_bad("exa_mple.com/foo", "invalid character `_` in domain");
	check_bad("-example.com/foo", "must not start or end with `-`");
	check_bad("example-.com/foo", "must not start or end with `-`");
	check_bad("example..com/foo", "empty domain component");
	check_bad(".example.com/foo", "empty domain component");
	check_bad("localhost:/foo", "empty port");
	check_bad("localhost:50a0/foo", "port must be a number");
	check_bad("localhost:1234567/foo", "port number too large");
	check_bad("[::1/foo", "unterminated");
	check_bad("[]:5000/foo", "empty IPv6");
	check_bad("[::g]:5000/foo", "invalid IPv6");
	check_bad("[::1]x/foo", "invalid character `x` in domain");
}

TEST(refuses_bad_tags_and_digests)
{
	check_bad("alpine:", "empty tag");
	check_bad("alpine:.x", "must start with");
	check_bad("alpine:-x", "must start with");
	check_bad("alpine:a+b", "invalid character `+` in tag");
	check_bad("alpine:a:b", "invalid character `:`");
	char tag129[130];
	memset(tag129, 'a', 129);
	tag129[129] = '\0';
	cleanup_free char *in = xasprintf("a:%s", tag129);
	check_bad(in, "tag longer than 128");
	check_bad("alpine@", "empty digest");
	check_bad("alpine@sha256", "followed by 64 hex");
	check_bad("alpine@sha512:" HEX64, "unsupported digest algorithm");
	check_bad("alpine@md5:abc", "unsupported digest algorithm");
	check_bad("alpine@sha256:abc", "64 hex digits");
	check_bad("alpine@sha256:" HEX64 "0", "64 hex digits");
	check_bad("alpine@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "lowercase");
	check_bad("alpine@sha256:" HEX64 "@" DIG, "64 hex digits");
	check_bad("alpine@" DIG ":tag", "64 hex digits");
}

TEST(strings_and_hosts)
{
	struct image_ref r;
	cleanup_error struct kiln_error *err = NULL;
	ok(ref_parse("busybox:1.36", &r, &err) == 0, "parse");
	cleanup_free char *repo = ref_repository(&r);
	is_str(repo, "docker.io/library/busybox", "repository");
	is_str(ref_registry_host(&r), "registry-1.docker.io", "hub host");
	ref_release(&r);
	ok(ref_parse("127.0.0.1:5000/x:1", &r, &err) == 0, "parse");
	is_str(ref_registry_host(&r), "127.0.0.1:5000", "own host");
	ref_release(&r);
	ref_release(&r); /* twice is harmless */
}
