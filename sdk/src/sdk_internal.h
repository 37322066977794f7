/*
 * sdk_internal.h - libkaa's internal modules (not installed). Every
 * function returns KAA_OK or a negative kaa_err unless it says otherwise;
 * none prints or aborts. Objects belong to one thread at a time (the
 * client's owner serialises access with the runtime lock).
 */
#ifndef KAA_SDK_INTERNAL_H
#define KAA_SDK_INTERNAL_H

#include "base/clock.h"
#include "proto/device_url.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- small JSON (sdk_json.c) -------------------------------------------
 * A bounded JSON tree, enough for the bootstrap answer, the configuration
 * (RFC 7386 merge patch) and its canonical form, which matches the
 * server's (lib/json/json_merge.h): no whitespace, keys sorted by bytes, strings
 * escaping only '"', '\\' and control characters (\b \f \n \r \t, others
 * \u00XX uppercase), numbers by value (int64 literals as integers, integral
 * doubles in int64 range as integers, others with the fewest %g digits that
 * read back the same). Parsing refuses more than max_bytes, nesting deeper
 * than max_depth, NUL (raw or \u0000), duplicate keys, non-finite numbers
 * and trailing bytes. */
typedef enum kaa__sj_type {
	KAA__SJ_NULL,
	KAA__SJ_FALSE,
	KAA__SJ_TRUE,
	KAA__SJ_NUMBER,
	KAA__SJ_STRING,
	KAA__SJ_ARRAY,
	KAA__SJ_OBJECT,
} kaa__sj_type;

typedef struct kaa__sj {
	kaa__sj_type type;
	char *str;             /* STRING: value (NUL-terminated); NUMBER: the literal */
	size_t n;              /* ARRAY/OBJECT: element count */
	char **keys;           /* OBJECT: n keys */
	struct kaa__sj **vals; /* ARRAY/OBJECT: n values */
} kaa__sj;

/* Parses s[0..len). *out is freed with kaa__sj_free. KAA_ERR_TOO_BIG,
 * KAA_ERR_INVAL, KAA_ERR_NOMEM. */
int kaa__sj_parse(const char *s, size_t len, size_t max_bytes, unsigned max_depth, kaa__sj **out);
void kaa__sj_free(kaa__sj *v);
/* The member named key of an object, or NULL. */
const kaa__sj *kaa__sj_get(const kaa__sj *obj, const char *key);
/* Canonical text (malloc'd, NUL-terminated) of v. KAA_ERR_NOMEM. */
int kaa__sj_canonical(const kaa__sj *v, char **out, size_t *len);
/* RFC 7386: returns in *out a new tree = target (may be NULL) patched. */
int kaa__sj_merge_patch(const kaa__sj *target, const kaa__sj *patch, kaa__sj **out);
/* Lowercase hex SHA-256 of data (65 bytes with the NUL). */
int kaa__sdk_sha256_hex(const void *data, size_t len, char hex[65]);
/* Canonical hash of a JSON text. Errors of kaa__sj_parse. */
int kaa__sj_hash_text(const char *s, size_t len, char hex[65]);

/* ---- CRC-32 (sdk_crc32.c) ----------------------------------------------- */

/* CRC-32 (IEEE 802.3, as zlib's crc32) of data. */
uint32_t kaa__sdk_crc32(const void *data, size_t len);

/* ---- randomness and backoff (sdk_random.c) ------------------------------ */

/* 64 random bits from the kernel (getrandom), falling back to a clock mix. */
uint64_t kaa__sdk_random64(void);

/* Jittered exponential backoff ("equal jitter": uniform in [base/2, base],
 * base doubles up to max). Owned by one thread. */
typedef struct kaa__sdk_backoff {
	uint32_t initial_ms, max_ms, base_ms;
	uint64_t rng;
} kaa__sdk_backoff;
void kaa__sdk_backoff_init(kaa__sdk_backoff *b, uint32_t initial_ms, uint32_t max_ms);
uint32_t kaa__sdk_backoff_next(kaa__sdk_backoff *b);
void kaa__sdk_backoff_reset(kaa__sdk_backoff *b);
/* Uniform in [0, n) from the xorshift state *rng (n > 0). */
uint64_t kaa__sdk_rand_below(uint64_t *rng, uint64_t n);

/* ---- files (sdk_files.c) ------------------------------------------------ */

/* Writes data to path atomically (tmp file, rename); durable: with fsync of
 * the file and its directory, so it survives a power loss. KAA_ERR_IO. */
int kaa__sdk_write_file(const char *path, const void *data, size_t len, int mode, bool durable);
/* Reads a whole file of at most max bytes (NUL appended). KAA_ERR_NOTFOUND,
 * KAA_ERR_TOO_BIG, KAA_ERR_IO, KAA_ERR_NOMEM. */
int kaa__sdk_read_file(const char *path, size_t max, char **out, size_t *len);
/* mkdir -p with mode 0700. KAA_ERR_IO. */
int kaa__sdk_mkdirs(const char *path);

/* ---- bootstrap (sdk_bootstrap.c) ------------------------------------------ */

#define KAA__MAX_NODES 64
#define KAA__HOST_MAX 256

typedef struct kaa__node_addr {
	char host[KAA__HOST_MAX];
	uint16_t port;
	uint32_t weight;
	bool tls;
	/* the address came as a URL (bootstrap "url", Redirect "url"): its
	 * scheme decides TLS; else TLS is used when tls or a CA file is set */
	bool from_url;
	char path[KAA__URL_PATH_MAX]; /* WebSocket request path, "/" by default */
} kaa__node_addr;

/* Splits "host:port" ("[v6]:port" too). KAA_ERR_INVAL. */
int kaa__sdk_parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Fills a from an operations URL (ws:// or wss://, proto/device_url.h),
 * weight 1. KAA_ERR_INVAL. */
int kaa__sdk_node_from_url(const char *url, kaa__node_addr *a);
/* Parses a bootstrap answer {"nodes":[{"id","host","port","weight","tls",
 * "url"}...]} into nodes[0..*n) (at most max). A node's "url", when it is
 * a ws/wss URL, wins over host/port/tls (older servers send no url);
 * entries with neither are skipped, weight < 1 counts as 1. KAA_ERR_INVAL
 * (not that shape), KAA_ERR_TOO_BIG. */
int kaa__sdk_bootstrap_parse(const char *body, size_t len, kaa__node_addr *nodes, size_t max,
			     size_t *n);
/* Index of a node picked at random by weight, skipping index avoid when
 * another node exists (avoid = SIZE_MAX: none). n > 0. */
size_t kaa__sdk_pick_weighted(const kaa__node_addr *nodes, size_t n, size_t avoid, uint64_t *rng);
/* GET PREFIX/v1/operations?application=TOKEN from a bootstrap server within
 * timeout_ms and parses the answer. server is "host:port" (plain HTTP) or
 * an http:// or https:// URL whose path is the prefix (an ingress may
 * route by path). https verifies the server's certificate and host name
 * against ca_file (NULL: the system's CAs) with TLS 1.2 or later.
 * KAA_ERR_INVAL (server is not such an address), KAA_ERR_UNAVAILABLE
 * (connect/read failed, TLS handshake or verification failed),
 * KAA_ERR_TIMEOUT, KAA_ERR_PROTOCOL (not a 200 JSON answer),
 * KAA_ERR_TOO_BIG (answer over 64 KiB), KAA_ERR_NOMEM. */
int kaa__sdk_bootstrap_fetch(const char *server, const char *ca_file, const char *app_token,
			     int timeout_ms, kaa__node_addr *nodes, size_t max, size_t *n);

/* ---- persistent log queue (sdk_log_queue.c) ---------------------------------
 * An append-only file of entries [type u8][len u32 LE][crc32 u32 LE of
 * type+len+payload][payload]: 'R' a record (JSON), 'B' a batch (batch id
 * u64 + count u32: the oldest count unbatched records now form it), 'A' a
 * batch acknowledged (batch id u64: its records are gone), 'X' a batch
 * refused (batch id u64 + index u32: the record at index is dropped, the
 * others become unbatched again at the end). Opening replays the file; a
 * torn or corrupt tail is cut off (everything before it is kept). The file
 * is rewritten (tmp + rename) when acknowledged entries dominate.
 * Batches keep their id across restarts, so a re-sent batch is stored once
 * by the server. */
typedef struct kaa__lq kaa__lq;

typedef struct kaa__lq_batch {
	uint64_t id;
	size_t n;
	char **records; /* borrowed from the queue; valid until the next call */
	size_t *lens;
} kaa__lq_batch;

/* Opens (creates) path. max_records bounds the queue; fsync_each: fsync
 * after every append. *cut_bytes (may be NULL) = bytes of tail discarded.
 * KAA_ERR_IO, KAA_ERR_NOMEM. */
int kaa__lq_open(const char *path, size_t max_records, bool fsync_each, kaa__lq **out,
		 size_t *cut_bytes);
void kaa__lq_close(kaa__lq *q);
/* Appends a record. KAA_ERR_TOO_BIG (queue full), KAA_ERR_IO. */
int kaa__lq_append(kaa__lq *q, const char *rec, size_t len);
/* Records in the queue (batched or not). */
size_t kaa__lq_count(const kaa__lq *q);
/* Records not yet in a batch. */
size_t kaa__lq_unbatched(const kaa__lq *q);
/* Forms a new batch of the oldest unbatched records (at most max_records,
 * at most max_bytes of JSON in total, at least one) with a fresh random id,
 * persisted (fsync) before it returns. KAA_ERR_NOTFOUND when nothing is
 * unbatched. */
int kaa__lq_new_batch(kaa__lq *q, size_t max_records, size_t max_bytes, kaa__lq_batch *out);
/* Number of open batches (formed, not acknowledged), oldest first. */
size_t kaa__lq_batches(const kaa__lq *q);
/* The i-th open batch (0 = oldest). KAA_ERR_NOTFOUND. */
int kaa__lq_batch_at(kaa__lq *q, size_t i, kaa__lq_batch *out);
/* Finds the open batch id. KAA_ERR_NOTFOUND. */
int kaa__lq_find(kaa__lq *q, uint64_t id, kaa__lq_batch *out);
/* The server stored batch id: drop its records. KAA_ERR_NOTFOUND. */
int kaa__lq_ack(kaa__lq *q, uint64_t id);
/* The server refused batch id: drop record index (if < n) and return the
 * others to the unbatched tail. KAA_ERR_NOTFOUND. */
int kaa__lq_reject(kaa__lq *q, uint64_t id, uint32_t index);

/* ---- keys and endpoint state (sdk_state.c) ---------------------------- */

/* Loads dir/key.pem or creates it (EC P-256, mode 0600); *der (malloc'd)
 * = the public key as DER SubjectPublicKeyInfo. KAA_ERR_IO (unreadable or
 * not a key), KAA_ERR_INTERNAL (OpenSSL), KAA_ERR_NOMEM. */
int kaa__sdk_key_load_or_create(const char *dir, uint8_t **der, size_t *der_len);

#define KAA__MAX_STREAMS 1024
#define KAA__ID_MAX 257

typedef struct kaa__stream_pos {
	char topic_id[KAA__ID_MAX]; /* "" = unicast */
	uint64_t last_seq;
} kaa__stream_pos;

/* Event seqs are reserved on disk this many at a time, so that sending an
 * event rarely writes the state file while seqs still never repeat across
 * restarts (a restart skips what was left of the block). */
#define KAA__EVENT_SEQ_BLOCK 1000

/* The endpoint state kept in dir/state (lines "key value"). */
typedef struct kaa__sdk_state {
	char endpoint_key_hash[KAA__ID_MAX];
	char session_id[KAA__ID_MAX];
	char config_hash[KAA__ID_MAX];
	/* generated once when the options name none (Hello.endpoint_access_token) */
	char endpoint_access_token[KAA__ID_MAX];
	/* persisted: event seqs below it may have been used */
	uint64_t event_seq_reserved;
	/* in memory: the next event seq (set by kaa__sdk_state_load) */
	uint64_t event_seq_next;
	size_t n_streams, cap_streams;
	kaa__stream_pos *streams; /* owned; kaa__sdk_state_clear frees */
} kaa__sdk_state;

/* Frees the stream table and zeroes st. */
void kaa__sdk_state_clear(kaa__sdk_state *st);

/* Loads dir/state into st (cleared first; absent: empty state, KAA_OK). Unknown or malformed
 * lines are ignored. KAA_ERR_IO; KAA_ERR_NOMEM (st left cleared: a partial state would
 * replay streams whose positions it lost). */
int kaa__sdk_state_load(const char *dir, kaa__sdk_state *st);
/* Writes dir/state atomically. KAA_ERR_IO. */
int kaa__sdk_state_save(const char *dir, const kaa__sdk_state *st, bool durable);
/* The next event seq (1, 2, ...; increasing across restarts). When the
 * reserved block is used up it reserves the next one and writes dir/state
 * first; on a write failure no seq is handed out (KAA_ERR_IO). */
int kaa__sdk_state_take_event_seq(const char *dir, kaa__sdk_state *st, bool durable, uint64_t *seq);
/* A new endpoint access token: base64url (no padding) of 32 random bytes
 * from OpenSSL's CSPRNG, 43 characters + NUL. KAA_ERR_INTERNAL. */
int kaa__sdk_new_access_token(char out[44]);

/* The position of a stream, creating it (last_seq 0) when absent; NULL when
 * KAA__MAX_STREAMS streams exist, topic_id is too long, or out of memory. */
kaa__stream_pos *kaa__sdk_state_stream(kaa__sdk_state *st, const char *topic_id);

/* ---- frames the device sends (sdk_frames.c) ---------------------------
 * Each builds one Frame (protocol_version 1, request_id req) and encodes it
 * into *out (malloc'd, caller frees) of *len bytes. Strings are not
 * validated beyond NULL (NULL means ""). KAA_ERR_NOMEM, KAA_ERR_INVAL. */
int kaa__sdk_frame_hello(uint64_t req, const char *app_token, const uint8_t *pub, size_t publen,
			 const char *sdk_profile_id, const char *profile_json, uint8_t **out,
			 size_t *len);
int kaa__sdk_frame_session_resume(uint64_t req, const char *session_id, const kaa__stream_pos *pos,
				  size_t n, uint8_t **out, size_t *len);
int kaa__sdk_frame_config_sync(uint64_t req, const char *hash, uint8_t **out, size_t *len);
int kaa__sdk_frame_ack(uint64_t req, uint8_t **out, size_t *len);
int kaa__sdk_frame_notification_ack(const char *topic_id, uint64_t seq, uint8_t **out, size_t *len);
int kaa__sdk_frame_log_upload(uint64_t req, uint64_t batch_id, char *const *records, size_t n,
			      uint8_t **out, size_t *len);
int kaa__sdk_frame_ping(uint64_t req, uint8_t **out, size_t *len);
int kaa__sdk_frame_pong(uint64_t req, const uint8_t *payload, size_t plen, uint8_t **out,
			size_t *len);
/* unsubscribe false: Subscribe, true: Unsubscribe. */
int kaa__sdk_frame_subscribe(uint64_t req, const char *topic_id, bool unsubscribe, uint8_t **out,
			     size_t *len);
int kaa__sdk_frame_profile(uint64_t req, const char *json, uint8_t **out, size_t *len);
/* Hello with Hello.endpoint_access_token (NULL: none). */
int kaa__sdk_frame_hello_token(uint64_t req, const char *app_token, const uint8_t *pub,
			       size_t publen, const char *sdk_profile_id, const char *profile_json,
			       const char *endpoint_access_token, uint8_t **out, size_t *len);
/* Event (target NULL/"": every sink of the owner). */
int kaa__sdk_frame_event(uint64_t req, const char *fqn, const char *target, const char *body_json,
			 uint64_t seq, uint8_t **out, size_t *len);
/* EventAck answering a delivered event (req: the delivery's request id). */
int kaa__sdk_frame_event_ack(uint64_t req, uint64_t seq, const char *source, uint8_t **out,
			     size_t *len);
int kaa__sdk_frame_event_listeners(uint64_t req, char *const *fqns, size_t n, uint8_t **out,
				   size_t *len);
/* OwnerAttachRequest with an owner access token (verifier NULL: default). */
int kaa__sdk_frame_owner_attach(uint64_t req, const char *owner_external_id, const char *token,
				const char *verifier_token, uint8_t **out, size_t *len);
/* OwnerAttachRequest with another endpoint's access token. */
int kaa__sdk_frame_endpoint_attach(uint64_t req, const char *endpoint_access_token, uint8_t **out,
				   size_t *len);
/* OwnerDetach (key hash NULL/"": this endpoint). */
int kaa__sdk_frame_owner_detach(uint64_t req, const char *endpoint_key_hash, uint8_t **out,
				size_t *len);

#endif
