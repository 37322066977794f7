/* The coord suite on the standalone in-process backend. */
#include "cu_main.h"
#include "coord_suite.h"

#include <CUnit/Basic.h>
#include <stdlib.h>

static kaa__coord *make_local(void)
{
	kaa__coord *c = NULL;
	if (kaa__coord_new_local(&c) != 0)
		abort();
	return c;
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (coord_suite_add("coord-local", make_local) != 0)
		return 1;
	return kaa__cu_run_all();
}
