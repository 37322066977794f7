/*
 * ops_jobs.c - the background thread's job queues (ops_jobs.h).
 */
#include "operations/ops_jobs.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <stdlib.h>
#include <time.h>

void kaa__opl_schedule(kaa__operations *ops, int kind, int64_t id, int64_t delay_ms)
{
	int64_t due = kaa__wall_ms() + delay_ms;
	if (kind == OPS_JOB_CATCHUP) {
		ops_job *c = kaa__xcalloc(1, sizeof(*c));
		c->kind = kind;
		c->id = id;
		c->due_ms = due;
		pthread_mutex_lock(&ops->mu);
		if (ops->catchup_tail)
			ops->catchup_tail->next = c;
		else
			ops->catchup_head = c;
		ops->catchup_tail = c;
		pthread_mutex_unlock(&ops->mu);
		pthread_cond_signal(&ops->cv);
		return;
	}
	pthread_mutex_lock(&ops->mu);
	for (ops_job *j = ops->jobs; j; j = j->next) {
		if (j->kind == kind && j->id == id) {
			if (due < j->due_ms)
				j->due_ms = due;
			pthread_mutex_unlock(&ops->mu);
			pthread_cond_signal(&ops->cv);
			return;
		}
	}
	ops_job *j = kaa__xcalloc(1, sizeof(*j));
	j->kind = kind;
	j->id = id;
	j->due_ms = due;
	j->next = ops->jobs;
	ops->jobs = j;
	pthread_mutex_unlock(&ops->mu);
	pthread_cond_signal(&ops->cv);
}

void *kaa__opl_jobs_main(void *arg)
{
	kaa__operations *ops = arg;
	pthread_mutex_lock(&ops->mu);
	while (!ops->stopping) {
		int64_t now = kaa__wall_ms(), next = now + 1000;
		ops_job **best = NULL;
		for (ops_job **pp = &ops->jobs; *pp; pp = &(*pp)->next) {
			if ((*pp)->due_ms <= now && (!best || (*pp)->due_ms < (*best)->due_ms))
				best = pp;
			if ((*pp)->due_ms < next)
				next = (*pp)->due_ms;
		}
		ops_job *c = ops->catchup_head;
		if (!best && c && c->due_ms <= now) {
			ops->catchup_head = c->next;
			if (!ops->catchup_head)
				ops->catchup_tail = NULL;
			pthread_mutex_unlock(&ops->mu);
			ops->run_job(ops, c);
			free(c);
			pthread_mutex_lock(&ops->mu);
			continue;
		}
		if (c && c->due_ms < next)
			next = c->due_ms;
		if (best) {
			ops_job *j = *best;
			*best = j->next;
			pthread_mutex_unlock(&ops->mu);
			ops->run_job(ops, j);
			free(j);
			pthread_mutex_lock(&ops->mu);
			continue;
		}
		struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
		pthread_cond_timedwait(&ops->cv, &ops->mu, &ts);
	}
	pthread_mutex_unlock(&ops->mu);
	return NULL;
}

void kaa__opl_jobs_clear(kaa__operations *ops)
{
	while (ops->jobs) {
		ops_job *j = ops->jobs;
		ops->jobs = j->next;
		free(j);
	}
	while (ops->catchup_head) {
		ops_job *j = ops->catchup_head;
		ops->catchup_head = j->next;
		free(j);
	}
}
