// SPDX-License-Identifier: GPL-2.0-only
/*
 * The VFIO-to-idev hand-over on a real device (docs/kernel-behaviour.md:
 * "iommufd idev of a physical VFIO device ... VM file, BIND_IOMMUFD ..
 * unbind"): a vfio-pci device (QEMU's edu) on the cdev path is associated with
 * a VM through the KVM VFIO device (KVM_DEV_VFIO_FILE_ADD), bound to an
 * iommufd, and the mock's IOMMU_TEST_OP_VM_CHECK on its devid says which VM the
 * iommufd device holds. The device is $VFIO_KVM_PCI (QEMU's edu in the test
 * guest). A real vIOMMU with a mismatched kvm_vm_fd is tried where the
 * device's IOMMU can nest; QEMU's VT-d cannot (see
 * viommu_vfio.viommu_other_vm_refused).
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
	vfio_find_pci_or_skip(&self->dev);
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
	test_cmd_vm_check(self->devid, self->vm_a, MOCK_VM_SAME);
	test_cmd_vm_check(self->devid, self->vm_b, MOCK_VM_OTHER);
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
	test_cmd_vm_check(self->devid, self->vm_a, MOCK_VM_SAME);
	test_cmd_vm_check(self->devid, self->vm_b, MOCK_VM_OTHER);
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
	test_cmd_vm_check(self->devid, -1, MOCK_VM_OTHER);
	test_cmd_vm_check(self->devid, self->vm_b, MOCK_VM_OTHER);
	close_fd(&self->cdev_fd);
	vm_assert_destroyed(&self->log, &self->wa, "device unbound (cdev closed)");
	/* The idev is gone with the bind. */
	test_err_vm_check(ENOENT, self->devid, -1);
}

/*
 * Rule: on a real device too, IOMMU_VIOMMU_ALLOC with
 * IOMMU_VIOMMU_ALLOC_KVM_VM_FD naming another VM (B) than the one its idev
 * holds (A) is refused with EINVAL, and nothing is made. The kernel
 * reaches that check only with a nest-parent HWPT and a vIOMMU type of the
 * device's IOMMU driver ($VFIO_KVM_VIOMMU_TYPE, default
 * IOMMU_VIOMMU_TYPE_ARM_SMMUV3): where the IOMMU cannot nest (QEMU's VT-d:
 * IOMMU_HWPT_ALLOC_NEST_PARENT is EOPNOTSUPP, before any vIOMMU exists) or
 * the type is not its driver's (IOMMU_VIOMMU_ALLOC answers EOPNOTSUPP
 * before it reads kvm_vm_fd), the test SKIPs saying so; the mock's vIOMMU
 * tests (iommufd_viommu_kvm) cover the check itself. Fails if the mismatch
 * is accepted or answered with another errno.
 */
TEST_F(viommu_vfio, viommu_other_vm_refused)
{
	const char *env = getenv("VFIO_KVM_VIOMMU_TYPE");
	__u32 type = env && *env ? strtoul(env, NULL, 0) :
				   IOMMU_VIOMMU_TYPE_ARM_SMMUV3;
	struct iommu_viommu_alloc_kvm cmd = {
		.flags = IOMMU_VIOMMU_ALLOC_KVM_VM_FD,
		.type = type,
		.kvm_vm_fd = self->vm_b,
	};
	__u32 ioas, parent, viommu = 0;

	bind_device();
	test_ioas_alloc(self->fd, &ioas);
	if (_test_cmd_hwpt_alloc(self->fd, self->devid, ioas,
				 IOMMU_HWPT_ALLOC_NEST_PARENT, &parent)) {
		ASSERT_EQ(EOPNOTSUPP, errno)
			TH_LOG("IOMMU_HWPT_ALLOC(NEST_PARENT): %s", strerror(errno));
		SKIP(return, "%s's IOMMU cannot nest (IOMMU_HWPT_ALLOC_NEST_PARENT: EOPNOTSUPP; QEMU's VT-d): IOMMU_VIOMMU_ALLOC stops before the kvm_vm_fd check",
		     self->dev.name);
	}
	cmd.dev_id = self->devid;
	cmd.hwpt_id = parent;
	if (!_test_cmd_viommu_alloc_sized(self->fd, &cmd, sizeof(cmd), 0, &viommu))
		ASSERT_TRUE(false)
			TH_LOG("vIOMMU %u of type %u made with the fd of another VM than the device's",
			       viommu, type);
	if (errno == EOPNOTSUPP)
		SKIP(return, "vIOMMU type %u is not the one of %s's IOMMU driver (EOPNOTSUPP): set VFIO_KVM_VIOMMU_TYPE",
		     type, self->dev.name);
	ASSERT_EQ(EINVAL, errno) TH_LOG("IOMMU_VIOMMU_ALLOC(type %u, kvm_vm_fd of B): %s",
				      type, strerror(errno));
	test_cmd_vm_check(self->devid, self->vm_a, MOCK_VM_SAME);
	/* Nothing was made: the parent has no vIOMMU pinning it. */
	test_destroy(self->fd, parent);
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
	test_cmd_vm_check(self->devid, self->vm_b, MOCK_VM_SAME);
	test_cmd_vm_check(self->devid, self->vm_a, MOCK_VM_OTHER);
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
	test_cmd_vm_check_fd(d->fd, d->devid, d->vm_a, MOCK_VM_NONE);
	test_kvm_vfio_file_add(d->kvm_vfio_a, d->cdev_fd);
	test_cmd_vm_check_fd(d->fd, d->devid, d->vm_a, MOCK_VM_NONE);
	/* No VM is created after this. */
	close_fd(&d->kvm_vfio_a);
	close_fd(&d->vm_a);
	vm_assert_destroyed(&d->log, &d->wa, "A's fds closed, device bound without VM");
	test_cmd_vm_check_fd(d->fd, d->devid, -1, MOCK_VM_NONE);
}

TEST_HARNESS_MAIN
