/*
 * coord_local.c - the standalone (no etcd) backend of coord.h: an
 * in-process key-value store with etcd's semantics (a store revision
 * bumped by every write, leases, prefix watches with history).
 *
 * Locking: one mutex guards the store. Writers append events to each
 * matching watch's queue under that mutex; each watch's thread delivers
 * from its queue without holding the store lock, so callbacks may call
 * back into the store. A reaper thread expires leases every 100 ms.
 * History keeps the last HISTORY_MAX events; a watch starting before that
 * gets a reset snapshot, like a compacted etcd revision.
 */
#include "base/alloc.h"
#include "coord/coord_internal.h"
#include "base/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_MAX 4096

typedef struct lkv {
	kaa__kv kv;
} lkv;

typedef struct hist_ev {
	kaa__watch_event_type type;
	kaa__kv kv;
} hist_ev;

typedef struct qitem {
	struct qitem *next;
	bool is_reset;
	kaa__kv_list snapshot; /* is_reset */
	kaa__watch_event *evs; /* !is_reset */
	size_t n;
} qitem;

typedef struct local_watch {
	struct kaa__watch base;
	struct local_watch *next; /* in local.watches, guarded by local.mu */
	char *key;
	size_t key_len;
	bool prefix;
	kaa__watch_cb cb;
	pthread_t thread;
	pthread_mutex_t qmu;
	pthread_cond_t qcond;
	qitem *head, *tail;
	bool stop;
	_Atomic int64_t last_rev;
} local_watch;

typedef struct lease {
	int64_t id;
	int64_t ttl;
	int64_t expiry_ms;
} lease;

typedef struct local {
	kaa__coord base;
	pthread_mutex_t mu;
	kaa__kv *kvs; /* sorted by key */
	size_t n, cap;
	int64_t rev;
	int64_t compact_rev;
	hist_ev hist[HISTORY_MAX]; /* ring */
	size_t hist_start, hist_n;
	lease *leases;
	size_t n_leases, cap_leases;
	int64_t next_lease;
	local_watch *watches;
	pthread_t reaper;
	pthread_cond_t reaper_cond;
	bool stop;
} local;

static bool key_matches(const char *key, const char *want, size_t want_len, bool prefix)
{
	if (prefix)
		return strncmp(key, want, want_len) == 0;
	return strcmp(key, want) == 0;
}

static size_t find_pos(local *l, const char *key, bool *found)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(l->kvs[mid].key, key);
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

static void kv_copy(kaa__kv *dst, const kaa__kv *src)
{
	memset(dst, 0, sizeof(*dst));
	kaa__kv_set(dst, src->key, strlen(src->key), src->value, src->value_len);
	dst->create_rev = src->create_rev;
	dst->mod_rev = src->mod_rev;
	dst->version = src->version;
	dst->lease = src->lease;
}

static void enqueue(local_watch *w, qitem *it)
{
	pthread_mutex_lock(&w->qmu);
	if (w->tail)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	pthread_cond_signal(&w->qcond);
	pthread_mutex_unlock(&w->qmu);
}

/* Called with l->mu held after a write of one revision: records history
 * and queues the events to matching watches. */
static void publish(local *l, hist_ev *evs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t slot;
		if (l->hist_n == HISTORY_MAX) {
			kaa__kv_clear(&l->hist[l->hist_start].kv);
			slot = l->hist_start;
			l->hist_start = (l->hist_start + 1) % HISTORY_MAX;
			if (l->hist[l->hist_start].kv.mod_rev - 1 > l->compact_rev)
				l->compact_rev = l->hist[l->hist_start].kv.mod_rev - 1;
		} else {
			slot = (l->hist_start + l->hist_n) % HISTORY_MAX;
			l->hist_n++;
		}
		l->hist[slot].type = evs[i].type;
		kv_copy(&l->hist[slot].kv, &evs[i].kv);
	}
	for (local_watch *w = l->watches; w; w = w->next) {
		qitem *it = NULL;
		for (size_t i = 0; i < n; i++) {
			if (!key_matches(evs[i].kv.key, w->key, w->key_len, w->prefix))
				continue;
			if (!it) {
				it = kaa__xcalloc(1, sizeof(*it));
				it->evs = kaa__xcalloc(n, sizeof(*it->evs));
			}
			it->evs[it->n].type = evs[i].type;
			kv_copy(&it->evs[it->n].kv, &evs[i].kv);
			it->n++;
		}
		if (it)
			enqueue(w, it);
	}
}

static void snapshot_locked(local *l, const char *key, bool prefix, kaa__kv_list *out)
{
	size_t klen = strlen(key), cnt = 0;
	memset(out, 0, sizeof(*out));
	out->revision = l->rev;
	for (size_t i = 0; i < l->n; i++)
		if (key_matches(l->kvs[i].key, key, klen, prefix))
			cnt++;
	if (cnt == 0)
		return;
	out->items = kaa__xcalloc(cnt, sizeof(*out->items));
	for (size_t i = 0; i < l->n; i++) {
		if (!key_matches(l->kvs[i].key, key, klen, prefix))
			continue;
		kv_copy(&out->items[out->n], &l->kvs[i]);
		out->n++;
	}
}

static int local_range(kaa__coord *c, const char *key, bool prefix, kaa__kv_list *out)
{
	local *l = (local *)c;
	pthread_mutex_lock(&l->mu);
	snapshot_locked(l, key, prefix, out);
	pthread_mutex_unlock(&l->mu);
	return KAA_OK;
}

static lease *find_lease(local *l, int64_t id)
{
	for (size_t i = 0; i < l->n_leases; i++)
		if (l->leases[i].id == id)
			return &l->leases[i];
	return NULL;
}

static int put_locked(local *l, const char *key, const void *val, size_t len, int64_t lease_id)
{
	bool found;
	size_t pos;
	kaa__kv *kv;
	hist_ev ev;

	if (lease_id && !find_lease(l, lease_id))
		return KAA_ERR_LEASE_LOST;
	pos = find_pos(l, key, &found);
	if (!found) {
		if (l->n == l->cap) {
			size_t ncap = l->cap ? l->cap * 2 : 16;
			l->kvs = kaa__xrealloc(l->kvs, ncap * sizeof(*l->kvs));
			l->cap = ncap;
		}
		memmove(&l->kvs[pos + 1], &l->kvs[pos], (l->n - pos) * sizeof(*l->kvs));
		memset(&l->kvs[pos], 0, sizeof(l->kvs[pos]));
		l->n++;
	}
	kv = &l->kvs[pos];
	kaa__kv_set(kv, key, strlen(key), val, len);
	l->rev++;
	if (!found) {
		kv->create_rev = l->rev;
		kv->version = 0;
	}
	kv->mod_rev = l->rev;
	kv->version++;
	kv->lease = lease_id;
	ev.type = KAA_WATCH_PUT;
	ev.kv = *kv;
	publish(l, &ev, 1);
	return KAA_OK;
}

static int local_put(kaa__coord *c, const char *key, const void *val, size_t len, int64_t lease_id,
		     int64_t *revision)
{
	local *l = (local *)c;
	pthread_mutex_lock(&l->mu);
	int rc = put_locked(l, key, val, len, lease_id);
	if (rc == KAA_OK && revision)
		*revision = l->rev;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

/* Deletes every key for which match(i) holds, as one revision. */
static int64_t delete_where(local *l, bool (*match)(const kaa__kv *, const void *), const void *arg)
{
	size_t cnt = 0;
	for (size_t i = 0; i < l->n; i++)
		if (match(&l->kvs[i], arg))
			cnt++;
	if (cnt == 0)
		return 0;
	hist_ev *evs = kaa__xcalloc(cnt, sizeof(*evs));
	l->rev++;
	size_t j = 0, k = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (match(&l->kvs[i], arg)) {
			evs[j].type = KAA_WATCH_DELETE;
			evs[j].kv = l->kvs[i];
			evs[j].kv.mod_rev = l->rev;
			evs[j].kv.value_len = 0;
			evs[j].kv.value[0] = '\0';
			j++;
		} else {
			l->kvs[k++] = l->kvs[i];
		}
	}
	l->n = k;
	publish(l, evs, cnt);
	for (size_t i = 0; i < cnt; i++)
		kaa__kv_clear(&evs[i].kv);
	free(evs);
	return (int64_t)cnt;
}

typedef struct key_match {
	const char *key;
	size_t len;
	bool prefix;
} key_match;

static bool match_key(const kaa__kv *kv, const void *arg)
{
	const key_match *m = arg;
	return key_matches(kv->key, m->key, m->len, m->prefix);
}

static bool match_lease(const kaa__kv *kv, const void *arg)
{
	return kv->lease == *(const int64_t *)arg;
}

static int local_del(kaa__coord *c, const char *key, bool prefix, int64_t *deleted)
{
	local *l = (local *)c;
	key_match m = {key, strlen(key), prefix};
	pthread_mutex_lock(&l->mu);
	int64_t n = delete_where(l, match_key, &m);
	pthread_mutex_unlock(&l->mu);
	if (deleted)
		*deleted = n;
	return KAA_OK;
}

static int local_cas(kaa__coord *c, const char *key, int64_t expect_mod_rev, const void *val,
		     size_t len, int64_t lease_id, bool *succeeded, kaa__kv *current)
{
	local *l = (local *)c;
	bool found;
	int rc = KAA_OK;
	pthread_mutex_lock(&l->mu);
	size_t pos = find_pos(l, key, &found);
	int64_t cur = found ? l->kvs[pos].mod_rev : 0;
	if (cur == expect_mod_rev) {
		if (val) {
			rc = put_locked(l, key, val, len, lease_id);
		} else if (found) {
			key_match m = {key, strlen(key), false};
			delete_where(l, match_key, &m);
		}
		*succeeded = rc == KAA_OK;
	} else if (found && current) {
		kv_copy(current, &l->kvs[pos]);
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static int local_compact(kaa__coord *c, int64_t revision)
{
	local *l = (local *)c;
	int rc = KAA_OK;
	pthread_mutex_lock(&l->mu);
	if (revision > l->rev) {
		rc = KAA_ERR_INVAL;
	} else if (revision <= l->compact_rev) {
		rc = KAA_ERR_COMPACTED;
	} else {
		while (l->hist_n > 0 && l->hist[l->hist_start].kv.mod_rev <= revision) {
			kaa__kv_clear(&l->hist[l->hist_start].kv);
			l->hist_start = (l->hist_start + 1) % HISTORY_MAX;
			l->hist_n--;
		}
		l->compact_rev = revision;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static int local_lease_grant(kaa__coord *c, int64_t ttl_s, int64_t *id)
{
	local *l = (local *)c;
	pthread_mutex_lock(&l->mu);
	if (l->n_leases == l->cap_leases) {
		size_t ncap = l->cap_leases ? l->cap_leases * 2 : 8;
		l->leases = kaa__xrealloc(l->leases, ncap * sizeof(*l->leases));
		l->cap_leases = ncap;
	}
	lease *ls = &l->leases[l->n_leases++];
	ls->id = ++l->next_lease;
	ls->ttl = ttl_s;
	ls->expiry_ms = kaa__now_ms() + ttl_s * 1000;
	*id = ls->id;
	pthread_mutex_unlock(&l->mu);
	return KAA_OK;
}

static void drop_lease_locked(local *l, lease *ls)
{
	int64_t id = ls->id;
	*ls = l->leases[--l->n_leases];
	delete_where(l, match_lease, &id);
}

static int local_lease_revoke(kaa__coord *c, int64_t id)
{
	local *l = (local *)c;
	int rc = KAA_OK;
	pthread_mutex_lock(&l->mu);
	lease *ls = find_lease(l, id);
	if (ls)
		drop_lease_locked(l, ls);
	else
		rc = KAA_ERR_LEASE_LOST;
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static int local_lease_keepalive(kaa__coord *c, int64_t id, int64_t *ttl_left)
{
	local *l = (local *)c;
	int rc = KAA_OK;
	pthread_mutex_lock(&l->mu);
	lease *ls = find_lease(l, id);
	if (ls) {
		ls->expiry_ms = kaa__now_ms() + ls->ttl * 1000;
		*ttl_left = ls->ttl;
	} else {
		rc = KAA_ERR_LEASE_LOST;
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

static void *reaper_main(void *arg)
{
	local *l = arg;
	pthread_mutex_lock(&l->mu);
	while (!l->stop) {
		int64_t now = kaa__now_ms();
		for (size_t i = 0; i < l->n_leases;) {
			if (l->leases[i].expiry_ms <= now)
				drop_lease_locked(l, &l->leases[i]);
			else
				i++;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&l->reaper_cond, &l->mu, &ts);
	}
	pthread_mutex_unlock(&l->mu);
	return NULL;
}

static void qitem_free(qitem *it)
{
	if (it->is_reset) {
		kaa__kv_list_clear(&it->snapshot);
	} else {
		for (size_t i = 0; i < it->n; i++)
			kaa__kv_clear(&it->evs[i].kv);
		free(it->evs);
	}
	free(it);
}

static void *lwatch_main(void *arg)
{
	local_watch *w = arg;
	pthread_mutex_lock(&w->qmu);
	for (;;) {
		while (!w->head && !w->stop)
			pthread_cond_wait(&w->qcond, &w->qmu);
		if (w->stop)
			break;
		qitem *it = w->head;
		w->head = it->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->qmu);
		if (it->is_reset) {
			w->cb.reset(w->cb.ud, &it->snapshot);
			atomic_store(&w->last_rev, it->snapshot.revision);
		} else {
			w->cb.events(w->cb.ud, it->evs, it->n);
			atomic_store(&w->last_rev, it->evs[it->n - 1].kv.mod_rev);
		}
		qitem_free(it);
		pthread_mutex_lock(&w->qmu);
	}
	pthread_mutex_unlock(&w->qmu);
	return NULL;
}

static int local_watch_new(kaa__coord *c, const char *key, int flags, int64_t start_rev,
			   const kaa__watch_cb *cb, kaa__watch **out)
{
	local *l = (local *)c;
	local_watch *w;
	int rc = KAA_OK;

	*out = NULL;
	if (!cb->reset)
		return KAA_ERR_INVAL;
	w = kaa__xcalloc(1, sizeof(*w));
	w->base.coord = c;
	w->key = kaa__xstrdup(key);
	w->key_len = strlen(key);
	w->prefix = flags & KAA_WATCH_PREFIX;
	w->cb = *cb;
	pthread_mutex_init(&w->qmu, NULL);
	pthread_cond_init(&w->qcond, NULL);

	pthread_mutex_lock(&l->mu);
	bool need_reset =
		(flags & KAA_WATCH_SNAPSHOT) || (start_rev > 0 && start_rev <= l->compact_rev);
	if (need_reset) {
		qitem *it = kaa__xcalloc(1, sizeof(*it));
		it->is_reset = true;
		snapshot_locked(l, key, w->prefix, &it->snapshot);
		enqueue(w, it);
	} else if (start_rev > 0) {
		/* Replay history from start_rev, one batch per revision. */
		for (size_t i = 0; i < l->hist_n;) {
			hist_ev *h = &l->hist[(l->hist_start + i) % HISTORY_MAX];
			int64_t r = h->kv.mod_rev;
			qitem *it = NULL;
			while (i < l->hist_n) {
				h = &l->hist[(l->hist_start + i) % HISTORY_MAX];
				if (h->kv.mod_rev != r)
					break;
				i++;
				if (r < start_rev ||
				    !key_matches(h->kv.key, key, w->key_len, w->prefix))
					continue;
				if (!it) {
					it = kaa__xcalloc(1, sizeof(*it));
					it->evs = kaa__xcalloc(l->hist_n, sizeof(*it->evs));
				}
				it->evs[it->n].type = h->type;
				kv_copy(&it->evs[it->n].kv, &h->kv);
				it->n++;
			}
			if (it)
				enqueue(w, it);
		}
	}
	atomic_store(&w->last_rev, l->rev);
	w->next = l->watches;
	l->watches = w;
	pthread_mutex_unlock(&l->mu);
	if (cb->connected)
		cb->connected(cb->ud, true);
	if (pthread_create(&w->thread, NULL, lwatch_main, w) != 0)
		abort(); /* out of threads: as fatal as out of memory here */
	*out = &w->base;
	return rc;
}

static void local_watch_free(kaa__watch *base)
{
	local_watch *w = (local_watch *)base;
	local *l = (local *)base->coord;
	pthread_mutex_lock(&l->mu);
	for (local_watch **pp = &l->watches; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&l->mu);
	pthread_mutex_lock(&w->qmu);
	w->stop = true;
	pthread_cond_signal(&w->qcond);
	pthread_mutex_unlock(&w->qmu);
	pthread_join(w->thread, NULL);
	while (w->head) {
		qitem *it = w->head;
		w->head = it->next;
		qitem_free(it);
	}
	pthread_mutex_destroy(&w->qmu);
	pthread_cond_destroy(&w->qcond);
	free(w->key);
	free(w);
}

static int64_t local_watch_revision(kaa__watch *base)
{
	return atomic_load(&((local_watch *)base)->last_rev);
}

static void local_free(kaa__coord *c)
{
	local *l = (local *)c;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_signal(&l->reaper_cond);
	pthread_mutex_unlock(&l->mu);
	pthread_join(l->reaper, NULL);
	for (size_t i = 0; i < l->n; i++)
		kaa__kv_clear(&l->kvs[i]);
	free(l->kvs);
	for (size_t i = 0; i < l->hist_n; i++)
		kaa__kv_clear(&l->hist[(l->hist_start + i) % HISTORY_MAX].kv);
	free(l->leases);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->reaper_cond);
	free(l);
}

static const kaa__coord_ops local_ops = {
	.kind = "local",
	.range = local_range,
	.put = local_put,
	.del = local_del,
	.cas = local_cas,
	.compact = local_compact,
	.lease_grant = local_lease_grant,
	.lease_revoke = local_lease_revoke,
	.lease_keepalive = local_lease_keepalive,
	.watch = local_watch_new,
	.watch_free = local_watch_free,
	.watch_revision = local_watch_revision,
	.free = local_free,
};

int kaa__coord_new_local(kaa__coord **out)
{
	local *l = kaa__xcalloc(1, sizeof(*l));
	l->base.ops = &local_ops;
	pthread_mutex_init(&l->mu, NULL);
	pthread_cond_init(&l->reaper_cond, NULL);
	if (pthread_create(&l->reaper, NULL, reaper_main, l) != 0) {
		pthread_mutex_destroy(&l->mu);
		pthread_cond_destroy(&l->reaper_cond);
		free(l);
		return KAA_ERR_IO;
	}
	*out = &l->base;
	return KAA_OK;
}
