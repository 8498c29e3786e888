#!/usr/bin/env bash
# examples/minimal.yml through `kiln build` in every bootable format, each
# booted with `kiln run qemu` (TCG; SeaBIOS for the BIOS formats, OVMF for
# the EFI ones) until its services run, '(0 failed)': iso-bios as a CD and as
# a disk, iso-efi as a CD (UEFI) and under SeaBIOS (it is hybrid),
# iso-efi-initrd as a disk (UEFI), raw-bios, raw-efi, qcow2-bios, qcow2-efi,
# vhd, dynamic-vhd, vmdk, aws, gcp (its disk.raw), uki, kernel+squashfs from
# a SATA (AHCI) and from a virtio disk, kernel+erofs; no root= on the command
# line.  kernel+initrd is built into the same directory (its NAME-initrd.img
# must survive the others) and booted by tests/boot/examples.sh; here its
# QEMU command line is checked.  The docker output's ENTRYPOINT must exist in
# the tar.  Uses the image cache the examples boot test fills
# ($KILN_TEST_CACHE, build/test-cache); skipped when it holds nothing yet.
# Two guests at a time, the slow (UEFI) ones first.
source "$(dirname "$0")/../lib.sh"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
export KILN_QEMU_ACCEL=tcg
[ -d "$KILN_CACHE" ] && [ -n "$(ls -A "$KILN_CACHE" 2>/dev/null)" ] ||
	skip_all "no image cache at $KILN_CACHE (tests/boot/examples.sh fills it)"
command -v qemu-system-x86_64 >/dev/null || skip_all "no qemu-system-x86_64"
t0=$(date +%s)
out=$T/out
mkdir -p "$out" "$T/dyn"
# dynamic-vhd and vhd are both NAME.vhd (LinuxKit's names): another --dir.
formats=iso-bios,iso-efi,iso-efi-initrd,raw-bios,raw-efi,qcow2-bios,qcow2-efi,vhd,vmdk,aws,gcp,uki
formats+=,kernel+initrd,kernel+squashfs,kernel+erofs,docker
if "$KILN" build -q -format "$formats" -dir "$out" "$TOP/examples/minimal.yml" >"$T/build.log" 2>&1 &&
	"$KILN" build -q -format dynamic-vhd -dir "$T/dyn" "$TOP/examples/minimal.yml" >>"$T/build.log" 2>&1; then
	pass "minimal builds in every format into one directory ($(($(date +%s) - t0)) s)"
else
	fail "minimal builds in every format" "$(tail -5 "$T/build.log")"
	done_testing
fi

# --- The files of the kernel formats do not clash.
ok "kernel+initrd: NAME-initrd.img is its own, not the small squashfs/erofs initrd" bash -c \
	"! cmp -s '$out/minimal-initrd.img' '$out/minimal-squashfs-initrd.img' && ! cmp -s '$out/minimal-initrd.img' '$out/minimal-erofs-initrd.img'"
ok "kernel+initrd: its initrd is the whole root (holds containerd)" bash -c \
	"zcat '$out/minimal-initrd.img' | grep -aq 'usr/bin/containerd'"
ok "kernel+squashfs: the small initrd holds no root filesystem" bash -c \
	"zcat '$out/minimal-squashfs-initrd.img' | cpio -it 2>/dev/null | grep -qx init && ! zcat '$out/minimal-squashfs-initrd.img' | grep -aq 'usr/bin/containerd'"
ok "kernel+squashfs: no root= in NAME-cmdline" bash -c "! grep -q root= '$out/minimal-cmdline'"
"$KILN" run qemu --dry-run --kernel "$out/minimal" >"$T/dry-kernel" 2>&1
ok "kiln run --kernel NAME: kernel+initrd's full initrd, no root disk" bash -c \
	"grep -q -- '-initrd $out/minimal-initrd.img' '$T/dry-kernel' && ! grep -q squashfs '$T/dry-kernel'"
"$KILN" run qemu --dry-run "$out/minimal" >"$T/dry-sq" 2>&1
ok "kiln run NAME: the squashfs root with its own initrd, no root=" bash -c \
	"grep -q -- '-initrd $out/minimal-squashfs-initrd.img' '$T/dry-sq' && grep -q 'minimal-squashfs.img,format=raw' '$T/dry-sq' && ! grep -q root= '$T/dry-sq'"
"$KILN" run qemu --dry-run "$out/minimal-erofs.img" >"$T/dry-er" 2>&1
ok "kiln run NAME-erofs.img: the erofs root with its own initrd" bash -c \
	"grep -q -- '-initrd $out/minimal-erofs-initrd.img' '$T/dry-er' && grep -q 'minimal-erofs.img,format=raw' '$T/dry-er'"

# --- docker: the Dockerfile's ENTRYPOINT is an executable of the image.
tar -xOf "$out/minimal.docker" Dockerfile >"$T/Dockerfile" 2>/dev/null
entry=$(sed -n 's/^ENTRYPOINT \["\([^"]*\)".*/\1/p' "$T/Dockerfile")
ok "docker: ENTRYPOINT $entry (kiln's init) is in the image" bash -c \
	"[ -n '$entry' ] && tar --warning=no-unknown-keyword -tvf '$out/minimal.docker' | grep -Eq '^[-l]r.x.* ${entry#/}( ->.*)?$'"

# --- Boots.  boot NAME KILN-RUN-ARGS... ; results in $T/NAME.{rc,console,err,secs}
mkdir -p "$T/links" "$T/gcp"
ln -s "$out/minimal.iso" "$T/links/minimal-iso-as-disk.img"
ln -s "$out/minimal-efi.iso" "$T/links/minimal-efi-under-bios.iso"
ln -s "$out/minimal-efi-initrd.iso" "$T/links/minimal-efi-initrd-as-disk.img"
# kernel+squashfs on virtio: the same kernel, initrd and command line booted
# as a plain kernel boot, the squashfs image added as a virtio disk.
for f in kernel cmdline; do ln -s "$out/minimal-$f" "$T/links/sqv-$f"; done
ln -s "$out/minimal-squashfs-initrd.img" "$T/links/sqv-initrd.img"
# disk.raw is 1 GiB of mostly zeros and the archive is plain GNU tar (what
# Compute Engine takes), so tar would write all of it: keep it sparse.
tar -xzOf "$out/minimal.img.tar.gz" disk.raw | cp --sparse=always /dev/stdin "$T/gcp/disk.raw"
boot() {
	local name=$1
	shift
	(
		s=$(date +%s)
		"$KILN" -v run qemu --mem 1024 --timeout 400 --until 'BENCH services-started \([0-9]+ failed\)' \
			--console-log "$T/$name.console" --state "$T/$name-state" --snapshot "$@" \
			>/dev/null 2>"$T/$name.err"
		echo $? >"$T/$name.rc"
		echo $(($(date +%s) - s)) >"$T/$name.secs"
	) &
	running=$((running + 1))
	if [ $running -ge 2 ]; then
		wait -n
		running=$((running - 1))
	fi
}
running=0
names=(raw-efi qcow2-efi iso-efi iso-efi-initrd-as-disk uki
	iso-bios iso-bios-as-disk iso-efi-under-bios raw-bios qcow2-bios vhd dynamic-vhd vmdk aws gcp
	kernel+squashfs-sata kernel+squashfs-virtio kernel+erofs)
tb=$(date +%s)
boot raw-efi "$out/minimal-efi.img"
boot qcow2-efi "$out/minimal-efi.qcow2"
boot iso-efi "$out/minimal-efi.iso"
boot iso-efi-initrd-as-disk --uefi "$T/links/minimal-efi-initrd-as-disk.img"
boot uki "$out/minimal.efi"
boot iso-bios "$out/minimal.iso"
boot iso-bios-as-disk "$T/links/minimal-iso-as-disk.img"
boot iso-efi-under-bios "$T/links/minimal-efi-under-bios.iso"
boot raw-bios "$out/minimal-bios.img"
boot qcow2-bios "$out/minimal.qcow2"
boot vhd "$out/minimal.vhd"
boot dynamic-vhd "$T/dyn/minimal.vhd"
boot vmdk "$out/minimal.vmdk"
boot aws "$out/minimal.raw"
boot gcp "$T/gcp/disk.raw"
boot kernel+squashfs-sata "$out/minimal-squashfs.img"
boot kernel+squashfs-virtio --kernel "$T/links/sqv" --disk "file=$out/minimal-squashfs.img,format=raw,if=virtio"
boot kernel+erofs "$out/minimal-erofs.img"
wait
diag "18 boots in $(($(date +%s) - tb)) s, two at a time"

for n in "${names[@]}"; do
	if [ "$(cat "$T/$n.rc")" = 0 ] && grep -aq 'services-started (0 failed)' "$T/$n.console"; then
		pass "$n: minimal boots to its services ($(cat "$T/$n.secs") s)"
	else
		fail "$n: minimal did not reach its services (kiln run status $(cat "$T/$n.rc"), $(cat "$T/$n.secs") s)" \
			"$(tail -c 600 "$T/$n.console" | tr -d '\r' | sed 's/^/# /')"
	fi
done
qemu_has() { grep -q -- "$2" "$T/$1.err"; }
for n in raw-efi qcow2-efi iso-efi iso-efi-initrd-as-disk uki; do
	ok "$n: under OVMF" qemu_has "$n" 'if=pflash'
done
for n in iso-bios iso-bios-as-disk iso-efi-under-bios raw-bios qcow2-bios vhd dynamic-vhd vmdk aws gcp; do
	ok "$n: under SeaBIOS" bash -c "! grep -q 'if=pflash' '$T/$n.err'"
done
ok "iso-bios: attached as a CD-ROM" qemu_has iso-bios 'minimal.iso,format=raw,index=2,media=cdrom'
ok "iso-bios-as-disk: attached as a disk" qemu_has iso-bios-as-disk 'minimal-iso-as-disk.img,format=raw,index=0,media=disk'
ok "iso-efi-initrd-as-disk: attached as a disk" qemu_has iso-efi-initrd-as-disk 'as-disk.img,format=raw,index=0,media=disk'
for n in qcow2-bios:qcow2 qcow2-efi:qcow2 vhd:vpc dynamic-vhd:vpc vmdk:vmdk; do
	ok "${n%:*}: QEMU reads it as ${n#*:}" qemu_has "${n%:*}" "format=${n#*:},index=0,media=disk"
done
ok "kernel+squashfs-sata: the small initrd found the image on SATA (/dev/sda)" \
	grep -aq 'kiln: squashfs root image on /dev/sda' "$T/kernel+squashfs-sata.console"
ok "kernel+squashfs-virtio: the small initrd found the image on virtio (/dev/vda)" \
	grep -aq 'kiln: squashfs root image on /dev/vda' "$T/kernel+squashfs-virtio.console"
ok "kernel+erofs: the small initrd found the erofs image" \
	grep -aq 'kiln: erofs root image on /dev/sda' "$T/kernel+erofs.console"
for n in kernel+squashfs-sata kernel+squashfs-virtio kernel+erofs; do
	ok "$n: no root= on the kernel command line" bash -c \
		"grep -a 'Command line:' '$T/$n.console' | grep -q . && ! grep -a 'Command line:' '$T/$n.console' | grep -q root="
done
diag "formats-minimal: $(($(date +%s) - t0)) s in all"
done_testing
