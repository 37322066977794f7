/*
 * operations.c - the top of the operations service: life cycle, the etcd
 * watches (application changes, drain, rebalancing plans), what the
 * background jobs do (re-evaluation after a metadata change, catch-up) and
 * the router's ring. Frame dispatch is in dispatch.c; the feature handlers
 * (registration.h, delivery.h, owners.h, events.h, log_ingest.h,
 * redirect.h) and the service's lower layer (ops_state.h, ops_send.h,
 * ops_sessions.h, ops_app_cache.h, ops_jobs.h, ops_io.h) below it. May
 * include every header of services/operations.
 */
#include "operations/operations.h"

#include "operations/delivery.h"
#include "operations/events.h"
#include "operations/log_ingest.h"
#include "operations/ops_app_cache.h"
#include "operations/ops_jobs.h"
#include "operations/ops_send.h"
#include "operations/ops_sessions.h"
#include "operations/owners.h"
#include "operations/redirect.h"
#include "operations/registration.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"
#include "coord/keys.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "operations"

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		kaa__oom();
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		kaa__oom();
	return p;
}

/* ---- re-evaluation after a metadata change --------------------------------------------------- */

int kaa__operations_refresh_app(kaa__operations *ops, int64_t app_id)
{
	kaa__meta_obj app = {0};
	ops_app *a = NULL;
	size_t n = 0;
	ops_session **v;
	int rc = kaa__meta_get(ops->meta, KAA_META_APPLICATION, app_id, &app);

	if (rc == KAA_ERR_NOTFOUND) {
		/* deleted: its devices are no longer welcome */
		kaa__opl_cache_remove(ops, app_id);
		v = kaa__opl_sessions_snapshot(ops, app_id, &n);
		for (size_t i = 0; i < n; i++)
			kaa__opl_error(ops, v[i]->sid, 0,
				       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNAUTHENTICATED,
				       true, NULL, NULL, "the application was deleted");
		kaa__opl_snapshot_free(v, n);
		return KAA_OK;
	}
	if (rc != KAA_OK)
		goto out;
	rc = kaa__opl_app_load(ops, &app, &a);
	if (rc != KAA_OK)
		goto out;
	atomic_fetch_add(&a->refs, 1);
	kaa__opl_cache_install(ops, a);
	v = kaa__opl_sessions_snapshot(ops, app_id, &n);
	for (size_t i = 0; i < n; i++) {
		ops_session *s = v[i];
		pthread_mutex_lock(&s->mu);
		if (!s->closed && s->established && atomic_load(&s->in_key_table)) {
			atomic_fetch_add(&a->refs, 1);
			kaa__opl_app_put(s->app);
			s->app = a;
			if (kaa__opl_compute_groups(s))
				kaa__opl_save(ops, s);
			kaa__opl_topics_send(ops, s, false);
			kaa__opl_config_push(ops, s, false);
			if (!s->catchup_pending)
				kaa__opl_notify(ops, s);
		}
		pthread_mutex_unlock(&s->mu);
	}
	kaa__opl_snapshot_free(v, n);
	KAA_DEBUG(MOD, "app_refreshed app=%" PRId64 " rev=%" PRId64 " sessions=%zu", app_id, a->rev,
		  n);
out:
	kaa__opl_app_put(a);
	kaa__meta_obj_clear(&app);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "app_refresh_failed app=%" PRId64 " err=%s", app_id,
			 kaa_strerror(rc));
	return rc;
}

/* ---- background jobs (queued by ops_jobs.c) ------------------------------------------------ */

static void run_job(kaa__operations *ops, const ops_job *j)
{
	switch (j->kind) {
	case OPS_JOB_REFRESH: {
		bool cached;
		pthread_mutex_lock(&ops->mu);
		cached = kaa__opl_cache_find(ops, j->id, NULL) != NULL;
		pthread_mutex_unlock(&ops->mu);
		/* an application nobody here uses is loaded at its first Hello */
		if (cached)
			kaa__operations_refresh_app(ops, j->id);
		break;
	}
	case OPS_JOB_RESET: {
		pthread_mutex_lock(&ops->mu);
		size_t n = ops->n_apps;
		int64_t *ids = xcalloc(n, sizeof(*ids));
		for (size_t i = 0; i < n; i++)
			ids[i] = ops->apps[i]->id;
		pthread_mutex_unlock(&ops->mu);
		for (size_t i = 0; i < n; i++)
			kaa__operations_refresh_app(ops, ids[i]);
		free(ids);
		break;
	}
	case OPS_JOB_CATCHUP: kaa__operations_catch_up(ops, (kaa__session_id)j->id); break;
	default: break;
	}
}

/* ---- watches ---------------------------------------------------------------------------------- */

/* A live session whose credential was revoked, or deleted in a
 * provisioned application, gets the fatal error its next Hello would get
 * and is closed: true. A store failure keeps the session (logged): the
 * next Hello checks again. Called with s->mu held. */
static bool credential_ended(kaa__operations *ops, ops_session *s)
{
	kaa__meta_obj cred = {0};
	int rc = kaa__meta_find_credential(ops->meta, s->ep.app_id, s->ep.key_hash, &cred);
	bool revoked = rc == KAA_OK && cred.status && strcmp(cred.status, "revoked") == 0;
	bool gone = rc == KAA_ERR_NOTFOUND && s->app && s->app->provisioned;
	kaa__meta_obj_clear(&cred);
	if (rc != KAA_OK && rc != KAA_ERR_NOTFOUND)
		KAA_WARN(MOD, "credential_check_failed sid=%" PRIu64 " err=%s", s->sid,
			 kaa_strerror(rc));
	if (!revoked && !gone)
		return false;
	KAA_INFO(MOD, "session_ended_by_credential sid=%" PRIu64 " endpoint=%s reason=%s", s->sid,
		 s->ep.key_hash, revoked ? "revoked" : "deleted");
	kaa__counter_inc(revoked ? ops->reg_revoked : ops->reg_forbidden);
	if (revoked)
		kaa__opl_error(ops, s->sid, 0, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_REVOKED,
			       true, NULL, NULL, "the endpoint's credentials were revoked");
	else
		kaa__opl_error(ops, s->sid, 0, KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_FORBIDDEN,
			       true, NULL, NULL,
			       "the endpoint's credential was deleted; the application accepts "
			       "provisioned credentials only");
	return true;
}

static void apps_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	kaa__operations *ops = ud;
	char prefix[128];
	size_t plen = (size_t)kaa__key_apps(prefix, sizeof(prefix), ops->cluster);
	for (size_t i = 0; i < n; i++) {
		const char *k = ev[i].kv.key;
		if (!k || strncmp(k, prefix, plen) != 0)
			continue;
		char *end;
		long long id = strtoll(k + plen, &end, 10);
		if (id < 1 || *end != '/')
			continue;
		if (strncmp(end, "/endpoints/", 11) != 0) {
			kaa__opl_schedule(ops, OPS_JOB_REFRESH, id, 0);
			continue;
		}
		/* apps/<id>/endpoints/<key> (keys.h): control changed this
		 * endpoint's server profile or credential. Only the node
		 * holding its session acts (an in-memory lookup elsewhere):
		 * end it when its credential no longer admits it, else re-read
		 * the profile, re-evaluate the groups, push what changed.
		 * Control deletes the key right after the put: deletes carry
		 * nothing. */
		ops_session *s = ev[i].type == KAA_WATCH_PUT
					 ? kaa__opl_session_by_key(ops, id, end + 11)
					 : NULL;
		if (!s)
			continue;
		kaa__endpoint fresh = {0};
		pthread_mutex_lock(&s->mu);
		if (!s->closed && s->established && credential_ended(ops, s)) {
			/* closed by the fatal error: nothing to push */
		} else if (!s->closed && s->established && atomic_load(&s->in_key_table) &&
			   kaa__ep_get(ops->eps, id, s->ep.key_hash, &fresh) == KAA_OK) {
			free(s->ep.server_profile);
			s->ep.server_profile = fresh.server_profile;
			fresh.server_profile = NULL;
			if (kaa__opl_compute_groups(s))
				kaa__opl_save(ops, s);
			kaa__opl_topics_send(ops, s, false);
			kaa__opl_config_push(ops, s, false);
			if (!s->catchup_pending)
				kaa__opl_notify(ops, s);
		}
		pthread_mutex_unlock(&s->mu);
		kaa__endpoint_clear(&fresh);
		kaa__opl_session_put(s);
	}
}

static void apps_reset(void *ud, const kaa__kv_list *snap)
{
	(void)snap;
	kaa__opl_schedule(ud, OPS_JOB_RESET, 0, 0);
}

static void *drain_main(void *arg)
{
	kaa__operations *ops = arg;
	kaa__operations_drain(ops, atomic_load(&ops->drain_deadline));
	atomic_store(&ops->drain_running, false);
	return NULL;
}

static void drain_request(kaa__operations *ops, const char *json, size_t len)
{
	yajl_val v = NULL;
	int64_t deadline = 0;
	if (kaa__json_parse(json, len, 4096, 8, &v, NULL, 0) == KAA_OK) {
		const char *path[] = {"deadline_ms", NULL};
		yajl_val d = yajl_tree_get(v, path, yajl_t_number);
		if (d)
			kaa__json_int64(d, &deadline);
		yajl_tree_free(v);
	}
	if (deadline <= 0)
		deadline = kaa__wall_ms() + ops->drain_timeout_ms;
	atomic_store(&ops->drain_deadline, deadline);
	KAA_INFO(MOD, "drain_requested node=%s deadline_ms=%" PRId64, ops->node_id, deadline);
	/* only the drain watch thread starts drain threads: no lock needed
	 * for drain_thread itself */
	if (atomic_load(&ops->drain_running))
		return; /* the running drain reads the new deadline */
	if (ops->drain_thread_started) {
		pthread_join(ops->drain_thread, NULL);
		ops->drain_thread_started = false;
	}
	atomic_store(&ops->drain_running, true);
	if (pthread_create(&ops->drain_thread, NULL, drain_main, ops) != 0) {
		KAA_ERROR(MOD, "drain_thread_failed");
		atomic_store(&ops->drain_running, false);
		return;
	}
	ops->drain_thread_started = true;
}

static void drain_cancel(kaa__operations *ops)
{
	if (!atomic_load(&ops->draining))
		return;
	KAA_INFO(MOD, "drain_cancelled node=%s", ops->node_id);
	if (atomic_load(&ops->drain_running)) {
		atomic_store(&ops->drain_cancel, true); /* the drain loop re-admits */
		return;
	}
	atomic_store(&ops->draining, false);
	ops->io.set_accepting(ops->io.ud, true);
}

static void drain_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == KAA_WATCH_PUT)
			drain_request(ud, ev[i].kv.value, ev[i].kv.value_len);
		else
			drain_cancel(ud);
	}
}

static void drain_reset(void *ud, const kaa__kv_list *snap)
{
	if (snap->n)
		drain_request(ud, snap->items[0].value, snap->items[0].value_len);
	else
		drain_cancel(ud);
}

/* ---- drain (the redirecting is redirect.c's) ------------------------------------------------ */

size_t kaa__operations_drain(kaa__operations *ops, int64_t deadline_ms)
{
	return kaa__opl_drain(ops, deadline_ms);
}

/* ---- rebalancing (plans applied by redirect.c) ------------------------------------------------ */

static void rebalance_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ev[i].type == KAA_WATCH_PUT)
			kaa__opl_rebalance_plan(ud, ev[i].kv.value, ev[i].kv.value_len, true);
}

static void rebalance_reset(void *ud, const kaa__kv_list *snap)
{
	if (snap->n == 1)
		kaa__opl_rebalance_plan(ud, snap->items[0].value, snap->items[0].value_len, false);
}

/* ---- life cycle ----------------------------------------------------------------------------------- */

static bool ready_cb(void *ud)
{
	return kaa__operations_ready(ud);
}

static void register_metrics(kaa__operations *ops, kaa__metrics *m)
{
	const char *h = "Device registrations (Hello) by result.";
	ops->reg_registered =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"registered\"");
	ops->reg_existing =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"existing\"");
	ops->reg_unauth = kaa__metrics_counter(m, "kaa_ops_registrations_total", h,
					       "result=\"unauthenticated\"");
	ops->reg_forbidden =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"forbidden\"");
	ops->reg_revoked =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"revoked\"");
	ops->reg_error =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"error\"");
	ops->reg_bad_proof = kaa__metrics_counter(m, "kaa_ops_registrations_total", h,
						  "result=\"invalid_proof\"");
	ops->reg_proven =
		kaa__metrics_counter(m, "kaa_ops_hello_proofs_total",
				     "Hellos whose proof of possession verified (kaa.v2).", NULL);
	ops->log_records =
		kaa__metrics_counter(m, "kaa_ops_log_records_total",
				     "Log records durably stored (first delivery).", NULL);
	ops->log_batches_dup = kaa__metrics_counter(
		m, "kaa_ops_log_batches_duplicate_total",
		"Log batches re-sent after a lost status and acknowledged without storing.", NULL);
	ops->notifs_sent = kaa__metrics_counter(m, "kaa_ops_notifications_sent_total",
						"Notifications sent to devices.", NULL);
	ops->configs_sent =
		kaa__metrics_counter(m, "kaa_ops_configurations_sent_total",
				     "Configuration pushes and sync answers sent.", NULL);
	ops->app_refreshes =
		kaa__metrics_counter(m, "kaa_ops_app_loads_total",
				     "Application metadata (re)loads into the cache.", NULL);
	ops->rebalance_redirects = kaa__metrics_counter(
		m, "kaa_ops_rebalance_redirects_total",
		"Devices redirected to another node by rebalancing plans.", NULL);
	ops->events_in = kaa__metrics_counter(m, "kaa_ops_events_received_total",
					      "Events accepted from devices for routing.", NULL);
	ops->events_out = kaa__metrics_counter(m, "kaa_ops_events_delivered_total",
					       "Events sent to devices (re-sends included).", NULL);
	h = "Owner attach requests by result.";
	ops->owner_attach_ok =
		kaa__metrics_counter(m, "kaa_ops_owner_attach_total", h, "result=\"attached\"");
	ops->owner_attach_fail =
		kaa__metrics_counter(m, "kaa_ops_owner_attach_total", h, "result=\"refused\"");
}

/* Feeds the router the live operations nodes of the registry view (the
 * owners' ring) twice a second; the router ignores an unchanged list. */
static void *ring_main(void *arg)
{
	kaa__operations *ops = arg;
	pthread_mutex_lock(&ops->mu);
	while (!ops->stopping) {
		pthread_mutex_unlock(&ops->mu);
		kaa__registry *reg = atomic_load(&ops->registry);
		kaa__node_record *recs = NULL;
		size_t n = 0;
		if (reg && kaa__registry_view_synced(reg) &&
		    kaa__registry_nodes(reg, &recs, &n) == KAA_OK) {
			kaa__router_node *nodes = kaa__xcalloc(n ? n : 1, sizeof(*nodes));
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				int port = kaa__node_record_port(&recs[i], "internode");
				/* draining nodes stay: they still hold sessions
				 * (and stay homes) until they exit */
				if (!kaa__node_record_has_service(&recs[i], "operations") ||
				    port <= 0 || !recs[i].host)
					continue;
				nodes[k++] = (kaa__router_node){
					.id = recs[i].id, .host = recs[i].host, .port = port};
			}
			kaa__router_set_nodes(ops->router, nodes, k);
			free(nodes);
			kaa__node_records_free(recs, n);
		}
		pthread_mutex_lock(&ops->mu);
		int64_t next = kaa__wall_ms() + 500;
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
		if (!ops->stopping)
			pthread_cond_timedwait(&ops->cv, &ops->mu, &ts);
	}
	pthread_mutex_unlock(&ops->mu);
	return NULL;
}

int kaa__operations_new(const kaa__operations_opts *o, kaa__operations **out)
{
	kaa__operations *ops;
	int rc;

	*out = NULL;
	if (!o || !o->node_id || !o->cluster || !o->sql_url || !o->nosql_url)
		return KAA_ERR_INVAL;
	ops = xcalloc(1, sizeof(*ops));
	ops->node_id = xstrdup(o->node_id);
	ops->cluster = xstrdup(o->cluster);
	ops->clustered = o->clustered;
	ops->coord = o->coord;
	ops->drain_timeout_ms = o->drain_timeout_ms > 0 ? o->drain_timeout_ms : 30000;
	ops->proof_always = o->proof_always;
	ops->idle_timeout_ms =
		o->idle_timeout_ms > 0 ? o->idle_timeout_ms : OPS_IDLE_TIMEOUT_MS_DEFAULT;
	ops->tls = o->tls_cert && o->tls_key;
	ops->appender_dir = xstrdup(o->appender_dir ? o->appender_dir : "./data/logs");
	pthread_mutex_init(&ops->mu, NULL);
	pthread_mutex_init(&ops->pend_mu, NULL);
	pthread_cond_init(&ops->cv, NULL); /* CLOCK_REALTIME, as kaa__wall_ms */
	kaa__metrics *m = o->metrics;
	if (!m)
		m = ops->own_metrics = kaa__metrics_new();
	ops->metrics = m;
	register_metrics(ops, m);

	rc = kaa__meta_store_new(o->sql_url, NULL, &ops->meta);
	if (rc != KAA_OK) {
		KAA_ERROR(MOD, "meta_store_open_failed err=%s", kaa_strerror(rc));
		goto fail;
	}
	rc = kaa__ep_store_new(o->nosql_url, &ops->eps);
	if (rc != KAA_OK) {
		KAA_ERROR(MOD, "endpoint_store_open_failed err=%s", kaa_strerror(rc));
		goto fail;
	}
	ops->run_job = run_job;
	if (pthread_create(&ops->thread, NULL, kaa__opl_jobs_main, ops) != 0) {
		rc = KAA_ERR_IO;
		goto fail;
	}
	ops->thread_started = true;
	if (!o->io || o->router) {
		kaa__router_opts ro = {
			.node_id = ops->node_id,
			.cluster = ops->cluster,
			.bind_host = o->internode_bind ? o->internode_bind : o->bind_host,
			.port = o->internode_port,
			.metrics = m,
			.cbs = {.ud = ops,
				.deliver = kaa__opl_event_deliver,
				.routed = kaa__opl_event_routed,
				.listeners = kaa__opl_listeners_answer,
				.notice = kaa__opl_owner_notice,
				.each_location = kaa__opl_owner_report_all},
		};
		rc = kaa__router_new(&ro, &ops->router);
		if (rc != KAA_OK) {
			KAA_ERROR(MOD, "internode_listen_failed port=%d err=%s", o->internode_port,
				  kaa_strerror(rc));
			goto fail;
		}
		if (pthread_create(&ops->ring_thread, NULL, ring_main, ops) != 0) {
			rc = KAA_ERR_IO;
			goto fail;
		}
		ops->ring_thread_started = true;
	}
	if (o->io) {
		ops->io = *o->io;
	} else {
		kaa__ops_server_opts so = {
			.bind_host = o->bind_host,
			.port = o->port,
			.tls_cert = o->tls_cert,
			.tls_key = o->tls_key,
			.client_ca = o->client_ca,
			.workers = o->workers,
			.max_sessions = o->max_sessions,
			.idle_timeout_ms = ops->idle_timeout_ms,
			.ready = ready_cb,
			.ready_ud = ops,
			.metrics = m,
		};
		kaa__ops_handlers h = {
			.ud = ops,
			.on_frame = kaa__operations_on_frame,
			.on_close = kaa__operations_on_close,
		};
		rc = kaa__ops_server_new(&so, &h, &ops->server);
		if (rc != KAA_OK)
			goto fail;
		ops->io = kaa__opl_io_server(ops->server);
	}
	if (ops->coord) {
		char key[256];
		kaa__watch_cb acb = {.events = apps_events, .reset = apps_reset, .ud = ops};
		kaa__key_apps(key, sizeof(key), ops->cluster);
		rc = kaa__coord_watch(ops->coord, key, KAA_WATCH_PREFIX, 0, &acb, &ops->apps_watch);
		if (rc != KAA_OK)
			goto fail;
		kaa__watch_cb dcb = {.events = drain_events, .reset = drain_reset, .ud = ops};
		kaa__key_drain(key, sizeof(key), ops->cluster, ops->node_id);
		rc = kaa__coord_watch(ops->coord, key, KAA_WATCH_SNAPSHOT, 0, &dcb,
				      &ops->drain_watch);
		if (rc != KAA_OK)
			goto fail;
		kaa__watch_cb rcb = {
			.events = rebalance_events, .reset = rebalance_reset, .ud = ops};
		kaa__key_rebalance(key, sizeof(key), ops->cluster);
		rc = kaa__coord_watch(ops->coord, key, KAA_WATCH_SNAPSHOT, 0, &rcb,
				      &ops->rebalance_watch);
		if (rc != KAA_OK)
			goto fail;
	}
	KAA_INFO(MOD, "started node=%s port=%d tls=%s meta=%s endpoints=%s", ops->node_id,
		 kaa__operations_port(ops), ops->tls ? "yes" : "no",
		 kaa__meta_store_backend(ops->meta), kaa__ep_store_backend(ops->eps));
	*out = ops;
	return KAA_OK;
fail:
	kaa__operations_free(ops);
	return rc;
}

void kaa__operations_set_registry(kaa__operations *ops, kaa__registry *reg)
{
	atomic_store(&ops->registry, reg);
}

int kaa__operations_internode_port(const kaa__operations *ops)
{
	return ops->router ? kaa__router_port(ops->router) : 0;
}

int kaa__operations_port(const kaa__operations *ops)
{
	return ops->server ? kaa__ops_server_port(ops->server) : 0;
}

size_t kaa__operations_sessions(const kaa__operations *ops)
{
	return ops->io.sessions(ops->io.ud);
}

bool kaa__operations_ready(const kaa__operations *ops)
{
	if (atomic_load(&ops->draining))
		return false;
	kaa__registry *reg = atomic_load(&((kaa__operations *)ops)->registry);
	if (!ops->clustered)
		return true;
	return reg && kaa__registry_registered(reg);
}

bool kaa__operations_draining(const kaa__operations *ops)
{
	return atomic_load(&ops->draining);
}

void kaa__operations_free(kaa__operations *ops)
{
	if (!ops)
		return;
	/* watches first: no new jobs or drains */
	kaa__coord_watch_free(ops->apps_watch);
	kaa__coord_watch_free(ops->drain_watch);
	kaa__coord_watch_free(ops->rebalance_watch);
	pthread_mutex_lock(&ops->mu);
	ops->stopping = true;
	pthread_mutex_unlock(&ops->mu);
	pthread_cond_broadcast(&ops->cv);
	atomic_store(&ops->drain_cancel, true);
	if (ops->drain_thread_started)
		pthread_join(ops->drain_thread, NULL);
	if (ops->thread_started)
		pthread_join(ops->thread, NULL);
	if (ops->ring_thread_started)
		pthread_join(ops->ring_thread, NULL);
	/* appender callbacks send through the server */
	kaa__opl_log_drain(ops);
	/* closes every session: on_close runs for each */
	kaa__ops_server_free(ops->server);
	/* sessions a test io left open */
	size_t n = 0;
	ops_session **v = kaa__opl_sessions_snapshot(ops, 0, &n);
	for (size_t i = 0; i < n; i++)
		kaa__operations_on_close(ops, v[i]->sid);
	kaa__opl_snapshot_free(v, n);
	/* after the sessions: their closes still report locations */
	kaa__router_free(ops->router);
	kaa__opl_pending_clear(ops);
	kaa__opl_jobs_clear(ops);
	for (size_t i = 0; i < ops->n_apps; i++)
		kaa__opl_app_put(ops->apps[i]);
	free(ops->apps);
	kaa__ep_store_free(ops->eps);
	kaa__meta_store_free(ops->meta);
	kaa__metrics_free(ops->own_metrics);
	pthread_cond_destroy(&ops->cv);
	pthread_mutex_destroy(&ops->mu);
	pthread_mutex_destroy(&ops->pend_mu);
	free(ops->node_id);
	free(ops->cluster);
	free(ops->appender_dir);
	free(ops);
}
