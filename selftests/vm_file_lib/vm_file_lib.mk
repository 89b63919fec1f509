# SPDX-License-Identifier: GPL-2.0-only
#
# vm_file_lib: code the vfio_kvm and iommufd_viommu selftests share (headers
# only: the kernel-log oracle, KVM/VFIO/iommufd helpers, VM-lifetime oracles).
# A suite's Makefile sets its programs and flags, then includes this, which
# includes lib.mk:
#
#   include ../vm_file_lib/vm_file_lib.mk
#
# It sits beside the suites both in this repository (selftests/) and in a
# kernel tree (tools/testing/selftests/), so each suite builds, installs and
# runs with only itself and this directory present. Two ways to build:
#   in a kernel tree, as tools/testing/selftests/<suite>:
#     make -C tools/testing/selftests TARGETS=<suite> [install]
#   in place, against a kernel tree (absolute path):
#     make -C selftests/<suite> KSRC=/path/to/linux \
#          [OUTPUT=/abs/out] [KHDR_INCLUDES="-isystem /path/to/usr/include"]
# lib.mk derives selfdir and top_srcdir (the kernel tree) from its own
# location and adds -I$(selfdir), where "kselftest_harness.h" comes from.

VM_FILE_LIB_DIR := $(realpath $(dir $(lastword $(MAKEFILE_LIST))))

CFLAGS += -I$(VM_FILE_LIB_DIR)
# lib.mk rebuilds a program when one of LOCAL_HDRS changes.
LOCAL_HDRS += $(wildcard $(VM_FILE_LIB_DIR)/*.h)

ifneq ($(KSRC),)
# lib.mk only defaults OUTPUT at MAKELEVEL 0; keep products here otherwise.
ifeq ($(OUTPUT),)
OUTPUT := $(CURDIR)
endif
include $(KSRC)/tools/testing/selftests/lib.mk
# The in-tree top Makefile creates OUTPUT; here nobody else does.
$(shell mkdir -p $(OUTPUT))
else
include $(VM_FILE_LIB_DIR)/../lib.mk
endif
