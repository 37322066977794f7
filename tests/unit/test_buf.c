/*
 * The one growable buffer (lib/base/buf.c) as the daemons link it: growth
 * across many doublings, unbounded printf, the max bound and its sticky
 * KAA_ERR_TOO_BIG, take/reset/free. The SDK's KAA_ERR_NOMEM path is tested
 * in tests/sdk/test_sdk_buf.c (the daemons' allocator aborts instead).
 */
#include "cu_main.h"
#include "base/buf.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static void test_growth(void)
{
	kaa__buf b = {0};
	CU_ASSERT_PTR_NULL(b.p);
	for (int i = 0; i < 10000; i++)
		CU_ASSERT_EQUAL(kaa__buf_put(&b, "abc", 3), KAA_OK);
	CU_ASSERT_EQUAL(b.len, 30000);
	CU_ASSERT(b.cap > b.len);
	CU_ASSERT_EQUAL(b.p[b.len], '\0');
	CU_ASSERT(memcmp(b.p + 29997, "abc", 3) == 0);
	/* embedded NULs are bytes like any other */
	CU_ASSERT_EQUAL(kaa__buf_put(&b, "x\0y", 3), KAA_OK);
	CU_ASSERT_EQUAL(b.len, 30003);
	CU_ASSERT_EQUAL(b.p[30001], '\0');
	kaa__buf_free(&b);
	CU_ASSERT_PTR_NULL(b.p);
	CU_ASSERT_EQUAL(b.len, 0);
	kaa__buf_free(NULL);
}

static void test_printf(void)
{
	kaa__buf b = {0};
	char big[5000];
	memset(big, 'q', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_EQUAL(kaa__buf_printf(&b, "%d-%s", 42, "x"), KAA_OK);
	CU_ASSERT_STRING_EQUAL(b.p, "42-x");
	/* longer than any internal scratch: never truncated */
	CU_ASSERT_EQUAL(kaa__buf_printf(&b, "[%s]", big), KAA_OK);
	CU_ASSERT_EQUAL(b.len, 4 + 2 + strlen(big));
	CU_ASSERT_EQUAL(b.p[4], '[');
	CU_ASSERT_EQUAL(b.p[b.len - 1], ']');
	CU_ASSERT_EQUAL(b.p[b.len], '\0');
	kaa__buf_free(&b);
}

static void test_max(void)
{
	kaa__buf b = {.max = 8};
	CU_ASSERT_EQUAL(kaa__buf_puts(&b, "12345678"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__buf_put(&b, "9", 1), KAA_ERR_TOO_BIG);
	/* sticky, and the text before the failure is intact */
	CU_ASSERT_EQUAL(b.err, KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__buf_put(&b, "", 0), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__buf_printf(&b, "%s", ""), KAA_ERR_TOO_BIG);
	CU_ASSERT_STRING_EQUAL(b.p, "12345678");
	/* reset clears the error and keeps the bound */
	kaa__buf_reset(&b);
	CU_ASSERT_EQUAL(b.err, KAA_OK);
	CU_ASSERT_EQUAL(b.len, 0);
	CU_ASSERT_STRING_EQUAL(b.p, "");
	CU_ASSERT_EQUAL(kaa__buf_printf(&b, "%s", "123456789"), KAA_ERR_TOO_BIG);
	kaa__buf_reset(&b);
	/* a huge n cannot overflow the size arithmetic */
	kaa__buf u = {0};
	CU_ASSERT_EQUAL(kaa__buf_put(&u, "a", 1), KAA_OK);
	CU_ASSERT_EQUAL(kaa__buf_put(&u, "a", (size_t)-1), KAA_ERR_TOO_BIG);
	kaa__buf_free(&u);
	/* a failed take frees the text and hands out nothing */
	char *out = (char *)1;
	size_t len = 7;
	kaa__buf_puts(&b, "123456789");
	CU_ASSERT_EQUAL(kaa__buf_take(&b, &out, &len), KAA_ERR_TOO_BIG);
	CU_ASSERT_PTR_NULL(out);
	CU_ASSERT_EQUAL(len, 0);
	CU_ASSERT_PTR_NULL(b.p);
	CU_ASSERT_EQUAL(b.max, 8);
	CU_ASSERT_EQUAL(b.err, KAA_OK);
}

static void test_take_and_fail(void)
{
	kaa__buf b = {0};
	char *out = NULL;
	size_t len = 7;
	/* nothing appended: "" rather than NULL */
	CU_ASSERT_EQUAL(kaa__buf_take(&b, &out, &len), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_STRING_EQUAL(out, "");
	CU_ASSERT_EQUAL(len, 0);
	free(out);
	kaa__buf_puts(&b, "hello");
	CU_ASSERT_EQUAL(kaa__buf_take(&b, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "hello");
	CU_ASSERT_PTR_NULL(b.p);
	free(out);
	/* a caller's own failure halfway through is sticky too */
	kaa__buf_puts(&b, "half");
	CU_ASSERT_EQUAL(kaa__buf_fail(&b, KAA_ERR_INVAL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__buf_fail(&b, KAA_ERR_IO), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__buf_puts(&b, "more"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__buf_take(&b, &out, &len), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(out);
}

static const kaa__cu_test tests[] = {
	{"growth", test_growth},
	{"printf never truncates", test_printf},
	{"max bound, sticky errors, reset", test_max},
	{"take and fail", test_take_and_fail},
};

int main(void)
{
	return kaa__cu_run("buf", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
