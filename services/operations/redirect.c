/*
 * redirect.c - drain and rebalancing: Redirect frames to the connected
 * devices (redirect.h).
 */
#include "operations/redirect.h"

#include "operations/ops_send.h"
#include "operations/ops_sessions.h"

#include "base/clock.h"
#include "bootstrap/bootstrap.h"
#include "base/error.h"
#include "base/log.h"
#include "proto/device_url.h"
#include "coord/rebalance.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;

static void redirect_one(kaa__operations *ops, kaa__session_id sid,
			 Kaa__Endpoint__V1__RedirectTarget **targets, size_t nt,
			 Kaa__Endpoint__V1__RedirectReason reason, int spread_ms)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Redirect r = KAA__ENDPOINT__V1__REDIRECT__INIT;
	r.targets = targets;
	r.n_targets = nt;
	r.reason = reason;
	/* spread the reconnections over spread_ms: no reconnect storm */
	r.retry_after_ms = (uint32_t)(rand() % spread_ms);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_REDIRECT;
	f.redirect = &r;
	kaa__opl_send(ops, sid, &f);
	ops->io.close(ops->io.ud, sid, OPS_CLOSE_NORMAL);
}

/* A Redirect target for node r (borrowed: the target points into r): its
 * listener, and its preferred advertised URL that a device can parse. A
 * record without URLs comes from an older node, which did not say whether
 * it speaks TLS: assume it does as this node does. */
static void fill_target(Kaa__Endpoint__V1__RedirectTarget *t, const kaa__node_record *r, int port,
			uint32_t weight, bool own_tls)
{
	kaa__device_url u;
	t->host = r->host;
	t->port = (uint32_t)port;
	t->weight = weight;
	t->tls = r->tls || (r->n_advertise == 0 && own_tls);
	for (size_t i = 0; i < r->n_advertise; i++)
		if (strlen(r->advertise[i]) <= KAA_NODE_ADVERTISE_MAX_BYTES &&
		    kaa__device_url_parse(r->advertise[i], KAA__URL_WS, &u) == KAA_OK) {
			t->url = r->advertise[i];
			break;
		}
}

size_t kaa__opl_drain(kaa__operations *ops, int64_t deadline_ms)
{
	kaa__node_record *recs = NULL;
	size_t nrec = 0, nt = 0;
	Kaa__Endpoint__V1__RedirectTarget tgt[64], *tp[64];
	kaa__registry *reg = atomic_load(&ops->registry);

	if (deadline_ms <= 0)
		deadline_ms = kaa__wall_ms() + ops->drain_timeout_ms;
	/* a drain already running (etcd key, then SIGTERM) follows the newest deadline */
	atomic_store(&ops->drain_deadline, deadline_ms);
	atomic_store(&ops->drain_cancel, false);
	atomic_store(&ops->draining, true);
	ops->io.set_accepting(ops->io.ud, false);
	if (reg && kaa__registry_nodes(reg, &recs, &nrec) == KAA_OK) {
		for (size_t i = 0; i < nrec && nt < 64; i++) {
			const kaa__node_record *r = &recs[i];
			int port = kaa__node_record_port(r, "operations");
			if (!kaa__node_record_has_service(r, "operations") || r->draining ||
			    port <= 0 || !r->host || strcmp(r->id, ops->node_id) == 0)
				continue;
			Kaa__Endpoint__V1__RedirectTarget t =
				KAA__ENDPOINT__V1__REDIRECT_TARGET__INIT;
			fill_target(&t, r, port, (uint32_t)kaa__bootstrap_weight(r), ops->tls);
			tgt[nt] = t;
			tp[nt] = &tgt[nt];
			nt++;
		}
	}
	KAA_INFO(MOD, "drain_start node=%s sessions=%zu targets=%zu deadline_ms=%" PRId64,
		 ops->node_id, ops->io.sessions(ops->io.ud), nt, deadline_ms);
	size_t left;
	for (;;) {
		size_t n = 0;
		ops_session **v = kaa__opl_sessions_snapshot(ops, 0, &n);
		size_t pending = 0;
		for (size_t i = 0; i < n; i++)
			pending += !v[i]->closed && !v[i]->redirected;
		/* ten batches over the time left, at least one session each */
		size_t batch = pending / 10 + 1;
		for (size_t i = 0; i < n && batch; i++) {
			ops_session *s = v[i];
			pthread_mutex_lock(&s->mu);
			if (!s->closed && !s->redirected) {
				s->redirected = true;
				redirect_one(
					ops, s->sid, tp, nt,
					KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_DRAIN,
					2000);
				batch--;
			}
			pthread_mutex_unlock(&s->mu);
		}
		kaa__opl_snapshot_free(v, n);
		left = ops->io.sessions(ops->io.ud);
		int64_t now = kaa__wall_ms();
		deadline_ms = atomic_load(&ops->drain_deadline);
		if (left == 0 || now >= deadline_ms || atomic_load(&ops->drain_cancel))
			break;
		int64_t step = (deadline_ms - now) / 20;
		if (step > 200)
			step = 200;
		if (step < 5)
			step = 5;
		/* pacing between batches (with jitter), not synchronisation */
		step = step / 2 + rand() % (step / 2 + 1);
		struct timespec ts = {.tv_sec = step / 1000, .tv_nsec = (step % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	kaa__node_records_free(recs, nrec);
	if (atomic_load(&ops->drain_cancel)) {
		atomic_store(&ops->draining, false);
		atomic_store(&ops->drain_cancel, false);
		ops->io.set_accepting(ops->io.ud, true);
	}
	KAA_INFO(MOD, "drain_done node=%s sessions_left=%zu", ops->node_id, left);
	return left;
}

/* ---- rebalancing ------------------------------------------------------------------------------------ */

/* Plans older than this are history (e.g. seen at start-up): not applied. */
#define REBALANCE_PLAN_MAX_AGE_MS 120000

/* Redirects up to n sessions to node `to` (from the registry view). */
static size_t rebalance_move(kaa__operations *ops, const char *to, int64_t n)
{
	kaa__node_record *recs = NULL;
	size_t nrec = 0, moved = 0;
	kaa__registry *reg = atomic_load(&ops->registry);
	Kaa__Endpoint__V1__RedirectTarget t = KAA__ENDPOINT__V1__REDIRECT_TARGET__INIT, *tp = &t;
	bool found = false;
	if (!reg || kaa__registry_nodes(reg, &recs, &nrec) != KAA_OK)
		return 0;
	for (size_t i = 0; i < nrec && !found; i++) {
		const kaa__node_record *r = &recs[i];
		int port = kaa__node_record_port(r, "operations");
		if (strcmp(r->id, to) != 0 || !kaa__node_record_has_service(r, "operations") ||
		    r->draining || port <= 0 || !r->host)
			continue;
		fill_target(&t, r, port, 1000, ops->tls);
		found = true;
	}
	if (found) {
		size_t cnt = 0;
		ops_session **v = kaa__opl_sessions_snapshot(ops, 0, &cnt);
		for (size_t i = 0; i < cnt && (int64_t)moved < n; i++) {
			ops_session *s = v[i];
			pthread_mutex_lock(&s->mu);
			if (!s->closed && !s->redirected) {
				s->redirected = true;
				redirect_one(
					ops, s->sid, &tp, 1,
					KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_REBALANCE,
					KAA_REBALANCE_SPREAD_MS);
				moved++;
			}
			pthread_mutex_unlock(&s->mu);
		}
		kaa__opl_snapshot_free(v, cnt);
	}
	kaa__node_records_free(recs, nrec);
	if (!found)
		KAA_WARN(MOD, "rebalance_target_unknown node=%s to=%s", ops->node_id, to);
	return moved;
}

void kaa__opl_rebalance_plan(kaa__operations *ops, const char *json, size_t len, bool apply)
{
	kaa__rebalance_plan p;
	if (kaa__rebalance_decode(json, len, &p) != KAA_OK) {
		KAA_WARN(MOD, "rebalance_plan_malformed bytes=%zu", len);
		return;
	}
	bool fresh = p.seq > ops->rebalance_seq &&
		     kaa__wall_ms() - p.created_ms < REBALANCE_PLAN_MAX_AGE_MS;
	if (p.seq > ops->rebalance_seq)
		ops->rebalance_seq = p.seq;
	for (size_t i = 0; apply && fresh && !atomic_load(&ops->draining) && i < p.n_moves; i++) {
		if (strcmp(p.moves[i].from, ops->node_id) != 0)
			continue;
		size_t moved = rebalance_move(ops, p.moves[i].to, p.moves[i].sessions);
		kaa__counter_add(ops->rebalance_redirects, moved);
		KAA_INFO(MOD,
			 "rebalance_applied node=%s seq=%" PRId64 " to=%s asked=%" PRId64
			 " redirected=%zu",
			 ops->node_id, p.seq, p.moves[i].to, p.moves[i].sessions, moved);
	}
	kaa__rebalance_plan_clear(&p);
}
