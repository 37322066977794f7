#include "auth/jwt.h"

#include "base/base64.h"
#include "json/json_merge.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <yajl/yajl_tree.h>

/* Decodes base64url without padding; returns the decoded length or -1 on
 * a character outside the alphabet, a length that cannot occur, or
 * non-zero trailing bits (so every token has exactly one encoding). */
static long b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	if (memchr(in, '=', n)) /* JWS parts are never padded */
		return -1;
	return kaa__b64_decode(in, n, out, cap, KAA__B64_URL);
}

/* Parses a base64url JSON object part; NULL when malformed. */
static yajl_val part_json(const char *p, size_t n)
{
	unsigned char buf[KAA_JWT_MAX];
	char err[64];
	yajl_val v = NULL;
	long m = b64url_decode(p, n, buf, sizeof(buf));
	if (m <= 0 || kaa__json_parse((const char *)buf, (size_t)m, KAA_JWT_MAX, 16, &v, err,
				      sizeof(err)) != 0)
		return NULL;
	if (!YAJL_IS_OBJECT(v)) {
		yajl_tree_free(v);
		return NULL;
	}
	return v;
}

/* A NumericDate: an integer, or a number with a fraction (truncated). */
static int numeric_date(yajl_val v, int64_t *out)
{
	if (!v)
		return 0;
	if (kaa__json_int64(v, out))
		return 1;
	if (YAJL_IS_NUMBER(v)) {
		double d = kaa__json_double(v);
		if (d > -9.0e15 && d < 9.0e15) {
			*out = (int64_t)d;
			return 1;
		}
	}
	return -1;
}

kaa__jwt_result kaa__jwt_hs256_verify(const char *token, size_t len, const kaa__jwt_check *chk,
				      char *sub, int64_t *exp_s)
{
	yajl_val hdr = NULL, claims = NULL;
	kaa__jwt_result r = KAA_JWT_MALFORMED;
	if (!token || !chk || !sub || len == 0 || len > KAA_JWT_MAX)
		return KAA_JWT_MALFORMED;
	const char *d1 = memchr(token, '.', len);
	const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
	if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
		return KAA_JWT_MALFORMED;
	size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1),
	       slen = len - (size_t)(d2 + 1 - token);

	hdr = part_json(token, hlen);
	if (!hdr)
		goto out;
	yajl_val alg = kaa__json_member(hdr, "alg"), typ = kaa__json_member(hdr, "typ");
	if (!YAJL_IS_STRING(alg) || strcmp(alg->u.string, "HS256") != 0 ||
	    (typ && (!YAJL_IS_STRING(typ) || strcmp(typ->u.string, "JWT") != 0))) {
		r = KAA_JWT_UNSUPPORTED;
		goto out;
	}
	unsigned char sig[64], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	long sl = b64url_decode(d2 + 1, slen, sig, sizeof(sig));
	if (sl != 32)
		goto out;
	if (!HMAC(EVP_sha256(), chk->secret, (int)chk->secret_len, (const unsigned char *)token,
		  hlen + 1 + plen, mac, &maclen) ||
	    maclen != 32 || CRYPTO_memcmp(mac, sig, 32) != 0) {
		r = KAA_JWT_BAD_SIGNATURE;
		goto out;
	}
	claims = part_json(d1 + 1, plen);
	if (!claims)
		goto out;
	yajl_val vsub = kaa__json_member(claims, "sub");
	int64_t exp = 0, nbf = 0, iat = 0;
	if (!YAJL_IS_STRING(vsub) || !*vsub->u.string || strlen(vsub->u.string) > KAA_JWT_SUB_MAX ||
	    numeric_date(kaa__json_member(claims, "exp"), &exp) != 1 ||
	    numeric_date(kaa__json_member(claims, "nbf"), &nbf) < 0 ||
	    numeric_date(kaa__json_member(claims, "iat"), &iat) < 0)
		goto out;
	int64_t leeway = chk->leeway_s > 0 ? chk->leeway_s : 0;
	if (chk->now_s >= exp + leeway) {
		r = KAA_JWT_EXPIRED;
		goto out;
	}
	if (kaa__json_member(claims, "nbf") && chk->now_s < nbf - leeway) {
		r = KAA_JWT_NOT_YET_VALID;
		goto out;
	}
	if (chk->issuer) {
		yajl_val iss = kaa__json_member(claims, "iss");
		if (!YAJL_IS_STRING(iss) || strcmp(iss->u.string, chk->issuer) != 0) {
			r = KAA_JWT_WRONG_ISSUER;
			goto out;
		}
	}
	if (chk->audience) {
		yajl_val aud = kaa__json_member(claims, "aud");
		int found = YAJL_IS_STRING(aud) && strcmp(aud->u.string, chk->audience) == 0;
		for (size_t i = 0; YAJL_IS_ARRAY(aud) && i < aud->u.array.len && !found; i++) {
			yajl_val a = aud->u.array.values[i];
			found = YAJL_IS_STRING(a) && strcmp(a->u.string, chk->audience) == 0;
		}
		if (!found) {
			r = KAA_JWT_WRONG_AUDIENCE;
			goto out;
		}
	}
	strcpy(sub, vsub->u.string);
	if (exp_s)
		*exp_s = exp;
	r = KAA_JWT_OK;
out:
	yajl_tree_free(hdr);
	yajl_tree_free(claims);
	return r;
}

const char *kaa__jwt_result_str(kaa__jwt_result r)
{
	switch (r) {
	case KAA_JWT_OK: return "ok";
	case KAA_JWT_MALFORMED: return "malformed token";
	case KAA_JWT_UNSUPPORTED: return "unsupported algorithm or type";
	case KAA_JWT_BAD_SIGNATURE: return "bad signature";
	case KAA_JWT_EXPIRED: return "token expired";
	case KAA_JWT_NOT_YET_VALID: return "token not yet valid";
	case KAA_JWT_WRONG_ISSUER: return "wrong issuer";
	case KAA_JWT_WRONG_AUDIENCE: return "wrong audience";
	}
	return "unknown";
}
