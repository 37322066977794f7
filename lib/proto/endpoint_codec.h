/*
 * endpoint_codec.h - bounded decoding and encoding of device protocol frames
 * (protos/endpoint.proto, described in docs/protocol.md).
 *
 * SDK-friendly: endpoint_codec.c depends only on protobuf-c, the generated
 * endpoint.pb-c.c and error.h/error.c, so the device SDK compiles the same
 * file. It never logs, never aborts and keeps no global state.
 *
 * Threads: every function is reentrant; frames and errors belong to the
 * caller and may be used by one thread at a time.
 *
 * Errors: functions return KAA_OK or a negative kaa_err:
 *   KAA_ERR_PROTOCOL  bytes are not a Frame, or unsupported protocol_version
 *   KAA_ERR_TOO_BIG   a size or count limit (kaa__frame_limits) was exceeded
 *   KAA_ERR_INVAL     decodable but semantically invalid (empty body, missing
 *                     required field, invalid JSON in a JSON field)
 *   KAA_ERR_NOMEM     allocation failed
 * kaa__frame_decode also fills a kaa__frame_error with the protocol's Error
 * code, the offending field and the request_id (recovered even from frames
 * that do not decode, when their request_id field is readable), so the
 * server can answer with an Error frame and keep the session going.
 */
#ifndef KAA_ENDPOINT_CODEC_H
#define KAA_ENDPOINT_CODEC_H

#include "endpoint.pb-c.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The newest protocol_version this code speaks; it accepts 1..this. */
#define KAA__PROTOCOL_VERSION 1u

/* The WebSocket subprotocol name. */
#define KAA__PROTOCOL_SUBPROTOCOL "kaa.v1"
/* The subprotocol of sessions that prove possession of the device key: the
 * server's first frame is a Challenge (docs/protocol.md). */
#define KAA__PROTOCOL_SUBPROTOCOL_V2 "kaa.v2"
#define KAA__NONCE_BYTES 32
#define KAA__PROOF_MAX_BYTES 128

/*
 * Limits applied by kaa__frame_decode. Sizes are in bytes (JSON and string
 * fields: their length without the terminating NUL).
 */
typedef struct kaa__frame_limits {
	size_t max_frame_bytes;      /* whole frame, default 65536 */
	size_t max_log_records;      /* records in one LogUpload, default 1000 */
	size_t max_profile_bytes;    /* client profile JSON, default 16384 */
	size_t max_log_record_bytes; /* one log record JSON, default 8192 */
	size_t max_body_bytes;       /* notification, configuration, event JSON, default 65536 */
	size_t max_token_bytes;      /* application/endpoint/owner tokens, default 1024 */
	size_t max_public_key_bytes; /* Hello.public_key, default 1024 */
	size_t max_id_bytes;         /* ids, hashes, names, hosts, FQNs, ping payload: 256 */
	size_t max_text_bytes;       /* error messages, reasons, JSON paths: 1024 */
	size_t max_topics;           /* NotificationTopics.topics, SessionResume.positions: 1024 */
	size_t max_redirect_targets; /* Redirect.targets, default 64 */
	size_t max_list_items;       /* event class FQNs, listener key hashes, default 1024 */
	unsigned max_json_depth;     /* nesting of arrays/objects in a JSON field, default 64 */
} kaa__frame_limits;

/* The defaults above; read-only. */
extern const kaa__frame_limits kaa__frame_limits_default;

/* Why a frame was refused: enough to build the Error frame that answers it. */
typedef struct kaa__frame_error {
	int err;                           /* kaa_err, as returned */
	Kaa__Endpoint__V1__ErrorCode code; /* the protocol's Error.code */
	uint64_t request_id;               /* the refused frame's request_id, 0 if unknown */
	char field[96];                    /* e.g. "log_upload.records_json[3]"; "" if none */
	bool has_index;                    /* index below is meaningful */
	uint32_t index;                    /* element of a repeated field (log record index) */
	char message[192];                 /* human-readable, NUL-terminated */
} kaa__frame_error;

/*
 * Decodes and validates one frame of len bytes. lim NULL means the defaults.
 * On KAA_OK *out is a new frame the caller frees with kaa__frame_free; on
 * error *out is NULL and err (if not NULL) says why. buf is not retained.
 */
int kaa__frame_decode(const uint8_t *buf, size_t len, const kaa__frame_limits *lim,
		      Kaa__Endpoint__V1__Frame **out, kaa__frame_error *err);

/* Frees a frame returned by kaa__frame_decode. NULL is accepted. Not for
 * frames the caller built itself. */
void kaa__frame_free(Kaa__Endpoint__V1__Frame *f);

/*
 * Serializes f (built by the caller with KAA__ENDPOINT__V1__FRAME__INIT and
 * friends, or decoded) into a new malloc'ed buffer *out of *len bytes that
 * the caller frees with free(). f is not modified. It does not apply
 * limits; KAA_ERR_INVAL when f is structurally invalid.
 */
int kaa__frame_encode(const Kaa__Endpoint__V1__Frame *f, uint8_t **out, size_t *len);

/*
 * Sets every member of e (printf-style message). Returns err, so that
 * `return kaa__frame_error_set(...)` works. e NULL is accepted.
 */
int kaa__frame_error_set(kaa__frame_error *e, int err, Kaa__Endpoint__V1__ErrorCode code,
			 uint64_t request_id, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/*
 * Fills *f and *body (caller-owned storage, overwritten) with the Error frame
 * answering e: protocol_version current, request_id e->request_id. The
 * strings of body point into e, which must outlive f. No allocation.
 */
void kaa__frame_error_to_frame(const kaa__frame_error *e, Kaa__Endpoint__V1__Frame *f,
			       Kaa__Endpoint__V1__Error *body);

/* kaa__frame_error_to_frame + kaa__frame_encode. */
int kaa__frame_encode_error(const kaa__frame_error *e, uint8_t **out, size_t *len);

/*
 * Checks that s[0..len) is one syntactically valid JSON text (RFC 8259,
 * UTF-8) nested at most max_depth deep. On failure returns KAA_ERR_INVAL and,
 * if not NULL, sets *err_off to the byte offset and *why to a static reason.
 */
int kaa__json_check(const char *s, size_t len, unsigned max_depth, size_t *err_off,
		    const char **why);

/*
 * Drops the unknown fields of any decoded protobuf-c message and of its
 * submessages (receivers ignore fields they do not know, and a re-encoded
 * message carries only known ones). Returns -1 when one had field number 0,
 * which protobuf-c accepts from a non-canonical varint key but is not valid
 * protobuf: the caller refuses the message. Used for internode frames too.
 */
int kaa__proto_strip_unknown(ProtobufCMessage *m);

#endif
