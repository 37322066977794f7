/*
 * node_admin.c - the platform admin's view of the cluster's nodes and the
 * drain requests (node_admin.h), over the coordination store.
 */
#include "control/node_admin.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "control/rest_reply.h"
#include "coord/keys.h"
#include "coord/node_record.h"
#include "json/json_merge.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define DRAIN_TIMEOUT_DEFAULT_S 30
#define DRAIN_TIMEOUT_MAX_S 86400

void kaa__node_admin_list(kaa__coord *coord, const char *cluster, kaa__http_response *resp)
{
	char prefix[256], dprefix[256];
	kaa__kv_list l = {0}, d = {0};
	kaa__key_nodes(prefix, sizeof(prefix), cluster);
	kaa__key_drains(dprefix, sizeof(dprefix), cluster);
	if (kaa__coord_range(coord, prefix, true, &l) != KAA_OK ||
	    kaa__coord_range(coord, dprefix, true, &d) != KAA_OK) {
		kaa__reply_error(resp, 503, "unavailable", "the coordination store is unreachable",
				 NULL);
		goto out;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_key(g, "items");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < l.n; i++) {
		kaa__node_record r = {0};
		if (kaa__node_record_decode(l.items[i].value, l.items[i].value_len, &r) != KAA_OK)
			continue;
		bool drain_key = false;
		for (size_t k = 0; k < d.n && !drain_key; k++)
			drain_key = strcmp(d.items[k].key + strlen(dprefix), r.id) == 0;
		yajl_gen_map_open(g);
		kaa__gen_str(g, "id", r.id);
		kaa__gen_str(g, "host", r.host);
		kaa__gen_key(g, "advertise");
		yajl_gen_array_open(g);
		for (size_t k = 0; k < r.n_advertise; k++)
			kaa__gen_key(g, r.advertise[k]);
		yajl_gen_array_close(g);
		kaa__gen_key(g, "services");
		yajl_gen_array_open(g);
		for (size_t k = 0; k < r.n_services; k++)
			kaa__gen_key(g, r.services[k]);
		yajl_gen_array_close(g);
		kaa__gen_key(g, "ports");
		yajl_gen_map_open(g);
		for (size_t k = 0; k < r.n_ports; k++) {
			kaa__gen_key(g, r.ports[k].name);
			yajl_gen_integer(g, r.ports[k].port);
		}
		yajl_gen_map_close(g);
		kaa__gen_key(g, "sessions");
		yajl_gen_integer(g, r.sessions);
		kaa__gen_key(g, "load");
		yajl_gen_double(g, r.load);
		kaa__gen_key(g, "draining");
		yajl_gen_bool(g, r.draining);
		kaa__gen_key(g, "drainRequested");
		yajl_gen_bool(g, drain_key);
		kaa__gen_str(g, "version", r.version);
		yajl_gen_map_close(g);
		kaa__node_record_clear(&r);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	kaa__kv_list_clear(&l);
	kaa__kv_list_clear(&d);
}

void kaa__node_admin_undrain(kaa__coord *coord, const char *cluster, const char *node,
			     kaa__http_response *resp)
{
	char key[512];
	int64_t deleted = 0;
	kaa__key_drain(key, sizeof(key), cluster, node);
	if (kaa__coord_delete(coord, key, false, &deleted) != KAA_OK) {
		kaa__reply_error(resp, 503, "unavailable", "the coordination store is unreachable",
				 NULL);
		return;
	}
	if (!deleted)
		kaa__reply_error(resp, 404, "not_found", "no drain requested for this node", NULL);
	else
		kaa__http_respond(resp, 204, NULL, NULL, 0);
}

void kaa__node_admin_drain(kaa__coord *coord, const char *cluster, const char *node,
			   const kaa__http_request *req, kaa__http_response *resp)
{
	char key[512], nkey[512], val[64], err[KAA_JSON_ERR_SIZE];
	yajl_val v = NULL;
	kaa__kv_list l = {0};
	int64_t timeout_s = DRAIN_TIMEOUT_DEFAULT_S;
	kaa__key_drain(key, sizeof(key), cluster, node);
	kaa__key_node(nkey, sizeof(nkey), cluster, node);
	if (req->body_len) {
		const char *ct = kaa__http_header(req, "content-type");
		if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
			kaa__reply_error(resp, 415, "unsupported_media_type",
					 "send Content-Type: application/json", NULL);
			return;
		}
		if (kaa__json_parse(req->body, req->body_len, 4096, 4, &v, err, sizeof(err)) !=
			    KAA_OK ||
		    !YAJL_IS_OBJECT(v)) {
			kaa__reply_error(resp, 400, "invalid", "the body must be a JSON object",
					 NULL);
			goto out;
		}
		for (size_t i = 0; i < v->u.object.len; i++) {
			yajl_val t = v->u.object.values[i];
			if (strcmp(v->u.object.keys[i], "timeoutSeconds") != 0) {
				kaa__reply_error(resp, 400, "unknown_field", "unknown field", NULL);
				goto out;
			}
			if (!YAJL_IS_INTEGER(t) || YAJL_GET_INTEGER(t) < 1 ||
			    YAJL_GET_INTEGER(t) > DRAIN_TIMEOUT_MAX_S) {
				kaa__reply_error(resp, 400, "invalid",
						 "timeoutSeconds must be an integer 1..86400",
						 "$.timeoutSeconds");
				goto out;
			}
			timeout_s = YAJL_GET_INTEGER(t);
		}
	}
	if (kaa__coord_range(coord, nkey, false, &l) != KAA_OK) {
		kaa__reply_error(resp, 503, "unavailable", "the coordination store is unreachable",
				 NULL);
		goto out;
	}
	if (l.n == 0) {
		kaa__reply_error(resp, 404, "not_found", "no such node in the registry", NULL);
		goto out;
	}
	int64_t deadline = kaa__wall_ms() + timeout_s * 1000;
	int n = snprintf(val, sizeof(val), "{\"deadline_ms\":%" PRId64 "}", deadline);
	if (kaa__coord_put(coord, key, val, (size_t)n, 0, NULL) != KAA_OK) {
		kaa__reply_error(resp, 503, "unavailable", "the coordination store is unreachable",
				 NULL);
		goto out;
	}
	KAA_INFO("control", "drain_requested node=%s deadline_ms=%" PRId64, node, deadline);
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_str(g, "node", node);
	kaa__gen_key(g, "deadlineMs");
	yajl_gen_integer(g, deadline);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 202, g);
	yajl_gen_free(g);
out:
	yajl_tree_free(v);
	kaa__kv_list_clear(&l);
}
