/*
 * api.c - the control REST API (api.h): the table of REST resources and
 * the dispatcher.
 *
 * Each resource kind is one entry of `resources`: its URL collection and
 * scope, its fields (rest_body.h: what a body may set, what an answer
 * shows) and the hooks of the kinds that need more than the generic
 * create/read/update/delete over the metadata store: a prepare step at
 * create (server-side fields, references the body names), a validator
 * (validate.h) at create and update, a refusal before delete, the meaning
 * of a delete conflict, a list of its own. Routes are generated from the
 * table (plus the few routes that are not a resource, in `extra_routes`),
 * so the dispatcher only authenticates, resolves the scope of the path
 * (404 outside the caller's tenant), checks the role (auth.h, 403) and
 * calls the operation.
 */
#include "control/api.h"

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "control/config_resolve.h"
#include "control/demo_seed.h"
#include "control/endpoint_api.h"
#include "control/leader_jobs.h"
#include "control/node_admin.h"
#include "control/rest_auth.h"
#include "control/rest_body.h"
#include "control/rest_reply.h"
#include "control/router.h"
#include "control/sdk_download.h"
#include "control/validate.h"
#include "coord/keys.h"
#include "store/endpoint_store.h"
#include "store/meta_store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>

struct kaa__control {
	kaa__meta_store *store;
	kaa__ep_store *eps; /* endpoint data, for the fleet routes (endpoint_api.h) */
	kaa__coord *coord;
	char *cluster;
	kaa__rest_auth *auth;
	kaa__leader_jobs *jobs;
};

/* ---- the resource table ----------------------------------------------------- */

#define OFF(m) offsetof(kaa__meta_obj, m)

/* Where a kind's collection lives: /api/v1/tenants (root), under a tenant,
 * the caller's own (API tokens), under an application. */
enum scope { SC_ROOT, SC_TENANT, SC_SELF, SC_APP };
enum { OP_LIST, OP_CREATE, OP_GET, OP_PUT, OP_DELETE };

typedef struct resource resource;

/* One request, as the dispatcher resolved it for the operation it calls. */
typedef struct rest_call {
	kaa__control *c;
	const kaa__http_request *req;
	kaa__http_response *resp;
	const kaa__route_params *params;
	const kaa__principal *p;
	bool platform;     /* the caller is a platform admin */
	const resource *r; /* resource routes */
	/* The scope of the path: the tenant or application it names (and
	 * loaded into parent), or the caller (SC_SELF); parent_id lists. */
	int64_t tenant_id, app_id, parent_id;
	kaa__meta_obj parent;
	int64_t id;        /* item routes: the object of the path ... */
	kaa__meta_obj obj; /* ... as stored, inside the scope */
	/* create: a one-time secret answered beside the new object */
	const char *reveal_key;
	char reveal[64];
} rest_call;

struct resource {
	const char *coll;  /* URL collection segment */
	const char *param; /* item parameter name */
	kaa__meta_kind kind;
	enum scope scope;
	bool immutable; /* no PUT */
	/* Create, after the body is decoded and the scope filled in: sets
	 * what the server decides and checks what the body refers to.
	 * 0, or answers and returns -1. */
	int (*prepare)(rest_call *k, kaa__meta_obj *in, kaa__rest_body *b);
	/* Create and update, before the store is asked (validate.h). */
	kaa__validator validate;
	/* Delete, before the store is asked: 0, or answers and returns -1. */
	int (*may_delete)(rest_call *k);
	/* A delete the store refuses with KAA_ERR_CONFLICT although the
	 * version matched means the object is in use: 409 in_use, this text. */
	const char *in_use;
	/* List the collection instead of kaa__meta_list: a store error. */
	int (*list)(rest_call *k, const kaa__meta_query *q, kaa__meta_page *pg);
	kaa__rest_field fields[10];
};

/* A tenant's users see their own tenant only. */
static int list_tenants(rest_call *k, const kaa__meta_query *q, kaa__meta_page *pg)
{
	if (k->platform)
		return kaa__meta_list(k->c->store, KAA_META_TENANT, q, pg);
	kaa__meta_obj t = {0};
	int rc = kaa__meta_get(k->c->store, KAA_META_TENANT, k->p->tenant_id, &t);
	memset(pg, 0, sizeof(*pg));
	if (rc == KAA_OK && !q->cursor) {
		pg->items = kaa__xcalloc(1, sizeof(*pg->items));
		pg->items[0] = t;
		pg->n = 1;
	} else {
		kaa__meta_obj_clear(&t);
	}
	/* A tenant deleted under its user lists empty; a store failure is
	 * answered, not hidden as an empty list. */
	return rc == KAA_ERR_NOTFOUND ? KAA_OK : rc;
}

static int prepare_user(rest_call *k, kaa__meta_obj *in, kaa__rest_body *b)
{
	(void)b;
	if (in->role && kaa__role_parse(in->role) == KAA_ROLE_PLATFORM_ADMIN) {
		kaa__reply_error(k->resp, 403, "forbidden", "platform admins are not created here",
				 "$.role");
		return -1;
	}
	return 0;
}

static int may_delete_user(rest_call *k)
{
	if (k->id != k->p->user_id)
		return 0;
	kaa__reply_error(k->resp, 409, "conflict", "you cannot delete yourself", NULL);
	return -1;
}

/* A new random token: only its hash is stored, the token itself is
 * answered once. */
static int prepare_api_token(rest_call *k, kaa__meta_obj *in, kaa__rest_body *b)
{
	char hex[65];
	if (kaa__token_new(k->reveal, sizeof(k->reveal)) != KAA_OK) {
		kaa__reply_error(k->resp, 500, "internal", "no randomness", NULL);
		return -1;
	}
	k->reveal_key = "token";
	kaa__sha256_hex(k->reveal, strlen(k->reveal), hex);
	b->owned[b->n_owned++] = kaa__xstrdup(hex);
	in->token_hash = b->owned[b->n_owned - 1];
	return 0;
}

/* The topic must be the application's; ttlSeconds sets the expiry. */
static int prepare_notification(rest_call *k, kaa__meta_obj *in, kaa__rest_body *b)
{
	kaa__meta_obj topic = {0};
	int rc = kaa__meta_get(k->c->store, KAA_META_TOPIC, in->topic_id, &topic);
	bool mine = rc == KAA_OK && topic.app_id == k->app_id;
	kaa__meta_obj_clear(&topic);
	if (!mine) {
		kaa__reply_error(k->resp, 400, "invalid", "no such topic in this application",
				 "$.topicId");
		return -1;
	}
	if (b->has_ttl)
		in->expires_ms = kaa__wall_ms() + b->ttl_s * 1000;
	return 0;
}

/* The group must be the application's. */
static int prepare_configuration(rest_call *k, kaa__meta_obj *in, kaa__rest_body *b)
{
	(void)b;
	kaa__meta_obj grp = {0};
	int rc = kaa__meta_get(k->c->store, KAA_META_GROUP, in->group_id, &grp);
	bool mine = rc == KAA_OK && grp.app_id == k->app_id;
	kaa__meta_obj_clear(&grp);
	if (!mine) {
		kaa__reply_error(k->resp, 400, "invalid", "no such group in this application",
				 "$.groupId");
		return -1;
	}
	return 0;
}

static const resource resources[] = {
	{.coll = "tenants",
	 .param = "tenant",
	 .kind = KAA_META_TENANT,
	 .scope = SC_ROOT,
	 .list = list_tenants,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{.coll = "users",
	 .param = "user",
	 .kind = KAA_META_USER,
	 .scope = SC_TENANT,
	 .prepare = prepare_user,
	 .validate = kaa__validate_user,
	 .may_delete = may_delete_user,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"role", KAA_RF_STR, OFF(role),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"password", KAA_RF_PASSWORD, OFF(password_hash),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED}}},
	{.coll = "applications",
	 .param = "app",
	 .kind = KAA_META_APPLICATION,
	 .scope = SC_TENANT,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"credentialsMode", KAA_RF_STR, OFF(credentials_mode),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
		    {"applicationToken", KAA_RF_STR, OFF(app_token), KAA_RF_READ},
		    {"appRev", KAA_RF_INT, OFF(app_rev), KAA_RF_READ}}},
	{.coll = "tokens",
	 .param = "token",
	 .kind = KAA_META_API_TOKEN,
	 .scope = SC_SELF,
	 .immutable = true,
	 .prepare = prepare_api_token,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{.coll = "schemas",
	 .param = "schema",
	 .kind = KAA_META_SCHEMA,
	 .scope = SC_APP,
	 .immutable = true,
	 .validate = kaa__validate_schema,
	 .fields = {{"kind", KAA_RF_STR, OFF(schema_kind),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"name", KAA_RF_STR, OFF(name), KAA_RF_CREATE | KAA_RF_READ},
		    {"schema", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"schemaVersion", KAA_RF_INT, OFF(schema_version), KAA_RF_READ}}},
	{.coll = "groups",
	 .param = "group",
	 .kind = KAA_META_GROUP,
	 .scope = SC_APP,
	 .validate = kaa__validate_group,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"weight", KAA_RF_INT, OFF(weight),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
		    {"filter", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ}}},
	{.coll = "configurations",
	 .param = "configuration",
	 .kind = KAA_META_CONFIGURATION,
	 .scope = SC_APP,
	 .prepare = prepare_configuration,
	 .validate = kaa__validate_configuration,
	 .fields = {{"groupId", KAA_RF_INT, OFF(group_id),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"schemaVersion", KAA_RF_INT, OFF(schema_version),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"body", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{.coll = "topics",
	 .param = "topic",
	 .kind = KAA_META_TOPIC,
	 .scope = SC_APP,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"mandatory", KAA_RF_BOOL, OFF(mandatory),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
		    {"groupIds", KAA_RF_IDS, OFF(group_ids),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
		    {"seq", KAA_RF_INT, OFF(seq), KAA_RF_READ}}},
	{.coll = "notifications",
	 .param = "notification",
	 .kind = KAA_META_NOTIFICATION,
	 .scope = SC_APP,
	 .immutable = true,
	 .prepare = prepare_notification,
	 .validate = kaa__validate_notification,
	 .fields = {{"topicId", KAA_RF_INT, OFF(topic_id),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"endpointKeyHash", KAA_RF_STR, OFF(endpoint_key_hash),
		     KAA_RF_CREATE | KAA_RF_READ},
		    {"body", KAA_RF_JSON, OFF(body), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"ttlSeconds", KAA_RF_TTL, OFF(expires_ms), KAA_RF_CREATE},
		    {"seq", KAA_RF_INT, OFF(seq), KAA_RF_READ},
		    {"expiresAt", KAA_RF_INT, OFF(expires_ms), KAA_RF_READ}}},
	{.coll = "log-appenders",
	 .param = "appender",
	 .kind = KAA_META_LOG_APPENDER,
	 .scope = SC_APP,
	 .validate = kaa__validate_log_appender,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"settings", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ |
			     KAA_RF_SECRET}}},
	{.coll = "credentials",
	 .param = "credential",
	 .kind = KAA_META_CREDENTIAL,
	 .scope = SC_APP,
	 .validate = kaa__validate_credential,
	 .fields = {{"endpointKeyHash", KAA_RF_STR, OFF(endpoint_key_hash),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"publicKey", KAA_RF_STR, OFF(public_key),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
		    {"status", KAA_RF_STR, OFF(status),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ}}},
	{.coll = "sdk-profiles",
	 .param = "profile",
	 .kind = KAA_META_SDK_PROFILE,
	 .scope = SC_APP,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"schemaVersions", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"bootstrap", KAA_RF_JSON, OFF(bootstrap),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ}}},
	{.coll = "event-families",
	 .param = "family",
	 .kind = KAA_META_EVENT_FAMILY,
	 .scope = SC_TENANT,
	 .immutable = true,
	 .validate = kaa__validate_event_family,
	 .in_use = "an application maps this event family version; delete the map first",
	 .fields = {{"name", KAA_RF_STR, OFF(name), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"classes", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"familyVersion", KAA_RF_INT, OFF(schema_version), KAA_RF_READ}}},
	{.coll = "event-maps",
	 .param = "map",
	 .kind = KAA_META_EVENT_MAP,
	 .scope = SC_APP,
	 .validate = kaa__validate_event_map,
	 .fields = {{"familyId", KAA_RF_INT, OFF(family_id),
		     KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"classes", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{.coll = "user-verifiers",
	 .param = "verifier",
	 .kind = KAA_META_USER_VERIFIER,
	 .scope = SC_APP,
	 .validate = kaa__validate_user_verifier,
	 .fields = {{"name", KAA_RF_STR, OFF(name),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
		    {"settings", KAA_RF_JSON, OFF(body),
		     KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ |
			     KAA_RF_SECRET}}},
};
#define N_RESOURCES (sizeof(resources) / sizeof(resources[0]))

/* ---- routes that are not a resource --------------------------------------------- */

static void call_me(rest_call *k)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_key(g, "id");
	yajl_gen_integer(g, k->p->user_id);
	kaa__gen_str(g, "name", k->p->name);
	kaa__gen_str(g, "role", kaa__role_name(k->p->role));
	kaa__gen_key(g, "tenantId");
	yajl_gen_integer(g, k->p->tenant_id);
	yajl_gen_map_close(g);
	kaa__reply_gen(k->resp, 200, g);
	yajl_gen_free(g);
}

static void call_sdk(rest_call *k)
{
	kaa__sdk_download(k->c->store, k->p, k->params, k->resp);
}

static void call_resolve(rest_call *k)
{
	kaa__config_resolve(k->c->store, k->p, k->params, k->req, k->resp);
}

static void call_nodes(rest_call *k)
{
	kaa__node_admin_list(k->c->coord, k->c->cluster, k->resp);
}

static void call_drain(rest_call *k)
{
	kaa__node_admin_drain(k->c->coord, k->c->cluster, kaa__route_param(k->params, "node"),
			      k->req, k->resp);
}

static void call_undrain(rest_call *k)
{
	kaa__node_admin_undrain(k->c->coord, k->c->cluster, kaa__route_param(k->params, "node"),
				k->resp);
}

/* The fleet routes: the application of the path inside the caller's
 * tenant (404 otherwise, as for resources), then the role for kind. 0, or
 * answers and returns -1. */
static int enter_app(rest_call *k, kaa__meta_kind kind, bool write)
{
	kaa__meta_obj app = {0};
	int64_t id = kaa__route_id(k->params, "app");
	int rc = id < 0 ? KAA_ERR_NOTFOUND
			: kaa__meta_get(k->c->store, KAA_META_APPLICATION, id, &app);
	if (rc == KAA_OK && !k->platform && app.tenant_id != k->p->tenant_id)
		rc = KAA_ERR_NOTFOUND;
	kaa__meta_obj_clear(&app);
	if (rc != KAA_OK) {
		kaa__reply_store_error(k->resp, rc);
		return -1;
	}
	if (!kaa__role_allows(k->p->role, write ? KAA_ACT_WRITE : KAA_ACT_READ, kind)) {
		kaa__reply_error(k->resp, 403, "forbidden", "your role may not do this", NULL);
		return -1;
	}
	k->app_id = id;
	return 0;
}

static kaa__ep_api ep_api(const rest_call *k)
{
	return (kaa__ep_api){.meta = k->c->store,
			     .eps = k->c->eps,
			     .coord = k->c->coord,
			     .cluster = k->c->cluster};
}

/* Endpoints and their profiles and configuration read and write like
 * configurations (developers write); log records read like log appenders;
 * the live counts like the application. */
static void call_ep_list(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_CONFIGURATION, false) == 0)
		kaa__ep_api_list(&a, k->app_id, k->req, k->resp);
}

static void call_ep_get(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_CONFIGURATION, false) == 0)
		kaa__ep_api_get(&a, k->app_id, kaa__route_param(k->params, "endpoint"), k->resp);
}

static void call_ep_profile_get(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_CONFIGURATION, false) == 0)
		kaa__ep_api_profile_get(&a, k->app_id, kaa__route_param(k->params, "endpoint"),
					k->resp);
}

static void call_ep_profile_put(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_CONFIGURATION, true) == 0)
		kaa__ep_api_profile_put(&a, k->app_id, kaa__route_param(k->params, "endpoint"),
					k->req, k->resp);
}

static void call_ep_config(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_CONFIGURATION, false) == 0)
		kaa__ep_api_configuration(&a, k->app_id, kaa__route_param(k->params, "endpoint"),
					  k->resp);
}

static void call_ep_logs(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_LOG_APPENDER, false) == 0)
		kaa__ep_api_logs(&a, k->app_id, kaa__route_param(k->params, "endpoint"), k->req,
				 k->resp);
}

static void call_app_logs(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_LOG_APPENDER, false) == 0)
		kaa__ep_api_logs(&a, k->app_id, NULL, k->req, k->resp);
}

static void call_app_stats(rest_call *k)
{
	kaa__ep_api a = ep_api(k);
	if (enter_app(k, KAA_META_APPLICATION, false) == 0)
		kaa__ep_api_stats(&a, k->app_id, k->resp);
}

typedef struct extra_route {
	const char *method, *pattern;
	void (*call)(rest_call *k); /* answers k->resp */
	bool platform_only;         /* else 403 before the call */
} extra_route;

static const extra_route extra_routes[] = {
	{"GET", "/api/v1/me", call_me, false},
	{"GET", "/api/v1/applications/{app}/sdk-profiles/{profile}/sdk", call_sdk, false},
	{"POST", "/api/v1/applications/{app}/resolve-configuration", call_resolve, false},
	{"GET", "/api/v1/nodes", call_nodes, true},
	{"PUT", "/api/v1/nodes/{node}/drain", call_drain, true},
	{"DELETE", "/api/v1/nodes/{node}/drain", call_undrain, true},
	{"GET", "/api/v1/applications/{app}/endpoints", call_ep_list, false},
	{"GET", "/api/v1/applications/{app}/endpoints/{endpoint}", call_ep_get, false},
	{"GET", "/api/v1/applications/{app}/endpoints/{endpoint}/server-profile",
	 call_ep_profile_get, false},
	{"PUT", "/api/v1/applications/{app}/endpoints/{endpoint}/server-profile",
	 call_ep_profile_put, false},
	{"GET", "/api/v1/applications/{app}/endpoints/{endpoint}/configuration", call_ep_config,
	 false},
	{"GET", "/api/v1/applications/{app}/endpoints/{endpoint}/logs", call_ep_logs, false},
	{"GET", "/api/v1/applications/{app}/logs", call_app_logs, false},
	{"GET", "/api/v1/applications/{app}/stats", call_app_stats, false},
};
#define N_EXTRA (sizeof(extra_routes) / sizeof(extra_routes[0]))

/* ---- the route table --------------------------------------------------------------- */

/* Route ids: resource index * 8 + operation; the extra routes from
 * ROUTE_EXTRA on. */
#define ROUTE_ID(r, op) ((int)(r)*8 + (op))
#define ROUTE_EXTRA 1000

static kaa__route routes[N_RESOURCES * 5 + N_EXTRA];
static size_t n_routes;
static char route_patterns[N_RESOURCES][2][128];
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

static void build_routes(void)
{
	static const char *ops_coll[] = {"GET", "POST"};
	for (size_t i = 0; i < N_RESOURCES; i++) {
		const resource *r = &resources[i];
		char *coll = route_patterns[i][0], *item = route_patterns[i][1];
		switch (r->scope) {
		case SC_ROOT:
		case SC_SELF: snprintf(coll, 128, "/api/v1/%s", r->coll); break;
		case SC_TENANT: snprintf(coll, 128, "/api/v1/tenants/{tenant}/%s", r->coll); break;
		case SC_APP: snprintf(coll, 128, "/api/v1/applications/{app}/%s", r->coll); break;
		}
		snprintf(item, 128, "%s/{%s}", coll, r->param);
		for (int op = 0; op < 2; op++)
			routes[n_routes++] = (kaa__route){ops_coll[op], coll, ROUTE_ID(i, op)};
		routes[n_routes++] = (kaa__route){"GET", item, ROUTE_ID(i, OP_GET)};
		if (!r->immutable)
			routes[n_routes++] = (kaa__route){"PUT", item, ROUTE_ID(i, OP_PUT)};
		routes[n_routes++] = (kaa__route){"DELETE", item, ROUTE_ID(i, OP_DELETE)};
	}
	for (size_t i = 0; i < N_EXTRA; i++)
		routes[n_routes++] = (kaa__route){extra_routes[i].method, extra_routes[i].pattern,
						  ROUTE_EXTRA + (int)i};
}

const kaa__route *kaa__control_routes(size_t *n)
{
	pthread_once(&routes_once, build_routes);
	*n = n_routes;
	return routes;
}

/* ---- answers and request details --------------------------------------------------- */

static void gen_obj(yajl_gen g, const resource *r, const kaa__meta_obj *o)
{
	yajl_gen_map_open(g);
	kaa__gen_key(g, "id");
	yajl_gen_integer(g, o->id);
	kaa__gen_key(g, "version");
	yajl_gen_integer(g, o->version);
	if (r->scope == SC_APP) {
		kaa__gen_key(g, "applicationId");
		yajl_gen_integer(g, o->app_id);
	}
	if (r->kind != KAA_META_TENANT && r->scope != SC_SELF) {
		kaa__gen_key(g, "tenantId");
		yajl_gen_integer(g, o->tenant_id);
	}
	kaa__gen_key(g, "createdAt");
	yajl_gen_integer(g, o->created_ms);
	kaa__gen_key(g, "updatedAt");
	yajl_gen_integer(g, o->updated_ms);
	for (const kaa__rest_field *f = r->fields; f->json; f++) {
		if (!(f->flags & KAA_RF_READ))
			continue;
		const char *base = (const char *)o;
		kaa__gen_key(g, f->json);
		switch (f->type) {
		case KAA_RF_STR: {
			const char *s = *(char *const *)(base + f->off);
			if (s)
				yajl_gen_string(g, (const unsigned char *)s, strlen(s));
			else
				yajl_gen_null(g);
			break;
		}
		case KAA_RF_INT: yajl_gen_integer(g, *(const int64_t *)(base + f->off)); break;
		case KAA_RF_BOOL: yajl_gen_bool(g, *(const bool *)(base + f->off)); break;
		case KAA_RF_JSON:
			kaa__gen_json(g, *(char *const *)(base + f->off), f->flags & KAA_RF_SECRET);
			break;
		case KAA_RF_IDS:
			yajl_gen_array_open(g);
			for (size_t i = 0; i < o->n_group_ids; i++)
				yajl_gen_integer(g, o->group_ids[i]);
			yajl_gen_array_close(g);
			break;
		default: yajl_gen_null(g); break;
		}
	}
	yajl_gen_map_close(g);
}

static void respond_obj(kaa__http_response *resp, int status, const resource *r,
			const kaa__meta_obj *o, const char *extra_key, const char *extra_val)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	char etag[32];
	if (extra_key) {
		/* One-time secrets (a new API token) ride beside the object. */
		yajl_gen_map_open(g);
		kaa__gen_key(g, extra_key);
		kaa__gen_key(g, extra_val);
		kaa__gen_key(g, "object");
	}
	gen_obj(g, r, o);
	if (extra_key)
		yajl_gen_map_close(g);
	kaa__reply_gen(resp, status, g);
	yajl_gen_free(g);
	snprintf(etag, sizeof(etag), "\"%" PRId64 "\"", o->version);
	kaa__http_response_add_header(resp, "ETag", etag);
}

/* Fills o from the JSON body for create (flag KAA_RF_CREATE) or update.
 * Returns 0, or answers 400/415 itself and returns -1. */
static int parse_body(const kaa__http_request *req, const resource *r, int flag, kaa__meta_obj *o,
		      kaa__rest_body *b, kaa__http_response *resp)
{
	const char *ct = kaa__http_header(req, "content-type");
	kaa__rest_error e;

	memset(b, 0, sizeof(*b));
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' ')) {
		kaa__reply_error(resp, 415, "unsupported_media_type",
				 "send Content-Type: application/json", NULL);
		return -1;
	}
	if (kaa__rest_parse_body(req->body, req->body_len, r->fields, flag, o, b, &e) != 0) {
		kaa__reply_error(resp, e.status, e.code, e.message, e.path[0] ? e.path : NULL);
		return -1;
	}
	return 0;
}

static void publish(kaa__control *c, const kaa__meta_change *chg)
{
	char key[256], val[64];
	if (chg->app_id) {
		kaa__key_app_rev(key, sizeof(key), c->cluster, chg->app_id);
		snprintf(val, sizeof(val), "{\"rev\":%" PRId64 "}", chg->app_rev);
		int rc = kaa__coord_put(c->coord, key, val, strlen(val), 0, NULL);
		if (rc != KAA_OK)
			KAA_WARN("control", "publish_failed key=%s err=%s", key, kaa_strerror(rc));
	}
	for (size_t i = 0; i < chg->n_deleted_apps; i++) {
		kaa__key_app(key, sizeof(key), c->cluster, chg->deleted_apps[i]);
		kaa__coord_delete(c->coord, key, true, NULL);
	}
}

static bool query_param(const char *query, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	const char *p = query;
	while (p && *p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=')
			return kaa__percent_decode(p + n + 1, len - n - 1, out, cap);
		p = amp ? amp + 1 : NULL;
	}
	return false;
}

/* Reads If-Match ("N" or N, an ETag of this API) into *want (0 when
 * absent). Answers 400 for a malformed value, and 428 when required and
 * absent, returning -1 then. */
static int read_if_match(const kaa__http_request *req, bool required, int64_t *want,
			 kaa__http_response *resp)
{
	const char *h = kaa__http_header(req, "if-match");
	*want = 0;
	if (!h) {
		if (!required)
			return 0;
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

/* ---- the generic operations ------------------------------------------------------ */

static void op_get(rest_call *k)
{
	respond_obj(k->resp, 200, k->r, &k->obj, NULL, NULL);
}

static void op_list(rest_call *k)
{
	const resource *r = k->r;
	char cursor[256] = "", lim[16];
	kaa__meta_query q = {.parent_id = k->parent_id};
	kaa__meta_page pg;
	if (query_param(k->req->query, "limit", lim, sizeof(lim))) {
		char *end;
		long v = strtol(lim, &end, 10);
		if (*end || v < 1 || v > KAA_META_LIMIT_MAX) {
			kaa__reply_error(k->resp, 400, "invalid", "limit must be 1..1000", "limit");
			return;
		}
		q.limit = (size_t)v;
	}
	if (query_param(k->req->query, "cursor", cursor, sizeof(cursor)))
		q.cursor = cursor;
	int rc = r->list ? r->list(k, &q, &pg) : kaa__meta_list(k->c->store, r->kind, &q, &pg);
	if (rc != KAA_OK) {
		kaa__reply_store_error(k->resp, rc);
		return;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_key(g, "items");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < pg.n; i++)
		gen_obj(g, r, &pg.items[i]);
	yajl_gen_array_close(g);
	kaa__gen_str(g, "nextCursor", pg.next_cursor);
	yajl_gen_map_close(g);
	kaa__reply_gen(k->resp, 200, g);
	yajl_gen_free(g);
	kaa__meta_page_clear(&pg);
}

static void op_create(rest_call *k)
{
	const resource *r = k->r;
	kaa__meta_obj in = {.kind = r->kind}, out = {0};
	kaa__meta_change chg = {0};
	kaa__rest_body body = {0};
	if (parse_body(k->req, r, KAA_RF_CREATE, &in, &body, k->resp) != 0)
		goto out;
	if (r->scope == SC_TENANT)
		in.tenant_id = k->tenant_id;
	if (r->scope == SC_APP)
		in.app_id = k->app_id;
	if (r->scope == SC_SELF)
		in.user_id = k->p->user_id;
	if (r->prepare && r->prepare(k, &in, &body) != 0)
		goto out;
	if (r->validate && r->validate(k->c->store, k->app_id, &in, k->resp) != 0)
		goto out;
	int rc = kaa__meta_create(k->c->store, &in, &out, &chg);
	if (rc != KAA_OK) {
		kaa__reply_store_error(k->resp, rc);
		goto out;
	}
	publish(k->c, &chg);
	respond_obj(k->resp, 201, r, &out, k->reveal_key, k->reveal);
out:
	kaa__rest_body_free(&body);
	kaa__meta_obj_clear(&out);
	kaa__meta_change_clear(&chg);
}

static void op_put(rest_call *k)
{
	const resource *r = k->r;
	kaa__meta_obj in = {.kind = r->kind, .id = k->id}, out = {0};
	kaa__meta_change chg = {0};
	kaa__rest_body body = {0};
	if (read_if_match(k->req, true, &in.version, k->resp) != 0)
		goto out;
	/* Fields not sent keep their value: start from the stored object. */
	in.weight = k->obj.weight;
	in.mandatory = k->obj.mandatory;
	in.group_ids = k->obj.group_ids;
	in.n_group_ids = k->obj.n_group_ids;
	if (parse_body(k->req, r, KAA_RF_UPDATE, &in, &body, k->resp) != 0)
		goto out;
	/* A configuration keeps its schema version, an event map its family
	 * and a credential its key hash: validate against those. */
	kaa__meta_obj check = in;
	check.schema_version = k->obj.schema_version;
	check.family_id = k->obj.family_id;
	if (!check.endpoint_key_hash)
		check.endpoint_key_hash = k->obj.endpoint_key_hash;
	if (r->validate && r->validate(k->c->store, k->app_id, &check, k->resp) != 0)
		goto out;
	int rc = kaa__meta_update(k->c->store, &in, &out, &chg);
	if (rc != KAA_OK) {
		kaa__reply_store_error(k->resp, rc);
		goto out;
	}
	publish(k->c, &chg);
	respond_obj(k->resp, 200, r, &out, NULL, NULL);
out:
	kaa__rest_body_free(&body);
	kaa__meta_obj_clear(&out);
	kaa__meta_change_clear(&chg);
}

static void op_delete(rest_call *k)
{
	const resource *r = k->r;
	kaa__meta_change chg = {0};
	int64_t want;
	if (read_if_match(k->req, false, &want, k->resp) != 0)
		return;
	if (r->may_delete && r->may_delete(k) != 0)
		return;
	int rc = kaa__meta_delete(k->c->store, r->kind, k->id, want, &chg);
	if (rc == KAA_ERR_CONFLICT && r->in_use && (want == 0 || want == k->obj.version))
		kaa__reply_error(k->resp, 409, "in_use", r->in_use, NULL);
	else if (rc != KAA_OK)
		kaa__reply_store_error(k->resp, rc);
	else {
		publish(k->c, &chg);
		kaa__http_respond(k->resp, 204, NULL, NULL, 0);
	}
	kaa__meta_change_clear(&chg);
}

static void (*const resource_ops[])(rest_call *k) = {
	[OP_LIST] = op_list, [OP_CREATE] = op_create, [OP_GET] = op_get,
	[OP_PUT] = op_put,   [OP_DELETE] = op_delete,
};

/* ---- the dispatcher ---------------------------------------------------------------- */

/* The scope of the path (404 outside the caller's tenant), then the role
 * (403), then the object of an item route (404 outside the scope).
 * 0, or answers and returns -1. */
static int enter_resource(rest_call *k, int op)
{
	const resource *r = k->r;
	int rc = KAA_OK;
	switch (r->scope) {
	case SC_ROOT: break;
	case SC_SELF: k->parent_id = k->p->user_id; break;
	case SC_TENANT:
		k->tenant_id = kaa__route_id(k->params, "tenant");
		if (k->tenant_id < 0 || (!k->platform && k->tenant_id != k->p->tenant_id)) {
			kaa__reply_error(k->resp, 404, "not_found", "no such tenant", NULL);
			return -1;
		}
		rc = kaa__meta_get(k->c->store, KAA_META_TENANT, k->tenant_id, &k->parent);
		k->parent_id = k->tenant_id;
		break;
	case SC_APP:
		k->app_id = kaa__route_id(k->params, "app");
		rc = k->app_id < 0 ? KAA_ERR_NOTFOUND
				   : kaa__meta_get(k->c->store, KAA_META_APPLICATION, k->app_id,
						   &k->parent);
		if (rc == KAA_OK && !k->platform && k->parent.tenant_id != k->p->tenant_id)
			rc = KAA_ERR_NOTFOUND;
		k->parent_id = k->app_id;
		break;
	}
	if (rc != KAA_OK) {
		kaa__reply_store_error(k->resp, rc);
		return -1;
	}
	bool write = op == OP_CREATE || op == OP_PUT || op == OP_DELETE;
	if (!kaa__role_allows(k->p->role, write ? KAA_ACT_WRITE : KAA_ACT_READ, r->kind)) {
		kaa__reply_error(k->resp, 403, "forbidden", "your role may not do this", NULL);
		return -1;
	}
	if (op == OP_LIST || op == OP_CREATE)
		return 0;
	k->id = kaa__route_id(k->params, r->param);
	rc = k->id < 0 ? KAA_ERR_NOTFOUND : kaa__meta_get(k->c->store, r->kind, k->id, &k->obj);
	if (rc == KAA_OK) {
		bool inside;
		switch (r->scope) {
		case SC_ROOT: inside = k->platform || k->obj.id == k->p->tenant_id; break;
		case SC_TENANT: inside = k->obj.tenant_id == k->tenant_id; break;
		case SC_SELF: inside = k->obj.user_id == k->p->user_id; break;
		default: inside = k->obj.app_id == k->app_id; break;
		}
		if (!inside)
			rc = KAA_ERR_NOTFOUND;
	}
	if (rc != KAA_OK) {
		kaa__reply_store_error(k->resp, rc);
		return -1;
	}
	return 0;
}

void kaa__control_handle(kaa__control *c, const kaa__http_request *req, kaa__http_response *resp)
{
	size_t nr;
	const kaa__route *table = kaa__control_routes(&nr), *route;
	kaa__route_params params;
	kaa__principal p;
	char allow[64];

	int m = kaa__route_match(table, nr, req->method, req->path, &route, &params, allow,
				 sizeof(allow));
	if (m == KAA_ROUTE_NO_PATH) {
		kaa__reply_error(resp, 404, "not_found", "no such route", NULL);
		return;
	}
	int st = kaa__rest_authenticate(c->auth, req, &p);
	if (st != 0) {
		if (st == 401)
			kaa__http_response_add_header(resp, "WWW-Authenticate",
						      "Basic realm=\"kaa\"");
		kaa__reply_error(resp, st, st == 401 ? "unauthorized" : "unavailable",
				 st == 401 ? "valid credentials required"
					   : "metadata store unavailable",
				 NULL);
		return;
	}
	if (m == KAA_ROUTE_NO_METHOD) {
		kaa__http_response_add_header(resp, "Allow", allow);
		kaa__reply_error(resp, 405, "method_not_allowed",
				 "method not allowed on this route", NULL);
		return;
	}
	rest_call k = {.c = c,
		       .req = req,
		       .resp = resp,
		       .params = &params,
		       .p = &p,
		       .platform = p.role == KAA_ROLE_PLATFORM_ADMIN};
	if (route->id >= ROUTE_EXTRA) {
		const extra_route *x = &extra_routes[route->id - ROUTE_EXTRA];
		if (x->platform_only && !k.platform)
			kaa__reply_error(resp, 403, "forbidden", "platform administrators only",
					 NULL);
		else
			x->call(&k);
		return;
	}
	k.r = &resources[route->id / 8];
	int op = route->id % 8;
	if (enter_resource(&k, op) == 0)
		resource_ops[op](&k);
	kaa__meta_obj_clear(&k.parent);
	kaa__meta_obj_clear(&k.obj);
}

/* ---- lifecycle --------------------------------------------------------------------- */

static int ensure_admin(kaa__control *c)
{
	const char *user = getenv("KAA_ADMIN_USER");
	const char *pass = getenv("KAA_ADMIN_PASSWORD");
	char generated[25];
	kaa__meta_obj u = {0}, in = {0};
	char *hash = NULL;
	int rc;

	if (!user || !*user)
		user = "admin";
	rc = kaa__meta_find_name(c->store, KAA_META_USER, 0, user, &u);
	kaa__meta_obj_clear(&u);
	if (rc == KAA_OK)
		return KAA_OK;
	if (rc != KAA_ERR_NOTFOUND)
		return rc;
	bool gen = !pass || !*pass;
	if (gen) {
		rc = kaa__password_generate(generated, sizeof(generated));
		if (rc != KAA_OK)
			return rc;
		pass = generated;
	}
	rc = kaa__password_hash(pass, 0, &hash);
	if (rc != KAA_OK)
		return rc;
	in.kind = KAA_META_USER;
	in.name = (char *)user;
	in.role = "platform-admin";
	in.password_hash = hash;
	rc = kaa__meta_create(c->store, &in, NULL, NULL);
	free(hash);
	if (rc == KAA_ERR_EXISTS)
		return KAA_OK; /* another replica created it first */
	if (rc != KAA_OK)
		return rc;
	KAA_INFO("control", "platform_admin_created user=%s", user);
	if (gen) {
		/* Printed once, on stdout, so it stays out of structured logs. */
		printf("kaa-node: created platform admin user=%s password=%s\n", user, generated);
		fflush(stdout);
	}
	return KAA_OK;
}

int kaa__control_new(const char *sql_url, const char *nosql_url, kaa__coord *coord,
		     const char *cluster, kaa__control **out)
{
	kaa__control *c = kaa__xcalloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	c->coord = coord;
	c->cluster = kaa__xstrdup(cluster);
	rc = kaa__meta_store_new(sql_url, NULL, &c->store);
	if (rc != KAA_OK) {
		KAA_ERROR("control", "store_open_failed url=%s err=%s", sql_url, kaa_strerror(rc));
		goto fail;
	}
	rc = kaa__ep_store_new(nosql_url, &c->eps);
	if (rc != KAA_OK) {
		KAA_ERROR("control", "endpoint_store_open_failed err=%s", kaa_strerror(rc));
		goto fail;
	}
	rc = kaa__rest_auth_new(c->store, &c->auth);
	if (rc != KAA_OK)
		goto fail;
	c->jobs = kaa__leader_jobs_new(c->store, coord, c->cluster);
	rc = ensure_admin(c);
	if (rc != KAA_OK) {
		KAA_ERROR("control", "admin_bootstrap_failed err=%s", kaa_strerror(rc));
		goto fail;
	}
	*out = c;
	return KAA_OK;
fail:
	kaa__control_free(c);
	return rc;
}

void kaa__control_free(kaa__control *c)
{
	if (!c)
		return;
	kaa__leader_jobs_free(c->jobs);
	kaa__rest_auth_free(c->auth);
	kaa__meta_store_free(c->store);
	kaa__ep_store_free(c->eps);
	free(c->cluster);
	free(c);
}

int kaa__control_seed_demo(kaa__control *c, char *token, size_t size)
{
	return kaa__demo_seed(c->store, token, size);
}

void kaa__control_leader_tick(kaa__control *c)
{
	kaa__leader_jobs_tick(c->jobs);
}

void kaa__control_set_rebalance(kaa__control *c, double threshold, int64_t min_sessions,
				int interval_ms, int cooldown_ms)
{
	kaa__leader_jobs_set_rebalance(c->jobs, threshold, min_sessions, interval_ms, cooldown_ms);
}

void kaa__control_set_metrics(kaa__control *c, kaa__metrics *m)
{
	kaa__leader_jobs_set_metrics(c->jobs, m);
}
