/*
 * device_url.h - the URLs a device is given and follows: the operations
 * node's WebSocket address (ws:// or wss://, with a path when the node sits
 * behind an ingress that routes by path) and a bootstrap server's address
 * (http:// or https://). kaa-node's --advertise, the node record, the
 * bootstrap answer, Redirect targets and the SDK all use this one parser,
 * so what a node advertises is exactly what a device accepts.
 *
 * Accepted: SCHEME "://" HOST [":" PORT] [PATH], where HOST is a DNS name
 * or IPv4 address ([A-Za-z0-9.-], 1..253 characters) or a bracketed IPv6
 * address, PORT 1..65535 (default 80 for ws/http, 443 for wss/https) and
 * PATH starts with "/" (default "/") and holds printable ASCII other than
 * space, '?', '#', '"', '\\' and '%' (nothing to escape or decode; a query
 * string or fragment is refused rather than silently dropped). No user
 * info. With KAA__URL_BARE, "HOST:PORT" alone is accepted too and means
 * the scheme without TLS (ws or http), for configurations written before
 * URLs existed.
 *
 * SDK-friendly: no allocation, no logging, caller buffers. Any thread.
 */
#ifndef KAA_DEVICE_URL_H
#define KAA_DEVICE_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KAA__URL_HOST_MAX 254 /* 253 characters and the NUL */
#define KAA__URL_PATH_MAX 256 /* 255 characters and the NUL */
/* The longest text kaa__device_url_format writes, NUL included. */
#define KAA__URL_MAX (sizeof("https://[]:65535") + KAA__URL_HOST_MAX + KAA__URL_PATH_MAX)

enum {
	KAA__URL_WS = 1 << 0,   /* ws:// and wss:// */
	KAA__URL_HTTP = 1 << 1, /* http:// and https:// */
	KAA__URL_BARE = 1 << 2, /* also "host:port" (ws or http, no TLS) */
};

typedef struct kaa__device_url {
	bool http;                    /* http(s) rather than ws(s) */
	bool tls;                     /* wss or https */
	char host[KAA__URL_HOST_MAX]; /* without the brackets of an IPv6 address */
	uint16_t port;
	char path[KAA__URL_PATH_MAX];
} kaa__device_url;

/* Parses s (NUL-terminated) into *out, allowing the schemes of the flags
 * (KAA__URL_WS and/or KAA__URL_HTTP, optionally KAA__URL_BARE).
 * KAA_OK, KAA_ERR_INVAL (not such a URL: *out is zeroed) or KAA_ERR_TOO_BIG
 * (host or path longer than the limits above). */
int kaa__device_url_parse(const char *s, unsigned flags, kaa__device_url *out);

/* Writes u as text ("wss://h:443/p"; the port always written) into out
 * (cap bytes, KAA__URL_MAX is always enough). KAA_OK or KAA_ERR_TOO_BIG. */
int kaa__device_url_format(const kaa__device_url *u, char *out, size_t cap);

#endif
