# Start-up shared by the registry tests (tests/integration/registry_*.sh):
# the tools they need, the fixture images and the fault-injecting proxy in
# front of a registry.  Source it after tests/lib.sh; it sources
# tests/tools/registry_env.sh (start_registry, free_port, wait_port, sk).
source "$TOP/tests/tools/registry_env.sh"

# registry_setup TOOL...: skips the script unless every TOOL and the kiln
# binary are there, then makes the fixture images (L: their OCI layout); a
# failure is a failed point and the end of the script.
registry_setup() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null || skip_all "$t not installed"
	done
	[ -x "$KILN" ] || skip_all "no kiln binary"
	bash "$TOP/tests/fixtures/mkimages.sh" "$T/fx" >/dev/null 2>&1 || { fail "fixtures"; done_testing; }
	L=$T/fx/layout
}

# registry_proxy IMAGE...: pushes each IMAGE of $L to the registry $REG as
# kiln/IMAGE:1, then starts tests/tools/fault_proxy.py in front of the
# registry (PPORT its port, P its host:port).
registry_proxy() {
	local i
	for i in "$@"; do
		"$KILN" -q push --cache "$L" "$i" "$REG/kiln/$i:1" || fail "push $i"
	done
	PPORT=$(free_port)
	python3 "$TOP/tests/tools/fault_proxy.py" "$PPORT" "$REG" &
	at_exit "kill $!"
	wait_port "$PPORT" || { fail "proxy"; done_testing; }
	P=127.0.0.1:$PPORT
}
