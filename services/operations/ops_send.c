/*
 * ops_send.c - sending frames to sessions (ops_send.h).
 */
#include "operations/ops_send.h"

#include "base/error.h"
#include "proto/endpoint_codec.h"
#include "json/json_merge.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;

int kaa__opl_send(kaa__operations *ops, kaa__session_id sid, frame_t *f)
{
	f->protocol_version = KAA__PROTOCOL_VERSION;
	int rc = ops->io.send(ops->io.ud, sid, f);
	if (rc != KAA_OK && rc != KAA_ERR_NOTFOUND)
		KAA_WARN(MOD, "send_failed sid=%" PRIu64 " body=%d err=%s", sid, (int)f->body_case,
			 kaa_strerror(rc));
	return rc;
}

void kaa__opl_error(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
		    Kaa__Endpoint__V1__ErrorCode code, bool fatal, const char *field,
		    const char *json_path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Error e = KAA__ENDPOINT__V1__ERROR__INIT;
	e.code = code;
	e.message = msg;
	e.request_id = request_id;
	e.field = (char *)(field ? field : "");
	e.json_path = (char *)(json_path ? json_path : "");
	e.fatal = fatal;
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ERROR;
	f.error = &e;
	kaa__opl_send(ops, sid, &f);
	if (fatal)
		ops->io.close(ops->io.ud, sid, OPS_CLOSE_POLICY);
}

void kaa__opl_ack(kaa__operations *ops, kaa__session_id sid, uint64_t request_id)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ACK;
	f.ack = &a;
	kaa__opl_send(ops, sid, &f);
}

void kaa__opl_split_err(const char *err, char *path, size_t cap, const char **msg)
{
	size_t pl = 0;
	*msg = kaa__json_err_msg(err, &pl);
	if (pl >= cap)
		pl = cap - 1;
	memcpy(path, err, pl);
	path[pl] = '\0';
}
