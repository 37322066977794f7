/*
 * log_appender.h - where an application's log records go. The control
 * service keeps log-appender objects (REST /applications/{app}/log-appenders,
 * meta_store kind log-appender: name + settings JSON); the operations service
 * builds one kaa__log_appender per object and writes every accepted batch to
 * all of them before it acknowledges the batch to the device.
 *
 * Settings (the object's "settings" JSON object; unknown members are an
 * error so a typo is not silently ignored):
 *
 *   {"type": "endpoint-store"}
 *       the endpoint store's log collection (kaa__ep_logs_append): the
 *       log_records table in SQLite, the log_records collection in MongoDB.
 *
 *   {"type": "file", "file": "NAME.jsonl"}
 *       JSON lines in <file_dir>/app-<app_id>/NAME (file optional, default
 *       "appender-<id>.jsonl"; NAME is 1..128 of [A-Za-z0-9._-], not starting
 *       with '.'). Users of the REST API never choose a directory: file_dir
 *       is the node's, and the app-<id> level keeps applications apart. One
 *       line per record:
 *         {"app":1,"endpoint":"<key hash>","batch":"<batch id>","index":0,
 *          "batch_size":3,"received_ms":1764201600000,"schema_version":1,
 *          "record":<JSON>}
 *       (the record as the device sent it, its line breaks turned into
 *       spaces). The lines are fsync'ed before append returns (group
 *       commit: concurrent appends share one fsync). Idempotency: a sidecar
 *       SQLite file NAME.idx lists the stored batches with the file offset
 *       where each ends; a batch found there is not written again
 *       (*duplicate = true). A batch in the file whose index row was lost
 *       (crash) is indexed again at the next open if it is whole, cut off if
 *       not (it was never acknowledged), so the file never holds a batch
 *       twice and never loses an acknowledged one.
 *       One process per file: the file is locked (flock); handles of one
 *       process on the same file share one open file.
 *
 * Threads: kaa__log_appender_append may be called from any number of
 * threads at once (it blocks on I/O: never from an event-loop thread);
 * new/free from any thread, free when no append is in progress.
 */
#ifndef KAA_LOG_APPENDER_H
#define KAA_LOG_APPENDER_H

#include "store/endpoint_store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kaa__log_appender kaa__log_appender;

/* What the node gives every appender (borrowed; must outlive the appenders). */
typedef struct kaa__log_appender_env {
	kaa__ep_store *store; /* for "endpoint-store"; may be NULL if unused */
	const char *file_dir; /* for "file": base directory, created if missing */
} kaa__log_appender_env;

/*
 * Builds the appender of the log-appender object (app_id, id, name) with
 * settings_json (borrowed; name may be NULL and is not used for storage).
 * "file" opens (creating) the file and its index and cuts off an unindexed
 * tail left by a crash.
 * Errors: KAA_ERR_INVAL (malformed settings, unknown type or member, bad
 * file name, app_id/id < 1, the env lacks what the type needs; err gets a
 * one-line reason if err/errlen given), KAA_ERR_EXISTS (the file is locked by
 * another process), KAA_ERR_IO, KAA_ERR_NOMEM. *out is NULL on error.
 */
int kaa__log_appender_new(int64_t app_id, int64_t id, const char *name, const char *settings_json,
			  const kaa__log_appender_env *env, kaa__log_appender **out, char *err,
			  size_t errlen);
void kaa__log_appender_free(kaa__log_appender *a); /* accepts NULL */

/* Checks settings_json against the rules above without opening anything
 * (the control service validates REST input with it). KAA_ERR_INVAL with a
 * one-line reason in err ("settings.file: ..."). Any thread. */
int kaa__log_appender_check(const char *settings_json, char *err, size_t errlen);

/* "endpoint-store" or "file"; static. */
const char *kaa__log_appender_type(const kaa__log_appender *a);
/* The log-appender object's id and app id given at new. */
int64_t kaa__log_appender_id(const kaa__log_appender *a);

/*
 * Writes one batch durably and idempotently, with the arguments and rules
 * of kaa__ep_logs_append (records borrowed, each one JSON value of at most
 * KAA_EP_LOG_RECORD_MAX bytes; n 1..1000; *duplicate required).
 * Errors: those of kaa__ep_logs_append; for files KAA_ERR_IO (write, fsync
 * or index failure; nothing of the batch remains in the file).
 */
int kaa__log_appender_append(kaa__log_appender *a, int64_t app_id, const char *key_hash,
			     const char *batch_id, int64_t schema_version,
			     const char *const *records, size_t n, int64_t received_ms,
			     bool *duplicate);

#endif
