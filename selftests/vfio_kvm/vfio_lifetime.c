// SPDX-License-Identifier: GPL-2.0-only
/*
 * Who keeps a VM alive when a VFIO device is used with it.
 *
 * Every test runs on every path (fixture variants, see vfio_kvm_path.h): the
 * group path with a type1 container, the group path with the iommufd compat
 * container and the cdev path, each with mtty, mkvm and the vfio-pci device.
 * The expected life of the VM is computed from the ownership model (vk_model_*,
 * docs/kernel-behaviour.md's table) after every step, not written by hand.
 *
 * Oracles: the VM's destroy uevent and debugfs dir (alive exactly while
 * pinned, destroyed exactly once), /proc/self/fd (no fd left behind), on
 * mkvm the VM the open device holds at the time of the read (pread), and
 * whether the VM's irqfd still injects (kvm_vm_release() has not run).
 */
#include "vfio_kvm_path.h"
#include "workers.h"

#include <sched.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>

FIXTURE(vfio_path)
{
	struct vk_path p;
	struct uevent_log log;
	struct vk_handles h;	/* scenario handles, closed by teardown */
	struct vk_handles h2;	/* a second VM's, for re-association */
	struct workers workers;	/* every_order's, on further devices */
	int base_fds;
};

VK_PATH_VARIANTS(vfio_path);

FIXTURE_SETUP(vfio_path)
{
	workers_forget(&self->workers);
	vk_handles_init(&self->h);
	vk_handles_init(&self->h2);
	self->log.sock = -1;
	vk_path_setup(&self->p, variant->kind, variant->cdev, variant->compat);
	vk_log_setup(&self->p, &self->log);
	vk_base_fds_setup(&self->base_fds);
}

FIXTURE_TEARDOWN(vfio_path)
{
	workers_reap(&self->workers);
	vk_handles_close(&self->h2);
	vk_handles_close(&self->h);
	uevent_log_close(&self->log);
	vk_path_fini(&self->p);
}

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

/*
 * Distinct scenarios (distinct syscall sequences, see order_steps()) each
 * path runs: group path (type1 or iommufd compat container) 6 actions, 720
 * orders; cdev path 5 actions (the cdev fd is the device fd), 120 orders.
 */
#define VK_ORDERS_GROUP		360
#define VK_ORDERS_CDEV		64
#define VK_MAX_ORDERS		720	/* 6! */

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
 */
static int path_actions(bool cdev, int *acts)
{
	int a, n = 0;

	for (a = 0; a < NR_ACTIONS; a++) {
		if (cdev && a == ACT_CLOSE_DEVICE)
			continue;
		acts[n++] = a;
	}
	return n;
}

/*
 * The syscalls an order issues, computed from the fds this process holds
 * and nothing else (not from the ownership model under test): each close
 * is a close(); FILE_DEL is KVM_SET_DEVICE_ATTR(KVM_DEV_VFIO_FILE_DEL) on
 * the KVM VFIO device fd with the VFIO file's fd, so it is issued only
 * while both of those fds are open: after either close this process has no
 * fd to issue it with, and the order issues nothing at that point. Returns
 * the number of steps written to @steps.
 */
static int order_steps(const int *order, int n, int *steps)
{
	bool open[VK_NR_HANDLES];
	int i, k = 0;

	for (i = 0; i < VK_NR_HANDLES; i++)
		open[i] = true;
	for (i = 0; i < n; i++) {
		if (order[i] == ACT_FILE_DEL) {
			if (!open[VK_KVM_VFIO] || !open[VK_FILE])
				continue;
		} else {
			open[order[i]] = false;
		}
		steps[k++] = order[i];
	}
	return k;
}

/* A step sequence as a number: 3 bits per step (action + 1, never 0). */
static unsigned int steps_key(const int *steps, int k)
{
	unsigned int key = 0;
	int i;

	for (i = 0; i < k; i++)
		key |= (unsigned int)(steps[i] + 1) << (3 * i);
	return key;
}

/* The distinct syscall sequences of every order of a path's actions. */
struct vk_orders {
	int n;				/* actions */
	unsigned int perms;		/* orders generated */
	unsigned int nr;		/* distinct step sequences */
	unsigned int key[VK_MAX_ORDERS];
	int len[VK_MAX_ORDERS];
	int steps[VK_MAX_ORDERS][NR_ACTIONS];
};

/*
 * Generate every permutation of the path's actions (next_permutation())
 * and keep each distinct issued syscall sequence once, in the order of its
 * first permutation: two orders are merged only if they issue exactly the
 * same syscalls in the same order.
 */
static void vk_orders_build(struct vk_orders *o, bool cdev)
{
	int order[NR_ACTIONS], steps[NR_ACTIONS], k;
	unsigned int i, key;

	memset(o, 0, sizeof(*o));
	o->n = path_actions(cdev, order);
	do {
		o->perms++;
		k = order_steps(order, o->n, steps);
		key = steps_key(steps, k);
		for (i = 0; i < o->nr && o->key[i] != key; i++)
			;
		if (i < o->nr || o->nr == VK_MAX_ORDERS)
			continue;
		o->key[o->nr] = key;
		o->len[o->nr] = k;
		memcpy(o->steps[o->nr], steps, k * sizeof(steps[0]));
		o->nr++;
	} while (next_permutation(order, o->n));
}

static void vk_steps_str(const int *steps, int k, bool cdev, char *buf,
			 size_t len)
{
	const char *names[NR_ACTIONS];
	int a;

	for (a = 0; a < NR_ACTIONS; a++)
		names[a] = act_name(a, cdev);
	order_str(steps, k, names, ",", buf, len);
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
 * (it holds the VM), then the syscalls of @steps, checking after each one.
 */
static void run_steps(struct __test_metadata *_metadata,
		      FIXTURE_DATA(vfio_path) *self, const int *steps, int k)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	char ostr[128], what[256];
	struct vm_watch w;
	struct vk_model m;
	int i;

	vk_steps_str(steps, k, p->cdev, ostr, sizeof(ostr));
	vk_create_vm(p, h, &self->log, 0, &w);
	vk_model_init(&m, p);
	vk_open_file(p, h);
	vk_model_open_file(&m);
	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_model_file_add(&m);
	vk_open_device(p, h);
	vk_model_open_device(&m);
	ASSERT_TRUE(m.dev_vm);	/* the scenario starts with the device holding the VM */
	strfmt(what, sizeof(what), "%s, order %s, after setup", p->what, ostr);
	check_step(_metadata, self, &w, &m, what);

	for (i = 0; i < k; i++) {
		int a = steps[i];

		if (a == ACT_FILE_DEL) {
			ASSERT_TRUE(vk_model_can_del(&m)) TH_LOG("%s", ostr);
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

/* A worker failed: stop at once, naming it. */
#define vk_assert_workers_ok(ws, nohang)                                       \
	({                                                                     \
		int __i, __status;                                             \
		bool __done;                                                   \
		for (__i = 0; __i < (ws)->nr; __i++)                           \
			ASSERT_TRUE(worker_wait(ws, __i, nohang, &__done,      \
						&__status) || !__done)         \
				TH_LOG("every_order worker %d failed: status %#x", \
				       __i + 1, __status);                     \
	})

/*
 * Rule: whatever the order in which userspace closes the VM fd, the KVM VFIO
 * device fd, the VFIO file (group or cdev fd), the device fd, the container
 * or iommufd, and issues FILE_DEL, the VM is alive exactly while something
 * pins it (per the ownership model, which counts the vfio-pci device's
 * iommufd device as a holder of its own), destroyed exactly once right
 * after the last holder goes, the open device keeps reporting the VM it
 * holds (mkvm), and no fd is left behind.
 *
 * Every permutation of the path's actions is generated and every distinct
 * syscall sequence among them is run: orders are merged only when they
 * issue exactly the same syscalls (order_steps(): FILE_DEL after the close
 * of the KVM VFIO device fd or the VFIO file's fd cannot be issued).
 * Asserted: all n! orders generated; the number of distinct scenarios run
 * (group path and compat container: 720 orders of 6 actions, 360
 * scenarios; cdev path: 120 of 5, 64), which is also n!/3 + (n-1)! (FILE_DEL
 * before both closes, or in effect last).
 *
 * Budget: a scenario costs one VM (~110 ms under TCG) plus one device open
 * and close (~1.2 s for the vfio-pci device under TCG + KASAN; 360 of them
 * on one device take ~7 min, twice that on a machine shared with another
 * guest: hence the 20 min timeout). Each further device of the kind
 * (the second mtty/mkvm mdev guest/init creates, further BDFs in
 * $VFIO_KVM_PCI) gets a worker process that takes its share of the
 * scenarios, with its own uevent socket, VMs ("<its pid>-*") and fd table,
 * checked exactly like this process.
 *
 * Can fail: a missing reference (premature destroy: uevent, missing debugfs
 * dir, mkvm read), a leaked one or an unbroken cycle (no destroy uevent after
 * the last close), a double put (two destroy uevents, KASAN/refcount report),
 * an fd installed or kept behind our back (fd count), a model that does not
 * end dead (the model's own bug), fewer scenarios than every order gives.
 */
TEST_F_TIMEOUT(vfio_path, every_order, 1200)
{
	static struct vk_orders o;
	unsigned int want = self->p.cdev ? VK_ORDERS_CDEV : VK_ORDERS_GROUP;
	struct vk_path others[WORKERS_MAX];
	unsigned int i, mine = 0;
	int nr_procs = 1, me = 0, w;
	long long t0 = now_ms();
	atomic_uint *ran;
	char why[600];

	vk_orders_build(&o, self->p.cdev);
	ASSERT_EQ(factorial(o.n), o.perms);
	ASSERT_EQ(want, o.nr) TH_LOG("%s: %u distinct syscall sequences of %u orders",
				     self->p.what, o.nr, o.perms);
	ASSERT_EQ(factorial(o.n) / 3 + factorial(o.n - 1), o.nr);

	ran = mmap(NULL, sizeof(*ran), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, ran);
	atomic_init(ran, 0);

	/* A worker per further device of the kind (a named one must work). */
	while (nr_procs < WORKERS_MAX &&
	       vk_path_init(&others[nr_procs], self->p.kind, self->p.cdev,
			    self->p.compat, nr_procs, why, sizeof(why)))
		nr_procs++;
	if (nr_procs < WORKERS_MAX)
		ASSERT_FALSE(others[nr_procs].broken) TH_LOG("%s", why);
	for (w = 1; w < nr_procs && !me; w++) {
		pid_t pid = worker_fork(&self->workers);

		ASSERT_LE(0, pid) TH_LOG("fork: %s", strerror(errno));
		if (!pid) {
			me = w;
			vk_path_fini(&self->p);
			self->p = others[w];
			uevent_log_close(&self->log);
			ASSERT_EQ(0, uevent_log_open(&self->log));
		}
	}
	for (w = 1; w < nr_procs; w++)
		if (w != me)
			vk_path_fini(&others[w]);
	if (me)
		self->base_fds = count_open_fds();

	for (i = me; i < o.nr; i += nr_procs) {
		run_steps(_metadata, self, o.steps[i], o.len[i]);
		atomic_fetch_add(ran, 1);
		mine++;
		if (me == 0)
			vk_assert_workers_ok(&self->workers, true);
	}
	vk_assert_all_clean(self);
	if (me) {
		TH_LOG("worker %d: %s: %u scenarios", me, self->p.what, mine);
		_exit(0);
	}
	vk_assert_workers_ok(&self->workers, false);
	workers_forget(&self->workers);
	ASSERT_EQ(want, atomic_load(ran))
		TH_LOG("%s: %u of %u scenarios ran", self->p.what,
		       atomic_load(ran), want);
	TH_LOG("%s: %u orders of %d actions, %u distinct syscall sequences, all run (%u here, the rest on %d more device(s)), %lld ms",
	       self->p.what, o.perms, o.n, atomic_load(ran), mine,
	       nr_procs - 1, now_ms() - t0);
	munmap(ran, sizeof(*ran));
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

/* ------------------------------------- closing the VM fd and its irqfds */

/*
 * What userspace sees of kvm_vm_release(), which runs when the VM *file* is
 * released (vCPU and KVM device fds hold struct kvm, not the file): it
 * deassigns every irqfd. The probe: an in-kernel irqchip, vCPU 0 with its
 * local APIC software-enabled (SPIV bit 8), GSI 24 routed as an MSI to
 * vector 0x45 of APIC 0, an irqfd (eventfd) on GSI 24. Signalling the
 * eventfd of an assigned irqfd sets the vector's bit in the APIC's IRR
 * (KVM_GET_LAPIC on the vCPU fd, IRR at 0x200 + 0x10 per 32 vectors); a
 * deassigned one sets nothing. x86 only (the local APIC).
 */
#if defined(__x86_64__) || defined(__i386__)
#define VK_IRQFD_ARCH		1
#else
#define VK_IRQFD_ARCH		0
#endif

#define VK_IRQFD_VECTOR		0x45
#define VK_IRQFD_GSI		24
#define VK_APIC_SPIV		0xf0
#define VK_APIC_SPIV_ENABLE	0x100
#define VK_APIC_IRR		0x200
/*
 * An assigned irqfd injects an MSI from the eventfd's wakeup (or from a
 * work item it queues there), so the bit shows up at once: wait up to
 * 1 s for it; its absence is judged after 200 ms.
 */
#define VK_IRQFD_FIRE_MS	1000
#define VK_IRQFD_QUIET_MS	200

struct vk_irqfd {
	int vcpu_fd;
	int event_fd;
};

static __u32 *vk_apic_reg(struct kvm_lapic_state *st, unsigned int off)
{
	return (__u32 *)(st->regs + off);
}

/* Is the vector pending in vCPU 0's IRR? 1, 0, or -1 (errno). */
static int vk_irqfd_pending(const struct vk_irqfd *q)
{
	struct kvm_lapic_state st;

	if (ioctl(q->vcpu_fd, KVM_GET_LAPIC, &st))
		return -1;
	return !!(*vk_apic_reg(&st, VK_APIC_IRR + VK_IRQFD_VECTOR / 32 * 0x10) &
		  (1U << (VK_IRQFD_VECTOR % 32)));
}

/* Clear the vector in the IRR again (0, or -1 with errno). */
static int vk_irqfd_ack(const struct vk_irqfd *q)
{
	struct kvm_lapic_state st;

	if (ioctl(q->vcpu_fd, KVM_GET_LAPIC, &st))
		return -1;
	*vk_apic_reg(&st, VK_APIC_IRR + VK_IRQFD_VECTOR / 32 * 0x10) &=
		~(1U << (VK_IRQFD_VECTOR % 32));
	return ioctl(q->vcpu_fd, KVM_SET_LAPIC, &st);
}

/* Set up the probe on @vm_fd (before any vCPU exists); 0 or -1 (errno). */
static int _vk_irqfd_setup(int vm_fd, struct vk_irqfd *q, char *what,
			   size_t len)
{
	struct {
		struct kvm_irq_routing r;
		struct kvm_irq_routing_entry e[1];
	} rt = { .r = { .nr = 1 } };
	struct kvm_irqfd irqfd = { .gsi = VK_IRQFD_GSI };
	struct kvm_lapic_state st;

	strfmt(what, len, "KVM_CREATE_IRQCHIP");
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0))
		return -1;
	strfmt(what, len, "KVM_CREATE_VCPU");
	q->vcpu_fd = _test_kvm_create_vcpu(vm_fd, 0);
	if (q->vcpu_fd < 0)
		return -1;
	strfmt(what, len, "KVM_GET/SET_LAPIC");
	if (ioctl(q->vcpu_fd, KVM_GET_LAPIC, &st))
		return -1;
	*vk_apic_reg(&st, VK_APIC_SPIV) |= VK_APIC_SPIV_ENABLE;
	if (ioctl(q->vcpu_fd, KVM_SET_LAPIC, &st))
		return -1;
	strfmt(what, len, "KVM_SET_GSI_ROUTING");
	rt.e[0].gsi = VK_IRQFD_GSI;
	rt.e[0].type = KVM_IRQ_ROUTING_MSI;
	rt.e[0].u.msi.address_lo = 0xfee00000;	/* APIC 0, fixed */
	rt.e[0].u.msi.data = VK_IRQFD_VECTOR;
	if (ioctl(vm_fd, KVM_SET_GSI_ROUTING, &rt))
		return -1;
	strfmt(what, len, "eventfd");
	q->event_fd = eventfd(0, EFD_CLOEXEC);
	if (q->event_fd < 0)
		return -1;
	strfmt(what, len, "KVM_IRQFD");
	irqfd.fd = q->event_fd;
	return ioctl(vm_fd, KVM_IRQFD, &irqfd);
}

#define vk_irqfd_setup(vm_fd, q)                                               \
	({                                                                     \
		char __what[32];                                               \
		(q)->vcpu_fd = (q)->event_fd = -1;                             \
		ASSERT_EQ(0, _vk_irqfd_setup(vm_fd, q, __what,                 \
					     sizeof(__what)))                  \
			TH_LOG("irqfd probe: %s: %s", __what, strerror(errno)); \
		ASSERT_EQ(0, vk_irqfd_pending(q));                             \
	})

/*
 * Signal the irqfd and wait for the vector in the IRR (up to @wait_ms);
 * then clear it again. 1 (injected), 0 (not), -1 (errno).
 */
static int vk_irqfd_fires(const struct vk_irqfd *q, int wait_ms)
{
	long long deadline = now_ms() + wait_ms;
	__u64 one = 1;
	int ret;

	if (write(q->event_fd, &one, sizeof(one)) != sizeof(one))
		return -1;
	while ((ret = vk_irqfd_pending(q)) == 0 && now_ms() < deadline)
		usleep(1000);
	if (ret == 1 && vk_irqfd_ack(q))
		return -1;
	return ret;
}

static void vk_irqfd_close(struct vk_irqfd *q)
{
	close_fd(&q->event_fd);
	close_fd(&q->vcpu_fd);
}

#define vk_irqfd_skip_arch()                                                   \
	({                                                                     \
		if (!VK_IRQFD_ARCH)                                            \
			SKIP(return, "the irqfd probe uses the x86 local APIC"); \
	})

/*
 * Rule (the user-visible change of the series): while an open VFIO device
 * holds the VM file, closing the VM fd does not run kvm_vm_release(): the
 * VM's irqfd stays assigned and still injects. Once the device is closed
 * (its last holder) the file is released and the irqfd is gone, though
 * the VM lives on through its vCPU fd; closing that destroys it.
 * The association is dropped before the check (the KVM VFIO device fd is
 * closed too), so only the open device (and, for vfio-pci on iommufd, its
 * iommufd device) holds the VM file.
 * Can fail: a device that does not hold the VM file (base 7.3: it holds
 * struct kvm, so the VM fd's close releases the irqfds), a file reference
 * leaked by the device (the irqfd still injects after the device close),
 * a released file whose irqfds are not torn down.
 */
TEST_F_TIMEOUT(vfio_path, irqfd_kept_by_open_device, 30)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vk_irqfd q;
	struct vm_watch w;

	vk_irqfd_skip_arch();
	vk_create_vm(p, h, &self->log, 0, &w);
	vk_irqfd_setup(h->fd[VK_VM], &q);
	ASSERT_EQ(1, vk_irqfd_fires(&q, VK_IRQFD_FIRE_MS))
		TH_LOG("the irqfd does not inject with the VM fd open: %s",
		       strerror(errno));
	vk_open_file(p, h);
	test_kvm_vfio_file_add(h->fd[VK_KVM_VFIO], h->fd[VK_FILE]);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, w.id.name, "opened after FILE_ADD");

	vk_close_vm_fds(h);
	vm_assert_alive(&self->log, &w, "VM fd and KVM VFIO device fd closed");
	ASSERT_EQ(1, vk_irqfd_fires(&q, VK_IRQFD_FIRE_MS))
		TH_LOG("%s: VM fd closed while the open device holds the VM file: the irqfd no longer injects (kvm_vm_release() ran)",
		       p->what);

	vk_close_device(p, h);
	vm_assert_alive(&self->log, &w, "device closed, vCPU fd open");
	ASSERT_EQ(0, vk_irqfd_fires(&q, VK_IRQFD_QUIET_MS))
		TH_LOG("%s: the device (the VM file's last holder) is closed, but the irqfd still injects",
		       p->what);
	vk_irqfd_close(&q);
	vm_assert_destroyed(&self->log, &w, "vCPU fd closed");
	vk_assert_all_clean(self);
}

/*
 * Control: with the device open but not associated with the VM (no
 * FILE_ADD: it holds no VM), closing the VM fd releases the VM file at
 * once: kvm_vm_release() deassigns the irqfd, though the VM lives on
 * through the KVM VFIO device and vCPU fds. Same on the unpatched kernel.
 * Can fail: a VM file pinned by something that should not hold it (the
 * irqfd still injects), or a probe that cannot see "no injection".
 */
TEST_F_TIMEOUT(vfio_path, irqfd_released_without_association, 30)
{
	struct vk_path *p = &self->p;
	struct vk_handles *h = &self->h;
	struct vk_irqfd q;
	struct vm_watch w;

	vk_irqfd_skip_arch();
	vk_create_vm(p, h, &self->log, 0, &w);
	vk_irqfd_setup(h->fd[VK_VM], &q);
	ASSERT_EQ(1, vk_irqfd_fires(&q, VK_IRQFD_FIRE_MS))
		TH_LOG("the irqfd does not inject with the VM fd open: %s",
		       strerror(errno));
	vk_open_file(p, h);
	vk_open_device(p, h);
	vk_expect_device_vm(p, h, MKVM_VM_NONE, "opened without FILE_ADD");

	vk_close(h, VK_VM);
	vm_assert_alive(&self->log, &w, "VM fd closed, KVM VFIO device and vCPU fds open");
	ASSERT_EQ(0, vk_irqfd_fires(&q, VK_IRQFD_QUIET_MS))
		TH_LOG("%s: VM fd closed, the device holds no VM, but the irqfd still injects",
		       p->what);
	vk_close(h, VK_KVM_VFIO);
	vk_irqfd_close(&q);
	vm_assert_destroyed(&self->log, &w, "KVM VFIO device and vCPU fds closed");
	vk_assert_all_clean(self);
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
TEST_F_TIMEOUT(vfio_path, recycled_vm_file, 60)
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
	vk_path_setup(&self->p, VK_MKVM, variant->cdev, false);
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
