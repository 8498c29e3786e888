#!/usr/bin/env bash
# Memory does not grow with image size: an image holding one 256 MiB file
# (plus a hard link to it) builds as tar and as kernel+initrd with a peak
# RSS under 64 MiB, and the file arrives whole.
source "$(dirname "$0")/../lib.sh"
[ -x /usr/bin/time ] || skip_all "/usr/bin/time not installed"
L=$T/layout
mkdir -p "$T/w"
python3 - "$T/w/layer.tar" <<'EOF'
import io, sys, tarfile
size = 256 << 20
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    i = tarfile.TarInfo("big"); i.size = size; t.addfile(i, Zeros(size))
    l = tarfile.TarInfo("big-link"); l.type = tarfile.LNKTYPE; l.linkname = "big"; t.addfile(l)
    k = tarfile.TarInfo("kernel"); k.size = 6; t.addfile(k, io.BytesIO(b"kernel"))
EOF
PYTHONPATH=$TOP/tests/fixtures python3 - "$L" "$T/w/layer.tar" <<'EOF'
import sys
from ocilayout import Layout, Tar
L = Layout(sys.argv[1])
L.add_image(["docker.io/kiln/big:1"], [(sys.argv[2], "none")])
L.add_image(["docker.io/kiln/k:1"], [(Tar().file("kernel", "k").bytes(), "gzip")])
EOF
rm -f "$T/w/layer.tar"
cat >"$T/m.yml" <<'EOF'
kernel:
  image: kiln/k:1
init:
  - kiln/big:1
EOF
rss() { # KB of the last /usr/bin/time run
	cat "$T/time"
}
ok "tar build" /usr/bin/time -f %M -o "$T/time" "$KILN" build --cache "$L" -format tar --dir "$T/o" "$T/m.yml"
r=$(rss)
[ "$r" -lt 65536 ] && pass "tar: peak RSS $((r / 1024)) MiB < 64 MiB" || fail "tar: peak RSS $((r / 1024)) MiB < 64 MiB"
ok "the 256 MiB file is whole in the tar" bash -c "tar --warning=no-unknown-keyword -xOf '$T/o/m.tar' big | cmp -s - <(head -c $((256 << 20)) /dev/zero)"
ok "kernel+initrd build" env KILN_SECTION_CACHE=0 /usr/bin/time -f %M -o "$T/time" "$KILN" build --cache "$L" --dir "$T/k" "$T/m.yml"
r=$(rss)
[ "$r" -lt 65536 ] && pass "kernel+initrd: peak RSS $((r / 1024)) MiB < 64 MiB" || fail "kernel+initrd: peak RSS $((r / 1024)) MiB < 64 MiB"
ok "initrd holds the file once, linked" python3 - "$T/k/m-initrd.img" <<'EOF'
import gzip, sys
d = gzip.open(sys.argv[1]).read()
off, seen = 0, {}
while off < len(d):
    if d[off] == 0: off += 1; continue
    f = [int(d[off + 6 + 8 * i: off + 14 + 8 * i], 16) for i in range(13)]
    ns = f[11]; name = d[off + 110: off + 110 + ns - 1].decode()
    p = (off + 110 + ns + 3) & ~3; p = (p + f[6] + 3) & ~3
    seen[name] = (f[0], f[4], f[6]); off = p
b, l = seen["big"], seen["big-link"]
sys.exit(not (b[0] == l[0] and b[1] == 2 and b[2] == 256 << 20 and l[2] == 0))
EOF
done_testing
