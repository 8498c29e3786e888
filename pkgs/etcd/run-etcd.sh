#!/bin/sh
# run-etcd: an etcd member from the metadata in /run/config/etcd:
#   name       this member's name (default: the hostname)
#   address    ADDR/PREFIX put on IFACE (the cluster network; optional)
#   iface      the interface for address (default eth0)
#   cluster    the initial cluster: NAME=http://ADDR:2380,...
#   token      the initial cluster token (default kiln-etcd)
# Without /run/config/etcd/cluster it runs a single-member cluster.  Prints
# the cluster health on the console (/dev/kmsg) when it changes and every
# tenth round.
bb=/bin/busybox
cfg=/run/config/etcd
say() { echo "$*"; echo "$*" >/dev/kmsg 2>/dev/null; }
get() { [ -f "$cfg/$1" ] && $bb head -n 1 "$cfg/$1" | $bb tr -d ' \r\t' || echo "$2"; }
name=$(get name "$($bb hostname)")
iface=$(get iface eth0)
addr=$(get address "")
cluster=$(get cluster "")
token=$(get token kiln-etcd)
if [ -n "$addr" ]; then
	i=0
	while ! $bb ip link set "$iface" up 2>/dev/null; do
		i=$((i + 1)); [ $i -lt 50 ] || { say "etcd: no interface $iface"; exit 1; }
		$bb sleep 0.2
	done
	$bb ip addr add "$addr" dev "$iface" 2>/dev/null
	ip=${addr%/*}
else
	ip=127.0.0.1
fi
[ -n "$cluster" ] || cluster="$name=http://$ip:2380"
say "etcd: member $name at $ip, cluster $cluster"
/usr/bin/etcd --name "$name" --data-dir /var/lib/etcd/data \
	--listen-peer-urls "http://$ip:2380" --initial-advertise-peer-urls "http://$ip:2380" \
	--listen-client-urls "http://$ip:2379,http://127.0.0.1:2379" --advertise-client-urls "http://$ip:2379" \
	--initial-cluster "$cluster" --initial-cluster-token "$token" --initial-cluster-state new \
	--heartbeat-interval 250 --election-timeout 2500 --log-level warn &
etcd=$!
trap 'kill $etcd; wait $etcd; exit 0' TERM INT
endpoints=$(echo "$cluster" | $bb sed 's/=http:\/\/\([^:]*\):2380/=http:\/\/\1:2379/g; s/[^,=]*=//g')
n=$(echo "$cluster" | $bb tr ',' '\n' | $bb wc -l)
ctl() { ETCDCTL_API=3 /usr/bin/etcdctl --dial-timeout 2s --command-timeout 10s "$@"; }
# Each round: every member's health (one etcdctl for all endpoints; each
# commits a proposal, so a member is healthy only while there is a quorum),
# the member names (until all are known), then this member's heartbeat
# written and read back (a linearizable read: it too needs a quorum).
last= names= round=0 said=0
while kill -0 $etcd 2>/dev/null; do
	round=$((round + 1))
	healthy=$(ctl --endpoints "$endpoints" endpoint health 2>&1 | $bb grep -c ' is healthy')
	[ "$(echo $names | $bb wc -w)" -ge "$n" ] ||
		names=$(ctl --endpoints http://127.0.0.1:2379 member list 2>/dev/null | $bb awk -F', ' '$3 != "" {print $3}' | $bb sort | $bb tr '\n' ' ')
	v="$($bb date +%s) $round"
	if ! ctl --endpoints http://127.0.0.1:2379 put "/kiln/heartbeat/$name" "$v" >/dev/null 2>&1; then
		w="write FAILED (no quorum)"
	elif [ "$(ctl --endpoints http://127.0.0.1:2379 get --print-value-only "/kiln/heartbeat/$name" 2>/dev/null)" = "$v" ]; then
		w="write+read ok"
	else
		w="write ok, read FAILED"
	fi
	quorum=no
	[ $((healthy * 2)) -gt "$n" ] && quorum=yes
	s="etcd-check: $healthy/$n members healthy (${names% }) quorum $quorum, $w"
	# Printed when it changes, and again every tenth round so that a watcher
	# sees the state is still current.
	if [ "$s" != "$last" ] || [ $((round - said)) -ge 10 ]; then
		say "$s"
		said=$round
	fi
	last=$s
	# Every etcdctl start costs the guest about a second of CPU under
	# emulation: while all members are healthy, look every 10 s only.
	if [ "$healthy" = "$n" ] && [ "$w" = "write+read ok" ]; then $bb sleep 10; else $bb sleep 3; fi
done
wait $etcd
say "etcd: exited ($?)"
