#!/bin/bash
# kiln build --dry-run over the manifest corpus: every bad manifest exits 1
# with exactly one stderr line "FILE:LINE:COL: message" (as its .expect
# says), every good manifest exits 0 and dumps stably; plus the 100 MB input,
# stdin, the multi-file merge and the build options.
source "$(dirname "$0")/../lib.sh"
C=$TOP/tests/manifests
cd "$C/bad" || exit 1

nbad=0 badfail=0
for f in *.yml; do
	nbad=$((nbad + 1))
	want="$f:$(cat "${f%.yml}.expect")"
	"$KILN" build --dry-run "$f" >"$T/out" 2>"$T/err"
	rc=$?
	lines=$(wc -l <"$T/err")
	got=$(cat "$T/err")
	if [ "$rc" != 1 ] || [ "$lines" != 1 ] || [ -s "$T/out" ] || [ "${got#"$want"}" = "$got" ]; then
		fail "bad/$f" "rc=$rc lines=$lines want prefix <$want> got <$got>"
		badfail=$((badfail + 1))
	fi
done
[ "$badfail" = 0 ] && pass "all $nbad bad manifests: exit 1, one line FILE:LINE:COL: message"
ok "at least 50 bad manifests" test "$nbad" -ge 50

# 100 MB of valid-looking YAML: refused before parsing, with a position.
yes "# padding padding padding padding padding padding padding padding padding" |
	head -c 100000000 >"$T/huge.yml"
"$KILN" build --dry-run "$T/huge.yml" >/dev/null 2>"$T/err"
rc=$?
ok "100 MB input: exit 1 with one FILE:1:1 line" \
	test "$rc" = 1 -a "$(wc -l <"$T/err")" = 1 -a "$(grep -c "^$T/huge.yml:1:1: input larger than" "$T/err")" = 1
"$KILN" build --dry-run - <"$T/huge.yml" >/dev/null 2>"$T/err"
ok "100 MB on stdin: refused as -:1:1" grep -q '^-:1:1: input larger than' "$T/err"

# A 1 MiB string aliased 100 times: few nodes, 100 MiB once expanded.
{ printf 'a: &s "'; head -c 1048576 /dev/zero | tr '\0' x; printf '"\nb: ['
  for i in $(seq 1 100); do printf '*s,'; done; printf '*s]\n'; } >"$T/strbomb.yml"
"$KILN" build --dry-run "$T/strbomb.yml" >/dev/null 2>"$T/err"
ok "string alias bomb: refused with a position" \
	grep -q "^$T/strbomb.yml:2:[0-9]*: document too large: its strings, counting alias expansions" "$T/err"

cd "$C/good" || exit 1
for f in *.yml; do
	if "$KILN" -q build --dry-run "$f" >"$T/d1.yml" 2>"$T/err"; then
		"$KILN" -q build --dry-run "$T/d1.yml" >"$T/d2.yml" 2>>"$T/err"
		ok "good/$f: accepted, dump is stable" cmp -s "$T/d1.yml" "$T/d2.yml"
	else
		fail "good/$f" "$(cat "$T/err")"
	fi
done

# Multi-file merge: kernel fields replaced, lists concatenated, services re-checked.
"$KILN" -q build --dry-run multi-base.yml multi-extra.yml >"$T/m.yml"
ok "merge: later cmdline wins" grep -q '^  cmdline: console=ttyS0 quiet$' "$T/m.yml"
ok "merge: init concatenated" test "$(grep -c '^- linuxkit/' "$T/m.yml")" = 3
ok "merge: onboot and services concatenated" test "$(grep -c '^- name: ' "$T/m.yml")" = 4
"$KILN" build --dry-run multi-base.yml multi-base.yml >/dev/null 2>"$T/err"
ok "merge: duplicate service across files is an error" grep -q '^multi-base.yml:[0-9]*:[0-9]*: duplicate service name "getty"' "$T/err"

# stdin
"$KILN" -q build --dry-run - <minimal.yml >"$T/s.yml"
"$KILN" -q build --dry-run minimal.yml >"$T/f.yml"
ok "stdin gives the same dump as the file" cmp -s "$T/s.yml" "$T/f.yml"

# Options: LinuxKit spellings, comma lists, errors.
quietly() { "$@" >/dev/null 2>&1; }
ok "-format a,b -dir -name -size accepted with --dry-run" \
	quietly "$KILN" -q build -format kernel+initrd,iso-bios -format qcow2-bios -dir "$T" -name x -size 2G -arch amd64 -pull -docker -no-sbom --dry-run minimal.yml
ok "--help prints usage" bash -c "'$KILN' build --help | grep -q '^Usage: kiln build'"
ok "kiln help build prints usage" bash -c "'$KILN' help build | grep -q -- '--dry-run'"
"$KILN" build --size 12X --dry-run minimal.yml 2>"$T/err"
ok "bad --size is an error" grep -q '^kiln: build: invalid --size' "$T/err"
"$KILN" build --frobnicate minimal.yml 2>"$T/err"
ok "unknown option is an error" grep -q '^kiln: build: unknown option' "$T/err"
"$KILN" build 2>"$T/err"
ok "no manifest is an error" grep -q 'no manifest given' "$T/err"
"$KILN" build --dry-run "$T/nonexistent.yml" 2>"$T/err"
ok "missing file: kiln: build: cannot read FILE" grep -q "^kiln: build: cannot read .*nonexistent.yml: No such file" "$T/err"
done_testing
