/*
 * internode.h - the link between kaa-node processes: protobuf
 * InternodeFrames (protos/cluster.proto) over WebSocket on the internode
 * port (subprotocol "kaa.internode.v1"), one connection per node pair.
 *
 * Connections: for a pair of nodes, the one with the smaller node id (strcmp)
 * dials and the other accepts, so a pair never holds two connections. The
 * dialer sends Hello {node_id, cluster}; the acceptor checks the cluster and
 * answers with its own Hello; only then do queued frames flow, both ways. A
 * lost connection is re-dialed with jittered exponential backoff (100 ms ..
 * 5 s) for as long as the peer is known (kaa__internode_set_peer).
 *
 * Delivery: frames for a peer wait in a bounded queue (queue_max bytes)
 * while it is unreachable and are written in order once connected. A frame
 * is dropped from the queue when lws has taken it; one written just before
 * a connection breaks may be lost, so callers that need at-least-once
 * delivery ask for an Ack (InternodeFrame.seq) and re-send.
 *
 * Threads: one service thread runs the lws context; on_frame is called on
 * it (keep it short: hand work to your own threads). Every other function
 * may be called from any thread, except free.
 *
 * The same port answers GET /healthz (200) and /metrics (opts.metrics).
 */
#ifndef KAA_INTERNODE_H
#define KAA_INTERNODE_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster.pb-c.h"
#include "base/metrics.h"

#define KAA_INTERNODE_FRAME_MAX (256 * 1024)
#define KAA_INTERNODE_SUBPROTOCOL "kaa.internode.v1"

typedef struct kaa__internode kaa__internode;

/* from_node is the authenticated-by-Hello peer id; frame borrowed. */
typedef void (*kaa__internode_frame_cb)(void *ud, const char *from_node,
					const Kaa__Cluster__V1__InternodeFrame *frame);

typedef struct kaa__internode_opts {
	const char *node_id;   /* required */
	const char *cluster;   /* required */
	const char *bind_host; /* NULL: all addresses */
	int port;              /* 0: any free port */
	size_t queue_max;      /* per peer, bytes; 0: 4 MiB */
	kaa__internode_frame_cb on_frame;
	void *ud;
	kaa__metrics *metrics; /* borrowed, may be NULL */
} kaa__internode_opts;

/* Binds and starts the service thread. Errors: KAA_ERR_INVAL,
 * KAA_ERR_IO (bind failed), KAA_ERR_NOMEM. */
int kaa__internode_new(const kaa__internode_opts *opts, kaa__internode **out);
int kaa__internode_port(const kaa__internode *in);
/* Closes every connection, stops the thread, frees; accepts NULL. */
void kaa__internode_free(kaa__internode *in);

/* Adds or updates a peer (from the registry view). A changed address
 * re-dials. Its own node id is ignored. KAA_ERR_INVAL. */
int kaa__internode_set_peer(kaa__internode *in, const char *node_id, const char *host, int port);
/* Forgets a peer that left the registry: closes its connection and drops
 * its queue. KAA_ERR_NOTFOUND. */
int kaa__internode_remove_peer(kaa__internode *in, const char *node_id);

/* Queues a frame (encoded at once; borrowed). Errors: KAA_ERR_NOTFOUND (no
 * such peer and no connection from it), KAA_ERR_TOO_BIG (frame over
 * KAA_INTERNODE_FRAME_MAX or the peer's queue is full), KAA_ERR_INVAL. */
int kaa__internode_send(kaa__internode *in, const char *node_id,
			const Kaa__Cluster__V1__InternodeFrame *frame);

/* The same for a frame already packed (buf[0..len), copied), e.g. one kept
 * for re-sending. Same errors. */
int kaa__internode_send_packed(kaa__internode *in, const char *node_id, const void *buf,
			       size_t len);

/* True when the peer's connection has completed Hello. */
bool kaa__internode_connected(kaa__internode *in, const char *node_id);
/* Connections with Hello completed (for tests and metrics). */
size_t kaa__internode_connections(kaa__internode *in);

#endif
