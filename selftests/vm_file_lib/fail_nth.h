/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Fault injection for the fail-nth sweeps of both suites
 * (iommufd_viommu_fail_nth, vfio_kvm's vfio_fail_nth), in the manner of
 * tools/testing/selftests/iommu/iommufd_fail_nth.c: a thread's fail-nth
 * file armed around one call or sequence, failslab and the other fault
 * attributes set up so that every allocation may fail, quietly, and their
 * "times" counters read around the call to tell which attribute fired.
 * The functions are vm_file_lib's fail_nth.c.
 */
#ifndef __SELFTEST_VM_FILE_LIB_FAIL_NTH_H
#define __SELFTEST_VM_FILE_LIB_FAIL_NTH_H

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#define FAIL_DEBUGFS		"/sys/kernel/debug"
/* This thread's fail-nth. */
#define FAIL_NTH_PATH		"/proc/thread-self/fail-nth"
/*
 * Each fault attribute's "times" is counted down by every failure it
 * injects (fail-nth's too): set high before a sweep and read around each
 * call, it tells which attribute fired.
 */
#define FAIL_TIMES_START	"1000000"

/* Which fault attribute an injected failure came from. */
enum fail_kind {
	FAIL_KIND_SLAB,		/* failslab: ENOMEM */
	FAIL_KIND_PAGE,		/* fail_page_alloc: ENOMEM */
	/* the mock's point in iommufd_get_object() (CONFIG_IOMMUFD_TEST) */
	FAIL_KIND_LOOKUP,
	NR_FAIL_KINDS,
	FAIL_KIND_NONE = NR_FAIL_KINDS,	/* nothing counted down */
	FAIL_KIND_MANY,			/* more than one: a broken oracle */
};

/* The debugfs directory of each attribute: "failslab"... */
extern const char *const fail_attr[NR_FAIL_KINDS];

const char *fail_kind_str(enum fail_kind k);

struct fail_times {
	long t[NR_FAIL_KINDS];	/* -1: no such attribute */
};

void fail_times_read(struct fail_times *ft);

/* Which attribute counted down between @a and @b. */
enum fail_kind fail_kind_between(const struct fail_times *a,
				 const struct fail_times *b);

/*
 * failslab (required) and the other attributes (if there) set up as the
 * kernel's iommufd_fail_nth.c does: GFP_KERNEL allocations may fail too,
 * no report in the log, "times" high. Returns NULL, or why a sweep cannot
 * run: absent (no such file), or broken ("FAIL: ...": there but not
 * working). (Not fail_nth_setup(): FIXTURE(fail_nth) defines that.)
 */
const char *failslab_setup(void);

/* This thread's fail-nth file, opened read-write. */
int fail_nth_open(void);

/* Fail the @n-th fault-injection point of this thread from now on (0: off). */
static inline int fail_nth_arm(int nth_fd, unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	return pwrite(nth_fd, buf, len, 0) == len ? 0 : -1;
}

/*
 * Disarm; true if the armed failure was injected (the file reads 0: the
 * count ran out), false if the call chain had fewer than n points.
 */
bool fail_nth_disarm(int nth_fd);

/* Disarm and close *@nth_fd if open (a teardown's); *@nth_fd = -1. */
void fail_nth_close(int *nth_fd);

/*
 * In a sweep's test: @call (an expression: 0, or the errno it failed with)
 * into @err, with the @n-th fault-injection point of this thread armed on
 * @nth_fd; @injected: whether the armed point fired; @kind: which
 * attribute counted down meanwhile.
 */
#define fail_nth_call(nth_fd, n, call, err, injected, kind)                    \
	({                                                                     \
		struct fail_times __before, __after;                           \
									       \
		fail_times_read(&__before);                                    \
		ASSERT_EQ(0, fail_nth_arm(nth_fd, n));                         \
		(err) = (call);                                                \
		(injected) = fail_nth_disarm(nth_fd);                          \
		fail_times_read(&__after);                                     \
		(kind) = fail_kind_between(&__before, &__after);               \
	})

/*
 * In a sweep's test, after a round whose armed point did not fire (the
 * call has fewer than n points: the sweep is done): the call worked and no
 * attribute counted down. @what names the round.
 */
#define fail_nth_assert_ran_through(err, kind, what)                           \
	({                                                                     \
		ASSERT_EQ(0, err)                                              \
			TH_LOG("%s: %s without an injected fault", what,       \
			       strerror(err));                                 \
		ASSERT_EQ(FAIL_KIND_NONE, kind) TH_LOG("%s", what);            \
	})

#endif /* __SELFTEST_VM_FILE_LIB_FAIL_NTH_H */
