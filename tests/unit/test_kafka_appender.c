/*
 * Unit tests of the Kafka log appender (lib/appender/kafka_appender.c)
 * without a broker: settings validation through kaa__log_appender_check
 * (the path the control service's REST validation takes), what open
 * refuses, and the answers that do not need a broker: the in-flight limit
 * (RATE_LIMITED at once), a batch resent while in flight (answered with
 * the first one), and close with batches pending (RETRY "appender
 * closed", each callback once), and a close from inside a callback (the
 * other batches still answered once). Delivery itself is tested against a real
 * broker by e2e/test_kafka.sh.
 */
#include "appender/log_appender.h"

#include "base/error.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check(const char *json, char *err, size_t errlen)
{
	return kaa__log_appender_check(json, err, errlen);
}

#define OK(json)                                                          \
	do {                                                              \
		char e_[256] = "";                                        \
		int rc_ = check(json, e_, sizeof(e_));                    \
		if (rc_ != KAA_OK)                                        \
			fprintf(stderr, "refused: %s -> %s\n", json, e_); \
		CU_ASSERT_EQUAL(rc_, KAA_OK);                             \
	} while (0)

/* refused, and the reason names the member */
#define BAD(json, path)                                                               \
	do {                                                                          \
		char e_[256] = "";                                                    \
		int rc_ = check(json, e_, sizeof(e_));                                \
		CU_ASSERT_EQUAL(rc_, KAA_ERR_INVAL);                                  \
		if (strncmp(e_, path, strlen(path)) != 0) {                           \
			fprintf(stderr, "%s: want %s, got \"%s\"\n", json, path, e_); \
			CU_FAIL("reason");                                            \
		}                                                                     \
	} while (0)

#define K "{\"type\":\"kafka\",\"bootstrap_servers\":\"127.0.0.1:9092\""

static void test_settings(void)
{
	OK(K "}");
	OK("{\"type\":\"kafka\",\"bootstrap_servers\":\"a.example:9092,b.example:9093,[::1]:9094\"}");
	OK(K ",\"topic\":\"logs.{app_token}.v{schema_version}\",\"key\":\"none\","
	     "\"headers\":false,\"compression\":\"zstd\",\"max_inflight_kb\":64,"
	     "\"linger_ms\":0,\"delivery_timeout_ms\":10000}");
	OK(K ",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"SCRAM-SHA-256\","
	     "\"sasl_username\":\"u\",\"sasl_password\":\"p\"}");
	OK(K
	   ",\"security_protocol\":\"sasl_ssl\",\"sasl_mechanism\":\"PLAIN\","
	   "\"sasl_username\":\"u\",\"sasl_password\":\"p\","
	   "\"ssl_ca_pem\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}");
	OK(K ",\"security_protocol\":\"ssl\"}");

	BAD("{\"type\":\"kafka\"}", "settings.bootstrap_servers");
	BAD("{\"type\":\"kafka\",\"bootstrap_servers\":\"\"}", "settings.bootstrap_servers");
	BAD("{\"type\":\"kafka\",\"bootstrap_servers\":\"nohost\"}", "settings.bootstrap_servers");
	BAD("{\"type\":\"kafka\",\"bootstrap_servers\":\"h:\"}", "settings.bootstrap_servers");
	BAD("{\"type\":\"kafka\",\"bootstrap_servers\":\"h:1,\"}", "settings.bootstrap_servers");
	BAD("{\"type\":\"kafka\",\"bootstrap_servers\":\"h:x1\"}", "settings.bootstrap_servers");
	BAD("{\"type\":\"kafka\",\"bootstrap_servers\":7}", "settings.bootstrap_servers");
	BAD(K ",\"brokers\":\"x\"}", "settings.brokers");
	BAD(K ",\"topic\":\"\"}", "settings.topic");
	BAD(K ",\"topic\":\"has space\"}", "settings.topic");
	BAD(K ",\"topic\":\"{tenant}\"}", "settings.topic");
	BAD(K ",\"topic\":\"..\"}", "settings.topic");
	BAD(K ",\"topic\":\"a/b\"}", "settings.topic");
	BAD(K ",\"key\":\"random\"}", "settings.key");
	BAD(K ",\"headers\":\"yes\"}", "settings.headers");
	BAD(K ",\"compression\":\"brotli\"}", "settings.compression");
	BAD(K ",\"security_protocol\":\"tls\"}", "settings.security_protocol");
	BAD(K ",\"security_protocol\":\"sasl_plaintext\"}", "settings.sasl_mechanism");
	BAD(K ",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"GSSAPI\"}",
	    "settings.sasl_mechanism");
	BAD(K ",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"PLAIN\"}",
	    "settings.sasl_username");
	BAD(K ",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"PLAIN\","
	      "\"sasl_username\":\"u\"}",
	    "settings.sasl_password");
	BAD(K ",\"sasl_password\":\"p\"}", "settings.sasl_password");
	BAD(K ",\"security_protocol\":\"sasl_plaintext\",\"sasl_mechanism\":\"PLAIN\","
	      "\"sasl_username\":\"u\",\"sasl_password\":\"********\"}",
	    "settings.sasl_password");
	BAD(K ",\"sasl_mechanism\":\"PLAIN\"}", "settings.sasl_mechanism");
	BAD(K ",\"ssl_ca_pem\":\"-----BEGIN CERTIFICATE-----\"}", "settings.ssl_ca_pem");
	BAD(K ",\"security_protocol\":\"ssl\",\"ssl_ca_pem\":\"not pem\"}", "settings.ssl_ca_pem");
	BAD(K ",\"max_inflight_kb\":63}", "settings.max_inflight_kb");
	BAD(K ",\"max_inflight_kb\":1048577}", "settings.max_inflight_kb");
	BAD(K ",\"max_inflight_kb\":1.5}", "settings.max_inflight_kb");
	BAD(K ",\"linger_ms\":-1}", "settings.linger_ms");
	BAD(K ",\"delivery_timeout_ms\":9999}", "settings.delivery_timeout_ms");
	BAD(K ",\"file\":\"x.jsonl\"}", "settings.file");
}

static void test_open_refusals(void)
{
	kaa__log_appender *a = NULL;
	char err[256] = "";
	kaa__log_appender_env env = {0};
	/* the topic template needs the application's token */
	int rc = kaa__log_appender_new(1, 1, "k", K "}", &env, &a, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "token"));
	/* a token that makes no valid topic name */
	env.app_token = "bad token";
	rc = kaa__log_appender_new(1, 1, "k", K "}", &env, &a, err, sizeof(err));
	CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "settings.topic"));
	/* the same token without it in the topic is fine */
	rc = kaa__log_appender_new(1, 1, "k", K ",\"topic\":\"fixed\"}", &env, &a, err,
				   sizeof(err));
	CU_ASSERT_EQUAL(rc, KAA_OK);
	CU_ASSERT_STRING_EQUAL(kaa__log_appender_type(a), "kafka");
	CU_ASSERT_TRUE(kaa__log_appender_queues(a));
	kaa__log_appender_free(a);
}

struct answer {
	pthread_mutex_t mu;
	int calls;
	kaa__log_result result;
	int err;
	char reason[128];
};

static void on_done(void *arg, const kaa__log_status *st)
{
	struct answer *a = arg;
	pthread_mutex_lock(&a->mu);
	a->calls++;
	a->result = st->result;
	a->err = st->err;
	snprintf(a->reason, sizeof(a->reason), "%s", st->reason);
	pthread_mutex_unlock(&a->mu);
}

static void test_no_broker(void)
{
	kaa__log_appender *a = NULL;
	char err[256] = "";
	kaa__log_appender_env env = {.app_token = "tok1"};
	/* port 1 on loopback: nothing listens, nothing is ever delivered */
	int rc = kaa__log_appender_new(3, 9, "k",
				       "{\"type\":\"kafka\",\"bootstrap_servers\":\"127.0.0.1:1\","
				       "\"max_inflight_kb\":64}",
				       &env, &a, err, sizeof(err));
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	static char big[40000];
	memset(big, ' ', sizeof(big) - 3);
	big[0] = '"';
	big[sizeof(big) - 3] = '"';
	const char *small[] = {"{\"seq\":1}", "{\"seq\":2}"};
	const char *large[] = {big, big};
	struct answer first = {.mu = PTHREAD_MUTEX_INITIALIZER},
		      again = {.mu = PTHREAD_MUTEX_INITIALIZER},
		      over = {.mu = PTHREAD_MUTEX_INITIALIZER},
		      other = {.mu = PTHREAD_MUTEX_INITIALIZER};
	kaa__log_batch b = {.app_id = 3,
			    .key_hash = "ep1",
			    .batch_id = "b1",
			    .schema_version = 1,
			    .records = small,
			    .n = 2,
			    .received_ms = 1};
	kaa__log_appender_submit(a, &b, on_done, &first);
	kaa__log_appender_submit(a, &b, on_done, &again); /* resent while in flight */
	CU_ASSERT_EQUAL(first.calls, 0);
	CU_ASSERT_EQUAL(again.calls, 0);
	/* 2 x 40 kB more than the 64 kB budget while b1 is in flight */
	kaa__log_batch l = b;
	l.batch_id = "b2";
	l.records = large;
	kaa__log_appender_submit(a, &l, on_done, &over);
	CU_ASSERT_EQUAL(over.calls, 1);
	CU_ASSERT_EQUAL(over.result, KAA_LOG_RATE_LIMITED);
	/* another application's batch is refused at once */
	kaa__log_batch x = b;
	x.app_id = 4;
	kaa__log_appender_submit(a, &x, on_done, &other);
	CU_ASSERT_EQUAL(other.calls, 1);
	CU_ASSERT_EQUAL(other.result, KAA_LOG_PERMANENT);
	kaa__log_appender_free(a);
	CU_ASSERT_EQUAL(first.calls, 1);
	CU_ASSERT_EQUAL(again.calls, 1);
	CU_ASSERT_EQUAL(first.result, KAA_LOG_RETRY);
	CU_ASSERT_EQUAL(again.result, KAA_LOG_RETRY);
	CU_ASSERT_EQUAL(first.err, KAA_ERR_CANCELED);
	CU_ASSERT_STRING_EQUAL(first.reason, "appender closed");
}

/* The first answer frees the appender from inside the callback (on the
 * appender's own thread): every other submit is still answered, once. */
static kaa__log_appender *g_self;
static pthread_mutex_t g_self_mu = PTHREAD_MUTEX_INITIALIZER;

static void free_on_first(void *arg, const kaa__log_status *st)
{
	on_done(arg, st);
	pthread_mutex_lock(&g_self_mu);
	kaa__log_appender *a = g_self;
	g_self = NULL;
	pthread_mutex_unlock(&g_self_mu);
	kaa__log_appender_free(a);
}

static int calls_of(struct answer *a)
{
	pthread_mutex_lock(&a->mu);
	int n = a->calls;
	pthread_mutex_unlock(&a->mu);
	return n;
}

static void test_close_inside_callback(void)
{
	char err[256] = "";
	kaa__log_appender_env env = {.app_token = "tok2"};
	int rc = kaa__log_appender_new(3, 10, "k",
				       "{\"type\":\"kafka\",\"bootstrap_servers\":\"127.0.0.1:1\","
				       "\"delivery_timeout_ms\":10000}",
				       &env, &g_self, err, sizeof(err));
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	const char *recs[] = {"{\"seq\":1}"};
	struct answer ans[3] = {{.mu = PTHREAD_MUTEX_INITIALIZER},
				{.mu = PTHREAD_MUTEX_INITIALIZER},
				{.mu = PTHREAD_MUTEX_INITIALIZER}};
	kaa__log_batch b = {.app_id = 3,
			    .key_hash = "ep1",
			    .batch_id = "c1",
			    .schema_version = 1,
			    .records = recs,
			    .n = 1,
			    .received_ms = 1};
	kaa__log_appender *a = g_self;
	kaa__log_appender_submit(a, &b, free_on_first, &ans[0]);
	kaa__log_appender_submit(a, &b, free_on_first, &ans[1]);
	b.batch_id = "c2";
	kaa__log_appender_submit(a, &b, free_on_first, &ans[2]);
	/* the records time out after 10 s: poll for the answers */
	for (int i = 0; i < 400 && calls_of(&ans[0]) + calls_of(&ans[1]) + calls_of(&ans[2]) < 3;
	     i++)
		nanosleep(&(struct timespec){.tv_nsec = 50 * 1000000L}, NULL);
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_EQUAL(calls_of(&ans[i]), 1);
		CU_ASSERT_EQUAL(ans[i].result, KAA_LOG_RETRY);
	}
	CU_ASSERT_PTR_NULL(g_self);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("kafka_appender", NULL, NULL);
	if (!s || !CU_add_test(s, "settings", test_settings) ||
	    !CU_add_test(s, "open_refusals", test_open_refusals) ||
	    !CU_add_test(s, "no_broker", test_no_broker) ||
	    !CU_add_test(s, "close_inside_callback", test_close_inside_callback)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	int rc = (CU_get_error() != CUE_SUCCESS || failures > 0) ? 1 : 0;
	CU_cleanup_registry();
	return rc;
}
