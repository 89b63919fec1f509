/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The paths by which a VFIO device meets a KVM VM, for the vfio_kvm tests
 * (fixture variants, not copies of the tests):
 *
 *   group path: /dev/vfio/<N> in a type1 container, the device fd from
 *               VFIO_GROUP_GET_DEVICE_FD; KVM_DEV_VFIO_FILE_ADD of the group
 *   iommufd compat container: the group path with /dev/iommu given to
 *               VFIO_GROUP_SET_CONTAINER (and VFIO_SET_IOMMU, which iommufd
 *               answers for VFIO): opening the device binds it to iommufd
 *               (drivers/vfio/group.c; needs no IOMMUFD_VFIO_CONTAINER, which
 *               only makes /dev/vfio/vfio an iommufd)
 *   cdev path:  /dev/vfio/devices/vfioX bound to an iommufd
 *               (VFIO_DEVICE_BIND_IOMMUFD; a vfio-pci device also attaches
 *               to an IOAS); KVM_DEV_VFIO_FILE_ADD of the cdev fd
 *
 * with three devices: mtty (emulated: iommufd access), vfio-pci ($VFIO_KVM_PCI,
 * QEMU's edu in the test guest: a real iommufd idev on the iommufd paths) and
 * mkvm (emulated, reports the VM it holds, see vm_file_utils.h).
 *
 * And a model of docs/kernel-behaviour.md's ownership table, from which the
 * tests compute whether the VM must be alive after each step (see
 * vk_model_vm_alive()).
 */
#ifndef __SELFTEST_VFIO_KVM_PATH_H
#define __SELFTEST_VFIO_KVM_PATH_H

#include "vm_file_utils.h"

enum vk_dev_kind {
	VK_MTTY,
	VK_MKVM,
	VK_PCI,
};

/*
 * The handles of one scenario. VK_FILE is what KVM_DEV_VFIO_FILE_ADD takes:
 * the group fd (group path) or the device cdev fd (cdev path, where it is
 * also the device fd). VK_DEVICE is the device fd of the group path only.
 * VK_IOMMU is the type1 container (group path) or the iommufd (cdev path,
 * compat container).
 */
enum vk_handle {
	VK_VM,
	VK_KVM_VFIO,
	VK_FILE,
	VK_DEVICE,
	VK_IOMMU,
	VK_NR_HANDLES
};

struct vk_path {
	enum vk_dev_kind kind;
	bool cdev;
	bool compat;		/* group path, /dev/iommu as the container */
	bool broken;		/* vk_path_init(): the named device is not usable */
	struct vfio_dev_info dev;
	int kvm_fd;
	char what[128];		/* "group path, mtty 83b8...", for messages */
};

struct vk_handles {
	int fd[VK_NR_HANDLES];
	__u32 devid;		/* cdev path: from VFIO_DEVICE_BIND_IOMMUFD */
};

static inline void vk_handles_init(struct vk_handles *h)
{
	int i;

	for (i = 0; i < VK_NR_HANDLES; i++)
		h->fd[i] = -1;
	h->devid = 0;
}

void vk_handles_close(struct vk_handles *h);

/* The fd the open device is used through (pread for mkvm). */
static inline int vk_device_fd(const struct vk_path *p, const struct vk_handles *h)
{
	return p->cdev ? h->fd[VK_FILE] : h->fd[VK_DEVICE];
}

/*
 * Is the KVM VFIO device available? kvm_has_vfio_device() costs a VM
 * (~110 ms under TCG), so it is probed once per program, before the harness
 * forks the tests (and before any test's uevent socket exists): 1, 0 (no
 * /dev/kvm or no KVM VFIO device), -1 (probe failed: the tests fail rather
 * than skip). vfio_kvm_path.c's constructor sets it: the suite's Makefile
 * links vfio_kvm_path.o only into the programs that include this header.
 */
extern int vk_kvm_probe;

/*
 * KVM's side of every test: /dev/kvm, the KVM VFIO device, KVM's debugfs
 * dir. On a missing piece returns 0 with the reason in @why (the caller
 * SKIPs; nothing is left open); -1 if the probe itself failed (the caller
 * fails); 1 with p->kvm_fd open.
 */
int vk_kvm_init(struct vk_path *p, char *why, size_t whylen);

/*
 * Find the @nth device of the kind and check the path's nodes, then KVM's
 * side (vk_kvm_init()). On a missing piece: returns false with the reason
 * in @why (the caller SKIPs; nothing is left open). Anything that exists
 * but does not work is the caller's failure: a failed KVM probe (false,
 * vk_kvm_probe < 0) or a named device that is not usable (false,
 * p->broken).
 */
bool vk_path_init(struct vk_path *p, enum vk_dev_kind kind,
		  bool cdev, bool compat, int nth, char *why,
		  size_t whylen);

/*
 * In a FIXTURE_SETUP: vk_path_init() of the first device, SKIP with the
 * reason if something is missing, fail if the KVM probe itself failed or
 * the device named is not usable.
 */
#define vk_path_setup(p, kind, cdev, compat)                                   \
	({                                                                     \
		char __why[600];                                               \
		if (!vk_path_init(p, kind, cdev, compat, 0, __why,             \
				  sizeof(__why))) {                            \
			ASSERT_LE(0, vk_kvm_probe) TH_LOG("%s", __why);        \
			ASSERT_FALSE((p)->broken) TH_LOG("%s", __why);         \
			SKIP(return, "%s", __why);                             \
		}                                                              \
	})

static inline void vk_path_fini(struct vk_path *p)
{
	close_fd(&p->kvm_fd);
}

/*
 * In a FIXTURE_SETUP, once @p is set up: the uevent log, bound before the
 * test's first VM; SKIP without it (releasing @p: no teardown after a SKIP).
 */
#define vk_log_setup(p, log)                                                   \
	({                                                                     \
		int __ret = uevent_log_open(log);                              \
		if (__ret) {                                                   \
			vk_path_fini(p);                                       \
			SKIP(return, "NETLINK_KOBJECT_UEVENT socket: %s",      \
			     strerror(-__ret));                                \
		}                                                              \
	})

/* In a FIXTURE_SETUP: the fd count every test must get back to. */
#define vk_base_fds_setup(base_fds)                                            \
	({                                                                     \
		*(base_fds) = count_open_fds();                                \
		ASSERT_LT(0, *(base_fds));                                     \
	})

/*
 * Fixture variants. VK_PATH_VARIANTS: every path with every device: the
 * group path (type1 container), the cdev path and the group path with the
 * iommufd compat container ("compat_"), each with mtty, mkvm and the
 * vfio-pci device. VK_CDEV_VARIANTS: the group and the cdev path of one
 * kind of device.
 */
#define VK_PATH_VARIANT(fixture, name, _kind, _cdev, _compat)                  \
	FIXTURE_VARIANT_ADD(fixture, name)                                     \
	{                                                                      \
		.kind = _kind,                                                 \
		.cdev = _cdev,                                                 \
		.compat = _compat,                                             \
	}

#define VK_PATH_VARIANTS(fixture)                                              \
	FIXTURE_VARIANT(fixture)                                               \
	{                                                                      \
		enum vk_dev_kind kind;                                         \
		bool cdev;                                                     \
		bool compat;                                                   \
	};                                                                     \
	VK_PATH_VARIANT(fixture, group_mtty, VK_MTTY, false, false);           \
	VK_PATH_VARIANT(fixture, cdev_mtty, VK_MTTY, true, false);             \
	VK_PATH_VARIANT(fixture, cdev_pci, VK_PCI, true, false);               \
	VK_PATH_VARIANT(fixture, group_mkvm, VK_MKVM, false, false);           \
	VK_PATH_VARIANT(fixture, cdev_mkvm, VK_MKVM, true, false);             \
	VK_PATH_VARIANT(fixture, group_pci, VK_PCI, false, false);             \
	VK_PATH_VARIANT(fixture, compat_mtty, VK_MTTY, false, true);           \
	VK_PATH_VARIANT(fixture, compat_pci, VK_PCI, false, true);             \
	VK_PATH_VARIANT(fixture, compat_mkvm, VK_MKVM, false, true)

#define VK_CDEV_VARIANTS(fixture)                                              \
	FIXTURE_VARIANT(fixture)                                               \
	{                                                                      \
		bool cdev;                                                     \
	};                                                                     \
	FIXTURE_VARIANT_ADD(fixture, group) { .cdev = false };                 \
	FIXTURE_VARIANT_ADD(fixture, cdev) { .cdev = true }

/* VM fd and KVM VFIO device fd; the VM is watched in @slot of @log. */
#define vk_create_vm(p, h, log, slot, w)                                       \
	({                                                                     \
		test_kvm_create_vm((p)->kvm_fd, &(h)->fd[VK_VM]);              \
		uevent_log_watch(log, slot, w, (h)->fd[VK_VM]);                \
		test_kvm_create_vfio_device((h)->fd[VK_VM],                    \
					    &(h)->fd[VK_KVM_VFIO]);            \
	})

/*
 * Open the VFIO file (group: container + group, container set, type1v2;
 * compat: the same with /dev/iommu as the container; cdev: iommufd + device
 * cdev).
 */
#define vk_open_file(p, h)                                                     \
	({                                                                     \
		test_open_rdwr((p)->cdev || (p)->compat ? IOMMUFD_PATH :       \
			       VFIO_CONTAINER_PATH, &(h)->fd[VK_IOMMU]);       \
		test_open_rdwr((p)->cdev ? (p)->dev.cdev : (p)->dev.group,     \
			       &(h)->fd[VK_FILE]);                             \
		if (!(p)->cdev) {                                              \
			test_vfio_group_set_container((h)->fd[VK_FILE],        \
						      (h)->fd[VK_IOMMU]);      \
			test_vfio_set_iommu((h)->fd[VK_IOMMU],                 \
					    VFIO_TYPE1v2_IOMMU);               \
		}                                                              \
	})

/*
 * Open the device: VFIO_GROUP_GET_DEVICE_FD (group path) or
 * VFIO_DEVICE_BIND_IOMMUFD (cdev path; a vfio-pci device is also attached to
 * a fresh IOAS). This is when the device takes the VM cached in the VFIO
 * file. 0, or -1 with errno.
 */
int _vk_open_device(const struct vk_path *p, struct vk_handles *h);
#define vk_open_device(p, h)                                                   \
	ASSERT_EQ(0, _vk_open_device(p, h))                                    \
		TH_LOG("%s: opening the device (%s): %s", (p)->what,           \
		       (p)->cdev ? "VFIO_DEVICE_BIND_IOMMUFD" :                \
				   "VFIO_GROUP_GET_DEVICE_FD",                 \
		       strerror(errno))

/* Close one handle of @h (it must be open). */
#define vk_close(h, hd)                                                        \
	({                                                                     \
		ASSERT_LE(0, (h)->fd[hd]);                                     \
		ASSERT_EQ(0, close((h)->fd[hd]));                              \
		(h)->fd[hd] = -1;                                              \
	})

/*
 * mkvm only: the open device holds the VM named @want ("none": no VM).
 * Other devices have no such oracle: the tests use destroy timing for them.
 */
#define vk_expect_device_vm(p, h, want, what)                                  \
	({                                                                     \
		if ((p)->kind == VK_MKVM)                                      \
			test_mkvm_vm(vk_device_fd(p, h), want, what);          \
	})

/* ------------------------------------------------------------- the model */

/*
 * docs/kernel-behaviour.md's ownership table, reduced to what decides the VM's
 * life in one scenario (one VM, one VFIO file, one device):
 *
 *   VM file   <- VM fd                                     (until close)
 *             <- the VFIO file's cached VM                 (FILE_ADD while the
 *                VM file was alive, until FILE_DEL / KVM VFIO device close)
 *             <- the open device                           (if opened while
 *                the file cached the VM; until the device is closed)
 *   struct kvm <- VM file, KVM VFIO device fd
 *   VFIO file <- its fd; the KVM VFIO device (FILE_ADD until FILE_DEL or its
 *                close); group path: every open device fd
 *   the open device: group path: its device fd; cdev path: the cdev file, so
 *                it stays bound while the KVM VFIO device holds the file
 *   VM file   <- the device's iommufd device (idev: vfio-pci bound to an
 *                iommufd, cdev path or compat container; it takes the open
 *                device's VM at bind and holds it until unbind, i.e. the
 *                device's close: SPEC-series-v2 "changed" 1 and 6)
 *
 * The VM file, once released, never comes back (KVM clears its weak
 * pointer), and the VM is alive exactly while its file or struct kvm is
 * pinned. Container and iommufd fds pin nothing of this (the group holds its
 * container, a bound device its iommufd context).
 */
struct vk_model {
	bool cdev;
	bool idev;		/* the path binds an iommufd device */
	bool open[VK_NR_HANDLES];	/* fd open */
	bool assoc;		/* the KVM VFIO device holds the VFIO file */
	bool cached_vm;		/* ... and the file caches the VM file */
	bool dev_open;		/* the device is open (cdev: bound) */
	bool dev_vm;		/* ... and holds the VM file */
	bool idev_vm;		/* its iommufd device holds the VM file */
	bool vm_file;		/* the VM file is alive */
};

static inline bool vk_model_file_alive(const struct vk_model *m)
{
	return m->open[VK_FILE] || m->assoc ||
	       (!m->cdev && m->open[VK_DEVICE]);
}

/* Propagate releases after a change; call after every step. */
void vk_model_settle(struct vk_model *m);

static inline bool vk_model_vm_alive(const struct vk_model *m)
{
	return m->vm_file || m->open[VK_KVM_VFIO];
}

/* Start: VM fd and KVM VFIO device fd open. */
void vk_model_init(struct vk_model *m, const struct vk_path *p);

static inline void vk_model_open_file(struct vk_model *m)
{
	m->open[VK_FILE] = m->open[VK_IOMMU] = true;
}

void vk_model_file_add(struct vk_model *m);

void vk_model_open_device(struct vk_model *m);

/* FILE_DEL needs the KVM VFIO device fd and the VFIO file's fd. */
static inline bool vk_model_can_del(const struct vk_model *m)
{
	return m->open[VK_KVM_VFIO] && m->open[VK_FILE];
}

void vk_model_file_del(struct vk_model *m);

void vk_model_close(struct vk_model *m, enum vk_handle hd);

/* Is the device reachable through an fd (for the mkvm oracle)? */
static inline bool vk_model_device_fd_open(const struct vk_model *m)
{
	return m->dev_open && m->open[m->cdev ? VK_FILE : VK_DEVICE];
}

#endif /* __SELFTEST_VFIO_KVM_PATH_H */
