#!/bin/sh
# Runs Dropbear in the foreground on port 22: keys only (-s), host keys
# made on demand in /etc/dropbear (-R), logs on stderr (-E).  Extra
# arguments go to dropbear.
mkdir -p /etc/dropbear
exec /usr/sbin/dropbear -F -E -R -s -p 22 "$@"
