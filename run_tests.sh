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

SUITES=(vfio_kvm iommufd_viommu)

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
  --timeout SECONDS    kill the guest after this long (default 1500)
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
	local guest_timeout=${GUEST_TIMEOUT:-1500} build_only=0 test_args=
	local expect= ktapwrap_opts='-k -t 600' p
	FRAGMENTS=("$REPO/config")
	BUILD=$CACHE/build
	local -a extra_patches=() only_suites=()

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
		--expect) expect+="$(realpath "$2") "; shift ;;
		--fail-fast) ktapwrap_opts+=' -x' ;;
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
	TESTS=()
	for p in ${SUITES[@]+"${SUITES[@]}"}; do
		build_selftest "$p" "$REPO/selftests/$p"
	done
	if [ "$upstream_iommufd" = 1 ]; then
		# Not iommufd_fail_nth: under TCG with KASAN its tests exceed
		# their harness timeouts, and a test killed in the middle of
		# adding a mock device leaks it (kmemleak).
		build_selftest iommu "$TREE/tools/testing/selftests/iommu" iommufd
	fi
	if [ -n "$extra_dir" ]; then
		mkdir -p "$OUT/initramfs/extra"
		for p in "$extra_dir"/*; do
			[ -f "$p" ] && [ -x "$p" ] || continue
			cp "$p" "$OUT/initramfs/extra/"
			TESTS+=("extra:${p##*/}=/extra/${p##*/}")
		done
	fi
	[ ${#TESTS[@]} -gt 0 ] || [ "$build_only" = 1 ] || die "no test programs were built"
	pack_initramfs "$ktapwrap_opts" "$test_args"
	[ "$build_only" = 1 ] && { step "build only: done"; exit 0; }

	# --- 6. Boot -----------------------------------------------------------
	boot "$guest_timeout"

	# --- 7. Verdict --------------------------------------------------------
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
		step "copying pristine tree to $TREE"
		rm -rf "$TREE"
		cp -a "$SRC" "$TREE"
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
			die "patch does not apply: $p"
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
			cmp -s "$want" "$TREE/$f" ||
				{ mkdir -p "$(dirname "$TREE/$f")"; cp "$want" "$TREE/$f"; }
		else
			rm -f "$TREE/$f"
		fi
	done
	cp "$stage.files" "$TREE/.vfr-files"
	rm -rf "$stage" "$stage.files"
	echo "$stamp" > "$TREE/.vfr-stamp"
}

# tinyconfig + our fragment + olddefconfig, then every line of the fragment
# must have survived (Kconfig silently drops options with unmet deps).
# Options that the tree's Kconfig does not know (added by the series, on the
# base tree) are reported and ignored.  The configuration is made in a
# scratch directory and copied only if it differs, so that an unchanged
# configuration never invalidates the build.
configure() {
	local cfgstamp scratch=$CACHE/config

	cfgstamp=$(cat "${FRAGMENTS[@]}" "$TREE/.vfr-stamp" | sha256sum | cut -c1-16)
	mkdir -p "$BUILD"
	[ "$(cat "$BUILD/.vfr-config" 2>/dev/null)" = "$cfgstamp" ] && return
	step "configuring: tinyconfig + config fragment + olddefconfig"
	mkdir -p "$scratch"
	make -s -C "$TREE" O="$scratch" ARCH=x86_64 tinyconfig >/dev/null
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$scratch" \
		"$scratch/.config" "${FRAGMENTS[@]}" >/dev/null
	make -s -C "$TREE" O="$scratch" ARCH=x86_64 olddefconfig >/dev/null
	verify_config "$scratch/.config" || die "config fragment did not survive olddefconfig"
	if ! cmp -s "$scratch/.config" "$BUILD/.config"; then
		cp "$scratch/.config" "$BUILD/.config"
		make -s -C "$TREE" O="$BUILD" ARCH=x86_64 olddefconfig >/dev/null
	fi
	echo "$cfgstamp" > "$BUILD/.vfr-config"
}

# The lines of all fragments, the last one of each symbol winning.
effective_fragment() {
	cat "${FRAGMENTS[@]}" | awk '
	/^CONFIG_[A-Za-z0-9_]+=/ { sym = $0; sub(/=.*/, "", sym) }
	/^# CONFIG_[A-Za-z0-9_]+ is not set/ { sym = $2 }
	sym != "" { if (!(sym in line)) order[n++] = sym; line[sym] = $0; sym = "" }
	END { for (i = 0; i < n; i++) print line[order[i]] }'
}

verify_config() {
	local config=$1 bad=0 line sym want have
	while IFS= read -r line; do
		case $line in
		CONFIG_*=*) sym=${line%%=*}; want=$line ;;
		'# CONFIG_'*' is not set') sym=${line#\# }; sym=${sym%% *}; want=n ;;
		*) continue ;;
		esac
		have=$(grep -E "^$sym=|^# $sym is not set" "$config" || true)
		if [ "$want" = n ]; then
			case $have in ''|'# '*) continue ;; esac
		elif [ "$have" = "$want" ]; then
			continue
		fi
		if ! grep -rqsE "^(menu)?config ${sym#CONFIG_}\$" --include='Kconfig*' "$TREE"; then
			echo "  ($sym: not in this tree, ignored)"
			continue
		fi
		echo "  config: want '$want', have '${have:-absent}'" >&2
		bad=1
	done < <(effective_fragment)
	return $bad
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

# A kselftest directory, built statically against the tree's uAPI headers
# and its own kselftest_harness.h; its programs (or only those named after
# the directory) go into the initramfs.
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
	local ktapwrap_opts=$1 test_args=$2

	gcc -static -O2 -Wall -Wextra -Werror -o "$OUT/initramfs/bin/ktapwrap" \
		"$REPO/guest/ktapwrap.c"
	cp "$(command -v busybox)" "$OUT/initramfs/bin/busybox"
	file -L "$OUT/initramfs/bin/busybox" | grep -q 'statically linked' ||
		die "busybox is not static: apt-get install busybox-static"
	install -m 755 "$REPO/guest/init" "$OUT/initramfs/init"
	{
		echo "TESTS='${TESTS[*]}'"
		echo "KTAPWRAP_OPTS='$ktapwrap_opts'"
		echo "TEST_ARGS='$test_args'"
		echo "DUMP_DMESG=1"
	} > "$OUT/initramfs/etc/tests.conf"
	(cd "$OUT/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) \
		> "$OUT/initramfs.cpio.gz"
	step "initramfs: ${#TESTS[@]} programs, $(du -h "$OUT/initramfs.cpio.gz" | cut -f1)"
}

# Run the guest; the console goes to $OUT/console.log and, without the
# kernel log dump at the end, to stdout.
boot() {
	local guest_timeout=$1

	step "booting QEMU (TCG, q35, -cpu max, intel-iommu, edu; timeout ${guest_timeout}s)"
	CONSOLE=$OUT/console.log
	set +e
	timeout -k 10 "$guest_timeout" qemu-system-x86_64 \
		-machine q35 -accel tcg -cpu max -smp 2 -m 2G \
		-display none -monitor none -serial stdio -no-reboot \
		-device intel-iommu -device edu \
		-kernel "$KERNEL" -initrd "$OUT/initramfs.cpio.gz" \
		-append "console=ttyS0 loglevel=1 intel_iommu=on panic=-1 kmemleak=on" \
		< /dev/null 2>&1 | tee "$CONSOLE" |
		sed -u '/^# init: ---- dmesg begin/,/^# init: ---- dmesg end/d'
	QEMU_RC=${PIPESTATUS[0]}
	set -e
	sed -n '/^# init: ---- dmesg begin/,/^# init: ---- dmesg end/p' "$CONSOLE" \
		> "$OUT/kernel.log"
}

# One line per test result of the console's KTAP: "PROGRAM TEST RESULT"
# (RESULT pass, fail or skip); ktapwrap's own tests (kernel log checks, a
# program that failed as a whole) have the PROGRAM "ktapwrap".
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
		return line
	}
	/^# selftests: / { prog = $3; next }
	/^  (not )?ok [0-9]+ / { l = substr($0, 3); print prog, name(l), result(l); next }
	/^(not )?ok [0-9]+ / && ($0 ~ /^not ok/ || $0 ~ /kernel-log/) {
		print "ktapwrap", name($0), result($0)
	}'
}

# Compare results with expectations: the "PROGRAM TEST RESULT" lines of
# the files in $2 (a README's prose is skipped).  Unlisted tests must pass.  Prints the differences; sets
# MISMATCHES (differences) and XFAILS (failures that were expected).
compare_expectations() {
	local results=$1 expect=$2
	local out

	out=$(awk '
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
			if (!(k in seen) && (p in ran))
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
	local summary passed failed skipped

	summary=$(grep -a -E '^ktapwrap: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped' "$CONSOLE" |
		tail -n 1 || true)
	echo
	echo "# Kernel source: $SRC_VERSION; mode: $mode; $npatches patches"
	echo "# Console: $CONSOLE; kernel log: $OUT/kernel.log"
	echo "# Per-program results:"
	grep -a -E '^(not )?ok [0-9]+ ' "$CONSOLE" | sed 's/^/#   /' || true
	results "$CONSOLE" > "$OUT/results.txt"
	read -r passed failed skipped < <(echo "$summary" |
		sed -E 's/^ktapwrap: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/')
	if [ -z "$summary" ]; then
		# The guest died or hung: count what it reported, and fail the run.
		passed=$(grep -a -cE '^  ok [0-9]+ [^#]*$' "$CONSOLE" || true)
		skipped=$(grep -a -cE '^  ok [0-9]+ .*# SKIP' "$CONSOLE" || true)
		failed=$(( $(grep -a -cE '^  not ok [0-9]+ ' "$CONSOLE" || true) + 1 ))
		if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
			echo "# GUEST TIMEOUT after ${guest_timeout}s"
		else
			echo "# GUEST DID NOT FINISH (qemu exit status $QEMU_RC)"
		fi
	fi
	if grep -a -q -E 'Kernel panic|end Kernel panic' "$CONSOLE"; then
		echo "# KERNEL PANIC in the guest"
		[ "$failed" -gt 0 ] || failed=1
	fi
	if [ -n "$expect" ] && [ -n "$summary" ]; then
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
	step "finished"
	echo "$passed passed, $failed failed, $skipped skipped"
	[ "$failed" -eq 0 ]
}

main "$@"
exit
