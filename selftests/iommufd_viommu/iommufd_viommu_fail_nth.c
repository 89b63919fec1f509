// SPDX-License-Identifier: GPL-2.0-only
/*
 * Fault injection on the paths that take a VM reference, in the manner of
 * tools/testing/selftests/iommu/iommufd_fail_nth.c: run a sequence of calls
 * under /proc/self/task/<tid>/fail-nth for n = 1, 2, ... (every slab
 * allocation may fail: failslab set up as upstream does) until the n-th
 * fault-injection point is beyond the sequence, i.e. it runs through.
 *
 * After every injected failure: the failing call said ENOMEM (a slab
 * allocation) or ENOENT/EINVAL (the mock's fail_iommufd point in object
 * lookup, which upstream's sweep also hits), the iommufd
 * still works (the same calls succeed without injection), and once the
 * iommufd and the VM fd are closed the VM is destroyed exactly once - a
 * reference taken on the VM file and not dropped on some error path shows
 * as a VM that never dies. The kernel-log scan catches splats (KASAN,
 * refcount, lockdep) of the error paths.
 */
#include "iommufd_viommu_utils.h"

/* Upstream's limit: the number of points is far below. */
#define FAIL_NTH_MAX	1000

FIXTURE(viommu_fail_nth)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch w;
	int vm_fd;
	int nth_fd;
	__u32 ioas_id, stdev_id, idev_id, parent_id;
};

/* Which sequence runs under injection. */
FIXTURE_VARIANT(viommu_fail_nth)
{
	/* IOMMU_VIOMMU_ALLOC with the KVM flag on a device without a VM */
	bool viommu_kvm;
	/*
	 * The association path: DEV_SET_VM(vm), IOMMU_VIOMMU_ALLOC without
	 * the flag (takes the idev's VM), IOMMU_VDEVICE_ALLOC, a nested HWPT
	 * on the vIOMMU, replacing the device's domain with it.
	 */
	bool association;
};

FIXTURE_VARIANT_ADD(viommu_fail_nth, viommu_alloc_kvm_flag)
{
	.viommu_kvm = true,
};

FIXTURE_VARIANT_ADD(viommu_fail_nth, dev_set_vm_association)
{
	.association = true,
};

FIXTURE_SETUP(viommu_fail_nth)
{
	const char *why;

	self->fd = self->kvm_fd = self->vm_fd = self->nth_fd = -1;
	self->log.sock = -1;
	viommu_kvm_prereq_or_skip(&self->kvm_fd, NULL, &self->log);
	why = fail_nth_setup();
	if (why) {
		uevent_log_close(&self->log);
		close_fd(&self->kvm_fd);
		SKIP(return, "%s", why);
	}
	self->nth_fd = fail_nth_open();
	ASSERT_LE(0, self->nth_fd) TH_LOG("fail-nth: %s", strerror(errno));
}

FIXTURE_TEARDOWN(viommu_fail_nth)
{
	if (self->nth_fd >= 0)
		fail_nth_arm(self->nth_fd, 0);
	close_fd(&self->nth_fd);
	close_fd(&self->fd);
	close_fd(&self->vm_fd);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/* What is built before injection starts: a VM, an iommufd with a device. */
static void __setup_round(struct __test_metadata *_metadata,
			  FIXTURE_DATA(viommu_fail_nth) *self)
{
	test_vm_create_watched(self->kvm_fd, &self->log, 0, &self->w,
			       &self->vm_fd);
	self->fd = iommufd_open();
	ASSERT_LE(0, self->fd);
	test_ioas_alloc(self->fd, &self->ioas_id);
	ASSERT_EQ(0, _test_cmd_mock_domain(self->fd, self->ioas_id,
					   &self->stdev_id, NULL,
					   &self->idev_id));
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(self->fd, self->idev_id,
					  self->ioas_id,
					  IOMMU_HWPT_ALLOC_NEST_PARENT,
					  &self->parent_id));
}

/*
 * The sequence under injection; returns 0, or the errno of the first call
 * that failed (which stops it). @step says how far it got.
 */
static int run_sequence(FIXTURE_DATA(viommu_fail_nth) *self,
			const FIXTURE_VARIANT(viommu_fail_nth) *variant,
			int *step)
{
	__u32 viommu_id, nested_id;

	*step = 0;
	if (variant->viommu_kvm) {
		if (_test_cmd_viommu_alloc_vm(self->fd, self->idev_id,
					      self->parent_id,
					      VIOMMU_ALLOC_KVM_VM_FD,
					      self->vm_fd, NULL))
			return errno;
		return 0;
	}
	if (_test_cmd_dev_set_vm(self->fd, self->idev_id, self->vm_fd))
		return errno;
	(*step)++;
	if (_test_cmd_viommu_alloc_vm(self->fd, self->idev_id, self->parent_id,
				      0, -1, &viommu_id))
		return errno;
	(*step)++;
	if (_test_cmd_vdevice_alloc(self->fd, viommu_id, self->idev_id, 0x1,
				    NULL))
		return errno;
	(*step)++;
	if (_test_cmd_hwpt_alloc_nested(self->fd, self->idev_id, viommu_id, 0,
					&nested_id))
		return errno;
	(*step)++;
	if (_test_cmd_mock_domain_replace(self->fd, self->stdev_id, nested_id))
		return errno;
	(*step)++;
	return 0;
}

/*
 * Rule: every fault-injection point on the paths that take a VM reference
 * (IOMMU_VIOMMU_ALLOC with the flag; the association path DEV_SET_VM, the
 * vIOMMU taking the idev's VM, vDEVICE, nested HWPT, replace) fails cleanly
 * with ENOMEM (or ENOENT/EINVAL: a failed lookup) and leaks no reference: after each failure the same
 * sequence works without injection, and the VM is destroyed exactly once
 * when its fd and the iommufd close. Fails on a leaked or extra reference
 * (VM never destroyed / destroyed early), a wrong errno, or a kernel
 * report on an error path.
 */
TEST_F_TIMEOUT(viommu_fail_nth, sweep, 120)
{
	unsigned int n, points = 0;
	int err, step;
	long long t0 = now_ms();
	char what[96];

	for (n = 1; n < FAIL_NTH_MAX; n++) {
		bool injected;

		__setup_round(_metadata, self);
		ASSERT_EQ(0, fail_nth_arm(self->nth_fd, n));
		err = run_sequence(self, variant, &step);
		injected = fail_nth_disarm(self->nth_fd);
		strfmt(what, sizeof(what), "fail-nth %u (step %d)", n, step);
		if (!injected) {
			/* The sequence has fewer than n points: done. */
			ASSERT_EQ(0, err)
				TH_LOG("%s: %s without an injected fault", what,
				       strerror(err));
		} else {
			points++;
			/*
			 * A slab allocation (ENOMEM), or the mock's own point
			 * in iommufd_get_object() (fail_iommufd): ENOENT, or
			 * EINVAL where the caller maps a failed lookup to it
			 * (IOMMU_HWPT_ALLOC's pt_id).
			 */
			if (err && err != ENOENT && err != EINVAL)
				ASSERT_EQ(ENOMEM, err)
					TH_LOG("%s: %s", what, strerror(err));
			/*
			 * Whatever failed, the iommufd still works: the
			 * same sequence on a fresh device.
			 */
			ASSERT_EQ(0, _test_cmd_mock_domain(self->fd,
							   self->ioas_id,
							   &self->stdev_id,
							   NULL, &self->idev_id));
			ASSERT_EQ(0, run_sequence(self, variant, &step))
				TH_LOG("%s: the sequence fails after the injection (step %d): %s",
				       what, step, strerror(errno));
		}
		/* No reference left behind: the VM dies with its last fds. */
		close_fd(&self->fd);
		close_fd(&self->vm_fd);
		vm_assert_destroyed(&self->log, &self->w, what);
		if (!injected)
			break;
	}
	ASSERT_GT(FAIL_NTH_MAX, n);
	ksft_print_msg("%s: %u fail-nth points covered, %lld ms\n",
		       _metadata->name, points, now_ms() - t0);
}

TEST_HARNESS_MAIN
