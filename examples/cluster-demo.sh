#!/usr/bin/env bash
# make cluster-demo: three VMs from ONE image (examples/cluster-node.yml)
# under QEMU (TCG unless KVM really works), networked to each other by a
# QEMU multicast socket segment (no root, no bridge), each told its name and
# peers by its own metadata drive (kiln run qemu --data).  Waits until etcd
# reports three healthy members and `docker info` answers on every node,
# kills node3, shows that node1 and node2 keep quorum (a write succeeds), then
# powers the others down.
#   examples/cluster-demo.sh [OUTDIR]      (KILN=path/to/kiln, KILN_CACHE=store)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
KILN=${KILN:-$top/build/kiln}
dir=${1:-$top/build/cluster-demo}
wait_up=${CLUSTER_DEMO_TIMEOUT:-1500}   # seconds for the cluster to come up (TCG is slow)
mkdir -p "$dir"
say() { printf '\n=== [%s] %s\n' "$(date +%T)" "$*"; }
t0=$(date +%s)

say "building examples/cluster-node.yml (kernel+initrd; packages are built on demand)"
"$KILN" build -format kernel+initrd -dir "$dir" "$top/examples/cluster-node.yml"

port=$((20000 + RANDOM % 20000))
segment=230.0.$((RANDOM % 250)).$((1 + RANDOM % 250)):$port
cluster="node1=http://10.88.0.1:2380,node2=http://10.88.0.2:2380,node3=http://10.88.0.3:2380"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
say "booting node1 node2 node3 on the socket segment $segment"
for i in 1 2 3; do
	data=$(printf '{"hostname":"node%s","etcd":{"entries":{"name":{"content":"node%s"},"address":{"content":"10.88.0.%s/24"},"iface":{"content":"eth0"},"cluster":{"content":"%s"}}}}' "$i" "$i" "$i" "$cluster")
	rm -f "$dir/node$i.console" "$dir/node$i.monitor"
	"$KILN" run qemu -q --mem 1536 --qemu-arg=-cpu --qemu-arg=max \
		--networking "mcast=$segment" --data "$data" \
		--monitor "$dir/node$i.monitor" --console-log "$dir/node$i.console" \
		--state "$dir/node$i-state" --timeout $((wait_up + 900)) "$dir/cluster-node" \
		>/dev/null 2>&1 &
	pids+=($!)
done

declare -A from=()   # console byte offsets: only what a node printed after them counts
has() { tail -c +"$((${from[$1]:-0} + 1))" "$dir/node$1.console" 2>/dev/null | grep -qaE "$2"; }
last() { grep -aE "$2" "$dir/node$1.console" 2>/dev/null | tail -n 1 | sed 's/^\[[ 0-9.]*\] //'; }
wait_for() { # SECONDS DESCRIPTION NODES REGEX
	local deadline=$(($(date +%s) + $1)) desc=$2 nodes=$3 re=$4 n
	while :; do
		local all=1
		for n in $nodes; do has "$n" "$re" || all=0; done
		[ $all = 1 ] && return 0
		for n in $nodes; do
			kill -0 "${pids[$((n - 1))]}" 2>/dev/null || { echo "node$n stopped early; its console: $dir/node$n.console" >&2; return 1; }
		done
		[ "$(date +%s)" -lt "$deadline" ] || { echo "timed out waiting for: $desc" >&2; return 1; }
		sleep 5
	done
}
status() {
	for n in $*; do
		echo "node$n: $(last "$n" 'etcd-check:')"
		echo "node$n: $(last "$n" 'docker-check:')"
	done
}

say "waiting for etcd: 3/3 members healthy on every node, and docker info on every node"
wait_for "$wait_up" "3 healthy etcd members" "1 2 3" 'etcd-check: 3/3 members healthy .* write ok'
wait_for 600 "docker info" "1 2 3" 'docker-check: docker info answers'
status 1 2 3
up=$(date +%s)
say "cluster up after $((up - t0)) s"

say "killing node3 (QEMU stopped: no clean shutdown)"
for i in 1 2; do from[$i]=$(stat -c %s "$dir/node$i.console"); done
kill "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
wait_for 300 "node1 and node2 to see node3 gone with quorum kept" "1 2" 'etcd-check: 2/3 members healthy .* quorum yes, write ok'
status 1 2
say "quorum kept: node1 and node2 still accept writes ($(($(date +%s) - up)) s after the kill)"

say "powering node1 and node2 down (ACPI power button)"
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
	while kill -0 "${pids[$((i - 1))]}" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 2; done
	if has "$i" 'kiln-init: power off'; then echo "node$i: powered off cleanly"; else echo "node$i: did not power off within 180 s" >&2; exit 1; fi
done
pids=()
say "cluster demo done in $(($(date +%s) - t0)) s; consoles in $dir/node{1,2,3}.console"
