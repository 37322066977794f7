/*
 * controller.h - the KaaCluster controller: informers on KaaCluster and
 * the kinds it owns, a rate-limited work queue with per-key exponential
 * backoff, reconcile (server-side apply of ConfigMap, Deployments
 * N-control/N-operations/N-bootstrap, Services, PodDisruptionBudgets,
 * Ingress), status through the status subresource, the finalizer that
 * removes the cluster's etcd keys, and operations autoscaling from etcd.
 *
 * Threads: new/free on the main thread. start/stop may be called from the
 * leader-election thread (start when leadership is gained, stop when lost);
 * ready and metrics from any thread.
 */
#ifndef KAA_CONTROLLER_H
#define KAA_CONTROLLER_H

#include <stdbool.h>

#include "kube_client.h"
#include "base/metrics.h"

typedef struct kaa__controller_opts {
	const char *const *namespaces; /* NULL-terminated; NULL or empty: all */
	int workers;                   /* default 2 */
	int resync_ms;                 /* full resync period, default 300000 */
	int autoscale_interval_ms;     /* default 15000 */
	int scale_down_window_ms;      /* stabilisation window, default 300000 */
	int finalizer_attempts;        /* etcd cleanup tries before release, default 5 */
	const char *etcd_override;     /* tests: use these etcd endpoints instead of the spec's */
} kaa__controller_opts;

typedef struct kaa__controller kaa__controller;

/* k and m are borrowed and must outlive the controller. Registers its
 * metrics (reconcile counts, errors, durations, queue depth) in m. */
int kaa__controller_new(kaa__kube *k, kaa__metrics *m, const kaa__controller_opts *opts,
			kaa__controller **out);
/* Starts informers and workers; KAA_OK if already started. */
int kaa__controller_start(kaa__controller *c);
/* Stops workers and informers, waits for them; no-op when stopped. */
void kaa__controller_stop(kaa__controller *c);
/* true when started and every informer has synced. */
bool kaa__controller_ready(kaa__controller *c);
void kaa__controller_free(kaa__controller *c); /* accepts NULL; stops first */

#endif
