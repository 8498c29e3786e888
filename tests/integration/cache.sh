#!/usr/bin/env bash
# kiln cache ls|rm|clean|verify|import|export against images made by the real
# umoci and skopeo, with skopeo and umoci reading what kiln writes.
source "$(dirname "$0")/../lib.sh"
command -v umoci >/dev/null && command -v skopeo >/dev/null || skip_all "umoci or skopeo missing"
[ -x "$KILN" ] || skip_all "no kiln binary"

FX=$("$TOP/tests/fixtures/mkimages.sh" "$T/fx")
L=$FX/layout
C=$T/cache
export KILN_CACHE=$C
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
sk() { skopeo --policy "$T/policy.json" "$@"; }
digest_of() { # LAYOUT NAME
	python3 -c 'import json,sys
for m in json.load(open(sys.argv[1]+"/index.json"))["manifests"]:
    if m.get("annotations",{}).get("org.opencontainers.image.ref.name")==sys.argv[2]: print(m["digest"])' "$1" "$2"
}
# every blob of layout $1 is in store $2 with the same bytes
same_blobs() {
	local b n=0
	for b in "$1"/blobs/sha256/*; do
		cmp -s "$b" "$2/blobs/sha256/$(basename "$b")" || { echo "# differs: $b"; return 1; }
		n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}

ok "import an OCI layout directory" "$KILN" cache import "$L"
"$KILN" cache ls >"$T/ls" 2>&1
ok "ls lists the eight images" test "$(grep -cE '^(base|two|zstd|plain|two-arm64|docker|multi|multi-docker) +sha256:' "$T/ls")" = 8
ok "ls shows the digest index.json names" grep -q "^two  *$(digest_of "$L" two) " "$T/ls"
ok "verify is clean" "$KILN" cache verify -q

# Byte-identical to what skopeo stores for the same images.
sk copy -q "oci:$L:two" "oci:$T/sk:two"
sk copy -q "oci:$L:zstd" "oci:$T/sk:zstd"
ok "blobs byte-identical to skopeo's copy (gzip, zstd)" same_blobs "$T/sk" "$C"

# docker save archive: layers and config exactly as skopeo's dir: copy holds them.
ok "import a docker save archive" "$KILN" cache import "$FX/docker-save.tar"
"$KILN" cache ls >"$T/ls" 2>&1
ok "RepoTags become normalised names" grep -q '^docker.io/kiln/two:1 ' "$T/ls"
ok "every RepoTag" grep -q '^docker.io/kiln/two:latest ' "$T/ls"
sk copy -q "docker-archive:$FX/docker-save.tar" "dir:$T/skdir"
n=0 bad=0
for f in "$T"/skdir/*; do
	b=$(basename "$f")
	[ ${#b} = 64 ] || continue
	n=$((n + 1))
	cmp -s "$f" "$C/blobs/sha256/$b" || bad=$((bad + 1))
done
ok "docker save layers and config byte-identical to skopeo's dir: copy ($n blobs)" test "$n" = 3 -a "$bad" = 0
ok "verify clean after docker import" "$KILN" cache verify -q

gzip -c "$FX/docker-save.tar" >"$T/save.tar.gz"
ok "import a gzip-compressed docker save archive" "$KILN" cache import -q --name kiln/gz:1 "$T/save.tar.gz"
ok "… named by --name" bash -c "'$KILN' cache ls | grep -q '^docker.io/kiln/gz:1 '"
ok "import from stdin" bash -c "'$KILN' cache import -q --name stdin/two:1 - <'$FX/oci-archive.tar'"
ok "LinuxKit spellings: --outfile, --platform linux/amd64" "$KILN" cache export -q --format docker --platform linux/amd64 docker.io/stdin/two:1 --outfile "$T/lk.tar"
ok "… wrote the archive" test -s "$T/lk.tar"
# Docker >= 25 `docker save`: an OCI layout with manifest.json beside it,
# named by io.containerd.image.name.
python3 - "$FX/oci-archive.tar" "$T/docker25.tar" <<'EOF'
import io, json, sys, tarfile
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t, tarfile.open(dst, "w") as o:
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else None
        if m.name == "index.json":
            idx = json.loads(data)
            d = idx["manifests"][0]
            d["annotations"] = {"io.containerd.image.name": "docker.io/kiln/d25:1",
                                "org.opencontainers.image.ref.name": "1"}
            data = json.dumps(idx).encode()
            man = json.loads(t.extractfile("blobs/sha256/" + d["digest"][7:]).read())
            extra = json.dumps([{"Config": "blobs/sha256/" + man["config"]["digest"][7:],
                "RepoTags": ["kiln/d25:1"],
                "Layers": ["blobs/sha256/" + l["digest"][7:] for l in man["layers"]]}]).encode()
            mi = tarfile.TarInfo("manifest.json"); mi.size = len(extra)
            o.addfile(mi, io.BytesIO(extra))
            m.size = len(data)
        o.addfile(m, io.BytesIO(data) if data is not None else None)
EOF
ok "import a Docker >= 25 save archive (OCI layout + manifest.json)" "$KILN" cache import -q "$T/docker25.tar"
ok "… named by io.containerd.image.name" bash -c "'$KILN' cache ls | grep -q '^docker.io/kiln/d25:1  *$(digest_of "$L" two) '"
ok "import an OCI layout tar with --name" "$KILN" cache import --name 127.0.0.1:5000/kiln/two:oa "$FX/oci-archive.tar"
"$KILN" cache ls >"$T/ls" 2>&1
ok "named as given" grep -q "^127.0.0.1:5000/kiln/two:oa  *$(digest_of "$L" two) " "$T/ls"

# inspect: the platform choice and the label, as JSON.
"$KILN" cache inspect multi --arch arm64 >"$T/inspect.json"
ok "inspect chooses the arm64 manifest of the index" test "$(python3 -c 'import json,sys;j=json.load(open(sys.argv[1]));print(j["manifest"]["digest"], j["root"]["digest"], j["platform"], len(j["layers"]))' "$T/inspect.json")" = "$(digest_of "$L" two-arm64) $(digest_of "$L" multi) linux/arm64 2"
ok "inspect shows the org.mobyproject.config label" grep -q 'org.mobyproject.config' "$T/inspect.json"
ok "inspect of a platform the index lacks fails" bash -c "! '$KILN' cache inspect multi --arch s390x 2>'$T/err'"
ok "… saying which platforms there are" grep -q 'no linux/s390x image (it has linux/amd64, linux/arm64/v8)' "$T/err"

# Export: skopeo and umoci read what kiln writes.
ok "export OCI tar" "$KILN" cache export multi -o "$T/multi.tar"
ok "skopeo copies the exported OCI tar (all platforms)" sk copy -q --all "oci-archive:$T/multi.tar" "oci:$T/back:m"
ok "its blobs are the store's" same_blobs "$T/back" "$C"
ok "export into an OCI layout directory" "$KILN" cache export -q multi -o "$T/outdir/"
ok "… a second image, renamed, into the same layout" "$KILN" cache export -q base --name b -o "$T/outdir"
ok "umoci lists both" test "$(umoci ls --layout "$T/outdir" | sort | tr '\n' ' ')" = "b multi "
ok "skopeo copies from the exported directory" sk copy -q "oci:$T/outdir:b" "oci:$T/back3:b"
ok "its blobs are the store's" same_blobs "$T/outdir" "$C"
ok "export docker format" "$KILN" cache export zstd --format docker -o "$T/d.tar"
ok "skopeo reads the docker archive" sk copy -q "docker-archive:$T/d.tar" "oci:$T/back2:d"
ok "manifest.json names 2 layers" test "$(tar xOf "$T/d.tar" manifest.json | python3 -c 'import json,sys;print(len(json.load(sys.stdin)[0]["Layers"]))')" = 2
"$KILN" cache export two -o "$T/a.tar" 2>/dev/null
"$KILN" cache export two -o "$T/b.tar" 2>/dev/null
ok "export is reproducible" cmp "$T/a.tar" "$T/b.tar"
ok "export -o - writes to stdout" bash -c "'$KILN' cache export two -o - 2>/dev/null | cmp - '$T/a.tar'"
ok "export of an absent image fails" bash -c "! '$KILN' cache export nothere -o '$T/x.tar' 2>'$T/err'"
ok "… with one line naming it" test "$(wc -l <"$T/err")" = 1 -a ! -e "$T/x.tar"
grep -q nothere "$T/err" || fail "error names the image"

# The store is an OCI layout other tools read.
ok "umoci lists kiln's store" bash -c "umoci ls --layout '$C' | grep -qx base"
ok "skopeo inspects an image in kiln's store" sk inspect "oci:$C:base" -f '{{.Architecture}}'

# rm, clean
ok "rm an image" "$KILN" cache rm two-arm64
ok "rm of an absent image fails" bash -c "! '$KILN' cache rm nothere 2>/dev/null"
ok "verify clean after rm (shared blobs kept)" "$KILN" cache verify -q
ok "multi still resolves amd64 after rm" "$KILN" cache export multi --format docker -o "$T/m.tar"
"$KILN" cache ls >"$T/ls" 2>&1
ok "rm removed only that name" bash -c "! grep -q '^two-arm64 ' '$T/ls' && grep -q '^two ' '$T/ls'"

printf 'orphan' >"$T/orphan"
orphan=$(sha256sum "$T/orphan" | cut -c1-64)
cp "$T/orphan" "$C/blobs/sha256/$orphan"
ok "clean --unreferenced --dry-run names the orphan" bash -c "'$KILN' cache clean --unreferenced --dry-run | grep -q $orphan"
ok "… and keeps it" test -e "$C/blobs/sha256/$orphan"
ok "clean --unreferenced" "$KILN" cache clean --unreferenced
ok "… removes the orphan" test ! -e "$C/blobs/sha256/$orphan"
ok "… keeps referenced blobs" "$KILN" cache verify -q

# verify finds damage and names it.
cp -r "$C" "$T/damaged"
layer=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["layers"][1]["digest"][7:])' "$T/damaged/blobs/sha256/$(digest_of "$L" two | cut -c8-)")
chmod u+w "$T/damaged/blobs/sha256/$layer"
printf 'X' | dd of="$T/damaged/blobs/sha256/$layer" bs=1 seek=10 conv=notrunc 2>/dev/null
"$KILN" cache verify --cache "$T/damaged" >/dev/null 2>"$T/err"
ok "verify exits 1 on a corrupted blob" test $? = 1
ok "… naming it" grep -q "sha256:$layer: .*digest mismatch" "$T/err"
rm "$T/damaged/blobs/sha256/$layer"
"$KILN" cache verify -cache "$T/damaged" >/dev/null 2>"$T/err"
ok "verify exits 1 on a missing layer (LinuxKit-style -cache)" test $? = 1
ok "… naming it" grep -q "layer sha256:$layer is missing" "$T/err"

# Stale temp files.
touch -d '2 hours ago' "$C/blobs/sha256/.tmp-stale"
touch "$C/blobs/sha256/.tmp-fresh"
ok "verify --keep-temp reports a stale temp file" bash -c "'$KILN' cache verify --keep-temp | grep -q 'stale temp file .*tmp-stale'"
ok "… and keeps it" test -e "$C/blobs/sha256/.tmp-stale"
"$KILN" cache verify >/dev/null 2>&1
ok "verify removes stale temp files, keeps fresh ones" test ! -e "$C/blobs/sha256/.tmp-stale" -a -e "$C/blobs/sha256/.tmp-fresh"
rm -f "$C/blobs/sha256/.tmp-fresh"

# kill -9 at random moments during imports; every rerun succeeds and the store verifies.
K=$T/killed
good=0
for i in $(seq 1 12); do
	case $((i % 3)) in
	0) src=$FX/docker-save.tar ;;
	1) src=$L ;;
	2) src=$FX/oci-archive.tar ;;
	esac
	"$KILN" cache --cache "$K" import "$src" >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((RANDOM % 9))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	"$KILN" cache --cache "$K" import "$src" >/dev/null 2>&1 &&
		"$KILN" cache --cache "$K" verify -q >/dev/null 2>&1 && good=$((good + 1))
done
ok "12 killed imports: every rerun succeeds and verify is clean ($good/12)" test "$good" = 12

# Round trip through export/clean/import keeps the digest.
ok "export base" "$KILN" cache export -q base -o "$T/base.tar"
ok "clean removes everything" "$KILN" cache clean -q
ok "… the store is empty" test -z "$(ls "$C/blobs/sha256")" -a "$("$KILN" cache ls | wc -l)" = 1
ok "import the export again" "$KILN" cache import "$T/base.tar"
"$KILN" cache ls >"$T/ls"
ok "same name and root digest after the round trip" grep -q "^base  *$(digest_of "$L" base)" "$T/ls" ||
	{ diag "want base $(digest_of "$L" base)"; sed 's/^/# /' "$T/ls"; }

ok "import of something else fails with one line" bash -c "! '$KILN' cache import /etc/hostname 2>'$T/err' && test \$(wc -l <'$T/err') = 1"
ok "unknown subcommand exits 2" bash -c "'$KILN' cache frob 2>/dev/null; test \$? = 2"
ok "help" bash -c "'$KILN' help cache | grep -q 'kiln cache'"
done_testing
