// fuzz-sources: lib/base/alloc.c lib/coord/rebalance.c lib/json/json_merge.c lib/base/error.c
// fuzz-pkgs: yajl libcrypto
/*
 * Rebalance plans are read from etcd by every operations node: any bytes
 * must decode or be refused, and what decodes must encode and decode back
 * to the same plan.
 */
#include "base/error.h"
#include "coord/rebalance.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static kaa__rebalance_plan p, q;
	char *json = NULL;
	size_t len = 0;
	if (kaa__rebalance_decode((const char *)data, size, &p) != KAA_OK)
		return 0;
	if (kaa__rebalance_encode(&p, &json, &len) != KAA_OK ||
	    kaa__rebalance_decode(json, len, &q) != KAA_OK || q.seq != p.seq ||
	    q.created_ms != p.created_ms || q.n_moves != p.n_moves)
		abort();
	for (size_t i = 0; i < p.n_moves; i++)
		if (strcmp(p.moves[i].from, q.moves[i].from) != 0 ||
		    strcmp(p.moves[i].to, q.moves[i].to) != 0 ||
		    p.moves[i].sessions != q.moves[i].sessions)
			abort();
	free(json);
	kaa__rebalance_plan_clear(&p);
	kaa__rebalance_plan_clear(&q);
	return 0;
}
