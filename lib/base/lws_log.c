#include "base/lws_log.h"

#include "base/log.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void emit(int level, const char *line)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		KAA_ERROR("lws", "lws_log line=\"%.*s\"", (int)n, line);
	else
		KAA_WARN("lws", "lws_log line=\"%.*s\"", (int)n, line);
}

static void init_once(void)
{
	const char *dbg = getenv("KAA_LWS_LOG");
	lws_set_log_level(dbg ? atoi(dbg) : LLL_ERR | LLL_WARN, emit);
}

void kaa__lws_log_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_once);
}
