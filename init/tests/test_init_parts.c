/* Unit tests for init's parsers and encoders (built with musl, static). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "tap.h"

static uint8_t *hex(const char *s, size_t *len)
{
	size_t n = strlen(s) / 2;
	uint8_t *out = xmalloc(n + 1);
	for (size_t i = 0; i < n; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
	*len = n;
	return out;
}

static void check_huffman(const char *hexstr, const char *want)
{
	size_t n;
	cleanup_free uint8_t *in = hex(hexstr, &n);
	cleanup_free char *got = hpack_huffman_decode(in, n);
	ok(got != NULL, "decodes %s", want);
	if (got)
		is_str(got, want, "huffman");
}

/* RFC 7541 Appendix C.4 and C.6 examples. */
TEST(huffman_rfc7541_examples)
{
	check_huffman("f1e3c2e5f23a6ba0ab90f4ff", "www.example.com");
	check_huffman("a8eb10649cbf", "no-cache");
	check_huffman("25a849e95ba97d7f", "custom-key");
	check_huffman("25a849e95bb8e8b4bf", "custom-value");
	check_huffman("6402", "302");
	check_huffman("aec3771a4b", "private");
	check_huffman("d07abe941054d444a8200595040b8166e082a62d1bff",
		      "Mon, 21 Oct 2013 20:13:21 GMT");
	check_huffman("9d29ad171863c78f0b97c8e9ae82ae43d3", "https://www.example.com");
}

TEST(huffman_rejects_bad_padding)
{
	uint8_t bad[] = {0xf1, 0xe3, 0x00};
	char *got = hpack_huffman_decode(bad, sizeof bad);
	ok(got == NULL, "padding of zeros is rejected");
	free(got);
}

TEST(protobuf_roundtrip)
{
	cleanup_pb_buf struct pb_buf b = {0};
	pb_put_string(&b, 1, "hello");
	pb_put_uint(&b, 3, 300);
	pb_put_bool(&b, 4, true);
	pb_put_string(&b, 5, ""); /* proto3 default: not emitted */
	is_int((int)b.len, 2 + 5 + 1 + 2 + 2, "encoded length");
	is_int(b.data[7], 0x18, "field 3 varint key");
	is_int(b.data[8], 0xac, "300 low");
	is_int(b.data[9], 0x02, "300 high");
	struct pb_reader r = {b.data, b.data + b.len};
	struct pb_field f;
	struct kiln_error *err = NULL;
	ok(pb_next(&r, &f, &err) == 1 && f.number == 1 && f.wire == 2 && f.len == 5, "field 1");
	ok(pb_next(&r, &f, &err) == 1 && f.number == 3 && f.varint == 300, "field 3");
	ok(pb_next(&r, &f, &err) == 1 && f.number == 4 && f.varint == 1, "field 4");
	ok(pb_next(&r, &f, &err) == 0, "end");
	uint8_t trunc[] = {0x0a, 0x05, 'a'};
	struct pb_reader t = {trunc, trunc + sizeof trunc};
	ok(pb_next(&t, &f, &err) < 0, "truncated field is an error");
	kiln_error_release(&err);
}

TEST(json_parse_and_spans)
{
	const char *text = "{\"root\": {\"path\": \"rootfs\", \"readonly\": true}, \"n\": -1.5e2,"
			   " \"a\": [\"x\\u00e9\\n\", null, false], \"e\": {}}";
	struct kiln_error *err = NULL;
	struct json *j = json_parse(text, strlen(text), &err);
	ok(j != NULL, "parses");
	if (j == NULL)
		return;
	struct json *p = json_get(json_get(j, "root"), "path");
	ok(p && p->type == JSON_STRING, "root.path");
	is_int((int)p->raw_len, 8, "span of the literal with quotes");
	ok(strncmp(p->raw, "\"rootfs\"", 8) == 0, "span points at it");
	ok(json_get(j, "n")->number == -150, "number");
	struct json *a = json_get(j, "a");
	is_int((int)a->count, 3, "array");
	is_str(a->items[0]->str, "x\xc3\xa9\n", "escapes decoded");
	json_free(j);
	/* UTF-16 escapes: a pair is one code point; an unpaired surrogate is
	 * U+FFFD and the escape after it is kept (as Go's encoding/json). */
	const char *esc[][2] = {
	    {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
	    {"\"\\ud800\\u0041\"", "\xef\xbf\xbd" "A"},
	    {"\"\\ud800\"", "\xef\xbf\xbd"},
	    {"\"\\udc00x\"", "\xef\xbf\xbd" "x"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(esc); i++) {
		struct json *e = json_parse(esc[i][0], strlen(esc[i][0]), &err);
		ok(e && e->type == JSON_STRING && strcmp(e->str, esc[i][1]) == 0, "decodes %s",
		   esc[i][0]);
		json_free(e);
		kiln_error_release(&err);
	}
	const char *bad[] = {"{", "{\"a\" 1}", "[1,]", "\"\\x\"", "{} x", "[\"a\nb\"]"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct json *b = json_parse(bad[i], strlen(bad[i]), &err);
		ok(b == NULL && err != NULL, "rejects %s", bad[i]);
		json_free(b);
		kiln_error_release(&err);
	}
}

TEST(mount_options)
{
	char *opts[] = {"rbind", "ro", "nosuid", "size=10m", "mode=755", NULL};
	cleanup_free char *data = NULL;
	unsigned long f = runtime_mount_flags(opts, &data);
	ok(f == (MS_BIND | MS_REC | MS_RDONLY | MS_NOSUID), "flags");
	is_str(data, "size=10m,mode=755", "data");
	char *opts2[] = {"ro", "rw", "private", NULL};
	cleanup_free char *data2 = NULL;
	ok(runtime_mount_flags(opts2, &data2) == MS_PRIVATE, "rw clears ro");
	is_str(data2, "", "no data");
}

TEST(runtime_json)
{
	const char *rj =
	    "{\"mounts\":[{\"source\":\"tmpfs\",\"destination\":\"/x/tmp\",\"type\":\"tmpfs\","
	    "\"options\":[\"size=1m\"]}],\"mkdir\":[\"/var/a\"],\"cgroups\":[\"c1\"],"
	    "\"interfaces\":[{\"name\":\"eth1\",\"peer\":\"veth1\",\"createInRoot\":true}],"
	    "\"bindNS\":{\"net\":\"/run/netns/x\"},\"namespace\":\"other\"}";
	struct kiln_error *err = NULL;
	write_file_atomic("runtime.json", rj, strlen(rj), 0644, &err);
	struct runtime_config rc;
	ok(runtime_config_load(".", &rc, &err) == 0, "loads");
	is_int((int)rc.nmounts, 1, "mounts");
	is_str(rc.mounts[0].type, "tmpfs", "type");
	is_str(rc.mounts[0].options[0], "size=1m", "options");
	is_str(rc.mkdir[0], "/var/a", "mkdir");
	is_str(rc.cgroups[0], "c1", "cgroups");
	is_str(rc.ifaces[0].peer, "veth1", "peer");
	ok(rc.ifaces[0].create_in_root, "createInRoot");
	is_str(rc.bind_ns[3][1], "/run/netns/x", "bindNS net");
	is_str(rc.namespace, "other", "namespace");
	runtime_config_release(&rc);
	unlink("runtime.json");
	ok(runtime_config_load(".", &rc, &err) == 0 && rc.nmounts == 0, "missing file = empty");
	runtime_config_release(&rc);
}

static void check_spec(const char *in, const char *group, const char *want)
{
	struct kiln_error *err = NULL;
	size_t len = 0;
	cleanup_free char *got = service_spec_edit(in, strlen(in), "/c/s/x", group, &len, &err);
	ok(got != NULL, "edits %s", in);
	if (got) {
		is_str(got, want, "spec");
		is_int((int)len, (int)strlen(want), "length");
		struct json *j = json_parse(got, len, &err);
		ok(j != NULL, "result is JSON");
		json_free(j);
	}
	kiln_error_release(&err);
}

TEST(service_spec_edits)
{
	check_spec("{\"a\": 1, \"root\": {\"path\": \"rootfs\", \"readonly\": true}}", NULL,
		   "{\"a\": 1, \"root\": {\"path\": \"/c/s/x/rootfs\", \"readonly\": true}}");
	check_spec("{\"root\": {\"path\": \"/abs\"}}", NULL, "{\"root\": {\"path\": \"/abs\"}}");
	check_spec("{\"root\": {\"readonly\": true}}", NULL,
		   "{\"root\": {\"path\":\"/c/s/x/rootfs\",\"readonly\": true}}");
	check_spec("{\"b\": 2}", NULL, "{\"root\":{\"path\":\"/c/s/x/rootfs\"},\"b\": 2}");
	check_spec("{}", "g",
		   "{\"root\":{\"path\":\"/c/s/x/rootfs\"},"
		   "\"annotations\":{\"io.containerd.runc.v2.group\":\"g\"}}");
	check_spec("{\"root\": {\"path\": \"rootfs\"}, \"annotations\": {\"k\": \"v\"}}", "g",
		   "{\"root\": {\"path\": \"/c/s/x/rootfs\"}, \"annotations\": "
		   "{\"io.containerd.runc.v2.group\":\"g\",\"k\": \"v\"}}");
	check_spec("{\"root\": {\"path\": \"/r\"}, \"annotations\": {}}", "g",
		   "{\"root\": {\"path\": \"/r\"}, \"annotations\": "
		   "{\"io.containerd.runc.v2.group\":\"g\"}}");
	struct kiln_error *err = NULL;
	size_t len;
	ok(service_spec_edit("[1]", 3, "/b", NULL, &len, &err) == NULL, "an array is refused");
	kiln_error_release(&err);
}

/* A child that ignores TERM (or not), read back through /proc. */
static bool child_term_cannot_end(bool ignore)
{
	int ready[2];
	if (pipe(ready) < 0)
		return false;
	pid_t pid = fork();
	if (pid == 0) {
		if (ignore)
			signal(SIGTERM, SIG_IGN);
		close(ready[0]);
		close(ready[1]);
		pause();
		_exit(0);
	}
	close(ready[1]);
	char c;
	while (read(ready[0], &c, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	cleanup_free char *status = read_file(path, 16384, NULL, NULL);
	bool r = status && system_term_cannot_end(status);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return r;
}

TEST(shutdown_term_cannot_end)
{
	ok(child_term_cannot_end(true), "a process that ignores TERM");
	ok(!child_term_cannot_end(false), "a process with TERM's default action");
	const char *nested_init = "Name:\tsh\nState:\tS (sleeping)\nNSpid:\t212\t1\n"
				  "SigIgn:\t0000000000000000\nSigCgt:\t0000000000010002\n";
	ok(system_term_cannot_end(nested_init), "a nested PID namespace's init without a TERM handler");
	const char *nested_handler = "Name:\tsh\nState:\tS (sleeping)\nNSpid:\t212\t1\n"
				     "SigIgn:\t0000000000000000\nSigCgt:\t0000000000004000\n";
	ok(!system_term_cannot_end(nested_handler), "a nested init with a TERM handler");
	const char *nested_child = "State:\tS (sleeping)\nNSpid:\t213\t11\nSigCgt:\t0\n";
	ok(!system_term_cannot_end(nested_child), "a nested namespace's pid 11");
	ok(system_term_cannot_end("State:\tZ (zombie)\nNSpid:\t9\n"), "a zombie");
	ok(system_term_cannot_end("State:\tT (stopped)\nNSpid:\t9\n"), "a stopped process");
	ok(!system_term_cannot_end("State:\tR (running)\nNSpid:\t9\nSigIgn:\t0\n"), "a plain process");
}

/* early.c: which onboot containers keep containerd from starting before them. */
static void early_bundle(const char *name, const char *config, const char *runtime)
{
	struct kiln_error *err = NULL;
	cleanup_free char *dir = xasprintf("onboot/%s", name);
	mkdir_p(dir, 0755, &err);
	cleanup_free char *c = xasprintf("%s/config.json", dir);
	write_file_atomic(c, config, strlen(config), 0644, &err);
	if (runtime) {
		cleanup_free char *r = xasprintf("%s/runtime.json", dir);
		write_file_atomic(r, runtime, strlen(runtime), 0644, &err);
	}
	ok(err == NULL, "bundle %s written", name);
	kiln_error_release(&err);
}

TEST(early_containerd)
{
	static const char *const dirs[] = {"/var/lib/containerd", NULL};
	const char *own_mnt = "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}]}";
	char why[512] = "";
	ok(!onboot_may_touch("onboot", dirs, why, sizeof why), "no onboot directory: early");
	cleanup_free char *dhcpcd = xasprintf(
	    "{\"mounts\":[{\"source\":\"/var/run\",\"destination\":\"/run\",\"type\":\"bind\","
	    "\"options\":[\"rw\",\"rbind\",\"rprivate\"]}],%s}", own_mnt);
	early_bundle("000-dhcpcd", dhcpcd, NULL);
	ok(!onboot_may_touch("onboot", dirs, why, sizeof why), "private bind of /var/run: early");
	cleanup_free char *other = xasprintf(
	    "{\"mounts\":[{\"source\":\"/var/lib/docker\",\"destination\":\"/d\",\"type\":\"bind\","
	    "\"options\":[\"rbind\",\"rshared\"]},{\"source\":\"/var/lib/containerd2\","
	    "\"destination\":\"/e\",\"type\":\"bind\",\"options\":[\"rbind\",\"rshared\"]}],%s}",
	    own_mnt);
	early_bundle("001-other", other, NULL);
	ok(!onboot_may_touch("onboot", dirs, why, sizeof why),
	   "shared binds beside containerd's directories (/var/lib/containerd2 too): early");
	cleanup_free char *mount = xasprintf(
	    "{\"mounts\":[{\"source\":\"/var\",\"destination\":\"/var\",\"type\":\"bind\","
	    "\"options\":[\"rbind\",\"rshared\"]}],%s}", own_mnt);
	early_bundle("002-mount", mount, NULL);
	ok(onboot_may_touch("onboot", dirs, why, sizeof why), "shared bind of /var: late");
	is_str(why, "002-mount: binds /var with shared propagation", "says which and why");
	unlink("onboot/002-mount/config.json");
	rmdir("onboot/002-mount");
	cleanup_free char *plain = xasprintf("{%s}", own_mnt);
	early_bundle("003-rt", plain,
		     "{\"mounts\":[{\"source\":\"/dev/sda1\",\"destination\":\"/var/lib/containerd/x\","
		     "\"type\":\"ext4\"}]}");
	ok(onboot_may_touch("onboot", dirs, why, sizeof why), "runtime.json mount under it: late");
	is_str(why, "003-rt: runtime.json mounts /var/lib/containerd/x", "runtime.json named");
	unlink("onboot/003-rt/runtime.json");
	unlink("onboot/003-rt/config.json");
	rmdir("onboot/003-rt");
	symlink("/var", "varrun");
	cleanup_free char *varrun = xasprintf(
	    "{\"mounts\":[{\"source\":\"%s/varrun\",\"destination\":\"/run\",\"type\":\"bind\","
	    "\"options\":[\"rbind\",\"rshared\"]}],%s}", getcwd(why, sizeof why), own_mnt);
	early_bundle("003-varrun", varrun, NULL);
	ok(onboot_may_touch("onboot", dirs, why, sizeof why),
	   "shared bind of a symlink to /var: late");
	unlink("onboot/003-varrun/config.json");
	rmdir("onboot/003-varrun");
	unlink("varrun");
	early_bundle("004-hostmnt", "{\"linux\":{\"namespaces\":[{\"type\":\"pid\"}]}}", NULL);
	ok(onboot_may_touch("onboot", dirs, why, sizeof why), "host mount namespace: late");
	is_str(why, "004-hostmnt: shares the host's mount namespace", "named");
}

/* A Metric of containerd's Tasks.Metrics as kiln's shim's Stats answers it
 * (cgroup v2's Metrics in an Any): the figures kiln-service stats prints. */
TEST(metric_parse)
{
	cleanup_pb_buf struct pb_buf pids = {0}, cpu = {0}, mem = {0}, m = {0}, any = {0},
				     metric = {0}, v1any = {0}, v1 = {0};
	pb_put_uint(&pids, 1, 3);
	pb_put_uint(&pids, 2, 77);
	pb_put_uint(&cpu, 1, 1234567);
	pb_put_uint(&cpu, 2, 1000);
	pb_put_uint(&mem, 1, 5); /* anon: not what is read */
	pb_put_uint(&mem, 32, 4 << 20);
	pb_put_uint(&mem, 33, UINT64_MAX);
	pb_put_message(&m, 1, &pids);
	pb_put_message(&m, 2, &cpu);
	pb_put_message(&m, 4, &mem);
	pb_put_string(&any, 1, "io.containerd.cgroups.v2.Metrics");
	pb_put_message(&any, 2, &m);
	pb_put_uint(&metric, 1, 99); /* a timestamp is a message, but skipped either way */
	pb_put_string(&metric, 2, "getty");
	pb_put_message(&metric, 3, &any);
	struct task_metrics t;
	ctrd_metric_parse(metric.data, metric.len, &t);
	is_str(t.id, "getty", "id");
	ok(t.v2, "cgroup v2 figures");
	ok(t.pids == 3, "pids.current, not pids.max");
	ok(t.cpu_usec == 1234567, "cpu usage_usec, not user_usec");
	ok(t.memory == 4 << 20, "memory usage (field 32)");
	ok(t.memory_limit == UINT64_MAX, "memory usage_limit max");
	free(t.id);
	/* containerd's runc shim on a cgroup v1 host: another message, not read */
	pb_put_string(&v1any, 1, "io.containerd.cgroups.v1.Metrics");
	pb_put_message(&v1any, 2, &m);
	pb_put_string(&v1, 2, "old");
	pb_put_message(&v1, 3, &v1any);
	ctrd_metric_parse(v1.data, v1.len, &t);
	ok(!t.v2 && t.pids == 0 && t.memory == 0, "v1 Metrics: no figures taken");
	is_str(t.id, "old", "its id still");
	free(t.id);
	uint8_t bad[] = {0x12, 0x09, 'x'};
	ctrd_metric_parse(bad, sizeof bad, &t);
	ok(t.id && !t.v2, "truncated: an empty id, no figures");
	free(t.id);
}
