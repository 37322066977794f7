// fuzz-sources: lib/base/base64.c lib/base/clock.c sdk/src/sdk_json.c sdk/src/sdk_alloc.c lib/base/buf.c lib/base/error.c
// fuzz-pkgs: libcrypto
/*
 * The SDK parses configuration documents and merge patches sent by the
 * server: any bytes must parse or be refused (bounded size and depth), the
 * canonical form must be a fixed point, and a merge patch of two parsed
 * documents must not crash.
 */
#include "base/error.h"
#include "sdk_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kaa__sj *v = NULL, *w = NULL, *a = NULL, *b = NULL, *m = NULL;
	char *c1 = NULL, *c2 = NULL;
	size_t l1 = 0, l2 = 0;
	if (kaa__sj_parse((const char *)data, size, 64 * 1024, 64, &v) == KAA_OK) {
		if (kaa__sj_canonical(v, &c1, &l1) != KAA_OK)
			abort();
		if (kaa__sj_parse(c1, l1, 1 << 20, 64, &w) != KAA_OK ||
		    kaa__sj_canonical(w, &c2, &l2) != KAA_OK || l1 != l2 || memcmp(c1, c2, l1) != 0)
			abort();
	}
	/* the two halves as target and patch */
	size_t half = size / 2;
	if (kaa__sj_parse((const char *)data, half, 32 * 1024, 64, &a) == KAA_OK &&
	    kaa__sj_parse((const char *)data + half, size - half, 32 * 1024, 64, &b) == KAA_OK &&
	    kaa__sj_merge_patch(a, b, &m) == KAA_OK) {
		char *cm = NULL;
		size_t lm = 0;
		if (kaa__sj_canonical(m, &cm, &lm) != KAA_OK)
			abort();
		free(cm);
	}
	kaa__sj_free(v);
	kaa__sj_free(w);
	kaa__sj_free(a);
	kaa__sj_free(b);
	kaa__sj_free(m);
	free(c1);
	free(c2);
	return 0;
}
