/*
 * The runtime (one libwebsockets client context on its own thread) and the
 * clients on it.
 *
 * Locking: one recursive mutex per runtime guards every client of it. The
 * network thread holds it while it handles a client (lws callbacks and the
 * sweep), API calls take it briefly; user callbacks run with it held, so
 * they may call the API (recursive) but other threads wait meanwhile.
 *
 * Timers: no per-connection lws timers. One 50 ms sweep walks the clients
 * and does everything time-driven: reconnect after backoff, connect
 * timeout, Ping when idle, the liveness check, forming and sending log
 * batches, pending subscribe/profile/owner requests and events.
 *
 * Liveness: a partitioned server sends neither FIN nor RST, and TCP alone
 * would keep such a connection "up" for many minutes. Every received byte
 * stamps last_rx_ms; the sweep sends a Ping when the server was silent for
 * keepalive_ms and declares the connection dead when it is still silent
 * liveness_ms after that Ping (two comparisons per client and sweep). A
 * sweep that ran late because the network thread was blocked (a bootstrap
 * fetch, a slow callback) gives no verdict: input may be waiting unread. An event or owner request
 * made on another thread also wakes the network thread (coalesced: one
 * wake-up per service loop turn), so it does not wait for the sweep.
 *
 * Owner requests (sdk_owners.c) and events (sdk_events.c) live in their
 * own files; this one keeps the runtime, the connection, the frame
 * dispatcher and the sweep, and sends what those two queue (pump_out).
 */
#include "sdk_client.h"

#include <libwebsockets.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 50
/* a sweep starting this long after the previous one follows a stall of
 * the network thread */
#define STALL_MS 1000
#define BOOT_TIMEOUT_MS 3000
#define BOOT_CACHE_MS 2000
#define BOOT_FAIL_HOLD_MS 1000
#define RX_MAX (64 * 1024 + 1024)
#define MAX_RECORD_BYTES (8 * 1024)
#define MAX_PROFILE_BYTES (16 * 1024)
#define CONFIG_FILE_MAX (1024 * 1024)
#define DEFAULT_IDLE_MS 120000u
#define EVENT_OUTBOX_CAP 1000000u

typedef struct kaa__outmsg {
	struct kaa__outmsg *next;
	size_t len;
	unsigned char buf[]; /* LWS_PRE bytes of headroom, then the frame */
} outmsg;

typedef struct kaa__pending_op {
	struct kaa__pending_op *next;
	bool unsubscribe;
	char topic[];
} pending_op;

/* One client vhost per TLS setup: CA file, client certificate, key. */
typedef struct ca_vhost {
	struct ca_vhost *next;
	struct lws_vhost *vh;
	char ca[]; /* "CA\nCERT\nKEY" (empty parts: none) */
} ca_vhost;

struct kaa_runtime {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct lws_context *ctx;
	pthread_t thread;
	bool running;
	volatile int stop;
	lws_sorted_usec_list_t sul;
	kaa_client *clients;
	ca_vhost *vhosts;
	/* the last bootstrap answer, shared by the clients of one runtime */
	char *boot_key;
	kaa__node_addr boot_nodes[KAA__MAX_NODES];
	size_t boot_n;
	int64_t boot_at;
	/* the last failure: within BOOT_FAIL_HOLD_MS other clients do not ask
	 * again (the fetch blocks the network thread; a dead bootstrap server
	 * must not stall every session once per client) */
	int64_t boot_fail_at;
	int boot_fail_rc;
	/* a wake-up of the network thread is pending (coalesces kicks) */
	atomic_bool kicked;
	/* start of the previous sweep; stalled: this sweep started late */
	int64_t last_sweep_ms;
	bool stalled;
};

const char *kaa_sdk_version(void)
{
	return "0.1.0";
}

const char *kaa_client_state_name(kaa_client_state s)
{
	switch (s) {
	case KAA_STATE_IDLE: return "idle";
	case KAA_STATE_BOOTSTRAPPING: return "bootstrapping";
	case KAA_STATE_CONNECTING: return "connecting";
	case KAA_STATE_ESTABLISHED: return "established";
	case KAA_STATE_WAITING: return "waiting";
	case KAA_STATE_STOPPED: return "stopped";
	}
	return "unknown";
}

/* ---- helpers (runtime lock held) ----------------------------------------- */

static void set_state(kaa_client *c, kaa_client_state s)
{
	if (c->state == s)
		return;
	c->state = s;
	if (c->cb.on_state)
		c->cb.on_state(c, s, c->user);
}

void kaa__client_report(kaa_client *c, int err, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	c->stats.errors++;
	if (!c->cb.on_error)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->cb.on_error(c, err, code, msg, c->user);
}

static void sq_clear(kaa_client *c)
{
	while (c->sq_head) {
		outmsg *m = c->sq_head;
		c->sq_head = m->next;
		free(m);
	}
	c->sq_tail = NULL;
	c->sq_len = 0;
}

/* Takes ownership of the encoded frame in *bufp. buf and len are passed by
 * address because callers build the frame in the same argument list
 * (kaa__client_enqueue(c, build(..., &b, &l), &b, &l)) and argument evaluation order
 * is unspecified. */
int kaa__client_enqueue(kaa_client *c, int rc, uint8_t **bufp, size_t *lenp)
{
	uint8_t *buf = *bufp;
	size_t len = *lenp;
	outmsg *m;

	*bufp = NULL;

	if (rc != KAA_OK) {
		free(buf);
		return rc;
	}
	m = malloc(sizeof(*m) + LWS_PRE + len);
	if (!m) {
		free(buf);
		return KAA_ERR_NOMEM;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, buf, len);
	free(buf);
	if (c->sq_tail)
		c->sq_tail->next = m;
	else
		c->sq_head = m;
	c->sq_tail = m;
	c->sq_len++;
	if (c->wsi)
		lws_callback_on_writable(c->wsi);
	return KAA_OK;
}

uint64_t kaa__client_next_req(kaa_client *c)
{
	if (++c->next_req == 0)
		c->next_req = 1;
	return c->next_req;
}

static void pump_out(kaa_client *c);

static void save_state(kaa_client *c)
{
	int rc = kaa__sdk_state_save(c->dir, &c->st, !c->state_no_fsync);
	if (rc != KAA_OK)
		kaa__client_report(c, rc, 0, "cannot write %s/state: %s", c->dir, kaa_strerror(rc));
}

/* ---- connection life ------------------------------------------------------ */

static void schedule_retry(kaa_client *c, uint32_t delay_ms)
{
	c->next_attempt_ms = kaa__now_ms() + delay_ms;
	set_state(c, c->stopped_for_good ? KAA_STATE_STOPPED : KAA_STATE_WAITING);
}

/* The session ended (or never started): forget its per-session state and
 * plan the next attempt. */
static void session_ended(kaa_client *c, const char *why)
{
	bool was_up = c->hello_acked;

	c->wsi = NULL;
	c->hello_acked = false;
	c->close_now = false;
	c->batches_sent = 0;
	c->rxlen = 0;
	c->rx_overflow = false;
	c->ka_ping_ms = 0;
	sq_clear(c);
	/* what was in flight goes out again, in order, in the next session */
	kaa__outbox_unsend_from(&c->outbox, 0);
	kaa__owners_unsend(c);
	c->event_hold_until_ms = 0;
	if (c->free_req || c->state == KAA_STATE_STOPPED || c->stopped_for_good || c->rt->stop) {
		set_state(c, KAA_STATE_STOPPED);
		return;
	}
	if (c->redirected) {
		/* next_attempt_ms was set from the Redirect */
		c->redirected = false;
		set_state(c, KAA_STATE_WAITING);
		return;
	}
	if (!was_up) {
		c->fails_since_boot++;
		if (c->fails_since_boot >= (c->nnodes > 2 ? c->nnodes : 2))
			c->need_boot = true;
		kaa__client_report(c, KAA_ERR_UNAVAILABLE, 0, "connection to %s:%u failed: %s",
				   c->cur < c->nnodes ? c->nodes[c->cur].host : "?",
				   c->cur < c->nnodes ? c->nodes[c->cur].port : 0, why);
	}
	schedule_retry(c, kaa__sdk_backoff_next(&c->bo));
}

/* Gives up on the current connection without waiting for anything from
 * the peer: the client forgets it now (and plans the next attempt), lws
 * frees it on its next service turn. Not for the (struct lws *)1
 * placeholder of attempt(). */
static void drop_connection(kaa_client *c, const char *why)
{
	struct lws *w = c->wsi;

	lws_set_opaque_user_data(w, NULL);
	session_ended(c, why);
	lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len);

/* The device offers kaa.v2 (proof of possession) and kaa.v1 (older
 * servers); the server's choice binds to one of these. */
static const struct lws_protocols protocols[] = {
	{KAA__PROTOCOL_SUBPROTOCOL, ws_callback, 0, 4096, 0, NULL, 0},
	{KAA__PROTOCOL_SUBPROTOCOL_V2, ws_callback, 0, 4096, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static struct lws_vhost *vhost_for(kaa_runtime *rt, const char *ca, const char *cert,
				   const char *key)
{
	struct lws_context_creation_info info;
	size_t len;

	if (!ca && !cert)
		return NULL;
	len = strlen(ca ? ca : "") + strlen(cert ? cert : "") + strlen(key ? key : "") + 3;
	ca_vhost *v = malloc(sizeof(*v) + len);
	if (!v)
		return NULL;
	snprintf(v->ca, len, "%s\n%s\n%s", ca ? ca : "", cert ? cert : "", key ? key : "");
	for (ca_vhost *o = rt->vhosts; o; o = o->next)
		if (strcmp(o->ca, v->ca) == 0) {
			free(v);
			return o->vh;
		}
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.client_ssl_ca_filepath = ca;
	info.client_ssl_cert_filepath = cert;
	info.client_ssl_private_key_filepath = cert ? key : NULL;
	info.vhost_name = "kaa-ca";
	info.protocols = protocols;
	v->vh = NULL;
	v->next = rt->vhosts;
	v->vh = lws_create_vhost(rt->ctx, &info);
	rt->vhosts = v;
	return v->vh;
}

static int bootstrap(kaa_client *c)
{
	kaa_runtime *rt = c->rt;
	char key[2048];
	int rc = KAA_ERR_UNAVAILABLE;
	int64_t now = kaa__now_ms();

	snprintf(key, sizeof(key), "%s|%s", c->token, c->boot[0]);
	if (rt->boot_key && strcmp(rt->boot_key, key) == 0 && now - rt->boot_at < BOOT_CACHE_MS &&
	    rt->boot_n > 0) {
		memcpy(c->nodes, rt->boot_nodes, rt->boot_n * sizeof(c->nodes[0]));
		c->nnodes = rt->boot_n;
		return KAA_OK;
	}
	set_state(c, KAA_STATE_BOOTSTRAPPING);
	if (rt->boot_key && strcmp(rt->boot_key, key) == 0 && rt->boot_fail_at &&
	    now - rt->boot_fail_at < BOOT_FAIL_HOLD_MS) {
		kaa__client_report(c, rt->boot_fail_rc, 0,
				   "bootstrap: %s (failed just now, not asked again)",
				   kaa_strerror(rt->boot_fail_rc));
		return rt->boot_fail_rc;
	}
	for (size_t i = 0; i < c->nboot; i++) {
		size_t n = 0;
		rc = kaa__sdk_bootstrap_fetch(c->boot[i], c->ca, c->token, BOOT_TIMEOUT_MS,
					      c->nodes, KAA__MAX_NODES, &n);
		if (rc == KAA_OK && n == 0)
			rc = KAA_ERR_NOTFOUND;
		if (rc == KAA_OK) {
			c->nnodes = n;
			free(rt->boot_key);
			rt->boot_key = strdup(key);
			memcpy(rt->boot_nodes, c->nodes, n * sizeof(c->nodes[0]));
			rt->boot_n = n;
			rt->boot_at = kaa__now_ms();
			rt->boot_fail_at = 0;
			return KAA_OK;
		}
		kaa__client_report(c, rc, 0, "bootstrap %s: %s", c->boot[i],
				   rc == KAA_ERR_NOTFOUND ? "no operations node"
							  : kaa_strerror(rc));
	}
	free(rt->boot_key);
	rt->boot_key = strdup(key);
	rt->boot_n = 0;
	rt->boot_fail_at = kaa__now_ms();
	rt->boot_fail_rc = rc;
	return rc;
}

static void attempt(kaa_client *c)
{
	struct lws_client_connect_info i;
	kaa__node_addr *n;
	char hostport[KAA__HOST_MAX + 8];

	if (c->need_boot || c->nnodes == 0) {
		if (bootstrap(c) == KAA_OK) {
			c->fails_since_boot = 0;
			c->cur = SIZE_MAX;
		} else if (c->nnodes == 0) {
			schedule_retry(c, kaa__sdk_backoff_next(&c->bo));
			return;
		}
		/* no bootstrap answer: keep trying the nodes we know (the
		 * bootstrap service may have died with the node we lost) */
		c->need_boot = false;
	}
	/* after a failure prefer another node */
	c->cur = kaa__sdk_pick_weighted(c->nodes, c->nnodes,
					c->fails_since_boot ? c->cur : SIZE_MAX, &c->rng);
	n = &c->nodes[c->cur];
	snprintf(hostport, sizeof(hostport), "%s:%u", n->host, n->port);
	memset(&i, 0, sizeof(i));
	i.context = c->rt->ctx;
	i.address = n->host;
	i.port = n->port;
	i.path = n->path[0] ? n->path : "/";
	i.host = hostport;
	i.origin = hostport;
	i.protocol = KAA__PROTOCOL_SUBPROTOCOL_V2 "," KAA__PROTOCOL_SUBPROTOCOL;
	i.local_protocol_name = KAA__PROTOCOL_SUBPROTOCOL;
	i.opaque_user_data = c;
	if (n->tls || (c->ca && !n->from_url)) {
		char key[PATH_MAX];
		snprintf(key, sizeof(key), "%s/key.pem", c->dir);
		i.ssl_connection = LCCSCF_USE_SSL;
		i.vhost = vhost_for(c->rt, c->ca, c->cert, key);
		if ((c->ca || c->cert) && !i.vhost) {
			/* never fall back to other CAs or no certificate */
			kaa__client_report(c, KAA_ERR_IO, 0,
					   "cannot use the CA file %s or the "
					   "client certificate %s",
					   c->ca ? c->ca : "(system)",
					   c->cert ? c->cert : "(none)");
			schedule_retry(c, kaa__sdk_backoff_next(&c->bo));
			return;
		}
	}
	c->hello_acked = false;
	c->conn_started_ms = kaa__now_ms();
	set_state(c, KAA_STATE_CONNECTING);
	/* the CONNECTION_ERROR callback may run inside this call */
	c->wsi = (struct lws *)1;
	struct lws *w = lws_client_connect_via_info(&i);
	if (!w) {
		if (c->wsi == (struct lws *)1)
			session_ended(c, "cannot start connection");
		return;
	}
	if (c->wsi == (struct lws *)1)
		c->wsi = w;
}

/* nonce: the kaa.v2 Challenge, signed into Hello.proof; NULL: kaa.v1. */
static void send_hello(kaa_client *c, const uint8_t *nonce)
{
	uint8_t *b = NULL, sig[KAA__PROOF_SIG_MAX];
	size_t l = 0, sl = 0;
	int rc = KAA_OK;

	c->hello_req = kaa__client_next_req(c);
	if (nonce)
		rc = kaa__proof_sign(c->key, nonce, c->pub, c->publen, c->token, sig, sizeof(sig),
				     &sl);
	if (rc == KAA_OK)
		rc = kaa__sdk_frame_hello_proof(c->hello_req, c->token, c->pub, c->publen,
						c->sdk_profile_id, c->profile, c->access_token,
						sl ? sig : NULL, sl, &b, &l);
	c->profile_dirty = false;
	rc = kaa__client_enqueue(c, rc, &b, &l);
	if (rc != KAA_OK)
		kaa__client_report(c, rc, 0, "cannot build Hello: %s", kaa_strerror(rc));
}

/* ---- incoming frames ------------------------------------------------------- */

static void store_config(kaa_client *c, const char *json, size_t len, const char *hash)
{
	char path[PATH_MAX];
	char *copy = malloc(len + 1);
	int rc;

	if (!copy) {
		kaa__client_report(c, KAA_ERR_NOMEM, 0, "no memory for the configuration");
		return;
	}
	memcpy(copy, json, len);
	copy[len] = '\0';
	free(c->config);
	c->config = copy;
	c->config_len = len;
	snprintf(c->st.config_hash, sizeof(c->st.config_hash), "%s", hash);
	snprintf(path, sizeof(path), "%s/config.json", c->dir);
	rc = kaa__sdk_write_file(path, json, len, 0600, !c->state_no_fsync);
	if (rc != KAA_OK)
		kaa__client_report(c, rc, 0, "cannot write %s: %s", path, kaa_strerror(rc));
	save_state(c);
	c->stats.configurations++;
	if (c->cb.on_configuration)
		c->cb.on_configuration(c, c->config, c->config_len, c->st.config_hash, c->user);
}

/* Applies one of the three configuration answers. Returns false when the
 * device must ask for the full document. */
static bool apply_config(kaa_client *c, int kind, Kaa__Endpoint__V1__ConfigUpToDate *utd,
			 Kaa__Endpoint__V1__ConfigDocument *full,
			 Kaa__Endpoint__V1__ConfigPatch *patch)
{
	(void)utd;
	if (kind == 1)
		return true;
	if (kind == 2 && full) {
		/* the unprompted push after HelloAck repeats what we hold */
		if (!c->config || strcmp(full->hash, c->st.config_hash) != 0)
			store_config(c, full->json, strlen(full->json), full->hash);
		return true;
	}
	if (kind != 3 || !patch)
		return true;
	if (!c->config || strcmp(patch->base_hash, c->st.config_hash) != 0)
		return false;
	kaa__sj *base = NULL, *p = NULL, *res = NULL;
	char *canon = NULL, hex[65];
	size_t clen = 0;
	bool ok = false;
	if (kaa__sj_parse(c->config, c->config_len, CONFIG_FILE_MAX, 64, &base) == KAA_OK &&
	    kaa__sj_parse(patch->patch_json, strlen(patch->patch_json), CONFIG_FILE_MAX, 64, &p) ==
		    KAA_OK &&
	    kaa__sj_merge_patch(base, p, &res) == KAA_OK &&
	    kaa__sj_canonical(res, &canon, &clen) == KAA_OK &&
	    kaa__sdk_sha256_hex(canon, clen, hex) == KAA_OK && strcmp(hex, patch->new_hash) == 0) {
		store_config(c, canon, clen, hex);
		ok = true;
	}
	free(canon);
	kaa__sj_free(base);
	kaa__sj_free(p);
	kaa__sj_free(res);
	return ok;
}

static void on_hello_ack(kaa_client *c, const Kaa__Endpoint__V1__HelloAck *a)
{
	uint8_t *b = NULL;
	size_t l = 0;
	bool key_changed = strcmp(c->st.endpoint_key_hash, a->endpoint_key_hash) != 0;

	c->hello_acked = true;
	kaa__sdk_backoff_reset(&c->bo);
	c->fails_since_boot = 0;
	if (c->stats.connects++ > 0)
		c->stats.reconnects++;
	c->stats.registered = true;
	c->max_records = 1000;
	c->max_frame = 65536;
	c->max_inflight = 4;
	c->idle_ms = DEFAULT_IDLE_MS;
	if (a->limits) {
		if (a->limits->max_log_records_per_batch)
			c->max_records = a->limits->max_log_records_per_batch;
		if (a->limits->max_frame_bytes)
			c->max_frame = a->limits->max_frame_bytes;
		if (a->limits->max_inflight_log_batches)
			c->max_inflight = a->limits->max_inflight_log_batches;
		if (a->limits->idle_timeout_ms)
			c->idle_ms = a->limits->idle_timeout_ms;
	}
	if (c->keepalive_opt < 0)
		c->keepalive_ms = 0;
	else if (c->keepalive_opt > 0)
		c->keepalive_ms = c->keepalive_opt;
	else if (a->limits && a->limits->idle_timeout_ms)
		c->keepalive_ms =
			a->limits->idle_timeout_ms / 3 ? a->limits->idle_timeout_ms / 3 : 1;
	else
		c->keepalive_ms = KAA_KEEPALIVE_FALLBACK_MS;
	c->liveness_ms = c->liveness_opt < 0   ? 0
			 : c->liveness_opt > 0 ? c->liveness_opt
					       : KAA_LIVENESS_TIMEOUT_DEFAULT_MS;
	c->ka_ping_ms = 0;
	snprintf(c->prev_session, sizeof(c->prev_session), "%s", c->st.session_id);
	snprintf(c->st.endpoint_key_hash, sizeof(c->st.endpoint_key_hash), "%s",
		 a->endpoint_key_hash);
	snprintf(c->st.session_id, sizeof(c->st.session_id), "%s", a->session_id);
	if (key_changed)
		c->prev_session[0] = '\0';
	save_state(c);
	c->in_hello_ack = true;
	set_state(c, KAA_STATE_ESTABLISHED);
	if (c->cb.on_registered)
		c->cb.on_registered(c, a->endpoint_key_hash, a->registered, c->user);
	c->in_hello_ack = false;
	if (c->prev_session[0] && c->st.n_streams > 0)
		kaa__client_enqueue(c,
				    kaa__sdk_frame_session_resume(kaa__client_next_req(c),
								  c->prev_session, c->st.streams,
								  c->st.n_streams, &b, &l),
				    &b, &l);
	b = NULL;
	kaa__client_enqueue(
		c, kaa__sdk_frame_config_sync(kaa__client_next_req(c), c->st.config_hash, &b, &l),
		&b, &l);
	c->batches_sent = 0;
	if (c->profile_dirty) {
		b = NULL;
		kaa__client_enqueue(
			c, kaa__sdk_frame_profile(kaa__client_next_req(c), c->profile, &b, &l), &b,
			&l);
		c->profile_dirty = false;
	}
	/* unacknowledged events and unanswered requests, in order */
	pump_out(c);
}

static void on_notification(kaa_client *c, const Kaa__Endpoint__V1__Notification *n)
{
	kaa__stream_pos *p = kaa__sdk_state_stream(&c->st, n->topic_id);
	uint8_t *b = NULL;
	size_t l = 0;

	if (!p) {
		kaa__client_report(c, KAA_ERR_TOO_BIG, 0, "too many notification streams");
		return;
	}
	if (n->seq > p->last_seq) {
		c->stats.notifications++;
		if (c->cb.on_notification)
			c->cb.on_notification(c, n->topic_id, n->seq, n->body_json, c->user);
		p->last_seq = n->seq;
		/* persisted before the ack: a crash in between re-delivers
		 * nothing, a crash before it re-delivers once and we drop it */
		save_state(c);
	}
	kaa__client_enqueue(c, kaa__sdk_frame_notification_ack(n->topic_id, n->seq, &b, &l), &b,
			    &l);
}

static void on_delivery(kaa_client *c, const Kaa__Endpoint__V1__LogDeliveryStatus *s)
{
	kaa__lq_batch b;
	size_t n;
	int rc;

	if (kaa__lq_find(c->lq, s->batch_id, &b) != KAA_OK)
		return; /* a duplicate status for a batch already dropped */
	n = b.n;
	if (c->batches_sent > 0)
		c->batches_sent--;
	if (s->status == KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS) {
		rc = kaa__lq_ack(c->lq, s->batch_id);
		if (rc != KAA_OK)
			kaa__client_report(c, rc, 0, "log queue: cannot record the ack: %s",
					   kaa_strerror(rc));
		c->stats.records_acked += n;
		if (c->cb.on_log_delivery)
			c->cb.on_log_delivery(c, s->batch_id, n, true, c->user);
		return;
	}
	if (s->retryable) {
		/* storage unavailable: re-send every open batch a bit later */
		c->log_hold_until_ms = kaa__now_ms() + 1000;
		c->batches_sent = 0;
		kaa__client_report(c, KAA_ERR_UNAVAILABLE, (int)s->code,
				   "log batch %llu not stored: %s", (unsigned long long)s->batch_id,
				   s->reason);
		return;
	}
	if (s->code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_LOG_RECORD && s->index < n)
		rc = kaa__lq_reject(c->lq, s->batch_id, s->index);
	else
		rc = kaa__lq_ack(c->lq, s->batch_id); /* nothing to fix: drop it */
	kaa__client_report(c, KAA_ERR_INVAL, (int)s->code, "log batch %llu refused (record %u): %s",
			   (unsigned long long)s->batch_id, s->index, s->reason);
	if (rc != KAA_OK)
		kaa__client_report(c, rc, 0, "log queue: %s", kaa_strerror(rc));
	if (c->cb.on_log_delivery)
		c->cb.on_log_delivery(c, s->batch_id, n, false, c->user);
}

static void on_error_frame(kaa_client *c, const Kaa__Endpoint__V1__Error *e, uint64_t req)
{
	int code = (int)e->code;

	if (code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_REVOKED) {
		c->stopped_for_good = true;
		c->close_now = true;
	} else if (req == c->hello_req && !c->hello_acked &&
		   (code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNAUTHENTICATED ||
		    code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN)) {
		/* refused: retry, but slowly */
		c->bo.base_ms = c->bo.max_ms;
	} else if (code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED ||
		   code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_OVERLOADED) {
		c->log_hold_until_ms =
			kaa__now_ms() + (e->retry_after_ms ? e->retry_after_ms : 1000);
		c->batches_sent = 0;
	}
	if (e->fatal)
		c->close_now = true;
	kaa__client_report(c, KAA_ERR_PROTOCOL, code, "server error %d%s%s: %s", code,
			   e->field[0] ? " at " : "", e->field, e->message);
}

static void on_redirect(kaa_client *c, const Kaa__Endpoint__V1__Redirect *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n_targets && n < KAA__MAX_NODES; i++) {
		const Kaa__Endpoint__V1__RedirectTarget *t = r->targets[i];
		kaa__node_addr *a = &c->nodes[n];
		/* the target's advertised URL wins (it may only be reachable
		 * through an ingress); host and port are for older servers */
		if (t->url && t->url[0] && kaa__sdk_node_from_url(t->url, a) == KAA_OK) {
			a->weight = t->weight ? t->weight : 1;
			n++;
			continue;
		}
		if (!t->host[0] || strlen(t->host) >= KAA__HOST_MAX || t->port == 0 ||
		    t->port > 65535)
			continue;
		memset(a, 0, sizeof(*a));
		strcpy(a->host, t->host);
		a->port = (uint16_t)t->port;
		a->weight = t->weight ? t->weight : 1;
		a->tls = t->tls;
		strcpy(a->path, "/");
		n++;
	}
	c->nnodes = n;
	c->need_boot = n == 0;
	c->fails_since_boot = 0;
	c->cur = SIZE_MAX;
	c->redirected = true;
	uint32_t wait = r->retry_after_ms;
	c->next_attempt_ms = kaa__now_ms() + wait + kaa__sdk_rand_below(&c->rng, wait / 4 + 50);
	c->close_now = true;
}

/* ---- owner requests and events out ------------------------------------------ */

/* Sends what waits in the outbox and the owner requests (online only). */
static void pump_out(kaa_client *c)
{
	if (!c->hello_acked || !c->wsi || kaa__now_ms() < c->event_hold_until_ms)
		return;
	kaa__owners_pump(c);
	kaa__events_pump(c);
}

/* Gets a request made by the API out promptly: directly on the network
 * thread, else by waking it (at most one pending wake-up per runtime). */
void kaa__client_kick(kaa_client *c)
{
	kaa_runtime *rt = c->rt;

	if (!rt || !c->hello_acked)
		return;
	if (rt->running && pthread_equal(pthread_self(), rt->thread)) {
		if (!c->in_hello_ack)
			pump_out(c);
		return;
	}
	if (!atomic_exchange(&rt->kicked, true))
		lws_cancel_service(rt->ctx);
}

/* An Error answering an event or an owner request (the request id tells
 * which). */
static void event_or_owner_error(kaa_client *c, const Kaa__Endpoint__V1__Error *e, uint64_t req)
{
	if (req && !kaa__events_on_error(c, e, req))
		kaa__owners_on_error(c, e, req);
}

static void handle_frame(kaa_client *c, const Kaa__Endpoint__V1__Frame *f)
{
	uint8_t *b = NULL;
	size_t l = 0;

	switch (f->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO_ACK: on_hello_ack(c, f->hello_ack); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ERROR:
		on_error_frame(c, f->error, f->request_id);
		if (!c->close_now)
			event_or_owner_error(c, f->error, f->request_id);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ACK: kaa__owners_on_ack(c, f->request_id); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT:
		kaa__events_on_event(c, f->event, f->request_id);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK:
		kaa__events_on_ack(c, f->event_ack, f->request_id);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_RESPONSE:
		kaa__owners_on_listeners(c, f->event_listeners_response, f->request_id);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_RESPONSE:
		kaa__owners_on_attach_response(c, f->owner_attach_response, f->request_id);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ATTACH_NOTIFICATION:
		kaa__owners_on_attach_notification(c, f->attach_notification);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_DETACH_NOTIFICATION:
		kaa__owners_on_detach_notification(c, f->detach_notification);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_PING:
		kaa__client_enqueue(c,
				    kaa__sdk_frame_pong(f->request_id, f->ping->payload.data,
							f->ping->payload.len, &b, &l),
				    &b, &l);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_RESPONSE: {
		const Kaa__Endpoint__V1__ConfigSyncResponse *r = f->config_sync_response;
		if (!apply_config(c, (int)r->result_case, r->up_to_date, r->full, r->patch))
			kaa__client_enqueue(
				c, kaa__sdk_frame_config_sync(kaa__client_next_req(c), "", &b, &l),
				&b, &l);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_PUSH: {
		const Kaa__Endpoint__V1__ConfigPush *r = f->config_push;
		if (apply_config(c, (int)r->result_case, r->up_to_date, r->full, r->patch))
			kaa__client_enqueue(c, kaa__sdk_frame_ack(f->request_id, &b, &l), &b, &l);
		else
			kaa__client_enqueue(
				c, kaa__sdk_frame_config_sync(f->request_id, "", &b, &l), &b, &l);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION:
		on_notification(c, f->notification);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_LOG_DELIVERY_STATUS:
		on_delivery(c, f->log_delivery_status);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_REDIRECT: on_redirect(c, f->redirect); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_CHALLENGE:
		/* one Challenge per session, before Hello; others are ignored */
		if (c->await_challenge) {
			c->await_challenge = false;
			send_hello(c, f->challenge->nonce.data);
		}
		break;
	default:
		/* Pong and NotificationTopics need nothing from this SDK
		 * version */
		break;
	}
}

static void on_message(kaa_client *c, const unsigned char *buf, size_t len)
{
	Kaa__Endpoint__V1__Frame *f = NULL;
	kaa__frame_error fe;
	int rc = kaa__frame_decode(buf, len, NULL, &f, &fe);

	if (rc != KAA_OK) {
		kaa__client_report(c, KAA_ERR_PROTOCOL, (int)fe.code,
				   "bad frame from the server: %s", fe.message);
		return;
	}
	if (!c->hello_acked && f->body_case != KAA__ENDPOINT__V1__FRAME__BODY_HELLO_ACK &&
	    f->body_case != KAA__ENDPOINT__V1__FRAME__BODY_ERROR &&
	    f->body_case != KAA__ENDPOINT__V1__FRAME__BODY_PING &&
	    f->body_case != KAA__ENDPOINT__V1__FRAME__BODY_REDIRECT &&
	    f->body_case != KAA__ENDPOINT__V1__FRAME__BODY_CHALLENGE) {
		kaa__frame_free(f);
		return;
	}
	handle_frame(c, f);
	kaa__frame_free(f);
}

/* ---- sweep: everything time-driven ------------------------------------------ */

static void pump_logs(kaa_client *c, int64_t now)
{
	kaa__lq_batch b;
	size_t open_batches;

	if (now < c->log_hold_until_ms)
		return;
	open_batches = kaa__lq_batches(c->lq);
	if (c->batches_sent > open_batches)
		c->batches_sent = open_batches;
	while (c->sq_len < KAA__SENDQ_MAX / 2 && c->batches_sent < c->max_inflight) {
		if (c->batches_sent < open_batches) {
			if (kaa__lq_batch_at(c->lq, c->batches_sent, &b) != KAA_OK)
				break;
		} else {
			size_t unb = kaa__lq_unbatched(c->lq);
			size_t per = c->batch_records < c->max_records ? c->batch_records
								       : c->max_records;
			if (unb == 0) {
				c->unbatched_since_ms = 0;
				break;
			}
			if (c->unbatched_since_ms == 0)
				c->unbatched_since_ms = now;
			if (unb < per && now - c->unbatched_since_ms < (int64_t)c->flush_ms)
				break;
			/* leave room for the frame's own fields */
			int rc = kaa__lq_new_batch(c->lq, per, c->max_frame - 1024, &b);
			if (rc != KAA_OK) {
				kaa__client_report(c, rc, 0, "log queue: cannot form a batch: %s",
						   kaa_strerror(rc));
				c->log_hold_until_ms = now + 1000;
				break;
			}
			open_batches++;
			c->unbatched_since_ms = kaa__lq_unbatched(c->lq) ? now : 0;
		}
		uint8_t *buf = NULL;
		size_t l = 0;
		int rc = kaa__sdk_frame_log_upload(kaa__client_next_req(c), b.id, b.records, b.n,
						   &buf, &l);
		if (kaa__client_enqueue(c, rc, &buf, &l) != KAA_OK)
			break;
		c->batches_sent++;
		c->stats.records_sent += b.n;
	}
}

static void sweep_client(kaa_client *c, int64_t now)
{
	uint8_t *b = NULL;
	size_t l = 0;

	switch (c->state) {
	case KAA_STATE_WAITING:
		if (c->started && now >= c->next_attempt_ms)
			attempt(c);
		break;
	case KAA_STATE_CONNECTING:
		if (c->wsi && c->wsi != (struct lws *)1 &&
		    now - c->conn_started_ms > (int64_t)c->connect_timeout_ms) {
			c->stats.connect_timeouts++;
			drop_connection(c, "timed out");
		}
		break;
	case KAA_STATE_ESTABLISHED:
		if (!c->wsi || c->wsi == (struct lws *)1)
			break;
		if (c->ka_ping_ms && c->liveness_ms && !c->rt->stalled &&
		    now - c->ka_ping_ms >= c->liveness_ms) {
			size_t dead = c->cur;
			c->stats.liveness_timeouts++;
			kaa__client_report(
				c, KAA_ERR_TIMEOUT, 0,
				"no answer from %s:%u for %lld ms (Ping unanswered for %lld ms): "
				"connection closed",
				c->cur < c->nnodes ? c->nodes[c->cur].host : "?",
				c->cur < c->nnodes ? c->nodes[c->cur].port : 0,
				(long long)(now - c->last_rx_ms), (long long)(now - c->ka_ping_ms));
			drop_connection(c, "no answer to Ping");
			/* like a failed attempt: prefer another node next */
			if (dead < c->nnodes && c->fails_since_boot == 0)
				c->fails_since_boot = 1;
			break;
		}
		if (c->ka_ping_ms && !c->liveness_ms && now - c->ka_ping_ms >= c->keepalive_ms)
			c->ka_ping_ms = 0; /* no liveness verdicts: just keep pinging */
		if (c->keepalive_ms && !c->ka_ping_ms && now - c->last_rx_ms >= c->keepalive_ms) {
			c->ka_ping_ms = now;
			kaa__client_enqueue(c, kaa__sdk_frame_ping(kaa__client_next_req(c), &b, &l),
					    &b, &l);
		}
		while (c->ops && c->sq_len < KAA__SENDQ_MAX) {
			pending_op *op = c->ops;
			c->ops = op->next;
			kaa__client_enqueue(c,
					    kaa__sdk_frame_subscribe(kaa__client_next_req(c),
								     op->topic, op->unsubscribe, &b,
								     &l),
					    &b, &l);
			free(op);
		}
		if (c->profile_dirty) {
			kaa__client_enqueue(
				c,
				kaa__sdk_frame_profile(kaa__client_next_req(c), c->profile, &b, &l),
				&b, &l);
			c->profile_dirty = false;
		}
		pump_out(c);
		pump_logs(c, now);
		if (c->sq_len == 0 && now - c->last_tx_ms >= (int64_t)c->idle_ms / 2)
			kaa__client_enqueue(c, kaa__sdk_frame_ping(kaa__client_next_req(c), &b, &l),
					    &b, &l);
		break;
	default: break;
	}
}

static void detach(kaa_client *c)
{
	kaa_runtime *rt = c->rt;

	if (c->wsi && c->wsi != (struct lws *)1) {
		struct lws *w = c->wsi;
		lws_set_opaque_user_data(w, NULL);
		c->wsi = NULL;
		lws_set_timeout(w, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
	}
	if (c->prev)
		c->prev->next = c->next;
	else if (rt->clients == c)
		rt->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->detached = true;
	pthread_cond_broadcast(&rt->cond);
}

static void run_sweep(kaa_runtime *rt)
{
	int64_t now = kaa__now_ms();

	pthread_mutex_lock(&rt->lock);
	rt->stalled = rt->last_sweep_ms && now - rt->last_sweep_ms > STALL_MS;
	rt->last_sweep_ms = now;
	for (kaa_client *c = rt->clients, *nx; c; c = nx) {
		nx = c->next;
		if (c->free_req)
			detach(c);
		else
			sweep_client(c, now);
	}
	pthread_mutex_unlock(&rt->lock);
}

static void sweep(lws_sorted_usec_list_t *sul)
{
	kaa_runtime *rt = lws_container_of(sul, kaa_runtime, sul);

	run_sweep(rt);
	if (!rt->stop)
		lws_sul_schedule(rt->ctx, 0, &rt->sul, sweep, SWEEP_MS * LWS_US_PER_MS);
}

static bool rx_reserve(kaa_client *c, size_t need)
{
	size_t nc = c->rxcap ? c->rxcap : 1024;
	unsigned char *n;

	if (need <= c->rxcap)
		return true;
	while (nc < need)
		nc *= 2;
	if (nc > RX_MAX)
		nc = RX_MAX;
	n = realloc(c->rx, nc);
	if (!n)
		return false;
	c->rx = n;
	c->rxcap = nc;
	return true;
}

/* ---- libwebsockets callback -------------------------------------------------- */

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	kaa_client *c;
	kaa_runtime *rt;
	int ret = 0;

	(void)user;
	if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
		rt = lws_context_user(lws_get_context(wsi));
		if (rt) {
			atomic_store(&rt->kicked, false);
			run_sweep(rt);
		}
		return 0;
	}
	c = wsi ? lws_get_opaque_user_data(wsi) : NULL;
	if (!c)
		return 0;
	rt = c->rt;
	pthread_mutex_lock(&rt->lock);
	switch (reason) {
	case LWS_CALLBACK_CLIENT_FILTER_PRE_ESTABLISH: {
		/* the subprotocol the server chose (the wsi stays bound to our
		 * kaa.v1 protocol struct whatever it is): kaa.v2 means its
		 * first frame is the Challenge to sign */
		char proto[16] = "";
		c->await_challenge =
			lws_hdr_copy(wsi, proto, sizeof(proto), WSI_TOKEN_PROTOCOL) > 0 &&
			!strcmp(proto, KAA__PROTOCOL_SUBPROTOCOL_V2);
		break;
	}
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->wsi = wsi;
		c->last_tx_ms = c->last_rx_ms = kaa__now_ms();
		if (!c->await_challenge)
			send_hello(c, NULL);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		lws_set_opaque_user_data(wsi, NULL);
		session_ended(c, in && len ? (const char *)in : "connection error");
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		lws_set_opaque_user_data(wsi, NULL);
		session_ended(c, "closed");
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		/* lws frees some client connections (failures while connecting
		 * under load) without CLOSED or CONNECTION_ERROR: forget the
		 * pointer here too, or the connect timeout would touch freed
		 * memory */
		lws_set_opaque_user_data(wsi, NULL);
		if (c->wsi == wsi)
			session_ended(c, "connection lost");
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		/* any byte from the server proves it alive, not only a Pong */
		c->last_rx_ms = kaa__now_ms();
		c->ka_ping_ms = 0;
		if (c->rx_overflow || c->rxlen + len > RX_MAX || !rx_reserve(c, c->rxlen + len)) {
			c->rx_overflow = true;
		} else {
			memcpy(c->rx + c->rxlen, in, len);
			c->rxlen += len;
		}
		if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
			if (c->rx_overflow)
				kaa__client_report(c, KAA_ERR_TOO_BIG, 0,
						   "message from the server too big");
			else if (lws_frame_is_binary(wsi))
				on_message(c, c->rx, c->rxlen);
			c->rxlen = 0;
			c->rx_overflow = false;
		}
		if (c->close_now)
			ret = -1;
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->close_now) {
			ret = -1;
			break;
		}
		if (c->sq_head) {
			outmsg *m = c->sq_head;
			int w = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_BINARY);
			c->sq_head = m->next;
			if (!c->sq_head)
				c->sq_tail = NULL;
			c->sq_len--;
			free(m);
			if (w < 0) {
				ret = -1;
				break;
			}
			c->last_tx_ms = kaa__now_ms();
			if (c->sq_head)
				lws_callback_on_writable(wsi);
		}
		break;
	default: break;
	}
	pthread_mutex_unlock(&rt->lock);
	return ret;
}

/* ---- runtime ------------------------------------------------------------------ */

static void *rt_thread(void *arg)
{
	kaa_runtime *rt = arg;

	lws_sul_schedule(rt->ctx, 0, &rt->sul, sweep, SWEEP_MS * LWS_US_PER_MS);
	while (!rt->stop)
		if (lws_service(rt->ctx, 0) < 0)
			break;
	return NULL;
}

int kaa_runtime_new(kaa_runtime **out)
{
	struct lws_context_creation_info info;
	pthread_mutexattr_t ma;
	kaa_runtime *rt;
	int rc = KAA_ERR_INTERNAL;

	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	rt = calloc(1, sizeof(*rt));
	if (!rt)
		return KAA_ERR_NOMEM;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&rt->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	pthread_cond_init(&rt->cond, NULL);
	/* the SDK never prints: silence libwebsockets (process-wide) */
	lws_set_log_level(0, NULL);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.gid = (gid_t)-1;
	info.uid = (uid_t)-1;
	info.user = rt;
	/* room for many devices in one process (kaa-device) */
	info.fd_limit_per_thread = 0;
	rt->ctx = lws_create_context(&info);
	if (!rt->ctx)
		goto fail;
	if (pthread_create(&rt->thread, NULL, rt_thread, rt) != 0)
		goto fail;
	rt->running = true;
	*out = rt;
	return KAA_OK;
fail:
	if (rt->ctx)
		lws_context_destroy(rt->ctx);
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
	return rc;
}

void kaa_runtime_free(kaa_runtime *rt)
{
	if (!rt)
		return;
	if (rt->running) {
		rt->stop = 1;
		lws_cancel_service(rt->ctx);
		pthread_join(rt->thread, NULL);
		rt->running = false;
	}
	/* closes every connection; the CLOSED callbacks see the clients */
	lws_context_destroy(rt->ctx);
	pthread_mutex_lock(&rt->lock);
	for (kaa_client *c = rt->clients, *nx; c; c = nx) {
		nx = c->next;
		c->wsi = NULL;
		c->rt = NULL;
		c->prev = c->next = NULL;
		c->detached = true;
		if (c->state != KAA_STATE_IDLE)
			c->state = KAA_STATE_STOPPED;
	}
	rt->clients = NULL;
	pthread_mutex_unlock(&rt->lock);
	while (rt->vhosts) {
		ca_vhost *v = rt->vhosts;
		rt->vhosts = v->next;
		free(v);
	}
	free(rt->boot_key);
	pthread_cond_destroy(&rt->cond);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

/* ---- client API ------------------------------------------------------------------ */

static void client_destroy(kaa_client *c)
{
	if (!c)
		return;
	sq_clear(c);
	while (c->ops) {
		pending_op *op = c->ops;
		c->ops = op->next;
		free(op);
	}
	kaa__owners_clear(c);
	kaa__outbox_clear(&c->outbox);
	kaa__dedup_free(c->dedup);
	free(c->access_token);
	kaa__lq_close(c->lq);
	kaa__sdk_state_clear(&c->st);
	for (size_t i = 0; i < c->nboot; i++)
		free(c->boot[i]);
	free(c->boot);
	free(c->token);
	free(c->dir);
	free(c->profile);
	free(c->sdk_profile_id);
	free(c->ca);
	free(c->cert);
	free(c->pub);
	EVP_PKEY_free(c->key);
	free(c->config);
	free(c->rx);
	free(c);
}

static int dup_opt(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return KAA_OK;
	*out = strdup(s);
	return *out ? KAA_OK : KAA_ERR_NOMEM;
}

int kaa__client_check_json(const char *s, size_t len, size_t max)
{
	kaa__sj *v = NULL;
	int rc;

	if (len > max)
		return KAA_ERR_TOO_BIG;
	rc = kaa__sj_parse(s, len, max, 64, &v);
	kaa__sj_free(v);
	return rc == KAA_ERR_NOMEM ? rc : rc != KAA_OK ? KAA_ERR_INVAL : KAA_OK;
}

int kaa_client_new(kaa_runtime *rt, const kaa_client_options *o, kaa_client **out)
{
	kaa_client *c = NULL;
	char path[PATH_MAX];
	int rc;

	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (!rt || !o || !o->application_token || !*o->application_token ||
	    strlen(o->application_token) > 1024 || !o->bootstrap_servers ||
	    o->bootstrap_count == 0 || !o->state_dir || !*o->state_dir)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < o->bootstrap_count; i++) {
		kaa__device_url u;
		if (!o->bootstrap_servers[i] ||
		    kaa__device_url_parse(o->bootstrap_servers[i], KAA__URL_HTTP | KAA__URL_BARE,
					  &u) != KAA_OK)
			return KAA_ERR_INVAL;
	}
	if (o->client_profile_json &&
	    (rc = kaa__client_check_json(o->client_profile_json, strlen(o->client_profile_json),
					 MAX_PROFILE_BYTES)) != KAA_OK)
		return rc;
	if (o->endpoint_access_token &&
	    (!*o->endpoint_access_token || strlen(o->endpoint_access_token) > KAA_OWNER_TOKEN_MAX))
		return KAA_ERR_INVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return KAA_ERR_NOMEM;
	c->rt = rt;
	c->cur = SIZE_MAX;
	c->rng = kaa__sdk_random64() | 1;
	c->max_records = 1000;
	c->max_frame = 65536;
	c->max_inflight = 4;
	c->idle_ms = DEFAULT_IDLE_MS;
	c->batch_records = o->log_batch_records ? o->log_batch_records : 100;
	kaa__outbox_init(&c->outbox, o->event_outbox_max > EVENT_OUTBOX_CAP ? EVENT_OUTBOX_CAP
									    : o->event_outbox_max);
	c->flush_ms = o->log_flush_ms ? o->log_flush_ms : 100;
	c->keepalive_opt = o->keepalive_ms;
	c->liveness_opt = o->liveness_timeout_ms;
	c->connect_timeout_ms =
		o->connect_timeout_ms ? o->connect_timeout_ms : KAA_CONNECT_TIMEOUT_DEFAULT_MS;
	if (o->callbacks)
		c->cb = *o->callbacks;
	c->user = o->user;
	kaa__sdk_backoff_init(&c->bo, o->backoff_initial_ms ? o->backoff_initial_ms : 500,
			      o->backoff_max_ms ? o->backoff_max_ms : 30000);
	rc = dup_opt(o->application_token, &c->token);
	if (rc == KAA_OK)
		rc = dup_opt(o->state_dir, &c->dir);
	if (rc == KAA_OK)
		rc = dup_opt(o->client_profile_json, &c->profile);
	if (rc == KAA_OK)
		rc = dup_opt(o->sdk_profile_id, &c->sdk_profile_id);
	if (rc == KAA_OK)
		rc = dup_opt(o->ca_file, &c->ca);
	if (rc == KAA_OK)
		rc = dup_opt(o->client_cert_file, &c->cert);
	if (rc == KAA_OK && !(c->boot = calloc(o->bootstrap_count, sizeof(*c->boot))))
		rc = KAA_ERR_NOMEM;
	for (size_t i = 0; rc == KAA_OK && i < o->bootstrap_count; i++) {
		rc = dup_opt(o->bootstrap_servers[i], &c->boot[i]);
		c->nboot = i + 1;
	}
	if (rc != KAA_OK)
		goto fail;
	rc = kaa__sdk_mkdirs(c->dir);
	if (rc == KAA_OK)
		rc = kaa__sdk_key_load_or_create(c->dir, &c->key, &c->pub, &c->publen);
	if (rc == KAA_OK)
		rc = kaa__sdk_state_load(c->dir, &c->st);
	if (rc != KAA_OK)
		goto fail;
	if (c->st.config_hash[0]) {
		/* the document the hash names; without it, ask for the full one */
		snprintf(path, sizeof(path), "%s/config.json", c->dir);
		if (kaa__sdk_read_file(path, CONFIG_FILE_MAX, &c->config, &c->config_len) != KAA_OK)
			c->st.config_hash[0] = '\0';
	}
	c->state_no_fsync = o->state_no_fsync;
	if (!o->endpoint_access_token && !c->st.endpoint_access_token[0]) {
		/* first start: a token of our own, kept with the endpoint state */
		rc = kaa__sdk_new_access_token(c->st.endpoint_access_token);
		if (rc == KAA_OK)
			rc = kaa__sdk_state_save(c->dir, &c->st, !c->state_no_fsync);
		if (rc != KAA_OK)
			goto fail;
	}
	rc = dup_opt(o->endpoint_access_token ? o->endpoint_access_token
					      : c->st.endpoint_access_token,
		     &c->access_token);
	if (rc == KAA_OK)
		rc = kaa__dedup_new(0, &c->dedup);
	if (rc != KAA_OK)
		goto fail;
	snprintf(path, sizeof(path), "%s/logs.q", c->dir);
	rc = kaa__lq_open(path, o->log_queue_max_records ? o->log_queue_max_records : 100000,
			  !o->log_no_fsync, &c->lq, NULL);
	if (rc != KAA_OK)
		goto fail;
	pthread_mutex_lock(&rt->lock);
	c->next = rt->clients;
	if (rt->clients)
		rt->clients->prev = c;
	rt->clients = c;
	pthread_mutex_unlock(&rt->lock);
	*out = c;
	return KAA_OK;
fail:
	client_destroy(c);
	return rc == KAA_ERR_NOTFOUND ? KAA_ERR_IO : rc;
}

int kaa_client_start(kaa_client *c)
{
	kaa_runtime *rt;

	if (!c)
		return KAA_ERR_INVAL;
	rt = c->rt;
	if (!rt)
		return KAA_ERR_CANCELED;
	pthread_mutex_lock(&rt->lock);
	if (!c->started) {
		c->started = true;
		c->next_attempt_ms = 0;
		c->state = KAA_STATE_WAITING;
	}
	pthread_mutex_unlock(&rt->lock);
	lws_cancel_service(rt->ctx);
	return KAA_OK;
}

void kaa_client_free(kaa_client *c)
{
	kaa_runtime *rt;

	if (!c)
		return;
	rt = c->rt;
	if (rt) {
		pthread_mutex_lock(&rt->lock);
		if (!c->detached) {
			if (rt->running) {
				c->free_req = true;
				lws_cancel_service(rt->ctx);
				while (!c->detached)
					pthread_cond_wait(&rt->cond, &rt->lock);
			} else {
				detach(c);
			}
		}
		pthread_mutex_unlock(&rt->lock);
	}
	client_destroy(c);
}

void kaa__client_lock(kaa_client *c)
{
	if (c->rt)
		pthread_mutex_lock(&c->rt->lock);
}

void kaa__client_unlock(kaa_client *c)
{
	if (c->rt)
		pthread_mutex_unlock(&c->rt->lock);
}

int kaa_client_log_add(kaa_client *c, const char *json, size_t len)
{
	int rc;

	if (!c || !json || len == 0)
		return KAA_ERR_INVAL;
	rc = kaa__client_check_json(json, len, MAX_RECORD_BYTES);
	if (rc != KAA_OK)
		return rc;
	kaa__client_lock(c);
	rc = kaa__lq_append(c->lq, json, len);
	kaa__client_unlock(c);
	return rc;
}

static int add_op(kaa_client *c, const char *topic, bool unsubscribe)
{
	pending_op *op, **tail;
	size_t n;

	if (!c || !topic || !*topic || (n = strlen(topic)) >= KAA__ID_MAX)
		return KAA_ERR_INVAL;
	op = malloc(sizeof(*op) + n + 1);
	if (!op)
		return KAA_ERR_NOMEM;
	op->next = NULL;
	op->unsubscribe = unsubscribe;
	memcpy(op->topic, topic, n + 1);
	kaa__client_lock(c);
	for (tail = &c->ops; *tail; tail = &(*tail)->next)
		;
	*tail = op;
	kaa__client_unlock(c);
	return KAA_OK;
}

int kaa_client_subscribe(kaa_client *c, const char *topic_id)
{
	return add_op(c, topic_id, false);
}

int kaa_client_unsubscribe(kaa_client *c, const char *topic_id)
{
	return add_op(c, topic_id, true);
}

int kaa_client_set_profile(kaa_client *c, const char *json)
{
	char *copy;
	int rc;

	if (!c || !json)
		return KAA_ERR_INVAL;
	rc = kaa__client_check_json(json, strlen(json), MAX_PROFILE_BYTES);
	if (rc != KAA_OK)
		return rc;
	copy = strdup(json);
	if (!copy)
		return KAA_ERR_NOMEM;
	kaa__client_lock(c);
	free(c->profile);
	c->profile = copy;
	c->profile_dirty = true;
	kaa__client_unlock(c);
	return KAA_OK;
}

int kaa_client_get_stats(kaa_client *c, kaa_client_stats *out)
{
	if (!c || !out)
		return KAA_ERR_INVAL;
	kaa__client_lock(c);
	*out = c->stats;
	out->queued_records = kaa__lq_count(c->lq);
	out->events_outbox = c->outbox.n;
	kaa__client_unlock(c);
	return KAA_OK;
}

kaa_client_state kaa_client_get_state(kaa_client *c)
{
	kaa_client_state s;

	if (!c)
		return KAA_STATE_STOPPED;
	kaa__client_lock(c);
	s = c->state;
	kaa__client_unlock(c);
	return s;
}

void kaa_client_get_endpoint_key_hash(kaa_client *c, char *buf, size_t len)
{
	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	if (!c)
		return;
	kaa__client_lock(c);
	snprintf(buf, len, "%s",
		 c->hello_acked || c->stats.registered ? c->st.endpoint_key_hash : "");
	kaa__client_unlock(c);
}

void kaa_client_get_node(kaa_client *c, char *buf, size_t len)
{
	if (!buf || len == 0)
		return;
	buf[0] = '\0';
	if (!c)
		return;
	kaa__client_lock(c);
	if (c->cur < c->nnodes &&
	    (c->state == KAA_STATE_CONNECTING || c->state == KAA_STATE_ESTABLISHED))
		snprintf(buf, len, "%s:%u", c->nodes[c->cur].host, c->nodes[c->cur].port);
	kaa__client_unlock(c);
}

/* ---- shared by the API of sdk_owners.c and sdk_events.c ------------------------- */

bool kaa__client_str_ok(const char *s, size_t max)
{
	return s && *s && strlen(s) <= max;
}

bool kaa__client_retry_later(int code)
{
	return code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_RATE_LIMITED ||
	       code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_OVERLOADED ||
	       code == KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL;
}
