/*
 * rest_session.c - browser sessions (rest_session.h).
 */
#include "control/rest_session.h"

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct session {
	char id_hash[65]; /* "" for a free slot */
	char csrf[KAA_SESSION_TOKEN_LEN + 1];
	int64_t user_id;
	int64_t created_ms, idle_deadline_ms;
} session;

struct kaa__sessions {
	int64_t idle_ms, max_ms;
	pthread_mutex_t mu;
	session slots[KAA_SESSION_MAX];
};

kaa__sessions *kaa__sessions_new(int64_t idle_ms, int64_t max_ms)
{
	kaa__sessions *s = kaa__xcalloc(1, sizeof(*s));
	s->idle_ms = idle_ms > 0 ? idle_ms : KAA_SESSION_IDLE_MS;
	s->max_ms = max_ms > 0 ? max_ms : KAA_SESSION_MAX_MS;
	pthread_mutex_init(&s->mu, NULL);
	return s;
}

void kaa__sessions_free(kaa__sessions *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->mu);
	OPENSSL_cleanse(s->slots, sizeof(s->slots));
	free(s);
}

static int random_hex(char out[KAA_SESSION_TOKEN_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char raw[KAA_SESSION_TOKEN_LEN / 2];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return KAA_ERR_INTERNAL;
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[KAA_SESSION_TOKEN_LEN] = '\0';
	return KAA_OK;
}

static bool ended(const kaa__sessions *s, const session *e, int64_t now)
{
	return now >= e->idle_deadline_ms || now >= e->created_ms + s->max_ms;
}

int kaa__sessions_create(kaa__sessions *s, int64_t user_id, char id[KAA_SESSION_TOKEN_LEN + 1],
			 char csrf[KAA_SESSION_TOKEN_LEN + 1], int64_t *expires_ms)
{
	char hash[65];
	if (random_hex(id) != KAA_OK || random_hex(csrf) != KAA_OK)
		return KAA_ERR_INTERNAL;
	kaa__sha256_hex(id, strlen(id), hash);
	int64_t now = kaa__now_ms();
	pthread_mutex_lock(&s->mu);
	/* A free or ended slot, else the oldest session gives way. */
	session *pick = &s->slots[0];
	for (size_t i = 0; i < KAA_SESSION_MAX; i++) {
		session *e = &s->slots[i];
		if (!e->id_hash[0] || ended(s, e, now)) {
			pick = e;
			break;
		}
		if (e->created_ms < pick->created_ms)
			pick = e;
	}
	memcpy(pick->id_hash, hash, sizeof(hash));
	memcpy(pick->csrf, csrf, KAA_SESSION_TOKEN_LEN + 1);
	pick->user_id = user_id;
	pick->created_ms = now;
	pick->idle_deadline_ms = now + s->idle_ms;
	pthread_mutex_unlock(&s->mu);
	*expires_ms = kaa__wall_ms() + s->max_ms;
	return KAA_OK;
}

/* The slot of a session id hash, or NULL. Under s->mu. */
static session *find(kaa__sessions *s, const char *hash)
{
	for (size_t i = 0; i < KAA_SESSION_MAX; i++)
		if (s->slots[i].id_hash[0] && CRYPTO_memcmp(s->slots[i].id_hash, hash, 64) == 0)
			return &s->slots[i];
	return NULL;
}

bool kaa__sessions_lookup(kaa__sessions *s, const char *id, int64_t *user_id,
			  char csrf[KAA_SESSION_TOKEN_LEN + 1])
{
	char hash[65];
	if (strlen(id) != KAA_SESSION_TOKEN_LEN)
		return false;
	kaa__sha256_hex(id, strlen(id), hash);
	int64_t now = kaa__now_ms();
	bool ok = false;
	pthread_mutex_lock(&s->mu);
	session *e = find(s, hash);
	if (e && ended(s, e, now)) {
		memset(e, 0, sizeof(*e));
	} else if (e) {
		e->idle_deadline_ms = now + s->idle_ms;
		*user_id = e->user_id;
		memcpy(csrf, e->csrf, KAA_SESSION_TOKEN_LEN + 1);
		ok = true;
	}
	pthread_mutex_unlock(&s->mu);
	return ok;
}

void kaa__sessions_delete(kaa__sessions *s, const char *id)
{
	char hash[65];
	if (strlen(id) != KAA_SESSION_TOKEN_LEN)
		return;
	kaa__sha256_hex(id, strlen(id), hash);
	pthread_mutex_lock(&s->mu);
	session *e = find(s, hash);
	if (e)
		memset(e, 0, sizeof(*e));
	pthread_mutex_unlock(&s->mu);
}

bool kaa__cookie_value(const char *header, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	const char *p = header;
	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > n && strncmp(p, name, n) == 0 && p[n] == '=') {
			size_t vlen = len - n - 1;
			while (vlen && (p[n + 1 + vlen - 1] == ' ' || p[n + 1 + vlen - 1] == '\t'))
				vlen--;
			if (vlen == 0 || vlen >= cap)
				return false;
			memcpy(out, p + n + 1, vlen);
			out[vlen] = '\0';
			return true;
		}
		p = end;
	}
	return false;
}
