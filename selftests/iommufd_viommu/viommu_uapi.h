/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Only for a tree WITHOUT the series (plain 7.3): the minimum of its uAPI
 * that the suite names, so that the suite still builds there and its tests
 * of the missing feature report it absent at run time (the kernel refuses
 * the flag and the test op with EOPNOTSUPP: they SKIP naming it, or FAIL
 * where they assert it, see README). Against a tree with the series nothing
 * is defined here but two accessors: the names are the tree's own, from
 * <linux/iommufd.h> and drivers/iommu/iommufd/iommufd_test.h. The Makefile
 * tells the two apart (HAVE_VIOMMU_KVM_VM_FD, HAVE_MOCK_DEVICE_KVM_VM: grep
 * of the tree's headers).
 */
#ifndef __SELFTEST_IOMMUFD_VIOMMU_UAPI_H
#define __SELFTEST_IOMMUFD_VIOMMU_UAPI_H

#include <assert.h>
#include <stddef.h>
#include <linux/iommufd.h>

#include "iommufd_test.h"

#ifdef HAVE_VIOMMU_KVM_VM_FD
/* The tree's struct iommu_viommu_alloc has kvm_vm_fd: the same struct. */
#define iommu_viommu_alloc_kvm		iommu_viommu_alloc
#else
#define IOMMU_VIOMMU_ALLOC_KVM_VM_FD	(1U << 0)
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
#endif

/* offsetofend(out_viommu_id): the smallest size the kernel accepts */
#define VIOMMU_ALLOC_SIZE_MIN		24
/* sizeof(struct iommu_viommu_alloc) in 7.3, before kvm_vm_fd */
#define VIOMMU_ALLOC_SIZE_7_3		40
#define VIOMMU_ALLOC_SIZE_KVM		sizeof(struct iommu_viommu_alloc_kvm)

/* The layout the size tests rely on. */
static_assert(VIOMMU_ALLOC_SIZE_KVM == 48, "struct iommu_viommu_alloc with kvm_vm_fd");
static_assert(offsetof(struct iommu_viommu_alloc_kvm, kvm_vm_fd) ==
	      VIOMMU_ALLOC_SIZE_7_3, "kvm_vm_fd follows the 7.3 struct");

#ifdef HAVE_MOCK_DEVICE_KVM_VM
#define mock_cmd_vm_check(cmd)		(&(cmd)->vm_check)
#define mock_cmd_kvm_vm_fd(cmd)		(&(cmd)->mock_domain_flags.kvm_vm_fd)
#else
#define IOMMU_TEST_OP_VM_CHECK		(IOMMU_TEST_OP_DMABUF_REVOKE + 1)
#define MOCK_FLAGS_DEVICE_KVM_VM	(1 << 3)
enum {
	MOCK_VM_NONE = 0,
	MOCK_VM_SAME = 1,
	MOCK_VM_OTHER = 2,
};

/* vm_check: the first members of iommu_test_cmd's union */
struct mock_vm_check {
	__s32 vm_fd;
	__u32 out_vm;
};

static inline struct mock_vm_check *mock_cmd_vm_check(struct iommu_test_cmd *cmd)
{
	return (struct mock_vm_check *)&cmd->mock_domain;
}

/* mock_domain_flags.kvm_vm_fd: after dev_flags */
static inline __s32 *mock_cmd_kvm_vm_fd(struct iommu_test_cmd *cmd)
{
	return (__s32 *)(&cmd->mock_domain_flags.dev_flags + 1);
}
#endif

#endif /* __SELFTEST_IOMMUFD_VIOMMU_UAPI_H */
