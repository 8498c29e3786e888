# `kiln run` (issue 6 item 3): `make bench-run` (part of `make bench`) prints
# the KVM probe's cost, the console supervisor's overhead against plain QEMU,
# and a TCG boot of a tiny kernel+initrd to its marker.
.PHONY: bench-run
bench: bench-run
bench-run: $(BUILD)/kiln
	KILN=$(abspath $(BUILD)/kiln) tests/bench/run.sh
