#!/usr/bin/env bash
# init is one static binary, under 200 KB, and kiln-service is the same program.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../../init/tests/hostlib.sh"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"
ok "init has no program interpreter (static)" bash -c "! readelf -l '$INIT_BIN' | grep -q INTERP"
ok "init has no dynamic section" bash -c "! readelf -d '$INIT_BIN' 2>/dev/null | grep -q NEEDED"
ok "file(1) says statically linked" bash -c "file '$INIT_BIN' | grep -q 'statically linked'"
size=$(stat -c %s "$INIT_BIN")
diag "init is $size bytes"
# 200 KB read as 200,000 bytes, the stricter of the two readings
ok "init is under 200 KB: $size < 200000 bytes" test "$size" -lt 200000
svc=$(dirname "$INIT_BIN")/kiln-service
ok "kiln-service exists" test -x "$svc"
out=$("$svc" --help)
ok "kiln-service --help prints usage" grep -q "list|start NAME|stop NAME|restart NAME" <<<"$out"
"$INIT_BIN" >/dev/null 2>&1; rc=$?
ok "init refuses to run as a normal process without a command (exit 2)" test "$rc" -eq 2
done_testing
