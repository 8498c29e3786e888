#!/usr/bin/env bash
# `make bench-run`: what `kiln run` costs on top of QEMU.  Prints
#   - the KVM probe: first answer and the cached answer
#   - kiln run --until vs. plain QEMU piped into grep, to the same SeaBIOS
#     console line (median of 5): the supervisor's overhead
#   - a boot of Debian's kernel + a busybox initrd to its marker under TCG
#     (median of 3)
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
KILN=${KILN:-$top/build/kiln}
t=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-run-XXXXXX")
trap 'rm -rf "$t"' EXIT
cd "$t"
now() { date +%s%N; }
ms() { echo $((($2 - $1) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

export XDG_RUNTIME_DIR=$t
unset KILN_QEMU_ACCEL
s=$(now); a=$("$KILN" run --print-accel); e=$(now)
echo "kvm probe: $a in $(ms "$s" "$e") ms (first run)"
s=$(now); "$KILN" run --print-accel >/dev/null; e=$(now)
echo "kvm probe: cached answer in $(ms "$s" "$e") ms"

export KILN_QEMU_ACCEL=tcg
qemu-img create -q -f raw empty.img 1M
for i in 1 2 3 4 5; do
	s=$(now)
	"$KILN" run -q --networking none --state st --until 'No bootable device' --timeout 60 empty.img
	e=$(now)
	ms "$s" "$e"
done | median | sed 's/^/kiln run to the SeaBIOS line, median of 5: /; s/$/ ms/'
for i in 1 2 3 4 5; do
	s=$(now)
	rm -f fifo && mkfifo fifo
	qemu-system-x86_64 -machine q35,accel=tcg -m 1024 -nographic -nic none \
		-drive file=empty.img,format=raw,index=0,media=disk </dev/null >fifo 2>/dev/null &
	q=$!
	grep -a -m1 -q 'No bootable device' <fifo || true
	e=$(now)
	kill "$q" 2>/dev/null; wait "$q" 2>/dev/null || true
	ms "$s" "$e"
done | median | sed 's/^/plain qemu | grep to the same line, median of 5: /; s/$/ ms/'

kdir=$("$top/tests/fixtures/debian-kernel.sh" 2>/dev/null) || { echo "no kernel fixture: boot skipped"; exit 0; }
"$top/tests/fixtures/tiny-initrd.sh" t-initrd.img "$kdir"
cp "$kdir/vmlinuz" t-kernel
echo "console=ttyS0 panic=-1 quiet kiln.test=marker" >t-cmdline
for i in 1 2 3; do
	s=$(now)
	"$KILN" run -q --mem 256 --state st2 --until KILN-TEST-MARKER --timeout 240 t
	e=$(now)
	ms "$s" "$e"
done | median | sed 's/^/kernel+initrd boot to the init marker (TCG), median of 3: /; s/$/ ms/'
