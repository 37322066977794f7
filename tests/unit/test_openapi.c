/*
 * docs/openapi.yaml and the control API's route table must describe the
 * same routes: every documented (path, method) is served and every served
 * one is documented. Runs from the repository root (e2e/run-tests.sh).
 */
#include "cu_main.h"
#include "control/api.h"
#include "control/router.h"

#include <CUnit/Basic.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OPS 256

static char doc_ops[MAX_OPS][160];
static size_t n_doc;

static int load_doc(void)
{
	const char *path = getenv("KAA_OPENAPI") ? getenv("KAA_OPENAPI") : "docs/openapi.yaml";
	FILE *f = fopen(path, "r");
	char line[512], cur[128] = "";
	if (!f) {
		fprintf(stderr, "test_openapi: cannot open %s\n", path);
		return -1;
	}
	bool in_paths = false;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strcmp(line, "paths:") == 0) {
			in_paths = true;
			continue;
		}
		if (in_paths && line[0] && !isspace((unsigned char)line[0]))
			in_paths = false;
		if (!in_paths)
			continue;
		if (strncmp(line, "  /", 3) == 0 && line[strlen(line) - 1] == ':') {
			snprintf(cur, sizeof(cur), "%.*s", (int)strlen(line) - 3, line + 2);
			continue;
		}
		static const char *methods[] = {"get", "post", "put", "delete", "patch"};
		for (size_t i = 0; i < 5; i++) {
			char want[32];
			snprintf(want, sizeof(want), "    %s:", methods[i]);
			if (strcmp(line, want) == 0 && n_doc < MAX_OPS) {
				char up[8];
				for (size_t j = 0; j <= strlen(methods[i]); j++)
					up[j] = (char)toupper((unsigned char)methods[i][j]);
				snprintf(doc_ops[n_doc++], sizeof(doc_ops[0]), "%s %s", up, cur);
			}
		}
	}
	fclose(f);
	return 0;
}

static void test_match(void)
{
	size_t n;
	const kaa__route *r = kaa__control_routes(&n);
	CU_ASSERT_FATAL(load_doc() == 0);
	CU_ASSERT(n_doc > 0);
	for (size_t i = 0; i < n; i++) {
		char op[160];
		bool found = false;
		snprintf(op, sizeof(op), "%s %s", r[i].method, r[i].pattern);
		for (size_t j = 0; j < n_doc; j++)
			found |= strcmp(doc_ops[j], op) == 0;
		if (!found)
			fprintf(stderr, "served but not documented: %s\n", op);
		CU_ASSERT_TRUE(found);
	}
	for (size_t j = 0; j < n_doc; j++) {
		bool found = false;
		for (size_t i = 0; i < n; i++) {
			char op[160];
			snprintf(op, sizeof(op), "%s %s", r[i].method, r[i].pattern);
			found |= strcmp(doc_ops[j], op) == 0;
		}
		if (!found)
			fprintf(stderr, "documented but not served: %s\n", doc_ops[j]);
		CU_ASSERT_TRUE(found);
	}
	CU_ASSERT_EQUAL(n, n_doc);
}

static const kaa__cu_test tests[] = {
	{"documented routes == served routes", test_match},
};

int main(void)
{
	return kaa__cu_run("openapi", tests, KAA__CU_COUNT(tests), NULL, NULL);
}
