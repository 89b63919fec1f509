/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel-log oracle of every test of a program, with no runner around it.
 *
 * Included (through vm_file_utils.h) by every program of the suites; nothing
 * for a test to call. Before test_harness_run() starts, a constructor walks
 * kselftest_harness.h's registered tests and replaces each test's ->fn with
 * kmsg_oracle_run_test(), which runs in the harness's test child:
 *
 *   open /dev/kmsg at its end            (the test's start)
 *   fork: the child runs the original ->fn (for a TEST_F: fork the test
 *         process, setup + test + teardown in it, wait for it, parent
 *         teardown) and exits with its result
 *   wait: every process of the test has exited, its files are released
 *   settle: one RCU grace period (membarrier(MEMBARRIER_CMD_GLOBAL) is
 *         synchronize_rcu()), then VFIO_KVM_KMSG_SETTLE_MS (default 20 ms),
 *         for reports from RCU callbacks and work items the test queued
 *   read every record since the start   (the test's end)
 *
 * A KASAN, lockdep, WARNING, BUG, refcount, RCU-usage, hung-task or kmemleak
 * report (kmsg_report.h) in that window fails the test, whatever it
 * returned: its first lines are printed as "# kmsg: " diagnostics and the
 * first one is the result's reason. Without read access to /dev/kmsg each
 * test SKIPs without running, naming the reason: no test passes blind.
 *
 * Two checks of the whole program are appended as the last tests, fixture
 * "kernel_log" (with harness filters, add -f kernel_log to keep them):
 *   kernel_log.outside_tests  reports between the program's start and now that
 *                             no test was charged with (constructors, between
 *                             tests, later than a test's settle);
 *   kernel_log.kmemleak       kmemleak: wait until the last test's objects are
 *                             old enough to be reported (5 s), scan, fail on
 *                             any unreferenced object, clear. SKIP without
 *                             kmemleak. One scan per program: a scan costs
 *                             seconds under TCG + KASAN and only objects
 *                             older than 5 s are reported, so a scan per
 *                             test is not affordable.
 *
 * What walks and registers the program's tests, and the check of the ksft
 * counters, is this header's "program's own part": kselftest_harness.h and
 * kselftest.h keep the test list and the counters per translation unit, so
 * it is compiled into each program. The rest (the oracle's state, the window
 * around a test, the kernel_log checks) is vm_file_lib's kmsg_oracle.c.
 */
#ifndef __SELFTEST_KMSG_ORACLE_H
#define __SELFTEST_KMSG_ORACLE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef VM_FILE_LIB_UNIT
#include "lib_harness.h"
#else
#include "kselftest_harness.h"
#endif
#include "kmsg_report.h"

#define KMSG_PATH			"/dev/kmsg"
#define KMSG_SETTLE_ENV			"VFIO_KVM_KMSG_SETTLE_MS"
#define KMSG_SETTLE_DEFAULT_MS		20
/* kmemleak reports an object only once it is this old (mm/kmemleak.c) */
#define KMEMLEAK_MIN_AGE_MS		5000
#define KMSG_ORACLE_CHARGED		256
#define KMSG_ORACLE_FIXTURE		"kernel_log"

/*
 * Run test @t between two reads of the kernel log: @run_fn runs the test's
 * own ->fn in a child (and exits with its result); reports in the window
 * fail @t.
 */
void kmsg_oracle_test(struct __test_metadata *t,
		      struct __fixture_variant_metadata *v,
		      void (*run_fn)(struct __test_metadata *t,
				     struct __fixture_variant_metadata *v));

/* The kernel_log fixture's tests (see above). */
void kmsg_oracle_outside_tests(struct __test_metadata *_metadata,
			       struct __fixture_variant_metadata *v);
void kmsg_oracle_kmemleak(struct __test_metadata *_metadata,
			  struct __fixture_variant_metadata *v);

#ifndef VM_FILE_LIB_UNIT
/* ------------------------------------------------ the program's own part */

/* The tests' own ->fn, by test. */
static struct kmsg_oracle_fn {
	struct __test_metadata *t;
	void (*fn)(struct __test_metadata *, struct __fixture_variant_metadata *);
} *kmsg_oracle_fns;
static unsigned int kmsg_oracle_nr_fns;

/* Run the test's own ->fn as kselftest_harness.h's test child would. */
static inline void kmsg_oracle_run_fn(struct __test_metadata *t,
				      struct __fixture_variant_metadata *v)
{
	unsigned int i;

	for (i = 0; i < kmsg_oracle_nr_fns; i++)
		if (kmsg_oracle_fns[i].t == t)
			break;
	if (i == kmsg_oracle_nr_fns) {
		ksft_print_msg("kmsg oracle: %s has no test function\n", t->name);
		_exit(KSFT_FAIL);
	}
	kmsg_oracle_fns[i].fn(t, v);
	if (__test_passed(t) && (ksft_get_fail_cnt() || ksft_get_error_cnt())) {
		ksft_print_msg("Illegal usage of low-level ksft APIs in harness test\n");
		t->exit_code = KSFT_FAIL;
	}
	fflush(stdout);
	fflush(stderr);
	_exit(t->exit_code);
}

/* Every test's ->fn: the test between two reads of the kernel log. */
static void kmsg_oracle_run_test(struct __test_metadata *t,
				 struct __fixture_variant_metadata *v)
{
	kmsg_oracle_test(t, v, kmsg_oracle_run_fn);
}

static struct __fixture_metadata kmsg_oracle_fixture = {
	.name = KMSG_ORACLE_FIXTURE,
};

static struct __test_metadata kmsg_oracle_tests[] = {
	{
		.name = "outside_tests",
		.fn = kmsg_oracle_outside_tests,
		.fixture = &kmsg_oracle_fixture,
		.termsig = -1,
		.timeout = 30,
	},
	{
		.name = "kmemleak",
		.fn = kmsg_oracle_kmemleak,
		.fixture = &kmsg_oracle_fixture,
		.termsig = -1,
		.timeout = 300,
	},
};

/*
 * After every test, fixture and variant has registered (their constructors
 * run at KSELFTEST_PRIO_TEST and KSELFTEST_PRIO_XFAIL), before main():
 * wrap every test's ->fn and append the kernel_log fixture last.
 */
static void __attribute__((constructor(KSELFTEST_PRIO_XFAIL + 1)))
kmsg_oracle_install(void)
{
	struct __fixture_metadata *f, *last = NULL;
	struct __test_metadata *t;
	unsigned int n = 0, i;

	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			n++;
	kmsg_oracle_fns = calloc(n ? n : 1, sizeof(*kmsg_oracle_fns));
	if (!kmsg_oracle_fns) {
		perror("kmsg oracle: calloc");
		exit(KSFT_FAIL);
	}
	for (f = __fixture_list; f; f = f->next) {
		for (t = f->tests; t; t = t->next) {
			kmsg_oracle_fns[kmsg_oracle_nr_fns].t = t;
			kmsg_oracle_fns[kmsg_oracle_nr_fns++].fn = t->fn;
			t->fn = kmsg_oracle_run_test;
		}
		last = f;
	}

	/* A circular list only through ->prev, as __LIST_APPEND() keeps it. */
	for (i = 0; i < ARRAY_SIZE(kmsg_oracle_tests); i++) {
		t = &kmsg_oracle_tests[i];
		t->prev = i ? &kmsg_oracle_tests[i - 1] : &kmsg_oracle_tests[i];
		t->next = i + 1 < ARRAY_SIZE(kmsg_oracle_tests) ?
			  &kmsg_oracle_tests[i + 1] : NULL;
	}
	kmsg_oracle_tests[0].prev = &kmsg_oracle_tests[ARRAY_SIZE(kmsg_oracle_tests) - 1];
	kmsg_oracle_fixture.tests = &kmsg_oracle_tests[0];
	kmsg_oracle_fixture.next = NULL;
	kmsg_oracle_fixture.prev = last;
	last->next = &kmsg_oracle_fixture;
	__fixture_list->prev = &kmsg_oracle_fixture;
}

#endif /* !VM_FILE_LIB_UNIT */

#endif /* __SELFTEST_KMSG_ORACLE_H */
