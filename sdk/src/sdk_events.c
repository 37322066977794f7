/*
 * Events of a client. Sending: the outbox (sdk_events.h) holds what was
 * sent and not yet acknowledged; EventAck (matched by seq) and Error
 * (matched by the send's request id) remove entries; a new session sends
 * everything again in seq order. Receiving: delivered events pass the
 * duplicate filter before on_event and are acknowledged either way.
 * The kaa__events_* calls run with the runtime lock held (sdk_client.h);
 * kaa_client_send_event, on any thread, takes it.
 */
#include "sdk_client.h"

#include <stdlib.h>
#include <string.h>

/* room in a frame for everything of an Event but its strings */
#define EVENT_FRAME_OVERHEAD 64
/* An event the server has not answered for this long in a live session is
 * sent again (with the ones after it, in seq order): a server that could
 * not route it says nothing and expects the device to re-send. */
#define EVENT_RESEND_MS 30000

static void event_result(kaa_client *c, uint64_t seq, int err, int code, const char *msg)
{
	if (err == KAA_OK)
		c->stats.events_acked++;
	else
		c->stats.events_failed++;
	if (c->cb.on_event_result)
		c->cb.on_event_result(c, seq, err, code, msg, c->user);
}

void kaa__events_pump(kaa_client *c)
{
	kaa__ob_event *e;
	int64_t now = kaa__now_ms();

	if (kaa__outbox_stale(&c->outbox, now - EVENT_RESEND_MS))
		kaa__outbox_unsend_from(&c->outbox, 0);

	while (c->sq_len < KAA__SENDQ_MAX && (e = kaa__outbox_next_unsent(&c->outbox))) {
		uint8_t *b = NULL;
		size_t l = 0;
		uint64_t req = kaa__client_next_req(c), seq = e->seq;
		int rc = kaa__sdk_frame_event(req, e->fqn, e->target, e->body, seq, &b, &l);

		if (rc == KAA_OK && l > c->max_frame) {
			/* this node takes smaller frames than the one it was
			 * checked against */
			free(b);
			kaa__outbox_remove(&c->outbox, c->outbox.nsent);
			event_result(c, seq, KAA_ERR_TOO_BIG, 0,
				     "event larger than the server's frame limit");
			continue;
		}
		if (kaa__client_enqueue(c, rc, &b, &l) != KAA_OK)
			break;
		kaa__outbox_mark_sent(&c->outbox, req, now);
		c->stats.events_sent++;
	}
}

void kaa__events_on_ack(kaa_client *c, const Kaa__Endpoint__V1__EventAck *a, uint64_t req)
{
	long i = kaa__outbox_find_seq(&c->outbox, a->seq);

	if (i < 0)
		i = kaa__outbox_find_req(&c->outbox, req);
	if (i < 0)
		return; /* a second ack for an event already dropped */
	uint64_t seq = c->outbox.v[i].seq;
	kaa__outbox_remove(&c->outbox, (size_t)i);
	event_result(c, seq, KAA_OK, 0, "");
}

void kaa__events_on_event(kaa_client *c, const Kaa__Endpoint__V1__Event *e, uint64_t req)
{
	uint8_t *b = NULL;
	size_t l = 0;
	int r = kaa__dedup_check(c->dedup, e->source_endpoint_key_hash, e->seq);

	if (r == 0) {
		c->stats.events_duplicates++;
	} else {
		if (r < 0)
			kaa__client_report(c, r, 0, "event filter: %s (event delivered unchecked)",
					   kaa_strerror(r));
		c->stats.events_received++;
		if (c->cb.on_event)
			c->cb.on_event(c, e->event_class_fqn, e->source_endpoint_key_hash, e->seq,
				       e->body_json, c->user);
	}
	/* acknowledged after processing: a crash before it means a re-send */
	kaa__client_enqueue(
		c, kaa__sdk_frame_event_ack(req, e->seq, e->source_endpoint_key_hash, &b, &l), &b,
		&l);
}

bool kaa__events_on_error(kaa_client *c, const Kaa__Endpoint__V1__Error *e, uint64_t req)
{
	int code = (int)e->code;
	long i = kaa__outbox_find_req(&c->outbox, req);

	if (i < 0)
		return false;
	if (kaa__client_retry_later(code)) {
		/* this one and the ones sent after it go again, in order */
		kaa__outbox_unsend_from(&c->outbox, (size_t)i);
		c->event_hold_until_ms =
			kaa__now_ms() + (e->retry_after_ms ? e->retry_after_ms : 1000);
		return true;
	}
	uint64_t seq = c->outbox.v[i].seq;
	kaa__outbox_remove(&c->outbox, (size_t)i);
	event_result(c, seq, KAA_ERR_PROTOCOL, code, e->message);
	return true;
}

/* ---- API ------------------------------------------------------------------ */

int kaa_client_send_event(kaa_client *c, const char *fqn, const char *target_key_hash,
			  const char *body_json, uint64_t *seq_out)
{
	size_t fl, tl, bl;
	uint64_t seq = 0;
	int rc;

	if (seq_out)
		*seq_out = 0;
	if (!c || !kaa__client_str_ok(fqn, KAA_EVENT_FQN_MAX) || !body_json ||
	    (target_key_hash && strlen(target_key_hash) > KAA_EVENT_FQN_MAX))
		return KAA_ERR_INVAL;
	fl = strlen(fqn);
	tl = target_key_hash ? strlen(target_key_hash) : 0;
	bl = strlen(body_json);
	if (bl > KAA_EVENT_BODY_MAX)
		return KAA_ERR_TOO_BIG;
	rc = kaa__client_check_json(body_json, bl, KAA_EVENT_BODY_MAX);
	if (rc != KAA_OK)
		return rc;
	kaa__client_lock(c);
	if (c->outbox.n >= c->outbox.max || fl + tl + bl + EVENT_FRAME_OVERHEAD > c->max_frame)
		rc = KAA_ERR_TOO_BIG;
	else
		rc = kaa__sdk_state_take_event_seq(c->dir, &c->st, !c->state_no_fsync, &seq);
	if (rc == KAA_OK)
		rc = kaa__outbox_push(&c->outbox, seq, fqn, target_key_hash, body_json);
	if (rc == KAA_OK) {
		c->stats.events_queued++;
		if (seq_out)
			*seq_out = seq;
		kaa__client_kick(c);
	}
	kaa__client_unlock(c);
	return rc;
}
