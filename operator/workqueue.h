/*
 * workqueue.h - the controller's work queue of object keys ("ns/name"):
 * de-duplicating (a key waiting in the queue is queued once), a key is
 * never handed to two workers at once (a key added while it is being
 * processed is handed out again after kaa__workqueue_done), delayed adds,
 * and per-key exponential backoff for failures (base_ms doubling up to
 * max_ms, reset by kaa__workqueue_forget).
 *
 * Threads: every function may be called from any thread (one mutex).
 * Keys are copied; at most KAA_WORKQUEUE_MAX_KEYS distinct keys are
 * tracked at once and keys are at most KAA_WORKQUEUE_MAX_KEY bytes.
 *
 * Errors: KAA_ERR_INVAL (NULL, empty or too long key), KAA_ERR_TOO_BIG
 * (too many keys), KAA_ERR_CANCELED (after shutdown),
 * KAA_ERR_TIMEOUT (get: nothing became ready in time).
 */
#ifndef KAA_WORKQUEUE_H
#define KAA_WORKQUEUE_H

#include <stddef.h>
#include <stdint.h>

#define KAA_WORKQUEUE_MAX_KEYS 100000
#define KAA_WORKQUEUE_MAX_KEY 512

typedef struct kaa__workqueue kaa__workqueue;

/* base_ms >= 1 and max_ms >= base_ms (clamped otherwise). */
int kaa__workqueue_new(int64_t base_ms, int64_t max_ms, kaa__workqueue **out);
/* Accepts NULL. No thread may be inside get. */
void kaa__workqueue_free(kaa__workqueue *q);

/* Queues key now (no-op when already queued). */
int kaa__workqueue_add(kaa__workqueue *q, const char *key);
/* Queues key after delay_ms (<= 0: now). An earlier pending delay wins. */
int kaa__workqueue_add_after(kaa__workqueue *q, const char *key, int64_t delay_ms);
/* Queues key after its backoff delay and doubles that delay; *delay_ms
 * (may be NULL) receives the delay used. */
int kaa__workqueue_add_rate_limited(kaa__workqueue *q, const char *key, int64_t *delay_ms);
/* Forgets key's failures: its next rate-limited add waits base_ms. */
void kaa__workqueue_forget(kaa__workqueue *q, const char *key);
/* Failures counted for key since the last forget. */
int kaa__workqueue_failures(kaa__workqueue *q, const char *key);

/* Waits up to timeout_ms (< 0: forever) for a ready key; *key is malloc'd
 * and the caller must call kaa__workqueue_done with it, then free it. */
int kaa__workqueue_get(kaa__workqueue *q, int64_t timeout_ms, char **key);
/* Ends the processing of key; re-queues it if it was added meanwhile. */
void kaa__workqueue_done(kaa__workqueue *q, const char *key);

/* Wakes every get (they return KAA_ERR_CANCELED); later adds fail. */
void kaa__workqueue_shutdown(kaa__workqueue *q);
/* Keys ready now (not counting delayed or processing ones). */
size_t kaa__workqueue_len(kaa__workqueue *q);

#endif
