// SPDX-License-Identifier: GPL-2.0-only
/*
 * IOMMU_VIOMMU_ALLOC with a KVM VM fd (docs/kernel-behaviour.md "iommufd uAPI
 * additions"): the flag and the fd, every kind of bad fd, a VM fd from another
 * process, the device's VM against the named one, the struct sizes old and new,
 * unknown flags and reserved bits, the order of the checks, and the VM kept
 * alive by a vIOMMU after every fd of it is closed.
 *
 * What a vIOMMU or an idev holds is read back with the mock's
 * IOMMU_TEST_OP_VM_CHECK; VM lifetime is seen through KVM's uevents and the
 * VM's debugfs dir. Every fixture's teardown checks that each VM the test
 * created was destroyed exactly once, so a reference leaked on any path
 * (success or failure) fails the test that leaked it.
 */
#include "iommufd_viommu_utils.h"

/* ------------------------------------------------- feature presence */

/*
 * No SKIP on the base kernel here: these two say whether the series' uAPI is
 * there at all, so that the feature disappearing cannot hide behind the
 * SKIPs of every other test (they skip when it is absent).
 */
FIXTURE(viommu_uapi)
{
	int fd;
};

FIXTURE_SETUP(viommu_uapi)
{
	iommufd_mock_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(viommu_uapi)
{
	close_fd(&self->fd);
}

/*
 * Rule: IOMMU_VIOMMU_ALLOC knows IOMMU_VIOMMU_ALLOC_KVM_VM_FD: with the flag
 * and dev_id 0 it gets past the flags check to the device lookup (ENOENT).
 * Fails on a kernel that refuses the flag (EOPNOTSUPP: 7.3).
 */
TEST_F(viommu_uapi, kvm_flag_known)
{
	ASSERT_EQ(1, viommu_kvm_flag_supported(self->fd))
		TH_LOG("IOMMU_VIOMMU_ALLOC(KVM_VM_FD, dev_id 0): %s, expected ENOENT",
		       strerror(errno));
}

/*
 * Rule: the mock has IOMMU_TEST_OP_VM_CHECK: id 0 is ENOENT, not an unknown
 * op (EOPNOTSUPP: 7.3).
 */
TEST_F(viommu_uapi, mock_vm_ops_known)
{
	ASSERT_EQ(1, mock_vm_ops_supported(self->fd))
		TH_LOG("IOMMU_TEST_OP_VM_CHECK(0): %s, expected ENOENT",
		       strerror(errno));
}

/* --------------------------------------------------------- the fixture */

/*
 * Every fixture here starts so (its other fds -1 already): the
 * prerequisites (SKIP without them), the iommufd and VM "A", watched in
 * slot 0.
 */
#define viommu_kvm_open_vm(self)                                             \
	({                                                                   \
		(self)->fd = (self)->kvm_fd = (self)->vm_fd = -1;            \
		(self)->log.sock = -1;                                       \
		viommu_kvm_prereq_or_skip(&(self)->kvm_fd, &(self)->fd,      \
					  &(self)->log);                     \
		test_vm_create_watched((self)->kvm_fd, &(self)->log, 0,      \
				       &(self)->vm, &(self)->vm_fd);         \
	})

/*
 * A VM ("A", watched), an IOAS, a mock device (no VM of its own unless a
 * test gives it one) and a nest-parent HWPT for vIOMMUs.
 */
FIXTURE(viommu_kvm)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	int vm_fd;
	struct vm_watch vm;
	__u32 ioas_id;
	__u32 stdev_id;
	__u32 hwpt_id;
	__u32 idev_id;
	__u32 parent_id;
};

FIXTURE_SETUP(viommu_kvm)
{
	viommu_kvm_open_vm(self);
	test_mock_nest_parent(&self->ioas_id, &self->stdev_id, &self->hwpt_id,
			      &self->idev_id, &self->parent_id);
}

/*
 * Reference check: with the iommufd and every VM fd closed, each VM this
 * test created has been destroyed, exactly once.
 */
FIXTURE_TEARDOWN(viommu_kvm)
{
	close_fd(&self->fd);
	close_fd(&self->vm_fd);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/* A second VM ("B"), watched in slot 1. */
#define create_vm_b(vm_fd, w) \
	test_vm_create_watched(self->kvm_fd, &self->log, 1, w, vm_fd)

/*
 * Rule: the flag names the VM: the vIOMMU holds exactly the VM of kvm_vm_fd
 * (VM_CHECK SAME; OTHER against another VM). Fails if the fd is ignored
 * (NONE) or another VM is taken.
 */
TEST_F(viommu_kvm, flag_present)
{
	struct vm_watch wb;
	__u32 viommu_id;
	int vm_b = -1;

	create_vm_b(&vm_b, &wb);
	test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id, self->vm_fd,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
	test_cmd_vm_check(viommu_id, vm_b, TEST_VM_OTHER);
	test_cmd_vm_check(viommu_id, -1, TEST_VM_OTHER);
	close_fd(&vm_b);
	vm_assert_destroyed(&self->log, &wb, "VM B, never used");
}

/*
 * Rule: without the flag kvm_vm_fd is ignored, whatever it holds (here a VM
 * fd, then garbage); the vIOMMU takes the device's VM, none here (NONE).
 * Fails if the field is read without the flag.
 */
TEST_F(viommu_kvm, flag_absent_ignores_fd)
{
	__u32 viommu_id[2];

	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, self->vm_fd,
				 &viommu_id[0]);
	test_cmd_vm_check(viommu_id[0], self->vm_fd, TEST_VM_NONE);
	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, -12345,
				 &viommu_id[1]);
	test_cmd_vm_check(viommu_id[1], -1, TEST_VM_NONE);
}

/*
 * Rule: without the flag the vIOMMU takes the idev's VM (set with
 * DEV_SET_VM, as VFIO does at bind). Fails if it takes none.
 */
TEST_F(viommu_kvm, flag_absent_takes_device_vm)
{
	__u32 viommu_id;

	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, -1,
				 &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
}

/*
 * Rule: the vIOMMU's VM is its own reference: clearing the device's VM
 * afterwards leaves the vIOMMU (made without the flag) with it. Fails if
 * the vIOMMU only borrowed the idev's pointer.
 */
TEST_F(viommu_kvm, flag_absent_vm_is_own_reference)
{
	__u32 viommu_id;

	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, -1,
				 &viommu_id);
	test_cmd_dev_set_vm(self->idev_id, -1);
	test_cmd_vm_check(self->idev_id, self->vm_fd, TEST_VM_NONE);
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
}

/*
 * Rule: the device's VM and kvm_vm_fd agree: the vIOMMU is made and holds
 * that VM. Fails if the same VM is refused.
 */
TEST_F(viommu_kvm, vm_matched)
{
	__u32 viommu_id;

	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id, self->vm_fd,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
	test_cmd_vm_check(self->idev_id, self->vm_fd, TEST_VM_SAME);
}

/*
 * Rule (the headline): the device is VM A's, kvm_vm_fd names VM B: EXDEV,
 * no vIOMMU, the device keeps A, and the reference taken on B is dropped
 * (B dies when its fd closes). Fails if VMs are mixed, or B leaks.
 */
TEST_F(viommu_kvm, vm_mismatched)
{
	struct vm_watch wb;
	int vm_b = -1;

	create_vm_b(&vm_b, &wb);
	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	test_err_viommu_alloc_kvm(EXDEV, self->idev_id, self->parent_id, vm_b);
	test_cmd_vm_check(self->idev_id, self->vm_fd, TEST_VM_SAME);
	/* Nothing was made: the parent has no vIOMMU pinning it. */
	test_ioctl_destroy(self->parent_id);
	close_fd(&vm_b);
	vm_assert_destroyed(&self->log, &wb, "VM B after EXDEV");
}

/*
 * Rule: a device with no VM agrees with any named VM: the vIOMMU holds it.
 * Fails if the flag requires a device VM.
 */
TEST_F(viommu_kvm, device_without_vm)
{
	__u32 viommu_id;

	test_cmd_vm_check(self->idev_id, self->vm_fd, TEST_VM_NONE);
	test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id, self->vm_fd,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
	test_cmd_vm_check(self->idev_id, self->vm_fd, TEST_VM_NONE);
}

/* --------------------------------------------------- sizes, flags, order */

/* The SELFTEST vIOMMU request on the fixture's device and parent. */
#define viommu_req(flags_, kvm_vm_fd_)                                        \
	((struct iommu_viommu_alloc_kvm){                                     \
		.flags = (flags_),                                            \
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,                           \
		.dev_id = self->idev_id,                                      \
		.hwpt_id = self->parent_id,                                   \
		.kvm_vm_fd = (kvm_vm_fd_),                                    \
	})

/* @cmd at the series' struct size, refused with @_errno. */
#define test_err_viommu_req(_errno, cmd)                                     \
	EXPECT_ERRNO(_errno, _test_cmd_viommu_alloc_sized(self->fd, cmd,     \
					VIOMMU_ALLOC_SIZE_KVM, 0, NULL))

/*
 * Rule: the 7.3 struct size (40 bytes, up to data_uptr) works unchanged and
 * reads kvm_vm_fd as absent: the vIOMMU takes the device's VM. Fails if old
 * userspace is refused or the missing field is read as a VM.
 */
TEST_F(viommu_kvm, size_7_3)
{
	struct iommu_viommu_alloc_kvm cmd = viommu_req(0, 0);
	__u32 viommu_id;

	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	ASSERT_EQ(0, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
						  VIOMMU_ALLOC_SIZE_7_3, 0,
						  &viommu_id))
		TH_LOG("IOMMU_VIOMMU_ALLOC(size %d): %s", VIOMMU_ALLOC_SIZE_7_3,
		       strerror(errno));
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
}

/*
 * Rule: sizes below 7.3's down to offsetofend(out_viommu_id) (24) work as
 * before (32: without data_uptr); 23 is EINVAL. Fails if the minimum moved.
 */
TEST_F(viommu_kvm, size_minimum)
{
	struct iommu_viommu_alloc_kvm cmd = viommu_req(0, 0);
	__u32 viommu_id;

	ASSERT_EQ(0, _test_cmd_viommu_alloc_sized(self->fd, &cmd, 32, 0,
						  &viommu_id))
		TH_LOG("IOMMU_VIOMMU_ALLOC(size 32): %s", strerror(errno));
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_NONE);
	cmd = viommu_req(0, 0);
	ASSERT_EQ(0, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
						  VIOMMU_ALLOC_SIZE_MIN, 0,
						  &viommu_id))
		TH_LOG("IOMMU_VIOMMU_ALLOC(size %d): %s", VIOMMU_ALLOC_SIZE_MIN,
		       strerror(errno));
	cmd = viommu_req(0, 0);
	EXPECT_ERRNO(EINVAL, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
					VIOMMU_ALLOC_SIZE_MIN - 1, 0, NULL));
}

/*
 * Rule: a size larger than the kernel's struct with a zero tail is fine, and
 * the known fields, kvm_vm_fd included, are honoured. Fails if a bigger
 * (future) struct is refused or misread.
 */
TEST_F(viommu_kvm, size_larger_zero_tail)
{
	struct iommu_viommu_alloc_kvm cmd =
		viommu_req(VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);
	__u32 viommu_id;

	ASSERT_EQ(0, _test_cmd_viommu_alloc_sized(self->fd, &cmd, 128, 0,
						  &viommu_id))
		TH_LOG("IOMMU_VIOMMU_ALLOC(size 128, zero tail): %s",
		       strerror(errno));
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
}

/*
 * Rule: a size larger than the kernel's struct with a non-zero byte beyond
 * it is E2BIG (first byte past the struct, and the last byte), and nothing
 * is made. Fails if unknown trailing fields are silently ignored.
 */
TEST_F(viommu_kvm, size_larger_nonzero_tail)
{
	struct iommu_viommu_alloc_kvm cmd =
		viommu_req(VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);

	EXPECT_ERRNO(E2BIG, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
					VIOMMU_ALLOC_SIZE_KVM + 8, 0xff, NULL));
	cmd = viommu_req(VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);
	EXPECT_ERRNO(E2BIG, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
					VIOMMU_ALLOC_SIZE_KVM + 1, 1, NULL));
	/* Nothing holds the parent. */
	test_ioctl_destroy(self->parent_id);
}

/*
 * Rule: flags other than IOMMU_VIOMMU_ALLOC_KVM_VM_FD are EOPNOTSUPP, alone
 * or together with it. Fails if an unknown flag is accepted (it could never
 * be given a meaning later).
 */
TEST_F(viommu_kvm, unknown_flags)
{
	static const __u32 bad[] = { 1U << 1, 1U << 31, ~0U,
				     VIOMMU_ALLOC_KVM_VM_FD | 1U << 1 };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(bad); i++)
		test_err_viommu_alloc_vm(EOPNOTSUPP, self->idev_id,
					 self->parent_id, bad[i], self->vm_fd);
	test_ioctl_destroy(self->parent_id);
}

/*
 * Rule: __reserved2 must be 0: EOPNOTSUPP with or without the flag. Fails
 * if the padding is ignored (it could never be given a meaning later).
 */
TEST_F(viommu_kvm, reserved2_nonzero)
{
	struct iommu_viommu_alloc_kvm cmd =
		viommu_req(VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);

	cmd.__reserved2 = 1;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	cmd = viommu_req(0, -1);
	cmd.__reserved2 = 0x80000000;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	test_ioctl_destroy(self->parent_id);
}

/*
 * Rule: the order of checks (docs/kernel-behaviour.md): flags/__reserved2
 * before the device (EOPNOTSUPP, not ENOENT), the device and the HWPT before
 * the VM fd (ENOENT, EINVAL, not EBADF). Fails if the checks are reordered.
 */
TEST_F(viommu_kvm, check_order)
{
	struct iommu_viommu_alloc_kvm cmd = viommu_req(1U << 1, -1);

	cmd.dev_id = 0;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	cmd = viommu_req(VIOMMU_ALLOC_KVM_VM_FD, -1);
	cmd.dev_id = 0;
	cmd.__reserved2 = 1;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	/* unknown device with a bad VM fd */
	test_err_viommu_alloc_kvm(ENOENT, 0, self->parent_id, -1);
	/* not a nest parent (the mock domain's HWPT) with a bad VM fd */
	test_err_viommu_alloc_kvm(EINVAL, self->idev_id, self->hwpt_id, -1);
	/* type DEFAULT with the flag and a good fd: EOPNOTSUPP as before */
	cmd = viommu_req(VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);
	cmd.type = IOMMU_VIOMMU_TYPE_DEFAULT;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
}

/* ------------------------------------------------ a VM from elsewhere */

/*
 * The child creates a VM, sends its fd over a UNIX socket (SCM_RIGHTS) with
 * its pid and the fd number (the VM's name "<pid>-<fd>"), and exits.
 */
struct vm_msg {
	pid_t pid;
	int fd;
};

static void child_send_vm(int sock)
{
	struct vm_msg msg = { .pid = getpid() };
	int kvm_fd, vm_fd;

	kvm_fd = kvm_open();
	if (kvm_fd < 0)
		_exit(1);
	vm_fd = ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (vm_fd < 0)
		_exit(2);
	msg.fd = vm_fd;
	if (send_fd(sock, vm_fd, &msg, sizeof(msg)))
		_exit(3);
	_exit(0);
}

/*
 * Rule: a VM fd received over a UNIX socket from another process (which
 * created the VM and exited) is a VM fd like any other: DEV_SET_VM, a
 * vIOMMU with the flag and VM_CHECK accept it; mixing it with the test's
 * own VM is EXDEV; and it dies exactly once when the last holder goes.
 * Fails if "is a VM" depends on the creating process.
 */
TEST_F(viommu_kvm, vm_fd_from_other_process)
{
	struct kvm_uevents ev = {};
	struct kvm_vm_id id;
	struct vm_msg msg;
	int sv[2], status, vm_fd, sock;
	__u32 viommu_id;
	pid_t child;

	/* The child's VM is not "ours" for self->log: its own socket. */
	sock = uevent_open();
	ASSERT_LE(0, sock) TH_LOG("uevent socket: %s", strerror(errno));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		close(sv[0]);
		child_send_vm(sv[1]);
	}
	close(sv[1]);
	vm_fd = recv_fd(sv[0], &msg, sizeof(msg));
	ASSERT_LE(0, vm_fd) TH_LOG("receiving the VM fd: %s", strerror(errno));
	close(sv[0]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child: status %#x", status);
	ASSERT_EQ(child, msg.pid);
	strfmt(id.name, sizeof(id.name), "%d-%d", msg.pid, msg.fd);
	strfmt(id.stats_path, sizeof(id.stats_path), "/kvm/%s", id.name);
	strfmt(id.debugfs, sizeof(id.debugfs), "%s/%s", KVM_DEBUGFS_DIR, id.name);
	ASSERT_TRUE(kvm_vm_debugfs_present(&id))
		TH_LOG("the child's VM %s is gone although we hold its fd", id.name);

	test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id, vm_fd,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, vm_fd, TEST_VM_SAME);
	test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_OTHER);
	test_cmd_dev_set_vm(self->idev_id, vm_fd);
	test_cmd_vm_check(self->idev_id, vm_fd, TEST_VM_SAME);
	test_err_viommu_alloc_kvm(EXDEV, self->idev_id, self->parent_id,
				  self->vm_fd);

	/* Held by the vIOMMU and the idev after the fd is closed... */
	close_fd(&vm_fd);
	ASSERT_EQ(0, kvm_uevents_read(sock, id.stats_path, false, &ev));
	ASSERT_EQ(0, ev.destroyed) TH_LOG("received VM destroyed while held");
	ASSERT_TRUE(kvm_vm_debugfs_present(&id));
	/* ...until both are gone: exactly one destroy. */
	test_ioctl_destroy(viommu_id);
	test_cmd_dev_set_vm(self->idev_id, -1);
	ASSERT_EQ(0, kvm_uevents_wait(sock, id.stats_path, false, &ev, 0, 1,
				      VM_DESTROY_TIMEOUT_MS));
	ASSERT_EQ(1, ev.destroyed)
		TH_LOG("received VM %s: %u destroy events", id.name, ev.destroyed);
	ASSERT_TRUE(kvm_vm_debugfs_wait_gone(&id, VM_DESTROY_TIMEOUT_MS));
	close(sock);
}

/* ------------------------------------------------ the VM outlives its fds */

FIXTURE(viommu_kvm_keepalive)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch vm;
	int vm_fd, vcpu_fd, kvm_vfio_fd, stats_fd;
	__u32 ioas_id, stdev_id, idev_id, parent_id, viommu_id;
};

/* How the vIOMMU, the VM's last holder, goes. */
FIXTURE_VARIANT(viommu_kvm_keepalive)
{
	bool close_iommufd;	/* close the iommufd instead of IOMMU_DESTROY */
	bool hold;		/* make the vIOMMU with the VM (false: without) */
};

/* Negative path: a vIOMMU without a VM must not keep it alive. */
FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, no_vm)
{
	.hold = false,
};

FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, destroy)
{
	.hold = true,
};

FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, close_iommufd)
{
	.hold = true,
	.close_iommufd = true,
};

FIXTURE_SETUP(viommu_kvm_keepalive)
{
	self->vcpu_fd = self->kvm_vfio_fd = self->stats_fd = -1;
	viommu_kvm_open_vm(self);
	/* Every other kind of handle KVM gives out for the VM. */
	test_kvm_create_vcpu(self->vm_fd, 0, &self->vcpu_fd);
	test_kvm_create_vfio_device(self->vm_fd, &self->kvm_vfio_fd);
	test_kvm_get_stats_fd(self->vm_fd, &self->stats_fd);

	test_mock_nest_parent(&self->ioas_id, &self->stdev_id, NULL,
			      &self->idev_id, &self->parent_id);
}

FIXTURE_TEARDOWN(viommu_kvm_keepalive)
{
	close_fd(&self->fd);
	close_fd(&self->vcpu_fd);
	close_fd(&self->kvm_vfio_fd);
	close_fd(&self->stats_fd);
	close_fd(&self->vm_fd);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/*
 * Rule: a vIOMMU made with the flag keeps its VM alive after the VM fd, the
 * vCPU, the KVM device and the stats fds (everything else) are closed, and
 * the VM is destroyed exactly once when the vIOMMU is destroyed
 * (IOMMU_DESTROY or iommufd close). Variant no_vm: a vIOMMU without a VM
 * must not delay the VM's end. Fails on a missing or an extra reference.
 */
TEST_F(viommu_kvm_keepalive, vm_outlives_its_fds)
{
	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id,
				 variant->hold ? VIOMMU_ALLOC_KVM_VM_FD : 0,
				 self->vm_fd, &self->viommu_id);
	/* No VM is created after this: no name clash with the live VM. */
	close_fd(&self->vcpu_fd);
	close_fd(&self->kvm_vfio_fd);
	close_fd(&self->stats_fd);
	close_fd(&self->vm_fd);
	if (!variant->hold) {
		vm_assert_destroyed(&self->log, &self->vm,
				    "vIOMMU without VM, all VM fds closed");
		test_cmd_vm_check(self->viommu_id, -1, TEST_VM_NONE);
		return;
	}
	vm_assert_alive(&self->log, &self->vm, "all VM fds closed, vIOMMU left");
	test_cmd_vm_check(self->viommu_id, -1, TEST_VM_OTHER);
	if (variant->close_iommufd)
		close_fd(&self->fd);
	else
		test_ioctl_destroy(self->viommu_id);
	vm_assert_destroyed(&self->log, &self->vm, "vIOMMU gone");
}

/* ------------------------------------------------------- bad VM fds */

enum fd_kind {
	FD_VM,		/* a VM fd: the positive control */
	FD_MINUS_ONE,
	FD_MINUS_TWO,
	FD_CLOSED,	/* a number that is not open */
	FD_EVENTFD,
	FD_DEV_KVM,	/* /dev/kvm itself */
	FD_VCPU,
	FD_KVM_DEVICE,	/* KVM_CREATE_DEVICE(VFIO) */
	FD_VM_STATS,	/* KVM_GET_STATS_FD of the VM */
	FD_IOMMUFD,	/* the iommufd itself */
};

FIXTURE(viommu_kvm_fd)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch vm;
	int vm_fd, other_fd;	/* other_fd: the variant's fd if it is open */
	int test_fd;		/* the number passed as VM fd */
	__u32 ioas_id, stdev_id, idev_id, parent_id;
};

/*
 * Which fd is passed as VM fd, and what each op answers: IOMMU_VIOMMU_ALLOC
 * with the flag, DEV_SET_VM (-1 there means "clear": fine) and VM_CHECK
 * (-1 there means "no VM to compare": fine).
 */
FIXTURE_VARIANT(viommu_kvm_fd)
{
	enum fd_kind kind;
	int viommu_errno;
	int set_vm_errno;
	int check_errno;
};

FIXTURE_VARIANT_ADD(viommu_kvm_fd, vm)
{
	.kind = FD_VM,
};

FIXTURE_VARIANT_ADD(viommu_kvm_fd, minus_one)
{
	.kind = FD_MINUS_ONE,
	.viommu_errno = EBADF,
};

/* Not a VM fd at all: EBADF from every op. */
#define VARIANT_NOT_A_VM_FD(name, kind_)                                     \
	FIXTURE_VARIANT_ADD(viommu_kvm_fd, name)                             \
	{                                                                    \
		.kind = (kind_),                                             \
		.viommu_errno = EBADF,                                       \
		.set_vm_errno = EBADF,                                       \
		.check_errno = EBADF,                                        \
	}

VARIANT_NOT_A_VM_FD(minus_two, FD_MINUS_TWO);
VARIANT_NOT_A_VM_FD(closed, FD_CLOSED);
VARIANT_NOT_A_VM_FD(eventfd, FD_EVENTFD);
VARIANT_NOT_A_VM_FD(dev_kvm, FD_DEV_KVM);
VARIANT_NOT_A_VM_FD(vcpu, FD_VCPU);
VARIANT_NOT_A_VM_FD(kvm_device, FD_KVM_DEVICE);
VARIANT_NOT_A_VM_FD(vm_stats, FD_VM_STATS);
VARIANT_NOT_A_VM_FD(iommufd, FD_IOMMUFD);

FIXTURE_SETUP(viommu_kvm_fd)
{
	self->other_fd = -1;
	viommu_kvm_open_vm(self);
	test_mock_nest_parent(&self->ioas_id, &self->stdev_id, NULL,
			      &self->idev_id, &self->parent_id);

	switch (variant->kind) {
	case FD_VM:
		self->test_fd = self->vm_fd;
		break;
	case FD_MINUS_ONE:
		self->test_fd = -1;
		break;
	case FD_MINUS_TWO:
		self->test_fd = -2;
		break;
	case FD_CLOSED:
		self->test_fd = closed_fd_number();
		ASSERT_LE(0, self->test_fd);
		break;
	case FD_EVENTFD:
		self->other_fd = eventfd(0, EFD_CLOEXEC);
		break;
	case FD_DEV_KVM:
		self->other_fd = kvm_open();
		break;
	case FD_VCPU:
		test_kvm_create_vcpu(self->vm_fd, 0, &self->other_fd);
		break;
	case FD_KVM_DEVICE:
		test_kvm_create_vfio_device(self->vm_fd, &self->other_fd);
		break;
	case FD_VM_STATS:
		test_kvm_get_stats_fd(self->vm_fd, &self->other_fd);
		break;
	case FD_IOMMUFD:
		self->test_fd = self->fd;
		break;
	}
	if (variant->kind >= FD_EVENTFD && variant->kind <= FD_VM_STATS) {
		ASSERT_LE(0, self->other_fd) TH_LOG("%s", strerror(errno));
		self->test_fd = self->other_fd;
	}
}

FIXTURE_TEARDOWN(viommu_kvm_fd)
{
	close_fd(&self->fd);
	close_fd(&self->other_fd);
	close_fd(&self->vm_fd);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/*
 * Rule: every entry point taking a VM fd classifies the fd the same way:
 * - IOMMU_VIOMMU_ALLOC with the flag: kvm_vm_fd must be an open KVM VM fd;
 *   anything else (-1, -2, a closed number, an eventfd, /dev/kvm, a vCPU, a
 *   KVM device, the VM's stats fd, the iommufd) is EBADF and makes nothing;
 * - DEV_SET_VM: a VM fd or -1 (clear); anything else EBADF, and the
 *   device keeps the VM it had;
 * - VM_CHECK: a VM fd or -1; anything else EBADF.
 * Variant vm is the positive control. (One test per fd kind, not one per
 * entry point: each needs a VM, ~0.1 s under TCG.) Fails if a non-VM file
 * is taken for a VM, or an error path loses the device's VM.
 */
TEST_F(viommu_kvm_fd, classified_as_vm_fd)
{
	__u32 viommu_id;

	/* IOMMU_VIOMMU_ALLOC */
	if (!variant->viommu_errno) {
		test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id,
					  self->test_fd, &viommu_id);
		test_cmd_vm_check(viommu_id, self->vm_fd, TEST_VM_SAME);
		test_ioctl_destroy(viommu_id);
	} else {
		test_err_viommu_alloc_kvm(variant->viommu_errno, self->idev_id,
					  self->parent_id, self->test_fd);
	}
	/* Nothing is left: nothing pins the parent. */
	test_ioctl_destroy(self->parent_id);

	/* DEV_SET_VM, over the VM the device has */
	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	if (!variant->set_vm_errno) {
		test_cmd_dev_set_vm(self->idev_id, self->test_fd);
		test_cmd_vm_check(self->idev_id, self->vm_fd,
				  self->test_fd == -1 ? TEST_VM_NONE :
				  TEST_VM_SAME);
	} else {
		test_err_dev_set_vm(variant->set_vm_errno, self->idev_id,
				    self->test_fd);
		test_cmd_vm_check(self->idev_id, self->vm_fd, TEST_VM_SAME);
	}

	/* VM_CHECK */
	test_cmd_dev_set_vm(self->idev_id, self->vm_fd);
	if (!variant->check_errno)
		test_cmd_vm_check(self->idev_id, self->test_fd,
				  self->test_fd == -1 ? TEST_VM_OTHER :
				  TEST_VM_SAME);
	else
		test_err_vm_check(variant->check_errno, self->idev_id,
				  self->test_fd);
}

TEST_HARNESS_MAIN
