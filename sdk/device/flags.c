/* kaa-device's command line: the flags, their bounds, the usage text (exit
 * code 2 on a bad command line). The flags are listed in main.c. */
#include "device.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef KAA_VERSION
#define KAA_VERSION "0.0.0-dev"
#endif

enum {
	O_BOOT = 256,
	O_TOKEN,
	O_COUNT,
	O_DURATION,
	O_STATE,
	O_PROFILE,
	O_PROFILE_FILE,
	O_RATE,
	O_RECORD,
	O_TOTAL,
	O_UNTIL,
	O_SUB,
	O_CA,
	O_CLIENT_CERT,
	O_FSYNC,
	O_BATCH,
	O_VERBOSE,
	O_JSON,
	O_OWNER,
	O_OWNER_TOKEN,
	O_ATTACH_EP,
	O_TOKEN_PREFIX,
	O_SEND_EVENT,
	O_EV_INTERVAL,
	O_EV_COUNT,
	O_EV_TARGET,
	O_KEEPALIVE,
	O_LIVENESS,
	O_CONNECT_TO,
};

static const struct option opts[] = {
	{"bootstrap", required_argument, NULL, O_BOOT},
	{"app-token", required_argument, NULL, O_TOKEN},
	{"count", required_argument, NULL, O_COUNT},
	{"duration", required_argument, NULL, O_DURATION},
	{"state-dir", required_argument, NULL, O_STATE},
	{"profile", required_argument, NULL, O_PROFILE},
	{"profile-file", required_argument, NULL, O_PROFILE_FILE},
	{"log-rate", required_argument, NULL, O_RATE},
	{"log-record", required_argument, NULL, O_RECORD},
	{"log-total", required_argument, NULL, O_TOTAL},
	{"until-acked", no_argument, NULL, O_UNTIL},
	{"subscribe", required_argument, NULL, O_SUB},
	{"ca", required_argument, NULL, O_CA},
	{"client-cert", required_argument, NULL, O_CLIENT_CERT},
	{"fsync", no_argument, NULL, O_FSYNC},
	{"log-batch", required_argument, NULL, O_BATCH},
	{"verbose", no_argument, NULL, O_VERBOSE},
	{"json", no_argument, NULL, O_JSON},
	{"owner", required_argument, NULL, O_OWNER},
	{"owner-token", required_argument, NULL, O_OWNER_TOKEN},
	{"attach-endpoint-token", required_argument, NULL, O_ATTACH_EP},
	{"endpoint-token-prefix", required_argument, NULL, O_TOKEN_PREFIX},
	{"send-event", required_argument, NULL, O_SEND_EVENT},
	{"event-interval-ms", required_argument, NULL, O_EV_INTERVAL},
	{"event-count", required_argument, NULL, O_EV_COUNT},
	{"event-target", required_argument, NULL, O_EV_TARGET},
	{"keepalive-ms", required_argument, NULL, O_KEEPALIVE},
	{"liveness-timeout-ms", required_argument, NULL, O_LIVENESS},
	{"connect-timeout-ms", required_argument, NULL, O_CONNECT_TO},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kaa-device --bootstrap SERVER[,SERVER...] --app-token TOKEN\n"
		"                  [--count N] [--duration S] [--state-dir DIR] [--profile JSON]\n"
		"                  [--profile-file FILE]\n"
		"                  [--log-rate R] [--log-record JSON] [--log-total N] [--until-acked]\n"
		"                  [--subscribe TOPIC] [--ca FILE] [--client-cert FILE] [--fsync] [--log-batch N]\n"
		"                  [--owner ID --owner-token TOK] [--attach-endpoint-token TOK]\n"
		"                  [--endpoint-token-prefix P] [--send-event FQN]\n"
		"                  [--event-interval-ms N] [--event-count N] [--event-target KEYHASH]\n"
		"                  [--keepalive-ms N|off] [--liveness-timeout-ms N|off]\n"
		"                  [--connect-timeout-ms N] [--verbose] [--json]\n"
		"\n"
		"The Kaa device simulator: runs N devices (libkaa clients) in one process.\n"
		"\n"
		"  --bootstrap LIST    bootstrap servers, tried in turn (required): HOST:PORT\n"
		"                      (plain HTTP) or http(s)://HOST[:PORT][/PREFIX] URLs\n"
		"  --app-token TOKEN   application token (required)\n"
		"  --count N           devices to run (default 1, at most %d)\n"
		"  --duration S        stop after S seconds (default: until SIGTERM/SIGINT)\n"
		"  --state-dir DIR     per-device state in DIR/dev-<i> (default ./kaa-device-state)\n"
		"  --profile JSON      client-side profile sent by every device\n"
		"  --profile-file FILE the profile from a file, read again on SIGHUP and sent\n"
		"                      to the server (a profile change can change groups)\n"
		"  --log-rate R        log records per second per device (default 0)\n"
		"  --log-record JSON   record template; {seq} and {device} are substituted\n"
		"                      (default {\"device\":{device},\"seq\":{seq}})\n"
		"  --log-total N       records per device in this run, then stop generating\n"
		"  --until-acked       exit once every device generated --log-total records\n"
		"                      and the server acknowledged everything queued\n"
		"  --subscribe TOPIC   subscribe every device to an optional topic\n"
		"  --ca FILE           CA bundle that verifies https bootstrap servers and wss\n"
		"                      nodes (default: the system's CAs); nodes given as\n"
		"                      host:port only are then reached with wss\n"
		"  --client-cert FILE  mutual TLS: a certificate for this device's key\n"
		"                      (STATE_DIR/dev-0/key.pem); with --count 1 only\n"
		"  --fsync             fsync the log queue and state files on every change, as a\n"
		"                      real device does (the simulator's default is not to, so\n"
		"                      thousands of devices do not queue on one disk)\n"
		"  --log-batch N       records per log batch, 1..1000 (default 100)\n"
		"  --owner ID          attach every device to owner ID after its first HelloAck\n"
		"  --owner-token TOK   the owner access token for --owner (required with it)\n"
		"  --attach-endpoint-token TOK\n"
		"                      device 0 attaches the endpoint with this access token\n"
		"                      (after its own --owner attach succeeded)\n"
		"  --endpoint-token-prefix P\n"
		"                      device N sends endpoint access token \"P-N\" in Hello\n"
		"                      (default: a random token kept in its state directory)\n"
		"  --send-event FQN    every device sends events of class FQN once attached (once\n"
		"                      registered without --owner), body {\"n\":K,\"sent_ms\":MS}\n"
		"  --event-interval-ms N  between a device's events (default 1000)\n"
		"  --event-count N     events per device, then stop (default 0: until stopped);\n"
		"                      with --until-acked, exit once all were acknowledged\n"
		"  --event-target KEYHASH  send to this endpoint (default: the owner's sinks)\n"
		"  --keepalive-ms N|off  Ping after N ms without a frame from the server\n"
		"                      (default 0: a third of the server's idle timeout)\n"
		"  --liveness-timeout-ms N|off  a Ping unanswered for N ms means the connection\n"
		"                      is dead: reconnect (default 0: 10000)\n"
		"  --connect-timeout-ms N  give up a connection attempt after N ms (default 0: 15000)\n"
		"  --verbose           one line per event on stderr (device=N ts_ms=T event=...;\n"
		"                      registered device=N key=K, owner_attached, event_received,\n"
		"                      ... see sdk/README.md)\n"
		"  --json              print a JSON summary on stdout at the end\n"
		"  -h, --help          this help;  -V, --version  the version\n",
		KAA__SIM_MAX_COUNT);
}

static bool parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

/* "off" (-1) or 0..INT32_MAX milliseconds (0: the SDK's default). */
static bool parse_ms_or_off(const char *s, int32_t *out)
{
	uint64_t v;

	if (strcmp(s, "off") == 0) {
		*out = -1;
		return true;
	}
	if (!parse_u64(s, INT32_MAX, &v))
		return false;
	*out = (int32_t)v;
	return true;
}

static bool parse_rate(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end != s && strcmp(end, "/s") == 0)
		end += 2;
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 100000)
		return false;
	*out = v;
	return true;
}

/* One option c (an O_* value) with its argument arg into cfg; false when
 * the value is out of bounds. */
static bool parse_option(int c, char *arg, kaa__sim_config *cfg)
{
	switch (c) {
	case O_BOOT: cfg->boot_list = arg; return true;
	case O_TOKEN: cfg->token = arg; return true;
	case O_COUNT: return parse_u64(arg, KAA__SIM_MAX_COUNT, &cfg->count) && cfg->count != 0;
	case O_DURATION: return parse_u64(arg, 365ull * 24 * 3600, &cfg->duration);
	case O_STATE: cfg->state_dir = arg; return true;
	case O_PROFILE: cfg->profile = arg; return true;
	case O_PROFILE_FILE: cfg->profile_file = arg; return true;
	case O_RATE: return parse_rate(arg, &cfg->rate);
	case O_RECORD: cfg->tpl = arg; return true;
	case O_TOTAL: return parse_u64(arg, UINT32_MAX, &cfg->total);
	case O_UNTIL: cfg->until_acked = true; return true;
	case O_SUB: cfg->sub = arg; return true;
	case O_CA: cfg->ca = arg; return true;
	case O_CLIENT_CERT: cfg->client_cert = arg; return true;
	case O_FSYNC: cfg->fsync_each = true; return true;
	case O_BATCH: return parse_u64(arg, 1000, &cfg->batch) && cfg->batch != 0;
	case O_VERBOSE: cfg->verbose = true; return true;
	case O_JSON: cfg->json = true; return true;
	case O_OWNER: cfg->owner = arg; return true;
	case O_OWNER_TOKEN: cfg->owner_token = arg; return true;
	case O_ATTACH_EP: cfg->attach_token = arg; return true;
	case O_TOKEN_PREFIX: cfg->token_prefix = arg; return true;
	case O_SEND_EVENT: cfg->ev_fqn = arg; return true;
	case O_EV_INTERVAL:
		return parse_u64(arg, 3600000, &cfg->ev_interval) && cfg->ev_interval != 0;
	case O_EV_COUNT: return parse_u64(arg, UINT32_MAX, &cfg->ev_count);
	case O_EV_TARGET: cfg->ev_target = arg; return true;
	case O_KEEPALIVE: return parse_ms_or_off(arg, &cfg->keepalive);
	case O_LIVENESS: return parse_ms_or_off(arg, &cfg->liveness);
	case O_CONNECT_TO: return parse_u64(arg, UINT32_MAX, &cfg->connect_to);
	}
	return false;
}

/* Splits --bootstrap (in place) into cfg->boot; false when empty or longer
 * than KAA__SIM_MAX_BOOT. */
static bool split_bootstrap(kaa__sim_config *cfg)
{
	for (char *save = NULL, *t = strtok_r(cfg->boot_list, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (cfg->nboot == KAA__SIM_MAX_BOOT)
			return false;
		cfg->boot[cfg->nboot++] = t;
	}
	return cfg->nboot > 0;
}

static bool str_ok(const char *s, size_t max)
{
	return !s || (*s && strlen(s) <= max);
}

/* The combinations of flags that make sense, and the SDK's bounds of the
 * owner and event strings (checked here for a clear usage). */
static bool config_ok(const kaa__sim_config *cfg)
{
	if ((cfg->until_acked && cfg->total == 0 && cfg->rate > 0) ||
	    (cfg->profile && cfg->profile_file))
		return false;
	return !cfg->owner == !cfg->owner_token && str_ok(cfg->owner, 256) &&
	       str_ok(cfg->owner_token, 1024) && str_ok(cfg->attach_token, 1024) &&
	       str_ok(cfg->token_prefix, 1000) && str_ok(cfg->ev_fqn, 256) &&
	       str_ok(cfg->ev_target, 256);
}

bool kaa__sim_flags_parse(int argc, char **argv, kaa__sim_config *cfg, int *exit_code)
{
	int c;

	*cfg = (kaa__sim_config){
		.state_dir = "./kaa-device-state",
		.tpl = "{\"device\":{device},\"seq\":{seq}}",
		.count = 1,
		.ev_interval = 1000,
	};
	while ((c = getopt_long(argc, argv, "hV", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			*exit_code = 0;
			return false;
		}
		if (c == 'V') {
			printf("kaa-device %s (libkaa %s)\n", KAA_VERSION, kaa_sdk_version());
			*exit_code = 0;
			return false;
		}
		if (!parse_option(c, optarg, cfg))
			goto bad;
	}
	if (optind != argc || !cfg->boot_list || !cfg->token || !*cfg->token ||
	    !split_bootstrap(cfg) || !config_ok(cfg) || (cfg->client_cert && cfg->count != 1))
		goto bad; /* a certificate is for one device's key */
	if (cfg->profile_file) {
		cfg->file_profile = kaa__sim_read_profile(cfg->profile_file);
		if (!cfg->file_profile) {
			fprintf(stderr, "kaa-device: cannot read %s\n", cfg->profile_file);
			*exit_code = 2;
			return false;
		}
		cfg->profile = cfg->file_profile;
	}
	if (cfg->until_acked && cfg->rate == 0 && cfg->total > 0)
		cfg->rate = 1000;
	return true;
bad:
	usage(stderr);
	*exit_code = 2;
	return false;
}

void kaa__sim_config_clear(kaa__sim_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->file_profile);
	cfg->file_profile = NULL;
}

char *kaa__sim_read_profile(const char *path)
{
	char *buf = malloc(16 * 1024 + 1);
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (!buf || !f) {
		free(buf);
		if (f)
			fclose(f);
		return NULL;
	}
	n = fread(buf, 1, 16 * 1024 + 1, f);
	fclose(f);
	if (n == 0 || n > 16 * 1024) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}
