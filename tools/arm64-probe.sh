#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Issue 18, step 1: can an arm64 guest under QEMU TCG get a real vIOMMU from
# the SMMUv3 driver for a VFIO device?  Builds a small arm64 kernel from the
# pinned 7.3 source with the series (cross, tools/arm64-probe/config), boots
# it with KVM (EL2) and an SMMUv3 and runs tools/arm64-probe/viommu_probe.c
# on QEMU's edu device bound to vfio-pci, once per VARIANT:
#   dt-nested    -machine virt,iommu=smmuv3 (stage "nested"), device tree
#   dt-s1, dt-s2 -machine virt-9.1 (stage 1), with -global arm-smmuv3.stage=2
#   acpi-nested  UEFI (AAVMF) + ACPI: IORT instead of the device tree
# Everything comes from Debian through a private apt state: QEMU from
# bookworm-backports, busybox-static:arm64, the arm64 cross libc and AAVMF
# from bookworm.  Results and findings: docs/arm64.md.
#
# Usage: tools/arm64-probe.sh [--base] [VARIANT...]
#   --base   the pristine 7.3 source, no series
# Environment: ARM64_CACHE (default ~/.cache/arm64-feasibility).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ARM=${ARM64_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/arm64-feasibility}
HERE=$REPO/tools/arm64-probe
BASE=0
if [ "${1:-}" = --base ]; then
	BASE=1
	shift
fi
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(dt-nested dt-s1 dt-s2 acpi-nested)
MAKE=(make -C "$ARM/linux" O="$ARM/build" ARCH=arm64
      CROSS_COMPILE=aarch64-linux-gnu-)
command -v ccache >/dev/null && MAKE+=(CC="ccache aarch64-linux-gnu-gcc")
export CCACHE_DIR=$ARM/ccache

need aarch64-linux-gnu-gcc apt-get dpkg-deb cpio gzip flock rsync git
mkdir -p "$ARM/deb" "$ARM/logs"

# fetch DEST APTDIR ARCH SOURCES PKG...: apt-get download the packages with
# the private apt state $ARM/APTDIR and unpack them into $ARM/DEST.
fetch() {
	local dest=$1 aptdir=$2 arch=$3 sources=$4 p deb
	shift 4

	[ -e "$ARM/$dest/.complete" ] && return
	CACHE=$ARM apt_private "$aptdir" "$sources"
	APTOPTS+=(-o "APT::Architecture=$arch")
	[ -n "$(find "$ARM/$aptdir/lists" -name "*binary-${arch}_Packages*")" ] ||
		apt-get -qq "${APTOPTS[@]}" update
	step "downloading $* into $ARM/$dest"
	rm -rf "${ARM:?}/$dest"
	mkdir -p "$ARM/$dest"
	(cd "$ARM/deb" && apt-get -qq "${APTOPTS[@]}" download "$@")
	for p in "$@"; do
		for deb in "$ARM/deb/${p}_"*{"_$arch",_all}.deb; do
			if [ -e "$deb" ]; then
				dpkg-deb -x "$deb" "$ARM/$dest"
				continue 2
			fi
		done
		die "$p: no .deb for $arch in $ARM/deb"
	done
	touch "$ARM/$dest/.complete"
}

BPO="deb [signed-by=$KEYRING] $MIRROR bookworm-backports main"
BOOKWORM="deb [signed-by=$KEYRING] $MIRROR bookworm main"
fetch qemu apt-bpo amd64 "$BPO" qemu-system-arm qemu-system-common qemu-system-data
fetch busybox apt-bookworm-arm64 arm64 "${BOOKWORM/\[/[arch=arm64 }" busybox-static
fetch xlibc apt-bookworm amd64 "$BOOKWORM" libc6-dev-arm64-cross \
	linux-libc-dev-arm64-cross
fetch efi apt-bookworm amd64 "$BOOKWORM" qemu-efi-aarch64
QEMU=$ARM/qemu/usr/bin/qemu-system-aarch64
export QEMU_MODULE_DIR=$ARM/qemu/usr/lib/x86_64-linux-gnu/qemu
step "$("$QEMU" --version | head -n 1)"

# The tree: the pinned source plus the series, staged and synced by content
# so that an unchanged file keeps its timestamp (incremental builds).
fetch_debian_source
read_series
[ $BASE = 0 ] || SERIES=()
stamp=$({ echo "$SRC_VERSION"; cat "${SERIES[@]}" /dev/null; } | sha256sum)
if [ "$(cat "$ARM/linux.stamp" 2>/dev/null)" != "$stamp" ]; then
	step "staging $SRC_VERSION + ${#SERIES[@]} patches"
	rsync -a --delete --exclude=.complete "$SRC/" "$ARM/stage/"
	for p in "${SERIES[@]}"; do
		git -C "$ARM/stage" apply "$p" || die "${p##*/} does not apply"
	done
	rsync -rlD --checksum --delete "$ARM/stage/" "$ARM/linux/"
	echo "$stamp" > "$ARM/linux.stamp"
fi

if ! cmp -s "$HERE/config" "$ARM/config.fragment"; then
	step "configuring: tinyconfig + tools/arm64-probe/config + olddefconfig"
	mkdir -p "$ARM/build"
	"${MAKE[@]}" -s tinyconfig >/dev/null
	"$ARM/linux/scripts/kconfig/merge_config.sh" -m -O "$ARM/build" \
		"$ARM/build/.config" "$HERE/config" >/dev/null
	"${MAKE[@]}" -s olddefconfig >/dev/null
	grep '^CONFIG_' "$HERE/config" | while read -r l; do
		grep -qx "$l" "$ARM/build/.config" || die "config lost: $l"
	done
	cp "$HERE/config" "$ARM/config.fragment"
fi

step "building the arm64 kernel (flock /tmp/heavy.lock)"
s=$(date +%s)
ticker_start "building"
flock /tmp/heavy.lock "${MAKE[@]}" -s -j"$JOBS" Image > "$ARM/build.log" 2>&1 ||
	{ ticker_stop; tail -n 20 "$ARM/build.log"; die "kernel build failed"; }
ticker_stop
step "kernel built in $(($(date +%s) - s)) s (lock wait included)"
"${MAKE[@]}" -s headers >/dev/null

X=$ARM/xlibc/usr/aarch64-linux-gnu
aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -I "$ARM/build/usr/include" \
	-isystem "$X/include" -B "$X/lib" -L "$X/lib" \
	-o "$ARM/viommu_probe" "$HERE/viommu_probe.c"
rm -rf "$ARM/initramfs"
mkdir -p "$ARM/initramfs"/{bin,dev,proc,sys}
cp "$ARM/busybox/bin/busybox" "$ARM/initramfs/bin/"
ln -s busybox "$ARM/initramfs/bin/sh"
cp "$HERE/init" "$ARM/viommu_probe" "$ARM/initramfs/"
(cd "$ARM/initramfs" && find . | cpio -o -H newc --quiet | gzip -1) \
	> "$ARM/initramfs.cpio.gz"

boot() {
	local v=$1 m=virt fw=() glob=() append="console=ttyAMA0 panic=-1" s

	# virt-10.0 sets stage "nested" itself (over any -global); 9.1 and
	# older leave the property alone (stage 1 unless -global says 2).
	case $v in
	dt-nested) ;;
	dt-s1) m=virt-9.1 ;;
	dt-s2) m=virt-9.1 glob=(-global arm-smmuv3.stage=2) ;;
	acpi-nested)
		fw=(-bios "$ARM/efi/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")
		append+=" acpi=force" ;;
	*) die "unknown variant $v" ;;
	esac
	s=$(date +%s)
	timeout 900 "$QEMU" -L "$ARM/qemu/usr/share/qemu" \
		-machine $m,virtualization=on,gic-version=3,iommu=smmuv3 \
		-accel tcg -cpu max -smp 2 -m 1G -nodefaults -display none \
		-serial stdio -no-reboot "${fw[@]}" "${glob[@]}" \
		-kernel "$ARM/build/arch/arm64/boot/Image" \
		-initrd "$ARM/initramfs.cpio.gz" -append "$append" \
		-device edu > "$ARM/logs/$v.log" 2>&1 ||
		echo "guest: qemu exit $?" >> "$ARM/logs/$v.log"
	echo "guest: wall $(($(date +%s) - s)) s" >> "$ARM/logs/$v.log"
}

step "booting ${VARIANTS[*]} (flock /tmp/heavy.lock)"
export -f boot die
export ARM QEMU
flock /tmp/heavy.lock bash -c 'for v; do boot "$v"; done' - "${VARIANTS[@]}"

n=0
for v in "${VARIANTS[@]}"; do
	log=$ARM/logs/$v.log
	echo "=== $v ($log)"
	grep -E 'guest-dmesg: .*(kvm \[1\]: VHE|kvm \[1\]: Hyp|arm-smmu-v3|IORT)|probe: (--- |SMMU |IOMMU_HWPT|IOMMU_VIOMMU|VFIO_DEVICE_BIND|vIOMMUs)|guest: (wall|qemu|viommu_probe)' \
		"$log" || true
	grep -q 'probe: vIOMMUs allocated: [1-9]' "$log" && n=$((n + 1))
done
if [ $n -gt 0 ]; then
	echo "arm64 probe: a vIOMMU was allocated in $n of ${#VARIANTS[@]} variants"
else
	echo "arm64 probe: BLOCKED - no variant got a vIOMMU (docs/arm64.md)"
fi
