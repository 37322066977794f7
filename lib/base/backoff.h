/*
 * backoff.h - jittered exponential backoff (the clock is base/clock.h).
 * A kaa__backoff is owned by one thread; no locking.
 */
#ifndef KAA_BACKOFF_H
#define KAA_BACKOFF_H

#include <stdint.h>

typedef struct kaa__backoff {
	int64_t initial_ms;
	int64_t max_ms;
	int64_t current_ms; /* next base delay before jitter */
	uint64_t rng;       /* xorshift state; seeded by kaa__backoff_init */
} kaa__backoff;

/* initial_ms >= 1, max_ms >= initial_ms (clamped otherwise). */
void kaa__backoff_init(kaa__backoff *b, int64_t initial_ms, int64_t max_ms);
/* Returns the next delay: a uniform value in [base/2, base], then doubles
 * the base up to max_ms ("equal jitter", so a fleet does not retry in step
 * yet the delay never collapses to zero). */
int64_t kaa__backoff_next(kaa__backoff *b);
/* Back to initial_ms after a success. */
void kaa__backoff_reset(kaa__backoff *b);

#endif
