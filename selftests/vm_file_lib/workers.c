// SPDX-License-Identifier: GPL-2.0-only
/*
 * Forked worker processes of a test: see workers.h.
 */
#define VM_FILE_LIB_UNIT workers

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "workers.h"

int workers_count(const char *env_name, int max)
{
	const char *env = getenv(env_name);
	long n = env && *env ? strtol(env, NULL, 0) :
			       sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	return n > max ? max : n;
}

pid_t worker_fork(struct workers *w)
{
	pid_t parent = getpid(), pid;

	if (w->nr >= WORKERS_MAX) {
		errno = ENOSPC;
		return -1;
	}
	/* Nothing buffered is printed twice. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(KSFT_FAIL);
		workers_forget(w);
		return 0;
	}
	w->pid[w->nr++] = pid;
	return pid;
}

bool worker_wait(struct workers *w, int i, bool nohang, bool *done, int *status)
{
	pid_t ret;

	*done = false;
	*status = 0;
	if (w->pid[i] <= 0) {
		*done = true;
		return true;
	}
	do
		ret = waitpid(w->pid[i], status, nohang ? WNOHANG : 0);
	while (ret < 0 && errno == EINTR);
	if (ret == 0)
		return false;
	*done = true;
	w->pid[i] = -1;
	return ret > 0 && WIFEXITED(*status) && !WEXITSTATUS(*status);
}

int workers_wait(struct workers *w)
{
	int i, status, bad = 0;
	bool done;

	for (i = 0; i < w->nr; i++) {
		pid_t pid = w->pid[i];

		if (pid <= 0 || worker_wait(w, i, false, &done, &status))
			continue;
		ksft_print_msg("worker %d (pid %d): %s %d\n", i, pid,
			       WIFSIGNALED(status) ? "killed by signal" :
			       "exit status",
			       WIFSIGNALED(status) ? WTERMSIG(status) :
			       WEXITSTATUS(status));
		bad++;
	}
	return bad;
}

void workers_reap(struct workers *w)
{
	int i;

	for (i = 0; i < w->nr; i++) {
		if (w->pid[i] <= 0)
			continue;
		kill(w->pid[i], SIGKILL);
		while (waitpid(w->pid[i], NULL, 0) < 0 && errno == EINTR)
			;
		w->pid[i] = -1;
	}
	w->nr = 0;
}
