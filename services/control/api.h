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

#include "coord.h"
#include "http_server.h"

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
/* The leader's singletons: notification expiry, stale node keys cleanup. */
void kaa__control_leader_tick(kaa__control *c);

/* The route table (for the OpenAPI check). */
typedef struct kaa__route kaa__route;
const kaa__route *kaa__control_routes(size_t *n);

#endif
