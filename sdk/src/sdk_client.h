/*
 * sdk_client.h - what the client's files share (not installed): the
 * client object and the calls between sdk_client.c (runtime, connection,
 * frame dispatch, sweep), sdk_owners.c (owner attach/detach and listener
 * requests) and sdk_events.c (events sent and received).
 *
 * Every function here runs with the runtime lock held (the network
 * thread's callbacks and sweep, or an API call between kaa__client_lock
 * and kaa__client_unlock) unless it says otherwise; none prints or aborts.
 */
#ifndef KAA_SDK_CLIENT_H
#define KAA_SDK_CLIENT_H

#include "kaa/kaa.h"

#include "proto/endpoint_codec.h"
#include "sdk_events.h"
#include "sdk_internal.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* frames waiting in a client's send queue before the pumps hold back */
#define KAA__SENDQ_MAX 64

struct lws;
struct kaa__outmsg;
struct kaa__pending_op;
typedef struct kaa__owner_req kaa__owner_req;

struct kaa_client {
	kaa_runtime *rt;
	kaa_client *prev, *next;

	/* options */
	char *token, *dir, *profile, *sdk_profile_id, *ca;
	char *cert; /* client_cert_file: mutual TLS with the key in dir/key.pem */
	char **boot;
	size_t nboot;
	kaa_callbacks cb;
	void *user;
	uint32_t batch_records, flush_ms;
	bool state_no_fsync;
	int32_t keepalive_opt, liveness_opt; /* as given: 0 default, < 0 off */
	uint32_t connect_timeout_ms;

	kaa_client_state state;
	bool started, free_req, detached, stopped_for_good;
	struct lws *wsi;
	uint8_t *pub;
	EVP_PKEY *key;        /* signs the kaa.v2 proof of possession */
	bool await_challenge; /* kaa.v2 session: Hello waits for the Challenge */
	size_t publen;
	kaa__sdk_state st;
	char *config;
	size_t config_len;
	kaa__lq *lq;
	kaa__sdk_backoff bo;
	uint64_t rng;

	kaa__node_addr nodes[KAA__MAX_NODES];
	size_t nnodes, cur;
	unsigned fails_since_boot;
	bool need_boot, redirected;
	int64_t next_attempt_ms, conn_started_ms, last_tx_ms;
	uint64_t next_req, hello_req;
	bool hello_acked, close_now;
	char prev_session[KAA__ID_MAX];

	/* limits from HelloAck */
	uint32_t max_records, max_frame, max_inflight, idle_ms;

	/* liveness of this session: keepalive_ms 0 = no keepalive Ping,
	 * liveness_ms 0 = never declared dead; ka_ping_ms: when the keepalive
	 * Ping went into the send queue, 0 when none is waiting for an answer */
	int64_t keepalive_ms, liveness_ms, last_rx_ms, ka_ping_ms;

	/* logs: open batches [0, batches_sent) were sent in this session */
	size_t batches_sent;
	int64_t log_hold_until_ms, unbatched_since_ms;

	struct kaa__outmsg *sq_head, *sq_tail; /* the send queue (sdk_client.c) */
	size_t sq_len;
	struct kaa__pending_op *ops; /* subscribe/unsubscribe not yet sent */
	bool profile_dirty;

	unsigned char
		*rx; /* grows on demand up to RX_MAX (sdk_client.c): idle devices stay small */
	size_t rxcap;
	size_t rxlen;
	bool rx_overflow;

	/* events and owners */
	char *access_token; /* Hello.endpoint_access_token */
	kaa__outbox outbox;
	kaa__dedup *dedup;
	kaa__owner_req *oreqs; /* in call order (sdk_owners.c) */
	size_t n_oreqs;
	int64_t event_hold_until_ms;
	bool in_hello_ack; /* requests made by on_registered wait for the resume */

	kaa_client_stats stats;
};

/* ---- sdk_client.c -------------------------------------------------------- */

/* Counts an error and passes it to on_error (formatted, at most 511 bytes). */
void kaa__client_report(kaa_client *c, int err, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Queues an encoded frame for sending, taking ownership of *bufp (set to
 * NULL; freed also on failure). rc is the frame builder's result: an error
 * is returned as it is. buf and len are passed by address because callers
 * build the frame in the same argument list and argument evaluation order
 * is unspecified. KAA_ERR_NOMEM. */
int kaa__client_enqueue(kaa_client *c, int rc, uint8_t **bufp, size_t *lenp);
/* The next request id of this client (never 0). */
uint64_t kaa__client_next_req(kaa_client *c);
/* Gets what an API call queued out promptly: at once on the network
 * thread, else by waking it. */
void kaa__client_kick(kaa_client *c);
/* The runtime lock around an API call (nothing when the runtime is gone).
 * Any thread. */
void kaa__client_lock(kaa_client *c);
void kaa__client_unlock(kaa_client *c);
/* Checks that s[0..len) is one JSON value of at most max bytes.
 * KAA_ERR_TOO_BIG, KAA_ERR_INVAL, KAA_ERR_NOMEM. Any thread, no lock. */
int kaa__client_check_json(const char *s, size_t len, size_t max);
/* s is non-empty and at most max bytes. Any thread, no lock. */
bool kaa__client_str_ok(const char *s, size_t max);
/* An Error code after which a request is sent again later (overload,
 * server failure) rather than ended. */
bool kaa__client_retry_later(int code);

/* ---- sdk_owners.c: owner attach/detach and listener requests ------------ */

/* Sends the requests not yet sent in this session (while the send queue
 * has room); a request too big for the server's frames fails with its
 * callback. Online only. */
void kaa__owners_pump(kaa_client *c);
/* The session ended: every request counts as unsent again. */
void kaa__owners_unsend(kaa_client *c);
/* Frees every request (no callback). */
void kaa__owners_clear(kaa_client *c);
/* Answers from the server (req: the frame's request id). */
void kaa__owners_on_attach_response(kaa_client *c, const Kaa__Endpoint__V1__OwnerAttachResponse *r,
				    uint64_t req);
void kaa__owners_on_listeners(kaa_client *c, const Kaa__Endpoint__V1__EventListenersResponse *r,
			      uint64_t req);
/* An Ack: answers a detach request with this request id, if any. */
void kaa__owners_on_ack(kaa_client *c, uint64_t req);
/* An Error with a non-zero request id that no event claimed: ends the
 * request with its callback, or sends it again later. */
void kaa__owners_on_error(kaa_client *c, const Kaa__Endpoint__V1__Error *e, uint64_t req);
void kaa__owners_on_attach_notification(kaa_client *c,
					const Kaa__Endpoint__V1__AttachNotification *n);
void kaa__owners_on_detach_notification(kaa_client *c,
					const Kaa__Endpoint__V1__DetachNotification *n);

/* ---- sdk_events.c: events sent and received ------------------------------ */

/* Sends the outbox's unsent events (while the send queue has room), first
 * making every event unsent again when the oldest sent one went unanswered
 * too long. Online only. */
void kaa__events_pump(kaa_client *c);
/* A delivered Event: the duplicate filter, on_event, then the EventAck. */
void kaa__events_on_event(kaa_client *c, const Kaa__Endpoint__V1__Event *e, uint64_t req);
/* An EventAck: removes the event (by seq, else by request id). */
void kaa__events_on_ack(kaa_client *c, const Kaa__Endpoint__V1__EventAck *a, uint64_t req);
/* An Error with a non-zero request id: returns true when it answered an
 * event in the outbox (ended with on_event_result, or sent again later). */
bool kaa__events_on_error(kaa_client *c, const Kaa__Endpoint__V1__Error *e, uint64_t req);

#endif
