# kiln's PID 1: one static musl binary (build/init/init, also build/init/kiln-service),
# its unit tests (build/tests/test_init_*), `make init`, `make bench-boot`.
INIT_CC ?= musl-gcc
INIT_CFLAGS := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wformat-security -Os -ffunction-sections -fdata-sections -D_GNU_SOURCE -Iinit -Iassembler
# musl-gcc leaves out /usr/include; the kernel's uapi headers (linux/, asm/) are
# reached through a directory of symlinks so glibc's headers stay out.
INIT_KINC := $(BUILD)/init/kinc
INIT_CFLAGS += -isystem $(INIT_KINC)
# No unwind tables: C that never unwinds (no exceptions, no backtrace()); they
# were 10 KB of the 200 KB (200,000 bytes) the init may weigh (issue 6).
INIT_CFLAGS += -fno-asynchronous-unwind-tables -fno-unwind-tables
# Page padding left out (9 KB of the 200 KB): -z noseparate-code, none between
# the headers, the code and the read-only data (binutils pads each to a page);
# -z norelro, none before the GOT, which only a dynamic loader would make
# read-only (a static musl binary never does: its RELRO range stays rw-p).
INIT_LDFLAGS := -static -Wl,--gc-sections -s -Wl,-z,noseparate-code -Wl,-z,norelro
INIT_SRCS := $(wildcard init/*.c) assembler/error.c assembler/util.c
INIT_OBJS := $(INIT_SRCS:%.c=$(BUILD)/init/obj/%.o)
INIT_LIB_OBJS := $(filter-out $(BUILD)/init/obj/init/main.o,$(INIT_OBJS))

.PHONY: init bench-boot
init: $(BUILD)/init/init $(BUILD)/init/kiln-service
all: $(BUILD)/init/init $(BUILD)/init/kiln-service

$(INIT_KINC)/.stamp:
	@mkdir -p $(@D)
	ln -sfn /usr/include/linux $(@D)/linux
	ln -sfn /usr/include/asm-generic $(@D)/asm-generic
	ln -sfn /usr/include/$$(gcc -print-multiarch)/asm $(@D)/asm
	touch $@

$(BUILD)/init/obj/%.o: %.c init/init.h $(INIT_KINC)/.stamp
	@mkdir -p $(@D)
	$(INIT_CC) $(INIT_CFLAGS) -c -o $@ $<

$(BUILD)/init/init: $(INIT_OBJS)
	$(INIT_CC) $(INIT_CFLAGS) $(INIT_LDFLAGS) -o $@ $^
	@if readelf -l $@ | grep -q INTERP; then echo "$@ is not static" >&2; rm -f $@; exit 1; fi

$(BUILD)/init/kiln-service: $(BUILD)/init/init
	cp $< $@

INIT_TEST_SRCS := $(wildcard init/tests/test_init_*.c)
INIT_TEST_BINS := $(INIT_TEST_SRCS:init/tests/%.c=$(BUILD)/tests/%)
$(BUILD)/tests/test_init_%: init/tests/test_init_%.c $(INIT_LIB_OBJS) tests/unit/tap.h
	@mkdir -p $(@D)
	$(INIT_CC) $(INIT_CFLAGS) -Itests/unit -Wno-missing-prototypes -static -o $@ $< $(INIT_LIB_OBJS)
unit: $(INIT_TEST_BINS) $(BUILD)/init/init

bench: bench-boot
bench-boot: $(BUILD)/init/init
	tests/bench/init-boot.sh
