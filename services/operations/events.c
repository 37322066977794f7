/*
 * events.c - device-to-device events (docs/protocol.md, "Events and
 * owners"): an Event from a device is checked (attached to an owner, the
 * class mapped to the application as a source, the body valid against the
 * class schema) and handed to the router (event_router.h), which routes it
 * through the owner's home node to the nodes holding the targets. The
 * device gets EventAck{seq} once every such node has taken the event; a
 * device keeps an event until then and re-sends it after a reconnect, and
 * receivers drop (source, seq) pairs they have seen, so delivery is
 * at-least-once end to end.
 *
 * Requests waiting for the router are kept in a token table (ops->pending,
 * bounded by OPS_PENDING_MAX); the router's callbacks take them out.
 */
#include "operations/events.h"

#include "operations/ops_app_cache.h"
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

const ops_evclass *kaa__opl_evclass(const ops_app *a, const char *fqn)
{
	size_t lo = 0, hi = a->n_evclasses;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->evclasses[mid].fqn, fqn);
		if (c == 0)
			return &a->evclasses[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- pending requests -------------------------------------------------------------------- */

static uint64_t pending_add(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
			    uint64_t seq)
{
	uint64_t token = 0;
	pthread_mutex_lock(&ops->pend_mu);
	if (ops->n_pending < OPS_PENDING_MAX) {
		ops_pending *p = kaa__xcalloc(1, sizeof(*p));
		token = ++ops->next_token;
		*p = (ops_pending){
			.token = token, .sid = sid, .request_id = request_id, .seq = seq};
		size_t b = token % OPS_PENDING_BUCKETS;
		p->next = ops->pending[b];
		ops->pending[b] = p;
		ops->n_pending++;
	}
	pthread_mutex_unlock(&ops->pend_mu);
	return token;
}

/* Takes the request out of the table (caller frees), or NULL. */
static ops_pending *pending_take(kaa__operations *ops, uint64_t token)
{
	ops_pending *p = NULL;
	pthread_mutex_lock(&ops->pend_mu);
	for (ops_pending **pp = &ops->pending[token % OPS_PENDING_BUCKETS]; *pp;
	     pp = &(*pp)->next) {
		if ((*pp)->token == token) {
			p = *pp;
			*pp = p->next;
			ops->n_pending--;
			break;
		}
	}
	pthread_mutex_unlock(&ops->pend_mu);
	return p;
}

void kaa__opl_pending_clear(kaa__operations *ops)
{
	pthread_mutex_lock(&ops->pend_mu);
	for (size_t b = 0; b < OPS_PENDING_BUCKETS; b++) {
		while (ops->pending[b]) {
			ops_pending *p = ops->pending[b];
			ops->pending[b] = p->next;
			free(p);
		}
	}
	ops->n_pending = 0;
	pthread_mutex_unlock(&ops->pend_mu);
}

/* ---- device -> server ----------------------------------------------------------------------- */

void kaa__opl_event(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__Event *ev = f->event;
	char err[KAA_JSON_ERR_SIZE];
	const ops_evclass *c;

	if (!ev || !ev->event_class_fqn || !*ev->event_class_fqn) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "event.event_class_fqn", NULL, "the event class is required");
		return;
	}
	if (!ev->seq) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false, "event.seq",
			       NULL, "seq must be non-zero and increase per source endpoint");
		return;
	}
	if (!s->ep.owner_id) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(FORBIDDEN), false, NULL, NULL,
			       "attach this endpoint to an owner before sending events");
		return;
	}
	c = kaa__opl_evclass(s->app, ev->event_class_fqn);
	if ((!c || !c->source) && kaa__opl_app_refresh_stale(ops, s))
		c = kaa__opl_evclass(s->app, ev->event_class_fqn);
	if (!c || !c->source) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(NOT_FOUND), false,
			       "event.event_class_fqn", NULL,
			       "the application does not map %s as a source event class",
			       ev->event_class_fqn);
		return;
	}
	const char *body = ev->body_json ? ev->body_json : "";
	if (!c->schema ||
	    kaa__avro_validate(c->schema, body, strlen(body), err, sizeof(err)) != KAA_OK) {
		char path[KAA_JSON_PATH_MAX] = "";
		const char *msg = "the class's stored schema is unusable";
		if (c->schema)
			kaa__opl_split_err(err, path, sizeof(path), &msg);
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_EVENT), false,
			       "event.body_json", path, "%s", msg);
		return;
	}
	const char *target = ev->target_endpoint_key_hash;
	if (target && *target && strcmp(target, s->ep.key_hash) == 0) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "event.target_endpoint_key_hash", NULL,
			       "an endpoint does not send events to itself");
		return;
	}
	if (!ops->router) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
			       "this node does not route events");
		return;
	}
	uint64_t token = pending_add(ops, s->sid, f->request_id, ev->seq);
	int rc = KAA_ERR_TOO_BIG;
	if (token) {
		kaa__router_event re = {.app_id = s->ep.app_id,
					.owner_id = s->ep.owner_id,
					.source_key_hash = s->ep.key_hash,
					.fqn = ev->event_class_fqn,
					.target = target,
					.body_json = body,
					.seq = ev->seq};
		rc = kaa__router_route(ops->router, &re, token);
		if (rc != KAA_OK)
			free(pending_take(ops, token));
	}
	if (rc == KAA_ERR_INVAL) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "event.target_endpoint_key_hash", NULL,
			       "the target or event class is too long or malformed");
		return;
	}
	if (rc != KAA_OK) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(OVERLOADED), false, NULL, NULL,
			       "too many events in flight on this node; send it again later");
		return;
	}
	kaa__counter_inc(ops->events_in);
}

void kaa__opl_event_listeners(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__EventListenersRequest *r = f->event_listeners_request;
	if (!r || !r->n_event_class_fqns) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "event_listeners_request.event_class_fqns", NULL,
			       "at least one event class is required");
		return;
	}
	if (!s->ep.owner_id) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(FORBIDDEN), false, NULL, NULL,
			       "attach this endpoint to an owner first");
		return;
	}
	if (!ops->router) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
			       "this node does not route events");
		return;
	}
	uint64_t token = pending_add(ops, s->sid, f->request_id, 0);
	int rc = KAA_ERR_TOO_BIG;
	if (token) {
		rc = kaa__router_listeners(ops->router, s->ep.app_id, s->ep.owner_id,
					   s->ep.key_hash, (const char *const *)r->event_class_fqns,
					   r->n_event_class_fqns, token);
		if (rc != KAA_OK)
			free(pending_take(ops, token));
	}
	if (rc == KAA_ERR_INVAL)
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "event_listeners_request.event_class_fqns", NULL,
			       "an event class name is too long or malformed");
	else if (rc != KAA_OK)
		kaa__opl_error(ops, s->sid, f->request_id, EC(OVERLOADED), false, NULL, NULL,
			       "too many requests in flight on this node; retry later");
}

/* ---- router callbacks (router thread) -------------------------------------------------------- */

void kaa__opl_event_deliver(void *ud, int64_t app_id, const char *const *ekhs, size_t n,
			    const kaa__router_event *ev)
{
	kaa__operations *ops = ud;
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Event e = KAA__ENDPOINT__V1__EVENT__INIT;
	e.event_class_fqn = (char *)ev->fqn;
	e.body_json = (char *)ev->body_json;
	e.seq = ev->seq;
	e.source_endpoint_key_hash = (char *)ev->source_key_hash;
	e.target_endpoint_key_hash = (char *)(ev->target ? ev->target : "");
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT;
	f.event = &e;
	for (size_t i = 0; i < n; i++) {
		ops_session *s = kaa__opl_session_by_key(ops, app_id, ekhs[i]);
		if (!s)
			continue; /* left meanwhile: like an offline endpoint, it misses it */
		if (kaa__opl_send(ops, s->sid, &f) == KAA_OK)
			kaa__counter_inc(ops->events_out);
		kaa__opl_session_put(s);
	}
}

void kaa__opl_event_routed(void *ud, uint64_t token, int status)
{
	kaa__operations *ops = ud;
	ops_pending *p = pending_take(ops, token);
	if (!p)
		return;
	if (status == KAA_OK) {
		frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
		Kaa__Endpoint__V1__EventAck a = KAA__ENDPOINT__V1__EVENT_ACK__INIT;
		a.seq = p->seq;
		a.source_endpoint_key_hash = "";
		f.request_id = p->request_id;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK;
		f.event_ack = &a;
		kaa__opl_send(ops, p->sid, &f);
	} else {
		/* no answer: the device keeps the event and re-sends it after
		 * its next reconnect (receivers drop duplicates) */
		KAA_WARN(MOD, "event_not_routed sid=%" PRIu64 " seq=%" PRIu64 " err=%s", p->sid,
			 p->seq, kaa_strerror(status));
	}
	free(p);
}

void kaa__opl_listeners_answer(void *ud, uint64_t token, int status, const char *const *ekhs,
			       size_t n)
{
	kaa__operations *ops = ud;
	ops_pending *p = pending_take(ops, token);
	if (!p)
		return;
	if (status != KAA_OK) {
		kaa__opl_error(ops, p->sid, p->request_id, EC(OVERLOADED), false, NULL, NULL,
			       "the owner's home node did not answer in time; retry later");
	} else {
		frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
		Kaa__Endpoint__V1__EventListenersResponse r =
			KAA__ENDPOINT__V1__EVENT_LISTENERS_RESPONSE__INIT;
		r.endpoint_key_hashes = (char **)ekhs;
		r.n_endpoint_key_hashes = n;
		f.request_id = p->request_id;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_RESPONSE;
		f.event_listeners_response = &r;
		kaa__opl_send(ops, p->sid, &f);
	}
	free(p);
}
