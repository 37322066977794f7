#include "proto/hello_proof.h"

#include "base/error.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <string.h>

static const char label[] = "kaa.v2 hello proof"; /* and its NUL */

#define MSG_BYTES (sizeof(label) + KAA__PROOF_NONCE_BYTES + 2 * SHA256_DIGEST_LENGTH)

static void message(uint8_t out[MSG_BYTES], const uint8_t nonce[KAA__PROOF_NONCE_BYTES],
		    const uint8_t *pub, size_t publen, const char *app_token)
{
	uint8_t *p = out;
	memcpy(p, label, sizeof(label));
	p += sizeof(label);
	memcpy(p, nonce, KAA__PROOF_NONCE_BYTES);
	p += KAA__PROOF_NONCE_BYTES;
	SHA256(pub, publen, p);
	p += SHA256_DIGEST_LENGTH;
	SHA256((const uint8_t *)app_token, strlen(app_token), p);
}

int kaa__proof_nonce(const uint8_t secret[KAA__PROOF_SECRET_BYTES], uint64_t session_id,
		     uint8_t nonce[KAA__PROOF_NONCE_BYTES])
{
	uint8_t id[8];
	unsigned int n = 0;
	for (int i = 0; i < 8; i++)
		id[i] = (uint8_t)(session_id >> (56 - 8 * i));
	if (!HMAC(EVP_sha256(), secret, KAA__PROOF_SECRET_BYTES, id, sizeof(id), nonce, &n) ||
	    n != KAA__PROOF_NONCE_BYTES)
		return KAA_ERR_INTERNAL;
	return KAA_OK;
}

/* An EC key on P-256, the only kind a proof may come from. */
static int is_p256(EVP_PKEY *k)
{
	char group[64];
	size_t len = 0;
	if (EVP_PKEY_get_base_id(k) != EVP_PKEY_EC)
		return 0;
	if (!EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					    &len))
		return 0;
	return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

int kaa__proof_sign(EVP_PKEY *key, const uint8_t nonce[KAA__PROOF_NONCE_BYTES], const uint8_t *pub,
		    size_t publen, const char *app_token, uint8_t *sig, size_t cap, size_t *siglen)
{
	uint8_t msg[MSG_BYTES];
	EVP_MD_CTX *md = NULL;
	size_t n = 0;
	int rc = KAA_ERR_INTERNAL;

	*siglen = 0;
	if (!key || !is_p256(key))
		return KAA_ERR_INVAL;
	message(msg, nonce, pub, publen, app_token);
	md = EVP_MD_CTX_new();
	if (!md)
		return KAA_ERR_NOMEM;
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, NULL, &n, msg, sizeof(msg)) != 1)
		goto out;
	if (n > cap) {
		rc = KAA_ERR_INVAL;
		goto out;
	}
	if (EVP_DigestSign(md, sig, &n, msg, sizeof(msg)) != 1)
		goto out;
	*siglen = n;
	rc = KAA_OK;
out:
	if (rc != KAA_OK)
		ERR_clear_error(); /* nothing of ours may leave errors to TLS */
	EVP_MD_CTX_free(md);
	return rc;
}

int kaa__proof_verify(const uint8_t *pub, size_t publen,
		      const uint8_t nonce[KAA__PROOF_NONCE_BYTES], const char *app_token,
		      const uint8_t *sig, size_t siglen)
{
	uint8_t msg[MSG_BYTES];
	const uint8_t *p = pub;
	EVP_PKEY *k = NULL;
	EVP_MD_CTX *md = NULL;
	int rc = KAA_ERR_INVAL;

	if (!pub || publen == 0 || publen > 4096 || !sig || siglen == 0 ||
	    siglen > KAA__PROOF_SIG_MAX)
		return KAA_ERR_INVAL;
	k = d2i_PUBKEY(NULL, &p, (long)publen);
	/* the whole of pub must be the key: trailing bytes would let two
	 * different public_key values (two identities) share one key */
	if (!k || p != pub + publen || !is_p256(k))
		goto out;
	message(msg, nonce, pub, publen, app_token);
	md = EVP_MD_CTX_new();
	if (!md) {
		rc = KAA_ERR_NOMEM;
		goto out;
	}
	if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
	    EVP_DigestVerify(md, sig, siglen, msg, sizeof(msg)) == 1)
		rc = KAA_OK;
out:
	if (rc != KAA_OK)
		ERR_clear_error(); /* a forged proof must not leave errors to TLS */
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(k);
	return rc;
}
