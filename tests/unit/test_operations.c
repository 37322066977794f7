/*
 * The operations service's device logic (services/operations): handlers
 * driven with decoded frames against real SQLite metadata and endpoint
 * stores in a temporary directory, with the outgoing frames captured at the
 * transport boundary (kaa__ops_io). The watch and drain paths run on the
 * in-process coordination store.
 */
#include "cu_main.h"
#include "test_util.h"
#include "operations/operations.h"
#include "coord/registry.h"

#include "base/clock.h"
#include "coord/coord.h"
#include "proto/endpoint_codec.h"
#include "proto/hello_proof.h"
#include "store/endpoint_store.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"
#include "store/meta_store.h"
#include "appender/log_appender.h"
#include "http/http_server.h"

#include <CUnit/Basic.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef Kaa__Endpoint__V1__Frame frame_t;
#define BODY(x) KAA__ENDPOINT__V1__FRAME__BODY_##x
#define EC(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x

static char dir[512], sql_url[600], nosql_url[600], appender_dir[600];
static kaa__meta_store *meta;
static int64_t tenant_id;

/* ---- the captured transport ---------------------------------------------------------- */

#define MAX_CAPTURED 4096
#define MAX_SIDS 64

typedef struct captured {
	kaa__session_id sid;
	frame_t *f;
} captured;

static struct {
	pthread_mutex_t mu;
	captured frames[MAX_CAPTURED];
	size_t n;
	bool established[MAX_SIDS], closed[MAX_SIDS];
	int close_code[MAX_SIDS];
	bool accepting;
} io = {.mu = PTHREAD_MUTEX_INITIALIZER, .accepting = true};

static int io_send(void *ud, kaa__session_id sid, const frame_t *f)
{
	(void)ud;
	uint8_t *buf = NULL;
	size_t len = 0;
	frame_t *copy = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__frame_encode(f, &buf, &len), KAA_OK);
	kaa__frame_error e;
	int rc = kaa__frame_decode(buf, len, NULL, &copy, &e);
	if (rc != KAA_OK)
		fprintf(stderr, "server frame does not decode: %s (%s)\n", e.message, e.field);
	CU_ASSERT_EQUAL(rc, KAA_OK);
	free(buf);
	pthread_mutex_lock(&io.mu);
	if (sid < MAX_SIDS && io.closed[sid]) {
		pthread_mutex_unlock(&io.mu);
		kaa__frame_free(copy);
		return KAA_ERR_NOTFOUND;
	}
	if (copy && io.n < MAX_CAPTURED)
		io.frames[io.n++] = (captured){sid, copy};
	else
		kaa__frame_free(copy);
	pthread_mutex_unlock(&io.mu);
	return KAA_OK;
}

static int io_close(void *ud, kaa__session_id sid, int code)
{
	(void)ud;
	pthread_mutex_lock(&io.mu);
	if (sid < MAX_SIDS) {
		io.closed[sid] = true;
		io.close_code[sid] = code;
	}
	pthread_mutex_unlock(&io.mu);
	return KAA_OK;
}

static void io_established(void *ud, kaa__session_id sid)
{
	(void)ud;
	pthread_mutex_lock(&io.mu);
	if (sid < MAX_SIDS)
		io.established[sid] = true;
	pthread_mutex_unlock(&io.mu);
}

static void io_set_accepting(void *ud, bool on)
{
	(void)ud;
	pthread_mutex_lock(&io.mu);
	io.accepting = on;
	pthread_mutex_unlock(&io.mu);
}

static size_t io_sessions(void *ud)
{
	(void)ud;
	size_t n = 0;
	pthread_mutex_lock(&io.mu);
	for (size_t i = 0; i < MAX_SIDS; i++)
		n += io.established[i] && !io.closed[i];
	pthread_mutex_unlock(&io.mu);
	return n;
}

/* The nonce the test transport challenged session sid with. */
static const uint8_t io_secret[KAA__PROOF_SECRET_BYTES] = {0x6b, 0x61, 0x61};
static int io_nonce(void *ud, kaa__session_id sid, uint8_t out[32])
{
	(void)ud;
	return kaa__proof_nonce(io_secret, sid, out);
}

/* mTLS: the key hash of the client certificate the test transport
 * reports for every session (unset: no mTLS). */
static uint8_t io_cert_key[32];
static bool io_cert_set;
static int io_client_key(void *ud, kaa__session_id sid, uint8_t out[32])
{
	(void)ud;
	(void)sid;
	if (!io_cert_set)
		return KAA_ERR_NOTFOUND;
	memcpy(out, io_cert_key, 32);
	return KAA_OK;
}

static const kaa__ops_io test_io = {
	.send = io_send,
	.close = io_close,
	.established = io_established,
	.set_accepting = io_set_accepting,
	.sessions = io_sessions,
	.nonce = io_nonce,
	.client_key = io_client_key,
};

static void io_reset(void)
{
	pthread_mutex_lock(&io.mu);
	for (size_t i = 0; i < io.n; i++)
		kaa__frame_free(io.frames[i].f);
	io.n = 0;
	memset(io.established, 0, sizeof(io.established));
	memset(io.closed, 0, sizeof(io.closed));
	io.accepting = true;
	pthread_mutex_unlock(&io.mu);
}

static void io_clear_sid(kaa__session_id sid)
{
	pthread_mutex_lock(&io.mu);
	size_t o = 0;
	for (size_t i = 0; i < io.n; i++) {
		if (io.frames[i].sid == sid)
			kaa__frame_free(io.frames[i].f);
		else
			io.frames[o++] = io.frames[i];
	}
	io.n = o;
	pthread_mutex_unlock(&io.mu);
}

/* The k-th (0-based) captured frame of a kind for sid, or NULL. The frame
 * stays owned by the capture. */
static const frame_t *nth(kaa__session_id sid, int body, size_t k)
{
	const frame_t *r = NULL;
	pthread_mutex_lock(&io.mu);
	for (size_t i = 0; i < io.n && !r; i++)
		if (io.frames[i].sid == sid && (int)io.frames[i].f->body_case == body && k-- == 0)
			r = io.frames[i].f;
	pthread_mutex_unlock(&io.mu);
	return r;
}

static size_t count(kaa__session_id sid, int body)
{
	size_t n = 0;
	pthread_mutex_lock(&io.mu);
	for (size_t i = 0; i < io.n; i++)
		n += io.frames[i].sid == sid && (int)io.frames[i].f->body_case == body;
	pthread_mutex_unlock(&io.mu);
	return n;
}

static bool is_closed(kaa__session_id sid)
{
	pthread_mutex_lock(&io.mu);
	bool c = io.closed[sid];
	pthread_mutex_unlock(&io.mu);
	return c;
}

/* Polls cond until it holds or timeout_ms passed. */
#define WAIT_FOR(cond, timeout_ms)                                               \
	({                                                                       \
		int64_t until_ = kaa__wall_ms() + (timeout_ms);                  \
		bool ok_;                                                        \
		while (!(ok_ = (cond)) && kaa__wall_ms() < until_) {             \
			struct timespec ts_ = {.tv_sec = 0, .tv_nsec = 5000000}; \
			nanosleep(&ts_, NULL);                                   \
		}                                                                \
		ok_;                                                             \
	})

/* ---- frames from the device ------------------------------------------------------------ */

static kaa__operations *ops;

static void deliver(kaa__session_id sid, frame_t *f)
{
	f->protocol_version = 1;
	kaa__operations_on_frame(ops, sid, f);
}

static void send_hello(kaa__session_id sid, uint64_t req, const char *token, const char *key,
		       const char *profile)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	h.application_token = (char *)token;
	h.public_key.data = (uint8_t *)key;
	h.public_key.len = strlen(key);
	if (profile)
		h.client_profile_json = (char *)profile;
	f.request_id = req;
	f.body_case = BODY(HELLO);
	f.hello = &h;
	deliver(sid, &f);
}

/* A kaa.v2 Hello on sid with key's DER public key, proven by signer
 * (NULL: no proof) over the nonce of session nonce_sid (sid: the honest
 * case; another: a replay). */
static void send_hello_proof(kaa__session_id sid, const char *token, EVP_PKEY *key,
			     EVP_PKEY *signer, kaa__session_id nonce_sid)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	uint8_t pub[256], *pp = pub, nonce[32], sig[KAA__PROOF_SIG_MAX];
	size_t sl = 0;
	int pl = i2d_PUBKEY(key, &pp);
	CU_ASSERT_FATAL(pl > 0);
	h.application_token = (char *)token;
	h.public_key.data = pub;
	h.public_key.len = (size_t)pl;
	if (signer) {
		CU_ASSERT_EQUAL_FATAL(io_nonce(NULL, nonce_sid, nonce), KAA_OK);
		CU_ASSERT_EQUAL_FATAL(kaa__proof_sign(signer, nonce, pub, (size_t)pl, token, sig,
						      sizeof(sig), &sl),
				      KAA_OK);
		h.proof.data = sig;
		h.proof.len = sl;
	}
	f.request_id = 1;
	f.body_case = BODY(HELLO);
	f.hello = &h;
	deliver(sid, &f);
}

static void b64url(const uint8_t *in, size_t len, char *out);

/* The endpoint key hash of key's DER public key. */
static void key_hash_of(EVP_PKEY *key, char out[48])
{
	uint8_t pub[256], *pp = pub, d[SHA256_DIGEST_LENGTH];
	int pl = i2d_PUBKEY(key, &pp);
	CU_ASSERT_FATAL(pl > 0);
	SHA256(pub, (size_t)pl, d);
	b64url(d, sizeof(d), out);
}

static void send_ping(kaa__session_id sid, uint64_t req, const char *payload)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ping p = KAA__ENDPOINT__V1__PING__INIT;
	p.payload.data = (uint8_t *)payload;
	p.payload.len = strlen(payload);
	f.request_id = req;
	f.body_case = BODY(PING);
	f.ping = &p;
	deliver(sid, &f);
}

static void send_ack(kaa__session_id sid, uint64_t req)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;
	f.request_id = req;
	f.body_case = BODY(ACK);
	f.ack = &a;
	deliver(sid, &f);
}

static void send_profile(kaa__session_id sid, uint64_t req, const char *json)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ProfileUpdate p = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;
	p.client_profile_json = (char *)json;
	f.request_id = req;
	f.body_case = BODY(PROFILE_UPDATE);
	f.profile_update = &p;
	deliver(sid, &f);
}

static void send_sync(kaa__session_id sid, uint64_t req, const char *hash)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__ConfigSyncRequest r = KAA__ENDPOINT__V1__CONFIG_SYNC_REQUEST__INIT;
	r.config_hash = (char *)hash;
	f.request_id = req;
	f.body_case = BODY(CONFIG_SYNC_REQUEST);
	f.config_sync_request = &r;
	deliver(sid, &f);
}

static void send_notif_ack(kaa__session_id sid, const char *topic, uint64_t seq)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__NotificationAck a = KAA__ENDPOINT__V1__NOTIFICATION_ACK__INIT;
	a.topic_id = (char *)topic;
	a.seq = seq;
	f.body_case = BODY(NOTIFICATION_ACK);
	f.notification_ack = &a;
	deliver(sid, &f);
}

static void send_subscribe(kaa__session_id sid, uint64_t req, const char *topic, bool sub)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Subscribe s = KAA__ENDPOINT__V1__SUBSCRIBE__INIT;
	Kaa__Endpoint__V1__Unsubscribe u = KAA__ENDPOINT__V1__UNSUBSCRIBE__INIT;
	f.request_id = req;
	if (sub) {
		s.topic_id = (char *)topic;
		f.body_case = BODY(SUBSCRIBE);
		f.subscribe = &s;
	} else {
		u.topic_id = (char *)topic;
		f.body_case = BODY(UNSUBSCRIBE);
		f.unsubscribe = &u;
	}
	deliver(sid, &f);
}

static void send_logs(kaa__session_id sid, uint64_t req, uint64_t batch, const char **recs,
		      size_t n)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__LogUpload l = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
	l.batch_id = batch;
	l.records_json = (char **)recs;
	l.n_records_json = n;
	f.request_id = req;
	f.body_case = BODY(LOG_UPLOAD);
	f.log_upload = &l;
	deliver(sid, &f);
}

static void close_session(kaa__session_id sid)
{
	io_close(NULL, sid, 1000);
	kaa__operations_on_close(ops, sid);
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static int64_t mk(kaa__meta_obj *in)
{
	kaa__meta_obj out = {0};
	int rc = kaa__meta_create(meta, in, &out, NULL);
	if (rc != KAA_OK)
		fprintf(stderr, "create %s: %s\n", kaa__meta_kind_name(in->kind), kaa_strerror(rc));
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	int64_t id = out.id;
	kaa__meta_obj_clear(&out);
	return id;
}

typedef struct app_fx {
	int64_t id, g_all, g_pro, t_alerts, t_news, t_pro;
	char token[64];
} app_fx;

static const char *PROFILE_SCHEMA =
	"{\"type\":\"record\",\"name\":\"P\",\"fields\":[{\"name\":\"model\",\"type\":\"string\"},"
	"{\"name\":\"fw\",\"type\":\"int\",\"default\":1}]}";
static const char *LOG_SCHEMA =
	"{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"t\",\"type\":\"double\"}]}";
static const char *CONFIG_SCHEMA =
	"{\"type\":\"record\",\"name\":\"C\",\"fields\":[{\"name\":\"rate\",\"type\":\"int\"},"
	"{\"name\":\"mode\",\"type\":\"string\",\"default\":\"a\"}]}";

static app_fx make_app(const char *name, const char *mode)
{
	app_fx a = {0};
	kaa__meta_obj o = {.kind = KAA_META_APPLICATION, .tenant_id = tenant_id};
	o.name = (char *)name;
	o.credentials_mode = (char *)mode;
	kaa__meta_obj out = {0};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(meta, &o, &out, NULL), KAA_OK);
	a.id = out.id;
	snprintf(a.token, sizeof(a.token), "%s", out.app_token);
	kaa__meta_obj_clear(&out);
	const char *kinds[] = {"profile-client", "log", "configuration"};
	const char *bodies[] = {PROFILE_SCHEMA, LOG_SCHEMA, CONFIG_SCHEMA};
	for (int i = 0; i < 3; i++) {
		kaa__meta_obj s = {.kind = KAA_META_SCHEMA, .app_id = a.id};
		s.schema_kind = (char *)kinds[i];
		s.name = (char *)kinds[i];
		s.body = (char *)bodies[i];
		mk(&s);
	}
	kaa__meta_obj g = {.kind = KAA_META_GROUP, .app_id = a.id, .weight = 0};
	g.name = "all";
	g.body = "{}";
	a.g_all = mk(&g);
	g.name = "pro";
	g.weight = 10;
	g.body = "{\"cp.model\":\"pro\"}";
	a.g_pro = mk(&g);
	kaa__meta_obj c = {
		.kind = KAA_META_CONFIGURATION, .group_id = a.g_all, .schema_version = 1};
	c.body = "{\"rate\":1,\"mode\":\"a\"}";
	mk(&c);
	c.group_id = a.g_pro;
	c.body = "{\"rate\":5}";
	mk(&c);
	kaa__meta_obj t = {.kind = KAA_META_TOPIC, .app_id = a.id, .mandatory = true};
	t.name = "alerts";
	a.t_alerts = mk(&t);
	t.name = "news";
	t.mandatory = false;
	a.t_news = mk(&t);
	t.name = "pro-only";
	t.group_ids = &a.g_pro;
	t.n_group_ids = 1;
	a.t_pro = mk(&t);
	return a;
}

static int64_t notify(int64_t topic, const char *ekh, const char *body)
{
	kaa__meta_obj n = {.kind = KAA_META_NOTIFICATION, .topic_id = topic};
	n.endpoint_key_hash = (char *)ekh;
	n.body = (char *)body;
	return mk(&n);
}

static void b64url(const uint8_t *in, size_t len, char *out)
{
	unsigned char b[512];
	EVP_EncodeBlock(b, in, (int)len);
	size_t j = 0;
	for (size_t i = 0; b[i] && b[i] != '='; i++)
		out[j++] = b[i] == '+' ? '-' : b[i] == '/' ? '_' : (char)b[i];
	out[j] = '\0';
}

/* The endpoint key hash the server derives: base64url(SHA-256(key)). */
static void expected_hash(const char *key, char out[48])
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)key, strlen(key), d);
	b64url(d, sizeof(d), out);
}

static kaa__operations *start_ops(kaa__coord *coord, const char *node)
{
	kaa__operations_opts o = {
		.node_id = node,
		.cluster = "c",
		.sql_url = sql_url,
		.nosql_url = nosql_url,
		.coord = coord,
		.appender_dir = appender_dir,
		.drain_timeout_ms = 3000,
		.io = &test_io,
	};
	kaa__operations *p = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__operations_new(&o, &p), KAA_OK);
	return p;
}

/* Hello + first follow-up frame (the ConfigPush Ack, which also releases the
 * catch-up); returns the HelloAck. */
static const frame_t *connect_dev(kaa__session_id sid, const char *token, const char *key)
{
	send_hello(sid, 1, token, key, NULL);
	const frame_t *ack = nth(sid, BODY(HELLO_ACK), 0);
	CU_ASSERT_PTR_NOT_NULL(ack);
	const frame_t *push = nth(sid, BODY(CONFIG_PUSH), 0);
	if (push)
		send_ack(sid, push->request_id);
	return ack;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_registration(void)
{
	app_fx a = make_app("reg", "trustful");
	char kh[48];
	ops = start_ops(NULL, "node-a");

	/* unknown token: fatal UNAUTHENTICATED, closed with 1008 */
	send_hello(1, 5, "no-such-token", "key-1", NULL);
	const frame_t *e = nth(1, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(UNAUTHENTICATED));
	CU_ASSERT_TRUE(e->error->fatal);
	CU_ASSERT_EQUAL(e->request_id, 5);
	CU_ASSERT_TRUE(is_closed(1));
	CU_ASSERT_EQUAL(io.close_code[1], 1008);
	close_session(1);

	/* before Hello: only Ping */
	send_profile(2, 3, "{\"model\":\"x\"}");
	e = nth(2, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(BAD_STATE));
	CU_ASSERT_FALSE(e->error->fatal);
	send_ping(2, 4, "hi");
	const frame_t *p = nth(2, BODY(PONG), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->request_id, 4);
	CU_ASSERT_EQUAL(p->pong->payload.len, 2);
	CU_ASSERT_EQUAL(memcmp(p->pong->payload.data, "hi", 2), 0);

	/* a Hello registers the endpoint */
	send_hello(2, 7, a.token, "key-1", "{\"model\":\"basic\"}");
	const frame_t *ha = nth(2, BODY(HELLO_ACK), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ha);
	expected_hash("key-1", kh);
	CU_ASSERT_STRING_EQUAL(ha->hello_ack->endpoint_key_hash, kh);
	CU_ASSERT_EQUAL(strlen(kh), 43);
	CU_ASSERT_EQUAL(ha->request_id, 7);
	CU_ASSERT_TRUE(ha->hello_ack->registered);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ha->hello_ack->limits);
	CU_ASSERT_EQUAL(ha->hello_ack->limits->max_frame_bytes, 65536);
	CU_ASSERT_TRUE(io.established[2]);
	CU_ASSERT_EQUAL(kaa__operations_sessions(ops), 1);
	/* then the topic list (mandatory alerts subscribed, news not, pro-only
	 * hidden) and the configuration */
	const frame_t *tl = nth(2, BODY(NOTIFICATION_TOPICS), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
	CU_ASSERT_EQUAL(tl->notification_topics->n_topics, 2);
	if (tl->notification_topics->n_topics == 2) {
		CU_ASSERT_STRING_EQUAL(tl->notification_topics->topics[0]->name, "alerts");
		CU_ASSERT_TRUE(tl->notification_topics->topics[0]->subscribed);
		CU_ASSERT_TRUE(tl->notification_topics->topics[0]->mandatory);
		CU_ASSERT_STRING_EQUAL(tl->notification_topics->topics[1]->name, "news");
		CU_ASSERT_FALSE(tl->notification_topics->topics[1]->subscribed);
	}
	const frame_t *cp = nth(2, BODY(CONFIG_PUSH), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cp);
	CU_ASSERT_EQUAL_FATAL(cp->config_push->result_case,
			      KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_FULL);
	CU_ASSERT_STRING_EQUAL(cp->config_push->full->json, "{\"mode\":\"a\",\"rate\":1}");
	char h1[KAA_SHA256_HEX_SIZE];
	kaa__json_sha256_hex("{\"mode\":\"a\",\"rate\":1}", 21, h1);
	CU_ASSERT_STRING_EQUAL(cp->config_push->full->hash, h1);
	CU_ASSERT_NOT_EQUAL(cp->request_id, 0);

	/* a second Hello in the session */
	send_hello(2, 8, a.token, "key-1", NULL);
	e = nth(2, BODY(ERROR), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(BAD_STATE));
	CU_ASSERT_EQUAL(e->request_id, 8);

	/* the record: node, groups, completed profile */
	kaa__ep_store *eps = NULL;
	kaa__endpoint ep = {0};
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(nosql_url, &eps), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(eps, a.id, kh, &ep), KAA_OK);
	CU_ASSERT_STRING_EQUAL(ep.node_id, "node-a");
	char groups[64];
	snprintf(groups, sizeof(groups), "[%" PRId64 "]", a.g_all);
	CU_ASSERT_STRING_EQUAL(ep.groups, groups);
	CU_ASSERT_STRING_EQUAL(ep.client_profile, "{\"fw\":1,\"model\":\"basic\"}");
	CU_ASSERT_EQUAL(ep.client_profile_version, 1);
	kaa__endpoint_clear(&ep);

	/* the same key again on a new session: existing; the old one is closed */
	send_hello(3, 1, a.token, "key-1", NULL);
	ha = nth(3, BODY(HELLO_ACK), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ha);
	CU_ASSERT_FALSE(ha->hello_ack->registered);
	CU_ASSERT_TRUE(is_closed(2));
	/* a frame the replaced session still had queued changes nothing */
	send_profile(2, 51, "{\"model\":\"replaced\"}");
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(eps, a.id, kh, &ep), KAA_OK);
	CU_ASSERT_STRING_EQUAL(ep.client_profile, "{\"fw\":1,\"model\":\"basic\"}");
	kaa__endpoint_clear(&ep);
	close_session(2);
	/* the old session's close does not clear the new session's node */
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(eps, a.id, kh, &ep), KAA_OK);
	CU_ASSERT_STRING_EQUAL(ep.node_id, "node-a");
	kaa__endpoint_clear(&ep);
	close_session(3);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(eps, a.id, kh, &ep), KAA_OK);
	CU_ASSERT_PTR_NULL(ep.node_id);
	kaa__endpoint_clear(&ep);
	kaa__ep_store_free(eps);

	/* kinds a device may not send, and an empty body */
	send_hello(4, 1, a.token, "key-2", NULL);
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__HelloAck bogus = KAA__ENDPOINT__V1__HELLO_ACK__INIT;
	f.request_id = 9;
	f.body_case = BODY(HELLO_ACK);
	f.hello_ack = &bogus;
	deliver(4, &f);
	e = nth(4, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(UNSUPPORTED_MESSAGE));
	CU_ASSERT_FALSE(is_closed(4));
	close_session(4);

	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

static void expect_fatal(kaa__session_id sid, int code)
{
	const frame_t *e = nth(sid, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, code);
	CU_ASSERT_TRUE(e->error->fatal);
	CU_ASSERT_PTR_NULL(nth(sid, BODY(HELLO_ACK), 0));
	CU_ASSERT_TRUE(is_closed(sid));
	close_session(sid);
}

static void test_provisioned(void)
{
	app_fx a = make_app("prov", "provisioned");
	EVP_PKEY *good = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	char kh[48];
	CU_ASSERT_PTR_NOT_NULL_FATAL(good);
	CU_ASSERT_PTR_NOT_NULL_FATAL(other);
	ops = start_ops(NULL, "node-a");

	/* a proven key without a credential */
	send_hello_proof(1, a.token, other, other, 1);
	expect_fatal(1, EC(FORBIDDEN));

	key_hash_of(good, kh);
	uint8_t der[256], *dp = der;
	char pub64[400];
	EVP_EncodeBlock((unsigned char *)pub64, der, i2d_PUBKEY(good, &dp));
	kaa__meta_obj c = {.kind = KAA_META_CREDENTIAL, .app_id = a.id};
	c.endpoint_key_hash = kh;
	c.public_key = pub64;
	int64_t cred = mk(&c);
	/* whoever read the public key cannot connect as the device: no proof
	 * (a kaa.v1 device), a proof by another key, a proof replayed from
	 * another session, and a proof with a flipped bit are all refused */
	send_hello_proof(2, a.token, good, NULL, 0);
	expect_fatal(2, EC(INVALID_PROOF));
	send_hello_proof(3, a.token, good, other, 3);
	expect_fatal(3, EC(INVALID_PROOF));
	send_hello_proof(4, a.token, good, good, 40);
	expect_fatal(4, EC(INVALID_PROOF));
	send_hello(5, 1, a.token, "not a DER key", NULL);
	expect_fatal(5, EC(INVALID_PROOF));
	/* the device itself */
	send_hello_proof(6, a.token, good, good, 6);
	CU_ASSERT_PTR_NOT_NULL(nth(6, BODY(HELLO_ACK), 0));
	CU_ASSERT_EQUAL(count(6, BODY(ERROR)), 0);
	close_session(6);

	kaa__meta_obj u = {.kind = KAA_META_CREDENTIAL, .id = cred};
	u.status = "revoked";
	CU_ASSERT_EQUAL_FATAL(kaa__meta_update(meta, &u, NULL, NULL), KAA_OK);
	send_hello_proof(7, a.token, good, good, 7);
	expect_fatal(7, EC(REVOKED));

	kaa__operations_free(ops);
	ops = NULL;
	io_reset();

	/* mTLS: the handshake proved the certificate's key; a Hello with that
	 * key needs no Challenge proof (even provisioned), one with another
	 * key is refused */
	ops = start_ops(NULL, "node-a");
	kaa__meta_obj u2 = {.kind = KAA_META_CREDENTIAL, .id = cred};
	u2.status = "provisioned";
	CU_ASSERT_EQUAL_FATAL(kaa__meta_update(meta, &u2, NULL, NULL), KAA_OK);
	uint8_t der2[256], *dp2 = der2;
	int dl2 = i2d_PUBKEY(good, &dp2);
	SHA256(der2, (size_t)dl2, io_cert_key);
	io_cert_set = true;
	send_hello_proof(8, a.token, good, NULL, 0);
	CU_ASSERT_PTR_NOT_NULL(nth(8, BODY(HELLO_ACK), 0));
	close_session(8);
	send_hello_proof(9, a.token, other, other, 9); /* a valid proof, but not the cert's key */
	expect_fatal(9, EC(INVALID_PROOF));
	io_cert_set = false;
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();

	/* --hello-proof always: trustful applications too; a proven device
	 * is accepted, an unproven one refused */
	app_fx t = make_app("trust-proof", "trustful");
	kaa__operations_opts o = {.node_id = "node-a",
				  .cluster = "c",
				  .sql_url = sql_url,
				  .nosql_url = nosql_url,
				  .appender_dir = appender_dir,
				  .io = &test_io,
				  .proof_always = true};
	CU_ASSERT_EQUAL_FATAL(kaa__operations_new(&o, &ops), KAA_OK);
	send_hello(1, 1, t.token, "opaque-key", NULL);
	expect_fatal(1, EC(INVALID_PROOF));
	send_hello_proof(2, t.token, other, other, 2);
	CU_ASSERT_PTR_NOT_NULL(nth(2, BODY(HELLO_ACK), 0));
	close_session(2);
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
	EVP_PKEY_free(good);
	EVP_PKEY_free(other);
}

static void test_profile_and_config(void)
{
	app_fx a = make_app("cfg", "trustful");
	ops = start_ops(NULL, "node-a");

	/* an invalid profile in Hello: established without it, INVALID_PROFILE */
	send_hello(1, 1, a.token, "key-p", "{\"model\":42}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(nth(1, BODY(HELLO_ACK), 0));
	const frame_t *e = nth(1, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(INVALID_PROFILE));
	CU_ASSERT_FALSE(e->error->fatal);
	CU_ASSERT_STRING_EQUAL(e->error->json_path, "$.model");
	const frame_t *push = nth(1, BODY(CONFIG_PUSH), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(push);
	char h1[KAA_SHA256_HEX_SIZE];
	snprintf(h1, sizeof(h1), "%s", push->config_push->full->hash);
	send_ack(1, push->request_id);

	/* a ProfileUpdate not matching the schema: the previous one stays */
	send_profile(1, 10, "{\"model\":\"pro\",\"extra\":1}");
	e = nth(1, BODY(ERROR), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(INVALID_PROFILE));
	CU_ASSERT_EQUAL(e->request_id, 10);
	CU_ASSERT_EQUAL(count(1, BODY(CONFIG_PUSH)), 1);

	/* a valid one moves the device into "pro": Ack, new topic list, and
	 * a merge patch from the acknowledged document */
	send_profile(1, 11, "{\"model\":\"pro\"}");
	const frame_t *ack = nth(1, BODY(ACK), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ack);
	CU_ASSERT_EQUAL(ack->request_id, 11);
	CU_ASSERT_EQUAL(count(1, BODY(NOTIFICATION_TOPICS)), 2);
	const frame_t *tl = nth(1, BODY(NOTIFICATION_TOPICS), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
	CU_ASSERT_EQUAL(tl->notification_topics->n_topics, 3);
	push = nth(1, BODY(CONFIG_PUSH), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(push);
	CU_ASSERT_EQUAL_FATAL(push->config_push->result_case,
			      KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_PATCH);
	CU_ASSERT_STRING_EQUAL(push->config_push->patch->patch_json, "{\"rate\":5}");
	CU_ASSERT_STRING_EQUAL(push->config_push->patch->base_hash, h1);
	char h2[KAA_SHA256_HEX_SIZE];
	kaa__json_sha256_hex("{\"mode\":\"a\",\"rate\":5}", 21, h2);
	CU_ASSERT_STRING_EQUAL(push->config_push->patch->new_hash, h2);
	send_ack(1, push->request_id);

	/* sync: up to date, full on "", full on an unknown hash */
	send_sync(1, 20, h2);
	const frame_t *r = nth(1, BODY(CONFIG_SYNC_RESPONSE), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->request_id, 20);
	CU_ASSERT_EQUAL(r->config_sync_response->result_case,
			KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_UP_TO_DATE);
	send_sync(1, 21, "");
	r = nth(1, BODY(CONFIG_SYNC_RESPONSE), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL_FATAL(r->config_sync_response->result_case,
			      KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_FULL);
	CU_ASSERT_STRING_EQUAL(r->config_sync_response->full->json, "{\"mode\":\"a\",\"rate\":5}");
	send_sync(1, 22, "0000");
	r = nth(1, BODY(CONFIG_SYNC_RESPONSE), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->config_sync_response->result_case,
			KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_FULL);

	/* a configuration change in control, then the refresh: a patch */
	kaa__meta_page pg = {0};
	kaa__meta_query q = {.parent_id = a.id, .ref_id = a.g_pro};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_list(meta, KAA_META_CONFIGURATION, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(pg.n, 1);
	kaa__meta_obj u = {.kind = KAA_META_CONFIGURATION, .id = pg.items[0].id};
	u.body = "{\"rate\":7,\"mode\":\"z\"}";
	CU_ASSERT_EQUAL_FATAL(kaa__meta_update(meta, &u, NULL, NULL), KAA_OK);
	kaa__meta_page_clear(&pg);
	CU_ASSERT_EQUAL(kaa__operations_refresh_app(ops, a.id), KAA_OK);
	push = nth(1, BODY(CONFIG_PUSH), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(push);
	CU_ASSERT_EQUAL_FATAL(push->config_push->result_case,
			      KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_PATCH);
	CU_ASSERT_STRING_EQUAL(push->config_push->patch->patch_json, "{\"mode\":\"z\",\"rate\":7}");
	CU_ASSERT_STRING_EQUAL(push->config_push->patch->base_hash, h2);
	/* an unrelated refresh sends nothing new */
	CU_ASSERT_EQUAL(kaa__operations_refresh_app(ops, a.id), KAA_OK);
	CU_ASSERT_EQUAL(count(1, BODY(CONFIG_PUSH)), 3);
	CU_ASSERT_EQUAL(count(1, BODY(NOTIFICATION_TOPICS)), 2);
	close_session(1);

	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

static bool has_notif(kaa__session_id sid, const char *topic, uint64_t seq)
{
	bool found = false;
	pthread_mutex_lock(&io.mu);
	for (size_t i = 0; i < io.n && !found; i++) {
		const frame_t *f = io.frames[i].f;
		found = io.frames[i].sid == sid && f->body_case == BODY(NOTIFICATION) &&
			strcmp(f->notification->topic_id, topic) == 0 &&
			f->notification->seq == seq;
	}
	pthread_mutex_unlock(&io.mu);
	return found;
}

static void test_notifications(void)
{
	app_fx a = make_app("notif", "trustful");
	char kh[48], alerts[24], news[24];
	expected_hash("key-n", kh);
	snprintf(alerts, sizeof(alerts), "%" PRId64, a.t_alerts);
	snprintf(news, sizeof(news), "%" PRId64, a.t_news);
	ops = start_ops(NULL, "node-a");

	connect_dev(1, a.token, "key-n");
	CU_ASSERT_EQUAL(count(1, BODY(NOTIFICATION)), 0);
	notify(a.t_alerts, NULL, "{\"n\":1}");
	notify(a.t_alerts, NULL, "{\"n\":2}");
	notify(a.t_news, NULL, "{\"n\":3}");
	int64_t uni = notify(a.t_news, kh, "{\"n\":4}");
	notify(a.t_alerts, "someone-else", "{\"n\":5}");
	CU_ASSERT_EQUAL(kaa__operations_refresh_app(ops, a.id), KAA_OK);
	/* multicast on the mandatory topic in order, the unicast one on "" */
	CU_ASSERT_EQUAL(count(1, BODY(NOTIFICATION)), 3);
	const frame_t *n0 = nth(1, BODY(NOTIFICATION), 0), *n1 = nth(1, BODY(NOTIFICATION), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n1);
	CU_ASSERT_STRING_EQUAL(n0->notification->topic_id, alerts);
	CU_ASSERT_EQUAL(n0->notification->seq, 1);
	CU_ASSERT_STRING_EQUAL(n0->notification->body_json, "{\"n\":1}");
	CU_ASSERT(n0->notification->expires_at_ms > (uint64_t)kaa__wall_ms());
	CU_ASSERT_EQUAL(n1->notification->seq, 2);
	CU_ASSERT_TRUE(has_notif(1, "", (uint64_t)uni));
	/* a refresh does not send them again in the session */
	CU_ASSERT_EQUAL(kaa__operations_refresh_app(ops, a.id), KAA_OK);
	CU_ASSERT_EQUAL(count(1, BODY(NOTIFICATION)), 3);
	/* acknowledge 1 (not 2) and the unicast one, then reconnect */
	send_notif_ack(1, alerts, 1);
	send_notif_ack(1, "", (uint64_t)uni);
	close_session(1);
	io_clear_sid(2);
	connect_dev(2, a.token, "key-n");
	CU_ASSERT_EQUAL(count(2, BODY(NOTIFICATION)), 1);
	CU_ASSERT_TRUE(has_notif(2, alerts, 2));
	send_notif_ack(2, alerts, 2);
	close_session(2);
	/* everything acknowledged: nothing on the next session */
	connect_dev(3, a.token, "key-n");
	CU_ASSERT_EQUAL(count(3, BODY(NOTIFICATION)), 0);

	/* optional topics: subscribe gets the stored one; mandatory cannot be
	 * unsubscribed; unknown and hidden topics are not found */
	send_subscribe(3, 40, news, true);
	const frame_t *ack = nth(3, BODY(ACK), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ack);
	CU_ASSERT_EQUAL(ack->request_id, 40);
	CU_ASSERT_TRUE(has_notif(3, news, 1));
	CU_ASSERT_EQUAL(count(3, BODY(NOTIFICATION_TOPICS)), 2);
	send_subscribe(3, 41, alerts, false);
	const frame_t *e = nth(3, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(FORBIDDEN));
	CU_ASSERT_EQUAL(e->request_id, 41);
	send_subscribe(3, 42, "999999", true);
	e = nth(3, BODY(ERROR), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(NOT_FOUND));
	char pro[24];
	snprintf(pro, sizeof(pro), "%" PRId64, a.t_pro);
	send_subscribe(3, 43, pro, true);
	e = nth(3, BODY(ERROR), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(NOT_FOUND));
	/* the news notification was never acknowledged: SessionResume with
	 * its position on the next session acknowledges it */
	close_session(3);
	send_hello(4, 1, a.token, "key-n", NULL);
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__SessionResume sr = KAA__ENDPOINT__V1__SESSION_RESUME__INIT;
	Kaa__Endpoint__V1__TopicPosition tp = KAA__ENDPOINT__V1__TOPIC_POSITION__INIT;
	Kaa__Endpoint__V1__TopicPosition *tpp = &tp;
	tp.topic_id = news;
	tp.last_seq = 1;
	sr.session_id = "node-a.3";
	sr.positions = &tpp;
	sr.n_positions = 1;
	f.request_id = 2;
	f.body_case = BODY(SESSION_RESUME);
	f.session_resume = &sr;
	deliver(4, &f);
	ack = nth(4, BODY(ACK), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ack);
	CU_ASSERT_EQUAL(ack->request_id, 2);
	CU_ASSERT_EQUAL(count(4, BODY(NOTIFICATION)), 0);
	/* the subscription survived the reconnect */
	const frame_t *tl = nth(4, BODY(NOTIFICATION_TOPICS), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(tl);
	CU_ASSERT_TRUE(tl->notification_topics->n_topics == 2 &&
		       tl->notification_topics->topics[1]->subscribed);
	/* a new one arrives live and only once */
	notify(a.t_news, NULL, "{\"n\":6}");
	CU_ASSERT_EQUAL(kaa__operations_refresh_app(ops, a.id), KAA_OK);
	/* (seq 2 on news is the unicast one: a gap for this stream) */
	CU_ASSERT_TRUE(has_notif(4, news, 3));
	CU_ASSERT_EQUAL(count(4, BODY(NOTIFICATION)), 1);
	close_session(4);

	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

/* A device that says nothing after Hello still gets its stored
 * notifications (the delayed catch-up on the background thread), but not
 * before that delay has given a SessionResume its chance. */
static void test_catch_up_timer(void)
{
	app_fx a = make_app("timer", "trustful");
	notify(a.t_alerts, NULL, "{\"n\":1}");
	ops = start_ops(NULL, "node-t");
	int64_t t0 = kaa__wall_ms();
	send_hello(1, 1, a.token, "key-t", NULL);
	CU_ASSERT_PTR_NOT_NULL(nth(1, BODY(HELLO_ACK), 0));
	CU_ASSERT_EQUAL(count(1, BODY(NOTIFICATION)), 0);
	CU_ASSERT_TRUE(WAIT_FOR(count(1, BODY(NOTIFICATION)) == 1, 5000));
	CU_ASSERT(kaa__wall_ms() - t0 >= 900);
	close_session(1);
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

static int count_lines(const char *path)
{
	FILE *fp = fopen(path, "r");
	int n = 0, c;
	if (!fp)
		return -1;
	while ((c = fgetc(fp)) != EOF)
		n += c == '\n';
	fclose(fp);
	return n;
}

static void test_logs(void)
{
	app_fx a = make_app("logs", "trustful");
	char kh[48];
	expected_hash("key-l", kh);
	ops = start_ops(NULL, "node-a");
	kaa__ep_store *eps = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(nosql_url, &eps), KAA_OK);

	connect_dev(1, a.token, "key-l");
	const char *good[] = {"{\"t\":1.5}", "{\"t\":2}"};
	send_logs(1, 30, 5001, good, 2);
	const frame_t *st = nth(1, BODY(LOG_DELIVERY_STATUS), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(st->request_id, 30);
	CU_ASSERT_EQUAL(st->log_delivery_status->batch_id, 5001);
	CU_ASSERT_EQUAL(st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS);
	int64_t n = -1;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(eps, a.id, kh, &n), KAA_OK);
	CU_ASSERT_EQUAL(n, 2);
	/* the same batch after a lost status: acknowledged, stored once */
	send_logs(1, 31, 5001, good, 2);
	st = nth(1, BODY(LOG_DELIVERY_STATUS), 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(eps, a.id, kh, &n), KAA_OK);
	CU_ASSERT_EQUAL(n, 2);
	/* a record not matching the log schema: nothing stored */
	const char *bad[] = {"{\"t\":1}", "{\"t\":\"x\"}"};
	send_logs(1, 32, 5002, bad, 2);
	st = nth(1, BODY(LOG_DELIVERY_STATUS), 2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_FAILURE);
	CU_ASSERT_FALSE(st->log_delivery_status->retryable);
	CU_ASSERT_EQUAL(st->log_delivery_status->code, EC(INVALID_LOG_RECORD));
	CU_ASSERT_EQUAL(st->log_delivery_status->index, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(st->log_delivery_status->reason, "$.t"));
	CU_ASSERT_EQUAL(kaa__ep_logs_count(eps, a.id, kh, &n), KAA_OK);
	CU_ASSERT_EQUAL(n, 2);

	/* with a file appender and an endpoint-store appender: both written */
	kaa__meta_obj la = {.kind = KAA_META_LOG_APPENDER, .app_id = a.id};
	la.name = "file";
	la.body = "{\"type\":\"file\",\"file\":\"out.jsonl\"}";
	mk(&la);
	la.name = "store";
	la.body = "{\"type\":\"endpoint-store\"}";
	mk(&la);
	CU_ASSERT_EQUAL(kaa__operations_refresh_app(ops, a.id), KAA_OK);
	const char *more[] = {"{\"t\":3}", "{\"t\":4}", "{\"t\":5}"};
	send_logs(1, 33, 5003, more, 3);
	send_logs(1, 34, 5003, more, 3);
	st = nth(1, BODY(LOG_DELIVERY_STATUS), 4);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS);
	char path[800];
	snprintf(path, sizeof(path), "%s/app-%" PRId64 "/out.jsonl", appender_dir, a.id);
	CU_ASSERT_EQUAL(count_lines(path), 3);
	CU_ASSERT_EQUAL(kaa__ep_logs_count(eps, a.id, kh, &n), KAA_OK);
	CU_ASSERT_EQUAL(n, 5);
	close_session(1);
	kaa__ep_store_free(eps);
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

/* ---- logs through a webhook appender (asynchronous answers) -------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stall;
	int status; /* 0: 200 */
	int requests;
} hook = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void hook_handler(const kaa__http_request *req, kaa__http_response *resp, void *ud)
{
	(void)req;
	(void)ud;
	pthread_mutex_lock(&hook.mu);
	hook.requests++;
	pthread_cond_broadcast(&hook.cv);
	while (hook.stall)
		pthread_cond_wait(&hook.cv, &hook.mu);
	int status = hook.status ? hook.status : 200;
	pthread_mutex_unlock(&hook.mu);
	kaa__http_respond(resp, status, "text/plain", "", 0);
}

static void hook_set(bool stall, int status)
{
	pthread_mutex_lock(&hook.mu);
	hook.stall = stall;
	hook.status = status;
	pthread_cond_broadcast(&hook.cv);
	pthread_mutex_unlock(&hook.mu);
}

/* Polls (10 ms) until sid has n frames of a kind, at most 10 s. */
static bool wait_count(kaa__session_id sid, int body, size_t n)
{
	int64_t end = kaa__now_ms() + 10000;
	while (count(sid, body) < n) {
		if (kaa__now_ms() > end)
			return false;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	return true;
}

static bool hook_saw(int n)
{
	struct timespec dl = kaa__timespec_in_ms(CLOCK_REALTIME, 10000);
	int rc = 0;
	pthread_mutex_lock(&hook.mu);
	while (hook.requests < n && rc == 0)
		rc = pthread_cond_timedwait(&hook.cv, &hook.mu, &dl);
	bool ok = hook.requests >= n;
	pthread_mutex_unlock(&hook.mu);
	return ok;
}

static void *free_ops_thread(void *arg)
{
	kaa__operations_free(arg);
	return NULL;
}

/* Statuses wait for the webhook's answers; a fifth batch in flight is
 * refused RATE_LIMITED, so is one beyond the node budget; a 400 is a
 * permanent failure; freeing the service waits for the batch in flight. */
static void test_logs_webhook(void)
{
	app_fx a = make_app("hooked", "trustful");
	kaa__http_server *srv = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_new("127.0.0.1", 0, NULL, hook_handler, NULL, &srv),
			      KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_start(srv), KAA_OK);
	char body[256];
	snprintf(body, sizeof(body),
		 "{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:%d/\",\"secret\":"
		 "\"0123456789abcdef\",\"max_parallel\":8}",
		 kaa__http_server_port(srv));
	kaa__meta_obj la = {.kind = KAA_META_LOG_APPENDER, .app_id = a.id};
	la.name = "hook";
	la.body = body;
	mk(&la);
	ops = start_ops(NULL, "node-a");
	connect_dev(1, a.token, "key-w1");
	connect_dev(2, a.token, "key-w2");
	const char *recs[] = {"{\"t\":1}"};

	hook_set(true, 0);
	for (uint64_t i = 0; i < 4; i++)
		send_logs(1, 40 + i, 6001 + i, recs, 1);
	CU_ASSERT_TRUE(hook_saw(4));
	CU_ASSERT_EQUAL(count(1, BODY(LOG_DELIVERY_STATUS)), 0); /* nothing confirmed yet */
	send_logs(1, 44, 6005, recs, 1);
	const frame_t *e = nth(1, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(RATE_LIMITED));
	CU_ASSERT_EQUAL(e->error->request_id, 44);
	CU_ASSERT_TRUE(e->error->retry_after_ms > 0);

	/* the node budget is full: another session's batch is refused */
	size_t old_max = kaa__log_inflight_max();
	kaa__log_inflight_set_max(1);
	send_logs(2, 50, 7001, recs, 1);
	const frame_t *st = nth(2, BODY(LOG_DELIVERY_STATUS), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	CU_ASSERT_EQUAL(st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_FAILURE);
	CU_ASSERT_TRUE(st->log_delivery_status->retryable);
	CU_ASSERT_EQUAL(st->log_delivery_status->code, EC(RATE_LIMITED));
	kaa__log_inflight_set_max(old_max);

	hook_set(false, 0);
	CU_ASSERT_TRUE_FATAL(wait_count(1, BODY(LOG_DELIVERY_STATUS), 4));
	for (size_t k = 0; k < 4; k++) {
		st = nth(1, BODY(LOG_DELIVERY_STATUS), k);
		CU_ASSERT_EQUAL(
			st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_SUCCESS);
	}
	CU_ASSERT_EQUAL(kaa__log_inflight_used(), 0);

	hook_set(false, 400);
	send_logs(2, 51, 7002, recs, 1);
	CU_ASSERT_TRUE_FATAL(wait_count(2, BODY(LOG_DELIVERY_STATUS), 2));
	st = nth(2, BODY(LOG_DELIVERY_STATUS), 1);
	CU_ASSERT_EQUAL(st->log_delivery_status->status,
			KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_FAILURE);
	CU_ASSERT_FALSE(st->log_delivery_status->retryable);
	CU_ASSERT_EQUAL(st->log_delivery_status->code, EC(FORBIDDEN));
	CU_ASSERT_PTR_NOT_NULL(strstr(st->log_delivery_status->reason, "HTTP 400"));

	/* a batch in flight when the session closes and the service stops */
	pthread_mutex_lock(&hook.mu);
	int seen = hook.requests;
	pthread_mutex_unlock(&hook.mu);
	hook_set(true, 0);
	send_logs(2, 52, 7003, recs, 1);
	CU_ASSERT_TRUE(hook_saw(seen + 1));
	close_session(2);
	close_session(1);
	pthread_t t;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, free_ops_thread, ops), 0);
	hook_set(false, 0);
	pthread_join(t, NULL);
	ops = NULL;
	CU_ASSERT_EQUAL(kaa__log_inflight_used(), 0);
	kaa__http_server_free(srv);
	io_reset();
}

/* An application with nothing in it: no groups, schemas or topics but one
 * optional topic; empty sets render as "[]" (and used to overflow). */
static void test_bare_application(void)
{
	kaa__meta_obj o = {.kind = KAA_META_APPLICATION, .tenant_id = tenant_id};
	kaa__meta_obj out = {0};
	o.name = "bare";
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(meta, &o, &out, NULL), KAA_OK);
	int64_t app = out.id;
	char token[64], tid[24], kh[48];
	snprintf(token, sizeof(token), "%s", out.app_token);
	kaa__meta_obj_clear(&out);
	kaa__meta_obj t = {.kind = KAA_META_TOPIC, .app_id = app};
	t.name = "opt";
	snprintf(tid, sizeof(tid), "%" PRId64, mk(&t));
	ops = start_ops(NULL, "node-b");

	send_hello(1, 1, token, "bare-key", "{\"anything\":[1,2]}");
	CU_ASSERT_PTR_NOT_NULL(nth(1, BODY(HELLO_ACK), 0));
	CU_ASSERT_EQUAL(count(1, BODY(ERROR)), 0);
	const frame_t *push = nth(1, BODY(CONFIG_PUSH), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(push);
	CU_ASSERT_STRING_EQUAL(push->config_push->full->json, "{}");
	send_ack(1, push->request_id);
	send_subscribe(1, 2, tid, true);
	send_subscribe(1, 3, tid, false);
	CU_ASSERT_EQUAL(count(1, BODY(ACK)), 2);
	CU_ASSERT_EQUAL(count(1, BODY(ERROR)), 0);
	kaa__ep_store *eps = NULL;
	kaa__endpoint ep = {0};
	expected_hash("bare-key", kh);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(nosql_url, &eps), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__ep_get(eps, app, kh, &ep), KAA_OK);
	CU_ASSERT_STRING_EQUAL(ep.groups, "[]");
	CU_ASSERT_STRING_EQUAL(ep.topics, "[]");
	CU_ASSERT_STRING_EQUAL(ep.client_profile, "{\"anything\":[1,2]}");
	kaa__endpoint_clear(&ep);
	kaa__ep_store_free(eps);
	/* a non-object profile is refused even without a schema */
	send_profile(1, 4, "[1]");
	const frame_t *e = nth(1, BODY(ERROR), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_EQUAL(e->error->code, EC(INVALID_PROFILE));
	close_session(1);
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

static bool is_draining(void)
{
	return kaa__operations_draining(ops);
}

static bool accepting(void)
{
	pthread_mutex_lock(&io.mu);
	bool a = io.accepting;
	pthread_mutex_unlock(&io.mu);
	return a;
}

/* The etcd paths on the in-process store: the application revision key
 * triggers a re-evaluation; the drain key redirects and closes sessions. */
static void test_watch_and_drain(void)
{
	app_fx a = make_app("watch", "trustful");
	kaa__coord *coord = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__coord_new_local(&coord), KAA_OK);
	ops = start_ops(coord, "node-w");
	CU_ASSERT_TRUE(kaa__operations_ready(ops));

	connect_dev(1, a.token, "key-w1");
	connect_dev(2, a.token, "key-w2");
	CU_ASSERT_EQUAL(count(1, BODY(CONFIG_PUSH)), 1);
	kaa__meta_page pg = {0};
	kaa__meta_query q = {.parent_id = a.id, .ref_id = a.g_all};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_list(meta, KAA_META_CONFIGURATION, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(pg.n, 1);
	kaa__meta_obj u = {.kind = KAA_META_CONFIGURATION, .id = pg.items[0].id};
	u.body = "{\"rate\":2,\"mode\":\"a\"}";
	kaa__meta_change chg = {0};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_update(meta, &u, NULL, &chg), KAA_OK);
	kaa__meta_page_clear(&pg);
	char key[128], val[64];
	snprintf(key, sizeof(key), "/kaa/c/apps/%" PRId64 "/rev", a.id);
	snprintf(val, sizeof(val), "{\"rev\":%" PRId64 "}", chg.app_rev);
	kaa__meta_change_clear(&chg);
	CU_ASSERT_EQUAL(kaa__coord_put(coord, key, val, strlen(val), 0, NULL), KAA_OK);
	CU_ASSERT_TRUE(WAIT_FOR(
		count(1, BODY(CONFIG_PUSH)) == 2 && count(2, BODY(CONFIG_PUSH)) == 2, 5000));

	/* drain: redirect (no other node: no targets, back to bootstrap) */
	char dv[64];
	snprintf(dv, sizeof(dv), "{\"deadline_ms\":%" PRId64 "}", kaa__wall_ms() + 3000);
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/drain/node-w", dv, strlen(dv), 0, NULL),
			KAA_OK);
	CU_ASSERT_TRUE(WAIT_FOR(is_closed(1) && is_closed(2), 5000));
	CU_ASSERT_TRUE(is_draining());
	CU_ASSERT_FALSE(accepting());
	CU_ASSERT_FALSE(kaa__operations_ready(ops));
	const frame_t *r = nth(1, BODY(REDIRECT), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->redirect->reason,
			KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_DRAIN);
	CU_ASSERT_EQUAL(io.close_code[1], 1000);
	close_session(1);
	close_session(2);
	/* the key removed: admitting again */
	CU_ASSERT_EQUAL(kaa__coord_delete(coord, "/kaa/c/drain/node-w", false, NULL), KAA_OK);
	CU_ASSERT_TRUE(WAIT_FOR(!is_draining() && accepting(), 5000));
	CU_ASSERT_TRUE(kaa__operations_ready(ops));

	/* a deleted application: its sessions are closed */
	connect_dev(3, a.token, "key-w3");
	CU_ASSERT_EQUAL_FATAL(kaa__meta_delete(meta, KAA_META_APPLICATION, a.id, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__coord_delete(coord, key, false, NULL), KAA_OK);
	CU_ASSERT_TRUE(WAIT_FOR(is_closed(3), 5000));
	close_session(3);

	kaa__operations_free(ops);
	ops = NULL;
	kaa__coord_free(coord);
	io_reset();
}

static kaa__registry *reg_w;

static bool view_has_two(void)
{
	return kaa__registry_view_synced(reg_w) && kaa__registry_count(reg_w) == 2;
}

static kaa__registry *registry_for(kaa__coord *coord, const char *id, const char *host)
{
	kaa__node_record self = {.id = (char *)id, .host = (char *)host};
	self.services[0] = "operations";
	self.n_services = 1;
	self.ports[0].name = "operations";
	self.ports[0].port = 9999;
	self.n_ports = 1;
	kaa__registry *r = NULL;
	CU_ASSERT_EQUAL(kaa__registry_new(coord, "c", &self, 10, &r), KAA_OK);
	return r;
}

/* A rebalancing plan naming this node redirects that many devices to the
 * named node, once per seq; old plans (start-up history) are not applied. */
static void test_rebalance(void)
{
	app_fx a = make_app("rebal", "trustful");
	kaa__coord *coord = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__coord_new_local(&coord), KAA_OK);
	char plan[256];
	/* a plan left from before this node started: history */
	snprintf(plan, sizeof(plan),
		 "{\"seq\":7,\"created_ms\":%" PRId64
		 ",\"moves\":[{\"from\":\"node-w\",\"to\":\"node-t\",\"sessions\":1}]}",
		 kaa__wall_ms());
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/rebalance", plan, strlen(plan), 0, NULL),
			KAA_OK);
	reg_w = registry_for(coord, "node-w", "10.0.0.1");
	kaa__registry *reg_t = registry_for(coord, "node-t", "10.0.0.9");
	CU_ASSERT_TRUE_FATAL(WAIT_FOR(view_has_two(), 5000));
	ops = start_ops(coord, "node-w");
	kaa__operations_set_registry(ops, reg_w);
	connect_dev(1, a.token, "key-r1");
	connect_dev(2, a.token, "key-r2");
	connect_dev(3, a.token, "key-r3");
	CU_ASSERT_FALSE(is_closed(1) || is_closed(2) || is_closed(3));

	snprintf(plan, sizeof(plan),
		 "{\"seq\":8,\"created_ms\":%" PRId64
		 ",\"moves\":[{\"from\":\"node-x\",\"to\":\"node-t\",\"sessions\":5},"
		 "{\"from\":\"node-w\",\"to\":\"node-t\",\"sessions\":2}]}",
		 kaa__wall_ms());
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/rebalance", plan, strlen(plan), 0, NULL),
			KAA_OK);
	CU_ASSERT_TRUE(WAIT_FOR((is_closed(1) + is_closed(2) + is_closed(3)) == 2, 5000));
	size_t redirected = 0;
	for (kaa__session_id sid = 1; sid <= 3; sid++) {
		const frame_t *r = nth(sid, BODY(REDIRECT), 0);
		if (!r)
			continue;
		redirected++;
		CU_ASSERT_EQUAL(r->redirect->reason,
				KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_REBALANCE);
		CU_ASSERT_EQUAL_FATAL(r->redirect->n_targets, 1);
		CU_ASSERT_STRING_EQUAL(r->redirect->targets[0]->host, "10.0.0.9");
		CU_ASSERT_EQUAL(r->redirect->targets[0]->port, 9999);
		CU_ASSERT(r->redirect->retry_after_ms < 10000);
	}
	CU_ASSERT_EQUAL(redirected, 2);
	/* the same seq again, and a stale plan: nothing more moves */
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/rebalance", plan, strlen(plan), 0, NULL),
			KAA_OK);
	snprintf(plan, sizeof(plan),
		 "{\"seq\":9,\"created_ms\":1,\"moves\":[{\"from\":\"node-w\",\"to\":"
		 "\"node-t\",\"sessions\":1}]}");
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/rebalance", plan, strlen(plan), 0, NULL),
			KAA_OK);
	/* a fresh plan to an unknown node is skipped too; a later valid one
	 * shows the watch has processed everything before it */
	snprintf(plan, sizeof(plan),
		 "{\"seq\":10,\"created_ms\":%" PRId64
		 ",\"moves\":[{\"from\":\"node-w\",\"to\":\"node-gone\",\"sessions\":1}]}",
		 kaa__wall_ms());
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/rebalance", plan, strlen(plan), 0, NULL),
			KAA_OK);
	snprintf(plan, sizeof(plan),
		 "{\"seq\":11,\"created_ms\":%" PRId64
		 ",\"moves\":[{\"from\":\"node-w\",\"to\":\"node-t\",\"sessions\":1}]}",
		 kaa__wall_ms());
	CU_ASSERT_EQUAL(kaa__coord_put(coord, "/kaa/c/rebalance", plan, strlen(plan), 0, NULL),
			KAA_OK);
	CU_ASSERT_TRUE(WAIT_FOR((is_closed(1) + is_closed(2) + is_closed(3)) == 3, 5000));
	for (kaa__session_id sid = 1; sid <= 3; sid++)
		close_session(sid);
	kaa__operations_free(ops);
	ops = NULL;
	kaa__registry_free(reg_w, true);
	kaa__registry_free(reg_t, true);
	reg_w = NULL;
	kaa__coord_free(coord);
	io_reset();
}

/* SIGTERM path: kaa__operations_drain returns once every session is gone. */
static void test_drain_call(void)
{
	app_fx a = make_app("drain", "trustful");
	ops = start_ops(NULL, "node-d");
	connect_dev(1, a.token, "key-d1");
	size_t left = kaa__operations_drain(ops, kaa__wall_ms() + 3000);
	CU_ASSERT_EQUAL(left, 0);
	CU_ASSERT_PTR_NOT_NULL(nth(1, BODY(REDIRECT), 0));
	CU_ASSERT_TRUE(is_closed(1));
	close_session(1);
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

/* ---- owners and events (standalone router: this node is every owner's home) ------------- */

static void send_hello_tok(kaa__session_id sid, const char *token, const char *key,
			   const char *access_token)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	h.application_token = (char *)token;
	h.public_key.data = (uint8_t *)key;
	h.public_key.len = strlen(key);
	h.endpoint_access_token = (char *)access_token;
	f.request_id = 1;
	f.body_case = BODY(HELLO);
	f.hello = &h;
	deliver(sid, &f);
	const frame_t *push = nth(sid, BODY(CONFIG_PUSH), 0);
	if (push)
		send_ack(sid, push->request_id);
}

static void send_attach(kaa__session_id sid, uint64_t req, const char *owner, const char *tok,
			const char *verifier)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerAttachRequest r = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__INIT;
	Kaa__Endpoint__V1__OwnerAccessToken t = KAA__ENDPOINT__V1__OWNER_ACCESS_TOKEN__INIT;
	t.owner_external_id = (char *)owner;
	t.token = (char *)tok;
	t.verifier_token = (char *)verifier;
	r.credential_case = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER;
	r.owner = &t;
	f.request_id = req;
	f.body_case = BODY(OWNER_ATTACH_REQUEST);
	f.owner_attach_request = &r;
	deliver(sid, &f);
}

static void send_attach_endpoint(kaa__session_id sid, uint64_t req, const char *tok)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerAttachRequest r = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__INIT;
	r.credential_case =
		KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_ENDPOINT_ACCESS_TOKEN;
	r.endpoint_access_token = (char *)tok;
	f.request_id = req;
	f.body_case = BODY(OWNER_ATTACH_REQUEST);
	f.owner_attach_request = &r;
	deliver(sid, &f);
}

static void send_detach(kaa__session_id sid, uint64_t req, const char *ekh)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__OwnerDetach d = KAA__ENDPOINT__V1__OWNER_DETACH__INIT;
	d.endpoint_key_hash = (char *)ekh;
	f.request_id = req;
	f.body_case = BODY(OWNER_DETACH);
	f.owner_detach = &d;
	deliver(sid, &f);
}

static void send_event(kaa__session_id sid, uint64_t req, const char *fqn, const char *target,
		       const char *body, uint64_t seq)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Event e = KAA__ENDPOINT__V1__EVENT__INIT;
	e.event_class_fqn = (char *)fqn;
	e.target_endpoint_key_hash = (char *)target;
	e.body_json = (char *)body;
	e.seq = seq;
	f.request_id = req;
	f.body_case = BODY(EVENT);
	f.event = &e;
	deliver(sid, &f);
}

/* The answer (OwnerAttachResponse or Error) to request req of sid, polled. */
static const frame_t *answer(kaa__session_id sid, uint64_t req)
{
	const frame_t *r = NULL;
	int64_t until = kaa__wall_ms() + 5000;
	while (!r && kaa__wall_ms() < until) {
		pthread_mutex_lock(&io.mu);
		for (size_t i = 0; i < io.n && !r; i++) {
			const frame_t *f = io.frames[i].f;
			if (io.frames[i].sid != sid)
				continue;
			if ((f->body_case == BODY(ERROR) && f->error->request_id == req) ||
			    (f->body_case != BODY(ERROR) && f->request_id == req &&
			     f->body_case != BODY(HELLO_ACK)))
				r = f;
		}
		pthread_mutex_unlock(&io.mu);
		if (!r) {
			struct timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
			nanosleep(&ts, NULL);
		}
	}
	return r;
}

static int attach_code(kaa__session_id sid, uint64_t req)
{
	const frame_t *r = answer(sid, req);
	if (!r)
		return -1;
	if (r->body_case == BODY(ERROR))
		return 1000 + (int)r->error->code;
	CU_ASSERT_EQUAL(r->body_case, BODY(OWNER_ATTACH_RESPONSE));
	return r->body_case == BODY(OWNER_ATTACH_RESPONSE) ? (int)r->owner_attach_response->code
							   : -2;
}

static void make_jwt(const char *secret, const char *sub, int64_t exp, char *out, size_t cap)
{
	char h[128], p[256], payload[160], sig[64], input[400];
	uint8_t md[32];
	unsigned int mdlen = 0;
	const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
	b64url((const uint8_t *)hdr, strlen(hdr), h);
	snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%" PRId64 "}", sub, exp);
	b64url((const uint8_t *)payload, strlen(payload), p);
	snprintf(input, sizeof(input), "%s.%s", h, p);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)input, strlen(input), md,
	     &mdlen);
	b64url(md, mdlen, sig);
	snprintf(out, cap, "%s.%s", input, sig);
}

/* The n-th Event sid received, polled. */
static const frame_t *event_n(kaa__session_id sid, size_t k)
{
	const frame_t *f = NULL;
	WAIT_FOR((f = nth(sid, BODY(EVENT), k)) != NULL, 5000);
	return f;
}

static void test_owners_events(void)
{
	static const char *SECRET = "0123456789abcdef0123456789abcdef-secret";
	io_reset();
	app_fx a = make_app("events-app", "trustful");
	/* a family with two classes; the app sends and receives Ping, only
	 * sends Report */
	kaa__meta_obj fam = {.kind = KAA_META_EVENT_FAMILY, .tenant_id = tenant_id};
	fam.name = "home";
	fam.body = "[{\"fqn\":\"org.test.Ping\",\"schema\":{\"type\":\"record\",\"name\":\"Ping\","
		   "\"fields\":[{\"name\":\"n\",\"type\":\"long\"}]}},"
		   "{\"fqn\":\"org.test.Report\",\"schema\":{\"type\":\"record\",\"name\":\"R\","
		   "\"fields\":[{\"name\":\"t\",\"type\":\"double\"}]}}]";
	int64_t fam_id = mk(&fam);
	kaa__meta_obj map = {.kind = KAA_META_EVENT_MAP, .app_id = a.id, .family_id = fam_id};
	map.body = "{\"org.test.Ping\":\"both\",\"org.test.Report\":\"source\"}";
	mk(&map);
	kaa__meta_obj v = {.kind = KAA_META_USER_VERIFIER, .app_id = a.id};
	v.name = "trust";
	v.body = "{\"type\":\"trustful\"}";
	mk(&v);
	char vbody[256];
	snprintf(vbody, sizeof(vbody), "{\"type\":\"jwt-hs256\",\"secret\":\"%s\"}", SECRET);
	v.name = "jwt";
	v.body = vbody;
	mk(&v);
	app_fx bare = make_app("no-verifier-app", "trustful");

	kaa__operations_opts o = {
		.node_id = "n1",
		.cluster = "c",
		.sql_url = sql_url,
		.nosql_url = nosql_url,
		.appender_dir = appender_dir,
		.io = &test_io,
		.router = true,
		.internode_port = -1,
	};
	CU_ASSERT_EQUAL_FATAL(kaa__operations_new(&o, &ops), KAA_OK);
	char ka[48], kb[48], kc[48], kd[48], ke[48];
	expected_hash("ev-key-a", ka);
	expected_hash("ev-key-b", kb);
	expected_hash("ev-key-c", kc);
	expected_hash("ev-key-d", kd);
	expected_hash("ev-key-e", ke);
	send_hello_tok(20, a.token, "ev-key-a", "tok-a");
	send_hello_tok(21, a.token, "ev-key-b", "tok-b");
	send_hello_tok(22, a.token, "ev-key-c", "tok-c");
	send_hello_tok(23, a.token, "ev-key-d", "tok-d");
	send_hello_tok(24, a.token, "ev-key-e", "tok-e");
	send_hello_tok(25, bare.token, "ev-key-f", "tok-f");

	/* not attached: no events, no listeners, no endpoint attach */
	send_event(22, 100, "org.test.Ping", NULL, "{\"n\":1}", 1);
	CU_ASSERT_EQUAL(attach_code(22, 100), 1000 + EC(FORBIDDEN));
	send_attach_endpoint(22, 101, "tok-e");
	CU_ASSERT_EQUAL(attach_code(22, 101), EC(FORBIDDEN));

	/* verifiers: trustful (the default = first), jwt, unknown, none */
	send_attach(20, 102, "alice", "", NULL);
	CU_ASSERT_EQUAL(attach_code(20, 102), EC(UNSPECIFIED));
	const frame_t *r = answer(20, 102);
	CU_ASSERT_STRING_EQUAL(r->owner_attach_response->owner_id, "alice");
	CU_ASSERT_STRING_EQUAL(r->owner_attach_response->endpoint_key_hash, ka);
	char jwt[512];
	make_jwt(SECRET, "alice", (int64_t)time(NULL) + 3600, jwt, sizeof(jwt));
	send_attach(21, 103, "alice", jwt, "jwt");
	CU_ASSERT_EQUAL(attach_code(21, 103), EC(UNSPECIFIED));
	make_jwt(SECRET, "alice", (int64_t)time(NULL) - 3600, jwt, sizeof(jwt));
	send_attach(22, 104, "alice", jwt, "jwt");
	CU_ASSERT_EQUAL(attach_code(22, 104), EC(EXPIRED_TOKEN));
	make_jwt("another-secret-another-secret-another", "alice", (int64_t)time(NULL) + 3600, jwt,
		 sizeof(jwt));
	send_attach(22, 105, "alice", jwt, "jwt");
	CU_ASSERT_EQUAL(attach_code(22, 105), EC(INVALID_TOKEN));
	make_jwt(SECRET, "mallory", (int64_t)time(NULL) + 3600, jwt, sizeof(jwt));
	send_attach(22, 106, "alice", jwt, "jwt");
	CU_ASSERT_EQUAL(attach_code(22, 106), EC(INVALID_TOKEN));
	send_attach(22, 107, "alice", "x", "no-such-verifier");
	CU_ASSERT_EQUAL(attach_code(22, 107), EC(NO_VERIFIER));
	send_attach(25, 108, "alice", "x", NULL);
	CU_ASSERT_EQUAL(attach_code(25, 108), EC(NO_VERIFIER));
	send_attach(23, 109, "bob", "", "trust");
	CU_ASSERT_EQUAL(attach_code(23, 109), EC(UNSPECIFIED));
	kaa__endpoint rec = {0};
	kaa__ep_store *eps = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(nosql_url, &eps), KAA_OK);
	CU_ASSERT_EQUAL(kaa__ep_get(eps, a.id, kb, &rec), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rec.owner_id);
	CU_ASSERT_STRING_EQUAL(rec.owner_id, "alice");
	kaa__endpoint_clear(&rec);

	/* validation */
	send_event(20, 110, "org.test.Ping", NULL, "{\"n\":\"x\"}", 1);
	CU_ASSERT_EQUAL(attach_code(20, 110), 1000 + EC(INVALID_EVENT));
	send_event(20, 111, "org.test.Nope", NULL, "{\"n\":1}", 2);
	CU_ASSERT_EQUAL(attach_code(20, 111), 1000 + EC(NOT_FOUND));
	send_event(20, 112, "org.test.Ping", NULL, "{\"n\":1}", 0);
	CU_ASSERT_EQUAL(attach_code(20, 112), 1000 + EC(INVALID_MESSAGE));

	/* broadcast: the other sink of alice only; Report has no sinks */
	send_event(20, 113, "org.test.Ping", NULL, "{\"n\":7}", 3);
	const frame_t *ack = answer(20, 113);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ack);
	CU_ASSERT_EQUAL_FATAL(ack->body_case, BODY(EVENT_ACK));
	CU_ASSERT_EQUAL(ack->event_ack->seq, 3);
	const frame_t *e = event_n(21, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_STRING_EQUAL(e->event->source_endpoint_key_hash, ka);
	CU_ASSERT_STRING_EQUAL(e->event->event_class_fqn, "org.test.Ping");
	CU_ASSERT_EQUAL(e->event->seq, 3);
	CU_ASSERT_STRING_EQUAL(e->event->body_json, "{\"n\":7}");
	send_event(20, 114, "org.test.Report", NULL, "{\"t\":1.5}", 4);
	ack = answer(20, 114);
	CU_ASSERT_TRUE(ack && ack->body_case == BODY(EVENT_ACK));

	/* attach e by its endpoint access token: e is told, then hears events */
	send_attach_endpoint(20, 115, "tok-e");
	CU_ASSERT_EQUAL(attach_code(20, 115), EC(UNSPECIFIED));
	CU_ASSERT_STRING_EQUAL(answer(20, 115)->owner_attach_response->endpoint_key_hash, ke);
	const frame_t *an = NULL;
	CU_ASSERT_TRUE(WAIT_FOR((an = nth(24, BODY(ATTACH_NOTIFICATION), 0)) != NULL, 5000));
	if (an) {
		CU_ASSERT_STRING_EQUAL(an->attach_notification->owner_id, "alice");
		CU_ASSERT_STRING_EQUAL(an->attach_notification->endpoint_key_hash, ka);
	}
	send_attach_endpoint(20, 116, "no-such-token");
	CU_ASSERT_EQUAL(attach_code(20, 116), EC(INVALID_TOKEN));
	/* unicast to e from b */
	send_event(21, 117, "org.test.Ping", ke, "{\"n\":8}", 1);
	e = event_n(24, 0);
	CU_ASSERT_TRUE(e && e->event->seq == 1 &&
		       strcmp(e->event->source_endpoint_key_hash, kb) == 0);
	send_event(20, 118, "org.test.Ping", NULL, "{\"n\":9}", 5);
	CU_ASSERT_PTR_NOT_NULL(event_n(21, 1));
	CU_ASSERT_PTR_NOT_NULL(event_n(24, 1));

	/* listeners */
	frame_t lf = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__EventListenersRequest lr =
		KAA__ENDPOINT__V1__EVENT_LISTENERS_REQUEST__INIT;
	char *fqns[] = {"org.test.Ping"};
	lr.event_class_fqns = fqns;
	lr.n_event_class_fqns = 1;
	lf.request_id = 119;
	lf.body_case = BODY(EVENT_LISTENERS_REQUEST);
	lf.event_listeners_request = &lr;
	deliver(20, &lf);
	const frame_t *lresp = answer(20, 119);
	CU_ASSERT_TRUE_FATAL(lresp && lresp->body_case == BODY(EVENT_LISTENERS_RESPONSE));
	CU_ASSERT_EQUAL(lresp->event_listeners_response->n_endpoint_key_hashes, 2);

	/* detach e (by a): e is told and hears nothing more; bob never heard anything */
	send_detach(20, 120, ke);
	const frame_t *dk = answer(20, 120);
	CU_ASSERT_TRUE(dk && dk->body_case == BODY(ACK));
	CU_ASSERT_TRUE(WAIT_FOR(nth(24, BODY(DETACH_NOTIFICATION), 0) != NULL, 5000));
	send_detach(20, 121, kd); /* bob's endpoint: not alice's */
	CU_ASSERT_EQUAL(attach_code(20, 121), 1000 + EC(NOT_FOUND));
	send_event(20, 122, "org.test.Ping", NULL, "{\"n\":10}", 6);
	CU_ASSERT_PTR_NOT_NULL(event_n(21, 2));
	CU_ASSERT_TRUE(answer(20, 122) && answer(20, 122)->body_case == BODY(EVENT_ACK));
	CU_ASSERT_EQUAL(count(24, BODY(EVENT)), 2);
	CU_ASSERT_EQUAL(count(23, BODY(EVENT)), 0);
	CU_ASSERT_EQUAL(count(20, BODY(EVENT)), 0); /* a is the source of every broadcast */
	CU_ASSERT_EQUAL(kaa__ep_get(eps, a.id, ke, &rec), KAA_OK);
	CU_ASSERT_PTR_NULL(rec.owner_id);
	kaa__endpoint_clear(&rec);

	/* a verifier created after the application was cached (its change
	 * not seen yet: no watch here) is found by reloading the stale cache */
	kaa__meta_obj late = {.kind = KAA_META_USER_VERIFIER, .app_id = a.id};
	late.name = "late";
	late.body = "{\"type\":\"trustful\"}";
	mk(&late);
	send_attach(22, 124, "carol", "", "late");
	CU_ASSERT_EQUAL(attach_code(22, 124), EC(UNSPECIFIED));

	/* reconnect keeps the owner (read from the record) */
	kaa__operations_on_close(ops, 21);
	io_clear_sid(21);
	send_hello_tok(26, a.token, "ev-key-b", "tok-b");
	send_event(20, 123, "org.test.Ping", NULL, "{\"n\":11}", 7);
	CU_ASSERT_PTR_NOT_NULL(event_n(26, 0));
	kaa__ep_store_free(eps);
	kaa__operations_free(ops);
	ops = NULL;
	io_reset();
}

static const kaa__cu_test tests[] = {
	{"registration", test_registration},
	{"provisioned credentials", test_provisioned},
	{"profile and configuration", test_profile_and_config},
	{"notifications", test_notifications},
	{"catch-up timer", test_catch_up_timer},
	{"logs", test_logs},
	{"logs through a webhook", test_logs_webhook},
	{"bare application", test_bare_application},
	{"watch and drain", test_watch_and_drain},
	{"drain call", test_drain_call},
	{"rebalancing plans", test_rebalance},
	{"owners and events", test_owners_events},
};

int main(void)
{
	if (kaa__test_tmpdir(dir, sizeof(dir), "test_operations") != 0) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sql_url, sizeof(sql_url), "sqlite:%s/kaa.db", dir);
	snprintf(nosql_url, sizeof(nosql_url), "sqlite:%s/endpoints.db", dir);
	snprintf(appender_dir, sizeof(appender_dir), "%s/logs", dir);
	const char *lvl = getenv("KAA_LOG_LEVEL");
	kaa__log_level = lvl ? kaa__log_level_parse(lvl) : KAA_LOG_ERROR;
	srand((unsigned)time(NULL));

	if (kaa__meta_store_new(sql_url, NULL, &meta) != KAA_OK)
		return 1;
	kaa__meta_obj t = {.kind = KAA_META_TENANT};
	t.name = "tenant";
	kaa__meta_obj out = {0};
	if (kaa__meta_create(meta, &t, &out, NULL) != KAA_OK)
		return 1;
	tenant_id = out.id;
	kaa__meta_obj_clear(&out);
	int rc = kaa__cu_run("operations", tests, KAA__CU_COUNT(tests), NULL, NULL);
	kaa__meta_store_free(meta);
	kaa__test_rm_tree(dir);
	return rc;
}
