#!/usr/bin/env bash
# init's onboot runner with the real runc: bundles run in order, each to
# completion, runtime.json honoured (the builder's overlay rootfs, mkdir,
# a veth pair moved into the container, bindNS), output in
# LOGDIR/NAME{.out,}.log and prefixed on the console, a failure does not stop
# the next bundle, mounts are undone.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../../init/tests/hostlib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (runc)"
command -v runc >/dev/null || skip_all "runc not installed"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"

OB=$T/onboot
RUNC=${INIT_TEST_RUNC:-$(command -v runc)}
NET=$(ip link add kt$$a type veth peer name kt$$b 2>/dev/null && ip link del kt$$a && echo yes)

# 000-hello: writable image → lower/ + tmp/ + rootfs/, as LinuxKit's builder lays it out.
b=$OB/000-hello-$$
mkdir -p "$b/lower" "$b/tmp" "$b/rootfs" "$T/out"
make_busybox_rootfs "$b/lower"
write_config "$b" '["/bin/sh", "-c", "echo hello from onboot; echo oops >&2; echo written >/written; cat /written >/out/hello; ls /sys/class/net >/out/net"]' \
	", {\"destination\": \"/out\", \"type\": \"bind\", \"source\": \"$T/out\", \"options\": [\"rbind\", \"rw\"]}, {\"destination\": \"/sys\", \"type\": \"sysfs\", \"source\": \"sysfs\", \"options\": [\"ro\"]}" false
if [ -n "$NET" ]; then
	# A network namespace of its own, so a veth end can be moved into it.
	sed -i 's/"namespaces": \[/"namespaces": [{"type": "network"}, /' "$b/config.json"
	ifaces=", \"interfaces\": [{\"name\": \"kt$$c\", \"peer\": \"kt$$d\"}], \"bindNS\": {\"net\": \"$T/netns/hello\"}"
else
	ifaces=""
fi
cat >"$b/runtime.json" <<JSON
{"mounts": [
  {"type": "tmpfs", "source": "tmpfs", "destination": "$b/tmp", "options": []},
  {"type": "", "source": "", "destination": "$b/tmp", "options": ["private"]},
  {"type": "overlay", "source": "overlay", "destination": "$b/rootfs",
   "options": ["lowerdir=$b/lower", "upperdir=$b/tmp/upper", "workdir=$b/tmp/work"]}],
 "mkdir": ["$T/made"]$ifaces}
JSON

# 001-fails: exits 3.
b1=$OB/001-fails-$$
mkdir -p "$b1/rootfs"
make_busybox_rootfs "$b1/rootfs"
write_config "$b1" '["/bin/sh", "-c", "echo about to fail; exit 3"]'
cat >"$b1/runtime.json" <<JSON
{"mounts": [{"source": "$b1/rootfs", "destination": "$b1/rootfs", "type": "", "options": ["bind"]}]}
JSON

# 002-after: runs although 001 failed.
b2=$OB/002-after-$$
mkdir -p "$b2/rootfs"
make_busybox_rootfs "$b2/rootfs"
write_config "$b2" '["/bin/sh", "-c", "echo after >/out/after"]' \
	", {\"destination\": \"/out\", \"type\": \"bind\", \"source\": \"$T/out\", \"options\": [\"rbind\", \"rw\"]}"
cat >"$b2/runtime.json" <<JSON
{"mounts": [{"source": "$b2/rootfs", "destination": "$b2/rootfs", "type": "", "options": ["bind"]}]}
JSON

at_exit "umount $T/netns/hello; for m in \$(grep -o '$T[^ ]*' /proc/self/mounts | sort -r); do umount -l \$m; done; ip link del kt$$d"
"$INIT_BIN" onboot "$OB" "$T/log" "$RUNC" >"$T/console" 2>&1
rc=$?
sed 's/^/# /' "$T/console"
ok "the runner reports the failure (exit 1)" test "$rc" -eq 1
ok "000 wrote through its overlay rootfs and bind mount" grep -qx written "$T/out/hello"
ok "000's stdout is in NAME.out.log" grep -q "hello from onboot" "$T/log/000-hello-$$.out.log"
ok "000's stderr is in NAME.log" grep -q oops "$T/log/000-hello-$$.log"
ok "stdout is on the console, prefixed" grep -Eq '^\[ *[0-9.]+\] 000-hello-[0-9]+: hello from onboot$' "$T/console"
ok "stderr is on the console, prefixed" grep -Eq '000-hello-[0-9]+: oops$' "$T/console"
ok "runtime.json mkdir was done" test -d "$T/made"
ok "001's failure is reported with its exit status" grep -Eq '001-fails-[0-9]+: exited \(exit status 3\)' "$T/console"
ok "002 ran after the failure" grep -qx after "$T/out/after"
ok "the order is 000, 001, 002" bash -c "grep -Eo '00[012]-[a-z]+-[0-9]+: starting' '$T/console' | cut -c1-3 | tr -d '\n' | grep -qx 000001002"
grep "$OB" /proc/self/mounts | sed "s/^/# left: /"
ok "the overlay and tmpfs are unmounted" bash -c "! grep -q '$OB' /proc/self/mounts"
ok "runc has no leftover container" bash -c "! runc list | grep -q -- '-$$'"
if [ -n "$NET" ]; then
	ok "the veth end was moved into the container" grep -qx "kt$$c" "$T/out/net"
	ok "its peer stayed in the root namespace" sh -c "ip link show kt$$d >/dev/null"
	ok "bindNS: the container's network namespace is bound at the path" \
		bash -c "grep -q ' $T/netns/hello nsfs ' /proc/self/mounts"
	ok "and holds the veth end" bash -c "nsenter --net='$T/netns/hello' ip link show kt$$c >/dev/null"
else
	diag "no veth support here: interfaces not tested"
fi
done_testing
