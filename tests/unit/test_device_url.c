/*
 * Device URLs (lib/proto/device_url.c): what kaa-node --advertise, the
 * bootstrap answer, Redirect targets and the SDK accept and refuse.
 */
#include "cu_main.h"
#include "base/error.h"
#include "proto/device_url.h"

#include <CUnit/Basic.h>
#include <string.h>

static void roundtrip(const char *in, unsigned flags, const char *want)
{
	kaa__device_url u;
	char text[KAA__URL_MAX];
	CU_ASSERT_EQUAL_FATAL(kaa__device_url_parse(in, flags, &u), KAA_OK);
	CU_ASSERT_EQUAL(kaa__device_url_format(&u, text, sizeof(text)), KAA_OK);
	CU_ASSERT_STRING_EQUAL(text, want);
}

static void test_accepted(void)
{
	kaa__device_url u;
	CU_ASSERT_EQUAL(
		kaa__device_url_parse("wss://ops-0.devices.example.com/ops/ops-0", KAA__URL_WS, &u),
		KAA_OK);
	CU_ASSERT(u.tls && !u.http);
	CU_ASSERT_STRING_EQUAL(u.host, "ops-0.devices.example.com");
	CU_ASSERT_EQUAL(u.port, 443);
	CU_ASSERT_STRING_EQUAL(u.path, "/ops/ops-0");
	roundtrip("ws://10.0.0.1:9080", KAA__URL_WS, "ws://10.0.0.1:9080/");
	roundtrip("ws://h", KAA__URL_WS, "ws://h:80/");
	roundtrip("wss://[fd00::1]:8443/x/y", KAA__URL_WS, "wss://[fd00::1]:8443/x/y");
	roundtrip("https://boot.example.com/kaa/", KAA__URL_HTTP,
		  "https://boot.example.com:443/kaa/");
	roundtrip("http://127.0.0.1:8081", KAA__URL_HTTP, "http://127.0.0.1:8081/");
	/* "host:port" of older configurations: no TLS */
	roundtrip("127.0.0.1:8081", KAA__URL_HTTP | KAA__URL_BARE, "http://127.0.0.1:8081/");
	roundtrip("[::1]:9080", KAA__URL_WS | KAA__URL_BARE, "ws://[::1]:9080/");
}

static void test_refused(void)
{
	static const char *const bad[] = {
		"",
		"wss://",
		"wss://:443/",
		"ftp://h/",
		"wss://user:pw@h/",
		"wss://h:0/",
		"wss://h:65536/",
		"wss://h:44a/",
		"wss://h:/",
		"wss://h/a b",
		"wss://h/a?b=1",
		"wss://h/a#f",
		"wss://h/%41",
		"wss://h_h/",
		"wss://[::1/",
		"wss://[zz]/",
		"wss://[::1]x/",
		"wss://h\n/",
		"h:9080",
		"h",
	};
	kaa__device_url u;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = kaa__device_url_parse(bad[i], KAA__URL_WS | KAA__URL_HTTP, &u);
		CU_ASSERT_EQUAL(rc, KAA_ERR_INVAL);
		if (rc != KAA_ERR_INVAL)
			fprintf(stderr, "accepted: %s\n", bad[i]);
		CU_ASSERT_STRING_EQUAL(u.host, "");
	}
	/* a scheme the caller did not allow */
	CU_ASSERT_EQUAL(kaa__device_url_parse("https://h/", KAA__URL_WS, &u), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__device_url_parse("wss://h/", KAA__URL_HTTP, &u), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__device_url_parse("h", KAA__URL_WS | KAA__URL_BARE, &u), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__device_url_parse("h/x:1", KAA__URL_WS | KAA__URL_BARE, &u),
			KAA_ERR_INVAL);
}

static void test_limits(void)
{
	char s[600];
	kaa__device_url u;
	char small[16];
	memset(s, 0, sizeof(s));
	strcpy(s, "wss://");
	memset(s + 6, 'a', 253);
	CU_ASSERT_EQUAL(kaa__device_url_parse(s, KAA__URL_WS, &u), KAA_OK);
	s[6 + 253] = 'a';
	CU_ASSERT_EQUAL(kaa__device_url_parse(s, KAA__URL_WS, &u), KAA_ERR_TOO_BIG);
	strcpy(s, "wss://h/");
	memset(s + 8, 'p', 254);
	CU_ASSERT_EQUAL(kaa__device_url_parse(s, KAA__URL_WS, &u), KAA_OK);
	CU_ASSERT_EQUAL(strlen(u.path), 255);
	s[8 + 254] = 'p';
	CU_ASSERT_EQUAL(kaa__device_url_parse(s, KAA__URL_WS, &u), KAA_ERR_TOO_BIG);
	CU_ASSERT_EQUAL(kaa__device_url_parse("wss://host.example.com/", KAA__URL_WS, &u), KAA_OK);
	CU_ASSERT_EQUAL(kaa__device_url_format(&u, small, sizeof(small)), KAA_ERR_TOO_BIG);
	CU_ASSERT_STRING_EQUAL(small, "");
}

static const kaa__cu_test tests[] = {
	{"accepted", test_accepted},
	{"refused", test_refused},
	{"limits", test_limits},
};

int main(void)
{
	return kaa__cu_run("device_url", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
