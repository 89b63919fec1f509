// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfr_bench - throughput of the kernel paths the VM-file-reference series
 * touches, run inside the benchmark guest (tools/bench.sh).
 *
 * Every path is an operation that leaves the system as it found it (open +
 * close, alloc + destroy, add + del). Each is run a few times untimed, the
 * thread sleeps 200 ms (deferred work of earlier paths settles), then the
 * operation runs in batches until at least -t seconds of CLOCK_MONOTONIC
 * have passed; the result is one line per path on stdout:
 *
 *   BENCH <path> threads=<n> ops=<ops> ns=<elapsed> cpu_ns=<cpu> ns_per_op=<x>
 *   BENCH <path> threads=<n> na=<why>          (path absent on this kernel)
 *   BENCH <path> threads=<n> error=<what>      (unexpected failure)
 *
 * cpu_ns is the CPU time of the measuring threads (CLOCK_THREAD_CPUTIME_ID,
 * their user and kernel time, without the time they slept).
 *
 * Under QEMU -icount shift=0 the guest clock advances 1 ns per executed
 * guest instruction, so ns_per_op then reads as instructions per operation,
 * and cpu_ns / ops as the instructions the thread itself executed per op.
 *
 * Multi-threaded paths (suffix _mt) run the same operation in two threads,
 * pinned to CPUs 0 and 1, each on its own VM, KVM VFIO device, container or
 * iommufd and mtty device; ops is the sum, ns the longer thread's time.
 *
 * Usage: vfr_bench [-t SECONDS] [-p PATH]... MTTY_UUID0 MTTY_UUID1
 * (all paths in table order, or the -p paths in the order given; a path
 * may be given more than once)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/iommufd.h>
#include <linux/kvm.h>
#include <linux/vfio.h>
#include "iommufd_test.h"
/* the series' uAPI, mirrored: one binary runs on both kernels */
#include "viommu_uapi.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define WARMUP_OPS	16
#define BATCH_OPS	8
/* Idle time before the timed part, for work deferred by earlier paths. */
#define QUIESCE_US	200000

/* ------------------------------------------------------------ helpers */

static const char *mtty_uuid[2];
static double target_s = 1.0;

static long long clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long long now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	/* Best effort: with one CPU the threads share it. */
	sched_setaffinity(0, sizeof(set), &set);
}

/* The group (/dev/vfio/N) and cdev (/dev/vfio/devices/vfioN) of an mdev. */
static int mdev_paths(const char *uuid, char *group, size_t glen,
		      char *cdev, size_t clen)
{
	char path[PATH_MAX], link[PATH_MAX];
	ssize_t len;
	int i;

	snprintf(path, sizeof(path), "/sys/bus/mdev/devices/%s/iommu_group", uuid);
	len = readlink(path, link, sizeof(link) - 1);
	if (len <= 0)
		return -errno;
	link[len] = 0;
	snprintf(group, glen, "/dev/vfio/%s", strrchr(link, '/') + 1);
	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path),
			 "/sys/bus/mdev/devices/%s/vfio-dev/vfio%d", uuid, i);
		if (!access(path, F_OK)) {
			snprintf(cdev, clen, "/dev/vfio/devices/vfio%d", i);
			return 0;
		}
	}
	return -ENOENT;
}

static int kvm_vfio_file(int dev_fd, __u64 op, int vfio_fd)
{
	__s32 fd = vfio_fd;
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_FILE,
		.attr = op,
		.addr = (__u64)(uintptr_t)&fd,
	};

	return ioctl(dev_fd, KVM_SET_DEVICE_ATTR, &attr);
}

static int kvm_create_vfio_dev(int vm_fd)
{
	struct kvm_create_device cd = { .type = KVM_DEV_TYPE_VFIO };

	if (ioctl(vm_fd, KVM_CREATE_DEVICE, &cd))
		return -1;
	return cd.fd;
}

static int iommu_destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

/* ------------------------------------------------------------ context */

/* Everything one thread of one path works on; -1/0 when unused. */
struct ctx {
	int idx;		/* which mtty device / CPU */
	int kvm, vm, kvmdev;	/* /dev/kvm, a VM, its KVM VFIO device */
	int container, group;	/* type1 container with the mtty group */
	int iommufd;
	__u32 ioas, idev, hwpt;	/* mock device and its nest parent */
	char group_path[64], cdev_path[64];
	const char *err;	/* what failed, for the report */
	int err_no;
};

#define FAIL(c, what)	({ (c)->err = (what); (c)->err_no = errno; -1; })

static void ctx_init(struct ctx *c, int idx)
{
	memset(c, 0, sizeof(*c));
	c->idx = idx;
	c->kvm = c->vm = c->kvmdev = c->container = c->group = c->iommufd = -1;
}

static void ctx_fini(struct ctx *c)
{
	close_fd(&c->kvmdev);
	close_fd(&c->group);
	close_fd(&c->container);
	close_fd(&c->iommufd);
	close_fd(&c->vm);
	close_fd(&c->kvm);
}

static int setup_kvm(struct ctx *c)
{
	c->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (c->kvm < 0)
		return FAIL(c, "open /dev/kvm");
	return 0;
}

/* A VM with a KVM VFIO device. */
static int setup_vm(struct ctx *c)
{
	if (setup_kvm(c))
		return -1;
	c->vm = ioctl(c->kvm, KVM_CREATE_VM, 0);
	if (c->vm < 0)
		return FAIL(c, "KVM_CREATE_VM");
	c->kvmdev = kvm_create_vfio_dev(c->vm);
	if (c->kvmdev < 0)
		return FAIL(c, "KVM_CREATE_DEVICE(VFIO)");
	return 0;
}

static int setup_paths(struct ctx *c)
{
	int ret = mdev_paths(mtty_uuid[c->idx], c->group_path,
			     sizeof(c->group_path), c->cdev_path,
			     sizeof(c->cdev_path));

	if (ret) {
		errno = -ret;
		return FAIL(c, "mtty mdev not found");
	}
	return 0;
}

/* The mtty group in a type1 container of its own. */
static int setup_group(struct ctx *c)
{
	if (setup_paths(c))
		return -1;
	c->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (c->container < 0)
		return FAIL(c, "open /dev/vfio/vfio");
	c->group = open(c->group_path, O_RDWR | O_CLOEXEC);
	if (c->group < 0)
		return FAIL(c, "open group");
	if (ioctl(c->group, VFIO_GROUP_SET_CONTAINER, &c->container))
		return FAIL(c, "VFIO_GROUP_SET_CONTAINER");
	if (ioctl(c->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return FAIL(c, "VFIO_SET_IOMMU");
	return 0;
}

static int setup_iommufd(struct ctx *c)
{
	c->iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (c->iommufd < 0)
		return FAIL(c, "open /dev/iommu");
	return 0;
}

/* iommufd with a mock device and a nest-parent HWPT on an IOAS. */
/*
 * A mock device on an IOAS and a nest-parent HWPT for vIOMMUs.  With
 * @vm_fd >= 0 the device is bound with that "VM" (MOCK_FLAGS_DEVICE_KVM_VM),
 * as VFIO binds a device with its VM.
 */
static int setup_mock_vm(struct ctx *c, int vm_fd)
{
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_test_cmd mock = {
		.size = sizeof(mock),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
	};
	struct iommu_hwpt_alloc hwpt = {
		.size = sizeof(hwpt),
		.flags = IOMMU_HWPT_ALLOC_NEST_PARENT,
		.data_type = IOMMU_HWPT_DATA_NONE,
	};

	if (setup_iommufd(c))
		return -1;
	if (ioctl(c->iommufd, IOMMU_IOAS_ALLOC, &ioas))
		return FAIL(c, "IOMMU_IOAS_ALLOC");
	c->ioas = ioas.out_ioas_id;
	mock.id = c->ioas;
	if (vm_fd >= 0) {
		mock.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_KVM_VM;
		*mock_cmd_kvm_vm_fd(&mock) = vm_fd;
	}
	if (ioctl(c->iommufd, IOMMU_TEST_CMD, &mock))
		return FAIL(c, "IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS");
	c->idev = mock.mock_domain_flags.out_idev_id;
	hwpt.dev_id = c->idev;
	hwpt.pt_id = c->ioas;
	if (ioctl(c->iommufd, IOMMU_HWPT_ALLOC, &hwpt))
		return FAIL(c, "IOMMU_HWPT_ALLOC(NEST_PARENT)");
	c->hwpt = hwpt.out_hwpt_id;
	return 0;
}

static int setup_mock(struct ctx *c)
{
	return setup_mock_vm(c, -1);
}

/* ------------------------------------------------------------- paths */

/* VM create + destroy. */
static int setup_vm_create(struct ctx *c)
{
	return setup_kvm(c);
}

static int op_vm_create(struct ctx *c)
{
	int vm = ioctl(c->kvm, KVM_CREATE_VM, 0);

	if (vm < 0)
		return FAIL(c, "KVM_CREATE_VM");
	close(vm);
	return 0;
}

/* VM create + KVM VFIO device create + destroy of both. */
static int op_vm_create_vfio(struct ctx *c)
{
	int vm = ioctl(c->kvm, KVM_CREATE_VM, 0), dev;

	if (vm < 0)
		return FAIL(c, "KVM_CREATE_VM");
	dev = kvm_create_vfio_dev(vm);
	if (dev < 0) {
		FAIL(c, "KVM_CREATE_DEVICE(VFIO)");
		close(vm);
		return -1;
	}
	close(dev);
	close(vm);
	return 0;
}

/* KVM_DEV_VFIO_FILE_ADD + FILE_DEL of a group in a container. */
static int setup_file_add_del(struct ctx *c)
{
	return setup_vm(c) || setup_group(c) ? -1 : 0;
}

static int op_file_add_del(struct ctx *c)
{
	if (kvm_vfio_file(c->kvmdev, KVM_DEV_VFIO_FILE_ADD, c->group))
		return FAIL(c, "KVM_DEV_VFIO_FILE_ADD");
	if (kvm_vfio_file(c->kvmdev, KVM_DEV_VFIO_FILE_DEL, c->group))
		return FAIL(c, "KVM_DEV_VFIO_FILE_DEL");
	return 0;
}

/* Group path: VFIO_GROUP_GET_DEVICE_FD + close, the group added to a VM. */
static int setup_group_open(struct ctx *c)
{
	if (setup_file_add_del(c))
		return -1;
	if (kvm_vfio_file(c->kvmdev, KVM_DEV_VFIO_FILE_ADD, c->group))
		return FAIL(c, "KVM_DEV_VFIO_FILE_ADD");
	return 0;
}

/* The same without a VM: what the VM association costs on top. */
static int setup_group_open_novm(struct ctx *c)
{
	return setup_group(c);
}

static int op_group_open(struct ctx *c)
{
	int fd = ioctl(c->group, VFIO_GROUP_GET_DEVICE_FD, mtty_uuid[c->idx]);

	if (fd < 0)
		return FAIL(c, "VFIO_GROUP_GET_DEVICE_FD");
	close(fd);
	return 0;
}

/*
 * cdev path: open + FILE_ADD + VFIO_DEVICE_BIND_IOMMUFD + FILE_DEL + close.
 * The association is on the cdev file, which is new at every open, and the
 * KVM VFIO device holds that file until FILE_DEL, so both are part of the
 * cycle (file_add_del measures them on their own).
 */
static int setup_cdev_open(struct ctx *c)
{
	return setup_vm(c) || setup_paths(c) || setup_iommufd(c) ? -1 : 0;
}

static int setup_cdev_open_novm(struct ctx *c)
{
	return setup_paths(c) || setup_iommufd(c) ? -1 : 0;
}

static int cdev_cycle(struct ctx *c, bool vm)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = c->iommufd,
	};
	int fd = open(c->cdev_path, O_RDWR | O_CLOEXEC), ret = -1;

	if (fd < 0)
		return FAIL(c, "open cdev");
	if (vm && kvm_vfio_file(c->kvmdev, KVM_DEV_VFIO_FILE_ADD, fd)) {
		FAIL(c, "KVM_DEV_VFIO_FILE_ADD(cdev)");
		goto out;
	}
	if (ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind))
		FAIL(c, "VFIO_DEVICE_BIND_IOMMUFD");
	else
		ret = 0;
	if (vm && kvm_vfio_file(c->kvmdev, KVM_DEV_VFIO_FILE_DEL, fd))
		ret = FAIL(c, "KVM_DEV_VFIO_FILE_DEL(cdev)");
out:
	close(fd);
	return ret;
}

static int op_cdev_open(struct ctx *c)
{
	return cdev_cycle(c, true);
}

static int op_cdev_open_novm(struct ctx *c)
{
	return cdev_cycle(c, false);
}

/* IOMMU_VIOMMU_ALLOC + IOMMU_DESTROY on a mock device. */
static int setup_viommu(struct ctx *c)
{
	return setup_mock(c);
}

static int viommu_cycle(struct ctx *c, __u32 size, __u32 flags, int vm_fd)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.size = size,
		.flags = flags,
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = c->idev,
		.hwpt_id = c->hwpt,
		.kvm_vm_fd = vm_fd,
	};

	if (ioctl(c->iommufd, IOMMU_VIOMMU_ALLOC, &cmd))
		return FAIL(c, "IOMMU_VIOMMU_ALLOC");
	if (iommu_destroy(c->iommufd, cmd.out_viommu_id))
		return FAIL(c, "IOMMU_DESTROY");
	return 0;
}

/* The 7.3 struct, no flag: what existing userspace does. */
static int op_viommu(struct ctx *c)
{
	return viommu_cycle(c, VIOMMU_ALLOC_SIZE_7_3, 0, -1);
}

/*
 * The mock device bound with a VM (v2: the VM enters iommufd at bind), the
 * vIOMMU allocated with IOMMU_VIOMMU_ALLOC_KVM_VM_FD naming it.
 */
static int setup_viommu_vm(struct ctx *c)
{
	if (setup_kvm(c))
		return -1;
	c->vm = ioctl(c->kvm, KVM_CREATE_VM, 0);
	if (c->vm < 0)
		return FAIL(c, "KVM_CREATE_VM");
	return setup_mock_vm(c, c->vm);
}

static int op_viommu_kvm(struct ctx *c)
{
	return viommu_cycle(c, VIOMMU_ALLOC_SIZE_KVM,
			    IOMMU_VIOMMU_ALLOC_KVM_VM_FD, c->vm);
}

struct path {
	const char *name;
	int threads;
	int (*setup)(struct ctx *c);
	int (*op)(struct ctx *c);
	/*
	 * errnos of the setup or first op that mean "not on this kernel"
	 * (0: none)
	 */
	int na_errno, na_errno2;
	const char *na_why;
};

#define PATH(_name, _threads, _setup, _op)				\
	{ .name = _name, .threads = _threads, .setup = _setup, .op = _op }
#define PATH_NA(_name, _setup, _op, _errno2, _why)			\
	{ .name = _name, .threads = 1, .setup = _setup, .op = _op,	\
	  .na_errno = EOPNOTSUPP, .na_errno2 = _errno2, .na_why = _why }

static const struct path paths[] = {
	PATH("vm_create", 1, setup_vm_create, op_vm_create),
	PATH("vm_create_vfio", 1, setup_vm_create, op_vm_create_vfio),
	PATH("file_add_del", 1, setup_file_add_del, op_file_add_del),
	PATH("group_open", 1, setup_group_open, op_group_open),
	PATH("group_open_novm", 1, setup_group_open_novm, op_group_open),
	PATH("cdev_open", 1, setup_cdev_open, op_cdev_open),
	PATH("cdev_open_novm", 1, setup_cdev_open_novm, op_cdev_open_novm),
	PATH("viommu", 1, setup_viommu, op_viommu),
	/*
	 * 7.3's mock refuses the unknown device flag (EINVAL); the 7.3
	 * struct, no flag: the vIOMMU takes the device's VM.
	 */
	PATH_NA("viommu_devvm", setup_viommu_vm, op_viommu, EINVAL,
		"MOCK_FLAGS_DEVICE_KVM_VM:EINVAL"),
	/* The same with the flag naming the device's VM. */
	PATH_NA("viommu_kvm", setup_viommu_vm, op_viommu_kvm, EINVAL,
		"MOCK_FLAGS_DEVICE_KVM_VM:EINVAL"),
	PATH("vm_create_mt", 2, setup_vm_create, op_vm_create),
	PATH("file_add_del_mt", 2, setup_file_add_del, op_file_add_del),
	PATH("group_open_mt", 2, setup_group_open, op_group_open),
	PATH("cdev_open_mt", 2, setup_cdev_open, op_cdev_open),
};

/* ----------------------------------------------------------- running */

struct worker {
	const struct path *p;
	struct ctx c;
	pthread_barrier_t *barrier;
	long long ops, ns, cpu_ns;
	int ret;		/* 0, -1 error, 1 not available */
};

static bool not_here(const struct path *p, int err)
{
	return p->na_errno && (err == p->na_errno || err == p->na_errno2);
}

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct ctx *c = &w->c;
	long long t0, t, c0;
	int i;

	pin_cpu(c->idx);
	w->ret = w->p->setup(c);
	if (!w->ret) {
		for (i = 0; i < WARMUP_OPS && !w->ret; i++)
			w->ret = w->p->op(c);
		if (w->ret && i == 1 && not_here(w->p, c->err_no))
			w->ret = 1;
	} else if (not_here(w->p, c->err_no)) {
		w->ret = 1;
	}
	/*
	 * Let RCU callbacks and kworkers of the earlier paths (and of the
	 * setup) finish, so that they are not counted here. Every thread
	 * reaches the barrier, whatever happened above.
	 */
	usleep(QUIESCE_US);
	pthread_barrier_wait(w->barrier);
	if (w->ret)
		goto out;
	c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	t0 = now_ns();
	do {
		for (i = 0; i < BATCH_OPS; i++) {
			if (w->p->op(c)) {
				w->ret = -1;
				goto out;
			}
		}
		w->ops += BATCH_OPS;
		t = now_ns() - t0;
	} while (t < (long long)(target_s * 1e9));
	w->ns = t;
	w->cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
out:
	ctx_fini(c);
	return NULL;
}

static int run_path(const struct path *p)
{
	struct worker w[2];
	pthread_barrier_t barrier;
	pthread_t tid[2];
	long long ops = 0, ns = 0, cpu_ns = 0;
	int i, ret = 0, n = p->threads;

	pthread_barrier_init(&barrier, NULL, n);
	for (i = 0; i < n; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].p = p;
		w[i].barrier = &barrier;
		ctx_init(&w[i].c, i);
		if (pthread_create(&tid[i], NULL, worker_run, &w[i])) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(tid[i], NULL);
	pthread_barrier_destroy(&barrier);

	printf("BENCH %s threads=%d ", p->name, n);
	for (i = 0; i < n; i++) {
		if (w[i].ret < 0) {
			printf("error=%s:%s\n", w[i].c.err ?: "op",
			       strerror(w[i].c.err_no));
			return -1;
		}
		if (w[i].ret > 0)
			ret = 1;
		ops += w[i].ops;
		cpu_ns += w[i].cpu_ns;
		if (w[i].ns > ns)
			ns = w[i].ns;
	}
	if (ret) {
		printf("na=%s\n", p->na_why);
		return 0;
	}
	printf("ops=%lld ns=%lld cpu_ns=%lld ns_per_op=%.1f\n", ops, ns, cpu_ns,
	       (double)ns / ops);
	return 0;
}

static void usage(void)
{
	size_t i;

	fprintf(stderr,
		"usage: vfr_bench [-t SECONDS] [-p PATH]... MTTY_UUID0 MTTY_UUID1\npaths:");
	for (i = 0; i < ARRAY_SIZE(paths); i++)
		fprintf(stderr, " %s", paths[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *only[4 * ARRAY_SIZE(paths)];
	size_t i, j, nonly = 0;
	int opt, ret = 0;

	while ((opt = getopt(argc, argv, "t:p:h")) != -1) {
		switch (opt) {
		case 't':
			target_s = atof(optarg);
			break;
		case 'p':
			if (nonly == ARRAY_SIZE(only))
				usage();
			only[nonly++] = optarg;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 2 || target_s <= 0)
		usage();
	mtty_uuid[0] = argv[optind];
	mtty_uuid[1] = argv[optind + 1];
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* All paths in table order, or those of -p in the order given. */
	for (j = 0; j < (nonly ?: 1); j++) {
		for (i = 0; i < ARRAY_SIZE(paths); i++) {
			if (nonly && strcmp(only[j], paths[i].name))
				continue;
			if (run_path(&paths[i]))
				ret = 1;
		}
	}
	return ret;
}
