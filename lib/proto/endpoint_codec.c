/*
 * endpoint_codec.c - see endpoint_codec.h. Depends only on protobuf-c, the
 * generated endpoint.pb-c.c and error.h: the device SDK compiles it too.
 */
#include "proto/endpoint_codec.h"
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Kaa__Endpoint__V1__Frame frame_t;
typedef Kaa__Endpoint__V1__ErrorCode code_t;

#define C_BAD_FRAME KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME
#define C_VERSION KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_VERSION
#define C_TOO_BIG KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_TOO_BIG
#define C_PROFILE KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_PROFILE
#define C_LOG_RECORD KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_LOG_RECORD
#define C_INTERNAL KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INTERNAL
#define C_INVALID KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_MESSAGE
#define C_UNSUPPORTED KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_MESSAGE

const kaa__frame_limits kaa__frame_limits_default = {
	.max_frame_bytes = 65536,
	.max_log_records = 1000,
	.max_profile_bytes = 16384,
	.max_log_record_bytes = 8192,
	.max_body_bytes = 65536,
	.max_token_bytes = 1024,
	.max_public_key_bytes = 1024,
	.max_id_bytes = 256,
	.max_text_bytes = 1024,
	.max_topics = 1024,
	.max_redirect_targets = 64,
	.max_list_items = 1024,
	.max_json_depth = 64,
};

/* ---- JSON syntax check ---------------------------------------------- */

typedef struct jscan {
	const unsigned char *start, *p, *end;
	unsigned depth, max_depth;
	const char *why;
} jscan;

static int jfail(jscan *s, const char *why)
{
	if (!s->why)
		s->why = why;
	return -1;
}

static void jws(jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int is_cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t avail)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 0;
	if (avail < n)
		return 0;
	if (c == 0xE0)
		lo = 0xA0; /* overlong */
	else if (c == 0xED)
		hi = 0x9F; /* surrogates */
	else if (c == 0xF0)
		lo = 0x90; /* overlong */
	else if (c == 0xF4)
		hi = 0x8F; /* above U+10FFFF */
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (!is_cont(p[i]))
			return 0;
	return n;
}

static int is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int jstring(jscan *s)
{
	s->p++; /* opening quote */
	while (s->p < s->end) {
		unsigned char c = *s->p;

		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return jfail(s, "control character in string");
		if (c == '\\') {
			if (s->end - s->p < 2)
				break;
			c = s->p[1];
			if (c == 'u') {
				if (s->end - s->p < 6)
					return jfail(s, "short \\u escape");
				for (int i = 2; i < 6; i++)
					if (!is_hex(s->p[i]))
						return jfail(s, "bad \\u escape");
				s->p += 6;
			} else if (c && strchr("\"\\/bfnrt", c)) {
				s->p += 2;
			} else {
				return jfail(s, "bad escape");
			}
			continue;
		}
		if (c < 0x80) {
			s->p++;
			continue;
		}
		size_t n = utf8_len(s->p, (size_t)(s->end - s->p));
		if (!n)
			return jfail(s, "invalid UTF-8");
		s->p += n;
	}
	return jfail(s, "unterminated string");
}

static int jdigits(jscan *s)
{
	if (s->p >= s->end || !is_digit(*s->p))
		return jfail(s, "digit expected");
	while (s->p < s->end && is_digit(*s->p))
		s->p++;
	return 0;
}

static int jnumber(jscan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p >= s->end)
		return jfail(s, "digit expected");
	if (*s->p == '0')
		s->p++;
	else if (jdigits(s) < 0)
		return -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (jdigits(s) < 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (jdigits(s) < 0)
			return -1;
	}
	return 0;
}

static int jliteral(jscan *s, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
		return jfail(s, "unexpected character");
	s->p += n;
	return 0;
}

static int jvalue(jscan *s);

static int jcontainer(jscan *s, int object)
{
	unsigned char close = object ? '}' : ']';

	if (++s->depth > s->max_depth)
		return jfail(s, "nested too deep");
	s->p++;
	jws(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		s->depth--;
		return 0;
	}
	for (;;) {
		if (object) {
			if (s->p >= s->end || *s->p != '"')
				return jfail(s, "member name expected");
			if (jstring(s) < 0)
				return -1;
			jws(s);
			if (s->p >= s->end || *s->p != ':')
				return jfail(s, "':' expected");
			s->p++;
			jws(s);
		}
		if (jvalue(s) < 0)
			return -1;
		jws(s);
		if (s->p >= s->end)
			return jfail(s, object ? "unterminated object" : "unterminated array");
		if (*s->p == close) {
			s->p++;
			s->depth--;
			return 0;
		}
		if (*s->p != ',')
			return jfail(s, object ? "',' or '}' expected" : "',' or ']' expected");
		s->p++;
		jws(s);
	}
}

static int jvalue(jscan *s)
{
	if (s->p >= s->end)
		return jfail(s, "value expected");
	switch (*s->p) {
	case '{': return jcontainer(s, 1);
	case '[': return jcontainer(s, 0);
	case '"': return jstring(s);
	case 't': return jliteral(s, "true");
	case 'f': return jliteral(s, "false");
	case 'n': return jliteral(s, "null");
	default:
		if (*s->p == '-' || is_digit(*s->p))
			return jnumber(s);
		return jfail(s, "unexpected character");
	}
}

int kaa__json_check(const char *str, size_t len, unsigned max_depth, size_t *err_off,
		    const char **why)
{
	jscan s = {0};

	s.start = s.p = (const unsigned char *)(str ? str : "");
	s.end = s.p + (str ? len : 0);
	s.max_depth = max_depth;
	jws(&s);
	if (s.p >= s.end) {
		jfail(&s, "empty");
	} else if (jvalue(&s) == 0) {
		jws(&s);
		if (s.p == s.end)
			return KAA_OK;
		jfail(&s, "trailing characters");
	}
	if (err_off)
		*err_off = (size_t)(s.p - s.start);
	if (why)
		*why = s.why;
	return KAA_ERR_INVAL;
}

/* ---- errors ------------------------------------------------------------ */

int kaa__frame_error_set(kaa__frame_error *e, int err, code_t code, uint64_t request_id,
			 const char *field, const char *fmt, ...)
{
	va_list ap;

	if (!e)
		return err;
	memset(e, 0, sizeof(*e));
	e->err = err;
	e->code = code;
	e->request_id = request_id;
	if (field)
		snprintf(e->field, sizeof(e->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return err;
}

void kaa__frame_error_to_frame(const kaa__frame_error *e, frame_t *f,
			       Kaa__Endpoint__V1__Error *body)
{
	kaa__endpoint__v1__frame__init(f);
	kaa__endpoint__v1__error__init(body);
	f->protocol_version = KAA__PROTOCOL_VERSION;
	f->request_id = e->request_id;
	f->body_case = KAA__ENDPOINT__V1__FRAME__BODY_ERROR;
	f->error = body;
	body->code = e->code;
	body->message = (char *)e->message;
	body->request_id = e->request_id;
	body->field = (char *)e->field;
	body->index = e->has_index ? e->index : 0;
	if (e->code == C_VERSION)
		body->supported_version = KAA__PROTOCOL_VERSION;
}

int kaa__frame_encode_error(const kaa__frame_error *e, uint8_t **out, size_t *len)
{
	frame_t f;
	Kaa__Endpoint__V1__Error body;

	if (!e)
		return KAA_ERR_INVAL;
	kaa__frame_error_to_frame(e, &f, &body);
	return kaa__frame_encode(&f, out, len);
}

/* ---- encode / free ------------------------------------------------------ */

int kaa__frame_encode(const frame_t *f, uint8_t **out, size_t *len)
{
	if (!f || !out || !len)
		return KAA_ERR_INVAL;
	*out = NULL;
	*len = 0;
	if (!protobuf_c_message_check(&f->base))
		return KAA_ERR_INVAL;
	size_t n = kaa__endpoint__v1__frame__get_packed_size(f);
	uint8_t *b = malloc(n ? n : 1);
	if (!b)
		return KAA_ERR_NOMEM;
	if (kaa__endpoint__v1__frame__pack(f, b) != n) {
		free(b);
		return KAA_ERR_INTERNAL;
	}
	*out = b;
	*len = n;
	return KAA_OK;
}

void kaa__frame_free(frame_t *f)
{
	if (f)
		kaa__endpoint__v1__frame__free_unpacked(f, NULL);
}

/* ---- decode ----------------------------------------------------------- */

/* Reads a varint; 0 on success. */
static int wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;

	for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -1;
}

/* Best effort: the top-level request_id (field 2, varint) of bytes that may
 * not decode as a whole. 0 when it cannot be read. */
static uint64_t scan_request_id(const uint8_t *buf, size_t len)
{
	const uint8_t *p = buf, *end = buf + len;
	uint64_t key, v;

	while (p < end) {
		if (wire_varint(&p, end, &key) < 0)
			return 0;
		switch (key & 7) {
		case 0:
			if (wire_varint(&p, end, &v) < 0)
				return 0;
			if (key >> 3 == 2)
				return v;
			break;
		case 1:
			if (end - p < 8)
				return 0;
			p += 8;
			break;
		case 2:
			if (wire_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return 0;
			p += v;
			break;
		case 5:
			if (end - p < 4)
				return 0;
			p += 4;
			break;
		default: return 0;
		}
	}
	return 0;
}

typedef struct vctx {
	const kaa__frame_limits *lim;
	kaa__frame_error *err;
	uint64_t request_id;
	char field[96];
} vctx;

/* Formats the field path "prefix.name" or "prefix.name[idx]" into c->field. */
static const char *fld(vctx *c, const char *name, long idx)
{
	if (idx >= 0)
		snprintf(c->field, sizeof(c->field), "%s[%ld]", name, idx);
	else
		snprintf(c->field, sizeof(c->field), "%s", name);
	return c->field;
}

static int fail(vctx *c, int err, code_t code, const char *name, long idx, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Records the error for field name[idx]; message "field: <fmt>". */
static int fail(vctx *c, int err, code_t code, const char *name, long idx, const char *fmt, ...)
{
	const char *f = fld(c, name, idx);
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kaa__frame_error_set(c->err, err, code, c->request_id, f, "%s: %s", f, msg);
	if (c->err && idx >= 0) {
		c->err->has_index = true;
		c->err->index = (uint32_t)idx;
	}
	return err;
}

static int too_big(vctx *c, const char *name, long idx, size_t have, size_t max)
{
	return fail(c, KAA_ERR_TOO_BIG, C_TOO_BIG, name, idx, "%zu bytes, limit %zu", have, max);
}

static int too_many(vctx *c, const char *name, size_t have, size_t max)
{
	return fail(c, KAA_ERR_TOO_BIG, C_TOO_BIG, name, -1, "%zu elements, limit %zu", have, max);
}

static int missing(vctx *c, const char *name, long idx)
{
	return fail(c, KAA_ERR_INVAL, C_INVALID, name, idx, "required");
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

/* A plain string field: at most max bytes, valid UTF-8 (proto3 says so,
 * and protobuf-c does not check: a token or name that is not text would
 * otherwise reach the stores and logs); non-empty when required. */
static int str(vctx *c, const char *s, size_t max, const char *name, long idx, int required)
{
	size_t n = slen(s);

	if (n > max)
		return too_big(c, name, idx, n, max);
	if (required && n == 0)
		return missing(c, name, idx);
	for (size_t i = 0; i < n;) {
		const unsigned char *p = (const unsigned char *)s + i;
		size_t l = *p < 0x80 ? 1 : utf8_len(p, n - i);
		if (l == 0)
			return fail(c, KAA_ERR_INVAL, C_INVALID, name, idx,
				    "not valid UTF-8 at byte %zu", i);
		i += l;
	}
	return KAA_OK;
}

/* A JSON field: at most max bytes, valid JSON; empty only when optional. */
static int json(vctx *c, const char *s, size_t max, const char *name, long idx, int required,
		code_t bad)
{
	size_t n = slen(s), off = 0;
	const char *why = NULL;

	if (n > max)
		return too_big(c, name, idx, n, max);
	if (n == 0 && !required)
		return KAA_OK;
	if (kaa__json_check(s, n, c->lim->max_json_depth, &off, &why) != KAA_OK)
		return fail(c, KAA_ERR_INVAL, bad, name, idx, "invalid JSON: %s at byte %zu",
			    why ? why : "syntax error", off);
	return KAA_OK;
}

#define TRY(x)                      \
	do {                        \
		int rc_ = (x);      \
		if (rc_ != KAA_OK)  \
			return rc_; \
	} while (0)

#define NEED(c, ptr, name)                           \
	do {                                         \
		if (!(ptr))                          \
			return missing(c, name, -1); \
	} while (0)

static int v_config(vctx *c, const char *pfx, int rcase, Kaa__Endpoint__V1__ConfigUpToDate *u,
		    Kaa__Endpoint__V1__ConfigDocument *d, Kaa__Endpoint__V1__ConfigPatch *p)
{
	const kaa__frame_limits *L = c->lim;
	char name[64];

	switch (rcase) {
	case 1:
		snprintf(name, sizeof(name), "%s.up_to_date", pfx);
		NEED(c, u, name);
		snprintf(name, sizeof(name), "%s.up_to_date.hash", pfx);
		return str(c, u->hash, L->max_id_bytes, name, -1, 0);
	case 2:
		snprintf(name, sizeof(name), "%s.full", pfx);
		NEED(c, d, name);
		snprintf(name, sizeof(name), "%s.full.json", pfx);
		TRY(json(c, d->json, L->max_body_bytes, name, -1, 1, C_INVALID));
		snprintf(name, sizeof(name), "%s.full.hash", pfx);
		return str(c, d->hash, L->max_id_bytes, name, -1, 0);
	case 3:
		snprintf(name, sizeof(name), "%s.patch", pfx);
		NEED(c, p, name);
		snprintf(name, sizeof(name), "%s.patch.patch_json", pfx);
		TRY(json(c, p->patch_json, L->max_body_bytes, name, -1, 1, C_INVALID));
		snprintf(name, sizeof(name), "%s.patch.base_hash", pfx);
		TRY(str(c, p->base_hash, L->max_id_bytes, name, -1, 0));
		snprintf(name, sizeof(name), "%s.patch.new_hash", pfx);
		return str(c, p->new_hash, L->max_id_bytes, name, -1, 0);
	default: snprintf(name, sizeof(name), "%s.result", pfx); return missing(c, name, -1);
	}
}

static int validate(vctx *c, const frame_t *f)
{
	const kaa__frame_limits *L = c->lim;
	size_t i;

	switch (f->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO: {
		const Kaa__Endpoint__V1__Hello *m = f->hello;
		NEED(c, m, "hello");
		TRY(str(c, m->application_token, L->max_token_bytes, "hello.application_token", -1,
			1));
		if (m->public_key.len > L->max_public_key_bytes)
			return too_big(c, "hello.public_key", -1, m->public_key.len,
				       L->max_public_key_bytes);
		if (m->public_key.len == 0)
			return missing(c, "hello.public_key", -1);
		TRY(str(c, m->endpoint_access_token, L->max_token_bytes,
			"hello.endpoint_access_token", -1, 0));
		TRY(str(c, m->sdk_profile_id, L->max_id_bytes, "hello.sdk_profile_id", -1, 0));
		TRY(str(c, m->sdk_version, L->max_id_bytes, "hello.sdk_version", -1, 0));
		if (m->proof.len > KAA__PROOF_MAX_BYTES)
			return too_big(c, "hello.proof", -1, m->proof.len, KAA__PROOF_MAX_BYTES);
		return json(c, m->client_profile_json, L->max_profile_bytes,
			    "hello.client_profile_json", -1, 0, C_PROFILE);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_CHALLENGE:
		NEED(c, f->challenge, "challenge");
		if (f->challenge->nonce.len != KAA__NONCE_BYTES)
			return fail(c, KAA_ERR_INVAL, C_INVALID, "challenge.nonce", -1,
				    "nonce: %zu bytes, must be %d", f->challenge->nonce.len,
				    KAA__NONCE_BYTES);
		return KAA_OK;
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO_ACK: {
		const Kaa__Endpoint__V1__HelloAck *m = f->hello_ack;
		NEED(c, m, "hello_ack");
		TRY(str(c, m->endpoint_key_hash, L->max_id_bytes, "hello_ack.endpoint_key_hash", -1,
			0));
		return str(c, m->session_id, L->max_id_bytes, "hello_ack.session_id", -1, 0);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_SESSION_RESUME: {
		const Kaa__Endpoint__V1__SessionResume *m = f->session_resume;
		NEED(c, m, "session_resume");
		TRY(str(c, m->session_id, L->max_id_bytes, "session_resume.session_id", -1, 1));
		if (m->n_positions > L->max_topics)
			return too_many(c, "session_resume.positions", m->n_positions,
					L->max_topics);
		for (i = 0; i < m->n_positions; i++) {
			NEED(c, m->positions[i], "session_resume.positions");
			TRY(str(c, m->positions[i]->topic_id, L->max_id_bytes,
				"session_resume.positions.topic_id", (long)i, 0));
		}
		return KAA_OK;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_ACK: NEED(c, f->ack, "ack"); return KAA_OK;
	case KAA__ENDPOINT__V1__FRAME__BODY_ERROR: {
		const Kaa__Endpoint__V1__Error *m = f->error;
		NEED(c, m, "error");
		TRY(str(c, m->message, L->max_text_bytes, "error.message", -1, 0));
		TRY(str(c, m->field, L->max_text_bytes, "error.field", -1, 0));
		return str(c, m->json_path, L->max_text_bytes, "error.json_path", -1, 0);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_PING:
		NEED(c, f->ping, "ping");
		if (f->ping->payload.len > L->max_id_bytes)
			return too_big(c, "ping.payload", -1, f->ping->payload.len,
				       L->max_id_bytes);
		return KAA_OK;
	case KAA__ENDPOINT__V1__FRAME__BODY_PONG:
		NEED(c, f->pong, "pong");
		if (f->pong->payload.len > L->max_id_bytes)
			return too_big(c, "pong.payload", -1, f->pong->payload.len,
				       L->max_id_bytes);
		return KAA_OK;
	case KAA__ENDPOINT__V1__FRAME__BODY_REDIRECT: {
		const Kaa__Endpoint__V1__Redirect *m = f->redirect;
		NEED(c, m, "redirect");
		if (m->n_targets > L->max_redirect_targets)
			return too_many(c, "redirect.targets", m->n_targets,
					L->max_redirect_targets);
		for (i = 0; i < m->n_targets; i++) {
			NEED(c, m->targets[i], "redirect.targets");
			TRY(str(c, m->targets[i]->host, L->max_id_bytes, "redirect.targets.host",
				(long)i, 1));
			TRY(str(c, m->targets[i]->url, L->max_token_bytes, "redirect.targets.url",
				(long)i, 0));
			if (m->targets[i]->port == 0 || m->targets[i]->port > 65535)
				return fail(c, KAA_ERR_INVAL, C_INVALID, "redirect.targets.port",
					    (long)i, "port %u out of range", m->targets[i]->port);
		}
		return KAA_OK;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE:
		NEED(c, f->profile_update, "profile_update");
		return json(c, f->profile_update->client_profile_json, L->max_profile_bytes,
			    "profile_update.client_profile_json", -1, 1, C_PROFILE);
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_REQUEST:
		NEED(c, f->config_sync_request, "config_sync_request");
		return str(c, f->config_sync_request->config_hash, L->max_id_bytes,
			   "config_sync_request.config_hash", -1, 0);
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_RESPONSE: {
		const Kaa__Endpoint__V1__ConfigSyncResponse *m = f->config_sync_response;
		NEED(c, m, "config_sync_response");
		return v_config(c, "config_sync_response", (int)m->result_case,
				m->result_case == 1 ? m->up_to_date : NULL,
				m->result_case == 2 ? m->full : NULL,
				m->result_case == 3 ? m->patch : NULL);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_PUSH: {
		const Kaa__Endpoint__V1__ConfigPush *m = f->config_push;
		NEED(c, m, "config_push");
		return v_config(c, "config_push", (int)m->result_case,
				m->result_case == 1 ? m->up_to_date : NULL,
				m->result_case == 2 ? m->full : NULL,
				m->result_case == 3 ? m->patch : NULL);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_TOPICS: {
		const Kaa__Endpoint__V1__NotificationTopics *m = f->notification_topics;
		NEED(c, m, "notification_topics");
		if (m->n_topics > L->max_topics)
			return too_many(c, "notification_topics.topics", m->n_topics,
					L->max_topics);
		for (i = 0; i < m->n_topics; i++) {
			NEED(c, m->topics[i], "notification_topics.topics");
			TRY(str(c, m->topics[i]->topic_id, L->max_id_bytes,
				"notification_topics.topics.topic_id", (long)i, 1));
			TRY(str(c, m->topics[i]->name, L->max_id_bytes,
				"notification_topics.topics.name", (long)i, 0));
		}
		return KAA_OK;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_SUBSCRIBE:
		NEED(c, f->subscribe, "subscribe");
		return str(c, f->subscribe->topic_id, L->max_id_bytes, "subscribe.topic_id", -1, 1);
	case KAA__ENDPOINT__V1__FRAME__BODY_UNSUBSCRIBE:
		NEED(c, f->unsubscribe, "unsubscribe");
		return str(c, f->unsubscribe->topic_id, L->max_id_bytes, "unsubscribe.topic_id", -1,
			   1);
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION: {
		const Kaa__Endpoint__V1__Notification *m = f->notification;
		NEED(c, m, "notification");
		TRY(str(c, m->topic_id, L->max_id_bytes, "notification.topic_id", -1, 0));
		return json(c, m->body_json, L->max_body_bytes, "notification.body_json", -1, 1,
			    C_INVALID);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_ACK:
		NEED(c, f->notification_ack, "notification_ack");
		return str(c, f->notification_ack->topic_id, L->max_id_bytes,
			   "notification_ack.topic_id", -1, 0);
	case KAA__ENDPOINT__V1__FRAME__BODY_LOG_UPLOAD: {
		const Kaa__Endpoint__V1__LogUpload *m = f->log_upload;
		NEED(c, m, "log_upload");
		if (m->batch_id == 0)
			return missing(c, "log_upload.batch_id", -1);
		if (m->n_records_json > L->max_log_records)
			return too_many(c, "log_upload.records_json", m->n_records_json,
					L->max_log_records);
		if (m->n_records_json == 0)
			return missing(c, "log_upload.records_json", -1);
		for (i = 0; i < m->n_records_json; i++)
			TRY(json(c, m->records_json[i], L->max_log_record_bytes,
				 "log_upload.records_json", (long)i, 1, C_LOG_RECORD));
		return KAA_OK;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_LOG_DELIVERY_STATUS:
		NEED(c, f->log_delivery_status, "log_delivery_status");
		return str(c, f->log_delivery_status->reason, L->max_text_bytes,
			   "log_delivery_status.reason", -1, 0);
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT: {
		const Kaa__Endpoint__V1__Event *m = f->event;
		NEED(c, m, "event");
		TRY(str(c, m->event_class_fqn, L->max_id_bytes, "event.event_class_fqn", -1, 1));
		TRY(str(c, m->target_endpoint_key_hash, L->max_id_bytes,
			"event.target_endpoint_key_hash", -1, 0));
		TRY(str(c, m->source_endpoint_key_hash, L->max_id_bytes,
			"event.source_endpoint_key_hash", -1, 0));
		return json(c, m->body_json, L->max_body_bytes, "event.body_json", -1, 1,
			    C_INVALID);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK:
		NEED(c, f->event_ack, "event_ack");
		return str(c, f->event_ack->source_endpoint_key_hash, L->max_id_bytes,
			   "event_ack.source_endpoint_key_hash", -1, 0);
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_REQUEST: {
		const Kaa__Endpoint__V1__EventListenersRequest *m = f->event_listeners_request;
		NEED(c, m, "event_listeners_request");
		if (m->n_event_class_fqns > L->max_list_items)
			return too_many(c, "event_listeners_request.event_class_fqns",
					m->n_event_class_fqns, L->max_list_items);
		if (m->n_event_class_fqns == 0)
			return missing(c, "event_listeners_request.event_class_fqns", -1);
		for (i = 0; i < m->n_event_class_fqns; i++)
			TRY(str(c, m->event_class_fqns[i], L->max_id_bytes,
				"event_listeners_request.event_class_fqns", (long)i, 1));
		return KAA_OK;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_RESPONSE: {
		const Kaa__Endpoint__V1__EventListenersResponse *m = f->event_listeners_response;
		NEED(c, m, "event_listeners_response");
		if (m->n_endpoint_key_hashes > L->max_list_items)
			return too_many(c, "event_listeners_response.endpoint_key_hashes",
					m->n_endpoint_key_hashes, L->max_list_items);
		for (i = 0; i < m->n_endpoint_key_hashes; i++)
			TRY(str(c, m->endpoint_key_hashes[i], L->max_id_bytes,
				"event_listeners_response.endpoint_key_hashes", (long)i, 1));
		return KAA_OK;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST: {
		const Kaa__Endpoint__V1__OwnerAttachRequest *m = f->owner_attach_request;
		NEED(c, m, "owner_attach_request");
		if (m->credential_case ==
		    KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER) {
			NEED(c, m->owner, "owner_attach_request.owner");
			TRY(str(c, m->owner->owner_external_id, L->max_id_bytes,
				"owner_attach_request.owner.owner_external_id", -1, 1));
			TRY(str(c, m->owner->token, L->max_token_bytes,
				"owner_attach_request.owner.token", -1, 1));
			return str(c, m->owner->verifier_token, L->max_id_bytes,
				   "owner_attach_request.owner.verifier_token", -1, 0);
		}
		if (m->credential_case ==
		    KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_ENDPOINT_ACCESS_TOKEN)
			return str(c, m->endpoint_access_token, L->max_token_bytes,
				   "owner_attach_request.endpoint_access_token", -1, 1);
		return missing(c, "owner_attach_request.credential", -1);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_RESPONSE: {
		const Kaa__Endpoint__V1__OwnerAttachResponse *m = f->owner_attach_response;
		NEED(c, m, "owner_attach_response");
		TRY(str(c, m->reason, L->max_text_bytes, "owner_attach_response.reason", -1, 0));
		TRY(str(c, m->owner_id, L->max_id_bytes, "owner_attach_response.owner_id", -1, 0));
		return str(c, m->endpoint_key_hash, L->max_id_bytes,
			   "owner_attach_response.endpoint_key_hash", -1, 0);
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_DETACH:
		NEED(c, f->owner_detach, "owner_detach");
		return str(c, f->owner_detach->endpoint_key_hash, L->max_id_bytes,
			   "owner_detach.endpoint_key_hash", -1, 0);
	case KAA__ENDPOINT__V1__FRAME__BODY_ATTACH_NOTIFICATION:
		NEED(c, f->attach_notification, "attach_notification");
		TRY(str(c, f->attach_notification->owner_id, L->max_id_bytes,
			"attach_notification.owner_id", -1, 0));
		return str(c, f->attach_notification->endpoint_key_hash, L->max_id_bytes,
			   "attach_notification.endpoint_key_hash", -1, 0);
	case KAA__ENDPOINT__V1__FRAME__BODY_DETACH_NOTIFICATION:
		NEED(c, f->detach_notification, "detach_notification");
		return str(c, f->detach_notification->endpoint_key_hash, L->max_id_bytes,
			   "detach_notification.endpoint_key_hash", -1, 0);
	default:
		/* Empty, or a kind newer than this code (decoded as unknown field). */
		return fail(c, KAA_ERR_INVAL, C_UNSUPPORTED, "body", -1,
			    "empty or unknown message kind");
	}
}

/*
 * Drops the unknown fields of m and of its submessages (the compatibility
 * rule: they are ignored, so a re-encoded frame carries only known fields).
 * Returns -1 when one has field number 0, which protobuf-c accepts when the
 * key is a non-canonical varint but is not valid protobuf.
 */
int kaa__proto_strip_unknown(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	char *base = (char *)m;
	int bad = 0;

	for (unsigned i = 0; i < m->n_unknown_fields; i++) {
		if (m->unknown_fields[i].tag == 0)
			bad = 1;
		free(m->unknown_fields[i].data);
	}
	free(m->unknown_fields);
	m->unknown_fields = NULL;
	m->n_unknown_fields = 0;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];

		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(size_t *)(base + fd->quantifier_offset);
			ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + fd->offset);

			for (size_t j = 0; j < n; j++)
				if (arr[j] && kaa__proto_strip_unknown(arr[j]) < 0)
					bad = 1;
			continue;
		}
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
		    *(uint32_t *)(base + fd->quantifier_offset) != fd->id)
			continue;
		ProtobufCMessage *sub = *(ProtobufCMessage **)(base + fd->offset);
		if (sub && kaa__proto_strip_unknown(sub) < 0)
			bad = 1;
	}
	return bad ? -1 : 0;
}

int kaa__frame_decode(const uint8_t *buf, size_t len, const kaa__frame_limits *lim, frame_t **out,
		      kaa__frame_error *err)
{
	vctx c = {0};
	frame_t *f;
	int rc;

	c.lim = lim ? lim : &kaa__frame_limits_default;
	c.err = err;
	if (err)
		memset(err, 0, sizeof(*err));
	if (!out)
		return kaa__frame_error_set(err, KAA_ERR_INVAL, C_INTERNAL, 0, NULL, "no output");
	*out = NULL;
	if (!buf && len)
		return kaa__frame_error_set(err, KAA_ERR_INVAL, C_INTERNAL, 0, NULL, "no input");
	if (len > c.lim->max_frame_bytes)
		return kaa__frame_error_set(
			err, KAA_ERR_TOO_BIG, C_TOO_BIG, scan_request_id(buf, len), "frame",
			"frame: %zu bytes, limit %zu", len, c.lim->max_frame_bytes);
	f = kaa__endpoint__v1__frame__unpack(NULL, len, buf ? buf : (const uint8_t *)"");
	if (!f)
		return kaa__frame_error_set(err, KAA_ERR_PROTOCOL, C_BAD_FRAME,
					    scan_request_id(buf, len), "frame",
					    "frame: %zu bytes do not decode as a Frame", len);
	c.request_id = f->request_id;
	if (kaa__proto_strip_unknown(&f->base) < 0) {
		kaa__frame_free(f);
		return kaa__frame_error_set(err, KAA_ERR_PROTOCOL, C_BAD_FRAME, c.request_id,
					    "frame", "frame: field number 0");
	}
	if (f->protocol_version == 0 || f->protocol_version > KAA__PROTOCOL_VERSION) {
		rc = kaa__frame_error_set(
			err, KAA_ERR_PROTOCOL, C_VERSION, c.request_id, "protocol_version",
			"protocol_version %u unsupported (this side speaks 1..%u)",
			f->protocol_version, KAA__PROTOCOL_VERSION);
		kaa__frame_free(f);
		return rc;
	}
	rc = validate(&c, f);
	if (rc != KAA_OK) {
		kaa__frame_free(f);
		return rc;
	}
	*out = f;
	return KAA_OK;
}
