/* Whether KVM really runs a guest here.  /dev/kvm can exist and accept
 * KVM_CREATE_VM while every guest that leaves real mode hangs (nested
 * virtualisation without the features the host claims), so the only honest
 * test is to run one: a 64 KiB firmware image that goes from the reset vector
 * to protected mode and long mode, as a kernel does, then writes to QEMU's
 * isa-debug-exit port.  QEMU exits with status (0x10 << 1) | 1 = 33 when the
 * guest got there. */
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

extern char **environ;

/* Assembled from (GNU as, linked at 0, objcopy -O binary):
 *	.code16                      # at 0xF0000 (the ROM's low alias)
 *	cli; cs lgdtl gdtr
 *	mov %cr0,%eax; or $1,%al; mov %eax,%cr0
 *	ljmpl $0x08, $(0xF0000 + pm32)
 *	.code32
 * pm32: mov $0x10,%ax; mov %ax,%ds; mov %ax,%es; mov %ax,%ss
 *	zero 12 KiB at 0x1000; PML4[0]=0x2003, PDPT[0]=0x3003, PD[0]=0x83 (2 MiB)
 *	mov $0x1000,%eax; mov %eax,%cr3; cr4 |= PAE; EFER |= LME; cr0 |= PG
 *	ljmpl $0x18, $(0xF0000 + lm64)
 *	.code64
 * lm64: mov $0x10,%al; out %al,$0xf4; 1: hlt; jmp 1b
 * gdt: null, code32 0x00cf9a000000ffff, data 0x00cf92000000ffff, code64 0x00af9a000000ffff
 * gdtr: .word 31; .long 0xF0000 + gdt
 * and at 0xFFF0, the reset vector: ljmp $0xf000, $0 */
static const unsigned char probe_code[] = {
    0xfa, 0x2e, 0x66, 0x0f, 0x01, 0x16, 0xa8, 0x00, 0x0f, 0x20, 0xc0, 0x0c, 0x01, 0x0f, 0x22, 0xc0,
    0x66, 0xea, 0x18, 0x00, 0x0f, 0x00, 0x08, 0x00, 0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0,
    0x8e, 0xd0, 0xbf, 0x00, 0x10, 0x00, 0x00, 0x31, 0xc0, 0xb9, 0x00, 0x0c, 0x00, 0x00, 0xf3, 0xab,
    0xc7, 0x05, 0x00, 0x10, 0x00, 0x00, 0x03, 0x20, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x20, 0x00, 0x00,
    0x03, 0x30, 0x00, 0x00, 0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0x83, 0x00, 0x00, 0x00, 0xb8, 0x00,
    0x10, 0x00, 0x00, 0x0f, 0x22, 0xd8, 0x0f, 0x20, 0xe0, 0x83, 0xc8, 0x20, 0x0f, 0x22, 0xe0, 0xb9,
    0x80, 0x00, 0x00, 0xc0, 0x0f, 0x32, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x0f, 0x30, 0x0f, 0x20, 0xc0,
    0x0d, 0x00, 0x00, 0x00, 0x80, 0x0f, 0x22, 0xc0, 0xea, 0x7f, 0x00, 0x0f, 0x00, 0x18, 0x00, 0xb0,
    0x10, 0xe6, 0xf4, 0xf4, 0xeb, 0xfd, 0x66, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xcf, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x92, 0xcf, 0x00,
    0xff, 0xff, 0x00, 0x00, 0x00, 0x9a, 0xaf, 0x00, 0x1f, 0x00, 0x88, 0x00, 0x0f,
};
static const unsigned char probe_reset[] = {0xea, 0x00, 0x00, 0x00, 0xf0};
#define PROBE_ROM_SIZE	  65536
#define PROBE_EXIT_STATUS 33

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the probe once.  1: KVM ran it; 0: it did not (hang, error). */
static int probe_run(const char *qemu_bin, int timeout_ms, struct kiln_error **err)
{
	char dir_template[] = "/tmp/kiln-kvm-probe-XXXXXX";
	const char *tmpdir = getenv("TMPDIR");
	cleanup_free char *dir = tmpdir && *tmpdir ? xasprintf("%s/kiln-kvm-probe-XXXXXX", tmpdir)
						   : xstrdup(dir_template);
	if (mkdtemp(dir) == NULL)
		return kiln_error_make(err, errno, "mkdtemp `%s`", dir);
	cleanup_free char *rom_path = path_join(dir, "probe.rom");
	cleanup_free unsigned char *rom = xcalloc(1, PROBE_ROM_SIZE);
	memset(rom, 0xf4, PROBE_ROM_SIZE); /* hlt everywhere else */
	memcpy(rom, probe_code, sizeof probe_code);
	memcpy(rom + PROBE_ROM_SIZE - 16, probe_reset, sizeof probe_reset);
	int result = -1;
	if (write_file_atomic(rom_path, rom, PROBE_ROM_SIZE, 0644, err) < 0)
		goto out;

	const char *argv[] = {qemu_bin,
			      "-machine",
			      "pc,accel=kvm",
			      "-bios",
			      rom_path,
			      "-nodefaults",
			      "-no-user-config",
			      "-display",
			      "none",
			      "-m",
			      "16",
			      "-device",
			      "isa-debug-exit,iobase=0xf4,iosize=0x04",
			      NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rc = posix_spawnp(&pid, qemu_bin, &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0) {
		kiln_error_make(err, rc, "run %s", qemu_bin);
		goto out;
	}
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	double deadline = now_s() + timeout_ms / 1000.0;
	int status = 0;
	bool exited = false;
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			exited = true;
			break;
		}
		double left = deadline - now_s();
		if (left <= 0)
			break;
		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};
			poll(&p, 1, (int)(left * 1000) + 1);
		} else {
			usleep(10000);
		}
	}
	if (pidfd >= 0)
		close(pidfd);
	if (!exited) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		result = 0;
	} else {
		result = WIFEXITED(status) && WEXITSTATUS(status) == PROBE_EXIT_STATUS;
	}
out:
	unlink(rom_path);
	rmdir(dir);
	return result;
}

/* The cache key: boot id (a reboot may change KVM) and the QEMU binary. */
static char *probe_key(const char *qemu_bin)
{
	struct kiln_error *e = NULL;
	char *boot = read_file("/proc/sys/kernel/random/boot_id", 256, NULL, &e);
	kiln_error_release(&e);
	if (boot)
		boot[strcspn(boot, "\n")] = '\0';
	char *key = xasprintf("boot=%s qemu=%s\n", boot ? boot : "?", qemu_bin);
	free(boot);
	return key;
}

int qemu_kvm_probe(const char *qemu_bin, const char *cache_dir, int timeout_ms,
		   struct kiln_error **err)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return 0;
	close(fd);
	cleanup_free char *key = probe_key(qemu_bin);
	cleanup_free char *cache = cache_dir ? path_join(cache_dir, "kvm-probe") : NULL;
	if (cache) {
		struct kiln_error *e = NULL;
		cleanup_free char *c = read_file(cache, 4096, NULL, &e);
		kiln_error_release(&e);
		if (c && str_has_prefix(c, key)) {
			const char *answer = c + strlen(key);
			if (str_has_prefix(answer, "kvm"))
				return 1;
			if (str_has_prefix(answer, "tcg"))
				return 0;
		}
	}
	int r = probe_run(qemu_bin, timeout_ms, err);
	if (r < 0)
		return -1;
	if (cache) {
		struct kiln_error *e = NULL;
		cleanup_free char *line = xasprintf("%s%s\n", key, r ? "kvm" : "tcg");
		if (mkdir_p(cache_dir, 0700, &e) == 0)
			write_file_atomic(cache, line, strlen(line), 0600, &e);
		kiln_error_release(&e); /* a cache that cannot be written is no error */
	}
	return r;
}

const char *qemu_default_accel(const char *qemu_bin, const char *cache_dir)
{
	const char *env = getenv("KILN_QEMU_ACCEL");
	if (env && *env)
		return env;
	struct kiln_error *e = NULL;
	int r = qemu_kvm_probe(qemu_bin, cache_dir, 1500, &e);
	kiln_error_release(&e);
	return r == 1 ? "kvm" : "tcg";
}
