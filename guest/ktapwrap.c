// SPDX-License-Identifier: GPL-2.0
/*
 * ktapwrap - run test programs in the guest, nest their TAP output in one
 * KTAP stream and fail every test during which the kernel logged a report.
 *
 * Usage: ktapwrap [-k] [-x] [-t SECONDS] [-a ARGS] NAME=PROGRAM [NAME=PROGRAM ...]
 *
 * Each PROGRAM is run with its stdout on a pipe (stderr joins it).  Its lines
 * are forwarded indented by two spaces (a KTAP subtest).  Whenever a test
 * result line ("ok N ..." / "not ok N ...") of the program is seen, the new
 * records of /dev/kmsg are drained and matched against the report patterns
 * below (KASAN, lockdep, WARNING, BUG, refcount, kmemleak, ...).  A test
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

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * A kernel report starts a log record with one of these (WARN and lockdep:
 * "WARNING: ...", KASAN and friends: "BUG: ...").  Matching only at the start
 * keeps informational lines such as "...: WARNING: See <url>" out.
 */
static const char *const report_prefixes[] = {
	"BUG:",
	"WARNING:",
	"Oops",
	"kernel BUG at",
	"general protection fault",
	"Kernel panic",
	"UBSAN:",
	"KFENCE:",
	"refcount_t:",
	"unreferenced object",
	"INFO: task",
	"INFO: rcu",
	"rcu: INFO:",
	NULL,
};

/* ... and these anywhere in a record. */
static const char *const report_substrings[] = {
	"DEBUG_LOCKS_WARN_ON",
	"suspected memory leak",
	"blocked for more than",
	"detected stall",
	NULL,
};

/* Lines of one report kept as diagnostics (the trace is in the full log). */
#define REPORT_LINES	40

#define KMEMLEAK "/sys/kernel/debug/kmemleak"

static int kmsg_fd = -1;
static bool scan_kmemleak;
static bool fail_fast;		/* -x: stop at the first failure */
static unsigned int passed, failed, skipped;
static unsigned int top_index;
static char *prog_args[32];	/* -a ARGS, split at blanks */

/* Reports drained but not yet charged to a test. */
static char *pending;
static size_t pending_len;

static bool is_report(const char *msg)
{
	int i;

	for (i = 0; report_prefixes[i]; i++)
		if (!strncmp(msg, report_prefixes[i],
			     strlen(report_prefixes[i])))
			return true;
	for (i = 0; report_substrings[i]; i++)
		if (strstr(msg, report_substrings[i]))
			return true;
	return false;
}

static void pending_add(const char *msg)
{
	size_t n = strlen(msg);

	pending = realloc(pending, pending_len + n + 2);
	if (!pending) {
		perror("ktapwrap: realloc");
		exit(1);
	}
	memcpy(pending + pending_len, msg, n);
	pending_len += n;
	pending[pending_len++] = '\n';
	pending[pending_len] = '\0';
}

/*
 * Read every record that is in the kernel log now.  A report's first line
 * matches a pattern; the lines after it (call trace, "Freed by task", ...)
 * are kept with it until the next record that is not a continuation, so the
 * diagnostics show the whole report.
 */
static void kmsg_drain(void)
{
	static int report_lines;	/* > 0: inside a report */
	char rec[8192];

	if (kmsg_fd < 0)
		return;

	for (;;) {
		ssize_t n = read(kmsg_fd, rec, sizeof(rec) - 1);
		char *msg, *nl;

		if (n < 0) {
			if (errno == EPIPE)	/* records overwritten: go on */
				continue;
			break;			/* EAGAIN: drained */
		}
		rec[n] = '\0';
		/* "prio,seq,usec,flags;message\n key=value..." */
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		nl = strchr(msg, '\n');
		if (nl)
			*nl = '\0';

		if (is_report(msg)) {
			report_lines = REPORT_LINES;
			pending_add(msg);
		} else if (report_lines) {
			/* A report ends at a separator or a blank record. */
			if (!*msg || strstr(msg, "=========") ||
			    strstr(msg, "---[ end trace")) {
				report_lines = 0;
				continue;
			}
			report_lines--;
			pending_add(msg);
		}
	}
}

static void print_pending(const char *indent)
{
	char *line = pending, *nl;

	while (line && *line) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		printf("%s# kmsg: %s\n", indent, line);
		if (!nl)
			break;
		line = nl + 1;
	}
	free(pending);
	pending = NULL;
	pending_len = 0;
}

static const char *first_report(char *buf, size_t len)
{
	size_t n = strcspn(pending, "\n");

	if (n >= len)
		n = len - 1;
	memcpy(buf, pending, n);
	buf[n] = '\0';
	return buf;
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
	char buf[4096];
	FILE *f;
	int fd;

	if (!scan_kmemleak)
		return;
	fd = open(KMEMLEAK, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "scan", 4) != 4)
		printf("# ktapwrap: kmemleak scan: %s\n", strerror(errno));
	close(fd);

	f = fopen(KMEMLEAK, "re");
	if (!f)
		return;
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\n")] = '\0';
		if (pending_len < 64 * 1024)
			pending_add(buf);
	}
	fclose(f);

	fd = open(KMEMLEAK, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, "clear", 5) != 5)
			printf("# ktapwrap: kmemleak clear: %s\n",
			       strerror(errno));
		close(fd);
	}
}

/* A test outside the programs' own: boot log, log after a program, ... */
static void log_test(const char *name)
{
	char reason[256];

	kmsg_drain();
	top_index++;
	if (!pending) {
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
	kmsg_drain();	/* reports from before the program are its own */

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
		kmsg_drain();
		if (pending) {
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
	kmsg_drain();
	kmemleak_scan();

	top_index++;
	if (!tests) {
		/* No TAP: the exit status is the only result. */
		kmsg_drain();
		if (pending) {
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
	if (pending) {
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

	while ((opt = getopt(argc, argv, "kt:a:x")) != -1) {
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
		default:
			fprintf(stderr,
				"usage: %s [-k] [-x] [-t SECONDS] [-a ARGS] NAME=PROGRAM...\n",
				argv[0]);
			return 2;
		}
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (kmsg_fd < 0)
		printf("# ktapwrap: /dev/kmsg: %s: kernel log NOT scanned\n",
		       strerror(errno));

	printf("KTAP version 1\n");
	printf("1..%d\n", argc - optind + 2);
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
