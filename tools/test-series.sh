#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks of tools/series.sh that need no kernel build (seconds): one series
# given as a format-patch directory, as one mbox (git format-patch --stdout
# order reversed, with a cover letter and a reply), and as a mail client
# saves it (quoted-printable, ">From" escaped) must give the same patches
# and the same sha256; `--series linux/` must be what read_series applies
# (fixes, series, test-only); and the seed-000 patch as posted must be
# refused on 7.3.4 naming its two rejected hunks (when the source is in the
# cache).  With SUITES_BUILD=DIR, also the rule map (below).
# Prints "test-series: N checks, N failures".
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$REPO/tools/series.sh"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT; [ -z "${KEEP:-}" ] || trap - EXIT
checks=0 failures=0
check() {
	checks=$((checks + 1))
	if "$@"; then echo "ok: ${desc}"; else echo "FAILED: ${desc}"; failures=$((failures + 1)); fi
}
sha() { sed -n 's/^sha256 //p' "$1/identity"; }

# A mail (format-patch file $1) as a mail client saves it: quoted-printable
# body, an mbox "From " line, ">From" for a body line starting "From ",
# the subject tagged [PATCH $2].
qp_mail() {
	N=$2 perl -MMIME::QuotedPrint -e '
		local $/; my ($h, $b) = split /\n\n/, <STDIN>, 2;
		$h =~ s/^From [0-9a-f]{40} .*\n//;
		$h =~ s/^Subject: (\[[^]]*\] *)?/Subject: [PATCH $ENV{N}] /m;
		$b = encode_qp($b);
		$b =~ s/^(>*From )/>$1/mg;
		print "From MAILER-DAEMON Mon Jan  1 00:00:00 2026\n$h\n",
		      "Content-Type: text/plain; charset=UTF-8\n",
		      "Content-Transfer-Encoding: quoted-printable\n\n$b\n";' < "$1"
}

src=$REPO/docs/posted/seed-000/7.3.4
mkdir -p "$tmp/dir"
cp "$src"/*.patch "$tmp/dir/"
# Two more patches of our own, so that order matters.
read_series
cp "${SERIES[0]}" "${SERIES[1]}" "$tmp/dir/"
printf '%s\n' "${SERIES[0]##*/}" "${SERIES[1]##*/}" "$(basename "$src"/*.patch)" > "$tmp/dir/series"

series_load "$tmp/a" "$tmp/dir"
desc="directory with series file: 3 patches in its order"
check [ "${#POSTED[@]}" = 3 ] && [ "$(sed -n 3p "$tmp/a/subjects")" = \
	"vfio: cache KVM VM file references instead of raw struct kvm pointers" ]
desc="every diff kept byte for byte"
check cmp -s <(series_diffs "$tmp/dir/${SERIES[0]##*/}" "$tmp/dir/${SERIES[1]##*/}" "$src"/*.patch) \
	<(series_diffs "${POSTED[@]}")

{
	printf 'From MAILER-DAEMON Mon Jan  1 00:00:00 2026\nFrom: A <a@example.org>\n'
	printf 'Subject: [PATCH 0/3] a cover letter\n\nFrom the cover letter, no diff.\n\n'
	qp_mail "$src"/*.patch 3/3
	qp_mail "${SERIES[1]}" 2/3
	qp_mail "${SERIES[0]}" 1/3
	printf 'From MAILER-DAEMON Mon Jan  1 00:00:00 2026\nFrom: R <r@example.org>\n'
	printf 'Subject: Re: [PATCH 2/3] a reply\n\nHow about this instead:\n\n'
	printf 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n'
} > "$tmp/thread.mbox"
series_load "$tmp/b" "$tmp/thread.mbox"
desc="mbox, quoted-printable, out of order: same sha256 as the directory"
check [ "$(sha "$tmp/b")" = "$(sha "$tmp/a")" ]
desc="cover letter and a reply with a diff skipped, each with a note"
check [ "$(grep -c '^note skipped' "$tmp/b/identity")" = 2 ]
desc="quoted-printable really used (=3D in the mbox)"
check grep -q '=3D' "$tmp/thread.mbox"

series_load "$tmp/ours" "$REPO/linux/"
desc="--series linux/: fixes, series, test-only, as read_series applies them"
check cmp -s <(series_diffs "${SERIES[@]}") <(series_diffs "${POSTED[@]}")
desc="... ${#SERIES[@]} patches, no cover letter"
check [ "${#POSTED[@]}" = "${#SERIES[@]}" ]

SRC=$(ls -d "$CACHE"/src/linux-source-7.3-7.3.4*/ 2>/dev/null | head -n 1 || true)
if [ -n "$SRC" ]; then
	CACHE=$tmp
	series_load "$tmp/c" "$REPO/docs/posted/seed-000/as-posted"
	mkdir -p "$tmp/stage"
	patch_files "${POSTED[0]}" | while read -r f; do
		mkdir -p "$(dirname "$tmp/stage/$f")"; cp "$SRC/$f" "$tmp/stage/$f"
	done
	desc="seed 000 as posted does not apply to 7.3.4"
	check bash -c "! (cd '$tmp/stage' && git apply --check '${POSTED[0]}' 2>/dev/null)"
	patch_rejected "${POSTED[0]}" "$tmp/stage" 2> "$tmp/rejected.txt"
	desc="... reported with its subject and the two rejected hunks"
	check bash -c "grep -q 'raw struct kvm pointers' '$tmp/rejected.txt' &&
		grep -q 'rejected: drivers/vfio/vfio.h: @@ -88' '$tmp/rejected.txt' &&
		grep -q 'rejected: include/linux/vfio.h: @@ -52' '$tmp/rejected.txt' &&
		[ \$(grep -c 'rejected: [a-z]' '$tmp/rejected.txt') = 2 ]"
fi
# The rule map of docs/kernel-behaviour.md against the suites as they are
# (SUITES_BUILD=DIR: the OUTPUT directory of a userspace-only build of each
# suite, DIR/SUITE/PROGRAM; the programs are only asked to list their tests,
# -l): every test belongs to a rule or is a hook's probe, every rule and
# hook has a test.  tools/report.sh judges a run where every test passed.
if [ -n "${SUITES_BUILD:-}" ]; then
	mkdir -p "$tmp/map"
	for p in "$SUITES_BUILD"/*/*; do
		[ -f "$p" ] && [ -x "$p" ] || continue
		suite=$(basename "$(dirname "$p")")
		# -l: per fixture, its variants and its tests side by side
		# (columns 1-20, 22-46, 48-); every variant runs every test.
		{ "$p" -l 2>&1 || true; } | awk -v prog="$suite:${p##*/}" '
			function flush(   i, k) {
				for (k = 1; k <= nt; k++)
					if (!nv) print prog " " fix "." test[k] " pass"
					else for (i = 1; i <= nv; i++)
						print prog " " fix "." var[i] "." test[k] " pass"
				nv = nt = 0
			}
			/^# / { next }
			/^---/ { flush(); next }
			{
				f = substr($0, 1, 20); v = substr($0, 22, 25); t = substr($0, 48)
				gsub(/ /, "", f); gsub(/ /, "", v); gsub(/ /, "", t)
				if (f != "") fix = f
				if (v != "") var[++nv] = v
				if (t != "") test[++nt] = t
			}
			END { flush() }'
	done | sort -u > "$tmp/map/results.txt"
	printf 'ktapwrap kernel-log-at-boot pass\nktapwrap kernel-log-at-end pass\n' >> "$tmp/map/results.txt"
	: > "$tmp/map/console.log"
	"$REPO/tools/report.sh" "$tmp/map" > "$tmp/map/report.txt" 2>&1 || true
	desc="rule map: $(wc -l < "$tmp/map/results.txt") tests listed by the suites in $SUITES_BUILD"
	check [ "$(wc -l < "$tmp/map/results.txt")" -gt 2 ]
	desc="rule map: every test belongs to a rule or a hook"
	check bash -c "! grep -q '^# Tests of no rule' '$tmp/map/report.txt'"
	desc="rule map: every rule has a test and every hook a probe"
	check bash -c "! grep -qE '^# (R-|Hook ).*(no test of this rule|unknown|not probed)' '$tmp/map/report.txt'"
	[ "$failures" = 0 ] || grep -E 'Tests of no rule|no test of this rule|unknown|not probed' "$tmp/map/report.txt"
fi
echo "test-series: $checks checks, $failures failures"
[ "$failures" = 0 ]
