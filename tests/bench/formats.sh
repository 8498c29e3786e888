#!/usr/bin/env bash
# make bench-formats: for the same inputs, the wall time of every output
# format next to kernel+initrd's.
#  1. `kiln build -format F examples/minimal.yml` with a warm image cache
#     ($KILN_CACHE, default build/test-cache, filled by the boot tests or a
#     first build), each format built alone, best of $REPS runs;
#  2. the writers alone (build/tests/formats-run) on the fixture inputs of
#     tests/fixtures/formats-inputs.sh, --size 1G.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${KILN_BUILD:-build}
kiln=$top/$build/kiln
run=$top/$build/tests/formats-run
export KILN_CACHE=${KILN_CACHE:-$top/build/test-cache}
reps=${REPS:-2}
manifest=${MANIFEST:-$top/examples/minimal.yml}
formats="kernel+initrd iso-bios iso-efi iso-efi-initrd raw-bios raw-efi uki qcow2-bios qcow2-efi vhd dynamic-vhd vmdk gcp aws kernel+squashfs kernel+erofs"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-formats-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
now() { date +%s.%N; }
best() { # CMD...: best wall time of $reps runs, or "fail"
	local b="" t0 t i
	for ((i = 0; i < reps; i++)); do
		rm -rf "$tmp/out" && mkdir -p "$tmp/out"
		t0=$(now)
		"$@" >/dev/null 2>"$tmp/err" || { echo fail; return; }
		t=$(echo "$(now) - $t0" | bc)
		if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
	done
	printf '%.2f' "$b"
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
if [ -x "$kiln" ] && [ -f "$manifest" ]; then
	echo "== kiln build -format F $(basename "$manifest") (warm cache $KILN_CACHE, best of $reps)"
	# Warm the cache (packages, images) once.
	"$kiln" build -q -format kernel+initrd -dir "$tmp" "$manifest" >/dev/null 2>&1
	ref=""
	printf '%-16s %9s %7s\n' format seconds ratio
	for f in $formats; do
		t=$(best "$kiln" build -q -format "$f" -dir "$tmp/out" "$manifest")
		[ "$f" = kernel+initrd ] && ref=$t
		if [ "$t" = fail ]; then printf '%-16s %9s\n' "$f" "FAILED: $(tail -c 200 "$tmp/err")"; continue; fi
		printf '%-16s %9s %6.2fx\n' "$f" "$t" "$(echo "$t / $ref" | bc -l)"
	done
fi
if [ -x "$run" ]; then
	in=$("$top/tests/fixtures/formats-inputs.sh")
	echo "== the writers alone (formats-run, fixture inputs: $(du -h "$in/initrd.img" | cut -f1) initrd, $(du -h "$in/rootfs.tar" | cut -f1) rootfs tar, --size 1G)"
	printf '%-16s %9s\n' format seconds
	for f in $formats; do
		[ "$f" = kernel+initrd ] && continue
		t=$(best "$run" "$f" --dir "$tmp/out" --name t --kernel "$in/kernel" --initrd "$in/initrd.img" \
			--tar "$in/rootfs.tar" --cmdline "$(cat "$in/cmdline")" --size 1073741824)
		printf '%-16s %9s\n' "$f" "$t"
	done
fi
