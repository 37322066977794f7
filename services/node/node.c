/*
 * node.c - wiring of one kaa-node: coordination backend (etcd or local),
 * node registry, control leader election, and an HTTP server per enabled
 * service port answering /healthz, /readyz and /metrics.
 *
 * Readiness: a port is ready once this node's record is registered under a
 * live lease (and, with etcd, the registry view is synced).
 *
 * The operations port is served by the operations service (its WebSocket
 * transport answers /healthz, /readyz and /metrics too). The node publishes
 * its sessions, load (1-minute load average / online CPUs) and draining
 * flag in its registry record; the registry writes at most once a second.
 * kaa__node_stop drains the operations service first (SIGTERM): devices are
 * redirected to the other operations nodes until none is left or
 * --drain-timeout passed.
 */
#include "base/alloc.h"
#include "appender/log_appender.h"
#include "node/node.h"

#include "control/api.h"
#include "control/console_files.h"
#include "bootstrap/bootstrap.h"
#include "coord/coord.h"
#include "coord/keys.h"
#include "coord/election.h"
#include "base/error.h"
#include "http/http_server.h"
#include "base/log.h"
#include "base/metrics.h"
#include "operations/operations.h"
#include "coord/registry.h"
#include "proto/device_url.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SVC_CONTROL, SVC_BOOTSTRAP, SVC_OPERATIONS, SVC_COUNT };
static const char *svc_names[SVC_COUNT] = {"control", "bootstrap", "operations"};

typedef struct svc_port {
	struct kaa__node *node;
	int svc;
	kaa__http_server *http;
	kaa__counter *requests;
} svc_port;

struct kaa__node {
	const kaa_node_config *cfg;
	kaa__coord *coord;
	kaa__registry *registry;
	kaa__election *election;
	kaa__control *control;
	char console_dir[4096];
	kaa__operations *ops;
	kaa__metrics *metrics;
	svc_port ports[SVC_COUNT];
	kaa__node_record self;
	double last_load;
	bool started;
	atomic_uint_fast64_t leader_changes;
};

/* The 1-minute load average per online CPU: 1.0 means every core busy. */
static double read_load(void)
{
	double l = 0;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	FILE *f = fopen("/proc/loadavg", "r");
	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = 0;
		fclose(f);
	}
	return cpus > 0 ? l / (double)cpus : l;
}

static bool node_ready(kaa__node *n)
{
	if (!kaa__registry_registered(n->registry))
		return false;
	return kaa__registry_view_synced(n->registry);
}

static void set_body(kaa__http_response *resp, int status, const char *type, const char *text)
{
	resp->status = status;
	resp->content_type = type;
	resp->body = strdup(text);
	if (!resp->body)
		kaa__oom();
	resp->body_len = strlen(text);
}

static void handle(const kaa__http_request *req, kaa__http_response *resp, void *ud)
{
	svc_port *p = ud;
	kaa__node *n = p->node;

	kaa__counter_add(p->requests, 1);
	if (p->svc == SVC_CONTROL && n->control && strncmp(req->path, "/api/", 5) == 0) {
		kaa__control_handle(n->control, req, resp);
		return;
	}
	if (p->svc == SVC_CONTROL && n->control && kaa__console_path(req->path)) {
		kaa__console_serve(n->console_dir, req, resp);
		return;
	}
	if (p->svc == SVC_BOOTSTRAP && strcmp(req->path, "/v1/operations") == 0 &&
	    (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
		kaa__node_record *recs = NULL;
		size_t nrec = 0;
		char *body = NULL;
		size_t len = 0;
		if (kaa__registry_nodes(n->registry, &recs, &nrec) != KAA_OK ||
		    kaa__bootstrap_render(recs, nrec, &body, &len) != KAA_OK) {
			kaa__node_records_free(recs, nrec);
			kaa__http_respond_json_error(resp, 500, "internal", "registry unavailable");
			return;
		}
		kaa__node_records_free(recs, nrec);
		resp->status = 200;
		resp->content_type = "application/json";
		resp->body = body;
		resp->body_len = len;
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		kaa__http_respond_json_error(resp, 405, "method_not_allowed",
					     "only GET and HEAD are served here");
		return;
	}
	if (strcmp(req->path, "/healthz") == 0) {
		set_body(resp, 200, "application/json", "{\"status\":\"ok\"}\n");
	} else if (strcmp(req->path, "/readyz") == 0) {
		if (node_ready(n))
			set_body(resp, 200, "application/json", "{\"status\":\"ready\"}\n");
		else
			set_body(
				resp, 503, "application/json",
				kaa__registry_registered(n->registry)
					? "{\"status\":\"not ready\",\"reason\":\"registry view not synced\"}\n"
					: "{\"status\":\"not ready\",\"reason\":\"not registered\"}\n");
	} else if (strcmp(req->path, "/metrics") == 0) {
		char *text = NULL;
		size_t len = 0;
		if (kaa__metrics_render(n->metrics, &text, &len) != KAA_OK) {
			kaa__http_respond_json_error(resp, 500, "internal", "metrics unavailable");
			return;
		}
		resp->status = 200;
		resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
		resp->body = text;
		resp->body_len = len;
	} else {
		kaa__http_respond_json_error(resp, 404, "not_found", "no such path");
	}
}

/* ---- metrics callbacks ----------------------------------------------------- */

static double m_registered(void *ud)
{
	return kaa__registry_registered(((kaa__node *)ud)->registry) ? 1 : 0;
}

static double m_nodes(void *ud)
{
	return (double)kaa__registry_count(((kaa__node *)ud)->registry);
}

static double m_leader(void *ud)
{
	kaa__node *n = ud;
	return n->election && kaa__election_is_leader(n->election) ? 1 : 0;
}

static double m_leader_changes(void *ud)
{
	return (double)atomic_load(&((kaa__node *)ud)->leader_changes);
}

#define COORD_STAT(field)                                            \
	static double m_##field(void *ud)                            \
	{                                                            \
		kaa__coord_stats st;                                 \
		kaa__coord_get_stats(((kaa__node *)ud)->coord, &st); \
		return (double)st.field;                             \
	}
COORD_STAT(calls)
COORD_STAT(call_errors)
COORD_STAT(watch_reconnects)
COORD_STAT(watch_resets)

static void on_elected(void *ud)
{
	kaa__node *n = ud;
	atomic_fetch_add(&n->leader_changes, 1);
	KAA_INFO("node", "control_leader node=%s", n->cfg->node_id);
}

static void on_deposed(void *ud)
{
	kaa__node *n = ud;
	atomic_fetch_add(&n->leader_changes, 1);
	KAA_INFO("node", "control_follower node=%s", n->cfg->node_id);
}

/* The operations listener's TLS and the URLs devices are given: --advertise
 * (checked by the config parser), else ws[s]://host:operations-port/. */
static int advertise_self(const kaa_node_config *cfg, kaa__node_record *r)
{
	char url[KAA_NODE_ADVERTISE_MAX_BYTES + 1];
	const char *list = cfg->advertise;
	r->tls = cfg->tls_cert != NULL;
	if (!list) {
		kaa__device_url u = {.tls = r->tls, .port = (uint16_t)cfg->operations_port};
		if (strlen(cfg->host) >= sizeof(u.host))
			return KAA_ERR_INVAL;
		strcpy(u.host, cfg->host);
		strcpy(u.path, "/");
		if (kaa__device_url_format(&u, url, sizeof(url)) != KAA_OK)
			return KAA_ERR_INVAL;
		r->advertise[r->n_advertise++] = kaa__xstrdup(url);
		return KAA_OK;
	}
	while (r->n_advertise < KAA_NODE_MAX_ADVERTISE &&
	       kaa__node_advertise_next(&list, url, sizeof(url)) > 0)
		r->advertise[r->n_advertise++] = kaa__xstrdup(url);
	return KAA_OK;
}

static int build_self(kaa__node *n)
{
	const kaa_node_config *cfg = n->cfg;
	kaa__node_record *r = &n->self;
	const struct {
		bool on;
		const char *name;
		int port;
	} s[] = {
		{cfg->control, "control", cfg->control_port},
		{cfg->operations, "operations", cfg->operations_port},
		{cfg->bootstrap, "bootstrap", cfg->bootstrap_port},
		{n->ops && kaa__operations_internode_port(n->ops) > 0, "internode",
		 n->ops ? kaa__operations_internode_port(n->ops) : 0},
	};
	r->id = kaa__xstrdup(cfg->node_id);
	r->host = kaa__xstrdup(cfg->host);
	r->version = kaa__xstrdup(KAA_NODE_VERSION);
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		if (!s[i].on)
			continue;
		if (i < 3)
			r->services[r->n_services++] = kaa__xstrdup(s[i].name);
		r->ports[r->n_ports].name = kaa__xstrdup(s[i].name);
		r->ports[r->n_ports++].port = s[i].port;
	}
	r->load = n->last_load = read_load();
	if (cfg->operations)
		return advertise_self(cfg, r);
	return KAA_OK;
}

static void register_metrics(kaa__node *n)
{
	char labels[256];
	kaa__metrics *m = n->metrics;
	snprintf(labels, sizeof(labels), "node=\"%s\",cluster=\"%s\",version=\"%s\",coord=\"%s\"",
		 n->cfg->node_id, n->cfg->cluster, KAA_NODE_VERSION, kaa__coord_kind(n->coord));
	kaa__gauge_set(
		kaa__metrics_gauge(m, "kaa_node_info", "Static facts about this node.", labels), 1);
	kaa__metrics_gauge_fn(m, "kaa_node_registered",
			      "1 while this node's record is written under a live lease.", NULL,
			      m_registered, n);
	kaa__metrics_gauge_fn(m, "kaa_registry_nodes", "Nodes in this node's registry view.", NULL,
			      m_nodes, n);
	kaa__metrics_gauge_fn(m, "kaa_control_leader", "1 while this node is the control leader.",
			      NULL, m_leader, n);
	kaa__metrics_gauge_fn(m, "kaa_control_leader_changes_total",
			      "Times this node became or stopped being the control leader.", NULL,
			      m_leader_changes, n);
	kaa__metrics_gauge_fn(m, "kaa_coord_calls_total", "Unary coordination-store calls.", NULL,
			      m_calls, n);
	kaa__metrics_gauge_fn(m, "kaa_coord_call_errors_total",
			      "Coordination-store calls that failed.", NULL, m_call_errors, n);
	kaa__metrics_gauge_fn(m, "kaa_coord_watch_reconnects_total",
			      "Watch streams re-established after a failure.", NULL,
			      m_watch_reconnects, n);
	kaa__metrics_gauge_fn(m, "kaa_coord_watch_resets_total",
			      "Watches re-listed because their revision was compacted.", NULL,
			      m_watch_resets, n);
}

/* --demo: how to reach the REST API and connect a simulated device, on
 * stdout (for people; the logs stay structured on stderr). */
static void print_demo(const kaa_node_config *cfg, const char *token)
{
	char exe[4096], dev[4200] = "kaa-device";
	ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (k > 0) {
		exe[k] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(dev, sizeof(dev), "%s/kaa-device", exe);
		}
	}
	printf("kaa demo: REST API http://%s:%d/api/v1 (tenant \"demo\", application "
	       "\"demo-app\")\n"
	       "kaa demo: application token %s\n"
	       "kaa demo: connect a simulated device (it logs the configuration it receives):\n"
	       "    %s --bootstrap %s:%d --app-token %s --verbose\n",
	       cfg->host, cfg->control_port, token, dev, cfg->host, cfg->bootstrap_port, token);
	fflush(stdout);
}

int kaa__node_start(const kaa_node_config *cfg, kaa__node **out)
{
	kaa__node *n = kaa__xcalloc(1, sizeof(*n));
	char demo_token[128] = "";
	int rc;

	*out = NULL;
	n->cfg = cfg;
	n->metrics = kaa__metrics_new();
	if (!n->metrics) {
		rc = KAA_ERR_NOMEM;
		goto fail;
	}
	if (cfg->etcd) {
		rc = kaa__coord_new_etcd(cfg->etcd, NULL, &n->coord);
		if (rc != KAA_OK) {
			KAA_ERROR("node", "bad_etcd_endpoints etcd=%s err=%s", cfg->etcd,
				  kaa_strerror(rc));
			goto fail;
		}
	} else {
		rc = kaa__coord_new_local(&n->coord);
		if (rc != KAA_OK)
			goto fail;
	}
	register_metrics(n);

	/* Bind every port first: a busy port fails start-up before we register. */
	const bool on[SVC_COUNT] = {cfg->control, cfg->bootstrap, cfg->operations};
	const int port[SVC_COUNT] = {cfg->control_port, cfg->bootstrap_port, cfg->operations_port};
	for (int i = 0; i < SVC_COUNT; i++) {
		char labels[64];
		if (!on[i] || i == SVC_OPERATIONS)
			continue;
		n->ports[i].node = n;
		n->ports[i].svc = i;
		snprintf(labels, sizeof(labels), "service=\"%s\"", svc_names[i]);
		n->ports[i].requests = kaa__metrics_counter(n->metrics, "kaa_http_requests_total",
							    "HTTP requests served.", labels);
		rc = kaa__http_server_new(cfg->bind, port[i], NULL, handle, &n->ports[i],
					  &n->ports[i].http);
		if (rc != KAA_OK) {
			KAA_ERROR("node", "listen_failed service=%s bind=%s port=%d err=%s",
				  svc_names[i], cfg->bind, port[i], kaa_strerror(rc));
			goto fail;
		}
		if ((i == SVC_CONTROL ? cfg->https_control : cfg->https_bootstrap) &&
		    (rc = kaa__http_server_set_tls(n->ports[i].http, cfg->tls_cert,
						   cfg->tls_key)) != KAA_OK)
			goto fail;
	}

	if (cfg->operations) {
		kaa__log_inflight_set_max((size_t)cfg->log_inflight_mb * 1024 * 1024);
		kaa__operations_opts oo = {
			.node_id = cfg->node_id,
			.cluster = cfg->cluster,
			.sql_url = cfg->sql,
			.nosql_url = cfg->nosql,
			.coord = n->coord,
			.metrics = n->metrics,
			.clustered = cfg->etcd != NULL,
			.bind_host = cfg->bind,
			.port = cfg->operations_port,
			.tls_cert = cfg->tls_cert,
			.tls_key = cfg->tls_key,
			.client_ca = cfg->client_ca,
			.appender_dir = cfg->appender_dir,
			.drain_timeout_ms = cfg->drain_timeout * 1000,
			.proof_always = cfg->proof_always,
			.idle_timeout_ms = cfg->idle_timeout * 1000,
			/* standalone: every owner's home is this node */
			.internode_port = cfg->etcd ? cfg->internode_port : -1,
		};
		rc = kaa__operations_new(&oo, &n->ops);
		if (rc != KAA_OK) {
			KAA_ERROR("node", "listen_failed service=operations bind=%s port=%d err=%s",
				  cfg->bind, cfg->operations_port, kaa_strerror(rc));
			goto fail;
		}
	}
	if (cfg->control) {
		rc = kaa__control_new(cfg->sql, cfg->nosql, n->coord, cfg->cluster, &n->control);
		if (rc != KAA_OK)
			goto fail;
		kaa__control_set_metrics(n->control, n->metrics);
		if (cfg->console_dir)
			snprintf(n->console_dir, sizeof(n->console_dir), "%s", cfg->console_dir);
		else if (!kaa__console_default_dir(n->console_dir, sizeof(n->console_dir)))
			KAA_INFO("node", "console_not_found dir=%s hint=make_console",
				 n->console_dir);
		kaa__control_set_rebalance(
			n->control, cfg->rebalance_threshold, cfg->rebalance_min_sessions,
			cfg->rebalance_interval * 1000, cfg->rebalance_cooldown * 1000);
		if (cfg->demo) {
			rc = kaa__control_seed_demo(n->control, demo_token, sizeof(demo_token));
			if (rc != KAA_OK) {
				KAA_ERROR("node", "demo_seed_failed err=%s", kaa_strerror(rc));
				goto fail;
			}
		}
	}
	rc = build_self(n);
	if (rc != KAA_OK)
		goto fail;
	rc = kaa__registry_new(n->coord, cfg->cluster, &n->self, cfg->lease_ttl, &n->registry);
	if (rc != KAA_OK)
		goto fail;
	if (n->ops)
		kaa__operations_set_registry(n->ops, n->registry);
	if (cfg->control) {
		char key[256];
		kaa__election_cb cb = {.elected = on_elected, .deposed = on_deposed, .ud = n};
		kaa__key_leader(key, sizeof(key), cfg->cluster);
		rc = kaa__election_new(n->coord, key, cfg->node_id, cfg->lease_ttl, &cb,
				       &n->election);
		if (rc != KAA_OK)
			goto fail;
	}
	for (int i = 0; i < SVC_COUNT; i++) {
		if (!n->ports[i].http)
			continue;
		rc = kaa__http_server_start(n->ports[i].http);
		if (rc != KAA_OK)
			goto fail;
	}
	KAA_INFO("node", "started node=%s cluster=%s services=%s coord=%s%s%s", cfg->node_id,
		 cfg->cluster, cfg->services, kaa__coord_kind(n->coord), cfg->etcd ? " etcd=" : "",
		 cfg->etcd ? cfg->etcd : "");
	n->started = true;
	if (demo_token[0])
		print_demo(cfg, demo_token);
	*out = n;
	return KAA_OK;
fail:
	kaa__node_stop(n);
	return rc;
}

void kaa__node_tick(kaa__node *n)
{
	if (n->control && n->election && kaa__election_is_leader(n->election))
		kaa__control_leader_tick(n->control);
	double load = read_load();
	int64_t sessions = n->ops ? (int64_t)kaa__operations_sessions(n->ops) : 0;
	bool draining = n->ops && kaa__operations_draining(n->ops);
	/* Rewrite the record only for a meaningful change: etcd traffic stays
	 * O(nodes) and the registry coalesces to at most one write a second. */
	if (load - n->last_load > 0.05 || n->last_load - load > 0.05 ||
	    sessions != n->self.sessions || draining != n->self.draining) {
		n->last_load = load;
		n->self.load = load;
		n->self.sessions = sessions;
		n->self.draining = draining;
		kaa__registry_update(n->registry, &n->self);
	}
}

void kaa__node_stop(kaa__node *n)
{
	if (!n)
		return;
	if (n->ops && n->started) {
		/* tell bootstrap first (draining in the record), then move the
		 * devices away; the record keeps being refreshed meanwhile */
		n->self.draining = true;
		kaa__registry_update(n->registry, &n->self);
		size_t left = kaa__operations_drain(n->ops, 0);
		if (left)
			KAA_WARN("node", "drain_deadline_passed sessions_left=%zu", left);
	}
	/* Stop answering ready first, then give up leadership so a standby can
	 * take over at once, then deregister. */
	kaa__election_free(n->election);
	if (n->ops)
		kaa__operations_set_registry(n->ops, NULL);
	kaa__registry_free(n->registry, true);
	kaa__operations_free(n->ops);
	for (int i = 0; i < SVC_COUNT; i++)
		kaa__http_server_free(n->ports[i].http);
	kaa__control_free(n->control);
	kaa__coord_free(n->coord);
	kaa__metrics_free(n->metrics);
	kaa__node_record_clear(&n->self);
	free(n);
}
