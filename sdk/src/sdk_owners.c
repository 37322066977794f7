/*
 * Owner requests of a client: attach to an owner (owner access token),
 * attach another endpoint (its access token), detach, and listener
 * look-ups (EventListenersRequest, which shares this queue). Requests wait
 * in call order until answered; each is sent once per session (again after
 * a reconnect, or later after an overload Error) and answered by its
 * callback exactly once: with the server's answer, an Error, or a local
 * failure (too big for the server's frames). The kaa__owners_* calls run
 * with the runtime lock held (sdk_client.h); the API functions, on any
 * thread, take it.
 */
#include "sdk_client.h"

#include <stdlib.h>
#include <string.h>

/* An owner or listeners request, kept until answered. */
typedef enum owner_kind {
	OR_ATTACH_OWNER,
	OR_ATTACH_ENDPOINT,
	OR_DETACH,
	OR_LISTENERS,
} owner_kind;

struct kaa__owner_req {
	kaa__owner_req *next;
	owner_kind kind;
	uint64_t req; /* request id of the send in this session; 0: not sent */
	/* ATTACH_OWNER: owner id, token, verifier; ATTACH_ENDPOINT: token;
	 * DETACH: key hash ("" = self) */
	char *a, *b, *v;
	char **fqns; /* LISTENERS */
	size_t nfqns;
};

typedef kaa__owner_req owner_req;

static void owner_req_free(owner_req *o)
{
	if (!o)
		return;
	free(o->a);
	free(o->b);
	free(o->v);
	for (size_t i = 0; i < o->nfqns; i++)
		free(o->fqns[i]);
	free(o->fqns);
	free(o);
}

static void oreq_unlink(kaa_client *c, owner_req *o)
{
	for (owner_req **pp = &c->oreqs; *pp; pp = &(*pp)->next)
		if (*pp == o) {
			*pp = o->next;
			c->n_oreqs--;
			return;
		}
}

/* The request sent with request id req among kinds k1/k2; when the server
 * did not echo the id (req 0), the oldest sent one of those kinds. */
static owner_req *oreq_find(kaa_client *c, uint64_t req, owner_kind k1, owner_kind k2)
{
	owner_req *first = NULL;

	for (owner_req *o = c->oreqs; o; o = o->next) {
		if (!o->req || (o->kind != k1 && o->kind != k2))
			continue;
		if (req && o->req == req)
			return o;
		if (!first)
			first = o;
	}
	return req ? NULL : first;
}

static owner_req *oreq_by_req(kaa_client *c, uint64_t req)
{
	if (!req)
		return NULL;
	for (owner_req *o = c->oreqs; o; o = o->next)
		if (o->req == req)
			return o;
	return NULL;
}

/* Answers a request with a failure (an Error frame, or a frame too big). */
static void oreq_fail(kaa_client *c, owner_req *o, int code, const char *msg)
{
	oreq_unlink(c, o);
	switch (o->kind) {
	case OR_ATTACH_OWNER:
	case OR_ATTACH_ENDPOINT:
		if (c->cb.on_attach_result)
			c->cb.on_attach_result(c, o->kind == OR_ATTACH_ENDPOINT ? o->a : NULL,
					       false, code, msg, "", "", c->user);
		break;
	case OR_DETACH:
		if (c->cb.on_detach_result)
			c->cb.on_detach_result(c, o->a, false, code, msg, c->user);
		break;
	case OR_LISTENERS:
		if (c->cb.on_listeners)
			c->cb.on_listeners(c, (const char *const *)o->fqns, o->nfqns, code, NULL, 0,
					   c->user);
		break;
	}
	owner_req_free(o);
}

static int oreq_frame(kaa_client *c, owner_req *o, uint64_t req, uint8_t **b, size_t *l)
{
	(void)c;
	switch (o->kind) {
	case OR_ATTACH_OWNER: return kaa__sdk_frame_owner_attach(req, o->a, o->b, o->v, b, l);
	case OR_ATTACH_ENDPOINT: return kaa__sdk_frame_endpoint_attach(req, o->a, b, l);
	case OR_DETACH: return kaa__sdk_frame_owner_detach(req, o->a, b, l);
	case OR_LISTENERS: return kaa__sdk_frame_event_listeners(req, o->fqns, o->nfqns, b, l);
	}
	return KAA_ERR_INTERNAL;
}

void kaa__owners_pump(kaa_client *c)
{
	for (owner_req *o = c->oreqs, *nx; o && c->sq_len < KAA__SENDQ_MAX; o = nx) {
		uint8_t *b = NULL;
		size_t l = 0;
		uint64_t req;
		int rc;

		nx = o->next;
		if (o->req)
			continue;
		req = kaa__client_next_req(c);
		rc = oreq_frame(c, o, req, &b, &l);
		if (rc == KAA_OK && l > c->max_frame) {
			free(b);
			oreq_fail(c, o, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_TOO_BIG,
				  "request larger than the server's frame limit");
			continue;
		}
		if (kaa__client_enqueue(c, rc, &b, &l) != KAA_OK)
			break;
		o->req = req;
	}
}

void kaa__owners_on_attach_response(kaa_client *c, const Kaa__Endpoint__V1__OwnerAttachResponse *r,
				    uint64_t req)
{
	owner_req *o = oreq_find(c, req, OR_ATTACH_OWNER, OR_ATTACH_ENDPOINT);
	bool ok = r->result == KAA__ENDPOINT__V1__ATTACH_RESULT__ATTACH_RESULT_SUCCESS;

	if (!o)
		return; /* nothing asked: an answer to a request of an older session */
	oreq_unlink(c, o);
	if (c->cb.on_attach_result)
		c->cb.on_attach_result(c, o->kind == OR_ATTACH_ENDPOINT ? o->a : NULL, ok,
				       ok ? 0 : (int)r->code, r->reason, r->owner_id,
				       r->endpoint_key_hash, c->user);
	owner_req_free(o);
}

void kaa__owners_on_listeners(kaa_client *c, const Kaa__Endpoint__V1__EventListenersResponse *r,
			      uint64_t req)
{
	owner_req *o = oreq_find(c, req, OR_LISTENERS, OR_LISTENERS);

	if (!o)
		return;
	oreq_unlink(c, o);
	if (c->cb.on_listeners)
		c->cb.on_listeners(c, (const char *const *)o->fqns, o->nfqns, 0,
				   (const char *const *)r->endpoint_key_hashes,
				   r->n_endpoint_key_hashes, c->user);
	owner_req_free(o);
}

void kaa__owners_on_ack(kaa_client *c, uint64_t req)
{
	owner_req *o = oreq_by_req(c, req);

	if (!o || o->kind != OR_DETACH)
		return;
	oreq_unlink(c, o);
	if (c->cb.on_detach_result)
		c->cb.on_detach_result(c, o->a, true, 0, "", c->user);
	owner_req_free(o);
}

void kaa__owners_on_error(kaa_client *c, const Kaa__Endpoint__V1__Error *e, uint64_t req)
{
	int code = (int)e->code;
	owner_req *o;

	if ((o = oreq_by_req(c, req))) {
		if (kaa__client_retry_later(code)) {
			o->req = 0;
			c->event_hold_until_ms =
				kaa__now_ms() + (e->retry_after_ms ? e->retry_after_ms : 1000);
			return;
		}
		oreq_fail(c, o, code, e->message);
	}
}

void kaa__owners_on_attach_notification(kaa_client *c,
					const Kaa__Endpoint__V1__AttachNotification *n)
{
	if (c->cb.on_attach_notification)
		c->cb.on_attach_notification(c, n->owner_id, n->endpoint_key_hash, c->user);
}

void kaa__owners_on_detach_notification(kaa_client *c,
					const Kaa__Endpoint__V1__DetachNotification *n)
{
	if (c->cb.on_detach_notification)
		c->cb.on_detach_notification(c, n->endpoint_key_hash, c->user);
}

void kaa__owners_unsend(kaa_client *c)
{
	for (owner_req *o = c->oreqs; o; o = o->next)
		o->req = 0;
}

void kaa__owners_clear(kaa_client *c)
{
	while (c->oreqs) {
		owner_req *o = c->oreqs;
		c->oreqs = o->next;
		owner_req_free(o);
	}
}

/* ---- API ------------------------------------------------------------------ */

/* Queues o (taking ownership) behind the requests waiting. */
static int add_owner_req(kaa_client *c, owner_req *o)
{
	owner_req **tail;
	int rc = KAA_OK;

	kaa__client_lock(c);
	if (c->n_oreqs >= KAA_OWNER_REQUESTS_MAX) {
		rc = KAA_ERR_TOO_BIG;
	} else {
		for (tail = &c->oreqs; *tail; tail = &(*tail)->next)
			;
		*tail = o;
		c->n_oreqs++;
		o = NULL;
		kaa__client_kick(c);
	}
	kaa__client_unlock(c);
	owner_req_free(o);
	return rc;
}

static owner_req *new_owner_req(owner_kind kind, const char *a, const char *b, const char *v)
{
	owner_req *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->kind = kind;
	if ((a && !(o->a = strdup(a))) || (b && !(o->b = strdup(b))) ||
	    (v && !(o->v = strdup(v)))) {
		owner_req_free(o);
		return NULL;
	}
	return o;
}

int kaa_client_attach_owner(kaa_client *c, const char *owner_external_id, const char *token,
			    const char *verifier_token)
{
	owner_req *o;

	if (!c || !kaa__client_str_ok(owner_external_id, KAA_EVENT_FQN_MAX) ||
	    !kaa__client_str_ok(token, KAA_OWNER_TOKEN_MAX) ||
	    (verifier_token && strlen(verifier_token) > KAA_EVENT_FQN_MAX))
		return KAA_ERR_INVAL;
	o = new_owner_req(OR_ATTACH_OWNER, owner_external_id, token,
			  verifier_token ? verifier_token : "");
	return o ? add_owner_req(c, o) : KAA_ERR_NOMEM;
}

int kaa_client_attach_endpoint(kaa_client *c, const char *endpoint_access_token)
{
	owner_req *o;

	if (!c || !kaa__client_str_ok(endpoint_access_token, KAA_OWNER_TOKEN_MAX))
		return KAA_ERR_INVAL;
	o = new_owner_req(OR_ATTACH_ENDPOINT, endpoint_access_token, NULL, NULL);
	return o ? add_owner_req(c, o) : KAA_ERR_NOMEM;
}

int kaa_client_detach(kaa_client *c, const char *endpoint_key_hash)
{
	owner_req *o;

	if (!c || (endpoint_key_hash && strlen(endpoint_key_hash) > KAA_EVENT_FQN_MAX))
		return KAA_ERR_INVAL;
	o = new_owner_req(OR_DETACH, endpoint_key_hash ? endpoint_key_hash : "", NULL, NULL);
	return o ? add_owner_req(c, o) : KAA_ERR_NOMEM;
}

int kaa_client_find_listeners(kaa_client *c, const char *const *fqns, size_t n)
{
	owner_req *o;
	size_t total = 16;

	if (!c || !fqns || n == 0 || n > KAA_EVENT_FQNS_MAX)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < n; i++) {
		if (!kaa__client_str_ok(fqns[i], KAA_EVENT_FQN_MAX))
			return KAA_ERR_INVAL;
		total += strlen(fqns[i]) + 3; /* tag and length */
	}
	if (total > 65536)
		return KAA_ERR_TOO_BIG;
	o = new_owner_req(OR_LISTENERS, NULL, NULL, NULL);
	if (!o || !(o->fqns = calloc(n, sizeof(*o->fqns)))) {
		owner_req_free(o);
		return KAA_ERR_NOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		o->nfqns = i + 1;
		if (!(o->fqns[i] = strdup(fqns[i]))) {
			owner_req_free(o);
			return KAA_ERR_NOMEM;
		}
	}
	return add_owner_req(c, o);
}

const char *kaa_client_endpoint_access_token(kaa_client *c)
{
	return c ? c->access_token : NULL;
}
