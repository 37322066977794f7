/*
 * workqueue.c - see workqueue.h. The number of keys is the number of
 * KaaClusters a controller sees (tens, rarely thousands), so entries live
 * in one array searched linearly; the FIFO of ready keys is a ring of
 * entry pointers.
 */
#include "workqueue.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"

typedef struct wq_entry {
	char *key;
	bool queued;     /* in the ready FIFO */
	bool processing; /* handed to a worker */
	bool dirty;      /* added while processing: re-queue on done */
	int64_t due_ms;  /* delayed add pending (monotonic), 0: none */
	int failures;
} wq_entry;

struct kaa__workqueue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t base_ms, max_ms;
	wq_entry **entries;
	size_t n, cap;
	wq_entry **fifo; /* ring of cap_fifo */
	size_t head, count, cap_fifo;
	bool shutdown;
};

int kaa__workqueue_new(int64_t base_ms, int64_t max_ms, kaa__workqueue **out)
{
	kaa__workqueue *q;
	pthread_condattr_t ca;

	if (!out)
		return KAA_ERR_INVAL;
	q = kaa__xcalloc(1, sizeof(*q));
	q->base_ms = base_ms < 1 ? 1 : base_ms;
	q->max_ms = max_ms < q->base_ms ? q->base_ms : max_ms;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = q;
	return KAA_OK;
}

void kaa__workqueue_free(kaa__workqueue *q)
{
	if (!q)
		return;
	for (size_t i = 0; i < q->n; i++) {
		free(q->entries[i]->key);
		free(q->entries[i]);
	}
	free(q->entries);
	free(q->fifo);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static bool key_ok(const char *key)
{
	return key && key[0] && strnlen(key, KAA_WORKQUEUE_MAX_KEY + 1) <= KAA_WORKQUEUE_MAX_KEY;
}

static wq_entry *find(kaa__workqueue *q, const char *key)
{
	for (size_t i = 0; i < q->n; i++)
		if (strcmp(q->entries[i]->key, key) == 0)
			return q->entries[i];
	return NULL;
}

static int find_or_add(kaa__workqueue *q, const char *key, wq_entry **out)
{
	wq_entry *e = find(q, key);

	if (e) {
		*out = e;
		return KAA_OK;
	}
	if (q->n >= KAA_WORKQUEUE_MAX_KEYS)
		return KAA_ERR_TOO_BIG;
	if (q->n == q->cap) {
		size_t ncap = q->cap ? q->cap * 2 : 16;
		q->entries = kaa__xrealloc(q->entries, ncap * sizeof(*q->entries));
		/* the FIFO never holds more entries than exist, so it grows with them */
		wq_entry **nf = kaa__xmalloc(ncap * sizeof(*nf));
		for (size_t i = 0; i < q->count; i++)
			nf[i] = q->fifo[(q->head + i) % q->cap_fifo];
		free(q->fifo);
		q->fifo = nf;
		q->head = 0;
		q->cap_fifo = ncap;
		q->cap = ncap;
	}
	e = kaa__xcalloc(1, sizeof(*e));
	e->key = kaa__xstrdup(key);
	q->entries[q->n++] = e;
	*out = e;
	return KAA_OK;
}

/* Drops an entry that no longer carries any state. */
static void maybe_drop(kaa__workqueue *q, wq_entry *e)
{
	if (e->queued || e->processing || e->dirty || e->due_ms || e->failures)
		return;
	for (size_t i = 0; i < q->n; i++) {
		if (q->entries[i] == e) {
			q->entries[i] = q->entries[--q->n];
			break;
		}
	}
	free(e->key);
	free(e);
}

static void push_ready(kaa__workqueue *q, wq_entry *e)
{
	e->due_ms = 0;
	if (e->processing) {
		e->dirty = true;
		return;
	}
	if (e->queued)
		return;
	e->queued = true;
	q->fifo[(q->head + q->count) % q->cap_fifo] = e;
	q->count++;
	pthread_cond_signal(&q->cv);
}

static int add_locked(kaa__workqueue *q, const char *key, int64_t delay_ms)
{
	wq_entry *e;
	int rc;

	if (q->shutdown)
		return KAA_ERR_CANCELED;
	rc = find_or_add(q, key, &e);
	if (rc != KAA_OK)
		return rc;
	if (delay_ms <= 0) {
		push_ready(q, e);
	} else if (!e->queued) {
		int64_t due = kaa__now_ms() + delay_ms;
		if (!e->due_ms || due < e->due_ms)
			e->due_ms = due;
		/* a waiting get must recompute its deadline */
		pthread_cond_broadcast(&q->cv);
	}
	return KAA_OK;
}

int kaa__workqueue_add(kaa__workqueue *q, const char *key)
{
	return kaa__workqueue_add_after(q, key, 0);
}

int kaa__workqueue_add_after(kaa__workqueue *q, const char *key, int64_t delay_ms)
{
	int rc;

	if (!q || !key_ok(key))
		return KAA_ERR_INVAL;
	pthread_mutex_lock(&q->mu);
	rc = add_locked(q, key, delay_ms);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

int kaa__workqueue_add_rate_limited(kaa__workqueue *q, const char *key, int64_t *delay_ms)
{
	wq_entry *e;
	int64_t d;
	int rc;

	if (!q || !key_ok(key))
		return KAA_ERR_INVAL;
	pthread_mutex_lock(&q->mu);
	if (q->shutdown) {
		rc = KAA_ERR_CANCELED;
		goto out;
	}
	rc = find_or_add(q, key, &e);
	if (rc != KAA_OK)
		goto out;
	d = q->base_ms;
	for (int i = 0; i < e->failures && d < q->max_ms; i++)
		d *= 2;
	if (d > q->max_ms)
		d = q->max_ms;
	if (e->failures < 64)
		e->failures++;
	if (delay_ms)
		*delay_ms = d;
	rc = add_locked(q, key, d);
out:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void kaa__workqueue_forget(kaa__workqueue *q, const char *key)
{
	wq_entry *e;

	if (!q || !key)
		return;
	pthread_mutex_lock(&q->mu);
	e = find(q, key);
	if (e) {
		e->failures = 0;
		maybe_drop(q, e);
	}
	pthread_mutex_unlock(&q->mu);
}

int kaa__workqueue_failures(kaa__workqueue *q, const char *key)
{
	wq_entry *e;
	int n = 0;

	if (!q || !key)
		return 0;
	pthread_mutex_lock(&q->mu);
	e = find(q, key);
	if (e)
		n = e->failures;
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* Moves due delayed keys to the FIFO; returns the earliest remaining due
 * time, or 0 when none. */
static int64_t promote_due(kaa__workqueue *q, int64_t now)
{
	int64_t next = 0;

	for (size_t i = 0; i < q->n; i++) {
		wq_entry *e = q->entries[i];
		if (!e->due_ms)
			continue;
		if (e->due_ms <= now)
			push_ready(q, e);
		else if (!next || e->due_ms < next)
			next = e->due_ms;
	}
	return next;
}

int kaa__workqueue_get(kaa__workqueue *q, int64_t timeout_ms, char **key)
{
	int64_t deadline;
	int rc = KAA_OK;

	if (!q || !key)
		return KAA_ERR_INVAL;
	*key = NULL;
	deadline = timeout_ms < 0 ? 0 : kaa__now_ms() + timeout_ms;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		int64_t now = kaa__now_ms(), next, wake;
		struct timespec ts;

		if (q->shutdown) {
			rc = KAA_ERR_CANCELED;
			break;
		}
		next = promote_due(q, now);
		if (q->count > 0) {
			wq_entry *e = q->fifo[q->head];
			q->head = (q->head + 1) % q->cap_fifo;
			q->count--;
			e->queued = false;
			e->processing = true;
			*key = kaa__xstrdup(e->key);
			break;
		}
		if (deadline && now >= deadline) {
			rc = KAA_ERR_TIMEOUT;
			break;
		}
		wake = deadline;
		if (next && (!wake || next < wake))
			wake = next;
		if (!wake) {
			pthread_cond_wait(&q->cv, &q->mu);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		{
			int64_t d = wake - now;
			ts.tv_sec += d / 1000;
			ts.tv_nsec += (d % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
		}
		(void)pthread_cond_timedwait(&q->cv, &q->mu, &ts);
	}
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void kaa__workqueue_done(kaa__workqueue *q, const char *key)
{
	wq_entry *e;

	if (!q || !key)
		return;
	pthread_mutex_lock(&q->mu);
	e = find(q, key);
	if (e && e->processing) {
		e->processing = false;
		if (e->dirty) {
			e->dirty = false;
			if (!q->shutdown)
				push_ready(q, e);
		}
		maybe_drop(q, e);
	}
	pthread_mutex_unlock(&q->mu);
}

void kaa__workqueue_shutdown(kaa__workqueue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->shutdown = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

size_t kaa__workqueue_len(kaa__workqueue *q)
{
	size_t n;

	if (!q)
		return 0;
	pthread_mutex_lock(&q->mu);
	n = q->count;
	pthread_mutex_unlock(&q->mu);
	return n;
}
