#!/bin/sh
# Build step: concatenates the .crt files of the ca-certificates .deb in
# byte order of their names into $KILN_PKG_OUT/ca-certificates.crt.
set -eu
out=${KILN_PKG_OUT:?run by kiln pkg build}
deb=${KILN_BUILD_DEBS%% *}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" ./usr/share/ca-certificates
find "$tmp/usr/share/ca-certificates" -name '*.crt' -type f | LC_ALL=C sort | while read -r c; do
	cat "$c"
	tail -c1 "$c" | od -An -c | grep -q '\\n' || echo
done > "$out/ca-certificates.crt"
[ -s "$out/ca-certificates.crt" ] || { echo "mkbundle: no certificates" >&2; exit 1; }
