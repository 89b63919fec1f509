// SPDX-License-Identifier: GPL-2.0-only
/*
 * The iommufd_viommu selftests' helpers, linked into each of the suite's
 * programs: declared and documented in iommufd_viommu_utils.h.
 */
#define VM_FILE_LIB_UNIT iommufd_viommu_utils
#include "iommufd_viommu_utils.h"

const char *vm_state_str(__u32 state)
{
	switch (state) {
	case MOCK_VM_NONE:
		return "NONE";
	case MOCK_VM_SAME:
		return "SAME";
	case MOCK_VM_OTHER:
		return "OTHER";
	}
	return "?";
}

/* ------------------------------------------------------ mock detection */

int iommufd_test_available(int fd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MD_CHECK_REFS,
	};

	if (!ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return 1;
	return errno == ENOTTY ? 0 : -1;
}

int viommu_kvm_flag_supported(int fd)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.size = sizeof(cmd),
		.flags = IOMMU_VIOMMU_ALLOC_KVM_VM_FD,
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
	};

	if (!ioctl(fd, IOMMU_VIOMMU_ALLOC, &cmd))
		return -1;
	if (errno == ENOENT)
		return 1;
	return errno == EOPNOTSUPP ? 0 : -1;
}

int mock_vm_ops_supported(int fd)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_VM_CHECK,
	};

	mock_cmd_vm_check(&cmd)->vm_fd = -1;
	if (!ioctl(fd, IOMMU_TEST_CMD, &cmd))
		return -1;
	if (errno == ENOENT)
		return 1;
	return errno == EOPNOTSUPP ? 0 : -1;
}

const char *viommu_kvm_prereq(int *kvm_fd, int *iommufd, struct uevent_log *log)
{
	static char why[256];
	int kfd = -1, ifd = -1, ret;

	why[0] = 0;
	kfd = kvm_open();
	if (kfd < 0) {
		strfmt(why, sizeof(why), "cannot open %s: %s (no KVM)",
		       KVM_DEV_PATH, strerror(errno));
		goto out;
	}
	ifd = iommufd_open();
	if (ifd < 0) {
		strfmt(why, sizeof(why), "cannot open %s: %s (CONFIG_IOMMUFD)",
		       IOMMUFD_PATH, strerror(errno));
		goto out;
	}
	ret = iommufd_test_available(ifd);
	if (ret <= 0) {
		strfmt(why, sizeof(why), ret ?
		       "FAIL: IOMMU_TEST_CMD probe: %s" :
		       "CONFIG_IOMMUFD_TEST is off: no iommufd mock (%s)",
		       strerror(errno));
		goto out;
	}
	ret = viommu_kvm_flag_supported(ifd);
	if (ret < 0) {
		strfmt(why, sizeof(why),
		       "FAIL: IOMMU_VIOMMU_ALLOC(KVM flag, dev_id 0): %s, expected ENOENT or EOPNOTSUPP",
		       strerror(errno));
		goto out;
	}
	if (ret == 0) {
		strfmt(why, sizeof(why), "%s", SKIP_REASON_BASE);
		goto out;
	}
	/* Absent (an answer no kernel with the feature gives) or broken. */
	ret = mock_vm_ops_supported(ifd);
	if (ret < 0) {
		strfmt(why, sizeof(why),
		       "FAIL: IOMMU_TEST_OP_VM_CHECK(0): %s, expected ENOENT or EOPNOTSUPP",
		       strerror(errno));
		goto out;
	}
	if (ret == 0) {
		strfmt(why, sizeof(why), "%s", SKIP_REASON_BASE);
		goto out;
	}
	if (!kvm_debugfs_available()) {
		strfmt(why, sizeof(why), "no %s (CONFIG_DEBUG_FS, debugfs mounted?)",
		       KVM_DEBUGFS_DIR);
		goto out;
	}
	if (log) {
		ret = uevent_log_open(log);
		if (ret) {
			log->sock = -1;
			strfmt(why, sizeof(why), "no uevent socket: %s",
			       strerror(-ret));
			goto out;
		}
	}
out:
	if (why[0]) {
		close_fd(&kfd);
		close_fd(&ifd);
	}
	if (kvm_fd)
		*kvm_fd = kfd;
	else
		close_fd(&kfd);
	if (iommufd)
		*iommufd = ifd;
	else
		close_fd(&ifd);
	return why[0] ? why : NULL;
}

/* ---------------------------------------------------------- IOAS, destroy */

/* --------------------------------------------------- mock device (stdev) */

int _test_cmd_mock_domain(int fd, __u32 ioas_id, __u32 *stdev_id,
			  __u32 *hwpt_id, __u32 *idev_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN,
		.id = ioas_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (ret)
		return ret;
	if (stdev_id)
		*stdev_id = cmd.mock_domain.out_stdev_id;
	if (hwpt_id)
		*hwpt_id = cmd.mock_domain.out_hwpt_id;
	if (idev_id)
		*idev_id = cmd.mock_domain.out_idev_id;
	return 0;
}

int _test_cmd_mock_domain_replace(int fd, __u32 stdev_id, __u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
		.id = stdev_id,
		.mock_domain_replace = { .pt_id = pt_id },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

int _test_cmd_mock_domain_flags(int fd, __u32 ioas_id,
				__u32 dev_flags, int kvm_vm_fd,
				__u32 *stdev_id, __u32 *idev_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
		.id = ioas_id,
		.mock_domain_flags = { .dev_flags = dev_flags },
	};
	int ret;

	*mock_cmd_kvm_vm_fd(&cmd) = kvm_vm_fd;
	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (ret)
		return ret;
	if (stdev_id)
		*stdev_id = cmd.mock_domain_flags.out_stdev_id;
	if (idev_id)
		*idev_id = cmd.mock_domain_flags.out_idev_id;
	return 0;
}

int _test_cmd_mock_dev_vm(int fd, __u32 ioas_id, __u32 dev_flags,
			  int vm_fd, __u32 *stdev_id,
			  __u32 *idev_id)
{
	if (vm_fd != MOCK_NO_VM)
		dev_flags |= MOCK_FLAGS_DEVICE_KVM_VM;
	return _test_cmd_mock_domain_flags(fd, ioas_id, dev_flags, vm_fd,
					   stdev_id, idev_id);
}

int _test_cmd_pasid_attach(int fd, __u32 stdev_id, __u32 pasid, __u32 pt_id)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_PASID_ATTACH,
		.id = stdev_id,
		.pasid_attach = { .pasid = pasid, .pt_id = pt_id },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

int _test_cmd_pasid_detach(int fd, __u32 stdev_id, __u32 pasid)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_PASID_DETACH,
		.id = stdev_id,
		.pasid_detach = { .pasid = pasid },
	};

	return ioctl(fd, IOMMU_TEST_CMD, &cmd);
}

/* ------------------------------------------------------------------ HWPT */

int __test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
			  __u32 flags, __u32 data_type,
			  void *data, __u32 data_len,
			  __u32 *hwpt_id)
{
	struct iommu_hwpt_alloc cmd = {
		.size = sizeof(cmd),
		.flags = flags,
		.dev_id = dev_id,
		.pt_id = pt_id,
		.data_type = data_type,
		.data_len = data_len,
		.data_uptr = (uintptr_t)data,
	};
	int ret;

	ret = ioctl(fd, IOMMU_HWPT_ALLOC, &cmd);
	if (ret)
		return ret;
	if (hwpt_id)
		*hwpt_id = cmd.out_hwpt_id;
	return 0;
}

int _test_cmd_hwpt_alloc(int fd, __u32 dev_id, __u32 pt_id,
			 __u32 flags, __u32 *hwpt_id)
{
	return __test_cmd_hwpt_alloc(fd, dev_id, pt_id, flags,
				     IOMMU_HWPT_DATA_NONE, NULL, 0, hwpt_id);
}

int _test_cmd_hwpt_alloc_nested(int fd, __u32 dev_id,
				__u32 viommu_id, __u32 flags,
				__u32 *hwpt_id)
{
	struct iommu_hwpt_selftest data = { .iotlb = IOMMU_TEST_IOTLB_DEFAULT };

	return __test_cmd_hwpt_alloc(fd, dev_id, viommu_id, flags,
				     IOMMU_HWPT_DATA_SELFTEST, &data,
				     sizeof(data), hwpt_id);
}

/* ---------------------------------------------------------------- vIOMMU */

int _test_cmd_viommu_alloc_sized(int fd,
				 struct iommu_viommu_alloc_kvm *cmd,
				 size_t len, __u8 tail,
				 __u32 *viommu_id)
{
	__u8 buf[256];
	int ret;

	if (len > sizeof(buf)) {
		errno = EINVAL;
		return -2;
	}
	memset(buf, tail, sizeof(buf));
	cmd->size = len;
	memcpy(buf, cmd, len < sizeof(*cmd) ? len : sizeof(*cmd));
	ret = ioctl(fd, IOMMU_VIOMMU_ALLOC, buf);
	if (!ret && viommu_id)
		*viommu_id = ((struct iommu_viommu_alloc_kvm *)buf)->out_viommu_id;
	return ret;
}

int _test_cmd_viommu_alloc(int fd, __u32 dev_id, __u32 hwpt_id,
			   __u32 flags, __u32 type,
			   __u32 *viommu_id)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.flags = flags,
		.type = type,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
	};

	return _test_cmd_viommu_alloc_sized(fd, &cmd,
					    sizeof(struct iommu_viommu_alloc),
					    0, viommu_id);
}

int _test_cmd_viommu_alloc_vm(int fd, __u32 dev_id,
			      __u32 hwpt_id, __u32 flags,
			      int kvm_vm_fd, __u32 *viommu_id)
{
	struct iommu_viommu_alloc_kvm cmd = {
		.flags = flags,
		.type = IOMMU_VIOMMU_TYPE_SELFTEST,
		.dev_id = dev_id,
		.hwpt_id = hwpt_id,
		.kvm_vm_fd = kvm_vm_fd,
	};

	return _test_cmd_viommu_alloc_sized(fd, &cmd, sizeof(cmd), 0,
					    viommu_id);
}

/* --------------------------------------------------------------- vDEVICE */

int _test_cmd_vdevice_alloc(int fd, __u32 viommu_id,
			    __u32 idev_id, __u64 virt_id,
			    __u32 *vdev_id)
{
	struct iommu_vdevice_alloc cmd = {
		.size = sizeof(cmd),
		.dev_id = idev_id,
		.viommu_id = viommu_id,
		.virt_id = virt_id,
	};
	int ret;

	ret = ioctl(fd, IOMMU_VDEVICE_ALLOC, &cmd);
	if (ret)
		return ret;
	if (vdev_id)
		*vdev_id = cmd.out_vdevice_id;
	return 0;
}

/* ------------------------------------------------------------ VM check */

int _test_cmd_vm_check(int fd, __u32 id, int vm_fd, __u32 *out_vm)
{
	struct iommu_test_cmd cmd = {
		.size = sizeof(cmd),
		.op = IOMMU_TEST_OP_VM_CHECK,
		.id = id,
	};
	int ret;

	mock_cmd_vm_check(&cmd)->vm_fd = vm_fd;
	mock_cmd_vm_check(&cmd)->out_vm = 0xdead;
	ret = ioctl(fd, IOMMU_TEST_CMD, &cmd);
	if (!ret && out_vm)
		*out_vm = mock_cmd_vm_check(&cmd)->out_vm;
	return ret;
}

/* ------------------------------------------------------- VM lifetime */

/* ---------------------------------------------- VM fd over SCM_RIGHTS */

int send_fd(int sock, int fd, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { (void *)data, len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == (ssize_t)len ? 0 : -1;
}

int recv_fd(int sock, void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { data, len };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) != (ssize_t)len)
		return -1;
	cm = CMSG_FIRSTHDR(&msg);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int))) {
		errno = EPROTO;
		return -1;
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

/* ------------------------------------------------------ forked workers */

/* ------------------------------------------------------- random seeds */

unsigned int test_seed(const char *env_name, const char *test)
{
	const char *env = getenv(env_name);
	unsigned int seed = env && *env ? strtoul(env, NULL, 0) :
					  (unsigned int)now_ms() ^ getpid();

	ksft_print_msg("%s: seed %u (set %s=%u to repeat)\n", test, seed,
		       env_name, seed);
	return seed;
}
