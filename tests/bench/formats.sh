#!/usr/bin/env bash
# make bench-formats (issue 7): for one manifest, the wall time of every
# output format next to kernel+initrd's, measured the same way for both:
#
#  full     the image store warm ($KILN_CACHE, default build/test-cache),
#           the rebuild cache off (KILN_SECTION_CACHE=0): every build reads
#           every layer and compresses everything it writes.  This is the
#           "warm cache" of issue 4's bench-assemble full build, and the
#           comparison issue 7's goal (every format within 1.5x of
#           kernel+initrd) is judged on.
#  rebuild  the image store and the rebuild cache warm (the same manifest
#           built just before): kernel+initrd takes its compressed members
#           from the cache, and so does every format that carries that
#           initrd (ISO, raw, UKI, qcow2, VHD, VMDK, GCP, AWS: they get it
#           from the same step); kernel+squashfs/erofs compress their root
#           image every time.  Each build goes to a fresh --dir, so no
#           format takes over a previous output (docs/assembly.md).
#
# Each format is measured in pairs with kernel+initrd built just before it
# (the load of a shared machine changes from minute to minute), $REPS pairs
# (default 3; REPS_FULL, default 1, for the full mode); the ratio is the
# median of the format's times over the median of its kernel+initrd times,
# for the wall time (the goal) and for the CPU time (user + system of kiln
# and its tools: steadier than the wall time on a loaded machine).  The load
# average is printed with each table.
#   MODES="full rebuild"  which tables (default both)
#   FORMATS="..."         which formats (default all)
#   MANIFEST=FILE         default examples/minimal.yml
# Then the writers alone (build/tests/formats-run) on the fixture inputs of
# tests/fixtures/formats-inputs.sh, --size 1G.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${KILN_BUILD:-build}
kiln=${KILN:-$top/$build/kiln}
run=$top/$build/tests/formats-run
export KILN_CACHE=${KILN_CACHE:-$top/build/test-cache}
reps=${REPS:-3}
reps_full=${REPS_FULL:-1}
modes=${MODES:-full rebuild}
manifest=${MANIFEST:-$top/examples/minimal.yml}
formats=${FORMATS:-iso-bios iso-efi iso-efi-initrd raw-bios raw-efi uki qcow2-bios qcow2-efi vhd dynamic-vhd vmdk gcp aws kernel+squashfs kernel+erofs}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-formats-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.2f", a[int((NR+1)/2)]}'; }
# timed N CMD...: appends N lines "WALL CPU" (seconds; CPU = user + system
# of kiln and the tools it runs) of CMD, each into a fresh --dir, to
# $tmp/t; returns 1 (and leaves the error in $tmp/err) on failure.
timed() {
	local n=$1 i
	shift
	for ((i = 0; i < n; i++)); do
		rm -rf "$tmp/out"
		/usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" -dir "$tmp/out" "$manifest" >/dev/null 2>"$tmp/err" || return 1
		awk '{printf "%s %.2f\n", $1, $2 + $3}' "$tmp/time" >>"$tmp/t"
	done
}
table() { # MODE
	local mode=$1 n=$reps f t k r v tc kc rc
	[ "$mode" = full ] && n=$reps_full
	local env=()
	[ "$mode" = full ] && env=(env KILN_SECTION_CACHE=0)
	echo "== $mode: kiln build -format F $(basename "$manifest"); each format paired with kernel+initrd run just before it, median of $n pairs (load average $(load))"
	printf '%-16s %8s %8s %7s   %8s %8s %7s\n' "" wall k+i ratio cpu k+i ratio
	local met=() missed=() cmet=()
	for f in $formats; do
		: >"$tmp/kt" && : >"$tmp/ft"
		local ok=1
		for ((i = 0; i < n && ok; i++)); do
			: >"$tmp/t"
			timed 1 "${env[@]}" "$kiln" build -q -format kernel+initrd && cat "$tmp/t" >>"$tmp/kt" || ok=0
			: >"$tmp/t"
			timed 1 "${env[@]}" "$kiln" build -q -format "$f" && cat "$tmp/t" >>"$tmp/ft" || ok=0
		done
		if [ "$ok" = 0 ]; then
			printf '%-16s FAILED: %s\n' "$f" "$(tail -c 160 "$tmp/err" | tr '\n' ' ')"
			missed+=("$f")
			continue
		fi
		t=$(cut -d' ' -f1 "$tmp/ft" | median) k=$(cut -d' ' -f1 "$tmp/kt" | median)
		tc=$(cut -d' ' -f2 "$tmp/ft" | median) kc=$(cut -d' ' -f2 "$tmp/kt" | median)
		r=$(echo "$t / $k" | bc -l) rc=$(echo "$tc / $kc" | bc -l)
		if [ "$(echo "$r <= 1.5" | bc)" = 1 ]; then met+=("$f") v=met; else missed+=("$f") v=missed; fi
		[ "$(echo "$rc <= 1.5" | bc)" = 1 ] && cmet+=("$f")
		printf '%-16s %8s %8s %6.2fx   %8s %8s %6.2fx  %s\n' "$f" "$t" "$k" "$r" "$tc" "$kc" "$rc" "$v"
	done
	echo "$mode: within 1.5x (wall): ${met[*]:-none}"
	echo "$mode: not within 1.5x (wall): ${missed[*]:-none}"
	echo "$mode: within 1.5x (cpu): ${cmet[*]:-none}"
	echo "$mode: load average at the end $(load)"
}
echo "bench-formats: $(nproc) CPUs, load average $(load)"
if [ -x "$kiln" ] && [ -f "$manifest" ]; then
	# Fill the store and the rebuild cache once.
	"$kiln" build -q -format kernel+initrd -dir "$tmp/warm" "$manifest" >/dev/null 2>&1
	for m in $modes; do table "$m"; done
fi
if [ -x "$run" ]; then
	in=$("$top/tests/fixtures/formats-inputs.sh")
	echo "== the writers alone (formats-run, fixture inputs: $(du -h "$in/initrd.img" | cut -f1) initrd, $(du -h "$in/rootfs.tar" | cut -f1) rootfs tar, --size 1G, median of $reps, load average $(load))"
	printf '%-16s %9s\n' format seconds
	for f in $formats; do
		: >"$tmp/t"
		for ((i = 0; i < reps; i++)); do
			rm -rf "$tmp/out" && mkdir -p "$tmp/out"
			s=$(date +%s.%N)
			"$run" "$f" --dir "$tmp/out" --name t --kernel "$in/kernel" --initrd "$in/initrd.img" \
				--tar "$in/rootfs.tar" --cmdline "$(cat "$in/cmdline")" --size 1073741824 \
				>/dev/null 2>"$tmp/err" || { echo fail >"$tmp/t"; break; }
			echo "$(date +%s.%N) - $s" | bc >>"$tmp/t"
		done
		printf '%-16s %9s\n' "$f" "$(grep -q fail "$tmp/t" && echo FAILED || median <"$tmp/t")"
	done
fi
