/*
 * kaa-device - the device simulator: runs one or many simulated devices
 * (one libkaa client each, all on one runtime) in one process.
 *
 *   kaa-device --bootstrap HOST:PORT[,...] --app-token T [--count N]
 *              [--duration S] [--state-dir D] [--profile JSON | --profile-file F]
 *              [--log-rate R] [--log-record JSON] [--log-total N]
 *              [--until-acked] [--subscribe TOPIC] [--ca FILE] [--fsync]
 *              [--owner ID --owner-token TOK] [--attach-endpoint-token TOK]
 *              [--endpoint-token-prefix P] [--send-event FQN]
 *              [--event-interval-ms N] [--event-count N] [--event-target KEYHASH]
 *              [--keepalive-ms N|off] [--liveness-timeout-ms N|off]
 *              [--connect-timeout-ms N] [--verbose] [--json]
 *
 * Device i keeps its key pair, state and log queue in D/dev-<i>, so a
 * second run with the same --state-dir continues as the same devices (and
 * uploads what the first run left queued). In --log-record, "{seq}" is
 * replaced by a per-device counter that continues across runs (kept in
 * D/dev-<i>/seq) and "{device}" by the device index.
 *
 * Owners and events: with --owner every device attaches itself to that
 * owner after its first HelloAck; device 0 then attaches the endpoint of
 * --attach-endpoint-token. With --send-event every device, once attached
 * (once registered without --owner), sends an event every
 * --event-interval-ms with body {"n":<1,2,...>,"sent_ms":<wall clock ms>};
 * received events are timed against sent_ms (latency percentiles in
 * --json).
 *
 * SIGTERM/SIGINT stop cleanly; --json prints one summary object at the end.
 * SIGHUP re-reads --profile-file and sends the profile to the server.
 * Bad flags: usage on stderr, exit 2.
 */
#include "kaa/kaa.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef KAA_VERSION
#define KAA_VERSION "0.0.0-dev"
#endif

#define MAX_BOOT 16
#define MAX_COUNT 100000
/* event latency histogram: 1 ms buckets, the last one takes the rest */
#define LAT_BUCKETS 60001

typedef struct device {
	int index;
	kaa_client *client;
	uint64_t seq;       /* next {seq} value */
	uint64_t generated; /* records generated in this run */
	double budget;      /* fractional records owed by the rate */
	char dir[PATH_MAX];
	atomic_bool established;
	atomic_bool stopped; /* gave up for good (revoked) */
	/* owners and events */
	char token[1024];         /* --endpoint-token-prefix: "P-<index>" */
	atomic_bool registered;   /* a HelloAck in this run */
	atomic_bool attach_asked; /* kaa_client_attach_owner called */
	atomic_bool attached;     /* attached to an owner (answer or notification) */
	atomic_bool ever_attached;
	uint64_t events_n;     /* events sent in this run (the body's n) */
	int64_t next_event_ms; /* monotonic ms of the next event, 0: now */
} device;

static struct {
	bool verbose;
	pthread_mutex_t out_lock;
	/* owners and events (read-only once the devices run) */
	const char *owner, *owner_token, *attach_token;
	/* event latencies (guarded by out_lock) */
	uint64_t lat[LAT_BUCKETS];
	uint64_t lat_n;
} g = {.out_lock = PTHREAD_MUTEX_INITIALIZER};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kaa-device --bootstrap HOST:PORT[,HOST:PORT...] --app-token TOKEN\n"
		"                  [--count N] [--duration S] [--state-dir DIR] [--profile JSON]\n"
		"                  [--profile-file FILE]\n"
		"                  [--log-rate R] [--log-record JSON] [--log-total N] [--until-acked]\n"
		"                  [--subscribe TOPIC] [--ca FILE] [--fsync] [--log-batch N]\n"
		"                  [--owner ID --owner-token TOK] [--attach-endpoint-token TOK]\n"
		"                  [--endpoint-token-prefix P] [--send-event FQN]\n"
		"                  [--event-interval-ms N] [--event-count N] [--event-target KEYHASH]\n"
		"                  [--keepalive-ms N|off] [--liveness-timeout-ms N|off]\n"
		"                  [--connect-timeout-ms N] [--verbose] [--json]\n"
		"\n"
		"The Kaa device simulator: runs N devices (libkaa clients) in one process.\n"
		"\n"
		"  --bootstrap LIST    bootstrap servers, tried in turn (required)\n"
		"  --app-token TOKEN   application token (required)\n"
		"  --count N           devices to run (default 1, at most %d)\n"
		"  --duration S        stop after S seconds (default: until SIGTERM/SIGINT)\n"
		"  --state-dir DIR     per-device state in DIR/dev-<i> (default ./kaa-device-state)\n"
		"  --profile JSON      client-side profile sent by every device\n"
		"  --profile-file FILE the profile from a file, read again on SIGHUP and sent\n"
		"                      to the server (a profile change can change groups)\n"
		"  --log-rate R        log records per second per device (default 0)\n"
		"  --log-record JSON   record template; {seq} and {device} are substituted\n"
		"                      (default {\"device\":{device},\"seq\":{seq}})\n"
		"  --log-total N       records per device in this run, then stop generating\n"
		"  --until-acked       exit once every device generated --log-total records\n"
		"                      and the server acknowledged everything queued\n"
		"  --subscribe TOPIC   subscribe every device to an optional topic\n"
		"  --ca FILE           CA bundle: connect with wss and verify the server\n"
		"  --fsync             fsync the log queue and state files on every change, as a\n"
		"                      real device does (the simulator's default is not to, so\n"
		"                      thousands of devices do not queue on one disk)\n"
		"  --log-batch N       records per log batch, 1..1000 (default 100)\n"
		"  --owner ID          attach every device to owner ID after its first HelloAck\n"
		"  --owner-token TOK   the owner access token for --owner (required with it)\n"
		"  --attach-endpoint-token TOK\n"
		"                      device 0 attaches the endpoint with this access token\n"
		"                      (after its own --owner attach succeeded)\n"
		"  --endpoint-token-prefix P\n"
		"                      device N sends endpoint access token \"P-N\" in Hello\n"
		"                      (default: a random token kept in its state directory)\n"
		"  --send-event FQN    every device sends events of class FQN once attached (once\n"
		"                      registered without --owner), body {\"n\":K,\"sent_ms\":MS}\n"
		"  --event-interval-ms N  between a device's events (default 1000)\n"
		"  --event-count N     events per device, then stop (default 0: until stopped);\n"
		"                      with --until-acked, exit once all were acknowledged\n"
		"  --event-target KEYHASH  send to this endpoint (default: the owner's sinks)\n"
		"  --keepalive-ms N|off  Ping after N ms without a frame from the server\n"
		"                      (default 0: a third of the server's idle timeout)\n"
		"  --liveness-timeout-ms N|off  a Ping unanswered for N ms means the connection\n"
		"                      is dead: reconnect (default 0: 10000)\n"
		"  --connect-timeout-ms N  give up a connection attempt after N ms (default 0: 15000)\n"
		"  --verbose           one line per event on stderr (device=N ts_ms=T event=...;\n"
		"                      registered device=N key=K, owner_attached, event_received,\n"
		"                      ... see sdk/README.md)\n"
		"  --json              print a JSON summary on stdout at the end\n"
		"  -h, --help          this help;  -V, --version  the version\n",
		MAX_COUNT);
}

static void event_line(const device *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void event_line(const device *d, const char *fmt, ...)
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

/* A line in the exact shape scripts match ("owner_attached device=N ..."),
 * without the device=/ts_ms= prefix of event_line. */
static void raw_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void raw_line(const char *fmt, ...)
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

static int64_t wall_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The protocol's ErrorCode names (docs/protocol.md); others as numbers. */
static const char *code_name(int code, char *buf, size_t len)
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

static void on_state(kaa_client *c, kaa_client_state s, void *user)
{
	device *d = user;
	char node[300];
	atomic_store(&d->established, s == KAA_STATE_ESTABLISHED);
	atomic_store(&d->stopped, s == KAA_STATE_STOPPED);
	kaa_client_get_node(c, node, sizeof(node));
	event_line(d, "event=state state=%s%s%s", kaa_client_state_name(s), node[0] ? " node=" : "",
		   node);
}

static void on_registered(kaa_client *c, const char *hash, bool created, void *user)
{
	device *d = user;

	event_line(d, "event=registered endpoint=%s created=%d", hash, created);
	if (!atomic_exchange(&d->registered, true))
		raw_line("registered device=%d key=%s", d->index, hash);
	/* the first session of this run: attach (the SDK re-sends an
	 * unanswered request after a reconnect) */
	if (g.owner && !atomic_exchange(&d->attach_asked, true)) {
		int r = kaa_client_attach_owner(c, g.owner, g.owner_token, NULL);
		if (r != KAA_OK)
			raw_line("owner_attach_failed device=%d code=%s reason=%s", d->index,
				 "LOCAL", kaa_strerror(r));
	} else if (!g.owner && g.attach_token && d->index == 0 &&
		   !atomic_exchange(&d->attach_asked, true)) {
		kaa_client_attach_endpoint(c, g.attach_token);
	}
}

static void on_attach_result(kaa_client *c, const char *token, bool ok, int code,
			     const char *reason, const char *owner_id, const char *ekh, void *user)
{
	device *d = user;
	char buf[16];

	if (token) {
		if (ok)
			raw_line("endpoint_attached device=%d endpoint=%s owner=%s", d->index, ekh,
				 owner_id);
		else
			raw_line("endpoint_attach_failed device=%d code=%s reason=%s", d->index,
				 code_name(code, buf, sizeof(buf)), reason);
		return;
	}
	if (!ok) {
		raw_line("owner_attach_failed device=%d code=%s reason=%s", d->index,
			 code_name(code, buf, sizeof(buf)), reason);
		return;
	}
	atomic_store(&d->attached, true);
	atomic_store(&d->ever_attached, true);
	raw_line("owner_attached device=%d owner=%s owner_id=%s", d->index, g.owner, owner_id);
	if (d->index == 0 && g.attach_token)
		kaa_client_attach_endpoint(c, g.attach_token);
}

static void on_attach_notification(kaa_client *c, const char *owner_id, const char *by, void *user)
{
	device *d = user;

	(void)c;
	atomic_store(&d->attached, true);
	atomic_store(&d->ever_attached, true);
	raw_line("attach_notification device=%d owner=%s by=%s", d->index, owner_id, by);
}

static void on_detach_notification(kaa_client *c, const char *by, void *user)
{
	device *d = user;

	(void)c;
	atomic_store(&d->attached, false);
	raw_line("detach_notification device=%d by=%s", d->index, by);
}

/* sent_ms of a body {"n":..,"sent_ms":..}, or -1. */
static int64_t body_sent_ms(const char *body)
{
	const char *p = strstr(body, "\"sent_ms\"");
	char *end;
	long long v;

	if (!p)
		return -1;
	p += 9;
	while (*p == ' ' || *p == ':')
		p++;
	errno = 0;
	v = strtoll(p, &end, 10);
	return errno || end == p || v < 0 ? -1 : v;
}

static void on_event(kaa_client *c, const char *fqn, const char *source, uint64_t seq,
		     const char *body, void *user)
{
	device *d = user;
	int64_t now = wall_ms(), sent = body_sent_ms(body);

	(void)c;
	if (sent < 0) {
		raw_line("event_received ts_ms=%lld device=%d source=%s seq=%" PRIu64 " fqn=%s",
			 (long long)now, d->index, source, seq, fqn);
		return;
	}
	int64_t lat = now - sent;
	pthread_mutex_lock(&g.out_lock);
	g.lat[lat < 0 ? 0 : lat >= LAT_BUCKETS ? LAT_BUCKETS - 1 : lat]++;
	g.lat_n++;
	pthread_mutex_unlock(&g.out_lock);
	raw_line("event_received ts_ms=%lld device=%d source=%s seq=%" PRIu64
		 " fqn=%s latency_ms=%lld",
		 (long long)now, d->index, source, seq, fqn, (long long)lat);
}

static void on_event_result(kaa_client *c, uint64_t seq, int err, int code, const char *msg,
			    void *user)
{
	device *d = user;
	char buf[16];

	(void)c;
	if (err != KAA_OK)
		raw_line("event_failed device=%d seq=%" PRIu64 " err=%s code=%s message=%s",
			 d->index, seq, kaa_strerror(err), code_name(code, buf, sizeof(buf)), msg);
}

static void on_error(kaa_client *c, int err, int code, const char *msg, void *user)
{
	(void)c;
	event_line(user, "event=error err=%d code=%d message=\"%s\"", err, code, msg);
}

static void on_configuration(kaa_client *c, const char *json, size_t len, const char *hash,
			     void *user)
{
	(void)c;
	event_line(user, "event=configuration hash=%s json=%.*s", hash, (int)len, json);
}

static void on_notification(kaa_client *c, const char *topic, uint64_t seq, const char *body,
			    void *user)
{
	(void)c;
	event_line(user, "event=notification topic=%s seq=%" PRIu64 " body=%s",
		   topic[0] ? topic : "-", seq, body);
}

static void on_log_delivery(kaa_client *c, uint64_t batch, size_t n, bool ok, void *user)
{
	(void)c;
	event_line(user, "event=log_delivery batch=%" PRIu64 " records=%zu ok=%d", batch, n, ok);
}

static const kaa_callbacks callbacks = {
	.on_state = on_state,
	.on_registered = on_registered,
	.on_error = on_error,
	.on_configuration = on_configuration,
	.on_notification = on_notification,
	.on_log_delivery = on_log_delivery,
	.on_attach_result = on_attach_result,
	.on_attach_notification = on_attach_notification,
	.on_detach_notification = on_detach_notification,
	.on_event = on_event,
	.on_event_result = on_event_result,
};

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

/* Sends the events of d that are due (at most a bounded burst when the
 * loop fell behind). */
static void send_events(device *d, const char *fqn, const char *target, uint64_t interval,
			uint64_t count, int64_t now)
{
	int burst = 0;

	if (!atomic_load(&d->registered) || (g.owner && !atomic_load(&d->attached)))
		return;
	if (d->next_event_ms == 0)
		d->next_event_ms = now;
	while (now >= d->next_event_ms && (count == 0 || d->events_n < count) && burst++ < 100) {
		char body[96];
		uint64_t seq = 0;
		snprintf(body, sizeof(body), "{\"n\":%" PRIu64 ",\"sent_ms\":%lld}",
			 d->events_n + 1, (long long)wall_ms());
		int r = kaa_client_send_event(d->client, fqn, target, body, &seq);
		d->next_event_ms += (int64_t)interval;
		if (r != KAA_OK) {
			raw_line("event_send_failed device=%d err=%s", d->index, kaa_strerror(r));
			break;
		}
		d->events_n++;
		raw_line("event_sent ts_ms=%lld device=%d seq=%" PRIu64 " n=%" PRIu64,
			 (long long)wall_ms(), d->index, seq, d->events_n);
	}
	if (d->next_event_ms < now - 1000)
		d->next_event_ms = now; /* far behind (e.g. offline): no flood */
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out);

/* "off" (-1) or 0..INT32_MAX milliseconds (0: the SDK's default). */
static bool parse_ms_or_off(const char *s, int32_t *out)
{
	uint64_t v;

	if (strcmp(s, "off") == 0) {
		*out = -1;
		return true;
	}
	if (!parse_u64(s, INT32_MAX, &v))
		return false;
	*out = (int32_t)v;
	return true;
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static bool parse_rate(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end != s && strcmp(end, "/s") == 0)
		end += 2;
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 100000)
		return false;
	*out = v;
	return true;
}

/* Expands the template: {seq} and {device}. */
static char *render(const char *tpl, const device *d, uint64_t seq)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f)
		return NULL;
	for (const char *p = tpl; *p;) {
		if (strncmp(p, "{seq}", 5) == 0) {
			fprintf(f, "%" PRIu64, seq);
			p += 5;
		} else if (strncmp(p, "{device}", 8) == 0) {
			fprintf(f, "%d", d->index);
			p += 8;
		} else {
			fputc(*p++, f);
		}
	}
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* The whole profile file (at most 16 KiB), or NULL. */
static char *read_profile(const char *path)
{
	char *buf = malloc(16 * 1024 + 1);
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (!buf || !f) {
		free(buf);
		if (f)
			fclose(f);
		return NULL;
	}
	n = fread(buf, 1, 16 * 1024 + 1, f);
	fclose(f);
	if (n == 0 || n > 16 * 1024) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

static uint64_t load_seq(const device *d)
{
	char path[PATH_MAX + 8];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/seq", d->dir);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static void save_seq(const device *d)
{
	char path[PATH_MAX + 8], tmp[PATH_MAX + 16];
	FILE *f;

	snprintf(path, sizeof(path), "%s/seq", d->dir);
	snprintf(tmp, sizeof(tmp), "%s/seq.tmp", d->dir);
	f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(f, "%" PRIu64 "\n", d->seq);
	if (fclose(f) == 0)
		rename(tmp, path);
}

int main(int argc, char **argv)
{
	enum {
		O_BOOT = 256,
		O_TOKEN,
		O_COUNT,
		O_DURATION,
		O_STATE,
		O_PROFILE,
		O_PROFILE_FILE,
		O_RATE,
		O_RECORD,
		O_TOTAL,
		O_UNTIL,
		O_SUB,
		O_CA,
		O_FSYNC,
		O_BATCH,
		O_VERBOSE,
		O_JSON,
		O_OWNER,
		O_OWNER_TOKEN,
		O_ATTACH_EP,
		O_TOKEN_PREFIX,
		O_SEND_EVENT,
		O_EV_INTERVAL,
		O_EV_COUNT,
		O_EV_TARGET,
		O_KEEPALIVE,
		O_LIVENESS,
		O_CONNECT_TO,
	};
	static const struct option opts[] = {
		{"bootstrap", required_argument, NULL, O_BOOT},
		{"app-token", required_argument, NULL, O_TOKEN},
		{"count", required_argument, NULL, O_COUNT},
		{"duration", required_argument, NULL, O_DURATION},
		{"state-dir", required_argument, NULL, O_STATE},
		{"profile", required_argument, NULL, O_PROFILE},
		{"profile-file", required_argument, NULL, O_PROFILE_FILE},
		{"log-rate", required_argument, NULL, O_RATE},
		{"log-record", required_argument, NULL, O_RECORD},
		{"log-total", required_argument, NULL, O_TOTAL},
		{"until-acked", no_argument, NULL, O_UNTIL},
		{"subscribe", required_argument, NULL, O_SUB},
		{"ca", required_argument, NULL, O_CA},
		{"fsync", no_argument, NULL, O_FSYNC},
		{"log-batch", required_argument, NULL, O_BATCH},
		{"verbose", no_argument, NULL, O_VERBOSE},
		{"json", no_argument, NULL, O_JSON},
		{"owner", required_argument, NULL, O_OWNER},
		{"owner-token", required_argument, NULL, O_OWNER_TOKEN},
		{"attach-endpoint-token", required_argument, NULL, O_ATTACH_EP},
		{"endpoint-token-prefix", required_argument, NULL, O_TOKEN_PREFIX},
		{"send-event", required_argument, NULL, O_SEND_EVENT},
		{"event-interval-ms", required_argument, NULL, O_EV_INTERVAL},
		{"event-count", required_argument, NULL, O_EV_COUNT},
		{"event-target", required_argument, NULL, O_EV_TARGET},
		{"keepalive-ms", required_argument, NULL, O_KEEPALIVE},
		{"liveness-timeout-ms", required_argument, NULL, O_LIVENESS},
		{"connect-timeout-ms", required_argument, NULL, O_CONNECT_TO},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	char *boot_list = NULL, *boot[MAX_BOOT];
	size_t nboot = 0;
	const char *token = NULL, *state_dir = "./kaa-device-state", *profile = NULL;
	const char *profile_file = NULL;
	char *file_profile = NULL;
	const char *tpl = "{\"device\":{device},\"seq\":{seq}}", *ca = NULL, *sub = NULL;
	uint64_t count = 1, duration = 0, total = 0, batch = 0;
	double rate = 0;
	bool until_acked = false, fsync_each = false, json = false;
	const char *token_prefix = NULL, *ev_fqn = NULL, *ev_target = NULL;
	uint64_t ev_interval = 1000, ev_count = 0, connect_to = 0;
	int32_t keepalive = 0, liveness = 0;
	kaa_runtime *rt = NULL;
	device *devs = NULL;
	sigset_t sigs;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		switch (c) {
		case O_BOOT: boot_list = optarg; break;
		case O_TOKEN: token = optarg; break;
		case O_COUNT:
			if (!parse_u64(optarg, MAX_COUNT, &count) || count == 0)
				goto bad;
			break;
		case O_DURATION:
			if (!parse_u64(optarg, 365ull * 24 * 3600, &duration))
				goto bad;
			break;
		case O_STATE: state_dir = optarg; break;
		case O_PROFILE: profile = optarg; break;
		case O_PROFILE_FILE: profile_file = optarg; break;
		case O_RATE:
			if (!parse_rate(optarg, &rate))
				goto bad;
			break;
		case O_RECORD: tpl = optarg; break;
		case O_TOTAL:
			if (!parse_u64(optarg, UINT32_MAX, &total))
				goto bad;
			break;
		case O_UNTIL: until_acked = true; break;
		case O_SUB: sub = optarg; break;
		case O_CA: ca = optarg; break;
		case O_FSYNC: fsync_each = true; break;
		case O_BATCH:
			if (!parse_u64(optarg, 1000, &batch) || batch == 0)
				goto bad;
			break;
		case O_VERBOSE: g.verbose = true; break;
		case O_JSON: json = true; break;
		case O_OWNER: g.owner = optarg; break;
		case O_OWNER_TOKEN: g.owner_token = optarg; break;
		case O_ATTACH_EP: g.attach_token = optarg; break;
		case O_TOKEN_PREFIX: token_prefix = optarg; break;
		case O_SEND_EVENT: ev_fqn = optarg; break;
		case O_EV_INTERVAL:
			if (!parse_u64(optarg, 3600000, &ev_interval) || ev_interval == 0)
				goto bad;
			break;
		case O_EV_COUNT:
			if (!parse_u64(optarg, UINT32_MAX, &ev_count))
				goto bad;
			break;
		case O_EV_TARGET: ev_target = optarg; break;
		case O_KEEPALIVE:
			if (!parse_ms_or_off(optarg, &keepalive))
				goto bad;
			break;
		case O_LIVENESS:
			if (!parse_ms_or_off(optarg, &liveness))
				goto bad;
			break;
		case O_CONNECT_TO:
			if (!parse_u64(optarg, UINT32_MAX, &connect_to))
				goto bad;
			break;
		case 'h': usage(stdout); return 0;
		case 'V':
			printf("kaa-device %s (libkaa %s)\n", KAA_VERSION, kaa_sdk_version());
			return 0;
		default: goto bad;
		}
	}
	if (optind != argc || !boot_list || !token || !*token)
		goto bad;
	for (char *save = NULL, *t = strtok_r(boot_list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (nboot == MAX_BOOT)
			goto bad;
		boot[nboot++] = t;
	}
	if (nboot == 0 || (until_acked && total == 0 && rate > 0) || (profile && profile_file))
		goto bad;
	/* owners and events: the SDK's bounds, checked here for a clear usage */
	if (!g.owner != !g.owner_token || (g.owner && (!*g.owner || strlen(g.owner) > 256)) ||
	    (g.owner_token && (!*g.owner_token || strlen(g.owner_token) > 1024)) ||
	    (g.attach_token && (!*g.attach_token || strlen(g.attach_token) > 1024)) ||
	    (token_prefix && (!*token_prefix || strlen(token_prefix) > 1000)) ||
	    (ev_fqn && (!*ev_fqn || strlen(ev_fqn) > 256)) ||
	    (ev_target && (!*ev_target || strlen(ev_target) > 256)))
		goto bad;
	if (profile_file) {
		file_profile = read_profile(profile_file);
		if (!file_profile) {
			fprintf(stderr, "kaa-device: cannot read %s\n", profile_file);
			return 2;
		}
		profile = file_profile;
	}
	if (until_acked && rate == 0 && total > 0)
		rate = 1000;

	/* signals are taken by sigtimedwait in this thread only */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = kaa_runtime_new(&rt);
	if (rc != KAA_OK) {
		fprintf(stderr, "kaa-device: cannot start the runtime: %s\n", kaa_strerror(rc));
		free(file_profile);
		return 1;
	}
	devs = calloc(count, sizeof(*devs));
	if (!devs) {
		fprintf(stderr, "kaa-device: out of memory\n");
		kaa_runtime_free(rt);
		free(file_profile);
		return 1;
	}
	for (uint64_t i = 0; i < count; i++) {
		device *d = &devs[i];
		kaa_client_options o = {
			.application_token = token,
			.bootstrap_servers = (const char *const *)boot,
			.bootstrap_count = nboot,
			.state_dir = d->dir,
			.client_profile_json = profile,
			.ca_file = ca,
			.callbacks = &callbacks,
			.user = d,
			.log_no_fsync = !fsync_each,
			.state_no_fsync = !fsync_each,
			.log_batch_records = (uint32_t)batch,
			.keepalive_ms = keepalive,
			.liveness_timeout_ms = liveness,
			.connect_timeout_ms = (uint32_t)connect_to,
		};
		d->index = (int)i;
		if (token_prefix) {
			snprintf(d->token, sizeof(d->token), "%s-%" PRIu64, token_prefix, i);
			o.endpoint_access_token = d->token;
		}
		snprintf(d->dir, sizeof(d->dir), "%s/dev-%" PRIu64, state_dir, i);
		rc = kaa_client_new(rt, &o, &d->client);
		if (rc != KAA_OK) {
			fprintf(stderr, "kaa-device: device %" PRIu64 " (%s): %s\n", i, d->dir,
				kaa_strerror(rc));
			rc = 1;
			goto out;
		}
		d->seq = load_seq(d);
		if (sub)
			kaa_client_subscribe(d->client, sub);
		kaa_client_start(d->client);
	}

	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		/* events may be due more often than the 100 ms tick */
		uint64_t tick_ms = ev_fqn && ev_interval < 100 ? ev_interval : 100;
		struct timespec tick = {0, (long)tick_ms * 1000 * 1000};
		int sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig == SIGHUP && profile_file) {
			char *np = read_profile(profile_file);
			for (uint64_t i = 0; np && i < count; i++) {
				int r = kaa_client_set_profile(devs[i].client, np);
				if (r != KAA_OK)
					event_line(&devs[i], "event=profile_refused err=%s",
						   kaa_strerror(r));
			}
			if (!np)
				fprintf(stderr, "kaa-device: cannot read %s\n", profile_file);
			free(np);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		double elapsed =
			(double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
		if (duration && elapsed >= (double)duration)
			break;
		bool all_done = until_acked;
		int64_t now_ms = mono_ms();
		for (uint64_t i = 0; i < count; i++) {
			device *d = &devs[i];
			if (ev_fqn)
				send_events(d, ev_fqn, ev_target, ev_interval, ev_count, now_ms);
			if (rate > 0 && (total == 0 || d->generated < total)) {
				d->budget += rate * 0.1;
				while (d->budget >= 1 && (total == 0 || d->generated < total)) {
					char *rec = render(tpl, d, d->seq);
					int r = rec ? kaa_client_log_add(d->client, rec,
									 strlen(rec))
						    : KAA_ERR_NOMEM;
					free(rec);
					if (r != KAA_OK) {
						event_line(d, "event=log_add_failed err=%s",
							   kaa_strerror(r));
						d->budget = 0;
						break;
					}
					d->seq++;
					d->generated++;
					d->budget -= 1;
				}
				save_seq(d);
			}
			if (all_done) {
				kaa_client_stats st;
				kaa_client_get_stats(d->client, &st);
				if (d->generated < total || st.queued_records > 0)
					all_done = false;
				/* with --event-count: every event sent and answered */
				if (ev_fqn && ev_count &&
				    (d->events_n < ev_count || st.events_outbox > 0))
					all_done = false;
			}
		}
		if (all_done)
			break;
		/* every device gave up for good (credentials revoked): done */
		bool all_stopped = true;
		for (uint64_t i = 0; i < count && all_stopped; i++)
			all_stopped = atomic_load(&devs[i].stopped);
		if (all_stopped)
			break;
	}
	rc = 0;
out:
	/* stop the network first so the summary is stable */
	kaa_runtime_free(rt);
	if (json) {
		uint64_t connected = 0, registered = 0, sent = 0, acked = 0, notes = 0, confs = 0,
			 errs = 0, recon = 0, queued = 0, dead = 0;
		uint64_t ev_sent = 0, ev_acked = 0, ev_failed = 0, ev_recv = 0, ev_dup = 0,
			 attached = 0;
		for (uint64_t i = 0; i < count; i++) {
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
		       ",\"notifications_received\":%" PRIu64
		       ",\"configurations_received\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"reconnects\":%" PRIu64 ",\"queued_records\":%" PRIu64
		       ",\"events_sent\":%" PRIu64 ",\"events_acked\":%" PRIu64
		       ",\"events_failed\":%" PRIu64 ",\"events_received\":%" PRIu64
		       ",\"events_duplicates\":%" PRIu64 ",\"event_latency_p50_ms\":%" PRIu64
		       ",\"event_latency_p99_ms\":%" PRIu64 ",\"owner_attached\":%" PRIu64
		       ",\"liveness_timeouts\":%" PRIu64 "}\n",
		       count, connected, registered, sent, acked, notes, confs, errs, recon, queued,
		       ev_sent, ev_acked, ev_failed, ev_recv, ev_dup, lat_percentile(0.50),
		       lat_percentile(0.99), attached, dead);
		fflush(stdout);
	}
	for (uint64_t i = 0; i < count; i++)
		kaa_client_free(devs[i].client);
	free(devs);
	free(file_profile);
	return rc;
bad:
	usage(stderr);
	return 2;
}
