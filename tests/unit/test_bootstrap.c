/* The bootstrap service's node list and weights. */
#include "cu_main.h"
#include "bootstrap/bootstrap.h"
#include "base/error.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

static kaa__node_record rec(const char *id, const char *svc, int port, int64_t sessions,
			    double load, bool draining)
{
	kaa__node_record r = {0};
	r.id = (char *)id;
	r.host = "10.0.0.1";
	r.services[0] = (char *)svc;
	r.n_services = 1;
	r.ports[0].name = (char *)svc;
	r.ports[0].port = port;
	r.n_ports = port ? 1 : 0;
	r.sessions = sessions;
	r.load = load;
	r.draining = draining;
	return r;
}

static void test_weight(void)
{
	kaa__node_record idle = rec("a", "operations", 9080, 0, 0, false);
	kaa__node_record busy = rec("b", "operations", 9080, 9000, 1.0, false);
	kaa__node_record huge = rec("c", "operations", 9080, 100000000, 1e9, false);
	CU_ASSERT_EQUAL(kaa__bootstrap_weight(&idle), 1000);
	CU_ASSERT_EQUAL(kaa__bootstrap_weight(&busy), 91);
	CU_ASSERT_EQUAL(kaa__bootstrap_weight(&huge), 1);
	idle.load = -5; /* nonsense load is ignored, not rewarded */
	CU_ASSERT_EQUAL(kaa__bootstrap_weight(&idle), 1000);
}

static void test_render(void)
{
	kaa__node_record nodes[] = {
		rec("ops1", "operations", 9080, 0, 0, false),
		rec("ops2", "operations", 9081, 1000, 0, false),
		rec("drain", "operations", 9082, 0, 0, true),
		rec("ctl", "control", 8080, 0, 0, false),
		rec("noport", "operations", 0, 0, 0, false),
	};
	char *out = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(kaa__bootstrap_render(nodes, 5, &out, &len), KAA_OK);
	/* nodes without advertised URLs: the URL their listener makes */
	CU_ASSERT_STRING_EQUAL(out,
			       "{\"nodes\":[{\"id\":\"ops1\",\"host\":\"10.0.0.1\",\"port\":9080,"
			       "\"weight\":1000,\"tls\":false,\"url\":\"ws://10.0.0.1:9080/\","
			       "\"urls\":[\"ws://10.0.0.1:9080/\"]},{\"id\":\"ops2\",\"host\":"
			       "\"10.0.0.1\",\"port\":9081,\"weight\":500,\"tls\":false,\"url\":"
			       "\"ws://10.0.0.1:9081/\",\"urls\":[\"ws://10.0.0.1:9081/\"]}]}");
	CU_ASSERT_EQUAL(len, strlen(out));
	free(out);
	/* advertised URLs in order, those a device cannot parse left out */
	kaa__node_record adv = {0};
	adv.id = "ops-0";
	adv.host = "10.0.0.9";
	adv.services[0] = "operations";
	adv.n_services = 1;
	adv.ports[0].name = "operations";
	adv.ports[0].port = 9080;
	adv.n_ports = 1;
	adv.tls = true;
	adv.advertise[0] = "wss://ops-0.devices.example.com:443/ops/ops-0";
	adv.advertise[1] = "http://not-a-websocket/";
	adv.advertise[2] = "wss://10.0.0.9:9080/";
	adv.n_advertise = 3;
	CU_ASSERT_EQUAL_FATAL(kaa__bootstrap_render(&adv, 1, &out, &len), KAA_OK);
	CU_ASSERT_STRING_EQUAL(
		out, "{\"nodes\":[{\"id\":\"ops-0\",\"host\":\"10.0.0.9\",\"port\":9080,"
		     "\"weight\":1000,\"tls\":true,\"url\":\"wss://ops-0.devices.example."
		     "com:443/ops/ops-0\",\"urls\":[\"wss://ops-0.devices.example.com:443/ops/"
		     "ops-0\",\"wss://10.0.0.9:9080/\"]}]}");
	CU_ASSERT_EQUAL(len, strlen(out));
	free(out);
	CU_ASSERT_EQUAL_FATAL(kaa__bootstrap_render(NULL, 0, &out, &len), KAA_OK);
	CU_ASSERT_STRING_EQUAL(out, "{\"nodes\":[]}");
	free(out);
}

static const kaa__cu_test tests[] = {
	{"weights from load", test_weight},
	{"node list", test_render},
};

int main(void)
{
	return kaa__cu_run("bootstrap", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
