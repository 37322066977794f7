/*
 * operations.h - the operations service: the device-facing logic of the
 * kaa.v2/kaa.v1 protocol (docs/protocol.md) on top of the WebSocket transport
 * (ops_server.h). Registration, profiles and group membership,
 * configuration delivery, notifications, log ingestion, drain.
 *
 * Design (details in docs/protocol.md, section "Operations service"):
 * - Sessions: a table sid -> session state (the endpoint record, positions
 *   of its notification streams, the configuration delivered). Frames of one
 *   session arrive one at a time on a transport worker (store calls block
 *   there, never on the event loop).
 * - Per-application cache: schemas, groups with compiled filters, the
 *   configurations of the latest configuration schema, topics, stored
 *   notifications and log appenders, loaded once per application revision.
 * - Changes: one prefix watch per node on /kaa/<cluster>/apps/ (control puts
 *   apps/<id>/rev after every change). A changed application is reloaded and
 *   its connected endpoints re-evaluated (groups, configuration pushes, topic
 *   list, new notifications) on the service's own background thread.
 * - Owners and events: devices attach to owners (verified by the
 *   application's owner verifiers, or by another attached endpoint with the
 *   endpoint's access token); events are validated against their class and
 *   routed through the owner's home node (event_router.h), acknowledged to
 *   the source device once every node holding a target has taken them.
 * - Drain: a watch on /kaa/<cluster>/drain/<node-id> ({"deadline_ms": unix
 *   ms}) or kaa__operations_drain (SIGTERM) stops admission and redirects
 *   the connected devices in jittered batches to the other live operations
 *   nodes of the registry.
 *
 * Files (layers, lowest first; a file includes only its own layer or
 * lower, never in a cycle; scripts/check-layers.sh checks it):
 * - L0: ops_server.h (the WebSocket transport).
 * - L1: ops_io.h (the transport as the logic sees it), ops_state.h (the
 *   service's state), ops_send.h, ops_sessions.h, ops_app_cache.h,
 *   ops_jobs.h.
 * - L2, one feature each: registration.h, delivery.h, owners.h, events.h,
 *   log_ingest.h, redirect.h (drain and rebalancing).
 * - L3: this header (the service's API), dispatch.c (frames to the feature
 *   handlers), operations.c (life cycle, watches, jobs).
 *
 * Threads: every function may be called from any thread, except that
 * kaa__operations_free must not run concurrently with other calls.
 */
#ifndef KAA_OPERATIONS_H
#define KAA_OPERATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord/coord.h"
#include "endpoint.pb-c.h"
#include "base/metrics.h"
#include "operations/ops_io.h"
#include "operations/ops_server.h"
#include "coord/registry.h"

typedef struct kaa__operations kaa__operations;

typedef struct kaa__operations_opts {
	const char *node_id;   /* required */
	const char *cluster;   /* required */
	const char *sql_url;   /* metadata store (control's), required */
	const char *nosql_url; /* endpoint store, required */
	kaa__coord *coord;     /* borrowed; NULL: no watches (tests) */
	kaa__metrics *metrics; /* borrowed; may be NULL */
	bool clustered;        /* readiness requires the registry record to be written */
	/* transport (io == NULL) */
	const char *bind_host;
	int port;
	const char *tls_cert, *tls_key;
	/* mutual TLS (with tls_cert): devices present a certificate from this
	 * CA whose public key must be the one they register with */
	const char *client_ca;
	int workers, max_sessions, idle_timeout_ms;
	/* base directory of "file" log appenders (NULL: ./data/logs) */
	const char *appender_dir;
	/* default drain deadline for kaa__operations_drain (0: 30000 ms) */
	int drain_timeout_ms;
	/* Hello must carry a proof of possession (kaa.v2) for every
	 * application; false: only for applications in provisioned mode */
	bool proof_always;
	/* copied; NULL: real transport. Tests pass their own io to capture the
	 * outgoing frames and drive kaa__operations_on_frame/on_close. */
	const kaa__ops_io *io;
	/* events and owners across nodes (services/cluster/event_router.h):
	 * the internode listener's port (0: any free port; < 0: none, every
	 * owner's home is this node, as in standalone mode) and address (NULL:
	 * bind_host). With a test io the router runs only when router is set. */
	int internode_port;
	const char *internode_bind;
	bool router;
} kaa__operations_opts;

/* Opens the stores, binds the transport, starts the watches and the
 * background thread. Errors: KAA_ERR_INVAL (missing option), KAA_ERR_IO
 * (port busy, bad certificate, store file), KAA_ERR_UNAVAILABLE (database
 * unreachable), KAA_ERR_NOMEM. *out is NULL on error. */
int kaa__operations_new(const kaa__operations_opts *opts, kaa__operations **out);
/* Closes every session (devices get WebSocket close "going away"), stops the
 * threads and the watches, closes the stores. Accepts NULL. */
void kaa__operations_free(kaa__operations *ops);

/* The registry (borrowed, must outlive ops or be unset with NULL) used for
 * readiness and redirect targets; it is created after the ports are bound. */
void kaa__operations_set_registry(kaa__operations *ops, kaa__registry *reg);

/* The internode listener's bound port (0: none). */
int kaa__operations_internode_port(const kaa__operations *ops);
/* The transport's bound port (0 with a test io). */
int kaa__operations_port(const kaa__operations *ops);
/* Established sessions (transport count with the real transport). */
size_t kaa__operations_sessions(const kaa__operations *ops);
/* Ready: not draining and, when clustered, the registry record is written. */
bool kaa__operations_ready(const kaa__operations *ops);
/* True from the start of a drain until it is cancelled (drain key deleted). */
bool kaa__operations_draining(const kaa__operations *ops);

/* Drains synchronously: stops admission, redirects every device in
 * jittered batches and returns when no session is left or at deadline_ms
 * (unix ms; 0: now + drain_timeout_ms). Returns the sessions left. */
size_t kaa__operations_drain(kaa__operations *ops, int64_t deadline_ms);

/* The transport handlers (exposed for tests with their own io). */
void kaa__operations_on_frame(void *ops, kaa__session_id sid, const Kaa__Endpoint__V1__Frame *f);
void kaa__operations_on_close(void *ops, kaa__session_id sid);

/* Reloads the application and re-evaluates its sessions now, on the calling
 * thread (what the watch schedules on the background thread). */
int kaa__operations_refresh_app(kaa__operations *ops, int64_t app_id);
/* Delivers the stored notifications a session has not seen yet (what runs
 * after a Hello once the device's first frame or a short delay passed). */
void kaa__operations_catch_up(kaa__operations *ops, kaa__session_id sid);

#endif
