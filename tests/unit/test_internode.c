/*
 * The internode link (services/cluster/internode.c) between real instances
 * on loopback: Hello, ordered delivery both ways, queueing while a peer is
 * down and delivery after it comes back on the same port, bounded queues,
 * peer removal, and a raw client sending garbage.
 */
#include "cu_main.h"
#include "test_util.h"
#include "base/clock.h"
#include "base/error.h"
#include "cluster/internode.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXREC 4096

typedef struct recorder {
	pthread_mutex_t mu;
	size_t n;
	char from[MAXREC][32];
	uint64_t nonce[MAXREC];
} recorder;

static void on_frame(void *ud, const char *from, const Kaa__Cluster__V1__InternodeFrame *f)
{
	recorder *r = ud;
	if (f->body_case != KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PING)
		return;
	pthread_mutex_lock(&r->mu);
	if (r->n < MAXREC) {
		snprintf(r->from[r->n], sizeof(r->from[0]), "%s", from);
		r->nonce[r->n] = f->ping->nonce;
		r->n++;
	}
	pthread_mutex_unlock(&r->mu);
}

static size_t count(recorder *r)
{
	pthread_mutex_lock(&r->mu);
	size_t n = r->n;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static kaa__internode *mk(const char *id, const char *cluster, int port, recorder *r,
			  size_t queue_max)
{
	kaa__internode *in = NULL;
	kaa__internode_opts o = {.node_id = id,
				 .cluster = cluster,
				 .bind_host = "127.0.0.1",
				 .port = port,
				 .queue_max = queue_max,
				 .on_frame = on_frame,
				 .ud = r};
	CU_ASSERT_EQUAL(kaa__internode_new(&o, &in), KAA_OK);
	return in;
}

static int ping(kaa__internode *in, const char *to, uint64_t nonce)
{
	Kaa__Cluster__V1__InternodeFrame f;
	Kaa__Cluster__V1__Ping p;
	kaa__cluster__v1__internode_frame__init(&f);
	kaa__cluster__v1__ping__init(&p);
	p.nonce = nonce;
	f.protocol_version = 1;
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PING;
	f.ping = &p;
	return kaa__internode_send(in, to, &f);
}

struct pair {
	kaa__internode *in;
	const char *peer;
	recorder *r;
	size_t n;
};

static bool is_connected(void *a)
{
	struct pair *p = a;
	return kaa__internode_connected(p->in, p->peer);
}

static bool is_disconnected(void *a)
{
	return !is_connected(a);
}

static bool has_count(void *a)
{
	struct pair *p = a;
	return count(p->r) >= p->n;
}

static recorder rec_a, rec_b, rec_c;

static void reset(recorder *r)
{
	pthread_mutex_lock(&r->mu);
	r->n = 0;
	pthread_mutex_unlock(&r->mu);
}

static void test_mesh(void)
{
	kaa__internode *a = mk("node-a", "kaa", 0, &rec_a, 0),
		       *b = mk("node-b", "kaa", 0, &rec_b, 0),
		       *c = mk("node-c", "kaa", 0, &rec_c, 0);
	CU_ASSERT_FATAL(a && b && c);
	kaa__internode *all[3] = {a, b, c};
	const char *ids[3] = {"node-a", "node-b", "node-c"};
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++)
			if (i != j)
				CU_ASSERT_EQUAL(
					kaa__internode_set_peer(all[i], ids[j], "127.0.0.1",
								kaa__internode_port(all[j])),
					KAA_OK);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			struct pair p = {.in = all[i], .peer = ids[j]};
			if (i != j)
				CU_ASSERT(kaa__test_wait_until(is_connected, &p, 10000));
		}
	CU_ASSERT_EQUAL(kaa__internode_connections(a), 2);
	/* 500 frames each way between a and b, and c -> a, interleaved */
	for (uint64_t k = 1; k <= 500; k++) {
		CU_ASSERT_EQUAL(ping(a, "node-b", k), KAA_OK);
		CU_ASSERT_EQUAL(ping(b, "node-a", 1000 + k), KAA_OK);
		CU_ASSERT_EQUAL(ping(c, "node-a", 2000 + k), KAA_OK);
	}
	struct pair pa = {.r = &rec_a, .n = 1000}, pb = {.r = &rec_b, .n = 500};
	CU_ASSERT(kaa__test_wait_until(has_count, &pa, 10000));
	CU_ASSERT(kaa__test_wait_until(has_count, &pb, 10000));
	uint64_t next_b = 1001, next_c = 2001;
	for (size_t i = 0; i < rec_a.n; i++) {
		if (strcmp(rec_a.from[i], "node-b") == 0) {
			CU_ASSERT_EQUAL(rec_a.nonce[i], next_b);
			next_b++;
		} else if (strcmp(rec_a.from[i], "node-c") == 0) {
			CU_ASSERT_EQUAL(rec_a.nonce[i], next_c);
			next_c++;
		} else {
			CU_FAIL("frame from an unexpected node");
		}
	}
	CU_ASSERT_EQUAL(next_b, 1501);
	CU_ASSERT_EQUAL(next_c, 2501);
	for (size_t i = 0; i < rec_b.n; i++) {
		CU_ASSERT_STRING_EQUAL(rec_b.from[i], "node-a");
		CU_ASSERT_EQUAL(rec_b.nonce[i], i + 1);
	}
	CU_ASSERT_EQUAL(rec_c.n, 0);

	/* b goes away; a queues for it; b comes back on the same port */
	int bport = kaa__internode_port(b);
	kaa__internode_free(b);
	struct pair ab = {.in = a, .peer = "node-b"};
	CU_ASSERT(kaa__test_wait_until(is_disconnected, &ab, 10000));
	reset(&rec_b);
	for (uint64_t k = 1; k <= 20; k++)
		CU_ASSERT_EQUAL(ping(a, "node-b", 5000 + k), KAA_OK);
	b = mk("node-b", "kaa", bport, &rec_b, 0);
	CU_ASSERT_FATAL(b != NULL);
	kaa__internode_set_peer(b, "node-a", "127.0.0.1", kaa__internode_port(a));
	pb.n = 20;
	CU_ASSERT(kaa__test_wait_until(has_count, &pb, 15000));
	for (size_t i = 0; i < rec_b.n && i < 20; i++)
		CU_ASSERT_EQUAL(rec_b.nonce[i], 5001 + i);

	/* removal closes the connection and forgets the queue */
	CU_ASSERT_EQUAL(kaa__internode_remove_peer(a, "node-c"), KAA_OK);
	struct pair ca = {.in = c, .peer = "node-a"};
	CU_ASSERT(kaa__test_wait_until(is_disconnected, &ca, 10000));
	CU_ASSERT_EQUAL(ping(a, "node-c", 1), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__internode_remove_peer(a, "node-c"), KAA_ERR_NOTFOUND);

	kaa__internode_free(a);
	kaa__internode_free(b);
	kaa__internode_free(c);
}

static void test_bounds_and_args(void)
{
	recorder r = {.mu = PTHREAD_MUTEX_INITIALIZER};
	kaa__internode *a = mk("node-a", "kaa", 0, &r, 1024);
	CU_ASSERT_FATAL(a != NULL);
	/* a peer that is never reachable: port 1 on loopback */
	CU_ASSERT_EQUAL(kaa__internode_set_peer(a, "node-z", "127.0.0.1", 1), KAA_OK);
	int rc = KAA_OK, sent = 0;
	while (rc == KAA_OK && sent < 1000) {
		rc = ping(a, "node-z", (uint64_t)sent);
		sent += rc == KAA_OK;
	}
	CU_ASSERT_EQUAL(rc, KAA_ERR_TOO_BIG);
	CU_ASSERT(sent > 10 && sent < 1000);
	CU_ASSERT_EQUAL(ping(a, "nobody", 1), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__internode_set_peer(a, "", "127.0.0.1", 5), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__internode_set_peer(a, "x", "127.0.0.1", 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__internode_set_peer(a, "node-a", "127.0.0.1", 5), KAA_OK); /* self */
	CU_ASSERT_EQUAL(ping(a, "node-a", 1), KAA_ERR_NOTFOUND);
	kaa__internode *bad = NULL;
	kaa__internode_opts o = {.node_id = "", .cluster = "kaa"};
	CU_ASSERT_EQUAL(kaa__internode_new(&o, &bad), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(bad);
	/* a busy port */
	kaa__internode_opts busy = {.node_id = "n",
				    .cluster = "kaa",
				    .bind_host = "127.0.0.1",
				    .port = kaa__internode_port(a)};
	CU_ASSERT_EQUAL(kaa__internode_new(&busy, &bad), KAA_ERR_IO);
	kaa__internode_free(a);
	kaa__internode_free(NULL);
}

static int raw_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until the peer closes or ms pass; returns bytes read (or -1 on timeout). */
static long read_until_close(int fd, char *buf, size_t cap, int ms)
{
	size_t n = 0;
	int64_t end = kaa__now_ms() + ms;
	for (;;) {
		int left = (int)(end - kaa__now_ms());
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return -1;
		ssize_t r = read(fd, buf + n, cap - n - 1);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (n + 1 >= cap)
			break;
	}
	return (long)n;
}

static void test_raw_clients(void)
{
	recorder r = {.mu = PTHREAD_MUTEX_INITIALIZER};
	kaa__internode *a = mk("node-a", "kaa", 0, &r, 0);
	CU_ASSERT_FATAL(a != NULL);
	char buf[4096];
	int fd = raw_connect(kaa__internode_port(a));
	CU_ASSERT_FATAL(fd >= 0);
	const char *get = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	CU_ASSERT(write(fd, get, strlen(get)) == (ssize_t)strlen(get));
	CU_ASSERT(read_until_close(fd, buf, sizeof(buf), 5000) > 0);
	CU_ASSERT(strncmp(buf, "HTTP/1.1 200", 12) == 0);
	close(fd);

	/* WebSocket upgrade, then garbage instead of a Hello: closed */
	fd = raw_connect(kaa__internode_port(a));
	CU_ASSERT_FATAL(fd >= 0);
	const char *up =
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: kaa.internode.v1\r\n\r\n";
	CU_ASSERT(write(fd, up, strlen(up)) == (ssize_t)strlen(up));
	size_t got = 0;
	int64_t end = kaa__now_ms() + 5000;
	buf[0] = '\0';
	while (!strstr(buf, "\r\n\r\n") && kaa__now_ms() < end && got + 1 < sizeof(buf)) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) == 1) {
			ssize_t k = read(fd, buf + got, sizeof(buf) - got - 1);
			if (k <= 0)
				break;
			got += (size_t)k;
			buf[got] = '\0';
		}
	}
	CU_ASSERT(strncmp(buf, "HTTP/1.1 101", 12) == 0);
	unsigned char frame[2 + 4 + 8] = {0x82, 0x80 | 8, 1, 2, 3, 4};
	const unsigned char junk[8] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02, 0x03};
	for (int i = 0; i < 8; i++)
		frame[6 + i] = junk[i] ^ frame[2 + i % 4];
	CU_ASSERT(write(fd, frame, sizeof(frame)) == (ssize_t)sizeof(frame));
	CU_ASSERT(read_until_close(fd, buf, sizeof(buf), 5000) >= 0); /* closed, not hung */
	close(fd);
	CU_ASSERT_EQUAL(kaa__internode_connections(a), 0);
	kaa__internode_free(a);
}

static const kaa__cu_test tests[] = {
	{"three nodes: hello, order, reconnect, removal", test_mesh},
	{"bounded queues and bad arguments", test_bounds_and_args},
	{"raw clients: HTTP and garbage", test_raw_clients},
};

int main(void)
{
	pthread_mutex_init(&rec_a.mu, NULL);
	pthread_mutex_init(&rec_b.mu, NULL);
	pthread_mutex_init(&rec_c.mu, NULL);
	return kaa__cu_run("internode", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
