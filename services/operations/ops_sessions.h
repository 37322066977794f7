/*
 * ops_sessions.h - the session tables (layer L1 of services/operations; may
 * include ops_state.h, ops_io.h, ops_server.h and lib/ only): sessions by
 * transport sid and, once established, by endpoint (application id, key
 * hash); references; writing a session's endpoint record.
 *
 * Sessions are reference counted: the sid table holds one reference, every
 * function returning a session gives the caller one more (release with
 * kaa__opl_session_put). Threads: any thread; the tables are guarded by
 * ops->mu, taken inside these functions (never call them holding ops->mu).
 */
#ifndef KAA_OPS_SESSIONS_H
#define KAA_OPS_SESSIONS_H

#include "operations/ops_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The session of sid (referenced), created at its first frame when create;
 * NULL when absent and !create. */
ops_session *kaa__opl_session_get(kaa__operations *ops, kaa__session_id sid, bool create);
/* Releases a reference; the last frees the session. Accepts NULL. */
void kaa__opl_session_put(ops_session *s);
/* Registers s under its endpoint key; returns the sid of an older session
 * of the same endpoint on this node (0 if none), which the caller closes. */
kaa__session_id kaa__opl_bind_key(kaa__operations *ops, ops_session *s);
/* Removes s from both tables; returns whether it was in the sid table (the
 * caller then drops the table's reference). */
bool kaa__opl_session_unlink(kaa__operations *ops, ops_session *s);
/* References the established session of an endpoint on this node, or NULL;
 * release with kaa__opl_session_put. */
ops_session *kaa__opl_session_by_key(kaa__operations *ops, int64_t app_id, const char *key);
/* References to every session (of app_id when > 0); free with
 * kaa__opl_snapshot_free. */
ops_session **kaa__opl_sessions_snapshot(kaa__operations *ops, int64_t app_id, size_t *n);
void kaa__opl_snapshot_free(ops_session **v, size_t n);
/* Writes the session's endpoint record; logs failures and returns the
 * store's error. Caller holds s->mu. */
int kaa__opl_save(kaa__operations *ops, ops_session *s);

#endif
