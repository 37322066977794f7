/*
 * jwt.h - verification of owner access tokens signed with HMAC-SHA256
 * (JWT, RFC 7519, alg HS256 only): what an application's jwt-hs256 owner
 * verifier checks when a device attaches to an owner.
 *
 * Accepted: three base64url parts (no padding), at most KAA_JWT_MAX bytes;
 * header {"alg":"HS256"} (typ, if present, "JWT"; any other alg, "none"
 * included, is refused); a payload object with "sub" (the owner's external
 * id, 1..255 bytes) and "exp" (seconds since the epoch, required: a token
 * that never expires is refused), optional "nbf", "iat", "iss", "aud"
 * (string or array of strings). Signature compared in constant time.
 * Pure function: any thread; never logs.
 */
#ifndef KAA_JWT_H
#define KAA_JWT_H

#include <stddef.h>
#include <stdint.h>

#define KAA_JWT_MAX 8192
#define KAA_JWT_SUB_MAX 255

typedef enum kaa__jwt_result {
	KAA_JWT_OK = 0,
	KAA_JWT_MALFORMED,      /* not three base64url parts of JSON objects, bad claims */
	KAA_JWT_UNSUPPORTED,    /* alg other than HS256, or typ other than JWT */
	KAA_JWT_BAD_SIGNATURE,  /* HMAC does not match the secret */
	KAA_JWT_EXPIRED,        /* now >= exp + leeway */
	KAA_JWT_NOT_YET_VALID,  /* now < nbf - leeway */
	KAA_JWT_WRONG_ISSUER,   /* issuer configured and iss differs or is absent */
	KAA_JWT_WRONG_AUDIENCE, /* audience configured and not in aud */
} kaa__jwt_result;

typedef struct kaa__jwt_check {
	const void *secret; /* borrowed */
	size_t secret_len;
	int64_t now_s;        /* the verifier's clock */
	int64_t leeway_s;     /* allowed clock skew, >= 0 */
	const char *issuer;   /* NULL: not checked */
	const char *audience; /* NULL: not checked */
} kaa__jwt_check;

/*
 * Verifies token[0..len). On KAA_JWT_OK, sub (at least KAA_JWT_SUB_MAX + 1
 * bytes) receives the subject and *exp_s (optional) the expiry. The checks
 * run in the order of the enum above (the signature before any claim), so
 * a forged token never learns which claim failed.
 */
kaa__jwt_result kaa__jwt_hs256_verify(const char *token, size_t len, const kaa__jwt_check *chk,
				      char *sub, int64_t *exp_s);

/* "ok", "malformed token", ...; static. */
const char *kaa__jwt_result_str(kaa__jwt_result r);

#endif
