/*
 * kaa/kaa.h - libkaa, the Kaa device SDK.
 *
 * A device program creates one runtime (one network thread) and one or more
 * clients on it (one client = one endpoint = one WebSocket session to an
 * operations node). A client bootstraps from the built-in list of bootstrap
 * servers, picks an operations node by weighted random choice, registers
 * with its application token and public key, and then keeps the session
 * up: it reconnects with jittered exponential backoff, moves to another node
 * when one fails or redirects, syncs its configuration, delivers
 * notifications once, and uploads log records from a persistent on-disk
 * queue so that no record is lost while offline or across a restart.
 *
 * The SDK never prints and never aborts: everything it has to say arrives
 * through the callbacks in kaa_callbacks.
 *
 * Errors: functions return KAA_OK (0) or a negative kaa_err from
 * <kaa/error.h>; kaa_strerror() (declared there) names them.
 *
 * Threads: every kaa_* function may be called from any thread, except that
 * kaa_client_free and kaa_runtime_free must not be called from a callback.
 * Callbacks run on the runtime's network thread, one at a time; they must
 * return quickly (no blocking I/O) and may call the other kaa_client_*
 * functions.
 *
 * Owners and events (docs/protocol.md "Events and owners"): events go only
 * between endpoints attached to the same owner. A client attaches itself
 * with an owner access token (kaa_client_attach_owner), or, once attached,
 * attaches another endpoint by that endpoint's access token
 * (kaa_client_attach_endpoint), which the other endpoint sent in its Hello
 * (kaa_client_options.endpoint_access_token, or one the SDK generated once
 * and kept: kaa_client_endpoint_access_token). kaa_client_send_event sends
 * an event with the next per-endpoint seq (increasing across restarts);
 * it stays in a bounded in-memory outbox until the server acknowledges it
 * and is re-sent, in seq order, after every reconnect (and when the server
 * left the oldest one unanswered for 30 s). Events delivered to
 * this endpoint are acknowledged by the SDK and reach on_event once per
 * (source, seq). Owner requests not yet answered when a session ends are
 * sent again in the next session.
 *
 * Files: each client owns a state directory (kaa_client_options.state_dir)
 * holding its key pair (key.pem, EC P-256, created once), its endpoint state
 * (state: session id, configuration hash, notification positions, the
 * generated endpoint access token, the reserved event seqs), its last
 * configuration (config.json) and its log queue (logs.q). Two clients must
 * never share a state directory. The event outbox and the duplicate filter
 * are in memory only: events not yet acknowledged when the process exits
 * are lost, and an event processed but not yet acknowledged at a crash may
 * reach on_event again after the restart.
 */
#ifndef KAA_KAA_H
#define KAA_KAA_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KAA_EXPORT __attribute__((visibility("default")))

/* The SDK's version, e.g. "0.1.0". Static string. */
KAA_EXPORT const char *kaa_sdk_version(void);

typedef struct kaa_runtime kaa_runtime;
typedef struct kaa_client kaa_client;

/* Where a client is in its life. */
typedef enum kaa_client_state {
	KAA_STATE_IDLE = 0,          /* created, not started */
	KAA_STATE_BOOTSTRAPPING = 1, /* asking the bootstrap servers */
	KAA_STATE_CONNECTING = 2,    /* WebSocket handshake / Hello sent */
	KAA_STATE_ESTABLISHED = 3,   /* HelloAck received: registered, online */
	KAA_STATE_WAITING = 4,       /* offline, waiting for the next attempt */
	KAA_STATE_STOPPED = 5,       /* gave up for good (credentials revoked) or stopped */
} kaa_client_state;

/* Bounds of the event API (bytes without the NUL; list items). */
#define KAA_EVENT_FQN_MAX 256     /* FQN, key hash, owner id, verifier name */
#define KAA_EVENT_BODY_MAX 65536  /* event body JSON */
#define KAA_EVENT_FQNS_MAX 1024   /* FQNs in one kaa_client_find_listeners */
#define KAA_OWNER_TOKEN_MAX 1024  /* owner and endpoint access tokens */
#define KAA_OWNER_REQUESTS_MAX 64 /* owner/listener requests waiting for an answer */
#define KAA_EVENT_OUTBOX_DEFAULT 1000

/* Static name of a state ("established", ...). */
KAA_EXPORT const char *kaa_client_state_name(kaa_client_state s);

/*
 * Callbacks; any member may be NULL. Strings passed in are valid only
 * during the call (copy what you keep). user is kaa_client_options.user.
 */
typedef struct kaa_callbacks {
	/* The client moved to state s. */
	void (*on_state)(kaa_client *c, kaa_client_state s, void *user);
	/* HelloAck received: endpoint_key_hash is the endpoint's identity;
	 * created is true when this session created the endpoint record. */
	void (*on_registered)(kaa_client *c, const char *endpoint_key_hash, bool created,
			      void *user);
	/* Something went wrong. err is a kaa_err (KAA_ERR_UNAVAILABLE: no
	 * server reachable, KAA_ERR_PROTOCOL: the server answered with an Error
	 * frame, KAA_ERR_IO: a state file could not be written, ...);
	 * protocol_code is the device protocol's ErrorCode (docs/protocol.md)
	 * or 0; message is for humans. The client keeps going unless it moves
	 * to KAA_STATE_STOPPED. */
	void (*on_error)(kaa_client *c, int err, int protocol_code, const char *message,
			 void *user);
	/* A new configuration document (JSON text, len bytes, NUL-terminated)
	 * with its hash (lowercase hex SHA-256 of the canonical JSON). Called
	 * once per change; not called for "up to date". */
	void (*on_configuration)(kaa_client *c, const char *json, size_t len, const char *hash,
				 void *user);
	/* A notification (topic_id "" = unicast). Called once per (topic, seq):
	 * duplicates the server re-sends are dropped by the SDK. */
	void (*on_notification)(kaa_client *c, const char *topic_id, uint64_t seq,
				const char *body_json, void *user);
	/* A log batch got its delivery status: success means durably stored
	 * and removed from the local queue; !success means the server refused
	 * the batch as invalid (the bad record, if named, was dropped and the
	 * others are re-queued). Retryable failures are retried silently. */
	void (*on_log_delivery)(kaa_client *c, uint64_t batch_id, size_t records, bool success,
				void *user);

	/* ---- owners and events ---- */

	/* The answer to kaa_client_attach_owner (endpoint_access_token NULL)
	 * or kaa_client_attach_endpoint (the token that was given). success:
	 * owner_id is the owner, endpoint_key_hash the endpoint attached.
	 * Failure: protocol_code is the ErrorCode (NO_VERIFIER, INVALID_TOKEN,
	 * EXPIRED_TOKEN, FORBIDDEN, ... also when the server answered the
	 * request with an Error frame), reason for humans. The other strings
	 * are never NULL. */
	void (*on_attach_result)(kaa_client *c, const char *endpoint_access_token, bool success,
				 int protocol_code, const char *reason, const char *owner_id,
				 const char *endpoint_key_hash, void *user);
	/* The answer to kaa_client_detach(c, endpoint_key_hash) ("" = this
	 * endpoint): success (Ack) or the Error's code and message. */
	void (*on_detach_result)(kaa_client *c, const char *endpoint_key_hash, bool success,
				 int protocol_code, const char *message, void *user);
	/* The server says this endpoint was attached to owner_id by the
	 * endpoint by_endpoint_key_hash (may be ""). */
	void (*on_attach_notification)(kaa_client *c, const char *owner_id,
				       const char *by_endpoint_key_hash, void *user);
	/* The server says this endpoint was detached from its owner. */
	void (*on_detach_notification)(kaa_client *c, const char *by_endpoint_key_hash, void *user);
	/* An event for this endpoint, once per (source_endpoint_key_hash, seq):
	 * the SDK acknowledges it after this returns and drops duplicates. */
	void (*on_event)(kaa_client *c, const char *fqn, const char *source_endpoint_key_hash,
			 uint64_t seq, const char *body_json, void *user);
	/* The fate of an event sent with kaa_client_send_event (its seq): err
	 * KAA_OK = the server accepted it for routing (EventAck);
	 * KAA_ERR_PROTOCOL = the server refused it (protocol_code INVALID_EVENT,
	 * NOT_FOUND, FORBIDDEN, ...); KAA_ERR_TOO_BIG = larger than the
	 * server's frame limit. Refused events are dropped, never re-sent.
	 * Called once per event. */
	void (*on_event_result)(kaa_client *c, uint64_t seq, int err, int protocol_code,
				const char *message, void *user);
	/* The answer to kaa_client_find_listeners(fqns, n_fqns): the key
	 * hashes of the owner's endpoints that are sinks of all of them
	 * (protocol_code 0), or protocol_code != 0 with hashes empty when the
	 * server answered with an Error. */
	void (*on_listeners)(kaa_client *c, const char *const *fqns, size_t n_fqns,
			     int protocol_code, const char *const *endpoint_key_hashes, size_t n,
			     void *user);
} kaa_callbacks;

typedef struct kaa_client_options {
	/* Required: the application token (KAA_APPLICATION_TOKEN). */
	const char *application_token;
	/* Required: bootstrap servers (KAA_BOOTSTRAP_SERVERS), tried in turn:
	 * "host:port" (plain HTTP) or "http(s)://host[:port][/prefix]" (https
	 * is verified against ca_file, else the system's CAs). The nodes they
	 * name are reached at their advertised URL (ws:// or wss://, path
	 * included), and the client proves it holds its key (kaa.v2) when the
	 * node offers it. */
	const char *const *bootstrap_servers;
	size_t bootstrap_count;
	/* Required: directory for this client's files (created if absent). */
	const char *state_dir;
	/* Optional: client-side profile (JSON object) sent in Hello. */
	const char *client_profile_json;
	/* Optional: the SDK profile id (KAA_SDK_PROFILE_ID as a string). */
	const char *sdk_profile_id;
	/* Optional: CA bundle for https bootstrap servers and wss:// nodes
	 * (the server certificate and host name are verified against it);
	 * NULL: the system's default CAs. When set, nodes known only by
	 * host:port (older bootstrap servers) are reached with wss. */
	const char *ca_file;
	const kaa_callbacks *callbacks;
	void *user;
	/* Reconnect backoff: 0 means the defaults (500 ms, 30 s). */
	uint32_t backoff_initial_ms;
	uint32_t backoff_max_ms;
	/* Log upload: records per batch (0: 100, capped by the server's
	 * limit), how long a partial batch waits for more records (0: 100 ms),
	 * and the most records the local queue holds (0: 100000; beyond it
	 * kaa_client_log_add returns KAA_ERR_TOO_BIG). */
	uint32_t log_batch_records;
	uint32_t log_flush_ms;
	uint32_t log_queue_max_records;
	/* true: do not fsync the log queue on every append (faster, may lose
	 * the newest records on power loss; never on a process crash). */
	bool log_no_fsync;
	/* true: write the endpoint state and configuration files without fsync
	 * (atomic still; a power loss may bring back the previous ones, which
	 * the protocol recovers). For simulators running thousands of clients
	 * on one disk; a real device keeps the default. */
	bool state_no_fsync;
	/* The endpoint access token sent in Hello, with which an attached
	 * endpoint can attach this one to its owner (1..1024 bytes). NULL: a
	 * random one (base64url of 32 bytes) generated on the first start and
	 * kept in the state file, so it is stable across restarts. */
	const char *endpoint_access_token;
	/* Events kept until acknowledged (0: KAA_EVENT_OUTBOX_DEFAULT, at most
	 * 1000000); beyond it kaa_client_send_event returns KAA_ERR_TOO_BIG. */
	uint32_t event_outbox_max;
	/* Liveness of the session (a server cut off by a network partition
	 * sends neither FIN nor RST). When nothing at all has arrived from the
	 * server for keepalive_ms the client sends a Ping; when still nothing
	 * has arrived liveness_timeout_ms after that Ping, the connection is
	 * declared dead: it is closed locally (no close handshake waited for),
	 * on_error reports KAA_ERR_TIMEOUT, the node is avoided on the next
	 * attempt and the client reconnects as after a server close (backoff,
	 * bootstrap, queued logs and events sent again; it counts in
	 * reconnects and liveness_timeouts). Any frame counts, not only Pong.
	 * keepalive_ms: 0 = the server's HelloAck limits.idle_timeout_ms / 3
	 * when it gives one, else 30000; KAA_KEEPALIVE_OFF (any negative) = no
	 * keepalive Pings and no liveness check (the Ping at half the server's
	 * idle timeout that keeps the session open is still sent).
	 * liveness_timeout_ms: 0 = 10000; negative = Pings are sent but an
	 * unanswered one never closes the connection. Checked by the 50 ms
	 * sweep, so both are rounded up to it. */
	int32_t keepalive_ms;
	int32_t liveness_timeout_ms;
	/* A connection attempt (TCP connect, TLS, WebSocket handshake and the
	 * HelloAck) not complete after this long is abandoned and retried with
	 * backoff (0: KAA_CONNECT_TIMEOUT_DEFAULT_MS). */
	uint32_t connect_timeout_ms;
	/* Optional: a PEM certificate for this device's own key (state_dir's
	 * key.pem, created at the first start), presented on wss connections
	 * to nodes that require mutual TLS (kaa-node --client-ca). Issue it
	 * for the key the device registers with: the node refuses a
	 * certificate of another key. */
	const char *client_cert_file;
} kaa_client_options;

#define KAA_KEEPALIVE_OFF (-1)
#define KAA_KEEPALIVE_FALLBACK_MS 30000 /* no idle_timeout_ms in HelloAck */
#define KAA_LIVENESS_TIMEOUT_DEFAULT_MS 10000
#define KAA_CONNECT_TIMEOUT_DEFAULT_MS 15000

/* Counters of one client (monotonic since kaa_client_new). */
typedef struct kaa_client_stats {
	uint64_t connects;          /* sessions established (HelloAck received) */
	uint64_t reconnects;        /* established sessions after the first */
	uint64_t records_sent;      /* log records sent (re-sends included) */
	uint64_t records_acked;     /* log records confirmed stored */
	uint64_t notifications;     /* notifications delivered to on_notification */
	uint64_t configurations;    /* configurations delivered to on_configuration */
	uint64_t errors;            /* calls of on_error */
	uint64_t queued_records;    /* records in the local queue now */
	bool registered;            /* a HelloAck was received at least once */
	uint64_t events_queued;     /* events accepted by kaa_client_send_event */
	uint64_t events_sent;       /* Event frames sent (re-sends included) */
	uint64_t events_acked;      /* events the server accepted (EventAck) */
	uint64_t events_failed;     /* events refused (on_event_result with err != KAA_OK) */
	uint64_t events_outbox;     /* events waiting for their EventAck now */
	uint64_t events_received;   /* events delivered to on_event */
	uint64_t events_duplicates; /* delivered events dropped as duplicates */
	uint64_t liveness_timeouts; /* connections declared dead: Ping unanswered */
	uint64_t connect_timeouts;  /* attempts abandoned after connect_timeout_ms */
} kaa_client_stats;

/*
 * Creates a runtime and starts its network thread. The caller owns *out and
 * frees it with kaa_runtime_free. Errors: KAA_ERR_NOMEM, KAA_ERR_INTERNAL
 * (the WebSocket context or the thread could not be created).
 * The runtime silences libwebsockets' own logging (process-wide).
 */
KAA_EXPORT int kaa_runtime_new(kaa_runtime **out);

/* Stops the network thread, closes every client's session (clients stay
 * valid for kaa_client_stats and must still be freed with kaa_client_free,
 * before or after this call). NULL is accepted. */
KAA_EXPORT void kaa_runtime_free(kaa_runtime *rt);

/*
 * Creates a client on rt: copies opts (strings included), creates the state
 * directory, loads or creates the key pair and opens the log queue (records
 * of a previous run are kept and will be sent). It does not connect until
 * kaa_client_start. *out is owned by the caller (kaa_client_free).
 * Errors: KAA_ERR_INVAL (missing token, bootstrap list or state_dir, or a
 * bootstrap entry that is neither host:port nor an http(s) URL), KAA_ERR_IO (state directory or
 * files not usable), KAA_ERR_NOMEM.
 */
KAA_EXPORT int kaa_client_new(kaa_runtime *rt, const kaa_client_options *opts, kaa_client **out);

/* Starts connecting (asynchronously). KAA_ERR_INVAL if c is NULL,
 * KAA_ERR_CANCELED if the runtime was freed. Starting twice is a no-op. */
KAA_EXPORT int kaa_client_start(kaa_client *c);

/* Closes the session and frees c; waits until the network thread has let
 * go of it. Queued log records stay on disk. NULL is accepted. Never from
 * a callback. */
KAA_EXPORT void kaa_client_free(kaa_client *c);

/*
 * Appends one log record (one JSON text, len bytes) to the persistent queue
 * (written, and fsync'ed unless log_no_fsync, before this returns). It is
 * uploaded when online and removed once the server confirms storage.
 * Errors: KAA_ERR_INVAL (NULL, empty or not JSON), KAA_ERR_TOO_BIG (record
 * over 8 KiB or queue full), KAA_ERR_IO (write failed), KAA_ERR_NOMEM.
 */
KAA_EXPORT int kaa_client_log_add(kaa_client *c, const char *json, size_t len);

/* Subscribes to / unsubscribes from an optional notification topic (sent
 * when online; the server's refusal arrives through on_error).
 * KAA_ERR_INVAL for a NULL/empty/oversized id, KAA_ERR_NOMEM. */
KAA_EXPORT int kaa_client_subscribe(kaa_client *c, const char *topic_id);
KAA_EXPORT int kaa_client_unsubscribe(kaa_client *c, const char *topic_id);

/* Replaces the client-side profile (JSON object, sent now if online and in
 * every later Hello). KAA_ERR_INVAL (not JSON), KAA_ERR_TOO_BIG (> 16 KiB). */
KAA_EXPORT int kaa_client_set_profile(kaa_client *c, const char *json);

/* Copies the counters. KAA_ERR_INVAL if c or out is NULL. */
KAA_EXPORT int kaa_client_get_stats(kaa_client *c, kaa_client_stats *out);

/* The current state. */
KAA_EXPORT kaa_client_state kaa_client_get_state(kaa_client *c);

/* Copies the endpoint key hash ("" before the first HelloAck of this
 * process) into buf (NUL-terminated, cut to len). */
KAA_EXPORT void kaa_client_get_endpoint_key_hash(kaa_client *c, char *buf, size_t len);

/* Copies "host:port" of the operations node the client is connecting or
 * connected to ("" otherwise) into buf (NUL-terminated, cut to len). */
KAA_EXPORT void kaa_client_get_node(kaa_client *c, char *buf, size_t len);

/* ---- owners and events ----------------------------------------------------
 * Requests are queued and sent when the client is online (in the order of
 * the calls); each gets exactly one answer through its callback, except
 * that a request still unanswered when kaa_client_free runs gets none. All
 * of them: KAA_ERR_INVAL (NULL c, empty or oversized argument, see the
 * KAA_*_MAX bounds), KAA_ERR_TOO_BIG (KAA_OWNER_REQUESTS_MAX requests are
 * waiting), KAA_ERR_NOMEM. */

/* Attaches this endpoint to the owner owner_external_id, proven by the
 * owner access token token, checked by the verifier verifier_token (NULL or
 * "": the application's default). Answer: on_attach_result with
 * endpoint_access_token NULL. */
KAA_EXPORT int kaa_client_attach_owner(kaa_client *c, const char *owner_external_id,
				       const char *token, const char *verifier_token);

/* Attaches the endpoint whose Hello carried endpoint_access_token to this
 * (already attached) endpoint's owner. Answer: on_attach_result with that
 * token. */
KAA_EXPORT int kaa_client_attach_endpoint(kaa_client *c, const char *endpoint_access_token);

/* Detaches the endpoint endpoint_key_hash (NULL or "": this one) from its
 * owner. Answer: on_detach_result. */
KAA_EXPORT int kaa_client_detach(kaa_client *c, const char *endpoint_key_hash);

/* Asks which endpoints of the owner are sinks of all of fqns[0..n)
 * (1..KAA_EVENT_FQNS_MAX FQNs, each 1..KAA_EVENT_FQN_MAX bytes; the whole
 * request must fit the server's frame limit, 64 KiB by default, else
 * KAA_ERR_TOO_BIG). Answer: on_listeners. */
KAA_EXPORT int kaa_client_find_listeners(kaa_client *c, const char *const *fqns, size_t n);

/*
 * Sends an event of class fqn (1..KAA_EVENT_FQN_MAX bytes) with body
 * body_json (one JSON text, at most KAA_EVENT_BODY_MAX bytes) to the
 * endpoint target_key_hash, or with target NULL/"" to every sink of that
 * class of the owner. The event gets the endpoint's next seq (*seq_out,
 * may be NULL) and is kept in the outbox until the server answers; the
 * answer arrives through on_event_result. Errors: KAA_ERR_INVAL (NULL c,
 * bad FQN/target, body not JSON), KAA_ERR_TOO_BIG (body or whole event
 * over the limits, or the outbox full: nothing was queued), KAA_ERR_IO
 * (the seq reservation could not be written to the state file),
 * KAA_ERR_NOMEM.
 */
KAA_EXPORT int kaa_client_send_event(kaa_client *c, const char *fqn, const char *target_key_hash,
				     const char *body_json, uint64_t *seq_out);

/* The endpoint access token this client sends in Hello (the option, or
 * the generated one). Valid and unchanged for the life of c; NULL if c is
 * NULL. */
KAA_EXPORT const char *kaa_client_endpoint_access_token(kaa_client *c);

#ifdef __cplusplus
}
#endif

#endif
