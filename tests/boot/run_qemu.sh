#!/usr/bin/env bash
# `kiln run qemu` on real TCG boots of Debian's kernel with a tiny busybox
# initrd (tests/fixtures/tiny-initrd.sh) whose behaviour the kernel command
# line picks: --until/--timeout/--fail-on outcomes, --publish, metadata
# CD-ROMs, disks, --then powerdown through QMP, signals.  Two VMs at a time.
source "$(dirname "$0")/../lib.sh"
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 not installed"
command -v xorriso >/dev/null || skip_all "xorriso not installed"
kdir=$("$TOP/tests/fixtures/debian-kernel.sh" 2>/dev/null) || skip_all "Debian kernel fixture unavailable"
"$TOP/tests/fixtures/tiny-initrd.sh" "$T/t-initrd.img" "$kdir" || skip_all "cannot build the initrd"
cp "$kdir/vmlinuz" "$T/t-kernel"
echo "console=ttyS0 panic=-1 quiet" >"$T/t-cmdline"
export XDG_RUNTIME_DIR=$T/run # the KVM probe's cache, private to this test
mkdir -p "$T/run"
cd "$T"

# boot NAME MODE KILN-OPTIONS...: runs kiln in the background; its status
# lands in NAME.rc, stdout in NAME.out, stderr in NAME.err.
boot() {
	local name=$1 mode=$2; shift 2
	(
		s=$(date +%s)
		"$KILN" run qemu --mem 256 --state "$T/$name-state" --cmdline-append "kiln.test=$mode" \
			"$@" t >"$T/$name.out" 2>"$T/$name.err" &
		echo $! >"$T/$name.pid"
		wait $!
		echo $? >"$T/$name.rc"
		echo $(($(date +%s) - s)) >"$T/$name.time"
	) &
}
rc() { cat "$T/$1.rc"; }
secs() { cat "$T/$1.time"; }
show() { diag "$1: status $(rc "$1") in $(secs "$1") s; stderr: $(tr '\n' ' ' <"$T/$1.err" | cut -c1-300)"; }

# 1. The marker comes: exit 0.  (The default accelerator: the probe says no
#    KVM here, within its bound, and TCG is used; -v names it.)  2. A marker
#    that never comes: exit 1 at the timeout.
boot marker marker -v --until 'KILN-TEST-MARKER$' --timeout 240 --console-log "$T/marker.log"
boot never silent --until NEVER-PRINTED --timeout 12
wait
show marker
show never
ok "--until matched: exit 0" [ "$(rc marker)" = 0 ]
ok "the console was echoed to stdout" grep -q KILN-TEST-MARKER "$T/marker.out"
ok "--console-log holds the console" grep -q "kiln-test init: mode marker" "$T/marker.log"
ok "the default accelerator is TCG here (KVM probe said no)" grep -q "accel tcg" "$T/marker.err"
ok "-v prints the QEMU command line" grep -q -- "-machine q35,accel=tcg" "$T/marker.err"
ok "QEMU is gone after the match" bash -c "! pgrep -f -- '[-]pidfile $T/marker-state/qemu.pid' >/dev/null"
ok "never-printed marker: exit 1" [ "$(rc never)" = 1 ]
ok "  ... at the timeout (12 s), not much later" [ "$(secs never)" -ge 11 -a "$(secs never)" -le 25 ]
ok "  ... says it timed out" grep -q "timed out after 12" "$T/never.err"
ok "a MAC was persisted in the state dir" grep -Eq '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' "$T/marker-state/mac-addr"

# 3. The VM powers off before the marker: exit 1.  4. --fail-on matches.
boot early poweroff --until NEVER-PRINTED --timeout 240
boot failon poweroff --until NEVER-PRINTED --fail-on 'GOING-DOWN' --timeout 240
wait
show early
show failon
ok "VM powered off without a match: exit 1" [ "$(rc early)" = 1 ]
ok "  ... says the VM exited first" grep -q "exited .* before the console printed" "$T/early.err"
ok "--fail-on matched: exit 1" [ "$(rc failon)" = 1 ]
ok "  ... says so" grep -q "fail-on /GOING-DOWN/" "$T/failon.err"

# 5. --publish: busybox httpd on guest port 80, fetched from the host.
port=$((20000 + RANDOM % 20000))
boot httpd httpd --publish "$port:80" --until HTTPD-READY --then continue --timeout 240 \
	--console-log "$T/httpd.log"
# 6. Metadata CD-ROMs: LinuxKit's --data-file (file `config`) and a NoCloud
#    cidata drive made from a directory.
printf 'hello from the host\n' >"$T/config.txt"
mkdir -p "$T/ci"
printf '#cloud-config\nhostname: kiln-ci\n' >"$T/ci/user-data"
boot data data --data-file "$T/config.txt" --cidata "$T/ci" --until DATA-END --timeout 240
page=
for _ in $(seq 240); do
	grep -q HTTPD-READY "$T/httpd.log" 2>/dev/null && break
	[ -f "$T/httpd.rc" ] && break
	sleep 1
done
page=$(curl -s -m 10 "http://127.0.0.1:$port/" || true)
[ -f "$T/httpd-state/qemu.pid" ] && kill "$(cat "$T/httpd-state/qemu.pid")" 2>/dev/null
wait
show httpd
show data
ok "--publish: the guest's web server answers on the host port" [ "$page" = hello-from-kiln-guest ]
ok "--then continue: exit 0 after the match once the VM ends" [ "$(rc httpd)" = 0 ]
ok "--data-file: the guest reads \`config\`" grep -q "FILE config: hello from the host|" "$T/data.out"
ok "--cidata: volume label cidata" grep -q "label=cidata" "$T/data.out"
ok "--cidata: user-data as given" grep -q "FILE user-data: #cloud-config|hostname: kiln-ci|" "$T/data.out"
ok "--cidata: meta-data generated" grep -q "FILE meta-data: instance-id: t|local-hostname: t|" "$T/data.out"
ok "metadata run: exit 0" [ "$(rc data)" = 0 ]

# 7. --then powerdown: system_powerdown through QMP; the guest's ACPI power
#    button handler powers off; kiln waits for the clean exit.  8. Disks:
#    created when missing (qcow2 when sized), if=virtio, seen by the guest.
boot powerdown powerbutton --until POWERBUTTON-READY --then powerdown --powerdown-timeout 60 \
	--timeout 240
boot disk disk --disk size=64M --disk "file=$T/extra.raw,size=32M,format=raw,if=virtio" \
	--until DISKS-DONE --timeout 240
wait
show powerdown
show disk
ok "--then powerdown: exit 0 after a clean power-off" [ "$(rc powerdown)" = 0 ]
ok "  ... the guest saw the power button" grep -q POWER-BUTTON "$T/powerdown.out"
ok "  ... and powered off" grep -q "reboot: Power down" "$T/powerdown.out"
ok "--disk size=64M: created as qcow2 in the state dir" \
	bash -c "qemu-img info '$T/disk-state/disk.img' | grep -q 'file format: qcow2'"
ok "--disk ...,format=raw: created raw at the given path" \
	bash -c "qemu-img info '$T/extra.raw' | grep -q 'file format: raw'"
ok "the guest sees the AHCI disk (64 MiB = 131072 sectors)" grep -q "DISK sda 131072" "$T/disk.out"
ok "the guest sees the virtio disk (32 MiB)" grep -q "DISK vda 65536" "$T/disk.out"

# 9. A signal to kiln stops QEMU instead of orphaning it; exit 130.
# 10. Interactive use: a TTY on stdin (script(1) makes one) is forwarded in
#     raw mode: a command typed reaches the guest's shell, ctrl-a x quits QEMU.
tty_ok=false
if command -v script >/dev/null; then
	tty_ok=true
	(
		for _ in $(seq 480); do grep -q SHELL-READY "$T/tty.log" 2>/dev/null && break; sleep 0.5; done
		sleep 1
		printf 'echo RESULT-$((6*7))\r'
		for _ in $(seq 60); do grep -q RESULT-42 "$T/tty.log" 2>/dev/null && break; sleep 0.5; done
		printf '\001x'
		sleep 10
	) | script -qec "'$KILN' run --mem 256 --state '$T/tty-state' --console-log '$T/tty.log' \
		--timeout 240 --cmdline-append kiln.test=shell t" /dev/null >"$T/tty.out" 2>&1 &
	tty_pid=$!
fi
boot sig silent --timeout 240
sig_job=$!
for _ in $(seq 50); do [ -s "$T/sig-state/qemu.pid" ] && break; sleep 0.2; done
sleep 1
qpid=$(cat "$T/sig-state/qemu.pid" 2>/dev/null)
kill -TERM "$(cat "$T/sig.pid")"
wait "$sig_job"
show sig
ok "SIGTERM to kiln: exit 130" [ "$(rc sig)" = 130 ]
ok "  ... and QEMU is gone" bash -c "[ -n '$qpid' ] && ! kill -0 '$qpid' 2>/dev/null"
if $tty_ok; then
	wait "$tty_pid"
	tty_rc=$?
	ok "TTY: the typed command ran in the guest" grep -q "^RESULT-42" "$T/tty.log"
	ok "TTY: ctrl-a x quit QEMU; kiln exits with its status 0" [ "$tty_rc" = 0 ]
	ok "TTY: QEMU said so" grep -q "QEMU: Terminated" "$T/tty.out"
fi
done_testing
