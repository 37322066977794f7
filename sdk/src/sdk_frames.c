/* Builders of the frames a device sends (docs/protocol.md). */
#include "sdk_internal.h"

#include "proto/endpoint_codec.h"
#include "base/error.h"

#include <stdlib.h>

typedef Kaa__Endpoint__V1__Frame frame_t;

static char *s_or_empty(const char *s)
{
	return (char *)(s ? s : "");
}

static int encode(frame_t *f, uint64_t req, uint8_t **out, size_t *len)
{
	f->protocol_version = KAA__PROTOCOL_VERSION;
	f->request_id = req;
	*out = NULL;
	return kaa__frame_encode(f, out, len);
}

int kaa__sdk_frame_hello(uint64_t req, const char *app_token, const uint8_t *pub, size_t publen,
			 const char *sdk_profile_id, const char *profile_json, uint8_t **out,
			 size_t *len)
{
	return kaa__sdk_frame_hello_token(req, app_token, pub, publen, sdk_profile_id, profile_json,
					  NULL, out, len);
}

int kaa__sdk_frame_hello_token(uint64_t req, const char *app_token, const uint8_t *pub,
			       size_t publen, const char *sdk_profile_id, const char *profile_json,
			       const char *endpoint_access_token, uint8_t **out, size_t *len)
{
	return kaa__sdk_frame_hello_proof(req, app_token, pub, publen, sdk_profile_id, profile_json,
					  endpoint_access_token, NULL, 0, out, len);
}

int kaa__sdk_frame_hello_proof(uint64_t req, const char *app_token, const uint8_t *pub,
			       size_t publen, const char *sdk_profile_id, const char *profile_json,
			       const char *endpoint_access_token, const uint8_t *proof,
			       size_t proof_len, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;

	h.application_token = s_or_empty(app_token);
	h.public_key.data = (uint8_t *)pub;
	h.public_key.len = publen;
	h.sdk_profile_id = s_or_empty(sdk_profile_id);
	h.client_profile_json = s_or_empty(profile_json);
	h.endpoint_access_token = s_or_empty(endpoint_access_token);
	h.sdk_version = "libkaa/0.1.0";
	h.proof.data = (uint8_t *)proof;
	h.proof.len = proof ? proof_len : 0;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_HELLO;
	f.hello = &h;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_session_resume(uint64_t req, const char *session_id, const kaa__stream_pos *pos,
				  size_t n, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__SessionResume r = KAA__ENDPOINT__V1__SESSION_RESUME__INIT;
	Kaa__Endpoint__V1__TopicPosition *tp = NULL, **tpp = NULL;
	int rc;

	if (n) {
		tp = calloc(n, sizeof(*tp));
		tpp = calloc(n, sizeof(*tpp));
		if (!tp || !tpp) {
			rc = KAA_ERR_NOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++) {
		Kaa__Endpoint__V1__TopicPosition init = KAA__ENDPOINT__V1__TOPIC_POSITION__INIT;
		tp[i] = init;
		tp[i].topic_id = (char *)pos[i].topic_id;
		tp[i].last_seq = pos[i].last_seq;
		tpp[i] = &tp[i];
	}
	r.session_id = s_or_empty(session_id);
	r.n_positions = n;
	r.positions = tpp;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_SESSION_RESUME;
	f.session_resume = &r;
	rc = encode(&f, req, out, len);
out:
	free(tp);
	free(tpp);
	return rc;
}

int kaa__sdk_frame_config_sync(uint64_t req, const char *hash, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ConfigSyncRequest r = KAA__ENDPOINT__V1__CONFIG_SYNC_REQUEST__INIT;

	r.config_hash = s_or_empty(hash);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_REQUEST;
	f.config_sync_request = &r;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_ack(uint64_t req, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;

	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ACK;
	f.ack = &a;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_notification_ack(const char *topic_id, uint64_t seq, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__NotificationAck a = KAA__ENDPOINT__V1__NOTIFICATION_ACK__INIT;

	a.topic_id = s_or_empty(topic_id);
	a.seq = seq;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_ACK;
	f.notification_ack = &a;
	return encode(&f, 0, out, len);
}

int kaa__sdk_frame_log_upload(uint64_t req, uint64_t batch_id, char *const *records, size_t n,
			      uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__LogUpload u = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;

	if (batch_id == 0 || n == 0)
		return KAA_ERR_INVAL;
	u.batch_id = batch_id;
	u.n_records_json = n;
	u.records_json = (char **)records;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_LOG_UPLOAD;
	f.log_upload = &u;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_ping(uint64_t req, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ping p = KAA__ENDPOINT__V1__PING__INIT;

	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PING;
	f.ping = &p;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_pong(uint64_t req, const uint8_t *payload, size_t plen, uint8_t **out,
			size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;

	p.payload.data = (uint8_t *)payload;
	p.payload.len = plen;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
	f.pong = &p;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_subscribe(uint64_t req, const char *topic_id, bool unsubscribe, uint8_t **out,
			     size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Subscribe s = KAA__ENDPOINT__V1__SUBSCRIBE__INIT;
	Kaa__Endpoint__V1__Unsubscribe u = KAA__ENDPOINT__V1__UNSUBSCRIBE__INIT;

	if (unsubscribe) {
		u.topic_id = s_or_empty(topic_id);
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_UNSUBSCRIBE;
		f.unsubscribe = &u;
	} else {
		s.topic_id = s_or_empty(topic_id);
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_SUBSCRIBE;
		f.subscribe = &s;
	}
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_profile(uint64_t req, const char *json, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ProfileUpdate p = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;

	p.client_profile_json = s_or_empty(json);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE;
	f.profile_update = &p;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_event(uint64_t req, const char *fqn, const char *target, const char *body_json,
			 uint64_t seq, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Event e = KAA__ENDPOINT__V1__EVENT__INIT;

	e.event_class_fqn = s_or_empty(fqn);
	e.target_endpoint_key_hash = s_or_empty(target);
	e.body_json = s_or_empty(body_json);
	e.seq = seq;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT;
	f.event = &e;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_event_ack(uint64_t req, uint64_t seq, const char *source, uint8_t **out,
			     size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__EventAck a = KAA__ENDPOINT__V1__EVENT_ACK__INIT;

	a.seq = seq;
	a.source_endpoint_key_hash = s_or_empty(source);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK;
	f.event_ack = &a;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_event_listeners(uint64_t req, char *const *fqns, size_t n, uint8_t **out,
				   size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__EventListenersRequest r =
		KAA__ENDPOINT__V1__EVENT_LISTENERS_REQUEST__INIT;

	if (n == 0 || !fqns)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < n; i++)
		if (!fqns[i])
			return KAA_ERR_INVAL;
	r.n_event_class_fqns = n;
	r.event_class_fqns = (char **)fqns;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_REQUEST;
	f.event_listeners_request = &r;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_owner_attach(uint64_t req, const char *owner_external_id, const char *token,
				const char *verifier_token, uint8_t **out, size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerAttachRequest r = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__INIT;
	Kaa__Endpoint__V1__OwnerAccessToken t = KAA__ENDPOINT__V1__OWNER_ACCESS_TOKEN__INIT;

	t.owner_external_id = s_or_empty(owner_external_id);
	t.token = s_or_empty(token);
	t.verifier_token = s_or_empty(verifier_token);
	r.credential_case = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER;
	r.owner = &t;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST;
	f.owner_attach_request = &r;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_endpoint_attach(uint64_t req, const char *endpoint_access_token, uint8_t **out,
				   size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerAttachRequest r = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__INIT;

	r.credential_case =
		KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_ENDPOINT_ACCESS_TOKEN;
	r.endpoint_access_token = s_or_empty(endpoint_access_token);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST;
	f.owner_attach_request = &r;
	return encode(&f, req, out, len);
}

int kaa__sdk_frame_owner_detach(uint64_t req, const char *endpoint_key_hash, uint8_t **out,
				size_t *len)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerDetach d = KAA__ENDPOINT__V1__OWNER_DETACH__INIT;

	d.endpoint_key_hash = s_or_empty(endpoint_key_hash);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_OWNER_DETACH;
	f.owner_detach = &d;
	return encode(&f, req, out, len);
}
