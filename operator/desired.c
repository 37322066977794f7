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
		return KAA_ERR_INTERNAL;
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

static bool reserved_env(const char *name)
{
	static const char *const r[] = {"KAA_NODE_ID", "KAA_HOST",   "KAA_SQL",
					"KAA_NOSQL",   "KAA_CONFIG", NULL};
	for (size_t i = 0; r[i]; i++)
		if (strcmp(name, r[i]) == 0)
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
static void container_env(yajl_gen g, const kaa__desired *d, yajl_val spec, yajl_val cs)
{
	s(g, "env");
	yajl_gen_array_open(g);
	env_field(g, "KAA_NODE_ID", "metadata.name");
	env_field(g, "KAA_HOST", "status.podIP");
	env_secret(g, "KAA_SQL", d->sql_secret,
		   or_default(get_str(spec, "sql", "secretRef", "key", NULL), "url"));
	env_secret(g, "KAA_NOSQL", d->nosql_secret,
		   or_default(get_str(spec, "documentStore", "secretRef", "key", NULL), "url"));
	yajl_val v = get(cs, "env", NULL, NULL, NULL);
	for (size_t j = 0; YAJL_IS_ARRAY(v) && j < v->u.array.len; j++) {
		yajl_val e = v->u.array.values[j];
		const char *en = get_str(e, "name", NULL, NULL, NULL);
		if (en && !reserved_env(en))
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
	container_args(g, d, comp);
	container_env(g, d, spec, cs);
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
	yajl_gen g = kaa__json_gen_new();
	char *json = NULL, name[80];
	int rc;

	snprintf(name, sizeof(name), "%s-%s", d->name, comp);
	head(g, d, "apps/v1", "Deployment", name, comp, NULL);
	s(g, "spec");
	yajl_gen_map_open(g);
	ki(g, "replicas", d->replicas[i]);
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
	return add_obj(d, "Deployment", name, "/apis/apps/v1", "deployments", json);
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
	if ((rc = build_config(d, spec)) != KAA_OK)
		goto fail;
	for (int i = 0; i < 3; i++)
		if ((rc = build_deployment(d, spec, i, image)) != KAA_OK ||
		    (rc = build_service(d, spec, i)) != KAA_OK ||
		    (rc = build_pdb(d, spec, i)) != KAA_OK)
			goto fail;
	rc = build_ingress(d, spec, err, errlen);
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
	free(d->etcd);
	memset(d, 0, sizeof(*d));
}
