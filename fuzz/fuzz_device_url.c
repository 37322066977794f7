// fuzz-sources: lib/proto/device_url.c lib/base/error.c
/*
 * Device URLs come from flags, node records in etcd, bootstrap answers and
 * Redirect frames. Properties checked: parsing never reads past the input;
 * a URL that parses formats to text that parses again to the same value
 * (so a node advertises exactly what a device accepts).
 */
#include "base/error.h"
#include "proto/device_url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	kaa__device_url u, v;
	char text[KAA__URL_MAX];

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	for (unsigned flags = 1; flags < 8; flags++) {
		if (kaa__device_url_parse(s, flags, &u) != KAA_OK)
			continue;
		if (kaa__device_url_format(&u, text, sizeof(text)) != KAA_OK)
			abort();
		if (kaa__device_url_parse(text, flags & ~(unsigned)KAA__URL_BARE, &v) != KAA_OK &&
		    kaa__device_url_parse(text, KAA__URL_WS | KAA__URL_HTTP, &v) != KAA_OK)
			abort();
		if (memcmp(&u, &v, sizeof(u)) != 0)
			abort();
	}
	free(s);
	return 0;
}
