# Manifest parser benchmark (`make bench` runs it with the others).
.PHONY: bench-manifest
bench: bench-manifest
bench-manifest: $(BUILD)/kiln
	KILN=$(abspath $(BUILD)/kiln) tests/bench/manifest.sh
