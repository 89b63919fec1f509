// SPDX-License-Identifier: GPL-2.0-only
/*
 * vm_file_lib: KVM: VMs, the KVM VFIO device, a VM's debugfs directory and uevents.
 * Declared and documented in vm_file_utils.h.
 */
#define VM_FILE_LIB_UNIT kvm
#include "vm_file_utils.h"

/* ------------------------------------------------------------------ KVM */

int _test_kvm_create_device(int vm_fd, __u32 type, __u32 flags, int *dev_fd)
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

int _test_kvm_vfio_file(int dev_fd, __u64 op, int vfio_fd)
{
	__s32 fd = vfio_fd;
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_FILE,
		.attr = op,
		.addr = (uintptr_t)&fd,
	};

	return ioctl(dev_fd, KVM_SET_DEVICE_ATTR, &attr);
}

int kvm_has_vfio_device(int kvm_fd)
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

void kvm_vm_id_init(struct kvm_vm_id *id, int vm_fd)
{
	strfmt(id->name, sizeof(id->name), "%d-%d", getpid(), vm_fd);
	strfmt(id->stats_path, sizeof(id->stats_path), "/kvm/%s", id->name);
	strfmt(id->debugfs, sizeof(id->debugfs), "%s/%s", KVM_DEBUGFS_DIR,
	       id->name);
}

void kvm_own_stats_prefix(char *buf, size_t len)
{
	strfmt(buf, len, "/kvm/%d-", getpid());
}

bool kvm_vm_debugfs_wait_gone(const struct kvm_vm_id *id, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (kvm_vm_debugfs_present(id)) {
		if (now_ms() >= deadline)
			return false;
		usleep(1000);
	}
	return true;
}

int kvm_debugfs_count_own(void)
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

int uevent_open(void)
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

static bool uevent_match(const char *stats_path, const char *want, bool prefix)
{
	if (prefix)
		return !strncmp(stats_path, want, strlen(want));
	return !strcmp(stats_path, want);
}

int kvm_uevent_recv(int sock, char *buf, size_t size,
		    const char **event, const char **path, const char **pid)
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
		if (pid)
			*pid = NULL;
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
			else if (pid && !strncmp(p, "PID=", 4))
				*pid = p + 4;
		}
		if (*event && (*path || pid) && devpath &&
		    !strcmp(devpath, KVM_UEVENT_DEVPATH))
			return 1;
	}
}

/*
 * Wait up to @deadline (now_ms()) for @sock to have something to read;
 * false if the deadline has passed.
 */
static bool uevent_sock_wait(int sock, long long deadline)
{
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	long long left = deadline - now_ms();

	if (left <= 0)
		return false;
	poll(&pfd, 1, left);
	return true;
}

int kvm_uevents_read(int sock, const char *want, bool prefix,
		     struct kvm_uevents *ev)
{
	const char *event, *path;
	char buf[8192];
	int ret;

	while ((ret = kvm_uevent_recv(sock, buf, sizeof(buf), &event,
				      &path, NULL)) > 0) {
		if (!uevent_match(path, want, prefix))
			continue;
		if (!strcmp(event, "create"))
			ev->created++;
		else if (!strcmp(event, "destroy"))
			ev->destroyed++;
	}
	return ret;
}

int kvm_uevents_wait(int sock, const char *want, bool prefix,
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

/* ------------------------------------------------ KVM device attributes */

int _test_kvm_device_attr(int dev_fd, unsigned long op,
			  __u32 group, __u64 attr, __u64 addr)
{
	struct kvm_device_attr a = {
		.group = group,
		.attr = attr,
		.addr = addr,
	};

	return ioctl(dev_fd, op, &a);
}

/* ------------------------------------------- uevent log of several VMs */

int uevent_log_open(struct uevent_log *log)
{
	memset(log, 0, sizeof(*log));
	log->sock = uevent_open();
	if (log->sock < 0)
		return -errno;
	kvm_own_stats_prefix(log->prefix, sizeof(log->prefix));
	return 0;
}

void uevent_log_watch(struct uevent_log *log, int slot,
		      struct vm_watch *w, int vm_fd)
{
	memset(w, 0, sizeof(*w));
	kvm_vm_id_init(&w->id, vm_fd);
	w->armed = true;
	log->watch[slot] = w;
}

int uevent_log_pump(struct uevent_log *log)
{
	const char *event, *path;
	char buf[8192];
	int ret, i;

	while ((ret = kvm_uevent_recv(log->sock, buf, sizeof(buf), &event,
				      &path, NULL)) > 0) {
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
static int uevent_log_wait(struct uevent_log *log,
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

static bool __vm_watch_destroyed(const struct uevent_log *log, const void *arg)
{
	return ((const struct vm_watch *)arg)->ev.destroyed > 0;
}

static bool __vm_watch_created(const struct uevent_log *log, const void *arg)
{
	return ((const struct vm_watch *)arg)->ev.created > 0;
}

static bool __uevent_log_balanced(const struct uevent_log *log, const void *arg)
{
	return log->total.destroyed >= log->total.created;
}

int vm_watch_wait_destroyed(struct uevent_log *log,
			    struct vm_watch *w, int timeout_ms)
{
	return uevent_log_wait(log, __vm_watch_destroyed, w, timeout_ms);
}

int vm_watch_wait_created(struct uevent_log *log,
			  struct vm_watch *w, int timeout_ms)
{
	return uevent_log_wait(log, __vm_watch_created, w, timeout_ms);
}

int uevent_log_wait_balanced(struct uevent_log *log, int timeout_ms)
{
	return uevent_log_wait(log, __uevent_log_balanced, NULL, timeout_ms);
}
