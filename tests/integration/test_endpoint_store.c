/*
 * Integration tests of the endpoint store (lib/store/endpoint_store.h): the same
 * test functions run on SQLite (a temporary file per test) and on MongoDB
 * ($KAA_TEST_MONGO, FerretDB from the harness; a fresh database per test,
 * dropped afterwards). A missing KAA_TEST_MONGO is a failure, not a skip:
 * e2e/run-tests.sh always sets it. The outage test also needs KAA_HARNESS
 * and KAA_TEST_MONGO_DIR (set by e2e/run-tests.sh) to stop and restart the
 * server.
 */
#include "store/endpoint_store.h"

#include "base/clock.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { BE_SQLITE, BE_MONGO };
static int g_backend;
static char g_url[1024];
static char g_tmpdir[512];
static int g_seq;

static const char *require_env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "%s is not set; run this test through e2e/run-tests.sh\n", name);
		return NULL;
	}
	return v;
}

/* A fresh database for one test: its URL in g_url. */
static int fresh_url(void)
{
	g_seq++;
	if (g_backend == BE_SQLITE) {
		snprintf(g_url, sizeof(g_url), "sqlite:%s/sub/ep%d.db", g_tmpdir, g_seq);
		return 0;
	}
	const char *base = require_env("KAA_TEST_MONGO");
	if (!base)
		return -1;
	/* the harness URL ends with "/": append the database name before any
	 * options */
	const char *q = strchr(base, '?');
	size_t len = q ? (size_t)(q - base) : strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	snprintf(g_url, sizeof(g_url), "%.*s/kaa_ept_%ld_%d%s", (int)len, base, (long)getpid(),
		 g_seq, q ? q : "");
	return 0;
}

static void drop_db(void)
{
	if (g_backend != BE_MONGO)
		return;
	bson_error_t e;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(g_url, &e);
	if (!uri)
		return;
	mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000);
	mongoc_client_t *c = mongoc_client_new_from_uri(uri);
	if (c) {
		mongoc_database_t *db = mongoc_client_get_database(c, mongoc_uri_get_database(uri));
		if (!mongoc_database_drop(db, &e))
			fprintf(stderr, "drop %s: %s\n", g_url, e.message);
		mongoc_database_destroy(db);
		mongoc_client_destroy(c);
	}
	mongoc_uri_destroy(uri);
}

static kaa__ep_store *open_fresh(void)
{
	kaa__ep_store *s = NULL;
	if (fresh_url() != 0)
		return NULL;
	int rc = kaa__ep_store_new(g_url, &s);
	if (rc != KAA_OK)
		fprintf(stderr, "open %s: %s\n", g_url, kaa_strerror(rc));
	return s;
}

static void close_store(kaa__ep_store *s)
{
	kaa__ep_store_free(s);
	drop_db();
}

static kaa__endpoint sample(int64_t app, const char *key)
{
	kaa__endpoint ep = {0};
	ep.app_id = app;
	ep.key_hash = (char *)key;
	ep.public_key = "cHVibGljLWtleS1ieXRlcw==";
	ep.client_profile = "{\"fw\":\"1.2.3\",\"name\":\"caf\xc3\xa9\"}";
	ep.client_profile_version = 2;
	ep.groups = "[1,2]";
	ep.config_hash = "abc123";
	ep.config_doc = "{\"rate\":5}";
	ep.topics = "[]";
	ep.notif_state = "{\"7\":3}";
	ep.node_id = "node-a";
	ep.last_seen_ms = 1000;
	return ep;
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}
#define STREQ_OR_NULL(a, b) CU_ASSERT(str_eq((a), (b)))

/* ---- endpoints --------------------------------------------------------------- */

static void test_crud(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(kaa__ep_store_backend(s),
			       g_backend == BE_SQLITE ? "sqlite" : "mongodb");
	kaa__endpoint got = {0};
	CU_ASSERT_EQUAL(kaa__ep_get(s, 1, "k1", &got), KAA_ERR_NOTFOUND);

	kaa__endpoint ep = sample(1, "k1");
	int64_t t0 = kaa__wall_ms();
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.app_id, 1);
	STREQ_OR_NULL(got.key_hash, "k1");
	STREQ_OR_NULL(got.public_key, ep.public_key);
	STREQ_OR_NULL(got.access_token, NULL);
	STREQ_OR_NULL(got.client_profile, ep.client_profile);
	CU_ASSERT_EQUAL(got.client_profile_version, 2);
	STREQ_OR_NULL(got.server_profile, NULL);
	STREQ_OR_NULL(got.groups, "[1,2]");
	STREQ_OR_NULL(got.config_hash, "abc123");
	STREQ_OR_NULL(got.config_doc, "{\"rate\":5}");
	STREQ_OR_NULL(got.topics, "[]");
	STREQ_OR_NULL(got.notif_state, "{\"7\":3}");
	STREQ_OR_NULL(got.node_id, "node-a");
	STREQ_OR_NULL(got.owner_id, NULL);
	CU_ASSERT_EQUAL(got.last_seen_ms, 1000);
	CU_ASSERT(got.created_ms >= t0 && got.created_ms <= kaa__wall_ms());
	CU_ASSERT_EQUAL(got.updated_ms, got.created_ms);
	int64_t created = got.created_ms;

	CU_ASSERT_EQUAL(got.server_profile_version, 0);

	/* the server profile: set only by set_server_profile, with a version
	 * for compare-and-set; put keeps it */
	int64_t v = -1;
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "k1", "{\"x\":null}", 0, &v), KAA_OK);
	CU_ASSERT_EQUAL(v, 1);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "k1", "{\"x\":2}", 0, &v),
			KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "nope", "{}", -1, &v), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "nope", "{}", 0, &v), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "k1", "{\"x\":", -1, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.server_profile, "{\"x\":null}");
	CU_ASSERT_EQUAL(got.server_profile_version, 1);
	STREQ_OR_NULL(got.config_hash, "abc123");

	/* replace: created kept, absent fields become absent, the server
	 * profile stays */
	kaa__sleep_ms_unless(5, NULL);
	kaa__endpoint ep2 = {.app_id = 1, .key_hash = "k1", .server_profile = "{\"stale\":1}"};
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep2), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.created_ms, created);
	CU_ASSERT(got.updated_ms > created);
	STREQ_OR_NULL(got.public_key, NULL);
	STREQ_OR_NULL(got.node_id, NULL);
	STREQ_OR_NULL(got.server_profile, "{\"x\":null}");
	CU_ASSERT_EQUAL(got.server_profile_version, 1);
	CU_ASSERT_EQUAL(got.client_profile_version, 0);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "k1", NULL, 1, &v), KAA_OK);
	CU_ASSERT_EQUAL(v, 2);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.server_profile, NULL);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "k1", "{\"x\":null}", 1, &v),
			KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_server_profile(s, 1, "k1", "{\"x\":null}", 2, &v), KAA_OK);

	/* same key in another application is another endpoint */
	CU_ASSERT_EQUAL(kaa__ep_get(s, 2, "k1", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_PTR_NULL(got.key_hash);

	/* touch */
	CU_ASSERT_EQUAL(kaa__ep_touch(s, 1, "k1", "node-b", 5000), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.node_id, "node-b");
	CU_ASSERT_EQUAL(got.last_seen_ms, 5000);
	STREQ_OR_NULL(got.server_profile, "{\"x\":null}");
	CU_ASSERT_EQUAL(kaa__ep_touch(s, 1, "k1", NULL, 6000), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.node_id, NULL);
	CU_ASSERT_EQUAL(got.last_seen_ms, 6000);
	CU_ASSERT_EQUAL(kaa__ep_touch(s, 1, "nope", "n", 1), KAA_ERR_NOTFOUND);

	/* delete */
	CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, "k1"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_get(s, 1, "k1", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, "k1"), KAA_ERR_NOTFOUND);
	kaa__endpoint_clear(&got);
	kaa__endpoint_clear(NULL);
	close_store(s);
}

struct collect {
	char keys[64][16];
	int n;
	int stop_after;
};

static int collect_cb(void *ud, const kaa__endpoint *ep)
{
	struct collect *c = ud;
	if (c->n < 64)
		snprintf(c->keys[c->n], sizeof(c->keys[0]), "%s", ep->key_hash);
	c->n++;
	return c->stop_after && c->n >= c->stop_after ? 42 : 0;
}

static void test_list_paging(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* inserted out of order */
	for (int i = 24; i >= 0; i--) {
		char key[16];
		snprintf(key, sizeof(key), "key%02d", i);
		kaa__endpoint ep = sample(1, key);
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	}
	for (int i = 0; i < 3; i++) {
		char key[32];
		snprintf(key, sizeof(key), "other%d", i);
		kaa__endpoint ep = sample(2, key);
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	}
	char *after = NULL;
	int total = 0, pages = 0;
	for (;;) {
		struct collect c = {0};
		char *last = NULL;
		CU_ASSERT_EQUAL_FATAL(kaa__ep_list(s, 1, after, 10, collect_cb, &c, &last), KAA_OK);
		pages++;
		for (int i = 0; i < c.n; i++) {
			char want[16];
			snprintf(want, sizeof(want), "key%02d", total + i);
			CU_ASSERT_STRING_EQUAL(c.keys[i], want);
		}
		total += c.n;
		if (c.n == 0) {
			CU_ASSERT_PTR_NULL(last);
			break;
		}
		CU_ASSERT_PTR_NOT_NULL_FATAL(last);
		CU_ASSERT_STRING_EQUAL(last, c.keys[c.n - 1]);
		free(after);
		after = last;
		CU_ASSERT_FATAL(pages < 10);
	}
	free(after);
	CU_ASSERT_EQUAL(total, 25);
	CU_ASSERT_EQUAL(pages, 4); /* 10, 10, 5, 0 */

	struct collect c2 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list(s, 2, NULL, 1000, collect_cb, &c2, NULL), KAA_OK);
	CU_ASSERT_EQUAL(c2.n, 3);
	struct collect c3 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list(s, 3, NULL, 5, collect_cb, &c3, NULL), KAA_OK);
	CU_ASSERT_EQUAL(c3.n, 0);

	/* the callback stops the walk; its value comes back, with the cursor */
	struct collect c4 = {.stop_after = 3};
	char *last = NULL;
	CU_ASSERT_EQUAL(kaa__ep_list(s, 1, NULL, 10, collect_cb, &c4, &last), 42);
	CU_ASSERT_EQUAL(c4.n, 3);
	CU_ASSERT(last && strcmp(last, "key02") == 0);
	free(last);
	close_store(s);
}

/* ---- owners and access tokens --------------------------------------------- */

static void test_owner(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__endpoint got = {0};
	kaa__endpoint ep = sample(1, "k1");
	ep.owner_id = "ignored-by-put"; /* put never writes the owner */
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	int64_t created = got.created_ms;

	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-1", NULL), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	STREQ_OR_NULL(got.client_profile, ep.client_profile); /* nothing else changed */
	STREQ_OR_NULL(got.node_id, "node-a");

	/* a session saves its stale copy (no owner, or another one): kept */
	ep.owner_id = NULL;
	ep.config_hash = "def456";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	STREQ_OR_NULL(got.config_hash, "def456");
	CU_ASSERT_EQUAL(got.created_ms, created);
	ep.owner_id = "user-9";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_touch(s, 1, "k1", "node-b", 7), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	/* the record read back (owner included) can be put as it is */
	CU_ASSERT_EQUAL(kaa__ep_put(s, &got), KAA_OK);

	/* compare-and-set */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-2", "user-3"), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-2", ""), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", NULL, "user-3"), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-2", "user-1"), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-2");
	/* detach only from the owner we think it has */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", NULL, "user-1"), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", NULL, "user-2"), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-4", "user-2"), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "caf\xc3\xa9", ""), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-5", ""), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "caf\xc3\xa9");
	/* unconditional detach, twice (idempotent) */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", NULL, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", NULL, NULL), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);

	/* absent endpoint: NOTFOUND, with or without an expectation */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "nope", "user-1", NULL), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "nope", "user-1", ""), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "nope", NULL, "user-1"), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 2, "k1", "user-1", NULL), KAA_ERR_NOTFOUND);

	/* bounds */
	char owner[KAA_EP_OWNER_MAX + 2];
	memset(owner, 'o', sizeof(owner) - 1);
	owner[sizeof(owner) - 1] = '\0';
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", owner, NULL), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "x", owner), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "\xff", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "\xed\xa0\x80", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "x", "\xc0\xaf"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "a:b", "x", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 0, "k1", "x", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(NULL, 1, "k1", "x", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	owner[KAA_EP_OWNER_MAX] = '\0'; /* exactly the maximum: fine */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", owner, ""), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, owner);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", NULL, owner), KAA_OK);
	/* put does not even look at owner_id */
	ep.owner_id = "\xff";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);

	/* deleting the endpoint drops its owner with it */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-1", NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, "k1"), KAA_OK);
	ep.owner_id = NULL;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	kaa__endpoint_clear(&got);
	close_store(s);
}

enum { CAS_THREADS = 8 };

struct cas_worker {
	kaa__ep_store *s;
	int id;
	int rc;
};

static void *cas_main(void *arg)
{
	struct cas_worker *w = arg;
	char owner[32];
	snprintf(owner, sizeof(owner), "user-%d", w->id);
	w->rc = kaa__ep_set_owner(w->s, 1, "k1", owner, "");
	return NULL;
}

/* Whether the MongoDB-protocol server behind g_url is FerretDB. */
static bool server_is_ferretdb(void)
{
	bson_error_t e;
	bson_t reply;
	bson_iter_t it;
	bool yes = false;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(g_url, &e);
	if (!uri)
		return false;
	mongoc_client_t *c = mongoc_client_new_from_uri(uri);
	bson_t *cmd = BCON_NEW("buildInfo", BCON_INT32(1));
	if (c && mongoc_client_command_simple(c, "admin", cmd, NULL, &reply, &e))
		yes = bson_iter_init_find(&it, &reply, "ferretdbVersion");
	if (c)
		bson_destroy(&reply);
	bson_destroy(cmd);
	mongoc_client_destroy(c);
	mongoc_uri_destroy(uri);
	return yes;
}

/* Attach races: of concurrent "attach if free", exactly one wins. Not on
 * FerretDB 1.x, whose updates are find-then-replace (endpoint_store_mongo.c
 * "Owners"): there every attempt ends in success or conflict and the owner
 * stored is one of the winners'. */
static void test_owner_race(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__endpoint ep = sample(1, "k1");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	struct cas_worker w[CAS_THREADS];
	pthread_t th[CAS_THREADS];
	for (int i = 0; i < CAS_THREADS; i++) {
		w[i] = (struct cas_worker){.s = s, .id = i};
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, cas_main, &w[i]) == 0);
	}
	int wins = 0, conflicts = 0;
	for (int i = 0; i < CAS_THREADS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].rc == KAA_OK)
			wins++;
		else if (w[i].rc == KAA_ERR_CONFLICT)
			conflicts++;
	}
	bool atomic = g_backend == BE_SQLITE || !server_is_ferretdb();
	if (atomic)
		CU_ASSERT_EQUAL(wins, 1);
	if (!atomic)
		fprintf(stderr, "[FerretDB: %d of %d attaches won] ", wins, CAS_THREADS);
	CU_ASSERT(wins >= 1);
	CU_ASSERT_EQUAL(wins + conflicts, CAS_THREADS);
	kaa__endpoint got = {0};
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got.owner_id);
	int owner = -1;
	CU_ASSERT_EQUAL(sscanf(got.owner_id, "user-%d", &owner), 1);
	CU_ASSERT_FATAL(owner >= 0 && owner < CAS_THREADS);
	CU_ASSERT_EQUAL(w[owner].rc, KAA_OK);
	kaa__endpoint_clear(&got);
	close_store(s);
}

static void test_find_by_token(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__endpoint got = {0};
	kaa__endpoint ep = sample(1, "k1");
	ep.access_token = "tok-a";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	ep = sample(1, "k2");
	ep.access_token = "tok-b";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	ep = sample(1, "k3"); /* no token */
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	ep = sample(2, "k9");
	ep.access_token = "tok-a"; /* same token, other application */
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "k1", "user-1", NULL), KAA_OK);

	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 1, "tok-a", &got), KAA_OK);
	STREQ_OR_NULL(got.key_hash, "k1");
	CU_ASSERT_EQUAL(got.app_id, 1);
	STREQ_OR_NULL(got.access_token, "tok-a");
	STREQ_OR_NULL(got.owner_id, "user-1");
	STREQ_OR_NULL(got.client_profile, ep.client_profile);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 1, "tok-b", &got), KAA_OK);
	STREQ_OR_NULL(got.key_hash, "k2");
	STREQ_OR_NULL(got.owner_id, NULL);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 2, "tok-a", &got), KAA_OK);
	STREQ_OR_NULL(got.key_hash, "k9");
	/* not found: out is left empty */
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "tok-c", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_PTR_NULL(got.key_hash);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 3, "tok-a", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "tok-", &got), KAA_ERR_NOTFOUND);

	/* a new token replaces the old one */
	ep = sample(1, "k2");
	ep.access_token = "tok-b2";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "tok-b", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 1, "tok-b2", &got), KAA_OK);
	STREQ_OR_NULL(got.key_hash, "k2");

	/* two endpoints with one token: refused, not one picked */
	ep = sample(1, "k4");
	ep.access_token = "tok-a";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "tok-a", &got), KAA_ERR_CONFLICT);
	CU_ASSERT_PTR_NULL(got.key_hash);
	CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, "k4"), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 1, "tok-a", &got), KAA_OK);
	STREQ_OR_NULL(got.key_hash, "k1");

	/* bounds */
	char *big = malloc(KAA_EP_TEXT_MAX + 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 't', KAA_EP_TEXT_MAX + 1);
	big[KAA_EP_TEXT_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, big, &got), KAA_ERR_TOO_BIG);
	CU_ASSERT_PTR_NULL(got.key_hash);
	free(big);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "", &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, NULL, &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "\xff", &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 0, "tok-a", &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(NULL, 1, "tok-a", &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "tok-a", NULL), KAA_ERR_INVAL);
	kaa__endpoint_clear(&got);
	close_store(s);
}

static int owner_check_cb(void *ud, const kaa__endpoint *ep)
{
	struct collect *c = ud;
	/* every endpoint handed out carries the owner asked for */
	if (!ep->owner_id || strcmp(ep->owner_id, "alice") != 0)
		c->stop_after = -1000;
	return collect_cb(ud, ep);
}

static void test_list_by_owner(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* key00..key11 in application 1; alice owns the odd ones, attached
	 * out of order; bob owns key00 and key02 */
	for (int i = 11; i >= 0; i--) {
		char key[16];
		snprintf(key, sizeof(key), "key%02d", i);
		kaa__endpoint ep = sample(1, key);
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	}
	const int alice[] = {7, 1, 11, 3, 9, 5};
	for (size_t i = 0; i < sizeof(alice) / sizeof(alice[0]); i++) {
		char key[16];
		snprintf(key, sizeof(key), "key%02d", alice[i]);
		CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, key, "alice", ""), KAA_OK);
	}
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "key02", "bob", NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "key00", "bob", NULL), KAA_OK);
	kaa__endpoint other = sample(2, "key04");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &other), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 2, "key04", "alice", NULL), KAA_OK);

	struct collect c = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 1000, owner_check_cb, &c), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(c.n, 6);
	CU_ASSERT_EQUAL(c.stop_after, 0);
	const char *want[] = {"key01", "key03", "key05", "key07", "key09", "key11"};
	for (int i = 0; i < 6; i++)
		CU_ASSERT_STRING_EQUAL(c.keys[i], want[i]);

	/* limit: the first ones in key order */
	struct collect c2 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 4, collect_cb, &c2), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(c2.n, 4);
	CU_ASSERT_STRING_EQUAL(c2.keys[3], "key07");
	struct collect c3 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 1, collect_cb, &c3), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(c3.n, 1);
	CU_ASSERT_STRING_EQUAL(c3.keys[0], "key01");
	struct collect c4 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "bob", 1000, collect_cb, &c4), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(c4.n, 2);
	CU_ASSERT_STRING_EQUAL(c4.keys[0], "key00");
	CU_ASSERT_STRING_EQUAL(c4.keys[1], "key02");
	struct collect c5 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 2, "alice", 10, collect_cb, &c5), KAA_OK);
	CU_ASSERT_EQUAL(c5.n, 1);
	struct collect c6 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "carol", 10, collect_cb, &c6), KAA_OK);
	CU_ASSERT_EQUAL(c6.n, 0);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alic", 10, collect_cb, &c6), KAA_OK);
	CU_ASSERT_EQUAL(c6.n, 0);

	/* the callback stops the walk; its value comes back */
	struct collect c7 = {.stop_after = 2};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 10, collect_cb, &c7), 42);
	CU_ASSERT_EQUAL(c7.n, 2);

	/* detached and deleted endpoints drop out */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "key03", NULL, "alice"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, "key09"), KAA_OK);
	struct collect c8 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 1000, collect_cb, &c8), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(c8.n, 4);
	CU_ASSERT_STRING_EQUAL(c8.keys[1], "key05");
	CU_ASSERT_STRING_EQUAL(c8.keys[3], "key11");

	/* arguments */
	char owner[KAA_EP_OWNER_MAX + 2];
	memset(owner, 'o', sizeof(owner) - 1);
	owner[sizeof(owner) - 1] = '\0';
	struct collect c9 = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 0, collect_cb, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 1001, collect_cb, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "alice", 10, NULL, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "", 10, collect_cb, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, NULL, 10, collect_cb, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "\xff", 10, collect_cb, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, owner, 10, collect_cb, &c9), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 0, "alice", 10, collect_cb, &c9), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(NULL, 1, "alice", 10, collect_cb, &c9),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(c9.n, 0);
	close_store(s);
}

/* ---- upgrades from the store before owners ---------------------------------- */

/* The schema version 1 of lib/store/endpoint_store_sqlite.c created, verbatim. */
static const char sqlite_v1_schema[] =
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
	" record TEXT NOT NULL, PRIMARY KEY (batch_seq, idx)) WITHOUT ROWID;"
	"INSERT INTO endpoints VALUES (1, 'old', 'cGs=', 'tok-old', '{\"fw\":\"0.9\"}', 1, NULL,"
	" '[3]', 'h1', '{}', '[]', '{}', 'node-x', 500, 100, 200);"
	"INSERT INTO log_batches (app_id, key_hash, batch_id, n, schema_version, received_ms)"
	" VALUES (1, 'old', 'b0', 1, 1, 300);"
	"INSERT INTO log_records VALUES (1, 0, '{\"v\":1}');"
	"PRAGMA user_version=1;";

/* sqlite3 one-value query helpers for the file behind g_url */
static sqlite3 *raw_open(void)
{
	sqlite3 *db = NULL;
	if (sqlite3_open(g_url + strlen("sqlite:"), &db) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	else
		fprintf(stderr, "raw query \"%s\": %s\n", sql, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	return v;
}

/* SQLite only: a file of schema version 1 (no owners) opens, gains the
 * column and the indexes, and keeps its data. */
static void test_sqlite_upgrade_v1(void)
{
	if (g_backend != BE_SQLITE)
		return;
	CU_ASSERT_EQUAL_FATAL(fresh_url(), 0);
	char dir[700];
	snprintf(dir, sizeof(dir), "%s/sub", g_tmpdir);
	mkdir(dir, 0700);
	sqlite3 *db = raw_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL_FATAL(sqlite3_exec(db, sqlite_v1_schema, NULL, NULL, NULL), SQLITE_OK);
	CU_ASSERT_EQUAL(raw_int(db, "SELECT count(*) FROM pragma_table_info('endpoints')"
				    " WHERE name = 'owner_id'"),
			0);
	sqlite3_close(db);

	kaa__ep_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(g_url, &s), KAA_OK);
	kaa__endpoint got = {0};
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "old", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	STREQ_OR_NULL(got.client_profile, "{\"fw\":\"0.9\"}");
	STREQ_OR_NULL(got.node_id, "node-x");
	CU_ASSERT_EQUAL(got.created_ms, 100);
	CU_ASSERT_EQUAL(got.updated_ms, 200);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "old", "user-1", ""), KAA_OK);
	got.config_hash[0] = 'X';
	CU_ASSERT_EQUAL(kaa__ep_put(s, &got), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "old", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	STREQ_OR_NULL(got.config_hash, "X1");
	CU_ASSERT_EQUAL(got.created_ms, 100);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 1, "tok-old", &got), KAA_OK);
	STREQ_OR_NULL(got.key_hash, "old");
	struct collect c = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "user-1", 10, collect_cb, &c), KAA_OK);
	CU_ASSERT_EQUAL(c.n, 1);
	int64_t count = 0;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "old", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 1);
	kaa__endpoint fresh = sample(1, "new");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &fresh), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "new", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	kaa__endpoint_clear(&got);
	kaa__ep_store_free(s);

	/* the file is at version 3, with every index */
	db = raw_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(raw_int(db, "PRAGMA user_version"), 3);
	CU_ASSERT_EQUAL(raw_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
				    " AND name IN ('endpoints_by_token', 'endpoints_by_owner',"
				    " 'log_batches_by_time')"),
			3);
	sqlite3_close(db);

	/* and opens again as it is */
	s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(g_url, &s), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "old", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	kaa__endpoint_clear(&got);
	kaa__ep_store_free(s);

	/* the lookups are bound to their indexes (never a silent scan of the
	 * application): without them they fail */
	db = raw_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(db);
	CU_ASSERT_EQUAL(sqlite3_exec(db,
				     "DROP INDEX endpoints_by_token; DROP INDEX endpoints_by_owner",
				     NULL, NULL, NULL),
			SQLITE_OK);
	sqlite3_close(db);
	s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(g_url, &s), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_find_by_access_token(s, 1, "tok-old", &got), KAA_ERR_INTERNAL);
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "user-1", 10, collect_cb, &c),
			KAA_ERR_INTERNAL);
	kaa__ep_store_free(s);
}

/* MongoDB only: endpoint documents written before owners (no owner_id
 * field) read as "no owner" and can be attached with expect_owner "";
 * the open created the new indexes. */
static void test_mongo_legacy_document(void)
{
	if (g_backend != BE_MONGO)
		return;
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	bson_error_t e;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(g_url, &e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
	mongoc_client_t *c = mongoc_client_new_from_uri(uri);
	mongoc_collection_t *col =
		mongoc_client_get_collection(c, mongoc_uri_get_database(uri), "endpoints");
	bson_t *doc =
		BCON_NEW("_id", BCON_UTF8("1:old"), "app", BCON_INT64(1), "key", BCON_UTF8("old"),
			 "public_key", BCON_UTF8("cGs="), "access_token", BCON_UTF8("tok-old"),
			 "client_profile", BCON_UTF8("{}"), "client_profile_version", BCON_INT64(1),
			 "node_id", BCON_NULL, "last_seen_ms", BCON_INT64(5), "updated_ms",
			 BCON_INT64(200), "created_ms", BCON_INT64(100));
	CU_ASSERT_FATAL(mongoc_collection_insert_one(col, doc, NULL, NULL, &e));
	bson_destroy(doc);

	kaa__endpoint got = {0};
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(s, 1, "old", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, NULL);
	CU_ASSERT_EQUAL(got.created_ms, 100);
	CU_ASSERT_EQUAL(kaa__ep_put(s, &got), KAA_OK); /* still no owner field */
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "old", "user-1", "user-0"), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__ep_set_owner(s, 1, "old", "user-1", ""), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_find_by_access_token(s, 1, "tok-old", &got), KAA_OK);
	STREQ_OR_NULL(got.owner_id, "user-1");
	struct collect cl = {0};
	CU_ASSERT_EQUAL(kaa__ep_list_by_owner(s, 1, "user-1", 10, collect_cb, &cl), KAA_OK);
	CU_ASSERT_EQUAL(cl.n, 1);
	kaa__endpoint_clear(&got);

	int found = 0;
	mongoc_cursor_t *cur = mongoc_collection_find_indexes_with_opts(col, NULL);
	const bson_t *idx;
	while (mongoc_cursor_next(cur, &idx)) {
		bson_iter_t it;
		if (bson_iter_init_find(&it, idx, "name") && BSON_ITER_HOLDS_UTF8(&it)) {
			const char *name = bson_iter_utf8(&it, NULL);
			found += strcmp(name, "app_token") == 0 ||
				 strcmp(name, "app_owner_key") == 0;
		}
	}
	CU_ASSERT(!mongoc_cursor_error(cur, &e));
	mongoc_cursor_destroy(cur);
	CU_ASSERT_EQUAL(found, 2);
	mongoc_collection_destroy(col);
	mongoc_client_destroy(c);
	mongoc_uri_destroy(uri);
	close_store(s);
}

/* ---- bad input ------------------------------------------------------------ */

static void test_bad_input(void)
{
	kaa__ep_store *s = NULL;
	CU_ASSERT_EQUAL(kaa__ep_store_new("redis://x", &s), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(kaa__ep_store_new("sqlite:", &s), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_store_new(NULL, &s), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_store_new("mongodb://", &s), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(s);
	if (g_backend == BE_SQLITE) {
		/* a file that is not a database; a directory in the way */
		char path[700], url[800];
		snprintf(path, sizeof(path), "%s/garbage.db", g_tmpdir);
		FILE *f = fopen(path, "wb");
		CU_ASSERT_PTR_NOT_NULL_FATAL(f);
		fputs("this is not an SQLite database, but it is long enough to be read as one.....",
		      f);
		fclose(f);
		snprintf(url, sizeof(url), "sqlite:%s", path);
		CU_ASSERT_EQUAL(kaa__ep_store_new(url, &s), KAA_ERR_IO);
		CU_ASSERT_PTR_NULL(s);
		snprintf(url, sizeof(url), "sqlite:%s/garbage.db/sub/x.db", g_tmpdir);
		CU_ASSERT_EQUAL(kaa__ep_store_new(url, &s), KAA_ERR_IO);
		CU_ASSERT_PTR_NULL(s);
	}

	s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__endpoint got = {0};
	kaa__endpoint ep = sample(1, "k1");
	char longkey[KAA_EP_KEY_HASH_MAX + 2];
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	const char *bad_keys[] = {"", "a:b", "sp ace", "caf\xc3\xa9", longkey, NULL};
	for (int i = 0; bad_keys[i]; i++) {
		ep.key_hash = (char *)bad_keys[i];
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(kaa__ep_get(s, 1, bad_keys[i], &got), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(kaa__ep_touch(s, 1, bad_keys[i], NULL, 0), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, bad_keys[i]), KAA_ERR_INVAL);
	}
	ep.key_hash = NULL;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_INVAL);
	longkey[KAA_EP_KEY_HASH_MAX] = '\0'; /* exactly the maximum: fine */
	ep.key_hash = longkey;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	ep.key_hash = "k1";
	ep.app_id = 0;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_INVAL);
	ep.app_id = 1;
	CU_ASSERT_EQUAL(kaa__ep_put(NULL, &ep), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_put(s, NULL), KAA_ERR_INVAL);

	/* bad UTF-8 in a text field, overlong encoding, surrogate */
	const char *bad_utf8[] = {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", NULL};
	for (int i = 0; bad_utf8[i]; i++) {
		ep.public_key = (char *)bad_utf8[i];
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_INVAL);
	}
	char *big = malloc(KAA_EP_JSON_MAX + 16);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, 'x', KAA_EP_TEXT_MAX + 1);
	big[KAA_EP_TEXT_MAX + 1] = '\0';
	ep.public_key = big;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__ep_touch(s, 1, "k1", big, 0), KAA_ERR_TOO_BIG);
	ep.public_key = NULL;

	/* malformed and oversized JSON */
	const char *bad_json[] = {"{", "{\"a\":}", "[1,]", "{} x", "", "{'a':1}", "\"\xff\"", NULL};
	for (int i = 0; bad_json[i]; i++) {
		ep.client_profile = (char *)bad_json[i];
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_INVAL);
	}
	/* nesting deeper than the limit */
	char deep2[201];
	memset(deep2, '[', 100);
	memset(deep2 + 100, ']', 100);
	deep2[200] = '\0';
	ep.client_profile = deep2;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_INVAL);
	big[0] = '"';
	memset(big + 1, 'y', KAA_EP_JSON_MAX);
	big[KAA_EP_JSON_MAX + 1] = '"';
	big[KAA_EP_JSON_MAX + 2] = '\0';
	ep.client_profile = big;
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_ERR_TOO_BIG);
	ep.client_profile = NULL;
	ep.config_doc = "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\"}";
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);

	/* list arguments */
	struct collect c = {0};
	CU_ASSERT_EQUAL(kaa__ep_list(s, 1, NULL, 0, collect_cb, &c, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list(s, 1, NULL, 1001, collect_cb, &c, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list(s, 1, NULL, 10, NULL, &c, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_list(s, 1, "a:b", 10, collect_cb, &c, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(c.n, 0);

	/* log batches */
	bool dup = true;
	const char *ok1[] = {"{\"t\":1}"};
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, ok1, 0, 1, &dup), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, NULL, 1, 1, &dup), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, ok1, 1, 1, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "", 1, ok1, 1, 1, &dup), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", NULL, 1, ok1, 1, 1, &dup), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "a\nb", 1, ok1, 1, 1, &dup), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "\xff", 1, ok1, 1, 1, &dup), KAA_ERR_INVAL);
	char longbatch[KAA_EP_BATCH_ID_MAX + 2];
	memset(longbatch, '7', sizeof(longbatch) - 1);
	longbatch[sizeof(longbatch) - 1] = '\0';
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", longbatch, 1, ok1, 1, 1, &dup),
			KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "a:b", "b", 1, ok1, 1, 1, &dup), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 0, "k1", "b", 1, ok1, 1, 1, &dup), KAA_ERR_INVAL);
	const char **many = calloc(1001, sizeof(*many));
	CU_ASSERT_PTR_NOT_NULL_FATAL(many);
	for (int i = 0; i < 1001; i++)
		many[i] = "1";
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, many, 1001, 1, &dup),
			KAA_ERR_TOO_BIG);
	/* one bad record spoils the batch: nothing stored */
	many[500] = "{\"unterminated\":";
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, many, 1000, 1, &dup),
			KAA_ERR_INVAL);
	many[500] = NULL;
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, many, 1000, 1, &dup),
			KAA_ERR_INVAL);
	memset(big, 'z', KAA_EP_LOG_RECORD_MAX + 1);
	big[0] = '"';
	big[KAA_EP_LOG_RECORD_MAX] = '"';
	big[KAA_EP_LOG_RECORD_MAX + 1] = '\0';
	many[500] = big;
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b", 1, many, 1000, 1, &dup),
			KAA_ERR_TOO_BIG);
	/* exactly the maximum record size is accepted */
	big[KAA_EP_LOG_RECORD_MAX - 1] = '"';
	big[KAA_EP_LOG_RECORD_MAX] = '\0';
	const char *maxrec[] = {big};
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k2", "max", 1, maxrec, 1, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	int64_t count = -1;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 0);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k2", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "a:b", &count), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", NULL), KAA_ERR_INVAL);
	free(many);
	free(big);
	close_store(s);
}

/* ---- logs ------------------------------------------------------------------- */

struct logs {
	int n;
	char batch[8][32];
	int64_t idx[8];
	char rec[8][64];
	int64_t last_idx;
	char last_batch[KAA_EP_BATCH_ID_MAX + 1];
	int out_of_order;
};

static int logs_cb(void *ud, const char *batch_id, int64_t index, const char *record)
{
	struct logs *l = ud;
	if (l->n < 8) {
		snprintf(l->batch[l->n], sizeof(l->batch[0]), "%s", batch_id);
		l->idx[l->n] = index;
		snprintf(l->rec[l->n], sizeof(l->rec[0]), "%s", record);
	}
	/* within a batch, indexes ascend by one */
	if (l->n > 0 && strcmp(l->last_batch, batch_id) == 0 && index != l->last_idx + 1)
		l->out_of_order++;
	if ((l->n == 0 || strcmp(l->last_batch, batch_id) != 0) && index != 0)
		l->out_of_order++;
	snprintf(l->last_batch, sizeof(l->last_batch), "%s", batch_id);
	l->last_idx = index;
	l->n++;
	return 0;
}

static void test_logs_idempotent(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	const char *b1[] = {"{\"t\":1}", "{\"t\":2,\"s\":\"caf\xc3\xa9\"}", "3"};
	const char *b2[] = {"[true]", "null"};
	bool dup = true;
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "5001", 1, b1, 3, 100, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	/* re-sent after a lost acknowledgement: stored once */
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "5001", 1, b1, 3, 200, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "5002", 1, b2, 2, 300, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	/* same batch id, other endpoint or application: different batches */
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k2", "5001", 1, b1, 3, 300, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 2, "k1", "5001", 1, b1, 1, 300, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);

	int64_t count = -1;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 5);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, NULL, &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 8);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 2, NULL, &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 1);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 3, NULL, &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 0);

	struct logs l = {0};
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "k1", 100, logs_cb, &l), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(l.n, 5);
	CU_ASSERT_EQUAL(l.out_of_order, 0);
	const char *wb[] = {"5001", "5001", "5001", "5002", "5002"};
	const int64_t wi[] = {0, 1, 2, 0, 1};
	const char *wr[] = {b1[0], b1[1], b1[2], b2[0], b2[1]};
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_STRING_EQUAL(l.batch[i], wb[i]);
		CU_ASSERT_EQUAL(l.idx[i], wi[i]);
		CU_ASSERT_STRING_EQUAL(l.rec[i], wr[i]);
	}
	struct logs l2 = {0};
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "k1", 2, logs_cb, &l2), KAA_OK);
	CU_ASSERT_EQUAL(l2.n, 2);
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "k1", 0, logs_cb, &l2), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "k1", 100001, logs_cb, &l2), KAA_ERR_INVAL);

	/* deleting the endpoint deletes its logs, and only its own */
	kaa__endpoint ep = sample(1, "k1");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_delete(s, 1, "k1"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 0);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, NULL, &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 3);
	close_store(s);
}

static void test_big_batch(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	enum { N = 1000 };
	char(*buf)[48] = calloc(N, sizeof(*buf));
	const char **recs = calloc(N, sizeof(*recs));
	CU_ASSERT_FATAL(buf && recs);
	for (int i = 0; i < N; i++) {
		snprintf(buf[i], sizeof(buf[i]), "{\"i\":%d,\"v\":%d.5}", i, i * 7);
		recs[i] = buf[i];
	}
	bool dup = true;
	int64_t t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "big", "b-1000", 3, recs, N, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	fprintf(stderr, "[%s: 1000-record batch in %" PRId64 " ms] ",
		g_backend == BE_SQLITE ? "sqlite" : "mongodb", kaa__now_ms() - t0);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "big", "b-1000", 3, recs, N, 2, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	int64_t count = 0;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "big", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, N);
	struct logs l = {0};
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "big", 100000, logs_cb, &l), KAA_OK);
	CU_ASSERT_EQUAL(l.n, N);
	CU_ASSERT_EQUAL(l.out_of_order, 0);
	CU_ASSERT_EQUAL(l.last_idx, N - 1);
	free(recs);
	free(buf);
	close_store(s);
}

/* ---- concurrency ------------------------------------------------------------ */

enum { THREADS = 8, OWN_BATCHES = 15, SHARED_BATCHES = 10, RECS = 3 };

struct worker {
	kaa__ep_store *s;
	int id;
	int errors;
	int fresh_shared; /* shared batches this thread stored (dup false) */
	int dup_own;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const char *recs[RECS] = {"{\"a\":1}", "{\"a\":2}", "{\"a\":3}"};
	char batch[32], key[16];
	for (int i = 0; i < OWN_BATCHES || i < SHARED_BATCHES; i++) {
		bool dup = false;
		int rc = KAA_OK;
		if (i < SHARED_BATCHES) {
			/* every thread sends the same shared batches */
			snprintf(batch, sizeof(batch), "shared-%d", i);
			rc = kaa__ep_logs_append(w->s, 1, "shared", batch, 1, recs, RECS, 1, &dup);
			if (rc == KAA_OK && !dup)
				w->fresh_shared++;
		}
		if (rc == KAA_OK && i < OWN_BATCHES) {
			snprintf(batch, sizeof(batch), "own-%d", i);
			snprintf(key, sizeof(key), "t%d", w->id);
			rc = kaa__ep_logs_append(w->s, 1, key, batch, 1, recs, RECS, 1, &dup);
			if (dup)
				w->dup_own++;
		}
		if (rc != KAA_OK) {
			fprintf(stderr, "worker %d batch %s: %s\n", w->id, batch, kaa_strerror(rc));
			w->errors++;
		}
		/* the endpoint record too, concurrently */
		snprintf(key, sizeof(key), "t%d", w->id);
		kaa__endpoint ep = sample(1, key);
		ep.last_seen_ms = i;
		if (kaa__ep_put(w->s, &ep) != KAA_OK ||
		    kaa__ep_touch(w->s, 1, key, "n", i) != KAA_OK)
			w->errors++;
		/* and one endpoint all threads create at once (upsert races) */
		kaa__endpoint shared = sample(1, "zz-shared");
		if (kaa__ep_put(w->s, &shared) != KAA_OK)
			w->errors++;
	}
	return NULL;
}

static void test_concurrent_appends(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.s = s, .id = i};
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	int fresh = 0, errors = 0, own_total = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		fresh += w[i].fresh_shared;
		errors += w[i].errors;
		CU_ASSERT_EQUAL(w[i].dup_own, 0);
	}
	CU_ASSERT_EQUAL(errors, 0);
	/* each shared batch was stored by exactly one thread */
	CU_ASSERT_EQUAL(fresh, SHARED_BATCHES);
	int64_t count = 0;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "shared", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, SHARED_BATCHES * RECS);
	for (int i = 0; i < THREADS; i++) {
		char key[16];
		snprintf(key, sizeof(key), "t%d", i);
		CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, key, &count), KAA_OK);
		CU_ASSERT_EQUAL(count, OWN_BATCHES * RECS);
		own_total += (int)count;
	}
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, NULL, &count), KAA_OK);
	CU_ASSERT_EQUAL(count, own_total + SHARED_BATCHES * RECS);
	struct logs l = {0};
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "shared", 1000, logs_cb, &l), KAA_OK);
	CU_ASSERT_EQUAL(l.n, SHARED_BATCHES * RECS);
	CU_ASSERT_EQUAL(l.out_of_order, 0);
	struct collect c = {0};
	CU_ASSERT_EQUAL(kaa__ep_list(s, 1, NULL, 100, collect_cb, &c, NULL), KAA_OK);
	CU_ASSERT_EQUAL(c.n, THREADS + 1);
	close_store(s);
}

/* ---- durability ------------------------------------------------------------ */

static void test_reopen(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__endpoint ep = sample(7, "persist");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	const char *recs[] = {"{\"kept\":true}"};
	bool dup = true;
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 7, "persist", "b1", 1, recs, 1, 1, &dup), KAA_OK);
	kaa__ep_store_free(s);

	s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(g_url, &s), KAA_OK);
	kaa__endpoint got = {0};
	CU_ASSERT_EQUAL(kaa__ep_get(s, 7, "persist", &got), KAA_OK);
	STREQ_OR_NULL(got.client_profile, ep.client_profile);
	kaa__endpoint_clear(&got);
	int64_t count = 0;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 7, "persist", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 1);
	/* the batch index survived too */
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 7, "persist", "b1", 1, recs, 1, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	close_store(s);
}

/* MongoDB only: an earlier attempt stored some records of a batch but not
 * its marker (crash, lost connection). The re-sent batch is completed, once,
 * and all its records carry the stamps of the attempt that completed it. */
static void test_mongo_partial_batch(void)
{
	if (g_backend != BE_MONGO)
		return;
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	bson_error_t e;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(g_url, &e);
	CU_ASSERT_PTR_NOT_NULL_FATAL(uri);
	mongoc_client_t *c = mongoc_client_new_from_uri(uri);
	mongoc_collection_t *col =
		mongoc_client_get_collection(c, mongoc_uri_get_database(uri), "log_records");
	bson_t *doc = BCON_NEW("_id", BCON_UTF8("1:k1:1:b1"), "app", BCON_INT64(1), "key",
			       BCON_UTF8("k1"), "batch", BCON_UTF8("b1"), "idx", BCON_INT64(1),
			       "received_ms", BCON_INT64(111), "schema_version", BCON_INT64(1),
			       "record", BCON_UTF8("\"old\""));
	CU_ASSERT(mongoc_collection_insert_one(col, doc, NULL, NULL, &e));
	bson_destroy(doc);

	int64_t count = -1;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 0); /* no marker: invisible */
	const char *recs[] = {"\"r0\"", "\"r1\"", "\"r2\""};
	bool dup = true;
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b1", 1, recs, 3, 222, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 3);
	struct logs l = {0};
	CU_ASSERT_EQUAL(kaa__ep_logs_list(s, 1, "k1", 10, logs_cb, &l), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(l.n, 3);
	CU_ASSERT_STRING_EQUAL(l.rec[1], "\"r1\"");
	bson_t *filter = BCON_NEW("app", BCON_INT64(1), "received_ms", BCON_INT64(222));
	CU_ASSERT_EQUAL(mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &e), 3);
	bson_destroy(filter);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "k1", "b1", 1, recs, 3, 333, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	mongoc_collection_destroy(col);
	mongoc_client_destroy(c);
	mongoc_uri_destroy(uri);
	close_store(s);
}

static int harness(const char *verb)
{
	const char *h = getenv("KAA_HARNESS"), *dir = getenv("KAA_TEST_MONGO_DIR");
	char cmd[2048];
	snprintf(cmd, sizeof(cmd), "'%s' %s ferretdb '%s' >/dev/null", h, verb, dir);
	return system(cmd);
}

/* MongoDB only: the server goes away -> KAA_ERR_UNAVAILABLE within the
 * bounded timeouts; it comes back -> the same handle works again. */
static void test_mongo_outage(void)
{
	if (g_backend != BE_MONGO)
		return;
	if (!require_env("KAA_HARNESS") || !require_env("KAA_TEST_MONGO_DIR")) {
		CU_FAIL("KAA_HARNESS/KAA_TEST_MONGO_DIR needed to stop the server");
		return;
	}
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__endpoint ep = sample(1, "k1");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(harness("stop"), 0);

	const char *recs[] = {"1"};
	bool dup = false;
	kaa__endpoint got = {0};
	int64_t t0 = kaa__now_ms();
	int rc = kaa__ep_logs_append(s, 1, "k1", "b1", 1, recs, 1, 1, &dup);
	int64_t dt = kaa__now_ms() - t0;
	CU_ASSERT(rc == KAA_ERR_UNAVAILABLE || rc == KAA_ERR_TIMEOUT);
	CU_ASSERT(dt < 15000);
	CU_ASSERT_EQUAL(kaa__ep_get(s, 1, "k1", &got), KAA_ERR_UNAVAILABLE);
	fprintf(stderr, "[outage: %s after %" PRId64 " ms] ", kaa_strerror(rc), dt);
	/* a new handle cannot open either, and says why */
	kaa__ep_store *s2 = NULL;
	CU_ASSERT_EQUAL(kaa__ep_store_new(g_url, &s2), KAA_ERR_UNAVAILABLE);
	CU_ASSERT_PTR_NULL(s2);

	CU_ASSERT_EQUAL_FATAL(harness("restart"), 0);
	int64_t back = kaa__now_ms(), deadline = back + 30000;
	do {
		rc = kaa__ep_logs_append(s, 1, "k1", "b1", 1, recs, 1, 1, &dup);
		if (rc == KAA_OK)
			break;
		kaa__sleep_ms_unless(200, NULL);
	} while (kaa__now_ms() < deadline);
	CU_ASSERT_EQUAL(rc, KAA_OK);
	fprintf(stderr, "[first success %" PRId64 " ms after the server answered] ",
		kaa__now_ms() - back);
	CU_ASSERT_EQUAL(kaa__ep_get(s, 1, "k1", &got), KAA_OK);
	kaa__endpoint_clear(&got);
	int64_t count = 0;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k1", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 1);
	close_store(s);
}

/* ---- log queries and stats (the REST API's) --------------------------------------- */

struct qwalk {
	char got[64][96];
	int n;
	kaa__ep_log_pos last;
	char last_key[KAA_EP_KEY_HASH_MAX + 1], last_batch[KAA_EP_BATCH_ID_MAX + 1];
};

static int qwalk_cb(void *ud, const kaa__ep_log_rec *r)
{
	struct qwalk *w = ud;
	if (w->n < 64)
		snprintf(w->got[w->n++], sizeof(w->got[0]), "%" PRId64 "/%s/%s/%" PRId64 "/%s",
			 r->pos.received_ms, r->pos.key_hash, r->pos.batch_id, r->pos.index,
			 r->record);
	snprintf(w->last_key, sizeof(w->last_key), "%s", r->pos.key_hash);
	snprintf(w->last_batch, sizeof(w->last_batch), "%s", r->pos.batch_id);
	w->last = (kaa__ep_log_pos){r->pos.received_ms, w->last_key, w->last_batch, r->pos.index};
	return 0;
}

/* Every page of limit records from the start; the records, joined. */
static int query_all(kaa__ep_store *s, const char *key, int64_t from, int64_t to, int limit,
		     struct qwalk *all)
{
	kaa__ep_log_pos *after = NULL;
	struct qwalk page;
	memset(all, 0, sizeof(*all));
	for (int guard = 0; guard < 64; guard++) {
		memset(&page, 0, sizeof(page));
		if (after) {
			page.last = all->last;
			snprintf(page.last_key, sizeof(page.last_key), "%s", all->last_key);
			snprintf(page.last_batch, sizeof(page.last_batch), "%s", all->last_batch);
			page.last.key_hash = page.last_key;
			page.last.batch_id = page.last_batch;
		}
		kaa__ep_log_pos at = page.last;
		int rc = kaa__ep_logs_query(s, 1, key, from, to, after ? &at : NULL, limit,
					    qwalk_cb, &page);
		if (rc != KAA_OK)
			return rc;
		for (int i = 0; i < page.n && all->n < 64; i++)
			memcpy(all->got[all->n++], page.got[i], sizeof(page.got[0]));
		if (page.n < limit)
			return KAA_OK;
		all->last = page.last;
		snprintf(all->last_key, sizeof(all->last_key), "%s", page.last_key);
		snprintf(all->last_batch, sizeof(all->last_batch), "%s", page.last_batch);
		after = &all->last;
	}
	return KAA_ERR_INTERNAL;
}

static void test_logs_query(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	const char *r3[] = {"{\"i\":0}", "{\"i\":1}", "{\"i\":2}"};
	const char *r1[] = {"{\"i\":9}"};
	bool dup;
	/* received out of key order; two batches at the same millisecond */
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "kb", "b1", 1, r3, 3, 2000, &dup), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "ka", "b1", 1, r1, 1, 2000, &dup), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "ka", "b0", 2, r3, 2, 1000, &dup), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "kc", "z:9", 1, r1, 1, 3000, &dup), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 2, "ka", "b1", 1, r1, 1, 2000, &dup), KAA_OK);
	static const char *const want[] = {
		"1000/ka/b0/0/{\"i\":0}",  "1000/ka/b0/1/{\"i\":1}", "2000/ka/b1/0/{\"i\":9}",
		"2000/kb/b1/0/{\"i\":0}",  "2000/kb/b1/1/{\"i\":1}", "2000/kb/b1/2/{\"i\":2}",
		"3000/kc/z:9/0/{\"i\":9}",
	};
	for (int limit = 1; limit <= 8; limit++) {
		struct qwalk all;
		CU_ASSERT_EQUAL_FATAL(query_all(s, NULL, 0, INT64_MAX, limit, &all), KAA_OK);
		CU_ASSERT_EQUAL(all.n, 7);
		for (int i = 0; i < all.n && i < 7; i++)
			CU_ASSERT_STRING_EQUAL(all.got[i], want[i]);
	}
	/* a time range: [2000, 3000) */
	struct qwalk w;
	CU_ASSERT_EQUAL(query_all(s, NULL, 2000, 3000, 2, &w), KAA_OK);
	CU_ASSERT_EQUAL(w.n, 4);
	CU_ASSERT_STRING_EQUAL(w.got[0], want[2]);
	CU_ASSERT_STRING_EQUAL(w.got[3], want[5]);
	/* one endpoint */
	CU_ASSERT_EQUAL(query_all(s, "ka", 0, INT64_MAX, 2, &w), KAA_OK);
	CU_ASSERT_EQUAL(w.n, 3);
	CU_ASSERT_STRING_EQUAL(w.got[2], want[2]);
	CU_ASSERT_EQUAL(query_all(s, "nobody", 0, INT64_MAX, 2, &w), KAA_OK);
	CU_ASSERT_EQUAL(w.n, 0);
	/* empty range, bad arguments */
	CU_ASSERT_EQUAL(query_all(s, NULL, 5000, 5000, 2, &w), KAA_OK);
	CU_ASSERT_EQUAL(w.n, 0);
	CU_ASSERT_EQUAL(kaa__ep_logs_query(s, 1, NULL, 0, 1, NULL, 0, qwalk_cb, &w), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__ep_logs_query(s, 1, NULL, 0, 1, NULL, 1001, qwalk_cb, &w),
			KAA_ERR_INVAL);
	kaa__ep_log_pos bad = {1, "k a", "b", 0};
	CU_ASSERT_EQUAL(kaa__ep_logs_query(s, 1, NULL, 0, 1, &bad, 1, qwalk_cb, &w), KAA_ERR_INVAL);
	close_store(s);
}

static void test_stats(void)
{
	kaa__ep_store *s = open_fresh();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	kaa__ep_stats st = {0};
	CU_ASSERT_EQUAL(kaa__ep_stats_get(s, 1, 0, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.endpoints, 0);
	CU_ASSERT_EQUAL(st.n_nodes, 0);
	kaa__ep_stats_clear(&st);
	const char *keys[] = {"e1", "e2", "e3", "e4"};
	const char *nodes[] = {"n1", "n2", "n1", NULL};
	for (int i = 0; i < 4; i++) {
		kaa__endpoint ep = sample(1, keys[i]);
		ep.node_id = (char *)nodes[i];
		CU_ASSERT_EQUAL(kaa__ep_put(s, &ep), KAA_OK);
	}
	kaa__endpoint other = sample(2, "e1");
	CU_ASSERT_EQUAL(kaa__ep_put(s, &other), KAA_OK);
	const char *recs[] = {"1", "2", "3"};
	bool dup;
	int64_t now = kaa__wall_ms();
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "e1", "old", 1, recs, 3, now - 120000, &dup),
			KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_logs_append(s, 1, "e1", "new", 1, recs, 2, now, &dup), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_stats_get(s, 1, now - 60000, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.endpoints, 4);
	CU_ASSERT_EQUAL(st.registered_since, 4);
	CU_ASSERT_EQUAL(st.records_since, 2);
	CU_ASSERT_EQUAL_FATAL(st.n_nodes, 2);
	CU_ASSERT_STRING_EQUAL(st.nodes[0].node_id, "n1");
	CU_ASSERT_EQUAL(st.nodes[0].endpoints, 2);
	CU_ASSERT_STRING_EQUAL(st.nodes[1].node_id, "n2");
	CU_ASSERT_EQUAL(st.nodes[1].endpoints, 1);
	kaa__ep_stats_clear(&st);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_stats_get(s, 1, kaa__wall_ms() + 1000, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.endpoints, 4);
	CU_ASSERT_EQUAL(st.registered_since, 0);
	CU_ASSERT_EQUAL(st.records_since, 0);
	kaa__ep_stats_clear(&st);
	kaa__ep_stats_clear(NULL);
	CU_ASSERT_EQUAL(kaa__ep_stats_get(s, 0, 0, &st), KAA_ERR_INVAL);
	close_store(s);
}

/* ---- main ----------------------------------------------------------------------- */

static int init_sqlite(void)
{
	g_backend = BE_SQLITE;
	return 0;
}

static int init_mongo(void)
{
	g_backend = BE_MONGO;
	return 0;
}

static const struct {
	const char *name;
	CU_TestFunc fn;
} tests[] = {
	{"crud", test_crud},
	{"list_paging", test_list_paging},
	{"owner", test_owner},
	{"owner_race", test_owner_race},
	{"find_by_token", test_find_by_token},
	{"list_by_owner", test_list_by_owner},
	{"sqlite_upgrade_v1", test_sqlite_upgrade_v1},
	{"mongo_legacy_document", test_mongo_legacy_document},
	{"bad_input", test_bad_input},
	{"logs_idempotent", test_logs_idempotent},
	{"logs_query", test_logs_query},
	{"stats", test_stats},
	{"big_batch", test_big_batch},
	{"concurrent_appends", test_concurrent_appends},
	{"reopen", test_reopen},
	{"mongo_partial_batch", test_mongo_partial_batch},
	{"mongo_outage", test_mongo_outage},
};

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(g_tmpdir, sizeof(g_tmpdir), "%s/kaa-ep-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(g_tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	mongoc_init();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite lite = CU_add_suite("endpoint_store_sqlite", init_sqlite, NULL);
	CU_pSuite mongo = CU_add_suite("endpoint_store_mongodb", init_mongo, NULL);
	if (!lite || !mongo)
		return 1;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (strncmp(tests[i].name, "mongo_", 6) != 0 &&
		    !CU_add_test(lite, tests[i].name, tests[i].fn))
			return 1;
		if (strncmp(tests[i].name, "sqlite_", 7) != 0 &&
		    !CU_add_test(mongo, tests[i].name, tests[i].fn))
			return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	int rc = (CU_get_error() != CUE_SUCCESS || failures > 0) ? 1 : 0;
	CU_cleanup_registry();
	mongoc_cleanup();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_tmpdir);
	return rc;
}
