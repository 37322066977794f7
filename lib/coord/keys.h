/*
 * keys.h - the one place that spells the etcd key layout. Every key lives
 * under /kaa/<cluster>/ (BRIEF.md, docs/ARCHITECTURE.md "etcd keys"):
 *
 *   nodes/<node-id>         node record, under the node's lease
 *   control/leader          the control leader's node id, under its lease
 *   apps/<app-id>/rev       metadata revision of an application
 *   apps/<app-id>/endpoints/<key-hash>
 *                           a change to one endpoint made through control
 *                           (its server profile): put, then deleted at once;
 *                           the node holding the session re-reads the record
 *   drain/<node-id>         a drain request for a node
 *   rebalance               the leader's latest rebalancing plan
 *
 * Each function writes a NUL-terminated key (or prefix, ending in '/') into
 * out (cap bytes, KAA__KEY_MAX is always enough for validated names) and
 * returns its length, or KAA_ERR_TOO_BIG when it does not fit (out then
 * holds ""). Pure functions; any thread.
 */
#ifndef KAA_COORD_KEYS_H
#define KAA_COORD_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* cluster names and node ids are validated to at most 63 and 253 bytes */
#define KAA__KEY_MAX 512

int kaa__key_cluster(char *out, size_t cap, const char *cluster);
int kaa__key_nodes(char *out, size_t cap, const char *cluster);
int kaa__key_node(char *out, size_t cap, const char *cluster, const char *node_id);
int kaa__key_leader(char *out, size_t cap, const char *cluster);
int kaa__key_apps(char *out, size_t cap, const char *cluster);
int kaa__key_app(char *out, size_t cap, const char *cluster, int64_t app_id);
int kaa__key_app_rev(char *out, size_t cap, const char *cluster, int64_t app_id);
int kaa__key_app_endpoint(char *out, size_t cap, const char *cluster, int64_t app_id,
			  const char *key_hash);
int kaa__key_drains(char *out, size_t cap, const char *cluster);
int kaa__key_drain(char *out, size_t cap, const char *cluster, const char *node_id);
int kaa__key_rebalance(char *out, size_t cap, const char *cluster);

#endif
