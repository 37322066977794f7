/*
 * control_bench - the control REST API of a running kaa-node beside
 * baselines measured in the same run, on the same machine:
 *   - authenticated read  (bearer token) GET  /api/v1/applications/A/groups/G
 *   - authenticated write (bearer token) POST /api/v1/applications/A/groups
 *     with a unique name each time
 * against
 *   - the same HTTP server answering GET /healthz (HTTP stack, no store);
 *   - the raw SQL of the same read and write, run directly through libpq or
 *     sqlite3 on the same database: a SELECT of the group row by primary
 *     key, and an INSERT of a row of the same shape into a scratch table
 *     created (and dropped) here;
 *   - optionally the same read with HTTP Basic credentials (a PBKDF2 hash
 *     per request, by design) beside the bearer read.
 * Every figure: N client threads, each with its own keep-alive libcurl easy
 * handle or database connection, for S seconds; requests/s and p99 latency.
 * Prints one table with the ratio kaa/baseline for each figure.
 *
 * Usage: control_bench --url http://HOST:PORT --token TOKEN --app ID --group ID
 *                      (--pg URL | --sqlite PATH) [--basic USER:PASS]
 *                      [--seconds S] [--threads N]
 */
#include <curl/curl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCRATCH "kaa_bench_scratch"
#define FILTER "{\"cp.region\":\"eu\"}"
#define MAX_THREADS 64

static const char *base_url;
static const char *token;
static const char *basic;
static const char *pg_url;
static const char *sqlite_path;
static long app_id, group_id;
static double seconds = 3;
static int threads = 4;
static long run_tag; /* makes the names written unique across runs */

typedef enum mode {
	M_HEALTHZ,
	M_READ,
	M_WRITE,
	M_BASIC_READ,
	M_SQL_SELECT,
	M_SQL_INSERT,
	M_COUNT
} mode;

static const char *const mode_names[M_COUNT] = {"healthz", "read",   "write",
						"basic",   "select", "insert"};

typedef struct worker {
	int id;
	mode m;
	pthread_barrier_t *start;
	/* HTTP */
	CURL *h;
	struct curl_slist *hdr;
	char url[512];
	/* SQL */
	PGconn *pg;
	sqlite3 *db;
	sqlite3_stmt *st;
	/* results */
	long seq;
	long ops;
	long errors;
	int64_t *lat; /* microseconds, one per counted operation */
	size_t n_lat, cap_lat;
} worker;

typedef struct result {
	double rate; /* operations per second */
	double p99;  /* ms */
	long ops;
	long errors;
} result;

static atomic_bool go_stop;

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

static void pg_note(void *arg, const char *msg)
{
	(void)arg;
	(void)msg; /* "table does not exist, skipping" and the like */
}

/* ---- one operation of each mode ------------------------------------------------ */

static bool http_op(worker *w)
{
	char body[256];
	long code = 0, want = w->m == M_WRITE ? 201 : 200;

	if (w->m == M_WRITE) {
		snprintf(body, sizeof(body),
			 "{\"name\":\"bench-%ld-%d-%ld\",\"weight\":5,\"filter\":%s}", run_tag,
			 w->id, w->seq++, FILTER);
		curl_easy_setopt(w->h, CURLOPT_POSTFIELDS, body);
	}
	return curl_easy_perform(w->h) == CURLE_OK &&
	       curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == want;
}

static bool pg_op(worker *w)
{
	char a[32], g[32], name[96], now[32];
	PGresult *r;
	bool ok;

	if (w->m == M_SQL_SELECT) {
		snprintf(g, sizeof(g), "%ld", group_id);
		const char *v[1] = {g};
		r = PQexecPrepared(w->pg, "sel", 1, v, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	} else {
		snprintf(a, sizeof(a), "%ld", app_id);
		snprintf(name, sizeof(name), "bench-%ld-%d-%ld", run_tag, w->id, w->seq++);
		snprintf(now, sizeof(now), "%" PRId64, wall_ms());
		const char *v[4] = {a, name, FILTER, now};
		r = PQexecPrepared(w->pg, "ins", 4, v, NULL, NULL, 0);
		ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	}
	PQclear(r);
	return ok;
}

static bool lite_op(worker *w)
{
	char name[96];
	bool ok = false;
	int rc;

	if (w->m == M_SQL_SELECT) {
		sqlite3_bind_int64(w->st, 1, group_id);
	} else {
		snprintf(name, sizeof(name), "bench-%ld-%d-%ld", run_tag, w->id, w->seq++);
		sqlite3_bind_int64(w->st, 1, app_id);
		sqlite3_bind_text(w->st, 2, name, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(w->st, 3, FILTER, -1, SQLITE_STATIC);
		sqlite3_bind_int64(w->st, 4, wall_ms());
	}
	rc = sqlite3_step(w->st);
	if (rc == SQLITE_ROW) {
		/* Read the columns as a caller would. */
		int n = sqlite3_column_count(w->st);
		for (int i = 0; i < n; i++)
			(void)sqlite3_column_text(w->st, i);
		ok = sqlite3_step(w->st) == SQLITE_DONE;
	}
	sqlite3_reset(w->st);
	sqlite3_clear_bindings(w->st);
	return ok;
}

static bool do_op(worker *w)
{
	if (w->m < M_SQL_SELECT)
		return http_op(w);
	return w->pg ? pg_op(w) : lite_op(w);
}

/* ---- per-thread set-up --------------------------------------------------------- */

static const char sel_sql[] = "SELECT id, app_id, name, weight, filter, version, created_ms,"
			      " updated_ms FROM endpoint_groups WHERE id = $1";
static const char ins_sql[] = "INSERT INTO " SCRATCH " (app_id, name, weight, filter, version,"
			      " created_ms, updated_ms) VALUES ($1, $2, 5, $3, 1, $4, $4)"
			      " RETURNING id";

static int open_sqlite(sqlite3 **db)
{
	if (sqlite3_open_v2(sqlite_path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		fprintf(stderr, "control_bench: sqlite %s: %s\n", sqlite_path,
			*db ? sqlite3_errmsg(*db) : "cannot open");
		return -1;
	}
	sqlite3_busy_timeout(*db, 5000);
	/* The store's own settings: WAL, synchronous=NORMAL. */
	if (sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL,
			 NULL) != SQLITE_OK) {
		fprintf(stderr, "control_bench: sqlite pragmas: %s\n", sqlite3_errmsg(*db));
		return -1;
	}
	return 0;
}

static PGconn *open_pg(void)
{
	PGconn *c = PQconnectdb(pg_url);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "control_bench: postgresql: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PQsetNoticeProcessor(c, pg_note, NULL);
	return c;
}

static int worker_open(worker *w)
{
	if (w->m < M_SQL_SELECT) {
		char auth[1200];
		w->h = curl_easy_init();
		if (!w->h)
			return -1;
		if (w->m == M_HEALTHZ)
			snprintf(w->url, sizeof(w->url), "%s/healthz", base_url);
		else if (w->m == M_WRITE)
			snprintf(w->url, sizeof(w->url), "%s/api/v1/applications/%ld/groups",
				 base_url, app_id);
		else
			snprintf(w->url, sizeof(w->url), "%s/api/v1/applications/%ld/groups/%ld",
				 base_url, app_id, group_id);
		curl_easy_setopt(w->h, CURLOPT_URL, w->url);
		curl_easy_setopt(w->h, CURLOPT_WRITEFUNCTION, sink);
		curl_easy_setopt(w->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(w->h, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(w->h, CURLOPT_TIMEOUT, 30L);
		if (w->m == M_BASIC_READ) {
			curl_easy_setopt(w->h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(w->h, CURLOPT_USERPWD, basic);
		} else if (w->m != M_HEALTHZ) {
			snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
			w->hdr = curl_slist_append(w->hdr, auth);
		}
		if (w->m == M_WRITE)
			w->hdr = curl_slist_append(w->hdr, "Content-Type: application/json");
		curl_easy_setopt(w->h, CURLOPT_HTTPHEADER, w->hdr);
		return 0;
	}
	const char *sql = w->m == M_SQL_SELECT ? sel_sql : ins_sql;
	if (pg_url) {
		w->pg = open_pg();
		if (!w->pg)
			return -1;
		PGresult *r = PQprepare(w->pg, w->m == M_SQL_SELECT ? "sel" : "ins", sql, 0, NULL);
		bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			fprintf(stderr, "control_bench: prepare: %s", PQerrorMessage(w->pg));
		PQclear(r);
		return ok ? 0 : -1;
	}
	if (open_sqlite(&w->db) != 0)
		return -1;
	if (sqlite3_prepare_v2(w->db, sql, -1, &w->st, NULL) != SQLITE_OK) {
		fprintf(stderr, "control_bench: prepare: %s\n", sqlite3_errmsg(w->db));
		return -1;
	}
	return 0;
}

static void worker_close(worker *w)
{
	if (w->h)
		curl_easy_cleanup(w->h);
	curl_slist_free_all(w->hdr);
	if (w->pg)
		PQfinish(w->pg);
	sqlite3_finalize(w->st);
	sqlite3_close(w->db);
	free(w->lat);
}

static void record(worker *w, int64_t us)
{
	if (w->n_lat == w->cap_lat) {
		size_t cap = w->cap_lat ? w->cap_lat * 2 : 4096;
		int64_t *p = realloc(w->lat, cap * sizeof(*p));
		if (!p)
			return;
		w->lat = p;
		w->cap_lat = cap;
	}
	w->lat[w->n_lat++] = us;
}

/*
 * Opens its handle or connection, does one warm-up operation (connect,
 * prepare, first request) that is not counted, waits for the start, then
 * counts the operations that complete before the stop.
 */
static void *worker_main(void *arg)
{
	worker *w = arg;
	bool ready = worker_open(w) == 0 && do_op(w);

	if (!ready)
		w->errors++;
	pthread_barrier_wait(w->start);
	while (ready && !atomic_load(&go_stop)) {
		int64_t t0 = now_us();
		bool ok = do_op(w);
		int64_t dt = now_us() - t0;
		if (atomic_load(&go_stop))
			break;
		if (ok) {
			w->ops++;
			record(w, dt);
		} else {
			w->errors++;
		}
	}
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static result run(mode m)
{
	pthread_t t[MAX_THREADS];
	worker w[MAX_THREADS];
	pthread_barrier_t start;
	result res = {0};
	size_t n_all = 0;

	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	atomic_store(&go_stop, false);
	for (int i = 0; i < threads; i++) {
		w[i] = (worker){.id = i, .m = m, .start = &start};
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	pthread_barrier_wait(&start);
	int64_t t0 = now_us(), end = t0 + (int64_t)(seconds * 1e6);
	for (int64_t now = t0; now < end; now = now_us()) {
		int64_t left = end - now;
		struct timespec ts = {0, (long)(left < 50000 ? left : 50000) * 1000};
		nanosleep(&ts, NULL);
	}
	atomic_store(&go_stop, true);
	double el = (double)(now_us() - t0) / 1e6;
	for (int i = 0; i < threads; i++) {
		pthread_join(t[i], NULL);
		res.ops += w[i].ops;
		res.errors += w[i].errors;
		n_all += w[i].n_lat;
	}
	int64_t *all = malloc((n_all ? n_all : 1) * sizeof(*all));
	size_t k = 0;
	for (int i = 0; i < threads; i++) {
		if (all && w[i].n_lat)
			memcpy(all + k, w[i].lat, w[i].n_lat * sizeof(*all));
		k += w[i].n_lat;
		worker_close(&w[i]);
	}
	pthread_barrier_destroy(&start);
	res.rate = (double)res.ops / el;
	if (all && n_all) {
		qsort(all, n_all, sizeof(*all), cmp64);
		size_t i99 = (n_all * 99) / 100;
		res.p99 = (double)all[i99 < n_all ? i99 : n_all - 1] / 1000.0;
	}
	free(all);
	return res;
}

/* ---- the scratch table --------------------------------------------------------- */

static int scratch(bool create)
{
	static const char drop[] = "DROP TABLE IF EXISTS " SCRATCH;
	char sql[640];
	int rc = 0;

	snprintf(sql, sizeof(sql),
		 "CREATE TABLE " SCRATCH " (id %s, app_id BIGINT NOT NULL, name TEXT NOT NULL,"
		 " weight BIGINT NOT NULL, filter TEXT NOT NULL, version BIGINT NOT NULL,"
		 " created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"
		 " UNIQUE (app_id, name))",
		 pg_url ? "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
			: "INTEGER PRIMARY KEY AUTOINCREMENT");
	if (pg_url) {
		PGconn *c = open_pg();
		if (!c)
			return -1;
		PGresult *r = PQexec(c, drop);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = -1;
		PQclear(r);
		if (rc == 0 && create) {
			r = PQexec(c, sql);
			if (PQresultStatus(r) != PGRES_COMMAND_OK)
				rc = -1;
			PQclear(r);
		}
		if (rc)
			fprintf(stderr, "control_bench: scratch table: %s", PQerrorMessage(c));
		PQfinish(c);
		return rc;
	}
	sqlite3 *db = NULL;
	if (open_sqlite(&db) != 0) {
		sqlite3_close(db);
		return -1;
	}
	if (sqlite3_exec(db, drop, NULL, NULL, NULL) != SQLITE_OK ||
	    (create && sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)) {
		fprintf(stderr, "control_bench: scratch table: %s\n", sqlite3_errmsg(db));
		rc = -1;
	}
	sqlite3_close(db);
	return rc;
}

/* ---- output -------------------------------------------------------------------- */

static void row(const char *fig, bool ms, double kaa, double base, const char *what)
{
	double ratio = base > 0 ? kaa / base : 0.0;
	if (ms)
		printf("%-26s %10.3f %10.3f %8.3g  %s\n", fig, kaa, base, ratio, what);
	else
		printf("%-26s %10.0f %10.0f %8.3g  %s\n", fig, kaa, base, ratio, what);
}

static void pair(const char *fig, result kaa, result base, const char *what)
{
	char label[64];
	snprintf(label, sizeof(label), "%s req/s", fig);
	row(label, false, kaa.rate, base.rate, what);
	snprintf(label, sizeof(label), "%s p99 (ms)", fig);
	row(label, true, kaa.p99, base.p99, what);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
					     {"token", required_argument, NULL, 'k'},
					     {"app", required_argument, NULL, 'a'},
					     {"group", required_argument, NULL, 'g'},
					     {"pg", required_argument, NULL, 'p'},
					     {"sqlite", required_argument, NULL, 'q'},
					     {"basic", required_argument, NULL, 'b'},
					     {"seconds", required_argument, NULL, 's'},
					     {"threads", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u': base_url = optarg; break;
		case 'k': token = optarg; break;
		case 'a': app_id = atol(optarg); break;
		case 'g': group_id = atol(optarg); break;
		case 'p': pg_url = optarg; break;
		case 'q': sqlite_path = optarg; break;
		case 'b': basic = optarg; break;
		case 's': seconds = atof(optarg); break;
		case 't': threads = atoi(optarg); break;
		default: goto usage;
		}
	}
	if (optind != argc || !base_url || !token || app_id < 1 || group_id < 1 ||
	    !pg_url == !sqlite_path || seconds <= 0 || threads < 1 || threads > MAX_THREADS)
		goto usage;
	size_t ul = strlen(base_url);
	if (ul && base_url[ul - 1] == '/') {
		char *u = strdup(base_url);
		u[ul - 1] = '\0';
		base_url = u;
	}
	run_tag = (long)getpid() * 100000 + (long)(wall_ms() % 100000);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (scratch(true) != 0) {
		curl_global_cleanup();
		return 1;
	}

	result r[M_COUNT] = {{0}};
	for (int m = 0; m < M_COUNT; m++)
		if (m != M_BASIC_READ || basic)
			r[m] = run((mode)m);
	scratch(false);

	const char *db = pg_url ? "libpq" : "sqlite3";
	char sel[64], ins[64];
	snprintf(sel, sizeof(sel), "raw SELECT by id (%s)", db);
	snprintf(ins, sizeof(ins), "raw INSERT (%s)", db);
	printf("%-26s %10s %10s %8s  %s\n", "figure", "kaa", "baseline", "ratio", "baseline is");
	pair("read", r[M_READ], r[M_HEALTHZ], "GET /healthz");
	pair("read", r[M_READ], r[M_SQL_SELECT], sel);
	pair("write", r[M_WRITE], r[M_HEALTHZ], "GET /healthz");
	pair("write", r[M_WRITE], r[M_SQL_INSERT], ins);
	if (basic)
		pair("Basic-auth read", r[M_BASIC_READ], r[M_READ], "bearer read");
	printf("%d threads x %.1f s per figure; errors:", threads, seconds);
	long errs = 0;
	for (int m = 0; m < M_COUNT; m++) {
		if (m == M_BASIC_READ && !basic)
			continue;
		printf(" %s %ld/%ld", mode_names[m], r[m].errors, r[m].ops + r[m].errors);
		errs += r[m].errors;
	}
	printf("\n");
	curl_global_cleanup();
	return errs ? 1 : 0;
usage:
	fprintf(stderr, "usage: control_bench --url http://HOST:PORT --token TOKEN --app ID"
			" --group ID\n"
			"                     (--pg URL | --sqlite PATH) [--basic USER:PASS]\n"
			"                     [--seconds S] [--threads N]\n");
	return 2;
}
