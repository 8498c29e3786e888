#!/usr/bin/env bash
# The documentation matches the code:
#  1. every fenced block opened with ```sh test in README.md and docs/*.md is
#     run (bash -euo pipefail) and must succeed; blocks opened with
#     ```sh slow are run too when KILN_DOCS_SLOW=1 (full builds and boots,
#     with the boot tests' store, KILN_TEST_CACHE or build/test-cache);
#     plain ```sh blocks are examples, never run;
#  2. `kiln help VERB` works for every verb `kiln help` lists;
#  3. every long option a verb's help names is in man/kiln.1, and every verb
#     has a section there; the bash completion knows every verb.
# Blocks run in a fresh directory holding symlinks to examples/, pkgs/,
# kernel/ and tests/ (so `examples/minimal.yml` reads as in the docs), with
# `kiln` on PATH, an empty store (KILN_CACHE) and a persistent .deb/apt
# cache (KILN_DEB_CACHE, so `@pkg:` tags take milliseconds after the first run).
source "$(dirname "$0")/../lib.sh"

[ -x "$KILN" ] || skip_all "no kiln binary at $KILN"
bindir=$T/bin
mkdir -p "$bindir"
ln -s "$KILN" "$bindir/kiln"
debs=${KILN_DOCS_DEB_CACHE:-$TOP/build/docs-debs}
mkdir -p "$debs"

# extract FILE: writes one file per runnable block to $T/blocks/ and prints
# their names; each starts with a comment naming FILE:LINE.
extract() {
	awk -v out="$T/blocks" -v src="$1" -v slow="${KILN_DOCS_SLOW:-0}" '
	/^```/ {
		if (inblock) { inblock = 0; if (f) close(f); f = ""; next }
		inblock = 1
		info = substr($0, 4)
		if (info == "sh test" || (slow == "1" && info == "sh slow")) {
			n++
			base = src; gsub(/[^A-Za-z0-9]/, "_", base)
			f = sprintf("%s/%s.%03d.%s.sh", out, base, n, info == "sh slow" ? "slow" : "test")
			printf "# %s:%d\n", src, NR + 1 > f
			print f
		}
		next
	}
	inblock && f { print > f }
	' "$1"
}

mkdir -p "$T/blocks"
blocks=()
for doc in "$TOP"/README.md "$TOP"/docs/*.md; do
	[ -f "$doc" ] || continue
	rel=${doc#"$TOP"/}
	while IFS= read -r b; do blocks+=("$b"); done < <(cd "$TOP" && extract "$rel")
done

# A doc set with no runnable block at all means the convention broke.
if [ ${#blocks[@]} -ge 10 ]; then pass "found ${#blocks[@]} runnable blocks"
else fail "found ${#blocks[@]} runnable blocks (expected at least 10)"; fi

for b in "${blocks[@]}"; do
	where=$(head -1 "$b" | sed 's/^# //')
	w=$(mktemp -d "$T/run-XXXXXX")
	for d in examples pkgs kernel tests; do ln -s "$TOP/$d" "$w/$d"; done
	mkdir -p "$w/.home"
	# Slow blocks build and boot real images: they use the store the boot
	# tests share (KILN_TEST_CACHE, default build/test-cache) and the real HOME.
	store=$w/.store home=$w/.home limit=300 debcache=$debs
	case $b in *.slow.sh)
		store=${KILN_TEST_CACHE:-$TOP/build/test-cache} home=$HOME limit=1800 debcache=$store/debs ;;
	esac
	if out=$(cd "$w" && PATH="$bindir:$PATH" KILN_CACHE="$store" KILN_DEB_CACHE="$debcache" \
		HOME="$home" timeout "$limit" bash -euo pipefail "$b" 2>&1); then
		pass "runnable block $where"
	else
		fail "runnable block $where" "$(printf '%s\n' "$out" | tail -15 | sed 's/^/# /')"
	fi
done

# Every option a `kiln VERB …` command of any shell block (runnable or not)
# uses is one `kiln help VERB` lists: examples cannot name options that do
# not exist.  Continuation lines are joined; LinuxKit's single-dash long
# spellings (-format) count as their double-dash form.
unknown=""
for doc in "$TOP"/README.md "$TOP"/docs/*.md; do
	while IFS= read -r line; do
		for cmd in $(printf '%s\n' "$line" | grep -o 'kiln [a-z-]\+\( [^|;&]*\)\?' | tr ' ' '\a'); do
			cmd=${cmd//$'\a'/ }
			verb=$(echo "$cmd" | awk '{print $2}')
			[ "$verb" = qemu ] && continue
			"$KILN" help "$verb" >/dev/null 2>&1 || { unknown+=" ${doc#"$TOP"/}:'kiln $verb'"; continue; }
			known=$("$KILN" help "$verb" 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
			for o in $(echo "$cmd" | grep -o -- ' --\?[a-z][a-z0-9-]\+' | sed 's/^ -\{1,2\}/--/'); do
				case $o in --[a-z]) continue ;; esac
				grep -qx -- "$o" <<<"$known" || unknown+=" ${doc#"$TOP"/}:'kiln $verb $o'"
			done
		done
	done < <(awk '/^```sh/ {b = 1; next} /^```/ {b = 0} b { sub(/(^| )#.*$/, ""); if (sub(/\\$/, "")) { acc = acc $0; next } print acc $0; acc = "" }' "$doc")
done
if [ -z "$unknown" ]; then pass "every option used in the docs' shell blocks exists"
else fail "every option used in the docs' shell blocks exists" "unknown:$unknown"; fi

# Every relative link of README.md and docs/*.md names a file of the tree.
broken=""
for doc in "$TOP"/README.md "$TOP"/docs/*.md; do
	dir=$(dirname "$doc")
	for l in $(grep -o '](\([^)#:]*\)\(#[^)]*\)\?)' "$doc" | sed 's/^](//; s/)$//; s/#.*//' | sort -u); do
		[ -z "$l" ] && continue
		[ -e "$dir/$l" ] || broken+=" ${doc#"$TOP"/}:$l"
	done
done
if [ -z "$broken" ]; then pass "relative links in README.md and docs/ resolve"
else fail "relative links in README.md and docs/ resolve" "broken:$broken"; fi

# kiln help VERB for every verb the top-level help lists.
verbs=$("$KILN" help | awk '/^Verbs:/ {v = 1; next} v && /^  [a-z]/ {print $1} v && /^$/ {v = 0}')
nverbs=$(echo "$verbs" | wc -w)
if [ "$nverbs" -ge 8 ]; then pass "kiln help lists $nverbs verbs"
else fail "kiln help lists $nverbs verbs (expected at least 8)"; fi

man=$TOP/man/kiln.1
comp=$TOP/contrib/bash-completion/kiln
for v in $verbs; do
	if help=$("$KILN" help "$v" 2>&1) && [ -n "$help" ]; then pass "kiln help $v"
	else fail "kiln help $v" "$help"; fi
	# The man page has a subsection for the verb: .SS "kiln VERB ..." or .SS VERB.
	if grep -Eq "^\.SS \"?(kiln )?$v( |\"|$)" "$man"; then pass "man/kiln.1 has a section for $v"
	else fail "man/kiln.1 has a section for $v"; fi
	# Every long option of the verb's help appears in the man page (troff
	# writes the dashes as \- or \-\-).
	missing=""
	for o in $(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z0-9-]*' | sort -u); do
		name=${o#--}
		grep -Fq -- "\\-\\-${name//-/\\-}" "$man" || missing+=" $o"
	done
	if [ -z "$missing" ]; then pass "man/kiln.1 names every option of kiln $v"
	else fail "man/kiln.1 names every option of kiln $v" "missing:$missing"; fi
	if grep -Eq "(^|[ \"'])$v([ \"']|$)" "$comp"; then pass "bash completion knows $v"
	else fail "bash completion knows $v"; fi
done

# Every format of the table (output-formats/formats.c rows, named where each
# writer defines its struct) is in the completion, the man page and
# docs/formats.md, and nothing else is.
fmts=$({ grep -h -A1 'const struct output_format format_[a-z0-9_]* = {' "$TOP"/output-formats/*.c
	grep -h '^ROW(format_' "$TOP"/output-formats/*.c; } | grep -o '"[a-z0-9+-]*"' | tr -d '"' | sort -u)
nrows=$(grep -c '^[[:space:]]*&format_' "$TOP/output-formats/formats.c")
if [ "$(echo "$fmts" | wc -l)" = "$nrows" ]; then pass "found the $nrows formats of the table"
else fail "found the $nrows formats of the table" "got: $(echo $fmts)"; fi
compfmts=$(bash -c "source '$comp' && printf '%s\n' \$_kiln_formats" | sort -u)
if [ "$compfmts" = "$fmts" ]; then pass "completion lists exactly the formats"
else fail "completion lists exactly the formats" "$(diff <(echo "$fmts") <(echo "$compfmts") | tr '\n' ' ')"; fi
manfmts=$(sed -n '/^\.SH FORMATS/,/^\.SH /p' "$man" | grep -o '^[a-z0-9+\\-]*	' | sed 's/\\-/-/g; s/\t//' | sort -u)
if [ "$manfmts" = "$fmts" ]; then pass "man page FORMATS lists exactly the formats"
else fail "man page FORMATS lists exactly the formats" "$(diff <(echo "$fmts") <(echo "$manfmts") | tr '\n' ' ')"; fi
docfmts=$(grep -o '^| `[a-z0-9+-]*` |' "$TOP/docs/formats.md" | grep -o '`[^`]*`' | tr -d '`' | sort -u)
if [ "$docfmts" = "$fmts" ]; then pass "docs/formats.md tables exactly the formats"
else fail "docs/formats.md tables exactly the formats" "$(diff <(echo "$fmts") <(echo "$docfmts") | tr '\n' ' ')"; fi

# make install puts the man page and the completion in place (dry run of
# the rule: nothing is built or installed here).
if inst=$(make -s -n -C "$TOP" install DESTDIR="$T/inst" PREFIX=/usr/local 2>&1) &&
	grep -q "man/kiln.1 $T/inst/usr/local/share/man/man1/kiln.1" <<<"$inst" &&
	grep -q "contrib/bash-completion/kiln $T/inst/usr/local/share/bash-completion/completions/kiln" <<<"$inst"
then pass "make install installs man/kiln.1 and the bash completion"
else fail "make install installs man/kiln.1 and the bash completion" "$(grep install <<<"$inst" | tail -3)"; fi

# The man page is valid troff (no warnings from groff's checker).
if command -v groff >/dev/null; then
	if w=$(groff -t -man -ww -z "$man" 2>&1) && [ -z "$w" ]; then pass "man/kiln.1 renders without warnings"
	else fail "man/kiln.1 renders without warnings" "$w"; fi
elif command -v man >/dev/null; then
	ok "man/kiln.1 renders" bash -c "MANWIDTH=80 man -l '$man' >/dev/null 2>&1"
fi

# The completion script loads and completes verbs and formats.
if out=$(bash -c "source '$comp' && COMP_WORDS=(kiln bu) COMP_CWORD=1 && _kiln && printf '%s\n' \"\${COMPREPLY[@]}\"" 2>&1) &&
	[ "$out" = build ]; then pass "completion: kiln bu<TAB> gives build"
else fail "completion: kiln bu<TAB> gives build" "$out"; fi
if out=$(bash -c "source '$comp' && COMP_WORDS=(kiln build --format iso-) COMP_CWORD=3 && _kiln && printf '%s\n' \"\${COMPREPLY[@]}\"" 2>&1) &&
	printf '%s\n' "$out" | grep -qx iso-bios; then pass "completion: --format iso-<TAB> gives iso-bios"
else fail "completion: --format iso-<TAB> gives iso-bios" "$out"; fi
if out=$(PATH="$bindir:$PATH" bash -c "source '$comp' && COMP_WORDS=(kiln run --until x --pub) COMP_CWORD=4 && _kiln && printf '%s\n' \"\${COMPREPLY[@]}\"" 2>&1) &&
	[ "$out" = --publish ]; then pass "completion: run --pub<TAB> gives --publish (from kiln help run)"
else fail "completion: run --pub<TAB> gives --publish (from kiln help run)" "$out"; fi
if out=$(bash -c "source '$comp' && COMP_WORDS=(kiln cache ver) COMP_CWORD=2 && _kiln && printf '%s\n' \"\${COMPREPLY[@]}\"" 2>&1) &&
	[ "$out" = verify ]; then pass "completion: cache ver<TAB> gives verify"
else fail "completion: cache ver<TAB> gives verify" "$out"; fi

done_testing
