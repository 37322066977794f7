/*
 * coord_internal.h - the backend vtable behind coord.h. Only coord.c,
 * etcd_client.c, etcd_watch.c and coord_local.c include this.
 */
#ifndef KAA_COORD_INTERNAL_H
#define KAA_COORD_INTERNAL_H

#include "coord/coord.h"
#include "base/backoff.h"
#include "base/clock.h"

#include <stdatomic.h>

typedef struct kaa__coord_ops {
	const char *kind;
	int (*range)(kaa__coord *c, const char *key, bool prefix, kaa__kv_list *out);
	int (*put)(kaa__coord *c, const char *key, const void *val, size_t len, int64_t lease,
		   int64_t *revision);
	int (*del)(kaa__coord *c, const char *key, bool prefix, int64_t *deleted);
	int (*cas)(kaa__coord *c, const char *key, int64_t expect_mod_rev, const void *val,
		   size_t len, int64_t lease, bool *succeeded, kaa__kv *current);
	int (*compact)(kaa__coord *c, int64_t revision);
	int (*lease_grant)(kaa__coord *c, int64_t ttl_s, int64_t *id);
	int (*lease_revoke)(kaa__coord *c, int64_t id);
	int (*lease_keepalive)(kaa__coord *c, int64_t id, int64_t *ttl_left);
	int (*watch)(kaa__coord *c, const char *key, int flags, int64_t start_rev,
		     const kaa__watch_cb *cb, kaa__watch **out);
	void (*watch_free)(kaa__watch *w);
	int64_t (*watch_revision)(kaa__watch *w);
	void (*free)(kaa__coord *c);
} kaa__coord_ops;

struct kaa__coord {
	const kaa__coord_ops *ops;
	atomic_uint_fast64_t calls;
	atomic_uint_fast64_t call_errors;
	atomic_uint_fast64_t watch_reconnects;
	atomic_uint_fast64_t watch_resets;
};

/* Every backend's watch struct embeds this as its first member. */
struct kaa__watch {
	kaa__coord *coord;
};

/* The key just past every key with the given prefix (etcd's range_end
 * convention). Returns a malloc'd buffer of *len bytes; for a prefix of
 * only 0xff bytes returns "\0" (whole keyspace). */
char *kaa__prefix_end(const char *prefix, size_t *len);

#endif
