#!/usr/bin/env bash
# The options every verb shares (assembler/cli.c cli_common_option):
# -h/--help/-help print the verb's usage on stdout and exit 0, also after any
# mix of -v/--verbose/-verbose (repeatable) and -q/--quiet/-quiet; an unknown
# option is refused with a non-zero status and nothing on stdout.
source "$(dirname "$0")/../lib.sh"
cd "$T"
export KILN_CACHE=$T/cache

# check VERB...: every shared spelling is accepted by kiln VERB.
check() {
	local verb="$*" h out rc
	for h in -h --help -help "-v -v -q -h" "-verbose --quiet --verbose -quiet --help" \
		"-v --verbose -v -help"; do
		# shellcheck disable=SC2086
		out=$("$KILN" "$@" $h </dev/null 2>"$T/err"); rc=$?
		if [ $rc -ne 0 ] || ! grep -qi "^usage: kiln $verb" <<<"$out" || [ -s "$T/err" ]; then
			fail "kiln $verb $h" "rc=$rc stdout=<$(head -1 <<<"$out")> stderr=<$(head -1 "$T/err")>"
			return
		fi
	done
	out=$("$KILN" "$@" --no-such-option </dev/null 2>"$T/err"); rc=$?
	if [ $rc -eq 0 ] || [ -n "$out" ] || ! [ -s "$T/err" ]; then
		fail "kiln $verb refuses --no-such-option" "rc=$rc stdout=<$(head -1 <<<"$out")>"
		return
	fi
	pass "kiln $verb: -h --help -help, -v -verbose --verbose repeated, -q --quiet -quiet"
}

check build
check cache
check inspect-spec
check pkg build
check pull
check push
check run
done_testing
