/*
 * Proof of possession (lib/proto/hello_proof.c): a proof verifies for its
 * nonce, key and application only; anything else is refused.
 */
#include "base/error.h"
#include "proto/hello_proof.h"

#include "cu_main.h"

#include <CUnit/Basic.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

static size_t der(EVP_PKEY *k, uint8_t *out)
{
	uint8_t *p = out;
	int n = i2d_PUBKEY(k, &p);
	CU_ASSERT_FATAL(n > 0 && n < 512);
	return (size_t)n;
}

static void test_nonce(void)
{
	uint8_t secret[KAA__PROOF_SECRET_BYTES] = {1, 2, 3}, other[KAA__PROOF_SECRET_BYTES] = {9};
	uint8_t a[32], b[32], c[32], d[32];
	CU_ASSERT_EQUAL(kaa__proof_nonce(secret, 42, a), KAA_OK);
	CU_ASSERT_EQUAL(kaa__proof_nonce(secret, 42, b), KAA_OK);
	CU_ASSERT_EQUAL(kaa__proof_nonce(secret, 43, c), KAA_OK);
	CU_ASSERT_EQUAL(kaa__proof_nonce(other, 42, d), KAA_OK);
	CU_ASSERT_EQUAL(memcmp(a, b, 32), 0); /* nothing stored: recomputed */
	CU_ASSERT_NOT_EQUAL(memcmp(a, c, 32), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a, d, 32), 0);
}

static void test_sign_verify(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
	uint8_t pub[512], pub2[512], sig[KAA__PROOF_SIG_MAX], n1[32], n2[32];
	uint8_t secret[KAA__PROOF_SECRET_BYTES] = {7};
	size_t pl, pl2, sl;
	CU_ASSERT_PTR_NOT_NULL_FATAL(k);
	CU_ASSERT_PTR_NOT_NULL_FATAL(k2);
	pl = der(k, pub);
	pl2 = der(k2, pub2);
	kaa__proof_nonce(secret, 1, n1);
	kaa__proof_nonce(secret, 2, n2);
	CU_ASSERT_EQUAL_FATAL(kaa__proof_sign(k, n1, pub, pl, "app-1", sig, sizeof(sig), &sl),
			      KAA_OK);
	CU_ASSERT(sl > 60 && sl <= 72);
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n1, "app-1", sig, sl), KAA_OK);
	/* replayed on another connection, for another application, for
	 * another key: refused */
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n2, "app-1", sig, sl), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n1, "app-2", sig, sl), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__proof_verify(pub2, pl2, n1, "app-1", sig, sl), KAA_ERR_INVAL);
	/* one flipped bit, a cut signature, none, garbage key bytes */
	sig[sl / 2] ^= 1;
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n1, "app-1", sig, sl), KAA_ERR_INVAL);
	sig[sl / 2] ^= 1;
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n1, "app-1", sig, sl - 1), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n1, "app-1", sig, 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__proof_verify((const uint8_t *)"junk", 4, n1, "app-1", sig, sl),
			KAA_ERR_INVAL);
	/* the key with a trailing byte is another identity: refused */
	pub[pl] = 0;
	CU_ASSERT_EQUAL(kaa__proof_sign(k, n1, pub, pl + 1, "app-1", sig, sizeof(sig), &sl),
			KAA_OK);
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl + 1, n1, "app-1", sig, sl), KAA_ERR_INVAL);
	/* too small a buffer */
	CU_ASSERT_EQUAL(kaa__proof_sign(k, n1, pub, pl, "app-1", sig, 16, &sl), KAA_ERR_INVAL);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

static void test_other_curves(void)
{
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	uint8_t pub[512], sig[256], n[32] = {0};
	size_t pl, sl;
	CU_ASSERT_PTR_NOT_NULL_FATAL(p384);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ed);
	CU_ASSERT_EQUAL(kaa__proof_sign(p384, n, pub, 1, "a", sig, sizeof(sig), &sl),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__proof_sign(ed, n, pub, 1, "a", sig, sizeof(sig), &sl), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__proof_sign(NULL, n, pub, 1, "a", sig, sizeof(sig), &sl),
			KAA_ERR_INVAL);
	/* a P-384 signature over the right message still is not a proof */
	pl = der(p384, pub);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	sl = sizeof(sig);
	CU_ASSERT_EQUAL(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, p384), 1);
	CU_ASSERT_EQUAL(EVP_DigestSign(md, sig, &sl, (const uint8_t *)"x", 1), 1);
	EVP_MD_CTX_free(md);
	CU_ASSERT_EQUAL(kaa__proof_verify(pub, pl, n, "a", sig, sl > 128 ? 128 : sl),
			KAA_ERR_INVAL);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
}

int main(void)
{
	static const kaa__cu_test tests[] = {
		{"nonce", test_nonce},
		{"sign and verify", test_sign_verify},
		{"other curves", test_other_curves},
	};
	return kaa__cu_run("hello_proof", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
