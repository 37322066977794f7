// fuzz-sources: lib/appender/log_appender.c lib/appender/webhook_appender.c lib/appender/kafka_appender.c
// fuzz-sources: lib/store/endpoint_store.c lib/store/endpoint_store_sqlite.c
// fuzz-sources: lib/store/endpoint_store_mongo.c lib/store/sqlite_err.c
// fuzz-sources: lib/json/json_merge.c lib/base/alloc.c lib/base/buf.c lib/base/clock.c
// fuzz-sources: lib/base/error.c lib/base/log.c lib/base/metrics.c lib/proto/endpoint_codec.c
// fuzz-sources: build/gen/endpoint.pb-c.c
// fuzz-pkgs: yajl sqlite3 libmongoc-1.0 libcurl openssl libprotobuf-c rdkafka
/*
 * Log-appender settings come from any REST client holding an application
 * admin's credentials (POST/PUT /applications/{app}/log-appenders) and
 * are parsed again by every operations node: checking them must never
 * crash, must answer KAA_OK or KAA_ERR_INVAL, and a refusal must say
 * which member ("settings...: why", the control service turns the part
 * before ": " into the 400's JSON path).
 */
#include "appender/log_appender.h"

#include "base/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[300];
	char *json = malloc(size + 1);
	if (!json)
		return 0;
	memcpy(json, data, size);
	json[size] = '\0';
	int rc = kaa__log_appender_check(json, err, sizeof(err));
	if (rc != KAA_OK && rc != KAA_ERR_INVAL)
		abort();
	if (rc == KAA_ERR_INVAL && strncmp(err, "settings", 8) != 0)
		abort();
	if (rc == KAA_OK && err[0])
		abort();
	free(json);
	return 0;
}
