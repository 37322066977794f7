/*
 * test_ops_server.c - the operations service's WebSocket transport
 * (services/operations/ops_server.c) driven by a raw client in this file:
 * a TCP socket (optionally TLS through OpenSSL) writing the WebSocket
 * handshake and masked frames by hand, so tests can send malformed bytes,
 * text frames, oversized messages and fragments, and can stop reading.
 *
 * The handlers answer Ping with Pong through kaa__ops_send, mark a session
 * established on Hello, and record the order of frames per session.
 * Waits are poll() on a socket or a condition variable with a deadline;
 * nothing sleeps to synchronise.
 */
#include "cu_main.h"
#include "proto/endpoint_codec.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"
#include "operations/ops_server.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 5000 /* upper bound for anything expected to happen */

/* ---- handlers ----------------------------------------------------------- */

#define MAX_SIDS 1024 /* session ids used by the whole suite stay below */
#define MAX_ORDER 512

static struct app {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	kaa__ops_server *s;
	kaa__session_id last_sid; /* of the latest Hello or Ping */
	int frames;
	int running[MAX_SIDS + 1]; /* handlers in progress per sid (sid <= MAX_SIDS) */
	bool overlap;              /* two workers ran one session at once */
	bool frame_after_close;
	bool closed_flag[MAX_SIDS + 1];
	int closes;
	uint64_t order[MAX_ORDER];
	int norder;
	size_t profile_len; /* last ProfileUpdate's JSON length */
	bool gate_open;     /* a Ping with payload "gate" waits for this */
} app = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void app_reset(kaa__ops_server *s)
{
	pthread_mutex_lock(&app.mu);
	app.s = s;
	app.last_sid = 0;
	app.frames = 0;
	memset(app.running, 0, sizeof(app.running));
	app.overlap = app.frame_after_close = false;
	memset(app.closed_flag, 0, sizeof(app.closed_flag));
	app.closes = 0;
	app.norder = 0;
	app.profile_len = 0;
	app.gate_open = false;
	pthread_mutex_unlock(&app.mu);
}

static bool payload_is(const Kaa__Endpoint__V1__Frame *f, const char *s)
{
	return f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_PING &&
	       f->ping->payload.len == strlen(s) && !memcmp(f->ping->payload.data, s, strlen(s));
}

static void on_frame(void *ud, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *f)
{
	(void)ud;
	pthread_mutex_lock(&app.mu);
	if (sid <= MAX_SIDS) {
		if (app.running[sid]++)
			app.overlap = true;
		if (app.closed_flag[sid])
			app.frame_after_close = true;
	}
	app.frames++;
	if (f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_PING ||
	    f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_HELLO)
		app.last_sid = sid;
	if (f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_PING && app.norder < MAX_ORDER)
		app.order[app.norder++] = f->request_id;
	if (f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE)
		app.profile_len = strlen(f->profile_update->client_profile_json);
	pthread_cond_broadcast(&app.cv);
	if (payload_is(f, "gate")) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		while (!app.gate_open)
			if (pthread_cond_timedwait(&app.cv, &app.mu, &ts) == ETIMEDOUT)
				break;
	}
	pthread_mutex_unlock(&app.mu);

	if (f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_PING) {
		Kaa__Endpoint__V1__Frame r = KAA__ENDPOINT__V1__FRAME__INIT;
		Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;

		r.protocol_version = 1;
		r.request_id = f->request_id;
		r.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
		r.pong = &p;
		p.payload = f->ping->payload;
		kaa__ops_send(app.s, sid, &r);
		if (payload_is(f, "close"))
			kaa__ops_close_code(app.s, sid, 1008);
	} else if (f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_HELLO) {
		Kaa__Endpoint__V1__Frame r = KAA__ENDPOINT__V1__FRAME__INIT;
		Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;

		kaa__ops_session_set_established(app.s, sid);
		r.protocol_version = 1;
		r.request_id = f->request_id;
		r.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ACK;
		r.ack = &a;
		kaa__ops_send(app.s, sid, &r);
	}
	pthread_mutex_lock(&app.mu);
	if (sid <= MAX_SIDS)
		app.running[sid]--;
	pthread_mutex_unlock(&app.mu);
}

static void on_close(void *ud, kaa__session_id sid)
{
	(void)ud;
	pthread_mutex_lock(&app.mu);
	if (sid <= MAX_SIDS)
		app.closed_flag[sid] = true;
	app.closes++;
	pthread_cond_broadcast(&app.cv);
	pthread_mutex_unlock(&app.mu);
}

static const kaa__ops_handlers handlers = {NULL, on_frame, on_close};

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Waits until *counter >= n (under app.mu). */
static bool wait_count(const int *counter, int n)
{
	struct timespec ts;
	bool ok;

	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&app.mu);
	while (*counter < n)
		if (pthread_cond_timedwait(&app.cv, &app.mu, &ts) == ETIMEDOUT)
			break;
	ok = *counter >= n;
	pthread_mutex_unlock(&app.mu);
	return ok;
}

static bool wait_closed(kaa__session_id sid)
{
	struct timespec ts;
	bool ok;

	if (sid > MAX_SIDS)
		return false;
	deadline_in(&ts, WAIT_MS);
	pthread_mutex_lock(&app.mu);
	while (!app.closed_flag[sid])
		if (pthread_cond_timedwait(&app.cv, &app.mu, &ts) == ETIMEDOUT)
			break;
	ok = app.closed_flag[sid];
	pthread_mutex_unlock(&app.mu);
	return ok;
}

/* ---- raw WebSocket client ------------------------------------------------ */

#define CBUF (512 * 1024)

typedef struct client {
	int fd;
	SSL_CTX *sctx;
	SSL *ssl;
	uint8_t *buf;
	size_t len;
	int status;       /* HTTP status of the handshake */
	char body[16384]; /* the body of an HTTP response */
	int close_code;   /* from a received close frame, 0 if none */
} client;

static SSL_CTX *client_ctx;

static int c_write(client *c, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n) {
		ssize_t w = c->ssl ? SSL_write(c->ssl, b, (int)n) : send(c->fd, b, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads what is available into c->buf; 1 on data, 0 on EOF, -1 on timeout. */
static int c_fill(client *c, int64_t deadline)
{
	ssize_t r;

	if (c->len >= CBUF)
		return -1;
	if (!c->ssl || !SSL_pending(c->ssl)) {
		struct pollfd pfd = {c->fd, POLLIN, 0};
		int64_t left = deadline - kaa__now_ms();

		if (left < 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
	}
	if (c->ssl)
		r = SSL_read(c->ssl, c->buf + c->len, (int)(CBUF - c->len));
	else
		r = recv(c->fd, c->buf + c->len, CBUF - c->len, 0);
	if (r <= 0) {
		if (c->ssl && r < 0 && SSL_get_error(c->ssl, (int)r) == SSL_ERROR_WANT_READ)
			return 1;
		return 0;
	}
	c->len += (size_t)r;
	return 1;
}

static void c_consume(client *c, size_t n)
{
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
}

static void c_close(client *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
}

static bool c_tcp(client *c, int port, bool tls)
{
	struct sockaddr_in a;

	memset(c, 0, sizeof(*c));
	c->buf = malloc(CBUF);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (!c->buf || c->fd < 0)
		return false;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&a, sizeof(a)))
		return false;
	if (tls) {
		c->ssl = SSL_new(client_ctx);
		if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1)
			return false;
	}
	return true;
}

/* Reads an HTTP response head (+ Content-Length body); status or -1. */
static int c_http_response(client *c)
{
	int64_t deadline = kaa__now_ms() + WAIT_MS;
	char *end, *cl;
	size_t head, blen = 0;

	for (;;) {
		c->buf[c->len < CBUF ? c->len : CBUF - 1] = 0;
		end = strstr((char *)c->buf, "\r\n\r\n");
		if (end)
			break;
		if (c_fill(c, deadline) != 1)
			return -1;
	}
	head = (size_t)(end - (char *)c->buf) + 4;
	if (sscanf((char *)c->buf, "HTTP/1.%*d %d", &c->status) != 1)
		return -1;
	*end = 0;
	cl = strcasestr((char *)c->buf, "content-length:");
	if (cl)
		blen = strtoul(cl + 15, NULL, 10);
	while (c->len < head + blen)
		if (c_fill(c, deadline) != 1)
			return -1;
	if (blen >= sizeof(c->body))
		blen = sizeof(c->body) - 1;
	memcpy(c->body, c->buf + head, blen);
	c->body[blen] = 0;
	c_consume(c, head + blen);
	return c->status;
}

/* Connects and upgrades; proto NULL sends no Sec-WebSocket-Protocol. */
static bool c_open(client *c, int port, const char *proto, bool tls)
{
	char req[512];

	if (!c_tcp(c, port, tls))
		return false;
	snprintf(req, sizeof(req),
		 "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		 "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		 "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
		 proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "", proto ? "\r\n" : "");
	if (c_write(c, req, strlen(req)))
		return false;
	return c_http_response(c) > 0;
}

static int c_req(int port, const char *method, const char *path, bool tls, char *body, size_t bsize)
{
	client c;
	char req[256];
	int st = -1;

	if (c_tcp(&c, port, tls)) {
		snprintf(req, sizeof(req),
			 "%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
			 "Connection: close\r\n\r\n",
			 method, path);
		if (!c_write(&c, req, strlen(req)))
			st = c_http_response(&c);
		if (body && bsize) {
			size_t n = strnlen(c.body, sizeof(c.body));

			n = n < bsize ? n : bsize - 1;
			memcpy(body, c.body, n);
			body[n] = 0;
		}
	}
	c_close(&c);
	return st;
}

static int c_get(int port, const char *path, bool tls, char *body, size_t bsize)
{
	return c_req(port, "GET", path, tls, body, bsize);
}

/* Sends one masked WebSocket frame. */
static int c_send_raw(client *c, int opcode, bool fin, const void *p, size_t n)
{
	uint8_t *f = malloc(n + 14), mask[4] = {0x11, 0x22, 0x33, 0x44};
	size_t h = 0;
	int rc;

	if (!f)
		return -1;
	f[h++] = (uint8_t)((fin ? 0x80 : 0) | opcode);
	if (n < 126) {
		f[h++] = (uint8_t)(0x80 | n);
	} else if (n < 65536) {
		f[h++] = 0x80 | 126;
		f[h++] = (uint8_t)(n >> 8);
		f[h++] = (uint8_t)n;
	} else {
		f[h++] = 0x80 | 127;
		for (int i = 7; i >= 0; i--)
			f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
	}
	memcpy(f + h, mask, 4);
	h += 4;
	for (size_t i = 0; i < n; i++)
		f[h + i] = ((const uint8_t *)p)[i] ^ mask[i & 3];
	rc = c_write(c, f, h + n);
	free(f);
	return rc;
}

static int c_send_frame(client *c, const Kaa__Endpoint__V1__Frame *f)
{
	uint8_t *b;
	size_t n;
	int rc;

	if (kaa__frame_encode(f, &b, &n) != KAA_OK)
		return -1;
	rc = c_send_raw(c, 2, true, b, n);
	free(b);
	return rc;
}

static int c_ping(client *c, uint64_t rid, const char *payload)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ping p = KAA__ENDPOINT__V1__PING__INIT;

	f.protocol_version = 1;
	f.request_id = rid;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PING;
	f.ping = &p;
	p.payload.data = (uint8_t *)payload;
	p.payload.len = strlen(payload);
	return c_send_frame(c, &f);
}

static int c_hello(client *c, uint64_t rid)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	static uint8_t key[] = {1, 2, 3, 4};

	f.protocol_version = 1;
	f.request_id = rid;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_HELLO;
	f.hello = &h;
	h.application_token = "app";
	h.public_key.data = key;
	h.public_key.len = sizeof(key);
	return c_send_frame(c, &f);
}

/*
 * Receives the next data frame: its decoded Frame (caller frees), or NULL
 * on close frame (c->close_code set), EOF or timeout.
 */
static Kaa__Endpoint__V1__Frame *c_recv(client *c, int timeout_ms)
{
	int64_t deadline = kaa__now_ms() + timeout_ms;

	for (;;) {
		size_t h = 2, n;

		if (c->len >= 2) {
			n = c->buf[1] & 0x7f;
			if (n == 126 && c->len >= 4) {
				n = (size_t)c->buf[2] << 8 | c->buf[3];
				h = 4;
			} else if (n == 127 && c->len >= 10) {
				n = 0;
				for (int i = 0; i < 8; i++)
					n = n << 8 | c->buf[2 + i];
				h = 10;
			} else if (n >= 126) {
				goto more;
			}
			if (c->len >= h + n) {
				int op = c->buf[0] & 0x0f;
				Kaa__Endpoint__V1__Frame *f = NULL;

				if (op == 8) {
					c->close_code =
						n >= 2 ? (c->buf[h] << 8 | c->buf[h + 1]) : 1005;
					c_consume(c, h + n);
					return NULL;
				}
				if (op == 2)
					kaa__frame_decode(c->buf + h, n, NULL, &f, NULL);
				c_consume(c, h + n);
				if (f)
					return f;
				continue;
			}
		}
more:
		if (c_fill(c, deadline) != 1)
			return NULL;
	}
}

/* Next frame must be a Pong for rid. */
static bool c_expect_pong(client *c, uint64_t rid)
{
	Kaa__Endpoint__V1__Frame *f = c_recv(c, WAIT_MS);
	bool ok = f && f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_PONG && f->request_id == rid;

	kaa__frame_free(f);
	return ok;
}

/* Next frame must be an Error with this code; returns its fatal flag via *fatal. */
static bool c_expect_error(client *c, Kaa__Endpoint__V1__ErrorCode code, bool *fatal)
{
	Kaa__Endpoint__V1__Frame *f = c_recv(c, WAIT_MS);
	bool ok =
		f && f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_ERROR && f->error->code == code;

	if (ok && fatal)
		*fatal = f->error->fatal;
	kaa__frame_free(f);
	return ok;
}

/* Reads until a close frame or EOF; returns the close code (0: EOF only). */
static int c_wait_close(client *c)
{
	Kaa__Endpoint__V1__Frame *f;

	c->close_code = 0;
	while ((f = c_recv(c, WAIT_MS)))
		kaa__frame_free(f);
	return c->close_code;
}

static kaa__ops_server *start(kaa__ops_server_opts *o)
{
	kaa__ops_server *s = NULL;

	if (!o->bind_host)
		o->bind_host = "127.0.0.1";
	CU_ASSERT_EQUAL_FATAL(kaa__ops_server_new(o, &handlers, &s), KAA_OK);
	CU_ASSERT_TRUE_FATAL(kaa__ops_server_port(s) > 0);
	app_reset(s);
	return s;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_handshake(void)
{
	kaa__ops_server_opts o = {0};
	kaa__ops_server *s = start(&o);
	int port = kaa__ops_server_port(s);
	client c;

	CU_ASSERT_TRUE(c_open(&c, port, "kaa.v1", false));
	CU_ASSERT_EQUAL(c.status, 101);
	CU_ASSERT_EQUAL(c_ping(&c, 7, "hi"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 7));
	c_close(&c);

	/* kaa.v1 among others is fine */
	CU_ASSERT_TRUE(c_open(&c, port, "foo, kaa.v1", false));
	CU_ASSERT_EQUAL(c.status, 101);
	c_close(&c);

	CU_ASSERT_TRUE(c_open(&c, port, "chat", false));
	CU_ASSERT_EQUAL(c.status, 400);
	CU_ASSERT_PTR_NOT_NULL(strstr(c.body, "kaa.v1"));
	c_close(&c);
	CU_ASSERT_TRUE(c_open(&c, port, NULL, false));
	CU_ASSERT_EQUAL(c.status, 400);
	c_close(&c);
	kaa__ops_server_free(s);
}

static void test_bad_frames(void)
{
	kaa__ops_server_opts o = {0};
	kaa__ops_server *s = start(&o);
	client c;
	bool fatal = true;
	uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x07};

	CU_ASSERT_TRUE_FATAL(c_open(&c, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_send_raw(&c, 2, true, garbage, sizeof(garbage)), 0);
	CU_ASSERT_TRUE(
		c_expect_error(&c, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME, &fatal));
	CU_ASSERT_FALSE(fatal);
	CU_ASSERT_EQUAL(c_ping(&c, 1, "still"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 1));

	/* a text message, sent in two fragments */
	CU_ASSERT_EQUAL(c_send_raw(&c, 1, false, "hel", 3), 0);
	CU_ASSERT_EQUAL(c_send_raw(&c, 0, true, "lo", 2), 0);
	CU_ASSERT_TRUE(
		c_expect_error(&c, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_FRAME, &fatal));
	CU_ASSERT_FALSE(fatal);
	CU_ASSERT_EQUAL(c_ping(&c, 2, "again"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 2));

	/* an empty binary message is not a Frame either */
	CU_ASSERT_EQUAL(c_send_raw(&c, 2, true, "", 0), 0);
	{
		Kaa__Endpoint__V1__Frame *f = c_recv(&c, WAIT_MS);

		CU_ASSERT_TRUE(f && f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_ERROR);
		kaa__frame_free(f);
	}
	CU_ASSERT_EQUAL(c_ping(&c, 3, "more"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 3));
	c_close(&c);
	kaa__ops_server_free(s);
}

/* A message bigger than rx_buffer, in one frame and in fragments. */
static void test_fragments(void)
{
	kaa__ops_server_opts o = {.rx_buffer = 256};
	kaa__ops_server *s = start(&o);
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ProfileUpdate pu = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;
	char *json = malloc(10001);
	uint8_t *b;
	size_t n;
	client c;

	memset(json, 'x', 10000);
	memcpy(json, "{\"a\":\"", 6);
	memcpy(json + 9998, "\"}", 2);
	json[10000] = 0;
	f.protocol_version = 1;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE;
	f.profile_update = &pu;
	pu.client_profile_json = json;
	CU_ASSERT_EQUAL_FATAL(kaa__frame_encode(&f, &b, &n), KAA_OK);

	CU_ASSERT_TRUE_FATAL(c_open(&c, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_send_raw(&c, 2, true, b, n), 0);
	CU_ASSERT_EQUAL(c_ping(&c, 1, "a"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 1));
	CU_ASSERT_EQUAL(app.profile_len, 10000);
	app.profile_len = 0;
	/* three fragments */
	CU_ASSERT_EQUAL(c_send_raw(&c, 2, false, b, 100), 0);
	CU_ASSERT_EQUAL(c_send_raw(&c, 0, false, b + 100, 5000), 0);
	CU_ASSERT_EQUAL(c_send_raw(&c, 0, true, b + 5100, n - 5100), 0);
	CU_ASSERT_EQUAL(c_ping(&c, 2, "b"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 2));
	CU_ASSERT_EQUAL(app.profile_len, 10000);
	c_close(&c);
	free(b);
	free(json);
	kaa__ops_server_free(s);
}

static void test_too_big(void)
{
	kaa__ops_server_opts o = {0};
	kaa__metrics *m = kaa__metrics_new();
	kaa__ops_server *s;
	uint8_t *big = calloc(1, 70000);
	client c;
	bool fatal = false;
	char body[4096];

	o.metrics = m;
	s = start(&o);
	CU_ASSERT_TRUE_FATAL(c_open(&c, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_send_raw(&c, 2, true, big, 70000), 0);
	CU_ASSERT_TRUE(
		c_expect_error(&c, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_TOO_BIG, &fatal));
	CU_ASSERT_TRUE(fatal);
	CU_ASSERT_EQUAL(c_wait_close(&c), 1009);
	c_close(&c);

	/* over the limit only once the fragments add up */
	CU_ASSERT_TRUE_FATAL(c_open(&c, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_send_raw(&c, 2, false, big, 40000), 0);
	CU_ASSERT_EQUAL(c_send_raw(&c, 0, true, big, 30000), 0);
	CU_ASSERT_TRUE(
		c_expect_error(&c, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_TOO_BIG, &fatal));
	CU_ASSERT_EQUAL(c_wait_close(&c), 1009);
	c_close(&c);

	CU_ASSERT_EQUAL(c_get(kaa__ops_server_port(s), "/metrics", false, body, sizeof(body)), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_frame_errors_total 2"));
	free(big);
	kaa__ops_server_free(s);
	kaa__metrics_free(m);
}

static void test_order(void)
{
	kaa__ops_server_opts o = {.workers = 8};
	kaa__ops_server *s = start(&o);
	client c[2];
	bool in_order = true;

	for (int k = 0; k < 2; k++)
		CU_ASSERT_TRUE_FATAL(c_open(&c[k], kaa__ops_server_port(s), "kaa.v1", false));
	/* two sessions interleaved; each one's frames must stay in order */
	for (uint64_t i = 1; i <= 200; i++)
		for (int k = 0; k < 2; k++)
			CU_ASSERT_EQUAL(c_ping(&c[k], i * 2 + (uint64_t)k, "p"), 0);
	CU_ASSERT_TRUE(wait_count(&app.frames, 400));
	for (int k = 0; k < 2; k++)
		for (uint64_t i = 1; i <= 200; i++)
			if (!c_expect_pong(&c[k], i * 2 + (uint64_t)k)) {
				in_order = false;
				break;
			}
	CU_ASSERT_TRUE(in_order);
	pthread_mutex_lock(&app.mu);
	{
		uint64_t last[2] = {0, 0};

		for (int i = 0; i < app.norder; i++) {
			int k = (int)(app.order[i] & 1);

			if (app.order[i] <= last[k])
				in_order = false;
			last[k] = app.order[i];
		}
		CU_ASSERT_EQUAL(app.norder, 400);
	}
	CU_ASSERT_FALSE(app.overlap);
	pthread_mutex_unlock(&app.mu);
	CU_ASSERT_TRUE(in_order);
	for (int k = 0; k < 2; k++)
		c_close(&c[k]);
	CU_ASSERT_TRUE(wait_count(&app.closes, 2));
	CU_ASSERT_FALSE(app.frame_after_close);
	kaa__ops_server_free(s);
}

/* A worker stuck on one session: its inbox fills, the loop stops reading
 * it, and resumes when the worker catches up; nothing lost, order kept. */
static void test_flow_control(void)
{
	kaa__ops_server_opts o = {0};
	kaa__ops_server *s = start(&o);
	client c, other;
	bool ok = true;

	CU_ASSERT_TRUE_FATAL(c_open(&c, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_TRUE_FATAL(c_open(&other, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_ping(&c, 1, "gate"), 0);
	for (uint64_t i = 2; i <= 600; i++)
		CU_ASSERT_EQUAL(c_ping(&c, i, "x"), 0);
	/* another session is served meanwhile */
	CU_ASSERT_EQUAL(c_ping(&other, 1, "o"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&other, 1));
	pthread_mutex_lock(&app.mu);
	CU_ASSERT_TRUE(app.frames < 600);
	app.gate_open = true;
	pthread_cond_broadcast(&app.cv);
	pthread_mutex_unlock(&app.mu);
	for (uint64_t i = 1; i <= 600 && ok; i++)
		ok = c_expect_pong(&c, i);
	CU_ASSERT_TRUE(ok);

	/* a handler closes its session with a code */
	CU_ASSERT_EQUAL(c_ping(&c, 601, "close"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 601));
	CU_ASSERT_EQUAL(c_wait_close(&c), 1008);
	c_close(&c);
	c_close(&other);
	kaa__ops_server_free(s);
}

static bool wait_sessions(kaa__ops_server *s, size_t n)
{
	int64_t deadline = kaa__now_ms() + WAIT_MS;

	/* The count changes on the loop thread; nothing to wait on but it. */
	while (kaa__ops_server_sessions(s) != n) {
		if (kaa__now_ms() > deadline)
			return false;
		poll(NULL, 0, 5);
	}
	return true;
}

static void test_admission(void)
{
	kaa__ops_server_opts o = {.max_sessions = 3};
	kaa__metrics *m = kaa__metrics_new();
	kaa__ops_server *s;
	client c[4];
	char body[4096];

	o.metrics = m;
	s = start(&o);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_TRUE_FATAL(c_open(&c[i], kaa__ops_server_port(s), "kaa.v1", false));
		CU_ASSERT_EQUAL(c[i].status, 101);
	}
	CU_ASSERT_TRUE(wait_sessions(s, 3));
	CU_ASSERT_TRUE(c_open(&c[3], kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c[3].status, 503);
	CU_ASSERT_PTR_NOT_NULL(strstr(c[3].body, "full"));
	c_close(&c[3]);
	c_close(&c[0]);
	CU_ASSERT_TRUE(wait_sessions(s, 2));
	CU_ASSERT_TRUE(c_open(&c[3], kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c[3].status, 101);
	CU_ASSERT_EQUAL(c_ping(&c[3], 5, "x"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c[3], 5));

	/* draining refuses too, and /readyz says so */
	kaa__ops_server_set_accepting(s, false);
	c_close(&c[1]);
	CU_ASSERT_TRUE(wait_sessions(s, 2));
	CU_ASSERT_TRUE(c_open(&c[0], kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c[0].status, 503);
	c_close(&c[0]);
	CU_ASSERT_EQUAL(c_get(kaa__ops_server_port(s), "/readyz", false, NULL, 0), 503);
	kaa__ops_server_set_accepting(s, true);
	CU_ASSERT_EQUAL(c_get(kaa__ops_server_port(s), "/metrics", false, body, sizeof(body)), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_sessions_refused_total 2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_sessions 2"));
	c_close(&c[2]);
	c_close(&c[3]);
	kaa__ops_server_free(s);
	kaa__metrics_free(m);
}

static void test_timeouts(void)
{
	kaa__ops_server_opts o = {.idle_timeout_ms = 10000, .hello_timeout_ms = 300};
	kaa__ops_server *s = start(&o);
	client est, lazy;
	int64_t t0;

	/* est says hello; lazy only pings: the hello timeout closes lazy */
	CU_ASSERT_TRUE_FATAL(c_open(&est, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_hello(&est, 1), 0);
	{
		Kaa__Endpoint__V1__Frame *f = c_recv(&est, WAIT_MS);

		CU_ASSERT_TRUE(f && f->body_case == KAA__ENDPOINT__V1__FRAME__BODY_ACK);
		kaa__frame_free(f);
	}
	CU_ASSERT_TRUE_FATAL(c_open(&lazy, kaa__ops_server_port(s), "kaa.v1", false));
	t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(c_ping(&lazy, 1, "x"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&lazy, 1));
	CU_ASSERT_EQUAL(c_wait_close(&lazy), 1008);
	CU_ASSERT_TRUE(kaa__now_ms() - t0 >= 250);
	/* est is older than lazy and still served */
	CU_ASSERT_EQUAL(c_ping(&est, 2, "y"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&est, 2));
	c_close(&lazy);
	c_close(&est);
	kaa__ops_server_free(s);

	/* idle timeout: nothing received for 300 ms */
	o.idle_timeout_ms = 300;
	o.hello_timeout_ms = 10000;
	s = start(&o);
	CU_ASSERT_TRUE_FATAL(c_open(&est, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_hello(&est, 1), 0);
	t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(c_wait_close(&est), 1000);
	CU_ASSERT_TRUE(kaa__now_ms() - t0 >= 250);
	c_close(&est);
	CU_ASSERT_TRUE(wait_count(&app.closes, 1));
	kaa__ops_server_free(s);
}

struct flood {
	kaa__ops_server *s;
	kaa__session_id sid;
	int rc;
	int sent;
};

static void test_sendq_overflow(void)
{
	kaa__ops_server_opts o = {0};
	kaa__metrics *m = kaa__metrics_new();
	kaa__ops_server *s;
	client stuck, good;
	kaa__session_id sid_stuck;
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;
	uint8_t *payload = calloc(1, 60000);
	int rc = KAA_OK, i;
	int rcvbuf = 4096;

	o.metrics = m;
	s = start(&o);
	CU_ASSERT_TRUE_FATAL(c_tcp(&stuck, kaa__ops_server_port(s), false));
	setsockopt(stuck.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	c_close(&stuck);
	CU_ASSERT_TRUE_FATAL(c_open(&stuck, kaa__ops_server_port(s), "kaa.v1", false));
	CU_ASSERT_EQUAL(c_ping(&stuck, 1, "s"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&stuck, 1));
	pthread_mutex_lock(&app.mu);
	sid_stuck = app.last_sid;
	pthread_mutex_unlock(&app.mu);
	CU_ASSERT_TRUE_FATAL(c_open(&good, kaa__ops_server_port(s), "kaa.v1", false));

	/* stuck never reads again: its socket buffers fill, then its queue */
	f.protocol_version = 1;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
	f.pong = &p;
	p.payload.data = payload;
	p.payload.len = 60000;
	for (i = 0; i < 20000 && rc == KAA_OK; i++)
		rc = kaa__ops_send(s, sid_stuck, &f);
	CU_ASSERT_EQUAL(rc, KAA_ERR_TOO_BIG);
	CU_ASSERT_TRUE(wait_closed(sid_stuck));
	CU_ASSERT_EQUAL(kaa__ops_send(s, sid_stuck, &f), KAA_ERR_NOTFOUND);
	/* the other session is unaffected */
	CU_ASSERT_EQUAL(c_ping(&good, 2, "g"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&good, 2));
	CU_ASSERT_EQUAL(kaa__counter_value(kaa__metrics_counter(m, "kaa_ops_sendq_overflows_total",
								NULL, NULL)),
			1);
	c_close(&stuck);
	c_close(&good);
	free(payload);
	kaa__ops_server_free(s);
	kaa__metrics_free(m);
}

static char tmpdir[64];

static bool make_cert(char *cert, char *key, size_t n)
{
	char cmd[512];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kaa-ops-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return false;
	snprintf(cert, n, "%s/cert.pem", tmpdir);
	snprintf(key, n, "%s/key.pem", tmpdir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout %s -out %s -days 1 -subj /CN=localhost >/dev/null 2>&1",
		 key, cert);
	return system(cmd) == 0;
}

static void test_wss(void)
{
	char cert[128], key[128], body[256];
	kaa__ops_server_opts o = {0};
	kaa__ops_server *s = NULL;
	client c;

	CU_ASSERT_TRUE_FATAL(make_cert(cert, key, sizeof(cert)));
	client_ctx = SSL_CTX_new(TLS_client_method());
	CU_ASSERT_PTR_NOT_NULL_FATAL(client_ctx);
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);

	/* a missing key file is a start-up error */
	o.bind_host = "127.0.0.1";
	o.tls_cert = cert;
	o.tls_key = "/nonexistent/key.pem";
	CU_ASSERT_EQUAL(kaa__ops_server_new(&o, &handlers, &s), KAA_ERR_IO);
	CU_ASSERT_PTR_NULL(s);
	o.tls_key = NULL;
	CU_ASSERT_EQUAL(kaa__ops_server_new(&o, &handlers, &s), KAA_ERR_INVAL);

	o.tls_key = key;
	s = start(&o);
	CU_ASSERT_TRUE(c_open(&c, kaa__ops_server_port(s), "kaa.v1", true));
	CU_ASSERT_EQUAL(c.status, 101);
	CU_ASSERT_EQUAL(c_ping(&c, 9, "tls"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 9));
	c_close(&c);
	CU_ASSERT_EQUAL(c_get(kaa__ops_server_port(s), "/healthz", true, body, sizeof(body)), 200);
	kaa__ops_server_free(s);

	SSL_CTX_free(client_ctx);
	client_ctx = NULL;
	unlink(cert);
	unlink(key);
	rmdir(tmpdir);
}

static bool ready_flag;

static bool ready_fn(void *ud)
{
	(void)ud;
	return ready_flag;
}

static void test_http(void)
{
	kaa__ops_server_opts o = {.ready = ready_fn};
	kaa__metrics *m = kaa__metrics_new();
	kaa__ops_server *s, *s2 = NULL;
	char body[8192];
	int port;
	client c;

	o.metrics = m;
	s = start(&o);
	port = kaa__ops_server_port(s);
	CU_ASSERT_EQUAL(c_get(port, "/healthz", false, body, sizeof(body)), 200);
	CU_ASSERT_STRING_EQUAL(body, "{\"status\":\"ok\"}");
	ready_flag = false;
	CU_ASSERT_EQUAL(c_get(port, "/readyz", false, body, sizeof(body)), 503);
	ready_flag = true;
	CU_ASSERT_EQUAL(c_get(port, "/readyz", false, body, sizeof(body)), 200);
	CU_ASSERT_EQUAL(c_get(port, "/nope", false, body, sizeof(body)), 404);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "not found"));
	CU_ASSERT_EQUAL(c_req(port, "POST", "/healthz", false, body, sizeof(body)), 405);

	CU_ASSERT_TRUE_FATAL(c_open(&c, port, "kaa.v1", false));
	CU_ASSERT_EQUAL(c_ping(&c, 1, "m"), 0);
	CU_ASSERT_TRUE(c_expect_pong(&c, 1));
	CU_ASSERT_EQUAL(c_get(port, "/metrics", false, body, sizeof(body)), 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_sessions 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_frames_received_total 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_frames_sent_total 1"));
	CU_ASSERT_PTR_NOT_NULL(strstr(body, "kaa_ops_sendq_overflows_total 0"));

	/* the port is taken */
	o.port = port;
	CU_ASSERT_EQUAL(kaa__ops_server_new(&o, &handlers, &s2), KAA_ERR_IO);
	CU_ASSERT_PTR_NULL(s2);
	c_close(&c);
	kaa__ops_server_free(s);
	kaa__ops_server_free(NULL);
	kaa__metrics_free(m);
}

static void test_free_with_sessions(void)
{
	kaa__ops_server_opts o = {0};
	kaa__ops_server *s = start(&o);
	client c[3];

	for (int i = 0; i < 3; i++) {
		CU_ASSERT_TRUE_FATAL(c_open(&c[i], kaa__ops_server_port(s), "kaa.v1", false));
		CU_ASSERT_EQUAL(c_ping(&c[i], 1, "f"), 0);
		CU_ASSERT_TRUE(c_expect_pong(&c[i], 1));
	}
	kaa__ops_server_free(s);
	/* free returns after on_close for every session */
	CU_ASSERT_EQUAL(app.closes, 3);
	CU_ASSERT_FALSE(app.frame_after_close);
	CU_ASSERT_EQUAL(c_wait_close(&c[0]), 1001);
	for (int i = 0; i < 3; i++)
		c_close(&c[i]);
}

static const kaa__cu_test tests[] = {
	{"kaa.v1 handshake, other subprotocols refused", test_handshake},
	{"garbage, text and empty frames answered, session kept", test_bad_frames},
	{"messages over rx_buffer and in fragments", test_fragments},
	{"over 64 KiB: error frame and close 1009", test_too_big},
	{"per-session order with many workers", test_order},
	{"inbox flow control; close with a code from a handler", test_flow_control},
	{"admission cap and draining answer 503", test_admission},
	{"hello and idle timeouts", test_timeouts},
	{"send queue overflow closes only the stuck reader", test_sendq_overflow},
	{"wss with a generated certificate", test_wss},
	{"healthz, readyz, metrics, 404, busy port", test_http},
	{"free with open sessions", test_free_with_sessions},
};

int main(void)
{
	kaa__log_level = getenv("KAA_TEST_LOG") ? KAA_LOG_DEBUG : KAA_LOG_ERROR + 1;
	return kaa__cu_run("ops_server", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
