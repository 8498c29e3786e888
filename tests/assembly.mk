# Assembly (issue 4): `make bench-assemble` (part of `make bench`) prints the
# kernel+initrd build figures: median wall time and peak RSS of 5 warm
# builds of a ~400 MB kernel-modules manifest, gzip -6's time for the same
# bytes on one core, and the rebuild time after a `files` change.
.PHONY: bench-assemble
bench: bench-assemble
bench-assemble: all
	KILN=$(CURDIR)/$(BUILD)/kiln tests/bench/assemble.sh
