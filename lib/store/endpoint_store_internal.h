/*
 * endpoint_store_internal.h - the backend interface behind endpoint_store.h.
 *
 * endpoint_store.c validates every argument (sizes, UTF-8, JSON, key and
 * batch id alphabets) before a backend sees it, so backends trust their
 * inputs. Each backend implements the operations with the semantics of the
 * public functions of the same name; impl is the backend's own handle,
 * shared by all threads (backends do their own locking or pooling).
 */
#ifndef KAA_ENDPOINT_STORE_INTERNAL_H
#define KAA_ENDPOINT_STORE_INTERNAL_H

#include "store/endpoint_store.h"

typedef struct kaa__ep_backend {
	const char *name;
	/* target: the URL without "sqlite:" for SQLite, the whole URL for MongoDB */
	int (*open)(const char *target, void **impl);
	void (*close)(void *impl);
	int (*get)(void *impl, int64_t app_id, const char *key_hash, kaa__endpoint *out);
	/* now_ms: updated_ms, and created_ms of a new record */
	int (*put)(void *impl, const kaa__endpoint *ep, int64_t now_ms);
	int (*touch)(void *impl, int64_t app_id, const char *key_hash, const char *node_id,
		     int64_t last_seen_ms);
	int (*del)(void *impl, int64_t app_id, const char *key_hash);
	int (*list)(void *impl, int64_t app_id, const char *after_key, int limit, kaa__ep_cb cb,
		    void *ud, char **last_key);
	/* put never writes owner_id; expect_owner "" means "no owner stored" */
	int (*set_owner)(void *impl, int64_t app_id, const char *key_hash, const char *owner_id,
			 const char *expect_owner);
	int (*find_by_token)(void *impl, int64_t app_id, const char *access_token,
			     kaa__endpoint *out);
	int (*list_by_owner)(void *impl, int64_t app_id, const char *owner_id, int limit,
			     kaa__ep_cb cb, void *ud);
	int (*logs_append)(void *impl, int64_t app_id, const char *key_hash, const char *batch_id,
			   int64_t schema_version, const char *const *records, size_t n,
			   int64_t received_ms, bool *duplicate);
	int (*logs_count)(void *impl, int64_t app_id, const char *key_hash, int64_t *count);
	int (*logs_list)(void *impl, int64_t app_id, const char *key_hash, int limit,
			 kaa__ep_log_cb cb, void *ud);
	/* expect_version -1: any; *new_version always given */
	int (*set_server_profile)(void *impl, int64_t app_id, const char *key_hash,
				  const char *json, int64_t expect_version, int64_t now_ms,
				  int64_t *new_version);
	/* after: never NULL here (the start is a position before every record) */
	int (*logs_query)(void *impl, int64_t app_id, const char *key_hash, int64_t from_ms,
			  int64_t to_ms, const kaa__ep_log_pos *after, int limit,
			  kaa__ep_log_query_cb cb, void *ud);
	/* out zeroed by the caller; nodes sorted by endpoints, largest first */
	int (*stats)(void *impl, int64_t app_id, int64_t since_ms, kaa__ep_stats *out);
} kaa__ep_backend;

extern const kaa__ep_backend kaa__ep_backend_sqlite;
extern const kaa__ep_backend kaa__ep_backend_mongo;

/* Shared by the backends and log_appender.c: the checks endpoint_store.c
 * applies (KAA_OK or KAA_ERR_INVAL / KAA_ERR_TOO_BIG). */
int kaa__ep_check_key(const char *key_hash);
int kaa__ep_check_batch_id(const char *batch_id);
int kaa__ep_check_records(const char *const *records, size_t n);
/* A malloc'd copy of s, or NULL for NULL. */
char *kaa__ep_strdup(const char *s);

#endif
