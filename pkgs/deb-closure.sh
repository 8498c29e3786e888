#!/usr/bin/env bash
# Suggests the `debs:` list of a package: PKG... and the libraries they need,
# recursively (apt-cache depends, Depends and Pre-Depends only), keeping
# library packages (lib*, libc6, zlib1g) and the named ones, dropping what an
# image needs no more than a dpkg database (debconf, adduser, init helpers…).
# kiln's ELF check tells what is still missing, naming binary and library.
#   pkgs/deb-closure.sh runc          ->  runc libc6 libgcc-s1 libseccomp2
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 PKG..." >&2; exit 2; }
{
	printf '%s\n' "$@"
	apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
		--no-replaces --no-enhances "$@" |
		awk '/^ *(Pre)?Depends: [a-z0-9]/ {print $2}' |
		grep -E '^(lib|zlib1g$)' |
		grep -vE '^(libdebconfclient|libpam-|libsemanage|libaudit-common|libc-bin|libgcc-s1-|libpam-runtime)' || true
} | awk '!seen[$0]++' | LC_ALL=C sort
