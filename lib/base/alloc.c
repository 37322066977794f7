#include "base/alloc.h"

#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void kaa__oom(void)
{
	/* No allocation and no stdio here: the heap is what failed. */
	static const char msg[] = "level=error module=alloc event=out_of_memory\n";
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	abort();
}

void *kaa__xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		kaa__oom();
	return p;
}

void *kaa__xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		kaa__oom();
	return p;
}

void *kaa__xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		kaa__oom();
	return q;
}

char *kaa__xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		kaa__oom();
	return p;
}

char *kaa__xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);
	if (!p)
		kaa__oom();
	return p;
}

char *kaa__xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		kaa__oom();
	return s;
}

/* The daemons' kaa__buf grows through the abort hook (base/buf.h). */
void *kaa__buf_realloc(void *p, size_t n)
{
	return kaa__xrealloc(p, n);
}
