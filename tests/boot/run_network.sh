#!/usr/bin/env bash
# `kiln run qemu --networking`: VMs reach each other without root through
# QEMU socket networking, as the cluster demo needs: a multicast segment
# (any number of VMs), and a point-to-point socket link as a second NIC next
# to user networking.  Each guest configures its address from the kernel
# command line and pings its peer (tests/fixtures/tiny-initrd.sh, mode peer).
source "$(dirname "$0")/../lib.sh"
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 not installed"
kdir=$("$TOP/tests/fixtures/debian-kernel.sh" 2>/dev/null) || skip_all "Debian kernel fixture unavailable"
"$TOP/tests/fixtures/tiny-initrd.sh" "$T/t-initrd.img" "$kdir" || skip_all "cannot build the initrd"
cp "$kdir/vmlinuz" "$T/t-kernel"
echo "console=ttyS0 panic=-1 quiet kiln.test=peer" >"$T/t-cmdline"
export KILN_QEMU_ACCEL=tcg
cd "$T"

vm() { # NAME CMDLINE KILN-OPTIONS...
	local name=$1 cmdline=$2; shift 2
	(
		"$KILN" run qemu --mem 256 --state "$T/$name-state" --cmdline-append "$cmdline" \
			--until PEER-REACHED --then continue --timeout 240 "$@" t \
			>"$T/$name.out" 2>"$T/$name.err"
		echo $? >"$T/$name.rc"
	) &
}
rc() { cat "$T/$1.rc"; }

port=$((30000 + RANDOM % 20000))
vm ma "kiln.ip=10.5.0.1/24 kiln.peer=10.5.0.2" --networking "mcast=230.0.0.1:$port"
vm mb "kiln.ip=10.5.0.2/24 kiln.peer=10.5.0.1" --networking "mcast=230.0.0.1:$port"
wait
diag "mcast: status $(rc ma) $(rc mb); $(cat ma.err mb.err | tr '\n' ' ' | cut -c1-300)"
ok "mcast: the first VM reached the second" grep -q PEER-REACHED ma.out
ok "mcast: the second VM reached the first" grep -q PEER-REACHED mb.out
ok "mcast: both runs exit 0" [ "$(rc ma)$(rc mb)" = 00 ]

# socket-listen must be up before socket-connect: start it, wait for QEMU.
port=$((30000 + RANDOM % 20000))
vm la "kiln.ip=10.0.2.15/24 kiln.ip1=10.6.0.1/24 kiln.peer=10.6.0.2" \
	--networking user --networking "socket-listen=$port"
for _ in $(seq 100); do [ -S "$T/la-state/qmp.sock" ] && break; sleep 0.1; done
sleep 0.5
vm lb "kiln.ip=10.0.2.15/24 kiln.ip1=10.6.0.2/24 kiln.peer=10.6.0.1" \
	--networking user --networking "socket-connect=$port"
wait
diag "socket: status $(rc la) $(rc lb); $(cat la.err lb.err | tr '\n' ' ' | cut -c1-300)"
ok "socket link as eth1: listener reached the connector" grep -q PEER-REACHED la.out
ok "socket link as eth1: connector reached the listener" grep -q PEER-REACHED lb.out
ok "two NICs get two persisted MACs" bash -c "[ -s '$T/la-state/mac-addr' ] && [ -s '$T/la-state/mac-addr.1' ] && ! cmp -s '$T/la-state/mac-addr' '$T/la-state/mac-addr.1'"
done_testing
