/*
 * registry.h - the node registry: this node's record under
 * /kaa/<cluster>/nodes/<node-id> (under a lease), and an in-memory view of
 * every node's record that other modules read.
 *
 * The registry thread grants the lease, writes the record, rewrites it
 * when kaa__registry_update changed it (at most once a second), and when
 * the lease is lost (etcd outage longer than the TTL, etcd data loss)
 * grants a new one and registers again. A watch keeps the view; a value
 * under the prefix that does not decode is skipped with a warning.
 *
 * Threads: every function may be called from any thread except that
 * kaa__registry_free must not run concurrently with other calls on it.
 */
#ifndef KAA_REGISTRY_H
#define KAA_REGISTRY_H

#include "coord/coord.h"
#include "coord/node_record.h"

typedef struct kaa__registry kaa__registry;

/* c is borrowed and must outlive the registry; self is copied. Starts the
 * threads and returns at once; KAA_ERR_INVAL (no id, bad cluster name),
 * KAA_ERR_IO. */
int kaa__registry_new(kaa__coord *c, const char *cluster, const kaa__node_record *self,
		      int64_t ttl_s, kaa__registry **out);
/* Replaces this node's record (copied); written within about a second. */
int kaa__registry_update(kaa__registry *r, const kaa__node_record *self);
/* True once this node's current record has been written under a live lease. */
bool kaa__registry_registered(kaa__registry *r);
/* True while the view's watch is connected and has listed the nodes. */
bool kaa__registry_view_synced(kaa__registry *r);
/* A copy of the view, sorted by id; free with kaa__node_records_free. */
int kaa__registry_nodes(kaa__registry *r, kaa__node_record **out, size_t *n);
size_t kaa__registry_count(kaa__registry *r);
void kaa__node_records_free(kaa__node_record *recs, size_t n);
/* Stops the threads; with deregister, revokes the lease so the record
 * disappears at once. Accepts NULL. */
void kaa__registry_free(kaa__registry *r, bool deregister);

/* The view logic on its own (unit tests): a sorted set of records keyed by
 * node id, fed from watch snapshots and events on keys "<prefix><id>". */
typedef struct kaa__node_view {
	kaa__node_record *recs;
	size_t n, cap;
	size_t skipped; /* malformed values seen */
} kaa__node_view;

void kaa__node_view_reset(kaa__node_view *v, const char *prefix, const kaa__kv_list *snap);
void kaa__node_view_apply(kaa__node_view *v, const char *prefix, const kaa__watch_event *ev,
			  size_t n);
void kaa__node_view_clear(kaa__node_view *v);

#endif
