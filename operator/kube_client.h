/*
 * kube_client.h - a small Kubernetes API client for kaa-operator on libcurl
 * and yajl: configuration (kubeconfig or in-cluster), plain requests,
 * server-side apply, informers (list + watch with bookmarks and re-list on
 * 410 Gone, with a cache), Lease leader election and events.k8s.io/v1 Events.
 *
 * TLS verification is always on (the cluster CA from the kubeconfig or the
 * service-account CA file); there is no option to turn it off.
 *
 * Errors (negative kaa_err) unless a function says less:
 *   KAA_ERR_INVAL        bad argument, unparsable kubeconfig or JSON
 *   KAA_ERR_NOTFOUND     no kubeconfig and no in-cluster settings
 *   KAA_ERR_UNAVAILABLE  transport failure (connect, TLS, reset)
 *   KAA_ERR_TIMEOUT      no answer within the request timeout
 *   KAA_ERR_TOO_BIG      a response over KAA_KUBE_BODY_MAX
 * Out of memory (ours, curl's, libyaml's) aborts through kaa__oom()
 * (base/alloc.h), as everywhere in the operator.
 * An HTTP error status is not an error of the call: it is in resp->status.
 */
#ifndef KAA_KUBE_CLIENT_H
#define KAA_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "base/metrics.h"

#define KAA_KUBE_BODY_MAX (16 * 1024 * 1024)
#define KAA_KUBE_FIELD_MANAGER "kaa-operator"

/* Where to reach the API server and how to authenticate. All strings owned. */
typedef struct kaa__kube_config {
	char *server;           /* https://host:port, no trailing slash */
	char *ca_file;          /* PEM file, or NULL when ca_data is set */
	char *ca_data;          /* PEM text (decoded certificate-authority-data) */
	char *token;            /* bearer token, or NULL */
	char *token_file;       /* re-read on 401 and every minute (bound SA tokens rotate) */
	char *client_cert_data; /* PEM client certificate, or NULL */
	char *client_key_data;  /* PEM client key, or NULL */
	char *namespace;        /* the context's / pod's namespace, or NULL */
} kaa__kube_config;

/*
 * Loads configuration. path: a kubeconfig file; NULL means $KUBECONFIG,
 * then in-cluster (KUBERNETES_SERVICE_HOST/PORT with
 * /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace},
 * directory overridable by $KAA_SA_DIR for tests), then ~/.kube/config.
 * The kubeconfig's current-context is used. *out is malloc'd; free with
 * kaa__kube_config_free. Relative file paths in a kubeconfig are resolved
 * against its directory; $KUBECONFIG holding a list uses the first file.
 * Errors: KAA_ERR_NOTFOUND (nothing found, or the named file is absent),
 * KAA_ERR_TOO_BIG (kubeconfig over 1 MiB), KAA_ERR_INVAL (unparsable, no
 * usable current-context, an https server missing, exec/auth-provider
 * users, unreadable referenced files), KAA_ERR_IO; each is
 * logged with the reason.
 */
int kaa__kube_config_load(const char *path, kaa__kube_config **out);
void kaa__kube_config_free(kaa__kube_config *c); /* accepts NULL */

typedef struct kaa__kube kaa__kube;

/* Copies what it needs from cfg (borrowed). metrics may be NULL; when set,
 * kaa_operator_api_requests_total{verb,code} is counted there. */
int kaa__kube_new(const kaa__kube_config *cfg, kaa__metrics *metrics, kaa__kube **out);
void kaa__kube_free(kaa__kube *k); /* accepts NULL; informers/leases first */

/* (Added by h1.) The identity reported as an Event's reportingInstance;
 * default the hostname. Copied. Any thread. KAA_ERR_INVAL for NULL or "". */
int kaa__kube_set_identity(kaa__kube *k, const char *identity);

typedef struct kaa__kube_resp {
	long status; /* HTTP status */
	char *body;  /* NUL-terminated, owned */
	size_t len;
} kaa__kube_resp;
void kaa__kube_resp_clear(kaa__kube_resp *r); /* accepts NULL */

/*
 * One request. path starts with "/" and includes the query string.
 * content_type and body may be NULL. Thread-safe: any thread, concurrently.
 * Timeout 30 s. KAA_OK when a response arrived (any status).
 */
int kaa__kube_request(kaa__kube *k, const char *method, const char *path, const char *content_type,
		      const char *body, kaa__kube_resp *resp);

/*
 * Server-side apply: PATCH path?fieldManager=kaa-operator&force=true with
 * Content-Type application/apply-patch+yaml and a JSON body (JSON is YAML).
 * path is the object's path (or its /status subresource).
 */
int kaa__kube_apply(kaa__kube *k, const char *path, const char *json, kaa__kube_resp *resp);

/* Finds a string / int / object by a path of keys in a yajl tree; NULL or
 * the default when absent or of another type. Borrowed from the tree. */
const char *kaa__kube_str(yajl_val v, const char *const *path);
long long kaa__kube_int(yajl_val v, const char *const *path, long long dflt);
yajl_val kaa__kube_obj(yajl_val v, const char *const *path);

/* ---- informers ---- */

typedef enum kaa__kube_ev {
	KAA_KUBE_ADDED, /* also every object of a (re-)list */
	KAA_KUBE_MODIFIED,
	KAA_KUBE_DELETED, /* also objects gone after a re-list */
} kaa__kube_ev;

/*
 * Called on the informer's own thread, in order, with the object parsed
 * (borrowed for the call). Keep it short: enqueue work and return.
 */
typedef void (*kaa__kube_event_cb)(void *ud, kaa__kube_ev ev, const char *ns, const char *name,
				   yajl_val obj);

typedef struct kaa__kube_informer kaa__kube_informer;

/*
 * Starts a thread that lists collection_path (e.g.
 * "/apis/kaaproject.org/v1alpha1/kaaclusters" or
 * "/apis/apps/v1/namespaces/x/deployments"; paged with limit/continue),
 * then watches from the list's resourceVersion with
 * allowWatchBookmarks=true and timeoutSeconds, resuming from the last
 * resourceVersion seen (bookmarks included). 410 Gone or an ERROR event
 * re-lists and reports the difference. Transport errors retry with
 * exponential backoff (max 30 s) and never end the thread.
 * label_selector may be NULL. Every resync_ms (0: never) every cached
 * object is reported again as MODIFIED.
 */
int kaa__kube_informer_new(kaa__kube *k, const char *collection_path, const char *label_selector,
			   int resync_ms, kaa__kube_event_cb cb, void *ud,
			   kaa__kube_informer **out);
/* Stops the thread (waits for it) and frees; accepts NULL. */
void kaa__kube_informer_free(kaa__kube_informer *inf);
/* true once the first list has been delivered. Any thread. */
bool kaa__kube_informer_synced(kaa__kube_informer *inf);
/* Copy of the cached object's JSON (malloc'd) or KAA_ERR_NOTFOUND. Any thread. */
int kaa__kube_informer_get(kaa__kube_informer *inf, const char *ns, const char *name, char **json);

/* ---- leader election on a coordination.k8s.io/v1 Lease ---- */

typedef struct kaa__kube_lease_opts {
	int duration_ms;       /* default 15000 */
	int renew_deadline_ms; /* default 10000 */
	int retry_ms;          /* default 2000 */
	/* called on the election thread when leadership starts / ends */
	void (*on_started)(void *ud);
	void (*on_stopped)(void *ud);
	void *ud;
} kaa__kube_lease_opts;

typedef struct kaa__kube_lease kaa__kube_lease;

/* Starts campaigning for ns/name as identity on its own thread. A leader
 * that cannot renew within renew_deadline_ms calls on_stopped. */
int kaa__kube_lease_new(kaa__kube *k, const char *ns, const char *name, const char *identity,
			const kaa__kube_lease_opts *opts, kaa__kube_lease **out);
bool kaa__kube_lease_is_leader(kaa__kube_lease *l);
/* (Added by h1.) true when the last API answer about the Lease (any status
 * other than 401/403/5xx) came within duration + retry period: the client
 * works, whether or not this candidate leads. Any thread. */
bool kaa__kube_lease_healthy(kaa__kube_lease *l);
/* Stops; a leader releases the Lease (holderIdentity cleared) so a standby
 * takes over at once. Accepts NULL. */
void kaa__kube_lease_free(kaa__kube_lease *l);

/* Events (events.k8s.io/v1) are recorded above this client: kube_event.h. */

#endif
