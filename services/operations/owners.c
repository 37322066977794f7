/*
 * owners.c - owner attach and detach (docs/protocol.md, "Events and
 * owners"):
 *
 * - OwnerAttachRequest{owner}: the application's owner verifier named by
 *   verifier_token (empty: the first one created) checks the owner access
 *   token. trustful accepts owner_external_id as it is; jwt-hs256 verifies
 *   an HS256 JWT whose "sub" is the owner (and must equal
 *   owner_external_id when that is given). The endpoint record's owner is
 *   set in the endpoint store, then the owner's home node learns where the
 *   endpoint is (event_router.h).
 * - OwnerAttachRequest{endpoint_access_token}: an attached endpoint attaches
 *   the endpoint that presented that token in its Hello to its own owner;
 *   that endpoint's node sends it an AttachNotification.
 * - OwnerDetach{endpoint_key_hash}: detaches this endpoint (empty) or another
 *   endpoint of the same owner, which gets a DetachNotification.
 *
 * Owners are scoped per application: events go between endpoints of one
 * application attached to the same owner id.
 *
 * The store is the truth for an endpoint's owner (kaa__ep_set_owner; a
 * session's own record writes never touch it); a session keeps a copy in
 * s->ep.owner_id, changed only under s->mu: by its own frames here, or by
 * the router's notice callback for changes made from another session.
 */
#include "operations/owners.h"

#include "operations/ops_app_cache.h"
#include "operations/ops_send.h"
#include "operations/ops_sessions.h"

#include "base/alloc.h"
#include "base/error.h"
#include "auth/jwt.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;
#define EC(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x

#define OWNER_ID_MAX 255

static void attach_reply(kaa__operations *ops, ops_session *s, uint64_t request_id,
			 Kaa__Endpoint__V1__ErrorCode code, const char *reason, const char *owner,
			 const char *ekh)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerAttachResponse r = KAA__ENDPOINT__V1__OWNER_ATTACH_RESPONSE__INIT;
	bool ok = code == EC(UNSPECIFIED);
	r.result = ok ? KAA__ENDPOINT__V1__ATTACH_RESULT__ATTACH_RESULT_SUCCESS
		      : KAA__ENDPOINT__V1__ATTACH_RESULT__ATTACH_RESULT_FAILURE;
	r.code = code;
	r.reason = (char *)(reason ? reason : "");
	r.owner_id = (char *)(owner ? owner : "");
	r.endpoint_key_hash = (char *)(ekh ? ekh : "");
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_RESPONSE;
	f.owner_attach_response = &r;
	kaa__opl_send(ops, s->sid, &f);
	kaa__counter_inc(ok ? ops->owner_attach_ok : ops->owner_attach_fail);
	if (!ok)
		KAA_DEBUG(MOD, "owner_attach_refused key=%s code=%d reason=\"%s\"", s->ep.key_hash,
			  (int)code, reason ? reason : "");
}

void kaa__opl_owner_report(kaa__operations *ops, ops_session *s, bool connected)
{
	if (!ops->router || !s->ep.owner_id || !s->app)
		return;
	int rc = kaa__router_location(ops->router, s->ep.app_id, s->ep.owner_id, s->ep.key_hash,
				      connected, s->app->sinks, s->app->n_sinks);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "owner_location_failed key=%s owner=%s err=%s", s->ep.key_hash,
			 s->ep.owner_id, kaa_strerror(rc));
}

void kaa__opl_owner_report_all(void *ud)
{
	kaa__operations *ops = ud;
	size_t n = 0;
	ops_session **v = kaa__opl_sessions_snapshot(ops, 0, &n);
	for (size_t i = 0; i < n; i++) {
		ops_session *s = v[i];
		pthread_mutex_lock(&s->mu);
		if (s->established && !s->closed && atomic_load(&s->in_key_table))
			kaa__opl_owner_report(ops, s, true);
		pthread_mutex_unlock(&s->mu);
	}
	kaa__opl_snapshot_free(v, n);
}

/* Changes the session's owner copy (and the home's directory). The store
 * was already updated. */
static void set_session_owner(kaa__operations *ops, ops_session *s, const char *owner)
{
	if (s->ep.owner_id && (!owner || strcmp(s->ep.owner_id, owner) != 0))
		kaa__opl_owner_report(ops, s, false);
	free(s->ep.owner_id);
	s->ep.owner_id = owner ? kaa__xstrdup(owner) : NULL;
	kaa__opl_owner_report(ops, s, true);
}

static const ops_verifier *find_verifier(const ops_app *a, const char *name)
{
	if (!name || !*name)
		return a->n_verifiers ? &a->verifiers[0] : NULL;
	for (size_t i = 0; i < a->n_verifiers; i++)
		if (strcmp(a->verifiers[i].name, name) == 0)
			return &a->verifiers[i];
	return NULL;
}

/* Checks an owner access token; on success owner receives the owner id.
 * Otherwise returns the failure code and *reason. */
static Kaa__Endpoint__V1__ErrorCode verify_owner(const ops_app *a,
						 const Kaa__Endpoint__V1__OwnerAccessToken *t,
						 char owner[OWNER_ID_MAX + 1], const char **reason)
{
	const char *ext = t->owner_external_id ? t->owner_external_id : "";
	const ops_verifier *v = find_verifier(a, t->verifier_token);
	if (!v) {
		*reason = a->n_verifiers ? "no owner verifier of that name"
					 : "the application has no owner verifier configured";
		return EC(NO_VERIFIER);
	}
	if (!v->jwt) {
		if (!*ext || strlen(ext) > OWNER_ID_MAX) {
			*reason = "owner_external_id (1..255 bytes) is required";
			return EC(INVALID_MESSAGE);
		}
		strcpy(owner, ext);
		return EC(UNSPECIFIED);
	}
	const char *tok = t->token ? t->token : "";
	kaa__jwt_check chk = {.secret = v->secret,
			      .secret_len = v->secret_len,
			      .now_s = (int64_t)time(NULL),
			      .leeway_s = v->leeway_s,
			      .issuer = v->issuer,
			      .audience = v->audience};
	char sub[KAA_JWT_SUB_MAX + 1];
	kaa__jwt_result jr = kaa__jwt_hs256_verify(tok, strlen(tok), &chk, sub, NULL);
	if (jr == KAA_JWT_EXPIRED) {
		*reason = "the owner access token has expired";
		return EC(EXPIRED_TOKEN);
	}
	if (jr != KAA_JWT_OK) {
		*reason = kaa__jwt_result_str(jr);
		return EC(INVALID_TOKEN);
	}
	if (*ext && strcmp(ext, sub) != 0) {
		*reason = "the token was issued for another owner";
		return EC(INVALID_TOKEN);
	}
	strcpy(owner, sub);
	return EC(UNSPECIFIED);
}

static void attach_self(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	char owner[OWNER_ID_MAX + 1];
	const char *reason = NULL;
	Kaa__Endpoint__V1__ErrorCode code =
		verify_owner(s->app, f->owner_attach_request->owner, owner, &reason);
	if (code == EC(NO_VERIFIER) && kaa__opl_app_refresh_stale(ops, s))
		code = verify_owner(s->app, f->owner_attach_request->owner, owner, &reason);
	if (code != EC(UNSPECIFIED)) {
		attach_reply(ops, s, f->request_id, code, reason, NULL, NULL);
		return;
	}
	int rc = kaa__ep_set_owner(ops->eps, s->ep.app_id, s->ep.key_hash, owner, NULL);
	if (rc != KAA_OK) {
		KAA_WARN(MOD, "owner_store_failed key=%s err=%s", s->ep.key_hash, kaa_strerror(rc));
		attach_reply(ops, s, f->request_id, EC(INTERNAL),
			     "storage unavailable; retry later", NULL, NULL);
		return;
	}
	set_session_owner(ops, s, owner);
	KAA_DEBUG(MOD, "owner_attached key=%s owner=%s", s->ep.key_hash, owner);
	attach_reply(ops, s, f->request_id, EC(UNSPECIFIED), NULL, owner, s->ep.key_hash);
}

/* Tells the node holding ep's session (if any) about its new owner. */
static void notify_endpoint(kaa__operations *ops, const kaa__endpoint *ep, const char *owner,
			    const char *by)
{
	if (!ops->router || !ep->node_id || !*ep->node_id)
		return; /* offline: it reads its owner from the record at its next Hello */
	int rc = kaa__router_notice(ops->router, ep->node_id, ep->app_id, ep->key_hash, owner, by);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "owner_notice_failed key=%s node=%s err=%s", ep->key_hash,
			 ep->node_id, kaa_strerror(rc));
}

static void attach_other(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const char *tok = f->owner_attach_request->endpoint_access_token;
	kaa__endpoint other = {0};
	int rc;
	if (!s->ep.owner_id) {
		attach_reply(ops, s, f->request_id, EC(FORBIDDEN),
			     "attach this endpoint to an owner first", NULL, NULL);
		return;
	}
	if (!tok || !*tok) {
		attach_reply(ops, s, f->request_id, EC(INVALID_MESSAGE),
			     "endpoint_access_token is empty", NULL, NULL);
		return;
	}
	rc = kaa__ep_find_by_access_token(ops->eps, s->ep.app_id, tok, &other);
	if (rc == KAA_ERR_NOTFOUND) {
		attach_reply(ops, s, f->request_id, EC(INVALID_TOKEN),
			     "no endpoint of this application has that access token", NULL, NULL);
		goto out;
	}
	if (rc == KAA_OK && strcmp(other.key_hash, s->ep.key_hash) == 0) {
		attach_reply(ops, s, f->request_id, EC(INVALID_MESSAGE),
			     "that is this endpoint's own access token", NULL, NULL);
		goto out;
	}
	if (rc == KAA_OK)
		rc = kaa__ep_set_owner(ops->eps, s->ep.app_id, other.key_hash, s->ep.owner_id,
				       NULL);
	if (rc != KAA_OK) {
		KAA_WARN(MOD, "owner_store_failed key=%s err=%s", s->ep.key_hash, kaa_strerror(rc));
		attach_reply(ops, s, f->request_id,
			     rc == KAA_ERR_CONFLICT ? EC(INVALID_TOKEN) : EC(INTERNAL),
			     rc == KAA_ERR_CONFLICT ? "the access token is not unique"
						    : "storage unavailable; retry later",
			     NULL, NULL);
		goto out;
	}
	KAA_DEBUG(MOD, "owner_attached key=%s owner=%s by=%s", other.key_hash, s->ep.owner_id,
		  s->ep.key_hash);
	attach_reply(ops, s, f->request_id, EC(UNSPECIFIED), NULL, s->ep.owner_id, other.key_hash);
	notify_endpoint(ops, &other, s->ep.owner_id, s->ep.key_hash);
out:
	kaa__endpoint_clear(&other);
}

void kaa__opl_owner_attach(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__OwnerAttachRequest *r = f->owner_attach_request;
	if (r && r->credential_case == KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER &&
	    r->owner)
		attach_self(ops, s, f);
	else if (r &&
		 r->credential_case ==
			 KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_ENDPOINT_ACCESS_TOKEN)
		attach_other(ops, s, f);
	else
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "owner_attach_request", NULL,
			       "an owner access token or an endpoint access token is required");
}

void kaa__opl_owner_detach(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const char *ekh = f->owner_detach ? f->owner_detach->endpoint_key_hash : NULL;
	kaa__endpoint other = {0};
	int rc;
	if (!s->ep.owner_id) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(BAD_STATE), false, NULL, NULL,
			       "this endpoint is not attached to an owner");
		return;
	}
	if (!ekh || !*ekh || strcmp(ekh, s->ep.key_hash) == 0) {
		rc = kaa__ep_set_owner(ops->eps, s->ep.app_id, s->ep.key_hash, NULL,
				       s->ep.owner_id);
		if (rc != KAA_OK && rc != KAA_ERR_CONFLICT)
			goto store_failed;
		set_session_owner(ops, s, NULL);
		kaa__opl_ack(ops, s->sid, f->request_id);
		return;
	}
	rc = kaa__ep_get(ops->eps, s->ep.app_id, ekh, &other);
	if (rc == KAA_OK && (!other.owner_id || strcmp(other.owner_id, s->ep.owner_id) != 0))
		rc = KAA_ERR_NOTFOUND; /* another owner's endpoint: as if absent */
	if (rc == KAA_ERR_NOTFOUND) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(NOT_FOUND), false,
			       "owner_detach.endpoint_key_hash", NULL,
			       "no endpoint of this owner has that key hash");
		goto out;
	}
	if (rc == KAA_OK)
		rc = kaa__ep_set_owner(ops->eps, s->ep.app_id, ekh, NULL, s->ep.owner_id);
	if (rc == KAA_ERR_CONFLICT) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(NOT_FOUND), false,
			       "owner_detach.endpoint_key_hash", NULL,
			       "the endpoint was detached or moved to another owner meanwhile");
		goto out;
	}
	if (rc != KAA_OK)
		goto store_failed;
	kaa__opl_ack(ops, s->sid, f->request_id);
	notify_endpoint(ops, &other, NULL, s->ep.key_hash);
	goto out;
store_failed:
	KAA_WARN(MOD, "owner_store_failed key=%s err=%s", s->ep.key_hash, kaa_strerror(rc));
	kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
		       "storage unavailable; retry later");
out:
	kaa__endpoint_clear(&other);
}

void kaa__opl_owner_notice(void *ud, int64_t app_id, const char *ekh, const char *owner_id,
			   const char *by_ekh)
{
	kaa__operations *ops = ud;
	ops_session *s = kaa__opl_session_by_key(ops, app_id, ekh);
	if (!s)
		return; /* gone meanwhile: it reads the record at its next Hello */
	pthread_mutex_lock(&s->mu);
	if (!s->established || s->closed || !atomic_load(&s->in_key_table))
		goto out;
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__AttachNotification an = KAA__ENDPOINT__V1__ATTACH_NOTIFICATION__INIT;
	Kaa__Endpoint__V1__DetachNotification dn = KAA__ENDPOINT__V1__DETACH_NOTIFICATION__INIT;
	if (owner_id) {
		if (s->ep.owner_id && strcmp(s->ep.owner_id, owner_id) == 0)
			goto out; /* a re-sent notice */
		an.owner_id = (char *)owner_id;
		an.endpoint_key_hash = (char *)(by_ekh ? by_ekh : "");
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ATTACH_NOTIFICATION;
		f.attach_notification = &an;
	} else {
		if (!s->ep.owner_id)
			goto out;
		dn.endpoint_key_hash = (char *)(by_ekh ? by_ekh : "");
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_DETACH_NOTIFICATION;
		f.detach_notification = &dn;
	}
	set_session_owner(ops, s, owner_id);
	kaa__opl_send(ops, s->sid, &f);
out:
	pthread_mutex_unlock(&s->mu);
	kaa__opl_session_put(s);
}
