/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * iommufd wrappers for the iommufd_viommu selftests, in the style of
 * selftests/iommu/iommufd_utils.h: _test_cmd_x() raw, test_cmd_x() asserts
 * success, test_err_x() asserts an errno; the macros work on self->fd (the
 * fixture's iommufd), like upstream's.
 *
 * KVM, VM-lifetime oracles and VFIO discovery come from the vfio_kvm suite's
 * header (one copy of those helpers for both suites). The mock-device uAPI
 * (IOMMU_TEST_CMD, IOMMU_VIOMMU_TYPE_SELFTEST) is the kernel tree's own
 * drivers/iommu/iommufd/iommufd_test.h, found through -I in the Makefile.
 */
#ifndef __SELFTEST_IOMMUFD_VIOMMU_UTILS_H
#define __SELFTEST_IOMMUFD_VIOMMU_UTILS_H

#include "../vfio_kvm/vfio_kvm_utils.h"
#include "iommufd_test.h"

/* ------------------------------------------------------ mock detection */

/*
 * Is the mock (CONFIG_IOMMUFD_TEST) there? IOMMU_TEST_CMD is only in the
 * ioctl table when it is; otherwise the ioctl is ENOTTY. The probe is a
 * zero-length MD_CHECK_REFS, which checks nothing and returns 0.
 * Returns 1, 0 (ENOTTY) or -1 (anything else: a real failure).
 */
static inline int iommufd_test_available(int fd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_REFS,
	};

	if (!ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return 1;
	return errno == ENOTTY ? 0 : -1;
}

/* ---------------------------------------------------------- IOAS, destroy */

#define test_ioctl_ioas_alloc(id) test_ioas_alloc(self->fd, id)
#define test_ioctl_destroy(id) test_destroy(self->fd, id)
#define test_err_ioctl_destroy(_errno, id) test_err_destroy(_errno, self->fd, id)

/* --------------------------------------------------- mock device (stdev) */

static inline int _test_cmd_mock_domain(int fd, __u32 ioas_id, __u32 *stdev_id,
					__u32 *hwpt_id, __u32 *idev_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = ioas_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (ret)
		return ret;
	if (stdev_id)
		*stdev_id = cmd.mock_domain.out_stdev_id;
	if (hwpt_id)
		*hwpt_id = cmd.mock_domain.out_hwpt_id;
	if (idev_id)
		*idev_id = cmd.mock_domain.out_idev_id;
	return 0;
}
#define test_cmd_mock_domain(ioas_id, stdev_id, hwpt_id, idev_id)          \
	ASSERT_EQ(0, _test_cmd_mock_domain(self->fd, ioas_id, stdev_id,    \
					   hwpt_id, idev_id))              \
		TH_LOG("IOMMU_TEST_OP_MOCK_DOMAIN: %s", strerror(errno))
#define test_err_mock_domain(_errno, ioas_id)                                \
	EXPECT_ERRNO(_errno, _test_cmd_mock_domain(self->fd, ioas_id, NULL, \
						   NULL, NULL))

/* ------------------------------------------------------------------ HWPT */

/* A paging HWPT (IOMMU_HWPT_DATA_NONE) on @pt_id for @dev_id. */
static inline int _test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
				       __u32 flags, __u32 *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = IOMMU_HWPT_DATA_NONE,
	};
	int ret;

	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (ret)
		return ret;
	if (hwpt_id)
		*hwpt_id = cmd.out_hwpt_id;
	return 0;
}
#define test_cmd_hwpt_alloc(dev_id, pt_id, flags, hwpt_id)                   \
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(self->fd, dev_id, pt_id, flags,    \
					  hwpt_id))                          \
		TH_LOG("IOMMU_HWPT_ALLOC(flags %#x): %s", (unsigned int)(flags), \
		       strerror(errno))
#define test_err_hwpt_alloc(_errno, dev_id, pt_id, flags)                   \
	EXPECT_ERRNO(_errno, _test_cmd_hwpt_alloc(self->fd, dev_id, pt_id, \
						  flags, NULL))

/* ---------------------------------------------------------------- vIOMMU */

/*
 * IOMMU_VIOMMU_ALLOC as in the 7.3 uAPI (no driver data). A later patch of
 * this series adds a KVM VM fd flag and field; these wrappers fill only the
 * fields 7.3 has, so they keep working unchanged on either kernel.
 */
static inline int _test_cmd_viommu_alloc(int fd, __u32 dev_id, __u32 hwpt_id,
					 __u32 flags, __u32 type,
					 __u32 *viommu_id)
{
	struct iommu_viommu_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.type = type,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd);
	if (ret)
		return ret;
	if (viommu_id)
		*viommu_id = cmd.out_viommu_id;
	return 0;
}
#define test_cmd_viommu_alloc(dev_id, hwpt_id, type, viommu_id)              \
	ASSERT_EQ(0, _test_cmd_viommu_alloc(self->fd, dev_id, hwpt_id, 0,    \
					    type, viommu_id))                \
		TH_LOG("IOMMU_VIOMMU_ALLOC: %s", strerror(errno))
#define test_err_viommu_alloc(_errno, dev_id, hwpt_id, flags, type)          \
	EXPECT_ERRNO(_errno, _test_cmd_viommu_alloc(self->fd, dev_id,        \
						    hwpt_id, flags, type, NULL))

#endif /* __SELFTEST_IOMMUFD_VIOMMU_UTILS_H */
