#!/usr/bin/env bash
# Runs the test suite and ends with one line "N passed, N failed".
#   tests/run.sh [all|unit|integration|boot]...
# Every test program or script prints TAP; a program that exits non-zero
# without reporting a failure counts as one failure; exit 77 = skipped.
# KILN_BUILD selects the build directory (default build).
set -u
cd "$(dirname "$0")/.."
export KILN_BUILD=${KILN_BUILD:-build}
export KILN="$PWD/$KILN_BUILD/kiln"
suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(all)
[ "${suites[0]}" = all ] && suites=(unit integration boot)

# Free space where the tests write (their temporary directories, the build's
# test cache): a failure from a full disk should say so at a glance.
free_space() {
	df -P -BM "${TMPDIR:-/tmp}" "$PWD" 2>/dev/null |
		awk 'NR > 1 && !seen[$6]++ { printf "%s%s: %s free", sep, $6, $4; sep = ", " }'
}
echo "# disk: $(free_space)"
passed=0 failed=0 skipped=0
failures=()
run_one() {
	local name=$1; shift
	local out rc
	out=$(mktemp)
	echo "# --- $name"
	local t0=$SECONDS
	"$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	echo "# $name: $((SECONDS - t0)) s"
	local p f s
	p=$(grep -cE '^ok [0-9]+' "$out" | tr -d ' ')
	s=$(grep -cE '^ok [0-9]+.*# SKIP' "$out" | tr -d ' ')
	f=$(grep -cE '^not ok [0-9]+' "$out" | tr -d ' ')
	p=$((p - s))
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	[ "$rc" -eq 77 ] && [ "$p" -eq 0 ] && [ "$s" -eq 0 ] && s=1
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	if [ "$f" -gt 0 ]; then
		failures+=("$name")
		echo "# disk after $name: $(free_space)"
	fi
	rm -f "$out"
}

for suite in "${suites[@]}"; do
	case $suite in
	unit)
		for t in "$KILN_BUILD"/tests/test_*; do
			[ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
		done ;;
	integration|boot)
		for t in tests/$suite/*.sh; do
			[ -f "$t" ] && run_one "$suite/$(basename "$t" .sh)" bash "$t"
		done ;;
	*) echo "run.sh: unknown suite $suite" >&2; exit 2 ;;
	esac
done
if [ ${#failures[@]} -gt 0 ]; then
	echo "# failed: ${failures[*]}"
fi
echo "# total time: $SECONDS s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
