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
