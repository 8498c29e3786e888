# The store's extra make rules:
#   fuzz_image and fuzz_import, run by `make fuzz` (alone: `make fuzz-image
#   FUZZ_SECONDS=60`, `make fuzz-import`);
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

FUZZ_IMPORT_SRCS := $(FUZZ_IMAGE_SRCS) assembler/store_archive.c

$(FUZZ_DIR)/fuzz_import: tests/fuzz/fuzz_import.c $(FUZZ_IMPORT_SRCS) $(wildcard assembler/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_import.c $(FUZZ_IMPORT_SRCS) $(PKG_LIBS)

.PHONY: fuzz-image fuzz-import bench-cache
fuzz-build: $(FUZZ_DIR)/fuzz_image $(FUZZ_DIR)/fuzz_import
fuzz: fuzz-image fuzz-import
fuzz-import: $(FUZZ_DIR)/fuzz_import
	@mkdir -p $(FUZZ_DIR)/corpus-import
	@cp tests/fuzz/corpus_import/* $(FUZZ_DIR)/corpus-import/
	$(FUZZ_DIR)/fuzz_import -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-import- $(FUZZ_DIR)/corpus-import

fuzz-image: $(FUZZ_DIR)/fuzz_image
	@mkdir -p $(FUZZ_DIR)/corpus-image
	@cp tests/fuzz/corpus_image/* $(FUZZ_DIR)/corpus-image/
	$(FUZZ_DIR)/fuzz_image -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-image- $(FUZZ_DIR)/corpus-image

bench: bench-cache
bench-cache: $(BUILD)/kiln
	KILN=$(CURDIR)/$(BUILD)/kiln bash tests/bench/cache.sh
