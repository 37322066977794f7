// fuzz-sources: lib/proto/endpoint_codec.c lib/base/error.c build/gen/cluster.pb-c.c build/gen/endpoint.pb-c.c
// fuzz-pkgs: libprotobuf-c
/*
 * Internode frames come from other nodes (or anyone who reaches the
 * internode port): decoding as internode.c does (unpack, then drop unknown
 * fields and refuse field number 0) must refuse or accept any bytes, and
 * what it accepts must pack and unpack to the same bytes.
 */
#include "cluster.pb-c.h"
#include "proto/endpoint_codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 256 * 1024)
		return 0;
	Kaa__Cluster__V1__InternodeFrame *f =
		kaa__cluster__v1__internode_frame__unpack(NULL, size, data);
	if (!f)
		return 0;
	if (kaa__proto_strip_unknown(&f->base) < 0) { /* refused, as internode.c does */
		kaa__cluster__v1__internode_frame__free_unpacked(f, NULL);
		return 0;
	}
	size_t len = kaa__cluster__v1__internode_frame__get_packed_size(f);
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		abort();
	if (kaa__cluster__v1__internode_frame__pack(f, buf) != len)
		abort();
	Kaa__Cluster__V1__InternodeFrame *g =
		kaa__cluster__v1__internode_frame__unpack(NULL, len, buf);
	if (!g || kaa__cluster__v1__internode_frame__get_packed_size(g) != len)
		abort();
	uint8_t *buf2 = malloc(len ? len : 1);
	if (!buf2 || kaa__cluster__v1__internode_frame__pack(g, buf2) != len ||
	    memcmp(buf, buf2, len) != 0)
		abort();
	free(buf);
	free(buf2);
	kaa__cluster__v1__internode_frame__free_unpacked(f, NULL);
	kaa__cluster__v1__internode_frame__free_unpacked(g, NULL);
	return 0;
}
