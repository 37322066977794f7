/*
 * ep_query.c - query strings and cursors of the endpoint routes
 * (ep_query.h).
 */
#include "control/ep_query.h"

#include "base/base64.h"
#include "control/router.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The value of name in query, percent-decoded into out: 1 found, 0 absent,
 * -1 present but undecodable or over cap. A parameter given twice is an
 * error too (-1): which one counts would be a guess. */
static int param(const char *query, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	int found = 0;
	for (const char *p = query; p && *p;) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			if (found || !kaa__percent_decode(p + n + 1, len - n - 1, out, cap))
				return -1;
			/* '+' is a space in a query (HTML forms) */
			for (char *c = out; *c; c++)
				if (*c == '+')
					*c = ' ';
			found = 1;
		}
		p = amp ? amp + 1 : NULL;
	}
	return found;
}

static int fail(kaa__epq_error *e, const char *p, const char *msg)
{
	e->param = p;
	e->message = msg;
	return -1;
}

static bool parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	if (!*s || strlen(s) > 20 || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	long long v = strtoll(s, &end, 10);
	if (*end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static int parse_limit(const char *query, int *limit, kaa__epq_error *e)
{
	char v[16];
	int64_t n;
	*limit = KAA_EPQ_LIMIT_DEFAULT;
	int r = param(query, "limit", v, sizeof(v));
	if (r == 0)
		return 0;
	if (r < 0 || !parse_i64(v, 1, KAA_EPQ_LIMIT_MAX, &n))
		return fail(e, "limit", "limit must be 1..1000");
	*limit = (int)n;
	return 0;
}

bool kaa__epq_key_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > KAA_EP_KEY_HASH_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+' || c == '/' ||
			  c == '=' || c == '.';
		if (!ok)
			return false;
	}
	return true;
}

/* A key hash parameter: 0 absent or valid, -1 invalid. */
static int key_param(const char *query, const char *name, char *out, kaa__epq_error *e,
		     const char *msg)
{
	int r = param(query, name, out, KAA_EP_KEY_HASH_MAX + 1);
	if (r == 0) {
		out[0] = '\0';
		return 0;
	}
	if (r < 0 || !kaa__epq_key_valid(out)) {
		out[0] = '\0';
		return fail(e, name, msg);
	}
	return 0;
}

int kaa__epq_list_parse(const char *query, kaa__epq_list *q, kaa__epq_error *e)
{
	char v[KAA_EPQ_FILTER_MAX + 1], err[128];
	int64_t n;
	int r;
	memset(q, 0, sizeof(*q));
	q->online = -1;
	if (parse_limit(query, &q->limit, e) != 0 ||
	    key_param(query, "cursor", q->after, e, "not a cursor of this list") != 0)
		return -1;
	r = param(query, "group", v, 32);
	if (r < 0 || (r > 0 && !parse_i64(v, 1, INT64_MAX, &n)))
		return fail(e, "group", "group must be a group id");
	if (r > 0)
		q->group_id = n;
	r = param(query, "online", v, 8);
	if (r > 0 && strcmp(v, "true") == 0)
		q->online = 1;
	else if (r > 0 && strcmp(v, "false") == 0)
		q->online = 0;
	else if (r != 0)
		return fail(e, "online", "online must be true or false");
	r = param(query, "owner", q->owner, sizeof(q->owner));
	if (r < 0 || (r > 0 && !q->owner[0])) {
		q->owner[0] = '\0';
		return fail(e, "owner", "owner must be 1..256 bytes");
	}
	r = param(query, "filter", v, sizeof(v));
	if (r < 0)
		return fail(e, "filter", "filter must be at most 4096 bytes");
	if (r > 0 && kaa__filter_compile(v, strlen(v), &q->filter, err, sizeof(err)) != 0) {
		q->filter = NULL;
		return fail(e, "filter", "filter is not a valid profile filter");
	}
	return 0;
}

void kaa__epq_list_free(kaa__epq_list *q)
{
	if (!q)
		return;
	kaa__filter_free(q->filter);
	q->filter = NULL;
}

/* "<received_ms>:<index>:<key>:<batch>" */
static bool decode_log_cursor(const char *c, kaa__epq_logs *q)
{
	char raw[KAA_EPQ_CURSOR_MAX];
	long n = kaa__b64_decode(c, strlen(c), raw, sizeof(raw) - 1, KAA__B64_URL);
	if (n <= 0 || memchr(raw, '\0', (size_t)n))
		return false;
	raw[n] = '\0';
	char *f[3], *p = raw;
	for (int i = 0; i < 3; i++) {
		f[i] = p;
		p = strchr(p, ':');
		if (!p)
			return false;
		*p++ = '\0';
	}
	int64_t ms, idx;
	size_t klen = strlen(f[2]), blen = strlen(p);
	if (!parse_i64(f[0], INT64_MIN, INT64_MAX, &ms) || !parse_i64(f[1], 0, INT32_MAX, &idx) ||
	    klen > KAA_EP_KEY_HASH_MAX || !kaa__epq_key_valid(f[2]) || blen == 0 ||
	    blen > KAA_EP_BATCH_ID_MAX)
		return false;
	for (size_t i = 0; i < blen; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return false;
	memcpy(q->after_key, f[2], klen + 1);
	memcpy(q->after_batch, p, blen + 1);
	q->after = (kaa__ep_log_pos){.received_ms = ms,
				     .key_hash = q->after_key,
				     .batch_id = q->after_batch,
				     .index = idx};
	q->has_after = true;
	return true;
}

int kaa__epq_logs_parse(const char *query, kaa__epq_logs *q, kaa__epq_error *e)
{
	char v[KAA_EPQ_CURSOR_MAX];
	int r;
	memset(q, 0, sizeof(*q));
	q->from_ms = 0;
	q->to_ms = INT64_MAX;
	if (parse_limit(query, &q->limit, e) != 0 ||
	    key_param(query, "endpoint", q->endpoint, e, "endpoint must be a key hash") != 0)
		return -1;
	r = param(query, "from", v, 32);
	if (r < 0 || (r > 0 && !parse_i64(v, 0, INT64_MAX, &q->from_ms)))
		return fail(e, "from", "from must be milliseconds since the epoch");
	r = param(query, "to", v, 32);
	if (r < 0 || (r > 0 && !parse_i64(v, 0, INT64_MAX, &q->to_ms)))
		return fail(e, "to", "to must be milliseconds since the epoch");
	if (q->from_ms > q->to_ms)
		return fail(e, "to", "to must not be before from");
	r = param(query, "cursor", v, sizeof(v));
	if (r < 0 || (r > 0 && !decode_log_cursor(v, q))) {
		q->has_after = false;
		return fail(e, "cursor", "not a cursor of this list");
	}
	return 0;
}

int kaa__epq_log_cursor(const kaa__ep_log_pos *p, char *out, size_t cap)
{
	char raw[KAA_EPQ_CURSOR_MAX];
	int n = snprintf(raw, sizeof(raw), "%" PRId64 ":%" PRId64 ":%s:%s", p->received_ms,
			 p->index, p->key_hash, p->batch_id);
	if (n < 0 || (size_t)n >= sizeof(raw) || cap < KAA__B64_ENCODED_LEN((size_t)n) + 1)
		return -1;
	return kaa__b64_encode(raw, (size_t)n, out, cap, KAA__B64_URL) > 0 ? 0 : -1;
}
