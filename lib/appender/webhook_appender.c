/*
 * webhook_appender.c - the "webhook" log appender: each batch is POSTed to
 * a configured URL by the appender's own thread (libcurl multi), and the
 * batch is confirmed when the receiver answers 2xx.
 *
 * Settings (members of the settings object; unknown ones are an error):
 *   "type": "webhook"
 *   "url": "http(s)://..."   required, at most 2048 bytes, no spaces/controls
 *   "secret": "..."          required, 16..4096 bytes, write-only (the control
 *                            service masks it); the key of X-Kaa-Signature
 *   "format": "json"         (default) one object per batch, or "ndjson"
 *   "timeout_ms": 10000      one attempt (connect + request + answer), 100..120000
 *   "deadline_ms": 30000     all attempts of one submit, 1000..600000; then
 *                            the batch is answered RETRY (the device re-sends)
 *   "backoff_ms": 200        first retry delay, 10..60000; doubles per attempt
 *                            up to "max_backoff_ms" (5000, 10..600000), each
 *                            delay drawn uniformly from [d/2, d] (jitter)
 *   "max_queue": 1000        batches queued or in flight, 1..100000; beyond
 *                            it submit answers RATE_LIMITED at once
 *   "max_parallel": 4        requests at once, 1..64
 *   "ca_pem": "-----BEGIN CERTIFICATE-----..."  optional: trust these CAs
 *                            instead of the system store (TLS is always
 *                            verified, host name included)
 *
 * The request:
 *   POST url
 *   Content-Type: application/json | application/x-ndjson
 *   X-Kaa-Signature: sha256=<hex HMAC-SHA256(secret, body)>
 *   Idempotency-Key: <hex SHA-256 of "app:appender:endpoint:batch", 64 chars>
 *     the same for every attempt and for the device's re-sends of the batch,
 *     so a receiver that keeps the keys it stored sees each batch once
 *   X-Kaa-Batch, X-Kaa-Endpoint, X-Kaa-Records: batch id, key hash, count
 * json:   {"app":1,"appender":2,"endpoint":"..","batch":"..","schema_version":1,
 *          "received_ms":..,"records":[<record>,...]}
 * ndjson: one line per record as the file appender writes them.
 *
 * Answers: 2xx confirms. 408, 429, 5xx, and transport errors (connect,
 * TLS, timeout) are retried with backoff until deadline_ms; any other
 * status (3xx are not followed, 4xx) is a permanent failure ("HTTP 400").
 *
 * Threads: submit from any thread (it copies the batch into the queue and
 * wakes the worker); the worker owns the multi handle and every easy
 * handle and makes every callback. close joins the worker, which fails
 * what is left; from inside a callback (the worker itself) close fails
 * what is left there and then, and the worker frees everything and
 * detaches when the callback returns.
 */
#include "appender/appender_type.h"

#include "base/alloc.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "json/json_merge.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "webhook_appender"
#define URL_MAX 2048
#define SECRET_MIN 16
#define SECRET_MAX 4096
#define MASK "********"

typedef struct wh_settings {
	const char *url, *secret, *ca_pem; /* point into the settings tree */
	bool ndjson;
	int64_t timeout_ms, deadline_ms, backoff_ms, max_backoff_ms, max_queue, max_parallel;
} wh_settings;

/* One batch: queued (waiting, perhaps for its backoff) or in flight. */
typedef struct job {
	struct job *next;
	char *body;
	size_t len;
	struct curl_slist *headers;
	CURL *easy; /* while in flight */
	int64_t deadline_ms, due_ms;
	int attempts;
	bool last_timeout; /* the last attempt timed out */
	long last_status;  /* 0: transport error */
	char batch_id[KAA_EP_BATCH_ID_MAX + 1];
	char err[CURL_ERROR_SIZE];
	kaa__log_done_fn *done;
	void *arg;
} job;

typedef struct webhook {
	int64_t app_id, id;
	char *url, *ca_pem;
	unsigned char *secret;
	size_t secret_len;
	bool ndjson;
	int64_t timeout_ms, deadline_ms, backoff_ms, max_backoff_ms;
	size_t max_queue, max_parallel;
	kaa__counter *retries;

	CURLM *multi;
	pthread_t thread;
	uint64_t rng;            /* worker only */
	pthread_mutex_t mu;      /* guards the fields below */
	job *queue, *queue_tail; /* submitted, not yet handed to the worker */
	size_t n_jobs;           /* queued + waiting + in flight */
	bool stop;
	bool self_close; /* close ran on the worker: it cleans up when it can */
	/* worker only */
	job *waiting; /* backoff or beyond max_parallel, due order not kept */
	job *active;
	size_t n_active;
} webhook;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		KAA_ERROR(MOD, "%s", "curl_global_init_failed");
}

/* ---- settings ------------------------------------------------------------------ */

static bool url_ok(const char *u)
{
	size_t n = strlen(u);
	if (n > URL_MAX || !(strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0))
		return false;
	const char *host = u + (u[4] == 's' ? 8 : 7);
	if (!*host || *host == '/' || *host == ':')
		return false;
	for (const unsigned char *p = (const unsigned char *)u; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

static const struct {
	const char *name;
	int64_t lo, hi, def;
	size_t off;
} ints[] = {
	{"timeout_ms", 100, 120000, 10000, offsetof(wh_settings, timeout_ms)},
	{"deadline_ms", 1000, 600000, 30000, offsetof(wh_settings, deadline_ms)},
	{"backoff_ms", 10, 60000, 200, offsetof(wh_settings, backoff_ms)},
	{"max_backoff_ms", 10, 600000, 5000, offsetof(wh_settings, max_backoff_ms)},
	{"max_queue", 1, 100000, 1000, offsetof(wh_settings, max_queue)},
	{"max_parallel", 1, 64, 4, offsetof(wh_settings, max_parallel)},
};
#define N_INTS (sizeof(ints) / sizeof(ints[0]))

/* Checks v (an object) and fills *s from it (pointers into v). */
static int parse(yajl_val v, wh_settings *s, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < N_INTS; i++)
		*(int64_t *)((char *)s + ints[i].off) = ints[i].def;
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val m = v->u.object.values[i];
		if (strcmp(k, "type") == 0)
			continue;
		if (strcmp(k, "url") == 0) {
			if (!YAJL_IS_STRING(m) || !url_ok(m->u.string)) {
				kaa__appender_set_err(
					err, errlen, "%s",
					"settings.url: an http:// or https:// URL of at"
					" most 2048 bytes without spaces");
				return KAA_ERR_INVAL;
			}
			s->url = m->u.string;
		} else if (strcmp(k, "secret") == 0) {
			size_t n = YAJL_IS_STRING(m) ? strlen(m->u.string) : 0;
			if (n < SECRET_MIN || n > SECRET_MAX || strcmp(m->u.string, MASK) == 0) {
				kaa__appender_set_err(err, errlen, "%s",
						      "settings.secret: a string of 16..4096 bytes"
						      " (send the secret itself, not the mask)");
				return KAA_ERR_INVAL;
			}
			s->secret = m->u.string;
		} else if (strcmp(k, "format") == 0) {
			if (!YAJL_IS_STRING(m) || (strcmp(m->u.string, "json") != 0 &&
						   strcmp(m->u.string, "ndjson") != 0)) {
				kaa__appender_set_err(err, errlen, "%s",
						      "settings.format: \"json\" or \"ndjson\"");
				return KAA_ERR_INVAL;
			}
			s->ndjson = strcmp(m->u.string, "ndjson") == 0;
		} else if (strcmp(k, "ca_pem") == 0) {
			if (!YAJL_IS_STRING(m) ||
			    !strstr(m->u.string, "-----BEGIN CERTIFICATE-----")) {
				kaa__appender_set_err(err, errlen, "%s",
						      "settings.ca_pem: PEM certificates");
				return KAA_ERR_INVAL;
			}
			s->ca_pem = m->u.string;
		} else {
			size_t j = 0;
			while (j < N_INTS && strcmp(k, ints[j].name) != 0)
				j++;
			int64_t x;
			if (j == N_INTS) {
				kaa__appender_set_err(err, errlen, "settings.%s: unknown member",
						      k);
				return KAA_ERR_INVAL;
			}
			if (!YAJL_IS_NUMBER(m) || !kaa__json_int64(m, &x) || x < ints[j].lo ||
			    x > ints[j].hi) {
				kaa__appender_set_err(err, errlen,
						      "settings.%s: an integer %" PRId64
						      "..%" PRId64,
						      k, ints[j].lo, ints[j].hi);
				return KAA_ERR_INVAL;
			}
			*(int64_t *)((char *)s + ints[j].off) = x;
		}
	}
	if (!s->url) {
		kaa__appender_set_err(err, errlen, "%s", "settings.url: required");
		return KAA_ERR_INVAL;
	}
	if (!s->secret) {
		kaa__appender_set_err(err, errlen, "%s", "settings.secret: required");
		return KAA_ERR_INVAL;
	}
	if (s->max_backoff_ms < s->backoff_ms) {
		kaa__appender_set_err(err, errlen, "%s",
				      "settings.max_backoff_ms: at least backoff_ms");
		return KAA_ERR_INVAL;
	}
	if (s->deadline_ms < s->timeout_ms) {
		kaa__appender_set_err(err, errlen, "%s",
				      "settings.deadline_ms: at least timeout_ms");
		return KAA_ERR_INVAL;
	}
	return KAA_OK;
}

static int wh_check(yajl_val v, char *err, size_t errlen)
{
	wh_settings s;
	return parse(v, &s, err, errlen);
}

/* ---- requests ------------------------------------------------------------------- */

static void hex(const unsigned char *p, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* batch ids and key hashes are checked (no control characters): only '"'
 * and '\\' need escaping */
static void put_json_str(kaa__buf *b, const char *s)
{
	kaa__buf_put(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			kaa__buf_put(b, "\\", 1);
		kaa__buf_put(b, s, 1);
	}
	kaa__buf_put(b, "\"", 1);
}

/* a record's raw line breaks (whitespace between tokens) become spaces */
static void put_record(kaa__buf *b, const char *r)
{
	size_t start = b->len;
	if (kaa__buf_puts(b, r) != KAA_OK)
		return;
	for (size_t k = start; k < b->len; k++)
		if (b->p[k] == '\n' || b->p[k] == '\r')
			b->p[k] = ' ';
}

static void build_body(const webhook *w, const kaa__log_batch *bt, kaa__buf *b)
{
	if (!w->ndjson) {
		kaa__buf_printf(b, "{\"app\":%" PRId64 ",\"appender\":%" PRId64 ",\"endpoint\":",
				w->app_id, w->id);
		put_json_str(b, bt->key_hash);
		kaa__buf_puts(b, ",\"batch\":");
		put_json_str(b, bt->batch_id);
		kaa__buf_printf(b,
				",\"schema_version\":%" PRId64 ",\"received_ms\":%" PRId64
				",\"records\":[",
				bt->schema_version, bt->received_ms);
		for (size_t i = 0; i < bt->n; i++) {
			if (i)
				kaa__buf_put(b, ",", 1);
			put_record(b, bt->records[i]);
		}
		kaa__buf_puts(b, "]}");
		return;
	}
	for (size_t i = 0; i < bt->n; i++) {
		kaa__buf_printf(b, "{\"app\":%" PRId64 ",\"endpoint\":", w->app_id);
		put_json_str(b, bt->key_hash);
		kaa__buf_puts(b, ",\"batch\":");
		put_json_str(b, bt->batch_id);
		kaa__buf_printf(b,
				",\"index\":%zu,\"batch_size\":%zu,\"received_ms\":%" PRId64
				",\"schema_version\":%" PRId64 ",\"record\":",
				i, bt->n, bt->received_ms, bt->schema_version);
		put_record(b, bt->records[i]);
		kaa__buf_put(b, "}\n", 2);
	}
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h)
{
	struct curl_slist *n = curl_slist_append(l, h);
	if (!n)
		kaa__oom();
	return n;
}

static job *job_new(const webhook *w, const kaa__log_batch *bt, kaa__log_done_fn *done, void *arg)
{
	job *j = kaa__xcalloc(1, sizeof(*j));
	kaa__buf b = {0};
	unsigned char mac[EVP_MAX_MD_SIZE], key[SHA256_DIGEST_LENGTH];
	unsigned int mac_len = 0;
	char mac_hex[2 * EVP_MAX_MD_SIZE + 1], key_hex[2 * SHA256_DIGEST_LENGTH + 1];

	build_body(w, bt, &b);
	if (b.err != KAA_OK)
		kaa__oom();
	j->len = b.len;
	j->body = b.p; /* taken from the buffer */
	if (!HMAC(EVP_sha256(), w->secret, (int)w->secret_len, (const unsigned char *)j->body,
		  j->len, mac, &mac_len))
		kaa__oom(); /* the only failure of a one-shot HMAC-SHA256 */
	hex(mac, mac_len, mac_hex);
	char *idem = kaa__xasprintf("%" PRId64 ":%" PRId64 ":%s:%s", w->app_id, w->id, bt->key_hash,
				    bt->batch_id);
	SHA256((const unsigned char *)idem, strlen(idem), key);
	free(idem);
	hex(key, sizeof(key), key_hex);

	char *h[6];
	h[0] = kaa__xasprintf("Content-Type: %s",
			      w->ndjson ? "application/x-ndjson" : "application/json");
	h[1] = kaa__xasprintf("X-Kaa-Signature: sha256=%s", mac_hex);
	h[2] = kaa__xasprintf("Idempotency-Key: %s", key_hex);
	h[3] = kaa__xasprintf("X-Kaa-Batch: %s", bt->batch_id);
	h[4] = kaa__xasprintf("X-Kaa-Endpoint: %s", bt->key_hash);
	h[5] = kaa__xasprintf("X-Kaa-Records: %zu", bt->n);
	for (size_t i = 0; i < 6; i++) {
		j->headers = add_header(j->headers, h[i]);
		free(h[i]);
	}
	j->headers = add_header(j->headers, "Expect:"); /* no 100-continue round trip */
	snprintf(j->batch_id, sizeof(j->batch_id), "%s", bt->batch_id);
	j->deadline_ms = kaa__now_ms() + w->deadline_ms;
	j->done = done;
	j->arg = arg;
	return j;
}

static void job_free(job *j)
{
	if (!j)
		return;
	curl_slist_free_all(j->headers);
	free(j->body);
	free(j);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* Hands j to curl; false when the easy handle could not be set up. */
static bool start(webhook *w, job *j)
{
	int64_t left = j->deadline_ms - kaa__now_ms();
	long timeout = (long)(left < w->timeout_ms ? left : w->timeout_ms);
	if (timeout < 1)
		timeout = 1;
	CURL *e = curl_easy_init();
	if (!e)
		kaa__oom();
	j->err[0] = '\0';
	j->attempts++;
	int rc = curl_easy_setopt(e, CURLOPT_URL, w->url) |
		 curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") |
		 curl_easy_setopt(e, CURLOPT_POST, 1L) |
		 curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body) |
		 curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->len) |
		 curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers) |
		 curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout) |
		 curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout) |
		 curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) |
		 curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L) |
		 curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L) |
		 curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L) |
		 curl_easy_setopt(e, CURLOPT_USERAGENT, "kaa-node webhook appender") |
		 curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard) |
		 curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->err) |
		 curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	if (w->ca_pem) {
		struct curl_blob blob = {
			.data = w->ca_pem, .len = strlen(w->ca_pem), .flags = CURL_BLOB_COPY};
		rc |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (rc != CURLE_OK || curl_multi_add_handle(w->multi, e) != CURLM_OK) {
		KAA_ERROR(MOD, "curl_setup_failed app=%" PRId64 " appender=%" PRId64, w->app_id,
			  w->id);
		curl_easy_cleanup(e);
		return false;
	}
	j->easy = e;
	j->next = w->active;
	w->active = j;
	w->n_active++;
	return true;
}

/* Ends j with its callback (worker thread, no lock held). */
static void finish(webhook *w, job *j, kaa__log_result r, int err, const char *reason)
{
	kaa__log_done_fn *done = j->done;
	void *arg = j->arg;
	job_free(j);
	pthread_mutex_lock(&w->mu);
	w->n_jobs--;
	pthread_mutex_unlock(&w->mu);
	kaa__appender_done(done, arg, r, err, false, reason);
}

static uint64_t next_rand(webhook *w)
{
	/* xorshift64*: jitter needs no cryptographic quality */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 0x2545F4914F6CDD1Dull;
}

/* The answer (or transport error) of j's attempt: confirm, give up or
 * schedule the next attempt. */
static void attempt_done(webhook *w, job *j, CURLcode res)
{
	long code = 0;
	char reason[CURL_ERROR_SIZE + 64];
	if (res == CURLE_OK)
		curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(w->multi, j->easy);
	curl_easy_cleanup(j->easy);
	j->easy = NULL;
	j->last_status = code;
	j->last_timeout = res == CURLE_OPERATION_TIMEDOUT;
	if (res == CURLE_OK && code >= 200 && code < 300) {
		finish(w, j, KAA_LOG_OK, KAA_OK, NULL);
		return;
	}
	if (res == CURLE_OK && code != 408 && code != 429 && code < 500) {
		snprintf(reason, sizeof(reason), "webhook refused the batch: HTTP %ld", code);
		KAA_WARN(MOD,
			 "batch_refused app=%" PRId64 " appender=%" PRId64 " batch=%s status=%ld",
			 w->app_id, w->id, j->batch_id, code);
		finish(w, j, KAA_LOG_PERMANENT, KAA_ERR_PROTOCOL, reason);
		return;
	}
	if (res == CURLE_OK)
		snprintf(reason, sizeof(reason), "webhook answered HTTP %ld", code);
	else
		snprintf(reason, sizeof(reason), "webhook unreachable: %s",
			 j->err[0] ? j->err : curl_easy_strerror(res));
	int64_t d = w->backoff_ms;
	for (int i = 1; i < j->attempts && d < w->max_backoff_ms; i++)
		d *= 2;
	if (d > w->max_backoff_ms)
		d = w->max_backoff_ms;
	d = d / 2 + (int64_t)(next_rand(w) % (uint64_t)(d / 2 + 1));
	int64_t now = kaa__now_ms();
	/* an attempt needs some time of its own before the deadline */
	if (now + d + 10 >= j->deadline_ms) {
		KAA_WARN(MOD,
			 "batch_deadline app=%" PRId64 " appender=%" PRId64
			 " batch=%s attempts=%d last=\"%s\"",
			 w->app_id, w->id, j->batch_id, j->attempts, reason);
		finish(w, j, KAA_LOG_RETRY, j->last_timeout ? KAA_ERR_TIMEOUT : KAA_ERR_UNAVAILABLE,
		       reason);
		return;
	}
	KAA_DEBUG(MOD,
		  "batch_retry app=%" PRId64 " appender=%" PRId64 " batch=%s attempt=%d"
		  " delay_ms=%" PRId64 " last=\"%s\"",
		  w->app_id, w->id, j->batch_id, j->attempts, d, reason);
	kaa__counter_inc(w->retries);
	j->due_ms = now + d;
	j->next = w->waiting;
	w->waiting = j;
}

/* Fails every batch the worker or the queue holds (worker thread). */
static void fail_all(webhook *w)
{
	pthread_mutex_lock(&w->mu);
	job *q = w->queue;
	w->queue = w->queue_tail = NULL;
	pthread_mutex_unlock(&w->mu);
	for (job *j = w->active; j; j = j->next) {
		curl_multi_remove_handle(w->multi, j->easy);
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
	}
	job *lists[] = {q, w->waiting, w->active};
	w->waiting = w->active = NULL;
	w->n_active = 0;
	for (size_t i = 0; i < 3; i++)
		for (job *j = lists[i], *next; j; j = next) {
			next = j->next;
			finish(w, j, KAA_LOG_RETRY, KAA_ERR_CANCELED, "appender closed");
		}
}

static void destroy(webhook *w)
{
	curl_multi_cleanup(w->multi);
	pthread_mutex_destroy(&w->mu);
	if (w->secret)
		OPENSSL_cleanse(w->secret, w->secret_len);
	free(w->secret);
	free(w->url);
	free(w->ca_pem);
	free(w);
}

/* true when close ran inside a callback: the worker must clean up and leave */
static bool self_closed(webhook *w)
{
	pthread_mutex_lock(&w->mu);
	bool c = w->self_close;
	pthread_mutex_unlock(&w->mu);
	return c;
}

static void *worker(void *arg)
{
	webhook *w = arg;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		bool stop = w->stop;
		job *q = stop ? NULL : w->queue; /* on stop fail_all takes the queue */
		if (!stop)
			w->queue = w->queue_tail = NULL;
		pthread_mutex_unlock(&w->mu);
		if (stop)
			break;
		/* new batches join the waiting ones (due now) */
		for (job *j = q, *next; j; j = next) {
			next = j->next;
			j->due_ms = 0;
			j->next = w->waiting;
			w->waiting = j;
		}
		int64_t now = kaa__now_ms(), next_due = INT64_MAX;
		for (job **pp = &w->waiting; *pp;) {
			job *j = *pp;
			if (j->due_ms <= now && w->n_active < w->max_parallel) {
				*pp = j->next;
				if (!start(w, j)) {
					finish(w, j, KAA_LOG_RETRY, KAA_ERR_INTERNAL,
					       "webhook request setup failed");
					if (self_closed(w))
						goto self;
				}
				continue;
			}
			if (j->due_ms > now && j->due_ms < next_due)
				next_due = j->due_ms;
			else if (j->due_ms <= now)
				next_due = now; /* over max_parallel: when one ends */
			pp = &j->next;
		}
		int running = 0;
		curl_multi_perform(w->multi, &running);
		CURLMsg *m;
		int left;
		bool ended = false;
		while ((m = curl_multi_info_read(w->multi, &left))) {
			if (m->msg != CURLMSG_DONE)
				continue;
			job *j = NULL;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			CURLcode res = m->data.result;
			for (job **pp = &w->active; *pp; pp = &(*pp)->next)
				if (*pp == j) {
					*pp = j->next;
					break;
				}
			w->n_active--;
			ended = true;
			attempt_done(w, j, res);
			if (self_closed(w))
				goto self;
		}
		if (ended)
			continue; /* a slot is free or a retry is scheduled: rescan */
		long wait = 1000;
		if (next_due != INT64_MAX && w->n_active < w->max_parallel)
			wait = (long)(next_due > now ? next_due - now : 0);
		long ct = -1;
		curl_multi_timeout(w->multi, &ct);
		if (ct >= 0 && ct < wait)
			wait = ct;
		curl_multi_poll(w->multi, NULL, 0, (int)(wait > 1000 ? 1000 : wait), NULL);
	}
	fail_all(w);
	return NULL;
self:
	/* close already failed everything; nobody joins this thread */
	pthread_detach(pthread_self());
	destroy(w);
	return NULL;
}

/* ---- the type ------------------------------------------------------------------- */

static int wh_open(const kaa__appender_args *args, yajl_val v, void **impl, char *err,
		   size_t errlen)
{
	wh_settings s;
	int rc = parse(v, &s, err, errlen);
	if (rc != KAA_OK)
		return rc;
	pthread_once(&curl_once, curl_init);
	webhook *w = kaa__xcalloc(1, sizeof(*w));
	w->app_id = args->app_id;
	w->id = args->id;
	w->url = kaa__xstrdup(s.url);
	w->secret_len = strlen(s.secret);
	w->secret = (unsigned char *)kaa__xstrdup(s.secret);
	w->ca_pem = s.ca_pem ? kaa__xstrdup(s.ca_pem) : NULL;
	w->ndjson = s.ndjson;
	w->timeout_ms = s.timeout_ms;
	w->deadline_ms = s.deadline_ms;
	w->backoff_ms = s.backoff_ms;
	w->max_backoff_ms = s.max_backoff_ms;
	w->max_queue = (size_t)s.max_queue;
	w->max_parallel = (size_t)s.max_parallel;
	w->retries = args->retries;
	w->rng = (uint64_t)kaa__now_ms() ^ ((uint64_t)(uintptr_t)w << 16) ^ (uint64_t)args->id;
	if (!w->rng)
		w->rng = 1;
	pthread_mutex_init(&w->mu, NULL);
	w->multi = curl_multi_init();
	if (!w->multi)
		kaa__oom();
	if (pthread_create(&w->thread, NULL, worker, w) != 0) {
		kaa__appender_set_err(err, errlen, "%s", "cannot start the webhook thread");
		destroy(w);
		return KAA_ERR_IO;
	}
	KAA_INFO(MOD, "webhook_open app=%" PRId64 " appender=%" PRId64 " format=%s", w->app_id,
		 w->id, w->ndjson ? "ndjson" : "json");
	*impl = w;
	return KAA_OK;
}

static void wh_submit(void *impl, const kaa__log_batch *b, kaa__log_done_fn *done, void *arg)
{
	webhook *w = impl;
	pthread_mutex_lock(&w->mu);
	bool full = w->n_jobs >= w->max_queue, stopped = w->stop;
	if (!full && !stopped)
		w->n_jobs++; /* reserved before the copy so the bound holds */
	pthread_mutex_unlock(&w->mu);
	if (stopped) {
		kaa__appender_done(done, arg, KAA_LOG_RETRY, KAA_ERR_CANCELED, false,
				   "appender closed");
		return;
	}
	if (full) {
		kaa__appender_done(done, arg, KAA_LOG_RATE_LIMITED, KAA_ERR_UNAVAILABLE, false,
				   "webhook queue full");
		return;
	}
	job *j = job_new(w, b, done, arg);
	pthread_mutex_lock(&w->mu);
	/* closed meanwhile: the worker no longer takes the queue */
	stopped = w->stop;
	if (stopped) {
		w->n_jobs--;
	} else {
		if (w->queue_tail)
			w->queue_tail->next = j;
		else
			w->queue = j;
		w->queue_tail = j;
	}
	pthread_mutex_unlock(&w->mu);
	if (stopped) {
		job_free(j);
		kaa__appender_done(done, arg, KAA_LOG_RETRY, KAA_ERR_CANCELED, false,
				   "appender closed");
		return;
	}
	curl_multi_wakeup(w->multi);
}

static void wh_close(void *impl)
{
	webhook *w = impl;
	if (!w)
		return;
	bool self = pthread_equal(pthread_self(), w->thread);
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_mutex_unlock(&w->mu);
	if (self) {
		/* inside one of our callbacks: fail the rest now, and let the
		 * worker free everything once the callback returned */
		fail_all(w);
		pthread_mutex_lock(&w->mu);
		w->self_close = true;
		pthread_mutex_unlock(&w->mu);
		return;
	}
	curl_multi_wakeup(w->multi);
	pthread_join(w->thread, NULL);
	destroy(w);
}

const kaa__appender_type kaa__appender_webhook = {
	.name = "webhook",
	.queues = true,
	.check = wh_check,
	.open = wh_open,
	.submit = wh_submit,
	.close = wh_close,
};
