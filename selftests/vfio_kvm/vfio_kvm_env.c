// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the machine provides, one test per fact the vfio_kvm and
 * iommufd_viommu suites build on: KVM and its VFIO device, the two oracles
 * of VM lifetime (debugfs dir, uevents), the VFIO container, an mtty mdev
 * through its group and its cdev, a vfio-pci device through its cdev, and
 * iommufd.
 *
 * Devices are named by the environment (VFIO_KVM_PCI=<bdf>,
 * VFIO_KVM_MDEV='<uuid> <uuid>', VFIO_KVM_MKVM=...; see vm_file_utils.h). A
 * fixture whose device or interface is absent SKIPs with the reason, so a
 * lab machine reports what it lacks instead of failing; once the device is
 * there, anything that does not work is a failure. The presence tests FAIL
 * instead of SKIP for what $VFIO_KVM_REQUIRE says the kernel was built to
 * have.
 */
#include "vm_file_utils.h"

/* ------------------------------------------------------------------ KVM */

FIXTURE(kvm)
{
	int kvm_fd;
	int vm_fd;
	int dev_fd;
};

FIXTURE_SETUP(kvm)
{
	self->vm_fd = -1;
	self->dev_fd = -1;
	self->kvm_fd = kvm_open();
	if (self->kvm_fd < 0)
		SKIP(return, "cannot open %s: %s (CONFIG_KVM, hardware virtualization)",
		     KVM_DEV_PATH, strerror(errno));
}

FIXTURE_TEARDOWN(kvm)
{
	close_fd(&self->dev_fd);
	close_fd(&self->vm_fd);
	close_fd(&self->kvm_fd);
}

/* Rule: /dev/kvm speaks the stable KVM API, version 12. */
TEST_F(kvm, api_version)
{
	ASSERT_EQ(KVM_API_VERSION, ioctl(self->kvm_fd, KVM_GET_API_VERSION, 0));
}

/* Rule: KVM_CREATE_VM (default type) gives a VM fd. */
TEST_F(kvm, create_vm)
{
	test_kvm_create_vm(self->kvm_fd, &self->vm_fd);
}

/* Rule: the KVM VFIO device type exists (KVM_CREATE_DEVICE_TEST probes it). */
TEST_F(kvm, vfio_device_supported)
{
	test_kvm_create_vm(self->kvm_fd, &self->vm_fd);
	ASSERT_EQ(0, _test_kvm_create_device(self->vm_fd, KVM_DEV_TYPE_VFIO,
					     KVM_CREATE_DEVICE_TEST, NULL))
		TH_LOG("KVM_CREATE_DEVICE_TEST(VFIO): %s (CONFIG_KVM_VFIO?)",
		       strerror(errno));
}

/* Rule: KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) gives a device fd. */
TEST_F(kvm, create_vfio_device)
{
	test_kvm_create_vm(self->kvm_fd, &self->vm_fd);
	test_kvm_create_vfio_device(self->vm_fd, &self->dev_fd);
	ASSERT_LE(0, self->dev_fd);
}

/* Rule: one KVM VFIO device per VM; a second one is refused with EBUSY. */
TEST_F(kvm, vfio_device_once_per_vm)
{
	int second = -1;

	test_kvm_create_vm(self->kvm_fd, &self->vm_fd);
	test_kvm_create_vfio_device(self->vm_fd, &self->dev_fd);
	test_err_kvm_create_vfio_device(EBUSY, self->vm_fd, &second);
}

/* Rule: a VM has a debugfs dir <pid>-<vmfd> while it lives (lifetime oracle). */
TEST_F(kvm, vm_debugfs_dir)
{
	struct kvm_vm_id vm;

	if (!kvm_debugfs_available())
		SKIP(return, "no %s (debugfs not mounted at /sys/kernel/debug?)",
		     KVM_DEBUGFS_DIR);
	test_kvm_create_vm(self->kvm_fd, &self->vm_fd);
	kvm_vm_id_init(&vm, self->vm_fd);
	ASSERT_TRUE(kvm_vm_debugfs_present(&vm))
		TH_LOG("no %s (is the test in the initial pid namespace?)",
		       vm.debugfs);
}

/*
 * Rule: KVM announces a VM's creation and destruction exactly once each
 * with uevents naming its STATS_PATH, and removes its debugfs dir on destroy
 * (lifetime oracle).
 */
TEST_F(kvm, vm_uevents)
{
	struct kvm_uevents ev = {};
	struct kvm_vm_id vm;
	int sock;

	if (!kvm_debugfs_available())
		SKIP(return, "no %s: uevents carry no STATS_PATH", KVM_DEBUGFS_DIR);
	sock = uevent_open();
	ASSERT_LE(0, sock) TH_LOG("NETLINK_KOBJECT_UEVENT: %s", strerror(errno));

	test_kvm_create_vm(self->kvm_fd, &self->vm_fd);
	kvm_vm_id_init(&vm, self->vm_fd);
	ASSERT_EQ(0, kvm_uevents_wait(sock, vm.stats_path, false, &ev, 1, 0,
				      VM_DESTROY_TIMEOUT_MS));
	ASSERT_EQ(1, ev.created) TH_LOG("create uevents for %s", vm.stats_path);
	ASSERT_EQ(0, ev.destroyed);

	close_fd(&self->vm_fd);
	ASSERT_EQ(0, kvm_uevents_wait(sock, vm.stats_path, false, &ev, 1, 1,
				      VM_DESTROY_TIMEOUT_MS));
	ASSERT_EQ(1, ev.destroyed) TH_LOG("destroy uevents for %s", vm.stats_path);
	ASSERT_EQ(1, ev.created);
	ASSERT_TRUE(kvm_vm_debugfs_wait_gone(&vm, VM_DESTROY_TIMEOUT_MS));
	close(sock);
}

/* ------------------------------------------------------- VFIO container */

FIXTURE(vfio_container)
{
	int fd;
};

FIXTURE_SETUP(vfio_container)
{
	self->fd = open(VFIO_CONTAINER_PATH, O_RDWR | O_CLOEXEC);
	if (self->fd < 0)
		SKIP(return, "cannot open %s: %s (CONFIG_VFIO_CONTAINER or CONFIG_IOMMUFD_VFIO_CONTAINER)",
		     VFIO_CONTAINER_PATH, strerror(errno));
}

FIXTURE_TEARDOWN(vfio_container)
{
	close_fd(&self->fd);
}

/* Rule: the container speaks VFIO_API_VERSION. */
TEST_F(vfio_container, api_version)
{
	ASSERT_EQ(VFIO_API_VERSION, ioctl(self->fd, VFIO_GET_API_VERSION));
}

/* Rule: the container offers the type1v2 IOMMU backend. */
TEST_F(vfio_container, type1v2_extension)
{
	ASSERT_EQ(1, ioctl(self->fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU));
}

/* ------------------------------------------------------ mtty, group path */

/*
 * mtty registers with vfio_register_emulated_iommu_dev(): its group is an
 * emulated-IOMMU group, which type1 (v1 and v2) accepts without mapping
 * anything for it. The suites use type1v2.
 */
FIXTURE(mtty_group)
{
	struct vfio_dev_info dev;
	int container_fd;
	int group_fd;
	int device_fd;
	int kvm_fd;
	int vm_fd;
	int kvm_vfio_fd;
};

FIXTURE_SETUP(mtty_group)
{
	self->container_fd = -1;
	self->group_fd = -1;
	self->device_fd = -1;
	self->kvm_fd = -1;
	self->vm_fd = -1;
	self->kvm_vfio_fd = -1;

	if (vfio_find_mtty(&self->dev, 0))
		SKIP(return, "%s", self->dev.why);
	if (!self->dev.group[0])
		SKIP(return, "%s has no iommu_group link", self->dev.sysfs);
	if (access(self->dev.group, F_OK))
		SKIP(return, "no %s for %s (CONFIG_VFIO_GROUP off?)",
		     self->dev.group, self->dev.name);
	self->container_fd = open(VFIO_CONTAINER_PATH, O_RDWR | O_CLOEXEC);
	if (self->container_fd < 0)
		SKIP(return, "cannot open %s: %s", VFIO_CONTAINER_PATH,
		     strerror(errno));

	/* The group node exists, so opening it must work. */
	test_open_rdwr(self->dev.group, &self->group_fd);
}

FIXTURE_TEARDOWN(mtty_group)
{
	close_fd(&self->kvm_vfio_fd);
	close_fd(&self->vm_fd);
	close_fd(&self->kvm_fd);
	close_fd(&self->device_fd);
	close_fd(&self->group_fd);
	close_fd(&self->container_fd);
}

/* Rule: the group of the mtty mdev opens (setup) and is viable. */
TEST_F(mtty_group, viable)
{
	__u32 flags = 0;

	ASSERT_EQ(0, _test_vfio_group_status(self->group_fd, &flags));
	ASSERT_EQ(VFIO_GROUP_FLAGS_VIABLE, flags & VFIO_GROUP_FLAGS_VIABLE);
}

/* Rule: the group can be set to a container, and reports it. */
TEST_F(mtty_group, set_container)
{
	__u32 flags = 0;

	test_vfio_group_set_container(self->group_fd, self->container_fd);
	ASSERT_EQ(0, _test_vfio_group_status(self->group_fd, &flags));
	ASSERT_EQ(VFIO_GROUP_FLAGS_CONTAINER_SET,
		  flags & VFIO_GROUP_FLAGS_CONTAINER_SET);
}

/* Rule: a container holding the emulated-IOMMU group accepts type1v2. */
TEST_F(mtty_group, set_iommu_type1v2)
{
	test_vfio_group_set_container(self->group_fd, self->container_fd);
	test_vfio_set_iommu(self->container_fd, VFIO_TYPE1v2_IOMMU);
}

/* Rule: VFIO_GROUP_GET_DEVICE_FD(<uuid>) opens the mdev. */
TEST_F(mtty_group, get_device_fd)
{
	test_vfio_group_set_container(self->group_fd, self->container_fd);
	test_vfio_set_iommu(self->container_fd, VFIO_TYPE1v2_IOMMU);
	test_vfio_group_get_device_fd(self->group_fd, self->dev.name,
				      &self->device_fd);
}

/*
 * A VM of the fixture's own with its KVM VFIO device (SKIP without
 * /dev/kvm), then FILE_ADD and FILE_DEL of @vfio_fd.
 */
#define test_kvm_vfio_file_add_del(self, vfio_fd)                              \
	({                                                                     \
		(self)->kvm_fd = kvm_open();                                   \
		if ((self)->kvm_fd < 0)                                        \
			SKIP(return, "cannot open %s: %s", KVM_DEV_PATH,       \
			     strerror(errno));                                 \
		test_kvm_create_vm((self)->kvm_fd, &(self)->vm_fd);            \
		test_kvm_create_vfio_device((self)->vm_fd,                     \
					    &(self)->kvm_vfio_fd);             \
		test_kvm_vfio_file_add((self)->kvm_vfio_fd, vfio_fd);          \
		test_kvm_vfio_file_del((self)->kvm_vfio_fd, vfio_fd);          \
	})

/* Rule: the KVM VFIO device accepts the group file (FILE_ADD, FILE_DEL). */
TEST_F(mtty_group, kvm_vfio_file_add_del)
{
	test_kvm_vfio_file_add_del(self, self->group_fd);
}

/* ------------------------------------------------- device cdev + iommufd */

/*
 * The cdev path for both kinds of device: mtty binds to iommufd as an
 * access object (emulated IOMMU), the vfio-pci device as a real idev that
 * attaches to an IOAS through the platform IOMMU.
 */
FIXTURE(vfio_cdev)
{
	struct vfio_dev_info dev;
	int iommufd;
	int device_fd;
	int kvm_fd;
	int vm_fd;
	int kvm_vfio_fd;
};

FIXTURE_VARIANT(vfio_cdev)
{
	bool pci;
};

FIXTURE_VARIANT_ADD(vfio_cdev, mtty)
{
	.pci = false,
};

FIXTURE_VARIANT_ADD(vfio_cdev, vfio_pci)
{
	.pci = true,
};

FIXTURE_SETUP(vfio_cdev)
{
	self->iommufd = -1;
	self->device_fd = -1;
	self->kvm_fd = -1;
	self->vm_fd = -1;
	self->kvm_vfio_fd = -1;

	if (variant->pci) {
		vfio_find_pci_or_skip(&self->dev);
	} else if (vfio_find_mtty(&self->dev, 0)) {
		SKIP(return, "%s", self->dev.why);
	}
	if (!self->dev.cdev[0])
		SKIP(return, "%s has no vfio-dev/vfioX (CONFIG_VFIO_DEVICE_CDEV off?)",
		     self->dev.sysfs);
	self->iommufd = iommufd_open();
	if (self->iommufd < 0)
		SKIP(return, "cannot open %s: %s (CONFIG_IOMMUFD)", IOMMUFD_PATH,
		     strerror(errno));

	/* The cdev exists in sysfs, so opening it must work. */
	self->device_fd = open(self->dev.cdev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->device_fd)
		TH_LOG("open %s (%s): %s", self->dev.cdev, self->dev.name,
		       strerror(errno));
}

FIXTURE_TEARDOWN(vfio_cdev)
{
	close_fd(&self->kvm_vfio_fd);
	close_fd(&self->vm_fd);
	close_fd(&self->kvm_fd);
	close_fd(&self->device_fd);
	close_fd(&self->iommufd);
}

/* Rule: the device cdev opens (setup) and binds to an iommufd. */
TEST_F(vfio_cdev, bind_iommufd)
{
	__u32 devid = 0;

	test_vfio_device_bind_iommufd(self->device_fd, self->iommufd, &devid);
	ASSERT_NE(0, devid);
}

/* Rule: a bound device attaches to an IOAS (VFIO_DEVICE_ATTACH_IOMMUFD_PT). */
TEST_F(vfio_cdev, attach_ioas)
{
	__u32 ioas_id;

	test_vfio_device_bind_iommufd(self->device_fd, self->iommufd, NULL);
	test_ioas_alloc(self->iommufd, &ioas_id);
	test_vfio_device_attach_pt(self->device_fd, ioas_id);
}

/* Rule: the KVM VFIO device accepts a device cdev file (FILE_ADD, FILE_DEL). */
TEST_F(vfio_cdev, kvm_vfio_file_add_del)
{
	test_kvm_vfio_file_add_del(self, self->device_fd);
}

/* -------------------------------------------------------------- iommufd */

FIXTURE(iommufd)
{
	int fd;
};

FIXTURE_SETUP(iommufd)
{
	self->fd = iommufd_open();
	if (self->fd < 0)
		SKIP(return, "cannot open %s: %s (CONFIG_IOMMUFD)", IOMMUFD_PATH,
		     strerror(errno));
}

FIXTURE_TEARDOWN(iommufd)
{
	close_fd(&self->fd);
}

/* Rule: /dev/iommu opens (setup) and allocates an IOAS. */
TEST_F(iommufd, ioas_alloc)
{
	__u32 ioas_id;

	test_ioas_alloc(self->fd, &ioas_id);
}

/* --------------------------------------------------------------- presence */

/*
 * The devices the other tests use, one test each, so that a missing one
 * cannot hide behind their SKIPs: absent is "not checkable here" (SKIP)
 * unless $VFIO_KVM_REQUIRE names it (the kernel was built to have it: FAIL);
 * there but not usable always FAILs.
 */
FIXTURE(presence)
{
	struct vfio_dev_info dev;
};

FIXTURE_SETUP(presence)
{
}

FIXTURE_TEARDOWN(presence)
{
}

/* The two mdevs of @drv the tests use (a second one for two VMs, workers). */
#define test_two_mdevs(find, feature)                                          \
	({                                                                     \
		if (find(&self->dev, 0) || find(&self->dev, 1))                \
			feature_absent(feature, self->dev.why);                \
		ASSERT_NE(0, self->dev.group[0])                               \
			TH_LOG("%s has no iommu_group", self->dev.sysfs);      \
		ASSERT_NE(0, self->dev.cdev[0])                                \
			TH_LOG("%s has no vfio-dev cdev", self->dev.sysfs);    \
	})

/* Rule: two mtty mdevs (the sample, CONFIG_SAMPLE_VFIO_MDEV_MTTY). */
TEST_F(presence, mtty)
{
	test_two_mdevs(vfio_find_mtty, "mtty");
}

/* Rule: two mkvm mdevs (the series' test sample, CONFIG_SAMPLE_VFIO_MDEV_MKVM). */
TEST_F(presence, mkvm)
{
	test_two_mdevs(vfio_find_mkvm, "mkvm");
}

/* Rule: $VFIO_KVM_PCI names a device bound to vfio-pci, with a group and a cdev. */
TEST_F(presence, vfio_pci)
{
	int ret = vfio_find_pci(&self->dev);

	ASSERT_NE(-ENODEV, ret) TH_LOG("%s", self->dev.why);
	if (ret)
		feature_absent("vfio-pci", self->dev.why);
	ASSERT_NE(0, self->dev.group[0])
		TH_LOG("%s has no iommu_group (no IOMMU?)", self->dev.sysfs);
	ASSERT_NE(0, self->dev.cdev[0])
		TH_LOG("%s has no vfio-dev cdev (CONFIG_VFIO_DEVICE_CDEV)",
		       self->dev.sysfs);
}

TEST_HARNESS_MAIN
