#!/usr/bin/env bash
# kiln.copyroot=1: init copies the RAM root to a fresh tmpfs file by file (as
# LinuxKit's /init does) before anything else, and runc still works on it.
source "$(dirname "$0")/../lib.sh"
source "$TOP/init/tests/hostlib.sh"
source "$TOP/init/tests/bootlib.sh"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"
command -v qemu-system-x86_64 >/dev/null || skip_all "no qemu-system-x86_64"
command -v containerd >/dev/null && command -v runc >/dev/null || skip_all "needs runc and containerd"
KDIR=$("$TOP/tests/fixtures/debian-kernel.sh") || skip_all "no Debian kernel fixture"

ok "initrd assembled" make_boot_initrd "$T/initrd.cpio" "$KDIR"
C=$T/console
qemu_boot "$T/initrd.cpio" "$KDIR" "$C" "$T/mon" kiln.copyroot=1
at_exit "kill $QEMU_PID"
ok "the root was copied to tmpfs" wait_console "$C" 'moved the root from RAM to tmpfs in' 90
ok "init carried on after the re-exec" wait_console "$C" 'mounted /proc /sys /dev' 30
ok "runc ran the onboot container on the copied root" wait_console "$C" '000-hello: exited \(exit status 0\)' 90
grep -E 'kiln-init|MARKER' "$C" | sed 's/^/# /'
done_testing
