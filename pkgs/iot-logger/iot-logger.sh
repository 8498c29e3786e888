#!/bin/sh
# iot-logger [DIR]: records this boot in DIR/boots.log and prints the file's
# lines on the console as "iot-logger: LINE", then refreshes DIR/heartbeat.
bb=/bin/busybox
dir=${1:-/data}
log=$dir/boots.log
say() {
	# /dev/kmsg reaches the console; stdout reaches /var/log/iot-logger.out.log.
	echo "iot-logger: $*"
	echo "iot-logger: $*" >/dev/kmsg 2>/dev/null
}
if [ "$($bb stat -c %d "$dir")" = "$($bb stat -c %d "$dir/..")" ]; then
	say "WARNING: $dir is not a mount point: the data disk is missing, state will not persist"
fi
n=1
[ -f "$log" ] && n=$(($($bb wc -l <"$log") + 1))
boot_id=$($bb cat /proc/sys/kernel/random/boot_id 2>/dev/null)
echo "boot $n at $($bb date -u +%Y-%m-%dT%H:%M:%SZ) id $boot_id" >>"$log" || {
	say "ERROR: cannot write $log"
	exit 1
}
$bb sync
say "boot $n recorded in $log; its lines:"
while IFS= read -r line; do say "  $line"; done <"$log"
say "history-end ($n boots)"
while :; do
	$bb date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/heartbeat.tmp" && $bb mv "$dir/heartbeat.tmp" "$dir/heartbeat"
	$bb sleep 30
done
