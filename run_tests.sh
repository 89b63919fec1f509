#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# One command from a checkout to a KTAP verdict: fetch the pinned kernel
# source, apply the series in linux/, build a KASAN+lockdep kernel, build the
# selftests statically, boot QEMU, run the suites with the kernel log scanned
# after every test, and end with "N passed, N failed, N skipped".
#
# Usage: ./run_tests.sh [options]     (./run_tests.sh -h for the list)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vm-file-refs}
PKG=${KERNEL_PACKAGE:-linux-source-7.3}
APT_SUITE=${APT_SUITE:-trixie-backports}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
JOBS=${JOBS:-$(nproc)}
SUITES=(vfio_kvm iommufd_viommu)

mode=patched
upstream_iommufd=0
extra_dir=
extra_patches=()
prebuilt_kernel=
ksrc=${KSRC:-}
guest_timeout=${GUEST_TIMEOUT:-1500}
build_only=0
only_suites=()
test_args=

usage() {
	cat <<EOF
Usage: $0 [options]

  --base               run the suites on the unpatched kernel (no linux/ series)
  --upstream-iommufd   also run the tree's tools/testing/selftests/iommu suite
  --extra DIR          also run every executable in DIR in the guest
                       (exit 0 pass, 4 skip, else fail; kernel log scanned)
  --patch FILE         apply FILE on top of the series (repeatable)
  --kernel BZIMAGE     boot this kernel instead of building one
  --build-only         stop after building kernel, selftests and initramfs
  --timeout SECONDS    kill the guest after this long (default $guest_timeout)
  --suite NAME         run only this suite of selftests/ (repeatable)
  --args 'ARGS'        pass ARGS to every selftest program (e.g. '-f fixture'
                       or '-t test': kselftest_harness.h filters)
  -h, --help           this text

Environment: KSRC=<tree> uses an existing kernel tree instead of Debian's
$PKG; CACHE_DIR (default $CACHE) holds source, trees, builds and
ccache; JOBS; DEBIAN_MIRROR; GUEST_TIMEOUT.
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--base) mode=base ;;
	--upstream-iommufd) upstream_iommufd=1 ;;
	--extra) extra_dir=$(realpath "$2"); shift ;;
	--patch) extra_patches+=("$(realpath "$2")"); shift ;;
	--kernel) prebuilt_kernel=$(realpath "$2"); shift ;;
	--build-only) build_only=1 ;;
	--timeout) guest_timeout=$2; shift ;;
	--suite) only_suites+=("$2"); shift ;;
	--args) test_args=$2; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

t0=$(date +%s)
step() { printf '==> [%4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
die() { echo "run_tests.sh: error: $*" >&2; exit 1; }

# Print a line every minute while a long step runs.
ticker_pid=
ticker_start() {
	( while sleep 60; do step "... still $1"; done ) &
	ticker_pid=$!
}
ticker_stop() {
	[ -n "$ticker_pid" ] && kill "$ticker_pid" 2>/dev/null
	wait "$ticker_pid" 2>/dev/null || true
	ticker_pid=
}
trap ticker_stop EXIT

need() {
	local missing=() t
	for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
	[ ${#missing[@]} -eq 0 ] ||
		die "missing tools: ${missing[*]} (see README: apt-get install ...)"
}
need gcc make flex bison bc rsync cpio gzip xz qemu-system-x86_64 \
	busybox apt-get dpkg-deb timeout file git
mkdir -p "$CACHE"
[ ${#only_suites[@]} -eq 0 ] || SUITES=("${only_suites[@]}")

# One run per cache at a time: runs share the trees, build dirs and outputs.
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
	step "waiting for another run on $CACHE to finish"
	flock 9
fi

# --- 1. Kernel source --------------------------------------------------------
# Debian's linux-source package, fetched with a private apt configuration
# and state so that the system's sources are never touched.
fetch_debian_source() {
	local apt=$CACHE/apt deb ver
	local -a aptopts=(
		-o "Dir::Etc::SourceList=$apt/sources.list"
		-o "Dir::Etc::SourceParts=$apt/sources.list.d"
		-o "Dir::Etc::Preferences=$apt/preferences"
		-o "Dir::Etc::PreferencesParts=$apt/preferences.d"
		-o "Dir::State::Lists=$apt/lists"
		-o "Dir::State::Status=$apt/status"
		-o "Dir::Cache=$apt/cache"
		-o "Debug::NoLocking=1"
		-o "APT::Sandbox::User=root"
	)
	mkdir -p "$apt"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial} \
		"$CACHE/deb"
	touch "$apt/preferences" "$apt/status"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $APT_SUITE main" \
		> "$apt/sources.list"
	if [ -z "$(find "$apt/lists" -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
		step "apt-get update ($APT_SUITE, private state in $apt)"
		apt-get -qq "${aptopts[@]}" update
	fi
	ver=$(apt-cache "${aptopts[@]}" show "$PKG" 2>/dev/null |
		sed -n 's/^Version: //p' | sort -V | tail -n 1)
	[ -n "$ver" ] || die "$PKG not found in $APT_SUITE"
	SRC_VERSION="$PKG $ver"
	SRC=$CACHE/src/$PKG-$ver
	[ -e "$SRC/.complete" ] && return
	deb=$(ls "$CACHE/deb/${PKG}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		step "downloading $PKG $ver"
		(cd "$CACHE/deb" && apt-get -qq "${aptopts[@]}" download "$PKG=$ver")
		deb=$(ls "$CACHE/deb/${PKG}_"*.deb | head -n 1)
	fi
	step "unpacking $(basename "$deb")"
	rm -rf "$SRC" "$CACHE/src/tmp"
	mkdir -p "$CACHE/src/tmp"
	dpkg-deb -x "$deb" "$CACHE/src/tmp"
	mkdir -p "$SRC"
	tar -C "$SRC" --strip-components=1 -xf "$CACHE/src/tmp/usr/src/$PKG.tar.xz"
	rm -rf "$CACHE/src/tmp"
	touch "$SRC/.complete"
}

if [ -n "$ksrc" ]; then
	[ -f "$ksrc/Makefile" ] && [ -d "$ksrc/kernel" ] || die "KSRC=$ksrc is not a kernel tree"
	ksrc=$(realpath "$ksrc")
	SRC=$CACHE/src/ksrc-$(echo "$ksrc" | md5sum | cut -c1-8)
	step "copying KSRC=$ksrc"
	mkdir -p "$SRC"
	rsync -a --delete --exclude=.git "$ksrc/" "$SRC/"
	SRC_VERSION="KSRC $ksrc ($(git -C "$ksrc" describe --always --dirty 2>/dev/null ||
		make -s -C "$ksrc" kernelversion))"
else
	fetch_debian_source
fi
step "kernel source: $SRC_VERSION"

# --- 2. Patched tree -----------------------------------------------------------
# One tree per mode, kept between runs.  When the patch set changes, only the
# files the old set touched are restored (with a new mtime, so make sees
# them) before the new set is applied: a warm rebuild stays incremental.
patches=()
if [ "$mode" = patched ]; then
	if [ -f "$REPO/linux/series" ]; then
		while read -r p; do
			case $p in ''|'#'*) continue ;; esac
			patches+=("$REPO/linux/$p")
		done < "$REPO/linux/series"
	else
		for p in "$REPO"/linux/[0-9]*.patch; do
			[ -e "$p" ] && patches+=("$p")
		done
	fi
fi
patches+=(${extra_patches[@]+"${extra_patches[@]}"})

TREE=$CACHE/tree-$mode
BUILD=$CACHE/build-$mode
OUT=$CACHE/out-$mode
stamp=$( { echo "$SRC"; for p in ${patches[@]+"${patches[@]}"}; do
	echo "$p"; cat "$p"; done; } | sha256sum | cut -c1-16)

if [ ! -e "$TREE/.vfr-stamp" ] || [ "$(cat "$TREE/.vfr-src")" != "$SRC" ]; then
	step "copying pristine tree to $TREE"
	rm -rf "$TREE"
	cp -a "$SRC" "$TREE"
	echo "$SRC" > "$TREE/.vfr-src"
	: > "$TREE/.vfr-files"
	echo none > "$TREE/.vfr-stamp"
fi
if [ "$(cat "$TREE/.vfr-stamp")" != "$stamp" ]; then
	while read -r f; do
		[ -n "$f" ] || continue
		rm -f "$TREE/$f"
		if [ -e "$SRC/$f" ]; then cp "$SRC/$f" "$TREE/$f"; fi
	done < "$TREE/.vfr-files"
	: > "$TREE/.vfr-files"
	echo none > "$TREE/.vfr-stamp"
	for p in ${patches[@]+"${patches[@]}"}; do
		step "applying $(basename "$p")"
		git apply --numstat "$p" | cut -f3- | sed 's/.* => //' >> "$TREE/.vfr-files"
		(cd "$TREE" && git apply --whitespace=nowarn "$p") ||
			die "patch does not apply: $p"
	done
	echo "$stamp" > "$TREE/.vfr-stamp"
fi
step "tree: $TREE (${#patches[@]} patches)"

# --- 3. Config -----------------------------------------------------------------
# tinyconfig + our fragment + olddefconfig, then every line of the fragment
# must have survived (Kconfig silently drops options with unmet deps).
verify_config() {
	local bad=0 line sym want have
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*}; want=$line ;;
		'# CONFIG_'*' is not set') sym=${line#\# }; sym=${sym%% *}; want=n ;;
		*) continue ;;
		esac
		have=$(grep -E "^$sym=|^# $sym is not set" "$BUILD/.config" || true)
		if [ "$want" = n ]; then
			case $have in ''|'# '*) continue ;; esac
		elif [ "$have" = "$want" ]; then
			continue
		fi
		# Options the series adds do not exist in the base tree.
		if [ "$mode" = base ] &&
		   ! grep -rqsE "^(menu)?config ${sym#CONFIG_}\$" --include='Kconfig*' "$TREE"; then
			echo "  ($sym: not in this tree, ignored)"
			continue
		fi
		echo "  config: want '$want', have '${have:-absent}'" >&2
		bad=1
	done < "$REPO/config"
	return $bad
}

cfgstamp=$(cat "$REPO/config" "$TREE/.vfr-stamp" | sha256sum | cut -c1-16)
mkdir -p "$BUILD"
if [ "$(cat "$BUILD/.vfr-config" 2>/dev/null)" != "$cfgstamp" ]; then
	step "configuring: tinyconfig + config fragment + olddefconfig"
	make -s -C "$TREE" O="$BUILD" ARCH=x86_64 tinyconfig >/dev/null
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$BUILD" \
		"$BUILD/.config" "$REPO/config" >/dev/null
	make -s -C "$TREE" O="$BUILD" ARCH=x86_64 olddefconfig >/dev/null
	verify_config || die "config fragment did not survive olddefconfig"
	echo "$cfgstamp" > "$BUILD/.vfr-config"
fi

# --- 4. Kernel -----------------------------------------------------------------
# ccache pays off when a file goes back to an earlier content (mutants, a
# patch reverted); on a cold cache every miss costs an extra preprocessor
# run, so CI (always cold) builds without it.  CCACHE=0/1 overrides.
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export KBUILD_BUILD_TIMESTAMP=${KBUILD_BUILD_TIMESTAMP:-2026-01-01}
export KBUILD_BUILD_USER=vfr KBUILD_BUILD_HOST=vfr
cc=gcc
if [ "${CCACHE:-$([ -n "${CI:-}" ] && echo 0 || echo 1)}" = 1 ] &&
   command -v ccache >/dev/null; then
	cc="ccache gcc"
fi
kmake() { make -s -C "$TREE" O="$BUILD" ARCH=x86_64 CC="$cc" -j"$JOBS" "$@"; }
if [ -n "$prebuilt_kernel" ]; then
	KERNEL=$prebuilt_kernel
	step "using prebuilt kernel $KERNEL"
else
	step "building kernel ($mode, -j$JOBS)"
	ticker_start "building kernel"
	kmake bzImage > "$CACHE/build-$mode.log" 2>&1 ||
		{ ticker_stop; tail -n 40 "$CACHE/build-$mode.log"; die "kernel build failed"; }
	ticker_stop
	KERNEL=$BUILD/arch/x86/boot/bzImage
fi
kmake headers > /dev/null
step "kernel ready: $(file -b "$KERNEL" 2>/dev/null | grep -o 'version [^ ]*' || echo "$KERNEL")"

# --- 5. Selftests and the guest's programs ---------------------------------------
rm -rf "$OUT"
mkdir -p "$OUT/initramfs"/{bin,etc,proc,sys,dev,tmp,selftests}
ST=$OUT/initramfs/selftests
tests=()

build_selftest() {	# name dir [make args]
	local name=$1 dir=$2 prog
	shift 2
	step "building selftests: $name"
	make -s -C "$dir" KSRC="$TREE" OUTPUT="$OUT/st/$name" \
		KHDR_INCLUDES="-isystem $BUILD/usr/include" \
		LDFLAGS=-static "$@" > "$OUT/st-$name.log" 2>&1 ||
		{ tail -n 30 "$OUT/st-$name.log"; die "selftest build failed: $name"; }
	mkdir -p "$ST/$name"
	[ -f "$dir/settings" ] && cp "$dir/settings" "$ST/$name/"
	for prog in $(make -s --no-print-directory -C "$dir" KSRC="$TREE" \
			OUTPUT="$OUT/st/$name" emit_tests 2>/dev/null |
			sed -n "s/^[^:]*://p"); do
		cp "$OUT/st/$name/$prog" "$ST/$name/"
		tests+=("$name:$prog=/selftests/$name/$prog")
	done
}

for s in "${SUITES[@]}"; do
	build_selftest "$s" "$REPO/selftests/$s"
done
if [ "$upstream_iommufd" = 1 ]; then
	build_selftest iommu "$TREE/tools/testing/selftests/iommu"
fi
if [ -n "$extra_dir" ]; then
	mkdir -p "$OUT/initramfs/extra"
	for prog in "$extra_dir"/*; do
		[ -f "$prog" ] && [ -x "$prog" ] || continue
		cp "$prog" "$OUT/initramfs/extra/"
		tests+=("extra:${prog##*/}=/extra/${prog##*/}")
	done
fi
[ ${#tests[@]} -gt 0 ] || die "no test programs were built"

gcc -static -O2 -Wall -Wextra -Werror -o "$OUT/initramfs/bin/ktapwrap" \
	"$REPO/guest/ktapwrap.c"
cp "$(command -v busybox)" "$OUT/initramfs/bin/busybox"
file -L "$OUT/initramfs/bin/busybox" | grep -q 'statically linked' ||
	die "busybox is not static: apt-get install busybox-static"
install -m 755 "$REPO/guest/init" "$OUT/initramfs/init"
{
	echo "TESTS='${tests[*]}'"
	echo "KTAPWRAP_OPTS='-k -t 600'"
	echo "TEST_ARGS='$test_args'"
	echo "DUMP_DMESG=1"
} > "$OUT/initramfs/etc/tests.conf"
(cd "$OUT/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$OUT/initramfs.cpio.gz"
step "initramfs: ${#tests[@]} programs, $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)"
[ "$build_only" = 1 ] && { step "build only: done"; exit 0; }

# --- 6. Boot -------------------------------------------------------------------
step "booting QEMU (TCG, q35, -cpu max, intel-iommu, edu; timeout ${guest_timeout}s)"
console=$OUT/console.log
set +e
timeout -k 10 "$guest_timeout" qemu-system-x86_64 \
	-machine q35 -accel tcg -cpu max -smp 2 -m 2G \
	-display none -monitor none -serial stdio -no-reboot \
	-device intel-iommu -device edu \
	-kernel "$KERNEL" -initrd "$OUT/initramfs.cpio.gz" \
	-append "console=ttyS0 loglevel=1 intel_iommu=on panic=-1 kmemleak=on" \
	< /dev/null 2>&1 | tee "$console" |
	sed -u '/^# init: ---- dmesg begin/,/^# init: ---- dmesg end/d'
qemu_rc=${PIPESTATUS[0]}
set -e
sed -n '/^# init: ---- dmesg begin/,/^# init: ---- dmesg end/p' "$console" > "$OUT/kernel.log"

# --- 7. Verdict ----------------------------------------------------------------
summary=$(grep -a -E '^ktapwrap: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$console" | tail -n 1 || true)
echo
echo "# Kernel source: $SRC_VERSION; mode: $mode; ${#patches[@]} patches"
echo "# Console: $console; kernel log: $OUT/kernel.log"
echo "# Per-program results:"
grep -a -E '^(not )?ok [0-9]+ ' "$console" | sed 's/^/#   /' || true
read -r passed failed skipped < <(echo "$summary" |
	sed -E 's/^ktapwrap: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/')
if [ -z "$summary" ]; then
	# The guest died or hung: count what it reported, and fail the run.
	passed=$(grep -a -cE '^  ok [0-9]+ [^#]*$|^  ok [0-9]+ .*# (XFAIL|xfail)' "$console" || true)
	skipped=$(grep -a -cE '^  ok [0-9]+ .*# SKIP' "$console" || true)
	failed=$(( $(grep -a -cE '^  not ok [0-9]+ ' "$console" || true) + 1 ))
	if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
		echo "# GUEST TIMEOUT after ${guest_timeout}s"
	else
		echo "# GUEST DID NOT FINISH (qemu exit status $qemu_rc)"
	fi
fi
if grep -a -q -E 'Kernel panic|end Kernel panic' "$console"; then
	echo "# KERNEL PANIC in the guest"
	[ "$failed" -gt 0 ] || failed=1
fi
step "finished"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
