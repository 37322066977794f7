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
#include "store/meta_store.h"

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
