/*
 * api.h - the control service's REST API (/api/v1/ on the control port),
 * over the metadata store (meta_store.h). docs/openapi.yaml describes every
 * route; tests/unit/test_openapi.c checks that the two match.
 *
 * Auth: every /api/v1/ request needs HTTP Basic (user:password) or
 * "Authorization: Bearer <API token>". No credentials: 401; a role that may
 * not act on the resource kind: 403; an object outside the caller's tenant:
 * 404 (its existence is not revealed).
 * After each committed change the application's revision is published to
 * /kaa/<cluster>/apps/<app-id>/rev (JSON {"rev":N}) through the
 * coordination layer, so operations nodes reload that application.
 *
 * The service is split by concern: api.c holds the resource table and the
 * dispatcher; rest_auth.h (who is calling), rest_body.h (request bodies),
 * validate.h (payload checks), rest_reply.h (answers), node_admin.h (nodes
 * and drains), sdk_download.h, config_resolve.h, leader_jobs.h and
 * demo_seed.h each own one feature; endpoint_api.h the fleet routes
 * (endpoints, server profiles, log records, live counts) over the
 * endpoint store.
 *
 * Threads: kaa__control_handle runs on HTTP worker threads concurrently;
 * new/free on the main thread; kaa__control_leader_tick on the main thread.
 */
#ifndef KAA_CONTROL_API_H
#define KAA_CONTROL_API_H

#include "coord/coord.h"
#include "http/http_server.h"
#include "base/metrics.h"

#include <stddef.h>

typedef struct kaa__control kaa__control;

/* Opens the store at sql_url (migrations applied) and the endpoint store
 * at nosql_url (endpoint_store.h: for the fleet routes), ensures a platform
 * admin exists: KAA_ADMIN_USER/KAA_ADMIN_PASSWORD from the environment, or
 * user "admin" with a generated password printed once on stdout.
 * coord and cluster are borrowed. Errors of kaa__meta_store_new,
 * kaa__ep_store_new and of the admin's creation; KAA_ERR_INTERNAL without
 * randomness. */
int kaa__control_new(const char *sql_url, const char *nosql_url, kaa__coord *coord,
		     const char *cluster, kaa__control **out);
void kaa__control_free(kaa__control *c);
/* Serves one /api/v1/ request. */
void kaa__control_handle(kaa__control *c, const kaa__http_request *req, kaa__http_response *resp);
/* The leader's singletons (leader_jobs.h): notification expiry, stale node
 * keys cleanup, repair of lost app revision publications, and load
 * rebalancing. Main thread, while this node leads. */
void kaa__control_leader_tick(kaa__control *c);
/* Rebalancing settings, as kaa__leader_jobs_set_rebalance (defaults 0.2,
 * 50, 30000, 60000). Main thread, before the first tick. */
void kaa__control_set_rebalance(kaa__control *c, double threshold, int64_t min_sessions,
				int interval_ms, int cooldown_ms);
/* Registers the control service's counters in m (borrowed; must outlive c):
 * kaa_control_rebalance_checks_total, kaa_control_rebalance_plans_total.
 * Main thread, before the first tick. */
void kaa__control_set_metrics(kaa__control *c, kaa__metrics *m);

/* Demo data for `make run` (demo_seed.h: what it creates, its errors):
 * copies the demo application's token into token (at least 64 bytes).
 * Main thread, after new. */
int kaa__control_seed_demo(kaa__control *c, char *token, size_t size);

/* The route table (for the OpenAPI check). */
typedef struct kaa__route kaa__route;
const kaa__route *kaa__control_routes(size_t *n);

#endif
