// fuzz-sources: lib/base/base64.c lib/base/clock.c sdk/src/sdk_bootstrap.c sdk/src/sdk_json.c sdk/src/sdk_alloc.c lib/base/buf.c sdk/src/sdk_random.c lib/base/error.c lib/proto/device_url.c
// fuzz-pkgs: libcrypto libssl
/*
 * A device parses the bootstrap server's answer (and host:port strings from
 * its profile): any bytes must give nodes with a host, a port and a
 * positive weight, or an error, within the caller's bounds.
 */
#include "base/error.h"
#include "sdk_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kaa__node_addr nodes[8];
	size_t n = 99;
	if (kaa__sdk_bootstrap_parse((const char *)data, size, nodes, 8, &n) == KAA_OK) {
		if (n > 8)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!nodes[i].host[0] || nodes[i].port == 0 || nodes[i].weight < 1 ||
			    !memchr(nodes[i].host, 0, sizeof(nodes[i].host)))
				abort();
		if (n > 0) {
			uint64_t rng = 42;
			if (kaa__sdk_pick_weighted(nodes, n, 0, &rng) >= n)
				abort();
		}
	}
	char s[300], host[KAA__HOST_MAX];
	uint16_t port = 0;
	size_t k = size < sizeof(s) - 1 ? size : sizeof(s) - 1;
	memcpy(s, data, k);
	s[k] = '\0';
	if (kaa__sdk_parse_hostport(s, host, sizeof(host), &port) == KAA_OK &&
	    (port == 0 || !memchr(host, 0, sizeof(host))))
		abort();
	return 0;
}
