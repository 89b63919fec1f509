#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Everything CI checks, in one command (make check):
#   1. series hygiene (tools/check-series.sh);
#   2. the patched kernel: both suites and the kernel's own iommufd suite;
#   3. the base kernel: both suites, each test's outcome as expected there
#      (the expectations in each suite's README).
# Every step runs even if an earlier one failed; the last line adds up the
# test counts of 2 and 3: "N passed, N failed, N skipped".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

status=0
passed=0 failed=0 skipped=0
log=$CACHE/check.log
mkdir -p "$CACHE"

# count LOG: add the last "N passed, N failed, N skipped" line of LOG.
count() {
	local line p f s

	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$1" | tail -n 1 || true)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
		return
	fi
	read -r p f s < <(echo "$line" |
		sed -E 's/^([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/')
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
}

step "1/3 series hygiene (tools/check-series.sh)"
"$REPO/tools/check-series.sh" 2>&1 | tee "$log.series" || status=1
grep -q '^check-series: .* 0 failures$' "$log.series" || failed=$((failed + 1))

step "2/3 patched kernel: vfio_kvm, iommufd_viommu and tools/testing/selftests/iommu"
"$REPO/run_tests.sh" --upstream-iommufd 2>&1 | tee "$log.patched" || status=1
count "$log.patched"

step "3/3 base kernel against the expectations in the suites' READMEs"
"$REPO/run_tests.sh" --base --expect "$REPO/selftests/vfio_kvm/README" \
	--expect "$REPO/selftests/iommufd_viommu/README" 2>&1 |
	tee "$log.base" || status=1
count "$log.base"

step "check: done (logs: $log.{series,patched,base})"
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
