#!/usr/bin/env bash
# init's native containerd client (kiln-service) against a real containerd
# started here on a private socket: create, start, list, stop, restart,
# delete a busybox service; and it really ran (it wrote a file).
# KILN_TEST_SHIM=runc (default): under containerd's runc shim (Go);
# KILN_TEST_SHIM=kiln: under kiln's own, init as containerd-shim-kiln-v1
# (init_shim_kiln.sh runs this file so).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../../init/tests/hostlib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (containerd)"
command -v containerd >/dev/null || skip_all "containerd not installed"
[ -x "$INIT_BIN" ] || skip_all "build/init/init not built (make init)"
SHIM=${KILN_TEST_SHIM:-runc}
# containerd finds a shim by its name on PATH.
mkdir -p "$T/bin"
ln -s "$INIT_BIN" "$T/bin/containerd-shim-kiln-v1"

SVC=$T/services
NS=kiln-test-$$
mkdir -p "$SVC/hello/rootfs" "$T/out" "$T/log"
make_busybox_rootfs "$SVC/hello/rootfs"
write_config "$SVC/hello" '["/bin/sh", "-c", "echo started >>/out/ran; echo to-stdout; echo to-stderr >&2; trap \"exit 0\" TERM; sleep 1000 & wait"]' \
	", {\"destination\": \"/out\", \"type\": \"bind\", \"source\": \"$T/out\", \"options\": [\"rbind\", \"rw\"]}"
# runtime.json as the builder writes it for a readonly image: the rootfs bind.
cat >"$SVC/hello/runtime.json" <<JSON
{"mounts": [{"source": "$SVC/hello/rootfs", "destination": "$SVC/hello/rootfs", "type": "", "options": ["bind"]}], "mkdir": ["$T/made-by-runtime"]}
JSON
cat >"$T/config.toml" <<TOML
version = 2
root = "$T/root"
state = "$T/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$T/c.sock"
[ttrpc]
  address = "$T/c.sock.ttrpc"
TOML
PATH=$T/bin:$PATH containerd --config "$T/config.toml" >"$T/containerd.log" 2>&1 &
cpid=$!
at_exit "kill $cpid; wait $cpid; umount $SVC/hello/rootfs; sleep 0.2"
for _ in $(seq 100); do [ -S "$T/c.sock" ] && break; sleep 0.1; done
ok "containerd is listening" test -S "$T/c.sock"

svc() { "$INIT_BIN" service --shim "$SHIM" --address "$T/c.sock" --namespace "$NS" --dir "$SVC" --log-dir "$T/log" "$@"; }

ok "kiln-service start hello" svc start hello
for _ in $(seq 50); do [ -s "$T/out/ran" ] && break; sleep 0.1; done
ok "the service ran (wrote a file through its bind mount)" grep -q started "$T/out/ran"
ok "runtime.json mkdir was done" test -d "$T/made-by-runtime"
out=$(svc list)
echo "$out" | sed 's/^/# /'
ok "list shows hello running" grep -Eq '^hello +running +[0-9]+' <<<"$out"
ok "stdout went to NAME.out.log" grep -q to-stdout "$T/log/hello.out.log"
ok "stderr went to NAME.log" grep -q to-stderr "$T/log/hello.log"
ok "ctr agrees" bash -c "ctr --address '$T/c.sock' -n '$NS' task ls | grep -q 'hello.*RUNNING'"
ok "containerd runs it under the $SHIM shim" bash -c \
	"ctr --address '$T/c.sock' -n '$NS' containers info hello | grep -q '\"Name\": \"io.containerd.$SHIM.v[12]\"'"
ok "ctr task ps lists its process" bash -c "ctr --address '$T/c.sock' -n '$NS' task ps hello | grep -Eq '^[0-9]+ '"

svc restart hello 2>&1 | sed "s/^/# /"
ok "kiln-service restart hello" svc restart hello
for _ in $(seq 50); do [ "$(grep -c started "$T/out/ran")" -ge 2 ] && break; sleep 0.1; done
ok "restart ran the service again" test "$(grep -c started "$T/out/ran")" -ge 2
ok "start again replaces the running one" svc start hello

ok "kiln-service stop hello" svc stop hello
out=$(svc list)
ok "list no longer shows hello" bash -c "! grep -q '^hello' <<<'$out'"
ok "stop undid the runtime mounts" bash -c "! mountpoint -q '$SVC/hello/rootfs'"
ok "ctr sees no container" bash -c "! ctr --address '$T/c.sock' -n '$NS' containers ls -q | grep -q hello"

mkdir -p "$SVC/other/rootfs"
make_busybox_rootfs "$SVC/other/rootfs"
write_config "$SVC/other" '["/bin/sh", "-c", "trap \"exit 0\" TERM; sleep 1000 & wait"]' \
	', {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}'
# terminals for `ctr task exec -t`: /dev/ptmx and the ptys
sed -i 's|"minor": 1, "access": "rw"}|&, {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"}, {"allow": true, "type": "c", "major": 136, "access": "rwm"}|' "$SVC/other/config.json"
if [ "$SHIM" = runc ]; then
	# Services share one runc shim by default (io.containerd.runc.v2.group);
	# --shim-per-service gives each its own.
	shims() { pgrep -f "containerd-shim-runc-v2 -namespace $NS" | wc -l; }
	svc start hello && svc start other
	ok "two services, one shared shim" test "$(shims)" -eq 1
	svc stop hello && svc stop other
	svc --shim-per-service start hello && svc --shim-per-service start other
	ok "--shim-per-service: one shim each" test "$(shims)" -eq 2
	svc stop hello && svc stop other
else
	# kiln's shim: one small process per task, gone once it is deleted.
	shims() { pgrep -f "containerd-shim-kiln-v1 -namespace $NS" | wc -l; }
	svc start hello && svc start other
	ok "two services, a kiln shim each" test "$(shims)" -eq 2
	ok "a kiln shim is small (RSS under 4 MB)" bash -c \
		"for p in \$(pgrep -f 'containerd-shim-kiln-v1 -namespace $NS'); do [ \$(awk '/VmRSS/ {print \$2}' /proc/\$p/status) -lt 4096 ] || exit 1; done"
	svc stop hello && svc stop other
	for _ in $(seq 50); do [ "$(shims)" -eq 0 ] && break; sleep 0.1; done
	ok "the shims exit after the tasks are deleted" test "$(shims)" -eq 0
	ok "and leave no socket behind" bash -c "! ls '$T'/s/kiln-* 2>/dev/null | grep -q ."
	# ctr's own calls: pause and resume through the runtime, kill, wait.
	svc start other
	c() { ctr --address "$T/c.sock" -n "$NS" "$@"; }
	# Update (no ctr verb in 1.6): straight to the shim's ttrpc socket, a pids
	# limit as the OCI LinuxResources JSON, then read from the task's cgroup.
	ttrpc_update() {
		python3 - "$1" "$2" "$3" <<'PY'
import socket, struct, sys
def v(n):
    out = b""
    while True:
        b, n = n & 0x7f, n >> 7
        out += bytes([b | (0x80 if n else 0)])
        if not n: return out
def f(num, data): return v(num << 3 | 2) + v(len(data)) + data
sock, task, res = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
anyv = f(1, b"types.containerd.io/opencontainers/runtime-spec/1/LinuxResources") + f(2, res)
req = f(1, b"containerd.task.v2.Task") + f(2, b"Update") + f(3, f(1, task) + f(2, anyv))
s = socket.socket(socket.AF_UNIX); s.connect(sock)
s.sendall(struct.pack(">IIBB", len(req), 1, 1, 0) + req)
hdr = s.recv(10); n = struct.unpack(">I", hdr[:4])[0]; body = b""
while len(body) < n: body += s.recv(n - len(body))
sys.exit(1 if body[:1] == b"\x0a" else 0)  # field 1, a Status: an error
PY
	}
	shim_sock=$(ls "$T"/s/kiln-* | head -1)
	tpid=$(c task ls | awk '$1 == "other" {print $2}')
	cg=$(awk -F: '$2 == "pids" || $2 == "" {print $3; exit}' "/proc/$tpid/cgroup")
	pmax=/sys/fs/cgroup/pids$cg/pids.max
	[ -e "$pmax" ] || pmax=/sys/fs/cgroup$cg/pids.max
	ok "Update through the kiln shim (resources, no exec id)" ttrpc_update "$shim_sock" other '{"pids": {"limit": 77}}'
	ok "the runtime applied it to the task's cgroup" grep -qx 77 "$pmax"
	ok "ctr task pause" c task pause other
	ok "ctr sees it paused" bash -c "ctr --address '$T/c.sock' -n '$NS' task ls | grep -q 'other.*PAUSED'"
	ok "ctr task resume" c task resume other
	ok "ctr sees it running again" bash -c "ctr --address '$T/c.sock' -n '$NS' task ls | grep -q 'other.*RUNNING'"
	# ctr task exec: a process beside the service's, its stdio through
	# ctr's FIFOs, its exit status; stdin to EOF; a terminal and its size.
	out=$(timeout 60 ctr --address "$T/c.sock" -n "$NS" task exec --exec-id e1 other \
		sh -c 'echo exec-out; echo exec-err >&2; exit 3' 2>"$T/exec.err"); rc=$?
	ok "ctr task exec: its stdout" grep -qx exec-out <<<"$out"
	ok "its stderr" grep -qx exec-err "$T/exec.err"
	ok "its exit status" test "$rc" -eq 3
	out=$(printf 'line1\nline2\n' | timeout 60 ctr --address "$T/c.sock" -n "$NS" task exec --exec-id e2 other cat)
	ok "exec'd cat reads stdin to its end" test "$out" = "$(printf 'line1\nline2')"
	out=$(timeout 60 script -qec "stty rows 33 cols 101; ctr --address '$T/c.sock' -n '$NS' task exec -t --exec-id e3 other sh -c 'tty; sleep 1; stty size; exit 4'; echo rc=\$?" /dev/null | tr -d '\r\0')
	echo "$out" | sed 's/^/# exec -t: /'
	ok "exec -t: the process has a terminal" grep -q '/dev/pts/[0-9]' <<<"$out"
	ok "of the client's size (ResizePty)" grep -q '33 101$' <<<"$out"
	ok "and its exit status" grep -qx 'rc=4' <<<"$out"
	nps() { c task ps other | grep -c '^[0-9]'; }
	n0=$(nps)
	c task exec --detach --exec-id bg other sleep 600
	ok "a detached exec shows in ctr task ps, with its exec id" bash -c \
		"ctr --address '$T/c.sock' -n '$NS' task ps other | grep -q 'ExecID:bg'"
	ok "an exec id in use is refused" bash -c \
		"! ctr --address '$T/c.sock' -n '$NS' task exec --exec-id bg other true 2>/dev/null"
	ok "ctr task kill --exec-id" c task kill --exec-id bg other
	for _ in $(seq 50); do [ "$(nps)" -eq "$n0" ] && break; sleep 0.1; done
	ok "the exec'd process is gone, the service still runs" bash -c \
		"[ $(nps) -eq $n0 ] && ctr --address '$T/c.sock' -n '$NS' task ls | grep -q 'other.*RUNNING'"
	out=$(timeout 60 ctr --address "$T/c.sock" -n "$NS" task exec --exec-id e4 other /no/such 2>&1); rc=$?
	ok "an exec the runtime cannot start fails, with the runtime's message" \
		bash -c "[ $rc -ne 0 ] && grep -q 'no/such' <<<'$out'"
	ok "ctr task kill (TERM, which it traps)" c task kill other
	for _ in $(seq 50); do c task ls | grep -q 'other.*STOPPED' && break; sleep 0.1; done
	ok "it stopped with status 0" bash -c "ctr --address '$T/c.sock' -n '$NS' task ls | grep -q 'other.*STOPPED'"
	out=$(svc list)
	ok "list shows exit status 0" grep -Eq '^other +stopped +[0-9]+ \(exit status 0\)' <<<"$out"
	svc stop other
	# A runtime failure reaches the caller: a command that does not exist.
	mkdir -p "$SVC/broken/rootfs"
	make_busybox_rootfs "$SVC/broken/rootfs"
	write_config "$SVC/broken" '["/no/such/command"]'
	out=$(svc start broken 2>&1); rc=$?
	echo "$out" | sed 's/^/# /'
	ok "a service the runtime cannot create fails to start" test "$rc" -ne 0
	ok "with the runtime's own message" grep -q "no/such/command" <<<"$out"
	svc stop broken >/dev/null 2>&1
	# `ctr run` of an image: containerd's snapshotter hands the shim the
	# rootfs as mounts, and the task's stdio are ctr's FIFOs.  The image is
	# busybox, made with umoci.
	if command -v umoci >/dev/null; then
		umoci init --layout "$T/oci" >/dev/null && umoci new --image "$T/oci:bb" >/dev/null
		mkdir -p "$T/bbfs/bin"
		cp /bin/busybox "$T/bbfs/bin/"
		for a in sh echo ls tty; do ln -s busybox "$T/bbfs/bin/$a"; done
		umoci insert --image "$T/oci:bb" "$T/bbfs" / >/dev/null 2>&1
		(cd "$T/oci" && tar cf "$T/bb.tar" .)
		c image import --index-name kiln/bb:1 "$T/bb.tar" >/dev/null 2>&1
		out=$(timeout 60 ctr --address "$T/c.sock" -n "$NS" run --rm --runtime io.containerd.kiln.v1 \
			kiln/bb:1 img1 sh -c 'echo out-$((6 * 7)); ls /bin/busybox; echo err-x >&2; exit 5' 2>"$T/run.err")
		rc=$?
		echo "$out" | sed 's/^/# ctr run: /'
		ok "ctr run of an image under the kiln shim: its stdout" grep -qx 'out-42' <<<"$out"
		ok "its rootfs is the image's (snapshotter mounts)" grep -qx '/bin/busybox' <<<"$out"
		ok "its stderr" grep -qx 'err-x' "$T/run.err"
		ok "its exit status" test "$rc" -eq 5
		ok "--rm left no container" bash -c "! ctr --address '$T/c.sock' -n '$NS' containers ls -q | grep -q img1"
		# ctr run -t: the task's own process on a terminal (Create with one).
		out=$(timeout 60 script -qec "ctr --address '$T/c.sock' -n '$NS' run --rm -t --runtime io.containerd.kiln.v1 kiln/bb:1 img2 sh -c 'tty; echo tty-out; exit 6'; echo rc=\$?" /dev/null | tr -d '\r')
		echo "$out" | sed 's/^/# ctr run -t: /'
		ok "ctr run -t: the task runs on a terminal" grep -q '/dev/pts/[0-9]' <<<"$out"
		ok "its output comes through the terminal, and its exit status" \
			bash -c "grep -q 'tty-out' <<<'$out' && grep -q 'rc=6' <<<'$out'"
	fi
fi

# A service that exits is reported (containerd's /tasks/exit events).
mkdir -p "$SVC/quitter/rootfs"
make_busybox_rootfs "$SVC/quitter/rootfs"
write_config "$SVC/quitter" '["/bin/sh", "-c", "sleep 1; exit 7"]'
svc watch >"$T/watch" 2>&1 &
wpid=$!
sleep 0.5
ok "start a service that exits" svc start quitter
for _ in $(seq 100); do grep -q quitter "$T/watch" && break; sleep 0.1; done
kill $wpid 2>/dev/null
sed 's/^/# watch: /' "$T/watch"
ok "kiln-service watch reports its exit status" grep -qx 'quitter exited (exit status 7)' "$T/watch"
out=$(svc list)
ok "list shows it stopped with its status" grep -Eq '^quitter +stopped +[0-9]+ \(exit status 7\)' <<<"$out"
ok "stop cleans it up" svc stop quitter

# Errors name what failed.
out=$(svc start nosuch 2>&1); rc=$?
ok "starting a missing bundle fails" test "$rc" -ne 0
ok "and says which" grep -q "nosuch" <<<"$out"
out=$("$INIT_BIN" service --address "$T/nosock" list 2>&1); rc=$?
ok "no containerd: clear error" bash -c "[ $rc -ne 0 ] && grep -q 'connect to' <<<'$out'"
done_testing
