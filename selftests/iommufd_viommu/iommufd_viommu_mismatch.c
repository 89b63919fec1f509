// SPDX-License-Identifier: GPL-2.0-only
/*
 * A vIOMMU, the devices associated with it and their VFIO devices never mix VMs
 * (docs/kernel-behaviour.md "Agree" rule; DESIGN.md §2: every point where two
 * of them get associated must check): vIOMMU allocation, vDEVICE allocation,
 * nested HWPT allocation on a vIOMMU, attaching/replacing a device onto such a
 * HWPT, and changing a device's VM while it is associated. A device with a VM
 * may only meet a vIOMMU of the same VM; a device without a VM agrees with any
 * vIOMMU. Every refusal is EXDEV.
 *
 * Two VMs (A, B) and two mock devices (dev1, dev2) on one mock IOMMU; the
 * mock's DEV_SET_VM gives a device a VM the way VFIO does at bind, VM_CHECK
 * reads back what a device or a vIOMMU holds.
 */
#include "iommufd_viommu_utils.h"

/* A PASID the mock accepts (MOCK_PASID_WIDTH bits), as upstream uses. */
#define TEST_PASID	100

FIXTURE(viommu_mix)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch wa, wb;
	int vm_a, vm_b;
	__u32 ioas_id, parent_id;
	__u32 stdev1, dev1;
	__u32 stdev2, dev2;
};

FIXTURE_SETUP(viommu_mix)
{
	self->fd = self->kvm_fd = self->vm_a = self->vm_b = -1;
	self->log.sock = -1;
	viommu_kvm_prereq_or_skip(&self->kvm_fd, &self->fd, &self->log);

	test_vm_create_watched(self->kvm_fd, &self->log, 0, &self->wa,
			       &self->vm_a);
	test_vm_create_watched(self->kvm_fd, &self->log, 1, &self->wb,
			       &self->vm_b);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain(self->ioas_id, &self->stdev1, NULL, &self->dev1);
	test_cmd_mock_domain(self->ioas_id, &self->stdev2, NULL, &self->dev2);
	test_cmd_hwpt_alloc(self->dev1, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
}

/* Reference check: every VM of the test destroyed exactly once. */
FIXTURE_TEARDOWN(viommu_mix)
{
	close_fd(&self->fd);
	close_fd(&self->vm_a);
	close_fd(&self->vm_b);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/* vIOMMU of VM A on dev1 (which gets VM A first: the usual VMM order). */
#define viommu_of_a(viommu_id)                                               \
	({                                                                   \
		test_cmd_dev_set_vm(self->dev1, self->vm_a);                 \
		test_cmd_viommu_alloc_kvm(self->dev1, self->parent_id,       \
					  self->vm_a, viommu_id);            \
	})

/*
 * Rule: a vIOMMU naming VM A on a device associated with VM B is EXDEV;
 * naming VM B works. Fails if the named VM overrides the device's.
 */
TEST_F(viommu_mix, viommu_named_vm_vs_device_vm)
{
	__u32 viommu_id;

	test_cmd_dev_set_vm(self->dev1, self->vm_b);
	test_err_viommu_alloc_kvm(EXDEV, self->dev1, self->parent_id, self->vm_a);
	test_cmd_viommu_alloc_kvm(self->dev1, self->parent_id, self->vm_b,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_b, TEST_VM_SAME);
}

/*
 * Rule: IOMMU_VDEVICE_ALLOC of a device of VM B on a vIOMMU of VM A is
 * EXDEV; the same device given VM A joins. Fails if vDEVICE allocation does
 * not check (a VM B device would be programmed into VM A's vIOMMU).
 */
TEST_F(viommu_mix, vdevice_device_of_other_vm)
{
	__u32 viommu_id, vdev_id;

	viommu_of_a(&viommu_id);
	test_cmd_dev_set_vm(self->dev2, self->vm_b);
	test_err_vdevice_alloc(EXDEV, viommu_id, self->dev2, 0x2);
	/* Nothing was made: the vIOMMU has no dependant. */
	test_cmd_dev_set_vm(self->dev2, self->vm_a);
	test_cmd_vdevice_alloc(viommu_id, self->dev2, 0x2, &vdev_id);
	test_ioctl_destroy(vdev_id);
	test_ioctl_destroy(viommu_id);
}

/*
 * Rule: a device with no VM agrees with any vIOMMU: it joins the vIOMMU of
 * VM A and a vIOMMU without a VM. Fails if "no VM" is treated as a VM.
 */
TEST_F(viommu_mix, vdevice_device_without_vm)
{
	__u32 viommu_a, viommu_none, vdev_id;

	viommu_of_a(&viommu_a);
	test_cmd_vm_check(self->dev2, self->vm_a, TEST_VM_NONE);
	test_cmd_vdevice_alloc(viommu_a, self->dev2, 0x2, &vdev_id);
	test_ioctl_destroy(vdev_id);
	test_cmd_viommu_alloc_vm(self->dev2, self->parent_id, 0, -1,
				 &viommu_none);
	test_cmd_vm_check(viommu_none, -1, TEST_VM_NONE);
	test_cmd_vdevice_alloc(viommu_none, self->dev2, 0x3, &vdev_id);
}

/*
 * Rule: a device with a VM does not join a vIOMMU without one (the device's
 * VM != the vIOMMU's "none"): EXDEV. Fails if a VM-less vIOMMU takes any
 * device.
 */
TEST_F(viommu_mix, vdevice_device_vm_on_viommu_without_vm)
{
	__u32 viommu_id;

	test_cmd_viommu_alloc_vm(self->dev1, self->parent_id, 0, -1, &viommu_id);
	test_cmd_vm_check(viommu_id, -1, TEST_VM_NONE);
	test_cmd_dev_set_vm(self->dev2, self->vm_a);
	test_err_vdevice_alloc(EXDEV, viommu_id, self->dev2, 0x2);
}

/*
 * Rule: the device's association changed after the vIOMMU exists (no
 * vDEVICE): allowed, the vIOMMU keeps its own VM, and a later
 * IOMMU_VDEVICE_ALLOC of that device on it is EXDEV; back on VM A it joins.
 * Fails if the vIOMMU follows the device, or the change goes unchecked
 * later.
 */
TEST_F(viommu_mix, association_changed_after_viommu)
{
	__u32 viommu_id;

	test_cmd_dev_set_vm(self->dev1, self->vm_a);
	test_cmd_viommu_alloc_vm(self->dev1, self->parent_id, 0, -1, &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_a, TEST_VM_SAME);
	test_cmd_dev_set_vm(self->dev1, self->vm_b);
	test_cmd_vm_check(self->dev1, self->vm_b, TEST_VM_SAME);
	test_cmd_vm_check(viommu_id, self->vm_a, TEST_VM_SAME);
	test_err_vdevice_alloc(EXDEV, viommu_id, self->dev1, 0x1);
	test_cmd_dev_set_vm(self->dev1, self->vm_a);
	test_cmd_vdevice_alloc(viommu_id, self->dev1, 0x1, NULL);
}

/*
 * Rule: DEV_SET_VM moving a device with a vDEVICE on a vIOMMU of VM A to VM
 * B is EXDEV and changes nothing; setting A again or clearing (-1) is fine;
 * once the vDEVICE is gone, B is fine. Fails if a device can leave its
 * vIOMMU's VM while associated.
 */
TEST_F(viommu_mix, set_vm_with_vdevice)
{
	__u32 viommu_id, vdev_id;

	viommu_of_a(&viommu_id);
	test_cmd_vdevice_alloc(viommu_id, self->dev1, 0x1, &vdev_id);
	test_err_dev_set_vm(EXDEV, self->dev1, self->vm_b);
	test_cmd_vm_check(self->dev1, self->vm_a, TEST_VM_SAME);
	test_cmd_dev_set_vm(self->dev1, self->vm_a);
	test_cmd_dev_set_vm(self->dev1, -1);
	test_cmd_vm_check(self->dev1, -1, TEST_VM_NONE);
	test_err_dev_set_vm(EXDEV, self->dev1, self->vm_b);
	test_cmd_dev_set_vm(self->dev1, self->vm_a);
	test_ioctl_destroy(vdev_id);
	test_cmd_dev_set_vm(self->dev1, self->vm_b);
	test_cmd_vm_check(self->dev1, self->vm_b, TEST_VM_SAME);
}

/*
 * Rule: IOMMU_HWPT_ALLOC of a nested HWPT on a vIOMMU of VM A for a device
 * of VM B is EXDEV; for a device of VM A or of no VM it works. Fails if
 * nested allocation does not check.
 */
TEST_F(viommu_mix, nested_hwpt_alloc_other_vm)
{
	__u32 viommu_id, nested_id;

	viommu_of_a(&viommu_id);
	test_cmd_dev_set_vm(self->dev2, self->vm_b);
	test_err_hwpt_alloc_nested(EXDEV, self->dev2, viommu_id, 0);
	test_cmd_dev_set_vm(self->dev2, -1);
	test_cmd_hwpt_alloc_nested(self->dev2, viommu_id, 0, &nested_id);
	test_ioctl_destroy(nested_id);
	test_cmd_dev_set_vm(self->dev2, self->vm_a);
	test_cmd_hwpt_alloc_nested(self->dev2, viommu_id, 0, &nested_id);
	test_ioctl_destroy(nested_id);
	/* No nested HWPT is left: the vIOMMU goes. */
	test_ioctl_destroy(viommu_id);
}

/*
 * Rule: replacing a device's domain with a nested HWPT of a vIOMMU of VM A
 * (IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, the replace path) is EXDEV for a
 * device of VM B, and works for a device of no VM; a device attached there
 * (even with no vDEVICE left) cannot then be moved to VM B (EXDEV), only to
 * A; detached, it can. Fails if replace or the later association change
 * does not check. (The mock only attaches a device with a vDEVICE on that
 * vIOMMU, else ENOENT: the VM check must come first to answer EXDEV.)
 */
TEST_F(viommu_mix, replace_onto_nested_other_vm)
{
	__u32 viommu_id, nested_id, vdev_id;

	viommu_of_a(&viommu_id);
	test_cmd_hwpt_alloc_nested(self->dev1, viommu_id, 0, &nested_id);
	test_cmd_dev_set_vm(self->dev2, self->vm_b);
	test_err_mock_domain_replace(EXDEV, self->stdev2, nested_id);
	/* Nothing attached to the nested HWPT: it can go. */
	test_ioctl_destroy(nested_id);
	test_cmd_hwpt_alloc_nested(self->dev1, viommu_id, 0, &nested_id);

	test_cmd_dev_set_vm(self->dev2, -1);
	test_cmd_vdevice_alloc(viommu_id, self->dev2, 0x2, &vdev_id);
	test_cmd_mock_domain_replace(self->stdev2, nested_id);
	test_err_ioctl_destroy(EBUSY, nested_id);
	/* Only the attachment is left to tie dev2 to the vIOMMU. */
	test_ioctl_destroy(vdev_id);
	test_err_dev_set_vm(EXDEV, self->dev2, self->vm_b);
	test_cmd_vm_check(self->dev2, -1, TEST_VM_NONE);
	test_cmd_dev_set_vm(self->dev2, self->vm_a);
	/* Back on the IOAS: B is fine. */
	test_cmd_mock_domain_replace(self->stdev2, self->ioas_id);
	test_cmd_dev_set_vm(self->dev2, self->vm_b);
	test_ioctl_destroy(nested_id);
}

/*
 * Rule: attaching a PASID of a device of VM B to a nested HWPT of a vIOMMU
 * of VM A (the attach path, IOMMU_TEST_OP_PASID_ATTACH) is EXDEV; of VM A it
 * works, and then the device cannot move to VM B until detached. Fails if
 * the attach path (not only replace) or the PASID attachments are not
 * checked.
 */
TEST_F(viommu_mix, pasid_attach_nested_other_vm)
{
	__u32 viommu_id, nested_id, s2_id, pstdev, pdev;

	test_cmd_mock_domain_flags(self->ioas_id, MOCK_FLAGS_DEVICE_PASID,
				   &pstdev, &pdev);
	/* The RID on a PASID-compatible domain, as upstream's pasid tests. */
	test_cmd_hwpt_alloc(pdev, self->ioas_id, IOMMU_HWPT_ALLOC_PASID, &s2_id);
	test_cmd_mock_domain_replace(pstdev, s2_id);
	viommu_of_a(&viommu_id);
	test_cmd_hwpt_alloc_nested(pdev, viommu_id, IOMMU_HWPT_ALLOC_PASID,
				   &nested_id);
	test_cmd_dev_set_vm(pdev, self->vm_b);
	test_err_pasid_attach(EXDEV, pstdev, TEST_PASID, nested_id);
	test_cmd_dev_set_vm(pdev, self->vm_a);
	test_cmd_pasid_attach(pstdev, TEST_PASID, nested_id);
	test_err_dev_set_vm(EXDEV, pdev, self->vm_b);
	test_cmd_vm_check(pdev, self->vm_a, TEST_VM_SAME);
	/*
	 * Detached, B is fine. (Also: the mock's device destroy only detaches
	 * the RID; a PASID left attached keeps the idev, and with it the VM,
	 * busy at iommufd close - upstream's tests detach too.)
	 */
	test_cmd_pasid_detach(pstdev, TEST_PASID);
	test_cmd_dev_set_vm(pdev, self->vm_b);
}

/*
 * Rule: two iommufds, each with a device of its own VM (A on the first, B
 * on the second): each vIOMMU must name its device's VM, crossing them is
 * EXDEV in both directions; one VM may serve both iommufds. Fails if the
 * check depends on which iommufd the VM was first used with.
 */
TEST_F(viommu_mix, two_iommufds_two_vms)
{
	__u32 ioas2, stdev2b, dev2b, parent2, viommu1, viommu2;
	int fd2;

	fd2 = iommufd_open();
	ASSERT_LE(0, fd2);
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd2, &ioas2));
	ASSERT_EQ(0, _test_cmd_mock_domain(fd2, ioas2, &stdev2b, NULL, &dev2b));
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(fd2, dev2b, ioas2,
					  IOMMU_HWPT_ALLOC_NEST_PARENT, &parent2));
	test_cmd_dev_set_vm(self->dev1, self->vm_a);
	ASSERT_EQ(0, _test_cmd_dev_set_vm(fd2, dev2b, self->vm_b));

	test_err_viommu_alloc_kvm(EXDEV, self->dev1, self->parent_id, self->vm_b);
	EXPECT_ERRNO(EXDEV, _test_cmd_viommu_alloc_vm(fd2, dev2b, parent2,
						      VIOMMU_ALLOC_KVM_VM_FD,
						      self->vm_a, NULL));
	test_cmd_viommu_alloc_kvm(self->dev1, self->parent_id, self->vm_a,
				  &viommu1);
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(fd2, dev2b, parent2,
					       VIOMMU_ALLOC_KVM_VM_FD,
					       self->vm_b, &viommu2));
	test_cmd_vm_check(viommu1, self->vm_a, TEST_VM_SAME);
	test_cmd_vm_check_fd(fd2, viommu2, self->vm_b, TEST_VM_SAME);
	test_cmd_vm_check_fd(fd2, viommu2, self->vm_a, TEST_VM_OTHER);

	/* VM A on the second iommufd too: a VM may serve two iommufds. */
	ASSERT_EQ(0, _test_cmd_dev_set_vm(fd2, dev2b, -1));
	ASSERT_EQ(0, _test_ioctl_destroy(fd2, viommu2));
	ASSERT_EQ(0, _test_cmd_dev_set_vm(fd2, dev2b, self->vm_a));
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(fd2, dev2b, parent2, 0, -1,
					       &viommu2));
	test_cmd_vm_check_fd(fd2, viommu2, self->vm_a, TEST_VM_SAME);
	ASSERT_EQ(0, close(fd2));
}

/*
 * Rule: VM_CHECK and DEV_SET_VM errors: unknown id ENOENT; VM_CHECK of an
 * object that is neither an idev nor a vIOMMU (IOAS, HWPT, vDEVICE, the mock
 * device object) EINVAL. Fails if any object answers as if it held a VM.
 */
TEST_F(viommu_mix, vm_ops_bad_ids)
{
	__u32 viommu_id, vdev_id;

	viommu_of_a(&viommu_id);
	test_cmd_vdevice_alloc(viommu_id, self->dev1, 0x1, &vdev_id);
	test_err_vm_check(ENOENT, 0, self->vm_a);
	test_err_vm_check(ENOENT, 0xfffff, -1);
	test_err_dev_set_vm(ENOENT, 0, self->vm_a);
	test_err_dev_set_vm(ENOENT, 0xfffff, -1);
	test_err_vm_check(EINVAL, self->ioas_id, self->vm_a);
	test_err_vm_check(EINVAL, self->parent_id, self->vm_a);
	test_err_vm_check(EINVAL, vdev_id, self->vm_a);
	test_err_vm_check(EINVAL, self->stdev1, self->vm_a);
}

/*
 * Rule: DEV_SET_VM takes a device id; any other object (IOAS, vIOMMU) is
 * answered like every typed lookup of iommufd, as an unknown device:
 * ENOENT (a real VFIO device's idev, which does exist, is EINVAL: see the
 * vfio program). Fails if another object type is accepted, and the vIOMMU
 * must keep its VM.
 */
TEST_F(viommu_mix, dev_set_vm_not_an_idev)
{
	__u32 viommu_id;

	viommu_of_a(&viommu_id);
	test_err_dev_set_vm(ENOENT, self->ioas_id, self->vm_a);
	test_err_dev_set_vm(ENOENT, viommu_id, self->vm_a);
	test_cmd_vm_check(viommu_id, self->vm_a, TEST_VM_SAME);
}

TEST_HARNESS_MAIN
