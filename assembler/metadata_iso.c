#include "metadata_iso.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu_tool.h"
#include "util.h"

/* xorriso writes to a temp name next to OUT; renamed when complete. */
static int run_xorriso(const char *out, const char *label, const char *const *sources,
		       size_t n_sources, struct kiln_error **err)
{
	cleanup_free char *tmp = xasprintf("%s.tmp", out);
	unlink(tmp);
	const char *argv[16 + 8];
	size_t n = 0;
	argv[n++] = "xorriso";
	argv[n++] = "-no_rc";
	argv[n++] = "-as";
	argv[n++] = "mkisofs";
	argv[n++] = "-quiet";
	argv[n++] = "-o";
	argv[n++] = tmp;
	argv[n++] = "-V";
	argv[n++] = label;
	argv[n++] = "-J";
	argv[n++] = "-r";
	argv[n++] = "-graft-points";
	for (size_t i = 0; i < n_sources && n < ARRAY_SIZE(argv) - 1; i++)
		argv[n++] = sources[i];
	argv[n] = NULL;
	if (qemu_tool_run(argv, err) < 0) {
		unlink(tmp);
		return kiln_error_wrap(err, "make metadata ISO `%s`", out);
	}
	if (rename(tmp, out) < 0) {
		unlink(tmp);
		return kiln_error_make(err, errno, "rename `%s`", tmp);
	}
	return 0;
}

static char *make_tmpdir(const char *out, struct kiln_error **err)
{
	char *dir = xasprintf("%s.d.XXXXXX", out);
	if (mkdtemp(dir) == NULL) {
		kiln_error_make(err, errno, "mkdtemp `%s`", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

int metadata_iso_config(const char *out, const void *data, size_t len, struct kiln_error **err)
{
	cleanup_free char *dir = make_tmpdir(out, err);
	if (dir == NULL)
		return -1;
	cleanup_free char *file = path_join(dir, "config");
	int rc = write_file_atomic(file, data, len, 0644, err);
	if (rc == 0) {
		cleanup_free char *graft = xasprintf("config=%s", file);
		const char *src[] = {graft};
		rc = run_xorriso(out, "config", src, 1, err);
	}
	struct kiln_error *e = NULL;
	rm_rf(dir, &e);
	kiln_error_release(&e);
	return rc;
}

int metadata_iso_dir(const char *out, const char *label, const char *dir, struct kiln_error **err)
{
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return kiln_error_make(err, errno ? errno : ENOTDIR, "`%s`", dir);
	cleanup_free char *graft = xasprintf("/=%s", dir);
	const char *src[] = {graft};
	return run_xorriso(out, label, src, 1, err);
}

static int copy_file(const char *src, const char *dst, struct kiln_error **err)
{
	size_t len;
	cleanup_free char *data = read_file(src, 64u << 20, &len, err);
	if (data == NULL)
		return -1;
	return write_file_atomic(dst, data, len, 0644, err);
}

int metadata_iso_cidata(const char *out, const char *source, const char *instance_id,
			const char *hostname, struct kiln_error **err)
{
	struct stat st;
	if (stat(source, &st) < 0)
		return kiln_error_make(err, errno, "`%s`", source);
	cleanup_free char *dir = make_tmpdir(out, err);
	if (dir == NULL)
		return -1;
	int rc = 0;
	if (S_ISDIR(st.st_mode)) {
		cleanup_dir DIR *d = opendir(source);
		if (d == NULL)
			rc = kiln_error_make(err, errno, "open `%s`", source);
		for (struct dirent *de; rc == 0 && d && (de = readdir(d));) {
			if (de->d_name[0] == '.')
				continue;
			cleanup_free char *s = path_join(source, de->d_name);
			cleanup_free char *t = path_join(dir, de->d_name);
			struct stat fst;
			if (stat(s, &fst) == 0 && S_ISREG(fst.st_mode))
				rc = copy_file(s, t, err);
		}
	} else {
		cleanup_free char *t = path_join(dir, "user-data");
		rc = copy_file(source, t, err);
	}
	cleanup_free char *meta = path_join(dir, "meta-data");
	if (rc == 0 && access(meta, F_OK) != 0) {
		cleanup_free char *m = xasprintf("instance-id: %s\nlocal-hostname: %s\n",
						 instance_id, hostname ? hostname : instance_id);
		rc = write_file_atomic(meta, m, strlen(m), 0644, err);
	}
	if (rc == 0)
		rc = metadata_iso_dir(out, "cidata", dir, err);
	struct kiln_error *e = NULL;
	rm_rf(dir, &e);
	kiln_error_release(&e);
	return rc < 0 ? kiln_error_wrap(err, "cidata from `%s`", source) : 0;
}
