#include "coord_suite.h"

#include "coord/election.h"
#include "base/error.h"
#include "coord/lease_keeper.h"
#include "coord/registry.h"
#include "base/clock.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static coord_factory factory;
static char prefix[128];
static int seq;

static void rec_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	rec_watch *r = ud;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < n; i++) {
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 64;
			r->keys = realloc(r->keys, r->cap * sizeof(*r->keys));
			r->revs = realloc(r->revs, r->cap * sizeof(*r->revs));
		}
		char *s = NULL;
		if (ev[i].type == KAA_WATCH_PUT) {
			if (asprintf(&s, "P:%s=%s", ev[i].kv.key, ev[i].kv.value) < 0)
				abort();
		} else if (asprintf(&s, "D:%s", ev[i].kv.key) < 0) {
			abort();
		}
		r->keys[r->n] = s;
		r->revs[r->n] = ev[i].kv.mod_rev;
		r->n++;
	}
	pthread_mutex_unlock(&r->mu);
}

static void rec_reset(void *ud, const kaa__kv_list *snap)
{
	rec_watch *r = ud;
	pthread_mutex_lock(&r->mu);
	r->resets++;
	r->last_reset_n = snap->n;
	pthread_mutex_unlock(&r->mu);
}

void rec_init(rec_watch *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	r->cb.events = rec_events;
	r->cb.reset = rec_reset;
	r->cb.ud = r;
}

void rec_free(rec_watch *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->keys[i]);
	free(r->keys);
	free(r->revs);
	pthread_mutex_destroy(&r->mu);
}

size_t rec_count(rec_watch *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static void new_prefix(void)
{
	snprintf(prefix, sizeof(prefix), "/kaatest/%d-%ld-%d/", (int)getpid(), (long)time(NULL),
		 ++seq);
}

static char *k(const char *suffix)
{
	static char buf[4][256];
	static int i;
	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, suffix);
	return buf[i];
}

static void test_kv(void)
{
	kaa__coord *c = factory();
	kaa__kv kv;
	kaa__kv_list l;
	int64_t rev = 0, rev2 = 0, deleted = 0;
	bool ok;

	new_prefix();
	CU_ASSERT_EQUAL(kaa__coord_get(c, k("a"), &kv, NULL), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("a"), "1", 1, 0, &rev), KAA_OK);
	CU_ASSERT(rev > 0);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("b"), "22", 2, 0, &rev2), KAA_OK);
	CU_ASSERT(rev2 > rev);
	CU_ASSERT_EQUAL(kaa__coord_get(c, k("a"), &kv, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kv.value, "1");
	CU_ASSERT_EQUAL(kv.mod_rev, rev);
	kaa__kv_clear(&kv);
	CU_ASSERT_EQUAL(kaa__coord_range(c, prefix, true, &l), KAA_OK);
	CU_ASSERT_EQUAL(l.n, 2);
	if (l.n == 2) {
		CU_ASSERT_STRING_EQUAL(l.items[0].key, k("a"));
		CU_ASSERT_STRING_EQUAL(l.items[1].value, "22");
	}
	CU_ASSERT(l.revision >= rev2);
	kaa__kv_list_clear(&l);

	/* CAS: create-if-absent fails on an existing key and reports it. */
	CU_ASSERT_EQUAL(kaa__coord_cas(c, k("a"), 0, "x", 1, 0, &ok, &kv), KAA_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_PTR_NOT_NULL(kv.key);
	CU_ASSERT_EQUAL(kv.mod_rev, rev);
	kaa__kv_clear(&kv);
	/* CAS on the right revision wins, on a stale one loses. */
	CU_ASSERT_EQUAL(kaa__coord_cas(c, k("a"), rev, "2", 1, 0, &ok, NULL), KAA_OK);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(kaa__coord_cas(c, k("a"), rev, "3", 1, 0, &ok, NULL), KAA_OK);
	CU_ASSERT_FALSE(ok);
	CU_ASSERT_EQUAL(kaa__coord_cas(c, k("new"), 0, "n", 1, 0, &ok, NULL), KAA_OK);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_EQUAL(kaa__coord_get(c, k("a"), &kv, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kv.value, "2");
	/* CAS delete of our own version. */
	CU_ASSERT_EQUAL(kaa__coord_cas(c, k("a"), kv.mod_rev, NULL, 0, 0, &ok, NULL), KAA_OK);
	CU_ASSERT_TRUE(ok);
	kaa__kv_clear(&kv);
	CU_ASSERT_EQUAL(kaa__coord_get(c, k("a"), &kv, NULL), KAA_ERR_NOTFOUND);

	CU_ASSERT_EQUAL(kaa__coord_delete(c, prefix, true, &deleted), KAA_OK);
	CU_ASSERT_EQUAL(deleted, 2);
	CU_ASSERT_EQUAL(kaa__coord_range(c, prefix, true, &l), KAA_OK);
	CU_ASSERT_EQUAL(l.n, 0);
	kaa__kv_list_clear(&l);
	CU_ASSERT_EQUAL(kaa__coord_put(c, "", "x", 1, 0, NULL), KAA_ERR_INVAL);
	kaa__coord_free(c);
}

typedef struct key_gone {
	kaa__coord *c;
	const char *key;
} key_gone;

static bool is_gone(void *arg)
{
	key_gone *g = arg;
	kaa__kv kv;
	int rc = kaa__coord_get(g->c, g->key, &kv, NULL);
	if (rc == KAA_OK)
		kaa__kv_clear(&kv);
	return rc == KAA_ERR_NOTFOUND;
}

static void test_lease_expiry(void)
{
	kaa__coord *c = factory();
	int64_t id = 0, ttl = 0;
	kaa__kv kv;

	new_prefix();
	CU_ASSERT_EQUAL_FATAL(kaa__coord_lease_grant(c, 2, &id), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("leased"), "v", 1, id, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_get(c, k("leased"), &kv, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kv.lease, id);
	kaa__kv_clear(&kv);
	CU_ASSERT_EQUAL(kaa__coord_lease_keepalive(c, id, &ttl), KAA_OK);
	CU_ASSERT(ttl >= 1);
	key_gone g = {c, k("leased")};
	int64_t t0 = kaa__now_ms();
	CU_ASSERT_TRUE(kaa__test_wait_until(is_gone, &g, 10000));
	CU_ASSERT(kaa__now_ms() - t0 >= 1000); /* not deleted before the TTL */
	CU_ASSERT_EQUAL(kaa__coord_lease_keepalive(c, id, &ttl), KAA_ERR_LEASE_LOST);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("x"), "v", 1, id, NULL), KAA_ERR_LEASE_LOST);

	/* A kept lease outlives its TTL; revoking deletes its keys at once. */
	kaa__lease_keeper *keeper = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__lease_keeper_new(c, 2, NULL, NULL, &keeper), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("kept"), "v", 1, kaa__lease_keeper_id(keeper), NULL),
			KAA_OK);
	g.key = k("kept");
	CU_ASSERT_FALSE(kaa__test_wait_until(is_gone, &g, 3500));
	CU_ASSERT_TRUE(kaa__lease_keeper_alive(keeper));
	kaa__lease_keeper_free(keeper, true);
	CU_ASSERT_TRUE(is_gone(&g));
	kaa__coord_free(c);
}

typedef struct count_at_least {
	rec_watch *r;
	size_t n;
} count_at_least;

static bool has_count(void *arg)
{
	count_at_least *ca = arg;
	return rec_count(ca->r) >= ca->n;
}

bool has_reset(void *arg)
{
	rec_watch *r = arg;
	pthread_mutex_lock(&r->mu);
	bool yes = r->resets > 0;
	pthread_mutex_unlock(&r->mu);
	return yes;
}

static void test_watch(void)
{
	kaa__coord *c = factory();
	rec_watch r;
	kaa__watch *w = NULL;
	int64_t rev = 0;

	new_prefix();
	rec_init(&r);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("before"), "b", 1, 0, &rev), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(
		kaa__coord_watch(c, prefix, KAA_WATCH_PREFIX | KAA_WATCH_SNAPSHOT, 0, &r.cb, &w),
		KAA_OK);
	/* The snapshot is taken by the watch thread; writes after it are events. */
	CU_ASSERT_TRUE(kaa__test_wait_until(has_reset, &r, 5000));
	for (int i = 0; i < 5; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		CU_ASSERT_EQUAL(kaa__coord_put(c, k("w"), v, strlen(v), 0, NULL), KAA_OK);
	}
	CU_ASSERT_EQUAL(kaa__coord_delete(c, k("w"), false, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_put(c, "/kaatest-other", "o", 1, 0, NULL), KAA_OK);
	count_at_least ca = {&r, 6};
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &ca, 5000));
	pthread_mutex_lock(&r.mu);
	CU_ASSERT_EQUAL(r.resets, 1);
	CU_ASSERT_EQUAL(r.last_reset_n, 1);
	CU_ASSERT_EQUAL(r.n, 6);
	if (r.n == 6) {
		char want[300];
		snprintf(want, sizeof(want), "P:%s=0", k("w"));
		CU_ASSERT_STRING_EQUAL(r.keys[0], want);
		snprintf(want, sizeof(want), "P:%s=4", k("w"));
		CU_ASSERT_STRING_EQUAL(r.keys[4], want);
		snprintf(want, sizeof(want), "D:%s", k("w"));
		CU_ASSERT_STRING_EQUAL(r.keys[5], want);
		for (size_t i = 1; i < r.n; i++)
			CU_ASSERT(r.revs[i] > r.revs[i - 1]);
	}
	pthread_mutex_unlock(&r.mu);
	kaa__coord_watch_free(w);
	kaa__coord_delete(c, "/kaatest-other", false, NULL);

	/* A watch from a past revision replays history from there. */
	rec_watch r2;
	rec_init(&r2);
	CU_ASSERT_EQUAL_FATAL(kaa__coord_watch(c, prefix, KAA_WATCH_PREFIX, rev, &r2.cb, &w),
			      KAA_OK);
	count_at_least ca2 = {&r2, 7};
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &ca2, 5000));
	CU_ASSERT_EQUAL(r2.resets, 0);
	kaa__coord_watch_free(w);
	rec_free(&r2);
	rec_free(&r);
	kaa__coord_free(c);
}

static void test_watch_compacted(void)
{
	kaa__coord *c = factory();
	rec_watch r;
	kaa__watch *w = NULL;
	int64_t rev1 = 0, rev = 0;

	new_prefix();
	rec_init(&r);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("c"), "1", 1, 0, &rev1), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("c"), "2", 1, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("d"), "3", 1, 0, &rev), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_compact(c, rev), KAA_OK);
	/* Resuming from a compacted revision: the watch re-lists (a reset with
	 * the current content) and then goes on with new events. */
	CU_ASSERT_EQUAL_FATAL(kaa__coord_watch(c, prefix, KAA_WATCH_PREFIX, rev1, &r.cb, &w),
			      KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(has_reset, &r, 10000));
	CU_ASSERT_EQUAL(kaa__coord_put(c, k("e"), "4", 1, 0, NULL), KAA_OK);
	count_at_least ca = {&r, 1};
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &ca, 10000));
	pthread_mutex_lock(&r.mu);
	CU_ASSERT_EQUAL(r.resets, 1);
	CU_ASSERT_EQUAL(r.last_reset_n, 2); /* c and d, not the history of c */
	if (r.n >= 1) {
		char want[300];
		snprintf(want, sizeof(want), "P:%s=4", k("e"));
		CU_ASSERT_STRING_EQUAL(r.keys[0], want);
	}
	CU_ASSERT_EQUAL(r.n, 1);
	pthread_mutex_unlock(&r.mu);
	kaa__coord_watch_free(w);
	rec_free(&r);
	kaa__coord_free(c);
}

static bool is_leader(void *arg)
{
	return kaa__election_is_leader(arg);
}

static void test_election(void)
{
	kaa__coord *c1 = factory(), *c2 = NULL;
	kaa__election *e1 = NULL, *e2 = NULL;

	/* Two etcd clients are two connections to one store; two local
	 * handles would be two separate stores, so local shares one. */
	if (strcmp(kaa__coord_kind(c1), "local") != 0)
		c2 = factory();
	kaa__kv kv;

	new_prefix();
	CU_ASSERT_EQUAL_FATAL(kaa__election_new(c1, k("leader"), "one", 3, NULL, &e1), KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(is_leader, e1, 5000));
	CU_ASSERT_EQUAL_FATAL(kaa__election_new(c2 ? c2 : c1, k("leader"), "two", 3, NULL, &e2),
			      KAA_OK);
	/* The second candidate must stay a follower while the first leads. */
	CU_ASSERT_FALSE(kaa__test_wait_until(is_leader, e2, 1500));
	CU_ASSERT_TRUE(kaa__election_is_leader(e1));
	CU_ASSERT_EQUAL(kaa__coord_get(c1, k("leader"), &kv, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kv.value, "one");
	kaa__kv_clear(&kv);
	/* Resigning hands over at once, well inside the TTL. */
	int64_t t0 = kaa__now_ms();
	kaa__election_free(e1);
	CU_ASSERT_TRUE(kaa__test_wait_until(is_leader, e2, 2500));
	CU_ASSERT(kaa__now_ms() - t0 < 2500);
	CU_ASSERT_EQUAL(kaa__coord_get(c1, k("leader"), &kv, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kv.value, "two");
	kaa__kv_clear(&kv);
	kaa__election_free(e2);
	kaa__coord_free(c1);
	kaa__coord_free(c2);
}

static bool not_leader(void *arg)
{
	return !kaa__election_is_leader(arg);
}

/* A leader whose lease disappears (expired during an outage, revoked by an
 * operator) must step down, then win again with a fresh lease. */
static void test_election_lease_lost(void)
{
	kaa__coord *c = factory();
	kaa__election *e = NULL;
	kaa__kv kv;

	new_prefix();
	CU_ASSERT_EQUAL_FATAL(kaa__election_new(c, k("leader"), "one", 3, NULL, &e), KAA_OK);
	CU_ASSERT_TRUE_FATAL(kaa__test_wait_until(is_leader, e, 5000));
	CU_ASSERT_EQUAL_FATAL(kaa__coord_get(c, k("leader"), &kv, NULL), KAA_OK);
	int64_t lease = kv.lease;
	kaa__kv_clear(&kv);
	CU_ASSERT_EQUAL(kaa__coord_lease_revoke(c, lease), KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(not_leader, e, 3000));
	CU_ASSERT_TRUE(kaa__test_wait_until(is_leader, e, 5000));
	CU_ASSERT_EQUAL(kaa__coord_get(c, k("leader"), &kv, NULL), KAA_OK);
	CU_ASSERT_NOT_EQUAL(kv.lease, lease);
	kaa__kv_clear(&kv);
	kaa__election_free(e);
	kaa__coord_free(c);
}

typedef struct reg_count {
	kaa__registry *r;
	size_t n;
} reg_count;

static bool reg_has(void *arg)
{
	reg_count *rc = arg;
	return kaa__registry_count(rc->r) == rc->n;
}

static bool reg_registered(void *arg)
{
	return kaa__registry_registered(arg);
}

static bool reg_load_seen(void *arg)
{
	kaa__registry *r = arg;
	kaa__node_record *recs;
	size_t n;
	bool seen = false;
	if (kaa__registry_nodes(r, &recs, &n) != KAA_OK)
		return false;
	for (size_t i = 0; i < n; i++)
		if (strcmp(recs[i].id, "n2") == 0 && recs[i].sessions == 42)
			seen = true;
	kaa__node_records_free(recs, n);
	return seen;
}

static bool watch_live(void *arg)
{
	return kaa__coord_watch_revision(arg) > 0;
}

static bool saw_sessions_119(void *arg)
{
	rec_watch *r = arg;
	bool yes = false;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (strstr(r->keys[i], "\"sessions\":119"))
			yes = true;
	pthread_mutex_unlock(&r->mu);
	return yes;
}

static void test_registry(void)
{
	kaa__coord *c = factory();
	kaa__registry *r1 = NULL, *r2 = NULL;
	kaa__node_record a = {0}, b = {0};
	char cluster[64], key[256];

	new_prefix();
	snprintf(cluster, sizeof(cluster), "t%d-%d", (int)getpid(), seq);
	a.id = "n1";
	a.host = "127.0.0.1";
	b.id = "n2";
	b.host = "127.0.0.2";
	b.services[0] = "operations";
	b.n_services = 1;
	b.ports[0].name = "operations";
	b.ports[0].port = 9080;
	b.n_ports = 1;
	CU_ASSERT_EQUAL_FATAL(kaa__registry_new(c, cluster, &a, 3, &r1), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__registry_new(c, cluster, &b, 3, &r2), KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_registered, r1, 5000));
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_registered, r2, 5000));
	reg_count want2 = {r1, 2};
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_has, &want2, 5000));

	/* A malformed value under the prefix is skipped, not fatal. */
	snprintf(key, sizeof(key), "/kaa/%s/nodes/bad", cluster);
	CU_ASSERT_EQUAL(kaa__coord_put(c, key, "{not json", 9, 0, NULL), KAA_OK);
	snprintf(key, sizeof(key), "/kaa/%s/nodes/n3", cluster);
	CU_ASSERT_EQUAL(kaa__coord_put(c, key, "{\"id\":\"n3\",\"sessions\":1}", 24, 0, NULL),
			KAA_OK);
	reg_count want3 = {r1, 3};
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_has, &want3, 5000));
	kaa__coord_delete(c, key, false, NULL);
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_has, &want2, 5000));

	/* Updates reach the other node's view. */
	b.sessions = 42;
	CU_ASSERT_EQUAL(kaa__registry_update(r2, &b), KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_load_seen, r1, 5000));

	/* A burst of updates is coalesced: at most one write a second. */
	rec_watch rw;
	kaa__watch *w = NULL;
	snprintf(key, sizeof(key), "/kaa/%s/nodes/n2", cluster);
	rec_init(&rw);
	CU_ASSERT_EQUAL_FATAL(kaa__coord_watch(c, key, 0, 0, &rw.cb, &w), KAA_OK);
	CU_ASSERT_TRUE(kaa__test_wait_until(watch_live, w, 5000));
	int64_t t0 = kaa__now_ms();
	for (int i = 0; i < 20; i++) {
		b.sessions = 100 + i;
		CU_ASSERT_EQUAL(kaa__registry_update(r2, &b), KAA_OK);
	}
	count_at_least last = {&rw, 1};
	CU_ASSERT_TRUE(kaa__test_wait_until(has_count, &last, 5000));
	CU_ASSERT_TRUE(kaa__test_wait_until(saw_sessions_119, &rw, 5000));
	size_t writes = rec_count(&rw);
	int64_t span = kaa__now_ms() - t0;
	/* The first write may go out at once; the rest wait a second each. */
	CU_ASSERT(writes <= (size_t)(span / 1000) + 2);
	CU_ASSERT(writes < 20);
	kaa__coord_watch_free(w);
	rec_free(&rw);

	/* Deregistering removes the record at once (lease revoked). */
	kaa__registry_free(r2, true);
	reg_count want1 = {r1, 1};
	CU_ASSERT_TRUE(kaa__test_wait_until(reg_has, &want1, 2000));
	kaa__registry_free(r1, true);
	snprintf(key, sizeof(key), "/kaa/%s/", cluster);
	kaa__coord_delete(c, key, true, NULL);
	kaa__coord_free(c);
}

int coord_suite_add(const char *name, coord_factory f)
{
	factory = f;
	CU_pSuite s = CU_add_suite(name, NULL, NULL);
	if (!s)
		return -1;
	if (!CU_add_test(s, "kv, range, cas, delete", test_kv) ||
	    !CU_add_test(s, "lease expiry, keepalive, revoke", test_lease_expiry) ||
	    !CU_add_test(s, "prefix watch with snapshot and history", test_watch) ||
	    !CU_add_test(s, "watch from a compacted revision recovers", test_watch_compacted) ||
	    !CU_add_test(s, "election: one leader, hand-over on resign", test_election) ||
	    !CU_add_test(s, "election: leader steps down when its lease is lost",
			 test_election_lease_lost) ||
	    !CU_add_test(s, "registry view, malformed values, deregister", test_registry))
		return -1;
	return 0;
}
