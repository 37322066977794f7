#include "base/backoff.h"

#include "base/clock.h"

#include <time.h>
#include <unistd.h>

void kaa__backoff_init(kaa__backoff *b, int64_t initial_ms, int64_t max_ms)
{
	struct timespec ts;
	if (initial_ms < 1)
		initial_ms = 1;
	if (max_ms < initial_ms)
		max_ms = initial_ms;
	b->initial_ms = initial_ms;
	b->max_ms = max_ms;
	b->current_ms = initial_ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	b->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)b;
	if (b->rng == 0)
		b->rng = 0x9e3779b97f4a7c15ull;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

int64_t kaa__backoff_next(kaa__backoff *b)
{
	int64_t base = b->current_ms;
	int64_t half = base / 2;
	int64_t d = half + (int64_t)(xorshift(&b->rng) % (uint64_t)(base - half + 1));
	if (b->current_ms < b->max_ms) {
		b->current_ms *= 2;
		if (b->current_ms > b->max_ms)
			b->current_ms = b->max_ms;
	}
	return d;
}

void kaa__backoff_reset(kaa__backoff *b)
{
	b->current_ms = b->initial_ms;
}
