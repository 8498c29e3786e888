#!/usr/bin/env bash
# Boots every bootable output format in QEMU (TCG) to the marker its /init
# prints: SeaBIOS for the BIOS formats, OVMF for the EFI ones; iso-bios also
# as a disk, the hybrid iso-efi also under SeaBIOS, kernel+squashfs from a
# virtio and from a SATA disk with no root= anywhere.  Two guests at a time.
# qcow2-bios, vmdk, dynamic-vhd and iso-efi-initrd hold the same bytes as
# formats booted here (tests/integration/formats.sh compares them with
# qemu-img compare); KILN_BOOT_ALL=1 boots them too.
# Inputs: tests/fixtures/formats-inputs.sh (Debian's kernel, a busybox
# initrd/rootfs whose /init prints KILN-BOOT-OK), writer: formats-run.
source "$(dirname "$0")/../lib.sh"
RUN=$TOP/${KILN_BUILD:-build}/tests/formats-run
OVMF=/usr/share/ovmf/OVMF.fd
[ -x "$RUN" ] || skip_all "no $RUN (make all)"
command -v qemu-system-x86_64 >/dev/null || skip_all "no qemu-system-x86_64"
[ -f "$OVMF" ] || skip_all "no $OVMF"
F=$("$TOP/tests/fixtures/formats-inputs.sh") || skip_all "cannot make the inputs"
B=$T/out
mkdir -p "$B"
for f in raw-bios raw-efi iso-bios iso-efi iso-efi-initrd qcow2-bios qcow2-efi vhd dynamic-vhd vmdk \
	kernel+squashfs kernel+erofs; do
	"$RUN" "$f" --dir "$B" --name t --kernel "$F/kernel" --initrd "$F/initrd.img" \
		--tar "$F/rootfs.tar" --cmdline "$(cat "$F/cmdline")" --size $((256 * 1024 * 1024)) 2>"$T/err" ||
		fail "$f: build" "$(cat "$T/err")"
done

# boot NAME QEMU-ARGS... : runs in the background, result in $T/NAME.rc
boot() {
	local name=$1
	shift
	(
		start=$(date +%s)
		timeout 240 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -monitor none \
			-serial stdio "$@" </dev/null >"$T/$name.log" 2>&1
		echo "$? $(($(date +%s) - start))" >"$T/$name.rc"
	) &
}
check() {
	local name=$1 want=${2:-KILN-BOOT-OK}
	read -r rc secs <"$T/$name.rc"
	if grep -aq "$want" "$T/$name.log"; then
		pass "$name: boots to its init ($secs s)"
	else
		fail "$name: no '$want' on the console (qemu status $rc, $secs s)" \
			"$(tail -c 600 "$T/$name.log" | tr -d '\r' | sed 's/^/# /')"
	fi
}
disk() { echo "file=$1,format=$2,if=${3:-virtio},snapshot=on"; }
ovmf=(-bios "$OVMF")

names=()
run_pair() {
	wait
	for n in "${names[@]}"; do check "$n" "${expect[$n]:-KILN-BOOT-OK}"; done
	names=()
}
declare -A expect
q() { names+=("$1"); boot "$@"; [ ${#names[@]} -ge 2 ] && run_pair; return 0; }

q iso-bios-cdrom -cdrom "$B/t.iso"
q iso-bios-as-disk -drive "$(disk "$B/t.iso" raw)"
q raw-bios -drive "$(disk "$B/t-bios.img" raw)"
q raw-efi "${ovmf[@]}" -drive "$(disk "$B/t-efi.img" raw)"
q iso-efi-cdrom-uefi "${ovmf[@]}" -drive "$(disk "$B/t-efi.iso" raw ide),media=cdrom"
q iso-efi-cdrom-bios -drive "$(disk "$B/t-efi.iso" raw ide),media=cdrom"
q qcow2-efi "${ovmf[@]}" -drive "$(disk "$B/t-efi.qcow2" qcow2)"
if [ "${KILN_BOOT_ALL:-0}" = 1 ]; then
	q iso-efi-initrd-uefi-as-disk "${ovmf[@]}" -drive "$(disk "$B/t-efi-initrd.iso" raw)"
	q qcow2-bios -drive "$(disk "$B/t.qcow2" qcow2)"
	q vmdk -drive "$(disk "$B/t.vmdk" vmdk ide)"
	q dynamic-vhd -drive "$(disk "$B/t.vhd" vpc)"
fi
expect[kernel+squashfs-virtio]="KILN-BOOT-OK root=overlay"
expect[kernel+squashfs-sata]="KILN-BOOT-OK root=overlay"
expect[kernel+erofs-virtio]="KILN-BOOT-OK root=overlay"
kboot=(-kernel "$B/t-kernel" -initrd "$B/t-initrd.img" -append "$(cat "$B/t-cmdline")")
q kernel+squashfs-virtio "${kboot[@]}" -drive "$(disk "$B/t-squashfs.img" raw)"
q kernel+squashfs-sata "${kboot[@]}" -device ahci,id=ahci \
	-drive "id=r,$(disk "$B/t-squashfs.img" raw none)" -device ide-hd,drive=r,bus=ahci.0
q kernel+erofs-virtio "${kboot[@]}" -drive "$(disk "$B/t-erofs.img" raw)"
run_pair
ok "kernel+squashfs: no root= in NAME-cmdline" bash -c "! grep -q root= '$B/t-cmdline'"
done_testing
