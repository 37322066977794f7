/* Builders of the frames a device sends (docs/protocol.md). */
#include "sdk_internal.h"

#include "endpoint_codec.h"
#include "error.h"

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
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;

	h.application_token = s_or_empty(app_token);
	h.public_key.data = (uint8_t *)pub;
	h.public_key.len = publen;
	h.sdk_profile_id = s_or_empty(sdk_profile_id);
	h.client_profile_json = s_or_empty(profile_json);
	h.sdk_version = "libkaa/0.1.0";
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
