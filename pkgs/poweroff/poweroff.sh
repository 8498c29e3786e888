#!/bin/sh
# poweroff.sh [SECONDS]: wait, then power off at once (the kernel's
# reboot(2); needs pid: host and CAP_SYS_BOOT).
sleep "${1:-0}"
sync
exec /bin/busybox poweroff -f
