#!/usr/bin/env bash
# Benchmark (not a test): pull the same images from a local docker-registry
# with kiln and with `skopeo copy docker://… oci:…` into empty stores, five
# times each, and print the times and the ratio (goal: kiln <= 0.8x skopeo).
#   tests/bench/registry_pull.sh [ROUNDS]
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/tools/registry_env.sh"
ROUNDS=${1:-5}
for t in docker-registry skopeo umoci python3; do
	command -v $t >/dev/null || { echo "bench: $t not installed" >&2; exit 1; }
done
[ -x "$KILN" ] || { echo "bench: build kiln first" >&2; exit 1; }
export TMPDIR=$T

# Three images of three gzip layers (~6 MB of incompressible files each,
# plus a compressible text file), made with umoci.
L=$T/layout
umoci init --layout "$L" >/dev/null
for img in a b c; do
	umoci new --image "$L:$img" >/dev/null
	for layer in 1 2 3; do
		rm -rf "$T/bundle"
		umoci unpack --rootless --image "$L:$img" "$T/bundle" >/dev/null
		mkdir -p "$T/bundle/rootfs/data"
		head -c 6000000 /dev/urandom >"$T/bundle/rootfs/data/$img$layer.bin"
		seq 1 300000 >"$T/bundle/rootfs/data/$img$layer.txt"
		umoci repack --image "$L:$img" "$T/bundle" >/dev/null
	done
done
start_registry "$T/reg" >/dev/null
for img in a b c; do
	sk copy -q --dest-tls-verify=false oci:$L:$img docker://$REG/bench/$img:1 >/dev/null
done
size=$(du -sm "$T/reg/data" | cut -f1)

now() { date +%s%N; }
kiln_total=0 skopeo_total=0 kiln1_total=0
for r in $(seq "$ROUNDS"); do
	rm -rf "$T/k" "$T/k1" "$T/s"
	t0=$(now)
	"$KILN" -q pull --cache "$T/k" $REG/bench/a:1 $REG/bench/b:1 $REG/bench/c:1 || exit 1
	t1=$(now)
	for img in a b c; do
		sk copy -q --src-tls-verify=false docker://$REG/bench/$img:1 oci:$T/s:$img >/dev/null || exit 1
	done
	t2=$(now)
	for img in a b c; do
		"$KILN" -q pull --cache "$T/k1" $REG/bench/$img:1 || exit 1
	done
	t3=$(now)
	k=$(((t1 - t0) / 1000000)) s=$(((t2 - t1) / 1000000)) k1=$(((t3 - t2) / 1000000))
	kiln_total=$((kiln_total + k)) skopeo_total=$((skopeo_total + s)) kiln1_total=$((kiln1_total + k1))
	printf 'round %d: kiln %5d ms   skopeo %5d ms   kiln one image per run %5d ms\n' "$r" "$k" "$s" "$k1"
done
printf 'pull of 3 images, 9 layers, ~%d MB from a local registry, %d rounds:\n' "$size" "$ROUNDS"
printf '  kiln (one command)       %6d ms total, %5d ms per round\n' $kiln_total $((kiln_total / ROUNDS))
printf '  kiln (a command each)    %6d ms total, %5d ms per round\n' $kiln1_total $((kiln1_total / ROUNDS))
printf '  skopeo (a command each)  %6d ms total, %5d ms per round\n' $skopeo_total $((skopeo_total / ROUNDS))
awk -v k=$kiln_total -v k1=$kiln1_total -v s=$skopeo_total 'BEGIN {
	printf "  ratio kiln/skopeo = %.2f (goal <= 0.80); a command per image: %.2f\n", k / s, k1 / s }'
trap - EXIT
_tap_finish >/dev/null
