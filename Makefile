# SPDX-License-Identifier: GPL-2.0
# Front end to run_tests.sh and tools/; see README.md.
RUN := ./run_tests.sh

# Debian 12 packages the runner and the checks need (make deps, .ci/run).
DEPS := build-essential flex bison bc libelf-dev libssl-dev rsync cpio \
	xz-utils ccache kmod file git qemu-system-x86 busybox-static \
	debian-archive-keyring libcap-dev gcc-s390x-linux-gnu gcc-aarch64-linux-gnu

.PHONY: all test base upstream build check check-series mutants bench deps \
	clean help

all: test

help:
	@$(RUN) --help

# The verdict on the patched kernel: both suites, kernel log scanned.
test:
	$(RUN) $(RUNFLAGS)

# The same suites on the unpatched kernel, checked against the expected
# outcome of every test there (listed in each suite's README).
EXPECT := --expect selftests/vfio_kvm/README --expect selftests/iommufd_viommu/README

base:
	$(RUN) --base $(EXPECT) $(RUNFLAGS)

# Also the kernel tree's own tools/testing/selftests/iommu suite.
upstream:
	$(RUN) --upstream-iommufd $(RUNFLAGS)

# Kernel, selftests and initramfs only.
build:
	$(RUN) --build-only $(RUNFLAGS)

# Series hygiene: checkpatch, per-patch object builds, sparse, cross builds.
check-series:
	tools/check-series.sh

# What CI runs: the series checks, the patched kernel with both suites and
# the kernel's own iommufd suite, and the base kernel against its
# expectations.
check:
	tools/check.sh

# Mutation run: every patch of linux/mutants/ on top of the series.
mutants:
	tools/mutants.sh $(MUTANTS)

# Throughput of the patched paths against the base kernel.
bench:
	tools/bench.sh

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEPS)

clean:
	rm -rf "$${CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/vm-file-refs}"
