/*
 * config_resolve.h - POST /api/v1/applications/{app}/resolve-configuration:
 * what an operations node would deliver to an endpoint with the given
 * profiles: the groups whose filters it matches and their configurations for
 * one schema version, merged by weight (json_merge.h), with the hash.
 */
#ifndef KAA_CONTROL_CONFIG_RESOLVE_H
#define KAA_CONTROL_CONFIG_RESOLVE_H

#include "control/rest_auth.h"
#include "control/router.h"
#include "http/http_server.h"
#include "json/json_merge.h"
#include "store/meta_store.h"

#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* What an endpoint with these profiles gets. Owned by the struct. */
typedef struct kaa__config_result {
	int64_t schema_version;
	int64_t *group_ids; /* matched groups, in the store's group order */
	size_t n_groups;
	char *configuration; /* the merged JSON document */
	char hash[KAA_SHA256_HEX_SIZE];
} kaa__config_result;

/* Resolves for the parsed profiles cp and sp (borrowed, NULL: none) and
 * the key hash ekh (borrowed, may be NULL) at configuration schema
 * version (0: the latest) of app_id. *out is filled on KAA_OK and zeroed
 * otherwise. Errors: the store's; KAA_ERR_INTERNAL when the stored
 * configurations do not merge (logged). Any thread. */
int kaa__config_compute(kaa__meta_store *store, int64_t app_id, yajl_val cp, yajl_val sp,
			const char *ekh, int64_t version, kaa__config_result *out);
/* Accepts NULL. */
void kaa__config_result_clear(kaa__config_result *r);
/* Members schemaVersion, groupIds, configuration and hash, into an open map. */
void kaa__config_result_gen(yajl_gen g, const kaa__config_result *r);

/* Body {"clientProfile", "serverProfile" (any JSON), "endpointKeyHash",
 * "schemaVersion" (default: the latest configuration schema)}, all
 * optional. Answers resp: 200 {"schemaVersion", "groupIds", "configuration",
 * "hash"}; 404 for an application outside p's tenant; 403 for a role that
 * may not read configurations; 415 / 400 for a bad body; store errors as
 * kaa__reply_store_error. Groups whose stored filter no longer compiles are
 * skipped (logged). store, p, params and req are borrowed. Any thread. */
void kaa__config_resolve(kaa__meta_store *store, const kaa__principal *p,
			 const kaa__route_params *params, const kaa__http_request *req,
			 kaa__http_response *resp);

#endif
