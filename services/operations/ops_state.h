/*
 * ops_state.h - the operations service's state (layer L1 of
 * services/operations; may include ops_io.h, ops_server.h and lib/ only):
 * struct kaa__operations, the per-application cache entries (ops_app), the
 * session state (ops_session), background jobs and pending router requests,
 * and the limits the service announces. Data only: the functions that own
 * each part are in ops_app_cache.h, ops_sessions.h, ops_jobs.h and
 * ops_send.h; the feature handlers (registration.h, delivery.h, owners.h,
 * events.h, log_ingest.h, redirect.h) read and change the fields under the
 * locks below.
 *
 * Locking: ops->mu guards the session tables, the application cache list
 * and the job queues; a session's own mu serializes its frame handler with
 * background re-evaluation and catch-up. Order: a session mu may be taken
 * while no other lock is held, and ops->mu may be taken inside it (short
 * sections only); never the reverse. ops->pend_mu guards the pending router
 * requests (events.c).
 */
#ifndef KAA_OPS_STATE_H
#define KAA_OPS_STATE_H

#include "base/clock.h"
#include "base/metrics.h"
#include "json/avro_schema.h"
#include "cluster/event_router.h"
#include "coord/coord.h"
#include "coord/registry.h"
#include "store/endpoint_store.h"
#include "json/filter.h"
#include "appender/log_appender.h"
#include "store/meta_store.h"
#include "operations/ops_io.h"
#include "operations/ops_server.h"

#include <pthread.h>
#include <stdatomic.h>

/* The same (opaque) type operations.h declares for callers. */
typedef struct kaa__operations kaa__operations;

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
	/* runs one due job on the background thread (set before it starts;
	 * operations.c: the jobs reach the service's top, ops_jobs.c does not) */
	void (*run_job)(kaa__operations *ops, const ops_job *j);
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

#endif
