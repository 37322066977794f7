/*
 * kafka_appender.c - the "kafka" log appender: every record of a batch
 * becomes one Kafka message, produced by librdkafka with the idempotent
 * producer (acks=all, no duplicates or reordering from its own retries).
 * A batch is confirmed when the delivery reports of all its records say
 * the broker has them (in-sync replicas included); its callback runs on
 * the appender's thread, which serves rd_kafka_poll.
 *
 * Settings (unknown members are an error):
 *   bootstrap_servers  "host:port[,host:port...]" (required)
 *   topic              template, default "kaa-logs-{app_token}"; {app_token}
 *                      and {schema_version} are replaced, the rest is
 *                      [A-Za-z0-9._-]; the result is 1..249 characters
 *   key                "endpoint" (default: the endpoint key hash, so one
 *                      endpoint's records stay in order in one partition) or
 *                      "none" (no key: spread, no order)
 *   headers            true (default): kaa.app, kaa.endpoint, kaa.batch,
 *                      kaa.index, kaa.batch_size, kaa.received_ms,
 *                      kaa.schema_version on every message; false: none
 *   compression        "none" (default), "gzip", "snappy", "lz4", "zstd"
 *   security_protocol  "plaintext" (default), "ssl", "sasl_plaintext",
 *                      "sasl_ssl"
 *   ssl_ca_pem         PEM CA bundle the broker certificate must chain to
 *                      (default: the system's); the host name is verified
 *   sasl_mechanism     "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512" (required
 *                      with a sasl_* protocol, refused without; SCRAM needs
 *                      librdkafka >= 2.6.1 against Kafka 4 brokers)
 *   sasl_username, sasl_password   (with sasl_mechanism; the password is
 *                      write-only: the control service shows "********",
 *                      and the mask itself is refused as a password)
 *   max_inflight_kb    64..1048576, default 16384: record bytes produced and
 *                      not yet confirmed; a batch that would pass it is
 *                      answered RATE_LIMITED at once (nothing produced)
 *   linger_ms          0..1000, default 5 (librdkafka linger.ms)
 *   delivery_timeout_ms 10000..3600000, default 300000: a record not
 *                      confirmed by then fails its batch (RETRY)
 *
 * Guarantee: a confirmed batch is in the topic, each record once, in the
 * order of submission per key. A batch answered RETRY may be partly in the
 * topic (e.g. delivery timeout, close after the flush deadline); its
 * device sends it again, so such records may appear twice - consumers that
 * need exactly-once de-duplicate by (kaa.endpoint, kaa.batch, kaa.index).
 * The same batch submitted again while it is in flight (a device resending
 * on a new session) is not produced twice: the second submit waits for the
 * first one's delivery.
 */
#include "appender/appender_type.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "json/json_merge.h"

#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "kafka_appender"
#define TOPIC_MAX 249
#define SERVERS_MAX 1024
#define TEMPLATE_MAX 200
#define CRED_MAX 1024
#define DEFAULT_TOPIC "kaa-logs-{app_token}"
/* librdkafka's own queue limit in messages: above anything the byte budget
 * lets through (a record is >= 1 byte, charged with RECORD_OVERHEAD) */
#define QUEUE_MAX_MESSAGES 2000000
#define RECORD_OVERHEAD 64
#define POLL_MS 100
#define CLOSE_FLUSH_MS 5000
#define STATS_MS 5000

/* A submitter of the batch (the first one, or one that resent it while
 * it was in flight). */
struct waiter {
	kaa__log_done_fn *done;
	void *arg;
	struct waiter *next;
	/* the answer, when a close inside a callback takes the waiter */
	kaa__log_result r;
	int err;
	const char *reason;
};

/* One batch whose records are produced and not all reported yet. */
struct pending {
	struct kafka *k;
	char *key_hash, *batch_id;
	size_t remaining;        /* reports still to come (+1 while producing) */
	size_t charge;           /* against max_inflight */
	rd_kafka_resp_err_t err; /* the first failure */
	struct waiter *waiters;
	/* set when the last report came: the batch's answer (static strings) */
	kaa__log_result r;
	int rerr;
	const char *reason;
	struct pending *prev, *next; /* in pend, then in finishing */
};

struct topic_cache {
	int64_t schema_version;
	rd_kafka_topic_t *rkt;
};

struct kafka {
	int64_t app_id, id;
	char *app_token;
	char *topic_tpl;
	bool key_endpoint, headers;
	size_t max_inflight;
	rd_kafka_t *rk;
	rd_kafka_conf_t *conf; /* a copy, for a new producer after a fatal error */
	kaa__counter *retries;
	uint64_t last_txretries;

	pthread_mutex_t mu; /* guards everything below, and the waiters */
	struct pending *pend;
	struct pending *finishing; /* answered, their callbacks running */
	size_t inflight, inflight_msgs;
	struct topic_cache *topics;
	size_t n_topics;
	bool closing;

	pthread_t thread;
	atomic_bool stop;
	atomic_bool fatal;
	/* close was called on the appender's own thread: it frees itself */
	atomic_bool self_free;
};

/* ---- settings ------------------------------------------------------------ */

static const char *const MEMBERS[] = {
	"type",
	"bootstrap_servers",
	"topic",
	"key",
	"headers",
	"compression",
	"security_protocol",
	"ssl_ca_pem",
	"sasl_mechanism",
	"sasl_username",
	"sasl_password",
	"max_inflight_kb",
	"linger_ms",
	"delivery_timeout_ms",
};

static yajl_val member(yajl_val v, const char *name)
{
	const char *p[] = {name, NULL};
	return yajl_tree_get(v, p, yajl_t_any);
}

static const char *str_member(yajl_val v, const char *name)
{
	yajl_val m = member(v, name);
	return m && YAJL_IS_STRING(m) ? m->u.string : NULL;
}

static bool one_of(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static bool topic_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* Replaces the placeholders of tpl (checked) into out; false if the result
 * is not a valid topic name (empty, too long, a bad character). */
static bool render_topic(const char *tpl, const char *app_token, int64_t schema_version, char *out,
			 size_t outlen)
{
	size_t o = 0;
	char ver[24];
	snprintf(ver, sizeof(ver), "%" PRId64, schema_version);
	for (const char *p = tpl; *p;) {
		const char *add;
		size_t n;
		if (strncmp(p, "{app_token}", 11) == 0) {
			add = app_token;
			n = strlen(add);
			p += 11;
		} else if (strncmp(p, "{schema_version}", 16) == 0) {
			add = ver;
			n = strlen(ver);
			p += 16;
		} else {
			add = p++;
			n = 1;
		}
		for (size_t i = 0; i < n; i++)
			if (!topic_char(add[i]))
				return false;
		if (o + n >= outlen || o + n > TOPIC_MAX)
			return false;
		memcpy(out + o, add, n);
		o += n;
	}
	out[o] = '\0';
	return o > 0 && strcmp(out, ".") != 0 && strcmp(out, "..") != 0;
}

static bool int_member(yajl_val v, const char *name, int64_t lo, int64_t hi, int64_t def,
		       int64_t *out, char *err, size_t errlen)
{
	yajl_val m = member(v, name);
	*out = def;
	if (!m)
		return true;
	if (!YAJL_IS_NUMBER(m) || !kaa__json_int64(m, out) || *out < lo || *out > hi) {
		kaa__appender_set_err(err, errlen, "settings.%s: an integer %" PRId64 "..%" PRId64,
				      name, lo, hi);
		return false;
	}
	return true;
}

static bool servers_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SERVERS_MAX)
		return false;
	/* host:port entries separated by commas; librdkafka parses the rest */
	for (const char *p = s; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		const char *colon = memrchr(p, ':', len);
		if (len == 0 || !colon || colon == p || colon == p + len - 1)
			return false;
		for (const char *q = colon + 1; q < p + len; q++)
			if (*q < '0' || *q > '9')
				return false;
		for (const char *q = p; q < colon; q++)
			if (*q <= ' ' || *q == '/' || *q == '"' || *q == '\\')
				return false;
		p += len;
		if (*p == ',')
			p++;
	}
	return s[n - 1] != ',';
}

static int kafka_check(yajl_val v, char *err, size_t errlen)
{
	static const char *const keys[] = {"endpoint", "none", NULL};
	static const char *const comps[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};
	static const char *const protos[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl",
					     NULL};
	static const char *const mechs[] = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", NULL};
	int64_t n;
	char topic[TOPIC_MAX + 64];

	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val m = v->u.object.values[i];
		bool known = false;
		for (size_t j = 0; j < sizeof(MEMBERS) / sizeof(MEMBERS[0]); j++)
			known = known || strcmp(k, MEMBERS[j]) == 0;
		if (!known) {
			kaa__appender_set_err(err, errlen, "settings.%s: unknown member", k);
			return KAA_ERR_INVAL;
		}
		bool want_num = strcmp(k, "max_inflight_kb") == 0 || strcmp(k, "linger_ms") == 0 ||
				strcmp(k, "delivery_timeout_ms") == 0;
		bool want_bool = strcmp(k, "headers") == 0;
		if (!want_num && !want_bool && !YAJL_IS_STRING(m)) {
			kaa__appender_set_err(err, errlen, "settings.%s: must be a string", k);
			return KAA_ERR_INVAL;
		}
		if (want_bool && !YAJL_IS_TRUE(m) && !YAJL_IS_FALSE(m)) {
			kaa__appender_set_err(err, errlen, "settings.%s: must be true or false", k);
			return KAA_ERR_INVAL;
		}
	}
	const char *servers = str_member(v, "bootstrap_servers");
	if (!servers || !servers_ok(servers)) {
		kaa__appender_set_err(
			err, errlen, "%s",
			"settings.bootstrap_servers: required, host:port[,host:port...]");
		return KAA_ERR_INVAL;
	}
	const char *tpl = str_member(v, "topic");
	if (tpl) {
		/* a token of the longest kind stands in for the application's */
		bool ok = strlen(tpl) <= TEMPLATE_MAX;
		for (const char *p = tpl; ok && *p; p++)
			if (*p == '{' && strncmp(p, "{app_token}", 11) != 0 &&
			    strncmp(p, "{schema_version}", 16) != 0)
				ok = false;
		if (!ok || !render_topic(tpl, "a", 1, topic, sizeof(topic))) {
			kaa__appender_set_err(err, errlen, "%s",
					      "settings.topic: [A-Za-z0-9._-] with {app_token} and"
					      " {schema_version}, 1..249 characters");
			return KAA_ERR_INVAL;
		}
	}
	const char *s;
	if ((s = str_member(v, "key")) && !one_of(s, keys)) {
		kaa__appender_set_err(err, errlen, "%s", "settings.key: \"endpoint\" or \"none\"");
		return KAA_ERR_INVAL;
	}
	if ((s = str_member(v, "compression")) && !one_of(s, comps)) {
		kaa__appender_set_err(err, errlen, "%s",
				      "settings.compression: none, gzip, snappy, lz4 or zstd");
		return KAA_ERR_INVAL;
	}
	const char *proto = str_member(v, "security_protocol");
	if (proto && !one_of(proto, protos)) {
		kaa__appender_set_err(
			err, errlen, "%s",
			"settings.security_protocol: plaintext, ssl, sasl_plaintext or"
			" sasl_ssl");
		return KAA_ERR_INVAL;
	}
	bool sasl = proto && strncmp(proto, "sasl_", 5) == 0;
	bool tls = proto && (strcmp(proto, "ssl") == 0 || strcmp(proto, "sasl_ssl") == 0);
	const char *mech = str_member(v, "sasl_mechanism");
	if (sasl && (!mech || !one_of(mech, mechs))) {
		kaa__appender_set_err(
			err, errlen, "%s",
			"settings.sasl_mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
		return KAA_ERR_INVAL;
	}
	static const char *const sasl_only[] = {"sasl_mechanism", "sasl_username", "sasl_password"};
	for (size_t i = 0; i < 3; i++) {
		const char *c = str_member(v, sasl_only[i]);
		if (c && !sasl) {
			kaa__appender_set_err(err, errlen,
					      "settings.%s: only with security_protocol sasl_*",
					      sasl_only[i]);
			return KAA_ERR_INVAL;
		}
		if (sasl && i > 0 && (!c || !*c || strlen(c) > CRED_MAX)) {
			kaa__appender_set_err(err, errlen, "settings.%s: required, 1..%d bytes",
					      sasl_only[i], CRED_MAX);
			return KAA_ERR_INVAL;
		}
	}
	const char *pw = str_member(v, "sasl_password");
	if (pw && strcmp(pw, "********") == 0) {
		/* what the control service shows in its place: never stored */
		kaa__appender_set_err(err, errlen, "%s",
				      "settings.sasl_password: the mask (send the password itself,"
				      " not the mask)");
		return KAA_ERR_INVAL;
	}
	const char *ca = str_member(v, "ssl_ca_pem");
	if (ca && (!tls || !strstr(ca, "-----BEGIN CERTIFICATE-----"))) {
		kaa__appender_set_err(err, errlen, "%s",
				      tls ? "settings.ssl_ca_pem: a PEM certificate bundle"
					  : "settings.ssl_ca_pem: only with security_protocol ssl"
					    " or sasl_ssl");
		return KAA_ERR_INVAL;
	}
	if (!int_member(v, "max_inflight_kb", 64, 1048576, 16384, &n, err, errlen) ||
	    !int_member(v, "linger_ms", 0, 1000, 5, &n, err, errlen) ||
	    !int_member(v, "delivery_timeout_ms", 10000, 3600000, 300000, &n, err, errlen))
		return KAA_ERR_INVAL;
	return KAA_OK;
}

/* ---- completion ----------------------------------------------------------- */

static bool permanent(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_MSG:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION: return true;
	default: return false;
	}
}

static int kaa_err_of(rd_kafka_resp_err_t e)
{
	switch (e) {
	case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
	case RD_KAFKA_RESP_ERR__TIMED_OUT:
	case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT: return KAA_ERR_TIMEOUT;
	case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
	case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT: return KAA_ERR_CANCELED;
	case RD_KAFKA_RESP_ERR__QUEUE_FULL: return KAA_ERR_UNAVAILABLE;
	default: return permanent(e) ? KAA_ERR_INVAL : KAA_ERR_UNAVAILABLE;
	}
}

/* Takes p out of pend and its bytes off the budget (under mu). */
static void unlink_pending(struct kafka *k, struct pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		k->pend = p->next;
	if (p->next)
		p->next->prev = p->prev;
	k->inflight -= p->charge;
}

/* The batch's answer from its first failure (under mu). */
static void decide(struct pending *p, bool closing)
{
	p->r = KAA_LOG_OK;
	p->rerr = KAA_OK;
	p->reason = NULL;
	if (p->err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
		p->r = KAA_LOG_RATE_LIMITED;
		p->reason = "kafka producer queue full";
	} else if (p->err && permanent(p->err)) {
		p->r = KAA_LOG_PERMANENT;
		p->reason = rd_kafka_err2str(p->err);
	} else if (p->err) {
		p->r = KAA_LOG_RETRY;
		p->reason = closing && (p->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
					p->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
				    ? "appender closed"
				    : rd_kafka_err2str(p->err);
	}
	if (p->err)
		p->rerr = kaa_err_of(p->err);
}

/* Answers p's waiters one at a time, each taken under mu, so that a close
 * inside one of the callbacks can answer the rest itself (kafka_close). */
static void finish(struct kafka *k, struct pending *p, bool closing)
{
	if (p->err && !closing)
		KAA_WARN(MOD, "batch_failed endpoint=%s batch=\"%s\" err=\"%s\"", p->key_hash,
			 p->batch_id, rd_kafka_err2str(p->err));
	for (;;) {
		pthread_mutex_lock(&k->mu);
		struct waiter *w = p->waiters;
		if (w) {
			p->waiters = w->next;
		} else {
			if (p->prev)
				p->prev->next = p->next;
			else
				k->finishing = p->next;
			if (p->next)
				p->next->prev = p->prev;
		}
		pthread_mutex_unlock(&k->mu);
		if (!w)
			break;
		kaa__appender_done(w->done, w->arg, p->r, p->rerr, false, p->reason);
		free(w);
	}
	free(p->key_hash);
	free(p->batch_id);
	free(p);
}

/* One report less for p; the last one finishes it. */
static void report(struct kafka *k, struct pending *p, rd_kafka_resp_err_t e, size_t count)
{
	pthread_mutex_lock(&k->mu);
	if (e && !p->err)
		p->err = e;
	p->remaining -= count;
	k->inflight_msgs -= count;
	bool last = p->remaining == 0;
	bool closing = k->closing;
	if (last) {
		unlink_pending(k, p);
		decide(p, closing);
		p->prev = NULL;
		p->next = k->finishing;
		if (k->finishing)
			k->finishing->prev = p;
		k->finishing = p;
	}
	pthread_mutex_unlock(&k->mu);
	if (last)
		finish(k, p, closing);
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct kafka *k = opaque;
	if (m->_private)
		report(k, m->_private, m->err, 1);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka *k = opaque;
	char fatal[256] = "";
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		atomic_store(&k->fatal, true);
	}
	/* all brokers down etc.: librdkafka keeps retrying; the delivery
	 * reports decide the batches */
	KAA_WARN(MOD, "kafka_error appender=%" PRId64 " err=\"%s\" reason=\"%s\"%s%s%s", k->id,
		 rd_kafka_err2name((rd_kafka_resp_err_t)err), reason, *fatal ? " fatal=\"" : "",
		 fatal, *fatal ? "\"" : "");
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	/* connection failures also reach error_cb: logged there once */
	if (strcmp(fac, "FAIL") == 0)
		return;
	if (level <= 3)
		KAA_ERROR(MOD, "librdkafka fac=%s msg=\"%s\"", fac, buf);
	else if (level <= 4)
		KAA_WARN(MOD, "librdkafka fac=%s msg=\"%s\"", fac, buf);
}

/* The sum of the brokers' "txretries" in librdkafka's statistics: each
 * increase is a produce request sent again (counted as retries). */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	(void)rk;
	struct kafka *k = opaque;
	yajl_val root = NULL;
	const char *p_brokers[] = {"brokers", NULL};
	const char *p_tx[] = {"txretries", NULL};
	if (kaa__json_parse(json, len, len + 1, 64, &root, NULL, 0) != KAA_OK)
		return 0;
	yajl_val b = yajl_tree_get(root, p_brokers, yajl_t_object);
	uint64_t sum = 0;
	for (size_t i = 0; b && i < b->u.object.len; i++) {
		yajl_val t = yajl_tree_get(b->u.object.values[i], p_tx, yajl_t_number);
		int64_t n;
		if (t && kaa__json_int64(t, &n) && n > 0)
			sum += (uint64_t)n;
	}
	yajl_tree_free(root);
	/* the producer is recreated after a fatal error: its counts restart */
	if (sum > k->last_txretries)
		kaa__counter_add(k->retries, sum - k->last_txretries);
	k->last_txretries = sum;
	return 0;
}

/* ---- the producer ----------------------------------------------------------- */

static bool conf_set(rd_kafka_conf_t *c, const char *key, const char *val, char *err, size_t errlen)
{
	char e[256];
	if (rd_kafka_conf_set(c, key, val, e, sizeof(e)) == RD_KAFKA_CONF_OK)
		return true;
	kaa__appender_set_err(err, errlen, "settings: librdkafka %s: %s", key, e);
	return false;
}

/* The producer's configuration from checked settings; NULL (err set) if
 * librdkafka refuses a value. */
static rd_kafka_conf_t *conf_new(struct kafka *k, yajl_val v, char *err, size_t errlen)
{
	char num[32];
	int64_t n;
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	const char *s;
	bool ok =
		conf_set(c, "bootstrap.servers", str_member(v, "bootstrap_servers"), err, errlen) &&
		conf_set(c, "enable.idempotence", "true", err, errlen) &&
		conf_set(c, "acks", "all", err, errlen) &&
		conf_set(c, "client.id", "kaa-node", err, errlen) &&
		conf_set(c, "reconnect.backoff.max.ms", "1000", err, errlen) &&
		conf_set(c, "log.connection.close", "false", err, errlen);
	snprintf(num, sizeof(num), "%d", QUEUE_MAX_MESSAGES);
	ok = ok && conf_set(c, "queue.buffering.max.messages", num, err, errlen);
	/* librdkafka counts key and value; headers and our margin ride on
	 * top: the appender's own budget is what refuses batches */
	snprintf(num, sizeof(num), "%zu", k->max_inflight / 1024 * 2 + 1024);
	ok = ok && conf_set(c, "queue.buffering.max.kbytes", num, err, errlen);
	int_member(v, "linger_ms", 0, 1000, 5, &n, NULL, 0);
	snprintf(num, sizeof(num), "%" PRId64, n);
	ok = ok && conf_set(c, "linger.ms", num, err, errlen);
	int_member(v, "delivery_timeout_ms", 10000, 3600000, 300000, &n, NULL, 0);
	snprintf(num, sizeof(num), "%" PRId64, n);
	ok = ok && conf_set(c, "message.timeout.ms", num, err, errlen);
	snprintf(num, sizeof(num), "%d", STATS_MS);
	ok = ok && (!k->retries || conf_set(c, "statistics.interval.ms", num, err, errlen));
	s = str_member(v, "compression");
	ok = ok && conf_set(c, "compression.codec", s ? s : "none", err, errlen);
	s = str_member(v, "security_protocol");
	ok = ok && conf_set(c, "security.protocol", s ? s : "plaintext", err, errlen);
	if (ok && s && (strcmp(s, "ssl") == 0 || strcmp(s, "sasl_ssl") == 0)) {
		ok = conf_set(c, "ssl.endpoint.identification.algorithm", "https", err, errlen) &&
		     conf_set(c, "enable.ssl.certificate.verification", "true", err, errlen);
		if (ok && (s = str_member(v, "ssl_ca_pem")))
			ok = conf_set(c, "ssl.ca.pem", s, err, errlen);
	}
	if (ok && (s = str_member(v, "sasl_mechanism")))
		ok = conf_set(c, "sasl.mechanism", s, err, errlen) &&
		     conf_set(c, "sasl.username", str_member(v, "sasl_username"), err, errlen) &&
		     conf_set(c, "sasl.password", str_member(v, "sasl_password"), err, errlen);
	if (!ok) {
		rd_kafka_conf_destroy(c);
		return NULL;
	}
	rd_kafka_conf_set_opaque(c, k);
	rd_kafka_conf_set_dr_msg_cb(c, dr_cb);
	rd_kafka_conf_set_error_cb(c, error_cb);
	rd_kafka_conf_set_log_cb(c, log_cb);
	if (k->retries)
		rd_kafka_conf_set_stats_cb(c, stats_cb);
	return c;
}

static rd_kafka_t *producer_new(struct kafka *k, char *err, size_t errlen)
{
	char e[512];
	rd_kafka_conf_t *c = rd_kafka_conf_dup(k->conf);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, e, sizeof(e));
	if (!rk) {
		rd_kafka_conf_destroy(c);
		kaa__appender_set_err(err, errlen, "settings: librdkafka: %s", e);
	}
	return rk;
}

/* Topic handles by schema version (under mu). */
static rd_kafka_topic_t *topic_for(struct kafka *k, int64_t schema_version)
{
	char name[TOPIC_MAX + 1];
	for (size_t i = 0; i < k->n_topics; i++)
		if (k->topics[i].schema_version == schema_version)
			return k->topics[i].rkt;
	if (!render_topic(k->topic_tpl, k->app_token, schema_version, name, sizeof(name)))
		return NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(k->rk, name, NULL);
	if (!rkt)
		return NULL;
	k->topics = kaa__xrealloc(k->topics, (k->n_topics + 1) * sizeof(*k->topics));
	k->topics[k->n_topics++] = (struct topic_cache){schema_version, rkt};
	return rkt;
}

static void topics_drop(struct kafka *k)
{
	for (size_t i = 0; i < k->n_topics; i++)
		rd_kafka_topic_destroy(k->topics[i].rkt);
	free(k->topics);
	k->topics = NULL;
	k->n_topics = 0;
}

/* Purges whatever librdkafka still holds and serves the reports until no
 * batch is pending. */
static void drain(struct kafka *k)
{
	rd_kafka_purge(k->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	for (;;) {
		pthread_mutex_lock(&k->mu);
		bool empty = k->pend == NULL && k->finishing == NULL;
		pthread_mutex_unlock(&k->mu);
		if (empty)
			break;
		rd_kafka_poll(k->rk, 50);
	}
}

static void kafka_destroy(struct kafka *k)
{
	topics_drop(k);
	if (k->rk)
		rd_kafka_destroy(k->rk);
	if (k->conf)
		rd_kafka_conf_destroy(k->conf);
	pthread_mutex_destroy(&k->mu);
	free(k->app_token);
	free(k->topic_tpl);
	free(k);
}

/*
 * The appender's thread: serves the delivery reports; after a fatal
 * (idempotence) error fails every pending batch and builds a new producer;
 * at close flushes for up to CLOSE_FLUSH_MS, then purges the rest (RETRY
 * "appender closed").
 */
static void *kafka_thread(void *arg)
{
	struct kafka *k = arg;
	while (!atomic_load(&k->stop)) {
		rd_kafka_poll(k->rk, POLL_MS);
		if (!atomic_load(&k->fatal))
			continue;
		KAA_ERROR(MOD, "producer_fatal appender=%" PRId64 " action=recreate", k->id);
		pthread_mutex_lock(&k->mu);
		k->closing = false;
		pthread_mutex_unlock(&k->mu);
		drain(k);
		char err[256] = "";
		pthread_mutex_lock(&k->mu);
		topics_drop(k);
		rd_kafka_t *old = k->rk;
		k->rk = NULL;
		pthread_mutex_unlock(&k->mu);
		rd_kafka_destroy(old);
		rd_kafka_t *rk = producer_new(k, err, sizeof(err));
		if (!rk) {
			KAA_ERROR(MOD, "producer_recreate_failed appender=%" PRId64 " err=\"%s\"",
				  k->id, err);
			break; /* submits answer RETRY from now on */
		}
		pthread_mutex_lock(&k->mu);
		k->rk = rk;
		k->last_txretries = 0;
		pthread_mutex_unlock(&k->mu);
		atomic_store(&k->fatal, false);
	}
	while (!atomic_load(&k->stop)) /* no producer: wait for close */
		nanosleep(&(struct timespec){.tv_nsec = POLL_MS * 1000000L}, NULL);
	if (k->rk) {
		rd_kafka_flush(k->rk, CLOSE_FLUSH_MS);
		pthread_mutex_lock(&k->mu);
		k->closing = true;
		pthread_mutex_unlock(&k->mu);
		drain(k);
	}
	if (atomic_load(&k->self_free))
		kafka_destroy(k);
	return NULL;
}

/* ---- the type's functions ----------------------------------------------------- */

static int kafka_open(const kaa__appender_args *args, yajl_val v, void **impl, char *err,
		      size_t errlen)
{
	int64_t kb;
	const char *s;
	*impl = NULL;
	const char *token = args->env->app_token;
	if (!token || !*token) {
		kaa__appender_set_err(err, errlen, "%s", "no application token given");
		return KAA_ERR_INVAL;
	}
	struct kafka *k = kaa__xcalloc(1, sizeof(*k));
	k->app_id = args->app_id;
	k->id = args->id;
	k->retries = args->retries;
	k->app_token = kaa__xstrdup(token);
	s = str_member(v, "topic");
	k->topic_tpl = kaa__xstrdup(s ? s : DEFAULT_TOPIC);
	s = str_member(v, "key");
	k->key_endpoint = !s || strcmp(s, "endpoint") == 0;
	yajl_val h = member(v, "headers");
	k->headers = !h || YAJL_IS_TRUE(h);
	int_member(v, "max_inflight_kb", 64, 1048576, 16384, &kb, NULL, 0);
	k->max_inflight = (size_t)kb * 1024;
	pthread_mutex_init(&k->mu, NULL);
	char name[TOPIC_MAX + 1];
	if (!render_topic(k->topic_tpl, k->app_token, 1, name, sizeof(name))) {
		kaa__appender_set_err(err, errlen, "%s",
				      "settings.topic: not a valid topic name with this"
				      " application's token");
		kafka_destroy(k);
		return KAA_ERR_INVAL;
	}
	k->conf = conf_new(k, v, err, errlen);
	if (k->conf)
		k->rk = producer_new(k, err, errlen);
	if (!k->rk) {
		kafka_destroy(k);
		return KAA_ERR_INVAL;
	}
	if (pthread_create(&k->thread, NULL, kafka_thread, k) != 0) {
		kafka_destroy(k);
		kaa__appender_set_err(err, errlen, "%s", "cannot start the appender's thread");
		return KAA_ERR_IO;
	}
	KAA_INFO(MOD, "kafka_appender_open app=%" PRId64 " appender=%" PRId64 " topic=\"%s\"",
		 k->app_id, k->id, k->topic_tpl);
	*impl = k;
	return KAA_OK;
}

static rd_kafka_headers_t *headers_of(struct kafka *k, const kaa__log_batch *b, size_t i)
{
	char num[32];
	rd_kafka_headers_t *h = rd_kafka_headers_new(7);
	snprintf(num, sizeof(num), "%" PRId64, k->app_id);
	rd_kafka_header_add(h, "kaa.app", -1, num, -1);
	rd_kafka_header_add(h, "kaa.endpoint", -1, b->key_hash, -1);
	rd_kafka_header_add(h, "kaa.batch", -1, b->batch_id, -1);
	snprintf(num, sizeof(num), "%zu", i);
	rd_kafka_header_add(h, "kaa.index", -1, num, -1);
	snprintf(num, sizeof(num), "%zu", b->n);
	rd_kafka_header_add(h, "kaa.batch_size", -1, num, -1);
	snprintf(num, sizeof(num), "%" PRId64, b->received_ms);
	rd_kafka_header_add(h, "kaa.received_ms", -1, num, -1);
	snprintf(num, sizeof(num), "%" PRId64, b->schema_version);
	rd_kafka_header_add(h, "kaa.schema_version", -1, num, -1);
	return h;
}

static void kafka_submit(void *impl, const kaa__log_batch *b, kaa__log_done_fn *done, void *arg)
{
	struct kafka *k = impl;
	size_t charge = 0, keylen = k->key_endpoint ? strlen(b->key_hash) : 0;
	for (size_t i = 0; i < b->n; i++)
		charge += strlen(b->records[i]) + keylen + RECORD_OVERHEAD;

	pthread_mutex_lock(&k->mu);
	if (!k->rk || atomic_load(&k->fatal)) {
		pthread_mutex_unlock(&k->mu);
		kaa__appender_done(done, arg, KAA_LOG_RETRY, KAA_ERR_UNAVAILABLE, false,
				   "kafka producer restarting");
		return;
	}
	/* the same batch again while in flight: answer both with its delivery */
	for (struct pending *p = k->pend; p; p = p->next)
		if (strcmp(p->batch_id, b->batch_id) == 0 &&
		    strcmp(p->key_hash, b->key_hash) == 0) {
			struct waiter *w = kaa__xcalloc(1, sizeof(*w));
			*w = (struct waiter){.done = done, .arg = arg, .next = p->waiters};
			p->waiters = w;
			pthread_mutex_unlock(&k->mu);
			return;
		}
	/* just answered (its callbacks are running): the same answer */
	for (struct pending *p = k->finishing; p; p = p->next)
		if (strcmp(p->batch_id, b->batch_id) == 0 &&
		    strcmp(p->key_hash, b->key_hash) == 0) {
			kaa__log_result r = p->r;
			int rerr = p->rerr;
			const char *reason = p->reason;
			pthread_mutex_unlock(&k->mu);
			kaa__appender_done(done, arg, r, rerr, false, reason);
			return;
		}
	/* a batch larger than the whole budget goes alone */
	if (k->inflight > 0 && (k->inflight + charge > k->max_inflight ||
				k->inflight_msgs + b->n > QUEUE_MAX_MESSAGES / 2)) {
		pthread_mutex_unlock(&k->mu);
		kaa__appender_done(done, arg, KAA_LOG_RATE_LIMITED, KAA_ERR_UNAVAILABLE, false,
				   "kafka appender in-flight limit reached");
		return;
	}
	rd_kafka_topic_t *rkt = topic_for(k, b->schema_version);
	if (!rkt) {
		pthread_mutex_unlock(&k->mu);
		kaa__appender_done(done, arg, KAA_LOG_PERMANENT, KAA_ERR_INVAL, false,
				   "no valid topic name for this schema version");
		return;
	}
	struct pending *p = kaa__xcalloc(1, sizeof(*p));
	struct waiter *w = kaa__xcalloc(1, sizeof(*w));
	*w = (struct waiter){.done = done, .arg = arg};
	p->k = k;
	p->key_hash = kaa__xstrdup(b->key_hash);
	p->batch_id = kaa__xstrdup(b->batch_id);
	p->remaining = b->n + 1; /* + 1: the reports cannot finish it while producing */
	p->charge = charge;
	p->waiters = w;
	p->next = k->pend;
	if (k->pend)
		k->pend->prev = p;
	k->pend = p;
	k->inflight += charge;
	k->inflight_msgs += b->n + 1;

	/* in submission order under mu: one endpoint's records keep their
	 * order in its partition; delivery reports only run on poll, so
	 * holding mu here cannot deadlock with them */
	size_t produced = 0;
	rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR;
	for (; produced < b->n; produced++) {
		rd_kafka_headers_t *h = k->headers ? headers_of(k, b, produced) : NULL;
		e = rd_kafka_producev(k->rk, RD_KAFKA_V_RKT(rkt),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_VALUE((void *)b->records[produced],
						       strlen(b->records[produced])),
				      RD_KAFKA_V_KEY(k->key_endpoint ? b->key_hash : NULL, keylen),
				      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
			/* not queued: the headers are still ours */
			if (h)
				rd_kafka_headers_destroy(h);
			break;
		}
	}
	pthread_mutex_unlock(&k->mu);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
		/* the records before were queued and will be reported; the
		 * batch fails as a whole (its device sends it again) */
		KAA_WARN(MOD,
			 "produce_failed appender=%" PRId64
			 " batch=\"%s\" at=%zu of=%zu err=\"%s\"",
			 k->id, b->batch_id, produced, b->n, rd_kafka_err2str(e));
		report(k, p, e, b->n - produced);
	}
	report(k, p, RD_KAFKA_RESP_ERR_NO_ERROR, 1);
}

static void kafka_close(void *impl)
{
	struct kafka *k = impl;
	if (!k)
		return;
	atomic_store(&k->stop, true);
	if (pthread_equal(pthread_self(), k->thread)) {
		/* inside one of our callbacks: every batch is answered now (no
		 * callback may run after close), the thread purges what
		 * librdkafka holds and frees the appender when it ends */
		struct waiter *all = NULL;
		pthread_mutex_lock(&k->mu);
		k->closing = true;
		for (int list = 0; list < 2; list++)
			for (struct pending *p = list ? k->finishing : k->pend; p; p = p->next)
				while (p->waiters) {
					struct waiter *w = p->waiters;
					p->waiters = w->next;
					/* decided batches keep their answer */
					w->r = list ? p->r : KAA_LOG_RETRY;
					w->err = list ? p->rerr : KAA_ERR_CANCELED;
					w->reason = list ? p->reason : "appender closed";
					w->next = all;
					all = w;
				}
		pthread_mutex_unlock(&k->mu);
		for (struct waiter *w = all, *nx; w; w = nx) {
			nx = w->next;
			kaa__appender_done(w->done, w->arg, w->r, w->err, false, w->reason);
			free(w);
		}
		atomic_store(&k->self_free, true);
		pthread_detach(k->thread);
		return;
	}
	pthread_join(k->thread, NULL);
	kafka_destroy(k);
}

const kaa__appender_type kaa__appender_kafka = {
	.name = "kafka",
	.queues = true,
	.check = kafka_check,
	.open = kafka_open,
	.submit = kafka_submit,
	.close = kafka_close,
};
