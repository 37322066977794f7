#include "base/clock.h"

int64_t kaa__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kaa__wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec kaa__timespec_in_ms(clockid_t id, int64_t ms)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	if (ms < 0)
		ms = 0;
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

int kaa__sleep_ms_unless(int64_t ms, const volatile int *stop)
{
	int64_t end = kaa__now_ms() + ms;
	for (;;) {
		if (stop && *stop)
			return 1;
		int64_t left = end - kaa__now_ms();
		if (left <= 0)
			return 0;
		if (left > 50)
			left = 50;
		struct timespec ts = {.tv_sec = 0, .tv_nsec = left * 1000000};
		nanosleep(&ts, NULL);
	}
}
