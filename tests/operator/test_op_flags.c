/* kaa-operator's command line: the chart's flags, Go-style durations and
 * booleans, defaults, and refusal (status 2 with a reason) of bad input. */
#include "cu_main.h"
#include "op_flags.h"

#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

static int parse(kaa__op_flags *f, char *err, size_t n, const char *const *args)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = "kaa-operator";
	for (; *args && argc < 31; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return kaa__op_flags_parse(argc, argv, f, err, n);
}

static void test_durations(void)
{
	static const struct {
		const char *in;
		int ms; /* -1: invalid */
	} cases[] = {
		{"15s", 15000},  {"500ms", 500}, {"1m", 60000}, {"1m30s", 90000}, {"1.5s", 1500},
		{"2h", 7200000}, {"0", 0},       {".5s", 500},  {"100us", 1},     {"1500000ns", 2},
		{"15", -1},      {"", -1},       {"s", -1},     {"-1s", -1},      {"1e3s", -1},
		{"1d", -1},      {"15 s", -1},   {"inf", -1},   {"1sx", -1},      {"999999h", -1},
		{"0x10s", -1},   {"1S", -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int ms = -7;
		int rc = kaa__go_duration_ms(cases[i].in, &ms);
		if (cases[i].ms < 0) {
			if (rc != KAA_ERR_INVAL)
				fprintf(stderr, "'%s' accepted as %d\n", cases[i].in, ms);
			CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
		} else {
			if (rc != KAA_OK || ms != cases[i].ms)
				fprintf(stderr, "'%s': rc %d ms %d\n", cases[i].in, rc, ms);
			CU_ASSERT_EQUAL(rc, KAA_OK);
			CU_ASSERT_EQUAL(ms, cases[i].ms);
		}
	}
	CU_ASSERT_EQUAL(kaa__go_duration_ms(NULL, NULL), KAA_ERR_INVAL);
}

static void test_defaults_and_chart_flags(void)
{
	kaa__op_flags f;
	char err[256] = "";
	static const char *const none[] = {NULL};
	static const char *const chart[] = {"--http-port=9090",
					    "--leader-elect=true",
					    "--leader-elect-lease-name=my-lease",
					    "--leader-elect-lease-duration=20s",
					    "--leader-elect-renew-deadline=15s",
					    "--leader-elect-retry-period=3s",
					    "--watch-namespaces=a, b,c-1",
					    "--kubeconfig",
					    "/k/config",
					    "--etcd-override=http://127.0.0.1:2379",
					    "--log-level=debug",
					    "--workers=4",
					    "--resync-period=1m",
					    "--autoscale-interval=5s",
					    "--scale-down-window=30s",
					    "--finalizer-attempts=3",
					    NULL};

	CU_ASSERT_EQUAL_FATAL(parse(&f, err, sizeof(err), none), 0);
	CU_ASSERT_EQUAL(f.http_port, 8080);
	CU_ASSERT_FALSE(f.leader_elect);
	CU_ASSERT_STRING_EQUAL(f.lease_name, "kaa-operator");
	CU_ASSERT_EQUAL(f.lease_duration_ms, 15000);
	CU_ASSERT_EQUAL(f.renew_deadline_ms, 10000);
	CU_ASSERT_EQUAL(f.retry_ms, 2000);
	CU_ASSERT_PTR_NULL(f.namespaces);
	CU_ASSERT_PTR_NULL(f.kubeconfig);
	CU_ASSERT_EQUAL(f.workers, 0);
	kaa__op_flags_clear(&f);

	CU_ASSERT_EQUAL_FATAL(parse(&f, err, sizeof(err), chart), 0);
	CU_ASSERT_EQUAL(f.http_port, 9090);
	CU_ASSERT_TRUE(f.leader_elect);
	CU_ASSERT_STRING_EQUAL(f.lease_name, "my-lease");
	CU_ASSERT_EQUAL(f.lease_duration_ms, 20000);
	CU_ASSERT_EQUAL(f.renew_deadline_ms, 15000);
	CU_ASSERT_EQUAL(f.retry_ms, 3000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f.namespaces);
	CU_ASSERT_STRING_EQUAL(f.namespaces[0], "a");
	CU_ASSERT_STRING_EQUAL(f.namespaces[1], "b");
	CU_ASSERT_STRING_EQUAL(f.namespaces[2], "c-1");
	CU_ASSERT_PTR_NULL(f.namespaces[3]);
	CU_ASSERT_STRING_EQUAL(f.kubeconfig, "/k/config");
	CU_ASSERT_STRING_EQUAL(f.etcd_override, "http://127.0.0.1:2379");
	CU_ASSERT_STRING_EQUAL(f.log_level, "debug");
	CU_ASSERT_EQUAL(f.workers, 4);
	CU_ASSERT_EQUAL(f.resync_ms, 60000);
	CU_ASSERT_EQUAL(f.autoscale_ms, 5000);
	CU_ASSERT_EQUAL(f.scale_down_ms, 30000);
	CU_ASSERT_EQUAL(f.finalizer_attempts, 3);
	kaa__op_flags_clear(&f);

	/* --leader-elect alone is true; false turns it off; empty list is all */
	static const char *const le[] = {"--leader-elect", "--watch-namespaces=", NULL};
	CU_ASSERT_EQUAL(parse(&f, err, sizeof(err), le), 0);
	CU_ASSERT_TRUE(f.leader_elect);
	CU_ASSERT_PTR_NULL(f.namespaces);
	kaa__op_flags_clear(&f);
	static const char *const off[] = {"--leader-elect=false", NULL};
	CU_ASSERT_EQUAL(parse(&f, err, sizeof(err), off), 0);
	CU_ASSERT_FALSE(f.leader_elect);
	kaa__op_flags_clear(&f);
}

static void test_bad(void)
{
	static const char *const cases[][4] = {
		{"--no-such-flag", NULL},
		{"--http-port=-1", NULL},
		{"--http-port=65536", NULL},
		{"--http-port=80x", NULL},
		{"--http-port", NULL},
		{"--leader-elect=yes", NULL},
		{"--leader-elect-lease-name=Bad_Name", NULL},
		{"--leader-elect-lease-duration=15", NULL},
		{"--leader-elect-retry-period=0", NULL},
		{"--leader-elect", "--leader-elect-renew-deadline=20s", NULL},
		{"--leader-elect", "--leader-elect-retry-period=10s", NULL},
		{"--watch-namespaces=ok,Not_OK", NULL},
		{"--watch-namespaces=,", NULL},
		{"--log-level=loud", NULL},
		{"--workers=0", NULL},
		{"--workers=65", NULL},
		{"--finalizer-attempts=101", NULL},
		{"--resync-period=soon", NULL},
		{"--kubeconfig=", NULL},
		{"positional", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kaa__op_flags f;
		char err[256] = "";
		int rc = parse(&f, err, sizeof(err), cases[i]);
		if (rc != 2)
			fprintf(stderr, "accepted: %s\n", cases[i][0]);
		CU_ASSERT_EQUAL(rc, 2);
		CU_ASSERT(strlen(err) > 0);
		kaa__op_flags_clear(&f);
	}
}

static const kaa__cu_test tests[] = {
	{"Go-style durations", test_durations},
	{"defaults and the chart's flags", test_defaults_and_chart_flags},
	{"bad flags", test_bad},
};

int main(void)
{
	return kaa__cu_run("op_flags", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
