#!/usr/bin/env bash
# Prints the README's table of packages: image, what it holds (build.yml's
# description), uncompressed and compressed size of its layer.  The images
# must be in the store (make pkgs).
#   pkgs/size-table.sh [--tsv] [DIR...]      (default: kernel pkgs/*)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$top/build/kiln}
store=${KILN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln}
fmt=md
[ "${1:-}" = --tsv ] && { fmt=tsv; shift; }
[ $# -gt 0 ] || set -- "$top/kernel" "$top"/pkgs/*/
for d in "$@"; do
	[ -f "$d/build.yml" ] || continue
	ref=$("$kiln" pkg show-tag "$d")
	desc=$(sed -n 's/^description: *//p' "$d/build.yml" | head -n1)
	printf '%s\t%s\n' "$ref" "$desc"
done | python3 -c '
import gzip, json, os, sys
store, fmt = sys.argv[1], sys.argv[2]
idx = json.load(open(os.path.join(store, "index.json")))
names = {m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m["digest"] for m in idx["manifests"]}
def blob(d):
    return os.path.join(store, "blobs", "sha256", d.split(":")[1])
def mb(n):
    return "%.1f MB" % (n / 1e6) if n >= 1e6 else "%.0f kB" % (n / 1e3)
rows = []
for line in sys.stdin:
    ref, desc = line.rstrip("\n").split("\t", 1)
    name = ref if ref.split("/")[0].count(".") or ":" in ref.split("/")[0] else "docker.io/" + ref
    if name not in names:
        sys.exit("size-table: %s is not in the store %s (run make pkgs)" % (ref, store))
    man = json.load(open(blob(names[name])))
    comp = sum(l["size"] for l in man["layers"])
    unc = 0
    for l in man["layers"]:
        with gzip.open(blob(l["digest"])) as f:
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                unc += len(b)
    rows.append((ref, desc, unc, comp))
if fmt == "tsv":
    for r in rows:
        print("%s\t%d\t%d\t%s" % (r[0].split(":")[0], r[2], r[3], r[1]))
else:
    print("| image | contents | uncompressed | compressed |")
    print("| --- | --- | ---: | ---: |")
    for r in rows:
        print("| `%s` | %s | %s | %s |" % (r[0].split(":")[0], r[1], mb(r[2]), mb(r[3])))
' "$store" "$fmt"
