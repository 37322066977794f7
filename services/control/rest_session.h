/*
 * rest_session.h - browser sessions of the web console: a random session
 * id carried in an HttpOnly cookie, and a CSRF token the page keeps in
 * memory and sends as X-CSRF-Token on every state-changing request.
 *
 * Sessions live in this process only (a table of at most
 * KAA_SESSION_MAX; the oldest is evicted beyond it). Only the SHA-256 of
 * a session id is kept, so the table holds nothing that can be replayed.
 * A session ends at logout, after its idle time without a request, or its
 * lifetime after login, whichever comes first (KAA_SESSION_IDLE_MS and
 * KAA_SESSION_MAX_MS in the control service). With several
 * control replicas behind one address the console needs sticky routing
 * (or a re-login when it lands on another replica).
 *
 * Threads: every call from any thread concurrently, except new/free (one
 * thread, while no other call runs).
 */
#ifndef KAA_CONTROL_REST_SESSION_H
#define KAA_CONTROL_REST_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_SESSION_MAX 4096
#define KAA_SESSION_IDLE_MS (30LL * 60 * 1000)
#define KAA_SESSION_MAX_MS (12LL * 60 * 60 * 1000)
/* Hex length of a session id and of a CSRF token (32 random bytes). */
#define KAA_SESSION_TOKEN_LEN 64
#define KAA_SESSION_COOKIE "kaa_session"

typedef struct kaa__sessions kaa__sessions;

/* idle_ms and max_ms: the idle time and the lifetime (0: the defaults
 * above). */
kaa__sessions *kaa__sessions_new(int64_t idle_ms, int64_t max_ms);
/* Accepts NULL. */
void kaa__sessions_free(kaa__sessions *s);

/* A new session for user_id: its id and CSRF token (hex, NUL-terminated)
 * and when it ends at the latest (wall clock ms). KAA_OK, or KAA_ERR_INTERNAL without
 * randomness. */
int kaa__sessions_create(kaa__sessions *s, int64_t user_id, char id[KAA_SESSION_TOKEN_LEN + 1],
			 char csrf[KAA_SESSION_TOKEN_LEN + 1], int64_t *expires_ms);

/* Looks the session id up and, when it is live, renews its idle deadline
 * and copies its user and CSRF token: true; false for an unknown or ended
 * session (an ended one is dropped). */
bool kaa__sessions_lookup(kaa__sessions *s, const char *id, int64_t *user_id,
			  char csrf[KAA_SESSION_TOKEN_LEN + 1]);

/* Ends the session (no-op for an unknown id). */
void kaa__sessions_delete(kaa__sessions *s, const char *id);

/* The value of cookie name in a Cookie header ("a=1; b=2"), copied into
 * out: true; false when absent, empty or longer than cap - 1. */
bool kaa__cookie_value(const char *header, const char *name, char *out, size_t cap);

#endif
