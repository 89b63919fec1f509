// SPDX-License-Identifier: GPL-2.0-only
/*
 * The vfio_kvm selftests' paths, handles and model: declared and documented
 * in vfio_kvm_path.h, linked into the programs that include it.
 */
#define VM_FILE_LIB_UNIT vfio_kvm_path
#include "vfio_kvm_path.h"

static const char *const vk_dev_name[] = {
	[VK_MTTY] = "mtty",
	[VK_MKVM] = "mkvm",
	[VK_PCI] = "vfio-pci",
};

/* See vfio_kvm_path.h; vk_kvm_probe_why: why it is not 1. */
int vk_kvm_probe = -1;
static char vk_kvm_probe_why[128];

static void __attribute__((constructor)) vk_kvm_probe_once(void)
{
	int kvm_fd = kvm_open();

	if (kvm_fd < 0) {
		strfmt(vk_kvm_probe_why, sizeof(vk_kvm_probe_why),
		       "cannot open %s: %s (CONFIG_KVM, virtualization)",
		       KVM_DEV_PATH, strerror(errno));
		vk_kvm_probe = 0;
		return;
	}
	vk_kvm_probe = kvm_has_vfio_device(kvm_fd);
	if (vk_kvm_probe < 0)
		strfmt(vk_kvm_probe_why, sizeof(vk_kvm_probe_why),
		       "probing KVM_DEV_TYPE_VFIO: %s", strerror(errno));
	else if (!vk_kvm_probe)
		strfmt(vk_kvm_probe_why, sizeof(vk_kvm_probe_why),
		       "no KVM VFIO device (CONFIG_KVM_VFIO off)");
	close(kvm_fd);
}

void vk_handles_close(struct vk_handles *h)
{
	int i;

	for (i = 0; i < VK_NR_HANDLES; i++)
		close_fd(&h->fd[i]);
}

int vk_kvm_init(struct vk_path *p, char *why, size_t whylen)
{
	p->kvm_fd = -1;
	if (vk_kvm_probe <= 0) {
		strfmt(why, whylen, "%s", vk_kvm_probe_why);
		return vk_kvm_probe;
	}
	if (!kvm_debugfs_available()) {
		strfmt(why, whylen, "no %s: debugfs must be mounted at /sys/kernel/debug",
		       KVM_DEBUGFS_DIR);
		return 0;
	}
	p->kvm_fd = kvm_open();
	if (p->kvm_fd < 0) {
		strfmt(why, whylen, "cannot open %s: %s", KVM_DEV_PATH,
		       strerror(errno));
		return -1;
	}
	return 1;
}

bool vk_path_init(struct vk_path *p, enum vk_dev_kind kind,
		  bool cdev, bool compat, int nth, char *why,
		  size_t whylen)
{
	const char *node, *container;
	int ret;

	memset(p, 0, sizeof(*p));
	p->kind = kind;
	p->cdev = cdev;
	p->compat = compat;
	p->kvm_fd = -1;

	switch (kind) {
	case VK_MTTY:
		ret = vfio_find_mtty(&p->dev, nth);
		break;
	case VK_MKVM:
		ret = vfio_find_mkvm(&p->dev, nth);
		break;
	default:
		ret = vfio_find_pci_nth(&p->dev, nth);
		break;
	}
	if (ret) {
		p->broken = ret == -ENODEV;
		strfmt(why, whylen, "%s", p->dev.why);
		return false;
	}
	strfmt(p->what, sizeof(p->what), "%s, %s %s",
	       cdev ? "cdev path" : compat ?
	       "group path (iommufd compat container)" : "group path",
	       vk_dev_name[kind], p->dev.name);

	node = cdev ? p->dev.cdev : p->dev.group;
	if (!node[0] || access(node, F_OK)) {
		strfmt(why, whylen, "%s: no %s node (%s)", p->what,
		       cdev ? "vfio-dev/vfioX" : "/dev/vfio/<group>",
		       cdev ? "CONFIG_VFIO_DEVICE_CDEV off?" :
			      "CONFIG_VFIO_GROUP off?");
		return false;
	}
	container = cdev || compat ? IOMMUFD_PATH : VFIO_CONTAINER_PATH;
	if (access(container, F_OK)) {
		strfmt(why, whylen, "no %s (%s)", container,
		       cdev || compat ? "CONFIG_IOMMUFD" :
					"CONFIG_VFIO_CONTAINER or CONFIG_IOMMUFD_VFIO_CONTAINER");
		return false;
	}
	return vk_kvm_init(p, why, whylen) > 0;
}

int _vk_open_device(const struct vk_path *p, struct vk_handles *h)
{
	__u32 ioas;
	int fd;

	if (!p->cdev) {
		fd = _test_vfio_group_get_device_fd(h->fd[VK_FILE], p->dev.name);
		if (fd < 0)
			return -1;
		h->fd[VK_DEVICE] = fd;
		return 0;
	}
	if (_test_vfio_device_bind_iommufd(h->fd[VK_FILE], h->fd[VK_IOMMU],
					   &h->devid))
		return -1;
	if (p->kind != VK_PCI)
		return 0;
	if (_test_ioctl_ioas_alloc(h->fd[VK_IOMMU], &ioas))
		return -1;
	return _test_vfio_device_attach_pt(h->fd[VK_FILE], ioas);
}

/* ------------------------------------------------------------- the model */

void vk_model_settle(struct vk_model *m)
{
	if (!m->assoc)
		m->cached_vm = false;
	if (m->cdev)
		m->dev_open = m->dev_open && vk_model_file_alive(m);
	else
		m->dev_open = m->dev_open && m->open[VK_DEVICE];
	if (!m->dev_open)
		m->dev_vm = m->idev_vm = false;	/* unbind: the idev goes too */
	m->vm_file = m->vm_file &&
		     (m->open[VK_VM] || m->cached_vm || m->dev_vm ||
		      m->idev_vm);
}

void vk_model_init(struct vk_model *m, const struct vk_path *p)
{
	memset(m, 0, sizeof(*m));
	m->cdev = p->cdev;
	m->idev = p->kind == VK_PCI && (p->cdev || p->compat);
	m->open[VK_VM] = m->open[VK_KVM_VFIO] = true;
	m->vm_file = true;
}

void vk_model_file_add(struct vk_model *m)
{
	m->assoc = true;
	/*
	 * Only a VM whose file is still alive is cached: KVM's weak pointer
	 * is cleared when the VM file is released.
	 */
	m->cached_vm = m->vm_file;
}

void vk_model_open_device(struct vk_model *m)
{
	if (!m->cdev)
		m->open[VK_DEVICE] = true;
	m->dev_open = true;
	m->dev_vm = m->cached_vm;
	m->idev_vm = m->idev && m->cached_vm;
}

void vk_model_file_del(struct vk_model *m)
{
	m->assoc = false;
	vk_model_settle(m);
}

void vk_model_close(struct vk_model *m, enum vk_handle hd)
{
	m->open[hd] = false;
	if (hd == VK_KVM_VFIO)
		m->assoc = false;	/* its release drops every association */
	vk_model_settle(m);
}
