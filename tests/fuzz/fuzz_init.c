/* libFuzzer target for the parsers of kiln's PID 1 (init/): the first byte
 * of the input chooses one, the rest is its input.
 *   0 JSON (json_parse, a walk with json_get/json_get_str, string round trip,
 *     escapes decoding to valid UTF-8)
 *   1 protobuf (pb_next, nested length-delimited fields, re-encode round trip)
 *   2 HPACK (hpack_huffman_decode; hpack_decode with a dynamic table)
 *   3 config.json editing (service_spec_edit; its output must parse)
 *   4 containerd's messages: event envelopes (ctrd_parse_exit), a Metric
 *     of Tasks.Metrics (ctrd_metric_parse)
 *   5 runtime.json (runtime_config_load from a file, runtime_mount_flags)
 *   6 the kiln shim's ttrpc Request -> CreateTaskRequest -> runtime options
 *     (shim.c's req_parse, take_options; percent_decode), and Exec's spec Any
 *     (any_value)
 *   7 the kernel's text files: /proc/PID/status (system_term_cannot_end),
 *     and what the shim's Stats reads (stat_keys, io_stat, cgroup_v2_path)
 * shim.c and h2.c are included for their static parsers (so they are not
 * linked); nothing here forks, connects, mounts or runs a program. */
#include "../../init/h2.c"
#include "../../init/shim.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Strict UTF-8: no overlong forms, surrogates or code points past U+10FFFF. */
static bool utf8_valid(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], cp, len;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (n - i < len)
			return false;
		for (unsigned k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp < 0xe000))
			return false;
		i += len;
	}
	return true;
}

/* Every value's source span lies in the input; lookups find each member;
 * every decoded string survives json_append_string + json_parse. */
static void walk_json(const struct json *j, const char *text, size_t n)
{
	if (j->raw < text || j->raw_len == 0 || j->raw_len > n - (size_t)(j->raw - text))
		abort();
	if (j->type == JSON_STRING) {
		/* Escapes decode to UTF-8: valid text stays valid. */
		if (utf8_valid((const unsigned char *)j->raw, j->raw_len) &&
		    !utf8_valid((const unsigned char *)j->str, strlen(j->str)))
			abort();
		cleanup_free char *lit = NULL;
		size_t len = 0;
		json_append_string(&lit, &len, j->str);
		struct json *back = json_parse(lit, len, NULL);
		if (back == NULL || back->type != JSON_STRING || strcmp(back->str, j->str) != 0)
			abort();
		json_free(back);
	}
	for (size_t i = 0; i < j->count; i++) {
		if (j->type == JSON_OBJECT) {
			struct json *v = json_get(j, j->keys[i]);
			if (v == NULL ||
			    (v->type == JSON_STRING) != (json_get_str(j, j->keys[i]) != NULL))
				abort();
		}
		walk_json(j->items[i], text, n);
	}
	if (json_get(j, "") && j->type != JSON_OBJECT)
		abort();
}

static void fuzz_json(const uint8_t *data, size_t size)
{
	struct kiln_error *err = NULL;
	struct json *j = json_parse((const char *)data, size, &err);
	if (j == NULL) {
		if (err == NULL)
			abort();
		kiln_error_release(&err);
		return;
	}
	walk_json(j, (const char *)data, size);
	json_free(j);
}

/* Walks one message, recursing into length-delimited fields; re-encodes
 * its varint and length-delimited fields and checks they read back alike. */
static void walk_pb(const uint8_t *data, size_t size, int depth)
{
	struct pb_reader r = {data, data + size};
	struct pb_field f, seen[64];
	size_t nseen = 0;
	cleanup_pb_buf struct pb_buf out = {0};
	while (pb_next(&r, &f, NULL) > 0) {
		if (f.wire == 2) {
			if (f.data < data || f.len > (size_t)(data + size - f.data))
				abort();
			cleanup_free char *s = pb_field_strdup(&f);
			if (strlen(s) > f.len)
				abort();
			if (depth < 8)
				walk_pb(f.data, f.len, depth + 1);
		}
		if (nseen == 64 || (f.wire != 0 && f.wire != 2))
			continue;
		seen[nseen++] = f;
		if (f.wire == 2) {
			pb_put_bytes(&out, f.number, f.data, f.len);
		} else {
			pb_put_varint(&out, (uint64_t)f.number << 3);
			pb_put_varint(&out, f.varint);
		}
	}
	if (out.data == NULL) /* nothing re-encoded (NULL + 0 is undefined) */
		return;
	struct pb_reader back = {out.data, out.data + out.len};
	for (size_t i = 0; i < nseen; i++) {
		if (pb_next(&back, &f, NULL) != 1 || f.number != seen[i].number ||
		    f.wire != seen[i].wire || f.varint != seen[i].varint || f.len != seen[i].len ||
		    (f.len && memcmp(f.data, seen[i].data, f.len) != 0))
			abort();
	}
	if (pb_next(&back, &f, NULL) != 0)
		abort();
}

static void fuzz_hpack(const uint8_t *data, size_t size)
{
	char *s = hpack_huffman_decode(data, size);
	if (s && strlen(s) > size * 8 / 5)
		abort();
	free(s);
	struct grpc_conn c = {.fd = -1, .dyn_max = HPACK_TABLE_MAX};
	struct grpc_result res = {.grpc_status = -1};
	struct kiln_error *err = NULL;
	/* Twice, so the second block can refer to the first's table entries. */
	for (int i = 0; i < 2; i++)
		if (hpack_decode(&c, data, size, &res, &err) < 0)
			kiln_error_release(&err);
	if (c.dyn_size > c.dyn_max)
		abort();
	free(res.grpc_message);
	c.dyn_max = 0;
	hpack_evict(&c);
	free(c.dyn);
}

static void fuzz_spec(const uint8_t *data, size_t size)
{
	struct kiln_error *err = NULL;
	size_t len;
	const char *group = size && data[0] & 1 ? NULL : "group";
	cleanup_free char *out =
	    service_spec_edit((const char *)data, size, "/bundle", group, &len, &err);
	if (out == NULL) {
		kiln_error_release(&err);
		return;
	}
	if (strlen(out) > len)
		abort();
	/* The edit keeps the document valid JSON with an absolute root.path. */
	struct json *j = json_parse(out, len, NULL);
	if (j == NULL || j->type != JSON_OBJECT)
		abort();
	const char *path = json_get_str(json_get(j, "root"), "path");
	if (path == NULL || path[0] != '/')
		abort();
	struct json *ann = json_get(j, "annotations");
	if (group && (ann == NULL || (ann->type == JSON_OBJECT &&
				      json_get(ann, "io.containerd.runc.v2.group") == NULL)))
		abort();
	json_free(j);
}

static void fuzz_exit_event(const uint8_t *data, size_t size)
{
	char *ns = NULL, *id = NULL;
	uint32_t status;
	if (ctrd_parse_exit(data, size, &ns, &id, &status) == 1) {
		if (ns == NULL || id == NULL)
			abort();
		free(ns);
		free(id);
	}
	/* a Metric of Tasks.Metrics: an id always, figures only for v2 */
	struct task_metrics m;
	ctrd_metric_parse(data, size, &m);
	if (m.id == NULL || (!m.v2 && (m.pids || m.cpu_usec || m.memory || m.memory_limit)))
		abort();
	free(m.id);
}

static char *runtime_dir;

static void runtime_dir_remove(void)
{
	cleanup_free char *path = path_join(runtime_dir, "runtime.json");
	unlink(path);
	rmdir(runtime_dir);
}

static void fuzz_runtime(const uint8_t *data, size_t size)
{
	if (runtime_dir == NULL) {
		static char tmpl[] = "/tmp/fuzz-init-XXXXXX";
		runtime_dir = mkdtemp(tmpl);
		if (runtime_dir == NULL)
			abort();
		atexit(runtime_dir_remove);
	}
	cleanup_free char *path = path_join(runtime_dir, "runtime.json");
	if (write_file_atomic(path, data, size, 0600, NULL) < 0)
		abort();
	struct runtime_config rc;
	struct kiln_error *err = NULL;
	if (runtime_config_load(runtime_dir, &rc, &err) < 0) {
		if (err == NULL)
			abort();
		kiln_error_release(&err);
		return;
	}
	for (size_t i = 0; i < rc.nmounts; i++) {
		cleanup_free char *opts = NULL;
		(void)runtime_mount_flags(rc.mounts[i].options, &opts);
		if (opts == NULL)
			abort();
	}
	(void)runtime_has_bind_ns(&rc);
	runtime_config_release(&rc);
}

static void fuzz_shim(const uint8_t *data, size_t size)
{
	struct kiln_error *err = NULL;
	struct req_fields r, q;
	if (req_parse(data, size, &r, 0, &err) < 0) {
		kiln_error_release(&err);
		req_release(&r);
		return;
	}
	if (r.nrootfs != 0)
		abort();
	/* As dispatch() does: a Request without a payload parses as an empty
	 * one ("", not NULL + 0, which UBSan stops on). */
	const uint8_t *payload = r.msg[3] ? r.msg[3] : (const uint8_t *)"";
	if (req_parse(payload, r.msg[3] ? r.msg_len[3] : 0, &q, 3, &err) < 0) {
		kiln_error_release(&err);
	} else {
		struct shim s = {0};
		if (q.msg[10])
			take_options(&s, q.msg[10], q.msg_len[10]);
		free(s.runtime);
		free(s.root);
		/* Exec's process spec, Update's resources: Anys */
		size_t vlen = 0;
		const uint8_t *v = any_value(q.msg[7], q.msg_len[7], &vlen);
		if (v && (v < q.msg[7] || v + vlen > q.msg[7] + q.msg_len[7]))
			abort();
		for (int i = 5; i <= 7; i++) {
			if (q.s[i] == NULL)
				continue;
			size_t n = strlen(q.s[i]);
			char *u = percent_decode(q.s[i], n, true);
			if (strlen(u) > n)
				abort();
			free(u);
		}
	}
	req_release(&q);
	req_release(&r);
}

static void fuzz_pb(const uint8_t *data, size_t size)
{
	walk_pb(data, size, 0);
}

/* The kernel's text files: /proc/PID/status, and what the shim's Stats
 * reads (cgroup "KEY VALUE" files, io.stat, /proc/PID/cgroup). */
static void fuzz_status(const uint8_t *data, size_t size)
{
	cleanup_free char *s = xstrndup((const char *)data, size);
	(void)system_term_cannot_end(s);
	static const char *const keys[] = {"anon", "usage_usec", "oom_kill"};
	cleanup_pb_buf struct pb_buf out = {0}, io = {0};
	stat_keys(&out, s, keys, ARRAY_SIZE(keys));
	io_stat(&io, s);
	if (out.data)
		walk_pb(out.data, out.len, 0);
	if (io.data)
		walk_pb(io.data, io.len, 0);
	char *cg = cgroup_v2_path(s);
	if (cg && (cg < s || cg > s + strlen(s)))
		abort();
}

/* Indexed by the selector (the first byte's low 3 bits). */
static void (*const parsers[8])(const uint8_t *, size_t) = {
    fuzz_json,	     fuzz_pb,	   fuzz_hpack, fuzz_spec,
    fuzz_exit_event, fuzz_runtime, fuzz_shim,  fuzz_status,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 0)
		parsers[data[0] & 7](data + 1, size - 1);
	return 0;
}
