#!/usr/bin/env bash
# `kiln run` without booting: usage errors, the command line it builds for
# each kind of PATH (--dry-run), disk-format detection against images made
# by qemu-img, LinuxKit's single-dash spellings, the state directory (MAC,
# created disks, metadata ISOs checked with xorriso), the KVM probe's bound
# and cache, and the refusal to share a state dir with a running QEMU.
source "$(dirname "$0")/../lib.sh"
command -v qemu-img >/dev/null || skip_all "qemu-img not installed"
command -v xorriso >/dev/null || skip_all "xorriso not installed"
cd "$T"
export XDG_RUNTIME_DIR=$T/run
mkdir -p run
unset KILN_QEMU_ACCEL

# Exit status and stderr of a kiln run.
run_status() { "$KILN" run "$@" >"$T/out" 2>"$T/err"; echo $?; }
dry() { "$KILN" run --dry-run "$@" 2>"$T/err"; }
# prep ARGS...: a run whose QEMU (true) exits at once: kiln prepares the state
# dir for real; its command line is printed as a dry run would (--verbose).
prep() { "$KILN" -v run --qemu true "$@" 2>&1 >/dev/null | grep -- '-pidfile'; }
# has STRING...: every STRING occurs in $out (the last dry run's command line).
has() { local x; for x in "$@"; do grep -qF -- "$x" <<<"$out" || return 1; done; }

ok "kiln help run prints the usage" bash -c "'$KILN' help run | grep -q -- '--until REGEX'"
ok "kiln run --help exits 0" bash -c "'$KILN' run --help >/dev/null"
[ "$(run_status --bogus x)" = 2 ] && grep -q "unknown option \`--bogus\`" err && pass "unknown option: exit 2, named" || fail "unknown option"
[ "$(run_status --then powerdown x)" = 2 ] && grep -q "needs --until" err && pass "--then without --until: exit 2" || fail "--then without --until"
[ "$(run_status --until X --then explode x)" = 2 ] && grep -q "kill, powerdown or continue" err && pass "bad --then: exit 2" || fail "bad --then"
[ "$(run_status --timeout abc x)" = 2 ] && pass "bad --timeout: exit 2" || fail "bad --timeout"
[ "$(run_status a b)" = 2 ] && grep -q "expected one PATH" err && pass "two paths: exit 2" || fail "two paths"
[ "$(run_status aws x)" = 2 ] && grep -q "aws backend is not supported" err && pass "other backends: a clear no" || fail "aws backend"
[ "$(run_status --arch aarch64 x)" = 2 ] && pass "--arch aarch64: refused" || fail "--arch"
printf K >q-kernel
[ "$(run_status --qemu no-such-qemu-binary q)" = 1 ] && grep -q "not found (install qemu-system-x86" err && pass "a missing QEMU: exit 1, says what to install" || fail "missing qemu"
[ "$(run_status --networking tap,tap0 x)" = 2 ] && grep -q "need root" err && pass "--networking tap: refused with the reason" || fail "tap"
[ "$(run_status --dry-run nothing-here)" = 1 ] && grep -q "no \`nothing-here-kernel\` either" err && pass "missing PATH: exit 1, says what it looked for" || fail "missing path"

# Kernel boots: NAME-kernel, -initrd.img, -cmdline, squashfs, erofs.
printf 'K' >lk-kernel
printf 'I' >lk-initrd.img
printf 'console=ttyS0 quiet\n' >lk-cmdline
out=$(dry --cmdline-append "extra=1" lk)
ok "kernel boot: -kernel/-initrd" has "-kernel lk-kernel -initrd lk-initrd.img"
ok "kernel boot: NAME-cmdline + --cmdline-append" has "-append 'console=ttyS0 quiet extra=1'"
ok "state dir NAME-state by default, pidfile and QMP in it" \
	has "-pidfile lk-state/qemu.pid" "unix:lk-state/qmp.sock"
ok "kiln run qemu PATH is kiln run PATH" bash -c "'$KILN' run qemu --dry-run lk | grep -q -- '-kernel lk-kernel'"
printf 'hsqs' >lk-squashfs.img
out=$(dry lk)
ok "squashfs: root disk first, root=/dev/sda" \
	has "file=lk-squashfs.img,format=raw,index=0,media=disk" "root=/dev/sda"
out=$(dry --kernel lk)
ok "--kernel: no root disk" bash -c "! grep -q squashfs <<<\"\$0\"" "$out"

# LinuxKit's single-dash spellings.
out=$(dry -cpus 2 -mem 512 -publish 8080:80 -publish 5353:53/udp -accel tcg lk)
ok "single-dash -cpus/-mem" has "-smp 2 -m 512"
ok "-publish: hostfwd tcp and udp" grep -q "hostfwd=tcp::8080-:80,hostfwd=udp::5353-:53" <<<"$out"

# Disk images: format from the magic (qemu-img makes each kind).
qemu-img create -q -f raw base.raw 8M
qemu-img convert -O qcow2 base.raw d.qcow2
qemu-img convert -O vpc base.raw d-dyn.vhd
qemu-img convert -O vpc -o subformat=fixed base.raw d-fixed.vhd
qemu-img convert -O vmdk base.raw d.vmdk
for f in base.raw:raw d.qcow2:qcow2 d-dyn.vhd:vpc d-fixed.vhd:vpc d.vmdk:vmdk; do
	file=${f%%:*} fmt=${f##*:}
	ok "$file detected as $fmt" grep -q "file=$file,format=$fmt,index=0,media=disk" <<<"$(dry "$file")"
done
cp d.qcow2 img-efi.qcow2
out=$(dry img-efi.qcow2)
ok "NAME-efi.qcow2: UEFI without --uefi (OVMF pflash)" grep -q "if=pflash" <<<"$out"
ok "--dry-run: no state dir, no variables copy" [ ! -e img-efi-state ]
prep img-efi.qcow2 >/dev/null
ok "  ... with a writable variables copy in the state dir" \
	bash -c "ls img-efi-state/OVMF_VARS.fd img-efi-state/fw.fd 2>/dev/null | grep -q ."
cp base.raw cd.iso
out=$(dry cd.iso)
ok "ISO: CD-ROM at index 2 and -boot d" has "file=cd.iso,format=raw,index=2,media=cdrom" "-boot d"
out=$(dry --disk size=16M --disk file=x.raw,size=8M,format=raw --disk base.raw cd.iso)
ok "disks skip index 2 when booting an ISO" \
	has "cd-state/disk.img,format=qcow2,index=0" "x.raw,format=raw,index=1" "base.raw,format=raw,index=3"
ok "--dry-run: disks named, none created, no state dir" [ ! -e x.raw -a ! -e cd-state ]
out=$(prep --disk size=16M --disk file=x.raw,size=8M,format=raw --disk base.raw cd.iso)
ok "  ... a run gives the same command line" \
	has "cd-state/disk.img,format=qcow2,index=0" "x.raw,format=raw,index=1" "base.raw,format=raw,index=3"
ok "--disk size=16M created as qcow2 in the state dir" \
	bash -c "qemu-img info cd-state/disk.img | grep -q 'virtual size: 16 MiB'"
ok "--disk file=x.raw,size=8M,format=raw created raw" \
	bash -c "qemu-img info x.raw | grep -q 'file format: raw'"

# MAC: persisted in the state dir, stable across runs, --mac overrides.
ok "--dry-run: no NAME-state made" [ ! -e lk-state ]
m1=$(prep lk | grep -o 'mac=[0-9a-f:]*')
m2=$(prep lk | grep -o 'mac=[0-9a-f:]*')
ok "the MAC is persisted: same on the next run" [ -n "$m1" -a "$m1" = "$m2" ]
ok "  ... and kept in NAME-state/mac-addr" [ "mac=$(cat lk-state/mac-addr)" = "$m1" ]
ok "  ... which a dry run reads" grep -q "$m1" <<<"$(dry lk)"
ok "--mac overrides" grep -q "mac=52:54:00:12:34:56" <<<"$(dry --mac 52:54:00:12:34:56 lk)"
out=$(dry --networking user --networking mcast=230.0.0.1:4444 lk)
ok "--networking twice: two NICs" has "user,id=net0" "socket,id=net1,mcast=230.0.0.1:4444"
ok "--networking none" grep -q -- "-nic none" <<<"$(dry --networking none lk)"

# Metadata ISOs, read back with xorriso.
isofile() { xorriso -no_rc -osirrox on -indev "$1" -extract "/$2" "$T/extracted" >/dev/null 2>&1 && cat "$T/extracted"; rm -f "$T/extracted"; }
isolabel() { xorriso -no_rc -indev "$1" -pvd_info 2>/dev/null | sed -n "s/^Volume Id *: *//p"; }
printf 'a: 1\n' >meta.yml
mkdir -p cd2/openstack/latest
printf '{}' >cd2/openstack/latest/meta_data.json
printf '#cloud-config\n' >ud
out=$(dry --data-file meta.yml --cidata ud --config-drive cd2 lk)
ok "--dry-run: data.iso attached as a CD-ROM" grep -q "file=lk-state/data.iso,format=raw,index=1,media=cdrom,readonly=on" <<<"$out"
ok "--dry-run: no ISO written" bash -c "! ls lk-state/*.iso 2>/dev/null | grep -q ."
out=$(prep --data-file meta.yml lk)
ok "--data-file: data.iso attached as a CD-ROM" grep -q "file=lk-state/data.iso,format=raw,index=1,media=cdrom,readonly=on" <<<"$out"
ok "--data-file: the ISO holds config" [ "$(isofile lk-state/data.iso config)" = "a: 1" ]
prep --data 'hello world' lk >/dev/null
ok "--data STRING: the ISO holds config" [ "$(isofile lk-state/data.iso config)" = "hello world" ]
prep --cidata ud lk >/dev/null
ok "--cidata FILE: label cidata" [ "$(isolabel lk-state/cidata.iso)" = cidata ]
ok "--cidata FILE: user-data" [ "$(isofile lk-state/cidata.iso user-data)" = "#cloud-config" ]
ok "--cidata FILE: meta-data generated" grep -q "instance-id: lk" <<<"$(isofile lk-state/cidata.iso meta-data)"
prep --config-drive cd2 lk >/dev/null
ok "--config-drive: label config-2" [ "$(isolabel lk-state/config-drive.iso)" = config-2 ]
ok "--config-drive: the tree kept" [ "$(isofile lk-state/config-drive.iso openstack/latest/meta_data.json)" = "{}" ]
[ "$(run_status --dry-run --data-file missing.yml lk)" = 1 ] && pass "--data-file missing: exit 1" || fail "--data-file missing"

# The KVM probe: bounded, cached, overridable.
s=$(date +%s%N)
a1=$("$KILN" run --print-accel)
ms=$((($(date +%s%N) - s) / 1000000))
diag "probe answered $a1 in $ms ms"
ok "the probe answers kvm or tcg" bash -c "[ '$a1' = kvm ] || [ '$a1' = tcg ]"
ok "  ... within its bound (< 4 s)" [ "$ms" -lt 4000 ]
ok "  ... cached in \$XDG_RUNTIME_DIR/kiln/kvm-probe" bash -c "tail -n1 '$T/run/kiln/kvm-probe' | grep -qx '$a1'"
if [ -e /dev/kvm ] && [ "$a1" = tcg ]; then
	# Here /dev/kvm exists but cannot run a guest: the probe must have said so
	# by running one, not by a missing device.
	ok "  ... /dev/kvm exists and still tcg: the guest did not run" [ "$ms" -ge 200 ]
fi
s=$(date +%s%N)
a2=$("$KILN" run --print-accel)
ms=$((($(date +%s%N) - s) / 1000000))
ok "the cached answer is the same and quick" [ "$a2" = "$a1" -a "$ms" -lt 500 ]
ok "KILN_QEMU_ACCEL overrides" [ "$(KILN_QEMU_ACCEL=kvm "$KILN" run --print-accel)" = kvm ]
ok "--accel overrides" [ "$("$KILN" run --accel tcg --print-accel)" = tcg ]

# The console supervisor against real QEMU, cheaply: an empty disk, SeaBIOS
# prints to the serial console and finds nothing to boot (no NIC: no iPXE).
if command -v qemu-system-x86_64 >/dev/null; then
	export KILN_QEMU_ACCEL=tcg
	qemu-img create -q -f raw empty.img 1M
	sb() { "$KILN" run --networking none --state "$T/sb-state" "$@" empty.img >"$T/out" 2>"$T/err"; echo $?; }
	[ "$(sb --until 'No bootable device' --timeout 60 --console-log "$T/sb.log")" = 0 ] &&
		pass "SeaBIOS: --until matched, exit 0" || fail "SeaBIOS --until" "$(cat err)"
	ok "  ... console echoed to stdout" grep -q "SeaBIOS (version" out
	ok "  ... and in --console-log" grep -q "Boot failed: not a bootable disk" sb.log
	ok "  ... QEMU quit through QMP: no signal message" bash -c "! grep -q 'terminating on signal' '$T/err'"
	[ "$(sb --until '^SeaBIOS \(version' --timeout 60)" = 0 ] &&
		pass "--until ^ anchors past terminal escapes (SeaBIOS clears the screen first)" ||
		fail "escapes" "$(cat err)"
	[ "$(sb -q --until 'No bootable device' --timeout 60)" = 0 ] && [ ! -s out ] &&
		pass "-q: nothing echoed" || fail "-q"
	s=$(date +%s)
	[ "$(sb --until NEVER-PRINTED --timeout 3)" = 1 ] && grep -q "timed out after 3.0 s" err &&
		pass "--timeout 3: exit 1, says so" || fail "--timeout" "$(cat err)"
	ok "  ... within the bound" [ $(($(date +%s) - s)) -le 12 ]
	[ "$(sb --until NEVER-PRINTED --fail-on 'Boot failed' --timeout 60)" = 1 ] &&
		grep -q "fail-on /Boot failed/" err && pass "--fail-on: exit 1" || fail "--fail-on" "$(cat err)"
	[ "$(sb --until 'No bootable' --then powerdown --powerdown-timeout 2 --timeout 60)" = 1 ] &&
		grep -q "did not power off within 2 s" err &&
		pass "--then powerdown ignored by the guest (SeaBIOS): exit 1, says so" ||
		fail "powerdown ignored" "$(cat err)"
	[ "$(sb --until X --timeout 30 --qemu-arg -no-such-option)" = 1 ] && grep -q "exited" err &&
		pass "QEMU failing to start: exit 1" || fail "QEMU fails to start" "$(cat err)"
	# --monitor: QEMU's human monitor on a socket; `quit` there ends the run.
	"$KILN" run --networking none --state "$T/mon-state" --monitor "$T/mon.sock" \
		--until 'No bootable' --then continue --timeout 60 empty.img >/dev/null 2>"$T/mon.err" &
	monpid=$!
	at_exit "kill $monpid"
	for _ in $(seq 100); do [ -S "$T/mon.sock" ] && break; sleep 0.1; done
	sleep 2
	s=$(date +%s)
	python3 - "$T/mon.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.3)
s.sendall(b"quit\n")
time.sleep(0.5)
PY
	wait "$monpid"
	monrc=$?
	ok "--monitor: \`quit\` on the monitor socket ends QEMU; exit 0 after the match" [ "$monrc" = 0 ]
	ok "  ... promptly" [ $(($(date +%s) - s)) -le 10 ]
	# A terminal on stdin (script(1) makes one) is forwarded raw: ctrl-a x
	# reaches QEMU's multiplexer and quits; kiln exits with QEMU's status 0.
	if command -v script >/dev/null; then
		(sleep 3; printf '\001x'; sleep 5) | script -qec "'$KILN' run --networking none \
			--state '$T/tty-state' --timeout 60 empty.img" /dev/null >"$T/tty.out" 2>&1
		ttyrc=$?
		ok "TTY: ctrl-a x quits QEMU, exit 0" [ "$ttyrc" = 0 ]
		ok "  ... QEMU said so" grep -q "QEMU: Terminated" "$T/tty.out"
	fi
	# --overlay: two VMs boot one disk image, each through its own overlay;
	# without it QEMU's image lock refuses the second.
	"$KILN" run -q --networking none --overlay --state "$T/ov1" --until 'No bootable' \
		--then continue --timeout 8 empty.img >/dev/null 2>&1 &
	ovpid=$!
	at_exit "kill $ovpid"
	for _ in $(seq 100); do [ -S "$T/ov1/qmp.sock" ] && break; sleep 0.1; done
	[ "$(sb --overlay --until 'No bootable' --timeout 60)" = 0 ] &&
		pass "--overlay: a second VM boots the image the first one uses" || fail "--overlay" "$(cat err)"
	ok "  ... the overlay is qcow2 backed by the image" \
		bash -c "qemu-img info '$T/sb-state/boot-overlay.qcow2' | grep -q 'backing file: $T/empty.img'"
	[ "$(sb --until 'No bootable' --timeout 60)" = 1 ] && grep -q 'lock' err &&
		pass "without --overlay the shared image is refused (QEMU's lock)" || fail "no overlay" "$(cat err)"
	wait "$ovpid"
	unset KILN_QEMU_ACCEL
fi

# A state dir in use by a running QEMU is refused (its disks would be shared).
cp "$(command -v sleep)" "$T/qemu-sleeper"
"$T/qemu-sleeper" 30 &
sleeper=$!
at_exit "kill $sleeper"
echo "$sleeper" >lk-state/qemu.pid
[ "$(run_status --timeout 5 lk)" = 1 ] && grep -q "already running" err && pass "a running QEMU on the state dir: refused" || fail "state in use" "$(cat err)"
kill "$sleeper" 2>/dev/null
done_testing
