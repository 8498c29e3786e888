#!/usr/bin/env bash
# `make demo`: builds examples/minimal.yml as a hybrid ISO (packages are
# built on demand from Debian's packages), boots it in QEMU with the serial
# console on this terminal until its services are up, powers it off, and
# says where the outputs are and what to try next.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
kiln=$top/build/kiln
out=${DEMO_OUT:-$top/out}
mkdir -p "$out"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "kiln build -format iso-bios -dir $out examples/minimal.yml"
echo "(the first run builds the kernel and the system packages from Debian's packages into the store: a few minutes)"
start=$(date +%s)
"$kiln" build -format iso-bios -dir "$out" "$top/examples/minimal.yml"
echo "built in $(( $(date +%s) - start )) s:"
ls -l "$out/minimal.iso"

step "kiln run qemu $out/minimal.iso   (TCG unless KVM really works; stops once every service is up)"
"$kiln" run qemu --mem 1024 --timeout 600 --until 'kiln-init: boot finished' --then powerdown \
	--state "$out/minimal-state" "$out/minimal.iso"

step "done"
cat <<MSG
The image:      $out/minimal.iso  (boots from a CD or, as a hybrid, from a disk or USB stick)
The store:      $("$kiln" cache ls 2>/dev/null | wc -l) images; see: build/kiln cache ls

Try next:
  build/kiln run qemu $out/minimal.iso            # interactive: a root shell on the console (ctrl-a x quits)
  build/kiln build -format kernel+initrd,qcow2-bios,raw-efi -dir $out examples/minimal.yml
  build/kiln build -format kernel+initrd -dir $out examples/web.yml && \\
    build/kiln run qemu --publish 8080:80 $out/web  # then: curl http://localhost:8080/
  build/kiln inspect-spec examples/minimal.yml getty  # the OCI runtime spec of one container
  build/kiln help                                     # every verb; docs/ has the details
MSG
