// fuzz-sources: lib/base/alloc.c lib/json/avro_schema.c lib/json/json_merge.c lib/base/error.c lib/base/log.c
// fuzz-pkgs: yajl libcrypto
/*
 * Avro schemas arrive through the REST API and documents from devices and
 * API clients. Each input is parsed as a schema and, independently,
 * validated as a document against a fixed schema that uses every type.
 * Beyond "no crash, no leak, no UB", it checks what callers rely on:
 *   - every error string starts with a path (kaa__json_err_msg splits it);
 *   - a parsed schema's default document, when one exists, validates
 *     against that schema and completing it changes nothing;
 *   - a document that validates can be completed, the completed document
 *     validates too, and completing it again changes nothing.
 */
#include "json/avro_schema.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char fixed_schema[] =
	"{\"type\":\"record\",\"name\":\"T\",\"namespace\":\"f\",\"fields\":["
	"{\"name\":\"id\",\"type\":\"string\"},"
	"{\"name\":\"n\",\"type\":\"long\",\"default\":0},"
	"{\"name\":\"i\",\"type\":\"int\",\"default\":1},"
	"{\"name\":\"x\",\"type\":\"float\",\"default\":0.5},"
	"{\"name\":\"d\",\"type\":\"double\",\"default\":2},"
	"{\"name\":\"b\",\"type\":\"boolean\",\"default\":false},"
	"{\"name\":\"raw\",\"type\":\"bytes\",\"default\":\"\"},"
	"{\"name\":\"h\",\"type\":{\"type\":\"fixed\",\"name\":\"H\",\"size\":2},"
	"\"default\":\"ab\"},"
	"{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]},"
	"\"default\":\"A\"},"
	"{\"name\":\"u\",\"type\":[\"null\",\"string\",\"long\",{\"type\":\"map\",\"values\":"
	"\"int\"}],\"default\":null},"
	"{\"name\":\"list\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\","
	"\"name\":\"Item\",\"fields\":[{\"name\":\"k\",\"type\":\"string\"},{\"name\":\"v\","
	"\"type\":[\"null\",\"double\"],\"default\":null}]}},\"default\":[]},"
	"{\"name\":\"tree\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\",\"fields\":"
	"[{\"name\":\"val\",\"type\":\"int\",\"default\":0},{\"name\":\"kids\",\"type\":{\"type\":"
	"\"array\",\"items\":\"Node\"},\"default\":[]}]}],\"default\":null},"
	"{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":[\"Item\",\"null\"]},"
	"\"default\":{}}"
	"]}";

static kaa__avro_schema *fixed;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_err(int rc, const char *err)
{
	size_t pl;
	if (rc == KAA_OK || rc == KAA_ERR_NOMEM)
		return;
	kaa__json_err_msg(err, &pl);
	check(pl > 0);
}

/* out must validate against s, and completing it must be the identity. */
static void check_complete_fixpoint(const kaa__avro_schema *s, const char *out, size_t len)
{
	char err[KAA_JSON_ERR_SIZE];
	char *again = NULL;
	size_t alen = 0;

	check(kaa__avro_validate(s, out, len, err, sizeof(err)) == KAA_OK);
	check(kaa__avro_complete(s, out, len, &again, &alen, err, sizeof(err)) == KAA_OK);
	check(alen == len && memcmp(again, out, len) == 0);
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	char err[KAA_JSON_ERR_SIZE];
	kaa__avro_schema *s = NULL;
	char *out = NULL;
	size_t len = 0;
	int rc;

	if (!fixed && kaa__avro_schema_parse(fixed_schema, strlen(fixed_schema), &fixed, err,
					     sizeof(err)) != KAA_OK)
		abort();

	/* the input as a schema */
	rc = kaa__avro_schema_parse(json, size, &s, err, sizeof(err));
	check_err(rc, err);
	if (rc == KAA_OK) {
		check(kaa__avro_schema_name(s) != NULL);
		rc = kaa__avro_default_document(s, &out, &len, err, sizeof(err));
		check_err(rc, err);
		if (rc == KAA_OK) {
			check_complete_fixpoint(s, out, len);
			free(out);
			out = NULL;
		} else {
			check(out == NULL);
		}
		rc = kaa__avro_validate(s, json, size, err, sizeof(err));
		check_err(rc, err);
		kaa__avro_schema_free(s);
	} else {
		check(s == NULL);
	}

	/* the input as a document */
	rc = kaa__avro_validate(fixed, json, size, err, sizeof(err));
	check_err(rc, err);
	if (rc == KAA_OK) {
		rc = kaa__avro_complete(fixed, json, size, &out, &len, err, sizeof(err));
		check(rc == KAA_OK || rc == KAA_ERR_TOO_BIG);
		if (rc == KAA_OK)
			check_complete_fixpoint(fixed, out, len);
		free(out);
	}
	return 0;
}
