/*
 * The metadata store suite on PostgreSQL ($KAA_TEST_PG, from e2e/run-tests.sh),
 * plus what only a real server shows: calls during an outage fail with
 * KAA_ERR_UNAVAILABLE instead of hanging, and after a restart of the server
 * ($KAA_HARNESS restart postgres $KAA_TEST_PG_DIR) the pool reconnects: at
 * most the first call fails, every later one succeeds.
 *
 * Each run works in databases of its own, kaa_test_<pid> and
 * kaa_test_<pid>_<n> (fresh ones for concurrent migrations), dropped at the
 * end. A missing KAA_TEST_PG is a failure, not a skip.
 */
#include "cu_main.h"
#include "meta_store_suite.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"

#include <CUnit/Basic.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *admin_url; /* $KAA_TEST_PG */
static char *run_url;
static char *dbs[32];
static int ndbs;

/* admin_url with its database name replaced by db (malloc'd). */
static char *url_with_db(const char *db)
{
	const char *scheme = strstr(admin_url, "://");
	if (!scheme)
		return NULL;
	const char *path = strchr(scheme + 3, '/');
	const char *query = strchr(scheme + 3, '?');
	size_t host_len = path    ? (size_t)(path - admin_url)
			  : query ? (size_t)(query - admin_url)
				  : strlen(admin_url);
	char *u = NULL;
	if (asprintf(&u, "%.*s/%s%s", (int)host_len, admin_url, db, query ? query : "") < 0)
		return NULL;
	return u;
}

/* Runs one statement on the admin database; names are built from our pid. */
static int admin_exec(const char *sql)
{
	PGconn *c = PQconnectdb(admin_url);
	int ok = PQstatus(c) == CONNECTION_OK;
	if (ok) {
		PGresult *r = PQexec(c, sql);
		ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
	} else {
		fprintf(stderr, "connect %s: %s", admin_url, PQerrorMessage(c));
	}
	PQfinish(c);
	return ok ? 0 : -1;
}

static char *new_database(void)
{
	char name[64], sql[128];
	if (ndbs == (int)(sizeof(dbs) / sizeof(dbs[0])))
		return NULL;
	snprintf(name, sizeof(name), "kaa_test_%d_%d", (int)getpid(), ndbs);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (admin_exec(sql) != 0)
		return NULL;
	dbs[ndbs++] = strdup(name);
	return url_with_db(name);
}

static void drop_databases(void)
{
	for (int i = 0; i < ndbs; i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbs[i]);
		admin_exec(sql);
		free(dbs[i]);
	}
	ndbs = 0;
}

static int harness(const char *verb)
{
	const char *h = getenv("KAA_HARNESS"), *dir = getenv("KAA_TEST_PG_DIR");
	if (!h || !dir) {
		fprintf(stderr, "KAA_HARNESS / KAA_TEST_PG_DIR not set\n");
		return -1;
	}
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "\"%s\" %s postgres \"%s\" >/dev/null", h, verb, dir);
	return system(cmd);
}

static int create_tenant(kaa__meta_store *s, int64_t *id)
{
	kaa__meta_obj in = {.kind = KAA_META_TENANT, .name = (char *)meta_suite_name("pg")};
	kaa__meta_obj out;
	int rc = kaa__meta_create(s, &in, &out, NULL);
	if (id)
		*id = out.id;
	kaa__meta_obj_clear(&out);
	return rc;
}

struct warm {
	kaa__meta_store *s;
	pthread_barrier_t *go;
	int rc;
};

static void *warm_thread(void *arg)
{
	struct warm *w = arg;
	pthread_barrier_wait(w->go);
	for (int i = 0; i < 5 && w->rc == KAA_OK; i++)
		w->rc = create_tenant(w->s, NULL);
	return NULL;
}

static void test_outage_and_restart(void)
{
	kaa__meta_opts o = {.pool_size = 4, .timeout_ms = 3000};
	kaa__meta_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_store_new(run_url, &o, &s), KAA_OK);

	/* open several pooled connections, all of which the restart breaks */
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 4);
	struct warm w[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		w[i] = (struct warm){.s = s, .go = &go};
		pthread_create(&th[i], NULL, warm_thread, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].rc, KAA_OK);
	}
	pthread_barrier_destroy(&go);

	/* server down: calls fail fast with UNAVAILABLE */
	CU_ASSERT_EQUAL_FATAL(harness("stop"), 0);
	for (int i = 0; i < 3; i++) {
		int64_t t0 = kaa__now_ms();
		CU_ASSERT_EQUAL(create_tenant(s, NULL), KAA_ERR_UNAVAILABLE);
		CU_ASSERT(kaa__now_ms() - t0 < 5000);
	}
	kaa__meta_obj got;
	CU_ASSERT_EQUAL(kaa__meta_get(s, KAA_META_TENANT, 1, &got), KAA_ERR_UNAVAILABLE);
	CU_ASSERT_EQUAL(harness("restart"), 0);
	int rc = create_tenant(s, NULL);
	CU_ASSERT(rc == KAA_OK || rc == KAA_ERR_UNAVAILABLE);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(create_tenant(s, NULL), KAA_OK);

	/* a restart while connected: at most the first call fails */
	int64_t id = 0;
	CU_ASSERT_EQUAL(create_tenant(s, &id), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(harness("restart"), 0);
	rc = kaa__meta_get(s, KAA_META_TENANT, id, &got);
	if (rc != KAA_OK) {
		CU_ASSERT_EQUAL(rc, KAA_ERR_UNAVAILABLE);
		rc = kaa__meta_get(s, KAA_META_TENANT, id, &got);
	}
	CU_ASSERT_EQUAL(rc, KAA_OK);
	CU_ASSERT_EQUAL(got.id, id);
	kaa__meta_obj_clear(&got);
	/* every stale pooled connection was replaced: no more failures */
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(create_tenant(s, NULL), KAA_OK);

	/* a kill -9 (crash recovery on restart) behaves the same */
	CU_ASSERT_EQUAL_FATAL(harness("kill"), 0);
	CU_ASSERT_EQUAL(create_tenant(s, NULL), KAA_ERR_UNAVAILABLE);
	CU_ASSERT_EQUAL_FATAL(harness("restart"), 0);
	rc = create_tenant(s, NULL);
	CU_ASSERT(rc == KAA_OK || rc == KAA_ERR_UNAVAILABLE);
	CU_ASSERT_EQUAL(create_tenant(s, NULL), KAA_OK);
	kaa__meta_store_free(s);

	/* opening while the server is down fails cleanly */
	CU_ASSERT_EQUAL_FATAL(harness("stop"), 0);
	s = NULL;
	CU_ASSERT_EQUAL(kaa__meta_store_new(run_url, &o, &s), KAA_ERR_UNAVAILABLE);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(harness("restart"), 0);
	CU_ASSERT_EQUAL(kaa__meta_store_new(run_url, &o, &s), KAA_OK);
	kaa__meta_store_free(s);
}

static void test_env_missing(void)
{
	CU_FAIL("KAA_TEST_PG is not set; run this test through e2e/run-tests.sh");
}

static const kaa__cu_test env_missing[] = {{"environment", test_env_missing}};
static const kaa__cu_test server[] = {
	{"outage, restart and reconnect", test_outage_and_restart},
};

int main(void)
{
	const char *lvl = getenv("KAA_LOG_LEVEL"); /* quiet unless asked */
	kaa__log_level =
		lvl && kaa__log_level_parse(lvl) >= 0 ? kaa__log_level_parse(lvl) : KAA_LOG_WARN;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	admin_url = getenv("KAA_TEST_PG");
	static meta_suite_env env = {.fresh_url = new_database, .backend = "postgresql"};
	if (!admin_url || !*admin_url) {
		if (kaa__cu_add("meta-store-pg", env_missing, KAA__CU_COUNT(env_missing), NULL,
				NULL) != 0)
			return 1;
	} else {
		run_url = new_database();
		if (!run_url) {
			fprintf(stderr, "cannot create a test database on KAA_TEST_PG\n");
			CU_cleanup_registry();
			return 1;
		}
		env.url = run_url;
		if (meta_suite_add("meta-store-pg", &env) != 0 ||
		    kaa__cu_add("meta-store-pg-server", server, KAA__CU_COUNT(server), NULL,
				NULL) != 0)
			return 1;
	}
	int rc = kaa__cu_run_all();
	drop_databases();
	free(run_url);
	return rc;
}
