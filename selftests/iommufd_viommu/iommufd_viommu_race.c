// SPDX-License-Identifier: GPL-2.0-only
/*
 * Concurrency: binding a mock device with a VM (the mock's stand-in for
 * VFIO's bind with the VM file), IOMMU_VIOMMU_ALLOC on it (with the KVM
 * flag, and without: taking the device's VM), a vDEVICE, and the
 * IOMMU_DESTROYs of all of them race the VM fd being closed, for a bounded
 * time. Afterwards nothing may be left: every VM the test created is
 * destroyed exactly once once the iommufd is closed, fds are back, and the
 * kernel-log scan sees no report (lockdep: the VM file's fput() from
 * iommufd paths vs. the igroup lock; KASAN: a file used after its last
 * reference went).
 *
 * Threads (VMs are created by the main thread: KVM names a VM after the
 * creating thread's id, and the uevent log counts this process's VMs):
 *  - vm (main): creates VMs and publishes the fd (the first one before the
 *    binders start), then replaces it after a random time: dup2() of /dev/null over the fd number drops the VM fd's
 *    reference at an arbitrary moment for the others (and keeps the
 *    number, hence the VM's "<pid>-<fd>" name, taken: later VMs get other
 *    numbers, docs/kernel-behaviour.md);
 *  - bind (two of them): reads the published number, makes a mock device
 *    bound with whatever file it names then, a vIOMMU on it with the flag
 *    naming the number as read again (alternately) or without the flag, a
 *    vDEVICE, then VM_CHECK of the device against the number once more,
 *    and destroys everything.
 * Answers allowed while racing: success; EBADF (the number was not open:
 * -1); EBADFD (the device holds a VM and the number is /dev/null now, or
 * the other way round); EINVAL (the number is another VM now). The seed of
 * the random hold times is printed; $VIOMMU_RACE_SEED repeats it.
 */
#include "iommufd_viommu_utils.h"

#define RACE_MS		2000	/* at least */
#define RACE_MAX_MS	20000	/* at most, if an event has not happened */
#define RACE_MAX_VMS	200
#define RACE_BINDERS	2

FIXTURE(viommu_race)
{
	int fd;
	int kvm_fd;
	struct uevent_log log;
	__u32 ioas_id, stdev_id, idev_id, parent_id;
	int placeholders[RACE_MAX_VMS];
	int nr_placeholders;
	int nfds;
};

FIXTURE_SETUP(viommu_race)
{
	self->fd = self->kvm_fd = -1;
	self->log.sock = -1;
	self->nr_placeholders = 0;
	self->nfds = count_open_fds();
	viommu_kvm_prereq_or_skip(&self->kvm_fd, &self->fd, &self->log);
	test_mock_nest_parent(&self->ioas_id, &self->stdev_id, NULL,
			      &self->idev_id, &self->parent_id);
}

FIXTURE_TEARDOWN(viommu_race)
{
	int i;

	close_fd(&self->fd);
	for (i = 0; i < self->nr_placeholders; i++)
		close_fd(&self->placeholders[i]);
	viommu_kvm_fini(&self->kvm_fd, &self->log);
}

/* What happened, counted by the threads. */
enum race_event {
	EV_VM,			/* a VM published */
	EV_VM_CLOSED,		/* its fd replaced (the VM fd's reference dropped) */
	EV_DEV_VM,		/* a device bound with the published file */
	EV_VIOMMU_FLAG,		/* a vIOMMU made with the flag */
	EV_VIOMMU_NOFLAG,	/* a vIOMMU made without the flag */
	EV_VDEVICE,		/* a vDEVICE made */
	EV_HELD_ACROSS_CLOSE,	/* a device outlived its VM's fd (VM_CHECK) */
	EV_EBADF,
	EV_EBADFD,
	EV_EINVAL,
	NR_EVENTS
};

static const char *const event_name[NR_EVENTS] = {
	"VMs", "VM fds closed", "devices bound with the published file",
	"vIOMMUs with the flag", "vIOMMUs without the flag", "vDEVICEs",
	"devices holding a VM whose fd was closed", "EBADF", "EBADFD",
	"EINVAL",
};

struct race {
	FIXTURE_DATA(viommu_race) *self;
	atomic_int vm_fd;		/* the published fd number, or -1 */
	atomic_bool stop;
	long long deadline;		/* the vm thread stops then */
	unsigned int seed;
	atomic_ulong events[NR_EVENTS];
	atomic_int bad_errno;		/* an answer not allowed, or 0 */
	const char *_Atomic bad_op;
};

static void race_count(struct race *r, enum race_event ev)
{
	atomic_fetch_add(&r->events[ev], 1);
}

static void race_bad(struct race *r, const char *op, int err)
{
	int none = 0;

	if (atomic_compare_exchange_strong(&r->bad_errno, &none, err))
		atomic_store(&r->bad_op, op);
	atomic_store(&r->stop, true);
}

/* An allowed failure while racing? */
static void race_err(struct race *r, const char *op)
{
	if (errno == EBADF)
		race_count(r, EV_EBADF);
	else if (errno == EBADFD)
		race_count(r, EV_EBADFD);
	else if (errno == EINVAL)
		race_count(r, EV_EINVAL);
	else
		race_bad(r, op, errno);
}

/* Create a VM and publish its fd number; false on failure. */
static bool race_publish_vm(struct race *r)
{
	FIXTURE_DATA(viommu_race) *self = r->self;
	int vm_fd = ioctl(self->kvm_fd, KVM_CREATE_VM, 0);

	if (vm_fd < 0) {
		race_bad(r, "KVM_CREATE_VM", errno);
		return false;
	}
	race_count(r, EV_VM);
	atomic_store(&r->vm_fd, vm_fd);
	return true;
}

/*
 * Has every kind of event the test claims happened? The race goes on
 * until it has (and RACE_MS passed), or RACE_MAX_MS passed.
 */
static bool race_done(struct race *r)
{
	long long now = now_ms();
	int i;

	if (now >= r->deadline + RACE_MAX_MS - RACE_MS)
		return true;
	if (now < r->deadline)
		return false;
	for (i = EV_VM; i <= EV_HELD_ACROSS_CLOSE; i++)
		if (!atomic_load(&r->events[i]))
			return false;
	return true;
}

/*
 * The VM thread (the test's own): the first VM is published already; hold
 * each for a random time, drop its fd's reference (the number stays taken),
 * publish the next.
 */
static void vm_thread(struct race *r)
{
	FIXTURE_DATA(viommu_race) *self = r->self;
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	unsigned int seed = r->seed;

	if (null_fd < 0) {
		race_bad(r, "open /dev/null", errno);
		return;
	}
	while (!atomic_load(&r->stop)) {
		int vm_fd = atomic_load(&r->vm_fd);

		/* 5-30 ms published, then the VM fd's reference goes. */
		usleep(5000 + rand_r(&seed) % 25000);
		if (dup2(null_fd, vm_fd) != vm_fd) {
			race_bad(r, "dup2", errno);
			break;
		}
		race_count(r, EV_VM_CLOSED);
		self->placeholders[self->nr_placeholders++] = vm_fd;
		usleep(rand_r(&seed) % 2000);
		if (race_done(r) || self->nr_placeholders >= RACE_MAX_VMS ||
		    !race_publish_vm(r))
			break;
	}
	close(null_fd);
}

/* One round of a binder: device, vIOMMU, vDEVICE, VM_CHECK, destroys. */
static bool bind_round(struct race *r, bool flag)
{
	FIXTURE_DATA(viommu_race) *self = r->self;
	__u32 stdev_id, idev_id, viommu_id, vdev_id, out_vm;
	int vm_fd = atomic_load(&r->vm_fd);
	bool ok = true;

	if (_test_cmd_mock_dev_vm(self->fd, self->ioas_id, 0, vm_fd, &stdev_id,
				  &idev_id)) {
		race_err(r, "MOCK_DOMAIN_FLAGS(KVM_VM)");
		return true;
	}
	race_count(r, EV_DEV_VM);
	if (_test_cmd_viommu_alloc_vm(self->fd, idev_id, self->parent_id,
				      flag ? IOMMU_VIOMMU_ALLOC_KVM_VM_FD : 0,
				      atomic_load(&r->vm_fd), &viommu_id)) {
		race_err(r, "IOMMU_VIOMMU_ALLOC");
		goto out_dev;
	}
	race_count(r, flag ? EV_VIOMMU_FLAG : EV_VIOMMU_NOFLAG);
	/* Device and vIOMMU hold the same file, whatever happened to the fd. */
	if (_test_cmd_vdevice_alloc(self->fd, viommu_id, idev_id, 0x1,
				    &vdev_id)) {
		race_bad(r, "IOMMU_VDEVICE_ALLOC", errno);
		ok = false;
		goto out_viommu;
	}
	race_count(r, EV_VDEVICE);
	/* The number no longer names the file the device holds: closed. */
	if (_test_cmd_vm_check(self->fd, idev_id, vm_fd, &out_vm)) {
		if (errno != EBADF) {
			race_bad(r, "VM_CHECK", errno);
			ok = false;
		}
	} else if (out_vm == MOCK_VM_OTHER) {
		race_count(r, EV_HELD_ACROSS_CLOSE);
	} else if (out_vm != MOCK_VM_SAME) {
		race_bad(r, "VM_CHECK: not SAME/OTHER", EPROTO);
		ok = false;
	}
	if (_test_ioctl_destroy(self->fd, vdev_id)) {
		race_bad(r, "IOMMU_DESTROY(vdevice)", errno);
		ok = false;
	}
out_viommu:
	if (_test_ioctl_destroy(self->fd, viommu_id)) {
		race_bad(r, "IOMMU_DESTROY(viommu)", errno);
		ok = false;
	}
out_dev:
	if (_test_ioctl_destroy(self->fd, stdev_id)) {
		race_bad(r, "IOMMU_DESTROY(stdev)", errno);
		ok = false;
	}
	return ok;
}

static void *bind_thread(void *arg)
{
	struct race *r = arg;
	bool flag = false;

	while (!atomic_load(&r->stop)) {
		flag = !flag;
		if (!bind_round(r, flag))
			break;
	}
	return NULL;
}

/*
 * Rule: binding devices with a VM, vIOMMU allocation (with and without the
 * flag), vDEVICEs and their destruction, racing the VM fd's close for
 * RACE_MS and until every kind of event happened (RACE_MAX_MS at most),
 * answer only success, EBADF, EBADFD or EINVAL; every kind of
 * event the test is about happened (devices bound with a VM, both kinds of
 * vIOMMU, vDEVICEs, VM fds closed, a device holding a VM whose fd was
 * closed); afterwards, with the iommufd closed, every VM is destroyed
 * exactly once and the fds are back. Fails on a leaked reference (a VM
 * never destroyed), a double put (two destroys, a KASAN or refcount
 * report), a deadlock (timeout, lockdep), an answer no serialisation of
 * the calls could give, or a race that did not happen.
 */
TEST_F_TIMEOUT(viommu_race, bind_viommu_vs_vm_close, 60)
{
	struct race r = { .self = self };
	pthread_t t[RACE_BINDERS];
	unsigned long ev[NR_EVENTS];
	long long t0;
	int i;

	atomic_init(&r.vm_fd, -1);
	r.seed = test_seed("VIOMMU_RACE_SEED", _metadata->name);
	/* A VM to bind with before the binders start. */
	ASSERT_TRUE(race_publish_vm(&r))
		TH_LOG("KVM_CREATE_VM: %s", strerror(atomic_load(&r.bad_errno)));
	t0 = now_ms();
	r.deadline = t0 + RACE_MS;
	for (i = 0; i < RACE_BINDERS; i++)
		ASSERT_EQ(0, pthread_create(&t[i], NULL, bind_thread, &r));
	vm_thread(&r);
	atomic_store(&r.stop, true);
	for (i = 0; i < RACE_BINDERS; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	ksft_print_msg("%s: raced %lld ms\n", _metadata->name, now_ms() - t0);
	for (i = 0; i < NR_EVENTS; i++) {
		ev[i] = atomic_load(&r.events[i]);
		ksft_print_msg("%s: %lu %s\n", _metadata->name, ev[i],
			       event_name[i]);
	}
	ASSERT_EQ(0, atomic_load(&r.bad_errno))
		TH_LOG("%s: %s", atomic_load(&r.bad_op),
		       strerror(atomic_load(&r.bad_errno)));
	/* Each kind of event the test claims happened. */
	for (i = EV_VM; i <= EV_HELD_ACROSS_CLOSE; i++)
		EXPECT_LT(0, ev[i]) TH_LOG("no %s in %d ms", event_name[i],
					   RACE_MAX_MS);

	/* Nothing may outlive the iommufd and the VM fds. */
	close_fd(&self->fd);
	for (i = 0; i < self->nr_placeholders; i++)
		close_fd(&self->placeholders[i]);
	self->nr_placeholders = 0;
	uevent_log_assert_balanced(&self->log);
	ASSERT_EQ(ev[EV_VM], self->log.total.created)
		TH_LOG("%lu VMs created, %u create uevents (a VM without a debugfs name?)",
		       ev[EV_VM], self->log.total.created);
	close_fd(&self->kvm_fd);
	uevent_log_close(&self->log);
	ASSERT_EQ(self->nfds, count_open_fds());
}

TEST_HARNESS_MAIN
