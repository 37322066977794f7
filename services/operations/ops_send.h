/*
 * ops_send.h - frames from the service to a session (layer L1 of
 * services/operations; may include ops_state.h, ops_io.h, ops_server.h and
 * lib/ only): every frame goes out through ops->io with protocol_version
 * filled in; Error and Ack answers; the WebSocket close codes.
 *
 * Threads: any thread (the io hooks are thread-safe); frames are borrowed.
 */
#ifndef KAA_OPS_SEND_H
#define KAA_OPS_SEND_H

#include "operations/ops_state.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* WebSocket close codes the service uses. */
enum { OPS_CLOSE_NORMAL = 1000, OPS_CLOSE_POLICY = 1008 };

/* Sends f (protocol_version filled in) to the session; logs failures other
 * than KAA_ERR_NOTFOUND (session gone). Returns the io's answer. */
int kaa__opl_send(kaa__operations *ops, kaa__session_id sid, Kaa__Endpoint__V1__Frame *f);
/* Sends Error{code} answering request_id (fatal: then closes with
 * OPS_CLOSE_POLICY). field and json_path may be NULL. */
void kaa__opl_error(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
		    Kaa__Endpoint__V1__ErrorCode code, bool fatal, const char *field,
		    const char *json_path, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
void kaa__opl_ack(kaa__operations *ops, kaa__session_id sid, uint64_t request_id);
/* Splits a validation error of lib/json/json_merge.h's form ("$.path: message")
 * into path (cap bytes, truncated) and *msg (points into err), for an
 * Error's json_path and message. */
void kaa__opl_split_err(const char *err, char *path, size_t cap, const char **msg);

#endif
