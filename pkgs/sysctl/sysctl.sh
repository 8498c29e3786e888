#!/bin/sh
# Applies every /etc/sysctl.d/*.conf in order; a key the kernel lacks is
# reported and skipped.
status=0
for f in /etc/sysctl.d/*.conf; do
	[ -f "$f" ] || continue
	/bin/busybox sysctl -p "$f" || status=1
done
exit $status
