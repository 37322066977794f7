/*
 * log_ingest.h - LogUpload: validation and storage of a device's log
 * records (layer L2 of services/operations: a feature handler; may include
 * the L1 headers ops_state.h, ops_send.h, ops_sessions.h, ops_app_cache.h,
 * ops_jobs.h, ops_io.h, ops_server.h and lib/).
 *
 * Threads: the session's transport worker with s->mu held (dispatch.c).
 */
#ifndef KAA_OPS_LOG_INGEST_H
#define KAA_OPS_LOG_INGEST_H

#include "operations/ops_state.h"

#include <stdbool.h>

void kaa__opl_log_upload(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);

#endif
