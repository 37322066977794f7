/*
 * router.h - REST routing for the control API: a static table of
 * (method, path pattern) -> handler, where a pattern segment "{name}"
 * captures one path segment. The same table is what the OpenAPI check
 * compares against docs/openapi.yaml, so documented and served routes
 * cannot drift apart.
 * Pure functions over immutable tables: any thread.
 */
#ifndef KAA_CONTROL_ROUTER_H
#define KAA_CONTROL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA_ROUTE_MAX_PARAMS 4
#define KAA_ROUTE_MAX_SEGMENT 128 /* longer path segments never match (404) */

typedef struct kaa__route_params {
	const char *names[KAA_ROUTE_MAX_PARAMS];
	char values[KAA_ROUTE_MAX_PARAMS][KAA_ROUTE_MAX_SEGMENT];
	size_t n;
} kaa__route_params;

typedef struct kaa__route {
	const char *method;  /* "GET", "POST", "PUT", "PATCH", "DELETE" */
	const char *pattern; /* "/api/v1/tenants/{tenant}" */
	int id;              /* caller's handler id */
} kaa__route;

enum {
	KAA_ROUTE_FOUND = 0,
	KAA_ROUTE_NO_PATH = 1,   /* 404 */
	KAA_ROUTE_NO_METHOD = 2, /* 405: the path exists with other methods */
};

/* Matches method and path (raw, without the query) against routes[0..n).
 * On KAA_ROUTE_FOUND, *found is the route and params holds the captures,
 * percent-decoded. allow (may be NULL) receives "GET, POST" for
 * KAA_ROUTE_NO_METHOD. */
int kaa__route_match(const kaa__route *routes, size_t n, const char *method, const char *path,
		     const kaa__route **found, kaa__route_params *params, char *allow,
		     size_t allow_len);
/* The value of a captured parameter, or NULL. */
const char *kaa__route_param(const kaa__route_params *p, const char *name);
/* A captured parameter as an object id: decimal 1..10^18-1, else (also
 * when absent) -1. */
int64_t kaa__route_id(const kaa__route_params *p, const char *name);
/* Percent-decodes src (len bytes) into dst (cap bytes incl. NUL); false on
 * a bad escape, an encoded NUL or '/' or overflow. */
bool kaa__percent_decode(const char *src, size_t len, char *dst, size_t cap);

#endif
