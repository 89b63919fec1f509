// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every error exit of the KVM/VFIO paths that take a VM reference, with a VM
 * attached, and the VM destroyed exactly once afterwards.
 *
 * fail_nth: each call of the series' KVM/VFIO side runs under
 * /proc/thread-self/fail-nth for n = 1, 2, ... (failslab set up as
 * iommufd_viommu_fail_nth does: every slab allocation may fail, quietly)
 * until the n-th fault-injection point is beyond the call. Only the call
 * under test is armed; what it needs is made before, without injection.
 * The call either answers exactly the errno of the point that fired or
 * succeeds (KVM ignores some failures, e.g. of its debugfs files); either
 * way its result then works (the device opens and pins its VM, the KVM
 * VFIO device holds the VM...), and once everything is closed the VM is
 * destroyed exactly once: a reference taken on the VM file or struct kvm
 * and not dropped on an error path shows as a VM that never dies, one
 * dropped twice as an early destroy or a KASAN/refcount report (the
 * kernel-log oracle of vm_file_utils.h runs around every test).
 *
 * kvm_copy_out, cdev_copy_out: the copy-to-user that follows the VM
 * reference (KVM_CREATE_DEVICE, VFIO_DEVICE_BIND_IOMMUFD) faults on a
 * read-only page: EFAULT, and the reference is accounted for.
 */
#include "vfio_kvm_path.h"
#include "fail_nth.h"

#include <sys/mman.h>

/* Far above the number of points of any call here. */
#define FAIL_NTH_MAX		1000

/* ------------------------------------------------------ fault injection */

/*
 * The iommufd points (fail_iommufd: iommufd_should_fail(), CONFIG_IOMMUFD_TEST)
 * a call can pass answer different errnos: ENOENT in iommufd_get_object(),
 * EINVAL in iopt_table_enforce_dev_resv_regions(), ... Each variant lists
 * the errnos of the ones its call passes, in order (at most this many).
 */
#define FN_IOMMUFD_POINTS	4

/* ----------------------------------------------- KVM_CREATE_VM's VM */

/*
 * The VM of a KVM_CREATE_VM under injection cannot be watched with the
 * uevent log: its create event may be lost (an injected failure in
 * kvm_uevent_notify_change(), which KVM ignores, or in the broadcast to
 * this socket: ENOBUFS), and a VM whose debugfs_create_dir() failed (KVM
 * ignores that too) has no STATS_PATH in its events. Its destroy event,
 * never under injection (fail-nth fails one point, and the destroy of a
 * failed KVM_CREATE_VM follows that point), names it by STATS_PATH, or
 * without a debugfs dir by PID (the create event then was whole and set
 * kvm->userspace_pid). One VM exists at a time, so either identifies it.
 * Adds the destroy events of the VM @id to *@destroyed and the
 * messages lost to *@drops; 0 or -errno.
 */
static int vm_destroy_events(int sock, const struct kvm_vm_id *id,
			     unsigned int *destroyed, unsigned int *drops)
{
	const char *event, *path, *evpid;
	char buf[8192], pid[16];
	int ret;

	strfmt(pid, sizeof(pid), "%d", getpid());
	for (;;) {
		ret = kvm_uevent_recv(sock, buf, sizeof(buf), &event, &path,
				      &evpid);
		if (ret == -ENOBUFS) {
			(*drops)++;
			continue;
		}
		if (ret <= 0)
			return ret;
		if (strcmp(event, "destroy"))
			continue;
		if (path ? !strcmp(path, id->stats_path) :
			   evpid && !strcmp(evpid, pid))
			(*destroyed)++;
	}
}

/* The same, waiting up to VM_DESTROY_TIMEOUT_MS for at least @want. */
static int vm_destroy_events_wait(int sock, const struct kvm_vm_id *id,
				  unsigned int want, unsigned int *destroyed,
				  unsigned int *drops)
{
	long long deadline = now_ms() + VM_DESTROY_TIMEOUT_MS;
	struct pollfd pfd = { .fd = sock, .events = POLLIN };
	int ret;

	for (;;) {
		ret = vm_destroy_events(sock, id, destroyed, drops);
		if (ret || *destroyed >= want || now_ms() >= deadline)
			return ret;
		poll(&pfd, 1, deadline - now_ms());
	}
}

/* --------------------------------------------------------- set-up */

/*
 * In a FIXTURE_SETUP: KVM's side (vk_kvm_init()) or, with @dev, the first
 * device of @kind on the path (@cdev, @compat: see vfio_kvm_path.h) with
 * it; the uevent log; the fd count. SKIP with the reason when something is
 * absent, FAIL when it is broken or when $VFIO_KVM_REQUIRE names mtty and
 * it is absent (a vfio-pci device is named by $VFIO_KVM_PCI: set to
 * something unusable, the path is broken).
 */
#define fn_path_setup(self, dev, kind, cdev, compat)                           \
	({                                                                     \
		char __why[600];                                               \
		bool __ok;                                                     \
									       \
		vk_handles_init(&(self)->h);                                   \
		(self)->log.sock = -1;                                         \
		(self)->p.kvm_fd = -1;                                         \
		if (dev)                                                       \
			__ok = vk_path_init(&(self)->p, kind, cdev, compat, 0, \
					    __why, sizeof(__why));             \
		else                                                           \
			__ok = vk_kvm_init(&(self)->p, __why,                  \
					   sizeof(__why)) > 0;                 \
		if (!__ok) {                                                   \
			struct vfio_dev_info __d = {};                         \
									       \
			vk_path_fini(&(self)->p);                              \
			ASSERT_LE(0, vk_kvm_probe) TH_LOG("%s", __why);        \
			ASSERT_FALSE((self)->p.broken) TH_LOG("%s", __why);    \
			if ((dev) && (kind) == VK_MTTY &&                      \
			    feature_required("mtty"))                          \
				ASSERT_EQ(0, vfio_find_mtty(&__d, 0))          \
					TH_LOG("mtty: required (%s), but absent: %s", \
					       ENV_REQUIRE, __d.why);          \
			SKIP(return, "%s", __why);                             \
		}                                                              \
		if (!(dev))                                                    \
			strfmt((self)->p.what, sizeof((self)->p.what), "KVM"); \
		vk_log_setup(&(self)->p, &(self)->log);                        \
		vk_base_fds_setup(&(self)->base_fds);                          \
	})

/* A VM, watched in slot 0 of @log (no injection armed). */
#define fn_create_vm(self, w)                                                  \
	({                                                                     \
		test_kvm_create_vm((self)->p.kvm_fd, &(self)->h.fd[VK_VM]);    \
		uevent_log_watch(&(self)->log, 0, w, (self)->h.fd[VK_VM]);     \
		ASSERT_TRUE(kvm_vm_debugfs_present(&(w)->id))                  \
			TH_LOG("new VM has no %s", (w)->id.debugfs);           \
	})

/* The open device: its device fd (group path) or its cdev fd. */
#define fn_close_device(p, h) vk_close(h, (p)->cdev ? VK_FILE : VK_DEVICE)

/*
 * The uevent log after a call under injection: no KVM event can be lost
 * (no VM is created or destroyed while armed), but a failure injected into
 * another device's uevent broadcast marks the socket ENOBUFS: read once
 * more to clear it.
 */
#define fn_log_pump(log, drops)                                                \
	({                                                                     \
		int __err = uevent_log_pump(log);                              \
		if (__err == -ENOBUFS) {                                       \
			(*(drops))++;                                          \
			__err = uevent_log_pump(log);                          \
		}                                                              \
		ASSERT_EQ(0, __err) TH_LOG("uevent socket: %s",                \
					   strerror(-__err));                  \
	})

/* ------------------------------------------------------ fail-nth sweep */

enum fn_call {
	CALL_CREATE_VM,		/* KVM_CREATE_VM */
	CALL_CREATE_DEVICE,	/* KVM_CREATE_DEVICE(KVM_DEV_TYPE_VFIO) */
	CALL_FILE_ADD,		/* KVM_DEV_VFIO_FILE_ADD of the group/cdev fd */
	CALL_OPEN,		/* VFIO_GROUP_GET_DEVICE_FD / _BIND_IOMMUFD */
};

FIXTURE(fail_nth)
{
	struct vk_path p;
	struct uevent_log log;
	struct vk_handles h;
	struct vm_watch w;
	int nth_fd;
	int base_fds;
	unsigned int drops;	/* uevent messages lost to injection */
};

FIXTURE_VARIANT(fail_nth)
{
	const char *name;	/* the call, for the messages */
	enum fn_call call;
	bool dev;		/* needs a device: */
	enum vk_dev_kind kind;	/* this one (mtty or vfio-pci), */
	bool cdev;		/* on the cdev path (else the group path), */
	bool compat;		/* group path: in the iommufd compat container */
	/* the errno of each fail_iommufd point the call passes, in order */
	int iommufd_errno[FN_IOMMUFD_POINTS];
};

FIXTURE_VARIANT_ADD(fail_nth, create_vm)
{
	.name = "KVM_CREATE_VM", .call = CALL_CREATE_VM,
};

FIXTURE_VARIANT_ADD(fail_nth, create_device)
{
	.name = "KVM_CREATE_DEVICE(VFIO)", .call = CALL_CREATE_DEVICE,
};

FIXTURE_VARIANT_ADD(fail_nth, file_add_group)
{
	.name = "KVM_DEV_VFIO_FILE_ADD(group)", .call = CALL_FILE_ADD,
	.dev = true, .kind = VK_MTTY, .cdev = false,
};

FIXTURE_VARIANT_ADD(fail_nth, file_add_cdev)
{
	.name = "KVM_DEV_VFIO_FILE_ADD(cdev)", .call = CALL_FILE_ADD,
	.dev = true, .kind = VK_MTTY, .cdev = true,
};

FIXTURE_VARIANT_ADD(fail_nth, group_get_device_fd)
{
	.name = "VFIO_GROUP_GET_DEVICE_FD", .call = CALL_OPEN,
	.dev = true, .kind = VK_MTTY, .cdev = false,
};

FIXTURE_VARIANT_ADD(fail_nth, cdev_bind_iommufd)
{
	.name = "VFIO_DEVICE_BIND_IOMMUFD", .call = CALL_OPEN,
	.dev = true, .kind = VK_MTTY, .cdev = true,
};

/* The physical device: iommufd_device_bind() and its error exits. */
FIXTURE_VARIANT_ADD(fail_nth, cdev_bind_iommufd_pci)
{
	.name = "VFIO_DEVICE_BIND_IOMMUFD(vfio-pci)", .call = CALL_OPEN,
	.dev = true, .kind = VK_PCI, .cdev = true,
};

/*
 * The same bind, from the group path: then vfio_iommufd_compat_attach_ioas()
 * attaches the device to the compat IOAS (iommufd_device_change_pt()'s
 * lookup, iommufd_device_attach_reserved_iova()).
 */
FIXTURE_VARIANT_ADD(fail_nth, compat_get_device_fd_pci)
{
	.name = "VFIO_GROUP_GET_DEVICE_FD(vfio-pci, iommufd compat)",
	.call = CALL_OPEN, .dev = true, .kind = VK_PCI, .compat = true,
	.iommufd_errno = { ENOENT, EINVAL },
};

FIXTURE_SETUP(fail_nth)
{
	const char *why;

	self->nth_fd = -1;
	why = failslab_setup();
	if (why) {
		ASSERT_NE(0, strncmp(why, "FAIL", 4)) TH_LOG("%s", why);
		feature_absent("failslab", why);
	}
	fn_path_setup(self, variant->dev, variant->kind, variant->cdev,
		      variant->compat);
	self->nth_fd = fail_nth_open();
	ASSERT_LE(0, self->nth_fd) TH_LOG("%s: %s", FAIL_NTH_PATH, strerror(errno));
	self->base_fds++;
}

FIXTURE_TEARDOWN(fail_nth)
{
	fail_nth_close(&self->nth_fd);
	vk_handles_close(&self->h);
	uevent_log_close(&self->log);
	vk_path_fini(&self->p);
}

/* What the call needs, made before injection is armed. */
static void fn_prepare(struct __test_metadata *_metadata,
		       FIXTURE_DATA(fail_nth) *self,
		       const FIXTURE_VARIANT(fail_nth) *variant)
{
	struct vk_handles *h = &self->h;

	if (variant->call == CALL_CREATE_VM)
		return;
	fn_create_vm(self, &self->w);
	if (variant->call == CALL_CREATE_DEVICE)
		return;
	test_kvm_create_vfio_device(h->fd[VK_VM], &h->fd[VK_KVM_VFIO]);
	vk_open_file(&self->p, h);
	if (variant->call == CALL_FILE_ADD)
		return;
	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
}

/* The call under injection: 0 or its errno. */
static int fn_call(FIXTURE_DATA(fail_nth) *self,
		   const FIXTURE_VARIANT(fail_nth) *variant)
{
	struct vk_handles *h = &self->h;

	switch (variant->call) {
	case CALL_CREATE_VM:
		h->fd[VK_VM] = _test_kvm_create_vm(self->p.kvm_fd);
		return h->fd[VK_VM] < 0 ? errno : 0;
	case CALL_CREATE_DEVICE:
		return _test_kvm_create_device(h->fd[VK_VM], KVM_DEV_TYPE_VFIO,
					       0, &h->fd[VK_KVM_VFIO]) ?
			       errno : 0;
	case CALL_FILE_ADD:
		return _test_kvm_vfio_file(h->fd[VK_KVM_VFIO],
					   KVM_DEV_VFIO_FILE_ADD,
					   h->fd[VK_FILE]) ? errno : 0;
	default:
		/* On the cdev path the BIND alone (a vfio-pci device is not attached). */
		if (self->p.cdev)
			return _test_vfio_device_bind_iommufd(h->fd[VK_FILE],
							      h->fd[VK_IOMMU],
							      &h->devid) ?
				       errno : 0;
		return _vk_open_device(&self->p, h) ? errno : 0;
	}
}

/*
 * KVM_CREATE_VM: kvm_dev_ioctl_create_vm() -> kvm_create_vm_file() (patch
 * 1): kvm_create_vm()'s unwinding, and anon_inode_getfile()'s failure
 * after the VM exists (kvm_put_kvm(): the VM is destroyed inside the call).
 * A failed call installs no fd and leaves no VM of this process: its VM,
 * if it got as far as a debugfs dir, was destroyed at most once. A
 * successful one is a working VM, named after its fd, destroyed exactly
 * once at its close.
 */
static void fn_check_create_vm(struct __test_metadata *_metadata,
			       FIXTURE_DATA(fail_nth) *self, int err,
			       int vm_fd_nr, int fds, const char *what)
{
	struct vk_handles *h = &self->h;
	unsigned int destroyed = 0;

	kvm_vm_id_init(&self->w.id, vm_fd_nr);
	if (err) {
		ASSERT_EQ(-1, h->fd[VK_VM]);
		ASSERT_EQ(fds, count_open_fds()) TH_LOG("%s: fd installed", what);
		ASSERT_EQ(0, vm_destroy_events(self->log.sock, &self->w.id,
					       &destroyed, &self->drops));
		ASSERT_GE(1, destroyed)
			TH_LOG("%s: the VM of the failed call destroyed %u times",
			       what, destroyed);
		ASSERT_FALSE(kvm_vm_debugfs_present(&self->w.id))
			TH_LOG("%s: %s left behind by the failed call", what,
			       self->w.id.debugfs);
		ASSERT_EQ(0, kvm_debugfs_count_own());
		return;
	}
	ASSERT_EQ(vm_fd_nr, h->fd[VK_VM]);
	ASSERT_EQ(fds + 1, count_open_fds());
	ASSERT_LT(0, ioctl(h->fd[VK_VM], KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY))
		TH_LOG("%s: the new VM does not answer: %s", what, strerror(errno));
	ASSERT_EQ(0, vm_destroy_events(self->log.sock, &self->w.id,
				       &destroyed, &self->drops));
	ASSERT_EQ(0, destroyed) TH_LOG("%s: VM destroyed while its fd is open", what);
	vk_close(h, VK_VM);
	ASSERT_EQ(0, vm_destroy_events_wait(self->log.sock, &self->w.id, 1,
					    &destroyed, &self->drops));
	/* A late duplicate shows in the next round (same name) or at the end. */
	ASSERT_EQ(1, destroyed)
		TH_LOG("%s: %u destroy events after the VM fd's close (leak if 0)",
		       what, destroyed);
	ASSERT_TRUE(kvm_vm_debugfs_wait_gone(&self->w.id, VM_DESTROY_TIMEOUT_MS));
	ASSERT_EQ(0, kvm_debugfs_count_own());
}

/*
 * KVM_CREATE_DEVICE(VFIO): kvm_ioctl_create_device(): kvm_vfio_create()'s
 * failure, and anon_inode_getfd()'s after kvm_get_kvm()
 * (kvm_put_kvm_no_destroy(), ->release()). A failed call installs no fd
 * and leaves no device on the VM's list (a second one would be EBUSY): the
 * device is made now. Then the device fd holds struct kvm: the VM outlives
 * its fd and dies, once, with the device fd.
 */
static void fn_check_create_device(struct __test_metadata *_metadata,
				   FIXTURE_DATA(fail_nth) *self, int err,
				   int fds, const char *what)
{
	struct vk_handles *h = &self->h;

	if (err) {
		ASSERT_EQ(fds, count_open_fds()) TH_LOG("%s: fd installed", what);
		test_kvm_create_vfio_device(h->fd[VK_VM], &h->fd[VK_KVM_VFIO]);
	} else {
		ASSERT_EQ(fds + 1, count_open_fds());
	}
	ASSERT_EQ(0, _test_kvm_device_attr(h->fd[VK_KVM_VFIO],
					   KVM_HAS_DEVICE_ATTR,
					   KVM_DEV_VFIO_FILE,
					   KVM_DEV_VFIO_FILE_ADD, 0))
		TH_LOG("%s: not a KVM VFIO device: %s", what, strerror(errno));
	vk_close(h, VK_VM);
	vm_assert_alive(&self->log, &self->w, what);
	vk_close(h, VK_KVM_VFIO);
	vm_assert_destroyed(&self->log, &self->w, what);
}

/*
 * KVM_DEV_VFIO_FILE_ADD: kvm_vfio_file_add(), whose allocation precedes
 * kvm_vfio_file_set_kvm() (the VM file cached in the group / device file).
 * A failed call caches no VM and lists no file: a device opened now holds
 * no VM, and a FILE_ADD now works (not EEXIST) without giving the open
 * device one: the VM dies, once, with its own fds. After a successful call
 * the device opened takes the VM and pins it past the VM fds.
 */
static void fn_check_file_add(struct __test_metadata *_metadata,
			      FIXTURE_DATA(fail_nth) *self, int err,
			      int fds, const char *what)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;

	ASSERT_EQ(fds, count_open_fds());
	vk_open_device(p, h);
	if (err)
		test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_close(h, VK_VM);
	vk_close(h, VK_KVM_VFIO);
	if (err) {
		vm_assert_destroyed(&self->log, &self->w, what);
		return;
	}
	vm_assert_alive(&self->log, &self->w, what);
	fn_close_device(p, h);
	vm_assert_destroyed(&self->log, &self->w, what);
}

/*
 * VFIO_GROUP_GET_DEVICE_FD: vfio_group_ioctl_get_device_fd() ->
 * vfio_device_open_file(): vfio_df_group_open()'s unwinding after
 * vfio_device_group_get_kvm_safe() (out_put_kvm), and anon_inode_getfile()'s
 * failure after the open (vfio_df_group_close(): the VM reference dropped).
 * VFIO_DEVICE_BIND_IOMMUFD: vfio_df_ioctl_bind_iommufd(): vfio_df_open()'s
 * failure after vfio_df_get_kvm_safe() (out_put_kvm). The mtty device binds
 * an iommufd access; the vfio-pci device, on the cdev path and in the
 * compat container, an iommufd_device: iommufd_device_bind() takes the VM
 * file before iommufd_bind_iommu() (iommufd_get_group()'s allocations, the
 * DMA-owner claim), whose failure leaves iommufd_device_destroy() a
 * half-made device that must still drop it.
 * A failed call installs no fd and leaves the device closed: it opens now.
 * Either way the open device pins the VM past the VM fds, and the VM dies,
 * once, with the device.
 */
static void fn_check_open(struct __test_metadata *_metadata,
			  FIXTURE_DATA(fail_nth) *self, int err, int fds,
			  const char *what)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;

	if (err) {
		ASSERT_EQ(fds, count_open_fds()) TH_LOG("%s: fd installed", what);
		vk_open_device(p, h);
	} else {
		ASSERT_EQ(fds + !p->cdev, count_open_fds());
	}
	vk_close(h, VK_VM);
	vk_close(h, VK_KVM_VFIO);
	vm_assert_alive(&self->log, &self->w, what);
	fn_close_device(p, h);
	vm_assert_destroyed(&self->log, &self->w, what);
}

/*
 * Rule: every fault-injection point of the call (only it is armed) either
 * fails it with exactly the errno of that point or is survived, and leaks
 * or over-drops no reference: the call's result (or, after a failure, the
 * same call without injection) works, no fd is left behind, and the VM is
 * destroyed exactly once when everything is closed. The sweep hits points,
 * and some of them fail the call.
 * Can fail: an error path that keeps the VM file / struct kvm reference
 * (no destroy event), drops it twice (early destroy, KASAN, refcount), a
 * wrong errno, an fd installed by a failed call, a half-done call (device
 * still listed or open: EBUSY/EEXIST/EINVAL on the retry), no point hit.
 */
TEST_F_TIMEOUT(fail_nth, sweep, 300)
{
	unsigned int n, points = 0, failed = 0, lookups = 0;
	long long t0 = now_ms();
	enum fail_kind kind;
	int err, want, fds, vm_fd_nr;
	char what[160];
	bool injected;

	for (n = 1; n < FAIL_NTH_MAX; n++) {
		fn_prepare(_metadata, self, variant);
		vm_fd_nr = closed_fd_number();	/* KVM_CREATE_VM's fd */
		fds = count_open_fds();
		fail_nth_call(self->nth_fd, n, fn_call(self, variant), err,
			      injected, kind);
		strfmt(what, sizeof(what), "%s, fail-nth %u (%s)",
		       variant->name, n,
		       fail_kind_str(kind));
		if (variant->call != CALL_CREATE_VM)
			fn_log_pump(&self->log, &self->drops);

		if (!injected) {
			/* The call has fewer than n points: the sweep is done. */
			fail_nth_assert_ran_through(err, kind, what);
		} else {
			points++;
			ASSERT_GT(NR_FAIL_KINDS, kind)
				TH_LOG("%s: injected, but not by one known attribute", what);
			if (kind != FAIL_KIND_LOOKUP) {
				want = ENOMEM;
			} else {
				want = lookups < FN_IOMMUFD_POINTS ?
					       variant->iommufd_errno[lookups] : 0;
				lookups++;
				ASSERT_NE(0, want)
					TH_LOG("%s: more iommufd points than known", what);
			}
			if (err) {
				failed++;
				ASSERT_EQ(want, err)
					TH_LOG("%s: %s, expected %s", what,
					       strerror(err), strerror(want));
			}
		}

		switch (variant->call) {
		case CALL_CREATE_VM:
			fn_check_create_vm(_metadata, self, err, vm_fd_nr, fds,
					   what);
			break;
		case CALL_CREATE_DEVICE:
			fn_check_create_device(_metadata, self, err, fds, what);
			break;
		case CALL_FILE_ADD:
			fn_check_file_add(_metadata, self, err, fds, what);
			break;
		default:
			fn_check_open(_metadata, self, err, fds, what);
		}
		vk_handles_close(&self->h);
		ASSERT_EQ(self->base_fds, count_open_fds()) TH_LOG("%s", what);
		if (!injected)
			break;
	}
	ASSERT_GT(FAIL_NTH_MAX, n);
	ksft_print_msg("sweep: %s: %u points (%u failed the call, %u uevent messages lost), %lld ms\n",
		       variant->name, points, failed, self->drops,
		       now_ms() - t0);
	ASSERT_LT(0, points) TH_LOG("%s: no injection point hit", variant->name);
	ASSERT_LT(0, failed) TH_LOG("%s: no injected failure failed the call",
				    variant->name);
	if (variant->call != CALL_CREATE_VM) {
		uevent_log_assert_balanced(&self->log);
	} else {
		/*
		 * Create events may be lost there (see vm_destroy_events()):
		 * no balance, but no destroy event after the last round's.
		 */
		unsigned int late = 0;

		usleep(20000);
		ASSERT_EQ(0, vm_destroy_events(self->log.sock, &self->w.id,
					       &late, &self->drops));
		ASSERT_EQ(0, late) TH_LOG("%u destroy events after the last close",
					  late);
	}
}

/* --------------------------------------------------- copy-out faults */

/*
 * A copy of @len bytes of @src alone on a page that can be read but not
 * written: the kernel's copy_from_user() of the struct works, its
 * copy_to_user() faults. NULL on failure.
 */
static void *ro_copy(const void *src, size_t len)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memcpy(p, src, len);
	if (mprotect(p, pg, PROT_READ)) {
		munmap(p, pg);
		return NULL;
	}
	return p;
}

/* Is @fd an anonymous-inode file named @name ("anon_inode:<name>")? */
static bool fd_is_anon(int fd, const char *name)
{
	char path[64], link[128], want[128];
	ssize_t len;

	strfmt(path, sizeof(path), "/proc/self/fd/%d", fd);
	len = readlink(path, link, sizeof(link) - 1);
	if (len < 0)
		return false;
	link[len] = 0;
	strfmt(want, sizeof(want), "anon_inode:%s", name);
	return !strcmp(link, want);
}

/*
 * The copy-out fixtures: KVM only (kvm_copy_out), the mtty device on the
 * cdev path (cdev_copy_out). Same data, set-up and teardown.
 */
#define COPY_OUT_FIXTURE(fixture, mtty)                                        \
	FIXTURE(fixture)                                                       \
	{                                                                      \
		struct vk_path p;                                              \
		struct uevent_log log;                                         \
		struct vk_handles h;                                           \
		struct vm_watch w;                                             \
		int base_fds;                                                  \
		void *ro;                                                      \
	};                                                                     \
	FIXTURE_SETUP(fixture)                                                 \
	{                                                                      \
		self->ro = NULL;                                               \
		fn_path_setup(self, mtty, VK_MTTY, true, false);              \
	}                                                                      \
	FIXTURE_TEARDOWN(fixture)                                              \
	{                                                                      \
		if (self->ro)                                                  \
			munmap(self->ro, sysconf(_SC_PAGESIZE));               \
		vk_handles_close(&self->h);                                    \
		uevent_log_close(&self->log);                                  \
		vk_path_fini(&self->p);                                        \
	}

COPY_OUT_FIXTURE(kvm_copy_out, false);
COPY_OUT_FIXTURE(cdev_copy_out, true);

/*
 * Rule: KVM_CREATE_DEVICE(VFIO) whose struct kvm_create_device cannot be
 * written back fails with EFAULT after the device was made: kvm_vm_ioctl()
 * copies the new fd out after kvm_ioctl_create_device() has taken its
 * kvm_get_kvm() and installed the fd (anon_inode_getfd()), and its error
 * exit (`goto out`) undoes neither, in 7.3 as with the series. So the fd is
 * there, at the lowest free number, and is the VM's KVM VFIO device (a
 * second one is EBUSY); it holds struct kvm: the VM outlives its fd and is
 * destroyed exactly once when that stray fd is closed.
 * Can fail: a reference taken for the device and lost or doubled on the
 * EFAULT exit (VM destroyed early or never, KASAN, refcount), or a kernel
 * that unwinds the device (then the fd count and EBUSY checks fail: update
 * this test).
 */
TEST_F_TIMEOUT(kvm_copy_out, create_device, 20)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };
	struct vk_handles *h = &self->h;
	int fds, stray, second = -1;

	fn_create_vm(self, &self->w);
	self->ro = ro_copy(&cd, sizeof(cd));
	ASSERT_NE(NULL, self->ro) TH_LOG("read-only page: %s", strerror(errno));
	stray = closed_fd_number();
	fds = count_open_fds();

	EXPECT_ERRNO(EFAULT, ioctl(h->fd[VK_VM], KVM_CREATE_DEVICE, self->ro));
	ASSERT_EQ(fds + 1, count_open_fds());
	ASSERT_TRUE(fd_is_anon(stray, "kvm-vfio"))
		TH_LOG("fd %d is not the KVM VFIO device", stray);
	h->fd[VK_KVM_VFIO] = stray;
	test_err_kvm_create_vfio_device(EBUSY, h->fd[VK_VM], &second);

	vk_close(h, VK_VM);
	vm_assert_alive(&self->log, &self->w, "VM fd closed, KVM VFIO device fd open");
	vk_close(h, VK_KVM_VFIO);
	vm_assert_destroyed(&self->log, &self->w, "KVM VFIO device fd closed");
	uevent_log_assert_balanced(&self->log);
	ASSERT_EQ(self->base_fds, count_open_fds());
}

/*
 * Rule: VFIO_DEVICE_BIND_IOMMUFD whose out_devid cannot be written fails
 * with EFAULT and leaves the device unbound: vfio_df_ioctl_bind_iommufd()
 * copies out_devid after vfio_df_get_kvm_safe() took the VM file and
 * vfio_df_open() opened the device, and its error exit (out_close_device:
 * vfio_df_close(), vfio_device_put_kvm()) undoes both. No fd appears, the
 * cdev refuses device ioctls as an unbound one (EINVAL), a BIND with a good
 * struct works and takes the VM, which the device then pins past the VM
 * fds; the VM is destroyed exactly once when the device is closed.
 * Can fail: the EFAULT exit leaks the VM reference (never destroyed) or
 * drops one too many (destroyed under the bound device, KASAN, refcount),
 * or leaves the device open or bound (second BIND refused, or the cdev
 * answers device ioctls).
 */
TEST_F_TIMEOUT(cdev_copy_out, bind_iommufd, 20)
{
	struct vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct vfio_device_info info = { .argsz = sizeof(info) };
	struct vk_handles *h = &self->h;
	__u32 devid = 0;
	int fds;

	vk_create_vm(&self->p, h, &self->log, 0, &self->w);
	vk_open_file(&self->p, h);
	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	bind.iommufd = h->fd[VK_IOMMU];
	self->ro = ro_copy(&bind, sizeof(bind));
	ASSERT_NE(NULL, self->ro) TH_LOG("read-only page: %s", strerror(errno));
	fds = count_open_fds();

	EXPECT_ERRNO(EFAULT, ioctl(h->fd[VK_FILE], VFIO_DEVICE_BIND_IOMMUFD,
				   self->ro));
	ASSERT_EQ(fds, count_open_fds());
	EXPECT_ERRNO(EINVAL, ioctl(h->fd[VK_FILE], VFIO_DEVICE_GET_INFO, &info));
	vm_assert_alive(&self->log, &self->w, "after the EFAULT bind");

	test_vfio_device_bind_iommufd(h->fd[VK_FILE], h->fd[VK_IOMMU], &devid);
	ASSERT_NE(0, devid);
	ASSERT_EQ(0, ioctl(h->fd[VK_FILE], VFIO_DEVICE_GET_INFO, &info))
		TH_LOG("bound device: VFIO_DEVICE_GET_INFO: %s", strerror(errno));
	vk_close(h, VK_VM);
	vk_close(h, VK_KVM_VFIO);
	vm_assert_alive(&self->log, &self->w, "VM fds closed, device bound");
	vk_close(h, VK_FILE);
	vm_assert_destroyed(&self->log, &self->w, "device closed");
	uevent_log_assert_balanced(&self->log);
	vk_handles_close(h);
	ASSERT_EQ(self->base_fds, count_open_fds());
}

TEST_HARNESS_MAIN
