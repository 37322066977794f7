/*
 * ep_query.h - the query strings of the endpoint and log routes
 * (endpoint_api.h) and their cursors: outside bytes, so every field is
 * bounded and checked here, before any store is asked.
 *
 * Endpoint list: limit (1..1000, default 100), cursor (the nextCursor of
 * the previous page: an endpoint key hash), group (a group id), online
 * (true/false), owner (an owner id), filter (a profile filter expression,
 * lib/json/filter.h, compiled here; at most KAA_EPQ_FILTER_MAX bytes).
 * Log query: limit (1..1000, default 100), cursor (opaque: base64url of
 * "<received_ms>:<index>:<key hash>:<batch id>"), from and to
 * (milliseconds since the epoch; default 0 and "no end"), endpoint (a key
 * hash; absent: the whole application).
 *
 * Pure functions on caller memory; any thread.
 */
#ifndef KAA_CONTROL_EP_QUERY_H
#define KAA_CONTROL_EP_QUERY_H

#include "json/filter.h"
#include "store/endpoint_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_EPQ_LIMIT_DEFAULT 100
#define KAA_EPQ_LIMIT_MAX 1000
#define KAA_EPQ_FILTER_MAX 4096
#define KAA_EPQ_CURSOR_MAX 512 /* a log cursor, with the NUL */

/* A bad parameter: the query parameter's name and a message (static). */
typedef struct kaa__epq_error {
	const char *param;
	const char *message;
} kaa__epq_error;

typedef struct kaa__epq_list {
	int limit;
	char after[KAA_EP_KEY_HASH_MAX + 1]; /* "" from the start */
	int64_t group_id;                    /* 0: any */
	int online;                          /* -1 any, 0 offline only, 1 online only */
	char owner[KAA_EP_OWNER_MAX + 1];    /* "" any */
	kaa__filter *filter;                 /* NULL: none; owned */
} kaa__epq_list;

typedef struct kaa__epq_logs {
	int limit;
	int64_t from_ms, to_ms;
	char endpoint[KAA_EP_KEY_HASH_MAX + 1]; /* "" the whole application */
	bool has_after;
	kaa__ep_log_pos after; /* its strings point into the two buffers below */
	char after_key[KAA_EP_KEY_HASH_MAX + 1];
	char after_batch[KAA_EP_BATCH_ID_MAX + 1];
} kaa__epq_logs;

/* Whether s is a key hash the endpoint store accepts (1..64 bytes of
 * base64 or base64url characters and '.'). */
bool kaa__epq_key_valid(const char *s);

/* Parse query (the raw text after '?', borrowed). 0 with *q filled, or -1
 * with *e set (nothing to free then). kaa__epq_list_free frees the filter
 * (accepts NULL). */
int kaa__epq_list_parse(const char *query, kaa__epq_list *q, kaa__epq_error *e);
void kaa__epq_list_free(kaa__epq_list *q);
int kaa__epq_logs_parse(const char *query, kaa__epq_logs *q, kaa__epq_error *e);

/* The cursor text for the position after p into out (cap bytes; at least
 * KAA_EPQ_CURSOR_MAX is always enough). Returns 0, or -1 when it does not
 * fit. */
int kaa__epq_log_cursor(const kaa__ep_log_pos *p, char *out, size_t cap);

#endif
