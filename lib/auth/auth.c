#include "auth/auth.h"
#include "base/base64.h"

#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SALT_BYTES 16
#define KEY_BYTES 32

static const char *role_names[] = {"none", "platform-admin", "tenant-admin", "tenant-developer",
				   "tenant-user"};

const char *kaa__role_name(kaa__role r)
{
	return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "none";
}

kaa__role kaa__role_parse(const char *s)
{
	for (unsigned i = 1; i < sizeof(role_names) / sizeof(role_names[0]); i++)
		if (strcmp(s, role_names[i]) == 0)
			return (kaa__role)i;
	return KAA_ROLE_NONE;
}

/* Rows: resources; columns: roles (platform admin, tenant admin, developer,
 * user); values: 0 none, 1 read, 2 read and write. The platform admin
 * manages tenants and their admins, not applications' contents. */
static const unsigned char perms[KAA_META_KIND_COUNT][4] = {
	[KAA_META_TENANT] = {2, 1, 1, 1},
	[KAA_META_USER] = {2, 2, 1, 1},
	[KAA_META_API_TOKEN] = {2, 2, 2, 2},
	[KAA_META_APPLICATION] = {1, 2, 1, 1},
	[KAA_META_SCHEMA] = {0, 1, 2, 1},
	[KAA_META_GROUP] = {0, 1, 2, 1},
	[KAA_META_CONFIGURATION] = {0, 1, 2, 1},
	[KAA_META_TOPIC] = {0, 1, 2, 1},
	[KAA_META_NOTIFICATION] = {0, 1, 2, 1},
	[KAA_META_LOG_APPENDER] = {0, 2, 2, 1},
	/* Provisioning devices and owner verifiers' secrets are admin
	 * matters: only the tenant admin writes them. */
	[KAA_META_CREDENTIAL] = {0, 2, 1, 1},
	[KAA_META_SDK_PROFILE] = {0, 1, 2, 1},
	/* event class families are tenant-wide, as in the original platform */
	[KAA_META_EVENT_FAMILY] = {0, 2, 2, 1},
	[KAA_META_EVENT_MAP] = {0, 1, 2, 1},
	/* verifiers hold secrets: like credentials */
	[KAA_META_USER_VERIFIER] = {0, 2, 1, 1},
};

bool kaa__role_allows(kaa__role r, kaa__action a, kaa__meta_kind kind)
{
	if (r == KAA_ROLE_NONE || (unsigned)r > 4 || (unsigned)kind >= KAA_META_KIND_COUNT)
		return false;
	unsigned p = perms[kind][r - 1];
	return a == KAA_ACT_READ ? p >= 1 : p >= 2;
}

static void b64url(const unsigned char *in, size_t n, char *out, size_t cap)
{
	kaa__b64_encode(in, n, out, cap, KAA__B64_URL);
}

int kaa__password_hash(const char *password, unsigned iterations, char **out)
{
	unsigned char salt[SALT_BYTES], key[KEY_BYTES];
	char salt_b64[32], key_b64[64];
	size_t plen = strlen(password);

	*out = NULL;
	if (plen > KAA_PASSWORD_MAX)
		return KAA_ERR_TOO_BIG;
	if (iterations == 0)
		iterations = KAA_PBKDF2_ITERATIONS;
	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    PKCS5_PBKDF2_HMAC(password, (int)plen, salt, sizeof(salt), (int)iterations,
			      EVP_sha256(), sizeof(key), key) != 1)
		return KAA_ERR_INTERNAL;
	b64url(salt, sizeof(salt), salt_b64, sizeof(salt_b64));
	b64url(key, sizeof(key), key_b64, sizeof(key_b64));
	if (asprintf(out, "pbkdf2-sha256$%u$%s$%s", iterations, salt_b64, key_b64) < 0) {
		*out = NULL;
		return KAA_ERR_NOMEM;
	}
	return KAA_OK;
}

/* Decodes base64url without padding into out; returns the length or -1. */
static int b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
	return n == 0 ? -1 : (int)kaa__b64_decode(in, n, out, cap, KAA__B64_URL);
}

bool kaa__password_verify(const char *password, const char *stored)
{
	unsigned char salt[64], want[64], got[64];
	unsigned long iterations;
	const char *p, *s1, *s2;
	char *end;
	int slen, klen;

	if (strlen(password) > KAA_PASSWORD_MAX || strncmp(stored, "pbkdf2-sha256$", 14) != 0)
		return false;
	p = stored + 14;
	iterations = strtoul(p, &end, 10);
	if (end == p || *end != '$' || iterations < 1000 || iterations > 10000000)
		return false;
	s1 = end + 1;
	s2 = strchr(s1, '$');
	if (!s2)
		return false;
	slen = b64url_decode(s1, (size_t)(s2 - s1), salt, sizeof(salt));
	klen = b64url_decode(s2 + 1, strlen(s2 + 1), want, sizeof(want));
	if (slen <= 0 || klen != KEY_BYTES)
		return false;
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen, (int)iterations,
			      EVP_sha256(), klen, got) != 1)
		return false;
	return CRYPTO_memcmp(got, want, (size_t)klen) == 0;
}

int kaa__token_new(char *buf, size_t len)
{
	unsigned char raw[32];
	char enc[64];
	if (len < 48)
		return KAA_ERR_INVAL;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return KAA_ERR_INTERNAL;
	b64url(raw, sizeof(raw), enc, sizeof(enc));
	snprintf(buf, len, "kaa_%s", enc);
	return KAA_OK;
}

int kaa__password_generate(char *buf, size_t len)
{
	static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	unsigned char raw[256];
	if (len < 2 || len > sizeof(raw))
		return KAA_ERR_INVAL;
	if (RAND_bytes(raw, (int)len) != 1)
		return KAA_ERR_INTERNAL;
	for (size_t i = 0; i + 1 < len; i++)
		buf[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
	buf[len - 1] = '\0';
	return KAA_OK;
}

void kaa__sha256_hex(const void *data, size_t len, char *hex)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	hex[2 * mdlen] = '\0';
}
