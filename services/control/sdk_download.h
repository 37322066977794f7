/*
 * sdk_download.h - GET /api/v1/applications/{app}/sdk-profiles/{profile}/sdk:
 * a tar holding the kaa_profile.h generated for one SDK profile (sdk_gen.h),
 * with the application token, the profile's bootstrap servers and schema
 * versions, and the default configuration of the configuration schema
 * version the profile names.
 */
#ifndef KAA_CONTROL_SDK_DOWNLOAD_H
#define KAA_CONTROL_SDK_DOWNLOAD_H

#include "control/rest_auth.h"
#include "control/router.h"
#include "http/http_server.h"
#include "store/meta_store.h"

/* Answers resp: 200 application/x-tar (attachment kaa-sdk.tar); 404 for an
 * application outside p's tenant or a profile outside the application; 403
 * for a role that may not read SDK profiles; 409 when the profile names a
 * configuration schema version that does not exist or has no default
 * document, or cannot be rendered; store errors as kaa__reply_store_error.
 * store, p and params are borrowed. Any thread. */
void kaa__sdk_download(kaa__meta_store *store, const kaa__principal *p,
		       const kaa__route_params *params, kaa__http_response *resp);

#endif
