/* The receive side's duplicate filter: a sliding window per event source. */
#include "sdk_events.h"

#include "base/error.h"

#include <stdlib.h>
#include <string.h>

#define WORDS (KAA__DEDUP_WINDOW / 64)
#define DEFAULT_SOURCES 4096

typedef struct source {
	struct source *hnext;       /* hash chain */
	struct source *prev, *next; /* recency list, most recent first */
	uint64_t hi;                /* highest seq seen */
	uint64_t bits[WORDS];       /* bit i: seq hi - i was seen (bit 0 = hi) */
	uint32_t hash;
	char key[];
} source;

struct kaa__dedup {
	source **buckets;
	size_t nbuckets, n, max;
	source *head, *tail;
	uint64_t evictions;
};

static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

int kaa__dedup_new(size_t max_sources, kaa__dedup **out)
{
	kaa__dedup *d = calloc(1, sizeof(*d));

	*out = NULL;
	if (!d)
		return KAA_ERR_NOMEM;
	/* buckets grow with the sources seen: most devices hear from a few */
	d->nbuckets = 16;
	d->buckets = calloc(d->nbuckets, sizeof(*d->buckets));
	if (!d->buckets) {
		free(d);
		return KAA_ERR_NOMEM;
	}
	d->max = max_sources ? max_sources : DEFAULT_SOURCES;
	*out = d;
	return KAA_OK;
}

void kaa__dedup_free(kaa__dedup *d)
{
	if (!d)
		return;
	for (source *s = d->head, *nx; s; s = nx) {
		nx = s->next;
		free(s);
	}
	free(d->buckets);
	free(d);
}

size_t kaa__dedup_sources(const kaa__dedup *d)
{
	return d ? d->n : 0;
}

uint64_t kaa__dedup_evictions(const kaa__dedup *d)
{
	return d ? d->evictions : 0;
}

static void list_unlink(kaa__dedup *d, source *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		d->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		d->tail = s->prev;
	s->prev = s->next = NULL;
}

static void list_push_front(kaa__dedup *d, source *s)
{
	s->prev = NULL;
	s->next = d->head;
	if (d->head)
		d->head->prev = s;
	d->head = s;
	if (!d->tail)
		d->tail = s;
}

static void hash_unlink(kaa__dedup *d, source *s)
{
	source **pp = &d->buckets[s->hash & (d->nbuckets - 1)];

	while (*pp && *pp != s)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = s->hnext;
}

/* Doubles the bucket array when the load passes 1; a failed growth only
 * makes chains longer. */
static void maybe_grow(kaa__dedup *d)
{
	size_t nb = d->nbuckets * 2;
	source **b;

	if (d->n <= d->nbuckets)
		return;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (source *s = d->head; s; s = s->next) {
		s->hnext = b[s->hash & (nb - 1)];
		b[s->hash & (nb - 1)] = s;
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = nb;
}

/* Moves every bit sh places up (older): bit i becomes bit i + sh. */
static void shift_up(uint64_t *bits, uint64_t sh)
{
	if (sh >= KAA__DEDUP_WINDOW) {
		memset(bits, 0, WORDS * sizeof(*bits));
		return;
	}
	size_t ws = (size_t)(sh / 64);
	unsigned bs = (unsigned)(sh % 64);
	for (size_t i = WORDS; i-- > 0;) {
		uint64_t v = 0;
		if (i >= ws) {
			v = bits[i - ws] << bs;
			if (bs && i >= ws + 1)
				v |= bits[i - ws - 1] >> (64 - bs);
		}
		bits[i] = v;
	}
}

int kaa__dedup_check(kaa__dedup *d, const char *key, uint64_t seq)
{
	source *s;
	size_t klen;
	uint32_t h;

	if (!d || !key || (klen = strlen(key)) > KAA__DEDUP_KEY_MAX)
		return KAA_ERR_INVAL;
	h = fnv1a(key);
	for (s = d->buckets[h & (d->nbuckets - 1)]; s; s = s->hnext)
		if (s->hash == h && strcmp(s->key, key) == 0)
			break;
	if (!s) {
		s = calloc(1, sizeof(*s) + klen + 1);
		if (!s)
			return KAA_ERR_NOMEM;
		if (d->n >= d->max) {
			/* forget the source heard from least recently */
			source *old = d->tail;
			list_unlink(d, old);
			hash_unlink(d, old);
			free(old);
			d->n--;
			d->evictions++;
		}
		memcpy(s->key, key, klen + 1);
		s->hash = h;
		s->hi = seq;
		s->bits[0] = 1;
		s->hnext = d->buckets[h & (d->nbuckets - 1)];
		d->buckets[h & (d->nbuckets - 1)] = s;
		list_push_front(d, s);
		d->n++;
		maybe_grow(d);
		return 1;
	}
	if (s != d->head) {
		list_unlink(d, s);
		list_push_front(d, s);
	}
	if (seq > s->hi) {
		shift_up(s->bits, seq - s->hi);
		s->hi = seq;
		s->bits[0] |= 1;
		return 1;
	}
	uint64_t back = s->hi - seq;
	if (back >= KAA__DEDUP_WINDOW)
		return 0; /* below the window: processed long ago */
	uint64_t mask = 1ull << (back % 64);
	if (s->bits[back / 64] & mask)
		return 0;
	s->bits[back / 64] |= mask;
	return 1;
}
