#!/usr/bin/env bash
# kill -9 of kiln at random moments during 20 pulls (slowed down by the
# tests' proxy so the kill lands mid-transfer), each followed by a rerun:
# every rerun succeeds and the store verifies clean.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/registry-lib.sh"
registry_setup docker-registry skopeo umoci jq python3 curl
start_registry "$T/reg" || { fail "start registry"; done_testing; }
registry_proxy plain two
export KILN_RETRY_BASE_MS=20

good=0 resumed=0 bad=0 midway=0
for i in $(seq 20); do
	c=$T/k$i
	# 3 MB at ~2 MB/s: a pull takes about 1.6 s; kill somewhere in 0-0.8 s (with
	# room for a slower kiln, e.g. under ASan, to still be pulling then).
	curl -sf "http://$P/__fault/set?mode=slow&count=-1&arg=2000000" >/dev/null
	"$KILN" -q pull --cache "$c" $P/kiln/plain:1 $P/kiln/two:1 &
	pid=$!
	sleep "0.$(printf '%03d' $((RANDOM % 800)))"
	kill -9 $pid 2>/dev/null && midway=$((midway + 1))
	wait $pid 2>/dev/null
	curl -sf "http://$P/__fault/set?mode=none&count=0" >/dev/null
	out=$("$KILN" -v pull --cache "$c" $P/kiln/plain:1 $P/kiln/two:1 2>&1)
	rc=$?
	grep -q "resuming at byte" <<<"$out" && resumed=$((resumed + 1))
	if [ $rc -eq 0 ] && cache_clean "$c" 2>/dev/null &&
		"$KILN" -q pull --cache "$c" $P/kiln/plain:1 2>/dev/null; then
		good=$((good + 1))
	else
		bad=$((bad + 1))
		diag "run $i: rc=$rc $(tail -2 <<<"$out" | tr '\n' ' ')"
	fi
done
# Two kiln processes pulling the same images into one store at once.
curl -sf "http://$P/__fault/set?mode=slow&count=-1&arg=4000000" >/dev/null
"$KILN" -q pull --cache "$T/both" $P/kiln/plain:1 $P/kiln/two:1 &
p1=$!
"$KILN" -q pull --cache "$T/both" $P/kiln/plain:1 $P/kiln/two:1 &
p2=$!
wait $p1; r1=$?
wait $p2; r2=$?
curl -sf "http://$P/__fault/set?mode=none&count=0" >/dev/null
ok "two concurrent pulls into one store both succeed" test $r1 = 0 -a $r2 = 0
ok "… and leave it clean" cache_clean "$T/both"
ok "… with both images named once" test "$(jq '.manifests | length' "$T/both/index.json")" = 2
diag "killed mid-pull: $midway of 20; reruns that resumed a partial blob: $resumed"
ok "every rerun after kill -9 succeeds with a clean store ($good of 20)" test $good = 20
ok "most kills landed during the pull" test $midway -ge 10
ok "some reruns resumed a partial download (Range)" test $resumed -ge 1
done_testing
