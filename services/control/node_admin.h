/*
 * node_admin.h - the cluster's nodes as the REST API shows them to platform
 * admins (GET /api/v1/nodes) and the drain requests (PUT/DELETE
 * /api/v1/nodes/{node}/drain), over the coordination store: the node
 * registry records and the drain/<node> keys (lib/coord/keys.h) that each
 * node's drain watch acts on. The caller has checked that the principal is
 * a platform admin.
 *
 * Each call answers resp itself: 503 "unavailable" when the coordination
 * store cannot be reached, else as described below. coord and cluster are
 * borrowed; node is the (percent-decoded) path segment. Any thread (the
 * coordination client is thread-safe).
 */
#ifndef KAA_CONTROL_NODE_ADMIN_H
#define KAA_CONTROL_NODE_ADMIN_H

#include "coord/coord.h"
#include "http/http_server.h"

/* 200 {"items":[{id, host, services, ports, sessions, load, draining,
 * drainRequested, version}]}: every decodable registry record, and whether
 * a drain key exists for it. */
void kaa__node_admin_list(kaa__coord *coord, const char *cluster, kaa__http_response *resp);

/* Body {"timeoutSeconds": N} (optional, 1..86400, default 30; 415 for
 * another media type, 400 for anything else in it): puts drain/<node>
 * {"deadline_ms"} and answers 202 {"node","deadlineMs"}. 404 when the node
 * is not registered. */
void kaa__node_admin_drain(kaa__coord *coord, const char *cluster, const char *node,
			   const kaa__http_request *req, kaa__http_response *resp);

/* Removes drain/<node> (cancels a drain in progress): 204, or 404 when no
 * drain was requested. */
void kaa__node_admin_undrain(kaa__coord *coord, const char *cluster, const char *node,
			     kaa__http_response *resp);

#endif
