// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kernel reports in /dev/kmsg: see kmsg_report.h. Plain libc, no kselftest
 * dependency.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kmsg_report.h"

/*
 * A report starts a record with one of these (WARN and lockdep:
 * "WARNING: ...", KASAN, KCSAN and friends: "BUG: ...").  Matching only at
 * the start keeps informational lines such as "...: WARNING: See <url>" out.
 */
static const char *const kmsg_report_prefixes[] = {
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
static const char *const kmsg_report_substrings[] = {
	"DEBUG_LOCKS_WARN_ON",
	"suspected memory leak",
	"blocked for more than",
	"detected stall",
	NULL,
};

static bool kmsg_is_report(const char *msg)
{
	int i;

	for (i = 0; kmsg_report_prefixes[i]; i++)
		if (!strncmp(msg, kmsg_report_prefixes[i],
			     strlen(kmsg_report_prefixes[i])))
			return true;
	for (i = 0; kmsg_report_substrings[i]; i++)
		if (strstr(msg, kmsg_report_substrings[i]))
			return true;
	return false;
}

void kmsg_reports_free(struct kmsg_reports *r)
{
	free(r->text);
	kmsg_reports_init(r);
}

void kmsg_reports_add_line(struct kmsg_reports *r, const char *line)
{
	size_t n = strlen(line);
	char *text;

	if (r->len + n + 2 > KMSG_REPORT_MAX_TEXT)
		return;
	text = realloc(r->text, r->len + n + 2);
	if (!text)
		return;
	r->text = text;
	memcpy(r->text + r->len, line, n);
	r->len += n;
	r->text[r->len++] = '\n';
	r->text[r->len] = '\0';
}

bool kmsg_reports_feed(struct kmsg_reports *r,
		       unsigned long long seq, const char *msg)
{
	if (kmsg_is_report(msg)) {
		if (r->count < KMSG_REPORT_SEQS)
			r->seq[r->count] = seq;
		r->count++;
		r->lines_left = KMSG_REPORT_LINES;
		kmsg_reports_add_line(r, msg);
		return true;
	}
	if (r->lines_left) {
		if (!*msg || strstr(msg, "=========") ||
		    strstr(msg, "---[ end trace"))
			r->lines_left = 0;
		else {
			r->lines_left--;
			kmsg_reports_add_line(r, msg);
		}
	}
	return false;
}

bool kmsg_parse_record(char *rec, unsigned long long *seq, char **msg)
{
	char *semi = strchr(rec, ';'), *comma = strchr(rec, ',');

	if (!semi || !comma || comma > semi)
		return false;
	*seq = strtoull(comma + 1, NULL, 10);
	*msg = semi + 1;
	(*msg)[strcspn(*msg, "\n")] = '\0';
	return true;
}

int kmsg_drain(int fd, struct kmsg_reports *r,
	       bool (*keep)(unsigned long long seq, void *arg),
	       void *arg)
{
	char rec[8192];

	for (;;) {
		ssize_t n = read(fd, rec, sizeof(rec) - 1);
		unsigned long long seq;
		char *msg;

		if (n < 0) {
			if (errno == EPIPE) {	/* overwritten before read */
				r->lost++;
				continue;
			}
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0)
			return 0;
		rec[n] = '\0';
		if (!kmsg_parse_record(rec, &seq, &msg))
			continue;
		if (keep && !keep(seq, arg)) {
			r->lines_left = 0;
			continue;
		}
		kmsg_reports_feed(r, seq, msg);
	}
}

const char *kmsg_reports_first(const struct kmsg_reports *r,
			       char *buf, size_t len)
{
	size_t n;

	buf[0] = '\0';
	if (!r->text)
		return buf;
	n = strcspn(r->text, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(buf, r->text, n);
	buf[n] = '\0';
	return buf;
}

void kmsg_reports_print(const struct kmsg_reports *r, FILE *out,
			const char *prefix)
{
	const char *line = r->text;

	while (line && *line) {
		size_t n = strcspn(line, "\n");

		fprintf(out, "%s%.*s\n", prefix, (int)n, line);
		line += n;
		if (*line)
			line++;
	}
	fflush(out);
}

/* ------------------------------------------------------------- kmemleak */

int kmemleak_write(const char *cmd)
{
	FILE *f = fopen(KMEMLEAK_PATH, "we");
	int ret = 0;

	if (!f)
		return -errno;
	if (fputs(cmd, f) < 0)
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	return ret;
}

int kmemleak_read(struct kmsg_reports *r)
{
	unsigned int before = r->count;
	char line[512];
	FILE *f;

	f = fopen(KMEMLEAK_PATH, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strncmp(line, "unreferenced object", 19))
			r->count++;
		if (r->count > before)
			kmsg_reports_add_line(r, line);
	}
	fclose(f);
	return 0;
}
