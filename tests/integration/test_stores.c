/*
 * Integration test of the real-server harness (e2e/harness/harness.sh):
 * one round trip through PostgreSQL with libpq ($KAA_TEST_PG) and one through
 * the MongoDB wire protocol (FerretDB) with libmongoc ($KAA_TEST_MONGO).
 * A missing variable is a failure, not a skip: e2e/run-tests.sh always sets
 * both.
 */
#include "cu_main.h"
#include "test_util.h"
#include <CUnit/Basic.h>
#include <libpq-fe.h>
#include <mongoc/mongoc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- PostgreSQL ------------------------------------------------------- */

static int pg_ok(PGconn *conn, PGresult *res, ExecStatusType want, const char *what)
{
	if (PQresultStatus(res) != want) {
		fprintf(stderr, "postgres %s: %s", what, PQerrorMessage(conn));
		return 0;
	}
	return 1;
}

static void test_postgres_roundtrip(void)
{
	const char *url = kaa__test_require_env("KAA_TEST_PG");
	CU_ASSERT_PTR_NOT_NULL_FATAL(url);

	PGconn *conn = PQconnectdb(url);
	if (PQstatus(conn) != CONNECTION_OK) {
		fprintf(stderr, "postgres connect %s: %s", url, PQerrorMessage(conn));
		PQfinish(conn);
		CU_FAIL("cannot connect to KAA_TEST_PG");
		return;
	}

	char table[64];
	snprintf(table, sizeof table, "harness_check_%ld", (long)getpid());
	char sql[256];

	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (id serial PRIMARY KEY, name text NOT NULL, n bigint)", table);
	PGresult *res = PQexec(conn, sql);
	CU_ASSERT(pg_ok(conn, res, PGRES_COMMAND_OK, "create table"));
	PQclear(res);

	snprintf(sql, sizeof sql, "INSERT INTO %s (name, n) VALUES ($1, $2) RETURNING id", table);
	const char *params[2] = {"kaa-endpoint-\xc3\xa9", "9000000000"};
	res = PQexecParams(conn, sql, 2, NULL, params, NULL, NULL, 0);
	CU_ASSERT(pg_ok(conn, res, PGRES_TUPLES_OK, "insert"));
	CU_ASSERT_EQUAL(PQntuples(res), 1);
	char id[32] = "";
	if (PQntuples(res) == 1)
		snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	snprintf(sql, sizeof sql, "SELECT name, n FROM %s WHERE id = $1", table);
	const char *sel[1] = {id};
	res = PQexecParams(conn, sql, 1, NULL, sel, NULL, NULL, 0);
	CU_ASSERT(pg_ok(conn, res, PGRES_TUPLES_OK, "select"));
	CU_ASSERT_EQUAL(PQntuples(res), 1);
	if (PQntuples(res) == 1) {
		CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), params[0]);
		CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 1), params[1]);
	}
	PQclear(res);

	/* the harness created the database the URL names */
	res = PQexec(conn, "SELECT current_database()");
	CU_ASSERT(pg_ok(conn, res, PGRES_TUPLES_OK, "current_database"));
	if (PQntuples(res) == 1)
		CU_ASSERT_STRING_EQUAL(PQgetvalue(res, 0, 0), "kaa");
	PQclear(res);

	snprintf(sql, sizeof sql, "DROP TABLE %s", table);
	res = PQexec(conn, sql);
	CU_ASSERT(pg_ok(conn, res, PGRES_COMMAND_OK, "drop table"));
	PQclear(res);
	PQfinish(conn);
}

/* ---- MongoDB wire protocol (FerretDB) --------------------------------- */

static void test_mongo_roundtrip(void)
{
	const char *url = kaa__test_require_env("KAA_TEST_MONGO");
	CU_ASSERT_PTR_NOT_NULL_FATAL(url);

	bson_error_t err;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &err);
	if (!uri)
		fprintf(stderr, "mongo uri %s: %s\n", url, err.message);
	CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
	mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 10000);

	mongoc_client_t *client = mongoc_client_new_from_uri(uri);
	if (!client) {
		mongoc_uri_destroy(uri);
		CU_FAIL("mongoc_client_new_from_uri failed");
		return;
	}
	mongoc_client_set_appname(client, "kaa-test-stores");

	bson_t *ping = BCON_NEW("ping", BCON_INT32(1));
	bson_t reply;
	bool ok = mongoc_client_command_simple(client, "admin", ping, NULL, &reply, &err);
	bson_destroy(&reply);
	bson_destroy(ping);
	if (!ok) {
		fprintf(stderr, "mongo ping %s: %s\n", url, err.message);
		mongoc_client_destroy(client);
		mongoc_uri_destroy(uri);
		CU_FAIL("cannot reach KAA_TEST_MONGO");
		return;
	}

	char coll_name[64];
	snprintf(coll_name, sizeof coll_name, "harness_check_%ld", (long)getpid());
	mongoc_collection_t *coll = mongoc_client_get_collection(client, "kaa_test", coll_name);

	bson_oid_t oid;
	bson_oid_init(&oid, NULL);
	bson_t *doc =
		BCON_NEW("_id", BCON_OID(&oid), "name", BCON_UTF8("kaa-endpoint-\xc3\xa9"), "n",
			 BCON_INT64(9000000000LL), "profile", "{", "fw", BCON_UTF8("1.2.3"), "}");
	ok = mongoc_collection_insert_one(coll, doc, NULL, NULL, &err);
	if (!ok)
		fprintf(stderr, "mongo insert: %s\n", err.message);
	CU_ASSERT(ok);

	bson_t *filter = BCON_NEW("_id", BCON_OID(&oid));
	mongoc_cursor_t *cur = mongoc_collection_find_with_opts(coll, filter, NULL, NULL);
	const bson_t *found;
	int count = 0;
	while (mongoc_cursor_next(cur, &found)) {
		count++;
		bson_iter_t it;
		CU_ASSERT(bson_iter_init_find(&it, found, "name") && BSON_ITER_HOLDS_UTF8(&it) &&
			  strcmp(bson_iter_utf8(&it, NULL), "kaa-endpoint-\xc3\xa9") == 0);
		CU_ASSERT(bson_iter_init_find(&it, found, "n") && BSON_ITER_HOLDS_INT64(&it) &&
			  bson_iter_int64(&it) == 9000000000LL);
		CU_ASSERT(bson_iter_init(&it, found) &&
			  bson_iter_find_descendant(&it, "profile.fw", &it) &&
			  BSON_ITER_HOLDS_UTF8(&it) &&
			  strcmp(bson_iter_utf8(&it, NULL), "1.2.3") == 0);
		/* the whole document comes back unchanged */
		CU_ASSERT(bson_equal(found, doc));
	}
	if (mongoc_cursor_error(cur, &err)) {
		fprintf(stderr, "mongo find: %s\n", err.message);
		CU_FAIL("find failed");
	}
	CU_ASSERT_EQUAL(count, 1);
	mongoc_cursor_destroy(cur);

	ok = mongoc_collection_drop(coll, &err);
	if (!ok)
		fprintf(stderr, "mongo drop: %s\n", err.message);
	CU_ASSERT(ok);

	bson_destroy(filter);
	bson_destroy(doc);
	mongoc_collection_destroy(coll);
	mongoc_client_destroy(client);
	mongoc_uri_destroy(uri);
}

static const kaa__cu_test tests[] = {
	{"postgres_roundtrip", test_postgres_roundtrip},
	{"mongo_roundtrip", test_mongo_roundtrip},
};

int main(void)
{
	mongoc_init();
	int rc = kaa__cu_run("stores", tests, KAA__CU_COUNT(tests), NULL, NULL);
	mongoc_cleanup();
	return rc;
}
