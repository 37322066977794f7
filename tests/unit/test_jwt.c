/*
 * Owner access tokens (lib/auth/jwt.c): HS256 JWTs built here with OpenSSL, and
 * one independent token (jwt.io's published example) to pin the HMAC input.
 */
#include "cu_main.h"
#include "base/error.h"
#include "auth/jwt.h"

#include <CUnit/Basic.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

static const char SECRET[] = "0123456789abcdef0123456789abcdef";
#define NOW 1800000000LL

static void b64url(const void *data, size_t n, char *out)
{
	int w = EVP_EncodeBlock((unsigned char *)out, data, (int)n);
	while (w > 0 && out[w - 1] == '=')
		w--;
	out[w] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
}

/* header and claims JSON -> a signed token in out (static buffer). */
static const char *mint(const char *header, const char *claims, const char *secret)
{
	static char out[4096];
	char h[1024], c[2048], s[128];
	unsigned char mac[32];
	unsigned int maclen = 0;
	b64url(header, strlen(header), h);
	b64url(claims, strlen(claims), c);
	snprintf(out, sizeof(out), "%s.%s", h, c);
	HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)out, strlen(out), mac,
	     &maclen);
	b64url(mac, 32, s);
	strcat(out, ".");
	strcat(out, s);
	return out;
}

static kaa__jwt_result verify(const char *tok, const char *iss, const char *aud, char *sub)
{
	kaa__jwt_check chk = {.secret = SECRET,
			      .secret_len = strlen(SECRET),
			      .now_s = NOW,
			      .leeway_s = 30,
			      .issuer = iss,
			      .audience = aud};
	return kaa__jwt_hs256_verify(tok, strlen(tok), &chk, sub, NULL);
}

#define HS "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static void test_valid(void)
{
	char sub[KAA_JWT_SUB_MAX + 1];
	int64_t exp = 0;
	const char *t =
		mint(HS, "{\"sub\":\"owner-7\",\"exp\":1800000100,\"iss\":\"acme\"}", SECRET);
	kaa__jwt_check chk = {.secret = SECRET, .secret_len = strlen(SECRET), .now_s = NOW};
	CU_ASSERT_EQUAL(kaa__jwt_hs256_verify(t, strlen(t), &chk, sub, &exp), KAA_JWT_OK);
	CU_ASSERT_STRING_EQUAL(sub, "owner-7");
	CU_ASSERT_EQUAL(exp, 1800000100);
	CU_ASSERT_EQUAL(verify(t, "acme", NULL, sub), KAA_JWT_OK);
	/* fractional dates and aud arrays are valid JWT */
	t = mint("{\"alg\":\"HS256\"}",
		 "{\"sub\":\"o\",\"exp\":1800000100.5,\"nbf\":1799999999,\"aud\":[\"x\",\"kaa\"]}",
		 SECRET);
	CU_ASSERT_EQUAL(verify(t, NULL, "kaa", sub), KAA_JWT_OK);
}

static void test_independent_token(void)
{
	/* jwt.io's example, secret "your-256-bit-secret": the signature must
	 * verify (then the missing exp is refused as malformed), and fail with
	 * another secret. */
	const char *t = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6"
			"IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_"
			"adQssw5c";
	char sub[KAA_JWT_SUB_MAX + 1];
	kaa__jwt_check chk = {.secret = "your-256-bit-secret", .secret_len = 19, .now_s = NOW};
	CU_ASSERT_EQUAL(kaa__jwt_hs256_verify(t, strlen(t), &chk, sub, NULL), KAA_JWT_MALFORMED);
	chk.secret = "your-256-bit-secreT";
	CU_ASSERT_EQUAL(kaa__jwt_hs256_verify(t, strlen(t), &chk, sub, NULL),
			KAA_JWT_BAD_SIGNATURE);
}

static void test_refusals(void)
{
	char sub[KAA_JWT_SUB_MAX + 1], buf[4096];
	const char *ok = "{\"sub\":\"o\",\"exp\":1800000100}";
	CU_ASSERT_EQUAL(verify(mint("{\"alg\":\"none\"}", ok, SECRET), NULL, NULL, sub),
			KAA_JWT_UNSUPPORTED);
	CU_ASSERT_EQUAL(verify(mint("{\"alg\":\"HS512\"}", ok, SECRET), NULL, NULL, sub),
			KAA_JWT_UNSUPPORTED);
	CU_ASSERT_EQUAL(
		verify(mint("{\"alg\":\"HS256\",\"typ\":\"JWE\"}", ok, SECRET), NULL, NULL, sub),
		KAA_JWT_UNSUPPORTED);
	CU_ASSERT_EQUAL(verify(mint(HS, ok, "another-secret-of-32-bytes-length"), NULL, NULL, sub),
			KAA_JWT_BAD_SIGNATURE);
	/* tampered payload, original signature */
	snprintf(buf, sizeof(buf), "%s", mint(HS, ok, SECRET));
	char *dot = strchr(buf, '.');
	dot[1] = dot[1] == 'e' ? 'f' : 'e';
	CU_ASSERT_EQUAL(verify(buf, NULL, NULL, sub), KAA_JWT_BAD_SIGNATURE);
	/* claims */
	CU_ASSERT_EQUAL(
		verify(mint(HS, "{\"sub\":\"o\",\"exp\":1799999970}", SECRET), NULL, NULL, sub),
		KAA_JWT_EXPIRED); /* exp + leeway == now */
	CU_ASSERT_EQUAL(
		verify(mint(HS, "{\"sub\":\"o\",\"exp\":1799999971}", SECRET), NULL, NULL, sub),
		KAA_JWT_OK); /* within the leeway */
	CU_ASSERT_EQUAL(
		verify(mint(HS, "{\"sub\":\"o\",\"exp\":1900000000,\"nbf\":1800000031}", SECRET),
		       NULL, NULL, sub),
		KAA_JWT_NOT_YET_VALID);
	CU_ASSERT_EQUAL(verify(mint(HS, ok, SECRET), "acme", NULL, sub), KAA_JWT_WRONG_ISSUER);
	CU_ASSERT_EQUAL(
		verify(mint(HS, "{\"sub\":\"o\",\"exp\":1800000100,\"iss\":\"evil\"}", SECRET),
		       "acme", NULL, sub),
		KAA_JWT_WRONG_ISSUER);
	CU_ASSERT_EQUAL(
		verify(mint(HS, "{\"sub\":\"o\",\"exp\":1800000100,\"aud\":[\"x\"]}", SECRET), NULL,
		       "kaa", sub),
		KAA_JWT_WRONG_AUDIENCE);
	CU_ASSERT_EQUAL(verify(mint(HS, "{\"exp\":1800000100}", SECRET), NULL, NULL, sub),
			KAA_JWT_MALFORMED); /* no sub */
	CU_ASSERT_EQUAL(verify(mint(HS, "{\"sub\":\"o\"}", SECRET), NULL, NULL, sub),
			KAA_JWT_MALFORMED); /* no exp */
	CU_ASSERT_EQUAL(
		verify(mint(HS, "{\"sub\":\"o\",\"exp\":\"soon\"}", SECRET), NULL, NULL, sub),
		KAA_JWT_MALFORMED);
	CU_ASSERT_EQUAL(verify(mint(HS, "[1]", SECRET), NULL, NULL, sub), KAA_JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "{\"sub\":\"%0300d\",\"exp\":1800000100}", 0);
	CU_ASSERT_EQUAL(verify(mint(HS, buf, SECRET), NULL, NULL, sub), KAA_JWT_MALFORMED);
}

static void test_malformed_encoding(void)
{
	char sub[KAA_JWT_SUB_MAX + 1], buf[4096];
	const char *t = mint(HS, "{\"sub\":\"o\",\"exp\":1800000100}", SECRET);
	const char *bad[] = {"", ".", "..", "a.b", "a.b.c.d", "!!!.b.c", "e30=.e30.x", "W10.e30.x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_EQUAL(verify(bad[i], NULL, NULL, sub), KAA_JWT_MALFORMED);
	CU_ASSERT_EQUAL(verify("e30.e30.", NULL, NULL, sub), KAA_JWT_UNSUPPORTED); /* no alg */
	snprintf(buf, sizeof(buf), "%s.x", t); /* a fourth part */
	CU_ASSERT_EQUAL(verify(buf, NULL, NULL, sub), KAA_JWT_MALFORMED);
	snprintf(buf, sizeof(buf), "%s=", t); /* padding */
	CU_ASSERT_EQUAL(verify(buf, NULL, NULL, sub), KAA_JWT_MALFORMED);
	static char huge[KAA_JWT_MAX + 10];
	memset(huge, 'a', sizeof(huge) - 1);
	huge[100] = '.';
	huge[200] = '.';
	CU_ASSERT_EQUAL(verify(huge, NULL, NULL, sub), KAA_JWT_MALFORMED);
	/* NULL arguments */
	kaa__jwt_check chk = {.secret = SECRET, .secret_len = strlen(SECRET), .now_s = NOW};
	CU_ASSERT_EQUAL(kaa__jwt_hs256_verify(NULL, 0, &chk, sub, NULL), KAA_JWT_MALFORMED);
	CU_ASSERT_EQUAL(kaa__jwt_hs256_verify(t, strlen(t), NULL, sub, NULL), KAA_JWT_MALFORMED);
	CU_ASSERT_STRING_EQUAL(kaa__jwt_result_str(KAA_JWT_EXPIRED), "token expired");
}

static const kaa__cu_test tests[] = {
	{"valid tokens", test_valid},
	{"independent token", test_independent_token},
	{"refusals", test_refusals},
	{"malformed encodings", test_malformed_encoding},
};

int main(void)
{
	return kaa__cu_run("jwt", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
