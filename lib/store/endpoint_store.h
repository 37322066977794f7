/*
 * endpoint_store.h - the operations service's store of endpoint (device)
 * data: one record per registered endpoint, and the log records devices
 * upload. One interface, two backends chosen by URL (kaa-node --nosql):
 *
 *   sqlite:PATH           embedded default (parent directories are created;
 *                         WAL, synchronous=FULL so an acknowledged write
 *                         survives a crash)
 *   mongodb://...         MongoDB (or a MongoDB-protocol server such as
 *                         FerretDB) through libmongoc; writes use write
 *                         concern w=1 with j=true (journaled)
 *
 * Endpoints are keyed by (app_id, key_hash); key_hash is the base64url
 * (no padding) SHA-256 of the endpoint's public key, 43 characters.
 *
 * Owners: an endpoint may be attached to one owner (a user id of the
 * application, owner_id). Only kaa__ep_set_owner changes it; kaa__ep_put
 * never writes it. Sessions save their cached record whole with
 * kaa__ep_put, while the owner is changed by whichever node's session
 * handles the attach or detach request, usually not the one holding this
 * endpoint's session: a put from that session's stale copy must not undo
 * the change.
 *
 * Server profiles: like the owner, server_profile is written only by
 * kaa__ep_set_server_profile (control's REST API); kaa__ep_put keeps the
 * stored value (a new record has none), so a session saving its cached
 * record cannot undo a change made through control.
 *
 * Log records: a batch is identified by (app_id, key_hash, batch_id).
 * kaa__ep_logs_append stores all records of a batch or none; a batch that
 * was already stored is not stored again (*duplicate = true, KAA_OK), so a
 * device re-sending after a lost acknowledgement causes no duplicates.
 * When the call returns KAA_OK the records are durable (the caller then
 * acknowledges the batch to the device).
 *
 * Threads: one handle is shared by all threads; every function may be
 * called concurrently except kaa__ep_store_free. Calls block on I/O: never
 * call them from an event-loop thread.
 *
 * Errors (negative kaa_err) for every function unless it says less:
 *   KAA_ERR_INVAL        bad argument (NULL, empty or over-long key, bad
 *                        UTF-8, malformed JSON where JSON is expected)
 *   KAA_ERR_TOO_BIG      a field over its limit below
 *   KAA_ERR_NOTFOUND     no such endpoint
 *   KAA_ERR_CONFLICT     kaa__ep_set_owner: the expected owner did not
 *                        match; kaa__ep_find_by_access_token: the token is
 *                        shared by several endpoints
 *   KAA_ERR_UNAVAILABLE  the database cannot be reached; the next call
 *                        retries the connection. A write that failed this
 *                        way may or may not have been applied (appends stay
 *                        idempotent, so re-sending is safe).
 *   KAA_ERR_TIMEOUT      the database did not answer in time
 *   KAA_ERR_IO           the SQLite file cannot be read or written
 *   (out of memory aborts through kaa__oom(), base/alloc.h)
 *   KAA_ERR_INTERNAL     the database answered something unexpected (logged)
 */
#ifndef KAA_ENDPOINT_STORE_H
#define KAA_ENDPOINT_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_EP_KEY_HASH_MAX 64       /* bytes, without the NUL */
#define KAA_EP_TEXT_MAX 16384        /* public key, token, node id, hashes */
#define KAA_EP_JSON_MAX (256 * 1024) /* profiles, config document, state */
#define KAA_EP_LOG_RECORD_MAX (64 * 1024)
#define KAA_EP_BATCH_ID_MAX 128
#define KAA_EP_OWNER_MAX 256 /* owner_id bytes: 1..256 of UTF-8 */

typedef struct kaa__ep_store kaa__ep_store;

/*
 * One endpoint. Strings are owned by the struct (freed by
 * kaa__endpoint_clear); NULL means absent. JSON fields hold one JSON value.
 */
typedef struct kaa__endpoint {
	int64_t app_id;
	char *key_hash;                 /* required */
	char *public_key;               /* as the device sent it (base64) */
	char *access_token;             /* endpoint access token, may be NULL */
	char *client_profile;           /* JSON object the device reported */
	int64_t client_profile_version; /* profile-client schema version */
	char *server_profile;           /* JSON object, set through control */
	int64_t server_profile_version; /* 0 never set; +1 at each set (read only) */
	char *groups;                   /* JSON array of group ids it belongs to */
	char *config_hash;              /* hash of the last configuration delivered */
	char *config_doc;               /* that document (JSON), base for merge patches */
	char *topics;                   /* JSON array of optional topic ids subscribed */
	char *notif_state;              /* JSON object {"<topic id>": last acked seq} */
	char *node_id;                  /* operations node holding its session, or NULL */
	char *owner_id;                 /* owner attached, NULL: none (see kaa__ep_set_owner) */
	int64_t last_seen_ms;
	int64_t created_ms; /* set by the store at first put */
	int64_t updated_ms; /* set by the store at every put */
} kaa__endpoint;

/* Frees the strings and zeroes *ep; accepts NULL. */
void kaa__endpoint_clear(kaa__endpoint *ep);

/* Opens (creating tables/collections and indexes when missing). On error
 * *out is NULL. Extra error: KAA_ERR_INVAL for an unknown URL scheme. */
int kaa__ep_store_new(const char *url, kaa__ep_store **out);
void kaa__ep_store_free(kaa__ep_store *s); /* accepts NULL */
/* "sqlite" or "mongodb"; static. */
const char *kaa__ep_store_backend(const kaa__ep_store *s);

/* Reads one endpoint into *out (cleared first; caller clears it after). */
int kaa__ep_get(kaa__ep_store *s, int64_t app_id, const char *key_hash, kaa__endpoint *out);

/* Inserts or replaces the whole record (borrowed) except created_ms,
 * owner_id and server_profile, which keep their stored values; a new
 * record gets created_ms now, no owner and no server profile.
 * ep->owner_id and ep->server_profile are ignored (not even checked): see
 * "Owners" and "Server profiles" above. */
int kaa__ep_put(kaa__ep_store *s, const kaa__endpoint *ep);

/*
 * Attaches the endpoint to owner_id (1..KAA_EP_OWNER_MAX bytes of UTF-8,
 * borrowed), or detaches it when owner_id is NULL. expect_owner NULL sets
 * it whatever the stored owner; otherwise only when the stored owner
 * equals expect_owner, "" meaning "currently none" (compare-and-set).
 * Changes nothing else (not updated_ms). Durable on KAA_OK like put.
 * Errors: KAA_ERR_NOTFOUND when the endpoint is absent, KAA_ERR_CONFLICT
 * when expect_owner does not match (nothing changed), KAA_ERR_INVAL for ""
 * or bad UTF-8 in owner_id, KAA_ERR_TOO_BIG over KAA_EP_OWNER_MAX (either
 * argument).
 */
int kaa__ep_set_owner(kaa__ep_store *s, int64_t app_id, const char *key_hash, const char *owner_id,
		      const char *expect_owner);

/*
 * Sets the endpoint's server profile to json (one JSON value of at most
 * KAA_EP_JSON_MAX bytes, borrowed; NULL clears it), adds one to
 * server_profile_version and sets updated_ms to now; nothing else. When
 * expect_version >= 0 only if the stored server_profile_version equals it
 * (compare-and-set). *new_version (optional) receives the new version.
 * Durable on KAA_OK like put. Errors: KAA_ERR_NOTFOUND when the endpoint
 * is absent, KAA_ERR_CONFLICT when expect_version does not match (nothing
 * changed), KAA_ERR_INVAL for malformed JSON, KAA_ERR_TOO_BIG.
 */
int kaa__ep_set_server_profile(kaa__ep_store *s, int64_t app_id, const char *key_hash,
			       const char *json, int64_t expect_version, int64_t *new_version);

/*
 * Reads the endpoint of app_id whose access_token equals access_token
 * (non-empty text field) into *out, like kaa__ep_get. KAA_ERR_NOTFOUND
 * when none has it. Tokens are random per device, so two endpoints with
 * the same token mean a broken client or a forged token: the lookup then
 * fails with KAA_ERR_CONFLICT (logged) rather than pick one.
 */
int kaa__ep_find_by_access_token(kaa__ep_store *s, int64_t app_id, const char *access_token,
				 kaa__endpoint *out);

/* Updates only node_id (NULL clears it) and last_seen_ms. */
int kaa__ep_touch(kaa__ep_store *s, int64_t app_id, const char *key_hash, const char *node_id,
		  int64_t last_seen_ms);

/* Deletes the endpoint and its log records. KAA_ERR_NOTFOUND if absent. */
int kaa__ep_delete(kaa__ep_store *s, int64_t app_id, const char *key_hash);

/*
 * Calls cb for each endpoint of app_id in key_hash order, starting after
 * after_key (NULL: from the start), at most limit (1..1000) endpoints.
 * The endpoint passed to cb is borrowed for the call only. cb returning
 * non-zero stops the walk and that value is returned. *last_key (optional)
 * receives a malloc'd copy of the last key visited (NULL if none), for
 * the next page.
 */
typedef int (*kaa__ep_cb)(void *ud, const kaa__endpoint *ep);
int kaa__ep_list(kaa__ep_store *s, int64_t app_id, const char *after_key, int limit, kaa__ep_cb cb,
		 void *ud, char **last_key);

/* Calls cb for the endpoints of app_id attached to owner_id (rules of
 * kaa__ep_set_owner), in key_hash order: the first limit (1..1000) of
 * them, no cursor. cb as for kaa__ep_list (borrowed endpoint; non-zero
 * stops the walk and is returned). */
int kaa__ep_list_by_owner(kaa__ep_store *s, int64_t app_id, const char *owner_id, int limit,
			  kaa__ep_cb cb, void *ud);

/*
 * Appends one batch of log records (each a JSON value, borrowed, at most
 * KAA_EP_LOG_RECORD_MAX bytes; n 1..1000) for the endpoint, stamped with
 * received_ms and schema_version. Atomic and idempotent per batch as
 * described above. *duplicate (required) says whether the batch had
 * already been stored.
 */
int kaa__ep_logs_append(kaa__ep_store *s, int64_t app_id, const char *key_hash,
			const char *batch_id, int64_t schema_version, const char *const *records,
			size_t n, int64_t received_ms, bool *duplicate);

/* Number of log records stored for the endpoint (key_hash NULL: for the
 * whole application). */
int kaa__ep_logs_count(kaa__ep_store *s, int64_t app_id, const char *key_hash, int64_t *count);

/*
 * Calls cb(ud, batch_id, index_in_batch, record_json) for the endpoint's
 * records in (received order, index) order, at most limit (1..100000).
 * Strings are borrowed for the call. For tests and export.
 */
typedef int (*kaa__ep_log_cb)(void *ud, const char *batch_id, int64_t index, const char *record);
int kaa__ep_logs_list(kaa__ep_store *s, int64_t app_id, const char *key_hash, int limit,
		      kaa__ep_log_cb cb, void *ud);

/*
 * Log records of an application (key_hash NULL) or of one endpoint whose
 * batch was received in [from_ms, to_ms), in (received_ms, key_hash,
 * batch_id, index) order, starting after *after (NULL: from the start),
 * at most limit (1..KAA_EP_LOG_QUERY_MAX) records. Only complete batches
 * are visible (as for kaa__ep_logs_list). cb gets each record, borrowed
 * for the call; non-zero stops the walk and is returned. The position of
 * a record is its kaa__ep_log_pos, which the caller keeps as the cursor
 * of the next page.
 */
#define KAA_EP_LOG_QUERY_MAX 1000
typedef struct kaa__ep_log_pos {
	int64_t received_ms;
	const char *key_hash;
	const char *batch_id;
	int64_t index;
} kaa__ep_log_pos;
typedef struct kaa__ep_log_rec {
	kaa__ep_log_pos pos;
	int64_t schema_version;
	const char *record; /* the JSON text */
} kaa__ep_log_rec;
typedef int (*kaa__ep_log_query_cb)(void *ud, const kaa__ep_log_rec *r);
int kaa__ep_logs_query(kaa__ep_store *s, int64_t app_id, const char *key_hash, int64_t from_ms,
		       int64_t to_ms, const kaa__ep_log_pos *after, int limit,
		       kaa__ep_log_query_cb cb, void *ud);

/*
 * Counts of one application for a live overview: registered endpoints,
 * those registered at or after since_ms, log records received at or after
 * since_ms, and the endpoints per node_id (records whose node_id is set:
 * the node that holds or last held the session; the caller checks which
 * nodes are alive), at most KAA_EP_STATS_NODES_MAX nodes (the largest
 * counts). kaa__ep_stats_clear frees nodes.
 */
#define KAA_EP_STATS_NODES_MAX 1000
typedef struct kaa__ep_node_count {
	char *node_id;
	int64_t endpoints;
} kaa__ep_node_count;
typedef struct kaa__ep_stats {
	int64_t endpoints;
	int64_t registered_since;
	int64_t records_since;
	kaa__ep_node_count *nodes;
	size_t n_nodes;
} kaa__ep_stats;
void kaa__ep_stats_clear(kaa__ep_stats *st); /* accepts NULL */
int kaa__ep_stats_get(kaa__ep_store *s, int64_t app_id, int64_t since_ms, kaa__ep_stats *out);

#endif
