/*
 * meta_store.h - the control service's metadata store: tenants, users, API
 * tokens, applications and everything that belongs to an application, kept
 * in SQL behind one interface with two backends chosen by URL:
 *
 *   sqlite:PATH                 embedded (parent directories are created)
 *   postgresql://... postgres://...   PostgreSQL through libpq
 *
 * Both backends run the same SQL text (placeholders $1..$N, RETURNING,
 * ON CONFLICT; a few statements have a dialect variant) as prepared
 * statements with bound parameters: no SQL is ever built from caller data.
 * docs/metadata-store.md describes the schema and the design.
 *
 * Data model (one table per kind; every object has an integer id, a
 * `version` starting at 1 and incremented by every update (the REST ETag),
 * and created_ms/updated_ms in milliseconds since the Unix epoch):
 *
 *   kind           parent (list scope)   unique                    fields used
 *   tenant         -                     name                      name
 *   user           tenant (0: none)      name (username, global)   name, role, password_hash
 *   api-token      user                  token_hash; name per user user_id, name, token_hash
 *   application    tenant                name per tenant; app_token name, app_token,
 *                                                                  credentials_mode, app_rev
 *   schema         application           (app, schema_kind, ver)   schema_kind, schema_version, name, body
 *   group          application           name per app              name, weight, body (filter)
 *   configuration  application (+group)  (group, schema_version)   group_id, schema_version, body
 *   topic          application           name per app              name, mandatory, group_ids, seq
 *   notification   application (+topic)  (topic, seq)              topic_id, endpoint_key_hash,
 *                                                                  seq, expires_ms, body
 *   log-appender   application           name per app              name, body (settings)
 *   credential     application           endpoint_key_hash per app endpoint_key_hash, public_key, status
 *   sdk-profile    application           name per app              name, body (schema versions),
 *                                                                  bootstrap (addresses)
 *   event-family   tenant                (tenant, name, version)   name, body (classes),
 *                                                                  schema_version (= family version)
 *   event-map      application           family_id per app         family_id, body (class roles)
 *   user-verifier  application           name per app              name, body (settings)
 *
 * Every object read back carries tenant_id (a tenant's own id for tenants,
 * 0 for platform admins and their tokens) and app_id (an application's own id
 * for applications, 0 above the application level), so the REST layer can
 * check tenant isolation on any object.
 *
 * Rules:
 * - A user's role is platform-admin (no tenant, tenant_id 0) or one of
 *   tenant-admin, tenant-developer, tenant-user (tenant_id required).
 * - Application tokens are generated (32 hex chars) when not given.
 *   credentials_mode is "trustful" (default) or "provisioned".
 * - Schema versions are assigned per application and schema kind, 1, 2, ...,
 *   never reused even after a delete. Schema kinds: profile-client,
 *   profile-server, configuration, notification, log.
 * - A configuration names its group and the version of the application's
 *   configuration schema; deleting either deletes the configuration.
 * - A topic's attached groups must belong to its application; deleting a
 *   group detaches it. A topic's `seq` is the last notification sequence
 *   number assigned on it.
 * - A notification belongs to a topic; endpoint_key_hash NULL = multicast to
 *   the topic, else unicast to that endpoint. seq is assigned at insert from
 *   the topic's counter: 1, 2, ... in commit order, never reused.
 *   expires_ms 0 at create = now + KAA_META_NOTIFICATION_TTL_MS. They are
 *   immutable (update: KAA_ERR_INVAL) and removed by
 *   kaa__meta_notifications_expire or a delete.
 * - A credential's status is "provisioned" (default) or "revoked".
 * - Event families are versioned like schemas: creating one with a name the
 *   tenant already has adds the next version (1, 2, ... per tenant and name;
 *   never reused). They are immutable; deleting a version an application
 *   maps fails with KAA_ERR_CONFLICT (unmap first).
 *   Their changes bump no app_rev (no application changed); event maps and
 *   user verifiers do.
 * - Deletes cascade: tenant -> users, their tokens, applications; user ->
 *   tokens; application -> everything in it; group -> its configurations and
 *   topic attachments; topic -> notifications; configuration schema ->
 *   configurations using its version.
 * - app_rev: per-application revision counter, 1 at creation, incremented in
 *   the same transaction as every create, update or delete of the
 *   application or of an object in it (not by notification expiry; expired
 *   notifications carry their expires_ms). The caller publishes it after the
 *   call returns (kaa__meta_change).
 *
 * Strings: valid UTF-8 (else KAA_ERR_INVAL); names 1..KAA_META_NAME_MAX bytes,
 * other text (hashes, tokens, keys) 1..KAA_META_TEXT_MAX bytes; bodies must
 * be well-formed JSON (any JSON value) of at most KAA_META_BODY_MAX bytes
 * (else KAA_ERR_TOO_BIG); the store does not look inside them otherwise.
 *
 * Threads: one store handle is shared by every thread; every function may be
 * called concurrently from any thread except kaa__meta_store_free. Each call
 * takes a connection from a small pool (kaa__meta_opts.pool_size, default 4,
 * both backends) for its duration, so up to pool_size calls run in parallel
 * and more wait (up to timeout_ms, then KAA_ERR_TIMEOUT). SQLite runs in WAL
 * mode: readers do not block; writers take the write lock at the start of
 * their transaction (BEGIN IMMEDIATE) and wait for it up to timeout_ms
 * (busy timeout), also across processes. PostgreSQL write transactions lock
 * the application row first (the app_rev bump), so writes to one application
 * are serialized; a deadlock or serialization failure is retried inside the
 * call.
 *
 * Errors (negative kaa_err), for every function below unless it says less:
 *   KAA_ERR_INVAL        bad argument, bad enum value, malformed JSON, bad
 *                        UTF-8, bad cursor, role/tenant mismatch
 *   KAA_ERR_TOO_BIG      a body over KAA_META_BODY_MAX
 *   KAA_ERR_NOTFOUND     the object, or a parent it refers to, does not exist
 *   KAA_ERR_EXISTS       a uniqueness rule (see the table) would be broken
 *   KAA_ERR_CONFLICT     expect_version/version is not the stored version
 *   KAA_ERR_UNAVAILABLE  the PostgreSQL connection is lost or cannot be made;
 *                        the next call reconnects. A write that failed this
 *                        way at commit may or may not have been applied.
 *   KAA_ERR_TIMEOUT      no pooled connection, or the SQLite write lock, within
 *                        timeout_ms
 *   KAA_ERR_IO           the SQLite file cannot be read or written
 *   (out of memory aborts through kaa__oom(), base/alloc.h)
 *   KAA_ERR_INTERNAL     the database answered something unexpected (logged)
 */
#ifndef KAA_META_STORE_H
#define KAA_META_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_META_NAME_MAX 255
#define KAA_META_TEXT_MAX 16384
#define KAA_META_BODY_MAX (1024 * 1024)
#define KAA_META_LIMIT_DEFAULT 100
#define KAA_META_LIMIT_MAX 1000
#define KAA_META_NOTIFICATION_TTL_MS (7LL * 24 * 3600 * 1000)

typedef struct kaa__meta_store kaa__meta_store;

typedef enum kaa__meta_kind {
	KAA_META_TENANT = 0,
	KAA_META_USER,
	KAA_META_API_TOKEN,
	KAA_META_APPLICATION,
	KAA_META_SCHEMA,
	KAA_META_GROUP,
	KAA_META_CONFIGURATION,
	KAA_META_TOPIC,
	KAA_META_NOTIFICATION,
	KAA_META_LOG_APPENDER,
	KAA_META_CREDENTIAL,
	KAA_META_SDK_PROFILE,
	KAA_META_EVENT_FAMILY,
	KAA_META_EVENT_MAP,
	KAA_META_USER_VERIFIER,
	KAA_META_KIND_COUNT,
} kaa__meta_kind;

/* "tenant", "user", "api-token", "application", "schema", "group",
 * "configuration", "topic", "notification", "log-appender", "credential",
 * "sdk-profile", "event-family", "event-map", "user-verifier"; static, "?"
 * for an unknown kind. */
const char *kaa__meta_kind_name(kaa__meta_kind kind);

/*
 * One object of any kind; the table above says which fields a kind uses, the
 * others are 0/NULL. As input (create, update) every pointer is borrowed; as
 * output every pointer is owned by the struct and freed by
 * kaa__meta_obj_clear.
 */
typedef struct kaa__meta_obj {
	kaa__meta_kind kind;
	int64_t id;
	int64_t version; /* update: the expected version (0 = any) */
	int64_t created_ms;
	int64_t updated_ms;
	int64_t tenant_id; /* create: user (0 = platform admin), application */
	int64_t app_id;    /* create: schema, group, topic, log-appender, credential, sdk-profile */
	char *name;
	char *body; /* JSON text */
	/* users */
	char *role; /* platform-admin, tenant-admin, tenant-developer, tenant-user */
	char *password_hash;
	/* API tokens */
	int64_t user_id;
	char *token_hash;
	/* applications */
	char *app_token;
	char *credentials_mode; /* trustful, provisioned */
	int64_t app_rev;        /* read only */
	/* schemas (assigned, read only) and configurations (which configuration
	 * schema version the body is for) */
	char *schema_kind; /* profile-client, profile-server, configuration, notification, log */
	int64_t schema_version;
	/* groups */
	int64_t weight;
	/* configurations */
	int64_t group_id;
	/* topics */
	bool mandatory;
	int64_t *group_ids; /* attached groups, ascending */
	size_t n_group_ids;
	/* notifications; topics: seq = last assigned */
	int64_t topic_id;
	int64_t seq;
	int64_t expires_ms;
	/* notifications (NULL = multicast), credentials */
	char *endpoint_key_hash;
	/* credentials */
	char *public_key;
	char *status; /* provisioned, revoked */
	/* SDK profiles */
	char *bootstrap; /* JSON */
	/* event maps: the event family (one version of it) mapped */
	int64_t family_id;
} kaa__meta_obj;

/* Frees the owned pointers and zeroes the struct; accepts NULL. */
void kaa__meta_obj_clear(kaa__meta_obj *o);

/* What a change did to application revisions; the caller publishes app_rev
 * (and the deletions) after the call returns. */
typedef struct kaa__meta_change {
	int64_t app_id;        /* the application whose metadata changed; 0 = none */
	int64_t app_rev;       /* its app_rev after the change */
	int64_t *deleted_apps; /* applications removed by this call (malloc'd) */
	size_t n_deleted_apps;
} kaa__meta_change;

/* Frees deleted_apps and zeroes; accepts NULL. */
void kaa__meta_change_clear(kaa__meta_change *c);

typedef struct kaa__meta_opts {
	int pool_size;  /* connections; 0 = 4 */
	int timeout_ms; /* waits: pooled connection, SQLite lock, PG connect; 0 = 5000 */
} kaa__meta_opts;

/*
 * Opens the store named by url (opts may be NULL), connects once and applies
 * the schema migrations this build knows that the database lacks, in order,
 * each recorded in schema_migrations. Several processes or threads opening
 * one database at once is safe: PostgreSQL migrations run under
 * pg_advisory_lock, SQLite ones in a BEGIN IMMEDIATE transaction; the others
 * wait, then find them applied. A database migrated further than this build
 * knows is used as is (logged). *out is owned by the caller.
 * Errors: KAA_ERR_INVAL (unknown scheme, malformed URL), KAA_ERR_UNAVAILABLE
 * (PostgreSQL unreachable), KAA_ERR_IO (SQLite path), KAA_ERR_TIMEOUT, ...
 */
int kaa__meta_store_new(const char *url, const kaa__meta_opts *opts, kaa__meta_store **out);
/* Closes every connection. No call may be in progress. Accepts NULL. */
void kaa__meta_store_free(kaa__meta_store *s);
/* "sqlite" or "postgresql"; static. */
const char *kaa__meta_store_backend(const kaa__meta_store *s);
/* The migrations this build knows (the schema version it writes). */
int kaa__meta_schema_latest(void);
/* The highest applied migration and the number of rows in schema_migrations. */
int kaa__meta_schema_version(kaa__meta_store *s, int64_t *version, int64_t *applied);

/*
 * Creates in->kind from the fields the table lists for it; id, version,
 * timestamps, schema_version (schemas), seq, app_rev and the derived scope
 * ids are ignored. out (may be NULL) receives the stored object as read back
 * in the same transaction; chg (may be NULL) the application revision.
 * Parents: tenant_id (user, application), user_id (api-token), app_id
 * (schema, group, topic, log-appender, credential, sdk-profile), group_id +
 * schema_version (configuration), topic_id (notification); group_ids
 * (topic). A missing parent: KAA_ERR_NOTFOUND.
 */
int kaa__meta_create(kaa__meta_store *s, const kaa__meta_obj *in, kaa__meta_obj *out,
		     kaa__meta_change *chg);
/* Reads one object; KAA_ERR_NOTFOUND. *out is cleared first. */
int kaa__meta_get(kaa__meta_store *s, kaa__meta_kind kind, int64_t id, kaa__meta_obj *out);
/*
 * Updates object in->id of in->kind if its version is in->version (0 = any;
 * else KAA_ERR_CONFLICT). Mutable fields; a NULL string keeps the stored
 * value, numbers, booleans and the topic's group set are always written:
 *   tenant: name; user: name, role, password_hash; api-token: name;
 *   application: name, credentials_mode; schema: name (the body is
 *   immutable); group: name, weight, body; configuration: body; topic: name,
 *   mandatory, group_ids; log-appender: name, body; credential: public_key,
 *   status; sdk-profile: name, body, bootstrap. Notifications: KAA_ERR_INVAL.
 * The version goes up by one; out/chg as for create.
 */
int kaa__meta_update(kaa__meta_store *s, const kaa__meta_obj *in, kaa__meta_obj *out,
		     kaa__meta_change *chg);
/* Deletes (with the cascades above) if the version is expect_version (0 =
 * any; else KAA_ERR_CONFLICT). chg->deleted_apps lists the applications
 * removed (an application delete, or every application of a tenant). */
int kaa__meta_delete(kaa__meta_store *s, kaa__meta_kind kind, int64_t id, int64_t expect_version,
		     kaa__meta_change *chg);

/* A page of a list, in ascending id order (keyset pagination). */
typedef struct kaa__meta_query {
	/* The scope: 0 for tenants; the tenant for users (0 = users without a
	 * tenant, i.e. platform admins) and applications; the user for API
	 * tokens; the application for every application-scoped kind. */
	int64_t parent_id;
	int64_t ref_id;          /* configurations: only this group; notifications:
				  * only this topic; 0 = all */
	const char *schema_kind; /* schemas: only this kind; NULL = all */
	const char *cursor;      /* NULL or "" = first page; else a next_cursor */
	size_t limit;            /* 0 = KAA_META_LIMIT_DEFAULT; capped at KAA_META_LIMIT_MAX */
} kaa__meta_query;

typedef struct kaa__meta_page {
	kaa__meta_obj *items;
	size_t n;
	char *next_cursor; /* NULL on the last page; an opaque printable token */
} kaa__meta_page;

/* *out is cleared first; free with kaa__meta_page_clear. Objects created
 * while paging appear on a later page if their id is beyond the cursor;
 * no object is returned twice. KAA_ERR_INVAL for a malformed cursor. */
int kaa__meta_list(kaa__meta_store *s, kaa__meta_kind kind, const kaa__meta_query *q,
		   kaa__meta_page *out);
void kaa__meta_page_clear(kaa__meta_page *p); /* accepts NULL */

/* Lookups by unique key; KAA_ERR_NOTFOUND; *out is cleared first. */
/* kind is tenant or user (parent_id 0: names are global), api-token (parent
 * = user), application (parent = tenant), group, topic, log-appender or
 * sdk-profile (parent = application); other kinds KAA_ERR_INVAL. */
int kaa__meta_find_name(kaa__meta_store *s, kaa__meta_kind kind, int64_t parent_id,
			const char *name, kaa__meta_obj *out);
int kaa__meta_find_token(kaa__meta_store *s, const char *token_hash, kaa__meta_obj *out);
int kaa__meta_find_app_token(kaa__meta_store *s, const char *app_token, kaa__meta_obj *out);
int kaa__meta_find_schema(kaa__meta_store *s, int64_t app_id, const char *schema_kind,
			  int64_t schema_version, kaa__meta_obj *out);
int kaa__meta_find_credential(kaa__meta_store *s, int64_t app_id, const char *endpoint_key_hash,
			      kaa__meta_obj *out);

/* The application's current app_rev; KAA_ERR_NOTFOUND. */
int kaa__meta_app_rev(kaa__meta_store *s, int64_t app_id, int64_t *rev);
/* Deletes notifications with expires_ms <= now_ms, in batches of 1000 (one
 * transaction each); *deleted (may be NULL) gets the count. For the leader's
 * expiry singleton. */
int kaa__meta_notifications_expire(kaa__meta_store *s, int64_t now_ms, int64_t *deleted);

/* ---- backend interface: meta_store.c, meta_store_sqlite.c and
 * meta_store_pg.c only ------------------------------------------------------ */

enum {
	KAA__META_PNULL = 0,
	KAA__META_PINT = 1,
	KAA__META_PTEXT = 2,
};

typedef struct kaa__meta_param {
	int type;
	int64_t i;
	const char *s;
} kaa__meta_param;

#define KAA__META_MAX_PARAMS 12
#define KAA__META_MAX_COLS 16
#define KAA__META_STMT_MAX 160
/* Internal: a deadlock or serialization failure; run() retries the
 * transaction. Never returned to callers of the functions above. */
#define KAA__META_RETRY (-1000)

/* Called per result row with ncols text values (NULL = SQL NULL), valid only
 * during the call; a negative return stops the statement with that error. */
typedef int (*kaa__meta_row_cb)(void *ud, int ncols, const char *const *vals);

typedef struct kaa__meta_backend {
	const char *name;
	bool sqlite_dialect;
	bool tx_per_migration; /* each migration in its own transaction */
	/* target: the path (SQLite) or the URL (PostgreSQL). */
	int (*connect)(const char *target, const kaa__meta_opts *o, void **conn);
	void (*disconnect)(void *conn);
	/* Runs statement id (< KAA__META_STMT_MAX, prepared once per connection
	 * and cached) with np bound parameters; cb may be NULL. */
	int (*exec)(void *conn, int id, const char *sql, const kaa__meta_param *p, int np,
		    kaa__meta_row_cb cb, void *ud);
	/* Constant SQL, possibly several statements, no parameters. */
	int (*script)(void *conn, const char *sql);
	int (*begin)(void *conn); /* a write transaction */
	int (*commit)(void *conn);
	void (*rollback)(void *conn);
	/* Serialize migrations across processes: lock before, unlock after
	 * (commit = whether they all succeeded). */
	int (*mig_lock)(void *conn);
	int (*mig_unlock)(void *conn, bool commit);
	/* The connection is lost and must be replaced. */
	bool (*broken)(void *conn);
} kaa__meta_backend;

extern const kaa__meta_backend kaa__meta_backend_sqlite;
extern const kaa__meta_backend kaa__meta_backend_pg;

#endif
