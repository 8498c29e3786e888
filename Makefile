# kiln — see README.md.  `make` builds build/kiln; `make test` runs everything.
SHELL := /bin/bash
CC ?= gcc
BUILD ?= build
PREFIX ?= /usr/local

PKGS := yaml-0.1 libarchive libcurl jansson libcrypto libzstd zlib
WARN := -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wformat-security
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
OPT ?= -O2 -g
ifeq ($(SAN),1)
OPT := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
CPPFLAGS += -D_GNU_SOURCE -Iassembler -Ioutput-formats
CFLAGS += $(WARN) $(OPT) $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

LIB_SRCS := $(filter-out assembler/main.c,$(wildcard assembler/*.c output-formats/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Every Debian package the project needs: libraries, peers the tests compare
# with, QEMU and firmware for boot tests, tools the output formats call.
DEBS := build-essential pkg-config git ca-certificates curl python3 \
	libyaml-dev libarchive-dev libcurl4-openssl-dev libjansson-dev libssl-dev \
	libzstd-dev zlib1g-dev musl-tools clang libclang-rt-14-dev \
	qemu-system-x86 qemu-utils ovmf xorriso isolinux syslinux syslinux-common syslinux-utils \
	mtools dosfstools squashfs-tools erofs-utils fakeroot gdisk systemd-boot-efi \
	docker-registry apache2-utils umoci skopeo runc containerd docker.io busybox-static crun cpio zstd openssl \
	binutils file hyperfine jq kmod time

.PHONY: all deps test check-asan unit fuzz compat clean install bench demo
all: $(BUILD)/kiln

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libkiln.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

# --whole-archive: main.c refers to the verbs weakly, and a weak reference
# alone does not pull a member out of an archive.
$(BUILD)/kiln: $(BUILD)/obj/assembler/main.o $(BUILD)/libkiln.a
	$(CC) $(CFLAGS) -o $@ $< -Wl,--whole-archive $(BUILD)/libkiln.a -Wl,--no-whole-archive $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libkiln.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -Wno-missing-prototypes -o $@ $< $(BUILD)/libkiln.a $(LDLIBS)

unit: $(UNIT_BINS)

-include $(LIB_OBJS:.o=.d) $(BUILD)/obj/assembler/main.d
-include $(sort $(wildcard init/*.mk kernel/*.mk pkgs/*.mk tests/*.mk output-formats/*.mk))

# Installs every Debian package the project needs; idempotent.
deps:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "make deps: needs root to install Debian packages; run: sudo make deps" >&2; exit 1; fi
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing:" $$missing; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "make deps: all Debian packages present"; fi

# The README's test command: installs what is missing, builds, runs the suite.
test: deps
	$(MAKE) all unit
	tests/run.sh all

# The README's first command: set up, build, and boot examples/minimal.yml.
demo: deps
	$(MAKE) all
	examples/demo.sh

check-asan:
	$(MAKE) BUILD=build-asan SAN=1 all unit
	KILN_BUILD=build-asan tests/run.sh unit integration

compat: all
	tests/compat.sh

clean:
	rm -rf build build-asan build-fuzz

install: all
	install -D -m 0755 $(BUILD)/kiln $(DESTDIR)$(PREFIX)/bin/kiln
	install -D -m 0644 man/kiln.1 $(DESTDIR)$(PREFIX)/share/man/man1/kiln.1
	install -D -m 0644 contrib/bash-completion/kiln $(DESTDIR)$(PREFIX)/share/bash-completion/completions/kiln
