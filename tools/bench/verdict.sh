#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Time to verdict (tools/bench.sh --verdict): how long ./run_tests.sh takes
# from a clean copy of this checkout in a fresh CACHE_DIR, in four runs:
#
#   cold      nothing cached but the source package (.deb and apt lists are
#             copied from the main cache so that network time is not counted)
#   warm      the same command again, nothing changed
#   selftest  a comment appended to one selftest source
#   patch     a comment changed in a .c file of one patch of the series
#
# Each run's step timestamps (the runner's "==> [  Ns]" lines) give the cost
# of every step; the section "## Time to verdict" of docs/bench.md is
# replaced (or appended) with the table.  Takes ~20 min of both CPUs: the
# verdict cache has its own lock, so it competes with other runs for CPU.
#
# tools/bench/verdict.sh --section rewrites the section from the last run's
# logs.  Environment: VERDICT_DIR (default $CACHE/verdict; its cache and
# clone are removed at the end unless KEEP=1, the logs stay).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

VDIR=${VERDICT_DIR:-$CACHE/verdict}
VCACHE=$VDIR/cache
CLONE=$VDIR/repo
REPORT=$REPO/docs/bench.md
TARGETS="cold:900 warm:120 selftest:120 patch:240"

prepare() {
	if [ ! -d "$CACHE/deb" ] || [ ! -d "$CACHE/apt" ]; then
		die "no $CACHE/deb or $CACHE/apt: run ./run_tests.sh once first"
	fi
	step "fresh cache $VCACHE (source package copied from $CACHE)"
	rm -rf "$VDIR"
	mkdir -p "$VCACHE"
	cp -a "$CACHE/deb" "$CACHE/apt" "$VCACHE/"
	# Fresh lists: the runner then skips apt-get update (network).
	find "$VCACHE/apt/lists" -type f -exec touch {} +
	step "clean copy of the checkout in $CLONE"
	mkdir -p "$CLONE"
	git -C "$REPO" ls-files -co --exclude-standard -z |
		rsync -a --from0 --files-from=- "$REPO/" "$CLONE/"
}

# The first "+ * text" comment line in a .c file of the series gets a word
# more: the patch still applies, one object is rebuilt.
change_patch() {
	local p
	while read -r p; do
		case $p in ''|'#'*) continue ;; esac
		if awk '/^\+\+\+ b\// { f = substr($0, 7) }
			f ~ /\.c$/ && /^\+[ \t]*\* [A-Za-z]/ { found = 1 }
			END { exit !found }' "$CLONE/linux/$p"; then
			awk '/^\+\+\+ b\// { f = substr($0, 7) }
			!done && f ~ /\.c$/ && /^\+[ \t]*\* [A-Za-z]/ {
				$0 = $0 " (bench)"; done = 1
			}
			{ print }' "$CLONE/linux/$p" > "$CLONE/linux/$p.new"
			mv "$CLONE/linux/$p.new" "$CLONE/linux/$p"
			CHANGED="linux/$p"
			return
		fi
	done < "$CLONE/linux/series"
	die "no comment line in a .c file of the series"
}

# The three costliest steps of run log $1 that took $2 s: a step lasts until
# the next one starts (the runner's "... still" ticker lines are not steps).
costliest() {
	awk -v total="$2" '
		/^==> \[ *[0-9]+s\] / && !/^==> \[ *[0-9]+s\] \.\.\. still/ {
			t = $0; sub(/^==> \[ */, "", t); sub(/s\].*/, "", t)
			s = $0; sub(/^==> \[ *[0-9]+s\] /, "", s)
			if (n) dur[n - 1] = t - at[n - 1]
			at[n] = t; name[n++] = s
		}
		END {
			if (n) dur[n - 1] = total - at[n - 1]
			for (k = 0; k < 3 && k < n; k++) {
				best = -1
				for (i = 0; i < n; i++)
					if (!(i in used) && (best < 0 || dur[i] > dur[best])) best = i
				used[best] = 1
				sub(/ \(.*/, "", name[best])
				printf "%s%s %ds", sep, name[best], dur[best]; sep = "; "
			}
		}' "$1"
}

# run NAME: one ./run_tests.sh in the clone; appends a row to $VDIR/rows.
run() {
	local name=$1 log=$VDIR/$1.log start end rc=0 secs last
	step "verdict run: $name${CHANGED:+ ($CHANGED changed)}"
	start=$(date +%s)
	(cd "$CLONE" && CACHE_DIR=$VCACHE ./run_tests.sh) > "$log" 2>&1 || rc=$?
	end=$(date +%s)
	secs=$((end - start))
	last=$(tail -n 1 "$log")
	printf '%s\t%s\t%s\t%s\n' "$name" "$secs" "$rc" "$last" >> "$VDIR/rows"
	step "$name: ${secs}s, exit $rc: $last"
}

section() {
	echo "## Time to verdict"
	echo
	echo "Measured $(date -u '+%F %H:%M UTC') by \`tools/bench.sh --verdict\`"
	echo "(\`tools/bench/verdict.sh\`): \`./run_tests.sh\` (patched kernel, both suites)"
	echo "in a clean copy of the checkout with a fresh \`CACHE_DIR\`; only the"
	echo "source package (.deb, apt lists) is copied in, so download time is not"
	echo "counted. $(nproc) CPUs, shared with the other developers' runs (the"
	echo "verdict cache has a lock of its own): host load at the start"
	echo "$(cut -d' ' -f1-3 "$VDIR/load")."
	echo
	echo "| run | change | time | target | met | exit | last line | costliest steps |"
	echo "|---|---|---|---|---|---|---|---|"
	while IFS=$'\t' read -r name secs rc last; do
		local target change ok steps
		steps=$(costliest "$VDIR/$name.log" "$secs")
		target=$(echo "$TARGETS" | tr ' ' '\n' | sed -n "s/^$name://p")
		case $name in
		cold) change="fresh CACHE_DIR: unpack, copy tree, config, full build (empty ccache)" ;;
		warm) change="none" ;;
		selftest) change="comment appended to selftests/vfio_kvm/vm_lifetime.c" ;;
		patch) change="comment changed in a .c hunk of $(cat "$VDIR/changed")" ;;
		esac
		ok=yes
		[ "$secs" -le "$target" ] || ok=NO
		printf '| %s | %s | %d:%02d | %d:%02d | %s | %s | %s | %s |\n' \
			"$name" "$change" $((secs / 60)) $((secs % 60)) \
			$((target / 60)) $((target % 60)) "$ok" "$rc" "$last" "$steps"
	done < "$VDIR/rows"
	echo
	if [ -f "$REPO/tools/bench/verdict.md.in" ]; then
		cat "$REPO/tools/bench/verdict.md.in"
	fi
}

# docs/bench.md with this section replaced (or appended).
write_section() {
	mkdir -p "$REPO/docs"
	{
		[ -f "$REPORT" ] && sed '/^## Time to verdict/,$d' "$REPORT"
		section
	} > "$REPORT.tmp"
	mv "$REPORT.tmp" "$REPORT"
	step "time to verdict: section written to $REPORT (logs in $VDIR)"
}

main() {
	if [ "${1:-}" = --section ]; then	# again, from the last run's logs
		[ -f "$VDIR/rows" ] || die "no $VDIR/rows: run tools/bench.sh --verdict"
		write_section
		return
	fi
	need git rsync
	CHANGED=
	prepare
	cut -d' ' -f1-3 /proc/loadavg > "$VDIR/load"
	: > "$VDIR/rows"
	run cold
	run warm
	echo '/* bench: time-to-verdict probe */' >> "$CLONE/selftests/vfio_kvm/vm_lifetime.c"
	CHANGED=selftests/vfio_kvm/vm_lifetime.c
	run selftest
	change_patch
	echo "$CHANGED" > "$VDIR/changed"
	run patch
	write_section
	[ "${KEEP:-0}" = 1 ] || rm -rf "$VCACHE" "$CLONE"
}

main "$@"
