// fuzz-sources: services/control/console_files.c services/control/router.c services/control/rest_session.c lib/base/alloc.c lib/base/base64.c lib/base/clock.c lib/auth/auth.c lib/base/error.c lib/base/log.c lib/http/http_server.c lib/base/buf.c
// fuzz-pkgs: yajl openssl
/*
 * Request paths under /console/ and Cookie headers come from any client,
 * before authentication: the path check must never accept a name that
 * leaves the console directory, and the cookie parser must never read or
 * write out of bounds.
 */
#include "control/console_files.h"
#include "control/rest_session.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 10), out[256], val[KAA_SESSION_TOKEN_LEN + 1];
	memcpy(in, "/console/", 9);
	memcpy(in + 9, data, size);
	in[size + 9] = '\0';
	if (kaa__console_rel_path(in, out, sizeof(out))) {
		if (out[0] == '/' || out[0] == '.' || strstr(out, "/.") || strstr(out, "//") ||
		    strchr(out, '\\'))
			abort();
		size_t n = strlen(out);
		if (n && out[n - 1] == '/')
			abort();
	}
	if (kaa__cookie_value(in + 9, KAA_SESSION_COOKIE, val, sizeof(val)) &&
	    (val[0] == '\0' || strlen(val) > KAA_SESSION_TOKEN_LEN))
		abort();
	free(in);
	return 0;
}
