/* What kaa-device prints: the --verbose lines on stderr (the e2e suites
 * match their exact shape) and the --json summary on stdout. */
#include "device.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <time.h>

/* event latency histogram: 1 ms buckets, the last one takes the rest */
#define LAT_BUCKETS 60001

static struct {
	bool verbose;
	pthread_mutex_t out_lock; /* one line at a time; guards lat */
	uint64_t lat[LAT_BUCKETS];
	uint64_t lat_n;
} g = {.out_lock = PTHREAD_MUTEX_INITIALIZER};

void kaa__sim_output_init(bool verbose)
{
	g.verbose = verbose;
}

int64_t kaa__sim_wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t kaa__sim_mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

void kaa__sim_event_line(const kaa__sim_device *d, const char *fmt, ...)
{
	va_list ap;

	if (!g.verbose)
		return;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&g.out_lock);
	/* wall-clock ms, so benchmarks can time pushes against their trigger */
	fprintf(stderr, "device=%d ts_ms=%lld ", d->index,
		(long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&g.out_lock);
}

void kaa__sim_raw_line(const char *fmt, ...)
{
	va_list ap;

	if (!g.verbose)
		return;
	pthread_mutex_lock(&g.out_lock);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&g.out_lock);
}

const char *kaa__sim_code_name(int code, char *buf, size_t len)
{
	static const char *const names[] = {
		"UNSPECIFIED",     "BAD_FRAME",           "UNSUPPORTED_VERSION",
		"TOO_BIG",         "UNAUTHENTICATED",     "FORBIDDEN",
		"REVOKED",         "INVALID_PROFILE",     "INVALID_LOG_RECORD",
		"RATE_LIMITED",    "OVERLOADED",          "INTERNAL",
		"INVALID_MESSAGE", "UNSUPPORTED_MESSAGE", "BAD_STATE",
		"NOT_FOUND",       "INVALID_EVENT",       "INVALID_TOKEN",
		"EXPIRED_TOKEN",   "NO_VERIFIER",
	};
	if (code >= 0 && (size_t)code < sizeof(names) / sizeof(names[0]))
		return names[code];
	snprintf(buf, len, "%d", code);
	return buf;
}

void kaa__sim_latency_add(int64_t lat)
{
	pthread_mutex_lock(&g.out_lock);
	g.lat[lat < 0 ? 0 : lat >= LAT_BUCKETS ? LAT_BUCKETS - 1 : lat]++;
	g.lat_n++;
	pthread_mutex_unlock(&g.out_lock);
}

/* The latency below which fraction q of the received events were. */
static uint64_t lat_percentile(double q)
{
	uint64_t want, acc = 0;

	if (g.lat_n == 0)
		return 0;
	want = (uint64_t)ceil(q * (double)g.lat_n);
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < LAT_BUCKETS; i++) {
		acc += g.lat[i];
		if (acc >= want)
			return i;
	}
	return LAT_BUCKETS - 1;
}

void kaa__sim_print_summary(const kaa__sim_config *cfg, const kaa__sim_device *devs)
{
	uint64_t connected = 0, registered = 0, sent = 0, acked = 0, notes = 0, confs = 0, errs = 0,
		 recon = 0, queued = 0, dead = 0;
	uint64_t ev_sent = 0, ev_acked = 0, ev_failed = 0, ev_recv = 0, ev_dup = 0, attached = 0;

	for (uint64_t i = 0; i < cfg->count; i++) {
		kaa_client_stats st;
		if (!devs[i].client || kaa_client_get_stats(devs[i].client, &st) != KAA_OK)
			continue;
		connected += st.connects > 0;
		registered += st.registered;
		sent += st.records_sent;
		acked += st.records_acked;
		notes += st.notifications;
		confs += st.configurations;
		errs += st.errors;
		recon += st.reconnects;
		dead += st.liveness_timeouts;
		queued += st.queued_records;
		ev_sent += st.events_queued;
		ev_acked += st.events_acked;
		ev_failed += st.events_failed;
		ev_recv += st.events_received;
		ev_dup += st.events_duplicates;
		attached += atomic_load(&devs[i].ever_attached);
	}
	printf("{\"devices\":%" PRIu64 ",\"connected\":%" PRIu64 ",\"registered\":%" PRIu64
	       ",\"records_sent\":%" PRIu64 ",\"records_acked\":%" PRIu64
	       ",\"notifications_received\":%" PRIu64 ",\"configurations_received\":%" PRIu64
	       ",\"errors\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"queued_records\":%" PRIu64
	       ",\"events_sent\":%" PRIu64 ",\"events_acked\":%" PRIu64
	       ",\"events_failed\":%" PRIu64 ",\"events_received\":%" PRIu64
	       ",\"events_duplicates\":%" PRIu64 ",\"event_latency_p50_ms\":%" PRIu64
	       ",\"event_latency_p99_ms\":%" PRIu64 ",\"owner_attached\":%" PRIu64
	       ",\"liveness_timeouts\":%" PRIu64 "}\n",
	       cfg->count, connected, registered, sent, acked, notes, confs, errs, recon, queued,
	       ev_sent, ev_acked, ev_failed, ev_recv, ev_dup, lat_percentile(0.50),
	       lat_percentile(0.99), attached, dead);
	fflush(stdout);
}
