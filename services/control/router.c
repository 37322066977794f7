#include "control/router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool kaa__percent_decode(const char *src, size_t len, char *dst, size_t cap)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = src[i];
		if (c == '%') {
			if (i + 2 >= len)
				return false;
			int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			c = (char)(hi * 16 + lo);
			if (c == '\0' || c == '/')
				return false;
			i += 2;
		}
		if (o + 1 >= cap)
			return false;
		dst[o++] = c;
	}
	dst[o] = '\0';
	return true;
}

/* Matches one pattern; fills params on success. */
static bool match_one(const char *pattern, const char *path, kaa__route_params *params)
{
	const char *p = pattern, *s = path;
	params->n = 0;
	while (*p && *s) {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		const char *pe = strchr(p, '/'), *se = strchr(s, '/');
		size_t plen = pe ? (size_t)(pe - p) : strlen(p);
		size_t slen = se ? (size_t)(se - s) : strlen(s);
		if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
			if (slen == 0 || params->n == KAA_ROUTE_MAX_PARAMS)
				return false;
			if (!kaa__percent_decode(s, slen, params->values[params->n],
						 sizeof(params->values[0])))
				return false;
			/* names point into the static pattern: "{tenant}" -> "tenant}" is
			 * compared up to the brace by kaa__route_param. */
			params->names[params->n] = p + 1;
			params->n++;
		} else if (plen != slen || memcmp(p, s, plen) != 0) {
			return false;
		}
		p += plen;
		s += slen;
	}
	return *p == '\0' && *s == '\0';
}

const char *kaa__route_param(const kaa__route_params *p, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < p->n; i++)
		if (strncmp(p->names[i], name, n) == 0 && p->names[i][n] == '}')
			return p->values[i];
	return NULL;
}

int64_t kaa__route_id(const kaa__route_params *p, const char *name)
{
	const char *s = kaa__route_param(p, name);
	char *end;
	if (!s || !*s || strlen(s) > 18)
		return -1;
	long long v = strtoll(s, &end, 10);
	return *end || v < 1 ? -1 : (int64_t)v;
}

int kaa__route_match(const kaa__route *routes, size_t n, const char *method, const char *path,
		     const kaa__route **found, kaa__route_params *params, char *allow,
		     size_t allow_len)
{
	kaa__route_params tmp;
	bool path_seen = false;
	size_t used = 0;

	if (allow && allow_len)
		allow[0] = '\0';
	*found = NULL;
	if (path[0] != '/')
		return KAA_ROUTE_NO_PATH;
	/* A trailing slash is not the same resource: "/api/v1/tenants/" is 404. */
	for (size_t i = 0; i < n; i++) {
		if (!match_one(routes[i].pattern, path, &tmp))
			continue;
		if (strcmp(routes[i].method, method) == 0 ||
		    (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0)) {
			*found = &routes[i];
			*params = tmp;
			return KAA_ROUTE_FOUND;
		}
		path_seen = true;
		if (allow && used < allow_len) {
			int w = snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "",
					 routes[i].method);
			if (w > 0)
				used += (size_t)w;
		}
	}
	return path_seen ? KAA_ROUTE_NO_METHOD : KAA_ROUTE_NO_PATH;
}
