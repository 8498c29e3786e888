/* `kiln run qemu`: what to boot, how to boot it, and the supervisor that
 * watches the serial console.
 *
 * The pieces, in the order cmd_run.c uses them:
 *   qemu_detect()        what PATH is (LinuxKit's rules: NAME-kernel prefix,
 *                        .iso, a disk image whose format comes from its magic,
 *                        a .efi unified kernel image)
 *   qemu_parse_*()       the option grammars (--disk, --publish, --networking)
 *   qemu_prepare()       side effects in the state dir: MAC address, missing
 *                        disks (qemu-img create), a writable OVMF vars copy,
 *                        the ESP image holding a UKI
 *   qemu_build_argv()    the qemu-system command line (pure; unit-tested)
 *   qemu_accel_probe()   whether KVM really runs a guest here (cached)
 *   qemu_supervise()     runs QEMU with its console on a pty, echoes, logs,
 *                        matches --until, enforces --timeout, and powers the
 *                        VM down through QMP.
 * Everything returns -1/NULL with *err set on failure (STYLE.md §1). */
#ifndef KILN_QEMU_H
#define KILN_QEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

enum qemu_boot {
	QEMU_BOOT_AUTO = 0,
	QEMU_BOOT_KERNEL,   /* NAME-kernel [+ NAME-initrd.img, NAME-cmdline] */
	QEMU_BOOT_SQUASHFS, /* NAME-kernel + NAME-squashfs.img|NAME-erofs.img as root disk */
	QEMU_BOOT_ISO,	    /* a CD-ROM image, -boot d */
	QEMU_BOOT_DISK,	    /* a raw/qcow2/vhd/vmdk disk image */
	QEMU_BOOT_UKI,	    /* a .efi unified kernel image, booted by OVMF from an ESP */
};

/* Returns "kernel", "squashfs", "iso", "disk", "uki" or "auto". */
const char *qemu_boot_name(enum qemu_boot kind);

/* What PATH turned out to be.  Every string is heap, owned by the struct,
 * released by qemu_target_release(). */
struct qemu_target {
	enum qemu_boot kind;
	char *name; /* the prefix: NAME for NAME-kernel, the file name minus extension otherwise */
	char *kernel;	   /* KERNEL, SQUASHFS */
	char *initrd;	   /* KERNEL, SQUASHFS: NULL when there is none */
	char *cmdline;	   /* KERNEL, SQUASHFS: contents of NAME-cmdline (trimmed), or NULL */
	char *rootfs;	   /* SQUASHFS: the root filesystem image */
	char *image;	   /* ISO, DISK, UKI: the file */
	char *disk_format; /* DISK: raw, qcow2, vpc, vmdk */
	bool uefi;	   /* the name says -efi (NAME-efi.img, -efi.qcow2, -efi.iso) or a UKI */
};

void qemu_target_release(struct qemu_target *t);

/* Decides what PATH is.  FORCE (not AUTO) skips the guessing: KERNEL and
 * SQUASHFS take a prefix, ISO and DISK and UKI a file.  Fills *OUT. */
int qemu_detect(const char *path, enum qemu_boot force, struct qemu_target *out,
		struct kiln_error **err);

/* The QEMU format of the disk image at PATH from its magic bytes: "qcow2"
 * ("QFI\xfb"), "vmdk" ("KDMV"), "vpc" ("conectix" at the start or in the
 * 512-byte footer) or "raw".  Returns a static string, NULL on I/O error. */
const char *qemu_disk_format(const char *path, struct kiln_error **err);

/* --disk [file=]PATH[,size=N[G|M]][,format=F][,if=ide|virtio|none]. */
struct qemu_disk {
	char *path;	  /* heap; NULL when only a size was given (prepare names it) */
	uint64_t size_mb; /* 0: not given */
	char *format; /* heap or NULL: detected from the file, or qcow2 when created with a size */
	char *interface; /* heap or NULL: QEMU's default (ide, which is AHCI on q35) */
};
int qemu_parse_disk(const char *spec, struct qemu_disk *out, struct kiln_error **err);
void qemu_disk_release(struct qemu_disk *d);

/* --publish [ADDR:]HOST:GUEST[/tcp|/udp] (user networking's hostfwd). */
struct qemu_publish {
	bool udp;
	unsigned host_port;
	unsigned guest_port;
};
int qemu_parse_publish(const char *spec, struct qemu_publish *out, struct kiln_error **err);

/* --networking: each occurrence adds one NIC.
 *   user | default          QEMU user networking (SLIRP, --publish applies)
 *   none                    no NIC at all (only alone)
 *   socket-listen=[H:]PORT  a point-to-point link; this VM waits
 *   socket-connect=[H:]PORT the other end (H defaults to 127.0.0.1)
 *   mcast=ADDR:PORT         a shared segment for any number of VMs */
enum qemu_net_kind {
	QEMU_NET_USER,
	QEMU_NET_NONE,
	QEMU_NET_LISTEN,
	QEMU_NET_CONNECT,
	QEMU_NET_MCAST,
};
struct qemu_net {
	enum qemu_net_kind kind;
	char *addr; /* heap: "H:PORT" for LISTEN/CONNECT/MCAST, NULL otherwise */
};
int qemu_parse_networking(const char *spec, struct qemu_net *out, struct kiln_error **err);
void qemu_net_release(struct qemu_net *n);

/* Everything the command line is made from.  The arrays and strings are
 * borrowed: the caller owns them and keeps them alive while the config is
 * used. */
struct qemu_config {
	const char *qemu_bin; /* NULL: qemu-system-x86_64 */
	const char *accel;    /* "kvm", "tcg", ... */
	unsigned cpus;	      /* 0: 1 */
	unsigned mem_mb;      /* 0: 1024 */
	bool uefi;
	const char *fw; /* combined firmware (pflash unit 0, writable copy) or CODE (read-only) */
	const char *fw_vars; /* NULL: combined firmware; else the writable VARS copy (unit 1) */
	bool gui;
	bool no_reboot;
	const struct qemu_target *target;
	const struct qemu_disk *disks;
	size_t n_disks;
	const struct qemu_net *nets; /* n_nets == 0: one user NIC */
	size_t n_nets;
	const char *const *macs; /* one per NIC (prepare makes them) */
	const struct qemu_publish *publish;
	size_t n_publish;
	const char *const *cdroms; /* extra read-only CD-ROMs (metadata ISOs) */
	size_t n_cdroms;
	const char *const *devices; /* extra -device ARG */
	size_t n_devices;
	const char *const *extra_args; /* appended verbatim (--qemu-arg) */
	size_t n_extra_args;
	const char *cmdline_append;
	const char *esp_image; /* UKI: the FAT image holding EFI/BOOT/BOOTX64.EFI */
	const char *pidfile;
	const char *qmp_socket;	    /* kiln's own QMP socket, NULL: none */
	const char *monitor_socket; /* a human monitor for the user, NULL: none */
	const char *uuid;	    /* NULL: none */
};

/* Builds the qemu-system argument vector from CFG.  Returns a NULL-terminated
 * heap vector of heap strings; free it with qemu_argv_free(). */
char **qemu_build_argv(const struct qemu_config *cfg, struct kiln_error **err);
void qemu_argv_free(char **argv);

/* A random locally administered unicast MAC "02:xx:xx:xx:xx:xx"; heap. */
char *qemu_random_mac(void);

/* The state functions below take DRY_RUN: then they only name what they
 * would make and write nothing (kiln run --dry-run touches nothing). */

/* Reads STATE/FILE (a MAC written by a previous run) or writes a new random
 * one there (DRY_RUN: a random one, not kept).  Returns the MAC (heap). */
char *qemu_state_mac(const char *state_dir, const char *file, bool dry_run,
		     struct kiln_error **err);

/* Creates DISK's file with `qemu-img create -f FORMAT PATH SIZEM` when it does
 * not exist; fills in disk->format (from the magic when it exists).  When
 * disk->path is NULL it becomes STATE/disk<INDEX>.img. */
int qemu_disk_prepare(struct qemu_disk *disk, const char *state_dir, size_t index, bool dry_run,
		      struct kiln_error **err);

/* Makes STATE/boot-overlay.qcow2 (once): a qcow2 overlay whose backing
 * file is IMAGE (FORMAT), so several VMs boot one image and each keeps its
 * own writes.  Returns its path (heap). */
char *qemu_make_overlay(const char *image, const char *format, const char *state_dir, bool dry_run,
			struct kiln_error **err);

/* Makes STATE/esp.img: a FAT image holding UKI as EFI/BOOT/BOOTX64.EFI
 * (mkfs.fat + mtools).  Returns its path (heap). */
char *qemu_make_esp(const char *uki, const char *state_dir, bool dry_run, struct kiln_error **err);

/* Picks the UEFI firmware.  FW given: a combined image, copied once to
 * STATE/fw.fd (so NVRAM writes persist and the original is untouched), or a
 * CODE image when FW_VARS is given (then VARS is copied to STATE).  FW NULL:
 * Debian's split OVMF_CODE.fd + a copy of OVMF_VARS.fd, else
 * /usr/share/ovmf/OVMF.fd.  *CODE_OUT and *VARS_OUT (heap; VARS may be NULL
 * for a combined image) are what goes on the command line. */
int qemu_firmware_prepare(const char *fw, const char *fw_vars, const char *state_dir, bool dry_run,
			  char **code_out, char **vars_out, struct kiln_error **err);

/* Whether KVM really runs a guest: runs QEMU_BIN with -accel kvm on a 64 KB
 * firmware image (generated) that switches to long mode and writes to the
 * isa-debug-exit port, with a timeout of TIMEOUT_MS.  The answer is cached
 * in CACHE_DIR (when not NULL) keyed by the boot id and the QEMU binary.
 * Returns 1 (usable), 0 (not usable), -1 on error. */
int qemu_kvm_probe(const char *qemu_bin, const char *cache_dir, int timeout_ms,
		   struct kiln_error **err);

/* The default accelerator: $KILN_QEMU_ACCEL, else "kvm" when the probe says
 * it works, else "tcg".  Returns a static string. */
const char *qemu_default_accel(const char *qemu_bin, const char *cache_dir);

/* Sends one QMP command ("system_powerdown", "quit", ...) through the QMP
 * socket at PATH: greeting, qmp_capabilities, the command, its reply. */
int qemu_qmp_command(const char *path, const char *command, int timeout_ms,
		     struct kiln_error **err);

/* What to do with the VM once --until matched. */
enum qemu_then {
	QEMU_THEN_KILL = 0,  /* SIGTERM (then SIGKILL) QEMU */
	QEMU_THEN_POWERDOWN, /* QMP system_powerdown; wait for the guest to power off */
	QEMU_THEN_CONTINUE,  /* keep running and echoing until the VM exits (or --timeout) */
};

struct qemu_supervise_opts {
	char *const *argv;   /* the qemu command line */
	const char *until;   /* POSIX ERE matched against each console line, or NULL */
	const char *fail_on; /* POSIX ERE: a match ends the run as a failure, or NULL */
	enum qemu_then then;
	unsigned timeout_ms;	       /* 0: none.  For the match (or, without --until, the run) */
	unsigned powerdown_timeout_ms; /* how long --then powerdown waits */
	int console_log_fd;	       /* -1: none; gets every console byte */
	int echo_fd;		       /* -1: none; gets every console byte (stdout) */
	int input_fd;		/* -1: none; bytes forwarded to the console (a TTY in raw mode) */
	int signal_fd;		/* -1: none; a signalfd: WINCH resizes, others stop QEMU */
	const char *qmp_socket; /* for QEMU_THEN_POWERDOWN, and to quit QEMU cleanly */
};

enum qemu_outcome {
	QEMU_MATCHED,		/* --until matched (and the --then action went well) */
	QEMU_EXITED,		/* QEMU exited by itself (no --until, or before a match) */
	QEMU_TIMED_OUT,		/* --timeout reached */
	QEMU_FAILED_MATCH,	/* --fail-on matched */
	QEMU_POWERDOWN_TIMEOUT, /* matched, but the guest ignored system_powerdown */
	QEMU_INTERRUPTED,	/* a signal stopped us */
};

struct qemu_result {
	enum qemu_outcome outcome;
	int exit_status;	 /* QEMU's exit status (-1 killed by a signal or by us) */
	double elapsed_s;	 /* from start to the outcome */
	double match_s;		 /* when --until matched, else 0 */
	bool stopped_at_timeout; /* --then continue: matched, then stopped at --timeout */
	char detail[256];	 /* why the powerdown failed, when it did */
};

/* Runs the VM to an outcome.  Returns 0 with *RESULT filled, -1 when QEMU
 * could not be started or the console failed. */
int qemu_supervise(const struct qemu_supervise_opts *opts, struct qemu_result *result,
		   struct kiln_error **err);

#endif
