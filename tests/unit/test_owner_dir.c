/*
 * The home node's owner directory (services/cluster/owner_dir.c): routing
 * only among one owner's connected endpoints, by sink class, never back to
 * the source; moves between nodes; node loss; bounds.
 */
#include "cu_main.h"
#include "base/error.h"
#include "cluster/owner_dir.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

static char got[64][128];
static size_t n_got;

/* Records "node:key,key" per delivery. */
static void record(void *ud, const char *node, const char *const *eps, size_t n)
{
	(void)ud;
	char *s = got[n_got++];
	int w = snprintf(s, 128, "%s:", node);
	for (size_t i = 0; i < n; i++)
		w += snprintf(s + w, 128 - (size_t)w, "%s%s", i ? "," : "", eps[i]);
}

static size_t route(kaa__owner_dir *d, int64_t app, const char *owner, const char *src,
		    const char *fqn, const char *target)
{
	n_got = 0;
	return kaa__owner_dir_route(d, app, owner, src, fqn, target, record, NULL);
}

static void setup(kaa__owner_dir *d)
{
	const char *a[] = {"A"}, *ab[] = {"A", "B"}, *b[] = {"B"};
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e1", "n1", true, a, 1), KAA_OK);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e2", "n2", true, ab, 2), KAA_OK);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e3", "n2", true, b, 1), KAA_OK);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e4", "n3", true, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o2", "e5", "n1", true, a, 1), KAA_OK);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 2, "o1", "e6", "n1", true, a, 1), KAA_OK);
}

static void test_routing(void)
{
	kaa__owner_dir *d = kaa__owner_dir_new();
	setup(d);
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "A", NULL), 1);
	CU_ASSERT_EQUAL(n_got, 1);
	CU_ASSERT_STRING_EQUAL(got[0], "n2:e2");
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e4", "A", ""), 2);
	CU_ASSERT_EQUAL_FATAL(n_got, 2);
	CU_ASSERT_STRING_EQUAL(got[0], "n1:e1");
	CU_ASSERT_STRING_EQUAL(got[1], "n2:e2");
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "B", NULL), 2);
	CU_ASSERT_STRING_EQUAL(got[0], "n2:e2,e3"); /* one delivery per node */
	/* unicast */
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "B", "e3"), 1);
	CU_ASSERT_STRING_EQUAL(got[0], "n2:e3");
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "A", "e3"), 0); /* e3 is no A sink */
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "A", "e5"), 0); /* another owner's */
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "A", "e1"), 0); /* never to the source */
	/* owners and applications are separate */
	CU_ASSERT_EQUAL(route(d, 1, "o2", "e5", "A", NULL), 0);
	CU_ASSERT_EQUAL(route(d, 2, "o1", NULL, "A", NULL), 1);
	CU_ASSERT_STRING_EQUAL(got[0], "n1:e6");
	CU_ASSERT_EQUAL(route(d, 3, "o1", NULL, "A", NULL), 0);
	CU_ASSERT_EQUAL(n_got, 0);
	/* listeners */
	char **l = NULL;
	const char *fa[] = {"A"}, *fab[] = {"A", "B"};
	CU_ASSERT_EQUAL(kaa__owner_dir_listeners(d, 1, "o1", "e1", fa, 1, &l), 1);
	CU_ASSERT_STRING_EQUAL(l[0], "e2");
	kaa__owner_dir_strings_free(l, 1);
	CU_ASSERT_EQUAL(kaa__owner_dir_listeners(d, 1, "o1", "e4", fab, 2, &l), 1);
	kaa__owner_dir_strings_free(l, 1);
	CU_ASSERT_EQUAL(kaa__owner_dir_listeners(d, 1, "o1", "e2", fab, 2, &l), 0);
	CU_ASSERT_PTR_NULL(l);
	kaa__owner_dir_free(d);
}

static size_t owner_count;
static void count_owner(void *ud, int64_t app, const char *id)
{
	(void)ud;
	(void)app;
	(void)id;
	owner_count++;
}

static void test_moves_and_loss(void)
{
	kaa__owner_dir *d = kaa__owner_dir_new();
	setup(d);
	const char *ab[] = {"A", "B"};
	/* e2 moves n2 -> n3; the old node's late "gone" does not undo it */
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e2", "n3", true, ab, 2), KAA_OK);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e2", "n2", false, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e1", "A", NULL), 1);
	CU_ASSERT_STRING_EQUAL(got[0], "n3:e2");
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o1", "e2", "n3", false, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e4", "A", NULL), 1); /* only e1 left */
	/* node n1 is lost: e1, e5 and e6 go, and with them owner o2 and (2, o1) */
	CU_ASSERT_EQUAL(kaa__owner_dir_drop_node(d, "n1"), 3);
	CU_ASSERT_EQUAL(route(d, 1, "o1", "e4", "A", NULL), 0);
	owner_count = 0;
	kaa__owner_dir_each_owner(d, count_owner, NULL);
	CU_ASSERT_EQUAL(owner_count, 1); /* only (1, o1) with e3 and e4 */
	kaa__owner_dir_forget_owner(d, 1, "o1");
	owner_count = 0;
	kaa__owner_dir_each_owner(d, count_owner, NULL);
	CU_ASSERT_EQUAL(owner_count, 0);
	CU_ASSERT_EQUAL(route(d, 1, "o1", "x", "B", NULL), 0);
	kaa__owner_dir_free(d);
}

static void test_many_and_bounds(void)
{
	kaa__owner_dir *d = kaa__owner_dir_new();
	char owner[32], key[32];
	const char *a[] = {"A"};
	for (int i = 0; i < 10000; i++) {
		snprintf(owner, sizeof(owner), "owner-%d", i);
		snprintf(key, sizeof(key), "ep-%d", i);
		CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, owner, key, "n1", true, a, 1), KAA_OK);
		snprintf(key, sizeof(key), "ep2-%d", i);
		CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, owner, key, "n2", true, a, 1), KAA_OK);
	}
	owner_count = 0;
	kaa__owner_dir_each_owner(d, count_owner, NULL);
	CU_ASSERT_EQUAL(owner_count, 10000);
	int ok = 0;
	for (int i = 0; i < 10000; i += 97) {
		snprintf(owner, sizeof(owner), "owner-%d", i);
		snprintf(key, sizeof(key), "ep-%d", i);
		ok += route(d, 1, owner, key, "A", NULL) == 1 && strncmp(got[0], "n2:ep2-", 7) == 0;
	}
	CU_ASSERT_EQUAL(ok, 104);
	CU_ASSERT_EQUAL(kaa__owner_dir_drop_node(d, "n2"), 10000);
	/* bounds and bad input */
	const char *many[KAA_OWNER_DIR_MAX_SINKS + 1];
	for (size_t i = 0; i <= KAA_OWNER_DIR_MAX_SINKS; i++)
		many[i] = "A";
	CU_ASSERT_EQUAL(
		kaa__owner_dir_update(d, 1, "o", "e", "n", true, many, KAA_OWNER_DIR_MAX_SINKS + 1),
		KAA_ERR_TOO_BIG);
	for (int i = 0; i < KAA_OWNER_DIR_MAX_ENDPOINTS; i++) {
		snprintf(key, sizeof(key), "k-%d", i);
		CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 9, "big", key, "n", true, NULL, 0),
				KAA_OK);
	}
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 9, "big", "one-more", "n", true, NULL, 0),
			KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "", "e", "n", true, NULL, 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o", "e", NULL, true, NULL, 0), KAA_ERR_INVAL);
	const char *empty[] = {""};
	CU_ASSERT_EQUAL(kaa__owner_dir_update(d, 1, "o", "e", "n", true, empty, 1), KAA_ERR_INVAL);
	kaa__owner_dir_free(d);
	kaa__owner_dir_free(NULL);
}

static const kaa__cu_test tests[] = {
	{"routing within an owner", test_routing},
	{"moves and node loss", test_moves_and_loss},
	{"many owners and bounds", test_many_and_bounds},
};

int main(void)
{
	return kaa__cu_run("owner_dir", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
