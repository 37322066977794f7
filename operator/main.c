/*
 * kaa-operator - the Kubernetes operator for KaaCluster resources.
 *
 * Wiring only: flags, the Kubernetes client, the controller (controller.h),
 * optional Lease leader election, and the HTTP port with /healthz, /readyz
 * and /metrics. The command line is the contract charts/kaa-operator
 * relies on (see its README and op_flags.c).
 *
 * Threads: the main thread parses flags, starts everything, then waits for
 * SIGTERM/SIGINT (blocked in every other thread) and shuts down. The
 * controller is started and stopped under ctl_mu, from the election
 * thread's callbacks (leadership gained/lost) or, without leader election
 * or after a failed start, from the main thread.
 *
 * Readiness: without leader election, ready when the controller is (started
 * and its informers synced). With leader election, the leader is ready
 * when its controller is; a standby is ready while its Lease requests get
 * answers (kaa__kube_lease_healthy), so that the Deployment's rollouts do
 * not stall on a healthy standby and a standby that cannot reach the API
 * server is taken out of rotation.
 */
#include "controller.h"
#include "kube_client.h"
#include "op_flags.h"

#include "base/clock.h"
#include "base/error.h"
#include "http/http_server.h"
#include "base/log.h"
#include "base/metrics.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef KAA_VERSION
#define KAA_VERSION "0.0.0-dev"
#endif

/* ---- running ---- */

typedef struct app {
	kaa__op_flags f;
	kaa__metrics *metrics;
	kaa__kube *kube;
	kaa__controller *ctl;
	kaa__kube_lease *lease;

	pthread_mutex_t ctl_mu; /* serialises controller start/stop */
	bool running;           /* guarded by ctl_mu */
	atomic_bool leader;     /* leadership as the callbacks last said */
	int64_t next_start_ms;  /* main thread: retry of a failed start */
} app;

static void ctl_start(app *a)
{
	pthread_mutex_lock(&a->ctl_mu);
	if (!a->running) {
		int rc = kaa__controller_start(a->ctl);
		if (rc == KAA_OK) {
			a->running = true;
			KAA_INFO("operator", "controller_started");
		} else {
			KAA_ERROR("operator", "controller_start_failed err=\"%s\"",
				  kaa_strerror(rc));
		}
	}
	pthread_mutex_unlock(&a->ctl_mu);
}

static void ctl_stop(app *a)
{
	pthread_mutex_lock(&a->ctl_mu);
	if (a->running) {
		kaa__controller_stop(a->ctl);
		a->running = false;
		KAA_INFO("operator", "controller_stopped");
	}
	pthread_mutex_unlock(&a->ctl_mu);
}

static bool ctl_running(app *a)
{
	pthread_mutex_lock(&a->ctl_mu);
	bool r = a->running;
	pthread_mutex_unlock(&a->ctl_mu);
	return r;
}

static void on_started(void *ud)
{
	app *a = ud;
	atomic_store(&a->leader, true);
	ctl_start(a);
}

static void on_stopped(void *ud)
{
	app *a = ud;
	atomic_store(&a->leader, false);
	ctl_stop(a);
}

static double leader_gauge(void *ud)
{
	app *a = ud;
	return a->lease ? (kaa__kube_lease_is_leader(a->lease) ? 1 : 0) : 1;
}

static bool ready(app *a)
{
	if (!a->lease)
		return kaa__controller_ready(a->ctl);
	if (kaa__kube_lease_is_leader(a->lease))
		return kaa__controller_ready(a->ctl);
	return kaa__kube_lease_healthy(a->lease);
}

static void handle(const kaa__http_request *req, kaa__http_response *resp, void *ud)
{
	app *a = ud;
	static const char ok[] = "ok\n", not_ready[] = "not ready\n";

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		kaa__http_respond(resp, 405, "text/plain", "method not allowed\n", 19);
		kaa__http_response_add_header(resp, "Allow", "GET, HEAD");
		return;
	}
	if (strcmp(req->path, "/healthz") == 0) {
		kaa__http_respond(resp, 200, "text/plain", ok, sizeof(ok) - 1);
	} else if (strcmp(req->path, "/readyz") == 0) {
		if (ready(a))
			kaa__http_respond(resp, 200, "text/plain", ok, sizeof(ok) - 1);
		else
			kaa__http_respond(resp, 503, "text/plain", not_ready,
					  sizeof(not_ready) - 1);
	} else if (strcmp(req->path, "/metrics") == 0) {
		char *text = NULL;
		size_t len = 0;
		kaa__metrics_render(a->metrics, &text, &len);
		kaa__http_respond(resp, 200, KAA__METRICS_CONTENT_TYPE, text, len);
		free(text);
	} else {
		kaa__http_respond(resp, 404, "text/plain", "not found\n", 10);
	}
}

int main(int argc, char **argv)
{
	app a = {0};
	char err[512] = "";
	kaa__kube_config *cfg = NULL;
	kaa__http_server *http = NULL;
	int status = 1, rc;
	char host[256];

	rc = kaa__op_flags_parse(argc, argv, &a.f, err, sizeof(err));
	if (rc != 0) {
		if (rc == 2) {
			fprintf(stderr, "kaa-operator: %s\n", err);
			kaa__op_usage(stderr);
		}
		kaa__op_flags_clear(&a.f);
		return rc == 1 ? 0 : 2;
	}
	kaa__log_level = kaa__log_level_parse(a.f.log_level);
	pthread_mutex_init(&a.ctl_mu, NULL);
	atomic_init(&a.leader, false);

	/* Signals go to the main thread only: block them before any thread starts. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *identity = getenv("POD_NAME");
	if (!identity || !*identity) {
		if (gethostname(host, sizeof(host)) != 0)
			snprintf(host, sizeof(host), "kaa-operator");
		host[sizeof(host) - 1] = '\0';
		identity = host;
	}
	rc = kaa__kube_config_load(a.f.kubeconfig, &cfg);
	if (rc != KAA_OK) {
		KAA_ERROR("operator", "no_kubernetes_configuration err=\"%s\"", kaa_strerror(rc));
		goto out;
	}
	const char *lease_ns = getenv("POD_NAMESPACE");
	if (!lease_ns || !*lease_ns)
		lease_ns = cfg->namespace ? cfg->namespace : "default";
	a.metrics = kaa__metrics_new();
	rc = kaa__kube_new(cfg, a.metrics, &a.kube);
	if (rc == KAA_OK)
		rc = kaa__kube_set_identity(a.kube, identity);
	if (rc != KAA_OK) {
		KAA_ERROR("operator", "kube_client_failed err=\"%s\"", kaa_strerror(rc));
		goto out;
	}
	kaa__controller_opts co = {
		.namespaces = (const char *const *)a.f.namespaces,
		.workers = a.f.workers,
		.resync_ms = a.f.resync_ms,
		.autoscale_interval_ms = a.f.autoscale_ms,
		.scale_down_window_ms = a.f.scale_down_ms,
		.finalizer_attempts = a.f.finalizer_attempts,
		.etcd_override = a.f.etcd_override,
	};
	rc = kaa__controller_new(a.kube, a.metrics, &co, &a.ctl);
	if (rc != KAA_OK) {
		KAA_ERROR("operator", "controller_new_failed err=\"%s\"", kaa_strerror(rc));
		goto out;
	}
	kaa__metrics_gauge_fn(a.metrics, "kaa_operator_leader",
			      "1 while this replica runs the controller (always 1 without "
			      "leader election)",
			      NULL, leader_gauge, &a);
	/* Bound now so that a busy port fails before anything starts; served
	 * only once a.lease is set (the handler reads it). */
	rc = kaa__http_server_new(NULL, a.f.http_port, NULL, handle, &a, &http);
	if (rc != KAA_OK) {
		KAA_ERROR("operator", "http_listen_failed port=%d err=\"%s\"", a.f.http_port,
			  kaa_strerror(rc));
		goto out;
	}
	KAA_INFO("operator",
		 "started version=%s identity=%s http_port=%d leader_elect=%s lease=%s/%s "
		 "server=%s",
		 KAA_VERSION, identity, kaa__http_server_port(http),
		 a.f.leader_elect ? "true" : "false", lease_ns, a.f.lease_name, cfg->server);
	if (a.f.leader_elect) {
		kaa__kube_lease_opts lo = {
			.duration_ms = a.f.lease_duration_ms,
			.renew_deadline_ms = a.f.renew_deadline_ms,
			.retry_ms = a.f.retry_ms,
			.on_started = on_started,
			.on_stopped = on_stopped,
			.ud = &a,
		};
		rc = kaa__kube_lease_new(a.kube, lease_ns, a.f.lease_name, identity, &lo, &a.lease);
		if (rc != KAA_OK) {
			KAA_ERROR("operator", "leader_election_failed err=\"%s\"",
				  kaa_strerror(rc));
			goto out;
		}
	} else {
		ctl_start(&a);
	}
	rc = kaa__http_server_start(http);
	if (rc != KAA_OK) {
		KAA_ERROR("operator", "http_start_failed err=\"%s\"", kaa_strerror(rc));
		goto out;
	}
	a.next_start_ms = kaa__now_ms() + 5000;
	for (;;) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
		int sig = sigtimedwait(&set, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			KAA_INFO("operator", "shutting_down signal=%s",
				 sig == SIGTERM ? "TERM" : "INT");
			break;
		}
		/* A start that failed is retried every 5 s while we should run. */
		bool should =
			!a.lease || (atomic_load(&a.leader) && kaa__kube_lease_is_leader(a.lease));
		if (should && !ctl_running(&a) && kaa__now_ms() >= a.next_start_ms) {
			a.next_start_ms = kaa__now_ms() + 5000;
			ctl_start(&a);
		}
	}
	status = 0;
out:
	/* The HTTP server first (its handler reads the lease); then the lease:
	 * its on_stopped stops the controller, then it is released so that a
	 * standby takes over at once. */
	kaa__http_server_free(http);
	kaa__kube_lease_free(a.lease);
	if (a.ctl)
		ctl_stop(&a);
	kaa__controller_free(a.ctl);
	kaa__kube_free(a.kube);
	kaa__metrics_free(a.metrics);
	kaa__kube_config_free(cfg);
	kaa__op_flags_clear(&a.f);
	pthread_mutex_destroy(&a.ctl_mu);
	if (status == 0)
		KAA_INFO("operator", "stopped");
	return status;
}
