#!/usr/bin/env bash
# make bench-cache: kiln cache import / export of a large image against
# skopeo copy doing the same work (an OCI layout in, an OCI layout or tar
# out), fresh empty stores, best of RUNS.  Prints seconds and ratios.
#   BENCH_MB (default 256): size of the (incompressible, uncompressed) layer.
set -euo pipefail
KILN=${KILN:-$(dirname "$0")/../../build/kiln}
MB=${BENCH_MB:-256}
RUNS=${RUNS:-3}
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-bench-XXXXXX")
trap 'rm -rf "$T"' EXIT
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"

python3 - "$T/src" "$MB" <<'PY'
import hashlib, io, json, os, sys, tarfile
out, mb = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(out, "blobs", "sha256"); os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(blobs, d), "wb").write(data); return "sha256:" + d, len(data)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    for i in range(4):
        data = os.urandom(mb * 1024 * 1024 // 4)
        ti = tarfile.TarInfo("big/%d" % i); ti.size = len(data); ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
layer = buf.getvalue()
ld, ls = put(layer)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [ld]}}).encode()
cd, cs = put(cfg)
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": ls}]}).encode()
md, ms = put(man)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "big"}}]},
    open(os.path.join(out, "index.json"), "w"))
open(os.path.join(out, "oci-layout"), "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

# best CMD...: the best wall time in ms of RUNS runs (fresh $T/out each time)
best() {
	local b=0 s e t
	for _ in $(seq "$RUNS"); do
		rm -rf "$T/out" "$T/out.tar"; sync
		s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
		t=$(((e - s) / 1000000))
		if [ "$b" = 0 ] || [ "$t" -lt "$b" ]; then b=$t; fi
	done
	echo "$b"
}
sk() { skopeo --policy "$T/policy.json" "$@"; }
ki=$(best "$KILN" cache import --cache "$T/out" "$T/src")
si=$(best sk copy --dest-oci-accept-uncompressed-layers "oci:$T/src:big" "oci:$T/out:big")
"$KILN" cache import -q --cache "$T/store" "$T/src"
ke=$(best "$KILN" cache export --cache "$T/store" big -o "$T/out.tar")
se=$(best sk copy --dest-oci-accept-uncompressed-layers "oci:$T/src:big" "oci-archive:$T/out.tar:big")
printf 'bench-cache: %d MB layer, best of %d\n' "$MB" "$RUNS"
awk -v k="$ki" -v s="$si" 'BEGIN { printf "  import  kiln %6.2f s   skopeo copy oci:->oci:          %6.2f s   ratio %.2f\n", k/1000, s/1000, k/s }'
awk -v k="$ke" -v s="$se" 'BEGIN { printf "  export  kiln %6.2f s   skopeo copy oci:->oci-archive:  %6.2f s   ratio %.2f\n", k/1000, s/1000, k/s }'
