/*
 * endpoint_api.c - the fleet routes (endpoint_api.h).
 */
#include "control/endpoint_api.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "control/config_resolve.h"
#include "control/ep_query.h"
#include "control/rest_body.h"
#include "control/rest_reply.h"
#include "control/validate.h"
#include "coord/keys.h"
#include "coord/node_record.h"
#include "json/json_merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define SCAN_PAGE 200
/* A list with a sparse filter stops after this many records and answers
 * a cursor, so one request never walks a whole fleet. */
#define SCAN_MAX 10000
#define STATS_WINDOW_MS 60000

/* ---- live nodes --------------------------------------------------------------------- */

typedef struct live_nodes {
	char **ids;
	size_t n;
} live_nodes;

static void live_free(live_nodes *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->ids[i]);
	free(l->ids);
	l->ids = NULL;
	l->n = 0;
}

/* The ids of the operations nodes whose registry records are alive. */
static int live_load(const kaa__ep_api *a, live_nodes *out)
{
	char prefix[KAA__KEY_MAX];
	kaa__kv_list l = {0};
	memset(out, 0, sizeof(*out));
	kaa__key_nodes(prefix, sizeof(prefix), a->cluster);
	int rc = kaa__coord_range(a->coord, prefix, true, &l);
	if (rc != KAA_OK)
		return rc;
	out->ids = kaa__xcalloc(l.n + 1, sizeof(*out->ids));
	for (size_t i = 0; i < l.n; i++) {
		kaa__node_record r = {0};
		if (kaa__node_record_decode(l.items[i].value, l.items[i].value_len, &r) == KAA_OK &&
		    kaa__node_record_has_service(&r, "operations"))
			out->ids[out->n++] = kaa__xstrdup(r.id);
		kaa__node_record_clear(&r);
	}
	kaa__kv_list_clear(&l);
	return KAA_OK;
}

static bool live_has(const live_nodes *l, const char *id)
{
	for (size_t i = 0; id && i < l->n; i++)
		if (strcmp(l->ids[i], id) == 0)
			return true;
	return false;
}

/* ---- answers ------------------------------------------------------------------------- */

static void reply_unavailable(kaa__http_response *resp, const char *what)
{
	kaa__http_response_add_header(resp, "Retry-After", "1");
	kaa__reply_error(resp, 503, "unavailable", what, NULL);
}

static void reply_ep_error(kaa__http_response *resp, int rc)
{
	if (rc == KAA_ERR_NOTFOUND)
		kaa__reply_error(resp, 404, "not_found", "no such endpoint", NULL);
	else
		kaa__reply_store_error(resp, rc);
}

static void gen_ep(yajl_gen g, const kaa__endpoint *ep, bool online)
{
	yajl_gen_map_open(g);
	kaa__gen_str(g, "keyHash", ep->key_hash);
	kaa__gen_key(g, "applicationId");
	yajl_gen_integer(g, ep->app_id);
	kaa__gen_key(g, "registeredAt");
	yajl_gen_integer(g, ep->created_ms);
	kaa__gen_key(g, "lastSeen");
	yajl_gen_integer(g, ep->last_seen_ms);
	kaa__gen_key(g, "updatedAt");
	yajl_gen_integer(g, ep->updated_ms);
	kaa__gen_key(g, "online");
	yajl_gen_bool(g, online);
	kaa__gen_str(g, "nodeId", online ? ep->node_id : NULL);
	kaa__gen_key(g, "groupIds");
	if (ep->groups)
		kaa__gen_json(g, ep->groups, false);
	else {
		yajl_gen_array_open(g);
		yajl_gen_array_close(g);
	}
	kaa__gen_str(g, "ownerId", ep->owner_id);
	kaa__gen_key(g, "clientProfile");
	kaa__gen_json(g, ep->client_profile, false);
	kaa__gen_key(g, "clientProfileVersion");
	yajl_gen_integer(g, ep->client_profile_version);
	kaa__gen_key(g, "serverProfile");
	kaa__gen_json(g, ep->server_profile, false);
	kaa__gen_key(g, "serverProfileVersion");
	yajl_gen_integer(g, ep->server_profile_version);
	kaa__gen_str(g, "configurationHash", ep->config_hash);
	yajl_gen_map_close(g);
}

static yajl_val parse_opt(const char *json)
{
	yajl_val v = NULL;
	if (json)
		kaa__json_parse(json, strlen(json), KAA_EP_JSON_MAX, KAA_JSON_MAX_DEPTH, &v, NULL,
				0);
	return v;
}

/* ---- list ------------------------------------------------------------------------------ */

typedef struct list_walk {
	const kaa__epq_list *q;
	const live_nodes *live;
	yajl_gen g;
	int emitted;
	char last_emitted[KAA_EP_KEY_HASH_MAX + 1];
} list_walk;

static bool in_group(const char *groups, int64_t gid)
{
	yajl_val v = parse_opt(groups);
	bool found = false;
	if (YAJL_IS_ARRAY(v))
		for (size_t i = 0; i < v->u.array.len && !found; i++) {
			int64_t x;
			found = kaa__json_int64(v->u.array.values[i], &x) && x == gid;
		}
	yajl_tree_free(v);
	return found;
}

static int list_cb(void *ud, const kaa__endpoint *ep)
{
	list_walk *w = ud;
	const kaa__epq_list *q = w->q;
	bool online = ep->node_id && live_has(w->live, ep->node_id);
	if (q->online >= 0 && online != (q->online == 1))
		return 0;
	if (q->owner[0] && (!ep->owner_id || strcmp(ep->owner_id, q->owner) != 0))
		return 0;
	if (q->group_id && !in_group(ep->groups, q->group_id))
		return 0;
	if (q->filter) {
		yajl_val cp = parse_opt(ep->client_profile), sp = parse_opt(ep->server_profile);
		kaa__filter_ctx ctx = {.cp = cp, .sp = sp, .ekh = ep->key_hash};
		bool match = kaa__filter_eval(q->filter, &ctx);
		yajl_tree_free(cp);
		yajl_tree_free(sp);
		if (!match)
			return 0;
	}
	gen_ep(w->g, ep, online);
	snprintf(w->last_emitted, sizeof(w->last_emitted), "%s", ep->key_hash);
	return ++w->emitted == q->limit ? 1 : 0;
}

void kaa__ep_api_list(const kaa__ep_api *a, int64_t app_id, const kaa__http_request *req,
		      kaa__http_response *resp)
{
	kaa__epq_list q;
	kaa__epq_error e;
	live_nodes live = {0};
	char next[KAA_EP_KEY_HASH_MAX + 1] = "";
	if (kaa__epq_list_parse(req->query, &q, &e) != 0) {
		kaa__reply_error(resp, 400, "invalid", e.message, e.param);
		return;
	}
	if (live_load(a, &live) != KAA_OK) {
		reply_unavailable(resp, "the coordination store is unreachable");
		goto out;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_key(g, "items");
	yajl_gen_array_open(g);
	list_walk w = {.q = &q, .live = &live, .g = g};
	char *after = q.after[0] ? kaa__xstrdup(q.after) : NULL;
	int scanned = 0, rc = KAA_OK;
	for (;;) {
		char *last = NULL;
		rc = kaa__ep_list(a->eps, app_id, after, SCAN_PAGE, list_cb, &w, &last);
		if (rc == 1) { /* the page is full */
			snprintf(next, sizeof(next), "%s", w.last_emitted);
			free(last);
			rc = KAA_OK;
			break;
		}
		if (rc != KAA_OK) {
			free(last);
			break;
		}
		if (!last) /* nothing more */
			break;
		free(after);
		after = last;
		/* how many records the page held is not returned: count a full
		 * page; a short one ends the walk at the next call */
		scanned += SCAN_PAGE;
		if (scanned >= SCAN_MAX) {
			snprintf(next, sizeof(next), "%s", after);
			break;
		}
	}
	free(after);
	if (rc != KAA_OK) {
		yajl_gen_free(g);
		kaa__reply_store_error(resp, rc);
		goto out;
	}
	yajl_gen_array_close(g);
	kaa__gen_str(g, "nextCursor", next[0] ? next : NULL);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	live_free(&live);
	kaa__epq_list_free(&q);
}

/* ---- one endpoint ---------------------------------------------------------------------- */

/* Reads the endpoint of the path; answers and returns -1 when absent. */
static int load_ep(const kaa__ep_api *a, int64_t app_id, const char *key, kaa__endpoint *ep,
		   kaa__http_response *resp)
{
	int rc = kaa__epq_key_valid(key) ? kaa__ep_get(a->eps, app_id, key, ep) : KAA_ERR_NOTFOUND;
	if (rc == KAA_OK)
		return 0;
	reply_ep_error(resp, rc);
	return -1;
}

void kaa__ep_api_get(const kaa__ep_api *a, int64_t app_id, const char *key,
		     kaa__http_response *resp)
{
	kaa__endpoint ep = {0};
	live_nodes live = {0};
	if (load_ep(a, app_id, key, &ep, resp) != 0)
		return;
	if (live_load(a, &live) != KAA_OK) {
		reply_unavailable(resp, "the coordination store is unreachable");
		goto out;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	gen_ep(g, &ep, ep.node_id && live_has(&live, ep.node_id));
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	live_free(&live);
	kaa__endpoint_clear(&ep);
}

/* ---- server profile ---------------------------------------------------------------------- */

static void reply_profile(kaa__http_response *resp, const kaa__endpoint *ep, int64_t version,
			  const char *json)
{
	char etag[32];
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_str(g, "keyHash", ep->key_hash);
	kaa__gen_key(g, "serverProfile");
	kaa__gen_json(g, json, false);
	kaa__gen_key(g, "version");
	yajl_gen_integer(g, version);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
	/* ETags of this API are >= 1: version 0 (never set) is "1" */
	snprintf(etag, sizeof(etag), "\"%" PRId64 "\"", version + 1);
	kaa__http_response_add_header(resp, "ETag", etag);
}

void kaa__ep_api_profile_get(const kaa__ep_api *a, int64_t app_id, const char *key,
			     kaa__http_response *resp)
{
	kaa__endpoint ep = {0};
	if (load_ep(a, app_id, key, &ep, resp) != 0)
		return;
	reply_profile(resp, &ep, ep.server_profile_version, ep.server_profile);
	kaa__endpoint_clear(&ep);
}

/* If-Match "N" (or N) -> N, else answers 428/400 and returns -1. */
static int if_match(const kaa__http_request *req, int64_t *want, kaa__http_response *resp)
{
	const char *h = kaa__http_header(req, "if-match");
	if (!h) {
		kaa__reply_error(
			resp, 428, "precondition_required",
			"send If-Match with the ETag you read, so concurrent edits are not lost",
			NULL);
		return -1;
	}
	bool quoted = h[0] == '"';
	char *end;
	long long v = strtoll(h + quoted, &end, 10);
	if (end == h + quoted || v < 1 || (quoted && *end++ != '"') || *end != '\0') {
		kaa__reply_error(resp, 400, "invalid", "If-Match must be an ETag from this API",
				 NULL);
		return -1;
	}
	*want = v;
	return 0;
}

/* Tells the operations node holding the session: put, then delete (the
 * watchers saw the put; nothing stays in etcd per endpoint). A failure is
 * logged: the profile is stored and the session reads it at its next
 * Hello. */
static void announce(const kaa__ep_api *a, int64_t app_id, const char *key, int64_t version)
{
	char k[KAA__KEY_MAX], v[64];
	if (kaa__key_app_endpoint(k, sizeof(k), a->cluster, app_id, key) < 0)
		return;
	snprintf(v, sizeof(v), "{\"serverProfileVersion\":%" PRId64 "}", version);
	int rc = kaa__coord_put(a->coord, k, v, strlen(v), 0, NULL);
	if (rc == KAA_OK)
		rc = kaa__coord_delete(a->coord, k, false, NULL);
	if (rc != KAA_OK)
		KAA_WARN("control", "announce_failed key=%s err=%s", k, kaa_strerror(rc));
}

void kaa__ep_api_profile_put(const kaa__ep_api *a, int64_t app_id, const char *key,
			     const kaa__http_request *req, kaa__http_response *resp)
{
	static const kaa__rest_field fields[] = {
		{"serverProfile", KAA_RF_JSON, offsetof(kaa__meta_obj, body),
		 KAA_RF_UPDATE | KAA_RF_REQUIRED},
		{NULL, 0, 0, 0},
	};
	kaa__endpoint ep = {0};
	kaa__meta_obj in = {0};
	kaa__rest_body body = {0};
	kaa__rest_error e;
	int64_t want, version = 0;
	if (load_ep(a, app_id, key, &ep, resp) != 0)
		return;
	if (if_match(req, &want, resp) != 0)
		goto out;
	const char *ct = kaa__http_header(req, "content-type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		kaa__reply_error(resp, 415, "unsupported_media_type",
				 "send Content-Type: application/json", NULL);
		goto out;
	}
	if (req->body_len > KAA_EP_JSON_MAX + 64) {
		kaa__reply_error(resp, 413, "too_big", "the server profile is over 256 KiB", NULL);
		goto out;
	}
	if (kaa__rest_parse_body(req->body, req->body_len, fields, KAA_RF_UPDATE, &in, &body, &e) !=
	    0) {
		kaa__reply_error(resp, e.status, e.code, e.message, e.path[0] ? e.path : NULL);
		goto out;
	}
	if (!in.body) {
		kaa__reply_error(resp, 400, "missing_field", "serverProfile is required",
				 "$.serverProfile");
		goto out;
	}
	if (strlen(in.body) > KAA_EP_JSON_MAX) {
		kaa__reply_error(resp, 413, "too_big", "the server profile is over 256 KiB",
				 "$.serverProfile");
		goto out;
	}
	if (kaa__validate_server_profile(a->meta, app_id, in.body, resp) != 0)
		goto out;
	int rc = kaa__ep_set_server_profile(a->eps, app_id, ep.key_hash, in.body, want - 1,
					    &version);
	if (rc == KAA_ERR_CONFLICT) {
		kaa__reply_error(resp, 412, "precondition_failed",
				 "the server profile changed since you read it", NULL);
		goto out;
	}
	if (rc != KAA_OK) {
		reply_ep_error(resp, rc);
		goto out;
	}
	announce(a, app_id, ep.key_hash, version);
	KAA_INFO("control", "server_profile_set app=%" PRId64 " key=%s version=%" PRId64, app_id,
		 ep.key_hash, version);
	reply_profile(resp, &ep, version, in.body);
out:
	kaa__rest_body_free(&body);
	kaa__endpoint_clear(&ep);
}

/* ---- effective configuration ---------------------------------------------------------- */

void kaa__ep_api_configuration(const kaa__ep_api *a, int64_t app_id, const char *key,
			       kaa__http_response *resp)
{
	kaa__endpoint ep = {0};
	kaa__config_result res = {0};
	if (load_ep(a, app_id, key, &ep, resp) != 0)
		return;
	yajl_val cp = parse_opt(ep.client_profile), sp = parse_opt(ep.server_profile);
	int rc = kaa__config_compute(a->meta, app_id, cp, sp, ep.key_hash, 0, &res);
	yajl_tree_free(cp);
	yajl_tree_free(sp);
	if (rc == KAA_ERR_INTERNAL) {
		kaa__reply_error(resp, 500, "internal", "the configurations do not merge", NULL);
		goto out;
	}
	if (rc != KAA_OK) {
		kaa__reply_store_error(resp, rc);
		goto out;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_str(g, "keyHash", ep.key_hash);
	kaa__config_result_gen(g, &res);
	kaa__gen_str(g, "deliveredHash", ep.config_hash);
	kaa__gen_key(g, "delivered");
	yajl_gen_bool(g, ep.config_hash && strcmp(ep.config_hash, res.hash) == 0);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	kaa__config_result_clear(&res);
	kaa__endpoint_clear(&ep);
}

/* ---- log records ------------------------------------------------------------------------ */

typedef struct logs_walk {
	yajl_gen g;
	int n;
	char cursor[KAA_EPQ_CURSOR_MAX];
} logs_walk;

static int logs_cb(void *ud, const kaa__ep_log_rec *r)
{
	logs_walk *w = ud;
	yajl_gen g = w->g;
	yajl_gen_map_open(g);
	kaa__gen_str(g, "endpointKeyHash", r->pos.key_hash);
	kaa__gen_str(g, "batchId", r->pos.batch_id);
	kaa__gen_key(g, "index");
	yajl_gen_integer(g, r->pos.index);
	kaa__gen_key(g, "receivedAt");
	yajl_gen_integer(g, r->pos.received_ms);
	kaa__gen_key(g, "schemaVersion");
	yajl_gen_integer(g, r->schema_version);
	kaa__gen_key(g, "record");
	kaa__gen_json(g, r->record, false);
	yajl_gen_map_close(g);
	w->n++;
	if (kaa__epq_log_cursor(&r->pos, w->cursor, sizeof(w->cursor)) != 0)
		w->cursor[0] = '\0';
	return 0;
}

void kaa__ep_api_logs(const kaa__ep_api *a, int64_t app_id, const char *key,
		      const kaa__http_request *req, kaa__http_response *resp)
{
	kaa__epq_logs q;
	kaa__epq_error e;
	kaa__endpoint ep = {0};
	if (kaa__epq_logs_parse(req->query, &q, &e) != 0) {
		kaa__reply_error(resp, 400, "invalid", e.message, e.param);
		return;
	}
	if (key) {
		if (load_ep(a, app_id, key, &ep, resp) != 0)
			return;
		snprintf(q.endpoint, sizeof(q.endpoint), "%s", ep.key_hash);
		kaa__endpoint_clear(&ep);
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	logs_walk w = {.g = g};
	yajl_gen_map_open(g);
	kaa__gen_key(g, "items");
	yajl_gen_array_open(g);
	int rc = kaa__ep_logs_query(a->eps, app_id, q.endpoint[0] ? q.endpoint : NULL, q.from_ms,
				    q.to_ms, q.has_after ? &q.after : NULL, q.limit, logs_cb, &w);
	if (rc != KAA_OK) {
		yajl_gen_free(g);
		kaa__reply_store_error(resp, rc);
		return;
	}
	yajl_gen_array_close(g);
	kaa__gen_str(g, "nextCursor", w.n == q.limit && w.cursor[0] ? w.cursor : NULL);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
}

/* ---- live counts ---------------------------------------------------------------------------- */

void kaa__ep_api_stats(const kaa__ep_api *a, int64_t app_id, kaa__http_response *resp)
{
	kaa__ep_stats st = {0};
	live_nodes live = {0};
	int64_t now = kaa__wall_ms();
	if (live_load(a, &live) != KAA_OK) {
		reply_unavailable(resp, "the coordination store is unreachable");
		return;
	}
	int rc = kaa__ep_stats_get(a->eps, app_id, now - STATS_WINDOW_MS, &st);
	if (rc != KAA_OK) {
		kaa__reply_store_error(resp, rc);
		goto out;
	}
	int64_t online = 0;
	for (size_t i = 0; i < st.n_nodes; i++)
		if (live_has(&live, st.nodes[i].node_id))
			online += st.nodes[i].endpoints;
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_key(g, "applicationId");
	yajl_gen_integer(g, app_id);
	kaa__gen_key(g, "at");
	yajl_gen_integer(g, now);
	kaa__gen_key(g, "windowSeconds");
	yajl_gen_integer(g, STATS_WINDOW_MS / 1000);
	kaa__gen_key(g, "sessionsOnline");
	yajl_gen_integer(g, online);
	kaa__gen_key(g, "endpoints");
	yajl_gen_integer(g, st.endpoints);
	kaa__gen_key(g, "registrationsInWindow");
	yajl_gen_integer(g, st.registered_since);
	kaa__gen_key(g, "recordsInWindow");
	yajl_gen_integer(g, st.records_since);
	kaa__gen_key(g, "recordsPerSecond");
	yajl_gen_double(g, (double)st.records_since / (STATS_WINDOW_MS / 1000.0));
	kaa__gen_key(g, "nodes");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < st.n_nodes; i++) {
		if (!live_has(&live, st.nodes[i].node_id))
			continue;
		yajl_gen_map_open(g);
		kaa__gen_str(g, "id", st.nodes[i].node_id);
		kaa__gen_key(g, "sessions");
		yajl_gen_integer(g, st.nodes[i].endpoints);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	kaa__ep_stats_clear(&st);
	live_free(&live);
}
