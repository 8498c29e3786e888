#!/usr/bin/env bash
# `kiln run qemu` boots each kind of PATH it detects: an ISO (isolinux, made
# here with xorriso), the same hybrid ISO as a raw disk and converted to
# qcow2 (format from the magic), a unified kernel image (.efi, made here with
# objcopy and systemd's stub) booted by OVMF from an ESP kiln makes, and an
# ESP named NAME-efi.img and an EFI CD named NAME-efi.iso (UEFI implied by
# the name), and NAME-kernel with
# NAME-squashfs.img / NAME-erofs.img (the root disk attached as /dev/sda).
# TCG, two VMs at a time.
source "$(dirname "$0")/../lib.sh"
for t in qemu-system-x86_64 qemu-img xorriso objcopy mkfs.fat mcopy mksquashfs mkfs.erofs; do
	command -v $t >/dev/null || skip_all "$t not installed"
done
[ -f /usr/lib/ISOLINUX/isolinux.bin ] || skip_all "isolinux not installed"
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
[ -f "$stub" ] || skip_all "systemd-boot-efi not installed"
[ -f /usr/share/OVMF/OVMF_CODE.fd ] || [ -f /usr/share/ovmf/OVMF.fd ] || skip_all "ovmf not installed"
kdir=$("$TOP/tests/fixtures/debian-kernel.sh" 2>/dev/null) || skip_all "Debian kernel fixture unavailable"
"$TOP/tests/fixtures/tiny-initrd.sh" "$T/initrd.img" "$kdir" || skip_all "cannot build the initrd"
export KILN_QEMU_ACCEL=tcg
cd "$T"

# A BIOS-bootable hybrid ISO: isolinux, kernel, initrd.
mkdir -p iso/isolinux
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 iso/isolinux/
cp "$kdir/vmlinuz" iso/kernel
cp initrd.img iso/initrd.img
printf 'SERIAL 0 115200\nDEFAULT linux\nPROMPT 0\nTIMEOUT 0\nLABEL linux\n  KERNEL /kernel\n  APPEND initrd=/initrd.img console=ttyS0 quiet kiln.test=marker\n' \
	>iso/isolinux/isolinux.cfg
xorriso -no_rc -as mkisofs -quiet -o t.iso -isohybrid-mbr /usr/lib/ISOLINUX/isohdpfx.bin \
	-b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 \
	-boot-info-table iso 2>/dev/null
cp t.iso disk.img
qemu-img convert -O qcow2 disk.img disk.qcow2

# A UKI: systemd's stub with the kernel, initrd and command line as sections.
printf 'console=ttyS0 quiet kiln.test=marker' >uki-cmdline
printf 'NAME=kiln-test\n' >osrel
objcopy --add-section .osrel=osrel --change-section-vma .osrel=0x20000 \
	--add-section .cmdline=uki-cmdline --change-section-vma .cmdline=0x30000 \
	--add-section .linux="$kdir/vmlinuz" --change-section-vma .linux=0x2000000 \
	--add-section .initrd=initrd.img --change-section-vma .initrd=0x3000000 "$stub" t.efi

# kernel+squashfs and kernel+erofs: a root filesystem holding /hello.
mkdir -p rootdir
echo hello-from-the-root-disk >rootdir/hello
mksquashfs rootdir sq-squashfs.img -quiet -noappend >/dev/null
mkfs.erofs er-erofs.img rootdir >/dev/null 2>&1
for n in sq er; do
	cp "$kdir/vmlinuz" $n-kernel
	cp initrd.img $n-initrd.img
	echo "console=ttyS0 quiet kiln.test=rootfs" >$n-cmdline
done

boot() { # NAME PATH KILN-OPTIONS...
	local name=$1 path=$2; shift 2
	(
		s=$(date +%s)
		"$KILN" -v run qemu --mem 256 --state "$T/$name-state" --until KILN-TEST-MARKER \
			--timeout 240 "$@" "$path" >"$T/$name.out" 2>"$T/$name.err"
		echo $? >"$T/$name.rc"
		echo $(($(date +%s) - s)) >"$T/$name.time"
	) &
}
rc() { cat "$T/$1.rc"; }
show() { diag "$1: status $(rc "$1") in $(cat "$T/$1.time") s; $(grep -m1 ' boot of ' "$T/$1.err")"; }

boot iso t.iso
boot qcow2 disk.qcow2
wait
show iso
show qcow2
ok "ISO: booted (isolinux) to the marker" [ "$(rc iso)" = 0 ]
ok "ISO: detected as iso, attached as CD-ROM with -boot d" \
	bash -c "grep -q 'iso boot of' '$T/iso.err' && grep -q 'media=cdrom' '$T/iso.err' && grep -q -- '-boot d' '$T/iso.err'"
ok "qcow2: booted to the marker" [ "$(rc qcow2)" = 0 ]
ok "qcow2: format from the magic" grep -q "disk.qcow2,format=qcow2,index=0,media=disk" "$T/qcow2.err"

boot uki t.efi
boot raw disk.img
wait
show uki
show raw
ok "UKI: booted by OVMF from the ESP kiln made" [ "$(rc uki)" = 0 ]
ok "UKI: OVMF started the ESP's EFI/BOOT/BOOTX64.EFI" grep -q "BdsDxe: starting" "$T/uki.out"
ok "UKI: the ESP holds EFI/BOOT/BOOTX64.EFI" \
	bash -c "mdir -i '$T/uki-state/esp.img' ::EFI/BOOT | grep -q BOOTX64"
ok "UKI: a writable OVMF_VARS copy in the state dir" [ -s "$T/uki-state/OVMF_VARS.fd" ]
ok "raw: booted to the marker" [ "$(rc raw)" = 0 ]
ok "raw: format raw" grep -q "disk.img,format=raw,index=0,media=disk" "$T/raw.err"

# NAME-efi.img: the UEFI firmware comes without --uefi.
cp "$T/uki-state/esp.img" t-efi.img
boot efiimg t-efi.img
# The --until regexes name the whole expected line: kiln matches partial lines
# (for prompts), so '^ROOTFS' alone could stop the VM mid-line.
boot squashfs sq --until 'ROOTFS [^ ]+: hello-from-the-root-disk' --fail-on 'ROOTFS [^ ]+: [^h]'
wait
show efiimg
show squashfs
ok "NAME-efi.img: UEFI implied by the name, booted" [ "$(rc efiimg)" = 0 ]
ok "  ... with OVMF as pflash" grep -q "if=pflash" "$T/efiimg.err"
ok "NAME-squashfs.img: detected, booted" bash -c "[ '$(rc squashfs)' = 0 ] && grep -q 'squashfs boot of' '$T/squashfs.err'"
ok "  ... the guest mounted it as root=/dev/sda" grep -q "ROOTFS /dev/sda: hello-from-the-root-disk" "$T/squashfs.out"
# NAME-efi.iso: an El Torito EFI CD whose boot image is that ESP; UEFI
# implied by the name.
mkdir -p efiiso
cp "$T/uki-state/esp.img" efiiso/efiboot.img
xorriso -no_rc -as mkisofs -quiet -o t-efi.iso -e efiboot.img -no-emul-boot efiiso 2>/dev/null
boot efiiso t-efi.iso
boot erofs er --until 'ROOTFS [^ ]+: hello-from-the-root-disk' --fail-on 'ROOTFS [^ ]+: [^h]'
wait
show efiiso
show erofs
ok "NAME-efi.iso: UEFI implied, booted from the CD by OVMF" \
	bash -c "[ '$(rc efiiso)' = 0 ] && grep -q 'if=pflash' '$T/efiiso.err' && grep -q -- '-boot d' '$T/efiiso.err'"
ok "NAME-erofs.img: detected, booted, mounted as /dev/sda" \
	grep -q "ROOTFS /dev/sda: hello-from-the-root-disk" "$T/erofs.out"
done_testing
