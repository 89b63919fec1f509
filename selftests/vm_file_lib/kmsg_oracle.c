// SPDX-License-Identifier: GPL-2.0-only
/*
 * The kernel-log oracle of every test: its state, the window around a test
 * and the kernel_log checks (see kmsg_oracle.h; the part that wraps the
 * program's tests is there).
 */
#define VM_FILE_LIB_UNIT kmsg_oracle

#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "kmsg_oracle.h"

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

static long long kmsg_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* /dev/kmsg, positioned after the last record now in the log; -1 (errno). */
static int kmsg_open_now(void)
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
static const char *kmsg_oracle_unavailable(char *buf, size_t len)
{
	if (!kmsg_open_errno)
		return NULL;
	snprintf(buf, len,
		 "cannot read %s: %s: the kernel-log oracle cannot run (it needs CAP_SYSLOG, or kernel.dmesg_restrict=0)",
		 KMSG_PATH, strerror(kmsg_open_errno));
	return buf;
}

static void kmsg_oracle_skip(struct __test_metadata *t, const char *why)
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
static void kmsg_oracle_settle(void)
{
	syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
	usleep(kmsg_settle_ms * 1000);
}

/* Fail @t for the reports in @r: their lines as diagnostics, the first as reason. */
static void kmsg_oracle_fail(struct __test_metadata *t,
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

static void kmsg_oracle_charge(const struct kmsg_reports *r)
{
	unsigned int i;

	for (i = 0; i < r->count && i < KMSG_REPORT_SEQS; i++)
		if (kmsg_oracle->charged < KMSG_ORACLE_CHARGED)
			kmsg_oracle->charged_seq[kmsg_oracle->charged++] = r->seq[i];
}

void kmsg_oracle_test(struct __test_metadata *t,
		      struct __fixture_variant_metadata *v,
		      void (*run_fn)(struct __test_metadata *t,
				     struct __fixture_variant_metadata *v))
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
		run_fn(t, v);
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

void kmsg_oracle_outside_tests(struct __test_metadata *_metadata,
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

void kmsg_oracle_kmemleak(struct __test_metadata *_metadata,
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
