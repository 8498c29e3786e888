#!/usr/bin/env bash
# make cluster-demo: three VMs from ONE image (examples/cluster-node.yml)
# under QEMU (TCG unless KVM really works), networked to each other by a
# QEMU multicast socket segment (no root, no bridge), each told its name and
# peers by its own metadata drive (kiln run qemu --data).  Waits until etcd
# reports three healthy members on every node, `docker info` answers and a
# container runs through dockerd on every node; kills node3's QEMU, checks
# that node1 and node2 keep quorum (a write and a linearizable read through
# etcdctl succeed), then powers them down (ACPI) and checks they shut down
# cleanly and no QEMU is left.
#   examples/cluster-demo.sh [OUTDIR]
# Environment: KILN (path to kiln), KILN_CACHE (the store),
# CLUSTER_DEMO_TIMEOUT (seconds for the cluster to come up, 900),
# CLUSTER_DEMO_MEM (MiB per node, 640).
# Every step prints one line "check: ok - WHAT" or "check: FAIL - WHAT"
# (tests/boot/cluster.sh reads them); the last line is "checks: N passed,
# M failed" and the exit status is 0 only when all passed.
#
# The image is built as kernel+squashfs: the three VMs share one read-only
# squashfs root (each boots with --snapshot), which spares each guest
# unpacking a 150 MB initrd into RAM (under TCG that alone took ~50 s).
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
KILN=${KILN:-$top/build/kiln}
dir=${1:-$top/build/cluster-demo}
wait_up=${CLUSTER_DEMO_TIMEOUT:-900}
mem=${CLUSTER_DEMO_MEM:-640}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
say() { printf '\n=== [%s] %s\n' "$(date +%T)" "$*"; }
t0=$(date +%s)
npass=0 nfail=0
check() { # DESCRIPTION COMMAND...: one step's result
	local desc=$1; shift
	if "$@"; then echo "check: ok - $desc"; npass=$((npass + 1)); return 0; fi
	echo "check: FAIL - $desc"; nfail=$((nfail + 1)); return 1
}
finish() {
	echo "checks: $npass passed, $nfail failed ($(($(date +%s) - t0)) s)"
	exit $((nfail > 0))
}

say "building examples/cluster-node.yml as kernel+squashfs (packages are built on demand)"
rm -f "$dir"/cluster-node-*
check "cluster-node.yml builds as kernel+squashfs" \
	"$KILN" build -q -format kernel+squashfs -dir "$dir" "$top/examples/cluster-node.yml" || finish

port=$((20000 + RANDOM % 20000))
segment=230.0.$((RANDOM % 250)).$((1 + RANDOM % 250)):$port
cluster="node1=http://10.88.0.1:2380,node2=http://10.88.0.2:2380,node3=http://10.88.0.3:2380"
pids=()
qemu_pid() { cat "$dir/node$1-state/qemu.pid" 2>/dev/null; }
qemu_alive() { local p; p=$(qemu_pid "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
cleanup() {
	local i p
	for i in 1 2 3; do
		p=${pids[$((i - 1))]:-}
		[ -n "$p" ] && kill "$p" 2>/dev/null
		qemu_alive "$i" && kill "$(qemu_pid "$i")" 2>/dev/null
	done
	wait 2>/dev/null
}
trap cleanup EXIT
trap "exit 143" TERM INT HUP
say "booting node1 node2 node3 ($mem MiB each) on the socket segment $segment"
for i in 1 2 3; do
	data=$(printf '{"hostname":"node%s","etcd":{"entries":{"name":{"content":"node%s"},"address":{"content":"10.88.0.%s/24"},"iface":{"content":"eth0"},"cluster":{"content":"%s"}}}}' "$i" "$i" "$i" "$cluster")
	rm -rf "$dir/node$i.console" "$dir/node$i.monitor" "$dir/node$i-state"
	"$KILN" run qemu -q --mem "$mem" --snapshot \
		--networking "mcast=$segment" --data "$data" \
		--monitor "$dir/node$i.monitor" --console-log "$dir/node$i.console" \
		--state "$dir/node$i-state" --timeout $((wait_up + 900)) "$dir/cluster-node" \
		>"$dir/node$i.log" 2>&1 &
	pids+=($!)
done

declare -A from=()   # console byte offsets: only what a node printed after them counts
has() { tail -c +"$((${from[$1]:-0} + 1))" "$dir/node$1.console" 2>/dev/null | grep -qaE "$2"; }
last() { grep -aE "$2" "$dir/node$1.console" 2>/dev/null | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'; }
wait_for() { # SECONDS NODES REGEX...: until every node printed every REGEX
	local deadline=$(($(date +%s) + $1)) nodes=$2 n re all
	shift 2
	while :; do
		all=1
		for n in $nodes; do for re in "$@"; do has "$n" "$re" || all=0; done; done
		[ $all = 1 ] && return 0
		for n in $nodes; do
			kill -0 "${pids[$((n - 1))]}" 2>/dev/null || { echo "node$n stopped early; its console: $dir/node$n.console"; return 1; }
		done
		[ "$(date +%s)" -lt "$deadline" ] || { echo "timed out after $1 s"; return 1; }
		sleep 2
	done
}
status() {
	for n in "$@"; do
		echo "node$n: $(last "$n" 'etcd-check:')"
		echo "node$n: $(last "$n" 'docker-check: docker info')"
		echo "node$n: $(last "$n" 'docker-check: container')"
	done
}

healthy3='etcd-check: 3/3 members healthy \(node1 node2 node3\) quorum yes, write\+read ok'
docker_ok='docker-check: docker info answers'
container_ok='docker-check: container ran: hello from container'
say "waiting for etcd (3/3 members healthy), docker info and a container on every node"
wait_for "$wait_up" "1 2 3" "$healthy3" "$docker_ok" "$container_ok"
status 1 2 3
up_ok=1
for n in 1 2 3; do
	check "node$n: etcd reports 3/3 members healthy, write+read ok" has $n "$healthy3" || up_ok=0
	check "node$n: docker info answers" has $n "$docker_ok" || up_ok=0
	check "node$n: a container ran through dockerd" has $n "$container_ok" || up_ok=0
done
[ $up_ok = 1 ] || finish
up=$(date +%s)
say "cluster up after $((up - t0)) s"

say "killing node3 (SIGKILL to its QEMU: no shutdown)"
for i in 1 2; do from[$i]=$(stat -c %s "$dir/node$i.console"); done
kill -KILL "$(qemu_pid 3)"
wait "${pids[2]}" 2>/dev/null
check "node3: its QEMU is gone" eval '! qemu_alive 3'
quorum2='etcd-check: 2/3 members healthy \(node1 node2 node3\) quorum yes, write\+read ok'
wait_for 300 "1 2" "$quorum2"
status 1 2
for n in 1 2; do
	check "node$n: 2/3 members healthy after node3's loss, quorum kept (write+read ok)" has $n "$quorum2"
done
say "$(($(date +%s) - up)) s after the kill"

say "powering node1 and node2 down (ACPI power button through the QEMU monitor)"
for i in 1 2; do
	python3 - "$dir/node$i.monitor" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.5)
s.sendall(b"system_powerdown\n")
time.sleep(0.5)
s.close()
PY
done
for i in 1 2; do
	deadline=$(($(date +%s) + 180))
	while kill -0 "${pids[$((i - 1))]}" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 1; done
	rc=timeout
	kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { wait "${pids[$((i - 1))]}"; rc=$?; }
	check "node$i: init began its shutdown at the power button" has $i 'kiln-init: shutting down \(poweroff\)'
	check "node$i: init stopped everything and powered off" has $i 'kiln-init: power off'
	check "node$i: QEMU exited with status 0 (got $rc)" test "$rc" = 0
done
pids=()
left=
for i in 1 2 3; do qemu_alive $i && left+=" node$i"; done
check "no QEMU left running${left:+ (left:$left)}" test -z "$left"
say "cluster demo done in $(($(date +%s) - t0)) s; consoles in $dir/node{1,2,3}.console"
finish
