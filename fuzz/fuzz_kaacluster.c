// fuzz-sources: lib/base/alloc.c operator/desired.c lib/json/json_merge.c lib/base/error.c
// fuzz-pkgs: yajl libcrypto
/*
 * KaaCluster objects come from the Kubernetes API (the API server validates
 * them against the CRD, but the operator must not trust that: an older CRD,
 * or a hand-edited object): any JSON must build the desired objects or be
 * refused with a reason, and every object built must be valid JSON with a
 * Kubernetes name (at most 63 characters) that ends its API path. The
 * listeners (spec.operations.listeners) feed names, hosts and paths into
 * Ingress rules, URLs and a shell script: their checks are exercised here.
 */
#include "desired.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	yajl_val v = NULL;
	char err[256];
	if (kaa__json_parse((const char *)data, size, 1 << 20, 64, &v, err, sizeof(err)) != KAA_OK)
		return 0;
	static kaa__desired d;
	memset(&d, 0, sizeof(d));
	kaa__desired_opts o = {.default_tag = "0.1.0"};
	if (kaa__desired_build(v, &o, &d, err, sizeof(err)) == KAA_OK) {
		for (size_t i = 0; i < d.n; i++) {
			yajl_val obj = NULL;
			size_t nl = strlen(d.objs[i].name), pl;
			if (!d.objs[i].path || nl == 0 || nl > 63 ||
			    (pl = strlen(d.objs[i].path)) < nl ||
			    strcmp(d.objs[i].path + pl - nl, d.objs[i].name) != 0)
				abort();
			if ((d.objs[i].json &&
			     kaa__json_parse(d.objs[i].json, strlen(d.objs[i].json), 8 << 20, 128,
					     &obj, err, sizeof(err)) != KAA_OK))
				abort();
			yajl_tree_free(obj);
		}
	}
	kaa__desired_clear(&d);
	yajl_tree_free(v);
	return 0;
}
