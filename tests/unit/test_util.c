#include <errno.h>
#include <sys/stat.h>

#include "error.h"
#include "log.h"
#include "sha256.h"
#include "strbuf.h"
#include "tap.h"
#include "util.h"

TEST(error_make_and_wrap)
{
	cleanup_error struct kiln_error *err = NULL;
	int r = kiln_error_make(&err, ENOENT, "open `%s`", "x.yml");
	is_int(r, -1, "make returns -1");
	ok(err != NULL, "error set");
	if (!err)
		return;
	is_str(err->msg, "open `x.yml`: No such file or directory", "message");
	kiln_error_wrap(&err, "build %s", "a.yml");
	is_str(err->msg, "build a.yml: open `x.yml`: No such file or directory", "wrapped");
	is_int(err->status, ENOENT, "status kept");
}

TEST(error_null_is_dropped)
{
	is_int(kiln_error_make(NULL, 0, "x"), -1, "returns -1 with NULL err");
	struct kiln_error *err = NULL;
	is_int(kiln_error_wrap(&err, "ctx"), -1, "wrap of nothing");
	ok(err == NULL, "still no error");
}

TEST(strbuf_grows)
{
	cleanup_strbuf struct strbuf sb = STRBUF_INIT;
	for (int i = 0; i < 1000; i++)
		strbuf_printf(&sb, "%d,", i);
	ok(sb.len > 3000, "long");
	ok(str_has_prefix(sb.buf, "0,1,2,"), "prefix");
	ok(str_has_suffix(sb.buf, "998,999,"), "suffix");
	is_int(strlen(sb.buf), sb.len, "NUL terminated");
	strbuf_reset(&sb);
	is_str(sb.buf, "", "reset");
}

TEST(sha256_known_vectors)
{
	char d[DIGEST_STRLEN];
	sha256_digest("", 0, d);
	is_str(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty");
	sha256_digest("abc", 3, d);
	is_str(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "abc");
	ok(digest_is_valid(d), "valid digest");
	ok(!digest_is_valid("sha256:BA78"), "short digest invalid");
	ok(!digest_is_valid("md5:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	   "other algorithm invalid");
}

TEST(write_atomic_and_read_back)
{
	cleanup_error struct kiln_error *err = NULL;
	ok(mkdir_p("a/b/c", 0755, &err) == 0, "mkdir_p");
	ok(write_file_atomic("a/b/c/f", "hello", 5, 0640, &err) == 0, "write");
	size_t n = 0;
	cleanup_free char *s = read_file("a/b/c/f", 100, &n, &err);
	is_str(s, "hello", "contents");
	struct stat st;
	ok(stat("a/b/c/f", &st) == 0 && (st.st_mode & 0777) == 0640, "mode");
	cleanup_free char *t = read_file("a/b/c/f", 3, &n, &err);
	ok(t == NULL && err != NULL, "size limit enforced");
	kiln_error_release(&err);
	ok(rm_rf("a", &err) == 0, "rm_rf");
	ok(access("a", F_OK) < 0, "gone");
}

TEST(path_join_and_numbers)
{
	cleanup_free char *p = path_join("/a/", "/b/c");
	is_str(p, "/a/b/c", "join");
	uint64_t v = 0;
	ok(parse_u64("0755", 8, &v) == 0 && v == 0755, "octal");
	ok(parse_u64("12x", 10, &v) < 0, "junk refused");
	ok(parse_u64("-1", 10, &v) < 0, "negative refused");
	ok(parse_u64("99999999999999999999999", 10, &v) < 0, "overflow refused");
}

/* gRPC's grpc-message (no '+' rule) and the shim's logging URIs (a query's
 * '+' is a space): both decode %XX; a '%' without two hex digits stays. */
TEST(percent_decoding)
{
	char *s = percent_decode("a%20b+c%2Fd", 11, false);
	is_str(s, "a b+c/d", "%XX decoded, '+' kept");
	free(s);
	s = percent_decode("a%20b+c", 7, true);
	is_str(s, "a b c", "'+' a space in a query");
	free(s);
	s = percent_decode("100%%zz%4", 9, false);
	is_str(s, "100%%zz%4", "'%' without two hex digits stays as it is");
	free(s);
	s = percent_decode("%41%42tail", 4, false);
	is_str(s, "A%", "only N bytes are read (the %XX cut at N stays)");
	free(s);
}
