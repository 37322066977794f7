/*
 * The one base64 codec (lib/base/base64.c): RFC 4648 section 10 vectors in
 * both alphabets, OpenSSL's encoder as an independent reference on random
 * bytes, and every refusal of the strict decoder.
 */
#include "cu_main.h"
#include "base/base64.h"

#include <CUnit/Basic.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

static const char *const VEC[][2] = {
	{"", ""},
	{"f", "Zg=="},
	{"fo", "Zm8="},
	{"foo", "Zm9v"},
	{"foob", "Zm9vYg=="},
	{"fooba", "Zm9vYmE="},
	{"foobar", "Zm9vYmFy"},
};

static void test_vectors(void)
{
	char out[64];
	unsigned char dec[64];
	for (size_t i = 0; i < sizeof(VEC) / sizeof(VEC[0]); i++) {
		size_t n = strlen(VEC[i][0]);
		CU_ASSERT_EQUAL(kaa__b64_encode(VEC[i][0], n, out, sizeof(out), 0),
				strlen(VEC[i][1]));
		CU_ASSERT_STRING_EQUAL(out, VEC[i][1]);
		CU_ASSERT_EQUAL(kaa__b64_decode(VEC[i][1], strlen(VEC[i][1]), dec, sizeof(dec), 0),
				(long)n);
		CU_ASSERT(memcmp(dec, VEC[i][0], n) == 0);
		/* URL form: the same without padding, and it reads back */
		size_t w = kaa__b64_encode(VEC[i][0], n, out, sizeof(out), KAA__B64_URL);
		CU_ASSERT_EQUAL(w, strcspn(VEC[i][1], "="));
		CU_ASSERT_EQUAL(kaa__b64_decode(out, w, dec, sizeof(dec), KAA__B64_URL), (long)n);
	}
}

static void test_random_against_openssl(void)
{
	unsigned char in[200], dec[200];
	char ours[300], ref[300];
	for (size_t n = 0; n < sizeof(in); n++) {
		CU_ASSERT_FATAL(RAND_bytes(in, (int)sizeof(in)) == 1);
		EVP_EncodeBlock((unsigned char *)ref, in, (int)n);
		CU_ASSERT_EQUAL(kaa__b64_encode(in, n, ours, sizeof(ours), 0), strlen(ref));
		CU_ASSERT_STRING_EQUAL(ours, ref);
		CU_ASSERT_EQUAL(kaa__b64_decode(ours, strlen(ours), dec, sizeof(dec), 0), (long)n);
		CU_ASSERT(memcmp(dec, in, n) == 0);
		/* the URL alphabet differs exactly in '+' and '/' */
		kaa__b64_encode(in, n, ours, sizeof(ours), KAA__B64_URL);
		for (size_t i = 0; ref[i] && ref[i] != '='; i++)
			CU_ASSERT_EQUAL(ours[i], ref[i] == '+'   ? '-'
						 : ref[i] == '/' ? '_'
								 : ref[i]);
	}
}

static void test_refusals(void)
{
	unsigned char dec[16];
	char out[8];
	CU_ASSERT_EQUAL(kaa__b64_decode("Zg=", 3, dec, sizeof(dec), 0), -1);  /* pad length */
	CU_ASSERT_EQUAL(kaa__b64_decode("Zh==", 4, dec, sizeof(dec), 0), -1); /* trailing bits */
	CU_ASSERT_EQUAL(kaa__b64_decode("Z", 1, dec, sizeof(dec), 0), -1);    /* length */
	CU_ASSERT_EQUAL(kaa__b64_decode("Zg==Zg==", 8, dec, sizeof(dec), 0), -1); /* after pad */
	CU_ASSERT_EQUAL(kaa__b64_decode("Z-8", 3, dec, sizeof(dec), 0), -1);      /* URL char */
	CU_ASSERT_EQUAL(kaa__b64_decode("Z+8", 3, dec, sizeof(dec), KAA__B64_URL), -1);
	CU_ASSERT_EQUAL(kaa__b64_decode("Zm 8=", 5, dec, sizeof(dec), 0), -1); /* whitespace */
	CU_ASSERT_EQUAL(kaa__b64_decode("Zm9vYmFy", 8, dec, 5, 0), -1);        /* cap */
	/* lenient: both alphabets, whitespace, trailing bits */
	CU_ASSERT_EQUAL(kaa__b64_decode("Zm 9\nv", 6, dec, sizeof(dec), KAA__B64_LENIENT), 3);
	CU_ASSERT_EQUAL(kaa__b64_decode("-_+/", 4, dec, sizeof(dec), KAA__B64_LENIENT), 3);
	CU_ASSERT_EQUAL(kaa__b64_decode("Zh==", 4, dec, sizeof(dec), KAA__B64_LENIENT), 1);
	/* the URL form needs no room for padding: 32 bytes fit 43 + NUL */
	char tok[44];
	unsigned char raw[32] = {0};
	CU_ASSERT_EQUAL(kaa__b64_encode(raw, sizeof(raw), tok, sizeof(tok), KAA__B64_URL), 43);
	/* an encode that does not fit writes "" and returns 0 */
	CU_ASSERT_EQUAL(kaa__b64_encode("foobar", 6, out, sizeof(out), 0), 0);
	CU_ASSERT_STRING_EQUAL(out, "");
}

static const kaa__cu_test tests[] = {
	{"RFC 4648 vectors", test_vectors},
	{"random bytes vs OpenSSL", test_random_against_openssl},
	{"refusals", test_refusals},
};

int main(void)
{
	return kaa__cu_run("base64", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
