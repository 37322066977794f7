/*
 * leader_jobs.c - the singletons the control leader runs (leader_jobs.h).
 */
#include "control/leader_jobs.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "coord/keys.h"
#include "coord/node_record.h"
#include "coord/rebalance.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kaa__leader_jobs {
	kaa__meta_store *store;
	kaa__coord *coord;
	const char *cluster;
	int64_t last_expiry_ms;
	double rb_threshold;
	int64_t rb_min_sessions;
	int rb_interval_ms, rb_cooldown_ms;
	int64_t rb_last_check_ms, rb_last_plan_ms;
	int64_t rb_last_total; /* sessions on the operations nodes when the last plan was made */
	kaa__counter *m_rb_checks, *m_rb_plans; /* NULL until set_metrics */
};

kaa__leader_jobs *kaa__leader_jobs_new(kaa__meta_store *store, kaa__coord *coord,
				       const char *cluster)
{
	kaa__leader_jobs *j = kaa__xcalloc(1, sizeof(*j));
	j->store = store;
	j->coord = coord;
	j->cluster = cluster;
	kaa__leader_jobs_set_rebalance(j, 0.2, 50, 30000, 60000);
	return j;
}

void kaa__leader_jobs_free(kaa__leader_jobs *j)
{
	free(j);
}

/*
 * The leader's repair of application revisions in etcd: a replica that fails
 * to publish after a commit (etcd down, or the replica died in between) only
 * logs it, so every 10 s the leader compares each application's app_rev in
 * the store with /kaa/<cluster>/apps/<id>/rev and puts the newer one; keys of
 * applications that no longer exist are removed. O(applications) store reads
 * and one etcd range per pass.
 */
static int64_t etcd_rev_of(const kaa__kv_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].key, key) != 0)
			continue;
		const char *v = (const char *)l->items[i].value;
		const char *r = v ? strstr(v, "\"rev\":") : NULL;
		return r ? strtoll(r + 6, NULL, 10) : -1;
	}
	return -1;
}

static void republish_app_revs(kaa__leader_jobs *j)
{
	char prefix[256], key[320], val[64];
	kaa__kv_list l = {0};
	kaa__meta_page tenants = {0}, apps = {0};
	size_t seen = 0, repaired = 0;
	int64_t *live = NULL;
	size_t n_live = 0, cap_live = 0;
	kaa__key_apps(prefix, sizeof(prefix), j->cluster);
	if (kaa__coord_range(j->coord, prefix, true, &l) != KAA_OK)
		return;
	kaa__meta_query tq = {.limit = KAA_META_LIMIT_MAX};
	char *tcursor = NULL;
	do {
		tq.cursor = tcursor;
		int rc = kaa__meta_list(j->store, KAA_META_TENANT, &tq, &tenants);
		free(tcursor);
		tcursor = NULL;
		if (rc != KAA_OK)
			goto out;
		for (size_t t = 0; t < tenants.n; t++) {
			kaa__meta_query aq = {.parent_id = tenants.items[t].id,
					      .limit = KAA_META_LIMIT_MAX};
			char *acursor = NULL;
			do {
				aq.cursor = acursor;
				rc = kaa__meta_list(j->store, KAA_META_APPLICATION, &aq, &apps);
				free(acursor);
				acursor = NULL;
				if (rc != KAA_OK)
					goto out;
				for (size_t a = 0; a < apps.n; a++) {
					const kaa__meta_obj *app = &apps.items[a];
					if (n_live == cap_live) {
						cap_live = cap_live ? cap_live * 2 : 64;
						live = kaa__xrealloc(live,
								     cap_live * sizeof(*live));
					}
					live[n_live++] = app->id;
					seen++;
					snprintf(key, sizeof(key), "%s%" PRId64 "/rev", prefix,
						 app->id);
					if (etcd_rev_of(&l, key) >= app->app_rev)
						continue;
					snprintf(val, sizeof(val), "{\"rev\":%" PRId64 "}",
						 app->app_rev);
					if (kaa__coord_put(j->coord, key, val, strlen(val), 0,
							   NULL) == KAA_OK)
						repaired++;
				}
				if (apps.next_cursor)
					acursor = kaa__xstrdup(apps.next_cursor);
				kaa__meta_page_clear(&apps);
			} while (acursor);
		}
		if (tenants.next_cursor)
			tcursor = kaa__xstrdup(tenants.next_cursor);
		kaa__meta_page_clear(&tenants);
	} while (tcursor);
	/* Keys of deleted applications: only after a complete walk. */
	for (size_t i = 0; i < l.n; i++) {
		const char *rest = l.items[i].key + strlen(prefix);
		int64_t id = strtoll(rest, NULL, 10);
		bool found = false;
		for (size_t n = 0; n < n_live && !found; n++)
			found = live[n] == id;
		if (!found) {
			snprintf(key, sizeof(key), "%s%" PRId64 "/", prefix, id);
			if (kaa__coord_delete(j->coord, key, true, NULL) == KAA_OK)
				repaired++;
		}
	}
	if (repaired)
		KAA_INFO("control", "app_revs_repaired count=%zu apps=%zu", repaired, seen);
out:
	kaa__meta_page_clear(&tenants);
	kaa__meta_page_clear(&apps);
	kaa__kv_list_clear(&l);
	free(live);
}

void kaa__leader_jobs_set_rebalance(kaa__leader_jobs *j, double threshold, int64_t min_sessions,
				    int interval_ms, int cooldown_ms)
{
	j->rb_threshold = threshold < 0 ? 0 : threshold;
	j->rb_min_sessions = min_sessions < 1 ? 1 : min_sessions;
	j->rb_interval_ms = interval_ms < 0 ? 0 : interval_ms;
	j->rb_cooldown_ms = cooldown_ms < KAA_REBALANCE_MIN_COOLDOWN_MS
				    ? KAA_REBALANCE_MIN_COOLDOWN_MS
				    : cooldown_ms;
}

void kaa__leader_jobs_set_metrics(kaa__leader_jobs *j, kaa__metrics *m)
{
	j->m_rb_checks =
		kaa__metrics_counter(m, "kaa_control_rebalance_checks_total",
				     "Rebalancing passes run by this node as leader", NULL);
	j->m_rb_plans = kaa__metrics_counter(m, "kaa_control_rebalance_plans_total",
					     "Rebalancing plans published by this node", NULL);
}

/* How long a plan's devices may take to show up again before the leader
 * plans regardless. */
#define REBALANCE_SETTLE_MAX_MS 60000

/* One rebalancing pass: plan from the registry records, publish if any. */
static void rebalance(kaa__leader_jobs *j, int64_t now)
{
	char prefix[256], key[300];
	kaa__kv_list l = {0}, cur = {0};
	kaa__node_record *recs = NULL;
	kaa__rebalance_node *nodes = NULL;
	size_t n = 0;
	char *json = NULL;
	size_t len = 0;
	kaa__key_nodes(prefix, sizeof(prefix), j->cluster);
	kaa__key_rebalance(key, sizeof(key), j->cluster);
	if (kaa__coord_range(j->coord, prefix, true, &l) != KAA_OK)
		return;
	recs = kaa__xcalloc(l.n, sizeof(*recs));
	nodes = kaa__xcalloc(l.n, sizeof(*nodes));
	for (size_t i = 0; i < l.n; i++) {
		kaa__node_record *r = &recs[n];
		if (kaa__node_record_decode(l.items[i].value, l.items[i].value_len, r) != KAA_OK)
			continue;
		if (!kaa__node_record_has_service(r, "operations")) {
			kaa__node_record_clear(r);
			continue;
		}
		nodes[n].id = r->id;
		nodes[n].sessions = r->sessions;
		nodes[n].draining = r->draining;
		n++;
	}
	/* The last plan's devices are still on their way while the total is
	 * below what it was (they closed their sessions and reconnect over the
	 * spread window): planning now would count them as missing from their
	 * targets and move others twice. Wait, but not forever (devices that
	 * left for good must not stop rebalancing). */
	int64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += nodes[i].sessions;
	if (j->rb_last_plan_ms && now - j->rb_last_plan_ms < REBALANCE_SETTLE_MAX_MS &&
	    total * 100 < j->rb_last_total * 98)
		goto out;
	kaa__rebalance_plan plan = {.created_ms = now};
	int64_t moved =
		kaa__rebalance_compute(nodes, n, j->rb_threshold, j->rb_min_sessions, &plan);
	if (moved == 0)
		goto out;
	/* seq continues from the published plan, so nodes apply each once */
	if (kaa__coord_range(j->coord, key, false, &cur) == KAA_OK && cur.n == 1) {
		kaa__rebalance_plan old;
		if (kaa__rebalance_decode(cur.items[0].value, cur.items[0].value_len, &old) ==
		    KAA_OK) {
			plan.seq = old.seq;
			kaa__rebalance_plan_clear(&old);
		}
	}
	plan.seq++;
	if (kaa__rebalance_encode(&plan, &json, &len) != KAA_OK)
		goto out;
	if (kaa__coord_put(j->coord, key, json, len, 0, NULL) == KAA_OK) {
		j->rb_last_plan_ms = now;
		j->rb_last_total = total;
		if (j->m_rb_plans)
			kaa__counter_inc(j->m_rb_plans);
		KAA_INFO("control", "rebalance_planned seq=%" PRId64 " moves=%zu sessions=%" PRId64,
			 plan.seq, plan.n_moves, moved);
	}
out:
	free(json);
	for (size_t i = 0; i < n; i++)
		kaa__node_record_clear(&recs[i]);
	free(recs);
	free(nodes);
	kaa__kv_list_clear(&l);
	kaa__kv_list_clear(&cur);
}

void kaa__leader_jobs_tick(kaa__leader_jobs *j)
{
	int64_t now = kaa__wall_ms();
	if (j->rb_interval_ms > 0 && now - j->rb_last_check_ms >= j->rb_interval_ms &&
	    now - j->rb_last_plan_ms >= j->rb_cooldown_ms) {
		j->rb_last_check_ms = now;
		rebalance(j, now);
		if (j->m_rb_checks)
			kaa__counter_inc(j->m_rb_checks);
	}
	if (now - j->last_expiry_ms < 10000)
		return;
	j->last_expiry_ms = now;
	int64_t deleted = 0;
	int rc = kaa__meta_notifications_expire(j->store, now, &deleted);
	if (rc != KAA_OK)
		KAA_WARN("control", "notification_expiry_failed err=%s", kaa_strerror(rc));
	else if (deleted > 0)
		KAA_INFO("control", "notifications_expired count=%" PRId64, deleted);
	republish_app_revs(j);
	/* Node records are written under leases; a record without one was left
	 * by hand or by a broken writer and would never go away. */
	char prefix[256];
	kaa__kv_list l;
	kaa__key_nodes(prefix, sizeof(prefix), j->cluster);
	if (kaa__coord_range(j->coord, prefix, true, &l) == KAA_OK) {
		for (size_t i = 0; i < l.n; i++) {
			if (l.items[i].lease != 0)
				continue;
			bool ok = false;
			kaa__coord_cas(j->coord, l.items[i].key, l.items[i].mod_rev, NULL, 0, 0,
				       &ok, NULL);
			if (ok)
				KAA_WARN("control", "stale_node_key_removed key=%s",
					 l.items[i].key);
		}
		kaa__kv_list_clear(&l);
	}
}
