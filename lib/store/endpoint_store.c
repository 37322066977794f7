/*
 * endpoint_store.c - the endpoint store's front: URL dispatch and every
 * argument check, written once for both backends (endpoint_store_sqlite.c,
 * endpoint_store_mongo.c), which then trust their inputs.
 *
 * Input rules beyond endpoint_store.h (docs/endpoint-store.md):
 *   app_id >= 1;
 *   key_hash: 1..KAA_EP_KEY_HASH_MAX bytes of the base64/base64url alphabet
 *     [A-Za-z0-9_+/=.-] (no ':', which the MongoDB ids use as separator);
 *   batch_id: 1..KAA_EP_BATCH_ID_MAX bytes of UTF-8 without control
 *     characters;
 *   text fields: valid UTF-8, at most KAA_EP_TEXT_MAX bytes;
 *   owner ids: 1..KAA_EP_OWNER_MAX bytes of valid UTF-8;
 *   JSON fields and log records: one JSON value (RFC 8259, nesting at most
 *     KAA_EP_JSON_DEPTH), at most KAA_EP_JSON_MAX / KAA_EP_LOG_RECORD_MAX bytes.
 */
#include "store/endpoint_store.h"

#include "base/clock.h"
#include "proto/endpoint_codec.h"
#include "store/endpoint_store_internal.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

#define MOD "ep_store"
#define KAA_EP_JSON_DEPTH 64
#define KAA_EP_LIST_MAX 1000
#define KAA_EP_LOG_LIST_MAX 100000
#define KAA_EP_BATCH_MAX 1000

struct kaa__ep_store {
	const kaa__ep_backend *be;
	void *impl;
};

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t len;
		unsigned min;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, min = 0x80, cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, min = 0x800, cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, min = 0x10000, cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static int check_text(const char *s, const char *what)
{
	if (!s)
		return KAA_OK;
	size_t n = strlen(s);
	if (n > KAA_EP_TEXT_MAX) {
		KAA_DEBUG(MOD, "field_too_big field=%s bytes=%zu", what, n);
		return KAA_ERR_TOO_BIG;
	}
	if (!utf8_valid((const unsigned char *)s, n)) {
		KAA_DEBUG(MOD, "field_bad_utf8 field=%s", what);
		return KAA_ERR_INVAL;
	}
	return KAA_OK;
}

/* A required owner id (NULL is the caller's business). */
static int check_owner(const char *s, const char *what)
{
	size_t n = strlen(s);
	if (n == 0)
		return KAA_ERR_INVAL;
	if (n > KAA_EP_OWNER_MAX) {
		KAA_DEBUG(MOD, "field_too_big field=%s bytes=%zu", what, n);
		return KAA_ERR_TOO_BIG;
	}
	if (!utf8_valid((const unsigned char *)s, n)) {
		KAA_DEBUG(MOD, "field_bad_utf8 field=%s", what);
		return KAA_ERR_INVAL;
	}
	return KAA_OK;
}

static int check_json(const char *s, size_t max, const char *what)
{
	if (!s)
		return KAA_OK;
	size_t n = strlen(s);
	if (n > max) {
		KAA_DEBUG(MOD, "field_too_big field=%s bytes=%zu", what, n);
		return KAA_ERR_TOO_BIG;
	}
	size_t off = 0;
	const char *why = NULL;
	if (kaa__json_check(s, n, KAA_EP_JSON_DEPTH, &off, &why) != KAA_OK) {
		KAA_DEBUG(MOD, "field_bad_json field=%s at=%zu why=\"%s\"", what, off,
			  why ? why : "syntax");
		return KAA_ERR_INVAL;
	}
	return KAA_OK;
}

int kaa__ep_check_key(const char *key_hash)
{
	if (!key_hash)
		return KAA_ERR_INVAL;
	size_t n = strlen(key_hash);
	if (n == 0 || n > KAA_EP_KEY_HASH_MAX)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)key_hash[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			  (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '+' || c == '/' ||
			  c == '=' || c == '.';
		if (!ok)
			return KAA_ERR_INVAL;
	}
	return KAA_OK;
}

int kaa__ep_check_batch_id(const char *batch_id)
{
	if (!batch_id)
		return KAA_ERR_INVAL;
	size_t n = strlen(batch_id);
	if (n == 0)
		return KAA_ERR_INVAL;
	if (n > KAA_EP_BATCH_ID_MAX)
		return KAA_ERR_TOO_BIG;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)batch_id[i];
		if (c < 0x20 || c == 0x7f)
			return KAA_ERR_INVAL;
	}
	return utf8_valid((const unsigned char *)batch_id, n) ? KAA_OK : KAA_ERR_INVAL;
}

int kaa__ep_check_records(const char *const *records, size_t n)
{
	if (!records || n == 0)
		return KAA_ERR_INVAL;
	if (n > KAA_EP_BATCH_MAX)
		return KAA_ERR_TOO_BIG;
	for (size_t i = 0; i < n; i++) {
		if (!records[i])
			return KAA_ERR_INVAL;
		int err = check_json(records[i], KAA_EP_LOG_RECORD_MAX, "record");
		if (err != KAA_OK)
			return err;
	}
	return KAA_OK;
}

char *kaa__ep_strdup(const char *s)
{
	return s ? kaa__xstrdup(s) : NULL;
}

static int check_endpoint(const kaa__endpoint *ep)
{
	int err;
	if (!ep || ep->app_id < 1)
		return KAA_ERR_INVAL;
	if ((err = kaa__ep_check_key(ep->key_hash)) != KAA_OK ||
	    (err = check_text(ep->public_key, "public_key")) != KAA_OK ||
	    (err = check_text(ep->access_token, "access_token")) != KAA_OK ||
	    (err = check_text(ep->config_hash, "config_hash")) != KAA_OK ||
	    (err = check_text(ep->node_id, "node_id")) != KAA_OK ||
	    (err = check_json(ep->client_profile, KAA_EP_JSON_MAX, "client_profile")) != KAA_OK ||
	    (err = check_json(ep->groups, KAA_EP_JSON_MAX, "groups")) != KAA_OK ||
	    (err = check_json(ep->config_doc, KAA_EP_JSON_MAX, "config_doc")) != KAA_OK ||
	    (err = check_json(ep->topics, KAA_EP_JSON_MAX, "topics")) != KAA_OK ||
	    (err = check_json(ep->notif_state, KAA_EP_JSON_MAX, "notif_state")) != KAA_OK)
		return err;
	return KAA_OK;
}

void kaa__endpoint_clear(kaa__endpoint *ep)
{
	if (!ep)
		return;
	free(ep->key_hash);
	free(ep->public_key);
	free(ep->access_token);
	free(ep->client_profile);
	free(ep->server_profile);
	free(ep->groups);
	free(ep->config_hash);
	free(ep->config_doc);
	free(ep->topics);
	free(ep->notif_state);
	free(ep->node_id);
	free(ep->owner_id);
	memset(ep, 0, sizeof(*ep));
}

int kaa__ep_store_new(const char *url, kaa__ep_store **out)
{
	const kaa__ep_backend *be = NULL;
	const char *target = NULL;
	kaa__ep_store *s = NULL;
	int err = KAA_OK;

	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (!url) {
		err = KAA_ERR_INVAL;
		goto out;
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		be = &kaa__ep_backend_sqlite;
		target = url + 7;
	} else if (strncmp(url, "mongodb://", 10) == 0 || strncmp(url, "mongodb+srv://", 14) == 0) {
		be = &kaa__ep_backend_mongo;
		target = url;
	} else {
		KAA_ERROR(MOD, "unknown_scheme url=\"%.32s\"", url);
		err = KAA_ERR_INVAL;
		goto out;
	}
	if (!*target) {
		err = KAA_ERR_INVAL;
		goto out;
	}
	s = kaa__xcalloc(1, sizeof(*s));
	s->be = be;
	err = be->open(target, &s->impl);
	if (err != KAA_OK)
		goto out;
	*out = s;
	s = NULL;
out:
	free(s);
	return err;
}

void kaa__ep_store_free(kaa__ep_store *s)
{
	if (!s)
		return;
	s->be->close(s->impl);
	free(s);
}

const char *kaa__ep_store_backend(const kaa__ep_store *s)
{
	return s ? s->be->name : "none";
}

int kaa__ep_get(kaa__ep_store *s, int64_t app_id, const char *key_hash, kaa__endpoint *out)
{
	if (!out)
		return KAA_ERR_INVAL;
	kaa__endpoint_clear(out);
	if (!s || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK)
		return KAA_ERR_INVAL;
	int err = s->be->get(s->impl, app_id, key_hash, out);
	if (err != KAA_OK)
		kaa__endpoint_clear(out);
	return err;
}

int kaa__ep_put(kaa__ep_store *s, const kaa__endpoint *ep)
{
	if (!s)
		return KAA_ERR_INVAL;
	int err = check_endpoint(ep);
	if (err != KAA_OK)
		return err;
	return s->be->put(s->impl, ep, kaa__wall_ms());
}

int kaa__ep_touch(kaa__ep_store *s, int64_t app_id, const char *key_hash, const char *node_id,
		  int64_t last_seen_ms)
{
	if (!s || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK)
		return KAA_ERR_INVAL;
	int err = check_text(node_id, "node_id");
	if (err != KAA_OK)
		return err;
	return s->be->touch(s->impl, app_id, key_hash, node_id, last_seen_ms);
}

int kaa__ep_delete(kaa__ep_store *s, int64_t app_id, const char *key_hash)
{
	if (!s || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK)
		return KAA_ERR_INVAL;
	return s->be->del(s->impl, app_id, key_hash);
}

int kaa__ep_list(kaa__ep_store *s, int64_t app_id, const char *after_key, int limit, kaa__ep_cb cb,
		 void *ud, char **last_key)
{
	if (last_key)
		*last_key = NULL;
	if (!s || app_id < 1 || !cb || limit < 1 || limit > KAA_EP_LIST_MAX)
		return KAA_ERR_INVAL;
	if (after_key && kaa__ep_check_key(after_key) != KAA_OK)
		return KAA_ERR_INVAL;
	return s->be->list(s->impl, app_id, after_key, limit, cb, ud, last_key);
}

int kaa__ep_set_owner(kaa__ep_store *s, int64_t app_id, const char *key_hash, const char *owner_id,
		      const char *expect_owner)
{
	int err;
	if (!s || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK)
		return KAA_ERR_INVAL;
	if (owner_id && (err = check_owner(owner_id, "owner_id")) != KAA_OK)
		return err;
	if (expect_owner && *expect_owner &&
	    (err = check_owner(expect_owner, "expect_owner")) != KAA_OK)
		return err;
	return s->be->set_owner(s->impl, app_id, key_hash, owner_id, expect_owner);
}

int kaa__ep_find_by_access_token(kaa__ep_store *s, int64_t app_id, const char *access_token,
				 kaa__endpoint *out)
{
	if (!out)
		return KAA_ERR_INVAL;
	kaa__endpoint_clear(out);
	if (!s || app_id < 1 || !access_token || !*access_token)
		return KAA_ERR_INVAL;
	int err = check_text(access_token, "access_token");
	if (err != KAA_OK)
		return err;
	err = s->be->find_by_token(s->impl, app_id, access_token, out);
	if (err != KAA_OK)
		kaa__endpoint_clear(out);
	return err;
}

int kaa__ep_list_by_owner(kaa__ep_store *s, int64_t app_id, const char *owner_id, int limit,
			  kaa__ep_cb cb, void *ud)
{
	if (!s || app_id < 1 || !cb || !owner_id || limit < 1 || limit > KAA_EP_LIST_MAX)
		return KAA_ERR_INVAL;
	int err = check_owner(owner_id, "owner_id");
	if (err != KAA_OK)
		return err;
	return s->be->list_by_owner(s->impl, app_id, owner_id, limit, cb, ud);
}

int kaa__ep_logs_append(kaa__ep_store *s, int64_t app_id, const char *key_hash,
			const char *batch_id, int64_t schema_version, const char *const *records,
			size_t n, int64_t received_ms, bool *duplicate)
{
	int err;
	if (duplicate)
		*duplicate = false;
	if (!s || !duplicate || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK)
		return KAA_ERR_INVAL;
	if ((err = kaa__ep_check_batch_id(batch_id)) != KAA_OK ||
	    (err = kaa__ep_check_records(records, n)) != KAA_OK)
		return err;
	return s->be->logs_append(s->impl, app_id, key_hash, batch_id, schema_version, records, n,
				  received_ms, duplicate);
}

int kaa__ep_logs_count(kaa__ep_store *s, int64_t app_id, const char *key_hash, int64_t *count)
{
	if (count)
		*count = 0;
	if (!s || !count || app_id < 1 || (key_hash && kaa__ep_check_key(key_hash) != KAA_OK))
		return KAA_ERR_INVAL;
	return s->be->logs_count(s->impl, app_id, key_hash, count);
}

int kaa__ep_logs_list(kaa__ep_store *s, int64_t app_id, const char *key_hash, int limit,
		      kaa__ep_log_cb cb, void *ud)
{
	if (!s || !cb || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK || limit < 1 ||
	    limit > KAA_EP_LOG_LIST_MAX)
		return KAA_ERR_INVAL;
	return s->be->logs_list(s->impl, app_id, key_hash, limit, cb, ud);
}

int kaa__ep_set_server_profile(kaa__ep_store *s, int64_t app_id, const char *key_hash,
			       const char *json, int64_t expect_version, int64_t *new_version)
{
	int64_t v = 0;
	if (new_version)
		*new_version = 0;
	if (!s || app_id < 1 || kaa__ep_check_key(key_hash) != KAA_OK)
		return KAA_ERR_INVAL;
	int err = check_json(json, KAA_EP_JSON_MAX, "server_profile");
	if (err != KAA_OK)
		return err;
	err = s->be->set_server_profile(s->impl, app_id, key_hash, json,
					expect_version < 0 ? -1 : expect_version, kaa__wall_ms(),
					&v);
	if (err == KAA_OK && new_version)
		*new_version = v;
	return err;
}

int kaa__ep_logs_query(kaa__ep_store *s, int64_t app_id, const char *key_hash, int64_t from_ms,
		       int64_t to_ms, const kaa__ep_log_pos *after, int limit,
		       kaa__ep_log_query_cb cb, void *ud)
{
	/* before every record: keys and batch ids are never empty */
	static const kaa__ep_log_pos start = {INT64_MIN, "", "", -1};
	if (!s || !cb || app_id < 1 || limit < 1 || limit > KAA_EP_LOG_QUERY_MAX ||
	    (key_hash && kaa__ep_check_key(key_hash) != KAA_OK))
		return KAA_ERR_INVAL;
	if (after && (kaa__ep_check_key(after->key_hash) != KAA_OK ||
		      kaa__ep_check_batch_id(after->batch_id) != KAA_OK || after->index < 0))
		return KAA_ERR_INVAL;
	if (from_ms >= to_ms)
		return KAA_OK;
	return s->be->logs_query(s->impl, app_id, key_hash, from_ms, to_ms, after ? after : &start,
				 limit, cb, ud);
}

void kaa__ep_stats_clear(kaa__ep_stats *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->n_nodes; i++)
		free(st->nodes[i].node_id);
	free(st->nodes);
	memset(st, 0, sizeof(*st));
}

int kaa__ep_stats_get(kaa__ep_store *s, int64_t app_id, int64_t since_ms, kaa__ep_stats *out)
{
	if (!out)
		return KAA_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (!s || app_id < 1)
		return KAA_ERR_INVAL;
	int err = s->be->stats(s->impl, app_id, since_ms, out);
	if (err != KAA_OK)
		kaa__ep_stats_clear(out);
	return err;
}
