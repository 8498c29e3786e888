/* assembler/qemu.c: target detection, option grammars and the qemu-system
 * command line, without running QEMU. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qemu.h"
#include "tap.h"
#include "util.h"

static void touch(const char *path, const void *data, size_t len)
{
	struct kiln_error *err = NULL;
	if (write_file_atomic(path, data, len, 0644, &err) < 0) {
		ok(0, "write %s: %s", path, err->msg);
		kiln_error_release(&err);
	}
}

/* The index of ARG in ARGV, or -1. */
static int argv_find(char **argv, const char *arg)
{
	for (int i = 0; argv && argv[i]; i++)
		if (strcmp(argv[i], arg) == 0)
			return i;
	return -1;
}

/* The value after OPT whose text contains NEEDLE, or NULL. */
static const char *argv_value(char **argv, const char *opt, const char *needle)
{
	for (int i = 0; argv && argv[i] && argv[i + 1]; i++)
		if (strcmp(argv[i], opt) == 0 && strstr(argv[i + 1], needle))
			return argv[i + 1];
	return NULL;
}

TEST(disk_format_from_magic)
{
	struct kiln_error *err = NULL;
	unsigned char buf[4096] = {0};
	memcpy(buf, "QFI\xfb", 4);
	touch("a.qcow2", buf, sizeof buf);
	is_str(qemu_disk_format("a.qcow2", &err), "qcow2", "qcow2 magic");
	memcpy(buf, "KDMV", 4);
	touch("a.vmdk", buf, sizeof buf);
	is_str(qemu_disk_format("a.vmdk", &err), "vmdk", "vmdk magic");
	memset(buf, 0, sizeof buf);
	memcpy(buf + sizeof buf - 512, "conectix", 8);
	touch("fixed.vhd", buf, sizeof buf);
	is_str(qemu_disk_format("fixed.vhd", &err), "vpc", "fixed VHD: footer at the end");
	memset(buf, 0, sizeof buf);
	memcpy(buf, "conectix", 8);
	touch("dyn.vhd", buf, sizeof buf);
	is_str(qemu_disk_format("dyn.vhd", &err), "vpc", "dynamic VHD: footer copy first");
	memset(buf, 0, sizeof buf);
	touch("a.img", buf, sizeof buf);
	is_str(qemu_disk_format("a.img", &err), "raw", "anything else is raw");
	touch("tiny", "x", 1);
	is_str(qemu_disk_format("tiny", &err), "raw", "a tiny file is raw");
	ok(qemu_disk_format("missing", &err) == NULL, "a missing file is an error");
	kiln_error_release(&err);
}

TEST(detect_kernel_prefix)
{
	struct qemu_target t;
	struct kiln_error *err = NULL;
	touch("img-kernel", "k", 1);
	touch("img-initrd.img", "i", 1);
	touch("img-cmdline", "console=ttyS0 quiet\n", 20);
	is_int(qemu_detect("img", QEMU_BOOT_AUTO, &t, &err), 0, "detect NAME");
	is_int(t.kind, QEMU_BOOT_KERNEL, "kernel boot");
	is_str(t.kernel, "img-kernel", "kernel");
	is_str(t.initrd, "img-initrd.img", "initrd");
	is_str(t.cmdline, "console=ttyS0 quiet", "cmdline trimmed");
	is_str(t.name, "img", "name");
	qemu_target_release(&t);
	is_int(qemu_detect("img-kernel", QEMU_BOOT_AUTO, &t, &err), 0, "NAME-kernel works too");
	is_int(t.kind, QEMU_BOOT_KERNEL, "kernel boot");
	is_str(t.name, "img", "name without -kernel");
	qemu_target_release(&t);

	is_int(qemu_detect("img-initrd.img", QEMU_BOOT_AUTO, &t, &err), 0, "NAME-initrd.img");
	is_int(t.kind, QEMU_BOOT_KERNEL, "names the kernel boot");
	is_str(t.name, "img", "name");
	qemu_target_release(&t);
	is_int(qemu_detect("img-cmdline", QEMU_BOOT_AUTO, &t, &err), 0, "NAME-cmdline");
	is_int(t.kind, QEMU_BOOT_KERNEL, "names the kernel boot");
	qemu_target_release(&t);

	touch("img-squashfs.img", "hsqs", 4);
	is_int(qemu_detect("img-squashfs.img", QEMU_BOOT_AUTO, &t, &err), 0, "NAME-squashfs.img");
	is_int(t.kind, QEMU_BOOT_SQUASHFS, "names the squashfs boot");
	qemu_target_release(&t);
	touch("lone-squashfs.img", "hsqs", 4);
	is_int(qemu_detect("lone-squashfs.img", QEMU_BOOT_AUTO, &t, &err), 0, "no lone-kernel");
	is_int(t.kind, QEMU_BOOT_DISK, "then it is just a disk");
	qemu_target_release(&t);
	is_int(qemu_detect("img", QEMU_BOOT_AUTO, &t, &err), 0, "detect with squashfs");
	is_int(t.kind, QEMU_BOOT_SQUASHFS, "squashfs boot");
	is_str(t.rootfs, "img-squashfs.img", "rootfs");
	qemu_target_release(&t);
	is_int(qemu_detect("img", QEMU_BOOT_KERNEL, &t, &err), 0, "--kernel forces");
	is_int(t.kind, QEMU_BOOT_KERNEL, "kernel boot despite the squashfs");
	ok(t.rootfs == NULL, "no rootfs");
	qemu_target_release(&t);

	touch("e-kernel", "k", 1);
	touch("e-erofs.img", "e", 1);
	is_int(qemu_detect("e", QEMU_BOOT_AUTO, &t, &err), 0, "detect with erofs");
	is_str(t.rootfs, "e-erofs.img", "erofs root");
	ok(t.initrd == NULL && t.cmdline == NULL, "no initrd, no cmdline");
	qemu_target_release(&t);

	is_int(qemu_detect("e", QEMU_BOOT_SQUASHFS, &t, &err), 0, "--squashfs with erofs");
	qemu_target_release(&t);
	touch("n-kernel", "k", 1);
	is_int(qemu_detect("n", QEMU_BOOT_SQUASHFS, &t, &err), -1, "--squashfs without one fails");
	ok(err && strstr(err->msg, "n-squashfs.img"), "names the missing file: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
}

/* Detects PATH from the files in the test's directory and plans its QEMU
 * argv (nothing runs); NULL when either fails. */
static char **plan_argv(const char *path)
{
	struct kiln_error *err = NULL;
	struct qemu_target t;
	if (qemu_detect(path, QEMU_BOOT_AUTO, &t, &err) < 0) {
		ok(0, "detect %s: %s", path, err->msg);
		kiln_error_release(&err);
		return NULL;
	}
	struct qemu_config cfg = {.target = &t};
	char **argv = qemu_build_argv(&cfg, &err);
	if (argv == NULL) {
		ok(0, "argv %s: %s", path, err->msg);
		kiln_error_release(&err);
	}
	qemu_target_release(&t);
	return argv;
}

/* The value after OPT, or "" (is_str wants a string). */
static const char *argv_after(char **argv, const char *opt)
{
	const char *v = argv_value(argv, opt, "");
	return v ? v : "";
}

/* kernel+squashfs and kernel+erofs write NAME-<kind>-initrd.img (kiln's own
 * initrd, which finds the root image by its magic); NAME-initrd.img is
 * kernel+initrd's, and both may share one --dir. */
TEST(argv_root_image_initrds)
{
	touch("r-kernel", "k", 1);
	touch("r-initrd.img", "i", 1);
	touch("r-squashfs.img", "hsqs", 4);
	touch("r-squashfs-initrd.img", "i", 1);
	touch("r-erofs.img", "e", 1);
	touch("r-erofs-initrd.img", "i", 1);
	char **argv = plan_argv("r");
	is_str(argv_after(argv, "-initrd"), "r-squashfs-initrd.img",
	       "NAME: squashfs root with its own initrd, not NAME-initrd.img");
	ok(argv_value(argv, "-drive", "file=r-squashfs.img,") != NULL, "the squashfs root disk");
	is_str(argv_after(argv, "-append"), "console=ttyS0", "kiln's initrd: no root=");
	qemu_argv_free(argv);

	argv = plan_argv("r-erofs.img");
	is_str(argv_after(argv, "-initrd"), "r-erofs-initrd.img", "NAME-erofs.img: its initrd");
	ok(argv_value(argv, "-drive", "file=r-erofs.img,") != NULL, "NAME-erofs.img: erofs root");
	ok(argv_value(argv, "-drive", "squashfs") == NULL, "no squashfs disk");
	is_str(argv_after(argv, "-append"), "console=ttyS0", "erofs with kiln's initrd: no root=");
	qemu_argv_free(argv);

	argv = plan_argv("r-erofs-initrd.img");
	ok(argv_value(argv, "-drive", "file=r-erofs.img,") != NULL,
	   "NAME-erofs-initrd.img: erofs root");
	qemu_argv_free(argv);

	/* A root image without its own initrd boots with NAME-initrd.img, which
	 * is not kiln's root-finding one: root=/dev/sda.  g has squashfs's
	 * initrd, which is not the erofs root's own. */
	static const struct {
		const char *name, *root, *other_initrd, *path;
	} fallback[] = {{"f", "f-squashfs.img", NULL, "f"},
			{"g", "g-erofs.img", "g-squashfs-initrd.img", "g-erofs.img"}};
	for (size_t i = 0; i < ARRAY_SIZE(fallback); i++) {
		cleanup_free char *kernel = xasprintf("%s-kernel", fallback[i].name);
		cleanup_free char *initrd = xasprintf("%s-initrd.img", fallback[i].name);
		touch(kernel, "k", 1);
		touch(initrd, "i", 1);
		touch(fallback[i].root, "hsqs", 4);
		if (fallback[i].other_initrd)
			touch(fallback[i].other_initrd, "i", 1);
		argv = plan_argv(fallback[i].path);
		ok(strcmp(argv_after(argv, "-initrd"), initrd) == 0,
		   "%s: no own initrd, NAME-initrd.img: %s", fallback[i].path,
		   argv_after(argv, "-initrd"));
		ok(argv_value(argv, "-drive", fallback[i].root) != NULL, "%s: root disk %s",
		   fallback[i].path, fallback[i].root);
		ok(strcmp(argv_after(argv, "-append"), "console=ttyS0 root=/dev/sda") == 0,
		   "%s: not kiln's own initrd, root=/dev/sda: %s", fallback[i].path,
		   argv_after(argv, "-append"));
		qemu_argv_free(argv);
	}

	argv = plan_argv("r-initrd.img");
	ok(argv_value(argv, "-drive", "file=r-squashfs.img,") != NULL,
	   "NAME-initrd.img names the set: squashfs first");
	qemu_argv_free(argv);
}

TEST(detect_files)
{
	struct qemu_target t;
	struct kiln_error *err = NULL;
	unsigned char buf[1024] = {0};
	touch("x.iso", buf, sizeof buf);
	is_int(qemu_detect("x.iso", QEMU_BOOT_AUTO, &t, &err), 0, "iso");
	is_int(t.kind, QEMU_BOOT_ISO, "iso boot");
	ok(!t.uefi, "BIOS");
	qemu_target_release(&t);
	touch("x-efi.iso", buf, sizeof buf);
	is_int(qemu_detect("x-efi.iso", QEMU_BOOT_AUTO, &t, &err), 0, "efi iso");
	ok(t.uefi, "NAME-efi.iso implies UEFI");
	qemu_target_release(&t);
	memcpy(buf, "QFI\xfb", 4);
	touch("x-efi.qcow2", buf, sizeof buf);
	is_int(qemu_detect("x-efi.qcow2", QEMU_BOOT_AUTO, &t, &err), 0, "qcow2");
	is_int(t.kind, QEMU_BOOT_DISK, "disk boot");
	is_str(t.disk_format, "qcow2", "format");
	ok(t.uefi, "NAME-efi.qcow2 implies UEFI");
	is_str(t.name, "x-efi", "name");
	qemu_target_release(&t);
	touch("x.efi", "MZ", 2);
	is_int(qemu_detect("x.efi", QEMU_BOOT_AUTO, &t, &err), 0, "uki");
	is_int(t.kind, QEMU_BOOT_UKI, "uki boot");
	ok(t.uefi, "a UKI needs UEFI");
	qemu_target_release(&t);
	touch("plain.img", buf + 4, 100);
	is_int(qemu_detect("plain.img", QEMU_BOOT_ISO, &t, &err), 0, "--iso forces");
	is_int(t.kind, QEMU_BOOT_ISO, "iso boot of a .img");
	qemu_target_release(&t);
	is_int(qemu_detect("nothing", QEMU_BOOT_AUTO, &t, &err), -1, "missing");
	ok(err && strstr(err->msg, "nothing-kernel"), "mentions the kernel prefix: %s",
	   err ? err->msg : "");
	kiln_error_release(&err);
	mkdir("adir", 0755);
	is_int(qemu_detect("adir", QEMU_BOOT_AUTO, &t, &err), -1, "a directory");
	kiln_error_release(&err);
}

TEST(parse_disk)
{
	struct qemu_disk d;
	struct kiln_error *err = NULL;
	is_int(qemu_parse_disk("disk.img", &d, &err), 0, "bare path");
	is_str(d.path, "disk.img", "path");
	is_int(d.size_mb, 0, "no size");
	qemu_disk_release(&d);
	is_int(qemu_parse_disk("file=/x/d.qcow2,size=2G,format=qcow2", &d, &err), 0, "full");
	is_str(d.path, "/x/d.qcow2", "path");
	is_int(d.size_mb, 2048, "2G");
	is_str(d.format, "qcow2", "format");
	qemu_disk_release(&d);
	is_int(qemu_parse_disk("d.img,size=512M,if=virtio", &d, &err), 0, "M and if");
	is_int(d.size_mb, 512, "512M");
	is_str(d.interface, "virtio", "if");
	qemu_disk_release(&d);
	is_int(qemu_parse_disk("size=4", &d, &err), 0, "size only, bare number is GB");
	ok(d.path == NULL, "no path yet");
	is_int(d.size_mb, 4096, "4 GB");
	qemu_disk_release(&d);
	const char *bad[] = {"",
			     "size=0",
			     "size=12X",
			     "d.img,bogus=1",
			     "d.img,extra",
			     "size=-1",
			     "d.img,format=raw,format=qcow2"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ok(qemu_parse_disk(bad[i], &d, &err) == -1, "rejects `%s`", bad[i]);
		ok(err != NULL, "error for `%s`", bad[i]);
		kiln_error_release(&err);
	}
}

TEST(parse_publish)
{
	struct qemu_publish p;
	struct kiln_error *err = NULL;
	is_int(qemu_parse_publish("8080:80", &p, &err), 0, "tcp default");
	is_int(p.host_port, 8080, "host");
	is_int(p.guest_port, 80, "guest");
	ok(!p.udp, "tcp");
	is_int(qemu_parse_publish("5353:53/udp", &p, &err), 0, "udp");
	ok(p.udp, "udp");
	is_int(qemu_parse_publish("127.0.0.1:2222:22/tcp", &p, &err), 0, "with address");
	is_int(p.host_port, 2222, "host port after the address");
	const char *bad[] = {"80", "a:b", "0:80", "70000:80", "80:80/sctp", ":80", "80:"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ok(qemu_parse_publish(bad[i], &p, &err) == -1, "rejects `%s`", bad[i]);
		kiln_error_release(&err);
	}
}

TEST(parse_networking)
{
	struct qemu_net n;
	struct kiln_error *err = NULL;
	is_int(qemu_parse_networking("user", &n, &err), 0, "user");
	is_int(n.kind, QEMU_NET_USER, "kind");
	is_int(qemu_parse_networking("default", &n, &err), 0, "LinuxKit's default");
	is_int(qemu_parse_networking("none", &n, &err), 0, "none");
	is_int(n.kind, QEMU_NET_NONE, "kind");
	is_int(qemu_parse_networking("socket-listen=4000", &n, &err), 0, "listen");
	is_str(n.addr, "127.0.0.1:4000", "loopback by default");
	qemu_net_release(&n);
	is_int(qemu_parse_networking("socket-connect=10.0.0.2:4000", &n, &err), 0, "connect");
	is_str(n.addr, "10.0.0.2:4000", "host kept");
	qemu_net_release(&n);
	is_int(qemu_parse_networking("mcast=230.0.0.7:1234", &n, &err), 0, "mcast");
	is_int(n.kind, QEMU_NET_MCAST, "kind");
	is_str(n.addr, "230.0.0.7:1234", "group");
	qemu_net_release(&n);
	const char *bad[] = {"tap,tap0", "bridge,br0", "socket-listen=", "mcast=x:y", "userx"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ok(qemu_parse_networking(bad[i], &n, &err) == -1, "rejects `%s`", bad[i]);
		kiln_error_release(&err);
	}
}

TEST(argv_kernel_boot)
{
	struct qemu_target t = {.kind = QEMU_BOOT_KERNEL,
				.kernel = "k-kernel",
				.initrd = "k-initrd.img",
				.cmdline = "console=ttyS0"};
	struct qemu_publish pub[] = {{false, 8080, 80}, {true, 5353, 53}};
	const char *macs[] = {"02:00:00:00:00:01"};
	struct qemu_config cfg = {.accel = "tcg",
				  .cpus = 2,
				  .mem_mb = 512,
				  .target = &t,
				  .publish = pub,
				  .n_publish = 2,
				  .macs = macs,
				  .cmdline_append = "kiln.x=1",
				  .pidfile = "s/qemu.pid",
				  .qmp_socket = "s/qmp.sock"};
	struct kiln_error *err = NULL;
	char **argv = qemu_build_argv(&cfg, &err);
	ok(argv != NULL, "built");
	if (!argv)
		return;
	is_str(argv[0], "qemu-system-x86_64", "binary");
	ok(argv_value(argv, "-smp", "2") != NULL, "-smp 2");
	ok(argv_value(argv, "-m", "512") != NULL, "-m 512");
	ok(argv_value(argv, "-machine", "q35,accel=tcg") != NULL, "q35 tcg");
	ok(argv_find(argv, "-cpu") < 0, "TCG: QEMU's default CPU model");
	is_str(argv_value(argv, "-kernel", ""), "k-kernel", "kernel");
	is_str(argv_value(argv, "-initrd", ""), "k-initrd.img", "initrd");
	is_str(argv_value(argv, "-append", ""), "console=ttyS0 kiln.x=1", "cmdline + append");
	is_str(argv_value(argv, "-netdev", "user"),
	       "user,id=net0,hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53", "hostfwd");
	is_str(argv_value(argv, "-device", "virtio-net"),
	       "virtio-net-pci,netdev=net0,mac=02:00:00:00:00:01", "NIC with MAC");
	is_str(argv_value(argv, "-serial", ""), "mon:stdio", "console and monitor on stdio");
	ok(argv_find(argv, "-nographic") > 0, "-nographic");
	is_str(argv_value(argv, "-qmp", ""), "unix:s/qmp.sock,server=on,wait=off", "QMP");
	ok(argv_value(argv, "-device", "virtio-rng-pci") != NULL, "rng");
	ok(argv_find(argv, "-drive") < 0, "no drives");
	qemu_argv_free(argv);
}

TEST(argv_iso_and_disks)
{
	struct qemu_target t = {.kind = QEMU_BOOT_ISO, .image = "a,b.iso"};
	struct qemu_disk disks[] = {
	    {.path = "d0.qcow2", .format = "qcow2"},
	    {.path = "d1.img", .format = "raw"},
	    {.path = "d2.img", .format = "raw", .interface = "virtio"},
	};
	const char *cdroms[] = {"data.iso"};
	struct qemu_config cfg = {.target = &t,
				  .accel = "kvm",
				  .disks = disks,
				  .n_disks = 3,
				  .cdroms = cdroms,
				  .n_cdroms = 1,
				  .uefi = true,
				  .fw = "code.fd",
				  .fw_vars = "s/vars.fd",
				  .gui = true};
	struct kiln_error *err = NULL;
	char **argv = qemu_build_argv(&cfg, &err);
	ok(argv != NULL, "built");
	if (!argv)
		return;
	ok(argv_value(argv, "-machine", "q35,accel=kvm") != NULL, "q35 kvm");
	is_str(argv_value(argv, "-cpu", ""), "host", "KVM: the host's CPU model");
	ok(argv_value(argv, "-drive", "file=d0.qcow2,format=qcow2,index=0,media=disk") != NULL,
	   "disk 0");
	ok(argv_value(argv, "-drive", "file=d1.img,format=raw,index=1,media=disk") != NULL,
	   "disk 1");
	ok(argv_value(argv, "-drive", "file=d2.img,format=raw,index=3,media=disk,if=virtio") !=
	       NULL,
	   "disk 2 skips index 2 (the CD-ROM)");
	ok(argv_value(argv, "-drive", "file=a,,b.iso,format=raw,index=2,media=cdrom") != NULL,
	   "the ISO at index 2, comma doubled");
	ok(argv_value(argv, "-drive", "file=data.iso,format=raw,index=4,media=cdrom,readonly=on") !=
	       NULL,
	   "metadata CD-ROM after");
	is_str(argv_value(argv, "-boot", ""), "d", "-boot d");
	ok(argv_value(argv, "-drive", "if=pflash,format=raw,unit=0,readonly=on,file=code.fd") !=
	       NULL,
	   "OVMF code read-only");
	ok(argv_value(argv, "-drive", "if=pflash,format=raw,unit=1,file=s/vars.fd") != NULL,
	   "OVMF vars writable");
	ok(argv_find(argv, "-nographic") < 0, "--gui: a display");
	ok(argv_find(argv, "-kernel") < 0, "no -kernel");
	qemu_argv_free(argv);
}

TEST(argv_squashfs_uki_networks)
{
	struct kiln_error *err = NULL;
	struct qemu_target sq = {
	    .kind = QEMU_BOOT_SQUASHFS, .kernel = "n-kernel", .rootfs = "n-squashfs.img"};
	struct qemu_net nets[] = {{QEMU_NET_USER, NULL},
				  {QEMU_NET_MCAST, "230.0.0.1:1234"},
				  {QEMU_NET_LISTEN, "127.0.0.1:4000"}};
	struct qemu_config cfg = {.target = &sq, .nets = nets, .n_nets = 3};
	char **argv = qemu_build_argv(&cfg, &err);
	ok(argv != NULL, "squashfs built");
	if (argv) {
		ok(argv_value(argv, "-drive", "file=n-squashfs.img,format=raw,index=0,media=disk"),
		   "root disk first");
		is_str(argv_value(argv, "-append", ""), "console=ttyS0 root=/dev/sda",
		       "default console, root=/dev/sda");
		ok(argv_value(argv, "-netdev", "socket,id=net1,mcast=230.0.0.1:1234") != NULL,
		   "mcast NIC");
		ok(argv_value(argv, "-netdev", "socket,id=net2,listen=127.0.0.1:4000") != NULL,
		   "listen NIC");
		ok(argv_value(argv, "-device", "virtio-net-pci,netdev=net2") != NULL, "third NIC");
		qemu_argv_free(argv);
	}

	struct qemu_target uki = {.kind = QEMU_BOOT_UKI, .image = "x.efi", .uefi = true};
	struct qemu_net none = {QEMU_NET_NONE, NULL};
	struct qemu_config c2 = {
	    .target = &uki, .fw = "s/fw.fd", .esp_image = "s/esp.img", .nets = &none, .n_nets = 1};
	argv = qemu_build_argv(&c2, &err);
	ok(argv != NULL, "uki built");
	if (argv) {
		ok(argv_value(argv, "-drive", "if=pflash,format=raw,unit=0,file=s/fw.fd") != NULL,
		   "combined firmware, writable copy");
		ok(argv_value(argv, "-drive", "file=s/esp.img,format=raw,index=0") != NULL,
		   "the ESP");
		is_str(argv_value(argv, "-nic", ""), "none", "no NIC");
		qemu_argv_free(argv);
	}
	c2.esp_image = NULL;
	ok(qemu_build_argv(&c2, &err) == NULL, "uki without ESP fails");
	kiln_error_release(&err);

	struct qemu_net bad[] = {{QEMU_NET_NONE, NULL}, {QEMU_NET_USER, NULL}};
	struct qemu_config c3 = {.target = &sq, .nets = bad, .n_nets = 2};
	ok(qemu_build_argv(&c3, &err) == NULL, "none with another network fails");
	kiln_error_release(&err);
	struct qemu_publish pub = {false, 80, 80};
	struct qemu_net mc = {QEMU_NET_MCAST, "230.0.0.1:1"};
	struct qemu_config c4 = {
	    .target = &sq, .nets = &mc, .n_nets = 1, .publish = &pub, .n_publish = 1};
	ok(qemu_build_argv(&c4, &err) == NULL, "--publish without user networking fails");
	kiln_error_release(&err);
}

TEST(state_mac_persists)
{
	struct kiln_error *err = NULL;
	cleanup_free char *a = qemu_state_mac(".", "mac-addr", false, &err);
	ok(a != NULL, "made");
	cleanup_free char *b = qemu_state_mac(".", "mac-addr", false, &err);
	ok(a && b && strcmp(a, b) == 0, "read back the same: %s %s", a, b);
	ok(a && (strtol(a, NULL, 16) & 3) == 2, "locally administered unicast: %s", a);
	touch("bad-mac", "zz\n", 3);
	ok(qemu_state_mac(".", "bad-mac", false, &err) == NULL, "junk is an error");
	kiln_error_release(&err);
}

TEST(firmware_copies)
{
	struct kiln_error *err = NULL;
	touch("code.fd", "CODE", 4);
	touch("vars.fd", "VARS", 4);
	mkdir("s", 0755);
	char *code = NULL, *vars = NULL;
	is_int(qemu_firmware_prepare("code.fd", "vars.fd", "s", false, &code, &vars, &err), 0,
	       "split");
	is_str(code, "code.fd", "code used in place");
	is_str(vars, "s/OVMF_VARS.fd", "vars copied");
	free(code);
	free(vars);
	touch("s/OVMF_VARS.fd", "CHANGED", 7);
	is_int(qemu_firmware_prepare("code.fd", "vars.fd", "s", false, &code, &vars, &err), 0,
	       "again");
	cleanup_free char *kept = read_file("s/OVMF_VARS.fd", 100, NULL, &err);
	is_str(kept, "CHANGED", "the variables persist across runs");
	free(code);
	free(vars);
	is_int(qemu_firmware_prepare("code.fd", NULL, "s", false, &code, &vars, &err), 0,
	       "combined");
	is_str(code, "s/fw.fd", "combined image copied");
	ok(vars == NULL, "no vars");
	free(code);
	ok(qemu_firmware_prepare("nope.fd", NULL, "s", false, &code, &vars, &err) < 0,
	   "missing fw");
	kiln_error_release(&err);
}

/* kiln run --dry-run: every state function names its file and writes none. */
TEST(dry_run_writes_nothing)
{
	struct kiln_error *err = NULL;
	touch("code.fd", "CODE", 4);
	touch("vars.fd", "VARS", 4);
	touch("uki.efi", "MZ", 2);
	touch("base.raw", "", 0);
	cleanup_free char *mac = qemu_state_mac("st", "mac-addr", true, &err);
	ok(mac != NULL && strlen(mac) == 17, "a MAC: %s", mac ? mac : "");
	char *code = NULL, *vars = NULL;
	is_int(qemu_firmware_prepare("code.fd", "vars.fd", "st", true, &code, &vars, &err), 0,
	       "firmware");
	is_str(vars, "st/OVMF_VARS.fd", "the variables copy is named");
	free(code);
	free(vars);
	struct qemu_disk d = {.size_mb = 16};
	is_int(qemu_disk_prepare(&d, "st", 0, true, &err), 0, "disk");
	is_str(d.path, "st/disk.img", "the disk is named");
	is_str(d.format, "qcow2", "as qcow2");
	qemu_disk_release(&d);
	cleanup_free char *esp = qemu_make_esp("uki.efi", "st", true, &err);
	is_str(esp, "st/esp.img", "the ESP is named");
	cleanup_free char *ov = qemu_make_overlay("base.raw", "raw", "st", true, &err);
	is_str(ov, "st/boot-overlay.qcow2", "the overlay is named");
	ok(access("st", F_OK) < 0 && errno == ENOENT, "no state dir made");
	kiln_error_release(&err);
}
