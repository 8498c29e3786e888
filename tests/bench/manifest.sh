#!/bin/bash
# Manifest parser figures: dry-run time of a small manifest (process start
# included), of a generated 5 MB manifest with 20,000 services, and of the
# hostile inputs (alias bomb, 100 MB file), best of 3 each.
set -u
KILN=${KILN:-$(cd "$(dirname "$0")/../.." && pwd)/build/kiln}
TOP=$(cd "$(dirname "$0")/../.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
best() { # best wall time in ms of 3 runs of "$@" (output discarded)
	local b=999999 i s e ms
	for i in 1 2 3; do
		s=$(date +%s%N)
		"$@" >/dev/null 2>&1
		e=$(date +%s%N)
		ms=$(((e - s) / 1000000))
		[ "$ms" -lt "$b" ] && b=$ms
	done
	echo "$b"
}
{
	echo "kernel: {image: \"linuxkit/kernel:6.6.71\", cmdline: \"console=ttyS0\"}"
	echo "init: [linuxkit/init:v1.2.0]"
	echo "services:"
	for i in $(seq 1 20000); do
		echo "  - {name: svc$i, image: \"alpine:3.19\", command: [/bin/sleep, \"$i\"], capabilities: [CAP_NET_ADMIN], binds: [\"/var/log:/var/log\"], uid: svc1}"
	done
} >"$T/big.yml"
yes "# padding padding padding padding padding padding padding padding padding" | head -c 100000000 >"$T/huge.yml"
size=$(stat -c %s "$T/big.yml")
echo "manifest bench: minimal.yml dry-run: $(best "$KILN" build --dry-run "$TOP/tests/manifests/good/minimal.yml") ms"
echo "manifest bench: everything.yml dry-run: $(best "$KILN" build --dry-run "$TOP/tests/manifests/good/everything.yml") ms"
echo "manifest bench: 20000 services ($((size / 1024)) KiB) parse+validate+dump: $(best "$KILN" build --dry-run "$T/big.yml") ms"
echo "manifest bench: alias bomb refused in: $(best "$KILN" build --dry-run "$TOP/tests/manifests/bad/alias-bomb.yml") ms"
echo "manifest bench: 100 MB input refused in: $(best "$KILN" build --dry-run "$T/huge.yml") ms"
