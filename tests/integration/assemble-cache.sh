#!/usr/bin/env bash
# The intermediate layout and the rebuild cache: kernel section (boot/,
# kernel.tar unpacked into /, ucode prepended raw), init merged at /,
# volumes, onboot/services bundles (readonly and writable, one extraction
# shared by two containers of the same image), files last with derived
# parent modes; a rebuild after a `files` change reuses every image section
# and gives the same bytes as a build without the cache; docker format;
# a failed format leaves no file under its final name.
source "$(dirname "$0")/../lib.sh"
L=$T/layout
PYTHONPATH=$TOP/tests/fixtures python3 - "$L" <<'EOF'
import io, sys, tarfile
from ocilayout import Layout, Tar
L = Layout(sys.argv[1])
mods = Tar().dir("lib").dir("lib/modules").dir("lib/modules/6.1").file("lib/modules/6.1/m.ko", "module")
ucode = b"070701" + b"0" * 104  # any bytes: kiln copies it as is
k = (Tar().file("kernel", "not really a kernel", 0o644).file("kernel.tar", mods.bytes())
     .file("ucode.cpio", ucode).file("System.map", "map"))
L.add_image(["docker.io/kiln/k:1"], [(k.bytes(), "gzip")])
L.add_image(["docker.io/kiln/init:1"], [(Tar().dir("bin").file("bin/init", "#!/bin/sh\n", 0o755)
                                         .dir("etc").file("etc/hostname", "dropped")
                                         .file("etc/resolv.conf", "replaced").bytes(), "gzip")])
L.add_image(["docker.io/kiln/app:1"], [(Tar().dir("bin").file("bin/app", "app", 0o755).bytes(), "zstd")],
            {"Entrypoint": ["/bin/app"]})
import gzip
L.add_image(["docker.io/kiln/kgz:1"], [(Tar().file("kernel", gzip.compress(b"plain kernel", mtime=0)).bytes(), "gzip")])
L.add_image(["docker.io/kiln/data:1"], [(Tar().file("data.txt", "volume data").bytes(), "none")])
EOF
write() { # CONTENTS
	cat >"$T/m.yml" <<EOF
kernel:
  image: kiln/k:1
  cmdline: "console=ttyS0 quiet"
  ucode: ucode.cpio
init:
  - kiln/init:1
volumes:
  - name: vol
    image: kiln/data:1
  - name: empty
  - name: ocivol
    image: kiln/data:1
    format: oci
onboot:
  - name: first
    image: kiln/app:1
    readonly: true
services:
  - name: web
    image: kiln/app:1
  - name: other
    image: kiln/app:1
    binds: ["vol:/data"]
files:
  - path: /etc/deep/dir/conf
    contents: "$1"
    mode: "0640"
EOF
}
write one
ok "build tar" "$KILN" build --cache "$L" -format tar --dir "$T/o1" "$T/m.yml"
X=$T/x1
mkdir -p "$X"
ok "extract" tar --warning=no-unknown-keyword -xf "$T/o1/m.tar" -C "$X"
ok "boot/kernel" test "$(cat "$X/boot/kernel")" = "not really a kernel"
ok "boot/cmdline" test "$(cat "$X/boot/cmdline")" = "console=ttyS0 quiet"
ok "boot/ucode.cpio" test -s "$X/boot/ucode.cpio"
ok "kernel.tar unpacked into /" test "$(cat "$X/lib/modules/6.1/m.ko")" = module
ok "System.map not copied" test ! -e "$X/System.map"
ok "init merged at /" test -x "$X/bin/init"
ok "etc/hostname dropped" test ! -e "$X/etc/hostname"
ok "init resolv.conf is a symlink to /run/resolvconf" test "$(readlink "$X/etc/resolv.conf")" = /run/resolvconf/resolv.conf
ok "volume with image in lower/" test "$(cat "$X/containers/volumes/vol/lower/data.txt")" = "volume data"
ok "format: oci volume is a valid OCI layout" python3 - "$X/containers/volumes/ocivol/lower" <<'EOF2'
import hashlib, json, os, sys
d = sys.argv[1]
idx = json.load(open(os.path.join(d, "index.json")))
assert json.load(open(os.path.join(d, "oci-layout")))["imageLayoutVersion"] == "1.0.0"
blobs = os.path.join(d, "blobs", "sha256")
for n in os.listdir(blobs):
    assert hashlib.sha256(open(os.path.join(blobs, n), "rb").read()).hexdigest() == n, n
man = json.load(open(os.path.join(blobs, idx["manifests"][0]["digest"][7:])))
for desc in [man["config"]] + man["layers"]:
    assert os.path.exists(os.path.join(blobs, desc["digest"][7:])), desc
EOF2
ok "volume tmp/ and merged/" test -d "$X/containers/volumes/vol/tmp" -a -d "$X/containers/volumes/empty/merged"
ok "onboot readonly bundle" test -x "$X/containers/onboot/000-first/rootfs/bin/app" -a -s "$X/containers/onboot/000-first/config.json"
ok "service bundles share one extraction" test ! -e "$X/containers/services/web/lower/bin/app" -a -d "$X/containers/services/web/rootfs" -a -d "$X/containers/services/web/tmp"
ok "the shared extraction is the lowerdir" grep -q '"lowerdir=/containers/onboot/000-first/rootfs"' "$X/containers/services/web/runtime.json"
ok "volume bind source" grep -q '"/containers/volumes/vol/merged"' "$X/containers/services/other/config.json"
ok "container resolv.conf is LinuxKit's placeholder" grep -q "no resolv.conf configured" "$X/containers/onboot/000-first/rootfs/etc/resolv.conf"
ok "files entry mode" test "$(stat -c %a "$X/etc/deep/dir/conf")" = 640
ok "missing parents get the file's mode plus x" test "$(stat -c %a "$X/etc/deep")" = 750
ok "files come last, then the SBOM" bash -c "tar --warning=no-unknown-keyword -tf '$T/o1/m.tar' | tail -2 | tr '\n' ' ' | grep -qx 'etc/deep/dir/conf sbom.spdx.json '"

ok "kernel+initrd" "$KILN" build --cache "$L" --dir "$T/k1" "$T/m.yml"
ok "ucode prepended uncompressed" python3 -c "import sys; sys.exit(open('$T/k1/m-initrd.img','rb').read(6)!=b'070701')"
ok "tar-kernel-initrd" "$KILN" build --cache "$L" -format tar-kernel-initrd --dir "$T/tki" "$T/m.yml"
ok "tar-kernel-initrd: kernel, initrd.img, cmdline, ucode.cpio" bash -c "tar -tf '$T/tki/m-initrd.tar' | tr '\n' ' ' | grep -qx 'kernel initrd.img cmdline ucode.cpio '"
ok "tar-kernel-initrd: initrd.img without the microcode" bash -c "tar -xOf '$T/tki/m-initrd.tar' initrd.img | head -c 2 | od -An -tx1 | grep -q '1f 8b'"
write two
log=$("$KILN" build -v --cache "$L" --dir "$T/k2" "$T/m.yml" 2>&1)
case $log in *"sections reused"*) pass "rebuild: $(echo "$log" | grep -o '[0-9]* sections, [0-9]* reused')" ;; *) fail "rebuild log" "$log" ;; esac
case $log in *"9 sections, 7 reused"*) pass "every image section reused after a files change" ;; *) fail "every image section reused after a files change" "$log" ;; esac
ok "rebuild: same bytes as without the cache" bash -c "KILN_SECTION_CACHE=0 '$KILN' build --cache '$L' --dir '$T/k3' '$T/m.yml' && cmp -s '$T/k2/m-initrd.img' '$T/k3/m-initrd.img'"
ok "rebuild: tar from cached sections equals a fresh one" bash -c "'$KILN' build --cache '$L' -format tar --dir '$T/t2' '$T/m.yml' && KILN_SECTION_CACHE=0 '$KILN' build --cache '$L' -format tar --dir '$T/t3' '$T/m.yml' && cmp -s '$T/t2/m.tar' '$T/t3/m.tar'"
ok "a changed files entry changes the initrd" bash -c "! cmp -s '$T/k1/m-initrd.img' '$T/k2/m-initrd.img'"

ok "docker format" "$KILN" build --cache "$L" -format docker --dir "$T/d" "$T/m.yml"
ok "Dockerfile is the last entry" bash -c "tar --warning=no-unknown-keyword -tf '$T/d/m.docker' | tail -1 | grep -qx Dockerfile"
ok "docker = tar + Dockerfile" bash -c "tar --warning=no-unknown-keyword -xOf '$T/d/m.docker' Dockerfile | grep -q 'FROM scratch'"

printf 'kernel:\n  image: kiln/kgz:1\n' >"$T/kgz.yml"
ok "--decompress-kernel" "$KILN" build --cache "$L" --decompress-kernel --dir "$T/kgz" "$T/kgz.yml"
ok "the gzip kernel is stored decompressed" test "$(cat "$T/kgz/kgz-kernel")" = "plain kernel"
ok "without the flag it is kept as is" bash -c "'$KILN' build --cache '$L' --dir '$T/kgz2' '$T/kgz.yml' && ! cmp -s '$T/kgz/kgz-kernel' '$T/kgz2/kgz-kernel'"

# A failing build (unknown image) leaves nothing under a final name.
sed -i 's|kiln/app:1|kiln/absent:1|' "$T/m.yml"
rc=0
"$KILN" build --cache "$L" --dir "$T/f" "$T/m.yml" >/dev/null 2>&1 || rc=$?
ok "a failing build fails" test "$rc" != 0
ok "and leaves no output and no work directory" bash -c "[ -z \"\$(ls -A '$T/f' 2>/dev/null)\" ]"
done_testing
