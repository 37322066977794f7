#include "base/alloc.h"
#include "http/http_server.h"

#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MOD "http"

/* Empty lines tolerated before a request line (RFC 9112 2.2 asks for at
 * least one: some clients send CRLF after a POST body). */
#define MAX_LEADING_BLANKS 8
/* How long a connection is drained after an error response before it is
 * closed: closing with unread input would send a RST that can destroy the
 * response before the client has read it. Capped by the read timeout. */
#define LINGER_MS 2000
/* Pause of the listener after accept() failed for lack of resources. */
#define ACCEPT_BACKOFF_MS 100
#define ACCEPT_BATCH 64
#define IN_BUF_INITIAL 2048
/* An input buffer above this is released once it holds no pending bytes. */
#define IN_BUF_KEEP (16 * 1024)

static unsigned char lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive equality of a[0..alen) and the string b;
 * locale-independent, unlike strcasecmp. */
static bool ieq(const char *a, size_t alen, const char *b)
{
	size_t i;
	for (i = 0; i < alen; i++)
		if (b[i] == '\0' || lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return false;
	return b[i] == '\0';
}

/* RFC 9110 5.6.2 token characters. */
static bool is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* Characters of a request-target: visible ASCII. */
static bool is_target_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

/* field-value characters: VCHAR, SP, HTAB and obs-text; no CR, LF, NUL. */
static bool is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* ---- limits -------------------------------------------------------------- */

void kaa__http_limits_default(kaa__http_limits *l)
{
	l->max_header_bytes = KAA__HTTP_DEFAULT_MAX_HEADER_BYTES;
	l->max_body_bytes = KAA__HTTP_DEFAULT_MAX_BODY_BYTES;
	l->max_headers = KAA__HTTP_DEFAULT_MAX_HEADERS;
	l->max_connections = KAA__HTTP_DEFAULT_MAX_CONNECTIONS;
	l->workers = KAA__HTTP_DEFAULT_WORKERS;
	l->read_timeout_ms = KAA__HTTP_DEFAULT_READ_TIMEOUT_MS;
	l->idle_timeout_ms = KAA__HTTP_DEFAULT_IDLE_TIMEOUT_MS;
	l->write_timeout_ms = KAA__HTTP_DEFAULT_WRITE_TIMEOUT_MS;
}

static void limits_resolve(const kaa__http_limits *in, kaa__http_limits *out)
{
	kaa__http_limits d;

	kaa__http_limits_default(&d);
	if (!in) {
		*out = d;
		return;
	}
	*out = *in;
	if (!out->max_header_bytes)
		out->max_header_bytes = d.max_header_bytes;
	if (!out->max_body_bytes)
		out->max_body_bytes = d.max_body_bytes;
	if (!out->max_headers)
		out->max_headers = d.max_headers;
	if (!out->max_connections)
		out->max_connections = d.max_connections;
	if (!out->workers)
		out->workers = d.workers;
	if (!out->read_timeout_ms)
		out->read_timeout_ms = d.read_timeout_ms;
	if (!out->idle_timeout_ms)
		out->idle_timeout_ms = d.idle_timeout_ms;
	if (!out->write_timeout_ms)
		out->write_timeout_ms = d.write_timeout_ms;
}

/* The server's bounds keep the input buffer (header + body limit) and the
 * per-connection arrays within reason; the parser alone accepts any value. */
static const char *limits_invalid(const kaa__http_limits *l)
{
	if (l->max_header_bytes < 256 || l->max_header_bytes > 1024 * 1024)
		return "max_header_bytes";
	if (l->max_body_bytes > 1024u * 1024 * 1024)
		return "max_body_bytes";
	if (l->max_headers > 10000)
		return "max_headers";
	if (l->max_connections > 65536)
		return "max_connections";
	if (l->workers > 64)
		return "workers";
	if (l->read_timeout_ms < 0)
		return "read_timeout_ms";
	if (l->idle_timeout_ms < 0)
		return "idle_timeout_ms";
	if (l->write_timeout_ms < 0)
		return "write_timeout_ms";
	return NULL;
}

/* ---- request parsing ----------------------------------------------------- */

struct scan {
	size_t head_len; /* through the blank line ending the head */
	size_t need;     /* head_len + content_length once the head is complete */
	size_t n_headers;
	size_t line_off; /* request line */
	size_t method_len;
	size_t target_off;
	size_t target_len;
	size_t content_length;
	bool has_cl;
	int minor;
	unsigned hosts;
	bool conn_close;
	bool conn_keep_alive;
	bool expect_continue;
	int status;
	const char *reason;
};

static int fail(struct scan *sc, int err, int status, const char *reason)
{
	sc->status = status;
	sc->reason = reason;
	return err;
}

static int bad(struct scan *sc, const char *reason)
{
	return fail(sc, KAA_ERR_INVAL, 400, reason);
}

/* Finds the line starting at pos within buf[0..end): *eol is where its
 * content ends (before CR LF or LF), *next where the next line starts.
 * Returns false when no LF is there yet. */
static bool next_line(const char *buf, size_t end, size_t pos, size_t *eol, size_t *next)
{
	const char *lf = pos < end ? memchr(buf + pos, '\n', end - pos) : NULL;
	size_t e;

	if (!lf)
		return false;
	e = (size_t)(lf - buf);
	*next = e + 1;
	if (e > pos && buf[e - 1] == '\r')
		e--;
	*eol = e;
	return true;
}

/* Accepts origin-form ("/p?q"), asterisk-form and the absolute-form
 * ("http://host/p") that RFC 9112 3.2.2 requires servers to accept. */
static bool target_valid(const char *t, size_t n)
{
	size_t skip;

	if (t[0] == '/' || (n == 1 && t[0] == '*'))
		return true;
	if (n > 7 && ieq(t, 7, "http://"))
		skip = 7;
	else if (n > 8 && ieq(t, 8, "https://"))
		skip = 8;
	else
		return false;
	return t[skip] != '/' && t[skip] != '?';
}

/*
 * Validates the request line p[0..n). When !complete, p is a prefix of a
 * line still arriving: the result is INCOMPLETE unless the prefix already
 * cannot start a valid line, so garbage (a TLS handshake) is refused at
 * once instead of after the read timeout.
 */
static int parse_request_line(const char *p, size_t n, bool complete, struct scan *sc)
{
	static const char proto[] = "HTTP/";
	size_t i = 0, j, k;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == n && i > 0 && !complete)
		return KAA__HTTP_INCOMPLETE;
	if (i == 0 && n == 0 && !complete)
		return KAA__HTTP_INCOMPLETE;
	if (i == 0 || i == n || p[i] != ' ')
		return bad(sc, "malformed request line");
	sc->method_len = i;
	j = ++i;
	while (i < n && is_target_char((unsigned char)p[i]))
		i++;
	if (i == n && !complete)
		return KAA__HTTP_INCOMPLETE;
	if (i == j || i == n || p[i] != ' ')
		return bad(sc, "malformed request line");
	sc->target_off = j;
	sc->target_len = i - j;
	if (!target_valid(p + j, i - j))
		return bad(sc, "invalid request target");
	j = ++i;
	for (k = 0; k < 5; k++) {
		if (j + k == n)
			return complete ? bad(sc, "malformed request line") : KAA__HTTP_INCOMPLETE;
		if (p[j + k] != proto[k])
			return bad(sc, "malformed request line");
	}
	i = j + 5;
	if ((i < n && (p[i] < '0' || p[i] > '9')) || (i + 1 < n && p[i + 1] != '.') ||
	    (i + 2 < n && (p[i + 2] < '0' || p[i + 2] > '9')) || n > i + 3)
		return bad(sc, "malformed request line");
	if (n < i + 3)
		return complete ? bad(sc, "malformed request line") : KAA__HTTP_INCOMPLETE;
	if (!complete)
		return KAA__HTTP_INCOMPLETE;
	if (p[i] != '1')
		return fail(sc, KAA_ERR_PROTOCOL, 505, "HTTP version not supported");
	/* 1.x minor versions are compatible: answer anything above 1.0 as 1.1. */
	sc->minor = p[i + 2] == '0' ? 0 : 1;
	return KAA_OK;
}

static int parse_content_length(const char *v, size_t n, size_t max, struct scan *sc)
{
	size_t val = 0;
	bool big = false;

	if (n == 0)
		return bad(sc, "invalid Content-Length");
	for (size_t i = 0; i < n; i++) {
		unsigned d;
		if (v[i] < '0' || v[i] > '9')
			return bad(sc, "invalid Content-Length");
		d = (unsigned)(v[i] - '0');
		if (big)
			continue;
		if (val > (SIZE_MAX - d) / 10) {
			big = true;
			continue;
		}
		val = val * 10 + d;
		if (val > max)
			big = true;
	}
	if (big)
		return fail(sc, KAA_ERR_TOO_BIG, 413, "request body too large");
	/* Equal repeated values are allowed (RFC 9110 8.6); differing ones
	 * are how request smuggling starts. */
	if (sc->has_cl && sc->content_length != val)
		return bad(sc, "conflicting Content-Length");
	sc->has_cl = true;
	sc->content_length = val;
	return KAA_OK;
}

static void parse_connection(const char *v, size_t n, struct scan *sc)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;
		while (i < n && (is_ows(v[i]) || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && is_ows(v[e - 1]))
			e--;
		if (ieq(v + s, e - s, "close"))
			sc->conn_close = true;
		else if (ieq(v + s, e - s, "keep-alive"))
			sc->conn_keep_alive = true;
	}
}

static int header_semantics(const char *name, size_t nlen, const char *v, size_t vlen,
			    const kaa__http_limits *lim, struct scan *sc)
{
	if (ieq(name, nlen, "content-length"))
		return parse_content_length(v, vlen, lim->max_body_bytes, sc);
	if (ieq(name, nlen, "transfer-encoding"))
		return fail(sc, KAA_ERR_PROTOCOL, 501, "Transfer-Encoding is not supported");
	if (ieq(name, nlen, "host")) {
		if (++sc->hosts > 1)
			return bad(sc, "duplicate Host header");
	} else if (ieq(name, nlen, "connection")) {
		parse_connection(v, vlen, sc);
	} else if (ieq(name, nlen, "expect") && sc->minor >= 1) {
		/* RFC 9110 10.1.1: HTTP/1.0 expectations are ignored. */
		if (!ieq(v, vlen, "100-continue"))
			return fail(sc, KAA_ERR_PROTOCOL, 417, "unsupported Expect");
		sc->expect_continue = true;
	}
	return KAA_OK;
}

/*
 * Walks the head of buf[0..len). Run twice with the same input: first to
 * validate without allocating (cp and fields NULL), then, once the request
 * is known to be whole and valid, to cut the copy cp (same offsets as buf)
 * into NUL-terminated strings and fill fields.
 */
static int scan_head(const char *buf, size_t len, const kaa__http_limits *lim, struct scan *sc,
		     char *cp, kaa__http_header_field *fields)
{
	size_t end = len < lim->max_header_bytes ? len : lim->max_header_bytes;
	size_t pos = 0, eol, next;
	unsigned blanks = 0;
	int rc;

	for (;;) {
		if (!next_line(buf, end, pos, &eol, &next)) {
			size_t n = len - pos;
			if (len >= lim->max_header_bytes)
				return fail(sc, KAA_ERR_TOO_BIG, 414, "request line too long");
			if (n > 0 && buf[len - 1] == '\r')
				n--; /* its LF is still to come */
			return parse_request_line(buf + pos, n, false, sc);
		}
		if (eol > pos)
			break;
		if (++blanks > MAX_LEADING_BLANKS)
			return bad(sc, "too many empty lines");
		pos = next;
	}
	rc = parse_request_line(buf + pos, eol - pos, true, sc);
	if (rc != KAA_OK)
		return rc;
	sc->line_off = pos;
	sc->target_off += pos;
	if (cp) {
		cp[pos + sc->method_len] = '\0';
		cp[sc->target_off + sc->target_len] = '\0';
	}
	pos = next;

	for (;;) {
		size_t name_end, vs, ve;

		if (!next_line(buf, end, pos, &eol, &next)) {
			if (len >= lim->max_header_bytes)
				return fail(sc, KAA_ERR_TOO_BIG, 431, "request headers too large");
			return KAA__HTTP_INCOMPLETE;
		}
		if (eol == pos) {
			pos = next;
			break;
		}
		if (is_ows(buf[pos]))
			return bad(sc, "obsolete header line folding");
		name_end = pos;
		while (name_end < eol && is_tchar((unsigned char)buf[name_end]))
			name_end++;
		if (name_end == pos || name_end == eol || buf[name_end] != ':')
			return bad(sc, "malformed header line");
		vs = name_end + 1;
		while (vs < eol && is_ows(buf[vs]))
			vs++;
		ve = eol;
		while (ve > vs && is_ows(buf[ve - 1]))
			ve--;
		for (size_t i = vs; i < ve; i++)
			if (!is_field_char((unsigned char)buf[i]))
				return bad(sc, "invalid character in header value");
		if (sc->n_headers >= lim->max_headers)
			return fail(sc, KAA_ERR_TOO_BIG, 431, "too many request headers");
		rc = header_semantics(buf + pos, name_end - pos, buf + vs, ve - vs, lim, sc);
		if (rc != KAA_OK)
			return rc;
		if (cp) {
			cp[name_end] = '\0';
			cp[ve] = '\0';
			fields[sc->n_headers].name = cp + pos;
			fields[sc->n_headers].value = cp + vs;
		}
		sc->n_headers++;
		pos = next;
	}

	if (sc->minor >= 1 && sc->hosts == 0)
		return bad(sc, "missing Host header");
	sc->head_len = pos;
	if (sc->content_length > SIZE_MAX - pos)
		return fail(sc, KAA_ERR_TOO_BIG, 413, "request body too large");
	sc->need = pos + sc->content_length;
	return KAA_OK;
}

/* Splits the NUL-terminated target into path and query; an absolute-form
 * target loses its scheme and authority. */
static void split_target(char *t, kaa__http_request *out)
{
	char *q;

	if (t[0] != '/' && t[0] != '*') {
		t = strstr(t, "//") + 2;
		t += strcspn(t, "/?");
		if (*t != '/') {
			out->path = "/";
			out->query = *t == '?' ? t + 1 : "";
			return;
		}
	}
	out->path = t;
	q = strchr(t, '?');
	if (q) {
		*q = '\0';
		out->query = q + 1;
	} else {
		out->query = "";
	}
}

int kaa__http_parse_request(const char *buf, size_t len, const kaa__http_limits *limits,
			    kaa__http_request *out, size_t *consumed)
{
	kaa__http_limits lim;
	kaa__http_header_field *fields;
	struct scan sc, sc2;
	size_t fsz;
	char *mem, *cp, *body;
	int rc;

	memset(out, 0, sizeof(*out));
	*consumed = 0;
	limits_resolve(limits, &lim);
	memset(&sc, 0, sizeof(sc));
	rc = scan_head(buf, len, &lim, &sc, NULL, NULL);
	if (rc < 0) {
		out->error_status = sc.status;
		out->error_reason = sc.reason;
		return rc;
	}
	if (rc == KAA__HTTP_INCOMPLETE || len < sc.need) {
		*consumed = sc.need;
		/* Only a complete head may be answered 100 Continue. */
		out->expect_continue = sc.need && sc.expect_continue;
		return KAA__HTTP_INCOMPLETE;
	}

	fsz = sc.n_headers * sizeof(*fields);
	mem = kaa__xmalloc(fsz + sc.head_len + 1 + sc.content_length + 1);
	fields = (kaa__http_header_field *)(void *)mem;
	cp = mem + fsz;
	memcpy(cp, buf, sc.head_len);
	cp[sc.head_len] = '\0';
	body = cp + sc.head_len + 1;
	memcpy(body, buf + sc.head_len, sc.content_length);
	body[sc.content_length] = '\0';

	memset(&sc2, 0, sizeof(sc2));
	rc = scan_head(buf, sc.head_len, &lim, &sc2, cp, fields);
	if (rc != KAA_OK || sc2.n_headers != sc.n_headers) {
		/* Both passes see the same bytes; a difference is a bug here. */
		free(mem);
		out->error_status = 500;
		out->error_reason = "internal error";
		return KAA_ERR_INTERNAL;
	}

	out->method = cp + sc.line_off;
	split_target(cp + sc.target_off, out);
	out->version_minor = sc.minor;
	out->headers = fields;
	out->n_headers = sc.n_headers;
	out->body = body;
	out->body_len = sc.content_length;
	out->keep_alive = sc.minor >= 1 ? !sc.conn_close : (sc.conn_keep_alive && !sc.conn_close);
	out->expect_continue = sc.expect_continue;
	out->storage_ = mem;
	*consumed = sc.need;
	return KAA_OK;
}

void kaa__http_request_clear(kaa__http_request *req)
{
	if (!req)
		return;
	free(req->storage_);
	memset(req, 0, sizeof(*req));
}

const char *kaa__http_header(const kaa__http_request *req, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < req->n_headers; i++)
		if (ieq(name, n, req->headers[i].name))
			return req->headers[i].value;
	return NULL;
}

/* ---- responses ------------------------------------------------------------ */

static const char *reason_phrase(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 417: return "Expectation Failed";
	case 422: return "Unprocessable Content";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default: return "";
	}
}

/* Machine-readable codes for the errors the server answers by itself. */
static const char *error_code(int status)
{
	switch (status) {
	case 400: return "bad_request";
	case 408: return "request_timeout";
	case 413: return "payload_too_large";
	case 414: return "uri_too_long";
	case 417: return "expectation_failed";
	case 431: return "headers_too_large";
	case 501: return "not_implemented";
	case 503: return "unavailable";
	case 505: return "version_not_supported";
	default: return "internal";
	}
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	/* Overlong forms, surrogates and code points above U+10FFFF are
	 * excluded by narrowing the range of the second byte. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static void sb_json_string(kaa__buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");

	kaa__buf_put(b, "\"", 1);
	while (*s) {
		unsigned char c = *s;
		size_t n;

		switch (c) {
		case '"': kaa__buf_put(b, "\\\"", 2); break;
		case '\\': kaa__buf_put(b, "\\\\", 2); break;
		case '\n': kaa__buf_put(b, "\\n", 2); break;
		case '\r': kaa__buf_put(b, "\\r", 2); break;
		case '\t': kaa__buf_put(b, "\\t", 2); break;
		default:
			if (c < 0x20) {
				kaa__buf_printf(b, "\\u%04x", c);
			} else if ((n = utf8_len(s)) != 0) {
				kaa__buf_put(b, s, n);
				s += n - 1;
			} else {
				kaa__buf_put(b, "\\ufffd", 6);
			}
		}
		s++;
	}
	kaa__buf_put(b, "\"", 1);
}

void kaa__http_respond(kaa__http_response *resp, int status, const char *content_type,
		       const void *body, size_t len)
{
	free(resp->body);
	resp->status = status;
	resp->content_type = content_type;
	resp->body = kaa__xmalloc(len + 1);
	if (len)
		memcpy(resp->body, body, len);
	resp->body[len] = '\0';
	resp->body_len = len;
}

void kaa__http_respond_json_error(kaa__http_response *resp, int status, const char *code,
				  const char *message)
{
	kaa__buf b = {0};

	kaa__buf_puts(&b, "{\"error\":{\"code\":");
	sb_json_string(&b, code);
	kaa__buf_puts(&b, ",\"message\":");
	sb_json_string(&b, message);
	kaa__buf_puts(&b, "}}");
	free(resp->body);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = b.p;
	resp->body_len = b.len;
}

int kaa__http_response_add_header(kaa__http_response *resp, const char *name, const char *value)
{
	static const char *const managed[] = {"content-length", "content-type", "transfer-encoding",
					      "connection", "date"};
	size_t nlen, vlen, old;

	if (!name || !value || !*name)
		return KAA_ERR_INVAL;
	nlen = strlen(name);
	vlen = strlen(value);
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)name[i]))
			return KAA_ERR_INVAL;
	for (size_t i = 0; i < vlen; i++)
		if (!is_field_char((unsigned char)value[i]))
			return KAA_ERR_INVAL;
	for (size_t i = 0; i < sizeof(managed) / sizeof(managed[0]); i++)
		if (ieq(name, nlen, managed[i]))
			return KAA_ERR_INVAL;
	old = resp->headers ? strlen(resp->headers) : 0;
	resp->headers = kaa__xrealloc(resp->headers, old + nlen + vlen + 5);
	memcpy(resp->headers + old, name, nlen);
	memcpy(resp->headers + old + nlen, ": ", 2);
	memcpy(resp->headers + old + nlen + 2, value, vlen);
	memcpy(resp->headers + old + nlen + 2 + vlen, "\r\n", 3);
	return KAA_OK;
}

/* IMF-fixdate without strftime, whose names follow the locale. */
static void sb_date(kaa__buf *b)
{
	static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	kaa__buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n", days[tm.tm_wday % 7],
			tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
			tm.tm_min, tm.tm_sec);
}

/* Serializes a whole response (head and, unless omitted, body) into one
 * buffer so the I/O thread only has to write bytes. */
static void render(kaa__buf *b, int status, const char *ctype, const char *body, size_t body_len,
		   const char *extra, bool head_only, bool close, int minor)
{
	bool no_body = status == 204 || status == 304;

	kaa__buf_printf(b, "HTTP/1.1 %d %s\r\n", status, reason_phrase(status));
	sb_date(b);
	if (ctype && !no_body)
		kaa__buf_printf(b, "Content-Type: %s\r\n", ctype);
	if (!no_body)
		kaa__buf_printf(b, "Content-Length: %zu\r\n", body_len);
	if (close)
		kaa__buf_puts(b, "Connection: close\r\n");
	else if (minor == 0)
		kaa__buf_puts(b, "Connection: keep-alive\r\n");
	if (extra)
		kaa__buf_puts(b, extra);
	kaa__buf_put(b, "\r\n", 2);
	if (!head_only && !no_body && body_len)
		kaa__buf_put(b, body, body_len);
}

static void render_error(kaa__buf *b, int status, const char *reason)
{
	kaa__http_response r = {0};

	kaa__http_respond_json_error(&r, status, error_code(status), reason);
	render(b, status, r.content_type, r.body, r.body_len,
	       status == 503 ? "Retry-After: 1\r\n" : NULL, false, true, 1);
	free(r.body);
}

static bool ctype_valid(const char *s)
{
	for (; *s; s++)
		if (!is_field_char((unsigned char)*s))
			return false;
	return true;
}

/* ---- the server ------------------------------------------------------------ */

enum conn_state {
	CONN_READING,   /* polled for input; in/need are the I/O thread's */
	CONN_HANDLING,  /* req/out belong to a worker; not polled */
	CONN_WRITING,   /* out is being written */
	CONN_LINGERING, /* write side shut; draining input until EOF or deadline */
};

typedef struct conn {
	int fd;
	SSL *ssl;       /* HTTPS: TLS on fd (the handshake runs inside the first reads) */
	short tls_want; /* the direction TLS waits for (POLLIN/POLLOUT), 0: none */
	enum conn_state state;
	size_t idx; /* position in kaa__http_server.conns */
	char *in;
	size_t in_len;
	size_t in_cap;
	size_t need;        /* parser hint: skip parsing until in_len reaches it */
	bool continue_sent; /* 100 Continue sent for the current request */
	bool idle;          /* between requests: idle timeout, else read timeout */
	int64_t since_ms;   /* start of the current state's deadline */
	char *out;
	size_t out_len;
	size_t out_off;
	bool close_after; /* close once out is written */
	bool linger;      /* ...after draining the input (error responses) */
	kaa__http_request req;
	struct conn *next; /* job queue or done list, under the server mutex */
	char peer[INET6_ADDRSTRLEN + 8];
} conn;

struct kaa__http_server {
	kaa__http_limits lim;
	SSL_CTX *tls; /* HTTPS when set (kaa__http_server_set_tls) */
	kaa__http_handler handler;
	void *ud;
	int listen_fd;
	int wake_fd; /* eventfd: workers and free() wake the I/O thread */
	int port;

	/* I/O thread only */
	conn **conns;
	size_t n_conns;
	struct pollfd *pfd;
	int64_t accept_paused_until;
	int64_t accept_log_ms;
	unsigned accept_suppressed;
	int64_t busy_log_ms;
	unsigned busy_rejected;

	pthread_t io_thread;
	bool io_started;
	pthread_t *workers;
	unsigned n_workers; /* started */
	bool started;
	atomic_bool stop_io;

	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop_workers; /* guarded by mu */
	conn *jobs;        /* guarded by mu: FIFO */
	conn *jobs_tail;
	conn *done; /* guarded by mu: responses ready to write */
};

static const char *errno_name(int e)
{
	const char *n = strerrorname_np(e);
	return n ? n : "unknown";
}

static void wake(kaa__http_server *s)
{
	uint64_t one = 1;
	ssize_t r = write(s->wake_fd, &one, sizeof(one));
	(void)r; /* EAGAIN: the counter is already non-zero, a wake-up is pending */
}

/* The transport of one connection, plain or TLS, with recv()/send()
 * conventions: bytes, 0 at the end of the stream, or -1 with errno (EAGAIN
 * when TLS needs the socket readable or writable first: c->tls_want says
 * which, and conn_events polls for it). */
static ssize_t tls_result(conn *c, int r)
{
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ: c->tls_want = POLLIN; break;
	case SSL_ERROR_WANT_WRITE: c->tls_want = POLLOUT; break;
	case SSL_ERROR_ZERO_RETURN: ERR_clear_error(); return 0;
	default:
		/* a bad handshake (plain HTTP on the TLS port, an unknown CA on
		 * the client's side): nothing to answer, the connection ends */
		ERR_clear_error();
		errno = ECONNRESET;
		return -1;
	}
	errno = EAGAIN;
	return -1;
}

static ssize_t conn_recv(conn *c, void *buf, size_t n)
{
	if (!c->ssl)
		return recv(c->fd, buf, n, 0);
	int r = SSL_read(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0) {
		c->tls_want = 0;
		return r;
	}
	return tls_result(c, r);
}

static ssize_t conn_send(conn *c, const void *buf, size_t n)
{
	if (!c->ssl)
		return send(c->fd, buf, n, MSG_NOSIGNAL);
	int r = SSL_write(c->ssl, buf, n > INT_MAX ? INT_MAX : (int)n);
	if (r > 0) {
		c->tls_want = 0;
		return r;
	}
	return tls_result(c, r);
}

static void conn_free(conn *c)
{
	SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	kaa__http_request_clear(&c->req);
	free(c);
}

static void conn_close(kaa__http_server *s, conn *c)
{
	conn *last = s->conns[--s->n_conns];

	s->conns[c->idx] = last;
	last->idx = c->idx;
	conn_free(c);
}

static int64_t conn_deadline(const kaa__http_server *s, const conn *c)
{
	switch (c->state) {
	case CONN_READING:
		return c->since_ms + (c->idle ? s->lim.idle_timeout_ms : s->lim.read_timeout_ms);
	case CONN_WRITING: return c->since_ms + s->lim.write_timeout_ms;
	case CONN_LINGERING:
		return c->since_ms +
		       (s->lim.read_timeout_ms < LINGER_MS ? s->lim.read_timeout_ms : LINGER_MS);
	case CONN_HANDLING: break;
	}
	return INT64_MAX;
}

/* One non-blocking attempt, for answers that are not worth a buffer: the
 * connection is closed (or left reading) whatever happens. */
static void send_best_effort(conn *c, const char *p, size_t n)
{
	ssize_t r = c->ssl ? conn_send(c, p, n) : send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)r;
}

static void conn_process(kaa__http_server *s, conn *c, int64_t now);

static void response_done(kaa__http_server *s, conn *c, int64_t now)
{
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after) {
		if (c->ssl && SSL_shutdown(c->ssl) < 0)
			ERR_clear_error(); /* close_notify: best effort */
		if (c->linger && shutdown(c->fd, SHUT_WR) == 0) {
			c->state = CONN_LINGERING;
			c->since_ms = now;
			c->in_len = 0;
			return;
		}
		conn_close(s, c);
		return;
	}
	c->state = CONN_READING;
	c->since_ms = now;
	c->idle = c->in_len == 0;
	if (c->in_len > 0)
		conn_process(s, c, now); /* a pipelined request is already buffered */
}

static void conn_flush(kaa__http_server *s, conn *c, int64_t now)
{
	while (c->out_off < c->out_len) {
		ssize_t w = conn_send(c, c->out + c->out_off, c->out_len - c->out_off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			/* The client went away (EPIPE, ECONNRESET): nothing to report. */
			conn_close(s, c);
			return;
		}
		c->out_off += (size_t)w;
	}
	response_done(s, c, now);
}

static void conn_fail(kaa__http_server *s, conn *c, int status, const char *reason, int64_t now)
{
	kaa__buf b = {0};

	render_error(&b, status, reason);
	c->out = b.p;
	c->out_len = b.len;
	c->out_off = 0;
	c->close_after = true;
	c->linger = true;
	c->state = CONN_WRITING;
	c->since_ms = now;
	conn_flush(s, c, now);
}

static void enqueue(kaa__http_server *s, conn *c)
{
	pthread_mutex_lock(&s->mu);
	c->next = NULL;
	if (s->jobs_tail)
		s->jobs_tail->next = c;
	else
		s->jobs = c;
	s->jobs_tail = c;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

static void conn_process(kaa__http_server *s, conn *c, int64_t now)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	size_t consumed;
	int rc;

	rc = kaa__http_parse_request(c->in, c->in_len, &s->lim, &c->req, &consumed);
	if (rc == KAA__HTTP_INCOMPLETE) {
		c->need = consumed;
		/* The response to a previous request has been written in full,
		 * so the socket buffer has room for these few bytes; if not,
		 * the client sends the body after its own short wait anyway. */
		if (c->req.expect_continue && consumed && !c->continue_sent) {
			send_best_effort(c, cont, sizeof(cont) - 1);
			c->continue_sent = true;
		}
		return;
	}
	if (rc != KAA_OK) {
		KAA_WARN(MOD, "bad_request peer=%s status=%d reason=\"%s\"", c->peer,
			 c->req.error_status, c->req.error_reason);
		conn_fail(s, c, c->req.error_status, c->req.error_reason, now);
		return;
	}
	c->in_len -= consumed;
	memmove(c->in, c->in + consumed, c->in_len);
	if (c->in_len == 0 && c->in_cap > IN_BUF_KEEP) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	c->need = 0;
	c->continue_sent = false;
	c->req.peer = c->peer;
	c->state = CONN_HANDLING;
	enqueue(s, c);
}

static void conn_read(kaa__http_server *s, conn *c, int64_t now)
{
	size_t max = s->lim.max_header_bytes + s->lim.max_body_bytes;
	size_t old = c->in_len;
	ssize_t r;
	bool parse;

	if (c->in_len == c->in_cap) {
		size_t cap = c->in_cap ? c->in_cap * 2 : IN_BUF_INITIAL;
		if (cap > max)
			cap = max;
		if (cap <= c->in_cap) {
			/* Unreachable: the parser rejects a head over its limit and
			 * head + body fit in max. Refuse rather than spin. */
			conn_fail(s, c, 431, "request too large", now);
			return;
		}
		c->in = kaa__xrealloc(c->in, cap);
		c->in_cap = cap;
	}
	r = conn_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return;
		conn_close(s, c);
		return;
	}
	if (r == 0) {
		/* Closed by the client, possibly mid-request: nobody to answer. */
		conn_close(s, c);
		return;
	}
	if (c->idle) {
		c->idle = false;
		c->since_ms = now;
	}
	c->in_len += (size_t)r;
	/* Parsing only when a line has ended (or the hinted length is reached)
	 * keeps a client that trickles bytes from making us rescan its head
	 * once per byte. The first read is parsed at once to refuse garbage. */
	if (c->need)
		parse = c->in_len >= c->need;
	else
		parse = old == 0 || memchr(c->in + old, '\n', (size_t)r) != NULL ||
			c->in_len >= s->lim.max_header_bytes;
	if (parse)
		conn_process(s, c, now);
}

static void conn_drain(kaa__http_server *s, conn *c)
{
	char junk[4096];
	ssize_t r = c->ssl && SSL_get_shutdown(c->ssl) & SSL_SENT_SHUTDOWN
			    ? recv(c->fd, junk, sizeof(junk), 0) /* after close_notify: raw bytes */
			    : conn_recv(c, junk, sizeof(junk));

	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
		conn_close(s, c);
}

static void conn_event(kaa__http_server *s, conn *c, short revents, int64_t now)
{
	if (revents & POLLNVAL) {
		conn_close(s, c);
		return;
	}
	switch (c->state) {
	case CONN_READING:
		/* POLLOUT only when TLS asked for it (conn_events) */
		if (revents & (POLLIN | POLLOUT | POLLHUP | POLLERR))
			conn_read(s, c, now);
		break;
	case CONN_WRITING:
		if (revents & (POLLOUT | POLLIN | POLLHUP | POLLERR))
			conn_flush(s, c, now);
		break;
	case CONN_LINGERING:
		if (revents & (POLLIN | POLLHUP | POLLERR))
			conn_drain(s, c);
		break;
	case CONN_HANDLING: break;
	}
}

static void conn_timeout(kaa__http_server *s, conn *c)
{
	if (c->state == CONN_READING && !c->idle && c->in_len > 0) {
		kaa__buf b = {0};
		KAA_WARN(MOD, "request_timeout peer=%s buffered=%zu timeout_ms=%d", c->peer,
			 c->in_len, s->lim.read_timeout_ms);
		render_error(&b, 408, "request not received in time");
		send_best_effort(c, b.p, b.len);
		kaa__buf_free(&b);
	} else if (c->state == CONN_WRITING) {
		KAA_WARN(MOD, "write_timeout peer=%s unsent=%zu timeout_ms=%d", c->peer,
			 c->out_len - c->out_off, s->lim.write_timeout_ms);
	}
	conn_close(s, c);
}

/* Socket addresses without casts between the sockaddr types. */
typedef union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
} sockaddr_any;

static void format_peer(const sockaddr_any *a, char *out, size_t size)
{
	char addr[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->in.sin_addr, addr, sizeof(addr));
		port = ntohs(a->in.sin_port);
		snprintf(out, size, "%s:%d", addr, port);
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->in6.sin6_addr, addr, sizeof(addr));
		port = ntohs(a->in6.sin6_port);
		/* IPv4 clients of a dual-stack socket read better without ::ffff:. */
		if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.'))
			snprintf(out, size, "%s:%d", addr + 7, port);
		else
			snprintf(out, size, "[%s]:%d", addr, port);
	} else {
		snprintf(out, size, "unknown");
	}
}

static void reject_busy(kaa__http_server *s, int fd, int64_t now)
{
	kaa__buf b = {0};

	render_error(&b, 503, "too many connections");
	/* over TLS nothing can be said before a handshake: just close */
	if (!s->tls) {
		ssize_t r = send(fd, b.p, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		(void)r;
	}
	kaa__buf_free(&b);
	close(fd);
	s->busy_rejected++;
	if (now - s->busy_log_ms >= 1000) {
		KAA_WARN(MOD, "connection_limit_reached max=%u rejected=%u", s->lim.max_connections,
			 s->busy_rejected);
		s->busy_log_ms = now;
		s->busy_rejected = 0;
	}
}

static void accept_some(kaa__http_server *s, int64_t now)
{
	for (int k = 0; k < ACCEPT_BATCH; k++) {
		sockaddr_any a;
		socklen_t sl = sizeof(a);
		int one = 1, fd, e;
		conn *c;

		memset(&a, 0, sizeof(a));
		fd = accept4(s->listen_fd, &a.sa, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			e = errno;
			if (e == EAGAIN || e == EWOULDBLOCK)
				return;
			if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM)
				continue;
			/* EMFILE, ENFILE, ENOBUFS, ENOMEM...: the pending connection
			 * keeps the level-triggered listener readable, so stop
			 * polling it for a while instead of spinning. */
			s->accept_paused_until = now + ACCEPT_BACKOFF_MS;
			s->accept_suppressed++;
			if (now - s->accept_log_ms >= 1000) {
				KAA_WARN(MOD,
					 "accept_failed port=%d errno=%s count=%u backoff_ms=%d",
					 s->port, errno_name(e), s->accept_suppressed,
					 ACCEPT_BACKOFF_MS);
				s->accept_log_ms = now;
				s->accept_suppressed = 0;
			}
			return;
		}
		if (s->n_conns >= s->lim.max_connections) {
			reject_busy(s, fd, now);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = kaa__xcalloc(1, sizeof(*c));
		c->fd = fd;
		if (s->tls) {
			c->ssl = SSL_new(s->tls);
			if (!c->ssl)
				kaa__oom();
			SSL_set_fd(c->ssl, fd);
			SSL_set_accept_state(c->ssl);
		}
		c->state = CONN_READING;
		c->since_ms = now;
		format_peer(&a, c->peer, sizeof(c->peer));
		c->idx = s->n_conns;
		s->conns[s->n_conns++] = c;
	}
}

static void take_done(kaa__http_server *s, int64_t now)
{
	uint64_t v;
	conn *c, *next;
	ssize_t r = read(s->wake_fd, &v, sizeof(v));

	(void)r;
	pthread_mutex_lock(&s->mu);
	c = s->done;
	s->done = NULL;
	pthread_mutex_unlock(&s->mu);
	for (; c; c = next) {
		next = c->next;
		c->next = NULL;
		c->state = CONN_WRITING;
		c->since_ms = now;
		conn_flush(s, c, now);
	}
}

static short conn_events(const conn *c)
{
	switch (c->state) {
	case CONN_READING:
	case CONN_LINGERING: return c->tls_want ? c->tls_want : POLLIN;
	case CONN_WRITING: return c->tls_want ? c->tls_want : POLLOUT;
	case CONN_HANDLING: break;
	}
	return 0;
}

/* Bytes TLS read from the socket but did not hand out yet: poll would not
 * report them, so the loop handles such a connection without waiting. */
static bool tls_buffered(const conn *c)
{
	return c->ssl && c->state == CONN_READING && SSL_has_pending(c->ssl);
}

static void *io_main(void *arg)
{
	kaa__http_server *s = arg;

	while (!atomic_load(&s->stop_io)) {
		int64_t now = kaa__now_ms(), next = INT64_MAX;
		size_t npoll;
		int timeout, r;

		/* Sweep timeouts while building the poll set: one pass over the
		 * connections per wake-up, no timer per connection. Walking
		 * backwards keeps the swap-remove of conn_close safe. */
		for (size_t i = s->n_conns; i-- > 0;) {
			conn *c = s->conns[i];
			if (conn_deadline(s, c) <= now)
				conn_timeout(s, c);
		}
		s->pfd[0].fd = s->wake_fd;
		s->pfd[0].events = POLLIN;
		s->pfd[1].fd = now >= s->accept_paused_until ? s->listen_fd : -1;
		s->pfd[1].events = POLLIN;
		if (s->pfd[1].fd < 0)
			next = s->accept_paused_until;
		npoll = s->n_conns;
		for (size_t i = 0; i < npoll; i++) {
			conn *c = s->conns[i];
			int64_t dl = tls_buffered(c) ? now : conn_deadline(s, c);
			s->pfd[2 + i].fd = c->state == CONN_HANDLING ? -1 : c->fd;
			s->pfd[2 + i].events = conn_events(c);
			s->pfd[2 + i].revents = 0;
			if (dl < next)
				next = dl;
		}
		if (next == INT64_MAX)
			timeout = -1;
		else if (next - now > INT_MAX)
			timeout = INT_MAX;
		else
			timeout = (int)(next - now);
		r = poll(s->pfd, 2 + npoll, timeout);
		if (r < 0) {
			if (errno != EINTR) {
				struct timespec ts = {0, 10 * 1000000};
				KAA_ERROR(MOD, "poll_failed errno=%s", errno_name(errno));
				nanosleep(&ts, NULL);
			}
			continue;
		}
		now = kaa__now_ms();
		/* Backwards again: closing conns[i] moves the last connection,
		 * already handled, into slot i. */
		for (size_t i = npoll; i-- > 0;) {
			short rev = s->pfd[2 + i].revents;
			if (!rev && tls_buffered(s->conns[i]))
				rev = POLLIN;
			if (rev)
				conn_event(s, s->conns[i], rev, now);
		}
		if (r == 0)
			continue;
		if (s->pfd[0].revents)
			take_done(s, now);
		if (s->pfd[1].revents)
			accept_some(s, now);
	}
	return NULL;
}

static void run_handler(kaa__http_server *s, conn *c)
{
	kaa__http_response resp = {0};
	const kaa__http_request *req = &c->req;
	bool head_only = strcmp(req->method, "HEAD") == 0;
	const char *ctype;
	kaa__buf b = {0};

	s->handler(req, &resp, s->ud);
	if (resp.status < 200 || resp.status > 599) {
		KAA_WARN(MOD, "handler_bad_status status=%d method=%s path=%s", resp.status,
			 req->method, req->path);
		free(resp.headers);
		resp.headers = NULL;
		kaa__http_respond_json_error(&resp, 500, "internal", "internal error");
	}
	ctype = resp.content_type;
	if (ctype && !ctype_valid(ctype)) {
		KAA_WARN(MOD, "handler_bad_content_type method=%s path=%s", req->method, req->path);
		ctype = NULL;
	}
	c->close_after = !req->keep_alive || resp.close;
	c->linger = false;
	render(&b, resp.status, ctype, resp.body, resp.body_len, resp.headers, head_only,
	       c->close_after, req->version_minor);
	free(resp.body);
	free(resp.headers);
	kaa__http_request_clear(&c->req);
	c->out = b.p;
	c->out_len = b.len;
	c->out_off = 0;
}

static void *worker_main(void *arg)
{
	kaa__http_server *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		conn *c;

		while (!s->stop_workers && !s->jobs)
			pthread_cond_wait(&s->cond, &s->mu);
		if (s->stop_workers)
			break;
		c = s->jobs;
		s->jobs = c->next;
		if (!s->jobs)
			s->jobs_tail = NULL;
		pthread_mutex_unlock(&s->mu);

		run_handler(s, c);

		pthread_mutex_lock(&s->mu);
		c->next = s->done;
		s->done = c;
		wake(s);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int try_listen(const struct sockaddr *sa, socklen_t sl, bool dual, int *fd_out)
{
	int one = 1, zero = 0, e;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return errno;
	/* Lets a restarted node bind while its old connections sit in
	 * TIME_WAIT; on Linux it does not let two listeners share the port. */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, sa, sl) < 0 || listen(fd, SOMAXCONN) < 0) {
		e = errno;
		close(fd);
		return e;
	}
	*fd_out = fd;
	return 0;
}

static int open_listener(const char *host, int port, int *fd_out)
{
	int e;
	const char *shown = host && *host ? host : "*";

	if (!host || !*host || strcmp(host, "*") == 0) {
		sockaddr_any a;

		memset(&a, 0, sizeof(a));
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_addr = in6addr_any;
		a.in6.sin6_port = htons((uint16_t)port);
		e = try_listen(&a.sa, sizeof(a.in6), true, fd_out);
		if (e == EAFNOSUPPORT || e == EADDRNOTAVAIL) {
			/* No IPv6 in this pod or host: IPv4 only. */
			memset(&a, 0, sizeof(a));
			a.in.sin_family = AF_INET;
			a.in.sin_addr.s_addr = htonl(INADDR_ANY);
			a.in.sin_port = htons((uint16_t)port);
			e = try_listen(&a.sa, sizeof(a.in), false, fd_out);
		}
	} else {
		struct addrinfo hints = {0}, *res = NULL, *ai;
		char ps[16];
		int g;

		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
		snprintf(ps, sizeof(ps), "%d", port);
		g = getaddrinfo(host, ps, &hints, &res);
		if (g != 0) {
			KAA_ERROR(MOD, "listen_failed host=%s port=%d err=\"%s\"", shown, port,
				  gai_strerror(g));
			return KAA_ERR_INVAL;
		}
		e = EADDRNOTAVAIL;
		for (ai = res; ai; ai = ai->ai_next) {
			e = try_listen(ai->ai_addr, ai->ai_addrlen, false, fd_out);
			if (e == 0)
				break;
		}
		freeaddrinfo(res);
	}
	if (e == 0)
		return KAA_OK;
	if (e == EADDRINUSE) {
		KAA_ERROR(MOD,
			  "listen_failed host=%s port=%d errno=EADDRINUSE "
			  "err=\"address already in use: another process holds this port\"",
			  shown, port);
		return KAA_ERR_EXISTS;
	}
	KAA_ERROR(MOD, "listen_failed host=%s port=%d errno=%s", shown, port, errno_name(e));
	return KAA_ERR_IO;
}

int kaa__http_server_new(const char *bind_host, int port, const kaa__http_limits *limits,
			 kaa__http_handler handler, void *ud, kaa__http_server **out)
{
	kaa__http_server *s = NULL;
	sockaddr_any a;
	socklen_t sl = sizeof(a);
	const char *badlim;
	int rc;

	*out = NULL;
	if (port < 0 || port > 65535 || !handler) {
		KAA_ERROR(MOD, "server_new_invalid port=%d handler=%s", port,
			  handler ? "set" : "null");
		return KAA_ERR_INVAL;
	}
	s = kaa__xcalloc(1, sizeof(*s));
	s->listen_fd = -1;
	s->wake_fd = -1;
	limits_resolve(limits, &s->lim);
	badlim = limits_invalid(&s->lim);
	if (badlim) {
		KAA_ERROR(MOD, "server_new_invalid limit=%s", badlim);
		rc = KAA_ERR_INVAL;
		goto out;
	}
	s->handler = handler;
	s->ud = ud;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	atomic_init(&s->stop_io, false);
	s->conns = kaa__xcalloc(s->lim.max_connections, sizeof(*s->conns));
	s->pfd = kaa__xcalloc(s->lim.max_connections + 2, sizeof(*s->pfd));
	s->workers = kaa__xcalloc(s->lim.workers, sizeof(*s->workers));

	rc = open_listener(bind_host, port, &s->listen_fd);
	if (rc != KAA_OK)
		goto out;
	memset(&a, 0, sizeof(a));
	if (getsockname(s->listen_fd, &a.sa, &sl) < 0) {
		rc = kaa__err_from_errno(errno);
		KAA_ERROR(MOD, "getsockname_failed errno=%s", errno_name(errno));
		goto out;
	}
	s->port = ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in.sin_port);
	s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake_fd < 0) {
		rc = kaa__err_from_errno(errno);
		KAA_ERROR(MOD, "eventfd_failed errno=%s", errno_name(errno));
		goto out;
	}
	rc = KAA_OK;
out:
	if (rc != KAA_OK) {
		kaa__http_server_free(s);
		return rc;
	}
	*out = s;
	return KAA_OK;
}

static void stop_threads(kaa__http_server *s)
{
	if (s->io_started) {
		atomic_store(&s->stop_io, true);
		wake(s);
		pthread_join(s->io_thread, NULL);
		s->io_started = false;
	}
	pthread_mutex_lock(&s->mu);
	s->stop_workers = true;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i], NULL);
	s->n_workers = 0;
}

int kaa__http_server_start(kaa__http_server *s)
{
	sigset_t all, old;
	int e = 0;

	if (s->started)
		return KAA_ERR_INVAL;
	s->started = true;
	/* The threads inherit a full signal mask, so process signals are
	 * delivered to the application's own threads. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < s->lim.workers && e == 0; i++) {
		e = pthread_create(&s->workers[i], NULL, worker_main, s);
		if (e == 0)
			s->n_workers++;
	}
	if (e == 0) {
		e = pthread_create(&s->io_thread, NULL, io_main, s);
		s->io_started = e == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		KAA_ERROR(MOD, "thread_create_failed port=%d errno=%s", s->port, errno_name(e));
		stop_threads(s);
		return KAA_ERR_IO;
	}
	KAA_INFO(MOD, "listening port=%d workers=%u max_connections=%u", s->port, s->lim.workers,
		 s->lim.max_connections);
	return KAA_OK;
}

int kaa__http_server_port(const kaa__http_server *s)
{
	return s->port;
}

int kaa__http_server_set_tls(kaa__http_server *s, const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx;
	if (!s || s->started || !cert_file || !key_file)
		return KAA_ERR_INVAL;
	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		kaa__oom();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* conn_send resumes a partial write from wherever out has moved */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		unsigned long e = ERR_get_error();
		char why[256];
		ERR_error_string_n(e, why, sizeof(why));
		ERR_clear_error();
		KAA_ERROR(MOD, "tls_setup_failed port=%d cert=%s key=%s error=\"%s\"", s->port,
			  cert_file, key_file, why);
		SSL_CTX_free(ctx);
		return KAA_ERR_IO;
	}
	SSL_CTX_free(s->tls);
	s->tls = ctx;
	return KAA_OK;
}

void kaa__http_server_free(kaa__http_server *s)
{
	if (!s)
		return;
	if (s->workers) {
		stop_threads(s);
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->cond);
	}
	/* Every connection, whatever its state (queued, handled, written),
	 * is in conns; the threads are gone so nothing else refers to it. */
	for (size_t i = 0; i < s->n_conns; i++)
		conn_free(s->conns[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	SSL_CTX_free(s->tls);
	free(s->conns);
	free(s->pfd);
	free(s->workers);
	free(s);
}
