// SPDX-License-Identifier: GPL-2.0-only
/*
 * Who keeps a VM alive when a VFIO device is used with it.
 *
 * Every test runs on every path (fixture variants, see vfio_kvm_path.h): group
 * path with mtty and mkvm, cdev path with mtty, mkvm and the vfio-pci device.
 * The expected life of the VM is computed from the ownership model (vk_model_*,
 * docs/kernel-behaviour.md's table) after every step, not written by hand.
 *
 * Oracles: the VM's destroy uevent and debugfs dir (alive exactly while
 * pinned, destroyed exactly once), /proc/self/fd (no fd left behind), and on
 * mkvm the VM the open device reports holding (pread).
 */
#include "vfio_kvm_path.h"

#include <sched.h>
#include <sys/epoll.h>
#include <sys/wait.h>

FIXTURE(vfio_path)
{
	struct vk_path p;
	struct uevent_log log;
	struct vk_handles h;	/* scenario handles, closed by teardown */
	struct vk_handles h2;	/* a second VM's, for re-association */
	int base_fds;
};

VK_PATH_VARIANTS(vfio_path);

FIXTURE_SETUP(vfio_path)
{
	vk_handles_init(&self->h);
	vk_handles_init(&self->h2);
	self->log.sock = -1;
	vk_path_setup(&self->p, variant->kind, variant->cdev);
	vk_log_setup(&self->p, &self->log);
	vk_base_fds_setup(&self->base_fds);
}

FIXTURE_TEARDOWN(vfio_path)
{
	vk_handles_close(&self->h2);
	vk_handles_close(&self->h);
	uevent_log_close(&self->log);
	vk_path_fini(&self->p);
}

/* Close one handle of @h (it must be open). */
#define vk_close(h, hd)                                                        \
	({                                                                     \
		ASSERT_LE(0, (h)->fd[hd]);                                     \
		ASSERT_EQ(0, close((h)->fd[hd]));                              \
		(h)->fd[hd] = -1;                                              \
	})

/* Close the VM's own fds: the VM fd, then the KVM VFIO device fd. */
#define vk_close_vm_fds(h)                                                     \
	({                                                                     \
		vk_close(h, VK_VM);                                            \
		vk_close(h, VK_KVM_VFIO);                                      \
	})

/* Close the open device: its device fd (group path) or its cdev fd. */
#define vk_close_device(p, h) vk_close(h, (p)->cdev ? VK_FILE : VK_DEVICE)

/*
 * A VM (watched in slot 0 of @log) with its KVM VFIO device, the VFIO file
 * open and added to it (FILE_ADD).
 */
#define vk_create_vm_add_file(p, h, log, w)                                    \
	({                                                                     \
		vk_create_vm(p, h, log, 0, w);                                 \
		vk_open_file(p, h);                                            \
		test_kvm_vfio_file_add((h)->fd[VK_KVM_VFIO],                   \
				       (h)->fd[VK_FILE]);                      \
	})

/* Everything closed: no VM of ours alive, each destroyed once; fds back. */
#define vk_assert_all_clean(self)                                              \
	({                                                                     \
		vk_handles_close(&(self)->h2);                                 \
		vk_handles_close(&(self)->h);                                  \
		uevent_log_assert_balanced(&(self)->log);                      \
		ASSERT_EQ(0, kvm_debugfs_count_own())                          \
			TH_LOG("a VM of this process is still alive");         \
		ASSERT_EQ((self)->base_fds, count_open_fds());                 \
	})

/*
 * The end of most tests: closing the device of @h drops the last reference
 * to the VM of @w, which is destroyed at once; then everything is clean.
 */
#define vk_close_device_assert_clean(self, h, w)                               \
	({                                                                     \
		vk_close_device(&(self)->p, h);                                \
		vm_assert_destroyed(&(self)->log, w, "device closed");         \
		vk_assert_all_clean(self);                                     \
	})

/* ------------------------------------------------------ every ordering */

/*
 * The actions of the ordering suite: closing each handle (same numbers as
 * enum vk_handle) and KVM_DEV_VFIO_FILE_DEL of the VFIO file.
 */
enum vk_action {
	ACT_CLOSE_VM = VK_VM,
	ACT_CLOSE_KVM_VFIO = VK_KVM_VFIO,
	ACT_CLOSE_FILE = VK_FILE,
	ACT_CLOSE_DEVICE = VK_DEVICE,
	ACT_CLOSE_IOMMU = VK_IOMMU,
	ACT_FILE_DEL,
	NR_ACTIONS
};

static const char *act_name(enum vk_action a, bool cdev)
{
	switch (a) {
	case ACT_CLOSE_VM:
		return "vm";
	case ACT_CLOSE_KVM_VFIO:
		return "kvm_vfio";
	case ACT_CLOSE_FILE:
		return cdev ? "cdev" : "group";
	case ACT_CLOSE_DEVICE:
		return "device";
	case ACT_CLOSE_IOMMU:
		return cdev ? "iommufd" : "container";
	default:
		return "FILE_DEL";
	}
}

/*
 * The actions of a path, ascending; returns how many. On the cdev path the
 * device fd is the cdev fd, so there is no separate device fd to close.
 * Without @with_iommu the container/iommufd close is left out (see
 * every_order).
 */
static int path_actions(bool cdev, bool with_iommu, int *acts)
{
	int a, n = 0;

	for (a = 0; a < NR_ACTIONS; a++) {
		if (cdev && a == ACT_CLOSE_DEVICE)
			continue;
		if (!with_iommu && a == ACT_CLOSE_IOMMU)
			continue;
		acts[n++] = a;
	}
	return n;
}

static int pos_of(const int *order, int n, int a)
{
	int i;

	for (i = 0; i < n; i++)
		if (order[i] == a)
			return i;
	return -1;
}

/*
 * FILE_DEL needs the KVM VFIO device fd and the VFIO file's fd. An order
 * with FILE_DEL after either close cannot issue it: it is the same
 * sequence of syscalls as the order with FILE_DEL moved to the end, so only
 * that one is run (the skipped ones are exact duplicates, nothing is lost).
 * Of n! orders, n!/3 have FILE_DEL before both closes and (n-1)! have it
 * last: n!/3 + (n-1)! distinct scenarios (group path 360, cdev path 64).
 */
static bool order_is_canonical(const int *order, int n)
{
	int del = pos_of(order, n, ACT_FILE_DEL);

	if (del < pos_of(order, n, ACT_CLOSE_KVM_VFIO) &&
	    del < pos_of(order, n, ACT_CLOSE_FILE))
		return true;
	return del == n - 1;
}

static void vk_order_str(const int *order, int n, bool cdev, char *buf,
			 size_t len)
{
	const char *names[NR_ACTIONS];
	int a;

	for (a = 0; a < NR_ACTIONS; a++)
		names[a] = act_name(a, cdev);
	order_str(order, n, names, ",", buf, len);
}

/* After a step: the VM is alive exactly if the model says something pins it. */
static void check_step(struct __test_metadata *_metadata,
		       FIXTURE_DATA(vfio_path) *self, struct vm_watch *w,
		       const struct vk_model *m, const char *what)
{
	if (vk_model_vm_alive(m)) {
		vm_assert_alive(&self->log, w, what);
		if (vk_model_device_fd_open(m))
			vk_expect_device_vm(&self->p, &self->h,
					    m->dev_vm ? w->id.name : MKVM_VM_NONE,
					    what);
		return;
	}
	if (w->ev.destroyed == 0) {
		/* Just died: the destroy event and the debugfs dir tell. */
		vm_assert_destroyed(&self->log, w, what);
		return;
	}
	/* Already dead: no second destroy. */
	ASSERT_EQ(0, uevent_log_pump(&self->log));
	ASSERT_EQ(1, w->ev.destroyed)
		TH_LOG("%s: VM %s destroyed more than once", what, w->id.name);
}

/*
 * One scenario: VM + KVM VFIO device, VFIO file, FILE_ADD, device opened
 * (it holds the VM), then the actions in @order, checking after each one.
 */
static void run_order(struct __test_metadata *_metadata,
		      FIXTURE_DATA(vfio_path) *self, const int *order, int n)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	char ostr[128], what[256];
	struct vm_watch w;
	struct vk_model m;
	int i;

	vk_order_str(order, n, p->cdev, ostr, sizeof(ostr));
	vk_create_vm(p, h, &self->log, 0, &w);
	vk_model_init(&m, p->cdev);
	vk_open_file(p, h);
	vk_model_open_file(&m);
	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_model_file_add(&m);
	vk_open_device(p, h);
	vk_model_open_device(&m);
	ASSERT_TRUE(m.dev_vm);	/* the scenario starts with the device holding the VM */
	strfmt(what, sizeof(what), "%s, order %s, after setup", p->what, ostr);
	check_step(_metadata, self, &w, &m, what);

	for (i = 0; i < n; i++) {
		int a = order[i];

		if (a == ACT_FILE_DEL) {
			if (!vk_model_can_del(&m))
				continue;	/* see order_is_canonical() */
			test_kvm_vfio_file_del(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
			vk_model_file_del(&m);
		} else {
			vk_close(h, a);
			vk_model_close(&m, a);
		}
		strfmt(what, sizeof(what), "%s, order %s, after %s", p->what,
		       ostr, act_name(a, p->cdev));
		check_step(_metadata, self, &w, &m, what);
	}
	/* Everything is closed: the model must agree that nothing pins the VM. */
	ASSERT_FALSE(vk_model_vm_alive(&m)) TH_LOG("model: %s", ostr);
	ASSERT_EQ(1, w.ev.created) TH_LOG("%s: create events of %s", ostr,
					  w.id.name);
	ASSERT_EQ(self->base_fds, count_open_fds()) TH_LOG("%s: fd count", ostr);
	uevent_log_unwatch(&self->log, 0);
}

/* Insert the container/iommufd close at @pos of @order (n entries). */
static void insert_iommu_close(const int *order, int n, int pos, int *out)
{
	int i, j = 0;

	for (i = 0; i <= n; i++)
		out[i] = i == pos ? ACT_CLOSE_IOMMU : order[j++];
}

/* VFIO_KVM_ALL_ORDERS=1: also every position of the container/iommufd close. */
static bool all_orders(void)
{
	const char *env = getenv("VFIO_KVM_ALL_ORDERS");

	return env && atoi(env) > 0;
}

/*
 * Rule: whatever the order in which userspace closes the VM fd, the KVM VFIO
 * device fd, the VFIO file (group or cdev fd), the device fd, the container
 * or iommufd, and issues FILE_DEL, the VM is alive exactly while something
 * pins it (per the ownership model), destroyed exactly once right after the
 * last holder goes, the open device keeps reporting the VM it holds (mkvm),
 * and no fd is left behind.
 *
 * Every permutation of the actions is generated (next_permutation()) and
 * exact duplicates are skipped (order_is_canonical()): cdev path, 5 actions,
 * 120 orders, 64 distinct scenarios.
 *
 * Budget: a scenario costs one VM (~110 ms under TCG) plus one device open
 * (~1 s for the vfio-pci device: its open/close is that slow under TCG).
 * The group path's 6 actions give 360 distinct scenarios (~25 s per
 * variant even split over two devices), the vfio-pci device's 64 would take
 * ~70 s. There the container /
 * iommufd close, which pins nothing on the VM's side (the group holds its
 * container, a bound device its iommufd context; KVM never sees either), is
 * taken out of the permutation: every permutation of the other actions is
 * run (group path 64, cdev path 14 distinct scenarios), with that close
 * inserted at a rotating position, so that it still comes first, last and
 * between every two other actions in some scenario (asserted).
 * VFIO_KVM_ALL_ORDERS=1 runs every distinct order everywhere (the 120 s
 * timeout is sized for that; the default run takes < 20 s per variant).
 *
 * Can fail: a missing reference (premature destroy: uevent, missing debugfs
 * dir, mkvm read), a leaked one or an unbroken cycle (no destroy uevent after
 * the last close), a double put (two destroy uevents, KASAN/refcount report),
 * an fd installed or kept behind our back (fd count), a model that does not
 * end dead (the model's own bug).
 */
TEST_F_TIMEOUT(vfio_path, every_order, 120)
{
	bool rotate = !all_orders() && (!self->p.cdev || self->p.kind == VK_PCI);
	int order[NR_ACTIONS], full[NR_ACTIONS], n, status, parity = 0;
	unsigned int seen = 0, run = 0, iommu_pos = 0;
	long long t0 = now_ms();
	struct vk_path second;
	pid_t worker = -1;
	char why[600];

	/*
	 * With a second device of the kind (guest/init creates two mtty and
	 * two mkvm mdevs), a worker process takes every other scenario on it:
	 * VM creation and destruction mostly wait (RCU), so this halves the
	 * time. The worker has its own uevent socket, VMs ("<its pid>-*") and
	 * fd table, and is checked exactly like this process.
	 */
	if (self->p.kind != VK_PCI &&
	    vk_path_init(&second, self->p.kind, self->p.cdev, 1, why, sizeof(why))) {
		worker = fork();
		ASSERT_LE(0, worker);
		if (!worker) {
			vk_path_fini(&self->p);
			self->p = second;
			uevent_log_close(&self->log);
			ASSERT_EQ(0, uevent_log_open(&self->log));
			self->base_fds = count_open_fds();
			parity = 1;
		} else {
			vk_path_fini(&second);
		}
	}

	n = path_actions(self->p.cdev, !rotate, order);
	do {
		bool mine;

		seen++;
		if (!order_is_canonical(order, n))
			continue;
		mine = worker < 0 || (int)(run % 2) == parity;
		if (rotate) {
			int pos = run % (n + 1);

			insert_iommu_close(order, n, pos, full);
			iommu_pos |= 1U << pos;
			if (mine)
				run_order(_metadata, self, full, n + 1);
		} else if (mine) {
			run_order(_metadata, self, order, n);
		}
		run++;
	} while (next_permutation(order, n));
	/* The generator visited every order once, and the dedup is exact. */
	ASSERT_EQ(factorial(n), seen);
	ASSERT_EQ(factorial(n) / 3 + factorial(n - 1), run);
	/* The container/iommufd close took every position. */
	if (rotate)
		ASSERT_EQ((1U << (n + 1)) - 1, iommu_pos);
	vk_assert_all_clean(self);
	if (!worker)
		_exit(0);
	if (worker > 0) {
		ASSERT_EQ(worker, waitpid(worker, &status, 0));
		ASSERT_TRUE(WIFEXITED(status) && !WEXITSTATUS(status))
			TH_LOG("worker on the second device failed: status %#x",
			       status);
	}
	TH_LOG("%s: %u orders of %d actions%s, %u distinct scenarios%s, %lld ms",
	       self->p.what, seen, n,
	       rotate ? " (+ container/iommufd close, rotating)" : "", run,
	       worker > 0 ? " (half of them on a second device)" : "",
	       now_ms() - t0);
}

/* ------------------------------------- the open device pins the VM (#4) */

/*
 * Rule: an open VFIO device pins the VM it was opened with: after the VM fd
 * and the KVM VFIO device fd are closed (which drops the association), the
 * VM lives on while the device is open, and is destroyed exactly once,
 * promptly, when the device is closed (group path: the device fd, after the
 * group and container fds; cdev path: the cdev fd, after the iommufd).
 * Can fail: a device that holds no reference (VM destroyed at the KVM VFIO
 * device close), one that leaks it (no destroy uevent after the device
 * close), or a VFIO file reference kept after the KVM VFIO device's release.
 */
TEST_F_TIMEOUT(vfio_path, device_pins_vm, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vm_watch w;
	long long t;

	vk_create_vm_add_file(p, h, &self->log, &w);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, w.id.name, "opened after FILE_ADD");

	vk_close(h, VK_VM);
	vm_assert_alive(&self->log, &w, "VM fd closed");
	vk_close(h, VK_KVM_VFIO);
	vm_assert_alive(&self->log, &w, "VM fd and KVM VFIO device fd closed");
	vk_expect_device_vm(p, h, w.id.name, "VM fd and KVM VFIO device fd closed");
	vk_close(h, VK_IOMMU);
	vm_assert_alive(&self->log, &w, "container/iommufd closed too");
	if (!p->cdev) {
		vk_close(h, VK_FILE);
		vm_assert_alive(&self->log, &w, "group fd closed too");
	}
	t = now_ms();
	vk_close_device(p, h);
	vm_assert_destroyed(&self->log, &w, "device closed");
	TH_LOG("%s: destroyed %lld ms after the device close", p->what,
	       now_ms() - t);
	vk_assert_all_clean(self);
}

/* --------------------------------------------------- re-association (#4) */

/*
 * Rule: FILE_ADD of one VFIO file to VM A and then to VM B replaces the
 * file's VM: a device opened afterwards holds B, A is destroyed once its own
 * fds are closed (nothing of VFIO pins it), B lives while the device is open.
 * Can fail: the replaced reference is leaked (A never destroyed) or dropped
 * twice (KASAN/refcount), or the device takes A (mkvm read; B destroyed under
 * the open device).
 */
TEST_F_TIMEOUT(vfio_path, file_add_to_two_vms, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *a = &self->h, *b = &self->h2;
	struct vm_watch wa, wb;

	/* Both VMs first: their names (fd numbers) must differ. */
	vk_create_vm(p, a, &self->log, 0, &wa);
	vk_create_vm(p, b, &self->log, 1, &wb);
	vk_open_file(p, a);
	test_kvm_vfio_file_add(a->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	test_kvm_vfio_file_add(b->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	vk_open_device(p, a);
	vk_expect_device_vm(p, a, wb.id.name, "added to A then B, then opened");

	/* A: the VFIO file no longer caches it, the device never took it. */
	vk_close_vm_fds(a);
	vm_assert_destroyed(&self->log, &wa, "A's fds closed");
	vm_assert_alive(&self->log, &wb, "A's fds closed");

	/* B: pinned by the open device only. */
	vk_close_vm_fds(b);
	vm_assert_alive(&self->log, &wb, "B's fds closed, device open");
	vk_expect_device_vm(p, a, wb.id.name, "B's fds closed, device open");
	vk_close_device_assert_clean(self, a, &wb);
}

/*
 * Rule: FILE_DEL then FILE_ADD again re-establishes the association: a
 * device opened afterwards holds the VM and pins it past the close of the VM
 * and KVM VFIO device fds.
 * Can fail: FILE_DEL leaves a stale cache or FILE_ADD after FILE_DEL caches
 * nothing (device holds none, VM destroyed at the KVM VFIO device close),
 * or a reference leaks across the DEL/ADD (VM never destroyed).
 */
TEST_F_TIMEOUT(vfio_path, file_del_then_add, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vm_watch w;

	vk_create_vm_add_file(p, h, &self->log, &w);
	test_kvm_vfio_file_del(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, w.id.name, "ADD, DEL, ADD, open");

	vk_close_vm_fds(h);
	vm_assert_alive(&self->log, &w, "VM and KVM VFIO device fds closed");
	vk_close_device_assert_clean(self, h, &w);
}

/*
 * Rule: after FILE_DEL the VFIO file caches no VM: a device opened then
 * holds none and does not keep the VM alive.
 * Can fail: FILE_DEL does not clear the cache (device holds the VM; VM
 * survives the close of its fds while the device is open).
 */
TEST_F_TIMEOUT(vfio_path, file_del_then_open, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vm_watch w;

	vk_create_vm_add_file(p, h, &self->log, &w);
	test_kvm_vfio_file_del(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, MKVM_VM_NONE, "ADD, DEL, open");

	vk_close_vm_fds(h);
	vm_assert_destroyed(&self->log, &w, "VM fds closed, device open without VM");
	vk_assert_all_clean(self);
}

/*
 * Rule: a device opened before the association holds no VM, and a later
 * FILE_ADD does not give it one (group path: not even through a second
 * device fd while the first is open); the device opened after FILE_ADD of a
 * second VM holds that VM.
 * Can fail: FILE_ADD retrofits the VM into an open device (mkvm read; VM A
 * survives the close of its fds), or a device opened after FILE_ADD does not
 * get the VM (VM B destroyed under the open device).
 */
TEST_F_TIMEOUT(vfio_path, device_opened_before_add, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *a = &self->h, *b = &self->h2;
	struct vm_watch wa, wb;
	int second = -1;

	vk_create_vm(p, a, &self->log, 0, &wa);
	vk_create_vm(p, b, &self->log, 1, &wb);
	vk_open_file(p, a);
	vk_open_device(p, a);
	vk_expect_device_vm(p, a, MKVM_VM_NONE, "opened before FILE_ADD");
	test_kvm_vfio_file_add(a->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	vk_expect_device_vm(p, a, MKVM_VM_NONE, "FILE_ADD after open");
	if (!p->cdev) {
		/* Not the first open: it does not take the VM either. */
		test_vfio_group_get_device_fd(a->fd[VK_FILE], p->dev.name,
					      &second);
		if (p->kind == VK_MKVM)
			test_mkvm_vm(second, MKVM_VM_NONE,
				     "second device fd after FILE_ADD");
		close_fd(&second);
	}
	vk_close_vm_fds(a);
	vm_assert_destroyed(&self->log, &wa, "A's fds closed, device open without VM");

	/* Close the device and open it again after FILE_ADD to B. */
	vk_close_device(p, a);
	if (p->cdev)
		test_open_rdwr(p->dev.cdev, &a->fd[VK_FILE]);
	test_kvm_vfio_file_add(b->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	vk_open_device(p, a);
	vk_expect_device_vm(p, a, wb.id.name, "reopened after FILE_ADD to B");
	vk_close_vm_fds(b);
	vm_assert_alive(&self->log, &wb, "B's fds closed, device open");
	vk_close_device_assert_clean(self, a, &wb);
}

/*
 * Rule: changing the association while the device is open (FILE_ADD to
 * another VM, FILE_DEL) does not change the VM the open device holds: it
 * keeps VM A alive after A's fds are closed, VM B (only cached, then
 * dropped) is destroyed when its fds close, and A goes with the device.
 * Can fail: the open device follows the association (mkvm read; A destroyed
 * under the open device; B kept alive), or FILE_DEL / the replacement drops
 * the device's own reference (KASAN, refcount, early destroy).
 */
TEST_F_TIMEOUT(vfio_path, association_changed_while_open, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *a = &self->h, *b = &self->h2;
	struct vm_watch wa, wb;

	vk_create_vm(p, a, &self->log, 0, &wa);
	vk_create_vm(p, b, &self->log, 1, &wb);
	vk_open_file(p, a);
	test_kvm_vfio_file_add(a->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	vk_open_device(p, a);
	vk_expect_device_vm(p, a, wa.id.name, "opened with A");

	test_kvm_vfio_file_add(b->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	vk_expect_device_vm(p, a, wa.id.name, "FILE_ADD to B while open");
	test_kvm_vfio_file_del(a->fd[VK_KVM_VFIO], a->fd[VK_FILE]);
	vk_expect_device_vm(p, a, wa.id.name, "FILE_DEL from A while open");

	vk_close_vm_fds(a);
	vm_assert_alive(&self->log, &wa, "A's fds closed, device opened with A");
	vk_close_vm_fds(b);
	vm_assert_destroyed(&self->log, &wb, "B's fds closed");
	vm_assert_alive(&self->log, &wa, "B's fds closed");
	vk_expect_device_vm(p, a, wa.id.name, "both VMs' fds closed");
	vk_close_device_assert_clean(self, a, &wa);
}

/*
 * Rule: a second open of an open device neither takes nor drops the open
 * device's VM reference. Group path: a second VFIO_GROUP_GET_DEVICE_FD
 * succeeds and shares the open device (same VM). Cdev path: a device opens
 * once, so VFIO_DEVICE_BIND_IOMMUFD of a second cdev fd (itself associated
 * with the VM) fails with EINVAL. Either way the VM lives exactly as long as
 * the first open and is destroyed once when it closes.
 * Can fail: the refused bind replaces the open device's reference with its
 * own and then drops that one (the first is leaked: VM never destroyed; the
 * open device no longer has a VM for its driver), or drops the open
 * device's reference (VM destroyed under the open device).
 */
TEST_F_TIMEOUT(vfio_path, second_open_keeps_vm, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vm_watch w;
	int second = -1;

	vk_create_vm_add_file(p, h, &self->log, &w);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, w.id.name, "first open");

	if (!p->cdev) {
		test_vfio_group_get_device_fd(h->fd[VK_FILE], p->dev.name,
					      &second);
		if (p->kind == VK_MKVM)
			test_mkvm_vm(second, w.id.name, "second device fd");
	} else {
		test_open_rdwr(p->dev.cdev, &second);
		test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], second);
		test_err_vfio_device_bind_iommufd(EINVAL, second,
						  h->fd[VK_IOMMU]);
		test_kvm_vfio_file_del(h->fd[VK_KVM_VFIO], second);
	}
	close_fd(&second);
	vk_expect_device_vm(p, h, w.id.name, "after the second open");

	vk_close_vm_fds(h);
	vm_assert_alive(&self->log, &w, "VM fds closed, first open still open");
	vk_close_device_assert_clean(self, h, &w);
}

/* ------------------------------------------------ recycled file hazard */

/*
 * How many pipes (two files each) to create after the VM file is freed. On a
 * kernel without KASAN, SLUB hands the freed struct file out again once the
 * CPU's current and partial filp slabs are used up: a few thousand files
 * (all from the CPU that freed it: the test pins itself) make that all but
 * certain (measured: 128 pipes were not enough). Fewer if RLIMIT_NOFILE's
 * hard limit does not allow them.
 */
#define NR_RECYCLE_PIPES 1900

/*
 * Rule: FILE_ADD after the VM fd was closed (VM alive only through the KVM
 * VFIO device fd) caches no VM, even after the VM's struct file has been
 * freed and its memory reused: the device opened then holds NO VM (mkvm:
 * "none"; the VM is destroyed at the KVM VFIO device close though the device
 * is still open), and no other file got pinned: every pipe created in
 * between still sees POLLHUP/EOF when its writer closes, and every reader
 * is released when its fd closes.
 * Can fail: a kernel that keeps a stale pointer to the freed VM file (the
 * posted seed-000 patch): under KASAN a use-after-free report in
 * __get_file_rcu (kernel-log scan), without KASAN a pinned pipe end (no
 * POLLHUP/EOF, or a reader still in the epoll set) or a device holding a
 * recycled file (mkvm would then use a pipe as a VM); a kernel that gives the
 * device struct kvm instead (unpatched 7.3): the VM outlives the KVM VFIO
 * device close while the device is open.
 */
TEST_F_TIMEOUT(vfio_path, recycled_vm_file, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	static int pipes[NR_RECYCLE_PIPES][2];
	int i, nr_pipes = NR_RECYCLE_PIPES, cpu, epfd = -1;
	struct vm_watch w;
	struct rlimit rl;
	cpu_set_t cpus;
	char c;

	/* Free the VM file and allocate the pipes on one CPU. */
	cpu = sched_getcpu();
	ASSERT_LE(0, cpu);
	CPU_ZERO(&cpus);
	CPU_SET(cpu, &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));
	raise_nofile(2 * NR_RECYCLE_PIPES + 64);
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_cur < 2 * NR_RECYCLE_PIPES + 64)
		nr_pipes = (rl.rlim_cur - 64) / 2;
	ASSERT_LT(64, nr_pipes) TH_LOG("RLIMIT_NOFILE %lu", (unsigned long)rl.rlim_cur);
	for (i = 0; i < nr_pipes; i++)
		pipes[i][0] = pipes[i][1] = -1;
	vk_create_vm(p, h, &self->log, 0, &w);
	vk_open_file(p, h);
	vk_close(h, VK_VM);
	vm_assert_alive(&self->log, &w, "VM fd closed, KVM VFIO device fd open");

	/* The VM file is freed: reuse file structs (LIFO, so the first win). */
	for (i = 0; i < nr_pipes; i++)
		ASSERT_EQ(0, pipe2(pipes[i], O_CLOEXEC | O_NONBLOCK))
			TH_LOG("pipe %d: %s", i, strerror(errno));

	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, MKVM_VM_NONE, "FILE_ADD after the VM fd closed");

	/*
	 * No pipe end may be pinned. Writers: closing one must give its reader
	 * POLLHUP and EOF. Readers (nobody is left to see them go): each is in
	 * an epoll set, which drops a file only at its final release; once
	 * every reader fd is closed the set must be empty, while a pinned
	 * reader, whose writer is gone, would report EPOLLHUP.
	 */
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_LE(0, epfd);
	for (i = 0; i < nr_pipes; i++) {
		struct pollfd pfd = { .fd = pipes[i][0], .events = POLLIN };
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		close_fd(&pipes[i][1]);
		ASSERT_EQ(1, poll(&pfd, 1, 0))
			TH_LOG("pipe %d: writer closed, the reader sees nothing: the writer's file is pinned",
			       i);
		ASSERT_TRUE(pfd.revents & POLLHUP)
			TH_LOG("pipe %d: writer closed, reader revents %#x: the writer's file is pinned",
			       i, pfd.revents);
		ASSERT_EQ(0, read(pipes[i][0], &c, 1)) TH_LOG("pipe %d: no EOF", i);
		ASSERT_EQ(0, epoll_ctl(epfd, EPOLL_CTL_ADD, pipes[i][0], &ev));
	}
	for (i = 0; i < nr_pipes; i++)
		close_fd(&pipes[i][0]);
	{
		struct epoll_event ev;
		int n = epoll_wait(epfd, &ev, 1, 0);

		ASSERT_EQ(0, n)
			TH_LOG("pipe %u: reader fd closed, but its file is still alive (pinned)",
			       n > 0 ? ev.data.u32 : 0);
	}
	close_fd(&epfd);
	TH_LOG("%s: %d pipes, no file pinned", p->what, nr_pipes);

	/* Nothing of VFIO pins the VM: the KVM VFIO device was the last. */
	vk_close(h, VK_KVM_VFIO);
	vm_assert_destroyed(&self->log, &w,
			    "KVM VFIO device closed, device (opened without VM) still open");
	vk_expect_device_vm(p, h, MKVM_VM_NONE, "after the VM is gone");
	vk_assert_all_clean(self);
}

/* ------------------------------------------ mkvm open failure (EIO) */

/*
 * mkvm's fail_open makes ->open_device() fail with EIO after taking
 * kvm->lock. The parameter is global: reset it in the parent's teardown,
 * which runs even when the test process is killed by its timeout.
 */
FIXTURE(mkvm_fail)
{
	struct vk_path p;
	struct uevent_log log;
	struct vk_handles h;
	int base_fds;
};

VK_CDEV_VARIANTS(mkvm_fail);

FIXTURE_SETUP(mkvm_fail)
{
	vk_handles_init(&self->h);
	self->log.sock = -1;
	vk_path_setup(&self->p, VK_MKVM, variant->cdev);
	if (access(MKVM_FAIL_OPEN, W_OK)) {
		vk_path_fini(&self->p);
		SKIP(return, "no writable %s: %s", MKVM_FAIL_OPEN, strerror(errno));
	}
	vk_log_setup(&self->p, &self->log);
	vk_base_fds_setup(&self->base_fds);
}

FIXTURE_TEARDOWN_PARENT(mkvm_fail)
{
	/* The child's fds die with it; this is about the global knob. */
	EXPECT_EQ(0, mkvm_set_fail_open(false));
}

/* An open of the device while fail_open is on: it fails with EIO. */
#define mkvm_failed_open(p, h)                                                 \
	({                                                                     \
		ASSERT_EQ(0, mkvm_set_fail_open(true));                        \
		EXPECT_ERRNO(EIO, _vk_open_device(p, h));                      \
		ASSERT_EQ(0, mkvm_set_fail_open(false));                       \
	})

/* Everything closed: each VM destroyed exactly once; fds back. */
#define mkvm_assert_all_clean(self)                                            \
	({                                                                     \
		vk_handles_close(&(self)->h);                                  \
		uevent_log_assert_balanced(&(self)->log);                      \
		ASSERT_EQ((self)->base_fds, count_open_fds());                 \
	})

/*
 * Rule: when the driver's open_device fails (EIO), VFIO_GROUP_GET_DEVICE_FD
 * / VFIO_DEVICE_BIND_IOMMUFD fail with EIO, install no fd, and drop the VM
 * reference taken for the open: the VM is destroyed when its fds close.
 * Can fail: the error path leaks the VM file reference (no destroy uevent),
 * drops it twice (early destroy, KASAN/refcount), returns another errno, or
 * leaves an fd behind.
 */
TEST_F_TIMEOUT(mkvm_fail, open_fails_no_leak, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vm_watch w;
	int fds;

	vk_create_vm_add_file(p, h, &self->log, &w);
	fds = count_open_fds();
	mkvm_failed_open(p, h);
	ASSERT_EQ(-1, h->fd[VK_DEVICE]);
	ASSERT_EQ(fds, count_open_fds());
	vm_assert_alive(&self->log, &w, "after the failed open");

	vk_close_vm_fds(h);
	vk_close(h, VK_FILE);
	vm_assert_destroyed(&self->log, &w, "all fds closed after a failed open");
	mkvm_assert_all_clean(self);
}

/*
 * Rule: a failed open leaves no state behind: once fail_open is off, the
 * same VFIO file opens the device, which holds the VM and pins it until it
 * is closed (then the VM is destroyed exactly once).
 * Can fail: the failed open leaves the device half-open (the next open gets
 * EBUSY/EINVAL or no VM), or its reference is leaked or double-dropped.
 */
TEST_F_TIMEOUT(mkvm_fail, open_after_failure, 20)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vm_watch w;

	vk_create_vm_add_file(p, h, &self->log, &w);
	mkvm_failed_open(p, h);

	vk_open_device(p, h);
	vk_expect_device_vm(p, h, w.id.name, "opened after a failed open");
	vk_close_vm_fds(h);
	vm_assert_alive(&self->log, &w, "VM fds closed, device open");
	vk_close_device(p, h);
	vm_assert_destroyed(&self->log, &w, "device closed");
	mkvm_assert_all_clean(self);
}

TEST_HARNESS_MAIN
