/*
 * The etcd key layout (lib/coord/keys.c): every key BRIEF.md fixes, and
 * the refusal when a key does not fit.
 */
#include "cu_main.h"
#include "base/error.h"
#include "coord/keys.h"

#include <CUnit/Basic.h>
#include <string.h>

static void test_layout(void)
{
	char k[KAA__KEY_MAX];
	CU_ASSERT_EQUAL(kaa__key_cluster(k, sizeof(k), "kaa"), 9);
	CU_ASSERT_STRING_EQUAL(k, "/kaa/kaa/");
	kaa__key_nodes(k, sizeof(k), "c1");
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/nodes/");
	kaa__key_node(k, sizeof(k), "c1", "ops-0");
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/nodes/ops-0");
	kaa__key_leader(k, sizeof(k), "c1");
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/control/leader");
	kaa__key_apps(k, sizeof(k), "c1");
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/apps/");
	kaa__key_app(k, sizeof(k), "c1", 42);
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/apps/42/");
	kaa__key_app_rev(k, sizeof(k), "c1", 42);
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/apps/42/rev");
	kaa__key_drains(k, sizeof(k), "c1");
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/drain/");
	kaa__key_drain(k, sizeof(k), "c1", "ops-0");
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/drain/ops-0");
	CU_ASSERT_EQUAL(kaa__key_rebalance(k, sizeof(k), "c1"), (int)strlen("/kaa/c1/rebalance"));
	CU_ASSERT_STRING_EQUAL(k, "/kaa/c1/rebalance");
}

static void test_too_big(void)
{
	char k[16];
	CU_ASSERT_EQUAL(kaa__key_node(k, sizeof(k), "cluster", "a-long-node-id"), KAA_ERR_TOO_BIG);
	CU_ASSERT_STRING_EQUAL(k, "");
	CU_ASSERT_EQUAL(kaa__key_nodes(k, 14, "c1"), KAA_ERR_TOO_BIG); /* NUL does not fit */
	CU_ASSERT_EQUAL(kaa__key_nodes(k, 15, "c1"), 14);
}

static const kaa__cu_test tests[] = {
	{"layout", test_layout},
	{"too big", test_too_big},
};

int main(void)
{
	return kaa__cu_run("keys", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
