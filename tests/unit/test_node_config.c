/* kaa-node flag, environment and config-file parsing. */
#include "node/config.h"

#include <CUnit/Basic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int parse(kaa_node_config *c, char **env, int n, ...)
{
	char *argv[32];
	char err[256];
	va_list ap;
	argv[0] = "kaa-node";
	va_start(ap, n);
	for (int i = 0; i < n; i++)
		argv[i + 1] = va_arg(ap, char *);
	va_end(ap);
	argv[n + 1] = NULL;
	return kaa__node_config_parse(n + 1, argv, env, c, err, sizeof(err));
}

static void test_defaults(void)
{
	kaa_node_config c;
	char *env[] = {NULL};
	CU_ASSERT_EQUAL(parse(&c, env, 0), KAA_CONFIG_OK);
	CU_ASSERT_TRUE(c.control && c.operations && c.bootstrap);
	CU_ASSERT_STRING_EQUAL(c.cluster, "kaa");
	CU_ASSERT_PTR_NULL(c.etcd);
	CU_ASSERT_STRING_EQUAL(c.sql, "sqlite:./data/kaa.db");
	CU_ASSERT_STRING_EQUAL(c.nosql, "sqlite:./data/endpoints.db");
	CU_ASSERT_EQUAL(c.control_port, 8080);
	CU_ASSERT_EQUAL(c.bootstrap_port, 8081);
	CU_ASSERT_EQUAL(c.operations_port, 9080);
	CU_ASSERT_EQUAL(c.internode_port, 9091);
	CU_ASSERT_DOUBLE_EQUAL(c.rebalance_threshold, 0.2, 1e-9);
	CU_ASSERT_EQUAL(c.rebalance_interval, 30);
	CU_ASSERT_EQUAL(c.rebalance_cooldown, 60);
	CU_ASSERT_EQUAL(c.log_inflight_mb, 64);
	char host[256];
	gethostname(host, sizeof(host));
	host[255] = 0;
	CU_ASSERT_STRING_EQUAL(c.node_id, host);
	kaa__node_config_clear(&c);
}

static void test_precedence(void)
{
	kaa_node_config c;
	char path[] = "/tmp/kaa-node-config-XXXXXX";
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "# settings\ncluster = fromfile\nnode-id=file-node\ncontrol-port = 7000\n"
		   "etcd = http://127.0.0.1:2379\n");
	fclose(f);
	char cfgenv[64];
	snprintf(cfgenv, sizeof(cfgenv), "KAA_CONFIG=%s", path);
	char *env[] = {cfgenv, "KAA_NODE_ID=env-node", "KAA_SERVICES=control",
		       "KAA_CONTROL_PORT=7001", NULL};
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--control-port", "7002"), KAA_CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.cluster, "fromfile"); /* file */
	CU_ASSERT_STRING_EQUAL(c.node_id, "env-node"); /* env beats file */
	CU_ASSERT_EQUAL(c.control_port, 7002);         /* flag beats env */
	CU_ASSERT_TRUE(c.control);
	CU_ASSERT_FALSE(c.operations);
	CU_ASSERT_STRING_EQUAL(c.etcd, "http://127.0.0.1:2379");
	kaa__node_config_clear(&c);
	/* --flag=value form, and --config given as a flag. */
	char *env2[] = {NULL};
	char cfgflag[80];
	snprintf(cfgflag, sizeof(cfgflag), "--config=%s", path);
	CU_ASSERT_EQUAL(parse(&c, env2, 2, cfgflag, "--services=bootstrap,operations"),
			KAA_CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.node_id, "file-node");
	CU_ASSERT_TRUE(c.bootstrap && c.operations && !c.control);
	kaa__node_config_clear(&c);
	unlink(path);
}

static void test_bad(void)
{
	kaa_node_config c;
	char *env[] = {NULL};
	char *badenv[] = {"KAA_CONTROL_PORT=abc", NULL};
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--nope"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--cluster"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--control-port", "0"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--control-port", "12x"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--services", "control,foo"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--services", ","), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--cluster", "a/b"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--nosql", "redis://x"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--log-level", "loud"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--log-inflight-mb", "0"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--log-inflight-mb", "65537"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--log-inflight-mb", "8x"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--log-inflight-mb", "8"), KAA_CONFIG_OK);
	CU_ASSERT_EQUAL(c.log_inflight_mb, 8);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--advertise", "https://h/"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--advertise", "wss://h/,ws://h:1/x?y"),
			KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--advertise", "ws://a/,ws://b/,ws://c/,ws://d/,ws://e/"),
			KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--advertise",
			      "wss://ops-0.example.com/ops/0,ws://10.0.0.1:9080"),
			KAA_CONFIG_OK);
	CU_ASSERT_STRING_EQUAL(c.advertise, "wss://ops-0.example.com/ops/0,ws://10.0.0.1:9080");
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--config", "/nonexistent/kaa.conf"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "positional"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, badenv, 0), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 4, "--operations-port", "9000", "--internode-port", "9000"),
			KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--rebalance-threshold", "0"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--rebalance-threshold", "0.2x"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 2, "--rebalance-interval", "-1"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 6, "--rebalance-threshold", "0.5", "--rebalance-interval",
			      "0", "--rebalance-cooldown", "5"),
			KAA_CONFIG_OK);
	CU_ASSERT_DOUBLE_EQUAL(c.rebalance_threshold, 0.5, 1e-9);
	CU_ASSERT_EQUAL(c.rebalance_interval, 0);
	CU_ASSERT_EQUAL(c.rebalance_cooldown, 5);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--demo"), KAA_CONFIG_OK);
	CU_ASSERT_TRUE(c.demo);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--demo=false"), KAA_CONFIG_OK);
	CU_ASSERT_FALSE(c.demo);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--demo=maybe"), KAA_CONFIG_USAGE);
	kaa__node_config_clear(&c);
	char *demo_env[] = {"KAA_DEMO=true", NULL};
	CU_ASSERT_EQUAL(parse(&c, demo_env, 0), KAA_CONFIG_OK);
	CU_ASSERT_TRUE(c.demo);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--help"), KAA_CONFIG_HELP);
	kaa__node_config_clear(&c);
	CU_ASSERT_EQUAL(parse(&c, env, 1, "--version"), KAA_CONFIG_VERSION);
	kaa__node_config_clear(&c);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("node-config", NULL, NULL);
	CU_add_test(s, "defaults", test_defaults);
	CU_add_test(s, "file < env < flag", test_precedence);
	CU_add_test(s, "bad flags and values", test_bad);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned fails = CU_get_number_of_failures();
	CU_cleanup_registry();
	return fails ? 1 : 0;
}
