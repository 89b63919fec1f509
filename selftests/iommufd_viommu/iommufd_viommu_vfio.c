// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO-to-idev hand-over on a real device (docs/kernel-behaviour.md:
 * "iommufd idev of a physical VFIO device ... VM file, BIND_IOMMUFD ..
 * unbind"): a vfio-pci device (QEMU's edu) on the cdev path is associated with
 * a VM through the KVM VFIO device (KVM_DEV_VFIO_FILE_ADD), bound to an
 * iommufd, and the mock's IOMMU_TEST_OP_VM_CHECK on its devid says which VM the
 * iommufd device holds. QEMU's VT-d cannot nest, so no real vIOMMU is made
 * here.
 *
 * Two VMs, A and B, each with a KVM VFIO device; every fixture checks in
 * teardown that each VM was destroyed exactly once.
 */
#include "iommufd_viommu_utils.h"

FIXTURE(viommu_vfio)
{
	int fd;			/* iommufd */
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch wa, wb;
	int vm_a, vm_b;
	int kvm_vfio_a, kvm_vfio_b;
	int cdev_fd;
	__u32 devid;
	struct vfio_dev_info dev;
};

/*
 * The device is associated with VM A before the bind, or with no VM. (Each
 * bind and unbind of the vfio-pci device costs about a second under TCG -
 * the device is reset - so the negative path has one test of its own, not
 * a variant of every test.)
 */
FIXTURE_VARIANT(viommu_vfio)
{
	bool associate;
};

FIXTURE_VARIANT_ADD(viommu_vfio, vm_a)
{
	.associate = true,
};

FIXTURE_SETUP(viommu_vfio)
{
	self->fd = self->kvm_fd = self->vm_a = self->vm_b = -1;
	self->kvm_vfio_a = self->kvm_vfio_b = self->cdev_fd = -1;
	self->log.sock = -1;
	if (vfio_find_pci(&self->dev))
		SKIP(return, "%s", self->dev.why);
	if (!self->dev.cdev[0])
		SKIP(return, "%s has no VFIO device cdev (CONFIG_VFIO_DEVICE_CDEV)",
		     self->dev.name);
	viommu_kvm_prereq_or_skip(&self->kvm_fd, &self->fd, &self->log);

	test_vm_create_watched(self->kvm_fd, &self->log, 0, &self->wa,
			       &self->vm_a);
	test_vm_create_watched(self->kvm_fd, &self->log, 1, &self->wb,
			       &self->vm_b);
	/* No scratch VM to probe for the KVM VFIO device: VMs cost ~0.1 s. */
	if (_test_kvm_create_device(self->vm_a, KVM_DEV_TYPE_VFIO, 0,
				    &self->kvm_vfio_a)) {
		ASSERT_EQ(ENODEV, errno)
			TH_LOG("KVM_CREATE_DEVICE(VFIO): %s", strerror(errno));
		SKIP(goto skip, "no KVM VFIO device (CONFIG_KVM_VFIO)");
	}
	test_kvm_create_vfio_device(self->vm_b, &self->kvm_vfio_b);
	self->cdev_fd = open(self->dev.cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->cdev_fd)
		TH_LOG("open %s: %s", self->dev.cdev, strerror(errno));
	if (variant->associate)
		test_kvm_vfio_file_add(self->kvm_vfio_a, self->cdev_fd);
	return;
skip:
	close_fd(&self->fd);
	close_fd(&self->vm_a);
	close_fd(&self->vm_b);
	close_fd(&self->kvm_fd);
	uevent_log_close(&self->log);
}

FIXTURE_TEARDOWN(viommu_vfio)
{
	close_fd(&self->cdev_fd);
	close_fd(&self->fd);
	close_fd(&self->kvm_vfio_a);
	close_fd(&self->kvm_vfio_b);
	close_fd(&self->vm_a);
	close_fd(&self->vm_b);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

#define bind_device()                                                        \
	test_vfio_device_bind_iommufd(self->cdev_fd, self->fd, &self->devid)

/*
 * Rule: BIND_IOMMUFD hands the device's VM (the VM its cdev file was
 * associated with by FILE_ADD) to its iommufd device: VM_CHECK(devid, A)
 * is SAME, against B OTHER. Fails if VFIO does not hand the VM over, or
 * hands another.
 */
TEST_F(viommu_vfio, bind_hands_vm_to_idev)
{
	bind_device();
	test_cmd_vm_check(self->devid, self->vm_a, TEST_VM_SAME);
	test_cmd_vm_check(self->devid, self->vm_b, TEST_VM_OTHER);
}

/*
 * Rule: an association change after the bind (FILE_DEL from A, FILE_ADD to
 * B) does not change the VM the bound device's idev holds: still A. Fails
 * if the idev follows the KVM association after bind.
 */
TEST_F(viommu_vfio, association_changed_after_bind)
{
	bind_device();
	test_kvm_vfio_file_del(self->kvm_vfio_a, self->cdev_fd);
	test_kvm_vfio_file_add(self->kvm_vfio_b, self->cdev_fd);
	test_cmd_vm_check(self->devid, self->vm_a, TEST_VM_SAME);
	test_cmd_vm_check(self->devid, self->vm_b, TEST_VM_OTHER);
}

/*
 * Rule: the bound device holds its VM: with the VM fd and the KVM VFIO
 * device fd closed, VM A lives on (VM_CHECK: the idev holds a VM); unbind
 * (cdev close) drops it and A is destroyed exactly once. Fails on a
 * missing reference (A dies under the bound device) or a leaked one.
 */
TEST_F(viommu_vfio, unbind_drops_vm)
{
	bind_device();
	/* No VM is created after this: no name clash with A living on. */
	close_fd(&self->kvm_vfio_a);
	close_fd(&self->vm_a);
	vm_assert_alive(&self->log, &self->wa, "A's fds closed, device bound");
	test_cmd_vm_check(self->devid, -1, TEST_VM_OTHER);
	test_cmd_vm_check(self->devid, self->vm_b, TEST_VM_OTHER);
	close_fd(&self->cdev_fd);
	vm_assert_destroyed(&self->log, &self->wa, "device unbound (cdev closed)");
	/* The idev is gone with the bind. */
	test_err_vm_check(ENOENT, self->devid, -1);
}

/*
 * Rule: the iommufd device of a real VFIO device is not the mock's:
 * DEV_SET_VM refuses it (EINVAL), to set or to clear, and its VM stays what
 * VFIO handed over. Fails if a test op can change a VFIO device's VM behind
 * VFIO's back.
 */
TEST_F(viommu_vfio, dev_set_vm_refused)
{
	bind_device();
	test_err_dev_set_vm(EINVAL, self->devid, self->vm_b);
	test_err_dev_set_vm(EINVAL, self->devid, -1);
	test_cmd_vm_check(self->devid, self->vm_a, TEST_VM_SAME);
}

/*
 * Rule: the association is read at bind time: after an unbind (FILE_DEL,
 * cdev close) and a new open, FILE_ADD to B and a bind, the idev holds B.
 * Fails if a stale VM is handed over.
 */
TEST_F(viommu_vfio, rebind_takes_new_association)
{
	bind_device();
	/* FILE_ADD holds the cdev file: without FILE_DEL, close is no unbind. */
	test_kvm_vfio_file_del(self->kvm_vfio_a, self->cdev_fd);
	close_fd(&self->cdev_fd);
	self->cdev_fd = open(self->dev.cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->cdev_fd);
	test_kvm_vfio_file_add(self->kvm_vfio_b, self->cdev_fd);
	bind_device();
	test_cmd_vm_check(self->devid, self->vm_b, TEST_VM_SAME);
	test_cmd_vm_check(self->devid, self->vm_a, TEST_VM_OTHER);
}

/* ------------------------------------------- the negative path: no VM */

FIXTURE(viommu_vfio_no_vm)
{
	FIXTURE_DATA(viommu_vfio) d;
};

FIXTURE_SETUP(viommu_vfio_no_vm)
{
	static const FIXTURE_VARIANT(viommu_vfio) no_vm = { .associate = false };

	viommu_vfio_setup(_metadata, &self->d, &no_vm);
}

FIXTURE_TEARDOWN(viommu_vfio_no_vm)
{
	viommu_vfio_teardown(_metadata, &self->d, NULL);
}

/*
 * Rule: a device bound with no VM association hands no VM over (NONE);
 * associating it after the bind changes nothing (still NONE), and its VM
 * dies as soon as its own fds close (the device pins nothing). Fails if
 * VFIO invents a VM, or picks up a later association.
 */
TEST_F(viommu_vfio_no_vm, bind_without_association)
{
	FIXTURE_DATA(viommu_vfio) *d = &self->d;

	test_vfio_device_bind_iommufd(d->cdev_fd, d->fd, &d->devid);
	test_cmd_vm_check_fd(d->fd, d->devid, d->vm_a, TEST_VM_NONE);
	test_kvm_vfio_file_add(d->kvm_vfio_a, d->cdev_fd);
	test_cmd_vm_check_fd(d->fd, d->devid, d->vm_a, TEST_VM_NONE);
	/* No VM is created after this. */
	close_fd(&d->kvm_vfio_a);
	close_fd(&d->vm_a);
	vm_assert_destroyed(&d->log, &d->wa, "A's fds closed, device bound without VM");
	test_cmd_vm_check_fd(d->fd, d->devid, -1, TEST_VM_NONE);
}

TEST_HARNESS_MAIN
