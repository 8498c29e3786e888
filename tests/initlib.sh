# Start-up shared by the boots of kiln's init (tests/boot/init_*.sh): the
# init test helpers, the skips (init built, QEMU, runc, containerd, the
# Debian kernel fixture in KDIR) and init_boot_start.  Source it after
# tests/lib.sh.
source "$TOP/init/tests/hostlib.sh"
source "$TOP/init/tests/bootlib.sh"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"
command -v qemu-system-x86_64 >/dev/null || skip_all "no qemu-system-x86_64"
command -v containerd >/dev/null && command -v runc >/dev/null || skip_all "needs runc and containerd"
KDIR=$("$TOP/tests/fixtures/debian-kernel.sh") || skip_all "no Debian kernel fixture"

# init_boot_start [APPEND]: assembles the initrd (a test point) and boots it
# with APPEND on the kernel command line; C is the console log, QEMU_PID is
# killed at exit and $T/mon is the monitor socket.
init_boot_start() {
	ok "initrd assembled" make_boot_initrd "$T/initrd.cpio" "$KDIR"
	C=$T/console
	qemu_boot "$T/initrd.cpio" "$KDIR" "$C" "$T/mon" "${1:-}"
	at_exit "kill $QEMU_PID"
}
