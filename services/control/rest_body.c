#include "control/rest_body.h"

#include "auth/auth.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void kaa__rest_body_free(kaa__rest_body *b)
{
	for (size_t i = 0; i < b->n_owned; i++)
		free(b->owned[i]);
	b->n_owned = 0;
	yajl_tree_free(b->tree);
	b->tree = NULL;
}

__attribute__((format(printf, 5, 6))) static int fail(kaa__rest_error *e, int status,
						      const char *code, const char *message,
						      const char *path_fmt, ...)
{
	e->status = status;
	e->code = code;
	snprintf(e->message, sizeof(e->message), "%s", message);
	e->path[0] = '\0';
	if (path_fmt) {
		va_list ap;
		va_start(ap, path_fmt);
		vsnprintf(e->path, sizeof(e->path), path_fmt, ap);
		va_end(ap);
	}
	return -1;
}

static bool own(kaa__rest_body *b, char *s)
{
	if (b->n_owned == sizeof(b->owned) / sizeof(b->owned[0])) {
		free(s);
		return false;
	}
	b->owned[b->n_owned++] = s;
	return true;
}

int kaa__rest_parse_body(const char *body, size_t len, const kaa__rest_field *fields, int flag,
			 kaa__meta_obj *o, kaa__rest_body *b, kaa__rest_error *e)
{
	char err[KAA_JSON_ERR_SIZE];
	int rc;

	memset(b, 0, sizeof(*b));
	rc = kaa__json_parse(body, len, KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &b->tree, err,
			     sizeof(err));
	if (rc != KAA_OK) {
		if (rc == KAA_ERR_TOO_BIG)
			return fail(e, 413, "too_big", "the body is too large", NULL);
		size_t plen = 0;
		const char *msg = kaa__json_err_msg(err, &plen);
		return fail(e, 400, "malformed_json", msg, plen ? "%.*s" : NULL, (int)plen, err);
	}
	if (!YAJL_IS_OBJECT(b->tree))
		return fail(e, 400, "invalid", "the body must be a JSON object", "$");
	for (size_t i = 0; i < b->tree->u.object.len; i++) {
		const char *k = b->tree->u.object.keys[i];
		yajl_val v = b->tree->u.object.values[i];
		const kaa__rest_field *f = NULL;
		for (const kaa__rest_field *x = fields; x->json; x++)
			if (strcmp(x->json, k) == 0)
				f = x;
		if (!f || !(f->flags & flag))
			return fail(e, 400, "unknown_field",
				    f ? "this field cannot be set here" : "unknown field", "$.%s",
				    k);
		char *base = (char *)o;
		switch (f->type) {
		case KAA_RF_STR:
		case KAA_RF_PASSWORD:
			if (!YAJL_IS_STRING(v))
				return fail(e, 400, "invalid", "expected a string", "$.%s", k);
			if (f->type == KAA_RF_PASSWORD) {
				char *hash = NULL;
				if (strlen(v->u.string) < 8)
					return fail(e, 400, "invalid",
						    "passwords have at least 8 characters", "$.%s",
						    k);
				if (kaa__password_hash(v->u.string, 0, &hash) != KAA_OK ||
				    !own(b, hash))
					return fail(e, 400, "invalid", "password not accepted",
						    "$.%s", k);
				*(char **)(base + f->off) = hash;
			} else {
				*(char **)(base + f->off) = v->u.string;
			}
			break;
		case KAA_RF_INT:
			if (!kaa__json_int64(v, (int64_t *)(base + f->off)))
				return fail(e, 400, "invalid", "expected an integer", "$.%s", k);
			break;
		case KAA_RF_TTL:
			if (!kaa__json_int64(v, &b->ttl_s) || b->ttl_s < 1 ||
			    b->ttl_s > 365LL * 24 * 3600)
				return fail(e, 400, "invalid",
					    "expected seconds between 1 and 31536000", "$.%s", k);
			b->has_ttl = true;
			break;
		case KAA_RF_BOOL:
			if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
				return fail(e, 400, "invalid", "expected true or false", "$.%s", k);
			*(bool *)(base + f->off) = YAJL_IS_TRUE(v);
			break;
		case KAA_RF_JSON: {
			char *txt = NULL;
			size_t tlen = 0;
			if (kaa__json_canonical_tree(v, &txt, &tlen) != KAA_OK || !own(b, txt))
				return fail(e, 400, "invalid", "cannot encode value", "$.%s", k);
			*(char **)(base + f->off) = txt;
			break;
		}
		case KAA_RF_IDS:
			if (!YAJL_IS_ARRAY(v) || v->u.array.len > 256)
				return fail(e, 400, "invalid",
					    "expected an array of ids (at most 256)", "$.%s", k);
			for (size_t j = 0; j < v->u.array.len; j++)
				if (!kaa__json_int64(v->u.array.values[j], &b->ids[j]) ||
				    b->ids[j] < 1)
					return fail(e, 400, "invalid", "expected a positive id",
						    "$.%s[%zu]", k, j);
			o->group_ids = b->ids;
			o->n_group_ids = v->u.array.len;
			break;
		}
	}
	if (flag != KAA_RF_CREATE)
		return 0;
	for (const kaa__rest_field *f = fields; f->json; f++) {
		if (!(f->flags & KAA_RF_REQUIRED) || !(f->flags & flag))
			continue;
		bool present = false;
		for (size_t i = 0; i < b->tree->u.object.len; i++)
			if (strcmp(b->tree->u.object.keys[i], f->json) == 0)
				present = true;
		if (!present)
			return fail(e, 400, "missing_field", "required field is missing", "$.%s",
				    f->json);
	}
	return 0;
}
