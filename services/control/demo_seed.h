/*
 * demo_seed.h - demo data for `make run`.
 */
#ifndef KAA_CONTROL_DEMO_SEED_H
#define KAA_CONTROL_DEMO_SEED_H

#include "store/meta_store.h"

#include <stddef.h>

/* When no tenant "demo" exists, creates it with an application "demo-app"
 * (trustful), profile-client, configuration and log schemas, a group "all"
 * with a configuration, a mandatory topic "news" and a file log appender;
 * then (or when it already existed) copies the application token into
 * token (size >= 64 holds any token). store is borrowed; any thread, but
 * two concurrent calls may both create (the second then fails with
 * KAA_ERR_EXISTS). Errors of the metadata store; KAA_ERR_NOTFOUND when
 * "demo" exists without "demo-app". */
int kaa__demo_seed(kaa__meta_store *store, char *token, size_t size);

#endif
