/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Forked worker processes of a test (both suites), to run its work in
 * parallel, each with objects (VMs, iommufds, devices) of its own.
 *
 * A worker dies with the test process that forked it (PR_SET_PDEATHSIG), so
 * a test that fails and exits cannot leave workers behind to disturb later
 * tests; the fixture's teardown kills and reaps whatever is still running
 * (workers_reap()). A worker starts with no workers of its own
 * (workers_forget()), so a worker that fails (an ASSERT that runs the
 * teardown in the worker) never kills its siblings. A worker that must not
 * run the fixture's teardown at all asserts on worker_metadata(): a failed
 * ASSERT then aborts the worker alone (its TH_LOG lines already printed) and
 * the test sees a worker that did not exit 0.
 *
 * The test process reaps them: worker_wait() one by one (e.g. polling while
 * it works itself) or workers_wait() all, and workers_reap() in the
 * teardown (a test that failed before waiting). Fixture data is zero-filled:
 * a zeroed struct workers has no workers.
 */
#ifndef __SELFTEST_VM_FILE_WORKERS_H
#define __SELFTEST_VM_FILE_WORKERS_H

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/types.h>

#ifdef VM_FILE_LIB_UNIT
#include "lib_harness.h"
#else
#include "kselftest_harness.h"
#endif

#define WORKERS_MAX	16

struct workers {
	int nr;
	pid_t pid[WORKERS_MAX];	/* <= 0: reaped (or never forked) */
};

static inline void workers_forget(struct workers *w)
{
	w->nr = 0;
}

/*
 * How many workers: $@env_name if set (1..@max), else one per online CPU
 * (at most @max).
 */
int workers_count(const char *env_name, int max);

/*
 * fork() a worker: returns its pid in the parent (recorded in @w), 0 in the
 * worker, -1 (errno) if it could not be made. The worker exits at once if
 * its parent is already gone (the death signal is set after the fork).
 */
pid_t worker_fork(struct workers *w);

/*
 * Wait for worker @i; true if it exited with status 0. @nohang: do not
 * block (false, with *@done false, if it is still running).
 */
bool worker_wait(struct workers *w, int i, bool nohang, bool *done,
		 int *status);

/*
 * Wait for every worker; returns how many did not exit 0, each named by a
 * diagnostic line.
 */
int workers_wait(struct workers *w);

/* Teardown: kill and reap every worker still recorded. */
void workers_reap(struct workers *w);

/*
 * The metadata a worker asserts on: the test's, without its teardown
 * (which belongs to the test process) and with a result of its own.
 */
static inline void worker_metadata(struct __test_metadata *wm,
				   const struct __test_metadata *t)
{
	*wm = *t;
	wm->teardown_fn = NULL;
	wm->no_teardown = NULL;
	wm->exit_code = KSFT_PASS;
}

/* End a worker that asserts on worker_metadata(): its result as exit status. */
static inline void __attribute__((noreturn))
worker_exit(const struct __test_metadata *wm)
{
	fflush(stdout);
	fflush(stderr);
	_exit(wm->exit_code == KSFT_PASS ? 0 : 1);
}

#endif /* __SELFTEST_VM_FILE_WORKERS_H */
