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
. "$(dirname "${BASH_SOURCE[0]}")/tools/lib.sh"
. "$REPO/tools/series.sh"
. "$REPO/tools/peers/build.sh"

SUITES=(vfio_kvm iommufd_viommu)

usage() {
	cat <<EOF
Usage: $0 [options]

  --base               run the suites on the unpatched kernel (no linux/ series)
  --series PATH        apply a posted series instead of linux/: a directory of
                       git format-patch files (with or without a series
                       file) or an mbox; repeatable (applied in order, e.g.
                       --series linux/fixes --series PATH); a directory with
                       fixes/ or test-only/ beside its patches is applied as
                       PATH/fixes, PATH, PATH/test-only (--series linux/ is
                       our whole series); ends with a rule-by-rule report
                       (also OUT/report.md)
  --base-version V     Debian's linux-source of upstream version V (7.2.12;
                       7.2: the newest 7.2) instead of $PKG
  --upstream-iommufd   also run the tree's tools/testing/selftests/iommu suite
  --kernel-suite NAME  also run the tree's tools/testing/selftests/NAME (e.g.
                       vfio, kvm; the programs of tools/peers/NAME.list),
                       repeatable; PEER_TIMEOUT=SECONDS kills each of its
                       programs after that long
  --extra DIR          also run every executable in DIR in the guest
                       (exit 0 pass, 4 skip, else fail; kernel log scanned)
  --patch FILE         apply FILE on top of the series (repeatable)
  --kernel BZIMAGE     boot this kernel instead of building one
  --build-only         stop after building kernel, selftests and initramfs
  --timeout SECONDS    kill the guest after this long (default 3600)
  --suite NAME         run only this suite of selftests/ (repeatable;
                       "none": no suite, e.g. with --extra)
  --args 'ARGS'        pass ARGS to every selftest program (e.g. '-f fixture'
                       or '-t test': kselftest_harness.h filters)
  --fail-fast          stop the guest's run at the first failing test
  --config-extra FILE  merge FILE after the top-level config fragment (later
                       lines win); the kernel is built in a build directory
                       of its own, named after FILE (e.g. a non-debug kernel
                       for benchmarks)
  --expect FILE        the outcome of each test listed in FILE (lines
                       "PROGRAM TEST pass|fail|skip", other lines ignored;
                       repeatable; unlisted tests must pass) is the expected
                       one: only differences fail the run
  -h, --help           this text

Environment: KSRC=<tree> uses an existing kernel tree instead of Debian's
$PKG; CACHE_DIR (default $CACHE) holds source, tree, build and ccache;
JOBS; DEBIAN_MIRROR; GUEST_TIMEOUT; CCACHE=0|1.
EOF
}

main() {
	local mode=patched upstream_iommufd=0 extra_dir= prebuilt_kernel=
	local guest_timeout=${GUEST_TIMEOUT:-3600} build_only=0 test_args=
	local expect= ktapwrap_opts='-k -t 600' fail_fast=0 p
	# The kernel: every suite's own config (what its tests need), then the
	# runner's boot and debug options (config), then --config-extra.
	FRAGMENTS=()
	for p in "${SUITES[@]}"; do
		FRAGMENTS+=("$REPO/selftests/$p/config")
	done
	FRAGMENTS+=("$REPO/config")
	BUILD=$CACHE/build
	local -a extra_patches=() only_suites=() series_paths=() kernel_suites=()

	while [ $# -gt 0 ]; do
		case $1 in
		--base) mode=base ;;
		--series) mode=series; series_paths+=("$2"); shift ;;
		--base-version) base_version "$2"; shift ;;
		--upstream-iommufd) upstream_iommufd=1 ;;
		--kernel-suite) kernel_suites+=("$2"); shift ;;
		--extra) extra_dir=$(realpath "$2"); shift ;;
		--patch) extra_patches+=("$(realpath "$2")"); shift ;;
		--kernel) prebuilt_kernel=$(realpath "$2"); shift ;;
		--build-only) build_only=1 ;;
		--timeout) guest_timeout=$2; shift ;;
		--suite) only_suites+=("$2"); shift ;;
		--args) test_args=$2; TEST_ARGS=$2; shift ;;
		--expect) expect+="$(realpath "$2") "; shift ;;
		--fail-fast) ktapwrap_opts+=' -x'; fail_fast=1 ;;
		--config-extra)
			FRAGMENTS+=("$(realpath "$2")")
			BUILD=$CACHE/build-$(basename "$2" .config)
			shift ;;
		-h|--help) usage; exit 0 ;;
		*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
		esac
		shift
	done
	[ ${#only_suites[@]} -eq 0 ] || SUITES=("${only_suites[@]}")
	[ "${SUITES[*]}" != none ] || SUITES=()

	trap ticker_stop EXIT
	need gcc make flex bison bc rsync cpio gzip xz qemu-system-x86_64 \
		busybox apt-get dpkg-deb timeout file git flock
	cache_lock

	# --- 1. Kernel source ------------------------------------------------
	resolve_source
	step "kernel source: $SRC_VERSION"

	# --- 2. Patched tree ---------------------------------------------------
	local -a patches=()
	if [ "$mode" = patched ]; then
		read_series
		patches=(${SERIES[@]+"${SERIES[@]}"})
	elif [ "$mode" = series ]; then
		series_load "$CACHE/series" "${series_paths[@]}"
		patches=("${POSTED[@]}")
	fi
	patches+=(${extra_patches[@]+"${extra_patches[@]}"})
	prepare_tree ${patches[@]+"${patches[@]}"}
	step "tree: $TREE (${#patches[@]} patches)"

	# --- 3. Config ---------------------------------------------------------
	configure

	# --- 4. Kernel ---------------------------------------------------------
	if [ -n "$prebuilt_kernel" ]; then
		KERNEL=$prebuilt_kernel
		step "using prebuilt kernel $KERNEL"
	else
		step "building kernel ($mode, -j$JOBS)"
		ticker_start "building kernel"
		kmake bzImage > "$CACHE/build.log" 2>&1 ||
			{ ticker_stop; tail -n 40 "$CACHE/build.log"; die "kernel build failed"; }
		ticker_stop
		KERNEL=$BUILD/arch/x86/boot/bzImage
	fi
	kmake headers > /dev/null
	step "kernel ready: $(file -b "$KERNEL" 2>/dev/null | grep -o 'version [^ ]*' || echo "$KERNEL")"

	# --- 5. Selftests and the guest's programs ------------------------------
	OUT=$CACHE/out-$mode
	rm -rf "$OUT"
	mkdir -p "$OUT/initramfs"/{bin,etc,proc,sys,dev,tmp,selftests}
	# Our suites: installed as a lab installs them, run by the kernel's
	# run_kselftest.sh with no wrapper (their kernel-log oracle is their
	# own); TESTS: programs ktapwrap runs (no oracle of their own).
	TESTS=()
	install_suites ${SUITES[@]+"${SUITES[@]}"}
	if [ "$upstream_iommufd" = 1 ]; then
		# Not iommufd_fail_nth: under TCG with KASAN its tests exceed
		# their harness timeouts, and a test killed in the middle of
		# adding a mock device leaks it (kmemleak).
		build_selftest iommu "$TREE/tools/testing/selftests/iommu" iommufd
	fi
	for p in ${kernel_suites[@]+"${kernel_suites[@]}"}; do
		build_kernel_suite "$p"
	done
	if [ -n "$extra_dir" ]; then
		mkdir -p "$OUT/initramfs/extra"
		for p in "$extra_dir"/*; do
			[ -f "$p" ] && [ -x "$p" ] || continue
			cp "$p" "$OUT/initramfs/extra/"
			TESTS+=("extra:${p##*/}=/extra/${p##*/}")
		done
	fi
	[ ${#TESTS[@]} -gt 0 ] || [ ${#SUITES[@]} -gt 0 ] || [ "$build_only" = 1 ] ||
		die "no test programs were built"
	local require=
	[ -n "$prebuilt_kernel" ] || require=$(required_features)
	pack_initramfs "$ktapwrap_opts" "$test_args" "$fail_fast" "$require"
	[ "$build_only" = 1 ] && { step "build only: done"; exit 0; }

	# --- 6. Boot -----------------------------------------------------------
	boot "$guest_timeout"

	# --- 7. Verdict --------------------------------------------------------
	[ "$mode" != series ] || series_report
	verdict "$mode" "${#patches[@]}" "$guest_timeout" "$expect"
}

# The tree the kernel is built from, with exactly the given patches applied.
# One tree and one build directory serve every mode (base, patched, a mutant
# on top): the patches are applied to pristine copies of the files they touch
# in a staging directory, and only files whose content differs from the tree
# are written, so make rebuilds what really changed and nothing else.
prepare_tree() {
	local stamp p f stage want

	TREE=$CACHE/tree
	stamp=$( { echo "$SRC"; for p in "$@"; do
		echo "${p##*/}"; cat "$p"; done; } | sha256sum | cut -c1-16)

	if [ ! -e "$TREE/.vfr-stamp" ] || [ "$(cat "$TREE/.vfr-src")" != "$SRC" ]; then
		step "linking pristine tree to $TREE"
		link_tree "$SRC" "$TREE"
		echo "$SRC" > "$TREE/.vfr-src"
		: > "$TREE/.vfr-files"
		echo none > "$TREE/.vfr-stamp"
	fi
	[ "$(cat "$TREE/.vfr-stamp")" = "$stamp" ] && return

	stage=$CACHE/stage
	rm -rf "$stage"
	mkdir -p "$stage"
	for p in "$@"; do
		patch_files "$p"
	done | sort -u > "$stage.files"
	while read -r f; do
		if [ -e "$SRC/$f" ]; then
			mkdir -p "$(dirname "$stage/$f")"
			cp -p "$SRC/$f" "$stage/$f"
		fi
	done < "$stage.files"
	for p in "$@"; do
		step "applying ${p##*/}"
		(cd "$stage" && git apply --whitespace=nowarn "$p") ||
			{ patch_rejected "$p" "$stage"; die "patch does not apply: $p"; }
	done
	# Files of the old set go back to pristine, files of the new set get
	# their patched content; unchanged content keeps its mtime.
	sort -u "$TREE/.vfr-files" "$stage.files" | while read -r f; do
		if grep -qxF "$f" "$stage.files"; then
			want=$stage/$f	# the new set's content; absent: deleted
		else
			want=$SRC/$f	# only the old set touched it
		fi
		if [ -e "$want" ]; then
			cmp -s "$want" "$TREE/$f" || {
				mkdir -p "$(dirname "$TREE/$f")"
				# a new inode: TREE's files are links to SRC's
				cp --remove-destination "$want" "$TREE/$f"
			}
		else
			rm -f "$TREE/$f"
		fi
	done
	cp "$stage.files" "$TREE/.vfr-files"
	rm -rf "$stage" "$stage.files"
	echo "$stamp" > "$TREE/.vfr-stamp"
}

# tinyconfig + the fragments (every suite's config, the top-level config,
# --config-extra) + olddefconfig, then every line of them must have
# survived (Kconfig silently drops options with unmet deps).
# Options that the tree's Kconfig does not know (added by the series, on the
# base tree) are reported and ignored.  The configuration is made in a
# scratch directory and copied only if it differs, so that an unchanged
# configuration never invalidates the build.
configure() {
	local cfgstamp scratch=$CACHE/config

	cfgstamp=$(cat "${FRAGMENTS[@]}" "$TREE/.vfr-stamp" | sha256sum | cut -c1-16)
	mkdir -p "$BUILD"
	[ "$(cat "$BUILD/.vfr-config" 2>/dev/null)" = "$cfgstamp" ] && return
	step "configuring: tinyconfig + ${FRAGMENTS[*]#$REPO/} + olddefconfig"
	mkdir -p "$scratch"
	make -s -C "$TREE" O="$scratch" ARCH=x86_64 tinyconfig >/dev/null
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$scratch" \
		"$scratch/.config" "${FRAGMENTS[@]}" >/dev/null
	make -s -C "$TREE" O="$scratch" ARCH=x86_64 olddefconfig >/dev/null
	config_survived "$scratch/.config" "$TREE" "${FRAGMENTS[@]}" ||
		die "config fragment did not survive olddefconfig"
	if ! cmp -s "$scratch/.config" "$BUILD/.config"; then
		cp "$scratch/.config" "$BUILD/.config"
		make -s -C "$TREE" O="$BUILD" ARCH=x86_64 olddefconfig >/dev/null
	fi
	echo "$cfgstamp" > "$BUILD/.vfr-config"
}

# ccache pays off when a file goes back to an earlier content (base <->
# patched, mutants); on a cold cache every miss costs an extra preprocessor
# run, so CI (always cold) builds without it.  CCACHE=0/1 overrides.
kmake() {
	local cc=gcc

	if [ "${CCACHE:-$([ -n "${CI:-}" ] && echo 0 || echo 1)}" = 1 ] &&
	   command -v ccache >/dev/null; then
		cc="ccache gcc"
	fi
	CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache} \
	KBUILD_BUILD_TIMESTAMP=${KBUILD_BUILD_TIMESTAMP:-2026-01-01} \
	KBUILD_BUILD_USER=vfr KBUILD_BUILD_HOST=vfr \
		make -s -C "$TREE" O="$BUILD" ARCH=x86_64 CC="$cc" -j"$JOBS" "$@"
}

# Our suites as a lab installs them: copied with vm_file_lib into the tree's
# tools/testing/selftests (nothing the kernel build reads), built statically
# against the tree's uAPI headers, and installed (make install: the programs,
# config, settings, run_kselftest.sh and its runner) into the initramfs's
# /kselftest.  Sets KSFT_PROGS (their programs, for --args).
install_suites() {
	local ksft=$TREE/tools/testing/selftests d

	KSFT_PROGS=()
	[ $# -gt 0 ] || return 0
	step "building selftests: $* (make -C tools/testing/selftests install)"
	for d in vm_file_lib "$@"; do
		rsync -a --delete "$REPO/selftests/$d/" "$ksft/$d/"
	done
	make -s -C "$ksft" KSRC= O="$OUT/ksft" TARGETS="$*" FORCE_TARGETS=1 \
		KHDR_INCLUDES="-isystem $BUILD/usr/include" LDFLAGS=-static \
		KSFT_INSTALL_PATH="$OUT/initramfs/kselftest" install \
		> "$OUT/ksft.log" 2>&1 ||
		{ tail -n 30 "$OUT/ksft.log"; die "selftest build failed: $*"; }
	KSFT_PROGS=($(cut -d: -f2 "$OUT/initramfs/kselftest/kselftest-list.txt"))
}

# What the kernel was built to have, from its .config and tree, as the words
# of VFIO_KVM_REQUIRE: the suites' presence tests FAIL (not SKIP) when one of
# these is missing in the guest.
required_features() {
	local cfg=$BUILD/.config words=

	cfg_has() { grep -qx "CONFIG_$1=y" "$cfg"; }
	cfg_has SAMPLE_VFIO_MDEV_MTTY && words+=" mtty"
	cfg_has SAMPLE_VFIO_MDEV_MKVM && words+=" mkvm"
	cfg_has VFIO_PCI && words+=" vfio-pci"	# QEMU's edu is always there
	cfg_has FAILSLAB && cfg_has FAULT_INJECTION_DEBUG_FS && words+=" failslab"
	cfg_has IOMMUFD_TEST &&
		grep -q IOMMU_TEST_OP_VM_CHECK "$TREE/drivers/iommu/iommufd/iommufd_test.h" &&
		words+=" mock-vm-ops"
	echo "${words# }"
}

# A host program and the shared libraries it loads, at the same paths in the
# initramfs (GNU coreutils for run_kselftest.sh: busybox's timeout has no
# --foreground).
copy_host_program() {
	local f

	for f in "$@" $(ldd "$1" | grep -o '/[^ ]*'); do
		mkdir -p "$OUT/initramfs$(dirname "$f")"
		cp -L "$f" "$OUT/initramfs$f"
	done
}

# A kselftest directory, built statically against the tree's uAPI headers
# and its own kselftest_harness.h; its programs (or only those named after
# the directory) go into the initramfs, run by ktapwrap.
build_selftest() {
	local name=$1 dir=$2 prog st=$OUT/initramfs/selftests
	local only=" ${*:3} "

	step "building selftests: $name"
	mkdir -p "$OUT/st/$name"
	make -s -C "$dir" KSRC="$TREE" OUTPUT="$OUT/st/$name" \
		KHDR_INCLUDES="-isystem $BUILD/usr/include" \
		LDFLAGS=-static > "$OUT/st-$name.log" 2>&1 ||
		{ tail -n 30 "$OUT/st-$name.log"; die "selftest build failed: $name"; }
	mkdir -p "$st/$name"
	[ -f "$dir/settings" ] && cp "$dir/settings" "$st/$name/"
	for prog in $(make -s --no-print-directory -C "$dir" KSRC="$TREE" \
			OUTPUT="$OUT/st/$name" emit_tests 2>/dev/null |
			sed -n "s/^[^:]*://p"); do
		[ "$only" = "  " ] || [[ $only == *" $prog "* ]] || continue
		cp "$OUT/st/$name/$prog" "$st/$name/"
		TESTS+=("$name:$prog=/selftests/$name/$prog")
	done
}

pack_initramfs() {
	local ktapwrap_opts=$1 test_args=$2 fail_fast=$3 require=$4
	local ksft_args=$2 prog var

	gcc -static -O2 -Wall -Wextra -Werror -I"$REPO/selftests/vm_file_lib" \
		-o "$OUT/initramfs/bin/ktapwrap" "$REPO/guest/ktapwrap.c" \
		"$REPO/selftests/vm_file_lib/kmsg_report.c"
	# run_kselftest.sh's runner.sh uses /usr/bin/timeout (the settings
	# file's timeout), /usr/bin/stdbuf and /usr/bin/perl (prefix.pl
	# prefixes the output unbuffered; its fallback, sed, holds a
	# program's output until the program ends) when they exist.
	copy_host_program /usr/bin/timeout
	copy_host_program /usr/bin/stdbuf /usr/libexec/coreutils/libstdbuf.so
	copy_host_program /usr/bin/perl $(perl -MIO::Handle -e '
		print "$_\n" for values %INC;
		($_ = $INC{"IO.pm"}) =~ s|IO\.pm$|auto/IO/IO.so|; print "$_\n"')
	ln -sf ../../bin/busybox "$OUT/initramfs/usr/bin/env"
	# Harness filters leave out the kernel_log checks unless named too.
	case " $test_args " in
	*" -"[fvtr]" "*) ksft_args+=" -f kernel_log" ;;
	esac
	cp "$(command -v busybox)" "$OUT/initramfs/bin/busybox"
	file -L "$OUT/initramfs/bin/busybox" | grep -q 'statically linked' ||
		die "busybox is not static: apt-get install busybox-static"
	install -m 755 "$REPO/guest/init" "$OUT/initramfs/init"
	{
		echo "TESTS='${TESTS[*]}'"
		echo "KSFT_COLLECTIONS='${SUITES[*]}'"
		echo "KTAPWRAP_OPTS='$ktapwrap_opts'"
		echo "TEST_ARGS='$test_args'"
		echo "FAIL_FAST=$fail_fast"
		echo "VFIO_KVM_REQUIRE='$require'"
		# run_kselftest.sh passes KSELFTEST_<PROGRAM>_ARGS to PROGRAM.
		for prog in ${KSFT_PROGS[@]+"${KSFT_PROGS[@]}"}; do
			[ -n "$test_args" ] || break
			var=$(printf %s "$prog" | tr -c '[:alnum:]_' _ |
				tr '[:lower:]' '[:upper:]')
			echo "export KSELFTEST_${var}_ARGS='$ksft_args'"
		done
		echo "DUMP_DMESG=1"
	} > "$OUT/initramfs/etc/tests.conf"
	(cd "$OUT/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) \
		> "$OUT/initramfs.cpio.gz"
	step "initramfs: ${#KSFT_PROGS[@]} suite programs (run_kselftest.sh), ${#TESTS[@]} others (ktapwrap), $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)"
}

# stamp_times: the console's program starts and results, each test's start
# (the harness's "RUN" line) and result (its KTAP line, "# " or two spaces
# in front), and init's steps, each after the second of the run it arrived
# at: where the guest's time goes, test by test.
stamp_times() {
	perl -MTime::HiRes=time -ne 'BEGIN { $t0 = time; $| = 1 }
		printf "%7.1f %s", time - $t0, $_
			if /^(# selftests: |(# |  )?(not )?ok \d+ |(# |  )#  RUN |# init: )/'
}

# Run the guest; the console goes to $OUT/console.log and, without the
# kernel log dump at the end, to stdout; $OUT/times.txt has the second of
# the run at which each program and each test started and ended.
# kasan_multi_shot: KASAN reports every bad access, not only the first of
# the boot, so that each test that makes one fails for it.  acpi=noirq: PCI interrupt routing from
# the BIOS tables, not from ACPI's _PRT.  Under TCG with KASAN and kmemleak,
# evaluating q35's _PRT in the AML interpreter takes about a second, and
# vfio-pci does it in every pci_enable_device()/pci_disable_device(), i.e.
# at every open and last close of a vfio-pci device: 2.5 s of a vfio-pci
# scenario's 2.6 s.  The suites use no legacy INTx (edu gets no IRQ line
# then; MSI is unaffected), so this changes their cost, not their coverage.
#
# The machine is GUEST_MACHINE (tools/lib.sh: why la57=off).
#
# Two watchdogs: a guest whose init has not spoken after $BOOT_TIMEOUT
# seconds did not boot, and is booted once more (its console is kept as
# console.noboot.log); a console silent for $STALL_TIMEOUT seconds (longer
# than any test's TEST_F_TIMEOUT) is a hung kernel, and the guest is
# stopped there rather than at the run's timeout.
BOOT_TIMEOUT=${BOOT_TIMEOUT:-300}
STALL_TIMEOUT=${STALL_TIMEOUT:-1500}
boot() {
	local guest_timeout=$1 attempt wd

	CONSOLE=$OUT/console.log
	for attempt in 1 2; do
		step "booting QEMU (TCG, q35, -cpu max,la57=off, intel-iommu, 2 edu; timeout ${guest_timeout}s)"
		rm -f "$OUT/watchdog" "$OUT/qemu.pid"
		watchdog &
		wd=$!
		set +e
		timeout -k 10 "$guest_timeout" qemu-system-x86_64 \
			"${GUEST_MACHINE[@]}" \
			-display none -monitor none -serial stdio -no-reboot \
			-pidfile "$OUT/qemu.pid" \
			-device intel-iommu -device edu -device edu \
			-kernel "$KERNEL" -initrd "$OUT/initramfs.cpio.gz" \
			-append "console=ttyS0 loglevel=1 intel_iommu=on panic=-1 kmemleak=on kasan_multi_shot acpi=noirq" \
			< /dev/null 2>&1 | tee "$CONSOLE" | tee >(stamp_times > "$OUT/times.txt") |
			sed -u '/^# init: ---- dmesg begin/,/^# init: ---- dmesg end/d'
		QEMU_RC=${PIPESTATUS[0]}
		set -e
		wait "$wd"
		[ "$(cat "$OUT/watchdog" 2>/dev/null)" = noboot ] && [ "$attempt" = 1 ] || break
		step "the guest's init did not start within ${BOOT_TIMEOUT}s; booting again"
		mv "$CONSOLE" "$OUT/console.noboot.log"
	done
	sed -n '/^# init: ---- dmesg begin/,/^# init: ---- dmesg end/p' "$CONSOLE" \
		> "$OUT/kernel.log"
}

# Stop the guest (QEMU's pid file) that has not booted after $BOOT_TIMEOUT
# seconds or whose console has been silent for $STALL_TIMEOUT seconds;
# $OUT/watchdog says which.
watchdog() {
	local start=$SECONDS last=$SECONDS size=0 booted=0 now pid

	while [ ! -s "$OUT/qemu.pid" ]; do
		sleep 1
		[ $((SECONDS - start)) -lt 60 ] || return 0
	done
	pid=$(cat "$OUT/qemu.pid")
	while sleep 5 && kill -0 "$pid" 2>/dev/null; do
		if [ "$booted" = 0 ] && grep -a -q '^# init:' "$CONSOLE"; then
			booted=1
		fi
		if [ "$booted" = 0 ]; then
			[ $((SECONDS - start)) -ge "$BOOT_TIMEOUT" ] || continue
			echo noboot > "$OUT/watchdog"
		else
			now=$(stat -c %s "$CONSOLE")
			[ "$now" = "$size" ] || { size=$now last=$SECONDS; continue; }
			[ $((SECONDS - last)) -ge "$STALL_TIMEOUT" ] || continue
			echo stalled > "$OUT/watchdog"
		fi
		kill "$pid"
		return 0
	done
}

# One line per test result of the console's KTAP: "PROGRAM TEST RESULT"
# (RESULT pass, fail or skip; PROGRAM "DIR:PROG" for run_kselftest.sh's
# programs, ktapwrap's names for its own).  Two streams: run_kselftest.sh
# ("# selftests: DIR: PROG", the program's lines prefixed "# ", then
# "ok N selftests: DIR: PROG") and ktapwrap (the program's lines indented by
# two spaces).  The run's own lines have the PROGRAM "ktapwrap": the kernel
# log checks of the guest, and each program that failed as a whole.
results() {
	tr -d '\r' < "$1" | awk '
	function result(line) {
		if (line ~ /^not ok /) return "fail"
		if (line ~ / # [Ss][Kk][Ii][Pp]/) return "skip"
		return "pass"
	}
	function name(line) {
		sub(/^(not )?ok [0-9]+ /, "", line)
		sub(/ # .*/, "", line)
		# One word: some kernel kvm programs name tests "stage 2 passed".
		gsub(/ /, "_", line)
		return line
	}
	function prog_name(s) {
		sub(/^selftests: /, "", s)
		gsub(/: +/, ":", s)
		return s
	}
	/^# selftests: / { prog = prog_name(substr($0, 3)); subtests = 0; next }
	/^(  |# )(not )?ok [0-9]+ / {
		l = substr($0, 3); print prog, name(l), result(l); subtests = 1; next
	}
	/^(not )?ok [0-9]+ / {
		# The program line "selftests: DIR: PROG": its name before
		# name() turns the spaces into "_".
		n = $0
		sub(/^(not )?ok [0-9]+ /, "", n)
		sub(/ # .*/, "", n)
		n = prog_name(n)
		gsub(/ /, "_", n)
		if ($0 ~ /^not ok/ || n ~ /^kernel-log/) print "ktapwrap", n, result($0)
		# A program that printed no test (exit status only: most of
		# the kernel kvm suite) is one test, named "-".
		if (n == prog && !subtests) print n, "-", result($0)
		prog = ""
	}'
}

# Skips of our suites' tests that their READMEs do not allow on the patched
# kernel (lines "patched: PROGRAM TEST skip  # why"), one line each.
unexpected_skips() {
	local -a readmes=()
	local p

	for p in ${SUITES[@]+"${SUITES[@]}"}; do
		readmes+=("$REPO/selftests/$p/README")
	done
	[ ${#readmes[@]} -gt 0 ] || return 0
	awk -v suites=" ${SUITES[*]} " '
	FILENAME != "-" {
		if ($1 == "patched:" && $4 == "skip") allowed[$2 " " $3] = 1
		next
	}
	$3 == "skip" {
		suite = $1; sub(/:.*/, "", suite)
		if (index(suites, " " suite " ") && !(($1 " " $2) in allowed))
			print "#   UNEXPECTED SKIP " $1 " " $2 " (not listed in selftests/" suite "/README)"
	}' "${readmes[@]}" - < "$OUT/results.txt"
}

# Compare results with expectations: the "PROGRAM TEST RESULT" lines of
# the files in $2 (a README's prose is skipped).  Unlisted tests must pass.  Prints the differences; sets
# MISMATCHES (differences) and XFAILS (failures that were expected).
compare_expectations() {
	local results=$1 expect=$2
	local out

	# With harness filters (--args) a listed test may rightly not run.
	out=$(awk -v filtered="${TEST_ARGS:+1}" '
	FILENAME != "-" {
		if ($0 ~ /^[^ #]+ [^ ]+ (pass|fail|skip)( |$)/) want[$1 " " $2] = $3
		next
	}
	{
		key = $1 " " $2; seen[key] = 1; ran[$1] = 1
		wanted = (key in want) ? want[key] : "pass"
		if ($3 != wanted)
			printf "#   UNEXPECTED %s: %s, expected %s\n", key, $3, wanted
		else if ($3 == "fail")
			xfail++
	}
	END {
		for (k in want) {
			# Only programs that ran: a run of some suites only.
			p = substr(k, 1, index(k, " ") - 1)
			if (p == "ktapwrap")
				p = substr(k, index(k, " ") + 1)
			if (!(k in seen) && (p in ran) && !filtered)
				printf "#   UNEXPECTED %s: did not run, expected %s\n", k, want[k]
		}
		printf "XFAILS %d\n", xfail
	}' $expect - < "$results")
	MISMATCHES=$(printf '%s\n' "$out" | grep -c UNEXPECTED || true)
	XFAILS=$(printf '%s\n' "$out" | sed -n 's/^XFAILS //p')
	printf '%s\n' "$out" | grep -v '^XFAILS ' || true
}

verdict() {
	local mode=$1 npatches=$2 guest_timeout=$3 expect=$4
	local passed failed skipped finished=1 extra watchdog

	echo
	echo "# Kernel source: $SRC_VERSION; mode: $mode; $npatches patches"
	echo "# Console: $CONSOLE; kernel log: $OUT/kernel.log"
	echo "# Per-program results:"
	grep -a -E '^(not )?ok [0-9]+ ' "$CONSOLE" | sed 's/^/#   /' || true
	results "$CONSOLE" > "$OUT/results.txt"
	# Tests, and programs that failed with no failed test (a timeout, a
	# crash between tests) once each.
	read -r passed failed skipped < <(awk '
		$1 == "ktapwrap" && $2 ~ /:/ { if ($3 == "fail") progfail[$2] = 1; next }
		{ n[$3]++; if ($3 == "fail") testfail[$1] = 1 }
		END {
			for (p in progfail) if (!(p in testfail)) n["fail"]++
			print n["pass"] + 0, n["fail"] + 0, n["skip"] + 0
		}' "$OUT/results.txt")
	if ! grep -a -q '^# init: done' "$CONSOLE"; then
		finished=0
		failed=$((failed + 1))
		watchdog=$(cat "$OUT/watchdog" 2>/dev/null || true)
		if [ "$watchdog" = noboot ]; then
			echo "# GUEST DID NOT BOOT: no word from its init in ${BOOT_TIMEOUT}s, twice"
		elif [ "$watchdog" = stalled ]; then
			echo "# GUEST STALLED: its console was silent for ${STALL_TIMEOUT}s"
		elif [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
			echo "# GUEST TIMEOUT after ${guest_timeout}s"
		else
			echo "# GUEST DID NOT FINISH (qemu exit status $QEMU_RC)"
		fi
	fi
	if grep -a -q -E 'Kernel panic|end Kernel panic' "$CONSOLE"; then
		echo "# KERNEL PANIC in the guest"
		[ "$failed" -gt 0 ] || failed=1
	fi
	if [ -n "$expect" ] && [ "$finished" = 1 ]; then
		echo "# Expectations: $expect"
		compare_expectations "$OUT/results.txt" "$expect"
		echo "# $XFAILS failures were expected on this kernel;" \
			"$MISMATCHES results differ from the expectations"
		step "finished"
		echo "$passed passed, $MISMATCHES failed, $skipped skipped" \
			"($XFAILS expected failures)"
		[ "$MISMATCHES" -eq 0 ]
		return
	fi
	if [ "$mode" = patched ] && [ -z "$expect" ]; then
		extra=$(unexpected_skips)
		if [ -n "$extra" ]; then
			echo "# Skips the suites' READMEs do not allow on the patched kernel:"
			echo "$extra"
			failed=$((failed + $(echo "$extra" | wc -l)))
		fi
	fi
	step "finished"
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
}

main "$@"
exit
