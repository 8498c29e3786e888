# Output formats (issue 7): the writer test driver and `make bench-formats`.
# The driver links the format objects and the few library modules they use
# directly, so it builds even while an unrelated module is mid-edit.
FORMATS_OBJS = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out output-formats/formats.c output-formats/tar.c output-formats/initrd.c output-formats/outputs.c,$(wildcard output-formats/*.c)) \
	assembler/error.c assembler/util.c assembler/strbuf.c assembler/log.c assembler/sha256.c)

$(BUILD)/tests/formats-run: tests/formats-run.c $(FORMATS_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes -o $@ $^ $(LDLIBS)

all: $(BUILD)/tests/formats-run

.PHONY: bench-formats
bench: bench-formats
bench-formats: $(BUILD)/tests/formats-run
	tests/bench/formats.sh
