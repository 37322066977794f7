/*
 * test_metrics.c - the Prometheus registry: exact text output for
 * counters, gauges, callback gauges, histograms and label sets, the
 * registration rules, and concurrent updates.
 */
#include "cu_main.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static char *render(kaa__metrics *m)
{
	char *out = NULL;
	size_t len = 0;

	CU_ASSERT_EQUAL(kaa__metrics_render(m, &out, &len), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	CU_ASSERT_EQUAL(strlen(out), len);
	return out;
}

/* Compares and prints both texts on a mismatch, which CUnit alone does not. */
static void expect_render(kaa__metrics *m, const char *want)
{
	char *got = render(m);

	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n--- want\n%s--- got\n%s---\n", want, got);
	CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void test_empty(void)
{
	kaa__metrics *m = kaa__metrics_new();

	expect_render(m, "");
	kaa__metrics_free(m);
	kaa__metrics_free(NULL);
}

static void test_counter(void)
{
	kaa__metrics *m = kaa__metrics_new();
	kaa__counter *c = kaa__metrics_counter(m, "kaa_requests_total", "Requests served.", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	expect_render(m, "# HELP kaa_requests_total Requests served.\n"
			 "# TYPE kaa_requests_total counter\n"
			 "kaa_requests_total 0\n");
	kaa__counter_inc(c);
	kaa__counter_add(c, 41);
	CU_ASSERT_EQUAL(kaa__counter_value(c), 42);
	expect_render(m, "# HELP kaa_requests_total Requests served.\n"
			 "# TYPE kaa_requests_total counter\n"
			 "kaa_requests_total 42\n");
	kaa__counter_add(c, UINT64_MAX - 42);
	expect_render(m, "# HELP kaa_requests_total Requests served.\n"
			 "# TYPE kaa_requests_total counter\n"
			 "kaa_requests_total 18446744073709551615\n");
	kaa__metrics_free(m);
}

static void test_labels_one_family(void)
{
	kaa__metrics *m = kaa__metrics_new();
	kaa__counter *a = kaa__metrics_counter(m, "kaa_http_requests_total", "HTTP requests.",
					       "service=\"control\",code=\"200\"");
	kaa__counter *b = kaa__metrics_counter(m, "kaa_http_requests_total", "ignored: first wins",
					       "service=\"bootstrap\",code=\"200\"");
	kaa__gauge *g = kaa__metrics_gauge(m, "kaa_sessions", "Open sessions.", "");
	kaa__counter *a2 = kaa__metrics_counter(m, "kaa_http_requests_total", NULL,
						"service=\"control\",code=\"200\"");

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	CU_ASSERT_PTR_EQUAL(a, a2); /* same name and labels: same series */
	kaa__counter_add(a, 3);
	kaa__counter_add(b, 1);
	kaa__gauge_set(g, 7);
	expect_render(m, "# HELP kaa_http_requests_total HTTP requests.\n"
			 "# TYPE kaa_http_requests_total counter\n"
			 "kaa_http_requests_total{service=\"control\",code=\"200\"} 3\n"
			 "kaa_http_requests_total{service=\"bootstrap\",code=\"200\"} 1\n"
			 "# HELP kaa_sessions Open sessions.\n"
			 "# TYPE kaa_sessions gauge\n"
			 "kaa_sessions 7\n");
	kaa__metrics_free(m);
}

static void test_gauge_values(void)
{
	kaa__metrics *m = kaa__metrics_new();
	kaa__gauge *g = kaa__metrics_gauge(m, "g", NULL, NULL);
	static const struct {
		double v;
		const char *text;
	} cases[] = {
		{0.0, "0"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{1e21, "1e+21"},
		{1.5e-7, "1.5e-07"},
		{123456789, "123456789"},
		{1.0 / 3, "0.3333333333333333"},
		{1e15, "1e+15"},
		{123456.75, "123456.75"},
		{-0.0, "-0"},
	};

	CU_ASSERT_PTR_NOT_NULL_FATAL(g);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[128];
		snprintf(want, sizeof(want), "# TYPE g gauge\ng %s\n", cases[i].text);
		kaa__gauge_set(g, cases[i].v);
		expect_render(m, want);
	}
	kaa__gauge_set(g, 1.0);
	kaa__gauge_add(g, 0.5);
	kaa__gauge_add(g, -2);
	CU_ASSERT_DOUBLE_EQUAL(kaa__gauge_value(g), -0.5, 0);
	expect_render(m, "# TYPE g gauge\ng -0.5\n");
	kaa__gauge_set(g, NAN);
	expect_render(m, "# TYPE g gauge\ng NaN\n");
	kaa__gauge_set(g, INFINITY);
	expect_render(m, "# TYPE g gauge\ng +Inf\n");
	kaa__gauge_set(g, -INFINITY);
	expect_render(m, "# TYPE g gauge\ng -Inf\n");
	kaa__metrics_free(m);
}

static double fn_value(void *ud)
{
	return *(double *)ud;
}

static void test_gauge_fn(void)
{
	kaa__metrics *m = kaa__metrics_new();
	double v = 12.25;

	CU_ASSERT_EQUAL(
		kaa__metrics_gauge_fn(m, "kaa_load", "Node load.", "node=\"a\"", fn_value, &v),
		KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(kaa__metrics_gauge(m, "kaa_load", NULL, "node=\"b\""));
	expect_render(m, "# HELP kaa_load Node load.\n"
			 "# TYPE kaa_load gauge\n"
			 "kaa_load{node=\"a\"} 12.25\n"
			 "kaa_load{node=\"b\"} 0\n");
	v = -1;
	expect_render(m, "# HELP kaa_load Node load.\n"
			 "# TYPE kaa_load gauge\n"
			 "kaa_load{node=\"a\"} -1\n"
			 "kaa_load{node=\"b\"} 0\n");
	/* A second callback, or a settable gauge, for the same series. */
	CU_ASSERT_EQUAL(kaa__metrics_gauge_fn(m, "kaa_load", NULL, "node=\"a\"", fn_value, &v),
			KAA_ERR_EXISTS);
	CU_ASSERT_PTR_NULL(kaa__metrics_gauge(m, "kaa_load", NULL, "node=\"a\""));
	CU_ASSERT_EQUAL(kaa__metrics_gauge_fn(m, "kaa_load", NULL, "node=\"b\"", fn_value, &v),
			KAA_ERR_EXISTS);
	CU_ASSERT_EQUAL(kaa__metrics_gauge_fn(m, "kaa_x", NULL, NULL, NULL, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__metrics_gauge_fn(m, "9bad", NULL, NULL, fn_value, &v), KAA_ERR_INVAL);
	kaa__metrics_free(m);
}

static void test_histogram(void)
{
	static const double bounds[] = {0.005, 0.1, 1, 2.5};
	kaa__metrics *m = kaa__metrics_new();
	kaa__histogram *h = kaa__metrics_histogram(m, "kaa_rpc_seconds", "RPC latency.",
						   "rpc=\"put\"", bounds, 4);
	kaa__histogram *h2 = kaa__metrics_histogram(m, "kaa_rpc_seconds", NULL, NULL, bounds, 2);

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_PTR_NOT_NULL_FATAL(h2);
	expect_render(m, "# HELP kaa_rpc_seconds RPC latency.\n"
			 "# TYPE kaa_rpc_seconds histogram\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"0.005\"} 0\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"0.1\"} 0\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"1\"} 0\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"2.5\"} 0\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"+Inf\"} 0\n"
			 "kaa_rpc_seconds_sum{rpc=\"put\"} 0\n"
			 "kaa_rpc_seconds_count{rpc=\"put\"} 0\n"
			 "kaa_rpc_seconds_bucket{le=\"0.005\"} 0\n"
			 "kaa_rpc_seconds_bucket{le=\"0.1\"} 0\n"
			 "kaa_rpc_seconds_bucket{le=\"+Inf\"} 0\n"
			 "kaa_rpc_seconds_sum 0\n"
			 "kaa_rpc_seconds_count 0\n");
	kaa__histogram_observe(h, 0.005); /* le is inclusive */
	kaa__histogram_observe(h, 0.05);
	kaa__histogram_observe(h, 0.1);
	kaa__histogram_observe(h, 2);
	kaa__histogram_observe(h, 100);
	kaa__histogram_observe(h, NAN); /* dropped */
	kaa__histogram_observe(h2, -1);
	expect_render(m, "# HELP kaa_rpc_seconds RPC latency.\n"
			 "# TYPE kaa_rpc_seconds histogram\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"0.005\"} 1\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"0.1\"} 3\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"1\"} 3\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"2.5\"} 4\n"
			 "kaa_rpc_seconds_bucket{rpc=\"put\",le=\"+Inf\"} 5\n"
			 "kaa_rpc_seconds_sum{rpc=\"put\"} 102.155\n"
			 "kaa_rpc_seconds_count{rpc=\"put\"} 5\n"
			 "kaa_rpc_seconds_bucket{le=\"0.005\"} 1\n"
			 "kaa_rpc_seconds_bucket{le=\"0.1\"} 1\n"
			 "kaa_rpc_seconds_bucket{le=\"+Inf\"} 1\n"
			 "kaa_rpc_seconds_sum -1\n"
			 "kaa_rpc_seconds_count 1\n");
	/* Same series again: same handle only with the same bounds. */
	CU_ASSERT_PTR_EQUAL(
		kaa__metrics_histogram(m, "kaa_rpc_seconds", NULL, "rpc=\"put\"", bounds, 4), h);
	CU_ASSERT_PTR_NULL(
		kaa__metrics_histogram(m, "kaa_rpc_seconds", NULL, "rpc=\"put\"", bounds, 3));
	kaa__metrics_free(m);
}

static void test_histogram_no_bounds(void)
{
	kaa__metrics *m = kaa__metrics_new();
	kaa__histogram *h = kaa__metrics_histogram(m, "h", NULL, NULL, NULL, 0);

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	kaa__histogram_observe(h, 3);
	expect_render(m, "# TYPE h histogram\n"
			 "h_bucket{le=\"+Inf\"} 1\n"
			 "h_sum 3\n"
			 "h_count 1\n");
	kaa__metrics_free(m);
}

static void test_histogram_bad_bounds(void)
{
	static const double unsorted[] = {1, 0.5};
	static const double dup[] = {1, 1};
	const double inf[] = {1, INFINITY};
	double many[65];
	kaa__metrics *m = kaa__metrics_new();

	for (int i = 0; i < 65; i++)
		many[i] = i;
	CU_ASSERT_PTR_NULL(kaa__metrics_histogram(m, "h", NULL, NULL, unsorted, 2));
	CU_ASSERT_PTR_NULL(kaa__metrics_histogram(m, "h", NULL, NULL, dup, 2));
	CU_ASSERT_PTR_NULL(kaa__metrics_histogram(m, "h", NULL, NULL, inf, 2));
	CU_ASSERT_PTR_NULL(kaa__metrics_histogram(m, "h", NULL, NULL, many, 65));
	CU_ASSERT_PTR_NOT_NULL(kaa__metrics_histogram(m, "h", NULL, NULL, many, 64));
	CU_ASSERT_PTR_NULL(kaa__metrics_histogram(m, "h2", NULL, "le=\"1\"", many, 1));
	kaa__metrics_free(m);
}

static void test_help_escaping(void)
{
	kaa__metrics *m = kaa__metrics_new();

	CU_ASSERT_PTR_NOT_NULL(
		kaa__metrics_counter(m, "c", "a\\b\nc \"q\"", "l=\"x\\\"y\\\\z\\n\""));
	expect_render(m, "# HELP c a\\\\b\\nc \"q\"\n"
			 "# TYPE c counter\n"
			 "c{l=\"x\\\"y\\\\z\\n\"} 0\n");
	kaa__metrics_free(m);
}

static void test_invalid_registrations(void)
{
	kaa__metrics *m = kaa__metrics_new();
	static const char *bad_names[] = {"", "9abc", "a-b", "a b", "é"};
	static const char *bad_labels[] = {
		"service",         "service=control", "service=\"x",    "service=\"x\",",
		"a=\"1\",a=\"2\"", "__name=\"x\"",    "9a=\"x\"",       "a=\"1\" ,b=\"2\"",
		"a=\"x\\q\"",      "a=\"x\ny\"",      "a=\"1\"b=\"2\"", ",a=\"1\"",
	};
	char longname[202];

	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		CU_ASSERT_PTR_NULL(kaa__metrics_counter(m, bad_names[i], NULL, NULL));
	CU_ASSERT_PTR_NULL(kaa__metrics_counter(m, NULL, NULL, NULL));
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CU_ASSERT_PTR_NULL(kaa__metrics_counter(m, longname, NULL, NULL));
	longname[200] = '\0';
	CU_ASSERT_PTR_NOT_NULL(kaa__metrics_counter(m, longname, NULL, NULL));
	for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
		CU_ASSERT_PTR_NULL(kaa__metrics_gauge(m, "g", NULL, bad_labels[i]));
	CU_ASSERT_PTR_NULL(kaa__metrics_gauge(m, "g", NULL, "b:c=\"x\"")); /* no ':' in labels */
	CU_ASSERT_PTR_NOT_NULL(kaa__metrics_gauge(m, "g", NULL, "a_1=\"\",B=\"x,y=\\\"z\\\"\""));
	/* One name, one type. */
	CU_ASSERT_PTR_NOT_NULL(kaa__metrics_counter(m, "kaa:x_total", NULL, NULL));
	CU_ASSERT_PTR_NULL(kaa__metrics_gauge(m, "kaa:x_total", NULL, "a=\"1\""));
	CU_ASSERT_PTR_NULL(kaa__metrics_histogram(m, "kaa:x_total", NULL, NULL, NULL, 0));
	/* Updates through a NULL handle are no-ops. */
	kaa__counter_add(NULL, 1);
	kaa__gauge_set(NULL, 1);
	kaa__gauge_add(NULL, 1);
	kaa__histogram_observe(NULL, 1);
	CU_ASSERT_EQUAL(kaa__counter_value(NULL), 0);
	kaa__metrics_free(m);
}

static void test_escape_label_value(void)
{
	char buf[32];

	CU_ASSERT_EQUAL(kaa__metrics_escape_label_value("a\"b\\c\nd", buf, sizeof(buf)), 10);
	CU_ASSERT_STRING_EQUAL(buf, "a\\\"b\\\\c\\nd");
	CU_ASSERT_EQUAL(kaa__metrics_escape_label_value("a\"b", buf, 3), 4);
	CU_ASSERT_STRING_EQUAL(buf, "a\\");
	CU_ASSERT_EQUAL(kaa__metrics_escape_label_value("xyz", NULL, 0), 3);
}

#define THREADS 4
#define ITERS 20000

struct race {
	kaa__counter *c;
	kaa__gauge *g;
	kaa__histogram *h;
};

static void *hammer(void *arg)
{
	struct race *r = arg;

	for (int i = 0; i < ITERS; i++) {
		kaa__counter_inc(r->c);
		kaa__gauge_add(r->g, 0.5);
		kaa__histogram_observe(r->h, (double)(i % 3));
	}
	return NULL;
}

static void test_concurrent_updates(void)
{
	static const double bounds[] = {0.5, 1.5};
	kaa__metrics *m = kaa__metrics_new();
	struct race r;
	pthread_t t[THREADS];
	char want[512];

	r.c = kaa__metrics_counter(m, "c_total", NULL, NULL);
	r.g = kaa__metrics_gauge(m, "g", NULL, NULL);
	r.h = kaa__metrics_histogram(m, "h", NULL, NULL, bounds, 2);
	for (int i = 0; i < THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, hammer, &r), 0);
	/* Rendering while the counters move must be safe (and TSan-clean). */
	for (int i = 0; i < 20; i++)
		free(render(m));
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	/* i % 3 over 20000 iterations: 6667 zeros, 6667 ones, 6666 twos. */
	snprintf(want, sizeof(want),
		 "# TYPE c_total counter\nc_total %d\n"
		 "# TYPE g gauge\ng %d\n"
		 "# TYPE h histogram\n"
		 "h_bucket{le=\"0.5\"} %d\nh_bucket{le=\"1.5\"} %d\nh_bucket{le=\"+Inf\"} %d\n"
		 "h_sum %d\nh_count %d\n",
		 THREADS * ITERS, THREADS * ITERS / 2, THREADS * 6667, THREADS * 6667 * 2,
		 THREADS * ITERS, THREADS * (6667 + 2 * 6666), THREADS * ITERS);
	expect_render(m, want);
	kaa__metrics_free(m);
}

static const kaa__cu_test tests[] = {
	{"empty registry", test_empty},
	{"counter", test_counter},
	{"label sets share one family", test_labels_one_family},
	{"gauge values", test_gauge_values},
	{"callback gauge", test_gauge_fn},
	{"histogram", test_histogram},
	{"histogram without bounds", test_histogram_no_bounds},
	{"histogram bad bounds", test_histogram_bad_bounds},
	{"help and label escaping", test_help_escaping},
	{"invalid registrations", test_invalid_registrations},
	{"escape label value", test_escape_label_value},
	{"concurrent updates", test_concurrent_updates},
};

int main(void)
{
	kaa__log_level = KAA_LOG_ERROR + 1; /* registration errors are expected here */
	return kaa__cu_run("metrics", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
