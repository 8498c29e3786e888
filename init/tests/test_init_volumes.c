/* Unit tests for init/volumes.c: how a volume's layout is read, and (as
 * root, in a private mount namespace) the mounts themselves. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "init.h"
#include "tap.h"

/* Lays out volumes/NAME as the build does; LOWER_FILE (may be NULL) is a
 * file put in lower/ with the contents "from-lower". */
static void layout(const char *name, bool with_tmp, const char *lower_file)
{
	cleanup_free char *lower = xasprintf("volumes/%s/lower", name);
	cleanup_free char *merged = xasprintf("volumes/%s/merged", name);
	mkdir_p(lower, 0755, NULL);
	mkdir_p(merged, 0755, NULL);
	if (with_tmp) {
		cleanup_free char *tmp = xasprintf("volumes/%s/tmp", name);
		mkdir_p(tmp, 0755, NULL);
	}
	if (lower_file) {
		cleanup_free char *f = xasprintf("%s/%s", lower, lower_file);
		write_file_atomic(f, "from-lower", 10, 0644, NULL);
	}
}

static bool error_says(int r, struct kiln_error **err, const char *what)
{
	bool good = r < 0 && *err && strstr((*err)->msg, what);
	if (*err && !good)
		printf("# error: %s\n", (*err)->msg);
	kiln_error_release(err);
	return good;
}

TEST(kind_from_layout)
{
	layout("rw", true, NULL);
	layout("ro", false, NULL);
	struct kiln_error *err = NULL;
	is_int(volume_kind("volumes", "rw", &err), VOLUME_RW, "tmp/ present: read-write");
	is_int(volume_kind("volumes", "ro", &err), VOLUME_RO, "no tmp/: read-only");
	ok(err == NULL, "no error");
}

TEST(kind_rejects_broken_layouts)
{
	struct kiln_error *err = NULL;
	mkdir_p("volumes/nolower/merged", 0755, NULL);
	ok(error_says(volume_kind("volumes", "nolower", &err), &err, "no lower/"),
	   "missing lower/ is an error naming it");
	mkdir_p("volumes/nomerged/lower", 0755, NULL);
	mkdir_p("volumes/nomerged/tmp", 0755, NULL);
	ok(error_says(volume_kind("volumes", "nomerged", &err), &err, "no merged/"),
	   "missing merged/ is an error naming it");
	layout("tmpfile", false, NULL);
	write_file_atomic("volumes/tmpfile/tmp", "x", 1, 0644, NULL);
	ok(error_says(volume_kind("volumes", "tmpfile", &err), &err, "not a directory"),
	   "a tmp that is a file is an error");
	ok(error_says(volume_kind("volumes", "absent", &err), &err, "absent"),
	   "an absent volume is an error naming it");
}

static bool file_is(const char *path, const char *want)
{
	cleanup_free char *got = read_file(path, 4096, NULL, NULL);
	return got && strcmp(got, want) == 0;
}

static bool mounted_read_only(const char *path)
{
	struct statvfs sv;
	return statvfs(path, &sv) == 0 && (sv.f_flag & ST_RDONLY);
}

/* In a child with its own mount namespace (the host's mounts untouched):
 * mounts the layout and checks it from the inside.  Returns the child's
 * number of failed checks, or -1 when mounting is not permitted here. */
static int in_private_namespace(void (*fn)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
			_exit(100);
		fn();
		fflush(stdout);
		_exit(tap_case_failed > 99 ? 99 : tap_case_failed);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
		return 1;
	return WEXITSTATUS(status) == 100 ? -1 : WEXITSTATUS(status);
}

static void mount_all_and_check(void)
{
	cleanup_free char *cwd = getcwd(NULL, 0);
	cleanup_free char *dir = path_join(cwd, "volumes");
	is_int(volumes_mount_all(dir), 1, "one volume failed (broken)");

	/* read-write: lower's file visible, writes land in tmp/upper only */
	ok(file_is("volumes/rw/merged/seed", "from-lower"), "rw: lower's file in merged/");
	ok(write_file_atomic("volumes/rw/merged/new", "written", 7, 0644, NULL) == 0,
	   "rw: merged/ is writable");
	ok(file_is("volumes/rw/tmp/upper/new", "written"), "rw: the write is in tmp/upper");
	ok(access("volumes/rw/lower/new", F_OK) < 0, "rw: lower/ is untouched");
	ok(!mounted_read_only("volumes/rw/merged"), "rw: merged/ is not read-only");

	/* read-only: lower's file visible, every write refused */
	ok(file_is("volumes/ro/merged/seed", "from-lower"), "ro: lower's file in merged/");
	ok(mounted_read_only("volumes/ro/merged"), "ro: merged/ is a read-only mount");
	int fd = open("volumes/ro/merged/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	ok(fd < 0 && errno == EROFS, "ro: creating a file fails with EROFS (%s)",
	   fd < 0 ? strerror(errno) : "created");
	if (fd >= 0)
		close(fd);
	ok(access("volumes/ro/lower/new", F_OK) < 0, "ro: nothing reached lower/");
	ok(write_file_atomic("volumes/ro/lower/direct", "x", 1, 0644, NULL) == 0,
	   "ro: lower/ itself stays writable (only the bind is read-only)");

	/* blank read-write volume: empty and writable */
	ok(rmdir("volumes/blank/merged/nothing") < 0 && errno == ENOENT, "blank: empty");
	ok(mkdir("volumes/blank/merged/d", 0755) == 0, "blank: a directory can be made");
}

TEST(mounts_rw_overlay_and_ro_bind)
{
	if (geteuid() != 0)
		skip("needs root to mount");
	layout("rw", true, "seed");
	layout("ro", false, "seed");
	layout("blank", true, NULL);
	mkdir_p("volumes/broken/lower", 0755, NULL); /* no merged/ */
	write_file_atomic("volumes/not-a-volume", "x", 1, 0644, NULL);
	int r = in_private_namespace(mount_all_and_check);
	if (r < 0)
		skip("cannot make a private mount namespace here");
	is_int(r, 0, "checks inside the namespace (their failures are printed above)");
	ok(access("volumes/rw/tmp/upper", F_OK) < 0, "the host's view has no tmpfs on tmp/");
}

TEST(missing_dir_is_no_volumes)
{
	is_int(volumes_mount_all("no-such-dir"), 0, "nothing to do, nothing failed");
}
