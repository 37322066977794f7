/*
 * coord.h - the coordination layer: a key-value store with revisions,
 * leases and watches, backed either by etcd v3 (gRPC) or by an in-process
 * store for standalone mode. Election (election.h) and the node registry
 * (registry.h) are written once on top of this interface.
 *
 * Keys are NUL-terminated strings; values are byte strings with a length
 * (always NUL-terminated in results for convenience).
 *
 * Threads: every function here may be called from any thread; calls are
 * synchronous and bounded by the timeout given in kaa__coord_opts.
 * Watch callbacks run on the watch's own thread, one call at a time; a
 * callback must not call kaa__coord_watch_free on its own watch.
 *
 * Errors (negative kaa_err):
 *   KAA_ERR_UNAVAILABLE  etcd unreachable or the call failed in transit
 *   KAA_ERR_TIMEOUT      the call's deadline passed
 *   KAA_ERR_LEASE_LOST   the lease does not exist (expired or revoked)
 *   KAA_ERR_COMPACTED    a requested revision was compacted
 *   KAA_ERR_PROTOCOL     an answer could not be decoded
 *   KAA_ERR_INVAL        bad argument (empty key, ttl < 1, ...)
 * Out of memory aborts through kaa__oom() (base/alloc.h), as everywhere in
 * the daemons' layers of lib/.
 */
#ifndef KAA_COORD_H
#define KAA_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kaa__coord kaa__coord;
typedef struct kaa__watch kaa__watch;

typedef struct kaa__kv {
	char *key;
	char *value; /* NUL-terminated copy; value_len excludes the NUL */
	size_t value_len;
	int64_t create_rev;
	int64_t mod_rev;
	int64_t version;
	int64_t lease;
} kaa__kv;

/* A list of key-values, owned by the list. revision is the store revision
 * the answer reflects. */
typedef struct kaa__kv_list {
	kaa__kv *items;
	size_t n;
	int64_t revision;
} kaa__kv_list;

void kaa__kv_list_clear(kaa__kv_list *l); /* frees items; l may be zeroed */
void kaa__kv_clear(kaa__kv *kv);
void kaa__kv_set(kaa__kv *kv, const char *key, size_t key_len, const void *val, size_t val_len);

typedef struct kaa__coord_opts {
	int call_timeout_ms; /* per unary call; 0 = 5000 */
} kaa__coord_opts;

/* Connects lazily: creation succeeds while etcd is down, calls then fail
 * with KAA_ERR_UNAVAILABLE until it is reachable. endpoints is a comma
 * separated list of http://host:port URLs (the https scheme is refused
 * with KAA_ERR_INVAL for now). */
int kaa__coord_new_etcd(const char *endpoints, const kaa__coord_opts *opts, kaa__coord **out);
/* The standalone in-process store: same semantics, lives as long as the
 * handle. Lease expiry is checked every 100 ms. */
int kaa__coord_new_local(kaa__coord **out);
/* Frees the handle; every watch must have been freed first. Accepts NULL. */
void kaa__coord_free(kaa__coord *c);
/* "etcd" or "local"; static string. */
const char *kaa__coord_kind(const kaa__coord *c);

/* Reads one key (prefix=false) or every key under a prefix, sorted by key.
 * A missing key yields an empty list, not an error. */
int kaa__coord_range(kaa__coord *c, const char *key, bool prefix, kaa__kv_list *out);
/* Reads one key; KAA_ERR_NOTFOUND when absent. out is filled on success. */
int kaa__coord_get(kaa__coord *c, const char *key, kaa__kv *out, int64_t *revision);
/* lease 0 = no lease. *revision (may be NULL) gets the new store revision. */
int kaa__coord_put(kaa__coord *c, const char *key, const void *val, size_t len, int64_t lease,
		   int64_t *revision);
/* Deletes one key or a prefix; *deleted (may be NULL) gets the count. */
int kaa__coord_delete(kaa__coord *c, const char *key, bool prefix, int64_t *deleted);
/* Compare-and-swap in one transaction: if the key's mod revision equals
 * expect_mod_rev (0 = the key must not exist), writes val (or deletes the
 * key when val is NULL) and sets *succeeded. On failure *current (may be
 * NULL) receives the key's current value (key NULL when absent). */
int kaa__coord_cas(kaa__coord *c, const char *key, int64_t expect_mod_rev, const void *val,
		   size_t len, int64_t lease, bool *succeeded, kaa__kv *current);
/* Compacts history up to revision (tests and maintenance). */
int kaa__coord_compact(kaa__coord *c, int64_t revision);

int kaa__coord_lease_grant(kaa__coord *c, int64_t ttl_s, int64_t *id);
/* Revoking deletes every key attached to the lease. Revoking an unknown
 * lease returns KAA_ERR_LEASE_LOST. */
int kaa__coord_lease_revoke(kaa__coord *c, int64_t id);
/* One keepalive round trip; *ttl_left gets the remaining TTL in seconds.
 * KAA_ERR_LEASE_LOST when the lease no longer exists. */
int kaa__coord_lease_keepalive(kaa__coord *c, int64_t id, int64_t *ttl_left);

typedef enum kaa__watch_event_type {
	KAA_WATCH_PUT = 0,
	KAA_WATCH_DELETE = 1,
} kaa__watch_event_type;

typedef struct kaa__watch_event {
	kaa__watch_event_type type;
	kaa__kv kv; /* for DELETE: key and mod_rev only */
} kaa__watch_event;

/* Callbacks run on the watch thread; pointers are borrowed for the call.
 * events: a batch in revision order; every event is delivered exactly once
 *         across reconnects and etcd restarts.
 * reset:  the watcher's picture must be replaced by snapshot (the full
 *         current content of the watched range). Sent first when
 *         KAA_WATCH_SNAPSHOT is set, and whenever the revision to resume
 *         from has been compacted (events in between cannot be replayed).
 * connected: optional; called with false when the stream broke and true
 *         when it is back (for metrics and readiness). */
typedef struct kaa__watch_cb {
	void (*events)(void *ud, const kaa__watch_event *ev, size_t n);
	void (*reset)(void *ud, const kaa__kv_list *snapshot);
	void (*connected)(void *ud, bool up);
	void *ud;
} kaa__watch_cb;

enum {
	KAA_WATCH_PREFIX = 1,   /* watch every key under key */
	KAA_WATCH_SNAPSHOT = 2, /* list first, then watch from the list's revision + 1 */
};

/* Starts a watch thread. start_rev: first revision to deliver (0 = from
 * now, ignored with KAA_WATCH_SNAPSHOT). Returns at once; an unreachable
 * etcd is retried with backoff by the thread. cb is copied. */
int kaa__coord_watch(kaa__coord *c, const char *key, int flags, int64_t start_rev,
		     const kaa__watch_cb *cb, kaa__watch **out);
/* Stops the thread (cancelling the stream) and frees; accepts NULL.
 * After return no callback runs. Must not be called from a callback. */
void kaa__coord_watch_free(kaa__watch *w);
/* Revision of the last delivered event or snapshot (for tests/metrics). */
int64_t kaa__coord_watch_revision(kaa__watch *w);

/* Counters for /metrics; safe from any thread. */
typedef struct kaa__coord_stats {
	uint64_t calls;
	uint64_t call_errors;
	uint64_t watch_reconnects;
	uint64_t watch_resets;
} kaa__coord_stats;
void kaa__coord_get_stats(kaa__coord *c, kaa__coord_stats *out);

#endif
