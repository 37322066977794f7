/*
 * validate.h - semantic checks of REST payloads before they reach the
 * metadata store, one validator per object kind (the REST resource table
 * names each kind's validator): Avro schemas parse, data documents match
 * their application's Avro schema, filters compile, log appender settings
 * and owner verifier settings are well-formed, event families and maps are
 * consistent. The shape of a body (known fields, types, required fields)
 * was already checked by rest_body.h.
 *
 * Every validator returns 0 when o may be written, or answers resp itself
 * and returns -1: 400 with the path of the offending member inside the
 * request body ($.settings.secret, $.body.rate, ...), or the status of a
 * store error (kaa__reply_store_error) when a lookup failed, or 500 when a
 * stored schema does not parse.
 * o is borrowed; on an update its fields not sent are NULL/0 except those
 * the caller copied from the stored object (a configuration's schema
 * version, an event map's family). app_id is the application of the path
 * (0 for tenant-level kinds). store is borrowed and only read.
 * Any thread (the store is thread-safe).
 */
#ifndef KAA_CONTROL_VALIDATE_H
#define KAA_CONTROL_VALIDATE_H

#include "http/http_server.h"
#include "store/meta_store.h"

#include <stdint.h>

typedef int (*kaa__validator)(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			      kaa__http_response *resp);

/* role, when sent, is one of the four role names. */
int kaa__validate_user(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
		       kaa__http_response *resp);
/* kind is profile-client, profile-server, configuration, notification or
 * log; the schema is a valid Avro schema. */
int kaa__validate_schema(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			 kaa__http_response *resp);
/* The filter, when sent, compiles (docs/filters.md). */
int kaa__validate_group(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			kaa__http_response *resp);
/* The body, when sent, matches the configuration schema version o names. */
int kaa__validate_configuration(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
				kaa__http_response *resp);
/* The body matches the latest notification schema (any JSON without one). */
int kaa__validate_notification(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			       kaa__http_response *resp);
/* The settings, when sent, are accepted by the log appender they name. */
int kaa__validate_log_appender(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			       kaa__http_response *resp);
/* classes: [{"fqn": "a.b.C", "schema": <Avro record>}, ...], 1..100, fqns
 * unique. */
int kaa__validate_event_family(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			       kaa__http_response *resp);
/* The family belongs to the application's tenant; classes, when sent, map
 * fqns of that family to "source", "sink" or "both" (non-empty). */
int kaa__validate_event_map(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			    kaa__http_response *resp);
/* settings, when sent: {"type": "trustful"} or {"type": "jwt-hs256",
 * "secret": 32..4096 bytes, optional "issuer", "audience" (non-empty
 * strings up to 1024 bytes) and "leewaySeconds" 0..600}. */
int kaa__validate_user_verifier(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
				kaa__http_response *resp);
/* endpointKeyHash: base64url without padding of 32 bytes (43 characters),
 * the SHA-256 of the key the device sends in Hello.public_key; publicKey,
 * when sent: standard base64 (RFC 4648 section 4, padded) of those key
 * bytes (1..1024, DER SubjectPublicKeyInfo of an EC P-256 key for devices
 * that prove possession), and it must hash to endpointKeyHash. On an update
 * o->endpoint_key_hash is the stored one. */
int kaa__validate_credential(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			     kaa__http_response *resp);

/* The server profile doc (JSON text) against the application's latest
 * profile-server schema (any JSON when it has none); errors answered with
 * path $.serverProfile... like the others. */
int kaa__validate_server_profile(kaa__meta_store *store, int64_t app_id, const char *doc,
				 kaa__http_response *resp);

/* The highest version of the application's schemas of one kind into
 * *version (0: none). Errors of kaa__meta_list. */
int kaa__latest_schema_version(kaa__meta_store *store, int64_t app_id, const char *kind,
			       int64_t *version);

#endif
