#!/usr/bin/env bash
# Pulls through the tests' fault-injecting proxy: connection resets,
# truncated bodies, 500s, 429 with Retry-After, a stalled body, wrong bytes.
# Where retries can succeed the pull succeeds; where they cannot it fails
# with one clear line; the store is clean after every case.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/registry-lib.sh"
registry_setup docker-registry skopeo umoci jq python3 curl
start_registry "$T/reg" || { fail "start registry"; done_testing; }
registry_proxy two plain
export KILN_RETRY_BASE_MS=20 KILN_STALL_TIMEOUT=1

fault() { # MODE COUNT [MATCH [ARG [NORANGE]]]
	curl -sf "http://$P/__fault/set?mode=$1&count=$2&match=${3:-/blobs/sha256:}&arg=${4:-}&norange=${5:-0}" >/dev/null
}
injected() { curl -sf "http://$P/__fault/stats" | jq .faults; }
# clean DIR: cache verify passes and no temp file is left (.partial-* files
# are the store's resume state for a later pull, kept by design).
clean() {
	cache_clean "$1" 2>/dev/null && [ -z "$(ls -A "$1/blobs/sha256" 2>/dev/null | grep '^\.' | grep -v '^\.partial-')" ]
}
n=0
# survives DESC MODE COUNT MATCH ARG: the pull succeeds despite the faults.
survives() {
	local desc=$1; shift
	n=$((n + 1))
	local c=$T/c$n
	fault "$@"
	local out
	out=$("$KILN" -v -v pull --cache "$c" $P/kiln/plain:1 $P/kiln/two:1 2>&1)
	local rc=$?
	LAST_OUT=$out
	local f
	f=$(injected)
	fault none 0
	if [ $rc -eq 0 ] && [ "$f" -ge 1 ] && clean "$c"; then
		pass "$desc (faults injected: $f)"
	else
		fail "$desc" "rc=$rc faults=$f: $(grep -v debug <<<"$out" | tail -3 | tr '\n' ' ')"
	fi
}
# breaks DESC PATTERN MODE COUNT MATCH ARG: the pull fails, one line, clean store.
breaks() {
	local desc=$1 pattern=$2; shift 2
	n=$((n + 1))
	local c=$T/c$n
	fault "$@"
	local out
	out=$("$KILN" pull --cache "$c" $P/kiln/plain:1 2>&1)
	local rc=$?
	fault none 0
	if [ $rc -ne 0 ] && [ "$(wc -l <<<"$out")" = 1 ] && grep -q -- "$pattern" <<<"$out" && clean "$c"; then
		pass "$desc: $out"
	else
		fail "$desc" "rc=$rc: $out"
	fi
}

survives "connection resets on blobs" reset 3
survives "truncated blob bodies" truncate 3
ok "… resumed with Range" grep -q "range [0-9]*-" <<<"$LAST_OUT"
survives "truncated bodies from a server that ignores Range" truncate 2 /blobs/sha256: "" 1
ok "… started over from byte 0" grep -q "ignored the range; starting over" <<<"$LAST_OUT"
survives "HTTP 500 on blobs" 500 3
start=$(date +%s%N)
survives "429 with Retry-After: 2 on blobs" 429 1 /blobs/sha256: 2
el=$((($(date +%s%N) - start) / 1000000))
ok "… Retry-After honoured (${el} ms >= 2000)" test $el -ge 2000
start=$(date +%s%N)
survives "a stalled body (stall timeout 1 s)" stall 1 /blobs/sha256: 30
el=$((($(date +%s%N) - start) / 1000000))
ok "… detected and resumed well before the stall ends (${el} ms)" test $el -lt 15000
survives "wrong bytes once (digest mismatch, fetched again)" corrupt 1
survives "blobs redirected to another origin (307)" redirect -1
survives "HTTP 500 on manifests" 500 2 /manifests/
survives "connection resets on manifests" reset 2 /manifests/
survives "429 on the token-less ping" 429 1 /v2/ 0
survives "truncated manifests" truncate 2 /manifests/
survives "wrong bytes in a manifest once (fetched again)" corrupt 1 /manifests/

breaks "HTTP 500 for ever" "gave up after 6 attempts" 500 -1
breaks "wrong bytes for ever" "digest mismatch" corrupt -1
breaks "resets for ever" "blob sha256:" reset -1
breaks "a manifest whose bytes differ from its digest" "hashes to\|digest mismatch\|JSON\|json" corrupt -1 /manifests/
# A manifest over the 4 MiB limit (docker-registry will not store one, so
# the proxy pads the registry's answer with 5 MB of spaces: still JSON).
n=$((n + 1))
fault pad -1 /manifests/ 5000000
out=$("$KILN" pull --cache "$T/c$n" $P/kiln/plain:1 2>&1)
fault none 0
ok "a manifest over 4 MiB is refused in one line" bash -c '[ "$(wc -l <<<"$1")" = 1 ] && grep -q "manifest 1: larger than 4194304 bytes" <<<"$1"' _ "$out"
# Pushes through the proxy: failed upload steps start the blob over.
n=$((n + 1))
"$KILN" -q pull --cache "$T/src" $P/kiln/plain:1 || fail "pull for push"
fault 500 2 /blobs/uploads/
out=$("$KILN" -v push --cache "$T/src" $P/kiln/plain:1 $P/pushed/plain:$n 2>&1)
rc=$?
ok "push survives 500s on uploads (faults injected: $(injected))" test $rc = 0
fault reset 2 /blobs/uploads/
out=$("$KILN" push --no-mount --chunk-size 300k --cache "$T/src" $P/kiln/plain:1 $P/chunked/plain:$n 2>&1)
rc=$?
ok "chunked push survives resets on PATCH/PUT (faults injected: $(injected))" test $rc = 0
fault none 0
ok "… and the registry serves the same manifest" test "$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://$REG/v2/chunked/plain/manifests/$n | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')" = \
	"$(jq -r '.manifests[0].digest' "$T/src/index.json")"
fault 500 -1 /blobs/uploads/
out=$("$KILN" push --no-mount --cache "$T/src" $P/kiln/plain:1 $P/broken/plain:1 2>&1)
rc=$?
fault none 0
ok "push against uploads that always fail: one line" bash -c '[ $1 != 0 ] && [ "$(wc -l <<<"$2")" = 1 ] && grep -q "HTTP 500.*(after 6 attempts)" <<<"$2"' _ $rc "$out"
diag "$out"
dg=$(curl -sfI -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://$REG/v2/kiln/plain/manifests/1 | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p')
n=$((n + 1))
fault corrupt -1 /manifests/
out=$("$KILN" pull --cache "$T/c$n" $P/kiln/plain@$dg 2>&1)
rc=$?
fault none 0
ok "a manifest fetched by digest must hash to it" test $rc -ne 0
ok "… one line naming the digest" bash -c '[ "$(wc -l <<<"$1")" = 1 ] && grep -q "manifest $2: digest mismatch (got sha256:" <<<"$1"' _ "$out" "$dg"
ok "… store clean" clean "$T/c$n"
done_testing
