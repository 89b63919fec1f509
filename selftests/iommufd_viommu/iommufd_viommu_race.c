// SPDX-License-Identifier: GPL-2.0-only
/*
 * Concurrency: IOMMU_VIOMMU_ALLOC (with the KVM flag, and without: taking
 * the idev's VM) and IOMMU_DESTROY of the vIOMMU race the VM fd being
 * closed and the mock device's VM being changed (DEV_SET_VM), for a bounded
 * time. Afterwards nothing may be left: every VM the test created is
 * destroyed exactly once once the iommufd is closed, fds are back, and the
 * kernel-log scan sees no report (lockdep: the VM file's fput() from
 * iommufd paths vs. the igroup lock; KASAN: a file used after its last
 * reference went).
 *
 * Threads (VMs are created by the main thread: KVM names a VM after the
 * creating thread's id, and the uevent log counts this process's VMs):
 *  - vm (main): creates VMs and publishes the fd, then replaces it: dup2() of
 *    /dev/null over the fd number drops the VM fd's reference at an
 *    arbitrary moment for the others (and keeps the number, hence the VM's
 *    "<pid>-<fd>" name, taken: later VMs get other numbers,
 * docs/kernel-behaviour.md);
 *  - viommu: IOMMU_VIOMMU_ALLOC with the flag and the published fd,
 *    without the flag, IOMMU_DESTROY;
 *  - set_vm: DEV_SET_VM(published fd), DEV_SET_VM(-1).
 * Answers allowed while racing: success; EBADF (the number was not a VM fd
 * at that moment); EXDEV (the device had another VM than the one named).
 */
#include "iommufd_viommu_utils.h"

#define RACE_MS		2000
#define RACE_MAX_VMS	200

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

struct race {
	FIXTURE_DATA(viommu_race) *self;
	volatile int vm_fd;		/* the published fd number, or -1 */
	volatile bool stop;
	long long deadline;		/* vm_thread stops then */
	unsigned long allocs, destroys, set_vms, vms;
	unsigned long ebadf, exdev;
	int bad_errno;			/* an answer not allowed, or 0 */
	const char *bad_op;
};

static void race_bad(struct race *r, const char *op, int err)
{
	if (!r->bad_errno) {
		r->bad_op = op;
		r->bad_errno = err;
	}
	r->stop = true;
}

/* An allowed failure while racing? */
static void race_err(struct race *r, const char *op)
{
	if (errno == EBADF)
		__atomic_add_fetch(&r->ebadf, 1, __ATOMIC_RELAXED);
	else if (errno == EXDEV)
		__atomic_add_fetch(&r->exdev, 1, __ATOMIC_RELAXED);
	else
		race_bad(r, op, errno);
}

static void *vm_thread(void *arg)
{
	struct race *r = arg;
	FIXTURE_DATA(viommu_race) *self = r->self;
	int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null_fd < 0) {
		race_bad(r, "open /dev/null", errno);
		return NULL;
	}
	while (!r->stop && now_ms() < r->deadline &&
	       self->nr_placeholders < RACE_MAX_VMS) {
		int vm_fd = ioctl(self->kvm_fd, KVM_CREATE_VM, 0);

		if (vm_fd < 0) {
			race_bad(r, "KVM_CREATE_VM", errno);
			break;
		}
		r->vms++;
		r->vm_fd = vm_fd;
		usleep(20000);
		/* Drop the VM fd's reference; the number stays taken. */
		if (dup2(null_fd, vm_fd) != vm_fd) {
			race_bad(r, "dup2", errno);
			break;
		}
		self->placeholders[self->nr_placeholders++] = vm_fd;
		usleep(2000);
	}
	r->vm_fd = -1;
	close(null_fd);
	return NULL;
}

static void *viommu_thread(void *arg)
{
	struct race *r = arg;
	FIXTURE_DATA(viommu_race) *self = r->self;
	bool flag = false;

	while (!r->stop) {
		__u32 viommu_id;

		flag = !flag;
		if (_test_cmd_viommu_alloc_vm(self->fd, self->idev_id,
					      self->parent_id,
					      flag ? VIOMMU_ALLOC_KVM_VM_FD : 0,
					      r->vm_fd, &viommu_id)) {
			race_err(r, "IOMMU_VIOMMU_ALLOC");
			continue;
		}
		r->allocs++;
		if (_test_ioctl_destroy(self->fd, viommu_id)) {
			race_bad(r, "IOMMU_DESTROY(viommu)", errno);
			break;
		}
		r->destroys++;
	}
	return NULL;
}

static void *set_vm_thread(void *arg)
{
	struct race *r = arg;
	FIXTURE_DATA(viommu_race) *self = r->self;
	bool clear = false;

	while (!r->stop) {
		clear = !clear;
		if (_test_cmd_dev_set_vm(self->fd, self->idev_id,
					 clear ? -1 : r->vm_fd)) {
			race_err(r, "DEV_SET_VM");
			continue;
		}
		r->set_vms++;
	}
	return NULL;
}

/*
 * Rule: vIOMMU allocation (with and without the flag) and destruction,
 * racing the VM fd's close and DEV_SET_VM changes for RACE_MS, answer only
 * success, EBADF or EXDEV; afterwards, with the iommufd closed, every VM is
 * destroyed exactly once and the fds are back. Fails on a leaked reference
 * (a VM never destroyed), a double put (two destroys, a KASAN or refcount
 * report), a deadlock (timeout, lockdep), or an answer no serialisation of
 * the calls could give.
 */
TEST_F_TIMEOUT(viommu_race, viommu_vs_vm_close, 60)
{
	struct race r = { .self = self, .vm_fd = -1 };
	pthread_t t[2];
	long long t0;
	int i;

	ASSERT_EQ(0, pthread_create(&t[0], NULL, viommu_thread, &r));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, set_vm_thread, &r));
	t0 = now_ms();
	r.deadline = t0 + RACE_MS;
	vm_thread(&r);
	r.stop = true;
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_join(t[i], NULL));
	ksft_print_msg("%s: %lu VMs, %lu vIOMMUs allocated (%lu destroyed), %lu DEV_SET_VM, %lu EBADF, %lu EXDEV\n",
		       _metadata->name, r.vms, r.allocs, r.destroys, r.set_vms,
		       r.ebadf, r.exdev);
	ASSERT_EQ(0, r.bad_errno)
		TH_LOG("%s: %s", r.bad_op, strerror(r.bad_errno));
	/* It raced at all: both kinds of vIOMMU were made, VMs changed. */
	ASSERT_LT(1, r.vms);
	ASSERT_LT(1, r.allocs);
	ASSERT_LT(1, r.set_vms);

	/* Nothing may outlive the iommufd and the VM fds. */
	close_fd(&self->fd);
	for (i = 0; i < self->nr_placeholders; i++)
		close_fd(&self->placeholders[i]);
	self->nr_placeholders = 0;
	uevent_log_assert_balanced(&self->log);
	ASSERT_EQ(r.vms, self->log.total.created)
		TH_LOG("%lu VMs created, %u create uevents (a VM without a debugfs name?)",
		       r.vms, self->log.total.created);
	close_fd(&self->kvm_fd);
	uevent_log_close(&self->log);
	ASSERT_EQ(self->nfds, count_open_fds());
}

TEST_HARNESS_MAIN
