// fuzz-sources: lib/base/alloc.c lib/base/base64.c lib/base/clock.c lib/auth/jwt.c lib/json/json_merge.c lib/base/error.c
// fuzz-pkgs: yajl libcrypto
/*
 * Owner access tokens arrive from devices: any bytes must give a result,
 * never a crash or an out-of-bounds read, and only a token signed with the
 * secret may verify.
 */
#include "auth/jwt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char secret[] = "fuzz-secret-fuzz-secret-fuzz-sec";
	char sub[KAA_JWT_SUB_MAX + 1];
	int64_t exp = 0;
	kaa__jwt_check chk = {.secret = secret,
			      .secret_len = sizeof(secret) - 1,
			      .now_s = 1000,
			      .leeway_s = 5,
			      .issuer = "iss",
			      .audience = "aud"};
	kaa__jwt_result r = kaa__jwt_hs256_verify((const char *)data, size, &chk, sub, &exp);
	if (r == KAA_JWT_OK && (strlen(sub) == 0 || strlen(sub) > KAA_JWT_SUB_MAX || exp <= 995))
		abort();
	return 0;
}
