#!/usr/bin/env bash
# Output formats beyond tar and kernel+initrd (issue 7): every format is
# written twice from the same inputs (the second time from copies with other
# mtimes, into another directory) with identical bytes, and every file
# validates with a peer tool: qemu-img check/info/compare, xorriso
# -report_el_torito, fsck.fat -n on the ESPs, sgdisk -v, unsquashfs -lln and
# an fsck.erofs extraction (owners and modes as in the tar).
# Inputs: tests/fixtures/formats-inputs.sh; writer: build/tests/formats-run.
source "$(dirname "$0")/../lib.sh"
RUN=$TOP/${KILN_BUILD:-build}/tests/formats-run
[ -x "$RUN" ] || skip_all "no $RUN (make all)"
for t in xorriso mkfs.fat mcopy syslinux mksquashfs mkfs.erofs fsck.erofs fakeroot qemu-img sgdisk \
	fsck.fat unsquashfs objcopy python3; do
	command -v "$t" >/dev/null || skip_all "$t missing"
done
F=$("$TOP/tests/fixtures/formats-inputs.sh") || skip_all "cannot make the inputs"
mkdir -p "$T/in2"
cp "$F"/* "$T/in2/"
touch -d '2001-02-03 04:05:06' "$T/in2"/*
GIB=1073741824
SIZE=$((128 * 1024 * 1024)) # --size for the disk formats (gcp: whole GiB anyway)

# build DIR INPUTS FORMAT [EXTRA ARGS...]
build() {
	local dir=$1 in=$2 fmt=$3
	shift 3
	mkdir -p "$dir"
	"$RUN" "$fmt" --dir "$dir" --name t --kernel "$in/kernel" --initrd "$in/initrd.img" \
		--tar "$in/rootfs.tar" --cmdline "$(cat "$in/cmdline")" "$@"
}
sums() { (cd "$1" && sha256sum -- * | sort); }

formats="uki raw-bios raw-efi iso-bios iso-efi iso-efi-initrd qcow2-bios qcow2-efi vhd dynamic-vhd vmdk aws gcp kernel+squashfs kernel+erofs"
for f in $formats; do
	extra=()
	case $f in qcow2-*|vhd|dynamic-vhd|vmdk|aws) extra=(--size $SIZE) ;; esac
	if build "$T/a/$f" "$F" "$f" "${extra[@]}" 2>"$T/err" &&
		build "$T/b/$f" "$T/in2" "$f" "${extra[@]}" 2>>"$T/err"; then
		if [ "$(sums "$T/a/$f")" = "$(sums "$T/b/$f")" ] && [ -n "$(ls "$T/a/$f")" ]; then
			pass "$f: two builds are byte-identical ($(ls "$T/a/$f" | tr '\n' ' '))"
		else
			fail "$f: two builds differ" "$(diff <(sums "$T/a/$f") <(sums "$T/b/$f"))"
		fi
	else
		fail "$f: builds" "$(cat "$T/err")"
	fi
done
A=$T/a

# --- uki: the stub's sections plus ours, holding exactly the inputs.
sec() { objcopy -O binary --only-section="$2" "$1" "$T/sec.bin" && cat "$T/sec.bin"; }
ok "uki: .linux is the kernel" cmp <(sec "$A/uki/t.efi" .linux) "$F/kernel"
ok "uki: .initrd is the initrd" cmp <(sec "$A/uki/t.efi" .initrd) "$F/initrd.img"
ok "uki: .cmdline is the command line" cmp <(sec "$A/uki/t.efi" .cmdline) "$F/cmdline"
ok "uki: .osrel names kiln" grep -q '^ID=kiln' <(sec "$A/uki/t.efi" .osrel)
ok "uki: objdump sees a PE32+ EFI application" \
	bash -c "objdump -x '$A/uki/t.efi' | grep -q 'Subsystem.*EFI application'"

# --- raw-bios: kiln's MBR, an active FAT16 partition at 2048, syslinux in it.
img=$A/raw-bios/t-bios.img
mbr() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
ok "raw-bios: MBR boot mark, active FAT partition at LBA 2048" \
	test "$(mbr "$img" 510 2)/$(mbr "$img" 446 1)/$(mbr "$img" 450 1)/$(mbr "$img" 454 4)" = "55aa/80/0e/00080000"
ok "raw-bios: syslinux's mbr.bin is the boot code" \
	cmp -n 440 "$img" /usr/lib/syslinux/mbr/mbr.bin
sectors=$(( $(od -An -tu4 -j 458 -N 4 "$img") ))
dd if="$img" of="$T/bios-fat.img" bs=512 skip=2048 count="$sectors" status=none
ok "raw-bios: fsck.fat -n on the partition" fsck.fat -n "$T/bios-fat.img"
ok "raw-bios: kernel, initrd, syslinux.cfg and ldlinux.sys in the FAT" bash -c \
	"mdir -a -b -i '$T/bios-fat.img' :: | sort | tr '\n' ' ' | grep -q '::/initrd.img ::/kernel ::/ldlinux.c32 ::/ldlinux.sys ::/syslinux.cfg'"
ok "raw-bios: syslinux.cfg appends the command line, no root=" bash -c \
	"MTOOLS_SKIP_CHECK=1 mtype -i '$T/bios-fat.img' ::syslinux.cfg | grep -qx '  APPEND $(cat "$F/cmdline")'"
ok "raw-bios: FAT timestamps are the epoch (2023-11-14)" bash -c \
	"mdir -i '$T/bios-fat.img' :: | grep -q 'kernel.*2023-11-14'"

# --- raw-efi: GPT checked by sgdisk, ESP holding the UKI.
img=$A/raw-efi/t-efi.img
ok "raw-efi: sgdisk -v finds no problems" bash -c "sgdisk -v '$img' | grep -q 'No problems found'"
ok "raw-efi: one EFI system partition at 2048" bash -c "sgdisk -p '$img' | grep -Eq '^ +1 +2048 .* EF00 +EFI System'"
first=$(sgdisk -i 1 "$img" | awk '/First sector/{print $3}')
last=$(sgdisk -i 1 "$img" | awk '/Last sector/{print $3}')
dd if="$img" of="$T/esp.img" bs=512 skip="$first" count=$((last - first + 1)) status=none
ok "raw-efi: fsck.fat -n on the ESP" fsck.fat -n "$T/esp.img"
MTOOLS_SKIP_CHECK=1 mcopy -n -i "$T/esp.img" ::EFI/BOOT/BOOTX64.EFI "$T/bootx64.efi" 2>/dev/null
ok "raw-efi: EFI/BOOT/BOOTX64.EFI is the uki output" cmp "$T/bootx64.efi" "$A/uki/t.efi"
ok "raw-efi: disk GUID derived from the content, not random" bash -c \
	"[ \"\$(sgdisk -p '$img' | grep GUID)\" = \"\$(sgdisk -p '$T/b/raw-efi/t-efi.img' | grep GUID)\" ]"
build "$T/size" "$F" raw-efi --size $((64 * 1024 * 1024)) 2>/dev/null
ok "raw-efi: --size 64M gives a 64 MiB disk, valid GPT" bash -c \
	"[ \$(stat -c %s '$T/size/t-efi.img') = 67108864 ] && sgdisk -v '$T/size/t-efi.img' | grep -q 'No problems found'"
ok "raw-efi: --size smaller than the ESP is refused" bash -c \
	"! '$RUN' raw-efi --dir '$T/size' --name small --kernel '$F/kernel' --initrd '$F/initrd.img' --size 1048576 2>/dev/null"

# --- ISOs: El Torito entries, isohybrid, the files inside.
xorriso -indev "$A/iso-bios/t.iso" -report_el_torito plain >"$T/rep" 2>&1
ok "iso-bios: El Torito BIOS boot image is isolinux" grep -q 'El Torito img path :   1  /isolinux/isolinux.bin' "$T/rep"
ok "iso-bios: isohybrid MBR (boots as a disk too)" grep -q 'Boot record .*MBR isohybrid' "$T/rep"
xorriso -osirrox on -indev "$A/iso-bios/t.iso" -extract /kernel "$T/iso-kernel" -extract /isolinux/isolinux.cfg "$T/iso.cfg" >/dev/null 2>&1
ok "iso-bios: /kernel on the ISO is the kernel" cmp "$T/iso-kernel" "$F/kernel"
ok "iso-bios: isolinux.cfg has the command line and no root=" bash -c \
	"grep -qx '  APPEND $(cat "$F/cmdline")' '$T/iso.cfg' && ! grep -q root= '$T/iso.cfg'"
for f in iso-efi:t-efi.iso iso-efi-initrd:t-efi-initrd.iso; do
	fmt=${f%%:*} iso=$A/${f%%:*}/${f#*:}
	xorriso -indev "$iso" -report_el_torito plain >"$T/rep" 2>&1
	ok "$fmt: El Torito BIOS entry" grep -q 'El Torito boot img :   1  BIOS' "$T/rep"
	ok "$fmt: El Torito UEFI entry" grep -q 'El Torito boot img :   2  UEFI' "$T/rep"
	ok "$fmt: MBR isohybrid with a GPT (disk boot, BIOS and UEFI)" grep -q 'Boot record .*MBR isohybrid.*GPT' "$T/rep"
	rm -f "$T/efiboot.img" "$T/bootx64.efi"
	xorriso -osirrox on -indev "$iso" -extract /EFI/efiboot.img "$T/efiboot.img" >/dev/null 2>&1
	ok "$fmt: fsck.fat -n on the El Torito EFI image" fsck.fat -n "$T/efiboot.img"
	MTOOLS_SKIP_CHECK=1 mcopy -n -i "$T/efiboot.img" ::EFI/BOOT/BOOTX64.EFI "$T/bootx64.efi" 2>/dev/null
	ok "$fmt: its BOOTX64.EFI is the uki output" cmp "$T/bootx64.efi" "$A/uki/t.efi"
done

# --- containers: valid, of the asked virtual size, holding the raw disk.
build "$T/ref" "$F" raw-bios --size $SIZE 2>/dev/null
build "$T/ref" "$F" raw-efi --size $SIZE 2>/dev/null
build "$T/ref1g" "$F" raw-bios --size $GIB 2>/dev/null
build "$T/dflt" "$F" qcow2-bios 2>/dev/null
build "$T/dflt" "$F" vhd 2>/dev/null
vsize() { qemu-img info --output=json "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])'; }
ok "qcow2-bios: qemu-img check" qemu-img check -q "$A/qcow2-bios/t.qcow2"
ok "qcow2-bios: virtual size = --size" test "$(vsize "$A/qcow2-bios/t.qcow2")" = $SIZE
ok "qcow2-bios: without --size, 1 GiB as LinuxKit" test "$(vsize "$T/dflt/t.qcow2")" = $GIB
ok "qcow2-bios: same guest bytes as raw-bios --size" qemu-img compare -q "$A/qcow2-bios/t.qcow2" "$T/ref/t-bios.img"
ok "qcow2-bios: sparse (only written clusters stored)" test "$(stat -c %s "$A/qcow2-bios/t.qcow2")" -lt $((32 * 1024 * 1024))
ok "qcow2-efi: qemu-img check" qemu-img check -q "$A/qcow2-efi/t-efi.qcow2"
ok "qcow2-efi: same guest bytes as raw-efi --size (backup GPT at the virtual end)" \
	qemu-img compare -q "$A/qcow2-efi/t-efi.qcow2" "$T/ref/t-efi.img"
build "$T/s3" "$F" qcow2-bios --size $((3 * GIB)) 2>/dev/null
ok "qcow2-bios: --size 3G gives virtual size 3 GiB, checks clean" bash -c \
	"[ \"\$(qemu-img info --output=json '$T/s3/t.qcow2' | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"virtual-size\"])')\" = $((3 * GIB)) ] && qemu-img check -q '$T/s3/t.qcow2'"
ok "vhd: fixed VHD, virtual size = --size" test "$(vsize -f vpc "$A/vhd/t.vhd")" = $SIZE
ok "vhd: without --size, 1 GiB" test "$(vsize -f vpc "$T/dflt/t.vhd")" = $GIB
ok "vhd: file = disk + 512-byte footer" test "$(stat -c %s "$A/vhd/t.vhd")" = $((SIZE + 512))
ok "vhd: same guest bytes as raw-bios --size" qemu-img compare -q -f vpc -F raw "$A/vhd/t.vhd" "$T/ref/t-bios.img"
ok "dynamic-vhd: virtual size = --size" test "$(vsize -f vpc "$A/dynamic-vhd/t.vhd")" = $SIZE
ok "dynamic-vhd: same guest bytes as raw-bios --size" qemu-img compare -q -f vpc -F raw "$A/dynamic-vhd/t.vhd" "$T/ref/t-bios.img"
ok "dynamic-vhd: sparse" test "$(stat -c %s "$A/dynamic-vhd/t.vhd")" -lt $((32 * 1024 * 1024))
ok "vmdk: qemu-img check" qemu-img check -q "$A/vmdk/t.vmdk"
ok "vmdk: streamOptimized" bash -c "qemu-img info '$A/vmdk/t.vmdk' | grep -q 'create type: streamOptimized'"
ok "vmdk: virtual size = --size" test "$(vsize "$A/vmdk/t.vmdk")" = $SIZE
ok "vmdk: same guest bytes as raw-bios --size" qemu-img compare -q "$A/vmdk/t.vmdk" "$T/ref/t-bios.img"
ok "aws: the raw BIOS disk of --size" cmp "$A/aws/t.raw" "$T/ref/t-bios.img"
ok "gcp: a tar.gz holding only disk.raw" test "$(tar tzf "$A/gcp/t.img.tar.gz")" = disk.raw
ok "gcp: gzip header has no timestamp" test "$(od -An -tu4 -j 4 -N 4 "$A/gcp/t.img.tar.gz" | tr -d ' ')" = 0
tar xzf "$A/gcp/t.img.tar.gz" -C "$T" disk.raw
ok "gcp: disk.raw is the raw BIOS disk of 1 GiB" cmp "$T/disk.raw" "$T/ref1g/t-bios.img"
rm -f "$T/disk.raw"

# --- kernel+squashfs / kernel+erofs: owners and modes as in the tar.
cat >"$T/cmp.py" <<'PY'
import re, stat, sys, tarfile
tar_path, listing, kind = sys.argv[1:4]
want = {}
links = {}
with tarfile.open(tar_path) as t:
    for m in t.getmembers():
        p = m.name.lstrip("./").rstrip("/")
        if not p or p == "boot" or p.startswith("boot/"):
            continue
        if m.islnk():
            links[p] = m.linkname.lstrip("./")
            continue
        typ = {tarfile.DIRTYPE: stat.S_IFDIR, tarfile.SYMTYPE: stat.S_IFLNK,
               tarfile.CHRTYPE: stat.S_IFCHR, tarfile.BLKTYPE: stat.S_IFBLK,
               tarfile.FIFOTYPE: stat.S_IFIFO}.get(m.type, stat.S_IFREG)
        mode = m.mode if typ != stat.S_IFLNK else 0o777
        want[p] = "%s %d %d" % (stat.filemode(typ | mode), m.uid, m.gid)
for p, target in links.items():
    want[p] = want[target]
got = {}
for line in open(listing):
    line = line.rstrip("\n")
    if kind == "squashfs":
        mo = re.match(r"^(\S+) (\d+)/(\d+) .* \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root/?(.*)$", line)
        if not mo:
            continue
        perm, uid, gid, p = mo.groups()
        p = p.split(" -> ")[0]
    else:
        perm, uid, gid, p = line.split(" ", 3)
    if p:
        got[p] = "%s %s %s" % (perm, uid, gid)
bad = [(p, want.get(p), got.get(p)) for p in sorted(set(want) | set(got)) if want.get(p) != got.get(p)]
for b in bad[:10]:
    print("# %s: tar %s, image %s" % b)
sys.exit(1 if bad or not want else 0)
PY
unsquashfs -lln "$A/kernel+squashfs/t-squashfs.img" >"$T/sq.list" 2>/dev/null
ok "kernel+squashfs: unsquashfs -lln owners and modes equal the tar's (boot/ left out)" \
	python3 "$T/cmp.py" "$F/rootfs.tar" "$T/sq.list" squashfs
ok "kernel+squashfs: root directory 0755 root:root" bash -c \
	"head -1 '$T/sq.list' | grep -q '^drwxr-xr-x 0/0 '"
ok "kernel+squashfs: NAME-kernel is the kernel, NAME-cmdline has no root=" bash -c \
	"cmp '$A/kernel+squashfs/t-kernel' '$F/kernel' && ! grep -q root= '$A/kernel+squashfs/t-cmdline'"
ok "kernel+squashfs: the small initrd (NAME-squashfs-initrd.img) carries busybox, /init and virtio_blk + squashfs modules" bash -c \
	"zcat '$A/kernel+squashfs/t-squashfs-initrd.img' | cpio -it 2>/dev/null | grep -q 'virtio_blk.ko' && zcat '$A/kernel+squashfs/t-squashfs-initrd.img' | cpio -it 2>/dev/null | grep -qx init"
ok "kernel+squashfs, kernel+erofs: no NAME-initrd.img (kernel+initrd's name)" bash -c \
	"[ ! -e '$A/kernel+squashfs/t-initrd.img' ] && [ ! -e '$A/kernel+erofs/t-initrd.img' ] && [ -s '$A/kernel+erofs/t-erofs-initrd.img' ]"
ok "kernel+erofs: fsck.erofs checks the image" fsck.erofs "$A/kernel+erofs/t-erofs.img"
fakeroot -- bash -c "fsck.erofs --extract='$T/erofs-x' '$A/kernel+erofs/t-erofs.img' >/dev/null 2>&1 && cd '$T/erofs-x' && find . -mindepth 1 -printf '%M %U %G %P\n'" >"$T/erofs.list" 2>/dev/null
ok "kernel+erofs: extracted owners and modes equal the tar's (boot/ left out)" \
	python3 "$T/cmp.py" "$F/rootfs.tar" "$T/erofs.list" erofs

# --- Extended attributes (a file capability, a user xattr): squashfs keeps
# them; kernel+erofs cannot yet (see rootfs.c) and says so.
python3 - "$T/xattr.tar" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for name, px in [("ping", {"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00" + "\x00" * 12}),
                     ("notes", {"SCHILY.xattr.user.kiln": "kept"})]:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode, ti.mtime, ti.pax_headers = 3, 0o755, 1700000000, px
        t.addfile(ti, io.BytesIO(b"hi\n"))
PY
build "$T/xa" "$F" kernel+squashfs --tar "$T/xattr.tar" 2>/dev/null
unsquashfs -q -d "$T/xa/x" "$T/xa/t-squashfs.img" >/dev/null 2>&1
ok "kernel+squashfs: a user xattr from the tar is in the image" \
	python3 -c 'import os,sys; sys.exit(os.getxattr(sys.argv[1], "user.kiln") != b"kept")' "$T/xa/x/notes"
if [ "$(id -u)" = 0 ]; then
	ok "kernel+squashfs: a file capability from the tar is in the image" \
		python3 -c 'import os,sys; sys.exit(len(os.getxattr(sys.argv[1], "security.capability")) != 20)' "$T/xa/x/ping"
fi
build "$T/xe" "$F" kernel+erofs --tar "$T/xattr.tar" 2>"$T/xe.err"
ok "kernel+erofs: builds, and warns that the xattrs of 2 entries are not in the image" \
	grep -q 'extended attributes (.*) of 2 entries are not in the EROFS image' "$T/xe.err"
done_testing
