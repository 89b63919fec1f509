// SPDX-License-Identifier: GPL-2.0-only
/*
 * Every ordering of the closes and IOMMU_DESTROYs around a vIOMMU with a VM
 * (DESIGN.md §2: "No reference cycle may keep a VM alive after userspace has
 * closed every fd it holds, in any order"; docs/kernel-behaviour.md's ownership
 * table).
 *
 * The objects: the iommufd, its IOAS, a mock device (its idev may hold the
 * VM: DEV_SET_VM), a nest-parent HWPT, a vIOMMU made with or without the
 * KVM flag (variants), a vDEVICE, the VM fd and a KVM VFIO device fd (which
 * pins struct kvm, not the VM file). The actions: close each fd, destroy
 * each object, and DEV_SET_VM(-1) on the mock device.
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
 * The orderings are generated (lexicographic next_permutation over the
 * actions, all n! of them classified), not hand-picked; of each class of
 * orderings that are equivalent by construction the first is run. Two
 * families, because a VM costs ~90 ms to create and destroy under TCG and
 * the suite has to stay well under a minute:
 *
 *  vm_handles (fixture viommu_order): the six actions that can drop a pin
 *   on the VM: close(vm), close(kvm_vfio), DEV_SET_VM(-1),
 *   destroy(stdev), destroy(viommu), close(iommufd); 720 orderings, a new
 *   VM for every ordering run (it must die in each). No vDEVICE: it pins
 *   no VM; its only effect, the vIOMMU's EBUSY, is the other family's.
 *   Equivalent by construction, so pruned:
 *   - the placement of actions that drop no pin (destroying the device
 *     after DEV_SET_VM(-1) took its VM; DEV_SET_VM(-1) after the device is
 *     gone, ENOENT; anything on the iommufd after its close, not issued);
 *   - the position of close(kvm_vfio) among the VM file's drops, except
 *     whether it comes before or after the file's release: that fd pins
 *     struct kvm, not the VM file, so all that differs is whether the
 *     last kvm reference goes in its release or in the file's release.
 *   What is kept is every distinct sequence of VM-file drops (which
 *   action dropped which holders' references: the VM fd, the idev's, the
 *   vIOMMU's). Variant device_vm (the vIOMMU took the idev's VM, no flag)
 *   is pruned further: after the allocation its state is by construction
 *   the kvm_flag variant's (a vIOMMU holding its own reference to the same
 *   file), so only the last VM-file drop (and close(kvm_vfio) before or
 *   after it) is kept; what could differ, the reference taken at
 *   allocation, shows in every ordering.
 *
 *  iommufd_objects (fixture viommu_order_objects): the 720 orderings of
 *   destroy(ioas), destroy(stdev), destroy(parent), destroy(viommu),
 *   destroy(vdevice), close(iommufd). Pruned, equivalent by construction:
 *   - orderings that issue the same effective operations (success or
 *     EBUSY) in the same order, differing only where a destroy of
 *     something already gone falls (ENOENT: a lookup that changes nothing);
 *   - orderings that close the iommufd before the end: nothing after the
 *     close is issued, and what comes before it is a prefix of an ordering
 *     with the close last, run anyway; what is new is only the close with
 *     the objects (and refused destroys) that prefix left, so one ordering
 *     per such state is run.
 *   Every answer is checked; the VM and its holders (VM_CHECK) at the start
 *   and the end of each ordering, not after every step (the VM cannot die
 *   here, and it keeps the family at ~10 ms an ordering): the VM is held by
 *   the test's own VM and KVM VFIO device fds meanwhile and must be
 *   destroyed exactly once when they close at the end of a batch; a VM is
 *   shared by the orderings with the same first action, so a leaked
 *   reference is pinned down to a batch. DEV_SET_VM(-1) is not in this
 *   family: it affects no object's dependants (clearing is always
 *   allowed), only what VM_CHECK reports, which the first family covers.
 */
#include "iommufd_viommu_utils.h"

enum act {
	ACT_VM,		/* close the VM fd */
	ACT_KVM_VFIO,	/* close the KVM VFIO device fd */
	ACT_SET_VM_NONE,	/* IOMMU_TEST_OP_DEV_SET_VM(mock device, -1) */
	ACT_STDEV,	/* destroy the mock device */
	ACT_VIOMMU,
	ACT_VDEV,
	ACT_PARENT,
	ACT_IOAS,
	ACT_IOMMUFD,	/* close the iommufd */
	NR_ACTS
};

#define ABIT(a) (1U << (a))
#define ACTS_IOMMUFD_OBJS (ABIT(ACT_SET_VM_NONE) | ABIT(ACT_STDEV) |        \
			   ABIT(ACT_VIOMMU) | ABIT(ACT_VDEV) |                \
			   ABIT(ACT_PARENT) | ABIT(ACT_IOAS))

static const char *const act_name[NR_ACTS] = {
	[ACT_VM] = "close(vm)",
	[ACT_KVM_VFIO] = "close(kvm_vfio)",
	[ACT_SET_VM_NONE] = "DEV_SET_VM(-1)",
	[ACT_STDEV] = "destroy(stdev)",
	[ACT_VIOMMU] = "destroy(viommu)",
	[ACT_VDEV] = "destroy(vdevice)",
	[ACT_PARENT] = "destroy(parent)",
	[ACT_IOAS] = "destroy(ioas)",
	[ACT_IOMMUFD] = "close(iommufd)",
};

/* The two families' actions. */
#define FAMILY_VM_HANDLES (ABIT(ACT_VM) | ABIT(ACT_KVM_VFIO) |                \
			   ABIT(ACT_SET_VM_NONE) | ABIT(ACT_STDEV) |          \
			   ABIT(ACT_VIOMMU) | ABIT(ACT_IOMMUFD))
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

/* Which pins on the VM (as bits of act: the holder's handle) exist. */
static unsigned int m_pins(const struct model *m)
{
	return (m->vm ? ABIT(ACT_VM) : 0) |
	       (m->kvm_vfio ? ABIT(ACT_KVM_VFIO) : 0) |
	       (m->iommufd && m->stdev && m->idev_vm ? ABIT(ACT_STDEV) : 0) |
	       (m->iommufd && m->viommu && m->viommu_vm ? ABIT(ACT_VIOMMU) : 0);
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
	case ACT_SET_VM_NONE:
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
	case ACT_SET_VM_NONE:
		m->idev_vm = false;
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

/* ----------------------------------------------------- classification */

#define KEY_MAX 64

struct key {
	unsigned char len;
	unsigned char b[KEY_MAX];
};

enum prune {
	PRUNE_FILE_DROPS,	/* every sequence of VM-file drops */
	PRUNE_LAST_DROP,	/* the last VM-file drop only */
	PRUNE_EFFECTIVE,	/* the effective operations (objects family) */
};

#define FILE_PINS (ABIT(ACT_VM) | ABIT(ACT_STDEV) | ABIT(ACT_VIOMMU))

static void key_add(struct key *k, unsigned char b)
{
	if (k->len < KEY_MAX)
		k->b[k->len++] = b;
}

/* The class of @order (see the file comment) under @prune. */
static void classify(const struct model *m0, const int *order, int n,
		     enum prune prune, struct key *k)
{
	struct event ev[4 * NR_ACTS];
	struct model m = *m0;
	struct key last = {};
	int i, j, nev, kvm_vfio = 0;

	k->len = 0;
	for (i = 0; i < n; i++) {
		unsigned int before = m_pins(&m), after, dropped;

		if (prune == PRUNE_EFFECTIVE && order[i] == ACT_IOMMUFD &&
		    i < n - 1) {
			/* The close with what is left: the rest is moot. */
			k->len = 0;
			key_add(k, 0xff);
			key_add(k, m.ioas | m.stdev << 1 | m.parent << 2 |
				   m.viommu << 3 | m.vdev << 4);
			key_add(k, m.pending);
			return;
		}
		nev = m_step(&m, order[i], ev);
		if (prune == PRUNE_EFFECTIVE) {
			for (j = 0; j < nev; j++)
				if (ev[j].out == OUT_OK || ev[j].out == OUT_BUSY)
					key_add(k, ev[j].act << 2 | ev[j].out);
			continue;
		}
		after = m_pins(&m);
		dropped = before & ~after;
		if (dropped & ABIT(ACT_KVM_VFIO))
			/* struct kvm's pin: before or after the file's release */
			kvm_vfio = 0x40 | !!(after & FILE_PINS);
		if (!(dropped & FILE_PINS))
			continue;
		last.len = 0;
		for (j = 0; j < nev; j++)
			if (ev[j].out == OUT_OK)
				key_add(&last, ev[j].act);
		key_add(&last, 0x80 | (dropped & FILE_PINS));
		if (prune == PRUNE_FILE_DROPS)
			for (j = 0; j < last.len; j++)
				key_add(k, last.b[j]);
	}
	if (prune == PRUNE_LAST_DROP)
		for (j = 0; j < last.len; j++)
			key_add(k, last.b[j]);
	if (kvm_vfio)
		key_add(k, kvm_vfio);
}

static bool key_seen(const struct key *keys, int nkeys, const struct key *k)
{
	int i;

	for (i = 0; i < nkeys; i++)
		if (keys[i].len == k->len && !memcmp(keys[i].b, k->b, k->len))
			return true;
	return false;
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
	bool idev_vm;		/* DEV_SET_VM(vm) on the mock device */
	bool viommu_flag;	/* vIOMMU with IOMMU_VIOMMU_ALLOC_KVM_VM_FD */
	enum prune prune;
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
 * The iommufd side: IOAS, mock device (given the VM if the variant says),
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
	ASSERT_EQ(0, _test_cmd_mock_domain(*fd, ids[ACT_IOAS], &ids[ACT_STDEV],
					   NULL, &c->idev_id));
	if (c->idev_vm)
		ASSERT_EQ(0, _test_cmd_dev_set_vm(*fd, c->idev_id,
						  c->fds[ACT_VM]));
	ASSERT_EQ(0, _test_cmd_hwpt_alloc(*fd, c->idev_id, ids[ACT_IOAS],
					  IOMMU_HWPT_ALLOC_NEST_PARENT,
					  &ids[ACT_PARENT]));
	ASSERT_EQ(0, _test_cmd_viommu_alloc_vm(*fd, c->idev_id, ids[ACT_PARENT],
					       c->viommu_flag ?
					       VIOMMU_ALLOC_KVM_VM_FD : 0,
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

/* The model right after vm_open() + iommufd_objects_open(). */
static struct model model_start(const struct order_ctx *c, bool vdev)
{
	return (struct model){
		.vm = true, .kvm_vfio = true, .iommufd = true, .ioas = true,
		.stdev = true, .parent = true, .viommu = true, .vdev = vdev,
		.idev_vm = c->idev_vm,
		.viommu_vm = c->idev_vm || c->viommu_flag,
	};
}

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
	case ACT_SET_VM_NONE:
		return _test_cmd_dev_set_vm(fd, c->idev_id, -1);
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

	want = !holds ? TEST_VM_NONE : vm_fd >= 0 ? TEST_VM_SAME : TEST_VM_OTHER;
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

/* The actions of @family, ascending: the first permutation. */
static int family_acts(unsigned int family, int *order)
{
	int a, n = 0;

	for (a = 0; a < NR_ACTS; a++)
		if (family & ABIT(a))
			order[n++] = a;
	return n;
}

/*
 * Both families' fixtures: the checker's state, who holds the VM (the
 * variant), and the prerequisites (each ordering makes its own objects).
 */
#define ORDER_FIXTURE(name)                                                  \
	FIXTURE(name)                                                        \
	{                                                                    \
		struct order_ctx c;                                          \
	};                                                                   \
									     \
	FIXTURE_VARIANT(name)                                                \
	{                                                                    \
		struct order_variant v;                                      \
	};                                                                   \
									     \
	FIXTURE_SETUP(name)                                                  \
	{                                                                    \
		ctx_init(&self->c, &variant->v);                             \
		viommu_kvm_prereq_or_skip(&self->c.kvm_fd, NULL,             \
					  &self->c.log);                     \
	}                                                                    \
									     \
	FIXTURE_TEARDOWN(name)                                               \
	{                                                                    \
		ctx_fini(&self->c);                                          \
	}

/*
 * Is @order the first of its class under @prune? Then its key is added to
 * @keys (@nkeys of @max): the ordering is to be run.
 */
static bool __order_class_new(struct __test_metadata *_metadata,
			      const struct model *m0, const int *order, int n,
			      enum prune prune, struct key *keys, size_t max,
			      int *nkeys)
{
	struct key k;

	classify(m0, order, n, prune, &k);
	if (key_seen(keys, *nkeys, &k))
		return false;
	ASSERT_GT(max, *nkeys);
	keys[(*nkeys)++] = k;
	return true;
}
#define order_class_new(m0, order, n, prune, keys, nkeys)                   \
	__order_class_new(_metadata, m0, order, n, prune, keys,             \
			  ARRAY_SIZE(keys), nkeys)

/* ------------------------------------------------ family 1: vm_handles */

ORDER_FIXTURE(viommu_order)

/* The negative path: nothing in iommufd holds the VM. */
FIXTURE_VARIANT_ADD(viommu_order, no_vm)
{
	.v = { .idev_vm = false, .viommu_flag = false },
};

/* The device and the vIOMMU (named by the flag) hold the VM. */
FIXTURE_VARIANT_ADD(viommu_order, kvm_flag)
{
	.v = { .idev_vm = true, .viommu_flag = true },
};

/* Only the vIOMMU holds the VM (flag; the device has none). */
FIXTURE_VARIANT_ADD(viommu_order, kvm_flag_only)
{
	.v = { .idev_vm = false, .viommu_flag = true },
};

/* The vIOMMU took the device's VM (no flag); pruned to the last drop. */
FIXTURE_VARIANT_ADD(viommu_order, device_vm)
{
	.v = { .idev_vm = true, .viommu_flag = false,
	       .prune = PRUNE_LAST_DROP },
};

/*
 * Rule (DESIGN §2, the ownership table of docs/kernel-behaviour.md): in every
 * ordering of the closes and destroys that can drop a VM reference - VM fd, KVM
 * VFIO device fd, DEV_SET_VM(-1), the mock device, the vIOMMU, the iommufd -
 * the VM lives exactly while the model says something pins it and is destroyed
 * exactly once after; the idev/vIOMMU report what they hold; fds return to the
 * start. Fails on a missing reference (early destroy), a leaked one (no
 * destroy), a double put (two destroys, or KASAN in the log scan).
 */
TEST_F_TIMEOUT(viommu_order, vm_handles, 120)
{
	static struct key keys[720];
	struct order_ctx *c = &self->c;
	int order[NR_ACTS], n, nkeys = 0, nfds;
	unsigned long perms = 0;
	long long t0 = now_ms();
	struct model m0 = model_start(c, false);

	n = family_acts(FAMILY_VM_HANDLES, order);
	do {
		perms++;
		if (!order_class_new(&m0, order, n, variant->v.prune, keys,
				     &nkeys))
			continue;

		nfds = count_open_fds();
		memset(&c->m, 0, sizeof(c->m));
		vm_open(c);
		iommufd_objects_open(c, false);
		run_order(c, order, n, true);
		ASSERT_EQ(nfds, count_open_fds())
			TH_LOG("order [%s]: fds not back to the start", c->order);
	} while (next_permutation(order, n));
	ASSERT_EQ(factorial(n), perms);
	ksft_print_msg("%s: %lu orderings, %d run (one VM each), %lld ms\n",
		       _metadata->name, perms, nkeys, now_ms() - t0);
}

/* -------------------------------------------- family 2: iommufd_objects */

ORDER_FIXTURE(viommu_order_objects)

/*
 * One variant: the dependencies do not involve the VM (a vIOMMU with or
 * without one, a device with or without one, pin the same objects), and
 * the VM variants are the other family's.
 */
FIXTURE_VARIANT_ADD(viommu_order_objects, kvm_flag)
{
	.v = { .idev_vm = true, .viommu_flag = true,
	       .prune = PRUNE_EFFECTIVE },
};

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
 * Rule: in every ordering of the iommufd objects' destroys and the iommufd
 * close (IOAS, mock device, parent, vIOMMU, vDEVICE, iommufd),
 * IOMMU_DESTROY answers EBUSY exactly while the object has dependants and
 * works after; ENOENT once gone (a vDEVICE is a tombstone once its device
 * is destroyed); the holders report the VM the model says; the VM (held
 * meanwhile by the test's fds) is destroyed exactly once per batch when
 * those close. Fails on a wrong dependency, a destroy that loses or leaks
 * the VM reference.
 */
TEST_F_TIMEOUT(viommu_order_objects, iommufd_objects, 120)
{
	static struct key keys[720];
	struct order_ctx *c = &self->c;
	int order[NR_ACTS], n, nkeys = 0, first = -1, nfds = -1;
	unsigned long perms = 0, batches = 0;
	long long t0 = now_ms();
	struct model m0 = model_start(c, true);

	n = family_acts(FAMILY_OBJECTS, order);
	do {
		perms++;
		if (!order_class_new(&m0, order, n, variant->v.prune, keys,
				     &nkeys))
			continue;

		if (order[0] != first) {
			/* A new batch: the previous VM dies with its fds. */
			if (first >= 0)
				batch_end(c, nfds);
			first = order[0];
			batches++;
			nfds = count_open_fds();
			memset(&c->m, 0, sizeof(c->m));
			vm_open(c);
		}
		iommufd_objects_open(c, true);
		run_order(c, order, n, false);
		ASSERT_EQ(nfds + 2, count_open_fds())
			TH_LOG("order [%s]: fds not back to the start", c->order);
	} while (next_permutation(order, n));
	batch_end(c, nfds);
	ASSERT_EQ(factorial(n), perms);
	ksft_print_msg("%s: %lu orderings, %d run, %lu VMs, %lld ms\n",
		       _metadata->name, perms, nkeys, batches, now_ms() - t0);
}

TEST_HARNESS_MAIN
