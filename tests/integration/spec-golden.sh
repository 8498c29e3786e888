#!/usr/bin/env bash
# config.json / runtime.json goldens for LinuxKit's own test cases (issue 4):
# for every container of tests/golden/compat/cases/**/*.golden.json, run
# `kiln inspect-spec --image-config` with the fixture image config of
# tests/golden/compat/images/ and compare with the golden (written from
# ../shared/reference/linuxkit.md, see tests/golden/README).  A mismatch names
# the case, the container, the key path, the expected and the got value.
# When ../shared/compat is present, also checks that the copied cases are
# LinuxKit's files unchanged and that every case select-cases.py lists (every
# manifest whose entries set per-image fields) has its golden.
source "$(dirname "$0")/../lib.sh"
command -v python3 >/dev/null || skip_all "python3 not installed"
G=$TOP/tests/golden/compat

python3 "$G/compare.py" "$KILN" >"$T/out" 2>"$T/err"
rc=$?
ok "compare.py ran (exit $rc)" [ "$rc" = 0 ]
[ -s "$T/err" ] && sed 's/^/# /' "$T/err"
n=0
while IFS= read -r line; do
	case $line in
	"PASS "*) pass "${line#PASS }"; n=$((n + 1)) ;;
	"FAIL "*) fail "${line#FAIL }"; n=$((n + 1)) ;;
	"DIAG "*) diag "${line#DIAG }" ;;
	esac
done <"$T/out"
ok "at least 300 spec checks ran ($n)" [ "$n" -ge 300 ]

CASES=${COMPAT_DIR:-$TOP/../shared/compat/linuxkit}/test/cases
if [ -d "$CASES" ] && python3 -c 'import yaml' 2>/dev/null; then
	"$TOP/tests/golden/select-cases.py" "$CASES" | awk '{print $1}' | sort -u >"$T/want"
	(cd "$G/cases" && find . -name '*.golden.json' | sed 's|^\./||; s|\.golden\.json$|.yml|' |
		sort) >"$T/have"
	ok "every LinuxKit case with per-image fields has a golden ($(wc -l <"$T/want") cases)" \
		diff "$T/want" "$T/have"
	bad=0
	while IFS= read -r f; do
		cmp -s "$CASES/$f" "$G/cases/$f" || { diag "differs from LinuxKit's: $f"; bad=1; }
	done < <(cd "$G/cases" && find . -name '*.yml' | sed 's|^\./||')
	ok "the copied cases are LinuxKit's files unchanged" [ "$bad" = 0 ]
else
	diag "$CASES or python3's yaml module absent: coverage against LinuxKit's tree not checked"
fi
done_testing
