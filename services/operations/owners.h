/*
 * owners.h - owner attach and detach (layer L2 of services/operations: a
 * feature handler; may include the L1 headers ops_state.h, ops_send.h,
 * ops_sessions.h, ops_app_cache.h, ops_jobs.h, ops_io.h, ops_server.h and
 * lib/). Details of the protocol in owners.c.
 *
 * Threads: frame handlers with s->mu held (dispatch.c); the router
 * callbacks on the router's threads, holding no lock.
 */
#ifndef KAA_OPS_OWNERS_H
#define KAA_OPS_OWNERS_H

#include "operations/ops_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void kaa__opl_owner_attach(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_owner_detach(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* Router callback: an endpoint of this node was attached or detached. */
void kaa__opl_owner_notice(void *ud, int64_t app_id, const char *ekh, const char *owner_id,
			   const char *by_ekh);
/* Reports the session's owner location to the owner's home (connected or
 * not); no-op when it has no owner. Caller holds s->mu. */
void kaa__opl_owner_report(kaa__operations *ops, ops_session *s, bool connected);
/* Router callback: re-report every attached session (ring changed). */
void kaa__opl_owner_report_all(void *ud);

#endif
