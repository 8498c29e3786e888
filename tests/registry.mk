# The registry client's benchmark: `make bench-pull` (part of `make bench`).
.PHONY: bench-pull
bench: bench-pull
bench-pull: $(BUILD)/kiln
	KILN=$(CURDIR)/$(BUILD)/kiln bash tests/bench/registry_pull.sh
