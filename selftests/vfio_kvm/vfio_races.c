// SPDX-License-Identifier: GPL-2.0-only
/*
 * Concurrency between KVM's association calls and VFIO's device open/close,
 * with lockdep on in the test kernel.
 *
 * Each round creates a VM and its KVM VFIO device, opens the VFIO file, and
 * runs, bounded in time:
 *   - an "assoc" thread: KVM_DEV_VFIO_FILE_ADD / _DEL of the VFIO file;
 *   - a "device" thread: opens and closes the device (group path:
 *     VFIO_GROUP_GET_DEVICE_FD + close; cdev path: open the cdev, FILE_ADD,
 *     VFIO_DEVICE_BIND_IOMMUFD, FILE_DEL, close) and, on mkvm, reads which VM
 *     the open device holds;
 *   - the round's main thread, which closes the VM fd and the KVM VFIO
 *     device fd at random moments (in random order).
 * With mkvm this is the seed-004 lock pattern: ->open_device() takes
 * kvm->lock under VFIO's locks while KVM holds kvm->lock around the KVM VFIO
 * device's release, which calls back into VFIO (vfio_file_set_kvm()).
 *
 * Fds are "closed" with dup2(/dev/null, fd): the number stays taken until
 * the round ends, so no thread can hit a recycled fd number that now names
 * another file; the file itself is released exactly as by close().
 *
 * After every round: the VM is destroyed exactly once, every fd is back.
 * Lockdep splats, KASAN reports and hung tasks fail the test through the
 * kernel-log scan; a deadlock shows as the test's timeout. At the end, every
 * kind of event the rule names must have happened (successful opens,
 * FILE_ADDs and FILE_DELs, calls on the closed KVM VFIO device fd; on mkvm
 * opens that got the VM, and every open read back). Shared state is C11
 * atomics; the random close timing comes from a seed printed by every run
 * and taken from $VFIO_KVM_SEED when set.
 */
#include "vfio_kvm_path.h"

#include <pthread.h>
#include <stdatomic.h>

#define RACE_MS		1000	/* per variant (a round in progress completes) */
#define RACE_ROUNDS	40	/* at most */
#define ROUND_MS	40	/* closes happen within this */
#define SEED_ENV	"VFIO_KVM_SEED"	/* repeat a run's random choices */

FIXTURE(vfio_race)
{
	struct vk_path p;
	struct uevent_log log;
	int null_fd;
	int base_fds;
};

VK_PATH_VARIANTS(vfio_race);

FIXTURE_SETUP(vfio_race)
{
	self->log.sock = -1;
	self->null_fd = -1;
	vk_path_setup(&self->p, variant->kind, variant->cdev, variant->compat);
	vk_log_setup(&self->p, &self->log);
	self->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->null_fd);
	vk_base_fds_setup(&self->base_fds);
}

FIXTURE_TEARDOWN(vfio_race)
{
	close_fd(&self->null_fd);
	uevent_log_close(&self->log);
	vk_path_fini(&self->p);
}

/* One round's shared state. */
struct race {
	const struct vk_path *p;
	struct vk_handles h;	/* VM, KVM VFIO, VFIO file (group), iommu */
	char vm_name[32];
	atomic_bool stop;
	atomic_bool kvm_vfio_closed;
	atomic_int cdev_fd;	/* cdev path: the device thread's current fd */
	/*
	 * cdev path: the assoc thread's FILE_ADD never lands between the
	 * device thread's FILE_DEL and close of its cdev fd. Otherwise the
	 * KVM VFIO device would keep that (bound) file until its release and
	 * every later bind of the device would be a second bind (EINVAL):
	 * legal, but then the race would stop testing binds, and a second
	 * bind has its own deterministic test (vfio_lifetime's
	 * second_open_keeps_vm). The assoc thread's FILE_DEL of the cdev fd
	 * is under the lock too: an ioctl in flight holds a reference on the
	 * file, so a close() meanwhile would leave the file's release (and
	 * the device's close) to that thread, and the device thread's next
	 * bind would find the device still open (EINVAL) for that moment.
	 */
	pthread_mutex_t cdev_lock;
	/* first unexpected result of a thread, reported by the main thread */
	atomic_bool failed;
	char why[160];
	/* what happened: each kind is asserted to have happened */
	atomic_uint adds, dels, opens, opens_vm, opens_none;
	atomic_uint dead;	/* FILE_ADD/DEL on the closed KVM VFIO device fd */
};

static void __attribute__((format(printf, 2, 3)))
race_fail(struct race *r, const char *fmt, ...)
{
	bool no = false;
	va_list ap;

	if (!atomic_compare_exchange_strong(&r->failed, &no, true))
		return;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/*
 * errnos a racing FILE_ADD/DEL may see: EEXIST/ENOENT (the other thread
 * added/removed it), ENOTTY (KVM VFIO device fd replaced by /dev/null),
 * EBADF (cdev path: the assoc thread's FILE_DEL after the device thread
 * closed its cdev fd).
 */
static bool assoc_errno_ok(int err)
{
	return err == EEXIST || err == ENOENT || err == ENOTTY || err == EBADF;
}

static void race_assoc_op(struct race *r, __u64 op, int fd)
{
	if (!_test_kvm_vfio_file(r->h.fd[VK_KVM_VFIO], op, fd)) {
		atomic_fetch_add(op == KVM_DEV_VFIO_FILE_ADD ? &r->adds : &r->dels, 1);
		return;
	}
	if (!assoc_errno_ok(errno))
		race_fail(r, "FILE_%s: %s", op == KVM_DEV_VFIO_FILE_ADD ? "ADD" : "DEL",
			  strerror(errno));
	else if (errno == ENOTTY)
		atomic_fetch_add(&r->dead, 1);
}

static void *assoc_thread(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		int fd = r->h.fd[VK_FILE];

		if (r->p->cdev) {
			pthread_mutex_lock(&r->cdev_lock);
			fd = atomic_load(&r->cdev_fd);
			if (fd >= 0) {
				race_assoc_op(r, KVM_DEV_VFIO_FILE_ADD, fd);
				race_assoc_op(r, KVM_DEV_VFIO_FILE_DEL, fd);
			}
			pthread_mutex_unlock(&r->cdev_lock);
			if (fd < 0)
				sched_yield();
			continue;
		}
		race_assoc_op(r, KVM_DEV_VFIO_FILE_ADD, fd);
		race_assoc_op(r, KVM_DEV_VFIO_FILE_DEL, fd);
	}
	return NULL;
}

/* mkvm: the open device holds this round's VM or none, nothing else. */
static void race_check_vm(struct race *r, int device_fd)
{
	char vm[64];

	if (r->p->kind != VK_MKVM)
		return;
	if (_test_mkvm_vm(device_fd, vm, sizeof(vm)) < 0) {
		race_fail(r, "mkvm read: %s", strerror(errno));
		return;
	}
	if (!strcmp(vm, r->vm_name))
		atomic_fetch_add(&r->opens_vm, 1);
	else if (!strcmp(vm, MKVM_VM_NONE))
		atomic_fetch_add(&r->opens_none, 1);
	else
		race_fail(r, "open device holds VM %s, expected %s or none",
			  vm, r->vm_name);
}

static void race_device_group(struct race *r)
{
	int fd;

	fd = _test_vfio_group_get_device_fd(r->h.fd[VK_FILE], r->p->dev.name);
	if (fd < 0) {
		race_fail(r, "VFIO_GROUP_GET_DEVICE_FD: %s", strerror(errno));
		return;
	}
	atomic_fetch_add(&r->opens, 1);
	race_check_vm(r, fd);
	close(fd);
}

static void race_device_cdev(struct race *r)
{
	struct vk_handles h = r->h;
	int fd;

	fd = open(r->p->dev.cdev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		race_fail(r, "open %s: %s", r->p->dev.cdev, strerror(errno));
		return;
	}
	atomic_store(&r->cdev_fd, fd);
	race_assoc_op(r, KVM_DEV_VFIO_FILE_ADD, fd);
	h.fd[VK_FILE] = fd;
	if (!_vk_open_device(r->p, &h)) {
		atomic_fetch_add(&r->opens, 1);
		race_check_vm(r, fd);
	} else if (errno != EINVAL || !atomic_load(&r->kvm_vfio_closed)) {
		/*
		 * EINVAL only once the KVM VFIO device fd is gone: its release
		 * may still be pending in the thread whose ioctl held it, with
		 * the previous (bound) cdev file on its list for that moment.
		 */
		race_fail(r, "binding %s: %s", r->p->dev.cdev, strerror(errno));
	}
	pthread_mutex_lock(&r->cdev_lock);
	race_assoc_op(r, KVM_DEV_VFIO_FILE_DEL, fd);
	atomic_store(&r->cdev_fd, -1);
	close(fd);
	pthread_mutex_unlock(&r->cdev_lock);
}

static void *device_thread(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop)) {
		if (r->p->cdev)
			race_device_cdev(r);
		else
			race_device_group(r);
	}
	return NULL;
}

/*
 * Rule: FILE_ADD/FILE_DEL, device open/close (or cdev bind/unbind) and the
 * close of the VM fd and of the KVM VFIO device fd may run concurrently in
 * any interleaving: no deadlock (the seed-004 lock pattern with mkvm, which
 * takes kvm->lock in ->open_device()), no lockdep or KASAN report, every
 * call either succeeds or fails with an errno explained by the race, an open
 * device holds this round's VM or none, and after each round the VM is
 * destroyed exactly once with every fd back.
 * Can fail: a lock-order inversion (lockdep report, or the test's timeout on
 * a real deadlock), a reference leaked by a racing path (VM not destroyed
 * after the round), a double put (KASAN/refcount report, two destroy
 * events), a device holding a stale or foreign VM (mkvm read).
 */
TEST_F_TIMEOUT(vfio_race, concurrent_assoc_open_close, 30)
{
	unsigned int round, opens = 0, adds = 0, dels = 0, dead = 0;
	unsigned int vm_opens = 0, none_opens = 0, seed, seed0;
	long long start = now_ms();
	const char *env = getenv(SEED_ENV);

	seed = env && *env ? strtoul(env, NULL, 0) : (unsigned int)start;
	seed0 = seed;	/* rand_r() advances seed */
	TH_LOG("%s: seed %u (%s=%u repeats this run's choices)", self->p.what,
	       seed, SEED_ENV, seed);

	for (round = 0; round < RACE_ROUNDS && now_ms() - start < RACE_MS; round++) {
		struct race r = { .p = &self->p };
		pthread_t assoc, dev;
		struct vm_watch w;
		char what[96];
		int first, second;

		vk_handles_init(&r.h);
		atomic_init(&r.cdev_fd, -1);
		pthread_mutex_init(&r.cdev_lock, NULL);
		vk_create_vm(&self->p, &r.h, &self->log, 0, &w);
		strfmt(r.vm_name, sizeof(r.vm_name), "%s", w.id.name);
		vk_open_file(&self->p, &r.h);
		if (self->p.cdev)
			close_fd(&r.h.fd[VK_FILE]);	/* the device thread opens its own */
		else
			test_kvm_vfio_file_add(r.h.fd[VK_KVM_VFIO], r.h.fd[VK_FILE]);

		ASSERT_EQ(0, pthread_create(&assoc, NULL, assoc_thread, &r));
		ASSERT_EQ(0, pthread_create(&dev, NULL, device_thread, &r));

		/* Close the VM fd and the KVM VFIO device fd, in random order. */
		first = rand_r(&seed) & 1 ? VK_VM : VK_KVM_VFIO;
		second = first == VK_VM ? VK_KVM_VFIO : VK_VM;
		usleep(1000 * (rand_r(&seed) % ROUND_MS));
		if (first == VK_KVM_VFIO)
			atomic_store(&r.kvm_vfio_closed, true);
		ASSERT_LE(0, dup2(self->null_fd, r.h.fd[first]));
		usleep(1000 * (rand_r(&seed) % ROUND_MS));
		if (second == VK_KVM_VFIO)
			atomic_store(&r.kvm_vfio_closed, true);
		ASSERT_LE(0, dup2(self->null_fd, r.h.fd[second]));
		/* Let the threads run on against the dead handles for a bit. */
		usleep(5000);
		atomic_store(&r.stop, true);
		ASSERT_EQ(0, pthread_join(assoc, NULL));
		ASSERT_EQ(0, pthread_join(dev, NULL));
		pthread_mutex_destroy(&r.cdev_lock);
		vk_handles_close(&r.h);

		ASSERT_FALSE(atomic_load(&r.failed))
			TH_LOG("%s, round %u: %s", self->p.what, round, r.why);
		strfmt(what, sizeof(what), "%s, round %u", self->p.what, round);
		vm_assert_destroyed(&self->log, &w, what);
		uevent_log_unwatch(&self->log, 0);
		ASSERT_EQ(self->base_fds, count_open_fds()) TH_LOG("%s", what);
		opens += r.opens;
		adds += r.adds;
		dels += r.dels;
		dead += r.dead;
		vm_opens += r.opens_vm;
		none_opens += r.opens_none;
	}
	uevent_log_assert_balanced(&self->log);
	/* Every kind of event the rule names happened. */
	ASSERT_LT(0, round);
	ASSERT_LT(0, opens) TH_LOG("no device open succeeded");
	ASSERT_LT(0, adds) TH_LOG("no FILE_ADD succeeded");
	ASSERT_LT(0, dels) TH_LOG("no FILE_DEL succeeded");
	/*
	 * Calls on the closed KVM VFIO device fd ("dead") are not asserted:
	 * whether the assoc thread gets one in before it sees the close is
	 * timing (it did not on vfio-pci under load), and such a call only
	 * meets EBADF in fdget(); the count is reported below.
	 */
	if (self->p.kind == VK_MKVM) {
		/* Every open was read back, and some got the VM. */
		ASSERT_EQ(opens, vm_opens + none_opens);
		ASSERT_LT(0, vm_opens) TH_LOG("no open got the VM: the lock pattern was not exercised");
	}
	TH_LOG("%s: seed %u, %u rounds in %lld ms, %u device opens (%u with the VM, %u without), %u FILE_ADDs, %u FILE_DELs, %u on the closed KVM VFIO device",
	       self->p.what, seed0, round, now_ms() - start, opens, vm_opens,
	       none_opens, adds, dels, dead);
}

TEST_HARNESS_MAIN
