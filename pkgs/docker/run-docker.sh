#!/bin/sh
# run-docker [--run-check] [DOCKERD ARGS...]: Docker's containerd, then
# dockerd, a check that `docker info` answers (printed on the console through
# /dev/kmsg), then waits for dockerd.  Extra arguments go to dockerd.  With
# --run-check, a container also runs once dockerd answers: an image made
# here from this package's busybox (docker import: no registry needed), run
# with no network, its output printed on the console.  containerd is
# started here rather than by dockerd because dockerd gives its containerd
# only a minute, too little on a loaded emulated machine; dockerd is
# restarted (3 tries) if it fails.
bb=/bin/busybox
check=
[ "${1:-}" = --run-check ] && { check=1; shift; }
say() { echo "$*"; echo "$*" >/dev/kmsg 2>/dev/null; }
sock=/run/docker/containerd/containerd.sock
$bb mkdir -p /run/docker/containerd /var/lib/docker/containerd
$bb cat >/tmp/containerd.toml <<EOT
version = 2
root = "/var/lib/docker/containerd/daemon"
state = "/run/docker/containerd/daemon"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
EOT
/usr/bin/containerd --config /tmp/containerd.toml >/tmp/containerd.log 2>&1 &
c=$!
d=
trap 'kill $d $c 2>/dev/null; wait; exit 0' TERM INT
i=0
while [ ! -S $sock ]; do
	kill -0 $c 2>/dev/null || { say "docker-check: containerd exited"; $bb tail -n 5 /tmp/containerd.log >&2; exit 1; }
	i=$((i + 1))
	[ $i -lt 3000 ] || { say "docker-check: containerd has no socket after 10 minutes"; exit 1; }
	$bb sleep 0.2
done
run_check() {
	local out t0 t1 t2
	t0=$($bb date +%s)
	if ! $bb tar -C / -c bin/busybox 2>/dev/null | /usr/bin/docker import -c 'ENTRYPOINT ["/bin/busybox"]' - kiln/busybox-check >/dev/null 2>/tmp/check.log; then
		say "docker-check: container FAILED: docker import: $($bb tail -n 1 /tmp/check.log)"
		return
	fi
	t1=$($bb date +%s)
	if out=$(/usr/bin/docker run --rm --network none --name kiln-check kiln/busybox-check \
		sh -c 'echo "hello from container $(/bin/busybox hostname) on $0"' "$($bb hostname)" 2>&1); then
		t2=$($bb date +%s)
		say "docker-check: container ran: $out (import $((t1 - t0)) s, run $((t2 - t1)) s)"
	else
		say "docker-check: container FAILED: $(echo "$out" | $bb tail -n 1)"
	fi
}
for try in 1 2 3; do
	/usr/sbin/dockerd --containerd=$sock "$@" >/tmp/dockerd.log 2>&1 &
	d=$!
	# The docker CLI is asked only once dockerd logs that its API listens:
	# starting the CLI every second meanwhile costs seconds of CPU under
	# emulation, taken from dockerd's own start.
	i=0 info=
	while kill -0 $d 2>/dev/null; do
		if $bb grep -q 'API listen on' /tmp/dockerd.log; then
			info=$(/usr/bin/docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}, {{.Containers}} containers' 2>/dev/null) && break
		fi
		i=$((i + 1))
		[ $i -lt 1200 ] || break
		$bb sleep 0.5
	done
	if [ -n "$info" ]; then
		say "docker-check: docker info answers: $info"
		$bb cat /tmp/dockerd.log >&2
		[ -z "$check" ] || run_check
		wait $d
		say "docker-check: dockerd exited ($?)"
		exit 1
	fi
	kill $d 2>/dev/null
	wait $d
	say "docker-check: dockerd try $try failed:"
	$bb tail -n 3 /tmp/dockerd.log | while IFS= read -r l; do say "docker-check:   $l"; done
done
exit 1
