/*
 * autoscale.c - see autoscale.h.
 */
#include "autoscale.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/error.h"
#include "coord/node_record.h"
#include "coord/keys.h"

static void normalise(const kaa__autoscale_input *in, int64_t *total, int32_t *min, int32_t *max,
		      int32_t *target)
{
	*total = in->total_sessions < 0 ? 0 : in->total_sessions;
	*min = in->min < 1 ? 1 : in->min;
	*max = in->max < *min ? *min : in->max;
	*target = in->target < 1 ? 1 : in->target;
}

int32_t kaa__autoscale_recommend(const kaa__autoscale_input *in)
{
	int64_t total, want;
	int32_t min, max, target;

	normalise(in, &total, &min, &max, &target);
	want = total / target + (total % target ? 1 : 0);
	if (want < min)
		want = min;
	if (want > max)
		want = max;
	return (int32_t)want;
}

int32_t kaa__autoscale_decide(kaa__autoscale_state *st, const kaa__autoscale_input *in)
{
	int64_t total;
	int32_t min, max, target, rec;

	normalise(in, &total, &min, &max, &target);
	rec = kaa__autoscale_recommend(in);
	/* outside the bounds (the spec changed): follow them at once */
	if (in->current > max || in->current < min || rec >= in->current) {
		st->low_since_ms = 0;
		st->low_max = 0;
		return in->current > max ? max : (rec > in->current ? rec : in->current);
	}
	if (!st->low_since_ms) {
		st->low_since_ms = in->now_ms ? in->now_ms : 1;
		st->low_max = rec;
	} else if (rec > st->low_max) {
		st->low_max = rec;
	}
	if (in->now_ms - st->low_since_ms < in->window_ms)
		return in->current;
	rec = st->low_max;
	st->low_since_ms = 0;
	st->low_max = 0;
	return rec;
}

int kaa__autoscale_read(kaa__coord *c, const char *cluster, kaa__autoscale_node **nodes, size_t *n,
			int64_t *total)
{
	char prefix[128];
	kaa__kv_list l = {0};
	kaa__autoscale_node *out = NULL;
	size_t cnt = 0;
	int64_t sum = 0;
	int rc;

	*nodes = NULL;
	*n = 0;
	*total = 0;
	if (!c || !cluster || !cluster[0] || kaa__key_nodes(prefix, sizeof(prefix), cluster) < 0)
		return KAA_ERR_INVAL;
	rc = kaa__coord_range(c, prefix, true, &l);
	if (rc != KAA_OK)
		goto out;
	if (l.n) {
		out = kaa__xcalloc(l.n < KAA_AUTOSCALE_MAX_NODES ? l.n : KAA_AUTOSCALE_MAX_NODES,
				   sizeof(*out));
	}
	for (size_t i = 0; i < l.n && cnt < KAA_AUTOSCALE_MAX_NODES; i++) {
		kaa__node_record r = {0};
		if (kaa__node_record_decode(l.items[i].value, l.items[i].value_len, &r) != KAA_OK)
			continue;
		if (kaa__node_record_has_service(&r, "operations") &&
		    strlen(r.id) < sizeof(out[cnt].id)) {
			snprintf(out[cnt].id, sizeof(out[cnt].id), "%s", r.id);
			out[cnt].sessions = r.sessions < 0 ? 0 : r.sessions;
			out[cnt].draining = r.draining;
			sum += out[cnt].sessions;
			cnt++;
		}
		kaa__node_record_clear(&r);
	}
	*nodes = out;
	out = NULL;
	*n = cnt;
	*total = sum;
out:
	free(out);
	kaa__kv_list_clear(&l);
	return rc;
}

size_t kaa__autoscale_pick_drain(const kaa__autoscale_node *nodes, size_t n, size_t k, size_t *pick)
{
	size_t got = 0;

	/* selection by repeated minimum: n is the number of nodes, k small */
	while (got < k) {
		size_t best = n;
		for (size_t i = 0; i < n; i++) {
			bool taken = nodes[i].draining;
			for (size_t j = 0; j < got && !taken; j++)
				taken = pick[j] == i;
			if (taken)
				continue;
			if (best == n || nodes[i].sessions < nodes[best].sessions ||
			    (nodes[i].sessions == nodes[best].sessions &&
			     strcmp(nodes[i].id, nodes[best].id) < 0))
				best = i;
		}
		if (best == n)
			break;
		pick[got++] = best;
	}
	return got;
}
