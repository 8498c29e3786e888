/* config.json generation against golden files written from the reference
 * (tests/golden/README), and runtime.json's bundle mounts. */
#include <jansson.h>
#include <limits.h>

#include "manifest.h"
#include "spec.h"
#include "tap.h"
#include "util.h"

static char golden_dir[PATH_MAX];

__attribute__((constructor)) static void find_golden(void)
{
	const char *top = getenv("KILN_TOP");
	char cwd[PATH_MAX - 32];
	if (!top && getcwd(cwd, sizeof(cwd)))
		top = cwd;
	snprintf(golden_dir, sizeof(golden_dir), "%s/tests/golden", top ? top : ".");
	if (access(golden_dir, R_OK) == 0)
		return;
	/* Run from elsewhere: BUILD/tests/test_spec → the tree two levels up. */
	char exe[PATH_MAX - 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		for (int i = 0; i < 3; i++) {
			char *s = strrchr(exe, '/');
			if (s)
				*s = '\0';
		}
		snprintf(golden_dir, sizeof(golden_dir), "%s/tests/golden", exe);
	}
}

/* Generates the spec of container NAME of YAML with image config IMAGE_JSON. */
static char *generate(const char *yaml, const char *name, const char *image_json,
		      const char *bundle, const char *shared, char **runtime)
{
	cleanup_error struct kiln_error *err = NULL;
	cleanup_manifest struct manifest *m =
	    manifest_parse(yaml, strlen(yaml), "test.yml", ".", NULL, &err);
	if (!m)
		return xasprintf("PARSE %s", err->msg);
	const struct manifest_image *e = NULL;
	for (size_t i = 0; i < m->services.n; i++)
		if (strcmp(m->services.v[i].name, name) == 0)
			e = &m->services.v[i];
	for (size_t i = 0; i < m->onboot.n; i++)
		if (strcmp(m->onboot.v[i].name, name) == 0)
			e = &m->onboot.v[i];
	if (!e)
		return xstrdup("NO ENTRY");
	json_t *img = image_json ? json_loads(image_json, 0, NULL) : NULL;
	struct spec_input in = {m, e, img, bundle, shared};
	char *config = NULL;
	int r = spec_generate(&in, &config, runtime, &err);
	json_decref(img);
	if (r < 0)
		return xasprintf("ERR %s", err->msg);
	return config;
}

static void check_golden(const char *golden, const char *yaml, const char *name,
			 const char *image_json)
{
	cleanup_free char *got = generate(yaml, name, image_json, NULL, NULL, NULL);
	cleanup_free char *path = xasprintf("%s/%s.json", golden_dir, golden);
	cleanup_error struct kiln_error *err = NULL;
	cleanup_free char *want = read_file(path, 1 << 20, NULL, &err);
	if (!want) {
		ok(0, "read %s: %s", path, err->msg);
		return;
	}
	size_t wl = strlen(want);
	if (wl && want[wl - 1] == '\n')
		want[wl - 1] = '\0';
	is_str(got, want, golden);
}

#define LABEL(json) "{\"config\":{" json "}}"

TEST(golden_getty)
{
	check_golden(
	    "getty", "services:\n  - name: getty\n    image: linuxkit/getty:v1\n", "getty",
	    LABEL("\"Entrypoint\":[\"/usr/bin/rungetty.sh\"],"
		  "\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"],"
		  "\"Labels\":{\"org.mobyproject.config\":\"{\\\"pid\\\":\\\"host\\\","
		  "\\\"net\\\":\\\"host\\\",\\\"capabilities\\\":[\\\"all\\\"],\\\"binds\\\":["
		  "\\\"/etc/resolv.conf:/etc/resolv.conf\\\",\\\"/run:/run\\\",\\\"/tmp:/tmp\\\","
		  "\\\"/etc:/hostroot/etc\\\",\\\"/usr/bin/ctr:/usr/bin/ctr\\\","
		  "\\\"/usr/bin/runc:/usr/bin/runc\\\",\\\"/containers:/containers\\\","
		  "\\\"/var/log:/var/log\\\",\\\"/var/lib/containerd:/var/lib/containerd\\\","
		  "\\\"/dev:/dev\\\",\\\"/sys:/sys\\\"],\\\"devices\\\":["
		  "{\\\"path\\\":\\\"/dev/console\\\",\\\"type\\\":\\\"c\\\",\\\"major\\\":5,"
		  "\\\"minor\\\":1,\\\"mode\\\":\\\"0666\\\"},{\\\"path\\\":\\\"/dev/ttyS0\\\","
		  "\\\"type\\\":\\\"c\\\",\\\"major\\\":4,\\\"minor\\\":64,\\\"mode\\\":"
		  "\\\"0666\\\"}]}\"}"));
}

TEST(golden_dhcpcd)
{
	check_golden(
	    "dhcpcd",
	    "onboot:\n  - name: dhcpcd\n    image: linuxkit/dhcpcd:v1\n"
	    "    command: [\"/sbin/dhcpcd\", \"--nobackground\", \"-f\", \"/dhcpcd.conf\", "
	    "\"-1\"]\n",
	    "dhcpcd",
	    LABEL("\"Cmd\":[\"/sbin/dhcpcd\",\"--nobackground\",\"-f\",\"/dhcpcd.conf\"],"
		  "\"Labels\":{\"org.mobyproject.config\":\"{\\\"binds\\\":["
		  "\\\"/run/resolvconf:/etc\\\"],\\\"capabilities\\\":[\\\"CAP_NET_ADMIN\\\","
		  "\\\"CAP_NET_BIND_SERVICE\\\",\\\"CAP_NET_RAW\\\",\\\"CAP_SYS_ADMIN\\\"]}\"}"));
}

TEST(golden_sysctl)
{
	check_golden(
	    "sysctl", "onboot:\n  - name: sysctl\n    image: linuxkit/sysctl:v1\n", "sysctl",
	    LABEL("\"Cmd\":[\"/usr/bin/sysctl\"],\"Labels\":{\"org.mobyproject.config\":"
		  "\"{\\\"pid\\\":\\\"host\\\",\\\"readonly\\\":true,\\\"capabilities\\\":["
		  "\\\"CAP_SYS_ADMIN\\\",\\\"CAP_NET_ADMIN\\\"]}\"}"));
}

TEST(golden_format)
{
	check_golden(
	    "format", "onboot:\n  - name: format\n    image: linuxkit/format:v1\n", "format",
	    LABEL("\"Entrypoint\":[\"/usr/bin/format\"],\"Labels\":{\"org.mobyproject.config\":"
		  "\"{\\\"binds\\\":[\\\"/dev:/dev\\\"],\\\"devices\\\":[{\\\"path\\\":\\\"all\\\","
		  "\\\"type\\\":\\\"b\\\"}],\\\"capabilities\\\":[\\\"CAP_SYS_ADMIN\\\","
		  "\\\"CAP_MKNOD\\\"],\\\"net\\\":\\\"new\\\",\\\"ipc\\\":\\\"new\\\"}\"}"));
}

TEST(golden_mount)
{
	check_golden(
	    "mount", "onboot:\n  - name: mount\n    image: linuxkit/mount:v1\n", "mount",
	    LABEL("\"Entrypoint\":[\"/usr/bin/mountie\"],\"Labels\":{\"org.mobyproject.config\":"
		  "\"{\\\"binds\\\":[\\\"/dev:/dev\\\",\\\"/var:/var:rshared,rbind\\\","
		  "\\\"/:/hostroot\\\"],\\\"rootfsPropagation\\\":\\\"shared\\\","
		  "\\\"capabilities\\\":[\\\"CAP_SYS_ADMIN\\\"]}\"}"));
}

TEST(golden_rngd)
{
	check_golden(
	    "rngd", "onboot:\n  - name: rngd\n    image: linuxkit/rngd:v1\n", "rngd",
	    LABEL("\"Cmd\":[\"/sbin/rngd\",\"-f\"],\"Labels\":{\"org.mobyproject.config\":"
		  "\"{\\\"oomScoreAdj\\\":-800,\\\"readonly\\\":true,\\\"capabilities\\\":["
		  "\\\"CAP_SYS_ADMIN\\\"]}\"}"));
}

TEST(golden_merge)
{
	check_golden(
	    "merge",
	    "services:\n"
	    "  - name: db\n    image: x/db:1\n"
	    "  - name: app\n    image: x/app:1\n"
	    "    uid: app\n"
	    "    capabilities.add: [CAP_SYS_TIME]\n"
	    "    ambient: [CAP_NET_BIND_SERVICE]\n"
	    "    binds.add: [\"/b:/b:ro\"]\n"
	    "    env: [\"FROM=yaml\"]\n"
	    "    net: /run/netns/x\n"
	    "    uts: new\n"
	    "    hostname: merged\n"
	    "    tmpfs: [\"/run:size=10m,mode=0755\"]\n"
	    "    sysctl: {z.last: \"2\", a.first: \"1\"}\n"
	    "    rlimits: [\"nofile,1024,2048\"]\n"
	    "    noNewPrivileges: true\n"
	    "    maskedPaths: [/proc/kcore]\n"
	    "    annotations: {org.x: y}\n",
	    "app",
	    LABEL("\"Entrypoint\":[\"/bin/app\"],\"Cmd\":[\"--flag\"],\"Env\":[\"FROM=image\"],"
		  "\"WorkingDir\":\"/srv\",\"Labels\":{\"org.mobyproject.config\":"
		  "\"{\\\"capabilities\\\":[\\\"CAP_NET_RAW\\\"],\\\"binds\\\":[\\\"/a:/a\\\"],"
		  "\\\"env\\\":[\\\"FROM=label\\\"]}\"}"));
}

TEST(yaml_empty_list_removes_label_value)
{
	cleanup_free char *got = generate(
	    "onboot:\n  - name: s\n    image: x/s:1\n    capabilities: []\n    binds: []\n", "s",
	    LABEL("\"Labels\":{\"org.mobyproject.config\":\"{\\\"capabilities\\\":[\\\"all\\\"],"
		  "\\\"binds\\\":[\\\"/x:/x\\\"]}\"}"),
	    NULL, NULL, NULL);
	ok(strstr(got, "\"capabilities\": {}") != NULL, "no capabilities: %s", got);
	ok(strstr(got, "/x") == NULL, "label bind removed");
}

TEST(runtime_writable_and_shared)
{
	char *rt = NULL;
	cleanup_free char *c = generate("services:\n  - name: w\n    image: x/w:1\n", "w", NULL,
					"containers/services/w", NULL, &rt);
	ok(rt && strstr(rt, "\"lowerdir=/containers/services/w/lower\"") != NULL, "own lower: %s",
	   rt ? rt : "");
	ok(rt && strstr(rt, "\"upperdir=/containers/services/w/tmp/upper\"") != NULL, "upperdir");
	ok(rt && strstr(rt, "\"remount\"") != NULL, "tmp remounted private");
	free(rt);
	rt = NULL;
	cleanup_free char *c2 =
	    generate("services:\n  - name: w\n    image: x/w:1\n", "w", NULL,
		     "containers/services/w", "containers/services/v/lower", &rt);
	ok(rt && strstr(rt, "\"lowerdir=/containers/services/v/lower\"") != NULL,
	   "shared extraction used as lowerdir");
	free(rt);
	rt = NULL;
	cleanup_free char *c3 =
	    generate("services:\n  - name: r\n    image: x/r:1\n    readonly: true\n    runtime:\n"
		     "      mkdir: [/var/r]\n      namespace: other\n",
		     "r", NULL, "containers/services/r", NULL, &rt);
	ok(rt && strstr(rt, "\"source\": \"/containers/services/r/rootfs\"") != NULL,
	   "readonly: self bind: %s", rt ? rt : "");
	ok(rt && strstr(rt, "\"mkdir\"") && strstr(rt, "\"namespace\": \"other\""),
	   "runtime fields carried");
	free(rt);
}

TEST(volume_binds)
{
	const char *y = "volumes:\n  - name: vol\n    readonly: true\n"
			"services:\n  - name: s\n    image: x/s:1\n    binds: [\"vol:/data\"]\n";
	cleanup_free char *got = generate(y, "s", NULL, NULL, NULL, NULL);
	ok(str_has_prefix(got, "ERR ") && strstr(got, "read-only"), "rw bind of ro volume: %s",
	   got);
	const char *y2 =
	    "volumes:\n  - name: vol\n"
	    "services:\n  - name: s\n    image: x/s:1\n    binds: [\"vol:/data:ro\"]\n";
	cleanup_free char *got2 = generate(y2, "s", NULL, NULL, NULL, NULL);
	ok(strstr(got2, "\"/containers/volumes/vol/merged\"") != NULL, "volume source: %s", got2);
}

/* A bind `mounts` entry naming a volume gets the volume's merged directory
 * (reference §1.7), and a read-only volume needs "ro" before any "rw". */
TEST(volume_mounts)
{
	const char *head = "volumes:\n  - name: vol\n    readonly: true\n"
			   "services:\n  - name: s\n    image: x/s:1\n"
			   "    mounts:\n      - type: bind\n        source: vol\n"
			   "        destination: /data\n";
	cleanup_free char *y1 = xasprintf("%s        options: [ro, rbind]\n", head);
	cleanup_free char *got1 = generate(y1, "s", NULL, NULL, NULL, NULL);
	ok(strstr(got1, "\"source\": \"/containers/volumes/vol/merged\"") != NULL,
	   "volume mount source: %s", got1);
	cleanup_free char *y2 = xasprintf("%s        options: [rw, ro]\n", head);
	cleanup_free char *got2 = generate(y2, "s", NULL, NULL, NULL, NULL);
	ok(str_has_prefix(got2, "ERR ") && strstr(got2, "read-only"), "rw mount of ro volume: %s",
	   got2);
	cleanup_free char *got3 =
	    generate("services:\n  - name: s\n    image: x/s:1\n    mounts:\n      - type: bind\n"
		     "        source: vox\n        destination: /data\n",
		     "s", NULL, NULL, NULL, NULL);
	ok(str_has_prefix(got3, "ERR ") && strstr(got3, "volume vox not found"),
	   "unknown volume: %s", got3);
	cleanup_free char *got4 = generate(
	    "services:\n  - name: s\n    image: x/s:1\n    mounts:\n      - type: bind\n"
	    "        source: /abs\n        destination: /data\n",
	    "s", NULL, NULL, NULL, NULL);
	ok(strstr(got4, "\"source\": \"/abs\"") != NULL, "absolute source kept: %s", got4);
}
