/*
 * sdk_alloc.c - the SDK's allocator for lib/base/buf: plain realloc(), so a
 * failed growth comes back as KAA_ERR_NOMEM instead of the daemons' abort
 * (the policy is in base/buf.h). libkaa never links lib/base/alloc.c.
 */
#include "base/buf.h"

#include <stdlib.h>

void *kaa__buf_realloc(void *p, size_t n)
{
	return realloc(p, n);
}
