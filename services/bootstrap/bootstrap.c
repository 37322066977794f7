#include "bootstrap/bootstrap.h"

#include "base/error.h"

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

int kaa__bootstrap_render(const kaa__node_record *nodes, size_t n, char **out, size_t *len)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	const unsigned char *buf;
	size_t blen;

	if (!g)
		return KAA_ERR_NOMEM;
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
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_get_buf(g, &buf, &blen);
	*out = malloc(blen + 1);
	if (!*out) {
		yajl_gen_free(g);
		return KAA_ERR_NOMEM;
	}
	memcpy(*out, buf, blen);
	(*out)[blen] = '\0';
	*len = blen;
	yajl_gen_free(g);
	return KAA_OK;
}
