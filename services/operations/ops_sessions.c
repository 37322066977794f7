/*
 * ops_sessions.c - the session tables (ops_sessions.h).
 */
#include "operations/ops_sessions.h"

#include "operations/ops_app_cache.h"

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define MOD "operations"

static size_t sid_bucket(kaa__session_id sid)
{
	return (size_t)((sid * 0x9E3779B97F4A7C15ull) >> 52) % OPS_SID_BUCKETS;
}

static size_t key_bucket(int64_t app_id, const char *key)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)app_id;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % OPS_SID_BUCKETS);
}

void kaa__opl_session_put(ops_session *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	kaa__opl_app_put(s->app);
	kaa__endpoint_clear(&s->ep);
	free(s->pos);
	free(s->gids);
	free(s->subs);
	free(s->push_doc);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

ops_session *kaa__opl_session_get(kaa__operations *ops, kaa__session_id sid, bool create)
{
	size_t b = sid_bucket(sid);
	ops_session *s;
	pthread_mutex_lock(&ops->mu);
	for (s = ops->by_sid[b]; s && s->sid != sid; s = s->next_sid)
		;
	if (!s && create) {
		s = kaa__xcalloc(1, sizeof(*s));
		s->sid = sid;
		atomic_init(&s->refs, 1); /* the table's */
		pthread_mutex_init(&s->mu, NULL);
		s->next_sid = ops->by_sid[b];
		ops->by_sid[b] = s;
	}
	if (s)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&ops->mu);
	return s;
}

kaa__session_id kaa__opl_bind_key(kaa__operations *ops, ops_session *s)
{
	size_t b = key_bucket(s->ep.app_id, s->ep.key_hash);
	kaa__session_id old = 0;
	pthread_mutex_lock(&ops->mu);
	for (ops_session **pp = &ops->by_key[b]; *pp; pp = &(*pp)->next_key) {
		ops_session *o = *pp;
		if (o->ep.app_id == s->ep.app_id && strcmp(o->ep.key_hash, s->ep.key_hash) == 0) {
			old = o->sid;
			*pp = o->next_key;
			o->in_key_table = false;
			break;
		}
	}
	s->next_key = ops->by_key[b];
	ops->by_key[b] = s;
	s->in_key_table = true;
	ops->n_sessions++;
	pthread_mutex_unlock(&ops->mu);
	return old;
}

bool kaa__opl_session_unlink(kaa__operations *ops, ops_session *s)
{
	bool found = false;
	pthread_mutex_lock(&ops->mu);
	for (ops_session **pp = &ops->by_sid[sid_bucket(s->sid)]; *pp; pp = &(*pp)->next_sid) {
		if (*pp == s) {
			*pp = s->next_sid;
			found = true;
			break;
		}
	}
	if (s->in_key_table) {
		size_t b = key_bucket(s->ep.app_id, s->ep.key_hash);
		for (ops_session **pp = &ops->by_key[b]; *pp; pp = &(*pp)->next_key) {
			if (*pp == s) {
				*pp = s->next_key;
				break;
			}
		}
		s->in_key_table = false;
	}
	if (s->established && ops->n_sessions)
		ops->n_sessions--;
	pthread_mutex_unlock(&ops->mu);
	return found;
}

ops_session **kaa__opl_sessions_snapshot(kaa__operations *ops, int64_t app_id, size_t *n)
{
	ops_session **v = NULL;
	size_t cnt = 0, cap = 0;
	pthread_mutex_lock(&ops->mu);
	for (size_t b = 0; b < OPS_SID_BUCKETS; b++) {
		for (ops_session *s = ops->by_sid[b]; s; s = s->next_sid) {
			if (app_id > 0 && (!s->app || s->app->id != app_id))
				continue;
			if (cnt == cap) {
				cap = cap ? cap * 2 : 64;
				v = realloc(v, cap * sizeof(*v));
				if (!v)
					kaa__oom();
			}
			atomic_fetch_add(&s->refs, 1);
			v[cnt++] = s;
		}
	}
	pthread_mutex_unlock(&ops->mu);
	*n = cnt;
	return v;
}

void kaa__opl_snapshot_free(ops_session **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kaa__opl_session_put(v[i]);
	free(v);
}

ops_session *kaa__opl_session_by_key(kaa__operations *ops, int64_t app_id, const char *key)
{
	ops_session *s;
	pthread_mutex_lock(&ops->mu);
	for (s = ops->by_key[key_bucket(app_id, key)]; s; s = s->next_key)
		if (s->ep.app_id == app_id && strcmp(s->ep.key_hash, key) == 0)
			break;
	if (s)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&ops->mu);
	return s;
}

int kaa__opl_save(kaa__operations *ops, ops_session *s)
{
	int rc = kaa__ep_put(ops->eps, &s->ep);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "endpoint_save_failed app=%" PRId64 " key=%s err=%s", s->ep.app_id,
			 s->ep.key_hash, kaa_strerror(rc));
	return rc;
}
