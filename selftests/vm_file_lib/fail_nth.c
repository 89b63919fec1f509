// SPDX-License-Identifier: GPL-2.0-only
/*
 * vm_file_lib: fault injection for the fail-nth sweeps. Declared and
 * documented in fail_nth.h.
 */
#define VM_FILE_LIB_UNIT fail_nth
#include "vm_file_utils.h"
#include "fail_nth.h"

const char *const fail_attr[NR_FAIL_KINDS] = {
	[FAIL_KIND_SLAB] = "failslab",
	[FAIL_KIND_PAGE] = "fail_page_alloc",
	[FAIL_KIND_LOOKUP] = "fail_iommufd",
};

/* Why failslab_setup() failed: its return value. */
static char fail_why[300];

const char *fail_kind_str(enum fail_kind k)
{
	if (k < NR_FAIL_KINDS)
		return fail_attr[k];
	return k == FAIL_KIND_NONE ? "none" : "several attributes";
}

static long fail_times_one(enum fail_kind k)
{
	char path[128], buf[32] = {};
	ssize_t len;
	int fd;

	strfmt(path, sizeof(path), FAIL_DEBUGFS "/%s/times", fail_attr[k]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return len > 0 ? atol(buf) : -1;
}

void fail_times_read(struct fail_times *ft)
{
	int k;

	for (k = 0; k < NR_FAIL_KINDS; k++)
		ft->t[k] = fail_times_one(k);
}

enum fail_kind fail_kind_between(const struct fail_times *a,
				 const struct fail_times *b)
{
	enum fail_kind kind = FAIL_KIND_NONE;
	int k;

	for (k = 0; k < NR_FAIL_KINDS; k++) {
		if (a->t[k] == b->t[k])
			continue;
		if (kind != FAIL_KIND_NONE)
			return FAIL_KIND_MANY;
		kind = k;
	}
	return kind;
}

/* Write @val to the attribute's file @knob, whose path is left in @path. */
static int fail_attr_write(char *path, size_t size, enum fail_kind k,
			   const char *knob, const char *val)
{
	int fd, ret = 0;

	strfmt(path, size, FAIL_DEBUGFS "/%s/%s", fail_attr[k], knob);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* failslab's @path could not be written (-@ret): absent or broken. */
static const char *failslab_why(const char *path, int ret)
{
	strfmt(fail_why, sizeof(fail_why),
	       "%sno failslab: %s: %s (CONFIG_FAILSLAB, CONFIG_FAULT_INJECTION_DEBUG_FS)",
	       ret == -ENOENT ? "" : "FAIL: ", path, strerror(-ret));
	return fail_why;
}

/* Quiet every fault attribute of debugfs (failslab, the mock's fail_iommufd...) */
static void fail_quiet_all(void)
{
	struct dirent *de;
	char path[300];
	DIR *dir;
	int fd;

	dir = opendir(FAIL_DEBUGFS);
	while (dir && (de = readdir(dir))) {
		if (strncmp(de->d_name, "fail", 4) ||
		    !strfmt(path, sizeof(path), FAIL_DEBUGFS "/%s/verbose",
			    de->d_name))
			continue;
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			if (write(fd, "0", 1) < 0)
				;	/* best effort, like upstream */
			close(fd);
		}
	}
	if (dir)
		closedir(dir);
}

const char *failslab_setup(void)
{
	static const struct {
		enum fail_kind kind;
		const char *knob;
	} gfp[] = {
		{ FAIL_KIND_SLAB, "ignore-gfp-wait" },
		{ FAIL_KIND_PAGE, "ignore-gfp-wait" },
		{ FAIL_KIND_PAGE, "ignore-gfp-highmem" },
	};
	char path[300];
	unsigned int i;
	int k, ret;

	/* failslab's is required, the others are optional. */
	for (i = 0; i < ARRAY_SIZE(gfp); i++) {
		ret = fail_attr_write(path, sizeof(path), gfp[i].kind,
				      gfp[i].knob, "N");
		if (ret && gfp[i].kind == FAIL_KIND_SLAB)
			return failslab_why(path, ret);
	}
	/*
	 * Quiet, and "times" high (counted down by every injected failure:
	 * tells which fired); failslab there but not taking them is broken.
	 */
	for (k = 0; k < NR_FAIL_KINDS; k++) {
		ret = fail_attr_write(path, sizeof(path), k, "verbose", "0");
		if (!ret)
			ret = fail_attr_write(path, sizeof(path), k, "times",
					      FAIL_TIMES_START);
		if (!ret || k != FAIL_KIND_SLAB)
			continue;
		strfmt(fail_why, sizeof(fail_why), "FAIL: %s: %s", path,
		       strerror(-ret));
		return fail_why;
	}
	/* And any other fault attribute there (e.g. the mock's). */
	fail_quiet_all();
	if (access(FAIL_NTH_PATH, W_OK)) {
		strfmt(fail_why, sizeof(fail_why),
		       "no writable %s: %s (CONFIG_FAULT_INJECTION_DEBUG_FS)",
		       FAIL_NTH_PATH, strerror(errno));
		return fail_why;
	}
	return NULL;
}

int fail_nth_open(void)
{
	return open(FAIL_NTH_PATH, O_RDWR | O_CLOEXEC);
}

bool fail_nth_disarm(int nth_fd)
{
	char buf[16] = {};
	ssize_t len = pread(nth_fd, buf, sizeof(buf) - 1, 0);

	fail_nth_arm(nth_fd, 0);
	return len > 0 && atoi(buf) == 0;
}

void fail_nth_close(int *nth_fd)
{
	if (*nth_fd >= 0)
		fail_nth_arm(*nth_fd, 0);
	close_fd(nth_fd);
}
