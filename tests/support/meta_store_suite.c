#include "meta_store_suite.h"

#include "base/error.h"
#include "base/clock.h"

#include <CUnit/Basic.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const meta_suite_env *env;

#define T KAA_META_TENANT
#define U KAA_META_USER
#define K KAA_META_API_TOKEN
#define A KAA_META_APPLICATION
#define SC KAA_META_SCHEMA
#define G KAA_META_GROUP
#define CF KAA_META_CONFIGURATION
#define TP KAA_META_TOPIC
#define N KAA_META_NOTIFICATION
#define L KAA_META_LOG_APPENDER
#define CR KAA_META_CREDENTIAL
#define SD KAA_META_SDK_PROFILE
#define EF KAA_META_EVENT_FAMILY
#define EM KAA_META_EVENT_MAP
#define UV KAA_META_USER_VERIFIER

kaa__meta_store *meta_suite_open(void)
{
	kaa__meta_store *s = NULL;
	int rc = kaa__meta_store_new(env->url, NULL, &s);
	if (rc != KAA_OK)
		fprintf(stderr, "meta_store open: %s\n", kaa_strerror(rc));
	CU_ASSERT_EQUAL(rc, KAA_OK);
	return s;
}

const char *meta_suite_name(const char *base)
{
	static _Thread_local char buf[8][128];
	static _Thread_local int slot;
	static atomic_int seq;
	slot = (slot + 1) % 8;
	snprintf(buf[slot], sizeof(buf[slot]), "%s-%d-%d", base, (int)getpid(),
		 atomic_fetch_add(&seq, 1) + 1);
	return buf[slot];
}

/* Creates in and returns the new id (0 on failure, with a CUnit failure). */
static int64_t mk(kaa__meta_store *s, const kaa__meta_obj *in)
{
	kaa__meta_obj out;
	int rc = kaa__meta_create(s, in, &out, NULL);
	if (rc != KAA_OK)
		fprintf(stderr, "create %s: %s\n", kaa__meta_kind_name(in->kind), kaa_strerror(rc));
	CU_ASSERT_EQUAL(rc, KAA_OK);
	int64_t id = out.id;
	kaa__meta_obj_clear(&out);
	return id;
}

static int64_t mk_tenant(kaa__meta_store *s)
{
	kaa__meta_obj in = {.kind = T, .name = (char *)meta_suite_name("tenant")};
	return mk(s, &in);
}

static int64_t mk_app(kaa__meta_store *s, int64_t tenant)
{
	kaa__meta_obj in = {.kind = A, .tenant_id = tenant, .name = (char *)meta_suite_name("app")};
	return mk(s, &in);
}

static int64_t mk_group(kaa__meta_store *s, int64_t app, int64_t weight)
{
	kaa__meta_obj in = {.kind = G,
			    .app_id = app,
			    .name = (char *)meta_suite_name("group"),
			    .weight = weight};
	return mk(s, &in);
}

static int64_t mk_schema(kaa__meta_store *s, int64_t app, const char *kind)
{
	kaa__meta_obj in = {.kind = SC,
			    .app_id = app,
			    .schema_kind = (char *)kind,
			    .body = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}"};
	return mk(s, &in);
}

static int64_t mk_topic(kaa__meta_store *s, int64_t app)
{
	kaa__meta_obj in = {.kind = TP, .app_id = app, .name = (char *)meta_suite_name("topic")};
	return mk(s, &in);
}

static bool exists(kaa__meta_store *s, kaa__meta_kind kind, int64_t id)
{
	kaa__meta_obj o;
	int rc = kaa__meta_get(s, kind, id, &o);
	kaa__meta_obj_clear(&o);
	CU_ASSERT(rc == KAA_OK || rc == KAA_ERR_NOTFOUND);
	return rc == KAA_OK;
}

static int64_t app_rev(kaa__meta_store *s, int64_t app)
{
	int64_t rev = -1;
	CU_ASSERT_EQUAL(kaa__meta_app_rev(s, app, &rev), KAA_OK);
	return rev;
}

/* ---- open, migrations, URLs --------------------------------------------- */

static void test_open(void)
{
	kaa__meta_store *s = meta_suite_open(), *s2 = NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(kaa__meta_store_backend(s), env->backend);
	int64_t v = 0, applied = 0;
	CU_ASSERT_EQUAL(kaa__meta_schema_version(s, &v, &applied), KAA_OK);
	CU_ASSERT_EQUAL(v, kaa__meta_schema_latest());
	CU_ASSERT_EQUAL(applied, kaa__meta_schema_latest());
	/* reopening an up-to-date database applies nothing */
	CU_ASSERT_EQUAL(kaa__meta_store_new(env->url, NULL, &s2), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_schema_version(s2, &v, &applied), KAA_OK);
	CU_ASSERT_EQUAL(applied, kaa__meta_schema_latest());
	kaa__meta_store_free(s2);
	kaa__meta_store_free(s);

	CU_ASSERT_EQUAL(kaa__meta_store_new("mysql://x/y", NULL, &s2), KAA_ERR_INVAL);
	CU_ASSERT_PTR_NULL(s2);
	CU_ASSERT_EQUAL(kaa__meta_store_new("", NULL, &s2), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_store_new("sqlite:", NULL, &s2), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_store_new(NULL, NULL, &s2), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_store_new("postgresql://[bad", NULL, &s2), KAA_ERR_INVAL);
	kaa__meta_store_free(NULL);
	kaa__meta_obj_clear(NULL);
	kaa__meta_page_clear(NULL);
	kaa__meta_change_clear(NULL);
}

/* ---- tenants ------------------------------------------------------------ */

static void test_tenants(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	char name[128], name2[128];
	snprintf(name, sizeof(name), "%s", meta_suite_name("acme"));
	snprintf(name2, sizeof(name2), "%s", meta_suite_name("acme2"));
	kaa__meta_obj in = {.kind = T, .name = name}, out, got;
	kaa__meta_change chg;

	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &in, &out, &chg), KAA_OK);
	CU_ASSERT(out.id > 0);
	CU_ASSERT_EQUAL(out.kind, T);
	CU_ASSERT_EQUAL(out.version, 1);
	CU_ASSERT(out.created_ms > 1600000000000LL);
	CU_ASSERT_EQUAL(out.created_ms, out.updated_ms);
	CU_ASSERT_EQUAL(out.tenant_id, out.id);
	CU_ASSERT_STRING_EQUAL(out.name, name);
	CU_ASSERT_EQUAL(chg.app_id, 0); /* no application involved */
	kaa__meta_change_clear(&chg);
	int64_t id = out.id;
	kaa__meta_obj_clear(&out);

	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_ERR_EXISTS);
	CU_ASSERT_EQUAL(out.id, 0);
	CU_ASSERT_EQUAL(kaa__meta_get(s, T, id, &got), KAA_OK);
	CU_ASSERT_STRING_EQUAL(got.name, name);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, T, 0, name, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, id);
	kaa__meta_obj_clear(&got);

	kaa__meta_obj up = {.kind = T, .id = id, .version = 1, .name = name2};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.version, 2);
	CU_ASSERT_STRING_EQUAL(out.name, name2);
	CU_ASSERT(out.updated_ms >= out.created_ms);
	kaa__meta_obj_clear(&out);
	/* the second admin still holds version 1 */
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, &out, NULL), KAA_ERR_CONFLICT);
	CU_ASSERT_PTR_NULL(out.name);
	up.version = 0; /* unconditional */
	up.name = NULL; /* keep the name */
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.version, 3);
	CU_ASSERT_STRING_EQUAL(out.name, name2);
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, T, 0, name, &got), KAA_ERR_NOTFOUND);

	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, id, 2, NULL), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, id, 3, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_get(s, T, id, &got), KAA_ERR_NOTFOUND);
	up.version = 3;
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, NULL, NULL), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, id, 0, NULL), KAA_ERR_NOTFOUND);

	/* bad input */
	char longname[KAA_META_NAME_MAX + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	kaa__meta_obj bad = {.kind = T, .name = ""};
	CU_ASSERT_EQUAL(kaa__meta_create(s, &bad, NULL, NULL), KAA_ERR_INVAL);
	bad.name = NULL;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &bad, NULL, NULL), KAA_ERR_INVAL);
	bad.name = longname;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &bad, NULL, NULL), KAA_ERR_INVAL);
	bad.name = "bad\xff\xfe";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &bad, NULL, NULL), KAA_ERR_INVAL);
	bad.name = "overlong\xc0\xaf";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &bad, NULL, NULL), KAA_ERR_INVAL);
	bad.kind = (kaa__meta_kind)99;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &bad, NULL, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_get(s, T, 0, &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_get(s, (kaa__meta_kind)-1, 1, &got), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, -1, 0, NULL), KAA_ERR_INVAL);

	/* UTF-8 round trip (the limit counts bytes) */
	char utf[128];
	snprintf(utf, sizeof(utf), "Z\xc3\xbcrich \xe2\x9c\x93 \xe6\x9d\xb1\xe4\xba\xac %s",
		 meta_suite_name("u"));
	kaa__meta_obj u8 = {.kind = T, .name = utf};
	CU_ASSERT_EQUAL(kaa__meta_create(s, &u8, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.name, utf);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, out.id, 0, NULL), KAA_OK);
	kaa__meta_obj_clear(&out);
	kaa__meta_store_free(s);
}

/* ---- users and API tokens ----------------------------------------------- */

static void test_users_tokens(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t1 = mk_tenant(s), t2 = mk_tenant(s);
	char admin[128], alice[128], bob[128];
	snprintf(admin, sizeof(admin), "%s", meta_suite_name("admin"));
	snprintf(alice, sizeof(alice), "%s", meta_suite_name("alice"));
	snprintf(bob, sizeof(bob), "%s", meta_suite_name("bob"));
	kaa__meta_obj out, got;

	kaa__meta_obj in = {.kind = U,
			    .name = admin,
			    .role = "platform-admin",
			    .password_hash = "pbkdf2-sha256$1$c2FsdA$aGFzaA"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.tenant_id, 0);
	CU_ASSERT_STRING_EQUAL(out.role, "platform-admin");
	CU_ASSERT_STRING_EQUAL(out.password_hash, in.password_hash);
	int64_t admin_id = out.id;
	kaa__meta_obj_clear(&out);

	/* role and tenant go together */
	in.tenant_id = t1;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	in.tenant_id = 0;
	in.role = "tenant-admin";
	in.name = alice;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	in.role = "root";
	in.tenant_id = t1;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	in.role = "tenant-admin";
	in.password_hash = NULL;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	in.password_hash = "h1";
	in.tenant_id = 999999999;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_NOTFOUND);
	in.tenant_id = t1;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.tenant_id, t1);
	int64_t alice_id = out.id;
	kaa__meta_obj_clear(&out);
	/* usernames are global */
	in.tenant_id = t2;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_EXISTS);
	in.name = admin;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_EXISTS);
	in.name = bob;
	in.tenant_id = t1;
	in.role = "tenant-developer";
	int64_t bob_id = mk(s, &in);

	CU_ASSERT_EQUAL(kaa__meta_find_name(s, U, 0, alice, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, alice_id);
	CU_ASSERT_STRING_EQUAL(got.role, "tenant-admin");
	CU_ASSERT_STRING_EQUAL(got.password_hash, "h1");
	kaa__meta_obj_clear(&got);

	kaa__meta_obj up = {.kind = U,
			    .id = alice_id,
			    .version = 1,
			    .role = "tenant-user",
			    .password_hash = "h2"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.version, 2);
	CU_ASSERT_STRING_EQUAL(out.role, "tenant-user");
	CU_ASSERT_STRING_EQUAL(out.password_hash, "h2");
	CU_ASSERT_STRING_EQUAL(out.name, alice);
	kaa__meta_obj_clear(&out);
	up.version = 0;
	up.role = "platform-admin"; /* a tenant user cannot become one */
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, NULL, NULL), KAA_ERR_INVAL);
	up.role = "nope";
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, NULL, NULL), KAA_ERR_INVAL);
	up.role = NULL;
	up.name = bob;
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, NULL, NULL), KAA_ERR_EXISTS);

	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = t1};
	CU_ASSERT_EQUAL(kaa__meta_list(s, U, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 2);
	if (pg.n == 2) {
		CU_ASSERT_EQUAL(pg.items[0].id, alice_id);
		CU_ASSERT_EQUAL(pg.items[1].id, bob_id);
	}
	CU_ASSERT_PTR_NULL(pg.next_cursor);
	kaa__meta_page_clear(&pg);
	q.parent_id = 0; /* platform admins */
	q.limit = KAA_META_LIMIT_MAX;
	CU_ASSERT_EQUAL(kaa__meta_list(s, U, &q, &pg), KAA_OK);
	bool seen = false;
	for (size_t i = 0; i < pg.n; i++) {
		CU_ASSERT_EQUAL(pg.items[i].tenant_id, 0);
		seen |= pg.items[i].id == admin_id;
	}
	CU_ASSERT(seen);
	kaa__meta_page_clear(&pg);

	/* API tokens */
	char h1[96], h2[96];
	snprintf(h1, sizeof(h1), "%s", meta_suite_name("sha256-a"));
	snprintf(h2, sizeof(h2), "%s", meta_suite_name("sha256-b"));
	kaa__meta_obj tk = {.kind = K, .user_id = alice_id, .name = "cli", .token_hash = h1};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &tk, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.user_id, alice_id);
	CU_ASSERT_EQUAL(out.tenant_id, t1);
	CU_ASSERT_STRING_EQUAL(out.token_hash, h1);
	CU_ASSERT_STRING_EQUAL(out.name, "cli");
	int64_t tk_id = out.id;
	kaa__meta_obj_clear(&out);
	tk.user_id = bob_id;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &tk, NULL, NULL), KAA_ERR_EXISTS); /* same hash */
	tk.user_id = alice_id;
	tk.token_hash = h2;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &tk, NULL, NULL), KAA_ERR_EXISTS); /* same name */
	tk.user_id = bob_id;
	int64_t bob_tk = mk(s, &tk);
	tk.user_id = 999999999;
	tk.name = "other";
	tk.token_hash = (char *)meta_suite_name("sha256-x");
	CU_ASSERT_EQUAL(kaa__meta_create(s, &tk, NULL, NULL), KAA_ERR_NOTFOUND);
	tk.user_id = admin_id;
	tk.token_hash = (char *)meta_suite_name("sha256-c");
	CU_ASSERT_EQUAL(kaa__meta_create(s, &tk, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.tenant_id, 0);
	int64_t admin_tk = out.id;
	kaa__meta_obj_clear(&out);

	CU_ASSERT_EQUAL(kaa__meta_find_token(s, h1, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, tk_id);
	CU_ASSERT_EQUAL(got.user_id, alice_id);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_token(s, "no-such-hash", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, K, bob_id, "cli", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, bob_tk);
	kaa__meta_obj_clear(&got);
	kaa__meta_obj tup = {.kind = K, .id = tk_id, .version = 1, .name = "laptop"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &tup, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.name, "laptop");
	CU_ASSERT_STRING_EQUAL(out.token_hash, h1);
	kaa__meta_obj_clear(&out);
	q = (kaa__meta_query){.parent_id = alice_id};
	CU_ASSERT_EQUAL(kaa__meta_list(s, K, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 1);
	kaa__meta_page_clear(&pg);

	/* deleting a user takes its tokens */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, U, alice_id, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_find_token(s, h1, &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_FALSE(exists(s, K, tk_id));
	CU_ASSERT_TRUE(exists(s, K, bob_tk));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t1, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, U, bob_id));
	CU_ASSERT_FALSE(exists(s, K, bob_tk));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, U, admin_id, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, K, admin_tk));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t2, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- applications ---------------------------------------------------------- */

static void test_applications(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t1 = mk_tenant(s), t2 = mk_tenant(s);
	char name[128], tok[128];
	snprintf(name, sizeof(name), "%s", meta_suite_name("thermostat"));
	snprintf(tok, sizeof(tok), "%s", meta_suite_name("token"));
	kaa__meta_obj in = {.kind = A, .tenant_id = t1, .name = name}, out, got;
	kaa__meta_change chg;

	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &in, &out, &chg), KAA_OK);
	CU_ASSERT_EQUAL(out.tenant_id, t1);
	CU_ASSERT_EQUAL(out.app_id, out.id);
	CU_ASSERT_EQUAL(out.app_rev, 1);
	CU_ASSERT_STRING_EQUAL(out.credentials_mode, "trustful");
	CU_ASSERT_PTR_NOT_NULL_FATAL(out.app_token);
	CU_ASSERT_EQUAL(strlen(out.app_token), 32);
	CU_ASSERT_EQUAL(chg.app_id, out.id);
	CU_ASSERT_EQUAL(chg.app_rev, 1);
	int64_t app = out.id;
	char gen_token[64];
	snprintf(gen_token, sizeof(gen_token), "%s", out.app_token);
	kaa__meta_obj_clear(&out);

	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_EXISTS);
	in.tenant_id = t2; /* same name in another tenant is fine */
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_NOT_EQUAL(out.app_token, gen_token);
	kaa__meta_obj_clear(&out);
	in.tenant_id = t1;
	in.name = (char *)meta_suite_name("provisioned");
	in.app_token = tok;
	in.credentials_mode = "provisioned";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.app_token, tok);
	CU_ASSERT_STRING_EQUAL(out.credentials_mode, "provisioned");
	kaa__meta_obj_clear(&out);
	in.name = (char *)meta_suite_name("dup-token");
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_EXISTS);
	in.app_token = NULL;
	in.credentials_mode = "sometimes";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	in.credentials_mode = NULL;
	in.tenant_id = 999999999;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_NOTFOUND);
	in.tenant_id = 0;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);

	CU_ASSERT_EQUAL(kaa__meta_find_app_token(s, gen_token, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, app);
	CU_ASSERT_EQUAL(got.tenant_id, t1);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_app_token(s, "nope", &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, A, t1, name, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, app);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, A, 0, name, &got), KAA_ERR_INVAL);

	kaa__meta_obj up = {.kind = A, .id = app, .version = 1, .credentials_mode = "provisioned"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, &out, &chg), KAA_OK);
	CU_ASSERT_EQUAL(out.version, 2);
	CU_ASSERT_EQUAL(out.app_rev, 2);
	CU_ASSERT_STRING_EQUAL(out.credentials_mode, "provisioned");
	CU_ASSERT_STRING_EQUAL(out.name, name);
	CU_ASSERT_STRING_EQUAL(out.app_token, gen_token);
	CU_ASSERT_EQUAL(chg.app_id, app);
	CU_ASSERT_EQUAL(chg.app_rev, 2);
	kaa__meta_obj_clear(&out);

	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = t1};
	CU_ASSERT_EQUAL(kaa__meta_list(s, A, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 2);
	kaa__meta_page_clear(&pg);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t1, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t2, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- schemas --------------------------------------------------------------- */

static void test_schemas(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), app = mk_app(s, t), app2 = mk_app(s, t);
	kaa__meta_obj out, got;
	const char *body = "{\"type\":\"record\",\"name\":\"Profile\",\"fields\":"
			   "[{\"name\":\"fw\",\"type\":\"string\"}]}";
	kaa__meta_obj in = {.kind = SC,
			    .app_id = app,
			    .schema_kind = "profile-client",
			    .name = "v1",
			    .body = (char *)body};

	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 1);
	CU_ASSERT_STRING_EQUAL(out.schema_kind, "profile-client");
	CU_ASSERT_STRING_EQUAL(out.body, body);
	CU_ASSERT_STRING_EQUAL(out.name, "v1");
	CU_ASSERT_EQUAL(out.app_id, app);
	CU_ASSERT_EQUAL(out.tenant_id, t);
	kaa__meta_obj_clear(&out);
	in.name = NULL;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 2);
	CU_ASSERT_STRING_EQUAL(out.name, "");
	int64_t v2 = out.id;
	kaa__meta_obj_clear(&out);
	in.schema_kind = "log";
	in.body = "\"string\""; /* a primitive Avro schema is a JSON string */
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 1);
	kaa__meta_obj_clear(&out);
	in.app_id = app2;
	in.schema_kind = "profile-client";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 1);
	kaa__meta_obj_clear(&out);

	/* versions are never reused */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, SC, v2, 1, NULL), KAA_OK);
	in.app_id = app;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 3);
	int64_t v3 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_find_schema(s, app, "profile-client", 3, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, v3);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_schema(s, app, "profile-client", 2, &got), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__meta_find_schema(s, app, "nope", 1, &got), KAA_ERR_INVAL);

	/* only the name changes */
	kaa__meta_obj up = {.kind = SC, .id = v3, .version = 1, .name = "renamed", .body = "[]"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &up, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.name, "renamed");
	CU_ASSERT_STRING_EQUAL(out.body, "\"string\"");
	CU_ASSERT_EQUAL(out.schema_version, 3);
	kaa__meta_obj_clear(&out);

	/* bad input */
	const char *bad_bodies[] = {"{", "", "{\"a\":}", "[1,]", "nul", "{} {}", "\"\xff\""};
	for (size_t i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		in.body = (char *)bad_bodies[i];
		CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	}
	in.body = NULL;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	char *big = malloc(KAA_META_BODY_MAX + 3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	memset(big, ' ', KAA_META_BODY_MAX + 2);
	big[0] = '"';
	big[KAA_META_BODY_MAX + 1] = '"';
	big[KAA_META_BODY_MAX + 2] = '\0';
	in.body = big;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_TOO_BIG);
	free(big);
	in.body = "{}";
	in.schema_kind = "profile";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_INVAL);
	in.schema_kind = "log";
	in.app_id = 999999999;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, NULL, NULL), KAA_ERR_NOTFOUND);

	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = app};
	CU_ASSERT_EQUAL(kaa__meta_list(s, SC, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 3);
	kaa__meta_page_clear(&pg);
	q.schema_kind = "log";
	CU_ASSERT_EQUAL(kaa__meta_list(s, SC, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 1);
	if (pg.n == 1)
		CU_ASSERT_STRING_EQUAL(pg.items[0].schema_kind, "log");
	kaa__meta_page_clear(&pg);
	q.schema_kind = "log' OR 1=1 --";
	CU_ASSERT_EQUAL(kaa__meta_list(s, SC, &q, &pg), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- groups and configurations ------------------------------------------- */

static void test_groups_configurations(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), app = mk_app(s, t), other = mk_app(s, t);
	kaa__meta_obj out, got;

	kaa__meta_obj g = {.kind = G, .app_id = app, .name = "all", .weight = 0};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &g, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.body, "{}");
	CU_ASSERT_EQUAL(out.weight, 0);
	int64_t g1 = out.id;
	kaa__meta_obj_clear(&out);
	g.name = "fw-2";
	g.weight = 10;
	g.body = "{\"profile.fw\":{\"$eq\":\"2.0\"}}";
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &g, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.body, g.body);
	CU_ASSERT_EQUAL(out.weight, 10);
	int64_t g2 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &g, NULL, NULL), KAA_ERR_EXISTS);
	g.app_id = other; /* names are per application */
	int64_t g_other = mk(s, &g);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, G, app, "fw-2", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, g2);
	kaa__meta_obj_clear(&got);
	g.body = "{bad";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &g, NULL, NULL), KAA_ERR_INVAL);

	int64_t cs = mk_schema(s, app, "configuration");
	kaa__meta_obj c = {
		.kind = CF, .group_id = g1, .schema_version = 1, .body = "{\"interval\":10}"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &c, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.group_id, g1);
	CU_ASSERT_EQUAL(out.app_id, app);
	CU_ASSERT_EQUAL(out.tenant_id, t);
	CU_ASSERT_EQUAL(out.schema_version, 1);
	CU_ASSERT_STRING_EQUAL(out.body, "{\"interval\":10}");
	int64_t c1 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &c, NULL, NULL), KAA_ERR_EXISTS);
	c.schema_version = 2;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &c, NULL, NULL), KAA_ERR_NOTFOUND);
	c.group_id = g_other; /* the other app has no configuration schema */
	c.schema_version = 1;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &c, NULL, NULL), KAA_ERR_NOTFOUND);
	c.group_id = 999999999;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &c, NULL, NULL), KAA_ERR_NOTFOUND);
	c.group_id = g2;
	c.body = NULL;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &c, NULL, NULL), KAA_ERR_INVAL);
	c.body = "{\"interval\":1}";
	int64_t c2 = mk(s, &c);

	kaa__meta_obj cu = {.kind = CF, .id = c1, .version = 1, .body = "{\"interval\":20}"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &cu, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.version, 2);
	CU_ASSERT_STRING_EQUAL(out.body, "{\"interval\":20}");
	kaa__meta_obj_clear(&out);
	kaa__meta_obj gu = {.kind = G, .id = g2, .version = 1, .weight = 20, .body = "{}"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &gu, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.weight, 20);
	CU_ASSERT_STRING_EQUAL(out.body, "{}");
	CU_ASSERT_STRING_EQUAL(out.name, "fw-2");
	kaa__meta_obj_clear(&out);
	gu.version = 2;
	gu.name = "all";
	CU_ASSERT_EQUAL(kaa__meta_update(s, &gu, NULL, NULL), KAA_ERR_EXISTS);

	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = app};
	CU_ASSERT_EQUAL(kaa__meta_list(s, CF, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 2);
	kaa__meta_page_clear(&pg);
	q.ref_id = g1;
	CU_ASSERT_EQUAL(kaa__meta_list(s, CF, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 1);
	if (pg.n == 1)
		CU_ASSERT_EQUAL(pg.items[0].id, c1);
	kaa__meta_page_clear(&pg);

	/* a group takes its configurations; a configuration schema too */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, G, g2, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, CF, c2));
	CU_ASSERT_TRUE(exists(s, CF, c1));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, SC, cs, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, CF, c1));
	CU_ASSERT_TRUE(exists(s, G, g1));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- topics and notifications --------------------------------------------- */

static void test_topics_notifications(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), app = mk_app(s, t), other = mk_app(s, t);
	int64_t g1 = mk_group(s, app, 0), g2 = mk_group(s, app, 5), gx = mk_group(s, other, 0);
	kaa__meta_obj out, got;

	int64_t groups[] = {g2, g1, g2}; /* duplicates collapse; read back sorted */
	kaa__meta_obj tp = {.kind = TP,
			    .app_id = app,
			    .name = "news",
			    .mandatory = true,
			    .group_ids = groups,
			    .n_group_ids = 3};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &tp, &out, NULL), KAA_OK);
	CU_ASSERT_TRUE(out.mandatory);
	CU_ASSERT_EQUAL(out.seq, 0);
	CU_ASSERT_EQUAL_FATAL(out.n_group_ids, 2);
	CU_ASSERT_EQUAL(out.group_ids[0], g1 < g2 ? g1 : g2);
	CU_ASSERT_EQUAL(out.group_ids[1], g1 < g2 ? g2 : g1);
	int64_t topic = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &tp, NULL, NULL), KAA_ERR_EXISTS);
	int64_t foreign[] = {gx};
	tp.name = "alerts";
	tp.group_ids = foreign;
	tp.n_group_ids = 1;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &tp, NULL, NULL), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, TP, app, "alerts", &got), KAA_ERR_NOTFOUND);

	int64_t only2[] = {g2};
	kaa__meta_obj tu = {
		.kind = TP, .id = topic, .version = 1, .group_ids = only2, .n_group_ids = 1};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &tu, &out, NULL), KAA_OK);
	CU_ASSERT_FALSE(out.mandatory);
	CU_ASSERT_STRING_EQUAL(out.name, "news");
	CU_ASSERT_EQUAL(out.n_group_ids, 1);
	kaa__meta_obj_clear(&out);
	tu.version = 2;
	tu.group_ids = foreign;
	CU_ASSERT_EQUAL(kaa__meta_update(s, &tu, NULL, NULL), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__meta_get(s, TP, topic, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.version, 2); /* the failed update changed nothing */
	CU_ASSERT_EQUAL(got.n_group_ids, 1);
	kaa__meta_obj_clear(&got);

	int64_t t0 = kaa__wall_ms();
	kaa__meta_obj n = {.kind = N, .topic_id = topic, .body = "{\"msg\":\"hello\"}"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &n, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.seq, 1);
	CU_ASSERT_EQUAL(out.topic_id, topic);
	CU_ASSERT_EQUAL(out.app_id, app);
	CU_ASSERT_PTR_NULL(out.endpoint_key_hash);
	CU_ASSERT(out.expires_ms >= t0 + KAA_META_NOTIFICATION_TTL_MS &&
		  out.expires_ms <= kaa__wall_ms() + KAA_META_NOTIFICATION_TTL_MS);
	int64_t n1 = out.id;
	kaa__meta_obj_clear(&out);
	n.endpoint_key_hash = "ekh-1";
	n.expires_ms = t0 + 1000;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &n, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.seq, 2);
	CU_ASSERT_STRING_EQUAL(out.endpoint_key_hash, "ekh-1");
	CU_ASSERT_EQUAL(out.expires_ms, t0 + 1000);
	int64_t n2 = out.id;
	kaa__meta_obj_clear(&out);
	n.endpoint_key_hash = NULL;
	n.expires_ms = 0;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &n, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.seq, 3);
	kaa__meta_obj_clear(&out);
	n.topic_id = 999999999;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &n, NULL, NULL), KAA_ERR_NOTFOUND);
	n.topic_id = topic;
	n.body = "not json";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &n, NULL, NULL), KAA_ERR_INVAL);
	kaa__meta_obj nu = {.kind = N, .id = n1, .version = 1, .body = "{}"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &nu, NULL, NULL), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__meta_get(s, TP, topic, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.seq, 3);
	kaa__meta_obj_clear(&got);

	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = app, .ref_id = topic};
	CU_ASSERT_EQUAL(kaa__meta_list(s, N, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 3);
	for (size_t i = 0; i < pg.n; i++)
		CU_ASSERT_EQUAL(pg.items[i].seq, (int64_t)i + 1);
	kaa__meta_page_clear(&pg);

	/* expiry removes only what is due */
	int64_t deleted = -1;
	CU_ASSERT_EQUAL(kaa__meta_notifications_expire(s, t0 + 2000, &deleted), KAA_OK);
	CU_ASSERT(deleted >= 1);
	CU_ASSERT_FALSE(exists(s, N, n2));
	CU_ASSERT_TRUE(exists(s, N, n1));

	/* a deleted group leaves the topic; a deleted topic takes its notifications */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, G, g2, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_get(s, TP, topic, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.n_group_ids, 0);
	CU_ASSERT_PTR_NULL(got.group_ids);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, TP, topic, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, N, n1));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- log appenders, credentials, SDK profiles --------------------------------- */

static void test_appenders_credentials_sdk(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), app = mk_app(s, t);
	kaa__meta_obj out, got;

	kaa__meta_obj la = {.kind = L, .app_id = app, .name = "sqlite-logs"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &la, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.body, "{}");
	int64_t la_id = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &la, NULL, NULL), KAA_ERR_EXISTS);
	kaa__meta_obj lu = {.kind = L, .id = la_id, .version = 1, .body = "{\"ttl_days\":30}"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &lu, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.body, "{\"ttl_days\":30}");
	CU_ASSERT_STRING_EQUAL(out.name, "sqlite-logs");
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, L, app, "sqlite-logs", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.version, 2);
	kaa__meta_obj_clear(&got);

	kaa__meta_obj cr = {.kind = CR,
			    .app_id = app,
			    .endpoint_key_hash = "ekh-42",
			    .public_key =
				    "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &cr, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.status, "provisioned");
	CU_ASSERT_STRING_EQUAL(out.public_key, cr.public_key);
	CU_ASSERT_STRING_EQUAL(out.endpoint_key_hash, "ekh-42");
	int64_t cr_id = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &cr, NULL, NULL), KAA_ERR_EXISTS);
	cr.endpoint_key_hash = "ekh-43";
	cr.status = "lost";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &cr, NULL, NULL), KAA_ERR_INVAL);
	cr.status = NULL;
	cr.public_key = NULL;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &cr, NULL, NULL), KAA_ERR_INVAL);
	kaa__meta_obj cu = {.kind = CR, .id = cr_id, .version = 1, .status = "revoked"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &cu, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.status, "revoked");
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_find_credential(s, app, "ekh-42", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, cr_id);
	CU_ASSERT_STRING_EQUAL(got.status, "revoked");
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_credential(s, app, "ekh-43", &got), KAA_ERR_NOTFOUND);

	kaa__meta_obj sd = {.kind = SD,
			    .app_id = app,
			    .name = "fw-1.0",
			    .body = "{\"profile-client\":1,\"configuration\":1,\"log\":2}"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &sd, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.bootstrap, "[]");
	CU_ASSERT_STRING_EQUAL(out.body, sd.body);
	int64_t sd_id = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &sd, NULL, NULL), KAA_ERR_EXISTS);
	sd.name = "bad";
	sd.bootstrap = "[\"ws://a:8081\"";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &sd, NULL, NULL), KAA_ERR_INVAL);
	kaa__meta_obj su = {
		.kind = SD, .id = sd_id, .version = 1, .bootstrap = "[\"ws://10.0.0.1:8081\"]"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &su, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.bootstrap, "[\"ws://10.0.0.1:8081\"]");
	CU_ASSERT_STRING_EQUAL(out.name, "fw-1.0");
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, SD, app, "fw-1.0", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, sd_id);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, CR, app, "ekh-42", &got), KAA_ERR_INVAL);

	CU_ASSERT_EQUAL(kaa__meta_delete(s, CR, cr_id, 2, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, L, la_id));
	CU_ASSERT_FALSE(exists(s, SD, sd_id));
	kaa__meta_store_free(s);
}

/* ---- event families, event maps, user verifiers ------------------------------- */

static void test_events_verifiers(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), t2 = mk_tenant(s), app = mk_app(s, t);
	kaa__meta_obj out, got;
	const char *classes = "[{\"fqn\":\"org.x.Temp\",\"schema\":{\"type\":\"record\","
			      "\"name\":\"Temp\",\"fields\":[]}}]";

	/* versions per (tenant, name), never reused, other tenants independent */
	kaa__meta_obj ef = {.kind = EF, .tenant_id = t, .name = "thermo", .body = (char *)classes};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &ef, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 1);
	CU_ASSERT_EQUAL(out.tenant_id, t);
	CU_ASSERT_EQUAL(out.app_id, 0);
	int64_t f1 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &ef, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 2);
	int64_t f2 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, EF, f2, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &ef, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 2); /* max + 1 after the delete of 2 */
	int64_t f3 = out.id;
	kaa__meta_obj_clear(&out);
	kaa__meta_obj ef2 = {.kind = EF, .tenant_id = t2, .name = "thermo", .body = "[]"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &ef2, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.schema_version, 1);
	kaa__meta_obj_clear(&out);
	kaa__meta_obj efu = {.kind = EF, .id = f1, .version = 1, .name = "x"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &efu, NULL, NULL), KAA_ERR_INVAL); /* immutable */
	ef.body = "[";
	CU_ASSERT_EQUAL(kaa__meta_create(s, &ef, NULL, NULL), KAA_ERR_INVAL);
	ef.body = (char *)classes;
	ef.tenant_id = 0;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &ef, NULL, NULL), KAA_ERR_INVAL);

	/* maps bump the app revision; one map per family version per app */
	int64_t rev = app_rev(s, app);
	kaa__meta_obj em = {
		.kind = EM, .app_id = app, .family_id = f1, .body = "{\"org.x.Temp\":\"source\"}"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &em, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.family_id, f1);
	CU_ASSERT_EQUAL(out.tenant_id, t);
	int64_t m1 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(app_rev(s, app), rev + 1);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &em, NULL, NULL), KAA_ERR_EXISTS);
	em.family_id = 999999999;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &em, NULL, NULL), KAA_ERR_NOTFOUND);
	kaa__meta_obj emu = {
		.kind = EM, .id = m1, .version = 1, .body = "{\"org.x.Temp\":\"both\"}"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &emu, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.body, "{\"org.x.Temp\":\"both\"}");
	CU_ASSERT_EQUAL(out.family_id, f1);
	kaa__meta_obj_clear(&out);
	/* a mapped family version cannot be deleted */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, EF, f1, 0, NULL), KAA_ERR_CONFLICT);
	CU_ASSERT_TRUE(exists(s, EF, f1));

	kaa__meta_obj uv = {.kind = UV,
			    .app_id = app,
			    .name = "default",
			    .body = "{\"type\":\"jwt-hs256\",\"secret\":\"s3cr3t\"}"};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &uv, &out, NULL), KAA_OK);
	int64_t v1 = out.id;
	kaa__meta_obj_clear(&out);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &uv, NULL, NULL), KAA_ERR_EXISTS);
	CU_ASSERT_EQUAL(kaa__meta_find_name(s, UV, app, "default", &got), KAA_OK);
	CU_ASSERT_EQUAL(got.id, v1);
	CU_ASSERT_STRING_EQUAL(got.body, uv.body);
	kaa__meta_obj_clear(&got);
	kaa__meta_obj uvu = {.kind = UV, .id = v1, .version = 1, .body = "{\"type\":\"trustful\"}"};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &uvu, &out, NULL), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out.name, "default");
	kaa__meta_obj_clear(&out);

	/* lists: families by tenant, maps and verifiers by app */
	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = t};
	CU_ASSERT_EQUAL_FATAL(kaa__meta_list(s, EF, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 2);
	if (pg.n == 2) {
		CU_ASSERT_EQUAL(pg.items[0].id, f1);
		CU_ASSERT_EQUAL(pg.items[1].id, f3);
	}
	kaa__meta_page_clear(&pg);
	q.parent_id = app;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_list(s, EM, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 1);
	kaa__meta_page_clear(&pg);
	CU_ASSERT_EQUAL_FATAL(kaa__meta_list(s, UV, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 1);
	kaa__meta_page_clear(&pg);

	/* unmapped, the family goes; the tenant's cascade takes everything */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, EM, m1, 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, EF, f3, 0, NULL), KAA_OK);
	em.family_id = f1;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &em, NULL, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	CU_ASSERT_FALSE(exists(s, EF, f1));
	CU_ASSERT_FALSE(exists(s, UV, v1));
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t2, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- cascades ---------------------------------------------------------------- */

struct tree {
	int64_t tenant, user, token, app, app2, schema, group, config, topic, notif, appender, cred,
		sdk;
};

static void build_tree(kaa__meta_store *s, struct tree *tr)
{
	memset(tr, 0, sizeof(*tr));
	tr->tenant = mk_tenant(s);
	kaa__meta_obj u = {.kind = U,
			   .tenant_id = tr->tenant,
			   .name = (char *)meta_suite_name("user"),
			   .role = "tenant-developer",
			   .password_hash = "h"};
	tr->user = mk(s, &u);
	kaa__meta_obj k = {.kind = K,
			   .user_id = tr->user,
			   .name = "t",
			   .token_hash = (char *)meta_suite_name("hash")};
	tr->token = mk(s, &k);
	tr->app = mk_app(s, tr->tenant);
	tr->app2 = mk_app(s, tr->tenant);
	tr->schema = mk_schema(s, tr->app, "configuration");
	tr->group = mk_group(s, tr->app, 0);
	kaa__meta_obj c = {.kind = CF, .group_id = tr->group, .schema_version = 1, .body = "{}"};
	tr->config = mk(s, &c);
	kaa__meta_obj tp = {.kind = TP,
			    .app_id = tr->app,
			    .name = "t",
			    .group_ids = &tr->group,
			    .n_group_ids = 1};
	tr->topic = mk(s, &tp);
	kaa__meta_obj n = {.kind = N, .topic_id = tr->topic, .body = "{}"};
	tr->notif = mk(s, &n);
	kaa__meta_obj la = {.kind = L, .app_id = tr->app, .name = "l"};
	tr->appender = mk(s, &la);
	kaa__meta_obj cr = {
		.kind = CR, .app_id = tr->app, .endpoint_key_hash = "e", .public_key = "pk"};
	tr->cred = mk(s, &cr);
	kaa__meta_obj sd = {.kind = SD, .app_id = tr->app, .name = "sdk"};
	tr->sdk = mk(s, &sd);
}

static void test_cascades(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	struct tree tr;
	kaa__meta_change chg;
	build_tree(s, &tr);
	int64_t app2_schema = mk_schema(s, tr.app2, "log");

	CU_ASSERT_EQUAL(kaa__meta_delete(s, A, tr.app, 0, &chg), KAA_OK);
	CU_ASSERT_EQUAL(chg.app_id, tr.app);
	CU_ASSERT_EQUAL_FATAL(chg.n_deleted_apps, 1);
	CU_ASSERT_EQUAL(chg.deleted_apps[0], tr.app);
	kaa__meta_change_clear(&chg);
	const struct {
		kaa__meta_kind kind;
		int64_t id;
	} gone[] = {{A, tr.app},   {SC, tr.schema},  {G, tr.group}, {CF, tr.config}, {TP, tr.topic},
		    {N, tr.notif}, {L, tr.appender}, {CR, tr.cred}, {SD, tr.sdk}};
	for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
		CU_ASSERT_FALSE(exists(s, gone[i].kind, gone[i].id));
	CU_ASSERT_TRUE(exists(s, A, tr.app2));
	CU_ASSERT_TRUE(exists(s, SC, app2_schema));
	CU_ASSERT_TRUE(exists(s, U, tr.user));

	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, tr.tenant, 0, &chg), KAA_OK);
	CU_ASSERT_EQUAL(chg.app_id, 0);
	CU_ASSERT_EQUAL_FATAL(chg.n_deleted_apps, 1);
	CU_ASSERT_EQUAL(chg.deleted_apps[0], tr.app2);
	kaa__meta_change_clear(&chg);
	CU_ASSERT_FALSE(exists(s, T, tr.tenant));
	CU_ASSERT_FALSE(exists(s, U, tr.user));
	CU_ASSERT_FALSE(exists(s, K, tr.token));
	CU_ASSERT_FALSE(exists(s, A, tr.app2));
	CU_ASSERT_FALSE(exists(s, SC, app2_schema));
	/* a fresh tree is deleted in one go from the top */
	build_tree(s, &tr);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, tr.tenant, 1, &chg), KAA_OK);
	CU_ASSERT_EQUAL(chg.n_deleted_apps, 2);
	kaa__meta_change_clear(&chg);
	CU_ASSERT_FALSE(exists(s, N, tr.notif));
	CU_ASSERT_FALSE(exists(s, CF, tr.config));
	CU_ASSERT_FALSE(exists(s, K, tr.token));
	kaa__meta_store_free(s);
}

/* Every kind can be listed in its scope and deleted on its own, leaves first. */
static void test_list_delete_every_kind(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	struct tree tr;
	build_tree(s, &tr);
	const struct {
		kaa__meta_kind kind;
		int64_t id, scope;
	} objs[] = {{N, tr.notif, tr.app},   {CF, tr.config, tr.app}, {TP, tr.topic, tr.app},
		    {G, tr.group, tr.app},   {SC, tr.schema, tr.app}, {L, tr.appender, tr.app},
		    {CR, tr.cred, tr.app},   {SD, tr.sdk, tr.app},    {K, tr.token, tr.user},
		    {U, tr.user, tr.tenant}, {A, tr.app, tr.tenant},  {A, tr.app2, tr.tenant},
		    {T, tr.tenant, 0}};
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		kaa__meta_page pg;
		kaa__meta_query q = {.parent_id = objs[i].scope, .limit = KAA_META_LIMIT_MAX};
		bool found = false;
		do {
			int rc = kaa__meta_list(s, objs[i].kind, &q, &pg);
			if (rc != KAA_OK)
				fprintf(stderr, "list %s: %s\n", kaa__meta_kind_name(objs[i].kind),
					kaa_strerror(rc));
			CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
			for (size_t j = 0; j < pg.n; j++) {
				found |= pg.items[j].id == objs[i].id;
				CU_ASSERT_EQUAL(pg.items[j].kind, objs[i].kind);
				if (objs[i].kind != T)
					CU_ASSERT_EQUAL(pg.items[j].tenant_id, tr.tenant);
			}
			free((char *)q.cursor);
			q.cursor = pg.next_cursor ? strdup(pg.next_cursor) : NULL;
			kaa__meta_page_clear(&pg);
		} while (q.cursor);
		CU_ASSERT_TRUE(found);
		kaa__meta_obj o;
		CU_ASSERT_EQUAL_FATAL(kaa__meta_get(s, objs[i].kind, objs[i].id, &o), KAA_OK);
		CU_ASSERT_EQUAL(kaa__meta_delete(s, objs[i].kind, objs[i].id, o.version + 1, NULL),
				KAA_ERR_CONFLICT);
		CU_ASSERT_EQUAL(kaa__meta_delete(s, objs[i].kind, objs[i].id, o.version, NULL),
				KAA_OK);
		CU_ASSERT_EQUAL(kaa__meta_delete(s, objs[i].kind, objs[i].id, 0, NULL),
				KAA_ERR_NOTFOUND);
		kaa__meta_obj_clear(&o);
	}
	kaa__meta_store_free(s);
}

/* ---- optimistic concurrency on every mutable kind ---------------------------- */

static void test_version_conflicts(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	struct tree tr;
	build_tree(s, &tr);
	const struct {
		kaa__meta_kind kind;
		int64_t id;
	} objs[] = {{T, tr.tenant},   {U, tr.user},  {K, tr.token},   {A, tr.app},
		    {SC, tr.schema},  {G, tr.group}, {CF, tr.config}, {TP, tr.topic},
		    {L, tr.appender}, {CR, tr.cred}, {SD, tr.sdk}};
	for (size_t i = 0; i < sizeof(objs) / sizeof(objs[0]); i++) {
		kaa__meta_obj a, b, out;
		/* two admins read the same version */
		int rc = kaa__meta_get(s, objs[i].kind, objs[i].id, &a);
		if (rc != KAA_OK)
			fprintf(stderr, "get %s: %s\n", kaa__meta_kind_name(objs[i].kind),
				kaa_strerror(rc));
		CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
		CU_ASSERT_EQUAL_FATAL(kaa__meta_get(s, objs[i].kind, objs[i].id, &b), KAA_OK);
		int64_t v = a.version;
		CU_ASSERT_EQUAL(kaa__meta_update(s, &a, &out, NULL), KAA_OK);
		CU_ASSERT_EQUAL(out.version, v + 1);
		CU_ASSERT(out.updated_ms >= a.updated_ms);
		kaa__meta_obj_clear(&out);
		rc = kaa__meta_update(s, &b, NULL, NULL);
		if (rc != KAA_ERR_CONFLICT)
			fprintf(stderr, "kind %s: %s\n", kaa__meta_kind_name(objs[i].kind),
				kaa_strerror(rc));
		CU_ASSERT_EQUAL(rc, KAA_ERR_CONFLICT);
		if (objs[i].kind != T) /* keep the tenant for the cleanup below */
			CU_ASSERT_EQUAL(kaa__meta_delete(s, objs[i].kind, objs[i].id, v, NULL),
					KAA_ERR_CONFLICT);
		kaa__meta_obj_clear(&a);
		kaa__meta_obj_clear(&b);
	}
	/* notifications are immutable but deletable by version */
	CU_ASSERT_EQUAL(kaa__meta_delete(s, N, tr.notif, 2, NULL), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, N, tr.notif, 1, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, tr.tenant, 2, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- pagination ---------------------------------------------------------------- */

static bool page_all(kaa__meta_store *s, kaa__meta_kind kind, kaa__meta_query q, int64_t *ids,
		     size_t max, size_t *n, size_t *pages, size_t *last_page)
{
	char *cursor = NULL;
	*n = *pages = 0;
	for (;;) {
		kaa__meta_page pg;
		q.cursor = cursor;
		int rc = kaa__meta_list(s, kind, &q, &pg);
		CU_ASSERT_EQUAL(rc, KAA_OK);
		free(cursor);
		cursor = NULL;
		if (rc != KAA_OK)
			return false;
		(*pages)++;
		*last_page = pg.n;
		for (size_t i = 0; i < pg.n && *n < max; i++)
			ids[(*n)++] = pg.items[i].id;
		if (pg.next_cursor)
			cursor = strdup(pg.next_cursor);
		kaa__meta_page_clear(&pg);
		if (!cursor || *pages > 1000)
			break;
	}
	free(cursor);
	return true;
}

static void test_pagination(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), app = mk_app(s, t), made[25], got[64];
	size_t n, pages, last;

	for (int i = 0; i < 25; i++)
		made[i] = mk_group(s, app, i);
	kaa__meta_query q = {.parent_id = app, .limit = 10};
	CU_ASSERT_TRUE(page_all(s, G, q, got, 64, &n, &pages, &last));
	CU_ASSERT_EQUAL(n, 25);
	CU_ASSERT_EQUAL(pages, 3);
	CU_ASSERT_EQUAL(last, 5);
	for (size_t i = 0; i < n && i < 25; i++)
		CU_ASSERT_EQUAL(got[i], made[i]); /* ascending id, none twice or missing */
	q.limit = 25;                             /* an exact fit has no next page */
	CU_ASSERT_TRUE(page_all(s, G, q, got, 64, &n, &pages, &last));
	CU_ASSERT_EQUAL(n, 25);
	CU_ASSERT_EQUAL(pages, 1);
	q.limit = 0; /* the default */
	CU_ASSERT_TRUE(page_all(s, G, q, got, 64, &n, &pages, &last));
	CU_ASSERT_EQUAL(n, 25);
	q.limit = 100000; /* capped */
	CU_ASSERT_TRUE(page_all(s, G, q, got, 64, &n, &pages, &last));
	CU_ASSERT_EQUAL(n, 25);

	/* objects created between pages show up later, nothing repeats */
	kaa__meta_page pg;
	q.limit = 10;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_list(s, G, &q, &pg), KAA_OK);
	int64_t extra = mk_group(s, app, 99);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, G, made[0], 0, NULL), KAA_OK);
	q.cursor = pg.next_cursor;
	kaa__meta_page pg2;
	size_t total = pg.n;
	bool saw_extra = false;
	while (q.cursor) {
		CU_ASSERT_EQUAL_FATAL(kaa__meta_list(s, G, &q, &pg2), KAA_OK);
		for (size_t i = 0; i < pg2.n; i++) {
			saw_extra |= pg2.items[i].id == extra;
			CU_ASSERT_NOT_EQUAL(pg2.items[i].id, made[0]);
		}
		total += pg2.n;
		kaa__meta_page_clear(&pg);
		pg = pg2;
		q.cursor = pg.next_cursor;
	}
	kaa__meta_page_clear(&pg);
	CU_ASSERT_TRUE(saw_extra);
	CU_ASSERT_EQUAL(total, 26);

	/* tenants are global: ours appear exactly once, in id order */
	int64_t tenants[25];
	for (int i = 0; i < 25; i++)
		tenants[i] = mk_tenant(s);
	size_t cap = 100000;
	int64_t *all = malloc(cap * sizeof(*all));
	CU_ASSERT_PTR_NOT_NULL_FATAL(all);
	kaa__meta_query tq = {.limit = 10};
	CU_ASSERT_TRUE(page_all(s, T, tq, all, cap, &n, &pages, &last));
	int found = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			CU_ASSERT(all[i] > all[i - 1]);
		for (int j = 0; j < 25; j++)
			found += all[i] == tenants[j];
	}
	CU_ASSERT_EQUAL(found, 25);
	free(all);

	/* bad cursors and scopes */
	const char *bad[] = {"zz", "k", "k0", "kxyz", "1", "k1' OR '1'='1", "k12345678901234567"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		q.cursor = bad[i];
		CU_ASSERT_EQUAL(kaa__meta_list(s, G, &q, &pg), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(pg.n, 0);
	}
	q.cursor = NULL;
	q.parent_id = 0;
	CU_ASSERT_EQUAL(kaa__meta_list(s, G, &q, &pg), KAA_ERR_INVAL);
	q.parent_id = 999999999; /* an unknown scope is an empty list */
	CU_ASSERT_EQUAL(kaa__meta_list(s, G, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 0);
	CU_ASSERT_PTR_NULL(pg.next_cursor);
	kaa__meta_page_clear(&pg);
	CU_ASSERT_EQUAL(kaa__meta_list(s, G, NULL, &pg), KAA_ERR_INVAL);

	for (int i = 0; i < 25; i++)
		CU_ASSERT_EQUAL(kaa__meta_delete(s, T, tenants[i], 0, NULL), KAA_OK);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- per-application revision ------------------------------------------------- */

static void test_app_rev(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	int64_t t = mk_tenant(s), app = mk_app(s, t), other = mk_app(s, t);
	kaa__meta_change chg;
	kaa__meta_obj out;
	int64_t rev = app_rev(s, app), other_rev = app_rev(s, other);
	CU_ASSERT_EQUAL(rev, 1);

/* each change bumps the application's revision by one and reports it */
#define EXPECT_BUMP(call)                              \
	do {                                           \
		CU_ASSERT_EQUAL(call, KAA_OK);         \
		rev++;                                 \
		CU_ASSERT_EQUAL(chg.app_id, app);      \
		CU_ASSERT_EQUAL(chg.app_rev, rev);     \
		CU_ASSERT_EQUAL(app_rev(s, app), rev); \
		kaa__meta_change_clear(&chg);          \
	} while (0)

	kaa__meta_obj sc = {
		.kind = SC, .app_id = app, .schema_kind = "configuration", .body = "{}"};
	EXPECT_BUMP(kaa__meta_create(s, &sc, &out, &chg));
	int64_t sc_id = out.id;
	kaa__meta_obj_clear(&out);
	kaa__meta_obj g = {.kind = G, .app_id = app, .name = "g"};
	EXPECT_BUMP(kaa__meta_create(s, &g, &out, &chg));
	int64_t g_id = out.id;
	kaa__meta_obj_clear(&out);
	kaa__meta_obj gu = {.kind = G, .id = g_id, .version = 1, .weight = 3};
	EXPECT_BUMP(kaa__meta_update(s, &gu, NULL, &chg));
	kaa__meta_obj c = {.kind = CF, .group_id = g_id, .schema_version = 1, .body = "{}"};
	EXPECT_BUMP(kaa__meta_create(s, &c, NULL, &chg));
	kaa__meta_obj tp = {
		.kind = TP, .app_id = app, .name = "t", .group_ids = &g_id, .n_group_ids = 1};
	EXPECT_BUMP(kaa__meta_create(s, &tp, &out, &chg));
	int64_t tp_id = out.id;
	kaa__meta_obj_clear(&out);
	kaa__meta_obj n = {.kind = N, .topic_id = tp_id, .body = "{}"};
	EXPECT_BUMP(kaa__meta_create(s, &n, NULL, &chg));
	kaa__meta_obj la = {.kind = L, .app_id = app, .name = "l"};
	EXPECT_BUMP(kaa__meta_create(s, &la, NULL, &chg));
	kaa__meta_obj cr = {.kind = CR, .app_id = app, .endpoint_key_hash = "e", .public_key = "p"};
	EXPECT_BUMP(kaa__meta_create(s, &cr, &out, &chg));
	int64_t cr_id = out.id;
	kaa__meta_obj_clear(&out);
	kaa__meta_obj cru = {.kind = CR, .id = cr_id, .status = "revoked"};
	EXPECT_BUMP(kaa__meta_update(s, &cru, NULL, &chg));
	kaa__meta_obj sd = {.kind = SD, .app_id = app, .name = "s"};
	EXPECT_BUMP(kaa__meta_create(s, &sd, NULL, &chg));
	kaa__meta_obj au = {.kind = A, .id = app, .name = "renamed-app"};
	EXPECT_BUMP(kaa__meta_update(s, &au, NULL, &chg));
	EXPECT_BUMP(kaa__meta_delete(s, SC, sc_id, 0, &chg)); /* also takes the configuration */

	/* failures change nothing */
	gu.version = 1;
	CU_ASSERT_EQUAL(kaa__meta_update(s, &gu, NULL, &chg), KAA_ERR_CONFLICT);
	CU_ASSERT_EQUAL(chg.app_id, 0);
	CU_ASSERT_EQUAL(kaa__meta_create(s, &g, NULL, &chg), KAA_ERR_EXISTS);
	CU_ASSERT_EQUAL(app_rev(s, app), rev);
	/* other applications and tenant-level changes are not involved */
	CU_ASSERT_EQUAL(app_rev(s, other), other_rev);
	kaa__meta_obj tu = {.kind = T, .id = t, .name = (char *)meta_suite_name("t")};
	CU_ASSERT_EQUAL(kaa__meta_update(s, &tu, NULL, &chg), KAA_OK);
	CU_ASSERT_EQUAL(chg.app_id, 0);
	CU_ASSERT_EQUAL(app_rev(s, app), rev);
	CU_ASSERT_EQUAL(kaa__meta_app_rev(s, 999999999, &rev), KAA_ERR_NOTFOUND);
#undef EXPECT_BUMP
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

/* ---- concurrency ---------------------------------------------------------------- */

#define SEQ_PER_THREAD 40

struct seq_worker {
	kaa__meta_store *s;
	int64_t topic;
	pthread_barrier_t *go;
	int64_t seqs[SEQ_PER_THREAD];
	int failures;
	int first_err;
};

static void *seq_thread(void *arg)
{
	struct seq_worker *w = arg;
	kaa__meta_obj n = {.kind = N, .topic_id = w->topic, .body = "{\"n\":1}"};
	pthread_barrier_wait(w->go);
	for (int i = 0; i < SEQ_PER_THREAD; i++) {
		kaa__meta_obj out;
		int rc = kaa__meta_create(w->s, &n, &out, NULL);
		if (rc != KAA_OK) {
			w->failures++;
			w->first_err = w->first_err ? w->first_err : rc;
		}
		w->seqs[i] = out.seq;
		kaa__meta_obj_clear(&out);
	}
	return NULL;
}

static void test_notification_seq_concurrent(void)
{
	kaa__meta_store *s = meta_suite_open(), *s2 = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	int64_t t = mk_tenant(s), app = mk_app(s, t), topic = mk_topic(s, app);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	/* two handles: two pools, as two control replicas would have */
	struct seq_worker w[2] = {{.s = s, .topic = topic, .go = &go},
				  {.s = s2, .topic = topic, .go = &go}};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, seq_thread, &w[i]);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);

	bool seen[2 * SEQ_PER_THREAD + 1] = {false};
	for (int i = 0; i < 2; i++) {
		if (w[i].failures)
			fprintf(stderr, "seq thread %d: %d failures, first %s\n", i, w[i].failures,
				kaa_strerror(w[i].first_err));
		CU_ASSERT_EQUAL(w[i].failures, 0);
		for (int j = 0; j < SEQ_PER_THREAD; j++) {
			int64_t v = w[i].seqs[j];
			CU_ASSERT(v >= 1 && v <= 2 * SEQ_PER_THREAD);
			if (j > 0)
				CU_ASSERT(v > w[i].seqs[j - 1]); /* monotonic per writer */
			if (v >= 1 && v <= 2 * SEQ_PER_THREAD) {
				CU_ASSERT_FALSE(seen[v]); /* unique */
				seen[v] = true;
			}
		}
	}
	/* in id (insert) order the sequence numbers are 1..80 */
	kaa__meta_page pg;
	kaa__meta_query q = {.parent_id = app, .ref_id = topic, .limit = 1000};
	CU_ASSERT_EQUAL(kaa__meta_list(s, N, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 2 * SEQ_PER_THREAD);
	for (size_t i = 0; i < pg.n; i++)
		CU_ASSERT_EQUAL(pg.items[i].seq, (int64_t)i + 1);
	kaa__meta_page_clear(&pg);
	kaa__meta_obj got;
	CU_ASSERT_EQUAL(kaa__meta_get(s, TP, topic, &got), KAA_OK);
	CU_ASSERT_EQUAL(got.seq, 2 * SEQ_PER_THREAD);
	kaa__meta_obj_clear(&got);
	CU_ASSERT_EQUAL(app_rev(s, app), 1 + 1 + 2 * SEQ_PER_THREAD);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s2);
	kaa__meta_store_free(s);
}

#define WRITERS 4
#define WRITES 15

struct writer {
	kaa__meta_store *s;
	int64_t app;
	int index;
	pthread_barrier_t *go;
	int failures, first_err;
};

static void *writer_thread(void *arg)
{
	struct writer *w = arg;
	pthread_barrier_wait(w->go);
	for (int i = 0; i < WRITES; i++) {
		char name[64];
		snprintf(name, sizeof(name), "w%d-%d", w->index, i);
		kaa__meta_obj g = {.kind = G, .app_id = w->app, .name = name, .weight = i};
		kaa__meta_obj out;
		int rc = kaa__meta_create(w->s, &g, &out, NULL);
		if (rc == KAA_OK) {
			/* read and update through the pool as well */
			kaa__meta_obj got;
			rc = kaa__meta_get(w->s, G, out.id, &got);
			if (rc == KAA_OK)
				rc = kaa__meta_update(w->s, &got, NULL, NULL);
			kaa__meta_obj_clear(&got);
		}
		kaa__meta_obj_clear(&out);
		if (rc != KAA_OK) {
			w->failures++;
			w->first_err = w->first_err ? w->first_err : rc;
		}
	}
	return NULL;
}

static void test_concurrent_writers(void)
{
	/* more threads than pooled connections: calls queue for one */
	kaa__meta_opts o = {.pool_size = 2};
	kaa__meta_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_store_new(env->url, &o, &s), KAA_OK);
	int64_t t = mk_tenant(s), app = mk_app(s, t);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, WRITERS);
	struct writer w[WRITERS];
	pthread_t th[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.s = s, .app = app, .index = i, .go = &go};
		pthread_create(&th[i], NULL, writer_thread, &w[i]);
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < WRITERS; i++) {
		if (w[i].failures)
			fprintf(stderr, "writer %d: %d failures, first %s\n", i, w[i].failures,
				kaa_strerror(w[i].first_err));
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	CU_ASSERT_EQUAL(app_rev(s, app), 1 + 2 * WRITERS * WRITES);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

#define OPENERS 4

struct opener {
	const char *url;
	pthread_barrier_t *go;
	int rc;
	int64_t version, applied;
};

static void *open_thread(void *arg)
{
	struct opener *o = arg;
	kaa__meta_store *s = NULL;
	pthread_barrier_wait(o->go);
	o->rc = kaa__meta_store_new(o->url, NULL, &s);
	if (o->rc == KAA_OK)
		o->rc = kaa__meta_schema_version(s, &o->version, &o->applied);
	kaa__meta_store_free(s);
	return NULL;
}

static void test_concurrent_migrations(void)
{
	char *url = env->fresh_url();
	CU_ASSERT_PTR_NOT_NULL_FATAL(url);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, OPENERS);
	struct opener o[OPENERS];
	pthread_t th[OPENERS];
	for (int i = 0; i < OPENERS; i++) {
		o[i] = (struct opener){.url = url, .go = &go};
		pthread_create(&th[i], NULL, open_thread, &o[i]);
	}
	for (int i = 0; i < OPENERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < OPENERS; i++) {
		if (o[i].rc != KAA_OK)
			fprintf(stderr, "opener %d: %s\n", i, kaa_strerror(o[i].rc));
		CU_ASSERT_EQUAL(o[i].rc, KAA_OK);
		CU_ASSERT_EQUAL(o[i].version, kaa__meta_schema_latest());
		/* applied once: one row per migration */
		CU_ASSERT_EQUAL(o[i].applied, kaa__meta_schema_latest());
	}
	/* and the schema works */
	kaa__meta_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_store_new(url, NULL, &s), KAA_OK);
	kaa__meta_obj in = {.kind = T, .name = "first"}, out;
	CU_ASSERT_EQUAL(kaa__meta_create(s, &in, &out, NULL), KAA_OK);
	CU_ASSERT_EQUAL(out.id, 1);
	kaa__meta_obj_clear(&out);
	kaa__meta_store_free(s);
	free(url);
}

/* The same across processes (as replicas starting together): each child
 * opens the fresh database at the same moment and exits 0 on success. */
static void test_concurrent_migrations_processes(void)
{
	char *url = env->fresh_url();
	CU_ASSERT_PTR_NOT_NULL_FATAL(url);
	int64_t start = kaa__wall_ms() + 300;
	pid_t pids[OPENERS];
	for (int i = 0; i < OPENERS; i++) {
		pids[i] = fork();
		CU_ASSERT_FATAL(pids[i] >= 0);
		if (pids[i] == 0) {
			while (kaa__wall_ms() < start)
				usleep(1000);
			kaa__meta_store *s = NULL;
			int64_t v = 0, applied = 0;
			int rc = kaa__meta_store_new(url, NULL, &s);
			if (rc == KAA_OK)
				rc = kaa__meta_schema_version(s, &v, &applied);
			kaa__meta_store_free(s);
			if (rc != KAA_OK)
				fprintf(stderr, "child %d: %s\n", i, kaa_strerror(rc));
			_exit(rc == KAA_OK && v == kaa__meta_schema_latest() &&
					      applied == kaa__meta_schema_latest()
				      ? 0
				      : 1);
		}
	}
	for (int i = 0; i < OPENERS; i++) {
		int st = -1;
		CU_ASSERT_EQUAL(waitpid(pids[i], &st, 0), pids[i]);
		CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	free(url);
}

/* ---- SQL injection ------------------------------------------------------------- */

static void test_sql_injection(void)
{
	kaa__meta_store *s = meta_suite_open();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	const char *evil[] = {
		"x'); DROP TABLE tenants;--",
		"Robert'); DROP TABLE users; --",
		"\" OR \"1\"=\"1",
		"' OR '1'='1' --",
		"$1",
		"?1; DELETE FROM applications",
		"%s%n%x\\",
		"x\\'; SELECT pg_sleep(10); --",
	};
	char name[256];
	kaa__meta_obj out, got;
	for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
		snprintf(name, sizeof(name), "%s %s", evil[i], meta_suite_name(""));
		kaa__meta_obj tn = {.kind = T, .name = name};
		CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &tn, &out, NULL), KAA_OK);
		CU_ASSERT_STRING_EQUAL(out.name, name);
		int64_t t = out.id;
		kaa__meta_obj_clear(&out);
		CU_ASSERT_EQUAL(kaa__meta_find_name(s, T, 0, name, &got), KAA_OK);
		CU_ASSERT_EQUAL(got.id, t);
		CU_ASSERT_STRING_EQUAL(got.name, name);
		kaa__meta_obj_clear(&got);

		kaa__meta_obj un = {.kind = U,
				    .tenant_id = t,
				    .name = name,
				    .role = "tenant-user",
				    .password_hash = (char *)evil[i]};
		CU_ASSERT_EQUAL(kaa__meta_create(s, &un, NULL, NULL), KAA_OK);
		CU_ASSERT_EQUAL(kaa__meta_find_name(s, U, 0, name, &got), KAA_OK);
		CU_ASSERT_STRING_EQUAL(got.password_hash, evil[i]);
		kaa__meta_obj_clear(&got);

		kaa__meta_obj an = {.kind = A, .tenant_id = t, .name = name, .app_token = name};
		CU_ASSERT_EQUAL_FATAL(kaa__meta_create(s, &an, &out, NULL), KAA_OK);
		int64_t app = out.id;
		kaa__meta_obj_clear(&out);
		CU_ASSERT_EQUAL(kaa__meta_find_app_token(s, name, &got), KAA_OK);
		CU_ASSERT_EQUAL(got.id, app);
		kaa__meta_obj_clear(&got);

		/* inside JSON too */
		char body[600];
		snprintf(body, sizeof(body), "{\"profile.name\":{\"$eq\":\"%s\"}}",
			 i == 2 || i == 6 || i == 7 ? "quoted" : evil[i]);
		kaa__meta_obj gn = {.kind = G, .app_id = app, .name = name, .body = body};
		CU_ASSERT_EQUAL(kaa__meta_create(s, &gn, NULL, NULL), KAA_OK);
		CU_ASSERT_EQUAL(kaa__meta_find_name(s, G, app, name, &got), KAA_OK);
		CU_ASSERT_STRING_EQUAL(got.body, body);
		kaa__meta_obj_clear(&got);
		kaa__meta_obj cr = {
			.kind = CR, .app_id = app, .endpoint_key_hash = name, .public_key = name};
		CU_ASSERT_EQUAL(kaa__meta_create(s, &cr, NULL, NULL), KAA_OK);
		CU_ASSERT_EQUAL(kaa__meta_find_credential(s, app, name, &got), KAA_OK);
		CU_ASSERT_STRING_EQUAL(got.public_key, name);
		kaa__meta_obj_clear(&got);
		CU_ASSERT_EQUAL(kaa__meta_find_schema(s, app, evil[i], 1, &got), KAA_ERR_INVAL);
		CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	}
	/* every table is still there and answering */
	kaa__meta_page pg;
	kaa__meta_query q = {.limit = 1};
	CU_ASSERT_EQUAL(kaa__meta_list(s, T, &q, &pg), KAA_OK);
	kaa__meta_page_clear(&pg);
	int64_t t = mk_tenant(s), app = mk_app(s, t);
	CU_ASSERT(t > 0 && app > 0);
	q.parent_id = t;
	CU_ASSERT_EQUAL(kaa__meta_list(s, A, &q, &pg), KAA_OK);
	CU_ASSERT_EQUAL(pg.n, 1);
	kaa__meta_page_clear(&pg);
	CU_ASSERT_EQUAL(kaa__meta_delete(s, T, t, 0, NULL), KAA_OK);
	kaa__meta_store_free(s);
}

int meta_suite_add(const char *name, const meta_suite_env *e)
{
	env = e;
	CU_pSuite suite = CU_add_suite(name, NULL, NULL);
	if (!suite)
		return -1;
	if (!CU_add_test(suite, "open and migrations", test_open) ||
	    !CU_add_test(suite, "tenants", test_tenants) ||
	    !CU_add_test(suite, "users and API tokens", test_users_tokens) ||
	    !CU_add_test(suite, "applications", test_applications) ||
	    !CU_add_test(suite, "schemas", test_schemas) ||
	    !CU_add_test(suite, "groups and configurations", test_groups_configurations) ||
	    !CU_add_test(suite, "topics and notifications", test_topics_notifications) ||
	    !CU_add_test(suite, "log appenders, credentials, SDK profiles",
			 test_appenders_credentials_sdk) ||
	    !CU_add_test(suite, "event families, maps, verifiers", test_events_verifiers) ||
	    !CU_add_test(suite, "cascading deletes", test_cascades) ||
	    !CU_add_test(suite, "list and delete every kind", test_list_delete_every_kind) ||
	    !CU_add_test(suite, "version conflicts on every kind", test_version_conflicts) ||
	    !CU_add_test(suite, "pagination", test_pagination) ||
	    !CU_add_test(suite, "app_rev bumps", test_app_rev) ||
	    !CU_add_test(suite, "notification seq with concurrent writers",
			 test_notification_seq_concurrent) ||
	    !CU_add_test(suite, "concurrent writers", test_concurrent_writers) ||
	    !CU_add_test(suite, "concurrent migrations (threads)", test_concurrent_migrations) ||
	    !CU_add_test(suite, "concurrent migrations (processes)",
			 test_concurrent_migrations_processes) ||
	    !CU_add_test(suite, "SQL injection stored verbatim", test_sql_injection))
		return -1;
	return 0;
}
