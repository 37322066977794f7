/*
 * kafka_bench - acknowledged log records/s through the Kafka log appender
 * (lib/appender/kafka_appender.c) beside a bare librdkafka producer with
 * the same settings (idempotent, acks=all, linger.ms, key = endpoint key
 * hash, the same seven kaa.* headers, the same records) in the same run,
 * against one broker (bench/run.sh starts Kafka with the harness).
 *
 * Both sides keep WINDOW batches of R records in flight (as many devices
 * uploading at once would) spread over 16 endpoints, for S seconds; a
 * batch counts when every one of its records has a successful delivery
 * report. Each side writes its own fresh topic. Two rounds, the second in
 * the other order. Prints records/s and the ratio kaa/bare (1 = no
 * overhead).
 *
 * Usage: kafka_bench --bootstrap HOST:PORT [--seconds S] [--records R]
 *        [--window W] [--linger-ms L]
 */
#include "appender/log_appender.h"
#include "base/clock.h"
#include "base/error.h"

#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_RECORDS 1000
#define ENDPOINTS 16

static const char *bootstrap;
static double seconds = 5;
static int nrec = 50, window = 32, linger_ms = 5;
static const char *recs[MAX_RECORDS];
static char rec_buf[MAX_RECORDS][96];
static char keys[ENDPOINTS][48];

/* the window: batches submitted and not yet answered */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int inflight;
static long acked_records, failed_batches;

static void batch_answered(bool ok)
{
	pthread_mutex_lock(&mu);
	inflight--;
	if (ok)
		acked_records += nrec;
	else
		failed_batches++;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

static void wait_window(int below)
{
	pthread_mutex_lock(&mu);
	while (inflight >= below)
		pthread_cond_wait(&cv, &mu);
	inflight++;
	pthread_mutex_unlock(&mu);
}

/* every batch answered; gives up (exit 1) after 60 s without an answer */
static void wait_all(void)
{
	pthread_mutex_lock(&mu);
	while (inflight > 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 60;
		if (pthread_cond_timedwait(&cv, &mu, &ts) != 0) {
			fprintf(stderr, "kafka_bench: %d batches unanswered after 60 s\n",
				inflight);
			exit(1);
		}
	}
	pthread_mutex_unlock(&mu);
}

static void reset(void)
{
	inflight = 0;
	acked_records = failed_batches = 0;
}

/* ---- bare librdkafka -------------------------------------------------------- */

struct bare_batch {
	int remaining;
	bool failed;
};

static void bare_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	struct bare_batch *b = m->_private;
	if (m->err)
		b->failed = true;
	if (--b->remaining == 0) { /* reports run on the poll thread only */
		batch_answered(!b->failed);
		free(b);
	}
}

static volatile int poll_stop;

static void *bare_poller(void *arg)
{
	while (!poll_stop)
		rd_kafka_poll(arg, 50);
	return NULL;
}

static double run_bare(const char *topic)
{
	char err[512], num[32];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	snprintf(num, sizeof(num), "%d", linger_ms);
	if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "enable.idempotence", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "acks", "all", err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "linger.ms", num, err, sizeof(err)) ||
	    rd_kafka_conf_set(c, "queue.buffering.max.messages", "2000000", err, sizeof(err))) {
		fprintf(stderr, "bare conf: %s\n", err);
		return -1;
	}
	rd_kafka_conf_set_dr_msg_cb(c, bare_dr);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "bare producer: %s\n", err);
		return -1;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	pthread_t th;
	poll_stop = 0;
	pthread_create(&th, NULL, bare_poller, rk);
	reset();
	int64_t t0 = kaa__now_ms(), end = t0 + (int64_t)(seconds * 1000);
	long seq = 0;
	while (kaa__now_ms() < end) {
		wait_window(window);
		struct bare_batch *b = calloc(1, sizeof(*b));
		b->remaining = nrec;
		const char *key = keys[seq % ENDPOINTS];
		char batch_id[32];
		snprintf(batch_id, sizeof(batch_id), "b%ld", seq++);
		for (int i = 0; i < nrec; i++) {
			rd_kafka_headers_t *h = rd_kafka_headers_new(7);
			snprintf(num, sizeof(num), "%d", 1);
			rd_kafka_header_add(h, "kaa.app", -1, num, -1);
			rd_kafka_header_add(h, "kaa.endpoint", -1, key, -1);
			rd_kafka_header_add(h, "kaa.batch", -1, batch_id, -1);
			snprintf(num, sizeof(num), "%d", i);
			rd_kafka_header_add(h, "kaa.index", -1, num, -1);
			snprintf(num, sizeof(num), "%d", nrec);
			rd_kafka_header_add(h, "kaa.batch_size", -1, num, -1);
			snprintf(num, sizeof(num), "%" PRId64, kaa__now_ms());
			rd_kafka_header_add(h, "kaa.received_ms", -1, num, -1);
			rd_kafka_header_add(h, "kaa.schema_version", -1, "1", -1);
			rd_kafka_resp_err_t e = rd_kafka_producev(
				rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_VALUE((void *)recs[i], strlen(recs[i])),
				RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_HEADERS(h),
				RD_KAFKA_V_OPAQUE(b), RD_KAFKA_V_END);
			if (e) {
				fprintf(stderr, "bare produce: %s\n", rd_kafka_err2str(e));
				rd_kafka_headers_destroy(h);
				exit(1);
			}
		}
	}
	wait_all();
	double dt = (double)(kaa__now_ms() - t0) / 1000.0;
	poll_stop = 1;
	pthread_join(th, NULL);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
	if (failed_batches)
		fprintf(stderr, "bare: %ld batches failed\n", failed_batches);
	return (double)acked_records / dt;
}

/* ---- through the appender ---------------------------------------------------------- */

static void kaa_done(void *arg, const kaa__log_status *st)
{
	(void)arg;
	batch_answered(st->result == KAA_LOG_OK);
}

static double run_kaa(const char *token)
{
	char settings[512], err[256];
	snprintf(settings, sizeof(settings),
		 "{\"type\":\"kafka\",\"bootstrap_servers\":\"%s\","
		 "\"topic\":\"kaa-bench-{app_token}\",\"linger_ms\":%d}",
		 bootstrap, linger_ms);
	kaa__log_appender_env env = {.app_token = token};
	kaa__log_appender *a = NULL;
	int rc = kaa__log_appender_new(1, 1, "bench", settings, &env, &a, err, sizeof(err));
	if (rc != KAA_OK) {
		fprintf(stderr, "appender: %s: %s\n", kaa_strerror(rc), err);
		return -1;
	}
	reset();
	int64_t t0 = kaa__now_ms(), end = t0 + (int64_t)(seconds * 1000);
	long seq = 0;
	while (kaa__now_ms() < end) {
		wait_window(window);
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
	wait_all();
	double dt = (double)(kaa__now_ms() - t0) / 1000.0;
	kaa__log_appender_free(a);
	if (failed_batches)
		fprintf(stderr, "kaa: %ld batches not acknowledged\n", failed_batches);
	return (double)acked_records / dt;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"bootstrap", required_argument, NULL, 'b'},
					     {"seconds", required_argument, NULL, 's'},
					     {"records", required_argument, NULL, 'r'},
					     {"window", required_argument, NULL, 'w'},
					     {"linger-ms", required_argument, NULL, 'l'},
					     {NULL, 0, NULL, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'b': bootstrap = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 'r': nrec = atoi(optarg); break;
		case 'w': window = atoi(optarg); break;
		case 'l': linger_ms = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (!bootstrap || nrec < 1 || nrec > MAX_RECORDS || window < 1 || seconds <= 0)
		goto usage;
	for (int i = 0; i < nrec; i++) {
		snprintf(rec_buf[i], sizeof(rec_buf[i]),
			 "{\"device\":%d,\"seq\":%d,\"temperature\":21.5,\"status\":\"ok\"}", i % 7,
			 i);
		recs[i] = rec_buf[i];
	}
	for (int i = 0; i < ENDPOINTS; i++)
		snprintf(keys[i], sizeof(keys[i]), "bench-endpoint-%02d-key-hash-AAAAAAAAAAAAA", i);
	char token[32], topic[64];
	snprintf(token, sizeof(token), "t%d", (int)getpid());
	snprintf(topic, sizeof(topic), "bare-bench-%s", token);
	printf("batches of %d records, %d batches in flight, 16 endpoints, %.1f s each,"
	       " linger.ms %d (acknowledged records/s)\n\n",
	       nrec, window, seconds, linger_ms);
	printf("| %-34s | %10s | %10s | %5s |\n", "figure", "kaa", "bare", "ratio");
	printf("| %-34s | %10s | %10s | %5s |\n", "---", "---:", "---:", "---:");
	/* a warm-up batch each: topic creation and the producer id are not
	 * part of the figure */
	double sv = seconds;
	seconds = 0.5;
	if (run_bare(topic) < 0 || run_kaa(token) < 0)
		return 1;
	seconds = sv;
	/* two rounds in alternating order: the broker's page cache and log
	 * segments warm up as the run goes */
	for (int round = 1; round <= 2; round++) {
		double bare, kaa;
		if (round == 1) {
			bare = run_bare(topic);
			kaa = run_kaa(token);
		} else {
			kaa = run_kaa(token);
			bare = run_bare(topic);
		}
		if (bare < 0 || kaa < 0)
			return 1;
		char what[64];
		snprintf(what, sizeof(what), "appender vs bare librdkafka, run %d", round);
		printf("| %-34s | %10.0f | %10.0f | %5.2f |\n", what, kaa, bare,
		       bare > 0 ? kaa / bare : 0);
	}
	return 0;
usage:
	fprintf(stderr, "usage: kafka_bench --bootstrap HOST:PORT [--seconds S] [--records R]"
			" [--window W] [--linger-ms L]\n");
	return 2;
}
