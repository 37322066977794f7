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

/* Opens the store at sql_url (migrations applied), ensures a platform
 * admin exists: KAA_ADMIN_USER/KAA_ADMIN_PASSWORD from the environment, or
 * user "admin" with a generated password printed once on stdout.
 * coord and cluster are borrowed. Errors of kaa__meta_store_new. */
int kaa__control_new(const char *sql_url, kaa__coord *coord, const char *cluster,
		     kaa__control **out);
void kaa__control_free(kaa__control *c);
/* Serves one /api/v1/ request. */
void kaa__control_handle(kaa__control *c, const kaa__http_request *req, kaa__http_response *resp);
/* The leader's singletons: notification expiry, stale node keys cleanup,
 * repair of lost app revision publications, and load rebalancing. */
void kaa__control_leader_tick(kaa__control *c);

/*
 * Rebalancing (lib/coord/rebalance.h): every interval_ms the leader reads the
 * operations nodes' records; when the busiest exceeds the mean by more than
 * threshold (a fraction, e.g. 0.2) and by at least min_sessions, it puts a
 * plan with the next seq at /kaa/<cluster>/rebalance, then makes no new plan
 * for cooldown_ms (the moves take effect and loads are republished).
 * interval_ms 0 disables it. Defaults: 0.2, 50, 30000, 60000.
 * Call before the first tick (main thread).
 */
void kaa__control_set_rebalance(kaa__control *c, double threshold, int64_t min_sessions,
				int interval_ms, int cooldown_ms);

/* Registers the control service's counters in m (borrowed; must outlive c):
 * kaa_control_rebalance_checks_total, kaa_control_rebalance_plans_total.
 * Main thread, before the first tick. */
void kaa__control_set_metrics(kaa__control *c, kaa__metrics *m);

/*
 * Demo data for `make run`: when no tenant "demo" exists, creates it with an
 * application "demo-app" (trustful), profile-client, configuration and log
 * schemas, a group "all" with a configuration, and a mandatory topic
 * "news"; then (or when it already existed) copies the application token
 * into token (at least 64 bytes). Main thread, after new. Errors of the
 * metadata store; KAA_ERR_NOTFOUND when "demo" exists without "demo-app".
 */
int kaa__control_seed_demo(kaa__control *c, char *token, size_t size);

/* The route table (for the OpenAPI check). */
typedef struct kaa__route kaa__route;
const kaa__route *kaa__control_routes(size_t *n);

#endif
