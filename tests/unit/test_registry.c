/* The registry client's parsers: WWW-Authenticate, credentials files,
 * base64, platforms, Retry-After, loopback hosts, Content-Range, options. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "registry.h"
#include "registry_internal.h"
#include "tap.h"
#include "util.h"

TEST(challenge_bearer)
{
	struct auth_challenge c;
	is_int(auth_challenge_parse("Bearer realm=\"https://auth.example/token\",service=\"reg\","
				    "scope=\"repository:a/b:pull,push\"",
				    &c),
	       0, "parsed");
	is_int(c.scheme, AUTH_BEARER, "bearer");
	is_str(c.realm, "https://auth.example/token", "realm");
	is_str(c.service, "reg", "service");
	is_str(c.scope, "repository:a/b:pull,push", "scope with a comma inside quotes");
	auth_challenge_release(&c);
	is_int(auth_challenge_parse("bearer  realm=x , error=\"insufficient_scope\"", &c), 0,
	       "case-insensitive scheme, token value, spaces");
	is_str(c.realm, "x", "token realm");
	is_str(c.error, "insufficient_scope", "error");
	auth_challenge_release(&c);
	is_int(auth_challenge_parse("Basic realm=\"Registry \\\"x\\\"\"", &c), 0, "basic");
	is_int(c.scheme, AUTH_BASIC, "basic scheme");
	is_str(c.realm, "Registry \"x\"", "escaped quotes");
	auth_challenge_release(&c);
	is_int(auth_challenge_parse("Negotiate abc", &c), -1, "unknown scheme refused");
}

TEST(base64_round_trip)
{
	const char *cases[] = {"", "a", "ab", "abc", "alice:Pa55-w0rd!kiln", "x:y:z"};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		cleanup_free char *e = base64_encode(cases[i], strlen(cases[i]));
		size_t n = 99;
		cleanup_free char *d = base64_decode(e, &n);
		ok(d && n == strlen(cases[i]) && memcmp(d, cases[i], n) == 0, "round trip `%s`",
		   cases[i]);
	}
	cleanup_free char *d = base64_decode("YWxpY2U6cHc", NULL);
	is_str(d, "alice:pw", "unpadded input");
	ok(base64_decode("!!!!", NULL) == NULL, "junk refused");
	struct registry_credentials c = {"alice", "pw"};
	cleanup_free char *h = auth_basic_header(&c);
	is_str(h, "Basic YWxpY2U6cHc=", "basic header");
}

TEST(credentials_from_config)
{
	const char *json = "{\"auths\":{"
			   "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1YnB3\"},"
			   "\"http://127.0.0.1:5000/v2/\":{\"auth\":\"YWxpY2U6cDpx\"},"
			   "\"reg.example\":{\"username\":\"bob\",\"password\":\"s3\"},"
			   "\"bad.example\":{\"auth\":\"bm9jb2xvbg==\"}}}";
	struct registry_credentials c = {0};
	cleanup_error struct kiln_error *err = NULL;
	is_int(registry_credentials_from_json(json, strlen(json), "cfg", "docker.io", &c, &err), 1,
	       "docker.io matches index.docker.io/v1/");
	is_str(c.username, "hub", "hub user");
	is_str(c.password, "hubpw", "hub password");
	registry_credentials_release(&c);
	is_int(
	    registry_credentials_from_json(json, strlen(json), "cfg", "127.0.0.1:5000", &c, &err),
	    1, "scheme and path ignored");
	is_str(c.password, "p:q", "password keeps its colons");
	registry_credentials_release(&c);
	is_int(registry_credentials_from_json(json, strlen(json), "cfg", "reg.example", &c, &err),
	       1, "username/password fields");
	is_str(c.username, "bob", "bob");
	registry_credentials_release(&c);
	is_int(registry_credentials_from_json(json, strlen(json), "cfg", "other.example", &c, &err),
	       0, "absent");
	is_int(registry_credentials_from_json(json, strlen(json), "cfg", "bad.example", &c, &err),
	       -1, "auth without a colon is an error");
	ok(err && strstr(err->msg, "user:password") != NULL, "which says so: %s",
	   err ? err->msg : "");
}

TEST(credentials_lookup_order)
{
	const char *a = "{\"auths\":{\"r.example\":{\"auth\":\"YTpi\"}}}";
	const char *b = "{\"auths\":{\"r.example\":{\"auth\":\"Yzpk\"}}}";
	write_file_atomic("auth.json", a, strlen(a), 0600, NULL);
	mkdir_p("dc", 0700, NULL);
	write_file_atomic("dc/config.json", b, strlen(b), 0600, NULL);
	cleanup_free char *cwd = getcwd(NULL, 0);
	cleanup_free char *af = path_join(cwd, "auth.json");
	cleanup_free char *dc = path_join(cwd, "dc");
	setenv("REGISTRY_AUTH_FILE", af, 1);
	setenv("DOCKER_CONFIG", dc, 1);
	struct registry_credentials c = {0};
	is_int(registry_credentials_lookup(NULL, "r.example", &c, NULL), 1, "found");
	is_str(c.username, "a", "REGISTRY_AUTH_FILE first");
	registry_credentials_release(&c);
	unsetenv("REGISTRY_AUTH_FILE");
	is_int(registry_credentials_lookup(NULL, "r.example", &c, NULL), 1, "found");
	is_str(c.username, "c", "then $DOCKER_CONFIG/config.json");
	registry_credentials_release(&c);
	unsetenv("DOCKER_CONFIG");
}

TEST(platforms)
{
	char *os, *arch, *variant;
	platform_split("linux/arm64/v8", &os, &arch, &variant);
	ok(os && arch && variant && strcmp(os, "linux") == 0 && strcmp(arch, "arm64") == 0 &&
	       strcmp(variant, "v8") == 0,
	   "os/arch/variant");
	free(os), free(arch), free(variant);
	platform_split("arm/v7", &os, &arch, &variant);
	ok(os == NULL && strcmp(arch, "arm") == 0 && strcmp(variant, "v7") == 0, "arch/variant");
	free(os), free(arch), free(variant);
	platform_split("x86_64", &os, &arch, &variant);
	is_str(arch, "amd64", "uname name mapped");
	free(os), free(arch), free(variant);
	ok(platform_match(NULL, "amd64", NULL, "linux", "amd64", NULL), "amd64");
	ok(!platform_match(NULL, "amd64", NULL, "windows", "amd64", NULL), "os checked");
	ok(platform_match(NULL, "arm64", "v8", "linux", "arm64", NULL), "arm64 v8 = no variant");
	ok(platform_match(NULL, "arm", NULL, "linux", "arm", "v6"), "no variant wanted: any");
	ok(!platform_match(NULL, "arm", "v7", "linux", "arm", "v6"), "variant checked");
}

TEST(headers)
{
	time_t now = 1700000000;
	is_int((int)retry_after_parse("7", now), 7, "seconds");
	is_int((int)retry_after_parse(" 0 ", now), 0, "zero");
	is_int((int)retry_after_parse("Tue, 14 Nov 2023 22:13:30 GMT", now), 10, "HTTP date");
	is_int((int)retry_after_parse("soon", now), -1, "junk");
	is_int((int)retry_after_parse(NULL, now), -1, "absent");
	ok(host_is_loopback("127.0.0.1:5000"), "127.0.0.1:port");
	ok(host_is_loopback("127.1.2.3"), "127/8");
	ok(host_is_loopback("localhost:1"), "localhost");
	ok(host_is_loopback("[::1]:5000"), "[::1]:port");
	ok(!host_is_loopback("127.0.0.1.example.com"), "a name starting with 127.");
	ok(!host_is_loopback("10.0.0.1:5000"), "private is not loopback");
	ok(!host_is_loopback("localhost.evil:5000"), "localhost.evil");
	uint64_t a, z;
	is_int(content_range_parse("bytes 100-199/200", &a, &z), 0, "range");
	ok(a == 100 && z == 199, "start and end");
	is_int(content_range_parse("bytes */200", &a, &z), -1, "unsatisfied");
}

TEST(options)
{
	struct registry_options o;
	registry_options_init(&o);
	cleanup_error struct kiln_error *err = NULL;
	is_int(registry_options_add_mirror(&o, "docker.io=127.0.0.1:5000/", &err), 0, "mirror");
	is_str(o.mirrors[0].url, "http://127.0.0.1:5000", "loopback mirror gets http, no slash");
	is_int(registry_options_add_mirror(&o, "docker.io=mirror.example", &err), 0, "mirror 2");
	is_str(o.mirrors[1].url, "https://mirror.example", "others get https");
	is_int(registry_options_add_mirror(&o, "nonsense", &err), -1, "no =");
	registry_options_add_insecure(&o, "http://reg.example:5000/");
	is_str(o.insecure[0], "reg.example:5000", "insecure host from a URL");
	is_int(o.jobs, 4, "4 jobs by default");
	registry_options_release(&o);
}
