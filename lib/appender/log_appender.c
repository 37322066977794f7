/*
 * log_appender.c - the log appenders of log_appender.h.
 *
 * The file appender's invariant: the file ends where the index says the
 * last stored batch ends, plus the batches of the sync round in progress.
 * An append writes its lines past the end (under the file's mutex) and
 * queues the batch; a sync round fsyncs the file, then indexes every
 * queued batch (batch -> end offset) in one transaction; only then are
 * those batches acknowledged (group commit: concurrent appends share one
 * fsync and one commit). If a write, the fsync or the commit fails, the
 * file is cut back to the durable end and every queued batch fails (the
 * devices re-send them).
 *
 * The file's fsync is the only one per round: the index runs with
 * synchronous=NORMAL, so after a power loss it may lack its last rows.
 * Every line names its batch, its index and the batch size, so the next
 * open re-indexes the complete batches it finds past the index's end and
 * cuts off the first incomplete one (recover_tail): an acknowledged batch
 * was fsync'ed whole, so it is never cut; a cut batch was never
 * acknowledged, so its device re-sends it and it lands once.
 *
 * Files are shared per path within the process (a reload builds the new
 * appender before freeing the old); flock keeps other processes out.
 */
#include "appender/log_appender.h"

#include "store/endpoint_store_internal.h"
#include "appender/appender_type.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/error.h"
#include "json/json_merge.h"
#include "base/clock.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "log_appender"
#define FILE_NAME_MAX 128
/* the largest member: a webhook CA bundle (PEM) */
#define SETTINGS_MAX (64 * 1024)
#define RECOVER_MAX ((off_t)256 * 1024 * 1024)

/* A batch written to the file but not yet fsync'ed and indexed. */
struct pending {
	int64_t app_id;
	char key_hash[KAA_EP_KEY_HASH_MAX + 1];
	char batch_id[KAA_EP_BATCH_ID_MAX + 1];
	off_t end;
	int *result; /* the appender's: set (under mu) when the round ends */
};

struct shared_file {
	char *path;
	int fd;
	sqlite3 *idx;         /* the sync leader's (outside mu) */
	sqlite3 *idx_read;    /* lookups, under mu */
	sqlite3_stmt *find;   /* on idx_read */
	sqlite3_stmt *insert; /* on idx */
	pthread_mutex_t mu;   /* guards everything below */
	pthread_cond_t cv;    /* a sync round ended */
	off_t end;            /* end of everything written */
	off_t durable_end;    /* end of what is fsync'ed and indexed */
	struct pending *pend; /* written, awaiting a sync round */
	size_t n_pend, cap_pend;
	bool syncing; /* a leader runs a round */
	int refs;     /* guarded by files_mu */
	struct shared_file *next;
};

static pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shared_file *files;

/* ---- the shared file ---------------------------------------------------- */

static int mkdirs(const char *dir)
{
	char *d = kaa__xstrdup(dir);
	int rc = KAA_OK;
	for (char *p = d + 1;; p++) {
		bool end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(d, 0750) != 0 && errno != EEXIST) {
			KAA_ERROR(MOD, "mkdir_failed dir=\"%s\" errno=%d", d, errno);
			rc = kaa__err_from_errno(errno);
			break;
		}
		if (end)
			break;
		*p = '/';
	}
	free(d);
	return rc;
}

static int idx_err(sqlite3 *db, const char *what)
{
	if (db && sqlite3_errcode(db) == SQLITE_NOMEM)
		kaa__oom();
	KAA_ERROR(MOD, "index_error op=%s msg=\"%s\"", what, db ? sqlite3_errmsg(db) : "open");
	return KAA_ERR_IO;
}

static void file_close(struct shared_file *f)
{
	if (!f)
		return;
	sqlite3_finalize(f->find);
	sqlite3_finalize(f->insert);
	sqlite3_close(f->idx_read);
	sqlite3_close(f->idx);
	if (f->fd >= 0)
		close(f->fd); /* releases the flock */
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f->pend);
	free(f->path);
	free(f);
}

static int sync_dir(const char *dir)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return kaa__err_from_errno(errno);
	int rc = fsync(dfd) == 0 ? KAA_OK : kaa__err_from_errno(errno);
	close(dfd);
	return rc;
}

/* Cuts the file back to off (after a failed append or a crash). */
static int truncate_to(struct shared_file *f, off_t off)
{
	if (ftruncate(f->fd, off) != 0 || fsync(f->fd) != 0) {
		KAA_ERROR(MOD, "truncate_failed path=\"%s\" errno=%d", f->path, errno);
		return KAA_ERR_IO;
	}
	return KAA_OK;
}

/* The members of one line that recovery needs; false if any is missing. */
static bool line_fields(yajl_val v, int64_t *app, const char **key, const char **batch,
			int64_t *idx, int64_t *size)
{
	const char *p_app[] = {"app", NULL}, *p_ep[] = {"endpoint", NULL}, *p_b[] = {"batch", NULL},
		   *p_i[] = {"index", NULL}, *p_n[] = {"batch_size", NULL};
	yajl_val a = yajl_tree_get(v, p_app, yajl_t_number);
	yajl_val k = yajl_tree_get(v, p_ep, yajl_t_string);
	yajl_val b = yajl_tree_get(v, p_b, yajl_t_string);
	yajl_val i = yajl_tree_get(v, p_i, yajl_t_number);
	yajl_val n = yajl_tree_get(v, p_n, yajl_t_number);
	if (!a || !k || !b || !i || !n || !kaa__json_int64(a, app) || !kaa__json_int64(i, idx) ||
	    !kaa__json_int64(n, size))
		return false;
	*key = k->u.string;
	*batch = b->u.string;
	return *key && *batch;
}

/*
 * The file is longer than the index says: the process died after lines were
 * written (and perhaps fsync'ed: the index commit does not wait for the
 * disk) but before their index rows were durable. Complete batches in the
 * tail are indexed again - they may have been acknowledged; the first
 * incomplete or unreadable line and everything after it is cut off (never
 * acknowledged: the fsync covering it had not returned).
 */
static int recover_tail(struct shared_file *f, off_t size)
{
	int err = KAA_OK;
	off_t good = f->end, len = size - f->end;
	char *buf = NULL;
	int rfd = -1;
	size_t indexed = 0;
	int64_t app = 0, want = 0, size_n = 0;
	char key[KAA_EP_KEY_HASH_MAX + 1] = "", batch[KAA_EP_BATCH_ID_MAX + 1] = "";

	if (len > RECOVER_MAX) {
		KAA_WARN(MOD, "tail_too_long path=\"%s\" bytes=%lld", f->path, (long long)len);
		goto cut;
	}
	buf = kaa__xmalloc((size_t)len + 1);
	rfd = open(f->path, O_RDONLY | O_CLOEXEC);
	if (rfd < 0 || pread(rfd, buf, (size_t)len, f->end) != (ssize_t)len) {
		err = KAA_ERR_IO;
		goto out;
	}
	if (sqlite3_exec(f->idx, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		err = idx_err(f->idx, "recover");
		goto out;
	}
	for (off_t at = 0; at < len;) {
		char *nl = memchr(buf + at, '\n', (size_t)(len - at));
		if (!nl)
			break;
		size_t ll = (size_t)(nl - (buf + at));
		yajl_val v = NULL;
		int64_t la, li, ln;
		const char *lk, *lb;
		bool ok = kaa__json_parse(buf + at, ll, KAA_EP_LOG_RECORD_MAX + 4096, 80, &v, NULL,
					  0) == KAA_OK &&
			  line_fields(v, &la, &lk, &lb, &li, &ln) && ln >= 1 && ln <= 1000 &&
			  strlen(lk) <= KAA_EP_KEY_HASH_MAX && strlen(lb) <= KAA_EP_BATCH_ID_MAX &&
			  li == want;
		/* a batch continues with its own lines only */
		if (ok && want > 0)
			ok = la == app && strcmp(lk, key) == 0 && strcmp(lb, batch) == 0 &&
			     ln == size_n;
		if (ok && li == 0) {
			app = la;
			size_n = ln;
			snprintf(key, sizeof(key), "%s", lk);
			snprintf(batch, sizeof(batch), "%s", lb);
		}
		yajl_tree_free(v);
		if (!ok)
			break;
		at += (off_t)ll + 1;
		want = li + 1;
		if (want < size_n)
			continue;
		want = 0; /* a whole batch */
		sqlite3_reset(f->insert);
		sqlite3_bind_int64(f->insert, 1, app);
		sqlite3_bind_text(f->insert, 2, key, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(f->insert, 3, batch, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(f->insert, 4, (int64_t)(f->end + at));
		int rc = sqlite3_step(f->insert);
		sqlite3_reset(f->insert);
		if (rc != SQLITE_DONE && (rc & 0xff) != SQLITE_CONSTRAINT) {
			err = idx_err(f->idx, "recover_insert");
			break;
		}
		good = f->end + at;
		indexed++;
	}
	if (err == KAA_OK && sqlite3_exec(f->idx, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		err = idx_err(f->idx, "recover_commit");
	if (err != KAA_OK) {
		sqlite3_exec(f->idx, "ROLLBACK", NULL, NULL, NULL);
		goto out;
	}
cut:
	KAA_WARN(MOD,
		 "unindexed_tail path=\"%s\" size=%lld end=%lld batches_recovered=%zu"
		 " cut_at=%lld",
		 f->path, (long long)size, (long long)f->end, indexed, (long long)good);
	f->end = good;
	if (good < size)
		err = truncate_to(f, good);
out:
	if (rfd >= 0)
		close(rfd);
	free(buf);
	return err;
}

static int file_open(const char *dir, const char *path, struct shared_file **out)
{
	struct stat st;
	int err = KAA_OK;
	char *idx_path = NULL;
	struct shared_file *f = kaa__xcalloc(1, sizeof(*f));
	f->fd = -1;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	f->path = kaa__xstrdup(path);
	idx_path = kaa__xasprintf("%s.idx", path);
	if ((err = mkdirs(dir)) != KAA_OK)
		goto out;
	f->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (f->fd < 0) {
		KAA_ERROR(MOD, "open_failed path=\"%s\" errno=%d", path, errno);
		err = kaa__err_from_errno(errno);
		goto out;
	}
	if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
		KAA_ERROR(MOD, "file_locked path=\"%s\" errno=%d", path, errno);
		err = errno == EWOULDBLOCK ? KAA_ERR_EXISTS : kaa__err_from_errno(errno);
		goto out;
	}
	/* rowid order is append order: the last row tells where the file
	 * must end, even after the file was rotated and restarted at 0 */
	if (sqlite3_open_v2(idx_path, &f->idx,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_exec(
		    f->idx,
		    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		    "CREATE TABLE IF NOT EXISTS batches (app_id INTEGER NOT NULL,"
		    " key_hash TEXT NOT NULL, batch_id TEXT NOT NULL, end_off INTEGER NOT NULL,"
		    " UNIQUE (app_id, key_hash, batch_id));",
		    NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(f->idx,
			       "INSERT INTO batches (app_id, key_hash, batch_id, end_off)"
			       " VALUES (?1, ?2, ?3, ?4)",
			       -1, &f->insert, NULL) != SQLITE_OK) {
		err = idx_err(f->idx, "open");
		goto out;
	}
	if (sqlite3_open_v2(idx_path, &f->idx_read, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK ||
	    sqlite3_busy_timeout(f->idx_read, 5000) != SQLITE_OK ||
	    sqlite3_prepare_v2(f->idx_read,
			       "SELECT 1 FROM batches WHERE app_id = ?1 AND key_hash = ?2"
			       " AND batch_id = ?3",
			       -1, &f->find, NULL) != SQLITE_OK) {
		err = idx_err(f->idx_read, "open");
		goto out;
	}
	sqlite3_stmt *mx = NULL;
	int rc = sqlite3_prepare_v2(
		f->idx, "SELECT end_off FROM batches ORDER BY rowid DESC LIMIT 1", -1, &mx, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(mx);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		sqlite3_finalize(mx);
		err = idx_err(f->idx, "last");
		goto out;
	}
	f->end = rc == SQLITE_ROW ? (off_t)sqlite3_column_int64(mx, 0) : 0;
	sqlite3_finalize(mx);
	if (fstat(f->fd, &st) != 0) {
		err = kaa__err_from_errno(errno);
		goto out;
	}
	if (st.st_size > f->end) {
		err = recover_tail(f, st.st_size);
	} else if (st.st_size < f->end) {
		/* rotated or truncated by someone else: continue where it is */
		KAA_WARN(MOD, "file_shorter_than_index path=\"%s\" size=%lld end=%lld", path,
			 (long long)st.st_size, (long long)f->end);
		f->end = st.st_size;
	}
	f->durable_end = f->end;
	if (err == KAA_OK)
		err = sync_dir(dir);
out:
	free(idx_path);
	if (err != KAA_OK) {
		file_close(f);
		f = NULL;
	}
	*out = f;
	return err;
}

static int file_get(const char *dir, const char *path, struct shared_file **out)
{
	int err = KAA_OK;
	pthread_mutex_lock(&files_mu);
	struct shared_file *f;
	for (f = files; f; f = f->next)
		if (strcmp(f->path, path) == 0)
			break;
	if (!f) {
		err = file_open(dir, path, &f);
		if (err == KAA_OK) {
			f->next = files;
			files = f;
		}
	}
	if (f)
		f->refs++;
	pthread_mutex_unlock(&files_mu);
	*out = f;
	return err;
}

static void file_put(struct shared_file *f)
{
	if (!f)
		return;
	pthread_mutex_lock(&files_mu);
	bool last = --f->refs == 0;
	if (last)
		for (struct shared_file **p = &files; *p; p = &(*p)->next)
			if (*p == f) {
				*p = f->next;
				break;
			}
	pthread_mutex_unlock(&files_mu);
	if (last)
		file_close(f);
}

/* ---- lines ------------------------------------------------------------------ */

/* batch ids are checked UTF-8 without control characters: only '"' and
 * '\\' need escaping */
static void buf_json_str(kaa__buf *b, const char *s)
{
	kaa__buf_put(b, "\"", 1);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			kaa__buf_put(b, "\\", 1);
		kaa__buf_put(b, s, 1);
	}
	kaa__buf_put(b, "\"", 1);
}

static int build_lines(kaa__buf *b, int64_t app_id, const char *key_hash, const char *batch_id,
		       int64_t schema_version, const char *const *records, size_t n,
		       int64_t received_ms)
{
	for (size_t i = 0; i < n; i++) {
		kaa__buf_printf(b, "{\"app\":%" PRId64 ",\"endpoint\":\"", app_id);
		kaa__buf_puts(b, key_hash);
		kaa__buf_puts(b, "\",\"batch\":");
		buf_json_str(b, batch_id);
		kaa__buf_printf(b,
				",\"index\":%zu,\"batch_size\":%zu,\"received_ms\":%" PRId64
				",\"schema_version\":%" PRId64 ",\"record\":",
				i, n, received_ms, schema_version);
		/* valid JSON has raw CR/LF only as whitespace between tokens */
		size_t start = b->len;
		if (kaa__buf_puts(b, records[i]) == KAA_OK)
			for (size_t k = start; k < b->len; k++)
				if (b->p[k] == '\n' || b->p[k] == '\r')
					b->p[k] = ' ';
		kaa__buf_put(b, "}\n", 2);
	}
	return b->err;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return kaa__err_from_errno(errno);
		}
		p += w;
		n -= (size_t)w;
	}
	return KAA_OK;
}

static bool is_pending(struct shared_file *f, int64_t app_id, const char *key_hash,
		       const char *batch_id)
{
	for (size_t i = 0; i < f->n_pend; i++)
		if (f->pend[i].app_id == app_id && strcmp(f->pend[i].key_hash, key_hash) == 0 &&
		    strcmp(f->pend[i].batch_id, batch_id) == 0)
			return true;
	return false;
}

/* One sync round, run by one appender (the leader) for everything pending:
 * fsync the file, index all pending batches in one transaction, and wake
 * their appenders. Called and returns with mu held; drops it for the I/O,
 * while others keep writing (their batches wait for the next round). On
 * failure every pending batch fails and the file is cut back to
 * durable_end, so it never holds an unindexed batch for long. */
static void sync_round(struct shared_file *f)
{
	size_t n = f->n_pend;
	off_t end = f->end;
	struct pending *batch = kaa__xmalloc(n * sizeof(*batch));
	int err = KAA_OK;
	memcpy(batch, f->pend, n * sizeof(*batch));
	f->syncing = true;
	pthread_mutex_unlock(&f->mu);

	if (fsync(f->fd) != 0) {
		KAA_ERROR(MOD, "fsync_failed path=\"%s\" errno=%d", f->path, errno);
		err = KAA_ERR_IO;
	}
	if (err == KAA_OK && sqlite3_exec(f->idx, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		err = idx_err(f->idx, "begin");
	for (size_t i = 0; i < n && err == KAA_OK; i++) {
		sqlite3_reset(f->insert);
		sqlite3_bind_int64(f->insert, 1, batch[i].app_id);
		sqlite3_bind_text(f->insert, 2, batch[i].key_hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(f->insert, 3, batch[i].batch_id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(f->insert, 4, (int64_t)batch[i].end);
		if (sqlite3_step(f->insert) != SQLITE_DONE)
			err = idx_err(f->idx, "insert");
		sqlite3_reset(f->insert);
	}
	if (err == KAA_OK && sqlite3_exec(f->idx, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		err = idx_err(f->idx, "commit");
	if (err != KAA_OK && !sqlite3_get_autocommit(f->idx))
		sqlite3_exec(f->idx, "ROLLBACK", NULL, NULL, NULL);

	pthread_mutex_lock(&f->mu);
	if (err == KAA_OK) {
		/* the first n pending entries were this round's */
		for (size_t i = 0; i < n; i++)
			*f->pend[i].result = KAA_OK;
		memmove(f->pend, f->pend + n, (f->n_pend - n) * sizeof(*f->pend));
		f->n_pend -= n;
		f->durable_end = end;
	} else {
		truncate_to(f, f->durable_end);
		for (size_t i = 0; i < f->n_pend; i++)
			*f->pend[i].result = KAA_ERR_IO;
		f->n_pend = 0;
		f->end = f->durable_end;
	}
	f->syncing = false;
	pthread_cond_broadcast(&f->cv);
	free(batch);
}

/*
 * Group commit: an appender writes its lines at the end of the file under
 * mu and queues the batch; whoever finds no round running leads one for
 * everything queued; the others wait for the round that covers their
 * batch. Many appenders thus share one fsync and one index commit.
 */
static int file_append(struct shared_file *f, int64_t app_id, const char *key_hash,
		       const char *batch_id, int64_t schema_version, const char *const *records,
		       size_t n, int64_t received_ms, bool *duplicate)
{
	kaa__buf b = {0};
	int result = 1; /* > 0: not decided yet */
	int err = build_lines(&b, app_id, key_hash, batch_id, schema_version, records, n,
			      received_ms);
	if (err == KAA_ERR_NOMEM)
		kaa__oom();
	if (err != KAA_OK)
		goto done;
	pthread_mutex_lock(&f->mu);
	/* the same batch in flight from another session: wait for its round */
	while (is_pending(f, app_id, key_hash, batch_id))
		pthread_cond_wait(&f->cv, &f->mu);
	sqlite3_reset(f->find);
	sqlite3_bind_int64(f->find, 1, app_id);
	sqlite3_bind_text(f->find, 2, key_hash, -1, SQLITE_STATIC);
	sqlite3_bind_text(f->find, 3, batch_id, -1, SQLITE_STATIC);
	int rc = sqlite3_step(f->find);
	sqlite3_reset(f->find);
	if (rc == SQLITE_ROW) {
		*duplicate = true;
		goto out;
	}
	if (rc != SQLITE_DONE) {
		err = idx_err(f->idx_read, "find");
		goto out;
	}
	if (f->n_pend == f->cap_pend) {
		size_t cap = f->cap_pend ? f->cap_pend * 2 : 16;
		f->pend = kaa__xrealloc(f->pend, cap * sizeof(*f->pend));
		f->cap_pend = cap;
	}
	err = write_all(f->fd, b.p, b.len);
	if (err != KAA_OK) {
		KAA_ERROR(MOD, "write_failed path=\"%s\" err=%s", f->path, kaa_strerror(err));
		err = KAA_ERR_IO;
		truncate_to(f, f->end); /* earlier pending batches stay whole */
		goto out;
	}
	f->end += (off_t)b.len;
	struct pending *p = &f->pend[f->n_pend++];
	p->app_id = app_id;
	snprintf(p->key_hash, sizeof(p->key_hash), "%s", key_hash);
	snprintf(p->batch_id, sizeof(p->batch_id), "%s", batch_id);
	p->end = f->end;
	p->result = &result;
	while (result > 0) {
		if (!f->syncing)
			sync_round(f);
		else
			pthread_cond_wait(&f->cv, &f->mu);
	}
	err = result;
out:
	pthread_mutex_unlock(&f->mu);
done:
	kaa__buf_free(&b);
	return err;
}

/* ---- the endpoint-store and file types -------------------------------------- */

static bool file_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > FILE_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static int store_check(yajl_val v, char *err, size_t errlen)
{
	for (size_t i = 0; i < v->u.object.len; i++)
		if (strcmp(v->u.object.keys[i], "type") != 0) {
			kaa__appender_set_err(err, errlen, "settings.%s: %s", v->u.object.keys[i],
					      strcmp(v->u.object.keys[i], "file") == 0
						      ? "not for type endpoint-store"
						      : "unknown member");
			return KAA_ERR_INVAL;
		}
	return KAA_OK;
}

static int store_open(const kaa__appender_args *args, yajl_val v, void **impl, char *err,
		      size_t errlen)
{
	(void)v;
	if (!args->env->store) {
		kaa__appender_set_err(err, errlen, "%s", "no endpoint store on this node");
		return KAA_ERR_INVAL;
	}
	*impl = args->env->store;
	return KAA_OK;
}

static void store_submit(void *impl, const kaa__log_batch *b, kaa__log_done_fn *done, void *arg)
{
	bool dup = false;
	int rc = kaa__ep_logs_append(impl, b->app_id, b->key_hash, b->batch_id, b->schema_version,
				     b->records, b->n, b->received_ms, &dup);
	if (rc == KAA_OK)
		kaa__appender_done(done, arg, KAA_LOG_OK, KAA_OK, dup, NULL);
	else if (rc == KAA_ERR_INVAL || rc == KAA_ERR_TOO_BIG)
		kaa__appender_done(done, arg, KAA_LOG_PERMANENT, rc, false, kaa_strerror(rc));
	else
		kaa__appender_done(done, arg, KAA_LOG_RETRY, rc, false, "storage unavailable");
}

static void store_close(void *impl)
{
	(void)impl; /* the node's store */
}

const kaa__appender_type kaa__appender_store = {
	.name = "endpoint-store",
	.check = store_check,
	.open = store_open,
	.submit = store_submit,
	.close = store_close,
};

static int file_check(yajl_val v, char *err, size_t errlen)
{
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val m = v->u.object.values[i];
		if (strcmp(k, "type") == 0)
			continue;
		if (strcmp(k, "file") != 0 || !YAJL_IS_STRING(m)) {
			kaa__appender_set_err(err, errlen,
					      "settings.%s: unknown member or not a string", k);
			return KAA_ERR_INVAL;
		}
		if (!file_name_ok(m->u.string)) {
			kaa__appender_set_err(
				err, errlen, "%s",
				"settings.file: 1..128 of [A-Za-z0-9._-], not starting with '.'");
			return KAA_ERR_INVAL;
		}
	}
	return KAA_OK;
}

static int file_open_type(const kaa__appender_args *args, yajl_val v, void **impl, char *err,
			  size_t errlen)
{
	const char *p_file[] = {"file", NULL};
	yajl_val fv = yajl_tree_get(v, p_file, yajl_t_string);
	const kaa__log_appender_env *env = args->env;
	struct shared_file *f = NULL;
	if (!env->file_dir || !*env->file_dir) {
		kaa__appender_set_err(err, errlen, "%s", "no log file directory on this node");
		return KAA_ERR_INVAL;
	}
	char *file = fv ? kaa__xstrdup(fv->u.string)
			: kaa__xasprintf("appender-%" PRId64 ".jsonl", args->id);
	char *dir = kaa__xasprintf("%s/app-%" PRId64, env->file_dir, args->app_id);
	char *path = kaa__xasprintf("%s/%s", dir, file);
	int rc = file_get(dir, path, &f);
	if (rc != KAA_OK)
		kaa__appender_set_err(err, errlen, "%s",
				      rc == KAA_ERR_EXISTS
					      ? "log file in use by another process"
					      : "cannot open the log file (see the node log)");
	free(path);
	free(dir);
	free(file);
	*impl = f;
	return rc;
}

static void file_submit(void *impl, const kaa__log_batch *b, kaa__log_done_fn *done, void *arg)
{
	bool dup = false;
	int rc = file_append(impl, b->app_id, b->key_hash, b->batch_id, b->schema_version,
			     b->records, b->n, b->received_ms, &dup);
	if (rc == KAA_OK)
		kaa__appender_done(done, arg, KAA_LOG_OK, KAA_OK, dup, NULL);
	else
		kaa__appender_done(done, arg, KAA_LOG_RETRY, rc, false, "log file unavailable");
}

static void file_close_type(void *impl)
{
	file_put(impl);
}

const kaa__appender_type kaa__appender_file = {
	.name = "file",
	.check = file_check,
	.open = file_open_type,
	.submit = file_submit,
	.close = file_close_type,
};

/* ---- the generic part ---------------------------------------------------------- */

static const kaa__appender_type *const types[] = {
	&kaa__appender_store,
	&kaa__appender_file,
	&kaa__appender_webhook,
	&kaa__appender_kafka,
};
#define N_TYPES (sizeof(types) / sizeof(types[0]))

struct kaa__log_appender {
	const kaa__appender_type *t;
	void *impl;
	int64_t app_id, id;
	kaa__counter *records, *bytes, *retries;
	kaa__counter *fail_retry, *fail_rate, *fail_perm;
	kaa__gauge *inflight;
	kaa__histogram *latency;
};

/* One submit on its way through the type (the callback wrapper). */
struct submit_ctx {
	kaa__log_appender *a;
	kaa__log_done_fn *done;
	void *arg;
	int64_t start_ms;
	size_t n, bytes;
};

void kaa__appender_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (!err || !errlen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

void kaa__appender_done(kaa__log_done_fn *done, void *arg, kaa__log_result r, int err,
			bool duplicate, const char *reason)
{
	kaa__log_status st = {
		.result = r, .err = err, .duplicate = duplicate, .reason = reason ? reason : ""};
	done(arg, &st);
}

size_t kaa__log_batch_bytes(const kaa__log_batch *b)
{
	size_t n = 0;
	for (size_t i = 0; i < b->n; i++)
		n += strlen(b->records[i]);
	return n;
}

/* Parses settings and finds the type: *root holds the tree (caller frees). */
static int settings_parse(const char *json, yajl_val *root, const kaa__appender_type **type,
			  char *err, size_t errlen)
{
	char jerr[KAA_JSON_ERR_SIZE];
	const char *p_type[] = {"type", NULL};
	*root = NULL;
	*type = NULL;
	if (kaa__json_parse(json, strlen(json), SETTINGS_MAX, 8, root, jerr, sizeof(jerr)) !=
	    KAA_OK) {
		kaa__appender_set_err(err, errlen, "settings: %s", jerr);
		return KAA_ERR_INVAL;
	}
	if (!YAJL_IS_OBJECT(*root)) {
		kaa__appender_set_err(err, errlen, "%s", "settings: must be an object");
		return KAA_ERR_INVAL;
	}
	yajl_val t = yajl_tree_get(*root, p_type, yajl_t_any);
	for (size_t i = 0; t && YAJL_IS_STRING(t) && i < N_TYPES; i++)
		if (strcmp(t->u.string, types[i]->name) == 0)
			*type = types[i];
	if (!*type) {
		char names[256] = "";
		size_t o = 0;
		for (size_t i = 0; i < N_TYPES && o < sizeof(names); i++)
			o += (size_t)snprintf(names + o, sizeof(names) - o, "%s\"%s\"",
					      i ? ", " : "", types[i]->name);
		kaa__appender_set_err(err, errlen, "settings.type: one of %s", names);
		return KAA_ERR_INVAL;
	}
	return (*type)->check(*root, err, errlen);
}

int kaa__log_appender_check(const char *settings_json, char *err, size_t errlen)
{
	yajl_val root = NULL;
	const kaa__appender_type *t;
	kaa__appender_set_err(err, errlen, "%s", "");
	if (!settings_json)
		return KAA_ERR_INVAL;
	int rc = settings_parse(settings_json, &root, &t, err, errlen);
	yajl_tree_free(root);
	return rc;
}

static void register_metrics(kaa__log_appender *a, kaa__metrics *m)
{
	static const double bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					0.5,   1,     2.5,  5,     10,   30};
	char l[160], lk[200];
	if (!m)
		return;
	snprintf(l, sizeof(l), "app=\"%" PRId64 "\",appender=\"%" PRId64 "\",type=\"%s\"",
		 a->app_id, a->id, a->t->name);
	a->records =
		kaa__metrics_counter(m, "kaa_log_appender_records_total",
				     "Log records the appender confirmed (not duplicates).", l);
	a->bytes = kaa__metrics_counter(m, "kaa_log_appender_bytes_total",
					"Record bytes the appender confirmed.", l);
	a->retries = kaa__metrics_counter(m, "kaa_log_appender_retries_total",
					  "Delivery attempts the appender repeated.", l);
	const char *h = "Batches the appender did not accept, by kind.";
	snprintf(lk, sizeof(lk), "%s,kind=\"retryable\"", l);
	a->fail_retry = kaa__metrics_counter(m, "kaa_log_appender_failures_total", h, lk);
	snprintf(lk, sizeof(lk), "%s,kind=\"rate_limited\"", l);
	a->fail_rate = kaa__metrics_counter(m, "kaa_log_appender_failures_total", h, lk);
	snprintf(lk, sizeof(lk), "%s,kind=\"permanent\"", l);
	a->fail_perm = kaa__metrics_counter(m, "kaa_log_appender_failures_total", h, lk);
	a->inflight = kaa__metrics_gauge(m, "kaa_log_appender_in_flight",
					 "Batches submitted and not yet answered.", l);
	a->latency = kaa__metrics_histogram(m, "kaa_log_appender_confirm_seconds",
					    "Time from submit to the appender's answer.", l, bounds,
					    sizeof(bounds) / sizeof(bounds[0]));
}

int kaa__log_appender_new(int64_t app_id, int64_t id, const char *name, const char *settings_json,
			  const kaa__log_appender_env *env, kaa__log_appender **out, char *err,
			  size_t errlen)
{
	yajl_val root = NULL;
	const kaa__appender_type *t = NULL;
	kaa__log_appender *a = NULL;

	kaa__appender_set_err(err, errlen, "%s", "");
	if (!out)
		return KAA_ERR_INVAL;
	*out = NULL;
	if (app_id < 1 || id < 1 || !settings_json || !env) {
		kaa__appender_set_err(err, errlen, "%s", "missing argument");
		return KAA_ERR_INVAL;
	}
	int rc = settings_parse(settings_json, &root, &t, err, errlen);
	if (rc != KAA_OK)
		goto out;
	a = kaa__xcalloc(1, sizeof(*a));
	a->t = t;
	a->app_id = app_id;
	a->id = id;
	register_metrics(a, env->metrics);
	kaa__appender_args args = {
		.app_id = app_id, .id = id, .name = name, .env = env, .retries = a->retries};
	rc = t->open(&args, root, &a->impl, err, errlen);
	if (rc != KAA_OK) {
		free(a);
		goto out;
	}
	*out = a;
out:
	yajl_tree_free(root);
	return rc;
}

void kaa__log_appender_free(kaa__log_appender *a)
{
	if (!a)
		return;
	a->t->close(a->impl);
	free(a);
}

const char *kaa__log_appender_type(const kaa__log_appender *a)
{
	return a ? a->t->name : "";
}

int64_t kaa__log_appender_id(const kaa__log_appender *a)
{
	return a ? a->id : 0;
}

bool kaa__log_appender_queues(const kaa__log_appender *a)
{
	return a && a->t->queues;
}

/* The metrics are updated before the caller's callback runs: it may free
 * the appender. */
static void submit_done(void *arg, const kaa__log_status *st)
{
	struct submit_ctx *c = arg;
	kaa__log_appender *a = c->a;
	kaa__gauge_add(a->inflight, -1);
	kaa__histogram_observe(a->latency, (double)(kaa__now_ms() - c->start_ms) / 1000.0);
	switch (st->result) {
	case KAA_LOG_OK:
		if (!st->duplicate) {
			kaa__counter_add(a->records, c->n);
			kaa__counter_add(a->bytes, c->bytes);
		}
		break;
	case KAA_LOG_RETRY: kaa__counter_inc(a->fail_retry); break;
	case KAA_LOG_RATE_LIMITED: kaa__counter_inc(a->fail_rate); break;
	case KAA_LOG_PERMANENT: kaa__counter_inc(a->fail_perm); break;
	}
	kaa__log_done_fn *done = c->done;
	void *uarg = c->arg;
	free(c);
	done(uarg, st);
}

void kaa__log_appender_submit(kaa__log_appender *a, const kaa__log_batch *b, kaa__log_done_fn *done,
			      void *arg)
{
	int err;
	if (!done)
		return;
	if (!a || !b || b->app_id != a->app_id) {
		if (a)
			kaa__counter_inc(a->fail_perm);
		kaa__appender_done(done, arg, KAA_LOG_PERMANENT, KAA_ERR_INVAL, false,
				   "batch of another application");
		return;
	}
	if ((err = kaa__ep_check_key(b->key_hash)) != KAA_OK ||
	    (err = kaa__ep_check_batch_id(b->batch_id)) != KAA_OK ||
	    (err = kaa__ep_check_records(b->records, b->n)) != KAA_OK) {
		kaa__counter_inc(a->fail_perm);
		kaa__appender_done(done, arg, KAA_LOG_PERMANENT, err, false, "invalid batch");
		return;
	}
	struct submit_ctx *c = kaa__xmalloc(sizeof(*c));
	*c = (struct submit_ctx){.a = a,
				 .done = done,
				 .arg = arg,
				 .start_ms = kaa__now_ms(),
				 .n = b->n,
				 .bytes = kaa__log_batch_bytes(b)};
	kaa__gauge_add(a->inflight, 1);
	a->t->submit(a->impl, b, submit_done, c);
}

/* ---- the synchronous append ------------------------------------------------------ */

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool finished, duplicate;
	int err;
};

static void waiter_done(void *arg, const kaa__log_status *st)
{
	struct waiter *w = arg;
	pthread_mutex_lock(&w->mu);
	w->finished = true;
	w->duplicate = st->duplicate;
	if (st->result == KAA_LOG_OK)
		w->err = KAA_OK;
	else if (st->err != KAA_OK)
		w->err = st->err;
	else
		w->err = st->result == KAA_LOG_PERMANENT ? KAA_ERR_PROTOCOL : KAA_ERR_UNAVAILABLE;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int kaa__log_appender_append(kaa__log_appender *a, int64_t app_id, const char *key_hash,
			     const char *batch_id, int64_t schema_version,
			     const char *const *records, size_t n, int64_t received_ms,
			     bool *duplicate)
{
	if (duplicate)
		*duplicate = false;
	if (!a || !duplicate || app_id != a->app_id)
		return KAA_ERR_INVAL;
	kaa__log_batch b = {.app_id = app_id,
			    .key_hash = key_hash,
			    .batch_id = batch_id,
			    .schema_version = schema_version,
			    .records = records,
			    .n = n,
			    .received_ms = received_ms};
	struct waiter w = {.err = KAA_OK};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	kaa__log_appender_submit(a, &b, waiter_done, &w);
	pthread_mutex_lock(&w.mu);
	while (!w.finished)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	*duplicate = w.duplicate;
	return w.err;
}

/* ---- the node's in-flight budget ---------------------------------------------------- */

static _Atomic size_t inflight_max = KAA_LOG_INFLIGHT_DEFAULT;
static _Atomic size_t inflight_used;

void kaa__log_inflight_set_max(size_t bytes)
{
	atomic_store(&inflight_max, bytes ? bytes : 1);
}

bool kaa__log_inflight_reserve(size_t bytes)
{
	size_t cur = atomic_load(&inflight_used);
	for (;;) {
		if (cur > 0 && cur + bytes > atomic_load(&inflight_max))
			return false;
		if (atomic_compare_exchange_weak(&inflight_used, &cur, cur + bytes))
			return true;
	}
}

void kaa__log_inflight_release(size_t bytes)
{
	atomic_fetch_sub(&inflight_used, bytes);
}

size_t kaa__log_inflight_used(void)
{
	return atomic_load(&inflight_used);
}

size_t kaa__log_inflight_max(void)
{
	return atomic_load(&inflight_max);
}
