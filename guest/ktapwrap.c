// SPDX-License-Identifier: GPL-2.0
/*
 * ktapwrap - run test programs in the guest, nest their TAP output in one
 * KTAP stream and fail every test during which the kernel logged a report.
 *
 * Usage: ktapwrap [-k] [-x] [-n] [-t SECONDS] [-a ARGS] NAME=PROGRAM [NAME=PROGRAM ...]
 *        ktapwrap -B [-k]
 *
 * Each PROGRAM is run with its stdout on a pipe (stderr joins it).  Its lines
 * are forwarded indented by two spaces (a KTAP subtest).  Whenever a test
 * result line ("ok N ..." / "not ok N ...") of the program is seen, the new
 * records of /dev/kmsg are drained and matched against the report patterns
 * of selftests/vm_file_lib/kmsg_report.h (KASAN, lockdep, WARNING, BUG,
 * refcount, kmemleak, ...: the same as the suites' own oracle).  A test
 * during which a report appeared is printed as "not ok" with the report's
 * first line as the reason, and the report lines follow as diagnostics.
 * kselftest_harness.h line-buffers stdout and the harness prints a result
 * only after the test's child has exited, so a report is attributed to the
 * test that was running when the kernel printed it.
 *
 * Programs that print no TAP (a lab's own static test, an exit-code-only
 * program) count as one test: exit 0 passes, 4 (KSFT_SKIP) skips, anything
 * else fails.  Reports that appear outside any test (at boot, between
 * programs, in the final kmemleak scan) are reported as tests of their own, so
 * nothing the kernel logs is ever dropped.
 *
 * With -k, kmemleak is scanned after every program (leaks then count against
 * that program) and once more at the end.  With -a, the words of ARGS are
 * passed to every program (kselftest_harness.h filters such as "-f fixture").
 * With -x, the first failure ends the run: the failing program is killed and
 * the programs after it are reported as skipped (a mutant is killed once one
 * test fails; no need to wait for the rest).
 *
 * With -n the kernel log is read from now on: no kernel-log-at-start test
 * (the log before was checked by someone else, e.g. a suite's own oracle).
 * With -B only the log so far is checked, as the test kernel-log-at-boot
 * (with -k after a kmemleak scan); no program runs.
 *
 * The programs of the vfio_kvm and iommufd_viommu suites do not need this
 * wrapper (they check the kernel log themselves, see kmsg_oracle.h); the
 * test guest uses it for boot and end-of-run checks and for programs that
 * have no such oracle (the kernel's own iommufd suite, --extra programs).
 *
 * The last line is "ktapwrap: N passed, N failed, N skipped".
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kmsg_report.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))


static int kmsg_fd = -1;
static bool scan_kmemleak;
static bool fail_fast;		/* -x: stop at the first failure */
static unsigned int passed, failed, skipped;
static unsigned int top_index;
static char *prog_args[32];	/* -a ARGS, split at blanks */

/* Reports drained but not yet charged to a test. */
static struct kmsg_reports pending;

/* Read every record that is in the kernel log now. */
static void kmsg_drain_pending(void)
{
	if (kmsg_fd >= 0)
		kmsg_drain(kmsg_fd, &pending, NULL, NULL);
}

/* Print the pending reports as diagnostics and forget them. */
static void print_pending(const char *indent)
{
	char prefix[16];

	snprintf(prefix, sizeof(prefix), "%s# kmsg: ", indent);
	kmsg_reports_print(&pending, stdout, prefix);
	kmsg_reports_free(&pending);
}

static const char *first_report(char *buf, size_t len)
{
	return kmsg_reports_first(&pending, buf, len);
}

/* A result line of the program's own TAP: "ok N name" or "not ok N name". */
static bool parse_result(const char *line, bool *ok, const char **rest)
{
	const char *p = line;

	if (!strncmp(p, "not ok ", 7)) {
		*ok = false;
		p += 7;
	} else if (!strncmp(p, "ok ", 3)) {
		*ok = true;
		p += 3;
	} else {
		return false;
	}
	if (!isdigit((unsigned char)*p))
		return false;
	*rest = p;
	return true;
}

static bool directive(const char *line, const char *what)
{
	const char *hash = strstr(line, " # ");

	return hash && !strncasecmp(hash + 3, what, strlen(what));
}

/*
 * Ask kmemleak for a scan now and collect what it reports.  kmemleak only
 * reports objects older than five seconds, so a final scan waits that long.
 * Reported objects are cleared so each leak is charged once.
 */
static void kmemleak_scan(void)
{
	int ret;

	if (!scan_kmemleak || access(KMEMLEAK_PATH, F_OK))
		return;
	ret = kmemleak_write("scan");
	if (ret)
		printf("# ktapwrap: kmemleak scan: %s\n", strerror(-ret));
	ret = kmemleak_read(&pending);
	if (ret)
		printf("# ktapwrap: %s: %s\n", KMEMLEAK_PATH, strerror(-ret));
	ret = kmemleak_write("clear");
	if (ret)
		printf("# ktapwrap: kmemleak clear: %s\n", strerror(-ret));
}

/* A test outside the programs' own: boot log, log after a program, ... */
static void log_test(const char *name)
{
	char reason[256];

	kmsg_drain_pending();
	top_index++;
	if (!pending.count) {
		printf("ok %u %s\n", top_index, name);
		passed++;
		return;
	}
	printf("not ok %u %s # KERNEL LOG: %s\n", top_index, name,
	       first_report(reason, sizeof(reason)));
	print_pending("");
	failed++;
}

static pid_t child;

static void on_alarm(int sig)
{
	(void)sig;
	if (child > 0)
		kill(-child, SIGKILL);
}

static void run_program(const char *name, const char *path, int timeout)
{
	unsigned int tests = 0, t_pass = 0, t_fail = 0, t_skip = 0;
	char *line = NULL;
	size_t cap = 0;
	int pipefd[2], status;
	bool timed_out = false;
	time_t start = time(NULL);
	FILE *in;

	printf("# selftests: %s\n", name);
	fflush(stdout);
	kmsg_drain_pending();	/* reports from before the program are its own */

	if (pipe2(pipefd, O_CLOEXEC)) {
		perror("ktapwrap: pipe");
		exit(1);
	}
	child = fork();
	if (child < 0) {
		perror("ktapwrap: fork");
		exit(1);
	}
	if (!child) {
		char *dir = strdup(path), *slash = strrchr(dir, '/');
		char *argv[ARRAY_SIZE(prog_args) + 2] = { (char *)path };

		setpgid(0, 0);
		if (slash) {
			*slash = '\0';
			if (chdir(dir))
				_exit(127);
		}
		memcpy(argv + 1, prog_args, sizeof(prog_args));
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		execv(path, argv);
		perror("exec");
		_exit(127);
	}
	setpgid(child, child);
	close(pipefd[1]);
	in = fdopen(pipefd[0], "r");

	signal(SIGALRM, on_alarm);
	alarm(timeout);

	while (getline(&line, &cap, in) > 0) {
		const char *rest;
		bool ok;

		line[strcspn(line, "\n")] = '\0';
		if (!parse_result(line, &ok, &rest)) {
			printf("  %s\n", line);
			fflush(stdout);
			continue;
		}
		tests++;
		kmsg_drain_pending();
		if (pending.count) {
			char reason[256];

			printf("  not ok %s # KERNEL LOG: %s\n", rest,
			       first_report(reason, sizeof(reason)));
			print_pending("  ");
			t_fail++;
		} else {
			printf("  %s\n", line);
			if (ok && directive(line, "SKIP"))
				t_skip++;
			else if (ok)
				t_pass++;
			else
				t_fail++;
		}
		fflush(stdout);
		if (fail_fast && t_fail) {
			printf("  # ktapwrap: -x: stopping at the first failure\n");
			kill(-child, SIGKILL);
			break;
		}
	}
	if (alarm(0) == 0 && time(NULL) - start >= timeout)
		timed_out = true;
	fclose(in);
	free(line);
	waitpid(child, &status, 0);
	child = 0;
	kmsg_drain_pending();
	kmemleak_scan();

	top_index++;
	if (!tests) {
		/* No TAP: the exit status is the only result. */
		kmsg_drain_pending();
		if (pending.count) {
			char reason[256];

			printf("not ok %u %s # KERNEL LOG: %s\n", top_index,
			       name, first_report(reason, sizeof(reason)));
			print_pending("");
			failed++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			printf("ok %u %s\n", top_index, name);
			passed++;
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 4) {
			printf("ok %u %s # SKIP\n", top_index, name);
			skipped++;
		} else {
			printf("not ok %u %s # %s %d\n", top_index, name,
			       timed_out ? "TIMEOUT after" :
			       WIFSIGNALED(status) ? "killed by signal" :
			       "exit status",
			       timed_out ? timeout :
			       WIFSIGNALED(status) ? WTERMSIG(status) :
			       WEXITSTATUS(status));
			failed++;
		}
		fflush(stdout);
		return;
	}

	passed += t_pass;
	skipped += t_skip;
	failed += t_fail;
	/*
	 * A program that dies or times out after reporting some tests has
	 * failed in a way no test line shows: count that as a failure too.
	 */
	if (pending.count) {
		char reason[256];

		printf("not ok %u %s # KERNEL LOG after its tests: %s\n",
		       top_index, name, first_report(reason, sizeof(reason)));
		print_pending("");
		failed++;
	} else if (timed_out || WIFSIGNALED(status) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
	     WEXITSTATUS(status) != 4 && !t_fail)) {
		printf("not ok %u %s # %s\n", top_index, name,
		       timed_out ? "TIMEOUT" : "program failed after its tests");
		failed++;
	} else {
		printf("%s %u %s # %u pass, %u fail, %u skip\n",
		       t_fail ? "not ok" : "ok", top_index, name,
		       t_pass, t_fail, t_skip);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	int timeout = 300, opt, i;
	bool from_now = false, boot_only = false;

	while ((opt = getopt(argc, argv, "kt:a:xnB")) != -1) {
		switch (opt) {
		case 'a': {
			char *word = strtok(optarg, " \t");

			for (i = 0; word && i < (int)ARRAY_SIZE(prog_args) - 1;
			     i++, word = strtok(NULL, " \t"))
				prog_args[i] = word;
			break;
		}
		case 'k':
			scan_kmemleak = true;
			break;
		case 'x':
			fail_fast = true;
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'n':
			from_now = true;
			break;
		case 'B':
			boot_only = true;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-k] [-x] [-n] [-t SECONDS] [-a ARGS] NAME=PROGRAM...\n"
				"       %s -B [-k]\n",
				argv[0], argv[0]);
			return 2;
		}
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd < 0)
		printf("# ktapwrap: /dev/kmsg: %s: kernel log NOT scanned\n",
		       strerror(errno));
	else if (from_now && lseek(kmsg_fd, 0, SEEK_END) < 0)
		printf("# ktapwrap: /dev/kmsg: seek: %s\n", strerror(errno));

	printf("KTAP version 1\n");
	if (boot_only) {
		printf("1..1\n");
		kmemleak_scan();
		log_test("kernel-log-at-boot");
		return failed ? 1 : 0;
	}
	printf("1..%d\n", argc - optind + 1 + !from_now);
	if (!from_now)
		log_test("kernel-log-at-start");

	for (i = optind; i < argc; i++) {
		char *name = strdup(argv[i]), *eq = strchr(name, '=');

		if (!eq) {
			fprintf(stderr, "ktapwrap: %s: want NAME=PROGRAM\n", name);
			return 2;
		}
		*eq = '\0';
		if (fail_fast && failed) {
			printf("ok %u %s # SKIP not run (-x)\n", ++top_index,
			       name);
			skipped++;
		} else {
			run_program(name, eq + 1, timeout);
		}
		free(name);
	}
	if (scan_kmemleak)
		sleep(6);	/* let the last objects age past kmemleak's 5 s */
	kmemleak_scan();
	log_test("kernel-log-at-end");
	printf("ktapwrap: %u passed, %u failed, %u skipped\n",
	       passed, failed, skipped);
	return failed ? 1 : 0;
}
