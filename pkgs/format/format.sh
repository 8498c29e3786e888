#!/bin/sh
# format [-force] [-label LABEL] [-type ext4] [DEVICE]
# Formats DEVICE, or the first disk without partitions or filesystem, with
# ext4 labelled LABEL (default KILN_DATA).  Does nothing when the disk holds
# a filesystem already, unless -force.
set -eu
bb=/bin/busybox
label=KILN_DATA force=false type=ext4 dev=
while [ $# -gt 0 ]; do
	case $1 in
	-force|--force) force=true ;;
	-label|--label) label=$2; shift ;;
	-type|--type) type=$2; shift ;;
	-verbose|--verbose) set -x ;;
	-*) echo "format: unknown option $1" >&2; exit 2 ;;
	*) dev=$1 ;;
	esac
	shift
done
[ "$type" = ext4 ] || { echo "format: only ext4 is supported" >&2; exit 2; }
# busybox-static has no blkid: a disk "has a filesystem" unless its first
# MiB is all zeros (as a blank disk is); the label is read with e2label.
has_fs() { [ "$($bb dd if="$1" bs=65536 count=16 2>/dev/null | $bb tr -d '\000' | $bb wc -c)" -gt 0 ]; }
if [ -z "$dev" ]; then
	for s in /sys/block/*; do
		d=${s##*/}
		case $d in loop*|ram*|sr*|fd*|zram*|dm-*|md*) continue ;; esac
		[ "$(cat "$s/ro" 2>/dev/null)" = 0 ] || continue
		[ "$(cat "$s/removable" 2>/dev/null)" = 0 ] || continue
		ls -d "$s/$d"* >/dev/null 2>&1 && continue   # has partitions
		[ -b "/dev/$d" ] || continue
		if has_fs "/dev/$d"; then
			[ "$(/sbin/e2label "/dev/$d" 2>/dev/null)" = "$label" ] && { echo "format: /dev/$d is already $label"; exit 0; }
			continue
		fi
		dev=/dev/$d
		break
	done
	[ -n "$dev" ] || { echo "format: no blank disk found (nothing to do)"; exit 0; }
fi
if has_fs "$dev" && [ "$force" != true ]; then
	echo "format: $dev already has a filesystem; -force to reformat"
	exit 0
fi
echo "format: mkfs.ext4 -L $label $dev"
/sbin/mkfs.ext4 -q -F -L "$label" "$dev"
