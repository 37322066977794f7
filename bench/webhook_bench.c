/*
 * webhook_bench - acknowledged log records/s through the webhook log
 * appender (lib/appender/webhook_appender.c) beside bare libcurl POSTs of
 * the same bodies to the same receiver in the same run.
 *
 * The receiver is an HTTP/1.1 server in this process (lib/http, keep-alive,
 * 4 workers) that answers 200 to every POST and keeps the first body it
 * saw. Both sides keep W requests in flight over keep-alive connections
 * (the appender: max_parallel W; bare: a curl multi handle with W easy
 * handles) and sign every body with HMAC-SHA256 as the appender does; a
 * batch counts when its 2xx answer arrived. The bare side sends the body
 * the appender sent in the first round, so both move the same bytes.
 * Two rounds, the second in the other order; prints records/s and the
 * ratio kaa/bare (1 = no overhead).
 *
 * Usage: webhook_bench [--seconds S] [--records R] [--window W]
 */
#include "appender/log_appender.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "http/http_server.h"

#include <curl/curl.h>
#include <getopt.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RECORDS 1000
#define ENDPOINTS 16

static double seconds = 3;
static int nrec = 50, window = 4;
static const char *recs[MAX_RECORDS];
static char rec_buf[MAX_RECORDS][96];
static char keys[ENDPOINTS][48];
static const char secret[] = "bench-secret-0123456789";

/* ---- the receiver ------------------------------------------------------------ */

static pthread_mutex_t body_mu = PTHREAD_MUTEX_INITIALIZER;
static char *first_body;
static size_t first_len;

static void receive(const kaa__http_request *req, kaa__http_response *resp, void *ud)
{
	(void)ud;
	if (strcmp(req->method, "POST") != 0) {
		kaa__http_respond(resp, 405, "text/plain", "", 0);
		return;
	}
	pthread_mutex_lock(&body_mu);
	if (!first_body && req->body_len) {
		first_body = malloc(req->body_len);
		if (first_body) {
			memcpy(first_body, req->body, req->body_len);
			first_len = req->body_len;
		}
	}
	pthread_mutex_unlock(&body_mu);
	kaa__http_respond(resp, 200, "application/json", "{}", 2);
}

/* ---- the window -------------------------------------------------------------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight;
static long acked_records, failed_batches;

static void kaa_done(void *arg, const kaa__log_status *st)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	inflight--;
	if (st->result == KAA_LOG_OK)
		acked_records += nrec;
	else
		failed_batches++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static double run_kaa(const char *url)
{
	char settings[512], err[256];
	snprintf(settings, sizeof(settings),
		 "{\"type\":\"webhook\",\"url\":\"%s\",\"secret\":\"%s\",\"max_parallel\":%d,"
		 "\"max_queue\":%d}",
		 url, secret, window, window * 4);
	kaa__log_appender_env env = {.app_token = "bench"};
	kaa__log_appender *a = NULL;
	if (kaa__log_appender_new(1, 1, "bench", settings, &env, &a, err, sizeof(err)) != KAA_OK) {
		fprintf(stderr, "webhook_bench: appender: %s\n", err);
		return -1;
	}
	inflight = 0;
	acked_records = failed_batches = 0;
	int64_t t0 = kaa__now_ms(), end = t0 + (int64_t)(seconds * 1000);
	long seq = 0;
	while (kaa__now_ms() < end) {
		pthread_mutex_lock(&mu);
		while (inflight >= window)
			pthread_cond_wait(&cv, &mu);
		inflight++;
		pthread_mutex_unlock(&mu);
		char batch_id[32];
		snprintf(batch_id, sizeof(batch_id), "b%ld", seq);
		kaa__log_batch b = {.app_id = 1,
				    .key_hash = keys[seq % ENDPOINTS],
				    .batch_id = batch_id,
				    .schema_version = 1,
				    .records = recs,
				    .n = (size_t)nrec,
				    .received_ms = kaa__now_ms()};
		seq++;
		kaa__log_appender_submit(a, &b, kaa_done, NULL);
	}
	pthread_mutex_lock(&mu);
	while (inflight > 0)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	double dt = (double)(kaa__now_ms() - t0) / 1000.0;
	kaa__log_appender_free(a);
	if (failed_batches)
		fprintf(stderr, "webhook_bench: kaa: %ld batches not acknowledged\n",
			failed_batches);
	return (double)acked_records / dt;
}

/* ---- bare libcurl ------------------------------------------------------------- */

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

/* One POST of body on h, signed like the appender signs. */
static void start_post(CURLM *m, CURL *h, const char *url, struct curl_slist **hdrs)
{
	unsigned char mac[32];
	unsigned int ml = 0;
	char sig[100] = "X-Kaa-Signature: sha256=";
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)first_body,
	     first_len, mac, &ml);
	for (unsigned i = 0; i < ml; i++)
		snprintf(sig + 24 + 2 * i, 3, "%02x", mac[i]);
	curl_slist_free_all(*hdrs);
	*hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	*hdrs = curl_slist_append(*hdrs, sig);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, first_body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)first_len);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
	curl_multi_add_handle(m, h);
}

static double run_bare(const char *url)
{
	CURLM *m = curl_multi_init();
	CURL *h[64];
	struct curl_slist *hdrs[64] = {0};
	long acked = 0, failed = 0;
	int running = 0;
	for (int i = 0; i < window; i++)
		h[i] = curl_easy_init();
	int64_t t0 = kaa__now_ms(), end = t0 + (int64_t)(seconds * 1000);
	for (int i = 0; i < window; i++)
		start_post(m, h[i], url, &hdrs[i]);
	int open = window;
	while (open > 0) {
		curl_multi_perform(m, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(m, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			CURL *e = msg->easy_handle;
			long code = 0;
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
			if (msg->data.result == CURLE_OK && code / 100 == 2)
				acked += nrec;
			else
				failed++;
			curl_multi_remove_handle(m, e);
			int i = 0;
			while (h[i] != e)
				i++;
			if (kaa__now_ms() < end)
				start_post(m, e, url, &hdrs[i]);
			else
				open--;
		}
		if (open > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	double dt = (double)(kaa__now_ms() - t0) / 1000.0;
	for (int i = 0; i < window; i++) {
		curl_easy_cleanup(h[i]);
		curl_slist_free_all(hdrs[i]);
	}
	curl_multi_cleanup(m);
	if (failed)
		fprintf(stderr, "webhook_bench: bare: %ld requests failed\n", failed);
	return (double)acked / dt;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
					     {"records", required_argument, NULL, 'r'},
					     {"window", required_argument, NULL, 'w'},
					     {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 's': seconds = atof(optarg); break;
		case 'r': nrec = atoi(optarg); break;
		case 'w': window = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (nrec < 1 || nrec > MAX_RECORDS || window < 1 || window > 64 || seconds <= 0)
		goto usage;
	kaa__log_level = KAA_LOG_WARN;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	for (int i = 0; i < nrec; i++) {
		snprintf(rec_buf[i], sizeof(rec_buf[i]),
			 "{\"device\":%d,\"seq\":%d,\"temperature\":21.5,\"status\":\"ok\"}", i % 7,
			 i);
		recs[i] = rec_buf[i];
	}
	for (int i = 0; i < ENDPOINTS; i++)
		snprintf(keys[i], sizeof(keys[i]), "bench-endpoint-%02d-key-hash-xxxxxxxxxxxxxxx",
			 i);

	kaa__http_server *srv = NULL;
	if (kaa__http_server_new("127.0.0.1", 0, NULL, receive, NULL, &srv) != KAA_OK ||
	    kaa__http_server_start(srv) != KAA_OK) {
		fprintf(stderr, "webhook_bench: cannot start the receiver\n");
		return 1;
	}
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ingest", kaa__http_server_port(srv));

	double k1 = run_kaa(url);
	if (k1 <= 0 || !first_body)
		return 1;
	double b1 = run_bare(url), b2 = run_bare(url), k2 = run_kaa(url);
	printf("## webhook appender vs bare libcurl (%d records/batch, %d in flight, %.0f s, "
	       "%zu-byte bodies, one receiver on loopback)\n",
	       nrec, window, seconds, first_len);
	printf("| round | kaa records/s | bare records/s | ratio |\n|---|--:|--:|--:|\n");
	printf("| 1 (kaa first) | %.0f | %.0f | %.2f |\n", k1, b1, b1 > 0 ? k1 / b1 : 0);
	printf("| 2 (bare first) | %.0f | %.0f | %.2f |\n", k2, b2, b2 > 0 ? k2 / b2 : 0);
	kaa__http_server_free(srv);
	free(first_body);
	curl_global_cleanup();
	return 0;
usage:
	fprintf(stderr, "usage: webhook_bench [--seconds S] [--records R] [--window W]\n");
	return 2;
}
