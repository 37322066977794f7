/*
 * validate.c - the payload validators of validate.h. Avro and filter error
 * texts ("$.x: why") are split into the member path inside the request
 * body and the message.
 */
#include "control/validate.h"

#include "appender/log_appender.h"
#include "auth/auth.h"
#include "base/alloc.h"
#include "base/base64.h"
#include "base/error.h"
#include "control/rest_reply.h"
#include "json/avro_schema.h"
#include "json/filter.h"
#include "json/json_merge.h"

#include <inttypes.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

int kaa__latest_schema_version(kaa__meta_store *store, int64_t app_id, const char *kind,
			       int64_t *version)
{
	kaa__meta_query q = {.parent_id = app_id, .schema_kind = kind, .limit = KAA_META_LIMIT_MAX};
	kaa__meta_page pg;
	int rc = kaa__meta_list(store, KAA_META_SCHEMA, &q, &pg);
	*version = 0;
	if (rc != KAA_OK)
		return rc;
	for (size_t i = 0; i < pg.n; i++)
		if (pg.items[i].schema_version > *version)
			*version = pg.items[i].schema_version;
	kaa__meta_page_clear(&pg);
	return KAA_OK;
}

static int validate_against(kaa__meta_store *store, int64_t app_id, const char *kind,
			    int64_t version, const char *doc, kaa__http_response *resp,
			    const char *field_name)
{
	kaa__meta_obj sch = {0};
	kaa__avro_schema *s = NULL;
	char err[300];
	int rc;

	if (version == 0) {
		rc = kaa__latest_schema_version(store, app_id, kind, &version);
		if (rc != KAA_OK) {
			kaa__reply_store_error(resp, rc);
			return -1;
		}
		if (version == 0)
			return 0; /* no schema of this kind: payloads are free-form JSON */
	}
	rc = kaa__meta_find_schema(store, app_id, kind, version, &sch);
	if (rc == KAA_ERR_NOTFOUND) {
		snprintf(err, sizeof(err), "the application has no %s schema version %" PRId64,
			 kind, version);
		kaa__reply_error(resp, 400, "unknown_schema", err, "$.schemaVersion");
		return -1;
	}
	if (rc != KAA_OK) {
		kaa__reply_store_error(resp, rc);
		return -1;
	}
	rc = kaa__avro_schema_parse(sch.body, strlen(sch.body), &s, err, sizeof(err));
	kaa__meta_obj_clear(&sch);
	if (rc != KAA_OK) {
		kaa__reply_error(resp, 500, "internal", "stored schema does not parse", NULL);
		return -1;
	}
	rc = kaa__avro_validate(s, doc, strlen(doc), err, sizeof(err));
	kaa__avro_schema_free(s);
	if (rc != KAA_OK) {
		/* Report the path inside the request body: "$.x: why" from the
		 * validator becomes path "$.body.x", message "why". */
		char msg[400], path[400];
		const char *sep = strstr(err, ": ");
		if (sep && err[0] == '$') {
			snprintf(path, sizeof(path), "$.%s%.*s", field_name, (int)(sep - err - 1),
				 err + 1);
			snprintf(msg, sizeof(msg), "does not match the %s schema: %s", kind,
				 sep + 2);
		} else {
			snprintf(path, sizeof(path), "$.%s", field_name);
			snprintf(msg, sizeof(msg), "does not match the %s schema: %s", kind, err);
		}
		kaa__reply_error(resp, 400, "schema_mismatch", msg, path);
		return -1;
	}
	return 0;
}

/* ---- events and owner verifiers --------------------------------------------- */

#define EVENT_CLASSES_MAX 100

/* A dotted Java-style name: segments of [A-Za-z_][A-Za-z0-9_]*. */
static bool fqn_valid(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 255)
		return false;
	bool start = true;
	for (const char *p = s; *p; p++) {
		char ch = *p;
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (ch == '.') {
			if (start)
				return false;
			start = true;
		} else if (alpha || (digit && !start)) {
			start = false;
		} else {
			return false;
		}
	}
	return !start;
}

/* classes: [{"fqn": "a.b.C", "schema": <Avro record>}, ...], 1..100, fqns unique. */
static int validate_family(const char *body, kaa__http_response *resp)
{
	char err[300], path[64];
	yajl_val v = NULL;
	int ret = -1;
	if (kaa__json_parse(body, strlen(body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &v, err,
			    sizeof(err)) != KAA_OK)
		goto bad_shape;
	if (!YAJL_IS_ARRAY(v) || v->u.array.len == 0 || v->u.array.len > EVENT_CLASSES_MAX)
		goto bad_shape;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val cl = v->u.array.values[i], fqn = kaa__json_member(cl, "fqn"),
			 sch = kaa__json_member(cl, "schema");
		snprintf(path, sizeof(path), "$.classes[%zu]", i);
		if (!YAJL_IS_OBJECT(cl) || cl->u.object.len != 2 || !sch) {
			kaa__reply_error(
				resp, 400, "invalid",
				"an event class is {\"fqn\": name, \"schema\": Avro record}", path);
			goto out;
		}
		snprintf(path, sizeof(path), "$.classes[%zu].fqn", i);
		if (!YAJL_IS_STRING(fqn) || !fqn_valid(fqn->u.string)) {
			kaa__reply_error(
				resp, 400, "invalid",
				"fqn must be a dotted name such as org.example.Temperature", path);
			goto out;
		}
		for (size_t j = 0; j < i; j++) {
			yajl_val prev = kaa__json_member(v->u.array.values[j], "fqn");
			if (strcmp(prev->u.string, fqn->u.string) == 0) {
				kaa__reply_error(resp, 400, "invalid", "duplicate event class fqn",
						 path);
				goto out;
			}
		}
		char *text = NULL;
		size_t tlen = 0;
		kaa__avro_schema *as = NULL;
		if (kaa__json_canonical_tree(sch, &text, &tlen) != KAA_OK)
			kaa__oom();
		int rc = kaa__avro_schema_parse(text, tlen, &as, err, sizeof(err));
		free(text);
		if (rc != KAA_OK) {
			snprintf(path, sizeof(path), "$.classes[%zu].schema", i);
			kaa__reply_error(resp, 400, "invalid_schema", err, path);
			goto out;
		}
		kaa__avro_schema_free(as);
	}
	ret = 0;
	goto out;
bad_shape:
	kaa__reply_error(resp, 400, "invalid", "classes must be an array of 1..100 event classes",
			 "$.classes");
out:
	yajl_tree_free(v);
	return ret;
}

/* classes: {"<fqn of the family>": "source" | "sink" | "both", ...}, non-empty;
 * the family must belong to the application's tenant. */
int kaa__validate_event_map(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			    kaa__http_response *resp)
{
	kaa__meta_obj app = {0}, fam = {0};
	yajl_val fv = NULL, mv = NULL;
	char err[128], path[300];
	int ret = -1;
	int rc = kaa__meta_get(store, KAA_META_APPLICATION, app_id, &app);
	if (rc == KAA_OK)
		rc = kaa__meta_get(store, KAA_META_EVENT_FAMILY, o->family_id, &fam);
	if (rc == KAA_ERR_NOTFOUND || (rc == KAA_OK && fam.tenant_id != app.tenant_id)) {
		kaa__reply_error(resp, 400, "invalid", "no such event family in this tenant",
				 "$.familyId");
		goto out;
	}
	if (rc != KAA_OK) {
		kaa__reply_store_error(resp, rc);
		goto out;
	}
	if (!o->body)
		goto ok; /* update without classes: unchanged */
	if (kaa__json_parse(fam.body, strlen(fam.body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &fv,
			    err, sizeof(err)) != KAA_OK ||
	    kaa__json_parse(o->body, strlen(o->body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &mv,
			    err, sizeof(err)) != KAA_OK ||
	    !YAJL_IS_OBJECT(mv) || mv->u.object.len == 0) {
		kaa__reply_error(resp, 400, "invalid",
				 "classes must map event class fqns to source, sink or both",
				 "$.classes");
		goto out;
	}
	for (size_t i = 0; i < mv->u.object.len; i++) {
		const char *fqn = mv->u.object.keys[i];
		yajl_val role = mv->u.object.values[i];
		bool known = false;
		for (size_t j = 0; YAJL_IS_ARRAY(fv) && j < fv->u.array.len && !known; j++) {
			yajl_val f = kaa__json_member(fv->u.array.values[j], "fqn");
			known = YAJL_IS_STRING(f) && strcmp(f->u.string, fqn) == 0;
		}
		snprintf(path, sizeof(path), "$.classes.%.250s", fqn);
		if (!known) {
			kaa__reply_error(resp, 400, "invalid", "the event family has no such class",
					 path);
			goto out;
		}
		if (!YAJL_IS_STRING(role) ||
		    (strcmp(role->u.string, "source") != 0 && strcmp(role->u.string, "sink") != 0 &&
		     strcmp(role->u.string, "both") != 0)) {
			kaa__reply_error(resp, 400, "invalid", "role must be source, sink or both",
					 path);
			goto out;
		}
	}
ok:
	ret = 0;
out:
	yajl_tree_free(fv);
	yajl_tree_free(mv);
	kaa__meta_obj_clear(&app);
	kaa__meta_obj_clear(&fam);
	return ret;
}

/* settings: {"type": "trustful"} or {"type": "jwt-hs256", "secret": 32..4096
 * bytes, optional "issuer", "audience" (strings) and "leewaySeconds" 0..600}. */
static int validate_verifier(const char *body, kaa__http_response *resp)
{
	char err[128];
	yajl_val v = NULL;
	int ret = -1;
	if (kaa__json_parse(body, strlen(body), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &v, err,
			    sizeof(err)) != KAA_OK ||
	    !YAJL_IS_OBJECT(v)) {
		kaa__reply_error(resp, 400, "invalid", "settings must be an object", "$.settings");
		goto out;
	}
	yajl_val type = kaa__json_member(v, "type");
	bool jwt = YAJL_IS_STRING(type) && strcmp(type->u.string, "jwt-hs256") == 0;
	bool trustful = YAJL_IS_STRING(type) && strcmp(type->u.string, "trustful") == 0;
	if (!jwt && !trustful) {
		kaa__reply_error(resp, 400, "invalid", "type must be trustful or jwt-hs256",
				 "$.settings.type");
		goto out;
	}
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val x = v->u.object.values[i];
		char path[128];
		snprintf(path, sizeof(path), "$.settings.%.100s", k);
		if (strcmp(k, "type") == 0)
			continue;
		if (!jwt) {
			kaa__reply_error(resp, 400, "invalid",
					 "a trustful verifier takes no settings", path);
			goto out;
		}
		if (strcmp(k, "secret") == 0) {
			size_t n = YAJL_IS_STRING(x) ? strlen(x->u.string) : 0;
			if (n < 32 || n > 4096) {
				kaa__reply_error(resp, 400, "invalid",
						 "secret must be a string of 32..4096 bytes", path);
				goto out;
			}
		} else if (strcmp(k, "issuer") == 0 || strcmp(k, "audience") == 0) {
			if (!YAJL_IS_STRING(x) || !*x->u.string || strlen(x->u.string) > 1024) {
				kaa__reply_error(resp, 400, "invalid", "must be a non-empty string",
						 path);
				goto out;
			}
		} else if (strcmp(k, "leewaySeconds") == 0) {
			int64_t n;
			if (!kaa__json_int64(x, &n) || n < 0 || n > 600) {
				kaa__reply_error(resp, 400, "invalid", "must be an integer 0..600",
						 path);
				goto out;
			}
		} else {
			kaa__reply_error(resp, 400, "invalid", "unknown setting", path);
			goto out;
		}
	}
	if (jwt && !YAJL_IS_STRING(kaa__json_member(v, "secret"))) {
		kaa__reply_error(resp, 400, "invalid", "a jwt-hs256 verifier needs a secret",
				 "$.settings.secret");
		goto out;
	}
	ret = 0;
out:
	yajl_tree_free(v);
	return ret;
}

int kaa__validate_user(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
		       kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	if (o->role && kaa__role_parse(o->role) == KAA_ROLE_NONE) {
		kaa__reply_error(resp, 400, "invalid",
				 "role must be tenant-admin, tenant-developer or tenant-user",
				 "$.role");
		return -1;
	}
	return 0;
}

int kaa__validate_schema(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			 kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	static const char *kinds[] = {"profile-client", "profile-server", "configuration",
				      "notification", "log"};
	char err[300];
	bool ok = false;
	for (size_t i = 0; i < 5; i++)
		ok |= strcmp(o->schema_kind, kinds[i]) == 0;
	if (!ok) {
		kaa__reply_error(resp, 400, "invalid",
				 "kind must be profile-client, profile-server, configuration, "
				 "notification or log",
				 "$.kind");
		return -1;
	}
	kaa__avro_schema *s = NULL;
	if (kaa__avro_schema_parse(o->body, strlen(o->body), &s, err, sizeof(err)) != KAA_OK) {
		char path[300];
		const char *sep = strstr(err, ": ");
		if (sep) {
			snprintf(path, sizeof(path), "$.schema%s%.*s",
				 err[0] == '$' || err[0] == '[' ? "" : ".",
				 (int)(sep - err) - (err[0] == '$'), err + (err[0] == '$'));
			kaa__reply_error(resp, 400, "invalid_schema", sep + 2, path);
		} else {
			kaa__reply_error(resp, 400, "invalid_schema", err, "$.schema");
		}
		return -1;
	}
	kaa__avro_schema_free(s);
	return 0;
}

int kaa__validate_group(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	char err[300];
	if (!o->body)
		return 0;
	kaa__filter *f = NULL;
	if (kaa__filter_compile(o->body, strlen(o->body), &f, err, sizeof(err)) != KAA_OK) {
		const char *sep = strstr(err, ": ");
		char path[300];
		snprintf(path, sizeof(path), "$.filter%.*s", sep ? (int)(sep - err) - 1 : 0,
			 sep ? err + 1 : "");
		kaa__reply_error(resp, 400, "invalid_filter", sep ? sep + 2 : err, path);
		return -1;
	}
	kaa__filter_free(f);
	return 0;
}

int kaa__validate_configuration(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
				kaa__http_response *resp)
{
	if (!o->body)
		return 0;
	return validate_against(store, app_id, "configuration", o->schema_version, o->body, resp,
				"body");
}

int kaa__validate_server_profile(kaa__meta_store *store, int64_t app_id, const char *doc,
				 kaa__http_response *resp)
{
	return validate_against(store, app_id, "profile-server", 0, doc, resp, "serverProfile");
}

int kaa__validate_notification(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			       kaa__http_response *resp)
{
	return validate_against(store, app_id, "notification", 0, o->body, resp, "body");
}

int kaa__validate_log_appender(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			       kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	char err[300];
	if (!o->body || kaa__log_appender_check(o->body, err, sizeof(err)) == KAA_OK)
		return 0;
	/* "settings.file: why" -> path $.settings.file, message why */
	const char *sep = strstr(err, ": ");
	char path[128];
	snprintf(path, sizeof(path), "$.%.*s", sep ? (int)(sep - err) : 8, sep ? err : "settings");
	kaa__reply_error(resp, 400, "invalid", sep ? sep + 2 : err, path);
	return -1;
}

int kaa__validate_event_family(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			       kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	return validate_family(o->body, resp);
}

int kaa__validate_user_verifier(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
				kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	return o->body ? validate_verifier(o->body, resp) : 0;
}

int kaa__validate_credential(kaa__meta_store *store, int64_t app_id, const kaa__meta_obj *o,
			     kaa__http_response *resp)
{
	(void)store;
	(void)app_id;
	uint8_t hash[32], key[1024], digest[SHA256_DIGEST_LENGTH];
	const char *h = o->endpoint_key_hash;
	if (h && (strlen(h) != 43 ||
		  kaa__b64_decode(h, 43, hash, sizeof(hash), KAA__B64_URL) != (long)sizeof(hash))) {
		kaa__reply_error(resp, 400, "invalid",
				 "must be the base64url (no padding) SHA-256 of the public key: "
				 "43 characters of A-Z a-z 0-9 - _",
				 "$.endpointKeyHash");
		return -1;
	}
	if (!o->public_key)
		return 0;
	long n = kaa__b64_decode(o->public_key, strlen(o->public_key), key, sizeof(key), 0);
	if (n <= 0) {
		kaa__reply_error(resp, 400, "invalid",
				 "must be standard base64 (padded) of 1..1024 bytes: the key the "
				 "device sends in Hello (DER SubjectPublicKeyInfo)",
				 "$.publicKey");
		return -1;
	}
	SHA256(key, (size_t)n, digest);
	if (h && memcmp(digest, hash, sizeof(hash)) != 0) {
		kaa__reply_error(resp, 400, "invalid",
				 "the SHA-256 of this key is not endpointKeyHash", "$.publicKey");
		return -1;
	}
	return 0;
}
