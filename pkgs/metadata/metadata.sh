#!/bin/sh
# metadata [-wait SECONDS] [-dir DIR]: reads the first config drive (volume
# label config, cidata or config-2) into DIR (/run/config) and sets the
# hostname.  Exits 0 when there is no config drive (nothing to do).
bb=/bin/busybox
out=/run/config wait=5
while [ $# -gt 0 ]; do
	case $1 in
	-wait|--wait) wait=$2; shift ;;
	-dir|--dir) out=$2; shift ;;
	-*) echo "metadata: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done
mnt=/mnt/drive
# The ssh directory always exists, so a service can bind it.
$bb mkdir -p "$out/ssh" && $bb chmod 0700 "$out/ssh"

find_drive() { # prints "DEVICE LABEL" of the first config drive
	# busybox-static has no blkid; findfs reads ISO9660 volume labels.
	for l in config cidata CIDATA config-2 CONFIG-2; do
		d=$($bb findfs "LABEL=$l" 2>/dev/null) && [ -b "$d" ] && { echo "$d $l"; return 0; }
	done
	# Else read the ISO9660 primary volume descriptor (sector 16) of CD-ROMs.
	for d in /dev/sr*; do
		[ -b "$d" ] || continue
		[ "$($bb dd if="$d" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || continue
		l=$($bb dd if="$d" bs=1 skip=32808 count=32 2>/dev/null | $bb tr -d ' \000')
		case $l in config|cidata|CIDATA|config-2|CONFIG-2) echo "$d $l"; return 0 ;; esac
	done
	return 1
}

# A CD-ROM's driver may still be probing when onboot starts.
i=0
while ! found=$(find_drive); do
	i=$((i + 1))
	[ $i -le $((wait * 5)) ] || { echo "metadata: no config drive (labels config, cidata, config-2): nothing to do"; exit 0; }
	$bb sleep 0.2
done
dev=${found% *} label=${found#* }
$bb mkdir -p "$mnt" "$out"
$bb mount -t iso9660 -o ro "$dev" "$mnt" || { echo "metadata: cannot mount $dev" >&2; exit 1; }
echo "metadata: config drive $dev (label $label)"

# write_file PATH PERM: stdin to $out/PATH, mode PERM, atomically.
write_file() {
	$bb mkdir -p "$($bb dirname "$out/$1")"
	$bb cat >"$out/$1.tmp" && $bb chmod "$2" "$out/$1.tmp" && $bb mv "$out/$1.tmp" "$out/$1"
}

hostname= keys=
case $label in
config)
	echo config | write_file provider 0644
	[ -f "$mnt/config" ] && write_file userdata 0644 <"$mnt/config"
	;;
cidata|CIDATA)
	echo cidata | write_file provider 0644
	[ -f "$mnt/user-data" ] && write_file userdata 0644 <"$mnt/user-data"
	if [ -f "$mnt/meta-data" ]; then
		write_file metadata 0644 <"$mnt/meta-data"
		hostname=$($bb sed -n 's/^local-hostname:[[:space:]]*//p' "$mnt/meta-data" | $bb tr -d "\"'\r" | $bb head -n 1)
	fi
	;;
config-2|CONFIG-2)
	echo config-2 | write_file provider 0644
	os=$mnt/openstack/latest
	[ -f "$os/user_data" ] && write_file userdata 0644 <"$os/user_data"
	if [ -f "$os/meta_data.json" ]; then
		write_file metadata 0644 <"$os/meta_data.json"
		hostname=$(jq -r '.hostname // .name // empty' "$os/meta_data.json" 2>/dev/null)
		keys=$(jq -r '(.public_keys // {}) | .[]' "$os/meta_data.json" 2>/dev/null)
	fi
	;;
esac
$bb umount "$mnt"

ud=$out/userdata
if [ -f "$ud" ] && jq -e 'type == "object"' "$ud" >/dev/null 2>&1; then
	# LinuxKit's format: each key a file ({content, perm}) or a directory
	# ({entries: {...}, perm}); a plain string is a file too.  jq prints one
	# line per item: d PATH PERM, or f PATH PERM BASE64.
	jq -r '
	  def walk_entries($prefix):
	    to_entries[] |
	    ($prefix + .key) as $p |
	    if (.value | type) == "string" then "f \($p) 0644 \(.value | @base64)"
	    elif (.value | type) == "object" and (.value | has("entries")) then
	      "d \($p) \(.value.perm // "0755")", (.value.entries | walk_entries($p + "/"))
	    elif (.value | type) == "object" and (.value | has("content")) then
	      "f \($p) \(.value.perm // "0644") \(.value.content | @base64)"
	    else empty end;
	  walk_entries("")' "$ud" |
	while read -r kind path perm data; do
		case $path in /*|*..*) echo "metadata: refusing path $path" >&2; continue ;; esac
		case $kind in
		d) $bb mkdir -p "$out/$path" && $bb chmod "$perm" "$out/$path" ;;
		f) echo "$data" | $bb base64 -d | write_file "$path" "$perm" ;;
		esac
	done
elif [ -f "$ud" ] && $bb head -n 1 "$ud" | $bb grep -q '^#cloud-config'; then
	# The two cloud-config keys an appliance needs: hostname and
	# ssh_authorized_keys (a YAML block list of strings).
	h=$($bb sed -n 's/^hostname:[[:space:]]*//p' "$ud" | $bb tr -d "\"'\r" | $bb head -n 1)
	[ -z "$h" ] || hostname=$h
	keys=$($bb awk '/^ssh_authorized_keys:/ {k=1; next} k && /^[[:space:]]*-/ {sub(/^[[:space:]]*-[[:space:]]*/, ""); gsub(/["\r]/, ""); print; next} k && /^[^[:space:]]/ {k=0}' "$ud")
fi
[ -z "$hostname" ] || echo "$hostname" | write_file hostname 0644
if [ -n "$keys" ]; then
	$bb mkdir -p "$out/ssh" && $bb chmod 0700 "$out/ssh"
	echo "$keys" | write_file ssh/authorized_keys 0600
fi
if [ -f "$out/hostname" ]; then
	h=$($bb head -n 1 "$out/hostname" | $bb tr -d ' \r\t')
	if [ -n "$h" ] && $bb hostname "$h"; then
		echo "metadata: hostname $($bb hostname)"
	fi
fi
[ ! -s "$out/ssh/authorized_keys" ] || echo "metadata: $($bb grep -c . "$out/ssh/authorized_keys") ssh key(s) in $out/ssh/authorized_keys"
echo "metadata: $(cd "$out" && $bb find . -type f | $bb sort | $bb tr '\n' ' ')"
