/*
 * redirect.h - moving devices to other operations nodes: drain (every
 * device, in jittered batches, until none is left or the deadline) and
 * rebalancing plans from the control leader (layer L2 of
 * services/operations: a feature handler; may include the L1 headers
 * ops_state.h, ops_send.h, ops_sessions.h, ops_app_cache.h, ops_jobs.h,
 * ops_io.h, ops_server.h and lib/). The drain and rebalance watches that
 * call these are in operations.c.
 *
 * Threads: kaa__opl_drain from any thread (blocks until done; takes each
 * session's mu); kaa__opl_rebalance_plan from the rebalance watch thread
 * only (it owns ops->rebalance_seq).
 */
#ifndef KAA_OPS_REDIRECT_H
#define KAA_OPS_REDIRECT_H

#include "operations/ops_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* As kaa__operations_drain (operations.h): stops admission, redirects every
 * device in jittered batches and returns when no session is left or at
 * deadline_ms (unix ms; 0: now + drain_timeout_ms). Returns the sessions
 * left. */
size_t kaa__opl_drain(kaa__operations *ops, int64_t deadline_ms);
/* A plan from the control leader (json, len bytes; malformed: logged and
 * ignored): applies the moves from this node, once per seq. apply = false
 * only records the seq (the snapshot at start-up). */
void kaa__opl_rebalance_plan(kaa__operations *ops, const char *json, size_t len, bool apply);

#endif
