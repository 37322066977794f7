#include "coord/election.h"

#include "base/backoff.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "coord/lease_keeper.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct kaa__election {
	kaa__coord *coord;
	char *key;
	char *value;
	int64_t ttl_s;
	kaa__election_cb cb;
	kaa__lease_keeper *keeper; /* election thread only */
	kaa__watch *watch;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool wake; /* guarded by mu: key deleted or lease lost */
	bool stop; /* guarded by mu */
	atomic_bool leader;
	int64_t my_rev; /* mod revision of our key while leading */
};

static void poke(kaa__election *e)
{
	pthread_mutex_lock(&e->mu);
	e->wake = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->mu);
}

static void on_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ev[i].type == KAA_WATCH_DELETE)
			poke(ud);
}

static void on_reset(void *ud, const kaa__kv_list *snap)
{
	if (snap->n == 0)
		poke(ud);
}

static void on_lost(void *ud)
{
	poke(ud);
}

/* Waits up to ms or until poked/stopped; returns true when stopping. */
static bool wait_for(kaa__election *e, int64_t ms)
{
	struct timespec ts;
	bool stop;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&e->mu);
	while (!e->wake && !e->stop)
		if (pthread_cond_timedwait(&e->cond, &e->mu, &ts) != 0)
			break;
	e->wake = false;
	stop = e->stop;
	pthread_mutex_unlock(&e->mu);
	return stop;
}

static void set_leader(kaa__election *e, bool on)
{
	if (atomic_load(&e->leader) == on)
		return;
	atomic_store(&e->leader, on);
	KAA_INFO("election", "%s key=%s id=%s", on ? "elected" : "deposed", e->key, e->value);
	if (on && e->cb.elected)
		e->cb.elected(e->cb.ud);
	if (!on && e->cb.deposed)
		e->cb.deposed(e->cb.ud);
}

/* One campaign round: true when we hold the key afterwards. */
static int campaign(kaa__election *e, bool *won)
{
	int64_t lease = kaa__lease_keeper_id(e->keeper);
	kaa__kv cur;
	bool ok = false;
	int rc = kaa__coord_cas(e->coord, e->key, 0, e->value, strlen(e->value), lease, &ok, &cur);
	if (rc != KAA_OK)
		return rc;
	*won = ok || (cur.key && cur.lease == lease);
	kaa__kv_clear(&cur);
	if (*won) {
		kaa__kv kv;
		rc = kaa__coord_get(e->coord, e->key, &kv, NULL);
		if (rc == KAA_OK) {
			if (kv.lease == lease)
				e->my_rev = kv.mod_rev;
			else
				*won = false;
			kaa__kv_clear(&kv);
		} else if (rc == KAA_ERR_NOTFOUND) {
			*won = false;
			rc = KAA_OK;
		}
	}
	return rc;
}

/* While leading: true while the key still carries our lease. */
static bool still_ours(kaa__election *e)
{
	kaa__kv kv;
	int rc = kaa__coord_get(e->coord, e->key, &kv, NULL);
	if (rc == KAA_ERR_NOTFOUND)
		return false;
	if (rc != KAA_OK)
		return true; /* unknown: the lease deadline decides */
	bool ours = kv.lease == kaa__lease_keeper_id(e->keeper);
	kaa__kv_clear(&kv);
	return ours;
}

static void *election_main(void *arg)
{
	kaa__election *e = arg;
	kaa__backoff bo;
	int64_t last_log = 0;
	int64_t check_every = e->ttl_s * 1000 / 3;

	kaa__backoff_init(&bo, 200, 5000);
	for (;;) {
		if (e->keeper && !kaa__lease_keeper_alive(e->keeper)) {
			set_leader(e, false);
			kaa__lease_keeper_free(e->keeper, false);
			e->keeper = NULL;
		}
		if (!e->keeper) {
			int rc = kaa__lease_keeper_new(e->coord, e->ttl_s, on_lost, e, &e->keeper);
			if (rc != KAA_OK) {
				if (kaa__now_ms() - last_log > 10000) {
					KAA_WARN("election", "lease_grant_failed key=%s err=%s",
						 e->key, kaa_strerror(rc));
					last_log = kaa__now_ms();
				}
				if (wait_for(e, kaa__backoff_next(&bo)))
					break;
				continue;
			}
		}
		if (!atomic_load(&e->leader)) {
			bool won = false;
			int rc = campaign(e, &won);
			if (rc != KAA_OK) {
				if (kaa__now_ms() - last_log > 10000) {
					KAA_WARN("election", "campaign_failed key=%s err=%s",
						 e->key, kaa_strerror(rc));
					last_log = kaa__now_ms();
				}
				if (wait_for(e, kaa__backoff_next(&bo)))
					break;
				continue;
			}
			kaa__backoff_reset(&bo);
			if (won) {
				set_leader(e, true);
				continue;
			}
			/* Follower: the watch pokes us when the key goes away; the
			 * timeout is a safety net against a missed wake-up. */
			if (wait_for(e, 2000))
				break;
			continue;
		}
		if (wait_for(e, check_every > 200 ? check_every : 200))
			break;
		if (kaa__lease_keeper_alive(e->keeper) && !still_ours(e))
			set_leader(e, false);
	}
	return NULL;
}

int kaa__election_new(kaa__coord *c, const char *key, const char *value, int64_t ttl_s,
		      const kaa__election_cb *cb, kaa__election **out)
{
	kaa__election *e;
	kaa__watch_cb wcb = {.events = on_events, .reset = on_reset};
	int rc;

	*out = NULL;
	if (!key || !*key || !value || ttl_s < 1)
		return KAA_ERR_INVAL;
	e = kaa__xcalloc(1, sizeof(*e));
	e->coord = c;
	e->key = kaa__xstrdup(key);
	e->value = kaa__xstrdup(value);
	e->ttl_s = ttl_s;
	if (cb)
		e->cb = *cb;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cond, NULL);
	wcb.ud = e;
	rc = kaa__coord_watch(c, key, KAA_WATCH_SNAPSHOT, 0, &wcb, &e->watch);
	if (rc != KAA_OK)
		goto fail;
	if (pthread_create(&e->thread, NULL, election_main, e) != 0) {
		rc = KAA_ERR_IO;
		goto fail;
	}
	*out = e;
	return KAA_OK;
fail:
	kaa__coord_watch_free(e->watch);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cond);
	free(e->key);
	free(e->value);
	free(e);
	return rc;
}

bool kaa__election_is_leader(kaa__election *e)
{
	return atomic_load(&e->leader);
}

void kaa__election_free(kaa__election *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->thread, NULL);
	kaa__coord_watch_free(e->watch);
	if (atomic_load(&e->leader)) {
		bool ok = false;
		/* Delete only our own key version, never a successor's. */
		kaa__coord_cas(e->coord, e->key, e->my_rev, NULL, 0, 0, &ok, NULL);
		atomic_store(&e->leader, false);
		KAA_INFO("election", "resigned key=%s id=%s", e->key, e->value);
	}
	kaa__lease_keeper_free(e->keeper, true);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cond);
	free(e->key);
	free(e->value);
	free(e);
}
