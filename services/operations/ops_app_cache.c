/*
 * ops_app_cache.c - the per-application cache (ops_app_cache.h).
 */
#include "operations/ops_app_cache.h"

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "operations"

static char *xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (!p)
		kaa__oom();
	return p;
}

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
		t->group_ids = kaa__xcalloc(o->n_group_ids, sizeof(int64_t));
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

int kaa__opl_app_load(kaa__operations *ops, const kaa__meta_obj *app, ops_app **out)
{
	ops_app *a = kaa__xcalloc(1, sizeof(*a));
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

ops_app *kaa__opl_cache_find(kaa__operations *ops, int64_t id, const char *token)
{
	for (size_t i = 0; i < ops->n_apps; i++)
		if ((token && strcmp(ops->apps[i]->token, token) == 0) ||
		    (!token && ops->apps[i]->id == id))
			return ops->apps[i];
	return NULL;
}

void kaa__opl_cache_install(kaa__operations *ops, ops_app *a)
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

void kaa__opl_cache_remove(kaa__operations *ops, int64_t id)
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
	a = kaa__opl_cache_find(ops, id, token);
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
	rc = kaa__opl_app_load(ops, &app, &a);
	if (rc != KAA_OK)
		goto out;
	atomic_fetch_add(&a->refs, 1);
	kaa__opl_cache_install(ops, a);
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
	    kaa__opl_app_load(ops, &app, &a) == KAA_OK) {
		atomic_fetch_add(&a->refs, 1); /* the session's */
		kaa__opl_cache_install(ops, a);
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
