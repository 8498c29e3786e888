#!/usr/bin/env bash
# Layer flattening against the real umoci: the awkward fixture image
# (tests/fixtures/awkward-image.sh) built by kiln into the tar format and
# extracted as root must equal `umoci unpack` of the same image: names,
# types, modes, owners, contents, link targets, hard-link groups, xattrs.
# The zstd variant (umoci cannot read zstd) must equal the gzip one.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (umoci unpack and tar -x keep owners)"
command -v umoci >/dev/null || skip_all "umoci not installed"

L=$T/layout
"$TOP/tests/fixtures/awkward-image.sh" "$L" >/dev/null
cat >"$T/awk.yml" <<'EOF'
services:
  - name: awk
    image: kiln/awkward-gz:1
    readonly: true
  - name: awkz
    image: kiln/awkward:1
    readonly: true
EOF
ok "kiln build -format tar" "$KILN" build --cache "$L" -format tar --dir "$T/out" "$T/awk.yml"
mkdir -p "$T/ex"
ok "GNU tar extracts kiln's tar" tar --warning=no-unknown-keyword --numeric-owner --xattrs \
	--xattrs-include='*' -xpf "$T/out/awk.tar" -C "$T/ex"
ok "umoci unpack" umoci unpack --image "$L:awkward-gz" "$T/umoci"
# LinuxKit's generated entries are not in the image.
gen=(--ignore dev --ignore dev/pts --ignore dev/shm --ignore etc --ignore etc/hosts
	--ignore etc/mtab --ignore etc/resolv.conf --ignore proc --ignore sys)
R=$T/ex/containers/services/awk/rootfs
if out=$(python3 "$TOP/tests/integration/treecmp.py" "$R" "$T/umoci/rootfs" "${gen[@]}"); then
	pass "kiln's flattened tree equals umoci's rootfs ($(echo "$out" | tail -1))"
else
	fail "kiln's flattened tree equals umoci's rootfs" "$(echo "$out" | head -20 | tr '\n' ' ')"
fi
case $out in *"compared 0 paths"*) fail "the comparison saw files" ;; *) pass "the comparison saw files" ;; esac
ok "zstd layers give the same tree as gzip" python3 "$TOP/tests/integration/treecmp.py" "$R" \
	"$T/ex/containers/services/awkz/rootfs"
ok "xattr carried" python3 -c "import os,sys; sys.exit(os.getxattr('$R/x/xattr','user.kiln')!=b'value')"
ok "hard link to a deleted original survives as a group" \
	test "$(stat -c %i "$R/gone/link1")" = "$(stat -c %i "$R/gone/link2")"
ok "generated etc/hosts" grep -q localhost "$R/etc/hosts"
ok "generated etc/mtab" test "$(readlink "$R/etc/mtab")" = /proc/mounts
ok "every entry has LINUXKIT.source and LINUXKIT.location" python3 - "$T/out/awk.tar" <<'EOF'
import sys, tarfile
n = 0
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        n += 1
        if "LINUXKIT.source" not in m.pax_headers or "LINUXKIT.location" not in m.pax_headers:
            print("missing on", m.name); sys.exit(1)
sys.exit(0 if n > 50 else 1)
EOF
ok "one config.json per container" test -s "$T/ex/containers/services/awk/config.json" -a \
	-s "$T/ex/containers/services/awkz/runtime.json"

# Reproducible: a second build gives the same bytes.
ok "second build" "$KILN" build --cache "$L" -format tar --dir "$T/out2" "$T/awk.yml"
ok "two builds, same sha256" cmp -s "$T/out/awk.tar" "$T/out2/awk.tar"
ok "-o - streams the same tar" bash -c "'$KILN' build --cache '$L' -o - '$T/awk.yml' | cmp -s - '$T/out/awk.tar'"
ok "no work directory left behind" bash -c "! ls -A '$T/out' | grep -q kiln-build"
# The same image through kernel+initrd: the cpio keeps what the kernel can.
PYTHONPATH=$TOP/tests/fixtures python3 -c "
from ocilayout import Layout, Tar
Layout('$L').add_image(['docker.io/kiln/k:1'], [(Tar().file('kernel', 'K').bytes(), 'gzip')])"
printf 'kernel:\n  image: kiln/k:1\ninit:\n  - kiln/awkward:1\n' >"$T/ki.yml"
ok "kernel+initrd of the awkward image" "$KILN" build --cache "$L" --dir "$T/ki" "$T/ki.yml"
ok "cpio: hard links share an inode, a hard-linked symlink is a symlink, names and devices kept" python3 - "$T/ki/ki-initrd.img" <<'EOF2'
import gzip, sys
d = gzip.open(sys.argv[1]).read()
off, e = 0, {}
while off < len(d):
    if d[off] == 0: off += 1; continue
    f = [int(d[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
    ns = f[11]; name = d[off + 110: off + 110 + ns - 1].decode()
    p = (off + 110 + ns + 3) & ~3
    e[name] = dict(ino=f[0], mode=f[1], nlink=f[4], size=f[6], rmaj=f[9], rmin=f[10], data=d[p:p + f[6]])
    off = (p + f[6] + 3) & ~3
a, b, c = e["hl/a"], e["hl/b"], e["hl/c"]
assert a["ino"] == b["ino"] == c["ino"] and a["nlink"] == 3 and a["data"] == b"hardlinked", (a, b)
assert e["hl/sl2"]["mode"] & 0o170000 == 0o120000 and e["hl/sl2"]["data"] == b"a", e["hl/sl2"]
assert e["gone/link1"]["ino"] == e["gone/link2"]["ino"] and e["gone/link1"]["data"] == b"orig data"
assert e["bin/tool2"]["data"] == b"tool v1" and e["bin/tool"]["data"] == b"tool v3"
assert e["devs/null"]["mode"] & 0o170000 == 0o020000 and (e["devs/null"]["rmaj"], e["devs/null"]["rmin"]) == (1, 3)
assert "utf8/caf\u00e9-\u00fc-\u65e5\u672c" in e and "opq/old1" not in e and "delfile" not in e
assert not any(n.startswith("boot") for n in e)
EOF2
done_testing
