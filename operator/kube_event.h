/*
 * kube_event.h - the Event recorder: events.k8s.io/v1 Events about the
 * objects the operator manages, with client-side aggregation.
 *
 * The recorder sits above the Kubernetes client (it posts through a
 * kaa__kube it borrows; the client knows nothing of it) and belongs to
 * its user, the controller, which creates it with the client and frees it
 * before the client. Any thread: one mutex, held during a request so that
 * repeats in a burst patch in order.
 */
#ifndef KAA_KUBE_EVENT_H
#define KAA_KUBE_EVENT_H

#include "kube_client.h"

/* The object an Event is about (strings borrowed). */
typedef struct kaa__kube_ref {
	const char *api_version, *kind, *ns, *name, *uid;
} kaa__kube_ref;

typedef struct kaa__kube_recorder kaa__kube_recorder;

/* A recorder posting through k (borrowed: it must outlive the recorder).
 * Never NULL. */
kaa__kube_recorder *kaa__kube_recorder_new(kaa__kube *k);
/* Accepts NULL. */
void kaa__kube_recorder_free(kaa__kube_recorder *r);

/* Posts an Event (type "Normal" or "Warning"; reason CamelCase; note
 * human-readable, cut to 1 KiB; action e.g. "Reconcile"). Best effort:
 * failures are logged and returned, never fatal. Identical events within
 * 10 minutes are aggregated (series.count) instead of posted again.
 * KAA_ERR_INVAL for a bad argument; otherwise the errors of the request
 * (kube_client.h), KAA_ERR_UNAVAILABLE for a refusing status. */
int kaa__kube_event(kaa__kube_recorder *r, const kaa__kube_ref *regarding, const char *type,
		    const char *reason, const char *action, const char *note);

#endif
