/*
 * desired.c - see desired.h. Each object is generated with yajl_gen;
 * subtrees the spec passes through unchanged (resources, affinity,
 * tolerations, env, ...) are copied in canonical form so the output is
 * deterministic for a given input.
 */
#include "desired.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "base/alloc.h"
#include "base/error.h"
#include "json/json_merge.h"

const char *const kaa__desired_components[3] = {"control", "operations", "bootstrap"};
static const int default_ports[3] = {8080, 9080, 8081};
static const int default_replicas[3] = {2, 2, 1};
#define INTERNODE_PORT 9091
#define OBJ_MAX_BYTES (1024 * 1024)

/* ---- tree access ---- */

static yajl_val get(yajl_val v, const char *a, const char *b, const char *c, const char *d)
{
	const char *path[5] = {a, b, c, d, NULL};
	return v ? yajl_tree_get(v, path, yajl_t_any) : NULL;
}

static const char *str_of(yajl_val v)
{
	const char *x = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
	return x ? x : "";
}

static const char *get_str(yajl_val v, const char *a, const char *b, const char *c, const char *d)
{
	yajl_val x = get(v, a, b, c, d);
	return YAJL_IS_STRING(x) ? YAJL_GET_STRING(x) : NULL;
}

static int64_t get_int(yajl_val v, int64_t dflt, const char *a, const char *b, const char *c,
		       const char *d)
{
	int64_t n;
	yajl_val x = get(v, a, b, c, d);
	return kaa__json_int64(x, &n) ? n : dflt;
}

static bool get_bool(yajl_val v, bool dflt, const char *a, const char *b, const char *c,
		     const char *d)
{
	yajl_val x = get(v, a, b, c, d);
	if (YAJL_IS_TRUE(x))
		return true;
	if (YAJL_IS_FALSE(x))
		return false;
	return dflt;
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- generation helpers (errors are collected by yajl_gen state) ---- */

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

static void kb(yajl_gen g, const char *k, bool v)
{
	s(g, k);
	yajl_gen_bool(g, v);
}

static int copy(yajl_gen g, const char *k, yajl_val v)
{
	s(g, k);
	return kaa__json_gen_canonical(g, v);
}

static void labels(yajl_gen g, const kaa__desired *d, const char *component, bool selector_only)
{
	yajl_gen_map_open(g);
	if (component)
		kv(g, "app.kubernetes.io/component", component);
	kv(g, "app.kubernetes.io/instance", d->name);
	if (!selector_only)
		kv(g, "app.kubernetes.io/managed-by", "kaa-operator");
	kv(g, "app.kubernetes.io/name", "kaa");
	yajl_gen_map_close(g);
}

/* apiVersion, kind and metadata (name, namespace, labels, owner reference);
 * leaves the top-level map open. annotations may be NULL. */
static void head(yajl_gen g, const kaa__desired *d, const char *api, const char *kind,
		 const char *name, const char *component, yajl_val annotations)
{
	yajl_gen_map_open(g);
	kv(g, "apiVersion", api);
	kv(g, "kind", kind);
	s(g, "metadata");
	yajl_gen_map_open(g);
	kv(g, "name", name);
	kv(g, "namespace", d->ns);
	s(g, "labels");
	labels(g, d, component, false);
	if (YAJL_IS_OBJECT(annotations) && annotations->u.object.len)
		copy(g, "annotations", annotations);
	s(g, "ownerReferences");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "apiVersion", "kaaproject.org/v1alpha1");
	kv(g, "kind", "KaaCluster");
	kv(g, "name", d->name);
	kv(g, "uid", d->uid);
	kb(g, "controller", true);
	kb(g, "blockOwnerDeletion", true);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

static int take(yajl_gen g, char **out)
{
	return kaa__json_gen_take(g, OBJ_MAX_BYTES, out, NULL);
}

/* api: "/api/v1" or "/apis/<group>/<version>"; resource: the plural. */
static int add_obj(kaa__desired *d, const char *kind, const char *name, const char *api,
		   const char *resource, char *json)
{
	kaa__desired_obj *o;
	char path[512];

	if (d->n >= KAA_DESIRED_MAX_OBJS) {
		free(json);
		return KAA_ERR_TOO_BIG;
	}
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 32;
		d->objs = kaa__xrealloc(d->objs, d->cap * sizeof(*d->objs));
	}
	o = &d->objs[d->n];
	snprintf(path, sizeof(path), "%s/namespaces/%s/%s/%s", api, d->ns, resource, name);
	o->path = kaa__xstrdup(path);
	o->kind = kind;
	snprintf(o->name, sizeof(o->name), "%s", name);
	o->json = json;
	d->n++;
	return KAA_OK;
}

static int port_of(yajl_val spec, int i)
{
	return (int)get_int(spec, default_ports[i], "services", "ports", kaa__desired_components[i],
			    NULL);
}

/* ---- the objects ---- */

static int build_config(kaa__desired *d, yajl_val spec)
{
	char conf[4096];
	yajl_gen g = NULL;
	char *json = NULL, name[80];
	int rc, n;

	n = snprintf(conf, sizeof(conf),
		     "# kaa-node configuration written by kaa-operator for KaaCluster %s/%s\n"
		     "cluster = %s\netcd = %s\ncontrol-port = %d\noperations-port = %d\n"
		     "bootstrap-port = %d\ninternode-port = %d\n",
		     d->ns, d->name, d->cluster, d->etcd, port_of(spec, 0), port_of(spec, 1),
		     port_of(spec, 2), INTERNODE_PORT);
	if (n < 0 || (size_t)n >= sizeof(conf))
		return KAA_ERR_TOO_BIG;
	rc = kaa__json_sha256_hex(conf, (size_t)n, d->config_hash);
	if (rc != KAA_OK)
		return rc;
	g = kaa__json_gen_new();
	snprintf(name, sizeof(name), "%s-config", d->name);
	head(g, d, "v1", "ConfigMap", name, "config", NULL);
	s(g, "data");
	yajl_gen_map_open(g);
	kv(g, "kaa.conf", conf);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rc = take(g, &json);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	return add_obj(d, "ConfigMap", name, "/api/v1", "configmaps", json);
}

/* pod_vars: the operator also sets POD_NAME, POD_IP and HOST_IP. */
static bool reserved_env(const char *name, bool pod_vars)
{
	static const char *const r[] = {"KAA_NODE_ID", "KAA_HOST",      "KAA_SQL", "KAA_NOSQL",
					"KAA_CONFIG",  "KAA_ADVERTISE", NULL};
	static const char *const pv[] = {"POD_NAME", "POD_IP", "HOST_IP", NULL};
	for (size_t i = 0; r[i]; i++)
		if (strcmp(name, r[i]) == 0)
			return true;
	for (size_t i = 0; pod_vars && pv[i]; i++)
		if (strcmp(name, pv[i]) == 0)
			return true;
	return false;
}

static void env_field(yajl_gen g, const char *name, const char *field)
{
	yajl_gen_map_open(g);
	kv(g, "name", name);
	s(g, "valueFrom");
	yajl_gen_map_open(g);
	s(g, "fieldRef");
	yajl_gen_map_open(g);
	kv(g, "fieldPath", field);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void env_secret(yajl_gen g, const char *name, const char *secret, const char *key)
{
	yajl_gen_map_open(g);
	kv(g, "name", name);
	s(g, "valueFrom");
	yajl_gen_map_open(g);
	s(g, "secretKeyRef");
	yajl_gen_map_open(g);
	kv(g, "name", secret);
	kv(g, "key", key);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void probe(yajl_gen g, const char *k, const char *path, const char *port, int period,
		  int failures)
{
	s(g, k);
	yajl_gen_map_open(g);
	s(g, "httpGet");
	yajl_gen_map_open(g);
	kv(g, "path", path);
	kv(g, "port", port);
	yajl_gen_map_close(g);
	ki(g, "periodSeconds", period);
	ki(g, "failureThreshold", failures);
	yajl_gen_map_close(g);
}

/* Copies v under key k when it is a non-empty array. */
static void copy_array(yajl_gen g, const char *k, yajl_val v)
{
	if (YAJL_IS_ARRAY(v) && v->u.array.len)
		copy(g, k, v);
}

/* Copies v under key k when it is a non-empty object. */
static void copy_object(yajl_gen g, const char *k, yajl_val v)
{
	if (YAJL_IS_OBJECT(v) && v->u.object.len)
		copy(g, k, v);
}

static const char *or_default(const char *v, const char *dflt)
{
	return v ? v : dflt;
}

/* The pod template's labels and the config hash that rolls pods when
 * kaa.conf changes. */
static void pod_metadata(yajl_gen g, const kaa__desired *d, const char *comp)
{
	s(g, "metadata");
	yajl_gen_map_open(g);
	s(g, "labels");
	labels(g, d, comp, false);
	s(g, "annotations");
	yajl_gen_map_open(g);
	kv(g, KAA_DESIRED_CONFIG_HASH, d->config_hash);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

/* The CRD's documented default: spread by host, softly. */
static void default_spread(yajl_gen g, const kaa__desired *d, const char *comp)
{
	s(g, "topologySpreadConstraints");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	ki(g, "maxSkew", 1);
	kv(g, "topologyKey", "kubernetes.io/hostname");
	kv(g, "whenUnsatisfiable", "ScheduleAnyway");
	s(g, "labelSelector");
	yajl_gen_map_open(g);
	s(g, "matchLabels");
	labels(g, d, comp, true);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

/* Pull secrets and placement, copied from the spec (cs: the component's
 * part of it). */
static void pod_scheduling(yajl_gen g, const kaa__desired *d, yajl_val spec, yajl_val cs,
			   const char *comp)
{
	copy_array(g, "imagePullSecrets", get(spec, "image", "pullSecrets", NULL, NULL));
	copy_object(g, "nodeSelector", get(cs, "nodeSelector", NULL, NULL, NULL));
	copy_array(g, "tolerations", get(cs, "tolerations", NULL, NULL, NULL));
	copy_object(g, "affinity", get(cs, "affinity", NULL, NULL, NULL));
	yajl_val v = get(cs, "topologySpreadConstraints", NULL, NULL, NULL);
	if (YAJL_IS_ARRAY(v) && v->u.array.len)
		copy(g, "topologySpreadConstraints", v);
	else
		default_spread(g, d, comp);
}

static void config_volume(yajl_gen g, const kaa__desired *d)
{
	char cfg[80];
	snprintf(cfg, sizeof(cfg), "%s-config", d->name);
	s(g, "volumes");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "name", "config");
	s(g, "configMap");
	yajl_gen_map_open(g);
	kv(g, "name", cfg);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

static void container_args(yajl_gen g, const kaa__desired *d, const char *comp)
{
	s(g, "args");
	yajl_gen_array_open(g);
	s(g, "--services");
	s(g, comp);
	s(g, "--config");
	s(g, KAA_DESIRED_CONFIG_FILE);
	s(g, "--cluster");
	s(g, d->cluster);
	s(g, "--etcd");
	s(g, d->etcd);
	yajl_gen_array_close(g);
}

/* The operator's own settings, then the spec's env except the names the
 * operator sets (its settings win). */
static void container_env(yajl_gen g, const kaa__desired *d, yajl_val spec, yajl_val cs,
			  const char *advertise)
{
	s(g, "env");
	yajl_gen_array_open(g);
	env_field(g, "KAA_NODE_ID", "metadata.name");
	env_field(g, "KAA_HOST", "status.podIP");
	if (advertise) {
		/* declared before KAA_ADVERTISE, which the kubelet expands with them */
		env_field(g, "POD_NAME", "metadata.name");
		env_field(g, "POD_IP", "status.podIP");
		env_field(g, "HOST_IP", "status.hostIP");
		yajl_gen_map_open(g);
		kv(g, "name", "KAA_ADVERTISE");
		kv(g, "value", advertise);
		yajl_gen_map_close(g);
	}
	env_secret(g, "KAA_SQL", d->sql_secret,
		   or_default(get_str(spec, "sql", "secretRef", "key", NULL), "url"));
	env_secret(g, "KAA_NOSQL", d->nosql_secret,
		   or_default(get_str(spec, "documentStore", "secretRef", "key", NULL), "url"));
	yajl_val v = get(cs, "env", NULL, NULL, NULL);
	for (size_t j = 0; YAJL_IS_ARRAY(v) && j < v->u.array.len; j++) {
		yajl_val e = v->u.array.values[j];
		const char *en = get_str(e, "name", NULL, NULL, NULL);
		if (en && !reserved_env(en, advertise != NULL))
			kaa__json_gen_canonical(g, e);
	}
	yajl_gen_array_close(g);
}

static void container_port(yajl_gen g, const char *name, int port)
{
	yajl_gen_map_open(g);
	kv(g, "name", name);
	ki(g, "containerPort", port);
	kv(g, "protocol", "TCP");
	yajl_gen_map_close(g);
}

static void container_ports(yajl_gen g, yajl_val spec, int i)
{
	s(g, "ports");
	yajl_gen_array_open(g);
	container_port(g, kaa__desired_components[i], port_of(spec, i));
	container_port(g, "internode", INTERNODE_PORT);
	yajl_gen_array_close(g);
}

/* The operations pod's preStop starts the drain (SIGTERM to kaa-node, PID
 * 1 of the image) and waits until the node has moved its devices and
 * exited, within terminationGracePeriodSeconds. */
static void drain_prestop(yajl_gen g)
{
	s(g, "lifecycle");
	yajl_gen_map_open(g);
	s(g, "preStop");
	yajl_gen_map_open(g);
	s(g, "exec");
	yajl_gen_map_open(g);
	s(g, "command");
	yajl_gen_array_open(g);
	s(g, "/bin/sh");
	s(g, "-c");
	s(g, "kill -TERM 1; while kill -0 1 2>/dev/null; do sleep 1; done");
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void container_security(yajl_gen g)
{
	s(g, "securityContext");
	yajl_gen_map_open(g);
	kb(g, "allowPrivilegeEscalation", false);
	s(g, "capabilities");
	yajl_gen_map_open(g);
	s(g, "drop");
	yajl_gen_array_open(g);
	s(g, "ALL");
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static void config_mount(yajl_gen g)
{
	s(g, "volumeMounts");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "name", "config");
	kv(g, "mountPath", "/etc/kaa");
	kb(g, "readOnly", true);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

/* The one kaa-node container of component i. */
static void container(yajl_gen g, const kaa__desired *d, yajl_val spec, yajl_val cs, int i,
		      const char *image)
{
	const char *comp = kaa__desired_components[i];

	s(g, "containers");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "name", "kaa-node");
	kv(g, "image", image);
	kv(g, "imagePullPolicy",
	   or_default(get_str(spec, "image", "pullPolicy", NULL, NULL), "IfNotPresent"));
	if (i == 1 && d->ops_script) {
		/* the image's entrypoint is kaa-node; the wrapper execs it */
		s(g, "command");
		yajl_gen_array_open(g);
		s(g, "/bin/sh");
		s(g, "-c");
		s(g, d->ops_script);
		s(g, "kaa-node");
		yajl_gen_array_close(g);
	}
	container_args(g, d, comp);
	container_env(g, d, spec, cs, i == 1 ? d->advertise : NULL);
	container_ports(g, spec, i);
	probe(g, "readinessProbe", "/readyz", comp, 5, 3);
	probe(g, "livenessProbe", "/healthz", comp, 10, 6);
	if (i == 1)
		drain_prestop(g);
	copy_object(g, "resources", get(cs, "resources", NULL, NULL, NULL));
	container_security(g);
	config_mount(g);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

static void pod_spec(yajl_gen g, const kaa__desired *d, yajl_val spec, yajl_val cs, int i,
		     const char *image)
{
	s(g, "spec");
	yajl_gen_map_open(g);
	/* operations pods get the drain's time on top of the usual grace */
	ki(g, "terminationGracePeriodSeconds",
	   i == 1 ? d->drain_timeout_s + KAA_DESIRED_GRACE_EXTRA_S : 30);
	s(g, "securityContext");
	yajl_gen_map_open(g);
	s(g, "seccompProfile");
	yajl_gen_map_open(g);
	kv(g, "type", "RuntimeDefault");
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	pod_scheduling(g, d, spec, cs, kaa__desired_components[i]);
	config_volume(g, d);
	container(g, d, spec, cs, i, image);
	yajl_gen_map_close(g);
}

static int build_deployment(kaa__desired *d, yajl_val spec, int i, const char *image)
{
	const char *comp = kaa__desired_components[i];
	yajl_val cs = get(spec, comp, NULL, NULL, NULL);
	bool sts = i == 1 && d->ops_statefulset;
	const char *kind = sts ? "StatefulSet" : "Deployment";
	yajl_gen g = kaa__json_gen_new();
	char *json = NULL, name[80];
	int rc;

	snprintf(name, sizeof(name), "%s-%s", d->name, comp);
	head(g, d, "apps/v1", kind, name, comp, NULL);
	s(g, "spec");
	yajl_gen_map_open(g);
	ki(g, "replicas", d->replicas[i]);
	if (sts) {
		/* pods start and stop in parallel, as a Deployment's do */
		kv(g, "serviceName", name);
		kv(g, "podManagementPolicy", "Parallel");
	}
	s(g, "selector");
	yajl_gen_map_open(g);
	s(g, "matchLabels");
	labels(g, d, comp, true);
	yajl_gen_map_close(g);
	s(g, "template");
	yajl_gen_map_open(g);
	pod_metadata(g, d, comp);
	pod_spec(g, d, spec, cs, i, image);
	yajl_gen_map_close(g); /* template */
	yajl_gen_map_close(g); /* spec */
	yajl_gen_map_close(g);
	rc = take(g, &json);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	if (i == 1) {
		/* the other kind goes when a listener change switches kinds */
		rc = sts ? add_obj(d, "Deployment", name, "/apis/apps/v1", "deployments", NULL)
			 : add_obj(d, "StatefulSet", name, "/apis/apps/v1", "statefulsets", NULL);
		if (rc != KAA_OK) {
			free(json);
			return rc;
		}
	}
	return add_obj(d, kind, name, "/apis/apps/v1", sts ? "statefulsets" : "deployments", json);
}

static int build_service(kaa__desired *d, yajl_val spec, int i)
{
	const char *comp = kaa__desired_components[i];
	const char *type = get_str(spec, "services", "type", NULL, NULL);
	yajl_gen g = kaa__json_gen_new();
	char *json = NULL, name[80];
	int rc;

	snprintf(name, sizeof(name), "%s-%s", d->name, comp);
	head(g, d, "v1", "Service", name, comp, get(spec, "services", "annotations", NULL, NULL));
	s(g, "spec");
	yajl_gen_map_open(g);
	kv(g, "type", type ? type : "ClusterIP");
	s(g, "selector");
	labels(g, d, comp, true);
	s(g, "ports");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "name", comp);
	ki(g, "port", port_of(spec, i));
	kv(g, "targetPort", comp);
	kv(g, "protocol", "TCP");
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rc = take(g, &json);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	return add_obj(d, "Service", name, "/api/v1", "services", json);
}

static int build_pdb(kaa__desired *d, yajl_val spec, int i)
{
	const char *comp = kaa__desired_components[i];
	yajl_val pdb = get(spec, comp, "podDisruptionBudget", NULL, NULL);
	yajl_val min = get(pdb, "minAvailable", NULL, NULL, NULL);
	yajl_val max = get(pdb, "maxUnavailable", NULL, NULL, NULL);
	yajl_gen g = NULL;
	char *json = NULL, name[80];
	int rc;

	snprintf(name, sizeof(name), "%s-%s", d->name, comp);
	if (!get_bool(pdb, true, "enabled", NULL, NULL, NULL))
		return add_obj(d, "PodDisruptionBudget", name, "/apis/policy/v1",
			       "poddisruptionbudgets", NULL);
	g = kaa__json_gen_new();
	head(g, d, "policy/v1", "PodDisruptionBudget", name, comp, NULL);
	s(g, "spec");
	yajl_gen_map_open(g);
	s(g, "selector");
	yajl_gen_map_open(g);
	s(g, "matchLabels");
	labels(g, d, comp, true);
	yajl_gen_map_close(g);
	if (min && (YAJL_IS_NUMBER(min) || YAJL_IS_STRING(min)))
		copy(g, "minAvailable", min);
	else if (max && (YAJL_IS_NUMBER(max) || YAJL_IS_STRING(max)))
		copy(g, "maxUnavailable", max);
	else
		ki(g, "maxUnavailable", 1);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rc = take(g, &json);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	return add_obj(d, "PodDisruptionBudget", name, "/apis/policy/v1", "poddisruptionbudgets",
		       json);
}

static void ingress_path(yajl_gen g, const char *path, const char *svc, const char *port)
{
	yajl_gen_map_open(g);
	kv(g, "path", path);
	kv(g, "pathType", "Prefix");
	s(g, "backend");
	yajl_gen_map_open(g);
	s(g, "service");
	yajl_gen_map_open(g);
	kv(g, "name", svc);
	s(g, "port");
	yajl_gen_map_open(g);
	kv(g, "name", port);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
}

static int build_ingress(kaa__desired *d, yajl_val spec, char *err, size_t errlen)
{
	yajl_val ing = get(spec, "ingress", NULL, NULL, NULL);
	const char *host = get_str(ing, "host", NULL, NULL, NULL);
	const char *cls = get_str(ing, "className", NULL, NULL, NULL);
	const char *tls = get_str(ing, "tlsSecretName", NULL, NULL, NULL);
	yajl_gen g = NULL;
	char *json = NULL, ops[80], boot[80];
	int rc;

	if (!get_bool(ing, false, "enabled", NULL, NULL, NULL))
		return add_obj(d, "Ingress", d->name, "/apis/networking.k8s.io/v1", "ingresses",
			       NULL);
	if (!host || !host[0]) {
		errf(err, errlen, "spec.ingress.host is required when the ingress is enabled");
		return KAA_ERR_INVAL;
	}
	g = kaa__json_gen_new();
	snprintf(ops, sizeof(ops), "%s-operations", d->name);
	snprintf(boot, sizeof(boot), "%s-bootstrap", d->name);
	head(g, d, "networking.k8s.io/v1", "Ingress", d->name, "ingress",
	     get(ing, "annotations", NULL, NULL, NULL));
	s(g, "spec");
	yajl_gen_map_open(g);
	if (cls && cls[0])
		kv(g, "ingressClassName", cls);
	if (tls && tls[0]) {
		s(g, "tls");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		s(g, "hosts");
		yajl_gen_array_open(g);
		s(g, host);
		yajl_gen_array_close(g);
		kv(g, "secretName", tls);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
	}
	s(g, "rules");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "host", host);
	s(g, "http");
	yajl_gen_map_open(g);
	s(g, "paths");
	yajl_gen_array_open(g);
	/* bootstrap answers under /v1/; every other path is the device WebSocket */
	ingress_path(g, "/v1/", boot, "bootstrap");
	ingress_path(g, "/", ops, "operations");
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rc = take(g, &json);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	return add_obj(d, "Ingress", d->name, "/apis/networking.k8s.io/v1", "ingresses", json);
}

/* ---- listeners (spec.operations.listeners) ---- */

enum { L_CLUSTER, L_INGRESS, L_LB, L_NODEPORT };

typedef struct listener {
	const char *name;
	int type;
	const char *host;      /* template with {pod}, or NULL */
	const char *prefix;    /* path prefix template, or NULL */
	const char *boot_host; /* host of the bootstrap rule, or NULL */
	const char *tls;       /* Secret name, or NULL */
	const char *cls;       /* ingressClassName, or NULL */
	int64_t port;          /* advertised port, 0: by type */
	int64_t np_base;       /* nodePortBase */
	yajl_val annotations, overrides;
} listener;

#define POD_VAR "$(POD_NAME)"
#define URL_MAX 512

static bool name_ok(const char *v, size_t max)
{
	size_t n = strlen(v);
	if (!n || n > max || v[0] == '-' || v[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
			return false;
	return true;
}

/* Hosts and paths end up in URLs, Ingress rules and a shell word in single
 * quotes: a conservative character set, {pod} the one placeholder. */
static bool tmpl_ok(const char *v, bool path)
{
	size_t n = strlen(v);
	if (!n || n > 200 || (path && (v[0] != '/' || (n > 1 && v[n - 1] == '/'))))
		return false;
	for (const char *p = v; *p; p++) {
		if (!strncmp(p, "{pod}", 5)) {
			p += 4;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '.' || (path && ((*p >= 'A' && *p <= 'Z') || *p == '/' || *p == '_'))))
			return false;
	}
	return true;
}

static int parse_listener(yajl_val v, listener *l, char *err, size_t errlen)
{
	static const char *const types[] = {"cluster", "ingress", "loadbalancer", "nodeport"};
	const char *t = get_str(v, "type", NULL, NULL, NULL);

	memset(l, 0, sizeof(*l));
	l->name = get_str(v, "name", NULL, NULL, NULL);
	if (!l->name || !name_ok(l->name, 20)) {
		errf(err, errlen,
		     "spec.operations.listeners[].name must be a DNS label of at most "
		     "20 characters");
		return KAA_ERR_INVAL;
	}
	l->type = -1;
	for (int i = 0; t && i < 4; i++)
		if (!strcmp(t, types[i]))
			l->type = i;
	if (l->type < 0) {
		errf(err, errlen,
		     "listener %s: type must be cluster, ingress, loadbalancer or nodeport",
		     l->name);
		return KAA_ERR_INVAL;
	}
	l->host = get_str(v, "host", NULL, NULL, NULL);
	l->prefix = get_str(v, "pathPrefix", NULL, NULL, NULL);
	l->boot_host = get_str(v, "bootstrapHost", NULL, NULL, NULL);
	l->tls = get_str(v, "tls", "secretName", NULL, NULL);
	l->cls = get_str(v, "ingressClassName", NULL, NULL, NULL);
	l->port = get_int(v, 0, "port", NULL, NULL, NULL);
	l->np_base = get_int(v, 0, "nodePortBase", NULL, NULL, NULL);
	l->annotations = get(v, "annotations", NULL, NULL, NULL);
	l->overrides = get(v, "advertisedHosts", NULL, NULL, NULL);
	if (l->host && !l->host[0])
		l->host = NULL;
	if (l->prefix && !l->prefix[0])
		l->prefix = NULL;
	if (l->boot_host && !l->boot_host[0])
		l->boot_host = NULL;
	if (l->tls && !l->tls[0])
		l->tls = NULL;
	if ((l->host && !tmpl_ok(l->host, false)) || (l->prefix && !tmpl_ok(l->prefix, true)) ||
	    (l->boot_host && (strstr(l->boot_host, "{pod}") || !tmpl_ok(l->boot_host, false)))) {
		errf(err, errlen,
		     "listener %s: host, bootstrapHost or pathPrefix has a character outside "
		     "[a-z0-9.-] (paths: also A-Z _ /, starting with / and not ending with /)",
		     l->name);
		return KAA_ERR_INVAL;
	}
	if (l->port < 0 || l->port > 65535) {
		errf(err, errlen, "listener %s: port must be 1..65535", l->name);
		return KAA_ERR_INVAL;
	}
	if (l->type == L_INGRESS) {
		if (!l->host) {
			errf(err, errlen, "listener %s: an ingress listener needs a host", l->name);
			return KAA_ERR_INVAL;
		}
		if (!strstr(l->host, "{pod}") && !(l->prefix && strstr(l->prefix, "{pod}"))) {
			errf(err, errlen,
			     "listener %s: host or pathPrefix must contain {pod} (each pod needs "
			     "its own address)",
			     l->name);
			return KAA_ERR_INVAL;
		}
		if (l->prefix && !strncmp(l->prefix, "/v1", 3)) {
			errf(err, errlen,
			     "listener %s: pathPrefix must not start with /v1 (the "
			     "bootstrap path)",
			     l->name);
			return KAA_ERR_INVAL;
		}
		if (!l->boot_host && !strstr(l->host, "{pod}"))
			l->boot_host = l->host;
	} else {
		if (l->tls || l->prefix || l->cls) {
			errf(err, errlen,
			     "listener %s: tls, pathPrefix and ingressClassName are for type ingress",
			     l->name);
			return KAA_ERR_INVAL;
		}
	}
	if (l->type == L_NODEPORT && (l->np_base < 30000 || l->np_base > 32767)) {
		errf(err, errlen,
		     "listener %s: a nodeport listener needs nodePortBase in 30000..32767",
		     l->name);
		return KAA_ERR_INVAL;
	}
	for (size_t j = 0; YAJL_IS_ARRAY(l->overrides) && j < l->overrides->u.array.len; j++) {
		yajl_val o = l->overrides->u.array.values[j];
		const char *h = get_str(o, "host", NULL, NULL, NULL);
		int64_t pod = get_int(o, -1, "pod", NULL, NULL, NULL);
		int64_t port = get_int(o, 0, "port", NULL, NULL, NULL);
		if (pod < 0 || pod > 999 ||
		    (h && (!h[0] || strstr(h, "{pod}") || !tmpl_ok(h, false))) || port < 0 ||
		    port > 65535) {
			errf(err, errlen,
			     "listener %s: advertisedHosts[%zu] needs pod (0..999), an optional host "
			     "([a-z0-9.-], no {pod}) and an optional port (1..65535)",
			     l->name, j);
			return KAA_ERR_INVAL;
		}
	}
	return KAA_OK;
}

static int parse_listeners(yajl_val spec, listener *ls, size_t *n, char *err, size_t errlen)
{
	yajl_val v = get(spec, "operations", "listeners", NULL, NULL);
	int rc;

	*n = 0;
	if (!YAJL_IS_ARRAY(v))
		return KAA_OK;
	if (v->u.array.len > KAA_DESIRED_MAX_LISTENERS) {
		errf(err, errlen, "spec.operations.listeners: at most %d",
		     KAA_DESIRED_MAX_LISTENERS);
		return KAA_ERR_INVAL;
	}
	for (size_t i = 0; i < v->u.array.len; i++) {
		if ((rc = parse_listener(v->u.array.values[i], &ls[i], err, errlen)) != KAA_OK)
			return rc;
		for (size_t k = 0; k < i; k++)
			if (!strcmp(ls[k].name, ls[i].name)) {
				errf(err, errlen, "listener name %s is used twice", ls[i].name);
				return KAA_ERR_INVAL;
			}
	}
	*n = v->u.array.len;
	return KAA_OK;
}

/* Copies tmpl into out with every {pod} replaced by pod; false when it
 * does not fit. */
static bool expand(const char *tmpl, const char *pod, char *out, size_t cap)
{
	size_t o = 0, pl = strlen(pod);
	for (const char *p = tmpl; *p; p++) {
		if (!strncmp(p, "{pod}", 5)) {
			if (o + pl >= cap)
				return false;
			memcpy(out + o, pod, pl);
			o += pl;
			p += 4;
			continue;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = *p;
	}
	out[o] = 0;
	return true;
}

static void pod_name(const kaa__desired *d, int i, char *out, size_t cap)
{
	snprintf(out, cap, "%s-operations-%d", d->name, i);
}

/* The advertisedHosts entry of ordinal i, or NULL. */
static yajl_val override_of(const listener *l, int i)
{
	for (size_t j = 0; i >= 0 && YAJL_IS_ARRAY(l->overrides) && j < l->overrides->u.array.len;
	     j++) {
		yajl_val o = l->overrides->u.array.values[j];
		if (get_int(o, -1, "pod", NULL, NULL, NULL) == i)
			return o;
	}
	return NULL;
}

/* The host pod i is reached at through l (pod: its name or POD_VAR). */
static bool listener_host(const listener *l, const char *pod, int i, char *out, size_t cap)
{
	const char *h = get_str(override_of(l, i), "host", NULL, NULL, NULL);
	if (h) {
		snprintf(out, cap, "%s", h);
		return true;
	}
	if (l->host)
		return expand(l->host, pod, out, cap);
	snprintf(out, cap, "%s", l->type == L_NODEPORT ? "$(HOST_IP)" : "$(POD_IP)");
	return true;
}

/* The port of pod i's address through l (i < 0: the template's, ordinal
 * 0's for a NodePort). */
static int64_t listener_port(const listener *l, yajl_val spec, int i)
{
	int64_t p = get_int(override_of(l, i), 0, "port", NULL, NULL, NULL);
	if (p > 0)
		return p;
	if (l->type == L_NODEPORT)
		return l->np_base + (i < 0 ? 0 : i);
	if (l->port > 0)
		return l->port;
	if (l->type == L_INGRESS)
		return l->tls ? 443 : 80;
	return port_of(spec, 1);
}

/* The Ingress path of pod i, "" without a pathPrefix. */
static bool listener_path(const listener *l, const char *pod, char *out, size_t cap)
{
	if (!l->prefix) {
		out[0] = 0;
		return true;
	}
	return expand(l->prefix, pod, out, cap);
}

/* Pod i's advertised URLs, comma-separated in listener order; pod: its
 * name, or POD_VAR with i = -1 for the pod template. */
static int advertise_of(const listener *ls, size_t n, yajl_val spec, const char *pod, int i,
			char *out, size_t cap)
{
	size_t o = 0;
	out[0] = 0;
	for (size_t k = 0; k < n; k++) {
		char host[256], path[256];
		int w;
		if (!listener_host(&ls[k], pod, i, host, sizeof(host)) ||
		    !listener_path(&ls[k], pod, path, sizeof(path)))
			return KAA_ERR_TOO_BIG;
		w = snprintf(out + o, cap - o, "%s%s://%s:%lld%s/", k ? "," : "",
			     ls[k].type == L_INGRESS && ls[k].tls ? "wss" : "ws", host,
			     (long long)listener_port(&ls[k], spec, i), path);
		if (w < 0 || (size_t)w >= cap - o)
			return KAA_ERR_TOO_BIG;
		o += (size_t)w;
	}
	return KAA_OK;
}

/* Replaces every POD_VAR in s by pod. */
static bool subst_pod(const char *s, const char *pod, char *out, size_t cap)
{
	size_t o = 0, pl = strlen(pod), vl = strlen(POD_VAR);
	for (const char *p = s; *p;) {
		if (!strncmp(p, POD_VAR, vl)) {
			if (o + pl >= cap)
				return false;
			memcpy(out + o, pod, pl);
			o += pl;
			p += vl;
			continue;
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = *p++;
	}
	out[o] = 0;
	return true;
}

static void str_append(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = kaa__xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

/*
 * d->advertise (the template's KAA_ADVERTISE, $(POD_NAME) and friends
 * expanded by the kubelet) and, when some pod's URLs are not that template
 * with its own name (advertisedHosts overrides, NodePorts), *script: a
 * /bin/sh wrapper that sets those pods' KAA_ADVERTISE by $POD_NAME and
 * execs kaa-node (so kaa-node stays PID 1 for the preStop hook).
 */
static int build_advertise(kaa__desired *d, yajl_val spec, const listener *ls, size_t n,
			   char **script)
{
	char tmpl[KAA_DESIRED_MAX_LISTENERS * URL_MAX], own[sizeof(tmpl)], lit[sizeof(tmpl)];
	char pod[80], line[sizeof(tmpl) + 128];
	size_t len = 0, cap = 0;
	bool any = false;
	/* pods the autoscaler may add get their arm now: a scale must not
	 * change the pod template (that would roll every pod) */
	int bound = d->replicas[1];
	int rc;

	*script = NULL;
	if (!n)
		return KAA_OK;
	if (d->autoscale.enabled && d->autoscale.max > bound)
		bound = d->autoscale.max > 1000 ? 1000 : d->autoscale.max;
	for (size_t k = 0; k < n; k++)
		for (size_t j = 0;
		     YAJL_IS_ARRAY(ls[k].overrides) && j < ls[k].overrides->u.array.len; j++) {
			int64_t p = get_int(ls[k].overrides->u.array.values[j], -1, "pod", NULL,
					    NULL, NULL);
			if (p >= bound)
				bound = (int)p + 1;
		}
	if ((rc = advertise_of(ls, n, spec, POD_VAR, -1, tmpl, sizeof(tmpl))) != KAA_OK)
		return rc;
	d->advertise = kaa__xstrdup(tmpl);
	for (int i = 0; i < bound; i++) {
		pod_name(d, i, pod, sizeof(pod));
		if ((rc = advertise_of(ls, n, spec, pod, i, lit, sizeof(lit))) != KAA_OK)
			return rc;
		if (!subst_pod(tmpl, pod, own, sizeof(own)))
			return KAA_ERR_TOO_BIG;
		if (!strcmp(own, lit))
			continue;
		if (!any)
			str_append(script, &len, &cap, "case \"$POD_NAME\" in\n");
		any = true;
		snprintf(line, sizeof(line), "%s) KAA_ADVERTISE='%s' ;;\n", pod, lit);
		str_append(script, &len, &cap, line);
	}
	if (any)
		str_append(script, &len, &cap,
			   "esac\nexport KAA_ADVERTISE\nexec kaa-node \"$@\"\n");
	return KAA_OK;
}

/* Metadata of a listener object: head() plus the listener label. */
static void listener_head(yajl_gen g, const kaa__desired *d, const char *api, const char *kind,
			  const char *name, const char *lname, yajl_val annotations,
			  const char *pod)
{
	yajl_gen_map_open(g);
	kv(g, "apiVersion", api);
	kv(g, "kind", kind);
	s(g, "metadata");
	yajl_gen_map_open(g);
	kv(g, "name", name);
	kv(g, "namespace", d->ns);
	s(g, "labels");
	yajl_gen_map_open(g);
	kv(g, "app.kubernetes.io/component", "operations");
	kv(g, "app.kubernetes.io/instance", d->name);
	kv(g, "app.kubernetes.io/managed-by", "kaa-operator");
	kv(g, "app.kubernetes.io/name", "kaa");
	kv(g, KAA_DESIRED_LISTENER_LABEL, "true");
	if (lname)
		kv(g, "kaaproject.org/listener", lname);
	yajl_gen_map_close(g);
	if (YAJL_IS_OBJECT(annotations) && annotations->u.object.len) {
		/* values may name the pod ({pod}), e.g. external-dns hostnames */
		s(g, "annotations");
		yajl_gen_map_open(g);
		for (size_t i = 0; i < annotations->u.object.len; i++) {
			yajl_val v = annotations->u.object.values[i];
			char val[1024];
			s(g, annotations->u.object.keys[i]);
			if (pod && YAJL_IS_STRING(v) && expand(str_of(v), pod, val, sizeof(val)))
				s(g, val);
			else
				kaa__json_gen_canonical(g, v);
		}
		yajl_gen_map_close(g);
	}
	s(g, "ownerReferences");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "apiVersion", "kaaproject.org/v1alpha1");
	kv(g, "kind", "KaaCluster");
	kv(g, "name", d->name);
	kv(g, "uid", d->uid);
	kb(g, "controller", true);
	kb(g, "blockOwnerDeletion", true);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

static int finish(kaa__desired *d, yajl_gen g, const char *kind, const char *name, const char *api,
		  const char *resource)
{
	char *json = NULL;
	int rc = take(g, &json);
	yajl_gen_free(g);
	if (rc != KAA_OK)
		return rc;
	return add_obj(d, kind, name, api, resource, json);
}

/*
 * One Service per operations pod and listener of type loadbalancer or
 * nodeport (name <pod>-<listener>), or per pod for the ingress listeners
 * (name <pod>, shared by them): selector statefulset.kubernetes.io/pod-name.
 */
static int build_pod_service(kaa__desired *d, yajl_val spec, const listener *l, int i)
{
	char pod[80], name[160];
	yajl_gen g;

	pod_name(d, i, pod, sizeof(pod));
	if (l)
		snprintf(name, sizeof(name), "%s-%s", pod, l->name);
	else
		snprintf(name, sizeof(name), "%s", pod);
	if (strlen(name) > 63)
		return KAA_ERR_INVAL;
	g = kaa__json_gen_new();
	listener_head(g, d, "v1", "Service", name, l ? l->name : NULL, l ? l->annotations : NULL,
		      pod);
	s(g, "spec");
	yajl_gen_map_open(g);
	kv(g, "type", !l ? "ClusterIP" : l->type == L_LB ? "LoadBalancer" : "NodePort");
	s(g, "selector");
	yajl_gen_map_open(g);
	kv(g, "statefulset.kubernetes.io/pod-name", pod);
	yajl_gen_map_close(g);
	s(g, "ports");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	kv(g, "name", "operations");
	ki(g, "port", l && l->type == L_LB ? listener_port(l, spec, i) : port_of(spec, 1));
	kv(g, "targetPort", "operations");
	kv(g, "protocol", "TCP");
	if (l && l->type == L_NODEPORT)
		ki(g, "nodePort", listener_port(l, spec, i));
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	return finish(d, g, "Service", name, "/api/v1", "services");
}

typedef struct ing_route {
	char host[256], path[256], svc[80];
	const char *port;
} ing_route;

static void ingress_rules(yajl_gen g, const ing_route *r, size_t n)
{
	s(g, "rules");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !strcmp(r[k].host, r[i].host);
		if (seen)
			continue;
		yajl_gen_map_open(g);
		kv(g, "host", r[i].host);
		s(g, "http");
		yajl_gen_map_open(g);
		s(g, "paths");
		yajl_gen_array_open(g);
		for (size_t k = i; k < n; k++)
			if (!strcmp(r[k].host, r[i].host))
				ingress_path(g, r[k].path, r[k].svc, r[k].port);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

static void ingress_tls(yajl_gen g, const listener *l, const ing_route *r, size_t n)
{
	s(g, "tls");
	yajl_gen_array_open(g);
	yajl_gen_map_open(g);
	s(g, "hosts");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = !strcmp(r[k].host, r[i].host);
		if (!seen)
			s(g, r[i].host);
	}
	yajl_gen_array_close(g);
	kv(g, "secretName", l->tls);
	yajl_gen_map_close(g);
	yajl_gen_array_close(g);
}

/*
 * Ingress N-<listener>: for each operations pod a rule (its host, its path
 * prefix or /) to the pod's Service, and /v1/ on the bootstrap host to
 * N-bootstrap (bootstrap's own paths, so no controller-specific rewrite is
 * needed: devices use https://<bootstrapHost>/ as their bootstrap URL).
 * ingress-nginx gets WebSocket-length timeouts unless the spec's
 * annotations say otherwise.
 */
static int build_listener_ingress(kaa__desired *d, const listener *l)
{
	size_t n = 0, cap = (size_t)d->replicas[1] + 1;
	ing_route *r = kaa__xcalloc(cap, sizeof(*r));
	char name[160];
	yajl_gen g;
	int rc = KAA_OK;

	snprintf(name, sizeof(name), "%s-%s", d->name, l->name);
	if (strlen(name) > 63) {
		rc = KAA_ERR_INVAL;
		goto out;
	}
	for (int i = 0; i < d->replicas[1]; i++) {
		char pod[80];
		pod_name(d, i, pod, sizeof(pod));
		if (!listener_host(l, pod, i, r[n].host, sizeof(r[n].host)) ||
		    !listener_path(l, pod, r[n].path, sizeof(r[n].path))) {
			rc = KAA_ERR_TOO_BIG;
			goto out;
		}
		if (!r[n].path[0])
			strcpy(r[n].path, "/");
		snprintf(r[n].svc, sizeof(r[n].svc), "%s", pod);
		r[n].port = "operations";
		n++;
	}
	if (l->boot_host) {
		snprintf(r[n].host, sizeof(r[n].host), "%s", l->boot_host);
		strcpy(r[n].path, "/v1/");
		snprintf(r[n].svc, sizeof(r[n].svc), "%s-bootstrap", d->name);
		r[n].port = "bootstrap";
		n++;
	}
	g = kaa__json_gen_new();
	{
		/* defaults first, the spec's annotations override them */
		yajl_val a = l->annotations;
		static const char *const dk[] = {"nginx.ingress.kubernetes.io/proxy-read-timeout",
						 "nginx.ingress.kubernetes.io/proxy-send-timeout"};
		yajl_gen_map_open(g);
		kv(g, "apiVersion", "networking.k8s.io/v1");
		kv(g, "kind", "Ingress");
		s(g, "metadata");
		yajl_gen_map_open(g);
		kv(g, "name", name);
		kv(g, "namespace", d->ns);
		s(g, "labels");
		yajl_gen_map_open(g);
		kv(g, "app.kubernetes.io/component", "operations");
		kv(g, "app.kubernetes.io/instance", d->name);
		kv(g, "app.kubernetes.io/managed-by", "kaa-operator");
		kv(g, "app.kubernetes.io/name", "kaa");
		kv(g, KAA_DESIRED_LISTENER_LABEL, "true");
		kv(g, "kaaproject.org/listener", l->name);
		yajl_gen_map_close(g);
		s(g, "annotations");
		yajl_gen_map_open(g);
		for (size_t k = 0; k < 2; k++)
			if (!get(a, dk[k], NULL, NULL, NULL))
				kv(g, dk[k], "3600");
		for (size_t k = 0; YAJL_IS_OBJECT(a) && k < a->u.object.len; k++)
			copy(g, a->u.object.keys[k], a->u.object.values[k]);
		yajl_gen_map_close(g);
		s(g, "ownerReferences");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		kv(g, "apiVersion", "kaaproject.org/v1alpha1");
		kv(g, "kind", "KaaCluster");
		kv(g, "name", d->name);
		kv(g, "uid", d->uid);
		kb(g, "controller", true);
		kb(g, "blockOwnerDeletion", true);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	s(g, "spec");
	yajl_gen_map_open(g);
	if (l->cls && l->cls[0])
		kv(g, "ingressClassName", l->cls);
	if (l->tls)
		ingress_tls(g, l, r, n);
	ingress_rules(g, r, n);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	rc = finish(d, g, "Ingress", name, "/apis/networking.k8s.io/v1", "ingresses");
out:
	free(r);
	return rc;
}

static int build_listeners(kaa__desired *d, yajl_val spec, const listener *ls, size_t n, char *err,
			   size_t errlen)
{
	bool ingress = false;
	int rc;

	for (size_t k = 0; k < n; k++)
		ingress |= ls[k].type == L_INGRESS;
	for (int i = 0; ingress && i < d->replicas[1]; i++)
		if ((rc = build_pod_service(d, spec, NULL, i)) != KAA_OK)
			goto fail;
	for (size_t k = 0; k < n; k++) {
		if (ls[k].type == L_INGRESS) {
			if ((rc = build_listener_ingress(d, &ls[k])) != KAA_OK)
				goto fail;
			continue;
		}
		if (ls[k].type == L_CLUSTER)
			continue;
		for (int i = 0; i < d->replicas[1]; i++)
			if ((rc = build_pod_service(d, spec, &ls[k], i)) != KAA_OK)
				goto fail;
	}
	return KAA_OK;
fail:
	if (rc == KAA_ERR_INVAL)
		errf(err, errlen,
		     "a listener's object name (Ingress <cluster>-<listener>, Service "
		     "<cluster>-operations-<i>-<listener>) would be longer than 63 characters; "
		     "shorten the KaaCluster or listener name");
	return rc;
}

/* ---- entry points ---- */

static int copy_field(char *dst, size_t size, const char *src, const char *what, char *err,
		      size_t errlen)
{
	if (!src || !src[0]) {
		errf(err, errlen, "%s is missing", what);
		return KAA_ERR_INVAL;
	}
	if (strlen(src) >= size) {
		errf(err, errlen, "%s is longer than %zu characters", what, size - 1);
		return KAA_ERR_INVAL;
	}
	memcpy(dst, src, strlen(src) + 1);
	return KAA_OK;
}

static int join_endpoints(yajl_val spec, char **out)
{
	yajl_val eps = get(spec, "etcd", "endpoints", NULL, NULL);
	size_t len = 0;
	char *buf;

	if (!YAJL_IS_ARRAY(eps) || !eps->u.array.len)
		return KAA_ERR_INVAL;
	for (size_t i = 0; i < eps->u.array.len; i++) {
		if (!YAJL_IS_STRING(eps->u.array.values[i]))
			return KAA_ERR_INVAL;
		len += strlen(str_of(eps->u.array.values[i])) + 1;
	}
	buf = kaa__xmalloc(len);
	buf[0] = 0;
	for (size_t i = 0; i < eps->u.array.len; i++) {
		if (i)
			strcat(buf, ",");
		strcat(buf, str_of(eps->u.array.values[i]));
	}
	*out = buf;
	return KAA_OK;
}

int kaa__desired_build(yajl_val kc, const kaa__desired_opts *o, kaa__desired *d, char *err,
		       size_t errlen)
{
	yajl_val spec, fin;
	listener ls[KAA_DESIRED_MAX_LISTENERS];
	size_t nl = 0;
	const char *repo, *tag, *cluster;
	char image[1024];
	int rc;

	if (err && errlen)
		err[0] = 0;
	if (!kc || !d)
		return KAA_ERR_INVAL;
	spec = get(kc, "spec", NULL, NULL, NULL);
	if ((rc = copy_field(d->name, sizeof(d->name), get_str(kc, "metadata", "name", NULL, NULL),
			     "metadata.name", err, errlen)) != KAA_OK ||
	    (rc = copy_field(d->ns, sizeof(d->ns), get_str(kc, "metadata", "namespace", NULL, NULL),
			     "metadata.namespace", err, errlen)) != KAA_OK ||
	    (rc = copy_field(d->uid, sizeof(d->uid), get_str(kc, "metadata", "uid", NULL, NULL),
			     "metadata.uid", err, errlen)) != KAA_OK)
		return rc;
	d->generation = get_int(kc, 0, "metadata", "generation", NULL, NULL);
	d->deleting = get_str(kc, "metadata", "deletionTimestamp", NULL, NULL) != NULL;
	fin = get(kc, "metadata", "finalizers", NULL, NULL);
	for (size_t i = 0; YAJL_IS_ARRAY(fin) && i < fin->u.array.len; i++) {
		yajl_val f = fin->u.array.values[i];
		if (strcmp(str_of(f), KAA_DESIRED_FINALIZER) == 0)
			d->has_finalizer = true;
	}
	cluster = get_str(spec, "clusterName", NULL, NULL, NULL);
	if ((rc = copy_field(d->cluster, sizeof(d->cluster),
			     cluster && cluster[0] ? cluster : d->name, "spec.clusterName", err,
			     errlen)) != KAA_OK)
		return rc;
	if (o && o->etcd_override && o->etcd_override[0]) {
		d->etcd = kaa__xstrdup(o->etcd_override);
	} else if ((rc = join_endpoints(spec, &d->etcd)) != KAA_OK) {
		errf(err, errlen, "spec.etcd.endpoints must list at least one URL");
		return rc;
	}
	if ((rc = copy_field(d->sql_secret, sizeof(d->sql_secret),
			     get_str(spec, "sql", "secretRef", "name", NULL),
			     "spec.sql.secretRef.name", err, errlen)) != KAA_OK ||
	    (rc = copy_field(d->nosql_secret, sizeof(d->nosql_secret),
			     get_str(spec, "documentStore", "secretRef", "name", NULL),
			     "spec.documentStore.secretRef.name", err, errlen)) != KAA_OK)
		return rc;
	for (int i = 0; i < 3; i++) {
		int64_t r = get_int(spec, default_replicas[i], kaa__desired_components[i],
				    "replicas", NULL, NULL);
		d->replicas[i] = (int32_t)(r < 0 ? 0 : r > 1000 ? 1000 : r);
	}
	d->drain_timeout_s = get_int(spec, 60, "operations", "drainTimeoutSeconds", NULL, NULL);
	if (d->drain_timeout_s < 0 || d->drain_timeout_s > 3600)
		d->drain_timeout_s = 60;
	d->autoscale.enabled = get_bool(spec, false, "operations", "autoscaling", "enabled", NULL);
	d->autoscale.min =
		(int32_t)get_int(spec, 1, "operations", "autoscaling", "minReplicas", NULL);
	d->autoscale.max =
		(int32_t)get_int(spec, 10, "operations", "autoscaling", "maxReplicas", NULL);
	d->autoscale.target = (int32_t)get_int(spec, 10000, "operations", "autoscaling",
					       "targetSessionsPerPod", NULL);
	d->autoscale.window_s =
		get_int(spec, -1, "operations", "autoscaling", "stabilizationWindowSeconds", NULL);
	snprintf(d->selector, sizeof(d->selector),
		 "app.kubernetes.io/component=operations,app.kubernetes.io/instance=%s,"
		 "app.kubernetes.io/name=kaa",
		 d->name);
	repo = get_str(spec, "image", "repository", NULL, NULL);
	tag = get_str(spec, "image", "tag", NULL, NULL);
	if (!repo || !repo[0])
		repo = "kaa/kaa-node";
	if (!tag || !tag[0])
		tag = o && o->default_tag && o->default_tag[0] ? o->default_tag : "latest";
	if ((size_t)snprintf(image, sizeof(image), "%s:%s", repo, tag) >= sizeof(image)) {
		errf(err, errlen, "spec.image is longer than %zu characters", sizeof(image) - 1);
		return KAA_ERR_INVAL;
	}
	if ((rc = parse_listeners(spec, ls, &nl, err, errlen)) != KAA_OK)
		return rc;
	for (size_t k = 0; k < nl; k++)
		d->ops_statefulset |= ls[k].type != L_CLUSTER;
	if ((rc = build_advertise(d, spec, ls, nl, &d->ops_script)) != KAA_OK) {
		errf(err, errlen, "spec.operations.listeners: the advertised URLs are too long");
		return rc;
	}
	if ((rc = build_config(d, spec)) != KAA_OK)
		goto fail;
	for (int i = 0; i < 3; i++)
		if ((rc = build_deployment(d, spec, i, image)) != KAA_OK ||
		    (rc = build_service(d, spec, i)) != KAA_OK ||
		    (rc = build_pdb(d, spec, i)) != KAA_OK)
			goto fail;
	if ((rc = build_ingress(d, spec, err, errlen)) != KAA_OK)
		goto fail;
	rc = build_listeners(d, spec, ls, nl, err, errlen);
fail:
	if (rc != KAA_OK && err && errlen && !err[0])
		errf(err, errlen, "building the desired objects: %s", kaa_strerror(rc));
	return rc;
}

void kaa__desired_clear(kaa__desired *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->objs[i].path);
		free(d->objs[i].json);
	}
	free(d->objs);
	free(d->etcd);
	free(d->advertise);
	free(d->ops_script);
	memset(d, 0, sizeof(*d));
}
