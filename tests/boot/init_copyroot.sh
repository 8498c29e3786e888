#!/usr/bin/env bash
# kiln.copyroot=1: init copies the RAM root to a fresh tmpfs file by file (as
# LinuxKit's /init does) before anything else, and runc still works on it.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/initlib.sh"
init_boot_start kiln.copyroot=1
ok "the root was copied to tmpfs" wait_console "$C" 'moved the root from RAM to tmpfs in' 90
ok "init carried on after the re-exec" wait_console "$C" 'mounted /proc /sys /dev' 30
ok "runc ran the onboot container on the copied root" wait_console "$C" '000-hello: exited \(exit status 0\)' 90
grep -E 'kiln-init|MARKER' "$C" | sed 's/^/# /'
done_testing
