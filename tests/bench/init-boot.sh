#!/usr/bin/env bash
# make bench-boot: boots an image N times under QEMU TCG and prints the guest
# uptime when init starts, when the last onboot container has ended and when
# the last service has started (init's BENCH console lines), and their median.
#   KILN_BENCH_IMAGE=minimal (default): examples/minimal.yml built by `kiln
#     build -format kernel+initrd` (dhcpcd onboot, getty service),
#     measured twice: as written (runc, LinuxKit's runtime, the default), then
#     a copy with pkgs/crun added to `init:` (init then runs crun for the
#     onboot containers and has containerd's shim run it for the services);
#     KILN_BENCH_RUNTIMES="runc crun" (default) picks either or both.  Falls
#     back to the synthetic image when the build fails.
#   KILN_BENCH_IMAGE=synthetic: init/tests/bootlib.sh's image (Debian kernel,
#     one onboot container, three services), BOOT_RUNTIME=crun for crun.
#   KILN_BENCH_BOOTS (default 5), KILN_BENCH_APPEND (extra kernel arguments),
#   KILN_BENCH_CPUS (default "1 2": each image is measured with one virtual
#     CPU, `kiln run`'s and LinuxKit's default, then with two, where init's
#     parallel work (modules, containerd beside the onboot containers) shows;
#     TCG runs each virtual CPU on its own host thread)
#   KILN_BENCH_MACHINES (default "pc"): QEMU machine types, each measured in
#     turn; "pc q35" adds q35, the machine `kiln run qemu` and LinuxKit boot
#     (AHCI instead of PIIX IDE, PCIe; both with QEMU's default empty CD-ROM)
source "$(dirname "$0")/../lib.sh"
source "$TOP/init/tests/hostlib.sh"
source "$TOP/init/tests/bootlib.sh"
N=${KILN_BENCH_BOOTS:-5}
APPEND=${KILN_BENCH_APPEND:-}
IMAGE=${KILN_BENCH_IMAGE:-minimal}
CPUS=${KILN_BENCH_CPUS:-1 2}
MACHINES=${KILN_BENCH_MACHINES:-pc}
export BOOT_WITH_FAILURE=0
KDIR=$("$TOP/tests/fixtures/debian-kernel.sh") || { echo "bench-boot: no kernel fixture" >&2; exit 1; }
stamp() { grep -m1 "$2" "$1" | sed -E 's/^\[ *([0-9.]+)\].*/\1/'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }

# bench LABEL INITRD APPEND: N boots, one line each, then the medians.
bench() {
	local label=$1 initrd=$2 append=$3 i C s o v d
	: >"$T/results"
	for i in $(seq "$N"); do
		C=$T/console.$label.$MACHINE.smp${SMP:-1}.$i
		qemu_boot "$initrd" "$KDIR" "$C" "$T/mon.$i" "$append"
		if ! wait_console "$C" 'BENCH services-started' 300; then
			echo "$label boot $i: services not started within 300 s"
		elif ! grep -q 'BENCH services-started (0 failed)' "$C"; then
			echo "$label boot $i: a service failed, not counted:"
			grep -E 'kiln-init: (warning|.*FAILED)' "$C" | sed 's/^/#   /'
		else
			s=$(stamp "$C" 'BENCH init-start'); o=$(stamp "$C" 'BENCH onboot-done')
			v=$(stamp "$C" 'BENCH services-started')
			d=$(awk -v a="$s" -v b="$v" 'BEGIN {printf "%.3f", b - a}')
			echo "$s $o $v $d" >>"$T/results"
			printf '%s %s -smp %s boot %d: init start %6.3f s  onboot done %6.3f s  services started %6.3f s  (init→services %s s)\n' \
				"$label" "$MACHINE" "${SMP:-1}" "$i" "$s" "$o" "$v" "$d"
		fi
		kill "$QEMU_PID" 2>/dev/null; wait "$QEMU_PID" 2>/dev/null
	done
	local nres load
	nres=$(wc -l <"$T/results")
	load=$(cut -d' ' -f1 /proc/loadavg)
	echo "median of $nres boots of the $label image: guest uptime, TCG -smp ${SMP:-1}, machine $MACHINE, kernel args: ${append:-none}, host load average $load"
	echo "  init start:            $(cut -d' ' -f1 "$T/results" | median) s"
	echo "  last onboot ended:     $(cut -d' ' -f2 "$T/results" | median) s"
	echo "  last service started:  $(cut -d' ' -f3 "$T/results" | median) s"
	echo "  init start → services: $(cut -d' ' -f4 "$T/results" | median) s  (goal ≤ 2.0 s)"
}

# build_minimal MANIFEST DIR: kiln build -format kernel+initrd; prints the
# initrd's path, sets BOOT_KERNEL and CMDLINE.
build_minimal() {
	local m=$1 dir=$2 name
	name=$(basename "$m" .yml)
	"$KILN" build -q -format kernel+initrd -dir "$dir" "$m" >"$T/build.log" 2>&1 || return 1
	export BOOT_KERNEL=$dir/$name-kernel
	CMDLINE=$(cat "$dir/$name-cmdline")
	INITRD=$dir/$name-initrd.img
}

if [ "$IMAGE" = minimal ]; then
	export KILN_CACHE=${KILN_CACHE:-$TOP/build/test-cache}
	# The crun variant: minimal.yml with pkgs/crun beside pkgs/runc (package
	# paths made absolute, as the copy lives elsewhere).
	sed -e "s#@pkg:\.\./#@pkg:$TOP/#" \
		-e "s#^\(  - \"@pkg:$TOP/pkgs/runc\"\)\$#\1\n  - \"@pkg:$TOP/pkgs/crun\"#" \
		"$TOP/examples/minimal.yml" >"$T/minimal-crun.yml"
	grep -q pkgs/crun "$T/minimal-crun.yml" || { echo "bench-boot: no crun variant of minimal.yml" >&2; exit 1; }
	for rt in ${KILN_BENCH_RUNTIMES:-runc crun}; do
		m=$TOP/examples/minimal.yml
		[ "$rt" = crun ] && m=$T/minimal-crun.yml
		if build_minimal "$m" "$T/img-$rt"; then
			for MACHINE in $MACHINES; do
				for cpus in $CPUS; do
					SMP=$cpus QEMU_EXTRA="-machine $MACHINE ${QEMU_EXTRA:-}" \
						bench "minimal($rt)" "$INITRD" "$CMDLINE $APPEND"
				done
			done
		else
			sed 's/^/# /' "$T/build.log" | tail -5
			echo "bench-boot: kiln build $m failed: using the synthetic image"
			IMAGE=synthetic
			break
		fi
	done
fi
if [ "$IMAGE" = synthetic ]; then
	unset BOOT_KERNEL
	make_boot_initrd "$T/initrd.cpio" "$KDIR" || { echo "bench-boot: initrd failed" >&2; exit 1; }
	for MACHINE in $MACHINES; do
		for cpus in $CPUS; do
			SMP=$cpus QEMU_EXTRA="-machine $MACHINE ${QEMU_EXTRA:-}" \
				bench "synthetic(${BOOT_RUNTIME:-runc})" "$T/initrd.cpio" "$APPEND"
		done
	done
fi
# KILN_BENCH_KEEP=DIR keeps the consoles and images for a look afterwards.
[ -n "${KILN_BENCH_KEEP:-}" ] && cp -r "$T" "$KILN_BENCH_KEEP"
trap - EXIT; rm -rf "$T"
