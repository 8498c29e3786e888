#!/bin/sh
# Makes missing host keys (ed25519, rsa, ecdsa) and runs sshd in the foreground.
set -e
mkdir -p /run/sshd /etc/ssh
chmod 0755 /run/sshd
/usr/bin/ssh-keygen -A
exec /usr/sbin/sshd -D -e "$@"
