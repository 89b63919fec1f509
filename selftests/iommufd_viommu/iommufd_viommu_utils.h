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
 * The functions are iommufd_viommu_utils.c's, which the suite's Makefile
 * links into each program; here: declarations, the macros and tiny helpers.
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
#include "workers.h"
#include "fail_nth.h"
#include "iommufd_test.h"
#include "viommu_uapi.h"

/* A VM_CHECK answer (MOCK_VM_*), for messages. */
const char *vm_state_str(__u32 state);

/* ------------------------------------------------------ mock detection */

/*
 * Is the mock (CONFIG_IOMMUFD_TEST) there? IOMMU_TEST_CMD is only in the
 * ioctl table when it is; otherwise the ioctl is ENOTTY. The probe is a
 * zero-length MD_CHECK_REFS, which checks nothing and returns 0.
 * Returns 1, 0 (ENOTTY) or -1 (anything else: a real failure).
 */
int iommufd_test_available(int fd);

/*
 * Does IOMMU_VIOMMU_ALLOC know IOMMU_VIOMMU_ALLOC_KVM_VM_FD? Flags are checked
 * before the device: the series answers dev_id 0 with ENOENT, 7.3 refuses the
 * flag with EOPNOTSUPP. (kvm_vm_fd 0 and __reserved2 0: to 7.3 the bytes
 * beyond its 40-byte struct are a zero tail, not E2BIG.) Returns 1, 0 or -1
 * (another answer).
 */
int viommu_kvm_flag_supported(int fd);

/*
 * Does the mock have IOMMU_TEST_OP_VM_CHECK? The series answers id 0 with
 * ENOENT; 7.3 answers an unknown op with EOPNOTSUPP. Returns 1, 0 or -1.
 */
int mock_vm_ops_supported(int fd);

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
const char *viommu_kvm_prereq(int *kvm_fd, int *iommufd,
			      struct uevent_log *log);

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

int _test_cmd_mock_domain(int fd, __u32 ioas_id, __u32 *stdev_id,
			  __u32 *hwpt_id, __u32 *idev_id);
#define test_cmd_mock_domain(ioas_id, stdev_id, hwpt_id, idev_id)          \
	ASSERT_EQ(0, _test_cmd_mock_domain(self->fd, ioas_id, stdev_id,    \
					   hwpt_id, idev_id))              \
		TH_LOG("IOMMU_TEST_OP_MOCK_DOMAIN: %s", strerror(errno))
#define test_err_mock_domain(_errno, ioas_id)                                \
	EXPECT_ERRNO(_errno, _test_cmd_mock_domain(self->fd, ioas_id, NULL, \
						   NULL, NULL))

/* Attach or replace the mock device's domain (IOAS or HWPT @pt_id). */
int _test_cmd_mock_domain_replace(int fd, __u32 stdev_id, __u32 pt_id);
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
int _test_cmd_mock_domain_flags(int fd, __u32 ioas_id,
				__u32 dev_flags, int kvm_vm_fd,
				__u32 *stdev_id, __u32 *idev_id);
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
int _test_cmd_mock_dev_vm(int fd, __u32 ioas_id, __u32 dev_flags,
			  int vm_fd, __u32 *stdev_id,
			  __u32 *idev_id);
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
int _test_cmd_pasid_attach(int fd, __u32 stdev_id, __u32 pasid, __u32 pt_id);
#define test_cmd_pasid_attach(stdev_id, pasid, pt_id)                         \
	ASSERT_EQ(0, _test_cmd_pasid_attach(self->fd, stdev_id, pasid, pt_id)) \
		TH_LOG("IOMMU_TEST_OP_PASID_ATTACH(%u, %u): %s",              \
		       (unsigned int)(pasid), (unsigned int)(pt_id),          \
		       strerror(errno))
#define test_err_pasid_attach(_errno, stdev_id, pasid, pt_id) \
	EXPECT_ERRNO(_errno, _test_cmd_pasid_attach(self->fd, stdev_id, pasid, pt_id))

int _test_cmd_pasid_detach(int fd, __u32 stdev_id, __u32 pasid);
#define test_cmd_pasid_detach(stdev_id, pasid)                               \
	ASSERT_EQ(0, _test_cmd_pasid_detach(self->fd, stdev_id, pasid))      \
		TH_LOG("IOMMU_TEST_OP_PASID_DETACH(%u): %s",                 \
		       (unsigned int)(pasid), strerror(errno))

/* ------------------------------------------------------------------ HWPT */

/*
 * IOMMU_HWPT_ALLOC on @pt_id for @dev_id, with @data_len bytes of
 * @data_type data at @data (as upstream's _test_cmd_hwpt_alloc()).
 */
int __test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
			  __u32 flags, __u32 data_type,
			  void *data, __u32 data_len,
			  __u32 *hwpt_id);

/* A paging HWPT (IOMMU_HWPT_DATA_NONE) on @pt_id for @dev_id. */
int _test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
			 __u32 flags, __u32 *hwpt_id);
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
int _test_cmd_hwpt_alloc_nested(int fd, __u32 dev_id,
				__u32 viommu_id, __u32 flags,
				__u32 *hwpt_id);
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
int _test_cmd_viommu_alloc_sized(int fd,
				 struct iommu_viommu_alloc_kvm *cmd,
				 size_t len, __u8 tail,
				 __u32 *viommu_id);

/*
 * IOMMU_VIOMMU_ALLOC as in the 7.3 uAPI (no driver data, 7.3's fields only,
 * at the size of the tree's struct iommu_viommu_alloc), so these keep
 * working unchanged on either kernel.
 */
int _test_cmd_viommu_alloc(int fd, __u32 dev_id, __u32 hwpt_id,
			   __u32 flags, __u32 type,
			   __u32 *viommu_id);
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
int _test_cmd_viommu_alloc_vm(int fd, __u32 dev_id,
			      __u32 hwpt_id, __u32 flags,
			      int kvm_vm_fd, __u32 *viommu_id);
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

int _test_cmd_vdevice_alloc(int fd, __u32 viommu_id,
			    __u32 idev_id, __u64 virt_id,
			    __u32 *vdev_id);
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
int _test_cmd_vm_check(int fd, __u32 id, int vm_fd, __u32 *out_vm);
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
int send_fd(int sock, int fd, const void *data, size_t len);

/* Receive an fd and exactly @len bytes of payload; the fd or -1. */
int recv_fd(int sock, void *data, size_t len);

/* ------------------------------------------------------ forked workers */

/*
 * Workers (vm_file_lib's workers.h) of a test that runs its work in
 * parallel: one per online CPU, at most this many.
 */
#define VIOMMU_WORKERS_MAX	8

/* ------------------------------------------------------- random seeds */

/*
 * The seed of a test's randomness: $ENV_NAME if set, else from the clock;
 * printed either way, so that a failing run can be repeated.
 */
unsigned int test_seed(const char *env_name, const char *test);

#endif /* __SELFTEST_IOMMUFD_VIOMMU_UTILS_H */
