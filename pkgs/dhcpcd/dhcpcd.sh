#!/bin/sh
# /sbin/dhcpcd: Debian's dhcpcd on a host without udev.  Its udev plugin
# only uses an interface udev has initialised (a record in
# /run/udev/data/n<ifindex>); with no udev on a kiln host, write those
# records first.  (Without the plugin, dhcpcd 9.4 crashes.)
[ -d /run/udev/data ] || mkdir -p /run/udev/data # [ is a builtin: no fork
for i in /sys/class/net/*/ifindex; do
	[ -r "$i" ] || continue
	read -r n <"$i" || continue # a builtin: no fork of cat per interface
	[ -e "/run/udev/data/n$n" ] || echo "I:1" >"/run/udev/data/n$n"
done
exec /usr/sbin/dhcpcd "$@"
