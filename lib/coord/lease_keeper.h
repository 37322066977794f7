/*
 * lease_keeper.h - grants a lease and keeps it alive from its own thread.
 *
 * The keeper sends a keepalive every TTL/3. It declares the lease lost
 * when etcd says the lease is gone, or when no keepalive has succeeded
 * and the local deadline (send time of the last acknowledged keepalive +
 * remaining TTL, minus a 500 ms margin) passes. Because etcd measures
 * expiry from when it received that keepalive, which is after we sent it,
 * the owner learns of the loss before etcd can expire the lease: a leader
 * steps down before another candidate can win.
 *
 * Threads: new/free from the owner's thread; the lost callback runs once
 * on the keeper thread and must not call kaa__lease_keeper_free. The other
 * getters are safe from any thread.
 */
#ifndef KAA_LEASE_KEEPER_H
#define KAA_LEASE_KEEPER_H

#include "coord/coord.h"

typedef struct kaa__lease_keeper kaa__lease_keeper;

typedef void (*kaa__lease_lost_fn)(void *ud);

/* Grants a lease of ttl_s seconds synchronously (errors as
 * kaa__coord_lease_grant) and starts the keepalive thread. c is borrowed
 * and must outlive the keeper. lost may be NULL. */
int kaa__lease_keeper_new(kaa__coord *c, int64_t ttl_s, kaa__lease_lost_fn lost, void *ud,
			  kaa__lease_keeper **out);
int64_t kaa__lease_keeper_id(const kaa__lease_keeper *k);
/* false once the lease is known or presumed lost. */
bool kaa__lease_keeper_alive(kaa__lease_keeper *k);
/* Stops the thread; with revoke, revokes the lease (deleting its keys) if
 * it is still alive. Accepts NULL. */
void kaa__lease_keeper_free(kaa__lease_keeper *k, bool revoke);

#endif
