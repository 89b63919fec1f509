#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make peers: the kernel tree's own vfio and kvm selftests (the programs of
# tools/peers/NAME.list) on the base kernel and on the patched kernel, each
# run checked against tools/peers/NAME.expect, the two compared test by test
# (the patched kernel must fail nothing the base passes), then each mutant
# of tools/peers/mutants.list on top of the series; writes docs/peers.md.
#
# Usage: tools/peers.sh [--suite NAME]... [--mutant FILE]... [--no-mutants]
#                       [--only base|patched|mutants|doc]... [--doc FILE]
# --only runs some steps, keeping the results of the others (in
# $CACHE/peers/report), e.g. one guest run at a time, each under its own
# flock /tmp/heavy.lock, then --only doc.
# Environment: PEER_TIMEOUT (seconds a program may run before it is killed,
# default 240; see run_tests.sh), PEERS_GUEST_TIMEOUT (one guest run,
# default 1500 s).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$CACHE/peers/report
DOC=$REPO/docs/peers.md
GUEST_TIMEOUT=${PEERS_GUEST_TIMEOUT:-1500}
# The longest program of the lists (kvm_create_max_vcpus) took 63 s to
# 113 s in the guest: a hung one costs four minutes, not ktapwrap's ten.
export PEER_TIMEOUT=${PEER_TIMEOUT:-240}

# Prefix every line with the host's time in seconds.
stamp() {
	local line

	while IFS= read -r line; do
		printf '%(%s)T %s\n' -1 "${line%$'\r'}"
	done
}

# run NAME SUITES RUNNER-ARGS...: one guest run of the peer suites SUITES
# (words); keeps the timestamped log and the results as
# $DIR/NAME.{log,results}; returns the runner's status.
run() {
	local name=$1 suites=$2 rc=0 s out

	shift 2
	local -a args=(--suite none --timeout "$GUEST_TIMEOUT")
	for s in $suites; do
		args+=(--kernel-suite "$s" --expect "$REPO/tools/peers/$s.expect")
	done
	step "peers: $name: run_tests.sh $* ${args[*]#$REPO/} (PEER_TIMEOUT=$PEER_TIMEOUT)"
	echo "$PEER_TIMEOUT" > "$DIR/$name.peer-timeout"
	set +e
	"$REPO/run_tests.sh" "$@" "${args[@]}" 2>&1 | stamp | tee "$DIR/$name.log" |
		cut -d' ' -f2- | grep --line-buffered -E \
		'^(==>|# selftests:|(not )?ok [0-9]|#   UNEXPECTED|[0-9]+ passed)'
	rc=${PIPESTATUS[0]}
	set -e
	out=$(sed -n 's/^[0-9]* # Console: \(.*\)\/console.log;.*/\1/p' "$DIR/$name.log")
	if [ -n "$out" ] && [ -f "$out/results.txt" ]; then
		cp "$out/results.txt" "$DIR/$name.results"
	else
		: > "$DIR/$name.results"
	fi
	return "$rc"
}

# Seconds each program ran (from the first line of its output to its
# result line) in the timestamped log $1: "PROGRAM SECONDS" per line, then
# "guest SECONDS" (boot to power-off) and "boot SECONDS".
timings() {
	awk '
	{ t = $1; sub(/^[0-9]+ /, "") }
	/^==> .*booting QEMU/ { boot = t }
	/^# selftests: / { prog = $3; start = t; if (!first) first = t; next }
	prog != "" && /^(not )?ok [0-9]+ / {
		n = $0; sub(/^(not )?ok [0-9]+ /, "", n); sub(/ .*/, "", n)
		if (n == prog) { print prog, t - start; prog = "" }
	}
	/^# init: done/ { end = t }
	END {
		if (boot && end) print "guest", end - boot
		if (boot && first) print "boot", first - boot
	}' "$1"
}

# The kernel reports ktapwrap charged to a test or program in the
# timestamped log $1 (also those of tests that were expected to fail).
reports() {
	sed -n 's/^[0-9]* *\(not \)\{0,1\}ok [0-9]* \(.*\) # KERNEL LOG[^:]*: /\2: /p' "$1"
}

# Per program of suite $2 in results file $1: "PROGRAM PASS FAIL SKIP".
counts() {
	awk -v s="$2:" '
	index($1, s) == 1 { n[$1]++; r[$1, $3]++ }
	END { for (p in n) print p, r[p, "pass"] + 0, r[p, "fail"] + 0, r[p, "skip"] + 0 }' \
		"$1" | sort
}

# Tests whose result differs between results files $1 and $2, as
# "PROGRAM TEST RESULT1 RESULT2" ("-" for a test that did not run).
differences() {
	awk '
	{ k = $1 " " $2; r[f, k] = $3; keys[k] = 1 }
	END {
		for (k in keys) {
			a = ((1, k) in r) ? r[1, k] : "-"
			b = ((2, k) in r) ? r[2, k] : "-"
			if (a != b) print k, a, b
		}
	}' f=1 "$1" f=2 "$2" | sort
}

# The reasons of a list or expect file: its "# ..." comment after an entry,
# or the comment block just before it; "ENTRY<TAB>REASON" per entry.
reasons() {
	awk -v want="$2" '
	/^#/ { c = c (c ? " " : "") substr($0, 3); next }
	/^[[:space:]]*$/ { c = ""; next }
	{
		line = $0; why = c
		if (index(line, "#")) {
			why = substr(line, index(line, "#") + 2)
			line = substr(line, 1, index(line, "#") - 1)
		}
		sub(/[[:space:]]+$/, "", line)
		if (want == "excluded" && line !~ /^-/) next
		if (want == "excluded") sub(/^-/, "", line)
		printf "%s\t%s\n", line, why
	}' "$1"
}

# "P / F / S" totals of suite $2 in results file $1 ("- / - / -" if absent).
totals() {
	[ -s "$1" ] || { echo "- / - / -"; return; }
	counts "$1" "$2" |
		awk '{ p += $2; f += $3; k += $4 } END { print p + 0 " / " f + 0 " / " k + 0 }'
}

# Guest seconds of the programs of suite $2 in the timestamped log $1.
suite_time() {
	[ -s "$1" ] || { echo "-"; return; }
	timings "$1" | awk -v s="$2:" 'index($1, s) == 1 { t += $2 } END { print t + 0 }'
}

# Guest seconds, boot to power-off, of the timestamped log $1.
guest_time() {
	[ -s "$1" ] || { echo "-"; return; }
	timings "$1" | awk '$1 == "guest" { print $2 }'
}

# Programs run (not excluded) of tools/peers/$1.list.
listed() {
	sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' -e '/^-/d' \
		"$REPO/tools/peers/$1.list" | wc -l
}

write_doc() {
	local s p t base patched nb np diff gb gp

	gb=$(guest_time "$DIR/base.log") gp=$(guest_time "$DIR/patched.log")
	{
	cat <<EOF
# The kernel's own vfio and kvm selftests: base 7.3.4 vs the series

Written by \`make peers\` (\`tools/peers.sh\`) on $(date -u +%Y-%m-%d); do not
edit by hand (the prose is in \`tools/peers.sh\`, the reasons in
\`tools/peers/\`).  Kernel: $(sed -n 's/^[0-9]* # Kernel source: \([^;]*\);.*/\1/p' \
	"$DIR/base.log" 2>/dev/null | head -n 1), patched with the $(sed -n \
	's/^[0-9]* ==> .* tree: .*(\([0-9]*\) patches)$/\1/p' "$DIR/patched.log" \
	2>/dev/null | head -n 1) patches of \`linux/fixes\`, \`linux\` and
\`linux/test-only\`; guest: QEMU TCG, \`-cpu max\` (nested SVM,
\`kvm_amd\`), \`intel-iommu\`, \`edu\` bound to vfio-pci, the KASAN + lockdep +
kmemleak kernel of \`run_tests.sh\`; every program runs under \`ktapwrap\`
(kernel log scanned at every test result, kmemleak after every program)
and is killed after PEER_TIMEOUT seconds (base: $(cat "$DIR/base.peer-timeout" \
	2>/dev/null || echo "?") s, patched: $(cat "$DIR/patched.peer-timeout" \
	2>/dev/null || echo "?") s).

Each kernel runs the programs of \`tools/peers/NAME.list\` (\`run_tests.sh
--suite none --kernel-suite vfio --kernel-suite kvm\`), checked against
\`tools/peers/NAME.expect\` (the tests that do not pass on the base kernel,
and why), and the two runs are compared test by test.  A program that
prints no test result of its own (most of the kvm suite: exit status only)
is one test, named \`-\`.

vfio: every program of \`tools/testing/selftests/vfio\`, on QEMU's \`edu\`
device by BDF (\`VFIO_SELFTESTS_BDF\`).  \`vfio_dma_mapping_test\`,
\`vfio_dma_mapping_mmio_test\` and \`vfio_pci_device_init_perf_test\` run
every fixture in the five IOMMU modes of libvfio: \`vfio_type1_iommu\`,
\`vfio_type1v2_iommu\` (VFIO container), \`iommufd_compat_type1\`,
\`iommufd_compat_type1v2\` (\`/dev/iommu\` as the group's container,
\`CONFIG_IOMMUFD_VFIO_CONTAINER\`) and \`iommufd\` (device cdev bound to
iommufd); \`vfio_iommufd_setup_test\` is the cdev + iommufd path;
\`vfio_pci_device_test\` has no mode variants (libvfio's default,
\`iommufd\`); \`vfio_pci_driver_test\` and \`vfio_pci_sriov_uapi_test\` have
all five but skip as a whole on \`edu\` (no libvfio driver, no SR-IOV).

kvm: the programs that create and release VMs, their devices, memory
slots and stats, and finish in bounded time under TCG: $(listed kvm) of the
108 of the tree, chosen from a survey run of all 108; each other one is
listed below with the reason and its time in that survey.

## Not in CI: \`make peers\`

The two runs take ${gb} s + ${gp} s of guest time, plus a switch of the
kernel build each (1-3 min) and the selftest builds (under a minute): about
$(( (${gb:-0} + ${gp:-0} + 300) / 60 )) minutes on top of the 27 minutes of today's \`.ci/run\`, past CI's
45.  The whole kvm suite is longer still: the survey ran vfio and all 108
kvm programs in 2830 s of guest time on one kernel, with a 60 s limit on
each program (13 did not finish).  So it is \`make peers\` (or
\`tools/peers.sh\`), run before a new version of the series is posted, with
this file committed; \`tools/peers.sh --only base|patched|mutants|doc\`
runs one step at a time.

## Summary

| suite | programs | base: pass / fail / skip | patched: pass / fail / skip | differences | guest time, base | guest time, patched |
|---|---|---|---|---|---|---|
EOF
	for s in "${SUITES[@]}"; do
		nb=$(totals "$DIR/base.results" "$s")
		np=$(totals "$DIR/patched.results" "$s")
		diff=$(differences "$DIR/base.results" "$DIR/patched.results" 2>/dev/null |
			grep -c "^$s:" || true)
		base=$(suite_time "$DIR/base.log" "$s")
		patched=$(suite_time "$DIR/patched.log" "$s")
		echo "| $s | $(listed "$s") | $nb | $np | $diff | ${base} s | ${patched} s |"
	done
	echo
	echo "Whole guest run (boot to power-off, both suites): base ${gb} s," \
		"patched ${gp} s; boot to the first program about" \
		"$(timings "$DIR/patched.log" 2>/dev/null | awk '$1 == "boot" { print $2 }') s." \
		"A program's time includes ktapwrap's kmemleak scan after it (about 8 s)."
	echo
	for p in base patched; do
		[ -f "$DIR/$p.log" ] || continue
		echo "Physical devices bound to vfio-pci in the $p guest (the vfio" \
			"programs take the first):" \
			"$(sed -n "s/.*VFIO_KVM_PCI='\([^']*\)'.*/\1/p" "$DIR/$p.log" | head -n 1)."
	done
	echo
	for p in base patched; do
		[ -f "$DIR/$p.log" ] || continue
		echo "Kernel reports (KASAN, lockdep, WARNING, kmemleak, ...) on the $p" \
			"kernel: $(reports "$DIR/$p.log" | wc -l)."
		reports "$DIR/$p.log" | sed 's/^/- /'
	done
	echo
	echo "## Differences between base and patched"
	echo
	diff=$(differences "$DIR/base.results" "$DIR/patched.results" 2>/dev/null)
	if [ ! -s "$DIR/base.results" ] || [ ! -s "$DIR/patched.results" ]; then
		echo "Not compared: a run is missing."
	elif [ -z "$diff" ]; then
		echo "None: every test has the same result on both kernels."
	else
		echo "| program | test | base | patched |"
		echo "|---|---|---|---|"
		echo "$diff" | while read -r p t base patched; do
			echo "| $p | $t | $base | $patched |"
		done
	fi
	for s in "${SUITES[@]}"; do
		echo
		echo "## $s: per program"
		echo
		echo "Tests pass / fail / skip, and seconds in the guest."
		echo
		echo "| program | base | patched | base s | patched s |"
		echo "|---|---|---|---|---|"
		join -a 1 -a 2 -e - -o 0,1.2,1.3,1.4,2.2,2.3,2.4 \
			<(counts "$DIR/base.results" "$s" 2>/dev/null) \
			<(counts "$DIR/patched.results" "$s" 2>/dev/null) |
		while read -r p b1 b2 b3 p1 p2 p3; do
			echo "| $p | $b1 / $b2 / $b3 | $p1 / $p2 / $p3" \
				"| $(timings "$DIR/base.log" 2>/dev/null | awk -v p="$p" '$1 == p { print $2 }')" \
				"| $(timings "$DIR/patched.log" 2>/dev/null | awk -v p="$p" '$1 == p { print $2 }') |"
		done
		echo
		echo "Not passing on the base kernel (\`tools/peers/$s.expect\`):"
		echo
		if [ -z "$(reasons "$REPO/tools/peers/$s.expect" expected)" ]; then
			echo "none."
		else
			echo "| program | test | result | why |"
			echo "|---|---|---|---|"
			reasons "$REPO/tools/peers/$s.expect" expected |
			while IFS=$'\t' read -r t why; do
				set -- $t
				echo "| $1 | $2 | $3 | $why |"
			done
		fi
		if grep -q '^-' "$REPO/tools/peers/$s.list"; then
			echo
			echo "Not run (\`tools/peers/$s.list\`; times from the survey run):"
			echo
			echo "| program | why |"
			echo "|---|---|"
			reasons "$REPO/tools/peers/$s.list" excluded |
			while IFS=$'\t' read -r p why; do
				echo "| $p | $why |"
			done
		fi
	done
	if [ ${#MUTANTS[@]} -gt 0 ]; then
		echo
		echo "## Mutants"
		echo
		echo "Each patch on top of the series, the programs of the suites named"
		echo "with \`--fail-fast\`: killed when a test fails (or the run does)."
		echo
		echo "| mutant | suites | verdict | killed by | guest s |"
		echo "|---|---|---|---|---|"
		for p in "${MUTANTS[@]}"; do
			t=${p##*/} t=${t%.patch}
			if [ ! -f "$DIR/mutant-$t.rc" ]; then
				echo "| ${p#$REPO/} | ${MUTANT_SUITES[$p]:-${SUITES[*]}} | not run | | |"
				continue
			fi
			diff=$(awk '$1 != "ktapwrap" && $3 == "fail" { print $1, $2; exit }' \
				"$DIR/mutant-$t.results")
			[ -z "$diff" ] || diff="$diff$(reports "$DIR/mutant-$t.log" |
				head -n 1 | sed 's/^/ (/; s/$/)/')"
			if [ -n "$diff" ] || [ "$(cat "$DIR/mutant-$t.rc")" != 0 ]; then
				echo "| ${p#$REPO/} | ${MUTANT_SUITES[$p]:-${SUITES[*]}} | killed |" \
					"${diff:-the run failed} | $(guest_time "$DIR/mutant-$t.log") |"
			else
				echo "| ${p#$REPO/} | ${MUTANT_SUITES[$p]:-${SUITES[*]}} | survived | |" \
					"$(guest_time "$DIR/mutant-$t.log") |"
			fi
		done
		if [ -f "$REPO/tools/peers/mutants.md" ]; then
			echo
			cat "$REPO/tools/peers/mutants.md"
		fi
	fi
	} > "$DOC"
	step "wrote ${DOC#$REPO/}"
}

# Whether step $1 is to be done (--only).
doing() {
	[ ${#ONLY[@]} -eq 0 ] || [[ " ${ONLY[*]} " == *" $1 "* ]]
}

main() {
	local status=0 p t rc
	SUITES=() MUTANTS=() ONLY=()
	declare -gA MUTANT_SUITES=()
	local mutants=1

	while [ $# -gt 0 ]; do
		case $1 in
		--suite) SUITES+=("$2"); shift ;;
		--mutant) MUTANTS+=("$(realpath "$2")"); shift ;;
		--no-mutants) mutants=0 ;;
		--only)
			case $2 in
			base|patched|mutants|doc) ONLY+=("$2") ;;
			*) die "--only: base, patched, mutants or doc, not $2" ;;
			esac
			shift ;;
		--doc) DOC=$(realpath "$2"); shift ;;
		*) die "unknown option: $1" ;;
		esac
		shift
	done
	[ ${#SUITES[@]} -gt 0 ] || SUITES=(vfio kvm)
	if [ ${#MUTANTS[@]} -eq 0 ] && [ "$mutants" = 1 ]; then
		while read -r p rest; do
			MUTANTS+=("$REPO/$p")
			MUTANT_SUITES[$REPO/$p]=${rest:-${SUITES[*]}}
		done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$REPO/tools/peers/mutants.list")
	fi
	[ ${#ONLY[@]} -gt 0 ] || rm -rf "$DIR"
	mkdir -p "$DIR"

	if doing base; then
		run base "${SUITES[*]}" --base || status=1
	fi
	if doing patched; then
		run patched "${SUITES[*]}" || status=1
	fi
	if doing base || doing patched; then
		for p in base patched; do
			[ -f "$DIR/$p.log" ] || continue
			if [ -n "$(reports "$DIR/$p.log")" ]; then
				echo "peers: kernel reports on the $p kernel:"
				reports "$DIR/$p.log" | sed 's/^/  /'
				status=1
			fi
		done
		if [ -s "$DIR/base.results" ] && [ -s "$DIR/patched.results" ]; then
			if [ -n "$(differences "$DIR/base.results" "$DIR/patched.results")" ]; then
				echo "peers: results differ between base and patched:"
				differences "$DIR/base.results" "$DIR/patched.results" |
					sed 's/^/  /'
				status=1
			else
				echo "peers: base and patched agree on every test"
			fi
		fi
	fi
	if doing mutants; then
		for p in ${MUTANTS[@]+"${MUTANTS[@]}"}; do
			t=$(basename "$p" .patch)
			rc=0
			run "mutant-$t" "${MUTANT_SUITES[$p]:-${SUITES[*]}}" \
				--patch "$p" --fail-fast || rc=$?
			echo "$rc" > "$DIR/mutant-$t.rc"
		done
	fi
	if doing doc; then
		write_doc
	fi
	exit $status
}

main "$@"
