// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every ordering of the closes and IOMMU_DESTROYs around a vIOMMU with a VM
 * (DESIGN.md §2: "No reference cycle may keep a VM alive after userspace has
 * closed every fd it holds, in any order"; docs/kernel-behaviour.md's ownership
 * table).
 *
 * The objects: the iommufd, its IOAS, a mock device (bound with the VM or
 * not: variants; its idev then holds the VM from creation to destruction),
 * a nest-parent HWPT, a vIOMMU made with or without the KVM flag (variants;
 * it holds its device's VM), a vDEVICE, the VM fd and a KVM VFIO device fd
 * (which pins struct kvm, not the VM file). The actions: close each fd and
 * destroy each object.
 *
 * One checker runs an ordering against the kernel and, step by step,
 * against a model of the ownership table:
 *  - the VM is alive exactly while something pins it: the VM fd or the KVM
 *    VFIO device fd, the idev's VM (if the device and the iommufd live),
 *    the vIOMMU's VM (if it and the iommufd live); once nothing does, it
 *    is destroyed (KVM destroy uevent + debugfs dir gone), exactly once;
 *  - the mock's VM_CHECK of each live idev/vIOMMU says what it holds;
 *  - IOMMU_DESTROY answers EBUSY exactly while the object has dependants
 *    (IOAS: the parent and the mock device's domain; parent: the vIOMMU;
 *    vIOMMU: the vDEVICE): a refused destroy is retried after every later
 *    step, EBUSY while they exist, and must succeed once they are gone;
 *    destroying something already gone is ENOENT (a vDEVICE whose device
 *    was destroyed is a tombstone);
 *  - the process has exactly the fds it had before the ordering.
 *
 * ALL n! orderings of each family's actions run, every run: none is
 * pruned (the model is the oracle, so it must not also choose what runs).
 * The orderings are numbered in lexicographic order (next_permutation from
 * ascending) and dealt to forked workers, one per online CPU by default
 * ($VIOMMU_ORDER_WORKERS), each with its own VMs and iommufds; each worker
 * marks the ordering numbers it ran in shared memory, and the test asserts
 * that each of the n! numbers ran exactly once and that the n! orderings
 * are distinct sequences of actions.
 *
 *  vm_handles (fixture viommu_order): the five actions that can drop a pin
 *   on the VM: close(vm), close(kvm_vfio), destroy(stdev), destroy(viommu),
 *   close(iommufd); 120 orderings per variant, a new VM for each (it must
 *   die in each), checked after every step. No vDEVICE: it pins no VM; its
 *   only effect, the vIOMMU's EBUSY, is the other family's.
 *
 *  iommufd_objects (fixture viommu_order_objects): the 720 orderings of
 *   destroy(ioas), destroy(stdev), destroy(parent), destroy(viommu),
 *   destroy(vdevice), close(iommufd). Every answer is checked; the VM and
 *   its holders (VM_CHECK) at the start and the end of each ordering, not
 *   after every step (the VM cannot die here: the test's own VM and KVM
 *   VFIO device fds hold it meanwhile, and it must be destroyed exactly
 *   once when they close at the end of a batch); a VM is shared by the
 *   orderings of a worker with the same first action, so a leaked
 *   reference is pinned down to a batch.
 */
#include "iommufd_viommu_utils.h"

enum act {
	ACT_VM,		/* close the VM fd */
	ACT_KVM_VFIO,	/* close the KVM VFIO device fd */
	ACT_STDEV,	/* destroy the mock device */
	ACT_VIOMMU,
	ACT_VDEV,
	ACT_PARENT,
	ACT_IOAS,
	ACT_IOMMUFD,	/* close the iommufd */
	NR_ACTS
};

#define ABIT(a) (1U << (a))
#define ACTS_IOMMUFD_OBJS (ABIT(ACT_STDEV) | ABIT(ACT_VIOMMU) |             \
			   ABIT(ACT_VDEV) | ABIT(ACT_PARENT) | ABIT(ACT_IOAS))

static const char *const act_name[NR_ACTS] = {
	[ACT_VM] = "close(vm)",
	[ACT_KVM_VFIO] = "close(kvm_vfio)",
	[ACT_STDEV] = "destroy(stdev)",
	[ACT_VIOMMU] = "destroy(viommu)",
	[ACT_VDEV] = "destroy(vdevice)",
	[ACT_PARENT] = "destroy(parent)",
	[ACT_IOAS] = "destroy(ioas)",
	[ACT_IOMMUFD] = "close(iommufd)",
};

/* The two families' actions. */
#define FAMILY_VM_HANDLES (ABIT(ACT_VM) | ABIT(ACT_KVM_VFIO) |                \
			   ABIT(ACT_STDEV) | ABIT(ACT_VIOMMU) |               \
			   ABIT(ACT_IOMMUFD))
#define FAMILY_OBJECTS (ABIT(ACT_STDEV) | ABIT(ACT_VIOMMU) | ABIT(ACT_VDEV) | \
			ABIT(ACT_PARENT) | ABIT(ACT_IOAS) | ABIT(ACT_IOMMUFD))

/* ------------------------------------------------------------- model */

/*
 * What exists; the ownership table of docs/kernel-behaviour.md decides what
 * pins the VM.
 */
struct model {
	bool vm, kvm_vfio, iommufd, ioas, stdev, parent, viommu, vdev;
	bool idev_vm;		/* the mock device's idev holds the VM */
	bool viommu_vm;		/* the vIOMMU holds the VM */
	unsigned int pending;	/* destroys refused with EBUSY, to retry */
};

enum outcome {
	OUT_OK,
	OUT_BUSY,	/* IOMMU_DESTROY: EBUSY, dependants exist */
	OUT_ENOENT,	/* the object is gone already */
	OUT_SKIP,	/* the iommufd is closed: nothing to issue it on */
};

static bool m_pinned(const struct model *m)
{
	return m->vm || m->kvm_vfio ||
	       (m->iommufd && m->stdev && m->idev_vm) ||
	       (m->iommufd && m->viommu && m->viommu_vm);
}

static bool m_exists(const struct model *m, enum act a)
{
	switch (a) {
	case ACT_VM:
		return m->vm;
	case ACT_KVM_VFIO:
		return m->kvm_vfio;
	case ACT_IOMMUFD:
		return m->iommufd;
	case ACT_STDEV:
		return m->stdev;
	case ACT_VIOMMU:
		return m->viommu;
	case ACT_VDEV:
		return m->vdev;
	case ACT_PARENT:
		return m->parent;
	case ACT_IOAS:
		return m->ioas;
	default:
		return false;
	}
}

/* Dependants that make IOMMU_DESTROY EBUSY. */
static bool m_busy(const struct model *m, enum act a)
{
	switch (a) {
	case ACT_IOAS:
		/* the parent, and the mock device's domain on the IOAS */
		return m->parent || m->stdev;
	case ACT_PARENT:
		return m->viommu;
	case ACT_VIOMMU:
		return m->vdev;
	default:
		return false;
	}
}

static enum outcome m_outcome(const struct model *m, enum act a)
{
	bool on_iommufd = ABIT(a) & ACTS_IOMMUFD_OBJS;

	if (on_iommufd && !m->iommufd)
		return OUT_SKIP;
	if (!m_exists(m, a))
		return OUT_ENOENT;
	if (m_busy(m, a))
		return OUT_BUSY;
	return OUT_OK;
}

static void m_apply(struct model *m, enum act a)
{
	switch (a) {
	case ACT_VM:
		m->vm = false;
		break;
	case ACT_KVM_VFIO:
		m->kvm_vfio = false;
		break;
	case ACT_STDEV:
		/* its vDEVICE becomes a tombstone */
		m->stdev = m->vdev = false;
		break;
	case ACT_VIOMMU:
		m->viommu = false;
		break;
	case ACT_VDEV:
		m->vdev = false;
		break;
	case ACT_PARENT:
		m->parent = false;
		break;
	case ACT_IOAS:
		m->ioas = false;
		break;
	case ACT_IOMMUFD:
		m->iommufd = m->ioas = m->stdev = m->parent = false;
		m->viommu = m->vdev = false;
		m->pending = 0;
		break;
	default:
		break;
	}
}

/*
 * One model step: @a, then the retries of pending destroys. @ev receives
 * the events (action, outcome) in order; returns how many.
 */
struct event {
	unsigned char act, out;
	bool retry;
};

static int m_step(struct model *m, enum act a, struct event *ev)
{
	int n = 0, r;
	bool progress;

	ev[n++] = (struct event){ a, m_outcome(m, a), false };
	if (ev[0].out == OUT_BUSY)
		m->pending |= ABIT(a);
	if (ev[0].out != OUT_OK)
		return n;
	m_apply(m, a);
	/* Every refused destroy is tried again: EBUSY until it works. */
	do {
		progress = false;
		for (r = 0; r < NR_ACTS; r++) {
			enum outcome o;

			if (!(m->pending & ABIT(r)))
				continue;
			o = m_outcome(m, r);
			ev[n++] = (struct event){ r, o, true };
			if (o == OUT_OK) {
				m->pending &= ~ABIT(r);
				m_apply(m, r);
				progress = true;
			}
		}
	} while (progress);
	return n;
}

/* ------------------------------------------------------------ checker */

/* The state of the orderings of one test (both families). */
struct order_ctx {
	int kvm_fd;
	struct uevent_log log;
	struct vm_watch w;
	int fds[NR_ACTS];	/* ACT_VM, ACT_KVM_VFIO, ACT_IOMMUFD */
	__u32 ids[NR_ACTS];	/* the iommufd objects */
	__u32 idev_id;
	struct model m;
	bool vm_dead;
	bool idev_vm, viommu_flag;	/* the variant */
	char order[256];	/* the ordering being run, for messages */
};

/* Who holds the VM in iommufd when an ordering starts. */
struct order_variant {
	bool idev_vm;		/* the mock device is bound with the VM */
	bool viommu_flag;	/* vIOMMU with IOMMU_VIOMMU_ALLOC_KVM_VM_FD */
};

static void ctx_init(struct order_ctx *c, const struct order_variant *v)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NR_ACTS; i++)
		c->fds[i] = -1;
	c->kvm_fd = c->log.sock = -1;
	c->idev_vm = v->idev_vm;
	c->viommu_flag = v->viommu_flag;
}

static void __ctx_fini(struct __test_metadata *_metadata, struct order_ctx *c)
{
	int i;

	for (i = 0; i < NR_ACTS; i++)
		close_fd(&c->fds[i]);
	viommu_kvm_fini(&c->kvm_fd, &c->log);
}
#define ctx_fini(c) __ctx_fini(_metadata, c)

/* A new VM and KVM VFIO device fd, watched. */
static void __vm_open(struct __test_metadata *_metadata, struct order_ctx *c)
{
	test_vm_create_watched(c->kvm_fd, &c->log, 0, &c->w, &c->fds[ACT_VM]);
	test_kvm_create_vfio_device(c->fds[ACT_VM], &c->fds[ACT_KVM_VFIO]);
	c->m.vm = c->m.kvm_vfio = true;
	c->vm_dead = false;
}
#define vm_open(c) __vm_open(_metadata, c)

/*
 * The iommufd side: IOAS, mock device (bound with the VM if the variant says),
 * nest parent, vIOMMU (flag or not), and a vDEVICE if @vdev.
 */
static void __iommufd_objects_open(struct __test_metadata *_metadata,
				   struct order_ctx *c, bool vdev)
{
	int *fd = &c->fds[ACT_IOMMUFD];
	__u32 *ids = c->ids;

	*fd = iommufd_open();
	ASSERT_LE(0, *fd);
	ASSERT_EQ(0, _test_ioctl_ioas_alloc(*fd, &ids[ACT_IOAS]));
	ASSERT_EQ(0, _test_cmd_mock_dev_vm(*fd, ids[ACT_IOAS], 0,
					   c->idev_vm ? c->fds[ACT_VM] :
					   MOCK_NO_VM, &ids[ACT_STDEV],
					   &c->idev_id))
		TH_LOG("mock device: %s", strerror(errno));
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(*fd, c->idev_id, ids[ACT_IOAS],
					  IOMMU_HWPT_ALLOC_NEST_PARENT,
					  &ids[ACT_PARENT]));
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(*fd, c->idev_id, ids[ACT_PARENT],
					       c->viommu_flag ?
					       IOMMU_VIOMMU_ALLOC_KVM_VM_FD : 0,
					       c->fds[ACT_VM], &ids[ACT_VIOMMU]))
		TH_LOG("IOMMU_VIOMMU_ALLOC: %s", strerror(errno));
	if (vdev)
		ASSERT_EQ(0, _test_cmd_vdevice_alloc(*fd, ids[ACT_VIOMMU],
						     c->idev_id, 0x1,
						     &ids[ACT_VDEV]));
	c->m.iommufd = c->m.ioas = c->m.stdev = true;
	c->m.parent = c->m.viommu = true;
	c->m.vdev = vdev;
	c->m.idev_vm = c->idev_vm;
	c->m.viommu_vm = c->idev_vm || c->viommu_flag;
	c->m.pending = 0;
}
#define iommufd_objects_open(c, vdev) __iommufd_objects_open(_metadata, c, vdev)

/* Do @a on the kernel: 0 or -1 with errno. */
static int do_act(struct order_ctx *c, enum act a)
{
	int fd = c->fds[ACT_IOMMUFD];

	switch (a) {
	case ACT_VM:
	case ACT_KVM_VFIO:
	case ACT_IOMMUFD:
		if (close(c->fds[a]))
			return -1;
		c->fds[a] = -1;
		return 0;
	default:
		return _test_ioctl_destroy(fd, c->ids[a]);
	}
}

/* What an idev/vIOMMU holding (or not) the VM must report to VM_CHECK. */
static void __check_holder(struct __test_metadata *_metadata,
			   struct order_ctx *c, __u32 id, bool holds,
			   const char *what, const char *after)
{
	int vm_fd = c->fds[ACT_VM];
	__u32 out = 0xdead, want;

	want = !holds ? MOCK_VM_NONE : vm_fd >= 0 ? MOCK_VM_SAME : MOCK_VM_OTHER;
	ASSERT_EQ(0, _test_cmd_vm_check(c->fds[ACT_IOMMUFD], id, vm_fd, &out))
		TH_LOG("order [%s] after %s: VM_CHECK(%s): %s", c->order,
		       after, what, strerror(errno));
	ASSERT_EQ(want, out)
		TH_LOG("order [%s] after %s: %s holds VM %s, model says %s",
		       c->order, after, what, vm_state_str(out),
		       vm_state_str(want));
}

/* After every step: the VM and every holder as the model says. */
static void __check_state(struct __test_metadata *_metadata,
			  struct order_ctx *c, const char *after)
{
	const struct model *m = &c->m;
	char what[512];

	strfmt(what, sizeof(what), "order [%s] after %s", c->order, after);
	if (m_pinned(m)) {
		vm_assert_alive(&c->log, &c->w, what);
	} else if (!c->vm_dead) {
		vm_assert_destroyed(&c->log, &c->w, what);
		c->vm_dead = true;
	} else {
		ASSERT_EQ(0, uevent_log_pump(&c->log));
		ASSERT_EQ(1, c->w.ev.destroyed)
			TH_LOG("%s: VM %s destroyed %u times", what,
			       c->w.id.name, c->w.ev.destroyed);
	}
	if (m->iommufd && m->stdev)
		__check_holder(_metadata, c, c->idev_id, m->idev_vm, "idev",
			       after);
	if (m->iommufd && m->viommu)
		__check_holder(_metadata, c, c->ids[ACT_VIOMMU], m->viommu_vm,
			       "vIOMMU", after);
}

static const int expected_errno[] = {
	[OUT_OK] = 0, [OUT_BUSY] = EBUSY, [OUT_ENOENT] = ENOENT,
};

/*
 * The checker: run @order (n actions) on the objects set up, against the
 * model, checking every operation's answer and the state after every step.
 */
static void __run_order(struct __test_metadata *_metadata, struct order_ctx *c,
			const int *order, int n, bool check_steps)
{
	struct event ev[4 * NR_ACTS];
	char after[64];
	int i, j, nev, ret;

	order_str(order, n, act_name, " ", c->order, sizeof(c->order));
	__check_state(_metadata, c, "setup");
	for (i = 0; i < n; i++) {
		nev = m_step(&c->m, order[i], ev);
		for (j = 0; j < nev; j++) {
			const char *retry = ev[j].retry ? "retried " : "";
			enum act a = ev[j].act;
			int want = expected_errno[ev[j].out];

			if (ev[j].out == OUT_SKIP)
				continue;
			ret = do_act(c, a);
			if (!want) {
				ASSERT_EQ(0, ret)
					TH_LOG("order [%s]: %s%s: %s, model says it works",
					       c->order, retry, act_name[a],
					       strerror(errno));
				continue;
			}
			ASSERT_EQ(-1, ret)
				TH_LOG("order [%s]: %s%s worked, model says %s",
				       c->order, retry, act_name[a],
				       strerror(want));
			ASSERT_EQ(want, errno)
				TH_LOG("order [%s]: %s%s: %s, model says %s",
				       c->order, retry, act_name[a],
				       strerror(errno), strerror(want));
		}
		strfmt(after, sizeof(after), "step %d %s", i + 1,
		       act_name[order[i]]);
		if (check_steps || i == n - 1)
			__check_state(_metadata, c, after);
	}
	/* Every ordering ends with the iommufd closed: nothing is pending. */
	ASSERT_EQ(0, c->m.pending);
}
#define run_order(c, order, n, check_steps) \
	__run_order(_metadata, c, order, n, check_steps)


/* ------------------------------------------------ all the orderings */

/* The actions of @family, ascending: the first permutation. */
static int family_acts(unsigned int family, int *order)
{
	return mask_order(family, NR_ACTS, order);
}

/*
 * The orderings' bookkeeping, in memory shared with the workers: ran[i] is
 * how many times ordering number i ran (each must run exactly once).
 */
#define ORDERS_MAX	720

struct order_shared {
	atomic_uint ran[ORDERS_MAX];
	atomic_uint batches;	/* VMs of the objects family */
};

/*
 * Assert that the orderings of @n actions, numbered as next_permutation()
 * visits them, are n! distinct sequences (each encoded as a base-n number,
 * set in a bitmap: a repeat would find its bit set).
 */
static void __assert_orders_distinct(struct __test_metadata *_metadata,
				     unsigned int family)
{
	static unsigned char seen[46656 / 8 + 1];	/* 6^6 codes */
	int order[NR_ACTS], n, i, count = 0;
	unsigned int code, pos[NR_ACTS];

	memset(seen, 0, sizeof(seen));
	n = family_acts(family, order);
	for (i = 0; i < n; i++)
		pos[order[i]] = i;
	do {
		for (code = 0, i = 0; i < n; i++)
			code = code * n + pos[order[i]];
		ASSERT_GT(sizeof(seen) * 8, code);
		ASSERT_EQ(0, seen[code / 8] & (1 << (code % 8)))
			TH_LOG("ordering %d repeats an earlier one", count);
		seen[code / 8] |= 1 << (code % 8);
		count++;
	} while (next_permutation(order, n));
	ASSERT_EQ(factorial(n), count);
}

/* What a worker runs: the orderings with number % nr_workers == @w. */
typedef void (*worker_fn)(struct __test_metadata *_metadata,
			  struct order_ctx *c, struct order_shared *sh,
			  unsigned int family, int w, int nr_workers);

/*
 * Both families' fixtures: the variant (who holds the VM), the workers
 * and the shared bookkeeping. Each worker makes its own objects; the
 * fixture only checks the prerequisites (SKIP without them).
 */
#define ORDER_FIXTURE(name)                                                  \
	FIXTURE(name)                                                        \
	{                                                                    \
		struct workers w;                                            \
		struct order_shared *sh;                                     \
	};                                                                   \
									     \
	FIXTURE_VARIANT(name)                                                \
	{                                                                    \
		struct order_variant v;                                      \
	};                                                                   \
									     \
	FIXTURE_SETUP(name)                                                  \
	{                                                                    \
		const char *why;                                             \
									     \
		memset(&self->w, 0, sizeof(self->w));                        \
		self->sh = MAP_FAILED;                                       \
		why = viommu_kvm_prereq(NULL, NULL, NULL);                   \
		if (why) {                                                   \
			ASSERT_NE(0, strncmp(why, "FAIL", 4))                \
				TH_LOG("%s", why);                           \
			SKIP(return, "%s", why);                             \
		}                                                            \
		self->sh = mmap(NULL, sizeof(*self->sh),                     \
				PROT_READ | PROT_WRITE,                      \
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);          \
		ASSERT_NE(MAP_FAILED, self->sh);                             \
	}                                                                    \
									     \
	FIXTURE_TEARDOWN(name)                                               \
	{                                                                    \
		workers_reap(&self->w);                                      \
		if (self->sh != MAP_FAILED)                                  \
			munmap(self->sh, sizeof(*self->sh));                 \
	}

/*
 * Run @fn in the workers, wait for them, and assert that every one of the
 * n! orderings of @family ran exactly once.
 */
static void __run_workers(struct __test_metadata *_metadata,
			  struct workers *w, struct order_shared *sh,
			  const struct order_variant *v, unsigned int family,
			  worker_fn fn)
{
	int order[NR_ACTS], n = family_acts(family, order);
	unsigned int i, once = 0, total = factorial(n);
	long long t0 = now_ms();
	int nr;

	__assert_orders_distinct(_metadata, family);
	ASSERT_GE(ORDERS_MAX, total);
	nr = workers_count("VIOMMU_ORDER_WORKERS", VIOMMU_WORKERS_MAX);
	for (i = 0; i < (unsigned int)nr; i++) {
		pid_t pid = worker_fork(w);

		ASSERT_LE(0, pid) TH_LOG("fork: %s", strerror(errno));
		if (!pid) {
			struct __test_metadata wm;
			struct order_ctx c;

			worker_metadata(&wm, _metadata);
			ctx_init(&c, v);
			fn(&wm, &c, sh, family, i, nr);
			worker_exit(&wm);
		}
	}
	ASSERT_EQ(0, workers_wait(w)) TH_LOG("a worker failed (see above)");
	for (i = 0; i < total; i++) {
		unsigned int ran = atomic_load(&sh->ran[i]);

		ASSERT_EQ(1, ran) TH_LOG("ordering %u ran %u times", i, ran);
		once++;
	}
	ASSERT_EQ(total, once);
	ksft_print_msg("%s: %u of %u distinct orderings of %d actions ran, each once, %d workers, %lld ms\n",
		       _metadata->name, once, total, n, w->nr, now_ms() - t0);
}
#define run_workers(v, family, fn) \
	__run_workers(_metadata, &self->w, self->sh, v, family, fn)

/* ------------------------------------------------ family 1: vm_handles */

/* A worker of vm_handles: a new VM and objects for every ordering. */
static void vm_handles_worker(struct __test_metadata *_metadata,
			      struct order_ctx *c, struct order_shared *sh,
			      unsigned int family, int w, int nr_workers)
{
	int order[NR_ACTS], n, nfds, idx = 0;
	const char *why;

	why = viommu_kvm_prereq(&c->kvm_fd, NULL, &c->log);
	ASSERT_EQ(NULL, why) TH_LOG("worker %d: %s", w, why);
	n = family_acts(family, order);
	do {
		if (idx++ % nr_workers != w)
			continue;
		nfds = count_open_fds();
		memset(&c->m, 0, sizeof(c->m));
		vm_open(c);
		iommufd_objects_open(c, false);
		run_order(c, order, n, true);
		ASSERT_EQ(nfds, count_open_fds())
			TH_LOG("order [%s]: fds not back to the start", c->order);
		atomic_fetch_add(&sh->ran[idx - 1], 1);
	} while (next_permutation(order, n));
	ctx_fini(c);
}

ORDER_FIXTURE(viommu_order)

/* The negative path: nothing in iommufd holds the VM. */
FIXTURE_VARIANT_ADD(viommu_order, no_vm)
{
	.v = { .idev_vm = false, .viommu_flag = false },
};

/* The device is bound with the VM; the vIOMMU takes it (no flag). */
FIXTURE_VARIANT_ADD(viommu_order, device_vm)
{
	.v = { .idev_vm = true, .viommu_flag = false },
};

/* The device is bound with the VM; the vIOMMU names it (flag). */
FIXTURE_VARIANT_ADD(viommu_order, kvm_flag)
{
	.v = { .idev_vm = true, .viommu_flag = true },
};

/*
 * Rule (DESIGN §2, the ownership table of docs/kernel-behaviour.md): in every
 * one of the 120 orderings of the closes and destroys that can drop a VM
 * reference - VM fd, KVM VFIO device fd, the mock device, the vIOMMU, the
 * iommufd - the VM lives exactly while the model says something pins it and
 * is destroyed exactly once after; the idev/vIOMMU report what they hold;
 * fds return to the start. Fails on a missing reference (early destroy), a
 * leaked one (no destroy), a double put (two destroys, or KASAN in the log
 * scan), or an ordering that did not run.
 */
TEST_F_TIMEOUT(viommu_order, vm_handles, 280)
{
	run_workers(&variant->v, FAMILY_VM_HANDLES, vm_handles_worker);
}

/* -------------------------------------------- family 2: iommufd_objects */

/* End of a batch: the test's VM fds close, the VM must die, exactly once. */
#define batch_end(c, nfds)                                                   \
	({                                                                   \
		ASSERT_EQ(0, do_act(c, ACT_KVM_VFIO));                       \
		ASSERT_EQ(0, do_act(c, ACT_VM));                             \
		vm_assert_destroyed(&(c)->log, &(c)->w,                      \
				    "end of a batch of orderings");          \
		ASSERT_EQ(nfds, count_open_fds());                           \
	})

/*
 * A worker of iommufd_objects: a new VM for each first action (a batch),
 * new iommufd objects for every ordering.
 */
static void objects_worker(struct __test_metadata *_metadata,
			   struct order_ctx *c, struct order_shared *sh,
			   unsigned int family, int w, int nr_workers)
{
	int order[NR_ACTS], n, idx = 0, first = -1, nfds = -1;
	const char *why;

	why = viommu_kvm_prereq(&c->kvm_fd, NULL, &c->log);
	ASSERT_EQ(NULL, why) TH_LOG("worker %d: %s", w, why);
	n = family_acts(family, order);
	do {
		if (idx++ % nr_workers != w)
			continue;
		if (order[0] != first) {
			/* A new batch: the previous VM dies with its fds. */
			if (first >= 0)
				batch_end(c, nfds);
			first = order[0];
			atomic_fetch_add(&sh->batches, 1);
			nfds = count_open_fds();
			memset(&c->m, 0, sizeof(c->m));
			vm_open(c);
		}
		iommufd_objects_open(c, true);
		run_order(c, order, n, false);
		ASSERT_EQ(nfds + 2, count_open_fds())
			TH_LOG("order [%s]: fds not back to the start", c->order);
		atomic_fetch_add(&sh->ran[idx - 1], 1);
	} while (next_permutation(order, n));
	if (first >= 0)
		batch_end(c, nfds);
	ctx_fini(c);
}

ORDER_FIXTURE(viommu_order_objects)

/*
 * One variant: the dependencies do not involve the VM (a vIOMMU with or
 * without one, a device with or without one, pin the same objects), and
 * the VM variants are the other family's.
 */
FIXTURE_VARIANT_ADD(viommu_order_objects, kvm_flag)
{
	.v = { .idev_vm = true, .viommu_flag = true },
};

/*
 * Rule: in every one of the 720 orderings of the iommufd objects' destroys
 * and the iommufd close (IOAS, mock device, parent, vIOMMU, vDEVICE,
 * iommufd), IOMMU_DESTROY answers EBUSY exactly while the object has
 * dependants and works after; ENOENT once gone (a vDEVICE is a tombstone
 * once its device is destroyed); the holders report the VM the model says;
 * the VM (held meanwhile by the test's fds) is destroyed exactly once per
 * batch when those close. Fails on a wrong dependency, a destroy that loses
 * or leaks the VM reference, or an ordering that did not run.
 */
TEST_F_TIMEOUT(viommu_order_objects, iommufd_objects, 280)
{
	run_workers(&variant->v, FAMILY_OBJECTS, objects_worker);
	ksft_print_msg("%s: %u VMs (batches)\n", _metadata->name,
		       atomic_load(&self->sh->batches));
}

TEST_HARNESS_MAIN
