# SPDX-License-Identifier: GPL-2.0
# Shared by run_tests.sh and tools/*.sh (sourced, not run): the cache, the
# pinned kernel source and the series.  Callers set -euo pipefail.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vm-file-refs}
PKG=${KERNEL_PACKAGE:-linux-source-7.3}
APT_SUITE=${APT_SUITE:-trixie-backports}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
JOBS=${JOBS:-$(nproc)}

# The test guest's machine (run_tests.sh, tools/bench.sh).  la57=off: no
# 5-level paging.  7.3's identify_boot_cpu() clears
# boot_cpu_data.x86_capability with interrupts on, before the alternatives
# are patched; pgtable_l5_enabled() reads X86_FEATURE_LA57 from there, so a
# timer tick in that window sees 4-level paging's address layout, and
# KASAN reports every direct-map access of the tick (wild-memory-access in
# do_raw_spin_lock() of sched_tick()).  With kasan_multi_shot each report
# outlasts the next tick and the boot never leaves identify_cpu(): 4 of 16
# boots hung so, 0 of 12 with la57=off.
GUEST_MACHINE=(-machine q35 -accel tcg -cpu max,la57=off -smp 2 -m 2G)

t0=${t0:-$(date +%s)}
step() { printf '==> [%4ss] %s\n' "$(($(date +%s) - t0))" "$*"; }
die() { echo "${0##*/}: error: $*" >&2; exit 1; }

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

need() {
	local missing=() t
	for t in "$@"; do command -v "$t" >/dev/null || missing+=("$t"); done
	[ ${#missing[@]} -eq 0 ] ||
		die "missing tools: ${missing[*]} (run: make deps)"
}

# One user of a cache directory at a time (trees, build dirs and outputs are
# shared): take the lock on fd 9, waiting for the holder if there is one.
cache_lock() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	if ! flock -n 9; then
		step "waiting for another run on $CACHE to finish"
		flock 9
	fi
}
cache_unlock() { flock -u 9; exec 9>&-; }

# A private apt configuration and state in $CACHE/$1 for the sources.list
# lines in $2, so that the system's sources are never touched; the lists are
# refreshed once a day.  Sets APTOPTS.
apt_private() {
	local apt=$CACHE/$1

	APTOPTS=(
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
	mkdir -p "$apt"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial}
	touch "$apt/preferences" "$apt/status"
	echo "$2" > "$apt/sources.list"
	if [ -z "$(find "$apt/lists" -name '*_Packages*' -mmin -1440 2>/dev/null)$(
		find "$apt/lists" -name '*_Sources*' -mmin -1440 2>/dev/null)" ]; then
		step "apt-get update (private state in $apt)"
		apt-get -qq "${APTOPTS[@]}" update
	fi
}

KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

# Debian's linux-source package from $APT_SUITE.  Sets SRC (the unpacked
# tree) and SRC_VERSION.
fetch_debian_source() {
	local deb ver

	apt_private apt "deb [signed-by=$KEYRING] $MIRROR $APT_SUITE main"
	ver=$(apt-cache "${APTOPTS[@]}" show "$PKG" 2>/dev/null |
		sed -n 's/^Version: //p' |
		awk -v v="${BASE_VERSION:-}" 'v == "" || index($0, v "-") == 1' |
		sort -V | tail -n 1)
	[ -n "$ver" ] || die "$PKG ${BASE_VERSION:-} not found in $APT_SUITE"
	SRC_VERSION="$PKG $ver"
	SRC=$CACHE/src/$PKG-$ver
	[ -e "$SRC/.complete" ] && return
	mkdir -p "$CACHE/deb"
	deb=$(ls "$CACHE/deb/${PKG}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		step "downloading $PKG $ver"
		(cd "$CACHE/deb" && apt-get -qq "${APTOPTS[@]}" download "$PKG=$ver")
		deb=$(ls "$CACHE/deb/${PKG}_${ver//:/%3a}_"*.deb | head -n 1)
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

# Linux 7.3 needs a sparse that knows __typeof_unqual__ (0.6.5); Debian 12
# has 0.6.4.  Build the one of Debian's development suite from its source
# package (a few seconds).  Sets SPARSE.
fetch_sparse() {
	local dir=$CACHE/sparse tarball

	SPARSE=$dir/sparse
	[ -x "$SPARSE" ] && return
	apt_private apt-sparse "deb-src [signed-by=$KEYRING] $MIRROR sid main"
	rm -rf "$dir"
	mkdir -p "$dir.src"
	step "downloading and building sparse (source package from sid)"
	(cd "$dir.src" && apt-get -qq "${APTOPTS[@]}" source --download-only sparse \
		2>/dev/null)
	tarball=$(ls "$dir.src"/sparse_*.orig.tar.* | sort -V | tail -n 1)
	mkdir -p "$dir"
	tar -C "$dir" --strip-components=1 -xf "$tarball"
	make -s -C "$dir" -j"$JOBS" sparse > "$dir.log" 2>&1 ||
		die "building sparse failed (see $dir.log)"
}

# SRC and SRC_VERSION: a copy of $KSRC if set, else Debian's package.
resolve_source() {
	local ksrc=${KSRC:-}

	if [ -z "$ksrc" ]; then
		fetch_debian_source
		return
	fi
	[ -f "$ksrc/Makefile" ] && [ -d "$ksrc/kernel" ] || die "KSRC=$ksrc is not a kernel tree"
	ksrc=$(realpath "$ksrc")
	SRC=$CACHE/src/ksrc-$(echo "$ksrc" | md5sum | cut -c1-8)
	step "copying KSRC=$ksrc"
	mkdir -p "$SRC"
	rsync -a --delete --exclude=.git "$ksrc/" "$SRC/"
	SRC_VERSION="KSRC $ksrc ($(git -C "$ksrc" describe --always --dirty 2>/dev/null ||
		make -s -C "$ksrc" kernelversion))"
}

# The patches of one directory, in order: DIR/series if present, else
# DIR/[0-9]*.patch without the cover letter.  Appends them to SERIES.
read_patch_dir() {
	local dir=$1 p

	if [ -f "$dir/series" ]; then
		while read -r p; do
			case $p in ''|'#'*) continue ;; esac
			SERIES+=("$dir/$p")
		done < "$dir/series"
		return
	fi
	for p in "$dir"/[0-9]*.patch; do
		case ${p##*/} in 0000-*) continue ;; esac
		[ ! -e "$p" ] || SERIES+=("$p")
	done
}

# What the patched kernel is built from, in order (SERIES): the fixes of 7.3
# bugs (linux/fixes/, their own short series), the series (linux/) and the
# test-only patches (linux/test-only/: hooks the suites use where present,
# not meant for merging).  SERIES_PARTS says how many of each.
read_series() {
	local n0 n1
	SERIES=()
	read_patch_dir "$REPO/linux/fixes"
	n0=${#SERIES[@]}
	read_patch_dir "$REPO/linux"
	n1=${#SERIES[@]}
	read_patch_dir "$REPO/linux/test-only"
	SERIES_PARTS="$n0 fixes, $((n1 - n0)) series, $((${#SERIES[@]} - n1)) test-only"
}

# Files a patch touches (new names of renames), one per line.
patch_files() {
	git apply --numstat "$1" | cut -f3- | sed 's/.* => //'
}

# link_tree SRC TREE [PATCH...]: TREE becomes a copy of SRC made of hard
# links (seconds, no disk space, where a full copy of the 1.8 GB source
# takes minutes), with real copies of the files the patches touch, so that
# applying them leaves SRC alone.  Whoever writes into TREE afterwards
# must replace files (cp --remove-destination, git apply), never write
# into them.
link_tree() {
	local src=$1 tree=$2 p f

	shift 2
	rm -rf "$tree"
	cp -al "$src" "$tree"
	for p in "$@"; do
		patch_files "$p"
	done | sort -u | while read -r f; do
		[ ! -e "$tree/$f" ] || cp --remove-destination "$src/$f" "$tree/$f"
	done
}

# Checks of a patched tree that need no build (used by check-series and the
# mutation run): VFIO must not reach KVM through symbol_get().  Prints
# "static: <what>" and returns 1 on a failure.  They read only the
# directories of STATIC_DIRS (tools/mutants.sh runs them on a copy of those).
STATIC_DIRS=(drivers/vfio)
static_checks() {
	local tree=$1 hits

	hits=$(grep -rn 'symbol_get(kvm' "$tree/drivers/vfio" || true)
	if [ -n "$hits" ]; then
		echo "static: VFIO uses symbol_get() on KVM"
		echo "$hits"
		return 1
	fi
}

# The CONFIG_ lines of the config fragments "$@", the last one of each
# symbol winning, in order of first appearance.
config_fragment_lines() {
	cat "$@" | awk '
	/^CONFIG_[A-Za-z0-9_]+=/ { sym = $0; sub(/=.*/, "", sym) }
	/^# CONFIG_[A-Za-z0-9_]+ is not set/ { sym = $2 }
	sym != "" { if (!(sym in line)) order[n++] = sym; line[sym] = $0; sym = "" }
	END { for (i = 0; i < n; i++) print line[order[i]] }'
}

# config_survived CONFIG TREE FRAGMENT...: every line of the fragments is in
# CONFIG (a .config after olddefconfig; Kconfig silently drops options with
# unmet dependencies).  Prints each line that did not survive and returns 1.
# A symbol that TREE's Kconfig does not know is reported and ignored; the
# count of those is left in CONFIG_UNKNOWN.
config_survived() {
	local config=$1 tree=$2 bad=0 line sym want have

	shift 2
	CONFIG_UNKNOWN=0
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
		if ! grep -rqsE "^(menu)?config ${sym#CONFIG_}\$" --include='Kconfig*' "$tree"; then
			echo "  ($sym: not in this tree's Kconfig)"
			CONFIG_UNKNOWN=$((CONFIG_UNKNOWN + 1))
			continue
		fi
		echo "  config: want '$want', have '${have:-absent}'" >&2
		bad=1
	done < <(config_fragment_lines "$@")
	return $bad
}
