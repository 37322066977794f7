/*
 * rendezvous.h - rendezvous (highest random weight) hashing: the home
 * operations node of an owner is the live node with the highest score
 * hash(owner, node). When a node leaves, only the owners it was home for
 * move (each to its next-best node); when one joins, only the owners that
 * now score highest on it move (about 1/N of them). Every node computes the
 * same answer from the same registry view, without coordination.
 * Pure functions: any thread.
 */
#ifndef KAA_RENDEZVOUS_H
#define KAA_RENDEZVOUS_H

#include <stddef.h>
#include <stdint.h>

/* The score of key on node (NUL-terminated strings). */
uint64_t kaa__rendezvous_score(const char *key, const char *node);

/* Index of the node with the highest score for key among nodes[0..n), ties
 * (practically impossible) going to the smaller node id; -1 when n == 0 or
 * an argument is NULL. The order of nodes does not matter. */
long kaa__rendezvous_pick(const char *key, const char *const *nodes, size_t n);

#endif
