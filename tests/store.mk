# The store's extra make rules:
#   fuzz_image, run by `make fuzz` (`make fuzz-image FUZZ_SECONDS=60` alone);
#   `make bench-cache` (part of `make bench`): kiln cache import/export against
#   skopeo copy on a large image.
# Defaults in case tests/fuzz.mk changes; its own settings win.
FUZZ_SECONDS ?= 600
FUZZ_DIR ?= build-fuzz
FUZZ_CC ?= clang
FUZZ_FLAGS ?= -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -Iassembler $(PKG_CFLAGS)
FUZZ_IMAGE_SRCS := assembler/util.c assembler/error.c assembler/strbuf.c assembler/log.c \
	assembler/sha256.c assembler/ref.c assembler/oci.c assembler/store.c assembler/image.c

$(FUZZ_DIR)/fuzz_image: tests/fuzz/fuzz_image.c $(FUZZ_IMAGE_SRCS) $(wildcard assembler/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_image.c $(FUZZ_IMAGE_SRCS) $(PKG_LIBS)

.PHONY: fuzz-image bench-cache
fuzz-build: $(FUZZ_DIR)/fuzz_image
fuzz: fuzz-image
fuzz-image: $(FUZZ_DIR)/fuzz_image
	@mkdir -p $(FUZZ_DIR)/corpus-image
	@cp tests/fuzz/corpus_image/* $(FUZZ_DIR)/corpus-image/
	$(FUZZ_DIR)/fuzz_image -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-image- $(FUZZ_DIR)/corpus-image

bench: bench-cache
bench-cache: $(BUILD)/kiln
	KILN=$(CURDIR)/$(BUILD)/kiln bash tests/bench/cache.sh
