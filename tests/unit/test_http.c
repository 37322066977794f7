/*
 * test_http.c - the HTTP/1.1 request parser (good requests, requests split
 * across reads, every class of bad input) and a real server on
 * 127.0.0.1:0 driven over sockets: GET, HEAD, keep-alive, pipelining,
 * POST bodies, 100-continue, the 4xx/5xx the server answers itself,
 * timeouts, the connection limit, concurrency of slow handlers and
 * freeing the server under live connections.
 *
 * Waits are poll() calls with a deadline on a socket or a condition
 * variable with a deadline; nothing sleeps to synchronise.
 */
#include "cu_main.h"
#include "base/clock.h"
#include "base/error.h"
#include "http/http_server.h"
#include "base/log.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAIT_MS 5000 /* upper bound for anything expected to happen */

/* ---- parser ------------------------------------------------------------------ */

static int parse(const char *s, kaa__http_request *req, size_t *consumed)
{
	return kaa__http_parse_request(s, strlen(s), NULL, req, consumed);
}

static void test_parse_get(void)
{
	const char *s = "GET /api/v1/apps?limit=10&x=%20 HTTP/1.1\r\n"
			"Host: example\r\n"
			"User-Agent:  curl/8.0  \r\n"
			"X-Empty:\r\n"
			"Accept: */*\r\n"
			"\r\n";
	kaa__http_request req;
	size_t consumed;

	CU_ASSERT_EQUAL_FATAL(parse(s, &req, &consumed), KAA_OK);
	CU_ASSERT_EQUAL(consumed, strlen(s));
	CU_ASSERT_STRING_EQUAL(req.method, "GET");
	CU_ASSERT_STRING_EQUAL(req.path, "/api/v1/apps");
	CU_ASSERT_STRING_EQUAL(req.query, "limit=10&x=%20");
	CU_ASSERT_EQUAL(req.version_minor, 1);
	CU_ASSERT_EQUAL(req.n_headers, 4);
	CU_ASSERT_STRING_EQUAL(req.headers[0].name, "Host");
	CU_ASSERT_STRING_EQUAL(kaa__http_header(&req, "host"), "example");
	CU_ASSERT_STRING_EQUAL(kaa__http_header(&req, "USER-AGENT"), "curl/8.0");
	CU_ASSERT_STRING_EQUAL(kaa__http_header(&req, "x-empty"), "");
	CU_ASSERT_PTR_NULL(kaa__http_header(&req, "content-type"));
	CU_ASSERT_PTR_NULL(kaa__http_header(&req, "hos"));
	CU_ASSERT_EQUAL(req.body_len, 0);
	CU_ASSERT_STRING_EQUAL(req.body, "");
	CU_ASSERT_TRUE(req.keep_alive);
	CU_ASSERT_FALSE(req.expect_continue);
	CU_ASSERT_PTR_NULL(req.peer);
	kaa__http_request_clear(&req);
	CU_ASSERT_PTR_NULL(req.storage_);
	kaa__http_request_clear(&req); /* twice is fine */
	kaa__http_request_clear(NULL);
}

static void test_parse_targets(void)
{
	static const struct {
		const char *target, *path, *query;
	} cases[] = {
		{"/", "/", ""},
		{"/a?", "/a", ""},
		{"/a?b?c", "/a", "b?c"},
		{"*", "*", ""},
		{"http://example.com/x/y?z=1", "/x/y", "z=1"},
		{"HTTPS://example.com:8080", "/", ""},
		{"http://h?q", "/", "q"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[256];
		kaa__http_request req;
		size_t consumed;

		snprintf(buf, sizeof(buf), "OPTIONS %s HTTP/1.1\r\nHost: h\r\n\r\n",
			 cases[i].target);
		CU_ASSERT_EQUAL_FATAL(parse(buf, &req, &consumed), KAA_OK);
		CU_ASSERT_STRING_EQUAL(req.path, cases[i].path);
		CU_ASSERT_STRING_EQUAL(req.query, cases[i].query);
		kaa__http_request_clear(&req);
	}
}

static void test_parse_body_and_pipelining(void)
{
	const char *s = "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
			"Content-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n";
	kaa__http_request req;
	size_t consumed, first;

	CU_ASSERT_EQUAL_FATAL(parse(s, &req, &consumed), KAA_OK);
	first = strlen(s) - strlen("GET / HTTP/1.1\r\n");
	CU_ASSERT_EQUAL(consumed, first);
	CU_ASSERT_EQUAL(req.body_len, 5);
	CU_ASSERT_NSTRING_EQUAL(req.body, "hello", 6); /* NUL-terminated */
	kaa__http_request_clear(&req);
	/* The rest is the start of the next request. */
	CU_ASSERT_EQUAL(parse(s + consumed, &req, &consumed), KAA__HTTP_INCOMPLETE);
	CU_ASSERT_EQUAL(consumed, 0);
}

static void test_parse_split_reads(void)
{
	const char *s = "\r\nPOST /echo?x=1 HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n"
			"Content-Length: 5\r\n\r\nhello";
	size_t len = strlen(s), head = strlen(s) - 5;

	/* Every prefix is INCOMPLETE, never an error: the server sees requests
	 * cut anywhere by TCP. The hint appears once the head is complete. */
	for (size_t k = 0; k < len; k++) {
		kaa__http_request req;
		size_t consumed = 99;
		int rc = kaa__http_parse_request(s, k, NULL, &req, &consumed);

		CU_ASSERT_EQUAL(rc, KAA__HTTP_INCOMPLETE);
		if (rc != KAA__HTTP_INCOMPLETE)
			fprintf(stderr, "prefix %zu: rc=%d\n", k, rc);
		CU_ASSERT_EQUAL(consumed, k >= head ? len : 0);
		CU_ASSERT_EQUAL(req.expect_continue, k >= head);
		CU_ASSERT_PTR_NULL(req.storage_);
	}
	{
		kaa__http_request req;
		size_t consumed;

		CU_ASSERT_EQUAL_FATAL(kaa__http_parse_request(s, len, NULL, &req, &consumed),
				      KAA_OK);
		CU_ASSERT_EQUAL(consumed, len);
		CU_ASSERT_STRING_EQUAL(req.body, "hello");
		CU_ASSERT_TRUE(req.expect_continue);
		kaa__http_request_clear(&req);
	}
}

static void test_parse_versions_and_connection(void)
{
	static const struct {
		const char *req;
		int minor;
		bool keep_alive;
	} cases[] = {
		{"GET / HTTP/1.0\r\n\r\n", 0, false},
		{"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, true},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1, true},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: foo, CLOSE \r\n\r\n", 1, false},
		{"GET / HTTP/1.1\r\nHost: h\r\nconnection: keep-alive,close\r\n\r\n", 1, false},
		{"GET / HTTP/1.9\r\nHost: h\r\n\r\n", 1, true},
		{"GET / HTTP/1.1\nHost: h\n\n", 1, true}, /* bare LF line ends */
		/* HTTP/1.0 ignores Expect. */
		{"GET / HTTP/1.0\r\nExpect: something\r\n\r\n", 0, false},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__http_request req;
		size_t consumed;

		CU_ASSERT_EQUAL_FATAL(parse(cases[i].req, &req, &consumed), KAA_OK);
		CU_ASSERT_EQUAL(req.version_minor, cases[i].minor);
		CU_ASSERT_EQUAL(req.keep_alive, cases[i].keep_alive);
		kaa__http_request_clear(&req);
	}
}

struct bad_case {
	const char *req;
	int rc;
	int status;
};

static void check_bad(const struct bad_case *c, size_t len, const kaa__http_limits *lim)
{
	kaa__http_request req;
	size_t consumed = 7;
	int rc = kaa__http_parse_request(c->req, len, lim, &req, &consumed);

	if (rc != c->rc || req.error_status != c->status)
		fprintf(stderr, "\n%.60s: rc=%d status=%d\n", c->req, rc, req.error_status);
	CU_ASSERT_EQUAL(rc, c->rc);
	CU_ASSERT_EQUAL(req.error_status, c->status);
	CU_ASSERT_PTR_NOT_NULL(req.error_reason);
	CU_ASSERT_PTR_NULL(req.storage_);
	CU_ASSERT_EQUAL(consumed, 0);
}

static void test_parse_bad(void)
{
	static const struct bad_case cases[] = {
		/* malformed request lines */
		{"GET/ HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{" GET / HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1x\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / http/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/11.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET /\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET foo HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET http:/// HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"G\xc3\xa9T / HTTP/1.1\r\nHost: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		 KAA_ERR_INVAL, 400},
		/* refused before the line is complete */
		{"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", KAA_ERR_INVAL, 400},
		{"GET /a b", KAA_ERR_INVAL, 400},
		{"GET / HTTQ", KAA_ERR_INVAL, 400},
		/* bad versions */
		{"GET / HTTP/2.0\r\nHost: h\r\n\r\n", KAA_ERR_PROTOCOL, 505},
		{"GET / HTTP/0.9\r\n\r\n", KAA_ERR_PROTOCOL, 505},
		{"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", KAA_ERR_PROTOCOL, 505},
		/* malformed headers */
		{"GET / HTTP/1.1\r\n\r\n", KAA_ERR_INVAL, 400}, /* no Host */
		{"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHost : h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\n: h\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n\r\n", KAA_ERR_INVAL, 400},
		{"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n", KAA_ERR_INVAL, 400},
		/* bad Content-Length */
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1 2\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1,1\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", KAA_ERR_INVAL, 400},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		 KAA_ERR_INVAL, 400},
		/* too large */
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n", KAA_ERR_TOO_BIG,
		 413},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
		 KAA_ERR_TOO_BIG, 413},
		/* unsupported */
		{"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
		 KAA_ERR_PROTOCOL, 501},
		{"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
		 KAA_ERR_PROTOCOL, 501},
		{"GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", KAA_ERR_PROTOCOL, 417},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_bad(&cases[i], strlen(cases[i].req), NULL);
	/* A NUL inside a header value (strlen would stop there). */
	{
		static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
		struct bad_case c = {nul, KAA_ERR_INVAL, 400};
		check_bad(&c, sizeof(nul) - 1, NULL);
	}
}

static char *repeat(const char *prefix, char c, size_t n, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *s = malloc(pl + n + sl + 1);

	memcpy(s, prefix, pl);
	memset(s + pl, c, n);
	memcpy(s + pl + n, suffix, sl + 1);
	return s;
}

static void test_parse_limits(void)
{
	kaa__http_limits lim = {.max_header_bytes = 256, .max_body_bytes = 10, .max_headers = 3};
	kaa__http_request req;
	size_t consumed;
	struct bad_case c;
	char *s;

	/* A head over the default 16 KiB: 431 once that many bytes are in,
	 * whether or not the blank line has arrived. */
	s = repeat("GET / HTTP/1.1\r\nHost: h\r\nX-Big: ", 'a', 17000, "\r\n\r\n");
	c = (struct bad_case){s, KAA_ERR_TOO_BIG, 431};
	check_bad(&c, strlen(s), NULL);
	check_bad(&c, 16 * 1024, NULL);
	CU_ASSERT_EQUAL(kaa__http_parse_request(s, 16 * 1024 - 1, NULL, &req, &consumed),
			KAA__HTTP_INCOMPLETE);
	free(s);
	/* The request line alone over the limit. */
	s = repeat("GET /", 'a', 17000, " HTTP/1.1\r\nHost: h\r\n\r\n");
	c = (struct bad_case){s, KAA_ERR_TOO_BIG, 414};
	check_bad(&c, strlen(s), NULL);
	free(s);

	/* Exactly at the limit is fine; one byte more is not. */
	s = repeat("GET / HTTP/1.1\r\nHost: h\r\nX: ", 'a', 256 - 32, "\r\n\r\n");
	CU_ASSERT_EQUAL_FATAL(strlen(s), 256);
	CU_ASSERT_EQUAL(kaa__http_parse_request(s, 256, &lim, &req, &consumed), KAA_OK);
	CU_ASSERT_EQUAL(consumed, 256);
	kaa__http_request_clear(&req);
	free(s);
	s = repeat("GET / HTTP/1.1\r\nHost: h\r\nX: ", 'a', 256 - 31, "\r\n\r\n");
	c = (struct bad_case){s, KAA_ERR_TOO_BIG, 431};
	check_bad(&c, strlen(s), &lim);
	free(s);

	/* Header count. */
	s = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
	CU_ASSERT_EQUAL(kaa__http_parse_request(s, strlen(s), &lim, &req, &consumed), KAA_OK);
	kaa__http_request_clear(&req);
	c = (struct bad_case){"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
			      KAA_ERR_TOO_BIG, 431};
	check_bad(&c, strlen(c.req), &lim);
	/* Refused as soon as the line is complete, before the blank line. */
	check_bad(&c, strlen(c.req) - 2, &lim);

	/* Body limit: 10 is fine, 11 is refused before any body arrives. */
	s = "PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
	CU_ASSERT_EQUAL(kaa__http_parse_request(s, strlen(s), &lim, &req, &consumed), KAA_OK);
	CU_ASSERT_EQUAL(req.body_len, 10);
	kaa__http_request_clear(&req);
	c = (struct bad_case){"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n",
			      KAA_ERR_TOO_BIG, 413};
	check_bad(&c, strlen(c.req), &lim);
}

static void test_json_error(void)
{
	kaa__http_response r = {0};

	kaa__http_respond_json_error(&r, 404, "not_found", "no \"app\" at C:\\x\n\x01 caf\xc3\xa9");
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT_STRING_EQUAL(r.content_type, "application/json");
	CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":{\"code\":\"not_found\",\"message\":\"no "
				       "\\\"app\\\" at C:\\\\x\\n\\u0001 caf\xc3\xa9\"}}");
	CU_ASSERT_EQUAL(r.body_len, strlen(r.body));
	/* Invalid UTF-8 (a lone continuation byte, an overlong form, a
	 * surrogate, a truncated sequence) becomes U+FFFD; the previous body
	 * is replaced, not leaked. */
	kaa__http_respond_json_error(&r, 400, "bad",
				     "a\x80"
				     "b\xc0\xaf"
				     "c\xed\xa0\x80"
				     "d\xe2\x82");
	CU_ASSERT_STRING_EQUAL(r.body, "{\"error\":{\"code\":\"bad\",\"message\":\"a\\ufffdb\\ufffd"
				       "\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffd\"}}");
	kaa__http_respond(&r, 200, "text/plain", "ok", 2);
	CU_ASSERT_STRING_EQUAL(r.body, "ok");
	CU_ASSERT_EQUAL(r.body_len, 2);
	free(r.body);
}

static void test_add_header(void)
{
	kaa__http_response r = {0};

	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "ETag", "\"v1\""), KAA_OK);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "Location", "/api/v1/apps/7"), KAA_OK);
	CU_ASSERT_STRING_EQUAL(r.headers, "ETag: \"v1\"\r\nLocation: /api/v1/apps/7\r\n");
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "X", "a\r\nInjected: 1"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "X", "a\nb"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "Bad Name", "x"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "", "x"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, NULL, "x"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "X", NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "content-length", "1"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_response_add_header(&r, "Connection", "close"), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(r.headers, "ETag: \"v1\"\r\nLocation: /api/v1/apps/7\r\n");
	free(r.headers);
}

/* ---- a live server -------------------------------------------------------------- */

struct app {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool slow_entered;
	bool slow_release;
};

static void handler(const kaa__http_request *req, kaa__http_response *resp, void *ud)
{
	struct app *a = ud;
	bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;

	if (get && strcmp(req->path, "/hello") == 0) {
		kaa__http_respond(resp, 200, "text/plain", "hello world\n", 12);
		kaa__http_response_add_header(resp, "X-Test", "yes");
	} else if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/echo") == 0) {
		kaa__http_respond(resp, 200, "application/octet-stream", req->body, req->body_len);
	} else if (get && strcmp(req->path, "/query") == 0) {
		kaa__http_respond(resp, 200, "text/plain", req->query, strlen(req->query));
	} else if (get && strcmp(req->path, "/peer") == 0) {
		kaa__http_respond(resp, 200, "text/plain", req->peer, strlen(req->peer));
	} else if (get && strcmp(req->path, "/close") == 0) {
		kaa__http_respond(resp, 200, "text/plain", "bye", 3);
		resp->close = true;
	} else if (get && strcmp(req->path, "/slow") == 0) {
		pthread_mutex_lock(&a->mu);
		a->slow_entered = true;
		pthread_cond_broadcast(&a->cond);
		while (!a->slow_release)
			pthread_cond_wait(&a->cond, &a->mu);
		pthread_mutex_unlock(&a->mu);
		kaa__http_respond(resp, 200, "text/plain", "slow", 4);
	} else if (strcmp(req->path, "/nostatus") == 0) {
		/* leaves the response empty: the server answers 500 */
	} else if (get && strcmp(req->path, "/nocontent") == 0) {
		resp->status = 204;
	} else {
		kaa__http_respond_json_error(resp, 404, "not_found", "no such path");
	}
}

static void app_init(struct app *a)
{
	memset(a, 0, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cond, NULL);
}

static void app_destroy(struct app *a)
{
	pthread_mutex_destroy(&a->mu);
	pthread_cond_destroy(&a->cond);
}

static bool app_wait_slow_entered(struct app *a)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&a->mu);
	while (!a->slow_entered)
		if (pthread_cond_timedwait(&a->cond, &a->mu, &ts) != 0)
			break;
	ok = a->slow_entered;
	pthread_mutex_unlock(&a->mu);
	return ok;
}

static void app_release_slow(struct app *a)
{
	pthread_mutex_lock(&a->mu);
	a->slow_release = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->mu);
}

static kaa__http_server *start_server(const kaa__http_limits *lim, struct app *a)
{
	kaa__http_server *s = NULL;

	CU_ASSERT_EQUAL(kaa__http_server_new("127.0.0.1", 0, lim, handler, a, &s), KAA_OK);
	if (!s)
		return NULL;
	CU_ASSERT(kaa__http_server_port(s) > 0);
	CU_ASSERT_EQUAL(kaa__http_server_start(s), KAA_OK);
	return s;
}

/* A test client with its own buffer, so pipelined responses that arrive
 * together are split correctly. */
typedef struct client {
	int fd;
	char *buf;
	size_t len;
	size_t cap;
} client;

typedef struct response {
	int status;
	char *head; /* status line and headers, NUL-terminated */
	char *body;
	size_t body_len;
} response;

static bool client_open(client *c, int port)
{
	struct sockaddr_in a = {0};

	c->len = 0;
	c->cap = 4 << 20;
	c->buf = malloc(c->cap);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return c->fd >= 0 && connect(c->fd, (struct sockaddr *)&a, sizeof(a)) == 0;
}

static void client_close(client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

static bool client_send(client *c, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool client_sends(client *c, const char *s)
{
	return client_send(c, s, strlen(s));
}

/* Reads once: >0 bytes added, 0 at EOF (a reset counts as EOF), -1 on
 * timeout or error. */
static ssize_t client_fill(client *c, int64_t deadline)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int64_t left = deadline - kaa__now_ms();
	ssize_t r;

	if (left <= 0 || poll(&p, 1, (int)left) <= 0)
		return -1;
	if (c->len == c->cap)
		return -1;
	r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (r < 0)
		return errno == ECONNRESET ? 0 : -1;
	c->len += (size_t)r;
	return r;
}

static void response_clear(response *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* Copies the value of header name (exact case, as the server writes it)
 * into out; false when absent. */
static bool resp_header(const response *r, const char *name, char *out, size_t size)
{
	char pat[128];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "\r\n%s: ", name);
	p = strstr(r->head, pat);
	if (!p)
		return false;
	p += strlen(pat);
	e = strstr(p, "\r\n");
	snprintf(out, size, "%.*s", (int)(e - p), p);
	return true;
}

/* Reads one response; the body is skipped for HEAD (head_only). */
static bool client_read_response(client *c, response *r, bool head_only)
{
	int64_t deadline = kaa__now_ms() + WAIT_MS;
	size_t hlen, blen = 0;
	char *end, cl[32];

	memset(r, 0, sizeof(*r));
	while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
		if (client_fill(c, deadline) <= 0)
			return false;
	hlen = (size_t)(end - c->buf) + 4;
	r->head = strndup(c->buf, hlen);
	if (sscanf(r->head, "HTTP/1.1 %d ", &r->status) != 1)
		return false;
	if (!head_only && resp_header(r, "Content-Length", cl, sizeof(cl)))
		blen = strtoul(cl, NULL, 10);
	while (c->len < hlen + blen)
		if (client_fill(c, deadline) <= 0)
			return false;
	r->body = malloc(blen + 1);
	memcpy(r->body, c->buf + hlen, blen);
	r->body[blen] = '\0';
	r->body_len = blen;
	c->len -= hlen + blen;
	memmove(c->buf, c->buf + hlen + blen, c->len);
	return true;
}

/* True when the server closes the connection before the deadline; bytes
 * that arrive meanwhile are kept in the buffer. */
static bool client_wait_eof(client *c, int64_t deadline)
{
	for (;;) {
		ssize_t r = client_fill(c, deadline);
		if (r == 0)
			return true;
		if (r < 0)
			return false;
	}
}

static bool get(client *c, const char *path, response *r)
{
	char req[512];

	snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path);
	return client_sends(c, req) && client_read_response(c, r, false);
}

static void test_server_get_head_keepalive(void)
{
	struct app a;
	kaa__http_server *s;
	client c;
	response r;
	char v[64];

	app_init(&a);
	s = start_server(NULL, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE_FATAL(client_open(&c, kaa__http_server_port(s)));

	CU_ASSERT_TRUE_FATAL(get(&c, "/hello", &r));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "hello world\n");
	CU_ASSERT_TRUE(resp_header(&r, "Content-Type", v, sizeof(v)) && !strcmp(v, "text/plain"));
	CU_ASSERT_TRUE(resp_header(&r, "X-Test", v, sizeof(v)) && !strcmp(v, "yes"));
	CU_ASSERT_TRUE(resp_header(&r, "Date", v, sizeof(v)) && strstr(v, " GMT"));
	CU_ASSERT_FALSE(resp_header(&r, "Connection", v, sizeof(v)));
	response_clear(&r);

	/* HEAD: the GET's Content-Length, no body. The next response on the
	 * same connection starting right after the head proves it. */
	CU_ASSERT_TRUE_FATAL(client_sends(&c, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, true));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_TRUE(resp_header(&r, "Content-Length", v, sizeof(v)) && !strcmp(v, "12"));
	response_clear(&r);

	/* Still the same connection: keep-alive. */
	CU_ASSERT_TRUE_FATAL(get(&c, "/query?a=1&b", &r));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "a=1&b");
	response_clear(&r);

	CU_ASSERT_TRUE_FATAL(get(&c, "/peer", &r));
	CU_ASSERT_EQUAL(strncmp(r.body, "127.0.0.1:", 10), 0);
	response_clear(&r);

	CU_ASSERT_TRUE_FATAL(get(&c, "/missing", &r));
	CU_ASSERT_EQUAL(r.status, 404);
	CU_ASSERT_STRING_EQUAL(r.body,
			       "{\"error\":{\"code\":\"not_found\",\"message\":\"no such path\"}}");
	response_clear(&r);

	CU_ASSERT_TRUE_FATAL(get(&c, "/nostatus", &r));
	CU_ASSERT_EQUAL(r.status, 500);
	response_clear(&r);

	CU_ASSERT_TRUE_FATAL(get(&c, "/nocontent", &r));
	CU_ASSERT_EQUAL(r.status, 204);
	CU_ASSERT_FALSE(resp_header(&r, "Content-Length", v, sizeof(v)));
	response_clear(&r);

	/* Two pipelined requests in one write: answered in order. */
	CU_ASSERT_TRUE_FATAL(client_sends(&c, "GET /query?first HTTP/1.1\r\nHost: t\r\n\r\n"
					      "GET /query?second HTTP/1.1\r\nHost: t\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_STRING_EQUAL(r.body, "first");
	response_clear(&r);
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_STRING_EQUAL(r.body, "second");
	response_clear(&r);

	/* Connection: close is honoured. */
	CU_ASSERT_TRUE_FATAL(
		client_sends(&c, "GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_TRUE(resp_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "close"));
	response_clear(&r);
	CU_ASSERT_TRUE(client_wait_eof(&c, kaa__now_ms() + WAIT_MS));
	client_close(&c);

	/* The handler can close too. */
	CU_ASSERT_TRUE_FATAL(client_open(&c, kaa__http_server_port(s)));
	CU_ASSERT_TRUE_FATAL(get(&c, "/close", &r));
	CU_ASSERT_STRING_EQUAL(r.body, "bye");
	response_clear(&r);
	CU_ASSERT_TRUE(client_wait_eof(&c, kaa__now_ms() + WAIT_MS));
	client_close(&c);

	/* HTTP/1.0: closed after the response unless keep-alive is asked for. */
	CU_ASSERT_TRUE_FATAL(client_open(&c, kaa__http_server_port(s)));
	CU_ASSERT_TRUE_FATAL(
		client_sends(&c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_TRUE(resp_header(&r, "Connection", v, sizeof(v)) && !strcmp(v, "keep-alive"));
	response_clear(&r);
	CU_ASSERT_TRUE_FATAL(client_sends(&c, "GET /hello HTTP/1.0\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_EQUAL(r.status, 200);
	response_clear(&r);
	CU_ASSERT_TRUE(client_wait_eof(&c, kaa__now_ms() + WAIT_MS));
	client_close(&c);

	kaa__http_server_free(s);
	app_destroy(&a);
}

static void test_server_post(void)
{
	struct app a;
	kaa__http_server *s;
	client c;
	response r;
	size_t n = 300 * 1000;
	char *body = malloc(n), head[256];

	for (size_t i = 0; i < n; i++)
		body[i] = (char)('a' + i % 26);
	app_init(&a);
	s = start_server(NULL, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE_FATAL(client_open(&c, kaa__http_server_port(s)));

	/* A body larger than any single read. */
	snprintf(head, sizeof(head),
		 "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", n);
	CU_ASSERT_TRUE_FATAL(client_sends(&c, head));
	CU_ASSERT_TRUE_FATAL(client_send(&c, body, n));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL_FATAL(r.body_len, n);
	CU_ASSERT_EQUAL(memcmp(r.body, body, n), 0);
	response_clear(&r);

	/* Expect: 100-continue gets the interim response before the body. */
	CU_ASSERT_TRUE_FATAL(client_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\n"
					      "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, true));
	CU_ASSERT_EQUAL(r.status, 100);
	response_clear(&r);
	CU_ASSERT_TRUE_FATAL(client_sends(&c, "ping"));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_STRING_EQUAL(r.body, "ping");
	response_clear(&r);

	client_close(&c);
	kaa__http_server_free(s);
	app_destroy(&a);
	free(body);
}

/* Sends raw bytes on a new connection and expects one error response
 * with the given status followed by the server closing the connection. */
static void expect_refused(int port, const char *raw, size_t len, int status, const char *code)
{
	client c;
	response r;
	char want[128];

	CU_ASSERT_TRUE_FATAL(client_open(&c, port));
	CU_ASSERT_TRUE(client_send(&c, raw, len));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c, &r, false));
	CU_ASSERT_EQUAL(r.status, status);
	snprintf(want, sizeof(want), "{\"error\":{\"code\":\"%s\"", code);
	CU_ASSERT_EQUAL(strncmp(r.body, want, strlen(want)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.head, "\r\nConnection: close\r\n"));
	response_clear(&r);
	CU_ASSERT_TRUE(client_wait_eof(&c, kaa__now_ms() + WAIT_MS));
	client_close(&c);
}

static void test_server_errors(void)
{
	struct app a;
	kaa__http_server *s;
	int port;
	char *big;
	const char *p;

	app_init(&a);
	s = start_server(NULL, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	port = kaa__http_server_port(s);

	/* 413 before the body is read; the body already on its way is
	 * drained so the client sees the answer rather than a reset. */
	big = repeat("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n", 'x',
		     64 * 1024, "");
	expect_refused(port, big, strlen(big), 413, "payload_too_large");
	free(big);

	/* 431: 20 KB of header. */
	big = repeat("GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ", 'a', 20000, "\r\n\r\n");
	expect_refused(port, big, strlen(big), 431, "headers_too_large");
	free(big);

	p = "GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 12x\r\n\r\n";
	expect_refused(port, p, strlen(p), 400, "bad_request");
	p = "GET /hello HTTP/2.0\r\n\r\n";
	expect_refused(port, p, strlen(p), 505, "version_not_supported");
	p = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
	expect_refused(port, p, strlen(p), 501, "not_implemented");
	/* Not HTTP at all (a TLS ClientHello): refused without waiting. */
	p = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03";
	expect_refused(port, p, strlen(p), 400, "bad_request");

	/* The server is still fine. */
	{
		client c;
		response r;

		CU_ASSERT_TRUE_FATAL(client_open(&c, port));
		CU_ASSERT_TRUE_FATAL(get(&c, "/hello", &r));
		CU_ASSERT_EQUAL(r.status, 200);
		response_clear(&r);
		client_close(&c);
	}
	kaa__http_server_free(s);
	app_destroy(&a);
}

static void test_server_timeouts(void)
{
	kaa__http_limits lim = {.read_timeout_ms = 300, .idle_timeout_ms = 300};
	struct app a;
	kaa__http_server *s;
	client slow, silent, idle, trickle;
	response r;
	int64_t t0, el;
	int port;

	app_init(&a);
	s = start_server(&lim, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	port = kaa__http_server_port(s);

	/* Slow-loris: half a request, then nothing. Answered 408 and closed
	 * after the read timeout, not before. */
	CU_ASSERT_TRUE_FATAL(client_open(&slow, port));
	CU_ASSERT_TRUE_FATAL(client_open(&silent, port));
	t0 = kaa__now_ms();
	CU_ASSERT_TRUE_FATAL(client_sends(&slow, "GET /hello HTTP/1.1\r\nHost: t\r\n"));
	CU_ASSERT_TRUE(client_wait_eof(&slow, t0 + WAIT_MS));
	el = kaa__now_ms() - t0;
	CU_ASSERT(el >= 250);
	CU_ASSERT(el < WAIT_MS);
	CU_ASSERT_TRUE(slow.len > 0 && strncmp(slow.buf, "HTTP/1.1 408 ", 13) == 0);
	client_close(&slow);

	/* A connection that never sends a byte is closed after the read timeout. */
	CU_ASSERT_TRUE(client_wait_eof(&silent, t0 + WAIT_MS));
	CU_ASSERT_EQUAL(silent.len, 0);
	client_close(&silent);

	/* Trickling a byte every 50 ms does not extend the read timeout: it
	 * bounds the whole request. */
	CU_ASSERT_TRUE_FATAL(client_open(&trickle, port));
	t0 = kaa__now_ms();
	{
		const char *req = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Filler: aaaaaaaaaaaaaaaaaa";
		size_t i = 0;
		bool eof = false;

		while (!eof && kaa__now_ms() - t0 < WAIT_MS && req[i]) {
			struct pollfd p = {.fd = trickle.fd, .events = POLLIN};
			if (poll(&p, 1, 50) > 0)
				eof = client_fill(&trickle, kaa__now_ms() + WAIT_MS) == 0;
			else
				client_send(&trickle, &req[i++], 1);
		}
		if (!eof)
			eof = client_wait_eof(&trickle, t0 + WAIT_MS);
		CU_ASSERT_TRUE(eof);
		el = kaa__now_ms() - t0;
		CU_ASSERT(el >= 250 && el < 2000);
	}
	client_close(&trickle);

	/* Keep-alive idle timeout after a complete exchange. */
	CU_ASSERT_TRUE_FATAL(client_open(&idle, port));
	CU_ASSERT_TRUE_FATAL(get(&idle, "/hello", &r));
	response_clear(&r);
	t0 = kaa__now_ms();
	CU_ASSERT_TRUE(client_wait_eof(&idle, t0 + WAIT_MS));
	CU_ASSERT(kaa__now_ms() - t0 >= 250);
	CU_ASSERT_EQUAL(idle.len, 0);
	client_close(&idle);

	kaa__http_server_free(s);
	app_destroy(&a);
}

static void test_server_connection_limit(void)
{
	kaa__http_limits lim = {.max_connections = 2};
	struct app a;
	kaa__http_server *s;
	client c1, c2, c3;
	response r;
	int port;

	app_init(&a);
	s = start_server(&lim, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	port = kaa__http_server_port(s);
	/* A full exchange on each proves both are accepted and held. */
	CU_ASSERT_TRUE_FATAL(client_open(&c1, port));
	CU_ASSERT_TRUE_FATAL(get(&c1, "/hello", &r));
	response_clear(&r);
	CU_ASSERT_TRUE_FATAL(client_open(&c2, port));
	CU_ASSERT_TRUE_FATAL(get(&c2, "/hello", &r));
	response_clear(&r);

	CU_ASSERT_TRUE_FATAL(client_open(&c3, port));
	CU_ASSERT_TRUE_FATAL(client_read_response(&c3, &r, false));
	CU_ASSERT_EQUAL(r.status, 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(r.head, "\r\nRetry-After: 1\r\n"));
	response_clear(&r);
	CU_ASSERT_TRUE(client_wait_eof(&c3, kaa__now_ms() + WAIT_MS));
	client_close(&c3);

	/* A slot freed is a slot available again. */
	client_close(&c1);
	{
		int64_t deadline = kaa__now_ms() + WAIT_MS;
		bool ok = false;

		/* The server notices c1's close asynchronously: retry until
		 * the new connection is served rather than refused. */
		while (!ok && kaa__now_ms() < deadline) {
			CU_ASSERT_TRUE_FATAL(client_open(&c3, port));
			ok = get(&c3, "/hello", &r) && r.status == 200;
			response_clear(&r);
			client_close(&c3);
		}
		CU_ASSERT_TRUE(ok);
	}
	client_close(&c2);
	kaa__http_server_free(s);
	app_destroy(&a);
}

static void test_server_slow_handler(void)
{
	struct app a;
	kaa__http_server *s;
	client c1, c2;
	response r;

	app_init(&a);
	s = start_server(NULL, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE_FATAL(client_open(&c1, kaa__http_server_port(s)));
	CU_ASSERT_TRUE_FATAL(client_open(&c2, kaa__http_server_port(s)));
	CU_ASSERT_TRUE_FATAL(client_sends(&c1, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(app_wait_slow_entered(&a));
	/* One worker is stuck; the others and the I/O thread are not. */
	CU_ASSERT_TRUE(get(&c2, "/hello", &r));
	CU_ASSERT_EQUAL(r.status, 200);
	response_clear(&r);
	app_release_slow(&a);
	CU_ASSERT_TRUE(client_read_response(&c1, &r, false));
	CU_ASSERT_STRING_EQUAL(r.body, "slow");
	response_clear(&r);
	client_close(&c1);
	client_close(&c2);
	kaa__http_server_free(s);
	app_destroy(&a);
}

static void *free_thread(void *arg)
{
	kaa__http_server_free(arg);
	return NULL;
}

static void test_server_free_with_clients(void)
{
	struct app a;
	kaa__http_server *s;
	client idle, partial, fresh, busy;
	response r;
	pthread_t t;
	int port;

	app_init(&a);
	s = start_server(NULL, &a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	port = kaa__http_server_port(s);
	CU_ASSERT_TRUE_FATAL(client_open(&idle, port));
	CU_ASSERT_TRUE_FATAL(get(&idle, "/hello", &r));
	response_clear(&r);
	CU_ASSERT_TRUE_FATAL(client_open(&partial, port));
	CU_ASSERT_TRUE_FATAL(client_sends(&partial, "GET /hel"));
	CU_ASSERT_TRUE_FATAL(client_open(&fresh, port));
	/* A request inside the handler while the server is freed: free
	 * waits for it. Releasing it before or after free starts waiting
	 * are both valid orders, so no sleep is needed. */
	CU_ASSERT_TRUE_FATAL(client_open(&busy, port));
	CU_ASSERT_TRUE_FATAL(client_sends(&busy, "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"));
	CU_ASSERT_TRUE_FATAL(app_wait_slow_entered(&a));
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, free_thread, s), 0);
	app_release_slow(&a);
	pthread_join(t, NULL);

	CU_ASSERT_TRUE(client_wait_eof(&idle, kaa__now_ms() + WAIT_MS));
	CU_ASSERT_TRUE(client_wait_eof(&partial, kaa__now_ms() + WAIT_MS));
	CU_ASSERT_TRUE(client_wait_eof(&fresh, kaa__now_ms() + WAIT_MS));
	CU_ASSERT_TRUE(client_wait_eof(&busy, kaa__now_ms() + WAIT_MS));
	client_close(&idle);
	client_close(&partial);
	client_close(&fresh);
	client_close(&busy);
	app_destroy(&a);
}

static void test_server_lifecycle(void)
{
	kaa__http_limits bad = {.workers = 1000};
	kaa__http_server *s = NULL, *s2 = NULL;
	struct app a;
	client c;
	response r;
	int port;

	app_init(&a);
	CU_ASSERT_EQUAL(kaa__http_server_new("127.0.0.1", -1, NULL, handler, &a, &s),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_server_new("127.0.0.1", 65536, NULL, handler, &a, &s),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_server_new("127.0.0.1", 0, NULL, NULL, &a, &s), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__http_server_new("127.0.0.1", 0, &bad, handler, &a, &s), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(s);

	/* Freed without being started. */
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_new("127.0.0.1", 0, NULL, handler, &a, &s), KAA_OK);
	port = kaa__http_server_port(s);
	/* A busy port is an error at start-up. */
	CU_ASSERT_EQUAL(kaa__http_server_new("127.0.0.1", port, NULL, handler, &a, &s2),
			KAA_ERR_EXISTS);
	CU_ASSERT_PTR_NULL(s2);
	kaa__http_server_free(s);
	kaa__http_server_free(NULL);

	/* Every address (dual-stack, or IPv4 only where IPv6 is off),
	 * reached over IPv4; start twice is refused. */
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_new(NULL, 0, NULL, handler, &a, &s), KAA_OK);
	CU_ASSERT_EQUAL(kaa__http_server_start(s), KAA_OK);
	CU_ASSERT_EQUAL(kaa__http_server_start(s), KAA_ERR_INVAL);
	CU_ASSERT_TRUE_FATAL(client_open(&c, kaa__http_server_port(s)));
	CU_ASSERT_TRUE(get(&c, "/peer", &r));
	CU_ASSERT_EQUAL(r.status, 200);
	CU_ASSERT_EQUAL(strncmp(r.body, "127.0.0.1:", 10), 0);
	response_clear(&r);
	client_close(&c);
	kaa__http_server_free(s);
	app_destroy(&a);
}

static const kaa__cu_test parser_tests[] = {
	{"GET with headers", test_parse_get},
	{"request targets", test_parse_targets},
	{"body and pipelining", test_parse_body_and_pipelining},
	{"split across reads", test_parse_split_reads},
	{"versions and Connection", test_parse_versions_and_connection},
	{"bad requests", test_parse_bad},
	{"limits", test_parse_limits},
	{"JSON error body", test_json_error},
	{"extra response headers", test_add_header},
};

/* ---- HTTPS -------------------------------------------------------------- */

/* A self-signed P-256 certificate for 127.0.0.1 in dir/cert.pem and its
 * key in dir/key.pem. */
static bool write_cert(const char *dir)
{
	char path[512];
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *san;
	FILE *f;
	bool ok = false;
	if (!k || !x || !n)
		goto out;
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"127.0.0.1", -1,
				   -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	san = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	if (!san || !X509_add_ext(x, san, -1) || !X509_sign(x, k, EVP_sha256()))
		goto out;
	X509_EXTENSION_free(san);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	f = fopen(path, "w");
	ok = f && PEM_write_X509(f, x);
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	f = fopen(path, "w");
	ok = ok && f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (f)
		fclose(f);
out:
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(k);
	return ok;
}

typedef struct sink {
	char *p;
	size_t n;
} sink;

static size_t sink_write(char *d, size_t size, size_t nmemb, void *ud)
{
	sink *k = ud;
	char *p = realloc(k->p, k->n + size * nmemb + 1);
	if (!p)
		return 0;
	memcpy(p + k->n, d, size * nmemb);
	k->p = p;
	k->n += size * nmemb;
	k->p[k->n] = '\0';
	return size * nmemb;
}

/* HTTPS with libcurl verifying the certificate: status, body in *out. */
static long https(CURL *h, const char *url, const char *ca, const char *body, size_t blen,
		  sink *out)
{
	long code = 0;
	out->n = 0;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)blen);
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static void test_server_tls(void)
{
	char dir[] = "/tmp/kaa-http-tls-XXXXXX", cert[600], key[600], url[128];
	struct app a;
	kaa__http_server *s = NULL;
	sink out = {0};
	client c = {0};
	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	CU_ASSERT_TRUE_FATAL(write_cert(dir));
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	app_init(&a);
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_new("127.0.0.1", 0, NULL, handler, &a, &s), KAA_OK);
	CU_ASSERT_EQUAL(kaa__http_server_set_tls(s, "/nonexistent.pem", key), KAA_ERR_IO);
	CU_ASSERT_EQUAL(kaa__http_server_set_tls(s, cert, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_set_tls(s, cert, key), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_start(s), KAA_OK);
	CU_ASSERT_EQUAL(kaa__http_server_set_tls(s, cert, key), KAA_ERR_INVAL);
	int port = kaa__http_server_port(s);

	CURL *h = curl_easy_init();
	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/hello", port);
	CU_ASSERT_EQUAL(https(h, url, cert, NULL, 0, &out), 200);
	CU_ASSERT(out.n == 12 && memcmp(out.p, "hello world\n", 12) == 0);
	/* the same connection again, then a body of many TLS records (the
	 * records TLS buffered beyond one read must not stall) */
	CU_ASSERT_EQUAL(https(h, url, cert, NULL, 0, &out), 200);
	size_t big = 300 * 1024;
	char *body = malloc(big);
	for (size_t i = 0; i < big; i++)
		body[i] = (char)('a' + i % 26);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/echo", port);
	CU_ASSERT_EQUAL(https(h, url, cert, body, big, &out), 200);
	CU_ASSERT(out.n == big && memcmp(out.p, body, big) == 0);
	free(body);
	curl_easy_cleanup(h);

	/* plain HTTP on the TLS port: no HTTP answer, the connection ends */
	CU_ASSERT_TRUE_FATAL(client_open(&c, port));
	CU_ASSERT_TRUE(client_sends(&c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n"));
	CU_ASSERT_TRUE(client_wait_eof(&c, kaa__now_ms() + 5000));
	CU_ASSERT(c.len == 0 || memcmp(c.buf, "HTTP/", 5) != 0);
	client_close(&c);

	kaa__http_server_free(s);
	app_destroy(&a);
	free(out.p);
	unlink(cert);
	unlink(key);
	rmdir(dir);
}

static const kaa__cu_test server_tests[] = {
	{"GET, HEAD, keep-alive, pipelining, close", test_server_get_head_keepalive},
	{"POST bodies and 100-continue", test_server_post},
	{"413, 431, 400, 505, 501", test_server_errors},
	{"read and idle timeouts", test_server_timeouts},
	{"connection limit answers 503", test_server_connection_limit},
	{"slow handler blocks nobody else", test_server_slow_handler},
	{"free with live connections", test_server_free_with_clients},
	{"new/start/free, busy port", test_server_lifecycle},
	{"HTTPS: verified, keep-alive, large body, plain HTTP refused", test_server_tls},
};

int main(void)
{
	/* The server logs each refused request; the tests provoke many. */
	kaa__log_level = getenv("KAA_TEST_LOG") ? KAA_LOG_DEBUG : KAA_LOG_ERROR + 1;
	if (kaa__cu_add("http_parser", parser_tests, KAA__CU_COUNT(parser_tests), NULL, NULL) !=
		    0 ||
	    kaa__cu_add("http_server", server_tests, KAA__CU_COUNT(server_tests), NULL, NULL) != 0)
		return 1;
	return kaa__cu_run_all();
}
