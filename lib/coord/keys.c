#include "coord/keys.h"

#include "base/error.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

__attribute__((format(printf, 3, 4))) static int key(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(out, cap, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap) {
		if (cap)
			out[0] = '\0';
		return KAA_ERR_TOO_BIG;
	}
	return n;
}

int kaa__key_cluster(char *out, size_t cap, const char *cluster)
{
	return key(out, cap, "/kaa/%s/", cluster);
}

int kaa__key_nodes(char *out, size_t cap, const char *cluster)
{
	return key(out, cap, "/kaa/%s/nodes/", cluster);
}

int kaa__key_node(char *out, size_t cap, const char *cluster, const char *node_id)
{
	return key(out, cap, "/kaa/%s/nodes/%s", cluster, node_id);
}

int kaa__key_leader(char *out, size_t cap, const char *cluster)
{
	return key(out, cap, "/kaa/%s/control/leader", cluster);
}

int kaa__key_apps(char *out, size_t cap, const char *cluster)
{
	return key(out, cap, "/kaa/%s/apps/", cluster);
}

int kaa__key_app(char *out, size_t cap, const char *cluster, int64_t app_id)
{
	return key(out, cap, "/kaa/%s/apps/%" PRId64 "/", cluster, app_id);
}

int kaa__key_app_rev(char *out, size_t cap, const char *cluster, int64_t app_id)
{
	return key(out, cap, "/kaa/%s/apps/%" PRId64 "/rev", cluster, app_id);
}

int kaa__key_app_endpoint(char *out, size_t cap, const char *cluster, int64_t app_id,
			  const char *key_hash)
{
	return key(out, cap, "/kaa/%s/apps/%" PRId64 "/endpoints/%s", cluster, app_id, key_hash);
}

int kaa__key_drains(char *out, size_t cap, const char *cluster)
{
	return key(out, cap, "/kaa/%s/drain/", cluster);
}

int kaa__key_drain(char *out, size_t cap, const char *cluster, const char *node_id)
{
	return key(out, cap, "/kaa/%s/drain/%s", cluster, node_id);
}

int kaa__key_rebalance(char *out, size_t cap, const char *cluster)
{
	return key(out, cap, "/kaa/%s/rebalance", cluster);
}
