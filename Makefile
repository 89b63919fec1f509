# SPDX-License-Identifier: GPL-2.0
# Front end to run_tests.sh and tools/; see README.md.
RUN := ./run_tests.sh

# Debian 12 packages the runner and the checks need (make deps, .ci/run).
DEPS := build-essential flex bison bc libelf-dev libssl-dev rsync cpio \
	xz-utils ccache kmod file git qemu-system-x86 busybox-static \
	debian-archive-keyring libcap-dev gcc-s390x-linux-gnu gcc-aarch64-linux-gnu \
	gcc-powerpc64le-linux-gnu \
	uuid-dev lz4 perl

.PHONY: all test base upstream build check check-series check-suites mutants \
	bench deps verify peers \
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

# A posted series (format-patch directory or mbox; several: applied in
# order) instead of linux/, with the rule-by-rule report:
# make verify SERIES=path/to/series [RUNFLAGS=...]; SERIES=linux/ is ours
# (linux/fixes, linux, linux/test-only).
verify:
	@test -n "$(SERIES)" || { echo "usage: make verify SERIES=PATH [RUNFLAGS=...]" >&2; exit 2; }
	$(RUN) $(foreach s,$(SERIES),--series $(s)) $(RUNFLAGS)

# Also the kernel tree's own tools/testing/selftests/iommu suite.
upstream:
	$(RUN) --upstream-iommufd $(RUNFLAGS)

# Kernel, selftests and initramfs only.
build:
	$(RUN) --build-only $(RUNFLAGS)

# Series hygiene: checkpatch, per-patch object builds, sparse, cross builds.
check-series:
	tools/check-series.sh

# Each suite's config merged onto x86_64 defconfig: every line survives.
check-suites:
	tools/check-suites.sh

# What CI runs: the series checks, the patched kernel with both suites and
# the kernel's own iommufd suite, and the base kernel against its
# expectations.
check:
	tools/check.sh

# Mutation run: every patch of linux/mutants/ on top of the series.
mutants:
	tools/mutants.sh $(MUTANTS)

# The kernel's own vfio and kvm selftests (tools/peers/) on the base and
# the patched kernel, compared test by test, and the mutants of
# tools/peers/mutants.list: docs/peers.md.
peers:
	tools/peers.sh $(PEERSFLAGS)

# Throughput of the patched paths against the base kernel.
bench:
	tools/bench.sh

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEPS)

clean:
	rm -rf "$${CACHE_DIR:-$${XDG_CACHE_HOME:-$$HOME/.cache}/vm-file-refs}"
