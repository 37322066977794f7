/*
 * Device protocol codec (lib/proto/endpoint_codec.c): round trips of every
 * message kind, every limit at and just past its value, bad versions, empty
 * bodies, truncated and garbage bytes, invalid JSON in every JSON field.
 *
 * With KAA_WRITE_CORPUS=DIR set, also writes every round-tripped frame to
 * DIR/<kind>.bin (the seeds of fuzz/corpus/fuzz_endpoint_frame/).
 */
#include "cu_main.h"
#include "proto/endpoint_codec.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef Kaa__Endpoint__V1__Frame frame_t;

#define E(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x
#define B(x) KAA__ENDPOINT__V1__FRAME__BODY_##x

static void frame_init(frame_t *f, int body_case, void *body)
{
	kaa__endpoint__v1__frame__init(f);
	f->protocol_version = KAA__PROTOCOL_VERSION;
	f->request_id = 42;
	f->body_case = body_case;
	f->hello = body; /* every member of the union is a pointer */
}

static void write_seed(const char *name, const uint8_t *buf, size_t len)
{
	const char *dir = getenv("KAA_WRITE_CORPUS");
	char path[512];
	FILE *fp;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s.bin", dir, name);
	fp = fopen(path, "wb");
	if (!fp)
		return;
	fwrite(buf, 1, len, fp);
	fclose(fp);
}

/* Encodes f, decodes it, re-encodes the result: both encodings must match.
 * Returns the decoded frame (caller frees) or NULL. */
static frame_t *roundtrip(const frame_t *f, const char *name)
{
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	frame_t *d = NULL;
	kaa__frame_error err;

	CU_ASSERT_EQUAL_FATAL(kaa__frame_encode(f, &a, &alen), KAA_OK);
	int rc = kaa__frame_decode(a, alen, NULL, &d, &err);
	if (rc != KAA_OK)
		fprintf(stderr, "\n%s: %s (field %s)\n", name, err.message, err.field);
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	CU_ASSERT_EQUAL(d->body_case, f->body_case);
	CU_ASSERT_EQUAL(d->request_id, 42);
	CU_ASSERT_EQUAL(d->protocol_version, 1);
	CU_ASSERT_EQUAL_FATAL(kaa__frame_encode(d, &b, &blen), KAA_OK);
	CU_ASSERT_EQUAL(alen, blen);
	CU_ASSERT(alen == blen && memcmp(a, b, alen) == 0);
	write_seed(name, a, alen);
	free(a);
	free(b);
	return d;
}

static void test_roundtrip_session(void)
{
	frame_t f, *d;
	uint8_t key[65];

	memset(key, 7, sizeof(key));
	{
		Kaa__Endpoint__V1__Hello m = KAA__ENDPOINT__V1__HELLO__INIT;
		m.application_token = "app-token-1";
		m.public_key.data = key;
		m.public_key.len = sizeof(key);
		m.endpoint_access_token = "ep-access";
		m.sdk_profile_id = "sdk-1";
		m.client_profile_json = "{\"model\":\"x1\",\"fw\":[1,2,3],\"ok\":true}";
		m.sdk_version = "libkaa/0.1.0";
		frame_init(&f, B(HELLO), &m);
		d = roundtrip(&f, "hello");
		CU_ASSERT_STRING_EQUAL(d->hello->application_token, "app-token-1");
		CU_ASSERT_EQUAL(d->hello->public_key.len, sizeof(key));
		CU_ASSERT_STRING_EQUAL(d->hello->client_profile_json, m.client_profile_json);
		kaa__frame_free(d);
	}
	{
		Kaa__Endpoint__V1__Limits l = KAA__ENDPOINT__V1__LIMITS__INIT;
		Kaa__Endpoint__V1__HelloAck m = KAA__ENDPOINT__V1__HELLO_ACK__INIT;
		l.max_frame_bytes = 65536;
		l.max_log_records_per_batch = 1000;
		l.idle_timeout_ms = 120000;
		m.endpoint_key_hash = "q1w2e3r4t5y6u7i8o9p0AbCdEfGhIjKlMnOpQrStUvW";
		m.session_id = "s-123";
		m.server_time_ms = 1800000000000ull;
		m.limits = &l;
		m.registered = 1;
		frame_init(&f, B(HELLO_ACK), &m);
		d = roundtrip(&f, "hello_ack");
		CU_ASSERT_EQUAL(d->hello_ack->limits->max_frame_bytes, 65536);
		CU_ASSERT_EQUAL(d->hello_ack->server_time_ms, 1800000000000ull);
		kaa__frame_free(d);
	}
	{
		Kaa__Endpoint__V1__TopicPosition p1 = KAA__ENDPOINT__V1__TOPIC_POSITION__INIT;
		Kaa__Endpoint__V1__TopicPosition p2 = KAA__ENDPOINT__V1__TOPIC_POSITION__INIT;
		Kaa__Endpoint__V1__TopicPosition *ps[] = {&p1, &p2};
		Kaa__Endpoint__V1__SessionResume m = KAA__ENDPOINT__V1__SESSION_RESUME__INIT;
		p1.topic_id = "t1";
		p1.last_seq = 17;
		p2.last_seq = 3; /* unicast stream */
		m.session_id = "s-123";
		m.n_positions = 2;
		m.positions = ps;
		frame_init(&f, B(SESSION_RESUME), &m);
		d = roundtrip(&f, "session_resume");
		CU_ASSERT_EQUAL(d->session_resume->n_positions, 2);
		CU_ASSERT_EQUAL(d->session_resume->positions[0]->last_seq, 17);
		kaa__frame_free(d);
	}
	{
		Kaa__Endpoint__V1__Ack m = KAA__ENDPOINT__V1__ACK__INIT;
		frame_init(&f, B(ACK), &m);
		kaa__frame_free(roundtrip(&f, "ack"));
	}
	{
		Kaa__Endpoint__V1__Error m = KAA__ENDPOINT__V1__ERROR__INIT;
		m.code = E(INVALID_LOG_RECORD);
		m.message = "record 3: temperature: number expected";
		m.request_id = 42;
		m.field = "log_upload.records_json[3]";
		m.json_path = "$.temperature";
		m.index = 3;
		m.retry_after_ms = 0;
		m.fatal = 0;
		frame_init(&f, B(ERROR), &m);
		d = roundtrip(&f, "error");
		CU_ASSERT_EQUAL(d->error->code, E(INVALID_LOG_RECORD));
		CU_ASSERT_EQUAL(d->error->index, 3);
		CU_ASSERT_STRING_EQUAL(d->error->json_path, "$.temperature");
		kaa__frame_free(d);
	}
	{
		Kaa__Endpoint__V1__Ping m = KAA__ENDPOINT__V1__PING__INIT;
		Kaa__Endpoint__V1__Pong n = KAA__ENDPOINT__V1__PONG__INIT;
		m.payload.data = key;
		m.payload.len = 8;
		n.payload = m.payload;
		frame_init(&f, B(PING), &m);
		kaa__frame_free(roundtrip(&f, "ping"));
		frame_init(&f, B(PONG), &n);
		kaa__frame_free(roundtrip(&f, "pong"));
	}
	{
		Kaa__Endpoint__V1__RedirectTarget t1 = KAA__ENDPOINT__V1__REDIRECT_TARGET__INIT;
		Kaa__Endpoint__V1__RedirectTarget t2 = KAA__ENDPOINT__V1__REDIRECT_TARGET__INIT;
		Kaa__Endpoint__V1__RedirectTarget *ts[] = {&t1, &t2};
		Kaa__Endpoint__V1__Redirect m = KAA__ENDPOINT__V1__REDIRECT__INIT;
		t1.host = "10.0.0.2";
		t1.port = 9080;
		t1.weight = 3;
		t2.host = "ops-2.example.com";
		t2.port = 443;
		t2.weight = 1;
		t2.tls = 1;
		m.n_targets = 2;
		m.targets = ts;
		m.reason = KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_DRAIN;
		m.retry_after_ms = 250;
		frame_init(&f, B(REDIRECT), &m);
		d = roundtrip(&f, "redirect");
		CU_ASSERT_EQUAL(d->redirect->n_targets, 2);
		CU_ASSERT_STRING_EQUAL(d->redirect->targets[1]->host, "ops-2.example.com");
		CU_ASSERT_EQUAL(d->redirect->reason,
				KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_DRAIN);
		kaa__frame_free(d);
	}
}

static void test_roundtrip_data(void)
{
	frame_t f, *d;

	{
		Kaa__Endpoint__V1__ProfileUpdate m = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;
		m.client_profile_json = "{\"model\":\"x2\"}";
		frame_init(&f, B(PROFILE_UPDATE), &m);
		kaa__frame_free(roundtrip(&f, "profile_update"));
	}
	{
		Kaa__Endpoint__V1__ConfigSyncRequest m =
			KAA__ENDPOINT__V1__CONFIG_SYNC_REQUEST__INIT;
		m.config_hash = "ab12";
		frame_init(&f, B(CONFIG_SYNC_REQUEST), &m);
		kaa__frame_free(roundtrip(&f, "config_sync_request"));
	}
	{
		Kaa__Endpoint__V1__ConfigUpToDate u = KAA__ENDPOINT__V1__CONFIG_UP_TO_DATE__INIT;
		Kaa__Endpoint__V1__ConfigDocument doc = KAA__ENDPOINT__V1__CONFIG_DOCUMENT__INIT;
		Kaa__Endpoint__V1__ConfigPatch p = KAA__ENDPOINT__V1__CONFIG_PATCH__INIT;
		Kaa__Endpoint__V1__ConfigSyncResponse r =
			KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__INIT;
		Kaa__Endpoint__V1__ConfigPush push = KAA__ENDPOINT__V1__CONFIG_PUSH__INIT;
		u.hash = "ab12";
		doc.json = "{\"rate\":5,\"name\":\"a\"}";
		doc.hash = "cd34";
		p.patch_json = "{\"rate\":10,\"name\":null}";
		p.base_hash = "cd34";
		p.new_hash = "ef56";

		r.result_case = KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_UP_TO_DATE;
		r.up_to_date = &u;
		frame_init(&f, B(CONFIG_SYNC_RESPONSE), &r);
		kaa__frame_free(roundtrip(&f, "config_sync_response_up_to_date"));
		r.result_case = KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_FULL;
		r.full = &doc;
		d = roundtrip(&f, "config_sync_response_full");
		CU_ASSERT_STRING_EQUAL(d->config_sync_response->full->json, doc.json);
		kaa__frame_free(d);
		r.result_case = KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_PATCH;
		r.patch = &p;
		d = roundtrip(&f, "config_sync_response_patch");
		CU_ASSERT_STRING_EQUAL(d->config_sync_response->patch->base_hash, "cd34");
		kaa__frame_free(d);

		push.result_case = KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_PATCH;
		push.patch = &p;
		frame_init(&f, B(CONFIG_PUSH), &push);
		kaa__frame_free(roundtrip(&f, "config_push_patch"));
		push.result_case = KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_FULL;
		push.full = &doc;
		kaa__frame_free(roundtrip(&f, "config_push_full"));
	}
	{
		Kaa__Endpoint__V1__Topic t1 = KAA__ENDPOINT__V1__TOPIC__INIT;
		Kaa__Endpoint__V1__Topic t2 = KAA__ENDPOINT__V1__TOPIC__INIT;
		Kaa__Endpoint__V1__Topic *ts[] = {&t1, &t2};
		Kaa__Endpoint__V1__NotificationTopics m =
			KAA__ENDPOINT__V1__NOTIFICATION_TOPICS__INIT;
		t1.topic_id = "t1";
		t1.name = "alerts";
		t1.mandatory = 1;
		t1.subscribed = 1;
		t1.last_seq = 9;
		t2.topic_id = "t2";
		t2.name = "news";
		m.n_topics = 2;
		m.topics = ts;
		frame_init(&f, B(NOTIFICATION_TOPICS), &m);
		d = roundtrip(&f, "notification_topics");
		CU_ASSERT_EQUAL(d->notification_topics->topics[0]->mandatory, 1);
		CU_ASSERT_EQUAL(d->notification_topics->topics[0]->last_seq, 9);
		kaa__frame_free(d);
	}
	{
		Kaa__Endpoint__V1__Subscribe s = KAA__ENDPOINT__V1__SUBSCRIBE__INIT;
		Kaa__Endpoint__V1__Unsubscribe u = KAA__ENDPOINT__V1__UNSUBSCRIBE__INIT;
		s.topic_id = "t2";
		u.topic_id = "t2";
		frame_init(&f, B(SUBSCRIBE), &s);
		kaa__frame_free(roundtrip(&f, "subscribe"));
		frame_init(&f, B(UNSUBSCRIBE), &u);
		kaa__frame_free(roundtrip(&f, "unsubscribe"));
	}
	{
		Kaa__Endpoint__V1__Notification m = KAA__ENDPOINT__V1__NOTIFICATION__INIT;
		Kaa__Endpoint__V1__NotificationAck a = KAA__ENDPOINT__V1__NOTIFICATION_ACK__INIT;
		m.topic_id = "t1";
		m.seq = 10;
		m.body_json = "{\"msg\":\"h\\u00e9llo \xc3\xa9\",\"n\":-1.5e3}";
		m.expires_at_ms = 1800000000000ull;
		frame_init(&f, B(NOTIFICATION), &m);
		d = roundtrip(&f, "notification");
		CU_ASSERT_EQUAL(d->notification->seq, 10);
		kaa__frame_free(d);
		m.topic_id = ""; /* unicast */
		kaa__frame_free(roundtrip(&f, "notification_unicast"));
		a.topic_id = "t1";
		a.seq = 10;
		frame_init(&f, B(NOTIFICATION_ACK), &a);
		kaa__frame_free(roundtrip(&f, "notification_ack"));
	}
	{
		char *recs[] = {"{\"t\":21.5}", "{\"t\":21.7,\"tags\":[\"a\",\"b\"]}", "null"};
		Kaa__Endpoint__V1__LogUpload m = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
		Kaa__Endpoint__V1__LogDeliveryStatus s =
			KAA__ENDPOINT__V1__LOG_DELIVERY_STATUS__INIT;
		m.batch_id = 0x1122334455667788ull;
		m.n_records_json = 3;
		m.records_json = recs;
		frame_init(&f, B(LOG_UPLOAD), &m);
		d = roundtrip(&f, "log_upload");
		CU_ASSERT_EQUAL(d->log_upload->batch_id, 0x1122334455667788ull);
		CU_ASSERT_EQUAL(d->log_upload->n_records_json, 3);
		CU_ASSERT_STRING_EQUAL(d->log_upload->records_json[1], recs[1]);
		kaa__frame_free(d);
		s.batch_id = m.batch_id;
		s.status = KAA__ENDPOINT__V1__LOG_DELIVERY_RESULT__LOG_DELIVERY_RESULT_FAILURE;
		s.reason = "appender unavailable";
		s.retryable = 1;
		s.code = E(INTERNAL);
		frame_init(&f, B(LOG_DELIVERY_STATUS), &s);
		d = roundtrip(&f, "log_delivery_status");
		CU_ASSERT_EQUAL(d->log_delivery_status->retryable, 1);
		kaa__frame_free(d);
	}
}

static void test_roundtrip_events(void)
{
	frame_t f, *d;

	{
		Kaa__Endpoint__V1__Event m = KAA__ENDPOINT__V1__EVENT__INIT;
		Kaa__Endpoint__V1__EventAck a = KAA__ENDPOINT__V1__EVENT_ACK__INIT;
		m.event_class_fqn = "org.example.thermo.SetTemperature";
		m.target_endpoint_key_hash = "abc";
		m.body_json = "{\"celsius\":21}";
		m.seq = 5;
		frame_init(&f, B(EVENT), &m);
		kaa__frame_free(roundtrip(&f, "event"));
		m.target_endpoint_key_hash = ""; /* broadcast */
		m.source_endpoint_key_hash = "src";
		kaa__frame_free(roundtrip(&f, "event_broadcast"));
		a.seq = 5;
		a.source_endpoint_key_hash = "src";
		frame_init(&f, B(EVENT_ACK), &a);
		kaa__frame_free(roundtrip(&f, "event_ack"));
	}
	{
		char *fqns[] = {"org.example.A", "org.example.B"};
		char *hashes[] = {"h1", "h2", "h3"};
		Kaa__Endpoint__V1__EventListenersRequest q =
			KAA__ENDPOINT__V1__EVENT_LISTENERS_REQUEST__INIT;
		Kaa__Endpoint__V1__EventListenersResponse r =
			KAA__ENDPOINT__V1__EVENT_LISTENERS_RESPONSE__INIT;
		q.n_event_class_fqns = 2;
		q.event_class_fqns = fqns;
		r.n_endpoint_key_hashes = 3;
		r.endpoint_key_hashes = hashes;
		frame_init(&f, B(EVENT_LISTENERS_REQUEST), &q);
		kaa__frame_free(roundtrip(&f, "event_listeners_request"));
		frame_init(&f, B(EVENT_LISTENERS_RESPONSE), &r);
		d = roundtrip(&f, "event_listeners_response");
		CU_ASSERT_EQUAL(d->event_listeners_response->n_endpoint_key_hashes, 3);
		kaa__frame_free(d);
	}
	{
		Kaa__Endpoint__V1__OwnerAccessToken t = KAA__ENDPOINT__V1__OWNER_ACCESS_TOKEN__INIT;
		Kaa__Endpoint__V1__OwnerAttachRequest q =
			KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__INIT;
		Kaa__Endpoint__V1__OwnerAttachResponse r =
			KAA__ENDPOINT__V1__OWNER_ATTACH_RESPONSE__INIT;
		t.owner_external_id = "alice";
		t.token = "eyJhbGciOiJIUzI1NiJ9.e30.sig";
		q.credential_case = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER;
		q.owner = &t;
		frame_init(&f, B(OWNER_ATTACH_REQUEST), &q);
		d = roundtrip(&f, "owner_attach_request_owner");
		CU_ASSERT_STRING_EQUAL(d->owner_attach_request->owner->owner_external_id, "alice");
		kaa__frame_free(d);
		q.credential_case =
			KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_ENDPOINT_ACCESS_TOKEN;
		q.endpoint_access_token = "ep-access";
		kaa__frame_free(roundtrip(&f, "owner_attach_request_endpoint"));
		r.result = KAA__ENDPOINT__V1__ATTACH_RESULT__ATTACH_RESULT_FAILURE;
		r.code = E(EXPIRED_TOKEN);
		r.reason = "token expired";
		frame_init(&f, B(OWNER_ATTACH_RESPONSE), &r);
		kaa__frame_free(roundtrip(&f, "owner_attach_response"));
	}
	{
		Kaa__Endpoint__V1__OwnerDetach m = KAA__ENDPOINT__V1__OWNER_DETACH__INIT;
		Kaa__Endpoint__V1__AttachNotification a =
			KAA__ENDPOINT__V1__ATTACH_NOTIFICATION__INIT;
		Kaa__Endpoint__V1__DetachNotification n =
			KAA__ENDPOINT__V1__DETACH_NOTIFICATION__INIT;
		frame_init(&f, B(OWNER_DETACH), &m);
		kaa__frame_free(roundtrip(&f, "owner_detach"));
		a.owner_id = "alice";
		a.endpoint_key_hash = "h1";
		frame_init(&f, B(ATTACH_NOTIFICATION), &a);
		kaa__frame_free(roundtrip(&f, "attach_notification"));
		n.endpoint_key_hash = "h1";
		frame_init(&f, B(DETACH_NOTIFICATION), &n);
		kaa__frame_free(roundtrip(&f, "detach_notification"));
	}
}

/* Encodes f and decodes it with lim; returns the decode result, fills err. */
static int dec(const frame_t *f, const kaa__frame_limits *lim, kaa__frame_error *err)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	frame_t *d = NULL;

	CU_ASSERT_EQUAL_FATAL(kaa__frame_encode(f, &buf, &len), KAA_OK);
	int rc = kaa__frame_decode(buf, len, lim, &d, err);
	if (rc == KAA_OK) {
		CU_ASSERT_PTR_NOT_NULL(d);
	} else {
		CU_ASSERT_PTR_NULL(d);
	}
	kaa__frame_free(d);
	free(buf);
	return rc;
}

/* A JSON string literal of exactly n bytes (n >= 2). Caller frees. */
static char *json_of(size_t n)
{
	char *s = malloc(n + 1);
	CU_ASSERT_FATAL(s != NULL);
	memset(s, 'a', n);
	s[0] = '"';
	s[n - 1] = '"';
	s[n] = '\0';
	return s;
}

static char *str_of(size_t n)
{
	char *s = malloc(n + 1);
	CU_ASSERT_FATAL(s != NULL);
	memset(s, 'k', n);
	s[n] = '\0';
	return s;
}

/* at must pass, at+1 must fail with TOO_BIG on field */
#define EXPECT_LIMIT(ok_rc, bad_rc, err, fieldname)             \
	do {                                                    \
		CU_ASSERT_EQUAL(ok_rc, KAA_OK);                 \
		CU_ASSERT_EQUAL(bad_rc, KAA_ERR_TOO_BIG);       \
		CU_ASSERT_EQUAL((err).code, E(TOO_BIG));        \
		CU_ASSERT_EQUAL((err).err, KAA_ERR_TOO_BIG);    \
		CU_ASSERT_STRING_EQUAL((err).field, fieldname); \
		CU_ASSERT_EQUAL((err).request_id, 42);          \
	} while (0)

static void test_limit_frame(void)
{
	Kaa__Endpoint__V1__Notification m = KAA__ENDPOINT__V1__NOTIFICATION__INIT;
	frame_t f;
	kaa__frame_error err;
	size_t n = 65536 - 16, sz;
	const size_t max = kaa__frame_limits_default.max_frame_bytes;

	frame_init(&f, B(NOTIFICATION), &m);
	/* find the body size making the frame exactly max bytes */
	for (int i = 0; i < 8; i++) {
		char *s = json_of(n);
		m.body_json = s;
		sz = kaa__endpoint__v1__frame__get_packed_size(&f);
		free(s);
		if (sz == max)
			break;
		n = n + max - sz;
	}
	CU_ASSERT_EQUAL_FATAL(sz, max);
	char *ok = json_of(n), *big = json_of(n + 1);
	m.body_json = ok;
	int rc_ok = dec(&f, NULL, &err);
	m.body_json = big;
	int rc_big = dec(&f, NULL, &err);
	EXPECT_LIMIT(rc_ok, rc_big, err, "frame");
	free(ok);
	free(big);
}

static void test_limit_json_fields(void)
{
	kaa__frame_limits lim = kaa__frame_limits_default;
	kaa__frame_error err;
	frame_t f;
	char *a, *b;
	int r1, r2;

	lim.max_frame_bytes = 1 << 20;
	{ /* profile 16 KiB in Hello and ProfileUpdate */
		uint8_t key[32] = {1};
		Kaa__Endpoint__V1__Hello m = KAA__ENDPOINT__V1__HELLO__INIT;
		Kaa__Endpoint__V1__ProfileUpdate p = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;
		m.application_token = "tok";
		m.public_key.data = key;
		m.public_key.len = sizeof(key);
		a = json_of(16384);
		b = json_of(16385);
		frame_init(&f, B(HELLO), &m);
		m.client_profile_json = a;
		r1 = dec(&f, NULL, &err);
		m.client_profile_json = b;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "hello.client_profile_json");
		frame_init(&f, B(PROFILE_UPDATE), &p);
		p.client_profile_json = a;
		r1 = dec(&f, NULL, &err);
		p.client_profile_json = b;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "profile_update.client_profile_json");
		free(a);
		free(b);
	}
	{ /* notification / config / event body 64 KiB */
		Kaa__Endpoint__V1__Notification m = KAA__ENDPOINT__V1__NOTIFICATION__INIT;
		Kaa__Endpoint__V1__Event e = KAA__ENDPOINT__V1__EVENT__INIT;
		Kaa__Endpoint__V1__ConfigDocument doc = KAA__ENDPOINT__V1__CONFIG_DOCUMENT__INIT;
		Kaa__Endpoint__V1__ConfigPush push = KAA__ENDPOINT__V1__CONFIG_PUSH__INIT;
		a = json_of(65536);
		b = json_of(65537);
		frame_init(&f, B(NOTIFICATION), &m);
		m.body_json = a;
		r1 = dec(&f, &lim, &err);
		m.body_json = b;
		r2 = dec(&f, &lim, &err);
		EXPECT_LIMIT(r1, r2, err, "notification.body_json");
		frame_init(&f, B(EVENT), &e);
		e.event_class_fqn = "org.x.E";
		e.body_json = a;
		r1 = dec(&f, &lim, &err);
		e.body_json = b;
		r2 = dec(&f, &lim, &err);
		EXPECT_LIMIT(r1, r2, err, "event.body_json");
		frame_init(&f, B(CONFIG_PUSH), &push);
		push.result_case = KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_FULL;
		push.full = &doc;
		doc.json = a;
		r1 = dec(&f, &lim, &err);
		doc.json = b;
		r2 = dec(&f, &lim, &err);
		EXPECT_LIMIT(r1, r2, err, "config_push.full.json");
		free(a);
		free(b);
	}
	{ /* one log record 8 KiB, with its index */
		char *recs[3];
		Kaa__Endpoint__V1__LogUpload m = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
		a = json_of(8192);
		b = json_of(8193);
		recs[0] = "1";
		recs[1] = "2";
		recs[2] = a;
		m.batch_id = 9;
		m.n_records_json = 3;
		m.records_json = recs;
		frame_init(&f, B(LOG_UPLOAD), &m);
		r1 = dec(&f, NULL, &err);
		recs[2] = b;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "log_upload.records_json[2]");
		CU_ASSERT(err.has_index);
		CU_ASSERT_EQUAL(err.index, 2);
		free(a);
		free(b);
	}
}

static void test_limit_strings(void)
{
	kaa__frame_error err;
	frame_t f;
	uint8_t key[1025];
	Kaa__Endpoint__V1__Hello m = KAA__ENDPOINT__V1__HELLO__INIT;
	char *a = str_of(1024), *b = str_of(1025);
	int r1, r2;

	memset(key, 3, sizeof(key));
	frame_init(&f, B(HELLO), &m);
	m.public_key.data = key;
	m.public_key.len = 1024;
	m.application_token = a;
	r1 = dec(&f, NULL, &err);
	m.application_token = b;
	r2 = dec(&f, NULL, &err);
	EXPECT_LIMIT(r1, r2, err, "hello.application_token");
	m.application_token = "tok";
	m.endpoint_access_token = a;
	r1 = dec(&f, NULL, &err);
	m.endpoint_access_token = b;
	r2 = dec(&f, NULL, &err);
	EXPECT_LIMIT(r1, r2, err, "hello.endpoint_access_token");
	m.endpoint_access_token = "";
	r1 = dec(&f, NULL, &err);
	m.public_key.len = 1025;
	r2 = dec(&f, NULL, &err);
	EXPECT_LIMIT(r1, r2, err, "hello.public_key");

	{ /* owner token */
		Kaa__Endpoint__V1__OwnerAccessToken t = KAA__ENDPOINT__V1__OWNER_ACCESS_TOKEN__INIT;
		Kaa__Endpoint__V1__OwnerAttachRequest q =
			KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__INIT;
		q.credential_case = KAA__ENDPOINT__V1__OWNER_ATTACH_REQUEST__CREDENTIAL_OWNER;
		q.owner = &t;
		t.owner_external_id = "alice";
		t.token = a;
		frame_init(&f, B(OWNER_ATTACH_REQUEST), &q);
		r1 = dec(&f, NULL, &err);
		t.token = b;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "owner_attach_request.owner.token");
	}
	free(a);
	free(b);
	{ /* identifiers: 256 */
		Kaa__Endpoint__V1__Subscribe s = KAA__ENDPOINT__V1__SUBSCRIBE__INIT;
		a = str_of(256);
		b = str_of(257);
		frame_init(&f, B(SUBSCRIBE), &s);
		s.topic_id = a;
		r1 = dec(&f, NULL, &err);
		s.topic_id = b;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "subscribe.topic_id");
		free(a);
		free(b);
	}
}

/* Every string field must be UTF-8: a broken token is refused as an
 * invalid message (not retryable), naming the field; text passes. */
static void test_utf8_strings(void)
{
	kaa__frame_error err;
	frame_t f;
	uint8_t key[8] = {1, 2, 3};
	Kaa__Endpoint__V1__Hello m = KAA__ENDPOINT__V1__HELLO__INIT;
	static const char *const bad[] = {"tok\xff", "\xc3",
					  "a\xed\xa0\x80"
					  "b",
					  "\xf4\x90\x80\x80", "\xe0\x80\xaf"};
	frame_init(&f, B(HELLO), &m);
	m.public_key.data = key;
	m.public_key.len = sizeof(key);
	m.application_token = "t\xc3\xa9st-\xf0\x9f\x98\x80";
	m.sdk_version = "libkaa/0.1.0 \xe2\x82\xac";
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_OK);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m.application_token = (char *)bad[i];
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(err.code,
				KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_MESSAGE);
		CU_ASSERT_STRING_EQUAL(err.field, "hello.application_token");
	}
	m.application_token = "tok";
	m.sdk_version = "libkaa\x80";
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err.field, "hello.sdk_version");
	{
		Kaa__Endpoint__V1__Subscribe s = KAA__ENDPOINT__V1__SUBSCRIBE__INIT;
		frame_init(&f, B(SUBSCRIBE), &s);
		s.topic_id = "12\xfe";
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "subscribe.topic_id");
	}
}

static void test_limit_counts(void)
{
	kaa__frame_error err;
	frame_t f;
	int r1, r2;

	{ /* 1000 records pass, 1001 fail */
		char *recs[1001];
		Kaa__Endpoint__V1__LogUpload m = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
		for (int i = 0; i < 1001; i++)
			recs[i] = "{\"v\":1}";
		m.batch_id = 1;
		m.records_json = recs;
		m.n_records_json = 1000;
		frame_init(&f, B(LOG_UPLOAD), &m);
		r1 = dec(&f, NULL, &err);
		m.n_records_json = 1001;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "log_upload.records_json");
	}
	{ /* topics 1024 */
		static Kaa__Endpoint__V1__Topic ts[1025];
		static Kaa__Endpoint__V1__Topic *tp[1025];
		Kaa__Endpoint__V1__NotificationTopics m =
			KAA__ENDPOINT__V1__NOTIFICATION_TOPICS__INIT;
		for (int i = 0; i < 1025; i++) {
			kaa__endpoint__v1__topic__init(&ts[i]);
			ts[i].topic_id = "t";
			tp[i] = &ts[i];
		}
		m.topics = tp;
		m.n_topics = 1024;
		frame_init(&f, B(NOTIFICATION_TOPICS), &m);
		r1 = dec(&f, NULL, &err);
		m.n_topics = 1025;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "notification_topics.topics");
	}
	{ /* redirect targets 64 */
		Kaa__Endpoint__V1__RedirectTarget ts[65];
		Kaa__Endpoint__V1__RedirectTarget *tp[65];
		Kaa__Endpoint__V1__Redirect m = KAA__ENDPOINT__V1__REDIRECT__INIT;
		for (int i = 0; i < 65; i++) {
			kaa__endpoint__v1__redirect_target__init(&ts[i]);
			ts[i].host = "h";
			ts[i].port = 1;
			tp[i] = &ts[i];
		}
		m.targets = tp;
		m.n_targets = 64;
		frame_init(&f, B(REDIRECT), &m);
		r1 = dec(&f, NULL, &err);
		m.n_targets = 65;
		r2 = dec(&f, NULL, &err);
		EXPECT_LIMIT(r1, r2, err, "redirect.targets");
	}
	{ /* JSON depth 64 */
		char deep_ok[64 * 2 + 1], deep_bad[65 * 2 + 1];
		Kaa__Endpoint__V1__ProfileUpdate p = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;
		memset(deep_ok, '[', 64);
		memset(deep_ok + 64, ']', 64);
		deep_ok[128] = '\0';
		memset(deep_bad, '[', 65);
		memset(deep_bad + 65, ']', 65);
		deep_bad[130] = '\0';
		frame_init(&f, B(PROFILE_UPDATE), &p);
		p.client_profile_json = deep_ok;
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_OK);
		p.client_profile_json = deep_bad;
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(err.code, E(INVALID_PROFILE));
		CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "nested too deep"));
	}
}

static void test_version_and_body(void)
{
	Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;
	kaa__frame_error err;
	frame_t f;

	frame_init(&f, B(ACK), &a);
	f.protocol_version = 0;
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(err.code, E(UNSUPPORTED_VERSION));
	CU_ASSERT_EQUAL(err.request_id, 42);
	f.protocol_version = KAA__PROTOCOL_VERSION + 1;
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(err.code, E(UNSUPPORTED_VERSION));
	CU_ASSERT_STRING_EQUAL(err.field, "protocol_version");

	kaa__endpoint__v1__frame__init(&f);
	f.protocol_version = 1;
	f.request_id = 42;
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(err.code, E(UNSUPPORTED_MESSAGE));
	CU_ASSERT_STRING_EQUAL(err.field, "body");
	CU_ASSERT_EQUAL(err.request_id, 42);

	/* A frame with a body kind this code does not know (field 99, from a
	 * newer peer) decodes as an empty body: UNSUPPORTED_MESSAGE. */
	const uint8_t newer[] = {0x08, 0x01, 0x10, 0x07, 0x9a, 0x06, 0x00};
	frame_t *d = NULL;
	CU_ASSERT_EQUAL(kaa__frame_decode(newer, sizeof(newer), NULL, &d, &err), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(err.code, E(UNSUPPORTED_MESSAGE));
	CU_ASSERT_EQUAL(err.request_id, 7);
	/* Unknown fields inside a known message are ignored. */
	const uint8_t extra[] = {0x08, 0x01, 0x10, 0x07, 0x6a, 0x03, 0xa0, 0x06, 0x05};
	CU_ASSERT_EQUAL(kaa__frame_decode(extra, sizeof(extra), NULL, &d, &err), KAA_OK);
	CU_ASSERT_EQUAL(d->body_case, B(ACK));
	/* ... and dropped: the re-encoded frame has only known fields */
	uint8_t *re = NULL;
	size_t relen = 0;
	const uint8_t clean[] = {0x08, 0x01, 0x10, 0x07, 0x6a, 0x00};
	CU_ASSERT_EQUAL(kaa__frame_encode(d, &re, &relen), KAA_OK);
	CU_ASSERT(relen == sizeof(clean) && memcmp(re, clean, relen) == 0);
	free(re);
	kaa__frame_free(d);
	/* Field number 0 (here in a non-canonical key, which protobuf-c lets
	 * through) is not protobuf: found by fuzzing. */
	const uint8_t field0[] = {0x08, 0x01, 0xfa, 0x03, 0x0c, 0x81, 0x00, 0x00, 0x00,
				  0x11, 0x02, 0x68, 0x31, 0x0a, 0x02, 0x68, 0x33};
	CU_ASSERT_EQUAL(kaa__frame_decode(field0, sizeof(field0), NULL, &d, &err),
			KAA_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(err.code, E(BAD_FRAME));
	CU_ASSERT_PTR_NULL(d);

	/* Missing required fields. */
	Kaa__Endpoint__V1__LogUpload l = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
	char *rec[] = {"1"};
	l.records_json = rec;
	l.n_records_json = 1;
	frame_init(&f, B(LOG_UPLOAD), &l);
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(err.code, E(INVALID_MESSAGE));
	CU_ASSERT_STRING_EQUAL(err.field, "log_upload.batch_id");
	Kaa__Endpoint__V1__Hello h = KAA__ENDPOINT__V1__HELLO__INIT;
	h.application_token = "tok";
	frame_init(&f, B(HELLO), &h);
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err.field, "hello.public_key");
	Kaa__Endpoint__V1__ConfigPush p = KAA__ENDPOINT__V1__CONFIG_PUSH__INIT;
	frame_init(&f, B(CONFIG_PUSH), &p);
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
	CU_ASSERT_STRING_EQUAL(err.field, "config_push.result");
}

static void test_bad_bytes(void)
{
	Kaa__Endpoint__V1__Notification m = KAA__ENDPOINT__V1__NOTIFICATION__INIT;
	kaa__frame_error err;
	frame_t f, *d = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	m.topic_id = "t1";
	m.seq = 3;
	m.body_json = "{\"a\":[1,2,3]}";
	frame_init(&f, B(NOTIFICATION), &m);
	CU_ASSERT_EQUAL_FATAL(kaa__frame_encode(&f, &buf, &len), KAA_OK);
	/* Every truncation fails; inside the body it is undecodable bytes. The
	 * body starts after version (2 bytes) and request_id (2 bytes). */
	for (size_t n = 0; n < len; n++) {
		int rc = kaa__frame_decode(buf, n, NULL, &d, &err);
		CU_ASSERT_NOT_EQUAL(rc, KAA_OK);
		CU_ASSERT_PTR_NULL(d);
		if (n > 4) {
			CU_ASSERT_EQUAL(rc, KAA_ERR_PROTOCOL);
			CU_ASSERT_EQUAL(err.code, E(BAD_FRAME));
			/* request_id recovered from the readable prefix */
			CU_ASSERT_EQUAL(err.request_id, 42);
		}
	}
	free(buf);

	const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
				   0xff, 0xff, 0xff, 0xff, 0xff};
	CU_ASSERT_EQUAL(kaa__frame_decode(garbage, sizeof(garbage), NULL, &d, &err),
			KAA_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(err.code, E(BAD_FRAME));
	CU_ASSERT_EQUAL(err.request_id, 0);
	const uint8_t text[] = "GET / HTTP/1.1\r\n";
	CU_ASSERT_EQUAL(kaa__frame_decode(text, sizeof(text) - 1, NULL, &d, &err),
			KAA_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(kaa__frame_decode(NULL, 0, NULL, &d, &err), KAA_ERR_PROTOCOL);
	CU_ASSERT_EQUAL(err.code, E(UNSUPPORTED_VERSION)); /* empty: version 0 */
	CU_ASSERT_EQUAL(kaa__frame_encode(NULL, &buf, &len), KAA_ERR_INVAL);
}

static void test_invalid_json_fields(void)
{
	const char *bad = "{\"a\":1,}";
	kaa__frame_error err;
	frame_t f;
	uint8_t key[4] = {1, 2, 3, 4};

	{
		Kaa__Endpoint__V1__Hello m = KAA__ENDPOINT__V1__HELLO__INIT;
		m.application_token = "tok";
		m.public_key.data = key;
		m.public_key.len = 4;
		m.client_profile_json = (char *)bad;
		frame_init(&f, B(HELLO), &m);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(err.code, E(INVALID_PROFILE));
		CU_ASSERT_STRING_EQUAL(err.field, "hello.client_profile_json");
		CU_ASSERT_PTR_NOT_NULL(strstr(err.message, "hello.client_profile_json"));
	}
	{
		Kaa__Endpoint__V1__ProfileUpdate m = KAA__ENDPOINT__V1__PROFILE_UPDATE__INIT;
		m.client_profile_json = (char *)bad;
		frame_init(&f, B(PROFILE_UPDATE), &m);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(err.code, E(INVALID_PROFILE));
		CU_ASSERT_STRING_EQUAL(err.field, "profile_update.client_profile_json");
		m.client_profile_json = ""; /* required here */
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "profile_update.client_profile_json");
	}
	{
		Kaa__Endpoint__V1__ConfigDocument doc = KAA__ENDPOINT__V1__CONFIG_DOCUMENT__INIT;
		Kaa__Endpoint__V1__ConfigPatch p = KAA__ENDPOINT__V1__CONFIG_PATCH__INIT;
		Kaa__Endpoint__V1__ConfigSyncResponse r =
			KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__INIT;
		Kaa__Endpoint__V1__ConfigPush push = KAA__ENDPOINT__V1__CONFIG_PUSH__INIT;
		doc.json = (char *)bad;
		p.patch_json = (char *)bad;
		r.result_case = KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_FULL;
		r.full = &doc;
		frame_init(&f, B(CONFIG_SYNC_RESPONSE), &r);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(err.code, E(INVALID_MESSAGE));
		CU_ASSERT_STRING_EQUAL(err.field, "config_sync_response.full.json");
		r.result_case = KAA__ENDPOINT__V1__CONFIG_SYNC_RESPONSE__RESULT_PATCH;
		r.patch = &p;
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "config_sync_response.patch.patch_json");
		push.result_case = KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_FULL;
		push.full = &doc;
		frame_init(&f, B(CONFIG_PUSH), &push);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "config_push.full.json");
		push.result_case = KAA__ENDPOINT__V1__CONFIG_PUSH__RESULT_PATCH;
		push.patch = &p;
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "config_push.patch.patch_json");
	}
	{
		Kaa__Endpoint__V1__Notification m = KAA__ENDPOINT__V1__NOTIFICATION__INIT;
		m.body_json = (char *)bad;
		frame_init(&f, B(NOTIFICATION), &m);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "notification.body_json");
	}
	{
		Kaa__Endpoint__V1__Event m = KAA__ENDPOINT__V1__EVENT__INIT;
		m.event_class_fqn = "org.x.E";
		m.body_json = (char *)bad;
		frame_init(&f, B(EVENT), &m);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_STRING_EQUAL(err.field, "event.body_json");
	}
	{
		char *recs[] = {"{}", "[1]", "{\"t\":01}", "{}"};
		Kaa__Endpoint__V1__LogUpload m = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
		m.batch_id = 5;
		m.n_records_json = 4;
		m.records_json = recs;
		frame_init(&f, B(LOG_UPLOAD), &m);
		CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(err.code, E(INVALID_LOG_RECORD));
		CU_ASSERT_STRING_EQUAL(err.field, "log_upload.records_json[2]");
		CU_ASSERT(err.has_index);
		CU_ASSERT_EQUAL(err.index, 2);
	}
}

static void test_json_check(void)
{
	static const char *good[] = {
		"0",
		"-0",
		"1.5e-3",
		"-12E+2",
		"true",
		"false",
		"null",
		"\"\"",
		" {} ",
		"[]",
		"{\"a\":{\"b\":[1,{\"c\":null}]}}",
		"\"\\u00e9\\n\\\"\\/\"",
		"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
		"[1 , 2\t,\r\n3]",
	};
	static const char *bad[] = {
		"",
		" ",
		"01",
		"1.",
		".5",
		"-",
		"1e",
		"+1",
		"tru",
		"nul",
		"[1,]",
		"{\"a\"}",
		"{\"a\":1,}",
		"{a:1}",
		"[1 2]",
		"\"abc",
		"\"\\x\"",
		"\"\\u12\"",
		"\"\x01\"",
		"\"\xc0\xaf\"",
		"\"\xed\xa0\x80\"",
		"\"\xf5\x80\x80\x80\"",
		"\"\xe2\x82\"",
		"1 2",
		"{}}",
		"[",
		"NaN",
		"'a'",
	};
	size_t off;
	const char *why;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = kaa__json_check(good[i], strlen(good[i]), 64, &off, &why);
		if (rc != KAA_OK)
			fprintf(stderr, "\ngood[%zu] rejected: %s at %zu\n", i, why, off);
		CU_ASSERT_EQUAL(rc, KAA_OK);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		int rc = kaa__json_check(bad[i], strlen(bad[i]), 64, &off, &why);
		if (rc == KAA_OK)
			fprintf(stderr, "\nbad[%zu] accepted\n", i);
		CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
		CU_ASSERT_PTR_NOT_NULL(why);
	}
	/* embedded NUL is not JSON */
	CU_ASSERT_EQUAL(kaa__json_check("[1]\0", 4, 64, NULL, NULL), KAA_ERR_INVAL);
}

static void test_error_frame(void)
{
	Kaa__Endpoint__V1__LogUpload m = KAA__ENDPOINT__V1__LOG_UPLOAD__INIT;
	char *recs[] = {"{}", "{bad"};
	kaa__frame_error err, err2;
	frame_t f, *d = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;

	m.batch_id = 77;
	m.n_records_json = 2;
	m.records_json = recs;
	frame_init(&f, B(LOG_UPLOAD), &m);
	f.request_id = 1234;
	CU_ASSERT_EQUAL(dec(&f, NULL, &err), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__frame_encode_error(&err, &buf, &len), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__frame_decode(buf, len, NULL, &d, &err2), KAA_OK);
	CU_ASSERT_EQUAL(d->request_id, 1234);
	CU_ASSERT_EQUAL_FATAL(d->body_case, B(ERROR));
	CU_ASSERT_EQUAL(d->error->code, E(INVALID_LOG_RECORD));
	CU_ASSERT_EQUAL(d->error->request_id, 1234);
	CU_ASSERT_EQUAL(d->error->index, 1);
	CU_ASSERT_STRING_EQUAL(d->error->field, "log_upload.records_json[1]");
	CU_ASSERT_STRING_EQUAL(d->error->message, err.message);
	kaa__frame_free(d);
	free(buf);

	/* version errors tell the device what the server speaks */
	kaa__frame_error_set(&err, KAA_ERR_PROTOCOL, E(UNSUPPORTED_VERSION), 5, "protocol_version",
			     "version %u", 9u);
	CU_ASSERT_EQUAL(kaa__frame_encode_error(&err, &buf, &len), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__frame_decode(buf, len, NULL, &d, &err2), KAA_OK);
	CU_ASSERT_EQUAL(d->error->supported_version, KAA__PROTOCOL_VERSION);
	CU_ASSERT_STRING_EQUAL(d->error->message, "version 9");
	kaa__frame_free(d);
	free(buf);
}

static const kaa__cu_test tests[] = {
	{"round trip: session messages", test_roundtrip_session},
	{"round trip: profile, config, notifications, logs", test_roundtrip_data},
	{"round trip: events and owners", test_roundtrip_events},
	{"limit: frame bytes", test_limit_frame},
	{"limit: JSON field sizes", test_limit_json_fields},
	{"limit: tokens, key, identifiers", test_limit_strings},
	{"UTF-8 in every string field", test_utf8_strings},
	{"limit: records, topics, targets, depth", test_limit_counts},
	{"version, empty body, required fields", test_version_and_body},
	{"truncated and garbage bytes", test_bad_bytes},
	{"invalid JSON in every JSON field", test_invalid_json_fields},
	{"JSON syntax checker", test_json_check},
	{"error frames", test_error_frame},
};

int main(void)
{
	return kaa__cu_run("endpoint-codec", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
