/*
 * election.h - leader election on one key (lease + transaction).
 *
 * A candidate holds its own lease and tries to create the key with a
 * create-revision == 0 transaction. The winner leads until its lease is
 * lost (it steps down before etcd can expire the lease, see
 * lease_keeper.h) or the key stops being its own. Losers watch the key and
 * retry as soon as it is deleted, so after kill -9 of the leader a standby
 * wins right after the leader's lease expires (within its TTL plus the
 * expiry check of the store, about 0.5 s).
 *
 * Threads: new/free and getters from any thread. elected/deposed run on
 * the election thread, one at a time, and must not call
 * kaa__election_free.
 */
#ifndef KAA_ELECTION_H
#define KAA_ELECTION_H

#include "coord/coord.h"

typedef struct kaa__election kaa__election;

typedef struct kaa__election_cb {
	void (*elected)(void *ud);
	void (*deposed)(void *ud);
	void *ud;
} kaa__election_cb;

/* key and value are copied; c is borrowed and must outlive the election.
 * cb may be NULL. Returns at once (KAA_ERR_IO, KAA_ERR_INVAL);
 * an unreachable store is retried by the thread with backoff. */
int kaa__election_new(kaa__coord *c, const char *key, const char *value, int64_t ttl_s,
		      const kaa__election_cb *cb, kaa__election **out);
bool kaa__election_is_leader(kaa__election *e);
/* Stops campaigning; a leader resigns (deletes the key, revokes its lease)
 * so a standby takes over at once. Accepts NULL. */
void kaa__election_free(kaa__election *e);

#endif
