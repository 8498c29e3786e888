#!/usr/bin/env bash
# The docker output format under Debian's real Docker (dockerd started here
# on a private socket and data root): `docker build -` takes the .docker file
# as its context, and `docker run` of the image runs kiln's init in container
# mode: the onboot container to completion, then containerd and a service
# under kiln's shim, `ctr task exec` into it, and `docker stop` ends it with
# exit status 0.  Docker gets every capability of the test's own bounding set
# rather than --privileged, which fails where the host (a container itself)
# lacks one.
source "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip_all "needs root (dockerd)"
DOCKER=/usr/bin/docker
[ -x "$DOCKER" ] && command -v dockerd >/dev/null || skip_all "docker.io not installed"
export KILN_CACHE=${KILN_TEST_CACHE:-$TOP/build/test-cache}

S=$T/docker.sock
dockerd --data-root "$T/root" --exec-root "$T/exec" -H "unix://$S" --pidfile "$T/dockerd.pid" \
	--iptables=false --ip6tables=false --bridge=none >"$T/dockerd.log" 2>&1 &
dpid=$!
img=kiln-docker-test-$$ c=kiln-docker-test-$$
at_exit "'$DOCKER' -H 'unix://$S' rm -f $c; '$DOCKER' -H 'unix://$S' rmi -f $img; kill $dpid; wait $dpid;" \
	"grep ' $T/' /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r umount -l"
d() { "$DOCKER" -H "unix://$S" "$@"; }
dq() { d "$@" >/dev/null; }
for _ in $(seq 100); do d version >/dev/null 2>&1 && break; sleep 0.2; done
if ! d version >/dev/null 2>&1; then
	tail -5 "$T/dockerd.log" | sed 's/^/# dockerd: /'
	skip_all "dockerd did not start here"
fi

cat >"$T/m.yml" <<YML
init:
  - "@pkg:$TOP/pkgs/init"
  - "@pkg:$TOP/pkgs/runc"
  - "@pkg:$TOP/pkgs/containerd"
onboot:
  - name: hello
    image: "@pkg:$TOP/pkgs/poweroff"
    command: ["/bin/sh", "-c", "echo onboot-ran-in-docker"]
services:
  - name: svc
    image: "@pkg:$TOP/pkgs/poweroff"
    command: ["/bin/sh", "-c", "echo service-ran-in-docker; exec sleep 600"]
YML
ok "kiln build -format docker" "$KILN" build -q -format docker -dir "$T" "$T/m.yml"
ok "docker build - takes the .docker file as its context" bash -c \
	"'$DOCKER' -H 'unix://$S' build -q -t $img - <'$T/m.docker' >'$T/build.log' 2>&1"
sed 's/^/# docker build: /' "$T/build.log" | tail -3

# Every capability docker 20.10 knows (0-37) that this process may hold.
bnd=$((16#$(awk '/^CapBnd/ {print $2}' /proc/self/status)))
caps=() i=0
for c in CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP \
	LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER \
	SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE \
	SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP \
	MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ; do
	[ $(((bnd >> i) & 1)) = 1 ] && caps+=(--cap-add "$c")
	i=$((i + 1))
done
ok "docker run (detached)" dq run -d --name "$c" "${caps[@]}" --security-opt seccomp=unconfined \
	--security-opt apparmor=unconfined --security-opt systempaths=unconfined \
	-v /sys/fs/cgroup:/sys/fs/cgroup:rw "$img"
for _ in $(seq 150); do d logs "$c" 2>&1 | grep -q 'BENCH services-started' && break; sleep 0.2; done
d logs "$c" >"$T/logs" 2>&1
sed 's/^/# /' "$T/logs"
ok "init runs in container mode" grep -q 'kiln-init: container mode' "$T/logs"
ok "the onboot container ran, its output on the console" grep -q '000-hello: onboot-ran-in-docker' "$T/logs"
ok "it exited 0" grep -q '000-hello: exited (exit status 0)' "$T/logs"
ok "the service started under containerd, none failed" bash -c \
	"grep -q 'service svc: started' '$T/logs' && grep -q 'services-started (0 failed)' '$T/logs'"
# (the image has no cat: docker cp)
ok "the service's output is in its log in the container" bash -c \
	"'$DOCKER' -H 'unix://$S' cp $c:/var/log/svc.out.log '$T/svc.out.log' && grep -q service-ran-in-docker '$T/svc.out.log'"
ok "ctr in the container lists it running" bash -c \
	"'$DOCKER' -H 'unix://$S' exec $c ctr -n services.linuxkit task ls | grep -q 'svc.*RUNNING'"
d exec "$c" ctr -n services.linuxkit task exec --exec-id t1 svc sh -c "echo exec-in-docker" >"$T/exec.out" 2>&1
sed 's/^/# ctr task exec: /' "$T/exec.out"
ok "ctr task exec into the service (kiln's shim)" grep -qx exec-in-docker "$T/exec.out"
ok "docker stop" dq stop -t 20 "$c"
ok "ends it with exit status 0" test "$(d inspect "$c" --format '{{.State.ExitCode}}')" = 0
d logs "$c" 2>&1 | tail -3 | sed 's/^/# /'
ok "after init's TERM/KILL sequence" bash -c \
	"'$DOCKER' -H 'unix://$S' logs $c 2>&1 | grep -q 'all processes gone'"
done_testing
