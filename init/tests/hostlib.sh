# Helpers for init's host-side and boot tests (sourced after tests/lib.sh).

INIT_BIN=${INIT_BIN:-$TOP/${KILN_BUILD:-build}/init/init}

# make_busybox_rootfs DIR: a root filesystem with busybox-static and the
# applets the tests use.
make_busybox_rootfs() {
	local r=$1 a
	mkdir -p "$r/bin" "$r/proc" "$r/dev" "$r/sys" "$r/tmp" "$r/out" "$r/etc" "$r/run"
	cp /bin/busybox "$r/bin/busybox"
	for a in sh echo sleep cat ls mkdir touch date poweroff ip hostname true false tty stty; do
		ln -sf busybox "$r/bin/$a"
	done
}

# write_config DIR ARGS_JSON [EXTRA_MOUNTS_JSON] [READONLY]: an OCI runtime
# spec as kiln's builder writes it (root.path relative).
write_config() {
	local dir=$1 args=$2 extra=${3:-} ro=${4:-true}
	cat >"$dir/config.json" <<JSON
{
    "ociVersion": "1.0.2",
    "process": {
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
        "args": $args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "capabilities": {
            "bounding": ["CAP_SYS_BOOT", "CAP_KILL"],
            "effective": ["CAP_SYS_BOOT", "CAP_KILL"],
            "permitted": ["CAP_SYS_BOOT", "CAP_KILL"]
        }
    },
    "root": {"path": "rootfs", "readonly": $ro},
    "hostname": "kiln-test",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}${extra}
    ],
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
        "resources": {"devices": [{"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rw"}]}
    }
}
JSON
}
