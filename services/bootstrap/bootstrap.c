#include "bootstrap/bootstrap.h"

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "proto/device_url.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

int kaa__bootstrap_weight(const kaa__node_record *r)
{
	double load = r->load > 0 && isfinite(r->load) ? r->load : 0;
	double w = 1000.0 / (1.0 + (double)r->sessions / 1000.0 + load);
	long v = lround(w);
	return v < 1 ? 1 : v > 1000 ? 1000 : (int)v;
}

static void key(yajl_gen g, const char *k)
{
	yajl_gen_string(g, (const unsigned char *)k, strlen(k));
}

/* "url" (preferred) and "urls": the node's advertised URLs that a device
 * can parse, in order; a node that advertises none (an older node) gets
 * the one its host, port and TLS flag make. */
static void gen_urls(yajl_gen g, const kaa__node_record *r, int port)
{
	const char *ok[KAA_NODE_MAX_ADVERTISE + 1];
	char fallback[KAA__URL_MAX];
	size_t n = 0;
	kaa__device_url u;

	for (size_t i = 0; i < r->n_advertise; i++)
		if (kaa__device_url_parse(r->advertise[i], KAA__URL_WS, &u) == KAA_OK)
			ok[n++] = r->advertise[i];
	if (n == 0) {
		memset(&u, 0, sizeof(u));
		u.tls = r->tls;
		u.port = (uint16_t)port;
		strcpy(u.path, "/");
		if (r->host && strlen(r->host) < sizeof(u.host)) {
			strcpy(u.host, r->host);
			if (kaa__device_url_format(&u, fallback, sizeof(fallback)) == KAA_OK &&
			    kaa__device_url_parse(fallback, KAA__URL_WS, &u) == KAA_OK)
				ok[n++] = fallback;
		}
	}
	if (n == 0)
		return;
	key(g, "url");
	key(g, ok[0]);
	key(g, "urls");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++)
		key(g, ok[i]);
	yajl_gen_array_close(g);
}

int kaa__bootstrap_render(const kaa__node_record *nodes, size_t n, char **out, size_t *len)
{
	yajl_gen g = kaa__json_gen_new();
	const unsigned char *buf;
	size_t blen;

	yajl_gen_map_open(g);
	key(g, "nodes");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		const kaa__node_record *r = &nodes[i];
		int port = kaa__node_record_port(r, "operations");
		if (!kaa__node_record_has_service(r, "operations") || r->draining || port == 0)
			continue;
		yajl_gen_map_open(g);
		key(g, "id");
		key(g, r->id);
		key(g, "host");
		key(g, r->host ? r->host : "");
		key(g, "port");
		yajl_gen_integer(g, port);
		key(g, "weight");
		yajl_gen_integer(g, kaa__bootstrap_weight(r));
		key(g, "tls");
		yajl_gen_bool(g, r->tls);
		gen_urls(g, r, port);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &blen);
	*out = kaa__xmalloc(blen + 1);
	memcpy(*out, buf, blen);
	(*out)[blen] = '\0';
	*len = blen;
	yajl_gen_free(g);
	return KAA_OK;
}
