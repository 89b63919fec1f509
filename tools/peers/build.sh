# SPDX-License-Identifier: GPL-2.0
# Sourced by run_tests.sh (after tools/lib.sh): the kernel tree's own
# selftest suites, tools/testing/selftests/NAME ("peer suites"), built with
# their own Makefiles (libvfio, kvm's lib) and run in the guest next to ours
# (run_tests.sh --kernel-suite NAME).
#
# tools/peers/NAME.list, if present, says which programs of the suite run:
#
#   PROGRAM [ARGS...]     # comment      built and run (with ARGS)
#   -PROGRAM              # why not      not built, not run
#
# Every program the suite's Makefile knows must be on one of the two kinds
# of lines, so a new program in a newer tree is noticed rather than dropped.
# Without a list every program of the suite runs.  The objects are kept in
# $CACHE/peers/NAME across runs: the suite's own dependency files rebuild
# what changed headers (base vs patched uAPI) touch.

# PEERS_DIR: another directory of lists (measurements of other choices).
PEERS=${PEERS_DIR:-$REPO/tools/peers}

# The words of the make variables $3... of the suite directory $1 (built
# in $2), relative to the directory, one per line: TEST_GEN_PROGS and
# TEST_PROGS are the programs the suite runs, TEST_GEN_PROGS_EXTENDED the
# ones its scripts run.
peer_make_vars() {
	local dir=$1 out=$2 vars

	shift 2
	vars=$(printf '$(%s) ' "$@")
	make -s --no-print-directory -C "$dir" OUTPUT="$out" \
		--eval "_peer_vars: ; @printf '%s\n' $vars" \
		_peer_vars | sed "s|^$out/||"
}

# The lines of a list file without comments and blank lines.
peer_list_lines() {
	sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' "$1"
}

# Write an executable that runs $1 with the arguments $2 (and ktapwrap's -a
# arguments after them) to $3; with PEER_TIMEOUT=SECONDS in the environment
# (tools/peers.sh sets it) the program is killed after that long.
peer_wrapper() {
	local limit=

	[ -z "${PEER_TIMEOUT:-}" ] || limit="timeout -s KILL $PEER_TIMEOUT "
	printf '#!/bin/sh\nexec %s%s %s "$@"\n' "$limit" "$1" "$2" > "$3"
	chmod 755 "$3"
}

# build_kernel_suite NAME: build the programs of tools/testing/selftests/NAME
# statically against the tree's uAPI headers, copy them into the initramfs
# and add them to TESTS as "NAME:PROGRAM".
build_kernel_suite() {
	local name=$1 dir=$TREE/tools/testing/selftests/$1
	local list=$PEERS/$1.list out=$CACHE/peers/$1 cmd
	local st=$OUT/initramfs/selftests/$1 all line prog args missing scripts=0
	local -a run=() targets=() extended=()

	[ -f "$dir/Makefile" ] || die "no kernel selftest suite $name in $TREE"
	mkdir -p "$out" "$st"
	all=$(peer_make_vars "$dir" "$out" TEST_GEN_PROGS TEST_PROGS)
	[ -n "$all" ] || die "$name: the suite's Makefile lists no program"
	if [ -f "$list" ]; then
		missing=$(comm -23 <(echo "$all" | sort) \
			<(peer_list_lines "$list" | sed 's/^-//; s/[[:space:]].*//' | sort))
		[ -z "$missing" ] ||
			die "$name: programs neither run nor excluded in $list:" $missing
		while read -r line; do
			case $line in -*) continue ;; esac
			prog=${line%%[[:space:]]*}
			grep -qxF "$prog" <<< "$all" ||
				die "$name: $list names $prog, which the suite does not have"
			run+=("$line")
		done < <(peer_list_lines "$list")
	else
		mapfile -t run <<< "$all"
	fi
	for line in "${run[@]}"; do
		prog=${line%%[[:space:]]*}
		[ -f "$dir/$prog" ] || targets+=("$out/$prog")	# scripts are not built
		[ ! -f "$dir/$prog" ] || scripts=1
	done
	if [ "$scripts" = 1 ]; then
		# What the scripts run: built and copied, not run by themselves.
		for prog in $(peer_make_vars "$dir" "$out" TEST_GEN_PROGS_EXTENDED); do
			targets+=("$out/$prog")
			extended+=("$prog")
		done
	fi

	step "building kernel selftests: $name (${#run[@]} programs)"
	make -s -C "$dir" OUTPUT="$out" KHDR_INCLUDES="-isystem $BUILD/usr/include" \
		LDFLAGS=-static -j"$JOBS" ${targets[@]+"${targets[@]}"} \
		> "$OUT/st-$name.log" 2>&1 ||
		{ tail -n 30 "$OUT/st-$name.log"; die "kernel selftest build failed: $name"; }

	for prog in ${extended[@]+"${extended[@]}"}; do
		mkdir -p "$(dirname "$st/$prog")"
		strip --strip-debug -o "$st/$prog" "$out/$prog"
	done
	for line in "${run[@]}"; do
		prog=${line%%[[:space:]]*} cmd=/selftests/$name/$prog
		args=
		[ "$prog" = "$line" ] || args=${line#*[[:space:]]}
		mkdir -p "$(dirname "$st/$prog")"
		if [ -f "$dir/$prog" ]; then
			# A script: the guest has busybox sh, and no bash;
			# kvm's asks whoami whether it needs sudo.
			cp "$dir/$prog" "$st/$prog"
			cmd="sh $cmd"
			[ -e "$OUT/initramfs/etc/passwd" ] ||
				echo 'root:x:0:0:root:/:/bin/sh' > "$OUT/initramfs/etc/passwd"
		else
			# Without debug info: the initramfs is unpacked into
			# the guest's RAM.
			strip --strip-debug -o "$st/$prog" "$out/$prog"
		fi
		if [ "$cmd" != "/selftests/$name/$prog" ] || [ -n "$args" ] ||
		   [ -n "${PEER_TIMEOUT:-}" ]; then
			peer_wrapper "$cmd" "$args" "$st/$prog.run"
			TESTS+=("$name:$prog=/selftests/$name/$prog.run")
		else
			TESTS+=("$name:$prog=/selftests/$name/$prog")
		fi
	done
}
