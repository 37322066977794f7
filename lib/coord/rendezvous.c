#include "coord/rendezvous.h"

#include <string.h>

/* FNV-1a over the bytes, then splitmix64's finalizer: FNV alone mixes the
 * last bytes poorly, and node ids often differ only in a trailing digit. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static uint64_t mix(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

uint64_t kaa__rendezvous_score(const char *key, const char *node)
{
	/* A separator byte that cannot occur in either string keeps
	 * ("ab", "c") and ("a", "bc") apart. */
	uint64_t h = fnv1a(0xcbf29ce484222325ULL, key);
	h ^= 0xff;
	h *= 0x100000001b3ULL;
	return mix(fnv1a(h, node));
}

long kaa__rendezvous_pick(const char *key, const char *const *nodes, size_t n)
{
	long best = -1;
	uint64_t best_score = 0;
	if (!key || !nodes)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!nodes[i])
			return -1;
		uint64_t s = kaa__rendezvous_score(key, nodes[i]);
		if (best < 0 || s > best_score ||
		    (s == best_score && strcmp(nodes[i], nodes[best]) < 0)) {
			best = (long)i;
			best_score = s;
		}
	}
	return best;
}
