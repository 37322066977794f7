/*
 * meta_store_pg.c - the PostgreSQL backend of meta_store.h (libpq).
 *
 * One PGconn per pool slot, used by one thread at a time. Statements are
 * prepared once per connection (PQprepare, named "kaa<id>") and run with
 * PQexecPrepared; parameters travel separately from the SQL, as text, their
 * types inferred by the server. A connection whose status turns bad (server
 * restart, network loss) makes the call fail with KAA_ERR_UNAVAILABLE; the
 * pool then drops it and reconnects on the next call. Migrations are
 * serialized across replicas with a session-level pg_advisory_lock.
 */
#include "store/meta_store.h"

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "meta_store"
/* The advisory lock key serializing migrations ("kaameta1" in ASCII). */
#define MIG_LOCK_SQL "SELECT pg_advisory_lock(7737572757280678193)"
#define MIG_UNLOCK_SQL "SELECT pg_advisory_unlock(7737572757280678193)"

struct pg_conn {
	PGconn *pg;
	bool prepared[KAA__META_STMT_MAX];
};

static void pg_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "relation already exists, skipping" and the like */
}

/* First line of libpq's message, for a one-line log record. */
static void first_line(const char *msg, char *buf, size_t len)
{
	snprintf(buf, len, "%s", msg ? msg : "");
	buf[strcspn(buf, "\r\n")] = '\0';
	for (char *p = buf; *p; p++)
		if (*p == '"')
			*p = '\'';
}

static int pg_err(struct pg_conn *c, const PGresult *res, const char *what)
{
	char line[256];
	if (PQstatus(c->pg) != CONNECTION_OK) {
		first_line(PQerrorMessage(c->pg), line, sizeof(line));
		KAA_WARN(MOD, "pg_connection_lost op=%s msg=\"%s\"", what, line);
		return KAA_ERR_UNAVAILABLE;
	}
	if (!res)
		kaa__oom(); /* libpq returns no result only when out of memory */
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (!state)
		state = "";
	if (strcmp(state, "23505") == 0)
		return KAA_ERR_EXISTS;
	if (strcmp(state, "23503") == 0)
		return KAA_ERR_NOTFOUND;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return KAA__META_RETRY;
	if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
		return KAA_ERR_INVAL; /* check, not-null; invalid text or number */
	first_line(PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), line, sizeof(line));
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0) {
		KAA_WARN(MOD, "pg_unavailable op=%s sqlstate=%s msg=\"%s\"", what, state, line);
		return KAA_ERR_UNAVAILABLE;
	}
	if (strcmp(state, "57014") == 0 || strcmp(state, "55P03") == 0)
		return KAA_ERR_TIMEOUT;
	KAA_ERROR(MOD, "pg_error op=%s sqlstate=%s msg=\"%s\"", what, state, line);
	return KAA_ERR_INTERNAL;
}

static void pg_disconnect(void *vc)
{
	struct pg_conn *c = vc;
	if (!c)
		return;
	PQfinish(c->pg);
	free(c);
}

static int pg_connect(const char *url, const kaa__meta_opts *o, void **out)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(url, &perr);
	if (!opts) {
		/* libpq quotes the URL after " in URI": cut it, it may hold a password */
		char line[256];
		first_line(perr, line, sizeof(line));
		char *uri = strstr(line, " in URI");
		if (uri)
			*uri = '\0';
		KAA_ERROR(MOD, "pg_bad_url msg=\"%s\"", line);
		if (!perr)
			kaa__oom(); /* libpq: no message means out of memory */
		PQfreemem(perr);
		return KAA_ERR_INVAL;
	}
	PQconninfoFree(opts);

	char tmo[16];
	snprintf(tmo, sizeof(tmo), "%d", o->timeout_ms < 2000 ? 2 : o->timeout_ms / 1000);
	/* Our defaults first: the URL (expanded in place of dbname) overrides. */
	const char *const keys[] = {"connect_timeout", "application_name", "client_encoding",
				    "dbname", NULL};
	const char *const vals[] = {tmo, "kaa-node", "UTF8", url, NULL};
	struct pg_conn *c = kaa__xcalloc(1, sizeof(*c));
	c->pg = PQconnectdbParams(keys, vals, 1);
	if (!c->pg)
		kaa__oom();
	if (PQstatus(c->pg) != CONNECTION_OK) {
		char line[256];
		first_line(PQerrorMessage(c->pg), line, sizeof(line));
		KAA_WARN(MOD, "pg_connect_failed msg=\"%s\"", line);
		pg_disconnect(c);
		return KAA_ERR_UNAVAILABLE;
	}
	PQsetNoticeProcessor(c->pg, pg_notice, NULL);
	*out = c;
	return KAA_OK;
}

static int pg_script(void *vc, const char *sql)
{
	struct pg_conn *c = vc;
	PGresult *res = PQexec(c->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc =
		st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? KAA_OK : pg_err(c, res, "script");
	PQclear(res);
	return rc;
}

static int pg_exec(void *vc, int id, const char *sql, const kaa__meta_param *p, int np,
		   kaa__meta_row_cb cb, void *ud)
{
	struct pg_conn *c = vc;
	char name[16], nums[KAA__META_MAX_PARAMS][24];
	const char *vals[KAA__META_MAX_PARAMS];
	PGresult *res;
	int rc = KAA_OK;

	if (id < 0 || id >= KAA__META_STMT_MAX || np > KAA__META_MAX_PARAMS)
		return KAA_ERR_INTERNAL;
	snprintf(name, sizeof(name), "kaa%d", id);
	if (!c->prepared[id]) {
		res = PQprepare(c->pg, name, sql, np, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			rc = pg_err(c, res, "prepare");
		PQclear(res);
		if (rc != KAA_OK)
			return rc;
		c->prepared[id] = true;
	}
	for (int i = 0; i < np; i++) {
		switch (p[i].type) {
		case KAA__META_PINT:
			snprintf(nums[i], sizeof(nums[i]), "%" PRId64, p[i].i);
			vals[i] = nums[i];
			break;
		case KAA__META_PTEXT: vals[i] = p[i].s; break;
		default: vals[i] = NULL; break;
		}
	}
	res = PQexecPrepared(c->pg, name, np, vals, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK) {
		int rows = PQntuples(res), cols = PQnfields(res);
		if (cols > KAA__META_MAX_COLS)
			rc = KAA_ERR_INTERNAL;
		for (int r = 0; cb && rc == KAA_OK && r < rows; r++) {
			const char *row[KAA__META_MAX_COLS];
			for (int i = 0; i < cols; i++)
				row[i] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
			rc = cb(ud, cols, row);
		}
	} else if (st != PGRES_COMMAND_OK) {
		rc = pg_err(c, res, "exec");
	}
	PQclear(res);
	return rc;
}

static int pg_begin(void *vc)
{
	return pg_script(vc, "BEGIN");
}

static int pg_commit(void *vc)
{
	return pg_script(vc, "COMMIT");
}

static void pg_rollback(void *vc)
{
	struct pg_conn *c = vc;
	if (PQstatus(c->pg) == CONNECTION_OK)
		pg_script(vc, "ROLLBACK");
}

static int pg_mig_lock(void *vc)
{
	return pg_script(vc, MIG_LOCK_SQL);
}

static int pg_mig_unlock(void *vc, bool commit)
{
	struct pg_conn *c = vc;
	(void)commit; /* each migration committed or rolled back on its own */
	if (PQstatus(c->pg) != CONNECTION_OK)
		return KAA_ERR_UNAVAILABLE; /* the lock went with the session */
	return pg_script(vc, MIG_UNLOCK_SQL);
}

static bool pg_broken(void *vc)
{
	struct pg_conn *c = vc;
	return PQstatus(c->pg) != CONNECTION_OK;
}

const kaa__meta_backend kaa__meta_backend_pg = {
	.name = "postgresql",
	.sqlite_dialect = false,
	.tx_per_migration = true,
	.connect = pg_connect,
	.disconnect = pg_disconnect,
	.exec = pg_exec,
	.script = pg_script,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.mig_lock = pg_mig_lock,
	.mig_unlock = pg_mig_unlock,
	.broken = pg_broken,
};
