/*
 * demo_seed.c - the demo tenant of `make run` (demo_seed.h), created through
 * the metadata store directly (no REST round trip, no change publication:
 * it runs before any operations node can have loaded the application).
 */
#include "control/demo_seed.h"

#include "base/error.h"
#include "base/log.h"

#include <inttypes.h>
#include <stdio.h>

static int demo_create(kaa__meta_store *store, kaa__meta_obj *in, int64_t *id)
{
	kaa__meta_obj out = {0};
	int rc = kaa__meta_create(store, in, &out, NULL);
	if (rc == KAA_OK && id)
		*id = out.id;
	kaa__meta_obj_clear(&out);
	return rc;
}

int kaa__demo_seed(kaa__meta_store *store, char *token, size_t size)
{
	kaa__meta_obj t = {0}, a = {0};
	int64_t tenant = 0, app = 0, group = 0;
	int rc = kaa__meta_find_name(store, KAA_META_TENANT, 0, "demo", &t);
	if (rc == KAA_OK) {
		rc = kaa__meta_find_name(store, KAA_META_APPLICATION, t.id, "demo-app", &a);
		if (rc == KAA_OK)
			snprintf(token, size, "%s", a.app_token);
		goto out;
	}
	if (rc != KAA_ERR_NOTFOUND)
		goto out;
	kaa__meta_obj in = {.kind = KAA_META_TENANT, .name = "demo"};
	if ((rc = demo_create(store, &in, &tenant)) != KAA_OK)
		goto out;
	kaa__meta_obj ai = {.kind = KAA_META_APPLICATION,
			    .tenant_id = tenant,
			    .name = "demo-app",
			    .credentials_mode = "trustful"};
	if ((rc = demo_create(store, &ai, &app)) != KAA_OK)
		goto out;
	static const struct {
		const char *kind, *body;
	} schemas[] = {
		{"profile-client",
		 "{\"type\":\"record\",\"name\":\"Profile\",\"fields\":["
		 "{\"name\":\"model\",\"type\":\"string\",\"default\":\"sim\"}]}"},
		{"configuration",
		 "{\"type\":\"record\",\"name\":\"Config\",\"fields\":["
		 "{\"name\":\"sampleSeconds\",\"type\":\"int\",\"default\":60},"
		 "{\"name\":\"greeting\",\"type\":\"string\",\"default\":\"hello\"}]}"},
		{"log",
		 "{\"type\":\"record\",\"name\":\"Reading\",\"fields\":["
		 "{\"name\":\"device\",\"type\":\"int\"},{\"name\":\"seq\",\"type\":\"long\"}]}"},
	};
	for (size_t i = 0; i < sizeof(schemas) / sizeof(schemas[0]); i++) {
		kaa__meta_obj si = {.kind = KAA_META_SCHEMA,
				    .app_id = app,
				    .schema_kind = (char *)schemas[i].kind,
				    .body = (char *)schemas[i].body};
		if ((rc = demo_create(store, &si, NULL)) != KAA_OK)
			goto out;
	}
	kaa__meta_obj gi = {.kind = KAA_META_GROUP, .app_id = app, .name = "all", .weight = 1};
	if ((rc = demo_create(store, &gi, &group)) != KAA_OK)
		goto out;
	kaa__meta_obj ci = {.kind = KAA_META_CONFIGURATION,
			    .app_id = app,
			    .group_id = group,
			    .schema_version = 1,
			    .body = "{\"sampleSeconds\":10,\"greeting\":\"hello from kaa\"}"};
	if ((rc = demo_create(store, &ci, NULL)) != KAA_OK)
		goto out;
	kaa__meta_obj ti = {
		.kind = KAA_META_TOPIC, .app_id = app, .name = "news", .mandatory = true};
	if ((rc = demo_create(store, &ti, NULL)) != KAA_OK)
		goto out;
	kaa__meta_obj la = {.kind = KAA_META_LOG_APPENDER,
			    .app_id = app,
			    .name = "file",
			    .body = "{\"type\":\"file\",\"file\":\"demo.jsonl\"}"};
	if ((rc = demo_create(store, &la, NULL)) != KAA_OK)
		goto out;
	rc = kaa__meta_get(store, KAA_META_APPLICATION, app, &a);
	if (rc == KAA_OK) {
		snprintf(token, size, "%s", a.app_token);
		KAA_INFO("control", "demo_created tenant=%" PRId64 " app=%" PRId64, tenant, app);
	}
out:
	kaa__meta_obj_clear(&t);
	kaa__meta_obj_clear(&a);
	return rc;
}
