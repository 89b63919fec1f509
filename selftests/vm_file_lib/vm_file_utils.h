/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the vfio_kvm and iommufd_viommu selftests (the
 * vm_file_lib directory: each suite's Makefile includes vm_file_lib.mk).
 *
 * - The kernel-log oracle of every test (kmsg_oracle.h): included here, so
 *   every program of both suites has it without a line of its own.
 *
 * Declarations, macros and tiny inline helpers only: the functions are
 * vm_file_lib's objects (kvm.c: KVM, VM identity, uevents; vfio.c: VFIO
 * discovery, VFIO, iommufd and mkvm ioctls; util.c: fds, permutations),
 * which vm_file_lib.mk builds and links into every program.
 * - KVM: VM, vCPU and KVM VFIO device creation, KVM_DEV_VFIO_FILE_ADD/DEL.
 * - Oracles for VM lifetime: the VM's debugfs directory
 *   (/sys/kernel/debug/kvm/<pid>-<vmfd>) and the KVM uevents
 *   (EVENT=create/destroy, STATS_PATH=/kvm/<pid>-<vmfd>) read from a
 *   NETLINK_KOBJECT_UEVENT socket; open fd counting.
 * - VFIO: the devices named by the environment (VFIO_KVM_PCI, VFIO_KVM_MDEV,
 *   VFIO_KVM_MKVM), group and device cdev ioctls.
 * - What the environment requires to be present (VFIO_KVM_REQUIRE).
 * - iommufd: the few raw ioctls both suites need.
 *
 * Wrappers come in three layers, as in selftests/iommu/iommufd_utils.h:
 *   _test_x(...)          raw: the ioctl's return value, errno as left by it
 *   test_x(...)           asserts success
 *   test_err_x(err, ...)  asserts failure with errno == err
 * The fd a command goes to is always an explicit argument: fixtures here hold
 * several (kvm, VM, device, iommufd...).
 *
 * Harness traps (kselftest_harness.h, 7.3): fixture data is zero-filled, so
 * setup must set every fd to -1 before anything can fail; a setup that fails
 * or SKIPs never gets its teardown; ASSERT_*() aborts the test process (the
 * kernel closes whatever is still open).
 */
#ifndef __SELFTEST_VM_FILE_UTILS_H
#define __SELFTEST_VM_FILE_UTILS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* pipe2(), as kselftest_harness.h would */
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <linux/iommufd.h>
#include <linux/kvm.h>
#include <linux/netlink.h>
#include <linux/vfio.h>

#ifdef VM_FILE_LIB_UNIT
#include "lib_harness.h"	/* a library object */
#else
#include "kselftest_harness.h"
#endif
#include "kmsg_oracle.h"

#define KVM_DEV_PATH		"/dev/kvm"
#define KVM_DEBUGFS_DIR		"/sys/kernel/debug/kvm"
#define KVM_UEVENT_DEVPATH	"/devices/virtual/misc/kvm"
#define VFIO_CONTAINER_PATH	"/dev/vfio/vfio"
#define IOMMUFD_PATH		"/dev/iommu"
#define MDEV_BUS_DIR		"/sys/bus/mdev/devices"
#define PCI_DEV_DIR		"/sys/bus/pci/devices"

/*
 * The devices the tests use, named by the environment (as
 * tools/testing/selftests/vfio takes a BDF); nothing else is touched:
 *   VFIO_KVM_PCI   the BDF of a device bound to vfio-pci (no default: a
 *                  test never picks "some vfio-pci device" of a machine)
 *   VFIO_KVM_MDEV  mtty mdev uuids, space-separated (tests use up to two)
 *   VFIO_KVM_MKVM  mkvm mdev uuids, space-separated
 * Without VFIO_KVM_MDEV / VFIO_KVM_MKVM the mdevs of those sample types
 * (mdev_type "mtty-*", "mkvm-*": test devices that exist only if someone
 * created them) are used, in name order.
 */
#define ENV_MDEV		"VFIO_KVM_MDEV"
#define ENV_PCI			"VFIO_KVM_PCI"
#define ENV_MKVM		"VFIO_KVM_MKVM"
/*
 * What the kernel under test was built to have (words, space-separated:
 * mtty mkvm vfio-pci failslab mock-vm-ops; run_tests.sh sets it from the
 * kernel's .config): a presence test of a required feature FAILs where it
 * would otherwise SKIP as "not checkable here".
 */
#define ENV_REQUIRE		"VFIO_KVM_REQUIRE"

/*
 * VM destruction is normally synchronous with the last close() (the final
 * fput() runs as task work before close() returns), but allow for deferred
 * work: every "it happened" check polls up to this long.
 */
#define VM_DESTROY_TIMEOUT_MS	2000

#ifndef EXPECT_ERRNO
#define EXPECT_ERRNO(expected_errno, cmd)         \
	({                                        \
		ASSERT_EQ(-1, cmd);               \
		EXPECT_EQ(expected_errno, errno); \
	})
#endif

/*
 * snprintf() that says whether the result fit; paths that do not fit are
 * treated as absent (and gcc's -Wformat-truncation has nothing to guess).
 */
static inline bool __attribute__((format(printf, 3, 4)))
strfmt(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n >= 0 && (size_t)n < len;
}

static inline void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Open @path read-write into *@fd; the test fails if it does not open. */
#define test_open_rdwr(path, fd)                                               \
	({                                                                     \
		const char *__path = (path);                                   \
		*(fd) = open(__path, O_RDWR | O_CLOEXEC);                      \
		ASSERT_LE(0, *(fd))                                            \
			TH_LOG("open %s: %s", __path, strerror(errno));        \
	})

static inline long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Entries of /proc/self/fd, not counting the directory fd used to read it. */
int count_open_fds(void);

/* ------------------------------------------------------------------ KVM */

static inline int kvm_open(void)
{
	return open(KVM_DEV_PATH, O_RDWR | O_CLOEXEC);
}

static inline int _test_kvm_create_vm(int kvm_fd)
{
	return ioctl(kvm_fd, KVM_CREATE_VM, 0);
}
#define test_kvm_create_vm(kvm_fd, vm_fd)                          \
	({                                                         \
		*(vm_fd) = _test_kvm_create_vm(kvm_fd);            \
		ASSERT_LE(0, *(vm_fd))                             \
			TH_LOG("KVM_CREATE_VM: %s", strerror(errno)); \
	})
#define test_err_kvm_create_vm(_errno, kvm_fd) \
	EXPECT_ERRNO(_errno, _test_kvm_create_vm(kvm_fd))

static inline int _test_kvm_create_vcpu(int vm_fd, unsigned long id)
{
	return ioctl(vm_fd, KVM_CREATE_VCPU, id);
}
#define test_kvm_create_vcpu(vm_fd, id, vcpu_fd)                     \
	({                                                           \
		*(vcpu_fd) = _test_kvm_create_vcpu(vm_fd, id);       \
		ASSERT_LE(0, *(vcpu_fd))                             \
			TH_LOG("KVM_CREATE_VCPU: %s", strerror(errno)); \
	})

static inline int _test_kvm_get_stats_fd(int vm_fd)
{
	return ioctl(vm_fd, KVM_GET_STATS_FD, NULL);
}
#define test_kvm_get_stats_fd(vm_fd, stats_fd)                         \
	({                                                             \
		*(stats_fd) = _test_kvm_get_stats_fd(vm_fd);           \
		ASSERT_LE(0, *(stats_fd))                              \
			TH_LOG("KVM_GET_STATS_FD: %s", strerror(errno)); \
	})

/* KVM_CREATE_DEVICE; with KVM_CREATE_DEVICE_TEST no device (and no fd) is made. */
int _test_kvm_create_device(int vm_fd, __u32 type, __u32 flags, int *dev_fd);
#define test_kvm_create_vfio_device(vm_fd, dev_fd)                          \
	ASSERT_EQ(0, _test_kvm_create_device(vm_fd, KVM_DEV_TYPE_VFIO, 0,   \
					     dev_fd))                       \
		TH_LOG("KVM_CREATE_DEVICE(VFIO): %s", strerror(errno))
#define test_err_kvm_create_vfio_device(_errno, vm_fd, dev_fd) \
	EXPECT_ERRNO(_errno, _test_kvm_create_device(vm_fd, KVM_DEV_TYPE_VFIO, \
						     0, dev_fd))

/* KVM_DEV_VFIO_FILE_ADD / _DEL of a VFIO group or device cdev fd. */
int _test_kvm_vfio_file(int dev_fd, __u64 op, int vfio_fd);
#define test_kvm_vfio_file_add(dev_fd, vfio_fd)                               \
	ASSERT_EQ(0, _test_kvm_vfio_file(dev_fd, KVM_DEV_VFIO_FILE_ADD, vfio_fd)) \
		TH_LOG("KVM_DEV_VFIO_FILE_ADD: %s", strerror(errno))
#define test_kvm_vfio_file_del(dev_fd, vfio_fd)                               \
	ASSERT_EQ(0, _test_kvm_vfio_file(dev_fd, KVM_DEV_VFIO_FILE_DEL, vfio_fd)) \
		TH_LOG("KVM_DEV_VFIO_FILE_DEL: %s", strerror(errno))
#define test_err_kvm_vfio_file_add(_errno, dev_fd, vfio_fd) \
	EXPECT_ERRNO(_errno, _test_kvm_vfio_file(dev_fd, KVM_DEV_VFIO_FILE_ADD, vfio_fd))
#define test_err_kvm_vfio_file_del(_errno, dev_fd, vfio_fd) \
	EXPECT_ERRNO(_errno, _test_kvm_vfio_file(dev_fd, KVM_DEV_VFIO_FILE_DEL, vfio_fd))

/*
 * Is the KVM VFIO device type available? Probed on a scratch VM with
 * KVM_CREATE_DEVICE_TEST. Returns 1, 0 (ENODEV: CONFIG_KVM_VFIO off) or -1.
 * The scratch VM's uevents are the caller's to account for.
 */
int kvm_has_vfio_device(int kvm_fd);

/* ------------------------------------------------- VM identity: debugfs */

/*
 * KVM names a VM "<creator pid>-<VM fd number>" (kvm_create_vm_debugfs());
 * the uevent's STATS_PATH is that dir relative to the debugfs root. The pid
 * is the global one: run in the initial pid namespace.
 */
struct kvm_vm_id {
	char name[32];		/* "<pid>-<vmfd>" */
	char stats_path[48];	/* "/kvm/<pid>-<vmfd>", as in the uevent */
	char debugfs[PATH_MAX];	/* KVM_DEBUGFS_DIR "/<pid>-<vmfd>" */
};

void kvm_vm_id_init(struct kvm_vm_id *id, int vm_fd);

/* "/kvm/<pid>-": STATS_PATH prefix of every VM this process creates. */
void kvm_own_stats_prefix(char *buf, size_t len);

static inline bool kvm_debugfs_available(void)
{
	struct stat st;

	return !stat(KVM_DEBUGFS_DIR, &st) && S_ISDIR(st.st_mode);
}

static inline bool kvm_vm_debugfs_present(const struct kvm_vm_id *id)
{
	struct stat st;

	return !stat(id->debugfs, &st) && S_ISDIR(st.st_mode);
}

/* Poll until the VM's debugfs dir is gone; false if it is still there. */
bool kvm_vm_debugfs_wait_gone(const struct kvm_vm_id *id, int timeout_ms);

/*
 * VMs of this process with a debugfs dir: entries "<getpid()>-*". Other
 * processes' VMs are not counted, so a busy lab machine cannot disturb it.
 */
int kvm_debugfs_count_own(void);

/* ------------------------------------------------------- KVM uevents */

/*
 * kvm_uevent_notify_change() sends KOBJ_CHANGE on the kvm misc device with
 * CREATED=, COUNT=, EVENT=create|destroy, PID= and STATS_PATH=. Only the
 * kernel's messages (sender port 0) from that device are considered.
 */
int uevent_open(void);

/* KVM uevents seen for one VM (or for every VM matching a prefix). */
struct kvm_uevents {
	unsigned int created;
	unsigned int destroyed;
};

/*
 * Receive the next queued KVM uevent into @buf: 1 with @event and @path
 * (its EVENT= and STATS_PATH= values) pointing into @buf, 0 once the queue
 * is empty, -errno on error (-ENOBUFS: the socket overflowed, events were
 * lost). Messages not from the kernel or not from the kvm device are skipped.
 * With @pid, *@pid is its PID= value (or NULL) and events without
 * STATS_PATH (*@path NULL: a VM without a debugfs dir) are returned too;
 * without, they are skipped.
 */
int kvm_uevent_recv(int sock, char *buf, size_t size,
		    const char **event, const char **path, const char **pid);

/*
 * Read every queued uevent and count KVM create/destroy events whose
 * STATS_PATH equals @want (starts with @want if @prefix). Returns 0, or
 * -ENOBUFS if the socket overflowed: events were lost and counts are void.
 */
int kvm_uevents_read(int sock, const char *want, bool prefix,
		     struct kvm_uevents *ev);

/*
 * kvm_uevents_read() until at least @created creates and @destroyed
 * destroys have been counted or @timeout_ms passed. The caller asserts on the
 * counts (so "too few" and "too many" are both visible); the return value is
 * kvm_uevents_read()'s.
 */
int kvm_uevents_wait(int sock, const char *want, bool prefix,
		     struct kvm_uevents *ev, unsigned int created,
		     unsigned int destroyed, int timeout_ms);

/* ---------------------------------------------------- VFIO discovery */

/* A VFIO device found in sysfs and its two user-visible paths. */
struct vfio_dev_info {
	char name[64];		/* mdev uuid or PCI BDF */
	char sysfs[128];	/* its /sys/bus/.../devices/<name> */
	char group[64];		/* /dev/vfio/<N>, "" if no iommu_group */
	char cdev[64];		/* /dev/vfio/devices/vfioX, "" if no cdev */
	char why[512];		/* why discovery failed, for SKIP() */
};

/* Fill group and cdev paths from sysfs; absent ones stay "". */
void vfio_dev_paths(struct vfio_dev_info *d);

/* Is the mdev at @sysfs of a type whose sysfs name starts with @prefix? */
bool mdev_type_is(const char *sysfs, const char *prefix);

static inline bool mdev_is_mtty(const char *sysfs)
{
	return mdev_type_is(sysfs, "mtty-");
}

/* The @nth (from 0) word of @list (space- or comma-separated) into @buf. */
bool nth_word(const char *list, int nth, char *buf, size_t len);

/*
 * The @nth (from 0) mdev of driver @drv: the @nth uuid of $@env_name if it
 * is set, else the @nth mdev of type "<drv>-*" under /sys/bus/mdev/devices
 * in name order. @config names the Kconfig option for the SKIP reason.
 * 0 or -ENOENT (d->why).
 */
int vfio_find_mdev(struct vfio_dev_info *d, const char *drv,
		   const char *config, const char *env_name,
		   int nth);

/* The @nth (from 0) mtty mdev ($VFIO_KVM_MDEV). 0 or -ENOENT (d->why). */
static inline int vfio_find_mtty(struct vfio_dev_info *d, int nth)
{
	return vfio_find_mdev(d, "mtty", "CONFIG_SAMPLE_VFIO_MDEV_MTTY",
			      ENV_MDEV, nth);
}

/*
 * The @nth (from 0) PCI device named by $VFIO_KVM_PCI (one BDF, or several
 * separated by spaces or commas: the tests use the first, a test that can
 * spread its work over devices the others): 0 if it is bound to vfio-pci;
 * -ENOENT if the variable is not set or names fewer devices (d->why:
 * nothing to test here); -ENODEV if it names no device, or one not bound
 * to vfio-pci (a broken setup: the caller fails).
 */
int vfio_find_pci_nth(struct vfio_dev_info *d, int nth);

/* The (first) PCI device named by $VFIO_KVM_PCI: vfio_find_pci_nth(). */
static inline int vfio_find_pci(struct vfio_dev_info *d)
{
	return vfio_find_pci_nth(d, 0);
}

/*
 * In a FIXTURE_SETUP: the vfio-pci device of $VFIO_KVM_PCI into @d; SKIP if
 * none is named, fail if the one named is not there.
 */
#define vfio_find_pci_or_skip(d)                                               \
	({                                                                     \
		int __ret = vfio_find_pci(d);                                  \
		ASSERT_NE(-ENODEV, __ret) TH_LOG("%s", (d)->why);              \
		if (__ret)                                                     \
			SKIP(return, "%s", (d)->why);                          \
	})

/* ------------------------------------------------ required features */

/* Does $VFIO_KVM_REQUIRE name @feature? */
bool feature_required(const char *feature);

/*
 * A presence test's verdict on @feature, which is absent (@why): FAIL if
 * $VFIO_KVM_REQUIRE names it (the kernel was built to have it), else SKIP:
 * not checkable on this machine.
 */
#define feature_absent(feature, why)                                           \
	({                                                                     \
		ASSERT_FALSE(feature_required(feature))                        \
			TH_LOG("%s: required (%s), but absent: %s", feature,   \
			       ENV_REQUIRE, why);                              \
		SKIP(return, "%s absent: %s", feature, why);                   \
	})

/* ------------------------------------------------------- VFIO ioctls */

int _test_vfio_group_status(int group_fd, __u32 *flags);

static inline int _test_vfio_group_set_container(int group_fd, int container_fd)
{
	return ioctl(group_fd, VFIO_GROUP_SET_CONTAINER, &container_fd);
}
#define test_vfio_group_set_container(group_fd, container_fd)               \
	ASSERT_EQ(0, _test_vfio_group_set_container(group_fd, container_fd)) \
		TH_LOG("VFIO_GROUP_SET_CONTAINER: %s", strerror(errno))

static inline int _test_vfio_set_iommu(int container_fd, unsigned long type)
{
	return ioctl(container_fd, VFIO_SET_IOMMU, type);
}
#define test_vfio_set_iommu(container_fd, type)                  \
	ASSERT_EQ(0, _test_vfio_set_iommu(container_fd, type))   \
		TH_LOG("VFIO_SET_IOMMU(%lu): %s", (unsigned long)(type), \
		       strerror(errno))

static inline int _test_vfio_group_get_device_fd(int group_fd, const char *name)
{
	return ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, name);
}
#define test_vfio_group_get_device_fd(group_fd, name, device_fd)             \
	({                                                                   \
		*(device_fd) = _test_vfio_group_get_device_fd(group_fd, name); \
		ASSERT_LE(0, *(device_fd))                                   \
			TH_LOG("VFIO_GROUP_GET_DEVICE_FD(%s): %s", name,     \
			       strerror(errno));                             \
	})

int _test_vfio_device_bind_iommufd(int device_fd, int iommufd,
				   __u32 *out_devid);
#define test_vfio_device_bind_iommufd(device_fd, iommufd, out_devid)          \
	ASSERT_EQ(0, _test_vfio_device_bind_iommufd(device_fd, iommufd,      \
						    out_devid))              \
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno))
#define test_err_vfio_device_bind_iommufd(_errno, device_fd, iommufd) \
	EXPECT_ERRNO(_errno, _test_vfio_device_bind_iommufd(device_fd, iommufd, NULL))

int _test_vfio_device_attach_pt(int device_fd, __u32 pt_id);
#define test_vfio_device_attach_pt(device_fd, pt_id)                \
	ASSERT_EQ(0, _test_vfio_device_attach_pt(device_fd, pt_id)) \
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno))

/* ---------------------------------------------------- iommufd ioctls */

static inline int iommufd_open(void)
{
	return open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
}

int _test_ioctl_ioas_alloc(int fd, __u32 *id);
#define test_ioas_alloc(fd, id)                                     \
	({                                                          \
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, id))        \
			TH_LOG("IOMMU_IOAS_ALLOC: %s", strerror(errno)); \
		ASSERT_NE(0, *(id));                                \
	})

int _test_ioctl_destroy(int fd, __u32 id);
#define test_destroy(fd, id) ASSERT_EQ(0, _test_ioctl_destroy(fd, id))
#define test_err_destroy(_errno, fd, id) \
	EXPECT_ERRNO(_errno, _test_ioctl_destroy(fd, id))

/* ------------------------------------------------ KVM device attributes */

/* KVM_{SET,GET,HAS}_DEVICE_ATTR with any group/attr/addr (bad-input tests). */
int _test_kvm_device_attr(int dev_fd, unsigned long op,
			  __u32 group, __u64 attr, __u64 addr);
#define test_err_kvm_device_attr(_errno, dev_fd, op, group, attr, addr) \
	EXPECT_ERRNO(_errno, _test_kvm_device_attr(dev_fd, op, group, attr, addr))

#define test_err_vfio_group_get_device_fd(_errno, group_fd, name) \
	EXPECT_ERRNO(_errno, _test_vfio_group_get_device_fd(group_fd, name))

/* ------------------------------------------------ permutations */

/*
 * Next permutation of @a[0..n) in lexicographic order; false (and @a back
 * to ascending) after the last one. Starting from ascending order this
 * visits all n! orders exactly once.
 */
bool next_permutation(int *a, int n);

/*
 * The bits set in @mask below bit @nr, ascending, into @a: the first
 * permutation of them. Returns how many.
 */
int mask_order(unsigned int mask, int nr, int *a);

/*
 * An ordering for the log: @names[@order[0]], @names[@order[1]], ...
 * separated by @sep, truncated to @len bytes. Returns @buf.
 */
const char *order_str(const int *order, int n,
		      const char *const *names, const char *sep,
		      char *buf, size_t len);

static inline unsigned int factorial(int n)
{
	return n <= 1 ? 1 : n * factorial(n - 1);
}

/* ------------------------------------------- uevent log of several VMs */

/*
 * A uevent reader that keeps, for every VM this process creates, the total
 * of create/destroy events (so "destroyed exactly once" can be checked over
 * a whole test, whatever the VM names: a name "<pid>-<fd>" is reused as soon
 * as the fd number is) and, for up to VM_WATCH_MAX VMs under watch, their
 * own counts. A watch starts at zero when armed, i.e. before the VM exists.
 */
#define VM_WATCH_MAX 4

struct vm_watch {
	struct kvm_vm_id id;
	struct kvm_uevents ev;
	bool armed;
};

struct uevent_log {
	int sock;
	char prefix[24];		/* "/kvm/<pid>-" */
	struct kvm_uevents total;	/* every VM of this process */
	struct vm_watch *watch[VM_WATCH_MAX];
};

/* Bind the socket (before any VM to be counted exists). 0 or -errno. */
int uevent_log_open(struct uevent_log *log);

static inline void uevent_log_close(struct uevent_log *log)
{
	close_fd(&log->sock);
}

/* Watch the VM behind @vm_fd; call right after KVM_CREATE_VM returned. */
void uevent_log_watch(struct uevent_log *log, int slot,
		      struct vm_watch *w, int vm_fd);

static inline void uevent_log_unwatch(struct uevent_log *log, int slot)
{
	log->watch[slot] = NULL;
}

/*
 * Account every queued event. 0, or -ENOBUFS if the socket overflowed
 * (events were lost: the counts are void and the caller must fail).
 */
int uevent_log_pump(struct uevent_log *log);

/* Wait for the watched VM's destroy event (it must be armed and watched). */
int vm_watch_wait_destroyed(struct uevent_log *log,
			    struct vm_watch *w, int timeout_ms);

int vm_watch_wait_created(struct uevent_log *log,
			  struct vm_watch *w, int timeout_ms);

/* Wait until every VM created so far has been destroyed (or timeout). */
int uevent_log_wait_balanced(struct uevent_log *log, int timeout_ms);

/*
 * Assertions on a watched VM. "Alive": its debugfs dir is there and no
 * destroy event has been seen. "Destroyed": one destroy event within
 * VM_DESTROY_TIMEOUT_MS and the debugfs dir gone; a second destroy event is
 * caught by the totals (uevent_log_assert_balanced()) or by the next check.
 * @what: the scenario, for the message.
 */
#define vm_assert_alive(log, w, what)                                          \
	({                                                                     \
		ASSERT_EQ(0, uevent_log_pump(log))                             \
			TH_LOG("uevent socket overflowed");                    \
		ASSERT_EQ(0, (w)->ev.destroyed)                                \
			TH_LOG("%s: VM %s destroyed while something still pins it", \
			       what, (w)->id.name);                            \
		ASSERT_TRUE(kvm_vm_debugfs_present(&(w)->id))                  \
			TH_LOG("%s: %s gone while something still pins the VM", \
			       what, (w)->id.debugfs);                         \
	})

#define vm_assert_destroyed(log, w, what)                                      \
	({                                                                     \
		ASSERT_EQ(0, vm_watch_wait_destroyed(log, w,                   \
						     VM_DESTROY_TIMEOUT_MS))   \
			TH_LOG("uevent socket overflowed");                    \
		ASSERT_EQ(1, (w)->ev.destroyed)                                \
			TH_LOG("%s: VM %s: %u destroy events %d ms after its last holder went (leak if 0)", \
			       what, (w)->id.name, (w)->ev.destroyed,          \
			       VM_DESTROY_TIMEOUT_MS);                         \
		ASSERT_TRUE(kvm_vm_debugfs_wait_gone(&(w)->id,                 \
						     VM_DESTROY_TIMEOUT_MS))   \
			TH_LOG("%s: %s still present after destroy", what,     \
			       (w)->id.debugfs);                               \
	})

/*
 * Every VM this process created has been destroyed, each exactly once: the
 * destroy total catches up with the create total and, after a short grace
 * for a late duplicate, does not exceed it.
 */
#define uevent_log_assert_balanced(log)                                        \
	({                                                                     \
		ASSERT_EQ(0, uevent_log_wait_balanced(log, VM_DESTROY_TIMEOUT_MS)); \
		usleep(20000);                                                 \
		ASSERT_EQ(0, uevent_log_pump(log));                            \
		ASSERT_EQ((log)->total.created, (log)->total.destroyed)        \
			TH_LOG("%u VMs created, %u destroy events",            \
			       (log)->total.created, (log)->total.destroyed);  \
	})

/* ------------------------------------------------ mkvm (test-only mdev) */

/*
 * samples/vfio-mdev/mkvm.c (series patch "samples: vfio-mdev: Add mkvm"):
 * an emulated mdev whose ->open_device() takes kvm->lock of the VM the open
 * device holds and records its name; pread(device fd, 64, 0) returns
 * "<pid>-<vmfd>\n" (the VM's debugfs dir) or "none\n".
 */
#define MKVM_FAIL_OPEN		"/sys/module/mkvm/parameters/fail_open"
#define MKVM_VM_NONE		"none"

static inline int vfio_find_mkvm(struct vfio_dev_info *d, int nth)
{
	return vfio_find_mdev(d, "mkvm", "CONFIG_SAMPLE_VFIO_MDEV_MKVM",
			      ENV_MKVM, nth);
}

/*
 * The VM the open device holds, without the newline, into @buf. Returns the
 * length, or -1 with errno (e.g. EINVAL: cdev not bound).
 */
int _test_mkvm_vm(int device_fd, char *buf, size_t len);

/* Assert that the open device holds the VM named @want ("none": no VM). */
#define test_mkvm_vm(device_fd, want, what)                                    \
	({                                                                     \
		char __vm[64];                                                 \
		ASSERT_LE(0, _test_mkvm_vm(device_fd, __vm, sizeof(__vm)))     \
			TH_LOG("%s: mkvm read: %s", what, strerror(errno));   \
		ASSERT_STREQ(want, __vm)                                       \
			TH_LOG("%s: the open device holds VM %s, expected %s", \
			       what, __vm, want);                              \
	})

/* Write 0/1 to mkvm's fail_open parameter. 0 or -errno. */
int mkvm_set_fail_open(bool on);

/* ------------------------------------------------ misc */

/* An fd number that is certainly not open: dup something, then close it. */
int closed_fd_number(void);

/* Raise RLIMIT_NOFILE's soft limit to at least @want (up to the hard one). */
void raise_nofile(rlim_t want);

#endif /* __SELFTEST_VM_FILE_UTILS_H */
