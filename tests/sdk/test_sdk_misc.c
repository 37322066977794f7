/* libkaa: backoff bounds, bootstrap answer parsing and the HTTP fetch,
 * weighted node choice, the JSON canonical form / merge patch, and the
 * frames the device sends. */
#include "cu_main.h"
#include "proto/endpoint_codec.h"
#include "base/error.h"
#include "kaa/kaa.h"
#include "sdk_internal.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_backoff(void)
{
	kaa__sdk_backoff b;
	uint32_t base = 100;

	kaa__sdk_backoff_init(&b, 100, 1000);
	for (int i = 0; i < 12; i++) {
		uint32_t d = kaa__sdk_backoff_next(&b);
		/* equal jitter: in [base/2, base], base doubling up to the cap */
		CU_ASSERT(d >= base / 2 && d <= base);
		base = base * 2 > 1000 ? 1000 : base * 2;
	}
	kaa__sdk_backoff_reset(&b);
	uint32_t d = kaa__sdk_backoff_next(&b);
	CU_ASSERT(d >= 50 && d <= 100);
	/* a fleet does not retry in step: delays differ between clients */
	int distinct = 0;
	uint32_t first = 0;
	for (int i = 0; i < 20; i++) {
		kaa__sdk_backoff_init(&b, 1000, 1000);
		uint32_t v = kaa__sdk_backoff_next(&b);
		if (i == 0)
			first = v;
		else if (v != first)
			distinct++;
	}
	CU_ASSERT(distinct > 0);
	/* degenerate arguments are clamped */
	kaa__sdk_backoff_init(&b, 0, 0);
	CU_ASSERT(kaa__sdk_backoff_next(&b) <= 1);
}

static void test_hostport(void)
{
	char h[64];
	uint16_t p = 0;

	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("example.com:8081", h, sizeof(h), &p), KAA_OK);
	CU_ASSERT_STRING_EQUAL(h, "example.com");
	CU_ASSERT_EQUAL(p, 8081);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("[::1]:9", h, sizeof(h), &p), KAA_OK);
	CU_ASSERT_STRING_EQUAL(h, "::1");
	CU_ASSERT_EQUAL(p, 9);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("host", h, sizeof(h), &p), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("host:0", h, sizeof(h), &p), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("host:65536", h, sizeof(h), &p), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport(":80", h, sizeof(h), &p), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("::1:80", h, sizeof(h), &p), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("h:80x", h, sizeof(h), &p), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_parse_hostport("averyveryverylonghostname:1", h, 8, &p),
			KAA_ERR_INVAL);
}

static void test_bootstrap_parse(void)
{
	kaa__node_addr n[4];
	size_t cnt = 0;
	const char *ok = "{\"nodes\":[{\"id\":\"a\",\"host\":\"10.0.0.1\",\"port\":9080,"
			 "\"weight\":1000},{\"id\":\"b\",\"host\":\"\",\"port\":9080},"
			 "{\"id\":\"c\",\"host\":\"h3\",\"port\":70000},"
			 "{\"id\":\"d\",\"host\":\"h4\",\"port\":9081,\"weight\":0}]}";

	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_parse(ok, strlen(ok), n, 4, &cnt), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(cnt, 2); /* empty host and bad port skipped */
	CU_ASSERT_STRING_EQUAL(n[0].host, "10.0.0.1");
	CU_ASSERT_EQUAL(n[0].port, 9080);
	CU_ASSERT_EQUAL(n[0].weight, 1000);
	CU_ASSERT_STRING_EQUAL(n[1].host, "h4");
	CU_ASSERT_EQUAL(n[1].weight, 1); /* at least 1 */
	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_parse("{\"nodes\":[]}", 12, n, 4, &cnt), KAA_OK);
	CU_ASSERT_EQUAL(cnt, 0);
	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_parse("{\"nodes\":{}}", 12, n, 4, &cnt), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_parse("[1,2", 4, n, 4, &cnt), KAA_ERR_INVAL);
	/* max bounds the output */
	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_parse(ok, strlen(ok), n, 1, &cnt), KAA_OK);
	CU_ASSERT_EQUAL(cnt, 1);
}

static void test_weighted(void)
{
	kaa__node_addr n[3] = {{.weight = 100}, {.weight = 300}, {.weight = 600}};
	size_t hits[3] = {0};
	uint64_t rng = 12345;

	for (int i = 0; i < 30000; i++)
		hits[kaa__sdk_pick_weighted(n, 3, SIZE_MAX, &rng)]++;
	/* expected 3000 / 9000 / 18000 */
	CU_ASSERT(hits[0] > 2500 && hits[0] < 3500);
	CU_ASSERT(hits[1] > 8300 && hits[1] < 9700);
	CU_ASSERT(hits[2] > 17000 && hits[2] < 19000);
	/* avoid: the failed node is not picked while another exists */
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_NOT_EQUAL(kaa__sdk_pick_weighted(n, 3, 2, &rng), 2);
	CU_ASSERT_EQUAL(kaa__sdk_pick_weighted(n, 1, 0, &rng), 0);
}

static char *canon(const char *s)
{
	kaa__sj *v = NULL;
	char *out = NULL;
	size_t len;
	if (kaa__sj_parse(s, strlen(s), 4096, 64, &v) != KAA_OK)
		return NULL;
	if (kaa__sj_canonical(v, &out, &len) != KAA_OK)
		out = NULL;
	kaa__sj_free(v);
	return out;
}

static void check_canon(const char *in, const char *want)
{
	char *got = canon(in);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_json(void)
{
	kaa__sj *v = NULL;
	char hex[65];

	check_canon(" { \"b\" : [1, 2.50, 1e2, \"x\\n\", \"\\u001f\"], \"a\": {\"z\":null,"
		    "\"y\":true} } ",
		    "{\"a\":{\"y\":true,\"z\":null},\"b\":[1,2.5,100,\"x\\n\",\"\\u001F\"]}");
	check_canon("[-0, 0.1, 1.0, -9223372036854775808, 12345678901234567890, 1e300]",
		    "[0,0.1,1,-9223372036854775808,1.2345678901234567e+19,1e+300]");
	check_canon("\"\\u00e9\\ud83d\\ude00\\/\"", "\"\xc3\xa9\xf0\x9f\x98\x80/\"");
	/* the same hash the control service computes for this document */
	const char *doc = "{\"b\":[1,2.5,100,\"x\\n\",\"\\u001F\"],\"a\":{\"z\":null,\"y\":true}}";
	CU_ASSERT_EQUAL(kaa__sj_hash_text(doc, strlen(doc), hex), KAA_OK);
	CU_ASSERT_STRING_EQUAL(hex,
			       "c91780ac7b9291b8181b4641af4924bb82ceb2d777969ee48ea84df9e60f5623");
	/* refused: trailing bytes, duplicate keys, NUL escapes, depth, size */
	CU_ASSERT_EQUAL(kaa__sj_parse("{} x", 4, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("{\"a\":1,\"a\":2}", 13, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("\"\\u0000\"", 8, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("[[[1]]]", 7, 100, 2, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("[[[1]]]", 7, 100, 3, &v), KAA_OK);
	kaa__sj_free(v);
	CU_ASSERT_EQUAL(kaa__sj_parse("[1,2,3]", 7, 6, 8, &v), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__sj_parse("1e999", 5, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("01", 2, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("\"\\ud800\"", 8, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("\"a\tb\"", 5, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sj_parse("", 0, 100, 8, &v), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(v);
}

static void check_patch(const char *target, const char *patch, const char *want)
{
	kaa__sj *t = NULL, *p = NULL, *r = NULL;
	char *out = NULL;
	size_t len;

	if (target)
		CU_ASSERT_EQUAL_FATAL(kaa__sj_parse(target, strlen(target), 4096, 64, &t), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__sj_parse(patch, strlen(patch), 4096, 64, &p), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__sj_merge_patch(t, p, &r), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__sj_canonical(r, &out, &len), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, want);
	free(out);
	kaa__sj_free(t);
	kaa__sj_free(p);
	kaa__sj_free(r);
}

static void test_merge_patch(void)
{
	/* RFC 7386 appendix A */
	check_patch("{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	check_patch("{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}");
	check_patch("{\"a\":\"b\"}", "{\"a\":null}", "{}");
	check_patch("{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}");
	check_patch("{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}");
	check_patch("{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}");
	check_patch("{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
		    "{\"a\":{\"b\":\"d\"}}");
	check_patch("{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}");
	check_patch("[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]");
	check_patch("{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]");
	check_patch("{\"a\":\"foo\"}", "null", "null");
	check_patch("{\"e\":null}", "{\"a\":1}", "{\"a\":1,\"e\":null}");
	check_patch("[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}");
	check_patch(NULL, "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}");
}

/* buf and len by address: the builder call in the same argument list
 * fills them, and argument evaluation order is unspecified */
static Kaa__Endpoint__V1__Frame *decode(int rc, uint8_t **bufp, size_t *lenp)
{
	uint8_t *buf = *bufp;
	size_t len = *lenp;

	Kaa__Endpoint__V1__Frame *f = NULL;
	kaa__frame_error fe;

	CU_ASSERT_EQUAL(rc, KAA_OK);
	if (rc != KAA_OK)
		return NULL;
	rc = kaa__frame_decode(buf, len, NULL, &f, &fe);
	CU_ASSERT_EQUAL(rc, KAA_OK);
	free(buf);
	if (f)
		CU_ASSERT_EQUAL(f->protocol_version, 1);
	return f;
}

static void test_frames(void)
{
	uint8_t *b = NULL;
	size_t l = 0;
	uint8_t pub[91];
	Kaa__Endpoint__V1__Frame *f;

	memset(pub, 7, sizeof(pub));
	f = decode(kaa__sdk_frame_hello(1, "tok", pub, sizeof(pub), NULL, "{\"x\":1}", &b, &l), &b,
		   &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->request_id, 1);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_HELLO);
	CU_ASSERT_STRING_EQUAL(f->hello->application_token, "tok");
	CU_ASSERT_EQUAL(f->hello->public_key.len, sizeof(pub));
	CU_ASSERT_STRING_EQUAL(f->hello->client_profile_json, "{\"x\":1}");
	CU_ASSERT_STRING_EQUAL(f->hello->sdk_profile_id, "");
	kaa__frame_free(f);

	kaa__stream_pos pos[2] = {{.topic_id = "", .last_seq = 3},
				  {.topic_id = "t", .last_seq = 9}};
	f = decode(kaa__sdk_frame_session_resume(2, "sess", pos, 2, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_SESSION_RESUME);
	CU_ASSERT_STRING_EQUAL(f->session_resume->session_id, "sess");
	CU_ASSERT_EQUAL_FATAL(f->session_resume->n_positions, 2);
	CU_ASSERT_EQUAL(f->session_resume->positions[1]->last_seq, 9);
	CU_ASSERT_STRING_EQUAL(f->session_resume->positions[0]->topic_id, "");
	kaa__frame_free(f);

	char *recs[2] = {"{\"a\":1}", "[2]"};
	f = decode(kaa__sdk_frame_log_upload(3, 77, recs, 2, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_LOG_UPLOAD);
	CU_ASSERT_EQUAL(f->log_upload->batch_id, 77);
	CU_ASSERT_EQUAL_FATAL(f->log_upload->n_records_json, 2);
	CU_ASSERT_STRING_EQUAL(f->log_upload->records_json[1], "[2]");
	kaa__frame_free(f);
	CU_ASSERT_EQUAL(kaa__sdk_frame_log_upload(3, 0, recs, 2, &b, &l), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__sdk_frame_log_upload(3, 5, recs, 0, &b, &l), KAA_ERR_INVAL);

	f = decode(kaa__sdk_frame_config_sync(4, "abc", &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_REQUEST);
	CU_ASSERT_STRING_EQUAL(f->config_sync_request->config_hash, "abc");
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_notification_ack("t1", 12, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->request_id, 0);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_ACK);
	CU_ASSERT_EQUAL(f->notification_ack->seq, 12);
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_subscribe(5, "opt", true, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_UNSUBSCRIBE);
	CU_ASSERT_STRING_EQUAL(f->unsubscribe->topic_id, "opt");
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_pong(6, (const uint8_t *)"pp", 2, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL_FATAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_PONG);
	CU_ASSERT_EQUAL(f->pong->payload.len, 2);
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_ack(7, &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_ACK);
	CU_ASSERT_EQUAL(f->request_id, 7);
	kaa__frame_free(f);

	f = decode(kaa__sdk_frame_profile(8, "{}", &b, &l), &b, &l);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(f->body_case, KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE);
	kaa__frame_free(f);
}

/* ---- the bootstrap fetch against a one-shot local HTTP responder ---------- */

typedef struct responder {
	int lfd;
	const char *answer;
	size_t answer_len;
	bool eager; /* answer after the first bytes, not a whole request */
	char request[2048];
} responder;

static void *respond(void *arg)
{
	responder *r = arg;
	int fd = accept(r->lfd, NULL, NULL);
	size_t got = 0;

	if (fd < 0)
		return NULL;
	while (got < sizeof(r->request) - 1 && !strstr(r->request, "\r\n\r\n")) {
		ssize_t n = read(fd, r->request + got, sizeof(r->request) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		r->request[got] = '\0';
		if (r->eager)
			break;
	}
	for (size_t off = 0; off < r->answer_len;) {
		ssize_t n = write(fd, r->answer + off, r->answer_len - off);
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	close(fd);
	return NULL;
}

static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

/* The bootstrap server is scheme 127.0.0.1:PORT path. */
static int fetch_at(const char *scheme, const char *path, const char *answer, size_t len,
		    kaa__node_addr *n, size_t *cnt, char *req_out)
{
	responder r = {
		.answer = answer, .answer_len = len, .eager = strcmp(scheme, "https://") == 0};
	pthread_t t;
	uint16_t port = 0;
	char hp[128];
	int rc;

	r.lfd = listen_any(&port);
	CU_ASSERT_FATAL(r.lfd >= 0);
	pthread_create(&t, NULL, respond, &r);
	snprintf(hp, sizeof(hp), "%s127.0.0.1:%u%s", scheme, port, path);
	rc = kaa__sdk_bootstrap_fetch(hp, NULL, "app tok/1", 3000, n, 4, cnt);
	pthread_join(t, NULL);
	close(r.lfd);
	if (req_out)
		strcpy(req_out, r.request);
	return rc;
}

static int fetch_with(const char *answer, size_t len, kaa__node_addr *n, size_t *cnt, char *req_out)
{
	return fetch_at("", "", answer, len, n, cnt, req_out);
}

static void test_bootstrap_fetch(void)
{
	kaa__node_addr n[4];
	size_t cnt = 0;
	char req[2048];
	const char *body = "{\"nodes\":[{\"id\":\"a\",\"host\":\"127.0.0.1\",\"port\":9080,"
			   "\"weight\":7}]}";
	char ok[1024];
	int len = snprintf(ok, sizeof(ok),
			   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
			   "Content-Length: %zu\r\n\r\n%s",
			   strlen(body), body);

	CU_ASSERT_EQUAL(fetch_with(ok, (size_t)len, n, &cnt, req), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(cnt, 1);
	CU_ASSERT_EQUAL(n[0].port, 9080);
	CU_ASSERT_EQUAL(n[0].weight, 7);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(req, "GET /v1/operations?application=app%20tok%2F1 HTTP/1.1"));
	const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
	CU_ASSERT_EQUAL(fetch_with(nf, strlen(nf), n, &cnt, NULL), KAA_ERR_PROTOCOL);
	const char *junk = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n{{{";
	CU_ASSERT_EQUAL(fetch_with(junk, strlen(junk), n, &cnt, NULL), KAA_ERR_PROTOCOL);
	/* an endless answer is cut at the bound */
	size_t big = 200 * 1024;
	char *huge = malloc(big);
	memset(huge, ' ', big);
	memcpy(huge, "HTTP/1.1 200 OK\r\n\r\n", 19);
	CU_ASSERT_EQUAL(fetch_with(huge, big, n, &cnt, NULL), KAA_ERR_TOO_BIG);
	free(huge);
	/* nobody listening */
	uint16_t port = 0;
	int fd = listen_any(&port);
	close(fd);
	char hp[64];
	snprintf(hp, sizeof(hp), "127.0.0.1:%u", port);
	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_fetch(hp, NULL, "t", 1000, n, 4, &cnt),
			KAA_ERR_UNAVAILABLE);
	CU_ASSERT_EQUAL(kaa__sdk_bootstrap_fetch("ftp://h/", NULL, "t", 1000, n, 4, &cnt),
			KAA_ERR_INVAL);

	/* a URL with a path prefix (an ingress routing by path), and the
	 * advertised URL of a node winning over host and port */
	body = "{\"nodes\":[{\"id\":\"a\",\"host\":\"10.0.0.1\",\"port\":9080,\"weight\":3,"
	       "\"tls\":false,\"url\":\"wss://ops-0.devices.example.com/ops/ops-0\"},"
	       "{\"id\":\"b\",\"host\":\"10.0.0.2\",\"port\":9443,\"tls\":true,"
	       "\"url\":\"not a url\"}]}";
	len = snprintf(ok, sizeof(ok),
		       "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		       "Content-Length: %zu\r\n\r\n%s",
		       strlen(body), body);
	CU_ASSERT_EQUAL(fetch_at("http://", "/kaa/boot/", ok, (size_t)len, n, &cnt, req), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(req, "GET /kaa/boot/v1/operations?application=app%20tok%2F1 HTTP/1.1"));
	CU_ASSERT_EQUAL_FATAL(cnt, 2);
	CU_ASSERT_STRING_EQUAL(n[0].host, "ops-0.devices.example.com");
	CU_ASSERT_EQUAL(n[0].port, 443);
	CU_ASSERT_STRING_EQUAL(n[0].path, "/ops/ops-0");
	CU_ASSERT(n[0].tls && n[0].from_url);
	CU_ASSERT_EQUAL(n[0].weight, 3);
	CU_ASSERT_STRING_EQUAL(n[1].host, "10.0.0.2"); /* an unusable url: host and port */
	CU_ASSERT_EQUAL(n[1].port, 9443);
	CU_ASSERT_STRING_EQUAL(n[1].path, "/");
	CU_ASSERT(n[1].tls && !n[1].from_url);
	/* https to a server that does not speak TLS: the handshake fails */
	CU_ASSERT_EQUAL(fetch_at("https://", "/", ok, (size_t)len, n, &cnt, NULL),
			KAA_ERR_UNAVAILABLE);
}

static void test_client_args(void)
{
	kaa_runtime *rt = NULL;
	kaa_client *c = NULL;
	const char *boot[] = {"127.0.0.1:1"};
	const char *bad_boot[] = {"nocolon"};
	char dir[] = "/tmp/kaa-sdk-client-XXXXXX";
	kaa_client_options o = {.application_token = "t",
				.bootstrap_servers = boot,
				.bootstrap_count = 1,
				.state_dir = dir};
	kaa_client_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	o.application_token = NULL;
	CU_ASSERT_EQUAL(kaa_client_new(rt, &o, &c), KAA_ERR_INVAL);
	o.application_token = "t";
	o.bootstrap_servers = bad_boot;
	CU_ASSERT_EQUAL(kaa_client_new(rt, &o, &c), KAA_ERR_INVAL);
	o.bootstrap_servers = boot;
	o.client_profile_json = "{";
	CU_ASSERT_EQUAL(kaa_client_new(rt, &o, &c), KAA_ERR_INVAL);
	o.client_profile_json = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa_client_new(rt, &o, &c), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_log_add(c, "{\"a\":1}", 7), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_log_add(c, "{\"a\":", 5), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_subscribe(c, ""), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_set_profile(c, "nope"), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.queued_records, 1);
	CU_ASSERT_EQUAL(kaa_client_get_state(c), KAA_STATE_IDLE);
	/* nothing listens on port 1: the client keeps retrying, never crashes */
	CU_ASSERT_EQUAL(kaa_client_start(c), KAA_OK);
	kaa_client_free(c);
	/* the record is still on disk for the next run */
	CU_ASSERT_EQUAL_FATAL(kaa_client_new(rt, &o, &c), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_get_stats(c, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.queued_records, 1);
	kaa_runtime_free(rt);
	kaa_client_free(c);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static const kaa__cu_test tests[] = {
	{"jittered backoff bounds", test_backoff},
	{"host:port parsing", test_hostport},
	{"bootstrap answer parsing", test_bootstrap_parse},
	{"weighted node choice", test_weighted},
	{"JSON parsing and canonical form", test_json},
	{"RFC 7386 merge patch", test_merge_patch},
	{"frames the device sends", test_frames},
	{"bootstrap HTTP fetch", test_bootstrap_fetch},
	{"client arguments and queue across free/new", test_client_args},
};

int main(void)
{
	return kaa__cu_run("sdk", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
