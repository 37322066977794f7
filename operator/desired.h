/*
 * desired.h - the objects a KaaCluster wants, built as JSON ready for
 * server-side apply: ConfigMap N-config (kaa-node's config file), the
 * Deployments and Services N-control, N-operations, N-bootstrap, a
 * PodDisruptionBudget per component unless disabled, and the Ingress N when
 * enabled. Objects the spec no longer wants (a disabled PDB or Ingress) are
 * listed with json == NULL so the controller deletes them.
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

#define KAA_DESIRED_MAX_OBJS 16
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
	kaa__desired_obj objs[KAA_DESIRED_MAX_OBJS];
	size_t n;
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
 * too long, no etcd endpoints, no Secret name), KAA_ERR_TOO_BIG (an object
 * over its size limit).
 */
int kaa__desired_build(yajl_val kc, const kaa__desired_opts *o, kaa__desired *out, char *err,
		       size_t errlen);
void kaa__desired_clear(kaa__desired *d); /* accepts NULL */

#endif
