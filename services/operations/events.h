/*
 * events.h - events from and to devices and event listeners, routed across
 * nodes by the router (layer L2 of services/operations: a feature handler;
 * may include the L1 headers ops_state.h, ops_send.h, ops_sessions.h,
 * ops_app_cache.h, ops_jobs.h, ops_io.h, ops_server.h and lib/).
 *
 * Threads: frame handlers with s->mu held (dispatch.c); the router
 * callbacks on the router's threads, holding no lock;
 * kaa__opl_pending_clear at shutdown, after the router was freed.
 */
#ifndef KAA_OPS_EVENTS_H
#define KAA_OPS_EVENTS_H

#include "operations/ops_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void kaa__opl_event(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_event_listeners(kaa__operations *ops, ops_session *s,
			      const Kaa__Endpoint__V1__Frame *f);
const ops_evclass *kaa__opl_evclass(const ops_app *a, const char *fqn);
/* Router callbacks. */
void kaa__opl_event_deliver(void *ud, int64_t app_id, const char *const *ekhs, size_t n,
			    const kaa__router_event *ev);
void kaa__opl_event_routed(void *ud, uint64_t token, int status);
void kaa__opl_listeners_answer(void *ud, uint64_t token, int status, const char *const *ekhs,
			       size_t n);
/* Frees every pending request (shutdown). */
void kaa__opl_pending_clear(kaa__operations *ops);

#endif
