/*
 * kube_client.c - requests to the Kubernetes API with libcurl.
 *
 * Easy handles are kept in a small locked pool so that consecutive
 * requests reuse their TLS connection; each request takes a handle for
 * its duration, so any number of threads may call concurrently (beyond
 * the pool size, extra handles are created and freed after use).
 * Bearer tokens read from a file are re-read every minute and after a 401
 * (bound service-account tokens rotate), with one retry of the request.
 */
#include "kube_internal.h"

#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 8
#define TIMEOUT_MS 30000
#define CONNECT_TIMEOUT_MS 10000
#define TOKEN_REREAD_MS 60000
#define ERROR_BODY_MAX (64 * 1024)

struct kaa__kube {
	char *server;
	char *ca_file;
	char *ca_data;
	char *cert_data;
	char *key_data;
	char *token_file;
	kaa__metrics *metrics;

	pthread_mutex_t mu; /* guards everything below */
	char *token;
	int64_t token_read_ms;
	char *identity;
	CURL *pool[POOL_MAX];
	int n_pool;
};

/* ---- JSON and query text ---- */

void kaa__kube_json_str(kaa__buf *b, const char *s)
{
	if (!s) {
		kaa__buf_puts(b, "null");
		return;
	}
	kaa__buf_put(b, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			char e[2] = {'\\', (char)*p};
			kaa__buf_put(b, e, 2);
		} else if (*p < 0x20) {
			kaa__buf_printf(b, "\\u%04x", *p);
		} else {
			kaa__buf_put(b, (const char *)p, 1);
		}
	}
	kaa__buf_put(b, "\"", 1);
}

void kaa__kube_query(kaa__buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			kaa__buf_put(b, (const char *)p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			kaa__buf_put(b, e, 3);
		}
	}
}

/* ---- JSON helpers ---- */

static yajl_val walk(yajl_val v, const char *const *path)
{
	for (; v && path && *path; path++) {
		if (!YAJL_IS_OBJECT(v))
			return NULL;
		yajl_val next = NULL;
		for (size_t i = 0; i < v->u.object.len; i++) {
			if (strcmp(v->u.object.keys[i], *path) == 0) {
				next = v->u.object.values[i];
				break;
			}
		}
		v = next;
	}
	return v;
}

const char *kaa__kube_str(yajl_val v, const char *const *path)
{
	v = walk(v, path);
	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

long long kaa__kube_int(yajl_val v, const char *const *path, long long dflt)
{
	v = walk(v, path);
	return YAJL_IS_INTEGER(v) ? v->u.number.i : dflt;
}

yajl_val kaa__kube_obj(yajl_val v, const char *const *path)
{
	v = walk(v, path);
	return YAJL_IS_OBJECT(v) ? v : NULL;
}

void kaa__kube_gen(kaa__buf *b, yajl_val v)
{
	if (!v) {
		kaa__buf_puts(b, "null");
	} else if (YAJL_IS_STRING(v)) {
		kaa__kube_json_str(b, v->u.string);
	} else if (YAJL_IS_NUMBER(v)) {
		/* the original text: no precision lost */
		kaa__buf_puts(b, v->u.number.r);
	} else if (YAJL_IS_TRUE(v)) {
		kaa__buf_puts(b, "true");
	} else if (YAJL_IS_FALSE(v)) {
		kaa__buf_puts(b, "false");
	} else if (YAJL_IS_OBJECT(v)) {
		kaa__buf_put(b, "{", 1);
		for (size_t i = 0; i < v->u.object.len; i++) {
			if (i)
				kaa__buf_put(b, ",", 1);
			kaa__kube_json_str(b, v->u.object.keys[i]);
			kaa__buf_put(b, ":", 1);
			kaa__kube_gen(b, v->u.object.values[i]);
		}
		kaa__buf_put(b, "}", 1);
	} else if (YAJL_IS_ARRAY(v)) {
		kaa__buf_put(b, "[", 1);
		for (size_t i = 0; i < v->u.array.len; i++) {
			if (i)
				kaa__buf_put(b, ",", 1);
			kaa__kube_gen(b, v->u.array.values[i]);
		}
		kaa__buf_put(b, "]", 1);
	} else {
		kaa__buf_puts(b, "null");
	}
}

void kaa__kube_microtime(char buf[32])
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 32 - n, ".%06dZ", (int)(tv.tv_usec % 1000000));
}

/* ---- client ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_rc;

static void curl_init(void)
{
	curl_init_rc =
		curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? KAA_OK : KAA_ERR_INTERNAL;
}

static char *dup_opt(const char *s)
{
	return s ? kaa__xstrdup(s) : NULL;
}

void kaa__kube_free(kaa__kube *k)
{
	if (!k)
		return;
	for (int i = 0; i < k->n_pool; i++)
		curl_easy_cleanup(k->pool[i]);
	pthread_mutex_destroy(&k->mu);
	free(k->server);
	free(k->ca_file);
	free(k->ca_data);
	free(k->cert_data);
	if (k->key_data)
		explicit_bzero(k->key_data, strlen(k->key_data));
	free(k->key_data);
	free(k->token_file);
	if (k->token)
		explicit_bzero(k->token, strlen(k->token));
	free(k->token);
	free(k->identity);
	free(k);
}

int kaa__kube_new(const kaa__kube_config *cfg, kaa__metrics *metrics, kaa__kube **out)
{
	kaa__kube *k;
	char host[256];

	if (!cfg || !out || !cfg->server || strncmp(cfg->server, "https://", 8) != 0)
		return KAA_ERR_INVAL;
	*out = NULL;
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != KAA_OK)
		return curl_init_rc;
	k = kaa__xcalloc(1, sizeof(*k));
	pthread_mutex_init(&k->mu, NULL);
	k->metrics = metrics;
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "kaa-operator");
	host[sizeof(host) - 1] = '\0';
	k->server = dup_opt(cfg->server);
	k->ca_file = dup_opt(cfg->ca_file);
	k->ca_data = dup_opt(cfg->ca_data);
	k->cert_data = dup_opt(cfg->client_cert_data);
	k->key_data = dup_opt(cfg->client_key_data);
	k->token_file = dup_opt(cfg->token_file);
	k->token = dup_opt(cfg->token);
	k->identity = dup_opt(host);
	k->token_read_ms = kaa__now_ms();
	*out = k;
	return KAA_OK;
}

int kaa__kube_set_identity(kaa__kube *k, const char *identity)
{
	char *s;
	if (!k || !identity || !*identity)
		return KAA_ERR_INVAL;
	s = kaa__xstrdup(identity);
	pthread_mutex_lock(&k->mu);
	free(k->identity);
	k->identity = s;
	pthread_mutex_unlock(&k->mu);
	return KAA_OK;
}

char *kaa__kube_identity(kaa__kube *k)
{
	pthread_mutex_lock(&k->mu);
	char *s = kaa__xstrdup(k->identity);
	pthread_mutex_unlock(&k->mu);
	return s;
}

void kaa__kube_resp_clear(kaa__kube_resp *r)
{
	if (!r)
		return;
	free(r->body);
	*r = (kaa__kube_resp){0};
}

/* Re-reads the token file when due (or forced); keeps the old token when
 * the file cannot be read. */
static void token_refresh(kaa__kube *k, bool force)
{
	char *t = NULL;
	int64_t now = kaa__now_ms();

	if (!k->token_file)
		return;
	pthread_mutex_lock(&k->mu);
	bool due = force || now - k->token_read_ms >= TOKEN_REREAD_MS;
	if (due)
		k->token_read_ms = now;
	pthread_mutex_unlock(&k->mu);
	if (!due)
		return;
	int rc = kaa__kube_read_file(k->token_file, 1024 * 1024, &t, NULL);
	if (rc != KAA_OK) {
		KAA_WARN("kube", "token_reread_failed path=\"%s\" err=\"%s\"", k->token_file,
			 kaa_strerror(rc));
		return;
	}
	t[strcspn(t, "\r\n")] = '\0';
	pthread_mutex_lock(&k->mu);
	char *old = k->token;
	k->token = t;
	pthread_mutex_unlock(&k->mu);
	if (old)
		explicit_bzero(old, strlen(old));
	free(old);
}

static CURL *handle_get(kaa__kube *k)
{
	CURL *h = NULL;
	pthread_mutex_lock(&k->mu);
	if (k->n_pool > 0)
		h = k->pool[--k->n_pool];
	pthread_mutex_unlock(&k->mu);
	if (h)
		curl_easy_reset(h);
	else if (!(h = curl_easy_init()))
		kaa__oom(); /* curl fails only to allocate here (global init is done) */
	return h;
}

static void handle_put(kaa__kube *k, CURL *h, bool reusable)
{
	if (!h)
		return;
	pthread_mutex_lock(&k->mu);
	if (reusable && k->n_pool < POOL_MAX) {
		k->pool[k->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&k->mu);
	if (h)
		curl_easy_cleanup(h);
}

typedef struct xfer {
	const kaa__kube_req_opts *o;
	kaa__buf body;
	long status;
	bool too_big;
	bool aborted;
	int64_t next_tick;
} xfer;

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;

	if (x->o && x->o->sink) {
		/* A streaming request: 2xx bodies go to the sink, errors are
		 * collected (body.max is then ERROR_BODY_MAX). */
		if (x->o->stop && *x->o->stop) {
			x->aborted = true;
			return 0;
		}
		if (x->status == 200 || x->status == 201) {
			if (!x->o->sink(x->o->sink_ud, data, len)) {
				x->aborted = true;
				return 0;
			}
			return len;
		}
	}
	int rc = kaa__buf_put(&x->body, data, len);
	if (rc == KAA_ERR_TOO_BIG)
		x->too_big = true;
	return rc == KAA_OK ? len : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	xfer *x = ud;
	size_t len = size * n;
	/* The status line of each response (also 100 Continue): remember the last. */
	if (len > 12 && strncmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', len);
		if (sp && (size_t)(sp - data) + 4 <= len)
			x->status = strtol(sp + 1, NULL, 10);
	}
	return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	xfer *x = ud;
	(void)dt, (void)dn, (void)ut, (void)un;
	if (!x->o)
		return 0;
	if (x->o->stop && *x->o->stop) {
		x->aborted = true;
		return 1;
	}
	if (x->o->tick) {
		int64_t now = kaa__now_ms();
		if (now >= x->next_tick) {
			x->next_tick = now + 1000;
			if (!x->o->tick(x->o->tick_ud)) {
				x->aborted = true;
				return 1;
			}
		}
	}
	return 0;
}

static void count(kaa__kube *k, const char *method, long status)
{
	char labels[96];
	if (!k->metrics)
		return;
	if (status > 0)
		snprintf(labels, sizeof(labels), "verb=\"%s\",code=\"%ld\"", method, status);
	else
		snprintf(labels, sizeof(labels), "verb=\"%s\",code=\"error\"", method);
	kaa__counter_inc(kaa__metrics_counter(k->metrics, "kaa_operator_api_requests_total",
					      "Kubernetes API requests by verb and HTTP status "
					      "(error: no response)",
					      labels));
}

static bool method_ok(const char *m)
{
	static const char *const ok[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", NULL};
	for (int i = 0; ok[i]; i++)
		if (strcmp(m, ok[i]) == 0)
			return true;
	return false;
}

static struct curl_slist *header_add(struct curl_slist *l, const char *h)
{
	struct curl_slist *n = curl_slist_append(l, h);
	if (!n)
		kaa__oom(); /* curl_slist_append fails only to allocate */
	return n;
}

static int perform(kaa__kube *k, const char *method, const char *url, const char *content_type,
		   const char *body, const kaa__kube_req_opts *o, kaa__kube_resp *resp)
{
	CURL *h = handle_get(k);
	struct curl_slist *hdrs = NULL;
	xfer x = {.o = o, .body.max = o && o->sink ? ERROR_BODY_MAX : KAA_KUBE_BODY_MAX};
	int rc = KAA_OK;
	char *auth = NULL;
	char *ctype = NULL;
	CURLcode cc;
	bool reusable = false;

	pthread_mutex_lock(&k->mu);
	if (k->token)
		auth = kaa__xasprintf("Authorization: Bearer %s", k->token);
	pthread_mutex_unlock(&k->mu);
	if (content_type)
		ctype = kaa__xasprintf("Content-Type: %s", content_type);
	hdrs = header_add(hdrs, "Accept: application/json");
	if (auth)
		hdrs = header_add(hdrs, auth);
	if (ctype)
		hdrs = header_add(hdrs, ctype);
	hdrs = header_add(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (k->ca_data) {
		struct curl_blob b = {
			.data = k->ca_data, .len = strlen(k->ca_data), .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
	} else if (k->ca_file) {
		curl_easy_setopt(h, CURLOPT_CAINFO, k->ca_file);
	}
	if (k->cert_data && k->key_data) {
		struct curl_blob c = {.data = k->cert_data,
				      .len = strlen(k->cert_data),
				      .flags = CURL_BLOB_NOCOPY};
		struct curl_blob kb = {
			.data = k->key_data, .len = strlen(k->key_data), .flags = CURL_BLOB_NOCOPY};
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &c);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kb);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
	int timeout = o && o->timeout_ms ? o->timeout_ms : TIMEOUT_MS;
	if (timeout > 0)
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
	if (o && o->low_speed_s > 0) {
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)o->low_speed_s);
	}
	if (o && (o->stop || o->tick)) {
		curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	}
	cc = curl_easy_perform(h);
	long status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_OK) {
		resp->status = status;
		reusable = true;
	} else if (x.too_big) {
		rc = KAA_ERR_TOO_BIG;
	} else if (x.aborted || cc == CURLE_ABORTED_BY_CALLBACK) {
		rc = KAA_ERR_CANCELED;
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		rc = KAA_ERR_TIMEOUT;
	} else if (cc == CURLE_OUT_OF_MEMORY) {
		kaa__oom();
	} else {
		rc = KAA_ERR_UNAVAILABLE;
		KAA_WARN("kube", "request_failed method=%s url=\"%s\" curl=\"%s\"", method, url,
			 curl_easy_strerror(cc));
	}
	/* A watch cut by stop/timeout after a 200 still had an answer. */
	count(k, method,
	      cc == CURLE_OK || rc == KAA_ERR_CANCELED || rc == KAA_ERR_TIMEOUT ? status : 0);
	if (rc == KAA_OK || rc == KAA_ERR_CANCELED || rc == KAA_ERR_TIMEOUT) {
		resp->status = status;
		/* cannot fail: the body is within its max (else rc is TOO_BIG) */
		kaa__buf_take(&x.body, &resp->body, &resp->len);
	}
	kaa__buf_free(&x.body);
	curl_slist_free_all(hdrs);
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(auth);
	free(ctype);
	handle_put(k, h, reusable);
	return rc;
}

int kaa__kube_request_ex(kaa__kube *k, const char *method, const char *path,
			 const char *content_type, const char *body, const kaa__kube_req_opts *o,
			 kaa__kube_resp *resp)
{
	char *url = NULL;
	int rc;

	if (!resp)
		return KAA_ERR_INVAL;
	*resp = (kaa__kube_resp){0};
	if (!k || !method || !method_ok(method) || !path || path[0] != '/' ||
	    strpbrk(path, " \r\n"))
		return KAA_ERR_INVAL;
	url = kaa__xasprintf("%s%s", k->server, path);
	token_refresh(k, false);
	rc = perform(k, method, url, content_type, body, o, resp);
	if (rc == KAA_OK && resp->status == 401 && k->token_file) {
		/* The token may have rotated since we last read it. */
		kaa__kube_resp_clear(resp);
		token_refresh(k, true);
		rc = perform(k, method, url, content_type, body, o, resp);
	}
	free(url);
	if (rc != KAA_OK)
		kaa__kube_resp_clear(resp);
	return rc;
}

int kaa__kube_request(kaa__kube *k, const char *method, const char *path, const char *content_type,
		      const char *body, kaa__kube_resp *resp)
{
	return kaa__kube_request_ex(k, method, path, content_type, body, NULL, resp);
}

int kaa__kube_apply(kaa__kube *k, const char *path, const char *json, kaa__kube_resp *resp)
{
	char *p = NULL;
	int rc;

	if (resp)
		*resp = (kaa__kube_resp){0};
	if (!path || !json || !resp)
		return KAA_ERR_INVAL;
	p = kaa__xasprintf("%s%cfieldManager=%s&force=true", path, strchr(path, '?') ? '&' : '?',
			   KAA_KUBE_FIELD_MANAGER);
	rc = kaa__kube_request(k, "PATCH", p, "application/apply-patch+yaml", json, resp);
	free(p);
	return rc;
}
