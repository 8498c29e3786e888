#!/usr/bin/env bash
# Boots Debian's kernel under QEMU (TCG) with an initrd around kiln's init,
# real runc and containerd: the onboot container's output is on the console,
# both services run (one lists them with kiln-service through containerd),
# the hardware's modules were loaded (virtio-net → hostname from its MAC; the
# ACPI button), and system_powerdown runs the onshutdown container and powers
# the VM off cleanly.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/initlib.sh"
init_boot_start "${KILN_BOOT_APPEND:-}"
ok "init starts" wait_console "$C" 'kiln-init: BENCH init-start' 60
ok "the root left the RAM root" wait_console "$C" "(moved|bound) the root from RAM to tmpfs" 30
ok "modules for the hardware loaded" wait_console "$C" 'loaded [1-9][0-9]* modules' 30
ok "hostname from the virtio NIC's MAC" wait_console "$C" 'hostname kiln-525400123456' 30
ok "the power button was found" wait_console "$C" 'power button: /dev/input/event' 30
ok "/etc/init.d scripts ran" wait_console "$C" '^INITD-MARKER from /etc/init.d/010-hello' 30
ok "onboot output on the console, prefixed" wait_console "$C" '000-hello: ONBOOT-MARKER from kiln-test' 60
ok "onboot container exited 0" wait_console "$C" '000-hello: exited \(exit status 0\)' 30
ok "a failing onboot container is reported" wait_console "$C" '001-fails: exited \(exit status 4\)' 60
ok "and the boot carries on" wait_console "$C" 'BENCH onboot-done \(1 failed\)' 30
ok "service hello running" wait_console "$C" '^SERVICE-RUNNING' 90
ok "all services started" wait_console "$C" 'BENCH services-started \(0 failed\)' 30
ok "kiln-service list inside the VM shows hello running" wait_console "$C" '^hello +running +[0-9]+' 30
ok "and zcheck running" wait_console "$C" '^zcheck +running +[0-9]+' 30
# kiln-service stats: containerd's Tasks.Metrics, answered by kiln's shim from
# the task's cgroup (hello is one process, `sleep`, with no memory limit)
ok "kiln-service stats: hello is 1 process, its CPU time, memory, no limit" wait_console "$C" \
	'^hello +1 +[0-9]+\.[0-9]{3} s +[0-9]+\.[0-9] MiB +max' 30
ok "(and its memory is not nothing)" bash -c "grep -aE '^hello +1 ' '$C' | grep -avq ' 0\.0 MiB'"
ok "the services run under kiln's shim (one socket each)" wait_console "$C" \
	'^SHIM-SOCKETS kiln-[0-9a-f]{16} kiln-[0-9a-f]{16} kiln-[0-9a-f]{16}' 30
ok "a service that exits is reported" wait_console "$C" 'kiln-init: service exiter exited \(exit status 3\)' 30
ok "containerd started before the onboot containers, at nice 10" \
	wait_console "$C" 'containerd started \(pid [0-9]+, at nice 10 until the onboot containers end\)' 10
ok "every containerd thread back at nice 0 once the services run" wait_console "$C" '^CONTAINERD-NICE 0[[:space:]]*$' 30
ok "(and no thread left at another)" bash -c "! grep -aq '^CONTAINERD-NICE [^0]' '$C'"
wait_console "$C" 'CHECK-DONE' 10
monitor_cmd "$T/mon" system_powerdown
ok "power button press seen" wait_console "$C" 'power button pressed' 30
ok "onshutdown container ran" wait_console "$C" '000-bye: ONSHUTDOWN-MARKER' 60
ok "init powers off" wait_console "$C" 'kiln-init: power off' 30
for _ in $(seq 300); do kill -0 "$QEMU_PID" 2>/dev/null || break; sleep 0.1; done
ok "QEMU exited (the VM powered off)" bash -c "! kill -0 $QEMU_PID 2>/dev/null"
ok "no kernel panic" bash -c "! grep -q 'Kernel panic' '$C'"
grep -aE 'kiln-init|MARKER|RUNNING|running|FAILING|MiB|^NAME' "$C" | sed 's/^/# /'
done_testing
