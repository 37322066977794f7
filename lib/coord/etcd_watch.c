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

/* One Watch stream: the call, its completion queue and the buffers of the
 * ops in flight. Watch thread only (w->call, which free cancels, is the
 * one field others see). */
typedef struct watch_stream {
	grpc_completion_queue *cq;
	grpc_call *call;
	grpc_byte_buffer *send, *recv;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	char *end;   /* range_end of a prefix watch */
	int pending; /* batches started and not completed */
	int result;  /* STREAM_* */
	bool created, cancelled;
	int64_t create_deadline;
} watch_stream;

/* Connect: a new call on the channel, published in w->call so that free
 * can cancel it. */
static void stream_open(etcd_watch *w, watch_stream *s)
{
	grpc_slice method = grpc_slice_from_static_string("/etcdserverpb.Watch/Watch");

	memset(s, 0, sizeof(*s));
	s->cq = grpc_completion_queue_create_for_next(NULL);
	s->call = grpc_channel_create_call(w->e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq,
					   method, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	s->status = GRPC_STATUS_UNKNOWN;
	s->details = grpc_empty_slice();
	s->result = STREAM_BROKEN;
	s->create_deadline = kaa__now_ms() + w->e->timeout_ms;
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	pthread_mutex_lock(&w->mu);
	w->call = s->call;
	pthread_mutex_unlock(&w->mu);
}

static void stream_cancel(watch_stream *s)
{
	if (s->cancelled)
		return;
	grpc_call_cancel(s->call, NULL);
	s->cancelled = true;
}

/* The WatchCreateRequest: from next_rev, with progress notifications. */
static grpc_byte_buffer *pack_create_request(etcd_watch *w, watch_stream *s)
{
	Etcdserverpb__WatchCreateRequest creq = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
	Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
	size_t end_len = 0;

	creq.key.data = (uint8_t *)w->key;
	creq.key.len = strlen(w->key);
	if (w->prefix) {
		s->end = kaa__prefix_end(w->key, &end_len);
		creq.range_end.data = (uint8_t *)s->end;
		creq.range_end.len = end_len;
	}
	creq.start_revision = w->next_rev;
	creq.progress_notify = 1;
	req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
	req.create_request = &creq;
	return kaa__etcd_pack(&req.base);
}

/* Send create request: starts the send, status and first receive batches.
 * KAA_ERR_INTERNAL when the send cannot start (nothing is in flight). */
static int stream_send_create(etcd_watch *w, watch_stream *s)
{
	grpc_op ops[2];

	s->send = pack_create_request(w, s);
	memset(ops, 0, sizeof(ops));
	/* Wait for the channel instead of failing at once while it reconnects
	 * (after an etcd restart); create_deadline bounds the wait. */
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = s->send;
	if (grpc_call_start_batch(s->call, ops, 2, (void *)(intptr_t)TAG_SEND, NULL) !=
	    GRPC_CALL_OK)
		return KAA_ERR_INTERNAL;
	s->pending++;
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
	ops[0].data.recv_status_on_client.status = &s->status;
	ops[0].data.recv_status_on_client.status_details = &s->details;
	if (grpc_call_start_batch(s->call, ops, 1, (void *)(intptr_t)TAG_STATUS, NULL) !=
	    GRPC_CALL_OK)
		stream_cancel(s);
	else
		s->pending++;
	if (!s->cancelled && start_recv(s->call, &s->recv, &s->init_md, true) == KAA_OK)
		s->pending++;
	return KAA_OK;
}

/* Handle event: one WatchResponse (events, creation, progress, compaction
 * or cancellation). Returns whether the stream goes on. */
static bool handle_response(etcd_watch *w, watch_stream *s, Etcdserverpb__WatchResponse *resp)
{
	if (resp->compact_revision > 0) {
		KAA_WARN("etcd", "watch_compacted key=%s from=%lld compact_revision=%lld", w->key,
			 (long long)w->next_rev, (long long)resp->compact_revision);
		s->result = STREAM_COMPACTED;
		return false;
	}
	if (resp->canceled) {
		KAA_WARN("etcd", "watch_canceled key=%s reason=\"%s\"", w->key,
			 resp->cancel_reason ? resp->cancel_reason : "");
		return false;
	}
	if (resp->created) {
		s->created = true;
		if (w->next_rev == 0 && resp->header) {
			w->next_rev = resp->header->revision + 1;
			atomic_store(&w->last_rev, resp->header->revision);
		}
		set_up(w, true);
	}
	if (resp->n_events > 0) {
		deliver(w, resp);
	} else if (!resp->created && resp->header && resp->header->revision >= w->next_rev) {
		/* Progress notification: etcd sends it only to synced watchers,
		 * so everything up to this revision has been delivered. */
		w->next_rev = resp->header->revision + 1;
		atomic_store(&w->last_rev, resp->header->revision);
	}
	return true;
}

/* Read message: a receive completed; handles it and starts the next one,
 * or cancels the stream when it is over. */
static void stream_on_recv(etcd_watch *w, watch_stream *s, bool success)
{
	Etcdserverpb__WatchResponse *resp = NULL;
	bool keep;

	if (!success || !s->recv)
		return; /* stream over; the status tells why */
	int rc = kaa__etcd_unpack(s->recv, &etcdserverpb__watch_response__descriptor,
				  (ProtobufCMessage **)&resp);
	grpc_byte_buffer_destroy(s->recv);
	s->recv = NULL;
	if (rc != KAA_OK) {
		KAA_WARN("etcd", "watch_bad_message key=%s err=%s", w->key, kaa_strerror(rc));
		keep = false;
	} else {
		keep = handle_response(w, s, resp) && !w->stop;
	}
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	if (keep && start_recv(s->call, &s->recv, &s->init_md, false) == KAA_OK)
		s->pending++;
	else
		stream_cancel(s);
}

static void stream_on_status(etcd_watch *w, watch_stream *s)
{
	if (s->cancelled || w->stop)
		return;
	char *d = grpc_slice_to_c_string(s->details);
	KAA_DEBUG("etcd", "watch_stream_ended key=%s grpc_status=%d details=\"%s\"", w->key,
		  (int)s->status, d);
	gpr_free(d);
}

/* Waits up to 200 ms for one completion and handles it; on a timeout
 * cancels the stream when stopping or when creation took too long.
 * Returns false when the queue fails (nothing more will complete). */
static bool stream_step(etcd_watch *w, watch_stream *s)
{
	gpr_timespec dl =
		gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(200, GPR_TIMESPAN));
	grpc_event ev = grpc_completion_queue_next(s->cq, dl, NULL);

	if (ev.type == GRPC_QUEUE_TIMEOUT) {
		if (w->stop || (!s->created && kaa__now_ms() > s->create_deadline))
			stream_cancel(s);
		return true;
	}
	if (ev.type != GRPC_OP_COMPLETE)
		return false;
	s->pending--;
	switch ((intptr_t)ev.tag) {
	case TAG_SEND:
		grpc_byte_buffer_destroy(s->send);
		s->send = NULL;
		break;
	case TAG_STATUS: stream_on_status(w, s); break;
	case TAG_RECV: stream_on_recv(w, s, ev.success); break;
	}
	return true;
}

/* Unpublishes and releases the call, drains the queue and frees the
 * stream's buffers. Returns the stream's STREAM_* result. */
static int stream_close(etcd_watch *w, watch_stream *s)
{
	if (w->stop)
		s->result = STREAM_STOPPED;
	pthread_mutex_lock(&w->mu);
	w->call = NULL;
	pthread_mutex_unlock(&w->mu);
	grpc_call_unref(s->call);
	grpc_completion_queue_shutdown(s->cq);
	for (;;) {
		grpc_event ev =
			grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
	}
	grpc_completion_queue_destroy(s->cq);
	if (s->send)
		grpc_byte_buffer_destroy(s->send);
	if (s->recv)
		grpc_byte_buffer_destroy(s->recv);
	grpc_slice_unref(s->details);
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
	free(s->end);
	return s->result;
}

/* One stream from connect to close: STREAM_BROKEN (reconnect from
 * next_rev), STREAM_COMPACTED (list again) or STREAM_STOPPED. */
static int run_stream(etcd_watch *w)
{
	watch_stream s;

	stream_open(w, &s);
	if (stream_send_create(w, &s) == KAA_OK)
		while (s.pending > 0 && stream_step(w, &s))
			;
	return stream_close(w, &s);
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
