/*
 * etcd_watch.c - watch streams of the etcd backend.
 *
 * One thread per watch owns one gRPC stream at a time. The thread keeps
 * next_rev, the first revision not yet delivered; a broken stream is
 * re-created with start_revision = next_rev, so events are neither lost
 * nor repeated across connection loss and etcd restarts (etcd keeps its
 * history across restarts). When next_rev has been compacted, events in
 * between are gone: the thread lists the range again and hands the
 * snapshot to the reset callback, then watches from the list's revision.
 *
 * gRPC pitfalls handled here: the first receive batch carries
 * RECV_INITIAL_METADATA (messages never arrive otherwise); only one op of
 * each kind is in flight; a client close does not end a Watch stream, so
 * stopping cancels the call.
 */
#include "base/alloc.h"
#include "base/error.h"
#include "coord/etcd_internal.h"
#include "base/log.h"

#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_SEND = 1, TAG_RECV = 2, TAG_STATUS = 3 };
enum { STREAM_BROKEN, STREAM_COMPACTED, STREAM_STOPPED };

typedef struct etcd_watch {
	struct kaa__watch base;
	kaa__etcd *e;
	char *key;
	bool prefix;
	kaa__watch_cb cb;
	pthread_t thread;
	pthread_mutex_t mu;
	grpc_call *call; /* current stream; guarded by mu, cancelled by free */
	volatile int stop;
	int64_t next_rev; /* watch thread only */
	bool need_snapshot;
	bool up;
	_Atomic int64_t last_rev;
} etcd_watch;

static void set_up(etcd_watch *w, bool up)
{
	if (w->up == up)
		return;
	w->up = up;
	if (w->cb.connected)
		w->cb.connected(w->cb.ud, up);
}

static void deliver(etcd_watch *w, Etcdserverpb__WatchResponse *resp)
{
	kaa__watch_event *evs = kaa__xcalloc(resp->n_events, sizeof(*evs));
	size_t n = 0;
	int64_t max_rev = 0;

	for (size_t i = 0; i < resp->n_events; i++) {
		Mvccpb__Event *ev = resp->events[i];
		if (!ev->kv || ev->kv->mod_revision < w->next_rev)
			continue; /* already delivered before a reconnect */
		evs[n].type = ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE ? KAA_WATCH_DELETE
									    : KAA_WATCH_PUT;
		kaa__etcd_kv_copy(&evs[n].kv, ev->kv);
		n++;
		if (ev->kv->mod_revision > max_rev)
			max_rev = ev->kv->mod_revision;
	}
	if (n > 0) {
		w->cb.events(w->cb.ud, evs, n);
		w->next_rev = max_rev + 1;
		atomic_store(&w->last_rev, max_rev);
	}
	for (size_t i = 0; i < n; i++)
		kaa__kv_clear(&evs[i].kv);
	free(evs);
}

static int start_recv(grpc_call *call, grpc_byte_buffer **recv, grpc_metadata_array *md, bool first)
{
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof(ops));
	if (first) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata = md;
		n++;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = recv;
	n++;
	*recv = NULL;
	return grpc_call_start_batch(call, ops, n, (void *)(intptr_t)TAG_RECV, NULL) == GRPC_CALL_OK
		       ? KAA_OK
		       : KAA_ERR_INTERNAL;
}

static int run_stream(etcd_watch *w)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
	grpc_slice method = grpc_slice_from_static_string("/etcdserverpb.Watch/Watch");
	grpc_call *call =
		grpc_channel_create_call(w->e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method,
					 NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	Etcdserverpb__WatchCreateRequest creq = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
	grpc_byte_buffer *send = NULL, *recv = NULL;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	char *end = NULL;
	size_t end_len = 0;
	int pending = 0, result = STREAM_BROKEN;
	bool created = false, cancelled = false;
	int64_t create_deadline = kaa__now_ms() + w->e->timeout_ms;
	grpc_op ops[2];

	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	pthread_mutex_lock(&w->mu);
	w->call = call;
	pthread_mutex_unlock(&w->mu);

	creq.key.data = (uint8_t *)w->key;
	creq.key.len = strlen(w->key);
	if (w->prefix) {
		end = kaa__prefix_end(w->key, &end_len);
		creq.range_end.data = (uint8_t *)end;
		creq.range_end.len = end_len;
	}
	creq.start_revision = w->next_rev;
	creq.progress_notify = 1;
	req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	req.create_request = &creq;
	send = kaa__etcd_pack(&req.base);

	memset(ops, 0, sizeof(ops));
	/* Wait for the channel instead of failing at once while it reconnects
	 * (after an etcd restart); create_deadline bounds the wait. */
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	if (grpc_call_start_batch(call, ops, 2, (void *)(intptr_t)TAG_SEND, NULL) != GRPC_CALL_OK)
		goto drain;
	pending++;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[0].data.recv_status_on_client.status = &status;
	ops[0].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 1, (void *)(intptr_t)TAG_STATUS, NULL) !=
	    GRPC_CALL_OK) {
		grpc_call_cancel(call, NULL);
		cancelled = true;
	} else {
		pending++;
	}
	if (!cancelled && start_recv(call, &recv, &init_md, true) == KAA_OK)
		pending++;

	while (pending > 0) {
		gpr_timespec dl = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
					       gpr_time_from_millis(200, GPR_TIMESPAN));
		grpc_event ev = grpc_completion_queue_next(cq, dl, NULL);
		if (ev.type == GRPC_QUEUE_TIMEOUT) {
			if (!cancelled &&
			    (w->stop || (!created && kaa__now_ms() > create_deadline))) {
				grpc_call_cancel(call, NULL);
				cancelled = true;
			}
			continue;
		}
		if (ev.type != GRPC_OP_COMPLETE)
			break;
		pending--;
		switch ((intptr_t)ev.tag) {
		case TAG_SEND:
			grpc_byte_buffer_destroy(send);
			send = NULL;
			break;
		case TAG_STATUS:
			if (!cancelled && !w->stop) {
				char *d = grpc_slice_to_c_string(details);
				KAA_DEBUG("etcd",
					  "watch_stream_ended key=%s grpc_status=%d details=\"%s\"",
					  w->key, (int)status, d);
				gpr_free(d);
			}
			break;
		case TAG_RECV: {
			Etcdserverpb__WatchResponse *resp = NULL;
			if (!ev.success || !recv)
				break; /* stream over; the status tells why */
			int rc = kaa__etcd_unpack(recv, &etcdserverpb__watch_response__descriptor,
						  (ProtobufCMessage **)&resp);
			grpc_byte_buffer_destroy(recv);
			recv = NULL;
			if (rc != KAA_OK) {
				KAA_WARN("etcd", "watch_bad_message key=%s err=%s", w->key,
					 kaa_strerror(rc));
			} else if (resp->compact_revision > 0) {
				KAA_WARN("etcd",
					 "watch_compacted key=%s from=%lld compact_revision=%lld",
					 w->key, (long long)w->next_rev,
					 (long long)resp->compact_revision);
				result = STREAM_COMPACTED;
			} else if (resp->canceled) {
				KAA_WARN("etcd", "watch_canceled key=%s reason=\"%s\"", w->key,
					 resp->cancel_reason ? resp->cancel_reason : "");
			} else {
				if (resp->created) {
					created = true;
					if (w->next_rev == 0 && resp->header) {
						w->next_rev = resp->header->revision + 1;
						atomic_store(&w->last_rev, resp->header->revision);
					}
					set_up(w, true);
				}
				if (resp->n_events > 0) {
					deliver(w, resp);
				} else if (!resp->created && resp->header &&
					   resp->header->revision >= w->next_rev) {
					/* Progress notification: etcd sends it only to
					 * synced watchers, so everything up to this
					 * revision has been delivered. */
					w->next_rev = resp->header->revision + 1;
					atomic_store(&w->last_rev, resp->header->revision);
				}
			}
			bool keep = rc == KAA_OK && resp && !resp->canceled &&
				    resp->compact_revision == 0 && !w->stop;
			if (resp)
				protobuf_c_message_free_unpacked(&resp->base, NULL);
			if (keep && start_recv(call, &recv, &init_md, false) == KAA_OK) {
				pending++;
			} else if (!cancelled) {
				grpc_call_cancel(call, NULL);
				cancelled = true;
			}
			break;
		}
		}
	}
drain:
	if (w->stop)
		result = STREAM_STOPPED;
	pthread_mutex_lock(&w->mu);
	w->call = NULL;
	pthread_mutex_unlock(&w->mu);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	for (;;) {
		grpc_event ev =
			grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
	}
	grpc_completion_queue_destroy(cq);
	if (send)
		grpc_byte_buffer_destroy(send);
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	free(end);
	return result;
}

static int take_snapshot(etcd_watch *w)
{
	kaa__kv_list l;
	int rc = kaa__etcd_range(&w->e->base, w->key, w->prefix, &l);
	if (rc != KAA_OK)
		return rc;
	w->cb.reset(w->cb.ud, &l);
	w->next_rev = l.revision + 1;
	atomic_store(&w->last_rev, l.revision);
	kaa__kv_list_clear(&l);
	return KAA_OK;
}

static void *watch_main(void *arg)
{
	etcd_watch *w = arg;
	kaa__backoff bo;
	int64_t last_log = 0;

	kaa__backoff_init(&bo, 100, 2000);
	while (!w->stop) {
		if (w->need_snapshot) {
			int rc = take_snapshot(w);
			if (rc != KAA_OK) {
				if (kaa__now_ms() - last_log > 10000) {
					KAA_WARN("etcd",
						 "watch_list_failed key=%s err=%s target=%s",
						 w->key, kaa_strerror(rc), w->e->target);
					last_log = kaa__now_ms();
				}
				set_up(w, false);
				kaa__sleep_ms_unless(kaa__backoff_next(&bo), &w->stop);
				continue;
			}
			w->need_snapshot = false;
		}
		int r = run_stream(w);
		if (r == STREAM_STOPPED)
			break;
		if (r == STREAM_COMPACTED) {
			atomic_fetch_add(&w->e->base.watch_resets, 1);
			w->need_snapshot = true;
			continue;
		}
		set_up(w, false);
		atomic_fetch_add(&w->e->base.watch_reconnects, 1);
		if (kaa__now_ms() - last_log > 10000) {
			KAA_WARN("etcd", "watch_reconnecting key=%s from_revision=%lld target=%s",
				 w->key, (long long)w->next_rev, w->e->target);
			last_log = kaa__now_ms();
		}
		kaa__sleep_ms_unless(kaa__backoff_next(&bo), &w->stop);
	}
	return NULL;
}

int kaa__etcd_watch(kaa__coord *c, const char *key, int flags, int64_t start_rev,
		    const kaa__watch_cb *cb, kaa__watch **out)
{
	etcd_watch *w;

	*out = NULL;
	if (!cb->reset)
		return KAA_ERR_INVAL; /* compaction recovery needs it */
	w = kaa__xcalloc(1, sizeof(*w));
	w->base.coord = c;
	w->e = (kaa__etcd *)c;
	w->key = kaa__xstrdup(key);
	w->prefix = flags & KAA_WATCH_PREFIX;
	w->need_snapshot = flags & KAA_WATCH_SNAPSHOT;
	w->next_rev = w->need_snapshot ? 0 : start_rev;
	w->cb = *cb;
	pthread_mutex_init(&w->mu, NULL);
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		pthread_mutex_destroy(&w->mu);
		free(w->key);
		free(w);
		return KAA_ERR_IO;
	}
	*out = &w->base;
	return KAA_OK;
}

void kaa__etcd_watch_free(kaa__watch *base)
{
	etcd_watch *w = (etcd_watch *)base;
	w->stop = 1;
	pthread_mutex_lock(&w->mu);
	if (w->call)
		grpc_call_cancel(w->call, NULL);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	pthread_mutex_destroy(&w->mu);
	free(w->key);
	free(w);
}

int64_t kaa__etcd_watch_revision(kaa__watch *base)
{
	return atomic_load(&((etcd_watch *)base)->last_rev);
}
