/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kernel reports in /dev/kmsg: which records start one (KASAN, lockdep,
 * WARNING, BUG, refcount, RCU, hung task, kmemleak, ...), and a collector
 * that keeps each report's first lines and the sequence number of its first
 * record. Plain libc, no kselftest dependency: used by the suites' in-test
 * oracle (kmsg_oracle.h) and by the test guest's guest/ktapwrap.c.
 *
 * A record read from /dev/kmsg is "prio,seq,usec,flags;message\n" followed
 * by " KEY=value" continuation lines (Documentation/ABI/testing/dev-kmsg).
 *
 * The functions are kmsg_report.c's (vm_file_lib.mk links it into every
 * program; guest/ktapwrap.c is built with it).
 */
#ifndef __SELFTEST_KMSG_REPORT_H
#define __SELFTEST_KMSG_REPORT_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Lines of one report kept (the whole trace is in the full kernel log). */
#define KMSG_REPORT_LINES	40
/* Reports whose first record's sequence number is remembered. */
#define KMSG_REPORT_SEQS	64
/* Bytes of report text kept in all. */
#define KMSG_REPORT_MAX_TEXT	(64 * 1024)

/* The reports seen so far, their lines joined with '\n'. */
struct kmsg_reports {
	char *text;
	size_t len;
	unsigned int count;		/* reports (first lines) */
	unsigned int lost;		/* times records were overwritten unread */
	unsigned long long seq[KMSG_REPORT_SEQS];	/* first record of each */
	int lines_left;			/* > 0: inside a report */
};

static inline void kmsg_reports_init(struct kmsg_reports *r)
{
	memset(r, 0, sizeof(*r));
}

void kmsg_reports_free(struct kmsg_reports *r);

/* Append one line of text (dropped beyond KMSG_REPORT_MAX_TEXT). */
void kmsg_reports_add_line(struct kmsg_reports *r, const char *line);

/*
 * Feed one message (the record's text, without its header) with its
 * sequence number. A report's first line matches a pattern; the lines after
 * it (call trace, "Freed by task", ...) are kept with it until a separator
 * or a blank line. Returns true if the message started a report.
 */
bool kmsg_reports_feed(struct kmsg_reports *r,
		       unsigned long long seq, const char *msg);

/*
 * Split a record read from /dev/kmsg: its sequence number and its message
 * (first line only, NUL-terminated in place). False if it is malformed.
 */
bool kmsg_parse_record(char *rec, unsigned long long *seq, char **msg);

/*
 * Read every record that is in the kernel log now from @fd (/dev/kmsg,
 * opened O_NONBLOCK) into @r. If @keep is given, records whose sequence
 * number it refuses are read but not fed (e.g. reports already charged to a
 * test). Returns 0, or -errno of a read error other than "drained".
 */
int kmsg_drain(int fd, struct kmsg_reports *r,
	       bool (*keep)(unsigned long long seq, void *arg),
	       void *arg);

/* The first line of the first report, into @buf. */
const char *kmsg_reports_first(const struct kmsg_reports *r,
			       char *buf, size_t len);

/* Print every kept line as "@prefix<line>" to @out. */
void kmsg_reports_print(const struct kmsg_reports *r, FILE *out,
			const char *prefix);

/* ------------------------------------------------------------- kmemleak */

#define KMEMLEAK_PATH		"/sys/kernel/debug/kmemleak"

/* Write @cmd ("scan", "clear") to kmemleak. 0 or -errno. */
int kmemleak_write(const char *cmd);

/*
 * Add the unreferenced objects kmemleak lists now (after its last scan) to
 * @r, each a report. 0 or -errno.
 */
int kmemleak_read(struct kmsg_reports *r);

#endif /* __SELFTEST_KMSG_REPORT_H */
