/*
 * sdk_download.c - GET .../sdk-profiles/{profile}/sdk (sdk_download.h).
 */
#include "control/sdk_download.h"

#include "base/clock.h"
#include "base/error.h"
#include "control/rest_reply.h"
#include "control/sdk_gen.h"
#include "json/avro_schema.h"
#include "json/json_merge.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

void kaa__sdk_download(kaa__meta_store *store, const kaa__principal *p,
		       const kaa__route_params *params, kaa__http_response *resp)
{
	kaa__meta_obj app = {0}, prof = {0}, sch = {0};
	kaa__avro_schema *schema = NULL;
	char *header = NULL, *tar = NULL, *defcfg = NULL;
	size_t hlen = 0, tlen = 0, dlen = 0;
	char err[KAA_JSON_ERR_SIZE];
	int64_t app_id = kaa__route_id(params, "app");
	int64_t id = kaa__route_id(params, "profile");
	int rc = app_id < 0 || id < 0 ? KAA_ERR_NOTFOUND
				      : kaa__meta_get(store, KAA_META_APPLICATION, app_id, &app);
	if (rc == KAA_OK && p->role != KAA_ROLE_PLATFORM_ADMIN && app.tenant_id != p->tenant_id)
		rc = KAA_ERR_NOTFOUND;
	if (rc == KAA_OK && !kaa__role_allows(p->role, KAA_ACT_READ, KAA_META_SDK_PROFILE)) {
		kaa__reply_error(resp, 403, "forbidden", "your role may not do this", NULL);
		goto out;
	}
	if (rc == KAA_OK)
		rc = kaa__meta_get(store, KAA_META_SDK_PROFILE, id, &prof);
	if (rc == KAA_OK && prof.app_id != app_id)
		rc = KAA_ERR_NOTFOUND;
	if (rc != KAA_OK) {
		kaa__reply_store_error(resp, rc);
		goto out;
	}
	/* The default configuration comes from the configuration schema version
	 * the profile names, when it names one. */
	yajl_val vers = NULL;
	int64_t cfg_ver = 0;
	if (kaa__json_parse(prof.body, strlen(prof.body), 65536, 8, &vers, err, sizeof(err)) ==
		    KAA_OK &&
	    YAJL_IS_OBJECT(vers)) {
		for (size_t i = 0; i < vers->u.object.len; i++)
			if (strcmp(vers->u.object.keys[i], "configuration") == 0)
				kaa__json_int64(vers->u.object.values[i], &cfg_ver);
	}
	yajl_tree_free(vers);
	if (cfg_ver > 0) {
		rc = kaa__meta_find_schema(store, app_id, "configuration", cfg_ver, &sch);
		if (rc == KAA_ERR_NOTFOUND) {
			kaa__reply_error(
				resp, 409, "unknown_schema",
				"the profile names a configuration schema version that does not "
				"exist",
				NULL);
			goto out;
		}
		if (rc != KAA_OK) {
			kaa__reply_store_error(resp, rc);
			goto out;
		}
		if (kaa__avro_schema_parse(sch.body, strlen(sch.body), &schema, err, sizeof(err)) !=
			    KAA_OK ||
		    kaa__avro_default_document(schema, &defcfg, &dlen, err, sizeof(err)) !=
			    KAA_OK) {
			kaa__reply_error(resp, 409, "no_default_configuration", err, NULL);
			goto out;
		}
	}
	kaa__sdk_profile_info info = {.profile_id = prof.id,
				      .profile_name = prof.name,
				      .app_token = app.app_token,
				      .bootstrap_json = prof.bootstrap,
				      .schema_versions_json = prof.body,
				      .default_config_json = defcfg};
	if (kaa__sdk_profile_header(&info, &header, &hlen, err, sizeof(err)) != KAA_OK) {
		kaa__reply_error(resp, 409, "invalid_profile", err, NULL);
		goto out;
	}
	if (kaa__tar_single("kaa_profile.h", header, hlen, kaa__wall_ms() / 1000, &tar, &tlen) !=
	    KAA_OK) {
		kaa__reply_error(resp, 500, "internal", "cannot build the archive", NULL);
		goto out;
	}
	resp->status = 200;
	resp->content_type = "application/x-tar";
	resp->body = tar;
	resp->body_len = tlen;
	tar = NULL;
	kaa__http_response_add_header(resp, "Content-Disposition",
				      "attachment; filename=\"kaa-sdk.tar\"");
out:
	free(tar);
	free(header);
	free(defcfg);
	kaa__avro_schema_free(schema);
	kaa__meta_obj_clear(&app);
	kaa__meta_obj_clear(&prof);
	kaa__meta_obj_clear(&sch);
}
