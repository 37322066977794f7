/*
 * Rebalancing plans (lib/coord/rebalance.c): the minimum number of moves, never
 * to or from draining nodes, within the threshold afterwards; the etcd
 * encoding round-trips and refuses malformed values.
 */
#include "cu_main.h"
#include "base/error.h"
#include "coord/rebalance.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void apply(kaa__rebalance_node *nodes, size_t n, const kaa__rebalance_plan *p)
{
	for (size_t m = 0; m < p->n_moves; m++)
		for (size_t i = 0; i < n; i++) {
			if (strcmp(nodes[i].id, p->moves[m].from) == 0)
				nodes[i].sessions -= p->moves[m].sessions;
			if (strcmp(nodes[i].id, p->moves[m].to) == 0)
				nodes[i].sessions += p->moves[m].sessions;
		}
}

static void test_piled_on_one(void)
{
	kaa__rebalance_node nodes[] = {{"a", 1000, false}, {"b", 0, false}, {"c", 0, false}};
	kaa__rebalance_plan p = {0};
	CU_ASSERT_EQUAL(kaa__rebalance_compute(nodes, 3, 0.2, 10, &p), 666);
	CU_ASSERT_EQUAL(p.n_moves, 2);
	apply(nodes, 3, &p);
	CU_ASSERT_EQUAL(nodes[0].sessions, 334);
	CU_ASSERT_EQUAL(nodes[1].sessions, 333);
	CU_ASSERT_EQUAL(nodes[2].sessions, 333);
	/* balanced now: no further plan */
	CU_ASSERT_EQUAL(kaa__rebalance_compute(nodes, 3, 0.2, 10, &p), 0);
	CU_ASSERT_EQUAL(p.n_moves, 0);
}

static void test_thresholds(void)
{
	kaa__rebalance_plan p = {0};
	kaa__rebalance_node within[] = {{"a", 115, false}, {"b", 95, false}, {"c", 90, false}};
	CU_ASSERT_EQUAL(kaa__rebalance_compute(within, 3, 0.2, 1, &p), 0); /* 115 < 120 */
	kaa__rebalance_node small[] = {{"a", 5, false}, {"b", 0, false}};
	CU_ASSERT_EQUAL(kaa__rebalance_compute(small, 2, 0.2, 10, &p), 0); /* under min_sessions */
	kaa__rebalance_node one[] = {{"a", 500, false}};
	CU_ASSERT_EQUAL(kaa__rebalance_compute(one, 1, 0.2, 1, &p), 0);
	CU_ASSERT_EQUAL(kaa__rebalance_compute(one, 1, -1, 1, &p), 0);
}

static void test_draining_excluded(void)
{
	kaa__rebalance_plan p = {0};
	kaa__rebalance_node nodes[] = {
		{"a", 900, true}, {"b", 300, false}, {"c", 0, false}, {"d", 0, true}};
	CU_ASSERT_EQUAL(kaa__rebalance_compute(nodes, 4, 0.2, 10, &p), 150);
	CU_ASSERT_EQUAL_FATAL(p.n_moves, 1);
	CU_ASSERT_STRING_EQUAL(p.moves[0].from, "b");
	CU_ASSERT_STRING_EQUAL(p.moves[0].to, "c");
}

static void test_random_loads(void)
{
	srand(7);
	for (int round = 0; round < 500; round++) {
		size_t n = 2 + (size_t)(rand() % 20);
		kaa__rebalance_node nodes[22];
		char ids[22][24];
		int64_t total = 0, need = 0;
		for (size_t i = 0; i < n; i++) {
			snprintf(ids[i], sizeof(ids[i]), "n%zu", i);
			nodes[i].id = ids[i];
			nodes[i].sessions = rand() % 3 ? rand() % 1000 : rand() % 20000;
			nodes[i].draining = false;
			total += nodes[i].sessions;
		}
		int64_t ceil_mean = (total + (int64_t)n - 1) / (int64_t)n;
		for (size_t i = 0; i < n; i++)
			if (nodes[i].sessions > ceil_mean)
				need += nodes[i].sessions - ceil_mean;
		kaa__rebalance_plan p = {0};
		int64_t moved = kaa__rebalance_compute(nodes, n, 0.1, 1, &p);
		if (moved == 0)
			continue;
		CU_ASSERT(moved <= need); /* never more than the minimum */
		apply(nodes, n, &p);
		int64_t after_total = 0, max = 0;
		for (size_t i = 0; i < n; i++) {
			after_total += nodes[i].sessions;
			CU_ASSERT(nodes[i].sessions >= 0);
			if (nodes[i].sessions > max)
				max = nodes[i].sessions;
		}
		CU_ASSERT_EQUAL(after_total, total);
		CU_ASSERT(max <= ceil_mean + 1 || (double)max <= 1.1 * (double)total / (double)n);
	}
}

static void test_encoding(void)
{
	kaa__rebalance_node nodes[] = {{"ops-1", 900, false}, {"ops-2", 0, false}};
	kaa__rebalance_plan p = {.seq = 42, .created_ms = 1700000000000}, q;
	kaa__rebalance_compute(nodes, 2, 0.2, 1, &p);
	char *json = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(kaa__rebalance_encode(&p, &json, &len), KAA_OK);
	CU_ASSERT_STRING_EQUAL(json,
			       "{\"seq\":42,\"created_ms\":1700000000000,\"moves\":[{\"from\":"
			       "\"ops-1\",\"to\":\"ops-2\",\"sessions\":450}]}");
	CU_ASSERT_EQUAL_FATAL(kaa__rebalance_decode(json, len, &q), KAA_OK);
	CU_ASSERT_EQUAL(q.seq, 42);
	CU_ASSERT_EQUAL_FATAL(q.n_moves, 1);
	CU_ASSERT_STRING_EQUAL(q.moves[0].from, "ops-1");
	CU_ASSERT_EQUAL(q.moves[0].sessions, 450);
	kaa__rebalance_plan_clear(&q);
	free(json);
	const char *bad[] = {
		"",
		"[]",
		"{\"seq\":1,\"created_ms\":1}",
		"{\"seq\":\"1\",\"created_ms\":1,\"moves\":[]}",
		"{\"seq\":1,\"created_ms\":1,\"moves\":[{\"from\":\"a\",\"to\":\"b\",\"sessions\":0}]}",
		"{\"seq\":1,\"created_ms\":1,\"moves\":[{\"from\":\"\",\"to\":\"b\",\"sessions\":1}]}",
		"{\"seq\":1,\"created_ms\":1,\"moves\":[{\"from\":\"a\",\"sessions\":1}]}",
		"{\"seq\":1,\"created_ms\":1,\"moves\":[{\"from\":\"a\",\"to\":\"b\",\"sessions\":1}]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(kaa__rebalance_decode(bad[i], strlen(bad[i]), &q), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(q.n_moves, 0);
	}
}

static const kaa__cu_test tests[] = {
	{"sessions piled on one node", test_piled_on_one},
	{"threshold and minimum", test_thresholds},
	{"draining nodes excluded", test_draining_excluded},
	{"random loads: minimal and conserving", test_random_loads},
	{"etcd encoding", test_encoding},
};

int main(void)
{
	return kaa__cu_run("rebalance", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
