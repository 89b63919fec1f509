# SPDX-License-Identifier: GPL-2.0
# Front end to run_tests.sh; see README.md.
RUN := ./run_tests.sh

# Debian 12 packages the runner needs (installed by `make deps` and .ci/run).
DEPS := build-essential flex bison bc libelf-dev libssl-dev rsync cpio \
	xz-utils ccache kmod file git qemu-system-x86 busybox-static \
	debian-archive-keyring

.PHONY: all test base upstream build deps clean help

all: test

help:
	@$(RUN) --help

# The verdict on the patched kernel: both suites, kernel log scanned.
test:
	$(RUN) $(RUNFLAGS)

# The same suites on the unpatched kernel.
base:
	$(RUN) --base $(RUNFLAGS)

# Also the kernel tree's own tools/testing/selftests/iommu suite.
upstream:
	$(RUN) --upstream-iommufd $(RUNFLAGS)

# Kernel, selftests and initramfs only.
build:
	$(RUN) --build-only $(RUNFLAGS)

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEPS)

clean:
	rm -rf "$${CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/vm-file-refs}"
