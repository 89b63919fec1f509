// SPDX-License-Identifier: GPL-2.0-only
/*
 * arm64 feasibility probe (issue 18): on a vfio-pci device behind an SMMUv3,
 * do the steps a VMM does to get a vIOMMU and print every result:
 * cdev bind to iommufd, IOMMU_GET_HW_INFO (the SMMU's ID registers),
 * IOMMU_HWPT_ALLOC with IOMMU_HWPT_ALLOC_NEST_PARENT, attach, and
 * IOMMU_VIOMMU_ALLOC of type ARM_SMMUV3 without a VM, with the device's VM
 * (KVM_DEV_VFIO_FILE_ADD before the bind) and with the series'
 * IOMMU_VIOMMU_ALLOC_KVM_VM_FD naming that VM or another one.
 *
 * Usage: viommu_probe /dev/vfio/devices/vfioN
 * Output: "probe: <step>: ok ..." or "probe: <step>: <errno name> (<errno>)".
 * Exit 0 if a vIOMMU was allocated, 1 if not, 2 on a setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <linux/iommufd.h>
#include <linux/kvm.h>
#include <linux/vfio.h>

/* The size of 7.3's struct iommu_viommu_alloc (the series adds 8 bytes). */
#define VIOMMU_ALLOC_SIZE_7_3	40

static const char *cdev;
static int iommufd = -1, kvm = -1;
static int allocated;

static int report(const char *step, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int report(const char *step, int ret, const char *fmt, ...)
{
	int err = errno;

	printf("probe: %s: ", step);
	if (ret < 0) {
		printf("%s (%d)\n", strerrorname_np(err) ?: "?", err);
		errno = err;
		return -1;
	}
	printf("ok");
	if (fmt) {
		va_list ap;

		putchar(' ');
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
	}
	putchar('\n');
	return 0;
}

static void hw_info(__u32 devid)
{
	struct iommu_hw_info_arm_smmuv3 smmu = {};
	struct iommu_hw_info cmd = {
		.size = sizeof(cmd),
		.dev_id = devid,
		.data_len = sizeof(smmu),
		.data_uptr = (__u64)(unsigned long)&smmu,
	};
	int ret = ioctl(iommufd, IOMMU_GET_HW_INFO, &cmd);

	if (report("IOMMU_GET_HW_INFO", ret,
		   "type=%u idr0=%#x idr1=%#x idr3=%#x idr5=%#x iidr=%#x aidr=%#x caps=%#llx",
		   cmd.out_data_type, smmu.idr[0], smmu.idr[1], smmu.idr[3],
		   smmu.idr[5], smmu.iidr, smmu.aidr,
		   (unsigned long long)cmd.out_capabilities))
		return;
	printf("probe: SMMU IDR0.S1P=%u IDR0.S2P=%u IDR0.COHACC=%u IDR3.FWB=%u\n",
	       !!(smmu.idr[0] & 2), !!(smmu.idr[0] & 1),
	       !!(smmu.idr[0] & 16), !!(smmu.idr[3] & (1 << 8)));
}

static int viommu_alloc(const char *step, __u32 devid, __u32 hwpt, __u32 size,
			__u32 flags, int vm_fd)
{
	struct iommu_viommu_alloc cmd = {
		.size = size,
		.flags = flags,
		.type = IOMMU_VIOMMU_TYPE_ARM_SMMUV3,
		.dev_id = devid,
		.hwpt_id = hwpt,
		.kvm_vm_fd = vm_fd,
	};
	int ret = ioctl(iommufd, IOMMU_VIOMMU_ALLOC, &cmd);

	if (report(step, ret, "viommu_id=%u", cmd.out_viommu_id))
		return -1;
	allocated++;
	return cmd.out_viommu_id;
}

static void destroy(__u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	ioctl(iommufd, IOMMU_DESTROY, &cmd);
}

/* A VM with a KVM VFIO device; the cdev file is added to it if cdev_fd >= 0. */
static int vm_create(int cdev_fd, int *kvm_vfio)
{
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_VFIO };
	struct kvm_device_attr attr = {
		.group = KVM_DEV_VFIO_FILE,
		.attr = KVM_DEV_VFIO_FILE_ADD,
		.addr = (__u64)(unsigned long)&cdev_fd,
	};
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);

	if (report("KVM_CREATE_VM", vm, "vm_fd=%d", vm))
		return -1;
	*kvm_vfio = -1;
	if (cdev_fd < 0)
		return vm;
	if (report("KVM_CREATE_DEVICE(VFIO)", ioctl(vm, KVM_CREATE_DEVICE, &dev),
		   NULL))
		return vm;
	*kvm_vfio = dev.fd;
	report("KVM_DEV_VFIO_FILE_ADD(cdev)",
	       ioctl(dev.fd, KVM_SET_DEVICE_ATTR, &attr), NULL);
	return vm;
}

/*
 * One bind of the device. with_vm: the cdev is associated with a VM first
 * (VFIO hands it to the idev at bind in the series).
 */
static void run(int with_vm)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	struct iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct iommu_hwpt_alloc hwpt = { .size = sizeof(hwpt) };
	struct vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	int fd, vm = -1, other = -1, kvm_vfio = -1, dummy, id;

	printf("probe: --- %s ---\n", with_vm ?
	       "device associated with a VM before bind" : "device without a VM");
	fd = open(cdev, O_RDWR | O_CLOEXEC);
	if (report("open cdev", fd, "%s", cdev))
		return;
	if (with_vm && kvm >= 0) {
		vm = vm_create(fd, &kvm_vfio);
		other = vm_create(-1, &dummy);
	}
	if (report("VFIO_DEVICE_BIND_IOMMUFD",
		   ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind), "dev_id=%u",
		   bind.out_devid))
		goto out;
	hw_info(bind.out_devid);
	if (report("IOMMU_IOAS_ALLOC", ioctl(iommufd, IOMMU_IOAS_ALLOC, &ioas),
		   "ioas_id=%u", ioas.out_ioas_id))
		goto out;

	hwpt.dev_id = bind.out_devid;
	hwpt.pt_id = ioas.out_ioas_id;
	if (report("IOMMU_HWPT_ALLOC(flags=0)",
		   ioctl(iommufd, IOMMU_HWPT_ALLOC, &hwpt), "hwpt_id=%u",
		   hwpt.out_hwpt_id) == 0)
		destroy(hwpt.out_hwpt_id);
	hwpt.flags = IOMMU_HWPT_ALLOC_NEST_PARENT;
	if (report("IOMMU_HWPT_ALLOC(NEST_PARENT)",
		   ioctl(iommufd, IOMMU_HWPT_ALLOC, &hwpt), "hwpt_id=%u",
		   hwpt.out_hwpt_id))
		goto out;
	attach.pt_id = hwpt.out_hwpt_id;
	report("VFIO_DEVICE_ATTACH_IOMMUFD_PT(nest parent)",
	       ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach), NULL);

	id = viommu_alloc("IOMMU_VIOMMU_ALLOC(ARM_SMMUV3, 40 bytes, no flag)",
			  bind.out_devid, hwpt.out_hwpt_id,
			  VIOMMU_ALLOC_SIZE_7_3, 0, 0);
	if (id > 0) {
		struct iommu_vdevice_alloc vdev = {
			.size = sizeof(vdev), .viommu_id = id,
			.dev_id = bind.out_devid, .virt_id = 1,
		};

		if (report("IOMMU_VDEVICE_ALLOC", ioctl(iommufd,
			   IOMMU_VDEVICE_ALLOC, &vdev), "vdevice_id=%u",
			   vdev.out_vdevice_id) == 0)
			destroy(vdev.out_vdevice_id);
		destroy(id);
	}
	if (vm >= 0) {
		id = viommu_alloc("IOMMU_VIOMMU_ALLOC(ARM_SMMUV3, KVM_VM_FD=device's VM)",
				  bind.out_devid, hwpt.out_hwpt_id,
				  sizeof(struct iommu_viommu_alloc),
				  IOMMU_VIOMMU_ALLOC_KVM_VM_FD, vm);
		if (id > 0)
			destroy(id);
	}
	if (other >= 0) {
		id = viommu_alloc("IOMMU_VIOMMU_ALLOC(ARM_SMMUV3, KVM_VM_FD=another VM)",
				  bind.out_devid, hwpt.out_hwpt_id,
				  sizeof(struct iommu_viommu_alloc),
				  IOMMU_VIOMMU_ALLOC_KVM_VM_FD, other);
		if (id > 0)
			destroy(id);
	}
	id = viommu_alloc("IOMMU_VIOMMU_ALLOC(ARM_SMMUV3, KVM_VM_FD=-1)",
			  bind.out_devid, hwpt.out_hwpt_id,
			  sizeof(struct iommu_viommu_alloc),
			  IOMMU_VIOMMU_ALLOC_KVM_VM_FD, -1);
	if (id > 0)
		destroy(id);
	/* The nest-parent check comes after the driver's in 7.3: which answers? */
	id = viommu_alloc("IOMMU_VIOMMU_ALLOC(ARM_SMMUV3, hwpt=IOAS id)",
			  bind.out_devid, ioas.out_ioas_id,
			  VIOMMU_ALLOC_SIZE_7_3, 0, 0);
	if (id > 0)
		destroy(id);
out:
	close(fd);
	if (kvm_vfio >= 0)
		close(kvm_vfio);
	if (vm >= 0)
		close(vm);
	if (other >= 0)
		close(other);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: %s /dev/vfio/devices/vfioN\n", argv[0]);
		return 2;
	}
	cdev = argv[1];
	iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	if (report("open /dev/iommu", iommufd, NULL))
		return 2;
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (report("open /dev/kvm", kvm, NULL) == 0)
		report("KVM_GET_API_VERSION", ioctl(kvm, KVM_GET_API_VERSION, 0),
		       "%d", ioctl(kvm, KVM_GET_API_VERSION, 0));
	run(0);
	run(1);
	printf("probe: vIOMMUs allocated: %d\n", allocated);
	return allocated ? 0 : 1;
}
