#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "oci.h"
#include "store.h"
#include "tap.h"
#include "util.h"

/* Names in blobs/sha256 that are not 64-hex blob names. */
static int count_non_blobs(const char *dir)
{
	cleanup_free char *p = path_join(dir, "blobs/sha256");
	cleanup_dir DIR *d = opendir(p);
	int n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
			if (strlen(de->d_name) != 64)
				n++;
	return n;
}

static int count_entries(struct store *s)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_json json_t *idx = store_index(s, &err);
	return idx ? (int)json_array_size(json_object_get(idx, "manifests")) : -1;
}

TEST(open_creates_layout)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	ok(s != NULL, "open (%s)", err ? err->msg : "");
	if (!s)
		return;
	/* A relative DIR is made absolute once: a package build runs its
	 * command in another directory and must still find the store. */
	char cwd[4096];
	ok(getcwd(cwd, sizeof cwd) != NULL, "getcwd");
	cleanup_free char *want = xasprintf("%s/c", cwd);
	is_str(store_dir(s), want, "dir made absolute");
	ok(chdir("/") == 0, "chdir /");
	cleanup_free char *layout_abs = path_join(store_dir(s), "oci-layout");
	ok(access(layout_abs, F_OK) == 0, "store_dir still names the store from /");
	ok(chdir(cwd) == 0, "chdir back");
	cleanup_free char *layout = read_file("c/oci-layout", 100, NULL, &err);
	is_str(layout, "{\"imageLayoutVersion\":\"1.0.0\"}", "oci-layout");
	cleanup_free char *index = read_file("c/index.json", 1000, NULL, &err);
	ok(index && strstr(index, "\"manifests\":[]"), "empty index.json");
	struct stat st;
	ok(stat("c/blobs/sha256", &st) == 0 && S_ISDIR(st.st_mode), "blobs/sha256");
	is_int(count_entries(s), 0, "no entries");
	/* Reopen an existing store. */
	cleanup_store struct store *s2 = store_open("c", &err);
	ok(s2 != NULL, "reopen");
}

TEST(refuses_non_layout)
{
	cleanup_error struct kiln_error *err = NULL;
	mkdir("c", 0755);
	write_file_atomic("c/oci-layout", "hello", 5, 0644, NULL);
	struct store *s = store_open("c", &err);
	ok(s == NULL && err && strstr(err->msg, "not an OCI image layout"), "refused: %s",
	   err ? err->msg : "");
	store_close(s);
}

TEST(default_dir)
{
	setenv("KILN_CACHE", "/x/kc", 1);
	cleanup_free char *a = store_default_dir();
	is_str(a, "/x/kc", "KILN_CACHE");
	unsetenv("KILN_CACHE");
	setenv("XDG_CACHE_HOME", "/x/xdg", 1);
	cleanup_free char *b = store_default_dir();
	is_str(b, "/x/xdg/kiln", "XDG_CACHE_HOME");
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", "/x/home", 1);
	cleanup_free char *c = store_default_dir();
	is_str(c, "/x/home/.cache/kiln", "HOME");
	setenv("KILN_CACHE", "rel/kc", 1);
	cleanup_free char *d = store_default_dir();
	char cwd[4096];
	cleanup_free char *want = xasprintf("%s/rel/kc", getcwd(cwd, sizeof cwd));
	is_str(d, want, "a relative KILN_CACHE is made absolute");
	unsetenv("KILN_CACHE");
}

TEST(put_read_verify)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	char d[DIGEST_STRLEN];
	ok(store_put_blob(s, "hello", 5, d, &err) == 0, "put");
	is_str(d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	       "digest");
	ok(store_has_blob(s, d), "has");
	is_int(store_blob_size(s, d), 5, "size");
	ok(store_put_blob(s, "hello", 5, NULL, &err) == 0, "put again");
	size_t n = 0;
	cleanup_free char *data = store_blob_read(s, d, 100, &n, &err);
	is_str(data, "hello", "read back");
	is_int(n, 5, "len");
	cleanup_free char *path = store_blob_path(s, d);
	cleanup_free char *want = xasprintf(
	    "%s/blobs/sha256/2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
	    store_dir(s));
	is_str(path, want, "path");
	struct stat st;
	ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644, "mode 0644");
	ok(store_blob_verify(s, d, &err) == 0, "verify");
	cleanup_free char *small = store_blob_read(s, d, 4, &n, &err);
	ok(small == NULL && err && strstr(err->msg, "more than the limit"), "limit: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	/* Corrupt it behind the store's back. */
	chmod(path, 0644);
	write_file_atomic(path, "hellO", 5, 0644, NULL);
	cleanup_free char *bad = store_blob_read(s, d, 100, &n, &err);
	ok(bad == NULL && err && strstr(err->msg, "digest mismatch (got sha256:"), "mismatch: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	ok(store_blob_verify(s, d, &err) < 0 && strstr(err->msg, "digest mismatch"),
	   "verify fails");
	kiln_error_release(&err);
	ok(!store_has_blob(s, "sha256:../../etc/passwd"), "invalid digest is never present");
	ok(store_blob_open(
	       s, "sha256:0000000000000000000000000000000000000000000000000000000000000000", &err) <
		   0 &&
	       strstr(err->msg, "not in the store"),
	   "absent blob");
	kiln_error_release(&err);
	ok(store_blob_remove(s, d, &err) == 0 && !store_has_blob(s, d), "remove");
}

TEST(streaming_writer)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	char want[DIGEST_STRLEN], got[DIGEST_STRLEN];
	static char big[3 << 20];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i * 7 + (i >> 12));
	sha256_digest(big, sizeof big, want);
	struct blob_writer *w = store_blob_create(s, &err);
	ok(w != NULL, "create");
	for (size_t off = 0; off < sizeof big; off += 100000) {
		size_t n = sizeof big - off < 100000 ? sizeof big - off : 100000;
		blob_writer_write(w, big + off, n, &err);
	}
	is_int(blob_writer_size(w), sizeof big, "size");
	ok(!store_has_blob(s, want), "not visible before commit");
	ok(blob_writer_commit(w, want, got, &err) == 0, "commit (%s)", err ? err->msg : "");
	is_str(got, want, "digest out");
	ok(store_blob_verify(s, want, &err) == 0, "verify");
	is_int(count_non_blobs("c"), 0, "no temp files left");

	/* Wrong expected digest: nothing kept. */
	w = store_blob_create(s, &err);
	blob_writer_write(w, "abc", 3, &err);
	const char *other =
	    "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
	ok(blob_writer_commit(w, other, NULL, &err) < 0, "mismatch refused");
	ok(err && strstr(err->msg, "digest mismatch (got sha256:ba7816bf"), "message: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	ok(!store_has_blob(s, other), "wrong blob not stored");
	ok(!store_has_blob(
	       s, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
	   "nor under its real name");
	is_int(count_non_blobs("c"), 0, "no temp files left");

	/* Abort. */
	w = store_blob_create(s, &err);
	blob_writer_write(w, "xyz", 3, &err);
	blob_writer_abort(w);
	is_int(count_non_blobs("c"), 0, "abort leaves nothing");
}

TEST(resume_partial)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	char want[DIGEST_STRLEN];
	const char *text = "0123456789abcdefghij";
	sha256_digest(text, 20, want);
	struct blob_writer *w = store_blob_resume(s, want, &err);
	ok(w && blob_writer_size(w) == 0, "fresh partial");
	blob_writer_write(w, text, 8, &err);
	struct blob_writer *w2 = store_blob_resume(s, want, &err);
	ok(w2 == NULL && err && err->status == EBUSY, "second resumer refused");
	kiln_error_release(&err);
	blob_writer_abort(w);
	is_int(count_non_blobs("c"), 1, "partial kept");
	w = store_blob_resume(s, want, &err);
	is_int(blob_writer_size(w), 8, "resumes at 8");
	blob_writer_write(w, text + 8, 12, &err);
	ok(blob_writer_commit(w, want, NULL, &err) == 0, "commit");
	ok(store_blob_verify(s, want, &err) == 0, "complete blob");
	is_int(count_non_blobs("c"), 0, "partial gone");
	/* Start over after a server ignored the range. */
	char want2[DIGEST_STRLEN];
	sha256_digest("abc", 3, want2);
	w = store_blob_resume(s, want2, &err);
	blob_writer_write(w, "zz", 2, &err);
	ok(blob_writer_truncate(w, 0, &err) == 0 && blob_writer_size(w) == 0, "truncate");
	blob_writer_write(w, "abc", 3, &err);
	ok(blob_writer_commit(w, want2, NULL, &err) == 0, "commit after truncate");
}

TEST(tag_lookup_untag)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	char d1[DIGEST_STRLEN], d2[DIGEST_STRLEN], got[DIGEST_STRLEN];
	store_put_blob(s, "{\"a\":1}", 7, d1, &err);
	store_put_blob(s, "{\"a\":2}", 7, d2, &err);
	const char *n = "docker.io/library/alpine:3.19";
	is_int(store_lookup(s, n, got, &err), 0, "absent");
	ok(store_tag(s, n, d1, OCI_MEDIA_MANIFEST, 7, &err) == 0, "tag");
	is_int(store_lookup(s, n, got, &err), 1, "found");
	is_str(got, d1, "digest");
	ok(store_tag(s, n, d2, OCI_MEDIA_INDEX, 7, &err) == 0, "retag");
	is_int(store_lookup(s, n, got, &err), 1, "found");
	is_str(got, d2, "new digest");
	is_int(count_entries(s), 1, "one entry");
	ok(store_tag(s, "other:1", d1, OCI_MEDIA_MANIFEST, 7, &err) == 0, "tag other");
	is_int(count_entries(s), 2, "two entries");
	is_int(store_untag(s, n, &err), 1, "untag");
	is_int(store_untag(s, n, &err), 0, "untag again");
	is_int(store_lookup(s, n, got, &err), 0, "gone");
	is_int(count_entries(s), 1, "one left");
	ok(store_tag(s, n, "sha256:nope", OCI_MEDIA_MANIFEST, 7, &err) < 0, "bad digest refused");
}

TEST(keeps_foreign_entries)
{
	cleanup_error struct kiln_error *err = NULL;
	mkdir("c", 0755);
	const char *d = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
	cleanup_free char *idx = xasprintf(
	    "{\"schemaVersion\":2,\"annotations\":{\"x\":\"y\"},\"manifests\":["
	    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":5,\"platform\":{\"os\":\"linux\","
	    "\"architecture\":\"amd64\"},\"annotations\":{\"%s\":\"a:1\",\"keep\":\"me\"}},"
	    "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":5,\"x-unknown\":[1,2]}]}",
	    OCI_MEDIA_MANIFEST, d, OCI_ANNOTATION_REF_NAME, OCI_MEDIA_MANIFEST, d);
	write_file_atomic("c/index.json", idx, strlen(idx), 0644, NULL);
	write_file_atomic("c/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30, 0644, NULL);
	cleanup_store struct store *s = store_open("c", &err);
	ok(store_tag(s, "b:2", d, OCI_MEDIA_MANIFEST, 5, &err) == 0, "tag");
	ok(store_tag(s, "a:1", d, OCI_MEDIA_MANIFEST, 5, &err) == 0, "retag same digest");
	cleanup_json json_t *j = store_index(s, &err);
	json_t *m = json_object_get(j, "manifests");
	is_int(json_array_size(m), 3, "three entries");
	is_str(json_string_value(json_object_get(json_object_get(j, "annotations"), "x")), "y",
	       "top-level annotations kept");
	json_t *a = json_array_get(m, 0);
	is_str(json_string_value(json_object_get(json_object_get(a, "annotations"), "keep")), "me",
	       "entry annotations kept");
	ok(json_object_get(a, "platform") != NULL, "platform kept when digest unchanged");
	cleanup_json json_t *want = json_pack("[i,i]", 1, 2);
	ok(json_equal(json_object_get(json_array_get(m, 1), "x-unknown"), want),
	   "unknown field kept");
	char d2[DIGEST_STRLEN];
	store_put_blob(s, "other", 5, d2, &err);
	ok(store_tag(s, "a:1", d2, OCI_MEDIA_MANIFEST, 5, &err) == 0, "retag new digest");
	json_decref(j);
	j = store_index(s, &err);
	a = json_array_get(json_object_get(j, "manifests"), 0);
	ok(json_object_get(a, "platform") == NULL, "stale platform dropped");
	is_str(json_string_value(json_object_get(a, "digest")), d2, "new digest");
}

static void count_problem(const char *what, const char *why, void *arg)
{
	(void)what;
	(void)why;
	(*(int *)arg)++;
}

TEST(concurrent_writers)
{
	cleanup_error struct kiln_error *err = NULL;
	{
		cleanup_store struct store *s = store_open("c", &err);
	}
	enum { NPROC = 6, NTAGS = 25 };
	pid_t pids[NPROC];
	for (int p = 0; p < NPROC; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			struct kiln_error *e = NULL;
			struct store *s = store_open("c", &e);
			if (!s)
				_exit(2);
			for (int i = 0; i < NTAGS; i++) {
				char d[DIGEST_STRLEN];
				/* Half the blobs are shared between processes. */
				char *body = xasprintf("blob %d %d", i % 2 ? p : 0, i);
				char *name = xasprintf("127.0.0.1:5000/p%d/img:%d", p, i);
				if (store_put_blob(s, body, strlen(body), d, &e) < 0 ||
				    store_tag(s, name, d, "application/vnd.kiln.test",
					      (int64_t)strlen(body), &e) < 0)
					_exit(3);
				free(body);
				free(name);
			}
			store_close(s);
			_exit(0);
		}
	}
	int failures = 0;
	for (int p = 0; p < NPROC; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failures++;
	}
	is_int(failures, 0, "children succeeded");
	cleanup_store struct store *s = store_open("c", &err);
	is_int(count_entries(s), NPROC * NTAGS, "every tag present");
	int problems = 0;
	is_int(store_verify(s, count_problem, &problems, &err), 0, "verify clean");
	char d[DIGEST_STRLEN];
	is_int(store_lookup(s, "127.0.0.1:5000/p3/img:7", d, &err), 1, "lookup one");
	is_int(count_non_blobs("c"), 0, "no temp files");
}

static void kill_during_writes_check(bool named_temp);

TEST(kill_during_writes)
{
	kill_during_writes_check(false);
}

/* The same without O_TMPFILE: killed writers leave .tmp-* files, which are
 * never mistaken for blobs and are cleaned once their writers are gone. */
TEST(kill_during_writes_named_temp)
{
	setenv("KILN_STORE_NO_TMPFILE", "1", 1);
	kill_during_writes_check(true);
	unsetenv("KILN_STORE_NO_TMPFILE");
}

static void kill_during_writes_check(bool named_temp)
{
	cleanup_error struct kiln_error *err = NULL;
	{
		cleanup_store struct store *s = store_open("c", &err);
	}
	srand(42);
	for (int round = 0; round < 8; round++) {
		int fds[2];
		if (pipe(fds) < 0)
			return;
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			struct kiln_error *e = NULL;
			struct store *s = store_open("c", &e);
			static char buf[1 << 16];
			memset(buf, round, sizeof buf);
			if (write(fds[1], "x", 1) < 0)
				_exit(2);
			for (int i = 0;; i++) {
				struct blob_writer *w = store_blob_create(s, &e);
				for (int k = 0; k < 16; k++) {
					buf[0] = (char)k;
					buf[1] = (char)i;
					blob_writer_write(w, buf, sizeof buf, &e);
				}
				char d[DIGEST_STRLEN];
				blob_writer_commit(w, NULL, d, &e);
				char *name = xasprintf("r%d:%d", round, i % 5);
				store_tag(s, name, d, "application/vnd.kiln.test", 16 << 16, &e);
				free(name);
			}
		}
		close(fds[1]);
		char c;
		ok(read(fds[0], &c, 1) == 1, "child started");
		close(fds[0]);
		struct timespec ts = {0, (rand() % 40 + 1) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	cleanup_store struct store *s = store_open("c", &err);
	ok(s != NULL, "store opens after kills");
	cleanup_json json_t *idx = store_index(s, &err);
	ok(idx != NULL, "index.json parses (%s)", err ? err->msg : "");
	int problems = 0;
	is_int(store_verify(s, count_problem, &problems, &err), 0, "verify clean");
	if (!named_temp) {
		is_int(count_non_blobs("c"), 0, "no temp blobs (O_TMPFILE)");
		return;
	}
	int left = count_non_blobs("c");
	ok(left >= 1, "killed writers left %d temp files", left);
	/* A live writer's temp file is never removed. */
	struct blob_writer *w = store_blob_create(s, &err);
	blob_writer_write(w, "live", 4, &err);
	/* Killed index.json writers may have left index.json.tmp-* too. */
	int cleaned = store_clean_temp(s, 0, false, NULL, NULL, &err);
	ok(cleaned >= left, "dead writers' files removed (%d of %d+)", cleaned, left);
	is_int(count_non_blobs("c"), 1, "the live writer's file stays");
	char d[DIGEST_STRLEN];
	ok(blob_writer_commit(w, NULL, d, &err) == 0, "live writer commits");
	is_int(count_non_blobs("c"), 0, "nothing left");
}

TEST(clean_temp_files)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	write_file_atomic("c/blobs/sha256/.tmp-old", "x", 1, 0644, NULL);
	write_file_atomic("c/blobs/sha256/.tmp-new", "x", 1, 0644, NULL);
	write_file_atomic("c/blobs/sha256/.partial-locked", "x", 1, 0644, NULL);
	write_file_atomic("c/index.json.tmp-abcdef", "x", 1, 0644, NULL);
	struct timespec old[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
	utimensat(AT_FDCWD, "c/blobs/sha256/.tmp-old", old, 0);
	utimensat(AT_FDCWD, "c/blobs/sha256/.partial-locked", old, 0);
	utimensat(AT_FDCWD, "c/index.json.tmp-abcdef", old, 0);
	int lfd = open("c/blobs/sha256/.partial-locked", O_RDONLY);
	flock(lfd, LOCK_EX);
	/* flock locks belong to the open file description: the store's own
	 * open of the file conflicts with this one. */
	is_int(store_clean_temp(s, 3600, true, NULL, NULL, &err), 2, "dry run counts two");
	ok(access("c/blobs/sha256/.tmp-old", F_OK) == 0, "dry run removes nothing");
	is_int(store_clean_temp(s, 3600, false, NULL, NULL, &err), 2, "removes two");
	ok(access("c/blobs/sha256/.tmp-old", F_OK) < 0, "old temp removed");
	ok(access("c/index.json.tmp-abcdef", F_OK) < 0, "old index temp removed");
	ok(access("c/blobs/sha256/.tmp-new", F_OK) == 0, "new temp kept");
	ok(access("c/blobs/sha256/.partial-locked", F_OK) == 0, "locked partial kept");
	close(lfd);
}

/* Puts a manifest with a config and one layer; returns its digest in MD. */
static void put_image(struct store *s, const char *tag, const char *layer, char md[DIGEST_STRLEN])
{
	char cd[DIGEST_STRLEN], ld[DIGEST_STRLEN];
	const char *config = "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{}}";
	store_put_blob(s, config, strlen(config), cd, NULL);
	store_put_blob(s, layer, strlen(layer), ld, NULL);
	cleanup_free char *m = xasprintf(
	    "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\","
	    "\"digest\":\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":"
	    "\"%s\",\"size\":%zu}]}",
	    OCI_MEDIA_MANIFEST, OCI_MEDIA_CONFIG, cd, strlen(config), OCI_MEDIA_LAYER, ld,
	    strlen(layer));
	store_put_blob(s, m, strlen(m), md, NULL);
	store_tag(s, tag, md, OCI_MEDIA_MANIFEST, (int64_t)strlen(m), NULL);
}

static void collect(const char *digest, void *arg)
{
	json_array_append_new(arg, json_string(digest));
}

TEST(gc_and_walk)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	char m1[DIGEST_STRLEN], m2[DIGEST_STRLEN], orphan[DIGEST_STRLEN];
	put_image(s, "a:1", "layer-a", m1);
	put_image(s, "b:1", "layer-b", m2);
	store_put_blob(s, "orphan", 6, orphan, &err);
	cleanup_json json_t *refs = json_array();
	ok(store_walk_referenced(s, collect, refs, &err) == 0, "walk");
	is_int(json_array_size(refs), 5, "2 manifests + shared config + 2 layers");
	{
		cleanup_store struct store *other = store_open("c", &err);
		ok(store_gc(s, false, 0, NULL, NULL, &err) < 0 && err &&
		       strstr(err->msg, "in use by another kiln process"),
		   "gc refused while the store is open elsewhere");
		kiln_error_release(&err);
	}
	is_int(store_gc(s, true, 0, NULL, NULL, &err), 1, "dry run finds the orphan");
	ok(store_has_blob(s, orphan), "dry run kept it");
	is_int(store_untag(s, "b:1", &err), 1, "untag b");
	is_int(store_gc(s, false, 0, NULL, NULL, &err), 3, "orphan + b's manifest and layer");
	ok(!store_has_blob(s, orphan) && !store_has_blob(s, m2), "removed");
	ok(store_has_blob(s, m1), "a kept");
	int problems = 0;
	is_int(store_verify(s, count_problem, &problems, &err), 0, "verify clean");
	/* The shared lock is back: another process cannot gc now. */
	pid_t pid = fork();
	if (pid == 0) {
		struct kiln_error *e = NULL;
		struct store *t = store_open("c", &e);
		_exit(store_gc(t, true, 0, NULL, NULL, &e) < 0 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "lock held again after gc");
}

static void print_problem(const char *what, const char *why, void *arg)
{
	(*(int *)arg)++;
	printf("# problem: %s: %s\n", what, why);
}

TEST(verify_finds_problems)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	char m1[DIGEST_STRLEN], ld[DIGEST_STRLEN];
	put_image(s, "a:1", "layer-a", m1);
	int problems = 0;
	is_int(store_verify(s, print_problem, &problems, &err), 0, "clean");
	sha256_digest("layer-a", 7, ld);
	cleanup_free char *lp = store_blob_path(s, ld);
	write_file_atomic(lp, "layer-A", 7, 0644, NULL);
	is_int(store_verify(s, print_problem, &problems, &err), 1, "corrupt layer found");
	unlink(lp);
	is_int(store_verify(s, print_problem, &problems, &err), 1, "missing layer found");
	store_blob_remove(s, m1, &err);
	is_int(store_verify(s, print_problem, &problems, &err), 1, "missing root found");
}

TEST(verifying_reader)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_store struct store *s = store_open("c", &err);
	static char data[300000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i % 251);
	char d[DIGEST_STRLEN];
	store_put_blob(s, data, sizeof data, d, &err);
	struct blob_reader *r = store_blob_reader_open(s, d, &err);
	ok(r != NULL, "open");
	is_int(blob_reader_size(r), sizeof data, "size");
	char buf[7000];
	ssize_t n, total = 0;
	while ((n = blob_reader_read(r, buf, sizeof buf, &err)) > 0)
		total += n;
	is_int(n, 0, "verified end");
	is_int(total, sizeof data, "all bytes");
	is_int(blob_reader_offset(r), sizeof data, "offset");
	blob_reader_close(r);
	/* Corrupt one byte in the middle. */
	cleanup_free char *p = store_blob_path(s, d);
	int fd = open(p, O_WRONLY);
	ok(pwrite(fd, "!", 1, 150000) == 1, "corrupt");
	close(fd);
	r = store_blob_reader_open(s, d, &err);
	while ((n = blob_reader_read(r, buf, sizeof buf, &err)) > 0)
		;
	is_int(n, -1, "mismatch at the end");
	ok(err && strstr(err->msg, "digest mismatch (got sha256:"), "message: %s",
	   err ? err->msg : "");
	blob_reader_close(r);
	/* Closing early is fine. */
	r = store_blob_reader_open(s, d, NULL);
	blob_reader_read(r, buf, 10, NULL);
	blob_reader_close(r);
}
