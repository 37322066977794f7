/*
 * buf.h - the one growable byte/string buffer (kaa__buf), used by the
 * daemons and by the SDK.
 *
 * Out-of-memory policy. The daemons abort on OOM (base/alloc.h); the SDK
 * must never abort and gets an error back. Both hold because the buffer
 * grows only through kaa__buf_realloc(), which each library defines once
 * and the link picks:
 *   - libkaacore (the daemons, lib/base/alloc.c): kaa__xrealloc, which
 *     aborts through kaa__oom() and never returns NULL, so daemon code
 *     never sees KAA_ERR_NOMEM from a buffer and need not check for it;
 *   - libkaa (the SDK, sdk/src/sdk_alloc.c): realloc(); a NULL becomes the
 *     buffer's sticky error KAA_ERR_NOMEM, which the SDK checks and returns.
 * Nothing else in this file allocates.
 *
 * Bounds. A buffer whose size comes from outside (a peer's body, a stream
 * line) sets max: an append that would make len exceed max fails with
 * KAA_ERR_TOO_BIG. max 0 means no limit, for text the process builds from
 * its own data.
 *
 * Errors are sticky: after a failed append (KAA_ERR_NOMEM, KAA_ERR_TOO_BIG,
 * KAA_ERR_INVAL from a bad format) every later append does nothing and
 * returns the same error, so a caller can append many pieces and check
 * once (b->err, or the result of kaa__buf_take). The text appended before
 * the failure stays intact and NUL-terminated.
 *
 * A kaa__buf is a plain value owned by whoever declared it; zero-initialise
 * it (`kaa__buf b = {0};`, or set .max) before use. Not thread-safe: one
 * thread at a time per buffer. No logging.
 */
#ifndef KAA_BUF_H
#define KAA_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct kaa__buf {
	char *p;    /* NULL until the first successful append; then NUL-terminated */
	size_t len; /* bytes of text, without the NUL */
	size_t cap; /* bytes allocated at p */
	size_t max; /* 0: no limit; else len never exceeds max */
	int err;    /* KAA_OK, or the sticky error of the first failed append */
} kaa__buf;

/* The allocator the buffer grows with (see the policy above): as
 * realloc(p, n), n > 0. Defined by lib/base/alloc.c for the daemons and by
 * sdk/src/sdk_alloc.c for the SDK; a binary links exactly one. */
void *kaa__buf_realloc(void *p, size_t n);

/* Appends n bytes of s (which may hold NULs; s may be NULL when n is 0).
 * KAA_OK, KAA_ERR_TOO_BIG (max or size_t overflow), KAA_ERR_NOMEM (SDK
 * only), or the earlier sticky error. Appending 0 bytes to an empty buffer
 * allocates it, so p is then "" rather than NULL. */
int kaa__buf_put(kaa__buf *b, const void *s, size_t n);

/* kaa__buf_put of the C string s. */
int kaa__buf_puts(kaa__buf *b, const char *s);

/* Appends printf-formatted text, never truncated. As kaa__buf_put, and
 * KAA_ERR_INVAL when vsnprintf fails (bad format or conversion). */
int kaa__buf_printf(kaa__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kaa__buf_vprintf(kaa__buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Marks the buffer failed with err (< 0) unless it failed already, for a
 * caller whose own step failed halfway through building the text. Returns
 * the buffer's error. */
int kaa__buf_fail(kaa__buf *b, int err);

/* Empties the text and clears the error; keeps the memory and max. */
void kaa__buf_reset(kaa__buf *b);

/* Hands the text over: on KAA_OK *out is the malloc'd, NUL-terminated text
 * ("" when nothing was appended; the caller frees it) and *len (if len is
 * not NULL) its length. On a sticky error the text is freed, *out is NULL
 * and the error is returned. Either way b is left empty (max kept). */
int kaa__buf_take(kaa__buf *b, char **out, size_t *len);

/* Frees the text and leaves b empty (max kept); b may be NULL. */
void kaa__buf_free(kaa__buf *b);

#endif
