# libFuzzer target for init's parsers (`make fuzz-init`, part of `make fuzz`;
# see tests/fuzz.mk).  Built with clang against glibc, not musl.  The target
# includes shim.c and h2.c for their static parsers, so those two are not
# linked; main.c (its main) neither.  This fragment is read before
# tests/fuzz.mk, so names in rule lines are spelled out (build-fuzz) and
# FUZZ_* appear only in recipes.
FUZZ_INIT_SRCS := $(filter-out init/main.c init/shim.c init/h2.c,$(wildcard init/*.c)) \
	assembler/error.c assembler/util.c
.PHONY: fuzz-init

build-fuzz/fuzz_init: tests/fuzz/fuzz_init.c init/shim.c init/h2.c $(FUZZ_INIT_SRCS) init/init.h \
		$(wildcard assembler/*.h)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -Iinit -o $@ tests/fuzz/fuzz_init.c $(FUZZ_INIT_SRCS)

# Seeds: the selector byte (see fuzz_init.c) then a sample input; protobuf
# seeds are written with printf's octal escapes.
fuzz-init: build-fuzz/fuzz_init
	@mkdir -p build-fuzz/corpus-init
	@printf '\000{"a":[1,-2.5e3,true,false,null],"s":"x\\u00e9\\ud83d\\ude00\\n"}' >build-fuzz/corpus-init/json
	@printf '\001\012\003abc\020*"\007\012\002hi\020\254\002\015\001\002\003\004' >build-fuzz/corpus-init/pb
	@printf '\002\202\206\204A\214\361\343\302\345\362:k\240\253\220\364\377@\013grpc-status\001\061@\014grpc-message\005a\045\062\060b\276\277' >build-fuzz/corpus-init/hpack
	@printf '\003{"ociVersion":"1.0.2","root":{"path":"rootfs"},"annotations":{"a":"b"}}' >build-fuzz/corpus-init/spec
	@printf '\003{"root":{"readonly":true}}' >build-fuzz/corpus-init/spec2
	@printf '\004\022\007default\032\013/tasks/exit",\012\032containerd.events.TaskExit\022\016\012\003svc\022\003svc\030* \003' >build-fuzz/corpus-init/exit
	@printf '\004\022\003\163\166\143\032\077\012\040\151\157\056\143\157\156\164\141\151\156\145\162\144\056\143\147\162\157\165\160\163\056\166\062\056\115\145\164\162\151\143\163\022\033\012\002\010\003\022\003\010\350\007\042\020\200\002\200\040\210\002\377\377\377\377\377\377\377\377\377\001' >build-fuzz/corpus-init/metric
	@printf '\005{"mounts":[{"source":"tmpfs","destination":"/x","type":"tmpfs","options":["nodev","size=1m"]}],"mkdir":["/a"],"cgroups":["c"],"interfaces":[{"name":"eth0","add":"veth","peer":"p","createInRoot":true}],"bindNS":{"net":"/run/netns/x"},"namespace":"ns"}' >build-fuzz/corpus-init/runtime
	@printf '\006\012\027containerd.task.v2.Task\022\006Create\032c\012\001c\022\004/bun\032\026\012\007overlay\022\007overlay"\002ro2\024binary:///x?a=\045\062Fb+cR*\012\032containerd.runc.v1.Options\022\014\010\001\062\004crun:\002/r \350\007' >build-fuzz/corpus-init/shim
	@printf '\007Name:\tx\nState:\tS (sleeping)\nSigIgn:\t0000000000004000\nSigCgt:\t0\nNSpid:\t12\t1\n' >build-fuzz/corpus-init/status
	@printf '\007anon 4096\nusage_usec 12\noom_kill max\n8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0\n0::/services/svc\n' >build-fuzz/corpus-init/cgroup
	build-fuzz/fuzz_init -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 \
		-print_final_stats=1 -artifact_prefix=build-fuzz/crash-init- build-fuzz/corpus-init

fuzz-build: build-fuzz/fuzz_init
fuzz: fuzz-init
