#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Each suite stands alone, as labs use it:
#  - its config holds every option its tests need on a lab's base config:
#    selftests/<suite>/config merged alone onto x86_64 defconfig
#    (scripts/kconfig/merge_config.sh, then olddefconfig) in a scratch
#    directory; every line must survive.  Checked on the patched tree (the
#    series adds options, e.g. the mkvm sample's), where every option must
#    also exist; options the pristine tree lacks are listed;
#  - it builds and installs with only itself and vm_file_lib in the tree's
#    tools/testing/selftests (make TARGETS=<suite> install), and in place
#    (make -C selftests/<suite> KSRC=<tree>), against the patched tree's
#    uAPI headers.
#
# Usage: tools/check-suites.sh [SUITE...]     (default: every suite)
# Last line: "check-suites: N suites, N failures".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

dir=$CACHE/check-suites
suites=("$@")
[ ${#suites[@]} -gt 0 ] ||
	for s in "$REPO"/selftests/*/config; do
		suites+=("$(basename "$(dirname "$s")")")
	done

need make flex bison gcc git
resolve_source
read_series

# The patched tree: hard links to the pristine source, real copies of the
# files the series touches (so that patching them leaves the source alone).
tree=$dir/tree
stamp=$( { echo "$SRC"; cat ${SERIES[@]+"${SERIES[@]}"}; } | sha256sum | cut -c1-16)
if [ "$(cat "$tree/.vfr-check-stamp" 2>/dev/null)" != "$stamp" ]; then
	step "patched tree for the config check: $tree"
	mkdir -p "$dir"
	link_tree "$SRC" "$tree" ${SERIES[@]+"${SERIES[@]}"}
	for p in ${SERIES[@]+"${SERIES[@]}"}; do
		(cd "$tree" && git apply --whitespace=nowarn "$p") ||
			die "patch does not apply: $p"
	done
	echo "$stamp" > "$tree/.vfr-check-stamp"
fi

# The options the pristine tree knows, for the report.
grep -rhoE "^(menu)?config [A-Za-z0-9_]+" --include='Kconfig*' "$SRC" |
	awk '{ print "CONFIG_" $2 }' | sort -u > "$dir/pristine-symbols"

step "uAPI headers of the patched tree"
make -s -C "$tree" O="$dir/hdr" headers > /dev/null

failures=0
fail() {
	echo "  FAIL: $*"
	failures=$((failures + 1))
}

for s in "${suites[@]}"; do
	frag=$REPO/selftests/$s/config
	out=$dir/$s
	step "$s: x86_64 defconfig + selftests/$s/config + olddefconfig"
	rm -rf "$out"
	mkdir -p "$out"
	make -s -C "$tree" O="$out" ARCH=x86_64 defconfig > /dev/null
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" "$out/.config" \
		"$frag" > "$out/merge.log" 2>&1
	make -s -C "$tree" O="$out" ARCH=x86_64 olddefconfig > /dev/null
	if config_survived "$out/.config" "$tree" "$frag" && [ "$CONFIG_UNKNOWN" = 0 ]; then
		echo "  $(config_fragment_lines "$frag" | wc -l) lines, all survived"
	else
		fail "selftests/$s/config does not survive on defconfig"
	fi
	config_fragment_lines "$frag" | sed -E 's/^# (CONFIG_[^ ]*) .*/\1/; s/=.*//' |
		grep -vxF -f "$dir/pristine-symbols" | while read -r sym; do
			grep -rqsE "^(menu)?config ${sym#CONFIG_}\$" --include='Kconfig*' "$tree" &&
				echo "  ($sym: added by the series, not in the pristine tree)"
		done || true

	step "$s: make -C tools/testing/selftests TARGETS=$s install, with only $s and vm_file_lib"
	ksft=$tree/tools/testing/selftests
	rm -rf "$ksft/vm_file_lib" "$ksft/$s" "$out/install"
	cp -r "$REPO/selftests/vm_file_lib" "$REPO/selftests/$s" "$ksft/"
	if make -s -C "$ksft" O="$out/obj" KSRC= TARGETS="$s" FORCE_TARGETS=1 \
		KHDR_INCLUDES="-isystem $dir/hdr/usr/include" \
		KSFT_INSTALL_PATH="$out/install" install > "$out/install.log" 2>&1; then
		echo "  installed: $(tr '\n' ' ' < "$out/install/kselftest-list.txt")"
	else
		tail -n 20 "$out/install.log"
		fail "TARGETS=$s install"
	fi
	rm -rf "$ksft/vm_file_lib" "$ksft/$s"

	step "$s: make -C selftests/$s KSRC=<tree> (in place)"
	if make -s -C "$REPO/selftests/$s" KSRC="$tree" OUTPUT="$out/inplace" \
		KHDR_INCLUDES="-isystem $dir/hdr/usr/include" > "$out/inplace.log" 2>&1; then
		echo "  built: $(ls "$out/inplace" | tr '\n' ' ')"
	else
		tail -n 20 "$out/inplace.log"
		fail "in-place build of selftests/$s"
	fi
done
echo "check-suites: ${#suites[@]} suites, $failures failures"
[ "$failures" -eq 0 ]
