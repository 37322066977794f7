/*
 * The event router (services/cluster/event_router.c): three real routers in
 * one process talking over loopback internode ports. Events reach exactly
 * the nodes holding targets (never the source, never another owner's
 * endpoints), routed(OK) comes only after every target node has delivered,
 * listener queries and owner notices cross nodes, an event pending towards
 * a home that dies is re-routed to the new home after the settle window,
 * and a standalone router routes locally.
 */
#include "cu_main.h"
#include "base/clock.h"
#include "base/error.h"
#include "cluster/event_router.h"
#include "base/metrics.h"
#include "coord/rendezvous.h"

#include <CUnit/Basic.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXREC 256
#define MAXEP 8
#define APP 7

typedef struct ep {
	char owner[32], ekh[32];
	const char *sinks[2];
	size_t n_sinks;
} ep;

typedef struct tnode {
	const char *id;
	kaa__router *r;
	kaa__metrics *m;
	pthread_mutex_t mu;
	char deliv[MAXREC][128]; /* "ekh<source#seq" */
	size_t n_deliv;
	uint64_t routed_tok[MAXREC];
	int routed_st[MAXREC];
	size_t n_routed;
	uint64_t lis_tok[MAXREC];
	int lis_st[MAXREC];
	char lis[MAXREC][128]; /* sorted, comma-joined */
	size_t n_lis;
	char notices[MAXREC][128];
	size_t n_notices;
	int each_location;
	ep eps[MAXEP]; /* attached endpoints on this node (re-reported on ring change) */
	size_t n_eps;
} tnode;

static void nap(void)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static void cb_deliver(void *ud, int64_t app_id, const char *const *ekhs, size_t n,
		       const kaa__router_event *ev)
{
	tnode *t = ud;
	CU_ASSERT_EQUAL(app_id, APP);
	CU_ASSERT_EQUAL(ev->app_id, APP);
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < n && t->n_deliv < MAXREC; i++)
		snprintf(t->deliv[t->n_deliv++], 128, "%s<%s#%" PRIu64 ":%s", ekhs[i],
			 ev->source_key_hash, ev->seq, ev->body_json);
	pthread_mutex_unlock(&t->mu);
}

static void cb_routed(void *ud, uint64_t token, int status)
{
	tnode *t = ud;
	pthread_mutex_lock(&t->mu);
	if (t->n_routed < MAXREC) {
		t->routed_tok[t->n_routed] = token;
		t->routed_st[t->n_routed++] = status;
	}
	pthread_mutex_unlock(&t->mu);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void cb_listeners(void *ud, uint64_t token, int status, const char *const *ekhs, size_t n)
{
	tnode *t = ud;
	const char *v[64];
	size_t k = n < 64 ? n : 64;
	if (k)
		memcpy(v, ekhs, k * sizeof(*v));
	qsort(v, k, sizeof(*v), cmp_str);
	pthread_mutex_lock(&t->mu);
	if (t->n_lis < MAXREC) {
		char *s = t->lis[t->n_lis];
		size_t w = 0;
		s[0] = '\0';
		for (size_t i = 0; i < k; i++)
			w += (size_t)snprintf(s + w, 128 - w, "%s%s", i ? "," : "", v[i]);
		t->lis_tok[t->n_lis] = token;
		t->lis_st[t->n_lis++] = status;
	}
	pthread_mutex_unlock(&t->mu);
}

static void cb_notice(void *ud, int64_t app_id, const char *ekh, const char *owner_id,
		      const char *by_ekh)
{
	tnode *t = ud;
	CU_ASSERT_EQUAL(app_id, APP);
	pthread_mutex_lock(&t->mu);
	if (t->n_notices < MAXREC)
		snprintf(t->notices[t->n_notices++], 128, "%s:%s:%s", ekh,
			 owner_id ? owner_id : "-", by_ekh);
	pthread_mutex_unlock(&t->mu);
}

static void cb_each_location(void *ud)
{
	tnode *t = ud;
	pthread_mutex_lock(&t->mu);
	t->each_location++;
	for (size_t i = 0; i < t->n_eps; i++)
		CU_ASSERT_EQUAL(kaa__router_location(t->r, APP, t->eps[i].owner, t->eps[i].ekh,
						     true, t->eps[i].sinks, t->eps[i].n_sinks),
				KAA_OK);
	pthread_mutex_unlock(&t->mu);
}

static void tnode_init(tnode *t, const char *id, int port)
{
	if (t->id) /* a restart: the recorder starts afresh */
		pthread_mutex_destroy(&t->mu);
	memset(t, 0, sizeof(*t));
	t->id = id;
	pthread_mutex_init(&t->mu, NULL);
	t->m = kaa__metrics_new();
	kaa__router_opts o = {.node_id = id,
			      .metrics = t->m,
			      .cluster = "t",
			      .bind_host = "127.0.0.1",
			      .port = port,
			      .cbs = {.ud = t,
				      .deliver = cb_deliver,
				      .routed = cb_routed,
				      .listeners = cb_listeners,
				      .notice = cb_notice,
				      .each_location = cb_each_location}};
	CU_ASSERT_EQUAL_FATAL(kaa__router_new(&o, &t->r), KAA_OK);
}

/* A router counter of t by name (reads it before t is freed). */
static uint64_t counter(tnode *t, const char *name)
{
	char labels[64];
	snprintf(labels, sizeof(labels), "node=\"%s\"", t->id);
	return kaa__counter_value(kaa__metrics_counter(t->m, name, NULL, labels));
}

static void tnode_fini(tnode *t)
{
	kaa__router_free(t->r);
	t->r = NULL;
	kaa__metrics_free(t->m);
	t->m = NULL;
}

/* After tnode_fini: the recorder too. */
static void tnode_free(tnode *t)
{
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* Attaches endpoint ekh of owner on node t, accepting sink (NULL: none). */
static void attach(tnode *t, const char *owner, const char *ekh, const char *sink)
{
	pthread_mutex_lock(&t->mu);
	ep *e = &t->eps[t->n_eps++];
	snprintf(e->owner, sizeof(e->owner), "%s", owner);
	snprintf(e->ekh, sizeof(e->ekh), "%s", ekh);
	e->sinks[0] = sink;
	e->n_sinks = sink ? 1 : 0;
	CU_ASSERT_EQUAL(kaa__router_location(t->r, APP, owner, ekh, true, e->sinks, e->n_sinks),
			KAA_OK);
	pthread_mutex_unlock(&t->mu);
}

static int routed_status(tnode *t, uint64_t token, size_t *count)
{
	int st = 1;
	size_t c = 0;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n_routed; i++)
		if (t->routed_tok[i] == token) {
			st = t->routed_st[i];
			c++;
		}
	pthread_mutex_unlock(&t->mu);
	if (count)
		*count = c;
	return st;
}

/* Waits for routed(token); returns its status, or 1 after 15 s. */
static int wait_routed(tnode *t, uint64_t token)
{
	int64_t end = kaa__now_ms() + 15000;
	int st;
	while ((st = routed_status(t, token, NULL)) == 1 && kaa__now_ms() < end)
		nap();
	return st;
}

/* Asks t's router for listeners and waits for the answer (into out). */
static int ask(tnode *t, const char *owner, const char *asker, const char *fqn, uint64_t token,
	       char *out, size_t size)
{
	const char *fqns[] = {fqn};
	CU_ASSERT_EQUAL(kaa__router_listeners(t->r, APP, owner, asker, fqns, 1, token), KAA_OK);
	int64_t end = kaa__now_ms() + 10000;
	for (;;) {
		pthread_mutex_lock(&t->mu);
		for (size_t i = 0; i < t->n_lis; i++)
			if (t->lis_tok[i] == token) {
				int st = t->lis_st[i];
				snprintf(out, size, "%s", t->lis[i]);
				pthread_mutex_unlock(&t->mu);
				return st;
			}
		pthread_mutex_unlock(&t->mu);
		if (kaa__now_ms() > end)
			return 1;
		nap();
	}
}

/* Asks until the answer is want (the locations travel asynchronously). */
static bool ask_until(tnode *t, const char *owner, const char *asker, const char *fqn,
		      uint64_t *token, const char *want)
{
	int64_t end = kaa__now_ms() + 10000;
	char got[128] = "";
	while (kaa__now_ms() < end) {
		if (ask(t, owner, asker, fqn, (*token)++, got, sizeof(got)) == KAA_OK &&
		    strcmp(got, want) == 0)
			return true;
		nap();
	}
	fprintf(stderr, "listeners: got \"%s\" want \"%s\"\n", got, want);
	return false;
}

static size_t n_deliv(tnode *t)
{
	pthread_mutex_lock(&t->mu);
	size_t n = t->n_deliv;
	pthread_mutex_unlock(&t->mu);
	return n;
}

static bool has_deliv(tnode *t, const char *rec)
{
	bool found = false;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < t->n_deliv && !found; i++)
		found = strcmp(t->deliv[i], rec) == 0;
	pthread_mutex_unlock(&t->mu);
	return found;
}

static int route(tnode *t, const char *owner, const char *src, const char *fqn, const char *target,
		 uint64_t seq, uint64_t token)
{
	kaa__router_event ev = {.app_id = APP,
				.owner_id = owner,
				.source_key_hash = src,
				.fqn = fqn,
				.target = target,
				.body_json = "{}",
				.seq = seq};
	return kaa__router_route(t->r, &ev, token);
}

/* An owner id whose home among ids[0..n) is ids[want]. */
static void owner_homed(const char *const *ids, size_t n, size_t want, const char *prefix,
			char *out, size_t size)
{
	for (int i = 0; i < 100000; i++) {
		char key[64];
		snprintf(out, size, "%s%d", prefix, i);
		snprintf(key, sizeof(key), "%d/%s", APP, out);
		if (kaa__rendezvous_pick(key, ids, n) == (long)want)
			return;
	}
	CU_FAIL("no owner id found");
}

static void test_standalone(void)
{
	tnode *t = calloc(1, sizeof(*t));
	tnode_init(t, "solo", -1);
	CU_ASSERT_EQUAL(kaa__router_port(t->r), -1);
	kaa__router_set_nodes(t->r, NULL, 0);
	attach(t, "o1", "e1", "X");
	attach(t, "o1", "e2", "X");
	attach(t, "o1", "e3", "Y");
	attach(t, "o2", "f1", "X");
	CU_ASSERT_EQUAL(route(t, "o1", "e1", "X", NULL, 1, 100), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(t, 100), KAA_OK);
	CU_ASSERT_EQUAL(n_deliv(t), 1);
	CU_ASSERT(has_deliv(t, "e2<e1#1:{}"));
	/* unicast to another owner's endpoint: nothing, but routed */
	CU_ASSERT_EQUAL(route(t, "o1", "e1", "X", "f1", 2, 101), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(t, 101), KAA_OK);
	CU_ASSERT_EQUAL(n_deliv(t), 1);
	char got[128];
	CU_ASSERT_EQUAL(ask(t, "o1", "e3", "X", 200, got, sizeof(got)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(got, "e1,e2");
	CU_ASSERT_EQUAL(kaa__router_notice(t->r, "solo", APP, "e2", "o1", "e1"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__router_notice(t->r, "solo", APP, "e2", NULL, "e1"), KAA_OK);
	int64_t end = kaa__now_ms() + 5000;
	for (;;) {
		pthread_mutex_lock(&t->mu);
		size_t n = t->n_notices;
		pthread_mutex_unlock(&t->mu);
		if (n >= 2 || kaa__now_ms() > end)
			break;
		nap();
	}
	CU_ASSERT_EQUAL(t->n_notices, 2);
	CU_ASSERT_STRING_EQUAL(t->notices[0], "e2:o1:e1");
	CU_ASSERT_STRING_EQUAL(t->notices[1], "e2:-:e1");
	/* detach: e2 no longer a target */
	CU_ASSERT_EQUAL(kaa__router_location(t->r, APP, "o1", "e2", false, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL(route(t, "o1", "e1", "X", NULL, 3, 102), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(t, 102), KAA_OK);
	CU_ASSERT_EQUAL(n_deliv(t), 1);
	/* bad arguments: refused at once, no callback */
	const char *fq[] = {"X"};
	CU_ASSERT_EQUAL(route(t, "", "e1", "X", NULL, 4, 103), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(route(t, "o1", NULL, "X", NULL, 4, 103), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__router_listeners(t->r, APP, "o1", "e1", fq, 0, 1), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__router_location(t->r, APP, "o1", NULL, true, NULL, 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__router_notice(t->r, NULL, APP, "e1", NULL, "e2"), KAA_ERR_INVAL);
	char *big = malloc(KAA_ROUTER_BODY_MAX + 2);
	memset(big, 'a', KAA_ROUTER_BODY_MAX + 1);
	big[KAA_ROUTER_BODY_MAX + 1] = '\0';
	kaa__router_event ev = {APP, "o1", "e1", "X", NULL, big, 5};
	CU_ASSERT_EQUAL(kaa__router_route(t->r, &ev, 104), KAA_ERR_TOO_BIG);
	free(big);
	tnode_fini(t);
	CU_ASSERT_EQUAL(routed_status(t, 103, NULL), 1);
	tnode_free(t);
}

static void set_all(tnode **ts, size_t n)
{
	kaa__router_node nodes[3];
	for (size_t i = 0; i < n; i++)
		nodes[i] = (kaa__router_node){ts[i]->id, "127.0.0.1", kaa__router_port(ts[i]->r)};
	for (size_t i = 0; i < n; i++) {
		kaa__router_set_nodes(ts[i]->r, nodes, n);
		kaa__router_set_nodes(ts[i]->r, nodes, n); /* unchanged: no-op */
	}
}

static void test_cluster(void)
{
	tnode *n1 = calloc(1, sizeof(*n1)), *n2 = calloc(1, sizeof(*n2)),
	      *n3 = calloc(1, sizeof(*n3));
	tnode_init(n1, "n1", 0);
	tnode_init(n2, "n2", 0);
	tnode_init(n3, "n3", 0);
	CU_ASSERT(kaa__router_port(n1->r) > 0);
	tnode *all[] = {n1, n2, n3};
	set_all(all, 3);
	const char *ids[] = {"n1", "n2", "n3"};
	char o[32], p[32];
	owner_homed(ids, 3, 2, "own", o, sizeof(o)); /* home n3: dies later */
	owner_homed(ids, 3, 0, "other", p, sizeof(p));
	char home[64];
	CU_ASSERT_EQUAL(kaa__router_home(n1->r, APP, o, home, sizeof(home)), KAA_OK);
	/* the ring may not be applied yet: poll */
	int64_t end = kaa__now_ms() + 5000;
	while (strcmp(home, "n3") != 0 && kaa__now_ms() < end) {
		nap();
		kaa__router_home(n1->r, APP, o, home, sizeof(home));
	}
	CU_ASSERT_STRING_EQUAL(home, "n3");

	attach(n1, o, "eA", "X");
	attach(n2, o, "eB", "X");
	attach(n3, o, "eC", "X");
	attach(n2, o, "eD", NULL);
	attach(n1, p, "eP", "X");
	attach(n2, p, "eQ", "X");
	attach(n3, p, "eR", "X");

	uint64_t tok = 1000;
	CU_ASSERT(ask_until(n1, o, "eA", "X", &tok, "eB,eC"));
	CU_ASSERT(ask_until(n3, p, "eQ", "X", &tok, "eP,eR"));

	/* broadcast from n1: n2 and n3 have delivered by the time routed(OK) */
	CU_ASSERT_EQUAL(route(n1, o, "eA", "X", NULL, 1, 1), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n1, 1), KAA_OK);
	CU_ASSERT(has_deliv(n2, "eB<eA#1:{}"));
	CU_ASSERT(has_deliv(n3, "eC<eA#1:{}"));
	CU_ASSERT_EQUAL(n_deliv(n1), 0);
	size_t d2 = n_deliv(n2), d3 = n_deliv(n3);
	CU_ASSERT(d2 >= 1 && d3 >= 1);

	/* unicast from n2 to eA on n1 */
	CU_ASSERT_EQUAL(route(n2, o, "eB", "X", "eA", 2, 2), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n2, 2), KAA_OK);
	CU_ASSERT(has_deliv(n1, "eA<eB#2:{}"));
	size_t d1 = n_deliv(n1);
	CU_ASSERT_EQUAL(d1, 1);

	/* unicast to another owner's endpoint, and to a class nobody sinks */
	CU_ASSERT_EQUAL(route(n1, o, "eA", "X", "eQ", 3, 3), KAA_OK);
	CU_ASSERT_EQUAL(route(n1, o, "eA", "Z", NULL, 4, 4), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n1, 3), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n1, 4), KAA_OK);
	CU_ASSERT_EQUAL(n_deliv(n1), d1);
	CU_ASSERT_EQUAL(n_deliv(n2), d2);
	CU_ASSERT_EQUAL(n_deliv(n3), d3);
	/* owner p (home n1) from n2: eP and eR */
	CU_ASSERT_EQUAL(route(n2, p, "eQ", "X", NULL, 5, 5), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n2, 5), KAA_OK);
	CU_ASSERT(has_deliv(n1, "eP<eQ#5:{}"));
	CU_ASSERT(has_deliv(n3, "eR<eQ#5:{}"));
	CU_ASSERT_EQUAL(n_deliv(n1), d1 + 1);
	CU_ASSERT_EQUAL(n_deliv(n2), d2);

	/* notices to another node */
	CU_ASSERT_EQUAL(kaa__router_notice(n1->r, "n2", APP, "eB", o, "eA"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__router_notice(n1->r, "n2", APP, "eD", NULL, "eA"), KAA_OK);
	end = kaa__now_ms() + 5000;
	for (;;) {
		pthread_mutex_lock(&n2->mu);
		size_t n = n2->n_notices;
		pthread_mutex_unlock(&n2->mu);
		if (n >= 2 || kaa__now_ms() > end)
			break;
		nap();
	}
	char want[64];
	snprintf(want, sizeof(want), "eB:%s:eA", o);
	CU_ASSERT_EQUAL(n2->n_notices, 2);
	CU_ASSERT_STRING_EQUAL(n2->notices[0], want);
	CU_ASSERT_STRING_EQUAL(n2->notices[1], "eD:-:eA");
	CU_ASSERT_EQUAL(n1->n_notices, 0);

	/* the home n3 dies with an event on its way to it */
	tnode_fini(n3);
	CU_ASSERT_EQUAL(route(n1, o, "eA", "X", NULL, 6, 6), KAA_OK);
	CU_ASSERT_EQUAL(route(n2, o, "eB", "X", "eA", 7, 7), KAA_OK);
	/* owner p's home n1 stays; its DeliverEvent to n3 waits for n3 */
	CU_ASSERT_EQUAL(route(n1, p, "eP", "X", NULL, 8, 8), KAA_OK);
	int64_t t_wait = kaa__now_ms() + 300;
	while (kaa__now_ms() < t_wait && !has_deliv(n2, "eQ<eP#8:{}"))
		nap();
	CU_ASSERT(has_deliv(n2, "eQ<eP#8:{}"));
	CU_ASSERT_EQUAL(routed_status(n1, 8, NULL), 1); /* not yet */
	int64_t t0 = kaa__now_ms();
	set_all(all, 2);
	CU_ASSERT_EQUAL(wait_routed(n1, 6), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n2, 7), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n1, 8), KAA_OK); /* n3 left: its delivery dropped */
	/* the new home waited for the endpoints' nodes to re-report */
	CU_ASSERT(kaa__now_ms() - t0 >= KAA_ROUTER_SETTLE_MS - 200);
	CU_ASSERT(has_deliv(n2, "eB<eA#6:{}"));
	CU_ASSERT(has_deliv(n1, "eA<eB#7:{}"));
	CU_ASSERT(n1->each_location >= 2 && n2->each_location >= 2);
	CU_ASSERT(counter(n1, "kaa_router_events_rerouted_total") +
			  counter(n2, "kaa_router_events_rerouted_total") >=
		  2);
	CU_ASSERT(counter(n2, "kaa_router_events_delivered_total") >= 3);
	size_t c;
	routed_status(n1, 6, &c);
	CU_ASSERT_EQUAL(c, 1);
	CU_ASSERT(ask_until(n2, o, "eB", "X", &tok, "eA"));
	CU_ASSERT(ask_until(n1, p, "eP", "X", &tok, "eQ"));

	/* every accepted route got exactly one routed */
	for (uint64_t k = 1; k <= 8; k++) {
		tnode *src = k == 2 || k == 5 || k == 7 ? n2 : n1;
		routed_status(src, k, &c);
		CU_ASSERT_EQUAL(c, 1);
	}
	tnode_fini(n1);
	tnode_fini(n2);
	tnode_free(n1);
	tnode_free(n2);
	tnode_free(n3);
}

/* Views that disagree: n1 does not know n3 yet and sends to n2, which
 * forwards to the home n3. */
static void test_forward(void)
{
	tnode *n1 = calloc(1, sizeof(*n1)), *n2 = calloc(1, sizeof(*n2)),
	      *n3 = calloc(1, sizeof(*n3));
	tnode_init(n1, "n1", 0);
	tnode_init(n2, "n2", 0);
	tnode_init(n3, "n3", 0);
	tnode *all[] = {n1, n2, n3};
	kaa__router_node nodes[3];
	for (size_t i = 0; i < 3; i++)
		nodes[i] = (kaa__router_node){all[i]->id, "127.0.0.1", kaa__router_port(all[i]->r)};
	kaa__router_set_nodes(n2->r, nodes, 3);
	kaa__router_set_nodes(n3->r, nodes, 3);
	kaa__router_set_nodes(n1->r, nodes, 2);
	const char *ids[] = {"n1", "n2", "n3"};
	char o[32];
	for (int i = 0;; i++) {
		char key[64];
		snprintf(o, sizeof(o), "f%d", i);
		snprintf(key, sizeof(key), "%d/%s", APP, o);
		if (kaa__rendezvous_pick(key, ids, 3) == 2 &&
		    kaa__rendezvous_pick(key, ids, 2) == 1)
			break;
	}
	attach(n1, o, "eA", NULL);
	attach(n2, o, "eB", "X");
	attach(n3, o, "eC", "X");
	uint64_t tok = 100;
	CU_ASSERT(ask_until(n2, o, "eB", "X", &tok, "eC"));
	CU_ASSERT(ask_until(n3, o, "eC", "X", &tok, "eB"));
	CU_ASSERT_EQUAL(route(n1, o, "eA", "X", NULL, 1, 1), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n1, 1), KAA_OK);
	CU_ASSERT(has_deliv(n2, "eB<eA#1:{}"));
	CU_ASSERT(has_deliv(n3, "eC<eA#1:{}"));
	CU_ASSERT_EQUAL(n_deliv(n1), 0);
	CU_ASSERT(counter(n2, "kaa_router_events_forwarded_total") >= 1);
	CU_ASSERT(counter(n3, "kaa_router_events_routed_total") >= 1);
	CU_ASSERT_EQUAL(counter(n1, "kaa_router_events_routed_total"), 0);
	tnode_fini(n1);
	tnode_fini(n2);
	tnode_fini(n3);
	tnode_free(n1);
	tnode_free(n2);
	tnode_free(n3);
}

/* Views that disagree in a loop (n1 thinks n2 is the home, n2 thinks n1):
 * the event bounces until the hop limit drops it; once the views agree the
 * unacked RouteEvent is re-routed and delivered. */
static void test_hops(void)
{
	tnode *n1 = calloc(1, sizeof(*n1)), *n2 = calloc(1, sizeof(*n2));
	tnode_init(n1, "n1", 0);
	tnode_init(n2, "n2", 0);
	kaa__router_node nodes[] = {{"n1", "127.0.0.1", kaa__router_port(n1->r)},
				    {"n2", "127.0.0.1", kaa__router_port(n2->r)}};
	kaa__router_set_nodes(n1->r, nodes + 1, 1);
	kaa__router_set_nodes(n2->r, nodes, 1);
	attach(n1, "oh", "eA", NULL);
	attach(n2, "oh", "eB", "X");
	CU_ASSERT_EQUAL(route(n1, "oh", "eA", "X", NULL, 1, 1), KAA_OK);
	int64_t end = kaa__now_ms() + 10000;
	while (kaa__now_ms() < end &&
	       counter(n1, "kaa_router_events_forwarded_total") +
			       counter(n2, "kaa_router_events_forwarded_total") <
		       KAA_ROUTER_MAX_HOPS)
		nap();
	CU_ASSERT_EQUAL(counter(n1, "kaa_router_events_forwarded_total") +
				counter(n2, "kaa_router_events_forwarded_total"),
			KAA_ROUTER_MAX_HOPS);
	CU_ASSERT_EQUAL(routed_status(n1, 1, NULL), 1);
	kaa__router_set_nodes(n1->r, nodes, 2);
	kaa__router_set_nodes(n2->r, nodes, 2);
	CU_ASSERT_EQUAL(wait_routed(n1, 1), KAA_OK);
	CU_ASSERT(has_deliv(n2, "eB<eA#1:{}"));
	CU_ASSERT_EQUAL(n_deliv(n1), 0);
	tnode_fini(n1);
	tnode_fini(n2);
	tnode_free(n1);
	tnode_free(n2);
}

/* A node joins and becomes the owner's home: the endpoints' nodes re-report
 * to it and events keep flowing; the old home hands the owner off. */
static void test_join(void)
{
	tnode *n1 = calloc(1, sizeof(*n1)), *n2 = calloc(1, sizeof(*n2)),
	      *n3 = calloc(1, sizeof(*n3));
	tnode_init(n1, "n1", 0);
	tnode_init(n2, "n2", 0);
	tnode *all[] = {n1, n2, n3};
	set_all(all, 2);
	const char *ids[] = {"n1", "n2", "n3"};
	char o[32];
	owner_homed(ids, 3, 2, "j", o, sizeof(o));
	attach(n1, o, "eA", "X");
	attach(n2, o, "eB", "X");
	uint64_t tok = 100;
	CU_ASSERT(ask_until(n1, o, "eA", "X", &tok, "eB"));
	CU_ASSERT_EQUAL(route(n1, o, "eA", "X", NULL, 1, 1), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n1, 1), KAA_OK);
	CU_ASSERT(has_deliv(n2, "eB<eA#1:{}"));

	tnode_init(n3, "n3", 0);
	set_all(all, 3);
	CU_ASSERT_EQUAL(route(n2, o, "eB", "X", NULL, 2, 2), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n2, 2), KAA_OK);
	CU_ASSERT(has_deliv(n1, "eA<eB#2:{}"));
	CU_ASSERT_EQUAL(n_deliv(n3), 0);
	CU_ASSERT(ask_until(n2, o, "eB", "X", &tok, "eA"));
	CU_ASSERT(counter(n3, "kaa_router_events_routed_total") >= 1);

	/* n2 restarts on the same address (no ring change): the DeliverEvent
	 * waiting for it arrives once it is back, then routed(OK) */
	int port2 = kaa__router_port(n2->r);
	tnode_fini(n2);
	CU_ASSERT_EQUAL(route(n1, o, "eA", "X", NULL, 3, 3), KAA_OK);
	tnode_init(n2, "n2", port2);
	set_all(all, 3);
	CU_ASSERT_EQUAL(wait_routed(n1, 3), KAA_OK);
	CU_ASSERT(has_deliv(n2, "eB<eA#3:{}"));

	/* the home n3 restarts at another port with an empty directory: an
	 * address change is a ring change, so n1 and n2 re-report to it */
	tnode_fini(n3);
	tnode_init(n3, "n3", 0);
	set_all(all, 3);
	CU_ASSERT_EQUAL(route(n2, o, "eB", "X", NULL, 4, 4), KAA_OK);
	CU_ASSERT_EQUAL(wait_routed(n2, 4), KAA_OK);
	CU_ASSERT(has_deliv(n1, "eA<eB#4:{}"));
	CU_ASSERT(counter(n3, "kaa_router_events_routed_total") >= 1);
	tnode_fini(n1);
	tnode_fini(n2);
	tnode_fini(n3);
	tnode_free(n1);
	tnode_free(n2);
	tnode_free(n3);
}

/* A listeners query towards a home that is in the ring but unreachable
 * times out after 5 s. */
static void test_listeners_timeout(void)
{
	tnode *n1 = calloc(1, sizeof(*n1));
	tnode_init(n1, "n1", 0);
	kaa__router_node nodes[] = {{"n1", "127.0.0.1", kaa__router_port(n1->r)},
				    {"ghost", "127.0.0.1", 1}};
	kaa__router_set_nodes(n1->r, nodes, 2);
	const char *ids[] = {"n1", "ghost"};
	char o[32];
	owner_homed(ids, 2, 1, "g", o, sizeof(o));
	char got[128];
	int64_t t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(ask(n1, o, "e1", "X", 9, got, sizeof(got)), KAA_ERR_TIMEOUT);
	CU_ASSERT(kaa__now_ms() - t0 >= KAA_ROUTER_LISTENERS_TIMEOUT_MS - 100);
	/* freed with work pending: no callback after free, nothing leaks */
	attach(n1, o, "e1", "X");
	CU_ASSERT_EQUAL(route(n1, o, "e1", "X", NULL, 1, 77), KAA_OK);
	CU_ASSERT_EQUAL(kaa__router_notice(n1->r, "ghost", APP, "e2", o, "e1"), KAA_OK);
	CU_ASSERT_EQUAL(kaa__router_listeners(n1->r, APP, o, "e1", (const char *[]){"X"}, 1, 78),
			KAA_OK);
	char labels[32];
	snprintf(labels, sizeof(labels), "node=\"%s\"", n1->id);
	kaa__gauge *pending = kaa__metrics_gauge(n1->m, "kaa_router_pending_frames", NULL, labels);
	int64_t until = kaa__now_ms() + 5000;
	while (kaa__now_ms() < until &&
	       kaa__gauge_value(pending) < 2) /* the RouteEvent and notice */
		nap();
	CU_ASSERT(kaa__gauge_value(pending) >= 2);
	tnode_fini(n1);
	CU_ASSERT_EQUAL(routed_status(n1, 77, NULL), 1);
	tnode_free(n1);
}

static void test_bad_new(void)
{
	kaa__router *r = NULL;
	kaa__router_opts o = {.node_id = "", .cluster = "t", .port = -1};
	CU_ASSERT_EQUAL(kaa__router_new(&o, &r), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(r);
	kaa__router_free(NULL);
	/* a port in use */
	tnode *a = calloc(1, sizeof(*a));
	tnode_init(a, "a", 0);
	kaa__router_opts o2 = {.node_id = "b",
			       .cluster = "t",
			       .bind_host = "127.0.0.1",
			       .port = kaa__router_port(a->r)};
	CU_ASSERT_EQUAL(kaa__router_new(&o2, &r), KAA_ERR_IO);
	tnode_fini(a);
	tnode_free(a);
}

static const kaa__cu_test tests[] = {
	{"standalone", test_standalone},
	{"cluster", test_cluster},
	{"forward", test_forward},
	{"join", test_join},
	{"hops", test_hops},
	{"listeners_timeout", test_listeners_timeout},
	{"bad_new", test_bad_new},
};

int main(void)
{
	return kaa__cu_run("event_router", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
