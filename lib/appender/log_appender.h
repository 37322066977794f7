/*
 * log_appender.h - where an application's log records go. The control
 * service keeps log-appender objects (REST /applications/{app}/log-appenders,
 * meta_store kind log-appender: name + settings JSON); the operations service
 * builds one kaa__log_appender per object and writes every accepted batch to
 * all of them before it acknowledges the batch to the device.
 *
 * Settings (the object's "settings" JSON object; unknown members are an
 * error so a typo is not silently ignored):
 *
 *   {"type": "endpoint-store"}
 *       the endpoint store's log collection (kaa__ep_logs_append): the
 *       log_records table in SQLite, the log_records collection in MongoDB.
 *
 *   {"type": "file", "file": "NAME.jsonl"}
 *       JSON lines in <file_dir>/app-<app_id>/NAME (file optional, default
 *       "appender-<id>.jsonl"; NAME is 1..128 of [A-Za-z0-9._-], not starting
 *       with '.'). Users of the REST API never choose a directory: file_dir
 *       is the node's, and the app-<id> level keeps applications apart. One
 *       line per record:
 *         {"app":1,"endpoint":"<key hash>","batch":"<batch id>","index":0,
 *          "batch_size":3,"received_ms":1764201600000,"schema_version":1,
 *          "record":<JSON>}
 *       (the record as the device sent it, its line breaks turned into
 *       spaces). The lines are fsync'ed before append returns (group
 *       commit: concurrent appends share one fsync). Idempotency: a sidecar
 *       SQLite file NAME.idx lists the stored batches with the file offset
 *       where each ends; a batch found there is not written again
 *       (*duplicate = true). A batch in the file whose index row was lost
 *       (crash) is indexed again at the next open if it is whole, cut off if
 *       not (it was never acknowledged), so the file never holds a batch
 *       twice and never loses an acknowledged one.
 *       One process per file: the file is locked (flock); handles of one
 *       process on the same file share one open file.
 *
 *   {"type": "webhook", "url": "https://...", "secret": "...", ...}
 *       POSTs each batch to url from the appender's own thread (curl multi);
 *       members, defaults and the wire format in webhook_appender.c and
 *       docs/appenders.md. "secret" (HMAC-SHA256 key of X-Kaa-Signature) is
 *       write-only: the control service shows it masked.
 *
 *   {"type": "kafka", "bootstrap_servers": "host:port,...", ...}
 *       one Kafka message per record (librdkafka idempotent producer,
 *       acks=all), confirmed by the delivery reports on the appender's own
 *       thread; members and the guarantee in kafka_appender.c and
 *       docs/appenders.md. "sasl_password" is write-only like "secret".
 *
 * Delivery is asynchronous: kaa__log_appender_submit hands a batch over
 * and its callback later says whether the destination durably accepted it.
 * "endpoint-store" and "file" finish inside submit (they block on I/O:
 * never call them from an event-loop thread); "webhook" (and later types
 * with a thread of their own) copy the batch and call back from their
 * thread.
 *
 * Memory is bounded twice: each queuing appender has its own bounded queue
 * (full: RATE_LIMITED at once), and the node keeps one in-flight byte
 * budget (kaa__log_inflight_*) that the operations service charges before
 * it submits a batch to the application's appenders.
 *
 * Threads: submit/append from any number of threads at once; new/free/
 * check from any thread. free may be called while batches are in flight
 * (their callbacks run with RETRY "appender closed" before free returns)
 * and from inside a callback of the same appender.
 */
#ifndef KAA_LOG_APPENDER_H
#define KAA_LOG_APPENDER_H

#include "base/metrics.h"
#include "store/endpoint_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kaa__log_appender kaa__log_appender;

/* What the node gives every appender (borrowed; must outlive the appenders). */
typedef struct kaa__log_appender_env {
	kaa__ep_store *store; /* for "endpoint-store"; may be NULL if unused */
	const char *file_dir; /* for "file": base directory, created if missing */
	/* per-appender metrics (kaa_log_appender_*{app,appender,type}); may be
	 * NULL (no metrics) */
	kaa__metrics *metrics;
	/* the application's token, for names made from it (the "kafka" topic
	 * template's {app_token}); borrowed for new only */
	const char *app_token;
} kaa__log_appender_env;

/*
 * Builds the appender of the log-appender object (app_id, id, name) with
 * settings_json (borrowed; name may be NULL and is not used for storage).
 * "file" opens (creating) the file and its index and cuts off an unindexed
 * tail left by a crash.
 * Errors: KAA_ERR_INVAL (malformed settings, unknown type or member, bad
 * file name, app_id/id < 1, the env lacks what the type needs; err gets a
 * one-line reason if err/errlen given), KAA_ERR_EXISTS (the file is locked by
 * another process), KAA_ERR_IO. Out of memory aborts (lib/base/alloc.h).
 * *out is NULL on error.
 */
int kaa__log_appender_new(int64_t app_id, int64_t id, const char *name, const char *settings_json,
			  const kaa__log_appender_env *env, kaa__log_appender **out, char *err,
			  size_t errlen);
void kaa__log_appender_free(kaa__log_appender *a); /* accepts NULL */

/* Checks settings_json against the rules above without opening anything
 * (the control service validates REST input with it). KAA_ERR_INVAL with a
 * one-line reason in err ("settings.file: ..."). Any thread. */
int kaa__log_appender_check(const char *settings_json, char *err, size_t errlen);

/* "endpoint-store", "file", "webhook", "kafka"; static. */
const char *kaa__log_appender_type(const kaa__log_appender *a);
/* The log-appender object's id and app id given at new. */
int64_t kaa__log_appender_id(const kaa__log_appender *a);

/* One batch, borrowed for the duration of submit (queuing appenders copy
 * what they keep). The rules of kaa__ep_logs_append: records each one JSON
 * value of at most KAA_EP_LOG_RECORD_MAX bytes, n 1..1000, key_hash and
 * batch_id checked by kaa__ep_check_key / kaa__ep_check_batch_id. */
typedef struct kaa__log_batch {
	int64_t app_id;
	const char *key_hash;
	const char *batch_id;
	int64_t schema_version;
	const char *const *records;
	size_t n;
	int64_t received_ms;
} kaa__log_batch;

/* Total bytes of the batch's records (what a queuing appender copies). */
size_t kaa__log_batch_bytes(const kaa__log_batch *b);

typedef enum kaa__log_result {
	KAA_LOG_OK = 0,       /* durably accepted (or held already: duplicate) */
	KAA_LOG_RETRY,        /* not accepted now; sending the same batch again is safe */
	KAA_LOG_RATE_LIMITED, /* not accepted: a queue or the in-flight budget is full */
	KAA_LOG_PERMANENT,    /* the destination refused this batch; re-sending will not help */
} kaa__log_result;

/* What a callback gets (borrowed for the call). */
typedef struct kaa__log_status {
	kaa__log_result result;
	int err;            /* the kaa_err behind a failure (KAA_OK on success), for logs */
	bool duplicate;     /* KAA_LOG_OK: the destination held the batch already */
	const char *reason; /* one line for the device and the log; never NULL */
} kaa__log_status;

/* Called exactly once per submit, either inside submit or later from the
 * appender's thread (never while the appender holds a lock the caller could
 * need: it may call submit or free on any appender). arg is the caller's. */
typedef void kaa__log_done_fn(void *arg, const kaa__log_status *st);

/*
 * Hands batch b (borrowed) to the appender; done(arg, status) reports the
 * outcome exactly once. An invalid batch (or b->app_id other than the
 * appender's) completes inside submit with KAA_LOG_PERMANENT, err
 * KAA_ERR_INVAL; a full queue with KAA_LOG_RATE_LIMITED; storage errors
 * with KAA_LOG_RETRY (err KAA_ERR_IO, KAA_ERR_TIMEOUT, ...).
 * Any thread; blocks for "endpoint-store"/"file" (durable write inside).
 */
void kaa__log_appender_submit(kaa__log_appender *a, const kaa__log_batch *b, kaa__log_done_fn *done,
			      void *arg);

/*
 * Submits and waits: writes one batch durably and idempotently, with the
 * arguments and rules of kaa__ep_logs_append (records borrowed;
 * *duplicate required). Returns KAA_OK or the failure status's err: those
 * of kaa__ep_logs_append; for files KAA_ERR_IO (write, fsync or index
 * failure; nothing of the batch remains in the file); KAA_ERR_UNAVAILABLE
 * for a full queue; KAA_ERR_PROTOCOL for a batch a webhook refused.
 * Never from inside a callback of the same appender.
 */
int kaa__log_appender_append(kaa__log_appender *a, int64_t app_id, const char *key_hash,
			     const char *batch_id, int64_t schema_version,
			     const char *const *records, size_t n, int64_t received_ms,
			     bool *duplicate);

/*
 * The node-wide in-flight byte budget (process-wide: one kaa-node per
 * process). The operations service reserves a batch's bytes (times the
 * number of appenders that copy it) before submitting and releases them
 * when the last appender called back; a reservation that would pass the
 * maximum fails and the batch is answered RATE_LIMITED (retryable).
 * set_max: bytes >= 1 (kaa-node: --log-inflight-mb, default 64 MiB).
 * reserve: true and charged, or false and nothing charged (a single
 * reservation larger than the maximum succeeds only when nothing else is
 * in flight, so an oversized batch is not refused forever). Any thread.
 */
#define KAA_LOG_INFLIGHT_DEFAULT ((size_t)64 * 1024 * 1024)
void kaa__log_inflight_set_max(size_t bytes);
bool kaa__log_inflight_reserve(size_t bytes);
void kaa__log_inflight_release(size_t bytes);
size_t kaa__log_inflight_used(void);
size_t kaa__log_inflight_max(void);

/* true when the settings' type queues batches and copies them (charged
 * per appender against the budget); false when submit finishes inside. */
bool kaa__log_appender_queues(const kaa__log_appender *a);

#endif
