/*
 * kube_internal.h - what the files of the Kubernetes client share
 * (kube_client.c, kubeconfig.c, informer.c, kube_lease.c, kube_event.c).
 * Not for the controller: it uses kube_client.h only.
 */
#ifndef KAA_KUBE_INTERNAL_H
#define KAA_KUBE_INTERNAL_H

#include "kube_client.h"

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>

/* ---- text for the API server, into a kaa__buf (base/buf.h) ---- */

/* Appends s as a JSON string literal with quotes; NULL appends null. */
void kaa__kube_json_str(kaa__buf *b, const char *s);
/* Appends s percent-encoded for a query-string value. */
void kaa__kube_query(kaa__buf *b, const char *s);

/* ---- requests with options the public call does not offer ---- */

/* Streaming receiver: called with each chunk; return false to abort the
 * transfer (the call then returns KAA_ERR_CANCELED unless *stop was the
 * reason, also KAA_ERR_CANCELED). */
typedef bool (*kaa__kube_sink)(void *ud, const char *data, size_t len);

typedef struct kaa__kube_req_opts {
	const volatile int *stop; /* abort promptly when it becomes non-zero */
	int timeout_ms;           /* whole request; 0: 30 s; -1: none (watches) */
	int low_speed_s;          /* watches: abort when idle this long; 0: off */
	kaa__kube_sink sink;      /* NULL: collect the body into resp */
	void *sink_ud;
	/* Called (on the calling thread) about once a second during the
	 * transfer; return false to abort like a sink. */
	bool (*tick)(void *ud);
	void *tick_ud;
} kaa__kube_req_opts;

/* Like kaa__kube_request; with a sink, resp->body stays NULL except for
 * a non-2xx answer, whose body is collected (bounded) instead. */
int kaa__kube_request_ex(kaa__kube *k, const char *method, const char *path,
			 const char *content_type, const char *body, const kaa__kube_req_opts *o,
			 kaa__kube_resp *resp);

/* The identity used as reportingInstance (copy; malloc'd) */
char *kaa__kube_identity(kaa__kube *k);

/* "2026-11-27T22:39:24.123456Z" of the wall clock into buf[32]. */
void kaa__kube_microtime(char buf[32]);

/* Serialises a yajl tree as JSON into b. */
void kaa__kube_gen(kaa__buf *b, yajl_val v);

/* Reads a whole regular file of at most max bytes, NUL-terminated.
 * KAA_ERR_NOTFOUND (absent), KAA_ERR_TOO_BIG, KAA_ERR_IO. */
int kaa__kube_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
