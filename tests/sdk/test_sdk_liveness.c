/* libkaa session liveness: a client against a fake operations server (a
 * libwebsockets server in this process) that stops answering without
 * closing the connection (it stops reading and writing that socket, as a
 * network partition looks from the device), answers Pings with something
 * else than Pong, or ignores them; and against a listener that never
 * completes the WebSocket handshake. Timings use small option values
 * (keepalive 300 ms, liveness 700 ms) and are polled with deadlines. */
#include "cu_main.h"
#include "test_util.h"
#include "proto/endpoint_codec.h"
#include "base/clock.h"
#include "base/error.h"
#include "fake_servers.h"
#include "kaa/kaa.h"

#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define KEEPALIVE_MS 300
#define LIVENESS_MS 700
/* scheduling, the 50 ms sweep, backoff and the new handshake; generous for
 * ASan and valgrind */
#define SLACK_MS 2500
#define MAXPINGS 256

static char dir[256];

static int setup(void)
{
	return kaa__test_tmpdir(dir, sizeof(dir), "kaa-sdk-liveness");
}

static int teardown(void)
{
	return kaa__test_rm_tree(dir);
}

/* ---- the fake operations server ------------------------------------------ */

typedef enum ping_mode {
	PING_PONG,  /* Pong with the payload, as the protocol says */
	PING_OTHER, /* an empty NotificationTopics instead: any frame is life */
	PING_NONE,  /* no answer at all (the socket is still read) */
} ping_mode;

/* per connection */
typedef struct pss {
	bool frozen;
} pss;

static struct {
	pthread_mutex_t mu;
	struct lws_context *ctx;
	pthread_t thread;
	volatile int stop;
	struct lws *wsi;    /* the newest connection */
	struct lws *frozen; /* the one that stopped answering */
	outframe *outq;
	bool freeze_req;
	int64_t frozen_at_ms;
	unsigned char rx[70000];
	size_t rxlen;
	ping_mode mode;
	uint32_t idle_timeout_ms; /* in HelloAck; 0: not given */
	/* what the device sent */
	int hellos;
	int64_t hello_ms[16];
	int pings;
	int64_t ping_ms[MAXPINGS];
	int events, logs;
	int events_first; /* events read in the first session */
	int closed;       /* connections closed (the frozen one included) */
	fake_boot boot;
	/* a listener that never answers (connect timeout) */
	int hole_fd;
} srv = {.mu = PTHREAD_MUTEX_INITIALIZER, .boot = {.fd = -1}, .hole_fd = -1};

static void outq_clear(void)
{
	fake_outq_clear(&srv.outq);
}

/* srv.mu held. Encodes and queues f for the newest connection. */
static void srv_queue(Kaa__Endpoint__V1__Frame *f, uint64_t req)
{
	if (fake_outq_push(&srv.outq, f, req) && srv.wsi)
		lws_callback_on_writable(srv.wsi);
}

/* srv.mu held: one frame from the device. */
static void srv_handle(const Kaa__Endpoint__V1__Frame *in)
{
	Kaa__Endpoint__V1__Frame f = KAA__ENDPOINT__V1__FRAME__INIT;
	uint64_t req = in->request_id;

	switch (in->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO: {
		Kaa__Endpoint__V1__HelloAck a = KAA__ENDPOINT__V1__HELLO_ACK__INIT;
		Kaa__Endpoint__V1__Limits lim = KAA__ENDPOINT__V1__LIMITS__INIT;
		char sid[32];
		if (srv.hellos < 16)
			srv.hello_ms[srv.hellos] = kaa__now_ms();
		srv.hellos++;
		snprintf(sid, sizeof(sid), "fake.%d", srv.hellos);
		lim.max_frame_bytes = 65536;
		lim.idle_timeout_ms = srv.idle_timeout_ms;
		a.endpoint_key_hash = "EKH-live";
		a.session_id = sid;
		a.limits = &lim;
		a.registered = srv.hellos == 1;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_HELLO_ACK;
		f.hello_ack = &a;
		srv_queue(&f, req);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_PING: {
		if (srv.pings < MAXPINGS)
			srv.ping_ms[srv.pings] = kaa__now_ms();
		srv.pings++;
		if (srv.mode == PING_PONG) {
			Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;
			p.payload = in->ping->payload;
			f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
			f.pong = &p;
			srv_queue(&f, req);
		} else if (srv.mode == PING_OTHER) {
			Kaa__Endpoint__V1__NotificationTopics t =
				KAA__ENDPOINT__V1__NOTIFICATION_TOPICS__INIT;
			f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_TOPICS;
			f.notification_topics = &t;
			srv_queue(&f, 0);
		}
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT: {
		Kaa__Endpoint__V1__EventAck a = KAA__ENDPOINT__V1__EVENT_ACK__INIT;
		srv.events++;
		srv.events_first += srv.hellos == 1;
		a.seq = in->event->seq;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK;
		f.event_ack = &a;
		srv_queue(&f, req);
		break;
	}
	case KAA__ENDPOINT__V1__FRAME__BODY_LOG_UPLOAD: {
		Kaa__Endpoint__V1__LogDeliveryStatus s =
			KAA__ENDPOINT__V1__LOG_DELIVERY_STATUS__INIT;
		srv.logs += (int)in->log_upload->n_records_json;
		s.batch_id = in->log_upload->batch_id;
		s.status = KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS;
		f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_LOG_DELIVERY_STATUS;
		f.log_delivery_status = &s;
		srv_queue(&f, req);
		break;
	}
	default: break; /* config sync: not needed here */
	}
}

static int srv_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		  size_t len)
{
	pss *p = user;
	int ret = 0;

	pthread_mutex_lock(&srv.mu);
	switch (reason) {
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (srv.freeze_req && srv.wsi) {
			/* stop servicing it: nothing read, nothing written, not
			 * closed; the next connection is served normally */
			pss *fp = lws_wsi_user(srv.wsi);
			fp->frozen = true;
			lws_rx_flow_control(srv.wsi, 0);
			srv.frozen = srv.wsi;
			srv.wsi = NULL;
			srv.frozen_at_ms = kaa__now_ms();
			srv.freeze_req = false;
			outq_clear();
		}
		if (srv.wsi && srv.outq)
			lws_callback_on_writable(srv.wsi);
		break;
	case LWS_CALLBACK_ESTABLISHED:
		p->frozen = false;
		srv.wsi = wsi;
		srv.rxlen = 0;
		outq_clear();
		break;
	case LWS_CALLBACK_CLOSED:
		srv.closed++;
		if (srv.frozen == wsi)
			srv.frozen = NULL;
		if (srv.wsi == wsi) {
			srv.wsi = NULL;
			outq_clear();
		}
		break;
	case LWS_CALLBACK_RECEIVE:
		if (p->frozen || wsi != srv.wsi)
			break;
		if (srv.rxlen + len <= sizeof(srv.rx)) {
			memcpy(srv.rx + srv.rxlen, in, len);
			srv.rxlen += len;
		}
		if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
			Kaa__Endpoint__V1__Frame *f = NULL;
			if (kaa__frame_decode(srv.rx, srv.rxlen, NULL, &f, NULL) == KAA_OK)
				srv_handle(f);
			kaa__frame_free(f);
			srv.rxlen = 0;
		}
		break;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (p->frozen || wsi != srv.wsi || !srv.outq)
			break;
		outframe *o = srv.outq;
		srv.outq = o->next;
		int w = lws_write(wsi, o->buf + LWS_PRE, o->len, LWS_WRITE_BINARY);
		free(o);
		if (w < 0)
			ret = -1;
		else if (srv.outq)
			lws_callback_on_writable(wsi);
		break;
	default: break;
	}
	pthread_mutex_unlock(&srv.mu);
	return ret;
}

static const struct lws_protocols srv_protocols[] = {
	{"http", lws_callback_http_dummy, 0, 0, 0, NULL, 0},
	{"kaa.v1", srv_cb, sizeof(pss), 70000, 0, NULL, 0},
	{NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *srv_thread(void *arg)
{
	(void)arg;
	while (!srv.stop)
		if (lws_service(srv.ctx, 0) < 0)
			break;
	return NULL;
}

/* Starts the bootstrap responder pointing at the fake operations server,
 * or, with black_hole, at a listener that accepts TCP connections (the
 * kernel does) but never answers the WebSocket handshake. */
static int srv_start(char *boot_hostport, size_t len, bool black_hole, ping_mode mode,
		     uint32_t idle_timeout_ms)
{
	struct lws_context_creation_info info;
	int port = -1;

	srv.stop = 0;
	srv.mode = mode;
	srv.idle_timeout_ms = idle_timeout_ms;
	srv.hellos = srv.pings = srv.events = srv.events_first = srv.logs = srv.closed = 0;
	srv.frozen = srv.wsi = NULL;
	srv.freeze_req = false;
	if (black_hole) {
		srv.hole_fd = fake_listener(&port);
		if (srv.hole_fd < 0)
			return -1;
	} else {
		port = fake_free_port();
		if (port < 0)
			return -1;
		memset(&info, 0, sizeof(info));
		info.port = port;
		info.iface = "127.0.0.1";
		info.protocols = srv_protocols;
		info.gid = (gid_t)-1;
		info.uid = (uid_t)-1;
		srv.ctx = lws_create_context(&info);
		if (!srv.ctx)
			return -1;
	}
	if (fake_boot_start(&srv.boot, port, boot_hostport, len) != 0)
		return -1;
	if (srv.ctx && pthread_create(&srv.thread, NULL, srv_thread, NULL) != 0)
		return -1;
	return 0;
}

static void srv_stop(void)
{
	srv.stop = 1;
	if (srv.ctx) {
		lws_cancel_service(srv.ctx);
		pthread_join(srv.thread, NULL);
		lws_context_destroy(srv.ctx);
		srv.ctx = NULL;
	}
	fake_boot_stop(&srv.boot);
	if (srv.hole_fd >= 0) {
		close(srv.hole_fd);
		srv.hole_fd = -1;
	}
	outq_clear();
}

/* ---- what the client's callbacks saw (guarded by seen.mu) ---- */

static struct {
	pthread_mutex_t mu;
	kaa_client_state states[64];
	size_t nstates;
	int timeouts;         /* on_error KAA_ERR_TIMEOUT */
	int connect_timeouts; /* on_error "... timed out" while connecting */
	char last_timeout[512];
	int results_ok;
	size_t records_ok;
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void seen_reset(void)
{
	pthread_mutex_lock(&seen.mu);
	seen.nstates = 0;
	seen.timeouts = seen.connect_timeouts = seen.results_ok = 0;
	seen.records_ok = 0;
	seen.last_timeout[0] = '\0';
	pthread_mutex_unlock(&seen.mu);
}

static void cb_state(kaa_client *c, kaa_client_state s, void *user)
{
	(void)c, (void)user;
	pthread_mutex_lock(&seen.mu);
	if (seen.nstates < 64)
		seen.states[seen.nstates++] = s;
	pthread_mutex_unlock(&seen.mu);
}

static void cb_error(kaa_client *c, int err, int code, const char *msg, void *user)
{
	(void)c, (void)code, (void)user;
	pthread_mutex_lock(&seen.mu);
	if (err == KAA_ERR_TIMEOUT) {
		seen.timeouts++;
		snprintf(seen.last_timeout, sizeof(seen.last_timeout), "%s", msg);
	} else if (err == KAA_ERR_UNAVAILABLE && strstr(msg, "timed out")) {
		seen.connect_timeouts++;
	}
	pthread_mutex_unlock(&seen.mu);
}

static void cb_result(kaa_client *c, uint64_t seq, int err, int code, const char *msg, void *user)
{
	(void)c, (void)seq, (void)code, (void)msg, (void)user;
	pthread_mutex_lock(&seen.mu);
	seen.results_ok += err == KAA_OK;
	pthread_mutex_unlock(&seen.mu);
}

static void cb_logs(kaa_client *c, uint64_t batch, size_t n, bool ok, void *user)
{
	(void)c, (void)batch, (void)user;
	pthread_mutex_lock(&seen.mu);
	if (ok)
		seen.records_ok += n;
	pthread_mutex_unlock(&seen.mu);
}

static const kaa_callbacks cbs = {.on_state = cb_state,
				  .on_error = cb_error,
				  .on_event_result = cb_result,
				  .on_log_delivery = cb_logs};

/* Polls cond (reading srv and seen under their locks) until it holds or
 * ms pass. */
static bool wait_for(bool (*cond)(void), int ms)
{
	int64_t deadline = kaa__now_ms() + ms;

	for (;;) {
		pthread_mutex_lock(&srv.mu);
		pthread_mutex_lock(&seen.mu);
		bool ok = cond();
		pthread_mutex_unlock(&seen.mu);
		pthread_mutex_unlock(&srv.mu);
		if (ok)
			return true;
		if (kaa__now_ms() >= deadline)
			return false;
		usleep(5 * 1000);
	}
}

static kaa_client *cur;

/* (conditions must not call the client API: its callbacks take seen.mu
 * with the runtime lock held) */
static bool c_established(void)
{
	return srv.hellos >= 1 && seen.nstates > 0 &&
	       seen.states[seen.nstates - 1] == KAA_STATE_ESTABLISHED;
}
static bool c_frozen(void)
{
	return srv.frozen != NULL;
}
static bool c_second_hello(void)
{
	return srv.hellos >= 2;
}
static bool c_resent_and_acked(void)
{
	return seen.results_ok == 1 && seen.records_ok == 1 && srv.events >= 1 && srv.logs >= 1;
}
static bool c_six_pings(void)
{
	return srv.pings >= 6;
}
static bool c_four_pings(void)
{
	return srv.pings >= 4;
}
static bool c_two_connect_timeouts(void)
{
	return seen.connect_timeouts >= 2;
}

/* The server stops servicing the current connection; returns once it has. */
static bool srv_freeze(void)
{
	pthread_mutex_lock(&srv.mu);
	srv.freeze_req = true;
	pthread_mutex_unlock(&srv.mu);
	lws_cancel_service(srv.ctx);
	return wait_for(c_frozen, 5000);
}

static kaa_client *new_client(kaa_runtime *rt, const char *boot, const char *name,
			      int32_t keepalive, int32_t liveness, uint32_t connect_timeout)
{
	static char sub[300];
	const char *bootv[] = {boot};
	kaa_client_options o = {.application_token = "app",
				.bootstrap_servers = bootv,
				.bootstrap_count = 1,
				.state_dir = sub,
				.callbacks = &cbs,
				.backoff_initial_ms = 50,
				.backoff_max_ms = 200,
				.state_no_fsync = true,
				.log_no_fsync = true,
				.log_flush_ms = 10,
				.endpoint_access_token = "tok",
				.keepalive_ms = keepalive,
				.liveness_timeout_ms = liveness,
				.connect_timeout_ms = connect_timeout};
	kaa_client *c = NULL;

	snprintf(sub, sizeof(sub), "%s/%s", dir, name);
	if (kaa_client_new(rt, &o, &c) != KAA_OK)
		return NULL;
	return c;
}

/* The server stops answering (a partition): the client declares the
 * connection dead within keepalive + liveness (+ slack), reconnects, and
 * what it sent into the dead connection goes again. */
static void test_dead_server_reconnects(void)
{
	kaa_runtime *rt = NULL;
	char boot[64];
	kaa_client_stats st;
	uint64_t seq;

	seen_reset();
	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot), false, PING_PONG, 120000), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	cur = new_client(rt, boot, "dead", KEEPALIVE_MS, LIVENESS_MS, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
	CU_ASSERT_EQUAL(kaa_client_start(cur), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_established, 10000));

	CU_ASSERT_FATAL(srv_freeze());
	/* sent into the dead connection: must survive it */
	CU_ASSERT_EQUAL(kaa_client_send_event(cur, "a.B", NULL, "{\"n\":1}", &seq), KAA_OK);
	CU_ASSERT_EQUAL(kaa_client_log_add(cur, "{\"r\":1}", 7), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_second_hello, KEEPALIVE_MS + LIVENESS_MS + SLACK_MS));
	pthread_mutex_lock(&srv.mu);
	int64_t took = srv.hello_ms[1] - srv.frozen_at_ms;
	CU_ASSERT(took <= KEEPALIVE_MS + LIVENESS_MS + SLACK_MS);
	/* not before a Ping could have gone unanswered for the liveness timeout */
	CU_ASSERT(took >= LIVENESS_MS - 100);
	CU_ASSERT_EQUAL(srv.events_first, 0); /* the frozen server read nothing */
	fprintf(stderr, "(dead after freeze: new session in %lld ms) ", (long long)took);
	pthread_mutex_unlock(&srv.mu);

	CU_ASSERT_FATAL(wait_for(c_resent_and_acked, 10000));
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.liveness_timeouts, 1);
	CU_ASSERT_EQUAL(st.connects, 2);
	CU_ASSERT_EQUAL(st.reconnects, 1);
	CU_ASSERT_EQUAL(st.events_outbox, 0);
	CU_ASSERT_EQUAL(st.queued_records, 0);
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_EQUAL(seen.timeouts, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(seen.last_timeout, "127.0.0.1"));
	/* established, then waiting (the reconnect path), then established again */
	size_t i = 0;
	while (i < seen.nstates && seen.states[i] != KAA_STATE_ESTABLISHED)
		i++;
	CU_ASSERT(i + 3 < seen.nstates);
	if (i + 3 < seen.nstates) {
		CU_ASSERT_EQUAL(seen.states[i + 1], KAA_STATE_WAITING);
		CU_ASSERT_EQUAL(seen.states[i + 2], KAA_STATE_CONNECTING);
		CU_ASSERT_EQUAL(seen.states[i + 3], KAA_STATE_ESTABLISHED);
	}
	pthread_mutex_unlock(&seen.mu);

	kaa_client_free(cur);
	kaa_runtime_free(rt);
	srv_stop();
}

/* A quiet but healthy server (it answers Pings) keeps the session over
 * several keepalive periods. keepalive_ms 0: the default, a third of the
 * server's idle timeout (900 ms here). */
static void test_quiet_server_kept(void)
{
	kaa_runtime *rt = NULL;
	char boot[64];
	kaa_client_stats st;

	seen_reset();
	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot), false, PING_PONG, 3 * KEEPALIVE_MS), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	cur = new_client(rt, boot, "quiet", 0, LIVENESS_MS, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
	CU_ASSERT_EQUAL(kaa_client_start(cur), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_established, 10000));
	CU_ASSERT_FATAL(wait_for(c_six_pings, 10000));
	pthread_mutex_lock(&srv.mu);
	CU_ASSERT_EQUAL(srv.hellos, 1);
	/* one Ping per silent keepalive period, not more */
	CU_ASSERT(srv.ping_ms[5] - srv.ping_ms[0] >= 5 * (KEEPALIVE_MS - 20));
	pthread_mutex_unlock(&srv.mu);
	CU_ASSERT_EQUAL(kaa_client_get_state(cur), KAA_STATE_ESTABLISHED);
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.reconnects, 0);
	CU_ASSERT_EQUAL(st.liveness_timeouts, 0);
	pthread_mutex_lock(&seen.mu);
	CU_ASSERT_EQUAL(seen.timeouts, 0);
	pthread_mutex_unlock(&seen.mu);

	kaa_client_free(cur);
	kaa_runtime_free(rt);
	srv_stop();
}

/* Any frame proves the server alive, not only Pong; a server that reads
 * but answers nothing is declared dead like a partitioned one. */
static void test_any_frame_counts(void)
{
	kaa_runtime *rt = NULL;
	char boot[64];
	kaa_client_stats st;

	seen_reset();
	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot), false, PING_OTHER, 0), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	cur = new_client(rt, boot, "other", KEEPALIVE_MS, LIVENESS_MS, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
	CU_ASSERT_EQUAL(kaa_client_start(cur), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_established, 10000));
	CU_ASSERT_FATAL(wait_for(c_six_pings, 10000));
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.liveness_timeouts, 0);
	CU_ASSERT_EQUAL(st.reconnects, 0);

	pthread_mutex_lock(&srv.mu);
	srv.mode = PING_NONE;
	int64_t t0 = kaa__now_ms();
	pthread_mutex_unlock(&srv.mu);
	CU_ASSERT_FATAL(wait_for(c_second_hello, KEEPALIVE_MS + LIVENESS_MS + SLACK_MS));
	CU_ASSERT(kaa__now_ms() - t0 <= KEEPALIVE_MS + LIVENESS_MS + SLACK_MS);
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.liveness_timeouts, 1);
	CU_ASSERT_EQUAL(st.reconnects, 1);

	kaa_client_free(cur);
	kaa_runtime_free(rt);
	srv_stop();
}

/* Liveness off (negative): Pings keep going to a server that never answers
 * them and the session stays. Keepalive off: no Pings, the session stays
 * with a frozen server. (Both observed over a bounded window: the property
 * is that nothing happens.) */
static void test_disabled(void)
{
	kaa_runtime *rt = NULL;
	char boot[64];
	kaa_client_stats st;

	seen_reset();
	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot), false, PING_NONE, 120000), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	cur = new_client(rt, boot, "noliveness", 200, -1, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
	CU_ASSERT_EQUAL(kaa_client_start(cur), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_established, 10000));
	CU_ASSERT_FATAL(wait_for(c_four_pings, 10000));
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.liveness_timeouts, 0);
	CU_ASSERT_EQUAL(st.reconnects, 0);
	pthread_mutex_lock(&srv.mu);
	CU_ASSERT_EQUAL(srv.hellos, 1);
	pthread_mutex_unlock(&srv.mu);
	kaa_client_free(cur);
	kaa_runtime_free(rt);
	srv_stop();

	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot), false, PING_PONG, 120000), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	cur = new_client(rt, boot, "nokeepalive", KAA_KEEPALIVE_OFF, LIVENESS_MS, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
	CU_ASSERT_EQUAL(kaa_client_start(cur), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_established, 10000));
	CU_ASSERT_FATAL(srv_freeze());
	usleep(2 * (KEEPALIVE_MS + LIVENESS_MS) * 1000);
	CU_ASSERT_EQUAL(kaa_client_get_state(cur), KAA_STATE_ESTABLISHED);
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT_EQUAL(st.liveness_timeouts, 0);
	pthread_mutex_lock(&srv.mu);
	CU_ASSERT_EQUAL(srv.hellos, 1);
	CU_ASSERT_EQUAL(srv.pings, 0);
	pthread_mutex_unlock(&srv.mu);
	kaa_client_free(cur);
	kaa_runtime_free(rt);
	srv_stop();
}

/* A node that accepts TCP but never completes the WebSocket handshake: each
 * attempt is abandoned after connect_timeout_ms and retried. */
static void test_connect_timeout(void)
{
	kaa_runtime *rt = NULL;
	char boot[64];
	kaa_client_stats st;
	int64_t t0;

	seen_reset();
	CU_ASSERT_EQUAL_FATAL(srv_start(boot, sizeof(boot), true, PING_PONG, 0), 0);
	CU_ASSERT_EQUAL_FATAL(kaa_runtime_new(&rt), KAA_OK);
	cur = new_client(rt, boot, "hole", KEEPALIVE_MS, LIVENESS_MS, 400);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cur);
	t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(kaa_client_start(cur), KAA_OK);
	CU_ASSERT_FATAL(wait_for(c_two_connect_timeouts, 2 * (400 + 200) + SLACK_MS));
	/* two timeouts cannot happen faster than two connect timeouts */
	CU_ASSERT(kaa__now_ms() - t0 >= 2 * 400);
	CU_ASSERT_EQUAL(kaa_client_get_stats(cur, &st), KAA_OK);
	CU_ASSERT(st.connect_timeouts >= 2);
	CU_ASSERT_EQUAL(st.connects, 0);
	CU_ASSERT_NOT_EQUAL(kaa_client_get_state(cur), KAA_STATE_ESTABLISHED);
	kaa_client_free(cur);
	kaa_runtime_free(rt);
	srv_stop();
}

static const kaa__cu_test tests[] = {
	{"a server that stops answering is declared dead", test_dead_server_reconnects},
	{"a quiet healthy server keeps the session", test_quiet_server_kept},
	{"any frame counts as life; no answer at all does not", test_any_frame_counts},
	{"keepalive and liveness switched off", test_disabled},
	{"connect/handshake timeout", test_connect_timeout},
};

int main(void)
{
	lws_set_log_level(0, NULL);
	return kaa__cu_run("sdk liveness", tests, KAA__CU_COUNT(tests), setup, teardown);
}
