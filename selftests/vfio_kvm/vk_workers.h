/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Forked worker processes of a vfio_kvm test. A worker dies with the test
 * process that forked it (PR_SET_PDEATHSIG), so a test that fails and
 * exits cannot leave workers behind to disturb later tests; the fixture's
 * teardown kills and reaps whatever is still running (vk_workers_reap()).
 * A worker starts with no workers of its own (vk_workers_forget()), so a
 * worker that fails (its ASSERT runs the teardown in the worker) never
 * kills its siblings.
 */
#ifndef __SELFTEST_VK_WORKERS_H
#define __SELFTEST_VK_WORKERS_H

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#define VK_WORKERS_MAX	16

struct vk_workers {
	int nr;
	pid_t pid[VK_WORKERS_MAX];
};

static inline void vk_workers_forget(struct vk_workers *ws)
{
	ws->nr = 0;
}

/*
 * fork() a worker: returns its pid in the parent (recorded in @ws), 0 in
 * the worker, -1 (errno) if it could not be made. The worker exits at once
 * if its parent is already gone (the death signal is set after the fork).
 */
static inline pid_t vk_worker_fork(struct vk_workers *ws)
{
	pid_t parent = getpid(), pid;

	if (ws->nr >= VK_WORKERS_MAX) {
		errno = ENOSPC;
		return -1;
	}
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(1);
		vk_workers_forget(ws);
		return 0;
	}
	ws->pid[ws->nr++] = pid;
	return pid;
}

/*
 * Wait for worker @i; true if it exited with status 0. @nohang: do not
 * block (false, with *@done false, if it is still running).
 */
static inline bool vk_worker_wait(struct vk_workers *ws, int i, bool nohang,
				  bool *done, int *status)
{
	pid_t ret;

	*done = false;
	*status = 0;
	if (ws->pid[i] <= 0) {
		*done = true;
		return true;
	}
	do
		ret = waitpid(ws->pid[i], status, nohang ? WNOHANG : 0);
	while (ret < 0 && errno == EINTR);
	if (ret == 0)
		return false;
	*done = true;
	ws->pid[i] = -1;
	return ret > 0 && WIFEXITED(*status) && !WEXITSTATUS(*status);
}

/* Teardown: kill and reap every worker still recorded. */
static inline void vk_workers_reap(struct vk_workers *ws)
{
	int i;

	for (i = 0; i < ws->nr; i++) {
		if (ws->pid[i] <= 0)
			continue;
		kill(ws->pid[i], SIGKILL);
		while (waitpid(ws->pid[i], NULL, 0) < 0 && errno == EINTR)
			;
		ws->pid[i] = -1;
	}
	ws->nr = 0;
}

#endif /* __SELFTEST_VK_WORKERS_H */
