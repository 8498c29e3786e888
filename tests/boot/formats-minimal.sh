#!/usr/bin/env bash
# examples/minimal.yml through `kiln build` in the disk and ISO formats,
# each booted with `kiln run qemu` (TCG; SeaBIOS, or OVMF for the EFI ones)
# until its services run: iso-bios as a CD, raw-efi under UEFI,
# kernel+squashfs with the root image on a disk and no root=.  Uses the image
# cache the examples boot test fills ($KILN_TEST_CACHE, build/test-cache);
# skipped when it holds nothing yet.  Two guests at a time.
source "$(dirname "$0")/../lib.sh"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
[ -d "$KILN_CACHE" ] && [ -n "$(ls -A "$KILN_CACHE" 2>/dev/null)" ] ||
	skip_all "no image cache at $KILN_CACHE (tests/boot/examples.sh fills it)"
out=$T/out
mkdir -p "$out"
if ! "$KILN" build -q -format iso-bios,raw-efi,kernel+squashfs -dir "$out" "$TOP/examples/minimal.yml" \
	>"$T/build.log" 2>&1; then
	fail "minimal builds as iso-bios, raw-efi and kernel+squashfs" "$(tail -5 "$T/build.log")"
	done_testing
fi
pass "minimal builds as iso-bios, raw-efi and kernel+squashfs"
ok "kernel+squashfs: no root= in the command line" bash -c "! grep -q root= '$out/minimal-cmdline'"
boot() { # NAME PATH
	(
		"$KILN" run qemu -q --mem 1024 --timeout 300 --until 'BENCH services-started \([0-9]+ failed\)' \
			--console-log "$T/$1.console" --state "$T/$1-state" "$2" >/dev/null 2>&1
		echo $? >"$T/$1.rc"
	) &
}
check() {
	if [ "$(cat "$T/$1.rc")" = 0 ] && grep -aq 'services-started (0 failed)' "$T/$1.console"; then
		pass "$1: minimal boots to its services"
	else
		fail "$1: minimal did not reach its services (kiln run status $(cat "$T/$1.rc"))" \
			"$(tail -c 600 "$T/$1.console" | tr -d '\r' | sed 's/^/# /')"
	fi
}
boot iso-bios "$out/minimal.iso"
boot raw-efi "$out/minimal-efi.img"
wait
check iso-bios
check raw-efi
boot kernel+squashfs "$out/minimal"
wait
check kernel+squashfs
ok "kernel+squashfs: the small initrd found the root image" grep -aq 'kiln: squashfs root image on /dev/' "$T/kernel+squashfs.console"
done_testing
