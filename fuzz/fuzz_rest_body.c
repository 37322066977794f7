// fuzz-sources: lib/base/alloc.c lib/base/base64.c lib/base/clock.c services/control/rest_body.c lib/json/json_merge.c lib/auth/auth.c lib/base/error.c lib/base/log.c
// fuzz-pkgs: yajl openssl
/*
 * REST request bodies come from any client holding credentials: decoding
 * must never crash, and must either fail with a status, code and message
 * or produce an object whose fields hold what the table says.
 */
#include "control/rest_body.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OFF(m) offsetof(kaa__meta_obj, m)

/* Every field type except passwords (a 100k-iteration PBKDF2 per input). */
static const kaa__rest_field fields[] = {
	{"name", KAA_RF_STR, OFF(name), KAA_RF_CREATE | KAA_RF_UPDATE | KAA_RF_REQUIRED},
	{"weight", KAA_RF_INT, OFF(weight), KAA_RF_CREATE | KAA_RF_UPDATE},
	{"mandatory", KAA_RF_BOOL, OFF(mandatory), KAA_RF_CREATE},
	{"body", KAA_RF_JSON, OFF(body), KAA_RF_CREATE | KAA_RF_UPDATE},
	{"groupIds", KAA_RF_IDS, OFF(group_ids), KAA_RF_CREATE},
	{"ttlSeconds", KAA_RF_TTL, OFF(expires_ms), KAA_RF_CREATE},
	{"seq", KAA_RF_INT, OFF(seq), KAA_RF_READ},
	{NULL, 0, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int flag = KAA_RF_CREATE; flag <= KAA_RF_UPDATE; flag++) {
		kaa__meta_obj o = {0};
		kaa__rest_body b;
		kaa__rest_error e;
		int rc = kaa__rest_parse_body((const char *)data, size, fields, flag, &o, &b, &e);
		if (rc != 0) {
			if ((e.status != 400 && e.status != 413) || !e.code || !e.message[0])
				abort();
		} else {
			if (flag == KAA_RF_CREATE && !o.name)
				abort(); /* required */
			if (o.n_group_ids > 256)
				abort();
			for (size_t i = 0; i < o.n_group_ids; i++)
				if (o.group_ids[i] < 1)
					abort();
			if (b.has_ttl && (b.ttl_s < 1 || b.ttl_s > 365LL * 24 * 3600))
				abort();
			if (o.body && strlen(o.body) == 0)
				abort();
		}
		kaa__rest_body_free(&b);
	}
	return 0;
}
