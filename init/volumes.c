/* LinuxKit's 005-volumes step: the manifest's `volumes:` as the build lays
 * them out, /containers/volumes/NAME/{lower,tmp,merged}, made usable before
 * /etc/init.d and the onboot containers run.  A volume with tmp/ is
 * read-write: a tmpfs on tmp/ holds the overlay's upper/ and work/, and
 * lower + upper are overlay-mounted on merged/.  A volume without tmp/ is
 * read-only: lower/ is bound on merged/ and the bind made read-only.
 * LinuxKit's volumeinit.go reads the layout the same way, but its builder
 * writes tmp/ for every volume (and its read-only branch passes "bind" as a
 * filesystem type without MS_BIND), so there a read-only volume ends up
 * writable at runtime; see docs/init.md. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "init.h"

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int volume_kind(const char *dir, const char *name, struct kiln_error **err)
{
	cleanup_free char *vol = path_join(dir, name);
	static const char *const needed[] = {"lower", "merged"};
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
		cleanup_free char *p = path_join(vol, needed[i]);
		if (!is_dir(p))
			return kiln_error_make(err, ENOENT, "no %s/ directory in %s", needed[i], vol);
	}
	cleanup_free char *tmp = path_join(vol, "tmp");
	struct stat st;
	if (lstat(tmp, &st) < 0)
		return VOLUME_RO;
	if (!S_ISDIR(st.st_mode))
		return kiln_error_make(err, ENOTDIR, "%s is not a directory", tmp);
	return VOLUME_RW;
}

static int mount_rw(const char *vol, struct kiln_error **err)
{
	cleanup_free char *lower = path_join(vol, "lower");
	cleanup_free char *tmp = path_join(vol, "tmp");
	cleanup_free char *upper = path_join(tmp, "upper");
	cleanup_free char *work = path_join(tmp, "work");
	cleanup_free char *merged = path_join(vol, "merged");
	if (system_mount("tmpfs", tmp, "tmpfs", MS_RELATIME, "mode=755") < 0)
		return kiln_error_make(err, errno, "tmpfs on %s", tmp);
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0755) < 0) {
		kiln_error_make(err, errno, "mkdir %s/{upper,work}", tmp);
		umount2(tmp, MNT_DETACH);
		return -1;
	}
	cleanup_free char *data =
	    xasprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work);
	if (system_mount("overlay", merged, "overlay", MS_RELATIME, data) < 0) {
		kiln_error_make(err, errno, "overlay on %s", merged);
		umount2(tmp, MNT_DETACH);
		return -1;
	}
	return 0;
}

static int mount_ro(const char *vol, struct kiln_error **err)
{
	cleanup_free char *lower = path_join(vol, "lower");
	cleanup_free char *merged = path_join(vol, "merged");
	if (mount(lower, merged, NULL, MS_BIND | MS_REC, NULL) < 0)
		return kiln_error_make(err, errno, "bind %s on %s", lower, merged);
	/* A bind takes its flags from the remount, not the first call. */
	if (mount(NULL, merged, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0) {
		kiln_error_make(err, errno, "remount %s read-only", merged);
		umount2(merged, MNT_DETACH);
		return -1;
	}
	return 0;
}

int volume_mount(const char *dir, const char *name, struct kiln_error **err)
{
	int kind = volume_kind(dir, name, err);
	if (kind < 0)
		return -1;
	cleanup_free char *vol = path_join(dir, name);
	if ((kind == VOLUME_RW ? mount_rw(vol, err) : mount_ro(vol, err)) < 0)
		return -1;
	return kind;
}

int volumes_mount_all(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	if (n < 0)
		return 0; /* no volumes in the manifest */
	int failed = 0;
	for (int i = 0; i < n; i++) {
		const char *name = names[i]->d_name;
		cleanup_free char *vol = path_join(dir, name);
		if (name[0] == '.' || !is_dir(vol)) {
			free(names[i]);
			continue;
		}
		double t0 = init_uptime();
		struct kiln_error *err = NULL;
		int kind = volume_mount(dir, name, &err);
		if (kind < 0) {
			init_log("volume %s: FAILED: %s", name, err ? err->msg : "unknown error");
			kiln_error_release(&err);
			failed++;
		} else if (kind == VOLUME_RW) {
			init_log("volume %s: read-write, overlay of lower/ and a tmpfs on %s/merged "
				 "(%.3f s)",
				 name, vol, init_uptime() - t0);
		} else {
			init_log("volume %s: read-only (no tmp/), lower/ bound read-only on %s/merged",
				 name, vol);
		}
		free(names[i]);
	}
	free(names);
	return failed;
}
