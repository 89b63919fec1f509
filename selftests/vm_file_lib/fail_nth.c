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

const char *fail_kind_str(enum fail_kind k, enum fail_nth_style style)
{
	if (k == FAIL_KIND_LOOKUP && style == FAIL_NTH_TASK)
		return "fail_iommufd (lookup)";
	if (k < NR_FAIL_KINDS)
		return fail_attr[k];
	if (k == FAIL_KIND_NONE)
		return "none";
	return style == FAIL_NTH_TASK ? "several" : "several attributes";
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

/*
 * Write @val to the attribute's file @knob, whose path is left in @path:
 * 0 or -errno, *@opened telling whether the open worked (the write failed).
 */
static int fail_attr_write(char *path, size_t size, enum fail_kind k,
			   const char *knob, const char *val, bool *opened)
{
	int fd, ret = 0;

	strfmt(path, size, FAIL_DEBUGFS "/%s/%s", fail_attr[k], knob);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	*opened = fd >= 0;
	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* failslab's @path could not be written (-@ret): absent or broken. */
static const char *failslab_why(const char *path, int ret, bool opened,
				enum fail_nth_style style)
{
	if (opened && style == FAIL_NTH_TASK)
		strfmt(fail_why, sizeof(fail_why), "FAIL: writing %s: %s", path,
		       strerror(-ret));
	else
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

static void fail_nth_path(char *path, size_t size, enum fail_nth_style style)
{
	if (style == FAIL_NTH_TASK)
		strfmt(path, size, "/proc/self/task/%d/fail-nth", gettid());
	else
		strfmt(path, size, "%s", FAIL_NTH_PATH);
}

const char *failslab_setup(enum fail_nth_style style)
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
	bool opened;
	int k, ret;

	/* failslab's is required, the others are optional. */
	for (i = 0; i < ARRAY_SIZE(gfp); i++) {
		ret = fail_attr_write(path, sizeof(path), gfp[i].kind,
				      gfp[i].knob, "N", &opened);
		if (ret && gfp[i].kind == FAIL_KIND_SLAB)
			return failslab_why(path, ret, opened, style);
	}
	/*
	 * "times" high (counted down by every injected failure: tells which
	 * fired); FAIL_NTH_THREAD_SELF quiets each attribute first.
	 */
	for (k = 0; k < NR_FAIL_KINDS; k++) {
		ret = 0;
		if (style == FAIL_NTH_THREAD_SELF)
			ret = fail_attr_write(path, sizeof(path), k, "verbose",
					      "0", &opened);
		if (!ret)
			ret = fail_attr_write(path, sizeof(path), k, "times",
					      FAIL_TIMES_START, &opened);
		else
			strfmt(path, sizeof(path), FAIL_DEBUGFS "/%s/times",
			       fail_attr[k]);
		if (!ret || k != FAIL_KIND_SLAB)
			continue;
		if (style == FAIL_NTH_TASK)
			return failslab_why(path, ret, opened, style);
		strfmt(fail_why, sizeof(fail_why), "FAIL: %s: %s", path,
		       strerror(-ret));
		return fail_why;
	}
	if (style == FAIL_NTH_TASK)
		fail_quiet_all();
	fail_nth_path(path, sizeof(path), style);
	if (access(path, W_OK)) {
		strfmt(fail_why, sizeof(fail_why),
		       "no %s%s: %s (CONFIG_FAULT_INJECTION_DEBUG_FS)",
		       style == FAIL_NTH_TASK ? "" : "writable ", path,
		       strerror(errno));
		return fail_why;
	}
	return NULL;
}

int fail_nth_open(enum fail_nth_style style)
{
	char path[64];

	fail_nth_path(path, sizeof(path), style);
	return open(path, O_RDWR | O_CLOEXEC);
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
