/*
 * sdk_gen.h - SDK generation: a tar archive holding kaa_profile.h, the
 * header a device build compiles against (sdk/ reads it), generated from an
 * SDK profile: bootstrap addresses, application token, SDK profile id,
 * schema versions, and the default configuration derived from the
 * configuration schema.
 * Pure functions: any thread.
 */
#ifndef KAA_CONTROL_SDK_GEN_H
#define KAA_CONTROL_SDK_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef struct kaa__sdk_profile_info {
	int64_t profile_id;
	const char *profile_name;
	const char *app_token;
	const char *bootstrap_json;       /* JSON array of "host:port" strings, or NULL */
	const char *schema_versions_json; /* JSON object kind -> version */
	const char *default_config_json;  /* canonical JSON, or NULL */
} kaa__sdk_profile_info;

/* *out is the malloc'd header text. KAA_ERR_INVAL when bootstrap or schema
 * versions are not of the documented shape (err says which), KAA_ERR_NOMEM. */
int kaa__sdk_profile_header(const kaa__sdk_profile_info *info, char **out, size_t *len, char *err,
			    size_t errlen);
/* A ustar archive with one regular file name/data; *out malloc'd. */
int kaa__tar_single(const char *name, const char *data, size_t len, int64_t mtime_s, char **out,
		    size_t *out_len);

#endif
