/*
 * The SDK's side of the buffer's OOM policy (base/buf.h): libkaa never
 * aborts, a failed growth comes back as KAA_ERR_NOMEM. This test defines
 * kaa__buf_realloc itself, so the linker takes it instead of libkaa's
 * sdk_alloc.o (which must therefore define nothing else), and makes the
 * n-th growth fail.
 */
#include "cu_main.h"
#include "base/buf.h"
#include "base/error.h"
#include "sdk_internal.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail_at = -1; /* the growth (counted from 0) that fails; -1: none */
static int grows;

void *kaa__buf_realloc(void *p, size_t n)
{
	if (grows++ == fail_at)
		return NULL;
	return realloc(p, n);
}

static void test_buf_nomem(void)
{
	kaa__buf b = {0};
	grows = 0;
	fail_at = 1;
	CU_ASSERT_EQUAL(kaa__buf_puts(&b, "first"), KAA_OK);
	char big[1000];
	memset(big, 'x', sizeof(big));
	CU_ASSERT_EQUAL(kaa__buf_put(&b, big, sizeof(big)), KAA_ERR_NOMEM);
	/* sticky; the text before the failure is intact */
	CU_ASSERT_EQUAL(kaa__buf_puts(&b, "y"), KAA_ERR_NOMEM);
	CU_ASSERT_STRING_EQUAL(b.p, "first");
	char *out = NULL;
	CU_ASSERT_EQUAL(kaa__buf_take(&b, &out, NULL), KAA_ERR_NOMEM);
	CU_ASSERT_PTR_NULL(out);
	fail_at = -1;
}

/* Every growth of the canonical form's buffer in turn fails: each time
 * the SDK returns KAA_ERR_NOMEM (no abort, no leak), and without a
 * failure it returns the text. */
static void test_canonical_nomem(void)
{
	kaa__sj *v = NULL;
	char text[4096];
	size_t n = 0;
	n += (size_t)snprintf(text + n, sizeof(text) - n, "{");
	for (int i = 0; i < 60; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\"key%02d\":\"value %d\"",
				      i ? "," : "", i, i);
	snprintf(text + n, sizeof(text) - n, "}");
	fail_at = -1;
	CU_ASSERT_EQUAL_FATAL(kaa__sj_parse(text, strlen(text), sizeof(text), 8, &v), KAA_OK);
	grows = 0;
	char *out = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(kaa__sj_canonical(v, &out, &len), KAA_OK);
	int total = grows;
	CU_ASSERT(total >= 2);
	CU_ASSERT_EQUAL(len, strlen(out));
	free(out);
	for (int k = 0; k < total; k++) {
		grows = 0;
		fail_at = k;
		out = (char *)1;
		CU_ASSERT_EQUAL(kaa__sj_canonical(v, &out, &len), KAA_ERR_NOMEM);
		CU_ASSERT_PTR_NULL(out);
	}
	fail_at = -1;
	kaa__sj_free(v);
}

static const kaa__cu_test tests[] = {
	{"buffer growth failure is KAA_ERR_NOMEM", test_buf_nomem},
	{"canonical form under allocation failure", test_canonical_nomem},
};

int main(void)
{
	return kaa__cu_run("sdk_buf", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
