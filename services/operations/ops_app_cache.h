/*
 * ops_app_cache.h - the per-application cache (layer L1 of
 * services/operations; may include ops_state.h, ops_io.h, ops_server.h and
 * lib/ only): an application's schemas, groups with compiled filters,
 * configurations, topics, stored notifications, log appenders, event
 * classes and owner verifiers, loaded from the metadata store once per
 * revision and shared read-only by its sessions.
 *
 * Entries are reference counted: every function returning an ops_app gives
 * the caller a reference (release with kaa__opl_app_put); the cache list
 * ops->apps holds one. Threads: any thread; the list is guarded by ops->mu,
 * taken inside these functions except where noted.
 */
#ifndef KAA_OPS_APP_CACHE_H
#define KAA_OPS_APP_CACHE_H

#include "operations/ops_state.h"

#include <stdbool.h>
#include <stdint.h>

/* The cached application (referenced; kaa__opl_app_put releases), loading
 * it when absent. By token: KAA_ERR_NOTFOUND for an unknown token; store
 * errors otherwise. *out is NULL on error. */
int kaa__opl_app_by_token(kaa__operations *ops, const char *token, ops_app **out);
int kaa__opl_app_by_id(kaa__operations *ops, int64_t app_id, ops_app **out);
/* Releases a reference; the last frees the entry. Accepts NULL. */
void kaa__opl_app_put(ops_app *a);
/* When the store holds a newer revision of the session's application than
 * its cached copy (the change's watch event has not been handled yet),
 * reloads it into the cache and the session; true if it did. Callers use it
 * before refusing a request for something the cache lacks (a verifier or an
 * event class created a moment ago). Caller holds s->mu. */
bool kaa__opl_app_refresh_stale(kaa__operations *ops, ops_session *s);

/* Builds the cache entry of an application from the store (*out
 * referenced once, not installed; NULL on error). Logs failures; returns
 * the metadata store's error (a stored schema that does not parse is no
 * error: that part is then free-form). */
int kaa__opl_app_load(kaa__operations *ops, const kaa__meta_obj *app, ops_app **out);
/* The cached entry (not referenced) by token, or by id when token is NULL;
 * NULL when absent. Caller holds ops->mu. */
ops_app *kaa__opl_cache_find(kaa__operations *ops, int64_t id, const char *token);
/* Installs a (taking its reference), replacing an entry of the same id. */
void kaa__opl_cache_install(kaa__operations *ops, ops_app *a);
/* Drops the entry of id, if any. */
void kaa__opl_cache_remove(kaa__operations *ops, int64_t id);

#endif
