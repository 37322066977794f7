#include "proto/device_url.h"

#include "base/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *prefix;
	unsigned flag;
	bool http, tls;
	uint16_t port;
} schemes[] = {
	{"ws://", KAA__URL_WS, false, false, 80},
	{"wss://", KAA__URL_WS, false, true, 443},
	{"http://", KAA__URL_HTTP, true, false, 80},
	{"https://", KAA__URL_HTTP, true, true, 443},
};

static bool dns_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '-';
}

static bool v6_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       c == ':' || c == '.';
}

static bool path_char(char c)
{
	return c > ' ' && c < 0x7f && c != '?' && c != '#' && c != '"' && c != '\\' && c != '%';
}

/* "PORT" of n characters: 1..65535, decimal digits only. */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v = 0;
	if (n == 0 || n > 5)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return KAA_ERR_INVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v < 1 || v > 65535)
		return KAA_ERR_INVAL;
	*port = (uint16_t)v;
	return KAA_OK;
}

/* HOST [":" PORT] in s[0..n): fills host and port (port left alone when
 * absent). */
static int parse_authority(const char *s, size_t n, kaa__device_url *u, bool need_port)
{
	const char *hs = s, *colon = NULL;
	size_t hl;
	if (n > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', n);
		if (!rb)
			return KAA_ERR_INVAL;
		hs = s + 1;
		hl = (size_t)(rb - hs);
		for (size_t i = 0; i < hl; i++)
			if (!v6_char(hs[i]))
				return KAA_ERR_INVAL;
		if (hl < 2 || !memchr(hs, ':', hl))
			return KAA_ERR_INVAL;
		if (rb + 1 < s + n) {
			if (rb[1] != ':')
				return KAA_ERR_INVAL;
			colon = rb + 1;
		}
	} else {
		colon = memchr(s, ':', n);
		hl = colon ? (size_t)(colon - s) : n;
		for (size_t i = 0; i < hl; i++)
			if (!dns_char(s[i]))
				return KAA_ERR_INVAL;
	}
	if (hl == 0)
		return KAA_ERR_INVAL;
	if (hl >= KAA__URL_HOST_MAX)
		return KAA_ERR_TOO_BIG;
	if (colon) {
		if (parse_port(colon + 1, (size_t)(s + n - colon - 1), &u->port) != KAA_OK)
			return KAA_ERR_INVAL;
	} else if (need_port) {
		return KAA_ERR_INVAL;
	}
	memcpy(u->host, hs, hl);
	u->host[hl] = '\0';
	return KAA_OK;
}

int kaa__device_url_parse(const char *s, unsigned flags, kaa__device_url *out)
{
	const char *rest = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!s)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		size_t pl = strlen(schemes[i].prefix);
		if ((flags & schemes[i].flag) && strncmp(s, schemes[i].prefix, pl) == 0) {
			rest = s + pl;
			out->http = schemes[i].http;
			out->tls = schemes[i].tls;
			out->port = schemes[i].port;
			break;
		}
	}
	if (!rest) {
		/* "host:port" without a scheme, when allowed; anything with a
		 * "://" is a scheme we do not take */
		if (!(flags & KAA__URL_BARE) || strstr(s, "://") || strchr(s, '/'))
			return KAA_ERR_INVAL;
		out->http = !(flags & KAA__URL_WS);
		rc = parse_authority(s, strlen(s), out, true);
		if (rc == KAA_OK)
			strcpy(out->path, "/");
		goto out;
	}
	const char *slash = strchr(rest, '/');
	size_t alen = slash ? (size_t)(slash - rest) : strlen(rest);
	if (memchr(rest, '@', alen)) {
		rc = KAA_ERR_INVAL; /* user info: credentials do not belong in a URL */
		goto out;
	}
	rc = parse_authority(rest, alen, out, false);
	if (rc != KAA_OK)
		goto out;
	if (!slash) {
		strcpy(out->path, "/");
		goto out;
	}
	size_t pl = strlen(slash);
	for (size_t i = 0; i < pl; i++)
		if (!path_char(slash[i])) {
			rc = KAA_ERR_INVAL;
			goto out;
		}
	if (pl >= KAA__URL_PATH_MAX) {
		rc = KAA_ERR_TOO_BIG;
		goto out;
	}
	memcpy(out->path, slash, pl + 1);
out:
	if (rc != KAA_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

int kaa__device_url_format(const kaa__device_url *u, char *out, size_t cap)
{
	const char *scheme = u->http ? (u->tls ? "https" : "http") : (u->tls ? "wss" : "ws");
	bool v6 = strchr(u->host, ':') != NULL;
	int n = snprintf(out, cap, "%s://%s%s%s:%u%s", scheme, v6 ? "[" : "", u->host,
			 v6 ? "]" : "", (unsigned)u->port, u->path[0] ? u->path : "/");
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		return KAA_ERR_TOO_BIG;
	}
	return KAA_OK;
}
