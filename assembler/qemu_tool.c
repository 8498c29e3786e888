#include "qemu_tool.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* The last non-empty line of OUT (modified in place). */
static const char *last_line(char *out, size_t len)
{
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
		out[--len] = '\0';
	char *nl = strrchr(out, '\n');
	return nl ? nl + 1 : out;
}

int qemu_tool_run(const char *const argv[], struct kiln_error **err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return kiln_error_make(err, errno, "pipe");
	cleanup_close int rd = pipefd[0];
	cleanup_close int wr = pipefd[1];
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, wr, 1);
	posix_spawn_file_actions_adddup2(&fa, wr, 2);
	pid_t pid;
	int rc = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return kiln_error_make(err, rc, "run %s", argv[0]);
	close(steal_fd(&wr));
	struct kiln_error *rerr = NULL;
	size_t len = 0;
	cleanup_free char *out = read_fd(rd, 1 << 20, &len, &rerr);
	kiln_error_release(&rerr);
	int status;
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return kiln_error_make(err, errno, "wait for %s", argv[0]);
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	const char *why = out ? last_line(out, len) : "";
	if (WIFEXITED(status))
		return kiln_error_make(err, 0, "%s exited with status %d%s%s", argv[0],
				       WEXITSTATUS(status), *why ? ": " : "", why);
	return kiln_error_make(err, 0, "%s killed by signal %d", argv[0], WTERMSIG(status));
}
