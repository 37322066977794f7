/*
 * api.c - REST resources over the metadata store. One generic handler
 * serves every resource kind from a table of field specs: JSON bodies are
 * parsed with limits, unknown fields and wrong types are rejected with the
 * path of the field, and data payloads are validated against their Avro
 * schema before they reach the store.
 */
#include "base/alloc.h"
#include "base/base64.h"
#include "control/api.h"

#include "auth/auth.h"
#include "json/avro_schema.h"
#include "base/clock.h"
#include "base/error.h"
#include "json/filter.h"
#include "json/json_merge.h"
#include "base/log.h"
#include "appender/log_appender.h"
#include "store/meta_store.h"
#include "coord/node_record.h"
#include "coord/keys.h"
#include "coord/rebalance.h"
#include "control/rest_body.h"
#include "control/router.h"
#include "control/sdk_gen.h"

#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* Basic auth costs a 100k-iteration PBKDF2 per request. Successful
 * verifications are remembered for a minute in a small direct-mapped
 * cache keyed by SHA-256(process secret, stored hash, password): a changed
 * password (new stored hash) misses, and the cache holds nothing that
 * helps guess a password without the per-process secret. */
#define AUTH_CACHE_SLOTS 256
#define AUTH_CACHE_TTL_MS 60000

typedef struct auth_cache_entry {
	unsigned char key[32];
	int64_t expires_ms;
} auth_cache_entry;

struct kaa__control {
	kaa__meta_store *store;
	kaa__coord *coord;
	char *cluster;
	int64_t last_expiry_ms;
	/* rebalancing (leader only, main thread) */
	double rb_threshold;
	int64_t rb_min_sessions;
	int rb_interval_ms, rb_cooldown_ms;
	int64_t rb_last_check_ms, rb_last_plan_ms;
	int64_t rb_last_total; /* sessions on the operations nodes when the last plan was made */
	kaa__counter *m_rb_checks, *m_rb_plans; /* NULL until set_metrics */
	unsigned char auth_secret[32];
	pthread_mutex_t auth_mu;
	auth_cache_entry auth_cache[AUTH_CACHE_SLOTS];
};

static void auth_cache_key(kaa__control *c, const char *stored, const char *password,
			   unsigned char key[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	if (!ctx) {
		memset(key, 0, 32);
		return;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, c->auth_secret, sizeof(c->auth_secret));
	EVP_DigestUpdate(ctx, stored, strlen(stored) + 1);
	EVP_DigestUpdate(ctx, password, strlen(password));
	EVP_DigestFinal_ex(ctx, key, &n);
	EVP_MD_CTX_free(ctx);
}

static bool verify_password_cached(kaa__control *c, const char *password, const char *stored)
{
	unsigned char key[32];
	auth_cache_key(c, stored, password, key);
	auth_cache_entry *e = &c->auth_cache[key[0]];
	int64_t now = kaa__now_ms();
	pthread_mutex_lock(&c->auth_mu);
	bool hit = e->expires_ms > now && CRYPTO_memcmp(e->key, key, sizeof(key)) == 0;
	pthread_mutex_unlock(&c->auth_mu);
	if (hit)
		return true;
	if (!kaa__password_verify(password, stored))
		return false;
	pthread_mutex_lock(&c->auth_mu);
	memcpy(e->key, key, sizeof(key));
	e->expires_ms = now + AUTH_CACHE_TTL_MS;
	pthread_mutex_unlock(&c->auth_mu);
	return true;
}

/* ---- responses -------------------------------------------------------------- */

static void json_error(kaa__http_response *resp, int status, const char *code, const char *msg,
		       const char *path)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t len;
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"error", 5);
	yajl_gen_map_open(g);
	yajl_gen_string(g, (const unsigned char *)"code", 4);
	yajl_gen_string(g, (const unsigned char *)code, strlen(code));
	yajl_gen_string(g, (const unsigned char *)"message", 7);
	yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
	if (path) {
		yajl_gen_string(g, (const unsigned char *)"path", 4);
		yajl_gen_string(g, (const unsigned char *)path, strlen(path));
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &len);
	kaa__http_respond(resp, status, "application/json", buf, len);
	yajl_gen_free(g);
}

static void store_error(kaa__http_response *resp, int rc)
{
	switch (rc) {
	case KAA_ERR_NOTFOUND: json_error(resp, 404, "not_found", "no such object", NULL); break;
	case KAA_ERR_EXISTS:
		json_error(resp, 409, "exists", "an object with this name or key exists", NULL);
		break;
	case KAA_ERR_CONFLICT:
		json_error(resp, 412, "version_mismatch",
			   "the object changed since it was read (If-Match)", NULL);
		break;
	case KAA_ERR_INVAL: json_error(resp, 400, "invalid", "invalid value", NULL); break;
	case KAA_ERR_TOO_BIG: json_error(resp, 413, "too_big", "value too large", NULL); break;
	case KAA_ERR_UNAVAILABLE:
	case KAA_ERR_TIMEOUT:
		json_error(resp, 503, "unavailable", "metadata store unavailable, retry", NULL);
		kaa__http_response_add_header(resp, "Retry-After", "1");
		break;
	default: json_error(resp, 500, "internal", kaa_strerror(rc), NULL); break;
	}
}

/* ---- resource specs ------------------------------------------------------------ */

#define OFF(m) offsetof(kaa__meta_obj, m)

enum scope { SC_ROOT, SC_TENANT, SC_SELF, SC_APP };

typedef struct resource {
	const char *coll;  /* URL collection segment */
	const char *param; /* item parameter name */
	kaa__meta_kind kind;
	enum scope scope;
	bool immutable; /* no PUT */
	kaa__rest_field fields[10];
} resource;

static const resource resources[] = {
	{"tenants",
	 "tenant",
	 KAA_META_TENANT,
	 SC_ROOT,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{"users",
	 "user",
	 KAA_META_USER,
	 SC_TENANT,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"role", KAA_RF_STR, OFF(role),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"password", KAA_RF_PASSWORD, OFF(password_hash),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED}}},
	{"applications",
	 "app",
	 KAA_META_APPLICATION,
	 SC_TENANT,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"credentialsMode", KAA_RF_STR, OFF(credentials_mode),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
	  {"applicationToken", KAA_RF_STR, OFF(app_token), KAA_RF_READ},
	  {"appRev", KAA_RF_INT, OFF(app_rev), KAA_RF_READ}}},
	{"tokens",
	 "token",
	 KAA_META_API_TOKEN,
	 SC_SELF,
	 true,
	 {{"name", KAA_RF_STR, OFF(name), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{"schemas",
	 "schema",
	 KAA_META_SCHEMA,
	 SC_APP,
	 true,
	 {{"kind", KAA_RF_STR, OFF(schema_kind), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"name", KAA_RF_STR, OFF(name), KAA_RF_CREATE | KAA_RF_READ},
	  {"schema", KAA_RF_JSON, OFF(body), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"schemaVersion", KAA_RF_INT, OFF(schema_version), KAA_RF_READ}}},
	{"groups",
	 "group",
	 KAA_META_GROUP,
	 SC_APP,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"weight", KAA_RF_INT, OFF(weight), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
	  {"filter", KAA_RF_JSON, OFF(body), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ}}},
	{"configurations",
	 "configuration",
	 KAA_META_CONFIGURATION,
	 SC_APP,
	 false,
	 {{"groupId", KAA_RF_INT, OFF(group_id), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"schemaVersion", KAA_RF_INT, OFF(schema_version),
	   KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"body", KAA_RF_JSON, OFF(body),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{"topics",
	 "topic",
	 KAA_META_TOPIC,
	 SC_APP,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"mandatory", KAA_RF_BOOL, OFF(mandatory), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
	  {"groupIds", KAA_RF_IDS, OFF(group_ids), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
	  {"seq", KAA_RF_INT, OFF(seq), KAA_RF_READ}}},
	{"notifications",
	 "notification",
	 KAA_META_NOTIFICATION,
	 SC_APP,
	 true,
	 {{"topicId", KAA_RF_INT, OFF(topic_id), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"endpointKeyHash", KAA_RF_STR, OFF(endpoint_key_hash), KAA_RF_CREATE | KAA_RF_READ},
	  {"body", KAA_RF_JSON, OFF(body), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"ttlSeconds", KAA_RF_TTL, OFF(expires_ms), KAA_RF_CREATE},
	  {"seq", KAA_RF_INT, OFF(seq), KAA_RF_READ},
	  {"expiresAt", KAA_RF_INT, OFF(expires_ms), KAA_RF_READ}}},
	{"log-appenders",
	 "appender",
	 KAA_META_LOG_APPENDER,
	 SC_APP,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"settings", KAA_RF_JSON, OFF(body),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{"credentials",
	 "credential",
	 KAA_META_CREDENTIAL,
	 SC_APP,
	 false,
	 {{"endpointKeyHash", KAA_RF_STR, OFF(endpoint_key_hash),
	   KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"publicKey", KAA_RF_STR, OFF(public_key), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ},
	  {"status", KAA_RF_STR, OFF(status), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ}}},
	{"sdk-profiles",
	 "profile",
	 KAA_META_SDK_PROFILE,
	 SC_APP,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"schemaVersions", KAA_RF_JSON, OFF(body),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"bootstrap", KAA_RF_JSON, OFF(bootstrap), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_READ}}},
	{"event-families",
	 "family",
	 KAA_META_EVENT_FAMILY,
	 SC_TENANT,
	 true,
	 {{"name", KAA_RF_STR, OFF(name), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"classes", KAA_RF_JSON, OFF(body), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"familyVersion", KAA_RF_INT, OFF(schema_version), KAA_RF_READ}}},
	{"event-maps",
	 "map",
	 KAA_META_EVENT_MAP,
	 SC_APP,
	 false,
	 {{"familyId", KAA_RF_INT, OFF(family_id), KAA_RF_CREATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"classes", KAA_RF_JSON, OFF(body),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ}}},
	{"user-verifiers",
	 "verifier",
	 KAA_META_USER_VERIFIER,
	 SC_APP,
	 false,
	 {{"name", KAA_RF_STR, OFF(name),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ},
	  {"settings", KAA_RF_JSON, OFF(body),
	   KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED | KAA_RF_READ | KAA_RF_SECRET}}},
};
#define N_RESOURCES (sizeof(resources) / sizeof(resources[0]))

/* Routes: ids encode resource index * 4 + operation. */
enum { OP_LIST, OP_CREATE, OP_GET, OP_PUT, OP_DELETE };
#define ROUTE_ID(r, op) ((int)(r)*8 + (op))
#define ROUTE_ME 1000
#define ROUTE_SDK 1001
#define ROUTE_RESOLVE 1002
#define ROUTE_NODES 1003
#define ROUTE_DRAIN_PUT 1004
#define ROUTE_DRAIN_DELETE 1005

static kaa__route routes[N_RESOURCES * 5 + 6];
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
	routes[n_routes++] = (kaa__route){"GET", "/api/v1/me", ROUTE_ME};
	routes[n_routes++] = (kaa__route){
		"GET", "/api/v1/applications/{app}/sdk-profiles/{profile}/sdk", ROUTE_SDK};
	routes[n_routes++] = (kaa__route){
		"POST", "/api/v1/applications/{app}/resolve-configuration", ROUTE_RESOLVE};
	routes[n_routes++] = (kaa__route){"GET", "/api/v1/nodes", ROUTE_NODES};
	routes[n_routes++] = (kaa__route){"PUT", "/api/v1/nodes/{node}/drain", ROUTE_DRAIN_PUT};
	routes[n_routes++] =
		(kaa__route){"DELETE", "/api/v1/nodes/{node}/drain", ROUTE_DRAIN_DELETE};
}

const kaa__route *kaa__control_routes(size_t *n)
{
	pthread_once(&routes_once, build_routes);
	*n = n_routes;
	return routes;
}

/* ---- JSON output ------------------------------------------------------------ */

static void gen_key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

static void gen_raw_json(yajl_gen g, const char *json, bool redact)
{
	yajl_val v = NULL;
	char err[64];
	if (json && kaa__json_parse(json, strlen(json), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &v,
				    err, sizeof(err)) == KAA_OK) {
		/* Write-only secrets: swap the string for the mask while
		 * generating, and back before the tree is freed. */
		static char mask[] = "********";
		yajl_val secret = NULL;
		char *saved = NULL;
		for (size_t i = 0; redact && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++)
			if (strcmp(v->u.object.keys[i], "secret") == 0 &&
			    YAJL_IS_STRING(v->u.object.values[i]))
				secret = v->u.object.values[i];
		if (secret) {
			saved = secret->u.string;
			secret->u.string = mask;
		}
		kaa__json_gen_canonical(g, v);
		if (secret)
			secret->u.string = saved;
		yajl_tree_free(v);
	} else {
		yajl_gen_null(g);
	}
}

static void gen_obj(yajl_gen g, const resource *r, const kaa__meta_obj *o)
{
	yajl_gen_map_open(g);
	gen_key(g, "id");
	yajl_gen_integer(g, o->id);
	gen_key(g, "version");
	yajl_gen_integer(g, o->version);
	if (r->scope == SC_APP) {
		gen_key(g, "applicationId");
		yajl_gen_integer(g, o->app_id);
	}
	if (r->kind != KAA_META_TENANT && r->scope != SC_SELF) {
		gen_key(g, "tenantId");
		yajl_gen_integer(g, o->tenant_id);
	}
	gen_key(g, "createdAt");
	yajl_gen_integer(g, o->created_ms);
	gen_key(g, "updatedAt");
	yajl_gen_integer(g, o->updated_ms);
	for (const kaa__rest_field *f = r->fields; f->json; f++) {
		if (!(f->flags & KAA_RF_READ))
			continue;
		const char *base = (const char *)o;
		gen_key(g, f->json);
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
			gen_raw_json(g, *(char *const *)(base + f->off), f->flags & KAA_RF_SECRET);
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

static void respond_gen(kaa__http_response *resp, int status, yajl_gen g)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	kaa__http_respond(resp, status, "application/json", buf, len);
}

static void respond_obj(kaa__http_response *resp, int status, const resource *r,
			const kaa__meta_obj *o, const char *extra_key, const char *extra_val)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	char etag[32];
	if (extra_key) {
		/* One-time secrets (a new API token) ride beside the object. */
		yajl_gen_map_open(g);
		gen_key(g, extra_key);
		gen_key(g, extra_val);
		gen_key(g, "object");
	}
	gen_obj(g, r, o);
	if (extra_key)
		yajl_gen_map_close(g);
	respond_gen(resp, status, g);
	yajl_gen_free(g);
	snprintf(etag, sizeof(etag), "\"%" PRId64 "\"", o->version);
	kaa__http_response_add_header(resp, "ETag", etag);
}

/* ---- principal ------------------------------------------------------------- */

typedef struct principal {
	int64_t user_id;
	int64_t tenant_id;
	kaa__role role;
	char name[KAA_META_NAME_MAX + 1];
} principal;

static bool b64_decode(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);
	if (n == 0 || n % 4 || cap == 0)
		return false;
	long w = kaa__b64_decode(in, n, out, cap - 1, 0);
	if (w < 0 || memchr(out, '\0', (size_t)w))
		return false;
	out[w] = '\0';
	return true;
}

/* 0 on success, else the HTTP status to answer (401). */
static int authenticate(kaa__control *c, const kaa__http_request *req, principal *p)
{
	const char *h = kaa__http_header(req, "authorization");
	kaa__meta_obj user = {0}, tok = {0};
	int rc;

	memset(p, 0, sizeof(*p));
	if (!h)
		return 401;
	if (strncasecmp(h, "Basic ", 6) == 0) {
		char cred[768];
		if (!b64_decode(h + 6, cred, sizeof(cred)))
			return 401;
		char *colon = strchr(cred, ':');
		if (!colon)
			return 401;
		*colon = '\0';
		rc = kaa__meta_find_name(c->store, KAA_META_USER, 0, cred, &user);
		if (rc == KAA_OK && user.password_hash &&
		    verify_password_cached(c, colon + 1, user.password_hash))
			goto ok;
		if (rc != KAA_OK && rc != KAA_ERR_NOTFOUND && rc != KAA_ERR_INVAL)
			rc = 503;
		else
			rc = 401;
		kaa__meta_obj_clear(&user);
		return rc;
	}
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		char hex[65];
		const char *t = h + 7;
		if (strlen(t) > 256)
			return 401;
		kaa__sha256_hex(t, strlen(t), hex);
		rc = kaa__meta_find_token(c->store, hex, &tok);
		if (rc != KAA_OK)
			return rc == KAA_ERR_NOTFOUND ? 401 : 503;
		rc = kaa__meta_get(c->store, KAA_META_USER, tok.user_id, &user);
		kaa__meta_obj_clear(&tok);
		if (rc == KAA_OK)
			goto ok;
		return 401;
	}
	return 401;
ok:
	p->user_id = user.id;
	p->tenant_id = user.tenant_id;
	p->role = kaa__role_parse(user.role ? user.role : "");
	snprintf(p->name, sizeof(p->name), "%s", user.name ? user.name : "");
	kaa__meta_obj_clear(&user);
	return p->role == KAA_ROLE_NONE ? 401 : 0;
}

/* ---- request bodies ------------------------------------------------------------ */

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
		json_error(resp, 415, "unsupported_media_type",
			   "send Content-Type: application/json", NULL);
		return -1;
	}
	if (kaa__rest_parse_body(req->body, req->body_len, r->fields, flag, o, b, &e) != 0) {
		json_error(resp, e.status, e.code, e.message, e.path[0] ? e.path : NULL);
		return -1;
	}
	return 0;
}

/* ---- semantic validation of payloads ----------------------------------------- */

/* The highest version of the application's schemas of one kind (0: none). */
static int latest_schema_version(kaa__control *c, int64_t app_id, const char *kind,
				 int64_t *version)
{
	kaa__meta_query q = {.parent_id = app_id, .schema_kind = kind, .limit = KAA_META_LIMIT_MAX};
	kaa__meta_page pg;
	int rc = kaa__meta_list(c->store, KAA_META_SCHEMA, &q, &pg);
	*version = 0;
	if (rc != KAA_OK)
		return rc;
	for (size_t i = 0; i < pg.n; i++)
		if (pg.items[i].schema_version > *version)
			*version = pg.items[i].schema_version;
	kaa__meta_page_clear(&pg);
	return KAA_OK;
}

static int validate_against(kaa__control *c, int64_t app_id, const char *kind, int64_t version,
			    const char *doc, kaa__http_response *resp, const char *field_name)
{
	kaa__meta_obj sch = {0};
	kaa__avro_schema *s = NULL;
	char err[300];
	int rc;

	if (version == 0) {
		rc = latest_schema_version(c, app_id, kind, &version);
		if (rc != KAA_OK) {
			store_error(resp, rc);
			return -1;
		}
		if (version == 0)
			return 0; /* no schema of this kind: payloads are free-form JSON */
	}
	rc = kaa__meta_find_schema(c->store, app_id, kind, version, &sch);
	if (rc == KAA_ERR_NOTFOUND) {
		snprintf(err, sizeof(err), "the application has no %s schema version %" PRId64,
			 kind, version);
		json_error(resp, 400, "unknown_schema", err, "$.schemaVersion");
		return -1;
	}
	if (rc != KAA_OK) {
		store_error(resp, rc);
		return -1;
	}
	rc = kaa__avro_schema_parse(sch.body, strlen(sch.body), &s, err, sizeof(err));
	kaa__meta_obj_clear(&sch);
	if (rc != KAA_OK) {
		json_error(resp, 500, "internal", "stored schema does not parse", NULL);
		return -1;
	}
	rc = kaa__avro_validate(s, doc, strlen(doc), err, sizeof(err));
	kaa__avro_schema_free(s);
	if (rc != KAA_OK) {
		/* Report the path inside the request body: "$.x: why" from the
		 * validator becomes path "$.body.x", message "why". */
		char msg[400], path[400];
		const char *sep = strstr(err, ": ");
		if (sep && err[0] == '$') {
			snprintf(path, sizeof(path), "$.%s%.*s", field_name, (int)(sep - err - 1),
				 err + 1);
			snprintf(msg, sizeof(msg), "does not match the %s schema: %s", kind,
				 sep + 2);
		} else {
			snprintf(path, sizeof(path), "$.%s", field_name);
			snprintf(msg, sizeof(msg), "does not match the %s schema: %s", kind, err);
		}
		json_error(resp, 400, "schema_mismatch", msg, path);
		return -1;
	}
	return 0;
}

/* ---- events and owner verifiers --------------------------------------------- */

#define EVENT_CLASSES_MAX 100

/* A dotted Java-style name: segments of [A-Za-z_][A-Za-z0-9_]*. */
static bool fqn_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	bool start = true;
	for (const char *p = s; *p; p++) {
		char ch = *p;
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (ch == '.') {
			if (start)
				return false;
			start = true;
		} else if (alpha || (digit && !start)) {
			start = false;
		} else {
			return false;
		}
	}
	return !start;
}

/* classes: [{"fqn": "a.b.C", "schema": <Avro record>}, ...], 1..100, fqns unique. */
static int validate_family(const char *body, kaa__http_response *resp)
{
	char err[300], path[64];
	yajl_val v = NULL;
	int ret = -1;
	if (kaa__json_parse(body, strlen(body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &v, err,
			    sizeof(err)) != KAA_OK)
		goto bad_shape;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0 || v->u.array.len > EVENT_CLASSES_MAX)
		goto bad_shape;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val cl = v->u.array.values[i], fqn = kaa__json_member(cl, "fqn"),
			 sch = kaa__json_member(cl, "schema");
		snprintf(path, sizeof(path), "$.classes[%zu]", i);
		if (!YAJL_IS_OBJECT(cl) || cl->u.object.len != 2 || !sch) {
			json_error(resp, 400, "invalid",
				   "an event class is {\"fqn\": name, \"schema\": Avro record}",
				   path);
			goto out;
		}
		snprintf(path, sizeof(path), "$.classes[%zu].fqn", i);
		if (!YAJL_IS_STRING(fqn) || !fqn_valid(fqn->u.string)) {
			json_error(resp, 400, "invalid",
				   "fqn must be a dotted name such as org.example.Temperature",
				   path);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			yajl_val prev = kaa__json_member(v->u.array.values[j], "fqn");
			if (strcmp(prev->u.string, fqn->u.string) == 0) {
				json_error(resp, 400, "invalid", "duplicate event class fqn", path);
				goto out;
			}
		}
		char *text = NULL;
		size_t tlen = 0;
		kaa__avro_schema *as = NULL;
		if (kaa__json_canonical_tree(sch, &text, &tlen) != KAA_OK)
			kaa__oom();
		int rc = kaa__avro_schema_parse(text, tlen, &as, err, sizeof(err));
		free(text);
		if (rc != KAA_OK) {
			snprintf(path, sizeof(path), "$.classes[%zu].schema", i);
			json_error(resp, 400, "invalid_schema", err, path);
			goto out;
		}
		kaa__avro_schema_free(as);
	}
	ret = 0;
	goto out;
bad_shape:
	json_error(resp, 400, "invalid", "classes must be an array of 1..100 event classes",
		   "$.classes");
out:
	yajl_tree_free(v);
	return ret;
}

/* classes: {"<fqn of the family>": "source" | "sink" | "both", ...}, non-empty;
 * the family must belong to the application's tenant. */
static int validate_event_map(kaa__control *c, const kaa__meta_obj *o, int64_t app_id,
			      kaa__http_response *resp)
{
	kaa__meta_obj app = {0}, fam = {0};
	yajl_val fv = NULL, mv = NULL;
	char err[128], path[300];
	int ret = -1;
	int rc = kaa__meta_get(c->store, KAA_META_APPLICATION, app_id, &app);
	if (rc == KAA_OK)
		rc = kaa__meta_get(c->store, KAA_META_EVENT_FAMILY, o->family_id, &fam);
	if (rc == KAA_ERR_NOTFOUND || (rc == KAA_OK && fam.tenant_id != app.tenant_id)) {
		json_error(resp, 400, "invalid", "no such event family in this tenant",
			   "$.familyId");
		goto out;
	}
	if (rc != KAA_OK) {
		store_error(resp, rc);
		goto out;
	}
	if (!o->body)
		goto ok; /* update without classes: unchanged */
	if (kaa__json_parse(fam.body, strlen(fam.body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &fv,
			    err, sizeof(err)) != KAA_OK ||
	    kaa__json_parse(o->body, strlen(o->body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &mv,
			    err, sizeof(err)) != KAA_OK ||
	    !YAJL_IS_OBJECT(mv) || mv->u.object.len == 0) {
		json_error(resp, 400, "invalid",
			   "classes must map event class fqns to source, sink or both",
			   "$.classes");
		goto out;
	}
	for (size_t i = 0; i < mv->u.object.len; i++) {
		const char *fqn = mv->u.object.keys[i];
		yajl_val role = mv->u.object.values[i];
		bool known = false;
		for (size_t j = 0; YAJL_IS_ARRAY(fv) && j < fv->u.array.len && !known; j++) {
			yajl_val f = kaa__json_member(fv->u.array.values[j], "fqn");
			known = YAJL_IS_STRING(f) && strcmp(f->u.string, fqn) == 0;
		}
		snprintf(path, sizeof(path), "$.classes.%.250s", fqn);
		if (!known) {
			json_error(resp, 400, "invalid", "the event family has no such class",
				   path);
			goto out;
		}
		if (!YAJL_IS_STRING(role) ||
		    (strcmp(role->u.string, "source") != 0 && strcmp(role->u.string, "sink") != 0 &&
		     strcmp(role->u.string, "both") != 0)) {
			json_error(resp, 400, "invalid", "role must be source, sink or both", path);
			goto out;
		}
	}
ok:
	ret = 0;
out:
	yajl_tree_free(fv);
	yajl_tree_free(mv);
	kaa__meta_obj_clear(&app);
	kaa__meta_obj_clear(&fam);
	return ret;
}

/* settings: {"type": "trustful"} or {"type": "jwt-hs256", "secret": 32..4096
 * bytes, optional "issuer", "audience" (strings) and "leewaySeconds" 0..600}. */
static int validate_verifier(const char *body, kaa__http_response *resp)
{
	char err[128];
	yajl_val v = NULL;
	int ret = -1;
	if (kaa__json_parse(body, strlen(body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &v, err,
			    sizeof(err)) != KAA_OK ||
	    !YAJL_IS_OBJECT(v)) {
		json_error(resp, 400, "invalid", "settings must be an object", "$.settings");
		goto out;
	}
	yajl_val type = kaa__json_member(v, "type");
	bool jwt = YAJL_IS_STRING(type) && strcmp(type->u.string, "jwt-hs256") == 0;
	bool trustful = YAJL_IS_STRING(type) && strcmp(type->u.string, "trustful") == 0;
	if (!jwt && !trustful) {
		json_error(resp, 400, "invalid", "type must be trustful or jwt-hs256",
			   "$.settings.type");
		goto out;
	}
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val x = v->u.object.values[i];
		char path[128];
		snprintf(path, sizeof(path), "$.settings.%.100s", k);
		if (strcmp(k, "type") == 0)
			continue;
		if (!jwt) {
			json_error(resp, 400, "invalid", "a trustful verifier takes no settings",
				   path);
			goto out;
		}
		if (strcmp(k, "secret") == 0) {
			size_t n = YAJL_IS_STRING(x) ? strlen(x->u.string) : 0;
			if (n < 32 || n > 4096) {
				json_error(resp, 400, "invalid",
					   "secret must be a string of 32..4096 bytes", path);
				goto out;
			}
		} else if (strcmp(k, "issuer") == 0 || strcmp(k, "audience") == 0) {
			if (!YAJL_IS_STRING(x) || !*x->u.string || strlen(x->u.string) > 1024) {
				json_error(resp, 400, "invalid", "must be a non-empty string",
					   path);
				goto out;
			}
		} else if (strcmp(k, "leewaySeconds") == 0) {
			int64_t n;
			if (!kaa__json_int64(x, &n) || n < 0 || n > 600) {
				json_error(resp, 400, "invalid", "must be an integer 0..600", path);
				goto out;
			}
		} else {
			json_error(resp, 400, "invalid", "unknown setting", path);
			goto out;
		}
	}
	if (jwt && !YAJL_IS_STRING(kaa__json_member(v, "secret"))) {
		json_error(resp, 400, "invalid", "a jwt-hs256 verifier needs a secret",
			   "$.settings.secret");
		goto out;
	}
	ret = 0;
out:
	yajl_tree_free(v);
	return ret;
}

static int validate_obj(kaa__control *c, const resource *r, kaa__meta_obj *o, int64_t app_id,
			kaa__http_response *resp)
{
	char err[300];
	switch (r->kind) {
	case KAA_META_USER:
		if (o->role && kaa__role_parse(o->role) == KAA_ROLE_NONE) {
			json_error(resp, 400, "invalid",
				   "role must be tenant-admin, tenant-developer or tenant-user",
				   "$.role");
			return -1;
		}
		return 0;
	case KAA_META_SCHEMA: {
		static const char *kinds[] = {"profile-client", "profile-server", "configuration",
					      "notification", "log"};
		bool ok = false;
		for (size_t i = 0; i < 5; i++)
			ok |= strcmp(o->schema_kind, kinds[i]) == 0;
		if (!ok) {
			json_error(resp, 400, "invalid",
				   "kind must be profile-client, profile-server, configuration, "
				   "notification or log",
				   "$.kind");
			return -1;
		}
		kaa__avro_schema *s = NULL;
		if (kaa__avro_schema_parse(o->body, strlen(o->body), &s, err, sizeof(err)) !=
		    KAA_OK) {
			char path[300];
			const char *sep = strstr(err, ": ");
			if (sep) {
				snprintf(path, sizeof(path), "$.schema%s%.*s",
					 err[0] == '$' || err[0] == '[' ? "" : ".",
					 (int)(sep - err) - (err[0] == '$'), err + (err[0] == '$'));
				json_error(resp, 400, "invalid_schema", sep + 2, path);
			} else {
				json_error(resp, 400, "invalid_schema", err, "$.schema");
			}
			return -1;
		}
		kaa__avro_schema_free(s);
		return 0;
	}
	case KAA_META_GROUP: {
		if (!o->body)
			return 0;
		kaa__filter *f = NULL;
		if (kaa__filter_compile(o->body, strlen(o->body), &f, err, sizeof(err)) != KAA_OK) {
			const char *sep = strstr(err, ": ");
			char path[300];
			snprintf(path, sizeof(path), "$.filter%.*s", sep ? (int)(sep - err) - 1 : 0,
				 sep ? err + 1 : "");
			json_error(resp, 400, "invalid_filter", sep ? sep + 2 : err, path);
			return -1;
		}
		kaa__filter_free(f);
		return 0;
	}
	case KAA_META_CONFIGURATION:
		if (!o->body)
			return 0;
		return validate_against(c, app_id, "configuration", o->schema_version, o->body,
					resp, "body");
	case KAA_META_NOTIFICATION:
		return validate_against(c, app_id, "notification", 0, o->body, resp, "body");
	case KAA_META_LOG_APPENDER: {
		if (!o->body || kaa__log_appender_check(o->body, err, sizeof(err)) == KAA_OK)
			return 0;
		/* "settings.file: why" -> path $.settings.file, message why */
		const char *sep = strstr(err, ": ");
		char path[128];
		snprintf(path, sizeof(path), "$.%.*s", sep ? (int)(sep - err) : 8,
			 sep ? err : "settings");
		json_error(resp, 400, "invalid", sep ? sep + 2 : err, path);
		return -1;
	}
	case KAA_META_EVENT_FAMILY: return validate_family(o->body, resp);
	case KAA_META_EVENT_MAP: return validate_event_map(c, o, app_id, resp);
	case KAA_META_USER_VERIFIER: return o->body ? validate_verifier(o->body, resp) : 0;
	default: return 0;
	}
}

/* ---- change publication --------------------------------------------------------- */

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

/* ---- the handler --------------------------------------------------------------- */

static int64_t parse_id(const char *s)
{
	char *end;
	if (!s || !*s || strlen(s) > 18)
		return -1;
	long long v = strtoll(s, &end, 10);
	return *end || v < 1 ? -1 : (int64_t)v;
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
		json_error(resp, 428, "precondition_required",
			   "send If-Match with the ETag you read, so concurrent edits are not lost",
			   NULL);
		return -1;
	}
	bool quoted = h[0] == '"';
	char *end;
	long long v = strtoll(h + quoted, &end, 10);
	if (end == h + quoted || v < 1 || (quoted && *end++ != '"') || *end != '\0') {
		json_error(resp, 400, "invalid", "If-Match must be an ETag from this API", NULL);
		return -1;
	}
	*want = v;
	return 0;
}

static void handle_me(const principal *p, kaa__http_response *resp)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	gen_key(g, "id");
	yajl_gen_integer(g, p->user_id);
	gen_key(g, "name");
	gen_key(g, p->name);
	gen_key(g, "role");
	gen_key(g, kaa__role_name(p->role));
	gen_key(g, "tenantId");
	yajl_gen_integer(g, p->tenant_id);
	yajl_gen_map_close(g);
	respond_gen(resp, 200, g);
	yajl_gen_free(g);
}

/* GET .../sdk-profiles/{profile}/sdk: a tar with the generated kaa_profile.h. */
static void handle_sdk(kaa__control *c, const principal *p, const kaa__route_params *params,
		       kaa__http_response *resp)
{
	kaa__meta_obj app = {0}, prof = {0}, sch = {0};
	kaa__avro_schema *schema = NULL;
	char *header = NULL, *tar = NULL, *defcfg = NULL;
	size_t hlen = 0, tlen = 0, dlen = 0;
	char err[KAA_JSON_ERR_SIZE];
	int64_t app_id = parse_id(kaa__route_param(params, "app"));
	int64_t id = parse_id(kaa__route_param(params, "profile"));
	int rc = app_id < 0 || id < 0 ? KAA_ERR_NOTFOUND
				      : kaa__meta_get(c->store, KAA_META_APPLICATION, app_id, &app);
	if (rc == KAA_OK && p->role != KAA_ROLE_PLATFORM_ADMIN && app.tenant_id != p->tenant_id)
		rc = KAA_ERR_NOTFOUND;
	if (rc == KAA_OK && !kaa__role_allows(p->role, KAA_ACT_READ, KAA_META_SDK_PROFILE)) {
		json_error(resp, 403, "forbidden", "your role may not do this", NULL);
		goto out;
	}
	if (rc == KAA_OK)
		rc = kaa__meta_get(c->store, KAA_META_SDK_PROFILE, id, &prof);
	if (rc == KAA_OK && prof.app_id != app_id)
		rc = KAA_ERR_NOTFOUND;
	if (rc != KAA_OK) {
		store_error(resp, rc);
		goto out;
	}
	/* The default configuration comes from the configuration schema version
	 * the profile names, when it names one. */
	yajl_val vers = NULL;
	int64_t cfg_ver = 0;
	if (kaa__json_parse(prof.body, strlen(prof.body), 65536, 8, &vers, err, sizeof(err)) ==
		    KAA_OK &&
	    YAJL_IS_OBJECT(vers)) {
		for (size_t i = 0; i < vers->u.object.len; i++)
			if (strcmp(vers->u.object.keys[i], "configuration") == 0)
				kaa__json_int64(vers->u.object.values[i], &cfg_ver);
	}
	yajl_tree_free(vers);
	if (cfg_ver > 0) {
		rc = kaa__meta_find_schema(c->store, app_id, "configuration", cfg_ver, &sch);
		if (rc == KAA_ERR_NOTFOUND) {
			json_error(resp, 409, "unknown_schema",
				   "the profile names a configuration schema version that does not "
				   "exist",
				   NULL);
			goto out;
		}
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		if (kaa__avro_schema_parse(sch.body, strlen(sch.body), &schema, err, sizeof(err)) !=
			    KAA_OK ||
		    kaa__avro_default_document(schema, &defcfg, &dlen, err, sizeof(err)) !=
			    KAA_OK) {
			json_error(resp, 409, "no_default_configuration", err, NULL);
			goto out;
		}
	}
	kaa__sdk_profile_info info = {.profile_id = prof.id,
				      .profile_name = prof.name,
				      .app_token = app.app_token,
				      .bootstrap_json = prof.bootstrap,
				      .schema_versions_json = prof.body,
				      .default_config_json = defcfg};
	if (kaa__sdk_profile_header(&info, &header, &hlen, err, sizeof(err)) != KAA_OK) {
		json_error(resp, 409, "invalid_profile", err, NULL);
		goto out;
	}
	if (kaa__tar_single("kaa_profile.h", header, hlen, kaa__wall_ms() / 1000, &tar, &tlen) !=
	    KAA_OK) {
		json_error(resp, 500, "internal", "cannot build the archive", NULL);
		goto out;
	}
	resp->status = 200;
	resp->content_type = "application/x-tar";
	resp->body = tar;
	resp->body_len = tlen;
	tar = NULL;
	kaa__http_response_add_header(resp, "Content-Disposition",
				      "attachment; filename=\"kaa-sdk.tar\"");
out:
	free(tar);
	free(header);
	free(defcfg);
	kaa__avro_schema_free(schema);
	kaa__meta_obj_clear(&app);
	kaa__meta_obj_clear(&prof);
	kaa__meta_obj_clear(&sch);
}

/* POST .../resolve-configuration: which groups an endpoint with the given
 * profiles falls into, and the configuration it gets (the groups'
 * configurations for one schema version merged by weight, and its hash) -
 * what an operations node delivers. */
static void handle_resolve(kaa__control *c, const principal *p, const kaa__route_params *params,
			   const kaa__http_request *req, kaa__http_response *resp)
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
	kaa__meta_page groups = {0};
	kaa__filter_ctx ctx = {0};
	yajl_val cp = NULL, sp = NULL;
	kaa__config_part *parts = NULL;
	kaa__meta_obj *cfgs = NULL;
	int64_t *matched = NULL;
	size_t n_matched = 0;
	char *merged = NULL, hash[KAA_SHA256_HEX_SIZE], err[KAA_JSON_ERR_SIZE];
	int64_t app_id = parse_id(kaa__route_param(params, "app"));
	int rc = app_id < 0 ? KAA_ERR_NOTFOUND
			    : kaa__meta_get(c->store, KAA_META_APPLICATION, app_id, &app);
	if (rc == KAA_OK && p->role != KAA_ROLE_PLATFORM_ADMIN && app.tenant_id != p->tenant_id)
		rc = KAA_ERR_NOTFOUND;
	if (rc != KAA_OK) {
		store_error(resp, rc);
		goto out;
	}
	if (!kaa__role_allows(p->role, KAA_ACT_READ, KAA_META_CONFIGURATION)) {
		json_error(resp, 403, "forbidden", "your role may not do this", NULL);
		goto out;
	}
	const char *ct = kaa__http_header(req, "content-type");
	if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
		json_error(resp, 415, "unsupported_media_type",
			   "send Content-Type: application/json", NULL);
		goto out;
	}
	kaa__rest_error e;
	if (kaa__rest_parse_body(req->body, req->body_len, fields, KAA_RF_CREATE, &in, &body, &e) !=
	    0) {
		json_error(resp, e.status, e.code, e.message, e.path[0] ? e.path : NULL);
		goto out;
	}
	if ((in.body && kaa__json_parse(in.body, strlen(in.body), KAA_META_BODY_MAX,
					KAA_JSON_MAX_DEPTH, &cp, err, sizeof(err)) != KAA_OK) ||
	    (in.bootstrap &&
	     kaa__json_parse(in.bootstrap, strlen(in.bootstrap), KAA_META_BODY_MAX,
			     KAA_JSON_MAX_DEPTH, &sp, err, sizeof(err)) != KAA_OK)) {
		json_error(resp, 400, "invalid", "profile is not JSON", NULL);
		goto out;
	}
	ctx.cp = cp;
	ctx.sp = sp;
	ctx.ekh = in.endpoint_key_hash;
	/* Schema version: given, else the latest configuration schema. */
	int64_t version = in.schema_version;
	if (version == 0) {
		rc = latest_schema_version(c, app_id, "configuration", &version);
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
	}
	kaa__meta_query gq = {.parent_id = app_id, .limit = KAA_META_LIMIT_MAX};
	rc = kaa__meta_list(c->store, KAA_META_GROUP, &gq, &groups);
	if (rc != KAA_OK) {
		store_error(resp, rc);
		goto out;
	}
	matched = calloc(groups.n + 1, sizeof(*matched));
	parts = calloc(groups.n + 1, sizeof(*parts));
	cfgs = calloc(groups.n + 1, sizeof(*cfgs));
	if (!matched || !parts || !cfgs)
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
		matched[n_matched++] = g->id;
		kaa__meta_query cq = {
			.parent_id = app_id, .ref_id = g->id, .limit = KAA_META_LIMIT_MAX};
		kaa__meta_page cp_page;
		rc = kaa__meta_list(c->store, KAA_META_CONFIGURATION, &cq, &cp_page);
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
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
	if (kaa__config_merge(parts, n_parts, &merged, &mlen, hash, err, sizeof(err)) != KAA_OK) {
		json_error(resp, 500, "internal", err, NULL);
		goto out;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	gen_key(g, "schemaVersion");
	yajl_gen_integer(g, version);
	gen_key(g, "groupIds");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n_matched; i++)
		yajl_gen_integer(g, matched[i]);
	yajl_gen_array_close(g);
	gen_key(g, "configuration");
	gen_raw_json(g, merged, false);
	gen_key(g, "hash");
	gen_key(g, hash);
	yajl_gen_map_close(g);
	respond_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	if (cfgs)
		for (size_t i = 0; i < groups.n; i++)
			kaa__meta_obj_clear(&cfgs[i]);
	free(cfgs);
	free(parts);
	free(matched);
	free(merged);
	yajl_tree_free(cp);
	yajl_tree_free(sp);
	kaa__meta_page_clear(&groups);
	kaa__rest_body_free(&body);
	kaa__meta_obj_clear(&app);
}

/* ---- cluster nodes and drain (platform admins) ------------------------------------------ */

#define DRAIN_TIMEOUT_DEFAULT_S 30
#define DRAIN_TIMEOUT_MAX_S 86400

static void gen_str(yajl_gen g, const char *k, const char *v)
{
	gen_key(g, k);
	if (v)
		gen_key(g, v);
	else
		yajl_gen_null(g);
}

/* The registry records (and which nodes have a drain key), read from etcd. */
static void handle_nodes(kaa__control *c, kaa__http_response *resp)
{
	char prefix[256], dprefix[256];
	kaa__kv_list l = {0}, d = {0};
	kaa__key_nodes(prefix, sizeof(prefix), c->cluster);
	kaa__key_drains(dprefix, sizeof(dprefix), c->cluster);
	if (kaa__coord_range(c->coord, prefix, true, &l) != KAA_OK ||
	    kaa__coord_range(c->coord, dprefix, true, &d) != KAA_OK) {
		json_error(resp, 503, "unavailable", "the coordination store is unreachable", NULL);
		goto out;
	}
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	gen_key(g, "items");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < l.n; i++) {
		kaa__node_record r = {0};
		if (kaa__node_record_decode(l.items[i].value, l.items[i].value_len, &r) != KAA_OK)
			continue;
		bool drain_key = false;
		for (size_t k = 0; k < d.n && !drain_key; k++)
			drain_key = strcmp(d.items[k].key + strlen(dprefix), r.id) == 0;
		yajl_gen_map_open(g);
		gen_str(g, "id", r.id);
		gen_str(g, "host", r.host);
		gen_key(g, "services");
		yajl_gen_array_open(g);
		for (size_t k = 0; k < r.n_services; k++)
			gen_key(g, r.services[k]);
		yajl_gen_array_close(g);
		gen_key(g, "ports");
		yajl_gen_map_open(g);
		for (size_t k = 0; k < r.n_ports; k++) {
			gen_key(g, r.ports[k].name);
			yajl_gen_integer(g, r.ports[k].port);
		}
		yajl_gen_map_close(g);
		gen_key(g, "sessions");
		yajl_gen_integer(g, r.sessions);
		gen_key(g, "load");
		yajl_gen_double(g, r.load);
		gen_key(g, "draining");
		yajl_gen_bool(g, r.draining);
		gen_key(g, "drainRequested");
		yajl_gen_bool(g, drain_key);
		gen_str(g, "version", r.version);
		yajl_gen_map_close(g);
		kaa__node_record_clear(&r);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	respond_gen(resp, 200, g);
	yajl_gen_free(g);
out:
	kaa__kv_list_clear(&l);
	kaa__kv_list_clear(&d);
}

/* PUT: {"timeoutSeconds": N} (optional, 1..86400, default 30) puts
 * drain/<node> {"deadline_ms"} (the node's drain watch acts on it); the node
 * must be registered. DELETE removes the key (cancels a drain in progress). */
static void handle_drain(kaa__control *c, const kaa__route_params *params,
			 const kaa__http_request *req, kaa__http_response *resp, bool put)
{
	const char *node = kaa__route_param(params, "node");
	char key[512], nkey[512], val[64], err[KAA_JSON_ERR_SIZE];
	yajl_val v = NULL;
	kaa__kv_list l = {0};
	int64_t timeout_s = DRAIN_TIMEOUT_DEFAULT_S, deleted = 0;
	kaa__key_drain(key, sizeof(key), c->cluster, node);
	kaa__key_node(nkey, sizeof(nkey), c->cluster, node);
	if (!put) {
		if (kaa__coord_delete(c->coord, key, false, &deleted) != KAA_OK) {
			json_error(resp, 503, "unavailable",
				   "the coordination store is unreachable", NULL);
			return;
		}
		if (!deleted)
			json_error(resp, 404, "not_found", "no drain requested for this node",
				   NULL);
		else
			kaa__http_respond(resp, 204, NULL, NULL, 0);
		return;
	}
	if (req->body_len) {
		const char *ct = kaa__http_header(req, "content-type");
		if (!ct || strncasecmp(ct, "application/json", 16) != 0) {
			json_error(resp, 415, "unsupported_media_type",
				   "send Content-Type: application/json", NULL);
			return;
		}
		if (kaa__json_parse(req->body, req->body_len, 4096, 4, &v, err, sizeof(err)) !=
			    KAA_OK ||
		    !YAJL_IS_OBJECT(v)) {
			json_error(resp, 400, "invalid", "the body must be a JSON object", NULL);
			goto out;
		}
		for (size_t i = 0; i < v->u.object.len; i++) {
			yajl_val t = v->u.object.values[i];
			if (strcmp(v->u.object.keys[i], "timeoutSeconds") != 0) {
				json_error(resp, 400, "unknown_field", "unknown field", NULL);
				goto out;
			}
			if (!YAJL_IS_INTEGER(t) || YAJL_GET_INTEGER(t) < 1 ||
			    YAJL_GET_INTEGER(t) > DRAIN_TIMEOUT_MAX_S) {
				json_error(resp, 400, "invalid",
					   "timeoutSeconds must be an integer 1..86400",
					   "$.timeoutSeconds");
				goto out;
			}
			timeout_s = YAJL_GET_INTEGER(t);
		}
	}
	if (kaa__coord_range(c->coord, nkey, false, &l) != KAA_OK) {
		json_error(resp, 503, "unavailable", "the coordination store is unreachable", NULL);
		goto out;
	}
	if (l.n == 0) {
		json_error(resp, 404, "not_found", "no such node in the registry", NULL);
		goto out;
	}
	int64_t deadline = kaa__wall_ms() + timeout_s * 1000;
	int n = snprintf(val, sizeof(val), "{\"deadline_ms\":%" PRId64 "}", deadline);
	if (kaa__coord_put(c->coord, key, val, (size_t)n, 0, NULL) != KAA_OK) {
		json_error(resp, 503, "unavailable", "the coordination store is unreachable", NULL);
		goto out;
	}
	KAA_INFO("control", "drain_requested node=%s deadline_ms=%" PRId64, node, deadline);
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	gen_str(g, "node", node);
	gen_key(g, "deadlineMs");
	yajl_gen_integer(g, deadline);
	yajl_gen_map_close(g);
	respond_gen(resp, 202, g);
	yajl_gen_free(g);
out:
	yajl_tree_free(v);
	kaa__kv_list_clear(&l);
}

void kaa__control_handle(kaa__control *c, const kaa__http_request *req, kaa__http_response *resp)
{
	const kaa__route *route;
	kaa__route_params params;
	principal p;
	char allow[64];
	size_t nr;
	const kaa__route *table = kaa__control_routes(&nr);
	kaa__meta_obj parent = {0}, obj = {0}, in = {0}, out = {0};
	kaa__meta_change chg = {0};
	kaa__rest_body body = {0};
	int rc;

	int m = kaa__route_match(table, nr, req->method, req->path, &route, &params, allow,
				 sizeof(allow));
	if (m == KAA_ROUTE_NO_PATH) {
		json_error(resp, 404, "not_found", "no such route", NULL);
		return;
	}
	int st = authenticate(c, req, &p);
	if (st != 0) {
		if (st == 401)
			kaa__http_response_add_header(resp, "WWW-Authenticate",
						      "Basic realm=\"kaa\"");
		json_error(resp, st, st == 401 ? "unauthorized" : "unavailable",
			   st == 401 ? "valid credentials required" : "metadata store unavailable",
			   NULL);
		return;
	}
	if (m == KAA_ROUTE_NO_METHOD) {
		kaa__http_response_add_header(resp, "Allow", allow);
		json_error(resp, 405, "method_not_allowed", "method not allowed on this route",
			   NULL);
		return;
	}
	if (route->id == ROUTE_ME) {
		handle_me(&p, resp);
		return;
	}
	if (route->id == ROUTE_SDK) {
		handle_sdk(c, &p, &params, resp);
		return;
	}
	if (route->id == ROUTE_RESOLVE) {
		handle_resolve(c, &p, &params, req, resp);
		return;
	}
	if (route->id == ROUTE_NODES || route->id == ROUTE_DRAIN_PUT ||
	    route->id == ROUTE_DRAIN_DELETE) {
		if (p.role != KAA_ROLE_PLATFORM_ADMIN)
			json_error(resp, 403, "forbidden", "platform administrators only", NULL);
		else if (route->id == ROUTE_NODES)
			handle_nodes(c, resp);
		else
			handle_drain(c, &params, req, resp, route->id == ROUTE_DRAIN_PUT);
		return;
	}
	const resource *r = &resources[route->id / 8];
	int op = route->id % 8;
	bool write = op == OP_CREATE || op == OP_PUT || op == OP_DELETE;
	bool platform = p.role == KAA_ROLE_PLATFORM_ADMIN;

	/* Scope first (404 for another tenant), then the role (403). */
	int64_t tenant_id = 0, app_id = 0, parent_id = 0;
	switch (r->scope) {
	case SC_ROOT: break;
	case SC_SELF: parent_id = p.user_id; break;
	case SC_TENANT:
		tenant_id = parse_id(kaa__route_param(&params, "tenant"));
		if (tenant_id < 0 || (!platform && tenant_id != p.tenant_id)) {
			json_error(resp, 404, "not_found", "no such tenant", NULL);
			goto out;
		}
		rc = kaa__meta_get(c->store, KAA_META_TENANT, tenant_id, &parent);
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		parent_id = tenant_id;
		break;
	case SC_APP:
		app_id = parse_id(kaa__route_param(&params, "app"));
		rc = app_id < 0 ? KAA_ERR_NOTFOUND
				: kaa__meta_get(c->store, KAA_META_APPLICATION, app_id, &parent);
		if (rc == KAA_OK && !platform && parent.tenant_id != p.tenant_id)
			rc = KAA_ERR_NOTFOUND;
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		parent_id = app_id;
		break;
	}
	if (!kaa__role_allows(p.role, write ? KAA_ACT_WRITE : KAA_ACT_READ, r->kind)) {
		json_error(resp, 403, "forbidden", "your role may not do this", NULL);
		goto out;
	}
	int64_t id = 0;
	if (op == OP_GET || op == OP_PUT || op == OP_DELETE) {
		id = parse_id(kaa__route_param(&params, r->param));
		rc = id < 0 ? KAA_ERR_NOTFOUND : kaa__meta_get(c->store, r->kind, id, &obj);
		if (rc == KAA_OK) {
			bool inside = true;
			if (r->scope == SC_ROOT)
				inside = platform || obj.id == p.tenant_id;
			else if (r->scope == SC_TENANT)
				inside = obj.tenant_id == tenant_id;
			else if (r->scope == SC_SELF)
				inside = obj.user_id == p.user_id;
			else
				inside = obj.app_id == app_id;
			if (!inside)
				rc = KAA_ERR_NOTFOUND;
		}
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
	}
	switch (op) {
	case OP_GET: respond_obj(resp, 200, r, &obj, NULL, NULL); break;
	case OP_LIST: {
		char cursor[256] = "", lim[16];
		kaa__meta_query q = {.parent_id = parent_id};
		if (query_param(req->query, "limit", lim, sizeof(lim))) {
			char *end;
			long v = strtol(lim, &end, 10);
			if (*end || v < 1 || v > KAA_META_LIMIT_MAX) {
				json_error(resp, 400, "invalid", "limit must be 1..1000", "limit");
				goto out;
			}
			q.limit = (size_t)v;
		}
		if (query_param(req->query, "cursor", cursor, sizeof(cursor)))
			q.cursor = cursor;
		kaa__meta_page pg;
		if (r->scope == SC_ROOT && !platform) {
			/* A tenant's users see their own tenant only. */
			kaa__meta_obj t = {0};
			rc = kaa__meta_get(c->store, KAA_META_TENANT, p.tenant_id, &t);
			memset(&pg, 0, sizeof(pg));
			if (rc == KAA_OK && !q.cursor) {
				pg.items = calloc(1, sizeof(*pg.items));
				if (!pg.items)
					kaa__oom();
				pg.items[0] = t;
				pg.n = 1;
			} else {
				kaa__meta_obj_clear(&t);
			}
			/* A tenant deleted under its user lists empty; a store
			 * failure is answered, not hidden as an empty list. */
			if (rc == KAA_ERR_NOTFOUND)
				rc = KAA_OK;
		} else {
			rc = kaa__meta_list(c->store, r->kind, &q, &pg);
		}
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		yajl_gen g = yajl_gen_alloc(NULL);
		yajl_gen_map_open(g);
		gen_key(g, "items");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < pg.n; i++)
			gen_obj(g, r, &pg.items[i]);
		yajl_gen_array_close(g);
		gen_key(g, "nextCursor");
		if (pg.next_cursor)
			gen_key(g, pg.next_cursor);
		else
			yajl_gen_null(g);
		yajl_gen_map_close(g);
		respond_gen(resp, 200, g);
		yajl_gen_free(g);
		kaa__meta_page_clear(&pg);
		break;
	}
	case OP_CREATE: {
		char token[64];
		in.kind = r->kind;
		if (parse_body(req, r, KAA_RF_CREATE, &in, &body, resp) != 0)
			goto out;
		if (r->scope == SC_TENANT)
			in.tenant_id = tenant_id;
		if (r->scope == SC_APP)
			in.app_id = app_id;
		if (r->scope == SC_SELF) {
			in.user_id = p.user_id;
			char hex[65];
			if (kaa__token_new(token, sizeof(token)) != KAA_OK) {
				json_error(resp, 500, "internal", "no randomness", NULL);
				goto out;
			}
			kaa__sha256_hex(token, strlen(token), hex);
			body.owned[body.n_owned++] = strdup(hex);
			in.token_hash = body.owned[body.n_owned - 1];
		}
		if (r->kind == KAA_META_USER && in.role &&
		    kaa__role_parse(in.role) == KAA_ROLE_PLATFORM_ADMIN) {
			json_error(resp, 403, "forbidden", "platform admins are not created here",
				   "$.role");
			goto out;
		}
		if (r->kind == KAA_META_NOTIFICATION) {
			kaa__meta_obj topic = {0};
			rc = kaa__meta_get(c->store, KAA_META_TOPIC, in.topic_id, &topic);
			bool mine = rc == KAA_OK && topic.app_id == app_id;
			kaa__meta_obj_clear(&topic);
			if (!mine) {
				json_error(resp, 400, "invalid",
					   "no such topic in this application", "$.topicId");
				goto out;
			}
			if (body.has_ttl)
				in.expires_ms = kaa__wall_ms() + body.ttl_s * 1000;
		}
		if (r->kind == KAA_META_CONFIGURATION) {
			kaa__meta_obj grp = {0};
			rc = kaa__meta_get(c->store, KAA_META_GROUP, in.group_id, &grp);
			bool mine = rc == KAA_OK && grp.app_id == app_id;
			kaa__meta_obj_clear(&grp);
			if (!mine) {
				json_error(resp, 400, "invalid",
					   "no such group in this application", "$.groupId");
				goto out;
			}
		}
		if (validate_obj(c, r, &in, app_id, resp) != 0)
			goto out;
		rc = kaa__meta_create(c->store, &in, &out, &chg);
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		publish(c, &chg);
		if (r->scope == SC_SELF)
			respond_obj(resp, 201, r, &out, "token", token);
		else
			respond_obj(resp, 201, r, &out, NULL, NULL);
		break;
	}
	case OP_PUT: {
		int64_t want;
		if (read_if_match(req, true, &want, resp) != 0)
			goto out;
		in.kind = r->kind;
		in.id = id;
		in.version = want;
		/* Fields not sent keep their value: start from the stored object. */
		in.weight = obj.weight;
		in.mandatory = obj.mandatory;
		in.group_ids = obj.group_ids;
		in.n_group_ids = obj.n_group_ids;
		if (parse_body(req, r, KAA_RF_UPDATE, &in, &body, resp) != 0)
			goto out;
		/* A configuration keeps its schema version: validate against it. */
		kaa__meta_obj check = in;
		check.schema_version = obj.schema_version;
		check.family_id = obj.family_id;
		if (validate_obj(c, r, &check, app_id, resp) != 0)
			goto out;
		rc = kaa__meta_update(c->store, &in, &out, &chg);
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		publish(c, &chg);
		respond_obj(resp, 200, r, &out, NULL, NULL);
		break;
	}
	case OP_DELETE: {
		int64_t want;
		if (read_if_match(req, false, &want, resp) != 0)
			goto out;
		if (r->kind == KAA_META_USER && id == p.user_id) {
			json_error(resp, 409, "conflict", "you cannot delete yourself", NULL);
			goto out;
		}
		rc = kaa__meta_delete(c->store, r->kind, id, want, &chg);
		if (rc == KAA_ERR_CONFLICT && r->kind == KAA_META_EVENT_FAMILY &&
		    (want == 0 || want == obj.version)) {
			json_error(resp, 409, "in_use",
				   "an application maps this event family version; delete the "
				   "map first",
				   NULL);
			goto out;
		}
		if (rc != KAA_OK) {
			store_error(resp, rc);
			goto out;
		}
		publish(c, &chg);
		kaa__http_respond(resp, 204, NULL, NULL, 0);
		break;
	}
	}
out:
	kaa__rest_body_free(&body);
	kaa__meta_obj_clear(&parent);
	kaa__meta_obj_clear(&obj);
	kaa__meta_obj_clear(&out);
	kaa__meta_change_clear(&chg);
}

/* ---- demo data ------------------------------------------------------------------ */

static int demo_create(kaa__control *c, kaa__meta_obj *in, int64_t *id)
{
	kaa__meta_obj out = {0};
	int rc = kaa__meta_create(c->store, in, &out, NULL);
	if (rc == KAA_OK && id)
		*id = out.id;
	kaa__meta_obj_clear(&out);
	return rc;
}

int kaa__control_seed_demo(kaa__control *c, char *token, size_t size)
{
	kaa__meta_obj t = {0}, a = {0};
	int64_t tenant = 0, app = 0, group = 0;
	int rc = kaa__meta_find_name(c->store, KAA_META_TENANT, 0, "demo", &t);
	if (rc == KAA_OK) {
		rc = kaa__meta_find_name(c->store, KAA_META_APPLICATION, t.id, "demo-app", &a);
		if (rc == KAA_OK)
			snprintf(token, size, "%s", a.app_token);
		goto out;
	}
	if (rc != KAA_ERR_NOTFOUND)
		goto out;
	kaa__meta_obj in = {.kind = KAA_META_TENANT, .name = "demo"};
	if ((rc = demo_create(c, &in, &tenant)) != KAA_OK)
		goto out;
	kaa__meta_obj ai = {.kind = KAA_META_APPLICATION,
			    .tenant_id = tenant,
			    .name = "demo-app",
			    .credentials_mode = "trustful"};
	if ((rc = demo_create(c, &ai, &app)) != KAA_OK)
		goto out;
	static const struct {
		const char *kind, *body;
	} schemas[] = {
		{"profile-client",
		 "{\"type\":\"record\",\"name\":\"Profile\",\"fields\":["
		 "{\"name\":\"model\",\"type\":\"string\",\"default\":\"sim\"}]}"},
		{"configuration",
		 "{\"type\":\"record\",\"name\":\"Config\",\"fields\":["
		 "{\"name\":\"sampleSeconds\",\"type\":\"int\",\"default\":60},"
		 "{\"name\":\"greeting\",\"type\":\"string\",\"default\":\"hello\"}]}"},
		{"log",
		 "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":["
		 "{\"name\":\"device\",\"type\":\"int\"},{\"name\":\"seq\",\"type\":\"long\"}]}"},
	};
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
		kaa__meta_obj si = {.kind = KAA_META_SCHEMA,
				    .app_id = app,
				    .schema_kind = (char *)schemas[i].kind,
				    .body = (char *)schemas[i].body};
		if ((rc = demo_create(c, &si, NULL)) != KAA_OK)
			goto out;
	}
	kaa__meta_obj gi = {.kind = KAA_META_GROUP, .app_id = app, .name = "all", .weight = 1};
	if ((rc = demo_create(c, &gi, &group)) != KAA_OK)
		goto out;
	kaa__meta_obj ci = {.kind = KAA_META_CONFIGURATION,
			    .app_id = app,
			    .group_id = group,
			    .schema_version = 1,
			    .body = "{\"sampleSeconds\":10,\"greeting\":\"hello from kaa\"}"};
	if ((rc = demo_create(c, &ci, NULL)) != KAA_OK)
		goto out;
	kaa__meta_obj ti = {
		.kind = KAA_META_TOPIC, .app_id = app, .name = "news", .mandatory = true};
	if ((rc = demo_create(c, &ti, NULL)) != KAA_OK)
		goto out;
	kaa__meta_obj la = {.kind = KAA_META_LOG_APPENDER,
			    .app_id = app,
			    .name = "file",
			    .body = "{\"type\":\"file\",\"file\":\"demo.jsonl\"}"};
	if ((rc = demo_create(c, &la, NULL)) != KAA_OK)
		goto out;
	rc = kaa__meta_get(c->store, KAA_META_APPLICATION, app, &a);
	if (rc == KAA_OK) {
		snprintf(token, size, "%s", a.app_token);
		KAA_INFO("control", "demo_created tenant=%" PRId64 " app=%" PRId64, tenant, app);
	}
out:
	kaa__meta_obj_clear(&t);
	kaa__meta_obj_clear(&a);
	return rc;
}

/* ---- lifecycle ------------------------------------------------------------------ */

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

int kaa__control_new(const char *sql_url, kaa__coord *coord, const char *cluster,
		     kaa__control **out)
{
	kaa__control *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (!c)
		return KAA_ERR_NOMEM;
	c->coord = coord;
	c->cluster = strdup(cluster);
	kaa__control_set_rebalance(c, 0.2, 50, 30000, 60000);
	pthread_mutex_init(&c->auth_mu, NULL);
	if (RAND_bytes(c->auth_secret, sizeof(c->auth_secret)) != 1) {
		free(c->cluster);
		free(c);
		return KAA_ERR_INTERNAL;
	}
	rc = kaa__meta_store_new(sql_url, NULL, &c->store);
	if (rc != KAA_OK) {
		KAA_ERROR("control", "store_open_failed url=%s err=%s", sql_url, kaa_strerror(rc));
		goto fail;
	}
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
	kaa__meta_store_free(c->store);
	pthread_mutex_destroy(&c->auth_mu);
	free(c->cluster);
	free(c);
}

/*
 * The leader's repair of application revisions in etcd: a replica that fails
 * to publish after a commit (etcd down, or the replica died in between) only
 * logs it, so every 10 s the leader compares each application's app_rev in
 * the store with /kaa/<cluster>/apps/<id>/rev and puts the newer one; keys of
 * applications that no longer exist are removed. O(applications) store reads
 * and one etcd range per pass.
 */
static int64_t etcd_rev_of(const kaa__kv_list *l, const char *key)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->items[i].key, key) != 0)
			continue;
		const char *v = (const char *)l->items[i].value;
		const char *r = v ? strstr(v, "\"rev\":") : NULL;
		return r ? strtoll(r + 6, NULL, 10) : -1;
	}
	return -1;
}

static void republish_app_revs(kaa__control *c)
{
	char prefix[256], key[320], val[64];
	kaa__kv_list l = {0};
	kaa__meta_page tenants = {0}, apps = {0};
	size_t seen = 0, repaired = 0;
	int64_t *live = NULL;
	size_t n_live = 0, cap_live = 0;
	kaa__key_apps(prefix, sizeof(prefix), c->cluster);
	if (kaa__coord_range(c->coord, prefix, true, &l) != KAA_OK)
		return;
	kaa__meta_query tq = {.limit = KAA_META_LIMIT_MAX};
	char *tcursor = NULL;
	do {
		tq.cursor = tcursor;
		int rc = kaa__meta_list(c->store, KAA_META_TENANT, &tq, &tenants);
		free(tcursor);
		tcursor = NULL;
		if (rc != KAA_OK)
			goto out;
		for (size_t t = 0; t < tenants.n; t++) {
			kaa__meta_query aq = {.parent_id = tenants.items[t].id,
					      .limit = KAA_META_LIMIT_MAX};
			char *acursor = NULL;
			do {
				aq.cursor = acursor;
				rc = kaa__meta_list(c->store, KAA_META_APPLICATION, &aq, &apps);
				free(acursor);
				acursor = NULL;
				if (rc != KAA_OK)
					goto out;
				for (size_t a = 0; a < apps.n; a++) {
					const kaa__meta_obj *app = &apps.items[a];
					if (n_live == cap_live) {
						cap_live = cap_live ? cap_live * 2 : 64;
						live = kaa__xrealloc(live,
								     cap_live * sizeof(*live));
					}
					live[n_live++] = app->id;
					seen++;
					snprintf(key, sizeof(key), "%s%" PRId64 "/rev", prefix,
						 app->id);
					if (etcd_rev_of(&l, key) >= app->app_rev)
						continue;
					snprintf(val, sizeof(val), "{\"rev\":%" PRId64 "}",
						 app->app_rev);
					if (kaa__coord_put(c->coord, key, val, strlen(val), 0,
							   NULL) == KAA_OK)
						repaired++;
				}
				if (apps.next_cursor)
					acursor = kaa__xstrdup(apps.next_cursor);
				kaa__meta_page_clear(&apps);
			} while (acursor);
		}
		if (tenants.next_cursor)
			tcursor = kaa__xstrdup(tenants.next_cursor);
		kaa__meta_page_clear(&tenants);
	} while (tcursor);
	/* Keys of deleted applications: only after a complete walk. */
	for (size_t i = 0; i < l.n; i++) {
		const char *rest = l.items[i].key + strlen(prefix);
		int64_t id = strtoll(rest, NULL, 10);
		bool found = false;
		for (size_t j = 0; j < n_live && !found; j++)
			found = live[j] == id;
		if (!found) {
			snprintf(key, sizeof(key), "%s%" PRId64 "/", prefix, id);
			if (kaa__coord_delete(c->coord, key, true, NULL) == KAA_OK)
				repaired++;
		}
	}
	if (repaired)
		KAA_INFO("control", "app_revs_repaired count=%zu apps=%zu", repaired, seen);
out:
	kaa__meta_page_clear(&tenants);
	kaa__meta_page_clear(&apps);
	kaa__kv_list_clear(&l);
	free(live);
}

void kaa__control_set_rebalance(kaa__control *c, double threshold, int64_t min_sessions,
				int interval_ms, int cooldown_ms)
{
	c->rb_threshold = threshold < 0 ? 0 : threshold;
	c->rb_min_sessions = min_sessions < 1 ? 1 : min_sessions;
	c->rb_interval_ms = interval_ms < 0 ? 0 : interval_ms;
	c->rb_cooldown_ms = cooldown_ms < KAA_REBALANCE_MIN_COOLDOWN_MS
				    ? KAA_REBALANCE_MIN_COOLDOWN_MS
				    : cooldown_ms;
}

void kaa__control_set_metrics(kaa__control *c, kaa__metrics *m)
{
	c->m_rb_checks =
		kaa__metrics_counter(m, "kaa_control_rebalance_checks_total",
				     "Rebalancing passes run by this node as leader", NULL);
	c->m_rb_plans = kaa__metrics_counter(m, "kaa_control_rebalance_plans_total",
					     "Rebalancing plans published by this node", NULL);
}

/* How long a plan's devices may take to show up again before the leader
 * plans regardless. */
#define REBALANCE_SETTLE_MAX_MS 60000

/* One rebalancing pass: plan from the registry records, publish if any. */
static void rebalance(kaa__control *c, int64_t now)
{
	char prefix[256], key[300];
	kaa__kv_list l = {0}, cur = {0};
	kaa__node_record *recs = NULL;
	kaa__rebalance_node *nodes = NULL;
	size_t n = 0;
	char *json = NULL;
	size_t len = 0;
	kaa__key_nodes(prefix, sizeof(prefix), c->cluster);
	kaa__key_rebalance(key, sizeof(key), c->cluster);
	if (kaa__coord_range(c->coord, prefix, true, &l) != KAA_OK)
		return;
	recs = kaa__xcalloc(l.n, sizeof(*recs));
	nodes = kaa__xcalloc(l.n, sizeof(*nodes));
	for (size_t i = 0; i < l.n; i++) {
		kaa__node_record *r = &recs[n];
		if (kaa__node_record_decode(l.items[i].value, l.items[i].value_len, r) != KAA_OK)
			continue;
		if (!kaa__node_record_has_service(r, "operations")) {
			kaa__node_record_clear(r);
			continue;
		}
		nodes[n].id = r->id;
		nodes[n].sessions = r->sessions;
		nodes[n].draining = r->draining;
		n++;
	}
	/* The last plan's devices are still on their way while the total is
	 * below what it was (they closed their sessions and reconnect over the
	 * spread window): planning now would count them as missing from their
	 * targets and move others twice. Wait, but not forever (devices that
	 * left for good must not stop rebalancing). */
	int64_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += nodes[i].sessions;
	if (c->rb_last_plan_ms && now - c->rb_last_plan_ms < REBALANCE_SETTLE_MAX_MS &&
	    total * 100 < c->rb_last_total * 98)
		goto out;
	kaa__rebalance_plan plan = {.created_ms = now};
	int64_t moved =
		kaa__rebalance_compute(nodes, n, c->rb_threshold, c->rb_min_sessions, &plan);
	if (moved == 0)
		goto out;
	/* seq continues from the published plan, so nodes apply each once */
	if (kaa__coord_range(c->coord, key, false, &cur) == KAA_OK && cur.n == 1) {
		kaa__rebalance_plan old;
		if (kaa__rebalance_decode(cur.items[0].value, cur.items[0].value_len, &old) ==
		    KAA_OK) {
			plan.seq = old.seq;
			kaa__rebalance_plan_clear(&old);
		}
	}
	plan.seq++;
	if (kaa__rebalance_encode(&plan, &json, &len) != KAA_OK)
		goto out;
	if (kaa__coord_put(c->coord, key, json, len, 0, NULL) == KAA_OK) {
		c->rb_last_plan_ms = now;
		c->rb_last_total = total;
		if (c->m_rb_plans)
			kaa__counter_inc(c->m_rb_plans);
		KAA_INFO("control", "rebalance_planned seq=%" PRId64 " moves=%zu sessions=%" PRId64,
			 plan.seq, plan.n_moves, moved);
	}
out:
	free(json);
	for (size_t i = 0; i < n; i++)
		kaa__node_record_clear(&recs[i]);
	free(recs);
	free(nodes);
	kaa__kv_list_clear(&l);
	kaa__kv_list_clear(&cur);
}

void kaa__control_leader_tick(kaa__control *c)
{
	int64_t now = kaa__wall_ms();
	if (c->rb_interval_ms > 0 && now - c->rb_last_check_ms >= c->rb_interval_ms &&
	    now - c->rb_last_plan_ms >= c->rb_cooldown_ms) {
		c->rb_last_check_ms = now;
		rebalance(c, now);
		if (c->m_rb_checks)
			kaa__counter_inc(c->m_rb_checks);
	}
	if (now - c->last_expiry_ms < 10000)
		return;
	c->last_expiry_ms = now;
	int64_t deleted = 0;
	int rc = kaa__meta_notifications_expire(c->store, now, &deleted);
	if (rc != KAA_OK)
		KAA_WARN("control", "notification_expiry_failed err=%s", kaa_strerror(rc));
	else if (deleted > 0)
		KAA_INFO("control", "notifications_expired count=%" PRId64, deleted);
	republish_app_revs(c);
	/* Node records are written under leases; a record without one was left
	 * by hand or by a broken writer and would never go away. */
	char prefix[256];
	kaa__kv_list l;
	kaa__key_nodes(prefix, sizeof(prefix), c->cluster);
	if (kaa__coord_range(c->coord, prefix, true, &l) == KAA_OK) {
		for (size_t i = 0; i < l.n; i++) {
			if (l.items[i].lease != 0)
				continue;
			bool ok = false;
			kaa__coord_cas(c->coord, l.items[i].key, l.items[i].mod_rev, NULL, 0, 0,
				       &ok, NULL);
			if (ok)
				KAA_WARN("control", "stale_node_key_removed key=%s",
					 l.items[i].key);
		}
		kaa__kv_list_clear(&l);
	}
}
