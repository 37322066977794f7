/*
 * kube_lease.c - leader election on a coordination.k8s.io/v1 Lease, the
 * way client-go's leaderelection does it.
 *
 * Safety rests on two things. Every write carries the resourceVersion that
 * was read, so of two candidates racing for the same record one gets 409.
 * And expiry is judged on the local monotonic clock: a standby takes over
 * only after it has seen the same holder/renewTime unchanged for
 * leaseDurationSeconds since it observed it, while a leader gives up
 * (on_stopped, is_leader false) once renew_deadline has passed since the
 * start of its last successful renewal. With renew_deadline < duration
 * the old leader has stepped down before anyone else can take over, with
 * no reliance on synchronised wall clocks.
 */
#include "kube_internal.h"

#include "base/clock.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_MAX 256

typedef struct record {
	char holder[FIELD_MAX];
	char renew[64];
	char acquire[64];
	char rv[128];
	long long transitions;
	long long duration_s;
} record;

struct kaa__kube_lease {
	kaa__kube *k;
	char *ns, *name, *identity;
	kaa__kube_lease_opts o;

	pthread_t th;
	volatile int stop;

	pthread_mutex_t mu; /* guards leader, renewed_at */
	bool leader;
	int64_t renewed_at;        /* monotonic ms at the start of the last good write */
	_Atomic int64_t answer_at; /* monotonic ms of the last usable API answer */

	/* election thread only */
	record cur;    /* the record as last read or written */
	bool have_cur; /* cur.rv is fresh enough to write without a read */
	char obs_holder[FIELD_MAX];
	char obs_renew[64];
	int64_t obs_at;
};

static void copy_field(char *dst, size_t size, const char *s)
{
	snprintf(dst, size, "%s", s && strlen(s) < size ? s : "");
}

static void parse_record(yajl_val v, record *r)
{
	static const char *const p_holder[] = {"spec", "holderIdentity", NULL};
	static const char *const p_renew[] = {"spec", "renewTime", NULL};
	static const char *const p_acq[] = {"spec", "acquireTime", NULL};
	static const char *const p_tr[] = {"spec", "leaseTransitions", NULL};
	static const char *const p_dur[] = {"spec", "leaseDurationSeconds", NULL};
	static const char *const p_rv[] = {"metadata", "resourceVersion", NULL};

	*r = (record){0};
	copy_field(r->holder, sizeof(r->holder), kaa__kube_str(v, p_holder));
	copy_field(r->renew, sizeof(r->renew), kaa__kube_str(v, p_renew));
	copy_field(r->acquire, sizeof(r->acquire), kaa__kube_str(v, p_acq));
	copy_field(r->rv, sizeof(r->rv), kaa__kube_str(v, p_rv));
	r->transitions = kaa__kube_int(v, p_tr, 0);
	r->duration_s = kaa__kube_int(v, p_dur, 0);
}

static char *lease_json(kaa__kube_lease *l, const record *r, bool with_rv)
{
	kaa__buf b = {0};
	kaa__buf_puts(&b, "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
			  "\"metadata\":{\"name\":");
	kaa__kube_json_str(&b, l->name);
	kaa__buf_puts(&b, ",\"namespace\":");
	kaa__kube_json_str(&b, l->ns);
	if (with_rv) {
		kaa__buf_puts(&b, ",\"resourceVersion\":");
		kaa__kube_json_str(&b, r->rv);
	}
	kaa__buf_puts(&b, "},\"spec\":{\"holderIdentity\":");
	kaa__kube_json_str(&b, r->holder[0] ? r->holder : NULL);
	kaa__buf_printf(&b, ",\"leaseDurationSeconds\":%lld,\"leaseTransitions\":%lld",
			r->duration_s, r->transitions);
	if (r->acquire[0]) {
		kaa__buf_puts(&b, ",\"acquireTime\":");
		kaa__kube_json_str(&b, r->acquire);
	}
	if (r->renew[0]) {
		kaa__buf_puts(&b, ",\"renewTime\":");
		kaa__kube_json_str(&b, r->renew);
	}
	kaa__buf_puts(&b, "}}");
	return b.p;
}

static bool is_leader_locked(kaa__kube_lease *l, int64_t now)
{
	return l->leader && now - l->renewed_at < l->o.renew_deadline_ms;
}

bool kaa__kube_lease_is_leader(kaa__kube_lease *l)
{
	if (!l)
		return false;
	pthread_mutex_lock(&l->mu);
	bool r = is_leader_locked(l, kaa__now_ms());
	pthread_mutex_unlock(&l->mu);
	return r;
}

bool kaa__kube_lease_healthy(kaa__kube_lease *l)
{
	if (!l)
		return false;
	int64_t at = atomic_load(&l->answer_at);
	return at > 0 && kaa__now_ms() - at <= (int64_t)l->o.duration_ms + l->o.retry_ms;
}

static void become_leader(kaa__kube_lease *l, int64_t t_start)
{
	pthread_mutex_lock(&l->mu);
	bool was = l->leader;
	l->leader = true;
	l->renewed_at = t_start;
	pthread_mutex_unlock(&l->mu);
	if (!was) {
		KAA_INFO("lease", "leader_elected lease=%s/%s identity=%s", l->ns, l->name,
			 l->identity);
		if (l->o.on_started)
			l->o.on_started(l->o.ud);
	}
}

static void lose(kaa__kube_lease *l, const char *why)
{
	pthread_mutex_lock(&l->mu);
	bool was = l->leader;
	l->leader = false;
	pthread_mutex_unlock(&l->mu);
	if (was) {
		KAA_LOG(strcmp(why, "shutdown") == 0 ? KAA_LOG_INFO : KAA_LOG_WARN, "lease",
			"leadership_ended lease=%s/%s identity=%s reason=%s", l->ns, l->name,
			l->identity, why);
		if (l->o.on_stopped)
			l->o.on_stopped(l->o.ud);
	}
}

static void base_path(kaa__kube_lease *l, kaa__buf *b, bool named)
{
	kaa__buf_puts(b, "/apis/coordination.k8s.io/v1/namespaces/");
	kaa__kube_query(b, l->ns);
	kaa__buf_puts(b, "/leases");
	if (named) {
		kaa__buf_put(b, "/", 1);
		kaa__kube_query(b, l->name);
	}
}

static int req(kaa__kube_lease *l, const char *method, bool named, const char *body, int timeout,
	       kaa__kube_resp *r)
{
	kaa__buf p = {0};
	kaa__kube_req_opts o = {.stop = &l->stop, .timeout_ms = timeout};
	int rc;
	base_path(l, &p, named);
	rc = kaa__kube_request_ex(l->k, method, p.p, body ? "application/json" : NULL, body, &o, r);
	kaa__buf_free(&p);
	if (rc == KAA_OK && (r->status < 500 && r->status != 401 && r->status != 403))
		atomic_store(&l->answer_at, kaa__now_ms());
	return rc;
}

/* Writes rec (PUT, or POST when create); KAA_OK and leader on success,
 * KAA_ERR_CONFLICT on 409, other errors otherwise. */
static int write_record(kaa__kube_lease *l, record *rec, bool create, int timeout)
{
	kaa__kube_resp r;
	int64_t t0 = kaa__now_ms();
	char *body = lease_json(l, rec, !create);
	int rc;
	char err[128];

	rc = req(l, create ? "POST" : "PUT", !create, body, timeout, &r);
	free(body);
	if (rc != KAA_OK)
		return rc;
	if (r.status == 200 || r.status == 201) {
		yajl_val v = yajl_tree_parse(r.body, err, sizeof(err));
		if (v) {
			parse_record(v, &l->cur);
			l->have_cur = true;
			yajl_tree_free(v);
		} else {
			l->have_cur = false;
		}
		rc = KAA_OK;
		/* Leadership counts from before the write was sent. */
		if (strcmp(rec->holder, l->identity) == 0)
			become_leader(l, t0);
	} else if (r.status == 409) {
		l->have_cur = false;
		rc = KAA_ERR_CONFLICT;
	} else {
		KAA_WARN("lease", "lease_write_failed lease=%s/%s status=%ld", l->ns, l->name,
			 r.status);
		l->have_cur = false;
		rc = KAA_ERR_UNAVAILABLE;
	}
	kaa__kube_resp_clear(&r);
	return rc;
}

static void fill_mine(kaa__kube_lease *l, record *rec, bool acquire)
{
	char now[32];
	kaa__kube_microtime(now);
	copy_field(rec->holder, sizeof(rec->holder), l->identity);
	rec->duration_s = (l->o.duration_ms + 999) / 1000;
	copy_field(rec->renew, sizeof(rec->renew), now);
	if (acquire) {
		copy_field(rec->acquire, sizeof(rec->acquire), now);
		rec->transitions++;
	}
}

/* One round: read (unless we hold a fresh record), then renew, acquire or
 * stand by. */
static int round_once(kaa__kube_lease *l)
{
	int64_t now = kaa__now_ms();
	int timeout;
	record rec;
	int rc;
	char err[128];

	pthread_mutex_lock(&l->mu);
	bool leader = l->leader;
	int64_t left = l->o.renew_deadline_ms - (now - l->renewed_at);
	pthread_mutex_unlock(&l->mu);
	/* A leader must learn the outcome before its deadline passes. */
	timeout = leader ? (int)(left > 200 ? left : 200) : l->o.renew_deadline_ms;

	if (leader && l->have_cur && strcmp(l->cur.holder, l->identity) == 0) {
		rec = l->cur;
		fill_mine(l, &rec, false);
		rc = write_record(l, &rec, false, timeout);
		if (rc != KAA_ERR_CONFLICT)
			return rc;
	}
	kaa__kube_resp r;
	rc = req(l, "GET", true, NULL, timeout, &r);
	if (rc != KAA_OK)
		return rc;
	if (r.status == 404) {
		kaa__kube_resp_clear(&r);
		rec = (record){0};
		fill_mine(l, &rec, true);
		rec.transitions = 0;
		rc = write_record(l, &rec, true, timeout);
		return rc == KAA_ERR_CONFLICT ? KAA_OK : rc; /* someone else created it */
	}
	if (r.status != 200) {
		KAA_WARN("lease", "lease_read_failed lease=%s/%s status=%ld", l->ns, l->name,
			 r.status);
		kaa__kube_resp_clear(&r);
		return KAA_ERR_UNAVAILABLE;
	}
	yajl_val v = yajl_tree_parse(r.body, err, sizeof(err));
	kaa__kube_resp_clear(&r);
	if (!v)
		return KAA_ERR_PROTOCOL;
	parse_record(v, &rec);
	yajl_tree_free(v);
	l->cur = rec;
	l->have_cur = true;

	now = kaa__now_ms();
	if (strcmp(rec.holder, l->obs_holder) != 0 || strcmp(rec.renew, l->obs_renew) != 0 ||
	    l->obs_at == 0) {
		copy_field(l->obs_holder, sizeof(l->obs_holder), rec.holder);
		copy_field(l->obs_renew, sizeof(l->obs_renew), rec.renew);
		l->obs_at = now;
	}
	if (strcmp(rec.holder, l->identity) == 0) {
		/* Ours: renew (also when we restarted with the same identity). */
		fill_mine(l, &rec, false);
		return write_record(l, &rec, false, timeout);
	}
	if (leader)
		lose(l, "held_by_other");
	int64_t dur_ms = rec.duration_s > 0 ? rec.duration_s * 1000 : l->o.duration_ms;
	if (rec.holder[0] && now - l->obs_at < dur_ms)
		return KAA_OK; /* someone else leads */
	KAA_INFO("lease", "lease_takeover lease=%s/%s previous=\"%s\"", l->ns, l->name, rec.holder);
	fill_mine(l, &rec, true);
	rc = write_record(l, &rec, false, timeout);
	return rc == KAA_ERR_CONFLICT ? KAA_OK : rc;
}

/* Remaining ms before deadline, at least 100; 0 when it has passed. */
static int remaining(int64_t deadline)
{
	int64_t left = deadline - kaa__now_ms();
	return left <= 0 ? 0 : left < 100 ? 100 : (int)left;
}

/* One request for release: never interrupted by stop (that is why we are
 * here) but bounded by the release deadline. */
static int release_req(kaa__kube_lease *l, const char *method, const char *body, int64_t deadline,
		       kaa__kube_resp *r)
{
	volatile int no_stop = 0;
	kaa__kube_req_opts o = {.stop = &no_stop, .timeout_ms = remaining(deadline)};
	kaa__buf p = {0};
	int rc;
	if (o.timeout_ms == 0)
		return KAA_ERR_TIMEOUT;
	base_path(l, &p, true);
	rc = kaa__kube_request_ex(l->k, method, p.p, body ? "application/json" : NULL, body, &o, r);
	kaa__buf_free(&p);
	return rc;
}

/* Clears holderIdentity so that a standby takes over at its next round.
 * Bounded to 3 s in all so that shutdown stays quick. */
static void release(kaa__kube_lease *l)
{
	int64_t deadline = kaa__now_ms() + 3000;
	for (int attempt = 0; attempt < 2; attempt++) {
		record rec = l->cur;
		kaa__kube_resp r;
		char err[128];
		if (!l->have_cur || strcmp(rec.holder, l->identity) != 0) {
			if (release_req(l, "GET", NULL, deadline, &r) != KAA_OK)
				break;
			yajl_val v =
				r.status == 200 ? yajl_tree_parse(r.body, err, sizeof(err)) : NULL;
			kaa__kube_resp_clear(&r);
			if (!v)
				break;
			parse_record(v, &rec);
			yajl_tree_free(v);
			if (strcmp(rec.holder, l->identity) != 0)
				return; /* not ours any more: nothing to release */
		}
		char now[32];
		kaa__kube_microtime(now);
		rec.holder[0] = '\0';
		rec.duration_s = 1;
		copy_field(rec.renew, sizeof(rec.renew), now);
		char *body = lease_json(l, &rec, true);
		int rc = release_req(l, "PUT", body, deadline, &r);
		free(body);
		if (rc != KAA_OK)
			break;
		long st = r.status;
		kaa__kube_resp_clear(&r);
		if (st == 200) {
			KAA_INFO("lease", "lease_released lease=%s/%s identity=%s", l->ns, l->name,
				 l->identity);
			return;
		}
		if (st != 409)
			break;
		l->have_cur = false;
	}
	KAA_WARN("lease", "lease_release_failed lease=%s/%s identity=%s", l->ns, l->name,
		 l->identity);
}

static void *run(void *arg)
{
	kaa__kube_lease *l = arg;
	while (!l->stop) {
		int64_t t0 = kaa__now_ms();
		int rc = round_once(l);
		if (rc != KAA_OK && rc != KAA_ERR_CANCELED && rc != KAA_ERR_CONFLICT)
			KAA_DEBUG("lease", "round_failed lease=%s/%s err=\"%s\"", l->ns, l->name,
				  kaa_strerror(rc));
		pthread_mutex_lock(&l->mu);
		bool expired = l->leader && !is_leader_locked(l, kaa__now_ms());
		pthread_mutex_unlock(&l->mu);
		if (expired)
			lose(l, "renew_deadline");
		if (rc == KAA_ERR_CONFLICT)
			continue; /* re-read at once: the record changed under us */
		int64_t wait = l->o.retry_ms - (kaa__now_ms() - t0);
		if (wait > 0)
			kaa__sleep_ms_unless(wait, &l->stop);
	}
	pthread_mutex_lock(&l->mu);
	bool was = l->leader;
	pthread_mutex_unlock(&l->mu);
	if (was) {
		lose(l, "shutdown");
		release(l);
	}
	return NULL;
}

int kaa__kube_lease_new(kaa__kube *k, const char *ns, const char *name, const char *identity,
			const kaa__kube_lease_opts *opts, kaa__kube_lease **out)
{
	kaa__kube_lease *l;

	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (!k || !ns || !*ns || !name || !*name || !identity || !*identity ||
	    strlen(identity) >= FIELD_MAX)
		return KAA_ERR_INVAL;
	l = kaa__xcalloc(1, sizeof(*l));
	if (opts)
		l->o = *opts;
	if (l->o.duration_ms <= 0)
		l->o.duration_ms = 15000;
	if (l->o.renew_deadline_ms <= 0)
		l->o.renew_deadline_ms = 10000;
	if (l->o.retry_ms <= 0)
		l->o.retry_ms = 2000;
	if (l->o.renew_deadline_ms >= l->o.duration_ms || l->o.retry_ms >= l->o.renew_deadline_ms) {
		free(l);
		return KAA_ERR_INVAL;
	}
	l->k = k;
	l->ns = kaa__xstrdup(ns);
	l->name = kaa__xstrdup(name);
	l->identity = kaa__xstrdup(identity);
	pthread_mutex_init(&l->mu, NULL);
	atomic_init(&l->answer_at, 0);
	if (pthread_create(&l->th, NULL, run, l) != 0) {
		pthread_mutex_destroy(&l->mu);
		free(l->ns);
		free(l->name);
		free(l->identity);
		free(l);
		return KAA_ERR_IO;
	}
	*out = l;
	return KAA_OK;
}

void kaa__kube_lease_free(kaa__kube_lease *l)
{
	if (!l)
		return;
	l->stop = 1;
	pthread_join(l->th, NULL);
	pthread_mutex_destroy(&l->mu);
	free(l->ns);
	free(l->name);
	free(l->identity);
	free(l);
}
