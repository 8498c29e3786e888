#!/usr/bin/env bash
# The rebuild takes over its previous NAME-initrd.img and NAME-kernel when
# they are provably this build's leading sections (record in a user xattr,
# one link, size and mtime as recorded, not open anywhere): the same inode is
# truncated after the last matching section and appended to, the kernel is
# moved back, and the bytes equal a build without any cache.  A hard-linked,
# open, modified or differently compressed previous file is left alone.
source "$(dirname "$0")/../lib.sh"
L=$T/layout
PYTHONPATH=$TOP/tests/fixtures python3 - "$L" <<'EOF'
import sys
from ocilayout import Layout, Tar
L = Layout(sys.argv[1])
mods = Tar().dir("lib").dir("lib/modules").file("lib/modules/m.ko", "module" * 50000)
ucode = b"070701" + b"0" * 104
k = Tar().file("kernel", "kernel bytes " * 1000, 0o644).file("kernel.tar", mods.bytes()).file("ucode.cpio", ucode)
L.add_image(["docker.io/kiln/k:1"], [(k.bytes(), "gzip")])
L.add_image(["docker.io/kiln/init:1"], [(Tar().dir("bin").file("bin/init", "#!/bin/sh\n", 0o755).bytes(), "gzip")])
L.add_image(["docker.io/kiln/app:1"], [(Tar().dir("bin").file("bin/app", "app", 0o755).bytes(), "gzip")])
L.add_image(["docker.io/kiln/app:2"], [(Tar().dir("bin").file("bin/app", "app 2", 0o755).bytes(), "gzip")])
EOF
write() { # FILES-CONTENTS [APP-TAG]
	cat >"$T/m.yml" <<EOF
kernel:
  image: kiln/k:1
  cmdline: "console=ttyS0"
  ucode: ucode.cpio
init:
  - kiln/init:1
onboot:
  - name: first
    image: kiln/app:1
services:
  - name: svc
    image: kiln/app:${2:-1}
files:
  - path: etc/x
    contents: "$1"
EOF
}
O=$T/o
build() { "$KILN" build -v --cache "$L" --dir "$O" "$@" "$T/m.yml" 2>&1; }
fresh() { # DIR [ARGS]: the same manifest without any cache
	local d=$1; shift
	KILN_SECTION_CACHE=0 "$KILN" build -q --cache "$L" --dir "$d" "$@" "$T/m.yml"
}
same_as_fresh() { # [ARGS]
	local d=$T/fresh-$RANDOM
	fresh "$d" "$@" && cmp -s "$O/m-initrd.img" "$d/m-initrd.img" && cmp -s "$O/m-kernel" "$d/m-kernel" &&
		cmp -s "$O/m-cmdline" "$d/m-cmdline"
}
kept() { echo "$1" | grep -o '[0-9]* kept in place' | cut -d' ' -f1; }
ino() { stat -c %i "$1"; }

write one
build >/dev/null
if ! getfattr --version >/dev/null 2>&1 && ! python3 -c "import os; os.getxattr('$O/m-initrd.img', 'user.kiln.initrd')" 2>/dev/null; then
	skip_all "no user xattrs on $O's file system"
fi
i1=$(ino "$O/m-initrd.img") k1=$(ino "$O/m-kernel")
write two
log=$(build)
ok "files change: every image section kept in place ($(kept "$log"))" test "$(kept "$log")" = 4
ok "the same initrd inode was appended to" test "$(ino "$O/m-initrd.img")" = "$i1"
ok "the same kernel inode was moved back" test "$(ino "$O/m-kernel")" = "$k1"
ok "bytes equal a build without the cache" same_as_fresh
ok "no work directory left" bash -c "! ls -A '$O' | grep -q kiln-build"

write three 2
log=$(build)
ok "a changed service image: only the sections before it kept ($(kept "$log"))" test "$(kept "$log")" = 3
ok "bytes equal a build without the cache" same_as_fresh

ln "$O/m-initrd.img" "$T/saved.img"
sum=$(sha256sum <"$T/saved.img")
write four 2
log=$(build)
ok "a hard-linked previous initrd is not taken over" test "$(kept "$log")" = 0
ok "its other name keeps the old bytes" test "$(sha256sum <"$T/saved.img")" = "$sum"
ok "bytes equal a build without the cache" same_as_fresh
rm -f "$T/saved.img"

sum=$(sha256sum <"$O/m-initrd.img")
sleep 60 <"$O/m-initrd.img" &
reader=$!
at_exit "kill $reader"
write five 2
log=$(build)
ok "a previous initrd open elsewhere is not taken over" test "$(kept "$log")" = 0
ok "the reader still sees the old bytes" test "$(sha256sum </proc/$reader/fd/0)" = "$sum"
ok "bytes equal a build without the cache" same_as_fresh
kill $reader

build >/dev/null
printf x >>"$O/m-initrd.img"
write six 2
log=$(build)
ok "a previous initrd changed since its record is not taken over" test "$(kept "$log")" = 0
ok "bytes equal a build without the cache" same_as_fresh

log=$(build --compress zstd)
ok "another compression: nothing kept" test "$(kept "$log")" = 0
ok "zstd bytes equal a build without the cache" same_as_fresh --compress zstd
write seven 2
log=$(build --compress zstd)
ok "zstd rebuild kept in place ($(kept "$log"))" test "$(kept "$log")" = 4
ok "bytes equal a build without the cache" same_as_fresh --compress zstd

log=$(build --name other)
ok "another --name does not take this one's files" test "$(kept "$log")" = 0 -a -s "$O/m-initrd.img" -a -s "$O/other-initrd.img"
done_testing
