#!/usr/bin/env bash
# The appliance examples of issue 8 under QEMU (TCG), from their disk formats:
#   iot.yml    boots twice with one data disk (qcow2-bios, then raw-efi): the disk is formatted and
#              mounted at the first boot, iot-logger's record of boot 1 is
#              printed again at boot 2.
#   cloud.yml  (qcow2-efi; vhd, gcp, aws built) boots with a LinuxKit metadata drive (--data): the hostname
#              and the ssh key come from it, nginx answers through --publish,
#              ssh with the key answers with that hostname; the vhd boots
#              to the same hostname.
# Shares the boot tests' store (KILN_TEST_CACHE, default build/test-cache).
source "$(dirname "$0")/../lib.sh"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
out=$T/out
mkdir -p "$out"

build() { # NAME FORMAT,FORMAT...
	"$KILN" build -q -format "$2" -dir "$out" "$TOP/examples/$1.yml" >"$T/$1.build.log" 2>&1 ||
		{ sed 's/^/# /' "$T/$1.build.log"; return 1; }
}
console_has() { grep -qE "$2" "$T/$1.console"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- iot: state kept across a reboot on the data disk -----------------------
if build iot qcow2-bios,raw-efi; then
	pass "iot builds as qcow2-bios and raw-efi"
	disk=$T/iot-data.qcow2
	# Boot 1 from the qcow2-bios disk (SeaBIOS), boot 2 from the raw-efi
	# disk (OVMF): one data disk, two boot disks of the same image.
	image=([1]="$out/iot.qcow2" [2]="$out/iot-efi.img")
	for boot in 1 2; do
		"$KILN" run qemu -q --mem 768 --timeout 300 --powerdown-timeout 150 --disk "file=$disk,size=64M" \
			--until "iot-logger: history-end \\($boot boots\\)" --then powerdown \
			--console-log "$T/iot$boot.console" --state "$T/iot$boot-state" "${image[$boot]}" >/dev/null 2>&1
		rc=$?
		ok "iot boot $boot: iot-logger reports $boot boot(s) and the VM powers off (exit $rc)" test $rc -eq 0
		[ $rc -eq 0 ] || { grep -E 'kiln-init|format|mount|iot-logger' "$T/iot$boot.console" | tail -n 20 | sed 's/^/# /'; }
	done
	ok "iot boot 1: format made the ext4 data disk (the second disk)" console_has iot1 'format: mkfs.ext4 -L KILN_DATA /dev/sdb'
	ok "iot boot 1: mount put it on /var/lib/iot" console_has iot1 'mountie: .* on /var/lib/iot'
	ok "iot boot 2: format left the disk alone" console_has iot2 'format: .*already KILN_DATA'
	ok "iot boot 2: the line written at boot 1 is printed from the data disk" \
		console_has iot2 'iot-logger:   boot 1 at '
	ok "iot boot 2: and its own line follows" console_has iot2 'iot-logger:   boot 2 at '
	ok "iot: sshd and getty started" console_has iot1 'service sshd: started'
else
	fail "iot builds as qcow2-bios and raw-efi"
fi

# --- cloud: hostname and key from the config drive, nginx through --publish --
host=cloud-$RANDOM
ssh-keygen -q -t ed25519 -N '' -C kiln-test -f "$T/key" || true
data=$(jq -cn --arg h "$host" --arg k "$(cat "$T/key.pub")" \
	'{hostname: {content: $h}, ssh: {entries: {authorized_keys: {perm: "0600", content: $k}}}}')
if build cloud qcow2-efi,vhd,gcp,aws; then
	pass "cloud builds as qcow2-efi, vhd, gcp and aws"
	for f in cloud-efi.qcow2 cloud.vhd cloud.img.tar.gz cloud.raw; do
		ok "cloud: $f written" test -s "$out/$f"
	done
	http=$(free_port) sshp=$(free_port)
	"$KILN" run qemu -q --mem 1024 --timeout 400 --data "$data" \
		--publish "$http:80" --publish "$sshp:22" \
		--until 'BENCH services-started' --then continue \
		--console-log "$T/cloud.console" --state "$T/cloud-state" "$out/cloud-efi.qcow2" >/dev/null 2>&1 &
	vm=$!
	at_exit "kill $vm"
	page=
	for _ in $(seq 1 150); do
		page=$(curl -s -m 3 "http://127.0.0.1:$http/" 2>/dev/null) && [ -n "$page" ] && break
		kill -0 $vm 2>/dev/null || break
		sleep 2
	done
	ok "cloud: metadata found the config drive" console_has cloud 'metadata: config drive .* \(label config\)'
	ok "cloud: hostname $host set from the metadata" console_has cloud "metadata: hostname $host[[:space:]]*\$"
	ok "cloud: the ssh key was written to /run/config/ssh/authorized_keys" \
		console_has cloud 'metadata: 1 ssh key\(s\) in /run/config/ssh/authorized_keys'
	ok "cloud: nginx serves the page through --publish" grep -q 'kiln cloud appliance' <<<"$page"
	got=
	for _ in 1 2 3 4 5 6; do # Dropbear makes its host key at the first connection
		got=$(timeout 60 ssh -q -p "$sshp" -i "$T/key" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
			-o ConnectTimeout=20 -o BatchMode=yes root@127.0.0.1 hostname 2>/dev/null | tr -d '\r')
		[ -z "$got" ] || break
		kill -0 $vm 2>/dev/null || break
		sleep 5
	done
	ok "cloud: ssh with the metadata's key answers with hostname $host (got '$got')" test "$got" = "$host"
	kill $vm 2>/dev/null; wait $vm 2>/dev/null
	# The vhd (the raw-bios disk as a fixed VHD) boots as well: QEMU opens it
	# as vpc, SeaBIOS and syslinux start the same kernel, init reads the same
	# config drive (stopped at the hostname line).
	ok "cloud.vhd: kiln run opens it as QEMU's vpc format" \
		grep -q 'format=vpc' <("$KILN" run qemu --dry-run "$out/cloud.vhd" 2>&1)
	t=$SECONDS
	"$KILN" run qemu -q --mem 1024 --timeout 180 --data "$data" \
		--until "metadata: hostname $host" \
		--console-log "$T/cloud-vhd.console" --state "$T/cloud-vhd-state" "$out/cloud.vhd" >/dev/null 2>&1
	rc=$?
	ok "cloud.vhd boots (SeaBIOS) to the metadata's hostname $host (exit $rc, $((SECONDS - t)) s)" test $rc -eq 0
else
	fail "cloud builds as qcow2-efi, vhd, gcp and aws"
fi
done_testing
