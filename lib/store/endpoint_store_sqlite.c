/*
 * endpoint_store_sqlite.c - the SQLite backend of endpoint_store.h.
 *
 * A small pool of connections (opened with SQLITE_OPEN_NOMUTEX; the pool
 * hands a connection to one thread at a time) in WAL mode with
 * synchronous=FULL, so a committed transaction is on disk before the call
 * returns. Readers run in parallel; writers of this process queue on
 * write_mu first (cheaper than SQLite's sleeping busy handler), writers of
 * other processes wait in the busy handler up to BUSY_MS.
 *
 * Tables (docs/endpoint-store.md): endpoints (app_id, key_hash) primary
 * key, indexes on (app_id, access_token) and (app_id, owner_id);
 * log_batches, one row per stored batch with a unique
 * (app_id, key_hash, batch_id) - the batch marker whose insert decides
 * "new or duplicate" - and log_records (batch_seq, idx). A batch's marker
 * and its records commit in one transaction: all or nothing. Log appends
 * are group-committed (lite_logs_append).
 *
 * Schema versions (PRAGMA user_version): migrate() runs every step from
 * the file's version up to SCHEMA_VERSION in one transaction, so a new
 * file and an upgraded one end with the same schema.
 */
#include "store/sqlite_err.h"
#include "base/clock.h"
#include "store/endpoint_store_internal.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MOD "ep_store"
#define POOL 4
#define BUSY_MS 5000
#define SCHEMA_VERSION 3

enum {
	ST_GET,
	ST_PUT,
	ST_TOUCH,
	ST_DEL_RECORDS,
	ST_DEL_BATCHES,
	ST_DEL_EP,
	ST_LIST_FIRST,
	ST_LIST_AFTER,
	ST_OWNER_SET,
	ST_OWNER_CAS,
	ST_EXISTS,
	ST_FIND_TOKEN,
	ST_LIST_OWNER,
	ST_BATCH_INSERT,
	ST_RECORD_INSERT,
	ST_COUNT_EP,
	ST_COUNT_APP,
	ST_LOGS_LIST,
	ST_SET_SP,
	ST_LOGS_QUERY_APP,
	ST_LOGS_QUERY_EP,
	ST_STATS_EP,
	ST_STATS_RECORDS,
	ST_STATS_NODES,
	ST_MAX
};

/* the columns of put's INSERT; ?7 (server_profile) is bound but NULL is
 * written: only set_server_profile writes it, as only set_owner writes
 * owner_id */
#define PUT_COLS                                                                               \
	"app_id, key_hash, public_key, access_token, client_profile, client_profile_version,"  \
	" server_profile, groups_json, config_hash, config_doc, topics, notif_state, node_id," \
	" last_seen_ms, created_ms, updated_ms"
#define EP_COLS PUT_COLS ", owner_id, server_profile_version"

/* Records of complete batches received in [?3, ?4), after the position
 * (?5 received_ms, ?6 key, ?7 batch, ?8 index), in that order; ?9 limit.
 * The separate received_ms >= ?5 lets the index bound the scan. */
#define LOGS_QUERY(ep_cond)                                                               \
	"SELECT b.received_ms, b.key_hash, b.batch_id, r.idx, b.schema_version, r.record" \
	" FROM log_batches b JOIN log_records r ON r.batch_seq = b.seq"                   \
	" WHERE b.app_id = ?1" ep_cond " AND b.received_ms >= ?3 AND b.received_ms < ?4"  \
	" AND b.received_ms >= ?5 AND (b.received_ms, b.key_hash, b.batch_id, r.idx) >"   \
	" (?5, ?6, ?7, ?8) ORDER BY b.received_ms, b.key_hash, b.batch_id, r.idx LIMIT ?9"

static const char *const sql_text[ST_MAX] = {
	[ST_GET] = "SELECT " EP_COLS " FROM endpoints WHERE app_id = ?1 AND key_hash = ?2",
	[ST_PUT] =
		"INSERT INTO endpoints (" PUT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?8,"
		" ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)"
		" ON CONFLICT (app_id, key_hash) DO UPDATE SET public_key = excluded.public_key,"
		" access_token = excluded.access_token, client_profile = excluded.client_profile,"
		" client_profile_version = excluded.client_profile_version,"
		" groups_json = excluded.groups_json,"
		" config_hash = excluded.config_hash, config_doc = excluded.config_doc,"
		" topics = excluded.topics, notif_state = excluded.notif_state,"
		" node_id = excluded.node_id, last_seen_ms = excluded.last_seen_ms,"
		" updated_ms = excluded.updated_ms",
	[ST_TOUCH] = "UPDATE endpoints SET node_id = ?3, last_seen_ms = ?4"
		     " WHERE app_id = ?1 AND key_hash = ?2",
	[ST_DEL_RECORDS] = "DELETE FROM log_records WHERE batch_seq IN"
			   " (SELECT seq FROM log_batches WHERE app_id = ?1 AND key_hash = ?2)",
	[ST_DEL_BATCHES] = "DELETE FROM log_batches WHERE app_id = ?1 AND key_hash = ?2",
	[ST_DEL_EP] = "DELETE FROM endpoints WHERE app_id = ?1 AND key_hash = ?2",
	[ST_LIST_FIRST] = "SELECT " EP_COLS " FROM endpoints WHERE app_id = ?1"
			  " ORDER BY key_hash LIMIT ?3",
	[ST_LIST_AFTER] = "SELECT " EP_COLS " FROM endpoints WHERE app_id = ?1 AND key_hash > ?2"
			  " ORDER BY key_hash LIMIT ?3",
	[ST_OWNER_SET] = "UPDATE endpoints SET owner_id = ?3 WHERE app_id = ?1 AND key_hash = ?2",
	/* ?4 NULL: only when no owner is stored */
	[ST_OWNER_CAS] = "UPDATE endpoints SET owner_id = ?3"
			 " WHERE app_id = ?1 AND key_hash = ?2 AND owner_id IS ?4",
	[ST_EXISTS] = "SELECT 1 FROM endpoints WHERE app_id = ?1 AND key_hash = ?2",
	/* INDEXED BY: without ANALYZE statistics the planner prefers the
	 * primary key (app_id = ?), a scan of the whole application. Two rows
	 * are enough to tell a shared token. */
	[ST_FIND_TOKEN] = "SELECT " EP_COLS " FROM endpoints INDEXED BY endpoints_by_token"
			  " WHERE app_id = ?1 AND access_token = ?2 LIMIT 2",
	/* the index holds the primary key after owner_id: no sort step */
	[ST_LIST_OWNER] = "SELECT " EP_COLS " FROM endpoints INDEXED BY endpoints_by_owner"
			  " WHERE app_id = ?1 AND owner_id = ?2 ORDER BY key_hash LIMIT ?3",
	[ST_BATCH_INSERT] =
		"INSERT INTO log_batches (app_id, key_hash, batch_id, n, schema_version,"
		" received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
		" ON CONFLICT (app_id, key_hash, batch_id) DO NOTHING",
	[ST_RECORD_INSERT] = "INSERT INTO log_records (batch_seq, idx, record) VALUES (?1, ?2, ?3)",
	[ST_COUNT_EP] = "SELECT coalesce(sum(n), 0) FROM log_batches"
			" WHERE app_id = ?1 AND key_hash = ?2",
	[ST_COUNT_APP] = "SELECT coalesce(sum(n), 0) FROM log_batches WHERE app_id = ?1",
	[ST_LOGS_LIST] = "SELECT b.batch_id, r.idx, r.record FROM log_batches b"
			 " JOIN log_records r ON r.batch_seq = b.seq"
			 " WHERE b.app_id = ?1 AND b.key_hash = ?2 ORDER BY b.seq, r.idx LIMIT ?3",
	/* ?5 -1: any version */
	[ST_SET_SP] = "UPDATE endpoints SET server_profile = ?3, updated_ms = ?4,"
		      " server_profile_version = server_profile_version + 1"
		      " WHERE app_id = ?1 AND key_hash = ?2"
		      " AND (?5 < 0 OR server_profile_version = ?5)"
		      " RETURNING server_profile_version",
	[ST_LOGS_QUERY_APP] = LOGS_QUERY(""),
	[ST_LOGS_QUERY_EP] = LOGS_QUERY(" AND b.key_hash = ?2"),
	[ST_STATS_EP] = "SELECT count(*), coalesce(sum(created_ms >= ?2), 0) FROM endpoints"
			" WHERE app_id = ?1",
	[ST_STATS_RECORDS] = "SELECT coalesce(sum(n), 0) FROM log_batches INDEXED BY"
			     " log_batches_by_time WHERE app_id = ?1 AND received_ms >= ?2",
	[ST_STATS_NODES] = "SELECT node_id, count(*) AS c FROM endpoints"
			   " WHERE app_id = ?1 AND node_id IS NOT NULL"
			   " GROUP BY node_id ORDER BY c DESC, node_id LIMIT ?2",
};

/* migration_sql[v] takes a file from version v to v + 1. Never edit a step
 * that was released: add one. */
static const char *const migration_sql[SCHEMA_VERSION] = {
	/* 0 -> 1: the tables */
	"CREATE TABLE IF NOT EXISTS endpoints (app_id INTEGER NOT NULL, key_hash TEXT NOT NULL,"
	" public_key TEXT, access_token TEXT, client_profile TEXT,"
	" client_profile_version INTEGER NOT NULL, server_profile TEXT, groups_json TEXT,"
	" config_hash TEXT, config_doc TEXT, topics TEXT, notif_state TEXT, node_id TEXT,"
	" last_seen_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
	" PRIMARY KEY (app_id, key_hash)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS log_batches (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" app_id INTEGER NOT NULL, key_hash TEXT NOT NULL, batch_id TEXT NOT NULL,"
	" n INTEGER NOT NULL, schema_version INTEGER NOT NULL, received_ms INTEGER NOT NULL,"
	" UNIQUE (app_id, key_hash, batch_id));"
	"CREATE TABLE IF NOT EXISTS log_records (batch_seq INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" record TEXT NOT NULL, PRIMARY KEY (batch_seq, idx)) WITHOUT ROWID;",
	/* 1 -> 2: endpoint owners; access token lookups. Partial indexes: the
	 * lookups never ask for NULL, and most endpoints have no owner. */
	"ALTER TABLE endpoints ADD COLUMN owner_id TEXT;"
	"CREATE INDEX IF NOT EXISTS endpoints_by_token ON endpoints (app_id, access_token)"
	" WHERE access_token IS NOT NULL;"
	"CREATE INDEX IF NOT EXISTS endpoints_by_owner ON endpoints (app_id, owner_id)"
	" WHERE owner_id IS NOT NULL;",
	/* 2 -> 3: log queries by time (REST), per application; the version
	 * of the server profile (the ETag of the REST API) */
	"CREATE INDEX IF NOT EXISTS log_batches_by_time ON log_batches"
	" (app_id, received_ms, key_hash, batch_id);"
	"ALTER TABLE endpoints ADD COLUMN server_profile_version INTEGER NOT NULL DEFAULT 0;",
};

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST_MAX];
};

/* One queued kaa__ep_logs_append (the caller's stack; see logs_append). */
struct append_req {
	int64_t app_id;
	const char *key_hash, *batch_id;
	int64_t schema_version;
	const char *const *records;
	size_t n;
	int64_t received_ms;
	bool duplicate;
	int result; /* > 0 while queued */
	struct append_req *next;
};

struct lite {
	pthread_mutex_t mu; /* guards free_conns, n_free */
	pthread_cond_t cv;
	struct conn *conns[POOL];
	struct conn *free_conns[POOL];
	int n_free;
	pthread_mutex_t write_mu; /* one writer of this process at a time */
	/* group commit of log appends: guards the queue and leading */
	pthread_mutex_t gc_mu;
	pthread_cond_t gc_cv;
	struct append_req *queue, **queue_tail;
	bool leading;
};

static int lite_err(sqlite3 *db, int rc, const char *what)
{
	return kaa__sqlite_err(db, rc, MOD, what);
}

static int script(struct conn *c, const char *sql)
{
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
	return lite_err(c->db, rc, "script");
}

static void conn_close(struct conn *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_MAX; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c);
}

static int conn_open(const char *path, struct conn **out)
{
	int err = KAA_OK;
	struct conn *c = kaa__xcalloc(1, sizeof(*c));
	int rc = sqlite3_open_v2(path, &c->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		KAA_ERROR(MOD, "sqlite_open_failed path=\"%s\" msg=\"%s\"", path,
			  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		if (rc == SQLITE_NOMEM)
			kaa__oom();
		err = KAA_ERR_IO;
		goto out;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_MS);
	/* WAL needs a moment of exclusive access: retry while others hold it */
	int64_t deadline = kaa__now_ms() + BUSY_MS;
	for (;;) {
		err = script(c, "PRAGMA journal_mode=WAL");
		if (err != KAA_ERR_TIMEOUT || kaa__now_ms() > deadline)
			break;
		kaa__sleep_ms_unless(20, NULL);
	}
	if (err == KAA_OK)
		err = script(c, "PRAGMA synchronous=FULL");
out:
	if (err != KAA_OK) {
		conn_close(c);
		c = NULL;
	}
	*out = c;
	return err;
}

static int mkdir_parents(const char *path)
{
	char *d = kaa__xstrdup(path);
	int rc = KAA_OK;
	char *slash = strrchr(d, '/');
	if (slash && slash != d) {
		*slash = '\0';
		for (char *p = d + 1; rc == KAA_OK; p++) {
			bool end = *p == '\0';
			if (*p != '/' && !end)
				continue;
			*p = '\0';
			if (mkdir(d, 0750) != 0 && errno != EEXIST) {
				KAA_ERROR(MOD, "mkdir_failed dir=\"%s\" errno=%d", d, errno);
				rc = KAA_ERR_IO;
			}
			if (end)
				break;
			*p = '/';
		}
	}
	free(d);
	return rc;
}

/* Brings the schema to SCHEMA_VERSION; concurrent openers wait for the
 * write lock and then find nothing left to do. */
static int migrate(struct conn *c)
{
	int err = script(c, "BEGIN IMMEDIATE");
	if (err != KAA_OK)
		return err;
	sqlite3_stmt *st = NULL;
	int version = 0;
	int rc = sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	else
		err = lite_err(c->db, rc == SQLITE_OK ? SQLITE_ERROR : rc, "user_version");
	sqlite3_finalize(st);
	if (err == KAA_OK && version >= 0 && version < SCHEMA_VERSION) {
		if (version > 0)
			KAA_INFO(MOD, "schema_upgrade from=%d to=%d", version, SCHEMA_VERSION);
		for (int v = version; v < SCHEMA_VERSION && err == KAA_OK; v++)
			err = script(c, migration_sql[v]);
		if (err == KAA_OK) {
			char pragma[64];
			snprintf(pragma, sizeof(pragma), "PRAGMA user_version=%d", SCHEMA_VERSION);
			err = script(c, pragma);
		}
	} else if (err == KAA_OK && version > SCHEMA_VERSION) {
		KAA_WARN(MOD, "schema_newer version=%d known=%d", version, SCHEMA_VERSION);
	}
	if (err == KAA_OK)
		return script(c, "COMMIT");
	script(c, "ROLLBACK");
	return err;
}

static void lite_close(void *impl)
{
	struct lite *l = impl;
	if (!l)
		return;
	for (int i = 0; i < POOL; i++)
		conn_close(l->conns[i]);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
	pthread_mutex_destroy(&l->write_mu);
	pthread_mutex_destroy(&l->gc_mu);
	pthread_cond_destroy(&l->gc_cv);
	free(l);
}

static int lite_open(const char *path, void **impl)
{
	int err;
	struct lite *l = kaa__xcalloc(1, sizeof(*l));
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->cv, NULL);
	pthread_mutex_init(&l->write_mu, NULL);
	pthread_mutex_init(&l->gc_mu, NULL);
	pthread_cond_init(&l->gc_cv, NULL);
	l->queue_tail = &l->queue;
	if (strcmp(path, ":memory:") == 0) {
		/* every connection would see its own empty database */
		err = KAA_ERR_INVAL;
		goto out;
	}
	err = mkdir_parents(path);
	for (int i = 0; i < POOL && err == KAA_OK; i++) {
		err = conn_open(path, &l->conns[i]);
		if (err == KAA_OK && i == 0)
			err = migrate(l->conns[0]);
		if (err == KAA_OK)
			l->free_conns[l->n_free++] = l->conns[i];
	}
out:
	if (err != KAA_OK) {
		lite_close(l);
		l = NULL;
	}
	*impl = l;
	return err;
}

static int acquire(struct lite *l, struct conn **out)
{
	struct timespec ts;
	int err = KAA_OK;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += BUSY_MS / 1000;
	pthread_mutex_lock(&l->mu);
	while (l->n_free == 0 && err == KAA_OK) {
		if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) == ETIMEDOUT && l->n_free == 0)
			err = KAA_ERR_TIMEOUT;
	}
	if (err == KAA_OK)
		*out = l->free_conns[--l->n_free];
	pthread_mutex_unlock(&l->mu);
	return err;
}

static void release(struct lite *l, struct conn *c)
{
	pthread_mutex_lock(&l->mu);
	l->free_conns[l->n_free++] = c;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
}

/* The cached statement id, reset and with bindings cleared. */
static int stmt(struct conn *c, int id, sqlite3_stmt **out)
{
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT,
					    &c->st[id], NULL);
		if (rc != SQLITE_OK)
			return lite_err(c->db, rc, "prepare");
	}
	sqlite3_reset(c->st[id]);
	sqlite3_clear_bindings(c->st[id]);
	*out = c->st[id];
	return KAA_OK;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
	return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Steps a statement that returns no rows. */
static int run(struct conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int err = rc == SQLITE_DONE ? KAA_OK
				    : lite_err(c->db, rc == SQLITE_ROW ? SQLITE_MISUSE : rc, what);
	sqlite3_reset(st);
	return err;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return NULL;
	return kaa__ep_strdup((const char *)sqlite3_column_text(st, i));
}

/* Fills *ep from the current row of a SELECT EP_COLS (owned strings). */
static void decode_ep(sqlite3_stmt *st, kaa__endpoint *ep)
{
	ep->app_id = sqlite3_column_int64(st, 0);
	ep->key_hash = col_dup(st, 1);
	ep->public_key = col_dup(st, 2);
	ep->access_token = col_dup(st, 3);
	ep->client_profile = col_dup(st, 4);
	ep->client_profile_version = sqlite3_column_int64(st, 5);
	ep->server_profile = col_dup(st, 6);
	ep->groups = col_dup(st, 7);
	ep->config_hash = col_dup(st, 8);
	ep->config_doc = col_dup(st, 9);
	ep->topics = col_dup(st, 10);
	ep->notif_state = col_dup(st, 11);
	ep->node_id = col_dup(st, 12);
	ep->last_seen_ms = sqlite3_column_int64(st, 13);
	ep->created_ms = sqlite3_column_int64(st, 14);
	ep->updated_ms = sqlite3_column_int64(st, 15);
	ep->owner_id = col_dup(st, 16);
	ep->server_profile_version = sqlite3_column_int64(st, 17);
}

static int lite_get(void *impl, int64_t app_id, const char *key_hash, kaa__endpoint *out)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_GET, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, key_hash);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		decode_ep(st, out);
	else if (rc == SQLITE_DONE)
		err = KAA_ERR_NOTFOUND;
	else
		err = lite_err(c->db, rc, "get");
	sqlite3_reset(st);
out:
	release(l, c);
	return err;
}

/* A write: takes write_mu and a connection; BEGIN IMMEDIATE when tx. */
static int write_begin(struct lite *l, struct conn **c, bool tx)
{
	pthread_mutex_lock(&l->write_mu);
	int err = acquire(l, c);
	if (err == KAA_OK && tx) {
		err = script(*c, "BEGIN IMMEDIATE");
		if (err != KAA_OK)
			release(l, *c);
	}
	if (err != KAA_OK)
		pthread_mutex_unlock(&l->write_mu);
	return err;
}

static int write_end(struct lite *l, struct conn *c, bool tx, int err)
{
	if (tx && err == KAA_OK)
		err = script(c, "COMMIT");
	if (tx && !sqlite3_get_autocommit(c->db))
		script(c, "ROLLBACK");
	release(l, c);
	pthread_mutex_unlock(&l->write_mu);
	return err;
}

static int lite_put(void *impl, const kaa__endpoint *ep, int64_t now_ms)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = write_begin(l, &c, false);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_PUT, &st);
	if (err == KAA_OK) {
		sqlite3_bind_int64(st, 1, ep->app_id);
		bind_text(st, 2, ep->key_hash);
		bind_text(st, 3, ep->public_key);
		bind_text(st, 4, ep->access_token);
		bind_text(st, 5, ep->client_profile);
		sqlite3_bind_int64(st, 6, ep->client_profile_version);
		bind_text(st, 7, ep->server_profile);
		bind_text(st, 8, ep->groups);
		bind_text(st, 9, ep->config_hash);
		bind_text(st, 10, ep->config_doc);
		bind_text(st, 11, ep->topics);
		bind_text(st, 12, ep->notif_state);
		bind_text(st, 13, ep->node_id);
		sqlite3_bind_int64(st, 14, ep->last_seen_ms);
		sqlite3_bind_int64(st, 15, now_ms);
		err = run(c, st, "put");
	}
	return write_end(l, c, false, err);
}

static int lite_touch(void *impl, int64_t app_id, const char *key_hash, const char *node_id,
		      int64_t last_seen_ms)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = write_begin(l, &c, false);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_TOUCH, &st);
	if (err == KAA_OK) {
		sqlite3_bind_int64(st, 1, app_id);
		bind_text(st, 2, key_hash);
		bind_text(st, 3, node_id);
		sqlite3_bind_int64(st, 4, last_seen_ms);
		err = run(c, st, "touch");
		if (err == KAA_OK && sqlite3_changes(c->db) == 0)
			err = KAA_ERR_NOTFOUND;
	}
	return write_end(l, c, false, err);
}

static int lite_del(void *impl, int64_t app_id, const char *key_hash)
{
	static const int ids[] = {ST_DEL_RECORDS, ST_DEL_BATCHES, ST_DEL_EP};
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = write_begin(l, &c, true);
	if (err != KAA_OK)
		return err;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]) && err == KAA_OK; i++) {
		err = stmt(c, ids[i], &st);
		if (err != KAA_OK)
			break;
		sqlite3_bind_int64(st, 1, app_id);
		bind_text(st, 2, key_hash);
		err = run(c, st, "delete");
		if (err == KAA_OK && ids[i] == ST_DEL_EP && sqlite3_changes(c->db) == 0)
			err = KAA_ERR_NOTFOUND;
	}
	return write_end(l, c, true, err);
}

static int lite_list(void *impl, int64_t app_id, const char *after_key, int limit, kaa__ep_cb cb,
		     void *ud, char **last_key)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	char *last = NULL;
	bool stopped = false;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, after_key ? ST_LIST_AFTER : ST_LIST_FIRST, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	if (after_key)
		bind_text(st, 2, after_key);
	sqlite3_bind_int(st, 3, limit);
	for (;;) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			err = lite_err(c->db, rc, "list");
			break;
		}
		kaa__endpoint ep = {0};
		decode_ep(st, &ep);
		free(last);
		last = kaa__xstrdup(ep.key_hash ? ep.key_hash : "");
		int r = cb(ud, &ep);
		kaa__endpoint_clear(&ep);
		if (r != 0) {
			err = r;
			stopped = true;
			break;
		}
	}
	sqlite3_reset(st);
out:
	release(l, c);
	/* a store error gives no cursor; a walk the callback stopped does */
	if (last_key && (err == KAA_OK || stopped)) {
		*last_key = last;
		last = NULL;
	}
	free(last);
	return err;
}

/* A transaction, so "not matched" splits into absent and conflict with
 * no write in between. */
static int lite_set_owner(void *impl, int64_t app_id, const char *key_hash, const char *owner_id,
			  const char *expect_owner)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = write_begin(l, &c, true);
	if (err != KAA_OK)
		return err;
	err = stmt(c, expect_owner ? ST_OWNER_CAS : ST_OWNER_SET, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, key_hash);
	bind_text(st, 3, owner_id);
	if (expect_owner)
		bind_text(st, 4, *expect_owner ? expect_owner : NULL);
	err = run(c, st, "set_owner");
	if (err != KAA_OK || sqlite3_changes(c->db) > 0)
		goto out;
	err = KAA_ERR_NOTFOUND;
	if (expect_owner) {
		int e2 = stmt(c, ST_EXISTS, &st);
		if (e2 != KAA_OK) {
			err = e2;
			goto out;
		}
		sqlite3_bind_int64(st, 1, app_id);
		bind_text(st, 2, key_hash);
		int rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			err = KAA_ERR_CONFLICT;
		else if (rc != SQLITE_DONE)
			err = lite_err(c->db, rc, "set_owner");
		sqlite3_reset(st);
	}
out:
	return write_end(l, c, true, err);
}

static int lite_find_by_token(void *impl, int64_t app_id, const char *access_token,
			      kaa__endpoint *out)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_FIND_TOKEN, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, access_token);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		decode_ep(st, out);
	else if (rc == SQLITE_DONE)
		err = KAA_ERR_NOTFOUND;
	else
		err = lite_err(c->db, rc, "find_by_token");
	if (err == KAA_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			KAA_WARN(MOD, "access_token_shared app=%" PRId64 " key=%s", app_id,
				 out->key_hash);
			err = KAA_ERR_CONFLICT;
		} else if (rc != SQLITE_DONE) {
			err = lite_err(c->db, rc, "find_by_token");
		}
	}
	sqlite3_reset(st);
out:
	release(l, c);
	return err;
}

static int lite_list_by_owner(void *impl, int64_t app_id, const char *owner_id, int limit,
			      kaa__ep_cb cb, void *ud)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_LIST_OWNER, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, owner_id);
	sqlite3_bind_int(st, 3, limit);
	while (err == KAA_OK) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			err = lite_err(c->db, rc, "list_by_owner");
			break;
		}
		kaa__endpoint ep = {0};
		decode_ep(st, &ep);
		err = cb(ud, &ep);
		kaa__endpoint_clear(&ep);
	}
	sqlite3_reset(st);
out:
	release(l, c);
	return err;
}

/* One batch inside the group's transaction. A batch queued twice in one
 * group finds its own row from earlier in the group: duplicate. */
static int append_one(struct conn *c, struct append_req *r)
{
	sqlite3_stmt *st;
	int err = stmt(c, ST_BATCH_INSERT, &st);
	if (err != KAA_OK)
		return err;
	sqlite3_bind_int64(st, 1, r->app_id);
	bind_text(st, 2, r->key_hash);
	bind_text(st, 3, r->batch_id);
	sqlite3_bind_int64(st, 4, (int64_t)r->n);
	sqlite3_bind_int64(st, 5, r->schema_version);
	sqlite3_bind_int64(st, 6, r->received_ms);
	err = run(c, st, "batch_insert");
	if (err != KAA_OK)
		return err;
	if (sqlite3_changes(c->db) == 0) {
		r->duplicate = true;
		return KAA_OK;
	}
	int64_t seq = sqlite3_last_insert_rowid(c->db);
	err = stmt(c, ST_RECORD_INSERT, &st);
	for (size_t i = 0; i < r->n && err == KAA_OK; i++) {
		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, seq);
		sqlite3_bind_int64(st, 2, (int64_t)i);
		bind_text(st, 3, r->records[i]);
		err = run(c, st, "record_insert");
	}
	return err;
}

#define GROUP_MAX 64

/*
 * Group commit: callers queue their batch; one of them at a time (the
 * leader) takes up to GROUP_MAX queued batches and stores them in one
 * transaction, so concurrent appends share one commit (one fsync). A
 * failure fails the whole group (nothing of it is stored; the devices
 * re-send).
 */
static int lite_logs_append(void *impl, int64_t app_id, const char *key_hash, const char *batch_id,
			    int64_t schema_version, const char *const *records, size_t n,
			    int64_t received_ms, bool *duplicate)
{
	struct lite *l = impl;
	struct append_req me = {.app_id = app_id,
				.key_hash = key_hash,
				.batch_id = batch_id,
				.schema_version = schema_version,
				.records = records,
				.n = n,
				.received_ms = received_ms,
				.result = 1};
	pthread_mutex_lock(&l->gc_mu);
	*l->queue_tail = &me;
	l->queue_tail = &me.next;
	while (me.result > 0) {
		if (l->leading) {
			pthread_cond_wait(&l->gc_cv, &l->gc_mu);
			continue;
		}
		/* lead one group: the first GROUP_MAX queued (ours among them
		 * or in a later group this loop runs) */
		l->leading = true;
		struct append_req *group = l->queue, *r = group;
		for (int k = 1; k < GROUP_MAX && r->next; k++)
			r = r->next;
		l->queue = r->next;
		if (!l->queue)
			l->queue_tail = &l->queue;
		r->next = NULL;
		pthread_mutex_unlock(&l->gc_mu);

		struct conn *c;
		int err = write_begin(l, &c, true);
		if (err == KAA_OK) {
			for (r = group; r && err == KAA_OK; r = r->next)
				err = append_one(c, r);
			err = write_end(l, c, true, err);
		}

		pthread_mutex_lock(&l->gc_mu);
		for (r = group; r;) {
			struct append_req *next = r->next;
			if (err != KAA_OK)
				r->duplicate = false;
			r->result = err; /* r may be gone once this is set */
			r = next;
		}
		l->leading = false;
		pthread_cond_broadcast(&l->gc_cv);
	}
	pthread_mutex_unlock(&l->gc_mu);
	*duplicate = me.duplicate;
	return me.result;
}

static int lite_logs_count(void *impl, int64_t app_id, const char *key_hash, int64_t *count)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, key_hash ? ST_COUNT_EP : ST_COUNT_APP, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	if (key_hash)
		bind_text(st, 2, key_hash);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count = sqlite3_column_int64(st, 0);
	else
		err = lite_err(c->db, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "count");
	sqlite3_reset(st);
out:
	release(l, c);
	return err;
}

static int lite_logs_list(void *impl, int64_t app_id, const char *key_hash, int limit,
			  kaa__ep_log_cb cb, void *ud)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_LOGS_LIST, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, key_hash);
	sqlite3_bind_int(st, 3, limit);
	for (;;) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			err = lite_err(c->db, rc, "logs_list");
			break;
		}
		int r = cb(ud, (const char *)sqlite3_column_text(st, 0),
			   sqlite3_column_int64(st, 1), (const char *)sqlite3_column_text(st, 2));
		if (r != 0) {
			err = r;
			break;
		}
	}
	sqlite3_reset(st);
out:
	release(l, c);
	return err;
}

/* A transaction, so "not matched" splits into absent and conflict with
 * no write in between. */
static int lite_set_server_profile(void *impl, int64_t app_id, const char *key_hash,
				   const char *json, int64_t expect_version, int64_t now_ms,
				   int64_t *new_version)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = write_begin(l, &c, true);
	if (err != KAA_OK)
		return err;
	err = stmt(c, ST_SET_SP, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, key_hash);
	bind_text(st, 3, json);
	sqlite3_bind_int64(st, 4, now_ms);
	sqlite3_bind_int64(st, 5, expect_version);
	int rc = sqlite3_step(st);
	bool updated = rc == SQLITE_ROW;
	if (updated)
		*new_version = sqlite3_column_int64(st, 0);
	else if (rc != SQLITE_DONE)
		err = lite_err(c->db, rc, "set_server_profile");
	sqlite3_reset(st);
	if (err != KAA_OK || updated)
		goto out;
	err = stmt(c, ST_EXISTS, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	bind_text(st, 2, key_hash);
	rc = sqlite3_step(st);
	err = rc == SQLITE_ROW    ? KAA_ERR_CONFLICT
	      : rc == SQLITE_DONE ? KAA_ERR_NOTFOUND
				  : lite_err(c->db, rc, "set_server_profile");
	sqlite3_reset(st);
out:
	return write_end(l, c, true, err);
}

static int lite_logs_query(void *impl, int64_t app_id, const char *key_hash, int64_t from_ms,
			   int64_t to_ms, const kaa__ep_log_pos *after, int limit,
			   kaa__ep_log_query_cb cb, void *ud)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	err = stmt(c, key_hash ? ST_LOGS_QUERY_EP : ST_LOGS_QUERY_APP, &st);
	if (err != KAA_OK)
		goto out;
	sqlite3_bind_int64(st, 1, app_id);
	if (key_hash)
		bind_text(st, 2, key_hash);
	sqlite3_bind_int64(st, 3, from_ms);
	sqlite3_bind_int64(st, 4, to_ms);
	sqlite3_bind_int64(st, 5, after->received_ms);
	bind_text(st, 6, after->key_hash);
	bind_text(st, 7, after->batch_id);
	sqlite3_bind_int64(st, 8, after->index);
	sqlite3_bind_int(st, 9, limit);
	for (;;) {
		int rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			err = lite_err(c->db, rc, "logs_query");
			break;
		}
		kaa__ep_log_rec r = {
			.pos = {.received_ms = sqlite3_column_int64(st, 0),
				.key_hash = (const char *)sqlite3_column_text(st, 1),
				.batch_id = (const char *)sqlite3_column_text(st, 2),
				.index = sqlite3_column_int64(st, 3)},
			.schema_version = sqlite3_column_int64(st, 4),
			.record = (const char *)sqlite3_column_text(st, 5),
		};
		int u = cb(ud, &r);
		if (u != 0) {
			err = u;
			break;
		}
	}
	sqlite3_reset(st);
out:
	release(l, c);
	return err;
}

/* One row of int64 columns from a statement bound with (app_id, since). */
static int stats_row(struct conn *c, int id, int64_t app_id, int64_t since, int64_t *a, int64_t *b)
{
	sqlite3_stmt *st;
	int err = stmt(c, id, &st);
	if (err != KAA_OK)
		return err;
	sqlite3_bind_int64(st, 1, app_id);
	sqlite3_bind_int64(st, 2, since);
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*a = sqlite3_column_int64(st, 0);
		if (b)
			*b = sqlite3_column_int64(st, 1);
	} else {
		err = lite_err(c->db, rc == SQLITE_DONE ? SQLITE_INTERNAL : rc, "stats");
	}
	sqlite3_reset(st);
	return err;
}

static int lite_stats(void *impl, int64_t app_id, int64_t since_ms, kaa__ep_stats *out)
{
	struct lite *l = impl;
	struct conn *c;
	sqlite3_stmt *st;
	int err = acquire(l, &c);
	if (err != KAA_OK)
		return err;
	/* one read transaction: the three answers describe one moment */
	err = script(c, "BEGIN");
	if (err != KAA_OK)
		goto out;
	err = stats_row(c, ST_STATS_EP, app_id, since_ms, &out->endpoints, &out->registered_since);
	if (err == KAA_OK)
		err = stats_row(c, ST_STATS_RECORDS, app_id, since_ms, &out->records_since, NULL);
	if (err == KAA_OK)
		err = stmt(c, ST_STATS_NODES, &st);
	if (err == KAA_OK) {
		sqlite3_bind_int64(st, 1, app_id);
		sqlite3_bind_int(st, 2, KAA_EP_STATS_NODES_MAX);
		out->nodes = kaa__xcalloc(KAA_EP_STATS_NODES_MAX, sizeof(*out->nodes));
		for (;;) {
			int rc = sqlite3_step(st);
			if (rc == SQLITE_DONE)
				break;
			if (rc != SQLITE_ROW) {
				err = lite_err(c->db, rc, "stats_nodes");
				break;
			}
			kaa__ep_node_count *n = &out->nodes[out->n_nodes++];
			n->node_id = col_dup(st, 0);
			n->endpoints = sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
	}
	script(c, err == KAA_OK ? "COMMIT" : "ROLLBACK");
out:
	release(l, c);
	return err;
}

const kaa__ep_backend kaa__ep_backend_sqlite = {
	.name = "sqlite",
	.open = lite_open,
	.close = lite_close,
	.get = lite_get,
	.put = lite_put,
	.touch = lite_touch,
	.del = lite_del,
	.list = lite_list,
	.set_owner = lite_set_owner,
	.find_by_token = lite_find_by_token,
	.list_by_owner = lite_list_by_owner,
	.logs_append = lite_logs_append,
	.logs_count = lite_logs_count,
	.logs_list = lite_logs_list,
	.set_server_profile = lite_set_server_profile,
	.logs_query = lite_logs_query,
	.stats = lite_stats,
};
