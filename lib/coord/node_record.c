#include "coord/node_record.h"

#include "base/alloc.h"
#include "base/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

void kaa__node_record_clear(kaa__node_record *r)
{
	if (!r)
		return;
	free(r->id);
	for (size_t i = 0; i < r->n_services; i++)
		free(r->services[i]);
	free(r->host);
	for (size_t i = 0; i < r->n_ports; i++)
		free(r->ports[i].name);
	free(r->version);
	for (size_t i = 0; i < r->n_advertise; i++)
		free(r->advertise[i]);
	memset(r, 0, sizeof(*r));
}

static int gen_str(yajl_gen g, const char *s)
{
	return yajl_gen_string(g, (const unsigned char *)s, strlen(s)) == yajl_gen_status_ok ? 0
											     : -1;
}

int kaa__node_record_encode(const kaa__node_record *r, char **json, size_t *len)
{
	yajl_gen g;
	const unsigned char *buf;
	size_t blen;
	int bad = 0;

	*json = NULL;
	if (!r->id || !*r->id)
		return KAA_ERR_INVAL;
	g = yajl_gen_alloc(NULL);
	if (!g)
		kaa__oom();
	bad |= yajl_gen_map_open(g);
	bad |= gen_str(g, "id") | gen_str(g, r->id);
	bad |= gen_str(g, "services");
	bad |= yajl_gen_array_open(g);
	for (size_t i = 0; i < r->n_services; i++)
		bad |= gen_str(g, r->services[i]);
	bad |= yajl_gen_array_close(g);
	bad |= gen_str(g, "host") | gen_str(g, r->host ? r->host : "");
	bad |= gen_str(g, "ports");
	bad |= yajl_gen_map_open(g);
	for (size_t i = 0; i < r->n_ports; i++)
		bad |= gen_str(g, r->ports[i].name) | yajl_gen_integer(g, r->ports[i].port);
	bad |= yajl_gen_map_close(g);
	bad |= gen_str(g, "sessions") | yajl_gen_integer(g, r->sessions);
	bad |= gen_str(g, "load") | yajl_gen_double(g, isfinite(r->load) ? r->load : 0.0);
	bad |= gen_str(g, "draining") | yajl_gen_bool(g, r->draining);
	bad |= gen_str(g, "version") | gen_str(g, r->version ? r->version : "");
	if (r->tls)
		bad |= gen_str(g, "tls") | yajl_gen_bool(g, 1);
	if (r->n_advertise) {
		bad |= gen_str(g, "advertise") | yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_advertise; i++)
			bad |= gen_str(g, r->advertise[i]);
		bad |= yajl_gen_array_close(g);
	}
	bad |= yajl_gen_map_close(g);
	if (bad || yajl_gen_get_buf(g, &buf, &blen) != yajl_gen_status_ok) {
		yajl_gen_free(g);
		return KAA_ERR_INTERNAL; /* the calls above cannot fail on a valid record */
	}
	*json = kaa__xmalloc(blen + 1);
	memcpy(*json, buf, blen);
	(*json)[blen] = '\0';
	if (len)
		*len = blen;
	yajl_gen_free(g);
	return KAA_OK;
}

static int dup_str(char **dst, yajl_val v)
{
	if (!YAJL_IS_STRING(v))
		return KAA_ERR_INVAL;
	*dst = kaa__xstrdup(v->u.string);
	return KAA_OK;
}

int kaa__node_record_decode(const char *json, size_t len, kaa__node_record *out)
{
	char errbuf[128];
	char *copy;
	yajl_val root;
	int rc = KAA_OK;

	memset(out, 0, sizeof(*out));
	if (len > KAA_NODE_RECORD_MAX_BYTES)
		return KAA_ERR_TOO_BIG;
	copy = kaa__xmalloc(len + 1); /* yajl_tree_parse needs a NUL-terminated copy */
	memcpy(copy, json, len);
	copy[len] = '\0';
	if (strlen(copy) != len) {
		free(copy);
		return KAA_ERR_INVAL; /* embedded NUL */
	}
	root = yajl_tree_parse(copy, errbuf, sizeof(errbuf));
	free(copy);
	if (!root || !YAJL_IS_OBJECT(root)) {
		yajl_tree_free(root);
		return KAA_ERR_INVAL;
	}
	for (size_t i = 0; i < root->u.object.len && rc == KAA_OK; i++) {
		const char *k = root->u.object.keys[i];
		yajl_val v = root->u.object.values[i];
		if (strcmp(k, "id") == 0) {
			free(out->id);
			out->id = NULL;
			rc = dup_str(&out->id, v);
		} else if (strcmp(k, "host") == 0) {
			free(out->host);
			out->host = NULL;
			rc = dup_str(&out->host, v);
		} else if (strcmp(k, "version") == 0) {
			free(out->version);
			out->version = NULL;
			rc = dup_str(&out->version, v);
		} else if (strcmp(k, "services") == 0) {
			if (!YAJL_IS_ARRAY(v) || v->u.array.len > KAA_NODE_MAX_SERVICES ||
			    out->n_services) {
				rc = KAA_ERR_INVAL;
				break;
			}
			for (size_t j = 0; j < v->u.array.len && rc == KAA_OK; j++) {
				rc = dup_str(&out->services[j], v->u.array.values[j]);
				if (rc == KAA_OK)
					out->n_services++;
			}
		} else if (strcmp(k, "ports") == 0) {
			if (!YAJL_IS_OBJECT(v) || v->u.object.len > KAA_NODE_MAX_PORTS ||
			    out->n_ports) {
				rc = KAA_ERR_INVAL;
				break;
			}
			for (size_t j = 0; j < v->u.object.len; j++) {
				yajl_val p = v->u.object.values[j];
				if (!YAJL_IS_INTEGER(p) || YAJL_GET_INTEGER(p) < 0 ||
				    YAJL_GET_INTEGER(p) > 65535) {
					rc = KAA_ERR_INVAL;
					break;
				}
				out->ports[j].name = kaa__xstrdup(v->u.object.keys[j]);
				out->ports[j].port = (int)YAJL_GET_INTEGER(p);
				out->n_ports++;
			}
		} else if (strcmp(k, "sessions") == 0) {
			if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0)
				rc = KAA_ERR_INVAL;
			else
				out->sessions = YAJL_GET_INTEGER(v);
		} else if (strcmp(k, "load") == 0) {
			if (!YAJL_IS_NUMBER(v))
				rc = KAA_ERR_INVAL;
			else
				out->load = YAJL_GET_DOUBLE(v);
		} else if (strcmp(k, "draining") == 0 || strcmp(k, "tls") == 0) {
			bool *b = k[0] == 'd' ? &out->draining : &out->tls;
			if (YAJL_IS_TRUE(v))
				*b = true;
			else if (YAJL_IS_FALSE(v))
				*b = false;
			else
				rc = KAA_ERR_INVAL;
		} else if (strcmp(k, "advertise") == 0) {
			if (!YAJL_IS_ARRAY(v) || v->u.array.len > KAA_NODE_MAX_ADVERTISE ||
			    out->n_advertise) {
				rc = KAA_ERR_INVAL;
				break;
			}
			for (size_t j = 0; j < v->u.array.len && rc == KAA_OK; j++) {
				yajl_val u = v->u.array.values[j];
				if (YAJL_IS_STRING(u) &&
				    strlen(u->u.string) > KAA_NODE_ADVERTISE_MAX_BYTES)
					rc = KAA_ERR_INVAL;
				else
					rc = dup_str(&out->advertise[j], u);
				if (rc == KAA_OK)
					out->n_advertise++;
			}
		}
	}
	yajl_tree_free(root);
	if (rc == KAA_OK && (!out->id || !*out->id))
		rc = KAA_ERR_INVAL;
	if (rc != KAA_OK)
		kaa__node_record_clear(out);
	return rc;
}

int kaa__node_record_copy(kaa__node_record *dst, const kaa__node_record *src)
{
	char *json;
	size_t len;
	int rc = kaa__node_record_encode(src, &json, &len);
	if (rc != KAA_OK)
		return rc;
	rc = kaa__node_record_decode(json, len, dst);
	free(json);
	return rc;
}

int kaa__node_record_port(const kaa__node_record *r, const char *service)
{
	for (size_t i = 0; i < r->n_ports; i++)
		if (strcmp(r->ports[i].name, service) == 0)
			return r->ports[i].port;
	return 0;
}

bool kaa__node_record_has_service(const kaa__node_record *r, const char *service)
{
	for (size_t i = 0; i < r->n_services; i++)
		if (strcmp(r->services[i], service) == 0)
			return true;
	return false;
}
