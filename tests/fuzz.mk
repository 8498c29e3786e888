# libFuzzer targets (`make fuzz`): each tests/fuzz/fuzz_*.c is linked with
# the library sources it needs, built with clang -fsanitize=fuzzer,address,
# undefined into build-fuzz/, and run for $(FUZZ_SECONDS) seconds on a seed
# corpus (the manifest corpus of tests/manifests, reference strings).
# `make fuzz FUZZ_SECONDS=30` for a quick run; `make fuzz-build` only builds.
FUZZ_SECONDS ?= 600
FUZZ_DIR := build-fuzz
FUZZ_CC := clang
FUZZ_FLAGS := -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -D_GNU_SOURCE -Iassembler $(PKG_CFLAGS)
FUZZ_BASE := assembler/util.c assembler/error.c assembler/strbuf.c assembler/log.c \
	assembler/sha256.c assembler/ref.c
FUZZ_MANIFEST_SRCS := $(FUZZ_BASE) assembler/manifest.c assembler/manifest_config.c \
	assembler/manifest_dump.c assembler/manifest_yaml.c
FUZZ_TARGETS := $(FUZZ_DIR)/fuzz_manifest $(FUZZ_DIR)/fuzz_ref

.PHONY: fuzz fuzz-build fuzz-manifest fuzz-ref

$(FUZZ_DIR)/fuzz_manifest: tests/fuzz/fuzz_manifest.c $(FUZZ_MANIFEST_SRCS) $(wildcard assembler/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_manifest.c $(FUZZ_MANIFEST_SRCS) $(PKG_LIBS)

$(FUZZ_DIR)/fuzz_ref: tests/fuzz/fuzz_ref.c $(FUZZ_BASE) $(wildcard assembler/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_ref.c $(FUZZ_BASE) $(PKG_LIBS)

fuzz-build: $(FUZZ_TARGETS)

# Seeds are copied into a working corpus so the tree is never written to.
fuzz-manifest: $(FUZZ_DIR)/fuzz_manifest
	@mkdir -p $(FUZZ_DIR)/corpus-manifest
	@cp tests/manifests/good/*.yml tests/manifests/bad/*.yml $(FUZZ_DIR)/corpus-manifest/
	$(FUZZ_DIR)/fuzz_manifest -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 -dict=tests/fuzz/manifest.dict \
		-artifact_prefix=$(FUZZ_DIR)/crash-manifest- $(FUZZ_DIR)/corpus-manifest

fuzz-ref: $(FUZZ_DIR)/fuzz_ref
	@mkdir -p $(FUZZ_DIR)/corpus-ref
	@i=0; for r in alpine alpine:3.19 docker.io/library/alpine:latest \
		127.0.0.1:5000/kiln/getty:v1 localhost/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
		'[::1]:5000/a/b:c' linuxkit/kernel:6.6.71 foo_bar/baz-qux.x:TAG; do \
		i=$$((i+1)); printf '%s' "$$r" >$(FUZZ_DIR)/corpus-ref/seed$$i; done
	$(FUZZ_DIR)/fuzz_ref -max_total_time=$(FUZZ_SECONDS) -max_len=1024 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-ref- $(FUZZ_DIR)/corpus-ref

fuzz: fuzz-manifest fuzz-ref
