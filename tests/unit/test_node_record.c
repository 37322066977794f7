/* Node record JSON, registry view logic and backoff. */
#include "cu_main.h"
#include "base/backoff.h"
#include "base/error.h"
#include "coord/node_record.h"
#include "coord/registry.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_roundtrip(void)
{
	kaa__node_record r = {0}, d = {0};
	char *json = NULL;
	size_t len = 0;

	r.id = "node-1";
	r.host = "10.0.0.7";
	r.services[0] = "control";
	r.services[1] = "operations";
	r.n_services = 2;
	r.ports[0].name = "control";
	r.ports[0].port = 8080;
	r.ports[1].name = "operations";
	r.ports[1].port = 9080;
	r.n_ports = 2;
	r.sessions = 12345;
	r.load = 0.5;
	r.draining = true;
	r.version = "0.1.0";
	CU_ASSERT_EQUAL_FATAL(kaa__node_record_encode(&r, &json, &len), KAA_OK);
	CU_ASSERT_STRING_EQUAL(
		json, "{\"id\":\"node-1\",\"services\":[\"control\",\"operations\"],"
		      "\"host\":\"10.0.0.7\",\"ports\":{\"control\":8080,\"operations\":9080},"
		      "\"sessions\":12345,\"load\":0.5,\"draining\":true,\"version\":\"0.1.0\"}");
	CU_ASSERT_EQUAL(len, strlen(json));
	CU_ASSERT_EQUAL_FATAL(kaa__node_record_decode(json, len, &d), KAA_OK);
	CU_ASSERT_STRING_EQUAL(d.id, "node-1");
	CU_ASSERT_EQUAL(d.n_services, 2);
	CU_ASSERT_STRING_EQUAL(d.services[1], "operations");
	CU_ASSERT_EQUAL(kaa__node_record_port(&d, "operations"), 9080);
	CU_ASSERT_EQUAL(kaa__node_record_port(&d, "bootstrap"), 0);
	CU_ASSERT_TRUE(kaa__node_record_has_service(&d, "control"));
	CU_ASSERT_FALSE(kaa__node_record_has_service(&d, "bootstrap"));
	CU_ASSERT_EQUAL(d.sessions, 12345);
	CU_ASSERT_DOUBLE_EQUAL(d.load, 0.5, 1e-9);
	CU_ASSERT_TRUE(d.draining);
	free(json);
	kaa__node_record_clear(&d);
	kaa__node_record_clear(NULL);

	/* Escaping: quotes and control characters survive a round trip. */
	r.id = "we\"ird\n";
	CU_ASSERT_EQUAL_FATAL(kaa__node_record_encode(&r, &json, &len), KAA_OK);
	CU_ASSERT_EQUAL(kaa__node_record_decode(json, len, &d), KAA_OK);
	CU_ASSERT_STRING_EQUAL(d.id, "we\"ird\n");
	free(json);
	kaa__node_record_clear(&d);

	/* The listener's TLS and the advertised URLs, written only when set. */
	r.id = "node-1";
	r.draining = false;
	r.tls = true;
	r.advertise[0] = "wss://ops-0.devices.example.com:443/ops/ops-0";
	r.advertise[1] = "wss://10.0.0.7:9080/";
	r.n_advertise = 2;
	CU_ASSERT_EQUAL_FATAL(kaa__node_record_encode(&r, &json, &len), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(json,
				      ",\"tls\":true,\"advertise\":[\"wss://ops-0.devices."
				      "example.com:443/ops/ops-0\",\"wss://10.0.0.7:9080/\"]}"));
	CU_ASSERT_EQUAL_FATAL(kaa__node_record_decode(json, len, &d), KAA_OK);
	CU_ASSERT_TRUE(d.tls);
	CU_ASSERT_EQUAL(d.n_advertise, 2);
	CU_ASSERT_STRING_EQUAL(d.advertise[0], "wss://ops-0.devices.example.com:443/ops/ops-0");
	free(json);
	kaa__node_record_clear(&d);
	r.tls = false;
	r.n_advertise = 0;

	r.id = NULL;
	CU_ASSERT_EQUAL(kaa__node_record_encode(&r, &json, &len), KAA_ERR_INVAL);
}

static void test_decode_bad(void)
{
	static const char *bad[] = {
		"",
		"{",
		"[]",
		"null",
		"{\"services\":[]}",                      /* no id */
		"{\"id\":\"\"}",                          /* empty id */
		"{\"id\":5}",                             /* wrong type */
		"{\"id\":\"a\",\"sessions\":\"many\"}",   /* wrong type */
		"{\"id\":\"a\",\"sessions\":-1}",         /* negative */
		"{\"id\":\"a\",\"ports\":{\"x\":70000}}", /* out of range */
		"{\"id\":\"a\",\"ports\":[]}",
		"{\"id\":\"a\",\"draining\":\"yes\"}",
		"{\"id\":\"a\",\"services\":[1]}",
		"{\"id\":\"a\",\"services\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
		"{\"id\":\"a\",\"load\":\"x\"}",
		"{\"id\":\"a\",\"tls\":1}",
		"{\"id\":\"a\",\"advertise\":\"ws://h/\"}",
		"{\"id\":\"a\",\"advertise\":[1]}",
		"{\"id\":\"a\",\"advertise\":[\"1\",\"2\",\"3\",\"4\",\"5\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		kaa__node_record d;
		int rc = kaa__node_record_decode(bad[i], strlen(bad[i]), &d);
		CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
		if (rc != KAA_ERR_INVAL)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CU_ASSERT_PTR_NULL(d.id);
	}
	/* Embedded NUL and oversize input. */
	kaa__node_record d;
	CU_ASSERT_EQUAL(kaa__node_record_decode("{\"id\":\"a\"}\0x", 12, &d), KAA_ERR_INVAL);
	size_t big = KAA_NODE_RECORD_MAX_BYTES + 1;
	char *buf = malloc(big);
	memset(buf, ' ', big);
	CU_ASSERT_EQUAL(kaa__node_record_decode(buf, big, &d), KAA_ERR_TOO_BIG);
	free(buf);
	/* An advertised URL longer than KAA_NODE_ADVERTISE_MAX_BYTES. */
	buf = malloc(KAA_NODE_ADVERTISE_MAX_BYTES + 64);
	int n = snprintf(buf, 64, "{\"id\":\"a\",\"advertise\":[\"ws://h/");
	memset(buf + n, 'p', KAA_NODE_ADVERTISE_MAX_BYTES);
	strcpy(buf + n + KAA_NODE_ADVERTISE_MAX_BYTES - 7, "\"]}");
	CU_ASSERT_EQUAL(kaa__node_record_decode(buf, strlen(buf), &d), KAA_OK); /* 1024 bytes */
	kaa__node_record_clear(&d);
	strcpy(buf + n + KAA_NODE_ADVERTISE_MAX_BYTES - 6, "\"]}");
	CU_ASSERT_EQUAL(kaa__node_record_decode(buf, strlen(buf), &d), KAA_ERR_INVAL);
	free(buf);
	/* Unknown fields are ignored (newer nodes may add some). */
	const char *fwd = "{\"id\":\"a\",\"future\":{\"x\":[1,2]}}";
	CU_ASSERT_EQUAL(kaa__node_record_decode(fwd, strlen(fwd), &d), KAA_OK);
	kaa__node_record_clear(&d);
}

static kaa__kv mk(const char *key, const char *val, int64_t rev)
{
	kaa__kv kv = {0};
	kaa__kv_set(&kv, key, strlen(key), val, strlen(val));
	kv.mod_rev = rev;
	return kv;
}

static void test_view(void)
{
	const char *p = "/kaa/c/nodes/";
	kaa__node_view v = {0};
	kaa__kv items[3] = {mk("/kaa/c/nodes/b", "{\"id\":\"b\"}", 1),
			    mk("/kaa/c/nodes/a", "{\"id\":\"a\",\"sessions\":3}", 2),
			    mk("/kaa/c/nodes/x", "garbage", 3)};
	kaa__kv_list snap = {items, 3, 3};

	kaa__node_view_reset(&v, p, &snap);
	CU_ASSERT_EQUAL(v.n, 2);
	CU_ASSERT_EQUAL(v.skipped, 1);
	CU_ASSERT_STRING_EQUAL(v.recs[0].id, "a"); /* sorted */
	CU_ASSERT_EQUAL(v.recs[0].sessions, 3);

	kaa__watch_event ev[4] = {
		{KAA_WATCH_PUT, mk("/kaa/c/nodes/c", "{\"id\":\"c\"}", 4)},
		{KAA_WATCH_PUT, mk("/kaa/c/nodes/a", "{\"id\":\"a\",\"sessions\":7}", 5)},
		{KAA_WATCH_DELETE, mk("/kaa/c/nodes/b", "", 6)},
		/* a record whose id does not match its key is rejected */
		{KAA_WATCH_PUT, mk("/kaa/c/nodes/d", "{\"id\":\"e\"}", 7)},
	};
	kaa__node_view_apply(&v, p, ev, 4);
	CU_ASSERT_EQUAL(v.n, 2);
	CU_ASSERT_STRING_EQUAL(v.recs[0].id, "a");
	CU_ASSERT_EQUAL(v.recs[0].sessions, 7);
	CU_ASSERT_STRING_EQUAL(v.recs[1].id, "c");
	CU_ASSERT_EQUAL(v.skipped, 2);

	/* A good record turning bad drops it from the view. */
	kaa__watch_event ev2 = {KAA_WATCH_PUT, mk("/kaa/c/nodes/a", "{\"id\":", 8)};
	kaa__node_view_apply(&v, p, &ev2, 1);
	CU_ASSERT_EQUAL(v.n, 1);
	CU_ASSERT_STRING_EQUAL(v.recs[0].id, "c");

	/* A reset replaces everything. */
	kaa__kv_list empty = {NULL, 0, 9};
	kaa__node_view_reset(&v, p, &empty);
	CU_ASSERT_EQUAL(v.n, 0);

	kaa__node_view_clear(&v);
	for (int i = 0; i < 3; i++)
		kaa__kv_clear(&items[i]);
	for (int i = 0; i < 4; i++)
		kaa__kv_clear(&ev[i].kv);
	kaa__kv_clear(&ev2.kv);
}

static void test_backoff(void)
{
	kaa__backoff b;
	kaa__backoff_init(&b, 100, 1000);
	int64_t prev_base = 100;
	for (int i = 0; i < 20; i++) {
		int64_t base = b.current_ms;
		int64_t d = kaa__backoff_next(&b);
		CU_ASSERT(d >= base / 2 && d <= base);
		CU_ASSERT(b.current_ms >= prev_base);
		CU_ASSERT(b.current_ms <= 1000);
		prev_base = b.current_ms;
	}
	CU_ASSERT_EQUAL(b.current_ms, 1000);
	kaa__backoff_reset(&b);
	CU_ASSERT_EQUAL(b.current_ms, 100);
	/* Jitter: two sequences differ somewhere. */
	kaa__backoff b2;
	kaa__backoff_init(&b2, 1000, 1000);
	b2.rng ^= 0x1234567;
	int same = 0;
	for (int i = 0; i < 50; i++)
		same += kaa__backoff_next(&b) == kaa__backoff_next(&b2);
	CU_ASSERT(same < 50);
	/* Degenerate arguments are clamped. */
	kaa__backoff_init(&b, 0, -5);
	CU_ASSERT_EQUAL(b.initial_ms, 1);
	CU_ASSERT_EQUAL(b.max_ms, 1);
	CU_ASSERT(kaa__backoff_next(&b) >= 0);
}

static void test_strerror(void)
{
	CU_ASSERT_STRING_EQUAL(kaa_strerror(KAA_OK), "ok");
	CU_ASSERT_STRING_EQUAL(kaa_strerror(KAA_ERR_LEASE_LOST), "lease lost");
	CU_ASSERT_STRING_EQUAL(kaa_strerror(12345), "unknown error");
	CU_ASSERT_EQUAL(kaa__err_from_errno(ECONNREFUSED), KAA_ERR_UNAVAILABLE);
	CU_ASSERT_EQUAL(kaa__err_from_errno(0), KAA_ERR_IO);
}

static const kaa__cu_test tests[] = {
	{"encode/decode round trip", test_roundtrip},
	{"malformed records rejected", test_decode_bad},
	{"registry view logic", test_view},
	{"jittered exponential backoff", test_backoff},
	{"error strings", test_strerror},
};

int main(void)
{
	return kaa__cu_run("node-record", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
