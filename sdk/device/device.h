/*
 * device.h - kaa-device's private modules (not installed; main.c has the
 * tool's description):
 *
 *   flags.c      the command line: kaa__sim_config, usage, exit code 2
 *   fleet.c      running the N simulated devices on one runtime
 *   callbacks.c  the SDK callbacks every device's client is given
 *   output.c     every line and the --json summary it prints
 *
 * Names shared between them start with kaa__sim_ (the simulator), apart
 * from libkaa's kaa__ internals, which kaa-device never uses: it sees only
 * libkaa's public API (kaa/kaa.h).
 *
 * Threads: main()'s thread parses the flags and runs the fleet; callbacks
 * run on the SDK's network thread; output.c serialises what both print.
 */
#ifndef KAA_DEVICE_H
#define KAA_DEVICE_H

#include "kaa/kaa.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KAA__SIM_MAX_BOOT 16
#define KAA__SIM_MAX_COUNT 100000

/* The command line. Strings are borrowed from argv (the bootstrap list is
 * split in place) except file_profile, which the config owns. Read-only
 * once the devices run. */
typedef struct kaa__sim_config {
	char *boot_list; /* --bootstrap as given (split into boot) */
	char *boot[KAA__SIM_MAX_BOOT];
	size_t nboot;
	const char *token, *state_dir, *profile, *profile_file;
	char *file_profile; /* --profile-file's contents (profile points at it) */
	const char *tpl, *ca, *sub;
	const char *client_cert; /* --client-cert: mutual TLS (one device) */
	uint64_t count, duration, total, batch;
	double rate;
	bool until_acked, fsync_each, json, verbose;
	/* owners and events */
	const char *owner, *owner_token, *attach_token;
	const char *token_prefix, *ev_fqn, *ev_target;
	uint64_t ev_interval, ev_count, connect_to;
	int32_t keepalive, liveness;
} kaa__sim_config;

/* One simulated device. The fleet's thread owns the plain fields; the
 * atomics are also written by the callbacks on the network thread. */
typedef struct kaa__sim_device {
	int index;
	const kaa__sim_config *cfg; /* borrowed */
	kaa_client *client;
	uint64_t seq;       /* next {seq} value */
	uint64_t generated; /* records generated in this run */
	double budget;      /* fractional records owed by the rate */
	char dir[PATH_MAX];
	atomic_bool established;
	atomic_bool stopped; /* gave up for good (revoked) */
	/* owners and events */
	char token[1024];         /* --endpoint-token-prefix: "P-<index>" */
	atomic_bool registered;   /* a HelloAck in this run */
	atomic_bool attach_asked; /* kaa_client_attach_owner called */
	atomic_bool attached;     /* attached to an owner (answer or notification) */
	atomic_bool ever_attached;
	uint64_t events_n;     /* events sent in this run (the body's n) */
	int64_t next_event_ms; /* monotonic ms of the next event, 0: now */
} kaa__sim_device;

/* ---- flags.c ---------------------------------------------------------- */

/* Parses argv into *cfg (argv's bootstrap list is split in place). Returns
 * true when the devices should run; false when the process should exit
 * with *exit_code: 0 after --help (usage on stdout) or --version, 2 after a
 * bad command line (usage on stderr) or an unreadable --profile-file (a
 * message on stderr). On false *cfg holds nothing to free. */
bool kaa__sim_flags_parse(int argc, char **argv, kaa__sim_config *cfg, int *exit_code);
/* Frees what *cfg owns; cfg may be NULL. */
void kaa__sim_config_clear(kaa__sim_config *cfg);
/* The whole profile file (at most 16 KiB; malloc'd, the caller frees), or
 * NULL when it cannot be read, is empty or is larger. */
char *kaa__sim_read_profile(const char *path);

/* ---- fleet.c ---------------------------------------------------------- */

/* Runs cfg->count devices until SIGTERM/SIGINT, --duration, --until-acked
 * or every device stopped for good; prints the --json summary. Returns the
 * process exit code (0, or 1 when the runtime or a client cannot start).
 * Blocks SIGTERM/SIGINT/SIGHUP in the calling thread; call it before any
 * other thread exists. */
int kaa__sim_fleet_run(const kaa__sim_config *cfg);

/* ---- callbacks.c ------------------------------------------------------ */

/* Every device's callbacks; user is its kaa__sim_device. */
extern const kaa_callbacks kaa__sim_callbacks;

/* ---- output.c ---------------------------------------------------------- */

/* Turns the --verbose lines on or off; before any device runs. */
void kaa__sim_output_init(bool verbose);
/* With --verbose: "device=N ts_ms=T " then the formatted text, on stderr. */
void kaa__sim_event_line(const kaa__sim_device *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* With --verbose: a line in the exact shape scripts match
 * ("owner_attached device=N ..."), without event_line's prefix. */
void kaa__sim_raw_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The protocol's ErrorCode name of code (docs/protocol.md), or the number
 * written into buf. */
const char *kaa__sim_code_name(int code, char *buf, size_t len);
/* Counts one received event's latency for the --json percentiles. Any
 * thread. */
void kaa__sim_latency_add(int64_t latency_ms);
/* Prints the --json summary of devs[0..cfg->count) on stdout; after the
 * runtime was freed (no callback runs any more). */
void kaa__sim_print_summary(const kaa__sim_config *cfg, const kaa__sim_device *devs);
/* Milliseconds on the wall clock (event bodies, line stamps) and on the
 * monotonic clock (schedules). */
int64_t kaa__sim_wall_ms(void);
int64_t kaa__sim_mono_ms(void);

#endif
