#!/usr/bin/env bash
# init seals the OCI runtime in memory (run.c's runtime_seal, runc's
# memfd-bind scheme): a sealed memfd copy bound over the binary's path, so
# `runc init` takes itself as already cloned and neither binds nor copies
# itself again (CVE-2019-5736's defence) at each container start.  Checked
# with the real runc under strace: the same onboot bundle run with and
# without the seal, in a private mount namespace (the bind dies with it).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../../init/tests/hostlib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (runc, mounts)"
command -v runc >/dev/null || skip_all "runc not installed"
command -v strace >/dev/null || skip_all "strace not installed"
command -v unshare >/dev/null || skip_all "unshare not installed"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"

# runc on a tmpfs, as on a kernel+initrd boot (there runc 1.1 binds itself,
# does not trust the bind, then copies itself into a memfd)
mkdir -p "$T/rt" "$T/out"
mount -t tmpfs tmpfs "$T/rt" && at_exit umount -l "$T/rt"
cp "$(command -v runc)" "$T/rt/runc"

bundle() {
	local b=$T/onboot-$1/000-seal
	mkdir -p "$b/rootfs"
	make_busybox_rootfs "$b/rootfs"
	write_config "$b" "[\"/bin/sh\", \"-c\", \"echo ran >/out/$1\"]" \
		", {\"destination\": \"/out\", \"type\": \"bind\", \"source\": \"$T/out\", \"options\": [\"rbind\", \"rw\"]}"
}

# run NAME [ENV...]: init's onboot runner on the bundle, under strace
run() {
	local name=$1
	shift
	bundle "$name"
	env "$@" unshare -m --propagation private \
		strace -f -qq -o "$T/strace.$name" -e trace=memfd_create,execve,execveat,mount \
		"$INIT_BIN" onboot "$T/onboot-$name" "$T/log-$name" "$T/rt/runc" >"$T/console.$name" 2>&1
}

run plain
run sealed KILN_SEAL_RUNTIME=1
ok "the container ran without the seal" test "$(cat "$T/out/plain" 2>/dev/null)" = ran
ok "the container ran with the seal" test "$(cat "$T/out/sealed" 2>/dev/null)" = ran
# without it, runc init re-executes itself from a clone (execveat of a bound
# or memfd copy); with it, never
n_plain=$(grep -c 'execveat(' "$T/strace.plain")
n_sealed=$(grep -c 'execveat(' "$T/strace.sealed")
ok "without the seal runc init re-executes itself ($n_plain execveat)" test "$n_plain" -ge 1
ok "with the seal it does not ($n_sealed execveat)" test "$n_sealed" -eq 0
ok "without the seal runc copies itself into a memfd" grep -q 'memfd_create("runc_cloned' "$T/strace.plain"
ok "with the seal runc makes no memfd copy of itself" \
	bash -c "! grep -q 'memfd_create(\"runc_cloned' '$T/strace.sealed'"
ok "init made one sealed copy" test "$(grep -c 'memfd_create("kiln-sealed-runtime"' "$T/strace.sealed")" -eq 1
ok "and bound it over the runtime's path" grep -q "mount(\"/proc/self/fd/[0-9]*\", \"/proc/self/fd/[0-9]*\", NULL, MS_BIND" "$T/strace.sealed"
ok "the host's mount table is untouched" bash -c "! grep -q ' $T/rt/runc ' /proc/self/mountinfo"
grep -q 'warning' "$T/console.sealed" && sed 's/^/# /' "$T/console.sealed"
ok "no warning from the sealed run" bash -c "! grep -q warning '$T/console.sealed'"
