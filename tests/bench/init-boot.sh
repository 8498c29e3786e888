#!/usr/bin/env bash
# make bench-boot: boots the init boot-test image (Debian kernel, kiln's init,
# runc, containerd, one onboot container, two services) N times under QEMU
# TCG and prints the guest uptime when init starts, when the last onboot
# container has ended and when the last service has started, and their median.
#   KILN_BENCH_BOOTS (default 5), KILN_BENCH_APPEND (extra kernel arguments),
#   BOOT_RUNTIME=crun (crun as /usr/bin/runc instead of runc)
source "$(dirname "$0")/../lib.sh"
source "$TOP/init/tests/hostlib.sh"
source "$TOP/init/tests/bootlib.sh"
N=${KILN_BENCH_BOOTS:-5}
export BOOT_WITH_FAILURE=0
APPEND=${KILN_BENCH_APPEND:-}
KDIR=$("$TOP/tests/fixtures/debian-kernel.sh") || { echo "bench-boot: no kernel fixture" >&2; exit 1; }
make_boot_initrd "$T/initrd.cpio" "$KDIR" || { echo "bench-boot: initrd failed" >&2; exit 1; }
stamp() { grep -m1 "$2" "$1" | sed -E 's/^\[ *([0-9.]+)\].*/\1/'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
: >"$T/results"
for i in $(seq "$N"); do
	C=$T/console.$i
	qemu_boot "$T/initrd.cpio" "$KDIR" "$C" "$T/mon.$i" "$APPEND"
	if wait_console "$C" 'BENCH services-started' 300; then
		s=$(stamp "$C" 'BENCH init-start'); o=$(stamp "$C" 'BENCH onboot-done')
		v=$(stamp "$C" 'BENCH services-started')
		d=$(awk -v a="$s" -v b="$v" 'BEGIN {printf "%.3f", b - a}')
		echo "$s $o $v $d" >>"$T/results"
		printf 'boot %d: init start %6.3f s  onboot done %6.3f s  services started %6.3f s  (init→services %s s)\n' \
			"$i" "$s" "$o" "$v" "$d"
	else
		echo "boot $i: services not started within 300 s"
	fi
	kill "$QEMU_PID" 2>/dev/null; wait "$QEMU_PID" 2>/dev/null
done
nres=$(wc -l <"$T/results")
load=$(cut -d' ' -f1 /proc/loadavg)
echo "median of $nres boots: guest uptime, TCG, runtime ${BOOT_RUNTIME:-runc}, kernel args: ${APPEND:-none}, host load average $load"
echo "  init start:            $(cut -d' ' -f1 "$T/results" | median) s"
echo "  last onboot ended:     $(cut -d' ' -f2 "$T/results" | median) s"
echo "  last service started:  $(cut -d' ' -f3 "$T/results" | median) s"
echo "  init start → services: $(cut -d' ' -f4 "$T/results" | median) s  (goal ≤ 2.0 s)"
trap - EXIT; rm -rf "$T"
