/*
 * bootstrap.h - the bootstrap service: tells devices which operations
 * nodes to use, from the live node registry.
 *
 *   GET /v1/operations[?application=TOKEN]
 *   200 {"nodes":[{"id","host","port","weight","tls","url","urls"}...]}
 *
 * url is the node's preferred advertised operations URL (kaa-node
 * --advertise, e.g. "wss://ops-0.devices.example.com:443/"), urls all of
 * them in order; host, port (the node's own listener) and tls stay for
 * older clients. A node record without URLs (an older node) gets
 * "ws[s]://host:port/".
 *
 * Listed: nodes running operations, not draining, with an operations port.
 * weight (1..1000) is proportional to spare capacity, so devices picking a
 * node at random by weight spread towards the least loaded nodes:
 *   weight = max(1, round(1000 / (1 + sessions / 1000 + load)))
 * An empty list is still 200 (devices retry other bootstrap servers later).
 * The application parameter is accepted for devices that send it; tokens
 * are checked by operations nodes at registration.
 * Pure over a registry snapshot: any thread.
 */
#ifndef KAA_BOOTSTRAP_H
#define KAA_BOOTSTRAP_H

#include "coord/node_record.h"

#include <stddef.h>

/* The weight of one node as documented above. */
int kaa__bootstrap_weight(const kaa__node_record *r);
/* The response body for nodes[0..n): malloc'd JSON in *out. KAA_OK (out of
 * memory aborts through the daemon hook). */
int kaa__bootstrap_render(const kaa__node_record *nodes, size_t n, char **out, size_t *len);

#endif
