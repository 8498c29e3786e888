#!/bin/sh
# Build step: one symlink per busybox applet (applets.list, from
# `busybox --list-full` of the same busybox-static version) under $KILN_PKG_OUT.
set -eu
out=${KILN_PKG_OUT:?run by kiln pkg build}
while read -r path; do
	[ -n "$path" ] || continue
	case $path in bin/busybox) continue ;; esac
	mkdir -p "$out/links/$(dirname "$path")"
	ln -sf /bin/busybox "$out/links/$path"
done < applets.list
