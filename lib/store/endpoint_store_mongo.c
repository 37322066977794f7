/*
 * endpoint_store_mongo.c - the MongoDB backend of endpoint_store.h, through
 * libmongoc's thread-safe client pool. Works with MongoDB and with FerretDB
 * (the test server), so it uses no multi-document transactions.
 *
 * Database: the URL's database, "kaa" when it names none. Collections:
 *   endpoints     _id "<app>:<key>", fields app, key and one per struct field
 *                 (JSON fields as strings, absent ones null); owner_id is
 *                 written only by set_owner and server_profile only by
 *                 set_server_profile (both null on insert; documents from
 *                 before owners lack owner_id, which queries treat as null)
 *   log_records   _id "<app>:<key>:<index>:<batch>", app, key, batch, idx,
 *                 received_ms, schema_version, record (the JSON text)
 *   log_batches   _id "<app>:<key>:<batch>", app, key, batch, n,
 *                 schema_version, received_ms, t (ms when stored), o (ObjectId
 *                 for ties): the batch marker
 * app is numeric and key_hash has no ':' (endpoint_store.c), so the ids
 * cannot collide whatever the batch id holds.
 *
 * Batch atomicity without transactions (docs/endpoint-store.md):
 *   1. a marker exists -> duplicate, done;
 *   2. insert the records unordered; duplicate-key errors mean an earlier
 *      attempt stored some of them: then every record is replaced by _id
 *      (upsert), so the batch carries this attempt's stamps throughout;
 *   3. insert the marker LAST; a duplicate key there means a concurrent
 *      append of the same batch finished first -> duplicate.
 * Readers (count, list) go through markers only, so a batch is visible
 * when complete and never half. Records of an attempt that failed before
 * its marker stay invisible until the device re-sends the batch.
 *
 * Owners: set_owner's compare-and-set is one update_one whose filter holds
 * the expected owner, and put's $set leaves owner_id out; MongoDB applies
 * a single-document update atomically, so neither a concurrent set_owner
 * nor a concurrent put can undo it. FerretDB 1.x does not: it runs every
 * update as find, then replace of the whole document, so there two
 * concurrent compare-and-sets may both succeed and a put racing a
 * set_owner may write the old owner back. Logged at open.
 *
 * Bounded waits: serverSelectionTimeoutMS 3000, connectTimeoutMS 2000,
 * socketTimeoutMS 10000 unless the URL sets them; write concern w=1, j=true
 * unless the URL sets one.
 */
#include "base/clock.h"
#include "store/endpoint_store_internal.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "ep_store"
#define DUP_KEY 11000
#define ID_MAX (24 + KAA_EP_KEY_HASH_MAX + 24 + KAA_EP_BATCH_ID_MAX + 8)

struct mongo {
	mongoc_uri_t *uri;
	mongoc_client_pool_t *pool;
	char *db;
};

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* libmongoc's own log lines go through ours: errors and warnings kept
 * (minus the "endSessions" FerretDB does not know), the rest dropped. */
static void log_handler(mongoc_log_level_t level, const char *domain, const char *msg, void *ud)
{
	(void)ud;
	if (level <= MONGOC_LOG_LEVEL_ERROR)
		KAA_ERROR(MOD, "mongoc domain=%s msg=\"%s\"", domain, msg);
	else if (level == MONGOC_LOG_LEVEL_WARNING && !strstr(msg, "endSessions"))
		KAA_WARN(MOD, "mongoc domain=%s msg=\"%s\"", domain, msg);
}

/* Never cleaned up: mongoc_cleanup would break other users in the process. */
static void init_driver(void)
{
	mongoc_init();
	mongoc_log_set_handler(log_handler, NULL);
}

static int map_err(const bson_error_t *e, const char *what)
{
	int err;
	switch (e->domain) {
	case MONGOC_ERROR_SERVER_SELECTION:
	case MONGOC_ERROR_CLIENT:
	case MONGOC_ERROR_CLIENT_AUTHENTICATE: err = KAA_ERR_UNAVAILABLE; break;
	case MONGOC_ERROR_STREAM:
		err = strstr(e->message, "timed out") ? KAA_ERR_TIMEOUT : KAA_ERR_UNAVAILABLE;
		break;
	case MONGOC_ERROR_BSON: err = KAA_ERR_TOO_BIG; break;
	default:
		if (e->code == DUP_KEY)
			return KAA_ERR_EXISTS;
		/* NotWritablePrimary, NotPrimaryNoSecondaryOk, ShutdownInProgress, ... */
		if (e->code == 10107 || e->code == 13435 || e->code == 11600 || e->code == 91 ||
		    e->code == 189)
			err = KAA_ERR_UNAVAILABLE;
		else
			err = KAA_ERR_INTERNAL;
		break;
	}
	if (err == KAA_ERR_UNAVAILABLE || err == KAA_ERR_TIMEOUT)
		KAA_WARN(MOD,
			 "mongo_unavailable op=%s domain=%" PRIu32 " code=%" PRIu32 " msg=\"%s\"",
			 what, e->domain, e->code, e->message);
	else
		KAA_ERROR(MOD, "mongo_error op=%s domain=%" PRIu32 " code=%" PRIu32 " msg=\"%s\"",
			  what, e->domain, e->code, e->message);
	return err;
}

static mongoc_collection_t *coll(struct mongo *m, mongoc_client_t *c, const char *name)
{
	return mongoc_client_get_collection(c, m->db, name);
}

static void ep_id(char *buf, int64_t app_id, const char *key)
{
	snprintf(buf, ID_MAX, "%" PRId64 ":%s", app_id, key);
}

static void batch_id_str(char *buf, int64_t app_id, const char *key, const char *batch)
{
	snprintf(buf, ID_MAX, "%" PRId64 ":%s:%s", app_id, key, batch);
}

static void append_str(bson_t *b, const char *k, const char *v)
{
	if (v)
		BSON_APPEND_UTF8(b, k, v);
	else
		BSON_APPEND_NULL(b, k);
}

/* ---- open / close ------------------------------------------------------ */

static void set_default_int(mongoc_uri_t *uri, const char *opt, int32_t v)
{
	const bson_t *opts = mongoc_uri_get_options(uri);
	bson_iter_t it;
	/* option names are stored lowercased */
	char lower[64];
	size_t i;
	for (i = 0; opt[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)((opt[i] >= 'A' && opt[i] <= 'Z') ? opt[i] + 32 : opt[i]);
	lower[i] = '\0';
	if (opts && bson_iter_init_find_case(&it, opts, lower))
		return;
	mongoc_uri_set_option_as_int32(uri, opt, v);
}

static int create_indexes(struct mongo *m, mongoc_client_t *c)
{
	static const struct {
		const char *coll, *name;
		const char *keys[4];
	} idx[] = {
		{"endpoints", "app_key", {"app", "key", NULL, NULL}},
		{"endpoints", "app_token", {"app", "access_token", NULL, NULL}},
		/* key last: list_by_owner's sort comes from the index */
		{"endpoints", "app_owner_key", {"app", "owner_id", "key", NULL}},
		{"log_records", "app_key_batch_idx", {"app", "key", "batch", "idx"}},
		{"log_batches", "app_key_t_o", {"app", "key", "t", "o"}},
		/* logs_query of an application by time, and stats */
		{"log_batches", "app_received_key_batch", {"app", "received_ms", "key", "batch"}},
	};
	bson_error_t e;
	int err = KAA_OK;
	mongoc_database_t *db = mongoc_client_get_database(c, m->db);
	for (size_t i = 0; i < sizeof(idx) / sizeof(idx[0]) && err == KAA_OK; i++) {
		bson_t cmd = BSON_INITIALIZER, indexes, one, key;
		BSON_APPEND_UTF8(&cmd, "createIndexes", idx[i].coll);
		BSON_APPEND_ARRAY_BEGIN(&cmd, "indexes", &indexes);
		BSON_APPEND_DOCUMENT_BEGIN(&indexes, "0", &one);
		BSON_APPEND_DOCUMENT_BEGIN(&one, "key", &key);
		for (int k = 0; k < 4 && idx[i].keys[k]; k++)
			BSON_APPEND_INT32(&key, idx[i].keys[k], 1);
		bson_append_document_end(&one, &key);
		BSON_APPEND_UTF8(&one, "name", idx[i].name);
		bson_append_document_end(&indexes, &one);
		bson_append_array_end(&cmd, &indexes);
		if (!mongoc_database_write_command_with_opts(db, &cmd, NULL, NULL, &e))
			err = map_err(&e, "create_indexes");
		bson_destroy(&cmd);
	}
	mongoc_database_destroy(db);
	return err;
}

/* See "Owners" above. A failed buildInfo is not an error: the ping passed. */
static void warn_if_ferretdb(mongoc_client_t *c)
{
	bson_error_t e;
	bson_t reply;
	bson_iter_t it;
	bson_t *cmd = BCON_NEW("buildInfo", BCON_INT32(1));
	if (mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, &e) &&
	    bson_iter_init_find(&it, &reply, "ferretdbVersion") && BSON_ITER_HOLDS_UTF8(&it))
		KAA_WARN(
			MOD,
			"mongo_server_ferretdb version=%s note=\"updates are not atomic: concurrent"
			" set_owner or put on one endpoint may lose an owner change\"",
			bson_iter_utf8(&it, NULL));
	bson_destroy(&reply);
	bson_destroy(cmd);
}

static void mongo_close(void *impl)
{
	struct mongo *m = impl;
	if (!m)
		return;
	if (m->pool)
		mongoc_client_pool_destroy(m->pool);
	mongoc_uri_destroy(m->uri);
	free(m->db);
	free(m);
}

static int mongo_open(const char *url, void **impl)
{
	bson_error_t e;
	int err = KAA_OK;
	mongoc_write_concern_t *wc = NULL;
	mongoc_client_t *c = NULL;
	struct mongo *m;

	pthread_once(&init_once, init_driver);
	m = kaa__xcalloc(1, sizeof(*m));
	m->uri = mongoc_uri_new_with_error(url, &e);
	if (!m->uri) {
		KAA_ERROR(MOD, "mongo_bad_url msg=\"%s\"", e.message);
		err = KAA_ERR_INVAL;
		goto out;
	}
	set_default_int(m->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
	set_default_int(m->uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000);
	set_default_int(m->uri, MONGOC_URI_SOCKETTIMEOUTMS, 10000);
	const mongoc_write_concern_t *uwc = mongoc_uri_get_write_concern(m->uri);
	if (!uwc || mongoc_write_concern_get_w(uwc) == MONGOC_WRITE_CONCERN_W_DEFAULT) {
		wc = mongoc_write_concern_new();
		mongoc_write_concern_set_w(wc, 1);
		mongoc_write_concern_set_journal(wc, true);
		mongoc_uri_set_write_concern(m->uri, wc);
	}
	const char *db = mongoc_uri_get_database(m->uri);
	m->db = kaa__xstrdup(db && *db ? db : "kaa");
	m->pool = mongoc_client_pool_new(m->uri);
	if (!m->pool) {
		err = KAA_ERR_INVAL;
		goto out;
	}
	mongoc_client_pool_set_error_api(m->pool, MONGOC_ERROR_API_VERSION_2);
	mongoc_client_pool_set_appname(m->pool, "kaa-node");
	c = mongoc_client_pool_pop(m->pool);
	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bool ok = mongoc_client_command_simple(c, "admin", ping, NULL, NULL, &e);
	bson_destroy(ping);
	if (!ok) {
		err = map_err(&e, "ping");
		goto out;
	}
	warn_if_ferretdb(c);
	err = create_indexes(m, c);
out:
	if (c)
		mongoc_client_pool_push(m->pool, c);
	mongoc_write_concern_destroy(wc);
	if (err != KAA_OK) {
		mongo_close(m);
		m = NULL;
	}
	*impl = m;
	return err;
}

/* ---- endpoints ---------------------------------------------------------- */

static char *iter_dup(const bson_t *doc, const char *k)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, k) || !BSON_ITER_HOLDS_UTF8(&it))
		return NULL;
	return kaa__ep_strdup(bson_iter_utf8(&it, NULL));
}

static int64_t iter_int(const bson_t *doc, const char *k)
{
	bson_iter_t it;
	if (!bson_iter_init_find(&it, doc, k))
		return 0;
	if (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it) || BSON_ITER_HOLDS_DOUBLE(&it))
		return bson_iter_as_int64(&it);
	return 0;
}

static int decode_ep(const bson_t *d, kaa__endpoint *ep)
{
	int err = KAA_OK;
	ep->app_id = iter_int(d, "app");
	ep->key_hash = iter_dup(d, "key");
	ep->public_key = iter_dup(d, "public_key");
	ep->access_token = iter_dup(d, "access_token");
	ep->client_profile = iter_dup(d, "client_profile");
	ep->client_profile_version = iter_int(d, "client_profile_version");
	ep->server_profile = iter_dup(d, "server_profile");
	ep->groups = iter_dup(d, "groups");
	ep->config_hash = iter_dup(d, "config_hash");
	ep->config_doc = iter_dup(d, "config_doc");
	ep->topics = iter_dup(d, "topics");
	ep->notif_state = iter_dup(d, "notif_state");
	ep->node_id = iter_dup(d, "node_id");
	ep->owner_id = iter_dup(d, "owner_id");
	ep->last_seen_ms = iter_int(d, "last_seen_ms");
	ep->created_ms = iter_int(d, "created_ms");
	ep->updated_ms = iter_int(d, "updated_ms");
	ep->server_profile_version = iter_int(d, "server_profile_version");
	if (!ep->key_hash) {
		KAA_ERROR(MOD, "mongo_bad_document coll=endpoints");
		err = KAA_ERR_INTERNAL;
	}
	if (err != KAA_OK)
		kaa__endpoint_clear(ep);
	return err;
}

static int mongo_get(void *impl, int64_t app_id, const char *key_hash, kaa__endpoint *out)
{
	struct mongo *m = impl;
	char id[ID_MAX];
	bson_error_t e;
	const bson_t *doc;
	int err = KAA_ERR_NOTFOUND;
	ep_id(id, app_id, key_hash);
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	bson_t *opts = BCON_NEW("limit", BCON_INT64(1));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
	if (mongoc_cursor_next(cur, &doc))
		err = decode_ep(doc, out);
	else if (mongoc_cursor_error(cur, &e))
		err = map_err(&e, "get");
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	return err;
}

static int mongo_put(void *impl, const kaa__endpoint *ep, int64_t now_ms)
{
	struct mongo *m = impl;
	char id[ID_MAX];
	bson_error_t e;
	bson_t set, on_insert;
	int err = KAA_OK;
	ep_id(id, ep->app_id, ep->key_hash);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	bson_t *update = bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
	BSON_APPEND_INT64(&set, "app", ep->app_id);
	BSON_APPEND_UTF8(&set, "key", ep->key_hash);
	append_str(&set, "public_key", ep->public_key);
	append_str(&set, "access_token", ep->access_token);
	append_str(&set, "client_profile", ep->client_profile);
	BSON_APPEND_INT64(&set, "client_profile_version", ep->client_profile_version);
	append_str(&set, "groups", ep->groups);
	append_str(&set, "config_hash", ep->config_hash);
	append_str(&set, "config_doc", ep->config_doc);
	append_str(&set, "topics", ep->topics);
	append_str(&set, "notif_state", ep->notif_state);
	append_str(&set, "node_id", ep->node_id);
	BSON_APPEND_INT64(&set, "last_seen_ms", ep->last_seen_ms);
	BSON_APPEND_INT64(&set, "updated_ms", now_ms);
	bson_append_document_end(update, &set);
	BSON_APPEND_DOCUMENT_BEGIN(update, "$setOnInsert", &on_insert);
	BSON_APPEND_INT64(&on_insert, "created_ms", now_ms);
	BSON_APPEND_NULL(&on_insert, "owner_id");
	BSON_APPEND_NULL(&on_insert, "server_profile");
	BSON_APPEND_INT64(&on_insert, "server_profile_version", 0);
	bson_append_document_end(update, &on_insert);
	bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));

	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	/* two upserts of a new _id may race: the loser gets a duplicate key
	 * and succeeds as an update on the second try */
	for (int attempt = 0; attempt < 2; attempt++) {
		err = KAA_OK;
		if (mongoc_collection_update_one(col, filter, update, opts, NULL, &e))
			break;
		err = map_err(&e, "put");
		if (err != KAA_ERR_EXISTS)
			break;
	}
	if (err == KAA_ERR_EXISTS)
		err = KAA_ERR_INTERNAL;
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(opts);
	bson_destroy(update);
	bson_destroy(filter);
	return err;
}

static int mongo_touch(void *impl, int64_t app_id, const char *key_hash, const char *node_id,
		       int64_t last_seen_ms)
{
	struct mongo *m = impl;
	char id[ID_MAX];
	bson_error_t e;
	bson_t reply, set;
	int err = KAA_OK;
	ep_id(id, app_id, key_hash);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	bson_t *update = bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
	append_str(&set, "node_id", node_id);
	BSON_APPEND_INT64(&set, "last_seen_ms", last_seen_ms);
	bson_append_document_end(update, &set);

	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	if (!mongoc_collection_update_one(col, filter, update, NULL, &reply, &e))
		err = map_err(&e, "touch");
	else if (iter_int(&reply, "matchedCount") == 0)
		err = KAA_ERR_NOTFOUND;
	bson_destroy(&reply);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(update);
	bson_destroy(filter);
	return err;
}

/* Whether the endpoint exists (*found), for telling a lost
 * compare-and-set from an absent endpoint. */
static int ep_exists(mongoc_collection_t *col, const char *id, bool *found)
{
	bson_error_t e;
	const bson_t *doc;
	int err = KAA_OK;
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	bson_t *opts =
		BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
	*found = mongoc_cursor_next(cur, &doc);
	if (!*found && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "set_owner_check");
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	return err;
}

/* One conditional update_one: the filter carries the expected owner, so
 * the compare-and-set is atomic on MongoDB (not on FerretDB 1.x: "Owners"
 * above). When nothing matched, a
 * second read tells absent from conflict; an endpoint deleted in between
 * reports NOTFOUND, which is true by then. */
static int mongo_set_owner(void *impl, int64_t app_id, const char *key_hash, const char *owner_id,
			   const char *expect_owner)
{
	struct mongo *m = impl;
	char id[ID_MAX];
	bson_error_t e;
	bson_t reply, set;
	int err = KAA_OK;
	ep_id(id, app_id, key_hash);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	if (expect_owner && *expect_owner)
		BSON_APPEND_UTF8(filter, "owner_id", expect_owner);
	else if (expect_owner) /* null also matches a missing field */
		BSON_APPEND_NULL(filter, "owner_id");
	bson_t *update = bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
	append_str(&set, "owner_id", owner_id);
	bson_append_document_end(update, &set);

	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	if (!mongoc_collection_update_one(col, filter, update, NULL, &reply, &e)) {
		err = map_err(&e, "set_owner");
	} else if (iter_int(&reply, "matchedCount") == 0) {
		bool found = false;
		err = expect_owner ? ep_exists(col, id, &found) : KAA_OK;
		if (err == KAA_OK)
			err = found ? KAA_ERR_CONFLICT : KAA_ERR_NOTFOUND;
	}
	bson_destroy(&reply);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(update);
	bson_destroy(filter);
	return err;
}

static int mongo_find_by_token(void *impl, int64_t app_id, const char *access_token,
			       kaa__endpoint *out)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *doc;
	int err = KAA_ERR_NOTFOUND;
	bson_t *filter =
		BCON_NEW("app", BCON_INT64(app_id), "access_token", BCON_UTF8(access_token));
	/* two documents are enough to tell a shared token */
	bson_t *opts = BCON_NEW("limit", BCON_INT64(2));
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
	if (mongoc_cursor_next(cur, &doc)) {
		err = decode_ep(doc, out);
		if (err == KAA_OK && mongoc_cursor_next(cur, &doc)) {
			KAA_WARN(MOD, "access_token_shared app=%" PRId64 " key=%s", app_id,
				 out->key_hash);
			err = KAA_ERR_CONFLICT;
		}
	}
	if ((err == KAA_OK || err == KAA_ERR_NOTFOUND) && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "find_by_token");
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	return err;
}

static int mongo_list_by_owner(void *impl, int64_t app_id, const char *owner_id, int limit,
			       kaa__ep_cb cb, void *ud)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *doc;
	int err = KAA_OK;
	bson_t *filter = BCON_NEW("app", BCON_INT64(app_id), "owner_id", BCON_UTF8(owner_id));
	bson_t *opts = BCON_NEW("sort", "{", "key", BCON_INT32(1), "}", "limit", BCON_INT64(limit));
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
	while (err == KAA_OK && mongoc_cursor_next(cur, &doc)) {
		kaa__endpoint ep = {0};
		err = decode_ep(doc, &ep);
		if (err == KAA_OK)
			err = cb(ud, &ep);
		kaa__endpoint_clear(&ep);
	}
	if (err == KAA_OK && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "list_by_owner");
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(opts);
	bson_destroy(filter);
	return err;
}

/* Logs first: a delete that fails half-way leaves the endpoint, so it can
 * be repeated; the endpoint going last is what makes it "deleted". */
static int mongo_del(void *impl, int64_t app_id, const char *key_hash)
{
	static const char *const colls[] = {"log_batches", "log_records"};
	struct mongo *m = impl;
	char id[ID_MAX];
	bson_error_t e;
	bson_t reply;
	int err = KAA_OK;
	ep_id(id, app_id, key_hash);
	bson_t *sel = BCON_NEW("app", BCON_INT64(app_id), "key", BCON_UTF8(key_hash));
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	/* markers before records: no complete-looking batch is left with
	 * missing records in between */
	for (size_t i = 0; i < 2 && err == KAA_OK; i++) {
		mongoc_collection_t *col = coll(m, c, colls[i]);
		if (!mongoc_collection_delete_many(col, sel, NULL, NULL, &e))
			err = map_err(&e, "delete_logs");
		mongoc_collection_destroy(col);
	}
	if (err == KAA_OK) {
		mongoc_collection_t *col = coll(m, c, "endpoints");
		if (!mongoc_collection_delete_one(col, filter, NULL, &reply, &e))
			err = map_err(&e, "delete");
		else if (iter_int(&reply, "deletedCount") == 0)
			err = KAA_ERR_NOTFOUND;
		bson_destroy(&reply);
		mongoc_collection_destroy(col);
	}
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(filter);
	bson_destroy(sel);
	return err;
}

static int mongo_list(void *impl, int64_t app_id, const char *after_key, int limit, kaa__ep_cb cb,
		      void *ud, char **last_key)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *doc;
	char *last = NULL;
	bool stopped = false;
	int err = KAA_OK;
	bson_t *filter;
	if (after_key)
		filter = BCON_NEW("app", BCON_INT64(app_id), "key", "{", "$gt",
				  BCON_UTF8(after_key), "}");
	else
		filter = BCON_NEW("app", BCON_INT64(app_id));
	bson_t *opts = BCON_NEW("sort", "{", "key", BCON_INT32(1), "}", "limit", BCON_INT64(limit));
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
	while (mongoc_cursor_next(cur, &doc)) {
		kaa__endpoint ep = {0};
		err = decode_ep(doc, &ep);
		if (err != KAA_OK)
			break;
		free(last);
		last = kaa__xstrdup(ep.key_hash);
		int r = cb(ud, &ep);
		kaa__endpoint_clear(&ep);
		if (r != 0) {
			err = r;
			stopped = true;
			break;
		}
	}
	if (err == KAA_OK && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "list");
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(opts);
	bson_destroy(filter);
	if (last_key && (err == KAA_OK || stopped)) {
		*last_key = last;
		last = NULL;
	}
	free(last);
	return err;
}

/* ---- logs ------------------------------------------------------------------ */

static bson_t *record_doc(int64_t app_id, const char *key, const char *batch, size_t i,
			  int64_t schema_version, const char *record, int64_t received_ms)
{
	char id[ID_MAX];
	snprintf(id, sizeof(id), "%" PRId64 ":%s:%zu:%s", app_id, key, i, batch);
	bson_t *d = bson_new();
	BSON_APPEND_UTF8(d, "_id", id);
	BSON_APPEND_INT64(d, "app", app_id);
	BSON_APPEND_UTF8(d, "key", key);
	BSON_APPEND_UTF8(d, "batch", batch);
	BSON_APPEND_INT64(d, "idx", (int64_t)i);
	BSON_APPEND_INT64(d, "received_ms", received_ms);
	BSON_APPEND_INT64(d, "schema_version", schema_version);
	BSON_APPEND_UTF8(d, "record", record);
	return d;
}

/* True when every write error in an insert_many reply is a duplicate key
 * (and there is at least one). */
static bool only_dup_keys(const bson_t *reply)
{
	bson_iter_t it, arr, we;
	int n = 0;
	if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
	    !bson_iter_recurse(&it, &arr))
		return false;
	while (bson_iter_next(&arr)) {
		if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &we) ||
		    !bson_iter_find(&we, "code") || bson_iter_as_int64(&we) != DUP_KEY)
			return false;
		n++;
	}
	if (bson_iter_init_find(&it, reply, "writeConcernErrors") && BSON_ITER_HOLDS_ARRAY(&it)) {
		uint32_t len;
		const uint8_t *data;
		bson_iter_array(&it, &len, &data);
		if (len > 5) /* a non-empty array */
			return false;
	}
	return n > 0;
}

/* The slow path of step 2: an earlier attempt stored part of the batch.
 * Replace every record so the batch is whole and uniformly stamped. */
static int rewrite_records(mongoc_collection_t *col, bson_t **docs, size_t n)
{
	bson_error_t e;
	bson_t reply;
	int err = KAA_OK;
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	mongoc_bulk_operation_t *bulk =
		mongoc_collection_create_bulk_operation_with_opts(col, opts);
	bson_t *upsert = BCON_NEW("upsert", BCON_BOOL(true));
	for (size_t i = 0; i < n && err == KAA_OK; i++) {
		bson_iter_t it;
		bson_iter_init_find(&it, docs[i], "_id");
		bson_t *sel = BCON_NEW("_id", BCON_UTF8(bson_iter_utf8(&it, NULL)));
		if (!mongoc_bulk_operation_replace_one_with_opts(bulk, sel, docs[i], upsert, &e))
			err = map_err(&e, "logs_rewrite");
		bson_destroy(sel);
	}
	if (err == KAA_OK) {
		/* execute initialises reply whatever it returns */
		if (!mongoc_bulk_operation_execute(bulk, &reply, &e))
			err = map_err(&e, "logs_rewrite");
		bson_destroy(&reply);
	}
	mongoc_bulk_operation_destroy(bulk);
	bson_destroy(upsert);
	bson_destroy(opts);
	return err;
}

static int mongo_logs_append(void *impl, int64_t app_id, const char *key_hash, const char *batch_id,
			     int64_t schema_version, const char *const *records, size_t n,
			     int64_t received_ms, bool *duplicate)
{
	struct mongo *m = impl;
	char mid[ID_MAX];
	bson_error_t e;
	bson_t reply;
	const bson_t *found;
	int err = KAA_OK;
	bson_t **docs = NULL;
	bson_t *marker = NULL;
	batch_id_str(mid, app_id, key_hash, batch_id);
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *batches = coll(m, c, "log_batches");
	mongoc_collection_t *recs = coll(m, c, "log_records");

	/* 1. already complete? */
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(mid));
	bson_t *fopts =
		BCON_NEW("limit", BCON_INT64(1), "projection", "{", "_id", BCON_INT32(1), "}");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(batches, filter, fopts, NULL);
	bool exists = mongoc_cursor_next(cur, &found);
	if (!exists && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "logs_check");
	mongoc_cursor_destroy(cur);
	bson_destroy(fopts);
	bson_destroy(filter);
	if (err != KAA_OK)
		goto out;
	if (exists) {
		*duplicate = true;
		goto out;
	}

	/* 2. the records */
	docs = kaa__xcalloc(n, sizeof(*docs));
	for (size_t i = 0; i < n; i++)
		docs[i] = record_doc(app_id, key_hash, batch_id, i, schema_version, records[i],
				     received_ms);
	bson_t *iopts = BCON_NEW("ordered", BCON_BOOL(false));
	bool ok = mongoc_collection_insert_many(recs, (const bson_t **)docs, n, iopts, &reply, &e);
	bson_destroy(iopts);
	if (!ok) {
		if (only_dup_keys(&reply)) {
			KAA_INFO(MOD, "log_batch_completing app=%" PRId64 " key=%s", app_id,
				 key_hash);
			err = rewrite_records(recs, docs, n);
		} else {
			err = map_err(&e, "logs_insert");
		}
	}
	bson_destroy(&reply);
	if (err != KAA_OK)
		goto out;

	/* 3. the marker, last */
	bson_oid_t oid;
	bson_oid_init(&oid, NULL);
	marker = bson_new();
	BSON_APPEND_UTF8(marker, "_id", mid);
	BSON_APPEND_INT64(marker, "app", app_id);
	BSON_APPEND_UTF8(marker, "key", key_hash);
	BSON_APPEND_UTF8(marker, "batch", batch_id);
	BSON_APPEND_INT64(marker, "n", (int64_t)n);
	BSON_APPEND_INT64(marker, "schema_version", schema_version);
	BSON_APPEND_INT64(marker, "received_ms", received_ms);
	BSON_APPEND_INT64(marker, "t", kaa__wall_ms());
	BSON_APPEND_OID(marker, "o", &oid);
	if (!mongoc_collection_insert_one(batches, marker, NULL, NULL, &e)) {
		err = map_err(&e, "logs_marker");
		if (err == KAA_ERR_EXISTS) {
			*duplicate = true; /* a concurrent append of it won */
			err = KAA_OK;
		}
	}
out:
	if (docs)
		for (size_t i = 0; i < n; i++)
			bson_destroy(docs[i]);
	free(docs);
	bson_destroy(marker);
	mongoc_collection_destroy(recs);
	mongoc_collection_destroy(batches);
	mongoc_client_pool_push(m->pool, c);
	return err;
}

static int mongo_logs_count(void *impl, int64_t app_id, const char *key_hash, int64_t *count)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *doc;
	int err = KAA_OK;
	bson_t *pipeline;
	if (key_hash)
		pipeline =
			BCON_NEW("pipeline", "[", "{", "$match", "{", "app", BCON_INT64(app_id),
				 "key", BCON_UTF8(key_hash), "}", "}", "{", "$group", "{", "_id",
				 BCON_NULL, "n", "{", "$sum", BCON_UTF8("$n"), "}", "}", "}", "]");
	else
		pipeline = BCON_NEW("pipeline", "[", "{", "$match", "{", "app", BCON_INT64(app_id),
				    "}", "}", "{", "$group", "{", "_id", BCON_NULL, "n", "{",
				    "$sum", BCON_UTF8("$n"), "}", "}", "}", "]");
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "log_batches");
	mongoc_cursor_t *cur =
		mongoc_collection_aggregate(col, MONGOC_QUERY_NONE, pipeline, NULL, NULL);
	*count = 0;
	if (mongoc_cursor_next(cur, &doc))
		*count = iter_int(doc, "n");
	else if (mongoc_cursor_error(cur, &e))
		err = map_err(&e, "logs_count");
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(pipeline);
	return err;
}

static int mongo_logs_list(void *impl, int64_t app_id, const char *key_hash, int limit,
			   kaa__ep_log_cb cb, void *ud)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *bdoc, *rdoc;
	int err = KAA_OK;
	int left = limit;
	bson_t *bfilter = BCON_NEW("app", BCON_INT64(app_id), "key", BCON_UTF8(key_hash));
	bson_t *bopts = BCON_NEW("sort", "{", "t", BCON_INT32(1), "o", BCON_INT32(1), "}");
	bson_t *ropts = BCON_NEW("sort", "{", "idx", BCON_INT32(1), "}");
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *batches = coll(m, c, "log_batches");
	mongoc_collection_t *recs = coll(m, c, "log_records");
	mongoc_cursor_t *bcur = mongoc_collection_find_with_opts(batches, bfilter, bopts, NULL);
	while (err == KAA_OK && left > 0 && mongoc_cursor_next(bcur, &bdoc)) {
		bson_iter_t it;
		if (!bson_iter_init_find(&it, bdoc, "batch") || !BSON_ITER_HOLDS_UTF8(&it)) {
			err = KAA_ERR_INTERNAL;
			break;
		}
		const char *batch = bson_iter_utf8(&it, NULL);
		bson_t *rfilter = BCON_NEW("app", BCON_INT64(app_id), "key", BCON_UTF8(key_hash),
					   "batch", BCON_UTF8(batch));
		mongoc_cursor_t *rcur =
			mongoc_collection_find_with_opts(recs, rfilter, ropts, NULL);
		while (left > 0 && mongoc_cursor_next(rcur, &rdoc)) {
			bson_iter_t ri;
			if (!bson_iter_init_find(&ri, rdoc, "record") ||
			    !BSON_ITER_HOLDS_UTF8(&ri)) {
				err = KAA_ERR_INTERNAL;
				break;
			}
			int r = cb(ud, batch, iter_int(rdoc, "idx"), bson_iter_utf8(&ri, NULL));
			left--;
			if (r != 0) {
				err = r;
				left = 0;
				break;
			}
		}
		if (err == KAA_OK && mongoc_cursor_error(rcur, &e))
			err = map_err(&e, "logs_list");
		mongoc_cursor_destroy(rcur);
		bson_destroy(rfilter);
	}
	if (err == KAA_OK && mongoc_cursor_error(bcur, &e))
		err = map_err(&e, "logs_list");
	mongoc_cursor_destroy(bcur);
	mongoc_collection_destroy(recs);
	mongoc_collection_destroy(batches);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(ropts);
	bson_destroy(bopts);
	bson_destroy(bfilter);
	return err;
}

/* One find_one_and_update: the filter holds the expected version (a
 * document from before versions lacks the field: version 0), $inc bumps
 * it, the new document answers the new version. On FerretDB 1.x the same
 * caveat as set_owner applies (find-then-replace). */
static int mongo_set_server_profile(void *impl, int64_t app_id, const char *key_hash,
				    const char *json, int64_t expect_version, int64_t now_ms,
				    int64_t *new_version)
{
	struct mongo *m = impl;
	char id[ID_MAX];
	bson_error_t e;
	bson_t reply, set, inc;
	int err = KAA_OK;
	ep_id(id, app_id, key_hash);
	bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
	if (expect_version == 0)
		BCON_APPEND(filter, "$or", "[", "{", "server_profile_version", BCON_INT64(0), "}",
			    "{", "server_profile_version", "{", "$exists", BCON_BOOL(false), "}",
			    "}", "]");
	else if (expect_version > 0)
		BSON_APPEND_INT64(filter, "server_profile_version", expect_version);
	bson_t *update = bson_new();
	BSON_APPEND_DOCUMENT_BEGIN(update, "$set", &set);
	append_str(&set, "server_profile", json);
	BSON_APPEND_INT64(&set, "updated_ms", now_ms);
	bson_append_document_end(update, &set);
	BSON_APPEND_DOCUMENT_BEGIN(update, "$inc", &inc);
	BSON_APPEND_INT64(&inc, "server_profile_version", 1);
	bson_append_document_end(update, &inc);
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *col = coll(m, c, "endpoints");
	mongoc_find_and_modify_opts_t *fam = mongoc_find_and_modify_opts_new();
	mongoc_find_and_modify_opts_set_update(fam, update);
	mongoc_find_and_modify_opts_set_flags(fam, MONGOC_FIND_AND_MODIFY_RETURN_NEW);
	if (!mongoc_collection_find_and_modify_with_opts(col, filter, fam, &reply, &e)) {
		err = map_err(&e, "set_server_profile");
	} else {
		bson_iter_t it, doc;
		if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it) &&
		    bson_iter_recurse(&it, &doc) &&
		    bson_iter_find(&doc, "server_profile_version")) {
			*new_version = bson_iter_as_int64(&doc);
		} else {
			bool found = false;
			err = ep_exists(col, id, &found);
			if (err == KAA_OK)
				err = found ? KAA_ERR_CONFLICT : KAA_ERR_NOTFOUND;
		}
	}
	mongoc_find_and_modify_opts_destroy(fam);
	bson_destroy(&reply);
	mongoc_collection_destroy(col);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(update);
	bson_destroy(filter);
	return err;
}

/* The records of one batch (borrowed strings of bdoc) after index min_idx,
 * in index order, while *left > 0. */
static int query_batch(mongoc_collection_t *recs, int64_t app_id, const bson_t *bdoc,
		       int64_t min_idx, int *left, kaa__ep_log_query_cb cb, void *ud)
{
	bson_error_t e;
	const bson_t *rdoc;
	bson_iter_t it;
	const char *key = NULL, *batch = NULL;
	int err = KAA_OK;
	if (bson_iter_init_find(&it, bdoc, "key") && BSON_ITER_HOLDS_UTF8(&it))
		key = bson_iter_utf8(&it, NULL);
	if (bson_iter_init_find(&it, bdoc, "batch") && BSON_ITER_HOLDS_UTF8(&it))
		batch = bson_iter_utf8(&it, NULL);
	if (!key || !batch) {
		KAA_ERROR(MOD, "mongo_bad_document coll=log_batches");
		return KAA_ERR_INTERNAL;
	}
	kaa__ep_log_rec r = {.pos = {.received_ms = iter_int(bdoc, "received_ms"),
				     .key_hash = key,
				     .batch_id = batch},
			     .schema_version = iter_int(bdoc, "schema_version")};
	bson_t *filter = BCON_NEW("app", BCON_INT64(app_id), "key", BCON_UTF8(key), "batch",
				  BCON_UTF8(batch), "idx", "{", "$gt", BCON_INT64(min_idx), "}");
	bson_t *opts = BCON_NEW("sort", "{", "idx", BCON_INT32(1), "}", "limit", BCON_INT64(*left));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(recs, filter, opts, NULL);
	while (*left > 0 && mongoc_cursor_next(cur, &rdoc)) {
		bson_iter_t ri;
		if (!bson_iter_init_find(&ri, rdoc, "record") || !BSON_ITER_HOLDS_UTF8(&ri)) {
			err = KAA_ERR_INTERNAL;
			break;
		}
		r.pos.index = iter_int(rdoc, "idx");
		r.record = bson_iter_utf8(&ri, NULL);
		(*left)--;
		int u = cb(ud, &r);
		if (u != 0) {
			err = u;
			break;
		}
	}
	if (err == KAA_OK && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "logs_query");
	mongoc_cursor_destroy(cur);
	bson_destroy(opts);
	bson_destroy(filter);
	return err;
}

/* Batch markers in (received_ms, key, batch) order from the cursor's
 * batch on (only complete batches are visible), then each one's records. */
static int mongo_logs_query(void *impl, int64_t app_id, const char *key_hash, int64_t from_ms,
			    int64_t to_ms, const kaa__ep_log_pos *after, int limit,
			    kaa__ep_log_query_cb cb, void *ud)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *bdoc;
	bson_t range, or, alt;
	int err = KAA_OK, left = limit;
	int64_t lo = from_ms > after->received_ms ? from_ms : after->received_ms;
	bson_t *filter = bson_new();
	BSON_APPEND_INT64(filter, "app", app_id);
	if (key_hash)
		BSON_APPEND_UTF8(filter, "key", key_hash);
	BSON_APPEND_DOCUMENT_BEGIN(filter, "received_ms", &range);
	BSON_APPEND_INT64(&range, "$gte", lo);
	BSON_APPEND_INT64(&range, "$lt", to_ms);
	bson_append_document_end(filter, &range);
	BSON_APPEND_ARRAY_BEGIN(filter, "$or", & or);
	BSON_APPEND_DOCUMENT_BEGIN(& or, "0", &alt);
	BCON_APPEND(&alt, "received_ms", "{", "$gt", BCON_INT64(after->received_ms), "}");
	bson_append_document_end(& or, &alt);
	BSON_APPEND_DOCUMENT_BEGIN(& or, "1", &alt);
	BCON_APPEND(&alt, "received_ms", BCON_INT64(after->received_ms), "key", "{", "$gt",
		    BCON_UTF8(after->key_hash), "}");
	bson_append_document_end(& or, &alt);
	BSON_APPEND_DOCUMENT_BEGIN(& or, "2", &alt);
	BCON_APPEND(&alt, "received_ms", BCON_INT64(after->received_ms), "key",
		    BCON_UTF8(after->key_hash), "batch", "{", "$gte", BCON_UTF8(after->batch_id),
		    "}");
	bson_append_document_end(& or, &alt);
	bson_append_array_end(filter, & or);
	/* every batch holds a record, and the cursor's own may hold no more */
	bson_t *opts = BCON_NEW("sort", "{", "received_ms", BCON_INT32(1), "key", BCON_INT32(1),
				"batch", BCON_INT32(1), "}", "limit", BCON_INT64(limit + 1));
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *batches = coll(m, c, "log_batches");
	mongoc_collection_t *recs = coll(m, c, "log_records");
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(batches, filter, opts, NULL);
	while (err == KAA_OK && left > 0 && mongoc_cursor_next(cur, &bdoc)) {
		bson_iter_t it;
		bool same = iter_int(bdoc, "received_ms") == after->received_ms &&
			    bson_iter_init_find(&it, bdoc, "key") && BSON_ITER_HOLDS_UTF8(&it) &&
			    strcmp(bson_iter_utf8(&it, NULL), after->key_hash) == 0 &&
			    bson_iter_init_find(&it, bdoc, "batch") && BSON_ITER_HOLDS_UTF8(&it) &&
			    strcmp(bson_iter_utf8(&it, NULL), after->batch_id) == 0;
		err = query_batch(recs, app_id, bdoc, same ? after->index : -1, &left, cb, ud);
	}
	if (err == KAA_OK && mongoc_cursor_error(cur, &e))
		err = map_err(&e, "logs_query");
	mongoc_cursor_destroy(cur);
	mongoc_collection_destroy(recs);
	mongoc_collection_destroy(batches);
	mongoc_client_pool_push(m->pool, c);
	bson_destroy(opts);
	bson_destroy(filter);
	return err;
}

static int mongo_stats(void *impl, int64_t app_id, int64_t since_ms, kaa__ep_stats *out)
{
	struct mongo *m = impl;
	bson_error_t e;
	const bson_t *doc;
	int err = KAA_OK;
	mongoc_client_t *c = mongoc_client_pool_pop(m->pool);
	mongoc_collection_t *eps = coll(m, c, "endpoints");
	mongoc_collection_t *batches = coll(m, c, "log_batches");
	bson_t *all = BCON_NEW("app", BCON_INT64(app_id));
	bson_t *recent = BCON_NEW("app", BCON_INT64(app_id), "created_ms", "{", "$gte",
				  BCON_INT64(since_ms), "}");
	bson_t *rec_pipe = BCON_NEW("pipeline", "[", "{", "$match", "{", "app", BCON_INT64(app_id),
				    "received_ms", "{", "$gte", BCON_INT64(since_ms), "}", "}", "}",
				    "{", "$group", "{", "_id", BCON_NULL, "n", "{", "$sum",
				    BCON_UTF8("$n"), "}", "}", "}", "]");
	bson_t *node_pipe =
		BCON_NEW("pipeline", "[", "{", "$match", "{", "app", BCON_INT64(app_id), "node_id",
			 "{", "$ne", BCON_NULL, "}", "}", "}", "{", "$group", "{", "_id",
			 BCON_UTF8("$node_id"), "n", "{", "$sum", BCON_INT32(1), "}", "}", "}", "{",
			 "$sort", "{", "n", BCON_INT32(-1), "_id", BCON_INT32(1), "}", "}", "{",
			 "$limit", BCON_INT32(KAA_EP_STATS_NODES_MAX), "}", "]");
	mongoc_cursor_t *cur = NULL;

	out->endpoints = mongoc_collection_count_documents(eps, all, NULL, NULL, NULL, &e);
	if (out->endpoints < 0) {
		err = map_err(&e, "stats");
		goto out;
	}
	out->registered_since =
		mongoc_collection_count_documents(eps, recent, NULL, NULL, NULL, &e);
	if (out->registered_since < 0) {
		err = map_err(&e, "stats");
		goto out;
	}
	cur = mongoc_collection_aggregate(batches, MONGOC_QUERY_NONE, rec_pipe, NULL, NULL);
	if (mongoc_cursor_next(cur, &doc))
		out->records_since = iter_int(doc, "n");
	else if (mongoc_cursor_error(cur, &e))
		err = map_err(&e, "stats");
	mongoc_cursor_destroy(cur);
	if (err != KAA_OK)
		goto out;
	cur = mongoc_collection_aggregate(eps, MONGOC_QUERY_NONE, node_pipe, NULL, NULL);
	out->nodes = kaa__xcalloc(KAA_EP_STATS_NODES_MAX, sizeof(*out->nodes));
	while (out->n_nodes < KAA_EP_STATS_NODES_MAX && mongoc_cursor_next(cur, &doc)) {
		char *id = iter_dup(doc, "_id");
		if (!id)
			continue;
		out->nodes[out->n_nodes].node_id = id;
		out->nodes[out->n_nodes++].endpoints = iter_int(doc, "n");
	}
	if (mongoc_cursor_error(cur, &e))
		err = map_err(&e, "stats");
	mongoc_cursor_destroy(cur);
out:
	bson_destroy(node_pipe);
	bson_destroy(rec_pipe);
	bson_destroy(recent);
	bson_destroy(all);
	mongoc_collection_destroy(batches);
	mongoc_collection_destroy(eps);
	mongoc_client_pool_push(m->pool, c);
	return err;
}

const kaa__ep_backend kaa__ep_backend_mongo = {
	.name = "mongodb",
	.open = mongo_open,
	.close = mongo_close,
	.get = mongo_get,
	.put = mongo_put,
	.touch = mongo_touch,
	.del = mongo_del,
	.list = mongo_list,
	.set_owner = mongo_set_owner,
	.find_by_token = mongo_find_by_token,
	.list_by_owner = mongo_list_by_owner,
	.logs_append = mongo_logs_append,
	.logs_count = mongo_logs_count,
	.logs_list = mongo_logs_list,
	.set_server_profile = mongo_set_server_profile,
	.logs_query = mongo_logs_query,
	.stats = mongo_stats,
};
