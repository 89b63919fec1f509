// SPDX-License-Identifier: GPL-2.0-only
/*
 * The baseline the vIOMMU-KVM tests build on, one test per fact: /dev/iommu,
 * an IOAS, a mock device (CONFIG_IOMMUFD_TEST), a nest-parent HWPT and an
 * IOMMU_VIOMMU_TYPE_SELFTEST vIOMMU on it, and how IOMMU_VIOMMU_ALLOC
 * refuses bad input today. These hold on plain 7.3 and must keep holding
 * after the series extends IOMMU_VIOMMU_ALLOC with a KVM VM fd.
 */
#include "iommufd_viommu_utils.h"

/* ------------------------------------------------------------- /dev/iommu */

FIXTURE(iommufd)
{
	int fd;
};

FIXTURE_SETUP(iommufd)
{
	iommufd_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(iommufd)
{
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

/* Rule: /dev/iommu opens (setup) and allocates an IOAS with a non-zero id. */
TEST_F(iommufd, ioas_alloc)
{
	__u32 ioas_id;

	test_ioctl_ioas_alloc(&ioas_id);
}

/* Rule: a destroyed object id is gone: destroying it again is ENOENT. */
TEST_F(iommufd, ioas_destroy)
{
	__u32 ioas_id;

	test_ioctl_ioas_alloc(&ioas_id);
	test_ioctl_destroy(ioas_id);
	test_err_ioctl_destroy(ENOENT, ioas_id);
}

/* ------------------------------------------------------ the iommufd mock */

/*
 * Setup: an IOAS and a mock device attached to it (which also gives the
 * device's idev and an automatic paging HWPT, not a nest parent).
 */
FIXTURE(iommufd_mock)
{
	int fd;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 hwpt_id;
	__u32 idev_id;
};

FIXTURE_SETUP(iommufd_mock)
{
	iommufd_mock_open_or_skip(self->fd);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev_id, &self->hwpt_id,
			     &self->idev_id);
}

FIXTURE_TEARDOWN(iommufd_mock)
{
	/* Closing the iommufd destroys whatever the test left (auto destroy). */
	if (self->fd >= 0)
		EXPECT_EQ(0, close(self->fd));
}

/* A nest-parent HWPT on the fixture's IOAS, for its device. */
#define test_nest_parent_alloc(parent_id)                                    \
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,                    \
			    IOMMU_HWPT_ALLOC_NEST_PARENT, parent_id)

/* Rule: a mock device comes with a device object, an idev and a domain. */
TEST_F(iommufd_mock, mock_domain)
{
	ASSERT_NE(0, self->stdev_id);
	ASSERT_NE(0, self->idev_id);
	ASSERT_NE(0, self->hwpt_id);
}

/* Rule: the mock device can allocate a nest-parent HWPT on the IOAS. */
TEST_F(iommufd_mock, nest_parent_hwpt)
{
	__u32 parent_id = 0;

	test_nest_parent_alloc(&parent_id);
	ASSERT_NE(0, parent_id);
}

/* Rule: a SELFTEST vIOMMU can be allocated on a nest parent. */
TEST_F(iommufd_mock, viommu_alloc)
{
	__u32 parent_id, viommu_id = 0;

	test_nest_parent_alloc(&parent_id);
	test_cmd_viommu_alloc(self->idev_id, parent_id,
			      IOMMU_VIOMMU_TYPE_SELFTEST, &viommu_id);
	ASSERT_NE(0, viommu_id);
}

/*
 * Rule: a vIOMMU pins its nest parent: the parent cannot be destroyed
 * before the vIOMMU (EBUSY), and can after it. (The series gives the
 * vIOMMU a VM file to pin the same way.)
 */
TEST_F(iommufd_mock, viommu_pins_parent)
{
	__u32 parent_id, viommu_id;

	test_nest_parent_alloc(&parent_id);
	test_cmd_viommu_alloc(self->idev_id, parent_id,
			      IOMMU_VIOMMU_TYPE_SELFTEST, &viommu_id);
	test_err_ioctl_destroy(EBUSY, parent_id);
	test_ioctl_destroy(viommu_id);
	test_ioctl_destroy(parent_id);
}

/* Rule: closing the iommufd with a live vIOMMU tears it all down. */
TEST_F(iommufd_mock, viommu_auto_destroy)
{
	__u32 parent_id, viommu_id;

	test_nest_parent_alloc(&parent_id);
	test_cmd_viommu_alloc(self->idev_id, parent_id,
			      IOMMU_VIOMMU_TYPE_SELFTEST, &viommu_id);
}

/* Rule: a vIOMMU needs a nest-parent HWPT: the automatic domain is EINVAL. */
TEST_F(iommufd_mock, viommu_needs_nest_parent)
{
	test_err_viommu_alloc(EINVAL, self->idev_id, self->hwpt_id, 0,
			      IOMMU_VIOMMU_TYPE_SELFTEST);
}

/* Rule: IOMMU_VIOMMU_TYPE_DEFAULT is not a vIOMMU type: EOPNOTSUPP. */
TEST_F(iommufd_mock, viommu_type_default)
{
	__u32 parent_id;

	test_nest_parent_alloc(&parent_id);
	test_err_viommu_alloc(EOPNOTSUPP, self->idev_id, parent_id, 0,
			      IOMMU_VIOMMU_TYPE_DEFAULT);
}

/* Rule: a type the device's IOMMU does not implement: EOPNOTSUPP. */
TEST_F(iommufd_mock, viommu_type_unknown)
{
	__u32 parent_id;

	test_nest_parent_alloc(&parent_id);
	test_err_viommu_alloc(EOPNOTSUPP, self->idev_id, parent_id, 0, 0xdead);
}

/*
 * Rule: unknown flags are refused with EOPNOTSUPP. Bit 31 stays unknown
 * after the series defines its KVM flag (a low bit).
 */
TEST_F(iommufd_mock, viommu_unknown_flag)
{
	__u32 parent_id;

	test_nest_parent_alloc(&parent_id);
	test_err_viommu_alloc(EOPNOTSUPP, self->idev_id, parent_id, 1U << 31,
			      IOMMU_VIOMMU_TYPE_SELFTEST);
}

/* Rule: a vIOMMU needs an existing device: dev_id 0 is ENOENT. */
TEST_F(iommufd_mock, viommu_no_device)
{
	__u32 parent_id;

	test_nest_parent_alloc(&parent_id);
	test_err_viommu_alloc(ENOENT, 0, parent_id, 0,
			      IOMMU_VIOMMU_TYPE_SELFTEST);
}

/* Rule: a vIOMMU needs an existing HWPT: hwpt_id 0 is ENOENT. */
TEST_F(iommufd_mock, viommu_no_hwpt)
{
	test_err_viommu_alloc(ENOENT, self->idev_id, 0, 0,
			      IOMMU_VIOMMU_TYPE_SELFTEST);
}

/* --------------------------------------------------------------- presence */

/*
 * What the suite's other tests need, one test each, so that a missing piece
 * cannot hide behind their SKIPs: absent is "not checkable here" (SKIP)
 * unless $VFIO_KVM_REQUIRE names it (the kernel was built to have it: FAIL);
 * there but not working always FAILs.
 */
FIXTURE(presence)
{
};

FIXTURE_SETUP(presence)
{
}

FIXTURE_TEARDOWN(presence)
{
}

/* Rule: failslab and fail-nth are there and writable (iommufd_viommu_fail_nth). */
TEST_F(presence, failslab)
{
	const char *why = failslab_setup();

	if (!why)
		return;
	ASSERT_NE(0, strncmp(why, "FAIL", 4)) TH_LOG("%s", why);
	feature_absent("failslab", why);
}

TEST_HARNESS_MAIN
