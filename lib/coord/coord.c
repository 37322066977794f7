/* coord.c - dispatch from the coord.h interface to a backend, shared
 * helpers, and call counters. */
#include "coord/coord_internal.h"
#include "base/alloc.h"
#include "base/error.h"

#include <stdlib.h>
#include <string.h>

void kaa__kv_clear(kaa__kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void kaa__kv_set(kaa__kv *kv, const char *key, size_t key_len, const void *val, size_t val_len)
{
	char *k = kaa__xmalloc(key_len + 1);
	char *v = kaa__xmalloc(val_len + 1);
	memcpy(k, key, key_len);
	k[key_len] = '\0';
	if (val_len)
		memcpy(v, val, val_len);
	v[val_len] = '\0';
	free(kv->key);
	free(kv->value);
	kv->key = k;
	kv->value = v;
	kv->value_len = val_len;
}

void kaa__kv_list_clear(kaa__kv_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		kaa__kv_clear(&l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
	l->revision = 0;
}

char *kaa__prefix_end(const char *prefix, size_t *len)
{
	size_t n = strlen(prefix);
	char *end = kaa__xmalloc(n + 1);
	memcpy(end, prefix, n + 1);
	for (size_t i = n; i > 0; i--) {
		unsigned char ch = (unsigned char)end[i - 1];
		if (ch < 0xff) {
			end[i - 1] = (char)(ch + 1);
			end[i] = '\0';
			*len = i;
			return end;
		}
	}
	end[0] = '\0';
	*len = 1;
	return end;
}

const char *kaa__coord_kind(const kaa__coord *c)
{
	return c->ops->kind;
}

void kaa__coord_free(kaa__coord *c)
{
	if (c)
		c->ops->free(c);
}

static int count(kaa__coord *c, int rc)
{
	atomic_fetch_add(&c->calls, 1);
	if (rc != KAA_OK && rc != KAA_ERR_NOTFOUND)
		atomic_fetch_add(&c->call_errors, 1);
	return rc;
}

int kaa__coord_range(kaa__coord *c, const char *key, bool prefix, kaa__kv_list *out)
{
	memset(out, 0, sizeof(*out));
	if (!key || !*key)
		return KAA_ERR_INVAL;
	return count(c, c->ops->range(c, key, prefix, out));
}

int kaa__coord_get(kaa__coord *c, const char *key, kaa__kv *out, int64_t *revision)
{
	kaa__kv_list l;
	int rc = kaa__coord_range(c, key, false, &l);
	if (rc != KAA_OK)
		return rc;
	if (revision)
		*revision = l.revision;
	if (l.n == 0) {
		kaa__kv_list_clear(&l);
		return KAA_ERR_NOTFOUND;
	}
	*out = l.items[0];
	memset(&l.items[0], 0, sizeof(l.items[0]));
	kaa__kv_list_clear(&l);
	return KAA_OK;
}

int kaa__coord_put(kaa__coord *c, const char *key, const void *val, size_t len, int64_t lease,
		   int64_t *revision)
{
	if (!key || !*key || (len && !val))
		return KAA_ERR_INVAL;
	return count(c, c->ops->put(c, key, val, len, lease, revision));
}

int kaa__coord_delete(kaa__coord *c, const char *key, bool prefix, int64_t *deleted)
{
	if (!key || !*key)
		return KAA_ERR_INVAL;
	return count(c, c->ops->del(c, key, prefix, deleted));
}

int kaa__coord_cas(kaa__coord *c, const char *key, int64_t expect_mod_rev, const void *val,
		   size_t len, int64_t lease, bool *succeeded, kaa__kv *current)
{
	if (!key || !*key || expect_mod_rev < 0)
		return KAA_ERR_INVAL;
	if (current)
		memset(current, 0, sizeof(*current));
	*succeeded = false;
	return count(c, c->ops->cas(c, key, expect_mod_rev, val, len, lease, succeeded, current));
}

int kaa__coord_compact(kaa__coord *c, int64_t revision)
{
	return count(c, c->ops->compact(c, revision));
}

int kaa__coord_lease_grant(kaa__coord *c, int64_t ttl_s, int64_t *id)
{
	if (ttl_s < 1)
		return KAA_ERR_INVAL;
	return count(c, c->ops->lease_grant(c, ttl_s, id));
}

int kaa__coord_lease_revoke(kaa__coord *c, int64_t id)
{
	return count(c, c->ops->lease_revoke(c, id));
}

int kaa__coord_lease_keepalive(kaa__coord *c, int64_t id, int64_t *ttl_left)
{
	return count(c, c->ops->lease_keepalive(c, id, ttl_left));
}

int kaa__coord_watch(kaa__coord *c, const char *key, int flags, int64_t start_rev,
		     const kaa__watch_cb *cb, kaa__watch **out)
{
	if (!key || !*key || !cb || !cb->events || start_rev < 0)
		return KAA_ERR_INVAL;
	return c->ops->watch(c, key, flags, start_rev, cb, out);
}

void kaa__coord_watch_free(kaa__watch *w)
{
	if (w)
		w->coord->ops->watch_free(w);
}

int64_t kaa__coord_watch_revision(kaa__watch *w)
{
	return w->coord->ops->watch_revision(w);
}

void kaa__coord_get_stats(kaa__coord *c, kaa__coord_stats *out)
{
	out->calls = atomic_load(&c->calls);
	out->call_errors = atomic_load(&c->call_errors);
	out->watch_reconnects = atomic_load(&c->watch_reconnects);
	out->watch_resets = atomic_load(&c->watch_resets);
}
