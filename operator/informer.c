/*
 * informer.c - list + watch of one collection with a cache of its objects.
 *
 * One thread per informer: it lists (pages of 500), reports the difference
 * against the cache, then watches from the list's resourceVersion. The
 * watch body is a stream of JSON objects, one per line; each line is parsed
 * as it completes (at most KAA_KUBE_BODY_MAX bytes per line). A 410 Gone,
 * an ERROR event or an oversized line leads to a re-list; a transport error
 * to a backoff and a new watch from the last resourceVersion seen. The
 * curl progress callback (about once a second) lets free and the periodic
 * resync interrupt a watch that would otherwise last timeoutSeconds.
 *
 * The cache holds each object's JSON text keyed "namespace/name" (empty
 * namespace for cluster-scoped kinds), with kind and apiVersion filled in
 * from the list when the API leaves them out of list items. The callback
 * runs on the informer thread without the cache lock held.
 */
#include "kube_internal.h"

#include "base/backoff.h"
#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_LIMIT 500
#define WATCH_TIMEOUT_S 300
#define RV_MAX 128

typedef struct entry {
	char *key; /* "ns/name" */
	char *ns, *name, *rv, *json;
	struct entry *next;
} entry;

typedef struct table {
	entry **b;
	size_t nb, n;
} table;

struct kaa__kube_informer {
	kaa__kube *k;
	char *path;
	char *selector;
	int resync_ms;
	kaa__kube_event_cb cb;
	void *ud;

	pthread_t th;
	volatile int stop;
	atomic_bool synced;

	pthread_mutex_t mu; /* guards cache */
	table cache;

	/* informer thread only */
	char rv[RV_MAX];
	kaa__buf line;
	bool need_relist;
	bool resync_due;
	bool line_too_big;
	int64_t next_resync;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static void entry_free(entry *e)
{
	if (!e)
		return;
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e->rv);
	free(e->json);
	free(e);
}

static void table_clear(table *t)
{
	for (size_t i = 0; i < t->nb; i++) {
		entry *e = t->b[i];
		while (e) {
			entry *n = e->next;
			entry_free(e);
			e = n;
		}
	}
	free(t->b);
	*t = (table){0};
}

static entry **table_slot(table *t, const char *key)
{
	if (!t->nb)
		return NULL;
	entry **p = &t->b[hash(key) % t->nb];
	while (*p && strcmp((*p)->key, key) != 0)
		p = &(*p)->next;
	return p;
}

static entry *table_find(table *t, const char *key)
{
	entry **p = table_slot(t, key);
	return p ? *p : NULL;
}

/* Inserts or replaces (the old entry is freed). */
static void table_put(table *t, entry *e)
{
	if (t->n + 1 > t->nb * 2) {
		size_t nb = t->nb ? t->nb * 4 : 64;
		entry **b = kaa__xcalloc(nb, sizeof(*b));
		for (size_t i = 0; i < t->nb; i++) {
			entry *x = t->b[i];
			while (x) {
				entry *n = x->next;
				size_t h = hash(x->key) % nb;
				x->next = b[h];
				b[h] = x;
				x = n;
			}
		}
		free(t->b);
		t->b = b;
		t->nb = nb;
	}
	entry **p = table_slot(t, e->key);
	if (*p) {
		e->next = (*p)->next;
		entry_free(*p);
		*p = e;
	} else {
		e->next = NULL;
		*p = e;
		t->n++;
	}
}

static entry *table_take(table *t, const char *key)
{
	entry **p = table_slot(t, key);
	entry *e = p ? *p : NULL;
	if (e) {
		*p = e->next;
		e->next = NULL;
		t->n--;
	}
	return e;
}

static char *make_key(const char *ns, const char *name)
{
	return kaa__xasprintf("%s/%s", ns ? ns : "", name);
}

/* An entry from an object; kind/apiVersion (may be NULL) fill gaps. */
static entry *entry_from(yajl_val obj, const char *api_version, const char *kind)
{
	static const char *const p_ns[] = {"metadata", "namespace", NULL};
	static const char *const p_name[] = {"metadata", "name", NULL};
	static const char *const p_rv[] = {"metadata", "resourceVersion", NULL};
	static const char *const p_kind[] = {"kind", NULL};
	static const char *const p_av[] = {"apiVersion", NULL};
	const char *ns = kaa__kube_str(obj, p_ns), *name = kaa__kube_str(obj, p_name);
	const char *rv = kaa__kube_str(obj, p_rv);
	kaa__buf b = {0};
	entry *e;

	if (!YAJL_IS_OBJECT(obj) || !name)
		return NULL;
	e = kaa__xcalloc(1, sizeof(*e));
	kaa__buf_put(&b, "{", 1);
	bool first = true;
	if (api_version && !kaa__kube_str(obj, p_av)) {
		kaa__buf_puts(&b, "\"apiVersion\":");
		kaa__kube_json_str(&b, api_version);
		first = false;
	}
	if (kind && !kaa__kube_str(obj, p_kind)) {
		kaa__buf_puts(&b, first ? "\"kind\":" : ",\"kind\":");
		kaa__kube_json_str(&b, kind);
		first = false;
	}
	for (size_t i = 0; i < obj->u.object.len; i++) {
		if (!first)
			kaa__buf_put(&b, ",", 1);
		first = false;
		kaa__kube_json_str(&b, obj->u.object.keys[i]);
		kaa__buf_put(&b, ":", 1);
		kaa__kube_gen(&b, obj->u.object.values[i]);
	}
	kaa__buf_put(&b, "}", 1);
	e->json = b.p;
	e->key = make_key(ns, name);
	e->ns = kaa__xstrdup(ns ? ns : "");
	e->name = kaa__xstrdup(name);
	e->rv = kaa__xstrdup(rv ? rv : "");
	return e;
}

static void deliver(kaa__kube_informer *inf, kaa__kube_ev ev, const char *ns, const char *name,
		    const char *json)
{
	char err[128];
	yajl_val v = yajl_tree_parse(json, err, sizeof(err));
	if (!v) {
		KAA_ERROR("kube", "informer_cached_json_unparsable path=%s name=%s", inf->path,
			  name);
		return;
	}
	inf->cb(inf->ud, ev, ns && *ns ? ns : NULL, name, v);
	yajl_tree_free(v);
}

static void set_rv(kaa__kube_informer *inf, const char *rv)
{
	if (rv && *rv && strlen(rv) < RV_MAX)
		snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
}

/* ---- list ---- */

typedef struct pending {
	kaa__kube_ev ev;
	entry *e; /* owned copy (DELETED: taken from the old cache) */
	struct pending *next;
} pending;

static entry *entry_dup(const entry *s)
{
	entry *e = kaa__xcalloc(1, sizeof(*e));
	e->key = kaa__xstrdup(s->key);
	e->ns = kaa__xstrdup(s->ns);
	e->name = kaa__xstrdup(s->name);
	e->rv = kaa__xstrdup(s->rv);
	e->json = kaa__xstrdup(s->json);
	return e;
}

static void collection_url(kaa__kube_informer *inf, kaa__buf *u)
{
	kaa__buf_puts(u, inf->path);
	kaa__buf_put(u, strchr(inf->path, '?') ? "&" : "?", 1);
	if (inf->selector) {
		kaa__buf_puts(u, "labelSelector=");
		kaa__kube_query(u, inf->selector);
		kaa__buf_put(u, "&", 1);
	}
}

static int do_list(kaa__kube_informer *inf)
{
	static const char *const p_cont[] = {"metadata", "continue", NULL};
	static const char *const p_rv[] = {"metadata", "resourceVersion", NULL};
	static const char *const p_items[] = {"items", NULL};
	static const char *const p_kind[] = {"kind", NULL};
	static const char *const p_av[] = {"apiVersion", NULL};
	table fresh = {0};
	char *cont = NULL;
	char rv[RV_MAX] = "";
	int rc = KAA_OK;
	pending *head = NULL, **tail = &head;
	kaa__kube_req_opts o = {.stop = &inf->stop};

	do {
		kaa__buf u = {0};
		kaa__kube_resp r;
		char err[128];
		collection_url(inf, &u);
		kaa__buf_printf(&u, "limit=%d", PAGE_LIMIT);
		if (cont) {
			kaa__buf_puts(&u, "&continue=");
			kaa__kube_query(&u, cont);
		}
		free(cont);
		cont = NULL;
		rc = kaa__kube_request_ex(inf->k, "GET", u.p, NULL, NULL, &o, &r);
		kaa__buf_free(&u);
		if (rc != KAA_OK)
			goto out;
		if (r.status != 200) {
			KAA_WARN("kube", "informer_list_failed path=%s status=%ld", inf->path,
				 r.status);
			kaa__kube_resp_clear(&r);
			/* 410 here: the continue token expired; the retry starts over. */
			rc = KAA_ERR_UNAVAILABLE;
			goto out;
		}
		yajl_val v = yajl_tree_parse(r.body, err, sizeof(err));
		kaa__kube_resp_clear(&r);
		yajl_val items = v ? kaa__kube_obj(v, NULL) : NULL;
		yajl_val arr = NULL;
		if (items) {
			for (size_t i = 0; i < v->u.object.len; i++)
				if (strcmp(v->u.object.keys[i], p_items[0]) == 0)
					arr = v->u.object.values[i];
		}
		if (!v || (arr && !YAJL_IS_ARRAY(arr) && !YAJL_IS_NULL(arr))) {
			KAA_WARN("kube", "informer_list_unparsable path=%s", inf->path);
			yajl_tree_free(v);
			rc = KAA_ERR_PROTOCOL;
			goto out;
		}
		char kind[128] = "";
		const char *lk = kaa__kube_str(v, p_kind);
		if (lk && strlen(lk) > 4 && strlen(lk) < sizeof(kind) &&
		    strcmp(lk + strlen(lk) - 4, "List") == 0)
			snprintf(kind, sizeof(kind), "%.*s", (int)strlen(lk) - 4, lk);
		const char *av = kaa__kube_str(v, p_av);
		for (size_t i = 0; arr && YAJL_IS_ARRAY(arr) && i < arr->u.array.len; i++) {
			entry *e = entry_from(arr->u.array.values[i], av, *kind ? kind : NULL);
			if (!e) {
				KAA_WARN("kube", "informer_list_item_skipped path=%s index=%zu",
					 inf->path, i);
				continue;
			}
			table_put(&fresh, e);
		}
		const char *c = kaa__kube_str(v, p_cont);
		const char *lrv = kaa__kube_str(v, p_rv);
		if (lrv && strlen(lrv) < sizeof(rv))
			snprintf(rv, sizeof(rv), "%s", lrv);
		if (c && *c)
			cont = kaa__xstrdup(c);
		yajl_tree_free(v);
	} while (cont && !inf->stop);
	if (inf->stop) {
		rc = KAA_ERR_CANCELED;
		goto out;
	}

	/* The difference against the cache, then the swap. */
	pthread_mutex_lock(&inf->mu);
	for (size_t i = 0; i < fresh.nb; i++) {
		for (entry *e = fresh.b[i]; e; e = e->next) {
			entry *old = table_find(&inf->cache, e->key);
			if (old && strcmp(old->rv, e->rv) == 0)
				continue;
			pending *p = kaa__xcalloc(1, sizeof(*p));
			p->e = entry_dup(e);
			p->ev = old ? KAA_KUBE_MODIFIED : KAA_KUBE_ADDED;
			*tail = p;
			tail = &p->next;
		}
	}
	for (size_t i = 0; i < inf->cache.nb; i++) {
		for (entry *e = inf->cache.b[i]; e; e = e->next) {
			if (table_find(&fresh, e->key))
				continue;
			pending *p = kaa__xcalloc(1, sizeof(*p));
			p->e = entry_dup(e);
			p->ev = KAA_KUBE_DELETED;
			*tail = p;
			tail = &p->next;
		}
	}
	if (rc == KAA_OK) {
		table t = inf->cache;
		inf->cache = fresh;
		fresh = t;
	}
	pthread_mutex_unlock(&inf->mu);
	if (rc != KAA_OK)
		goto out;
	snprintf(inf->rv, sizeof(inf->rv), "%s", rv);
	KAA_DEBUG("kube", "informer_listed path=%s rv=%s", inf->path, inf->rv);
	for (pending *p = head; p && !inf->stop; p = p->next)
		deliver(inf, p->ev, p->e->ns, p->e->name, p->e->json);
	atomic_store(&inf->synced, true);
out:
	while (head) {
		pending *n = head->next;
		entry_free(head->e);
		free(head);
		head = n;
	}
	free(cont);
	table_clear(&fresh);
	return rc;
}

/* ---- watch ---- */

/* One watch event (a whole line). false stops the watch. */
static bool on_event(kaa__kube_informer *inf, const char *line)
{
	static const char *const p_type[] = {"type", NULL};
	static const char *const p_obj[] = {"object", NULL};
	static const char *const p_rv[] = {"metadata", "resourceVersion", NULL};
	static const char *const p_code[] = {"code", NULL};
	static const char *const p_msg[] = {"message", NULL};
	char err[128];
	yajl_val v = yajl_tree_parse(line, err, sizeof(err));
	bool go_on = true;

	if (!v) {
		KAA_WARN("kube", "informer_bad_event path=%s err=\"%s\"", inf->path, err);
		inf->need_relist = true;
		return false;
	}
	const char *type = kaa__kube_str(v, p_type);
	yajl_val obj = kaa__kube_obj(v, p_obj);
	if (!type || !obj) {
		KAA_WARN("kube", "informer_bad_event path=%s err=\"no type or object\"", inf->path);
		inf->need_relist = true;
		go_on = false;
	} else if (strcmp(type, "BOOKMARK") == 0) {
		set_rv(inf, kaa__kube_str(obj, p_rv));
	} else if (strcmp(type, "ERROR") == 0) {
		long long code = kaa__kube_int(obj, p_code, 0);
		const char *msg = kaa__kube_str(obj, p_msg);
		if (code == 410)
			KAA_INFO("kube", "informer_expired path=%s rv=%s", inf->path, inf->rv);
		else
			KAA_WARN("kube", "informer_watch_error path=%s code=%lld msg=\"%s\"",
				 inf->path, code, msg ? msg : "");
		inf->need_relist = true;
		go_on = false;
	} else {
		kaa__kube_ev ev = strcmp(type, "ADDED") == 0      ? KAA_KUBE_ADDED
				  : strcmp(type, "MODIFIED") == 0 ? KAA_KUBE_MODIFIED
				  : strcmp(type, "DELETED") == 0  ? KAA_KUBE_DELETED
								  : (kaa__kube_ev)-1;
		entry *e = (int)ev >= 0 ? entry_from(obj, NULL, NULL) : NULL;
		if (!e) {
			KAA_WARN("kube", "informer_event_skipped path=%s type=%s", inf->path, type);
			set_rv(inf, kaa__kube_str(obj, p_rv));
			goto out;
		}
		set_rv(inf, e->rv);
		pthread_mutex_lock(&inf->mu);
		if (ev == KAA_KUBE_DELETED) {
			entry_free(table_take(&inf->cache, e->key));
		} else {
			table_put(&inf->cache, e);
			e = NULL; /* owned by the cache */
		}
		pthread_mutex_unlock(&inf->mu);
		const char *const p_ns[] = {"metadata", "namespace", NULL};
		const char *const p_name[] = {"metadata", "name", NULL};
		inf->cb(inf->ud, ev, kaa__kube_str(obj, p_ns), kaa__kube_str(obj, p_name), obj);
		entry_free(e);
	}
out:
	yajl_tree_free(v);
	return go_on;
}

static bool watch_sink(void *ud, const char *data, size_t len)
{
	kaa__kube_informer *inf = ud;
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;
		if (kaa__buf_put(&inf->line, data, n) != KAA_OK) {
			/* over line.max (KAA_KUBE_BODY_MAX); OOM would have aborted */
			KAA_WARN("kube", "informer_event_too_big path=%s", inf->path);
			inf->line_too_big = true;
			inf->need_relist = true;
			return false;
		}
		if (!nl)
			break;
		if (inf->line.len > 0 && !on_event(inf, inf->line.p)) {
			kaa__buf_reset(&inf->line);
			return false;
		}
		kaa__buf_reset(&inf->line);
		data += n + 1;
		len -= n + 1;
	}
	return true;
}

static bool watch_tick(void *ud)
{
	kaa__kube_informer *inf = ud;
	if (inf->resync_ms > 0 && kaa__now_ms() >= inf->next_resync) {
		inf->resync_due = true;
		return false;
	}
	return true;
}

/* KAA_OK: the server ended the watch (timeout) or we interrupted it on
 * purpose (resync, re-list); otherwise a failure to back off from. */
static int do_watch(kaa__kube_informer *inf, unsigned jitter)
{
	kaa__buf u = {0};
	kaa__kube_resp r;
	int timeout_s = WATCH_TIMEOUT_S - 15 + (int)(jitter % 30);
	kaa__kube_req_opts o = {
		.stop = &inf->stop,
		.timeout_ms = (timeout_s + 30) * 1000,
		.sink = watch_sink,
		.sink_ud = inf,
		.tick = watch_tick,
		.tick_ud = inf,
	};
	int rc;

	collection_url(inf, &u);
	kaa__buf_printf(&u, "watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=",
			timeout_s);
	kaa__kube_query(&u, inf->rv);
	kaa__buf_reset(&inf->line);
	inf->line_too_big = false;
	rc = kaa__kube_request_ex(inf->k, "GET", u.p, NULL, NULL, &o, &r);
	kaa__buf_free(&u);
	if (rc == KAA_ERR_CANCELED &&
	    (inf->stop || inf->resync_due || (inf->need_relist && !inf->line_too_big)))
		return KAA_OK;
	if (rc == KAA_ERR_CANCELED && inf->line_too_big)
		return KAA_ERR_TOO_BIG;
	if (rc != KAA_OK)
		return rc;
	if (r.status == 410) {
		KAA_INFO("kube", "informer_expired path=%s rv=%s", inf->path, inf->rv);
		inf->need_relist = true;
		rc = KAA_OK;
	} else if (r.status != 200) {
		KAA_WARN("kube", "informer_watch_failed path=%s status=%ld", inf->path, r.status);
		inf->need_relist = true;
		rc = KAA_ERR_UNAVAILABLE;
	}
	kaa__kube_resp_clear(&r);
	return rc;
}

static void resync(kaa__kube_informer *inf)
{
	pending *head = NULL, **tail = &head;

	pthread_mutex_lock(&inf->mu);
	for (size_t i = 0; i < inf->cache.nb; i++) {
		for (entry *e = inf->cache.b[i]; e; e = e->next) {
			pending *p = kaa__xcalloc(1, sizeof(*p));
			p->e = entry_dup(e);
			p->ev = KAA_KUBE_MODIFIED;
			*tail = p;
			tail = &p->next;
		}
	}
	pthread_mutex_unlock(&inf->mu);
	while (head) {
		pending *n = head->next;
		if (!inf->stop)
			deliver(inf, head->ev, head->e->ns, head->e->name, head->e->json);
		entry_free(head->e);
		free(head);
		head = n;
	}
}

static void *run(void *arg)
{
	kaa__kube_informer *inf = arg;
	kaa__backoff bo;
	unsigned jitter = (unsigned)kaa__now_ms();

	kaa__backoff_init(&bo, 500, 30000);
	inf->need_relist = true;
	while (!inf->stop) {
		int rc;
		if (inf->need_relist) {
			rc = do_list(inf);
			if (rc != KAA_OK) {
				if (rc != KAA_ERR_CANCELED)
					KAA_WARN("kube", "informer_list_retry path=%s err=\"%s\"",
						 inf->path, kaa_strerror(rc));
				kaa__sleep_ms_unless(kaa__backoff_next(&bo), &inf->stop);
				continue;
			}
			inf->need_relist = false;
			if (inf->resync_ms > 0)
				inf->next_resync = kaa__now_ms() + inf->resync_ms;
		}
		if (inf->resync_due) {
			inf->resync_due = false;
			resync(inf);
			inf->next_resync = kaa__now_ms() + inf->resync_ms;
			continue;
		}
		jitter = jitter * 1103515245u + 12345u;
		int64_t t0 = kaa__now_ms();
		rc = do_watch(inf, jitter >> 8);
		if (inf->stop)
			break;
		if (rc == KAA_OK) {
			if (kaa__now_ms() - t0 > 1000)
				kaa__backoff_reset(&bo);
			continue;
		}
		KAA_WARN("kube", "informer_watch_retry path=%s err=\"%s\"", inf->path,
			 kaa_strerror(rc));
		kaa__sleep_ms_unless(kaa__backoff_next(&bo), &inf->stop);
	}
	return NULL;
}

int kaa__kube_informer_new(kaa__kube *k, const char *collection_path, const char *label_selector,
			   int resync_ms, kaa__kube_event_cb cb, void *ud, kaa__kube_informer **out)
{
	kaa__kube_informer *inf;

	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (!k || !collection_path || collection_path[0] != '/' || !cb || resync_ms < 0)
		return KAA_ERR_INVAL;
	inf = kaa__xcalloc(1, sizeof(*inf));
	inf->k = k;
	inf->cb = cb;
	inf->ud = ud;
	inf->resync_ms = resync_ms;
	inf->line.max = KAA_KUBE_BODY_MAX;
	inf->path = kaa__xstrdup(collection_path);
	inf->selector = label_selector && *label_selector ? kaa__xstrdup(label_selector) : NULL;
	pthread_mutex_init(&inf->mu, NULL);
	atomic_init(&inf->synced, false);
	if (pthread_create(&inf->th, NULL, run, inf) != 0) {
		pthread_mutex_destroy(&inf->mu);
		free(inf->path);
		free(inf->selector);
		free(inf);
		return KAA_ERR_IO;
	}
	*out = inf;
	return KAA_OK;
}

void kaa__kube_informer_free(kaa__kube_informer *inf)
{
	if (!inf)
		return;
	inf->stop = 1;
	pthread_join(inf->th, NULL);
	table_clear(&inf->cache);
	kaa__buf_free(&inf->line);
	pthread_mutex_destroy(&inf->mu);
	free(inf->path);
	free(inf->selector);
	free(inf);
}

bool kaa__kube_informer_synced(kaa__kube_informer *inf)
{
	return inf && atomic_load(&inf->synced);
}

int kaa__kube_informer_get(kaa__kube_informer *inf, const char *ns, const char *name, char **json)
{
	int rc = KAA_ERR_NOTFOUND;
	char *key;

	if (!inf || !name || !json)
		return KAA_ERR_INVAL;
	*json = NULL;
	key = make_key(ns, name);
	pthread_mutex_lock(&inf->mu);
	entry *e = table_find(&inf->cache, key);
	if (e) {
		*json = kaa__xstrdup(e->json);
		rc = KAA_OK;
	}
	pthread_mutex_unlock(&inf->mu);
	free(key);
	return rc;
}
