/*
 * The coord suite against a real etcd ($KAA_TEST_ETCD), plus what only a
 * real server shows: a watch spanning a kill -9 and restart of etcd loses
 * and repeats no event, and the client recovers from an unreachable etcd.
 */
#include "cu_main.h"
#include "coord_suite.h"

#include "base/clock.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *endpoint;

static kaa__coord *make_etcd(void)
{
	kaa__coord *c = NULL;
	kaa__coord_opts o = {.call_timeout_ms = 2000};
	if (kaa__coord_new_etcd(endpoint, &o, &c) != 0)
		abort();
	return c;
}

static int harness(const char *verb)
{
	char cmd[1024];
	snprintf(cmd, sizeof(cmd), "\"%s\" %s etcd \"%s\" >/dev/null", getenv("KAA_HARNESS"), verb,
		 getenv("KAA_TEST_ETCD_DIR"));
	return system(cmd);
}

typedef struct count_at_least {
	rec_watch *r;
	size_t n;
} count_at_least;

static bool has_count(void *arg)
{
	count_at_least *ca = arg;
	return rec_count(ca->r) >= ca->n;
}

static bool reachable(void *arg)
{
	kaa__kv_list l;
	int rc = kaa__coord_range(arg, "/kaatest-ping", false, &l);
	kaa__kv_list_clear(&l);
	return rc == KAA_OK;
}

static void test_watch_across_restart(void)
{
	kaa__coord *c = make_etcd(), *w_c = make_etcd();
	rec_watch r;
	kaa__watch *w = NULL;
	char prefix[128], key[160], val[16];

	snprintf(prefix, sizeof(prefix), "/kaatest/restart-%d/", (int)getpid());
	rec_init(&r);
	CU_ASSERT_EQUAL_FATAL(
		kaa__coord_watch(w_c, prefix, KAA_WATCH_PREFIX | KAA_WATCH_SNAPSHOT, 0, &r.cb, &w),
		KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(has_reset, &r, 5000));
	for (int i = 0; i < 10; i++) {
		snprintf(key, sizeof(key), "%sk%02d", prefix, i);
		snprintf(val, sizeof(val), "%d", i);
		CU_ASSERT_EQUAL(kaa__coord_put(c, key, val, strlen(val), 0, NULL), KAA_OK);
	}
	count_at_least ca = {&r, 10};
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &ca, 5000));

	CU_ASSERT_EQUAL_FATAL(harness("kill"), 0);
	/* While etcd is down calls fail cleanly (no crash, no hang). */
	kaa__kv kv;
	CU_ASSERT_NOT_EQUAL(kaa__coord_get(c, key, &kv, NULL), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(harness("restart"), 0);
	CU_ASSERT_TRUE_FATAL(kaa__test_wait_until(reachable, c, 15000));
	/* Written right after the restart, possibly before the watch is back:
	 * the watch resumes from its revision and must see each exactly once. */
	for (int i = 10; i < 20; i++) {
		snprintf(key, sizeof(key), "%sk%02d", prefix, i);
		snprintf(val, sizeof(val), "%d", i);
		CU_ASSERT_EQUAL(kaa__coord_put(c, key, val, strlen(val), 0, NULL), KAA_OK);
	}
	ca.n = 20;
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &ca, 15000));
	/* Give a duplicate a chance to show up before counting. */
	snprintf(key, sizeof(key), "%szz-marker", prefix);
	CU_ASSERT_EQUAL(kaa__coord_put(c, key, "m", 1, 0, NULL), KAA_OK);
	ca.n = 21;
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &ca, 5000));
	pthread_mutex_lock(&r.mu);
	CU_ASSERT_EQUAL(r.n, 21);
	for (size_t i = 0; i < r.n && i < 20; i++) {
		char want[200];
		snprintf(want, sizeof(want), "P:%sk%02zu=%zu", prefix, i, i);
		CU_ASSERT_STRING_EQUAL(r.keys[i], want);
	}
	for (size_t i = 1; i < r.n; i++)
		CU_ASSERT(r.revs[i] > r.revs[i - 1]);
	CU_ASSERT_EQUAL(r.resets, 1); /* only the initial snapshot */
	pthread_mutex_unlock(&r.mu);
	kaa__coord_watch_free(w);
	kaa__coord_delete(c, prefix, true, NULL);
	rec_free(&r);
	kaa__coord_free(c);
	kaa__coord_free(w_c);
}

static void test_unreachable(void)
{
	kaa__coord *c = NULL;
	kaa__coord_opts o = {.call_timeout_ms = 500};
	kaa__kv kv;
	/* A port nothing listens on: errors come back within the deadline. */
	CU_ASSERT_EQUAL_FATAL(kaa__coord_new_etcd("http://127.0.0.1:1", &o, &c), KAA_OK);
	int64_t t0 = kaa__now_ms();
	int rc = kaa__coord_get(c, "/x", &kv, NULL);
	CU_ASSERT(rc == KAA_ERR_UNAVAILABLE || rc == KAA_ERR_TIMEOUT);
	CU_ASSERT(kaa__now_ms() - t0 < 3000);
	kaa__coord_free(c);
	CU_ASSERT_EQUAL(kaa__coord_new_etcd("https://127.0.0.1:1", NULL, &c), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__coord_new_etcd("", NULL, &c), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__coord_new_etcd("http://nocolon", NULL, &c), KAA_ERR_INVAL);
}

static const kaa__cu_test faults[] = {
	{"unreachable etcd fails fast and cleanly", test_unreachable},
	{"watch across etcd kill -9 and restart", test_watch_across_restart},
};

int main(void)
{
	endpoint = getenv("KAA_TEST_ETCD");
	if (!endpoint || !getenv("KAA_HARNESS") || !getenv("KAA_TEST_ETCD_DIR")) {
		fprintf(stderr, "test_etcd_coord: KAA_TEST_ETCD, KAA_HARNESS and "
				"KAA_TEST_ETCD_DIR must be set (run via make test)\n");
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (coord_suite_add("coord-etcd", make_etcd) != 0 ||
	    kaa__cu_add("etcd-faults", faults, KAA__CU_COUNT(faults), NULL, NULL) != 0)
		return 1;
	return kaa__cu_run_all();
}
