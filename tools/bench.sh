#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Base vs patched throughput of the paths the series touches, on kernels
# built without KASAN/lockdep/kmemleak (tools/bench/nodebug.config), and the
# report docs/bench.md (method, raw numbers, ratios).
#
#   1. both kernels through the runner (--config-extra nodebug.config
#      --build-only, base then patched; bzImages cached by their inputs);
#   2. tools/bench/vfr_bench.c (static) + tools/bench/init + busybox packed
#      into an initramfs of our own;
#   3. under the cache lock, QEMU booted here with the runner's machine:
#      ROUNDS wall-clock boots of each kernel, alternating base and patched,
#      then ICOUNT_ROUNDS boots of each with -icount shift=0,sleep=off
#      (guest ns = guest instructions);
#   4. docs/bench.md from the raw console lines.
#
# Usage: tools/bench.sh              build, measure, write docs/bench.md
#        tools/bench.sh --report     rewrite docs/bench.md from the last raw data
#        tools/bench.sh --verdict    time-to-verdict runs of run_tests.sh in a
#                                    fresh CACHE_DIR (long); section of docs/bench.md
# Environment: ROUNDS (5), ICOUNT_ROUNDS (3), BENCH_T (seconds per path, 1),
# ICOUNT_T (virtual seconds per path, 0.2), BENCH_PATHS (comma list, all).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROUNDS=${ROUNDS:-5}
ICOUNT_ROUNDS=${ICOUNT_ROUNDS:-3}
BENCH_T=${BENCH_T:-1}
ICOUNT_T=${ICOUNT_T:-0.2}
BENCH_PATHS=${BENCH_PATHS:-}
BDIR=$CACHE/bench
RAW=$BDIR/raw
FRAG=$REPO/tools/bench/nodebug.config
REPORT=$REPO/docs/bench.md
GUEST_TIMEOUT=600

# What a kernel depends on: source package, runner, fragments, patches.
kernel_key() {
	{
		ls "$CACHE/deb"
		cat "$REPO/run_tests.sh" "$REPO/tools/lib.sh" "$REPO/config" "$FRAG"
		[ "$1" = base ] || { read_series; cat "${SERIES[@]}"; }
	} | sha256sum | cut -c1-16
}

build_kernel() {
	local mode=$1 key out
	key=$(kernel_key "$mode")
	out=$BDIR/bzImage-$mode
	if [ -f "$out" ] && [ "$(cat "$out.key" 2>/dev/null)" = "$key" ] &&
	   [ -d "$CACHE/build-nodebug/usr/include" ]; then
		step "$mode kernel: cached ($out)"
		return
	fi
	step "$mode kernel: run_tests.sh --config-extra nodebug.config --build-only"
	mkdir -p "$BDIR/noop"
	# The runner wants at least one guest program, even with --build-only.
	printf '#!/bin/sh\nexit 0\n' > "$BDIR/noop/noop"
	chmod +x "$BDIR/noop/noop"
	local -a base=()
	[ "$mode" = patched ] || base=(--base)
	"$REPO/run_tests.sh" ${base[@]+"${base[@]}"} \
		--config-extra "$FRAG" --build-only --suite none \
		--extra "$BDIR/noop" 2>&1 | sed -u 's/^/    /'
	cp "$CACHE/build-nodebug/arch/x86/boot/bzImage" "$out"
	echo "$key" > "$out.key"
	grep -q '^CONFIG_KASAN=y' "$CACHE/build-nodebug/.config" &&
		die "the benchmark kernel has KASAN"
	return 0
}

# vfr_bench against the benchmark build's uAPI headers and the source's
# iommufd_test.h (the series' additions are mirrored in
# selftests/iommufd_viommu/viommu_uapi.h).
build_guest() {
	local src ird=$BDIR/initramfs

	src=$(cat "$CACHE/tree/.vfr-src")
	step "building vfr_bench and the initramfs"
	rm -rf "$ird"
	mkdir -p "$ird"/{bin,proc,sys,dev,tmp}
	# The series' uAPI names where the headers have them (as the suite's
	# Makefile decides), else viommu_uapi.h's 7.3 fallback.
	local -a have=()
	grep -qs kvm_vm_fd "$CACHE/build-nodebug/usr/include/linux/iommufd.h" &&
		have+=(-DHAVE_VIOMMU_KVM_VM_FD)
	grep -qs MOCK_FLAGS_DEVICE_KVM_VM "$src/drivers/iommu/iommufd/iommufd_test.h" &&
		have+=(-DHAVE_MOCK_DEVICE_KVM_VM)
	gcc -static -O2 -Wall -Wextra -Werror -pthread ${have[@]+"${have[@]}"} \
		-isystem "$CACHE/build-nodebug/usr/include" \
		-I"$src/drivers/iommu/iommufd" -I"$REPO/selftests/iommufd_viommu" \
		-o "$ird/bin/vfr_bench" "$REPO/tools/bench/vfr_bench.c"
	cp "$(command -v busybox)" "$ird/bin/busybox"
	install -m 755 "$REPO/tools/bench/init" "$ird/init"
	(cd "$ird" && find . | cpio -o -H newc --quiet | gzip -1) > "$BDIR/initramfs.cpio.gz"
}

# boot MODE KIND(wall|icount) ROUND: one guest run, console in $RAW.
boot() {
	local mode=$1 kind=$2 round=$3 t=$BENCH_T log
	local -a icount=()
	log=$RAW/$kind-$mode-$round.log
	if [ "$kind" = icount ]; then
		icount=(-icount "shift=0,sleep=off")
		t=$ICOUNT_T
	fi
	step "$kind round $round: $mode (host load $(cut -d' ' -f1-3 /proc/loadavg))"
	{
		echo "# host: loadavg $(cat /proc/loadavg)"
		timeout -k 10 "$GUEST_TIMEOUT" qemu-system-x86_64 \
			"${GUEST_MACHINE[@]}" \
			-display none -monitor none -serial stdio -no-reboot \
			-device intel-iommu -device edu "${icount[@]}" \
			-kernel "$BDIR/bzImage-$mode" -initrd "$BDIR/initramfs.cpio.gz" \
			-append "console=ttyS0 loglevel=1 intel_iommu=on panic=-1 bench_t=$t bench_paths=$BENCH_PATHS" \
			< /dev/null 2>&1 || echo "# host: qemu exit status $?"
	} > "$log"
	grep -a '^BENCH ' "$log" | sed 's/^/    /' || true
	grep -aq '^# bench: exit status 0' "$log" ||
		{ tail -n 20 "$log"; die "guest run failed: $log"; }
}

measure() {
	local r mode
	rm -rf "$RAW"
	mkdir -p "$RAW"
	cache_lock	# no runner builds or boots while we measure
	for r in $(seq "$ROUNDS"); do
		for mode in base patched; do
			boot "$mode" wall "$r"
		done
	done
	for r in $(seq "$ICOUNT_ROUNDS"); do
		for mode in base patched; do
			boot "$mode" icount "$r"
		done
	done
	exec 9>&-
}

# All raw results as "kind mode round path threads value", value being
# ops/s (wall: operations / elapsed time), in icount runs the measuring
# thread's CPU time per op (its instructions per op) or, for two threads,
# the lower of their CPU time and the virtual time per op (see
# report.md.in), or na/error.
collect() {
	local f b
	for f in "$RAW"/*.log; do
		b=$(basename "$f" .log)
		awk -v id="${b//-/ }" '/^BENCH / {
			v = "error"
			for (i = 3; i <= NF; i++) {
				split($i, kv, "=")
				if (kv[1] == "threads") th = kv[2]
				if (kv[1] == "ops") ops = kv[2]
				if (kv[1] == "ns") ns = kv[2]
				if (kv[1] == "cpu_ns") cpu = kv[2]
				if (kv[1] == "na") v = "na"
			}
			if ($0 ~ / ops=/)
				if (id !~ /^icount/)
					v = sprintf("%.0f", ops * 1e9 / ns)
				else if (th == 1)
					v = sprintf("%.0f", cpu / ops)
				else	# the lower: see report.md.in
					v = sprintf("%.0f", (cpu < ns ? cpu : ns) / ops)
			print id, $2, th, v
		}' "$f"
	done
}

# awk functions for both tables: numeric insertion sort of a space-separated
# list into a[1..n], and its median.
STATS_AWK='
function sorted(s, a,   n, i, j, t) {
	n = split(s, a, " ")
	for (i = 2; i <= n; i++) {
		t = a[i] + 0
		for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
		a[j + 1] = t
	}
	return n
}
function med(s,   a, n) {
	n = sorted(s, a)
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
'

# Markdown table: per path, median [min-max] of each kernel and the ratio
# of the medians as throughput patched/base.
table() {
	local kind=$1
	collect | awk -v kind="$kind" "$STATS_AWK"'
	function lo(s,   a) { sorted(s, a); return a[1] }
	function hi(s,   a, n) { n = sorted(s, a); return a[n] }
	function cell(k) {
		if (k in bad) return bad[k]
		if (!(k in v)) return "-"
		return sprintf("%.0f [%s-%s]", med(v[k]), lo(v[k]), hi(v[k]))
	}
	$1 == kind {
		k = $4 SUBSEP $2
		if (!($4 in seen)) { seen[$4] = 1; order[n++] = $4; th[$4] = $5 }
		if ($6 == "na" || $6 == "error") bad[k] = $6 == "na" ? "n/a" : "ERROR"
		else v[k] = v[k] (v[k] == "" ? "" : " ") $6
	}
	END {
		unit = kind == "icount" ? "insns/op" : "ops/s"
		printf "| path | threads | base %s | patched %s | patched/base |", unit, unit
		if (kind == "wall") printf " best patched/best base |"
		printf "\n|---|---|---|---|---|%s\n", kind == "wall" ? "---|" : ""
		for (i = 0; i < n; i++) {
			p = order[i]; b = p SUBSEP "base"; q = p SUBSEP "patched"
			r = "-"
			if ((b in v) && (q in v) && !(b in bad) && !(q in bad)) {
				if (kind == "icount") r = sprintf("%.3f", med(v[b]) / med(v[q]))
				else r = sprintf("%.3f", med(v[q]) / med(v[b]))
			}
			printf "| %s | %s | %s | %s | %s |", p, th[p], cell(b), cell(q), r
			if (kind == "wall")
				printf " %s |", r == "-" ? "-" : sprintf("%.3f", hi(v[q]) / hi(v[b]))
			printf "\n"
		}
	}'
}

# What the VM association (or the new flag) adds to a path, in icount
# instructions: the medians of "with" minus "without", per kernel.
deltas() {
	collect | awk "$STATS_AWK"'
	function d(with, without, m) {
		if (!((with SUBSEP m) in v) || !((without SUBSEP m) in v)) return "n/a"
		return sprintf("%+.0f", med(v[with SUBSEP m]) - med(v[without SUBSEP m]))
	}
	function row(what, with, without) {
		printf "| %s | `%s` - `%s` | %s | %s |\n", what, with, without,
			d(with, without, "base"), d(with, without, "patched")
	}
	$1 == "icount" && $6 != "na" && $6 != "error" {
		k = $4 SUBSEP $2; v[k] = v[k] (v[k] == "" ? "" : " ") $6
	}
	END {
		print "| what | paths | base insns | patched insns |"
		print "|---|---|---|---|"
		row("VM reference at group-path open/close", "group_open", "group_open_novm")
		row("VM association on the cdev path", "cdev_open", "cdev_open_novm")
		row("vIOMMU with a VM fd", "viommu_kvm", "viommu")
		row("vIOMMU taking the device'"'"'s VM", "viommu_devvm", "viommu")
		row("KVM VFIO device create/release", "vm_create_vfio", "vm_create")
	}'
}

report() {
	local verdict_section=
	[ -d "$RAW" ] || die "no raw data in $RAW: run tools/bench.sh first"
	mkdir -p "$REPO/docs"
	# Keep the time-to-verdict section of an earlier report.
	[ -f "$REPORT" ] && verdict_section=$(sed -n '/^## Time to verdict/,$p' "$REPORT")
	{
		sed -n '/^<!-- method -->/,/^<!-- end method -->/p' "$REPO/tools/bench/report.md.in" |
			sed '1d;$d' |
			sed -e "s/@ROUNDS@/$(cat "$BDIR/meta.rounds" 2>/dev/null || echo "$ROUNDS")/g" \
			    -e "s/@ICOUNT_ROUNDS@/$(cat "$BDIR/meta.icount_rounds" 2>/dev/null || echo "$ICOUNT_ROUNDS")/g" \
			    -e "s/@BENCH_T@/$BENCH_T/g" -e "s/@ICOUNT_T@/$ICOUNT_T/g"
		echo
		echo "## Results ($(cat "$BDIR/meta.date" 2>/dev/null || date -u +%F))"
		echo
		echo "Kernel: $(cat "$BDIR/meta.src" 2>/dev/null), built with \`tools/bench/nodebug.config\`;"
		echo "series: $(cat "$BDIR/meta.series" 2>/dev/null)."
		echo "Host: $(nproc) CPUs, $(qemu-system-x86_64 --version | head -n 1)."
		echo "\`make bench\` took $(cat "$BDIR/meta.duration" 2>/dev/null || echo '?') s (kernel builds and waiting for the cache lock behind other runs included)."
		echo
		echo "### Instructions per operation (QEMU -icount shift=0,sleep=off)"
		echo
		echo "Guest instructions per operation: for one thread its CPU time under"
		echo "icount (user + kernel); for the \`_mt\` paths the lower of the threads'"
		echo "CPU time and the virtual time, per operation (see the method). Median [min-max]"
		echo "of $(cat "$BDIR/meta.icount_rounds" 2>/dev/null || echo "$ICOUNT_ROUNDS") boots of each kernel; patched/base is base insns /"
		echo "patched insns (> 1: the patched path is cheaper)."
		echo
		table icount
		echo
		echo "What the VM association adds to a path (differences of the medians above):"
		echo
		deltas
		echo
		echo "### Throughput, wall clock (TCG, host shared)"
		echo
		echo "Median [min-max] ops/s of $(cat "$BDIR/meta.rounds" 2>/dev/null || echo "$ROUNDS") boots of each kernel, alternating;"
		echo "patched/base is the ratio of the medians, best patched/best base the"
		echo "ratio of the fastest boots (host noise only ever slows a boot down)."
		echo
		table wall
		echo
		sed -n '/^<!-- discussion -->/,/^<!-- end discussion -->/p' "$REPO/tools/bench/report.md.in" |
			sed '1d;$d'
		echo
		echo "### Raw numbers"
		echo
		echo "One line per boot and path: kind, kernel, round, path, threads, value"
		echo "(wall: ops/s; icount: the measuring threads' instructions per op)."
		echo "Host load (/proc/loadavg) at each boot:"
		echo
		echo '```'
		for f in "$RAW"/*.log; do
			printf '%-20s %s\n' "$(basename "$f" .log)" "$(sed -n 's/^# host: loadavg //p' "$f")"
		done
		echo
		collect | sort -k1,1 -k4,4 -k2,2 -k3,3n
		echo '```'
		if [ -n "$verdict_section" ]; then
			echo
			echo "$verdict_section"
		fi
	} > "$REPORT.tmp"
	mv "$REPORT.tmp" "$REPORT"
	step "report: $REPORT"
}

main() {
	local start
	case ${1:-} in
	--report) report; exit ;;
	--verdict) exec "$REPO/tools/bench/verdict.sh" ;;
	'') ;;
	*) echo "usage: $0 [--report|--verdict]" >&2; exit 2 ;;
	esac
	need gcc qemu-system-x86_64 busybox cpio gzip flock timeout
	start=$(date +%s)
	mkdir -p "$BDIR"
	build_kernel base
	build_kernel patched
	build_guest
	measure
	echo "$ROUNDS" > "$BDIR/meta.rounds"
	echo "$ICOUNT_ROUNDS" > "$BDIR/meta.icount_rounds"
	date -u '+%F %H:%M UTC' > "$BDIR/meta.date"
	basename "$(cat "$CACHE/tree/.vfr-src")" > "$BDIR/meta.src"
	read_series
	echo "${#SERIES[@]} patches of linux/series, sha256 of their content" \
		"$(cat "${SERIES[@]}" | sha256sum | cut -c1-12)" > "$BDIR/meta.series"
	echo $(($(date +%s) - start)) > "$BDIR/meta.duration"
	report
}

main "$@"
