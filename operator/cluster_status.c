/*
 * cluster_status.c - see cluster_status.h.
 */
#include "cluster_status.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_gen.h>

#include "desired.h"
#include "base/error.h"
#include "json/json_merge.h"

/* Appends ", piece" (or the first piece) to buf, truncating. */
static void append(char *buf, size_t size, const char *piece)
{
	size_t len = strlen(buf);
	if (len + 1 < size)
		snprintf(buf + len, size - len, "%s%s", len ? ", " : "", piece);
}

void kaa__status_conditions(const kaa__status_in *in, kaa__condition out[3])
{
	char notready[256] = "", moving[256] = "";
	bool missing = false;

	for (int i = 0; i < 3; i++) {
		const kaa__status_comp *c = &in->comp[i];
		const char *name = kaa__desired_components[i];
		char piece[96];
		if (!c->found) {
			missing = true;
			snprintf(piece, sizeof(piece), "%s 0/%d ready", name, c->desired);
			append(notready, sizeof(notready), piece);
			snprintf(piece, sizeof(piece), "%s being created", name);
			append(moving, sizeof(moving), piece);
			continue;
		}
		if (c->ready < c->desired) {
			snprintf(piece, sizeof(piece), "%s %d/%d ready", name, c->ready,
				 c->desired);
			append(notready, sizeof(notready), piece);
		}
		if (c->stale || c->updated < c->desired || c->replicas != c->desired) {
			snprintf(piece, sizeof(piece), "%s %d/%d updated", name, c->updated,
				 c->desired);
			append(moving, sizeof(moving), piece);
		}
	}
	memset(out, 0, 3 * sizeof(*out));
	out[0].type = "Ready";
	out[1].type = "Progressing";
	out[2].type = "Degraded";
	if (in->problem_reason) {
		out[0].status = "False";
		out[0].reason = in->problem_reason;
		snprintf(out[0].message, sizeof(out[0].message), "%s",
			 in->problem_message ? in->problem_message : "");
	} else if (notready[0]) {
		out[0].status = "False";
		out[0].reason = "ComponentsNotReady";
		snprintf(out[0].message, sizeof(out[0].message), "%s", notready);
	} else {
		out[0].status = "True";
		out[0].reason = "AllComponentsReady";
		snprintf(out[0].message, sizeof(out[0].message),
			 "control, operations and bootstrap are available");
	}
	if (moving[0] || (in->progress_note && in->progress_note[0])) {
		out[1].status = "True";
		out[1].reason = missing ? "Creating" : "RollingOut";
		snprintf(out[1].message, sizeof(out[1].message), "%s%s%s", moving,
			 moving[0] && in->progress_note && in->progress_note[0] ? "; " : "",
			 in->progress_note ? in->progress_note : "");
		if (!moving[0])
			out[1].reason = "Scaling";
	} else {
		out[1].status = "False";
		out[1].reason = "Complete";
		snprintf(out[1].message, sizeof(out[1].message),
			 "every component runs the current spec");
	}
	if (in->problem_reason) {
		out[2].status = "True";
		out[2].reason = in->problem_reason;
		snprintf(out[2].message, sizeof(out[2].message), "%s",
			 in->problem_message ? in->problem_message : "");
	} else {
		out[2].status = "False";
		out[2].reason = "AsExpected";
		snprintf(out[2].message, sizeof(out[2].message), "no problem found");
	}
}

static void s(yajl_gen g, const char *str)
{
	yajl_gen_string(g, (const unsigned char *)str, strlen(str));
}

static void kv(yajl_gen g, const char *k, const char *v)
{
	s(g, k);
	s(g, v);
}

static void ki(yajl_gen g, const char *k, long long v)
{
	s(g, k);
	yajl_gen_integer(g, v);
}

/* The old condition's lastTransitionTime when its status is unchanged. */
static const char *old_time(yajl_val old_status, const kaa__condition *c)
{
	const char *cp[] = {"conditions", NULL};
	yajl_val arr = old_status ? yajl_tree_get(old_status, cp, yajl_t_array) : NULL;

	for (size_t i = 0; arr && i < arr->u.array.len; i++) {
		const char *tp[] = {"type", NULL}, *sp[] = {"status", NULL},
			   *lp[] = {"lastTransitionTime", NULL};
		yajl_val e = arr->u.array.values[i];
		yajl_val t = yajl_tree_get(e, tp, yajl_t_string);
		yajl_val st = yajl_tree_get(e, sp, yajl_t_string);
		yajl_val lt = yajl_tree_get(e, lp, yajl_t_string);
		const char *ts = YAJL_GET_STRING(t), *ss = YAJL_GET_STRING(st);
		if (ts && ss && strcmp(ts, c->type) == 0)
			return strcmp(ss, c->status) == 0 ? YAJL_GET_STRING(lt) : NULL;
	}
	return NULL;
}

int kaa__status_json(const kaa__status_in *in, const kaa__condition conds[3], yajl_val old_status,
		     const char *now, char **json)
{
	yajl_gen g;
	int rc;

	if (!in || !conds || !now || !json || !in->ns || !in->name)
		return KAA_ERR_INVAL;
	g = kaa__json_gen_new();
	yajl_gen_map_open(g);
	kv(g, "apiVersion", "kaaproject.org/v1alpha1");
	kv(g, "kind", "KaaCluster");
	s(g, "metadata");
	yajl_gen_map_open(g);
	kv(g, "name", in->name);
	kv(g, "namespace", in->ns);
	yajl_gen_map_close(g);
	s(g, "status");
	yajl_gen_map_open(g);
	ki(g, "observedGeneration", in->generation);
	for (int i = 0; i < 3; i++) {
		s(g, kaa__desired_components[i]);
		yajl_gen_map_open(g);
		ki(g, "replicas", in->comp[i].replicas);
		ki(g, "readyReplicas", in->comp[i].ready);
		ki(g, "updatedReplicas", in->comp[i].updated);
		yajl_gen_map_close(g);
	}
	ki(g, "replicas", in->comp[1].replicas);
	if (in->selector)
		kv(g, "selector", in->selector);
	if (in->etcd_known) {
		ki(g, "connectedDevices", in->devices);
		if (in->leader && in->leader[0])
			kv(g, "controlLeader", in->leader);
	}
	s(g, "conditions");
	yajl_gen_array_open(g);
	for (int i = 0; i < 3; i++) {
		const char *t = old_time(old_status, &conds[i]);
		yajl_gen_map_open(g);
		kv(g, "type", conds[i].type);
		kv(g, "status", conds[i].status);
		kv(g, "reason", conds[i].reason);
		kv(g, "message", conds[i].message);
		ki(g, "observedGeneration", in->generation);
		kv(g, "lastTransitionTime", t ? t : now);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rc = kaa__json_gen_take(g, KAA_JSON_MAX_BYTES, json, NULL);
	yajl_gen_free(g);
	return rc;
}

void kaa__status_now(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
