/* The SDK callbacks of every simulated device: they print what happened
 * (output.c), drive the --owner / --attach-endpoint-token attaches and time
 * received events. They run on the SDK's network thread. */
#include "device.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static void on_state(kaa_client *c, kaa_client_state s, void *user)
{
	kaa__sim_device *d = user;
	char node[300];
	atomic_store(&d->established, s == KAA_STATE_ESTABLISHED);
	atomic_store(&d->stopped, s == KAA_STATE_STOPPED);
	kaa_client_get_node(c, node, sizeof(node));
	kaa__sim_event_line(d, "event=state state=%s%s%s", kaa_client_state_name(s),
			    node[0] ? " node=" : "", node);
}

static void on_registered(kaa_client *c, const char *hash, bool created, void *user)
{
	kaa__sim_device *d = user;
	const kaa__sim_config *cfg = d->cfg;

	kaa__sim_event_line(d, "event=registered endpoint=%s created=%d", hash, created);
	if (!atomic_exchange(&d->registered, true))
		kaa__sim_raw_line("registered device=%d key=%s", d->index, hash);
	/* the first session of this run: attach (the SDK re-sends an
	 * unanswered request after a reconnect) */
	if (cfg->owner && !atomic_exchange(&d->attach_asked, true)) {
		int r = kaa_client_attach_owner(c, cfg->owner, cfg->owner_token, NULL);
		if (r != KAA_OK)
			kaa__sim_raw_line("owner_attach_failed device=%d code=%s reason=%s",
					  d->index, "LOCAL", kaa_strerror(r));
	} else if (!cfg->owner && cfg->attach_token && d->index == 0 &&
		   !atomic_exchange(&d->attach_asked, true)) {
		kaa_client_attach_endpoint(c, cfg->attach_token);
	}
}

static void on_attach_result(kaa_client *c, const char *token, bool ok, int code,
			     const char *reason, const char *owner_id, const char *ekh, void *user)
{
	kaa__sim_device *d = user;
	char buf[16];

	if (token) {
		if (ok)
			kaa__sim_raw_line("endpoint_attached device=%d endpoint=%s owner=%s",
					  d->index, ekh, owner_id);
		else
			kaa__sim_raw_line("endpoint_attach_failed device=%d code=%s reason=%s",
					  d->index, kaa__sim_code_name(code, buf, sizeof(buf)),
					  reason);
		return;
	}
	if (!ok) {
		kaa__sim_raw_line("owner_attach_failed device=%d code=%s reason=%s", d->index,
				  kaa__sim_code_name(code, buf, sizeof(buf)), reason);
		return;
	}
	atomic_store(&d->attached, true);
	atomic_store(&d->ever_attached, true);
	kaa__sim_raw_line("owner_attached device=%d owner=%s owner_id=%s", d->index, d->cfg->owner,
			  owner_id);
	if (d->index == 0 && d->cfg->attach_token)
		kaa_client_attach_endpoint(c, d->cfg->attach_token);
}

static void on_attach_notification(kaa_client *c, const char *owner_id, const char *by, void *user)
{
	kaa__sim_device *d = user;

	(void)c;
	atomic_store(&d->attached, true);
	atomic_store(&d->ever_attached, true);
	kaa__sim_raw_line("attach_notification device=%d owner=%s by=%s", d->index, owner_id, by);
}

static void on_detach_notification(kaa_client *c, const char *by, void *user)
{
	kaa__sim_device *d = user;

	(void)c;
	atomic_store(&d->attached, false);
	kaa__sim_raw_line("detach_notification device=%d by=%s", d->index, by);
}

/* sent_ms of a body {"n":..,"sent_ms":..}, or -1. */
static int64_t body_sent_ms(const char *body)
{
	const char *p = strstr(body, "\"sent_ms\"");
	char *end;
	long long v;

	if (!p)
		return -1;
	p += 9;
	while (*p == ' ' || *p == ':')
		p++;
	errno = 0;
	v = strtoll(p, &end, 10);
	return errno || end == p || v < 0 ? -1 : v;
}

static void on_event(kaa_client *c, const char *fqn, const char *source, uint64_t seq,
		     const char *body, void *user)
{
	kaa__sim_device *d = user;
	int64_t now = kaa__sim_wall_ms(), sent = body_sent_ms(body);

	(void)c;
	if (sent < 0) {
		kaa__sim_raw_line("event_received ts_ms=%lld device=%d source=%s seq=%" PRIu64
				  " fqn=%s",
				  (long long)now, d->index, source, seq, fqn);
		return;
	}
	int64_t lat = now - sent;
	kaa__sim_latency_add(lat);
	kaa__sim_raw_line("event_received ts_ms=%lld device=%d source=%s seq=%" PRIu64
			  " fqn=%s latency_ms=%lld",
			  (long long)now, d->index, source, seq, fqn, (long long)lat);
}

static void on_event_result(kaa_client *c, uint64_t seq, int err, int code, const char *msg,
			    void *user)
{
	kaa__sim_device *d = user;
	char buf[16];

	(void)c;
	if (err != KAA_OK)
		kaa__sim_raw_line("event_failed device=%d seq=%" PRIu64
				  " err=%s code=%s message=%s",
				  d->index, seq, kaa_strerror(err),
				  kaa__sim_code_name(code, buf, sizeof(buf)), msg);
}

static void on_error(kaa_client *c, int err, int code, const char *msg, void *user)
{
	(void)c;
	kaa__sim_event_line(user, "event=error err=%d code=%d message=\"%s\"", err, code, msg);
}

static void on_configuration(kaa_client *c, const char *json, size_t len, const char *hash,
			     void *user)
{
	(void)c;
	kaa__sim_event_line(user, "event=configuration hash=%s json=%.*s", hash, (int)len, json);
}

static void on_notification(kaa_client *c, const char *topic, uint64_t seq, const char *body,
			    void *user)
{
	(void)c;
	kaa__sim_event_line(user, "event=notification topic=%s seq=%" PRIu64 " body=%s",
			    topic[0] ? topic : "-", seq, body);
}

static void on_log_delivery(kaa_client *c, uint64_t batch, size_t n, bool ok, void *user)
{
	(void)c;
	kaa__sim_event_line(user, "event=log_delivery batch=%" PRIu64 " records=%zu ok=%d", batch,
			    n, ok);
}

const kaa_callbacks kaa__sim_callbacks = {
	.on_state = on_state,
	.on_registered = on_registered,
	.on_error = on_error,
	.on_configuration = on_configuration,
	.on_notification = on_notification,
	.on_log_delivery = on_log_delivery,
	.on_attach_result = on_attach_result,
	.on_attach_notification = on_attach_notification,
	.on_detach_notification = on_detach_notification,
	.on_event = on_event,
	.on_event_result = on_event_result,
};
