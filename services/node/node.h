/*
 * node.h - a running kaa-node: coordination backend, registry, control
 * leader election and the health/metrics endpoints of every enabled
 * service port.
 *
 * Threads: start, tick and stop are called from the main thread only.
 */
#ifndef KAA_NODE_NODE_H
#define KAA_NODE_NODE_H

#include "node/config.h"

typedef struct kaa__node kaa__node;

/* cfg is borrowed and must outlive the node. Errors: KAA_ERR_IO (a port
 * cannot be bound), KAA_ERR_INVAL (bad etcd endpoints), KAA_ERR_NOMEM. */
int kaa__node_start(const kaa_node_config *cfg, kaa__node **out);
/* Periodic work (about once a second): refreshes load in the record. */
void kaa__node_tick(kaa__node *n);
/* Resigns leadership, deregisters (revokes the lease), stops servers, frees. */
void kaa__node_stop(kaa__node *n);

#endif
