/*
 * Owner placement (lib/coord/rendezvous.c): balance, order independence, and the
 * minimal movement that makes node joins and failures cheap.
 */
#include "cu_main.h"
#include "coord/rendezvous.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#define KEYS 60000

static char node_ids[12][32];
static const char *nodes[12];

static void setup_nodes(void)
{
	for (int i = 0; i < 12; i++) {
		snprintf(node_ids[i], sizeof(node_ids[i]), "kaa-operations-%d", i);
		nodes[i] = node_ids[i];
	}
}

static const char *key(int i)
{
	static char buf[32];
	snprintf(buf, sizeof(buf), "owner-%d", i);
	return buf;
}

static void test_balance(void)
{
	long count[10] = {0};
	for (int i = 0; i < KEYS; i++) {
		long k = kaa__rendezvous_pick(key(i), nodes, 10);
		CU_ASSERT_FATAL(k >= 0 && k < 10);
		count[k]++;
	}
	/* expected 6000 each; binomial sd ~73: 10% is > 8 sd */
	for (int j = 0; j < 10; j++)
		CU_ASSERT(count[j] > KEYS / 10 * 9 / 10 && count[j] < KEYS / 10 * 11 / 10);
}

static void test_order_independent(void)
{
	const char *rev[10];
	for (int j = 0; j < 10; j++)
		rev[j] = nodes[9 - j];
	for (int i = 0; i < 2000; i++) {
		long a = kaa__rendezvous_pick(key(i), nodes, 10);
		long b = kaa__rendezvous_pick(key(i), rev, 10);
		CU_ASSERT_STRING_EQUAL(nodes[a], rev[b]);
	}
}

static void test_node_leaves(void)
{
	/* remove node 3 */
	const char *fewer[9];
	for (int j = 0, k = 0; j < 10; j++)
		if (j != 3)
			fewer[k++] = nodes[j];
	int moved = 0, wrongly = 0;
	for (int i = 0; i < KEYS; i++) {
		const char *before = nodes[kaa__rendezvous_pick(key(i), nodes, 10)];
		const char *after = fewer[kaa__rendezvous_pick(key(i), fewer, 9)];
		if (strcmp(before, after) != 0) {
			moved++;
			wrongly += strcmp(before, nodes[3]) != 0;
		}
	}
	CU_ASSERT_EQUAL(wrongly, 0); /* only the departed node's owners move */
	CU_ASSERT(moved > KEYS / 10 * 9 / 10 && moved < KEYS / 10 * 11 / 10);
}

static void test_node_joins(void)
{
	int moved = 0, elsewhere = 0;
	for (int i = 0; i < KEYS; i++) {
		const char *before = nodes[kaa__rendezvous_pick(key(i), nodes, 10)];
		const char *after = nodes[kaa__rendezvous_pick(key(i), nodes, 11)];
		if (strcmp(before, after) != 0) {
			moved++;
			elsewhere += strcmp(after, nodes[10]) != 0;
		}
	}
	CU_ASSERT_EQUAL(elsewhere, 0); /* movers go to the new node only */
	CU_ASSERT(moved > KEYS / 11 * 9 / 10 && moved < KEYS / 11 * 11 / 10);
}

static void test_edges(void)
{
	CU_ASSERT_EQUAL(kaa__rendezvous_pick("o", nodes, 0), -1);
	CU_ASSERT_EQUAL(kaa__rendezvous_pick(NULL, nodes, 3), -1);
	CU_ASSERT_EQUAL(kaa__rendezvous_pick("o", NULL, 3), -1);
	CU_ASSERT_EQUAL(kaa__rendezvous_pick("o", nodes, 1), 0);
	const char *with_null[2] = {"a", NULL};
	CU_ASSERT_EQUAL(kaa__rendezvous_pick("o", with_null, 2), -1);
	/* the separator keeps concatenations apart */
	CU_ASSERT_NOT_EQUAL(kaa__rendezvous_score("ab", "c"), kaa__rendezvous_score("a", "bc"));
	CU_ASSERT_EQUAL(kaa__rendezvous_score("", ""), kaa__rendezvous_score("", ""));
}

static const kaa__cu_test tests[] = {
	{"balance over 10 nodes", test_balance},
	{"node order does not matter", test_order_independent},
	{"a node leaves: only its owners move", test_node_leaves},
	{"a node joins: only owners to it move", test_node_joins},
	{"edge cases", test_edges},
};

int main(void)
{
	setup_nodes();
	return kaa__cu_run("rendezvous", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
