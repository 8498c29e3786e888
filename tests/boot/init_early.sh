#!/usr/bin/env bash
# With a second CPU, runc, and nothing LinuxKit runs before the onboot
# containers (no /etc/init.d script, no volume), init creates the first onboot
# container while the modules load and starts it once they are in: its
# process never runs before the hardware is probed.  The rest of the boot is
# as usual: the next onboot container runs in turn, the early one is deleted,
# the services start.
source "$(dirname "$0")/../lib.sh"
source "$TOP/tests/initlib.sh"
export SMP=2 BOOT_WITH_INITD=0
init_boot_start "kiln.debug"
ok "init starts" wait_console "$C" 'kiln-init: BENCH init-start' 60
ok "the first onboot container is created while the hardware is probed" \
	wait_console "$C" '000-hello: starting \(created while the hardware is probed\)' 60
ok "modules loaded" wait_console "$C" 'loaded [1-9][0-9]* modules' 60
ok "it is started after that" wait_console "$C" '000-hello: runc start \(pid [0-9]+\)' 60
line() { grep -an -m1 -E "$1" "$C" | cut -d: -f1; }
ok "created before the modules were in, started after" \
	test "$(line 'created while the hardware')" -lt "$(line 'loaded [1-9][0-9]* modules')" -a \
	"$(line 'loaded [1-9][0-9]* modules')" -lt "$(line '000-hello: runc start')"
ok "its output on the console (its UTS namespace has the config's hostname)" \
	wait_console "$C" '000-hello: ONBOOT-MARKER from kiln-test' 60
ok "it exited 0" wait_console "$C" '000-hello: exited \(exit status 0\)' 30
ok "the next onboot container ran in turn (and failed, as it should)" \
	wait_console "$C" '001-fails: exited \(exit status 4\)' 60
ok "onboot done, one failure" wait_console "$C" 'BENCH onboot-done \(1 failed\)' 30
ok "services started" wait_console "$C" 'BENCH services-started \(0 failed\)' 60
ok "runc's state of the onboot containers is gone" wait_console "$C" '^RUNC-STATE \. \.\.[[:space:]]*$' 60
wait_console "$C" 'CHECK-DONE' 30
ok "no warning from init" bash -c "! grep -a 'kiln-init: warning' '$C'"
grep -aE 'kiln-init|MARKER|RUNC-STATE' "$C" | sed 's/^/# /'
done_testing
