/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the vfio_kvm and iommufd_viommu selftests (the
 * vm_file_lib directory: each suite's Makefile includes vm_file_lib.mk).
 *
 * - The kernel-log oracle of every test (kmsg_oracle.h): included here, so
 *   every program of both suites has it without a line of its own.
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

#include "kselftest_harness.h"
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
static inline int count_open_fds(void)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

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
static inline int _test_kvm_create_device(int vm_fd, __u32 type, __u32 flags,
				   int *dev_fd)
{
	struct kvm_create_device cd = { .type = type, .flags = flags };
	int ret;

	ret = ioctl(vm_fd, KVM_CREATE_DEVICE, &cd);
	if (ret)
		return ret;
	if (dev_fd)
		*dev_fd = (flags & KVM_CREATE_DEVICE_TEST) ? -1 : (int)cd.fd;
	return 0;
}
#define test_kvm_create_vfio_device(vm_fd, dev_fd)                          \
	ASSERT_EQ(0, _test_kvm_create_device(vm_fd, KVM_DEV_TYPE_VFIO, 0,   \
					     dev_fd))                       \
		TH_LOG("KVM_CREATE_DEVICE(VFIO): %s", strerror(errno))
#define test_err_kvm_create_vfio_device(_errno, vm_fd, dev_fd) \
	EXPECT_ERRNO(_errno, _test_kvm_create_device(vm_fd, KVM_DEV_TYPE_VFIO, \
						     0, dev_fd))

/* KVM_DEV_VFIO_FILE_ADD / _DEL of a VFIO group or device cdev fd. */
static inline int _test_kvm_vfio_file(int dev_fd, __u64 op, int vfio_fd)
{
	__s32 fd = vfio_fd;
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_FILE,
		.attr = op,
		.addr = (uintptr_t)&fd,
	};

	return ioctl(dev_fd, KVM_SET_DEVICE_ATTR, &attr);
}
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
static inline int kvm_has_vfio_device(int kvm_fd)
{
	int vm_fd, ret;

	vm_fd = _test_kvm_create_vm(kvm_fd);
	if (vm_fd < 0)
		return -1;
	ret = _test_kvm_create_device(vm_fd, KVM_DEV_TYPE_VFIO,
				      KVM_CREATE_DEVICE_TEST, NULL);
	if (ret && errno != ENODEV)
		ret = -1;
	else
		ret = !ret;
	close(vm_fd);
	return ret;
}

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

static inline void kvm_vm_id_init(struct kvm_vm_id *id, int vm_fd)
{
	strfmt(id->name, sizeof(id->name), "%d-%d", getpid(), vm_fd);
	strfmt(id->stats_path, sizeof(id->stats_path), "/kvm/%s", id->name);
	strfmt(id->debugfs, sizeof(id->debugfs), "%s/%s", KVM_DEBUGFS_DIR,
	       id->name);
}

/* "/kvm/<pid>-": STATS_PATH prefix of every VM this process creates. */
static inline void kvm_own_stats_prefix(char *buf, size_t len)
{
	strfmt(buf, len, "/kvm/%d-", getpid());
}

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
static inline bool kvm_vm_debugfs_wait_gone(const struct kvm_vm_id *id, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (kvm_vm_debugfs_present(id)) {
		if (now_ms() >= deadline)
			return false;
		usleep(1000);
	}
	return true;
}

/*
 * VMs of this process with a debugfs dir: entries "<getpid()>-*". Other
 * processes' VMs are not counted, so a busy lab machine cannot disturb it.
 */
static inline int kvm_debugfs_count_own(void)
{
	char prefix[24];
	struct dirent *de;
	size_t plen;
	int n = 0;
	DIR *d;

	strfmt(prefix, sizeof(prefix), "%d-", getpid());
	plen = strlen(prefix);
	d = opendir(KVM_DEBUGFS_DIR);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, plen))
			n++;
	closedir(d);
	return n;
}

/* ------------------------------------------------------- KVM uevents */

/*
 * kvm_uevent_notify_change() sends KOBJ_CHANGE on the kvm misc device with
 * CREATED=, COUNT=, EVENT=create|destroy, PID= and STATS_PATH=. Only the
 * kernel's messages (sender port 0) from that device are considered.
 */
static inline int uevent_open(void)
{
	struct sockaddr_nl addr = {
		.nl_family = AF_NETLINK,
		.nl_groups = 1,	/* kernel uevents */
	};
	int bufsz = 16 << 20;
	int fd;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
		    NETLINK_KOBJECT_UEVENT);
	if (fd < 0)
		return -1;
	/* FORCE needs CAP_NET_ADMIN; fall back to what rmem_max allows. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* KVM uevents seen for one VM (or for every VM matching a prefix). */
struct kvm_uevents {
	unsigned int created;
	unsigned int destroyed;
};

static inline bool uevent_match(const char *stats_path, const char *want, bool prefix)
{
	if (prefix)
		return !strncmp(stats_path, want, strlen(want));
	return !strcmp(stats_path, want);
}

/*
 * Receive the next queued KVM uevent into @buf: 1 with @event and @path
 * (its EVENT= and STATS_PATH= values) pointing into @buf, 0 once the queue
 * is empty, -errno on error (-ENOBUFS: the socket overflowed, events were
 * lost). Messages not from the kernel or not from the kvm device are skipped.
 */
static inline int kvm_uevent_recv(int sock, char *buf, size_t size,
				  const char **event, const char **path)
{
	for (;;) {
		const char *devpath = NULL;
		struct sockaddr_nl src = {};
		struct iovec iov = { buf, size - 1 };
		struct msghdr msg = {
			.msg_name = &src,
			.msg_namelen = sizeof(src),
			.msg_iov = &iov,
			.msg_iovlen = 1,
		};
		ssize_t len;
		char *p;

		*event = *path = NULL;
		len = recvmsg(sock, &msg, MSG_DONTWAIT);
		if (len < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (src.nl_pid != 0)	/* not from the kernel */
			continue;
		buf[len] = 0;
		/* "change@<devpath>\0KEY=value\0...": skip the header. */
		for (p = buf + strlen(buf) + 1; p < buf + len; p += strlen(p) + 1) {
			if (!strncmp(p, "EVENT=", 6))
				*event = p + 6;
			else if (!strncmp(p, "STATS_PATH=", 11))
				*path = p + 11;
			else if (!strncmp(p, "DEVPATH=", 8))
				devpath = p + 8;
		}
		if (*event && *path && devpath &&
		    !strcmp(devpath, KVM_UEVENT_DEVPATH))
			return 1;
	}
}

/*
 * Wait up to @deadline (now_ms()) for @sock to have something to read;
 * false if the deadline has passed.
 */
static inline bool uevent_sock_wait(int sock, long long deadline)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	long long left = deadline - now_ms();

	if (left <= 0)
		return false;
	poll(&pfd, 1, left);
	return true;
}

/*
 * Read every queued uevent and count KVM create/destroy events whose
 * STATS_PATH equals @want (starts with @want if @prefix). Returns 0, or
 * -ENOBUFS if the socket overflowed: events were lost and counts are void.
 */
static inline int kvm_uevents_read(int sock, const char *want, bool prefix,
			    struct kvm_uevents *ev)
{
	const char *event, *path;
	char buf[8192];
	int ret;

	while ((ret = kvm_uevent_recv(sock, buf, sizeof(buf), &event,
				      &path)) > 0) {
		if (!uevent_match(path, want, prefix))
			continue;
		if (!strcmp(event, "create"))
			ev->created++;
		else if (!strcmp(event, "destroy"))
			ev->destroyed++;
	}
	return ret;
}

/*
 * kvm_uevents_read() until at least @created creates and @destroyed
 * destroys have been counted or @timeout_ms passed. The caller asserts on the
 * counts (so "too few" and "too many" are both visible); the return value is
 * kvm_uevents_read()'s.
 */
static inline int kvm_uevents_wait(int sock, const char *want, bool prefix,
			    struct kvm_uevents *ev, unsigned int created,
			    unsigned int destroyed, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int ret;

	do {
		ret = kvm_uevents_read(sock, want, prefix, ev);
		if (ret)
			return ret;
		if (ev->created >= created && ev->destroyed >= destroyed)
			return 0;
	} while (uevent_sock_wait(sock, deadline));
	return 0;
}

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
static inline void vfio_dev_paths(struct vfio_dev_info *d)
{
	char path[PATH_MAX + 32], link[PATH_MAX];
	struct dirent *de;
	ssize_t len;
	DIR *dir;

	d->group[0] = d->cdev[0] = 0;
	strfmt(path, sizeof(path), "%s/iommu_group", d->sysfs);
	len = readlink(path, link, sizeof(link) - 1);
	if (len > 0) {
		link[len] = 0;
		if (!strfmt(d->group, sizeof(d->group), "/dev/vfio/%s",
			    strrchr(link, '/') ? strrchr(link, '/') + 1 : link))
			d->group[0] = 0;
	}
	strfmt(path, sizeof(path), "%s/vfio-dev", d->sysfs);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (!strncmp(de->d_name, "vfio", 4)) {
			if (!strfmt(d->cdev, sizeof(d->cdev),
				    "/dev/vfio/devices/%s", de->d_name))
				d->cdev[0] = 0;
			break;
		}
	}
	closedir(dir);
}

/* Is the mdev at @sysfs of a type whose sysfs name starts with @prefix? */
static inline bool mdev_type_is(const char *sysfs, const char *prefix)
{
	char path[PATH_MAX + 16], link[PATH_MAX];
	const char *type;
	ssize_t len;

	strfmt(path, sizeof(path), "%s/mdev_type", sysfs);
	len = readlink(path, link, sizeof(link) - 1);
	if (len <= 0)
		return false;
	link[len] = 0;
	type = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	return !strncmp(type, prefix, strlen(prefix));
}

static inline bool mdev_is_mtty(const char *sysfs)
{
	return mdev_type_is(sysfs, "mtty-");
}

/* The @nth (from 0) word of @list (space- or comma-separated) into @buf. */
static inline bool nth_word(const char *list, int nth, char *buf, size_t len)
{
	const char *p = list;
	size_t n;

	for (;;) {
		p += strspn(p, " ,");
		n = strcspn(p, " ,");
		if (!n)
			return false;
		if (!nth--)
			return strfmt(buf, len, "%.*s", (int)n, p);
		p += n;
	}
}

/*
 * The @nth (from 0) mdev of driver @drv: the @nth uuid of $@env_name if it
 * is set, else the @nth mdev of type "<drv>-*" under /sys/bus/mdev/devices
 * in name order. @config names the Kconfig option for the SKIP reason.
 * 0 or -ENOENT (d->why).
 */
static inline int vfio_find_mdev(struct vfio_dev_info *d, const char *drv,
				 const char *config, const char *env_name,
				 int nth)
{
	const char *env = getenv(env_name);
	struct dirent **names;
	char prefix[32];
	int n, i, found = -1;

	memset(d, 0, sizeof(*d));
	strfmt(prefix, sizeof(prefix), "%s-", drv);
	if (env && *env) {
		if (!nth_word(env, nth, d->name, sizeof(d->name))) {
			strfmt(d->why, sizeof(d->why),
			       "%s='%s' names fewer than the %d %s mdevs this test needs",
			       env_name, env, nth + 1, drv);
			return -ENOENT;
		}
		strfmt(d->sysfs, sizeof(d->sysfs), "%s/%s", MDEV_BUS_DIR, d->name);
		if (access(d->sysfs, F_OK)) {
			strfmt(d->why, sizeof(d->why), "%s: no %s",
			       env_name, d->sysfs);
			return -ENOENT;
		}
		vfio_dev_paths(d);
		return 0;
	}
	n = scandir(MDEV_BUS_DIR, &names, NULL, alphasort);
	if (n < 0) {
		strfmt(d->why, sizeof(d->why), "no %s (CONFIG_VFIO_MDEV off?)",
		       MDEV_BUS_DIR);
		return -ENOENT;
	}
	for (i = 0; i < n; i++) {
		char sysfs[PATH_MAX];

		strfmt(sysfs, sizeof(sysfs), "%s/%s", MDEV_BUS_DIR,
		       names[i]->d_name);
		if (found < nth && names[i]->d_name[0] != '.' &&
		    mdev_type_is(sysfs, prefix) && ++found == nth) {
			strfmt(d->name, sizeof(d->name), "%s", names[i]->d_name);
			strfmt(d->sysfs, sizeof(d->sysfs), "%s", sysfs);
		}
		free(names[i]);
	}
	free(names);
	if (found < nth) {
		if (found < 0)
			strfmt(d->why, sizeof(d->why),
			       "no %s mdev under %s (%s; create one: echo $(uuidgen) > /sys/class/mdev_bus/%s/mdev_supported_types/%s1/create; or set %s='<uuid> <uuid>')",
			       drv, MDEV_BUS_DIR, config, drv, prefix, env_name);
		else
			strfmt(d->why, sizeof(d->why),
			       "%d %s mdev(s) under %s, this test needs %d",
			       found + 1, drv, MDEV_BUS_DIR, nth + 1);
		return -ENOENT;
	}
	vfio_dev_paths(d);
	return 0;
}

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
static inline int vfio_find_pci_nth(struct vfio_dev_info *d, int nth)
{
	const char *env = getenv(ENV_PCI);
	char link[PATH_MAX], path[PATH_MAX + 16];
	ssize_t len;

	memset(d, 0, sizeof(*d));
	if (!env || !*env) {
		strfmt(d->why, sizeof(d->why),
		       "%s is not set: name the device to use (%s=<domain:bus:dev.fn> of a device bound to vfio-pci, e.g. QEMU's edu)",
		       ENV_PCI, ENV_PCI);
		return -ENOENT;
	}
	if (!nth_word(env, nth, d->name, sizeof(d->name))) {
		strfmt(d->why, sizeof(d->why), "%s='%s' names fewer than %d devices",
		       ENV_PCI, env, nth + 1);
		return nth ? -ENOENT : -ENODEV;
	}
	strfmt(d->sysfs, sizeof(d->sysfs), "%s/%s", PCI_DEV_DIR, d->name);
	if (access(d->sysfs, F_OK)) {
		strfmt(d->why, sizeof(d->why), "%s: %s: no %s", ENV_PCI,
		       d->name, d->sysfs);
		return -ENODEV;
	}
	strfmt(path, sizeof(path), "%s/driver", d->sysfs);
	len = readlink(path, link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = 0;
	if (len <= 0 || strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link,
			       "vfio-pci")) {
		strfmt(d->why, sizeof(d->why), "%s: %s is not bound to vfio-pci (driver: %s)",
		       ENV_PCI, d->name, len > 0 ? link : "none");
		return -ENODEV;
	}
	vfio_dev_paths(d);
	return 0;
}

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
static inline bool feature_required(const char *feature)
{
	const char *env = getenv(ENV_REQUIRE);
	char word[64];
	int i;

	for (i = 0; env && nth_word(env, i, word, sizeof(word)); i++)
		if (!strcmp(word, feature))
			return true;
	return false;
}

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

static inline int _test_vfio_group_status(int group_fd, __u32 *flags)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int ret;

	ret = ioctl(group_fd, VFIO_GROUP_GET_STATUS, &st);
	if (!ret && flags)
		*flags = st.flags;
	return ret;
}

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

static inline int _test_vfio_device_bind_iommufd(int device_fd, int iommufd,
					  __u32 *out_devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	int ret;

	ret = ioctl(device_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (!ret && out_devid)
		*out_devid = bind.out_devid;
	return ret;
}
#define test_vfio_device_bind_iommufd(device_fd, iommufd, out_devid)          \
	ASSERT_EQ(0, _test_vfio_device_bind_iommufd(device_fd, iommufd,      \
						    out_devid))              \
		TH_LOG("VFIO_DEVICE_BIND_IOMMUFD: %s", strerror(errno))
#define test_err_vfio_device_bind_iommufd(_errno, device_fd, iommufd) \
	EXPECT_ERRNO(_errno, _test_vfio_device_bind_iommufd(device_fd, iommufd, NULL))

static inline int _test_vfio_device_attach_pt(int device_fd, __u32 pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = pt_id,
	};

	return ioctl(device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
}
#define test_vfio_device_attach_pt(device_fd, pt_id)                \
	ASSERT_EQ(0, _test_vfio_device_attach_pt(device_fd, pt_id)) \
		TH_LOG("VFIO_DEVICE_ATTACH_IOMMUFD_PT: %s", strerror(errno))

/* ---------------------------------------------------- iommufd ioctls */

static inline int iommufd_open(void)
{
	return open(IOMMUFD_PATH, O_RDWR | O_CLOEXEC);
}

static inline int _test_ioctl_ioas_alloc(int fd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (!ret)
		*id = cmd.out_ioas_id;
	return ret;
}
#define test_ioas_alloc(fd, id)                                     \
	({                                                          \
		ASSERT_EQ(0, _test_ioctl_ioas_alloc(fd, id))        \
			TH_LOG("IOMMU_IOAS_ALLOC: %s", strerror(errno)); \
		ASSERT_NE(0, *(id));                                \
	})

static inline int _test_ioctl_destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}
#define test_destroy(fd, id) ASSERT_EQ(0, _test_ioctl_destroy(fd, id))
#define test_err_destroy(_errno, fd, id) \
	EXPECT_ERRNO(_errno, _test_ioctl_destroy(fd, id))

/* ------------------------------------------------ KVM device attributes */

/* KVM_{SET,GET,HAS}_DEVICE_ATTR with any group/attr/addr (bad-input tests). */
static inline int _test_kvm_device_attr(int dev_fd, unsigned long op,
					__u32 group, __u64 attr, __u64 addr)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = addr,
	};

	return ioctl(dev_fd, op, &a);
}
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
static inline bool next_permutation(int *a, int n)
{
	int i, j, t;

	for (i = n - 2; i >= 0 && a[i] >= a[i + 1]; i--)
		;
	if (i >= 0) {
		for (j = n - 1; a[j] <= a[i]; j--)
			;
		t = a[i], a[i] = a[j], a[j] = t;
	}
	for (j = i + 1, t = n - 1; j < t; j++, t--) {
		int x = a[j];

		a[j] = a[t];
		a[t] = x;
	}
	return i >= 0;
}

/*
 * An ordering for the log: @names[@order[0]], @names[@order[1]], ...
 * separated by @sep, truncated to @len bytes. Returns @buf.
 */
static inline const char *order_str(const int *order, int n,
				    const char *const *names, const char *sep,
				    char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? sep : "",
				names[order[i]]);
	return buf;
}

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
static inline int uevent_log_open(struct uevent_log *log)
{
	memset(log, 0, sizeof(*log));
	log->sock = uevent_open();
	if (log->sock < 0)
		return -errno;
	kvm_own_stats_prefix(log->prefix, sizeof(log->prefix));
	return 0;
}

static inline void uevent_log_close(struct uevent_log *log)
{
	close_fd(&log->sock);
}

/* Watch the VM behind @vm_fd; call right after KVM_CREATE_VM returned. */
static inline void uevent_log_watch(struct uevent_log *log, int slot,
				    struct vm_watch *w, int vm_fd)
{
	memset(w, 0, sizeof(*w));
	kvm_vm_id_init(&w->id, vm_fd);
	w->armed = true;
	log->watch[slot] = w;
}

static inline void uevent_log_unwatch(struct uevent_log *log, int slot)
{
	log->watch[slot] = NULL;
}

/*
 * Account every queued event. 0, or -ENOBUFS if the socket overflowed
 * (events were lost: the counts are void and the caller must fail).
 */
static inline int uevent_log_pump(struct uevent_log *log)
{
	const char *event, *path;
	char buf[8192];
	int ret, i;

	while ((ret = kvm_uevent_recv(log->sock, buf, sizeof(buf), &event,
				      &path)) > 0) {
		bool create;

		if (!uevent_match(path, log->prefix, true))
			continue;
		if (!strcmp(event, "create"))
			create = true;
		else if (!strcmp(event, "destroy"))
			create = false;
		else
			continue;
		if (create)
			log->total.created++;
		else
			log->total.destroyed++;
		for (i = 0; i < VM_WATCH_MAX; i++) {
			struct vm_watch *w = log->watch[i];

			if (!w || !w->armed || strcmp(path, w->id.stats_path))
				continue;
			if (create)
				w->ev.created++;
			else
				w->ev.destroyed++;
		}
	}
	return ret;
}

/*
 * Pump until @cond(@arg) holds or @timeout_ms passed; returns
 * uevent_log_pump()'s error, else 0 (the caller asserts on the counts).
 */
static inline int uevent_log_wait(struct uevent_log *log,
				  bool (*cond)(const struct uevent_log *, const void *),
				  const void *arg, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int ret;

	do {
		ret = uevent_log_pump(log);
		if (ret || cond(log, arg))
			return ret;
	} while (uevent_sock_wait(log->sock, deadline));
	return 0;
}

static inline bool __vm_watch_destroyed(const struct uevent_log *log,
					const void *arg)
{
	return ((const struct vm_watch *)arg)->ev.destroyed > 0;
}

static inline bool __vm_watch_created(const struct uevent_log *log,
				      const void *arg)
{
	return ((const struct vm_watch *)arg)->ev.created > 0;
}

static inline bool __uevent_log_balanced(const struct uevent_log *log,
					 const void *arg)
{
	return log->total.destroyed >= log->total.created;
}

/* Wait for the watched VM's destroy event (it must be armed and watched). */
static inline int vm_watch_wait_destroyed(struct uevent_log *log,
					  struct vm_watch *w, int timeout_ms)
{
	return uevent_log_wait(log, __vm_watch_destroyed, w, timeout_ms);
}

static inline int vm_watch_wait_created(struct uevent_log *log,
					struct vm_watch *w, int timeout_ms)
{
	return uevent_log_wait(log, __vm_watch_created, w, timeout_ms);
}

/* Wait until every VM created so far has been destroyed (or timeout). */
static inline int uevent_log_wait_balanced(struct uevent_log *log, int timeout_ms)
{
	return uevent_log_wait(log, __uevent_log_balanced, NULL, timeout_ms);
}

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
static inline int _test_mkvm_vm(int device_fd, char *buf, size_t len)
{
	ssize_t n;

	n = pread(device_fd, buf, len - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	return n;
}

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
static inline int mkvm_set_fail_open(bool on)
{
	int fd, ret = 0;

	fd = open(MKVM_FAIL_OPEN, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

/* ------------------------------------------------ misc */

/* An fd number that is certainly not open: dup something, then close it. */
static inline int closed_fd_number(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

/* Raise RLIMIT_NOFILE's soft limit to at least @want (up to the hard one). */
static inline void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

#endif /* __SELFTEST_VM_FILE_UTILS_H */
