/* Unit tests of assembler/manifest*.c: parsing into struct manifest,
 * set/unset/empty, validation rules and their positions, the label and its
 * merge, the uid/gid map, multi-file append, @pkg: templates, limits, and
 * the dump round trip. */
#include <jansson.h>
#include <sys/stat.h>

#include "manifest.h"
#include "strbuf.h"
#include "tap.h"
#include "util.h"

static struct manifest *parse(const char *text, struct kiln_error **err)
{
	return manifest_parse(text, strlen(text), "m.yml", ".", NULL, err);
}

/* Parses TEXT, which must fail; returns the message (static copy). */
static const char *parse_error(const char *text)
{
	static char msg[1024];
	struct kiln_error *err = NULL;
	struct manifest *m = parse(text, &err);
	if (m) {
		manifest_free(m);
		return "(accepted)";
	}
	snprintf(msg, sizeof msg, "%s", err ? err->msg : "(no error)");
	kiln_error_release(&err);
	return msg;
}

#define HEAD "kernel:\n  image: linuxkit/kernel:6.6\n  cmdline: console=ttyS0\n"

TEST(parses_kernel_init_and_entries)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest *m = parse(HEAD "init:\n  - linuxkit/init:v1\n  - linuxkit/runc:v1\n"
					"onboot:\n  - name: sysctl\n    image: linuxkit/sysctl:v1\n"
					"    readonly: true\n    pid: host\n"
					"services:\n  - name: getty\n    image: linuxkit/getty:v1\n"
					"    env: [INSECURE=true]\n    oomScoreAdj: -800\n",
				   &err);
	ok(m != NULL, "parsed: %s", err ? err->msg : "");
	if (!m)
		return;
	ok(m->kernel.set, "kernel set");
	is_str(m->kernel.image, "linuxkit/kernel:6.6", "kernel.image");
	is_str(m->kernel.cmdline, "console=ttyS0", "kernel.cmdline");
	ok(m->kernel.tar == NULL && m->kernel.binary == NULL, "tar/binary unset");
	is_int(m->ninit, 2, "init count");
	is_str(m->init[1].image, "linuxkit/runc:v1", "init[1]");
	is_int(m->init[1].pos.line, 6, "init[1] line");
	is_int(m->onboot.n, 1, "onboot count");
	is_str(m->onboot.v[0].name, "sysctl", "onboot name");
	ok(m->onboot.v[0].config.readonly.set && m->onboot.v[0].config.readonly.value, "readonly");
	is_str(m->onboot.v[0].config.pid, "host", "pid");
	is_int(m->onboot.v[0].pos.line, 8, "entry line");
	is_int(m->onboot.v[0].pos.col, 5, "entry col");
	is_int(m->onboot.v[0].image_pos.line, 9, "image line");
	const struct image_config *g = &m->services.v[0].config;
	ok(g->env.set && g->env.n == 1, "env set");
	is_str(g->env.v[0], "INSECURE=true", "env[0]");
	ok(g->oom_score_adj.set, "oomScoreAdj set");
	is_int(g->oom_score_adj.value, -800, "oomScoreAdj");
	ok(!g->capabilities.set && !g->readonly.set && g->cwd == NULL, "unset stays unset");
	is_str(m->name, "m", "output name from the file name");
	manifest_free(m);
}

TEST(empty_list_is_set_absent_is_not)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest *m = parse("services:\n  - name: a\n    image: alpine\n    capabilities: []\n"
				   "    sysctl: {}\n    cwd: \"\"\n",
				   &err);
	ok(m != NULL, "parsed");
	if (!m)
		return;
	const struct image_config *c = &m->services.v[0].config;
	ok(c->capabilities.set && c->capabilities.n == 0, "[] is set and empty");
	ok(c->sysctl.set && c->sysctl.n == 0, "{} is set and empty");
	ok(!c->binds.set, "absent binds unset");
	is_str(c->cwd, "", "\"\" is an empty string, not unset");
	manifest_free(m);
}

TEST(ids_ints_and_names)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest *m = parse("onboot:\n  - name: a\n    image: alpine\n    uid: 5\n    gid: b\n"
				   "    additionalGids: [1, root, \"c\"]\n"
				   "onshutdown:\n  - name: b\n    image: alpine\n"
				   "services:\n  - name: c\n    image: alpine\n"
				   "files:\n  - path: x\n    contents: y\n    uid: c\n    gid: 7\n",
				   &err);
	ok(m != NULL, "parsed: %s", err ? err->msg : "");
	if (!m)
		return;
	const struct image_config *a = &m->onboot.v[0].config;
	ok(a->uid.set && a->uid.name == NULL && a->uid.number == 5, "uid 5 numeric");
	is_str(a->gid.name, "b", "gid by name");
	uint32_t id = 1;
	ok(manifest_id_resolve(m, &a->gid, &id, &err) == 0, "resolve gid b");
	is_int(id, 101, "b is the second container (onshutdown after onboot)");
	ok(manifest_id_resolve(m, &m->files[0].uid, &id, &err) == 0, "resolve file uid c");
	is_int(id, 102, "c is the third (services last)");
	ok(manifest_id_resolve(m, &a->additional_gids.v[1], &id, &err) == 0 && id == 0, "root is 0");
	ok(manifest_resolve_id(m, "a", &id, &err) == 0 && id == 100, "first container is 100");
	ok(manifest_resolve_id(m, "42", &id, &err) == 0 && id == 42, "number");
	ok(manifest_resolve_id(m, "", &id, &err) == 0 && id == 0, "empty is root");
	ok(manifest_resolve_id(m, "nobody", &id, &err) < 0, "unknown name fails");
	ok(err && strstr(err->msg, "cannot find id: nobody"), "message names it");
	struct manifest_id unset = {0};
	ok(manifest_id_resolve(m, &unset, &id, &err) == 0 && id == 0, "unset is 0");
	manifest_free(m);
}

TEST(positions_of_errors)
{
	is_str(parse_error(HEAD "services:\n  - name: a\n    image: alpine\n    capabilities: [CAP_NOPE]\n"),
	       "m.yml:7:20: capabilities: unknown capability \"CAP_NOPE\" (expected CAP_* as in "
	       "capabilities(7), or all/none)",
	       "unknown capability at its list item");
	is_str(parse_error("kernel:\n  image: x\n  bogus: 1\n"),
	       "m.yml:3:3: unknown field \"bogus\" in kernel", "unknown key at the key");
	is_str(parse_error("files:\n  - path: a\n    contents: x\n    source: /etc/hosts\n"),
	       "m.yml:2:5: files[0] (a): both contents and source given; a file has exactly one of "
	       "contents, source, metadata, symlink, directory",
	       "content kinds at the entry");
	is_str(parse_error(""), "m.yml:1:1: empty manifest (no YAML document)", "empty input");
	is_str(parse_error("kernel:\n\timage: x\n"),
	       "m.yml:2:1: tab character where YAML allows only spaces (found character that cannot "
	       "start any token while scanning for the next token)",
	       "tab");
	const char *u = parse_error("kernel:\n  cmdline: \"\xc3\x28\"\n");
	ok(str_has_prefix(u, "m.yml:2:"), "invalid UTF-8 has a position: %s", u);
}

TEST(type_rules)
{
	ok(str_has_prefix(parse_error("onboot:\n  - name: a\n    image: b\n    readonly: yes\n"),
			  "m.yml:4:15: readonly: expected a boolean"),
	   "yes is not a boolean (YAML 1.2)");
	ok(str_has_prefix(parse_error("kernel:\n  cmdline: 12\n"), "m.yml:2:12: kernel.cmdline: expected a string, got an integer"),
	   "integer is not a string");
	ok(strcmp(parse_error("kernel:\n  cmdline: \"12\"\n"), "(accepted)") == 0, "quoted number is a string");
	ok(strcmp(parse_error("kernel:\n  cmdline: !!str 12\n"), "(accepted)") == 0, "!!str number is a string");
	ok(str_has_prefix(parse_error("services:\n  - name: a\n    image: b\n    uid: 1.5\n"),
			  "m.yml:4:10: uid: expected an integer or a container name"),
	   "float uid");
	ok(str_has_prefix(parse_error("files:\n  - path: a\n    contents: x\n    mode: 0644\n"),
			  "m.yml:4:11: files[0].mode: the mode must be a quoted octal string"),
	   "unquoted mode");
	ok(strcmp(parse_error("files:\n  - path: a\n    contents: x\n    mode: \"0755\"\n"), "(accepted)") == 0,
	   "quoted octal mode");
	ok(str_has_prefix(parse_error("volumes:\n  - name: a\n  - name: a\n"),
			  "m.yml:3:5: duplicate volume name \"a\" (first at m.yml:2)"),
	   "duplicate volume");
	ok(str_has_prefix(parse_error("services:\n  - name: a\n    image: b\n  - name: a\n    image: c\n"),
			  "m.yml:4:5: duplicate service name \"a\""),
	   "duplicate service");
	ok(strcmp(parse_error("onboot:\n  - name: a\n    image: b\n  - name: a\n    image: c\n"),
		  "(accepted)") == 0,
	   "duplicate onboot names are allowed, as in LinuxKit");
	ok(strcmp(parse_error("services:\n  - name: a\n    image: b\n    capabilities: [ALL]\n"),
		  "(accepted)") == 0,
	   "ALL alone is accepted");
}

TEST(files_defaults_and_kinds)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest *m = parse("files:\n  - path: /etc/a\n    contents: \"\"\n"
				   "  - path: etc/d\n    directory: true\n"
				   "  - path: etc/l\n    symlink: /x\n    mode: \"0777\"\n"
				   "  - path: etc/m\n    metadata: json\n",
				   &err);
	ok(m != NULL, "parsed: %s", err ? err->msg : "");
	if (!m)
		return;
	is_int(m->nfiles, 4, "four files");
	is_str(m->files[0].contents, "", "empty contents is contents");
	ok(!m->files[0].mode.set, "mode unset (0600 is the assembler's default)");
	ok(m->files[1].directory.value, "directory");
	is_int(m->files[2].mode.value, 0777, "octal mode");
	is_str(m->files[3].metadata, "json", "metadata");
	manifest_free(m);
}

TEST(rlimits_parse)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest_rlimit r;
	ok(manifest_rlimit_parse("nofile,1024,4096", &r, &err) == 0, "plain");
	is_str(r.type, "RLIMIT_NOFILE", "type");
	is_int(r.soft, 1024, "soft");
	is_int(r.hard, 4096, "hard");
	ok(manifest_rlimit_parse("RLIMIT_Core, unlimited ,unlimited", &r, &err) == 0, "prefix, case, spaces");
	is_str(r.type, "RLIMIT_CORE", "type");
	ok(r.soft == UINT64_MAX && r.hard == UINT64_MAX, "unlimited");
	ok(manifest_rlimit_parse("nofile,1,2,3", &r, &err) < 0, "four fields");
	ok(manifest_rlimit_parse("nofile,,2", &r, &err) < 0, "empty field");
	ok(manifest_rlimit_parse("bogus,1,2", &r, &err) < 0, "unknown name");
	ok(manifest_rlimit_parse("nofile,-1,2", &r, &err) < 0, "negative");
	ok(manifest_rlimit_parse("nofile,5,2", &r, &err) < 0, "soft above hard");
}

TEST(capability_names)
{
	size_t n;
	const char *const *caps = manifest_capabilities_known(&n);
	is_int(n, 41, "41 capabilities up to CAP_CHECKPOINT_RESTORE");
	is_str(caps[21], "CAP_SYS_ADMIN", "numbered as the kernel numbers them");
	ok(manifest_capability_is_known("CAP_BPF"), "CAP_BPF");
	ok(!manifest_capability_is_known("cap_bpf"), "case matters");
}

TEST(label_parse_json_and_yaml)
{
	cleanup_error struct kiln_error *err = NULL;
	struct image_config *c = image_config_parse_label(
		"{\"pid\":\"host\",\"readonly\":true,\"capabilities\":[\"CAP_SYS_BOOT\"],"
		"\"binds\":[\"/dev:/dev\"],\"runtime\":{\"mkdir\":[\"/var/x\"]}}",
		&err);
	ok(c != NULL, "JSON label: %s", err ? err->msg : "");
	if (c) {
		is_str(c->pid, "host", "pid");
		ok(c->readonly.set && c->readonly.value, "readonly");
		is_str(c->capabilities.v[0], "CAP_SYS_BOOT", "caps");
		ok(c->runtime.set && c->runtime.mkdir.n == 1, "runtime.mkdir");
		image_config_free(c);
	}
	c = image_config_parse_label("net: host\ncapabilities:\n  - CAP_NET_ADMIN\n", &err);
	ok(c != NULL, "YAML label");
	image_config_free(c);
	ok(image_config_parse_label("{\"name\":\"x\"}", &err) == NULL, "name in a label");
	ok(err && strstr(err->msg, "name cannot be set"), "says so: %s", err ? err->msg : "");
	kiln_error_release(&err);
	ok(image_config_parse_label("{\"image\":\"x\"}", &err) == NULL, "image in a label");
	kiln_error_release(&err);
	ok(image_config_parse_label("[1,2]", &err) == NULL, "array label");
	kiln_error_release(&err);
	ok(image_config_parse_label("{\"capabilities\":[\"CAP_X\"]}", &err) == NULL, "bad cap in label");
	ok(err && str_has_prefix(err->msg, "org.mobyproject.config label:1:"), "positioned: %s",
	   err ? err->msg : "");
}

static struct image_config *cfg_from(const char *yaml_entry_fields)
{
	cleanup_free char *text = xasprintf("services:\n  - name: s\n    image: alpine\n%s",
					    yaml_entry_fields);
	struct kiln_error *err = NULL;
	struct manifest *m = parse(text, &err);
	kiln_error_release(&err);
	if (m == NULL)
		return NULL;
	struct image_config *c = xcalloc(1, sizeof *c);
	image_config_copy(c, &m->services.v[0].config);
	manifest_free(m);
	return c;
}

TEST(merge_replaces_field_by_field)
{
	cleanup_error struct kiln_error *err = NULL;
	struct image_config *label = image_config_parse_label(
		"{\"pid\":\"host\",\"net\":\"host\",\"cwd\":\"/l\",\"capabilities\":[\"CAP_A_IS_NOT_REAL\"]}",
		&err);
	ok(label == NULL, "bad label rejected");
	kiln_error_release(&err);
	label = image_config_parse_label(
		"{\"pid\":\"host\",\"net\":\"host\",\"cwd\":\"/l\",\"capabilities\":[\"CAP_SYS_ADMIN\"],"
		"\"binds\":[\"/a:/a\",\"/b:/b\"],\"env\":[\"L=1\"],\"readonly\":true,"
		"\"sysctl\":{\"x\":\"1\"}}",
		&err);
	struct image_config *yaml = cfg_from("    net: new\n    cwd: \"\"\n    readonly: false\n"
					     "    env: []\n");
	ok(label && yaml, "parsed");
	if (!label || !yaml)
		return;
	struct image_config *m = image_config_merge(yaml, label);
	is_str(m->net, "new", "yaml wins");
	is_str(m->pid, "host", "label used when yaml unset");
	is_str(m->cwd, "/l", "empty yaml cwd falls back to the label (LinuxKit)");
	ok(m->readonly.set && !m->readonly.value, "readonly false in yaml wins over label true");
	ok(m->env.set && m->env.n == 0, "[] in yaml removes the label's env");
	is_int(m->capabilities.n, 1, "label caps kept");
	is_int(m->binds.n, 2, "label binds kept");
	ok(m->sysctl.set && m->sysctl.n == 1, "label sysctl kept");
	image_config_free(m);

	m = image_config_merge(NULL, label);
	is_str(m->pid, "host", "NULL yaml");
	image_config_free(m);
	m = image_config_merge(yaml, NULL);
	is_str(m->net, "new", "NULL label");
	ok(!m->capabilities.set, "nothing to merge stays unset");
	image_config_free(m);
	image_config_free(yaml);
	image_config_free(label);
}

TEST(merge_add_variants)
{
	cleanup_error struct kiln_error *err = NULL;
	struct image_config *label = image_config_parse_label(
		"{\"capabilities\":[\"CAP_SYS_ADMIN\"],\"binds\":[\"/a:/a\"]}", &err);
	struct image_config *add = cfg_from("    capabilities.add: [CAP_NET_ADMIN, CAP_SYS_ADMIN]\n"
					    "    binds.add: [\"/c:/c\"]\n");
	struct image_config *both = cfg_from("    capabilities: [CAP_CHOWN]\n"
					     "    capabilities.add: [CAP_NET_ADMIN]\n"
					     "    binds: []\n    binds.add: [\"/c:/c\"]\n");
	ok(label && add && both, "parsed");
	if (!label || !add || !both)
		return;
	struct image_config *m = image_config_merge(add, label);
	is_int(m->capabilities.n, 3, "label caps + add, no dedupe (LinuxKit)");
	is_str(m->capabilities.v[0], "CAP_SYS_ADMIN", "label first");
	is_str(m->capabilities.v[1], "CAP_NET_ADMIN", "then add");
	ok(!m->capabilities_add.set, "add consumed");
	is_int(m->binds.n, 2, "label binds + add");
	is_str(m->binds.v[1], "/c:/c", "added bind last");
	ok(!m->binds_add.set, "binds.add consumed");
	image_config_free(m);

	m = image_config_merge(both, label);
	is_int(m->capabilities.n, 1, "capabilities set: add ignored");
	is_str(m->capabilities.v[0], "CAP_CHOWN", "yaml caps");
	ok(m->binds.set && m->binds.n == 0, "binds: [] wins and add is ignored");
	image_config_free(m);

	m = image_config_merge(add, NULL);
	is_int(m->capabilities.n, 2, "add without a label");
	image_config_free(m);
	image_config_free(label);
	image_config_free(add);
	image_config_free(both);
}

TEST(merge_runtime_sub_fields)
{
	cleanup_error struct kiln_error *err = NULL;
	struct image_config *label = image_config_parse_label(
		"{\"runtime\":{\"mkdir\":[\"/l\"],\"cgroups\":[\"lc\"],\"namespace\":\"ln\","
		"\"bindNS\":{\"net\":\"/run/netns/l\",\"ipc\":\"/run/ipc/l\"}}}",
		&err);
	struct image_config *yaml = cfg_from("    runtime:\n      cgroups: [yc]\n"
					     "      bindNS:\n        net: /run/netns/y\n"
					     "      interfaces:\n        - name: eth1\n          add: veth\n");
	ok(label && yaml, "parsed");
	if (!label || !yaml)
		return;
	struct image_config *m = image_config_merge(yaml, label);
	ok(m->runtime.set, "runtime set");
	is_str(m->runtime.cgroups.v[0], "yc", "cgroups from yaml");
	is_str(m->runtime.mkdir.v[0], "/l", "mkdir from label");
	is_str(m->runtime.namespace, "ln", "namespace from label");
	is_str(m->runtime.bind_ns.net, "/run/netns/y", "bindNS.net from yaml");
	is_str(m->runtime.bind_ns.ipc, "/run/ipc/l", "bindNS.ipc from label");
	is_str(m->runtime.interfaces.v[0].name, "eth1", "interfaces from yaml");
	image_config_free(m);
	image_config_free(label);
	image_config_free(yaml);
}

TEST(append_merges_files)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest *a = parse(HEAD "init: [a/init]\nservices:\n  - name: x\n    image: x\n", &err);
	struct manifest *b = manifest_parse("kernel:\n  cmdline: quiet\n  tar: none\ninit: [b/init]\n"
					    "services:\n  - name: y\n    image: y\n",
					    strlen("kernel:\n  cmdline: quiet\n  tar: none\ninit: [b/init]\n"
						   "services:\n  - name: y\n    image: y\n"),
					    "dir/second.yaml", ".", NULL, &err);
	ok(a && b, "parsed");
	if (!a || !b)
		return;
	ok(manifest_append(a, b, &err) == 0, "append");
	is_str(a->kernel.image, "linuxkit/kernel:6.6", "image kept (later empty)");
	is_str(a->kernel.cmdline, "quiet", "cmdline replaced");
	is_str(a->kernel.tar, "none", "tar set");
	is_int(a->ninit, 2, "init concatenated");
	is_int(a->services.n, 2, "services concatenated");
	is_str(a->services.v[1].file, "dir/second.yaml", "entry remembers its file");
	is_str(a->name, "second", "output name from the last file");
	struct manifest *c = parse("services:\n  - name: y\n    image: z\n", &err);
	ok(manifest_append(a, c, &err) < 0, "duplicate service across files");
	ok(err && strstr(err->msg, "duplicate service name \"y\""), "message: %s", err ? err->msg : "");
	manifest_free(a);
}

static char *fake_resolver(const char *dir, void *data, struct kiln_error **err)
{
	(*(int *)data)++;
	if (str_has_suffix(dir, "/broken"))
		return kiln_error_make(err, 0, "build.yml: no image"), NULL;
	const char *base = strrchr(dir, '/');
	return xasprintf("kiln/%s:abc123", base + 1);
}

TEST(pkg_templates)
{
	cleanup_error struct kiln_error *err = NULL;
	ok(mkdir("pkgs", 0755) == 0 && mkdir("pkgs/getty", 0755) == 0 && mkdir("pkgs/broken", 0755) == 0,
	   "package dirs");
	int calls = 0;
	struct manifest_parse_options o = {.pkg_resolver = fake_resolver, .pkg_data = &calls};
	const char *text = "init:\n  - \"@pkg:./pkgs/getty\"\nservices:\n  - name: getty\n"
			   "    image: \"@pkg:pkgs/getty\"\n";
	struct manifest *m = manifest_parse(text, strlen(text), "sub/m.yml", ".", &o, &err);
	ok(m != NULL, "resolved: %s", err ? err->msg : "");
	if (m) {
		is_str(m->init[0].image, "kiln/getty:abc123", "init template");
		is_str(m->services.v[0].image, "kiln/getty:abc123", "image template");
		is_int(calls, 2, "resolver called per scalar");
		manifest_free(m);
	}
	text = "init:\n  - \"@pkg:pkgs/broken\"\n";
	m = manifest_parse(text, strlen(text), "m.yml", ".", &o, &err);
	ok(m == NULL && err && str_has_prefix(err->msg, "m.yml:2:5: @pkg:pkgs/broken: build.yml: no image"),
	   "resolver error positioned: %s", err ? err->msg : "");
	kiln_error_release(&err);
	text = "init:\n  - \"@pkg:pkgs/none\"\n";
	m = manifest_parse(text, strlen(text), "m.yml", ".", &o, &err);
	ok(m == NULL && err && str_has_prefix(err->msg, "m.yml:2:5: @pkg:pkgs/none: package directory /") &&
		   str_has_suffix(err->msg, "/pkgs/none not found"),
	   "missing dir: %s", err ? err->msg : "");
	kiln_error_release(&err);
	text = "init:\n  - \"@pkg:pkgs/getty\"\n";
	m = manifest_parse(text, strlen(text), "m.yml", ".", NULL, &err);
	ok(m == NULL && err && strstr(err->msg, "no package resolver"), "no resolver: %s",
	   err ? err->msg : "");
}

TEST(limits)
{
	cleanup_error struct kiln_error *err = NULL;
	struct strbuf sb = STRBUF_INIT;
	strbuf_puts(&sb, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 8; i++) {
		strbuf_printf(&sb, "a%d: &a%d [", i, i);
		for (int j = 0; j < 10; j++)
			strbuf_printf(&sb, "%s*a%d", j ? ", " : "", i - 1);
		strbuf_puts(&sb, "]\n");
	}
	struct manifest *m = manifest_parse(sb.buf, sb.len, "m.yml", ".", NULL, &err);
	ok(m == NULL && err && strstr(err->msg, "alias bomb"), "alias bomb: %s", err ? err->msg : "");
	kiln_error_release(&err);
	strbuf_reset(&sb);
	strbuf_puts(&sb, "kernel:\n  cmdline: ");
	for (int i = 0; i < 100; i++)
		strbuf_putc(&sb, '[');
	m = manifest_parse(sb.buf, sb.len, "m.yml", ".", NULL, &err);
	ok(m == NULL && err && strstr(err->msg, "nesting deeper than 64"), "depth: %s", err ? err->msg : "");
	kiln_error_release(&err);
	strbuf_release(&sb);
	size_t big = MANIFEST_MAX_SIZE + 1;
	char *huge = xmalloc(big);
	memset(huge, '#', big);
	m = manifest_parse(huge, big, "m.yml", ".", NULL, &err);
	free(huge);
	ok(m == NULL && err && str_has_prefix(err->msg, "m.yml:1:1: input is"), "size: %s", err ? err->msg : "");
}

TEST(dump_round_trip)
{
	cleanup_error struct kiln_error *err = NULL;
	const char *text =
		HEAD "  tar: \"\"\ninit: [linuxkit/init:v1]\n"
		"onboot:\n  - name: a\n    image: alpine\n    command: [\"sh\", \"-c\", \"echo 'hi: there'\", \"123\", \"true\", \"\", \"~\"]\n"
		"    devices:\n      - {path: /dev/x, type: c, major: 1, minor: 2, mode: \"0660\"}\n"
		"    resources: {memory: {limit: 100}, cpu: {cpus: \"0\"}}\n"
		"    uid: a\n    additionalGids: [1, b]\n    sysctl: {a.b: \"1\"}\n"
		"    runtime: {bindNS: {net: /run/netns/a}, interfaces: [{name: e, createInRoot: true}]}\n"
		"files:\n  - path: x\n    contents: |\n      line one\n      line: two\n    mode: \"0644\"\n"
		"  - path: \"@notpkg\"\n    contents: \"  leading and trailing  \"\n"
		"volumes:\n  - name: v\n    platforms: [linux/amd64]\n";
	struct manifest *m = parse(text, &err);
	ok(m != NULL, "parsed: %s", err ? err->msg : "");
	if (!m)
		return;
	char *y1 = manifest_dump_string(m, "yaml", &err);
	ok(y1 != NULL, "dumped");
	struct manifest *m2 = manifest_parse(y1, strlen(y1), "d.yml", ".", NULL, &err);
	ok(m2 != NULL, "dump parses: %s", err ? err->msg : "");
	if (m2) {
		char *y2 = manifest_dump_string(m2, "yaml", &err);
		is_str(y2, y1, "dump -> parse -> dump is identical");
		is_str(m2->onboot.v[0].config.command.v[3], "123", "numeric string stays a string");
		is_str(m2->onboot.v[0].config.command.v[5], "", "empty string survives");
		is_str(m2->files[0].contents, "line one\nline: two\n", "multi-line contents");
		is_str(m2->files[1].contents, "  leading and trailing  ", "spaces kept");
		is_int(m2->onboot.v[0].config.devices.v[0].mode.value, 0660, "mode");
		free(y2);
		manifest_free(m2);
	}
	char *j = manifest_dump_string(m, "json", &err);
	json_error_t je;
	json_t *root = j ? json_loads(j, 0, &je) : NULL;
	ok(root != NULL, "JSON dump is JSON");
	ok(root && json_is_string(json_object_get(json_object_get(root, "kernel"), "tar")),
	   "kernel.tar kept as \"\"");
	json_decref(root);
	free(j);
	ok(manifest_dump_string(m, "toml", &err) == NULL, "unknown format");
	free(y1);
	manifest_free(m);
}

TEST(load_file_and_errors)
{
	cleanup_error struct kiln_error *err = NULL;
	ok(write_file_atomic("a.yml", HEAD, strlen(HEAD), 0644, &err) == 0, "write");
	ok(write_file_atomic("b.yml", "init: [x/y]\n", 12, 0644, &err) == 0, "write");
	char *paths[] = {"a.yml", "b.yml"};
	struct manifest *m = manifest_load_files(paths, 2, NULL, &err);
	ok(m != NULL, "loaded two files");
	if (m) {
		is_int(m->ninit, 1, "merged");
		is_str(m->name, "b", "name of the last file");
		manifest_free(m);
	}
	char *missing[] = {"a.yml", "nope.yml"};
	ok(manifest_load_files(missing, 2, NULL, &err) == NULL, "missing file");
	ok(err && strstr(err->msg, "nope.yml"), "names it: %s", err ? err->msg : "");
}

TEST(validate_after_merge)
{
	cleanup_error struct kiln_error *err = NULL;
	const char *vols = "volumes:\n  - name: ro\n    readonly: true\n  - name: rw\n";
	const char *ok_text = "onboot:\n  - name: a\n    image: alpine\n    binds: [\"ro:/x:ro\", \"rw:/y\", \"/z:/z\"]\n"
			      "    mounts:\n      - {type: bind, source: ro, destination: /m, options: [rbind, ro]}\n"
			      "    uid: b\n"
			      "services:\n  - name: b\n    image: alpine\n";
	cleanup_free char *good = xasprintf("%s%s", ok_text, vols);
	struct manifest *m = parse(good, &err);
	ok(m && manifest_validate(m, &err) == 0, "volumes and names resolve: %s", err ? err->msg : "");
	manifest_free(m);
	cleanup_free char *rw = xasprintf("onboot:\n  - name: a\n    image: alpine\n    binds.add: [\"ro:/x\"]\n%s", vols);
	m = parse(rw, &err);
	ok(m && manifest_validate(m, &err) < 0 && strstr(err->msg, "is read-only, but is bound read-write"),
	   "read-only volume bound rw: %s", err ? err->msg : "");
	manifest_free(m);
	kiln_error_release(&err);
	m = parse("onboot:\n  - name: a\n    image: alpine\n    additionalGids: [1, nosuch]\n", &err);
	ok(m && manifest_validate(m, &err) < 0 && str_has_prefix(err->msg, "m.yml:4:25: additionalGids: cannot find id: nosuch"),
	   "unknown gid name positioned: %s", err ? err->msg : "");
	manifest_free(m);
}

TEST(yaml_merge_keys)
{
	cleanup_error struct kiln_error *err = NULL;
	struct manifest *m = parse("onboot:\n  - &a {name: a, image: alpine, cwd: /a, net: host}\n"
				   "  - &b {name: b, image: alpine, cwd: /b, pid: host}\n"
				   "  - <<: [*a, *b]\n    name: c\n    net: new\n",
				   &err);
	ok(m != NULL, "parsed: %s", err ? err->msg : "");
	if (!m)
		return;
	const struct manifest_image *c = &m->onboot.v[2];
	is_str(c->name, "c", "explicit name wins");
	is_str(c->image, "alpine", "merged image");
	is_str(c->config.cwd, "/a", "first mapping of the list wins");
	is_str(c->config.pid, "host", "later mapping fills the rest");
	is_str(c->config.net, "new", "explicit key wins over merged");
	manifest_free(m);
	ok(strstr(parse_error("onboot:\n  - <<: foo\n    name: a\n    image: b\n"), "merge key (<<) takes a mapping") != NULL,
	   "scalar merge value refused");
	ok(strstr(parse_error("onboot:\n  - {name: a, image: b, \"<<\": {cwd: /x}}\n"), "unknown field \"<<\"") != NULL,
	   "a quoted << is an ordinary (unknown) key");
}
