// SPDX-License-Identifier: GPL-2.0-only
/*
 * A device's VM and IOMMU_VIOMMU_ALLOC with a KVM VM fd (docs/kernel-behaviour.md
 * "iommufd uAPI additions"; series v2): a mock device gets its VM when it is
 * created (MOCK_FLAGS_DEVICE_KVM_VM, as VFIO binds a device with its VM) and
 * never changes it; a vIOMMU always holds its device's VM; the flag makes
 * kvm_vm_fd an assertion that must name that VM: EBADF (not an open fd),
 * EBADFD (the device has a VM, the fd is not a VM), EINVAL (the device has
 * no VM, or the fd is another VM). Also: a VM fd from another process, the
 * struct sizes old and new, unknown flags and reserved bits, the order of
 * the checks, and the VM kept alive by the device and the vIOMMU after
 * every fd of it is closed.
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
 * Whether the series' uAPI and its mock hook are there at all, so that the
 * feature disappearing cannot hide behind the SKIPs of every other test
 * (they skip when it is absent).
 */
FIXTURE(viommu_uapi)
{
	int fd;
};

FIXTURE_SETUP(viommu_uapi)
{
	iommufd_open_or_skip(self->fd);
}

FIXTURE_TEARDOWN(viommu_uapi)
{
	close_fd(&self->fd);
}

/*
 * Rule: IOMMU_VIOMMU_ALLOC knows IOMMU_VIOMMU_ALLOC_KVM_VM_FD: with the flag
 * and dev_id 0 it gets past the flags check to the device lookup (ENOENT).
 * Fails on a kernel that refuses the flag (EOPNOTSUPP: 7.3). No SKIP: this
 * is the feature itself, not a test hook.
 */
TEST_F(viommu_uapi, kvm_flag_known)
{
	ASSERT_EQ(1, viommu_kvm_flag_supported(self->fd))
		TH_LOG("IOMMU_VIOMMU_ALLOC(KVM_VM_FD, dev_id 0): %s, expected ENOENT",
		       strerror(errno));
}

/*
 * Rule: the mock has IOMMU_TEST_OP_VM_CHECK: id 0 is ENOENT, not an unknown
 * op. It is a test hook (CONFIG_IOMMUFD_TEST): absent (no mock, or
 * EOPNOTSUPP: 7.3) means "not checkable here" (SKIP) unless
 * $VFIO_KVM_REQUIRE names mock-vm-ops (the kernel was built to have it:
 * FAIL); any other answer is a broken hook (FAIL).
 */
TEST_F(viommu_uapi, mock_vm_ops_known)
{
	int ret = iommufd_test_available(self->fd);

	ASSERT_LE(0, ret) TH_LOG("IOMMU_TEST_CMD probe: %s", strerror(errno));
	if (!ret)
		feature_absent("mock-vm-ops", "no iommufd mock (CONFIG_IOMMUFD_TEST)");
	ret = mock_vm_ops_supported(self->fd);
	ASSERT_LE(0, ret)
		TH_LOG("IOMMU_TEST_OP_VM_CHECK(0): %s, expected ENOENT (or EOPNOTSUPP: absent)",
		       strerror(errno));
	if (!ret)
		feature_absent("mock-vm-ops",
			       "the iommufd mock answers IOMMU_TEST_OP_VM_CHECK with EOPNOTSUPP");
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
 * A VM ("A", watched), an IOAS, a mock device bound with VM A (idev_id, as
 * VFIO binds a device with its VM), a mock device bound with none
 * (none_idev_id) and a nest-parent HWPT for vIOMMUs.
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
	__u32 hwpt_id;		/* the VM-less device's automatic domain */
	__u32 idev_id;
	__u32 none_stdev_id;
	__u32 none_idev_id;
	__u32 parent_id;
};

FIXTURE_SETUP(viommu_kvm)
{
	viommu_kvm_open_vm(self);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain_vm(self->ioas_id, self->vm_fd, &self->stdev_id,
				&self->idev_id);
	test_cmd_mock_domain(self->ioas_id, &self->none_stdev_id,
			     &self->hwpt_id, &self->none_idev_id);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
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
 * Rule: a mock device made with MOCK_FLAGS_DEVICE_KVM_VM holds the VM of
 * kvm_vm_fd from its creation (VM_CHECK SAME, OTHER against another VM and
 * against -1); one made without holds none. Fails if the device's VM is
 * not taken at creation.
 */
TEST_F(viommu_kvm, device_vm_at_creation)
{
	test_cmd_vm_check(self->idev_id, self->vm_fd, MOCK_VM_SAME);
	test_cmd_vm_check(self->idev_id, -1, MOCK_VM_OTHER);
	test_cmd_vm_check(self->none_idev_id, self->vm_fd, MOCK_VM_NONE);
}

/*
 * Rule: with the flag naming the device's VM the vIOMMU is made and holds
 * that VM (SAME; OTHER against another VM). Fails if the matching VM is
 * refused or not held.
 */
TEST_F(viommu_kvm, flag_names_device_vm)
{
	struct vm_watch wb;
	__u32 viommu_id;
	int vm_b = -1;

	create_vm_b(&vm_b, &wb);
	test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id, self->vm_fd,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
	test_cmd_vm_check(viommu_id, vm_b, MOCK_VM_OTHER);
	close_fd(&vm_b);
	vm_assert_destroyed(&self->log, &wb, "VM B, never used");
}

/*
 * Rule: "the device's VM" is the VM file, not the fd number: a dup() of
 * the VM fd names it too. Fails if fd numbers are compared.
 */
TEST_F(viommu_kvm, flag_names_device_vm_by_dup)
{
	int dup_fd = dup(self->vm_fd);
	__u32 viommu_id;

	ASSERT_LE(0, dup_fd);
	test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id, dup_fd,
				  &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
	close_fd(&dup_fd);
}

/*
 * Rule: without the flag kvm_vm_fd is not read, whatever it holds (here
 * another VM, then garbage): the vIOMMU takes the device's VM. Fails if
 * the field is read without the flag.
 */
TEST_F(viommu_kvm, flag_absent_ignores_fd)
{
	struct vm_watch wb;
	__u32 viommu_id[2];
	int vm_b = -1;

	create_vm_b(&vm_b, &wb);
	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, vm_b,
				 &viommu_id[0]);
	test_cmd_vm_check(viommu_id[0], self->vm_fd, MOCK_VM_SAME);
	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, -12345,
				 &viommu_id[1]);
	test_cmd_vm_check(viommu_id[1], self->vm_fd, MOCK_VM_SAME);
	close_fd(&vm_b);
	vm_assert_destroyed(&self->log, &wb, "VM B, ignored without the flag");
}

/*
 * Rule: without the flag the vIOMMU takes its device's VM: A for the
 * device bound with A. Fails if it takes none.
 */
TEST_F(viommu_kvm, flag_absent_takes_device_vm)
{
	__u32 viommu_id;

	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, -1,
				 &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
}

/*
 * Rule: without the flag a vIOMMU of a device without a VM holds none
 * (NONE), even with a VM fd in kvm_vm_fd. Fails if a VM is invented.
 */
TEST_F(viommu_kvm, flag_absent_device_without_vm)
{
	__u32 viommu_id;

	test_cmd_viommu_alloc_vm(self->none_idev_id, self->parent_id, 0,
				 self->vm_fd, &viommu_id);
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_NONE);
}

/*
 * Rule: the vIOMMU's VM is its own reference: with its device destroyed
 * (the idev's reference dropped) the vIOMMU still holds the VM. Fails if
 * the vIOMMU only borrowed the idev's file.
 */
TEST_F(viommu_kvm, viommu_vm_is_own_reference)
{
	__u32 viommu_id;

	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id, 0, -1,
				 &viommu_id);
	test_ioctl_destroy(self->stdev_id);
	test_err_vm_check(ENOENT, self->idev_id, self->vm_fd);
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
}

/*
 * Rule (the headline): the device is VM A's, kvm_vm_fd names VM B: EINVAL,
 * no vIOMMU, the device keeps A, and no reference on B is left (B dies
 * when its fd closes). Fails if VMs are mixed, or B leaks.
 */
TEST_F(viommu_kvm, vm_mismatched)
{
	struct vm_watch wb;
	int vm_b = -1;

	create_vm_b(&vm_b, &wb);
	test_err_viommu_alloc_kvm(EINVAL, self->idev_id, self->parent_id, vm_b);
	test_cmd_vm_check(self->idev_id, self->vm_fd, MOCK_VM_SAME);
	/* Nothing was made: the parent has no vIOMMU pinning it. */
	test_ioctl_destroy(self->parent_id);
	close_fd(&vm_b);
	vm_assert_destroyed(&self->log, &wb, "VM B after EINVAL");
}

/*
 * Rule: a device without a VM has none to name: the flag with a VM fd is
 * EINVAL (v1 let the named VM in), and nothing is made. Fails if a
 * VM-less device gets a VM-bound vIOMMU.
 */
TEST_F(viommu_kvm, device_without_vm_refuses_flag)
{
	test_err_viommu_alloc_kvm(EINVAL, self->none_idev_id, self->parent_id,
				  self->vm_fd);
	test_ioctl_destroy(self->parent_id);
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

	ASSERT_EQ(0, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
						  VIOMMU_ALLOC_SIZE_7_3, 0,
						  &viommu_id))
		TH_LOG("IOMMU_VIOMMU_ALLOC(size %d): %s", VIOMMU_ALLOC_SIZE_7_3,
		       strerror(errno));
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
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
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
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
		viommu_req(IOMMU_VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);
	__u32 viommu_id;

	ASSERT_EQ(0, _test_cmd_viommu_alloc_sized(self->fd, &cmd, 128, 0,
						  &viommu_id))
		TH_LOG("IOMMU_VIOMMU_ALLOC(size 128, zero tail): %s",
		       strerror(errno));
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
}

/*
 * Rule: a size larger than the kernel's struct with a non-zero byte beyond
 * it is E2BIG (first byte past the struct, and the last byte), and nothing
 * is made. Fails if unknown trailing fields are silently ignored.
 */
TEST_F(viommu_kvm, size_larger_nonzero_tail)
{
	struct iommu_viommu_alloc_kvm cmd =
		viommu_req(IOMMU_VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);

	EXPECT_ERRNO(E2BIG, _test_cmd_viommu_alloc_sized(self->fd, &cmd,
					VIOMMU_ALLOC_SIZE_KVM + 8, 0xff, NULL));
	cmd = viommu_req(IOMMU_VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);
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
				     IOMMU_VIOMMU_ALLOC_KVM_VM_FD | 1U << 1 };
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
		viommu_req(IOMMU_VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);

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
 * the VM fd (ENOENT, EINVAL, not EBADF); then of kvm_vm_fd: an open fd
 * (EBADF) before "the device has a VM" (EINVAL) before "it is a VM"
 * (EBADFD) before "it is the device's VM" (EINVAL). Fails if the checks
 * are reordered.
 */
TEST_F(viommu_kvm, check_order)
{
	struct iommu_viommu_alloc_kvm cmd = viommu_req(1U << 1, -1);
	int efd;

	cmd.dev_id = 0;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	cmd = viommu_req(IOMMU_VIOMMU_ALLOC_KVM_VM_FD, -1);
	cmd.dev_id = 0;
	cmd.__reserved2 = 1;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	/* unknown device with a bad VM fd */
	test_err_viommu_alloc_kvm(ENOENT, 0, self->parent_id, -1);
	/* not a nest parent (an automatic domain) with a bad VM fd */
	test_err_viommu_alloc_kvm(EINVAL, self->idev_id, self->hwpt_id, -1);
	/* type DEFAULT with the flag and a good fd: EOPNOTSUPP as before */
	cmd = viommu_req(IOMMU_VIOMMU_ALLOC_KVM_VM_FD, self->vm_fd);
	cmd.type = IOMMU_VIOMMU_TYPE_DEFAULT;
	test_err_viommu_req(EOPNOTSUPP, &cmd);
	/* a device without a VM: a closed fd is EBADF, an open one EINVAL */
	test_err_viommu_alloc_kvm(EBADF, self->none_idev_id, self->parent_id, -1);
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_LE(0, efd);
	test_err_viommu_alloc_kvm(EINVAL, self->none_idev_id, self->parent_id,
				  efd);
	/* a device with a VM: not a VM is EBADFD */
	test_err_viommu_alloc_kvm(EBADFD, self->idev_id, self->parent_id, efd);
	close_fd(&efd);
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
 * created the VM and exited) is a VM fd like any other: a device bound with
 * it holds it, a vIOMMU with the flag naming it is made, naming the test's
 * own VM instead is EINVAL; and it dies exactly once when the last holder
 * goes. Fails if "is a VM" depends on the creating process.
 */
TEST_F(viommu_kvm, vm_fd_from_other_process)
{
	struct kvm_uevents ev = {};
	struct kvm_vm_id id;
	struct vm_msg msg;
	int sv[2], status, vm_fd, sock;
	__u32 viommu_id, stdev_id, idev_id;
	pid_t child;

	/* The child's VM is not "ours" for self->log: its own socket. */
	sock = uevent_open();
	ASSERT_LE(0, sock) TH_LOG("uevent socket: %s", strerror(errno));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv));
	child = fork();
	ASSERT_LE(0, child);
	if (!child) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		child_send_vm(sv[1]);
	}
	close(sv[1]);
	vm_fd = recv_fd(sv[0], &msg, sizeof(msg));
	close(sv[0]);
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_LE(0, vm_fd) TH_LOG("receiving the VM fd: %s", strerror(errno));
	ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
		TH_LOG("child: status %#x", status);
	ASSERT_EQ(child, msg.pid);
	strfmt(id.name, sizeof(id.name), "%d-%d", msg.pid, msg.fd);
	strfmt(id.stats_path, sizeof(id.stats_path), "/kvm/%s", id.name);
	strfmt(id.debugfs, sizeof(id.debugfs), "%s/%s", KVM_DEBUGFS_DIR, id.name);
	ASSERT_TRUE(kvm_vm_debugfs_present(&id))
		TH_LOG("the child's VM %s is gone although we hold its fd", id.name);

	test_cmd_mock_domain_vm(self->ioas_id, vm_fd, &stdev_id, &idev_id);
	test_cmd_vm_check(idev_id, vm_fd, MOCK_VM_SAME);
	test_cmd_viommu_alloc_kvm(idev_id, self->parent_id, vm_fd, &viommu_id);
	test_cmd_vm_check(viommu_id, vm_fd, MOCK_VM_SAME);
	test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_OTHER);
	test_err_viommu_alloc_kvm(EINVAL, idev_id, self->parent_id,
				  self->vm_fd);

	/* Held by the vIOMMU and the idev after the fd is closed... */
	close_fd(&vm_fd);
	ASSERT_EQ(0, kvm_uevents_read(sock, id.stats_path, false, &ev));
	ASSERT_EQ(0, ev.destroyed) TH_LOG("received VM destroyed while held");
	ASSERT_TRUE(kvm_vm_debugfs_present(&id));
	/* ...until both are gone: exactly one destroy. */
	test_ioctl_destroy(viommu_id);
	test_ioctl_destroy(stdev_id);
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

/* Who holds the VM, and how the last holder goes. */
enum keepalive_last {
	LAST_NONE,		/* nothing in iommufd holds the VM */
	LAST_VIOMMU,		/* the device goes first, then the vIOMMU */
	LAST_DEVICE,		/* the vIOMMU goes first, then the device */
	LAST_IOMMUFD,		/* both go with the iommufd's close */
};

FIXTURE_VARIANT(viommu_kvm_keepalive)
{
	enum keepalive_last last;
};

/* Negative path: a device and a vIOMMU without a VM must not keep it. */
FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, no_vm)
{
	.last = LAST_NONE,
};

FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, viommu_last)
{
	.last = LAST_VIOMMU,
};

FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, device_last)
{
	.last = LAST_DEVICE,
};

FIXTURE_VARIANT_ADD(viommu_kvm_keepalive, close_iommufd)
{
	.last = LAST_IOMMUFD,
};

FIXTURE_SETUP(viommu_kvm_keepalive)
{
	self->vcpu_fd = self->kvm_vfio_fd = self->stats_fd = -1;
	viommu_kvm_open_vm(self);
	/* Every other kind of handle KVM gives out for the VM. */
	test_kvm_create_vcpu(self->vm_fd, 0, &self->vcpu_fd);
	test_kvm_create_vfio_device(self->vm_fd, &self->kvm_vfio_fd);
	test_kvm_get_stats_fd(self->vm_fd, &self->stats_fd);

	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_dev_vm(self->ioas_id, 0,
			     variant->last == LAST_NONE ? MOCK_NO_VM :
			     self->vm_fd, &self->stdev_id, &self->idev_id);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);
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
 * Rule: a device bound with a VM and its vIOMMU (made with the flag) each
 * keep the VM alive after the VM fd, the vCPU, the KVM device and the
 * stats fds (everything else) are closed; the VM is destroyed exactly once
 * when the last of them goes (IOMMU_DESTROY of each, either first, or the
 * iommufd's close). Variant no_vm: a device and a vIOMMU without a VM must
 * not delay the VM's end. Fails on a missing or an extra reference.
 */
TEST_F(viommu_kvm_keepalive, vm_outlives_its_fds)
{
	bool hold = variant->last != LAST_NONE;

	test_cmd_viommu_alloc_vm(self->idev_id, self->parent_id,
				 hold ? IOMMU_VIOMMU_ALLOC_KVM_VM_FD : 0,
				 self->vm_fd, &self->viommu_id);
	/* No VM is created after this: no name clash with the live VM. */
	close_fd(&self->vcpu_fd);
	close_fd(&self->kvm_vfio_fd);
	close_fd(&self->stats_fd);
	close_fd(&self->vm_fd);
	if (!hold) {
		vm_assert_destroyed(&self->log, &self->vm,
				    "device and vIOMMU without VM, all VM fds closed");
		test_cmd_vm_check(self->viommu_id, -1, MOCK_VM_NONE);
		return;
	}
	vm_assert_alive(&self->log, &self->vm,
			"all VM fds closed, device and vIOMMU left");
	test_cmd_vm_check(self->viommu_id, -1, MOCK_VM_OTHER);
	test_cmd_vm_check(self->idev_id, -1, MOCK_VM_OTHER);
	switch (variant->last) {
	case LAST_VIOMMU:
		test_ioctl_destroy(self->stdev_id);
		vm_assert_alive(&self->log, &self->vm, "device gone, vIOMMU left");
		test_ioctl_destroy(self->viommu_id);
		break;
	case LAST_DEVICE:
		test_ioctl_destroy(self->viommu_id);
		vm_assert_alive(&self->log, &self->vm, "vIOMMU gone, device left");
		test_ioctl_destroy(self->stdev_id);
		break;
	default:
		close_fd(&self->fd);
		break;
	}
	vm_assert_destroyed(&self->log, &self->vm, "device and vIOMMU gone");
}

/* ------------------------------------------------------- bad VM fds */

enum fd_kind {
	FD_VM,		/* the device's VM fd: the positive control */
	FD_VM_DUP,	/* a dup() of it */
	FD_OTHER_VM,	/* another VM */
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
	struct vm_watch vm, wb;
	int vm_fd, other_fd;	/* other_fd: the variant's fd if it is open */
	int test_fd;		/* the number passed as VM fd */
	__u32 ioas_id, stdev_id, idev_id, none_idev_id, parent_id;
};

/*
 * Which fd is passed as VM fd, and what each op answers:
 * - IOMMU_VIOMMU_ALLOC with the flag, on the device bound with VM A
 *   (viommu_errno) and on a device without a VM (none_errno);
 * - the mock's device creation with MOCK_FLAGS_DEVICE_KVM_VM (the mock
 *   takes any open file as "the VM": only a closed number is EBADF);
 * - VM_CHECK of the device of VM A (-1 means "nothing to compare": OTHER).
 */
FIXTURE_VARIANT(viommu_kvm_fd)
{
	enum fd_kind kind;
	int viommu_errno;
	int none_errno;
	bool open;		/* an open fd: the mock and VM_CHECK take it */
	bool same;		/* VM_CHECK of the device of VM A: SAME */
};

FIXTURE_VARIANT_ADD(viommu_kvm_fd, vm)
{
	.kind = FD_VM, .none_errno = EINVAL, .open = true, .same = true,
};

FIXTURE_VARIANT_ADD(viommu_kvm_fd, vm_dup)
{
	.kind = FD_VM_DUP, .none_errno = EINVAL, .open = true, .same = true,
};

FIXTURE_VARIANT_ADD(viommu_kvm_fd, other_vm)
{
	.kind = FD_OTHER_VM, .viommu_errno = EINVAL, .none_errno = EINVAL,
	.open = true,
};

/* Not an open fd: EBADF from every op (VM_CHECK takes -1: no VM). */
#define VARIANT_NOT_OPEN(name, kind_)                                        \
	FIXTURE_VARIANT_ADD(viommu_kvm_fd, name)                             \
	{                                                                    \
		.kind = (kind_), .viommu_errno = EBADF, .none_errno = EBADF, \
	}

VARIANT_NOT_OPEN(minus_one, FD_MINUS_ONE);
VARIANT_NOT_OPEN(minus_two, FD_MINUS_TWO);
VARIANT_NOT_OPEN(closed, FD_CLOSED);

/*
 * An open fd that is not a VM: EBADFD against a device with a VM, EINVAL
 * against one without (it has no VM to compare the fd with).
 */
#define VARIANT_NOT_A_VM(name, kind_)                                        \
	FIXTURE_VARIANT_ADD(viommu_kvm_fd, name)                             \
	{                                                                    \
		.kind = (kind_), .viommu_errno = EBADFD,                     \
		.none_errno = EINVAL, .open = true,                          \
	}

VARIANT_NOT_A_VM(eventfd, FD_EVENTFD);
VARIANT_NOT_A_VM(dev_kvm, FD_DEV_KVM);
VARIANT_NOT_A_VM(vcpu, FD_VCPU);
VARIANT_NOT_A_VM(kvm_device, FD_KVM_DEVICE);
VARIANT_NOT_A_VM(vm_stats, FD_VM_STATS);
VARIANT_NOT_A_VM(iommufd, FD_IOMMUFD);

FIXTURE_SETUP(viommu_kvm_fd)
{
	self->other_fd = -1;
	viommu_kvm_open_vm(self);
	test_ioctl_ioas_alloc(&self->ioas_id);
	test_cmd_mock_domain_vm(self->ioas_id, self->vm_fd, &self->stdev_id,
				&self->idev_id);
	test_cmd_mock_domain(self->ioas_id, NULL, NULL, &self->none_idev_id);
	test_cmd_hwpt_alloc(self->idev_id, self->ioas_id,
			    IOMMU_HWPT_ALLOC_NEST_PARENT, &self->parent_id);

	switch (variant->kind) {
	case FD_VM:
		self->test_fd = self->vm_fd;
		break;
	case FD_VM_DUP:
		self->other_fd = dup(self->vm_fd);
		break;
	case FD_OTHER_VM:
		test_vm_create_watched(self->kvm_fd, &self->log, 1, &self->wb,
				       &self->other_fd);
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
	if (variant->kind == FD_VM_DUP || variant->kind == FD_OTHER_VM ||
	    (variant->kind >= FD_EVENTFD && variant->kind <= FD_VM_STATS)) {
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
 * Rule: IOMMU_VIOMMU_ALLOC with the flag, on a device bound with VM A:
 * kvm_vm_fd must be an fd of VM A; not an open fd is EBADF, an open fd
 * that is not a VM (an eventfd, /dev/kvm, a vCPU, a KVM device, the VM's
 * stats fd, the iommufd) EBADFD, another VM EINVAL; nothing is made then.
 * Variants vm, vm_dup are the positive controls. Fails if a non-VM file
 * is taken for a VM or errnos are swapped.
 */
TEST_F(viommu_kvm_fd, viommu_alloc_device_with_vm)
{
	__u32 viommu_id;

	if (!variant->viommu_errno) {
		test_cmd_viommu_alloc_kvm(self->idev_id, self->parent_id,
					  self->test_fd, &viommu_id);
		test_cmd_vm_check(viommu_id, self->vm_fd, MOCK_VM_SAME);
		test_ioctl_destroy(viommu_id);
	} else {
		test_err_viommu_alloc_kvm(variant->viommu_errno, self->idev_id,
					  self->parent_id, self->test_fd);
	}
	/* Nothing is left: nothing pins the parent. */
	test_ioctl_destroy(self->parent_id);
}

/*
 * Rule: IOMMU_VIOMMU_ALLOC with the flag on a device without a VM: EBADF
 * if kvm_vm_fd is not an open fd, else EINVAL whatever it is (a VM
 * included: the device has none to name). Fails if a VM-less device gets
 * a VM-bound vIOMMU.
 */
TEST_F(viommu_kvm_fd, viommu_alloc_device_without_vm)
{
	test_err_viommu_alloc_kvm(variant->none_errno, self->none_idev_id,
				  self->parent_id, self->test_fd);
	test_ioctl_destroy(self->parent_id);
}

/*
 * Rule: the mock's device creation with MOCK_FLAGS_DEVICE_KVM_VM takes any
 * open file as the device's VM (it stands in for VFIO, which only passes
 * VM files) and holds that file; not an open fd is EBADF and makes no
 * device. Fails if a closed fd makes a device, or the file is not held.
 */
TEST_F(viommu_kvm_fd, mock_device_vm_fd)
{
	__u32 stdev_id, idev_id;

	if (!variant->open) {
		test_err_mock_domain_vm(EBADF, self->ioas_id, self->test_fd);
		return;
	}
	test_cmd_mock_domain_vm(self->ioas_id, self->test_fd, &stdev_id,
				&idev_id);
	test_cmd_vm_check(idev_id, self->test_fd, MOCK_VM_SAME);
	test_ioctl_destroy(stdev_id);
}

/*
 * Rule: VM_CHECK compares with the file of vm_fd: SAME for the device's
 * VM (any fd of it), OTHER for any other open file and for -1; EBADF for
 * a number that is not open (other than -1). Fails if fd numbers are
 * compared or a bad fd is taken.
 */
TEST_F(viommu_kvm_fd, vm_check_fd)
{
	if (variant->open || self->test_fd == -1)
		test_cmd_vm_check(self->idev_id, self->test_fd,
				  variant->same ? MOCK_VM_SAME : MOCK_VM_OTHER);
	else
		test_err_vm_check(EBADF, self->idev_id, self->test_fd);
}

TEST_HARNESS_MAIN
