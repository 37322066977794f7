/* The objects a KaaCluster wants (desired.h) and its status
 * (cluster_status.h): names, labels, owner references, Secrets only by
 * reference, the config-hash annotation, PDB/Ingress on and off,
 * validation errors, conditions and lastTransitionTime. */
#include "cu_main.h"
#include "cluster_status.h"
#include "desired.h"
#include "base/error.h"
#include "json/json_merge.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const BASE =
	"{\"apiVersion\":\"kaaproject.org/v1alpha1\",\"kind\":\"KaaCluster\","
	"\"metadata\":{\"name\":\"demo\",\"namespace\":\"ns1\",\"uid\":\"u-123\",\"generation\":3},"
	"\"spec\":{\"image\":{\"repository\":\"reg/kaa-node\",\"tag\":\"1.2\","
	"\"pullPolicy\":\"Always\",\"pullSecrets\":[{\"name\":\"pull\"}]},"
	"\"etcd\":{\"endpoints\":[\"http://e1:2379\",\"http://e2:2379\"]},"
	"\"sql\":{\"secretRef\":{\"name\":\"sqlsec\",\"key\":\"dsn\"}},"
	"\"documentStore\":{\"secretRef\":{\"name\":\"docsec\"}},"
	"\"control\":{\"replicas\":2,\"podDisruptionBudget\":{\"minAvailable\":1}},"
	"\"operations\":{\"replicas\":3,\"drainTimeoutSeconds\":45,"
	"\"resources\":{\"limits\":{\"memory\":\"1Gi\"}},"
	"\"nodeSelector\":{\"pool\":\"edge\"},"
	"\"tolerations\":[{\"key\":\"k\",\"operator\":\"Exists\"}],"
	"\"env\":[{\"name\":\"KAA_LOG_LEVEL\",\"value\":\"debug\"},"
	"{\"name\":\"KAA_SQL\",\"value\":\"postgresql://inline\"}],"
	"\"autoscaling\":{\"enabled\":true,\"minReplicas\":2,\"maxReplicas\":7,"
	"\"targetSessionsPerPod\":500,\"stabilizationWindowSeconds\":30}},"
	"\"bootstrap\":{\"podDisruptionBudget\":{\"enabled\":false}},"
	"\"ingress\":{\"enabled\":true,\"host\":\"dev.example.com\",\"className\":\"nginx\","
	"\"tlsSecretName\":\"tls\"},"
	"\"services\":{\"type\":\"NodePort\",\"ports\":{\"operations\":9443}}}}";

static yajl_val parse(const char *json)
{
	char err[KAA_JSON_ERR_SIZE];
	yajl_val v = NULL;
	int rc = kaa__json_parse(json, strlen(json), KAA_JSON_MAX_BYTES, KAA_JSON_MAX_DEPTH, &v,
				 err, sizeof(err));
	if (rc != KAA_OK)
		fprintf(stderr, "parse: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	return v;
}

static const kaa__desired_obj *find(const kaa__desired *d, const char *kind, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->objs[i].kind, kind) == 0 && strcmp(d->objs[i].name, name) == 0)
			return &d->objs[i];
	return NULL;
}

static const char *str(yajl_val v, const char **path)
{
	yajl_val x = yajl_tree_get(v, path, yajl_t_string);
	return x ? YAJL_GET_STRING(x) : "";
}

static int build(const char *json, kaa__desired *d, char *err, size_t errlen)
{
	yajl_val kc = parse(json);
	kaa__desired_opts o = {.default_tag = "9.9", .etcd_override = NULL};
	int rc;

	memset(d, 0, sizeof(*d));
	rc = kaa__desired_build(kc, &o, d, err, errlen);
	yajl_tree_free(kc);
	return rc;
}

static void test_objects(void)
{
	kaa__desired d;
	char err[256];
	const kaa__desired_obj *o;
	yajl_val v;

	CU_ASSERT_EQUAL_FATAL(build(BASE, &d, err, sizeof(err)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(d.cluster, "demo");
	CU_ASSERT_STRING_EQUAL(d.etcd, "http://e1:2379,http://e2:2379");
	CU_ASSERT_EQUAL(d.replicas[0], 2);
	CU_ASSERT_EQUAL(d.replicas[1], 3);
	CU_ASSERT_EQUAL(d.replicas[2], 1); /* default */
	CU_ASSERT(d.autoscale.enabled);
	CU_ASSERT_EQUAL(d.autoscale.max, 7);
	CU_ASSERT_EQUAL(d.generation, 3);
	CU_ASSERT_EQUAL(strlen(d.config_hash), 64);
	CU_ASSERT_PTR_NOT_NULL(find(&d, "ConfigMap", "demo-config"));
	for (int i = 0; i < 3; i++) {
		char name[64];
		snprintf(name, sizeof(name), "demo-%s", kaa__desired_components[i]);
		CU_ASSERT_PTR_NOT_NULL(find(&d, "Deployment", name));
		CU_ASSERT_PTR_NOT_NULL(find(&d, "Service", name));
		CU_ASSERT_PTR_NOT_NULL(find(&d, "PodDisruptionBudget", name));
	}
	/* every object: labels and a controller owner reference */
	for (size_t i = 0; i < d.n; i++) {
		const char *lp[] = {"metadata", "labels", "app.kubernetes.io/managed-by", NULL};
		const char *ip[] = {"metadata", "labels", "app.kubernetes.io/instance", NULL};
		const char *np[] = {"metadata", "namespace", NULL};
		const char *orp[] = {"metadata", "ownerReferences", NULL};
		yajl_val refs;
		if (!d.objs[i].json)
			continue;
		v = parse(d.objs[i].json);
		CU_ASSERT_STRING_EQUAL(str(v, lp), "kaa-operator");
		CU_ASSERT_STRING_EQUAL(str(v, ip), "demo");
		CU_ASSERT_STRING_EQUAL(str(v, np), "ns1");
		refs = yajl_tree_get(v, orp, yajl_t_array);
		CU_ASSERT_FATAL(refs && refs->u.array.len == 1);
		{
			const char *up[] = {"uid", NULL}, *cp[] = {"controller", NULL},
				   *bp[] = {"blockOwnerDeletion", NULL}, *kp[] = {"kind", NULL};
			yajl_val r = refs->u.array.values[0];
			CU_ASSERT_STRING_EQUAL(str(r, up), "u-123");
			CU_ASSERT_STRING_EQUAL(str(r, kp), "KaaCluster");
			CU_ASSERT(YAJL_IS_TRUE(yajl_tree_get(r, cp, yajl_t_any)));
			CU_ASSERT(YAJL_IS_TRUE(yajl_tree_get(r, bp, yajl_t_any)));
		}
		/* a store URL is never inlined */
		CU_ASSERT_PTR_NULL(strstr(d.objs[i].json, "postgresql://"));
		yajl_tree_free(v);
	}
	/* the bootstrap PDB is disabled: listed for deletion */
	o = find(&d, "PodDisruptionBudget", "demo-bootstrap");
	CU_ASSERT_PTR_NULL(o->json);
	CU_ASSERT_STRING_EQUAL(
		o->path, "/apis/policy/v1/namespaces/ns1/poddisruptionbudgets/demo-bootstrap");
	o = find(&d, "PodDisruptionBudget", "demo-control");
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"minAvailable\":1"));
	o = find(&d, "PodDisruptionBudget", "demo-operations");
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"maxUnavailable\":1"));

	/* the operations Deployment */
	o = find(&d, "Deployment", "demo-operations");
	CU_ASSERT_STRING_EQUAL(o->path, "/apis/apps/v1/namespaces/ns1/deployments/demo-operations");
	v = parse(o->json);
	{
		const char *rp[] = {"spec", "replicas", NULL};
		const char *hp[] = {
			"spec", "template", "metadata", "annotations", KAA_DESIRED_CONFIG_HASH,
			NULL};
		const char *gp[] = {"spec", "template", "spec", "terminationGracePeriodSeconds",
				    NULL};
		const char *cp[] = {"spec", "template", "spec", "containers", NULL};
		const char *sp[] = {"spec", "selector", "matchLabels",
				    "app.kubernetes.io/component", NULL};
		const char *nsp[] = {"spec", "template", "spec", "nodeSelector", "pool", NULL};
		const char *psp[] = {"spec", "template", "spec", "imagePullSecrets", NULL};
		yajl_val ctr = yajl_tree_get(v, cp, yajl_t_array);
		const char *imp[] = {"image", NULL}, *ipp[] = {"imagePullPolicy", NULL};
		const char *ap[] = {"args", NULL}, *ep[] = {"env", NULL};
		const char *mp[] = {"resources", "limits", "memory", NULL};
		const char *rdp[] = {"readinessProbe", "httpGet", "path", NULL};
		const char *lvp[] = {"livenessProbe", "httpGet", "path", NULL};
		yajl_val c0, args, env;
		int n_sql = 0;
		bool log_level = false;

		CU_ASSERT_EQUAL(YAJL_GET_INTEGER(yajl_tree_get(v, rp, yajl_t_number)), 3);
		CU_ASSERT_STRING_EQUAL(str(v, hp), d.config_hash);
		CU_ASSERT_EQUAL(YAJL_GET_INTEGER(yajl_tree_get(v, gp, yajl_t_number)),
				45 + KAA_DESIRED_GRACE_EXTRA_S);
		CU_ASSERT_STRING_EQUAL(str(v, sp), "operations");
		CU_ASSERT_STRING_EQUAL(str(v, nsp), "edge");
		CU_ASSERT_PTR_NOT_NULL(yajl_tree_get(v, psp, yajl_t_array));
		CU_ASSERT_FATAL(ctr && ctr->u.array.len == 1);
		c0 = ctr->u.array.values[0];
		CU_ASSERT_STRING_EQUAL(str(c0, imp), "reg/kaa-node:1.2");
		CU_ASSERT_STRING_EQUAL(str(c0, ipp), "Always");
		CU_ASSERT_STRING_EQUAL(str(c0, mp), "1Gi");
		CU_ASSERT_STRING_EQUAL(str(c0, rdp), "/readyz");
		CU_ASSERT_STRING_EQUAL(str(c0, lvp), "/healthz");
		args = yajl_tree_get(c0, ap, yajl_t_array);
		CU_ASSERT_FATAL(args && args->u.array.len >= 8);
		CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(args->u.array.values[0]), "--services");
		CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(args->u.array.values[1]), "operations");
		CU_ASSERT_PTR_NOT_NULL(
			strstr(o->json, "\"--etcd\",\"http://e1:2379,http://e2:2379\""));
		CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"--cluster\",\"demo\""));
		CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"containerPort\":9443"));
		/* the preStop drains and waits */
		const char *psp_cmd[] = {"lifecycle", "preStop", "exec", "command", NULL};
		yajl_val cmd = yajl_tree_get(c0, psp_cmd, yajl_t_array);
		CU_ASSERT_FATAL(cmd && cmd->u.array.len == 3);
		const char *script = YAJL_IS_STRING(cmd->u.array.values[2])
					     ? cmd->u.array.values[2]->u.string
					     : "";
		CU_ASSERT_PTR_NOT_NULL(strstr(script, "kill -TERM 1"));
		env = yajl_tree_get(c0, ep, yajl_t_array);
		CU_ASSERT_FATAL(env != NULL);
		for (size_t i = 0; i < env->u.array.len; i++) {
			const char *enp[] = {"name", NULL};
			const char *skp[] = {"valueFrom", "secretKeyRef", "name", NULL};
			const char *kkp[] = {"valueFrom", "secretKeyRef", "key", NULL};
			yajl_val e = env->u.array.values[i];
			if (strcmp(str(e, enp), "KAA_SQL") == 0) {
				n_sql++;
				CU_ASSERT_STRING_EQUAL(str(e, skp), "sqlsec");
				CU_ASSERT_STRING_EQUAL(str(e, kkp), "dsn");
			}
			if (strcmp(str(e, enp), "KAA_NOSQL") == 0) {
				CU_ASSERT_STRING_EQUAL(str(e, skp), "docsec");
				CU_ASSERT_STRING_EQUAL(str(e, kkp), "url");
			}
			if (strcmp(str(e, enp), "KAA_LOG_LEVEL") == 0)
				log_level = true;
		}
		CU_ASSERT_EQUAL(n_sql, 1); /* the spec's KAA_SQL lost to the operator's */
		CU_ASSERT(log_level);
	}
	yajl_tree_free(v);

	/* the control Deployment: image default tag not needed, spread default */
	o = find(&d, "Deployment", "demo-control");
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "kubernetes.io/hostname"));
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"terminationGracePeriodSeconds\":30"));
	CU_ASSERT_PTR_NULL(strstr(o->json, "preStop")); /* only operations drains */

	o = find(&d, "Service", "demo-operations");
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"type\":\"NodePort\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"port\":9443"));

	o = find(&d, "Ingress", "demo");
	CU_ASSERT_FATAL(o && o->json);
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"ingressClassName\":\"nginx\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"secretName\":\"tls\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"host\":\"dev.example.com\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"name\":\"demo-operations\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(o->json, "\"name\":\"demo-bootstrap\""));
	CU_ASSERT_STRING_EQUAL(d.selector,
			       "app.kubernetes.io/component=operations,"
			       "app.kubernetes.io/instance=demo,app.kubernetes.io/name=kaa");
	kaa__desired_clear(&d);
}

/* Replaces the first occurrence of from with to in BASE. */
static char *variant(const char *from, const char *to)
{
	const char *p = strstr(BASE, from);
	size_t n = strlen(BASE) - strlen(from) + strlen(to) + 1;
	char *out = malloc(n);

	CU_ASSERT_FATAL(p != NULL && out != NULL);
	snprintf(out, n, "%.*s%s%s", (int)(p - BASE), BASE, to, p + strlen(from));
	return out;
}

static void test_hash_and_variants(void)
{
	kaa__desired a, b;
	char err[256];
	char *j;

	CU_ASSERT_EQUAL_FATAL(build(BASE, &a, err, sizeof(err)), KAA_OK);
	/* an env change leaves the configuration (and its hash) alone */
	j = variant("\"debug\"", "\"info\"");
	CU_ASSERT_EQUAL(build(j, &b, err, sizeof(err)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(a.config_hash, b.config_hash);
	kaa__desired_clear(&b);
	free(j);
	/* a port change changes it */
	j = variant("9443", "9444");
	CU_ASSERT_EQUAL(build(j, &b, err, sizeof(err)), KAA_OK);
	CU_ASSERT_STRING_NOT_EQUAL(a.config_hash, b.config_hash);
	kaa__desired_clear(&b);
	free(j);
	/* ingress disabled: listed for deletion; clusterName and default tag */
	j = variant("\"enabled\":true,\"host\"", "\"enabled\":false,\"host\"");
	CU_ASSERT_EQUAL(build(j, &b, err, sizeof(err)), KAA_OK);
	CU_ASSERT_PTR_NULL(find(&b, "Ingress", "demo")->json);
	kaa__desired_clear(&b);
	free(j);
	j = variant("\"tag\":\"1.2\",", "");
	CU_ASSERT_EQUAL(build(j, &b, err, sizeof(err)), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(find(&b, "Deployment", "demo-bootstrap")->json, "\"reg/kaa-node:9.9\""));
	kaa__desired_clear(&b);
	free(j);
	j = variant("\"image\":", "\"clusterName\":\"prod\",\"image\":");
	CU_ASSERT_EQUAL(build(j, &b, err, sizeof(err)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(b.cluster, "prod");
	CU_ASSERT_PTR_NOT_NULL(
		strstr(find(&b, "ConfigMap", "demo-config")->json, "cluster = prod"));
	kaa__desired_clear(&b);
	free(j);
	/* deletion and finalizer flags */
	j = variant("\"generation\":3",
		    "\"generation\":3,\"deletionTimestamp\":\"2026-01-01T00:00:00Z\","
		    "\"finalizers\":[\"x\",\"kaaproject.org/cleanup\"]");
	CU_ASSERT_EQUAL(build(j, &b, err, sizeof(err)), KAA_OK);
	CU_ASSERT(b.deleting);
	CU_ASSERT(b.has_finalizer);
	kaa__desired_clear(&b);
	free(j);
	CU_ASSERT_FALSE(a.deleting);
	CU_ASSERT_FALSE(a.has_finalizer);
	kaa__desired_clear(&a);
}

static void test_invalid(void)
{
	static const struct {
		const char *from, *to, *msg;
	} cases[] = {
		{"\"name\":\"demo\"", "\"name\":\"x\"", NULL},
		{"\"uid\":\"u-123\",", "", "metadata.uid is missing"},
		{"\"name\":\"demo\"",
		 "\"name\":\"a-very-long-kaacluster-name-that-is-over-the-limit-of-52\"",
		 "metadata.name is longer than 52 characters"},
		{"[\"http://e1:2379\",\"http://e2:2379\"]", "[]",
		 "spec.etcd.endpoints must list at least one URL"},
		{"{\"name\":\"sqlsec\",\"key\":\"dsn\"}", "{}",
		 "spec.sql.secretRef.name is missing"},
		{"\"host\":\"dev.example.com\",", "",
		 "spec.ingress.host is required when the ingress is enabled"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__desired d;
		char err[256] = "";
		char *j = variant(cases[i].from, cases[i].to);
		int rc = build(j, &d, err, sizeof(err));
		if (cases[i].msg) {
			CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
			if (strcmp(err, cases[i].msg) != 0)
				fprintf(stderr, "case %zu: %s\n", i, err);
			CU_ASSERT_STRING_EQUAL(err, cases[i].msg);
		} else {
			CU_ASSERT_EQUAL(rc, KAA_OK);
		}
		kaa__desired_clear(&d);
		free(j);
	}
	{
		kaa__desired d = {0};
		CU_ASSERT_EQUAL(kaa__desired_build(NULL, NULL, &d, NULL, 0), KAA_ERR_INVAL);
		kaa__desired_clear(&d);
		kaa__desired_clear(NULL);
	}
}

/* ---- listeners ---- */

/* A small KaaCluster with operations replicas and listeners (JSON array
 * text); malloc'd. */
static char *with_listeners(int replicas, const char *extra_ops, const char *listeners)
{
	char *j = NULL;
	int n = asprintf(
		&j,
		"{\"metadata\":{\"name\":\"demo\",\"namespace\":\"ns1\",\"uid\":\"u-123\"},"
		"\"spec\":{\"etcd\":{\"endpoints\":[\"http://e1:2379\"]},"
		"\"sql\":{\"secretRef\":{\"name\":\"sqlsec\"}},"
		"\"documentStore\":{\"secretRef\":{\"name\":\"docsec\"}},"
		"\"operations\":{\"replicas\":%d%s,\"listeners\":%s}}}",
		replicas, extra_ops, listeners);
	CU_ASSERT_FATAL(n > 0);
	return j;
}

static yajl_val at(yajl_val v, const char *a, const char *b, const char *c, const char *e)
{
	const char *p[] = {a, b, c, e, NULL};
	return yajl_tree_get(v, p, yajl_t_any);
}

static const char *sat(yajl_val v, const char *a, const char *b, const char *c, const char *e)
{
	yajl_val x = at(v, a, b, c, e);
	return YAJL_IS_STRING(x) ? YAJL_GET_STRING(x) : "";
}

static yajl_val idx(yajl_val arr, size_t i)
{
	CU_ASSERT_FATAL(YAJL_IS_ARRAY(arr) && i < arr->u.array.len);
	return arr->u.array.values[i];
}

/* The kaa-node container's env, as name -> index (-1: absent) and value. */
static int env_at(yajl_val sts, const char *name, const char **value)
{
	yajl_val env = at(idx(at(sts, "spec", "template", "spec", "containers"), 0), "env", NULL,
			  NULL, NULL);
	for (size_t i = 0; YAJL_IS_ARRAY(env) && i < env->u.array.len; i++)
		if (!strcmp(sat(env->u.array.values[i], "name", NULL, NULL, NULL), name)) {
			if (value)
				*value = sat(env->u.array.values[i], "value", NULL, NULL, NULL);
			return (int)i;
		}
	return -1;
}

static void test_listener_ingress_path(void)
{
	kaa__desired d;
	char err[256] = "", name[64];
	char *j = with_listeners(
		3, "",
		"[{\"name\":\"edge\",\"type\":\"ingress\","
		"\"host\":\"devices.example.com\",\"pathPrefix\":\"/ops/{pod}\","
		"\"tls\":{\"secretName\":\"edge-tls\"},\"ingressClassName\":\"nginx\"}]");
	const kaa__desired_obj *o;
	const char *adv = NULL;
	yajl_val v, rules, paths;

	CU_ASSERT_EQUAL_FATAL(build(j, &d, err, sizeof(err)), KAA_OK);
	CU_ASSERT(d.ops_statefulset);
	/* operations is a StatefulSet, the Deployment of the same name goes */
	CU_ASSERT_PTR_NULL(find(&d, "Deployment", "demo-operations")->json);
	CU_ASSERT_PTR_NOT_NULL(find(&d, "Deployment", "demo-control")->json);
	o = find(&d, "StatefulSet", "demo-operations");
	CU_ASSERT_FATAL(o && o->json);
	CU_ASSERT_STRING_EQUAL(o->path,
			       "/apis/apps/v1/namespaces/ns1/statefulsets/demo-operations");
	v = parse(o->json);
	CU_ASSERT_STRING_EQUAL(sat(v, "spec", "serviceName", NULL, NULL), "demo-operations");
	CU_ASSERT_STRING_EQUAL(sat(v, "spec", "podManagementPolicy", NULL, NULL), "Parallel");
	/* POD_NAME comes before KAA_ADVERTISE, which the kubelet expands with it */
	CU_ASSERT(env_at(v, "POD_NAME", NULL) >= 0);
	CU_ASSERT(env_at(v, "POD_NAME", NULL) < env_at(v, "KAA_ADVERTISE", &adv));
	CU_ASSERT_STRING_EQUAL(adv, "wss://devices.example.com:443/ops/$(POD_NAME)/");
	CU_ASSERT_PTR_NULL(at(idx(at(v, "spec", "template", "spec", "containers"), 0), "command",
			      NULL, NULL, NULL));
	yajl_tree_free(v);
	/* one Service per pod, selecting that pod */
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "demo-operations-%d", i);
		o = find(&d, "Service", name);
		CU_ASSERT_FATAL(o && o->json);
		v = parse(o->json);
		CU_ASSERT_STRING_EQUAL(
			sat(v, "spec", "selector", "statefulset.kubernetes.io/pod-name", NULL),
			name);
		CU_ASSERT_STRING_EQUAL(sat(v, "spec", "type", NULL, NULL), "ClusterIP");
		CU_ASSERT_STRING_EQUAL(
			sat(v, "metadata", "labels", KAA_DESIRED_LISTENER_LABEL, NULL), "true");
		CU_ASSERT_STRING_EQUAL(sat(idx(at(v, "metadata", "ownerReferences", NULL, NULL), 0),
					   "uid", NULL, NULL, NULL),
				       "u-123");
		yajl_tree_free(v);
	}
	CU_ASSERT_PTR_NULL(find(&d, "Service", "demo-operations-3"));
	/* the Ingress: a path per pod on the one host, /v1/ to bootstrap */
	o = find(&d, "Ingress", "demo-edge");
	CU_ASSERT_FATAL(o && o->json);
	CU_ASSERT_STRING_EQUAL(o->path,
			       "/apis/networking.k8s.io/v1/namespaces/ns1/ingresses/demo-edge");
	v = parse(o->json);
	CU_ASSERT_STRING_EQUAL(sat(v, "spec", "ingressClassName", NULL, NULL), "nginx");
	CU_ASSERT_STRING_EQUAL(sat(v, "metadata", "annotations",
				   "nginx.ingress.kubernetes.io/proxy-read-timeout", NULL),
			       "3600");
	CU_ASSERT_STRING_EQUAL(sat(v, "metadata", "labels", "kaaproject.org/listener", NULL),
			       "edge");
	CU_ASSERT_STRING_EQUAL(
		sat(idx(at(v, "spec", "tls", NULL, NULL), 0), "secretName", NULL, NULL, NULL),
		"edge-tls");
	rules = at(v, "spec", "rules", NULL, NULL);
	CU_ASSERT_EQUAL(rules->u.array.len, 1);
	CU_ASSERT_STRING_EQUAL(sat(idx(rules, 0), "host", NULL, NULL, NULL), "devices.example.com");
	paths = at(idx(rules, 0), "http", "paths", NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(paths->u.array.len, 4);
	for (int i = 0; i < 3; i++) {
		char want[64];
		snprintf(want, sizeof(want), "/ops/demo-operations-%d", i);
		CU_ASSERT_STRING_EQUAL(sat(idx(paths, (size_t)i), "path", NULL, NULL, NULL), want);
		CU_ASSERT_STRING_EQUAL(sat(idx(paths, (size_t)i), "pathType", NULL, NULL, NULL),
				       "Prefix");
		CU_ASSERT_STRING_EQUAL(
			sat(idx(paths, (size_t)i), "backend", "service", "name", NULL), want + 5);
		CU_ASSERT_STRING_EQUAL(
			sat(at(idx(paths, (size_t)i), "backend", "service", "port", NULL), "name",
			    NULL, NULL, NULL),
			"operations");
	}
	CU_ASSERT_STRING_EQUAL(sat(idx(paths, 3), "path", NULL, NULL, NULL), "/v1/");
	CU_ASSERT_STRING_EQUAL(sat(idx(paths, 3), "backend", "service", "name", NULL),
			       "demo-bootstrap");
	yajl_tree_free(v);
	kaa__desired_clear(&d);
	free(j);

	/* no listeners: a Deployment as before, no StatefulSet, no KAA_ADVERTISE */
	j = with_listeners(2, "", "[]");
	CU_ASSERT_EQUAL_FATAL(build(j, &d, err, sizeof(err)), KAA_OK);
	CU_ASSERT_FALSE(d.ops_statefulset);
	CU_ASSERT_PTR_NULL(find(&d, "StatefulSet", "demo-operations")->json);
	o = find(&d, "Deployment", "demo-operations");
	CU_ASSERT_FATAL(o && o->json);
	CU_ASSERT_PTR_NULL(strstr(o->json, "KAA_ADVERTISE"));
	CU_ASSERT_PTR_NULL(find(&d, "Service", "demo-operations-0"));
	kaa__desired_clear(&d);
	free(j);
}

static void test_listener_hosts(void)
{
	kaa__desired d;
	char err[256] = "";
	/* a host per pod, bootstrap on its own host, no TLS; and a cluster listener */
	char *j = with_listeners(
		2, "",
		"[{\"name\":\"pods\",\"type\":\"ingress\","
		"\"host\":\"{pod}.d.example.com\",\"bootstrapHost\":\"boot.example.com\","
		"\"advertisedHosts\":[{\"pod\":1,\"host\":\"special.example.com\"}]},"
		"{\"name\":\"in\",\"type\":\"cluster\"}]");
	const kaa__desired_obj *o;
	const char *adv = NULL, *script;
	yajl_val v, rules, cmd;

	CU_ASSERT_EQUAL_FATAL(build(j, &d, err, sizeof(err)), KAA_OK);
	o = find(&d, "StatefulSet", "demo-operations");
	CU_ASSERT_FATAL(o && o->json);
	v = parse(o->json);
	env_at(v, "KAA_ADVERTISE", &adv);
	CU_ASSERT_STRING_EQUAL(adv, "ws://$(POD_NAME).d.example.com:80/,ws://$(POD_IP):9080/");
	CU_ASSERT(env_at(v, "POD_IP", NULL) < env_at(v, "KAA_ADVERTISE", NULL));
	/* pod 1's override: the wrapper sets its own URLs and execs kaa-node */
	cmd = at(idx(at(v, "spec", "template", "spec", "containers"), 0), "command", NULL, NULL,
		 NULL);
	CU_ASSERT_FATAL(YAJL_IS_ARRAY(cmd) && cmd->u.array.len == 4);
	CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(idx(cmd, 0)), "/bin/sh");
	CU_ASSERT_STRING_EQUAL(YAJL_GET_STRING(idx(cmd, 3)), "kaa-node");
	script = YAJL_GET_STRING(idx(cmd, 2));
	CU_ASSERT_STRING_EQUAL(script,
			       "case \"$POD_NAME\" in\n"
			       "demo-operations-1) KAA_ADVERTISE='ws://special.example.com:80/,"
			       "ws://$(POD_IP):9080/' ;;\n"
			       "esac\nexport KAA_ADVERTISE\nexec kaa-node \"$@\"\n");
	yajl_tree_free(v);
	o = find(&d, "Ingress", "demo-pods");
	CU_ASSERT_FATAL(o && o->json);
	v = parse(o->json);
	CU_ASSERT_PTR_NULL(at(v, "spec", "tls", NULL, NULL));
	rules = at(v, "spec", "rules", NULL, NULL);
	CU_ASSERT_EQUAL_FATAL(rules->u.array.len, 3);
	CU_ASSERT_STRING_EQUAL(sat(idx(rules, 0), "host", NULL, NULL, NULL),
			       "demo-operations-0.d.example.com");
	CU_ASSERT_STRING_EQUAL(sat(idx(rules, 1), "host", NULL, NULL, NULL), "special.example.com");
	CU_ASSERT_STRING_EQUAL(sat(idx(rules, 2), "host", NULL, NULL, NULL), "boot.example.com");
	CU_ASSERT_STRING_EQUAL(sat(idx(at(idx(rules, 1), "http", "paths", NULL, NULL), 0), "path",
				   NULL, NULL, NULL),
			       "/");
	CU_ASSERT_STRING_EQUAL(sat(idx(at(idx(rules, 1), "http", "paths", NULL, NULL), 0),
				   "backend", "service", "name", NULL),
			       "demo-operations-1");
	yajl_tree_free(v);
	kaa__desired_clear(&d);
	free(j);
}

static void test_listener_services(void)
{
	kaa__desired d;
	char err[256] = "";
	char *j = with_listeners(
		2, ",\"autoscaling\":{\"enabled\":true,\"maxReplicas\":3}",
		"[{\"name\":\"lb\",\"type\":\"loadbalancer\",\"host\":\"{pod}.lb.example.com\","
		"\"port\":443,\"annotations\":{\"external-dns.alpha.kubernetes.io/hostname\":"
		"\"{pod}.lb.example.com\"}},"
		"{\"name\":\"np\",\"type\":\"nodeport\",\"nodePortBase\":31000}]");
	const kaa__desired_obj *o;
	const char *adv = NULL, *script;
	yajl_val v;

	CU_ASSERT_EQUAL_FATAL(build(j, &d, err, sizeof(err)), KAA_OK);
	o = find(&d, "Service", "demo-operations-1-lb");
	CU_ASSERT_FATAL(o && o->json);
	v = parse(o->json);
	CU_ASSERT_STRING_EQUAL(sat(v, "spec", "type", NULL, NULL), "LoadBalancer");
	CU_ASSERT_STRING_EQUAL(
		sat(v, "spec", "selector", "statefulset.kubernetes.io/pod-name", NULL),
		"demo-operations-1");
	CU_ASSERT_EQUAL(YAJL_GET_INTEGER(at(idx(at(v, "spec", "ports", NULL, NULL), 0), "port",
					    NULL, NULL, NULL)),
			443);
	CU_ASSERT_STRING_EQUAL(sat(v, "metadata", "annotations",
				   "external-dns.alpha.kubernetes.io/hostname", NULL),
			       "demo-operations-1.lb.example.com");
	CU_ASSERT_STRING_EQUAL(sat(v, "metadata", "labels", "kaaproject.org/listener", NULL), "lb");
	yajl_tree_free(v);
	o = find(&d, "Service", "demo-operations-1-np");
	CU_ASSERT_FATAL(o && o->json);
	v = parse(o->json);
	CU_ASSERT_STRING_EQUAL(sat(v, "spec", "type", NULL, NULL), "NodePort");
	CU_ASSERT_EQUAL(YAJL_GET_INTEGER(at(idx(at(v, "spec", "ports", NULL, NULL), 0), "nodePort",
					    NULL, NULL, NULL)),
			31001);
	yajl_tree_free(v);
	/* no per-pod ClusterIP Services and no Ingress without an ingress listener */
	CU_ASSERT_PTR_NULL(find(&d, "Service", "demo-operations-0"));
	CU_ASSERT_PTR_NULL(find(&d, "Ingress", "demo-lb"));
	o = find(&d, "StatefulSet", "demo-operations");
	v = parse(o->json);
	env_at(v, "KAA_ADVERTISE", &adv);
	CU_ASSERT_STRING_EQUAL(adv, "ws://$(POD_NAME).lb.example.com:443/,ws://$(HOST_IP):31000/");
	CU_ASSERT(env_at(v, "HOST_IP", NULL) < env_at(v, "KAA_ADVERTISE", NULL));
	/* the NodePorts differ per pod: arms up to the autoscaler's maximum,
	 * so scaling does not change the pod template */
	script = YAJL_GET_STRING(idx(at(idx(at(v, "spec", "template", "spec", "containers"), 0),
					"command", NULL, NULL, NULL),
				     2));
	CU_ASSERT_PTR_NULL(strstr(script, "demo-operations-0)"));
	CU_ASSERT_PTR_NOT_NULL(strstr(script, "demo-operations-1) KAA_ADVERTISE='ws://"
					      "demo-operations-1.lb.example.com:443/,"
					      "ws://$(HOST_IP):31001/' ;;\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(script, "demo-operations-2) "));
	CU_ASSERT_PTR_NULL(strstr(script, "demo-operations-3)"));
	yajl_tree_free(v);
	kaa__desired_clear(&d);
	free(j);
}

static void test_listener_invalid(void)
{
	static const struct {
		const char *listeners, *msg;
	} cases[] = {
		{"[{\"name\":\"a\",\"type\":\"ingress\"}]",
		 "listener a: an ingress listener needs a host"},
		{"[{\"name\":\"a\",\"type\":\"ingress\",\"host\":\"x.example.com\"}]",
		 "listener a: host or pathPrefix must contain {pod} (each pod needs its own address)"},
		{"[{\"name\":\"a\",\"type\":\"ingres\"}]",
		 "listener a: type must be cluster, ingress, loadbalancer or nodeport"},
		{"[{\"name\":\"A\",\"type\":\"cluster\"}]",
		 "spec.operations.listeners[].name must be a DNS label of at most 20 characters"},
		{"[{\"name\":\"a\",\"type\":\"cluster\"},{\"name\":\"a\",\"type\":\"cluster\"}]",
		 "listener name a is used twice"},
		{"[{\"name\":\"a\",\"type\":\"nodeport\"}]",
		 "listener a: a nodeport listener needs nodePortBase in 30000..32767"},
		{"[{\"name\":\"a\",\"type\":\"loadbalancer\",\"tls\":{\"secretName\":\"s\"}}]",
		 "listener a: tls, pathPrefix and ingressClassName are for type ingress"},
		{"[{\"name\":\"a\",\"type\":\"ingress\",\"host\":\"x\",\"pathPrefix\":\"/v1/{pod}\"}]",
		 "listener a: pathPrefix must not start with /v1 (the bootstrap path)"},
		{"[{\"name\":\"a\",\"type\":\"ingress\",\"host\":\"{pod}.x'y\"}]",
		 "listener a: host, bootstrapHost or pathPrefix has a character outside [a-z0-9.-] "
		 "(paths: also A-Z _ /, starting with / and not ending with /)"},
		{"[{\"name\":\"a\",\"type\":\"ingress\",\"host\":\"x\",\"pathPrefix\":\"/o/{pod}/\"}]",
		 "listener a: host, bootstrapHost or pathPrefix has a character outside [a-z0-9.-] "
		 "(paths: also A-Z _ /, starting with / and not ending with /)"},
		{"[{\"name\":\"a\",\"type\":\"loadbalancer\",\"advertisedHosts\":[{\"host\":\"h\"}]}]",
		 "listener a: advertisedHosts[0] needs pod (0..999), an optional host ([a-z0-9.-], no "
		 "{pod}) and an optional port (1..65535)"},
		{"[{\"name\":\"a-very-long-name-x\",\"type\":\"loadbalancer\",\"host\":\"{pod}.x\"}]",
		 NULL}, /* fits: demo-operations-0-a-very-long-name-x */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__desired d;
		char err[256] = "";
		char *j = with_listeners(2, "", cases[i].listeners);
		int rc = build(j, &d, err, sizeof(err));
		if (cases[i].msg) {
			CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
			if (strcmp(err, cases[i].msg) != 0)
				fprintf(stderr, "listener case %zu: %s\n", i, err);
			CU_ASSERT_STRING_EQUAL(err, cases[i].msg);
		} else {
			if (rc != KAA_OK)
				fprintf(stderr, "listener case %zu: %s\n", i, err);
			CU_ASSERT_EQUAL(rc, KAA_OK);
		}
		kaa__desired_clear(&d);
		free(j);
	}
	{
		/* a Service name over 63 characters */
		kaa__desired d;
		char err[256] = "";
		char *j = with_listeners(
			1, "",
			"[{\"name\":\"abcdefghijklmnopqrst\",\"type\":\"nodeport\",\"nodePortBase\":30000}]");
		char *k = NULL;
		CU_ASSERT_FATAL(asprintf(&k, "%s", j) > 0);
		free(j);
		j = NULL;
		{
			const char *from = "\"name\":\"demo\"";
			char *p = strstr(k, from);
			CU_ASSERT_FATAL(p != NULL);
			CU_ASSERT_FATAL(asprintf(&j, "%.*s\"name\":\"%s\"%s", (int)(p - k), k,
						 "a-kaacluster-with-a-rather-long-name-of-40",
						 p + strlen(from)) > 0);
		}
		CU_ASSERT_EQUAL(build(j, &d, err, sizeof(err)), KAA_ERR_INVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(err, "longer than 63 characters"));
		kaa__desired_clear(&d);
		free(j);
		free(k);
	}
}

static const char *cond(yajl_val st, const char *type, const char *field)
{
	const char *cp[] = {"status", "conditions", NULL};
	yajl_val arr = yajl_tree_get(st, cp, yajl_t_array);
	for (size_t i = 0; arr && i < arr->u.array.len; i++) {
		const char *tp[] = {"type", NULL}, *fp[] = {field, NULL};
		if (strcmp(str(arr->u.array.values[i], tp), type) == 0)
			return str(arr->u.array.values[i], fp);
	}
	return "";
}

static void test_status(void)
{
	kaa__status_in in = {.ns = "ns1", .name = "demo", .generation = 4, .selector = "a=b"};
	kaa__condition c[3];
	char *json = NULL, *json2 = NULL;
	yajl_val v, old, v2;
	const char *sp[] = {"status", NULL};
	const char *gp[] = {"status", "observedGeneration", NULL};
	const char *rp[] = {"status", "operations", "readyReplicas", NULL};

	for (int i = 0; i < 3; i++)
		in.comp[i] = (kaa__status_comp){true, 2, 2, 2, 2, false};
	in.etcd_known = true;
	in.devices = 17;
	in.leader = "node-a";
	kaa__status_conditions(&in, c);
	CU_ASSERT_STRING_EQUAL(c[0].status, "True");
	CU_ASSERT_STRING_EQUAL(c[1].status, "False");
	CU_ASSERT_STRING_EQUAL(c[2].status, "False");
	CU_ASSERT_EQUAL(kaa__status_json(&in, c, NULL, "2026-01-01T00:00:00Z", &json), KAA_OK);
	v = parse(json);
	CU_ASSERT_EQUAL(YAJL_GET_INTEGER(yajl_tree_get(v, gp, yajl_t_number)), 4);
	CU_ASSERT_EQUAL(YAJL_GET_INTEGER(yajl_tree_get(v, rp, yajl_t_number)), 2);
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"connectedDevices\":17"));
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"controlLeader\":\"node-a\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"selector\":\"a=b\""));
	CU_ASSERT_STRING_EQUAL(cond(v, "Ready", "lastTransitionTime"), "2026-01-01T00:00:00Z");

	/* a missing Secret: Degraded flips (new time), Progressing keeps its time */
	in.problem_reason = "SecretNotFound";
	in.problem_message = "Secret ns1/x (spec.sql.secretRef) not found";
	in.comp[1].ready = 1;
	kaa__status_conditions(&in, c);
	old = yajl_tree_get(v, sp, yajl_t_object);
	CU_ASSERT_EQUAL(kaa__status_json(&in, c, old, "2026-02-02T00:00:00Z", &json2), KAA_OK);
	v2 = parse(json2);
	CU_ASSERT_STRING_EQUAL(cond(v2, "Degraded", "status"), "True");
	CU_ASSERT_STRING_EQUAL(cond(v2, "Degraded", "reason"), "SecretNotFound");
	CU_ASSERT_STRING_EQUAL(cond(v2, "Degraded", "lastTransitionTime"), "2026-02-02T00:00:00Z");
	CU_ASSERT_STRING_EQUAL(cond(v2, "Ready", "status"), "False");
	CU_ASSERT_STRING_EQUAL(cond(v2, "Progressing", "lastTransitionTime"),
			       "2026-01-01T00:00:00Z");
	CU_ASSERT_PTR_NOT_NULL(strstr(cond(v2, "Degraded", "message"), "ns1/x"));
	yajl_tree_free(v2);
	free(json2);

	/* a rollout under way: Progressing */
	in.problem_reason = NULL;
	in.comp[0].updated = 1;
	in.etcd_known = false;
	kaa__status_conditions(&in, c);
	CU_ASSERT_STRING_EQUAL(c[1].status, "True");
	CU_ASSERT_STRING_EQUAL(c[0].reason, "ComponentsNotReady");
	CU_ASSERT_PTR_NOT_NULL(strstr(c[0].message, "operations 1/2 ready"));
	CU_ASSERT_EQUAL(kaa__status_json(&in, c, old, "2026-03-03T00:00:00Z", &json2), KAA_OK);
	CU_ASSERT_PTR_NULL(strstr(json2, "connectedDevices"));
	free(json2);
	CU_ASSERT_EQUAL(kaa__status_json(NULL, c, NULL, "t", &json2), KAA_ERR_INVAL);
	yajl_tree_free(v);
	free(json);
}

static const kaa__cu_test tests[] = {
	{"objects, labels, owner references, secrets by reference", test_objects},
	{"config hash and spec variants", test_hash_and_variants},
	{"invalid specs give clear errors", test_invalid},
	{"status, conditions and lastTransitionTime", test_status},
	{"ingress listener with per-pod paths: StatefulSet, pod Services, Ingress",
	 test_listener_ingress_path},
	{"ingress listener with per-pod hosts, overrides, cluster listener", test_listener_hosts},
	{"loadbalancer and nodeport listeners", test_listener_services},
	{"invalid listeners give clear errors", test_listener_invalid},
};

int main(void)
{
	return kaa__cu_run("desired", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
