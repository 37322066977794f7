/*
 * ops_server.h - the operations service's device transport: WebSocket
 * sessions (subprotocol kaa.v1, binary frames, one kaa.endpoint.v1.Frame
 * per frame) on libwebsockets with the libuv event loop, plain ws or wss.
 *
 * The event-loop thread only moves bytes: it decodes frames with
 * lib/endpoint_codec (a bad frame gets an error frame and the session
 * stays consistent), and hands decoded frames to a pool of worker threads
 * where the business logic (storage) runs. Frames of one session are
 * handled one at a time and in order. Outgoing frames are queued per
 * session (bounded: KAA_OPS_SENDQ_MAX bytes; a session whose queue
 * overflows is closed, it is a slow or stuck reader) and written by the
 * loop when the socket is writable.
 *
 * No per-session lws timers: one periodic sweep closes sessions idle for
 * longer than idle_timeout_ms (any received frame counts) and sessions
 * that did not complete hello within hello_timeout_ms. Receive buffer
 * rx_buffer bytes per session (default 1024). Admission is capped at
 * max_sessions (default: 90% of RLIMIT_NOFILE minus reserved descriptors);
 * beyond it the upgrade is refused with HTTP 503 and a JSON message.
 *
 * The same port answers GET /healthz, /readyz and /metrics over HTTP.
 */
#ifndef KAA_OPS_SERVER_H
#define KAA_OPS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.pb-c.h"
#include "base/metrics.h"

#define KAA_OPS_SENDQ_MAX (256 * 1024)

typedef uint64_t kaa__session_id; /* never 0, never reused in a process */

typedef struct kaa__ops_handlers {
	void *ud;
	/* Worker thread. frame is borrowed for the call. Never called again for
	 * a session after on_close. */
	void (*on_frame)(void *ud, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *frame);
	/* Worker thread, after the last on_frame of the session. */
	void (*on_close)(void *ud, kaa__session_id sid);
} kaa__ops_handlers;

typedef struct kaa__ops_server_opts {
	const char *bind_host; /* NULL: all addresses */
	int port;              /* 0: any free port (see kaa__ops_server_port) */
	const char *tls_cert;  /* PEM files; both set: wss, else ws */
	const char *tls_key;
	/* with tls_cert: mutual TLS, devices must present a certificate this
	 * CA file signed (kaa__ops_server_client_key) */
	const char *client_ca;
	int workers;          /* default 4 */
	int max_sessions;     /* 0: derived from RLIMIT_NOFILE */
	int rx_buffer;        /* default 1024 */
	int idle_timeout_ms;  /* default 120000 */
	int hello_timeout_ms; /* default 10000 */
	/* called (any thread) to render readiness: true = 200 */
	bool (*ready)(void *ud);
	void *ready_ud;
	kaa__metrics *metrics; /* borrowed; /metrics renders it; may be NULL */
} kaa__ops_server_opts;

typedef struct kaa__ops_server kaa__ops_server;

/* Binds and starts the loop and worker threads. Errors: KAA_ERR_IO (bind
 * failed: port busy, bad certificate), KAA_ERR_INVAL, KAA_ERR_NOMEM. */
int kaa__ops_server_new(const kaa__ops_server_opts *opts, const kaa__ops_handlers *h,
			kaa__ops_server **out);
int kaa__ops_server_port(const kaa__ops_server *s);
/* Closes every session (on_close is called for each), stops threads,
 * frees. Accepts NULL. */
void kaa__ops_server_free(kaa__ops_server *s);

/* Queues a frame for the session (any thread; the frame is encoded at
 * once and borrowed for the call). KAA_ERR_NOTFOUND: the session is gone;
 * KAA_ERR_TOO_BIG: the send queue overflowed (the session is being
 * closed). */
int kaa__ops_send(kaa__ops_server *s, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *f);
/* Closes the session after its queued frames are written (any thread). */
int kaa__ops_close(kaa__ops_server *s, kaa__session_id sid);
/* Stops accepting new sessions (draining); existing ones stay. */
void kaa__ops_server_set_accepting(kaa__ops_server *s, bool accepting);

/* Counts for the registry record and metrics (any thread). */
size_t kaa__ops_server_sessions(const kaa__ops_server *s);

/*
 * Added by the transport (h4a). Behaviour details of the functions above:
 *  - WebSocket close codes the server sends: 1000 (kaa__ops_close, idle
 *    timeout), 1001 (kaa__ops_server_free: server shutting down), 1008
 *    (hello timeout), 1009 (a message over 64 KiB, after a fatal TOO_BIG
 *    Error frame). A session whose send queue overflowed is dropped without
 *    a close frame (it does not read).
 *  - A text message, or bytes that do not decode, are answered with an Error
 *    frame (not fatal) built from the codec's kaa__frame_error; the session
 *    stays open and on_frame never sees them.
 *  - Subprotocols kaa.v2 (preferred) and kaa.v1: a kaa.v2 session's first
 *    frame is the server's Challenge (request_id 0) with the nonce of
 *    kaa__ops_server_nonce, queued before any frame of the session is read.
 *  - Upgrades offering neither subprotocol get HTTP 400, upgrades beyond
 *    max_sessions (sessions + handshakes in progress) or while not accepting
 *    get HTTP 503, each with a JSON body {"error":"..."}.
 *  - GET /readyz is 503 while not accepting (draining) or while opts.ready
 *    returns false; other methods than GET get 405.
 *  - Per-session inbox: beyond 256 frames or 256 KiB waiting for a worker
 *    the loop stops reading that socket until the worker catches up.
 *  - kaa__ops_server_free must not be called from a handler (it joins the
 *    workers). It waits up to 1 s for sessions to close cleanly.
 *  - Session ids are unique in the process, across servers.
 */

/* Marks the session as having completed hello (any thread; the business
 * logic calls it when it sends HelloAck). Until then the session is closed
 * (WebSocket close 1008 "hello timeout") hello_timeout_ms after it opened.
 * Unknown or closed sessions are ignored. */
void kaa__ops_session_set_established(kaa__ops_server *s, kaa__session_id sid);
/* As kaa__ops_close (which uses 1000) with the WebSocket close code to send,
 * e.g. 1008 after a fatal Error, 1001 when draining. KAA_ERR_INVAL: code
 * outside 1000..4999; KAA_ERR_NOTFOUND: the session is gone. */
int kaa__ops_close_code(kaa__ops_server *s, kaa__session_id sid, int ws_code);
/* mTLS: the SHA-256 of the public key (DER SubjectPublicKeyInfo) of the
 * client certificate session sid presented. Any thread. KAA_OK, or
 * KAA_ERR_NOTFOUND (no such session, or not mTLS). */
int kaa__ops_server_client_key(kaa__ops_server *s, kaa__session_id sid, uint8_t out[32]);

/* The proof-of-possession nonce of session sid (proto/hello_proof.h):
 * HMAC of a per-process random secret and sid, the same value this server
 * sent in the kaa.v2 session's Challenge. Any thread. KAA_OK,
 * KAA_ERR_INTERNAL. */
int kaa__ops_server_nonce(kaa__ops_server *s, kaa__session_id sid, uint8_t out[32]);

#endif
