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
done_testing
