/*
 * etcd_internal.h - shared between etcd_client.c (unary calls, the coord
 * backend) and etcd_watch.c (watch streams). Not for other modules.
 */
#ifndef KAA_ETCD_INTERNAL_H
#define KAA_ETCD_INTERNAL_H

#include "coord/coord_internal.h"

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#include "etcd/kv.pb-c.h"
#include "etcd/rpc.pb-c.h"

typedef struct kaa__etcd {
	kaa__coord base;
	grpc_channel *channel;
	char *target; /* gRPC target string, for logs */
	int timeout_ms;
} kaa__etcd;

/* Serialises m into a new byte buffer (caller destroys it). Never NULL:
 * gRPC's allocator aborts on OOM like ours. */
grpc_byte_buffer *kaa__etcd_pack(const ProtobufCMessage *m);
/* Decodes bb with descriptor d; the caller frees with protobuf_c_message_free_unpacked. */
int kaa__etcd_unpack(grpc_byte_buffer *bb, const ProtobufCMessageDescriptor *d,
		     ProtobufCMessage **out);
/* Maps a finished call's status to a kaa_err (KAA_OK for GRPC_STATUS_OK). */
int kaa__etcd_status_err(grpc_status_code st, const char *details);
/* Copies an etcd KeyValue into kv (replacing its strings). */
void kaa__etcd_kv_copy(kaa__kv *kv, const Mvccpb__KeyValue *src);
/* Range over one key or a prefix; used by the watch to list. */
int kaa__etcd_range(kaa__coord *c, const char *key, bool prefix, kaa__kv_list *out);

int kaa__etcd_watch(kaa__coord *c, const char *key, int flags, int64_t start_rev,
		    const kaa__watch_cb *cb, kaa__watch **out);
void kaa__etcd_watch_free(kaa__watch *w);
int64_t kaa__etcd_watch_revision(kaa__watch *w);

#endif
