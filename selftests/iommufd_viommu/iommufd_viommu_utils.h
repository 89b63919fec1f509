/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * iommufd wrappers for the iommufd_viommu selftests, in the style of
 * selftests/iommu/iommufd_utils.h: _test_cmd_x() raw, test_cmd_x() asserts
 * success, test_err_x() asserts an errno; the macros work on self->fd (the
 * fixture's iommufd), like upstream's. The raw functions take the iommufd
 * explicitly, for tests with two of them.
 *
 * KVM, VM-lifetime oracles, VFIO discovery and the kernel-log oracle come
 * from ../vm_file_lib/vm_file_utils.h (one copy for both suites). The mock-device uAPI
 * (IOMMU_TEST_CMD, IOMMU_VIOMMU_TYPE_SELFTEST) is the kernel tree's own
 * drivers/iommu/iommufd/iommufd_test.h, found through -I in the Makefile.
 *
 * The series' uAPI (IOMMU_VIOMMU_ALLOC's kvm_vm_fd, the mock's
 * MOCK_FLAGS_DEVICE_KVM_VM and VM_CHECK) comes from the tree's headers;
 * viommu_uapi.h defines the minimum only for a tree without it (plain 7.3),
 * where the new-feature tests then SKIP (or fail, for the few that assert
 * the feature is there: see README).
 */
#ifndef __SELFTEST_IOMMUFD_VIOMMU_UTILS_H
#define __SELFTEST_IOMMUFD_VIOMMU_UTILS_H

#include <assert.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "vm_file_utils.h"
#include "iommufd_test.h"
#include "viommu_uapi.h"

static inline const char *vm_state_str(__u32 state)
{
	switch (state) {
	case MOCK_VM_NONE:
		return "NONE";
	case MOCK_VM_SAME:
		return "SAME";
	case MOCK_VM_OTHER:
		return "OTHER";
	}
	return "?";
}

/* ------------------------------------------------------ mock detection */

/*
 * Is the mock (CONFIG_IOMMUFD_TEST) there? IOMMU_TEST_CMD is only in the
 * ioctl table when it is; otherwise the ioctl is ENOTTY. The probe is a
 * zero-length MD_CHECK_REFS, which checks nothing and returns 0.
 * Returns 1, 0 (ENOTTY) or -1 (anything else: a real failure).
 */
static inline int iommufd_test_available(int fd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_REFS,
	};

	if (!ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return 1;
	return errno == ENOTTY ? 0 : -1;
}

/*
 * Does IOMMU_VIOMMU_ALLOC know IOMMU_VIOMMU_ALLOC_KVM_VM_FD? Flags are checked
 * before the device: the series answers dev_id 0 with ENOENT, 7.3 refuses the
 * flag with EOPNOTSUPP. (kvm_vm_fd 0 and __reserved2 0: to 7.3 the bytes
 * beyond its 40-byte struct are a zero tail, not E2BIG.) Returns 1, 0 or -1
 * (another answer).
 */
static inline int viommu_kvm_flag_supported(int fd)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_VIOMMU_ALLOC_KVM_VM_FD,
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
	};

	if (!ioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd))
		return -1;
	if (errno == ENOENT)
		return 1;
	return errno == EOPNOTSUPP ? 0 : -1;
}

/*
 * Does the mock have IOMMU_TEST_OP_VM_CHECK? The series answers id 0 with
 * ENOENT; 7.3 answers an unknown op with EOPNOTSUPP. Returns 1, 0 or -1.
 */
static inline int mock_vm_ops_supported(int fd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_VM_CHECK,
	};

	mock_cmd_vm_check(&cmd)->vm_fd = -1;
	if (!ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return -1;
	if (errno == ENOENT)
		return 1;
	return errno == EOPNOTSUPP ? 0 : -1;
}

#define SKIP_REASON_BASE \
	"base kernel without the feature (IOMMU_VIOMMU_ALLOC_KVM_VM_FD and the mock's IOMMU_TEST_OP_VM_CHECK are EOPNOTSUPP)"

/*
 * Everything the vIOMMU-KVM tests need: /dev/kvm, /dev/iommu, the mock, the
 * KVM flag and the mock's VM ops, KVM's debugfs and uevents. Opens @kvm_fd,
 * @iommufd (either may be NULL: not needed) and @log (may be NULL; its
 * socket is -1 unless this succeeds).
 * Returns NULL, or why the tests cannot run (the fds are closed again then);
 * a real failure (an answer no kernel gives) is reported as "FAIL: ...".
 */
static inline const char *viommu_kvm_prereq(int *kvm_fd, int *iommufd,
					     struct uevent_log *log)
{
	static char why[256];
	int kfd = -1, ifd = -1, ret;

	why[0] = 0;
	kfd = kvm_open();
	if (kfd < 0) {
		strfmt(why, sizeof(why), "cannot open %s: %s (no KVM)",
		       KVM_DEV_PATH, strerror(errno));
		goto out;
	}
	ifd = iommufd_open();
	if (ifd < 0) {
		strfmt(why, sizeof(why), "cannot open %s: %s (CONFIG_IOMMUFD)",
		       IOMMUFD_PATH, strerror(errno));
		goto out;
	}
	ret = iommufd_test_available(ifd);
	if (ret <= 0) {
		strfmt(why, sizeof(why), ret ?
		       "FAIL: IOMMU_TEST_CMD probe: %s" :
		       "CONFIG_IOMMUFD_TEST is off: no iommufd mock (%s)",
		       strerror(errno));
		goto out;
	}
	ret = viommu_kvm_flag_supported(ifd);
	if (ret < 0) {
		strfmt(why, sizeof(why),
		       "FAIL: IOMMU_VIOMMU_ALLOC(KVM flag, dev_id 0): %s, expected ENOENT or EOPNOTSUPP",
		       strerror(errno));
		goto out;
	}
	if (ret == 0) {
		strfmt(why, sizeof(why), "%s", SKIP_REASON_BASE);
		goto out;
	}
	/* Absent (an answer no kernel with the feature gives) or broken. */
	ret = mock_vm_ops_supported(ifd);
	if (ret < 0) {
		strfmt(why, sizeof(why),
		       "FAIL: IOMMU_TEST_OP_VM_CHECK(0): %s, expected ENOENT or EOPNOTSUPP",
		       strerror(errno));
		goto out;
	}
	if (ret == 0) {
		strfmt(why, sizeof(why), "%s", SKIP_REASON_BASE);
		goto out;
	}
	if (!kvm_debugfs_available()) {
		strfmt(why, sizeof(why), "no %s (CONFIG_DEBUG_FS, debugfs mounted?)",
		       KVM_DEBUGFS_DIR);
		goto out;
	}
	if (log) {
		ret = uevent_log_open(log);
		if (ret) {
			log->sock = -1;
			strfmt(why, sizeof(why), "no uevent socket: %s",
			       strerror(-ret));
			goto out;
		}
	}
out:
	if (why[0]) {
		close_fd(&kfd);
		close_fd(&ifd);
	}
	if (kvm_fd)
		*kvm_fd = kfd;
	else
		close_fd(&kfd);
	if (iommufd)
		*iommufd = ifd;
	else
		close_fd(&ifd);
	return why[0] ? why : NULL;
}

/* In FIXTURE_SETUP: SKIP on a missing prerequisite, fail on a broken one. */
#define viommu_kvm_prereq_or_skip(kvm_fd, iommufd, log)                      \
	({                                                                   \
		const char *__why = viommu_kvm_prereq(kvm_fd, iommufd, log); \
		if (__why) {                                                 \
			ASSERT_NE(0, strncmp(__why, "FAIL", 4))              \
				TH_LOG("%s", __why);                         \
			SKIP(return, "%s", __why);                           \
		}                                                            \
	})

/*
 * In FIXTURE_TEARDOWN, once every other fd of the test's VMs is closed:
 * close @kvm_fd, then the reference check (if @log was opened): each VM the
 * test created has been destroyed, exactly once.
 */
#define viommu_kvm_fini(kvm_fd, log)                                     \
	({                                                                   \
		close_fd(kvm_fd);                                            \
		if ((log)->sock >= 0) {                                      \
			uevent_log_assert_balanced(log);                     \
			uevent_log_close(log);                               \
		}                                                            \
	})

/* In FIXTURE_SETUP: open /dev/iommu as @fd, SKIP without it. */
#define iommufd_open_or_skip(fd)                                             \
	({                                                                   \
		(fd) = iommufd_open();                                       \
		if ((fd) < 0)                                                \
			SKIP(return, "cannot open %s: %s (CONFIG_IOMMUFD)",  \
			     IOMMUFD_PATH, strerror(errno));                 \
	})

/* The same, and SKIP without the mock, fail on a broken probe. */
#define iommufd_mock_open_or_skip(fd)                                        \
	({                                                                   \
		int __ret;                                                   \
									     \
		iommufd_open_or_skip(fd);                                    \
		__ret = iommufd_test_available(fd);                          \
		ASSERT_LE(0, __ret)                                          \
			TH_LOG("IOMMU_TEST_CMD probe: %s", strerror(errno)); \
		if (!__ret)                                                  \
			SKIP(return,                                         \
			     "CONFIG_IOMMUFD_TEST is off: no iommufd mock"); \
	})

/* ---------------------------------------------------------- IOAS, destroy */

#define test_ioctl_ioas_alloc(id) test_ioas_alloc(self->fd, id)
#define test_ioctl_destroy(id) test_destroy(self->fd, id)
#define test_err_ioctl_destroy(_errno, id) test_err_destroy(_errno, self->fd, id)

/* --------------------------------------------------- mock device (stdev) */

static inline int _test_cmd_mock_domain(int fd, __u32 ioas_id, __u32 *stdev_id,
					__u32 *hwpt_id, __u32 *idev_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = ioas_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (ret)
		return ret;
	if (stdev_id)
		*stdev_id = cmd.mock_domain.out_stdev_id;
	if (hwpt_id)
		*hwpt_id = cmd.mock_domain.out_hwpt_id;
	if (idev_id)
		*idev_id = cmd.mock_domain.out_idev_id;
	return 0;
}
#define test_cmd_mock_domain(ioas_id, stdev_id, hwpt_id, idev_id)          \
	ASSERT_EQ(0, _test_cmd_mock_domain(self->fd, ioas_id, stdev_id,    \
					   hwpt_id, idev_id))              \
		TH_LOG("IOMMU_TEST_OP_MOCK_DOMAIN: %s", strerror(errno))
#define test_err_mock_domain(_errno, ioas_id)                                \
	EXPECT_ERRNO(_errno, _test_cmd_mock_domain(self->fd, ioas_id, NULL, \
						   NULL, NULL))

/* Attach or replace the mock device's domain (IOAS or HWPT @pt_id). */
static inline int _test_cmd_mock_domain_replace(int fd, __u32 stdev_id,
						__u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev_id,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}
#define test_cmd_mock_domain_replace(stdev_id, pt_id)                         \
	ASSERT_EQ(0, _test_cmd_mock_domain_replace(self->fd, stdev_id, pt_id)) \
		TH_LOG("IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE(%u): %s",            \
		       (unsigned int)(pt_id), strerror(errno))
#define test_err_mock_domain_replace(_errno, stdev_id, pt_id) \
	EXPECT_ERRNO(_errno, _test_cmd_mock_domain_replace(self->fd, stdev_id, pt_id))

/*
 * A mock device with MOCK_FLAGS_* @dev_flags (e.g. PASID-capable), attached
 * to @ioas_id. With MOCK_FLAGS_DEVICE_KVM_VM in @dev_flags it is bound with
 * the "VM" of @kvm_vm_fd, as VFIO binds a device with its VM (the mock takes
 * any open file); without it @kvm_vm_fd is not read.
 */
static inline int _test_cmd_mock_domain_flags(int fd, __u32 ioas_id,
					      __u32 dev_flags, int kvm_vm_fd,
					      __u32 *stdev_id, __u32 *idev_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = ioas_id,
		.mock_domain_flags = { .dev_flags = dev_flags },
	};
	int ret;

	*mock_cmd_kvm_vm_fd(&cmd) = kvm_vm_fd;
	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (ret)
		return ret;
	if (stdev_id)
		*stdev_id = cmd.mock_domain_flags.out_stdev_id;
	if (idev_id)
		*idev_id = cmd.mock_domain_flags.out_idev_id;
	return 0;
}
#define test_cmd_mock_domain_flags(ioas_id, dev_flags, stdev_id, idev_id)     \
	ASSERT_EQ(0, _test_cmd_mock_domain_flags(self->fd, ioas_id, dev_flags, \
						 -1, stdev_id, idev_id))      \
		TH_LOG("IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS(%#x): %s",            \
		       (unsigned int)(dev_flags), strerror(errno))

/* "No VM" for the helpers below: the device is made without the flag. */
#define MOCK_NO_VM	INT_MIN

/*
 * A mock device with @dev_flags bound with the VM of @vm_fd, or with none
 * (@vm_fd MOCK_NO_VM: MOCK_FLAGS_DEVICE_KVM_VM is not set).
 */
static inline int _test_cmd_mock_dev_vm(int fd, __u32 ioas_id, __u32 dev_flags,
					int vm_fd, __u32 *stdev_id,
					__u32 *idev_id)
{
	if (vm_fd != MOCK_NO_VM)
		dev_flags |= MOCK_FLAGS_DEVICE_KVM_VM;
	return _test_cmd_mock_domain_flags(fd, ioas_id, dev_flags, vm_fd,
					   stdev_id, idev_id);
}
#define test_cmd_mock_dev_vm(ioas_id, dev_flags, vm_fd, stdev_id, idev_id)    \
	ASSERT_EQ(0, _test_cmd_mock_dev_vm(self->fd, ioas_id, dev_flags,       \
					   vm_fd, stdev_id, idev_id))         \
		TH_LOG("mock device (flags %#x) with VM fd %d: %s",           \
		       (unsigned int)(dev_flags), (int)(vm_fd), strerror(errno))
/* The usual case: a plain mock device bound with the VM of @vm_fd. */
#define test_cmd_mock_domain_vm(ioas_id, vm_fd, stdev_id, idev_id) \
	test_cmd_mock_dev_vm(ioas_id, 0, vm_fd, stdev_id, idev_id)
#define test_err_mock_domain_vm(_errno, ioas_id, vm_fd)                       \
	EXPECT_ERRNO(_errno, _test_cmd_mock_dev_vm(self->fd, ioas_id, 0, vm_fd, \
						   NULL, NULL))

/* Attach HWPT @pt_id to @pasid of mock device @stdev_id (the attach path). */
static inline int _test_cmd_pasid_attach(int fd, __u32 stdev_id, __u32 pasid,
					 __u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_PASID_ATTACH,
		.id = stdev_id,
		.pasid_attach = { .pasid = pasid, .pt_id = pt_id },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}
#define test_cmd_pasid_attach(stdev_id, pasid, pt_id)                         \
	ASSERT_EQ(0, _test_cmd_pasid_attach(self->fd, stdev_id, pasid, pt_id)) \
		TH_LOG("IOMMU_TEST_OP_PASID_ATTACH(%u, %u): %s",              \
		       (unsigned int)(pasid), (unsigned int)(pt_id),          \
		       strerror(errno))
#define test_err_pasid_attach(_errno, stdev_id, pasid, pt_id) \
	EXPECT_ERRNO(_errno, _test_cmd_pasid_attach(self->fd, stdev_id, pasid, pt_id))

static inline int _test_cmd_pasid_detach(int fd, __u32 stdev_id, __u32 pasid)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_PASID_DETACH,
		.id = stdev_id,
		.pasid_detach = { .pasid = pasid },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}
#define test_cmd_pasid_detach(stdev_id, pasid)                               \
	ASSERT_EQ(0, _test_cmd_pasid_detach(self->fd, stdev_id, pasid))      \
		TH_LOG("IOMMU_TEST_OP_PASID_DETACH(%u): %s",                 \
		       (unsigned int)(pasid), strerror(errno))

/* ------------------------------------------------------------------ HWPT */

/*
 * IOMMU_HWPT_ALLOC on @pt_id for @dev_id, with @data_len bytes of
 * @data_type data at @data (as upstream's _test_cmd_hwpt_alloc()).
 */
static inline int __test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
					__u32 flags, __u32 data_type,
					void *data, __u32 data_len,
					__u32 *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
	};
	int ret;

	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (ret)
		return ret;
	if (hwpt_id)
		*hwpt_id = cmd.out_hwpt_id;
	return 0;
}

/* A paging HWPT (IOMMU_HWPT_DATA_NONE) on @pt_id for @dev_id. */
static inline int _test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
				       __u32 flags, __u32 *hwpt_id)
{
	return __test_cmd_hwpt_alloc(fd, dev_id, pt_id, flags,
				     IOMMU_HWPT_DATA_NONE, NULL, 0, hwpt_id);
}
#define test_cmd_hwpt_alloc(dev_id, pt_id, flags, hwpt_id)                   \
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(self->fd, dev_id, pt_id, flags,    \
					  hwpt_id))                          \
		TH_LOG("IOMMU_HWPT_ALLOC(flags %#x): %s", (unsigned int)(flags), \
		       strerror(errno))
#define test_err_hwpt_alloc(_errno, dev_id, pt_id, flags)                   \
	EXPECT_ERRNO(_errno, _test_cmd_hwpt_alloc(self->fd, dev_id, pt_id, \
						  flags, NULL))

/*
 * A nested HWPT (mock data IOMMU_HWPT_DATA_SELFTEST) on vIOMMU @viommu_id
 * for @dev_id; @flags e.g. IOMMU_HWPT_ALLOC_PASID.
 */
static inline int _test_cmd_hwpt_alloc_nested(int fd, __u32 dev_id,
					      __u32 viommu_id, __u32 flags,
					      __u32 *hwpt_id)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };

	return __test_cmd_hwpt_alloc(fd, dev_id, viommu_id, flags,
				     IOMMU_HWPT_DATA_SELFTEST, &data,
				     sizeof(data), hwpt_id);
}
#define test_cmd_hwpt_alloc_nested(dev_id, viommu_id, flags, hwpt_id)         \
	ASSERT_EQ(0, _test_cmd_hwpt_alloc_nested(self->fd, dev_id, viommu_id, \
						 flags, hwpt_id))             \
		TH_LOG("IOMMU_HWPT_ALLOC(nested on vIOMMU %u for dev %u): %s", \
		       (unsigned int)(viommu_id), (unsigned int)(dev_id),     \
		       strerror(errno))
#define test_err_hwpt_alloc_nested(_errno, dev_id, viommu_id, flags)          \
	EXPECT_ERRNO(_errno, _test_cmd_hwpt_alloc_nested(self->fd, dev_id,    \
							 viommu_id, flags, NULL))

/*
 * On self->fd: an IOAS, a mock device attached to it (@hwpt_id, its
 * automatic domain, may be NULL) and a nest-parent HWPT on the IOAS for
 * vIOMMUs.
 */
#define test_mock_nest_parent(ioas_id, stdev_id, hwpt_id, idev_id, parent_id) \
	({                                                                    \
		test_ioctl_ioas_alloc(ioas_id);                               \
		test_cmd_mock_domain(*(ioas_id), stdev_id, hwpt_id, idev_id); \
		test_cmd_hwpt_alloc(*(idev_id), *(ioas_id),                   \
				    IOMMU_HWPT_ALLOC_NEST_PARENT, parent_id); \
	})

/* ---------------------------------------------------------------- vIOMMU */

/*
 * IOMMU_VIOMMU_ALLOC with @cmd at the start of a @len-byte buffer whose
 * bytes beyond the struct are @tail (len may be smaller than the struct:
 * the kernel then reads only cmd->size bytes). cmd->size is set to @len.
 */
static inline int _test_cmd_viommu_alloc_sized(int fd,
					       struct iommu_viommu_alloc_kvm *cmd,
					       size_t len, __u8 tail,
					       __u32 *viommu_id)
{
	__u8 buf[256];
	int ret;

	if (len > sizeof(buf)) {
		errno = EINVAL;
		return -2;
	}
	memset(buf, tail, sizeof(buf));
	cmd->size = len;
	memcpy(buf, cmd, len < sizeof(*cmd) ? len : sizeof(*cmd));
	ret = ioctl(fd, IOMMU_VIOMMU_ALLOC, buf);
	if (!ret && viommu_id)
		*viommu_id = ((struct iommu_viommu_alloc_kvm *)buf)->out_viommu_id;
	return ret;
}

/*
 * IOMMU_VIOMMU_ALLOC as in the 7.3 uAPI (no driver data, 7.3's fields only,
 * at the size of the tree's struct iommu_viommu_alloc), so these keep
 * working unchanged on either kernel.
 */
static inline int _test_cmd_viommu_alloc(int fd, __u32 dev_id, __u32 hwpt_id,
					 __u32 flags, __u32 type,
					 __u32 *viommu_id)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.flags = flags,
		.type = type,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
	};

	return _test_cmd_viommu_alloc_sized(fd, &cmd,
					    sizeof(struct iommu_viommu_alloc),
					    0, viommu_id);
}
#define test_cmd_viommu_alloc(dev_id, hwpt_id, type, viommu_id)              \
	ASSERT_EQ(0, _test_cmd_viommu_alloc(self->fd, dev_id, hwpt_id, 0,    \
					    type, viommu_id))                \
		TH_LOG("IOMMU_VIOMMU_ALLOC: %s", strerror(errno))
#define test_err_viommu_alloc(_errno, dev_id, hwpt_id, flags, type)          \
	EXPECT_ERRNO(_errno, _test_cmd_viommu_alloc(self->fd, dev_id,        \
						    hwpt_id, flags, type, NULL))

/*
 * IOMMU_VIOMMU_ALLOC of the series, SELFTEST type: @flags (normally 0 or
 * IOMMU_VIOMMU_ALLOC_KVM_VM_FD) and @kvm_vm_fd as given, everything else zero.
 */
static inline int _test_cmd_viommu_alloc_vm(int fd, __u32 dev_id,
					    __u32 hwpt_id, __u32 flags,
					    int kvm_vm_fd, __u32 *viommu_id)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.flags = flags,
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
		.kvm_vm_fd = kvm_vm_fd,
	};

	return _test_cmd_viommu_alloc_sized(fd, &cmd, sizeof(cmd), 0,
					    viommu_id);
}
#define test_cmd_viommu_alloc_vm(dev_id, hwpt_id, flags, kvm_vm_fd, viommu_id) \
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(self->fd, dev_id, hwpt_id,       \
					       flags, kvm_vm_fd, viommu_id))    \
		TH_LOG("IOMMU_VIOMMU_ALLOC(flags %#x, kvm_vm_fd %d): %s",       \
		       (unsigned int)(flags), (int)(kvm_vm_fd), strerror(errno))
#define test_err_viommu_alloc_vm(_errno, dev_id, hwpt_id, flags, kvm_vm_fd)    \
	EXPECT_ERRNO(_errno, _test_cmd_viommu_alloc_vm(self->fd, dev_id,        \
						       hwpt_id, flags,          \
						       kvm_vm_fd, NULL))
/* The usual case: the KVM flag and a VM fd. */
#define test_cmd_viommu_alloc_kvm(dev_id, hwpt_id, kvm_vm_fd, viommu_id)     \
	test_cmd_viommu_alloc_vm(dev_id, hwpt_id, IOMMU_VIOMMU_ALLOC_KVM_VM_FD,    \
				 kvm_vm_fd, viommu_id)
#define test_err_viommu_alloc_kvm(_errno, dev_id, hwpt_id, kvm_vm_fd)       \
	test_err_viommu_alloc_vm(_errno, dev_id, hwpt_id,                   \
				 IOMMU_VIOMMU_ALLOC_KVM_VM_FD, kvm_vm_fd)

/* --------------------------------------------------------------- vDEVICE */

static inline int _test_cmd_vdevice_alloc(int fd, __u32 viommu_id,
					  __u32 idev_id, __u64 virt_id,
					  __u32 *vdev_id)
{
	struct iommu_vdevice_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = idev_id,
		.viommu_id = viommu_id,
		.virt_id = virt_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_VDEVICE_ALLOC, &cmd);
	if (ret)
		return ret;
	if (vdev_id)
		*vdev_id = cmd.out_vdevice_id;
	return 0;
}
#define test_cmd_vdevice_alloc(viommu_id, idev_id, virt_id, vdev_id)          \
	ASSERT_EQ(0, _test_cmd_vdevice_alloc(self->fd, viommu_id, idev_id,    \
					     virt_id, vdev_id))               \
		TH_LOG("IOMMU_VDEVICE_ALLOC(vIOMMU %u, dev %u): %s",          \
		       (unsigned int)(viommu_id), (unsigned int)(idev_id),    \
		       strerror(errno))
#define test_err_vdevice_alloc(_errno, viommu_id, idev_id, virt_id)            \
	EXPECT_ERRNO(_errno, _test_cmd_vdevice_alloc(self->fd, viommu_id,      \
						     idev_id, virt_id, NULL))

/* ------------------------------------------------------------ VM check */

/*
 * IOMMU_TEST_OP_VM_CHECK: which VM idev or vIOMMU @id holds, relative to
 * @vm_fd: MOCK_VM_NONE, _SAME or _OTHER in *@out_vm.
 */
static inline int _test_cmd_vm_check(int fd, __u32 id, int vm_fd, __u32 *out_vm)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_VM_CHECK,
		.id = id,
	};
	int ret;

	mock_cmd_vm_check(&cmd)->vm_fd = vm_fd;
	mock_cmd_vm_check(&cmd)->out_vm = 0xdead;
	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (!ret && out_vm)
		*out_vm = mock_cmd_vm_check(&cmd)->out_vm;
	return ret;
}
/* Assert that object @id of iommufd @fd holds @expected relative to @vm_fd. */
#define test_cmd_vm_check_fd(fd, id, vm_fd, expected)                        \
	({                                                                   \
		__u32 __out_vm = 0xdead;                                     \
		ASSERT_EQ(0, _test_cmd_vm_check(fd, id, vm_fd, &__out_vm))   \
			TH_LOG("IOMMU_TEST_OP_VM_CHECK(%u, vm_fd %d): %s",   \
			       (unsigned int)(id), (int)(vm_fd),             \
			       strerror(errno));                             \
		ASSERT_EQ(expected, __out_vm)                                \
			TH_LOG("object %u holds VM %s relative to fd %d, expected %s", \
			       (unsigned int)(id), vm_state_str(__out_vm),   \
			       (int)(vm_fd), vm_state_str(expected));        \
	})
#define test_cmd_vm_check(id, vm_fd, expected) \
	test_cmd_vm_check_fd(self->fd, id, vm_fd, expected)
#define test_err_vm_check(_errno, id, vm_fd) \
	EXPECT_ERRNO(_errno, _test_cmd_vm_check(self->fd, id, vm_fd, NULL))

/* ------------------------------------------------------- VM lifetime */

/*
 * VMs are watched through the shared header's uevent_log/vm_watch (uevents +
 * debugfs): vm_assert_alive(), vm_assert_destroyed(),
 * uevent_log_assert_balanced(). This creates one and starts watching it. Its
 * debugfs dir must be there: a VM created while a live VM of this process still
 * has the same "<pid>-<fd>" name gets none (docs/kernel-behaviour.md), and the
 * tests keep fd numbers distinct so that this never happens.
 */
#define test_vm_create_watched(kvm_fd, log, slot, w, vm_fd)                   \
	({                                                                    \
		test_kvm_create_vm(kvm_fd, vm_fd);                            \
		uevent_log_watch(log, slot, w, *(vm_fd));                     \
		ASSERT_TRUE(kvm_vm_debugfs_present(&(w)->id))                 \
			TH_LOG("new VM has no %s (name clash with a VM still alive?)", \
			       (w)->id.debugfs);                              \
	})

/* ---------------------------------------------- VM fd over SCM_RIGHTS */

/* Send @fd and a small payload over UNIX socket @sock. */
static inline int send_fd(int sock, int fd, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { (void *)data, len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == (ssize_t)len ? 0 : -1;
}

/* Receive an fd and exactly @len bytes of payload; the fd or -1. */
static inline int recv_fd(int sock, void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { data, len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)len)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int))) {
		errno = EPROTO;
		return -1;
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* ---------------------------------------------------- fault injection */

/*
 * Which fault attribute an injected failure came from: each attribute's
 * "times" is counted down by every failure it injects (also those of
 * fail-nth), so it is set high before a sweep and read around each call.
 */
#define FAIL_TIMES_SLAB		"/sys/kernel/debug/failslab/times"
#define FAIL_TIMES_PAGE		"/sys/kernel/debug/fail_page_alloc/times"
/* the mock's point in iommufd_get_object(): the lookup fails, ENOENT */
#define FAIL_TIMES_LOOKUP	"/sys/kernel/debug/fail_iommufd/times"
#define FAIL_TIMES_START	"1000000"

enum fail_kind {
	FAIL_KIND_NONE,		/* nothing counted down */
	FAIL_KIND_SLAB,		/* a slab allocation: ENOMEM */
	FAIL_KIND_PAGE,		/* a page allocation: ENOMEM */
	FAIL_KIND_LOOKUP,	/* an object lookup (fail_iommufd) */
	FAIL_KIND_MANY,		/* more than one: a broken oracle */
};

static inline const char *fail_kind_str(enum fail_kind k)
{
	static const char *const names[] = {
		"none", "failslab", "fail_page_alloc", "fail_iommufd (lookup)",
		"several",
	};

	return names[k];
}

struct fail_times {
	long slab, page, lookup;	/* -1: no such attribute */
};

static inline long fail_times_read_one(const char *path)
{
	char buf[32] = {};
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t len;

	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return len > 0 ? atol(buf) : -1;
}

static inline void fail_times_read(struct fail_times *t)
{
	t->slab = fail_times_read_one(FAIL_TIMES_SLAB);
	t->page = fail_times_read_one(FAIL_TIMES_PAGE);
	t->lookup = fail_times_read_one(FAIL_TIMES_LOOKUP);
}

/* Which attribute counted down between @a and @b. */
static inline enum fail_kind fail_kind_between(const struct fail_times *a,
					       const struct fail_times *b)
{
	int n = (a->slab != b->slab) + (a->page != b->page) +
		(a->lookup != b->lookup);

	if (n > 1)
		return FAIL_KIND_MANY;
	if (a->slab != b->slab)
		return FAIL_KIND_SLAB;
	if (a->page != b->page)
		return FAIL_KIND_PAGE;
	if (a->lookup != b->lookup)
		return FAIL_KIND_LOOKUP;
	return FAIL_KIND_NONE;
}

/*
 * failslab set up as iommufd_fail_nth.c does: every slab allocation may be
 * failed (also GFP_KERNEL ones), quietly. Returns NULL, or why not: absent
 * (no such file), or broken ("FAIL: ...": there but not working).
 */
static inline const char *fail_nth_setup(void)
{
	static const struct {
		const char *path, *val;
		bool must;
	} knobs[] = {
		{ "/sys/kernel/debug/failslab/ignore-gfp-wait", "N", true },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-wait", "N", false },
		{ "/sys/kernel/debug/fail_page_alloc/ignore-gfp-highmem", "N", false },
		/* Counted down by every injected failure: tells which fired. */
		{ FAIL_TIMES_SLAB, FAIL_TIMES_START, true },
		{ FAIL_TIMES_PAGE, FAIL_TIMES_START, false },
		{ FAIL_TIMES_LOOKUP, FAIL_TIMES_START, false },
	};
	static char why[256];
	struct dirent *de;
	char path[300];
	unsigned int i;
	DIR *dir;
	int fd;

	for (i = 0; i < ARRAY_SIZE(knobs); i++) {
		fd = open(knobs[i].path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 && knobs[i].must) {
			strfmt(why, sizeof(why),
			       "%sno failslab: %s: %s (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)",
			       errno == ENOENT ? "" : "FAIL: ", knobs[i].path,
			       strerror(errno));
			return why;
		}
		if (fd < 0)
			continue;
		if (write(fd, knobs[i].val, strlen(knobs[i].val)) < 0 &&
		    knobs[i].must) {
			strfmt(why, sizeof(why), "FAIL: writing %s: %s",
			       knobs[i].path, strerror(errno));
			close(fd);
			return why;
		}
		close(fd);
	}
	/* Quiet every fault attribute (failslab, the mock's fail_iommufd...) */
	dir = opendir("/sys/kernel/debug");
	while (dir && (de = readdir(dir))) {
		if (strncmp(de->d_name, "fail", 4) ||
		    !strfmt(path, sizeof(path), "/sys/kernel/debug/%s/verbose",
			    de->d_name))
			continue;
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "0", 1) < 0)
				;	/* best effort, like upstream */
			close(fd);
		}
	}
	if (dir)
		closedir(dir);
	strfmt(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	if (access(path, W_OK)) {
		strfmt(why, sizeof(why), "no %s: %s (CONFIG_FAULT_INJECTION_DEBUG_FS)",
		       path, strerror(errno));
		return why;
	}
	return NULL;
}

/* This thread's fail-nth file, opened. */
static inline int fail_nth_open(void)
{
	char path[64];

	strfmt(path, sizeof(path), "/proc/self/task/%d/fail-nth", gettid());
	return open(path, O_RDWR | O_CLOEXEC);
}

/* Fail the @n-th fault-injectable call of this thread from now on (0: off). */
static inline int fail_nth_arm(int nth_fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(nth_fd, buf, len, 0) == len ? 0 : -1;
}

/*
 * Disarm; returns true if the armed failure was injected (the counter ran
 * out: the file reads 0), false if the call chain had fewer points.
 */
static inline bool fail_nth_disarm(int nth_fd)
{
	char buf[16] = {};
	ssize_t res;

	res = pread(nth_fd, buf, sizeof(buf) - 1, 0);
	fail_nth_arm(nth_fd, 0);
	return res > 0 && atoi(buf) == 0;
}


/* ------------------------------------------------------ forked workers */

/*
 * Workers forked by a test to run its work in parallel, each with objects
 * (VMs, iommufds) of its own. A worker dies with the test process
 * (PR_SET_PDEATHSIG) and never runs the fixture's teardown: it asserts on
 * a private copy of the test's metadata without teardown_fn, so a failed
 * ASSERT aborts the worker alone (its TH_LOG lines already printed) and the
 * test sees a worker that did not exit 0. The test process reaps them:
 * workers_wait() in the test, workers_kill() in the teardown (a test that
 * failed before waiting).
 */
#define WORKERS_MAX	8

struct workers {
	int nr;
	pid_t pid[WORKERS_MAX];
};

/*
 * How many workers: $ENV_NAME if set (1..WORKERS_MAX), else one per online
 * CPU (at most WORKERS_MAX).
 */
static inline int workers_count(const char *env_name)
{
	const char *env = getenv(env_name);
	long n = env && *env ? strtol(env, NULL, 0) :
			       sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > WORKERS_MAX ? WORKERS_MAX : n;
}

/*
 * Fork worker @i of @w: returns 0 in the worker (set up to die with its
 * parent), the pid in the parent, -1 on failure.
 */
static inline pid_t workers_fork(struct workers *w, int i)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid)
		return w->pid[i] = pid;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(KSFT_FAIL);
	return 0;
}

/*
 * The metadata a worker asserts on: the test's, without its teardown
 * (which belongs to the test process) and with a result of its own.
 */
static inline void worker_metadata(struct __test_metadata *wm,
				   const struct __test_metadata *t)
{
	*wm = *t;
	wm->teardown_fn = NULL;
	wm->no_teardown = NULL;
	wm->exit_code = KSFT_PASS;
}

/* End a worker: its result as exit status. */
static inline void __attribute__((noreturn))
worker_exit(const struct __test_metadata *wm)
{
	fflush(stdout);
	fflush(stderr);
	_exit(wm->exit_code == KSFT_PASS ? 0 : 1);
}

/* Wait for every worker; returns how many did not exit 0. */
static inline int workers_wait(struct workers *w)
{
	int i, status, bad = 0;

	for (i = 0; i < w->nr; i++) {
		if (w->pid[i] <= 0)
			continue;
		if (waitpid(w->pid[i], &status, 0) != w->pid[i] ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			ksft_print_msg("worker %d (pid %d): %s %d\n", i,
				       w->pid[i],
				       WIFSIGNALED(status) ? "killed by signal" :
				       "exit status",
				       WIFSIGNALED(status) ? WTERMSIG(status) :
				       WEXITSTATUS(status));
			bad++;
		}
		w->pid[i] = 0;
	}
	return bad;
}

/* Teardown: kill and reap the workers still there. */
static inline void workers_kill(struct workers *w)
{
	int i;

	for (i = 0; i < w->nr; i++) {
		if (w->pid[i] <= 0)
			continue;
		kill(w->pid[i], SIGKILL);
		waitpid(w->pid[i], NULL, 0);
		w->pid[i] = 0;
	}
}

/* ------------------------------------------------------- random seeds */

/*
 * The seed of a test's randomness: $ENV_NAME if set, else from the clock;
 * printed either way, so that a failing run can be repeated.
 */
static inline unsigned int test_seed(const char *env_name, const char *test)
{
	const char *env = getenv(env_name);
	unsigned int seed = env && *env ? strtoul(env, NULL, 0) :
					  (unsigned int)now_ms() ^ getpid();

	ksft_print_msg("%s: seed %u (set %s=%u to repeat)\n", test, seed,
		       env_name, seed);
	return seed;
}

#endif /* __SELFTEST_IOMMUFD_VIOMMU_UTILS_H */
