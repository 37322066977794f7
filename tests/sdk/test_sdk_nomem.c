/*
 * The SDK never aborts on out-of-memory: every allocation it makes can
 * fail, and each operation then returns KAA_ERR_NOMEM (or another error it
 * documents) and leaks nothing. This binary is linked with
 * -Wl,--wrap=malloc,... so that the SDK's own allocations go through
 * wrap_* below; each scenario runs once per allocation it makes, failing
 * the k-th one, until a run completes without reaching the injected
 * failure. ASan (make test) reports any leak at exit; a crash fails the run.
 */
#include "cu_main.h"
#include "test_util.h"
#include "base/error.h"
#include "kaa/kaa.h"
#include "sdk_events.h"
#include "sdk_internal.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long fail_at = -1; /* the allocation to fail (0-based), -1: none */
static long seen;         /* allocations since arming */
static int injected;      /* the armed failure happened */

/* Only the test's thread counts: the runtime's service thread allocates on
 * its own schedule (timers, sweeps), which would make the k-th allocation a
 * different one on every run. The calls the application makes are the ones
 * whose failure must come back as an error. */
static pthread_t test_thread;

static int fail_now(void)
{
	if (fail_at < 0 || !pthread_equal(pthread_self(), test_thread))
		return 0;
	if (seen++ == fail_at) {
		injected = 1;
		return 1;
	}
	return 0;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fail_now() ? NULL : __real_strndup(s, n);
}

static char dir[256];

/* Runs fn once per allocation it makes, failing that allocation; each run
 * must return KAA_OK or KAA_ERR_NOMEM (another code is reported). The last
 * run, which reaches no injected failure, must return KAA_OK. */
static void exhaust(const char *what, int (*fn)(void))
{
	long k;
	int rc = KAA_ERR_INTERNAL, others = 0;
	for (k = 0; k < 100000; k++) {
		seen = 0;
		injected = 0;
		fail_at = k;
		rc = fn();
		fail_at = -1;
		if (!injected)
			break;
		if (rc != KAA_ERR_NOMEM && rc != KAA_OK) {
			fprintf(stderr, "%s: allocation %ld failed, got %s\n", what, k,
				kaa_strerror(rc));
			others++;
		}
	}
	CU_ASSERT_EQUAL(rc, KAA_OK);
	CU_ASSERT_EQUAL(others, 0);
	CU_ASSERT(k > 0); /* the scenario allocates at all */
	fprintf(stderr, "%s: %ld allocations, each failed once\n", what, k);
}

static int json_ops(void)
{
	static const char doc[] = "{\"b\":[1,2,{\"x\":\"\\u00e9\"}],\"a\":{\"k\":true,\"n\":null}}";
	static const char patch[] = "{\"a\":{\"k\":null,\"z\":1.5},\"c\":\"new\"}";
	kaa__sj *v = NULL, *p = NULL, *m = NULL;
	char *canon = NULL, hex[65];
	size_t len = 0;
	int rc = kaa__sj_parse(doc, sizeof(doc) - 1, 4096, 16, &v);
	if (rc == KAA_OK)
		rc = kaa__sj_parse(patch, sizeof(patch) - 1, 4096, 16, &p);
	if (rc == KAA_OK)
		rc = kaa__sj_merge_patch(v, p, &m);
	if (rc == KAA_OK)
		rc = kaa__sj_canonical(m, &canon, &len);
	if (rc == KAA_OK)
		rc = kaa__sj_hash_text(doc, sizeof(doc) - 1, hex);
	free(canon);
	kaa__sj_free(m);
	kaa__sj_free(p);
	kaa__sj_free(v);
	return rc;
}

static int log_queue_ops(void)
{
	char path[300];
	kaa__lq *q = NULL;
	kaa__lq_batch b;
	size_t cut = 0;
	snprintf(path, sizeof(path), "%s/nomem.q", dir);
	unlink(path);
	int rc = kaa__lq_open(path, 100, false, &q, &cut);
	for (int i = 0; rc == KAA_OK && i < 20; i++) {
		char rec[32];
		int n = snprintf(rec, sizeof(rec), "{\"i\":%d}", i);
		rc = kaa__lq_append(q, rec, (size_t)n);
	}
	if (rc == KAA_OK)
		rc = kaa__lq_new_batch(q, 8, 4096, &b);
	if (rc == KAA_OK)
		rc = kaa__lq_ack(q, b.id);
	kaa__lq_close(q);
	q = NULL;
	if (rc == KAA_OK) /* reopening reads the file back */
		rc = kaa__lq_open(path, 100, false, &q, &cut);
	kaa__lq_close(q);
	return rc;
}

static int state_ops(void)
{
	kaa__sdk_state st = {0}, back = {0};
	int rc = KAA_OK;
	snprintf(st.endpoint_key_hash, sizeof(st.endpoint_key_hash), "abc");
	for (int i = 0; i < 40 && rc == KAA_OK; i++) {
		char topic[32];
		snprintf(topic, sizeof(topic), "topic-%d", i);
		kaa__stream_pos *s = kaa__sdk_state_stream(&st, topic);
		if (!s)
			rc = KAA_ERR_NOMEM;
		else
			s->last_seq = (uint64_t)i;
	}
	if (rc == KAA_OK)
		rc = kaa__sdk_state_save(dir, &st, false);
	if (rc == KAA_OK)
		rc = kaa__sdk_state_load(dir, &back);
	if (rc == KAA_OK && back.n_streams != 40)
		rc = KAA_ERR_INTERNAL; /* a load that dropped streams without an error */
	kaa__sdk_state_clear(&back);
	kaa__sdk_state_clear(&st);
	return rc;
}

static int events_ops(void)
{
	kaa__dedup *d = NULL;
	kaa__outbox ob;
	int rc = kaa__dedup_new(64, &d);
	for (int i = 0; rc == KAA_OK && i < 200; i++) {
		char src[32];
		snprintf(src, sizeof(src), "source-%d", i % 80);
		rc = kaa__dedup_check(d, src, (uint64_t)i);
		if (rc > 0) /* "seen before" is not an error */
			rc = KAA_OK;
	}
	kaa__dedup_free(d);
	kaa__outbox_init(&ob, 100);
	for (uint64_t s = 1; rc == KAA_OK && s <= 50; s++)
		rc = kaa__outbox_push(&ob, s, "org.example.Ping", s % 2 ? "target" : NULL, "{}");
	kaa__outbox_clear(&ob);
	return rc;
}

static int frame_ops(void)
{
	char *recs[3] = {"{\"a\":1}", "{\"a\":2}", "{\"a\":3}"};
	uint8_t *out = NULL;
	size_t len = 0;
	int rc = kaa__sdk_frame_log_upload(7, 9, recs, 3, &out, &len);
	free(out);
	out = NULL;
	if (rc == KAA_OK)
		rc = kaa__sdk_frame_event(8, "org.example.Ping", "t", "{\"x\":1}", 3, &out, &len);
	free(out);
	out = NULL;
	if (rc == KAA_OK)
		rc = kaa__sdk_frame_ping(9, &out, &len);
	free(out);
	return rc;
}

/* The runtime's lws context loads the system CA store (tens of ms), so the
 * client scenario shares one runtime made without injection; the runtime's
 * own allocations are exhausted separately. */
static kaa_runtime *shared_rt;

static int runtime_ops(void)
{
	kaa_runtime *rt = NULL;
	int rc = kaa_runtime_new(&rt);
	kaa_runtime_free(rt);
	return rc;
}

static int client_ops(void)
{
	static const char *const boot[] = {"127.0.0.1:1"};
	char sdir[300];
	kaa_client *c = NULL;
	/* A fresh state directory per run: the queue the last run left would
	 * be replayed, and each run would allocate more than the one before. */
	snprintf(sdir, sizeof(sdir), "%s/client-%ld", dir, fail_at);
	kaa_client_options o = {.application_token = "0123456789abcdef",
				.bootstrap_servers = boot,
				.bootstrap_count = 1,
				.state_dir = sdir,
				.log_no_fsync = true,
				.state_no_fsync = true};
	int rc = kaa_client_new(shared_rt, &o, &c);
	if (rc == KAA_OK)
		rc = kaa_client_log_add(c, "{\"a\":1}", 7);
	if (rc == KAA_OK)
		rc = kaa_client_subscribe(c, "topic-1");
	kaa_client_free(c);
	return rc;
}

static void test_json(void)
{
	exhaust("json", json_ops);
}

static void test_log_queue(void)
{
	exhaust("log queue", log_queue_ops);
}

static void test_state(void)
{
	exhaust("state", state_ops);
}

static void test_events(void)
{
	exhaust("events", events_ops);
}

static void test_frames(void)
{
	exhaust("frames", frame_ops);
}

static void test_runtime(void)
{
	exhaust("runtime", runtime_ops);
}

static void test_client(void)
{
	CU_ASSERT_FATAL(kaa_runtime_new(&shared_rt) == KAA_OK);
	exhaust("client", client_ops);
	kaa_runtime_free(shared_rt);
	shared_rt = NULL;
}

static int setup(void)
{
	return kaa__test_tmpdir(dir, sizeof(dir), "kaa-sdk-nomem");
}

static int teardown(void)
{
	return kaa__test_rm_tree(dir);
}

static const kaa__cu_test tests[] = {
	{"JSON parse, merge, canonical form", test_json},
	{"log queue", test_log_queue},
	{"endpoint state", test_state},
	{"event de-dup and outbox", test_events},
	{"frames", test_frames},
	{"runtime", test_runtime},
	{"client", test_client},
};

int main(void)
{
	test_thread = pthread_self();
	return kaa__cu_run("sdk_nomem", tests, KAA__CU_COUNT(tests), setup, teardown);
}
