/*
 * owner_dir.h - the home node's directory of owners: for each owner (per
 * application) that this node is home for (lib/coord/rendezvous.h over the live
 * operations nodes), which of its endpoints are connected, on which node,
 * and which event classes each accepts as a sink. Fed by EndpointLocation
 * frames (protos/cluster.proto) from the endpoints' nodes; read to route
 * events and to answer "who listens for these classes".
 *
 * Events go only to connected endpoints of the same owner (an endpoint that
 * is offline when an event is routed misses it, as in the original
 * platform); never back to the source.
 *
 * Bounds: KAA_OWNER_DIR_MAX_ENDPOINTS per owner and KAA_OWNER_DIR_MAX_SINKS
 * sink classes per endpoint (updates beyond them fail with KAA_ERR_TOO_BIG).
 * Threads: every function may be called from any thread (one mutex).
 */
#ifndef KAA_OWNER_DIR_H
#define KAA_OWNER_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_OWNER_DIR_MAX_ENDPOINTS 1024
#define KAA_OWNER_DIR_MAX_SINKS 256

typedef struct kaa__owner_dir kaa__owner_dir;

kaa__owner_dir *kaa__owner_dir_new(void);
void kaa__owner_dir_free(kaa__owner_dir *d); /* accepts NULL */

/*
 * Records where an owner's endpoint is. connected = false forgets it (it
 * disconnected or was detached). sinks: the event class fqns it accepts
 * (copied). An update from another node than the recorded one moves the
 * endpoint (the newer report wins). Errors: KAA_ERR_INVAL, KAA_ERR_TOO_BIG.
 */
int kaa__owner_dir_update(kaa__owner_dir *d, int64_t app_id, const char *owner_id,
			  const char *endpoint_key_hash, const char *node_id, bool connected,
			  const char *const *sinks, size_t n_sinks);

/* Forgets every endpoint recorded on node_id (the node left the cluster);
 * returns how many. */
size_t kaa__owner_dir_drop_node(kaa__owner_dir *d, const char *node_id);

/*
 * Routes one event: target NULL or "" = every connected endpoint of the
 * owner with fqn among its sinks, else that endpoint only (if it belongs to
 * the owner, is connected and accepts fqn). The source is never a target.
 * deliver is called once per node with that node's target endpoints
 * (borrowed for the call; called with the directory unlocked, on a
 * snapshot). Returns the number of endpoints targeted.
 */
typedef void (*kaa__owner_dir_deliver_cb)(void *ud, const char *node_id,
					  const char *const *endpoints, size_t n);
size_t kaa__owner_dir_route(kaa__owner_dir *d, int64_t app_id, const char *owner_id,
			    const char *source_key_hash, const char *fqn, const char *target,
			    kaa__owner_dir_deliver_cb deliver, void *ud);

/*
 * The owner's connected endpoints, other than asker, that accept every one
 * of fqns (n_fqns >= 1), as a malloc'd array of malloc'd strings in
 * *out (free with kaa__owner_dir_strings_free). Returns the count.
 */
size_t kaa__owner_dir_listeners(kaa__owner_dir *d, int64_t app_id, const char *owner_id,
				const char *asker, const char *const *fqns, size_t n_fqns,
				char ***out);
void kaa__owner_dir_strings_free(char **v, size_t n);

/* Owners (app_id, owner_id) in the directory, for handing off the ones
 * whose home moved: calls cb for each (strings borrowed for the call). */
typedef void (*kaa__owner_dir_owner_cb)(void *ud, int64_t app_id, const char *owner_id);
void kaa__owner_dir_each_owner(kaa__owner_dir *d, kaa__owner_dir_owner_cb cb, void *ud);
/* Forgets an owner entirely (its home moved elsewhere). */
void kaa__owner_dir_forget_owner(kaa__owner_dir *d, int64_t app_id, const char *owner_id);

#endif
