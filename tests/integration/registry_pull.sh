#!/usr/bin/env bash
# kiln pull and kiln push against Debian's docker-registry on 127.0.0.1:
# OCI and Docker schema 2 manifests, gzip/zstd/uncompressed layers, a
# two-platform index; the blobs kiln stores must be byte-identical to what
# `skopeo copy docker://… oci:…` stores.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/registry-lib.sh"
registry_setup docker-registry skopeo umoci jq
start_registry "$T/reg" || { fail "start registry"; done_testing; }
C=$T/cache

# Fixtures into the registry: skopeo for what it can push as is, kiln push
# (which keeps bytes) for zstd and uncompressed layers and the Docker list.
ok "skopeo pushes the gzip OCI image" sk copy -q --dest-tls-verify=false oci:$L:two docker://$REG/kiln/two:1
ok "skopeo pushes a Docker schema 2 image" sk copy -q --dest-tls-verify=false --format v2s2 oci:$L:two docker://$REG/kiln/v2s2:1
ok "skopeo pushes the two-platform index" sk copy -q --all --dest-tls-verify=false oci:$L:multi docker://$REG/kiln/multi:1
for t in zstd plain multi-docker; do
	ok "kiln push $t from an OCI layout" "$KILN" -q push --cache "$L" $t $REG/kiln/$t:1
done
layer_types() {
	curl -sf -H "Accept: application/vnd.oci.image.manifest.v1+json" "http://$REG/v2/kiln/$1/manifests/1" |
		jq -r '.layers[].mediaType' | sort -u | tr '\n' ' '
}
ok "registry holds zstd layers" test "$(layer_types zstd)" = "application/vnd.oci.image.layer.v1.tar+zstd "
ok "registry holds uncompressed layers" test "$(layer_types plain)" = "application/vnd.oci.image.layer.v1.tar "

# root_of NAME: the digest kiln's index.json gives NAME.
root_of() {
	jq -r --arg n "$1" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$C/index.json"
}
blob() { echo "$C/blobs/sha256/${1#sha256:}"; }

# same_as_skopeo REF [SKOPEO ARGS]: skopeo copies REF into an OCI layout;
# every layer it stores is in kiln's store with the same bytes.  skopeo's
# oci: destination converts Docker manifests and configs, so the manifest
# and config are compared with skopeo's dir: copy, which keeps them as the
# registry serves them.
same_as_skopeo() {
	local ref=$1; shift
	local d=$T/sk-$RANDOM
	sk copy -q --src-tls-verify=false --dest-oci-accept-uncompressed-layers "$@" docker://$ref oci:$d:x >/dev/null || return 1
	local m mf n=0 dg
	m=$(jq -r '.manifests[0].digest' "$d/index.json")
	mf=$d/blobs/sha256/${m#sha256:}
	for dg in $(jq -r '.layers[].digest' "$mf"); do
		cmp -s "$d/blobs/sha256/${dg#sha256:}" "$(blob "$dg")" || { echo "# layer differs: $dg" >&2; return 1; }
		n=$((n + 1))
	done
	sk copy -q --src-tls-verify=false "$@" docker://$ref dir:$d.dir >/dev/null || return 1
	m=sha256:$(sha256sum <"$d.dir/manifest.json" | cut -d' ' -f1)
	cmp -s "$d.dir/manifest.json" "$(blob "$m")" || { echo "# manifest differs: $m" >&2; return 1; }
	dg=$(jq -r .config.digest "$d.dir/manifest.json")
	cmp -s "$d.dir/${dg#sha256:}" "$(blob "$dg")" || { echo "# config differs: $dg" >&2; return 1; }
	[ $n -ge 2 ]
}

for t in two v2s2 zstd plain multi multi-docker; do
	ok "kiln pull $t" "$KILN" -q pull --cache "$C" $REG/kiln/$t:1
	ok "$t: blobs byte-identical to skopeo's" same_as_skopeo $REG/kiln/$t:1
done
ok "kiln pull --arch arm64 picks the arm64 manifest" "$KILN" -q pull --cache "$C" --arch arm64 $REG/kiln/multi:1
ok "arm64: blobs byte-identical to skopeo --override-arch arm64" same_as_skopeo $REG/kiln/multi:1 --override-arch arm64
arm_cfg=$(jq -r '.manifests[] | select(.platform.architecture=="arm64") | .digest' "$(blob "$(root_of $REG/kiln/multi:1)")")
ok "arm64 manifest stored" test -f "$(blob "$arm_cfg")"
ok "index.json roots are the registry's digests" test "$(root_of $REG/kiln/two:1)" = \
	"$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://$REG/v2/kiln/two/manifests/1 | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')"
ok "index root of the multi image is the index" \
	test "$(jq -r --arg n $REG/kiln/multi:1 '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .mediaType' "$C/index.json")" = application/vnd.oci.image.index.v1+json
ok "only one platform's layers fetched for the index (amd64 then arm64 = 2 manifests)" \
	test "$(jq '.manifests | length' "$(blob "$(root_of $REG/kiln/multi:1)")")" = 2
ok "store verifies clean" cache_clean "$C"

# Re-pull: nothing fetched; a line saying so.
out=$("$KILN" pull --cache "$C" $REG/kiln/two:1 2>&1)
ok "re-pull is up to date" grep -q "up to date" <<<"$out"
out=$("$KILN" -q pull --cache "$T/c-quiet" $REG/kiln/two:1 2>&1)
ok "-q prints nothing" test -z "$out"
out=$("$KILN" pull --cache "$T/c-lines" $REG/kiln/two:1 2>&1 </dev/null)
ok "not a TTY: one line per image" test "$(wc -l <<<"$out")" = 1
if command -v script >/dev/null; then
	out=$(TERM=xterm script -qec "$KILN pull --cache $T/c-tty $REG/kiln/plain:1" /dev/null)
	ok "on a TTY: a progress bar per layer" grep -q "layer 2/2 *\[=*\] .* done" <<<"$out"
	out=$(TERM=xterm script -qec "$KILN -q pull --cache $T/c-tty2 $REG/kiln/plain:1" /dev/null)
	ok "on a TTY with -q: nothing" test -z "$out"
fi
dg=$(root_of $REG/kiln/two:1)
ok "pull by digest" "$KILN" -q pull --cache "$T/c-dig" $REG/kiln/two@$dg
ok "tagged under REF@digest" test -n "$(jq -r --arg n "$REG/kiln/two@$dg" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$T/c-dig/index.json")"
out=$("$KILN" pull --cache "$T/c-none" $REG/kiln/nothere:1 2>&1)
ok "a missing tag fails with one line" test "$(wc -l <<<"$out")" = 1
ok "… naming the manifest and the registry's words" grep -q "pull $REG/kiln/nothere:1: manifest 1: not found" <<<"$out"
out=$("$KILN" pull --cache "$T/c-none" --arch s390x $REG/kiln/multi:1 2>&1)
ok "a missing platform is named" grep -q "no manifest for linux/s390x in the index (it has: linux/amd64, linux/arm64/v8)" <<<"$out"

# Builds resolve images through the store first (image_resolve); --pull
# checks the tag against the registry and follows it when it moved.
if "$KILN" build --help >/dev/null 2>&1; then
	sk copy -q --dest-tls-verify=false oci:$L:two docker://$REG/kiln/mov:1
	printf 'init:\n  - %s/kiln/mov:1\n' $REG >"$T/m.yml"
	mkdir -p "$T/out"
	"$KILN" build --cache "$T/c-build" --dir "$T/out" -f tar "$T/m.yml" >/dev/null 2>&1
	first=$(jq -r --arg n $REG/kiln/mov:1 '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$T/c-build/index.json")
	ok "build pulls a missing image" test -n "$first"
	"$KILN" -q push --cache "$L" plain $REG/kiln/mov:1 # the tag moves
	out=$("$KILN" build --cache "$T/c-build" --dir "$T/out" -f tar "$T/m.yml" 2>&1)
	ok "build without --pull keeps the stored image though the tag moved" bash -c '! grep -q pulled <<<"$1"' _ "$out"
	out=$("$KILN" build --pull --cache "$T/c-build" --dir "$T/out" -f tar "$T/m.yml" 2>&1)
	now=$(jq -r --arg n $REG/kiln/mov:1 '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $n) | .digest' "$T/c-build/index.json")
	ok "build --pull follows the moved tag" test "$now" != "$first" -a "$now" = "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "plain") | .digest' "$L/index.json")"
	out=$("$KILN" build --pull --cache "$T/c-build" --dir "$T/out" -f tar "$T/m.yml" 2>&1)
	ok "build --pull of an unmoved tag fetches nothing" bash -c '! grep -q pulled <<<"$1"' _ "$out"
fi

# Mirrors: docker.io names go to the mirror (LinuxKit's --mirror and env).
ok "--mirror docker.io=URL" "$KILN" -q pull --cache "$T/c-mirror" --mirror docker.io=http://$REG kiln/two:1
ok "… stored under the docker.io name" test -n "$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "docker.io/kiln/two:1") | .digest' "$T/c-mirror/index.json")"
ok "\$LINUXKIT_MIRROR" env LINUXKIT_MIRROR="docker.io=$REG" "$KILN" -q pull --cache "$T/c-mirror2" kiln/v2s2:1

# Push: HEAD first, cross-repository mount, chunked uploads, exact bytes.
out=$("$KILN" push --cache "$C" $REG/kiln/two:1 $REG/copy/two:1 2>&1)
ok "push to another repository mounts every blob" grep -q "0 blobs uploaded (0.0 MB), 3 mounted" <<<"$out"
out=$("$KILN" push --cache "$C" $REG/kiln/two:1 $REG/copy/two:2 2>&1)
ok "push again: every blob already there (HEAD)" grep -q "0 blobs uploaded (0.0 MB), 0 mounted, 3 already there" <<<"$out"
ok "chunked push (PATCH) of uncompressed layers" "$KILN" -q push --cache "$C" --no-mount --chunk-size 64k $REG/kiln/plain:1 $REG/chunked/plain:1
head_digest() {
	curl -sfI -H "Accept: $2" "http://$REG/v2/$1" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}
ok "chunked push keeps the manifest digest" test "$(head_digest chunked/plain/manifests/1 application/vnd.oci.image.manifest.v1+json)" = "$(root_of $REG/kiln/plain:1)"
ok "chunked push: skopeo reads the same blobs" same_as_skopeo $REG/chunked/plain:1
ok "push of the index keeps its digest" "$KILN" -q push --cache "$L" multi $REG/pushed/multi:1
ok "… and skopeo sees both platforms" test "$(sk inspect --raw --tls-verify=false docker://$REG/pushed/multi:1 | sha256sum | cut -d' ' -f1)" = \
	"$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "multi") | .digest[7:]' "$L/index.json")"
"$KILN" -q pull --cache "$T/c-part" $REG/kiln/multi:1
out=$("$KILN" push --cache "$T/c-part" $REG/kiln/multi:1 $REG/partial/multi:1 2>&1)
ok "pushing an index whose platforms are not all stored fails clearly" grep -q "which is not in the store" <<<"$out"
out=$("$KILN" push --cache "$C" nothere:1 $REG/x/y:1 2>&1)
ok "pushing a name the store lacks fails with one line" test "$(wc -l <<<"$out")" = 1
done_testing
