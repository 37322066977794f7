/*
 * kafka_consume - reads a whole Kafka topic for the e2e tests (librdkafka,
 * no consumer group): every partition from its beginning up to the high
 * watermark taken at start, one line per record on stdout:
 *
 *   <partition>\t<offset>\t<key>\t<h1>=<v1>,<h2>=<v2>...\t<value>
 *
 * (line breaks in the value become spaces; header values are printed as
 * they are, the appender's are plain tokens). Exit 0 when every partition
 * was read to its watermark, 1 on error (message on stderr), 2 on usage.
 *
 *   kafka_consume --bootstrap HOST:PORT --topic T [--timeout-ms N]
 *                 [--sasl-mechanism M --user U --password P]
 */
#include <librdkafka/rdkafka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int set(rd_kafka_conf_t *c, const char *k, const char *v)
{
	char err[256];
	if (rd_kafka_conf_set(c, k, v, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka_consume: %s: %s\n", k, err);
		return -1;
	}
	return 0;
}

static void print_record(const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *hdrs = NULL;
	printf("%" PRId32 "\t%" PRId64 "\t%.*s\t", m->partition, m->offset, (int)m->key_len,
	       m->key ? (const char *)m->key : "");
	if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t len;
		for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) ==
				   RD_KAFKA_RESP_ERR_NO_ERROR;
		     i++)
			printf("%s%s=%.*s", i ? "," : "", name, (int)len,
			       val ? (const char *)val : "");
	}
	putchar('\t');
	const char *v = m->payload;
	for (size_t i = 0; i < m->len; i++)
		putchar(v[i] == '\n' || v[i] == '\r' ? ' ' : v[i]);
	putchar('\n');
}

int main(int argc, char **argv)
{
	const char *bootstrap = NULL, *topic = NULL, *mech = NULL, *user = NULL, *pass = NULL;
	int64_t timeout_ms = 30000;
	char err[512];
	int rc = 1;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--bootstrap") == 0)
			bootstrap = argv[i + 1];
		else if (strcmp(argv[i], "--topic") == 0)
			topic = argv[i + 1];
		else if (strcmp(argv[i], "--timeout-ms") == 0)
			timeout_ms = strtoll(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--sasl-mechanism") == 0)
			mech = argv[i + 1];
		else if (strcmp(argv[i], "--user") == 0)
			user = argv[i + 1];
		else if (strcmp(argv[i], "--password") == 0)
			pass = argv[i + 1];
		else
			bootstrap = NULL, i = argc;
	}
	if (!bootstrap || !topic || argc % 2 == 0) {
		fprintf(stderr, "usage: kafka_consume --bootstrap HOST:PORT --topic T"
				" [--timeout-ms N] [--sasl-mechanism M --user U --password P]\n");
		return 2;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (set(conf, "bootstrap.servers", bootstrap) || set(conf, "group.id", "kaa-e2e-reader") ||
	    set(conf, "enable.auto.commit", "false") || set(conf, "enable.partition.eof", "true") ||
	    set(conf, "log_level", "3") ||
	    (mech &&
	     (set(conf, "security.protocol", "SASL_PLAINTEXT") ||
	      set(conf, "sasl.mechanism", mech) || set(conf, "sasl.username", user ? user : "") ||
	      set(conf, "sasl.password", pass ? pass : "")))) {
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "kafka_consume: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *parts = NULL;
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, (int)timeout_ms);
	rd_kafka_topic_destroy(rkt);
	if (e || md->topic_cnt != 1 || md->topics[0].err) {
		fprintf(stderr, "kafka_consume: metadata of %s: %s\n", topic,
			rd_kafka_err2str(e               ? e
					 : md->topic_cnt ? md->topics[0].err
							 : e));
		goto out;
	}
	int nparts = md->topics[0].partition_cnt;
	int64_t *high = calloc((size_t)nparts + 1, sizeof(*high));
	parts = rd_kafka_topic_partition_list_new(nparts);
	int remaining = 0;
	for (int p = 0; p < nparts; p++) {
		int32_t id = md->topics[0].partitions[p].id;
		int64_t lo = 0, hi = 0;
		e = rd_kafka_query_watermark_offsets(rk, topic, id, &lo, &hi, (int)timeout_ms);
		if (e) {
			fprintf(stderr, "kafka_consume: watermarks of %s/%d: %s\n", topic, id,
				rd_kafka_err2str(e));
			free(high);
			goto out;
		}
		if (id >= 0 && id < nparts)
			high[id] = hi;
		if (hi > lo) {
			rd_kafka_topic_partition_list_add(parts, topic, id)->offset = lo;
			remaining++;
		}
	}
	if (remaining && (e = rd_kafka_assign(rk, parts))) {
		fprintf(stderr, "kafka_consume: assign: %s\n", rd_kafka_err2str(e));
		free(high);
		goto out;
	}
	int64_t deadline = now_ms() + timeout_ms;
	while (remaining > 0) {
		if (now_ms() > deadline) {
			fprintf(stderr,
				"kafka_consume: %d partitions not read to the end in %" PRId64
				" ms\n",
				remaining, timeout_ms);
			free(high);
			goto out;
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
		if (!m)
			continue;
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->err) {
			fprintf(stderr, "kafka_consume: %s\n", rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			free(high);
			goto out;
		}
		if (m->partition >= 0 && m->partition < nparts && m->offset < high[m->partition]) {
			print_record(m);
			if (m->offset + 1 == high[m->partition])
				remaining--;
		}
		rd_kafka_message_destroy(m);
	}
	free(high);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	if (md)
		rd_kafka_metadata_destroy(md);
	if (parts)
		rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return rc;
}
