#!/usr/bin/env bash
# Manifest volumes at boot (the init's step of LinuxKit's 005-volumes):
# tests/manifests/volumes/volumes.yml holds LinuxKit's
# test/cases/000_build/070_volumes cases 000_rw_on_rw, 001_ro_on_ro,
# 004_blank, 005_image and 006_mount_types as onboot containers of one image
# (kiln's poweroff package, busybox, in place of alpine), built with kiln
# build and booted once under QEMU (TCG) until the onboot containers end.
# Each container's check.sh prints `volume-check CASE: ok`.  Also: 002_rw_on_ro
# (a read-only volume bound without :ro) must fail the build; a volume laid
# out without tmp/ is mounted read-only even through a read-write bind; a
# broken volume is one FAILED line and the boot goes on.
source "$(dirname "$0")/../lib.sh"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
command -v qemu-system-x86_64 >/dev/null || skip_all "no qemu-system-x86_64"
M=$TOP/tests/manifests/volumes
out=$T/out
C=$T/console
mkdir -p "$out"

# 002_rw_on_ro: refused when the manifest is read.
cat >"$T/rw-on-ro.yml" <<'YAML'
onboot:
  - name: test
    image: alpine:3.20
    binds: [/check.sh:/check.sh, vola:/vola]
volumes:
  - name: vola
    readonly: true
YAML
"$KILN" build --dry-run "$T/rw-on-ro.yml" >/dev/null 2>"$T/rw-on-ro.err"
rc=$?
refused() { [ "$rc" -eq 1 ] && grep -q 'volume "vola" is read-only' "$T/rw-on-ro.err"; }
ok "002_rw_on_ro: binding a read-only volume read-write fails the build (exit $rc)" refused

# files: sources are relative to the working directory, @pkg: to the manifest.
t0=$(date +%s)
if (cd "$M" && "$KILN" build -q -format kernel+initrd,tar -dir "$out" volumes.yml) >"$T/build.log" 2>&1; then
	pass "volumes.yml builds as kernel+initrd ($(($(date +%s) - t0)) s)"
else
	fail "volumes.yml builds as kernel+initrd" "$(tail -3 "$T/build.log")"
	done_testing
fi
# Whether the build marks the read-only volume by leaving out its tmp/ (the
# layout the init reads as read-only); LinuxKit's builder writes tmp/ always.
tar tf "$out/volumes.tar" 2>/dev/null >"$T/list"
ro_layout=no
grep -qx 'containers/volumes/volro/lower/' "$T/list" && ! grep -qx 'containers/volumes/volro/tmp/' "$T/list" &&
	ro_layout=yes
ok "the build lays out vola with lower/, tmp/ and merged/" \
	grep -qx 'containers/volumes/vola/tmp/' "$T/list"
diag "read-only volume volro laid out without tmp/: $ro_layout"

t0=$(date +%s)
"$KILN" run qemu -q --accel tcg --mem 512 --timeout 240 --until 'BENCH onboot-done \([0-9]+ failed\)' \
	--console-log "$C" --state "$T/state" "$out/volumes" >/dev/null 2>&1
rc=$?
ok "boots until the onboot containers are done (exit $rc, $(($(date +%s) - t0)) s)" test $rc -eq 0
console_has() { grep -qE "$1" "$C"; }
case_ok() { # NNN-NAME CASE: the container printed ok and exited 0
	console_has "$1: volume-check $2: ok" && console_has "kiln-init: $1: exited \(exit status 0\)"
}

ok "init: vola overlay-mounted read-write" console_has 'kiln-init: volume vola: read-write'
ok "init: volblank, volimg overlay-mounted read-write" \
	eval "console_has 'kiln-init: volume volblank: read-write' && console_has 'kiln-init: volume volimg: read-write'"
ok "init: volsim (no tmp/) bound read-only" console_has 'kiln-init: volume volsim: read-only'
ok "init: the broken volume is one FAILED line naming it" \
	console_has 'kiln-init: volume broken: FAILED: no merged/ directory'
ok "000_rw_on_rw: written by one container" case_ok 000-rw-write rw-write
ok "000_rw_on_rw: seen by the next" case_ok 001-rw-read rw-read
ok "001_ro_on_ro: mounted :ro, readable, a write fails" case_ok 002-ro-on-ro ro-on-ro
ok "004_blank: an empty, writable directory" case_ok 003-blank blank
ok "005_image: holds the image's bin/busybox" case_ok 004-image image
ok "006_mount_types: binds" case_ok 005-binds binds
ok "006_mount_types: mounts type bind" case_ok 006-mounts mounts
ok "006_mount_types: binds.add" case_ok 007-binds-add binds-add
ok "a volume without tmp/ stays read-only through a read-write bind" \
	console_has '009-sim-state: volume-check state-volsim: read-only'
if [ $ro_layout = yes ]; then
	ok "init: volro (readonly: true) bound read-only" console_has 'kiln-init: volume volro: read-only'
	ok "readonly: true volume stays read-only through a read-write bind" \
		console_has '008-ro-state: volume-check state-volro: read-only'
else
	# LinuxKit's quirk, until the build leaves tmp/ out for read-only volumes.
	ok "init: volro (readonly: true, but with tmp/) is mounted read-write, as LinuxKit does" \
		console_has 'kiln-init: volume volro: read-write'
fi
ok "every onboot container succeeded" console_has 'BENCH onboot-done \(0 failed\)'
if grep -q 'volume-check' "$C"; then
	grep -E 'kiln-init: volume |volume-check' "$C" | sed 's/^/# /'
else
	tail -30 "$C" | sed 's/^/# /'
fi
done_testing
