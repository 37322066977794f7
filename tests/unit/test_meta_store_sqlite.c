/*
 * The metadata store suite on SQLite, in a temporary directory removed at
 * the end. Every fresh database for the concurrent-migration test sits a few
 * directories deep to check that missing parents are created.
 */
#include "cu_main.h"
#include "test_util.h"
#include "meta_store_suite.h"

#include "base/error.h"
#include "base/log.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[512];
static char url[600];

static char *fresh_sqlite_url(void)
{
	static int n;
	char *u = NULL;
	if (asprintf(&u, "sqlite:%s/fresh%d/a/b/kaa.db", dir, ++n) < 0)
		return NULL;
	return u;
}

/* Missing parent directories are created; a path that cannot be is
 * KAA_ERR_IO, not a crash or a hang. */
static void test_paths(void)
{
	char path[700], u[720];
	struct stat st;
	snprintf(path, sizeof(path), "%s/deep/er/still/kaa.db", dir);
	snprintf(u, sizeof(u), "sqlite:%s", path);
	kaa__meta_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_store_new(u, NULL, &s), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kaa__meta_store_backend(s), "sqlite");
	kaa__meta_store_free(s);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	/* WAL mode is on (the -wal file exists while the database is open) */
	kaa__meta_store *s2 = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__meta_store_new(u, NULL, &s2), KAA_OK);
	snprintf(path, sizeof(path), "%s/deep/er/still/kaa.db-wal", dir);
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	kaa__meta_store_free(s2);

	s = NULL;
	CU_ASSERT_EQUAL(kaa__meta_store_new("sqlite:/proc/no/such/dir/kaa.db", NULL, &s),
			KAA_ERR_IO);
	CU_ASSERT_PTR_NULL(s);
	snprintf(u, sizeof(u), "sqlite:%s", dir); /* a directory, not a file */
	CU_ASSERT_EQUAL(kaa__meta_store_new(u, NULL, &s), KAA_ERR_IO);
	CU_ASSERT_PTR_NULL(s);
}

static const kaa__cu_test files[] = {{"paths", test_paths}};

int main(void)
{
	if (kaa__test_tmpdir(dir, sizeof(dir), "meta_store_sqlite") != 0) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(url, sizeof(url), "sqlite:%s/data/kaa.db", dir);
	static meta_suite_env env = {.fresh_url = fresh_sqlite_url, .backend = "sqlite"};
	env.url = url;

	const char *lvl = getenv("KAA_LOG_LEVEL"); /* quiet unless asked */
	kaa__log_level =
		lvl && kaa__log_level_parse(lvl) >= 0 ? kaa__log_level_parse(lvl) : KAA_LOG_WARN;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	if (meta_suite_add("meta-store-sqlite", &env) != 0 ||
	    kaa__cu_add("meta-store-sqlite-files", files, KAA__CU_COUNT(files), NULL, NULL) != 0)
		return 1;
	int rc = kaa__cu_run_all();
	if (!getenv("KAA_KEEP_TMP"))
		kaa__test_rm_tree(dir);
	return rc;
}
