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
 */
#ifndef __SELFTEST_KMSG_ORACLE_H
#define __SELFTEST_KMSG_ORACLE_H

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "kmsg_report.h"

#define KMSG_PATH			"/dev/kmsg"
#define KMSG_SETTLE_ENV			"VFIO_KVM_KMSG_SETTLE_MS"
#define KMSG_SETTLE_DEFAULT_MS		20
/* kmemleak reports an object only once it is this old (mm/kmemleak.c) */
#define KMEMLEAK_MIN_AGE_MS		5000
#define KMSG_ORACLE_CHARGED		256
#define KMSG_ORACLE_FIXTURE		"kernel_log"

/* Shared by the harness and every test child (MAP_SHARED). */
struct kmsg_oracle_state {
	unsigned int charged;		/* reports charged to a test */
	unsigned long long charged_seq[KMSG_ORACLE_CHARGED];
	long long last_end_us;		/* end of the last test */
	unsigned int tests;		/* tests run under the oracle */
	long long settle_us;		/* their settle + read time, summed */
	long long settle_max_us;
};

static struct kmsg_oracle_state *kmsg_oracle;
static int kmsg_program_fd = -1;	/* /dev/kmsg from the program's start */
static int kmsg_open_errno;		/* why /dev/kmsg cannot be read */
static unsigned int kmsg_settle_ms = KMSG_SETTLE_DEFAULT_MS;

/* The tests' own ->fn, by test. */
static struct kmsg_oracle_fn {
	struct __test_metadata *t;
	void (*fn)(struct __test_metadata *, struct __fixture_variant_metadata *);
} *kmsg_oracle_fns;
static unsigned int kmsg_oracle_nr_fns;

static inline long long kmsg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* /dev/kmsg, positioned after the last record now in the log; -1 (errno). */
static inline int kmsg_open_now(void)
{
	int fd = open(KMSG_PATH, O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * The program's start: before any other constructor of the program (a probe
 * creating a VM is a constructor), so that kernel_log.outside_tests sees it.
 */
static void __attribute__((constructor(101))) kmsg_oracle_program_start(void)
{
	const char *env = getenv(KMSG_SETTLE_ENV);

	if (env && *env)
		kmsg_settle_ms = strtoul(env, NULL, 0);
	kmsg_oracle = mmap(NULL, sizeof(*kmsg_oracle), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (kmsg_oracle == MAP_FAILED) {
		perror("kmsg oracle: mmap");
		exit(KSFT_FAIL);
	}
	memset(kmsg_oracle, 0, sizeof(*kmsg_oracle));
	kmsg_program_fd = kmsg_open_now();
	if (kmsg_program_fd < 0)
		kmsg_open_errno = errno;
}

/* Why the oracle cannot run (the test SKIPs), or NULL. */
static inline const char *kmsg_oracle_unavailable(char *buf, size_t len)
{
	if (!kmsg_open_errno)
		return NULL;
	snprintf(buf, len,
		 "cannot read %s: %s: the kernel-log oracle cannot run (it needs CAP_SYSLOG, or kernel.dmesg_restrict=0)",
		 KMSG_PATH, strerror(kmsg_open_errno));
	return buf;
}

static inline void kmsg_oracle_skip(struct __test_metadata *t, const char *why)
{
	ksft_print_msg("%s\n", why);
	snprintf(t->results->reason, sizeof(t->results->reason), "%s", why);
	t->exit_code = KSFT_SKIP;
}

/*
 * Let late reports arrive: an RCU grace period (callbacks the test queued
 * can run after it), then a short wait for work items. Bounded: a report
 * later than this is kernel_log.outside_tests's.
 */
static inline void kmsg_oracle_settle(void)
{
	syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	usleep(kmsg_settle_ms * 1000);
}

/* Fail @t for the reports in @r: their lines as diagnostics, the first as reason. */
static inline void kmsg_oracle_fail(struct __test_metadata *t,
				    const struct kmsg_reports *r,
				    const char *what)
{
	char first[256];

	kmsg_reports_first(r, first, sizeof(first));
	ksft_print_msg("%u kernel report(s) %s; the kernel log says:\n",
		       r->count, what);
	kmsg_reports_print(r, stdout, "# kmsg: ");
	snprintf(t->results->reason, sizeof(t->results->reason),
		 "KERNEL LOG: %s", first);
	t->exit_code = KSFT_FAIL;
}

static inline void kmsg_oracle_charge(const struct kmsg_reports *r)
{
	unsigned int i;

	for (i = 0; i < r->count && i < KMSG_REPORT_SEQS; i++)
		if (kmsg_oracle->charged < KMSG_ORACLE_CHARGED)
			kmsg_oracle->charged_seq[kmsg_oracle->charged++] = r->seq[i];
}

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
	struct kmsg_reports r;
	long long end, spent;
	char why[256];
	int fd, status;
	pid_t pid;

	if (kmsg_oracle_unavailable(why, sizeof(why))) {
		kmsg_oracle_skip(t, why);
		return;
	}
	fd = kmsg_open_now();
	if (fd < 0) {
		snprintf(why, sizeof(why), "cannot read %s: %s", KMSG_PATH,
			 strerror(errno));
		kmsg_oracle_skip(t, why);
		return;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		ksft_print_msg("kmsg oracle: fork: %s\n", strerror(errno));
		t->exit_code = KSFT_FAIL;
		close(fd);
		return;
	}
	if (!pid) {
		/* The test's processes do not see the oracle's files. */
		close(fd);
		if (kmsg_program_fd >= 0)
			close(kmsg_program_fd);
		kmsg_oracle_run_fn(t, v);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;

	end = kmsg_now_us();
	kmsg_reports_init(&r);
	kmsg_oracle_settle();
	kmsg_drain(fd, &r, NULL, NULL);
	close(fd);
	spent = kmsg_now_us() - end;
	kmsg_oracle->tests++;
	kmsg_oracle->settle_us += spent;
	if (spent > kmsg_oracle->settle_max_us)
		kmsg_oracle->settle_max_us = spent;
	kmsg_oracle->last_end_us = kmsg_now_us();

	if (r.count) {
		kmsg_oracle_charge(&r);
		kmsg_oracle_fail(t, &r, "while the test ran");
		kmsg_reports_free(&r);
		fflush(stdout);
		return;
	}
	if (WIFSIGNALED(status)) {
		/* As the harness's test child does: die of the same signal. */
		fflush(stdout);
		fflush(stderr);
		signal(WTERMSIG(status), SIG_DFL);
		kill(getpid(), WTERMSIG(status));
	}
	t->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : KSFT_FAIL;
	fflush(stdout);
}

/* --------------------------------------------- the program-wide checks */

static bool kmsg_oracle_uncharged(unsigned long long seq, void *arg)
{
	unsigned int i;

	(void)arg;
	for (i = 0; i < kmsg_oracle->charged && i < KMSG_ORACLE_CHARGED; i++)
		if (kmsg_oracle->charged_seq[i] == seq)
			return false;
	return true;
}

static void kmsg_oracle_outside_tests(struct __test_metadata *_metadata,
				      struct __fixture_variant_metadata *v)
{
	struct kmsg_reports r;
	char why[256];

	(void)v;
	if (kmsg_oracle_unavailable(why, sizeof(why))) {
		kmsg_oracle_skip(_metadata, why);
		return;
	}
	kmsg_reports_init(&r);
	kmsg_drain(kmsg_program_fd, &r, kmsg_oracle_uncharged, NULL);
	if (r.lost)
		ksft_print_msg("kernel log records were overwritten before they were read (%u times)\n",
			       r.lost);
	if (r.count)
		kmsg_oracle_fail(_metadata, &r,
				 "in this program outside its tests' windows");
	kmsg_reports_free(&r);
	fflush(stdout);
}

static void kmsg_oracle_kmemleak(struct __test_metadata *_metadata,
				 struct __fixture_variant_metadata *v)
{
	struct kmsg_reports r;
	long long wait_us, t0;
	int ret;

	(void)v;
	if (kmsg_oracle->tests)
		ksft_print_msg("kmsg oracle: %u tests, settle + read %lld ms in all, %lld ms mean, %lld ms max (settle %u ms after a grace period)\n",
			       kmsg_oracle->tests, kmsg_oracle->settle_us / 1000,
			       kmsg_oracle->settle_us / 1000 / kmsg_oracle->tests,
			       kmsg_oracle->settle_max_us / 1000, kmsg_settle_ms);
	if (access(KMEMLEAK_PATH, R_OK | W_OK)) {
		snprintf(_metadata->results->reason,
			 sizeof(_metadata->results->reason),
			 "no %s: %s (CONFIG_DEBUG_KMEMLEAK, kmemleak=on, debugfs mounted)",
			 KMEMLEAK_PATH, strerror(errno));
		ksft_print_msg("%s\n", _metadata->results->reason);
		_metadata->exit_code = KSFT_SKIP;
		return;
	}
	/* Objects the last test leaked are reported once they are 5 s old. */
	wait_us = kmsg_oracle->last_end_us + (KMEMLEAK_MIN_AGE_MS + 500) * 1000LL -
		  kmsg_now_us();
	if (wait_us > 0)
		usleep(wait_us);
	t0 = kmsg_now_us();
	ret = kmemleak_write("scan");
	ASSERT_EQ(0, ret) TH_LOG("kmemleak scan: %s", strerror(-ret));
	ksft_print_msg("kmemleak: waited %lld ms for objects to age, scan took %lld ms\n",
		       wait_us > 0 ? wait_us / 1000 : 0,
		       (kmsg_now_us() - t0) / 1000);
	kmsg_reports_init(&r);
	ret = kmemleak_read(&r);
	ASSERT_EQ(0, ret) TH_LOG("%s: %s", KMEMLEAK_PATH, strerror(-ret));
	/* Each leak is reported once, by the program that saw it first. */
	ret = kmemleak_write("clear");
	EXPECT_EQ(0, ret) TH_LOG("kmemleak clear: %s", strerror(-ret));
	if (r.count)
		kmsg_oracle_fail(_metadata, &r, "by kmemleak (unreferenced objects)");
	kmsg_reports_free(&r);
	fflush(stdout);
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

#endif /* __SELFTEST_KMSG_ORACLE_H */
