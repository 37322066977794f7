/*
 * config_resolve.c - POST .../resolve-configuration (config_resolve.h).
 */
#include "control/config_resolve.h"

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"
#include "control/rest_body.h"
#include "control/rest_reply.h"
#include "control/validate.h"
#include "json/filter.h"
#include "json/json_merge.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

void kaa__config_result_clear(kaa__config_result *r)
{
	if (!r)
		return;
	free(r->group_ids);
	free(r->configuration);
	memset(r, 0, sizeof(*r));
}

void kaa__config_result_gen(yajl_gen g, const kaa__config_result *r)
{
	kaa__gen_key(g, "schemaVersion");
	yajl_gen_integer(g, r->schema_version);
	kaa__gen_key(g, "groupIds");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < r->n_groups; i++)
		yajl_gen_integer(g, r->group_ids[i]);
	yajl_gen_array_close(g);
	kaa__gen_key(g, "configuration");
	kaa__gen_json(g, r->configuration, false);
	kaa__gen_key(g, "hash");
	kaa__gen_key(g, r->hash);
}

int kaa__config_compute(kaa__meta_store *store, int64_t app_id, yajl_val cp, yajl_val sp,
			const char *ekh, int64_t version, kaa__config_result *out)
{
	kaa__meta_page groups = {0};
	kaa__filter_ctx ctx = {.cp = cp, .sp = sp, .ekh = ekh};
	kaa__config_part *parts = NULL;
	kaa__meta_obj *cfgs = NULL;
	char err[KAA_JSON_ERR_SIZE];
	int rc;

	memset(out, 0, sizeof(*out));
	/* Schema version: given, else the latest configuration schema. */
	if (version == 0) {
		rc = kaa__latest_schema_version(store, app_id, "configuration", &version);
		if (rc != KAA_OK)
			goto out;
	}
	out->schema_version = version;
	kaa__meta_query gq = {.parent_id = app_id, .limit = KAA_META_LIMIT_MAX};
	rc = kaa__meta_list(store, KAA_META_GROUP, &gq, &groups);
	if (rc != KAA_OK)
		goto out;
	out->group_ids = calloc(groups.n + 1, sizeof(*out->group_ids));
	parts = calloc(groups.n + 1, sizeof(*parts));
	cfgs = calloc(groups.n + 1, sizeof(*cfgs));
	if (!out->group_ids || !parts || !cfgs)
		kaa__oom();
	size_t n_parts = 0;
	for (size_t i = 0; i < groups.n; i++) {
		kaa__meta_obj *g = &groups.items[i];
		bool match = true;
		if (g->body) {
			kaa__filter *f = NULL;
			if (kaa__filter_compile(g->body, strlen(g->body), &f, err, sizeof(err)) !=
			    KAA_OK) {
				KAA_WARN("control", "stored_filter_invalid group=%lld",
					 (long long)g->id);
				continue;
			}
			match = kaa__filter_eval(f, &ctx);
			kaa__filter_free(f);
		}
		if (!match)
			continue;
		out->group_ids[out->n_groups++] = g->id;
		kaa__meta_query cq = {
			.parent_id = app_id, .ref_id = g->id, .limit = KAA_META_LIMIT_MAX};
		kaa__meta_page cp_page;
		rc = kaa__meta_list(store, KAA_META_CONFIGURATION, &cq, &cp_page);
		if (rc != KAA_OK)
			goto out;
		for (size_t j = 0; j < cp_page.n; j++) {
			if (cp_page.items[j].schema_version != version)
				continue;
			cfgs[n_parts] = cp_page.items[j];
			memset(&cp_page.items[j], 0, sizeof(cp_page.items[j]));
			parts[n_parts].json = cfgs[n_parts].body;
			parts[n_parts].len = strlen(cfgs[n_parts].body);
			parts[n_parts].weight = g->weight;
			n_parts++;
			break;
		}
		kaa__meta_page_clear(&cp_page);
	}
	size_t mlen = 0;
	if (kaa__config_merge(parts, n_parts, &out->configuration, &mlen, out->hash, err,
			      sizeof(err)) != KAA_OK) {
		KAA_WARN("control", "config_merge_failed app=%lld err=\"%s\"", (long long)app_id,
			 err);
		rc = KAA_ERR_INTERNAL;
	}
out:
	if (cfgs)
		for (size_t i = 0; i < groups.n; i++)
			kaa__meta_obj_clear(&cfgs[i]);
	free(cfgs);
	free(parts);
	kaa__meta_page_clear(&groups);
	if (rc != KAA_OK)
		kaa__config_result_clear(out);
	return rc;
}

void kaa__config_resolve(kaa__meta_store *store, const kaa__principal *p,
			 const kaa__route_params *params, const kaa__http_request *req,
			 kaa__http_response *resp)
{
	static const kaa__rest_field fields[] = {
		{"clientProfile", KAA_RF_JSON, offsetof(kaa__meta_obj, body), KAA_RF_CREATE},
		{"serverProfile", KAA_RF_JSON, offsetof(kaa__meta_obj, bootstrap), KAA_RF_CREATE},
		{"endpointKeyHash", KAA_RF_STR, offsetof(kaa__meta_obj, endpoint_key_hash),
		 KAA_RF_CREATE},
		{"schemaVersion", KAA_RF_INT, offsetof(kaa__meta_obj, schema_version),
		 KAA_RF_CREATE},
		{NULL, 0, 0, 0},
	};
	kaa__meta_obj app = {0}, in = {0};
	kaa__rest_body body = {0};
	kaa__config_result res = {0};
	yajl_val cp = NULL, sp = NULL;
	char err[KAA_JSON_ERR_SIZE];
	int64_t app_id = kaa__route_id(params, "app");
	int rc = app_id < 0 ? KAA_ERR_NOTFOUND
			    : kaa__meta_get(store, KAA_META_APPLICATION, app_id, &app);
	if (rc == KAA_OK && p->role != KAA_ROLE_PLATFORM_ADMIN && app.tenant_id != p->tenant_id)
		rc = KAA_ERR_NOTFOUND;
	if (rc != KAA_OK) {
		kaa__reply_store_error(resp, rc);
		goto out;
	}
	if (!kaa__role_allows(p->role, KAA_ACT_READ, KAA_META_CONFIGURATION)) {
		kaa__reply_error(resp, 403, "forbidden", "your role may not do this", NULL);
		goto out;
	}
	const char *ct = kaa__http_header(req, "content-type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
		kaa__reply_error(resp, 415, "unsupported_media_type",
				 "send Content-Type: application/json", NULL);
		goto out;
	}
	kaa__rest_error e;
	if (kaa__rest_parse_body(req->body, req->body_len, fields, KAA_RF_CREATE, &in, &body, &e) !=
	    0) {
		kaa__reply_error(resp, e.status, e.code, e.message, e.path[0] ? e.path : NULL);
		goto out;
	}
	if ((in.body && kaa__json_parse(in.body, strlen(in.body), KAA_META_BODY_MAX,
					KAA_JSON_MAX_DEPTH, &cp, err, sizeof(err)) != KAA_OK) ||
	    (in.bootstrap &&
	     kaa__json_parse(in.bootstrap, strlen(in.bootstrap), KAA_META_BODY_MAX,
			     KAA_JSON_MAX_DEPTH, &sp, err, sizeof(err)) != KAA_OK)) {
		kaa__reply_error(resp, 400, "invalid", "profile is not JSON", NULL);
		goto out;
	}
	rc = kaa__config_compute(store, app_id, cp, sp, in.endpoint_key_hash, in.schema_version,
				 &res);
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
	kaa__config_result_gen(g, &res);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	kaa__config_result_clear(&res);
	yajl_tree_free(cp);
	yajl_tree_free(sp);
	kaa__rest_body_free(&body);
	kaa__meta_obj_clear(&app);
}
