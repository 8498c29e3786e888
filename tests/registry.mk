# The registry client's benchmark: `make bench-pull` (part of `make bench`).
.PHONY: bench-pull
bench: bench-pull
bench-pull: $(BUILD)/kiln
	KILN=$(CURDIR)/$(BUILD)/kiln bash tests/bench/registry_pull.sh

# libFuzzer target for the registry client's parsers (`make fuzz-registry`,
# part of `make fuzz`; FUZZ_* come from tests/fuzz.mk).
.PHONY: fuzz-registry
fuzz: fuzz-registry
fuzz-build: $(FUZZ_DIR)/fuzz_registry
$(FUZZ_DIR)/fuzz_registry: tests/fuzz/fuzz_registry.c $(FUZZ_BASE) assembler/registry_auth.c $(wildcard assembler/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ tests/fuzz/fuzz_registry.c $(FUZZ_BASE) assembler/registry_auth.c $(PKG_LIBS)

fuzz-registry: $(FUZZ_DIR)/fuzz_registry
	@mkdir -p $(FUZZ_DIR)/corpus-registry
	@printf '%s' 'Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"' >$(FUZZ_DIR)/corpus-registry/bearer
	@printf '%s' 'Basic realm="x"' >$(FUZZ_DIR)/corpus-registry/basic
	@printf '%s' '{"auths":{"docker.io":{"auth":"YTpi"},"r.example":{"username":"u","password":"p"}}}' >$(FUZZ_DIR)/corpus-registry/config
	@printf '%s' 'bytes 0-99/100' >$(FUZZ_DIR)/corpus-registry/range
	@printf '%s' 'Tue, 14 Nov 2023 22:13:30 GMT' >$(FUZZ_DIR)/corpus-registry/date
	$(FUZZ_DIR)/fuzz_registry -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/crash-registry- $(FUZZ_DIR)/corpus-registry
