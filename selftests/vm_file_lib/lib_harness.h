/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * kselftest_harness.h for an object of a library (vm_file_lib, a suite's
 * *_utils.c): its types, ASSERT_*() and EXPECT_*(), which act on the
 * struct __test_metadata *_metadata a function is given.
 *
 * The harness is written for one translation unit per program: it defines
 * the global _fixture_global (not static: a second object that includes it
 * as is fails to link) and the static test_harness_run() (unused here).
 * Each library object defines VM_FILE_LIB_UNIT (a name of its own) before
 * including anything, which gives its copy of _fixture_global a name of its
 * own. The test and fixture lists stay the program's: a library object
 * never registers, walks or runs tests (the kmsg oracle's part that does is
 * kmsg_oracle.h's, compiled into each program).
 */
#ifndef __SELFTEST_VM_FILE_LIB_HARNESS_H
#define __SELFTEST_VM_FILE_LIB_HARNESS_H

#ifndef VM_FILE_LIB_UNIT
#error "lib_harness.h is for library objects: define VM_FILE_LIB_UNIT first"
#endif

#define __vm_file_lib_cat2(a, b)	a##b
#define __vm_file_lib_cat(a, b)		__vm_file_lib_cat2(a, b)
#define _fixture_global	__vm_file_lib_cat(_fixture_global_, VM_FILE_LIB_UNIT)

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "kselftest_harness.h"
#pragma GCC diagnostic pop

#undef _fixture_global

#endif /* __SELFTEST_VM_FILE_LIB_HARNESS_H */
