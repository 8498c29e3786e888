# Assembles a bootable initrd around kiln's init for boot tests and the boot
# benchmark, until `kiln build` makes them (sourced after tests/lib.sh and
# init/tests/hostlib.sh).  Layout as LinuxKit's builder writes it:
#   /init, /sbin/init, /usr/bin/kiln-service,
#   /usr/bin/containerd-shim-kiln-v1                  kiln's init
#   /usr/bin/runc, containerd, containerd-shim-runc-v2 (+ their libraries)
#   /etc/containerd/config.toml
#   /lib/modules/VERSION/… (a few of Debian's modules + depmod's indexes)
#   /etc/init.d/010-hello, /containers/onboot/{000-hello,001-fails}, /containers/onshutdown/000-bye,
#   /containers/services/{exiter,hello,zcheck}

# Copies module NAME.ko and its dependencies from SRC (lib/modules/VERSION) to DST.
_add_module() {
	local src=$1 dst=$2 name=$3 f dep
	f=$(find "$src/kernel" -name "$name.ko" -print -quit)
	[ -n "$f" ] || { echo "bootlib: module $name not found" >&2; return 1; }
	[ -e "$dst/${f#$src/}" ] && return 0
	mkdir -p "$(dirname "$dst/${f#$src/}")"
	cp "$f" "$dst/${f#$src/}"
	for dep in $(modinfo -F depends "$f" | tr ',' ' '); do
		_add_module "$src" "$dst" "$dep" || return 1
	done
}

# _bundle DIR ARGS_JSON [EXTRA_MOUNTS]: a readonly busybox container bundle.
_bundle() {
	local dir=$1 args=$2 extra=${3:-}
	mkdir -p "$dir/rootfs"
	make_busybox_rootfs "$dir/rootfs"
	write_config "$dir" "$args" "$extra"
	local abs=/${dir#$ROOT/}
	cat >"$dir/runtime.json" <<JSON
{"mounts": [{"source": "$abs/rootfs", "destination": "$abs/rootfs", "type": "", "options": ["bind"]}]}
JSON
}

# make_boot_initrd OUT.cpio KERNEL_DIR
make_boot_initrd() {
	local out=$1 kdir=$2 ver bin lib
	ver=$(cat "$kdir/version")
	ROOT=$(mktemp -d "$T/root.XXXXXX")
	mkdir -p "$ROOT"/{sbin,bin,usr/bin,etc/containerd,proc,sys,dev,run,tmp,var,mnt,root}
	cp "$INIT_BIN" "$ROOT/init"
	ln "$ROOT/init" "$ROOT/sbin/init"
	ln "$ROOT/init" "$ROOT/usr/bin/kiln-service"
	ln "$ROOT/init" "$ROOT/usr/bin/containerd-shim-kiln-v1"
	cp /bin/busybox "$ROOT/bin/busybox"
	ln -s busybox "$ROOT/bin/sh"
	# BOOT_RUNTIME=crun installs crun (C, CLI-compatible) as /usr/bin/runc, so
	# init's onboot runner and containerd's runc shim both use it.
	local runtime=/usr/sbin/runc
	[ "${BOOT_RUNTIME:-runc}" = crun ] && runtime=/usr/bin/crun
	for bin in "$runtime" /usr/bin/containerd /usr/bin/containerd-shim-runc-v2; do
		if [ "$bin" = "$runtime" ]; then cp "$bin" "$ROOT/usr/bin/runc"; else cp "$bin" "$ROOT/usr/bin/"; fi
		for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
			mkdir -p "$ROOT$(dirname "$lib")"
			cp -L "$lib" "$ROOT$lib"
		done
	done
	cat >"$ROOT/etc/containerd/config.toml" <<'TOML'
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "/run/containerd/containerd.sock"
TOML
	echo "nameserver 10.0.2.3" >"$ROOT/etc/resolv.conf.real"
	local msrc=$kdir/modules/$ver mdst=$ROOT/lib/modules/$ver m
	mkdir -p "$mdst"
	for m in button evdev overlay veth virtio_pci virtio_net virtio_blk virtio_console; do
		_add_module "$msrc" "$mdst" "$m" || return 1
	done
	cp "$msrc"/modules.order "$msrc"/modules.builtin* "$mdst/" 2>/dev/null
	depmod -b "$ROOT" "$ver" || return 1

	_bundle "$ROOT/containers/onboot/000-hello" \
		'["/bin/sh", "-c", "echo ONBOOT-MARKER from $(hostname)"]'
	# BOOT_WITH_FAILURE=0 (the benchmark) leaves out the failing onboot container.
	[ "${BOOT_WITH_FAILURE:-1}" = 1 ] &&
		_bundle "$ROOT/containers/onboot/001-fails" '["/bin/sh", "-c", "echo FAILING-ONBOOT; exit 4"]'
	mkdir -p "$ROOT/etc/init.d"
	# BOOT_WITH_INITD=0 leaves /etc/init.d empty (init then may create the
	# first onboot container while the modules load)
	if [ "${BOOT_WITH_INITD:-1}" = 1 ]; then
		printf '#!/bin/sh\necho INITD-MARKER from $0\n' >"$ROOT/etc/init.d/010-hello"
		chmod +x "$ROOT/etc/init.d/010-hello"
	fi
	_bundle "$ROOT/containers/onshutdown/000-bye" '["/bin/sh", "-c", "echo ONSHUTDOWN-MARKER"]'
	local console=', {"destination": "/dev/console", "type": "bind", "source": "/dev/console", "options": ["bind"]}'
	_bundle "$ROOT/containers/services/hello" \
		'["/bin/sh", "-c", "echo SERVICE-RUNNING >/dev/console; exec sleep 100000"]' "$console"
	_bundle "$ROOT/containers/services/exiter" '["/bin/sh", "-c", "sleep 2; exit 3"]'
	_bundle "$ROOT/containers/services/zcheck" \
		'["/bin/sh", "-c", "sleep 1; /bin/kiln-service list >/dev/console 2>&1; /bin/kiln-service stats >/dev/console 2>&1; echo SHIM-SOCKETS $(ls /run/containerd/s) >/dev/console; echo RUNC-STATE $(ls -a /hostrun/runc) >/dev/console; for d in /hostproc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = containerd ] && cat $d/task/*/stat; done | busybox awk \"{sub(/.*[)] /, \\\"\\\"); print \\\"CONTAINERD-NICE\\\", \\$17}\" | busybox sort -u >/dev/console; echo CHECK-DONE >/dev/console; exec sleep 100000"]' \
		"$console"', {"destination": "/bin/kiln-service", "type": "bind", "source": "/usr/bin/kiln-service", "options": ["bind", "ro"]}, {"destination": "/run/containerd", "type": "bind", "source": "/run/containerd", "options": ["rbind"]}, {"destination": "/hostproc", "type": "bind", "source": "/proc", "options": ["rbind", "ro"]}, {"destination": "/hostrun", "type": "bind", "source": "/run", "options": ["rbind", "ro"]}'
	touch "$ROOT/containers/services/zcheck/rootfs/bin/kiln-service"
	mkdir -p "$ROOT/containers/services/zcheck/rootfs/run/containerd" "$ROOT/containers/services/zcheck/rootfs/hostproc" "$ROOT/containers/services/zcheck/rootfs/hostrun"
	(cd "$ROOT" && find . | sort | cpio --quiet -o -H newc -R 0:0) >"$out"
}

# qemu_boot INITRD KERNEL_DIR CONSOLE_FILE MONITOR_SOCKET [APPEND]: starts QEMU
# (TCG) in the background; sets QEMU_PID.  BOOT_KERNEL overrides the kernel.
# A virtio RNG as `kiln run qemu` (and LinuxKit's runner) gives one: without
# it the kernel's CRNG is ready only ~1-2.5 s into the boot and dhcpcd blocks
# in getrandom(2) until then.
qemu_boot() {
	local initrd=$1 kdir=$2 console=$3 mon=$4 append=${5:-}
	qemu-system-x86_64 -accel tcg -m 1024 -smp "${SMP:-1}" -display none -no-reboot \
		-kernel "${BOOT_KERNEL:-$kdir/vmlinuz}" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 $append" \
		-nic user,model=virtio-net-pci,mac=52:54:00:12:34:56 \
		-object rng-random,id=rng0,filename=/dev/urandom -device virtio-rng-pci,rng=rng0 \
		-serial "file:$console" -monitor "unix:$mon,server,nowait" ${QEMU_EXTRA:-} 2>"$console.qemu" &
	QEMU_PID=$!
}

# wait_console FILE REGEX SECONDS: waits until FILE has a line matching REGEX.
wait_console() {
	local f=$1 re=$2 n=$(($3 * 10))
	while [ $n -gt 0 ]; do
		grep -Eq "$re" "$f" 2>/dev/null && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# monitor_cmd SOCKET COMMAND: one QEMU human-monitor command.
monitor_cmd() {
	python3 - "$1" "$2" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall((sys.argv[2] + "\n").encode())
time.sleep(0.3)
s.close()
PY
}
