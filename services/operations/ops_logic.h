/*
 * ops_logic.h - internal to the operations service (operations.c,
 * registration.c, delivery.c, log_ingest.c): the service, session and
 * application-cache structures and the functions the files share.
 *
 * Locking: ops->mu guards the session tables and the application cache
 * list; a session's own mu serializes its frame handler with background
 * re-evaluation and catch-up. Order: a session mu may be taken while no
 * other lock is held, and ops->mu may be taken inside it (short sections
 * only); never the reverse.
 */
#ifndef KAA_OPS_LOGIC_H
#define KAA_OPS_LOGIC_H

#include "base/clock.h"
#include "json/avro_schema.h"
#include "cluster/event_router.h"
#include "store/endpoint_store.h"
#include "json/filter.h"
#include "appender/log_appender.h"
#include "store/meta_store.h"
#include "operations/operations.h"

#include <pthread.h>
#include <stdatomic.h>

/* ---- limits the server announces in HelloAck -------------------------------- */
#define OPS_MAX_INFLIGHT_LOG_BATCHES 4
#define OPS_IDLE_TIMEOUT_MS_DEFAULT 120000
/* Catch-up is delivered at the session's first frame after Hello (so a
 * SessionResume sent right after HelloAck is applied first) or after this. */
#define OPS_CATCHUP_DELAY_MS 1000
/* Stored notifications kept in an application's cache (newest win). */
#define OPS_MAX_CACHED_NOTIFICATIONS 100000

/* ---- application cache -------------------------------------------------------- */

typedef struct ops_group {
	int64_t id, weight;
	kaa__filter *filter; /* NULL: matches every endpoint */
	char *config;        /* configuration for the latest config schema, or NULL */
} ops_group;

typedef struct ops_topic {
	int64_t id;
	char id_str[24];
	char *name;
	bool mandatory;
	int64_t *group_ids; /* none: visible to every endpoint */
	size_t n_group_ids;
	int64_t seq; /* last assigned */
} ops_topic;

typedef struct ops_notif {
	int64_t id, topic_id, seq, expires_ms;
	char *ekh; /* NULL: multicast */
	char *body;
} ops_notif;

/* A merged configuration for one set of contributing groups: sessions of
 * an application mostly share a few sets, so a re-evaluation of thousands
 * of sessions merges each set once. */
typedef struct ops_cfg_memo {
	int64_t *ids;
	size_t n;
	char *doc;
	char hash[KAA_SHA256_HEX_SIZE];
} ops_cfg_memo;

#define OPS_CFG_MEMO 16

/* An event class the application maps (event map + family version). */
typedef struct ops_evclass {
	char *fqn;
	kaa__avro_schema *schema; /* NULL: the stored schema did not parse (events refused) */
	bool source, sink;
} ops_evclass;

/* An owner verifier (user-verifier object). */
typedef struct ops_verifier {
	char *name;
	bool jwt; /* false: trustful */
	char *secret;
	size_t secret_len;
	char *issuer, *audience; /* NULL: not checked */
	int64_t leeway_s;
} ops_verifier;

typedef struct ops_app {
	atomic_int refs;
	int64_t id, rev;
	char *token;
	bool provisioned;
	int64_t profile_ver;
	kaa__avro_schema *profile_schema; /* NULL: profiles are free-form objects */
	int64_t log_ver;
	kaa__avro_schema *log_schema; /* NULL: records are free-form JSON */
	int64_t config_ver;
	ops_group *groups; /* id order */
	size_t n_groups;
	ops_topic *topics; /* id order */
	size_t n_topics;
	ops_notif *notifs; /* id order (= seq order within a topic) */
	size_t n_notifs;
	pthread_mutex_t memo_mu; /* the only mutable part: guards memo */
	ops_cfg_memo memo[OPS_CFG_MEMO];
	size_t n_memo, next_memo;
	/* none configured: the endpoint store's log collection */
	kaa__log_appender **appenders;
	size_t n_appenders;
	ops_evclass *evclasses; /* fqn order */
	size_t n_evclasses;
	const char **sinks; /* fqns of the sink classes (borrowed from evclasses) */
	size_t n_sinks;
	ops_verifier *verifiers; /* id order: the first is the default */
	size_t n_verifiers;
} ops_app;

/* ---- sessions ------------------------------------------------------------------ */

/* Position in one notification stream ("" = unicast). */
typedef struct ops_pos {
	char topic[24];
	uint64_t acked; /* persisted in notif_state */
	uint64_t sent;  /* highest sent in this session */
} ops_pos;

typedef struct ops_session {
	kaa__session_id sid;
	atomic_int refs;
	pthread_mutex_t mu;
	bool established, closed, catchup_pending, redirected;
	ops_app *app; /* referenced while established */
	kaa__endpoint ep;
	int64_t *gids; /* groups, ascending (= ep.groups) */
	size_t n_gids;
	int64_t *subs; /* optional topics subscribed (= ep.topics) */
	size_t n_subs;
	ops_pos *pos;
	size_t n_pos;
	uint64_t next_req;
	/* the ConfigPush awaiting its Ack */
	uint64_t push_req;
	char *push_doc;
	char push_hash[KAA_SHA256_HEX_SIZE];
	/* the NotificationTopics last sent (hash of its content) */
	char topics_sig[KAA_SHA256_HEX_SIZE];
	struct ops_session *next_sid; /* hash chains */
	struct ops_session *next_key;
	/* false once a newer session of the same endpoint took over: this one
	 * must not write the record any more (written under ops->mu) */
	atomic_bool in_key_table;
	/* LogUploads awaiting their appenders (log_ingest.c) */
	atomic_int log_inflight;
} ops_session;

/* ---- background jobs ------------------------------------------------------------ */

typedef struct ops_job {
	int kind; /* OPS_JOB_* */
	int64_t id;
	int64_t due_ms;
	struct ops_job *next;
} ops_job;

enum { OPS_JOB_REFRESH = 1, OPS_JOB_CATCHUP = 2, OPS_JOB_RESET = 3 };

/* A device request waiting for the router (event accepted, listeners). */
typedef struct ops_pending {
	uint64_t token;
	kaa__session_id sid;
	uint64_t request_id;
	uint64_t seq; /* events: the source's seq */
	struct ops_pending *next;
} ops_pending;

#define OPS_PENDING_BUCKETS 1024
/* Requests waiting for the router per node; beyond it devices get
 * OVERLOADED (they keep the events and re-send). */
#define OPS_PENDING_MAX 100000

#define OPS_SID_BUCKETS 4096

struct kaa__operations {
	char *node_id, *cluster;
	bool clustered;
	int drain_timeout_ms;
	int idle_timeout_ms;
	bool tls;
	char *appender_dir;
	kaa__coord *coord;
	_Atomic(kaa__registry *) registry;
	kaa__meta_store *meta;
	kaa__ep_store *eps;
	kaa__ops_server *server;
	kaa__ops_io io;

	pthread_mutex_t mu;
	ops_session *by_sid[OPS_SID_BUCKETS];
	ops_session *by_key[OPS_SID_BUCKETS];
	size_t n_sessions; /* established */
	ops_app **apps;
	size_t n_apps, cap_apps;

	/* background thread */
	pthread_t thread;
	bool thread_started;
	pthread_cond_t cv;
	ops_job *jobs; /* refresh/reset: few, deduplicated */
	/* catch-ups: one per Hello, all with the same delay, so a FIFO is in
	 * due order (a registration storm costs O(1) per job) */
	ops_job *catchup_head, *catchup_tail;
	bool stopping;

	kaa__watch *apps_watch, *drain_watch, *rebalance_watch;
	int64_t rebalance_seq; /* last plan seen (rebalance watch thread only) */
	atomic_bool draining;
	atomic_bool drain_cancel;
	pthread_t drain_thread;
	bool drain_thread_started; /* joinable */
	atomic_bool drain_running;
	_Atomic int64_t drain_deadline;

	kaa__metrics *metrics;     /* the caller's or own_metrics */
	kaa__metrics *own_metrics; /* when the caller gave none */
	/* LogUploads waiting for appender callbacks (log_ingest.c); after
	 * log_closing new ones are answered FAILURE at once */
	atomic_size_t log_uploads;
	atomic_bool log_closing;
	kaa__counter *reg_registered, *reg_existing, *reg_unauth, *reg_forbidden, *reg_revoked,
		*reg_error;
	kaa__counter *log_records, *log_batches_dup, *notifs_sent, *configs_sent;
	kaa__counter *app_refreshes;
	kaa__counter *rebalance_redirects;
	kaa__counter *events_in, *events_out, *owner_attach_ok, *owner_attach_fail;

	/* events and owners across nodes (event_router.h); NULL only in tests
	 * with their own io and no router */
	kaa__router *router;
	pthread_t ring_thread; /* registry view -> router nodes */
	bool ring_thread_started;
	pthread_mutex_t pend_mu;
	ops_pending *pending[OPS_PENDING_BUCKETS];
	size_t n_pending;
	uint64_t next_token;
};

/* Sends f (protocol_version filled in) to the session; logs failures. */
int kaa__opl_send(kaa__operations *ops, kaa__session_id sid, Kaa__Endpoint__V1__Frame *f);
/* Sends Error{code} answering request_id (fatal: then closes). */
void kaa__opl_error(kaa__operations *ops, kaa__session_id sid, uint64_t request_id,
		    Kaa__Endpoint__V1__ErrorCode code, bool fatal, const char *field,
		    const char *json_path, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
/* WebSocket close codes the service uses. */
enum { OPS_CLOSE_NORMAL = 1000, OPS_CLOSE_POLICY = 1008 };
void kaa__opl_ack(kaa__operations *ops, kaa__session_id sid, uint64_t request_id);
/* The cached application (referenced; kaa__opl_app_put releases), loading
 * it when absent. By token: KAA_ERR_NOTFOUND for an unknown token. */
int kaa__opl_app_by_token(kaa__operations *ops, const char *token, ops_app **out);
int kaa__opl_app_by_id(kaa__operations *ops, int64_t app_id, ops_app **out);
void kaa__opl_app_put(ops_app *a);
/* When the store holds a newer revision of the session's application than
 * its cached copy (the change's watch event has not been handled yet),
 * reloads it into the cache and the session; true if it did. Callers use it
 * before refusing a request for something the cache lacks (a verifier or an
 * event class created a moment ago). Caller holds s->mu. */
bool kaa__opl_app_refresh_stale(kaa__operations *ops, ops_session *s);
/* Registers s under its endpoint key; returns the sid of an older session
 * of the same endpoint on this node (0 if none), which the caller closes. */
kaa__session_id kaa__opl_bind_key(kaa__operations *ops, ops_session *s);
void kaa__opl_schedule(kaa__operations *ops, int kind, int64_t id, int64_t delay_ms);
/* Writes the session's endpoint record; logs failures. */
int kaa__opl_save(kaa__operations *ops, ops_session *s);

/* ---- registration.c ---------------------------------------------------------------- */
void kaa__opl_hello(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_profile_update(kaa__operations *ops, ops_session *s,
			     const Kaa__Endpoint__V1__Frame *f);
/* Replaces the session's groups from its profiles and the app's filters;
 * true when they changed. */
bool kaa__opl_compute_groups(ops_session *s);
/* Splits a validation error of lib/json/json_merge.h's form ("$.path: message")
 * into path (cap bytes, truncated) and *msg (points into err). */
void kaa__opl_split_err(const char *err, char *path, size_t cap, const char **msg);
void kaa__opl_session_resume(kaa__operations *ops, ops_session *s,
			     const Kaa__Endpoint__V1__Frame *f);

/* ---- delivery.c ---------------------------------------------------------------------- */
/* Loads positions from ep.notif_state. */
int kaa__opl_positions_load(ops_session *s);
/* Stores positions into ep.notif_state (the caller saves the record). */
int kaa__opl_positions_store(ops_session *s);
ops_pos *kaa__opl_pos(ops_session *s, const char *topic, bool create);
/* The configuration the session's groups give: *doc malloc'd canonical. */
int kaa__opl_current_config(ops_session *s, char **doc, char hash[KAA_SHA256_HEX_SIZE]);
/* Pushes the configuration when it differs from what was delivered or is
 * awaiting its Ack (force: send even when equal, as up_to_date). */
void kaa__opl_config_push(kaa__operations *ops, ops_session *s, bool force);
void kaa__opl_config_sync(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* The Ack of a server request (ConfigPush). */
void kaa__opl_ack_received(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* Sends NotificationTopics (force: even when unchanged). */
void kaa__opl_topics_send(kaa__operations *ops, ops_session *s, bool force);
/* Sends the stored notifications after each stream's position. */
void kaa__opl_notify(kaa__operations *ops, ops_session *s);
void kaa__opl_notification_ack(kaa__operations *ops, ops_session *s,
			       const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_subscribe(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f,
			bool subscribe);
bool kaa__opl_topic_visible(const ops_session *s, const ops_topic *t);
bool kaa__opl_topic_subscribed(const ops_session *s, const ops_topic *t);

/* References the established session of an endpoint on this node, or NULL;
 * release with kaa__opl_session_put. */
ops_session *kaa__opl_session_by_key(kaa__operations *ops, int64_t app_id, const char *key);
void kaa__opl_session_put(ops_session *s);
/* References to every session (of app_id when > 0); free with
 * kaa__opl_snapshot_free. */
ops_session **kaa__opl_sessions_snapshot(kaa__operations *ops, int64_t app_id, size_t *n);
void kaa__opl_snapshot_free(ops_session **v, size_t n);

/* ---- owners.c ------------------------------------------------------------------------------ */
void kaa__opl_owner_attach(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_owner_detach(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* Router callback: an endpoint of this node was attached or detached. */
void kaa__opl_owner_notice(void *ud, int64_t app_id, const char *ekh, const char *owner_id,
			   const char *by_ekh);
/* Reports the session's owner location to the owner's home (connected or
 * not); no-op when it has no owner. Caller holds s->mu. */
void kaa__opl_owner_report(kaa__operations *ops, ops_session *s, bool connected);
/* Router callback: re-report every attached session (ring changed). */
void kaa__opl_owner_report_all(void *ud);

/* ---- events.c ------------------------------------------------------------------------------ */
void kaa__opl_event(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
void kaa__opl_event_listeners(kaa__operations *ops, ops_session *s,
			      const Kaa__Endpoint__V1__Frame *f);
const ops_evclass *kaa__opl_evclass(const ops_app *a, const char *fqn);
/* Router callbacks. */
void kaa__opl_event_deliver(void *ud, int64_t app_id, const char *const *ekhs, size_t n,
			    const kaa__router_event *ev);
void kaa__opl_event_routed(void *ud, uint64_t token, int status);
void kaa__opl_listeners_answer(void *ud, uint64_t token, int status, const char *const *ekhs,
			       size_t n);
/* Frees every pending request (shutdown). */
void kaa__opl_pending_clear(kaa__operations *ops);

/* ---- log_ingest.c ---------------------------------------------------------------------- */
void kaa__opl_log_upload(kaa__operations *ops, ops_session *s, const Kaa__Endpoint__V1__Frame *f);
/* Refuses new uploads and waits until every upload in flight was answered
 * (appenders answer within their own deadlines). kaa__operations_free,
 * while the sessions can still be sent to. */
void kaa__opl_log_drain(kaa__operations *ops);

#endif
