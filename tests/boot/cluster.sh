#!/usr/bin/env bash
# The cluster example of issue 8 under QEMU (TCG): runs examples/cluster-demo.sh,
# what `make cluster-demo` runs.  It builds examples/cluster-node.yml as
# kernel+squashfs, boots three VMs of it on one QEMU multicast segment, each
# named by its own metadata drive, and reports each step as a line
# "check: ok|FAIL - WHAT"; every such line is a test point here:
#   - on every node etcd reports 3/3 members healthy and a write plus a
#     linearizable read through etcdctl succeed; docker info answers; a
#     container (imported in the guest, no registry) runs through dockerd;
#   - node3's QEMU is killed: node1 and node2 report 2/3 healthy, quorum
#     kept, write+read ok;
#   - node1 and node2 get the ACPI power button: init shuts down and powers
#     off, QEMU exits 0; no QEMU is left.
# A step the demo never reached counts as failed.  Shares the boot tests'
# store (KILN_TEST_CACHE, default build/test-cache); packages missing from it
# are built on demand.
source "$(dirname "$0")/../lib.sh"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
demo=$T/demo
KILN=$KILN bash "$TOP/examples/cluster-demo.sh" "$demo" >"$T/demo.log" 2>&1
rc=$?
while IFS= read -r line; do
	case $line in
	"check: ok - "*) pass "${line#check: ok - }" ;;
	"check: FAIL - "*) fail "${line#check: FAIL - }" ;;
	esac
done <"$T/demo.log"
steps=("cluster-node.yml builds as kernel+squashfs")
for n in 1 2 3; do
	steps+=("node$n: etcd reports 3/3 members healthy" "node$n: docker info answers"
		"node$n: a container ran through dockerd")
done
steps+=("node3: its QEMU is gone")
for n in 1 2; do
	steps+=("node$n: 2/3 members healthy after node3's loss, quorum kept"
		"node$n: init began its shutdown" "node$n: init stopped everything and powered off"
		"node$n: QEMU exited with status 0")
done
steps+=("no QEMU left running")
for s in "${steps[@]}"; do
	grep -qF -- "- $s" "$T/demo.log" || fail "$s (the demo never got there)"
done
ok "the demo exits 0 (exit $rc; $(grep -o '^checks: .*' "$T/demo.log"))" test $rc -eq 0
ok "no QEMU process of the demo is running" eval '! pgrep -f "$demo/" >/dev/null'
grep -E '^=== .*(cluster up after|after the kill|done in)' "$T/demo.log" | sed 's/^/# /'
if [ $rc -ne 0 ]; then
	grep -v '^check: ok' "$T/demo.log" | tail -n 20 | sed 's/^/# /'
	for n in 1 2 3; do
		diag "node$n's console, last lines:"
		grep -aE 'kiln-init|etcd|docker' "$demo/node$n.console" 2>/dev/null | tail -n 8 | sed 's/^/#   /'
	done
fi
done_testing
