/*
 * delivery.c - configuration (push, sync, merge patches) and notifications
 * (topic list, subscriptions, delivery after each stream's position,
 * acknowledgements) for one session. Called with the session's mu held.
 */
#include "operations/delivery.h"

#include "operations/ops_send.h"
#include "operations/ops_sessions.h"

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;
#define EC(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x

/* One catch-up pass sends at most this much; acknowledgements (and the next
 * change) continue it, so a long backlog never overflows the send queue. */
#define NOTIFY_MAX_PER_PASS 64
#define NOTIFY_MAX_BYTES_PER_PASS (96 * 1024)

static char *dup_or_die(const char *s)
{
	char *p = strdup(s);
	if (!p)
		kaa__oom();
	return p;
}

/* ---- positions ---------------------------------------------------------------------- */

ops_pos *kaa__opl_pos(ops_session *s, const char *topic, bool create)
{
	if (strlen(topic) >= sizeof(s->pos[0].topic))
		return NULL;
	for (size_t i = 0; i < s->n_pos; i++)
		if (strcmp(s->pos[i].topic, topic) == 0)
			return &s->pos[i];
	if (!create)
		return NULL;
	ops_pos *v = realloc(s->pos, (s->n_pos + 1) * sizeof(*v));
	if (!v)
		kaa__oom();
	s->pos = v;
	ops_pos *p = &s->pos[s->n_pos++];
	memset(p, 0, sizeof(*p));
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	return p;
}

int kaa__opl_positions_load(ops_session *s)
{
	yajl_val v = NULL;
	free(s->pos);
	s->pos = NULL;
	s->n_pos = 0;
	if (!s->ep.notif_state)
		return KAA_OK;
	int rc = kaa__json_parse(s->ep.notif_state, strlen(s->ep.notif_state), KAA_EP_JSON_MAX, 4,
				 &v, NULL, 0);
	if (rc != KAA_OK)
		return rc;
	if (YAJL_IS_OBJECT(v)) {
		for (size_t i = 0; i < v->u.object.len; i++) {
			int64_t seq;
			if (!kaa__json_int64(v->u.object.values[i], &seq) || seq < 0)
				continue;
			ops_pos *p = kaa__opl_pos(s, v->u.object.keys[i], true);
			if (p)
				p->acked = p->sent = (uint64_t)seq;
		}
	}
	yajl_tree_free(v);
	return KAA_OK;
}

int kaa__opl_positions_store(ops_session *s)
{
	size_t cap = 3 + s->n_pos * 48, o = 0;
	char *j = malloc(cap);
	if (!j)
		kaa__oom();
	j[o++] = '{';
	for (size_t i = 0; i < s->n_pos; i++) {
		if (!s->pos[i].acked)
			continue;
		/* topic ids are decimal or "": nothing to escape */
		o += (size_t)snprintf(j + o, cap - o, "%s\"%s\":%" PRIu64, o > 1 ? "," : "",
				      s->pos[i].topic, s->pos[i].acked);
	}
	j[o++] = '}';
	j[o] = '\0';
	free(s->ep.notif_state);
	s->ep.notif_state = j;
	return KAA_OK;
}

/* ---- configuration ------------------------------------------------------------------------ */

static bool in_set(const int64_t *ids, size_t n, int64_t id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ids[mid] == id)
			return true;
		if (ids[mid] < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int kaa__opl_current_config(ops_session *s, char **doc, char hash[KAA_SHA256_HEX_SIZE])
{
	ops_app *a = s->app;
	kaa__config_part *parts = kaa__xcalloc(a->n_groups + 1, sizeof(*parts));
	int64_t *ids = kaa__xcalloc(a->n_groups + 1, sizeof(int64_t));
	size_t n = 0;
	char err[KAA_JSON_ERR_SIZE];
	int rc = KAA_OK;

	/* group id order, as control's resolve-configuration: same hash */
	for (size_t i = 0; i < a->n_groups; i++) {
		const ops_group *g = &a->groups[i];
		if (!g->config || !in_set(s->gids, s->n_gids, g->id))
			continue;
		parts[n].json = g->config;
		parts[n].len = strlen(g->config);
		parts[n].weight = g->weight;
		ids[n++] = g->id;
	}
	*doc = NULL;
	pthread_mutex_lock(&a->memo_mu);
	for (size_t i = 0; i < a->n_memo; i++) {
		ops_cfg_memo *m = &a->memo[i];
		if (m->n == n && (n == 0 || memcmp(m->ids, ids, n * sizeof(int64_t)) == 0)) {
			*doc = kaa__xstrdup(m->doc);
			memcpy(hash, m->hash, KAA_SHA256_HEX_SIZE);
			break;
		}
	}
	pthread_mutex_unlock(&a->memo_mu);
	if (*doc)
		goto out;
	rc = kaa__config_merge(parts, n, doc, NULL, hash, err, sizeof(err));
	if (rc != KAA_OK) {
		KAA_WARN(MOD, "config_merge_failed app=%" PRId64 " err=\"%s\"", a->id, err);
		goto out;
	}
	pthread_mutex_lock(&a->memo_mu);
	size_t slot = a->n_memo < OPS_CFG_MEMO ? a->n_memo++ : a->next_memo++ % OPS_CFG_MEMO;
	ops_cfg_memo *m = &a->memo[slot];
	free(m->ids);
	free(m->doc);
	m->ids = ids;
	m->n = n;
	m->doc = kaa__xstrdup(*doc);
	memcpy(m->hash, hash, KAA_SHA256_HEX_SIZE);
	ids = NULL;
	pthread_mutex_unlock(&a->memo_mu);
out:
	free(ids);
	free(parts);
	return rc;
}

/* Fills the three shapes: up to date, a patch from the delivered document
 * when it is known, else the full document. Strings point into the
 * arguments; *patch (malloc'd) is freed by the caller. */
typedef struct cfg_answer {
	int result; /* 1 up_to_date, 2 full, 3 patch (both oneofs number them so) */
	Kaa__Endpoint__V1__ConfigUpToDate up;
	Kaa__Endpoint__V1__ConfigDocument full;
	Kaa__Endpoint__V1__ConfigPatch patch;
	char *patch_json;
} cfg_answer;

static void cfg_answer_build(cfg_answer *c, const char *have_hash, const char *base_doc,
			     const char *base_hash, char *doc, char *hash)
{
	Kaa__Endpoint__V1__ConfigUpToDate up = KAA__ENDPOINT__V1__CONFIG_UP_TO_DATE__INIT;
	Kaa__Endpoint__V1__ConfigDocument full = KAA__ENDPOINT__V1__CONFIG_DOCUMENT__INIT;
	Kaa__Endpoint__V1__ConfigPatch patch = KAA__ENDPOINT__V1__CONFIG_PATCH__INIT;
	char err[KAA_JSON_ERR_SIZE];
	c->up = up;
	c->full = full;
	c->patch = patch;
	c->patch_json = NULL;
	if (have_hash && strcmp(have_hash, hash) == 0) {
		c->result = 1;
		c->up.hash = hash;
		return;
	}
	if (have_hash && *have_hash && base_doc && base_hash && strcmp(have_hash, base_hash) == 0 &&
	    kaa__json_merge_patch_diff(base_doc, strlen(base_doc), doc, strlen(doc), &c->patch_json,
				       NULL, err, sizeof(err)) == KAA_OK &&
	    strlen(c->patch_json) <= strlen(doc)) {
		c->result = 3;
		c->patch.patch_json = c->patch_json;
		c->patch.base_hash = (char *)base_hash;
		c->patch.new_hash = hash;
		return;
	}
	free(c->patch_json);
	c->patch_json = NULL;
	c->result = 2;
	c->full.json = doc;
	c->full.hash = hash;
}

void kaa__opl_config_push(kaa__operations *ops, ops_session *s, bool force)
{
	char *doc = NULL, hash[KAA_SHA256_HEX_SIZE];
	cfg_answer c;

	if (kaa__opl_current_config(s, &doc, hash) != KAA_OK)
		return;
	if (!force &&
	    ((s->push_req && strcmp(s->push_hash, hash) == 0) ||
	     (!s->push_req && s->ep.config_hash && strcmp(s->ep.config_hash, hash) == 0))) {
		free(doc);
		return;
	}
	/* the device holds what it acknowledged last or, most likely, the push
	 * still awaiting its Ack; a device whose document differs from
	 * base_hash asks for the full one (docs/protocol.md) */
	const char *base_doc = s->ep.config_doc, *base_hash = s->ep.config_hash;
	if (s->push_req && s->push_doc) {
		base_doc = s->push_doc;
		base_hash = s->push_hash;
	}
	cfg_answer_build(&c, base_hash, base_doc, base_hash, doc, hash);
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ConfigPush p = KAA__ENDPOINT__V1__CONFIG_PUSH__INIT;
	p.result_case = (Kaa__Endpoint__V1__ConfigPush__ResultCase)c.result;
	if (c.result == 1)
		p.up_to_date = &c.up;
	else if (c.result == 2)
		p.full = &c.full;
	else
		p.patch = &c.patch;
	s->push_req = ++s->next_req;
	f.request_id = s->push_req;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_PUSH;
	f.config_push = &p;
	kaa__opl_send(ops, s->sid, &f);
	kaa__counter_inc(ops->configs_sent);
	free(c.patch_json);
	free(s->push_doc);
	s->push_doc = doc;
	memcpy(s->push_hash, hash, sizeof(hash));
}

/* Records doc/hash as the configuration the device holds. */
static void delivered(kaa__operations *ops, ops_session *s, char *doc, const char *hash)
{
	if (s->ep.config_hash && strcmp(s->ep.config_hash, hash) == 0 && s->ep.config_doc) {
		free(doc);
		return;
	}
	free(s->ep.config_hash);
	free(s->ep.config_doc);
	s->ep.config_hash = dup_or_die(hash);
	s->ep.config_doc = doc;
	kaa__opl_save(ops, s);
}

void kaa__opl_ack_received(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	if (!f->request_id || f->request_id != s->push_req)
		return; /* an Ack of nothing pending: ignored */
	s->push_req = 0;
	char *doc = s->push_doc;
	s->push_doc = NULL;
	delivered(ops, s, doc, s->push_hash);
}

void kaa__opl_config_sync(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const char *have = f->config_sync_request ? f->config_sync_request->config_hash : "";
	char *doc = NULL, hash[KAA_SHA256_HEX_SIZE];
	cfg_answer c;

	if (kaa__opl_current_config(s, &doc, hash) != KAA_OK) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
			       "the configuration cannot be computed");
		return;
	}
	cfg_answer_build(&c, have ? have : "", s->ep.config_doc, s->ep.config_hash, doc, hash);
	frame_t out = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ConfigSyncResponse r = KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__INIT;
	r.result_case = (Kaa__Endpoint__V1__ConfigSyncResponse__ResultCase)c.result;
	if (c.result == 1)
		r.up_to_date = &c.up;
	else if (c.result == 2)
		r.full = &c.full;
	else
		r.patch = &c.patch;
	out.request_id = f->request_id;
	out.body_case = KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_RESPONSE;
	out.config_sync_response = &r;
	int rc = kaa__opl_send(ops, s->sid, &out);
	kaa__counter_inc(ops->configs_sent);
	free(c.patch_json);
	/* the answer supersedes a pending push */
	s->push_req = 0;
	free(s->push_doc);
	s->push_doc = NULL;
	if (rc == KAA_OK)
		delivered(ops, s, doc, hash);
	else
		free(doc);
}

/* ---- topics and notifications ------------------------------------------------------------- */

bool kaa__opl_topic_visible(const ops_session *s, const ops_topic *t)
{
	if (!t->n_group_ids)
		return true;
	for (size_t i = 0; i < t->n_group_ids; i++)
		if (in_set(s->gids, s->n_gids, t->group_ids[i]))
			return true;
	return false;
}

bool kaa__opl_topic_subscribed(const ops_session *s, const ops_topic *t)
{
	return t->mandatory || in_set(s->subs, s->n_subs, t->id);
}

static const ops_topic *find_topic(const ops_app *a, int64_t id)
{
	size_t lo = 0, hi = a->n_topics;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (a->topics[mid].id == id)
			return &a->topics[mid];
		if (a->topics[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void kaa__opl_topics_send(kaa__operations *ops, ops_session *s, bool force)
{
	const ops_app *a = s->app;
	Kaa__Endpoint__V1__Topic *tv = calloc(a->n_topics + 1, sizeof(*tv));
	Kaa__Endpoint__V1__Topic **tp = calloc(a->n_topics + 1, sizeof(*tp));
	size_t n = 0, siglen = 0, sigcap = 64 + a->n_topics * 300;
	char *sig = malloc(sigcap), hash[KAA_SHA256_HEX_SIZE];
	if (!tv || !tp || !sig)
		kaa__oom();
	for (size_t i = 0; i < a->n_topics; i++) {
		const ops_topic *t = &a->topics[i];
		if (!kaa__opl_topic_visible(s, t))
			continue;
		Kaa__Endpoint__V1__Topic x = KAA__ENDPOINT__V1__TOPIC__INIT;
		x.topic_id = (char *)t->id_str;
		x.name = t->name;
		x.mandatory = t->mandatory;
		x.subscribed = kaa__opl_topic_subscribed(s, t);
		x.last_seq = (uint64_t)t->seq;
		tv[n] = x;
		tp[n] = &tv[n];
		n++;
		/* the list changes with topics, names and subscriptions, not with
		 * every new notification */
		siglen += (size_t)snprintf(sig + siglen, sigcap - siglen, "%s|%.255s|%d|%d;",
					   t->id_str, t->name, t->mandatory, x.subscribed);
	}
	kaa__json_sha256_hex(sig, siglen, hash);
	if (force || strcmp(hash, s->topics_sig) != 0) {
		frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
		Kaa__Endpoint__V1__NotificationTopics nt =
			KAA__ENDPOINT__V1__NOTIFICATION_TOPICS__INIT;
		nt.topics = tp;
		nt.n_topics = n;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_TOPICS;
		f.notification_topics = &nt;
		if (kaa__opl_send(ops, s->sid, &f) == KAA_OK)
			memcpy(s->topics_sig, hash, sizeof(hash));
	}
	free(sig);
	free(tv);
	free(tp);
}

static uint64_t pos_next(const ops_pos *p)
{
	return p ? (p->acked > p->sent ? p->acked : p->sent) : 0;
}

void kaa__opl_notify(kaa__operations *ops, ops_session *s)
{
	const ops_app *a = s->app;
	int64_t now = kaa__wall_ms();
	size_t count = 0, bytes = 0;

	for (size_t i = 0; i < a->n_notifs; i++) {
		const ops_notif *n = &a->notifs[i];
		const char *stream;
		uint64_t seq;
		char tid[24];
		if (n->expires_ms && n->expires_ms <= now)
			continue;
		if (n->ekh) {
			if (strcmp(n->ekh, s->ep.key_hash) != 0)
				continue;
			/* the unicast stream is numbered by notification id */
			stream = "";
			seq = (uint64_t)n->id;
		} else {
			const ops_topic *t = find_topic(a, n->topic_id);
			if (!t || !kaa__opl_topic_visible(s, t) || !kaa__opl_topic_subscribed(s, t))
				continue;
			snprintf(tid, sizeof(tid), "%" PRId64, n->topic_id);
			stream = tid;
			seq = (uint64_t)n->seq;
		}
		ops_pos *p = kaa__opl_pos(s, stream, true);
		if (!p || seq <= pos_next(p))
			continue;
		if (count >= NOTIFY_MAX_PER_PASS || bytes >= NOTIFY_MAX_BYTES_PER_PASS)
			break;
		frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
		Kaa__Endpoint__V1__Notification m = KAA__ENDPOINT__V1__NOTIFICATION__INIT;
		m.topic_id = (char *)stream;
		m.seq = seq;
		m.body_json = n->body;
		m.expires_at_ms = n->expires_ms > 0 ? (uint64_t)n->expires_ms : 0;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION;
		f.notification = &m;
		if (kaa__opl_send(ops, s->sid, &f) != KAA_OK)
			break; /* gone or its queue is full: it is being closed */
		p->sent = seq;
		count++;
		bytes += strlen(n->body) + 64;
		kaa__counter_inc(ops->notifs_sent);
	}
}

void kaa__opl_notification_ack(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__NotificationAck *a = f->notification_ack;
	if (!a || !a->topic_id)
		return;
	ops_pos *p = kaa__opl_pos(s, a->topic_id, false);
	if (!p) {
		/* a stream we never sent on: only "" and known topics are stored */
		bool known = !*a->topic_id;
		for (size_t i = 0; !known && i < s->app->n_topics; i++)
			known = strcmp(s->app->topics[i].id_str, a->topic_id) == 0;
		if (!known)
			return;
		p = kaa__opl_pos(s, a->topic_id, true);
		if (!p)
			return;
	}
	if (a->seq <= p->acked)
		return;
	p->acked = a->seq;
	if (p->sent < p->acked)
		p->sent = p->acked;
	kaa__opl_positions_store(s);
	kaa__opl_save(ops, s);
	/* continue a backlog that one pass did not finish */
	kaa__opl_notify(ops, s);
}

void kaa__opl_subscribe(kaa__operations *ops, ops_session *s, const frame_t *f, bool subscribe)
{
	const char *id_str = subscribe ? (f->subscribe ? f->subscribe->topic_id : NULL)
				       : (f->unsubscribe ? f->unsubscribe->topic_id : NULL);
	const char *field = subscribe ? "subscribe.topic_id" : "unsubscribe.topic_id";
	char *end;
	if (!id_str || !*id_str) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false, field, NULL,
			       "topic_id is required");
		return;
	}
	long long id = strtoll(id_str, &end, 10);
	const ops_topic *t = *end || id < 1 ? NULL : find_topic(s->app, id);
	if (!t || !kaa__opl_topic_visible(s, t)) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(NOT_FOUND), false, field, NULL,
			       "no such topic for this endpoint");
		return;
	}
	if (t->mandatory) {
		if (subscribe)
			kaa__opl_ack(ops, s->sid, f->request_id);
		else
			kaa__opl_error(ops, s->sid, f->request_id, EC(FORBIDDEN), false, field,
				       NULL, "mandatory topics cannot be unsubscribed");
		return;
	}
	bool has = in_set(s->subs, s->n_subs, t->id);
	if (has != subscribe) {
		int64_t *v = calloc(s->n_subs + 1, sizeof(int64_t));
		size_t n = 0;
		if (!v)
			kaa__oom();
		for (size_t i = 0; i < s->n_subs; i++) {
			if (subscribe && !has && t->id < s->subs[i]) {
				v[n++] = t->id;
				has = true;
			}
			if (subscribe || s->subs[i] != t->id)
				v[n++] = s->subs[i];
		}
		if (subscribe && !has)
			v[n++] = t->id;
		size_t cap = 3 + n * 24, o = 0;
		char *json = malloc(cap);
		if (!json)
			kaa__oom();
		json[o++] = '[';
		for (size_t i = 0; i < n; i++)
			o += (size_t)snprintf(json + o, cap - o, "%s\"%" PRId64 "\"", i ? "," : "",
					      v[i]);
		json[o++] = ']';
		json[o] = '\0';
		char *old_json = s->ep.topics;
		s->ep.topics = json;
		if (kaa__opl_save(ops, s) != KAA_OK) {
			s->ep.topics = old_json;
			free(json);
			free(v);
			kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
				       "the subscription could not be stored; retry later");
			return;
		}
		free(old_json);
		free(s->subs);
		s->subs = v;
		s->n_subs = n;
	}
	kaa__opl_ack(ops, s->sid, f->request_id);
	kaa__opl_topics_send(ops, s, false);
	if (subscribe)
		kaa__opl_notify(ops, s);
}
