// SPDX-License-Identifier: GPL-2.0-only
/*
 * A vIOMMU and the devices associated with it never mix VMs
 * (docs/kernel-behaviour.md "Agree" rule; DESIGN.md §2: every point where two
 * of them get associated must check), strictly: a device and a vIOMMU agree
 * iff they hold the same VM or both hold none. A VM-less device is refused
 * by a VM-bound vIOMMU and a VM-bound device by a VM-less vIOMMU. The
 * points: vDEVICE allocation, nested HWPT allocation on a vIOMMU, replacing
 * a device's domain with such a HWPT, attaching a PASID to one. Every
 * refusal is EINVAL.
 *
 * Mock devices get their VM when they are created (MOCK_FLAGS_DEVICE_KVM_VM,
 * as VFIO binds a device with its VM); the mock's VM_CHECK reads back what a
 * device or a vIOMMU holds. All devices sit behind the one mock IOMMU, so
 * the VM is the only thing that can make them disagree.
 */
#include "iommufd_viommu_utils.h"

/* A PASID the mock accepts (MOCK_PASID_WIDTH bits), as upstream uses. */
#define TEST_PASID	100

/* Which VM a device or a vIOMMU is for. */
enum mix_vm {
	MIX_NONE,
	MIX_A,
	MIX_B,
};

static const char *const mix_vm_name[] = { "none", "A", "B" };

FIXTURE(viommu_mix)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch wa, wb;
	int vm_a, vm_b;
	__u32 ioas_id, parent_id;
	/* the owner: the device the vIOMMU is allocated for */
	__u32 owner_stdev, owner_dev;
	/* the subject: the device associated with the vIOMMU by the test */
	__u32 subj_stdev, subj_dev;
	__u32 viommu_id;
};

/*
 * The vIOMMU's VM (its owner device's) and the subject device's VM; the
 * subject is always another device than the owner, so that "same VM" is
 * a property of two devices, not one. @agree is what the rule says.
 */
FIXTURE_VARIANT(viommu_mix)
{
	enum mix_vm viommu_vm;
	enum mix_vm dev_vm;
	bool agree;
};

FIXTURE_VARIANT_ADD(viommu_mix, viommu_a_device_a)
{
	.viommu_vm = MIX_A, .dev_vm = MIX_A, .agree = true,
};

FIXTURE_VARIANT_ADD(viommu_mix, viommu_a_device_b)
{
	.viommu_vm = MIX_A, .dev_vm = MIX_B, .agree = false,
};

/* v1 let this one in ("a device without a VM agrees with any vIOMMU"). */
FIXTURE_VARIANT_ADD(viommu_mix, viommu_a_device_none)
{
	.viommu_vm = MIX_A, .dev_vm = MIX_NONE, .agree = false,
};

FIXTURE_VARIANT_ADD(viommu_mix, viommu_none_device_a)
{
	.viommu_vm = MIX_NONE, .dev_vm = MIX_A, .agree = false,
};

FIXTURE_VARIANT_ADD(viommu_mix, viommu_none_device_none)
{
	.viommu_vm = MIX_NONE, .dev_vm = MIX_NONE, .agree = true,
};

/* The fd of VM @v for a mock device, or MOCK_NO_VM. */
#define mix_vm_fd(v)                                                         \
	((v) == MIX_A ? self->vm_a : (v) == MIX_B ? self->vm_b : MOCK_NO_VM)

/* The VM_CHECK answer of an object for VM @v, against VM A's fd. */
#define mix_vm_state(v)                                                      \
	((v) == MIX_A ? MOCK_VM_SAME : (v) == MIX_B ? MOCK_VM_OTHER :        \
	 MOCK_VM_NONE)

/* An object holds the VM the variant gave it. */
#define assert_holds(id, v)                                                  \
	test_cmd_vm_check(id, self->vm_a, mix_vm_state(v))

/*
 * Both fixtures' start: the prerequisites (SKIP without them), then VMs A
 * and B, watched in slots 0 and 1.
 */
#define mix_vms_setup(self)                                                  \
	({                                                                   \
		viommu_kvm_prereq_or_skip(&(self)->kvm_fd, &(self)->fd,      \
					  &(self)->log);                     \
		test_vm_create_watched((self)->kvm_fd, &(self)->log, 0,      \
				       &(self)->wa, &(self)->vm_a);          \
		test_vm_create_watched((self)->kvm_fd, &(self)->log, 1,      \
				       &(self)->wb, &(self)->vm_b);          \
	})

/* @dev_flags for both devices, e.g. MOCK_FLAGS_DEVICE_PASID. */
static void __mix_devices(struct __test_metadata *_metadata,
			  FIXTURE_DATA(viommu_mix) *self,
			  const FIXTURE_VARIANT(viommu_mix) *variant,
			  __u32 dev_flags)
{
	test_cmd_mock_dev_vm(self->ioas_id, dev_flags,
			     mix_vm_fd(variant->viommu_vm),
			     &self->owner_stdev, &self->owner_dev);
	test_cmd_mock_dev_vm(self->ioas_id, dev_flags,
			     mix_vm_fd(variant->dev_vm), &self->subj_stdev,
			     &self->subj_dev);
}

FIXTURE_SETUP(viommu_mix)
{
	self->fd = self->kvm_fd = self->vm_a = self->vm_b = -1;
	self->log.sock = -1;
	mix_vms_setup(self);
	test_ioctl_ioas_alloc(&self->ioas_id);
	__mix_devices(_metadata, self, variant, 0);
	test_cmd_hwpt_alloc(self->owner_dev, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
	/* The vIOMMU is for its owner's VM (no flag: it takes it). */
	test_cmd_viommu_alloc_vm(self->owner_dev, self->parent_id, 0, -1,
				 &self->viommu_id);
	assert_holds(self->viommu_id, variant->viommu_vm);
	assert_holds(self->subj_dev, variant->dev_vm);
}

/* Reference check: every VM of the test destroyed exactly once. */
FIXTURE_TEARDOWN(viommu_mix)
{
	close_fd(&self->fd);
	close_fd(&self->vm_a);
	close_fd(&self->vm_b);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/* @ret (0 or -1 with errno) is what the variant's agreement says. */
#define assert_agreement(ret, what)                                          \
	({                                                                   \
		int __ret = (ret);                                           \
		if (variant->agree) {                                        \
			ASSERT_EQ(0, __ret)                                  \
				TH_LOG("%s: device of VM %s, vIOMMU of VM %s: %s", \
				       what, mix_vm_name[variant->dev_vm],   \
				       mix_vm_name[variant->viommu_vm],      \
				       strerror(errno));                     \
		} else {                                                     \
			ASSERT_EQ(EINVAL, __ret ? errno : 0)                 \
				TH_LOG("%s: device of VM %s, vIOMMU of VM %s: %s, expected EINVAL", \
				       what, mix_vm_name[variant->dev_vm],   \
				       mix_vm_name[variant->viommu_vm],      \
				       __ret ? strerror(errno) : "made");    \
		}                                                            \
	})

/*
 * Rule: IOMMU_VDEVICE_ALLOC of the subject on the vIOMMU works iff they
 * agree, else EINVAL and nothing is made (the vIOMMU can go). Fails if
 * vDEVICE allocation does not check, either way.
 */
TEST_F(viommu_mix, vdevice_alloc)
{
	__u32 vdev_id = 0;

	assert_agreement(_test_cmd_vdevice_alloc(self->fd, self->viommu_id,
						 self->subj_dev, 0x2, &vdev_id),
			 "IOMMU_VDEVICE_ALLOC");
	if (variant->agree)
		test_ioctl_destroy(vdev_id);
	test_ioctl_destroy(self->viommu_id);
}

/*
 * Rule: IOMMU_HWPT_ALLOC of a nested HWPT on the vIOMMU for the subject
 * works iff they agree, else EINVAL and nothing is made. Fails if nested
 * allocation does not check, either way.
 */
TEST_F(viommu_mix, nested_hwpt_alloc)
{
	__u32 nested_id = 0;

	assert_agreement(_test_cmd_hwpt_alloc_nested(self->fd, self->subj_dev,
						     self->viommu_id, 0,
						     &nested_id),
			 "IOMMU_HWPT_ALLOC(nested)");
	if (variant->agree)
		test_ioctl_destroy(nested_id);
	test_ioctl_destroy(self->viommu_id);
}

/*
 * Rule: replacing the subject's domain with a nested HWPT of the vIOMMU
 * (made for the owner, which agrees; IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, the
 * replace path) works iff they agree, else EINVAL and the subject stays on
 * the IOAS (the nested HWPT has no user: it can go). Where they agree the
 * subject first gets a vDEVICE: the mock attaches a device to a nested
 * domain only with one, ENOENT otherwise - so a replace that skips the VM
 * check answers ENOENT, not EINVAL, where they do not. Fails if replace
 * does not check, either way.
 */
TEST_F(viommu_mix, replace_onto_nested)
{
	__u32 nested_id, vdev_id = 0;

	test_cmd_hwpt_alloc_nested(self->owner_dev, self->viommu_id, 0,
				   &nested_id);
	if (variant->agree)
		test_cmd_vdevice_alloc(self->viommu_id, self->subj_dev, 0x2,
				       &vdev_id);
	assert_agreement(_test_cmd_mock_domain_replace(self->fd,
						       self->subj_stdev,
						       nested_id),
			 "MOCK_DOMAIN_REPLACE(nested)");
	if (variant->agree) {
		test_err_ioctl_destroy(EBUSY, nested_id);
		test_cmd_mock_domain_replace(self->subj_stdev, self->ioas_id);
		test_ioctl_destroy(vdev_id);
	}
	test_ioctl_destroy(nested_id);
}

/*
 * Rule: attaching a PASID of the subject to a nested HWPT of the vIOMMU
 * (IOMMU_TEST_OP_PASID_ATTACH, the attach path, not replace) works iff
 * they agree, else EINVAL. PASID-capable devices of their own, the RID on
 * a PASID-compatible domain as upstream's PASID tests do. Fails if the
 * attach path does not check, either way.
 */
TEST_F(viommu_mix, pasid_attach_nested)
{
	__u32 s2_id, nested_id;

	/* PASID-capable owner and subject, of the variant's VMs */
	__mix_devices(_metadata, self, variant, MOCK_FLAGS_DEVICE_PASID);
	test_cmd_hwpt_alloc(self->subj_dev, self->ioas_id,
			    IOMMU_HWPT_ALLOC_PASID, &s2_id);
	test_cmd_mock_domain_replace(self->subj_stdev, s2_id);
	test_cmd_mock_domain_replace(self->owner_stdev, s2_id);
	test_cmd_hwpt_alloc_nested(self->owner_dev, self->viommu_id,
				   IOMMU_HWPT_ALLOC_PASID, &nested_id);
	assert_agreement(_test_cmd_pasid_attach(self->fd, self->subj_stdev,
						TEST_PASID, nested_id),
			 "PASID_ATTACH(nested)");
	/*
	 * The mock's device destroy only detaches the RID; a PASID left
	 * attached keeps the idev, and with it the VM, busy at iommufd close
	 * (upstream's tests detach too).
	 */
	if (variant->agree)
		test_cmd_pasid_detach(self->subj_stdev, TEST_PASID);
	test_ioctl_destroy(nested_id);
}

/* ---------------------------------------------- two iommufds, two VMs */

FIXTURE(viommu_mix_two)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch wa, wb;
	int vm_a, vm_b;
	int fd2;
};

FIXTURE_SETUP(viommu_mix_two)
{
	self->fd = self->fd2 = self->kvm_fd = self->vm_a = self->vm_b = -1;
	self->log.sock = -1;
	mix_vms_setup(self);
	self->fd2 = iommufd_open();
	ASSERT_LE(0, self->fd2);
}

FIXTURE_TEARDOWN(viommu_mix_two)
{
	close_fd(&self->fd);
	close_fd(&self->fd2);
	close_fd(&self->vm_a);
	close_fd(&self->vm_b);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/* On iommufd @fd: an IOAS, a device of @vm_fd, a nest parent. */
static void __two_setup(struct __test_metadata *_metadata, int fd, int vm_fd,
			__u32 *dev, __u32 *parent)
{
	__u32 ioas;

	ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, &ioas));
	ASSERT_EQ(0, _test_cmd_mock_dev_vm(fd, ioas, 0, vm_fd, NULL, dev));
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(fd, *dev, ioas,
					  IOMMU_HWPT_ALLOC_NEST_PARENT,
					  parent));
}

/*
 * Rule: two iommufds, each with a device of its own VM (A on the first, B
 * on the second): each vIOMMU must name its device's VM, crossing them is
 * EINVAL in both directions; one VM may serve both iommufds. Fails if the
 * check depends on which iommufd the VM was first used with.
 */
TEST_F(viommu_mix_two, two_iommufds_two_vms)
{
	__u32 dev1, parent1, dev2, parent2, dev3, parent3, viommu1, viommu2;

	__two_setup(_metadata, self->fd, self->vm_a, &dev1, &parent1);
	__two_setup(_metadata, self->fd2, self->vm_b, &dev2, &parent2);

	test_err_viommu_alloc_kvm(EINVAL, dev1, parent1, self->vm_b);
	EXPECT_ERRNO(EINVAL, _test_cmd_viommu_alloc_vm(self->fd2, dev2, parent2,
						       IOMMU_VIOMMU_ALLOC_KVM_VM_FD,
						       self->vm_a, NULL));
	test_cmd_viommu_alloc_kvm(dev1, parent1, self->vm_a, &viommu1);
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(self->fd2, dev2, parent2,
					       IOMMU_VIOMMU_ALLOC_KVM_VM_FD,
					       self->vm_b, &viommu2));
	test_cmd_vm_check(viommu1, self->vm_a, MOCK_VM_SAME);
	test_cmd_vm_check_fd(self->fd2, viommu2, self->vm_b, MOCK_VM_SAME);
	test_cmd_vm_check_fd(self->fd2, viommu2, self->vm_a, MOCK_VM_OTHER);

	/* VM A on the second iommufd too: a VM may serve two iommufds. */
	__two_setup(_metadata, self->fd2, self->vm_a, &dev3, &parent3);
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(self->fd2, dev3, parent3,
					       IOMMU_VIOMMU_ALLOC_KVM_VM_FD,
					       self->vm_a, &viommu2));
	test_cmd_vm_check_fd(self->fd2, viommu2, self->vm_a, MOCK_VM_SAME);
}

/*
 * Rule: VM_CHECK errors: unknown id ENOENT; an object that is neither a
 * device nor a vIOMMU (IOAS, HWPT, vDEVICE, the mock device object)
 * EINVAL. Fails if any object answers as if it held a VM.
 */
TEST_F(viommu_mix_two, vm_check_bad_ids)
{
	__u32 ioas_id, stdev, dev, parent, viommu_id, vdev_id;

	test_ioctl_ioas_alloc(&ioas_id);
	test_cmd_mock_domain_vm(ioas_id, self->vm_a, &stdev, &dev);
	test_cmd_hwpt_alloc(dev, ioas_id, IOMMU_HWPT_ALLOC_NEST_PARENT, &parent);
	test_cmd_viommu_alloc_kvm(dev, parent, self->vm_a, &viommu_id);
	test_cmd_vdevice_alloc(viommu_id, dev, 0x1, &vdev_id);
	test_err_vm_check(ENOENT, 0, self->vm_a);
	test_err_vm_check(ENOENT, 0xfffff, -1);
	test_err_vm_check(EINVAL, ioas_id, self->vm_a);
	test_err_vm_check(EINVAL, parent, self->vm_a);
	test_err_vm_check(EINVAL, vdev_id, self->vm_a);
	test_err_vm_check(EINVAL, stdev, self->vm_a);
}

TEST_HARNESS_MAIN
