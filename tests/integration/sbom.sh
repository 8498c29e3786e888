#!/usr/bin/env bash
# The SPDX SBOM (assembler/sbom.c, docs/reproducibility.md): fixture images
# with a dpkg status (two layers, the upper one replacing it), an apk
# database and distroless status.d stanzas give exactly their packages as
# pkg:deb / pkg:apk purls inside pkg:oci image packages whose checksums are
# the manifest digests; sbom.spdx.json is the last entry of the tar (0644,
# LINUXKIT.source linuxkit.sbom) and the same file in the initrd; two builds,
# a build without the rebuild cache and one from another directory give the
# same bytes; SOURCE_DATE_EPOCH and --sbom-current-time set `created`;
# --no-sbom leaves it out, --sbom-output renames it.  Then
# examples/minimal.yml from the boot tests' store (KILN_TEST_CACHE, default
# build/test-cache): the same SBOM twice, its eight images listed.
source "$(dirname "$0")/../lib.sh"
"$KILN" build --help 2>&1 | grep -q -- "--sbom-output FILE  name" ||
	skip_all "this kiln writes no SBOM yet (the build.c hook of sbom.h is not applied)"
export SOURCE_DATE_EPOCH=1492533000
L=$T/layout
PYTHONPATH=$TOP/tests/fixtures python3 - "$L" >"$T/digests" <<'EOF'
import sys
from ocilayout import Layout, Tar
L = Layout(sys.argv[1])
status1 = ("Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n"
           "Version: 2.36-9+deb12u4\n\n"
           "Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1:1.2.13.dfsg-1\n")
status2 = ("Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n"
           "Version: 2.36-9+deb12u4\n\n"
           "Package: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u5\n\n"
           "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1\n")
lower = (Tar().dir("var").dir("var/lib").dir("var/lib/dpkg").file("var/lib/dpkg/status", status1)
         .dir("usr").dir("usr/lib").file("usr/lib/os-release", 'ID=debian\nVERSION_ID="12"\n')
         .dir("bin").file("bin/sh", "#!", 0o755))
upper = Tar().dir("var/lib/dpkg").file("var/lib/dpkg/status", status2)
print("deb", L.add_image(["docker.io/kiln/deb:1"], [(lower.bytes(), "gzip"), (upper.bytes(), "zstd")]))
apk = ("P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:busybox-binsh\nV:1.36.1-r15\nA:x86_64\no:busybox\n\n")
alp = (Tar().dir("lib").dir("lib/apk").dir("lib/apk/db").file("lib/apk/db/installed", apk)
       .dir("etc").file("etc/os-release", "ID=alpine\nVERSION_ID=3.19.1\n"))
print("alp", L.add_image(["docker.io/kiln/alp:1"], [(alp.bytes(), "gzip")], {"Entrypoint": ["/bin/true"]}))
dl = (Tar().dir("var").dir("var/lib").dir("var/lib/dpkg").dir("var/lib/dpkg/status.d")
      .file("var/lib/dpkg/status.d/base-files", "Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n")
      .file("var/lib/dpkg/status.d/base-files.md5sums", "0123  etc/debian_version\n")
      .file("var/lib/dpkg/status.d/tzdata", "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"))
print("dl", L.add_image(["docker.io/kiln/dl:1"], [(dl.bytes(), "none")], {"Entrypoint": ["/x"]}))
print("none", L.add_image(["docker.io/kiln/none:1"], [(Tar().file("k", "kernel").bytes(), "gzip")]))
EOF
cat >"$T/m.yml" <<'EOF'
kernel:
  image: kiln/none:1
  binary: k
  tar: none
init:
  - kiln/deb:1
onboot:
  - name: first
    image: kiln/alp:1
services:
  - name: dl
    image: kiln/dl:1
  - name: again
    image: kiln/alp:1
EOF
build() { # DIR ARGS...
	local d=$1
	shift
	"$KILN" -q build --cache "$L" --dir "$d" "$@" "$T/m.yml"
}
ok "build tar" build "$T/a" -format tar
sbom() { tar --warning=no-unknown-keyword -xOf "$1" "${2:-sbom.spdx.json}"; }
ok "sbom.spdx.json is the last entry" bash -c \
	"tar --warning=no-unknown-keyword -tf '$T/a/m.tar' | tail -1 | grep -qx sbom.spdx.json"
ok "0644 root, PAX LINUXKIT.source linuxkit.sbom" python3 - "$T/a/m.tar" <<'EOF'
import sys, tarfile
m = tarfile.open(sys.argv[1]).getmember("sbom.spdx.json")
assert m.mode == 0o644 and m.uid == 0 and m.gid == 0 and m.mtime == 1492533000, (m.mode, m.uid, m.mtime)
assert m.pax_headers.get("LINUXKIT.source") == "linuxkit.sbom", m.pax_headers
assert m.pax_headers.get("LINUXKIT.location") == "sbom", m.pax_headers
EOF
sbom "$T/a/m.tar" >"$T/a.json"
ok "the packages and images the fixture images hold, nothing else" python3 - "$T/a.json" "$T/digests" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
digests = dict(l.split() for l in open(sys.argv[2]))
assert doc["spdxVersion"] == "SPDX-2.3" and doc["dataLicense"] == "CC0-1.0", doc["spdxVersion"]
assert doc["creationInfo"]["created"] == "2017-04-18T16:30:00Z", doc["creationInfo"]
by_id = {p["SPDXID"]: p for p in doc["packages"]}
assert len(by_id) == len(doc["packages"]), "SPDXIDs unique"
purl = lambda p: p["externalRefs"][0]["referenceLocator"]
pkgs = sorted(purl(p) for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-Package-"))
want = sorted([
    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12&upstream=glibc",
    "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12",
    "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1",
    "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1&upstream=busybox",
    "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64",
    "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all",
])
assert pkgs == want, pkgs
images = {p["name"]: p for p in doc["packages"] if p["SPDXID"].startswith("SPDXRef-Image-")}
assert sorted(images) == ["kiln/alp:1", "kiln/deb:1", "kiln/dl:1", "kiln/none:1"], sorted(images)
for name, key in [("kiln/alp:1", "alp"), ("kiln/deb:1", "deb"), ("kiln/dl:1", "dl"), ("kiln/none:1", "none")]:
    p = images[name]
    assert p["checksums"] == [{"algorithm": "SHA256", "checksumValue": digests[key][7:]}], p
    assert purl(p).startswith("pkg:oci/%s@sha256%%3A%s?arch=amd64&repository_url=docker.io/kiln/%s&tag=1"
                              % (key, digests[key][7:], key)), purl(p)
assert images["kiln/alp:1"]["comment"] == "used at onboot[0] first, services[1] again", images["kiln/alp:1"]
rels = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"]) for r in doc["relationships"]}
assert ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-OperatingSystem") in rels
deb = images["kiln/deb:1"]["SPDXID"]
curl = [p["SPDXID"] for p in doc["packages"] if p["name"] == "curl"][0]
assert (deb, "CONTAINS", curl) in rels and ("SPDXRef-OperatingSystem", "CONTAINS", deb) in rels, rels
assert all(a in by_id or a == "SPDXRef-DOCUMENT" for a, _, b in rels) and all(b in by_id for _, _, b in rels)
EOF
ok "the layer scans are kept in the rebuild cache" bash -c "ls '$L'/kiln-sections/*.sbom | wc -l | grep -qx 4"
ok "rebuild" build "$T/b" -format tar
ok "rebuild: the same tar" cmp "$T/a/m.tar" "$T/b/m.tar"
ok "without the rebuild cache" env KILN_SECTION_CACHE=0 "$KILN" -q build --cache "$L" -format tar -o "$T/c.tar" "$T/m.yml"
ok "without the rebuild cache: the same tar" cmp "$T/a/m.tar" "$T/c.tar"
rm -f "$L"/kiln-sections/*.sbom
ok "after the scan cache is removed: the same tar" bash -c \
	"cd / && '$KILN' -q build --cache '$L' -format tar -o '$T/d.tar' '$T/m.yml' && cmp '$T/a/m.tar' '$T/d.tar'"
# newc members one after the other (each with its trailer): read them all
initrd_file() { # INITRD NAME
	python3 - "$1" "$2" <<'EOF'
import gzip, sys
d, want, i, found = gzip.open(sys.argv[1]).read(), sys.argv[2], 0, None
while i + 110 <= len(d):
    if d[i:i + 6] != b"070701":
        i += 1  # padding between members
        continue
    size, nlen = int(d[i + 54:i + 62], 16), int(d[i + 94:i + 102], 16)
    name = d[i + 110:i + 110 + nlen - 1].decode()
    data = (i + 110 + nlen + 3) & ~3
    if name == want:
        found = d[data:data + size]
    i = (data + size + 3) & ~3
sys.stdout.buffer.write(found or b"")
sys.exit(found is None)
EOF
}
build "$T/k"
initrd_file "$T/k/m-initrd.img" sbom.spdx.json >"$T/k.json"
ok "kernel+initrd carries the same sbom.spdx.json" cmp "$T/k.json" "$T/a.json"
SOURCE_DATE_EPOCH=1700000000 build "$T/e" -format tar
ok "SOURCE_DATE_EPOCH sets created" bash -c \
	"tar --warning=no-unknown-keyword -xOf '$T/e/m.tar' sbom.spdx.json | grep -q '\"created\": \"2023-11-14T22:13:20Z\"'"
build "$T/f" -format tar --sbom-current-time
now=$(date -u +%Y-%m-%dT%H)
ok "--sbom-current-time: created is now" bash -c \
	"tar --warning=no-unknown-keyword -xOf '$T/f/m.tar' sbom.spdx.json | grep -q '\"created\": \"$now'"
build "$T/g" -format tar -no-sbom
ok "--no-sbom: no SBOM" bash -c "! tar --warning=no-unknown-keyword -tf '$T/g/m.tar' | grep -q spdx"
ok "--no-sbom: the tar is the rest" bash -c \
	"[ \$(tar --warning=no-unknown-keyword -tf '$T/g/m.tar' | wc -l) -eq \$((\$(tar --warning=no-unknown-keyword -tf '$T/a/m.tar' | wc -l) - 1)) ]"
build "$T/h" -format tar --sbom-output my.spdx.json
ok "--sbom-output names it" bash -c \
	"tar --warning=no-unknown-keyword -tf '$T/h/m.tar' | tail -1 | grep -qx my.spdx.json && ! tar --warning=no-unknown-keyword -tf '$T/h/m.tar' | grep -q sbom.spdx.json"
ok "--sbom-output: same document" bash -c "tar --warning=no-unknown-keyword -xOf '$T/h/m.tar' my.spdx.json | cmp - '$T/a.json'"
ok "--sbom-output with a directory is refused" bash -c \
	"! '$KILN' -q build --cache '$L' -format tar -o '$T/x.tar' --sbom-output d/x.json '$T/m.yml' 2>'$T/err' && grep -q 'sbom-output' '$T/err'"

# --- examples/minimal.yml from the shared store
# (on a fresh clone the first build makes the packages there, which the
# boot tests then reuse)
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}
cd "$TOP/examples" || exit 1
ok "minimal.yml: build tar" "$KILN" -q build -format tar -o "$T/m1.tar" minimal.yml
ok "minimal.yml: build tar again" "$KILN" -q build -format tar -o "$T/m2.tar" minimal.yml
sbom "$T/m1.tar" >"$T/m1.json"
sbom "$T/m2.tar" >"$T/m2.json"
ok "minimal.yml: the same SBOM twice" cmp "$T/m1.json" "$T/m2.json"
ok "minimal.yml: valid SPDX JSON listing its seven images" python3 - "$T/m1.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["spdxVersion"] == "SPDX-2.3" and doc["name"] == "minimal"
names = sorted(p["externalRefs"][0]["referenceLocator"].split("@")[0] for p in doc["packages"]
               if p["SPDXID"].startswith("SPDXRef-Image-"))
assert names == sorted("pkg:oci/" + n for n in
                       ["kernel", "init", "runc", "containerd", "ca-certificates", "dhcpcd", "getty"]), names
EOF
# kiln pkg images list their Debian packages only once pkg.c records them
# (var/lib/dpkg/status.d, see docs/reproducibility.md).
if grep -q '"pkg:deb/' "$T/m1.json"; then
	for p in containerd runc dhcpcd-base; do
		deb=$(ls "$KILN_CACHE/debs/${p}_"*.deb 2>/dev/null | head -1)
		v=$(dpkg-deb -f "$deb" Version 2>/dev/null)
		ok "minimal.yml: $p $v listed" python3 - "$T/m1.json" "$p" "$v" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
assert any(p["name"] == sys.argv[2] and p.get("versionInfo") == sys.argv[3] for p in doc["packages"]), sys.argv[2:]
EOF
	done
else
	pass "minimal.yml: containerd, runc, dhcpcd-base listed # SKIP kiln pkg images record no Debian packages yet"
fi
done_testing
