/*
 * event_router.h - device-to-device events across operations nodes.
 *
 * Each owner (app_id, owner_id) has a HOME node: kaa__rendezvous_pick of the
 * key "<app_id>/<owner_id>" over the live operations nodes given to
 * kaa__router_set_nodes. Endpoints' nodes report where the owner's attached
 * endpoints are (EndpointLocation) to the home, whose owner_dir routes
 * events: a device's node sends a RouteEvent to the home, the home sends a
 * DeliverEvent to each node holding targets (or calls deliver itself for
 * its own). Internode traffic: protos/cluster.proto over
 * services/cluster/internode.h.
 *
 * Delivery is at-least-once while any path survives: every RouteEvent,
 * DeliverEvent, EndpointLocation and OwnerNotice carries an
 * InternodeFrame.seq and is re-sent every ~1 s after ~2 s without its Ack
 * (re-sends create duplicates, which devices drop by (source, seq)). The
 * home acks a RouteEvent only when every DeliverEvent it sent for it was
 * acked (a node acks after calling deliver) or that node left the ring.
 * A pending RouteEvent whose home left the ring is re-routed to the new
 * home at once, and one whose home moved (in this node's view) at its next
 * re-send; a pending DeliverEvent, EndpointLocation or OwnerNotice to a node
 * that left is dropped (its devices reconnect elsewhere and re-report), and
 * an EndpointLocation or OwnerNotice unacked after 30 s is dropped too. A
 * RouteEvent reaching a node that is not the home in its view is forwarded
 * to its home (at most 3 hops; at the limit it is dropped unacked and the
 * source re-sends). A ListenersQuery is not acked: the asking node re-sends
 * it to the current home until the ListenersAnswer comes or 5 s pass; a
 * node that is not the home ignores it.
 *
 * Ring changes: the set of node ids changed, or a node's address did (it
 * restarted with an empty directory). Then each_location is called
 * (re-report every local endpoint; the homes may have moved), internode
 * peers are added/removed, owner_dir forgets the endpoints of nodes that
 * left, and for a settle window of ~1.5 s this node defers the events and
 * listener queries it is home for (so the endpoints' nodes have re-reported
 * to it); at the end of the window it forgets owners it is no longer home
 * for.
 *
 * Metrics (opts.metrics, label node="<node_id>"): kaa_router_events_routed_total
 * (routed here as the home), kaa_router_events_delivered_total (endpoints handed
 * to deliver), kaa_router_frames_resent_total, kaa_router_events_rerouted_total
 * (sent to a new home), kaa_router_events_forwarded_total (passed on by a non-home),
 * kaa_router_timeouts_total (routes and listener queries), and the gauge
 * kaa_router_pending_frames (frames waiting for an Ack).
 *
 * Threads: one worker thread owns all state and makes every callback. All
 * public functions except new/free may be called from any thread, even
 * while holding locks the callbacks take: they only copy their arguments
 * into a bounded queue (KAA_ROUTER_QUEUE_MAX items) and return; no callback
 * ever runs inside them.
 */
#ifndef KAA_EVENT_ROUTER_H
#define KAA_EVENT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/metrics.h"

#define KAA_ROUTER_QUEUE_MAX 100000
#define KAA_ROUTER_ROUTE_TIMEOUT_MS 30000
#define KAA_ROUTER_LISTENERS_TIMEOUT_MS 5000
#define KAA_ROUTER_SETTLE_MS 1500
#define KAA_ROUTER_MAX_HOPS 3
/* Bounds on strings and lists handed in (KAA_ERR_INVAL / KAA_ERR_TOO_BIG). */
#define KAA_ROUTER_ID_MAX 256 /* ids, key hashes, class fqns (as the SDK's) */
#define KAA_ROUTER_BODY_MAX (128 * 1024)
#define KAA_ROUTER_SINKS_MAX 256    /* sink classes of one endpoint */
#define KAA_ROUTER_FQNS_MAX 1024    /* classes in one listeners query */
#define KAA_ROUTER_FQNS_BYTES 65536 /* their total length */

typedef struct kaa__router kaa__router;

typedef struct kaa__router_node {
	const char *id, *host;
	int port; /* internode port */
} kaa__router_node;

typedef struct kaa__router_event { /* all borrowed */
	int64_t app_id;
	const char *owner_id;
	const char *source_key_hash;
	const char *fqn;
	const char *target; /* NULL or "": every sink of fqn of the owner */
	const char *body_json;
	uint64_t seq; /* the source's event seq */
} kaa__router_event;

typedef struct kaa__router_cbs { /* all called ONLY on the router's own worker thread */
	void *ud;
	/* deliver ev to these endpoints, whose sessions are on this node
	 * (ekhs and ev borrowed for the call; may repeat an earlier delivery) */
	void (*deliver)(void *ud, int64_t app_id, const char *const *ekhs, size_t n,
			const kaa__router_event *ev);
	/* the kaa__router_route call with this token is done: status KAA_OK once every node
	 * holding a target has taken the event (or there was no target); KAA_ERR_TIMEOUT if
	 * not done within the deadline (30 s). Called exactly once per accepted route call
	 * (not at all if kaa__router_free comes first). */
	void (*routed)(void *ud, uint64_t token, int status);
	/* answer of kaa__router_listeners (ekhs borrowed): KAA_OK, or KAA_ERR_TIMEOUT
	 * (ekhs NULL, n 0) after 5 s. Exactly once per accepted call. */
	void (*listeners)(void *ud, uint64_t token, int status, const char *const *ekhs, size_t n);
	/* an endpoint on this node was attached (owner_id != NULL) or detached (owner_id NULL)
	 * by by_ekh (strings borrowed) */
	void (*notice)(void *ud, int64_t app_id, const char *ekh, const char *owner_id,
		       const char *by_ekh);
	/* the ring changed: call kaa__router_location(...connected=true...) for every attached
	 * endpoint on this node */
	void (*each_location)(void *ud);
} kaa__router_cbs;

typedef struct kaa__router_opts {
	const char *node_id, *cluster; /* required */
	const char *bind_host;         /* NULL: all addresses */
	/* internode; 0: any free port; <0: no internode listener (standalone: every owner's
	 * home is this node, set_nodes is ignored) */
	int port;
	kaa__metrics *metrics; /* borrowed, may be NULL; must outlive the router */
	kaa__router_cbs cbs;   /* every callback may be NULL (its calls are skipped) */
} kaa__router_opts;

/* Starts the worker thread (and the internode listener when port >= 0).
 * Errors: KAA_ERR_INVAL (node_id/cluster missing or too long, out NULL),
 * KAA_ERR_IO (the port cannot be bound), KAA_ERR_NOMEM. */
int kaa__router_new(const kaa__router_opts *o, kaa__router **out);
/* The bound internode port, or -1 when standalone. */
int kaa__router_port(const kaa__router *r);
/* Stops the worker thread and the internode link; accepts NULL; no callback after it
 * returns. Pending routes and queries are abandoned without a callback. Not from a
 * callback. */
void kaa__router_free(kaa__router *r);

/* The live operations nodes (self included), from the registry view; called every
 * ~0.5 s with the full list (cheap when unchanged: compared under the queue lock,
 * nothing is queued). Peers are added/removed in internode; a change of the set of ids,
 * or of a node's address, is a ring change. An empty list means "only me"; a non-empty
 * list without this node is used as given (this node is nobody's home). Arrays copied.
 * Ignored when standalone. Entries with a NULL/empty/over-long id or host, or a port
 * outside 1..65535 (except this node's own entry), are skipped. */
void kaa__router_set_nodes(kaa__router *r, const kaa__router_node *nodes, size_t n);

/* Endpoint ekh of owner_id, whose session is on this node, is attached and accepts
 * these sink classes (connected) or left this node / was detached (!connected): told to
 * the owner's home. Strings copied. Errors: KAA_ERR_INVAL (NULL/empty/over-long id,
 * sinks NULL with n_sinks > 0), KAA_ERR_TOO_BIG (n_sinks > KAA_ROUTER_SINKS_MAX or the
 * queue is full). */
int kaa__router_location(kaa__router *r, int64_t app_id, const char *owner_id, const char *ekh,
			 bool connected, const char *const *sinks, size_t n_sinks);

/* Routes ev among the owner's connected endpoints (never back to the source); the
 * outcome comes through routed(token). ev copied. Errors (no callback then):
 * KAA_ERR_INVAL (owner_id, source_key_hash or fqn NULL/empty/over-long, target
 * over-long, body_json NULL), KAA_ERR_TOO_BIG (body over KAA_ROUTER_BODY_MAX or the
 * queue is full). */
int kaa__router_route(kaa__router *r, const kaa__router_event *ev, uint64_t token);

/* Which connected endpoints of the owner, other than asker, accept every one of fqns
 * (n >= 1); the answer comes through listeners(token). Strings copied. Errors (no
 * callback then): KAA_ERR_INVAL (bad ids, n == 0, fqns NULL), KAA_ERR_TOO_BIG (n >
 * KAA_ROUTER_FQNS_MAX, their total length over KAA_ROUTER_FQNS_BYTES, or the queue is
 * full). */
int kaa__router_listeners(kaa__router *r, int64_t app_id, const char *owner_id, const char *asker,
			  const char *const *fqns, size_t n, uint64_t token);

/* Tells node_id (may be self) that endpoint ekh was attached to owner_id (NULL:
 * detached) by by_ekh: that node's notice callback runs (acked and re-sent; dropped if
 * the node leaves the ring, or after 30 s without an Ack; dropped with a warning when
 * standalone and node_id is not this node). Strings copied. Errors: KAA_ERR_INVAL (bad ids),
 * KAA_ERR_TOO_BIG (queue full). */
int kaa__router_notice(kaa__router *r, const char *node_id, int64_t app_id, const char *ekh,
		       const char *owner_id, const char *by_ekh);

/* This node's current home for the owner (a copy into buf, NUL-terminated; for tests
 * and diagnostics; reads the last ring the worker applied, under a lock). Returns
 * KAA_OK, KAA_ERR_INVAL, or KAA_ERR_TOO_BIG when buf is too small. */
int kaa__router_home(kaa__router *r, int64_t app_id, const char *owner_id, char *buf, size_t size);

#endif
