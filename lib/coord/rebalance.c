#include "coord/rebalance.h"

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#define ID_MAX 255

int64_t kaa__rebalance_compute(const kaa__rebalance_node *nodes, size_t n, double threshold,
			       int64_t min_sessions, kaa__rebalance_plan *plan)
{
	int64_t total = 0, live = 0, moved = 0;
	plan->n_moves = 0;
	for (size_t i = 0; i < n; i++)
		if (!nodes[i].draining && nodes[i].sessions >= 0) {
			total += nodes[i].sessions;
			live++;
		}
	if (live < 2 || threshold < 0)
		return 0;
	/* target: the ceiling of the mean, so shedding never pushes a
	 * receiver above what the sender keeps */
	int64_t target = (total + live - 1) / live;
	double mean = (double)total / (double)live;
	int64_t busiest = 0;
	for (size_t i = 0; i < n; i++)
		if (!nodes[i].draining && nodes[i].sessions > busiest)
			busiest = nodes[i].sessions;
	if ((double)busiest <= mean * (1.0 + threshold) || (double)busiest - mean < min_sessions)
		return 0;

	int64_t *surplus = kaa__xcalloc(n, sizeof(*surplus));
	int64_t *deficit = kaa__xcalloc(n, sizeof(*deficit));
	for (size_t i = 0; i < n; i++) {
		int64_t s = nodes[i].draining ? 0 : nodes[i].sessions;
		surplus[i] = !nodes[i].draining && s > target ? s - target : 0;
		/* receivers fill up to the floor of the mean */
		int64_t floor_mean = total / live;
		deficit[i] = !nodes[i].draining && s < floor_mean ? floor_mean - s : 0;
	}
	/* Greedy: the largest surplus to the largest deficit, repeatedly. */
	for (;;) {
		size_t a = n, b = n;
		for (size_t i = 0; i < n; i++) {
			if (surplus[i] > 0 && (a == n || surplus[i] > surplus[a]))
				a = i;
			if (deficit[i] > 0 && (b == n || deficit[i] > deficit[b]))
				b = i;
		}
		if (a == n || b == n || plan->n_moves == KAA_REBALANCE_MAX_MOVES)
			break;
		int64_t k = surplus[a] < deficit[b] ? surplus[a] : deficit[b];
		kaa__rebalance_move *m = &plan->moves[plan->n_moves++];
		m->from = (char *)nodes[a].id;
		m->to = (char *)nodes[b].id;
		m->sessions = k;
		surplus[a] -= k;
		deficit[b] -= k;
		moved += k;
	}
	free(surplus);
	free(deficit);
	return moved;
}

static void gen_str(yajl_gen g, const char *s)
{
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

int kaa__rebalance_encode(const kaa__rebalance_plan *plan, char **json, size_t *len)
{
	yajl_gen g = kaa__json_gen_new();
	yajl_gen_map_open(g);
	gen_str(g, "seq");
	yajl_gen_integer(g, plan->seq);
	gen_str(g, "created_ms");
	yajl_gen_integer(g, plan->created_ms);
	gen_str(g, "moves");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < plan->n_moves; i++) {
		yajl_gen_map_open(g);
		gen_str(g, "from");
		gen_str(g, plan->moves[i].from);
		gen_str(g, "to");
		gen_str(g, plan->moves[i].to);
		gen_str(g, "sessions");
		yajl_gen_integer(g, plan->moves[i].sessions);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	int rc = kaa__json_gen_take(g, KAA_REBALANCE_MAX_BYTES * 4, json, len);
	yajl_gen_free(g);
	return rc;
}

static char *id_dup(yajl_val v)
{
	if (!YAJL_IS_STRING(v) || !*v->u.string || strlen(v->u.string) > ID_MAX)
		return NULL;
	return kaa__xstrdup(v->u.string);
}

void kaa__rebalance_plan_clear(kaa__rebalance_plan *plan)
{
	if (!plan)
		return;
	for (size_t i = 0; i < plan->n_moves; i++) {
		free(plan->moves[i].from);
		free(plan->moves[i].to);
	}
	memset(plan, 0, sizeof(*plan));
}

int kaa__rebalance_decode(const char *json, size_t len, kaa__rebalance_plan *plan)
{
	char err[128];
	yajl_val v = NULL;
	memset(plan, 0, sizeof(*plan));
	int rc = kaa__json_parse(json, len, KAA_REBALANCE_MAX_BYTES, 8, &v, err, sizeof(err));
	if (rc != KAA_OK)
		return rc == KAA_ERR_TOO_BIG ? rc : KAA_ERR_INVAL;
	rc = KAA_ERR_INVAL;
	yajl_val moves = kaa__json_member(v, "moves");
	if (!YAJL_IS_OBJECT(v) || !kaa__json_int64(kaa__json_member(v, "seq"), &plan->seq) ||
	    !kaa__json_int64(kaa__json_member(v, "created_ms"), &plan->created_ms) ||
	    !YAJL_IS_ARRAY(moves) || moves->u.array.len > KAA_REBALANCE_MAX_MOVES)
		goto out;
	for (size_t i = 0; i < moves->u.array.len; i++) {
		yajl_val m = moves->u.array.values[i];
		kaa__rebalance_move *dst = &plan->moves[plan->n_moves];
		if (!kaa__json_int64(kaa__json_member(m, "sessions"), &dst->sessions) ||
		    dst->sessions < 1)
			goto out;
		dst->from = id_dup(kaa__json_member(m, "from"));
		dst->to = id_dup(kaa__json_member(m, "to"));
		plan->n_moves++;
		if (!dst->from || !dst->to)
			goto out;
	}
	rc = KAA_OK;
out:
	yajl_tree_free(v);
	if (rc != KAA_OK)
		kaa__rebalance_plan_clear(plan);
	return rc;
}
