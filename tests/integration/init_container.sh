#!/usr/bin/env bash
# init's container mode (the docker output format's ENTRYPOINT), without
# Docker: a busybox root with kiln's init as /sbin/init, run as PID 1 of a new
# PID and mount namespace with container=docker in the environment.  It says
# which mode and why, runs /etc/init.d, does none of the VM setup (no module,
# no mount but a missing /proc, no hostname, no reboot), exits 0 once no
# child is left, and on SIGTERM (docker stop) ends its children and exits.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../../init/tests/hostlib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (unshare --pid --mount, chroot)"
command -v unshare >/dev/null || skip_all "unshare not installed"
[ -x /bin/busybox ] || skip_all "no /bin/busybox"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"

R=$T/root
make_busybox_rootfs "$R"
mkdir -p "$R/sbin" "$R/etc/init.d"
cp "$INIT_BIN" "$R/sbin/init"
mknod -m 666 "$R/dev/null" c 1 3 # a runtime's /dev has it; sh's `&` needs it
# An init.d script that prints a marker and leaves an orphan behind: init must
# reap it before exiting ($LINGER seconds).
cat >"$R/etc/init.d/010-marker" <<'SH'
#!/bin/sh
echo "initd-marker-ran pid=$$"
echo ran >/out/marker
sleep "$(cat /etc/linger)" &
SH
chmod +x "$R/etc/init.d/010-marker"

STRACE=$(command -v strace)
# run_init CONSOLE [CMD]: init (or the shell command CMD) in new PID and mount
# namespaces, chrooted into $R; /proc is mounted for it inside the namespace
# unless NOPROC is set.  Syscalls of the VM path are traced to CONSOLE.trace.
run_init() {
	local console=$1; shift
	local inner="exec chroot $R ${1:-/sbin/init}"
	[ -n "${NOPROC:-}" ] || inner="mount -t proc proc $R/proc && $inner"
	local tr=()
	[ -n "$STRACE" ] && tr=("$STRACE" -f -qq -o "$console.trace" \
		-e trace=mount,umount2,reboot,init_module,finit_module,sethostname,pivot_root)
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin container=docker "${tr[@]}" unshare --pid --fork --mount sh -c "$inner" >"$console" 2>&1
}

# 1. Runs init.d, reaps the orphan, exits 0.
echo 1 >"$R/etc/linger"
t0=$(date +%s.%N)
run_init "$T/c1"; rc=$?
t1=$(date +%s.%N)
sed 's/^/# /' "$T/c1"
ok "exits 0 when no child is left" test "$rc" -eq 0
ok "logs the mode and why" grep -q 'kiln-init: container mode (container=docker)$' "$T/c1"
ok "ran /etc/init.d (marker on the console)" grep -q '^initd-marker-ran' "$T/c1"
ok "the init.d script ran in the root" grep -qx ran "$R/out/marker"
ok "waited for the init.d script's orphan (>= 1 s)" awk "BEGIN{exit !($t1 - $t0 >= 1)}"
ok "says why it exits" grep -q 'no children left; exiting' "$T/c1"
ok "no VM setup on the console (modules, mounts, hostname, power button)" \
	bash -c "! grep -Eq 'loaded [0-9]+ modules|mounted /proc /sys|hostname |power button|rebooting|power off' '$T/c1'"
if [ -n "$STRACE" ]; then
	sed 's/^/# trace: /' "$T/c1.trace"
	# The only mount is the test's own proc mount (done by sh before chroot).
	# unshare's own mount (/ private) and the proc mount done by sh before
	# chroot are the only ones; nothing else of the list is called.
	ok "no mount, reboot, module load, sethostname or pivot_root by init" \
		bash -c "! grep -E '(mount|umount2|reboot|init_module|finit_module|sethostname|pivot_root)\(' '$T/c1.trace' | grep -v -e 'mount(\"none\", \"/\", NULL, MS_REC|MS_PRIVATE' -e 'mount(\"proc\", \"$R/proc\"' | grep -q ."
fi

# 2. /proc missing: init mounts it (and only it).
NOPROC=1 run_init "$T/c2"; rc=$?
sed 's/^/# /' "$T/c2"
ok "without /proc: mounts /proc and still exits 0" \
	bash -c "[ $rc -eq 0 ] && grep -q 'mounted /proc (the runtime had not)' '$T/c2'"

# 3. SIGTERM (docker stop): the children get TERM, init exits 0 quickly.
echo 1000 >"$R/etc/linger"
STRACE='' run_init "$T/c3" & bg=$!
for _ in $(seq 100); do grep -q 'reaping children' "$T/c3" 2>/dev/null && break; sleep 0.1; done
us=$(pgrep -P "$bg" -x unshare); pid1=$(pgrep -P "${us:-0}" | head -1)
diag "unshare $us, init $pid1"
ok "init is up with a long-running child" bash -c "[ -n '$pid1' ] && pgrep -P '$pid1' -x sleep >/dev/null"
t0=$(date +%s.%N)
kill -TERM "$pid1"
wait "$bg"; rc=$?
t1=$(date +%s.%N)
sed 's/^/# /' "$T/c3"
ok "SIGTERM: exit 0" test "$rc" -eq 0
ok "SIGTERM: logged, no reboot" bash -c "grep -q 'signal 15: stopping (container mode: no reboot)' '$T/c3' && grep -q 'all processes gone' '$T/c3'"
ok "SIGTERM: the child ended by TERM, not the KILL 5 s later" \
	bash -c "awk 'BEGIN{exit !($t1 - $t0 < 4)}' && ! grep -q 'sending KILL' '$T/c3'"

# 4. Not PID 1 (docker run --init: tini is PID 1): child subreaper, so the
# init.d orphan still comes back to init, which waits for it.
echo 1 >"$R/etc/linger"
t0=$(date +%s.%N)
STRACE='' run_init "$T/c4" "/bin/sh -c 'KILN_INIT_MODE=container /sbin/init; echo init-rc=\$?'"
t1=$(date +%s.%N)
sed 's/^/# /' "$T/c4"
ok "not PID 1: child subreaper mode" grep -q 'container mode (KILN_INIT_MODE=container; not PID 1: child subreaper)' "$T/c4"
ok "not PID 1: reaps the reparented orphan, then exits 0" \
	bash -c "grep -qx 'init-rc=0' '$T/c4' && awk 'BEGIN{exit !($t1 - $t0 >= 1)}'"
done_testing
