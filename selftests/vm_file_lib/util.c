// SPDX-License-Identifier: GPL-2.0-only
/*
 * vm_file_lib: Open fds, permutations and the other small helpers of vm_file_utils.h.
 * Declared and documented in vm_file_utils.h.
 */
#define VM_FILE_LIB_UNIT util
#include "vm_file_utils.h"

int count_open_fds(void)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* ------------------------------------------------ permutations */

bool next_permutation(int *a, int n)
{
	int i, j, t;

	for (i = n - 2; i >= 0 && a[i] >= a[i + 1]; i--)
		;
	if (i >= 0) {
		for (j = n - 1; a[j] <= a[i]; j--)
			;
		t = a[i], a[i] = a[j], a[j] = t;
	}
	for (j = i + 1, t = n - 1; j < t; j++, t--) {
		int x = a[j];

		a[j] = a[t];
		a[t] = x;
	}
	return i >= 0;
}

int mask_order(unsigned int mask, int nr, int *a)
{
	int i, n = 0;

	for (i = 0; i < nr; i++)
		if (mask & (1U << i))
			a[n++] = i;
	return n;
}

const char *order_str(const int *order, int n,
		      const char *const *names, const char *sep,
		      char *buf, size_t len)
{
	size_t off = 0;
	int i;

	buf[0] = 0;
	for (i = 0; i < n && off < len; i++)
		off += snprintf(buf + off, len - off, "%s%s", i ? sep : "",
				names[order[i]]);
	return buf;
}

/* ------------------------------------------------ misc */

int closed_fd_number(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd;
}

void raise_nofile(rlim_t want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur >= want)
		return;
	rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}
