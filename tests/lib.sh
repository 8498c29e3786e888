# Shared helpers for tests/integration/*.sh and tests/boot/*.sh: TAP output,
# a per-script temp dir removed at exit, the kiln binary.  Source it.
set -u
KILN=${KILN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/kiln}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-test-XXXXXX")
_tap_n=0 _tap_failed=0
_cleanups=()
at_exit() { _cleanups+=("$*"); }
_tap_finish() {
	local c
	for c in "${_cleanups[@]}"; do eval "$c" >/dev/null 2>&1; done
	rm -rf "$T"
	echo "1..$_tap_n"
}
trap _tap_finish EXIT

# ok DESCRIPTION COMMAND... : one test point, passes when COMMAND succeeds.
ok() {
	local desc=$1; shift
	_tap_n=$((_tap_n + 1))
	if "$@"; then echo "ok $_tap_n - $desc"
	else echo "not ok $_tap_n - $desc"; _tap_failed=$((_tap_failed + 1)); fi
}
# pass/fail DESCRIPTION: report a computed result.
pass() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n - $1"; }
fail() { _tap_n=$((_tap_n + 1)); echo "not ok $_tap_n - $1"; _tap_failed=$((_tap_failed + 1)); [ $# -gt 1 ] && echo "# $2"; }
skip_all() { echo "1..0 # SKIP $1"; trap - EXIT; rm -rf "$T"; exit 77; }
# diag MESSAGE: a TAP comment.
diag() { echo "# $*"; }
done_testing() { exit $((_tap_failed > 0)); }
