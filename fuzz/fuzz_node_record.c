// fuzz-sources: lib/base/alloc.c lib/coord/node_record.c lib/base/error.c
// fuzz-pkgs: yajl
/*
 * Node records come from etcd, written by any process with access to the
 * cluster's prefix: decoding must reject anything malformed without
 * crashing, and whatever it accepts must encode and decode back the same.
 */
#include "base/error.h"
#include "coord/node_record.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kaa__node_record r, r2;
	char *json = NULL, *json2 = NULL;
	size_t len = 0, len2 = 0;

	if (kaa__node_record_decode((const char *)data, size, &r) != KAA_OK)
		return 0;
	if (kaa__node_record_encode(&r, &json, &len) != KAA_OK)
		abort();
	if (kaa__node_record_decode(json, len, &r2) != KAA_OK)
		abort();
	if (kaa__node_record_encode(&r2, &json2, &len2) != KAA_OK || len != len2 ||
	    memcmp(json, json2, len) != 0)
		abort();
	free(json);
	free(json2);
	kaa__node_record_clear(&r);
	kaa__node_record_clear(&r2);
	return 0;
}
