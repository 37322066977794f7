/*
 * fuzz_http_request.c - libFuzzer target for kaa__http_parse_request.
 *
 * Beyond "no crash, no leak, no UB", it checks the properties the server
 * relies on: the result is one of the documented codes with its status,
 * a parsed request is self-consistent and never refers to more bytes than
 * it was given, every prefix of a valid request is INCOMPLETE (a request
 * cut anywhere by TCP is never refused), and parsing is deterministic.
 * Each input runs with the default limits and with tight ones.
 */
// fuzz-sources: lib/base/alloc.c lib/base/buf.c lib/http/http_server.c lib/base/clock.c lib/base/error.c lib/base/log.c
// fuzz-pkgs: openssl
#include "base/error.h"
#include "http/http_server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void check(bool cond)
{
	if (!cond)
		abort();
}

static bool status_ok(int rc, int status)
{
	switch (rc) {
	case KAA_ERR_INVAL: return status == 400;
	case KAA_ERR_TOO_BIG: return status == 413 || status == 414 || status == 431;
	case KAA_ERR_PROTOCOL: return status == 417 || status == 501 || status == 505;
	default: return false;
	}
}

static bool no_ctl(const char *s, bool allow_tab)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && !(allow_tab && *s == '\t'))
			return false;
	return true;
}

static void run(const char *buf, size_t len, const kaa__http_limits *lim)
{
	kaa__http_limits d;
	kaa__http_request req, again;
	size_t consumed = 0, consumed2 = 0;
	int rc, rc2;

	kaa__http_limits_default(&d);
	if (!lim)
		lim = &d;
	rc = kaa__http_parse_request(buf, len, lim, &req, &consumed);
	rc2 = kaa__http_parse_request(buf, len, lim, &again, &consumed2);
	check(rc == rc2 && consumed == consumed2);
	kaa__http_request_clear(&again);

	if (rc == KAA__HTTP_INCOMPLETE) {
		check(req.storage_ == NULL);
		check(consumed == 0 || consumed > len);
		check(!req.expect_continue || consumed != 0);
		return;
	}
	if (rc != KAA_OK) {
		check(status_ok(rc, req.error_status));
		check(req.error_reason != NULL && req.storage_ == NULL && consumed == 0);
		return;
	}
	check(consumed > 0 && consumed <= len);
	check(req.body_len <= lim->max_body_bytes && req.body_len < consumed);
	check(memcmp(req.body, buf + consumed - req.body_len, req.body_len) == 0);
	check(req.body[req.body_len] == '\0');
	check(req.version_minor == 0 || req.version_minor == 1);
	check(req.n_headers <= lim->max_headers);
	check(req.method[0] != '\0' && no_ctl(req.method, false));
	check(req.path[0] == '/' || strcmp(req.path, "*") == 0);
	check(no_ctl(req.path, false) && no_ctl(req.query, false));
	for (size_t i = 0; i < req.n_headers; i++) {
		const char *v = req.headers[i].value;
		check(req.headers[i].name[0] != '\0' && no_ctl(req.headers[i].name, false));
		check(no_ctl(v, true));
		check(*v == '\0' || (v[0] != ' ' && v[0] != '\t'));
		/* Lookup finds this header or an earlier one of the same name. */
		check(kaa__http_header(&req, req.headers[i].name) != NULL);
	}
	if (req.version_minor == 1)
		check(kaa__http_header(&req, "host") != NULL);
	check(kaa__http_header(&req, "transfer-encoding") == NULL);
	kaa__http_request_clear(&req);

	/* Prefixes of a valid request are INCOMPLETE, whatever their length. */
	{
		size_t cuts[3] = {0, consumed / 2, consumed - 1};
		for (int i = 0; i < 3; i++) {
			rc = kaa__http_parse_request(buf, cuts[i], lim, &req, &consumed2);
			check(rc == KAA__HTTP_INCOMPLETE);
			kaa__http_request_clear(&req);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kaa__http_limits tight = {.max_header_bytes = 300, .max_body_bytes = 16, .max_headers = 4};
	/* A private copy: the parser must never read past size, and ASan
	 * only sees that when the allocation ends exactly there. */
	char *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	run(buf, size, NULL);
	run(buf, size, &tight);
	free(buf);
	return 0;
}
