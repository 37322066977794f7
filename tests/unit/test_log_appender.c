/*
 * Unit tests of lib/appender/log_appender.c: settings validation, the JSON-lines
 * file appender (format, idempotency across re-sends and reopen, crash
 * recovery of an unindexed tail, concurrent appends, the cross-process
 * lock) and the endpoint-store appender on an SQLite store in a temporary
 * directory.
 */
#include "appender/log_appender.h"

#include "store/endpoint_store.h"
#include "base/error.h"
#include "base/clock.h"
#include "base/metrics.h"
#include "http/http_server.h"
#include "json/json_merge.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[512];
static int g_seq;

static void fresh_dir(char *out, size_t n)
{
	snprintf(out, n, "%s/d%d", g_dir, ++g_seq);
}

/* Reads the whole file; NULL if absent. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	if (p)
		p[n] = '\0';
	fclose(f);
	if (len)
		*len = p ? (size_t)n : 0;
	return p;
}

static const char *jstr(yajl_val v)
{
	const char *s = YAJL_IS_STRING(v) ? v->u.string : NULL;
	return s ? s : "";
}

static int count_lines(const char *path)
{
	char *p = slurp(path, NULL);
	int n = 0;
	for (char *c = p; c && *c; c++)
		n += *c == '\n';
	free(p);
	return n;
}

static void test_settings(void)
{
	char dir[600], err[256];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.store = NULL, .file_dir = dir};
	kaa__log_appender *a = (kaa__log_appender *)1;
	const char *bad[] = {
		"",
		"{",
		"[]",
		"{\"type\":\"kafka\"}",
		"{}",
		"{\"type\":\"file\",\"extra\":1}",
		"{\"type\":\"file\",\"file\":\"../x\"}",
		"{\"type\":\"file\",\"file\":\"a/b\"}",
		"{\"type\":\"file\",\"file\":\".hidden\"}",
		"{\"type\":\"file\",\"file\":\"\"}",
		"{\"type\":\"file\",\"file\":7}",
		"{\"type\":\"endpoint-store\"}", /* no store in env */
		"{\"type\":\"file\",\"type\":\"file\"}",
		NULL,
	};
	for (int i = 0; bad[i]; i++) {
		err[0] = '\0';
		CU_ASSERT_EQUAL(
			kaa__log_appender_new(1, 1, "x", bad[i], &env, &a, err, sizeof(err)),
			KAA_ERR_INVAL);
		CU_ASSERT_PTR_NULL(a);
		CU_ASSERT(err[0] != '\0');
	}
	CU_ASSERT_EQUAL(kaa__log_appender_new(1, 1, "x", NULL, &env, &a, NULL, 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__log_appender_new(0, 1, "x", "{\"type\":\"file\"}", &env, &a, NULL, 0),
			KAA_ERR_INVAL);
	kaa__log_appender_env nodir = {0};
	CU_ASSERT_EQUAL(kaa__log_appender_new(1, 1, "x", "{\"type\":\"file\"}", &nodir, &a, err,
					      sizeof(err)),
			KAA_ERR_INVAL);
	/* a name of 129 characters is one too many */
	char s[300];
	char longname[130];
	memset(longname, 'n', 129);
	longname[129] = '\0';
	snprintf(s, sizeof(s), "{\"type\":\"file\",\"file\":\"%s\"}", longname);
	CU_ASSERT_EQUAL(kaa__log_appender_new(1, 1, "x", s, &env, &a, NULL, 0), KAA_ERR_INVAL);
	longname[128] = '\0';
	snprintf(s, sizeof(s), "{\"type\":\"file\",\"file\":\"%s\"}", longname);
	CU_ASSERT_EQUAL(kaa__log_appender_new(1, 1, "x", s, &env, &a, NULL, 0), KAA_OK);
	CU_ASSERT_STRING_EQUAL(kaa__log_appender_type(a), "file");
	CU_ASSERT_EQUAL(kaa__log_appender_id(a), 1);
	kaa__log_appender_free(a);
	kaa__log_appender_free(NULL);
}

static void test_file_lines_and_duplicates(void)
{
	char dir[600], path[800];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.file_dir = dir};
	kaa__log_appender *a = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(3, 9, "files",
						    "{\"type\":\"file\",\"file\":\"logs.jsonl\"}",
						    &env, &a, NULL, 0),
			      KAA_OK);
	snprintf(path, sizeof(path), "%s/app-3/logs.jsonl", dir);
	const char *b1[] = {"{\n\"t\": 1,\r\n\"s\":\"caf\xc3\xa9\"}", "[1,2]", "\"x\""};
	bool dup = true;
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b\"1\\", 2, b1, 3, 1234, &dup),
			KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(count_lines(path), 3);
	/* re-sent after a lost acknowledgement */
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b\"1\\", 2, b1, 3, 9999, &dup),
			KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	CU_ASSERT_EQUAL(count_lines(path), 3);
	/* same batch id from another endpoint is another batch */
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k2", "b\"1\\", 2, b1, 1, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(count_lines(path), 4);

	/* wrong application, bad input: nothing written */
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 4, "k1", "b2", 2, b1, 1, 1, &dup),
			KAA_ERR_INVAL);
	const char *badrec[] = {"{\"a\":"};
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b2", 2, badrec, 1, 1, &dup),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k:1", "b2", 2, b1, 1, 1, &dup),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b2", 2, b1, 0, 1, &dup),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b2", 2, b1, 1, 1, NULL),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL(count_lines(path), 4);

	/* every line is one JSON object with the documented members */
	char *text = slurp(path, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	int line = 0;
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save), line++) {
		yajl_val v = NULL;
		char jerr[KAA_JSON_ERR_SIZE];
		CU_ASSERT_EQUAL_FATAL(
			kaa__json_parse(l, strlen(l), 1 << 20, 64, &v, jerr, sizeof(jerr)), KAA_OK);
		const char *p_app[] = {"app", NULL}, *p_ep[] = {"endpoint", NULL},
			   *p_batch[] = {"batch", NULL}, *p_idx[] = {"index", NULL},
			   *p_rec[] = {"received_ms", NULL}, *p_sv[] = {"schema_version", NULL},
			   *p_r[] = {"record", NULL};
		yajl_val app = yajl_tree_get(v, p_app, yajl_t_number);
		yajl_val ep = yajl_tree_get(v, p_ep, yajl_t_string);
		yajl_val batch = yajl_tree_get(v, p_batch, yajl_t_string);
		yajl_val idx = yajl_tree_get(v, p_idx, yajl_t_number);
		CU_ASSERT(app && YAJL_GET_INTEGER(app) == 3);
		CU_ASSERT(ep && strcmp(jstr(ep), line < 3 ? "k1" : "k2") == 0);
		CU_ASSERT(batch && strcmp(jstr(batch), "b\"1\\") == 0);
		CU_ASSERT(idx && YAJL_GET_INTEGER(idx) == (line < 3 ? line : 0));
		CU_ASSERT_PTR_NOT_NULL(yajl_tree_get(v, p_rec, yajl_t_number));
		CU_ASSERT_PTR_NOT_NULL(yajl_tree_get(v, p_sv, yajl_t_number));
		yajl_val r = yajl_tree_get(v, p_r, yajl_t_any);
		CU_ASSERT_PTR_NOT_NULL(r);
		if (line == 0 && r) {
			const char *p_t[] = {"t", NULL}, *p_s[] = {"s", NULL};
			yajl_val t = yajl_tree_get(r, p_t, yajl_t_number);
			yajl_val s = yajl_tree_get(r, p_s, yajl_t_string);
			CU_ASSERT(t && YAJL_GET_INTEGER(t) == 1);
			CU_ASSERT(s && strcmp(jstr(s), "caf\xc3\xa9") == 0);
		}
		yajl_tree_free(v);
	}
	CU_ASSERT_EQUAL(line, 4);
	free(text);
	kaa__log_appender_free(a);

	/* reopened (a node restart): still idempotent, appends continue */
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(3, 9, "files",
						    "{\"type\":\"file\",\"file\":\"logs.jsonl\"}",
						    &env, &a, NULL, 0),
			      KAA_OK);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b\"1\\", 2, b1, 3, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 3, "k1", "b3", 2, b1, 2, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(count_lines(path), 6);
	kaa__log_appender_free(a);
}

/* A crash after the lines were written but before the index committed:
 * the next open cuts the unindexed tail, the re-sent batch lands once. */
static void test_file_crash_tail(void)
{
	char dir[600], path[800];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.file_dir = dir};
	kaa__log_appender *a = NULL;
	const char *set = "{\"type\":\"file\"}";
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 5, "f", set, &env, &a, NULL, 0), KAA_OK);
	snprintf(path, sizeof(path), "%s/app-1/appender-5.jsonl", dir);
	const char *r[] = {"{\"n\":1}", "{\"n\":2}"};
	bool dup;
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b1", 1, r, 2, 1, &dup), KAA_OK);
	size_t good_len = 0;
	free(slurp(path, &good_len));
	kaa__log_appender_free(a);

	/* the crashed write of batch b2 */
	FILE *f = fopen(path, "ab");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("{\"app\":1,\"endpoint\":\"k\",\"batch\":\"b2\",\"index\":0,\"rec", f);
	fclose(f);
	CU_ASSERT_EQUAL(count_lines(path), 2);

	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 5, "f", set, &env, &a, NULL, 0), KAA_OK);
	size_t len = 0;
	free(slurp(path, &len));
	CU_ASSERT_EQUAL(len, good_len);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b2", 1, r, 2, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(count_lines(path), 4);
	char *text = slurp(path, NULL);
	CU_ASSERT(text && strstr(text, "\"rec\n") == NULL);
	free(text);
	kaa__log_appender_free(a);
}

/* The index commit does not wait for the disk (the file's fsync does): after
 * a power loss the index may lack its last rows while the file holds those
 * batches whole. Reopening indexes complete batches found in the tail again
 * and cuts off an incomplete one. */
static void test_file_lost_index_rows(void)
{
	char dir[600], path[800], idx[900];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.file_dir = dir};
	kaa__log_appender *a = NULL;
	const char *set = "{\"type\":\"file\"}";
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 7, "f", set, &env, &a, NULL, 0), KAA_OK);
	snprintf(path, sizeof(path), "%s/app-1/appender-7.jsonl", dir);
	snprintf(idx, sizeof(idx), "%s.idx", path);
	const char *r[] = {"{\"n\":1}", "{\"n\":2}"};
	bool dup;
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b0", 1, r, 1, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b1", 1, r, 2, 1, &dup), KAA_OK);
	kaa__log_appender_free(a);

	/* the row of b1 never reached the disk */
	sqlite3 *db = NULL;
	CU_ASSERT_EQUAL_FATAL(sqlite3_open(idx, &db), SQLITE_OK);
	CU_ASSERT_EQUAL(
		sqlite3_exec(db, "DELETE FROM batches WHERE batch_id = 'b1'", NULL, NULL, NULL),
		SQLITE_OK);
	sqlite3_close(db);
	/* b2 was written whole (never indexed), b3 only half */
	FILE *f = fopen(path, "ab");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("{\"app\":1,\"endpoint\":\"k\",\"batch\":\"b2\",\"index\":0,\"batch_size\":2,"
	      "\"record\":1}\n"
	      "{\"app\":1,\"endpoint\":\"k\",\"batch\":\"b2\",\"index\":1,\"batch_size\":2,"
	      "\"record\":2}\n",
	      f);
	fclose(f);
	size_t good = 0;
	free(slurp(path, &good));
	f = fopen(path, "ab");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("{\"app\":1,\"endpoint\":\"k\",\"batch\":\"b3\",\"index\":0,\"batch_size\":2,"
	      "\"record\":1}\n",
	      f);
	fclose(f);
	CU_ASSERT_EQUAL(count_lines(path), 6);

	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 7, "f", set, &env, &a, NULL, 0), KAA_OK);
	size_t len = 0;
	free(slurp(path, &len));
	CU_ASSERT_EQUAL(len, good);
	CU_ASSERT_EQUAL(count_lines(path), 5);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b1", 1, r, 2, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b2", 1, r, 2, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b3", 1, r, 2, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(count_lines(path), 7);
	kaa__log_appender_free(a);
	/* and a clean reopen changes nothing */
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 7, "f", set, &env, &a, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL(count_lines(path), 7);
	kaa__log_appender_free(a);
}

/* An operator rotated the file (it restarts empty): appends continue in
 * the new file, and a crash tail there is cut at the last batch's end,
 * not at an offset of the old file. */
static void test_file_rotated(void)
{
	char dir[600], path[800];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.file_dir = dir};
	kaa__log_appender *a = NULL;
	const char *set = "{\"type\":\"file\"}";
	const char *r[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}"};
	bool dup;
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 6, "f", set, &env, &a, NULL, 0), KAA_OK);
	snprintf(path, sizeof(path), "%s/app-1/appender-6.jsonl", dir);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b1", 1, r, 3, 1, &dup), KAA_OK);
	kaa__log_appender_free(a);
	CU_ASSERT_EQUAL_FATAL(truncate(path, 0), 0);

	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 6, "f", set, &env, &a, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b2", 1, r, 1, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b1", 1, r, 3, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true); /* the index outlives the rotation */
	size_t good = 0;
	free(slurp(path, &good));
	kaa__log_appender_free(a);
	FILE *f = fopen(path, "ab");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("{\"app\":1,\"endpoint\":\"k\",\"batch\":\"b3\",\"index\":0,\"record\":1}\n{\"ap", f);
	fclose(f);
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 6, "f", set, &env, &a, NULL, 0), KAA_OK);
	size_t len = 0;
	free(slurp(path, &len));
	CU_ASSERT_EQUAL(len, good);
	CU_ASSERT_EQUAL(count_lines(path), 1);
	kaa__log_appender_free(a);
}

enum { THREADS = 6, BATCHES = 20 };

struct worker {
	kaa__log_appender *a;
	int id, errors, fresh;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const char *r[] = {"{\"a\":1}", "{\"b\":2}"};
	char batch[32], key[16];
	snprintf(key, sizeof(key), "t%d", w->id);
	for (int i = 0; i < BATCHES; i++) {
		bool dup;
		snprintf(batch, sizeof(batch), "own-%d", i);
		if (kaa__log_appender_append(w->a, 1, key, batch, 1, r, 2, 1, &dup) != KAA_OK ||
		    dup)
			w->errors++;
		snprintf(batch, sizeof(batch), "shared-%d", i);
		if (kaa__log_appender_append(w->a, 1, "shared", batch, 1, r, 2, 1, &dup) != KAA_OK)
			w->errors++;
		else if (!dup)
			w->fresh++;
	}
	return NULL;
}

static void test_file_concurrent(void)
{
	char dir[600], path[800];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.file_dir = dir};
	const char *set = "{\"type\":\"file\",\"file\":\"c.jsonl\"}";
	/* two appenders on one file share it (a reload overlaps old and new) */
	kaa__log_appender *a1 = NULL, *a2 = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 1, "a", set, &env, &a1, NULL, 0), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 2, "b", set, &env, &a2, NULL, 0), KAA_OK);
	struct worker w[THREADS];
	pthread_t th[THREADS];
	for (int i = 0; i < THREADS; i++) {
		w[i] = (struct worker){.a = i % 2 ? a1 : a2, .id = i};
		CU_ASSERT_FATAL(pthread_create(&th[i], NULL, worker_main, &w[i]) == 0);
	}
	int fresh = 0, errors = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		fresh += w[i].fresh;
		errors += w[i].errors;
	}
	CU_ASSERT_EQUAL(errors, 0);
	CU_ASSERT_EQUAL(fresh, BATCHES);
	snprintf(path, sizeof(path), "%s/app-1/c.jsonl", dir);
	CU_ASSERT_EQUAL(count_lines(path), (THREADS * BATCHES + BATCHES) * 2);
	kaa__log_appender_free(a1);

	/* another process cannot take the file while we hold it: flock locks
	 * belong to open file descriptions, so a second open() of our own
	 * stands for another process */
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	CU_ASSERT(fd >= 0);
	CU_ASSERT(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0);
	if (fd >= 0)
		close(fd);
	kaa__log_appender_free(a2);
	/* the last handle released the lock */
	fd = open(path, O_WRONLY | O_CLOEXEC);
	CU_ASSERT(fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0);
	if (fd >= 0)
		close(fd);
}

static void test_endpoint_store_appender(void)
{
	char dir[600], url[700];
	fresh_dir(dir, sizeof(dir));
	snprintf(url, sizeof(url), "sqlite:%s/ep.db", dir);
	kaa__ep_store *s = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__ep_store_new(url, &s), KAA_OK);
	kaa__log_appender_env env = {.store = s};
	kaa__log_appender *a = NULL;
	CU_ASSERT_EQUAL(kaa__log_appender_new(1, 1, "x",
					      "{\"type\":\"endpoint-store\",\"file\":\"x.jsonl\"}",
					      &env, &a, NULL, 0),
			KAA_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(kaa__log_appender_new(1, 1, "x", "{\"type\":\"endpoint-store\"}",
						    &env, &a, NULL, 0),
			      KAA_OK);
	CU_ASSERT_STRING_EQUAL(kaa__log_appender_type(a), "endpoint-store");
	const char *r[] = {"1", "2", "3"};
	bool dup = true;
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b", 1, r, 3, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, false);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "k", "b", 1, r, 3, 1, &dup), KAA_OK);
	CU_ASSERT_EQUAL(dup, true);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 2, "k", "b", 1, r, 3, 1, &dup), KAA_ERR_INVAL);
	int64_t count = 0;
	CU_ASSERT_EQUAL(kaa__ep_logs_count(s, 1, "k", &count), KAA_OK);
	CU_ASSERT_EQUAL(count, 3);
	kaa__log_appender_free(a);
	kaa__ep_store_free(s);
}

/* ---- the asynchronous interface ------------------------------------------------ */

struct calls {
	int n;
	kaa__log_status last;
	char reason[128];
};

static void count_done(void *arg, const kaa__log_status *st)
{
	struct calls *c = arg;
	c->n++;
	c->last = *st;
	snprintf(c->reason, sizeof(c->reason), "%s", st->reason ? st->reason : "(null)");
	c->last.reason = c->reason;
}

/* Synchronous types call back exactly once, inside submit; invalid batches
 * are refused as permanent failures without touching the file. */
static void test_submit_callbacks(void)
{
	char dir[600], err[256], path[700];
	fresh_dir(dir, sizeof(dir));
	kaa__log_appender_env env = {.file_dir = dir, .metrics = kaa__metrics_new()};
	kaa__log_appender *a = NULL;
	CU_ASSERT_EQUAL_FATAL(
		kaa__log_appender_new(1, 3, "f", "{\"type\":\"file\"}", &env, &a, err, sizeof(err)),
		KAA_OK);
	CU_ASSERT_FALSE(kaa__log_appender_queues(a));
	const char *recs[] = {"{\"t\":1}", "{\"t\":2}"};
	kaa__log_batch b = {.app_id = 1,
			    .key_hash = "abc",
			    .batch_id = "b1",
			    .schema_version = 1,
			    .records = recs,
			    .n = 2,
			    .received_ms = 1};
	CU_ASSERT_EQUAL(kaa__log_batch_bytes(&b), 14);
	struct calls c = {0};
	kaa__log_appender_submit(a, &b, count_done, &c);
	CU_ASSERT_EQUAL(c.n, 1);
	CU_ASSERT_EQUAL(c.last.result, KAA_LOG_OK);
	CU_ASSERT_FALSE(c.last.duplicate);
	CU_ASSERT_STRING_EQUAL(c.reason, "");
	kaa__log_appender_submit(a, &b, count_done, &c);
	CU_ASSERT_EQUAL(c.n, 2);
	CU_ASSERT_EQUAL(c.last.result, KAA_LOG_OK);
	CU_ASSERT_TRUE(c.last.duplicate);

	kaa__log_batch other = b;
	other.app_id = 2;
	kaa__log_appender_submit(a, &other, count_done, &c);
	CU_ASSERT_EQUAL(c.n, 3);
	CU_ASSERT_EQUAL(c.last.result, KAA_LOG_PERMANENT);
	CU_ASSERT_EQUAL(c.last.err, KAA_ERR_INVAL);
	kaa__log_batch empty = b;
	empty.n = 0;
	empty.batch_id = "b2";
	kaa__log_appender_submit(a, &empty, count_done, &c);
	CU_ASSERT_EQUAL(c.n, 4);
	CU_ASSERT_EQUAL(c.last.result, KAA_LOG_PERMANENT);

	snprintf(path, sizeof(path), "%s/app-1/appender-3.jsonl", dir);
	CU_ASSERT_EQUAL(count_lines(path), 2);

	/* the confirmed records, once: the duplicate does not count */
	char *text = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(kaa__metrics_render(env.metrics, &text, &len), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(
		text,
		"kaa_log_appender_records_total{app=\"1\",appender=\"3\",type=\"file\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "kaa_log_appender_failures_total{app=\"1\",appender="
					    "\"3\",type=\"file\",kind=\"permanent\"} 2\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(
		text, "kaa_log_appender_in_flight{app=\"1\",appender=\"3\",type=\"file\"} 0\n"));
	free(text);
	kaa__log_appender_free(a);
	kaa__metrics_free(env.metrics);
}

/* The node budget: a reservation beyond the maximum fails and charges
 * nothing; an oversized one passes only when nothing else is in flight. */
static void test_inflight_budget(void)
{
	size_t old = kaa__log_inflight_max();
	kaa__log_inflight_set_max(100);
	CU_ASSERT_EQUAL(kaa__log_inflight_used(), 0);
	CU_ASSERT_TRUE(kaa__log_inflight_reserve(60));
	CU_ASSERT_TRUE(kaa__log_inflight_reserve(40));
	CU_ASSERT_FALSE(kaa__log_inflight_reserve(1));
	CU_ASSERT_EQUAL(kaa__log_inflight_used(), 100);
	kaa__log_inflight_release(60);
	CU_ASSERT_FALSE(kaa__log_inflight_reserve(61));
	CU_ASSERT_TRUE(kaa__log_inflight_reserve(60));
	kaa__log_inflight_release(100);
	CU_ASSERT_EQUAL(kaa__log_inflight_used(), 0);
	CU_ASSERT_TRUE(kaa__log_inflight_reserve(1000)); /* alone: admitted */
	CU_ASSERT_FALSE(kaa__log_inflight_reserve(1));
	kaa__log_inflight_release(1000);
	kaa__log_inflight_set_max(old);
}

/* ---- the webhook appender, against a real HTTP server on loopback --------------- */

#define WH_SECRET "0123456789abcdef-webhook-secret"

/* The receiver: answers the scripted statuses in turn (then 200), can be
 * told to stall until released, and keeps what it saw. */
static struct receiver {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int script[8];
	size_t n_script, next;
	bool stall;
	int always; /* after the script (0: 200) */
	int requests, stalled, bad_sig;
	char keys[8][80];
	char content_type[64];
	char body[4096];
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void rx_reset(const int *script, size_t n, bool stall)
{
	pthread_mutex_lock(&rx.mu);
	memset(rx.script, 0, sizeof(rx.script));
	if (n)
		memcpy(rx.script, script, n * sizeof(*script));
	rx.n_script = n;
	rx.next = 0;
	rx.stall = stall;
	rx.always = 0;
	rx.requests = rx.stalled = rx.bad_sig = 0;
	rx.body[0] = rx.content_type[0] = '\0';
	pthread_mutex_unlock(&rx.mu);
}

static void rx_release(void)
{
	pthread_mutex_lock(&rx.mu);
	rx.stall = false;
	pthread_cond_broadcast(&rx.cv);
	pthread_mutex_unlock(&rx.mu);
}

static void rx_handler(const kaa__http_request *req, kaa__http_response *resp, void *ud)
{
	(void)ud;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	char want[2 * EVP_MAX_MD_SIZE + 16] = "sha256=";
	HMAC(EVP_sha256(), WH_SECRET, (int)strlen(WH_SECRET), (const unsigned char *)req->body,
	     req->body_len, mac, &mac_len);
	for (unsigned i = 0; i < mac_len; i++)
		snprintf(want + 7 + 2 * i, 3, "%02x", mac[i]);
	const char *sig = kaa__http_header(req, "X-Kaa-Signature");
	const char *key = kaa__http_header(req, "Idempotency-Key");
	const char *ct = kaa__http_header(req, "Content-Type");
	pthread_mutex_lock(&rx.mu);
	int n = rx.requests++;
	if (n < 8)
		snprintf(rx.keys[n], sizeof(rx.keys[n]), "%s", key ? key : "");
	rx.bad_sig += !sig || strcmp(sig, want) != 0;
	snprintf(rx.content_type, sizeof(rx.content_type), "%s", ct ? ct : "");
	snprintf(rx.body, sizeof(rx.body), "%s", req->body);
	int status = rx.next < rx.n_script ? rx.script[rx.next++] : rx.always ? rx.always : 200;
	rx.stalled++;
	pthread_cond_broadcast(&rx.cv);
	while (rx.stall)
		pthread_cond_wait(&rx.cv, &rx.mu);
	pthread_mutex_unlock(&rx.mu);
	kaa__http_respond(resp, status, "text/plain", "ok", 2);
}

static kaa__http_server *rx_start(int *port)
{
	kaa__http_server *srv = NULL;
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_new("127.0.0.1", 0, NULL, rx_handler, NULL, &srv),
			      KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__http_server_start(srv), KAA_OK);
	*port = kaa__http_server_port(srv);
	return srv;
}

static kaa__log_appender *wh_new(int port, const char *extra, kaa__log_appender_env *env)
{
	char settings[512], err[256];
	snprintf(settings, sizeof(settings),
		 "{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:%d/in\",\"secret\":\"" WH_SECRET
		 "\"%s}",
		 port, extra);
	kaa__log_appender *a = NULL;
	int rc = kaa__log_appender_new(1, 9, "wh", settings, env, &a, err, sizeof(err));
	if (rc != KAA_OK)
		fprintf(stderr, "webhook settings refused: %s\n", err);
	CU_ASSERT_EQUAL_FATAL(rc, KAA_OK);
	return a;
}

static void test_webhook_settings(void)
{
	char err[256];
	const char *good[] = {
		"{\"type\":\"webhook\",\"url\":\"https://example.com/hook\","
		"\"secret\":\"0123456789abcdef\"}",
		"{\"type\":\"webhook\",\"url\":\"http://10.0.0.1:8080/\",\"secret\":"
		"\"0123456789abcdef\",\"format\":\"ndjson\",\"timeout_ms\":100,\"deadline_ms\":1000,"
		"\"backoff_ms\":10,\"max_backoff_ms\":10,\"max_queue\":1,\"max_parallel\":64,"
		"\"ca_pem\":\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}",
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CU_ASSERT_EQUAL(kaa__log_appender_check(good[i], err, sizeof(err)), KAA_OK);
		if (*err)
			fprintf(stderr, "%s: %s\n", good[i], err);
	}
	const struct {
		const char *json, *prefix;
	} bad[] = {
		{"{\"type\":\"webhook\",\"secret\":\"0123456789abcdef\"}", "settings.url:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\"}", "settings.secret:"},
		{"{\"type\":\"webhook\",\"url\":\"ftp://e.com/\",\"secret\":\"0123456789abcdef\"}",
		 "settings.url:"},
		{"{\"type\":\"webhook\",\"url\":\"http://e.com/a b\",\"secret\":\"0123456789abcdef\"}",
		 "settings.url:"},
		{"{\"type\":\"webhook\",\"url\":\"http:///x\",\"secret\":\"0123456789abcdef\"}",
		 "settings.url:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"short\"}",
		 "settings.secret:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"********\"}",
		 "settings.secret:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"0123456789abcdef\","
		 "\"format\":\"xml\"}",
		 "settings.format:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"0123456789abcdef\","
		 "\"timeout_ms\":99}",
		 "settings.timeout_ms:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"0123456789abcdef\","
		 "\"max_queue\":1.5}",
		 "settings.max_queue:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"0123456789abcdef\","
		 "\"timeout_ms\":20000,\"deadline_ms\":10000}",
		 "settings.deadline_ms:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"0123456789abcdef\","
		 "\"ca_pem\":\"x\"}",
		 "settings.ca_pem:"},
		{"{\"type\":\"webhook\",\"url\":\"https://e.com/\",\"secret\":\"0123456789abcdef\","
		 "\"header\":1}",
		 "settings.header:"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CU_ASSERT_EQUAL(kaa__log_appender_check(bad[i].json, err, sizeof(err)),
				KAA_ERR_INVAL);
		if (strncmp(err, bad[i].prefix, strlen(bad[i].prefix)) != 0) {
			fprintf(stderr, "%s: got \"%s\", want \"%s...\"\n", bad[i].json, err,
				bad[i].prefix);
			CU_FAIL("error names the wrong member");
		}
	}
}

/* 500s are retried with the same Idempotency-Key and signature until a
 * 2xx confirms; a 400 is a permanent failure after one request. */
static void test_webhook_retry_and_refusal(void)
{
	int port;
	kaa__http_server *srv = rx_start(&port);
	kaa__log_appender_env env = {.metrics = kaa__metrics_new()};
	kaa__log_appender *a = wh_new(port, ",\"backoff_ms\":10,\"max_backoff_ms\":20", &env);
	CU_ASSERT_TRUE(kaa__log_appender_queues(a));
	CU_ASSERT_STRING_EQUAL(kaa__log_appender_type(a), "webhook");
	const char *recs[] = {"{\"t\":1}", "{\"t\":\n2}"};
	bool dup = true;

	int fail2[] = {500, 503};
	rx_reset(fail2, 2, false);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "abc", "b1", 3, recs, 2, 7, &dup), KAA_OK);
	CU_ASSERT_FALSE(dup);
	pthread_mutex_lock(&rx.mu);
	CU_ASSERT_EQUAL(rx.requests, 3);
	CU_ASSERT_EQUAL(rx.bad_sig, 0);
	CU_ASSERT_EQUAL(strlen(rx.keys[0]), 64);
	CU_ASSERT_STRING_EQUAL(rx.keys[0], rx.keys[1]);
	CU_ASSERT_STRING_EQUAL(rx.keys[0], rx.keys[2]);
	CU_ASSERT_STRING_EQUAL(rx.content_type, "application/json");
	CU_ASSERT_STRING_EQUAL(rx.body, "{\"app\":1,\"appender\":9,\"endpoint\":\"abc\",\"batch\":"
					"\"b1\",\"schema_version\":3,\"received_ms\":7,"
					"\"records\":[{\"t\":1},{\"t\": 2}]}");
	char first_key[80];
	snprintf(first_key, sizeof(first_key), "%s", rx.keys[0]);
	pthread_mutex_unlock(&rx.mu);

	int refuse[] = {400};
	rx_reset(refuse, 1, false);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "abc", "b2", 3, recs, 1, 7, &dup),
			KAA_ERR_PROTOCOL);
	pthread_mutex_lock(&rx.mu);
	CU_ASSERT_EQUAL(rx.requests, 1);
	CU_ASSERT_STRING_NOT_EQUAL(rx.keys[0], first_key); /* another batch */
	pthread_mutex_unlock(&rx.mu);

	/* 429 is retried like a 5xx */
	int busy[] = {429};
	rx_reset(busy, 1, false);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "abc", "b1", 3, recs, 2, 7, &dup), KAA_OK);
	pthread_mutex_lock(&rx.mu);
	CU_ASSERT_EQUAL(rx.requests, 2);
	CU_ASSERT_STRING_EQUAL(rx.keys[0], first_key); /* a re-send keeps its key */
	pthread_mutex_unlock(&rx.mu);

	char *text = NULL;
	size_t len = 0;
	CU_ASSERT_EQUAL_FATAL(kaa__metrics_render(env.metrics, &text, &len), KAA_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "kaa_log_appender_retries_total{app=\"1\",appender="
					    "\"9\",type=\"webhook\"} 3\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "kaa_log_appender_failures_total{app=\"1\",appender="
					    "\"9\",type=\"webhook\",kind=\"permanent\"} 1\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "kaa_log_appender_records_total{app=\"1\",appender="
					    "\"9\",type=\"webhook\"} 4\n"));
	free(text);
	kaa__log_appender_free(a);

	/* ndjson: the file appender's lines */
	a = wh_new(port, ",\"format\":\"ndjson\"", &env);
	rx_reset(NULL, 0, false);
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "abc", "b3", 3, recs, 2, 7, &dup), KAA_OK);
	pthread_mutex_lock(&rx.mu);
	CU_ASSERT_STRING_EQUAL(rx.content_type, "application/x-ndjson");
	CU_ASSERT_STRING_EQUAL(
		rx.body,
		"{\"app\":1,\"endpoint\":\"abc\",\"batch\":\"b3\",\"index\":0,\"batch_size\":"
		"2,\"received_ms\":7,\"schema_version\":3,\"record\":{\"t\":1}}\n"
		"{\"app\":1,\"endpoint\":\"abc\",\"batch\":\"b3\",\"index\":1,\"batch_size\":"
		"2,\"received_ms\":7,\"schema_version\":3,\"record\":{\"t\": 2}}\n");
	CU_ASSERT_EQUAL(rx.bad_sig, 0);
	pthread_mutex_unlock(&rx.mu);
	kaa__log_appender_free(a);
	kaa__http_server_free(srv);
	kaa__metrics_free(env.metrics);
}

/* A receiver that keeps failing: the batch is answered RETRY once the
 * deadline leaves no room for another attempt. Nothing listening: the
 * same, as a transport error. */
static void test_webhook_deadline(void)
{
	int port;
	kaa__http_server *srv = rx_start(&port);
	kaa__log_appender_env env = {0};
	kaa__log_appender *a = wh_new(
		port,
		",\"backoff_ms\":50,\"max_backoff_ms\":100,\"deadline_ms\":1000,\"timeout_ms\":500",
		&env);
	rx_reset(NULL, 0, false);
	pthread_mutex_lock(&rx.mu);
	rx.always = 500;
	pthread_mutex_unlock(&rx.mu);
	const char *recs[] = {"1"};
	bool dup;
	int64_t t0 = kaa__now_ms();
	CU_ASSERT_EQUAL(kaa__log_appender_append(a, 1, "abc", "d1", 1, recs, 1, 7, &dup),
			KAA_ERR_UNAVAILABLE);
	int64_t took = kaa__now_ms() - t0;
	CU_ASSERT_TRUE(took >= 500 && took <= 3000);
	pthread_mutex_lock(&rx.mu);
	CU_ASSERT_TRUE(rx.requests >= 3);
	pthread_mutex_unlock(&rx.mu);
	kaa__log_appender_free(a);
	kaa__http_server_free(srv);

	a = wh_new(port, ",\"backoff_ms\":50,\"deadline_ms\":1000,\"timeout_ms\":200", &env);
	CU_ASSERT_NOT_EQUAL(kaa__log_appender_append(a, 1, "abc", "d2", 1, recs, 1, 7, &dup),
			    KAA_OK);
	kaa__log_appender_free(a);
}

struct async_calls {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int n, ok, retry, rate, perm, canceled;
	kaa__log_appender *free_me; /* freed by the first callback */
};

static void async_done(void *arg, const kaa__log_status *st)
{
	struct async_calls *c = arg;
	pthread_mutex_lock(&c->mu);
	kaa__log_appender *f = c->free_me;
	c->free_me = NULL;
	pthread_mutex_unlock(&c->mu);
	if (f)
		kaa__log_appender_free(f); /* from the appender's own thread */
	pthread_mutex_lock(&c->mu);
	c->n++;
	c->ok += st->result == KAA_LOG_OK;
	c->retry += st->result == KAA_LOG_RETRY;
	c->rate += st->result == KAA_LOG_RATE_LIMITED;
	c->perm += st->result == KAA_LOG_PERMANENT;
	c->canceled += st->err == KAA_ERR_CANCELED;
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

static bool wait_rx_stalled(int n)
{
	struct timespec dl = kaa__timespec_in_ms(CLOCK_REALTIME, 10000);
	pthread_mutex_lock(&rx.mu);
	int rc = 0;
	while (rx.stalled < n && rc == 0)
		rc = pthread_cond_timedwait(&rx.cv, &rx.mu, &dl);
	bool ok = rx.stalled >= n;
	pthread_mutex_unlock(&rx.mu);
	return ok;
}

/* The queue bound answers RATE_LIMITED at once; free with batches in
 * flight answers them RETRY (canceled) before it returns; free from inside
 * a callback does not deadlock. */
static void test_webhook_queue_and_close(void)
{
	int port;
	kaa__http_server *srv = rx_start(&port);
	kaa__log_appender_env env = {0};
	kaa__log_appender *a = wh_new(port, ",\"max_queue\":2,\"max_parallel\":1", &env);
	struct async_calls c = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	const char *recs[] = {"1"};
	kaa__log_batch b = {.app_id = 1, .key_hash = "abc", .records = recs, .n = 1};
	rx_reset(NULL, 0, true);
	b.batch_id = "q1";
	kaa__log_appender_submit(a, &b, async_done, &c);
	b.batch_id = "q2";
	kaa__log_appender_submit(a, &b, async_done, &c);
	b.batch_id = "q3";
	kaa__log_appender_submit(a, &b, async_done, &c);
	pthread_mutex_lock(&c.mu);
	CU_ASSERT_EQUAL(c.n, 1); /* q3, inside submit */
	CU_ASSERT_EQUAL(c.rate, 1);
	pthread_mutex_unlock(&c.mu);
	CU_ASSERT_TRUE_FATAL(wait_rx_stalled(1)); /* q1 at the receiver, q2 queued */
	kaa__log_appender_free(a);
	pthread_mutex_lock(&c.mu);
	CU_ASSERT_EQUAL(c.n, 3);
	CU_ASSERT_EQUAL(c.retry, 2);
	CU_ASSERT_EQUAL(c.canceled, 2);
	pthread_mutex_unlock(&c.mu);
	rx_release();

	/* the first answer's callback frees the appender */
	a = wh_new(port, "", &env);
	struct async_calls d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	d.free_me = a;
	rx_reset(NULL, 0, false);
	b.batch_id = "f1";
	kaa__log_appender_submit(a, &b, async_done, &d);
	struct timespec dl = kaa__timespec_in_ms(CLOCK_REALTIME, 10000);
	pthread_mutex_lock(&d.mu);
	int rc = 0;
	while (d.n < 1 && rc == 0)
		rc = pthread_cond_timedwait(&d.cv, &d.mu, &dl);
	CU_ASSERT_EQUAL(d.n, 1);
	CU_ASSERT_EQUAL(d.ok, 1);
	CU_ASSERT_PTR_NULL(d.free_me);
	pthread_mutex_unlock(&d.mu);
	kaa__http_server_free(srv);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(g_dir, sizeof(g_dir), "%s/kaa-log-appender-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	CU_pSuite s = CU_add_suite("log_appender", NULL, NULL);
	if (!s || !CU_add_test(s, "settings", test_settings) ||
	    !CU_add_test(s, "file_lines_and_duplicates", test_file_lines_and_duplicates) ||
	    !CU_add_test(s, "file_crash_tail", test_file_crash_tail) ||
	    !CU_add_test(s, "file_lost_index_rows", test_file_lost_index_rows) ||
	    !CU_add_test(s, "file_rotated", test_file_rotated) ||
	    !CU_add_test(s, "file_concurrent", test_file_concurrent) ||
	    !CU_add_test(s, "endpoint_store_appender", test_endpoint_store_appender) ||
	    !CU_add_test(s, "submit_callbacks", test_submit_callbacks) ||
	    !CU_add_test(s, "inflight_budget", test_inflight_budget) ||
	    !CU_add_test(s, "webhook_settings", test_webhook_settings) ||
	    !CU_add_test(s, "webhook_retry_and_refusal", test_webhook_retry_and_refusal) ||
	    !CU_add_test(s, "webhook_deadline", test_webhook_deadline) ||
	    !CU_add_test(s, "webhook_queue_and_close", test_webhook_queue_and_close)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	int rc = (CU_get_error() != CUE_SUCCESS || failures > 0) ? 1 : 0;
	CU_cleanup_registry();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", g_dir);
	return rc;
}
