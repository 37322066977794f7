/*
 * config.h - kaa-node's settings: defaults, then --config FILE, then
 * KAA_<NAME> environment variables, then flags (a flag wins).
 * Names (flag / env / config-file key):
 *   --services LIST      KAA_SERVICES        services
 *   --node-id ID         KAA_NODE_ID         node-id
 *   --cluster NAME       KAA_CLUSTER         cluster
 *   --etcd URLS          KAA_ETCD            etcd
 *   --sql URL            KAA_SQL             sql
 *   --nosql URL          KAA_NOSQL           nosql
 *   --host ADDR          KAA_HOST            host
 *   --control-port N     KAA_CONTROL_PORT    control-port
 *   --bootstrap-port N   KAA_BOOTSTRAP_PORT  bootstrap-port
 *   --operations-port N  KAA_OPERATIONS_PORT operations-port
 *   --internode-port N   KAA_INTERNODE_PORT  internode-port
 *   --bind ADDR          KAA_BIND            bind
 *   --lease-ttl SECONDS  KAA_LEASE_TTL       lease-ttl
 *   --tls-cert FILE      KAA_TLS_CERT        tls-cert   (operations wss; with --tls-key)
 *   --tls-key FILE       KAA_TLS_KEY         tls-key
 *   --drain-timeout SECONDS KAA_DRAIN_TIMEOUT drain-timeout (SIGTERM drain, default 30)
 *   --idle-timeout SECONDS  KAA_IDLE_TIMEOUT  idle-timeout (device sessions, default 120)
 *   --appender-dir DIR   KAA_APPENDER_DIR    appender-dir (file log appenders, ./data/logs)
 *   --console-dir DIR    KAA_CONSOLE_DIR     console-dir (web console files; default
 *                        BIN/../console, else /usr/share/kaa/console)
 *   --log-inflight-mb N  KAA_LOG_INFLIGHT_MB log-inflight-mb (log bytes queued for appenders, 64)
 *   --rebalance-threshold F KAA_REBALANCE_THRESHOLD rebalance-threshold (0.2)
 *   --rebalance-interval S  KAA_REBALANCE_INTERVAL  rebalance-interval (30; 0: off)
 *   --rebalance-cooldown S  KAA_REBALANCE_COOLDOWN  rebalance-cooldown (60)
 *   --rebalance-min-sessions N KAA_REBALANCE_MIN_SESSIONS rebalance-min-sessions (50)
 *   --demo[=true|false]  KAA_DEMO            demo (seed demo data, print a device command)
 *   --log-level LEVEL    KAA_LOG_LEVEL       log-level
 *   --config FILE        KAA_CONFIG          (the file itself)
 * The config file holds "key = value" lines; '#' starts a comment.
 * Pure functions; not thread-safe (getopt), call from main only.
 */
#ifndef KAA_NODE_CONFIG_H
#define KAA_NODE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define KAA_NODE_VERSION "0.1.0"

typedef struct kaa_node_config {
	bool control, operations, bootstrap; /* from services */
	char *services;
	char *node_id;
	char *cluster;
	char *etcd; /* NULL: standalone */
	char *sql;
	char *nosql;
	char *host;
	char *bind;
	int control_port;
	int bootstrap_port;
	int operations_port;
	int internode_port;
	int lease_ttl;
	/* Operations URLs devices are given for this node (bootstrap answers,
	 * redirects), comma separated, preferred first, at most
	 * KAA_NODE_MAX_ADVERTISE, each a ws:// or wss:// URL
	 * (proto/device_url.h). NULL: ws[s]://host:operations-port/. */
	char *advertise;
	char *tls_cert; /* NULL: plain ws */
	/* --client-ca: the operations port requires device certificates from
	 * this CA (mutual TLS; with tls_cert) */
	char *client_ca;
	/* --https-services: these ports serve HTTPS with tls_cert/tls_key */
	bool https_control, https_bootstrap;
	char *https_services;
	/* --hello-proof always: every Hello must prove possession of the
	 * device key (kaa.v2); default "provisioned": provisioned apps only */
	bool proof_always;
	char *tls_key;
	int drain_timeout; /* seconds */
	int idle_timeout;  /* seconds: device sessions silent this long are closed */
	char *appender_dir;
	char *console_dir;           /* NULL: kaa__console_default_dir */
	int log_inflight_mb;         /* node-wide budget of log bytes awaiting appenders */
	double rebalance_threshold;  /* control leader, lib/coord/rebalance.h */
	int rebalance_interval;      /* seconds; 0: off */
	int rebalance_cooldown;      /* seconds */
	long rebalance_min_sessions; /* the busiest node's excess over the mean, at least */
	bool demo;                   /* seed demo data (control) and print how to connect */
	char *log_level;
	char *config_file;
} kaa_node_config;

enum {
	KAA_CONFIG_OK = 0,
	KAA_CONFIG_HELP = 1,    /* --help: print usage, exit 0 */
	KAA_CONFIG_VERSION = 3, /* --version: print version, exit 0 */
	KAA_CONFIG_USAGE = 2,   /* bad flag/value: err says why; exit 2 */
};

/* Fills cfg (which this zeroes first) from argv, envp (NULL-terminated
 * "NAME=value" array) and the config file. On KAA_CONFIG_USAGE, err holds
 * a one-line reason. cfg must be released with kaa__node_config_clear in
 * every case. */
int kaa__node_config_parse(int argc, char **argv, char **envp, kaa_node_config *cfg, char *err,
			   size_t errlen);
void kaa__node_config_clear(kaa_node_config *cfg);
/* The usage text (static). */
const char *kaa__node_usage(void);

/* Copies the next URL of a --advertise list into url (cap bytes) and
 * moves *list past it: 1, 0 at the end, -1 when it does not fit. */
int kaa__node_advertise_next(const char **list, char *url, size_t cap);

#endif
