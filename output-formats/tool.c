/* Running the external tools the design names (xorriso, mkfs.fat, mtools,
 * syslinux, mksquashfs, mkfs.erofs) from argument vectors. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "strbuf.h"
#include "util.h"
#include "writer.h"

extern char **environ;

static bool env_overridden(const char *kv)
{
	static const char *const ours[] = {
	    "LC_ALL=", "TZ=", "SOURCE_DATE_EPOCH=", "MTOOLS_SKIP_CHECK=", "LANG="};
	for (size_t i = 0; i < ARRAY_SIZE(ours); i++)
		if (str_has_prefix(kv, ours[i]))
			return true;
	return false;
}

/* Reads back a memfd the child wrote.  Caller frees. */
static char *memfd_slurp(int fd)
{
	struct kiln_error *ignored = NULL;
	if (lseek(fd, 0, SEEK_SET) < 0)
		return xstrdup("");
	char *s = read_fd(fd, 64 * MIB, NULL, &ignored);
	if (!s) {
		kiln_error_release(&ignored);
		return xstrdup("");
	}
	return s;
}

int tool_start(const char *const argv[], int64_t epoch, int stdin_fd, struct tool_proc *proc,
	       struct kiln_error **err)
{
	proc->pid = -1;
	proc->name = argv[0];
	proc->errfd = memfd_create("kiln-tool-stderr", MFD_CLOEXEC);
	if (proc->errfd < 0)
		return kiln_error_make(err, errno, "run %s: memfd", argv[0]);
	cleanup_close int outfd = proc->outfd >= 0 ? -1 : open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (proc->outfd < 0 && outfd < 0)
		return kiln_error_make(err, errno, "open /dev/null");

	size_t n = 0;
	while (environ[n])
		n++;
	cleanup_free char **env = xcalloc(n + 6, sizeof(*env));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!env_overridden(environ[i]))
			env[k++] = environ[i];
	cleanup_free char *sde = xasprintf("SOURCE_DATE_EPOCH=%lld", (long long)epoch);
	env[k++] = (char *)"LC_ALL=C";
	env[k++] = (char *)"TZ=UTC";
	env[k++] = (char *)"MTOOLS_SKIP_CHECK=1";
	env[k++] = sde;
	env[k] = NULL;

	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (stdin_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, stdin_fd, 0);
	else
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, proc->outfd >= 0 ? proc->outfd : outfd, 1);
	posix_spawn_file_actions_adddup2(&fa, proc->errfd, 2);
	if (kiln_log_level >= LOG_DEBUG) {
		cleanup_strbuf struct strbuf sb = STRBUF_INIT;
		for (size_t i = 0; argv[i]; i++)
			strbuf_printf(&sb, "%s%s", i ? " " : "", argv[i]);
		log_debug("run: %s", sb.buf);
	}
	int rc = posix_spawnp(&proc->pid, argv[0], &fa, NULL, (char *const *)argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		proc->pid = -1;
		close(proc->errfd);
		proc->errfd = -1;
		return kiln_error_make(err, rc, "run %s", argv[0]);
	}
	return 0;
}

int tool_wait(struct tool_proc *proc, struct kiln_error **err)
{
	int status;
	cleanup_close int errfd = proc->errfd;
	proc->errfd = -1;
	while (waitpid(proc->pid, &status, 0) < 0)
		if (errno != EINTR)
			return kiln_error_make(err, errno, "wait for %s", proc->name);
	proc->pid = -1;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		cleanup_free char *msg = memfd_slurp(errfd);
		size_t len = strlen(msg);
		while (len && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
			msg[--len] = '\0';
		const char *tail = len > 400 ? msg + len - 400 : msg;
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
		if (WIFEXITED(status))
			return kiln_error_make(err, 0, "%s exited with status %d: %s", proc->name,
					       WEXITSTATUS(status), tail);
		return kiln_error_make(err, 0, "%s killed by signal %d: %s", proc->name,
				       WTERMSIG(status), tail);
	}
	return 0;
}

int tool_run(const char *const argv[], int64_t epoch, char **out, struct kiln_error **err)
{
	cleanup_close int outfd = -1;
	if (out) {
		outfd = memfd_create("kiln-tool-stdout", MFD_CLOEXEC);
		if (outfd < 0)
			return kiln_error_make(err, errno, "run %s: memfd", argv[0]);
	}
	struct tool_proc proc = {.outfd = outfd};
	if (tool_start(argv, epoch, -1, &proc, err) < 0 || tool_wait(&proc, err) < 0)
		return -1;
	if (out)
		*out = memfd_slurp(outfd);
	return 0;
}
