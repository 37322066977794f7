/*
 * controller.c - the KaaCluster controller (see controller.h).
 *
 * Informers on KaaClusters and on the Deployments (and operations
 * StatefulSets, see desired.h: listeners) the operator manages
 * feed a work queue of "namespace/name" keys; workers reconcile one key
 * at a time (the queue guarantees a key is never processed twice at
 * once). A reconcile reads the KaaCluster from the informer cache, builds
 * the desired objects (desired.h), applies them server-side, deletes the
 * ones the spec no longer wants, checks the Secrets, reads devices and the
 * control leader from etcd and writes the status (cluster_status.h).
 * Deletion runs the etcd cleanup behind the kaaproject.org/cleanup
 * finalizer. A separate thread runs the operations autoscaler
 * (autoscale.h), which writes spec.operations.replicas (the field the
 * scale subresource also writes) so reconcile stays the only writer of
 * the Deployment. Its stabilisation window is the spec's
 * stabilizationWindowSeconds, or opts.scale_down_window_ms when the spec
 * has none. Scaling down first writes /kaa/<cluster>/drain/<node-id> =
 * {"deadline_ms":...} for the emptiest nodes (and, best effort, a low
 * controller.kubernetes.io/pod-deletion-cost on their pods, which needs
 * "patch pods"), then lowers the replicas once those nodes report 0
 * sessions or the deadline passed; load that comes back meanwhile cancels
 * the scale-down and removes the drain requests. Drain requests of nodes
 * that are gone, or that survived long after their deadline, are removed.
 *
 * Locking: c->mu guards the per-cluster state table and the started flag;
 * no API or etcd call is made with it held.
 */
#include "controller.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "autoscale.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "cluster_status.h"
#include "coord/coord.h"
#include "coord/keys.h"
#include "desired.h"
#include "kube_event.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/log.h"
#include "workqueue.h"

#ifndef KAA_VERSION
#define KAA_VERSION "0.1.0"
#endif

#define MOD "controller"
#define KC_API "/apis/kaaproject.org/v1alpha1"
#define KC_MAX_BYTES (4 * 1024 * 1024)
#define ETCD_CALL_TIMEOUT_MS 2000
#define PROBLEM_REQUEUE_MS 10000
#define PROGRESS_REQUEUE_MS 5000
#define MAX_DRAIN 256

/* Per-KaaCluster state the controller keeps between reconciles. */
typedef struct cstate {
	char key[KAA_WORKQUEUE_MAX_KEY + 1];
	int fin_attempts;
	/* copied from the last reconcile for the autoscaler */
	bool autoscale;
	kaa__desired_autoscale as;
	char ns[64], name[KAA_DESIRED_NAME_MAX + 1], uid[64], cluster[64];
	char *etcd;
	int32_t spec_replicas;
	int64_t drain_timeout_s;
	bool sts; /* operations is a StatefulSet: scale-down removes the top ordinals */
	/* autoscaler */
	kaa__autoscale_state st;
	bool pending;          /* a scale-down waits for draining nodes */
	int32_t pending_to;    /* replicas once drained */
	int64_t pending_until; /* wall-clock ms: give up waiting */
	char (*pending_ids)[254];
	size_t n_pending;
} cstate;

struct kaa__controller {
	kaa__kube *kube;
	kaa__kube_recorder *events; /* owned; posts through kube */
	kaa__metrics *metrics;
	kaa__controller_opts opts;
	char **namespaces; /* owned copy; NULL: all */
	size_t n_namespaces;
	char *etcd_override;

	pthread_mutex_t mu;
	bool started;
	volatile int stop;
	kaa__workqueue *q;
	kaa__kube_informer **kc_inf, **dep_inf, **sts_inf;
	size_t n_inf;
	pthread_t *workers;
	int n_workers_running;
	pthread_t scaler;
	bool scaler_running;

	cstate **states;
	size_t n_states, cap_states;

	kaa__counter *rec_ok, *rec_err, *errors;
	kaa__histogram *duration;
	kaa__gauge *depth;
};

/* ---- small helpers ---- */

static void update_depth(kaa__controller *c)
{
	kaa__gauge_set(c->depth, (double)kaa__workqueue_len(c->q));
}

static void event(kaa__controller *c, const kaa__desired *d, const char *type, const char *reason,
		  const char *action, const char *note)
{
	kaa__kube_ref ref = {.api_version = "kaaproject.org/v1alpha1",
			     .kind = "KaaCluster",
			     .ns = d->ns,
			     .name = d->name,
			     .uid = d->uid};
	(void)kaa__kube_event(c->events, &ref, type, reason, action, note);
}

static int parse(const char *json, size_t max, yajl_val *out)
{
	char err[KAA_JSON_ERR_SIZE];
	return kaa__json_parse(json, strlen(json), max, KAA_JSON_MAX_DEPTH, out, err, sizeof(err));
}

static cstate *state_find(kaa__controller *c, const char *key)
{
	for (size_t i = 0; i < c->n_states; i++)
		if (strcmp(c->states[i]->key, key) == 0)
			return c->states[i];
	return NULL;
}

static void state_free(cstate *s)
{
	if (!s)
		return;
	free(s->etcd);
	free(s->pending_ids);
	free(s);
}

/* Under c->mu. NULL on allocation failure. */
static cstate *state_get(kaa__controller *c, const char *key)
{
	cstate *s = state_find(c, key);

	if (s)
		return s;
	if (c->n_states == c->cap_states) {
		size_t ncap = c->cap_states ? c->cap_states * 2 : 8;
		c->states = kaa__xrealloc(c->states, ncap * sizeof(*c->states));
		c->cap_states = ncap;
	}
	s = kaa__xcalloc(1, sizeof(*s));
	snprintf(s->key, sizeof(s->key), "%s", key);
	c->states[c->n_states++] = s;
	return s;
}

static void state_drop(kaa__controller *c, const char *key)
{
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n_states; i++) {
		if (strcmp(c->states[i]->key, key) == 0) {
			state_free(c->states[i]);
			c->states[i] = c->states[--c->n_states];
			break;
		}
	}
	pthread_mutex_unlock(&c->mu);
}

static int coord_open(const char *etcd, kaa__coord **out)
{
	kaa__coord_opts o = {.call_timeout_ms = ETCD_CALL_TIMEOUT_MS};
	return kaa__coord_new_etcd(etcd, &o, out);
}

/* ---- informer callbacks: enqueue and return ---- */

static void on_cluster(void *ud, kaa__kube_ev ev, const char *ns, const char *name, yajl_val obj)
{
	kaa__controller *c = ud;
	char key[KAA_WORKQUEUE_MAX_KEY + 1];

	(void)ev;
	(void)obj;
	if (!ns || !name || (size_t)snprintf(key, sizeof(key), "%s/%s", ns, name) >= sizeof(key))
		return;
	(void)kaa__workqueue_add(c->q, key);
	update_depth(c);
}

static void on_deployment(void *ud, kaa__kube_ev ev, const char *ns, const char *name, yajl_val obj)
{
	kaa__controller *c = ud;
	const char *ip[] = {"metadata", "labels", "app.kubernetes.io/instance", NULL};
	const char *op[] = {"metadata", "ownerReferences", NULL};
	yajl_val inst = obj ? yajl_tree_get(obj, ip, yajl_t_string) : NULL;
	yajl_val owners = obj ? yajl_tree_get(obj, op, yajl_t_array) : NULL;
	const char *owner = YAJL_GET_STRING(inst);
	char key[KAA_WORKQUEUE_MAX_KEY + 1];

	(void)ev;
	(void)name;
	for (size_t i = 0; !owner && owners && i < owners->u.array.len; i++) {
		const char *kp[] = {"kind", NULL}, *np[] = {"name", NULL};
		yajl_val k = yajl_tree_get(owners->u.array.values[i], kp, yajl_t_string);
		yajl_val n = yajl_tree_get(owners->u.array.values[i], np, yajl_t_string);
		const char *ks = YAJL_GET_STRING(k);
		if (ks && strcmp(ks, "KaaCluster") == 0)
			owner = YAJL_GET_STRING(n);
	}
	if (!ns || !owner || (size_t)snprintf(key, sizeof(key), "%s/%s", ns, owner) >= sizeof(key))
		return;
	(void)kaa__workqueue_add(c->q, key);
	update_depth(c);
}

/* ---- API writes ---- */

/* PATCH with a JSON merge patch; KAA_OK on 2xx, else an error (msg set). */
static int merge_patch(kaa__controller *c, const char *path, const char *body, char *msg,
		       size_t msglen)
{
	kaa__kube_resp r = {0};
	int rc =
		kaa__kube_request(c->kube, "PATCH", path, "application/merge-patch+json", body, &r);

	if (rc == KAA_OK && (r.status < 200 || r.status >= 300)) {
		snprintf(msg, msglen, "PATCH %s: HTTP %ld", path, r.status);
		rc = r.status == 409 ? KAA_ERR_CONFLICT : KAA_ERR_UNAVAILABLE;
	} else if (rc != KAA_OK) {
		snprintf(msg, msglen, "PATCH %s: %s", path, kaa_strerror(rc));
	}
	kaa__kube_resp_clear(&r);
	return rc;
}

/* Writes metadata.finalizers = the current list with ours added or
 * removed, guarded by resourceVersion. */
static int set_finalizer(kaa__controller *c, yajl_val kc, const kaa__desired *d, bool add)
{
	const char *fp[] = {"metadata", "finalizers", NULL};
	const char *rp[] = {"metadata", "resourceVersion", NULL};
	yajl_val fin = yajl_tree_get(kc, fp, yajl_t_array);
	const char *rv = YAJL_GET_STRING(yajl_tree_get(kc, rp, yajl_t_string));
	yajl_gen g = kaa__json_gen_new();
	char *body = NULL, path[512], msg[512];
	int rc;

#define GS(str) yajl_gen_string(g, (const unsigned char *)(str), strlen(str))
	yajl_gen_map_open(g);
	GS("metadata");
	yajl_gen_map_open(g);
	GS("finalizers");
	yajl_gen_array_open(g);
	for (size_t i = 0; fin && i < fin->u.array.len; i++) {
		const char *f = YAJL_GET_STRING(fin->u.array.values[i]);
		if (f && strcmp(f, KAA_DESIRED_FINALIZER) != 0)
			GS(f);
	}
	if (add)
		GS(KAA_DESIRED_FINALIZER);
	yajl_gen_array_close(g);
	if (rv) {
		GS("resourceVersion");
		GS(rv);
	}
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
#undef GS
	rc = kaa__json_gen_take(g, KAA_JSON_MAX_BYTES, &body, NULL);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	snprintf(path, sizeof(path), KC_API "/namespaces/%s/kaaclusters/%s", d->ns, d->name);
	rc = merge_patch(c, path, body, msg, sizeof(msg));
	if (rc != KAA_OK)
		KAA_WARN(MOD, "finalizer update failed cluster=%s/%s add=%d err=\"%s\"", d->ns,
			 d->name, add, msg);
	free(body);
	return rc;
}

/* ---- finalizer ---- */

/* Returns KAA_OK when the finalizer is gone, an error to retry. */
static int finalize(kaa__controller *c, const char *key, yajl_val kc, const kaa__desired *d)
{
	kaa__coord *co = NULL;
	char prefix[128], note[512];
	int64_t deleted = 0;
	int rc, attempts;
	cstate *s;

	kaa__key_cluster(prefix, sizeof(prefix), d->cluster);
	rc = coord_open(d->etcd, &co);
	if (rc == KAA_OK)
		rc = kaa__coord_delete(co, prefix, true, &deleted);
	kaa__coord_free(co);
	pthread_mutex_lock(&c->mu);
	s = state_get(c, key);
	attempts = ++s->fin_attempts;
	pthread_mutex_unlock(&c->mu);
	if (rc == KAA_OK) {
		snprintf(note, sizeof(note), "removed %lld etcd keys under %s", (long long)deleted,
			 prefix);
		KAA_INFO(MOD, "cleanup done cluster=%s deleted=%lld", key, (long long)deleted);
		event(c, d, "Normal", "CleanedUp", "Finalize", note);
	} else if (attempts < c->opts.finalizer_attempts) {
		KAA_WARN(MOD, "cleanup failed cluster=%s attempt=%d err=%s", key, attempts,
			 kaa_strerror(rc));
		return rc;
	} else {
		snprintf(note, sizeof(note),
			 "could not remove the etcd keys under %s after %d attempts (%s); "
			 "releasing the KaaCluster anyway",
			 prefix, attempts, kaa_strerror(rc));
		KAA_WARN(MOD, "cleanup given up cluster=%s attempts=%d", key, attempts);
		event(c, d, "Warning", "CleanupFailed", "Finalize", note);
	}
	rc = set_finalizer(c, kc, d, false);
	if (rc == KAA_OK)
		state_drop(c, key);
	return rc;
}

/* ---- reconcile pieces ---- */

/* metadata.generation of the cached copy of a Deployment (or the
 * StatefulSet, sts), 0 when unknown. */
static int64_t cached_generation(kaa__controller *c, const kaa__desired *d, const char *name,
				 bool sts)
{
	const char *gp[] = {"metadata", "generation", NULL};
	int64_t gen = 0;

	for (size_t i = 0; i < c->n_inf && !gen; i++) {
		char *json = NULL;
		yajl_val v = NULL;
		if (kaa__kube_informer_get(sts ? c->sts_inf[i] : c->dep_inf[i], d->ns, name,
					   &json) != KAA_OK)
			continue;
		if (parse(json, KAA_KUBE_BODY_MAX, &v) == KAA_OK) {
			gen = kaa__kube_int(v, gp, 0);
			yajl_tree_free(v);
		}
		free(json);
	}
	return gen;
}

/* Reads an applied Deployment: its replica counts into the status input
 * and an Updated Event when its spec changed (generation moved). */
static void deployment_applied(kaa__controller *c, const kaa__desired *d, const kaa__desired_obj *o,
			       const char *body, int64_t old_gen, kaa__status_in *in)
{
	const char *rp[] = {"status", "replicas", NULL};
	const char *yp[] = {"status", "readyReplicas", NULL};
	const char *up[] = {"status", "updatedReplicas", NULL};
	const char *gp[] = {"metadata", "generation", NULL};
	const char *op[] = {"status", "observedGeneration", NULL};
	size_t ln = strlen(d->name);
	yajl_val v = NULL;
	int64_t gen;

	if (!body || parse(body, KAA_KUBE_BODY_MAX, &v) != KAA_OK)
		return;
	gen = kaa__kube_int(v, gp, 0);
	for (int k = 0; k < 3; k++) {
		kaa__status_comp *sc = &in->comp[k];
		if (strncmp(o->name, d->name, ln) != 0 || o->name[ln] != '-' ||
		    strcmp(o->name + ln + 1, kaa__desired_components[k]) != 0)
			continue;
		sc->found = true;
		sc->replicas = (int32_t)kaa__kube_int(v, rp, 0);
		sc->ready = (int32_t)kaa__kube_int(v, yp, 0);
		sc->updated = (int32_t)kaa__kube_int(v, up, 0);
		sc->stale = kaa__kube_int(v, op, 0) < gen;
	}
	if (old_gen > 0 && gen > old_gen) {
		char note[256];
		snprintf(note, sizeof(note), "updated Deployment %s (generation %lld -> %lld)",
			 o->name, (long long)old_gen, (long long)gen);
		event(c, d, "Normal", "Updated", "Reconcile", note);
	}
	yajl_tree_free(v);
}

/* Deletes an object the spec no longer wants, if it is ours (it names the
 * KaaCluster's uid). */
static int delete_unwanted(kaa__controller *c, const kaa__desired *d, const kaa__desired_obj *o)
{
	kaa__kube_resp r = {0};
	int rc = kaa__kube_request(c->kube, "GET", o->path, NULL, NULL, &r);

	if (rc != KAA_OK)
		goto out;
	if (r.status == 404)
		goto out;
	if (r.status != 200) {
		rc = KAA_ERR_UNAVAILABLE;
		goto out;
	}
	if (!r.body || !strstr(r.body, d->uid))
		goto out; /* not ours: leave it */
	kaa__kube_resp_clear(&r);
	rc = kaa__kube_request(c->kube, "DELETE", o->path, NULL, NULL, &r);
	if (rc == KAA_OK && (r.status == 200 || r.status == 202)) {
		char note[256];
		snprintf(note, sizeof(note), "deleted %s %s (no longer in the spec)", o->kind,
			 o->name);
		event(c, d, "Normal", "Deleted", "Reconcile", note);
	} else if (rc == KAA_OK && r.status != 404) {
		rc = KAA_ERR_UNAVAILABLE;
	}
out:
	kaa__kube_resp_clear(&r);
	return rc;
}

/* Applies (or deletes) every desired object. Fills the Deployments'
 * status into in->comp. Returns the first error (msg says which). */
static int apply_all(kaa__controller *c, const kaa__desired *d, kaa__status_in *in, char *msg,
		     size_t msglen)
{
	int first = KAA_OK;

	for (size_t i = 0; i < d->n; i++) {
		const kaa__desired_obj *o = &d->objs[i];
		bool is_dep =
			strcmp(o->kind, "Deployment") == 0 || strcmp(o->kind, "StatefulSet") == 0;
		int64_t old_gen = is_dep ? cached_generation(c, d, o->name, o->kind[0] == 'S') : 0;
		kaa__kube_resp r = {0};
		int rc;

		if (!o->json) {
			rc = delete_unwanted(c, d, o);
			if (rc != KAA_OK && first == KAA_OK) {
				first = rc;
				snprintf(msg, msglen, "deleting %s %s: %s", o->kind, o->name,
					 kaa_strerror(rc));
			}
			continue;
		}
		rc = kaa__kube_apply(c->kube, o->path, o->json, &r);
		if (rc == KAA_OK && (r.status == 200 || r.status == 201)) {
			if (r.status == 201) {
				char note[256];
				snprintf(note, sizeof(note), "created %s %s", o->kind, o->name);
				event(c, d, "Normal", "Created", "Reconcile", note);
			}
			if (is_dep)
				deployment_applied(c, d, o, r.body, old_gen, in);
		} else {
			KAA_WARN(MOD, "apply failed cluster=%s/%s kind=%s name=%s status=%ld",
				 d->ns, d->name, o->kind, o->name, r.status);
			if (first == KAA_OK) {
				if (rc == KAA_OK)
					snprintf(msg, msglen, "applying %s %s: HTTP %ld %.300s",
						 o->kind, o->name, r.status, r.body ? r.body : "");
				else
					snprintf(msg, msglen, "applying %s %s: %s", o->kind,
						 o->name, kaa_strerror(rc));
				first = rc == KAA_OK ? KAA_ERR_UNAVAILABLE : rc;
			}
		}
		kaa__kube_resp_clear(&r);
	}
	return first;
}

static bool owned_by(yajl_val item, const char *uid)
{
	const char *op[] = {"metadata", "ownerReferences", NULL};
	static const char *const up[] = {"uid", NULL};
	yajl_val refs = yajl_tree_get(item, op, yajl_t_array);
	for (size_t i = 0; YAJL_IS_ARRAY(refs) && i < refs->u.array.len; i++) {
		const char *u = kaa__kube_str(refs->u.array.values[i], up);
		if (u && strcmp(u, uid) == 0)
			return true;
	}
	return false;
}

/*
 * Deletes the listener objects (label KAA_DESIRED_LISTENER_LABEL) of this
 * KaaCluster that the spec no longer wants: a listener removed, fewer
 * pods. Listener objects are many and named from the spec, so they are
 * found by label rather than listed in the desired set as absent.
 */
static int prune_listeners(kaa__controller *c, const kaa__desired *d, char *msg, size_t msglen)
{
	static const struct {
		const char *kind, *api, *resource;
	} kinds[] = {{"Service", "/api/v1", "services"},
		     {"Ingress", "/apis/networking.k8s.io/v1", "ingresses"}};
	const char *ip[] = {"items", NULL};
	static const char *const np[] = {"metadata", "name", NULL};
	int first = KAA_OK;

	for (size_t k = 0; k < 2; k++) {
		char path[512];
		kaa__kube_resp r = {0};
		yajl_val v = NULL, items;
		int rc;

		snprintf(path, sizeof(path),
			 "%s/namespaces/%s/%s?labelSelector=app.kubernetes.io%%2Finstance%%3D%s%%2C"
			 "kaaproject.org%%2Flisteners%%3Dtrue",
			 kinds[k].api, d->ns, kinds[k].resource, d->name);
		rc = kaa__kube_request(c->kube, "GET", path, NULL, NULL, &r);
		if (rc == KAA_OK && r.status != 200)
			rc = KAA_ERR_UNAVAILABLE;
		if (rc == KAA_OK && (!r.body || parse(r.body, KAA_KUBE_BODY_MAX, &v) != KAA_OK))
			rc = KAA_ERR_PROTOCOL;
		items = v ? yajl_tree_get(v, ip, yajl_t_array) : NULL;
		for (size_t i = 0; rc == KAA_OK && YAJL_IS_ARRAY(items) && i < items->u.array.len;
		     i++) {
			yajl_val it = items->u.array.values[i];
			const char *name = kaa__kube_str(it, np);
			bool wanted = false;
			kaa__desired_obj o = {.kind = kinds[k].kind};
			char opath[512];
			if (!name || !owned_by(it, d->uid))
				continue;
			for (size_t j = 0; j < d->n && !wanted; j++)
				wanted = d->objs[j].json &&
					 strcmp(d->objs[j].kind, kinds[k].kind) == 0 &&
					 strcmp(d->objs[j].name, name) == 0;
			if (wanted)
				continue;
			snprintf(o.name, sizeof(o.name), "%s", name);
			snprintf(opath, sizeof(opath), "%s/namespaces/%s/%s/%s", kinds[k].api,
				 d->ns, kinds[k].resource, name);
			o.path = opath;
			rc = delete_unwanted(c, d, &o);
		}
		yajl_tree_free(v);
		kaa__kube_resp_clear(&r);
		if (rc != KAA_OK && first == KAA_OK) {
			first = rc;
			snprintf(msg, msglen, "removing old listener %s objects: %s", kinds[k].kind,
				 kaa_strerror(rc));
		}
	}
	return first;
}

/* KAA_OK, or KAA_ERR_NOTFOUND with msg naming the missing Secret / key,
 * or a transport error. */
static int check_secret(kaa__controller *c, const kaa__desired *d, const char *name,
			const char *key, const char *field, char *msg, size_t msglen)
{
	kaa__kube_resp r = {0};
	char path[512];
	int rc;

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/secrets/%s", d->ns, name);
	rc = kaa__kube_request(c->kube, "GET", path, NULL, NULL, &r);
	if (rc != KAA_OK)
		goto out;
	if (r.status == 404) {
		snprintf(msg, msglen, "Secret %s/%s (%s) not found", d->ns, name, field);
		rc = KAA_ERR_NOTFOUND;
	} else if (r.status == 200) {
		yajl_val v = NULL;
		if (parse(r.body, KAA_KUBE_BODY_MAX, &v) == KAA_OK) {
			const char *dp[] = {"data", key, NULL};
			const char *sp[] = {"stringData", key, NULL};
			if (!yajl_tree_get(v, dp, yajl_t_any) &&
			    !yajl_tree_get(v, sp, yajl_t_any)) {
				snprintf(msg, msglen, "Secret %s/%s (%s) has no key \"%s\"", d->ns,
					 name, field, key);
				rc = KAA_ERR_NOTFOUND;
			}
			yajl_tree_free(v);
		}
	} else {
		rc = KAA_ERR_UNAVAILABLE;
	}
out:
	kaa__kube_resp_clear(&r);
	return rc;
}

static const char *secret_key(yajl_val kc, const char *store)
{
	const char *p[] = {"spec", store, "secretRef", "key", NULL};
	const char *k = kaa__kube_str(kc, p);
	return k && k[0] ? k : "url";
}

/* Reads devices and the leader; KAA_OK or an etcd error. */
static int read_etcd(const kaa__desired *d, int64_t *devices, char *leader, size_t leader_len)
{
	kaa__coord *co = NULL;
	kaa__autoscale_node *nodes = NULL;
	size_t n = 0;
	kaa__kv kv = {0};
	char key[128];
	int rc;

	leader[0] = 0;
	rc = coord_open(d->etcd, &co);
	if (rc != KAA_OK)
		return rc;
	rc = kaa__autoscale_read(co, d->cluster, &nodes, &n, devices);
	free(nodes);
	if (rc != KAA_OK)
		goto out;
	kaa__key_leader(key, sizeof(key), d->cluster);
	rc = kaa__coord_get(co, key, &kv, NULL);
	if (rc == KAA_OK) {
		const char *v = kv.value;
		size_t len = kv.value_len;
		/* the value is the node id, possibly as a JSON string */
		if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
			v++;
			len -= 2;
		}
		if (len < leader_len && !memchr(v, '"', len)) {
			memcpy(leader, v, len);
			leader[len] = 0;
		}
	} else if (rc == KAA_ERR_NOTFOUND) {
		rc = KAA_OK;
	}
out:
	kaa__kv_clear(&kv);
	kaa__coord_free(co);
	return rc;
}

static int write_status(kaa__controller *c, yajl_val kc, const kaa__status_in *in)
{
	const char *sp[] = {"status", NULL};
	kaa__condition conds[3];
	kaa__kube_resp r = {0};
	char now[32], path[512], *json = NULL;
	int rc;

	kaa__status_conditions(in, conds);
	kaa__status_now(now, sizeof(now));
	rc = kaa__status_json(in, conds, yajl_tree_get(kc, sp, yajl_t_object), now, &json);
	if (rc != KAA_OK)
		return rc;
	snprintf(path, sizeof(path), KC_API "/namespaces/%s/kaaclusters/%s/status", in->ns,
		 in->name);
	rc = kaa__kube_apply(c->kube, path, json, &r);
	if (rc == KAA_OK && r.status != 200 && r.status != 201) {
		KAA_WARN(MOD, "status apply failed cluster=%s/%s status=%ld body=\"%.200s\"",
			 in->ns, in->name, r.status, r.body ? r.body : "");
		rc = r.status == 404 ? KAA_OK : KAA_ERR_UNAVAILABLE;
	}
	kaa__kube_resp_clear(&r);
	free(json);
	return rc;
}

/* Remembers what the autoscaler needs. */
static void remember(kaa__controller *c, const char *key, const kaa__desired *d)
{
	cstate *s;

	pthread_mutex_lock(&c->mu);
	s = state_get(c, key);
	free(s->etcd);
	s->etcd = kaa__xstrdup(d->etcd);
	s->autoscale = d->autoscale.enabled;
	s->as = d->autoscale;
	snprintf(s->ns, sizeof(s->ns), "%s", d->ns);
	snprintf(s->name, sizeof(s->name), "%s", d->name);
	snprintf(s->uid, sizeof(s->uid), "%s", d->uid);
	snprintf(s->cluster, sizeof(s->cluster), "%s", d->cluster);
	s->spec_replicas = d->replicas[1];
	s->drain_timeout_s = d->drain_timeout_s;
	s->sts = d->ops_statefulset;
	s->fin_attempts = 0;
	if (!s->autoscale) {
		memset(&s->st, 0, sizeof(s->st));
		s->pending = false;
	}
	pthread_mutex_unlock(&c->mu);
}

/* One reconcile. *requeue_ms > 0 asks for another pass later. */
static int reconcile(kaa__controller *c, const char *key, int64_t *requeue_ms)
{
	kaa__desired d = {0};
	kaa__desired_opts dopts = {.default_tag = KAA_VERSION, .etcd_override = c->etcd_override};
	kaa__status_in in = {0};
	yajl_val kc = NULL;
	char *json = NULL, err[512] = "", msg[512] = "", leader[254] = "";
	const char *slash = strchr(key, '/');
	int rc = KAA_ERR_NOTFOUND;

	*requeue_ms = 0;
	if (!slash)
		return KAA_OK;
	for (size_t i = 0; i < c->n_inf && rc == KAA_ERR_NOTFOUND; i++) {
		char ns[256];
		snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
		rc = kaa__kube_informer_get(c->kc_inf[i], ns, slash + 1, &json);
	}
	if (rc == KAA_ERR_NOTFOUND) {
		/* gone: forget what we kept about it */
		state_drop(c, key);
		return KAA_OK;
	}
	if (rc != KAA_OK)
		return rc;
	rc = parse(json, KC_MAX_BYTES, &kc);
	if (rc != KAA_OK)
		goto out;
	rc = kaa__desired_build(kc, &dopts, &d, err, sizeof(err));
	if (rc == KAA_ERR_INVAL && d.deleting && d.has_finalizer && d.uid[0]) {
		/* never hold a deletion on a spec we cannot read: clean up what
		 * we can name, else release with a Warning */
		if (d.etcd && d.cluster[0]) {
			rc = finalize(c, key, kc, &d);
		} else {
			event(c, &d, "Warning", "CleanupSkipped", "Finalize", err);
			rc = set_finalizer(c, kc, &d, false);
		}
		goto out;
	}
	if (rc == KAA_ERR_INVAL && d.name[0] && d.ns[0]) {
		/* not retryable: say so in the status and wait for a spec change */
		in.ns = d.ns;
		in.name = d.name;
		in.generation = d.generation;
		in.problem_reason = "InvalidSpec";
		in.problem_message = err;
		event(c, &d, "Warning", "InvalidSpec", "Reconcile", err);
		rc = write_status(c, kc, &in);
		goto out;
	}
	if (rc == KAA_ERR_INVAL) {
		/* unusable metadata: retrying will not help */
		KAA_WARN(MOD, "ignoring KaaCluster key=%s err=\"%s\"", key, err);
		rc = KAA_OK;
		goto out;
	}
	if (rc != KAA_OK)
		goto out;
	if (d.deleting) {
		rc = d.has_finalizer ? finalize(c, key, kc, &d) : KAA_OK;
		goto out;
	}
	if (!d.has_finalizer) {
		rc = set_finalizer(c, kc, &d, true);
		if (rc != KAA_OK)
			goto out;
	}
	remember(c, key, &d);

	in.ns = d.ns;
	in.name = d.name;
	in.generation = d.generation;
	in.selector = d.selector;
	for (int i = 0; i < 3; i++)
		in.comp[i].desired = d.replicas[i];

	/* validation only the operator can do */
	rc = check_secret(c, &d, d.sql_secret, secret_key(kc, "sql"), "spec.sql.secretRef", msg,
			  sizeof(msg));
	if (rc == KAA_OK)
		rc = check_secret(c, &d, d.nosql_secret, secret_key(kc, "documentStore"),
				  "spec.documentStore.secretRef", msg, sizeof(msg));
	if (rc == KAA_ERR_NOTFOUND) {
		in.problem_reason = "SecretNotFound";
		in.problem_message = msg;
		event(c, &d, "Warning", "SecretNotFound", "Reconcile", msg);
	} else if (rc != KAA_OK) {
		goto out;
	}

	rc = apply_all(c, &d, &in, err, sizeof(err));
	if (rc == KAA_OK)
		rc = prune_listeners(c, &d, err, sizeof(err));
	if (rc != KAA_OK) {
		event(c, &d, "Warning", "ApplyFailed", "Reconcile", err);
		if (!in.problem_reason) {
			in.problem_reason = "ApplyFailed";
			in.problem_message = err;
		}
	}

	{
		int erc = read_etcd(&d, &in.devices, leader, sizeof(leader));
		in.etcd_known = erc == KAA_OK;
		in.leader = leader;
		if (erc != KAA_OK && !in.problem_reason) {
			snprintf(msg, sizeof(msg), "etcd at %s is unreachable: %s", d.etcd,
				 kaa_strerror(erc));
			in.problem_reason = "EtcdUnreachable";
			in.problem_message = msg;
		}
	}
	pthread_mutex_lock(&c->mu);
	{
		cstate *s = state_find(c, key);
		if (s && s->pending)
			in.progress_note = "scaling down operations: waiting for nodes to drain";
	}
	pthread_mutex_unlock(&c->mu);
	{
		int src = write_status(c, kc, &in);
		if (rc == KAA_OK)
			rc = src;
	}
	if (rc == KAA_OK) {
		kaa__condition conds[3];
		kaa__status_conditions(&in, conds);
		if (in.problem_reason)
			*requeue_ms = PROBLEM_REQUEUE_MS;
		else if (strcmp(conds[1].status, "True") == 0)
			*requeue_ms = PROGRESS_REQUEUE_MS;
	}
out:
	if (rc != KAA_OK)
		KAA_WARN(MOD, "reconcile failed cluster=%s err=%s%s%s", key, kaa_strerror(rc),
			 err[0] ? " detail=" : "", err);
	kaa__desired_clear(&d);
	if (kc)
		yajl_tree_free(kc);
	free(json);
	return rc;
}

/* ---- workers ---- */

static void *worker_main(void *arg)
{
	kaa__controller *c = arg;
	char *key = NULL;

	while (kaa__workqueue_get(c->q, -1, &key) == KAA_OK) {
		int64_t t0 = kaa__now_ms(), requeue = 0;
		int rc;

		update_depth(c);
		rc = reconcile(c, key, &requeue);
		kaa__histogram_observe(c->duration, (double)(kaa__now_ms() - t0) / 1000.0);
		if (rc == KAA_OK) {
			kaa__counter_inc(c->rec_ok);
			kaa__workqueue_forget(c->q, key);
			if (requeue > 0)
				(void)kaa__workqueue_add_after(c->q, key, requeue);
		} else {
			kaa__counter_inc(c->rec_err);
			kaa__counter_inc(c->errors);
			(void)kaa__workqueue_add_rate_limited(c->q, key, NULL);
		}
		kaa__workqueue_done(c->q, key);
		free(key);
		key = NULL;
		update_depth(c);
	}
	return NULL;
}

/* ---- autoscaler ---- */

typedef struct scale_job {
	char key[KAA_WORKQUEUE_MAX_KEY + 1];
	char ns[64], name[KAA_DESIRED_NAME_MAX + 1], uid[64], cluster[64];
	char *etcd;
	kaa__desired_autoscale as;
	int32_t current;
	int64_t drain_timeout_s;
	bool sts;
} scale_job;

static void scale_event(kaa__controller *c, const scale_job *j, const char *type,
			const char *reason, const char *note)
{
	kaa__kube_ref ref = {.api_version = "kaaproject.org/v1alpha1",
			     .kind = "KaaCluster",
			     .ns = j->ns,
			     .name = j->name,
			     .uid = j->uid};
	(void)kaa__kube_event(c->events, &ref, type, reason, "Scale", note);
}

static int set_replicas(kaa__controller *c, const scale_job *j, int32_t n)
{
	char path[512], body[128], msg[512];
	int rc;

	snprintf(path, sizeof(path), KC_API "/namespaces/%s/kaaclusters/%s", j->ns, j->name);
	snprintf(body, sizeof(body), "{\"spec\":{\"operations\":{\"replicas\":%d}}}", n);
	rc = merge_patch(c, path, body, msg, sizeof(msg));
	if (rc != KAA_OK) {
		KAA_WARN(MOD, "scale failed cluster=%s err=\"%s\"", j->key, msg);
		return rc;
	}
	/* the next tick must not decide from the count before this write */
	pthread_mutex_lock(&c->mu);
	{
		cstate *s = state_find(c, j->key);
		if (s)
			s->spec_replicas = n;
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

/* Asks the ReplicaSet controller to remove this pod first (best effort:
 * needs "patch pods", which manifests/operator and the chart grant; an
 * older role without it only makes the choice of pod random). */
static void prefer_removal(kaa__controller *c, const scale_job *j, const char *pod)
{
	char path[512], msg[512];
	static const char body[] = "{\"metadata\":{\"annotations\":{"
				   "\"controller.kubernetes.io/pod-deletion-cost\":\"-1000\"}}}";

	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", j->ns, pod);
	if (merge_patch(c, path, body, msg, sizeof(msg)) != KAA_OK)
		KAA_DEBUG(MOD, "pod-deletion-cost not set pod=%s err=\"%s\"", pod, msg);
}

/*
 * Removes drain requests that are done: the node is gone and the deadline
 * passed, or the node survived the scale-down (the ReplicaSet removed
 * another pod) well after the deadline, when no scale-down is pending, so
 * it admits devices again instead of staying drained forever.
 */
static void drain_housekeeping(kaa__coord *co, const scale_job *j, const kaa__autoscale_node *nodes,
			       size_t n, int64_t wall, bool pending)
{
	int64_t survivor_ms = (j->drain_timeout_s + KAA_DESIRED_GRACE_EXTRA_S + 30) * 1000;
	kaa__kv_list l = {0};
	char prefix[128];
	size_t plen;

	plen = (size_t)kaa__key_drains(prefix, sizeof(prefix), j->cluster);
	if (kaa__coord_range(co, prefix, true, &l) != KAA_OK)
		return;
	for (size_t i = 0; i < l.n; i++) {
		const char *id = l.items[i].key + plen;
		const char *dl = strstr(l.items[i].value, "\"deadline_ms\":");
		int64_t deadline;
		bool present = false;
		if (strlen(l.items[i].key) <= plen || !dl)
			continue;
		deadline = strtoll(dl + strlen("\"deadline_ms\":"), NULL, 10);
		if (deadline > wall)
			continue;
		for (size_t k = 0; k < n && !present; k++)
			present = strcmp(nodes[k].id, id) == 0;
		if (!present || (!pending && wall > deadline + survivor_ms))
			(void)kaa__coord_delete(co, l.items[i].key, false, NULL);
	}
	kaa__kv_list_clear(&l);
}

/* What one autoscaler pass over a cluster works from. */
typedef struct scale_view {
	kaa__coord *co;
	kaa__autoscale_node *nodes; /* the operations nodes */
	size_t n;
	int64_t total; /* their sessions */
	int64_t wall;
	/* a scale-down waiting for its nodes to drain (copied from cstate) */
	bool pending;
	int32_t pending_to;
	int64_t until;
	char (*ids)[254];
	size_t n_ids;
} scale_view;

static void pending_snapshot(kaa__controller *c, const scale_job *j, scale_view *v)
{
	pthread_mutex_lock(&c->mu);
	cstate *s = state_find(c, j->key);
	if (s && s->pending) {
		v->pending = true;
		v->pending_to = s->pending_to;
		v->until = s->pending_until;
		v->n_ids = s->n_pending;
		v->ids = kaa__xmalloc(v->n_ids * sizeof(*v->ids));
		memcpy(v->ids, s->pending_ids, v->n_ids * sizeof(*v->ids));
	}
	pthread_mutex_unlock(&c->mu);
}

/* Ends the pending scale-down in the state; reset_window also restarts
 * the stabilisation window. */
static void pending_clear(kaa__controller *c, const scale_job *j, bool reset_window)
{
	pthread_mutex_lock(&c->mu);
	cstate *s = state_find(c, j->key);
	if (s) {
		s->pending = false;
		if (reset_window)
			memset(&s->st, 0, sizeof(s->st));
	}
	pthread_mutex_unlock(&c->mu);
}

static bool nodes_drained(const scale_view *v)
{
	for (size_t i = 0; i < v->n_ids; i++)
		for (size_t k = 0; k < v->n; k++)
			if (strcmp(v->nodes[k].id, v->ids[i]) == 0 && v->nodes[k].sessions > 0)
				return false;
	return true;
}

/* The load came back: keep every pod, let the nodes admit again. */
static void scale_down_cancel(kaa__controller *c, const scale_job *j, const scale_view *v,
			      int32_t need)
{
	char note[512];
	for (size_t i = 0; i < v->n_ids; i++) {
		char key[512];
		kaa__key_drain(key, sizeof(key), j->cluster, v->ids[i]);
		(void)kaa__coord_delete(v->co, key, false, NULL);
	}
	snprintf(note, sizeof(note),
		 "scale-down of operations cancelled: %lld sessions need %d pods",
		 (long long)v->total, need);
	scale_event(c, j, "Normal", "ScaleDownCancelled", note);
	pending_clear(c, j, true);
}

/* A pass while a scale-down waits: cancel it, keep waiting, or lower the
 * replicas once the nodes drained or their deadline passed. */
static void scale_down_finish(kaa__controller *c, const scale_job *j, const scale_view *v)
{
	bool drained = nodes_drained(v);
	kaa__autoscale_input in = {.total_sessions = v->total,
				   .current = j->current,
				   .min = j->as.min,
				   .max = j->as.max,
				   .target = j->as.target};
	int32_t need = kaa__autoscale_recommend(&in);
	char note[512];

	if (need >= j->current) {
		scale_down_cancel(c, j, v, need);
		return;
	}
	if (!drained && v->wall < v->until)
		return; /* keep waiting */
	if (set_replicas(c, j, v->pending_to) != KAA_OK)
		return;
	snprintf(note, sizeof(note), "scaled operations down from %d to %d (%zu nodes %s)",
		 j->current, v->pending_to, v->n_ids,
		 drained ? "drained" : "past their drain deadline");
	KAA_INFO(MOD, "scaled down cluster=%s from=%d to=%d", j->key, j->current, v->pending_to);
	scale_event(c, j, "Normal", "ScaledDown", note);
	pending_clear(c, j, false);
}

/* The replica count the autoscaler wants now (its window state lives in
 * cstate); false when the cluster is gone meanwhile. */
static bool scale_decide(kaa__controller *c, const scale_job *j, const scale_view *v, int64_t now,
			 int32_t *want)
{
	kaa__autoscale_input in = {.total_sessions = v->total,
				   .current = j->current,
				   .min = j->as.min,
				   .max = j->as.max,
				   .target = j->as.target,
				   .window_ms = j->as.window_s >= 0 ? j->as.window_s * 1000
								    : c->opts.scale_down_window_ms,
				   .now_ms = now};
	pthread_mutex_lock(&c->mu);
	cstate *s = state_find(c, j->key);
	if (s)
		*want = kaa__autoscale_decide(&s->st, &in);
	pthread_mutex_unlock(&c->mu);
	return s != NULL;
}

static void scale_up(kaa__controller *c, const scale_job *j, const scale_view *v, int32_t want)
{
	char note[512];
	if (set_replicas(c, j, want) != KAA_OK)
		return;
	snprintf(note, sizeof(note),
		 "scaled operations up from %d to %d (%lld sessions, target %d per pod)",
		 j->current, want, (long long)v->total, j->as.target);
	KAA_INFO(MOD, "scaled up cluster=%s from=%d to=%d sessions=%lld", j->key, j->current, want,
		 (long long)v->total);
	scale_event(c, j, "Normal", "ScaledUp", note);
}

/* Asks the emptiest nodes to drain (deadline now + drainTimeoutSeconds)
 * and remembers the plan; a later pass lowers the replicas. A StatefulSet
 * removes its highest ordinals, so those are the ones drained (node id =
 * pod name). *ids: the chosen node ids (malloc'd), n_ids their count. */
static void request_drains(kaa__controller *c, const scale_job *j, const scale_view *v, size_t k,
			   int64_t deadline, char (**ids)[254], size_t *n_ids)
{
	size_t *pick = kaa__xcalloc(k, sizeof(*pick));
	size_t got = j->sts ? k : kaa__autoscale_pick_drain(v->nodes, v->n, k, pick);
	char val[64];

	*ids = kaa__xcalloc(got ? got : 1, sizeof(**ids));
	snprintf(val, sizeof(val), "{\"deadline_ms\":%lld}", (long long)deadline);
	for (size_t i = 0; i < got; i++) {
		char key[512];
		if (j->sts)
			snprintf((*ids)[i], sizeof((*ids)[i]), "%s-operations-%d", j->name,
				 j->current - 1 - (int)i);
		else
			snprintf((*ids)[i], sizeof((*ids)[i]), "%s", v->nodes[pick[i]].id);
		kaa__key_drain(key, sizeof(key), j->cluster, (*ids)[i]);
		if (kaa__coord_put(v->co, key, val, strlen(val), 0, NULL) != KAA_OK)
			KAA_WARN(MOD, "drain request failed cluster=%s node=%s", j->key, (*ids)[i]);
		if (!j->sts)
			prefer_removal(c, j, (*ids)[i]);
	}
	free(pick);
	*n_ids = got;
}

static void scale_down_start(kaa__controller *c, const scale_job *j, const scale_view *v,
			     int32_t want)
{
	size_t k = (size_t)(j->current - want), got;
	int64_t deadline = v->wall + j->drain_timeout_s * 1000;
	char(*ids)[254];
	char note[512];

	if (k > MAX_DRAIN)
		return;
	request_drains(c, j, v, k, deadline, &ids, &got);
	snprintf(note, sizeof(note),
		 "scaling operations down from %d to %d: draining %zu nodes first "
		 "(%lld sessions, target %d per pod)",
		 j->current, want, got, (long long)v->total, j->as.target);
	KAA_INFO(MOD, "draining before scale down cluster=%s from=%d to=%d nodes=%zu", j->key,
		 j->current, want, got);
	scale_event(c, j, "Normal", "Draining", note);
	pthread_mutex_lock(&c->mu);
	cstate *s = state_find(c, j->key);
	if (s) {
		free(s->pending_ids);
		s->pending_ids = ids;
		ids = NULL;
		s->n_pending = got;
		s->pending = true;
		s->pending_to = want;
		s->pending_until = deadline;
	}
	pthread_mutex_unlock(&c->mu);
	free(ids);
	/* enqueue so the status shows Progressing */
	(void)kaa__workqueue_add(c->q, j->key);
}

/* One autoscaler pass over one cluster. */
static void scale_one(kaa__controller *c, scale_job *j)
{
	scale_view v = {.wall = kaa__wall_ms()};
	int64_t now = kaa__now_ms();
	int32_t want;

	if (coord_open(j->etcd, &v.co) != KAA_OK)
		return;
	if (kaa__autoscale_read(v.co, j->cluster, &v.nodes, &v.n, &v.total) != KAA_OK)
		goto out;
	pending_snapshot(c, j, &v);
	drain_housekeeping(v.co, j, v.nodes, v.n, v.wall, v.pending);
	if (v.pending) {
		scale_down_finish(c, j, &v);
	} else if (scale_decide(c, j, &v, now, &want)) {
		if (want > j->current)
			scale_up(c, j, &v, want);
		else if (want < j->current)
			scale_down_start(c, j, &v, want);
	}
out:
	free(v.ids);
	free(v.nodes);
	kaa__coord_free(v.co);
}

static void *scaler_main(void *arg)
{
	kaa__controller *c = arg;

	while (!kaa__sleep_ms_unless(c->opts.autoscale_interval_ms, &c->stop)) {
		scale_job *jobs = NULL;
		size_t n = 0;

		pthread_mutex_lock(&c->mu);
		if (c->n_states)
			jobs = kaa__xcalloc(c->n_states, sizeof(*jobs));
		for (size_t i = 0; jobs && i < c->n_states; i++) {
			cstate *s = c->states[i];
			scale_job *j = &jobs[n];
			if (!s->autoscale || !s->etcd)
				continue;
			j->etcd = kaa__xstrdup(s->etcd);
			memcpy(j->key, s->key, sizeof(j->key));
			memcpy(j->ns, s->ns, sizeof(j->ns));
			memcpy(j->name, s->name, sizeof(j->name));
			memcpy(j->uid, s->uid, sizeof(j->uid));
			memcpy(j->cluster, s->cluster, sizeof(j->cluster));
			j->as = s->as;
			j->current = s->spec_replicas;
			j->drain_timeout_s = s->drain_timeout_s;
			j->sts = s->sts;
			n++;
		}
		pthread_mutex_unlock(&c->mu);
		for (size_t i = 0; i < n && !c->stop; i++)
			scale_one(c, &jobs[i]);
		for (size_t i = 0; i < n; i++)
			free(jobs[i].etcd);
		free(jobs);
	}
	return NULL;
}

/* ---- lifecycle ---- */

int kaa__controller_new(kaa__kube *k, kaa__metrics *m, const kaa__controller_opts *opts,
			kaa__controller **out)
{
	static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					0.5,   1,    2.5,   5,    10,  30};
	kaa__controller *c;

	if (!k || !out)
		return KAA_ERR_INVAL;
	*out = NULL;
	c = kaa__xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
	c->kube = k;
	c->events = kaa__kube_recorder_new(k);
	c->metrics = m;
	if (opts)
		c->opts = *opts;
	c->opts.namespaces = NULL;
	c->opts.etcd_override = NULL;
	if (c->opts.workers <= 0)
		c->opts.workers = 2;
	if (c->opts.workers > 64)
		c->opts.workers = 64;
	if (c->opts.resync_ms <= 0)
		c->opts.resync_ms = 300000;
	if (c->opts.autoscale_interval_ms <= 0)
		c->opts.autoscale_interval_ms = 15000;
	if (c->opts.scale_down_window_ms < 0)
		c->opts.scale_down_window_ms = 300000;
	if (c->opts.finalizer_attempts <= 0)
		c->opts.finalizer_attempts = 5;
	if (opts && opts->etcd_override && opts->etcd_override[0])
		c->etcd_override = kaa__xstrdup(opts->etcd_override);
	for (size_t i = 0; opts && opts->namespaces && opts->namespaces[i]; i++) {
		if (!opts->namespaces[i][0])
			continue;
		c->namespaces = kaa__xrealloc(c->namespaces,
					      (c->n_namespaces + 1) * sizeof(*c->namespaces));
		c->namespaces[c->n_namespaces++] = kaa__xstrdup(opts->namespaces[i]);
	}
	if (m) {
		c->rec_ok = kaa__metrics_counter(m, "kaa_operator_reconcile_total",
						 "KaaCluster reconciles by result.",
						 "result=\"success\"");
		c->rec_err = kaa__metrics_counter(m, "kaa_operator_reconcile_total",
						  "KaaCluster reconciles by result.",
						  "result=\"error\"");
		c->errors = kaa__metrics_counter(m, "kaa_operator_reconcile_errors_total",
						 "KaaCluster reconciles that failed.", NULL);
		c->duration = kaa__metrics_histogram(m, "kaa_operator_reconcile_duration_seconds",
						     "Time one KaaCluster reconcile took.", NULL,
						     bounds, sizeof(bounds) / sizeof(bounds[0]));
		c->depth = kaa__metrics_gauge(m, "kaa_operator_queue_depth",
					      "KaaCluster keys waiting in the work queue.", NULL);
	}
	*out = c;
	return KAA_OK;
}

/* Frees what start created; the threads must have been joined. */
static void teardown(kaa__controller *c)
{
	for (size_t i = 0; i < c->n_inf; i++) {
		if (c->kc_inf)
			kaa__kube_informer_free(c->kc_inf[i]);
		if (c->dep_inf)
			kaa__kube_informer_free(c->dep_inf[i]);
		if (c->sts_inf)
			kaa__kube_informer_free(c->sts_inf[i]);
	}
	free(c->kc_inf);
	free(c->dep_inf);
	free(c->sts_inf);
	c->kc_inf = c->dep_inf = c->sts_inf = NULL;
	c->n_inf = 0;
	free(c->workers);
	c->workers = NULL;
	kaa__workqueue_free(c->q);
	c->q = NULL;
}

static void stop_threads(kaa__controller *c)
{
	c->stop = 1;
	kaa__workqueue_shutdown(c->q);
	for (int i = 0; i < c->n_workers_running; i++)
		pthread_join(c->workers[i], NULL);
	c->n_workers_running = 0;
	if (c->scaler_running)
		pthread_join(c->scaler, NULL);
	c->scaler_running = false;
}

int kaa__controller_start(kaa__controller *c)
{
	size_t n_inf;
	int rc;

	if (!c)
		return KAA_ERR_INVAL;
	pthread_mutex_lock(&c->mu);
	if (c->started) {
		pthread_mutex_unlock(&c->mu);
		return KAA_OK;
	}
	pthread_mutex_unlock(&c->mu);
	c->stop = 0;
	rc = kaa__workqueue_new(5, 300000, &c->q);
	if (rc != KAA_OK)
		return rc;
	n_inf = c->n_namespaces ? c->n_namespaces : 1;
	c->kc_inf = kaa__xcalloc(n_inf, sizeof(*c->kc_inf));
	c->dep_inf = kaa__xcalloc(n_inf, sizeof(*c->dep_inf));
	c->sts_inf = kaa__xcalloc(n_inf, sizeof(*c->sts_inf));
	c->workers = kaa__xcalloc((size_t)c->opts.workers, sizeof(*c->workers));
	c->n_inf = n_inf;
	for (size_t i = 0; i < n_inf; i++) {
		char kpath[512], dpath[512], spath[512];
		if (c->n_namespaces) {
			snprintf(kpath, sizeof(kpath), KC_API "/namespaces/%s/kaaclusters",
				 c->namespaces[i]);
			snprintf(dpath, sizeof(dpath), "/apis/apps/v1/namespaces/%s/deployments",
				 c->namespaces[i]);
			snprintf(spath, sizeof(spath), "/apis/apps/v1/namespaces/%s/statefulsets",
				 c->namespaces[i]);
		} else {
			snprintf(kpath, sizeof(kpath), KC_API "/kaaclusters");
			snprintf(dpath, sizeof(dpath), "/apis/apps/v1/deployments");
			snprintf(spath, sizeof(spath), "/apis/apps/v1/statefulsets");
		}
		rc = kaa__kube_informer_new(c->kube, kpath, NULL, c->opts.resync_ms, on_cluster, c,
					    &c->kc_inf[i]);
		if (rc != KAA_OK)
			goto fail;
		rc = kaa__kube_informer_new(c->kube, dpath,
					    "app.kubernetes.io/managed-by=kaa-operator", 0,
					    on_deployment, c, &c->dep_inf[i]);
		if (rc != KAA_OK)
			goto fail;
		/* the operations StatefulSet of clusters with listeners; not part
		 * of readiness, so a role without statefulsets only loses this */
		rc = kaa__kube_informer_new(c->kube, spath,
					    "app.kubernetes.io/managed-by=kaa-operator", 0,
					    on_deployment, c, &c->sts_inf[i]);
		if (rc != KAA_OK)
			goto fail;
	}
	for (int i = 0; i < c->opts.workers; i++) {
		if (pthread_create(&c->workers[i], NULL, worker_main, c) != 0) {
			rc = KAA_ERR_IO;
			goto fail;
		}
		c->n_workers_running++;
	}
	if (pthread_create(&c->scaler, NULL, scaler_main, c) != 0) {
		rc = KAA_ERR_IO;
		goto fail;
	}
	c->scaler_running = true;
	pthread_mutex_lock(&c->mu);
	c->started = true;
	pthread_mutex_unlock(&c->mu);
	KAA_INFO(MOD, "started workers=%d namespaces=%zu", c->opts.workers, c->n_namespaces);
	return KAA_OK;
fail:
	KAA_ERROR(MOD, "start failed err=%s", kaa_strerror(rc));
	stop_threads(c);
	teardown(c);
	return rc;
}

void kaa__controller_stop(kaa__controller *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	if (!c->started) {
		pthread_mutex_unlock(&c->mu);
		return;
	}
	c->started = false;
	pthread_mutex_unlock(&c->mu);
	stop_threads(c);
	teardown(c);
	/* a new leader term starts from fresh observations */
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < c->n_states; i++)
		state_free(c->states[i]);
	c->n_states = 0;
	pthread_mutex_unlock(&c->mu);
	KAA_INFO(MOD, "stopped");
}

bool kaa__controller_ready(kaa__controller *c)
{
	bool ok;

	if (!c)
		return false;
	pthread_mutex_lock(&c->mu);
	ok = c->started;
	for (size_t i = 0; ok && i < c->n_inf; i++)
		ok = kaa__kube_informer_synced(c->kc_inf[i]) &&
		     kaa__kube_informer_synced(c->dep_inf[i]);
	pthread_mutex_unlock(&c->mu);
	return ok;
}

void kaa__controller_free(kaa__controller *c)
{
	if (!c)
		return;
	kaa__controller_stop(c);
	for (size_t i = 0; i < c->n_states; i++)
		state_free(c->states[i]);
	free(c->states);
	for (size_t i = 0; i < c->n_namespaces; i++)
		free(c->namespaces[i]);
	free(c->namespaces);
	free(c->etcd_override);
	kaa__kube_recorder_free(c->events);
	pthread_mutex_destroy(&c->mu);
	free(c);
}
