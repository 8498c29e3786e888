#!/bin/sh
# Build step of the init package: kiln's init from `make init` when the
# tree has that rule (init/init.mk), else a placeholder PID 1.
set -eu
out=${KILN_PKG_OUT:?run by kiln pkg build}
top=$(cd ../.. && pwd)
if make -C "$top" -n init >/dev/null 2>&1; then
	make -C "$top" init >&2
	cp "$top/build/init/init" "$out/init"
	[ ! -f "$top/build/init/kiln-service" ] || cp "$top/build/init/kiln-service" "$out/kiln-service"
else
	echo "pkgs/init: no 'make init' rule yet: building the placeholder init" >&2
	musl-gcc -static -Os -s -o "$out/init" placeholder.c
fi
