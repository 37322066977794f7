// fuzz-sources: lib/base/alloc.c lib/json/filter.c lib/json/json_merge.c lib/base/error.c lib/base/log.c
// fuzz-pkgs: yajl libcrypto
/*
 * Endpoint-group filters come from the REST API; contexts are built from
 * device profiles. Each input is compiled as a filter and evaluated
 * against a fixed context, and is also used as a context for fixed
 * filters. Properties checked:
 *   - compile errors carry a path;
 *   - matching the context as text and as a parsed tree agree;
 *   - {"$nor":[F]} matches exactly when F does not, and {"$or":[F]} and
 *     {"$and":[F]} when F does (when the wrapped filter stays within the
 *     limits).
 */
#include "base/error.h"
#include "json/filter.h"
#include "json/json_merge.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char context[] =
	"{\"cp\":{\"model\":\"X100\",\"fw\":{\"major\":2,\"minor\":7},\"tags\":[\"beta\",\"eu\"],"
	"\"sensors\":[{\"type\":\"temp\",\"v\":21.5},{\"type\":\"hum\",\"v\":40},{\"v\":1}],"
	"\"serial\":\"AB-123\",\"battery\":null,\"n\":-3,\"e\":[],\"o\":{},\"b\":true,"
	"\"matrix\":[[1,2],[3]],\"s\":\"\xc3\xa9t\xc3\xa9\\nX\"},"
	"\"sp\":{\"tier\":\"gold\",\"tags\":[\"vip\"],\"weight\":10,\"loc\":{\"lat\":1.5}},"
	"\"ekh\":\"c2hhMQ==\"}";

static const char *const fixed_filters[] = {
	"{}",
	"{\"cp.model\":\"X100\",\"sp.weight\":{\"$gte\":5}}",
	"{\"$or\":[{\"cp.a.b.c\":{\"$exists\":true}},{\"sp.x\":{\"$in\":[1,\"a\",null]}}]}",
	"{\"cp.name\":{\"$regex\":\"^[a-z]+[0-9]{2}$\",\"$options\":\"i\"},\"ekh\":{\"$ne\":\"x\"}}",
	"{\"$nor\":[{\"cp.v\":{\"$lt\":0}},{\"cp.list.k\":\"z\"}],\"sp.t\":{\"$not\":{\"$gt\":1}}}",
};

static yajl_val ctx_tree;
static kaa__filter *fixed[sizeof(fixed_filters) / sizeof(fixed_filters[0])];

static void check(int cond)
{
	if (!cond)
		abort();
}

/* Compiles prefix + input + suffix; -1 when it does not compile. */
static int wrapped(const char *prefix, const uint8_t *data, size_t size, const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);
	char *buf = malloc(pl + size + sl);
	kaa__filter *f = NULL;
	int res = -1;

	if (!buf)
		return -1;
	memcpy(buf, prefix, pl);
	memcpy(buf + pl, data, size);
	memcpy(buf + pl + size, suffix, sl);
	if (kaa__filter_compile(buf, pl + size + sl, &f, NULL, 0) == KAA_OK) {
		res = kaa__filter_match_tree(f, ctx_tree);
		kaa__filter_free(f);
	}
	free(buf);
	return res;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[KAA_JSON_ERR_SIZE];
	kaa__filter *f = NULL;
	bool m = false;
	size_t pl;
	int rc;

	if (!ctx_tree) {
		check(kaa__json_parse(context, strlen(context), KAA_JSON_MAX_BYTES,
				      KAA_JSON_MAX_DEPTH, &ctx_tree, NULL, 0) == KAA_OK);
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			check(kaa__filter_compile(fixed_filters[i], strlen(fixed_filters[i]),
						  &fixed[i], NULL, 0) == KAA_OK);
	}

	rc = kaa__filter_compile((const char *)data, size, &f, err, sizeof(err));
	if (rc != KAA_OK) {
		check(f == NULL);
		if (rc != KAA_ERR_NOMEM) {
			kaa__json_err_msg(err, &pl);
			check(pl > 0);
		}
	} else {
		bool t = kaa__filter_match_tree(f, ctx_tree);
		check(kaa__filter_match(f, context, strlen(context), &m) == KAA_OK);
		check(m == t);
		int r = wrapped("{\"$nor\":[", data, size, "]}");
		check(r == -1 || r == !t);
		r = wrapped("{\"$or\":[", data, size, "]}");
		check(r == -1 || r == t);
		r = wrapped("{\"$and\":[{},", data, size, "]}");
		check(r == -1 || r == t);
		kaa__filter_free(f);
	}

	/* the input as a context */
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		rc = kaa__filter_match(fixed[i], (const char *)data, size, &m);
		check(rc == KAA_OK || !m);
		if (i == 0 && rc == KAA_OK)
			check(m); /* {} matches every context */
	}
	return 0;
}
