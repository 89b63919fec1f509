// SPDX-License-Identifier: GPL-2.0-only
/*
 * vm_file_lib: VFIO: the devices the environment names, VFIO, iommufd and mkvm ioctls.
 * Declared and documented in vm_file_utils.h.
 */
#define VM_FILE_LIB_UNIT vfio
#include "vm_file_utils.h"

/* ---------------------------------------------------- VFIO discovery */

void vfio_dev_paths(struct vfio_dev_info *d)
{
	char path[PATH_MAX + 32], link[PATH_MAX];
	struct dirent *de;
	ssize_t len;
	DIR *dir;

	d->group[0] = d->cdev[0] = 0;
	strfmt(path, sizeof(path), "%s/iommu_group", d->sysfs);
	len = readlink(path, link, sizeof(link) - 1);
	if (len > 0) {
		link[len] = 0;
		if (!strfmt(d->group, sizeof(d->group), "/dev/vfio/%s",
			    strrchr(link, '/') ? strrchr(link, '/') + 1 : link))
			d->group[0] = 0;
	}
	strfmt(path, sizeof(path), "%s/vfio-dev", d->sysfs);
	dir = opendir(path);
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (!strncmp(de->d_name, "vfio", 4)) {
			if (!strfmt(d->cdev, sizeof(d->cdev),
				    "/dev/vfio/devices/%s", de->d_name))
				d->cdev[0] = 0;
			break;
		}
	}
	closedir(dir);
}

bool mdev_type_is(const char *sysfs, const char *prefix)
{
	char path[PATH_MAX + 16], link[PATH_MAX];
	const char *type;
	ssize_t len;

	strfmt(path, sizeof(path), "%s/mdev_type", sysfs);
	len = readlink(path, link, sizeof(link) - 1);
	if (len <= 0)
		return false;
	link[len] = 0;
	type = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	return !strncmp(type, prefix, strlen(prefix));
}

bool nth_word(const char *list, int nth, char *buf, size_t len)
{
	const char *p = list;
	size_t n;

	for (;;) {
		p += strspn(p, " ,");
		n = strcspn(p, " ,");
		if (!n)
			return false;
		if (!nth--)
			return strfmt(buf, len, "%.*s", (int)n, p);
		p += n;
	}
}

int vfio_find_mdev(struct vfio_dev_info *d, const char *drv,
		   const char *config, const char *env_name,
		   int nth)
{
	const char *env = getenv(env_name);
	struct dirent **names;
	char prefix[32];
	int n, i, found = -1;

	memset(d, 0, sizeof(*d));
	strfmt(prefix, sizeof(prefix), "%s-", drv);
	if (env && *env) {
		if (!nth_word(env, nth, d->name, sizeof(d->name))) {
			strfmt(d->why, sizeof(d->why),
			       "%s='%s' names fewer than the %d %s mdevs this test needs",
			       env_name, env, nth + 1, drv);
			return -ENOENT;
		}
		strfmt(d->sysfs, sizeof(d->sysfs), "%s/%s", MDEV_BUS_DIR, d->name);
		if (access(d->sysfs, F_OK)) {
			strfmt(d->why, sizeof(d->why), "%s: no %s",
			       env_name, d->sysfs);
			return -ENOENT;
		}
		vfio_dev_paths(d);
		return 0;
	}
	n = scandir(MDEV_BUS_DIR, &names, NULL, alphasort);
	if (n < 0) {
		strfmt(d->why, sizeof(d->why), "no %s (CONFIG_VFIO_MDEV off?)",
		       MDEV_BUS_DIR);
		return -ENOENT;
	}
	for (i = 0; i < n; i++) {
		char sysfs[PATH_MAX];

		strfmt(sysfs, sizeof(sysfs), "%s/%s", MDEV_BUS_DIR,
		       names[i]->d_name);
		if (found < nth && names[i]->d_name[0] != '.' &&
		    mdev_type_is(sysfs, prefix) && ++found == nth) {
			strfmt(d->name, sizeof(d->name), "%s", names[i]->d_name);
			strfmt(d->sysfs, sizeof(d->sysfs), "%s", sysfs);
		}
		free(names[i]);
	}
	free(names);
	if (found < nth) {
		if (found < 0)
			strfmt(d->why, sizeof(d->why),
			       "no %s mdev under %s (%s; create one: echo $(uuidgen) > /sys/class/mdev_bus/%s/mdev_supported_types/%s1/create; or set %s='<uuid> <uuid>')",
			       drv, MDEV_BUS_DIR, config, drv, prefix, env_name);
		else
			strfmt(d->why, sizeof(d->why),
			       "%d %s mdev(s) under %s, this test needs %d",
			       found + 1, drv, MDEV_BUS_DIR, nth + 1);
		return -ENOENT;
	}
	vfio_dev_paths(d);
	return 0;
}

int vfio_find_pci_nth(struct vfio_dev_info *d, int nth)
{
	const char *env = getenv(ENV_PCI);
	char link[PATH_MAX], path[PATH_MAX + 16];
	ssize_t len;

	memset(d, 0, sizeof(*d));
	if (!env || !*env) {
		strfmt(d->why, sizeof(d->why),
		       "%s is not set: name the device to use (%s=<domain:bus:dev.fn> of a device bound to vfio-pci, e.g. QEMU's edu)",
		       ENV_PCI, ENV_PCI);
		return -ENOENT;
	}
	if (!nth_word(env, nth, d->name, sizeof(d->name))) {
		strfmt(d->why, sizeof(d->why), "%s='%s' names fewer than %d devices",
		       ENV_PCI, env, nth + 1);
		return nth ? -ENOENT : -ENODEV;
	}
	strfmt(d->sysfs, sizeof(d->sysfs), "%s/%s", PCI_DEV_DIR, d->name);
	if (access(d->sysfs, F_OK)) {
		strfmt(d->why, sizeof(d->why), "%s: %s: no %s", ENV_PCI,
		       d->name, d->sysfs);
		return -ENODEV;
	}
	strfmt(path, sizeof(path), "%s/driver", d->sysfs);
	len = readlink(path, link, sizeof(link) - 1);
	link[len > 0 ? len : 0] = 0;
	if (len <= 0 || strcmp(strrchr(link, '/') ? strrchr(link, '/') + 1 : link,
			       "vfio-pci")) {
		strfmt(d->why, sizeof(d->why), "%s: %s is not bound to vfio-pci (driver: %s)",
		       ENV_PCI, d->name, len > 0 ? link : "none");
		return -ENODEV;
	}
	vfio_dev_paths(d);
	return 0;
}

/* ------------------------------------------------ required features */

bool feature_required(const char *feature)
{
	const char *env = getenv(ENV_REQUIRE);
	char word[64];
	int i;

	for (i = 0; env && nth_word(env, i, word, sizeof(word)); i++)
		if (!strcmp(word, feature))
			return true;
	return false;
}

/* ------------------------------------------------------- VFIO ioctls */

int _test_vfio_group_status(int group_fd, __u32 *flags)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	int ret;

	ret = ioctl(group_fd, VFIO_GROUP_GET_STATUS, &st);
	if (!ret && flags)
		*flags = st.flags;
	return ret;
}

int _test_vfio_device_bind_iommufd(int device_fd, int iommufd, __u32 *out_devid)
{
	struct vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommufd,
	};
	int ret;

	ret = ioctl(device_fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (!ret && out_devid)
		*out_devid = bind.out_devid;
	return ret;
}

int _test_vfio_device_attach_pt(int device_fd, __u32 pt_id)
{
	struct vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = pt_id,
	};

	return ioctl(device_fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
}

/* ---------------------------------------------------- iommufd ioctls */

int _test_ioctl_ioas_alloc(int fd, __u32 *id)
{
	struct iommu_ioas_alloc cmd = { .size = sizeof(cmd) };
	int ret;

	ret = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	if (!ret)
		*id = cmd.out_ioas_id;
	return ret;
}

int _test_ioctl_destroy(int fd, __u32 id)
{
	struct iommu_destroy cmd = { .size = sizeof(cmd), .id = id };

	return ioctl(fd, IOMMU_DESTROY, &cmd);
}

/* ------------------------------------------------ mkvm (test-only mdev) */

int _test_mkvm_vm(int device_fd, char *buf, size_t len)
{
	ssize_t n;

	n = pread(device_fd, buf, len - 1, 0);
	if (n < 0)
		return -1;
	buf[n] = 0;
	if (n && buf[n - 1] == '\n')
		buf[--n] = 0;
	return n;
}

int mkvm_set_fail_open(bool on)
{
	int fd, ret = 0;

	fd = open(MKVM_FAIL_OPEN, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, on ? "1" : "0", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}
