/*
 * rebalance.h - the control leader's load rebalancing plan and its etcd
 * encoding (/kaa/<cluster>/rebalance).
 *
 * Given the operations nodes' session counts, a plan moves sessions from
 * nodes above the mean by more than a threshold to nodes below it, moving
 * the minimum needed: each overloaded node sheds down to the (ceiling of
 * the) mean, each receiver takes at most its deficit. Draining nodes are
 * neither sources nor destinations (the drain moves their sessions).
 * Operations nodes apply a plan once per seq: the source sends redirect
 * frames to that many of its devices, in rate-limited jittered batches,
 * naming the destination.
 *
 * Value: {"seq":N,"created_ms":T,"moves":[{"from":"a","to":"b","sessions":K},...]}
 * Pure functions: any thread.
 */
#ifndef KAA_REBALANCE_H
#define KAA_REBALANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_REBALANCE_MAX_MOVES 256
#define KAA_REBALANCE_MAX_BYTES 65536
/* An operations node spreads the redirects of one plan over this long, so
 * its devices show up on their targets' records only after it; the leader
 * plans again no sooner than this plus a margin, whatever the configured
 * cooldown, or it would move devices that are already on their way. */
#define KAA_REBALANCE_SPREAD_MS 10000
#define KAA_REBALANCE_MIN_COOLDOWN_MS (KAA_REBALANCE_SPREAD_MS + 3000)

typedef struct kaa__rebalance_node {
	const char *id; /* borrowed */
	int64_t sessions;
	bool draining;
} kaa__rebalance_node;

typedef struct kaa__rebalance_move {
	char *from, *to; /* plan: borrowed from the nodes; decoded: owned */
	int64_t sessions;
} kaa__rebalance_move;

typedef struct kaa__rebalance_plan {
	int64_t seq;
	int64_t created_ms;
	kaa__rebalance_move moves[KAA_REBALANCE_MAX_MOVES];
	size_t n_moves;
} kaa__rebalance_plan;

/*
 * Fills plan->moves (seq and created_ms untouched). A plan is made only when
 * the busiest node exceeds mean * (1 + threshold) and by at least
 * min_sessions; otherwise n_moves is 0. threshold >= 0. Returns the number
 * of sessions moved in total.
 */
int64_t kaa__rebalance_compute(const kaa__rebalance_node *nodes, size_t n, double threshold,
			       int64_t min_sessions, kaa__rebalance_plan *plan);

/* *json malloc'd. KAA_ERR_TOO_BIG over 4 * KAA_REBALANCE_MAX_BYTES. */
int kaa__rebalance_encode(const kaa__rebalance_plan *plan, char **json, size_t *len);
/* Strict: KAA_ERR_INVAL for malformed JSON, wrong types, missing fields,
 * empty or over-long node ids, sessions < 1, more than
 * KAA_REBALANCE_MAX_MOVES moves; KAA_ERR_TOO_BIG over
 * KAA_REBALANCE_MAX_BYTES. On success the move ids are owned by *plan
 * (free with kaa__rebalance_plan_clear); on error *plan holds nothing. */
int kaa__rebalance_decode(const char *json, size_t len, kaa__rebalance_plan *plan);
/* Frees decoded ids; only for plans from kaa__rebalance_decode. */
void kaa__rebalance_plan_clear(kaa__rebalance_plan *plan);

#endif
