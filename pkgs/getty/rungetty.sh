#!/bin/sh
# A getty on every console of the kernel command line (like LinuxKit's
# getty; busybox getty makes its own session).  INSECURE=true: a root
# shell without login.
set -u
infinite() { while true; do "$@"; sleep 1; done; }

consoles=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^console=\([^,]*\).*/\1/p')
[ -n "$consoles" ] || consoles=tty0
for c in $consoles; do
	[ "$c" = tty0 ] && c=tty1
	[ -c "/dev/$c" ] || continue
	if [ "${INSECURE:-false}" = true ]; then
		infinite /sbin/getty -n -l /bin/sh 115200 "$c" &
	else
		infinite /sbin/getty 115200 "$c" &
	fi
done
wait
