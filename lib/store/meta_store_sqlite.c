/*
 * meta_store_sqlite.c - the SQLite backend of meta_store.h.
 *
 * One sqlite3 connection per pool slot, opened with SQLITE_OPEN_NOMUTEX (a
 * connection is used by one thread at a time, the pool guarantees it), in
 * WAL mode with foreign keys on and a busy timeout of opts.timeout_ms.
 * Writers start with BEGIN IMMEDIATE, so they queue for the write lock at
 * the start of the transaction (never a deadlock or a failed upgrade),
 * across connections and processes alike. Statements are prepared once per
 * connection (SQLITE_PREPARE_PERSISTENT) and cached by id; parameters are
 * bound by their name "$N".
 */
#include "store/sqlite_err.h"
#include "store/meta_store.h"

#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "meta_store"

struct lite_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[KAA__META_STMT_MAX];
};

static int lite_err(sqlite3 *db, int rc, const char *what)
{
	return kaa__sqlite_err(db, rc, MOD, what);
}

static void lite_disconnect(void *vc)
{
	struct lite_conn *c = vc;
	if (!c)
		return;
	for (int i = 0; i < KAA__META_STMT_MAX; i++)
		sqlite3_finalize(c->stmts[i]);
	sqlite3_close(c->db);
	free(c);
}

static int lite_script(void *vc, const char *sql)
{
	struct lite_conn *c = vc;
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);
	sqlite3_free(msg);
	return lite_err(c->db, rc, "script");
}

static int lite_connect(const char *path, const kaa__meta_opts *o, void **out)
{
	struct lite_conn *c = kaa__xcalloc(1, sizeof(*c));
	int rc = sqlite3_open_v2(path, &c->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		KAA_ERROR(MOD, "sqlite_open_failed path=\"%s\" msg=\"%s\"", path,
			  c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
		if (rc == SQLITE_NOMEM)
			kaa__oom();
		lite_disconnect(c);
		return KAA_ERR_IO;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, o->timeout_ms);
	/* Switching to WAL needs a moment of exclusive access: retry while
	 * other connections hold the file, within the timeout. */
	int64_t deadline = kaa__now_ms() + o->timeout_ms;
	int err;
	for (;;) {
		err = lite_script(c, "PRAGMA journal_mode=WAL");
		if (err != KAA_ERR_TIMEOUT || kaa__now_ms() > deadline)
			break;
		kaa__sleep_ms_unless(20, NULL);
	}
	if (err == KAA_OK)
		err = lite_script(c, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL");
	if (err != KAA_OK) {
		lite_disconnect(c);
		return err;
	}
	*out = c;
	return KAA_OK;
}

static int lite_exec(void *vc, int id, const char *sql, const kaa__meta_param *p, int np,
		     kaa__meta_row_cb cb, void *ud)
{
	struct lite_conn *c = vc;
	sqlite3_stmt *st;
	int rc, err = KAA_OK;

	if (id < 0 || id >= KAA__META_STMT_MAX || np > KAA__META_MAX_PARAMS)
		return KAA_ERR_INTERNAL;
	st = c->stmts[id];
	if (!st) {
		rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK)
			return lite_err(c->db, rc, "prepare");
		c->stmts[id] = st;
	}
	for (int i = 0; i < np && err == KAA_OK; i++) {
		char name[16];
		snprintf(name, sizeof(name), "$%d", i + 1);
		int idx = sqlite3_bind_parameter_index(st, name);
		if (idx == 0)
			continue;
		switch (p[i].type) {
		case KAA__META_PINT: rc = sqlite3_bind_int64(st, idx, p[i].i); break;
		case KAA__META_PTEXT:
			rc = sqlite3_bind_text(st, idx, p[i].s, -1, SQLITE_STATIC);
			break;
		default: rc = sqlite3_bind_null(st, idx); break;
		}
		if (rc != SQLITE_OK)
			err = lite_err(c->db, rc, "bind");
	}
	while (err == KAA_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			break;
		if (rc != SQLITE_ROW) {
			err = lite_err(c->db, rc, "step");
			break;
		}
		if (!cb)
			continue;
		const char *vals[KAA__META_MAX_COLS];
		int n = sqlite3_column_count(st);
		if (n > KAA__META_MAX_COLS) {
			err = KAA_ERR_INTERNAL;
			break;
		}
		for (int i = 0; i < n; i++)
			vals[i] = sqlite3_column_type(st, i) == SQLITE_NULL
					  ? NULL
					  : (const char *)sqlite3_column_text(st, i);
		err = cb(ud, n, vals);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return err;
}

static int lite_begin(void *vc)
{
	return lite_script(vc, "BEGIN IMMEDIATE");
}

static int lite_commit(void *vc)
{
	return lite_script(vc, "COMMIT");
}

static void lite_rollback(void *vc)
{
	struct lite_conn *c = vc;
	if (sqlite3_get_autocommit(c->db))
		return; /* SQLite already rolled back (e.g. after SQLITE_FULL) */
	lite_script(vc, "ROLLBACK");
}

/* Migrations run in one BEGIN IMMEDIATE transaction: concurrent openers
 * wait for the write lock (busy timeout), then see them applied. */
static int lite_mig_unlock(void *vc, bool commit)
{
	if (commit)
		return lite_commit(vc);
	lite_rollback(vc);
	return KAA_OK;
}

static bool lite_broken(void *vc)
{
	(void)vc;
	return false;
}

const kaa__meta_backend kaa__meta_backend_sqlite = {
	.name = "sqlite",
	.sqlite_dialect = true,
	.tx_per_migration = false,
	.connect = lite_connect,
	.disconnect = lite_disconnect,
	.exec = lite_exec,
	.script = lite_script,
	.begin = lite_begin,
	.commit = lite_commit,
	.rollback = lite_rollback,
	.mig_lock = lite_begin,
	.mig_unlock = lite_mig_unlock,
	.broken = lite_broken,
};
