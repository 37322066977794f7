/*
 * rest_auth.h - who is calling the control REST API: HTTP Basic
 * (user:password, checked against the stored PBKDF2 hash) or
 * "Authorization: Bearer <API token>" (looked up by its SHA-256), or, without
 * an Authorization header, a web console session (rest_session.h): the
 * session cookie, plus for every method but GET and HEAD an X-CSRF-Token
 * header equal to the session's CSRF token.
 *
 * Basic auth costs a 100k-iteration PBKDF2 per request, so successful
 * verifications are remembered for a minute in a small cache keyed by a
 * digest under a per-process random secret: a changed password misses, and
 * the cache holds nothing that helps guess a password.
 *
 * Threads: kaa__rest_authenticate from any thread concurrently; new/free
 * on one thread while no call runs.
 */
#ifndef KAA_CONTROL_REST_AUTH_H
#define KAA_CONTROL_REST_AUTH_H

#include "auth/auth.h"
#include "control/rest_session.h"
#include "http/http_server.h"
#include "store/meta_store.h"

#include <stdint.h>

/* The authenticated caller. */
typedef struct kaa__principal {
	int64_t user_id;
	int64_t tenant_id; /* 0 for platform admins */
	kaa__role role;    /* never KAA_ROLE_NONE once authenticated */
	char name[KAA_META_NAME_MAX + 1];
	bool session;                         /* authenticated by a console session */
	char csrf[KAA_SESSION_TOKEN_LEN + 1]; /* that session's CSRF token, else "" */
} kaa__principal;

typedef struct kaa__rest_auth kaa__rest_auth;

/* store is borrowed and must outlive *out. KAA_ERR_INTERNAL when OpenSSL
 * has no randomness for the cache secret. */
int kaa__rest_auth_new(kaa__meta_store *store, kaa__rest_auth **out);
/* Accepts NULL. */
void kaa__rest_auth_free(kaa__rest_auth *a);

/* 0 with *p filled, or the HTTP status to answer: 401 (no, malformed or
 * wrong credentials, an unknown token, an unknown or ended session, a user
 * without a valid role), 403 (a session on a state-changing method without
 * its X-CSRF-Token) or 503 (the metadata store failed). */
int kaa__rest_authenticate(kaa__rest_auth *a, const kaa__http_request *req, kaa__principal *p);

/* Checks user and password as Basic auth does and opens a console
 * session: 0 with *p (csrf set), the session id and its latest end (wall
 * clock ms) filled; or 401 (wrong credentials), 503 (store), 500 (no
 * randomness). */
int kaa__rest_login(kaa__rest_auth *a, const char *user, const char *password, kaa__principal *p,
		    char id[KAA_SESSION_TOKEN_LEN + 1], int64_t *expires_ms);

/* Ends the session whose cookie req carries (no-op without one). */
void kaa__rest_logout(kaa__rest_auth *a, const kaa__http_request *req);

#endif
