/*
 * coord_suite.h - one CUnit suite for the coord.h interface, run against
 * the local backend (unit tests) and a real etcd (integration tests).
 */
#ifndef KAA_TEST_COORD_SUITE_H
#define KAA_TEST_COORD_SUITE_H

#include "coord/coord.h"
#include "test_util.h" /* kaa__test_wait_until() */

#include <pthread.h>
#include <stdbool.h>

/* Returns a new coord handle for the backend under test. */
typedef kaa__coord *(*coord_factory)(void);

/* Adds the generic tests as a CUnit suite named name. */
int coord_suite_add(const char *name, coord_factory factory);

/* A recording watch callback set used by the tests. */
typedef struct rec_watch {
	pthread_mutex_t mu;
	char **keys; /* "P:key=value" or "D:key" per event, in order */
	int64_t *revs;
	size_t n, cap;
	int resets;
	size_t last_reset_n;
	kaa__watch_cb cb;
} rec_watch;

void rec_init(rec_watch *r);
void rec_free(rec_watch *r);
size_t rec_count(rec_watch *r);
/* kaa__test_wait_until predicate: the rec_watch (arg) has received a reset. */
bool has_reset(void *arg);

#endif
