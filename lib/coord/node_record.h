/*
 * node_record.h - the JSON value of /kaa/<cluster>/nodes/<node-id>:
 *   {"id":"a","services":["control","operations"],"host":"10.0.0.1",
 *    "ports":{"control":8080,"operations":9080},"sessions":0,"load":0.25,
 *    "draining":false,"version":"0.1.0",
 *    "tls":true,"advertise":["wss://ops-0.devices.example.com:443/"]}
 * "tls" (the operations listener speaks wss) and "advertise" (the URLs
 * devices are given for this node's operations service, preferred first,
 * from kaa-node --advertise; proto/device_url.h checks them where they are
 * used) are written only when set, so older readers see the same record.
 * Decoding is strict about the types of known fields, requires "id", and
 * ignores unknown fields (so newer nodes can add some). Pure functions,
 * safe from any thread.
 */
#ifndef KAA_NODE_RECORD_H
#define KAA_NODE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_NODE_RECORD_MAX_BYTES 65536
#define KAA_NODE_MAX_SERVICES 8
#define KAA_NODE_MAX_PORTS 8
#define KAA_NODE_MAX_ADVERTISE 4
#define KAA_NODE_ADVERTISE_MAX_BYTES 1024 /* one URL */

typedef struct kaa__node_port {
	char *name;
	int port;
} kaa__node_port;

typedef struct kaa__node_record {
	char *id;
	char *services[KAA_NODE_MAX_SERVICES];
	size_t n_services;
	char *host;
	kaa__node_port ports[KAA_NODE_MAX_PORTS];
	size_t n_ports;
	int64_t sessions;
	double load;
	bool draining;
	char *version;
	bool tls;
	char *advertise[KAA_NODE_MAX_ADVERTISE];
	size_t n_advertise;
} kaa__node_record;

/* *json is malloc'd (caller frees), NUL-terminated. KAA_ERR_INVAL when id
 * is missing. */
int kaa__node_record_encode(const kaa__node_record *r, char **json, size_t *len);
/* Fills out (which must be zeroed or cleared) from JSON. KAA_ERR_INVAL on
 * malformed JSON, wrong types, a missing id, too many entries or an
 * advertised URL over KAA_NODE_ADVERTISE_MAX_BYTES;
 * KAA_ERR_TOO_BIG over KAA_NODE_RECORD_MAX_BYTES. out is cleared on error. */
int kaa__node_record_decode(const char *json, size_t len, kaa__node_record *out);
int kaa__node_record_copy(kaa__node_record *dst, const kaa__node_record *src);
/* Frees the strings and zeroes r; accepts NULL. */
void kaa__node_record_clear(kaa__node_record *r);
/* Port of a named service, or 0. */
int kaa__node_record_port(const kaa__node_record *r, const char *service);
bool kaa__node_record_has_service(const kaa__node_record *r, const char *service);

#endif
