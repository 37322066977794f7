/*
 * meta_store_suite.h - one CUnit suite for the meta_store.h interface, run
 * against SQLite (tests/unit/test_meta_store_sqlite.c) and PostgreSQL
 * (tests/integration/test_meta_store_pg.c).
 */
#ifndef KAA_TEST_META_STORE_SUITE_H
#define KAA_TEST_META_STORE_SUITE_H

#include "store/meta_store.h"

typedef struct meta_suite_env {
	/* The database every test of this run shares (migrated by the first
	 * open); tests use names unique to the run. */
	const char *url;
	/* A malloc'd URL of a new, empty database (for concurrent migrations). */
	char *(*fresh_url)(void);
	/* Expected kaa__meta_store_backend(): "sqlite" or "postgresql". */
	const char *backend;
} meta_suite_env;

/* Adds the generic tests as a CUnit suite named name; env is borrowed and
 * must outlive the run. */
int meta_suite_add(const char *name, const meta_suite_env *env);

/* Opens env->url (CUnit failure and NULL when it cannot). */
kaa__meta_store *meta_suite_open(void);
/* A name unique to this process run: "<base>-<pid>-<n>"; any thread (a
 * thread-local buffer of 8 rotating slots). */
const char *meta_suite_name(const char *base);

#endif
