#!/bin/sh
# Runs in the onboot containers of volumes.yml with a volume on /vola; $1
# names the case.  Shell builtins only (the poweroff image is busybox with
# three links).  Prints one line the boot test looks for:
#   volume-check CASE: ok | FAIL why | writable | read-only
c=$1
fail() { echo "volume-check $c: FAIL $*"; exit 1; }
can_write() { (echo "$c" >"/vola/by-$c") 2>/dev/null; }
image_file() { [ -x /vola/bin/busybox ] && [ -f /vola/poweroff.sh ] || fail "no bin/busybox and poweroff.sh from the image"; }
case $c in
rw-write) # 000_rw_on_rw, first container
	echo "from rw-write" >/vola/shared || fail "cannot write /vola/shared" ;;
rw-read) # 000_rw_on_rw, second container
	read -r line </vola/shared || fail "no /vola/shared"
	[ "$line" = "from rw-write" ] || fail "/vola/shared says '$line'" ;;
ro-on-ro) # 001_ro_on_ro
	image_file
	! can_write || fail "a write into the :ro bind succeeded" ;;
blank) # 004_blank
	[ -d /vola ] || fail "/vola is not a directory"
	for f in /vola/* /vola/.[!.]* /vola/..?*; do
		[ -e "$f" ] && fail "not empty: $f"
	done
	can_write || fail "blank volume not writable" ;;
image | binds | mounts | binds-add) # 005_image, 006_mount_types
	image_file
	can_write || fail "volume not writable" ;;
state-*) # a read-write bind of a volume: say what the mount allows
	if can_write; then echo "volume-check $c: writable"; else echo "volume-check $c: read-only"; fi
	exit 0 ;;
*) fail "unknown case" ;;
esac
echo "volume-check $c: ok"
