/*
 * etcd_client.c - the etcd v3 backend of coord.h: unary KV and lease calls
 * over gRPC C core, messages encoded with protobuf-c.
 *
 * Every unary call gets its own pluck completion queue, so any number of
 * threads can call at once (a shared pluck queue allows only 6 pluckers).
 * LeaseKeepAlive is a bidirectional stream in etcd; one keepalive is sent
 * as a short stream (send, close, read one answer), which keeps lease
 * traffic at one small exchange per lease per TTL/3.
 */
#include "coord/etcd_internal.h"
#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MESSAGE_BYTES (16 * 1024 * 1024)

grpc_byte_buffer *kaa__etcd_pack(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	grpc_slice s = grpc_slice_malloc(n);
	protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *b = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	return b;
}

int kaa__etcd_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
		     ProtobufCMessage **out)
{
	grpc_byte_buffer_reader r;
	*out = NULL;
	if (!bb)
		return KAA_ERR_PROTOCOL;
	if (grpc_byte_buffer_length(bb) > MAX_MESSAGE_BYTES)
		return KAA_ERR_TOO_BIG;
	if (!grpc_byte_buffer_reader_init(&r, bb))
		return KAA_ERR_PROTOCOL;
	grpc_slice all = grpc_byte_buffer_reader_readall(&r);
	grpc_byte_buffer_reader_destroy(&r);
	*out = protobuf_c_message_unpack(d, NULL, GRPC_SLICE_LENGTH(all),
					 GRPC_SLICE_START_PTR(all));
	grpc_slice_unref(all);
	return *out ? KAA_OK : KAA_ERR_PROTOCOL;
}

int kaa__etcd_status_err(grpc_status_code st, const char *details)
{
	switch (st) {
	case GRPC_STATUS_OK: return KAA_OK;
	case GRPC_STATUS_DEADLINE_EXCEEDED: return KAA_ERR_TIMEOUT;
	case GRPC_STATUS_CANCELLED: return KAA_ERR_CANCELED;
	case GRPC_STATUS_NOT_FOUND:
		/* etcd's only NotFound on the calls we make is "requested lease not found". */
		return KAA_ERR_LEASE_LOST;
	case GRPC_STATUS_OUT_OF_RANGE:
		if (details && strstr(details, "compacted"))
			return KAA_ERR_COMPACTED;
		return KAA_ERR_INVAL;
	case GRPC_STATUS_INVALID_ARGUMENT: return KAA_ERR_INVAL;
	case GRPC_STATUS_RESOURCE_EXHAUSTED: return KAA_ERR_TOO_BIG;
	default: return KAA_ERR_UNAVAILABLE;
	}
}

void kaa__etcd_kv_copy(kaa__kv *kv, const Mvccpb__KeyValue *src)
{
	kaa__kv_set(kv, (const char *)src->key.data, src->key.len, src->value.data, src->value.len);
	kv->create_rev = src->create_revision;
	kv->mod_rev = src->mod_revision;
	kv->version = src->version;
	kv->lease = src->lease;
}

/* One request, one response. The call deadline bounds the whole exchange,
 * so pluck itself waits without a deadline. gRPC reports batch success
 * even when the RPC failed: the status decides. */
static int unary(kaa__etcd *e, const char *method, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *rd, ProtobufCMessage **resp)
{
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
					     gpr_time_from_millis(e->timeout_ms, GPR_TIMESPAN));
	grpc_slice m = grpc_slice_from_static_string(method);
	grpc_call *call = grpc_channel_create_call(e->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m,
						   NULL, deadline, NULL);
	grpc_byte_buffer *send = NULL, *recv = NULL;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status = GRPC_STATUS_UNKNOWN;
	grpc_slice details = grpc_empty_slice();
	grpc_op ops[6];
	int rc;

	*resp = NULL;
	grpc_metadata_array_init(&init_md);
	grpc_metadata_array_init(&trail_md);
	send = kaa__etcd_pack(req);
	memset(ops, 0, sizeof(ops));
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = send;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &recv;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
	ops[5].data.recv_status_on_client.status = &status;
	ops[5].data.recv_status_on_client.status_details = &details;
	if (grpc_call_start_batch(call, ops, 6, (void *)1, NULL) != GRPC_CALL_OK) {
		rc = KAA_ERR_INTERNAL;
		goto out;
	}
	grpc_event ev = grpc_completion_queue_pluck(cq, (void *)1,
						    gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (ev.type != GRPC_OP_COMPLETE) {
		rc = KAA_ERR_INTERNAL;
		goto out;
	}
	if (status != GRPC_STATUS_OK) {
		char *d = grpc_slice_to_c_string(details);
		rc = kaa__etcd_status_err(status, d);
		KAA_DEBUG("etcd", "call_failed method=%s grpc_status=%d details=\"%s\"", method,
			  (int)status, d);
		gpr_free(d);
		goto out;
	}
	rc = kaa__etcd_unpack(recv, rd, resp);
out:
	if (send)
		grpc_byte_buffer_destroy(send);
	if (recv)
		grpc_byte_buffer_destroy(recv);
	grpc_slice_unref(details);
	grpc_metadata_array_destroy(&init_md);
	grpc_metadata_array_destroy(&trail_md);
	grpc_call_unref(call);
	grpc_completion_queue_shutdown(cq);
	grpc_completion_queue_destroy(cq);
	return rc;
}

static void bin_str(ProtobufCBinaryData *b, const char *s, size_t n)
{
	b->data = (uint8_t *)s;
	b->len = n;
}

int kaa__etcd_range(kaa__coord *c, const char *key, bool prefix, kaa__kv_list *out)
{
	kaa__etcd *e = (kaa__etcd *)c;
	Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RangeResponse *resp = NULL;
	char *end = NULL;
	size_t end_len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	bin_str(&req.key, key, strlen(key));
	if (prefix) {
		end = kaa__prefix_end(key, &end_len);
		bin_str(&req.range_end, end, end_len);
	}
	rc = unary(e, "/etcdserverpb.KV/Range", &req.base,
		   &etcdserverpb__range_response__descriptor, (ProtobufCMessage **)&resp);
	if (rc != KAA_OK)
		goto out;
	out->revision = resp->header ? resp->header->revision : 0;
	if (resp->n_kvs) {
		out->items = kaa__xcalloc(resp->n_kvs, sizeof(*out->items));
		for (size_t i = 0; i < resp->n_kvs; i++)
			kaa__etcd_kv_copy(&out->items[i], resp->kvs[i]);
		out->n = resp->n_kvs;
	}
out:
	if (rc != KAA_OK)
		kaa__kv_list_clear(out);
	free(end);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_put(kaa__coord *c, const char *key, const void *val, size_t len, int64_t lease,
		    int64_t *revision)
{
	Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__PutResponse *resp = NULL;
	bin_str(&req.key, key, strlen(key));
	req.value.data = (uint8_t *)val;
	req.value.len = len;
	req.lease = lease;
	int rc = unary((kaa__etcd *)c, "/etcdserverpb.KV/Put", &req.base,
		       &etcdserverpb__put_response__descriptor, (ProtobufCMessage **)&resp);
	if (rc == KAA_OK && revision)
		*revision = resp->header ? resp->header->revision : 0;
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_del(kaa__coord *c, const char *key, bool prefix, int64_t *deleted)
{
	Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__DeleteRangeResponse *resp = NULL;
	char *end = NULL;
	size_t end_len = 0;
	bin_str(&req.key, key, strlen(key));
	if (prefix) {
		end = kaa__prefix_end(key, &end_len);
		bin_str(&req.range_end, end, end_len);
	}
	int rc =
		unary((kaa__etcd *)c, "/etcdserverpb.KV/DeleteRange", &req.base,
		      &etcdserverpb__delete_range_response__descriptor, (ProtobufCMessage **)&resp);
	if (rc == KAA_OK && deleted)
		*deleted = resp->deleted;
	free(end);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_cas(kaa__coord *c, const char *key, int64_t expect_mod_rev, const void *val,
		    size_t len, int64_t lease, bool *succeeded, kaa__kv *current)
{
	Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
	Etcdserverpb__Compare *cmps[1] = {&cmp};
	Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
	Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
	Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
	Etcdserverpb__RequestOp op_ok = ETCDSERVERPB__REQUEST_OP__INIT;
	Etcdserverpb__RequestOp op_fail = ETCDSERVERPB__REQUEST_OP__INIT;
	Etcdserverpb__RequestOp *ok_ops[1] = {&op_ok}, *fail_ops[1] = {&op_fail};
	Etcdserverpb__TxnRequest req = ETCDSERVERPB__TXN_REQUEST__INIT;
	Etcdserverpb__TxnResponse *resp = NULL;
	size_t klen = strlen(key);
	int rc;

	bin_str(&cmp.key, key, klen);
	cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
	if (expect_mod_rev == 0) {
		/* "absent" is create_revision == 0, as etcd's own clients test it. */
		cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
		cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
		cmp.create_revision = 0;
	} else {
		cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
		cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
		cmp.mod_revision = expect_mod_rev;
	}
	if (val) {
		bin_str(&put.key, key, klen);
		put.value.data = (uint8_t *)val;
		put.value.len = len;
		put.lease = lease;
		op_ok.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
		op_ok.request_put = &put;
	} else {
		bin_str(&del.key, key, klen);
		op_ok.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
		op_ok.request_delete_range = &del;
	}
	bin_str(&get.key, key, klen);
	op_fail.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
	op_fail.request_range = &get;
	req.n_compare = 1;
	req.compare = cmps;
	req.n_success = 1;
	req.success = ok_ops;
	req.n_failure = 1;
	req.failure = fail_ops;
	rc = unary((kaa__etcd *)c, "/etcdserverpb.KV/Txn", &req.base,
		   &etcdserverpb__txn_response__descriptor, (ProtobufCMessage **)&resp);
	if (rc != KAA_OK)
		goto out;
	*succeeded = resp->succeeded;
	if (!resp->succeeded && current && resp->n_responses == 1 &&
	    resp->responses[0]->response_case ==
		    ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE) {
		Etcdserverpb__RangeResponse *rr = resp->responses[0]->response_range;
		if (rr->n_kvs > 0)
			kaa__etcd_kv_copy(current, rr->kvs[0]);
	}
out:
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_compact(kaa__coord *c, int64_t revision)
{
	Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
	Etcdserverpb__CompactionResponse *resp = NULL;
	req.revision = revision;
	req.physical = 1;
	int rc = unary((kaa__etcd *)c, "/etcdserverpb.KV/Compact", &req.base,
		       &etcdserverpb__compaction_response__descriptor, (ProtobufCMessage **)&resp);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_lease_grant(kaa__coord *c, int64_t ttl_s, int64_t *id)
{
	Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
	Etcdserverpb__LeaseGrantResponse *resp = NULL;
	req.ttl = ttl_s;
	int rc = unary((kaa__etcd *)c, "/etcdserverpb.Lease/LeaseGrant", &req.base,
		       &etcdserverpb__lease_grant_response__descriptor, (ProtobufCMessage **)&resp);
	if (rc == KAA_OK) {
		if (resp->error && resp->error[0]) {
			KAA_WARN("etcd", "lease_grant_failed error=\"%s\"", resp->error);
			rc = KAA_ERR_UNAVAILABLE;
		} else {
			*id = resp->id;
		}
	}
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_lease_revoke(kaa__coord *c, int64_t id)
{
	Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
	Etcdserverpb__LeaseRevokeResponse *resp = NULL;
	req.id = id;
	int rc =
		unary((kaa__etcd *)c, "/etcdserverpb.Lease/LeaseRevoke", &req.base,
		      &etcdserverpb__lease_revoke_response__descriptor, (ProtobufCMessage **)&resp);
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static int etcd_lease_keepalive(kaa__coord *c, int64_t id, int64_t *ttl_left)
{
	Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
	Etcdserverpb__LeaseKeepAliveResponse *resp = NULL;
	req.id = id;
	int rc = unary((kaa__etcd *)c, "/etcdserverpb.Lease/LeaseKeepAlive", &req.base,
		       &etcdserverpb__lease_keep_alive_response__descriptor,
		       (ProtobufCMessage **)&resp);
	if (rc == KAA_OK) {
		/* etcd answers TTL <= 0 for a lease that expired or never existed. */
		if (resp->ttl <= 0)
			rc = KAA_ERR_LEASE_LOST;
		else
			*ttl_left = resp->ttl;
	}
	if (resp)
		protobuf_c_message_free_unpacked(&resp->base, NULL);
	return rc;
}

static void etcd_free(kaa__coord *c)
{
	kaa__etcd *e = (kaa__etcd *)c;
	if (e->channel)
		grpc_channel_destroy(e->channel);
	free(e->target);
	free(e);
	grpc_shutdown();
}

static const kaa__coord_ops etcd_ops = {
	.kind = "etcd",
	.range = kaa__etcd_range,
	.put = etcd_put,
	.del = etcd_del,
	.cas = etcd_cas,
	.compact = etcd_compact,
	.lease_grant = etcd_lease_grant,
	.lease_revoke = etcd_lease_revoke,
	.lease_keepalive = etcd_lease_keepalive,
	.watch = kaa__etcd_watch,
	.watch_free = kaa__etcd_watch_free,
	.watch_revision = kaa__etcd_watch_revision,
	.free = etcd_free,
};

static bool is_ipv4_hostport(const char *s, size_t n)
{
	int dots = 0, colon = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.')
			dots++;
		else if (s[i] == ':')
			colon++;
		else if (s[i] < '0' || s[i] > '9')
			return false;
	}
	return dots == 3 && colon == 1;
}

/* "http://a:1,http://b:2" -> "ipv4:a:1,b:2" when all are IPv4 literals
 * (gRPC then fails over between them), else "dns:///first". */
static int build_target(const char *endpoints, char **out)
{
	size_t cap = strlen(endpoints) + 16;
	char *t = kaa__xmalloc(cap), *first = NULL;
	size_t n = 0;
	bool all_ipv4 = true;
	const char *p = endpoints;
	int count = 0;

	n = (size_t)snprintf(t, cap, "ipv4:");
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *hp = p;
		if (len > 7 && strncmp(p, "http://", 7) == 0) {
			hp += 7;
			len -= 7;
		} else if (len > 8 && strncmp(p, "https://", 8) == 0) {
			free(t);
			return KAA_ERR_INVAL; /* TLS to etcd not supported yet */
		}
		while (len && hp[len - 1] == '/')
			len--;
		if (len == 0 || !memchr(hp, ':', len)) {
			free(t);
			return KAA_ERR_INVAL;
		}
		if (!first)
			first = kaa__xstrndup(hp, len);
		if (!is_ipv4_hostport(hp, len))
			all_ipv4 = false;
		n += (size_t)snprintf(t + n, cap - n, "%s%.*s", count ? "," : "", (int)len, hp);
		count++;
		p = end ? end + 1 : p + strlen(p);
	}
	if (count == 0) {
		free(t);
		return KAA_ERR_INVAL;
	}
	if (!all_ipv4) {
		if (count > 1)
			KAA_WARN("etcd", "endpoints_not_ipv4 using=%s", first);
		snprintf(t, cap, "dns:///%s", first);
	}
	free(first);
	*out = t;
	return KAA_OK;
}

int kaa__coord_new_etcd(const char *endpoints, const kaa__coord_opts *opts, kaa__coord **out)
{
	kaa__etcd *e;
	int rc;
	grpc_arg args[5];
	grpc_channel_args cargs = {.num_args = 5, .args = args};

	*out = NULL;
	if (!endpoints || !*endpoints)
		return KAA_ERR_INVAL;
	e = kaa__xcalloc(1, sizeof(*e));
	rc = build_target(endpoints, &e->target);
	if (rc != KAA_OK) {
		free(e);
		return rc;
	}
	e->base.ops = &etcd_ops;
	e->timeout_ms = opts && opts->call_timeout_ms > 0 ? opts->call_timeout_ms : 5000;
	grpc_init();
	/* Reconnect quickly after an etcd restart; detect dead peers through
	 * HTTP/2 pings (etcd's default minimum ping interval is 5 s). */
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = (char *)GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
	args[0].value.integer = 100;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = (char *)GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	args[1].value.integer = 1000;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = (char *)GRPC_ARG_KEEPALIVE_TIME_MS;
	args[2].value.integer = 10000;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = (char *)GRPC_ARG_KEEPALIVE_TIMEOUT_MS;
	args[3].value.integer = 5000;
	args[4].type = GRPC_ARG_INTEGER;
	args[4].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[4].value.integer = MAX_MESSAGE_BYTES;
	grpc_channel_credentials *creds = grpc_insecure_credentials_create();
	e->channel = grpc_channel_create(e->target, creds, &cargs);
	grpc_channel_credentials_release(creds);
	if (!e->channel) {
		etcd_free(&e->base);
		return KAA_ERR_UNAVAILABLE;
	}
	*out = &e->base;
	return KAA_OK;
}
