# SPDX-License-Identifier: GPL-2.0-only
#
# vm_file_lib: code the vfio_kvm and iommufd_viommu selftests share (the
# kernel-log oracle, KVM/VFIO/iommufd helpers, VM-lifetime oracles, forked
# workers, fail-nth fault injection), as the kernel's kvm selftests share vfio/lib/libvfio.mk. A suite's
# Makefile sets its programs and flags, then includes this, which includes
# lib.mk:
#
#   include ../vm_file_lib/vm_file_lib.mk
#
# VM_FILE_LIB_C is compiled into $(OUTPUT)/vm_file_lib/ and linked into every
# program of the suite; a suite's own objects ($(OUTPUT)/<name>.o from
# <name>.c, the rule below) are added to its programs by its Makefile, after
# the include:
#
#   $(TEST_GEN_PROGS): $(OUTPUT)/<suite>_utils.o
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

VM_FILE_LIB_C := fail_nth.c
VM_FILE_LIB_C += kmsg_oracle.c
VM_FILE_LIB_C += kmsg_report.c
VM_FILE_LIB_C += kvm.c
VM_FILE_LIB_C += util.c
VM_FILE_LIB_C += vfio.c
VM_FILE_LIB_C += workers.c

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

VM_FILE_LIB_OUTPUT := $(OUTPUT)/vm_file_lib
VM_FILE_LIB_O := $(patsubst %.c,$(VM_FILE_LIB_OUTPUT)/%.o,$(VM_FILE_LIB_C))

$(VM_FILE_LIB_OUTPUT):
	$(Q)mkdir -p $@

$(VM_FILE_LIB_O): $(VM_FILE_LIB_OUTPUT)/%.o: $(VM_FILE_LIB_DIR)/%.c $(LOCAL_HDRS) | $(VM_FILE_LIB_OUTPUT)
	$(call msg,CC,,$@)
	$(Q)$(COMPILE.c) $< -o $@

# A suite's own objects.
$(OUTPUT)/%.o: %.c $(LOCAL_HDRS)
	$(call msg,CC,,$@)
	$(Q)$(COMPILE.c) $< -o $@

# lib.mk links a program's prerequisites but its headers.
$(TEST_GEN_PROGS): $(VM_FILE_LIB_O)

EXTRA_CLEAN += $(VM_FILE_LIB_OUTPUT)
