/*
 * cu_main.h - the one main() of the CUnit test binaries: a table of tests
 * becomes a suite, the registry runs in CUnit's verbose mode, and the exit
 * status says whether everything passed.
 *
 * Depends on CUnit and libc only, so every test binary links it, the SDK's
 * too (their include root holds no server header). Main thread only.
 */
#ifndef KAA_TEST_CU_MAIN_H
#define KAA_TEST_CU_MAIN_H

#include <CUnit/CUnit.h>
#include <stddef.h>

typedef struct kaa__cu_test {
	const char *name; /* borrowed; CUnit keeps a copy */
	CU_TestFunc fn;
} kaa__cu_test;

/* The number of entries of a kaa__cu_test array (not a pointer). */
#define KAA__CU_COUNT(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Adds a suite named suite with tests[0..n), setup and teardown as its
 * CUnit init and cleanup functions (either may be NULL). Initialises the
 * registry unless a caller already did (suites that register themselves,
 * such as coord_suite_add(), need it first).
 * With KAA_TEST_ONLY set and non-empty, only tests whose name contains it
 * are added.
 * Returns 0, or -1 when the registry, the suite or one test cannot be
 * registered; the registry is then cleaned up.
 */
int kaa__cu_add(const char *suite, const kaa__cu_test *tests, size_t n, CU_InitializeFunc setup,
		CU_CleanupFunc teardown);

/*
 * Runs every registered suite in CU_BRM_VERBOSE mode and cleans up the
 * registry. Returns 0 when every test passed, 1 on a failed assertion, a
 * failed suite setup or teardown, any other CUnit error, or when no
 * registry was initialised.
 */
int kaa__cu_run_all(void);

/* kaa__cu_add() then kaa__cu_run_all(): a whole main(). Returns 0 or 1. */
int kaa__cu_run(const char *suite, const kaa__cu_test *tests, size_t n, CU_InitializeFunc setup,
		CU_CleanupFunc teardown);

#endif
