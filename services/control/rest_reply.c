#include "control/rest_reply.h"

#include "base/error.h"
#include "json/json_merge.h"
#include "store/meta_store.h"

#include <string.h>
#include <yajl/yajl_tree.h>

void kaa__reply_error(kaa__http_response *resp, int status, const char *code, const char *msg,
		      const char *path)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	yajl_gen_map_open(g);
	kaa__gen_key(g, "error");
	yajl_gen_map_open(g);
	kaa__gen_str(g, "code", code);
	kaa__gen_str(g, "message", msg);
	if (path)
		kaa__gen_str(g, "path", path);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	kaa__reply_gen(resp, status, g);
	yajl_gen_free(g);
}

void kaa__reply_store_error(kaa__http_response *resp, int rc)
{
	switch (rc) {
	case KAA_ERR_NOTFOUND:
		kaa__reply_error(resp, 404, "not_found", "no such object", NULL);
		break;
	case KAA_ERR_EXISTS:
		kaa__reply_error(resp, 409, "exists", "an object with this name or key exists",
				 NULL);
		break;
	case KAA_ERR_CONFLICT:
		kaa__reply_error(resp, 412, "version_mismatch",
				 "the object changed since it was read (If-Match)", NULL);
		break;
	case KAA_ERR_INVAL: kaa__reply_error(resp, 400, "invalid", "invalid value", NULL); break;
	case KAA_ERR_TOO_BIG:
		kaa__reply_error(resp, 413, "too_big", "value too large", NULL);
		break;
	case KAA_ERR_UNAVAILABLE:
	case KAA_ERR_TIMEOUT:
		kaa__reply_error(resp, 503, "unavailable", "metadata store unavailable, retry",
				 NULL);
		kaa__http_response_add_header(resp, "Retry-After", "1");
		break;
	default: kaa__reply_error(resp, 500, "internal", kaa_strerror(rc), NULL); break;
	}
}

void kaa__reply_gen(kaa__http_response *resp, int status, yajl_gen g)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	kaa__http_respond(resp, status, "application/json", buf, len);
}

void kaa__gen_key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

void kaa__gen_str(yajl_gen g, const char *k, const char *v)
{
	kaa__gen_key(g, k);
	if (v)
		kaa__gen_key(g, v);
	else
		yajl_gen_null(g);
}

void kaa__gen_json(yajl_gen g, const char *json, bool redact)
{
	yajl_val v = NULL;
	char err[64];
	if (!json || kaa__json_parse(json, strlen(json), KAA_META_BODY_MAX, KAA_JSON_MAX_DEPTH, &v,
				     err, sizeof(err)) != KAA_OK) {
		yajl_gen_null(g);
		return;
	}
	/* Write-only secrets: swap the string for the mask while generating,
	 * and back before the tree is freed. */
	static char mask[] = "********";
	enum { N_SECRETS = 2 };
	yajl_val secret[N_SECRETS] = {NULL};
	char *saved[N_SECRETS] = {NULL};
	for (size_t i = 0; redact && YAJL_IS_OBJECT(v) && i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		int which = strcmp(k, "secret") == 0 ? 0 : strcmp(k, "sasl_password") == 0 ? 1 : -1;
		if (which >= 0 && YAJL_IS_STRING(v->u.object.values[i]))
			secret[which] = v->u.object.values[i];
	}
	for (int i = 0; i < N_SECRETS; i++)
		if (secret[i]) {
			saved[i] = secret[i]->u.string;
			secret[i]->u.string = mask;
		}
	kaa__json_gen_canonical(g, v);
	for (int i = 0; i < N_SECRETS; i++)
		if (secret[i])
			secret[i]->u.string = saved[i];
	yajl_tree_free(v);
}
