#include "cu_main.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

int kaa__cu_add(const char *suite, const kaa__cu_test *tests, size_t n, CU_InitializeFunc setup,
		CU_CleanupFunc teardown)
{
	const char *only = getenv("KAA_TEST_ONLY");
	CU_pSuite s;

	if (!CU_get_registry() && CU_initialize_registry() != CUE_SUCCESS)
		return -1;
	s = CU_add_suite(suite, setup, teardown);
	if (!s)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		if (only && *only && !strstr(tests[i].name, only))
			continue;
		if (!CU_add_test(s, tests[i].name, tests[i].fn))
			goto fail;
	}
	return 0;
fail:
	CU_cleanup_registry();
	return -1;
}

int kaa__cu_run_all(void)
{
	if (!CU_get_registry())
		return 1;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_ErrorCode err = CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return err != CUE_SUCCESS || failed > 0 ? 1 : 0;
}

int kaa__cu_run(const char *suite, const kaa__cu_test *tests, size_t n, CU_InitializeFunc setup,
		CU_CleanupFunc teardown)
{
	if (kaa__cu_add(suite, tests, n, setup, teardown) != 0)
		return 1;
	return kaa__cu_run_all();
}
