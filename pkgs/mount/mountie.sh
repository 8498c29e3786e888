#!/bin/sh
# mountie [-label LABEL] [-device DEV] [-type TYPE] MOUNTPOINT
# Mounts the filesystem labelled LABEL (default KILN_DATA) on MOUNTPOINT.
set -eu
bb=/bin/busybox
label=KILN_DATA dev= type=ext4 dir=
while [ $# -gt 0 ]; do
	case $1 in
	-label|--label) label=$2; shift ;;
	-device|--device) dev=$2; shift ;;
	-type|--type) type=$2; shift ;;
	-*) echo "mountie: unknown option $1" >&2; exit 2 ;;
	*) dir=$1 ;;
	esac
	shift
done
[ -n "$dir" ] || { echo "usage: mountie [-label L] [-device D] MOUNTPOINT" >&2; exit 2; }
if [ -z "$dev" ]; then
	i=0
	# A disk formatted at this boot may take a moment to show its label.
	while ! dev=$($bb findfs "LABEL=$label" 2>/dev/null); do
		i=$((i + 1))
		[ $i -lt 20 ] || { echo "mountie: no filesystem labelled $label" >&2; exit 1; }
		$bb sleep 0.2
	done
fi
$bb mkdir -p "$dir"
$bb mount -t "$type" "$dev" "$dir"
echo "mountie: $dev ($label) on $dir"
