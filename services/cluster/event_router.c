/*
 * event_router.c - see event_router.h.
 *
 * Everything below "worker" runs on the worker thread only and needs no
 * lock: the public functions and internode's on_frame append items to a
 * queue under mu; the worker takes them in batches, applies them, and every
 * TICK_MS re-sends unacked frames, expires deadlines and ends the settle
 * window. mu also guards the ring copy read by kaa__router_home.
 *
 * Reliable frames ("pends") are kept packed, keyed by the InternodeFrame.seq
 * this node chose (unique per node: it starts at the wall clock in
 * microseconds, so a restarted node does not reuse the seqs of its previous
 * life that a home may still hold). A "job" is one event being routed: from
 * a local kaa__router_route (completion: routed cb) or a RouteEvent from
 * another node (completion: Ack to that node). A "query" is one listeners
 * question, local or from another node.
 */
#include "cluster/event_router.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "cluster/internode.h"
#include "base/log.h"
#include "cluster/owner_dir.h"
#include "coord/rendezvous.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "router"
#define TICK_MS 100
#define RESEND_AFTER_MS 2000
#define RESEND_EVERY_MS 1000
#define PEND_TIMEOUT_MS 30000 /* locations and notices that found no taker */
#define NB 4096               /* hash buckets for pends, jobs, queries */
/* endpoints per DeliverEvent: 256 ids of <= 256 bytes plus a body of
 * KAA_ROUTER_BODY_MAX stay under KAA_INTERNODE_FRAME_MAX */
#define DELIVER_CHUNK 256

/* ---- small helpers ---------------------------------------------------------- */

static bool id_ok(const char *s)
{
	return s && *s && strlen(s) <= KAA_ROUTER_ID_MAX;
}

static char *dup_or_null(const char *s)
{
	return s ? kaa__xstrdup(s) : NULL;
}

static char **strv_dup(const char *const *v, size_t n)
{
	if (!n)
		return NULL;
	char **out = kaa__xcalloc(n, sizeof(*out));
	for (size_t i = 0; i < n; i++)
		out[i] = kaa__xstrdup(v[i]);
	return out;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* An owned copy of an event. */
typedef struct evc {
	int64_t app_id;
	char *owner, *source, *fqn, *target, *body;
	uint64_t seq;
} evc;

static void evc_set(evc *c, const kaa__router_event *e)
{
	c->app_id = e->app_id;
	c->owner = kaa__xstrdup(e->owner_id);
	c->source = kaa__xstrdup(e->source_key_hash);
	c->fqn = kaa__xstrdup(e->fqn);
	c->target = kaa__xstrdup(e->target ? e->target : "");
	c->body = kaa__xstrdup(e->body_json);
	c->seq = e->seq;
}

static void evc_clear(evc *c)
{
	free(c->owner);
	free(c->source);
	free(c->fqn);
	free(c->target);
	free(c->body);
	memset(c, 0, sizeof(*c));
}

static kaa__router_event evc_view(const evc *c)
{
	kaa__router_event e = {.app_id = c->app_id,
			       .owner_id = c->owner,
			       .source_key_hash = c->source,
			       .fqn = c->fqn,
			       .target = c->target,
			       .body_json = c->body,
			       .seq = c->seq};
	return e;
}

/* ---- state ------------------------------------------------------------------ */

typedef struct ring_node {
	char *id, *host;
	int port;
} ring_node;

enum item_kind { IT_NODES, IT_LOCATION, IT_ROUTE, IT_LISTENERS, IT_NOTICE, IT_FRAME };

typedef struct item {
	struct item *next;
	enum item_kind kind;
	int64_t app_id;
	char *owner, *ekh, *by, *node; /* meaning per kind, see the enqueuing functions */
	bool connected;
	char **list; /* sinks or fqns */
	size_t n_list;
	ring_node *nodes;
	size_t n_nodes;
	evc ev;
	uint64_t token;
	uint8_t *bytes; /* IT_FRAME: the packed frame; node = its sender */
	size_t len;
} item;

enum pend_kind { P_ROUTE, P_DELIVER, P_LOCATION, P_NOTICE };

typedef struct job job;

typedef struct pend {
	struct pend *next, *prev;   /* bucket chain by seq */
	struct pend *knext, *kprev; /* P_LOCATION: bucket chain by key */
	uint64_t seq;
	enum pend_kind kind;
	char *node;
	uint8_t *buf;
	size_t len;
	job *job;  /* P_ROUTE, P_DELIVER */
	char *key; /* P_LOCATION: "app/owner/ekh" (a newer report supersedes) */
	int64_t next_send_ms, expire_ms;
} pend;

enum job_state { J_NEW, J_SETTLE, J_FORWARDED, J_DELIVERING };

struct job {
	struct job *next, *prev; /* bucket chain by from_seq (token for local jobs) */
	evc ev;
	bool local;
	uint64_t token;    /* local */
	char *from;        /* remote: the node that sent the RouteEvent */
	uint64_t from_seq; /* remote: its frame seq, acked when done */
	uint32_t hops;     /* remote: as received */
	int64_t deadline_ms;
	enum job_state state;
	size_t n_out;   /* J_DELIVERING: DeliverEvents not yet acked */
	size_t n_pends; /* pends pointing at this job */
};

typedef struct query {
	struct query *next, *prev; /* bucket chain by qid */
	uint64_t qid;
	bool local;
	uint64_t token;    /* local */
	char *from;        /* remote asker node */
	uint64_t from_qid; /* remote */
	int64_t app_id;
	char *owner, *asker;
	char **fqns;
	size_t n_fqns;
	int64_t deadline_ms;
	char *sent_to; /* local, asked another node */
	int64_t next_send_ms;
	bool waiting; /* deferred by the settle window */
} query;

struct kaa__router {
	char *node_id, *cluster;
	kaa__router_cbs cbs;
	kaa__internode *in; /* NULL: standalone */
	int port;
	kaa__owner_dir *dir;

	kaa__counter *m_routed, *m_delivered, *m_resent, *m_rerouted, *m_forwarded, *m_timeouts;
	kaa__gauge *m_pending;

	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop;
	item *head, *tail;
	size_t n_items;
	char *last_sig;  /* set_nodes' last queued list, to skip unchanged ones */
	ring_node *ring; /* written by the worker under mu */
	size_t n_ring;

	/* worker only */
	const char **ring_ids;
	uint64_t next_seq, next_qid;
	pend *pends[NB];
	pend *locs[NB]; /* the P_LOCATION pends again, by key */
	size_t n_pends;
	job *jobs[NB];
	query *queries[NB];
	int64_t settle_until;
	bool settle_pending; /* a settle window is open: run its end */
	int64_t forget_at;   /* 0: no sweep of owners homed elsewhere is due */
};

/* ---- queue (any thread) --------------------------------------------------------- */

static void item_free(item *it)
{
	if (!it)
		return;
	free(it->owner);
	free(it->ekh);
	free(it->by);
	free(it->node);
	strv_free(it->list, it->n_list);
	for (size_t i = 0; i < it->n_nodes; i++) {
		free(it->nodes[i].id);
		free(it->nodes[i].host);
	}
	free(it->nodes);
	evc_clear(&it->ev);
	free(it->bytes);
	free(it);
}

/* Takes it (freed on failure). KAA_ERR_TOO_BIG when the queue is full. */
static int push(kaa__router *r, item *it)
{
	pthread_mutex_lock(&r->mu);
	if (r->n_items >= KAA_ROUTER_QUEUE_MAX) {
		pthread_mutex_unlock(&r->mu);
		item_free(it);
		KAA_WARN(MOD, "queue_full node=%s", r->node_id);
		return KAA_ERR_TOO_BIG;
	}
	it->next = NULL;
	if (r->tail)
		r->tail->next = it;
	else
		r->head = it;
	r->tail = it;
	r->n_items++;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	return KAA_OK;
}

static item *item_new(enum item_kind k)
{
	item *it = kaa__xcalloc(1, sizeof(*it));
	it->kind = k;
	return it;
}

/* internode's service thread: copy the frame out (re-packed) for the worker. */
static void on_frame(void *ud, const char *from, const Kaa__Cluster__V1__InternodeFrame *f)
{
	kaa__router *r = ud;
	item *it = item_new(IT_FRAME);
	it->node = kaa__xstrdup(from);
	it->len = kaa__cluster__v1__internode_frame__get_packed_size(f);
	it->bytes = kaa__xmalloc(it->len ? it->len : 1);
	kaa__cluster__v1__internode_frame__pack(f, it->bytes);
	push(r, it); /* full: dropped; the sender re-sends */
}

/* ---- worker: ring ----------------------------------------------------------------- */

static bool is_self(const kaa__router *r, const char *id)
{
	return strcmp(id, r->node_id) == 0;
}

static bool in_ring(const kaa__router *r, const char *id)
{
	for (size_t i = 0; i < r->n_ring; i++)
		if (strcmp(r->ring[i].id, id) == 0)
			return true;
	return false;
}

/* The owner's home in the ring (borrowed; valid until the next ring change). */
static const char *home_of(const kaa__router *r, int64_t app_id, const char *owner)
{
	if (!r->in || r->n_ring == 0)
		return r->node_id;
	char key[KAA_ROUTER_ID_MAX + 32];
	snprintf(key, sizeof(key), "%" PRId64 "/%s", app_id, owner);
	long i = kaa__rendezvous_pick(key, r->ring_ids, r->n_ring);
	return i < 0 ? r->node_id : r->ring[i].id;
}

static bool settling(const kaa__router *r)
{
	return r->settle_pending && kaa__now_ms() < r->settle_until;
}

/* ---- worker: reliable frames ----------------------------------------------------------- */

static size_t key_bucket(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const unsigned char *c = (const unsigned char *)key; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return (size_t)(h % NB);
}

static void pend_unlink(kaa__router *r, pend *p)
{
	if (p->job)
		p->job->n_pends--;
	if (p->key) {
		if (p->kprev)
			p->kprev->knext = p->knext;
		else
			r->locs[key_bucket(p->key)] = p->knext;
		if (p->knext)
			p->knext->kprev = p->kprev;
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		r->pends[p->seq % NB] = p->next;
	if (p->next)
		p->next->prev = p->prev;
	r->n_pends--;
	free(p->node);
	free(p->buf);
	free(p->key);
	free(p);
}

static pend *pend_find(kaa__router *r, uint64_t seq)
{
	for (pend *p = r->pends[seq % NB]; p; p = p->next)
		if (p->seq == seq)
			return p;
	return NULL;
}

/* Packs f with a fresh seq, sends it and keeps it for re-sending, for job j
 * (P_ROUTE, P_DELIVER) or under key (P_LOCATION). */
static void pend_send(kaa__router *r, const char *node, enum pend_kind kind,
		      Kaa__Cluster__V1__InternodeFrame *f, job *j, const char *key)
{
	pend *p = kaa__xcalloc(1, sizeof(*p));
	p->seq = r->next_seq++;
	p->kind = kind;
	p->node = kaa__xstrdup(node);
	p->job = j;
	if (j)
		j->n_pends++;
	if (key) {
		p->key = kaa__xstrdup(key);
		size_t kb = key_bucket(key);
		p->knext = r->locs[kb];
		if (p->knext)
			p->knext->kprev = p;
		r->locs[kb] = p;
	}
	f->protocol_version = 1;
	f->seq = p->seq;
	p->len = kaa__cluster__v1__internode_frame__get_packed_size(f);
	p->buf = kaa__xmalloc(p->len);
	kaa__cluster__v1__internode_frame__pack(f, p->buf);
	int64_t now = kaa__now_ms();
	p->next_send_ms = now + RESEND_AFTER_MS;
	p->expire_ms = now + PEND_TIMEOUT_MS;
	size_t b = p->seq % NB;
	p->next = r->pends[b];
	if (p->next)
		p->next->prev = p;
	r->pends[b] = p;
	r->n_pends++;
	int rc = kaa__internode_send_packed(r->in, node, p->buf, p->len);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "send_deferred node=%s peer=%s kind=%d err=%s", r->node_id, node,
			 kind, kaa_strerror(rc));
}

/* Fire-and-forget frames (Ack, ListenersQuery/Answer). */
static void send_plain(kaa__router *r, const char *node, Kaa__Cluster__V1__InternodeFrame *f)
{
	f->protocol_version = 1;
	int rc = kaa__internode_send(r->in, node, f);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "send_failed node=%s peer=%s err=%s", r->node_id, node,
			 kaa_strerror(rc));
}

static void send_ack(kaa__router *r, const char *node, uint64_t seq)
{
	if (!seq)
		return;
	Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
	Kaa__Cluster__V1__Ack a = KAA__CLUSTER__V1__ACK__INIT;
	a.seq = seq;
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_ACK;
	f.ack = &a;
	send_plain(r, node, &f);
}

/* Drops every pend of job j. */
static void pends_drop_job(kaa__router *r, job *j)
{
	for (size_t b = 0; b < NB && j->n_pends; b++)
		for (pend *p = r->pends[b], *nx; p; p = nx) {
			nx = p->next;
			if (p->job == j)
				pend_unlink(r, p);
		}
}

/* ---- worker: jobs ------------------------------------------------------------------- */

static size_t job_bucket(const job *j)
{
	return (j->local ? j->token : j->from_seq) % NB;
}

static void job_link(kaa__router *r, job *j)
{
	size_t b = job_bucket(j);
	j->prev = NULL;
	j->next = r->jobs[b];
	if (j->next)
		j->next->prev = j;
	r->jobs[b] = j;
}

static void job_free(kaa__router *r, job *j)
{
	pends_drop_job(r, j);
	if (j->prev)
		j->prev->next = j->next;
	else
		r->jobs[job_bucket(j)] = j->next;
	if (j->next)
		j->next->prev = j->prev;
	evc_clear(&j->ev);
	free(j->from);
	free(j);
}

static void job_done(kaa__router *r, job *j, int status)
{
	if (j->local) {
		if (r->cbs.routed)
			r->cbs.routed(r->cbs.ud, j->token, status);
	} else if (status == KAA_OK) {
		send_ack(r, j->from, j->from_seq);
	}
	job_free(r, j);
}

static Kaa__Endpoint__V1__Event event_pb(const evc *c)
{
	Kaa__Endpoint__V1__Event e = KAA__ENDPOINT__V1__EVENT__INIT;
	e.event_class_fqn = c->fqn;
	e.target_endpoint_key_hash = c->target;
	e.body_json = c->body;
	e.seq = c->seq;
	e.source_endpoint_key_hash = c->source;
	return e;
}

typedef struct route_ctx {
	kaa__router *r;
	job *j;
} route_ctx;

static void route_to_node(void *ud, const char *node, const char *const *eps, size_t n)
{
	route_ctx *c = ud;
	kaa__router *r = c->r;
	if (is_self(r, node) || !r->in) { /* standalone: every endpoint is here */
		kaa__router_event ev = evc_view(&c->j->ev);
		kaa__counter_add(r->m_delivered, n);
		if (r->cbs.deliver)
			r->cbs.deliver(r->cbs.ud, ev.app_id, eps, n, &ev);
		return;
	}
	/* in chunks, so a frame stays under KAA_INTERNODE_FRAME_MAX */
	for (size_t at = 0; at < n; at += DELIVER_CHUNK) {
		Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
		Kaa__Cluster__V1__DeliverEvent d = KAA__CLUSTER__V1__DELIVER_EVENT__INIT;
		Kaa__Endpoint__V1__Event e = event_pb(&c->j->ev);
		d.app_id = c->j->ev.app_id;
		d.owner_id = c->j->ev.owner;
		d.n_endpoint_key_hashes = n - at < DELIVER_CHUNK ? n - at : DELIVER_CHUNK;
		d.endpoint_key_hashes = (char **)eps + at;
		d.event = &e;
		f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_DELIVER_EVENT;
		f.deliver_event = &d;
		pend_send(r, node, P_DELIVER, &f, c->j, NULL);
		c->j->n_out++;
	}
}

/* Moves job j on: route it here (home, outside the settle window), wait for
 * the window to end, or send it to its home. May free j. */
static void job_step(kaa__router *r, job *j)
{
	const char *home = home_of(r, j->ev.app_id, j->ev.owner);
	if (is_self(r, home)) {
		if (settling(r)) {
			j->state = J_SETTLE;
			return;
		}
		j->state = J_DELIVERING;
		j->n_out = 0;
		route_ctx c = {r, j};
		kaa__owner_dir_route(r->dir, j->ev.app_id, j->ev.owner, j->ev.source, j->ev.fqn,
				     j->ev.target, route_to_node, &c);
		kaa__counter_inc(r->m_routed);
		if (j->n_out == 0)
			job_done(r, j, KAA_OK);
		return;
	}
	if (!j->local && j->hops >= KAA_ROUTER_MAX_HOPS) {
		/* the views disagree for now: the source re-sends once they agree */
		KAA_WARN(MOD, "hop_limit node=%s app=%" PRId64 " owner=%s from=%s", r->node_id,
			 j->ev.app_id, j->ev.owner, j->from);
		job_free(r, j);
		return;
	}
	Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
	Kaa__Cluster__V1__RouteEvent re = KAA__CLUSTER__V1__ROUTE_EVENT__INIT;
	Kaa__Endpoint__V1__Event e = event_pb(&j->ev);
	re.app_id = j->ev.app_id;
	re.owner_id = j->ev.owner;
	re.event = &e;
	re.hops = j->local ? 0 : j->hops + 1;
	if (!j->local)
		kaa__counter_inc(r->m_forwarded);
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_ROUTE_EVENT;
	f.route_event = &re;
	j->state = J_FORWARDED;
	pend_send(r, home, P_ROUTE, &f, j, NULL);
}

static job *job_find_remote(kaa__router *r, const char *from, uint64_t seq)
{
	for (job *j = r->jobs[seq % NB]; j; j = j->next)
		if (!j->local && j->from_seq == seq && strcmp(j->from, from) == 0)
			return j;
	return NULL;
}

/* ---- worker: listener queries ----------------------------------------------------------- */

static void query_link(kaa__router *r, query *q)
{
	size_t b = q->qid % NB;
	q->prev = NULL;
	q->next = r->queries[b];
	if (q->next)
		q->next->prev = q;
	r->queries[b] = q;
}

static void query_free(kaa__router *r, query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		r->queries[q->qid % NB] = q->next;
	if (q->next)
		q->next->prev = q->prev;
	free(q->from);
	free(q->owner);
	free(q->asker);
	strv_free(q->fqns, q->n_fqns);
	free(q->sent_to);
	free(q);
}

static void query_send(kaa__router *r, query *q, const char *home)
{
	Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
	Kaa__Cluster__V1__ListenersQuery lq = KAA__CLUSTER__V1__LISTENERS_QUERY__INIT;
	lq.query_id = q->qid;
	lq.app_id = q->app_id;
	lq.owner_id = q->owner;
	lq.asker_endpoint_key_hash = q->asker;
	lq.n_event_class_fqns = q->n_fqns;
	lq.event_class_fqns = q->fqns;
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_LISTENERS_QUERY;
	f.listeners_query = &lq;
	send_plain(r, home, &f);
	if (!q->sent_to || strcmp(q->sent_to, home) != 0) {
		free(q->sent_to);
		q->sent_to = kaa__xstrdup(home);
	}
	q->next_send_ms = kaa__now_ms() + (q->next_send_ms ? RESEND_EVERY_MS : RESEND_AFTER_MS);
}

/* Answers q here (home), defers it (settle window), asks the home, or drops
 * a remote query that reached a node that is not the home. May free q. */
static void query_step(kaa__router *r, query *q)
{
	const char *home = home_of(r, q->app_id, q->owner);
	if (!is_self(r, home)) {
		q->waiting = false;
		if (q->local)
			query_send(r, q, home);
		else
			query_free(r, q); /* the asker re-sends to its own idea of the home */
		return;
	}
	if (settling(r)) {
		q->waiting = true;
		return;
	}
	char **v = NULL;
	size_t n = kaa__owner_dir_listeners(r->dir, q->app_id, q->owner, q->asker,
					    (const char *const *)q->fqns, q->n_fqns, &v);
	if (q->local) {
		if (r->cbs.listeners)
			r->cbs.listeners(r->cbs.ud, q->token, KAA_OK, (const char *const *)v, n);
	} else {
		Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
		Kaa__Cluster__V1__ListenersAnswer a = KAA__CLUSTER__V1__LISTENERS_ANSWER__INIT;
		a.query_id = q->from_qid;
		a.n_endpoint_key_hashes = n;
		a.endpoint_key_hashes = v;
		f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_LISTENERS_ANSWER;
		f.listeners_answer = &a;
		send_plain(r, q->from, &f);
	}
	kaa__owner_dir_strings_free(v, n);
	query_free(r, q);
}

/* ---- worker: items ---------------------------------------------------------------- */

static void ring_apply(kaa__router *r, item *it)
{
	/* the new ring: the list as given, or only this node when it is empty */
	size_t n = it->n_nodes;
	ring_node *ring;
	if (n == 0) {
		ring = kaa__xcalloc(1, sizeof(*ring));
		ring[0].id = kaa__xstrdup(r->node_id);
		ring[0].host = kaa__xstrdup("");
		n = 1;
	} else {
		ring = it->nodes;
		it->nodes = NULL;
		it->n_nodes = 0;
	}
	/* a node that came back under the same id at another address restarted
	 * with an empty directory: treated as a ring change too, so that every
	 * node re-reports its endpoints */
	bool changed = n != r->n_ring;
	for (size_t i = 0; i < n && !changed; i++) {
		const ring_node *was = NULL;
		for (size_t k = 0; k < r->n_ring && !was; k++)
			if (strcmp(r->ring[k].id, ring[i].id) == 0)
				was = &r->ring[k];
		changed = !was ||
			  (!is_self(r, ring[i].id) &&
			   (strcmp(was->host, ring[i].host) != 0 || was->port != ring[i].port));
	}
	for (size_t i = 0; i < n; i++)
		if (!is_self(r, ring[i].id))
			kaa__internode_set_peer(r->in, ring[i].id, ring[i].host, ring[i].port);
	ring_node *old = r->ring;
	size_t n_old = r->n_ring;
	pthread_mutex_lock(&r->mu);
	r->ring = ring;
	r->n_ring = n;
	pthread_mutex_unlock(&r->mu);
	free(r->ring_ids);
	r->ring_ids = kaa__xcalloc(n, sizeof(*r->ring_ids));
	for (size_t i = 0; i < n; i++)
		r->ring_ids[i] = ring[i].id;

	if (changed) {
		KAA_INFO(MOD, "ring_changed node=%s nodes=%zu was=%zu", r->node_id, n, n_old);
		/* A node that left: forget its endpoints. One that restarted
		 * elsewhere keeps its entries: stale ones only cost a DeliverEvent
		 * it acks and drops, while dropping them could wipe reports its new
		 * sessions made before this node saw the new address. */
		for (size_t i = 0; i < n_old; i++) {
			if (in_ring(r, old[i].id) || is_self(r, old[i].id))
				continue;
			kaa__internode_remove_peer(r->in, old[i].id);
			size_t gone = kaa__owner_dir_drop_node(r->dir, old[i].id);
			KAA_INFO(MOD, "node_left node=%s peer=%s endpoints=%zu", r->node_id,
				 old[i].id, gone);
		}
		/* before re-routing below, which must wait for it too */
		r->settle_until = kaa__now_ms() + KAA_ROUTER_SETTLE_MS;
		r->settle_pending = true;
		/* frames waiting for nodes that left */
		for (size_t b = 0; b < NB; b++)
			for (pend *p = r->pends[b], *nx; p; p = nx) {
				nx = p->next;
				if (in_ring(r, p->node))
					continue;
				job *j = p->job;
				enum pend_kind k = p->kind;
				pend_unlink(r, p);
				if (k == P_ROUTE) {
					kaa__counter_inc(r->m_rerouted);
					job_step(r, j);
				} else if (k == P_DELIVER && --j->n_out == 0) {
					job_done(r, j, KAA_OK);
				}
				/* job_step/job_done may have unlinked other pends
				 * of this bucket (the same job's): rescan it */
				nx = r->pends[b];
			}
		if (r->cbs.each_location)
			r->cbs.each_location(r->cbs.ud);
	}
	for (size_t i = 0; i < n_old; i++) {
		free(old[i].id);
		free(old[i].host);
	}
	free(old);
}

static void do_location(kaa__router *r, item *it)
{
	const char *home = home_of(r, it->app_id, it->owner);
	if (is_self(r, home)) {
		int rc = kaa__owner_dir_update(r->dir, it->app_id, it->owner, it->ekh, r->node_id,
					       it->connected, (const char *const *)it->list,
					       it->n_list);
		if (rc != KAA_OK)
			KAA_WARN(MOD, "location_refused node=%s owner=%s endpoint=%s err=%s",
				 r->node_id, it->owner, it->ekh, kaa_strerror(rc));
		return;
	}
	char key[3 * KAA_ROUTER_ID_MAX + 32];
	snprintf(key, sizeof(key), "%" PRId64 "/%s/%s", it->app_id, it->owner, it->ekh);
	for (pend *p = r->locs[key_bucket(key)], *nx; p; p = nx) {
		nx = p->knext; /* a newer report supersedes one still unacked */
		if (strcmp(p->key, key) == 0)
			pend_unlink(r, p);
	}
	Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
	Kaa__Cluster__V1__EndpointLocation l = KAA__CLUSTER__V1__ENDPOINT_LOCATION__INIT;
	l.app_id = it->app_id;
	l.owner_id = it->owner;
	l.endpoint_key_hash = it->ekh;
	l.node_id = r->node_id;
	l.connected = it->connected;
	l.n_sink_event_class_fqns = it->n_list;
	l.sink_event_class_fqns = it->list;
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_ENDPOINT_LOCATION;
	f.endpoint_location = &l;
	pend_send(r, home, P_LOCATION, &f, NULL, key);
}

static void do_notice(kaa__router *r, item *it)
{
	if (is_self(r, it->node)) {
		if (r->cbs.notice)
			r->cbs.notice(r->cbs.ud, it->app_id, it->ekh, it->owner, it->by);
		return;
	}
	if (!r->in) {
		KAA_WARN(MOD, "notice_dropped node=%s peer=%s reason=standalone", r->node_id,
			 it->node);
		return;
	}
	Kaa__Cluster__V1__InternodeFrame f = KAA__CLUSTER__V1__INTERNODE_FRAME__INIT;
	Kaa__Cluster__V1__OwnerNotice on = KAA__CLUSTER__V1__OWNER_NOTICE__INIT;
	Kaa__Endpoint__V1__AttachNotification an = KAA__ENDPOINT__V1__ATTACH_NOTIFICATION__INIT;
	an.owner_id = it->owner ? it->owner : "";
	an.endpoint_key_hash = it->by;
	on.app_id = it->app_id;
	on.n_endpoint_key_hashes = 1;
	on.endpoint_key_hashes = &it->ekh;
	on.attach = &an;
	on.detached = it->owner == NULL;
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_OWNER_NOTICE;
	f.owner_notice = &on;
	pend_send(r, it->node, P_NOTICE, &f, NULL, NULL);
}

static void do_route(kaa__router *r, item *it)
{
	job *j = kaa__xcalloc(1, sizeof(*j));
	j->ev = it->ev;
	memset(&it->ev, 0, sizeof(it->ev));
	j->local = true;
	j->token = it->token;
	j->deadline_ms = kaa__now_ms() + KAA_ROUTER_ROUTE_TIMEOUT_MS;
	job_link(r, j);
	job_step(r, j);
}

static void do_listeners(kaa__router *r, item *it)
{
	query *q = kaa__xcalloc(1, sizeof(*q));
	q->qid = r->next_qid++;
	q->local = true;
	q->token = it->token;
	q->app_id = it->app_id;
	q->owner = it->owner;
	q->asker = it->ekh;
	q->fqns = it->list;
	q->n_fqns = it->n_list;
	it->owner = it->ekh = NULL;
	it->list = NULL;
	it->n_list = 0;
	q->deadline_ms = kaa__now_ms() + KAA_ROUTER_LISTENERS_TIMEOUT_MS;
	query_link(r, q);
	query_step(r, q);
}

/* ---- worker: frames from other nodes ------------------------------------------------ */

static bool strs_ok(char **v, size_t n, size_t max)
{
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!id_ok(v[i]))
			return false;
	return true;
}

static bool event_ok(const Kaa__Endpoint__V1__Event *e)
{
	return e && id_ok(e->event_class_fqn) && id_ok(e->source_endpoint_key_hash) &&
	       e->target_endpoint_key_hash &&
	       strlen(e->target_endpoint_key_hash) <= KAA_ROUTER_ID_MAX && e->body_json;
}

static void evc_from_pb(evc *c, int64_t app_id, const char *owner,
			const Kaa__Endpoint__V1__Event *e)
{
	kaa__router_event v = {.app_id = app_id,
			       .owner_id = owner,
			       .source_key_hash = e->source_endpoint_key_hash,
			       .fqn = e->event_class_fqn,
			       .target = e->target_endpoint_key_hash,
			       .body_json = e->body_json,
			       .seq = e->seq};
	evc_set(c, &v);
}

static void on_route_event(kaa__router *r, const char *from, uint64_t seq,
			   const Kaa__Cluster__V1__RouteEvent *m)
{
	if (!id_ok(m->owner_id) || !event_ok(m->event) || !seq) {
		KAA_WARN(MOD, "bad_route_event node=%s from=%s", r->node_id, from);
		return;
	}
	if (job_find_remote(r, from, seq))
		return; /* a re-send of one in progress: acked when done */
	job *j = kaa__xcalloc(1, sizeof(*j));
	evc_from_pb(&j->ev, m->app_id, m->owner_id, m->event);
	j->from = kaa__xstrdup(from);
	j->from_seq = seq;
	j->hops = m->hops;
	j->deadline_ms = kaa__now_ms() + KAA_ROUTER_ROUTE_TIMEOUT_MS;
	job_link(r, j);
	job_step(r, j);
}

static void on_deliver_event(kaa__router *r, const char *from, uint64_t seq,
			     const Kaa__Cluster__V1__DeliverEvent *m)
{
	if (!event_ok(m->event) || !strs_ok(m->endpoint_key_hashes, m->n_endpoint_key_hashes,
					    KAA_OWNER_DIR_MAX_ENDPOINTS)) {
		KAA_WARN(MOD, "bad_deliver_event node=%s from=%s", r->node_id, from);
		return;
	}
	kaa__router_event ev = {.app_id = m->app_id,
				.owner_id = m->owner_id,
				.source_key_hash = m->event->source_endpoint_key_hash,
				.fqn = m->event->event_class_fqn,
				.target = m->event->target_endpoint_key_hash,
				.body_json = m->event->body_json,
				.seq = m->event->seq};
	kaa__counter_add(r->m_delivered, m->n_endpoint_key_hashes);
	if (r->cbs.deliver && m->n_endpoint_key_hashes)
		r->cbs.deliver(r->cbs.ud, m->app_id, (const char *const *)m->endpoint_key_hashes,
			       m->n_endpoint_key_hashes, &ev);
	send_ack(r, from, seq);
}

static void on_location(kaa__router *r, const char *from, uint64_t seq,
			const Kaa__Cluster__V1__EndpointLocation *m)
{
	/* recorded even when this node is not the home in its view (the views
	 * may lag); a later sweep forgets owners homed elsewhere */
	int rc = kaa__owner_dir_update(r->dir, m->app_id, m->owner_id, m->endpoint_key_hash, from,
				       m->connected, (const char *const *)m->sink_event_class_fqns,
				       m->n_sink_event_class_fqns);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "location_refused node=%s from=%s err=%s", r->node_id, from,
			 kaa_strerror(rc));
	else if (!is_self(r, home_of(r, m->app_id, m->owner_id)) && !r->forget_at)
		r->forget_at = kaa__now_ms() + KAA_ROUTER_SETTLE_MS;
	send_ack(r, from, seq); /* acked even when refused: a re-send would be too */
}

static void on_notice(kaa__router *r, const char *from, uint64_t seq,
		      const Kaa__Cluster__V1__OwnerNotice *m)
{
	const char *by = m->attach ? m->attach->endpoint_key_hash : NULL;
	const char *owner = m->detached ? NULL : m->attach ? m->attach->owner_id : NULL;
	if (!id_ok(by) || (!m->detached && !id_ok(owner)) ||
	    !strs_ok(m->endpoint_key_hashes, m->n_endpoint_key_hashes,
		     KAA_OWNER_DIR_MAX_ENDPOINTS)) {
		KAA_WARN(MOD, "bad_owner_notice node=%s from=%s", r->node_id, from);
		return;
	}
	for (size_t i = 0; i < m->n_endpoint_key_hashes; i++)
		if (r->cbs.notice)
			r->cbs.notice(r->cbs.ud, m->app_id, m->endpoint_key_hashes[i], owner, by);
	send_ack(r, from, seq);
}

static void on_listeners_query(kaa__router *r, const char *from,
			       const Kaa__Cluster__V1__ListenersQuery *m)
{
	if (!id_ok(m->owner_id) || !id_ok(m->asker_endpoint_key_hash) || !m->n_event_class_fqns ||
	    m->n_event_class_fqns > KAA_ROUTER_FQNS_MAX ||
	    !strs_ok(m->event_class_fqns, m->n_event_class_fqns, KAA_ROUTER_FQNS_MAX)) {
		KAA_WARN(MOD, "bad_listeners_query node=%s from=%s", r->node_id, from);
		return;
	}
	query *q = kaa__xcalloc(1, sizeof(*q));
	q->qid = r->next_qid++;
	q->from = kaa__xstrdup(from);
	q->from_qid = m->query_id;
	q->app_id = m->app_id;
	q->owner = kaa__xstrdup(m->owner_id);
	q->asker = kaa__xstrdup(m->asker_endpoint_key_hash);
	q->fqns = strv_dup((const char *const *)m->event_class_fqns, m->n_event_class_fqns);
	q->n_fqns = m->n_event_class_fqns;
	q->deadline_ms = kaa__now_ms() + KAA_ROUTER_LISTENERS_TIMEOUT_MS;
	query_link(r, q);
	query_step(r, q);
}

static void on_listeners_answer(kaa__router *r, const char *from,
				const Kaa__Cluster__V1__ListenersAnswer *m)
{
	for (query *q = r->queries[m->query_id % NB]; q; q = q->next) {
		if (!q->local || q->qid != m->query_id)
			continue;
		if (!strs_ok(m->endpoint_key_hashes, m->n_endpoint_key_hashes,
			     KAA_OWNER_DIR_MAX_ENDPOINTS)) {
			KAA_WARN(MOD, "bad_listeners_answer node=%s from=%s", r->node_id, from);
			return;
		}
		if (r->cbs.listeners)
			r->cbs.listeners(r->cbs.ud, q->token, KAA_OK,
					 (const char *const *)m->endpoint_key_hashes,
					 m->n_endpoint_key_hashes);
		query_free(r, q);
		return;
	}
}

static void on_ack(kaa__router *r, const char *from, uint64_t seq)
{
	pend *p = pend_find(r, seq);
	if (!p || strcmp(p->node, from) != 0)
		return;
	job *j = p->job;
	enum pend_kind k = p->kind;
	pend_unlink(r, p);
	if (k == P_ROUTE)
		job_done(r, j, KAA_OK);
	else if (k == P_DELIVER && --j->n_out == 0)
		job_done(r, j, KAA_OK);
}

static void do_frame(kaa__router *r, item *it)
{
	Kaa__Cluster__V1__InternodeFrame *f =
		kaa__cluster__v1__internode_frame__unpack(NULL, it->len, it->bytes);
	if (!f)
		return; /* internode decoded it already */
	switch (f->body_case) {
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_ACK:
		if (f->ack)
			on_ack(r, it->node, f->ack->seq);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_ROUTE_EVENT:
		on_route_event(r, it->node, f->seq, f->route_event);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_DELIVER_EVENT:
		on_deliver_event(r, it->node, f->seq, f->deliver_event);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_ENDPOINT_LOCATION:
		on_location(r, it->node, f->seq, f->endpoint_location);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_OWNER_NOTICE:
		on_notice(r, it->node, f->seq, f->owner_notice);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_LISTENERS_QUERY:
		on_listeners_query(r, it->node, f->listeners_query);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_LISTENERS_ANSWER:
		on_listeners_answer(r, it->node, f->listeners_answer);
		break;
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PING: /* internode's own */
	case KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PONG: break;
	default:
		KAA_WARN(MOD, "unknown_frame node=%s from=%s kind=%d", r->node_id, it->node,
			 (int)f->body_case);
		break;
	}
	kaa__cluster__v1__internode_frame__free_unpacked(f, NULL);
}

/* ---- worker: timers -------------------------------------------------------------- */

typedef struct owner_ref {
	int64_t app_id;
	char *owner;
} owner_ref;

typedef struct owner_list {
	kaa__router *r;
	owner_ref *v;
	size_t n, cap;
} owner_list;

static void collect_foreign(void *ud, int64_t app_id, const char *owner)
{
	owner_list *l = ud;
	if (is_self(l->r, home_of(l->r, app_id, owner)))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->v = kaa__xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n].app_id = app_id;
	l->v[l->n].owner = kaa__xstrdup(owner);
	l->n++;
}

/* Forgets the owners whose home is another node now. */
static void forget_foreign(kaa__router *r)
{
	owner_list l = {.r = r};
	kaa__owner_dir_each_owner(r->dir, collect_foreign, &l);
	for (size_t i = 0; i < l.n; i++) {
		kaa__owner_dir_forget_owner(r->dir, l.v[i].app_id, l.v[i].owner);
		free(l.v[i].owner);
	}
	if (l.n)
		KAA_INFO(MOD, "owners_handed_off node=%s owners=%zu", r->node_id, l.n);
	free(l.v);
}

static void tick(kaa__router *r)
{
	int64_t now = kaa__now_ms();
	bool settle_end = r->settle_pending && now >= r->settle_until;
	if (settle_end) {
		r->settle_pending = false;
		forget_foreign(r);
		r->forget_at = 0;
	} else if (r->forget_at && now >= r->forget_at) {
		r->forget_at = 0;
		forget_foreign(r);
	}
	for (size_t b = 0; b < NB; b++)
		for (job *j = r->jobs[b], *nx; j; j = nx) {
			nx = j->next;
			if (now >= j->deadline_ms) {
				if (j->local) {
					kaa__counter_inc(r->m_timeouts);
					KAA_WARN(MOD,
						 "route_timeout node=%s app=%" PRId64
						 " owner=%s source=%s seq=%" PRIu64,
						 r->node_id, j->ev.app_id, j->ev.owner,
						 j->ev.source, j->ev.seq);
					job_done(r, j, KAA_ERR_TIMEOUT);
				} else {
					job_free(r, j);
				}
				nx = r->jobs[b]; /* job_done may have freed others: rescan */
				continue;
			}
			if (settle_end && j->state == J_SETTLE) {
				job_step(r, j);
				nx = r->jobs[b];
			}
		}
	for (size_t b = 0; b < NB; b++)
		for (query *q = r->queries[b], *nx; q; q = nx) {
			nx = q->next;
			if (now >= q->deadline_ms) {
				if (q->local && r->cbs.listeners) {
					kaa__counter_inc(r->m_timeouts);
					r->cbs.listeners(r->cbs.ud, q->token, KAA_ERR_TIMEOUT, NULL,
							 0);
				}
				query_free(r, q);
			} else if (q->waiting ? settle_end : q->sent_to && now >= q->next_send_ms) {
				query_step(r, q);
			}
		}
	for (size_t b = 0; b < NB; b++)
		for (pend *p = r->pends[b], *nx; p; p = nx) {
			nx = p->next;
			if ((p->kind == P_LOCATION || p->kind == P_NOTICE) && now >= p->expire_ms) {
				KAA_WARN(MOD, "frame_expired node=%s peer=%s kind=%d", r->node_id,
					 p->node, p->kind);
				pend_unlink(r, p);
				continue;
			}
			if (now < p->next_send_ms)
				continue;
			if (p->kind == P_ROUTE &&
			    strcmp(home_of(r, p->job->ev.app_id, p->job->ev.owner), p->node) != 0) {
				/* the home moved (or the views disagreed and a hop limit
				 * dropped it): send it where it belongs now */
				job *j = p->job;
				pend_unlink(r, p);
				kaa__counter_inc(r->m_rerouted);
				job_step(r, j); /* frees no other pend: j had only p */
				continue;
			}
			p->next_send_ms = now + RESEND_EVERY_MS;
			if (!kaa__internode_connected(r->in, p->node))
				continue; /* its queue holds a copy; re-sent once connected */
			if (kaa__internode_send_packed(r->in, p->node, p->buf, p->len) == KAA_OK)
				kaa__counter_inc(r->m_resent);
		}
	kaa__gauge_set(r->m_pending, (double)r->n_pends);
}

static void process(kaa__router *r, item *it)
{
	switch (it->kind) {
	case IT_NODES: ring_apply(r, it); break;
	case IT_LOCATION: do_location(r, it); break;
	case IT_ROUTE: do_route(r, it); break;
	case IT_LISTENERS: do_listeners(r, it); break;
	case IT_NOTICE: do_notice(r, it); break;
	case IT_FRAME: do_frame(r, it); break;
	}
}

static void *worker_main(void *arg)
{
	kaa__router *r = arg;
	int64_t next_tick = kaa__now_ms() + TICK_MS;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		while (!r->head && !r->stop && kaa__now_ms() < next_tick) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t wait = next_tick - kaa__now_ms();
			if (wait < 0)
				wait = 0;
			ts.tv_sec += wait / 1000;
			ts.tv_nsec += (wait % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&r->cond, &r->mu, &ts);
		}
		if (r->stop) {
			pthread_mutex_unlock(&r->mu);
			break;
		}
		item *batch = r->head;
		r->head = r->tail = NULL;
		r->n_items = 0;
		pthread_mutex_unlock(&r->mu);
		while (batch) {
			item *it = batch;
			batch = it->next;
			process(r, it);
			item_free(it);
		}
		if (kaa__now_ms() >= next_tick) {
			tick(r);
			next_tick = kaa__now_ms() + TICK_MS;
		}
	}
	return NULL;
}

/* ---- public --------------------------------------------------------------------- */

static void metrics_init(kaa__router *r, kaa__metrics *m)
{
	if (!m)
		return;
	char esc[2 * KAA_ROUTER_ID_MAX + 8], labels[sizeof(esc) + 16];
	kaa__metrics_escape_label_value(r->node_id, esc, sizeof(esc));
	snprintf(labels, sizeof(labels), "node=\"%s\"", esc);
	r->m_routed =
		kaa__metrics_counter(m, "kaa_router_events_routed_total",
				     "Events routed by this node as their owner's home.", labels);
	r->m_delivered =
		kaa__metrics_counter(m, "kaa_router_events_delivered_total",
				     "Event deliveries to endpoints on this node.", labels);
	r->m_resent = kaa__metrics_counter(m, "kaa_router_frames_resent_total",
					   "Internode frames re-sent for want of an Ack.", labels);
	r->m_rerouted = kaa__metrics_counter(
		m, "kaa_router_events_rerouted_total",
		"Events re-sent to a new home after their home left the ring.", labels);
	r->m_forwarded = kaa__metrics_counter(
		m, "kaa_router_events_forwarded_total",
		"RouteEvents passed on by a node that is not the owner's home in its view.",
		labels);
	r->m_timeouts = kaa__metrics_counter(m, "kaa_router_timeouts_total",
					     "Routes and listener queries that timed out.", labels);
	r->m_pending = kaa__metrics_gauge(m, "kaa_router_pending_frames",
					  "Internode frames waiting for an Ack.", labels);
}

int kaa__router_new(const kaa__router_opts *o, kaa__router **out)
{
	if (!o || !out || !id_ok(o->node_id) || !id_ok(o->cluster))
		return KAA_ERR_INVAL;
	*out = NULL;
	int rc = KAA_OK;
	kaa__router *r = kaa__xcalloc(1, sizeof(*r));
	r->node_id = kaa__xstrdup(o->node_id);
	r->cluster = kaa__xstrdup(o->cluster);
	r->cbs = o->cbs;
	r->port = -1;
	r->dir = kaa__owner_dir_new();
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	r->next_seq = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	r->next_qid = 1;
	r->ring = kaa__xcalloc(1, sizeof(*r->ring));
	r->ring[0].id = kaa__xstrdup(r->node_id);
	r->ring[0].host = kaa__xstrdup("");
	r->n_ring = 1;
	r->ring_ids = kaa__xcalloc(1, sizeof(*r->ring_ids));
	r->ring_ids[0] = r->ring[0].id;
	metrics_init(r, o->metrics);
	if (o->port >= 0) {
		kaa__internode_opts io = {.node_id = o->node_id,
					  .cluster = o->cluster,
					  .bind_host = o->bind_host,
					  .port = o->port,
					  .on_frame = on_frame,
					  .ud = r,
					  .metrics = o->metrics};
		rc = kaa__internode_new(&io, &r->in);
		if (rc != KAA_OK) {
			KAA_ERROR(MOD, "internode_failed node=%s port=%d err=%s", r->node_id,
				  o->port, kaa_strerror(rc));
			goto out;
		}
		r->port = kaa__internode_port(r->in);
	}
	if (pthread_create(&r->thread, NULL, worker_main, r) != 0) {
		rc = KAA_ERR_NOMEM;
		goto out;
	}
	KAA_INFO(MOD, "started node=%s internode_port=%d", r->node_id, r->port);
	*out = r;
out:
	if (rc != KAA_OK) {
		/* no worker thread: free the rest by hand */
		kaa__internode_free(r->in);
		while (r->head) {
			item *it = r->head;
			r->head = it->next;
			item_free(it);
		}
		kaa__owner_dir_free(r->dir);
		free(r->ring[0].id);
		free(r->ring[0].host);
		free(r->ring);
		free(r->ring_ids);
		pthread_cond_destroy(&r->cond);
		pthread_mutex_destroy(&r->mu);
		free(r->node_id);
		free(r->cluster);
		free(r);
	}
	return rc;
}

int kaa__router_port(const kaa__router *r)
{
	return r ? r->port : -1;
}

void kaa__router_free(kaa__router *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	kaa__internode_free(r->in); /* no on_frame after this */
	while (r->head) {
		item *it = r->head;
		r->head = it->next;
		item_free(it);
	}
	for (size_t b = 0; b < NB; b++) /* pends first: they point at jobs */
		while (r->pends[b])
			pend_unlink(r, r->pends[b]);
	for (size_t b = 0; b < NB; b++) {
		while (r->jobs[b])
			job_free(r, r->jobs[b]);
		while (r->queries[b])
			query_free(r, r->queries[b]);
	}
	for (size_t i = 0; i < r->n_ring; i++) {
		free(r->ring[i].id);
		free(r->ring[i].host);
	}
	free(r->ring);
	free(r->ring_ids);
	free(r->last_sig);
	kaa__owner_dir_free(r->dir);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->mu);
	free(r->node_id);
	free(r->cluster);
	free(r);
}

void kaa__router_set_nodes(kaa__router *r, const kaa__router_node *nodes, size_t n)
{
	if (!r || !r->in || (n && !nodes))
		return;
	/* the usable entries, and their signature to skip an unchanged list */
	item *it = item_new(IT_NODES);
	it->nodes = n ? kaa__xcalloc(n, sizeof(*it->nodes)) : NULL;
	size_t sig_len = 1;
	for (size_t i = 0; i < n; i++) {
		const kaa__router_node *x = &nodes[i];
		if (!id_ok(x->id))
			continue;
		bool self = strcmp(x->id, r->node_id) == 0;
		if (!self && (!id_ok(x->host) || x->port <= 0 || x->port > 65535))
			continue;
		bool dup = false;
		for (size_t k = 0; k < it->n_nodes && !dup; k++)
			dup = strcmp(it->nodes[k].id, x->id) == 0;
		if (dup)
			continue;
		it->nodes[it->n_nodes].id = kaa__xstrdup(x->id);
		it->nodes[it->n_nodes].host = kaa__xstrdup(x->host ? x->host : "");
		it->nodes[it->n_nodes].port = x->port;
		sig_len += strlen(x->id) + strlen(it->nodes[it->n_nodes].host) + 16;
		it->n_nodes++;
	}
	char *sig = kaa__xmalloc(sig_len);
	size_t w = 0;
	sig[0] = '\0';
	for (size_t i = 0; i < it->n_nodes; i++)
		w += (size_t)snprintf(sig + w, sig_len - w, "%s\x1f%s\x1f%d\x1e", it->nodes[i].id,
				      it->nodes[i].host, it->nodes[i].port);
	pthread_mutex_lock(&r->mu);
	bool same = r->last_sig && strcmp(r->last_sig, sig) == 0;
	pthread_mutex_unlock(&r->mu);
	if (same) {
		free(sig);
		item_free(it);
		return;
	}
	if (push(r, it) != KAA_OK) {
		free(sig);
		return;
	}
	pthread_mutex_lock(&r->mu);
	free(r->last_sig);
	r->last_sig = sig;
	pthread_mutex_unlock(&r->mu);
}

int kaa__router_location(kaa__router *r, int64_t app_id, const char *owner_id, const char *ekh,
			 bool connected, const char *const *sinks, size_t n_sinks)
{
	if (!r || !id_ok(owner_id) || !id_ok(ekh) || (n_sinks && !sinks))
		return KAA_ERR_INVAL;
	if (n_sinks > KAA_ROUTER_SINKS_MAX)
		return KAA_ERR_TOO_BIG;
	for (size_t i = 0; i < n_sinks; i++)
		if (!id_ok(sinks[i]))
			return KAA_ERR_INVAL;
	item *it = item_new(IT_LOCATION);
	it->app_id = app_id;
	it->owner = kaa__xstrdup(owner_id);
	it->ekh = kaa__xstrdup(ekh);
	it->connected = connected;
	it->list = strv_dup(sinks, n_sinks);
	it->n_list = n_sinks;
	return push(r, it);
}

int kaa__router_route(kaa__router *r, const kaa__router_event *ev, uint64_t token)
{
	if (!r || !ev || !id_ok(ev->owner_id) || !id_ok(ev->source_key_hash) || !id_ok(ev->fqn) ||
	    (ev->target && strlen(ev->target) > KAA_ROUTER_ID_MAX) || !ev->body_json)
		return KAA_ERR_INVAL;
	if (strlen(ev->body_json) > KAA_ROUTER_BODY_MAX)
		return KAA_ERR_TOO_BIG;
	item *it = item_new(IT_ROUTE);
	evc_set(&it->ev, ev);
	it->token = token;
	return push(r, it);
}

int kaa__router_listeners(kaa__router *r, int64_t app_id, const char *owner_id, const char *asker,
			  const char *const *fqns, size_t n, uint64_t token)
{
	if (!r || !id_ok(owner_id) || !id_ok(asker) || !fqns || n == 0)
		return KAA_ERR_INVAL;
	if (n > KAA_ROUTER_FQNS_MAX)
		return KAA_ERR_TOO_BIG;
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++) {
		if (!id_ok(fqns[i]))
			return KAA_ERR_INVAL;
		bytes += strlen(fqns[i]);
	}
	if (bytes > KAA_ROUTER_FQNS_BYTES)
		return KAA_ERR_TOO_BIG;
	item *it = item_new(IT_LISTENERS);
	it->app_id = app_id;
	it->owner = kaa__xstrdup(owner_id);
	it->ekh = kaa__xstrdup(asker);
	it->list = strv_dup(fqns, n);
	it->n_list = n;
	it->token = token;
	return push(r, it);
}

int kaa__router_notice(kaa__router *r, const char *node_id, int64_t app_id, const char *ekh,
		       const char *owner_id, const char *by_ekh)
{
	if (!r || !id_ok(node_id) || !id_ok(ekh) || !id_ok(by_ekh) ||
	    (owner_id && !id_ok(owner_id)))
		return KAA_ERR_INVAL;
	item *it = item_new(IT_NOTICE);
	it->node = kaa__xstrdup(node_id);
	it->app_id = app_id;
	it->ekh = kaa__xstrdup(ekh);
	it->owner = dup_or_null(owner_id);
	it->by = kaa__xstrdup(by_ekh);
	return push(r, it);
}

int kaa__router_home(kaa__router *r, int64_t app_id, const char *owner_id, char *buf, size_t size)
{
	if (!r || !id_ok(owner_id) || !buf || !size)
		return KAA_ERR_INVAL;
	int rc = KAA_OK;
	pthread_mutex_lock(&r->mu);
	const char *home = r->node_id;
	if (r->in && r->n_ring) {
		const char **ids = kaa__xcalloc(r->n_ring, sizeof(*ids));
		for (size_t i = 0; i < r->n_ring; i++)
			ids[i] = r->ring[i].id;
		char key[KAA_ROUTER_ID_MAX + 32];
		snprintf(key, sizeof(key), "%" PRId64 "/%s", app_id, owner_id);
		long i = kaa__rendezvous_pick(key, ids, r->n_ring);
		free(ids);
		if (i >= 0)
			home = r->ring[i].id;
	}
	if (strlen(home) >= size)
		rc = KAA_ERR_TOO_BIG;
	else
		strcpy(buf, home);
	pthread_mutex_unlock(&r->mu);
	return rc;
}
