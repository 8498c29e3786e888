# `make pkgs`: builds the kernel image and every system package (pkgs/*/)
# into the image store ($KILN_CACHE, else ~/.cache/kiln) and prints one
# `org/image:tag digest built|cached` line each.  `make pkgs-table` prints the
# README's size table.  Not part of `all`: the first run downloads ~150 MB
# of .debs; `kiln build` builds any `@pkg:` image the store lacks anyway.
PKG_DIRS := kernel $(patsubst %/build.yml,%,$(sort $(wildcard pkgs/*/build.yml)))

.PHONY: pkgs pkgs-table
pkgs: $(BUILD)/kiln
	$(BUILD)/kiln pkg build $(PKG_DIRS)

pkgs-table: pkgs
	KILN=$(BUILD)/kiln pkgs/size-table.sh $(PKG_DIRS)

# libFuzzer target for build.yml and archive paths (see tests/fuzz.mk).
FUZZ_PKG_SRCS := assembler/util.c assembler/error.c assembler/strbuf.c assembler/log.c \
	assembler/sha256.c assembler/ref.c assembler/oci.c assembler/deb.c assembler/elfcheck.c \
	assembler/pkg.c assembler/store.c assembler/manifest_yaml.c
.PHONY: fuzz-pkg
build-fuzz/fuzz_pkg: tests/fuzz/fuzz_pkg.c $(FUZZ_PKG_SRCS) $(wildcard assembler/*.h)
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_pkg.c $(FUZZ_PKG_SRCS) $(PKG_LIBS)

fuzz-pkg: build-fuzz/fuzz_pkg
	@mkdir -p build-fuzz/corpus-pkg
	@cp kernel/build.yml build-fuzz/corpus-pkg/kernel.yml
	@for d in pkgs/*/; do cp $$d/build.yml build-fuzz/corpus-pkg/$$(basename $$d).yml; done
	build-fuzz/fuzz_pkg -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/crash-pkg- build-fuzz/corpus-pkg

fuzz-build: build-fuzz/fuzz_pkg
fuzz: fuzz-pkg
