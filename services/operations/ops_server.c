/*
 * ops_server.c - device WebSocket sessions on libwebsockets with a libuv
 * loop we own (a "foreign" loop for lws), see ops_server.h.
 *
 * Threads and ownership:
 *  - the loop thread runs uv_run() on s->loop. Every lws call and every
 *    field marked "loop" below is touched only there (lws is built with
 *    LWS_MAX_SMP=1 and is not thread-safe).
 *  - worker threads run on_frame/on_close. A session is in the run queue or
 *    being run by at most one worker (in_run), which gives per-session order.
 *  - any thread may call kaa__ops_send/close/set_established: they find the
 *    session in the id table (tab_mu), append to its send queue (its mu),
 *    and put it on the pending list (pend_mu) that the loop drains when the
 *    uv_async_t fires.
 * Locks (tab_mu, a session's mu, pool_mu, pend_mu) are leaves: never two
 * held at once. No handler and no lws call that may call back runs under
 * them (lws_rx_flow_control under pool_mu only flips poll flags).
 *
 * A session holds references: the id table (dropped when the socket closes,
 * on the loop), the worker pipeline (dropped after on_close), the pending
 * list and callers of kaa__ops_send while they use it. It is freed on the
 * loop thread when the last one goes (another thread that drops the last one
 * hands it to the loop through the free list).
 *
 * Timers: no lws timer per session. One uv timer sweeps the live list and
 * compares last-seen and open timestamps (uv_now, loop cached time).
 */
#include "operations/ops_server.h"

#include "base/alloc.h"
#include "proto/endpoint_codec.h"
#include "proto/hello_proof.h"
#include "base/error.h"
#include "base/log.h"
#include "base/lws_log.h"

#include <libwebsockets.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define MOD "ops"

/* Decoded frames waiting for a worker, per session: beyond these the loop
 * stops reading that socket until the worker catches up (flow control). */
#define INBOX_MAX_BYTES (256 * 1024)
#define INBOX_MAX_FRAMES 256
/* Frames written per WRITEABLE callback at most. */
#define WRITE_BURST 32
/* A session asked to close gets this long to flush and say goodbye. */
#define CLOSE_GRACE_MS 2000
/* kaa__ops_server_free waits this long for sessions to close cleanly. */
#define STOP_GRACE_MS 1000

/* lws's private write type for a close frame (roles/ws private header). */
#define OPS_LWS_WRITE_CLOSE 4

#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_POLICY 1008
#define WS_CLOSE_TOO_BIG 1009

struct out_msg {
	struct out_msg *next;
	size_t len;
	uint8_t data[]; /* LWS_PRE headroom, then len bytes */
};

struct in_msg {
	struct in_msg *next;
	Kaa__Endpoint__V1__Frame *f;
	size_t bytes;
};

struct ops_session {
	kaa__ops_server *srv;
	kaa__session_id id;
	atomic_int refs;
	atomic_bool established;
	struct ops_session *hnext; /* tab_mu: id table chain */

	/* loop */
	struct lws *wsi; /* NULL once the socket closed */
	struct ops_session *lprev, *lnext;
	uint64_t opened_ms, last_seen_ms, close_req_ms;
	uint8_t *rx;       /* reassembly of a message spread over several reads */
	uint8_t *cert_key; /* mTLS: SHA-256 of the client certificate's public key */
	size_t rx_len;
	bool rx_skip;   /* discarding the rest of a refused message */
	bool rx_paused; /* lws_rx_flow_control(wsi, 0) in force */
	int close_code; /* 0: no close requested */
	const char *close_reason;

	/* mu */
	pthread_mutex_t mu;
	struct out_msg *sq_head, *sq_tail;
	size_t sq_bytes;
	bool gone;      /* closed: sends are refused */
	bool kill;      /* send queue overflowed: drop the connection */
	int user_close; /* kaa__ops_close asked for this close code */

	/* pend_mu */
	bool pending;
	struct ops_session *pnext; /* pending list, or free list once unreferenced */

	/* pool_mu */
	struct in_msg *in_head, *in_tail;
	size_t in_bytes, in_count;
	bool in_run;      /* queued or being run by a worker */
	bool throttled;   /* the loop paused reading because of the inbox */
	bool want_resume; /* worker drained the inbox: loop may read again */
	bool closed;      /* socket closed: deliver on_close after the inbox */
	bool close_done;  /* on_close was called */
	struct ops_session *rnext;
};

struct kaa__ops_server {
	kaa__ops_handlers h;
	int workers_n, max_sessions, rx_buffer, idle_ms, hello_ms;
	bool (*ready)(void *ud);
	void *ready_ud;
	kaa__metrics *metrics;
	char *bind_host, *tls_cert, *tls_key, *client_ca;

	struct lws_context *ctx;
	struct lws_protocols protocols[4];
	uint8_t proof_secret[KAA__PROOF_SECRET_BYTES]; /* random, for session nonces */
	int port;

	uv_loop_t loop;
	uv_async_t wake;
	uv_timer_t sweep, stop_timer;
	uint64_t sweep_ms;
	pthread_t loop_thread;
	bool loop_started;
	pthread_t *workers;
	int workers_started;

	atomic_bool accepting;
	atomic_bool stopping;
	atomic_size_t nsessions;
	int stop_phase;           /* loop: 0 running, 1 closing sessions, 2 destroying */
	int admitted;             /* loop: sessions + handshakes in progress */
	int hs_marker;            /* its address tags a counted handshake (opaque data) */
	struct ops_session *live; /* loop */

	pthread_mutex_t tab_mu;
	struct ops_session **buckets;
	size_t nbuckets;

	pthread_mutex_t pend_mu;
	struct ops_session *pend_head, *pend_tail, *free_list;
	bool wake_ok; /* the async handle may be signalled */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	int idle;          /* workers waiting on pool_cv */
	int wakes_pending; /* signals sent that no worker has consumed yet */
	struct ops_session *rq_head, *rq_tail;
	bool pool_stop;

	kaa__gauge *m_sessions;
	kaa__counter *m_rx, *m_tx, *m_err, *m_refused, *m_overflow;
};

/* ---- sessions: table, references ------------------------------------- */

/* Session ids are unique in the process, across servers. */
static atomic_uint_fast64_t next_session_id;

static bool on_loop(const kaa__ops_server *s)
{
	return s->loop_started && pthread_equal(pthread_self(), s->loop_thread);
}

static void out_free_all(struct out_msg *m)
{
	while (m) {
		struct out_msg *n = m->next;
		free(m);
		m = n;
	}
}

static void sess_free(struct ops_session *ss)
{
	struct in_msg *im = ss->in_head;

	while (im) {
		struct in_msg *n = im->next;
		kaa__frame_free(im->f);
		free(im);
		im = n;
	}
	out_free_all(ss->sq_head);
	free(ss->rx);
	free(ss->cert_key);
	pthread_mutex_destroy(&ss->mu);
	free(ss);
}

static void sess_unref(kaa__ops_server *s, struct ops_session *ss)
{
	bool wake;

	if (atomic_fetch_sub(&ss->refs, 1) != 1)
		return;
	if (on_loop(s)) {
		sess_free(ss);
		return;
	}
	pthread_mutex_lock(&s->pend_mu);
	ss->pnext = s->free_list;
	s->free_list = ss;
	wake = s->wake_ok;
	pthread_mutex_unlock(&s->pend_mu);
	if (wake)
		uv_async_send(&s->wake);
}

static size_t bucket_of(const kaa__ops_server *s, kaa__session_id id)
{
	return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 20) & (s->nbuckets - 1);
}

/* A referenced session, or NULL. */
static struct ops_session *sess_get(kaa__ops_server *s, kaa__session_id id)
{
	struct ops_session *ss;

	pthread_mutex_lock(&s->tab_mu);
	for (ss = s->buckets[bucket_of(s, id)]; ss; ss = ss->hnext)
		if (ss->id == id)
			break;
	if (ss)
		atomic_fetch_add(&ss->refs, 1);
	pthread_mutex_unlock(&s->tab_mu);
	return ss;
}

static void tab_remove(kaa__ops_server *s, struct ops_session *ss)
{
	struct ops_session **pp;

	pthread_mutex_lock(&s->tab_mu);
	for (pp = &s->buckets[bucket_of(s, ss->id)]; *pp; pp = &(*pp)->hnext)
		if (*pp == ss) {
			*pp = ss->hnext;
			break;
		}
	pthread_mutex_unlock(&s->tab_mu);
}

/* Asks the loop to look at the session (send queue, close, flow control). */
static void sess_schedule(kaa__ops_server *s, struct ops_session *ss)
{
	bool wake = false;

	pthread_mutex_lock(&s->pend_mu);
	if (!ss->pending && s->wake_ok) {
		ss->pending = true;
		atomic_fetch_add(&ss->refs, 1);
		ss->pnext = NULL;
		if (s->pend_tail)
			s->pend_tail->pnext = ss;
		else
			s->pend_head = ss;
		s->pend_tail = ss;
		wake = true;
	}
	pthread_mutex_unlock(&s->pend_mu);
	if (wake)
		uv_async_send(&s->wake);
}

/* pool_mu held. */
static void run_enqueue_locked(kaa__ops_server *s, struct ops_session *ss)
{
	if (ss->in_run)
		return;
	ss->in_run = true;
	ss->rnext = NULL;
	if (s->rq_tail)
		s->rq_tail->rnext = ss;
	else
		s->rq_head = ss;
	s->rq_tail = ss;
	/* Wake an idle worker only when none is already on its way: busy
	 * workers drain the queue anyway, and waking every worker for a busy
	 * queue costs more in context switches than it gains (measured: a
	 * third of the throughput with 4 workers on 2 cores). */
	if (s->idle > 0 && s->wakes_pending == 0) {
		s->wakes_pending++;
		pthread_cond_signal(&s->pool_cv);
	}
}

/* ---- send queue --------------------------------------------------------- */

/* Packs f behind LWS_PRE bytes of headroom. */
static int encode_msg(const Kaa__Endpoint__V1__Frame *f, struct out_msg **out)
{
	struct out_msg *m;
	size_t n;

	*out = NULL;
	if (!protobuf_c_message_check(&f->base))
		return KAA_ERR_INVAL;
	n = kaa__endpoint__v1__frame__get_packed_size(f);
	if (n > SIZE_MAX - sizeof(*m) - LWS_PRE - 1)
		return KAA_ERR_TOO_BIG;
	m = kaa__xmalloc(sizeof(*m) + LWS_PRE + n + 1);
	m->next = NULL;
	m->len = n;
	if (kaa__endpoint__v1__frame__pack(f, m->data + LWS_PRE) != n) {
		free(m);
		return KAA_ERR_INTERNAL;
	}
	*out = m;
	return KAA_OK;
}

/* Appends m (taken) to the session's queue. force skips the size bound (the
 * transport's own short error frames). */
static int sq_push(kaa__ops_server *s, struct ops_session *ss, struct out_msg *m, bool force)
{
	bool notify = false;
	int rc = KAA_OK;

	pthread_mutex_lock(&ss->mu);
	if (ss->gone) {
		rc = KAA_ERR_NOTFOUND;
	} else if (ss->kill) {
		rc = KAA_ERR_TOO_BIG;
	} else if (!force && ss->sq_bytes + m->len > KAA_OPS_SENDQ_MAX) {
		ss->kill = true;
		notify = true;
		rc = KAA_ERR_TOO_BIG;
	} else {
		notify = !ss->sq_head;
		if (ss->sq_tail)
			ss->sq_tail->next = m;
		else
			ss->sq_head = m;
		ss->sq_tail = m;
		ss->sq_bytes += m->len;
		m = NULL;
	}
	pthread_mutex_unlock(&ss->mu);
	free(m);
	if (rc == KAA_ERR_TOO_BIG && notify) {
		kaa__counter_inc(s->m_overflow);
		KAA_WARN(MOD, "send_queue_overflow sid=%llu limit=%d", (unsigned long long)ss->id,
			 KAA_OPS_SENDQ_MAX);
	}
	if (notify)
		sess_schedule(s, ss);
	return rc;
}

/* The SHA-256 of the DER public key of the client certificate that the
 * handshake verified; without one (cannot happen: the handshake required
 * it) the session keeps none and registration refuses it. */
static void keep_cert_key(struct ops_session *ss, struct lws *wsi)
{
	SSL *ssl = lws_get_ssl(wsi);
	X509 *x = ssl ? SSL_get1_peer_certificate(ssl) : NULL;
	EVP_PKEY *pk = x ? X509_get0_pubkey(x) : NULL;
	unsigned char *der = NULL;
	int n = pk ? i2d_PUBKEY(pk, &der) : -1;
	if (n > 0) {
		ss->cert_key = kaa__xmalloc(SHA256_DIGEST_LENGTH);
		SHA256(der, (size_t)n, ss->cert_key);
	}
	OPENSSL_free(der);
	X509_free(x);
}

int kaa__ops_server_client_key(kaa__ops_server *s, kaa__session_id sid, uint8_t out[32])
{
	struct ops_session *ss = sess_get(s, sid);
	int rc = KAA_ERR_NOTFOUND;
	if (!ss)
		return rc;
	if (ss->cert_key) {
		memcpy(out, ss->cert_key, SHA256_DIGEST_LENGTH);
		rc = KAA_OK;
	}
	sess_unref(s, ss);
	return rc;
}

int kaa__ops_server_nonce(kaa__ops_server *s, kaa__session_id sid, uint8_t out[32])
{
	return kaa__proof_nonce(s->proof_secret, sid, out);
}

/* The kaa.v2 session's first frame. A failure leaves the session without
 * a Challenge: its device then cannot prove possession and is refused at
 * Hello where a proof is required, which is the safe side. */
static void send_challenge(kaa__ops_server *s, struct ops_session *ss)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Challenge c = KAA__ENDPOINT__V1__CHALLENGE__INIT;
	uint8_t nonce[KAA__PROOF_NONCE_BYTES];
	struct out_msg *m;
	if (kaa__proof_nonce(s->proof_secret, ss->id, nonce) != KAA_OK)
		return;
	c.nonce.data = nonce;
	c.nonce.len = sizeof(nonce);
	f.protocol_version = KAA__PROTOCOL_VERSION;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_CHALLENGE;
	f.challenge = &c;
	if (encode_msg(&f, &m) == KAA_OK)
		sq_push(s, ss, m, true);
}

int kaa__ops_send(kaa__ops_server *s, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *f)
{
	struct ops_session *ss;
	struct out_msg *m;
	int rc;

	if (!s || !f || !sid)
		return KAA_ERR_INVAL;
	rc = encode_msg(f, &m);
	if (rc != KAA_OK)
		return rc;
	ss = sess_get(s, sid);
	if (!ss) {
		free(m);
		return KAA_ERR_NOTFOUND;
	}
	rc = sq_push(s, ss, m, false);
	sess_unref(s, ss);
	return rc;
}

int kaa__ops_close_code(kaa__ops_server *s, kaa__session_id sid, int ws_code)
{
	struct ops_session *ss;
	int rc = KAA_OK;

	if (!s || !sid || ws_code < 1000 || ws_code > 4999)
		return KAA_ERR_INVAL;
	ss = sess_get(s, sid);
	if (!ss)
		return KAA_ERR_NOTFOUND;
	pthread_mutex_lock(&ss->mu);
	if (ss->gone)
		rc = KAA_ERR_NOTFOUND;
	else if (!ss->user_close)
		ss->user_close = ws_code;
	pthread_mutex_unlock(&ss->mu);
	if (rc == KAA_OK)
		sess_schedule(s, ss);
	sess_unref(s, ss);
	return rc;
}

int kaa__ops_close(kaa__ops_server *s, kaa__session_id sid)
{
	return kaa__ops_close_code(s, sid, WS_CLOSE_NORMAL);
}

void kaa__ops_session_set_established(kaa__ops_server *s, kaa__session_id sid)
{
	struct ops_session *ss;

	if (!s || !sid)
		return;
	ss = sess_get(s, sid);
	if (!ss)
		return;
	atomic_store(&ss->established, true);
	sess_unref(s, ss);
}

/* ---- loop side ------------------------------------------------------------ */

/* loop: graceful close once the queue is flushed. */
static void request_close(kaa__ops_server *s, struct ops_session *ss, int code, const char *why)
{
	if (!ss->wsi || ss->close_code)
		return;
	ss->close_code = code;
	ss->close_reason = why;
	ss->close_req_ms = uv_now(&s->loop);
	lws_callback_on_writable(ss->wsi);
}

/* loop: queue an Error frame answering e. */
static void send_error(kaa__ops_server *s, struct ops_session *ss, const kaa__frame_error *e,
		       bool fatal)
{
	Kaa__Endpoint__V1__Frame f;
	Kaa__Endpoint__V1__Error body;
	struct out_msg *m;

	kaa__counter_inc(s->m_err);
	kaa__frame_error_to_frame(e, &f, &body);
	body.fatal = fatal;
	if (encode_msg(&f, &m) != KAA_OK)
		return;
	sq_push(s, ss, m, true);
}

static void deliver(kaa__ops_server *s, struct ops_session *ss, const uint8_t *buf, size_t len)
{
	Kaa__Endpoint__V1__Frame *f = NULL;
	kaa__frame_error e;
	struct in_msg *im;

	if (kaa__frame_decode(buf, len, NULL, &f, &e) != KAA_OK) {
		KAA_DEBUG(MOD, "bad_frame sid=%llu err=%s", (unsigned long long)ss->id,
			  kaa_strerror(e.err));
		send_error(s, ss, &e, false);
		return;
	}
	kaa__counter_inc(s->m_rx);
	im = kaa__xmalloc(sizeof(*im));
	im->next = NULL;
	im->f = f;
	im->bytes = len;
	pthread_mutex_lock(&s->pool_mu);
	if (ss->in_tail)
		ss->in_tail->next = im;
	else
		ss->in_head = im;
	ss->in_tail = im;
	ss->in_bytes += len;
	ss->in_count++;
	if (ss->in_bytes > INBOX_MAX_BYTES || ss->in_count > INBOX_MAX_FRAMES) {
		ss->throttled = true;
		if (!ss->rx_paused) {
			ss->rx_paused = true;
			lws_rx_flow_control(ss->wsi, 0);
		}
	}
	run_enqueue_locked(s, ss);
	pthread_mutex_unlock(&s->pool_mu);
}

static void on_receive(kaa__ops_server *s, struct ops_session *ss, struct lws *wsi,
		       const uint8_t *in, size_t len)
{
	size_t max = kaa__frame_limits_default.max_frame_bytes;
	bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
	size_t remaining = lws_remaining_packet_payload(wsi);
	kaa__frame_error e;

	ss->last_seen_ms = uv_now(&s->loop);
	if (first) {
		ss->rx_skip = false;
		ss->rx_len = 0;
		if (!lws_frame_is_binary(wsi)) {
			kaa__frame_error_set(&e, KAA_ERR_PROTOCOL,
					     KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME, 0,
					     "frame",
					     "text messages are not allowed: send binary frames");
			send_error(s, ss, &e, false);
			ss->rx_skip = true;
		}
	}
	if (ss->rx_skip || ss->close_code)
		goto out;
	if (ss->rx_len + len + remaining > max) {
		kaa__frame_error_set(&e, KAA_ERR_TOO_BIG,
				     KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_TOO_BIG, 0, "frame",
				     "message larger than %zu bytes", max);
		send_error(s, ss, &e, true);
		ss->rx_skip = true;
		free(ss->rx);
		ss->rx = NULL;
		ss->rx_len = 0;
		if (!ss->rx_paused) {
			ss->rx_paused = true;
			lws_rx_flow_control(wsi, 0);
		}
		request_close(s, ss, WS_CLOSE_TOO_BIG, "frame too big");
		return;
	}
	if (first && final) {
		deliver(s, ss, in, len);
		return;
	}
	if (!ss->rx)
		ss->rx = kaa__xmalloc(max);
	memcpy(ss->rx + ss->rx_len, in, len);
	ss->rx_len += len;
	if (!final)
		return;
	deliver(s, ss, ss->rx, ss->rx_len);
out:
	if (final) {
		free(ss->rx);
		ss->rx = NULL;
		ss->rx_len = 0;
		ss->rx_skip = false;
	}
}

/* loop: one queued frame per WRITEABLE; then the close, if asked. */
static int on_writeable(kaa__ops_server *s, struct ops_session *ss, struct lws *wsi)
{
	int user_close, burst = 0;
	struct out_msg *m;
	bool more;

	/* Several queued frames per WRITEABLE while the socket takes them
	 * (lws_send_pipe_choked between writes, as lws requires): one loop
	 * round per frame would halve the throughput of chatty sessions. */
	do {
		pthread_mutex_lock(&ss->mu);
		m = ss->sq_head;
		if (m) {
			ss->sq_head = m->next;
			if (!ss->sq_head)
				ss->sq_tail = NULL;
			ss->sq_bytes -= m->len;
		}
		more = ss->sq_head != NULL;
		user_close = ss->user_close;
		pthread_mutex_unlock(&ss->mu);

		if (user_close && !ss->close_code)
			request_close(s, ss, user_close, "closed by server");
		if (!m)
			break;
		{
			int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_BINARY);

			free(m);
			if (n < 0)
				return -1;
		}
		kaa__counter_inc(s->m_tx);
		burst++;
	} while (more && burst < WRITE_BURST && !lws_send_pipe_choked(wsi));
	if (burst) {
		if (more || ss->close_code)
			lws_callback_on_writable(wsi);
		return 0;
	}
	if (ss->close_code) {
		/* We write the close frame ourselves and drop the connection:
		 * Debian's lws 4.1.6 is a _DEBUG build whose libuv path closes
		 * a wsi a second time at once ("uv repeat test"), which kills
		 * the connection before lws's own close frame is sent. */
		uint8_t cf[LWS_PRE + 125];
		const char *r = ss->close_reason ? ss->close_reason : "";
		size_t rl = strlen(r) > 123 ? 123 : strlen(r);

		cf[LWS_PRE] = (uint8_t)(ss->close_code >> 8);
		cf[LWS_PRE + 1] = (uint8_t)ss->close_code;
		memcpy(cf + LWS_PRE + 2, r, rl);
		lws_write(wsi, cf + LWS_PRE, 2 + rl, (enum lws_write_protocol)OPS_LWS_WRITE_CLOSE);
		return -1;
	}
	return 0;
}

static void live_unlink(kaa__ops_server *s, struct ops_session *ss)
{
	if (ss->lprev)
		ss->lprev->lnext = ss->lnext;
	else
		s->live = ss->lnext;
	if (ss->lnext)
		ss->lnext->lprev = ss->lprev;
	ss->lprev = ss->lnext = NULL;
}

static void on_stop_timer(uv_timer_t *t);

/* loop: the socket is closed (idempotent). */
static void sess_detach(kaa__ops_server *s, struct ops_session *ss)
{
	struct out_msg *q;

	if (!ss->wsi)
		return;
	lws_set_opaque_user_data(ss->wsi, NULL);
	ss->wsi = NULL;
	live_unlink(s, ss);
	s->admitted--;
	atomic_fetch_sub(&s->nsessions, 1);
	kaa__gauge_add(s->m_sessions, -1);
	free(ss->rx);
	ss->rx = NULL;
	tab_remove(s, ss);

	pthread_mutex_lock(&ss->mu);
	ss->gone = true;
	q = ss->sq_head;
	ss->sq_head = ss->sq_tail = NULL;
	ss->sq_bytes = 0;
	pthread_mutex_unlock(&ss->mu);
	out_free_all(q);

	pthread_mutex_lock(&s->pool_mu);
	ss->closed = true;
	run_enqueue_locked(s, ss);
	pthread_mutex_unlock(&s->pool_mu);
	KAA_DEBUG(MOD, "session_closed sid=%llu", (unsigned long long)ss->id);
	sess_unref(s, ss); /* the table's */

	if (s->stop_phase == 1 && !s->live)
		uv_timer_start(&s->stop_timer, on_stop_timer, 0, 0);
}

static struct ops_session *sess_new(kaa__ops_server *s, struct lws *wsi)
{
	struct ops_session *ss = kaa__xcalloc(1, sizeof(*ss));
	size_t b;

	ss->srv = s;
	atomic_init(&ss->refs, 2); /* the table and the worker pipeline */
	atomic_init(&ss->established, false);
	pthread_mutex_init(&ss->mu, NULL);
	ss->wsi = wsi;
	ss->opened_ms = ss->last_seen_ms = uv_now(&s->loop);
	ss->id = atomic_fetch_add(&next_session_id, 1) + 1;
	pthread_mutex_lock(&s->tab_mu);
	b = bucket_of(s, ss->id);
	ss->hnext = s->buckets[b];
	s->buckets[b] = ss;
	pthread_mutex_unlock(&s->tab_mu);
	ss->lnext = s->live;
	if (s->live)
		s->live->lprev = ss;
	s->live = ss;
	atomic_fetch_add(&s->nsessions, 1);
	kaa__gauge_add(s->m_sessions, 1);
	lws_set_opaque_user_data(wsi, ss);
	return ss;
}

/* ---- HTTP on the same port ------------------------------------------------- */

static int http_reply(struct lws *wsi, unsigned status, const char *ctype, const char *body,
		      size_t len)
{
	uint8_t hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
				    *end = hdr + sizeof(hdr) - 1;
	uint8_t *buf;
	int n;

	if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	buf = kaa__xmalloc(LWS_PRE + len + 1);
	memcpy(buf + LWS_PRE, body, len);
	n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
	free(buf);
	return n < 0 ? -1 : 0;
}

static int http_json(struct lws *wsi, unsigned status, const char *json)
{
	return http_reply(wsi, status, "application/json", json, strlen(json));
}

static int on_http(kaa__ops_server *s, struct lws *wsi, const char *path)
{
	int rc;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
		/* and close: a request body we will not read may follow */
		http_json(wsi, 405, "{\"error\":\"method not allowed\"}");
		return -1;
	}
	if (!strcmp(path, "/healthz")) {
		rc = http_json(wsi, 200, "{\"status\":\"ok\"}");
	} else if (!strcmp(path, "/readyz")) {
		bool ok = atomic_load(&s->accepting) && (!s->ready || s->ready(s->ready_ud));

		rc = ok ? http_json(wsi, 200, "{\"status\":\"ready\"}")
			: http_json(wsi, 503, "{\"status\":\"not ready\"}");
	} else if (!strcmp(path, "/metrics")) {
		char *text = NULL;
		size_t len = 0;

		if (s->metrics)
			kaa__metrics_render(s->metrics, &text, &len);
		rc = http_reply(wsi, 200, "text/plain; version=0.0.4; charset=utf-8",
				text ? text : "", len);
		free(text);
	} else {
		rc = http_json(wsi, 404, "{\"error\":\"not found\"}");
	}
	if (rc)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static bool offers_kaa(struct lws *wsi)
{
	char buf[256], *save = NULL, *tok;
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL);

	if (n <= 0 || n >= (int)sizeof(buf) ||
	    lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_PROTOCOL) < 0)
		return false;
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save))
		if (!strcmp(tok, KAA__PROTOCOL_SUBPROTOCOL) ||
		    !strcmp(tok, KAA__PROTOCOL_SUBPROTOCOL_V2))
			return true;
	return false;
}

/* loop: returns 0 to allow the upgrade, 1 after answering it ourselves. */
static int on_confirm_upgrade(kaa__ops_server *s, struct lws *wsi, const char *up)
{
	if (!up || strcasecmp(up, "websocket"))
		return http_json(wsi, 400, "{\"error\":\"only WebSocket upgrades are served\"}")
			       ? -1
			       : 1;
	if (!offers_kaa(wsi))
		return http_json(
			       wsi, 400,
			       "{\"error\":\"the WebSocket subprotocol kaa.v2 or kaa.v1 is required "
			       "(Sec-WebSocket-Protocol: kaa.v2, kaa.v1)\"}")
			       ? -1
			       : 1;
	if (lws_get_opaque_user_data(wsi) == &s->hs_marker)
		return 0;
	if (!atomic_load(&s->accepting) || s->stop_phase) {
		kaa__counter_inc(s->m_refused);
		return http_json(wsi, 503, "{\"error\":\"node is draining, use another node\"}")
			       ? -1
			       : 1;
	}
	if (s->admitted >= s->max_sessions) {
		kaa__counter_inc(s->m_refused);
		KAA_DEBUG(MOD, "session_refused reason=full sessions=%d", s->admitted);
		return http_json(wsi, 503, "{\"error\":\"node is full, try another node later\"}")
			       ? -1
			       : 1;
	}
	s->admitted++;
	lws_set_opaque_user_data(wsi, &s->hs_marker);
	return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct lws_context *ctx;
	kaa__ops_server *s;
	void *op;
	struct ops_session *ss;

	(void)user;
	if (!wsi)
		return 0;
	ctx = lws_get_context(wsi);
	s = ctx ? lws_context_user(ctx) : NULL;
	if (!s)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_HTTP: return on_http(s, wsi, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return on_confirm_upgrade(s, wsi, in);
	case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION:
		/* lws asks us with OpenSSL's verdict in len (preverify_ok) and
		 * accepts whatever 0 we return: a certificate that did not
		 * verify against --client-ca must fail the handshake */
		return len ? 0 : 1;
	case LWS_CALLBACK_ESTABLISHED:
		if (lws_get_opaque_user_data(wsi) != &s->hs_marker)
			return -1; /* not admitted by us (cannot happen) */
		ss = sess_new(s, wsi);
		if (s->client_ca)
			keep_cert_key(ss, wsi);
		/* lws may copy the protocol table: compare names */
		if (lws_get_protocol(wsi) &&
		    !strcmp(lws_get_protocol(wsi)->name, KAA__PROTOCOL_SUBPROTOCOL_V2))
			send_challenge(s, ss);
		return 0;
	case LWS_CALLBACK_RECEIVE:
		ss = lws_get_opaque_user_data(wsi);
		if (!ss || (void *)ss == &s->hs_marker)
			return -1;
		on_receive(s, ss, wsi, in, len);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		ss = lws_get_opaque_user_data(wsi);
		if (!ss || (void *)ss == &s->hs_marker)
			return 0;
		return on_writeable(s, ss, wsi);
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_WSI_DESTROY:
		op = lws_get_opaque_user_data(wsi);
		if (op == &s->hs_marker) {
			s->admitted--;
			lws_set_opaque_user_data(wsi, NULL);
		} else if (op) {
			sess_detach(s, op);
		}
		return 0;
	default: return 0;
	}
}

/* ---- loop callbacks ------------------------------------------------------- */

static void pending_process(kaa__ops_server *s, struct ops_session *ss)
{
	bool has_out, kill, resume;
	int user_close;

	if (!ss->wsi)
		return;
	pthread_mutex_lock(&ss->mu);
	has_out = ss->sq_head != NULL;
	kill = ss->kill;
	user_close = ss->user_close;
	pthread_mutex_unlock(&ss->mu);
	if (kill) {
		/* A reader that let 256 KiB pile up will not read a close frame. */
		lws_set_timeout(ss->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
		return;
	}
	pthread_mutex_lock(&s->pool_mu);
	resume = ss->want_resume;
	ss->want_resume = false;
	pthread_mutex_unlock(&s->pool_mu);
	if (resume && ss->rx_paused && !ss->close_code) {
		ss->rx_paused = false;
		lws_rx_flow_control(ss->wsi, 1);
	}
	if (user_close)
		request_close(s, ss, user_close, "closed by server");
	if (has_out)
		lws_callback_on_writable(ss->wsi);
}

static void begin_stop(kaa__ops_server *s);

static void on_wake(uv_async_t *a)
{
	kaa__ops_server *s = a->data;
	struct ops_session *p, *fl;

	pthread_mutex_lock(&s->pend_mu);
	p = s->pend_head;
	s->pend_head = s->pend_tail = NULL;
	fl = s->free_list;
	s->free_list = NULL;
	pthread_mutex_unlock(&s->pend_mu);
	while (p) {
		/* Read pnext and clear pending in one critical section: once
		 * pending is false another thread may schedule the session
		 * again, which rewrites pnext (clearing every pending flag up
		 * front let a re-scheduled session's new list be walked here,
		 * dropping a reference the new list still counted on: a
		 * use-after-free under redirect storms). */
		pthread_mutex_lock(&s->pend_mu);
		struct ops_session *n = p->pnext;
		p->pending = false;
		pthread_mutex_unlock(&s->pend_mu);

		pending_process(s, p);
		sess_unref(s, p);
		p = n;
	}
	while (fl) {
		struct ops_session *n = fl->pnext;

		sess_free(fl);
		fl = n;
	}
	if (atomic_load(&s->stopping) && s->stop_phase == 0)
		begin_stop(s);
}

static void on_sweep(uv_timer_t *t)
{
	kaa__ops_server *s = t->data;
	uint64_t now = uv_now(&s->loop);
	struct ops_session *ss = s->live, *n;

	for (; ss; ss = n) {
		n = ss->lnext;
		if (ss->close_code) {
			if (now - ss->close_req_ms > CLOSE_GRACE_MS)
				lws_set_timeout(ss->wsi, PENDING_TIMEOUT_CLOSE_SEND,
						LWS_TO_KILL_SYNC);
		} else if (!atomic_load(&ss->established) &&
			   now - ss->opened_ms > (uint64_t)s->hello_ms) {
			request_close(s, ss, WS_CLOSE_POLICY, "hello timeout");
		} else if (now - ss->last_seen_ms > (uint64_t)s->idle_ms) {
			request_close(s, ss, WS_CLOSE_NORMAL, "idle timeout");
		}
	}
}

static void on_handle_closed(uv_handle_t *h)
{
	(void)h;
}

/* Phase 2: every session closed or the grace passed: tear lws down. */
static void on_stop_timer(uv_timer_t *t)
{
	kaa__ops_server *s = t->data;

	if (s->stop_phase != 1)
		return;
	s->stop_phase = 2;
	pthread_mutex_lock(&s->pend_mu);
	s->wake_ok = false;
	pthread_mutex_unlock(&s->pend_mu);
	/* Closes every remaining wsi (CLOSED for each) and starts closing lws's
	 * uv handles; the second lws_context_destroy after uv_run frees it. */
	lws_context_destroy(s->ctx);
	uv_close((uv_handle_t *)&s->wake, on_handle_closed);
	uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
	uv_close((uv_handle_t *)&s->stop_timer, on_handle_closed);
}

static void begin_stop(kaa__ops_server *s)
{
	struct ops_session *ss, *n;

	s->stop_phase = 1;
	atomic_store(&s->accepting, false);
	for (ss = s->live; ss; ss = n) {
		n = ss->lnext;
		request_close(s, ss, WS_CLOSE_GOING_AWAY, "server shutting down");
	}
	uv_timer_start(&s->stop_timer, on_stop_timer, s->live ? STOP_GRACE_MS : 0, 0);
}

static void *loop_main(void *arg)
{
	kaa__ops_server *s = arg;

	uv_run(&s->loop, UV_RUN_DEFAULT);
	/* lws's handles are closed: finish its destruction. */
	if (s->ctx)
		lws_context_destroy(s->ctx);
	s->ctx = NULL;
	uv_run(&s->loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&s->loop))
		KAA_WARN(MOD, "uv_loop_close_busy reason=\"handles left open\"");
	return NULL;
}

/* ---- workers -------------------------------------------------------------- */

static void *worker_main(void *arg)
{
	kaa__ops_server *s = arg;

	pthread_mutex_lock(&s->pool_mu);
	for (;;) {
		struct ops_session *ss = s->rq_head;
		struct in_msg *batch;
		bool resume = false, do_close = false;

		if (!ss) {
			if (s->pool_stop)
				break;
			s->idle++;
			pthread_cond_wait(&s->pool_cv, &s->pool_mu);
			s->idle--;
			if (s->wakes_pending)
				s->wakes_pending--;
			continue;
		}
		s->rq_head = ss->rnext;
		if (!s->rq_head)
			s->rq_tail = NULL;
		else if (s->idle > 0 && s->wakes_pending == 0) {
			/* more waiting: pass the baton, this handler may block */
			s->wakes_pending++;
			pthread_cond_signal(&s->pool_cv);
		}
		batch = ss->in_head;
		ss->in_head = ss->in_tail = NULL;
		ss->in_bytes = ss->in_count = 0;
		if (ss->throttled) {
			ss->throttled = false;
			ss->want_resume = true;
			resume = true;
		}
		if (!batch && ss->closed && !ss->close_done) {
			ss->close_done = true;
			do_close = true;
		}
		pthread_mutex_unlock(&s->pool_mu);

		if (resume && !do_close)
			sess_schedule(s, ss);
		while (batch) {
			struct in_msg *n = batch->next;

			if (s->h.on_frame)
				s->h.on_frame(s->h.ud, ss->id, batch->f);
			kaa__frame_free(batch->f);
			free(batch);
			batch = n;
		}
		if (do_close && s->h.on_close)
			s->h.on_close(s->h.ud, ss->id);

		pthread_mutex_lock(&s->pool_mu);
		ss->in_run = false;
		if (do_close) {
			pthread_mutex_unlock(&s->pool_mu);
			sess_unref(s, ss); /* the pipeline's */
			pthread_mutex_lock(&s->pool_mu);
		} else if (ss->in_head || (ss->closed && !ss->close_done)) {
			run_enqueue_locked(s, ss); /* at the tail: others get a turn */
		}
	}
	pthread_mutex_unlock(&s->pool_mu);
	return NULL;
}

/* ---- life cycle ------------------------------------------------------------ */

static int default_max_sessions(void)
{
	struct rlimit rl;
	long n = 1024, a, b;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = (long)rl.rlim_cur;
	else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		n = 1L << 20;
	/* 90% of the limit, and at least 256 descriptors kept for everything
	 * else (stores, etcd, logs), so accept() never fails for lack of one. */
	a = n * 9 / 10;
	b = n - 256;
	n = a < b ? a : b;
	return n < 1 ? 1 : (n > 1000000 ? 1000000 : (int)n);
}

static void stop_threads_and_free(kaa__ops_server *s)
{
	struct ops_session *ss;

	if (s->loop_started) {
		atomic_store(&s->stopping, true);
		pthread_mutex_lock(&s->pend_mu);
		if (s->wake_ok)
			uv_async_send(&s->wake);
		pthread_mutex_unlock(&s->pend_mu);
		/* loop_started stays true: workers still read it (on_loop) */
		pthread_join(s->loop_thread, NULL);
	}
	pthread_mutex_lock(&s->pool_mu);
	s->pool_stop = true;
	pthread_cond_broadcast(&s->pool_cv);
	pthread_mutex_unlock(&s->pool_mu);
	for (int i = 0; i < s->workers_started; i++)
		pthread_join(s->workers[i], NULL);

	/* Single-threaded from here: drop what the loop did not get to. */
	while ((ss = s->pend_head)) {
		s->pend_head = ss->pnext;
		if (atomic_fetch_sub(&ss->refs, 1) == 1)
			sess_free(ss);
	}
	while ((ss = s->free_list)) {
		s->free_list = ss->pnext;
		sess_free(ss);
	}
	if (s->ctx) /* never started: the loop did not run */
		lws_context_destroy(s->ctx);
	free(s->workers);
	free(s->buckets);
	free(s->bind_host);
	free(s->tls_cert);
	free(s->tls_key);
	free(s->client_ca);
	pthread_mutex_destroy(&s->tab_mu);
	pthread_mutex_destroy(&s->pend_mu);
	pthread_mutex_destroy(&s->pool_mu);
	pthread_cond_destroy(&s->pool_cv);
	free(s);
}

int kaa__ops_server_new(const kaa__ops_server_opts *opts, const kaa__ops_handlers *h,
			kaa__ops_server **out)
{
	struct lws_context_creation_info info;
	struct lws_vhost *vh;
	kaa__ops_server *s;
	void *loops[1];
	int rc = KAA_ERR_IO;

	if (out)
		*out = NULL;
	if (!opts || !h || !out || opts->port < 0 || opts->port > 65535 || opts->workers < 0 ||
	    opts->max_sessions < 0 || opts->rx_buffer < 0 || opts->idle_timeout_ms < 0 ||
	    opts->hello_timeout_ms < 0 || (!opts->tls_cert != !opts->tls_key) ||
	    (opts->client_ca && !opts->tls_cert))
		return KAA_ERR_INVAL;
	kaa__lws_log_init();

	s = kaa__xcalloc(1, sizeof(*s));
	s->h = *h;
	if (RAND_bytes(s->proof_secret, sizeof(s->proof_secret)) != 1) {
		/* without a secret nonces would be predictable: refuse to start */
		free(s);
		return KAA_ERR_INTERNAL;
	}
	s->workers_n = opts->workers ? opts->workers : 4;
	if (s->workers_n > 256)
		s->workers_n = 256;
	s->max_sessions = opts->max_sessions ? opts->max_sessions : default_max_sessions();
	s->rx_buffer = opts->rx_buffer ? opts->rx_buffer : 1024;
	if (s->rx_buffer < 128)
		s->rx_buffer = 128;
	if (s->rx_buffer > 65536)
		s->rx_buffer = 65536;
	s->idle_ms = opts->idle_timeout_ms ? opts->idle_timeout_ms : 120000;
	s->hello_ms = opts->hello_timeout_ms ? opts->hello_timeout_ms : 10000;
	s->ready = opts->ready;
	s->ready_ud = opts->ready_ud;
	s->metrics = opts->metrics;
	s->bind_host = opts->bind_host ? kaa__xstrdup(opts->bind_host) : NULL;
	s->tls_cert = opts->tls_cert ? kaa__xstrdup(opts->tls_cert) : NULL;
	s->tls_key = opts->tls_key ? kaa__xstrdup(opts->tls_key) : NULL;
	s->client_ca = opts->client_ca ? kaa__xstrdup(opts->client_ca) : NULL;
	atomic_init(&s->accepting, true);
	atomic_init(&s->stopping, false);
	atomic_init(&s->nsessions, 0);
	pthread_mutex_init(&s->tab_mu, NULL);
	pthread_mutex_init(&s->pend_mu, NULL);
	pthread_mutex_init(&s->pool_mu, NULL);
	pthread_cond_init(&s->pool_cv, NULL);
	for (s->nbuckets = 64; s->nbuckets < (size_t)s->max_sessions && s->nbuckets < (1u << 20);)
		s->nbuckets <<= 1;
	s->buckets = kaa__xcalloc(s->nbuckets, sizeof(*s->buckets));
	s->workers = kaa__xcalloc((size_t)s->workers_n, sizeof(*s->workers));

	if (s->metrics) {
		s->m_sessions = kaa__metrics_gauge(s->metrics, "kaa_ops_sessions",
						   "Open device WebSocket sessions.", NULL);
		s->m_rx = kaa__metrics_counter(s->metrics, "kaa_ops_frames_received_total",
					       "Device frames received and decoded.", NULL);
		s->m_tx = kaa__metrics_counter(s->metrics, "kaa_ops_frames_sent_total",
					       "Frames written to devices.", NULL);
		s->m_err = kaa__metrics_counter(
			s->metrics, "kaa_ops_frame_errors_total",
			"Device frames refused (undecodable, text, too big).", NULL);
		s->m_refused = kaa__metrics_counter(
			s->metrics, "kaa_ops_sessions_refused_total",
			"WebSocket upgrades refused because the node was full or draining.", NULL);
		s->m_overflow = kaa__metrics_counter(
			s->metrics, "kaa_ops_sendq_overflows_total",
			"Sessions closed because their send queue overflowed.", NULL);
	}

	if (uv_loop_init(&s->loop)) {
		free(s->workers);
		free(s->buckets);
		free(s);
		return KAA_ERR_IO;
	}
	uv_async_init(&s->loop, &s->wake, on_wake);
	s->wake.data = s;
	uv_timer_init(&s->loop, &s->sweep);
	s->sweep.data = s;
	uv_timer_init(&s->loop, &s->stop_timer);
	s->stop_timer.data = s;
	s->wake_ok = true;

	s->protocols[0].name = "http";
	s->protocols[0].callback = callback;
	/* kaa.v2 first: a device offering both gets the proof of possession */
	s->protocols[1].name = KAA__PROTOCOL_SUBPROTOCOL_V2;
	s->protocols[1].callback = callback;
	s->protocols[1].rx_buffer_size = (size_t)s->rx_buffer;
	s->protocols[2].name = KAA__PROTOCOL_SUBPROTOCOL;
	s->protocols[2].callback = callback;
	s->protocols[2].rx_buffer_size = (size_t)s->rx_buffer;

	memset(&info, 0, sizeof(info));
	loops[0] = &s->loop;
	info.foreign_loops = loops;
	info.options = LWS_SERVER_OPTION_LIBUV;
	info.port = opts->port;
	info.iface = s->bind_host;
	info.protocols = s->protocols;
	info.user = s;
	info.alpn = "http/1.1"; /* no h2: WebSocket over HTTP/2 is not served */
	info.count_threads = 1;
	if (!s->bind_host) {
		/* All addresses: dual-stack, or IPv4 only where IPv6 is off. */
		int fd6 = socket(AF_INET6, SOCK_STREAM, 0);

		if (fd6 < 0)
			info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
		else
			close(fd6);
	}
	if (s->tls_cert) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = s->tls_cert;
		info.ssl_private_key_filepath = s->tls_key;
		if (s->client_ca) {
			/* mutual TLS: a device without a certificate from this CA
			 * does not complete the handshake */
			info.ssl_ca_filepath = s->client_ca;
			info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
		}
	}
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		KAA_ERROR(MOD, "listen_failed host=%s port=%d tls=%d",
			  s->bind_host ? s->bind_host : "*", opts->port, s->tls_cert != NULL);
		goto fail_loop;
	}
	vh = lws_get_vhost_by_name(s->ctx, "default");
	s->port = vh ? lws_get_vhost_listen_port(vh) : -1;
	if (s->port <= 0) {
		KAA_ERROR(MOD, "listen_failed host=%s port=%d", s->bind_host ? s->bind_host : "*",
			  opts->port);
		goto fail_loop;
	}

	s->sweep_ms = (uint64_t)(s->idle_ms < s->hello_ms ? s->idle_ms : s->hello_ms) / 4;
	if (s->sweep_ms < 10)
		s->sweep_ms = 10;
	if (s->sweep_ms > 1000)
		s->sweep_ms = 1000;
	uv_timer_start(&s->sweep, on_sweep, s->sweep_ms, s->sweep_ms);

	for (; s->workers_started < s->workers_n; s->workers_started++)
		if (pthread_create(&s->workers[s->workers_started], NULL, worker_main, s)) {
			rc = KAA_ERR_NOMEM;
			goto fail_loop;
		}
	if (pthread_create(&s->loop_thread, NULL, loop_main, s)) {
		rc = KAA_ERR_NOMEM;
		goto fail_loop;
	}
	s->loop_started = true;
	KAA_INFO(MOD, "listening port=%d tls=%d max_sessions=%d rx_buffer=%d workers=%d", s->port,
		 s->tls_cert != NULL, s->max_sessions, s->rx_buffer, s->workers_n);
	*out = s;
	return KAA_OK;

fail_loop:
	/* Not running: tear down lws and our handles on this thread. With a
	 * foreign loop, lws 4.1 returns a context whose destruction has already
	 * begun when its vhost failed (no "default" vhost then). */
	if (s->ctx && lws_get_vhost_by_name(s->ctx, "default"))
		lws_context_destroy(s->ctx);
	uv_close((uv_handle_t *)&s->wake, on_handle_closed);
	uv_close((uv_handle_t *)&s->sweep, on_handle_closed);
	uv_close((uv_handle_t *)&s->stop_timer, on_handle_closed);
	uv_run(&s->loop, UV_RUN_DEFAULT);
	if (s->ctx)
		lws_context_destroy(s->ctx);
	s->ctx = NULL;
	uv_run(&s->loop, UV_RUN_NOWAIT);
	uv_loop_close(&s->loop);
	s->wake_ok = false;
	stop_threads_and_free(s);
	return rc;
}

int kaa__ops_server_port(const kaa__ops_server *s)
{
	return s ? s->port : -1;
}

void kaa__ops_server_free(kaa__ops_server *s)
{
	if (!s)
		return;
	stop_threads_and_free(s);
	KAA_INFO(MOD, "stopped");
}

void kaa__ops_server_set_accepting(kaa__ops_server *s, bool accepting)
{
	if (s)
		atomic_store(&s->accepting, accepting);
}

size_t kaa__ops_server_sessions(const kaa__ops_server *s)
{
	return s ? atomic_load(&((kaa__ops_server *)s)->nsessions) : 0;
}
