#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int kaa__log_level = KAA_LOG_INFO;

int kaa__log_level_parse(const char *s)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void kaa__log_write(int level, const char *mod, const char *fmt, ...)
{
	static const char *names[] = {"debug", "info", "warn", "error"};
	char buf[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	va_list ap;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(buf, sizeof(buf), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, sizeof(buf) - n,
			      ".%03ldZ level=%s mod=%s msg=", ts.tv_nsec / 1000000,
			      names[level & 3], mod);
	va_start(ap, fmt);
	int w = vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (w < 0)
		w = 0;
	n += (size_t)w;
	if (n > sizeof(buf) - 2)
		n = sizeof(buf) - 2; /* truncated: still one line */
	buf[n++] = '\n';
	/* One write keeps records from different threads whole. */
	ssize_t r = write(STDERR_FILENO, buf, n);
	(void)r;
}
