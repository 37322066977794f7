/*
 * ep_store_bench - log batch appends through the endpoint store and the file
 * appender, each beside the raw driver doing the same durable writes in the
 * same run:
 *   - kaa__ep_logs_append on SQLite vs raw sqlite3 (WAL, synchronous=FULL,
 *     one transaction per batch: one batch row + R record rows);
 *   - kaa__ep_logs_append on MongoDB vs raw libmongoc insert_many of R
 *     documents (w=1, j=true, unordered) - only with --mongo;
 *   - the file appender vs raw write()+fsync() of the same bytes.
 * Every thread appends its own endpoint's batches of R small records for S
 * seconds. Prints records/s and the ratio kaa/raw (above 1: kaa faster).
 * Usage: ep_store_bench --dir DIR [--mongo URL] [--seconds S] [--threads N]
 *        [--records R]
 */
#include "base/clock.h"
#include "store/endpoint_store.h"
#include "base/error.h"
#include "appender/log_appender.h"

#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_RECORDS 1000

static const char *dir;
static const char *mongo_url;
static double seconds = 3;
static int threads = 4;
static int nrec = 50;
static const char *recs[MAX_RECORDS];
static char rec_buf[MAX_RECORDS][96];

enum kind { K_STORE, K_RAW_SQLITE, K_RAW_MONGO, K_FILE, K_RAW_FILE };

struct ctx {
	enum kind kind;
	kaa__ep_store *store;
	kaa__log_appender *app;
	const char *sqlite_path;
	mongoc_client_pool_t *pool;
	const char *mongo_db;
	int fd;
	pthread_mutex_t fd_mu;
	atomic_long records, errors;
	atomic_bool stop;
};

struct worker {
	struct ctx *c;
	int id;
};

static int raw_sqlite_batch(sqlite3 *db, sqlite3_stmt *b, sqlite3_stmt *r, int id, long seq)
{
	char batch[64], key[32];
	snprintf(batch, sizeof(batch), "%ld", seq);
	snprintf(key, sizeof(key), "raw%ld-%d", (long)getpid(), id);
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -1;
	sqlite3_reset(b);
	sqlite3_bind_text(b, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(b, 2, batch, -1, SQLITE_STATIC);
	int ok = sqlite3_step(b) == SQLITE_DONE;
	int64_t bs = sqlite3_last_insert_rowid(db);
	for (int i = 0; ok && i < nrec; i++) {
		sqlite3_reset(r);
		sqlite3_bind_int64(r, 1, bs);
		sqlite3_bind_int(r, 2, i);
		sqlite3_bind_text(r, 3, recs[i], -1, SQLITE_STATIC);
		ok = sqlite3_step(r) == SQLITE_DONE;
	}
	if (!ok || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return 0;
}

static int raw_mongo_batch(mongoc_collection_t *col, int id, long seq)
{
	bson_t *docs[MAX_RECORDS];
	bson_error_t e;
	char oid[128];
	for (int i = 0; i < nrec; i++) {
		snprintf(oid, sizeof(oid), "raw%ld-%d:%d:%ld", (long)getpid(), id, i, seq);
		docs[i] = BCON_NEW("_id", BCON_UTF8(oid), "key", BCON_INT32(id), "idx",
				   BCON_INT32(i), "record", BCON_UTF8(recs[i]));
	}
	bson_t *opts = BCON_NEW("ordered", BCON_BOOL(false));
	bool ok = mongoc_collection_insert_many(col, (const bson_t **)docs, (size_t)nrec, opts,
						NULL, &e);
	bson_destroy(opts);
	for (int i = 0; i < nrec; i++)
		bson_destroy(docs[i]);
	return ok ? 0 : -1;
}

static int raw_file_batch(struct ctx *c, int id, long seq)
{
	char line[256];
	char *buf = malloc((size_t)nrec * sizeof(line));
	size_t len = 0;
	if (!buf)
		return -1;
	for (int i = 0; i < nrec; i++)
		len += (size_t)snprintf(buf + len, sizeof(line),
					"{\"app\":1,\"endpoint\":\"raw%d\",\"batch\":\"%ld\","
					"\"index\":%d,\"record\":%s}\n",
					id, seq, i, recs[i]);
	pthread_mutex_lock(&c->fd_mu);
	int rc = write(c->fd, buf, len) == (ssize_t)len && fsync(c->fd) == 0 ? 0 : -1;
	pthread_mutex_unlock(&c->fd_mu);
	free(buf);
	return rc;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct ctx *c = w->c;
	sqlite3 *db = NULL;
	sqlite3_stmt *bst = NULL, *rst = NULL;
	mongoc_client_t *mc = NULL;
	mongoc_collection_t *col = NULL;
	char key[32], batch[32];
	snprintf(key, sizeof(key), "b%ld-%d", (long)getpid(), w->id);
	if (c->kind == K_RAW_SQLITE) {
		if (sqlite3_open_v2(c->sqlite_path, &db,
				    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
			goto out;
		sqlite3_busy_timeout(db, 5000);
		sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
		sqlite3_prepare_v2(db, "INSERT INTO raw_batches (key, batch) VALUES (?1, ?2)", -1,
				   &bst, NULL);
		sqlite3_prepare_v2(db, "INSERT INTO raw_records VALUES (?1, ?2, ?3)", -1, &rst,
				   NULL);
	} else if (c->kind == K_RAW_MONGO) {
		mc = mongoc_client_pool_pop(c->pool);
		col = mongoc_client_get_collection(mc, c->mongo_db, "raw_records");
	}
	for (long seq = 0; !atomic_load(&c->stop); seq++) {
		bool dup = false;
		int rc;
		snprintf(batch, sizeof(batch), "%ld", seq);
		switch (c->kind) {
		case K_STORE:
			rc = kaa__ep_logs_append(c->store, 1, key, batch, 1, recs, (size_t)nrec,
						 kaa__wall_ms(), &dup);
			break;
		case K_FILE:
			rc = kaa__log_appender_append(c->app, 1, key, batch, 1, recs, (size_t)nrec,
						      kaa__wall_ms(), &dup);
			break;
		case K_RAW_SQLITE: rc = raw_sqlite_batch(db, bst, rst, w->id, seq); break;
		case K_RAW_MONGO: rc = raw_mongo_batch(col, w->id, seq); break;
		default: rc = raw_file_batch(c, w->id, seq); break;
		}
		if (rc == 0 && !dup)
			atomic_fetch_add(&c->records, nrec);
		else
			atomic_fetch_add(&c->errors, 1);
	}
out:
	sqlite3_finalize(bst);
	sqlite3_finalize(rst);
	sqlite3_close(db);
	if (col)
		mongoc_collection_destroy(col);
	if (mc)
		mongoc_client_pool_push(c->pool, mc);
	return NULL;
}

/* Runs c with the configured threads for the configured time: records/s. */
static double run(struct ctx *c)
{
	pthread_t th[MAX_THREADS];
	struct worker w[MAX_THREADS];
	atomic_store(&c->records, 0);
	atomic_store(&c->errors, 0);
	atomic_store(&c->stop, false);
	int64_t t0 = kaa__now_ms();
	for (int i = 0; i < threads; i++) {
		w[i] = (struct worker){.c = c, .id = i};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	kaa__sleep_ms_unless((int64_t)(seconds * 1000), NULL);
	atomic_store(&c->stop, true);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double dt = (double)(kaa__now_ms() - t0) / 1000.0;
	if (atomic_load(&c->errors))
		fprintf(stderr, "errors: %ld\n", atomic_load(&c->errors));
	return (double)atomic_load(&c->records) / dt;
}

static void row(const char *what, double kaa, double raw)
{
	printf("| %-34s | %10.0f | %10.0f | %5.2f |\n", what, kaa, raw, raw > 0 ? kaa / raw : 0);
}

/* A fresh database file for every run: the file and its WAL sidecars. */
static void remove_db(const char *path)
{
	char p[1200];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

static int bench_sqlite(void)
{
	char url[1200], path[1100];
	struct ctx c = {.kind = K_STORE};
	snprintf(path, sizeof(path), "%s/ep-bench.db", dir);
	remove_db(path);
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if (kaa__ep_store_new(url, &c.store) != KAA_OK)
		return 1;
	double kaa = run(&c);
	kaa__ep_store_free(c.store);

	sqlite3 *db = NULL;
	snprintf(path, sizeof(path), "%s/raw-bench.db", dir);
	remove_db(path);
	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(
		    db,
		    "PRAGMA journal_mode=WAL; CREATE TABLE raw_batches (seq INTEGER PRIMARY KEY"
		    " AUTOINCREMENT, key TEXT, batch TEXT, UNIQUE (key, batch));"
		    "CREATE TABLE raw_records (bs INTEGER, idx INTEGER, record TEXT,"
		    " PRIMARY KEY (bs, idx)) WITHOUT ROWID",
		    NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return 1;
	}
	sqlite3_close(db);
	struct ctx r = {.kind = K_RAW_SQLITE, .sqlite_path = path};
	double raw = run(&r);
	row("SQLite store vs raw sqlite3", kaa, raw);
	remove_db(path);
	snprintf(path, sizeof(path), "%s/ep-bench.db", dir);
	remove_db(path);
	return 0;
}

static int bench_mongo(void)
{
	struct ctx c = {.kind = K_STORE};
	if (kaa__ep_store_new(mongo_url, &c.store) != KAA_OK)
		return 1;
	double kaa = run(&c);
	kaa__ep_store_free(c.store);

	bson_error_t e;
	mongoc_uri_t *uri = mongoc_uri_new_with_error(mongo_url, &e);
	if (!uri)
		return 1;
	mongoc_write_concern_t *wc = mongoc_write_concern_new();
	mongoc_write_concern_set_w(wc, 1);
	mongoc_write_concern_set_journal(wc, true);
	mongoc_uri_set_write_concern(uri, wc);
	mongoc_write_concern_destroy(wc);
	struct ctx r = {.kind = K_RAW_MONGO};
	const char *db = mongoc_uri_get_database(uri);
	r.mongo_db = db && *db ? db : "kaa";
	r.pool = mongoc_client_pool_new(uri);
	mongoc_client_pool_set_error_api(r.pool, MONGOC_ERROR_API_VERSION_2);
	double raw = run(&r);
	mongoc_client_t *mc = mongoc_client_pool_pop(r.pool);
	mongoc_database_t *d = mongoc_client_get_database(mc, r.mongo_db);
	mongoc_database_drop(d, NULL);
	mongoc_database_destroy(d);
	mongoc_client_pool_push(r.pool, mc);
	mongoc_client_pool_destroy(r.pool);
	mongoc_uri_destroy(uri);
	row("MongoDB store vs raw libmongoc", kaa, raw);
	return 0;
}

static int bench_file(void)
{
	char path[1100];
	struct ctx c = {.kind = K_FILE};
	kaa__log_appender_env env = {.file_dir = dir};
	if (kaa__log_appender_new(1, 1, "bench", "{\"type\":\"file\",\"file\":\"bench.jsonl\"}",
				  &env, &c.app, NULL, 0) != KAA_OK)
		return 1;
	double kaa = run(&c);
	kaa__log_appender_free(c.app);

	struct ctx r = {.kind = K_RAW_FILE};
	snprintf(path, sizeof(path), "%s/raw.jsonl", dir);
	r.fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (r.fd < 0)
		return 1;
	pthread_mutex_init(&r.fd_mu, NULL);
	double raw = run(&r);
	close(r.fd);
	pthread_mutex_destroy(&r.fd_mu);
	row("file appender vs write+fsync", kaa, raw);
	unlink(path);
	snprintf(path, sizeof(path), "%s/app-1/bench.jsonl", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/app-1/bench.jsonl.idx", dir);
	remove_db(path);
	snprintf(path, sizeof(path), "%s/app-1", dir);
	rmdir(path);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
					     {"mongo", required_argument, NULL, 'm'},
					     {"seconds", required_argument, NULL, 's'},
					     {"threads", required_argument, NULL, 't'},
					     {"records", required_argument, NULL, 'r'},
					     {NULL, 0, NULL, 0}};
	int c, status = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'm': mongo_url = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 't': threads = atoi(optarg); break;
		case 'r': nrec = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc || !dir || seconds <= 0 || threads < 1 || threads > MAX_THREADS ||
	    nrec < 1 || nrec > MAX_RECORDS)
		goto usage;
	for (int i = 0; i < nrec; i++) {
		snprintf(rec_buf[i], sizeof(rec_buf[i]),
			 "{\"temperature\":%d.5,\"humidity\":%d,\"seq\":%d}", 20 + i % 10,
			 40 + i % 30, i);
		recs[i] = rec_buf[i];
	}
	mongoc_init();
	printf("log batches of %d records, %d threads, %.1f s each (records/s)\n\n", nrec, threads,
	       seconds);
	printf("| %-34s | %10s | %10s | %5s |\n", "figure", "kaa", "raw", "ratio");
	printf("| %-34s | %10s | %10s | %5s |\n", "---", "---:", "---:", "---:");
	fflush(stdout);
	if (bench_sqlite() != 0) {
		fprintf(stderr, "sqlite benchmark failed\n");
		status = 1;
	}
	if (mongo_url && bench_mongo() != 0) {
		fprintf(stderr, "mongodb benchmark failed\n");
		status = 1;
	}
	if (bench_file() != 0) {
		fprintf(stderr, "file benchmark failed\n");
		status = 1;
	}
	mongoc_cleanup();
	return status;
usage:
	fprintf(stderr,
		"usage: %s --dir DIR [--mongo URL] [--seconds S] [--threads N]"
		" [--records R]\n",
		argv[0]);
	return 2;
}
