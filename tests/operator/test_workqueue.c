/* The controller's work queue: de-duplication, one worker per key,
 * re-queue of a key added while processed, delayed adds, per-key
 * exponential backoff with reset, shutdown. */
#include "cu_main.h"
#include "base/clock.h"
#include "base/error.h"
#include "workqueue.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static void test_dedup_fifo(void)
{
	kaa__workqueue *q = NULL;
	char *k = NULL;

	CU_ASSERT_EQUAL_FATAL(kaa__workqueue_new(5, 1000, &q), KAA_OK);
	CU_ASSERT_EQUAL(kaa__workqueue_add(q, "ns/a"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__workqueue_add(q, "ns/b"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__workqueue_add(q, "ns/a"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__workqueue_len(q), 2);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 0, &k), KAA_OK);
	CU_ASSERT_STRING_EQUAL(k, "ns/a");
	kaa__workqueue_done(q, k);
	free(k);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 0, &k), KAA_OK);
	CU_ASSERT_STRING_EQUAL(k, "ns/b");
	kaa__workqueue_done(q, k);
	free(k);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 0, &k), KAA_ERR_TIMEOUT);
	CU_ASSERT_PTR_NULL(k);
	CU_ASSERT_EQUAL(kaa__workqueue_add(q, ""), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__workqueue_add(q, NULL), KAA_ERR_INVAL);
	{
		char big[KAA_WORKQUEUE_MAX_KEY + 2];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		CU_ASSERT_EQUAL(kaa__workqueue_add(q, big), KAA_ERR_INVAL);
	}
	kaa__workqueue_free(q);
}

static void test_processing_requeue(void)
{
	kaa__workqueue *q = NULL;
	char *k = NULL, *k2 = NULL;

	CU_ASSERT_EQUAL_FATAL(kaa__workqueue_new(5, 1000, &q), KAA_OK);
	kaa__workqueue_add(q, "ns/a");
	CU_ASSERT_EQUAL_FATAL(kaa__workqueue_get(q, 0, &k), KAA_OK);
	/* added while processing: not handed to a second worker */
	kaa__workqueue_add(q, "ns/a");
	kaa__workqueue_add(q, "ns/a");
	CU_ASSERT_EQUAL(kaa__workqueue_len(q), 0);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 0, &k2), KAA_ERR_TIMEOUT);
	kaa__workqueue_done(q, k);
	free(k);
	/* handed out again once, after done */
	CU_ASSERT_EQUAL(kaa__workqueue_len(q), 1);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 0, &k2), KAA_OK);
	CU_ASSERT_STRING_EQUAL(k2, "ns/a");
	kaa__workqueue_done(q, k2);
	free(k2);
	CU_ASSERT_EQUAL(kaa__workqueue_len(q), 0);
	kaa__workqueue_free(q);
}

static void test_delay_and_backoff(void)
{
	kaa__workqueue *q = NULL;
	char *k = NULL;
	int64_t d = 0, t0;

	CU_ASSERT_EQUAL_FATAL(kaa__workqueue_new(5, 40, &q), KAA_OK);
	CU_ASSERT_EQUAL(kaa__workqueue_add_rate_limited(q, "k", &d), KAA_OK);
	CU_ASSERT_EQUAL(d, 5);
	CU_ASSERT_EQUAL(kaa__workqueue_add_rate_limited(q, "k", &d), KAA_OK);
	CU_ASSERT_EQUAL(d, 10);
	CU_ASSERT_EQUAL(kaa__workqueue_add_rate_limited(q, "k", &d), KAA_OK);
	CU_ASSERT_EQUAL(d, 20);
	CU_ASSERT_EQUAL(kaa__workqueue_add_rate_limited(q, "k", &d), KAA_OK);
	CU_ASSERT_EQUAL(d, 40);
	CU_ASSERT_EQUAL(kaa__workqueue_add_rate_limited(q, "k", &d), KAA_OK);
	CU_ASSERT_EQUAL(d, 40); /* capped */
	CU_ASSERT_EQUAL(kaa__workqueue_failures(q, "k"), 5);
	/* the earliest pending delay (5 ms) wins: ready soon, not after 40 ms */
	CU_ASSERT_EQUAL(kaa__workqueue_len(q), 0);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 2000, &k), KAA_OK);
	kaa__workqueue_done(q, k);
	free(k);
	kaa__workqueue_forget(q, "k");
	CU_ASSERT_EQUAL(kaa__workqueue_failures(q, "k"), 0);
	CU_ASSERT_EQUAL(kaa__workqueue_add_rate_limited(q, "k", &d), KAA_OK);
	CU_ASSERT_EQUAL(d, 5);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 2000, &k), KAA_OK);
	kaa__workqueue_done(q, k);
	free(k);

	/* a delayed add is not ready before its time */
	t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(kaa__workqueue_add_after(q, "later", 150), KAA_OK);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 20, &k), KAA_ERR_TIMEOUT);
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 5000, &k), KAA_OK);
	CU_ASSERT(kaa__now_ms() - t0 >= 150);
	if (k) {
		CU_ASSERT_STRING_EQUAL(k, "later");
		kaa__workqueue_done(q, k);
		free(k);
	}
	/* an immediate add overrides a pending delay */
	kaa__workqueue_add_after(q, "x", 100000);
	kaa__workqueue_add(q, "x");
	CU_ASSERT_EQUAL(kaa__workqueue_get(q, 0, &k), KAA_OK);
	kaa__workqueue_done(q, k);
	free(k);
	kaa__workqueue_free(q);
}

/* ---- concurrency: N workers never hold the same key at once ---- */

typedef struct {
	kaa__workqueue *q;
	atomic_int busy[4];
	atomic_int overlap;
	atomic_int handled;
} conc;

static void *worker(void *arg)
{
	conc *c = arg;
	char *k;

	while (kaa__workqueue_get(c->q, -1, &k) == KAA_OK) {
		int i = k[0] - 'a';
		if (atomic_fetch_add(&c->busy[i], 1) != 0)
			atomic_fetch_add(&c->overlap, 1);
		for (volatile int spin = 0; spin < 2000; spin++)
			;
		atomic_fetch_sub(&c->busy[i], 1);
		atomic_fetch_add(&c->handled, 1);
		kaa__workqueue_done(c->q, k);
		free(k);
	}
	return NULL;
}

static void test_concurrent_workers(void)
{
	conc c;
	pthread_t th[4];
	int64_t deadline;

	memset(&c, 0, sizeof(c));
	CU_ASSERT_EQUAL_FATAL(kaa__workqueue_new(1, 10, &c.q), KAA_OK);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, &c);
	for (int n = 0; n < 20000; n++) {
		char key[2] = {(char)('a' + n % 4), 0};
		kaa__workqueue_add(c.q, key);
	}
	deadline = kaa__now_ms() + 10000;
	while (kaa__workqueue_len(c.q) > 0 && kaa__now_ms() < deadline)
		sched_yield();
	kaa__workqueue_shutdown(c.q);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CU_ASSERT_EQUAL(atomic_load(&c.overlap), 0);
	CU_ASSERT(atomic_load(&c.handled) >= 4);
	CU_ASSERT(atomic_load(&c.handled) <= 20000);
	CU_ASSERT_EQUAL(kaa__workqueue_add(c.q, "a"), KAA_ERR_CANCELED);
	kaa__workqueue_free(c.q);
}

static const kaa__cu_test tests[] = {
	{"de-duplication and FIFO order", test_dedup_fifo},
	{"added while processing: handed out once after done", test_processing_requeue},
	{"delayed adds and per-key backoff with reset", test_delay_and_backoff},
	{"concurrent workers never share a key", test_concurrent_workers},
};

int main(void)
{
	return kaa__cu_run("workqueue", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
