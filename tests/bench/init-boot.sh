#!/usr/bin/env bash
# make bench-boot: boots an image N times under QEMU TCG and prints the guest
# uptime when init starts, when the last onboot container has ended and when
# the last service has started (init's BENCH console lines), and their median.
#   KILN_BENCH_IMAGE=minimal (default): examples/minimal.yml built by `kiln
#     build -format kernel+initrd` (sysctl + dhcpcd onboot, getty service);
#     falls back to the synthetic image when the build fails.
#   KILN_BENCH_IMAGE=synthetic: init/tests/bootlib.sh's image (Debian kernel,
#     one onboot container, three services), BOOT_RUNTIME=crun for crun.
#   KILN_BENCH_BOOTS (default 5), KILN_BENCH_APPEND (extra kernel arguments)
source "$(dirname "$0")/../lib.sh"
source "$TOP/init/tests/hostlib.sh"
source "$TOP/init/tests/bootlib.sh"
N=${KILN_BENCH_BOOTS:-5}
APPEND=${KILN_BENCH_APPEND:-}
IMAGE=${KILN_BENCH_IMAGE:-minimal}
export BOOT_WITH_FAILURE=0
KDIR=$("$TOP/tests/fixtures/debian-kernel.sh") || { echo "bench-boot: no kernel fixture" >&2; exit 1; }
INITRD=$T/initrd.cpio
if [ "$IMAGE" = minimal ]; then
	export KILN_CACHE=${KILN_CACHE:-$TOP/build/test-cache}
	if "$KILN" build -q -format kernel+initrd -dir "$T/img" "$TOP/examples/minimal.yml" \
		>"$T/build.log" 2>&1; then
		INITRD=$T/img/minimal-initrd.img
		export BOOT_KERNEL=$T/img/minimal-kernel
		APPEND="$(cat "$T/img/minimal-cmdline") $APPEND"
	else
		sed 's/^/# /' "$T/build.log" | tail -5
		echo "bench-boot: kiln build examples/minimal.yml failed: using the synthetic image"
		IMAGE=synthetic
	fi
fi
if [ "$IMAGE" = synthetic ]; then
	make_boot_initrd "$INITRD" "$KDIR" || { echo "bench-boot: initrd failed" >&2; exit 1; }
fi
stamp() { grep -m1 "$2" "$1" | sed -E 's/^\[ *([0-9.]+)\].*/\1/'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }
: >"$T/results"
for i in $(seq "$N"); do
	C=$T/console.$i
	qemu_boot "$INITRD" "$KDIR" "$C" "$T/mon.$i" "$APPEND"
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
echo "median of $nres boots of the $IMAGE image: guest uptime, TCG, runtime ${BOOT_RUNTIME:-runc}, kernel args: ${APPEND:-none}, host load average $load"
echo "  init start:            $(cut -d' ' -f1 "$T/results" | median) s"
echo "  last onboot ended:     $(cut -d' ' -f2 "$T/results" | median) s"
echo "  last service started:  $(cut -d' ' -f3 "$T/results" | median) s"
echo "  init start → services: $(cut -d' ' -f4 "$T/results" | median) s  (goal ≤ 2.0 s)"
trap - EXIT; rm -rf "$T"
