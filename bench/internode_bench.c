/*
 * internode_bench - the internode link's raw round trip
 * (services/cluster/internode.c) beside two baselines measured in the same
 * run, all in this process on loopback:
 *   - internode: two kaa__internode instances "a" and "b" (same cluster,
 *     each set_peer the other); "b"'s on_frame answers every Ping{nonce}
 *     with a Pong{nonce} through kaa__internode_send; "a" sends Pings;
 *   - bare lws: a libwebsockets echo server and a libwebsockets client,
 *     each context on its own service thread (as the two internode
 *     instances are), the client sending 16-byte binary frames from its
 *     WRITEABLE callback: the WebSocket stack without the internode's
 *     queue, protobuf and cross-thread wake-ups;
 *   - bare TCP: a thread echoing 16-byte messages on a blocking socket
 *     (TCP_NODELAY), the main thread sending them.
 * Two runs each: one message in flight (the round trip, p50/p99), then a
 * pipelined run with --window messages in flight (round trips/s and the
 * latency under that load). The last line is machine-readable for
 * bench/cluster_bench.sh:
 *   internode_rtt_p50_us=X internode_rtt_p99_us=Y
 * Usage: internode_bench [--pings N] [--window W]
 */
#include "base/error.h"
#include "cluster/internode.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MSG_LEN 16
#define WARMUP 1000

static long n_pings = 20000;
static int window = 32;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One run's samples: sent and received time per message index. */
typedef struct run {
	long n; /* messages to complete, warm-up excluded */
	long warm;
	int win;
	int64_t *sent, *recv;
	atomic_long issued, done;
	int64_t t_start, t_end;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	atomic_bool failed;
} run;

typedef struct result {
	double p50_us, p99_us, per_s;
	bool ok;
} result;

static void run_init(run *r, long n, int win)
{
	memset(r, 0, sizeof(*r));
	r->n = n;
	r->warm = WARMUP;
	r->win = win;
	r->sent = calloc((size_t)(n + WARMUP), sizeof(int64_t));
	r->recv = calloc((size_t)(n + WARMUP), sizeof(int64_t));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
}

static void run_free(run *r)
{
	free(r->sent);
	free(r->recv);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
}

static long run_total(const run *r)
{
	return r->n + r->warm;
}

/* Records the reply to message i; wakes the waiter. */
static void run_got(run *r, long i)
{
	if (i < 0 || i >= run_total(r))
		return;
	r->recv[i] = now_ns();
	long d = atomic_fetch_add(&r->done, 1) + 1;
	if (d == r->warm)
		r->t_start = r->recv[i];
	if (d == run_total(r))
		r->t_end = r->recv[i];
	pthread_mutex_lock(&r->mu);
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
}

/* Waits until done >= want or 10 s pass; false on timeout. */
static bool run_wait(run *r, long want)
{
	struct timespec dl;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&r->mu);
	while (atomic_load(&r->done) < want && !atomic_load(&r->failed))
		if (pthread_cond_timedwait(&r->cv, &r->mu, &dl) != 0)
			break;
	bool ok = atomic_load(&r->done) >= want && !atomic_load(&r->failed);
	pthread_mutex_unlock(&r->mu);
	return ok;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static result run_result(run *r, bool ok)
{
	result res = {0};
	int64_t *lat = calloc((size_t)r->n, sizeof(*lat));
	long k = 0;

	res.ok = ok;
	for (long i = r->warm; ok && i < run_total(r); i++)
		if (r->recv[i] && r->sent[i])
			lat[k++] = r->recv[i] - r->sent[i];
	if (ok && k > 0) {
		qsort(lat, (size_t)k, sizeof(*lat), cmp_i64);
		res.p50_us = (double)lat[k / 2] / 1e3;
		res.p99_us = (double)lat[k * 99 / 100] / 1e3;
		if (r->t_end > r->t_start)
			res.per_s = (double)r->n * 1e9 / (double)(r->t_end - r->t_start);
	} else {
		res.ok = false;
	}
	free(lat);
	return res;
}

/*
 * The current run as seen by service-thread callbacks: a callback enters
 * (NULL: no run, ignore the frame) and leaves; guard_close waits until no
 * callback still holds the run, so it can be freed.
 */
typedef struct guard {
	_Atomic(run *) r;
	atomic_int busy;
} guard;

static run *guard_enter(guard *g)
{
	atomic_fetch_add(&g->busy, 1);
	run *r = atomic_load(&g->r);
	if (!r)
		atomic_fetch_sub(&g->busy, 1);
	return r;
}

static void guard_leave(guard *g)
{
	atomic_fetch_sub(&g->busy, 1);
}

static void guard_close(guard *g)
{
	atomic_store(&g->r, NULL);
	while (atomic_load(&g->busy) > 0)
		sched_yield();
}

/* ---- internode ---------------------------------------------------------- */

typedef struct pair {
	kaa__internode *a, *b;
	guard g;
} pair;

static void frame_init(Kaa__Cluster__V1__InternodeFrame *f)
{
	kaa__cluster__v1__internode_frame__init(f);
	f->protocol_version = 1;
}

static int send_ping(pair *l, run *r, long i)
{
	Kaa__Cluster__V1__InternodeFrame f;
	Kaa__Cluster__V1__Ping p;

	frame_init(&f);
	kaa__cluster__v1__ping__init(&p);
	p.nonce = (uint64_t)i;
	f.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PING;
	f.ping = &p;
	r->sent[i] = now_ns();
	return kaa__internode_send(l->a, "b", &f);
}

/* "b": answers a Ping with a Pong of the same nonce. */
static void b_frame(void *ud, const char *from, const Kaa__Cluster__V1__InternodeFrame *f)
{
	pair *l = ud;
	Kaa__Cluster__V1__InternodeFrame out;
	Kaa__Cluster__V1__Pong p;

	if (f->body_case != KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PING)
		return;
	frame_init(&out);
	kaa__cluster__v1__pong__init(&p);
	p.nonce = f->ping->nonce;
	out.body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PONG;
	out.pong = &p;
	if (kaa__internode_send(l->b, from, &out) != KAA_OK) {
		run *r = guard_enter(&l->g);
		if (r) {
			atomic_store(&r->failed, true);
			guard_leave(&l->g);
		}
	}
}

/* "a": records the Pong; in a pipelined run keeps the window full from here
 * (the service thread), as a node forwarding traffic would. */
static void a_frame(void *ud, const char *from, const Kaa__Cluster__V1__InternodeFrame *f)
{
	pair *l = ud;

	(void)from;
	if (f->body_case != KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_PONG)
		return;
	run *r = guard_enter(&l->g);
	if (!r)
		return;
	run_got(r, (long)f->pong->nonce);
	if (r->win > 1) {
		long i = atomic_fetch_add(&r->issued, 1);
		if (i < run_total(r) && send_ping(l, r, i) != KAA_OK)
			atomic_store(&r->failed, true);
	}
	guard_leave(&l->g);
}

static result internode_run(pair *l, long n, int win)
{
	run r;
	bool ok = true;

	run_init(&r, n, win);
	atomic_store(&l->g.r, &r);
	if (win <= 1) {
		for (long i = 0; ok && i < run_total(&r); i++) {
			atomic_store(&r.issued, i + 1);
			ok = send_ping(l, &r, i) == KAA_OK && run_wait(&r, i + 1);
		}
	} else {
		long first = win < run_total(&r) ? win : run_total(&r);
		atomic_store(&r.issued, first);
		for (long i = 0; ok && i < first; i++)
			ok = send_ping(l, &r, i) == KAA_OK;
		ok = ok && run_wait(&r, run_total(&r));
	}
	guard_close(&l->g);
	result res = run_result(&r, ok);
	run_free(&r);
	return res;
}

static bool wait_connected(pair *l)
{
	for (int i = 0; i < 10000; i++) {
		if (kaa__internode_connected(l->a, "b") && kaa__internode_connected(l->b, "a"))
			return true;
		usleep(1000);
	}
	return false;
}

static int internode_measure(result *seq, result *pipe)
{
	pair l = {0};
	kaa__internode_opts oa = {0}, ob = {0};
	int rc = -1;

	oa.node_id = "a";
	oa.cluster = ob.cluster = "bench";
	oa.bind_host = ob.bind_host = "127.0.0.1";
	oa.on_frame = a_frame;
	oa.ud = &l;
	ob.node_id = "b";
	ob.on_frame = b_frame;
	ob.ud = &l;
	if (kaa__internode_new(&oa, &l.a) != KAA_OK || kaa__internode_new(&ob, &l.b) != KAA_OK)
		goto out;
	if (kaa__internode_set_peer(l.a, "b", "127.0.0.1", kaa__internode_port(l.b)) != KAA_OK ||
	    kaa__internode_set_peer(l.b, "a", "127.0.0.1", kaa__internode_port(l.a)) != KAA_OK)
		goto out;
	if (!wait_connected(&l)) {
		fprintf(stderr, "internode_bench: the two instances did not connect\n");
		goto out;
	}
	*seq = internode_run(&l, n_pings, 1);
	*pipe = internode_run(&l, n_pings, window);
	rc = seq->ok && pipe->ok ? 0 : -1;
out:
	kaa__internode_free(l.a);
	kaa__internode_free(l.b);
	return rc;
}

/* ---- bare libwebsockets ------------------------------------------------- */

typedef struct bare {
	struct lws_context *srv, *cli;
	pthread_t srv_thread, cli_thread;
	atomic_bool stop;
	atomic_bool established;
	struct lws *wsi; /* client connection, client thread only */
	guard g;         /* the run, set before the client thread is woken */
	atomic_bool go;
	int port;
} bare;

static bare g_bare;

static int bare_srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	(void)user;
	if (reason == LWS_CALLBACK_RECEIVE) {
		uint8_t buf[LWS_PRE + 256];

		if (len > sizeof(buf) - LWS_PRE)
			return -1;
		memcpy(buf + LWS_PRE, in, len);
		if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len)
			return -1;
	}
	return 0;
}

static int bare_write(struct lws *wsi, run *r)
{
	uint8_t buf[LWS_PRE + MSG_LEN];
	long i = atomic_fetch_add(&r->issued, 1);

	if (i >= run_total(r))
		return 0;
	memset(buf + LWS_PRE, 0, MSG_LEN);
	memcpy(buf + LWS_PRE, &i, sizeof(i));
	r->sent[i] = now_ns();
	if (lws_write(wsi, buf + LWS_PRE, MSG_LEN, LWS_WRITE_BINARY) < MSG_LEN)
		return -1;
	/* keep the window full: one write per WRITEABLE callback */
	if (atomic_load(&r->issued) - atomic_load(&r->done) < r->win)
		lws_callback_on_writable(wsi);
	return 0;
}

static int bare_cli_event(struct lws *wsi, enum lws_callback_reasons reason, run *r, void *in,
			  size_t len)
{
	bare *b = &g_bare;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		b->wsi = wsi;
		atomic_store(&b->established, true);
		return 0;
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		/* the main thread started a run */
		if (b->wsi && atomic_exchange(&b->go, false))
			lws_callback_on_writable(b->wsi);
		return 0;
	case LWS_CALLBACK_CLIENT_WRITEABLE: return r ? bare_write(wsi, r) : 0;
	case LWS_CALLBACK_CLIENT_RECEIVE: {
		long i;

		if (!r || len < sizeof(i))
			return 0;
		memcpy(&i, in, sizeof(i));
		run_got(r, i);
		if (atomic_load(&r->issued) < run_total(r))
			lws_callback_on_writable(wsi);
		return 0;
	}
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
	case LWS_CALLBACK_CLIENT_CLOSED:
		b->wsi = NULL;
		if (r) {
			atomic_store(&r->failed, true);
			pthread_mutex_lock(&r->mu);
			pthread_cond_signal(&r->cv);
			pthread_mutex_unlock(&r->mu);
		}
		return 0;
	default: return 0;
	}
}

static int bare_cli_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		       size_t len)
{
	run *r = guard_enter(&g_bare.g);
	int rc = bare_cli_event(wsi, reason, r, in, len);

	(void)user;
	if (r)
		guard_leave(&g_bare.g);
	return rc;
}

static void *bare_service(void *arg)
{
	struct lws_context *ctx = arg;

	while (!atomic_load(&g_bare.stop))
		if (lws_service(ctx, 0) < 0)
			break;
	return NULL;
}

static struct lws_protocols bare_srv_protos[] = {
	{"http", lws_callback_http_dummy, 0, 0, 0, NULL, 0},
	{"bench.echo", bare_srv_cb, 0, 256, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};
static struct lws_protocols bare_cli_protos[] = {
	{"bench.echo", bare_cli_cb, 0, 256, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static result bare_run(long n, int win)
{
	run r;

	run_init(&r, n, win);
	atomic_store(&g_bare.g.r, &r);
	atomic_store(&g_bare.go, true);
	lws_cancel_service(g_bare.cli);
	bool ok = run_wait(&r, run_total(&r));
	guard_close(&g_bare.g);
	result res = run_result(&r, ok);
	run_free(&r);
	return res;
}

static int bare_measure(result *seq, result *pipe)
{
	struct lws_context_creation_info info;
	struct lws_client_connect_info ci;
	bare *b = &g_bare;
	int rc = -1;

	memset(&info, 0, sizeof(info));
	info.port = 0;
	info.iface = "127.0.0.1";
	info.protocols = bare_srv_protos;
	b->srv = lws_create_context(&info);
	if (!b->srv)
		goto out;
	b->port = lws_get_vhost_listen_port(lws_get_vhost_by_name(b->srv, "default"));
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = bare_cli_protos;
	b->cli = lws_create_context(&info);
	if (!b->cli)
		goto out;
	if (pthread_create(&b->srv_thread, NULL, bare_service, b->srv) != 0)
		goto out;
	memset(&ci, 0, sizeof(ci));
	ci.context = b->cli;
	ci.address = "127.0.0.1";
	ci.port = b->port;
	ci.path = "/";
	ci.host = "127.0.0.1";
	ci.origin = "127.0.0.1";
	ci.protocol = "bench.echo";
	/* connect before the client thread services: lws calls are not
	 * thread-safe except lws_cancel_service */
	if (!lws_client_connect_via_info(&ci))
		goto stop_srv;
	if (pthread_create(&b->cli_thread, NULL, bare_service, b->cli) != 0)
		goto stop_srv;
	for (int i = 0; i < 10000 && !atomic_load(&b->established); i++)
		usleep(1000);
	if (atomic_load(&b->established)) {
		*seq = bare_run(n_pings, 1);
		*pipe = bare_run(n_pings, window);
		rc = seq->ok && pipe->ok ? 0 : -1;
	} else {
		fprintf(stderr, "internode_bench: the bare lws client did not connect\n");
	}
	atomic_store(&b->stop, true);
	lws_cancel_service(b->cli);
	pthread_join(b->cli_thread, NULL);
stop_srv:
	atomic_store(&b->stop, true);
	lws_cancel_service(b->srv);
	pthread_join(b->srv_thread, NULL);
out:
	if (b->cli)
		lws_context_destroy(b->cli);
	if (b->srv)
		lws_context_destroy(b->srv);
	return rc;
}

/* ---- bare TCP ----------------------------------------------------------- */

static void *tcp_echo(void *arg)
{
	int lfd = *(int *)arg, fd, one = 1;
	char buf[65536];
	ssize_t n;

	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	close(fd);
	return NULL;
}

static bool send_all(int fd, const void *p, size_t len)
{
	return send(fd, p, len, MSG_NOSIGNAL) == (ssize_t)len;
}

static result tcp_run(int fd, long n, int win)
{
	run r;
	uint8_t msg[MSG_LEN] = {0}, in[MSG_LEN * 64];
	size_t have = 0;
	bool ok = true;

	run_init(&r, n, win);
	long total = run_total(&r), issued = 0;
	while (ok && issued < total && issued < win) {
		r.sent[issued] = now_ns();
		memcpy(msg, &issued, sizeof(issued));
		ok = send_all(fd, msg, sizeof(msg));
		issued++;
	}
	while (ok && atomic_load(&r.done) < total) {
		ssize_t got = recv(fd, in + have, sizeof(in) - have, 0);
		if (got <= 0) {
			ok = false;
			break;
		}
		have += (size_t)got;
		size_t off = 0;
		for (; have - off >= MSG_LEN; off += MSG_LEN) {
			long i;
			memcpy(&i, in + off, sizeof(i));
			run_got(&r, i);
			if (issued < total) {
				r.sent[issued] = now_ns();
				memcpy(msg, &issued, sizeof(issued));
				ok = ok && send_all(fd, msg, sizeof(msg));
				issued++;
			}
		}
		memmove(in, in + off, have - off);
		have -= off;
	}
	result res = run_result(&r, ok);
	run_free(&r);
	return res;
}

static int tcp_measure(result *seq, result *pipe)
{
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	pthread_t t;
	int lfd, fd = -1, one = 1, rc = -1;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (struct sockaddr *)&a, &alen))
		goto out;
	if (pthread_create(&t, NULL, tcp_echo, &lfd) != 0)
		goto out;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		*seq = tcp_run(fd, n_pings, 1);
		*pipe = tcp_run(fd, n_pings, window);
		rc = seq->ok && pipe->ok ? 0 : -1;
	}
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	else
		shutdown(lfd, SHUT_RDWR); /* unblocks accept */
	pthread_join(t, NULL);
out:
	if (fd >= 0)
		close(fd);
	close(lfd);
	return rc;
}

/* ---- main ----------------------------------------------------------------- */

static void row(const char *what, double ours, double lws, double tcp, int prec)
{
	printf("| %s | %.*f | %.*f | %.2f | %.*f | %.2f |\n", what, prec, ours, prec, lws,
	       lws > 0 ? ours / lws : 0, prec, tcp, tcp > 0 ? ours / tcp : 0);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"pings", 1, NULL, 'n'}, {"window", 1, NULL, 'w'}, {NULL, 0, NULL, 0}};
	result is = {0}, ip = {0}, ls = {0}, lp = {0}, ts = {0}, tp = {0};
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'n': n_pings = atol(optarg); break;
		case 'w': window = atoi(optarg); break;
		default: fprintf(stderr, "usage: %s [--pings N] [--window W]\n", argv[0]); return 2;
		}
	}
	if (n_pings < 100 || n_pings > 10000000 || window < 2 || window > 64) {
		fprintf(stderr, "internode_bench: --pings 100..10000000, --window 2..64\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	kaa__log_level = KAA_LOG_WARN;
	lws_set_log_level(LLL_ERR, NULL);
	if (tcp_measure(&ts, &tp) != 0) {
		fprintf(stderr, "internode_bench: the bare TCP echo failed\n");
		return 1;
	}
	if (bare_measure(&ls, &lp) != 0) {
		fprintf(stderr, "internode_bench: the bare lws echo failed\n");
		return 1;
	}
	if (internode_measure(&is, &ip) != 0) {
		fprintf(stderr, "internode_bench: the internode run failed\n");
		return 1;
	}
	printf("pings=%ld (after %d warm-up) window=%d, loopback, one process\n", n_pings, WARMUP,
	       window);
	printf("| figure | internode | bare lws | ratio | bare TCP | ratio |\n"
	       "| --- | ---: | ---: | ---: | ---: | ---: |\n");
	row("RTT p50 (us), 1 in flight", is.p50_us, ls.p50_us, ts.p50_us, 1);
	row("RTT p99 (us), 1 in flight", is.p99_us, ls.p99_us, ts.p99_us, 1);
	row("round trips/s, 1 in flight", is.per_s, ls.per_s, ts.per_s, 0);
	char what[64];
	snprintf(what, sizeof(what), "round trips/s, %d in flight", window);
	row(what, ip.per_s, lp.per_s, tp.per_s, 0);
	snprintf(what, sizeof(what), "RTT p50 (us), %d in flight", window);
	row(what, ip.p50_us, lp.p50_us, tp.p50_us, 1);
	snprintf(what, sizeof(what), "RTT p99 (us), %d in flight", window);
	row(what, ip.p99_us, lp.p99_us, tp.p99_us, 1);
	printf("internode_rtt_p50_us=%.1f internode_rtt_p99_us=%.1f\n", is.p50_us, is.p99_us);
	return 0;
}
