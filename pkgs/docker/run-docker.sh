#!/bin/sh
# run-docker [DOCKERD ARGS...]: Docker's containerd, then dockerd, a check
# that `docker info` answers (printed on the console through /dev/kmsg),
# then waits for dockerd.  Extra arguments go to dockerd.  containerd is
# started here rather than by dockerd because dockerd gives its containerd
# only a minute, too little on a loaded emulated machine; dockerd is
# restarted (3 tries) if it fails.
bb=/bin/busybox
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
for try in 1 2 3; do
	/usr/sbin/dockerd --containerd=$sock "$@" >/tmp/dockerd.log 2>&1 &
	d=$!
	i=0
	while ! /usr/bin/docker info >/dev/null 2>&1; do
		kill -0 $d 2>/dev/null || break
		i=$((i + 1))
		[ $i -lt 600 ] || break
		$bb sleep 1
	done
	if /usr/bin/docker info >/dev/null 2>&1; then
		say "docker-check: docker info answers: $(/usr/bin/docker info --format 'server {{.ServerVersion}}, storage {{.Driver}}, cgroup v{{.CgroupVersion}}, {{.Containers}} containers' 2>&1)"
		$bb cat /tmp/dockerd.log >&2
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
