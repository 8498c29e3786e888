#!/usr/bin/env bash
# init_containerd.sh's services, under kiln's own containerd shim (init as
# containerd-shim-kiln-v1) instead of containerd's runc shim.
KILN_TEST_SHIM=kiln exec bash "$(dirname "$0")/init_containerd.sh"
