/*
 * rest_auth.c - who is calling (rest_auth.h).
 */
#include "control/rest_auth.h"

#include "base/base64.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Basic auth costs a 100k-iteration PBKDF2 per request. Successful
 * verifications are remembered for a minute in a small direct-mapped
 * cache keyed by SHA-256(process secret, stored hash, password): a changed
 * password (new stored hash) misses, and the cache holds nothing that
 * helps guess a password without the per-process secret. */
#define AUTH_CACHE_SLOTS 256
#define AUTH_CACHE_TTL_MS 60000

typedef struct auth_cache_entry {
	unsigned char key[32];
	int64_t expires_ms;
} auth_cache_entry;

struct kaa__rest_auth {
	kaa__meta_store *store;
	unsigned char secret[32];
	pthread_mutex_t mu;
	auth_cache_entry cache[AUTH_CACHE_SLOTS];
	kaa__sessions *sessions;
};

static void auth_cache_key(kaa__rest_auth *a, const char *stored, const char *password,
			   unsigned char key[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int n = 0;
	if (!ctx) {
		memset(key, 0, 32);
		return;
	}
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, a->secret, sizeof(a->secret));
	EVP_DigestUpdate(ctx, stored, strlen(stored) + 1);
	EVP_DigestUpdate(ctx, password, strlen(password));
	EVP_DigestFinal_ex(ctx, key, &n);
	EVP_MD_CTX_free(ctx);
}

static bool verify_password_cached(kaa__rest_auth *a, const char *password, const char *stored)
{
	unsigned char key[32];
	auth_cache_key(a, stored, password, key);
	auth_cache_entry *e = &a->cache[key[0]];
	int64_t now = kaa__now_ms();
	pthread_mutex_lock(&a->mu);
	bool hit = e->expires_ms > now && CRYPTO_memcmp(e->key, key, sizeof(key)) == 0;
	pthread_mutex_unlock(&a->mu);
	if (hit)
		return true;
	if (!kaa__password_verify(password, stored))
		return false;
	pthread_mutex_lock(&a->mu);
	memcpy(e->key, key, sizeof(key));
	e->expires_ms = now + AUTH_CACHE_TTL_MS;
	pthread_mutex_unlock(&a->mu);
	return true;
}

int kaa__rest_auth_new(kaa__meta_store *store, kaa__rest_auth **out)
{
	kaa__rest_auth *a = kaa__xcalloc(1, sizeof(*a));
	*out = NULL;
	if (RAND_bytes(a->secret, sizeof(a->secret)) != 1) {
		free(a);
		return KAA_ERR_INTERNAL;
	}
	a->store = store;
	a->sessions = kaa__sessions_new(0, 0);
	pthread_mutex_init(&a->mu, NULL);
	*out = a;
	return KAA_OK;
}

void kaa__rest_auth_free(kaa__rest_auth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->mu);
	kaa__sessions_free(a->sessions);
	free(a);
}

static bool b64_decode(const char *in, char *out, size_t cap)
{
	size_t n = strlen(in);
	if (n == 0 || n % 4 || cap == 0)
		return false;
	long w = kaa__b64_decode(in, n, out, cap - 1, 0);
	if (w < 0 || memchr(out, '\0', (size_t)w))
		return false;
	out[w] = '\0';
	return true;
}

/* user and password against the store: 0 with *user filled (the caller
 * clears it), 401 or 503. */
static int check_password(kaa__rest_auth *a, const char *name, const char *password,
			  kaa__meta_obj *user)
{
	int rc = kaa__meta_find_name(a->store, KAA_META_USER, 0, name, user);
	if (rc == KAA_OK && user->password_hash &&
	    verify_password_cached(a, password, user->password_hash))
		return 0;
	kaa__meta_obj_clear(user);
	return rc != KAA_OK && rc != KAA_ERR_NOTFOUND && rc != KAA_ERR_INVAL ? 503 : 401;
}

/* Fills *p from user (cleared here): 0, or 401 for a user without a role. */
static int principal_of(kaa__meta_obj *user, kaa__principal *p)
{
	p->user_id = user->id;
	p->tenant_id = user->tenant_id;
	p->role = kaa__role_parse(user->role ? user->role : "");
	snprintf(p->name, sizeof(p->name), "%s", user->name ? user->name : "");
	kaa__meta_obj_clear(user);
	return p->role == KAA_ROLE_NONE ? 401 : 0;
}

static bool session_cookie(const kaa__http_request *req, char id[KAA_SESSION_TOKEN_LEN + 1])
{
	const char *c = kaa__http_header(req, "cookie");
	return c && kaa__cookie_value(c, KAA_SESSION_COOKIE, id, KAA_SESSION_TOKEN_LEN + 1);
}

static int authenticate_session(kaa__rest_auth *a, const kaa__http_request *req, kaa__principal *p)
{
	char id[KAA_SESSION_TOKEN_LEN + 1], csrf[KAA_SESSION_TOKEN_LEN + 1];
	int64_t user_id = 0;
	kaa__meta_obj user = {0};
	if (!session_cookie(req, id) || !kaa__sessions_lookup(a->sessions, id, &user_id, csrf))
		return 401;
	/* The cookie rides along with any request the browser sends, also one
	 * another site makes it send: a change needs the token only our page
	 * was given. */
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		const char *h = kaa__http_header(req, "x-csrf-token");
		if (!h || strlen(h) != KAA_SESSION_TOKEN_LEN ||
		    CRYPTO_memcmp(h, csrf, KAA_SESSION_TOKEN_LEN) != 0)
			return 403;
	}
	int rc = kaa__meta_get(a->store, KAA_META_USER, user_id, &user);
	if (rc != KAA_OK)
		return rc == KAA_ERR_NOTFOUND ? 401 : 503;
	rc = principal_of(&user, p);
	if (rc == 0) {
		p->session = true;
		memcpy(p->csrf, csrf, sizeof(csrf));
	}
	return rc;
}

int kaa__rest_authenticate(kaa__rest_auth *a, const kaa__http_request *req, kaa__principal *p)
{
	const char *h = kaa__http_header(req, "authorization");
	kaa__meta_obj user = {0}, tok = {0};
	int rc;

	memset(p, 0, sizeof(*p));
	if (!h)
		return authenticate_session(a, req, p);
	if (strncasecmp(h, "Basic ", 6) == 0) {
		char cred[768];
		if (!b64_decode(h + 6, cred, sizeof(cred)))
			return 401;
		char *colon = strchr(cred, ':');
		if (!colon)
			return 401;
		*colon = '\0';
		rc = check_password(a, cred, colon + 1, &user);
		return rc ? rc : principal_of(&user, p);
	}
	if (strncasecmp(h, "Bearer ", 7) == 0) {
		char hex[65];
		const char *t = h + 7;
		if (strlen(t) > 256)
			return 401;
		kaa__sha256_hex(t, strlen(t), hex);
		rc = kaa__meta_find_token(a->store, hex, &tok);
		if (rc != KAA_OK)
			return rc == KAA_ERR_NOTFOUND ? 401 : 503;
		rc = kaa__meta_get(a->store, KAA_META_USER, tok.user_id, &user);
		kaa__meta_obj_clear(&tok);
		if (rc == KAA_OK)
			return principal_of(&user, p);
		return 401;
	}
	return 401;
}

int kaa__rest_login(kaa__rest_auth *a, const char *name, const char *password, kaa__principal *p,
		    char id[KAA_SESSION_TOKEN_LEN + 1], int64_t *expires_ms)
{
	kaa__meta_obj user = {0};
	memset(p, 0, sizeof(*p));
	int rc = check_password(a, name, password, &user);
	if (rc == 0)
		rc = principal_of(&user, p);
	if (rc != 0)
		return rc;
	if (kaa__sessions_create(a->sessions, p->user_id, id, p->csrf, expires_ms) != KAA_OK)
		return 500;
	p->session = true;
	return 0;
}

void kaa__rest_logout(kaa__rest_auth *a, const kaa__http_request *req)
{
	char id[KAA_SESSION_TOKEN_LEN + 1];
	if (session_cookie(req, id))
		kaa__sessions_delete(a->sessions, id);
}
