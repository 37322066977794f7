/*
 * log_ingest.c - LogUpload: every record validated against the
 * application's latest log schema, the batch written to every log appender
 * of the application (none configured: the endpoint store's log
 * collection), and LogDeliveryStatus SUCCESS only after all writes are
 * durable. Appends are idempotent per (endpoint, batch id), so a batch
 * re-sent after a lost status is acknowledged again without a second copy.
 */
#include "operations/log_ingest.h"

#include "operations/ops_app_cache.h"
#include "operations/ops_send.h"
#include "operations/ops_sessions.h"

#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;
#define EC(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x

static void status(kaa__operations *ops, ops_session *s, const frame_t *in, bool ok, bool retryable,
		   Kaa__Endpoint__V1__ErrorCode code, uint32_t index, const char *reason)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__LogDeliveryStatus st = KAA__ENDPOINT__V1__LOG_DELIVERY_STATUS__INIT;
	st.batch_id = in->log_upload->batch_id;
	st.status = ok ? KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS
		       : KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_FAILURE;
	st.retryable = retryable;
	st.code = code;
	st.index = index;
	st.reason = (char *)(reason ? reason : "");
	f.request_id = in->request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_LOG_DELIVERY_STATUS;
	f.log_delivery_status = &st;
	kaa__opl_send(ops, s->sid, &f);
}

void kaa__opl_log_upload(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__LogUpload *lu = f->log_upload;
	const ops_app *a = s->app;
	char err[KAA_JSON_ERR_SIZE], bid[24];
	bool dup = false, any_dup = false;
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
			status(ops, s, f, false, false, EC(INVALID_LOG_RECORD), (uint32_t)i,
			       reason);
			return;
		}
	}
	snprintf(bid, sizeof(bid), "%" PRIu64, lu->batch_id);
	int64_t now = kaa__wall_ms();
	const char *const *recs = (const char *const *)lu->records_json;
	if (a->n_appenders == 0) {
		rc = kaa__ep_logs_append(ops->eps, a->id, s->ep.key_hash, bid, a->log_ver, recs,
					 lu->n_records_json, now, &dup);
		any_dup = dup;
	}
	for (size_t i = 0; i < a->n_appenders && rc == KAA_OK; i++) {
		rc = kaa__log_appender_append(a->appenders[i], a->id, s->ep.key_hash, bid,
					      a->log_ver, recs, lu->n_records_json, now, &dup);
		any_dup |= dup;
	}
	if (rc != KAA_OK) {
		/* retryable: appends are idempotent, so appenders that already
		 * hold the batch keep one copy when the device sends it again */
		KAA_WARN(MOD, "log_append_failed app=%" PRId64 " key=%s batch=%s err=%s", a->id,
			 s->ep.key_hash, bid, kaa_strerror(rc));
		status(ops, s, f, false, true,
		       rc == KAA_ERR_TIMEOUT ? EC(OVERLOADED) : EC(INTERNAL), 0,
		       "storage unavailable; send the batch again later");
		return;
	}
	if (any_dup)
		kaa__counter_inc(ops->log_batches_dup);
	else
		kaa__counter_add(ops->log_records, lu->n_records_json);
	status(ops, s, f, true, false, EC(UNSPECIFIED), 0, NULL);
}
