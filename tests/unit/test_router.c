/* REST routing: patterns, captures, 404 vs 405, percent-decoding. */
#include "cu_main.h"
#include "control/router.h"

#include <CUnit/Basic.h>
#include <string.h>

static const kaa__route routes[] = {
	{"GET", "/api/v1/tenants", 1},
	{"POST", "/api/v1/tenants", 2},
	{"GET", "/api/v1/tenants/{tenant}", 3},
	{"DELETE", "/api/v1/tenants/{tenant}", 4},
	{"GET", "/api/v1/tenants/{tenant}/applications/{app}", 5},
};
#define N (sizeof(routes) / sizeof(routes[0]))

static void test_match(void)
{
	const kaa__route *r;
	kaa__route_params p;
	char allow[64];

	CU_ASSERT_EQUAL(kaa__route_match(routes, N, "GET", "/api/v1/tenants", &r, &p, NULL, 0),
			KAA_ROUTE_FOUND);
	CU_ASSERT_EQUAL(r->id, 1);
	CU_ASSERT_EQUAL(kaa__route_match(routes, N, "POST", "/api/v1/tenants", &r, &p, NULL, 0),
			KAA_ROUTE_FOUND);
	CU_ASSERT_EQUAL(r->id, 2);
	CU_ASSERT_EQUAL(kaa__route_match(routes, N, "GET", "/api/v1/tenants/t1/applications/a%20b",
					 &r, &p, NULL, 0),
			KAA_ROUTE_FOUND);
	CU_ASSERT_EQUAL(r->id, 5);
	CU_ASSERT_STRING_EQUAL(kaa__route_param(&p, "tenant"), "t1");
	CU_ASSERT_STRING_EQUAL(kaa__route_param(&p, "app"), "a b");
	CU_ASSERT_PTR_NULL(kaa__route_param(&p, "ten"));
	CU_ASSERT_EQUAL(kaa__route_match(routes, N, "HEAD", "/api/v1/tenants/x", &r, &p, NULL, 0),
			KAA_ROUTE_FOUND);
	CU_ASSERT_EQUAL(r->id, 3);
	CU_ASSERT_EQUAL(kaa__route_match(routes, N, "PUT", "/api/v1/tenants/x", &r, &p, allow,
					 sizeof(allow)),
			KAA_ROUTE_NO_METHOD);
	CU_ASSERT_STRING_EQUAL(allow, "GET, DELETE");
	static const char *missing[] = {"/api/v1/tenants/",
					"/api/v1/tenant",
					"/api/v1/tenants/x/y",
					"/api/v1/tenants//applications/a",
					"",
					"api/v1/tenants",
					"/api/v1/tenants/%2F",
					"/api/v1/tenants/%00",
					"/api/v1/tenants/%4",
					"/api/v1/tenants/%zz"};
	for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++)
		CU_ASSERT_EQUAL(kaa__route_match(routes, N, "GET", missing[i], &r, &p, NULL, 0),
				KAA_ROUTE_NO_PATH);
	char longseg[400] = "/api/v1/tenants/";
	memset(longseg + strlen(longseg), 'x', 300);
	CU_ASSERT_EQUAL(kaa__route_match(routes, N, "GET", longseg, &r, &p, NULL, 0),
			KAA_ROUTE_NO_PATH);
}

static void test_decode(void)
{
	char out[8];
	CU_ASSERT_TRUE(kaa__percent_decode("a%41", 4, out, sizeof(out)));
	CU_ASSERT_STRING_EQUAL(out, "aA");
	CU_ASSERT_FALSE(kaa__percent_decode("%4", 2, out, sizeof(out)));
	CU_ASSERT_FALSE(kaa__percent_decode("%", 1, out, sizeof(out)));
	CU_ASSERT_FALSE(kaa__percent_decode("12345678", 8, out, sizeof(out)));
	CU_ASSERT_TRUE(kaa__percent_decode("1234567", 7, out, sizeof(out)));
}

static const kaa__cu_test tests[] = {
	{"matching, captures, 404/405", test_match},
	{"percent-decoding", test_decode},
};

int main(void)
{
	return kaa__cu_run("router", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
