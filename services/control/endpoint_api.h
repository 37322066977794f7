/*
 * endpoint_api.h - the fleet routes of the control REST API: an
 * application's endpoints (list with filters, one endpoint, its server
 * profile, its effective configuration), the log records stored by the
 * endpoint-store appender, and live counts. docs/openapi.yaml describes
 * each route.
 *
 * api.c resolves the application of the path first (404 outside the
 * caller's tenant) and checks the role; each function here answers resp
 * itself: 400 with the query parameter as error.path for a bad query,
 * 404 for an endpoint the application does not have, 503 when the
 * coordination store or the endpoint store is unreachable, store errors
 * as kaa__reply_store_error.
 *
 * Online: there is no per-endpoint record in etcd (etcd traffic stays
 * O(nodes)); an endpoint is online when its record names the node holding
 * its session (operations sets node_id at Hello and clears it at close)
 * and that node's registry record (nodes/<id>, under the node's lease) is
 * alive: a node killed without closing its sessions loses its lease, and
 * its endpoints read offline.
 *
 * A server profile change (PUT) is stored, then announced at
 * apps/<app>/endpoints/<key> (coord/keys.h; put and deleted at once): the
 * operations node holding the session re-reads the profile, re-evaluates
 * the groups and pushes the configuration that changed.
 *
 * Threads: any HTTP worker; every pointer borrowed.
 */
#ifndef KAA_CONTROL_ENDPOINT_API_H
#define KAA_CONTROL_ENDPOINT_API_H

#include "coord/coord.h"
#include "http/http_server.h"
#include "store/endpoint_store.h"
#include "store/meta_store.h"

typedef struct kaa__ep_api {
	kaa__meta_store *meta;
	kaa__ep_store *eps;
	kaa__coord *coord;
	const char *cluster;
} kaa__ep_api;

/* GET .../endpoints (query: ep_query.h). */
void kaa__ep_api_list(const kaa__ep_api *a, int64_t app_id, const kaa__http_request *req,
		      kaa__http_response *resp);
/* GET .../endpoints/{key} */
void kaa__ep_api_get(const kaa__ep_api *a, int64_t app_id, const char *key,
		     kaa__http_response *resp);
/* GET .../endpoints/{key}/server-profile: {"serverProfile","version"}, ETag. */
void kaa__ep_api_profile_get(const kaa__ep_api *a, int64_t app_id, const char *key,
			     kaa__http_response *resp);
/* PUT .../endpoints/{key}/server-profile: body {"serverProfile": JSON}
 * validated against the application's latest profile-server schema (any
 * JSON when it has none); If-Match required (428), 412 when stale. */
void kaa__ep_api_profile_put(const kaa__ep_api *a, int64_t app_id, const char *key,
			     const kaa__http_request *req, kaa__http_response *resp);
/* GET .../endpoints/{key}/configuration */
void kaa__ep_api_configuration(const kaa__ep_api *a, int64_t app_id, const char *key,
			       kaa__http_response *resp);
/* GET .../logs (key NULL; query endpoint=) and .../endpoints/{key}/logs */
void kaa__ep_api_logs(const kaa__ep_api *a, int64_t app_id, const char *key,
		      const kaa__http_request *req, kaa__http_response *resp);
/* GET .../stats */
void kaa__ep_api_stats(const kaa__ep_api *a, int64_t app_id, kaa__http_response *resp);

#endif
