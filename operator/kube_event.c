/*
 * kube_event.c - events.k8s.io/v1 Events with client-side aggregation.
 *
 * The first occurrence of an event (same object, type, reason, action and
 * note) is created; repeats within 10 minutes of the previous one patch
 * the same Event's series (count, lastObservedTime) instead of creating
 * more objects, as client-go's event recorder does. The cache of recent
 * events is bounded (least recently used evicted); its lock is held
 * during the request so that repeats in a burst patch in order.
 */
#include "kube_event.h"

#include "kube_internal.h"

#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SIZE 256
#define SERIES_WINDOW_MS (10 * 60 * 1000)
#define NOTE_MAX 1024
#define REQ_TIMEOUT_MS 10000
#define REPORTING_CONTROLLER "kaaproject.org/kaa-operator"

typedef struct recent {
	char *key; /* NULL: free slot */
	char *ns, *name;
	int count;
	int64_t last_ms;
} recent;

struct kaa__kube_recorder {
	kaa__kube *k;       /* borrowed */
	pthread_mutex_t mu; /* guards the cache and seq */
	recent r[CACHE_SIZE];
	uint64_t seq;
};

kaa__kube_recorder *kaa__kube_recorder_new(kaa__kube *k)
{
	kaa__kube_recorder *e = kaa__xcalloc(1, sizeof(*e));
	e->k = k;
	pthread_mutex_init(&e->mu, NULL);
	return e;
}

static void recent_clear(recent *r)
{
	free(r->key);
	free(r->ns);
	free(r->name);
	*r = (recent){0};
}

void kaa__kube_recorder_free(kaa__kube_recorder *e)
{
	if (!e)
		return;
	for (int i = 0; i < CACHE_SIZE; i++)
		recent_clear(&e->r[i]);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

/* s cut to at most max bytes without splitting a UTF-8 sequence. */
static char *utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	return kaa__xstrndup(s, n);
}

static bool ok_str(const char *s, size_t max)
{
	return s && *s && strlen(s) <= max;
}

static int post_new(kaa__kube *k, const kaa__kube_ref *reg, const char *ns, const char *name,
		    const char *type, const char *reason, const char *action, const char *note)
{
	kaa__buf b = {0}, p = {0};
	char now[32];
	char *id = kaa__kube_identity(k);
	kaa__kube_resp r;
	kaa__kube_req_opts o = {.timeout_ms = REQ_TIMEOUT_MS};
	int rc;

	kaa__kube_microtime(now);
	kaa__buf_puts(&b, "{\"apiVersion\":\"events.k8s.io/v1\",\"kind\":\"Event\","
			  "\"metadata\":{\"name\":");
	kaa__kube_json_str(&b, name);
	kaa__buf_puts(&b, ",\"namespace\":");
	kaa__kube_json_str(&b, ns);
	kaa__buf_puts(&b, "},\"eventTime\":");
	kaa__kube_json_str(&b, now);
	kaa__buf_puts(&b, ",\"reportingController\":\"" REPORTING_CONTROLLER
			  "\",\"reportingInstance\":");
	kaa__kube_json_str(&b, id);
	kaa__buf_puts(&b, ",\"type\":");
	kaa__kube_json_str(&b, type);
	kaa__buf_puts(&b, ",\"reason\":");
	kaa__kube_json_str(&b, reason);
	kaa__buf_puts(&b, ",\"action\":");
	kaa__kube_json_str(&b, action);
	kaa__buf_puts(&b, ",\"note\":");
	kaa__kube_json_str(&b, note);
	kaa__buf_puts(&b, ",\"regarding\":{\"apiVersion\":");
	kaa__kube_json_str(&b, reg->api_version);
	kaa__buf_puts(&b, ",\"kind\":");
	kaa__kube_json_str(&b, reg->kind);
	kaa__buf_puts(&b, ",\"name\":");
	kaa__kube_json_str(&b, reg->name);
	if (reg->ns && *reg->ns) {
		kaa__buf_puts(&b, ",\"namespace\":");
		kaa__kube_json_str(&b, reg->ns);
	}
	if (reg->uid && *reg->uid) {
		kaa__buf_puts(&b, ",\"uid\":");
		kaa__kube_json_str(&b, reg->uid);
	}
	kaa__buf_puts(&b, "}}");
	kaa__buf_puts(&p, "/apis/events.k8s.io/v1/namespaces/");
	kaa__kube_query(&p, ns);
	kaa__buf_puts(&p, "/events");
	free(id);
	rc = kaa__kube_request_ex(k, "POST", p.p, "application/json", b.p, &o, &r);
	if (rc == KAA_OK) {
		if (r.status != 201 && r.status != 200) {
			KAA_WARN("kube", "event_post_failed ns=%s reason=%s status=%ld", ns, reason,
				 r.status);
			rc = KAA_ERR_UNAVAILABLE;
		}
		kaa__kube_resp_clear(&r);
	}
	kaa__buf_free(&b);
	kaa__buf_free(&p);
	return rc;
}

/* KAA_OK, KAA_ERR_NOTFOUND (the Event is gone), or another error. */
static int patch_series(kaa__kube *k, const recent *e)
{
	kaa__buf b = {0}, p = {0};
	char now[32];
	kaa__kube_resp r;
	kaa__kube_req_opts o = {.timeout_ms = REQ_TIMEOUT_MS};
	int rc;

	kaa__kube_microtime(now);
	kaa__buf_printf(&b, "{\"series\":{\"count\":%d,\"lastObservedTime\":", e->count);
	kaa__kube_json_str(&b, now);
	kaa__buf_puts(&b, "}}");
	kaa__buf_puts(&p, "/apis/events.k8s.io/v1/namespaces/");
	kaa__kube_query(&p, e->ns);
	kaa__buf_puts(&p, "/events/");
	kaa__kube_query(&p, e->name);
	rc = kaa__kube_request_ex(k, "PATCH", p.p, "application/merge-patch+json", b.p, &o, &r);
	if (rc == KAA_OK) {
		if (r.status == 404)
			rc = KAA_ERR_NOTFOUND;
		else if (r.status != 200) {
			KAA_WARN("kube", "event_patch_failed ns=%s name=%s status=%ld", e->ns,
				 e->name, r.status);
			rc = KAA_ERR_UNAVAILABLE;
		}
		kaa__kube_resp_clear(&r);
	}
	kaa__buf_free(&b);
	kaa__buf_free(&p);
	return rc;
}

int kaa__kube_event(kaa__kube_recorder *ev, const kaa__kube_ref *regarding, const char *type,
		    const char *reason, const char *action, const char *note)
{
	kaa__kube *k;
	char *key = NULL, *cut = NULL, *name = NULL;
	int rc = KAA_OK;

	if (!ev || !regarding || !ok_str(regarding->kind, 253) || !ok_str(regarding->name, 253) ||
	    !ok_str(regarding->api_version, 253) || !type ||
	    (strcmp(type, "Normal") != 0 && strcmp(type, "Warning") != 0) || !ok_str(reason, 128) ||
	    !ok_str(action, 128) || !note)
		return KAA_ERR_INVAL;
	k = ev->k;
	const char *ns = regarding->ns && *regarding->ns ? regarding->ns : "default";
	cut = utf8_cut(note, NOTE_MAX);
	key = kaa__xasprintf("%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s\x1f%s", ns, regarding->kind,
			     regarding->name, regarding->uid ? regarding->uid : "", type, reason,
			     action, cut);
	pthread_mutex_lock(&ev->mu);
	int64_t now = kaa__now_ms();
	recent *hit = NULL, *lru = &ev->r[0];
	for (int i = 0; i < CACHE_SIZE; i++) {
		recent *r = &ev->r[i];
		if (r->key && strcmp(r->key, key) == 0)
			hit = r;
		if (!r->key || (lru->key && r->last_ms < lru->last_ms))
			lru = r;
	}
	if (hit && now - hit->last_ms < SERIES_WINDOW_MS) {
		hit->count++;
		hit->last_ms = now;
		rc = patch_series(k, hit);
		if (rc != KAA_ERR_NOTFOUND)
			goto unlock;
		/* Deleted meanwhile (TTL): start again with a new Event. */
	}
	if (hit)
		recent_clear(hit);
	recent *slot = hit ? hit : lru;
	recent_clear(slot);
	name = kaa__xasprintf("%.200s.%llx%04llx", regarding->name,
			      (unsigned long long)kaa__wall_ms(),
			      (unsigned long long)(ev->seq++ & 0xffff));
	rc = post_new(k, regarding, ns, name, type, reason, action, cut);
	if (rc == KAA_OK) {
		slot->key = key;
		slot->ns = kaa__xstrdup(ns);
		slot->name = name;
		slot->count = 1;
		slot->last_ms = now;
		key = NULL;
		name = NULL;
	}
unlock:
	pthread_mutex_unlock(&ev->mu);
	if (rc != KAA_OK)
		KAA_WARN("kube", "event_not_recorded ns=%s object=%s reason=%s err=\"%s\"", ns,
			 regarding->name, reason, kaa_strerror(rc));
	free(key);
	free(name);
	free(cut);
	return rc;
}
