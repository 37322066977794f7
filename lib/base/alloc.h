/*
 * alloc.h - the daemons' one out-of-memory hook and the allocation helpers
 * built on it. kaa-node and kaa-operator have no useful recovery from a
 * failed allocation, so they log once and abort through kaa__oom(); the SDK
 * never links this (it returns KAA_ERR_NOMEM instead).
 * Every daemon-only layer of lib/ (base, json, coord, store, http)
 * and operator/ allocate through these, and map a library's own
 * out-of-memory report (yajl, libyaml, libpq, SQLite, curl) to kaa__oom(),
 * so none of them returns KAA_ERR_NOMEM. lib/proto/endpoint_codec.c, which
 * the SDK links, keeps returning it; so does lib/base/buf.c (base/buf.h).
 * Any thread.
 */
#ifndef KAA_ALLOC_H
#define KAA_ALLOC_H

#include <stddef.h>

/* Logs "out_of_memory" at error level and aborts. Never returns. */
__attribute__((noreturn)) void kaa__oom(void);

/* As malloc/calloc/realloc/strdup/strndup, but never NULL: kaa__oom() on
 * failure. Zero sizes allocate one byte. */
void *kaa__xmalloc(size_t n);
void *kaa__xcalloc(size_t n, size_t size);
void *kaa__xrealloc(void *p, size_t n);
char *kaa__xstrdup(const char *s);
char *kaa__xstrndup(const char *s, size_t n);
/* As asprintf, returning the string: never NULL (kaa__oom() on failure;
 * a bad format is a bug and aborts too). */
char *kaa__xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
