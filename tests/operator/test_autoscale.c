/* The operations autoscaler: the recommendation formula, scale up at once,
 * scale down only after the stabilisation window, flapping input that
 * never flaps the output, drain selection, and reading node records. */
#include "cu_main.h"
#include "autoscale.h"
#include "coord/coord.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static kaa__autoscale_input in(int64_t total, int32_t current, int64_t now)
{
	kaa__autoscale_input i = {.total_sessions = total,
				  .current = current,
				  .min = 2,
				  .max = 10,
				  .target = 100,
				  .window_ms = 1000,
				  .now_ms = now};
	return i;
}

static void test_recommend(void)
{
	kaa__autoscale_input i = in(0, 3, 1);
	CU_ASSERT_EQUAL(kaa__autoscale_recommend(&i), 2); /* min */
	i.total_sessions = 201;
	CU_ASSERT_EQUAL(kaa__autoscale_recommend(&i), 3); /* ceil */
	i.total_sessions = 200;
	CU_ASSERT_EQUAL(kaa__autoscale_recommend(&i), 2);
	i.total_sessions = 100000;
	CU_ASSERT_EQUAL(kaa__autoscale_recommend(&i), 10); /* max */
	i.total_sessions = -5;
	i.target = 0;
	i.min = 0;
	i.max = -1;
	CU_ASSERT_EQUAL(kaa__autoscale_recommend(&i), 1); /* normalised bounds */
}

static void test_up_now_down_later(void)
{
	kaa__autoscale_state st = {0};
	kaa__autoscale_input i = in(750, 2, 1000);

	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 8); /* up at once */
	i = in(150, 8, 2000);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 8); /* window starts */
	i = in(350, 8, 2500);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 8);
	i = in(150, 8, 2999);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 8);
	i = in(150, 8, 3000);
	/* the highest recommendation of the window (4), not the last (2) */
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 4);
	i = in(150, 4, 3100);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 4); /* a new window */
	i = in(150, 4, 4100);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 2);
	/* bounds changed below the current count: follow at once */
	i = in(150, 12, 5000);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 10);
	i = in(0, 1, 5000);
	CU_ASSERT_EQUAL(kaa__autoscale_decide(&st, &i), 2);
}

static void test_flapping(void)
{
	kaa__autoscale_state st = {0};
	int32_t cur = 5, changes = 0;

	/* load oscillates around the 4/5 threshold every 100 ms for 20 windows */
	for (int64_t t = 1; t < 20000; t += 100) {
		kaa__autoscale_input i = in((t / 100) % 2 ? 450 : 390, cur, t);
		int32_t d = kaa__autoscale_decide(&st, &i);
		if (d != cur)
			changes++;
		cur = d;
	}
	CU_ASSERT_EQUAL(changes, 0);
	CU_ASSERT_EQUAL(cur, 5);
	/* a steady lower load does come down, once */
	changes = 0;
	for (int64_t t = 20000; t < 40000; t += 100) {
		kaa__autoscale_input i = in(390, cur, t);
		int32_t d = kaa__autoscale_decide(&st, &i);
		if (d != cur)
			changes++;
		cur = d;
	}
	CU_ASSERT_EQUAL(changes, 1);
	CU_ASSERT_EQUAL(cur, 4);
}

static void test_pick_drain(void)
{
	kaa__autoscale_node n[4] = {
		{"a", 50, false}, {"b", 10, false}, {"c", 10, true}, {"d", 10, false}};
	size_t pick[4];

	CU_ASSERT_EQUAL(kaa__autoscale_pick_drain(n, 4, 2, pick), 2);
	CU_ASSERT_EQUAL(pick[0], 1); /* b: fewest, before d by id; c already draining */
	CU_ASSERT_EQUAL(pick[1], 3);
	CU_ASSERT_EQUAL(kaa__autoscale_pick_drain(n, 4, 4, pick), 3);
	CU_ASSERT_EQUAL(pick[2], 0);
	CU_ASSERT_EQUAL(kaa__autoscale_pick_drain(n, 0, 2, pick), 0);
}

static void put(kaa__coord *c, const char *key, const char *val)
{
	CU_ASSERT_EQUAL(kaa__coord_put(c, key, val, strlen(val), 0, NULL), KAA_OK);
}

static void test_read(void)
{
	kaa__coord *c = NULL;
	kaa__autoscale_node *nodes = NULL;
	size_t n = 0;
	int64_t total = -1;

	CU_ASSERT_EQUAL_FATAL(kaa__coord_new_local(&c), KAA_OK);
	put(c, "/kaa/x/nodes/op-1",
	    "{\"id\":\"op-1\",\"services\":[\"operations\"],\"sessions\":120,\"draining\":false}");
	put(c, "/kaa/x/nodes/op-2",
	    "{\"id\":\"op-2\",\"services\":[\"operations\"],\"sessions\":30}");
	put(c, "/kaa/x/nodes/ctl", "{\"id\":\"ctl\",\"services\":[\"control\"],\"sessions\":99}");
	put(c, "/kaa/x/nodes/bad", "{\"services\":");
	put(c, "/kaa/y/nodes/op-9",
	    "{\"id\":\"op-9\",\"services\":[\"operations\"],\"sessions\":7}");
	CU_ASSERT_EQUAL(kaa__autoscale_read(c, "x", &nodes, &n, &total), KAA_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_EQUAL(total, 150);
	if (n == 2) {
		CU_ASSERT_STRING_EQUAL(nodes[0].id, "op-1");
		CU_ASSERT_EQUAL(nodes[1].sessions, 30);
	}
	free(nodes);
	CU_ASSERT_EQUAL(kaa__autoscale_read(c, "none", &nodes, &n, &total), KAA_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_EQUAL(total, 0);
	free(nodes);
	CU_ASSERT_EQUAL(kaa__autoscale_read(c, "", &nodes, &n, &total), KAA_ERR_INVAL);
	kaa__coord_free(c);
}

static const kaa__cu_test tests[] = {
	{"recommendation: ceil(total/target) within bounds", test_recommend},
	{"scale up at once, down after the window", test_up_now_down_later},
	{"flapping load does not flap replicas", test_flapping},
	{"drain picks the emptiest nodes not draining", test_pick_drain},
	{"reads operations node records from the store", test_read},
};

int main(void)
{
	return kaa__cu_run("autoscale", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
