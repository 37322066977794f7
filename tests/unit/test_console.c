/*
 * The web console's static files (console_files.h): path checks, types,
 * headers, the single-page fallback, symlink escapes; and console sessions
 * (rest_session.h): ids, CSRF tokens, logout, the Cookie header parser.
 */
#include "cu_main.h"
#include "base/clock.h"
#include "control/console_files.h"
#include "control/rest_session.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256], outside[300];

static void put(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	FILE *f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void)
{
	char p[512];
	snprintf(dir, sizeof(dir), "%s/test_console.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	snprintf(p, sizeof(p), "%s/assets", dir);
	mkdir(p, 0755);
	snprintf(outside, sizeof(outside), "%s.secret", dir);
	FILE *f = fopen(outside, "w");
	if (!f)
		return 1;
	fputs("secret", f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/escape.txt", dir);
	return symlink(outside, p) != 0;
}

static int teardown(void)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, outside);
	return system(cmd) != 0;
}

typedef struct answer {
	int status;
	char type[64];
	char *body;
	char *headers;
} answer;

static answer serve(const char *method, const char *path)
{
	kaa__http_request req = {.method = method, .path = path, .query = ""};
	kaa__http_response resp = {0};
	answer a = {0};
	kaa__console_serve(dir, &req, &resp);
	a.status = resp.status;
	snprintf(a.type, sizeof(a.type), "%s", resp.content_type ? resp.content_type : "");
	a.body = strndup(resp.body ? resp.body : "", resp.body_len);
	a.headers = resp.headers ? resp.headers : strdup("");
	free(resp.body);
	return a;
}

static void answer_free(answer *a)
{
	free(a->body);
	free(a->headers);
}

static void test_rel_path(void)
{
	char out[64];
	CU_ASSERT_TRUE(kaa__console_rel_path("/console/", out, sizeof(out)));
	CU_ASSERT_STRING_EQUAL(out, "");
	CU_ASSERT_TRUE(kaa__console_rel_path("/console/assets/a%2Db.js", out, sizeof(out)));
	CU_ASSERT_STRING_EQUAL(out, "assets/a-b.js");
	CU_ASSERT_TRUE(kaa__console_rel_path("/console/apps/3/schemas", out, sizeof(out)));
	static const char *refused[] = {
		"/console/../etc/passwd",
		"/console/assets/../../x",
		"/console/%2e%2e/x",
		"/console/a/%2E%2E/b",
		"/console/./index.html",
		"/console/.env",
		"/console/a//b",
		"/console/a/",
		"/console/a%2fb",
		"/console/a%00b",
		"/console/a\\..\\b",
		"/console/a%5c..",
		"/consolex/",
		"/console",
		"/console/%zz",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		bool ok = kaa__console_rel_path(refused[i], out, sizeof(out));
		if (ok)
			fprintf(stderr, "accepted: %s\n", refused[i]);
		CU_ASSERT_FALSE(ok);
	}
	char longp[200] = "/console/";
	memset(longp + strlen(longp), 'a', 100);
	CU_ASSERT_FALSE(kaa__console_rel_path(longp, out, sizeof(out)));
	CU_ASSERT_TRUE(kaa__console_path("/console"));
	CU_ASSERT_TRUE(kaa__console_path("/console/x"));
	CU_ASSERT_FALSE(kaa__console_path("/consolex"));
	CU_ASSERT_FALSE(kaa__console_path("/api/v1/me"));
}

static void test_serve(void)
{
	put("index.html", "<!doctype html><div id=app></div>");
	put("assets/app-1234.js", "console.log(1)");
	put("assets/app-1234.css", "body{}");

	answer a = serve("GET", "/console/");
	CU_ASSERT_EQUAL(a.status, 200);
	CU_ASSERT_STRING_EQUAL(a.type, "text/html; charset=utf-8");
	CU_ASSERT_PTR_NOT_NULL(strstr(a.body, "id=app"));
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "Cache-Control: no-cache\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "frame-ancestors 'none'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "script-src 'self';"));
	CU_ASSERT_PTR_NULL(strstr(a.headers, "unsafe-inline"));
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "X-Content-Type-Options: nosniff\r\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "X-Frame-Options: DENY\r\n"));
	answer_free(&a);

	a = serve("GET", "/console/assets/app-1234.js");
	CU_ASSERT_EQUAL(a.status, 200);
	CU_ASSERT_STRING_EQUAL(a.type, "text/javascript; charset=utf-8");
	CU_ASSERT_STRING_EQUAL(a.body, "console.log(1)");
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "immutable"));
	answer_free(&a);
	a = serve("HEAD", "/console/assets/app-1234.css");
	CU_ASSERT_EQUAL(a.status, 200);
	CU_ASSERT_STRING_EQUAL(a.type, "text/css; charset=utf-8");
	answer_free(&a);

	/* client-side routes get index.html; missing assets do not */
	a = serve("GET", "/console/apps/7/endpoints");
	CU_ASSERT_EQUAL(a.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.body, "id=app"));
	answer_free(&a);
	a = serve("GET", "/console/assets/missing.js");
	CU_ASSERT_EQUAL(a.status, 404);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "nosniff"));
	answer_free(&a);
	/* a directory is not a file */
	a = serve("GET", "/console/assets");
	CU_ASSERT_EQUAL(a.status, 200);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.body, "id=app"));
	answer_free(&a);

	/* a symlink out of the directory is not followed */
	a = serve("GET", "/console/escape.txt");
	CU_ASSERT_EQUAL(a.status, 404);
	CU_ASSERT_PTR_NULL(strstr(a.body, "secret"));
	answer_free(&a);
	a = serve("GET", "/console/../test_console.secret");
	CU_ASSERT_EQUAL(a.status, 404);
	answer_free(&a);

	a = serve("POST", "/console/");
	CU_ASSERT_EQUAL(a.status, 405);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "Allow: GET, HEAD\r\n"));
	answer_free(&a);
	a = serve("GET", "/console");
	CU_ASSERT_EQUAL(a.status, 301);
	CU_ASSERT_PTR_NOT_NULL(strstr(a.headers, "Location: /console/\r\n"));
	answer_free(&a);

	kaa__http_request req = {.method = "GET", .path = "/console/", .query = ""};
	kaa__http_response resp = {0};
	kaa__console_serve("/nonexistent/console", &req, &resp);
	CU_ASSERT_EQUAL(resp.status, 404);
	CU_ASSERT_PTR_NOT_NULL(strstr(resp.body, "make console"));
	free(resp.body);
	free(resp.headers);
}

static void test_sessions(void)
{
	kaa__sessions *s = kaa__sessions_new(0, 0);
	char id[KAA_SESSION_TOKEN_LEN + 1], csrf[KAA_SESSION_TOKEN_LEN + 1],
		got[KAA_SESSION_TOKEN_LEN + 1], id2[KAA_SESSION_TOKEN_LEN + 1],
		csrf2[KAA_SESSION_TOKEN_LEN + 1];
	int64_t user = 0, exp = 0;
	CU_ASSERT_EQUAL_FATAL(kaa__sessions_create(s, 42, id, csrf, &exp), 0);
	CU_ASSERT_EQUAL(strlen(id), KAA_SESSION_TOKEN_LEN);
	CU_ASSERT_EQUAL(strlen(csrf), KAA_SESSION_TOKEN_LEN);
	CU_ASSERT_STRING_NOT_EQUAL(id, csrf);
	CU_ASSERT_TRUE(exp > 0);
	CU_ASSERT_TRUE(kaa__sessions_lookup(s, id, &user, got));
	CU_ASSERT_EQUAL(user, 42);
	CU_ASSERT_STRING_EQUAL(got, csrf);
	CU_ASSERT_EQUAL_FATAL(kaa__sessions_create(s, 43, id2, csrf2, &exp), 0);
	CU_ASSERT_STRING_NOT_EQUAL(id, id2);
	/* the CSRF token is not a session id */
	CU_ASSERT_FALSE(kaa__sessions_lookup(s, csrf, &user, got));
	CU_ASSERT_FALSE(kaa__sessions_lookup(s, "", &user, got));
	CU_ASSERT_FALSE(kaa__sessions_lookup(s, "abc", &user, got));
	kaa__sessions_delete(s, id);
	CU_ASSERT_FALSE(kaa__sessions_lookup(s, id, &user, got));
	CU_ASSERT_TRUE(kaa__sessions_lookup(s, id2, &user, got));
	CU_ASSERT_EQUAL(user, 43);
	/* beyond the table the oldest session gives way */
	for (int i = 0; i < KAA_SESSION_MAX; i++)
		CU_ASSERT_EQUAL_FATAL(kaa__sessions_create(s, 100 + i, id, csrf, &exp), 0);
	CU_ASSERT_TRUE(kaa__sessions_lookup(s, id, &user, got));
	CU_ASSERT_EQUAL(user, 100 + KAA_SESSION_MAX - 1);
	kaa__sessions_free(s);
	kaa__sessions_free(NULL);
}

/* Polls until the session has ended: true, or false after deadline_ms. */
static bool ends_within(kaa__sessions *s, const char *id, int64_t deadline_ms)
{
	int64_t user;
	char got[KAA_SESSION_TOKEN_LEN + 1];
	for (int64_t t = 0; t < deadline_ms; t += 10) {
		if (!kaa__sessions_lookup(s, id, &user, got))
			return true;
		usleep(10 * 1000);
	}
	return false;
}

static void test_expiry(void)
{
	char id[KAA_SESSION_TOKEN_LEN + 1], csrf[KAA_SESSION_TOKEN_LEN + 1],
		got[KAA_SESSION_TOKEN_LEN + 1];
	int64_t user, exp;
	/* idle: 100 ms without a lookup ends it (a lookup would renew it, so
	 * this waits on the clock, not on the table) */
	kaa__sessions *s = kaa__sessions_new(100, 60000);
	CU_ASSERT_EQUAL_FATAL(kaa__sessions_create(s, 1, id, csrf, &exp), 0);
	CU_ASSERT_TRUE(kaa__sessions_lookup(s, id, &user, got));
	int64_t t0 = kaa__now_ms();
	while (kaa__now_ms() - t0 < 150)
		usleep(10 * 1000);
	CU_ASSERT_FALSE(kaa__sessions_lookup(s, id, &user, got));
	kaa__sessions_free(s);
	/* lifetime: 300 ms even while in use (lookups every 10 ms renew the
	 * idle time of 200 ms) */
	s = kaa__sessions_new(200, 300);
	t0 = kaa__now_ms();
	CU_ASSERT_EQUAL_FATAL(kaa__sessions_create(s, 1, id, csrf, &exp), 0);
	CU_ASSERT_TRUE(ends_within(s, id, 5000));
	CU_ASSERT_TRUE(kaa__now_ms() - t0 >= 300);
	kaa__sessions_free(s);
}

static void test_cookie(void)
{
	char v[16];
	CU_ASSERT_TRUE(kaa__cookie_value("kaa_session=abc", "kaa_session", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "abc");
	CU_ASSERT_TRUE(
		kaa__cookie_value("a=1; kaa_session=xyz ; b=2", "kaa_session", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "xyz");
	CU_ASSERT_TRUE(
		kaa__cookie_value("x_kaa_session=1;kaa_session=2", "kaa_session", v, sizeof(v)));
	CU_ASSERT_STRING_EQUAL(v, "2");
	CU_ASSERT_FALSE(kaa__cookie_value("kaa_sessionx=1", "kaa_session", v, sizeof(v)));
	CU_ASSERT_FALSE(kaa__cookie_value("kaa_session=", "kaa_session", v, sizeof(v)));
	CU_ASSERT_FALSE(kaa__cookie_value("", "kaa_session", v, sizeof(v)));
	CU_ASSERT_FALSE(kaa__cookie_value(";;;", "kaa_session", v, sizeof(v)));
	CU_ASSERT_FALSE(
		kaa__cookie_value("kaa_session=0123456789abcdef", "kaa_session", v, sizeof(v)));
}

int main(void)
{
	static const kaa__cu_test tests[] = {
		{"path checks", test_rel_path},
		{"static files, headers, fallback, escapes", test_serve},
		{"sessions", test_sessions},
		{"sessions end: idle time, lifetime", test_expiry},
		{"Cookie header", test_cookie},
	};
	return kaa__cu_run("console", tests, KAA__CU_COUNT(tests), setup, teardown);
}
