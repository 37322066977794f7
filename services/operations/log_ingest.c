/*
 * log_ingest.c - LogUpload: every record validated against the
 * application's latest log schema, the batch submitted to every log
 * appender of the application (none configured: the endpoint store's log
 * collection, written here), and LogDeliveryStatus SUCCESS only after every
 * appender confirmed it (lib/appender/log_appender.h: each calls back once,
 * inside submit or later from its own thread). Appends are idempotent per
 * (endpoint, batch id), so a batch re-sent after a lost status or a
 * failure is acknowledged again without a second copy.
 *
 * Back-pressure (docs/protocol.md, docs/appenders.md): a session may have
 * OPS_MAX_INFLIGHT_LOG_BATCHES uploads awaiting their status (more:
 * Error{RATE_LIMITED}); the bytes that queuing appenders copy are charged
 * against the node's budget (kaa__log_inflight_*, --log-inflight-mb) and
 * a batch that does not fit is answered FAILURE, retryable, RATE_LIMITED.
 *
 * An upload holds a reference to its session (for the in-flight count)
 * and to the application (whose appenders it waits for), so a session
 * closed or an application reloaded meanwhile stays valid until the last
 * callback; the status then goes to a session id that may be gone (the
 * send is dropped, the device re-sends after reconnecting).
 */
#include "operations/log_ingest.h"

#include "operations/ops_app_cache.h"
#include "operations/ops_send.h"
#include "operations/ops_sessions.h"

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "operations"
/* what RATE_LIMITED answers suggest to wait */
#define LOG_RETRY_AFTER_MS 1000

typedef Kaa__Endpoint__V1__Frame frame_t;
#define EC(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x

/* Uploads in flight of any kaa__operations: kaa__opl_log_drain waits on it. */
static pthread_mutex_t drain_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t drain_cv = PTHREAD_COND_INITIALIZER;

/* One LogUpload waiting for its appenders. */
typedef struct upload {
	kaa__operations *ops;
	ops_session *s; /* referenced */
	ops_app *app;   /* referenced */
	kaa__session_id sid;
	uint64_t request_id, batch_id;
	size_t n_records, reserved;
	char bid[24];
	char key_hash[KAA_EP_KEY_HASH_MAX + 1];
	pthread_mutex_t mu; /* guards the outcome below */
	size_t left;        /* callbacks to come, plus one for the submitter */
	kaa__log_result worst;
	int err;
	bool any_dup;
	int64_t failed_appender;
	char reason[160];
} upload;

static void status(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
		   uint64_t batch_id, bool ok, bool retryable, Kaa__Endpoint__V1__ErrorCode code,
		   uint32_t index, const char *reason)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__LogDeliveryStatus st = KAA__ENDPOINT__V1__LOG_DELIVERY_STATUS__INIT;
	st.batch_id = batch_id;
	st.status = ok ? KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS
		       : KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_FAILURE;
	st.retryable = retryable;
	st.code = code;
	st.index = index;
	st.reason = (char *)(reason ? reason : "");
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_LOG_DELIVERY_STATUS;
	f.log_delivery_status = &st;
	kaa__opl_send(ops, sid, &f);
}

static void rate_limited(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
			 const char *msg)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Error e = KAA__ENDPOINT__V1__ERROR__INIT;
	e.code = EC(RATE_LIMITED);
	e.message = (char *)msg;
	e.request_id = request_id;
	e.field = (char *)"log_upload";
	e.json_path = (char *)"";
	e.retry_after_ms = LOG_RETRY_AFTER_MS;
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ERROR;
	f.error = &e;
	kaa__opl_send(ops, sid, &f);
}

/* Failures rank PERMANENT > RATE_LIMITED > RETRY: the answer is the worst. */
static int rank(kaa__log_result r)
{
	switch (r) {
	case KAA_LOG_OK: return 0;
	case KAA_LOG_RETRY: return 1;
	case KAA_LOG_RATE_LIMITED: return 2;
	case KAA_LOG_PERMANENT: return 3;
	}
	return 3;
}

static void uploads_dec(kaa__operations *ops)
{
	pthread_mutex_lock(&drain_mu);
	if (atomic_fetch_sub(&ops->log_uploads, 1) == 1)
		pthread_cond_broadcast(&drain_cv);
	pthread_mutex_unlock(&drain_mu);
}

/* The last callback (or the submitter): answer the device and release. */
static void upload_finish(upload *u)
{
	kaa__operations *ops = u->ops;
	const ops_app *a = u->app;
	switch (u->worst) {
	case KAA_LOG_OK:
		if (u->any_dup)
			kaa__counter_inc(ops->log_batches_dup);
		else
			kaa__counter_add(ops->log_records, u->n_records);
		status(ops, u->sid, u->request_id, u->batch_id, true, false, EC(UNSPECIFIED), 0,
		       NULL);
		break;
	case KAA_LOG_PERMANENT:
		/* the destination refused the batch: re-sending it cannot help */
		KAA_WARN(MOD,
			 "log_batch_refused app=%" PRId64 " key=%s batch=%s appender=%" PRId64
			 " reason=\"%s\"",
			 a->id, u->key_hash, u->bid, u->failed_appender, u->reason);
		status(ops, u->sid, u->request_id, u->batch_id, false, false, EC(FORBIDDEN), 0,
		       u->reason);
		break;
	case KAA_LOG_RATE_LIMITED:
		status(ops, u->sid, u->request_id, u->batch_id, false, true, EC(RATE_LIMITED), 0,
		       "log appender queue full; send the batch again later");
		break;
	case KAA_LOG_RETRY:
		/* retryable: appends are idempotent, so appenders that already
		 * hold the batch keep one copy when the device sends it again */
		KAA_WARN(MOD,
			 "log_append_failed app=%" PRId64 " key=%s batch=%s appender=%" PRId64
			 " err=%s reason=\"%s\"",
			 a->id, u->key_hash, u->bid, u->failed_appender, kaa_strerror(u->err),
			 u->reason);
		status(ops, u->sid, u->request_id, u->batch_id, false, true,
		       u->err == KAA_ERR_TIMEOUT ? EC(OVERLOADED) : EC(INTERNAL), 0,
		       "storage unavailable; send the batch again later");
		break;
	}
	kaa__log_inflight_release(u->reserved);
	atomic_fetch_sub(&u->s->log_inflight, 1);
	pthread_mutex_destroy(&u->mu);
	kaa__opl_session_put(u->s);
	kaa__opl_app_put(u->app); /* may free the appenders: we are past them */
	free(u);
	uploads_dec(ops);
}

/* One appender's answer; the last one (counting the submitter) finishes. */
static void upload_step(upload *u, int64_t appender, const kaa__log_status *st)
{
	pthread_mutex_lock(&u->mu);
	if (st) {
		if (st->result == KAA_LOG_OK)
			u->any_dup |= st->duplicate;
		else if (rank(st->result) > rank(u->worst)) {
			u->worst = st->result;
			u->err = st->err;
			u->failed_appender = appender;
			snprintf(u->reason, sizeof(u->reason), "appender %" PRId64 ": %s", appender,
				 st->reason);
		}
	}
	bool last = --u->left == 0;
	pthread_mutex_unlock(&u->mu);
	if (last)
		upload_finish(u);
}

/* The callback's arg: which appender answered for which upload. */
typedef struct upload_ref {
	upload *u;
	int64_t appender;
} upload_ref;

static void appender_done(void *arg, const kaa__log_status *st)
{
	upload_ref *r = arg;
	upload *u = r->u;
	int64_t id = r->appender;
	free(r);
	upload_step(u, id, st);
}

void kaa__opl_log_upload(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__LogUpload *lu = f->log_upload;
	ops_app *a = s->app;
	char err[KAA_JSON_ERR_SIZE], bid[24];
	bool dup = false;
	int rc = KAA_OK;

	if (!lu || !lu->batch_id || !lu->n_records_json) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       lu && lu->batch_id ? "log_upload.records_json"
						  : "log_upload.batch_id",
			       NULL, "a non-zero batch_id and at least one record are required");
		return;
	}
	for (size_t i = 0; i < lu->n_records_json; i++) {
		const char *r = lu->records_json[i];
		/* the codec already checked that each record is one JSON text */
		if (!a->log_schema)
			break;
		rc = kaa__avro_validate(a->log_schema, r, strlen(r), err, sizeof(err));
		if (rc != KAA_OK) {
			char reason[KAA_JSON_ERR_SIZE + 64];
			snprintf(reason, sizeof(reason), "records_json[%zu]: %s", i, err);
			status(ops, s->sid, f->request_id, lu->batch_id, false, false,
			       EC(INVALID_LOG_RECORD), (uint32_t)i, reason);
			return;
		}
	}
	snprintf(bid, sizeof(bid), "%" PRIu64, lu->batch_id);
	int64_t now = kaa__wall_ms();
	const char *const *recs = (const char *const *)lu->records_json;
	if (a->n_appenders == 0) {
		rc = kaa__ep_logs_append(ops->eps, a->id, s->ep.key_hash, bid, a->log_ver, recs,
					 lu->n_records_json, now, &dup);
		if (rc != KAA_OK) {
			KAA_WARN(MOD, "log_append_failed app=%" PRId64 " key=%s batch=%s err=%s",
				 a->id, s->ep.key_hash, bid, kaa_strerror(rc));
			status(ops, s->sid, f->request_id, lu->batch_id, false, true,
			       rc == KAA_ERR_TIMEOUT ? EC(OVERLOADED) : EC(INTERNAL), 0,
			       "storage unavailable; send the batch again later");
			return;
		}
		if (dup)
			kaa__counter_inc(ops->log_batches_dup);
		else
			kaa__counter_add(ops->log_records, lu->n_records_json);
		status(ops, s->sid, f->request_id, lu->batch_id, true, false, EC(UNSPECIFIED), 0,
		       NULL);
		return;
	}

	/* counted before closing is read: kaa__opl_log_drain sets closing
	 * before it reads the count, so one of the two sees the other */
	atomic_fetch_add(&ops->log_uploads, 1);
	if (atomic_load(&ops->log_closing)) {
		status(ops, s->sid, f->request_id, lu->batch_id, false, true, EC(OVERLOADED), 0,
		       "node shutting down; send the batch again later");
		uploads_dec(ops);
		return;
	}
	if (atomic_fetch_add(&s->log_inflight, 1) >= OPS_MAX_INFLIGHT_LOG_BATCHES) {
		atomic_fetch_sub(&s->log_inflight, 1);
		rate_limited(
			ops, s->sid, f->request_id,
			"more than limits.max_inflight_log_batches batches await their status");
		uploads_dec(ops);
		return;
	}
	kaa__log_batch b = {.app_id = a->id,
			    .key_hash = s->ep.key_hash,
			    .batch_id = bid,
			    .schema_version = a->log_ver,
			    .records = recs,
			    .n = lu->n_records_json,
			    .received_ms = now};
	size_t copies = 0;
	for (size_t i = 0; i < a->n_appenders; i++)
		copies += kaa__log_appender_queues(a->appenders[i]);
	size_t charge = copies * kaa__log_batch_bytes(&b);
	if (charge && !kaa__log_inflight_reserve(charge)) {
		atomic_fetch_sub(&s->log_inflight, 1);
		KAA_DEBUG(MOD,
			  "log_inflight_budget_full app=%" PRId64
			  " key=%s batch=%s used=%zu max=%zu",
			  a->id, s->ep.key_hash, bid, kaa__log_inflight_used(),
			  kaa__log_inflight_max());
		status(ops, s->sid, f->request_id, lu->batch_id, false, true, EC(RATE_LIMITED), 0,
		       "node log buffer full; send the batch again later");
		uploads_dec(ops);
		return;
	}

	upload *u = kaa__xcalloc(1, sizeof(*u));
	u->ops = ops;
	u->s = s;
	atomic_fetch_add(&s->refs, 1);
	u->app = a;
	atomic_fetch_add(&a->refs, 1);
	u->sid = s->sid;
	u->request_id = f->request_id;
	u->batch_id = lu->batch_id;
	u->n_records = lu->n_records_json;
	u->reserved = charge;
	memcpy(u->bid, bid, sizeof(bid));
	snprintf(u->key_hash, sizeof(u->key_hash), "%s", s->ep.key_hash);
	pthread_mutex_init(&u->mu, NULL);
	u->left = a->n_appenders + 1;
	u->worst = KAA_LOG_OK;
	for (size_t i = 0; i < a->n_appenders; i++) {
		upload_ref *r = kaa__xmalloc(sizeof(*r));
		r->u = u;
		r->appender = kaa__log_appender_id(a->appenders[i]);
		kaa__log_appender_submit(a->appenders[i], &b, appender_done, r);
	}
	upload_step(u, 0, NULL);
}

void kaa__opl_log_drain(kaa__operations *ops)
{
	atomic_store(&ops->log_closing, true);
	pthread_mutex_lock(&drain_mu);
	while (atomic_load(&ops->log_uploads) > 0)
		pthread_cond_wait(&drain_cv, &drain_mu);
	pthread_mutex_unlock(&drain_mu);
}
