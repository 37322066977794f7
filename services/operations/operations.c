/*
 * operations.c - the operations service: life cycle, the session tables,
 * frame dispatch, the per-application cache, the etcd watches, the
 * background thread and drain. The protocol handlers live in
 * registration.c, delivery.c and log_ingest.c (ops_logic.h).
 */
#include "operations/ops_logic.h"

#include "base/alloc.h"
#include "base/clock.h"
#include "bootstrap/bootstrap.h"
#include "proto/endpoint_codec.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"
#include "coord/rebalance.h"
#include "coord/keys.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;

static void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);
	if (!p)
		kaa__oom();
	return p;
}

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		kaa__oom();
	return p;
}

/* ---- transport adapters (real ops_server) ---------------------------------------- */

static int srv_send(void *ud, kaa__session_id sid, const frame_t *f)
{
	return kaa__ops_send(ud, sid, f);
}

static int srv_close(void *ud, kaa__session_id sid, int ws_code)
{
	return kaa__ops_close_code(ud, sid, ws_code);
}

static void srv_established(void *ud, kaa__session_id sid)
{
	kaa__ops_session_set_established(ud, sid);
}

static void srv_set_accepting(void *ud, bool accepting)
{
	kaa__ops_server_set_accepting(ud, accepting);
}

static size_t srv_sessions(void *ud)
{
	return kaa__ops_server_sessions(ud);
}

/* ---- sending ----------------------------------------------------------------------- */

int kaa__opl_send(kaa__operations *ops, kaa__session_id sid, frame_t *f)
{
	f->protocol_version = KAA__PROTOCOL_VERSION;
	int rc = ops->io.send(ops->io.ud, sid, f);
	if (rc != KAA_OK && rc != KAA_ERR_NOTFOUND)
		KAA_WARN(MOD, "send_failed sid=%" PRIu64 " body=%d err=%s", sid, (int)f->body_case,
			 kaa_strerror(rc));
	return rc;
}

void kaa__opl_error(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
		    Kaa__Endpoint__V1__ErrorCode code, bool fatal, const char *field,
		    const char *json_path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Error e = KAA__ENDPOINT__V1__ERROR__INIT;
	e.code = code;
	e.message = msg;
	e.request_id = request_id;
	e.field = (char *)(field ? field : "");
	e.json_path = (char *)(json_path ? json_path : "");
	e.fatal = fatal;
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ERROR;
	f.error = &e;
	kaa__opl_send(ops, sid, &f);
	if (fatal)
		ops->io.close(ops->io.ud, sid, OPS_CLOSE_POLICY);
}

void kaa__opl_ack(kaa__operations *ops, kaa__session_id sid, uint64_t request_id)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Ack a = KAA__ENDPOINT__V1__ACK__INIT;
	f.request_id = request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_ACK;
	f.ack = &a;
	kaa__opl_send(ops, sid, &f);
}

int kaa__opl_save(kaa__operations *ops, ops_session *s)
{
	int rc = kaa__ep_put(ops->eps, &s->ep);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "endpoint_save_failed app=%" PRId64 " key=%s err=%s", s->ep.app_id,
			 s->ep.key_hash, kaa_strerror(rc));
	return rc;
}

/* ---- application cache ------------------------------------------------------------- */

void kaa__opl_app_put(ops_app *a)
{
	if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
		return;
	free(a->token);
	kaa__avro_schema_free(a->profile_schema);
	kaa__avro_schema_free(a->log_schema);
	for (size_t i = 0; i < a->n_groups; i++) {
		kaa__filter_free(a->groups[i].filter);
		free(a->groups[i].config);
	}
	free(a->groups);
	for (size_t i = 0; i < a->n_topics; i++) {
		free(a->topics[i].name);
		free(a->topics[i].group_ids);
	}
	free(a->topics);
	for (size_t i = 0; i < a->n_notifs; i++) {
		free(a->notifs[i].ekh);
		free(a->notifs[i].body);
	}
	free(a->notifs);
	for (size_t i = 0; i < a->n_appenders; i++)
		kaa__log_appender_free(a->appenders[i]);
	free(a->appenders);
	for (size_t i = 0; i < a->n_memo; i++) {
		free(a->memo[i].ids);
		free(a->memo[i].doc);
	}
	for (size_t i = 0; i < a->n_evclasses; i++) {
		free(a->evclasses[i].fqn);
		kaa__avro_schema_free(a->evclasses[i].schema);
	}
	free(a->evclasses);
	free(a->sinks);
	for (size_t i = 0; i < a->n_verifiers; i++) {
		free(a->verifiers[i].name);
		if (a->verifiers[i].secret)
			explicit_bzero(a->verifiers[i].secret, a->verifiers[i].secret_len);
		free(a->verifiers[i].secret);
		free(a->verifiers[i].issuer);
		free(a->verifiers[i].audience);
	}
	free(a->verifiers);
	pthread_mutex_destroy(&a->memo_mu);
	free(a);
}

/* Every object of a kind in an application, page by page; cb takes
 * ownership of nothing (the page is cleared after it). */
typedef int (*obj_cb)(void *ud, kaa__meta_obj *o);

static int list_all(kaa__meta_store *m, kaa__meta_kind kind, int64_t app_id, obj_cb cb, void *ud)
{
	kaa__meta_page pg = {0};
	char *cursor = NULL;
	int rc;
	for (;;) {
		kaa__meta_query q = {
			.parent_id = app_id, .cursor = cursor, .limit = KAA_META_LIMIT_MAX};
		rc = kaa__meta_list(m, kind, &q, &pg);
		if (rc != KAA_OK)
			break;
		for (size_t i = 0; i < pg.n && rc == KAA_OK; i++)
			rc = cb(ud, &pg.items[i]);
		free(cursor);
		cursor = pg.next_cursor;
		pg.next_cursor = NULL;
		kaa__meta_page_clear(&pg);
		if (rc != KAA_OK || !cursor)
			break;
	}
	free(cursor);
	return rc;
}

typedef struct schema_pick {
	int64_t ver[3];
	char *body[3];
} schema_pick;

static const char *const schema_kinds[3] = {"profile-client", "log", "configuration"};

static int pick_schema(void *ud, kaa__meta_obj *o)
{
	schema_pick *p = ud;
	for (int k = 0; k < 3; k++) {
		if (!o->schema_kind || strcmp(o->schema_kind, schema_kinds[k]) != 0 ||
		    o->schema_version <= p->ver[k])
			continue;
		p->ver[k] = o->schema_version;
		free(p->body[k]);
		p->body[k] = o->body;
		o->body = NULL;
	}
	return KAA_OK;
}

static int add_group(void *ud, kaa__meta_obj *o)
{
	ops_app *a = ud;
	char err[KAA_JSON_ERR_SIZE];
	kaa__filter *f = NULL;
	if (o->body &&
	    kaa__filter_compile(o->body, strlen(o->body), &f, err, sizeof(err)) != KAA_OK) {
		KAA_WARN(MOD, "stored_filter_invalid app=%" PRId64 " group=%" PRId64, a->id, o->id);
		return KAA_OK; /* as control's resolve: such a group matches nobody */
	}
	if (f && kaa__filter_is_empty(f)) {
		kaa__filter_free(f);
		f = NULL;
	}
	a->groups = realloc(a->groups, (a->n_groups + 1) * sizeof(*a->groups));
	if (!a->groups)
		kaa__oom();
	a->groups[a->n_groups++] = (ops_group){.id = o->id, .weight = o->weight, .filter = f};
	return KAA_OK;
}

static int add_config(void *ud, kaa__meta_obj *o)
{
	ops_app *a = ud;
	if (o->schema_version != a->config_ver || !o->body)
		return KAA_OK;
	for (size_t i = 0; i < a->n_groups; i++) {
		if (a->groups[i].id == o->group_id && !a->groups[i].config) {
			a->groups[i].config = o->body;
			o->body = NULL;
		}
	}
	return KAA_OK;
}

static int add_topic(void *ud, kaa__meta_obj *o)
{
	ops_app *a = ud;
	a->topics = realloc(a->topics, (a->n_topics + 1) * sizeof(*a->topics));
	if (!a->topics)
		kaa__oom();
	ops_topic *t = &a->topics[a->n_topics++];
	memset(t, 0, sizeof(*t));
	t->id = o->id;
	snprintf(t->id_str, sizeof(t->id_str), "%" PRId64, o->id);
	t->name = xstrdup(o->name);
	t->mandatory = o->mandatory;
	t->seq = o->seq;
	if (o->n_group_ids) {
		t->group_ids = xcalloc(o->n_group_ids, sizeof(int64_t));
		memcpy(t->group_ids, o->group_ids, o->n_group_ids * sizeof(int64_t));
		t->n_group_ids = o->n_group_ids;
	}
	return KAA_OK;
}

typedef struct notif_load {
	ops_app *a;
	size_t cap;
	int64_t now;
} notif_load;

static int add_notif(void *ud, kaa__meta_obj *o)
{
	notif_load *l = ud;
	ops_app *a = l->a;
	if (o->expires_ms && o->expires_ms <= l->now)
		return KAA_OK;
	if (a->n_notifs == OPS_MAX_CACHED_NOTIFICATIONS) {
		/* keep the newest: drop the oldest */
		free(a->notifs[0].ekh);
		free(a->notifs[0].body);
		memmove(a->notifs, a->notifs + 1, (a->n_notifs - 1) * sizeof(*a->notifs));
		a->n_notifs--;
	}
	if (a->n_notifs == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		a->notifs = realloc(a->notifs, l->cap * sizeof(*a->notifs));
		if (!a->notifs)
			kaa__oom();
	}
	a->notifs[a->n_notifs++] = (ops_notif){.id = o->id,
					       .topic_id = o->topic_id,
					       .seq = o->seq,
					       .expires_ms = o->expires_ms,
					       .ekh = o->endpoint_key_hash,
					       .body = o->body};
	o->endpoint_key_hash = NULL;
	o->body = NULL;
	return KAA_OK;
}

typedef struct appender_load {
	ops_app *a;
	kaa__log_appender_env env;
} appender_load;

static int add_appender(void *ud, kaa__meta_obj *o)
{
	appender_load *l = ud;
	ops_app *a = l->a;
	kaa__log_appender *la = NULL;
	char err[256] = "";
	int rc = kaa__log_appender_new(a->id, o->id, o->name, o->body ? o->body : "{}", &l->env,
				       &la, err, sizeof(err));
	if (rc == KAA_ERR_NOMEM)
		return rc;
	if (rc != KAA_OK) {
		/* a broken appender must not stop the others (nor the devices) */
		KAA_WARN(MOD,
			 "log_appender_unusable app=%" PRId64 " appender=%" PRId64
			 " err=%s reason=\"%s\"",
			 a->id, o->id, kaa_strerror(rc), err);
		return KAA_OK;
	}
	a->appenders = realloc(a->appenders, (a->n_appenders + 1) * sizeof(*a->appenders));
	if (!a->appenders)
		kaa__oom();
	a->appenders[a->n_appenders++] = la;
	return KAA_OK;
}

static int parse_schema(const char *body, int64_t app_id, const char *kind, kaa__avro_schema **out)
{
	char err[KAA_JSON_ERR_SIZE];
	*out = NULL;
	if (!body)
		return KAA_OK;
	int rc = kaa__avro_schema_parse(body, strlen(body), out, err, sizeof(err));
	if (rc != KAA_OK)
		KAA_WARN(MOD, "stored_schema_invalid app=%" PRId64 " kind=%s err=\"%s\"", app_id,
			 kind, err);
	return rc == KAA_ERR_NOMEM ? rc : KAA_OK;
}

typedef struct evmap_load {
	kaa__operations *ops;
	ops_app *a;
} evmap_load;

static ops_evclass *evclass_slot(ops_app *a, const char *fqn)
{
	for (size_t i = 0; i < a->n_evclasses; i++)
		if (strcmp(a->evclasses[i].fqn, fqn) == 0)
			return &a->evclasses[i];
	a->evclasses = kaa__xrealloc(a->evclasses, (a->n_evclasses + 1) * sizeof(*a->evclasses));
	ops_evclass *c = &a->evclasses[a->n_evclasses++];
	memset(c, 0, sizeof(*c));
	c->fqn = xstrdup(fqn);
	return c;
}

/* One event map: {"<fqn>": "source"|"sink"|"both"} over one family version,
 * whose body is [{"fqn":..., "schema":...}]. Control validated both; a
 * stored object that does not parse is skipped with a warning (its classes
 * are then unknown and events of them refused), never fatal. */
static int add_event_map(void *ud, kaa__meta_obj *o)
{
	evmap_load *l = ud;
	ops_app *a = l->a;
	kaa__meta_obj fam = {0};
	yajl_val mv = NULL, fv = NULL;
	char err[KAA_JSON_ERR_SIZE];
	int rc = kaa__meta_get(l->ops->meta, KAA_META_EVENT_FAMILY, o->family_id, &fam);
	if (rc == KAA_ERR_NOTFOUND) {
		rc = KAA_OK;
		goto out;
	}
	if (rc != KAA_OK)
		goto out;
	if (!o->body || !fam.body ||
	    kaa__json_parse(o->body, strlen(o->body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &mv,
			    err, sizeof(err)) != KAA_OK ||
	    kaa__json_parse(fam.body, strlen(fam.body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &fv,
			    err, sizeof(err)) != KAA_OK ||
	    !YAJL_IS_OBJECT(mv) || !YAJL_IS_ARRAY(fv)) {
		KAA_WARN(MOD, "stored_event_map_invalid app=%" PRId64 " map=%" PRId64, a->id,
			 o->id);
		goto out;
	}
	for (size_t i = 0; i < mv->u.object.len; i++) {
		const char *fqn = mv->u.object.keys[i];
		yajl_val role = mv->u.object.values[i];
		if (!YAJL_IS_STRING(role))
			continue;
		for (size_t j = 0; j < fv->u.array.len; j++) {
			yajl_val f = kaa__json_member(fv->u.array.values[j], "fqn");
			yajl_val sch = kaa__json_member(fv->u.array.values[j], "schema");
			if (!YAJL_IS_STRING(f) || strcmp(f->u.string, fqn) != 0 || !sch)
				continue;
			ops_evclass *c = evclass_slot(a, fqn);
			bool both = strcmp(role->u.string, "both") == 0;
			c->source |= both || strcmp(role->u.string, "source") == 0;
			c->sink |= both || strcmp(role->u.string, "sink") == 0;
			if (!c->schema) {
				char *text = NULL;
				size_t tlen = 0;
				if (kaa__json_canonical_tree(sch, &text, &tlen) != KAA_OK)
					kaa__oom();
				if (kaa__avro_schema_parse(text, tlen, &c->schema, err,
							   sizeof(err)) != KAA_OK)
					KAA_WARN(MOD,
						 "stored_event_schema_invalid app=%" PRId64
						 " fqn=%s err=\"%s\"",
						 a->id, fqn, err);
				free(text);
			}
		}
	}
out:
	yajl_tree_free(mv);
	yajl_tree_free(fv);
	kaa__meta_obj_clear(&fam);
	return rc;
}

static int cmp_evclass(const void *x, const void *y)
{
	return strcmp(((const ops_evclass *)x)->fqn, ((const ops_evclass *)y)->fqn);
}

static int add_verifier(void *ud, kaa__meta_obj *o)
{
	ops_app *a = ud;
	yajl_val v = NULL;
	char err[KAA_JSON_ERR_SIZE];
	if (!o->body || kaa__json_parse(o->body, strlen(o->body), KAA_META_BODY_MAX,
					KAA_JSON_MAX_DEPTH, &v, err, sizeof(err)) != KAA_OK) {
		KAA_WARN(MOD, "stored_verifier_invalid app=%" PRId64 " verifier=%" PRId64, a->id,
			 o->id);
		return KAA_OK;
	}
	yajl_val type = kaa__json_member(v, "type"), secret = kaa__json_member(v, "secret"),
		 iss = kaa__json_member(v, "issuer"), aud = kaa__json_member(v, "audience"),
		 leeway = kaa__json_member(v, "leewaySeconds");
	bool jwt = YAJL_IS_STRING(type) && strcmp(type->u.string, "jwt-hs256") == 0;
	if (!YAJL_IS_STRING(type) || (jwt && !YAJL_IS_STRING(secret)) ||
	    (!jwt && strcmp(type->u.string, "trustful") != 0)) {
		KAA_WARN(MOD, "stored_verifier_invalid app=%" PRId64 " verifier=%" PRId64, a->id,
			 o->id);
		goto out;
	}
	a->verifiers = kaa__xrealloc(a->verifiers, (a->n_verifiers + 1) * sizeof(*a->verifiers));
	ops_verifier *w = &a->verifiers[a->n_verifiers++];
	memset(w, 0, sizeof(*w));
	w->name = xstrdup(o->name ? o->name : "");
	w->jwt = jwt;
	if (jwt) {
		w->secret = xstrdup(secret->u.string);
		w->secret_len = strlen(w->secret);
	}
	if (YAJL_IS_STRING(iss))
		w->issuer = xstrdup(iss->u.string);
	if (YAJL_IS_STRING(aud))
		w->audience = xstrdup(aud->u.string);
	if (YAJL_IS_INTEGER(leeway) && YAJL_GET_INTEGER(leeway) >= 0)
		w->leeway_s = YAJL_GET_INTEGER(leeway);
out:
	yajl_tree_free(v);
	return KAA_OK;
}

/* Builds the cache entry of an application from the store. */
static int app_load(kaa__operations *ops, const kaa__meta_obj *app, ops_app **out)
{
	ops_app *a = xcalloc(1, sizeof(*a));
	schema_pick sp = {{0}, {NULL}};
	notif_load nl = {.a = a, .now = kaa__wall_ms()};
	appender_load al = {.a = a,
			    .env = {.store = ops->eps,
				    .file_dir = ops->appender_dir,
				    .metrics = ops->metrics,
				    .app_token = app->app_token}};
	int rc;

	atomic_init(&a->refs, 1);
	pthread_mutex_init(&a->memo_mu, NULL);
	a->id = app->id;
	a->rev = app->app_rev;
	a->token = xstrdup(app->app_token);
	a->provisioned = app->credentials_mode && strcmp(app->credentials_mode, "provisioned") == 0;
	rc = list_all(ops->meta, KAA_META_SCHEMA, a->id, pick_schema, &sp);
	if (rc != KAA_OK)
		goto out;
	a->profile_ver = sp.ver[0];
	a->log_ver = sp.ver[1];
	a->config_ver = sp.ver[2];
	if ((rc = parse_schema(sp.body[0], a->id, "profile-client", &a->profile_schema)) !=
		    KAA_OK ||
	    (rc = parse_schema(sp.body[1], a->id, "log", &a->log_schema)) != KAA_OK)
		goto out;
	if ((rc = list_all(ops->meta, KAA_META_GROUP, a->id, add_group, a)) != KAA_OK ||
	    (rc = list_all(ops->meta, KAA_META_CONFIGURATION, a->id, add_config, a)) != KAA_OK ||
	    (rc = list_all(ops->meta, KAA_META_TOPIC, a->id, add_topic, a)) != KAA_OK ||
	    (rc = list_all(ops->meta, KAA_META_NOTIFICATION, a->id, add_notif, &nl)) != KAA_OK ||
	    (rc = list_all(ops->meta, KAA_META_LOG_APPENDER, a->id, add_appender, &al)) != KAA_OK)
		goto out;
	evmap_load el = {.ops = ops, .a = a};
	if ((rc = list_all(ops->meta, KAA_META_EVENT_MAP, a->id, add_event_map, &el)) != KAA_OK ||
	    (rc = list_all(ops->meta, KAA_META_USER_VERIFIER, a->id, add_verifier, a)) != KAA_OK)
		goto out;
	if (a->n_evclasses)
		qsort(a->evclasses, a->n_evclasses, sizeof(*a->evclasses), cmp_evclass);
	for (size_t i = 0; i < a->n_evclasses; i++) {
		if (!a->evclasses[i].sink)
			continue;
		a->sinks = kaa__xrealloc(a->sinks, (a->n_sinks + 1) * sizeof(*a->sinks));
		a->sinks[a->n_sinks++] = a->evclasses[i].fqn;
	}
out:
	for (int k = 0; k < 3; k++)
		free(sp.body[k]);
	if (rc != KAA_OK) {
		KAA_WARN(MOD, "app_load_failed app=%" PRId64 " err=%s", app->id, kaa_strerror(rc));
		kaa__opl_app_put(a);
		a = NULL;
	} else {
		kaa__counter_inc(ops->app_refreshes);
	}
	*out = a;
	return rc;
}

/* Caller holds ops->mu. */
static ops_app *cache_find(kaa__operations *ops, int64_t id, const char *token)
{
	for (size_t i = 0; i < ops->n_apps; i++)
		if ((token && strcmp(ops->apps[i]->token, token) == 0) ||
		    (!token && ops->apps[i]->id == id))
			return ops->apps[i];
	return NULL;
}

/* Installs a (taking its reference), replacing an entry of the same id. */
static void cache_install(kaa__operations *ops, ops_app *a)
{
	ops_app *old = NULL;
	pthread_mutex_lock(&ops->mu);
	for (size_t i = 0; i < ops->n_apps; i++) {
		if (ops->apps[i]->id == a->id) {
			old = ops->apps[i];
			ops->apps[i] = a;
			a = NULL;
			break;
		}
	}
	if (a) {
		if (ops->n_apps == ops->cap_apps) {
			ops->cap_apps = ops->cap_apps ? ops->cap_apps * 2 : 16;
			ops->apps = realloc(ops->apps, ops->cap_apps * sizeof(*ops->apps));
			if (!ops->apps)
				kaa__oom();
		}
		ops->apps[ops->n_apps++] = a;
	}
	pthread_mutex_unlock(&ops->mu);
	kaa__opl_app_put(old);
}

static void cache_remove(kaa__operations *ops, int64_t id)
{
	ops_app *old = NULL;
	pthread_mutex_lock(&ops->mu);
	for (size_t i = 0; i < ops->n_apps; i++) {
		if (ops->apps[i]->id == id) {
			old = ops->apps[i];
			ops->apps[i] = ops->apps[--ops->n_apps];
			break;
		}
	}
	pthread_mutex_unlock(&ops->mu);
	kaa__opl_app_put(old);
}

static int app_get(kaa__operations *ops, int64_t id, const char *token, ops_app **out)
{
	kaa__meta_obj app = {0};
	ops_app *a;
	int rc;

	*out = NULL;
	pthread_mutex_lock(&ops->mu);
	a = cache_find(ops, id, token);
	if (a)
		atomic_fetch_add(&a->refs, 1);
	pthread_mutex_unlock(&ops->mu);
	if (a) {
		*out = a;
		return KAA_OK;
	}
	rc = token ? kaa__meta_find_app_token(ops->meta, token, &app)
		   : kaa__meta_get(ops->meta, KAA_META_APPLICATION, id, &app);
	if (rc != KAA_OK)
		goto out;
	rc = app_load(ops, &app, &a);
	if (rc != KAA_OK)
		goto out;
	atomic_fetch_add(&a->refs, 1);
	cache_install(ops, a);
	*out = a;
out:
	kaa__meta_obj_clear(&app);
	return rc;
}

bool kaa__opl_app_refresh_stale(kaa__operations *ops, ops_session *s)
{
	kaa__meta_obj app = {0};
	ops_app *a = NULL;
	int64_t rev = 0;
	bool done = false;
	if (!s->app || kaa__meta_app_rev(ops->meta, s->app->id, &rev) != KAA_OK ||
	    rev <= s->app->rev)
		return false;
	if (kaa__meta_get(ops->meta, KAA_META_APPLICATION, s->app->id, &app) == KAA_OK &&
	    app_load(ops, &app, &a) == KAA_OK) {
		atomic_fetch_add(&a->refs, 1); /* the session's */
		cache_install(ops, a);
		kaa__opl_app_put(s->app);
		s->app = a;
		done = true;
	}
	kaa__meta_obj_clear(&app);
	return done;
}

int kaa__opl_app_by_token(kaa__operations *ops, const char *token, ops_app **out)
{
	return app_get(ops, 0, token, out);
}

int kaa__opl_app_by_id(kaa__operations *ops, int64_t app_id, ops_app **out)
{
	return app_get(ops, app_id, NULL, out);
}

/* ---- session tables -------------------------------------------------------------------- */

static size_t sid_bucket(kaa__session_id sid)
{
	return (size_t)((sid * 0x9E3779B97F4A7C15ull) >> 52) % OPS_SID_BUCKETS;
}

static size_t key_bucket(int64_t app_id, const char *key)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)app_id;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % OPS_SID_BUCKETS);
}

static void session_put(ops_session *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	kaa__opl_app_put(s->app);
	kaa__endpoint_clear(&s->ep);
	free(s->pos);
	free(s->gids);
	free(s->subs);
	free(s->push_doc);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* The session (referenced), created at its first frame when create. */
static ops_session *session_get(kaa__operations *ops, kaa__session_id sid, bool create)
{
	size_t b = sid_bucket(sid);
	ops_session *s;
	pthread_mutex_lock(&ops->mu);
	for (s = ops->by_sid[b]; s && s->sid != sid; s = s->next_sid)
		;
	if (!s && create) {
		s = xcalloc(1, sizeof(*s));
		s->sid = sid;
		atomic_init(&s->refs, 1); /* the table's */
		pthread_mutex_init(&s->mu, NULL);
		s->next_sid = ops->by_sid[b];
		ops->by_sid[b] = s;
	}
	if (s)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&ops->mu);
	return s;
}

kaa__session_id kaa__opl_bind_key(kaa__operations *ops, ops_session *s)
{
	size_t b = key_bucket(s->ep.app_id, s->ep.key_hash);
	kaa__session_id old = 0;
	pthread_mutex_lock(&ops->mu);
	for (ops_session **pp = &ops->by_key[b]; *pp; pp = &(*pp)->next_key) {
		ops_session *o = *pp;
		if (o->ep.app_id == s->ep.app_id && strcmp(o->ep.key_hash, s->ep.key_hash) == 0) {
			old = o->sid;
			*pp = o->next_key;
			o->in_key_table = false;
			break;
		}
	}
	s->next_key = ops->by_key[b];
	ops->by_key[b] = s;
	s->in_key_table = true;
	ops->n_sessions++;
	pthread_mutex_unlock(&ops->mu);
	return old;
}

/* Removes s from both tables; returns whether it was in the sid table. */
static bool session_unlink(kaa__operations *ops, ops_session *s)
{
	bool found = false;
	pthread_mutex_lock(&ops->mu);
	for (ops_session **pp = &ops->by_sid[sid_bucket(s->sid)]; *pp; pp = &(*pp)->next_sid) {
		if (*pp == s) {
			*pp = s->next_sid;
			found = true;
			break;
		}
	}
	if (s->in_key_table) {
		size_t b = key_bucket(s->ep.app_id, s->ep.key_hash);
		for (ops_session **pp = &ops->by_key[b]; *pp; pp = &(*pp)->next_key) {
			if (*pp == s) {
				*pp = s->next_key;
				break;
			}
		}
		s->in_key_table = false;
	}
	if (s->established && ops->n_sessions)
		ops->n_sessions--;
	pthread_mutex_unlock(&ops->mu);
	return found;
}

/* References to every session (of app_id when > 0). */
static ops_session **sessions_snapshot(kaa__operations *ops, int64_t app_id, size_t *n)
{
	ops_session **v = NULL;
	size_t cnt = 0, cap = 0;
	pthread_mutex_lock(&ops->mu);
	for (size_t b = 0; b < OPS_SID_BUCKETS; b++) {
		for (ops_session *s = ops->by_sid[b]; s; s = s->next_sid) {
			if (app_id > 0 && (!s->app || s->app->id != app_id))
				continue;
			if (cnt == cap) {
				cap = cap ? cap * 2 : 64;
				v = realloc(v, cap * sizeof(*v));
				if (!v)
					kaa__oom();
			}
			atomic_fetch_add(&s->refs, 1);
			v[cnt++] = s;
		}
	}
	pthread_mutex_unlock(&ops->mu);
	*n = cnt;
	return v;
}

static void snapshot_free(ops_session **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		session_put(v[i]);
	free(v);
}

ops_session *kaa__opl_session_by_key(kaa__operations *ops, int64_t app_id, const char *key)
{
	ops_session *s;
	pthread_mutex_lock(&ops->mu);
	for (s = ops->by_key[key_bucket(app_id, key)]; s; s = s->next_key)
		if (s->ep.app_id == app_id && strcmp(s->ep.key_hash, key) == 0)
			break;
	if (s)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&ops->mu);
	return s;
}

void kaa__opl_session_put(ops_session *s)
{
	session_put(s);
}

ops_session **kaa__opl_sessions_snapshot(kaa__operations *ops, int64_t app_id, size_t *n)
{
	return sessions_snapshot(ops, app_id, n);
}

void kaa__opl_snapshot_free(ops_session **v, size_t n)
{
	snapshot_free(v, n);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static void pong(kaa__operations *ops, ops_session *s, const frame_t *in)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Pong p = KAA__ENDPOINT__V1__PONG__INIT;
	if (in->ping)
		p.payload = in->ping->payload;
	f.request_id = in->request_id;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_PONG;
	f.pong = &p;
	kaa__opl_send(ops, s->sid, &f);
}

static void topics_request(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	if (f->notification_topics && f->notification_topics->n_topics) {
		kaa__opl_error(ops, s->sid, f->request_id,
			       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_INVALID_MESSAGE, false,
			       "notification_topics.topics", NULL,
			       "a device sends an empty NotificationTopics to ask for the list");
		return;
	}
	kaa__opl_topics_send(ops, s, true);
}

static void dispatch_established(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	switch (f->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_SESSION_RESUME:
		kaa__opl_session_resume(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ACK: kaa__opl_ack_received(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_PROFILE_UPDATE:
		kaa__opl_profile_update(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_CONFIG_SYNC_REQUEST:
		kaa__opl_config_sync(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_TOPICS: topics_request(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_SUBSCRIBE: kaa__opl_subscribe(ops, s, f, true); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_UNSUBSCRIBE:
		kaa__opl_subscribe(ops, s, f, false);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_NOTIFICATION_ACK:
		kaa__opl_notification_ack(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_LOG_UPLOAD: kaa__opl_log_upload(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT: kaa__opl_event(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_ACK:
		break; /* delivery is at-least-once up to the session; devices de-duplicate */
	case KAA__ENDPOINT__V1__FRAME__BODY_EVENT_LISTENERS_REQUEST:
		kaa__opl_event_listeners(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_ATTACH_REQUEST:
		kaa__opl_owner_attach(ops, s, f);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY_OWNER_DETACH: kaa__opl_owner_detach(ops, s, f); break;
	default:
		kaa__opl_error(ops, s->sid, f->request_id,
			       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_MESSAGE, false,
			       NULL, NULL, "message kind %d is not accepted from a device",
			       (int)f->body_case);
		break;
	}
}

void kaa__operations_on_frame(void *ud, kaa__session_id sid, const frame_t *f)
{
	kaa__operations *ops = ud;
	ops_session *s = session_get(ops, sid, true);

	pthread_mutex_lock(&s->mu);
	if (s->closed)
		goto out;
	if (s->established && !atomic_load(&s->in_key_table))
		goto out; /* replaced and being closed: its frames have no effect */
	switch (f->body_case) {
	case KAA__ENDPOINT__V1__FRAME__BODY_HELLO:
		if (s->established)
			kaa__opl_error(ops, sid, f->request_id,
				       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_STATE, false,
				       NULL, NULL, "the session is already established");
		else
			kaa__opl_hello(ops, s, f);
		goto out; /* catch-up waits for the frame after Hello */
	case KAA__ENDPOINT__V1__FRAME__BODY_PING: pong(ops, s, f); break;
	case KAA__ENDPOINT__V1__FRAME__BODY_PONG: break;
	case KAA__ENDPOINT__V1__FRAME__BODY_ERROR:
		KAA_DEBUG(MOD, "device_error sid=%" PRIu64 " code=%d", sid,
			  f->error ? (int)f->error->code : 0);
		break;
	case KAA__ENDPOINT__V1__FRAME__BODY__NOT_SET:
		kaa__opl_error(ops, sid, f->request_id,
			       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNSUPPORTED_MESSAGE, false,
			       NULL, NULL, "empty or unknown body");
		break;
	default:
		if (!s->established) {
			kaa__opl_error(ops, sid, f->request_id,
				       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_BAD_STATE, false,
				       NULL, NULL, "send Hello first");
			break;
		}
		dispatch_established(ops, s, f);
		break;
	}
	if (s->established && s->catchup_pending) {
		s->catchup_pending = false;
		kaa__opl_notify(ops, s);
	}
out:
	pthread_mutex_unlock(&s->mu);
	session_put(s);
}

void kaa__operations_on_close(void *ud, kaa__session_id sid)
{
	kaa__operations *ops = ud;
	ops_session *s = session_get(ops, sid, false);
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->closed = true;
	if (s->established && !s->in_key_table) {
		/* replaced by a newer session of the same endpoint: that one owns
		 * the record now */
	} else if (s->established) {
		kaa__opl_owner_report(ops, s, false);
		int rc =
			kaa__ep_touch(ops->eps, s->ep.app_id, s->ep.key_hash, NULL, kaa__wall_ms());
		if (rc != KAA_OK)
			KAA_WARN(MOD, "endpoint_touch_failed key=%s err=%s", s->ep.key_hash,
				 kaa_strerror(rc));
	}
	pthread_mutex_unlock(&s->mu);
	if (session_unlink(ops, s))
		session_put(s); /* the table's reference */
	session_put(s);
}

void kaa__operations_catch_up(kaa__operations *ops, kaa__session_id sid)
{
	ops_session *s = session_get(ops, sid, false);
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->closed && s->established && s->catchup_pending) {
		s->catchup_pending = false;
		kaa__opl_notify(ops, s);
	}
	pthread_mutex_unlock(&s->mu);
	session_put(s);
}

/* ---- re-evaluation after a metadata change --------------------------------------------------- */

int kaa__operations_refresh_app(kaa__operations *ops, int64_t app_id)
{
	kaa__meta_obj app = {0};
	ops_app *a = NULL;
	size_t n = 0;
	ops_session **v;
	int rc = kaa__meta_get(ops->meta, KAA_META_APPLICATION, app_id, &app);

	if (rc == KAA_ERR_NOTFOUND) {
		/* deleted: its devices are no longer welcome */
		cache_remove(ops, app_id);
		v = sessions_snapshot(ops, app_id, &n);
		for (size_t i = 0; i < n; i++)
			kaa__opl_error(ops, v[i]->sid, 0,
				       KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_UNAUTHENTICATED,
				       true, NULL, NULL, "the application was deleted");
		snapshot_free(v, n);
		return KAA_OK;
	}
	if (rc != KAA_OK)
		goto out;
	rc = app_load(ops, &app, &a);
	if (rc != KAA_OK)
		goto out;
	atomic_fetch_add(&a->refs, 1);
	cache_install(ops, a);
	v = sessions_snapshot(ops, app_id, &n);
	for (size_t i = 0; i < n; i++) {
		ops_session *s = v[i];
		pthread_mutex_lock(&s->mu);
		if (!s->closed && s->established && atomic_load(&s->in_key_table)) {
			atomic_fetch_add(&a->refs, 1);
			kaa__opl_app_put(s->app);
			s->app = a;
			if (kaa__opl_compute_groups(s))
				kaa__opl_save(ops, s);
			kaa__opl_topics_send(ops, s, false);
			kaa__opl_config_push(ops, s, false);
			if (!s->catchup_pending)
				kaa__opl_notify(ops, s);
		}
		pthread_mutex_unlock(&s->mu);
	}
	snapshot_free(v, n);
	KAA_DEBUG(MOD, "app_refreshed app=%" PRId64 " rev=%" PRId64 " sessions=%zu", app_id, a->rev,
		  n);
out:
	kaa__opl_app_put(a);
	kaa__meta_obj_clear(&app);
	if (rc != KAA_OK)
		KAA_WARN(MOD, "app_refresh_failed app=%" PRId64 " err=%s", app_id,
			 kaa_strerror(rc));
	return rc;
}

/* ---- background thread --------------------------------------------------------------------- */

void kaa__opl_schedule(kaa__operations *ops, int kind, int64_t id, int64_t delay_ms)
{
	int64_t due = kaa__wall_ms() + delay_ms;
	if (kind == OPS_JOB_CATCHUP) {
		ops_job *c = xcalloc(1, sizeof(*c));
		c->kind = kind;
		c->id = id;
		c->due_ms = due;
		pthread_mutex_lock(&ops->mu);
		if (ops->catchup_tail)
			ops->catchup_tail->next = c;
		else
			ops->catchup_head = c;
		ops->catchup_tail = c;
		pthread_mutex_unlock(&ops->mu);
		pthread_cond_signal(&ops->cv);
		return;
	}
	pthread_mutex_lock(&ops->mu);
	for (ops_job *j = ops->jobs; j; j = j->next) {
		if (j->kind == kind && j->id == id) {
			if (due < j->due_ms)
				j->due_ms = due;
			pthread_mutex_unlock(&ops->mu);
			pthread_cond_signal(&ops->cv);
			return;
		}
	}
	ops_job *j = xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->id = id;
	j->due_ms = due;
	j->next = ops->jobs;
	ops->jobs = j;
	pthread_mutex_unlock(&ops->mu);
	pthread_cond_signal(&ops->cv);
}

static void run_job(kaa__operations *ops, const ops_job *j)
{
	switch (j->kind) {
	case OPS_JOB_REFRESH: {
		bool cached;
		pthread_mutex_lock(&ops->mu);
		cached = cache_find(ops, j->id, NULL) != NULL;
		pthread_mutex_unlock(&ops->mu);
		/* an application nobody here uses is loaded at its first Hello */
		if (cached)
			kaa__operations_refresh_app(ops, j->id);
		break;
	}
	case OPS_JOB_RESET: {
		pthread_mutex_lock(&ops->mu);
		size_t n = ops->n_apps;
		int64_t *ids = xcalloc(n, sizeof(*ids));
		for (size_t i = 0; i < n; i++)
			ids[i] = ops->apps[i]->id;
		pthread_mutex_unlock(&ops->mu);
		for (size_t i = 0; i < n; i++)
			kaa__operations_refresh_app(ops, ids[i]);
		free(ids);
		break;
	}
	case OPS_JOB_CATCHUP: kaa__operations_catch_up(ops, (kaa__session_id)j->id); break;
	default: break;
	}
}

static void *bg_main(void *arg)
{
	kaa__operations *ops = arg;
	pthread_mutex_lock(&ops->mu);
	while (!ops->stopping) {
		int64_t now = kaa__wall_ms(), next = now + 1000;
		ops_job **best = NULL;
		for (ops_job **pp = &ops->jobs; *pp; pp = &(*pp)->next) {
			if ((*pp)->due_ms <= now && (!best || (*pp)->due_ms < (*best)->due_ms))
				best = pp;
			if ((*pp)->due_ms < next)
				next = (*pp)->due_ms;
		}
		ops_job *c = ops->catchup_head;
		if (!best && c && c->due_ms <= now) {
			ops->catchup_head = c->next;
			if (!ops->catchup_head)
				ops->catchup_tail = NULL;
			pthread_mutex_unlock(&ops->mu);
			run_job(ops, c);
			free(c);
			pthread_mutex_lock(&ops->mu);
			continue;
		}
		if (c && c->due_ms < next)
			next = c->due_ms;
		if (best) {
			ops_job *j = *best;
			*best = j->next;
			pthread_mutex_unlock(&ops->mu);
			run_job(ops, j);
			free(j);
			pthread_mutex_lock(&ops->mu);
			continue;
		}
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
		pthread_cond_timedwait(&ops->cv, &ops->mu, &ts);
	}
	pthread_mutex_unlock(&ops->mu);
	return NULL;
}

/* ---- watches ---------------------------------------------------------------------------------- */

static void apps_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	kaa__operations *ops = ud;
	char prefix[128];
	size_t plen = (size_t)kaa__key_apps(prefix, sizeof(prefix), ops->cluster);
	for (size_t i = 0; i < n; i++) {
		const char *k = ev[i].kv.key;
		if (!k || strncmp(k, prefix, plen) != 0)
			continue;
		char *end;
		long long id = strtoll(k + plen, &end, 10);
		if (id < 1 || *end != '/')
			continue;
		kaa__opl_schedule(ops, OPS_JOB_REFRESH, id, 0);
	}
}

static void apps_reset(void *ud, const kaa__kv_list *snap)
{
	(void)snap;
	kaa__opl_schedule(ud, OPS_JOB_RESET, 0, 0);
}

static void *drain_main(void *arg)
{
	kaa__operations *ops = arg;
	kaa__operations_drain(ops, atomic_load(&ops->drain_deadline));
	atomic_store(&ops->drain_running, false);
	return NULL;
}

static void drain_request(kaa__operations *ops, const char *json, size_t len)
{
	yajl_val v = NULL;
	int64_t deadline = 0;
	if (kaa__json_parse(json, len, 4096, 8, &v, NULL, 0) == KAA_OK) {
		const char *path[] = {"deadline_ms", NULL};
		yajl_val d = yajl_tree_get(v, path, yajl_t_number);
		if (d)
			kaa__json_int64(d, &deadline);
		yajl_tree_free(v);
	}
	if (deadline <= 0)
		deadline = kaa__wall_ms() + ops->drain_timeout_ms;
	atomic_store(&ops->drain_deadline, deadline);
	KAA_INFO(MOD, "drain_requested node=%s deadline_ms=%" PRId64, ops->node_id, deadline);
	/* only the drain watch thread starts drain threads: no lock needed
	 * for drain_thread itself */
	if (atomic_load(&ops->drain_running))
		return; /* the running drain reads the new deadline */
	if (ops->drain_thread_started) {
		pthread_join(ops->drain_thread, NULL);
		ops->drain_thread_started = false;
	}
	atomic_store(&ops->drain_running, true);
	if (pthread_create(&ops->drain_thread, NULL, drain_main, ops) != 0) {
		KAA_ERROR(MOD, "drain_thread_failed");
		atomic_store(&ops->drain_running, false);
		return;
	}
	ops->drain_thread_started = true;
}

static void drain_cancel(kaa__operations *ops)
{
	if (!atomic_load(&ops->draining))
		return;
	KAA_INFO(MOD, "drain_cancelled node=%s", ops->node_id);
	if (atomic_load(&ops->drain_running)) {
		atomic_store(&ops->drain_cancel, true); /* the drain loop re-admits */
		return;
	}
	atomic_store(&ops->draining, false);
	ops->io.set_accepting(ops->io.ud, true);
}

static void drain_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ev[i].type == KAA_WATCH_PUT)
			drain_request(ud, ev[i].kv.value, ev[i].kv.value_len);
		else
			drain_cancel(ud);
	}
}

static void drain_reset(void *ud, const kaa__kv_list *snap)
{
	if (snap->n)
		drain_request(ud, snap->items[0].value, snap->items[0].value_len);
	else
		drain_cancel(ud);
}

/* ---- drain -------------------------------------------------------------------------------------- */

static void redirect_one(kaa__operations *ops, kaa__session_id sid,
			 Kaa__Endpoint__V1__RedirectTarget **targets, size_t nt,
			 Kaa__Endpoint__V1__RedirectReason reason, int spread_ms)
{
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__Redirect r = KAA__ENDPOINT__V1__REDIRECT__INIT;
	r.targets = targets;
	r.n_targets = nt;
	r.reason = reason;
	/* spread the reconnections over spread_ms: no reconnect storm */
	r.retry_after_ms = (uint32_t)(rand() % spread_ms);
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_REDIRECT;
	f.redirect = &r;
	kaa__opl_send(ops, sid, &f);
	ops->io.close(ops->io.ud, sid, OPS_CLOSE_NORMAL);
}

size_t kaa__operations_drain(kaa__operations *ops, int64_t deadline_ms)
{
	kaa__node_record *recs = NULL;
	size_t nrec = 0, nt = 0;
	Kaa__Endpoint__V1__RedirectTarget tgt[64], *tp[64];
	kaa__registry *reg = atomic_load(&ops->registry);

	if (deadline_ms <= 0)
		deadline_ms = kaa__wall_ms() + ops->drain_timeout_ms;
	/* a drain already running (etcd key, then SIGTERM) follows the newest deadline */
	atomic_store(&ops->drain_deadline, deadline_ms);
	atomic_store(&ops->drain_cancel, false);
	atomic_store(&ops->draining, true);
	ops->io.set_accepting(ops->io.ud, false);
	if (reg && kaa__registry_nodes(reg, &recs, &nrec) == KAA_OK) {
		for (size_t i = 0; i < nrec && nt < 64; i++) {
			const kaa__node_record *r = &recs[i];
			int port = kaa__node_record_port(r, "operations");
			if (!kaa__node_record_has_service(r, "operations") || r->draining ||
			    port <= 0 || !r->host || strcmp(r->id, ops->node_id) == 0)
				continue;
			Kaa__Endpoint__V1__RedirectTarget t =
				KAA__ENDPOINT__V1__REDIRECT_TARGET__INIT;
			t.host = r->host;
			t.port = (uint32_t)port;
			t.weight = (uint32_t)kaa__bootstrap_weight(r);
			t.tls = ops->tls;
			tgt[nt] = t;
			tp[nt] = &tgt[nt];
			nt++;
		}
	}
	KAA_INFO(MOD, "drain_start node=%s sessions=%zu targets=%zu deadline_ms=%" PRId64,
		 ops->node_id, ops->io.sessions(ops->io.ud), nt, deadline_ms);
	size_t left;
	for (;;) {
		size_t n = 0;
		ops_session **v = sessions_snapshot(ops, 0, &n);
		size_t pending = 0;
		for (size_t i = 0; i < n; i++)
			pending += !v[i]->closed && !v[i]->redirected;
		/* ten batches over the time left, at least one session each */
		size_t batch = pending / 10 + 1;
		for (size_t i = 0; i < n && batch; i++) {
			ops_session *s = v[i];
			pthread_mutex_lock(&s->mu);
			if (!s->closed && !s->redirected) {
				s->redirected = true;
				redirect_one(
					ops, s->sid, tp, nt,
					KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_DRAIN,
					2000);
				batch--;
			}
			pthread_mutex_unlock(&s->mu);
		}
		snapshot_free(v, n);
		left = ops->io.sessions(ops->io.ud);
		int64_t now = kaa__wall_ms();
		deadline_ms = atomic_load(&ops->drain_deadline);
		if (left == 0 || now >= deadline_ms || atomic_load(&ops->drain_cancel))
			break;
		int64_t step = (deadline_ms - now) / 20;
		if (step > 200)
			step = 200;
		if (step < 5)
			step = 5;
		/* pacing between batches (with jitter), not synchronisation */
		step = step / 2 + rand() % (step / 2 + 1);
		struct timespec ts = {.tv_sec = step / 1000, .tv_nsec = (step % 1000) * 1000000};
		nanosleep(&ts, NULL);
	}
	kaa__node_records_free(recs, nrec);
	if (atomic_load(&ops->drain_cancel)) {
		atomic_store(&ops->draining, false);
		atomic_store(&ops->drain_cancel, false);
		ops->io.set_accepting(ops->io.ud, true);
	}
	KAA_INFO(MOD, "drain_done node=%s sessions_left=%zu", ops->node_id, left);
	return left;
}

/* ---- rebalancing ------------------------------------------------------------------------------------ */

/* Plans older than this are history (e.g. seen at start-up): not applied. */
#define REBALANCE_PLAN_MAX_AGE_MS 120000
/* Redirected devices come back over this window (retry_after_ms). */

/* Redirects up to n sessions to node `to` (from the registry view). */
static size_t rebalance_move(kaa__operations *ops, const char *to, int64_t n)
{
	kaa__node_record *recs = NULL;
	size_t nrec = 0, moved = 0;
	kaa__registry *reg = atomic_load(&ops->registry);
	Kaa__Endpoint__V1__RedirectTarget t = KAA__ENDPOINT__V1__REDIRECT_TARGET__INIT, *tp = &t;
	bool found = false;
	if (!reg || kaa__registry_nodes(reg, &recs, &nrec) != KAA_OK)
		return 0;
	for (size_t i = 0; i < nrec && !found; i++) {
		const kaa__node_record *r = &recs[i];
		int port = kaa__node_record_port(r, "operations");
		if (strcmp(r->id, to) != 0 || !kaa__node_record_has_service(r, "operations") ||
		    r->draining || port <= 0 || !r->host)
			continue;
		t.host = r->host;
		t.port = (uint32_t)port;
		t.weight = 1000;
		t.tls = ops->tls;
		found = true;
	}
	if (found) {
		size_t cnt = 0;
		ops_session **v = sessions_snapshot(ops, 0, &cnt);
		for (size_t i = 0; i < cnt && (int64_t)moved < n; i++) {
			ops_session *s = v[i];
			pthread_mutex_lock(&s->mu);
			if (!s->closed && !s->redirected) {
				s->redirected = true;
				redirect_one(
					ops, s->sid, &tp, 1,
					KAA__ENDPOINT__V1__REDIRECT_REASON__REDIRECT_REASON_REBALANCE,
					KAA_REBALANCE_SPREAD_MS);
				moved++;
			}
			pthread_mutex_unlock(&s->mu);
		}
		snapshot_free(v, cnt);
	}
	kaa__node_records_free(recs, nrec);
	if (!found)
		KAA_WARN(MOD, "rebalance_target_unknown node=%s to=%s", ops->node_id, to);
	return moved;
}

/* A plan from the control leader: apply the moves from this node, once per
 * seq. apply = false only records the seq (the snapshot at start-up). */
static void rebalance_plan(kaa__operations *ops, const char *json, size_t len, bool apply)
{
	kaa__rebalance_plan p;
	if (kaa__rebalance_decode(json, len, &p) != KAA_OK) {
		KAA_WARN(MOD, "rebalance_plan_malformed bytes=%zu", len);
		return;
	}
	bool fresh = p.seq > ops->rebalance_seq &&
		     kaa__wall_ms() - p.created_ms < REBALANCE_PLAN_MAX_AGE_MS;
	if (p.seq > ops->rebalance_seq)
		ops->rebalance_seq = p.seq;
	for (size_t i = 0; apply && fresh && !atomic_load(&ops->draining) && i < p.n_moves; i++) {
		if (strcmp(p.moves[i].from, ops->node_id) != 0)
			continue;
		size_t moved = rebalance_move(ops, p.moves[i].to, p.moves[i].sessions);
		kaa__counter_add(ops->rebalance_redirects, moved);
		KAA_INFO(MOD,
			 "rebalance_applied node=%s seq=%" PRId64 " to=%s asked=%" PRId64
			 " redirected=%zu",
			 ops->node_id, p.seq, p.moves[i].to, p.moves[i].sessions, moved);
	}
	kaa__rebalance_plan_clear(&p);
}

static void rebalance_events(void *ud, const kaa__watch_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ev[i].type == KAA_WATCH_PUT)
			rebalance_plan(ud, ev[i].kv.value, ev[i].kv.value_len, true);
}

static void rebalance_reset(void *ud, const kaa__kv_list *snap)
{
	if (snap->n == 1)
		rebalance_plan(ud, snap->items[0].value, snap->items[0].value_len, false);
}

/* ---- life cycle ----------------------------------------------------------------------------------- */

static bool ready_cb(void *ud)
{
	return kaa__operations_ready(ud);
}

static void register_metrics(kaa__operations *ops, kaa__metrics *m)
{
	const char *h = "Device registrations (Hello) by result.";
	ops->reg_registered =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"registered\"");
	ops->reg_existing =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"existing\"");
	ops->reg_unauth = kaa__metrics_counter(m, "kaa_ops_registrations_total", h,
					       "result=\"unauthenticated\"");
	ops->reg_forbidden =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"forbidden\"");
	ops->reg_revoked =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"revoked\"");
	ops->reg_error =
		kaa__metrics_counter(m, "kaa_ops_registrations_total", h, "result=\"error\"");
	ops->log_records =
		kaa__metrics_counter(m, "kaa_ops_log_records_total",
				     "Log records durably stored (first delivery).", NULL);
	ops->log_batches_dup = kaa__metrics_counter(
		m, "kaa_ops_log_batches_duplicate_total",
		"Log batches re-sent after a lost status and acknowledged without storing.", NULL);
	ops->notifs_sent = kaa__metrics_counter(m, "kaa_ops_notifications_sent_total",
						"Notifications sent to devices.", NULL);
	ops->configs_sent =
		kaa__metrics_counter(m, "kaa_ops_configurations_sent_total",
				     "Configuration pushes and sync answers sent.", NULL);
	ops->app_refreshes =
		kaa__metrics_counter(m, "kaa_ops_app_loads_total",
				     "Application metadata (re)loads into the cache.", NULL);
	ops->rebalance_redirects = kaa__metrics_counter(
		m, "kaa_ops_rebalance_redirects_total",
		"Devices redirected to another node by rebalancing plans.", NULL);
	ops->events_in = kaa__metrics_counter(m, "kaa_ops_events_received_total",
					      "Events accepted from devices for routing.", NULL);
	ops->events_out = kaa__metrics_counter(m, "kaa_ops_events_delivered_total",
					       "Events sent to devices (re-sends included).", NULL);
	h = "Owner attach requests by result.";
	ops->owner_attach_ok =
		kaa__metrics_counter(m, "kaa_ops_owner_attach_total", h, "result=\"attached\"");
	ops->owner_attach_fail =
		kaa__metrics_counter(m, "kaa_ops_owner_attach_total", h, "result=\"refused\"");
}

/* Feeds the router the live operations nodes of the registry view (the
 * owners' ring) twice a second; the router ignores an unchanged list. */
static void *ring_main(void *arg)
{
	kaa__operations *ops = arg;
	pthread_mutex_lock(&ops->mu);
	while (!ops->stopping) {
		pthread_mutex_unlock(&ops->mu);
		kaa__registry *reg = atomic_load(&ops->registry);
		kaa__node_record *recs = NULL;
		size_t n = 0;
		if (reg && kaa__registry_view_synced(reg) &&
		    kaa__registry_nodes(reg, &recs, &n) == KAA_OK) {
			kaa__router_node *nodes = kaa__xcalloc(n ? n : 1, sizeof(*nodes));
			size_t k = 0;
			for (size_t i = 0; i < n; i++) {
				int port = kaa__node_record_port(&recs[i], "internode");
				/* draining nodes stay: they still hold sessions
				 * (and stay homes) until they exit */
				if (!kaa__node_record_has_service(&recs[i], "operations") ||
				    port <= 0 || !recs[i].host)
					continue;
				nodes[k++] = (kaa__router_node){
					.id = recs[i].id, .host = recs[i].host, .port = port};
			}
			kaa__router_set_nodes(ops->router, nodes, k);
			free(nodes);
			kaa__node_records_free(recs, n);
		}
		pthread_mutex_lock(&ops->mu);
		int64_t next = kaa__wall_ms() + 500;
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
		if (!ops->stopping)
			pthread_cond_timedwait(&ops->cv, &ops->mu, &ts);
	}
	pthread_mutex_unlock(&ops->mu);
	return NULL;
}

int kaa__operations_new(const kaa__operations_opts *o, kaa__operations **out)
{
	kaa__operations *ops;
	int rc;

	*out = NULL;
	if (!o || !o->node_id || !o->cluster || !o->sql_url || !o->nosql_url)
		return KAA_ERR_INVAL;
	ops = xcalloc(1, sizeof(*ops));
	ops->node_id = xstrdup(o->node_id);
	ops->cluster = xstrdup(o->cluster);
	ops->clustered = o->clustered;
	ops->coord = o->coord;
	ops->drain_timeout_ms = o->drain_timeout_ms > 0 ? o->drain_timeout_ms : 30000;
	ops->idle_timeout_ms =
		o->idle_timeout_ms > 0 ? o->idle_timeout_ms : OPS_IDLE_TIMEOUT_MS_DEFAULT;
	ops->tls = o->tls_cert && o->tls_key;
	ops->appender_dir = xstrdup(o->appender_dir ? o->appender_dir : "./data/logs");
	pthread_mutex_init(&ops->mu, NULL);
	pthread_mutex_init(&ops->pend_mu, NULL);
	pthread_cond_init(&ops->cv, NULL); /* CLOCK_REALTIME, as kaa__wall_ms */
	kaa__metrics *m = o->metrics;
	if (!m)
		m = ops->own_metrics = kaa__metrics_new();
	ops->metrics = m;
	register_metrics(ops, m);

	rc = kaa__meta_store_new(o->sql_url, NULL, &ops->meta);
	if (rc != KAA_OK) {
		KAA_ERROR(MOD, "meta_store_open_failed err=%s", kaa_strerror(rc));
		goto fail;
	}
	rc = kaa__ep_store_new(o->nosql_url, &ops->eps);
	if (rc != KAA_OK) {
		KAA_ERROR(MOD, "endpoint_store_open_failed err=%s", kaa_strerror(rc));
		goto fail;
	}
	if (pthread_create(&ops->thread, NULL, bg_main, ops) != 0) {
		rc = KAA_ERR_IO;
		goto fail;
	}
	ops->thread_started = true;
	if (!o->io || o->router) {
		kaa__router_opts ro = {
			.node_id = ops->node_id,
			.cluster = ops->cluster,
			.bind_host = o->internode_bind ? o->internode_bind : o->bind_host,
			.port = o->internode_port,
			.metrics = m,
			.cbs = {.ud = ops,
				.deliver = kaa__opl_event_deliver,
				.routed = kaa__opl_event_routed,
				.listeners = kaa__opl_listeners_answer,
				.notice = kaa__opl_owner_notice,
				.each_location = kaa__opl_owner_report_all},
		};
		rc = kaa__router_new(&ro, &ops->router);
		if (rc != KAA_OK) {
			KAA_ERROR(MOD, "internode_listen_failed port=%d err=%s", o->internode_port,
				  kaa_strerror(rc));
			goto fail;
		}
		if (pthread_create(&ops->ring_thread, NULL, ring_main, ops) != 0) {
			rc = KAA_ERR_IO;
			goto fail;
		}
		ops->ring_thread_started = true;
	}
	if (o->io) {
		ops->io = *o->io;
	} else {
		kaa__ops_server_opts so = {
			.bind_host = o->bind_host,
			.port = o->port,
			.tls_cert = o->tls_cert,
			.tls_key = o->tls_key,
			.workers = o->workers,
			.max_sessions = o->max_sessions,
			.idle_timeout_ms = ops->idle_timeout_ms,
			.ready = ready_cb,
			.ready_ud = ops,
			.metrics = m,
		};
		kaa__ops_handlers h = {
			.ud = ops,
			.on_frame = kaa__operations_on_frame,
			.on_close = kaa__operations_on_close,
		};
		rc = kaa__ops_server_new(&so, &h, &ops->server);
		if (rc != KAA_OK)
			goto fail;
		ops->io = (kaa__ops_io){.ud = ops->server,
					.send = srv_send,
					.close = srv_close,
					.established = srv_established,
					.set_accepting = srv_set_accepting,
					.sessions = srv_sessions};
	}
	if (ops->coord) {
		char key[256];
		kaa__watch_cb acb = {.events = apps_events, .reset = apps_reset, .ud = ops};
		kaa__key_apps(key, sizeof(key), ops->cluster);
		rc = kaa__coord_watch(ops->coord, key, KAA_WATCH_PREFIX, 0, &acb, &ops->apps_watch);
		if (rc != KAA_OK)
			goto fail;
		kaa__watch_cb dcb = {.events = drain_events, .reset = drain_reset, .ud = ops};
		kaa__key_drain(key, sizeof(key), ops->cluster, ops->node_id);
		rc = kaa__coord_watch(ops->coord, key, KAA_WATCH_SNAPSHOT, 0, &dcb,
				      &ops->drain_watch);
		if (rc != KAA_OK)
			goto fail;
		kaa__watch_cb rcb = {
			.events = rebalance_events, .reset = rebalance_reset, .ud = ops};
		kaa__key_rebalance(key, sizeof(key), ops->cluster);
		rc = kaa__coord_watch(ops->coord, key, KAA_WATCH_SNAPSHOT, 0, &rcb,
				      &ops->rebalance_watch);
		if (rc != KAA_OK)
			goto fail;
	}
	KAA_INFO(MOD, "started node=%s port=%d tls=%s meta=%s endpoints=%s", ops->node_id,
		 kaa__operations_port(ops), ops->tls ? "yes" : "no",
		 kaa__meta_store_backend(ops->meta), kaa__ep_store_backend(ops->eps));
	*out = ops;
	return KAA_OK;
fail:
	kaa__operations_free(ops);
	return rc;
}

void kaa__operations_set_registry(kaa__operations *ops, kaa__registry *reg)
{
	atomic_store(&ops->registry, reg);
}

int kaa__operations_internode_port(const kaa__operations *ops)
{
	return ops->router ? kaa__router_port(ops->router) : 0;
}

int kaa__operations_port(const kaa__operations *ops)
{
	return ops->server ? kaa__ops_server_port(ops->server) : 0;
}

size_t kaa__operations_sessions(const kaa__operations *ops)
{
	return ops->io.sessions(ops->io.ud);
}

bool kaa__operations_ready(const kaa__operations *ops)
{
	if (atomic_load(&ops->draining))
		return false;
	kaa__registry *reg = atomic_load(&((kaa__operations *)ops)->registry);
	if (!ops->clustered)
		return true;
	return reg && kaa__registry_registered(reg);
}

bool kaa__operations_draining(const kaa__operations *ops)
{
	return atomic_load(&ops->draining);
}

void kaa__operations_free(kaa__operations *ops)
{
	if (!ops)
		return;
	/* watches first: no new jobs or drains */
	kaa__coord_watch_free(ops->apps_watch);
	kaa__coord_watch_free(ops->drain_watch);
	kaa__coord_watch_free(ops->rebalance_watch);
	pthread_mutex_lock(&ops->mu);
	ops->stopping = true;
	pthread_mutex_unlock(&ops->mu);
	pthread_cond_broadcast(&ops->cv);
	atomic_store(&ops->drain_cancel, true);
	if (ops->drain_thread_started)
		pthread_join(ops->drain_thread, NULL);
	if (ops->thread_started)
		pthread_join(ops->thread, NULL);
	if (ops->ring_thread_started)
		pthread_join(ops->ring_thread, NULL);
	/* appender callbacks send through the server */
	kaa__opl_log_drain(ops);
	/* closes every session: on_close runs for each */
	kaa__ops_server_free(ops->server);
	/* sessions a test io left open */
	size_t n = 0;
	ops_session **v = sessions_snapshot(ops, 0, &n);
	for (size_t i = 0; i < n; i++)
		kaa__operations_on_close(ops, v[i]->sid);
	snapshot_free(v, n);
	/* after the sessions: their closes still report locations */
	kaa__router_free(ops->router);
	kaa__opl_pending_clear(ops);
	while (ops->jobs) {
		ops_job *j = ops->jobs;
		ops->jobs = j->next;
		free(j);
	}
	while (ops->catchup_head) {
		ops_job *j = ops->catchup_head;
		ops->catchup_head = j->next;
		free(j);
	}
	for (size_t i = 0; i < ops->n_apps; i++)
		kaa__opl_app_put(ops->apps[i]);
	free(ops->apps);
	kaa__ep_store_free(ops->eps);
	kaa__meta_store_free(ops->meta);
	kaa__metrics_free(ops->own_metrics);
	pthread_cond_destroy(&ops->cv);
	pthread_mutex_destroy(&ops->mu);
	pthread_mutex_destroy(&ops->pend_mu);
	free(ops->node_id);
	free(ops->cluster);
	free(ops->appender_dir);
	free(ops);
}
