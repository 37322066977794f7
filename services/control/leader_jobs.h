/*
 * leader_jobs.h - the singletons the control service runs while this node
 * holds the control leadership (the caller calls the tick only then):
 *
 * - every 10 s: expired notifications are deleted from the metadata store;
 *   application revisions are republished where etcd lags the store (a
 *   replica that failed to publish after a commit only logged it) and the
 *   keys of deleted applications are removed; node records without a lease
 *   (left by hand or by a broken writer) are removed;
 * - every interval_ms, when enabled: load rebalancing (lib/coord/rebalance.h)
 *   from the operations nodes' registry records.
 *
 * Failures of either store are logged and retried at the next pass.
 * Threads: everything on one thread (the node's main thread); the store and
 * the coordination client it calls are thread-safe.
 */
#ifndef KAA_CONTROL_LEADER_JOBS_H
#define KAA_CONTROL_LEADER_JOBS_H

#include "base/metrics.h"
#include "coord/coord.h"
#include "store/meta_store.h"

#include <stdint.h>

typedef struct kaa__leader_jobs kaa__leader_jobs;

/* store, coord and cluster are borrowed and must outlive the jobs.
 * Rebalancing starts with the defaults of kaa__leader_jobs_set_rebalance.
 * Never NULL (out of memory aborts). */
kaa__leader_jobs *kaa__leader_jobs_new(kaa__meta_store *store, kaa__coord *coord,
				       const char *cluster);
/* Accepts NULL. */
void kaa__leader_jobs_free(kaa__leader_jobs *j);

/*
 * Rebalancing: every interval_ms the leader reads the operations nodes'
 * records; when the busiest exceeds the mean by more than threshold (a
 * fraction, e.g. 0.2) and by at least min_sessions, it puts a plan with the
 * next seq at /kaa/<cluster>/rebalance, then makes no new plan for
 * cooldown_ms (at least KAA_REBALANCE_MIN_COOLDOWN_MS) while the moves take
 * effect and loads are republished. interval_ms 0 disables it.
 * Defaults: 0.2, 50, 30000, 60000. Before the first tick.
 */
void kaa__leader_jobs_set_rebalance(kaa__leader_jobs *j, double threshold, int64_t min_sessions,
				    int interval_ms, int cooldown_ms);

/* Registers kaa_control_rebalance_checks_total and
 * kaa_control_rebalance_plans_total in m (borrowed; must outlive j).
 * Before the first tick. */
void kaa__leader_jobs_set_metrics(kaa__leader_jobs *j, kaa__metrics *m);

/* Runs the jobs that are due; call often (e.g. every second) while leader. */
void kaa__leader_jobs_tick(kaa__leader_jobs *j);

#endif
