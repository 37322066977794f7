/* Password hashing, tokens and the role table. */
#include "cu_main.h"
#include "auth/auth.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static void test_password(void)
{
	char *h = NULL, *h2 = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__password_hash("s3cret", 1000, &h), KAA_OK);
	CU_ASSERT_EQUAL(strncmp(h, "pbkdf2-sha256$1000$", 19), 0);
	CU_ASSERT_TRUE(kaa__password_verify("s3cret", h));
	CU_ASSERT_FALSE(kaa__password_verify("s3cret ", h));
	CU_ASSERT_FALSE(kaa__password_verify("", h));
	/* Salted: the same password hashes differently. */
	CU_ASSERT_EQUAL_FATAL(kaa__password_hash("s3cret", 1000, &h2), KAA_OK);
	CU_ASSERT_STRING_NOT_EQUAL(h, h2);
	CU_ASSERT_TRUE(kaa__password_verify("s3cret", h2));
	free(h2);
	/* Tampered or malformed stored strings never verify. */
	char *t = strdup(h);
	t[strlen(t) - 2] = t[strlen(t) - 2] == 'A' ? 'B' : 'A';
	CU_ASSERT_FALSE(kaa__password_verify("s3cret", t));
	free(t);
	static const char *bad[] = {"",
				    "plain",
				    "pbkdf2-sha256$",
				    "pbkdf2-sha256$10$abc$def",
				    "pbkdf2-sha256$1000$$",
				    "pbkdf2-sha256$1000$c2FsdA$!!!!",
				    "md5$1000$x$y"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CU_ASSERT_FALSE(kaa__password_verify("s3cret", bad[i]));
	free(h);
	char *big = malloc(KAA_PASSWORD_MAX + 2);
	memset(big, 'a', KAA_PASSWORD_MAX + 1);
	big[KAA_PASSWORD_MAX + 1] = '\0';
	CU_ASSERT_EQUAL(kaa__password_hash(big, 1000, &h), KAA_ERR_TOO_BIG);
	free(big);
	/* The default iteration count is the slow one. */
	CU_ASSERT_EQUAL_FATAL(kaa__password_hash("x", 0, &h), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(h, "$100000$"));
	CU_ASSERT_TRUE(kaa__password_verify("x", h));
	free(h);
}

static void test_tokens(void)
{
	char a[64], b[64], hex[65], pw[17];
	CU_ASSERT_EQUAL(kaa__token_new(a, sizeof(a)), KAA_OK);
	CU_ASSERT_EQUAL(kaa__token_new(b, sizeof(b)), KAA_OK);
	CU_ASSERT_EQUAL(strncmp(a, "kaa_", 4), 0);
	CU_ASSERT_EQUAL(strlen(a), 47);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_PTR_NULL(strpbrk(a, "+/="));
	CU_ASSERT_EQUAL(kaa__token_new(a, 10), KAA_ERR_INVAL);
	kaa__sha256_hex("abc", 3, hex);
	CU_ASSERT_STRING_EQUAL(hex,
			       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CU_ASSERT_EQUAL(kaa__password_generate(pw, sizeof(pw)), KAA_OK);
	CU_ASSERT_EQUAL(strlen(pw), 16);
}

static void test_roles(void)
{
	CU_ASSERT_EQUAL(kaa__role_parse("tenant-admin"), KAA_ROLE_TENANT_ADMIN);
	CU_ASSERT_EQUAL(kaa__role_parse("root"), KAA_ROLE_NONE);
	CU_ASSERT_STRING_EQUAL(kaa__role_name(KAA_ROLE_TENANT_USER), "tenant-user");
	/* Spot checks of the original platform's split of duties. */
	CU_ASSERT_TRUE(kaa__role_allows(KAA_ROLE_PLATFORM_ADMIN, KAA_ACT_WRITE, KAA_META_TENANT));
	CU_ASSERT_FALSE(kaa__role_allows(KAA_ROLE_TENANT_ADMIN, KAA_ACT_WRITE, KAA_META_TENANT));
	CU_ASSERT_TRUE(
		kaa__role_allows(KAA_ROLE_TENANT_ADMIN, KAA_ACT_WRITE, KAA_META_APPLICATION));
	CU_ASSERT_TRUE(kaa__role_allows(KAA_ROLE_TENANT_ADMIN, KAA_ACT_WRITE, KAA_META_USER));
	CU_ASSERT_FALSE(kaa__role_allows(KAA_ROLE_TENANT_ADMIN, KAA_ACT_WRITE, KAA_META_SCHEMA));
	CU_ASSERT_TRUE(kaa__role_allows(KAA_ROLE_TENANT_DEVELOPER, KAA_ACT_WRITE, KAA_META_SCHEMA));
	CU_ASSERT_FALSE(
		kaa__role_allows(KAA_ROLE_TENANT_DEVELOPER, KAA_ACT_WRITE, KAA_META_APPLICATION));
	CU_ASSERT_FALSE(kaa__role_allows(KAA_ROLE_PLATFORM_ADMIN, KAA_ACT_READ, KAA_META_SCHEMA));
	/* A tenant user reads everything of its tenant and writes nothing but
	 * its own API tokens. */
	for (int r = 0; r < KAA_META_KIND_COUNT; r++) {
		CU_ASSERT_TRUE(
			kaa__role_allows(KAA_ROLE_TENANT_USER, KAA_ACT_READ, (kaa__meta_kind)r));
		CU_ASSERT_EQUAL(
			kaa__role_allows(KAA_ROLE_TENANT_USER, KAA_ACT_WRITE, (kaa__meta_kind)r),
			r == KAA_META_API_TOKEN);
		CU_ASSERT_FALSE(kaa__role_allows(KAA_ROLE_NONE, KAA_ACT_READ, (kaa__meta_kind)r));
	}
	CU_ASSERT_FALSE(kaa__role_allows(KAA_ROLE_TENANT_USER, KAA_ACT_READ, KAA_META_KIND_COUNT));
}

/* Device credentials and owner verifiers (their secrets) are admin matters:
 * per role, who reads and who writes them (README's role table). */
static void test_roles_credentials(void)
{
	static const kaa__meta_kind kinds[] = {KAA_META_CREDENTIAL, KAA_META_USER_VERIFIER};
	static const struct {
		kaa__role role;
		bool read, write;
	} want[] = {
		{KAA_ROLE_PLATFORM_ADMIN, false, false},
		{KAA_ROLE_TENANT_ADMIN, true, true},
		{KAA_ROLE_TENANT_DEVELOPER, true, false},
		{KAA_ROLE_TENANT_USER, true, false},
		{KAA_ROLE_NONE, false, false},
	};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
		for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
			CU_ASSERT_EQUAL(kaa__role_allows(want[i].role, KAA_ACT_READ, kinds[k]),
					want[i].read);
			CU_ASSERT_EQUAL(kaa__role_allows(want[i].role, KAA_ACT_WRITE, kinds[k]),
					want[i].write);
		}
}

static const kaa__cu_test tests[] = {
	{"PBKDF2 password hashes", test_password},
	{"tokens and digests", test_tokens},
	{"role table", test_roles},
	{"role table: credentials and owner verifiers", test_roles_credentials},
};

int main(void)
{
	return kaa__cu_run("auth", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
