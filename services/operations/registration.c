/*
 * registration.c - Hello (application token, credentials, the endpoint
 * record), profiles and group membership, SessionResume.
 */
#include "operations/registration.h"

#include "operations/delivery.h"
#include "operations/ops_app_cache.h"
#include "operations/ops_jobs.h"
#include "operations/ops_send.h"
#include "operations/ops_sessions.h"
#include "operations/owners.h"

#include "base/alloc.h"
#include "base/base64.h"
#include "proto/endpoint_codec.h"
#include "proto/hello_proof.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MOD "operations"

typedef Kaa__Endpoint__V1__Frame frame_t;
#define EC(x) KAA__ENDPOINT__V1__ERROR_CODE__ERROR_CODE_##x

static char *dup_or_die(const char *s)
{
	char *p = strdup(s);
	if (!p)
		kaa__oom();
	return p;
}

/* base64url without padding of SHA-256(key): 43 characters. */
static void key_hash(const uint8_t *key, size_t len, char out[48])
{
	uint8_t d[SHA256_DIGEST_LENGTH];
	SHA256(key, len, d);
	kaa__b64_encode(d, sizeof(d), out, 48, KAA__B64_URL);
}

/* Standard base64 of the key, as the endpoint record keeps it. */
static char *b64(const uint8_t *data, size_t len)
{
	size_t cap = KAA__B64_ENCODED_LEN(len) + 1;
	char *out = kaa__xmalloc(cap);
	kaa__b64_encode(data, len, out, cap, 0);
	return out;
}

/* Validates a client profile (a JSON object matching the application's
 * latest profile-client schema, completed with its defaults). On success
 * *doc is the canonical document and *tree its parse; on failure path_err
 * holds "<json path>: <reason>". */
static int profile_check(const ops_app *a, const char *json, char **doc, yajl_val *tree,
			 char *path_err, size_t errlen)
{
	yajl_val v = NULL;
	char *canon = NULL;
	size_t len = 0;
	int rc;

	*doc = NULL;
	*tree = NULL;
	if (a->profile_schema)
		rc = kaa__avro_complete(a->profile_schema, json, strlen(json), &canon, &len,
					path_err, errlen);
	else
		rc = kaa__json_canonicalize(json, strlen(json), &canon, &len, path_err, errlen);
	if (rc != KAA_OK)
		return rc;
	rc = kaa__json_parse(canon, len, KAA_EP_JSON_MAX, KAA_JSON_MAX_DEPTH, &v, path_err, errlen);
	if (rc != KAA_OK)
		goto fail;
	if (!YAJL_IS_OBJECT(v)) {
		snprintf(path_err, errlen, "$: a profile is a JSON object");
		rc = KAA_ERR_INVAL;
		goto fail;
	}
	*doc = canon;
	*tree = v;
	return KAA_OK;
fail:
	yajl_tree_free(v);
	free(canon);
	return rc;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Parses a JSON array of integers or integer strings into a sorted set. */
static void parse_id_set(const char *json, int64_t **ids, size_t *n)
{
	yajl_val v = NULL;
	free(*ids);
	*ids = NULL;
	*n = 0;
	if (!json || kaa__json_parse(json, strlen(json), KAA_EP_JSON_MAX, 4, &v, NULL, 0) != KAA_OK)
		return;
	if (YAJL_IS_ARRAY(v) && v->u.array.len) {
		*ids = calloc(v->u.array.len, sizeof(int64_t));
		if (!*ids)
			kaa__oom();
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val e = v->u.array.values[i];
			int64_t id = 0;
			if (YAJL_IS_STRING(e))
				id = strtoll(e->u.string, NULL, 10);
			else if (!kaa__json_int64(e, &id))
				continue;
			if (id > 0)
				(*ids)[(*n)++] = id;
		}
		qsort(*ids, *n, sizeof(int64_t), cmp_i64);
	}
	yajl_tree_free(v);
}

static char *render_ids(const int64_t *ids, size_t n, bool strings)
{
	size_t cap = 3 + n * 24, o = 0;
	char *s = malloc(cap);
	if (!s)
		kaa__oom();
	s[o++] = '[';
	for (size_t i = 0; i < n; i++)
		o += (size_t)snprintf(s + o, cap - o, strings ? "%s\"%" PRId64 "\"" : "%s%" PRId64,
				      i ? "," : "", ids[i]);
	s[o++] = ']';
	s[o] = '\0';
	return s;
}

/* The profiles are parsed for each evaluation rather than kept as trees
 * per session: memory per idle session matters more than this CPU. */
bool kaa__opl_compute_groups(ops_session *s)
{
	const ops_app *a = s->app;
	yajl_val cp = NULL, sp = NULL;
	if (s->ep.client_profile)
		kaa__json_parse(s->ep.client_profile, strlen(s->ep.client_profile), KAA_EP_JSON_MAX,
				KAA_JSON_MAX_DEPTH, &cp, NULL, 0);
	if (s->ep.server_profile)
		kaa__json_parse(s->ep.server_profile, strlen(s->ep.server_profile), KAA_EP_JSON_MAX,
				KAA_JSON_MAX_DEPTH, &sp, NULL, 0);
	kaa__filter_ctx ctx = {.cp = cp, .sp = sp, .ekh = s->ep.key_hash};
	int64_t *ids = calloc(a->n_groups + 1, sizeof(int64_t));
	size_t n = 0;
	if (!ids)
		kaa__oom();
	for (size_t i = 0; i < a->n_groups; i++)
		if (!a->groups[i].filter || kaa__filter_eval(a->groups[i].filter, &ctx))
			ids[n++] = a->groups[i].id;
	yajl_tree_free(cp);
	yajl_tree_free(sp);
	qsort(ids, n, sizeof(int64_t), cmp_i64);
	bool same = n == s->n_gids && (n == 0 || memcmp(ids, s->gids, n * sizeof(int64_t)) == 0) &&
		    s->ep.groups;
	if (same) {
		free(ids);
		return false;
	}
	free(s->gids);
	s->gids = ids;
	s->n_gids = n;
	free(s->ep.groups);
	s->ep.groups = render_ids(ids, n, false);
	return true;
}

static void hello_ack(kaa__operations *ops, ops_session *s, uint64_t req, bool registered)
{
	const kaa__frame_limits *l = &kaa__frame_limits_default;
	frame_t f = KAA__ENDPOINT__V1__FRAME__INIT;
	Kaa__Endpoint__V1__HelloAck a = KAA__ENDPOINT__V1__HELLO_ACK__INIT;
	Kaa__Endpoint__V1__Limits lim = KAA__ENDPOINT__V1__LIMITS__INIT;
	char sess[128];

	snprintf(sess, sizeof(sess), "%s.%" PRIu64, ops->node_id, s->sid);
	lim.max_frame_bytes = (uint32_t)l->max_frame_bytes;
	lim.max_log_records_per_batch = (uint32_t)l->max_log_records;
	lim.max_profile_bytes = (uint32_t)l->max_profile_bytes;
	lim.max_log_record_bytes = (uint32_t)l->max_log_record_bytes;
	lim.max_body_bytes = (uint32_t)l->max_body_bytes;
	lim.max_inflight_log_batches = OPS_MAX_INFLIGHT_LOG_BATCHES;
	lim.idle_timeout_ms = (uint32_t)ops->idle_timeout_ms;
	a.endpoint_key_hash = s->ep.key_hash;
	a.session_id = sess;
	a.server_time_ms = (uint64_t)kaa__wall_ms();
	a.limits = &lim;
	a.registered = registered;
	f.request_id = req;
	f.body_case = KAA__ENDPOINT__V1__FRAME__BODY_HELLO_ACK;
	f.hello_ack = &a;
	kaa__opl_send(ops, s->sid, &f);
}

/* Hello.proof against the nonce this session was challenged with. */
static bool verify_proof(kaa__operations *ops, const ops_session *s,
			 const Kaa__Endpoint__V1__Hello *h)
{
	uint8_t nonce[KAA__PROOF_NONCE_BYTES];
	if (!ops->io.nonce || ops->io.nonce(ops->io.ud, s->sid, nonce) != KAA_OK)
		return false;
	return kaa__proof_verify(h->public_key.data, h->public_key.len, nonce, h->application_token,
				 h->proof.data, h->proof.len) == KAA_OK;
}

void kaa__opl_hello(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__Hello *h = f->hello;
	ops_app *app = NULL;
	kaa__meta_obj cred = {0};
	char kh[48], perr[KAA_JSON_ERR_SIZE] = "";
	bool registered = false, profile_bad = false;
	char *pdoc = NULL;
	yajl_val ptree = NULL;
	int rc;

	if (!h || !h->application_token || !*h->application_token || !h->public_key.len) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "hello.application_token", NULL,
			       "application_token and public_key are required");
		return;
	}
	/* the proof first: a forged or replayed one learns nothing else. With
	 * mTLS the handshake already proved the certificate's key: it must be
	 * the key this Hello registers (a certificate of another device's key
	 * does not make this one), and then needs no Challenge. */
	bool proven = false;
	uint8_t ck[SHA256_DIGEST_LENGTH], hk[SHA256_DIGEST_LENGTH];
	if (ops->io.client_key && ops->io.client_key(ops->io.ud, s->sid, ck) == KAA_OK) {
		SHA256(h->public_key.data, h->public_key.len, hk);
		if (memcmp(ck, hk, sizeof(ck)) != 0) {
			kaa__counter_inc(ops->reg_bad_proof);
			kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_PROOF), true,
				       "hello.public_key", NULL,
				       "the client certificate's public key is not this Hello's "
				       "public_key");
			return;
		}
		proven = true;
	}
	if (h->proof.len && !proven) {
		if (!verify_proof(ops, s, h)) {
			kaa__counter_inc(ops->reg_bad_proof);
			kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_PROOF), true,
				       "hello.proof", NULL,
				       "the proof of possession does not verify for this session's "
				       "challenge, this public_key and this application token");
			return;
		}
		proven = true;
		kaa__counter_inc(ops->reg_proven);
	}
	rc = kaa__opl_app_by_token(ops, h->application_token, &app);
	if (rc == KAA_ERR_NOTFOUND) {
		kaa__counter_inc(ops->reg_unauth);
		kaa__opl_error(ops, s->sid, f->request_id, EC(UNAUTHENTICATED), true,
			       "hello.application_token", NULL, "unknown application token");
		return;
	}
	if (rc != KAA_OK)
		goto internal;
	if (!proven && (app->provisioned || ops->proof_always)) {
		kaa__counter_inc(ops->reg_bad_proof);
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_PROOF), true, "hello.proof",
			       NULL,
			       "this application requires proof of possession of the device key: "
			       "connect with subprotocol kaa.v2 and sign the Challenge "
			       "(docs/protocol.md)");
		goto out;
	}
	key_hash(h->public_key.data, h->public_key.len, kh);
	rc = kaa__meta_find_credential(ops->meta, app->id, kh, &cred);
	if (rc == KAA_OK && cred.status && strcmp(cred.status, "revoked") == 0) {
		kaa__counter_inc(ops->reg_revoked);
		kaa__opl_error(ops, s->sid, f->request_id, EC(REVOKED), true, NULL, NULL,
			       "the endpoint's credentials are revoked");
		goto out;
	}
	if (rc == KAA_ERR_NOTFOUND && app->provisioned) {
		kaa__counter_inc(ops->reg_forbidden);
		kaa__opl_error(ops, s->sid, f->request_id, EC(FORBIDDEN), true, "hello.public_key",
			       NULL, "the application accepts provisioned credentials only");
		goto out;
	}
	if (rc != KAA_OK && rc != KAA_ERR_NOTFOUND)
		goto internal;

	rc = kaa__ep_get(ops->eps, app->id, kh, &s->ep);
	if (rc == KAA_ERR_NOTFOUND) {
		kaa__endpoint_clear(&s->ep);
		registered = true;
		s->ep.app_id = app->id;
		s->ep.key_hash = dup_or_die(kh);
		s->ep.public_key = b64(h->public_key.data, h->public_key.len);
	} else if (rc != KAA_OK) {
		goto internal;
	}
	if (h->endpoint_access_token && *h->endpoint_access_token) {
		free(s->ep.access_token);
		s->ep.access_token = dup_or_die(h->endpoint_access_token);
	}
	free(s->ep.node_id);
	s->ep.node_id = dup_or_die(ops->node_id);
	s->ep.last_seen_ms = kaa__wall_ms();
	kaa__opl_app_put(s->app);
	s->app = app;
	app = NULL;
	if (h->client_profile_json && *h->client_profile_json) {
		if (profile_check(s->app, h->client_profile_json, &pdoc, &ptree, perr,
				  sizeof(perr)) == KAA_OK) {
			free(s->ep.client_profile);
			s->ep.client_profile = pdoc;
			s->ep.client_profile_version = s->app->profile_ver;
			pdoc = NULL;
		} else {
			profile_bad = true;
		}
		yajl_tree_free(ptree);
	}
	kaa__opl_positions_load(s);
	parse_id_set(s->ep.topics, &s->subs, &s->n_subs);
	parse_id_set(s->ep.groups, &s->gids, &s->n_gids);
	kaa__opl_compute_groups(s);
	rc = kaa__opl_save(ops, s);
	if (rc != KAA_OK)
		goto internal;

	s->established = true;
	ops->io.established(ops->io.ud, s->sid);
	kaa__session_id old = kaa__opl_bind_key(ops, s);
	if (old) {
		KAA_INFO(MOD, "session_replaced key=%s old_sid=%" PRIu64 " sid=%" PRIu64,
			 s->ep.key_hash, old, s->sid);
		ops->io.close(ops->io.ud, old, OPS_CLOSE_NORMAL);
	}
	kaa__counter_inc(registered ? ops->reg_registered : ops->reg_existing);
	KAA_DEBUG(MOD, "hello app=%" PRId64 " key=%s sid=%" PRIu64 " registered=%d", s->ep.app_id,
		  s->ep.key_hash, s->sid, registered);
	hello_ack(ops, s, f->request_id, registered);
	kaa__opl_owner_report(ops, s, true);
	if (profile_bad) {
		char path[KAA_JSON_PATH_MAX];
		const char *msg;
		kaa__opl_split_err(perr, path, sizeof(path), &msg);
		kaa__opl_error(ops, s->sid, 0, EC(INVALID_PROFILE), false,
			       "hello.client_profile_json", path,
			       "profile not stored, send a corrected ProfileUpdate: %s", msg);
	}
	kaa__opl_topics_send(ops, s, true);
	kaa__opl_config_push(ops, s, true);
	s->catchup_pending = true;
	kaa__opl_schedule(ops, OPS_JOB_CATCHUP, (int64_t)s->sid, OPS_CATCHUP_DELAY_MS);
	goto out;
internal:
	kaa__counter_inc(ops->reg_error);
	KAA_WARN(MOD, "hello_failed sid=%" PRIu64 " err=%s", s->sid, kaa_strerror(rc));
	/* the session stays unauthenticated; the device may retry its Hello */
	kaa__endpoint_clear(&s->ep);
	kaa__opl_app_put(s->app);
	s->app = NULL;
	kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
		       "registration failed: %s; retry later", kaa_strerror(rc));
out:
	free(pdoc);
	kaa__opl_app_put(app);
	kaa__meta_obj_clear(&cred);
}

void kaa__opl_profile_update(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const char *json = f->profile_update ? f->profile_update->client_profile_json : NULL;
	char perr[KAA_JSON_ERR_SIZE] = "", path[KAA_JSON_PATH_MAX];
	char *doc = NULL;
	yajl_val tree = NULL;
	const char *msg;

	if (!json || !*json) {
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_MESSAGE), false,
			       "profile_update.client_profile_json", NULL,
			       "client_profile_json is required");
		return;
	}
	if (profile_check(s->app, json, &doc, &tree, perr, sizeof(perr)) != KAA_OK) {
		kaa__opl_split_err(perr, path, sizeof(path), &msg);
		kaa__opl_error(ops, s->sid, f->request_id, EC(INVALID_PROFILE), false,
			       "profile_update.client_profile_json", path, "%s", msg);
		return;
	}
	char *old_doc = s->ep.client_profile;
	int64_t old_ver = s->ep.client_profile_version;
	yajl_tree_free(tree);
	s->ep.client_profile = doc;
	s->ep.client_profile_version = s->app->profile_ver;
	bool changed = kaa__opl_compute_groups(s);
	if (kaa__opl_save(ops, s) != KAA_OK) {
		/* keep the previous profile: the frame had no effect */
		s->ep.client_profile = old_doc;
		s->ep.client_profile_version = old_ver;
		free(doc);
		kaa__opl_compute_groups(s);
		kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
			       "the profile could not be stored; retry later");
		return;
	}
	free(old_doc);
	kaa__opl_ack(ops, s->sid, f->request_id);
	if (changed) {
		kaa__opl_topics_send(ops, s, false);
		kaa__opl_config_push(ops, s, false);
		kaa__opl_notify(ops, s);
	}
}

void kaa__opl_session_resume(kaa__operations *ops, ops_session *s, const frame_t *f)
{
	const Kaa__Endpoint__V1__SessionResume *r = f->session_resume;
	bool changed = false;
	for (size_t i = 0; r && i < r->n_positions; i++) {
		const Kaa__Endpoint__V1__TopicPosition *p = r->positions[i];
		if (!p || !p->topic_id)
			continue;
		bool known = !*p->topic_id;
		for (size_t t = 0; !known && t < s->app->n_topics; t++)
			known = strcmp(s->app->topics[t].id_str, p->topic_id) == 0;
		if (!known)
			continue; /* unknown streams are not stored */
		ops_pos *pos = kaa__opl_pos(s, p->topic_id, true);
		if (pos && p->last_seq > pos->acked) {
			pos->acked = p->last_seq;
			if (pos->sent < pos->acked)
				pos->sent = pos->acked;
			changed = true;
		}
	}
	if (changed) {
		kaa__opl_positions_store(s);
		if (kaa__opl_save(ops, s) != KAA_OK) {
			kaa__opl_error(ops, s->sid, f->request_id, EC(INTERNAL), false, NULL, NULL,
				       "positions could not be stored; retry later");
			return;
		}
	}
	kaa__opl_ack(ops, s->sid, f->request_id);
}
