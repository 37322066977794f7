/*
 * op_flags.c - kaa-operator's flags (see op_flags.h). Values follow the
 * Go conventions the chart's users know from other operators: durations
 * like 15s or 500ms, booleans as strconv.ParseBool takes them.
 */
#include "op_flags.h"

#include "base/alloc.h"
#include "base/error.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef KAA_VERSION
#define KAA_VERSION "0.0.0-dev"
#endif

void kaa__op_usage(FILE *out)
{
	fprintf(out,
		"usage: kaa-operator [flags]\n"
		"\n"
		"Deploys and scales Kaa IoT clusters from KaaCluster resources\n"
		"(kaaproject.org/v1alpha1). Durations are Go-style: 500ms, 15s, 1m30s.\n"
		"\n"
		"  --http-port=N                    /healthz, /readyz, /metrics (default 8080; 0: any)\n"
		"  --leader-elect[=true|false]      elect one active replica with a Lease (default false:\n"
		"                                   run the controller at once)\n"
		"  --leader-elect-lease-name=NAME   the Lease in $POD_NAMESPACE (default kaa-operator)\n"
		"  --leader-elect-lease-duration=D  how long a standby waits before taking over an\n"
		"                                   unrenewed Lease (default 15s)\n"
		"  --leader-elect-renew-deadline=D  a leader that cannot renew for this long steps\n"
		"                                   down (default 10s; < lease duration)\n"
		"  --leader-elect-retry-period=D    between election attempts and renewals (default 2s;\n"
		"                                   < renew deadline)\n"
		"  --watch-namespaces=a,b           watch these namespaces only (default: all)\n"
		"  --kubeconfig=PATH                kubeconfig file (default: $KUBECONFIG, then the\n"
		"                                   in-cluster service account, then ~/.kube/config)\n"
		"  --workers=N                      reconcile workers, 1..64 (default 2)\n"
		"  --resync-period=D                full resync of every KaaCluster (default 5m)\n"
		"  --autoscale-interval=D           operations autoscaling period (default 15s)\n"
		"  --scale-down-window=D            scale-down stabilisation window when a KaaCluster\n"
		"                                   sets no operations.autoscaling.\n"
		"                                   stabilizationWindowSeconds (default 5m)\n"
		"  --finalizer-attempts=N           etcd cleanup attempts before the finalizer is\n"
		"                                   released anyway, 1..100 (default 5)\n"
		"  --etcd-override=URL[,URL...]     tests: use these etcd endpoints instead of the\n"
		"                                   ones a KaaCluster names\n"
		"  --log-level=LEVEL                debug, info, warn, error (default info)\n"
		"  -h, --help                       print this help and exit\n"
		"  -V, --version                    print the version and exit\n"
		"\n"
		"Environment: POD_NAME (Lease holder identity and Event reportingInstance;\n"
		"default the hostname), POD_NAMESPACE (namespace of the Lease; default the\n"
		"configuration's namespace, else \"default\").\n"
		"Bad flags: this text on stderr, exit status 2.\n");
}

/* Go's time.ParseDuration subset: one or more <decimal><unit>, units ns us
 * µs ms s m h; "0" alone is zero. Result in ms, rounded up, <= INT_MAX. */
int kaa__go_duration_ms(const char *s, int *ms)
{
	double total = 0;
	const char *p = s;

	if (!s || !*s)
		return KAA_ERR_INVAL;
	if (strcmp(s, "0") == 0) {
		*ms = 0;
		return KAA_OK;
	}
	while (*p) {
		char *end;
		if (!isdigit((unsigned char)*p) && *p != '.')
			return KAA_ERR_INVAL;
		errno = 0;
		double v = strtod(p, &end);
		if (end == p || errno || strchr("eExXpPiInN", *p) || !isfinite(v))
			return KAA_ERR_INVAL;
		for (const char *q = p; q < end; q++)
			if (!isdigit((unsigned char)*q) && *q != '.')
				return KAA_ERR_INVAL;
		p = end;
		double mult;
		if (strncmp(p, "ns", 2) == 0)
			mult = 1e-6, p += 2;
		else if (strncmp(p, "us", 2) == 0)
			mult = 1e-3, p += 2;
		else if (strncmp(p, "\xc2\xb5s", 3) == 0)
			mult = 1e-3, p += 3;
		else if (strncmp(p, "ms", 2) == 0)
			mult = 1, p += 2;
		else if (*p == 's')
			mult = 1000, p++;
		else if (*p == 'm')
			mult = 60000, p++;
		else if (*p == 'h')
			mult = 3600000, p++;
		else
			return KAA_ERR_INVAL;
		total += v * mult;
		if (total > INT_MAX)
			return KAA_ERR_INVAL;
	}
	*ms = (int)ceil(total);
	return KAA_OK;
}

static int parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	errno = 0;
	long v = s && *s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || errno || v < min || v > max)
		return KAA_ERR_INVAL;
	*out = (int)v;
	return KAA_OK;
}

/* Go's strconv.ParseBool. */
static int parse_bool(const char *s, bool *out)
{
	static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
	static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False", NULL};
	for (int i = 0; t[i]; i++) {
		if (strcmp(s, t[i]) == 0) {
			*out = true;
			return KAA_OK;
		}
		if (strcmp(s, f[i]) == 0) {
			*out = false;
			return KAA_OK;
		}
	}
	return KAA_ERR_INVAL;
}

/* RFC 1123 label (namespace names). */
static bool dns_label(const char *s, size_t len)
{
	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return false;
	return true;
}

/* RFC 1123 subdomain (Lease names). */
static bool dns_subdomain(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (const char *p = s;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (!dns_label(p, len))
			return false;
		if (!dot)
			return true;
		p = dot + 1;
	}
}

static int split_namespaces(kaa__op_flags *f, char *err, size_t errsz)
{
	size_t n = 0, cap = 8;
	char *rest = f->namespaces_arg, *tok;

	if (!*f->namespaces_arg)
		return KAA_OK; /* all namespaces */
	f->namespaces = kaa__xcalloc(cap, sizeof(char *));
	/* strsep, not strtok: "a,,b" and "," must be refused, not read as "a,b" or "all" */
	while ((tok = strsep(&rest, ",")) != NULL) {
		while (*tok == ' ')
			tok++;
		size_t len = strlen(tok);
		while (len && tok[len - 1] == ' ')
			tok[--len] = '\0';
		if (!dns_label(tok, len)) {
			snprintf(err, errsz, "--watch-namespaces: '%s' is not a namespace name",
				 tok);
			return KAA_ERR_INVAL;
		}
		if (n + 1 >= cap) {
			if (cap >= 4096) {
				snprintf(err, errsz, "--watch-namespaces: too many namespaces");
				return KAA_ERR_INVAL;
			}
			f->namespaces = kaa__xrealloc(f->namespaces, cap * 2 * sizeof(char *));
			cap *= 2;
		}
		f->namespaces[n++] = tok;
		f->namespaces[n] = NULL;
	}
	return KAA_OK;
}

enum {
	OPT_HTTP_PORT = 256,
	OPT_LEADER_ELECT,
	OPT_LEASE_NAME,
	OPT_LEASE_DURATION,
	OPT_RENEW_DEADLINE,
	OPT_RETRY_PERIOD,
	OPT_WATCH_NAMESPACES,
	OPT_KUBECONFIG,
	OPT_ETCD_OVERRIDE,
	OPT_LOG_LEVEL,
	OPT_WORKERS,
	OPT_RESYNC,
	OPT_AUTOSCALE,
	OPT_SCALE_DOWN,
	OPT_FINALIZER_ATTEMPTS,
};

/* 0: run; 1: help or version printed (exit 0); 2: bad flags (err set). */
int kaa__op_flags_parse(int argc, char **argv, kaa__op_flags *f, char *err, size_t errsz)
{
	static const struct option opts[] = {
		{"http-port", required_argument, NULL, OPT_HTTP_PORT},
		{"leader-elect", optional_argument, NULL, OPT_LEADER_ELECT},
		{"leader-elect-lease-name", required_argument, NULL, OPT_LEASE_NAME},
		{"leader-elect-lease-duration", required_argument, NULL, OPT_LEASE_DURATION},
		{"leader-elect-renew-deadline", required_argument, NULL, OPT_RENEW_DEADLINE},
		{"leader-elect-retry-period", required_argument, NULL, OPT_RETRY_PERIOD},
		{"watch-namespaces", required_argument, NULL, OPT_WATCH_NAMESPACES},
		{"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
		{"etcd-override", required_argument, NULL, OPT_ETCD_OVERRIDE},
		{"log-level", required_argument, NULL, OPT_LOG_LEVEL},
		{"workers", required_argument, NULL, OPT_WORKERS},
		{"resync-period", required_argument, NULL, OPT_RESYNC},
		{"autoscale-interval", required_argument, NULL, OPT_AUTOSCALE},
		{"scale-down-window", required_argument, NULL, OPT_SCALE_DOWN},
		{"finalizer-attempts", required_argument, NULL, OPT_FINALIZER_ATTEMPTS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c, idx = 0;

	*f = (kaa__op_flags){
		.http_port = 8080,
		.lease_name = "kaa-operator",
		.lease_duration_ms = 15000,
		.renew_deadline_ms = 10000,
		.retry_ms = 2000,
		.log_level = "info",
	};
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":hV", opts, &idx)) != -1) {
		const char *name = c >= 256 ? opts[idx].name : NULL;
		int rc = KAA_OK, *dur = NULL;
		switch (c) {
		case 'h': kaa__op_usage(stdout); return 1;
		case 'V': printf("kaa-operator %s\n", KAA_VERSION); return 1;
		case OPT_HTTP_PORT: rc = parse_int(optarg, 0, 65535, &f->http_port); break;
		case OPT_LEADER_ELECT:
			f->leader_elect = true;
			if (optarg)
				rc = parse_bool(optarg, &f->leader_elect);
			break;
		case OPT_LEASE_NAME:
			f->lease_name = optarg;
			rc = dns_subdomain(optarg) ? KAA_OK : KAA_ERR_INVAL;
			break;
		case OPT_LEASE_DURATION: dur = &f->lease_duration_ms; break;
		case OPT_RENEW_DEADLINE: dur = &f->renew_deadline_ms; break;
		case OPT_RETRY_PERIOD: dur = &f->retry_ms; break;
		case OPT_RESYNC: dur = &f->resync_ms; break;
		case OPT_AUTOSCALE: dur = &f->autoscale_ms; break;
		case OPT_SCALE_DOWN: dur = &f->scale_down_ms; break;
		case OPT_WATCH_NAMESPACES:
			free(f->namespaces_arg);
			f->namespaces_arg = kaa__xstrdup(optarg);
			break;
		case OPT_KUBECONFIG:
			f->kubeconfig = optarg;
			rc = *optarg ? KAA_OK : KAA_ERR_INVAL;
			break;
		case OPT_ETCD_OVERRIDE:
			f->etcd_override = optarg;
			rc = *optarg && strlen(optarg) < 4096 ? KAA_OK : KAA_ERR_INVAL;
			break;
		case OPT_LOG_LEVEL:
			f->log_level = optarg;
			rc = kaa__log_level_parse(optarg) >= 0 ? KAA_OK : KAA_ERR_INVAL;
			break;
		case OPT_WORKERS: rc = parse_int(optarg, 1, 64, &f->workers); break;
		case OPT_FINALIZER_ATTEMPTS:
			rc = parse_int(optarg, 1, 100, &f->finalizer_attempts);
			break;
		case ':': snprintf(err, errsz, "%s needs a value", argv[optind - 1]); return 2;
		default: snprintf(err, errsz, "unknown flag %s", argv[optind - 1]); return 2;
		}
		if (rc == KAA_OK && dur) {
			rc = kaa__go_duration_ms(optarg, dur);
			if (rc == KAA_OK && *dur <= 0)
				rc = KAA_ERR_INVAL;
		}
		if (rc != KAA_OK) {
			snprintf(err, errsz, "--%s: bad value '%s'%s", name ? name : "?",
				 optarg ? optarg : "",
				 dur ? " (a positive Go-style duration like 500ms, 15s, 1m)" : "");
			return 2;
		}
	}
	if (optind < argc) {
		snprintf(err, errsz, "unexpected argument '%s'", argv[optind]);
		return 2;
	}
	if (f->leader_elect &&
	    (f->renew_deadline_ms >= f->lease_duration_ms || f->retry_ms >= f->renew_deadline_ms)) {
		snprintf(err, errsz,
			 "leader election needs retry period < renew deadline < "
			 "lease duration");
		return 2;
	}
	if (f->namespaces_arg) {
		if (split_namespaces(f, err, errsz) != KAA_OK)
			return 2;
	}
	return 0;
}

void kaa__op_flags_clear(kaa__op_flags *f)
{
	if (!f)
		return;
	free(f->namespaces);
	free(f->namespaces_arg);
	f->namespaces = NULL;
	f->namespaces_arg = NULL;
}
