#!/usr/bin/env bash
# Boots every example of examples/ under QEMU (TCG) the way a user would:
# kiln build (packages built on demand from Debian's packages), then
# kiln run qemu.  Checks on the serial console that the onboot containers
# ran, that every service started, that web.yml answers HTTP through
# --publish, and that a powerdown runs the onshutdown containers and ends
# the VM cleanly.
source "$(dirname "$0")/../lib.sh"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
out=$T/out
mkdir -p "$out"

build() { # NAME FORMAT
	"$KILN" build -q -format "$2" -dir "$out" "$TOP/examples/$1.yml" >"$T/$1.build.log" 2>&1 ||
		{ sed 's/^/# /' "$T/$1.build.log"; return 1; }
}
services_of() { # NAME: the service names of an example, from its dry run
	"$KILN" build --dry-run "$TOP/examples/$1.yml" |
		awk '/^services:/{s=1;next} /^[a-z]/{s=0} s && /^- name:/{print $3}'
}
console_has() { grep -qE "$2" "$T/$1.console"; }

# minimal: onboot, services, powerdown with onshutdown.
if build minimal kernel+initrd; then
	pass "minimal builds as kernel+initrd"
	"$KILN" run qemu -q --mem 1024 --timeout 240 --until 'BENCH services-started \([0-9]+ failed\)' --then powerdown \
		--console-log "$T/minimal.console" "$out/minimal" >/dev/null 2>&1
	rc=$?
	ok "minimal boots to its services and powers off cleanly (exit $rc)" test $rc -eq 0
	ok "minimal: onboot dhcpcd ran" console_has minimal '000-dhcpcd: exited \(exit status 0\)'
	# No onboot container of minimal's can mount over containerd's directories,
	# so containerd starts before them (init/early.c).
	ok "minimal: containerd started before the onboot containers" \
		sh -c "grep -E 'containerd started|000-dhcpcd: starting' '$T/minimal.console' | head -1 | grep -q 'containerd started'"
	for s in $(services_of minimal); do
		ok "minimal: service $s started" console_has minimal "service $s: started"
	done
	ok "minimal: no service failed" console_has minimal 'services-started \(0 failed\)'
	ok "minimal: onshutdown ran at powerdown" console_has minimal 'kiln: minimal is shutting down'
else
	fail "minimal builds as kernel+initrd"
fi

# boot_and_ask NAME GUEST-PORT UNTIL PROBE...: boots NAME in the background
# with a free host port published to GUEST-PORT ($port), then runs PROBE
# (which sees $port) every 2 s until it prints something or the VM ends;
# leaves the output in $answer and the VM stopped.
boot_and_ask() {
	local name=$1 guest=$2 until=$3
	shift 3
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	"$KILN" run qemu -q --publish "$port:$guest" --timeout 300 --until "$until" --then continue \
		--console-log "$T/$name.console" --state "$T/$name-state" "$out/$name" >/dev/null 2>&1 &
	local vm=$!
	at_exit "kill $vm"
	answer=
	for _ in $(seq 1 120); do
		answer=$("$@" 2>/dev/null) && [ -n "$answer" ] && break
		kill -0 $vm 2>/dev/null || break
		sleep 2
	done
	kill $vm 2>/dev/null
	wait $vm 2>/dev/null
}

# web: nginx answers through --publish.
get_page() { curl -s -m 3 "http://127.0.0.1:$port/"; }
if build web kernel+initrd; then
	pass "web builds as kernel+initrd"
	boot_and_ask web 80 'service nginx: started' get_page
	ok "web: nginx serves the page from files through --publish" grep -q 'served by kiln' <<<"$answer"
else
	fail "web builds as kernel+initrd"
fi

# sshd: the root key comes from files (~/.ssh/id_ed25519.pub of the building
# user: a throwaway HOME here), and ssh through --publish runs a command.
export HOME_SAVED=$HOME
export HOME=$T/home
mkdir -p "$HOME/.ssh"
ssh-keygen -q -t ed25519 -N '' -f "$HOME/.ssh/id_ed25519"
ssh_hostname() {
	ssh -q -p "$port" -i "$HOME/.ssh/id_ed25519" -o StrictHostKeyChecking=no \
		-o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 -o BatchMode=yes \
		root@127.0.0.1 'echo ssh-into-$(hostname)'
}
if build sshd kernel+initrd; then
	pass "sshd builds as kernel+initrd with the key from files"
	boot_and_ask sshd 22 'service sshd: started' ssh_hostname
	ok "sshd: ssh with the key from files runs a command in the VM ($answer)" grep -q '^ssh-into-kiln-' <<<"$answer"
	for s in $(services_of sshd); do
		ok "sshd: service $s started" console_has sshd "service $s: started"
	done
else
	fail "sshd builds as kernel+initrd"
fi
export HOME=$HOME_SAVED
done_testing
