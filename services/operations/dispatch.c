/*
 * dispatch.c - the top of the operations service for one session: the
 * transport's frame and close handlers and the deferred catch-up
 * (operations.h), dispatching each device frame to its feature handler
 * (registration.h, delivery.h, owners.h, events.h, log_ingest.h) with the
 * session's mu held. May include every header of services/operations.
 */
#include "operations/operations.h"

#include "operations/delivery.h"
#include "operations/events.h"
#include "operations/log_ingest.h"
#include "operations/ops_send.h"
#include "operations/ops_sessions.h"
#include "operations/owners.h"
#include "operations/registration.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;

static void pong(kaa__operations *ops, ops_session *s, const frame_t *in)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;
	if (in->ping)
		p.payload = in->ping->payload;
	f.request_id = in->request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
	f.pong = &p;
	kaa__opl_send(ops, s->sid, &f);
}

static void topics_request(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	if (f->notification_topics && f->notification_topics->n_topics) {
		kaa__opl_error(ops, s->sid, f->request_id,
			       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_MESSAGE, false,
			       "notification_topics.topics", NULL,
			       "a device sends an empty NotificationTopics to ask for the list");
		return;
	}
	kaa__opl_topics_send(ops, s, true);
}

static void dispatch_established(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	switch (f->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_SESSION_RESUME:
		kaa__opl_session_resume(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ACK: kaa__opl_ack_received(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE:
		kaa__opl_profile_update(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_REQUEST:
		kaa__opl_config_sync(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_TOPICS: topics_request(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_SUBSCRIBE: kaa__opl_subscribe(ops, s, f, true); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_UNSUBSCRIBE:
		kaa__opl_subscribe(ops, s, f, false);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_ACK:
		kaa__opl_notification_ack(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_LOG_UPLOAD: kaa__opl_log_upload(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT: kaa__opl_event(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK:
		break; /* delivery is at-least-once up to the session; devices de-duplicate */
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_REQUEST:
		kaa__opl_event_listeners(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST:
		kaa__opl_owner_attach(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_DETACH: kaa__opl_owner_detach(ops, s, f); break;
	default:
		kaa__opl_error(ops, s->sid, f->request_id,
			       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_MESSAGE, false,
			       NULL, NULL, "message kind %d is not accepted from a device",
			       (int)f->body_case);
		break;
	}
}

void kaa__operations_on_frame(void *ud, kaa__session_id sid, const frame_t *f)
{
	kaa__operations *ops = ud;
	ops_session *s = kaa__opl_session_get(ops, sid, true);

	pthread_mutex_lock(&s->mu);
	if (s->closed)
		goto out;
	if (s->established && !atomic_load(&s->in_key_table))
		goto out; /* replaced and being closed: its frames have no effect */
	switch (f->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO:
		if (s->established)
			kaa__opl_error(ops, sid, f->request_id,
				       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_STATE, false,
				       NULL, NULL, "the session is already established");
		else
			kaa__opl_hello(ops, s, f);
		goto out; /* catch-up waits for the frame after Hello */
	case KAA__ENDPOINT__V1__FRAME__BODY_PING: pong(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_PONG: break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ERROR:
		KAA_DEBUG(MOD, "device_error sid=%" PRIu64 " code=%d", sid,
			  f->error ? (int)f->error->code : 0);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY__NOT_SET:
		kaa__opl_error(ops, sid, f->request_id,
			       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_MESSAGE, false,
			       NULL, NULL, "empty or unknown body");
		break;
	default:
		if (!s->established) {
			kaa__opl_error(ops, sid, f->request_id,
				       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_STATE, false,
				       NULL, NULL, "send Hello first");
			break;
		}
		dispatch_established(ops, s, f);
		break;
	}
	if (s->established && s->catchup_pending) {
		s->catchup_pending = false;
		kaa__opl_notify(ops, s);
	}
out:
	pthread_mutex_unlock(&s->mu);
	kaa__opl_session_put(s);
}

void kaa__operations_on_close(void *ud, kaa__session_id sid)
{
	kaa__operations *ops = ud;
	ops_session *s = kaa__opl_session_get(ops, sid, false);
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->closed = true;
	if (s->established && !s->in_key_table) {
		/* replaced by a newer session of the same endpoint: that one owns
		 * the record now */
	} else if (s->established) {
		kaa__opl_owner_report(ops, s, false);
		int rc =
			kaa__ep_touch(ops->eps, s->ep.app_id, s->ep.key_hash, NULL, kaa__wall_ms());
		if (rc != KAA_OK)
			KAA_WARN(MOD, "endpoint_touch_failed key=%s err=%s", s->ep.key_hash,
				 kaa_strerror(rc));
	}
	pthread_mutex_unlock(&s->mu);
	if (kaa__opl_session_unlink(ops, s))
		kaa__opl_session_put(s); /* the table's reference */
	kaa__opl_session_put(s);
}

void kaa__operations_catch_up(kaa__operations *ops, kaa__session_id sid)
{
	ops_session *s = kaa__opl_session_get(ops, sid, false);
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->closed && s->established && s->catchup_pending) {
		s->catchup_pending = false;
		kaa__opl_notify(ops, s);
	}
	pthread_mutex_unlock(&s->mu);
	kaa__opl_session_put(s);
}
