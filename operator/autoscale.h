/*
 * autoscale.h - the operations autoscaler's decision (pure) and the etcd
 * reading it is fed from.
 *
 * Decision: desired = clamp(ceil(total_sessions / target), min, max).
 * Scaling up (or to the bounds after a spec change) happens at once;
 * scaling down only after every recommendation during the stabilisation
 * window was below the current count, and then to the highest of those
 * recommendations, so load oscillating around a threshold never makes the
 * replica count oscillate.
 *
 * Threads: the decision is pure (state owned by the caller);
 * kaa__autoscale_read may be called from any thread.
 */
#ifndef KAA_AUTOSCALE_H
#define KAA_AUTOSCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord/coord.h"

typedef struct kaa__autoscale_input {
	int64_t total_sessions; /* < 0 treated as 0 */
	int32_t current;        /* replicas now */
	int32_t min, max;       /* bounds; min < 1 is 1, max < min is min */
	int32_t target;         /* sessions per pod, < 1 is 1 */
	int64_t window_ms;      /* stabilisation window for scaling down */
	int64_t now_ms;         /* monotonic clock */
} kaa__autoscale_input;

/* Zero-initialise; one per KaaCluster. */
typedef struct kaa__autoscale_state {
	int64_t low_since_ms; /* when recommendations started to be below current, 0: not */
	int32_t low_max;      /* highest recommendation since then */
} kaa__autoscale_state;

/* clamp(ceil(total/target), min, max), after the input normalisation above. */
int32_t kaa__autoscale_recommend(const kaa__autoscale_input *in);
/* The replica count to run now (== current: no change). Updates st. */
int32_t kaa__autoscale_decide(kaa__autoscale_state *st, const kaa__autoscale_input *in);

/* One operations node as the autoscaler sees it. */
typedef struct kaa__autoscale_node {
	char id[254];
	int64_t sessions;
	bool draining;
} kaa__autoscale_node;

#define KAA_AUTOSCALE_MAX_NODES 4096

/*
 * Reads /kaa/<cluster>/nodes/ and keeps the records of nodes running
 * operations (malformed records are skipped). *nodes is malloc'd (free()),
 * *n its length, *total the sum of sessions. Errors: those of
 * kaa__coord_range, KAA_ERR_INVAL (bad cluster name).
 */
int kaa__autoscale_read(kaa__coord *c, const char *cluster, kaa__autoscale_node **nodes, size_t *n,
			int64_t *total);

/*
 * Picks the k nodes to drain before scaling down: those not already
 * draining with the fewest sessions (ties by id, so the choice is stable).
 * Writes up to k indexes into pick and returns how many.
 */
size_t kaa__autoscale_pick_drain(const kaa__autoscale_node *nodes, size_t n, size_t k,
				 size_t *pick);

#endif
