#!/usr/bin/env bash
# Hostile layers (tests/fixtures/hostile-layers.sh) are refused with an
# error naming the image, the layer and the entry; nothing is written
# outside the build's own directories and no output is left under its final
# name.  A layer whose symlink a higher layer hides builds, and the tar it
# gives extracts without leaving its root.
source "$(dirname "$0")/../lib.sh"
L=$T/layout
"$TOP/tests/fixtures/hostile-layers.sh" "$L" >/dev/null
mkdir -p "$T/run/a/b"
cd "$T/run/a/b"
expect_refused() { # NAME MESSAGE-FRAGMENT
	printf 'services:\n  - name: h\n    image: kiln/h-%s:1\n' "$1" >h.yml
	local err rc=0
	err=$("$KILN" build --cache "$L" -format tar --dir out h.yml 2>&1) || rc=$?
	if [ "$rc" = 1 ] && [[ $err == *"image kiln/h-$1:1: layer "*"(sha256:"* ]] && [[ $err == *"$2"* ]]; then
		pass "$1 refused: ${err#kiln: }"
	else
		fail "$1 refused with image, layer and entry named" "rc=$rc: $err"
	fi
	[ "$(echo "$err" | wc -l)" = 1 ] && pass "$1: one line" || fail "$1: one line" "$err"
	if [ -e out/h.tar ] || ls -A out 2>/dev/null | grep -q .; then
		fail "$1: nothing left in the output dir" "$(ls -A out)"
	else
		pass "$1: nothing left in the output dir"
	fi
}
expect_refused dotdot "entry \`../../evil\`: name \`../../evil\` has a \`..\` component"
expect_refused abs "entry \`/tmp/kiln-hostile-abs\`: absolute name"
expect_refused symlink "entry \`lib/evil\`: parent \`lib\` of \`lib/evil\` is a symlink"
expect_refused linkout "hard link \`x\`: name \`../../etc/shadow\` has a \`..\` component"
expect_refused linkabs "hard link \`x\`: absolute name \`/etc/shadow\` refused"
expect_refused whdotdot "entry \`a/.wh...\`: whiteout: name \`a/..\` has a \`..\` component"
expect_refused whdot "whiteout \`a/.wh..\` names no entry"
expect_refused sparse "entry \`big\`: size 10737418240 exceeds the limit"
expect_refused truncgz "truncated gzip input"
ok "nothing escaped upwards" test ! -e "$T/run/evil" -a ! -e "$T/evil" -a ! -e "$T/run/a/evil"
ok "nothing written to /tmp/kiln-hostile-abs" test ! -e /tmp/kiln-hostile-abs

printf 'services:\n  - name: h\n    image: kiln/h-crosslink:1\n' >c.yml
ok "a symlink hidden by a higher layer's directory builds" "$KILN" build --cache "$L" -format tar --dir out c.yml
mkdir -p ex
ok "its tar extracts" tar --warning=no-unknown-keyword -xf out/c.tar -C ex
ok "the file stayed inside the rootfs" test -f ex/containers/services/h/lower/lib/kiln-hostile-cross
ok "lib is a directory, not the symlink" test -d ex/containers/services/h/lower/lib -a ! -L ex/containers/services/h/lower/lib
ok "nothing landed in /tmp" test ! -e /tmp/kiln-hostile-cross
done_testing
