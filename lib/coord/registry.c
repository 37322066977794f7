#include "base/alloc.h"
#include "coord/registry.h"

#include "coord/keys.h"

#include "base/backoff.h"
#include "base/clock.h"
#include "base/error.h"
#include "coord/lease_keeper.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_WRITE_INTERVAL_MS 1000

struct kaa__registry {
	kaa__coord *coord;
	char *prefix; /* /kaa/<cluster>/nodes/ */
	char *key;    /* prefix + id */
	int64_t ttl_s;
	pthread_t thread;
	pthread_mutex_t mu; /* guards everything below */
	pthread_cond_t cond;
	kaa__node_record self;
	bool dirty;
	bool stop;
	bool wake;
	kaa__node_view view;
	atomic_bool registered;
	atomic_bool synced;
	atomic_bool have_snapshot;
	kaa__lease_keeper *keeper; /* registry thread only */
	kaa__watch *watch;
};

/* ---- the view ---------------------------------------------------------- */

static size_t view_find(const kaa__node_view *v, const char *id, bool *found)
{
	size_t lo = 0, hi = v->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(v->recs[mid].id, id);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

static void view_remove(kaa__node_view *v, const char *id)
{
	bool found;
	size_t pos = view_find(v, id, &found);
	if (!found)
		return;
	kaa__node_record_clear(&v->recs[pos]);
	memmove(&v->recs[pos], &v->recs[pos + 1], (v->n - pos - 1) * sizeof(*v->recs));
	v->n--;
}

static void view_put(kaa__node_view *v, const char *prefix, const kaa__kv *kv)
{
	const char *id = kv->key + strlen(prefix);
	kaa__node_record rec;
	bool found;
	size_t pos;

	if (kaa__node_record_decode(kv->value, kv->value_len, &rec) != KAA_OK ||
	    strcmp(rec.id, id) != 0) {
		if (rec.id)
			kaa__node_record_clear(&rec);
		v->skipped++;
		KAA_WARN("registry", "malformed_node_record key=%s", kv->key);
		view_remove(v, id);
		return;
	}
	pos = view_find(v, id, &found);
	if (found) {
		kaa__node_record_clear(&v->recs[pos]);
		v->recs[pos] = rec;
		return;
	}
	if (v->n == v->cap) {
		size_t ncap = v->cap ? v->cap * 2 : 8;
		v->recs = kaa__xrealloc(v->recs, ncap * sizeof(*v->recs));
		v->cap = ncap;
	}
	memmove(&v->recs[pos + 1], &v->recs[pos], (v->n - pos) * sizeof(*v->recs));
	v->recs[pos] = rec;
	v->n++;
}

void kaa__node_view_clear(kaa__node_view *v)
{
	for (size_t i = 0; i < v->n; i++)
		kaa__node_record_clear(&v->recs[i]);
	free(v->recs);
	memset(v, 0, sizeof(*v));
}

void kaa__node_view_reset(kaa__node_view *v, const char *prefix, const kaa__kv_list *snap)
{
	size_t skipped = v->skipped;
	kaa__node_view_clear(v);
	v->skipped = skipped;
	for (size_t i = 0; i < snap->n; i++)
		view_put(v, prefix, &snap->items[i]);
}

void kaa__node_view_apply(kaa__node_view *v, const char *prefix, const kaa__watch_event *ev,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strncmp(ev[i].kv.key, prefix, strlen(prefix)) != 0)
			continue;
		if (ev[i].type == KAA_WATCH_DELETE)
			view_remove(v, ev[i].kv.key + strlen(prefix));
		else
			view_put(v, prefix, &ev[i].kv);
	}
}

/* ---- watch callbacks ------------------------------------------------------ */

static void on_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	kaa__registry *r = ud;
	bool self_gone = false;
	pthread_mutex_lock(&r->mu);
	kaa__node_view_apply(&r->view, r->prefix, ev, n);
	for (size_t i = 0; i < n; i++)
		if (ev[i].type == KAA_WATCH_DELETE && strcmp(ev[i].kv.key, r->key) == 0)
			self_gone = true;
	if (self_gone && !r->stop) {
		/* Someone deleted our record (or our lease expired): write it again. */
		r->dirty = true;
		r->wake = true;
		pthread_cond_signal(&r->cond);
	}
	pthread_mutex_unlock(&r->mu);
}

static void on_reset(void *ud, const kaa__kv_list *snap)
{
	kaa__registry *r = ud;
	pthread_mutex_lock(&r->mu);
	kaa__node_view_reset(&r->view, r->prefix, snap);
	pthread_mutex_unlock(&r->mu);
	atomic_store(&r->have_snapshot, true);
	atomic_store(&r->synced, true);
}

static void on_connected(void *ud, bool up)
{
	kaa__registry *r = ud;
	/* Synced again on reconnect only if a snapshot was ever received:
	 * resumed events then keep the view exact. */
	if (!up)
		atomic_store(&r->synced, false);
	else if (atomic_load(&r->have_snapshot))
		atomic_store(&r->synced, true);
}

static void on_lost(void *ud)
{
	kaa__registry *r = ud;
	atomic_store(&r->registered, false);
	pthread_mutex_lock(&r->mu);
	r->wake = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
}

/* ---- the registration thread ----------------------------------------------- */

static bool wait_locked(kaa__registry *r, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (!r->wake && !r->stop)
		if (pthread_cond_timedwait(&r->cond, &r->mu, &ts) != 0)
			break;
	r->wake = false;
	return r->stop;
}

static void *registry_main(void *arg)
{
	kaa__registry *r = arg;
	kaa__backoff bo;
	int64_t last_write = -MIN_WRITE_INTERVAL_MS, last_log = -100000;
	int64_t delay = 0;

	kaa__backoff_init(&bo, 200, 5000);
	pthread_mutex_lock(&r->mu);
	for (;;) {
		if (delay > 0 && wait_locked(r, delay))
			break;
		if (r->stop)
			break;
		delay = 0;
		pthread_mutex_unlock(&r->mu);

		int rc = KAA_OK;
		if (r->keeper && !kaa__lease_keeper_alive(r->keeper)) {
			kaa__lease_keeper_free(r->keeper, false);
			r->keeper = NULL;
		}
		if (!r->keeper) {
			atomic_store(&r->registered, false);
			rc = kaa__lease_keeper_new(r->coord, r->ttl_s, on_lost, r, &r->keeper);
			if (rc == KAA_OK) {
				pthread_mutex_lock(&r->mu);
				r->dirty = true;
				pthread_mutex_unlock(&r->mu);
			}
		}
		pthread_mutex_lock(&r->mu);
		if (rc == KAA_OK && r->dirty) {
			int64_t since = kaa__now_ms() - last_write;
			if (since < MIN_WRITE_INTERVAL_MS) {
				delay = MIN_WRITE_INTERVAL_MS - since;
				continue;
			}
			char *json = NULL;
			size_t len = 0;
			rc = kaa__node_record_encode(&r->self, &json, &len);
			r->dirty = false;
			pthread_mutex_unlock(&r->mu);
			if (rc == KAA_OK)
				rc = kaa__coord_put(r->coord, r->key, json, len,
						    kaa__lease_keeper_id(r->keeper), NULL);
			free(json);
			pthread_mutex_lock(&r->mu);
			if (rc == KAA_OK) {
				last_write = kaa__now_ms();
				if (!atomic_load(&r->registered))
					KAA_INFO("registry", "registered key=%s lease=%lld", r->key,
						 (long long)kaa__lease_keeper_id(r->keeper));
				atomic_store(&r->registered, true);
			} else {
				r->dirty = true;
			}
		}
		if (rc != KAA_OK) {
			if (rc == KAA_ERR_LEASE_LOST && r->keeper) {
				pthread_mutex_unlock(&r->mu);
				kaa__lease_keeper_free(r->keeper, false);
				pthread_mutex_lock(&r->mu);
				r->keeper = NULL;
			}
			if (kaa__now_ms() - last_log > 10000) {
				KAA_WARN("registry", "register_failed key=%s err=%s", r->key,
					 kaa_strerror(rc));
				last_log = kaa__now_ms();
			}
			delay = kaa__backoff_next(&bo);
			continue;
		}
		kaa__backoff_reset(&bo);
		if (!r->dirty)
			delay = 1000; /* also re-checks the keeper */
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

int kaa__registry_new(kaa__coord *c, const char *cluster, const kaa__node_record *self,
		      int64_t ttl_s, kaa__registry **out)
{
	kaa__registry *r;
	kaa__watch_cb cb = {.events = on_events, .reset = on_reset, .connected = on_connected};
	int rc;

	*out = NULL;
	if (!cluster || !*cluster || strchr(cluster, '/') || !self->id || !*self->id ||
	    strchr(self->id, '/') || ttl_s < 1)
		return KAA_ERR_INVAL;
	r = kaa__xcalloc(1, sizeof(*r));
	r->coord = c;
	r->ttl_s = ttl_s;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cond, NULL);
	char prefix[KAA__KEY_MAX];
	if (kaa__key_nodes(prefix, sizeof(prefix), cluster) < 0) {
		rc = KAA_ERR_INVAL;
		goto fail;
	}
	r->prefix = kaa__xstrdup(prefix);
	r->key = kaa__xasprintf("%s%s", r->prefix, self->id);
	rc = kaa__node_record_copy(&r->self, self);
	if (rc != KAA_OK)
		goto fail;
	r->dirty = true;
	cb.ud = r;
	rc = kaa__coord_watch(c, r->prefix, KAA_WATCH_PREFIX | KAA_WATCH_SNAPSHOT, 0, &cb,
			      &r->watch);
	if (rc != KAA_OK)
		goto fail;
	if (pthread_create(&r->thread, NULL, registry_main, r) != 0) {
		rc = KAA_ERR_IO;
		goto fail;
	}
	*out = r;
	return KAA_OK;
fail:
	kaa__coord_watch_free(r->watch);
	kaa__node_record_clear(&r->self);
	free(r->prefix);
	free(r->key);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cond);
	free(r);
	return rc;
}

int kaa__registry_update(kaa__registry *r, const kaa__node_record *self)
{
	kaa__node_record copy;
	int rc = kaa__node_record_copy(&copy, self);
	if (rc != KAA_OK)
		return rc;
	if (strcmp(copy.id, r->self.id) != 0) {
		kaa__node_record_clear(&copy);
		return KAA_ERR_INVAL;
	}
	pthread_mutex_lock(&r->mu);
	kaa__node_record_clear(&r->self);
	r->self = copy;
	r->dirty = true;
	r->wake = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	return KAA_OK;
}

bool kaa__registry_registered(kaa__registry *r)
{
	return atomic_load(&r->registered);
}

bool kaa__registry_view_synced(kaa__registry *r)
{
	return atomic_load(&r->synced);
}

int kaa__registry_nodes(kaa__registry *r, kaa__node_record **out, size_t *n)
{
	int rc = KAA_OK;
	pthread_mutex_lock(&r->mu);
	*n = 0;
	*out = kaa__xcalloc(r->view.n, sizeof(**out));
	for (size_t i = 0; i < r->view.n; i++) {
		rc = kaa__node_record_copy(&(*out)[i], &r->view.recs[i]);
		if (rc != KAA_OK) {
			kaa__node_records_free(*out, i);
			*out = NULL;
			goto out;
		}
	}
	*n = r->view.n;
out:
	pthread_mutex_unlock(&r->mu);
	return rc;
}

size_t kaa__registry_count(kaa__registry *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->view.n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

void kaa__node_records_free(kaa__node_record *recs, size_t n)
{
	if (!recs)
		return;
	for (size_t i = 0; i < n; i++)
		kaa__node_record_clear(&recs[i]);
	free(recs);
}

void kaa__registry_free(kaa__registry *r, bool deregister)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	kaa__coord_watch_free(r->watch);
	if (r->keeper && deregister)
		KAA_INFO("registry", "deregistering key=%s", r->key);
	kaa__lease_keeper_free(r->keeper, deregister);
	kaa__node_view_clear(&r->view);
	kaa__node_record_clear(&r->self);
	free(r->prefix);
	free(r->key);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cond);
	free(r);
}
