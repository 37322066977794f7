/*
 * etcd_bench - our etcd client (gRPC C core + protobuf-c) beside etcd's
 * JSON gateway driven by libcurl, against the same etcd in the same run:
 *   - unary puts/s with 1 thread and with N threads;
 *   - watch latency (put -> event delivered) p50/p99, sequential puts.
 * Prints one table with the ratio ours/gateway for each figure.
 * Usage: etcd_bench --etcd URL [--seconds S] [--threads N] [--samples M]
 */
#include "base/clock.h"
#include "coord/coord.h"
#include "base/error.h"

#include <curl/curl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

static const char *etcd_url;
static double seconds = 3;
static int threads = 4;
static int samples = 200;

typedef struct worker {
	int id;
	bool gateway;
	kaa__coord *coord;
	long ops;
	long errors;
} worker;

static atomic_bool go_stop;

static void b64(const char *in, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)in, (int)strlen(in));
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

static void *put_worker(void *arg)
{
	worker *w = arg;
	char key[64], kb[128], body[512];
	CURL *h = NULL;
	char url[256];
	struct curl_slist *hdr = NULL;

	if (w->gateway) {
		h = curl_easy_init();
		snprintf(url, sizeof(url), "%s/v3/kv/put", etcd_url);
		hdr = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	}
	while (!atomic_load(&go_stop)) {
		snprintf(key, sizeof(key), "/bench/put/%d/%ld", w->id, w->ops % 1000);
		if (w->gateway) {
			b64(key, kb);
			snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"dmFsdWU=\"}", kb);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
			long code = 0;
			if (curl_easy_perform(h) != CURLE_OK ||
			    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK ||
			    code != 200)
				w->errors++;
			else
				w->ops++;
		} else if (kaa__coord_put(w->coord, key, "value", 5, 0, NULL) == KAA_OK) {
			w->ops++;
		} else {
			w->errors++;
		}
	}
	if (h) {
		curl_easy_cleanup(h);
		curl_slist_free_all(hdr);
	}
	return NULL;
}

static double run_puts(int n, bool gateway, long *errors)
{
	pthread_t t[64];
	worker w[64];
	kaa__coord *c = NULL;
	long total = 0;

	if (!gateway && kaa__coord_new_etcd(etcd_url, NULL, &c) != KAA_OK)
		return -1;
	atomic_store(&go_stop, false);
	int64_t t0 = kaa__now_ms();
	for (int i = 0; i < n; i++) {
		w[i] = (worker){.id = i, .gateway = gateway, .coord = c};
		pthread_create(&t[i], NULL, put_worker, &w[i]);
	}
	while (kaa__now_ms() - t0 < (int64_t)(seconds * 1000)) {
		struct timespec ts = {0, 50 * 1000000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&go_stop, true);
	*errors = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		total += w[i].ops;
		*errors += w[i].errors;
	}
	double el = (double)(kaa__now_ms() - t0) / 1000.0;
	kaa__coord_free(c);
	return (double)total / el;
}

/* ---- watch latency -------------------------------------------------------- */

typedef struct lat {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int64_t seen; /* sequence number of the last event seen */
	int64_t seen_at_us;
} lat;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void lat_mark(lat *l, int64_t seq)
{
	pthread_mutex_lock(&l->mu);
	if (seq > l->seen) {
		l->seen = seq;
		l->seen_at_us = now_us();
		pthread_cond_broadcast(&l->cond);
	}
	pthread_mutex_unlock(&l->mu);
}

static void on_ev(void *ud, const kaa__watch_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		lat_mark(ud, atoll(ev[i].kv.value));
}

static void on_reset(void *ud, const kaa__kv_list *s)
{
	(void)ud;
	(void)s;
}

/* Gateway watch: a streaming POST whose body is JSON lines. */
typedef struct gw_watch {
	lat *l;
	char buf[65536];
	size_t len;
	CURL *h;
	bool created;
} gw_watch;

static size_t gw_write(char *p, size_t s, size_t n, void *ud)
{
	gw_watch *g = ud;
	size_t len = s * n;
	if (g->len + len >= sizeof(g->buf))
		g->len = 0; /* a line larger than the buffer is dropped */
	memcpy(g->buf + g->len, p, len);
	g->len += len;
	g->buf[g->len] = '\0';
	char *nl;
	while ((nl = strchr(g->buf, '\n'))) {
		*nl = '\0';
		if (strstr(g->buf, "\"created\":true"))
			g->created = true;
		/* The value is base64 of a decimal sequence number. */
		char *v = strstr(g->buf, "\"value\":\"");
		if (v) {
			v += 9;
			char *e = strchr(v, '"');
			if (e) {
				unsigned char dec[64] = {0};
				*e = '\0';
				if (e - v < 80 &&
				    EVP_DecodeBlock(dec, (unsigned char *)v, (int)(e - v)) > 0)
					lat_mark(g->l, atoll((char *)dec));
			}
		}
		size_t rest = g->len - (size_t)(nl + 1 - g->buf);
		memmove(g->buf, nl + 1, rest);
		g->len = rest;
		g->buf[g->len] = '\0';
	}
	return len;
}

static int xfer(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)ud;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return atomic_load(&go_stop) ? 1 : 0;
}

static void *gw_watch_main(void *arg)
{
	gw_watch *g = arg;
	curl_easy_perform(g->h);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int watch_latency(bool gateway, double *p50, double *p99)
{
	lat l = {.seen = 0};
	kaa__coord *c = NULL;
	kaa__watch *w = NULL;
	gw_watch *g = NULL;
	pthread_t gt;
	CURL *ph = NULL;
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	char url[256], body[512], kb[128], vb[128], val[32], wbody[256];
	char key[64];
	int64_t *lats = calloc((size_t)samples, sizeof(*lats));
	int got = 0;

	snprintf(key, sizeof(key), "/bench/watch/%s", gateway ? "gw" : "grpc");
	pthread_mutex_init(&l.mu, NULL);
	pthread_cond_init(&l.cond, NULL);
	if (kaa__coord_new_etcd(etcd_url, NULL, &c) != KAA_OK)
		return -1;
	atomic_store(&go_stop, false);
	if (!gateway) {
		kaa__watch_cb cb = {.events = on_ev, .reset = on_reset, .ud = &l};
		kaa__coord_watch(c, key, 0, 0, &cb, &w);
		/* Wait until the stream is live: a put must come back. */
		for (int i = 0; i < 500 && kaa__coord_watch_revision(w) == 0; i++) {
			struct timespec ts = {0, 10 * 1000000};
			nanosleep(&ts, NULL);
		}
	} else {
		g = calloc(1, sizeof(*g));
		g->l = &l;
		g->h = curl_easy_init();
		b64(key, kb);
		snprintf(wbody, sizeof(wbody), "{\"create_request\":{\"key\":\"%s\"}}", kb);
		snprintf(url, sizeof(url), "%s/v3/watch", etcd_url);
		curl_easy_setopt(g->h, CURLOPT_URL, url);
		curl_easy_setopt(g->h, CURLOPT_POSTFIELDS, wbody);
		curl_easy_setopt(g->h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(g->h, CURLOPT_WRITEFUNCTION, gw_write);
		curl_easy_setopt(g->h, CURLOPT_WRITEDATA, g);
		curl_easy_setopt(g->h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(g->h, CURLOPT_XFERINFOFUNCTION, xfer);
		pthread_create(&gt, NULL, gw_watch_main, g);
		for (int i = 0; i < 500 && !g->created; i++) {
			struct timespec ts = {0, 10 * 1000000};
			nanosleep(&ts, NULL);
		}
		ph = curl_easy_init();
		snprintf(url, sizeof(url), "%s/v3/kv/put", etcd_url);
		curl_easy_setopt(ph, CURLOPT_URL, url);
		curl_easy_setopt(ph, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(ph, CURLOPT_WRITEFUNCTION, sink);
	}
	for (int i = 1; i <= samples; i++) {
		snprintf(val, sizeof(val), "%d", i);
		int64_t t0 = now_us();
		if (gateway) {
			b64(key, kb);
			b64(val, vb);
			snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", kb, vb);
			curl_easy_setopt(ph, CURLOPT_POSTFIELDS, body);
			t0 = now_us();
			curl_easy_perform(ph);
		} else {
			kaa__coord_put(c, key, val, strlen(val), 0, NULL);
		}
		pthread_mutex_lock(&l.mu);
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 2;
		while (l.seen < i)
			if (pthread_cond_timedwait(&l.cond, &l.mu, &dl) != 0)
				break;
		if (l.seen >= i)
			lats[got++] = l.seen_at_us - t0;
		pthread_mutex_unlock(&l.mu);
	}
	atomic_store(&go_stop, true);
	if (w)
		kaa__coord_watch_free(w);
	if (g) {
		pthread_join(gt, NULL);
		curl_easy_cleanup(g->h);
		curl_easy_cleanup(ph);
		free(g);
	}
	curl_slist_free_all(hdr);
	kaa__coord_free(c);
	if (got == 0) {
		free(lats);
		return -1;
	}
	qsort(lats, (size_t)got, sizeof(*lats), cmp64);
	*p50 = (double)lats[got / 2] / 1000.0;
	*p99 = (double)lats[(got * 99) / 100 < got ? (got * 99) / 100 : got - 1] / 1000.0;
	free(lats);
	return got == samples ? 0 : -1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"etcd", required_argument, NULL, 'e'},
					     {"seconds", required_argument, NULL, 's'},
					     {"threads", required_argument, NULL, 't'},
					     {"samples", required_argument, NULL, 'n'},
					     {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'e': etcd_url = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'n': samples = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!etcd_url || seconds <= 0 || threads < 1 || threads > 64 || samples < 1)
		goto usage;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	long e1, e2, e3, e4;
	double ours1 = run_puts(1, false, &e1), gw1 = run_puts(1, true, &e2);
	double oursN = run_puts(threads, false, &e3), gwN = run_puts(threads, true, &e4);
	double op50 = 0, op99 = 0, gp50 = 0, gp99 = 0;
	int wr1 = watch_latency(false, &op50, &op99);
	int wr2 = watch_latency(true, &gp50, &gp99);
	printf("%-34s %12s %12s %8s\n", "figure", "kaa client", "gateway", "ratio");
	printf("%-34s %12.0f %12.0f %8.2f\n", "puts/s, 1 thread", ours1, gw1, ours1 / gw1);
	char label[64];
	snprintf(label, sizeof(label), "puts/s, %d threads", threads);
	printf("%-34s %12.0f %12.0f %8.2f\n", label, oursN, gwN, oursN / gwN);
	printf("%-34s %12.3f %12.3f %8.2f\n", "watch latency p50 (ms)", op50, gp50, op50 / gp50);
	printf("%-34s %12.3f %12.3f %8.2f\n", "watch latency p99 (ms)", op99, gp99, op99 / gp99);
	printf("errors: puts %ld/%ld/%ld/%ld, watch samples complete: %s/%s\n", e1, e2, e3, e4,
	       wr1 == 0 ? "yes" : "no", wr2 == 0 ? "yes" : "no");
	curl_global_cleanup();
	return (e1 || e3 || wr1 != 0) ? 1 : 0;
usage:
	fprintf(stderr, "usage: etcd_bench --etcd URL [--seconds S] [--threads N] [--samples M]\n");
	return 2;
}
