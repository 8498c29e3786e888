#!/usr/bin/env bash
# Paired boots of two kernel+initrd builds of the same manifest, A and B
# alternating, for judging a change to the init when the host's own speed
# drifts by a quarter from one minute to the next (the median of five boots
# of each, run one after the other, then mostly measures the host):
#   tests/bench/init-ab.sh DIR_A DIR_B [PAIRS (6)] [VCPUS (2)]
# DIR_A and DIR_B hold NAME-kernel, NAME-initrd.img and NAME-cmdline (`kiln
# build -format kernel+initrd -dir DIR`); AB_APPEND adds kernel arguments,
# AB_KEEP=DIR keeps the consoles.  Prints per pair the uptime at init start
# and init start → last onboot ended → last service started, then the
# medians and the median of the paired differences B - A.  Not part of
# `make bench`.
source "$(dirname "$0")/../lib.sh"
source "$TOP/init/tests/hostlib.sh"
source "$TOP/init/tests/bootlib.sh"
[ $# -ge 2 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
A=$1 B=$2 N=${3:-6}
export SMP=${4:-2}
KDIR=$("$TOP/tests/fixtures/debian-kernel.sh") || { echo "init-ab: no kernel fixture" >&2; exit 1; }
stamp() { grep -a -m1 "$2" "$1" | sed -E 's/^\[ *([0-9.]+)\].*/\1/'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "n/a"}'; }

# boot DIR LABEL I: prints "START ONBOOT TOTAL" (seconds) or nothing.
boot() {
	local d=$1 c=$T/console.$2.$3 k
	k=$(ls "$d"/*-kernel 2>/dev/null | head -1)
	[ -n "$k" ] || { echo "init-ab: no *-kernel in $d" >&2; return 1; }
	local base=${k%-kernel}
	BOOT_KERNEL=$k qemu_boot "$base-initrd.img" "$KDIR" "$c" "$T/mon.$2.$3" "$(cat "$base-cmdline") ${AB_APPEND:-}"
	wait_console "$c" 'BENCH services-started' 300
	kill "$QEMU_PID" 2>/dev/null
	wait "$QEMU_PID" 2>/dev/null
	[ -n "${AB_KEEP:-}" ] && mkdir -p "$AB_KEEP" && cp "$c" "$AB_KEEP/"
	local s o v
	s=$(stamp "$c" 'BENCH init-start') o=$(stamp "$c" 'BENCH onboot-done') v=$(stamp "$c" 'BENCH services-started')
	[ -n "$s" ] && [ -n "$v" ] && awk -v s="$s" -v o="$o" -v v="$v" 'BEGIN {printf "%.3f %.3f %.3f\n", s, o - s, v - s}'
}

for i in $(seq "$N"); do
	a=$(boot "$A" A "$i") b=$(boot "$B" B "$i")
	echo "pair $i: A ${a:-(no services: see AB_KEEP)}   B ${b:-(no services: see AB_KEEP)}"
	[ -n "$a" ] && [ -n "$b" ] || continue
	echo "${a##* }" >>"$T/a"
	echo "${b##* }" >>"$T/b"
	awk -v a="${a##* }" -v b="${b##* }" 'BEGIN {printf "%.3f\n", b - a}' >>"$T/d"
done
echo "init start → services, -smp $SMP, median of $(wc -l <"$T/d" 2>/dev/null || echo 0) pairs:" \
	"A $(median <"$T/a" 2>/dev/null) s, B $(median <"$T/b" 2>/dev/null) s, B - A $(median <"$T/d" 2>/dev/null) s"
trap - EXIT
rm -rf "$T"
