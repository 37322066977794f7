// fuzz-sources: lib/proto/endpoint_codec.c lib/base/error.c build/gen/endpoint.pb-c.c
// fuzz-pkgs: libprotobuf-c
/*
 * Device frames come from any device on the network: the bounded decoder
 * must reject anything malformed or oversized without crashing, and
 * whatever it accepts must encode, decode again and encode to the same
 * bytes. Rejections must carry an Error code and encode as an Error frame.
 * Seeds: tests/unit/test_endpoint_codec with KAA_WRITE_CORPUS=DIR.
 */
#include "proto/endpoint_codec.h"
#include "base/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Kaa__Endpoint__V1__Frame *f = NULL, *g = NULL;
	kaa__frame_error err;
	uint8_t *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	int rc;

	rc = kaa__frame_decode(data, size, NULL, &f, &err);
	if (rc != KAA_OK) {
		if (f || err.err != rc || err.code == 0 ||
		    !memchr(err.message, 0, sizeof(err.message)))
			abort();
		if (kaa__frame_encode_error(&err, &a, &alen) != KAA_OK)
			abort();
		free(a);
		return 0;
	}
	if (kaa__frame_encode(f, &a, &alen) != KAA_OK)
		abort();
	if (kaa__frame_decode(a, alen, NULL, &g, &err) != KAA_OK)
		abort();
	if (kaa__frame_encode(g, &b, &blen) != KAA_OK || alen != blen || memcmp(a, b, alen) != 0)
		abort();
	if (f->body_case != g->body_case || f->request_id != g->request_id)
		abort();
	free(a);
	free(b);
	kaa__frame_free(f);
	kaa__frame_free(g);
	return 0;
}
