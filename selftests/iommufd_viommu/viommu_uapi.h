/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The series' uAPI additions, mirrored so that a program builds against an
 * unpatched 7.3 tree too: IOMMU_VIOMMU_ALLOC's kvm_vm_fd and flag, and the
 * mock's DEV_SET_VM / VM_CHECK test ops. When the tree has the real
 * definitions (HAVE_VIOMMU_KVM_VM_FD, HAVE_IOMMU_TEST_OP_VM_CHECK: the
 * Makefile greps for them) the mirrors are checked against them at compile
 * time. Used by the suite (iommufd_viommu_utils.h) and by tools/bench.
 */
#ifndef __SELFTEST_IOMMUFD_VIOMMU_UAPI_H
#define __SELFTEST_IOMMUFD_VIOMMU_UAPI_H

#include <assert.h>
#include <stddef.h>
#include <linux/iommufd.h>

#include "iommufd_test.h"

/* enum iommu_viommu_alloc_flags of the series */
#define VIOMMU_ALLOC_KVM_VM_FD		(1U << 0)

/*
 * struct iommu_viommu_alloc of the series: 48 bytes (7.3's was 40). Mirrored
 * here so that the suite builds against an unpatched tree too; checked
 * against the uAPI header below when the tree has it.
 */
struct iommu_viommu_alloc_kvm {
	__u32 size;
	__u32 flags;
	__u32 type;
	__u32 dev_id;
	__u32 hwpt_id;
	__u32 out_viommu_id;
	__u32 data_len;
	__u32 __reserved;
	__aligned_u64 data_uptr;
	__s32 kvm_vm_fd;
	__u32 __reserved2;
};

/* offsetofend(out_viommu_id): the smallest size the kernel accepts */
#define VIOMMU_ALLOC_SIZE_MIN		24
/* sizeof(struct iommu_viommu_alloc) in 7.3, before kvm_vm_fd */
#define VIOMMU_ALLOC_SIZE_7_3		40
#define VIOMMU_ALLOC_SIZE_KVM		sizeof(struct iommu_viommu_alloc_kvm)

static_assert(VIOMMU_ALLOC_SIZE_KVM == 48, "struct iommu_viommu_alloc_kvm");
static_assert(offsetof(struct iommu_viommu_alloc_kvm, kvm_vm_fd) ==
	      VIOMMU_ALLOC_SIZE_7_3, "kvm_vm_fd follows the 7.3 struct");

#ifdef HAVE_VIOMMU_KVM_VM_FD
static_assert(sizeof(struct iommu_viommu_alloc) == VIOMMU_ALLOC_SIZE_KVM,
	      "uAPI struct iommu_viommu_alloc differs from the mirror");
static_assert(offsetof(struct iommu_viommu_alloc, kvm_vm_fd) ==
	      offsetof(struct iommu_viommu_alloc_kvm, kvm_vm_fd),
	      "uAPI kvm_vm_fd offset differs from the mirror");
static_assert(offsetof(struct iommu_viommu_alloc, __reserved2) ==
	      offsetof(struct iommu_viommu_alloc_kvm, __reserved2),
	      "uAPI __reserved2 offset differs from the mirror");
static_assert(IOMMU_VIOMMU_ALLOC_KVM_VM_FD == VIOMMU_ALLOC_KVM_VM_FD,
	      "uAPI IOMMU_VIOMMU_ALLOC_KVM_VM_FD differs from the mirror");
#endif

/* The mock's test ops of the series, appended after DMABUF_REVOKE */
#define TEST_OP_DEV_SET_VM		(IOMMU_TEST_OP_DMABUF_REVOKE + 1)
#define TEST_OP_VM_CHECK		(IOMMU_TEST_OP_DMABUF_REVOKE + 2)
#define TEST_VM_NONE			0
#define TEST_VM_SAME			1
#define TEST_VM_OTHER			2

/* dev_set_vm / vm_check: the first members of iommu_test_cmd's union */
struct iommu_test_vm_args {
	__s32 vm_fd;
	__u32 out_vm;
};
#define TEST_CMD_UNION_OFFSET	offsetof(struct iommu_test_cmd, mock_domain)

#ifdef HAVE_IOMMU_TEST_OP_VM_CHECK
static_assert(IOMMU_TEST_OP_DEV_SET_VM == TEST_OP_DEV_SET_VM, "DEV_SET_VM");
static_assert(IOMMU_TEST_OP_VM_CHECK == TEST_OP_VM_CHECK, "VM_CHECK");
static_assert(MOCK_VM_NONE == TEST_VM_NONE && MOCK_VM_SAME == TEST_VM_SAME &&
	      MOCK_VM_OTHER == TEST_VM_OTHER, "MOCK_VM_*");
static_assert(offsetof(struct iommu_test_cmd, dev_set_vm.vm_fd) ==
	      TEST_CMD_UNION_OFFSET, "dev_set_vm.vm_fd");
static_assert(offsetof(struct iommu_test_cmd, vm_check.vm_fd) ==
	      TEST_CMD_UNION_OFFSET, "vm_check.vm_fd");
static_assert(offsetof(struct iommu_test_cmd, vm_check.out_vm) ==
	      TEST_CMD_UNION_OFFSET + 4, "vm_check.out_vm");
#endif

static inline struct iommu_test_vm_args *test_cmd_vm_args(struct iommu_test_cmd *cmd)
{
	return (struct iommu_test_vm_args *)((char *)cmd + TEST_CMD_UNION_OFFSET);
}

#endif /* __SELFTEST_IOMMUFD_VIOMMU_UAPI_H */
