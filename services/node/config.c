#include "node/config.h"

#include "coord/node_record.h"
#include "proto/device_url.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_CONFIG_BYTES (64 * 1024)

enum {
	OPT_SERVICES = 256,
	OPT_NODE_ID,
	OPT_CLUSTER,
	OPT_ETCD,
	OPT_SQL,
	OPT_NOSQL,
	OPT_HOST,
	OPT_ADVERTISE,
	OPT_BIND,
	OPT_CONTROL_PORT,
	OPT_BOOTSTRAP_PORT,
	OPT_OPERATIONS_PORT,
	OPT_INTERNODE_PORT,
	OPT_LEASE_TTL,
	OPT_LOG_LEVEL,
	OPT_TLS_CERT,
	OPT_HELLO_PROOF,
	OPT_HTTPS_SERVICES,
	OPT_CLIENT_CA,
	OPT_TLS_KEY,
	OPT_DRAIN_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_APPENDER_DIR,
	OPT_CONSOLE_DIR,
	OPT_LOG_INFLIGHT_MB,
	OPT_REBALANCE_THRESHOLD,
	OPT_REBALANCE_INTERVAL,
	OPT_REBALANCE_COOLDOWN,
	OPT_REBALANCE_MIN_SESSIONS,
	OPT_DEMO,
	OPT_CONFIG,
	OPT_HELP,
	OPT_VERSION,
};

static const struct option options[] = {
	{"services", required_argument, NULL, OPT_SERVICES},
	{"node-id", required_argument, NULL, OPT_NODE_ID},
	{"cluster", required_argument, NULL, OPT_CLUSTER},
	{"etcd", required_argument, NULL, OPT_ETCD},
	{"sql", required_argument, NULL, OPT_SQL},
	{"nosql", required_argument, NULL, OPT_NOSQL},
	{"host", required_argument, NULL, OPT_HOST},
	{"advertise", required_argument, NULL, OPT_ADVERTISE},
	{"bind", required_argument, NULL, OPT_BIND},
	{"control-port", required_argument, NULL, OPT_CONTROL_PORT},
	{"bootstrap-port", required_argument, NULL, OPT_BOOTSTRAP_PORT},
	{"operations-port", required_argument, NULL, OPT_OPERATIONS_PORT},
	{"internode-port", required_argument, NULL, OPT_INTERNODE_PORT},
	{"lease-ttl", required_argument, NULL, OPT_LEASE_TTL},
	{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	{"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	{"hello-proof", required_argument, NULL, OPT_HELLO_PROOF},
	{"https-services", required_argument, NULL, OPT_HTTPS_SERVICES},
	{"client-ca", required_argument, NULL, OPT_CLIENT_CA},
	{"tls-key", required_argument, NULL, OPT_TLS_KEY},
	{"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
	{"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
	{"appender-dir", required_argument, NULL, OPT_APPENDER_DIR},
	{"console-dir", required_argument, NULL, OPT_CONSOLE_DIR},
	{"log-inflight-mb", required_argument, NULL, OPT_LOG_INFLIGHT_MB},
	{"rebalance-threshold", required_argument, NULL, OPT_REBALANCE_THRESHOLD},
	{"rebalance-interval", required_argument, NULL, OPT_REBALANCE_INTERVAL},
	{"rebalance-cooldown", required_argument, NULL, OPT_REBALANCE_COOLDOWN},
	{"rebalance-min-sessions", required_argument, NULL, OPT_REBALANCE_MIN_SESSIONS},
	{"demo", optional_argument, NULL, OPT_DEMO},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{NULL, 0, NULL, 0},
};

const char *kaa__node_usage(void)
{
	return "usage: kaa-node [options]\n"
	       "  --services LIST        control,operations,bootstrap (default: all three)\n"
	       "  --node-id ID           node id (default: hostname)\n"
	       "  --cluster NAME         cluster name (default: kaa)\n"
	       "  --etcd URL[,URL...]    etcd endpoints (absent: standalone mode)\n"
	       "  --sql URL              sqlite:PATH (default sqlite:./data/kaa.db) or postgresql://...\n"
	       "  --nosql URL            sqlite:PATH (default sqlite:./data/endpoints.db) or mongodb://...\n"
	       "  --host ADDR            address advertised to other nodes (default: hostname)\n"
	       "  --advertise URL[,URL...]  operations URLs devices are given for this node,\n"
	       "                         preferred first, ws:// or wss:// with host, port, path\n"
	       "                         (e.g. wss://ops-0.devices.example.com/; default\n"
	       "                         ws[s]://HOST:OPERATIONS-PORT/)\n"
	       "  --bind ADDR            address to listen on (default: 0.0.0.0)\n"
	       "  --control-port N       (default 8080)\n"
	       "  --bootstrap-port N     (default 8081)\n"
	       "  --operations-port N    (default 9080)\n"
	       "  --internode-port N     (default 9091)\n"
	       "  --lease-ttl SECONDS    registry and election lease TTL (default 10)\n"
	       "  --tls-cert FILE        PEM certificate for wss on the operations port (with --tls-key)\n"
	       "  --tls-key FILE         PEM private key for --tls-cert\n"
	       "  --client-ca FILE       mutual TLS on the operations port: devices present a\n"
	       "                         certificate from this CA for the key they register\n"
	       "                         (needs --tls-cert)\n"
	       "  --https-services LIST  control,bootstrap: serve these ports over HTTPS with\n"
	       "                         --tls-cert/--tls-key (default: none, plain HTTP)\n"
	       "  --hello-proof MODE     devices must prove they hold their key (kaa.v2): for\n"
	       "                         'provisioned' applications (default) or 'always'\n"
	       "  --drain-timeout SECONDS  on SIGTERM, redirect devices for at most this long (default 30)\n"
	       "  --idle-timeout SECONDS  close device sessions silent this long (default 120;\n"
	       "                         announced to devices, whose SDK pings at a third of it)\n"
	       "  --appender-dir DIR     base directory of file log appenders (default ./data/logs)\n"
	       "  --console-dir DIR      the web console's built files, served at /console/ by\n"
	       "                         control (default: BIN/../console, else\n"
	       "                         /usr/share/kaa/console)\n"
	       "  --log-inflight-mb N    log bytes queued for appenders, node-wide (default 64;\n"
	       "                         beyond it batches are answered RATE_LIMITED)\n"
	       "  --rebalance-threshold F  control leader: rebalance when the busiest operations node\n"
	       "                         exceeds the mean by this fraction (default 0.2)\n"
	       "  --rebalance-interval SECONDS  how often the leader checks (default 30; 0: never)\n"
	       "  --rebalance-cooldown SECONDS  no new plan this long after one (default 60, at least 13)\n"
	       "  --rebalance-min-sessions N  and only when the busiest node is also this many\n"
	       "                         sessions above the mean (default 50)\n"
	       "  --demo[=true|false]    with control: create a demo tenant and application if\n"
	       "                         absent and print how to connect a simulated device\n"
	       "  --log-level LEVEL      debug, info, warn, error (default info)\n"
	       "  --config FILE          \"key = value\" lines with the names above\n"
	       "  --help, --version\n"
	       "Every option is also read from KAA_<NAME> (e.g. KAA_NODE_ID); a flag wins.\n";
}

static int set_str(char **dst, const char *v)
{
	char *c = strdup(v);
	if (!c)
		return -1;
	free(*dst);
	*dst = c;
	return 0;
}

static int parse_port(const char *v, int *out)
{
	char *end;
	errno = 0;
	long n = strtol(v, &end, 10);
	if (errno || end == v || *end || n < 1 || n > 65535)
		return -1;
	*out = (int)n;
	return 0;
}

int kaa__node_advertise_next(const char **list, char *url, size_t cap)
{
	const char *s = *list, *comma;
	size_t n;
	if (!s || !*s)
		return 0;
	comma = strchr(s, ',');
	n = comma ? (size_t)(comma - s) : strlen(s);
	*list = comma ? comma + 1 : s + n;
	if (n >= cap)
		return -1;
	memcpy(url, s, n);
	url[n] = '\0';
	return 1;
}

static int check_advertise(const char *list, char *err, size_t errlen)
{
	char url[KAA_NODE_ADVERTISE_MAX_BYTES + 1];
	kaa__device_url u;
	size_t count = 0;
	int more;
	while ((more = kaa__node_advertise_next(&list, url, sizeof(url))) != 0) {
		if (more < 0 || kaa__device_url_parse(url, KAA__URL_WS, &u) != 0) {
			snprintf(
				err, errlen,
				"--advertise: '%.200s' is not a ws:// or wss:// URL (scheme, host, "
				"optional port and path; no query)",
				more < 0 ? "(too long)" : url);
			return -1;
		}
		if (++count > KAA_NODE_MAX_ADVERTISE) {
			snprintf(err, errlen, "--advertise: at most %d URLs",
				 KAA_NODE_MAX_ADVERTISE);
			return -1;
		}
	}
	return 0;
}

/* --https-services: a comma list of control and bootstrap (empty: none);
 * needs the certificate. */
static int parse_https(kaa_node_config *cfg, char *err, size_t errlen)
{
	char buf[128], *save = NULL;
	cfg->https_control = cfg->https_bootstrap = false;
	if (strlen(cfg->https_services) >= sizeof(buf)) {
		snprintf(err, errlen, "--https-services: too long");
		return -1;
	}
	strcpy(buf, cfg->https_services);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (!strcmp(t, "control")) {
			cfg->https_control = true;
		} else if (!strcmp(t, "bootstrap")) {
			cfg->https_bootstrap = true;
		} else {
			snprintf(
				err, errlen,
				"--https-services: '%s' is not control or bootstrap (the operations "
				"port speaks wss with --tls-cert already)",
				t);
			return -1;
		}
	}
	if ((cfg->https_control || cfg->https_bootstrap) && !cfg->tls_cert) {
		snprintf(err, errlen, "--https-services needs --tls-cert and --tls-key");
		return -1;
	}
	return 0;
}

/* Applies one setting by option id; returns 0, or -1 with err filled. */
static int apply(kaa_node_config *cfg, int id, const char *name, const char *v, char *err,
		 size_t errlen)
{
	int *port = NULL;
	switch (id) {
	case OPT_SERVICES: return set_str(&cfg->services, v);
	case OPT_NODE_ID: return set_str(&cfg->node_id, v);
	case OPT_CLUSTER: return set_str(&cfg->cluster, v);
	case OPT_ETCD: return set_str(&cfg->etcd, v);
	case OPT_SQL: return set_str(&cfg->sql, v);
	case OPT_NOSQL: return set_str(&cfg->nosql, v);
	case OPT_HOST: return set_str(&cfg->host, v);
	case OPT_ADVERTISE: return set_str(&cfg->advertise, v);
	case OPT_BIND: return set_str(&cfg->bind, v);
	case OPT_LOG_LEVEL: return set_str(&cfg->log_level, v);
	case OPT_TLS_CERT: return set_str(&cfg->tls_cert, v);
	case OPT_TLS_KEY: return set_str(&cfg->tls_key, v);
	case OPT_HTTPS_SERVICES: return set_str(&cfg->https_services, v);
	case OPT_CLIENT_CA: return set_str(&cfg->client_ca, v);
	case OPT_HELLO_PROOF:
		if (strcmp(v, "always") && strcmp(v, "provisioned")) {
			snprintf(err, errlen, "%s: must be provisioned or always, got '%s'", name,
				 v);
			return -1;
		}
		cfg->proof_always = v[0] == 'a';
		return 0;
	case OPT_APPENDER_DIR: return set_str(&cfg->appender_dir, v);
	case OPT_CONSOLE_DIR: return set_str(&cfg->console_dir, v);
	case OPT_LOG_INFLIGHT_MB: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 1 || n > 65536) {
			snprintf(err, errlen, "%s: must be 1..65536 MiB, got '%s'", name, v);
			return -1;
		}
		cfg->log_inflight_mb = (int)n;
		return 0;
	}
	case OPT_DRAIN_TIMEOUT:
	case OPT_IDLE_TIMEOUT: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		long lo = id == OPT_DRAIN_TIMEOUT ? 1 : 3;
		if (errno || end == v || *end || n < lo || n > 3600) {
			snprintf(err, errlen, "%s: must be %ld..3600 seconds, got '%s'", name, lo,
				 v);
			return -1;
		}
		if (id == OPT_DRAIN_TIMEOUT)
			cfg->drain_timeout = (int)n;
		else
			cfg->idle_timeout = (int)n;
		return 0;
	}
	case OPT_REBALANCE_THRESHOLD: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end || !(d >= 0.01 && d <= 10)) {
			snprintf(err, errlen,
				 "%s: threshold must be 0.01..10 (a fraction), got '%s'", name, v);
			return -1;
		}
		cfg->rebalance_threshold = d;
		return 0;
	}
	case OPT_REBALANCE_INTERVAL:
	case OPT_REBALANCE_COOLDOWN: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 0 || n > 86400) {
			snprintf(err, errlen, "%s: must be 0..86400 seconds, got '%s'", name, v);
			return -1;
		}
		if (id == OPT_REBALANCE_INTERVAL)
			cfg->rebalance_interval = (int)n;
		else
			cfg->rebalance_cooldown = (int)n;
		return 0;
	}
	case OPT_REBALANCE_MIN_SESSIONS: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 1 || n > 10000000) {
			snprintf(err, errlen, "%s: must be 1..10000000 sessions, got '%s'", name,
				 v);
			return -1;
		}
		cfg->rebalance_min_sessions = n;
		return 0;
	}
	case OPT_DEMO:
		if (!v || !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes")) {
			cfg->demo = true;
			return 0;
		}
		if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no")) {
			cfg->demo = false;
			return 0;
		}
		snprintf(err, errlen, "%s: true or false, got '%s'", name, v);
		return -1;
	case OPT_CONFIG: return set_str(&cfg->config_file, v);
	case OPT_CONTROL_PORT: port = &cfg->control_port; break;
	case OPT_BOOTSTRAP_PORT: port = &cfg->bootstrap_port; break;
	case OPT_OPERATIONS_PORT: port = &cfg->operations_port; break;
	case OPT_INTERNODE_PORT: port = &cfg->internode_port; break;
	case OPT_LEASE_TTL: {
		char *end;
		errno = 0;
		long n = strtol(v, &end, 10);
		if (errno || end == v || *end || n < 2 || n > 3600) {
			snprintf(err, errlen, "%s: lease TTL must be 2..3600 seconds, got '%s'",
				 name, v);
			return -1;
		}
		cfg->lease_ttl = (int)n;
		return 0;
	}
	default: snprintf(err, errlen, "unknown option %s", name); return -1;
	}
	if (parse_port(v, port) != 0) {
		snprintf(err, errlen, "%s: not a port number: '%s'", name, v);
		return -1;
	}
	return 0;
}

static int find_option(const char *name)
{
	for (const struct option *o = options; o->name; o++)
		if (strcmp(o->name, name) == 0 && o->has_arg != no_argument)
			return o->val;
	return -1;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int load_file(kaa_node_config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int lineno = 0, rc = 0;
	long total = 0;

	if (!f) {
		snprintf(err, errlen, "--config %s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		total += (long)strlen(line);
		if (total > MAX_CONFIG_BYTES || (!strchr(line, '\n') && !feof(f))) {
			snprintf(err, errlen, "%s:%d: file or line too long", path, lineno);
			rc = -1;
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *s = trim(line);
		if (!*s)
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *k = trim(s), *v = trim(eq + 1);
		int id = find_option(k);
		if (id < 0 || id == OPT_CONFIG) {
			snprintf(err, errlen, "%s:%d: unknown key '%s'", path, lineno, k);
			rc = -1;
			break;
		}
		if (apply(cfg, id, k, v, err, errlen) != 0) {
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* "node-id" -> "KAA_NODE_ID" */
static void env_name(const char *opt, char *buf, size_t len)
{
	size_t i = 0;
	i += (size_t)snprintf(buf, len, "KAA_");
	for (; *opt && i + 1 < len; opt++)
		buf[i++] = *opt == '-' ? '_' : (char)toupper((unsigned char)*opt);
	buf[i] = '\0';
}

static int parse_services(kaa_node_config *cfg, char *err, size_t errlen)
{
	char *copy = strdup(cfg->services), *save = NULL;
	int rc = 0;
	if (!copy)
		return -1;
	cfg->control = cfg->operations = cfg->bootstrap = false;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		if (strcmp(t, "control") == 0)
			cfg->control = true;
		else if (strcmp(t, "operations") == 0)
			cfg->operations = true;
		else if (strcmp(t, "bootstrap") == 0)
			cfg->bootstrap = true;
		else {
			snprintf(err, errlen, "--services: unknown service '%s'", t);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && !cfg->control && !cfg->operations && !cfg->bootstrap) {
		snprintf(err, errlen, "--services: no service given");
		rc = -1;
	}
	free(copy);
	return rc;
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) > 63)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

int kaa__node_config_parse(int argc, char **argv, char **envp, kaa_node_config *cfg, char *err,
			   size_t errlen)
{
	char host[256];
	int c;

	memset(cfg, 0, sizeof(*cfg));
	err[0] = '\0';
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	if (set_str(&cfg->services, "control,operations,bootstrap") ||
	    set_str(&cfg->cluster, "kaa") || set_str(&cfg->sql, "sqlite:./data/kaa.db") ||
	    set_str(&cfg->nosql, "sqlite:./data/endpoints.db") || set_str(&cfg->node_id, host) ||
	    set_str(&cfg->host, host) || set_str(&cfg->bind, "0.0.0.0") ||
	    set_str(&cfg->log_level, "info") || set_str(&cfg->appender_dir, "./data/logs"))
		return KAA_CONFIG_USAGE;
	cfg->control_port = 8080;
	cfg->bootstrap_port = 8081;
	cfg->operations_port = 9080;
	cfg->internode_port = 9091;
	cfg->lease_ttl = 10;
	cfg->drain_timeout = 30;
	cfg->log_inflight_mb = 64;
	cfg->idle_timeout = 120;
	cfg->rebalance_threshold = 0.2;
	cfg->rebalance_interval = 30;
	cfg->rebalance_cooldown = 60;
	cfg->rebalance_min_sessions = 50;

	/* Pass 1: only find --config / --help / --version (and bad flags). */
	const char *config_file = env_get(envp, "KAA_CONFIG");
	opterr = 0;
	optind = 0; /* glibc: full re-initialisation, so tests can parse twice */
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		if (c == OPT_HELP)
			return KAA_CONFIG_HELP;
		if (c == OPT_VERSION)
			return KAA_CONFIG_VERSION;
		if (c == '?' || c == ':') {
			const char *bad = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
			snprintf(err, errlen, "unknown option or missing value: %s", bad);
			return KAA_CONFIG_USAGE;
		}
		if (c == OPT_CONFIG)
			config_file = optarg;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument: %s", argv[optind]);
		return KAA_CONFIG_USAGE;
	}
	if (config_file) {
		if (set_str(&cfg->config_file, config_file) ||
		    load_file(cfg, cfg->config_file, err, errlen) != 0)
			return KAA_CONFIG_USAGE;
	}
	/* Environment. */
	for (const struct option *o = options; o->name; o++) {
		char name[64];
		if (o->has_arg == no_argument || o->val == OPT_CONFIG)
			continue;
		env_name(o->name, name, sizeof(name));
		const char *v = env_get(envp, name);
		if (v && apply(cfg, o->val, name, v, err, errlen) != 0)
			return KAA_CONFIG_USAGE;
	}
	/* Flags win. */
	optind = 0;
	int idx = 0;
	while ((c = getopt_long(argc, argv, "", options, &idx)) != -1) {
		if (c == OPT_CONFIG)
			continue;
		char name[80];
		snprintf(name, sizeof(name), "--%s", options[idx].name);
		if (apply(cfg, c, name, optarg, err, errlen) != 0)
			return KAA_CONFIG_USAGE;
	}
	if (parse_services(cfg, err, errlen) != 0)
		return KAA_CONFIG_USAGE;
	if (!valid_name(cfg->node_id)) {
		snprintf(err, errlen, "--node-id: '%s' must be 1-63 of [A-Za-z0-9._-]",
			 cfg->node_id);
		return KAA_CONFIG_USAGE;
	}
	if (!valid_name(cfg->cluster)) {
		snprintf(err, errlen, "--cluster: '%s' must be 1-63 of [A-Za-z0-9._-]",
			 cfg->cluster);
		return KAA_CONFIG_USAGE;
	}
	if (cfg->tls_cert && !*cfg->tls_cert) {
		free(cfg->tls_cert);
		cfg->tls_cert = NULL;
	}
	if (cfg->tls_key && !*cfg->tls_key) {
		free(cfg->tls_key);
		cfg->tls_key = NULL;
	}
	if (!cfg->tls_cert != !cfg->tls_key) {
		snprintf(err, errlen, "--tls-cert and --tls-key go together");
		return KAA_CONFIG_USAGE;
	}
	if (cfg->https_services && parse_https(cfg, err, errlen) != 0)
		return KAA_CONFIG_USAGE;
	if (cfg->client_ca && !*cfg->client_ca) {
		free(cfg->client_ca);
		cfg->client_ca = NULL;
	}
	if (cfg->client_ca && !cfg->tls_cert) {
		snprintf(err, errlen, "--client-ca needs --tls-cert and --tls-key");
		return KAA_CONFIG_USAGE;
	}
	if (cfg->advertise && !*cfg->advertise) {
		free(cfg->advertise);
		cfg->advertise = NULL;
	}
	if (cfg->advertise && check_advertise(cfg->advertise, err, errlen) != 0)
		return KAA_CONFIG_USAGE;
	if (!*cfg->appender_dir) {
		snprintf(err, errlen, "--appender-dir: empty directory");
		return KAA_CONFIG_USAGE;
	}
	if (cfg->etcd && !*cfg->etcd) {
		free(cfg->etcd);
		cfg->etcd = NULL;
	}
	if (strcmp(cfg->log_level, "debug") && strcmp(cfg->log_level, "info") &&
	    strcmp(cfg->log_level, "warn") && strcmp(cfg->log_level, "error")) {
		snprintf(err, errlen, "--log-level: '%s' is not debug, info, warn or error",
			 cfg->log_level);
		return KAA_CONFIG_USAGE;
	}
	if (strncmp(cfg->sql, "sqlite:", 7) != 0 && strncmp(cfg->sql, "postgresql://", 13) != 0 &&
	    strncmp(cfg->sql, "postgres://", 11) != 0) {
		snprintf(err, errlen, "--sql: '%s' is not sqlite:PATH or postgresql://...",
			 cfg->sql);
		return KAA_CONFIG_USAGE;
	}
	if (strncmp(cfg->nosql, "sqlite:", 7) != 0 && strncmp(cfg->nosql, "mongodb://", 10) != 0) {
		snprintf(err, errlen, "--nosql: '%s' is not sqlite:PATH or mongodb://...",
			 cfg->nosql);
		return KAA_CONFIG_USAGE;
	}
	int ports[4] = {cfg->control ? cfg->control_port : 0,
			cfg->bootstrap ? cfg->bootstrap_port : 0,
			cfg->operations ? cfg->operations_port : 0,
			cfg->operations ? cfg->internode_port : 0};
	for (int i = 0; i < 4; i++)
		for (int j = i + 1; j < 4; j++)
			if (ports[i] && ports[i] == ports[j]) {
				snprintf(err, errlen, "two enabled services share port %d",
					 ports[i]);
				return KAA_CONFIG_USAGE;
			}
	return KAA_CONFIG_OK;
}

void kaa__node_config_clear(kaa_node_config *cfg)
{
	free(cfg->services);
	free(cfg->node_id);
	free(cfg->cluster);
	free(cfg->etcd);
	free(cfg->sql);
	free(cfg->nosql);
	free(cfg->host);
	free(cfg->advertise);
	free(cfg->bind);
	free(cfg->log_level);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->https_services);
	free(cfg->client_ca);
	free(cfg->appender_dir);
	free(cfg->console_dir);
	free(cfg->config_file);
	memset(cfg, 0, sizeof(*cfg));
}
