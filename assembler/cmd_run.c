/* kiln run [qemu] [OPTIONS] PATH: boot a built image in QEMU (LinuxKit's
 * `linuxkit run qemu`), plus what tests and CI need: --until, --timeout,
 * --then, --console-log. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>
#include <fcntl.h>

#include "cli.h"
#include "log.h"
#include "metadata_iso.h"
#include "qemu.h"
#include "strbuf.h"
#include "util.h"

int cmd_run(int argc, char **argv);

static const char run_usage[] =
    "Usage: kiln run [qemu] [OPTIONS] PATH\n"
    "\n"
    "Boots PATH in QEMU with the serial console on stdio.  PATH is one of:\n"
    "  NAME               NAME-kernel [+ NAME-initrd.img, NAME-cmdline]; with\n"
    "                     NAME-squashfs.img or NAME-erofs.img, that disk is the root\n"
    "  FILE.iso           booted from CD-ROM\n"
    "  FILE               a raw, qcow2, vhd or vmdk disk (format from its magic)\n"
    "  FILE.efi           a unified kernel image, booted by OVMF from an ESP\n"
    "  NAME-efi.{img,qcow2,iso,...} imply --uefi.\n"
    "\n"
    "Machine:\n"
    "  --cpus N               virtual CPUs (1)\n"
    "  --mem MB               memory in MiB (1024)\n"
    "  --disk [file=]PATH[,size=N[M|G]][,format=F][,if=ide|virtio]\n"
    "                         add a disk (repeatable); created with qemu-img when\n"
    "                         missing (qcow2 when a size is given); size alone:\n"
    "                         STATE/disk.img\n"
    "  --uefi                 boot with OVMF (split CODE + a VARS copy in STATE)\n"
    "  --fw FILE              UEFI firmware (copied to STATE); --fw-vars FILE: its VARS\n"
    "  --accel kvm|tcg        (default: kvm only if a probe guest really runs, else\n"
    "                         tcg; $KILN_QEMU_ACCEL overrides)\n"
    "  --kernel | --squashfs | --iso | --uki   force the type of PATH\n"
    "  --cmdline-append STR   added to the kernel command line (kernel boots)\n"
    "  --device ARG           an extra QEMU -device (repeatable)\n"
    "  --qemu BIN             the QEMU binary (qemu-system-x86_64)\n"
    "  --qemu-arg ARG         an extra QEMU argument (repeatable)\n"
    "  --gui                  show a display; the serial console stays on stdio\n"
    "  --no-reboot            exit when the guest reboots\n"
    "  --overlay              boot a disk image through a qcow2 overlay kept in STATE:\n"
    "                         the image stays untouched, several VMs can share it\n"
    "  --snapshot             discard every disk write when QEMU exits\n"
    "  --state DIR            state directory (NAME-state): qemu.pid, mac-addr,\n"
    "                         qmp.sock, created disks, firmware variables\n"
    "Network:\n"
    "  --networking MODE      one NIC per use (default: user); MODE: user, none,\n"
    "                         socket-listen=[H:]PORT, socket-connect=[H:]PORT,\n"
    "                         mcast=ADDR:PORT (VMs on one segment, no root needed)\n"
    "  --publish [IP:]HOST:GUEST[/tcp|/udp]   forward a host port (repeatable)\n"
    "  --mac MAC              the first NIC's MAC (default: persisted in STATE)\n"
    "Metadata (read-only CD-ROMs):\n"
    "  --data STRING          LinuxKit's metadata: ISO holding the file `config`\n"
    "  --data-file FILE       the same with FILE's contents\n"
    "  --cidata PATH          cloud-init NoCloud ISO (label cidata): a directory of\n"
    "                         user-data, meta-data, ...; or a file used as user-data\n"
    "                         (meta-data generated: instance-id and local-hostname NAME)\n"
    "  --config-drive DIR     OpenStack config drive (label config-2) holding DIR\n"
    "Tests and CI:\n"
    "  --until REGEX          stop when a console line matches (POSIX ERE): exit 0\n"
    "  --then ACTION          after --until: kill (default), powerdown (QMP\n"
    "                         system_powerdown, wait for the guest to power off) or\n"
    "                         continue (keep running until the VM exits or\n"
    "                         --timeout, which then still counts as a match)\n"
    "  --fail-on REGEX        a console line matching it ends the run: exit 1\n"
    "  --timeout SECONDS      give up (kill QEMU, exit 1) after this long\n"
    "  --powerdown-timeout S  how long --then powerdown waits (60)\n"
    "  --console-log FILE     write everything the console printed to FILE\n"
    "  --monitor PATH         a unix socket with QEMU's human monitor\n"
    "  --dry-run              print the QEMU command line and exit\n"
    "  --print-accel          print the accelerator kiln would pick and exit\n"
    "  -q, --quiet            do not echo the console to stdout\n"
    "  -v, --verbose          print the QEMU command line\n"
    "\n"
    "Exit status: 0 when --until matched (or, without it, QEMU exited with 0);\n"
    "1 on timeout, on the VM exiting before a match, on --fail-on; 2 on usage.\n"
    "Interactive: ctrl-a x quits QEMU, ctrl-a c switches to its monitor.\n";

enum {
	OPT_CPUS = 256,
	OPT_MEM,
	OPT_DISK,
	OPT_UEFI,
	OPT_FW,
	OPT_FW_VARS,
	OPT_ACCEL,
	OPT_PUBLISH,
	OPT_NETWORKING,
	OPT_MAC,
	OPT_DATA,
	OPT_DATA_FILE,
	OPT_CIDATA,
	OPT_CONFIG_DRIVE,
	OPT_STATE,
	OPT_KERNEL,
	OPT_ISO,
	OPT_SQUASHFS,
	OPT_UKI,
	OPT_CMDLINE_APPEND,
	OPT_QEMU,
	OPT_QEMU_ARG,
	OPT_DEVICE,
	OPT_GUI,
	OPT_NO_REBOOT,
	OPT_TIMEOUT,
	OPT_UNTIL,
	OPT_THEN,
	OPT_FAIL_ON,
	OPT_POWERDOWN_TIMEOUT,
	OPT_CONSOLE_LOG,
	OPT_MONITOR,
	OPT_DRY_RUN,
	OPT_ARCH,
	OPT_DETACHED,
	OPT_PRINT_ACCEL,
	OPT_OVERLAY,
	OPT_SNAPSHOT,
};

static const struct option run_options[] = {
    {"cpus", required_argument, 0, OPT_CPUS},
    {"mem", required_argument, 0, OPT_MEM},
    {"disk", required_argument, 0, OPT_DISK},
    {"uefi", no_argument, 0, OPT_UEFI},
    {"fw", required_argument, 0, OPT_FW},
    {"fw-vars", required_argument, 0, OPT_FW_VARS},
    {"accel", required_argument, 0, OPT_ACCEL},
    {"publish", required_argument, 0, OPT_PUBLISH},
    {"networking", required_argument, 0, OPT_NETWORKING},
    {"mac", required_argument, 0, OPT_MAC},
    {"data", required_argument, 0, OPT_DATA},
    {"data-file", required_argument, 0, OPT_DATA_FILE},
    {"cidata", required_argument, 0, OPT_CIDATA},
    {"config-drive", required_argument, 0, OPT_CONFIG_DRIVE},
    {"state", required_argument, 0, OPT_STATE},
    {"kernel", no_argument, 0, OPT_KERNEL},
    {"iso", no_argument, 0, OPT_ISO},
    {"squashfs", no_argument, 0, OPT_SQUASHFS},
    {"uki", no_argument, 0, OPT_UKI},
    {"cmdline-append", required_argument, 0, OPT_CMDLINE_APPEND},
    {"qemu", required_argument, 0, OPT_QEMU},
    {"qemu-arg", required_argument, 0, OPT_QEMU_ARG},
    {"device", required_argument, 0, OPT_DEVICE},
    {"gui", no_argument, 0, OPT_GUI},
    {"no-reboot", no_argument, 0, OPT_NO_REBOOT},
    {"timeout", required_argument, 0, OPT_TIMEOUT},
    {"until", required_argument, 0, OPT_UNTIL},
    {"then", required_argument, 0, OPT_THEN},
    {"fail-on", required_argument, 0, OPT_FAIL_ON},
    {"powerdown-timeout", required_argument, 0, OPT_POWERDOWN_TIMEOUT},
    {"console-log", required_argument, 0, OPT_CONSOLE_LOG},
    {"monitor", required_argument, 0, OPT_MONITOR},
    {"dry-run", no_argument, 0, OPT_DRY_RUN},
    {"arch", required_argument, 0, OPT_ARCH},
    {"detached", no_argument, 0, OPT_DETACHED},
    {"print-accel", no_argument, 0, OPT_PRINT_ACCEL},
    {"overlay", no_argument, 0, OPT_OVERLAY},
    {"snapshot", no_argument, 0, OPT_SNAPSHOT},
    CLI_COMMON_LONGOPTS,
    {0, 0, 0, 0},
};

/* A growable array of borrowed strings. */
struct strlist {
	const char **v;
	size_t n;
};

static void strlist_add(struct strlist *l, const char *s)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof *l->v);
	l->v[l->n++] = s;
}

struct run_args {
	unsigned cpus, mem_mb;
	bool uefi, gui, no_reboot, dry_run, print_accel, overlay, snapshot;
	const char *fw, *fw_vars, *accel, *mac, *state, *cmdline_append, *qemu_bin;
	const char *data, *data_file, *cidata, *config_drive;
	const char *until, *fail_on, *console_log, *monitor;
	enum qemu_then then;
	bool then_given;
	double timeout_s, powerdown_timeout_s;
	enum qemu_boot force;
	struct qemu_disk *disks;
	size_t n_disks;
	struct qemu_publish *publish;
	size_t n_publish;
	struct qemu_net *nets;
	size_t n_nets;
	struct strlist devices, extra_args;
};

static void run_args_release(struct run_args *a)
{
	for (size_t i = 0; i < a->n_disks; i++)
		qemu_disk_release(&a->disks[i]);
	free(a->disks);
	free(a->publish);
	for (size_t i = 0; i < a->n_nets; i++)
		qemu_net_release(&a->nets[i]);
	free(a->nets);
	free(a->devices.v);
	free(a->extra_args.v);
}

static int parse_unsigned(const char *opt, const char *s, unsigned max, unsigned *out,
			  struct kiln_error **err)
{
	uint64_t v;
	if (parse_u64(s, 10, &v) < 0 || v == 0 || v > max)
		return kiln_error_make(err, 0, "--%s `%s`: expected a number from 1 to %u", opt, s,
				       max);
	*out = (unsigned)v;
	return 0;
}

static int parse_seconds(const char *opt, const char *s, double *out, struct kiln_error **err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v <= 0 || v > 1e6)
		return kiln_error_make(err, 0, "--%s `%s`: expected seconds (> 0)", opt, s);
	*out = v;
	return 0;
}

/* Returns 0, -1 with *err on a bad value, 2 for --help. */
static int parse_args(int argc, char **argv, struct run_args *a, struct kiln_error **err)
{
	int opt;
	opterr = 0;
	while ((opt = getopt_long_only(argc, argv, CLI_COMMON_SHORTOPTS, run_options, NULL)) != -1) {
		int common = cli_common_option(opt, run_usage);
		if (common == CLI_OPT_HELP)
			return 2;
		if (common == CLI_OPT_DONE)
			continue;
		switch (opt) {
		case OPT_CPUS:
			if (parse_unsigned("cpus", optarg, 256, &a->cpus, err) < 0)
				return -1;
			break;
		case OPT_MEM:
			if (parse_unsigned("mem", optarg, 1u << 22, &a->mem_mb, err) < 0)
				return -1;
			break;
		case OPT_DISK:
			a->disks = xrealloc(a->disks, (a->n_disks + 1) * sizeof *a->disks);
			if (qemu_parse_disk(optarg, &a->disks[a->n_disks], err) < 0)
				return -1;
			a->n_disks++;
			break;
		case OPT_UEFI:
			a->uefi = true;
			break;
		case OPT_FW:
			a->fw = optarg;
			break;
		case OPT_FW_VARS:
			a->fw_vars = optarg;
			break;
		case OPT_ACCEL:
			a->accel = optarg;
			break;
		case OPT_PUBLISH:
			a->publish = xrealloc(a->publish, (a->n_publish + 1) * sizeof *a->publish);
			if (qemu_parse_publish(optarg, &a->publish[a->n_publish], err) < 0)
				return -1;
			a->n_publish++;
			break;
		case OPT_NETWORKING:
			a->nets = xrealloc(a->nets, (a->n_nets + 1) * sizeof *a->nets);
			if (qemu_parse_networking(optarg, &a->nets[a->n_nets], err) < 0)
				return -1;
			a->n_nets++;
			break;
		case OPT_MAC:
			a->mac = optarg;
			break;
		case OPT_DATA:
			a->data = optarg;
			break;
		case OPT_DATA_FILE:
			a->data_file = optarg;
			break;
		case OPT_CIDATA:
			a->cidata = optarg;
			break;
		case OPT_CONFIG_DRIVE:
			a->config_drive = optarg;
			break;
		case OPT_STATE:
			a->state = optarg;
			break;
		case OPT_KERNEL:
		case OPT_ISO:
		case OPT_SQUASHFS:
		case OPT_UKI: {
			enum qemu_boot f = opt == OPT_KERNEL	 ? QEMU_BOOT_KERNEL
					   : opt == OPT_ISO	 ? QEMU_BOOT_ISO
					   : opt == OPT_SQUASHFS ? QEMU_BOOT_SQUASHFS
								 : QEMU_BOOT_UKI;
			if (a->force != QEMU_BOOT_AUTO && a->force != f)
				return kiln_error_make(err, 0,
						       "--kernel, --squashfs, --iso and --uki "
						       "exclude each other");
			a->force = f;
			break;
		}
		case OPT_CMDLINE_APPEND:
			a->cmdline_append = optarg;
			break;
		case OPT_QEMU:
			a->qemu_bin = optarg;
			break;
		case OPT_QEMU_ARG:
			strlist_add(&a->extra_args, optarg);
			break;
		case OPT_DEVICE:
			strlist_add(&a->devices, optarg);
			break;
		case OPT_GUI:
			a->gui = true;
			break;
		case OPT_NO_REBOOT:
			a->no_reboot = true;
			break;
		case OPT_TIMEOUT:
			if (parse_seconds("timeout", optarg, &a->timeout_s, err) < 0)
				return -1;
			break;
		case OPT_POWERDOWN_TIMEOUT:
			if (parse_seconds("powerdown-timeout", optarg, &a->powerdown_timeout_s,
					  err) < 0)
				return -1;
			break;
		case OPT_UNTIL:
			a->until = optarg;
			break;
		case OPT_FAIL_ON:
			a->fail_on = optarg;
			break;
		case OPT_THEN:
			a->then_given = true;
			if (strcmp(optarg, "kill") == 0)
				a->then = QEMU_THEN_KILL;
			else if (strcmp(optarg, "powerdown") == 0)
				a->then = QEMU_THEN_POWERDOWN;
			else if (strcmp(optarg, "continue") == 0)
				a->then = QEMU_THEN_CONTINUE;
			else
				return kiln_error_make(err, 0,
						       "--then `%s`: expected kill, powerdown or "
						       "continue",
						       optarg);
			break;
		case OPT_CONSOLE_LOG:
			a->console_log = optarg;
			break;
		case OPT_MONITOR:
			a->monitor = optarg;
			break;
		case OPT_DRY_RUN:
			a->dry_run = true;
			break;
		case OPT_ARCH:
			if (strcmp(optarg, "x86_64") != 0 && strcmp(optarg, "amd64") != 0)
				return kiln_error_make(
				    err, 0, "--arch `%s`: only x86_64 is supported", optarg);
			break;
		case OPT_OVERLAY:
			a->overlay = true;
			break;
		case OPT_SNAPSHOT:
			a->snapshot = true;
			break;
		case OPT_PRINT_ACCEL:
			a->print_accel = true;
			break;
		case OPT_DETACHED:
			return kiln_error_make(err, 0,
					       "--detached is not supported; run kiln in "
					       "the background with --console-log instead");
		default:
			if (optopt && optopt < 256)
				return kiln_error_make(err, 0,
						       "unknown option `-%c` or missing value "
						       "(see 'kiln help run')",
						       optopt);
			return kiln_error_make(
			    err, 0,
			    "unknown option `%s` or missing value (see 'kiln help "
			    "run')",
			    argv[optind - 1]);
		}
	}
	if (a->then_given && a->until == NULL)
		return kiln_error_make(err, 0, "--then needs --until");
	int n_data = !!a->data + !!a->data_file;
	if (n_data > 1)
		return kiln_error_make(err, 0, "--data and --data-file exclude each other");
	return 0;
}

/* Whether BIN can be executed: a path, or a name found in $PATH. */
static bool executable_found(const char *bin)
{
	if (strchr(bin, '/'))
		return access(bin, X_OK) == 0;
	const char *path = getenv("PATH");
	cleanup_free char *copy = xstrdup(path && *path ? path : "/usr/bin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		cleanup_free char *p = path_join(*dir ? dir : ".", bin);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

/* Where the probe caches its answer. */
static char *probe_cache_dir(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (x && *x)
		return path_join(x, "kiln");
	x = getenv("XDG_CACHE_HOME");
	if (x && *x)
		return path_join(x, "kiln");
	x = getenv("HOME");
	if (x && *x)
		return xasprintf("%s/.cache/kiln", x);
	return NULL;
}

/* A unix socket path must fit in sun_path (108 bytes). */
static char *socket_path(const char *state, const char *name)
{
	char *p = path_join(state, name);
	if (strlen(p) < 100)
		return p;
	free(p);
	const char *tmp = getenv("XDG_RUNTIME_DIR");
	if (tmp == NULL || !*tmp)
		tmp = "/tmp";
	return xasprintf("%s/kiln-%ld-%s", tmp, (long)getpid(), name);
}

/* Refuses to start a second QEMU on the same state (disks would be shared). */
static int check_not_running(const char *state, struct kiln_error **err)
{
	cleanup_free char *pidfile = path_join(state, "qemu.pid");
	struct kiln_error *e = NULL;
	cleanup_free char *c = read_file(pidfile, 64, NULL, &e);
	kiln_error_release(&e);
	if (c == NULL)
		return 0;
	long pid = strtol(c, NULL, 10);
	if (pid <= 0)
		return 0;
	cleanup_free char *comm_path = xasprintf("/proc/%ld/comm", pid);
	cleanup_free char *comm = read_file(comm_path, 256, NULL, &e);
	kiln_error_release(&e);
	if (comm && strstr(comm, "qemu"))
		return kiln_error_make(
		    err, 0,
		    "a QEMU (pid %ld) is already running with state `%s`; stop it "
		    "or give another --state",
		    pid, state);
	return 0;
}

static void print_argv(FILE *f, char *const *argv)
{
	for (char *const *p = argv; *p; p++) {
		bool quote = strpbrk(*p, " \t\"'$\\") != NULL || **p == '\0';
		fprintf(f, "%s%s%s%s", p == argv ? "" : " ", quote ? "'" : "", *p,
			quote ? "'" : "");
	}
	fputc('\n', f);
}

static char *read_uuid(void)
{
	struct kiln_error *e = NULL;
	char *u = read_file("/proc/sys/kernel/random/uuid", 64, NULL, &e);
	kiln_error_release(&e);
	if (u)
		u[strcspn(u, "\n")] = '\0';
	return u;
}

static const char *basename_of(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static int run_qemu(struct run_args *a, const char *path)
{
	cleanup_error struct kiln_error *err = NULL;
	struct qemu_target target = {0};
	if (qemu_detect(path, a->force, &target, &err) < 0) {
		kiln_error_wrap(&err, "run");
		return cli_fail(&err);
	}
	int rc = 1;
	char **argv = NULL;
	cleanup_free char *state =
	    a->state ? xstrdup(a->state) : xasprintf("%s-state", target.name);
	cleanup_free char *pidfile = path_join(state, "qemu.pid");
	cleanup_free char *qmp = socket_path(state, "qmp.sock");
	cleanup_free char *fw_code = NULL, *fw_vars = NULL, *esp = NULL, *uuid = read_uuid();
	cleanup_free char *cache = probe_cache_dir();
	struct strlist cdroms = {0};
	char *isos[3] = {NULL, NULL, NULL};
	char **macs = NULL;
	size_t n_nics = a->n_nets ? a->n_nets : 1;
	int log_fd = -1, sig_fd = -1;
	bool raw_tty = false;
	struct termios saved_tty;
	sigset_t sigs, old_sigs;
	sigemptyset(&sigs);

	const char *qemu_bin = a->qemu_bin ? a->qemu_bin : "qemu-system-x86_64";
	if (!a->dry_run && !executable_found(qemu_bin)) {
		kiln_error_make(&err, 0, "`%s` not found (install qemu-system-x86 or give --qemu)",
				qemu_bin);
		goto fail;
	}
	/* A dry run prints the command line and touches nothing: the state
	 * dir, disks, ISOs and MAC files are only named. */
	if (!a->dry_run && mkdir_p(state, 0755, &err) < 0)
		goto fail;
	if (!a->dry_run && check_not_running(state, &err) < 0)
		goto fail;
	bool uefi = a->uefi || target.uefi || a->fw != NULL;
	if (uefi && qemu_firmware_prepare(a->fw, a->fw_vars, state, a->dry_run, &fw_code, &fw_vars,
					  &err) < 0)
		goto fail;
	if (target.kind == QEMU_BOOT_UKI) {
		esp = qemu_make_esp(target.image, state, a->dry_run, &err);
		if (esp == NULL)
			goto fail;
	}
	if (a->overlay) {
		if (target.kind != QEMU_BOOT_DISK) {
			kiln_error_make(&err, 0, "--overlay applies to disk images, not a %s boot",
					qemu_boot_name(target.kind));
			goto fail;
		}
		char *overlay =
		    qemu_make_overlay(target.image, target.disk_format, state, a->dry_run, &err);
		if (overlay == NULL)
			goto fail;
		free(target.image);
		target.image = overlay;
		free(target.disk_format);
		target.disk_format = xstrdup("qcow2");
	}
	if (a->snapshot)
		strlist_add(&a->extra_args, "-snapshot");
	if (a->cmdline_append && target.kind != QEMU_BOOT_KERNEL &&
	    target.kind != QEMU_BOOT_SQUASHFS)
		log_warn("--cmdline-append only applies to kernel boots; ignored for %s",
			 qemu_boot_name(target.kind));
	for (size_t i = 0; i < a->n_disks; i++)
		if (qemu_disk_prepare(&a->disks[i], state, i, a->dry_run, &err) < 0)
			goto fail;

	/* Metadata CD-ROMs. */
	if (a->data || a->data_file) {
		isos[0] = path_join(state, "data.iso");
		size_t len = 0;
		cleanup_free char *contents =
		    a->data ? xstrdup(a->data) : read_file(a->data_file, 64u << 20, &len, &err);
		if (contents == NULL)
			goto fail;
		if (a->data)
			len = strlen(a->data);
		if (!a->dry_run && metadata_iso_config(isos[0], contents, len, &err) < 0)
			goto fail;
		strlist_add(&cdroms, isos[0]);
	}
	if (a->cidata) {
		isos[1] = path_join(state, "cidata.iso");
		const char *host = basename_of(target.name);
		if (!a->dry_run && metadata_iso_cidata(isos[1], a->cidata, host, host, &err) < 0)
			goto fail;
		strlist_add(&cdroms, isos[1]);
	}
	if (a->config_drive) {
		isos[2] = path_join(state, "config-drive.iso");
		if (!a->dry_run &&
		    metadata_iso_dir(isos[2], "config-2", a->config_drive, &err) < 0) {
			kiln_error_wrap(&err, "--config-drive");
			goto fail;
		}
		strlist_add(&cdroms, isos[2]);
	}

	/* One MAC per NIC: the first persisted in STATE/mac-addr as LinuxKit
	 * does, the others in mac-addr.N. */
	macs = xcalloc(n_nics + 1, sizeof *macs);
	for (size_t i = 0; i < n_nics; i++) {
		if (i == 0 && a->mac) {
			macs[i] = xstrdup(a->mac);
			continue;
		}
		cleanup_free char *file =
		    i == 0 ? xstrdup("mac-addr") : xasprintf("mac-addr.%zu", i);
		macs[i] = qemu_state_mac(state, file, a->dry_run, &err);
		if (macs[i] == NULL)
			goto fail;
	}

	const char *accel = a->accel;
	if (accel == NULL)
		accel = a->dry_run && getenv("KILN_QEMU_ACCEL") == NULL
			    ? "tcg"
			    : qemu_default_accel(qemu_bin, cache);
	struct qemu_config cfg = {
	    .qemu_bin = qemu_bin,
	    .accel = accel,
	    .cpus = a->cpus,
	    .mem_mb = a->mem_mb,
	    .uefi = uefi,
	    .fw = fw_code,
	    .fw_vars = fw_vars,
	    .gui = a->gui,
	    .no_reboot = a->no_reboot,
	    .target = &target,
	    .disks = a->disks,
	    .n_disks = a->n_disks,
	    .nets = a->nets,
	    .n_nets = a->n_nets,
	    .macs = (const char *const *)macs,
	    .publish = a->publish,
	    .n_publish = a->n_publish,
	    .cdroms = cdroms.v,
	    .n_cdroms = cdroms.n,
	    .devices = a->devices.v,
	    .n_devices = a->devices.n,
	    .extra_args = a->extra_args.v,
	    .n_extra_args = a->extra_args.n,
	    .cmdline_append = a->cmdline_append,
	    .esp_image = esp,
	    .pidfile = pidfile,
	    .qmp_socket = qmp,
	    .monitor_socket = a->monitor,
	    .uuid = uuid,
	};
	argv = qemu_build_argv(&cfg, &err);
	if (argv == NULL)
		goto fail;
	if (a->dry_run) {
		print_argv(stdout, argv);
		rc = 0;
		goto out;
	}
	log_verbose("%s boot of `%s` (accel %s, state %s)", qemu_boot_name(target.kind), path,
		    accel, state);
	if (kiln_log_level >= LOG_VERBOSE)
		print_argv(stderr, argv);

	if (a->console_log) {
		log_fd = open(a->console_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			kiln_error_make(&err, errno, "--console-log `%s`", a->console_log);
			goto fail;
		}
	}
	/* INT/TERM/HUP stop QEMU cleanly instead of orphaning it. */
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGWINCH);
	sigprocmask(SIG_BLOCK, &sigs, &old_sigs);
	sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	/* Forward the terminal only when kiln is in its foreground: a run put in
	 * the background (cluster demos) must neither take the terminal into raw
	 * mode nor read keystrokes meant for the shell. */
	bool tty = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp() &&
		   tcgetattr(STDIN_FILENO, &saved_tty) == 0;
	if (tty) {
		struct termios raw = saved_tty;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST | ONLCR; /* kiln's own messages stay readable */
		raw_tty = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}

	struct qemu_supervise_opts so = {
	    .argv = argv,
	    .until = a->until,
	    .fail_on = a->fail_on,
	    .then = a->then,
	    .timeout_ms = (unsigned)(a->timeout_s * 1000),
	    .powerdown_timeout_ms = (unsigned)(a->powerdown_timeout_s * 1000),
	    .console_log_fd = log_fd,
	    .echo_fd = kiln_log_level > LOG_QUIET ? STDOUT_FILENO : -1,
	    .input_fd = raw_tty ? STDIN_FILENO : -1,
	    .signal_fd = sig_fd,
	    .qmp_socket = qmp,
	};
	struct qemu_result res;
	int sr = qemu_supervise(&so, &res, &err);
	if (raw_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
	if (sr < 0)
		goto fail;
	fflush(stdout);
	switch (res.outcome) {
	case QEMU_MATCHED:
		log_verbose("matched /%s/ after %.1f s", a->until, res.match_s);
		if (res.stopped_at_timeout)
			log_info("run: QEMU stopped at the timeout (%.0f s), after the match",
				 a->timeout_s);
		rc = 0;
		break;
	case QEMU_EXITED:
		if (a->until) {
			log_error("run: the VM exited (QEMU status %d) after %.1f s before the "
				  "console printed /%s/",
				  res.exit_status, res.elapsed_s, a->until);
			rc = 1;
		} else {
			rc = res.exit_status == 0 ? 0 : 1;
			if (rc)
				log_error("run: QEMU exited with status %d", res.exit_status);
		}
		break;
	case QEMU_TIMED_OUT:
		if (a->until)
			log_error("run: timed out after %.1f s waiting for /%s/", res.elapsed_s,
				  a->until);
		else
			log_error("run: timed out after %.1f s; QEMU stopped", res.elapsed_s);
		rc = 1;
		break;
	case QEMU_FAILED_MATCH:
		log_error("run: the console matched --fail-on /%s/ after %.1f s", a->fail_on,
			  res.elapsed_s);
		rc = 1;
		break;
	case QEMU_POWERDOWN_TIMEOUT:
		if (res.detail[0])
			log_error(
			    "run: matched /%s/, but system_powerdown failed: %s; QEMU stopped",
			    a->until, res.detail);
		else
			log_error(
			    "run: matched /%s/, but the guest did not power off within %.0f s "
			    "of system_powerdown; QEMU stopped",
			    a->until, a->powerdown_timeout_s ? a->powerdown_timeout_s : 60);
		rc = 1;
		break;
	case QEMU_INTERRUPTED:
		log_error("run: interrupted; QEMU stopped");
		rc = 130;
		break;
	}
	goto out;
fail:
	rc = cli_fail(&err);
out:
	if (sig_fd >= 0) {
		close(sig_fd);
		sigprocmask(SIG_SETMASK, &old_sigs, NULL);
	}
	if (log_fd >= 0)
		close(log_fd);
	if (!a->dry_run && !str_has_prefix(qmp, state))
		unlink(qmp);
	qemu_argv_free(argv);
	if (macs)
		for (size_t i = 0; i < n_nics; i++)
			free(macs[i]);
	free(macs);
	for (size_t i = 0; i < ARRAY_SIZE(isos); i++)
		free(isos[i]);
	free(cdroms.v);
	qemu_target_release(&target);
	return rc;
}

int cmd_run(int argc, char **argv)
{
	/* `kiln run qemu ...` and `kiln run ...` are the same on Linux. */
	if (argc > 1 && argv[1][0] != '-') {
		if (strcmp(argv[1], "qemu") == 0) {
			argv++;
			argc--;
		} else {
			static const char *const others[] = {
			    "aws",    "azure",	   "gcp",	   "hyperkit", "virtualization",
			    "hyperv", "openstack", "equinixmetal", "scaleway", "vmware",
			    "vbox",   "vcenter"};
			for (size_t i = 0; i < ARRAY_SIZE(others); i++)
				if (strcmp(argv[1], others[i]) == 0) {
					fprintf(stderr,
						"kiln: run: the %s backend is not supported; kiln "
						"runs images with qemu\n",
						argv[1]);
					return 2;
				}
		}
	}
	cleanup_error struct kiln_error *err = NULL;
	struct run_args a = {0};
	int r = parse_args(argc, argv, &a, &err);
	if (r == 2) {
		run_args_release(&a);
		return 0;
	}
	if (r < 0) {
		run_args_release(&a);
		kiln_error_wrap(&err, "run");
		cli_fail(&err);
		return 2;
	}
	if (a.print_accel) {
		const char *bin = a.qemu_bin ? a.qemu_bin : "qemu-system-x86_64";
		cleanup_free char *cache = probe_cache_dir();
		printf("%s\n", a.accel ? a.accel : qemu_default_accel(bin, cache));
		run_args_release(&a);
		return 0;
	}
	if (optind != argc - 1) {
		run_args_release(&a);
		fprintf(stderr, "kiln: run: expected one PATH (see 'kiln help run')\n");
		return 2;
	}
	int rc = run_qemu(&a, argv[optind]);
	run_args_release(&a);
	return rc;
}
