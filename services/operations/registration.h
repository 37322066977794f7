/*
 * registration.h - Hello (application token, credentials, the endpoint
 * record), profiles and group membership, SessionResume (layer L2 of
 * services/operations: a feature handler; may include the L1 headers
 * ops_state.h, ops_send.h, ops_sessions.h, ops_app_cache.h, ops_jobs.h,
 * ops_io.h, ops_server.h, lib/, and in its .c the L2 headers below it:
 * delivery.h, owners.h).
 *
 * Threads: frame handlers run on the session's transport worker with s->mu
 * held (dispatch.c); kaa__opl_compute_groups wherever s->mu is held.
 */
#ifndef KAA_OPS_REGISTRATION_H
#define KAA_OPS_REGISTRATION_H

#include "operations/ops_state.h"

#include <stdbool.h>

void kaa__opl_hello(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_profile_update(kaa__operations *ops, ops_session *s,
			     const Kaa__Endpoint__V1__Frame *f);
/* Replaces the session's groups from its profiles and the app's filters;
 * true when they changed. */
bool kaa__opl_compute_groups(ops_session *s);
void kaa__opl_session_resume(kaa__operations *ops, ops_session *s,
			     const Kaa__Endpoint__V1__Frame *f);

#endif
