// SPDX-License-Identifier: GPL-2.0-only
/*
 * Bad input to the KVM VFIO device: every refusal with its exact errno
 * (from virt/kvm/vfio.c and kvm_main.c of the tree under test), and no
 * reference left behind by a refused call: after each test the VM is
 * destroyed exactly once when its fds close and /proc/self/fd is back to its
 * starting count.
 *
 * errnos, from the source:
 *   kvm_vfio_file_add():  fget() fails -> EBADF; not a VFIO group/device
 *                         file -> EINVAL; already on the list -> EEXIST
 *   kvm_vfio_file_del():  fd not open -> EBADF; not on the list (whatever
 *                         the file is) -> ENOENT
 *   kvm_vfio_set_file():  get_user() of the fd -> EFAULT; unknown attr ->
 *                         ENXIO;  kvm_vfio_set_attr(): unknown group -> ENXIO
 *   kvm_vfio_has_attr():  unknown group/attr -> ENXIO
 *   kvm_device_ioctl_attr(): no ->get_attr (KVM VFIO has none) -> EPERM
 *   kvm_vfio_create():    a second KVM VFIO device on one VM -> EBUSY
 *
 * kvm_vfio_file's variants: the VFIO file is an mtty group (with its type1
 * container) or an mtty device cdev (with its iommufd).
 */
#include "vfio_kvm_path.h"

#include <sys/eventfd.h>

/*
 * Two fixtures: kvm_vfio_dev, a VM and its KVM VFIO device only (errnos that
 * do not depend on any VFIO file), and kvm_vfio_file, the same plus a VFIO
 * file, an mtty group (with its type1 container) or an mtty device cdev
 * (with its iommufd).
 */
FIXTURE(kvm_vfio_dev)
{
	struct vk_path p;
	struct uevent_log log;
	struct vk_handles h;
	struct vm_watch w;
	int base_fds;
};

FIXTURE_SETUP(kvm_vfio_dev)
{
	char why[300];
	int ret;

	vk_handles_init(&self->h);
	self->log.sock = -1;
	memset(&self->p, 0, sizeof(self->p));
	ret = vk_kvm_init(&self->p, why, sizeof(why));
	ASSERT_LE(0, ret) TH_LOG("%s", why);
	if (!ret)
		SKIP(return, "%s", why);
	vk_log_setup(&self->p, &self->log);
	vk_base_fds_setup(&self->base_fds);
	vk_create_vm(&self->p, &self->h, &self->log, 0, &self->w);
}

FIXTURE_TEARDOWN(kvm_vfio_dev)
{
	vk_handles_close(&self->h);
	uevent_log_close(&self->log);
	vk_path_fini(&self->p);
}

FIXTURE(kvm_vfio_file)
{
	struct vk_path p;
	struct uevent_log log;
	struct vk_handles h;
	struct vm_watch w;
	int base_fds;
};

VK_CDEV_VARIANTS(kvm_vfio_file);

FIXTURE_SETUP(kvm_vfio_file)
{
	vk_handles_init(&self->h);
	self->log.sock = -1;
	vk_path_setup(&self->p, VK_MTTY, variant->cdev, false);
	vk_log_setup(&self->p, &self->log);
	vk_base_fds_setup(&self->base_fds);
	vk_create_vm(&self->p, &self->h, &self->log, 0, &self->w);
	vk_open_file(&self->p, &self->h);
}

FIXTURE_TEARDOWN(kvm_vfio_file)
{
	vk_handles_close(&self->h);
	uevent_log_close(&self->log);
	vk_path_fini(&self->p);
}

#define KVM_VFIO(self) ((self)->h.fd[VK_KVM_VFIO])
#define VFIO_FILE(self) ((self)->h.fd[VK_FILE])

/*
 * The end of every test: the refused calls took no reference. The VM is
 * destroyed exactly once as soon as the VM and KVM VFIO device fds close
 * (kvm_vfio_file keeps its VFIO file open: a stray association would keep
 * the VM alive),
 * and the fd count is back where it was.
 */
#define assert_no_leak(self)                                                   \
	({                                                                     \
		close_fd(&(self)->h.fd[VK_VM]);                                \
		close_fd(&(self)->h.fd[VK_KVM_VFIO]);                          \
		vm_assert_destroyed(&(self)->log, &(self)->w,                  \
				    "VM and KVM VFIO device fds closed");      \
		vk_handles_close(&(self)->h);                                  \
		uevent_log_assert_balanced(&(self)->log);                      \
		ASSERT_EQ((self)->base_fds, count_open_fds());                 \
	})

/* Rule: FILE_ADD of fd -1 is EBADF. Can fail: any other errno, success. */
TEST_F(kvm_vfio_dev, add_fd_minus_one)
{
	test_err_kvm_vfio_file_add(EBADF, KVM_VFIO(self), -1);
	assert_no_leak(self);
}

/* Rule: FILE_ADD of a closed fd number is EBADF. */
TEST_F(kvm_vfio_dev, add_closed_fd)
{
	int fd = closed_fd_number();

	ASSERT_LE(0, fd);
	test_err_kvm_vfio_file_add(EBADF, KVM_VFIO(self), fd);
	assert_no_leak(self);
}

/* Rule: FILE_ADD of a non-VFIO file (eventfd) is EINVAL, and pins nothing. */
TEST_F(kvm_vfio_dev, add_eventfd)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_LE(0, efd);
	test_err_kvm_vfio_file_add(EINVAL, KVM_VFIO(self), efd);
	close(efd);
	assert_no_leak(self);
}

/* Rule: FILE_ADD of /dev/kvm is EINVAL. */
TEST_F(kvm_vfio_dev, add_dev_kvm)
{
	test_err_kvm_vfio_file_add(EINVAL, KVM_VFIO(self), self->p.kvm_fd);
	assert_no_leak(self);
}

/*
 * Rule: FILE_ADD of the VM's own fd is EINVAL (and takes no reference on the
 * VM file: the VM is still destroyed when its fds close).
 */
TEST_F(kvm_vfio_dev, add_vm_fd)
{
	test_err_kvm_vfio_file_add(EINVAL, KVM_VFIO(self), self->h.fd[VK_VM]);
	assert_no_leak(self);
}

/* Rule: FILE_ADD of the KVM VFIO device's own fd is EINVAL (no self-cycle). */
TEST_F(kvm_vfio_dev, add_kvm_vfio_fd)
{
	test_err_kvm_vfio_file_add(EINVAL, KVM_VFIO(self), KVM_VFIO(self));
	assert_no_leak(self);
}

/*
 * Rule: FILE_ADD of a VFIO file that is neither a group nor a device (the
 * type1 container; the iommufd on the cdev variant) is EINVAL.
 */
TEST_F(kvm_vfio_file, add_container_or_iommufd)
{
	test_err_kvm_vfio_file_add(EINVAL, KVM_VFIO(self), self->h.fd[VK_IOMMU]);
	assert_no_leak(self);
}

/*
 * Rule: the same VFIO file twice is EEXIST, and the refused second add
 * leaves exactly one entry: one FILE_DEL succeeds, the next is ENOENT.
 */
TEST_F(kvm_vfio_file, add_same_file_twice)
{
	test_kvm_vfio_file_add(KVM_VFIO(self), VFIO_FILE(self));
	test_err_kvm_vfio_file_add(EEXIST, KVM_VFIO(self), VFIO_FILE(self));
	test_kvm_vfio_file_del(KVM_VFIO(self), VFIO_FILE(self));
	test_err_kvm_vfio_file_del(ENOENT, KVM_VFIO(self), VFIO_FILE(self));
	assert_no_leak(self);
}

/*
 * Rule: EEXIST is about the file, not the fd number: FILE_ADD of a dup of an
 * added fd is EEXIST.
 */
TEST_F(kvm_vfio_file, add_dup_of_same_file)
{
	int dup_fd = dup(VFIO_FILE(self));

	ASSERT_LE(0, dup_fd);
	test_kvm_vfio_file_add(KVM_VFIO(self), VFIO_FILE(self));
	test_err_kvm_vfio_file_add(EEXIST, KVM_VFIO(self), dup_fd);
	close(dup_fd);
	assert_no_leak(self);
}

/* Rule: FILE_DEL of a VFIO file that was never added is ENOENT. */
TEST_F(kvm_vfio_file, del_never_added)
{
	test_err_kvm_vfio_file_del(ENOENT, KVM_VFIO(self), VFIO_FILE(self));
	assert_no_leak(self);
}

/* Rule: FILE_DEL of fd -1 is EBADF. */
TEST_F(kvm_vfio_dev, del_fd_minus_one)
{
	test_err_kvm_vfio_file_del(EBADF, KVM_VFIO(self), -1);
	assert_no_leak(self);
}

/* Rule: FILE_DEL of a closed fd number is EBADF. */
TEST_F(kvm_vfio_dev, del_closed_fd)
{
	int fd = closed_fd_number();

	ASSERT_LE(0, fd);
	test_err_kvm_vfio_file_del(EBADF, KVM_VFIO(self), fd);
	assert_no_leak(self);
}

/* Rule: FILE_DEL of an open non-VFIO file is ENOENT (it is looked up, not checked). */
TEST_F(kvm_vfio_dev, del_eventfd)
{
	int efd = eventfd(0, EFD_CLOEXEC);

	ASSERT_LE(0, efd);
	test_err_kvm_vfio_file_del(ENOENT, KVM_VFIO(self), efd);
	close(efd);
	assert_no_leak(self);
}

/* Rule: an unknown attr in the KVM_DEV_VFIO_FILE group is ENXIO. */
TEST_F(kvm_vfio_dev, set_unknown_attr)
{
	__s32 fd = -1;	/* the attr is checked before the fd is read */

	test_err_kvm_device_attr(ENXIO, KVM_VFIO(self), KVM_SET_DEVICE_ATTR,
				 KVM_DEV_VFIO_FILE, 0x7fff, (uintptr_t)&fd);
	assert_no_leak(self);
}

/* Rule: an unknown attr group is ENXIO. */
TEST_F(kvm_vfio_dev, set_unknown_group)
{
	__s32 fd = -1;

	test_err_kvm_device_attr(ENXIO, KVM_VFIO(self), KVM_SET_DEVICE_ATTR,
				 0x7fff, KVM_DEV_VFIO_FILE_ADD, (uintptr_t)&fd);
	assert_no_leak(self);
}

/*
 * Rule: KVM_HAS_DEVICE_ATTR knows FILE_ADD and FILE_DEL and nothing else
 * (ENXIO).
 */
TEST_F(kvm_vfio_dev, has_attr)
{
	ASSERT_EQ(0, _test_kvm_device_attr(KVM_VFIO(self), KVM_HAS_DEVICE_ATTR,
					   KVM_DEV_VFIO_FILE,
					   KVM_DEV_VFIO_FILE_ADD, 0));
	ASSERT_EQ(0, _test_kvm_device_attr(KVM_VFIO(self), KVM_HAS_DEVICE_ATTR,
					   KVM_DEV_VFIO_FILE,
					   KVM_DEV_VFIO_FILE_DEL, 0));
	test_err_kvm_device_attr(ENXIO, KVM_VFIO(self), KVM_HAS_DEVICE_ATTR,
				 KVM_DEV_VFIO_FILE, 0x7fff, 0);
	test_err_kvm_device_attr(ENXIO, KVM_VFIO(self), KVM_HAS_DEVICE_ATTR,
				 0x7fff, KVM_DEV_VFIO_FILE_ADD, 0);
	assert_no_leak(self);
}

/* Rule: KVM_GET_DEVICE_ATTR is EPERM (the KVM VFIO device has no getter). */
TEST_F(kvm_vfio_dev, get_attr)
{
	__s32 fd = -1;

	test_err_kvm_device_attr(EPERM, KVM_VFIO(self), KVM_GET_DEVICE_ATTR,
				 KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD,
				 (uintptr_t)&fd);
	assert_no_leak(self);
}

/* Rule: FILE_ADD / FILE_DEL whose fd pointer is unreadable are EFAULT. */
TEST_F(kvm_vfio_dev, bad_fd_pointer)
{
	test_err_kvm_device_attr(EFAULT, KVM_VFIO(self), KVM_SET_DEVICE_ATTR,
				 KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD, 8);
	test_err_kvm_device_attr(EFAULT, KVM_VFIO(self), KVM_SET_DEVICE_ATTR,
				 KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_DEL, 8);
	assert_no_leak(self);
}

/*
 * Rule: one KVM VFIO device per VM: a second KVM_CREATE_DEVICE is EBUSY and
 * installs no fd; the first one keeps working.
 */
TEST_F(kvm_vfio_dev, second_kvm_vfio_device)
{
	int second = -1, fds = count_open_fds();

	test_err_kvm_create_vfio_device(EBUSY, self->h.fd[VK_VM], &second);
	ASSERT_EQ(-1, second);
	ASSERT_EQ(fds, count_open_fds());
	ASSERT_EQ(0, _test_kvm_device_attr(KVM_VFIO(self), KVM_HAS_DEVICE_ATTR,
					   KVM_DEV_VFIO_FILE,
					   KVM_DEV_VFIO_FILE_ADD, 0))
		TH_LOG("the first KVM VFIO device stopped working");
	assert_no_leak(self);
}

/*
 * Rule: after the first KVM VFIO device is closed, the VM accepts a new one
 * (the EBUSY slot is freed by the release), and the VM still dies with its
 * fds.
 */
TEST_F(kvm_vfio_file, kvm_vfio_device_after_close)
{
	close_fd(&self->h.fd[VK_KVM_VFIO]);
	test_kvm_create_vfio_device(self->h.fd[VK_VM], &self->h.fd[VK_KVM_VFIO]);
	test_kvm_vfio_file_add(KVM_VFIO(self), VFIO_FILE(self));
	assert_no_leak(self);
}

TEST_HARNESS_MAIN
