/*
 * log_ingest.h - LogUpload: validation and storage of a device's log
 * records (layer L2 of services/operations: a feature handler; may include
 * the L1 headers ops_state.h, ops_send.h, ops_sessions.h, ops_app_cache.h,
 * ops_jobs.h, ops_io.h, ops_server.h and lib/).
 *
 * Threads: kaa__opl_log_upload on the session's transport worker with
 * s->mu held (dispatch.c); the status it sends may come later from an
 * appender's thread (log_ingest.c).
 */
#ifndef KAA_OPS_LOG_INGEST_H
#define KAA_OPS_LOG_INGEST_H

#include "operations/ops_state.h"

#include <stdbool.h>

void kaa__opl_log_upload(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* Refuses new uploads and waits until every upload in flight was answered
 * (appenders answer within their own deadlines). kaa__operations_free,
 * while the sessions can still be sent to; any thread but an appender's. */
void kaa__opl_log_drain(kaa__operations *ops);

#endif
