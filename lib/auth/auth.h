/*
 * auth.h - credentials and roles for the control REST API.
 *
 * Passwords are stored as "pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>"
 * (OpenSSL PKCS5_PBKDF2_HMAC, 16-byte random salt, 32-byte key). API tokens
 * are 32 random bytes in base64url prefixed "kaa_"; only their SHA-256 (hex)
 * is stored. Roles follow the original platform: a platform admin manages
 * tenants and their users; a tenant admin manages users and applications
 * of its tenant, provisions device credentials and configures owner
 * verifiers (their secrets); a tenant developer manages schemas, groups,
 * configurations, topics, notifications, SDK profiles, event families and
 * maps; both write log appenders; a tenant user only reads. README.md has
 * the full table.
 * All functions are pure or use OpenSSL's thread-safe RNG: any thread.
 */
#ifndef KAA_AUTH_H
#define KAA_AUTH_H

#include "store/meta_store.h"

#include <stdbool.h>
#include <stddef.h>

#define KAA_PBKDF2_ITERATIONS 100000
#define KAA_PASSWORD_MAX 1024 /* longer passwords are refused (KAA_ERR_TOO_BIG) */

typedef enum kaa__role {
	KAA_ROLE_NONE = 0,
	KAA_ROLE_PLATFORM_ADMIN,
	KAA_ROLE_TENANT_ADMIN,
	KAA_ROLE_TENANT_DEVELOPER,
	KAA_ROLE_TENANT_USER,
} kaa__role;

/* "platform-admin", ...; static strings. */
const char *kaa__role_name(kaa__role r);
/* KAA_ROLE_NONE for an unknown name. */
kaa__role kaa__role_parse(const char *s);

typedef enum kaa__action {
	KAA_ACT_READ,
	KAA_ACT_WRITE, /* create, update, delete */
} kaa__action;

/* Whether the role may perform the action on objects of the metadata kind
 * (tenant scoping is checked separately by the caller); false for an
 * unknown role or kind. The one role table of the REST API. */
bool kaa__role_allows(kaa__role r, kaa__action a, kaa__meta_kind kind);

/* *out is malloc'd. KAA_ERR_TOO_BIG over KAA_PASSWORD_MAX, KAA_ERR_NOMEM,
 * KAA_ERR_INTERNAL if OpenSSL fails. iterations 0 = the default. */
int kaa__password_hash(const char *password, unsigned iterations, char **out);
/* Constant-time comparison; false for a malformed stored string. */
bool kaa__password_verify(const char *password, const char *stored);

/* A new random token "kaa_<43 base64url chars>" into buf (>= 48 bytes). */
int kaa__token_new(char *buf, size_t len);
/* A random printable password of len-1 characters into buf. */
int kaa__password_generate(char *buf, size_t len);
/* Lowercase hex SHA-256 of s into hex (>= 65 bytes). */
void kaa__sha256_hex(const void *data, size_t len, char *hex);

#endif
