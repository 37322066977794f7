/*
 * desired.h - the objects a KaaCluster wants, built as JSON ready for
 * server-side apply: ConfigMap N-config (kaa-node's config file), the
 * Deployments and Services N-control, N-operations, N-bootstrap, a
 * PodDisruptionBudget per component unless disabled, and the Ingress N when
 * enabled. Objects the spec no longer wants (a disabled PDB or Ingress) are
 * listed with json == NULL so the controller deletes them.
 *
 * Listeners (spec.operations.listeners): any listener other than type
 * cluster makes operations a StatefulSet N-operations (pods
 * N-operations-<i>, podManagementPolicy Parallel; the Deployment of the
 * same name is listed for deletion, and the other way round) and adds: for
 * ingress listeners one ClusterIP Service per pod named after the pod and
 * an Ingress N-<listener> (a rule per pod: its host and path prefix, plus
 * /v1/ on the bootstrap host to N-bootstrap); for loadbalancer and
 * nodeport listeners a Service <pod>-<listener> per pod. Per-pod Services
 * select statefulset.kubernetes.io/pod-name. Listener objects carry the
 * label KAA_DESIRED_LISTENER_LABEL=true; the controller deletes labelled
 * objects that are not in the set (a listener removed, fewer pods). The
 * operations pods get env POD_NAME, POD_IP, HOST_IP (downward API) and then
 * KAA_ADVERTISE, the advertised URLs in listener order with $(POD_NAME)
 * etc. for the kubelet to expand; pods whose URLs are not that template
 * (advertisedHosts overrides, NodePorts) get theirs from a /bin/sh wrapper
 * (d->ops_script) that picks by $POD_NAME and execs kaa-node.
 *
 * Every object carries the labels app.kubernetes.io/{name=kaa,instance=N,
 * component=...,managed-by=kaa-operator} and an owner reference to the
 * KaaCluster (controller and blockOwnerDeletion true). Store URLs are never
 * inlined: KAA_SQL and KAA_NOSQL come from the spec's Secrets through
 * secretKeyRef. The pod templates carry the annotation
 * kaaproject.org/config-hash (SHA-256 of the ConfigMap data) so a
 * configuration change rolls the pods.
 *
 * Drain on removal: kaa-node drains itself on SIGTERM (stops admitting,
 * redirects its devices, exits when empty or at its drain deadline), so the
 * operations pods get terminationGracePeriodSeconds =
 * operations.drainTimeoutSeconds + KAA_DESIRED_GRACE_EXTRA_S and a preStop
 * hook that sends kaa-node (PID 1) SIGTERM, which starts its drain, and waits
 * until it exits: the pod is removed only once its devices have moved.
 *
 * Pure functions; safe from any thread.
 */
#ifndef KAA_DESIRED_H
#define KAA_DESIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

/* Objects are few without listeners; per-pod listeners add one Service per
 * operations pod and listener, bounded by these. */
#define KAA_DESIRED_MAX_OBJS 20000
#define KAA_DESIRED_MAX_LISTENERS 8
/* Objects created for spec.operations.listeners carry this label (value
 * "true"), so the controller can find and delete the ones no longer wanted. */
#define KAA_DESIRED_LISTENER_LABEL "kaaproject.org/listeners"
#define KAA_DESIRED_GRACE_EXTRA_S 15
#define KAA_DESIRED_CONFIG_HASH "kaaproject.org/config-hash"
#define KAA_DESIRED_CONFIG_FILE "/etc/kaa/kaa.conf"
/* Longest KaaCluster name: N-operations must be a DNS-1035 label (63). */
#define KAA_DESIRED_NAME_MAX 52

typedef struct kaa__desired_opts {
	const char *default_tag;   /* image tag when spec.image.tag is empty; NULL: "latest" */
	const char *etcd_override; /* comma-separated endpoints replacing spec.etcd, or NULL */
} kaa__desired_opts;

typedef struct kaa__desired_obj {
	const char *kind; /* static: "ConfigMap", "Deployment", ... */
	char name[64];
	char *path; /* the object's API path (for apply, get and delete) */
	char *json; /* the object to apply; NULL: must not exist */
} kaa__desired_obj;

typedef struct kaa__desired_autoscale {
	bool enabled;
	int32_t min, max, target;
	int64_t window_s; /* stabilizationWindowSeconds; -1: absent (use the operator default) */
} kaa__desired_autoscale;

typedef struct kaa__desired {
	kaa__desired_obj *objs; /* malloc'd, n of them */
	size_t n, cap;
	char ns[64];
	char name[KAA_DESIRED_NAME_MAX + 1];
	char uid[64];
	int64_t generation;
	char cluster[64];     /* spec.clusterName or metadata.name */
	char *etcd;           /* comma-separated endpoints (override or spec) */
	char sql_secret[254]; /* Secret names the pods read */
	char nosql_secret[254];
	char config_hash[65];
	int32_t replicas[3];     /* control, operations, bootstrap */
	char selector[256];      /* operations pods, for the scale subresource */
	int64_t drain_timeout_s; /* operations.drainTimeoutSeconds */
	kaa__desired_autoscale autoscale;
	/* operations runs as a StatefulSet (stable pod names N-operations-<i>)
	 * because a listener needs per-pod addresses; else as a Deployment */
	bool ops_statefulset;
	char *advertise;    /* KAA_ADVERTISE of the operations pod template, or NULL */
	char *ops_script;   /* /bin/sh wrapper setting per-pod KAA_ADVERTISE, or NULL */
	bool deleting;      /* metadata.deletionTimestamp set */
	bool has_finalizer; /* metadata.finalizers holds KAA_DESIRED_FINALIZER */
} kaa__desired;

#define KAA_DESIRED_FINALIZER "kaaproject.org/cleanup"

/* Component index names, in kaa__desired.replicas order. */
extern const char *const kaa__desired_components[3];

/*
 * Builds everything from a KaaCluster object (its parsed JSON). out must
 * be zeroed; release it with kaa__desired_clear in every case.
 * Errors: KAA_ERR_INVAL (err says what: missing name/namespace/uid, name
 * too long, no etcd endpoints, no Secret name, an invalid listener or a
 * listener object name over 63 characters), KAA_ERR_TOO_BIG (an object
 * over its size limit, advertised URLs too long, too many objects).
 */
int kaa__desired_build(yajl_val kc, const kaa__desired_opts *o, kaa__desired *out, char *err,
		       size_t errlen);
void kaa__desired_clear(kaa__desired *d); /* accepts NULL */

#endif
