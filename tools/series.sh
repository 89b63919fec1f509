# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
# A posted series in place of linux/ (run_tests.sh --series, make verify):
# read a directory of `git format-patch` files or an mbox the way `git am`
# does, and say which patch does not apply and where.  Sourced after
# tools/lib.sh; callers set -euo pipefail.

# series_load DIR PATH...: every PATH (a directory of patches, with or
# without a `series` file, an mbox with one or more mails, or one patch) is
# split into mails with `git mailsplit` (mboxrd ">From" unescaped) and each
# mail is decoded by `git mailinfo` (quoted-printable, base64, charsets;
# headers and the text before the diff become the changelog).  Skipped, with
# a note: mails with no diff (cover letter, a reply) and replies ("Re:").
# The mails of one PATH go in "n/N" order when every one has it.  Writes one
# normalised patch per mail to DIR (NNNN-<subject>.patch: From, Date,
# Subject, changelog, diff) and DIR/identity (subjects, count, sha256 of the
# diffs in order).  Sets POSTED to the patch files, in order.
series_load() {
	local dir=$1 path f n=0 k c list
	shift
	local -a inputs mails parts

	rm -rf "$dir"
	mkdir -p "$dir/mail"
	POSTED=()
	: > "$dir/subjects"
	: > "$dir/notes"
	list=$(series_parts "$@") || exit 1
	mapfile -t parts <<< "$list"
	for path in "${parts[@]}"; do
		series_inputs "$path"
		k=0
		for f in "${inputs[@]}"; do
			c=$(git mailsplit -b --mboxrd -f"$k" -o"$dir/mail" "$f") ||
				die "--series: $f is neither a patch nor an mbox"
			k=$((k + c))
		done
		mails=("$dir"/mail/[0-9]*)
		[ "$k" -gt 0 ] || die "--series: no mail or patch in $path"
		# A mail client saves a thread in its own order: a single mbox
		# goes by "[PATCH n/N]"; a directory by its series file or names.
		[ ! -f "$path" ] || mapfile -t mails < <(series_order "${mails[@]}")
		for f in "${mails[@]}"; do
			series_mail "$dir" "$f" "$((n + 1))" && n=$((n + 1))
		done
		rm -f "$dir"/mail/*
	done
	rm -rf "$dir/mail"
	[ ${#POSTED[@]} -gt 0 ] || die "--series: no patch with a diff in: $*"
	{
		echo "count ${#POSTED[@]}"
		echo "sha256 $(series_diffs "${POSTED[@]}" | sha256sum | cut -d' ' -f1)"
		echo "inputs ${parts[*]}"
		sed 's/^/subject /' "$dir/subjects"
		sed 's/^/note /' "$dir/notes"
	} > "$dir/identity"
}

# The directories and files of the --series PATHs, in the order they are
# applied, one per line.  A directory
# laid out like our linux/ (a fixes/ and/or test-only/ subdirectory beside
# its patches) is three parts: PATH/fixes, PATH, PATH/test-only, as
# tools/lib.sh read_series applies them: `--series linux/` is the whole
# patched kernel.
series_parts() {
	local path

	for path in "$@"; do
		[ -e "$path" ] || die "--series: no such file or directory: $path"
		case $path in *$'\n'*) die "--series: a newline in '$path'" ;; esac
		path=${path%/}
		[ -d "$path" ] || { echo "$path"; continue; }
		[ ! -d "$path/fixes" ] || echo "$path/fixes"
		echo "$path"
		[ ! -d "$path/test-only" ] || echo "$path/test-only"
	done
}

# The diffs of patch files, without changelog, diffstat, signature and
# trailing blank lines (an mbox separates mails with one): what
# the sha256 of a series is taken of (the same for an mbox and the
# format-patch files it came from).
series_diffs() {
	local f

	for f in "$@"; do
		sed -n '/^diff --git /,$p' "$f" | sed '/^-- $/,$d' |
			awk '/^$/ { n++; next } { while (n) { print ""; n-- } print }'
	done
}

# The files of one --series PATH, in order (sets inputs): a directory's
# `series` file (quilt style: blank and # lines skipped), else its
# *.patch/*.diff/*.mbox/*.mbx/*.eml files by name; a file is itself.
series_inputs() {
	local path=$1 p

	inputs=()
	if [ -f "$path" ]; then
		inputs=("$path")
	elif [ -f "$path/series" ]; then
		while read -r p _; do
			case $p in ''|'#'*) continue ;; esac
			[ -f "$path/$p" ] || die "--series: $path/series lists $p, which does not exist"
			inputs+=("$path/$p")
		done < "$path/series"
	else
		for p in "$path"/*; do
			case $p in *.patch|*.diff|*.mbox|*.mbx|*.eml) inputs+=("$p") ;; esac
		done
	fi
	[ ${#inputs[@]} -gt 0 ] || die "--series: no patches in $path"
}

# Print the mails in "[PATCH n/N]" order if every one has a number,
# else in the order they came.
series_order() {
	local f num keyed=

	for f in "$@"; do
		num=$(series_header "$f" Subject | grep -oE '\[[^]]*[^0-9][0-9]+/[0-9]+\]' |
			grep -oE '[0-9]+/' | tr -d / || true)
		[ -n "$num" ] || { printf '%s\n' "$@"; return; }
		keyed+="$((10#$num)) $f"$'\n'
	done
	printf '%s' "$keyed" | sort -n -s -k1,1 | cut -d' ' -f2-
}

# The (unfolded, undecoded) header NAME of the mail in FILE.
series_header() {
	sed -n '/^$/q; p' "$1" | awk -v name="$2" '
		/^[ \t]/ { if (on) { sub(/^[ \t]+/, " "); val = val $0 }; next }
		{ on = (tolower($0) ~ "^" tolower(name) ":") }
		on && val == "" { val = $0; sub(/^[^:]*: ?/, "", val) }
		END { print val }'
}

# series_mail DIR MAIL N: decode one mail; write DIR/NNNN-<subject>.patch
# and append to POSTED, or skip it (returns 1) with a note.
series_mail() {
	local dir=$1 mail=$2 n=$3 raw subject name out

	git mailinfo -k "$dir/msg" "$dir/diff" < "$mail" > "$dir/info" ||
		die "--series: git mailinfo cannot read ${mail##*/}"
	raw=$(sed -n 's/^Subject: //p' "$dir/info")
	# What `git am` strips: leading "Re:" and [...] tags.
	subject=$(echo "$raw" | sed -E 's/^([Rr][Ee]: *|\[[^]]*\] *)*//')
	if echo "$raw" | grep -qiE '^(\[[^]]*\] *)*re:'; then
		echo "skipped a reply: $raw" >> "$dir/notes"
		return 1
	fi
	if ! grep -qE '^(diff --git |@@ )' "$dir/diff"; then
		echo "skipped (no diff): $raw" >> "$dir/notes"
		return 1
	fi
	name=$(printf '%04d-%s' "$n" "$(echo "$subject" |
		sed -E 's/[^A-Za-z0-9._]+/-/g; s/^-+//' | cut -c1-52 | sed 's/-*$//')")
	out=$dir/$name.patch
	{
		echo "From: $(sed -n 's/^Author: //p' "$dir/info") <$(sed -n 's/^Email: //p' "$dir/info")>"
		sed -n 's/^Date: /Date: /p' "$dir/info"
		echo "Subject: $raw"
		echo
		cat "$dir/msg"
		head -n 1 "$dir/diff" | grep -qx -- --- || echo ---
		cat "$dir/diff"
	} > "$out"
	echo "$subject" >> "$dir/subjects"
	POSTED+=("$out")
}

# patch_rejected PATCH STAGE: PATCH did not apply to the staging tree
# STAGE: print its subject and, per file, the hunks that do not apply (from
# `git apply --reject` in a scratch copy; the .rej files are kept).
patch_rejected() {
	local patch=$1 stage=$2 scratch=$CACHE/rejected subject errors r f

	subject=$(series_header "$patch" Subject | sed -E 's/^(\[[^]]*\] *)*//')
	echo "==> patch does not apply: \"${subject:-${patch##*/}}\" (${patch##*/})" >&2
	rm -rf "$scratch"
	cp -a "$stage" "$scratch"
	errors=$(cd "$scratch" && git apply --reject --whitespace=nowarn "$patch" 2>&1) || true
	find "$scratch" -name '*.rej' | sort | while read -r r; do
		f=${r#"$scratch"/}
		grep '^@@' "$r" | sed "s|^|    rejected: ${f%.rej}: |" >&2
	done
	echo "$errors" | grep -E '^error: .*(No such file|does not exist|already exists)' |
		sed 's/^error: /    rejected: /' >&2 || true
	echo "    (the rejected hunks: $scratch/<file>.rej)" >&2
}

# --base-version V: Debian's linux-source-X.Y of upstream version V
# (X.Y.Z), or the newest X.Y (X.Y).  Sets PKG and BASE_VERSION, which
# fetch_debian_source uses.
base_version() {
	[ -z "${KSRC:-}" ] || die "--base-version and KSRC= both pick the tree: use one"
	case $1 in
	[0-9]*.[0-9]*.[0-9]*) PKG=linux-source-${1%.*}; BASE_VERSION=$1 ;;
	[0-9]*.[0-9]*) PKG=linux-source-$1; BASE_VERSION= ;;
	*) die "--base-version: X.Y or X.Y.Z, not '$1'" ;;
	esac
}

# After the guest: the rule-by-rule report on the series (run_tests.sh's
# OUT, CONSOLE, SRC_VERSION), also as OUT/report.md; the patches as
# applied are kept in OUT/series.
series_report() {
	results "$CONSOLE" > "$OUT/results.txt"
	rm -rf "$OUT/series"
	cp -r "$CACHE/series" "$OUT/series"
	echo
	"$REPO/tools/report.sh" "$OUT" "$OUT/series/identity" "$SRC_VERSION" || true
	echo "# Markdown for a review reply: $OUT/report.md"
}
