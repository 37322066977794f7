/*
 * clock.h - the one clock: monotonic and wall milliseconds, condition
 * variable deadlines, and an interruptible sleep. Used by the daemons and
 * linked into the SDK (no allocation, no logging). Any thread.
 */
#ifndef KAA_CLOCK_H
#define KAA_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock (intervals, deadlines). */
int64_t kaa__now_ms(void);
/* Milliseconds since the Unix epoch (timestamps stored or sent). */
int64_t kaa__wall_ms(void);
/* The absolute time ms from now on clock id (CLOCK_MONOTONIC or
 * CLOCK_REALTIME), for pthread_cond_timedwait and sem_timedwait. */
struct timespec kaa__timespec_in_ms(clockid_t id, int64_t ms);
/* Sleeps up to ms, returning early (1) if *stop becomes non-zero; checks
 * every 50 ms. Returns 0 when the full time elapsed. */
int kaa__sleep_ms_unless(int64_t ms, const volatile int *stop);

#endif
