#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Series hygiene, fast: every patch (linux/fixes/, linux/, linux/test-only/)
# applies in order and passes checkpatch --strict; after every patch the
# objects the series touches build (x86, modular config with KVM, VFIO,
# iommufd and i915 GVT, W=1) without a warning the base tree does not have;
# sparse (0.6.5, built from Debian's source package) reports nothing new for
# them; no module of VFIO or iommufd depends on kvm.ko (modinfo -F depends);
# s390 defconfig and debug_defconfig keep IOMMUFD=y; on powerpc with
# KVM_BOOK3S_64=m the built-in VFIO and iommufd reference no symbol of the KVM
# modules; the s390 (vfio-ap, zdev) and arm64 (SMMUv3 iommufd, Tegra241
# CMDQV) objects build with Debian's cross compilers.
# Objects, not kernels: a few minutes on 2 cores.
#
# Usage: tools/check-series.sh        (KSRC=, CACHE_DIR=, JOBS= as run_tests.sh)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The configurations: base defconfig of the architecture + these options.
X86_CONFIG="
CONFIG_KVM=m
CONFIG_KVM_INTEL=m
CONFIG_KVM_AMD=m
CONFIG_VFIO=m
CONFIG_VFIO_GROUP=y
CONFIG_VFIO_CONTAINER=y
CONFIG_VFIO_DEVICE_CDEV=y
CONFIG_VFIO_PCI=m
CONFIG_VFIO_MDEV=m
CONFIG_IOMMUFD=m
CONFIG_DEBUG_KERNEL=y
CONFIG_FAULT_INJECTION=y
CONFIG_RUNTIME_TESTING_MENU=y
CONFIG_IOMMUFD_TEST=y
CONFIG_IOMMU_PT_AMDV1=y
CONFIG_DRM_I915=m
CONFIG_DRM_I915_GVT_KVMGT=m
CONFIG_SAMPLES=y
CONFIG_SAMPLE_VFIO_MDEV_MTTY=m
CONFIG_SAMPLE_VFIO_MDEV_MKVM=m
"
S390_CONFIG="
CONFIG_KVM=m
CONFIG_VFIO=m
CONFIG_VFIO_PCI=m
CONFIG_VFIO_PCI_ZDEV_KVM=y
CONFIG_VFIO_AP=m
CONFIG_ZCRYPT=m
CONFIG_IOMMUFD=m
"
ARM64_CONFIG="
CONFIG_IOMMUFD=y
CONFIG_ARM_SMMU_V3=y
CONFIG_ARM_SMMU_V3_IOMMUFD=y
CONFIG_TEGRA241_CMDQV=y
CONFIG_KVM=y
"
# powerpc: CONFIG_KVM is a bool selected by the tristate KVM_BOOK3S_64, so
# KVM=y with kvm.ko a module; VFIO and iommufd built in.
PPC_CONFIG="
CONFIG_VIRTUALIZATION=y
CONFIG_KVM_BOOK3S_64=m
CONFIG_KVM_BOOK3S_64_HV=m
CONFIG_KVM=y
CONFIG_VFIO=y
CONFIG_VFIO_PCI=y
CONFIG_IOMMUFD=y
"
# Objects per architecture: the .c files the series touches and a few that
# include its headers (KVM's VFIO device, KVM's x86 core, the vIOMMU drivers).
X86_OBJS="virt/kvm/kvm_main.o virt/kvm/vfio.o arch/x86/kvm/x86.o
	drivers/vfio/vfio_main.o drivers/vfio/group.o drivers/vfio/device_cdev.o
	drivers/vfio/iommufd.o drivers/vfio/container.o
	drivers/iommu/iommufd/main.o drivers/iommu/iommufd/device.o
	drivers/iommu/iommufd/viommu.o drivers/iommu/iommufd/hw_pagetable.o
	drivers/iommu/iommufd/selftest.o
	drivers/gpu/drm/i915/gvt/kvmgt.o samples/vfio-mdev/mkvm.o
	samples/vfio-mdev/mtty.o"
S390_OBJS="drivers/s390/crypto/vfio_ap_ops.o drivers/vfio/pci/vfio_pci_zdev.o
	drivers/vfio/vfio_main.o drivers/iommu/iommufd/viommu.o"
ARM64_OBJS="drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3-iommufd.o
	drivers/iommu/arm/arm-smmu-v3/tegra241-cmdqv.o
	drivers/iommu/iommufd/viommu.o drivers/iommu/iommufd/device.o"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# KVM's objects live in virt/kvm/ but are built by arch/<arch>/kvm/Makefile.
objpath() {
	local arch=${2%_64}

	case $1 in
	virt/kvm/*) echo "arch/$arch/kvm/../../../$1" ;;
	*) echo "$1" ;;
	esac
}

# xmake ARCH BUILD [make args]: build in the check tree.
xmake() {
	local arch=$1 build=$2 cross=
	shift 2
	case $arch in
	s390) cross=s390x-linux-gnu- ;;
	arm64) cross=aarch64-linux-gnu- ;;
	powerpc) cross=powerpc64le-linux-gnu- ;;
	esac
	make -s -C "$TREE" O="$build" ARCH="$arch" ${cross:+CROSS_COMPILE=$cross} \
		-j"$JOBS" "$@"
}

# setup ARCH OPTIONS [DEFCONFIG]: DEFCONFIG (default: defconfig) + options,
# then prepare.  Sets BUILDDIR.
setup() {
	local arch=$1 opts=$2 defconfig=${3:-defconfig} sym line

	BUILDDIR=$CACHE/check/build-$arch
	mkdir -p "$BUILDDIR"
	xmake "$arch" "$BUILDDIR" "$defconfig" >/dev/null
	printf '%s\n' "$opts" > "$BUILDDIR/fragment"
	"$TREE/scripts/kconfig/merge_config.sh" -m -O "$BUILDDIR" \
		"$BUILDDIR/.config" "$BUILDDIR/fragment" >/dev/null
	xmake "$arch" "$BUILDDIR" olddefconfig >/dev/null
	for line in $opts; do
		sym=${line%%=*}
		grep -qx "$line" "$BUILDDIR/.config" ||
			grep -rqsE "^config ${sym#CONFIG_}\$" --include='Kconfig*' "$TREE" ||
			continue	# not in this tree (yet): the series adds it
		grep -qx "$line" "$BUILDDIR/.config" ||
			fail "$arch config: $line did not survive olddefconfig"
	done
	xmake "$arch" "$BUILDDIR" prepare >/dev/null 2>&1 ||
		die "$arch: make prepare failed"
}

# build ARCH LOG OBJS...: W=1 build of the objects that exist in the tree;
# compiler diagnostics go to LOG, normalized (no line/column numbers) so
# that logs of different trees can be compared.
build() {
	local arch=$1 log=$2 o src
	local -a objs=()
	shift 2
	for o in "$@"; do
		src=${o%.o}.c
		[ -e "$TREE/$src" ] && objs+=("$(objpath "$o" "$arch")")
	done
	xmake "$arch" "$BUILDDIR" W=1 -k "${objs[@]}" > "$log.raw" 2>&1
	local rc=$?
	grep -E 'warning:|error:' "$log.raw" | normalize > "$log"
	return $rc
}

# cross ARCH TRIPLET CONFIG OBJS...: cross build of the final tree's objects
# with Debian's TRIPLET-gcc on ARCH defconfig + CONFIG.
cross() {
	local arch=$1 triplet=$2 opts=$3
	shift 3
	if ! command -v "$triplet-gcc" >/dev/null; then
		fail "no $triplet-gcc (make deps)"
		return
	fi
	step "$arch: defconfig + options, prepare, objects"
	setup "$arch" "$opts"
	build "$arch" "$CACHE/check/$arch.log" "$@" ||
		{ fail "$arch objects"; grep error "$CACHE/check/$arch.log" | head; }
}

# sparse_check LOG: sparse (C=2: checked even if up to date) on the x86
# objects, normalized diagnostics to LOG.
sparse_check() {
	local o
	local -a objs=()

	for o in $X86_OBJS; do
		[ -e "$TREE/${o%.o}.c" ] && objs+=("$(objpath "$o" x86_64)")
	done
	xmake x86_64 "$BUILDDIR" C=2 CHECK="$SPARSE" -k "${objs[@]}" > "$1.raw" 2>&1 || true
	grep -q 'is not available or not up to date' "$1.raw" &&
		fail "sparse: $SPARSE is not usable"
	grep -E 'warning:|error:' "$1.raw" | normalize > "$1" || true
}

normalize() {
	sed -E "s|$TREE/||; s|:[0-9]+:[0-9]+:|:|; s|^(\.\./)+||" | sort -u
}

# The modules of DIRs (their modules.order, after a build of the DIRs), as
# .ko paths relative to the build directory.
modules_of() {
	local d
	for d in "$@"; do
		sed 's/\.o$/.ko/' "$BUILDDIR/$d/modules.order"
	done
}

# No module of VFIO or iommufd may depend on kvm.ko: loading VFIO must not
# load KVM.  The x86 configuration has all three as modules; modpost of the
# modules alone (no vmlinux: KBUILD_MODPOST_WARN) still resolves symbols
# between them, so "depends" names kvm wherever a KVM symbol is used.  The
# KVM vendor modules are the control: they must depend on kvm.
module_deps() {
	local dirs="drivers/vfio drivers/iommu/iommufd arch/x86/kvm virt/lib"
	local ko deps

	# shellcheck disable=SC2086
	xmake x86_64 "$BUILDDIR" $(printf '%s/ ' $dirs) >/dev/null 2>&1 ||
		{ fail "x86_64: $dirs do not build"; return; }
	# shellcheck disable=SC2046
	xmake x86_64 "$BUILDDIR" KBUILD_MODPOST_WARN=1 \
		$(modules_of $dirs) >/dev/null 2>&1 ||
		{ fail "x86_64: modules of $dirs do not build"; return; }
	for ko in $(modules_of $dirs); do
		deps=$(modinfo -F depends "$BUILDDIR/$ko")
		echo "    $ko: depends: ${deps:-(none)}"
		case $ko in
		arch/x86/kvm/kvm-*.ko)
			[[ ,$deps, == *,kvm,* ]] ||
				fail "$ko does not depend on kvm: the check is blind" ;;
		drivers/*)
			[[ ,$deps, != *,kvm,* ]] ||
				fail "$ko depends on kvm.ko" ;;
		esac
	done
}

# s390's own configurations have IOMMUFD=y and KVM=m: a dependency of
# iommufd on KVM would silently turn it into a module there.
s390_iommufd() {
	local cfg have

	for cfg in defconfig debug_defconfig; do
		BUILDDIR=$CACHE/check/build-s390-$cfg
		mkdir -p "$BUILDDIR"
		xmake s390 "$BUILDDIR" "$cfg" >/dev/null
		have=$(grep -E '^CONFIG_(IOMMUFD|KVM)=' "$BUILDDIR/.config" | tr '\n' ' ')
		echo "    s390 $cfg: $have"
		grep -qx 'CONFIG_IOMMUFD=y' "$BUILDDIR/.config" ||
			fail "s390 $cfg: IOMMUFD is not y"
	done
}

# powerpc with KVM=y but kvm.ko a module (KVM_BOOK3S_64=m), VFIO and
# iommufd built in: no symbol that the built-in objects reference may be
# defined by the KVM modules (the link would fail).
ppc_kvm_symbols() {
	local o undef defined both

	setup powerpc "$PPC_CONFIG" ppc64le_defconfig
	xmake powerpc "$BUILDDIR" drivers/vfio/ drivers/iommu/iommufd/ \
		arch/powerpc/kvm/ >/dev/null 2>&1 ||
		{ fail "powerpc: VFIO, iommufd or KVM do not build"; return; }
	undef=$(nm -u "$BUILDDIR/drivers/vfio/built-in.a" \
		"$BUILDDIR/drivers/iommu/iommufd/built-in.a" |
		awk '$1 == "U" { print $2 }' | sort -u)
	defined=$(for o in $(cat "$BUILDDIR/arch/powerpc/kvm/modules.order"); do
		nm -g --defined-only "$BUILDDIR/$o"; done | awk '{ print $3 }' | sort -u)
	[ -n "$defined" ] || { fail "powerpc: no KVM module objects"; return; }
	both=$(comm -12 <(echo "$undef") <(echo "$defined"))
	echo "    powerpc: KVM modules $(tr '\n' ' ' < "$BUILDDIR/arch/powerpc/kvm/modules.order")define $(echo "$defined" | wc -l) symbols; built-in VFIO/iommufd use: ${both:-none}"
	[ -z "$both" ] || fail "powerpc: built-in VFIO/iommufd need KVM module symbols: $both"
}

# new_diags BASELOG LOG: diagnostics in LOG that BASELOG does not have.
new_diags() {
	comm -13 "$1" "$2"
}

main() {
	local p i n tmp log base_log
	need gcc make flex bison bc git flock perl
	trap ticker_stop EXIT
	cache_lock
	resolve_source
	fetch_sparse
	read_series
	n=${#SERIES[@]}
	step "kernel source: $SRC_VERSION; $n patches"

	# 1. checkpatch --strict on every patch.  The source package has no git
	# history, so the commit ids of Fixes: tags cannot be looked up here.
	for p in "${SERIES[@]}"; do
		tmp=$(perl "$SRC/scripts/checkpatch.pl" --strict -q --no-tree \
			--ignore UNKNOWN_COMMIT_ID "$p" 2>&1) || true
		[ -z "$tmp" ] || { fail "checkpatch: ${p##*/}"; echo "$tmp" | sed 's/^/    /'; }
	done
	step "checkpatch --strict: done"

	# 2. A pristine tree, with the x86 configuration prepared.
	# Fresh build directories too: objects of an earlier run would look
	# newer than the pristine sources and never be rebuilt from them.
	TREE=$CACHE/check/tree
	step "linking pristine tree to $TREE"
	rm -rf "$CACHE/check"
	mkdir -p "$CACHE/check"
	link_tree "$SRC" "$TREE" "${SERIES[@]}"
	rm -f "$TREE/.complete"
	step "x86_64: defconfig + options, prepare"
	ticker_start "preparing"
	setup x86_64 "$X86_CONFIG"
	ticker_stop
	base_log=$CACHE/check/x86-0.log
	step "x86_64: base objects (W=1)"
	build x86_64 "$base_log" $X86_OBJS || true
	sparse_check "$CACHE/check/sparse-0.log"

	# 3. Apply the patches one by one; after each, the objects build and
	# add no diagnostics.  The configuration is refreshed once the series
	# adds the options it needs (mkvm).
	i=0
	for p in "${SERIES[@]}"; do
		i=$((i + 1))
		(cd "$TREE" && git apply --whitespace=nowarn "$p") ||
			{ fail "does not apply: ${p##*/}"; break; }
		if patch_files "$p" | grep -q 'Kconfig'; then
			setup x86_64 "$X86_CONFIG"
		fi
		log=$CACHE/check/x86-$i.log
		if ! build x86_64 "$log" $X86_OBJS; then
			fail "x86_64 build after ${p##*/}"
			grep -E 'error' "$log" | head -n 20 | sed 's/^/    /'
		fi
		tmp=$(new_diags "$base_log" "$log")
		if [ -n "$tmp" ]; then
			fail "new W=1 diagnostics after ${p##*/}"
			echo "$tmp" | sed 's/^/    /'
		fi
		step "[$i/$n] ${p##*/}: done ($failures failures so far)"
	done

	# 4. sparse on the final tree, against the base tree's report.
	sparse_check "$CACHE/check/sparse-$n.log"
	tmp=$(new_diags "$CACHE/check/sparse-0.log" "$CACHE/check/sparse-$n.log")
	[ -z "$tmp" ] || { fail "new sparse warnings"; echo "$tmp" | sed 's/^/    /'; }
	step "sparse: $(wc -l < "$CACHE/check/sparse-$n.log") warnings, $(
		printf '%s' "$tmp" | grep -c . || true) new"

	# 5. VFIO without kvm.ko: no symbol_get() of KVM, no KVM symbol used.
	static_checks "$TREE" || fail "static checks"
	(cd "$BUILDDIR" && xmake x86_64 "$BUILDDIR" drivers/vfio/ >/dev/null 2>&1) ||
		fail "x86_64: drivers/vfio/ does not build"
	tmp=$(nm -u "$BUILDDIR/drivers/vfio/vfio.o" 2>/dev/null |
		grep -E ' U (kvm_|__kvm_|file_is_kvm)' || true)
	[ -z "$tmp" ] || { fail "vfio.ko needs KVM symbols:"; echo "$tmp"; }
	step "vfio.o: KVM symbols used: ${tmp:-none}"
	step "modules: modinfo -F depends (KVM, VFIO, iommufd as modules)"
	module_deps

	# 6. Cross builds of the final tree.
	cross s390 s390x-linux-gnu "$S390_CONFIG" $S390_OBJS
	cross arm64 aarch64-linux-gnu "$ARM64_CONFIG" $ARM64_OBJS
	step "s390: defconfig and debug_defconfig keep IOMMUFD=y"
	s390_iommufd
	if command -v powerpc64le-linux-gnu-gcc >/dev/null; then
		step "powerpc: KVM_BOOK3S_64=m, VFIO and iommufd built in"
		ppc_kvm_symbols
	else
		fail "no powerpc64le-linux-gnu-gcc (make deps)"
	fi

	step "finished"
	echo "check-series: $n patches, $failures failures"
	[ "$failures" -eq 0 ]
}

main "$@"
exit
