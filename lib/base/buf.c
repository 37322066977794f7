#include "base/buf.h"

#include "base/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_INITIAL 256

/* Room for n more bytes and the NUL. */
static int reserve(kaa__buf *b, size_t n)
{
	if (b->err)
		return b->err;
	if (n > SIZE_MAX - 1 - b->len || (b->max && b->len + n > b->max))
		return b->err = KAA_ERR_TOO_BIG;
	size_t need = b->len + n + 1;
	if (need <= b->cap)
		return KAA_OK;
	size_t cap = b->cap ? b->cap : BUF_INITIAL;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = kaa__buf_realloc(b->p, cap);
	if (!p)
		return b->err = KAA_ERR_NOMEM;
	b->p = p;
	b->cap = cap;
	return KAA_OK;
}

int kaa__buf_put(kaa__buf *b, const void *s, size_t n)
{
	int rc = reserve(b, n);
	if (rc != KAA_OK)
		return rc;
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return KAA_OK;
}

int kaa__buf_puts(kaa__buf *b, const char *s)
{
	return kaa__buf_put(b, s, strlen(s));
}

int kaa__buf_vprintf(kaa__buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list again;

	if (b->err)
		return b->err;
	va_copy(again, ap);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	int rc = KAA_OK;
	if (n < 0) {
		rc = b->err = KAA_ERR_INVAL;
	} else if ((size_t)n < sizeof(small)) {
		rc = kaa__buf_put(b, small, (size_t)n);
	} else if ((rc = reserve(b, (size_t)n)) == KAA_OK) {
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
		b->len += (size_t)n;
	}
	va_end(again);
	return rc;
}

int kaa__buf_printf(kaa__buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = kaa__buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

int kaa__buf_fail(kaa__buf *b, int err)
{
	if (!b->err)
		b->err = err;
	return b->err;
}

void kaa__buf_reset(kaa__buf *b)
{
	b->len = 0;
	b->err = KAA_OK;
	if (b->p)
		b->p[0] = '\0';
}

int kaa__buf_take(kaa__buf *b, char **out, size_t *len)
{
	int rc = kaa__buf_put(b, "", 0);
	*out = rc == KAA_OK ? b->p : NULL;
	if (len)
		*len = rc == KAA_OK ? b->len : 0;
	if (rc != KAA_OK)
		free(b->p);
	*b = (kaa__buf){.max = b->max};
	return rc;
}

void kaa__buf_free(kaa__buf *b)
{
	if (!b)
		return;
	free(b->p);
	*b = (kaa__buf){.max = b->max};
}
