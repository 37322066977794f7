/*
 * appender_type.h - internal to lib/appender: what one appender type
 * (endpoint store, file, webhook, kafka, ...) gives log_appender.c. The
 * generic part parses the settings, dispatches by "type", wraps every
 * callback to keep the per-appender metrics, and implements the
 * synchronous append on top of submit. A new type is one file with one
 * const kaa__appender_type and one line in log_appender.c's table.
 */
#ifndef KAA_APPENDER_TYPE_H
#define KAA_APPENDER_TYPE_H

#include "appender/log_appender.h"
#include "base/metrics.h"

#include <yajl/yajl_tree.h>

/* What open gets (borrowed for the call; copy what you keep). */
typedef struct kaa__appender_args {
	int64_t app_id, id;
	const char *name; /* may be NULL */
	const kaa__log_appender_env *env;
	/* retries of this appender (kaa_log_appender_retries_total); a type
	 * that retries counts them here; may be NULL (no metrics). Valid
	 * until the metrics registry is freed. */
	kaa__counter *retries;
} kaa__appender_args;

typedef struct kaa__appender_type {
	const char *name; /* the settings' "type" */
	/* true: submit copies the batch and calls back later from a thread of
	 * its own (kaa__log_appender_queues) */
	bool queues;
	/*
	 * Checks the settings object (a yajl object whose "type" is name)
	 * without opening anything: KAA_OK, or KAA_ERR_INVAL with err set to
	 * "settings.<member>: <why>" (the control service turns the part
	 * before ": " into the JSON path of its 400). Any thread.
	 */
	int (*check)(yajl_val settings, char *err, size_t errlen);
	/*
	 * Builds the appender from checked settings; *impl is passed to the
	 * other functions. Errors as kaa__log_appender_new (err set).
	 */
	int (*open)(const kaa__appender_args *args, yajl_val settings, void **impl, char *err,
		    size_t errlen);
	/*
	 * The batch is valid (checked by the caller) and belongs to this
	 * appender's application. Calls done(arg, st) exactly once, inside or
	 * later; the rules of kaa__log_done_fn.
	 */
	void (*submit)(void *impl, const kaa__log_batch *b, kaa__log_done_fn *done, void *arg);
	/*
	 * Frees impl. Every batch still pending is completed (KAA_LOG_RETRY,
	 * err KAA_ERR_CANCELED, "appender closed") before close returns, so
	 * no callback runs afterwards. May be called from inside one of its
	 * own callbacks (on its own thread): then it must not join itself.
	 */
	void (*close)(void *impl);
} kaa__appender_type;

extern const kaa__appender_type kaa__appender_store;
extern const kaa__appender_type kaa__appender_file;
extern const kaa__appender_type kaa__appender_webhook;
extern const kaa__appender_type kaa__appender_kafka;

/* Helpers for types. err gets fmt (when err/errlen given). */
void kaa__appender_set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Completes with the given result (reason "" when NULL). */
void kaa__appender_done(kaa__log_done_fn *done, void *arg, kaa__log_result r, int err,
			bool duplicate, const char *reason);

#endif
