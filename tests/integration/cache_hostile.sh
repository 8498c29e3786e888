#!/usr/bin/env bash
# kiln cache import of damaged and hostile archives: each fails with one
# clear line, stores nothing under a wrong name, and leaves a store that
# `kiln cache verify` finds clean.
source "$(dirname "$0")/../lib.sh"
[ -x "$KILN" ] || skip_all "no kiln binary"
command -v python3 >/dev/null || skip_all "python3 missing"
export KILN_CACHE=$T/cache

# mk NAME: writes $T/NAME.tar from the python description on stdin
mk() {
	python3 - "$T/$1.tar" <<'EOF'
import hashlib, io, json, sys, tarfile
out = sys.argv[1]
name = out.rsplit("/", 1)[1][:-4]
layer = b"layer-bytes" * 100
lhex = hashlib.sha256(layer).hexdigest()
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["sha256:" + lhex]}}).encode()
chex = hashlib.sha256(cfg).hexdigest()
def man(layer_digest, size):
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + chex, "size": len(cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": size}]}).encode()
def index(mdig, size):
    return json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": mdig, "size": size, "annotations": {"org.opencontainers.image.ref.name": "h:1"}}]}).encode()
files, links = [], []
good_man = man("sha256:" + lhex, len(layer))
mhex = hashlib.sha256(good_man).hexdigest()
oci = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("blobs/sha256/" + chex, cfg)]
if name == "wrongbytes":
    files = oci + [("blobs/sha256/" + lhex, b"not the layer"), ("blobs/sha256/" + mhex, good_man),
                   ("index.json", index("sha256:" + mhex, len(good_man)))]
elif name == "missinglayer":
    files = oci + [("blobs/sha256/" + mhex, good_man), ("index.json", index("sha256:" + mhex, len(good_man)))]
elif name == "badindex":
    files = oci + [("index.json", b"{not json")]
elif name == "badmanifest":
    m = b'{"schemaVersion":2,"config":{"digest":"sha256:../../../../etc/passwd","size":1,"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[]}'
    h = hashlib.sha256(m).hexdigest()
    files = oci + [("blobs/sha256/" + h, m), ("index.json", index("sha256:" + h, len(m)))]
elif name == "dockerescape":
    files = [("manifest.json", json.dumps([{"Config": chex + ".json", "RepoTags": ["h:1"], "Layers": ["../../etc/passwd"]}]).encode()),
             (chex + ".json", cfg)]
elif name == "dockerloop":
    files = [("manifest.json", json.dumps([{"Config": chex + ".json", "RepoTags": ["h:1"], "Layers": ["a/layer.tar"]}]).encode()),
             (chex + ".json", cfg)]
    links = [("a/layer.tar", "../b/layer.tar"), ("b/layer.tar", "../a/layer.tar")]
elif name == "dockergood":
    files = [("manifest.json", json.dumps([{"Config": chex + ".json", "RepoTags": ["h:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}]).encode()),
             (chex + ".json", cfg), ("a/layer.tar", layer)]
    links = [("b/layer.tar", "../a/layer.tar")]
with tarfile.open(out, "w") as t:
    for p, data in files:
        i = tarfile.TarInfo(p); i.size = len(data); t.addfile(i, io.BytesIO(data))
    for p, target in links:
        i = tarfile.TarInfo(p); i.type = tarfile.SYMTYPE; i.linkname = target; t.addfile(i)
EOF
}

# refused NAME PATTERN: import fails, one line of error matching PATTERN,
# nothing named h:1, verify clean.
refused() {
	mk "$1"
	if "$KILN" cache import "$T/$1.tar" >/dev/null 2>"$T/err"; then
		fail "$1: import refused"; return
	fi
	pass "$1: import refused"
	if [ "$(wc -l <"$T/err")" = 1 ] && grep -q -- "$2" "$T/err"; then pass "$1: one line: $(cat "$T/err")"
	else fail "$1: one line matching $2" "$(cat "$T/err")"; fi
	"$KILN" cache ls >"$T/ls" 2>&1
	ok "$1: nothing tagged" test "$(wc -l <"$T/ls")" = 1
	ok "$1: verify clean" "$KILN" cache verify -q
	ok "$1: no temp files" test -z "$(find "$KILN_CACHE" -name '*tmp-*' -o -name '.partial-*')"
}

refused wrongbytes "digest mismatch"
refused missinglayer "missing from the archive"
refused badindex "invalid JSON"
refused badmanifest "invalid digest"
refused dockerescape "layer \`../../etc/passwd\` is not in the archive"
refused dockerloop "layer \`a/layer.tar\` is not in the archive"

mk dockergood
ok "docker save with a symlinked (shared) layer imports" "$KILN" cache import -q "$T/dockergood.tar"
ok "… tagged" bash -c "'$KILN' cache ls | grep -q '^docker.io/library/h:1 '"
ok "… verify clean" "$KILN" cache verify -q

# A truncated archive.
head -c 3000 "$T/dockergood.tar" >"$T/trunc.tar"
ok "a truncated archive is refused" bash -c "! '$KILN' cache import '$T/trunc.tar' 2>'$T/err' && test \$(wc -l <'$T/err') = 1"
ok "… verify clean" "$KILN" cache verify -q
ok "an empty file is refused" bash -c "! '$KILN' cache import /dev/null 2>/dev/null"
ok "a missing file is refused" bash -c "! '$KILN' cache import '$T/nothere' 2>/dev/null"
done_testing
