/* Runs the simulated devices: one libkaa client each, all on one runtime,
 * driven by a tick in main()'s thread that also takes the signals. Each
 * tick generates the log records and events that are due and checks
 * whether the run is over. */
#include "device.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct fleet {
	const kaa__sim_config *cfg;
	kaa_runtime *rt;
	kaa__sim_device *devs; /* cfg->count of them */
	sigset_t sigs;         /* taken by sigtimedwait in the tick */
	struct timespec t0;
} fleet;

/* Expands the template: {seq} and {device}. */
static char *render(const char *tpl, const kaa__sim_device *d, uint64_t seq)
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

static uint64_t load_seq(const kaa__sim_device *d)
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

static void save_seq(const kaa__sim_device *d)
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

/* Sends the events of d that are due (at most a bounded burst when the
 * loop fell behind). */
static void send_events(const kaa__sim_config *cfg, kaa__sim_device *d, int64_t now)
{
	int burst = 0;

	if (!atomic_load(&d->registered) || (cfg->owner && !atomic_load(&d->attached)))
		return;
	if (d->next_event_ms == 0)
		d->next_event_ms = now;
	while (now >= d->next_event_ms && (cfg->ev_count == 0 || d->events_n < cfg->ev_count) &&
	       burst++ < 100) {
		char body[96];
		uint64_t seq = 0;
		snprintf(body, sizeof(body), "{\"n\":%" PRIu64 ",\"sent_ms\":%lld}",
			 d->events_n + 1, (long long)kaa__sim_wall_ms());
		int r = kaa_client_send_event(d->client, cfg->ev_fqn, cfg->ev_target, body, &seq);
		d->next_event_ms += (int64_t)cfg->ev_interval;
		if (r != KAA_OK) {
			kaa__sim_raw_line("event_send_failed device=%d err=%s", d->index,
					  kaa_strerror(r));
			break;
		}
		d->events_n++;
		kaa__sim_raw_line("event_sent ts_ms=%lld device=%d seq=%" PRIu64 " n=%" PRIu64,
				  (long long)kaa__sim_wall_ms(), d->index, seq, d->events_n);
	}
	if (d->next_event_ms < now - 1000)
		d->next_event_ms = now; /* far behind (e.g. offline): no flood */
}

/* Adds the log records of d that one 100 ms tick at --log-rate owes. */
static void generate_logs(const kaa__sim_config *cfg, kaa__sim_device *d)
{
	d->budget += cfg->rate * 0.1;
	while (d->budget >= 1 && (cfg->total == 0 || d->generated < cfg->total)) {
		char *rec = render(cfg->tpl, d, d->seq);
		int r = rec ? kaa_client_log_add(d->client, rec, strlen(rec)) : KAA_ERR_NOMEM;
		free(rec);
		if (r != KAA_OK) {
			kaa__sim_event_line(d, "event=log_add_failed err=%s", kaa_strerror(r));
			d->budget = 0;
			break;
		}
		d->seq++;
		d->generated++;
		d->budget -= 1;
	}
	save_seq(d);
}

/* --until-acked: d generated everything and the server acknowledged all
 * of it (with --event-count: every event sent and answered). */
static bool device_done(const kaa__sim_config *cfg, kaa__sim_device *d)
{
	kaa_client_stats st;

	kaa_client_get_stats(d->client, &st);
	if (d->generated < cfg->total || st.queued_records > 0)
		return false;
	return !(cfg->ev_fqn && cfg->ev_count &&
		 (d->events_n < cfg->ev_count || st.events_outbox > 0));
}

/* Every device gave up for good (credentials revoked). */
static bool all_stopped(const fleet *f)
{
	bool stopped = true;

	for (uint64_t i = 0; i < f->cfg->count && stopped; i++)
		stopped = atomic_load(&f->devs[i].stopped);
	return stopped;
}

/* SIGHUP: reads --profile-file again and sends it from every device. */
static void reload_profile(fleet *f)
{
	char *np = kaa__sim_read_profile(f->cfg->profile_file);

	for (uint64_t i = 0; np && i < f->cfg->count; i++) {
		int r = kaa_client_set_profile(f->devs[i].client, np);
		if (r != KAA_OK)
			kaa__sim_event_line(&f->devs[i], "event=profile_refused err=%s",
					    kaa_strerror(r));
	}
	if (!np)
		fprintf(stderr, "kaa-device: cannot read %s\n", f->cfg->profile_file);
	free(np);
}

/* Creates and starts device i. Returns the exit code: 0, or 1 (printed). */
static int start_device(fleet *f, uint64_t i)
{
	const kaa__sim_config *cfg = f->cfg;
	kaa__sim_device *d = &f->devs[i];
	kaa_client_options o = {
		.application_token = cfg->token,
		.bootstrap_servers = (const char *const *)cfg->boot,
		.bootstrap_count = cfg->nboot,
		.state_dir = d->dir,
		.client_profile_json = cfg->profile,
		.ca_file = cfg->ca,
		.client_cert_file = cfg->client_cert,
		.callbacks = &kaa__sim_callbacks,
		.user = d,
		.log_no_fsync = !cfg->fsync_each,
		.state_no_fsync = !cfg->fsync_each,
		.log_batch_records = (uint32_t)cfg->batch,
		.keepalive_ms = cfg->keepalive,
		.liveness_timeout_ms = cfg->liveness,
		.connect_timeout_ms = (uint32_t)cfg->connect_to,
	};
	int rc;

	d->index = (int)i;
	d->cfg = cfg;
	if (cfg->token_prefix) {
		snprintf(d->token, sizeof(d->token), "%s-%" PRIu64, cfg->token_prefix, i);
		o.endpoint_access_token = d->token;
	}
	snprintf(d->dir, sizeof(d->dir), "%s/dev-%" PRIu64, cfg->state_dir, i);
	rc = kaa_client_new(f->rt, &o, &d->client);
	if (rc != KAA_OK) {
		fprintf(stderr, "kaa-device: device %" PRIu64 " (%s): %s\n", i, d->dir,
			kaa_strerror(rc));
		return 1;
	}
	d->seq = load_seq(d);
	if (cfg->sub)
		kaa_client_subscribe(d->client, cfg->sub);
	kaa_client_start(d->client);
	return 0;
}

/* One turn of the run: waits for a signal or the tick, then lets every
 * device do what is due. Returns false when the run is over. */
static bool tick(fleet *f)
{
	const kaa__sim_config *cfg = f->cfg;
	/* events may be due more often than the 100 ms tick */
	uint64_t tick_ms = cfg->ev_fqn && cfg->ev_interval < 100 ? cfg->ev_interval : 100;
	struct timespec wait = {0, (long)tick_ms * 1000 * 1000}, now;
	int sig = sigtimedwait(&f->sigs, NULL, &wait);

	if (sig == SIGTERM || sig == SIGINT)
		return false;
	if (sig == SIGHUP && cfg->profile_file)
		reload_profile(f);
	clock_gettime(CLOCK_MONOTONIC, &now);
	double elapsed =
		(double)(now.tv_sec - f->t0.tv_sec) + (double)(now.tv_nsec - f->t0.tv_nsec) / 1e9;
	if (cfg->duration && elapsed >= (double)cfg->duration)
		return false;
	bool all_done = cfg->until_acked;
	int64_t now_ms = kaa__sim_mono_ms();
	for (uint64_t i = 0; i < cfg->count; i++) {
		kaa__sim_device *d = &f->devs[i];
		if (cfg->ev_fqn)
			send_events(cfg, d, now_ms);
		if (cfg->rate > 0 && (cfg->total == 0 || d->generated < cfg->total))
			generate_logs(cfg, d);
		if (all_done && !device_done(cfg, d))
			all_done = false;
	}
	return !all_done && !all_stopped(f);
}

int kaa__sim_fleet_run(const kaa__sim_config *cfg)
{
	fleet f = {.cfg = cfg};
	int rc;

	/* signals are taken by sigtimedwait in this thread only */
	sigemptyset(&f.sigs);
	sigaddset(&f.sigs, SIGTERM);
	sigaddset(&f.sigs, SIGINT);
	sigaddset(&f.sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &f.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	rc = kaa_runtime_new(&f.rt);
	if (rc != KAA_OK) {
		fprintf(stderr, "kaa-device: cannot start the runtime: %s\n", kaa_strerror(rc));
		return 1;
	}
	f.devs = calloc(cfg->count, sizeof(*f.devs));
	if (!f.devs) {
		fprintf(stderr, "kaa-device: out of memory\n");
		kaa_runtime_free(f.rt);
		return 1;
	}
	rc = 0;
	for (uint64_t i = 0; i < cfg->count && rc == 0; i++)
		rc = start_device(&f, i);
	if (rc == 0) {
		clock_gettime(CLOCK_MONOTONIC, &f.t0);
		while (tick(&f))
			;
	}
	/* stop the network first so the summary is stable */
	kaa_runtime_free(f.rt);
	if (cfg->json)
		kaa__sim_print_summary(cfg, f.devs);
	for (uint64_t i = 0; i < cfg->count; i++)
		kaa_client_free(f.devs[i].client);
	free(f.devs);
	return rc;
}
