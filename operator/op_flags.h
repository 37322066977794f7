/*
 * op_flags.h - kaa-operator's command line (the contract the Helm chart
 * relies on; see charts/kaa-operator/README.md and kaa__op_usage).
 * Pure functions apart from printing help/version; main thread only
 * (getopt state).
 */
#ifndef KAA_OP_FLAGS_H
#define KAA_OP_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct kaa__op_flags {
	int http_port; /* 0..65535, default 8080 */
	bool leader_elect;
	const char *lease_name; /* borrowed from argv or a literal */
	int lease_duration_ms, renew_deadline_ms, retry_ms;
	char *namespaces_arg; /* owned; namespaces point into it */
	char **namespaces;    /* NULL-terminated, owned array; NULL: all */
	const char *kubeconfig, *etcd_override, *log_level; /* borrowed */
	/* 0: the controller's default */
	int workers, resync_ms, autoscale_ms, scale_down_ms, finalizer_attempts;
} kaa__op_flags;

/* Returns 0 (run), 1 (help or version printed on stdout: exit 0) or 2
 * (bad flags: err holds the reason; print it and the usage, exit 2).
 * Always call kaa__op_flags_clear afterwards. */
int kaa__op_flags_parse(int argc, char **argv, kaa__op_flags *f, char *err, size_t errsz);
void kaa__op_flags_clear(kaa__op_flags *f);
void kaa__op_usage(FILE *out);

/* Go's time.ParseDuration subset: one or more <decimal><unit> with units
 * ns us µs ms s m h, or "0". *ms rounded up. KAA_ERR_INVAL otherwise or
 * beyond INT_MAX ms. */
int kaa__go_duration_ms(const char *s, int *ms);

#endif
