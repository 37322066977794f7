/*
 * ops_bench - the operations transport (services/operations/ops_server.c)
 * beside a bare libwebsockets echo server built here, same run, same client:
 *   - RSS per idle WebSocket session: each server runs in a child process;
 *     the parent opens N sessions (subprotocol kaa.v1) and reads the
 *     child's resident set before and after;
 *   - messages/s: with the N sessions still open, C of them send Ping
 *     frames with W in flight each until M round trips completed. The bare
 *     server echoes the frame from the receive callback; ours decodes it,
 *     hands it to a worker whose handler answers Pong via kaa__ops_send.
 * Both servers use lws with libuv and the same rx buffer, no extensions.
 * Usage: ops_bench [--sessions N] [--conns C] [--window W] [--messages M]
 *                  [--rx-buffer B] [--workers K]   (K: our worker threads)
 */
#include "proto/endpoint_codec.h"
#include "base/error.h"
#include "base/log.h"
#include "operations/ops_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int n_sessions = 10000, n_conns = 64, window = 16, rx_buffer = 1024, workers = 4;
static long n_messages = 200000;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- servers (child processes) ---------------------------------------- */

static int bare_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		   size_t len)
{
	(void)user;
	if (reason == LWS_CALLBACK_RECEIVE) {
		uint8_t buf[LWS_PRE + 4096];

		if (len > sizeof(buf) - LWS_PRE)
			return -1;
		memcpy(buf + LWS_PRE, in, len);
		if (lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY) < (int)len)
			return -1;
	}
	return 0;
}

static void run_bare(int port_fd)
{
	static struct lws_protocols protos[3];
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	int port;

	lws_set_log_level(LLL_ERR, NULL);
	protos[0].name = "http";
	protos[0].callback = lws_callback_http_dummy;
	protos[1].name = KAA__PROTOCOL_SUBPROTOCOL;
	protos[1].callback = bare_cb;
	protos[1].rx_buffer_size = (size_t)rx_buffer;
	memset(&info, 0, sizeof(info));
	info.port = 0;
	info.iface = "127.0.0.1";
	info.protocols = protos;
	info.options = LWS_SERVER_OPTION_LIBUV;
	ctx = lws_create_context(&info);
	if (!ctx)
		_exit(1);
	port = lws_get_vhost_listen_port(lws_get_vhost_by_name(ctx, "default"));
	if (write(port_fd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	for (;;)
		if (lws_service(ctx, 0) < 0)
			break;
	_exit(0);
}

static kaa__ops_server *ops;

static void ops_frame(void *ud, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *f)
{
	Kaa__Endpoint__V1__Frame r = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;

	(void)ud;
	if (f->body_case != KAA__ENDPOINT__V1__FRAME__BODY_PING)
		return;
	r.protocol_version = 1;
	r.request_id = f->request_id;
	r.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
	r.pong = &p;
	p.payload = f->ping->payload;
	kaa__ops_send(ops, sid, &r);
}

static void ops_close(void *ud, kaa__session_id sid)
{
	(void)ud;
	(void)sid;
}

static void run_ops(int port_fd)
{
	kaa__ops_server_opts o = {0};
	kaa__ops_handlers h = {NULL, ops_frame, ops_close};
	int port;

	kaa__log_level = KAA_LOG_ERROR;
	o.bind_host = "127.0.0.1";
	o.rx_buffer = rx_buffer;
	o.workers = workers;
	o.max_sessions = n_sessions + 16;
	o.idle_timeout_ms = 3600 * 1000;
	o.hello_timeout_ms = 3600 * 1000;
	if (kaa__ops_server_new(&o, &h, &ops) != KAA_OK)
		_exit(1);
	port = kaa__ops_server_port(ops);
	if (write(port_fd, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	for (;;)
		pause();
}

/* ---- client (this process) --------------------------------------------- */

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = strtol(line + 6, NULL, 10);
	fclose(f);
	return kb;
}

static int ws_open(int port)
{
	static const char req[] =
		"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
		"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: kaa.v1\r\n\r\n";
	struct sockaddr_in a = {0};
	char buf[1024];
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (fd < 0)
		return -1;
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1))
		goto fail;
	while (got < sizeof(buf) - 1) {
		ssize_t r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (r <= 0)
			goto fail;
		got += (size_t)r;
		buf[got] = 0;
		if (strstr(buf, "\r\n\r\n"))
			return strncmp(buf, "HTTP/1.1 101", 12) ? (close(fd), -1) : fd;
	}
fail:
	close(fd);
	return -1;
}

typedef struct conn {
	int fd;
	long sent, recvd;
	uint8_t buf[65536];
	size_t len;
} conn;

/* Counts complete server frames in c->buf and drops them. */
static long count_frames(conn *c)
{
	size_t off = 0;
	long n = 0;

	for (;;) {
		size_t h = 2, plen;

		if (c->len - off < 2)
			break;
		plen = c->buf[off + 1] & 0x7f;
		if (plen == 126) {
			if (c->len - off < 4)
				break;
			plen = (size_t)c->buf[off + 2] << 8 | c->buf[off + 3];
			h = 4;
		} else if (plen == 127) {
			break; /* never sent by either server here */
		}
		if (c->len - off < h + plen)
			break;
		off += h + plen;
		n++;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return n;
}

/* M round trips over conns[0..nc) with window frames in flight each. */
static double throughput(conn *conns, unsigned nc, const uint8_t *frame, size_t flen)
{
	struct pollfd *pf = calloc(nc ? nc : 1, sizeof(*pf));
	uint8_t *burst = malloc(flen * 64);
	long done = 0, issued = 0;
	double t0 = now_s(), t;

	for (int w = 0; w < window; w++)
		memcpy(burst + (size_t)w * flen, frame, flen);
	for (unsigned i = 0; i < nc; i++) {
		long k = window;

		if (issued + k > n_messages)
			k = n_messages - issued;
		if (k > 0 && send(conns[i].fd, burst, flen * (size_t)k, MSG_NOSIGNAL) < 0)
			goto out;
		conns[i].sent = k;
		conns[i].recvd = 0;
		conns[i].len = 0;
		issued += k;
		pf[i].fd = conns[i].fd;
		pf[i].events = POLLIN;
	}
	while (done < n_messages) {
		if (poll(pf, (nfds_t)nc, 10000) <= 0)
			goto out;
		for (unsigned i = 0; i < nc; i++) {
			conn *c = &conns[i];
			ssize_t r;
			long n, k;

			if (!(pf[i].revents & POLLIN))
				continue;
			r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
			if (r <= 0)
				goto out;
			c->len += (size_t)r;
			n = count_frames(c);
			c->recvd += n;
			done += n;
			k = n;
			if (issued + k > n_messages)
				k = n_messages - issued;
			if (k > 0 && send(c->fd, burst, flen * (size_t)k, MSG_NOSIGNAL) < 0)
				goto out;
			issued += k > 0 ? k : 0;
		}
	}
out:
	t = now_s() - t0;
	free(pf);
	free(burst);
	return done == n_messages ? (double)done / t : -1;
}

typedef struct result {
	long rss0_kb, rss1_kb;
	int opened;
	double open_s;
	double msgs_per_s;
} result;

static int measure(bool ours, result *r)
{
	int p[2], port = 0, *fds;
	pid_t pid;
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ping ping = KAA__ENDPOINT__V1__PING__INIT;
	uint8_t *enc, masked[256];
	size_t elen, mlen;
	conn *conns;
	double t0;

	memset(r, 0, sizeof(*r));
	if (pipe(p))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		if (ours)
			run_ops(p[1]);
		else
			run_bare(p[1]);
		_exit(1);
	}
	close(p[1]);
	if (read(p[0], &port, sizeof(port)) != sizeof(port)) {
		close(p[0]);
		waitpid(pid, NULL, 0);
		return -1;
	}
	close(p[0]);
	r->rss0_kb = rss_kb(pid);

	fds = calloc((size_t)n_sessions, sizeof(*fds));
	t0 = now_s();
	for (r->opened = 0; r->opened < n_sessions; r->opened++) {
		fds[r->opened] = ws_open(port);
		if (fds[r->opened] < 0)
			break;
	}
	r->open_s = now_s() - t0;
	/* let the server settle (lazy allocations after the handshake) */
	for (int i = 0; i < 3; i++) {
		struct timespec ts = {0, 200 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	r->rss1_kb = rss_kb(pid);

	/* one Ping frame, masked once for every send */
	f.protocol_version = 1;
	f.request_id = 1;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PING;
	f.ping = &ping;
	ping.payload.data = (uint8_t *)"0123456789abcdef";
	ping.payload.len = 16;
	kaa__frame_encode(&f, &enc, &elen);
	masked[0] = 0x82;
	masked[1] = (uint8_t)(0x80 | elen);
	memcpy(masked + 2, "\x01\x02\x03\x04", 4);
	for (size_t i = 0; i < elen; i++)
		masked[6 + i] = enc[i] ^ masked[2 + (i & 3)];
	mlen = 6 + elen;
	free(enc);

	conns = calloc((size_t)n_conns, sizeof(*conns));
	{
		unsigned nc = (unsigned)(n_conns < r->opened ? n_conns : r->opened);

		for (unsigned i = 0; i < nc; i++)
			conns[i].fd = fds[i];
		r->msgs_per_s = throughput(conns, nc, masked, mlen);
	}
	free(conns);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	for (int i = 0; i < r->opened; i++)
		close(fds[i]);
	free(fds);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"sessions", 1, NULL, 's'},  {"conns", 1, NULL, 'c'},
					   {"window", 1, NULL, 'w'},    {"messages", 1, NULL, 'm'},
					   {"rx-buffer", 1, NULL, 'r'}, {"workers", 1, NULL, 'W'},
					   {NULL, 0, NULL, 0}};
	result bare, ours;
	int o;

	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 's': n_sessions = atoi(optarg); break;
		case 'c': n_conns = atoi(optarg); break;
		case 'w': window = atoi(optarg); break;
		case 'm': n_messages = atol(optarg); break;
		case 'r': rx_buffer = atoi(optarg); break;
		case 'W': workers = atoi(optarg); break;
		default:
			fprintf(stderr,
				"usage: %s [--sessions N] [--conns C] [--window W] "
				"[--messages M] [--rx-buffer B]\n",
				argv[0]);
			return 2;
		}
	}
	if (n_sessions < 1 || n_conns < 1 || window < 1 || window > 64 || n_messages < 1 ||
	    rx_buffer < 128 || workers < 1 || workers > 256) {
		fprintf(stderr, "ops_bench: bad arguments\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (measure(false, &bare) || measure(true, &ours)) {
		fprintf(stderr, "ops_bench: a server did not start\n");
		return 1;
	}
	printf("sessions=%d conns=%d window=%d messages=%ld rx_buffer=%d workers=%d\n", n_sessions,
	       n_conns, window, n_messages, rx_buffer, workers);
	printf("| figure | kaa ops | bare lws echo | ratio |\n| --- | ---: | ---: | ---: |\n");
	printf("| sessions opened | %d | %d | |\n", ours.opened, bare.opened);
	printf("| handshakes/s (one client) | %.0f | %.0f | %.2f |\n", ours.opened / ours.open_s,
	       bare.opened / bare.open_s,
	       (ours.opened / ours.open_s) / (bare.opened / bare.open_s));
	{
		double po = ours.opened ? (double)(ours.rss1_kb - ours.rss0_kb) * 1024 / ours.opened
					: 0;
		double pb = bare.opened ? (double)(bare.rss1_kb - bare.rss0_kb) * 1024 / bare.opened
					: 0;

		printf("| RSS per idle session (bytes) | %.0f | %.0f | %.2f |\n", po, pb,
		       pb > 0 ? po / pb : 0);
	}
	printf("| RSS with all sessions (KiB) | %ld | %ld | |\n", ours.rss1_kb, bare.rss1_kb);
	printf("| round trips/s | %.0f | %.0f | %.2f |\n", ours.msgs_per_s, bare.msgs_per_s,
	       bare.msgs_per_s > 0 ? ours.msgs_per_s / bare.msgs_per_s : 0);
	return 0;
}
