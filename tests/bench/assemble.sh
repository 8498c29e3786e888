#!/usr/bin/env bash
# `make bench-assemble`: warm-cache kernel+initrd of a manifest whose kernel
# image carries all of Debian's modules (~400 MB) plus busybox containers.
# Prints the median wall time and peak RSS of 5 builds, the time `gzip -6`
# needs on one core for the same uncompressed cpio bytes, and the median
# time of a rebuild after one `files` entry changed (into the same --dir, so
# the previous initrd is taken over: docs/assembly.md), next to the median
# time of `kiln --version` (process start: the floor of any kiln command).
# The load average is printed with the figures (the machine is shared).
# Goals (issue 4): RSS < 64 MB, wall <= 1.5 x gzip, rebuild < 0.3 s.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
KILN=${KILN:-$top/build/kiln}
K=$("$top/tests/fixtures/debian-kernel.sh")
L=${KILN_BENCH_LAYOUT:-$top/build/fixtures/bench-layout}
if [ ! -s "$L/index.json" ] || ! grep -q full-kernel "$L/index.json"; then
	echo "bench: building the fixture layout (once) in $L" >&2
	"$top/tests/fixtures/boot-images.sh" "$L" "$K" --full >/dev/null
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-XXXXXX")
trap 'rm -rf "$W"' EXIT
write_manifest() { # CONTENTS
	cat >"$W/bench.yml" <<EOF
kernel:
  image: kiln/full-kernel:1
  cmdline: "console=ttyS0"
init:
  - kiln/test-init:1
services:
  - name: b1
    image: kiln/busybox:1
  - name: b2
    image: kiln/busybox:1
    readonly: false
  - name: b3
    image: kiln/busybox:1
    pid: new
files:
  - path: etc/bench
    contents: "$1"
EOF
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() { # prints "WALL_SECONDS MAXRSS_KB" of one build; KILN_SECTION_CACHE=0: no reuse
	/usr/bin/time -f "%e %M" -o "$W/time" "$KILN" build -q --cache "$L" --dir "$W/out" "$W/bench.yml"
	cat "$W/time"
}
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
write_manifest first
export KILN_SECTION_CACHE=0 # full builds: every layer read, every member compressed
run >/dev/null # warm the page cache
: >"$W/runs"
for i in 1 2 3 4 5; do run >>"$W/runs"; done
wall=$(cut -d' ' -f1 "$W/runs" | median)
rss=$(cut -d' ' -f2 "$W/runs" | median)
maxrss=$(cut -d' ' -f2 "$W/runs" | sort -n | tail -1)
initrd=$(stat -c %s "$W/out/bench-initrd.img")
"$KILN" build -q --cache "$L" --dir "$W/raw" --compress none "$W/bench.yml"
raw=$(stat -c %s "$W/raw/bench-initrd.img")
s=$(date +%s.%N)
gzip -6 -c <"$W/raw/bench-initrd.img" >"$W/ref.gz"
e=$(date +%s.%N)
gz=$(awk -v a="$s" -v b="$e" "BEGIN{printf \"%.2f\", b-a}")
unset KILN_SECTION_CACHE
write_manifest "cache fill"
run >/dev/null # fills the rebuild cache
: >"$W/rebuilds"
for i in 1 2 3 4 5; do
	write_manifest "change $i"
	run | cut -d' ' -f1 >>"$W/rebuilds"
done
rebuild=$(median <"$W/rebuilds")
load_rebuild=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$W/starts"
for i in 1 2 3 4 5; do
	/usr/bin/time -f "%e" -o "$W/time" "$KILN" --version >/dev/null
	cat "$W/time" >>"$W/starts"
done
start=$(median <"$W/starts")
ratio=$(awk -v a="$wall" -v b="$gz" "BEGIN{printf \"%.2f\", a/b}")
echo "bench-assemble: kernel+initrd of $((raw / 1048576)) MiB uncompressed cpio -> $((initrd / 1048576)) MiB initrd ($(nproc) CPUs)"
echo "  full build (warm store, no rebuild cache, median of 5):  wall ${wall} s, peak RSS $((rss / 1024)) MiB (max $((maxrss / 1024)) MiB)   goal < 64 MiB"
echo "  gzip -6, one core, same bytes: ${gz} s   -> build/gzip = ${ratio}   goal <= 1.5"
echo "  rebuild after one files change (median of 5): ${rebuild} s   goal < 0.3 s   (all rebuilds: $(tr '\n' ' ' <"$W/rebuilds"))"
echo "  kiln --version (process start, median of 5): ${start} s"
echo "  load average at the start: ${load_start}; at the rebuilds: ${load_rebuild}"
