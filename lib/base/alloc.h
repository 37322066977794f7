/*
 * alloc.h - the daemons' one out-of-memory hook and the allocation helpers
 * built on it. kaa-node and kaa-operator have no useful recovery from a
 * failed allocation, so they log once and abort through kaa__oom(); the SDK
 * never links this (it returns KAA_ERR_NOMEM instead).
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

#endif
