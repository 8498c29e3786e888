#!/bin/bash
# `make compat`: kiln build --dry-run over every *.yml of LinuxKit's own tree
# (../shared/compat/linuxkit, present on the project's machines only; not
# part of `make test`).  Prints each file that does not pass, then counts:
#   accepted        parsed, validated and dumped
#   missing @pkg    rejected with FILE:LINE:COL naming the absent package path
#                   (LinuxKit resolves @pkg: with `linuxkit pkg show-tag`)
#   excluded        files LinuxKit itself does not accept as manifests (pkg
#                   build.yml files, a registry config, its negative tests,
#                   one example that is invalid YAML), each with the reason;
#                   kiln must reject them too
#   failures        anything else (exit 1 when there is any)
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
KILN=${KILN:-$TOP/build/kiln}
DIR=${COMPAT_DIR:-$TOP/../shared/compat/linuxkit}
if [ ! -d "$DIR" ]; then
	echo "compat: $DIR not found; nothing to check"
	exit 0
fi
cd "$DIR" || exit 1

# Files in LinuxKit's tree that are not manifests, and why.
not_manifest_reason() {
	case $1 in
	*/build.yml | */build-file.yml) echo "a 'linuxkit pkg build' build.yml, not a manifest" ;;
	test/cases/000_build/080_mirrors/config.yml) echo "a docker registry configuration" ;;
	test/cases/000_build/091_validate_linuxkit_yaml/linuxkit.yml)
		echo "LinuxKit's negative test: must be rejected (unknown top-level key)" ;;
	test/cases/000_build/070_volumes/002_rw_on_ro/test.yml)
		echo "LinuxKit's negative test: must fail (read-only volume bound read-write)" ;;
	examples/static-ip.yml)
		echo "invalid YAML: a '#' line at column 0 ends the literal block scalar (libyaml, PyYAML and yaml.v3's libyaml-derived scanner reject it)" ;;
	*) return 1 ;;
	esac
}

total=0 accepted=0 pkg=0 notman=0 failed=0
while IFS= read -r f; do
	total=$((total + 1))
	err=$("$KILN" -q build --dry-run "$f" 2>&1 >/dev/null)
	rc=$?
	if reason=$(not_manifest_reason "$f"); then
		if [ "$rc" = 0 ]; then
			echo "FAIL (accepted but should not be): $f ($reason)"
			failed=$((failed + 1))
		else
			echo "excluded: $f: $reason"
			echo "    kiln: $err"
			notman=$((notman + 1))
		fi
	elif [ "$rc" = 0 ]; then
		accepted=$((accepted + 1))
	elif [[ "$err" =~ ^"$f":[0-9]+:[0-9]+:\ @pkg:[^:]+:\ package\ directory\ .*\ not\ found$ ]]; then
		echo "missing @pkg: $err"
		pkg=$((pkg + 1))
	else
		echo "FAIL: $f"
		echo "    $err"
		failed=$((failed + 1))
	fi
done < <(find . -name '*.yml' | sed 's|^\./||' | LC_ALL=C sort)

echo
echo "compat: $total files: $accepted accepted, $pkg with missing @pkg: paths, $notman excluded (not manifests, or invalid for LinuxKit too), $failed failed"
[ "$failed" = 0 ]
