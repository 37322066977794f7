/*
 * owner_dir.c - see owner_dir.h. A chained hash table of owners keyed by
 * (app_id, owner_id); each owner holds a small array of endpoints (linear
 * scans: an owner has a handful of devices, bounded by
 * KAA_OWNER_DIR_MAX_ENDPOINTS).
 */
#include "cluster/owner_dir.h"

#include "base/alloc.h"
#include "base/error.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ID_MAX 256 /* the SDK's KAA_EVENT_FQN_MAX */

typedef struct endpoint {
	char *key, *node;
	char **sinks;
	size_t n_sinks;
} endpoint;

typedef struct owner {
	struct owner *next;
	int64_t app_id;
	char *id;
	endpoint *eps;
	size_t n_eps, cap_eps;
} owner;

struct kaa__owner_dir {
	pthread_mutex_t mu;
	owner **buckets;
	size_t n_buckets, n_owners;
};

static uint64_t hash(int64_t app, const char *id)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ (uint64_t)app;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ULL;
	return h ^ (h >> 29);
}

kaa__owner_dir *kaa__owner_dir_new(void)
{
	kaa__owner_dir *d = kaa__xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	d->n_buckets = 256;
	d->buckets = kaa__xcalloc(d->n_buckets, sizeof(*d->buckets));
	return d;
}

static void endpoint_clear(endpoint *e)
{
	free(e->key);
	free(e->node);
	for (size_t i = 0; i < e->n_sinks; i++)
		free(e->sinks[i]);
	free(e->sinks);
}

static void owner_free(owner *o)
{
	for (size_t i = 0; i < o->n_eps; i++)
		endpoint_clear(&o->eps[i]);
	free(o->eps);
	free(o->id);
	free(o);
}

void kaa__owner_dir_free(kaa__owner_dir *d)
{
	if (!d)
		return;
	for (size_t b = 0; b < d->n_buckets; b++)
		while (d->buckets[b]) {
			owner *o = d->buckets[b];
			d->buckets[b] = o->next;
			owner_free(o);
		}
	free(d->buckets);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* mu held. pprev (optional) receives the link that points at the owner. */
static owner *find(kaa__owner_dir *d, int64_t app, const char *id, owner ***pprev)
{
	owner **link = &d->buckets[hash(app, id) % d->n_buckets];
	for (; *link; link = &(*link)->next)
		if ((*link)->app_id == app && strcmp((*link)->id, id) == 0) {
			if (pprev)
				*pprev = link;
			return *link;
		}
	return NULL;
}

static void grow(kaa__owner_dir *d)
{
	size_t n = d->n_buckets * 2;
	owner **b = kaa__xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < d->n_buckets; i++)
		while (d->buckets[i]) {
			owner *o = d->buckets[i];
			d->buckets[i] = o->next;
			size_t k = hash(o->app_id, o->id) % n;
			o->next = b[k];
			b[k] = o;
		}
	free(d->buckets);
	d->buckets = b;
	d->n_buckets = n;
}

static bool id_ok(const char *s)
{
	return s && *s && strlen(s) <= ID_MAX;
}

static void unlink_owner(kaa__owner_dir *d, owner **link)
{
	owner *o = *link;
	*link = o->next;
	owner_free(o);
	d->n_owners--;
}

int kaa__owner_dir_update(kaa__owner_dir *d, int64_t app_id, const char *owner_id,
			  const char *endpoint_key_hash, const char *node_id, bool connected,
			  const char *const *sinks, size_t n_sinks)
{
	if (!d || !id_ok(owner_id) || !id_ok(endpoint_key_hash) || !id_ok(node_id) ||
	    (n_sinks && !sinks))
		return KAA_ERR_INVAL;
	if (n_sinks > KAA_OWNER_DIR_MAX_SINKS)
		return KAA_ERR_TOO_BIG;
	for (size_t i = 0; i < n_sinks; i++)
		if (!id_ok(sinks[i]))
			return KAA_ERR_INVAL;
	int rc = KAA_OK;
	pthread_mutex_lock(&d->mu);
	owner **link = NULL;
	owner *o = find(d, app_id, owner_id, &link);
	size_t i = 0;
	while (o && i < o->n_eps && strcmp(o->eps[i].key, endpoint_key_hash) != 0)
		i++;
	if (!connected) {
		/* only the node that holds it may report it gone: a late report
		 * from the old node must not undo a move */
		if (o && i < o->n_eps && strcmp(o->eps[i].node, node_id) == 0) {
			endpoint_clear(&o->eps[i]);
			o->eps[i] = o->eps[--o->n_eps];
			if (o->n_eps == 0)
				unlink_owner(d, link);
		}
		goto out;
	}
	if (!o) {
		if (d->n_owners >= d->n_buckets)
			grow(d);
		o = kaa__xcalloc(1, sizeof(*o));
		o->app_id = app_id;
		o->id = kaa__xstrdup(owner_id);
		size_t k = hash(app_id, owner_id) % d->n_buckets;
		o->next = d->buckets[k];
		d->buckets[k] = o;
		d->n_owners++;
		i = 0;
	}
	if (i == o->n_eps) {
		if (o->n_eps == KAA_OWNER_DIR_MAX_ENDPOINTS) {
			rc = KAA_ERR_TOO_BIG;
			goto out;
		}
		if (o->n_eps == o->cap_eps) {
			o->cap_eps = o->cap_eps ? o->cap_eps * 2 : 4;
			o->eps = kaa__xrealloc(o->eps, o->cap_eps * sizeof(*o->eps));
		}
		memset(&o->eps[o->n_eps], 0, sizeof(endpoint));
		o->eps[o->n_eps].key = kaa__xstrdup(endpoint_key_hash);
		o->n_eps++;
	}
	endpoint *e = &o->eps[i];
	free(e->node);
	e->node = kaa__xstrdup(node_id);
	for (size_t k = 0; k < e->n_sinks; k++)
		free(e->sinks[k]);
	free(e->sinks);
	e->sinks = n_sinks ? kaa__xcalloc(n_sinks, sizeof(*e->sinks)) : NULL;
	for (size_t k = 0; k < n_sinks; k++)
		e->sinks[k] = kaa__xstrdup(sinks[k]);
	e->n_sinks = n_sinks;
out:
	pthread_mutex_unlock(&d->mu);
	return rc;
}

size_t kaa__owner_dir_drop_node(kaa__owner_dir *d, const char *node_id)
{
	size_t dropped = 0;
	if (!d || !node_id)
		return 0;
	pthread_mutex_lock(&d->mu);
	for (size_t b = 0; b < d->n_buckets; b++) {
		owner **link = &d->buckets[b];
		while (*link) {
			owner *o = *link;
			for (size_t i = 0; i < o->n_eps;) {
				if (strcmp(o->eps[i].node, node_id) == 0) {
					endpoint_clear(&o->eps[i]);
					o->eps[i] = o->eps[--o->n_eps];
					dropped++;
				} else {
					i++;
				}
			}
			if (o->n_eps == 0)
				unlink_owner(d, link);
			else
				link = &o->next;
		}
	}
	pthread_mutex_unlock(&d->mu);
	return dropped;
}

static bool sinks(const endpoint *e, const char *fqn)
{
	for (size_t i = 0; i < e->n_sinks; i++)
		if (strcmp(e->sinks[i], fqn) == 0)
			return true;
	return false;
}

typedef struct target {
	char *node, *key;
} target;

static int by_node(const void *a, const void *b)
{
	const target *x = a, *y = b;
	int c = strcmp(x->node, y->node);
	return c ? c : strcmp(x->key, y->key);
}

size_t kaa__owner_dir_route(kaa__owner_dir *d, int64_t app_id, const char *owner_id,
			    const char *source_key_hash, const char *fqn, const char *target_key,
			    kaa__owner_dir_deliver_cb deliver, void *ud)
{
	target *t = NULL;
	size_t n = 0;
	if (!d || !owner_id || !fqn)
		return 0;
	bool unicast = target_key && *target_key;
	pthread_mutex_lock(&d->mu);
	owner *o = find(d, app_id, owner_id, NULL);
	if (o && o->n_eps) {
		t = kaa__xcalloc(o->n_eps, sizeof(*t));
		for (size_t i = 0; i < o->n_eps; i++) {
			const endpoint *e = &o->eps[i];
			if ((source_key_hash && strcmp(e->key, source_key_hash) == 0) ||
			    (unicast && strcmp(e->key, target_key) != 0) || !sinks(e, fqn))
				continue;
			t[n].node = kaa__xstrdup(e->node);
			t[n].key = kaa__xstrdup(e->key);
			n++;
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (n > 1)
		qsort(t, n, sizeof(*t), by_node);
	const char **keys = n ? kaa__xcalloc(n, sizeof(*keys)) : NULL;
	for (size_t i = 0; i < n;) {
		size_t j = i, k = 0;
		while (j < n && strcmp(t[j].node, t[i].node) == 0)
			keys[k++] = t[j++].key;
		if (deliver)
			deliver(ud, t[i].node, keys, k);
		i = j;
	}
	for (size_t i = 0; i < n; i++) {
		free(t[i].node);
		free(t[i].key);
	}
	free(keys);
	free(t);
	return n;
}

size_t kaa__owner_dir_listeners(kaa__owner_dir *d, int64_t app_id, const char *owner_id,
				const char *asker, const char *const *fqns, size_t n_fqns,
				char ***out)
{
	size_t n = 0;
	*out = NULL;
	if (!d || !owner_id || !fqns || n_fqns == 0)
		return 0;
	pthread_mutex_lock(&d->mu);
	owner *o = find(d, app_id, owner_id, NULL);
	if (o && o->n_eps) {
		*out = kaa__xcalloc(o->n_eps, sizeof(**out));
		for (size_t i = 0; i < o->n_eps; i++) {
			const endpoint *e = &o->eps[i];
			bool all = !(asker && strcmp(e->key, asker) == 0);
			for (size_t k = 0; all && k < n_fqns; k++)
				all = fqns[k] && sinks(e, fqns[k]);
			if (all)
				(*out)[n++] = kaa__xstrdup(e->key);
		}
	}
	pthread_mutex_unlock(&d->mu);
	if (n == 0) {
		free(*out);
		*out = NULL;
	}
	return n;
}

void kaa__owner_dir_strings_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void kaa__owner_dir_each_owner(kaa__owner_dir *d, kaa__owner_dir_owner_cb cb, void *ud)
{
	struct snap {
		int64_t app;
		char *id;
	} *s = NULL;
	size_t n = 0;
	if (!d || !cb)
		return;
	/* a snapshot: cb may call back into the directory */
	pthread_mutex_lock(&d->mu);
	if (d->n_owners)
		s = kaa__xcalloc(d->n_owners, sizeof(*s));
	for (size_t b = 0; b < d->n_buckets; b++)
		for (owner *o = d->buckets[b]; o; o = o->next) {
			s[n].app = o->app_id;
			s[n++].id = kaa__xstrdup(o->id);
		}
	pthread_mutex_unlock(&d->mu);
	for (size_t i = 0; i < n; i++) {
		cb(ud, s[i].app, s[i].id);
		free(s[i].id);
	}
	free(s);
}

void kaa__owner_dir_forget_owner(kaa__owner_dir *d, int64_t app_id, const char *owner_id)
{
	if (!d || !owner_id)
		return;
	pthread_mutex_lock(&d->mu);
	owner **link = NULL;
	if (find(d, app_id, owner_id, &link))
		unlink_owner(d, link);
	pthread_mutex_unlock(&d->mu);
}
