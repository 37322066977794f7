/*
 * cluster_status.h - the KaaCluster status the controller writes through
 * the status subresource: observedGeneration, per-component replica
 * counts, replicas + selector for the scale subresource, connectedDevices
 * and controlLeader from etcd, and the conditions Ready, Progressing and
 * Degraded. A condition's lastTransitionTime is kept from the previous
 * status unless its status value changes.
 *
 * Pure functions; safe from any thread.
 */
#ifndef KAA_CLUSTER_STATUS_H
#define KAA_CLUSTER_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

typedef struct kaa__status_comp {
	bool found;      /* the Deployment exists */
	int32_t desired; /* spec replicas */
	int32_t replicas, ready, updated;
	bool stale; /* the Deployment's observedGeneration is behind its generation */
} kaa__status_comp;

typedef struct kaa__status_in {
	const char *ns, *name;
	int64_t generation;
	kaa__status_comp comp[3]; /* control, operations, bootstrap */
	const char *selector;
	bool etcd_known; /* devices and leader were read */
	int64_t devices;
	const char *leader; /* NULL or "": none */
	/* something the operator cannot fix (Degraded=True), or reason NULL */
	const char *problem_reason;
	const char *problem_message;
	const char *progress_note; /* e.g. a scale-down waiting for drain; may be NULL */
} kaa__status_in;

typedef struct kaa__condition {
	const char *type;   /* static */
	const char *status; /* static: "True" / "False" */
	const char *reason; /* static or from the input */
	char message[512];
} kaa__condition;

/* Computes Ready, Progressing, Degraded (in that order) from in. */
void kaa__status_conditions(const kaa__status_in *in, kaa__condition out[3]);

/*
 * The body for server-side apply of .../kaaclusters/<name>/status:
 * {"apiVersion","kind","metadata":{name,namespace},"status":{...}}.
 * old_status: the object's current .status (may be NULL) for the
 * lastTransitionTime rule; now: RFC 3339 UTC time. *json malloc'd.
 * Errors: KAA_ERR_INVAL (NULL arguments), KAA_ERR_TOO_BIG (over the
 * size limit of kaa__json_gen_take).
 */
int kaa__status_json(const kaa__status_in *in, const kaa__condition conds[3], yajl_val old_status,
		     const char *now, char **json);

/* RFC 3339 UTC "2026-11-27T22:39:24Z" of the wall clock into buf[21+]. */
void kaa__status_now(char *buf, size_t size);

#endif
