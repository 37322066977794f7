/* Randomness of the SDK: 64 bits from the kernel, a xorshift generator
 * for choices that need not be secret (node picks, jitter) and the
 * jittered reconnect backoff built on it. */
#include "sdk_internal.h"

#include <sys/random.h>
#include <time.h>

uint64_t kaa__sdk_random64(void)
{
	uint64_t v = 0;
	struct timespec ts;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
		return v;
	/* no entropy yet (early boot): a clock and address mix, splitmix64 */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)&v;
	v += 0x9E3779B97F4A7C15ull;
	v = (v ^ (v >> 30)) * 0xBF58476D1CE4E5B9ull;
	v = (v ^ (v >> 27)) * 0x94D049BB133111EBull;
	return v ^ (v >> 31);
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x2545F4914F6CDD1Dull;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

uint64_t kaa__sdk_rand_below(uint64_t *rng, uint64_t n)
{
	return n ? xorshift(rng) % n : 0;
}

void kaa__sdk_backoff_init(kaa__sdk_backoff *b, uint32_t initial_ms, uint32_t max_ms)
{
	b->initial_ms = initial_ms ? initial_ms : 1;
	b->max_ms = max_ms < b->initial_ms ? b->initial_ms : max_ms;
	b->base_ms = b->initial_ms;
	b->rng = kaa__sdk_random64() | 1;
}

uint32_t kaa__sdk_backoff_next(kaa__sdk_backoff *b)
{
	uint32_t base = b->base_ms;
	uint32_t half = base / 2;
	uint32_t d = half + (uint32_t)kaa__sdk_rand_below(&b->rng, (uint64_t)(base - half) + 1);

	b->base_ms = base > b->max_ms / 2 ? b->max_ms : base * 2;
	return d;
}

void kaa__sdk_backoff_reset(kaa__sdk_backoff *b)
{
	b->base_ms = b->initial_ms;
}
