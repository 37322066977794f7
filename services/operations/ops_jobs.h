/*
 * ops_jobs.h - the background thread's job queues (layer L1 of
 * services/operations; may include ops_state.h, ops_io.h, ops_server.h and
 * lib/ only): application refreshes and resets (few, deduplicated) and
 * per-session catch-ups (a FIFO: all have the same delay). What a job does
 * is the service's top (operations.c), reached through ops->run_job, so
 * this layer never calls upward.
 *
 * Threads: kaa__opl_schedule from any thread (takes ops->mu);
 * kaa__opl_jobs_main is the background thread itself; kaa__opl_jobs_clear
 * only after that thread was joined.
 */
#ifndef KAA_OPS_JOBS_H
#define KAA_OPS_JOBS_H

#include "operations/ops_state.h"

#include <stdint.h>

/* Queues a job of kind OPS_JOB_* for id, due in delay_ms; a queued
 * refresh/reset of the same id only moves earlier. */
void kaa__opl_schedule(kaa__operations *ops, int kind, int64_t id, int64_t delay_ms);
/* The background thread (pthread start routine, arg: the kaa__operations):
 * runs due jobs through ops->run_job, one at a time without ops->mu held,
 * until ops->stopping (broadcast ops->cv after setting it). */
void *kaa__opl_jobs_main(void *arg);
/* Frees the jobs left queued (shutdown). */
void kaa__opl_jobs_clear(kaa__operations *ops);

#endif
