/* The operator's Kubernetes client against a real kube-apiserver (the
 * harness's k8s kind): requests, server-side apply, informers (including a
 * re-list after the API server restarts having missed a deletion), Lease
 * election between two candidates, and Events with aggregation.
 *
 * Environment (set by e2e/test_k8s_client.sh; a missing one is a failure):
 *   KAA_TEST_KUBECONFIG   admin kubeconfig of the cluster
 *   KAA_TEST_K8S_DIR      harness directory (for the restart test)
 *   KAA_HARNESS           path of e2e/harness/harness.sh
 */
#include "cu_main.h"
#include "test_util.h"
#include "kube_client.h"
#include "kube_event.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/metrics.h"

#include <CUnit/Basic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static kaa__kube *kube;
static kaa__metrics *metrics;
static char ns[64];

static const char *env(const char *name)
{
	const char *v = getenv(name);
	if (!v || !*v) {
		fprintf(stderr, "%s is not set: run this through e2e/test_k8s_client.sh\n", name);
		return NULL;
	}
	return v;
}

static long req(const char *method, const char *path, const char *ctype, const char *body,
		char **out)
{
	kaa__kube_resp r;
	int rc = kaa__kube_request(kube, method, path, ctype, body, &r);
	CU_ASSERT_EQUAL(rc, KAA_OK);
	if (rc != KAA_OK)
		return -1;
	long st = r.status;
	if (out)
		*out = r.body, r.body = NULL;
	kaa__kube_resp_clear(&r);
	return st;
}

static long apply_cm(const char *name, const char *value)
{
	char path[256], body[512];
	kaa__kube_resp r;
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", ns, name);
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"%s\","
		 "\"namespace\":\"%s\"},\"data\":{\"v\":\"%s\"}}",
		 name, ns, value);
	int rc = kaa__kube_apply(kube, path, body, &r);
	CU_ASSERT_EQUAL(rc, KAA_OK);
	long st = rc == KAA_OK ? r.status : -1;
	kaa__kube_resp_clear(&r);
	return st;
}

static long delete_cm(const char *name)
{
	char path[256];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/%s", ns, name);
	return req("DELETE", path, NULL, NULL, NULL);
}

static int suite_init(void)
{
	kaa__kube_config *cfg = NULL;
	const char *kc = env("KAA_TEST_KUBECONFIG");
	char body[256];

	const char *lvl = getenv("KAA_TEST_LOG_LEVEL");
	kaa__log_level =
		lvl && kaa__log_level_parse(lvl) >= 0 ? kaa__log_level_parse(lvl) : KAA_LOG_WARN;
	if (!kc)
		return 0; /* every test then fails on kube == NULL */
	if (kaa__kube_config_load(kc, &cfg) != KAA_OK)
		return 0;
	metrics = kaa__metrics_new();
	if (kaa__kube_new(cfg, metrics, &kube) != KAA_OK)
		kube = NULL;
	kaa__kube_config_free(cfg);
	if (!kube)
		return 0;
	kaa__kube_set_identity(kube, "test-kube-client");
	snprintf(ns, sizeof(ns), "h1-client-%d", (int)getpid());
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"%s\"}}",
		 ns);
	kaa__kube_resp r;
	char path[128];
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
	if (kaa__kube_apply(kube, path, body, &r) == KAA_OK)
		kaa__kube_resp_clear(&r);
	return 0;
}

static int suite_clean(void)
{
	if (kube) {
		char path[128];
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s", ns);
		kaa__kube_resp r;
		if (kaa__kube_request(kube, "DELETE", path, NULL, NULL, &r) == KAA_OK)
			kaa__kube_resp_clear(&r);
	}
	kaa__kube_free(kube);
	kaa__metrics_free(metrics);
	return 0;
}

/* ---- requests ---- */

static void test_requests(void)
{
	char *body = NULL;
	char path[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	CU_ASSERT_EQUAL(req("GET", "/version", NULL, NULL, &body), 200);
	CU_ASSERT_PTR_NOT_NULL(body ? strstr(body, "gitVersion") : NULL);
	free(body);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/absent", ns);
	CU_ASSERT_EQUAL(req("GET", path, NULL, NULL, NULL), 404);
	CU_ASSERT_EQUAL(apply_cm("one", "1"), 201);
	CU_ASSERT_EQUAL(apply_cm("one", "2"), 200);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/one", ns);
	body = NULL;
	CU_ASSERT_EQUAL(req("GET", path, NULL, NULL, &body), 200);
	if (body) {
		char err[128];
		yajl_val v = yajl_tree_parse(body, err, sizeof(err));
		static const char *const p_v[] = {"data", "v", NULL};
		static const char *const p_mgr[] = {"metadata", "managedFields", NULL};
		CU_ASSERT_STRING_EQUAL(kaa__kube_str(v, p_v) ? kaa__kube_str(v, p_v) : "", "2");
		CU_ASSERT_PTR_NULL(kaa__kube_obj(v, p_mgr)); /* an array, not an object */
		CU_ASSERT_EQUAL(kaa__kube_int(v, p_v, -7), -7);
		yajl_tree_free(v);
		CU_ASSERT_PTR_NOT_NULL(strstr(body, KAA_KUBE_FIELD_MANAGER));
	}
	free(body);
	CU_ASSERT_EQUAL(delete_cm("one"), 200);
	/* bad arguments */
	kaa__kube_resp r;
	CU_ASSERT_EQUAL(kaa__kube_request(kube, "GET", "version", NULL, NULL, &r), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_request(kube, "BREW", "/version", NULL, NULL, &r), KAA_ERR_INVAL);
	/* metrics */
	char *text = NULL;
	size_t len = 0;
	kaa__metrics_render(metrics, &text, &len);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "kaa_operator_api_requests_total{verb=\"GET\",code=\"404\"}"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(text, "kaa_operator_api_requests_total{verb=\"PATCH\",code=\"201\"}"));
	free(text);
}

/* A client whose CA is not the cluster's must fail TLS, not succeed. */
static void test_tls_verified(void)
{
	kaa__kube_config *cfg = NULL;
	kaa__kube *k2 = NULL;
	kaa__kube_resp r;
	char path[] = "/tmp/h1-test-ca-XXXXXX";
	int fd = mkstemp(path);

	CU_ASSERT_FATAL(fd >= 0);
	close(fd);
	CU_ASSERT_EQUAL_FATAL(kaa__kube_config_load(getenv("KAA_TEST_KUBECONFIG"), &cfg), KAA_OK);
	/* the client certificate as CA: a valid PEM that did not sign the server */
	free(cfg->ca_data);
	cfg->ca_data = strdup(cfg->client_cert_data);
	CU_ASSERT_EQUAL_FATAL(kaa__kube_new(cfg, NULL, &k2), KAA_OK);
	CU_ASSERT_EQUAL(kaa__kube_request(k2, "GET", "/version", NULL, NULL, &r),
			KAA_ERR_UNAVAILABLE);
	kaa__kube_free(k2);
	kaa__kube_config_free(cfg);
	unlink(path);
}

/* ---- informer ---- */

#define MAX_SEEN 256
typedef struct recorder {
	pthread_mutex_t mu;
	int n;
	kaa__kube_ev ev[MAX_SEEN];
	char name[MAX_SEEN][64];
	char val[MAX_SEEN][16];
	int added; /* every ADDED, also beyond MAX_SEEN */
} recorder;

static void on_ev(void *ud, kaa__kube_ev ev, const char *ens, const char *name, yajl_val obj)
{
	recorder *r = ud;
	static const char *const p_v[] = {"data", "v", NULL};
	static const char *const p_kind[] = {"kind", NULL};
	const char *v = kaa__kube_str(obj, p_v);
	const char *kind = kaa__kube_str(obj, p_kind);

	CU_ASSERT_STRING_EQUAL(ens ? ens : "", ns);
	CU_ASSERT_STRING_EQUAL(kind ? kind : "", "ConfigMap");
	pthread_mutex_lock(&r->mu);
	r->added += ev == KAA_KUBE_ADDED;
	if (r->n < MAX_SEEN) {
		r->ev[r->n] = ev;
		snprintf(r->name[r->n], sizeof(r->name[0]), "%s", name);
		snprintf(r->val[r->n], sizeof(r->val[0]), "%s", v ? v : "");
		r->n++;
	}
	pthread_mutex_unlock(&r->mu);
}

typedef struct want {
	recorder *r;
	kaa__kube_ev ev;
	const char *name;
	const char *val; /* NULL: any */
} want;

static bool seen(void *arg)
{
	want *w = arg;
	bool found = false;
	pthread_mutex_lock(&w->r->mu);
	for (int i = 0; i < w->r->n && !found; i++)
		found = w->r->ev[i] == w->ev && strcmp(w->r->name[i], w->name) == 0 &&
			(!w->val || strcmp(w->r->val[i], w->val) == 0);
	pthread_mutex_unlock(&w->r->mu);
	return found;
}

static bool synced(void *arg)
{
	return kaa__kube_informer_synced(arg);
}

static bool cached(kaa__kube_informer *inf, const char *name)
{
	char *json = NULL;
	int rc = kaa__kube_informer_get(inf, ns, name, &json);
	free(json);
	return rc == KAA_OK;
}

static void test_informer(void)
{
	recorder rec = {.n = 0};
	kaa__kube_informer *inf = NULL;
	char path[256];

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	pthread_mutex_init(&rec.mu, NULL);
	CU_ASSERT_EQUAL(apply_cm("pre", "0"), 201);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
	CU_ASSERT_EQUAL_FATAL(kaa__kube_informer_new(kube, path, NULL, 0, on_ev, &rec, &inf),
			      KAA_OK);
	CU_ASSERT_FATAL(kaa__test_wait_until(synced, inf, 10000));
	want w = {&rec, KAA_KUBE_ADDED, "pre", "0"};
	CU_ASSERT(seen(&w)); /* the list reports existing objects before synced */
	CU_ASSERT(cached(inf, "pre"));

	CU_ASSERT_EQUAL(apply_cm("a", "1"), 201);
	w = (want){&rec, KAA_KUBE_ADDED, "a", "1"};
	CU_ASSERT(kaa__test_wait_until(seen, &w, 10000));
	CU_ASSERT(cached(inf, "a"));
	CU_ASSERT_EQUAL(apply_cm("a", "2"), 200);
	w = (want){&rec, KAA_KUBE_MODIFIED, "a", "2"};
	CU_ASSERT(kaa__test_wait_until(seen, &w, 10000));
	char *json = NULL;
	CU_ASSERT_EQUAL(kaa__kube_informer_get(inf, ns, "a", &json), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(json ? strstr(json, "\"v\":\"2\"") : NULL);
	free(json);
	CU_ASSERT_EQUAL(delete_cm("a"), 200);
	w = (want){&rec, KAA_KUBE_DELETED, "a", NULL};
	CU_ASSERT(kaa__test_wait_until(seen, &w, 10000));
	CU_ASSERT(!cached(inf, "a"));
	CU_ASSERT_EQUAL(kaa__kube_informer_get(inf, ns, "a", &json), KAA_ERR_NOTFOUND);

	/* free stops the watch promptly */
	int64_t t0 = kaa__now_ms();
	kaa__kube_informer_free(inf);
	CU_ASSERT(kaa__now_ms() - t0 < 3000);
	pthread_mutex_destroy(&rec.mu);
}

/* Label selectors and resync: only matching objects; every cached object
 * is reported again as MODIFIED each resync period. */
static void test_informer_selector_resync(void)
{
	recorder rec = {.n = 0};
	kaa__kube_informer *inf = NULL;
	char path[256], body[512], p2[256];
	kaa__kube_resp r;

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	pthread_mutex_init(&rec.mu, NULL);
	snprintf(p2, sizeof(p2), "/api/v1/namespaces/%s/configmaps/lab", ns);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
	/* A valid label for the real check. */
	snprintf(body, sizeof(body),
		 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"lab\","
		 "\"labels\":{\"app\":\"kaa\"}},\"data\":{\"v\":\"L\"}}");
	CU_ASSERT_EQUAL(kaa__kube_apply(kube, p2, body, &r), KAA_OK);
	kaa__kube_resp_clear(&r);
	/* a selector that needs percent-encoding in the query */
	CU_ASSERT_EQUAL_FATAL(
		kaa__kube_informer_new(kube, path, "app in (kaa, other)", 1500, on_ev, &rec, &inf),
		KAA_OK);
	CU_ASSERT_FATAL(kaa__test_wait_until(synced, inf, 10000));
	CU_ASSERT(cached(inf, "lab"));
	CU_ASSERT(!cached(inf, "pre"));
	want w = {&rec, KAA_KUBE_MODIFIED, "lab", "L"};
	CU_ASSERT(kaa__test_wait_until(seen, &w, 5000)); /* resync */
	kaa__kube_informer_free(inf);
	pthread_mutex_destroy(&rec.mu);
}

static int count_ev(recorder *r, kaa__kube_ev ev)
{
	int n = 0;
	pthread_mutex_lock(&r->mu);
	for (int i = 0; i < r->n; i++)
		n += r->ev[i] == ev;
	pthread_mutex_unlock(&r->mu);
	return n;
}

/* More objects than one page (500): the list follows continue tokens and
 * delivers every object once. */
static void test_informer_paging(void)
{
	enum { N = 520 };
	char path[256], body[512];
	int created = 0;
	static recorder rec; /* large: not on the stack */
	kaa__kube_informer *inf = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	memset(&rec, 0, sizeof(rec));
	pthread_mutex_init(&rec.mu, NULL);
	for (int i = 0; i < N; i++) {
		kaa__kube_resp r;
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
		snprintf(body, sizeof(body),
			 "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
			 "\"bulk-%d\",\"labels\":{\"bulk\":\"yes\"}},\"data\":{\"v\":\"%d\"}}",
			 i, i);
		if (kaa__kube_request(kube, "POST", path, "application/json", body, &r) == KAA_OK) {
			created += r.status == 201;
			kaa__kube_resp_clear(&r);
		}
	}
	CU_ASSERT_EQUAL_FATAL(created, N);
	CU_ASSERT_EQUAL_FATAL(kaa__kube_informer_new(kube, path, "bulk=yes", 0, on_ev, &rec, &inf),
			      KAA_OK);
	CU_ASSERT_FATAL(kaa__test_wait_until(synced, inf, 30000));
	CU_ASSERT_EQUAL(rec.added, N); /* each once, before synced */
	CU_ASSERT_EQUAL(count_ev(&rec, KAA_KUBE_MODIFIED), 0);
	int missing = 0;
	for (int i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "bulk-%d", i);
		missing += !cached(inf, name);
	}
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT(!cached(inf, "stays"));
	kaa__kube_informer_free(inf);
	pthread_mutex_destroy(&rec.mu);
	/* one call removes them all */
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps?labelSelector=bulk%%3Dyes",
		 ns);
	CU_ASSERT_EQUAL(req("DELETE", path, NULL, NULL, NULL), 200);
}

/* The informer misses a deletion (made in etcd while the watch is cut by
 * an API server restart) and must report it after re-listing. */
static void test_informer_relist(void)
{
	recorder rec = {.n = 0};
	kaa__kube_informer *inf = NULL;
	char path[256], cmd[1024];
	const char *dir = env("KAA_TEST_K8S_DIR"), *harness = env("KAA_HARNESS");

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(harness);
	pthread_mutex_init(&rec.mu, NULL);
	CU_ASSERT_EQUAL(apply_cm("gone", "g"), 201);
	CU_ASSERT_EQUAL(apply_cm("stays", "s"), 201);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps", ns);
	CU_ASSERT_EQUAL_FATAL(kaa__kube_informer_new(kube, path, NULL, 0, on_ev, &rec, &inf),
			      KAA_OK);
	CU_ASSERT_FATAL(kaa__test_wait_until(synced, inf, 10000));
	CU_ASSERT(cached(inf, "gone"));
	/* Stop the API server, delete the object's key in etcd behind its back,
	 * start it again on the same port. */
	snprintf(
		cmd, sizeof(cmd),
		"set -e; \"%s\" kill kube-apiserver \"%s/kube-apiserver\" >/dev/null 2>&1; "
		". \"%s/etcd/env\"; key=$(printf '/registry/configmaps/%s/gone' | base64 -w0); "
		"curl -sf -X POST \"$KAA_TEST_ETCD/v3/kv/deleterange\" -d \"{\\\"key\\\":\\\"$key\\\"}\" "
		"| grep -q '\"deleted\":\"1\"'; "
		"\"%s\" restart kube-apiserver \"%s/kube-apiserver\" >/dev/null 2>&1",
		harness, dir, dir, ns, harness, dir);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	want w = {&rec, KAA_KUBE_DELETED, "gone", "g"};
	CU_ASSERT(kaa__test_wait_until(seen, &w, 60000));
	CU_ASSERT(!cached(inf, "gone"));
	CU_ASSERT(cached(inf, "stays"));
	/* and it watches again afterwards */
	CU_ASSERT_EQUAL(apply_cm("after", "x"), 201);
	w = (want){&rec, KAA_KUBE_ADDED, "after", "x"};
	CU_ASSERT(kaa__test_wait_until(seen, &w, 30000));
	kaa__kube_informer_free(inf);
	pthread_mutex_destroy(&rec.mu);
}

/* ---- Lease ---- */

typedef struct cand {
	pthread_mutex_t mu;
	int started, stopped;
} cand;

static void on_started(void *ud)
{
	cand *c = ud;
	pthread_mutex_lock(&c->mu);
	c->started++;
	pthread_mutex_unlock(&c->mu);
}

static void on_stopped(void *ud)
{
	cand *c = ud;
	pthread_mutex_lock(&c->mu);
	c->stopped++;
	pthread_mutex_unlock(&c->mu);
}

static kaa__kube_lease *lease_a, *lease_b;

static bool one_leader(void *arg)
{
	(void)arg;
	return kaa__kube_lease_is_leader(lease_a) != kaa__kube_lease_is_leader(lease_b);
}

static bool b_leads(void *arg)
{
	return kaa__kube_lease_is_leader(arg);
}

static char *lease_holder(void)
{
	char path[256], *body = NULL, err[128], *h = NULL;
	static const char *const p_h[] = {"spec", "holderIdentity", NULL};
	snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/elect", ns);
	if (req("GET", path, NULL, NULL, &body) == 200) {
		yajl_val v = yajl_tree_parse(body, err, sizeof(err));
		const char *s = kaa__kube_str(v, p_h);
		h = strdup(s ? s : "");
		yajl_tree_free(v);
	}
	free(body);
	return h;
}

static void test_lease(void)
{
	cand ca = {.started = 0}, cb = {.started = 0};
	kaa__kube_lease_opts o = {.duration_ms = 4000,
				  .renew_deadline_ms = 3000,
				  .retry_ms = 500,
				  .on_started = on_started,
				  .on_stopped = on_stopped};

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	pthread_mutex_init(&ca.mu, NULL);
	pthread_mutex_init(&cb.mu, NULL);
	o.ud = &ca;
	CU_ASSERT_EQUAL_FATAL(kaa__kube_lease_new(kube, ns, "elect", "cand-a", &o, &lease_a),
			      KAA_OK);
	o.ud = &cb;
	CU_ASSERT_EQUAL_FATAL(kaa__kube_lease_new(kube, ns, "elect", "cand-b", &o, &lease_b),
			      KAA_OK);
	CU_ASSERT_FATAL(kaa__test_wait_until(one_leader, NULL, 10000));
	/* never both, never none, for a while (several renewals) */
	bool both = false, none = false;
	int64_t end = kaa__now_ms() + 3000;
	while (kaa__now_ms() < end) {
		bool a = kaa__kube_lease_is_leader(lease_a), b = kaa__kube_lease_is_leader(lease_b);
		both |= a && b;
		none |= !a && !b;
		usleep(10000);
	}
	CU_ASSERT(!both);
	CU_ASSERT(!none);
	CU_ASSERT(kaa__kube_lease_healthy(lease_a));
	CU_ASSERT(kaa__kube_lease_healthy(lease_b));
	kaa__kube_lease *leader = kaa__kube_lease_is_leader(lease_a) ? lease_a : lease_b;
	kaa__kube_lease *other = leader == lease_a ? lease_b : lease_a;
	cand *lc = leader == lease_a ? &ca : &cb, *oc = leader == lease_a ? &cb : &ca;
	char *h = lease_holder();
	CU_ASSERT_STRING_EQUAL(h ? h : "", leader == lease_a ? "cand-a" : "cand-b");
	free(h);
	CU_ASSERT_EQUAL(lc->started, 1);
	CU_ASSERT_EQUAL(oc->started, 0);

	/* freeing the leader releases the Lease: the other leads at its next round */
	int64_t t0 = kaa__now_ms();
	kaa__kube_lease_free(leader);
	CU_ASSERT_EQUAL(lc->stopped, 1);
	/* release + one retry period (500 ms) + a request, with slack for sanitizers */
	CU_ASSERT(kaa__test_wait_until(b_leads, other, 3000));
	CU_ASSERT(kaa__now_ms() - t0 < 1500);
	h = lease_holder();
	CU_ASSERT_STRING_EQUAL(h ? h : "", leader == lease_a ? "cand-b" : "cand-a");
	free(h);
	CU_ASSERT_EQUAL(oc->started, 1);
	kaa__kube_lease_free(other);
	CU_ASSERT_EQUAL(oc->stopped, 1);
	h = lease_holder();
	CU_ASSERT_STRING_EQUAL(h ? h : "x", ""); /* released */
	free(h);
	lease_a = lease_b = NULL;

	/* bad options */
	kaa__kube_lease *bad = NULL;
	o.renew_deadline_ms = 5000; /* >= duration */
	CU_ASSERT_EQUAL(kaa__kube_lease_new(kube, ns, "elect", "x", &o, &bad), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_lease_new(kube, ns, "elect", "", NULL, &bad), KAA_ERR_INVAL);
	pthread_mutex_destroy(&ca.mu);
	pthread_mutex_destroy(&cb.mu);
}

/* ---- events ---- */

static int count_events(const char *reason, long long *series)
{
	char path[256], *body = NULL, err[128];
	int n = 0;
	static const char *const p_items[] = {"items", NULL};
	static const char *const p_reason[] = {"reason", NULL};
	static const char *const p_ctl[] = {"reportingController", NULL};
	static const char *const p_inst[] = {"reportingInstance", NULL};
	static const char *const p_cnt[] = {"series", "count", NULL};

	*series = 0;
	snprintf(path, sizeof(path), "/apis/events.k8s.io/v1/namespaces/%s/events", ns);
	if (req("GET", path, NULL, NULL, &body) != 200) {
		free(body);
		return -1;
	}
	yajl_val v = yajl_tree_parse(body, err, sizeof(err));
	free(body);
	yajl_val items = v;
	for (size_t i = 0; items && i < v->u.object.len; i++)
		if (strcmp(v->u.object.keys[i], p_items[0]) == 0)
			items = v->u.object.values[i];
	for (size_t i = 0; items && YAJL_IS_ARRAY(items) && i < items->u.array.len; i++) {
		yajl_val e = items->u.array.values[i];
		const char *r = kaa__kube_str(e, p_reason);
		if (!r || strcmp(r, reason) != 0)
			continue;
		n++;
		const char *c = kaa__kube_str(e, p_ctl), *inst = kaa__kube_str(e, p_inst);
		CU_ASSERT_STRING_EQUAL(c ? c : "", "kaaproject.org/kaa-operator");
		CU_ASSERT_STRING_EQUAL(inst ? inst : "", "test-kube-client");
		*series = kaa__kube_int(e, p_cnt, 0);
	}
	yajl_tree_free(v);
	return n;
}

static void test_events(void)
{
	kaa__kube_ref ref = {.api_version = "v1", .kind = "ConfigMap", .ns = ns, .name = "stays"};
	long long series = 0;
	char note[3000];

	CU_ASSERT_PTR_NOT_NULL_FATAL(kube);
	kaa__kube_recorder *rec = kaa__kube_recorder_new(kube);
	CU_ASSERT_EQUAL(kaa__kube_event(rec, &ref, "Normal", "Tested", "Reconcile", "first note"),
			KAA_OK);
	CU_ASSERT_EQUAL(count_events("Tested", &series), 1);
	CU_ASSERT_EQUAL(kaa__kube_event(rec, &ref, "Normal", "Tested", "Reconcile", "first note"),
			KAA_OK);
	CU_ASSERT_EQUAL(kaa__kube_event(rec, &ref, "Normal", "Tested", "Reconcile", "first note"),
			KAA_OK);
	CU_ASSERT_EQUAL(count_events("Tested", &series), 1);
	CU_ASSERT_EQUAL(series, 3);
	/* another note is another Event; an over-long note is cut, not refused */
	memset(note, 'n', sizeof(note) - 1);
	note[sizeof(note) - 1] = '\0';
	CU_ASSERT_EQUAL(kaa__kube_event(rec, &ref, "Warning", "Tested", "Reconcile", note), KAA_OK);
	CU_ASSERT_EQUAL(count_events("Tested", &series), 2);
	CU_ASSERT_EQUAL(kaa__kube_event(rec, &ref, "Bad", "Tested", "Reconcile", "x"),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__kube_event(rec, &ref, "Normal", "", "Reconcile", "x"), KAA_ERR_INVAL);
	kaa__kube_recorder_free(rec);
}

static const kaa__cu_test tests[] = {
	{"requests, apply, 404, metrics", test_requests},
	{"TLS is verified", test_tls_verified},
	{"informer add/modify/delete", test_informer},
	{"informer selector and resync", test_informer_selector_resync},
	{"informer list paging", test_informer_paging},
	{"lease election", test_lease},
	{"events with series", test_events},
	{"informer re-list after restart", test_informer_relist},
};

int main(void)
{
	return kaa__cu_run("kube_client", tests, KAA__CU_COUNT(tests), suite_init, suite_clean);
}
