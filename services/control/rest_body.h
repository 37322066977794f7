/*
 * rest_body.h - decoding of REST request bodies into store objects, driven
 * by a table of field specs: the body must be a JSON object (bounded by
 * KAA_META_BODY_MAX and KAA_JSON_MAX_DEPTH), every member must be a known
 * field settable by this operation, of the right type, and required fields
 * must be present. Errors name the offending member ($.name, $.ids[3]).
 * Pure functions apart from password hashing: any thread.
 */
#ifndef KAA_CONTROL_REST_BODY_H
#define KAA_CONTROL_REST_BODY_H

#include "store/meta_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

enum kaa__rest_ftype {
	KAA_RF_STR,      /* string, borrowed from the parsed body */
	KAA_RF_INT,      /* int64 */
	KAA_RF_BOOL,     /* bool */
	KAA_RF_JSON,     /* any JSON value, stored as canonical text */
	KAA_RF_IDS,      /* array of positive ids -> group_ids */
	KAA_RF_PASSWORD, /* string >= 8 chars, stored as a PBKDF2 hash */
	KAA_RF_TTL,      /* seconds 1..31536000, into kaa__rest_body.ttl_s */
};
/* KAA_RF_SECRET: a JSON object field whose top-level "secret" (and
 * "sasl_password") string is write-only: responses show "********" in its
 * place. */
enum {
	KAA_RF_CREATE = 1,
	KAA_RF_UPDATE = 2,
	KAA_RF_REQUIRED = 4,
	KAA_RF_READ = 8,
	KAA_RF_SECRET = 16,
};

typedef struct kaa__rest_field {
	const char *json; /* member name; NULL ends a table */
	enum kaa__rest_ftype type;
	size_t off; /* offset in kaa__meta_obj */
	int flags;
} kaa__rest_field;

/* What the decoded object points into; release with kaa__rest_body_free. */
typedef struct kaa__rest_body {
	yajl_val tree;
	char *owned[12]; /* strings to free */
	size_t n_owned;
	int64_t ids[256];
	int64_t ttl_s;
	bool has_ttl;
} kaa__rest_body;

typedef struct kaa__rest_error {
	int status; /* 400 or 413 */
	const char
		*code; /* static: malformed_json, unknown_field, invalid, missing_field, too_big */
	char message[160];
	char path[300]; /* "" when the error has no path */
} kaa__rest_error;

/* Decodes body[0..len) for the operation flag (KAA_RF_CREATE or
 * KAA_RF_UPDATE) into o (which keeps its other fields). Returns 0, or -1
 * with e filled; b must be freed either way. */
int kaa__rest_parse_body(const char *body, size_t len, const kaa__rest_field *fields, int flag,
			 kaa__meta_obj *o, kaa__rest_body *b, kaa__rest_error *e);
void kaa__rest_body_free(kaa__rest_body *b);

#endif
