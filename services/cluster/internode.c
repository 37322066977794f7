/*
 * internode.c - see internode.h. Everything that touches a wsi runs on the
 * service thread; other threads only append to peer queues (under mu) and
 * wake the loop with lws_cancel_service. Peers are freed on the service
 * thread only, so a conn's peer pointer stays valid there.
 */
#include "cluster/internode.h"

#include "base/alloc.h"
#include "base/backoff.h"
#include "base/clock.h"
#include "proto/endpoint_codec.h"
#include "base/error.h"
#include "base/log.h"
#include "base/lws_log.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MOD "internode"
#define TICK_US (100 * 1000)
#define DIAL_MIN_MS 100
#define DIAL_MAX_MS 5000
#define PROTOCOL_VERSION 1

typedef struct qmsg {
	struct qmsg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE headroom, then len bytes */
} qmsg;

typedef struct peer {
	char *id;
	char *host; /* NULL: only known from an inbound connection */
	int port;
	bool removed;      /* remove_peer was called: free on the service thread */
	bool addr_changed; /* re-dial */
	struct lws *wsi;   /* current connection (dialing, or Hello done) */
	bool ready;        /* Hello exchanged on wsi */
	qmsg *head, *tail;
	size_t qbytes;
	int64_t next_dial_ms;
	kaa__backoff backoff; /* re-dial delay, reset by a completed Hello */
} peer;

typedef struct conn {
	peer *p;         /* NULL until the acceptor has the dialer's Hello */
	bool dialer;     /* we dialed this connection */
	bool send_hello; /* our Hello is due before anything else */
	bool closing;
	unsigned char *rx;
	size_t rx_len;
} conn;

struct kaa__internode {
	char *node_id, *cluster, *bind_host;
	size_t queue_max;
	kaa__internode_frame_cb on_frame;
	void *ud;
	kaa__metrics *metrics;
	kaa__counter *m_sent, *m_received, *m_dropped;

	struct lws_context *ctx;
	struct lws_protocols protocols[3];
	lws_sorted_usec_list_t tick;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	int port;
	conn *dialing_conn; /* service thread: see dial() */
	bool dialing_conn_destroyed;

	pthread_mutex_t mu; /* peers array, queues, ready flags */
	peer **peers;
	size_t n_peers, cap_peers;
};

/* ---- peers (mu held) ---------------------------------------------------------- */

static peer *find_peer(kaa__internode *in, const char *id)
{
	for (size_t i = 0; i < in->n_peers; i++)
		if (!in->peers[i]->removed && strcmp(in->peers[i]->id, id) == 0)
			return in->peers[i];
	return NULL;
}

static peer *add_peer(kaa__internode *in, const char *id)
{
	if (in->n_peers == in->cap_peers) {
		in->cap_peers = in->cap_peers ? in->cap_peers * 2 : 8;
		in->peers = kaa__xrealloc(in->peers, in->cap_peers * sizeof(*in->peers));
	}
	peer *p = kaa__xcalloc(1, sizeof(*p));
	p->id = kaa__xstrdup(id);
	kaa__backoff_init(&p->backoff, DIAL_MIN_MS, DIAL_MAX_MS);
	in->peers[in->n_peers++] = p;
	return p;
}

static void queue_clear(peer *p)
{
	while (p->head) {
		qmsg *m = p->head;
		p->head = m->next;
		free(m);
	}
	p->tail = NULL;
	p->qbytes = 0;
}

/* Either f (packed here) or the already packed buf[0..len). */
static int enqueue(kaa__internode *in, peer *p, const Kaa__Cluster__V1__InternodeFrame *f,
		   const void *buf, size_t len)
{
	if (f)
		len = kaa__cluster__v1__internode_frame__get_packed_size(f);
	if (len > KAA_INTERNODE_FRAME_MAX || p->qbytes + len > in->queue_max)
		return KAA_ERR_TOO_BIG;
	qmsg *m = kaa__xmalloc(sizeof(*m) + LWS_PRE + len);
	if (f)
		m->len = kaa__cluster__v1__internode_frame__pack(f, m->data + LWS_PRE);
	else {
		memcpy(m->data + LWS_PRE, buf, len);
		m->len = len;
	}
	m->next = NULL;
	if (p->tail)
		p->tail->next = m;
	else
		p->head = m;
	p->tail = m;
	p->qbytes += len;
	return KAA_OK;
}

/* ---- service thread ---------------------------------------------------------- */

static void hello_frame(kaa__internode *in, Kaa__Cluster__V1__InternodeFrame *f,
			Kaa__Cluster__V1__Hello *h)
{
	kaa__cluster__v1__internode_frame__init(f);
	kaa__cluster__v1__hello__init(h);
	h->node_id = in->node_id;
	h->cluster = in->cluster;
	f->protocol_version = PROTOCOL_VERSION;
	f->body_case = KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_HELLO;
	f->hello = h;
}

static int write_hello(kaa__internode *in, struct lws *wsi)
{
	Kaa__Cluster__V1__InternodeFrame f;
	Kaa__Cluster__V1__Hello h;
	hello_frame(in, &f, &h);
	size_t len = kaa__cluster__v1__internode_frame__get_packed_size(&f);
	unsigned char *buf = kaa__xmalloc(LWS_PRE + len);
	kaa__cluster__v1__internode_frame__pack(&f, buf + LWS_PRE);
	int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_BINARY);
	free(buf);
	return n < (int)len ? -1 : 0;
}

/*
 * Dials p (service thread, mu NOT held: lws may call back synchronously,
 * e.g. CONNECTION_ERROR and WSI_DESTROY for a failure inside the call, and
 * those take mu). The conn belongs to lws once the wsi exists and is freed
 * at WSI_DESTROY; dialing_conn tells whether that already happened.
 */
static void dial(kaa__internode *in, peer *p, const char *host, int port)
{
	struct lws_client_connect_info ci;
	conn *c = kaa__xcalloc(1, sizeof(*c));
	c->p = p;
	c->dialer = true;
	memset(&ci, 0, sizeof(ci));
	ci.context = in->ctx;
	ci.address = host;
	ci.port = port;
	ci.path = "/";
	ci.host = host;
	ci.origin = host;
	ci.protocol = KAA_INTERNODE_SUBPROTOCOL;
	ci.local_protocol_name = KAA_INTERNODE_SUBPROTOCOL;
	ci.opaque_user_data = c;
	in->dialing_conn = c;
	in->dialing_conn_destroyed = false;
	struct lws *wsi = lws_client_connect_via_info(&ci);
	bool destroyed = in->dialing_conn_destroyed;
	in->dialing_conn = NULL;
	pthread_mutex_lock(&in->mu);
	if (wsi && !destroyed)
		p->wsi = wsi;
	else if (!destroyed)
		free(c);
	pthread_mutex_unlock(&in->mu);
}

/* Closes a connection from the service thread (its CLOSED callback tidies). */
static void drop_conn(struct lws *wsi)
{
	conn *c = lws_get_opaque_user_data(wsi);
	if (c) {
		c->closing = true;
		c->p = NULL;
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

/* Dials what needs dialing, frees removed peers, asks for writes. */
static void service_peers(kaa__internode *in)
{
	int64_t now = kaa__now_ms();
	peer **to_dial = NULL;
	char **hosts = NULL;
	int *ports = NULL;
	size_t n_dial = 0;
	pthread_mutex_lock(&in->mu);
	for (size_t i = 0; i < in->n_peers;) {
		peer *p = in->peers[i];
		if (p->removed || p->addr_changed) {
			if (p->wsi)
				drop_conn(p->wsi);
			p->wsi = NULL;
			p->ready = false;
			p->addr_changed = false;
			kaa__backoff_reset(&p->backoff);
			p->next_dial_ms = 0;
		}
		if (p->removed) {
			queue_clear(p);
			free(p->id);
			free(p->host);
			free(p);
			in->peers[i] = in->peers[--in->n_peers];
			continue;
		}
		bool we_dial = p->host && strcmp(in->node_id, p->id) < 0;
		if (we_dial && !p->wsi && now >= p->next_dial_ms) {
			if (!to_dial) {
				to_dial = kaa__xcalloc(in->n_peers, sizeof(*to_dial));
				hosts = kaa__xcalloc(in->n_peers, sizeof(*hosts));
				ports = kaa__xcalloc(in->n_peers, sizeof(*ports));
			}
			/* the next attempt if this one fails */
			p->next_dial_ms = now + kaa__backoff_next(&p->backoff);
			to_dial[n_dial] = p;
			hosts[n_dial] = kaa__xstrdup(p->host);
			ports[n_dial++] = p->port;
		}
		if (p->wsi && p->ready && p->head)
			lws_callback_on_writable(p->wsi);
		i++;
	}
	pthread_mutex_unlock(&in->mu);
	/* Peers are freed only above, on this thread: the pointers stay valid. */
	for (size_t i = 0; i < n_dial; i++) {
		dial(in, to_dial[i], hosts[i], ports[i]);
		free(hosts[i]);
	}
	free(to_dial);
	free(hosts);
	free(ports);
}

static void on_tick(lws_sorted_usec_list_t *sul)
{
	kaa__internode *in = lws_container_of(sul, kaa__internode, tick);
	service_peers(in);
	lws_sul_schedule(in->ctx, 0, &in->tick, on_tick, TICK_US);
}

static int write_queued(kaa__internode *in, struct lws *wsi, conn *c)
{
	if (c->send_hello) {
		c->send_hello = false;
		if (write_hello(in, wsi) != 0)
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	pthread_mutex_lock(&in->mu);
	peer *p = c->p;
	qmsg *m = p && p->ready && p->wsi == wsi ? p->head : NULL;
	if (m) {
		p->head = m->next;
		if (!p->head)
			p->tail = NULL;
		p->qbytes -= m->len;
	}
	bool more = m && p->head;
	pthread_mutex_unlock(&in->mu);
	if (!m)
		return 0;
	int n = lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_BINARY);
	size_t len = m->len;
	free(m);
	if (n < (int)len)
		return -1;
	kaa__counter_inc(in->m_sent);
	if (more)
		lws_callback_on_writable(wsi);
	return 0;
}

/* A whole frame arrived on wsi. Returns -1 to close the connection. */
static int on_message(kaa__internode *in, struct lws *wsi, conn *c, const unsigned char *buf,
		      size_t len)
{
	Kaa__Cluster__V1__InternodeFrame *f =
		kaa__cluster__v1__internode_frame__unpack(NULL, len, buf);
	int rc = -1;
	if (!f || kaa__proto_strip_unknown(&f->base) < 0) {
		KAA_WARN(MOD, "bad_frame bytes=%zu peer=%s", len, c->p ? c->p->id : "?");
		if (f)
			kaa__cluster__v1__internode_frame__free_unpacked(f, NULL);
		return -1;
	}
	if (f->protocol_version != PROTOCOL_VERSION) {
		KAA_WARN(MOD, "bad_version version=%u", f->protocol_version);
		goto out;
	}
	pthread_mutex_lock(&in->mu);
	bool ready = c->p && c->p->ready && c->p->wsi == wsi;
	if (!ready) {
		/* Only Hello before the handshake completes. */
		const Kaa__Cluster__V1__Hello *h =
			f->body_case == KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_HELLO ? f->hello
										      : NULL;
		if (!h || !h->node_id || !*h->node_id || strlen(h->node_id) > 255 || !h->cluster ||
		    strcmp(h->cluster, in->cluster) != 0 || strcmp(h->node_id, in->node_id) == 0) {
			pthread_mutex_unlock(&in->mu);
			KAA_WARN(MOD, "hello_refused node=%s cluster=%s",
				 h && h->node_id ? h->node_id : "?",
				 h && h->cluster ? h->cluster : "?");
			goto out;
		}
		if (c->dialer) {
			if (!c->p || strcmp(h->node_id, c->p->id) != 0) {
				pthread_mutex_unlock(&in->mu);
				KAA_WARN(MOD, "hello_wrong_peer node=%s", h->node_id);
				goto out;
			}
		} else {
			peer *p = find_peer(in, h->node_id);
			if (!p)
				p = add_peer(in, h->node_id);
			if (p->wsi && p->wsi != wsi)
				drop_conn(p->wsi); /* a stale connection of the same peer */
			p->wsi = wsi;
			c->p = p;
			c->send_hello = true;
		}
		c->p->ready = true;
		kaa__backoff_reset(&c->p->backoff);
		KAA_INFO(MOD, "connected peer=%s dialer=%d", c->p->id, c->dialer);
		pthread_mutex_unlock(&in->mu);
		lws_callback_on_writable(wsi);
		rc = 0;
		goto out;
	}
	char id[256];
	snprintf(id, sizeof(id), "%s", c->p->id);
	pthread_mutex_unlock(&in->mu);
	kaa__counter_inc(in->m_received);
	if (f->body_case != KAA__CLUSTER__V1__INTERNODE_FRAME__BODY_HELLO && in->on_frame)
		in->on_frame(in->ud, id, f);
	rc = 0;
out:
	kaa__cluster__v1__internode_frame__free_unpacked(f, NULL);
	return rc;
}

static int on_receive(kaa__internode *in, struct lws *wsi, conn *c, const void *data, size_t len)
{
	bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
	if (first)
		c->rx_len = 0;
	if (!lws_frame_is_binary(wsi) || c->rx_len + len > KAA_INTERNODE_FRAME_MAX) {
		KAA_WARN(MOD, "frame_refused bytes=%zu binary=%d", c->rx_len + len,
			 lws_frame_is_binary(wsi));
		return -1;
	}
	if (first && final)
		return on_message(in, wsi, c, data, len);
	if (!c->rx)
		c->rx = kaa__xmalloc(KAA_INTERNODE_FRAME_MAX);
	memcpy(c->rx + c->rx_len, data, len);
	c->rx_len += len;
	if (!final)
		return 0;
	return on_message(in, wsi, c, c->rx, c->rx_len);
}

/* Detaches the connection from its peer; afterwards c->p is NULL, so no
 * later callback of this wsi touches the peer (which may then be freed). */
static void on_closed(kaa__internode *in, struct lws *wsi, conn *c)
{
	pthread_mutex_lock(&in->mu);
	peer *p = c ? c->p : NULL;
	if (p && p->wsi == wsi) {
		if (p->ready)
			KAA_INFO(MOD, "disconnected peer=%s", p->id);
		p->wsi = NULL;
		p->ready = false;
	}
	if (c)
		c->p = NULL;
	pthread_mutex_unlock(&in->mu);
}

static int http_reply(struct lws *wsi, unsigned status, const char *ctype, const char *body,
		      size_t len)
{
	uint8_t hdr[LWS_PRE + 512], *start = hdr + LWS_PRE, *p = start,
				    *end = hdr + sizeof(hdr) - 1;
	if (lws_add_http_common_headers(wsi, status, ctype, (lws_filepos_t)len, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	uint8_t *buf = kaa__xmalloc(LWS_PRE + len + 1);
	memcpy(buf + LWS_PRE, body, len);
	int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
	free(buf);
	if (n < 0)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int on_http(kaa__internode *in, struct lws *wsi, const char *path)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
		/* and close: a request body we will not read may follow */
		http_reply(wsi, 405, "application/json", "{\"error\":\"method not allowed\"}", 30);
		return -1;
	}
	if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0)
		return http_reply(wsi, 200, "application/json", "{\"status\":\"ok\"}", 15);
	if (strcmp(path, "/metrics") == 0) {
		char *text = NULL;
		size_t len = 0;
		if (in->metrics)
			kaa__metrics_render(in->metrics, &text, &len);
		int rc = http_reply(wsi, 200, "text/plain; version=0.0.4; charset=utf-8",
				    text ? text : "", len);
		free(text);
		return rc;
	}
	return http_reply(wsi, 404, "application/json", "{\"error\":\"not found\"}", 21);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *data,
		    size_t len)
{
	(void)user;
	struct lws_context *ctx = lws_get_context(wsi);
	kaa__internode *in = ctx ? lws_context_user(ctx) : NULL;
	conn *c = lws_get_opaque_user_data(wsi);
	if (!in)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_HTTP: return on_http(in, wsi, data ? (const char *)data : "");
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED: service_peers(in); return 0;
	case LWS_CALLBACK_ESTABLISHED:
		c = kaa__xcalloc(1, sizeof(*c));
		lws_set_opaque_user_data(wsi, c);
		return 0;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!c || c->closing || !c->p)
			return -1;
		c->send_hello = true;
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!c || c->closing)
			return -1;
		return on_receive(in, wsi, c, data, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (!c || c->closing)
			return -1;
		return write_queued(in, wsi, c);
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		KAA_WARN(MOD, "dial_failed peer=%s why=\"%s\"", c && c->p ? c->p->id : "?",
			 data ? (const char *)data : "");
		on_closed(in, wsi, c);
		return 0;
	case LWS_CALLBACK_CLOSED:
	case LWS_CALLBACK_CLIENT_CLOSED: on_closed(in, wsi, c); return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		if (c && c == in->dialing_conn)
			in->dialing_conn_destroyed = true;
		if (c) {
			on_closed(in, wsi, c);
			lws_set_opaque_user_data(wsi, NULL);
			free(c->rx);
			free(c);
		}
		return 0;
	default: return 0;
	}
}

static void *service_main(void *arg)
{
	kaa__internode *in = arg;
	lws_sul_schedule(in->ctx, 0, &in->tick, on_tick, TICK_US);
	while (!atomic_load(&in->stop))
		if (lws_service(in->ctx, 0) < 0)
			break;
	return NULL;
}

/* ---- public ----------------------------------------------------------------- */

int kaa__internode_new(const kaa__internode_opts *opts, kaa__internode **out)
{
	struct lws_context_creation_info info;
	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (!opts || !opts->node_id || !*opts->node_id || strlen(opts->node_id) > 255 ||
	    !opts->cluster || !*opts->cluster || opts->port < 0 || opts->port > 65535)
		return KAA_ERR_INVAL;
	kaa__lws_log_init();
	kaa__internode *in = kaa__xcalloc(1, sizeof(*in));
	in->node_id = kaa__xstrdup(opts->node_id);
	in->cluster = kaa__xstrdup(opts->cluster);
	in->bind_host = opts->bind_host ? kaa__xstrdup(opts->bind_host) : NULL;
	in->queue_max = opts->queue_max ? opts->queue_max : 4u << 20;
	in->on_frame = opts->on_frame;
	in->ud = opts->ud;
	in->metrics = opts->metrics;
	if (in->metrics) {
		in->m_sent = kaa__metrics_counter(in->metrics, "kaa_internode_frames_sent_total",
						  "Internode frames written", NULL);
		in->m_received =
			kaa__metrics_counter(in->metrics, "kaa_internode_frames_received_total",
					     "Internode frames received from peers", NULL);
	}
	pthread_mutex_init(&in->mu, NULL);

	in->protocols[0].name = "http";
	in->protocols[0].callback = callback;
	in->protocols[1].name = KAA_INTERNODE_SUBPROTOCOL;
	in->protocols[1].callback = callback;
	in->protocols[1].rx_buffer_size = 16384;
	memset(&info, 0, sizeof(info));
	info.port = opts->port ? opts->port : CONTEXT_PORT_NO_LISTEN_SERVER;
	info.iface = in->bind_host;
	info.protocols = in->protocols;
	info.user = in;
	info.count_threads = 1;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	in->ctx = lws_create_context(&info);
	if (!in->ctx)
		goto fail;
	/* one vhost that listens (port 0: the kernel picks one) */
	info.port = opts->port;
	info.vhost_name = "internode";
	struct lws_vhost *vh = lws_create_vhost(in->ctx, &info);
	if (!vh) {
		KAA_ERROR(MOD, "listen_failed port=%d", opts->port);
		goto fail;
	}
	in->port = lws_get_vhost_listen_port(vh);
	if (pthread_create(&in->thread, NULL, service_main, in) != 0)
		goto fail;
	in->thread_started = true;
	*out = in;
	return KAA_OK;
fail:
	kaa__internode_free(in);
	return KAA_ERR_IO;
}

int kaa__internode_port(const kaa__internode *in)
{
	return in ? in->port : -1;
}

void kaa__internode_free(kaa__internode *in)
{
	if (!in)
		return;
	if (in->thread_started) {
		atomic_store(&in->stop, true);
		lws_cancel_service(in->ctx);
		pthread_join(in->thread, NULL);
	}
	if (in->ctx)
		lws_context_destroy(in->ctx); /* closes every wsi: conns freed */
	for (size_t i = 0; i < in->n_peers; i++) {
		queue_clear(in->peers[i]);
		free(in->peers[i]->id);
		free(in->peers[i]->host);
		free(in->peers[i]);
	}
	free(in->peers);
	pthread_mutex_destroy(&in->mu);
	free(in->node_id);
	free(in->cluster);
	free(in->bind_host);
	free(in);
}

int kaa__internode_set_peer(kaa__internode *in, const char *node_id, const char *host, int port)
{
	if (!in || !node_id || !*node_id || strlen(node_id) > 255 || !host || !*host || port <= 0 ||
	    port > 65535)
		return KAA_ERR_INVAL;
	if (strcmp(node_id, in->node_id) == 0)
		return KAA_OK;
	pthread_mutex_lock(&in->mu);
	peer *p = find_peer(in, node_id);
	if (!p)
		p = add_peer(in, node_id);
	if (!p->host || strcmp(p->host, host) != 0 || p->port != port) {
		if (p->host)
			p->addr_changed = true;
		free(p->host);
		p->host = kaa__xstrdup(host);
		p->port = port;
	}
	pthread_mutex_unlock(&in->mu);
	lws_cancel_service(in->ctx);
	return KAA_OK;
}

int kaa__internode_remove_peer(kaa__internode *in, const char *node_id)
{
	if (!in || !node_id)
		return KAA_ERR_INVAL;
	pthread_mutex_lock(&in->mu);
	peer *p = find_peer(in, node_id);
	if (p)
		p->removed = true;
	pthread_mutex_unlock(&in->mu);
	if (!p)
		return KAA_ERR_NOTFOUND;
	lws_cancel_service(in->ctx);
	return KAA_OK;
}

static int send_frame(kaa__internode *in, const char *node_id,
		      const Kaa__Cluster__V1__InternodeFrame *frame, const void *buf, size_t len)
{
	pthread_mutex_lock(&in->mu);
	peer *p = find_peer(in, node_id);
	int rc = p ? enqueue(in, p, frame, buf, len) : KAA_ERR_NOTFOUND;
	bool wake = rc == KAA_OK && p->ready;
	pthread_mutex_unlock(&in->mu);
	if (rc == KAA_ERR_TOO_BIG)
		KAA_WARN(MOD, "queue_full peer=%s", node_id);
	if (wake)
		lws_cancel_service(in->ctx);
	return rc;
}

int kaa__internode_send(kaa__internode *in, const char *node_id,
			const Kaa__Cluster__V1__InternodeFrame *frame)
{
	if (!in || !node_id || !frame)
		return KAA_ERR_INVAL;
	return send_frame(in, node_id, frame, NULL, 0);
}

int kaa__internode_send_packed(kaa__internode *in, const char *node_id, const void *buf, size_t len)
{
	if (!in || !node_id || !buf || !len)
		return KAA_ERR_INVAL;
	return send_frame(in, node_id, NULL, buf, len);
}

bool kaa__internode_connected(kaa__internode *in, const char *node_id)
{
	pthread_mutex_lock(&in->mu);
	peer *p = find_peer(in, node_id);
	bool ok = p && p->ready;
	pthread_mutex_unlock(&in->mu);
	return ok;
}

size_t kaa__internode_connections(kaa__internode *in)
{
	size_t n = 0;
	pthread_mutex_lock(&in->mu);
	for (size_t i = 0; i < in->n_peers; i++)
		n += in->peers[i]->ready && !in->peers[i]->removed;
	pthread_mutex_unlock(&in->mu);
	return n;
}
