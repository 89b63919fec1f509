/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the vfio_kvm and iommufd_viommu selftests.
 *
 * - KVM: VM, vCPU and KVM VFIO device creation, KVM_DEV_VFIO_FILE_ADD/DEL.
 * - Oracles for VM lifetime: the VM's debugfs directory
 *   (/sys/kernel/debug/kvm/<pid>-<vmfd>) and the KVM uevents
 *   (EVENT=create/destroy, STATS_PATH=/kvm/<pid>-<vmfd>) read from a
 *   NETLINK_KOBJECT_UEVENT socket; open fd counting.
 * - VFIO: device discovery through sysfs (mtty mdev, vfio-pci device), group
 *   and device cdev ioctls.
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
#ifndef __SELFTEST_VFIO_KVM_UTILS_H
#define __SELFTEST_VFIO_KVM_UTILS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <linux/iommufd.h>
#include <linux/kvm.h>
#include <linux/netlink.h>
#include <linux/vfio.h>

#include "kselftest_harness.h"

#define KVM_DEV_PATH		"/dev/kvm"
#define KVM_DEBUGFS_DIR		"/sys/kernel/debug/kvm"
#define KVM_UEVENT_DEVPATH	"/devices/virtual/misc/kvm"
#define VFIO_CONTAINER_PATH	"/dev/vfio/vfio"
#define IOMMUFD_PATH		"/dev/iommu"
#define MDEV_BUS_DIR		"/sys/bus/mdev/devices"
#define VFIO_PCI_DRV_DIR	"/sys/bus/pci/drivers/vfio-pci"
#define PCI_DEV_DIR		"/sys/bus/pci/devices"

/* Environment overrides for device discovery (labs with other devices). */
#define ENV_MDEV		"VFIO_KVM_MDEV"		/* mdev uuid */
#define ENV_PCI			"VFIO_KVM_PCI"		/* PCI BDF */

/* QEMU's "edu" device, preferred among vfio-pci devices. */
#define EDU_VENDOR		0x1234
#define EDU_DEVICE		0x11e8

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

static inline int read_sysfs_hex(const char *dir, const char *attr, unsigned long *val)
{
	char path[PATH_MAX], buf[32];
	ssize_t len;
	int fd;

	strfmt(path, sizeof(path), "%s/%s", dir, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = 0;
	*val = strtoul(buf, NULL, 16);
	return 0;
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
 * Read every queued uevent and count KVM create/destroy events whose
 * STATS_PATH equals @want (starts with @want if @prefix). Returns 0, or
 * -ENOBUFS if the socket overflowed: events were lost and counts are void.
 */
static inline int kvm_uevents_read(int sock, const char *want, bool prefix,
			    struct kvm_uevents *ev)
{
	char buf[8192];

	for (;;) {
		const char *event = NULL, *path = NULL, *devpath = NULL;
		struct sockaddr_nl src = {};
		struct iovec iov = { buf, sizeof(buf) - 1 };
		struct msghdr msg = {
			.msg_name = &src,
			.msg_namelen = sizeof(src),
			.msg_iov = &iov,
			.msg_iovlen = 1,
		};
		ssize_t len;
		char *p;

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
				event = p + 6;
			else if (!strncmp(p, "STATS_PATH=", 11))
				path = p + 11;
			else if (!strncmp(p, "DEVPATH=", 8))
				devpath = p + 8;
		}
		if (!event || !path || !devpath ||
		    strcmp(devpath, KVM_UEVENT_DEVPATH) ||
		    !uevent_match(path, want, prefix))
			continue;
		if (!strcmp(event, "create"))
			ev->created++;
		else if (!strcmp(event, "destroy"))
			ev->destroyed++;
	}
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

	for (;;) {
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		long long left;

		ret = kvm_uevents_read(sock, want, prefix, ev);
		if (ret)
			return ret;
		if (ev->created >= created && ev->destroyed >= destroyed)
			return 0;
		left = deadline - now_ms();
		if (left <= 0)
			return 0;
		poll(&pfd, 1, left);
	}
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

static inline bool mdev_is_mtty(const char *sysfs)
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
	return !strncmp(type, "mtty-", 5);
}

/*
 * The @nth (from 0, in name order) mtty mdev under /sys/bus/mdev/devices,
 * or the mdev named by $VFIO_KVM_MDEV (@nth == 0 only). 0 or -ENOENT (d->why).
 */
static inline int vfio_find_mtty(struct vfio_dev_info *d, int nth)
{
	const char *env = getenv(ENV_MDEV);
	struct dirent **names;
	int n, i, found = -1;

	memset(d, 0, sizeof(*d));
	if (env && *env && nth == 0) {
		strfmt(d->name, sizeof(d->name), "%s", env);
		strfmt(d->sysfs, sizeof(d->sysfs), "%s/%s", MDEV_BUS_DIR, env);
		if (access(d->sysfs, F_OK)) {
			strfmt(d->why, sizeof(d->why), "%s=%s: no %s",
			       ENV_MDEV, env, d->sysfs);
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
		    mdev_is_mtty(sysfs) && ++found == nth) {
			strfmt(d->name, sizeof(d->name), "%s", names[i]->d_name);
			strfmt(d->sysfs, sizeof(d->sysfs), "%s", sysfs);
		}
		free(names[i]);
	}
	free(names);
	if (found < nth) {
		if (found < 0)
			strfmt(d->why, sizeof(d->why),
			       "no mtty mdev under %s (CONFIG_SAMPLE_VFIO_MDEV_MTTY; create one: echo $(uuidgen) > /sys/class/mdev_bus/mtty/mdev_supported_types/mtty-1/create; or set %s=<uuid>)",
			       MDEV_BUS_DIR, ENV_MDEV);
		else
			strfmt(d->why, sizeof(d->why),
			       "%d mtty mdev(s) under %s, this test needs %d",
			       found + 1, MDEV_BUS_DIR, nth + 1);
		return -ENOENT;
	}
	vfio_dev_paths(d);
	return 0;
}

/*
 * A PCI device bound to vfio-pci: $VFIO_KVM_PCI if set, else QEMU's edu
 * device, else the first one in name order. 0 or -ENOENT (d->why).
 */
static inline int vfio_find_pci(struct vfio_dev_info *d)
{
	const char *env = getenv(ENV_PCI);
	struct dirent **names;
	bool edu = false;
	int n, i;

	memset(d, 0, sizeof(*d));
	if (env && *env) {
		strfmt(d->name, sizeof(d->name), "%s", env);
	} else {
		n = scandir(VFIO_PCI_DRV_DIR, &names, NULL, alphasort);
		if (n < 0) {
			strfmt(d->why, sizeof(d->why),
			       "no %s (CONFIG_VFIO_PCI off?)", VFIO_PCI_DRV_DIR);
			return -ENOENT;
		}
		for (i = 0; i < n; i++) {
			const char *bdf = names[i]->d_name;
			unsigned long vendor, device;
			char sysfs[PATH_MAX];

			/* Devices are "dddd:bb:dd.f" links; skip bind, new_id... */
			if (!strchr(bdf, ':') || !strchr(bdf, '.'))
				goto next;
			strfmt(sysfs, sizeof(sysfs), "%s/%s", PCI_DEV_DIR, bdf);
			if (!edu && !read_sysfs_hex(sysfs, "vendor", &vendor) &&
			    !read_sysfs_hex(sysfs, "device", &device) &&
			    vendor == EDU_VENDOR && device == EDU_DEVICE) {
				strfmt(d->name, sizeof(d->name), "%s", bdf);
				edu = true;
			} else if (!d->name[0]) {
				strfmt(d->name, sizeof(d->name), "%s", bdf);
			}
next:
			free(names[i]);
		}
		free(names);
		if (!d->name[0]) {
			strfmt(d->why, sizeof(d->why),
			       "no device bound to vfio-pci under %s (bind one, e.g. QEMU's edu; or set %s=<bdf>)",
			       VFIO_PCI_DRV_DIR, ENV_PCI);
			return -ENOENT;
		}
	}
	strfmt(d->sysfs, sizeof(d->sysfs), "%s/%s", PCI_DEV_DIR, d->name);
	if (access(d->sysfs, F_OK)) {
		strfmt(d->why, sizeof(d->why), "no PCI device %s", d->sysfs);
		return -ENOENT;
	}
	vfio_dev_paths(d);
	return 0;
}

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

#endif /* __SELFTEST_VFIO_KVM_UTILS_H */
