#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The conformance report: one line per rule of docs/kernel-behaviour.md
# ("Rules: ids, ..."), PASS, FAIL (the test, its first kernel-log line or
# failed assertion) or N/A (the hook or device it needs), from the results
# of a run.  Prints the report as "# " lines and writes it as Markdown to
# OUT/report.md, for a review reply.
#
# Usage: tools/report.sh OUT [IDENTITY [BASE]]
#   OUT       a run's output directory (results.txt, console.log)
#   IDENTITY  the series' identity file (tools/series.sh series_load)
#   BASE      the kernel source the series was applied to (text)
# Exit status: 1 if a rule is violated.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

out=${1:?usage: $0 OUT [IDENTITY [BASE]]}
identity=${2:-}
base=${3:-}
rules=$REPO/docs/kernel-behaviour.md
[ -f "$out/results.txt" ] && [ -f "$out/console.log" ] ||
	{ echo "${0##*/}: no results.txt/console.log in $out" >&2; exit 2; }

# Per test (PROGRAM TEST, as results.txt names them): the SKIP reason, the
# first kernel-report line and the first failed assertion in its output.
# The console is ktapwrap's KTAP ("  " before a program's lines) or
# run_kselftest.sh's ("# " before them).
details() {
	tr -d '\r' < "$out/console.log" | awk '
	function report(s) {
		sub(/^[# ]*/, "", s); sub(/^kmsg: */, "", s)
		sub(/^[^ :]+\.[ch]:[0-9]+:[^:]*: */, "", s)
		return s ~ /^(BUG:|WARNING:|Oops|kernel BUG at|general protection fault|Kernel panic|UBSAN:|KFENCE:|refcount_t:|unreferenced object|INFO: task|INFO: rcu|rcu: INFO:)/ ||
		       s ~ /DEBUG_LOCKS_WARN_ON|suspected memory leak|blocked for more than|detected stall/ ? s : ""
	}
	function flush() {
		if (key != "") print key "\t" skip "\t" klog "\t" assert
		key = ""; skip = ""; klog = ""; assert = ""
	}
	/^# selftests: / { flush(); prog = substr($0, 14); gsub(/: +/, ":", prog); next }
	{
		l = $0
		if (l ~ /^  /) l = substr(l, 3); else if (l ~ /^# /) l = substr(l, 3)
	}
	l ~ /^#  RUN / { flush(); run = 1; k = ""; a = ""; an = 0; preva = 0; term = ""; next }
	l ~ /^(not )?ok [0-9]+ / {
		flush()
		name = l; sub(/^(not )?ok [0-9]+ /, "", name)
		reason = ""
		if (index(name, " # ")) {
			reason = substr(name, index(name, " # ") + 3); sub(/^ +/, "", reason)
			name = substr(name, 1, index(name, " # ") - 1)
		}
		key = (l ~ /^(not )?ok/ && $0 !~ /^(not )?ok/ ? prog : "ktapwrap") " " name
		if (reason ~ /^SKIP/) { skip = reason; sub(/^SKIP */, "", skip) }
		if (reason ~ /^KERNEL LOG: /) klog = substr(reason, 13)
		if (klog == "") klog = k
		assert = a != "" ? a : term; k = ""; a = ""; term = ""; run = 0
		if (l !~ /^not ok/) { flush() }
		next
	}
	{
		r = report(l)
		if (key != "" && klog == "" && r != "") klog = r
		if (run && k == "" && r != "") k = r
		# The harness: "file.c:LINE:test:Expected ..." and on the next
		# line the TH_LOG of the assertion.
		isa = run && l ~ /^# [^ :]+\.[ch]:[0-9]+:[^:]+:/
		if (isa) {
			m = l; sub(/^# [^ :]+\.[ch]:[0-9]+:[^:]+: */, "", m)
			if (a == "") a = m
			else if (preva && an == 1) a = a ": " m
			an++
		}
		preva = isa
		if (run && term == "" && l ~ /^# [^ :]+: Test terminated by /) {
			term = l; sub(/^# [^ :]+: /, "", term)
		}
	}
	END { flush() }'
}

# The base kernel's expected failures, from the suites' READMEs.
base_fails() {
	cat "$REPO"/selftests/*/README 2>/dev/null |
		awk '/^[^ #]+ [^ ]+ fail( |$)/ { why = $0; sub(/^[^#]*#? */, "", why); print $1 " " $2 "\t" why }'
}

details > "$out/details.tsv"
base_fails > "$out/base-fails.tsv"

awk -v F_IDENT="$identity" -v BASE="$base" -v MD="$out/report.md" -F'\t' '
function glob2re(g,   r) {
	r = g; gsub(/[.+^$(){}|\[\]\\]/, "\\\\&", r)
	gsub(/\*/, ".*", r); gsub(/\?/, ".", r)
	return "^" r "$"
}
function cells(line, c,   n, i) {
	n = split(line, c, / *\| */)
	for (i = 1; i < n; i++) c[i] = c[i + 1]
	return n - 2
}
function patterns(cell, arr,   n, g) {
	n = 0
	while (match(cell, /`[^`]+`/)) {
		g = substr(cell, RSTART + 1, RLENGTH - 2)
		cell = substr(cell, RSTART + RLENGTH)
		arr[++n] = glob2re(g)
		# The suites the rules are about (SUITE:PROGRAM TEST).
		if (match(g, /^[A-Za-z0-9_]+:/))
			ours[substr(g, 1, RLENGTH - 1)] = 1
	}
	return n
}
function matches(t, id, np,   i) {
	for (i = 1; i <= np; i++) if (t ~ pat[id, i]) return 1
	return 0
}
function short(s) {
	sub(/; .*/, "", s)
	if (length(s) > 110) s = substr(s, 1, 107) "..."
	if (gsub(/\(/, "(", s) > gsub(/\)/, ")", s)) s = s ")"
	return s
}
# Does a pattern of rule @id name program @p?
function progof(p, id,   i, q) {
	for (i = 1; i <= np[id]; i++) {
		q = pat[id, i]; sub(/ .*/, "", q); sub(/^\^/, "", q)
		if (p ~ ("^" q "$")) return 1
	}
	return 0
}
function tests(n) { return n " test" (n == 1 ? "" : "s") }
function mdq(s) { gsub(/`/, "'\''", s); return "`" s "`" }
# Rules and hooks, from the section of the behaviour doc.
FILENAME == RULES {
	if ($0 ~ /^## Rules: ids/) insec = 1
	else if ($0 ~ /^## /) insec = 0
	if (!insec || $0 !~ /^\| [CR]-/) next
	n = cells($0, c)
	id = c[1]
	if (id ~ /^C-/) {
		hooks[++nh] = id; hwhat[id] = c[2]; np[id] = patterns(c[3], tmp)
		for (i = 1; i <= np[id]; i++) pat[id, i] = tmp[i]
		habs[id] = c[4]
	} else {
		rule[++nr] = id; rtext[id] = c[2]; np[id] = patterns(c[3], tmp)
		for (i = 1; i <= np[id]; i++) pat[id, i] = tmp[i]
		rneeds[id] = c[4]
	}
	delete tmp
	next
}
FILENAME == DETAILS { dskip[$1] = $2; dklog[$1] = $3; dassert[$1] = $4; next }
FILENAME == BASEF { bfail[$1] = $2; next }
FILENAME == F_IDENT {
	if ($0 ~ /^subject /) subj[++ns] = substr($0, 9)
	else if ($0 ~ /^count /) count = substr($0, 7)
	else if ($0 ~ /^sha256 /) sha = substr($0, 8)
	else if ($0 ~ /^note /) note[++nn] = substr($0, 6)
	next
}
# results.txt: PROGRAM TEST RESULT
{
	split($0, f, " ")
	t = f[1] " " f[2]; res[t] = f[3]; order[++nt] = t
}
END {
	# Hooks: present unless every probe test is absent-like.
	for (h = 1; h <= nh; h++) {
		id = hooks[h]; seen = 0; present = 0; why = ""
		for (i = 1; i <= nt; i++) {
			t = order[i]
			if (!matches(t, id, np[id])) continue
			seen++; mapped[t] = 1; probe[t] = 1
			if (res[t] == "pass" || (res[t] == "fail" && habs[id] !~ /fail/)) present = 1
			else if (why == "") {
				why = res[t] == "skip" ? dskip[t] : dassert[t] != "" ? dassert[t] : "probe failed"
				sub(/^Expected [^:]*: /, "", why)
			}
		}
		state[id] = !seen ? "unknown" : present ? "present" : "absent"
		hwhy[id] = why
	}
	nfail = npass = nna = 0
	for (r = 1; r <= nr; r++) {
		id = rule[r]; ntests = npassed = nskipped = nfailed = 0; first = flist = ""
		delete sk
		for (i = 1; i <= nt; i++) {
			t = order[i]
			if (t ~ /^ktapwrap / && t !~ / kernel-log/ || t ~ / -$/ || t in probe) continue
			if (!matches(t, id, np[id])) continue
			mapped[t] = 1; ntests++
			if (res[t] == "pass") npassed++
			else if (res[t] == "skip") { nskipped++; sk[short(dskip[t])]++ }
			else { nfailed++; if (first == "") first = t; flist = flist (flist == "" ? "" : ", ") t }
		}
		missing = ""
		nneed = split(rneeds[id], need, /, */)
		for (k = 1; k <= nneed; k++) if (need[k] != "" && state[need[k]] != "present")
			missing = missing (missing == "" ? "" : ", ") need[k] \
				(state[need[k]] == "absent" ? " (absent)" : " (not probed)")
		skips = ""
		for (s in sk) skips = skips (skips == "" ? "" : "; ") sk[s] " skipped: " s
		if (ntests == 0) {
			# A program that printed no test results at all (it
			# crashed, or its output was lost) is one result "-".
			v = "N/A"; ev = "no test of this rule ran"; nna++
			for (i = 1; i <= nt; i++) {
				t = order[i]; p = t; sub(/ .*/, "", p)
				if (t !~ / -$/ || !progof(p, id)) continue
				ev = "no per-test result: program " p (res[t] == "fail" ? " FAILED" : " passed") " as a whole"
				if (res[t] == "fail") blind++
				break
			}
		} else if (missing != "") {
			v = "N/A"; ev = "needs " missing; nna++
		} else if (nfailed) {
			v = "FAIL"; nfail++; failed_ids = failed_ids (failed_ids == "" ? "" : ", ") id
			ev = "test " first
			if (dklog[first] != "") ev = ev ", first kernel-log line \"" dklog[first] "\""
			else if (dassert[first] != "") ev = ev ", \"" dassert[first] "\""
			ev = ev "; " nfailed " of " tests(ntests) " failed" (nskipped ? ", " nskipped " skipped" : "")
			if (first in bfail) ev = ev "; also fails on the base kernel, there: " bfail[first]
		} else if (npassed) {
			v = "PASS"; npass++
			ev = tests(npassed) " passed" (skips == "" ? "" : "; " skips)
		} else {
			v = "N/A"; ev = "needs " skips; nna++
		}
		verdict[id] = v; evid[id] = ev; failing[id] = nfailed > 1 ? flist : ""
	}
	hdr = "Conformance report: " (count ? count " patch" (count == 1 ? "" : "es") : "the kernel under test") \
		(BASE != "" ? " on " BASE : "")
	print "# " hdr
	if (count) {
		print "# Series: sha256 " sha " (diffs, in order)"
		for (i = 1; i <= ns; i++) printf "#   %d. %s\n", i, subj[i]
		for (i = 1; i <= nn; i++) printf "#   (%s)\n", note[i]
	}
	for (h = 1; h <= nh; h++) {
		id = hooks[h]
		printf "# Hook %-15s %s%s\n", id, state[id], state[id] == "absent" ? " (" short(hwhy[id]) ")" : ""
	}
	for (r = 1; r <= nr; r++) {
		id = rule[r]
		printf "# %-12s %s (%s)\n", id, verdict[id], evid[id]
	}
	for (i = 1; i <= nt; i++)
		if (!(order[i] in mapped) && substr(order[i], 1, index(order[i], ":") - 1) in ours)
			unmapped = unmapped " " order[i]
	if (unmapped != "") print "# Tests of no rule:" unmapped
	# A test killed by its timeout is a FAIL (a hang is a violation), but
	# a slow machine times out too, and the files of the killed test may still
	# be held when the next test of the program starts (EBUSY).
	for (i = 1; i <= nt; i++)
		if (res[order[i]] == "fail" && dassert[order[i]] ~ /^Test terminated by timeout/)
			timedout = timedout (timedout == "" ? "" : ", ") order[i]
	if (timedout != "") print "# Timed out: " timedout " (a hang, or a slow machine: see the console; later failures of the same program may follow from it)"
	if (blind) print "# INCOMPLETE: " blind " rules map to programs that failed without per-test results (see the console)"
	printf "# Verdict: %d rules violated%s, %d kept, %d not checkable here\n",
		nfail, nfail ? " (" failed_ids ")" : "", npass, nna

	print "### " hdr > MD
	print "" > MD
	if (count) {
		printf "Series: %d patch%s, sha256 %s of the diffs in order.\n\n", count, count == 1 ? "" : "es", mdq(sha) > MD
		for (i = 1; i <= ns; i++) printf "%d. %s\n", i, subj[i] > MD
		for (i = 1; i <= nn; i++) printf "\n(%s)\n", note[i] > MD
		print "" > MD
	}
	printf "**%d rules violated%s, %d kept, %d not checkable here.**\n\n",
		nfail, nfail ? " (" failed_ids ")" : "", npass, nna > MD
	if (blind) print "**Incomplete:** " blind " rules map to programs that failed without per-test results.\n" > MD
	print "| rule | statement | verdict | evidence |" > MD
	print "|---|---|---|---|" > MD
	for (r = 1; r <= nr; r++) {
		id = rule[r]; e = evid[id] (failing[id] != "" ? "; failed: " failing[id] : ""); gsub(/\|/, "\\|", e)
		printf "| %s | %s | %s | %s |\n", id, rtext[id], verdict[id] == "FAIL" ? "**FAIL**" : verdict[id], e > MD
	}
	print "" > MD
	print "Hooks (a rule that needs an absent one is not checkable here):\n" > MD
	for (h = 1; h <= nh; h++)
		printf "- %s, %s: %s%s\n", hooks[h], hwhat[hooks[h]], state[hooks[h]],
			state[hooks[h]] == "absent" ? " (" short(hwhy[hooks[h]]) ")" : "" > MD
	if (unmapped != "") print "\nTests of no rule:" unmapped > MD
	if (timedout != "") print "\nTimed out: " timedout " (a hang, or a slow machine; later failures of the same program may follow from it)." > MD
	exit nfail > 0 || blind > 0
}' RULES="$rules" DETAILS="$out/details.tsv" BASEF="$out/base-fails.tsv" \
	"$rules" "$out/details.tsv" "$out/base-fails.tsv" ${identity:+"$identity"} "$out/results.txt"
