/*
 * rest_reply.h - the JSON answers of the control REST API: the error shape
 * {"error":{"code","message","path"}}, the HTTP status of each metadata
 * store error, and yajl generator helpers for answer bodies.
 * Each call writes into a response or generator the caller owns and keeps
 * no state: any thread.
 */
#ifndef KAA_CONTROL_REST_REPLY_H
#define KAA_CONTROL_REST_REPLY_H

#include "http/http_server.h"

#include <stdbool.h>
#include <yajl/yajl_gen.h>

/* Answers status with {"error":{"code":code,"message":msg,"path":path}};
 * path NULL leaves the member out. All strings are copied. */
void kaa__reply_error(kaa__http_response *resp, int status, const char *code, const char *msg,
		      const char *path);
/* Answers a metadata store error rc (a negative kaa_err): NOTFOUND 404,
 * EXISTS 409, CONFLICT 412, INVAL 400, TOO_BIG 413, UNAVAILABLE and
 * TIMEOUT 503 with Retry-After: 1, anything else 500. */
void kaa__reply_store_error(kaa__http_response *resp, int rc);
/* Answers status with the JSON text generated so far in g (g stays the
 * caller's to free). */
void kaa__reply_gen(kaa__http_response *resp, int status, yajl_gen g);

/* A string (a map key or a value). */
void kaa__gen_key(yajl_gen g, const char *k);
/* Member k with the string v, or null when v is NULL. */
void kaa__gen_str(yajl_gen g, const char *k, const char *v);
/* A stored JSON text as a value in canonical form (null when json is NULL
 * or does not parse). redact: a top-level "secret" or "sasl_password"
 * string member is written as "********" (write-only secrets). */
void kaa__gen_json(yajl_gen g, const char *json, bool redact);

#endif
