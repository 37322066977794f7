/* The persistent log queue (format in sdk_internal.h). All records live in
 * memory too; the file is the durable copy that a restart replays. */
#include "sdk_internal.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One record of an entry is at most a log record (8 KiB) plus slack; a
 * longer length field means a corrupt file. */
#define LQ_MAX_PAYLOAD (64 * 1024)
#define LQ_HDR 9

typedef struct lq_rec {
	char *json;
	size_t len;
	uint64_t batch; /* 0: not in a batch */
} lq_rec;

struct kaa__lq {
	char *path;
	int fd;
	bool fsync_each;
	size_t max_records;
	lq_rec *recs; /* recs[head..n): the queue, oldest first */
	size_t head, n, cap;
	size_t live;         /* records with json != NULL */
	size_t file_entries; /* entries in the file, for compaction */
	/* scratch for kaa__lq_batch views */
	char **bview;
	size_t *lview;
	size_t vcap;
};

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return KAA_ERR_IO;
		p += w;
		len -= (size_t)w;
	}
	return KAA_OK;
}

/* Encodes one entry into a malloc'd buffer. */
static unsigned char *entry(char type, const void *payload, size_t len, size_t *outlen)
{
	unsigned char *e = malloc(LQ_HDR + len);
	if (!e)
		return NULL;
	e[0] = (unsigned char)type;
	put32(e + 1, (uint32_t)len);
	memcpy(e + LQ_HDR, payload, len);
	/* the checksum covers type, length and payload */
	uint32_t crc = kaa__sdk_crc32(e, 5);
	crc ^= kaa__sdk_crc32(e + LQ_HDR, len);
	put32(e + 5, crc);
	*outlen = LQ_HDR + len;
	return e;
}

static int append_entry(kaa__lq *q, char type, const void *payload, size_t len, bool sync)
{
	size_t el;
	unsigned char *e = entry(type, payload, len, &el);
	int rc;

	if (!e)
		return KAA_ERR_NOMEM;
	rc = write_all(q->fd, e, el);
	free(e);
	if (rc == KAA_OK && sync && fsync(q->fd) != 0)
		rc = KAA_ERR_IO;
	if (rc == KAA_OK)
		q->file_entries++;
	return rc;
}

static int push_rec(kaa__lq *q, const char *json, size_t len, uint64_t batch)
{
	if (q->n == q->cap) {
		/* slide out the consumed head before growing */
		if (q->head > 0) {
			memmove(q->recs, q->recs + q->head, (q->n - q->head) * sizeof(*q->recs));
			q->n -= q->head;
			q->head = 0;
		}
		if (q->n == q->cap) {
			size_t nc = q->cap ? q->cap * 2 : 64;
			lq_rec *nr = realloc(q->recs, nc * sizeof(*nr));
			if (!nr)
				return KAA_ERR_NOMEM;
			q->recs = nr;
			q->cap = nc;
		}
	}
	char *c = malloc(len + 1);
	if (!c)
		return KAA_ERR_NOMEM;
	memcpy(c, json, len);
	c[len] = '\0';
	q->recs[q->n++] = (lq_rec){.json = c, .len = len, .batch = batch};
	q->live++;
	return KAA_OK;
}

/* Drops freed slots at the head. */
static void trim_head(kaa__lq *q)
{
	while (q->head < q->n && !q->recs[q->head].json)
		q->head++;
	if (q->head == q->n)
		q->head = q->n = 0;
}

static size_t live_count(const kaa__lq *q)
{
	return q->live;
}

/* In-memory effects of the entries; shared by replay and the live calls. */
static int apply_batch(kaa__lq *q, uint64_t id, uint32_t count)
{
	for (size_t i = q->head; i < q->n && count > 0; i++) {
		if (q->recs[i].json && q->recs[i].batch == 0) {
			q->recs[i].batch = id;
			count--;
		}
	}
	return KAA_OK;
}

static int apply_ack(kaa__lq *q, uint64_t id)
{
	bool found = false;
	for (size_t i = q->head; i < q->n; i++) {
		if (q->recs[i].json && q->recs[i].batch == id) {
			free(q->recs[i].json);
			q->recs[i].json = NULL;
			q->live--;
			found = true;
		}
	}
	trim_head(q);
	return found ? KAA_OK : KAA_ERR_NOTFOUND;
}

static int apply_reject(kaa__lq *q, uint64_t id, uint32_t index)
{
	lq_rec *moved = NULL;
	size_t k = 0;
	int rc = KAA_OK;

	for (size_t i = q->head; i < q->n; i++)
		if (q->recs[i].json && q->recs[i].batch == id)
			k++;
	if (k == 0)
		return KAA_ERR_NOTFOUND;
	moved = malloc(k * sizeof(*moved));
	if (!moved)
		return KAA_ERR_NOMEM;
	k = 0;
	/* take the batch's records out first: push_rec may move the array */
	for (size_t i = q->head; i < q->n; i++) {
		if (q->recs[i].json && q->recs[i].batch == id) {
			moved[k++] = q->recs[i];
			q->recs[i].json = NULL;
			q->live--;
		}
	}
	trim_head(q);
	for (size_t i = 0; i < k; i++) {
		if (i != index && rc == KAA_OK)
			rc = push_rec(q, moved[i].json, moved[i].len, 0);
		free(moved[i].json);
	}
	free(moved);
	return rc;
}

static int replay(kaa__lq *q, const unsigned char *buf, size_t len, size_t *good)
{
	size_t off = 0;
	int rc = KAA_OK;

	while (off + LQ_HDR <= len) {
		const unsigned char *e = buf + off;
		uint32_t plen = get32(e + 1);
		if (plen > LQ_MAX_PAYLOAD || off + LQ_HDR + plen > len)
			break;
		uint32_t crc = kaa__sdk_crc32(e, 5) ^ kaa__sdk_crc32(e + LQ_HDR, plen);
		if (crc != get32(e + 5))
			break;
		const unsigned char *p = e + LQ_HDR;
		switch (e[0]) {
		case 'R': rc = push_rec(q, (const char *)p, plen, 0); break;
		case 'B':
			if (plen != 12)
				goto stop;
			apply_batch(q, get64(p), get32(p + 8));
			break;
		case 'A':
			if (plen != 8)
				goto stop;
			apply_ack(q, get64(p));
			break;
		case 'X':
			if (plen != 12)
				goto stop;
			rc = apply_reject(q, get64(p), get32(p + 8));
			break;
		default: goto stop;
		}
		if (rc != KAA_OK)
			return rc;
		q->file_entries++;
		off += LQ_HDR + plen;
	}
stop:
	*good = off;
	return KAA_OK;
}

static int read_fd(int fd, unsigned char **out, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	size_t got = 0;

	if (fstat(fd, &st) != 0)
		return KAA_ERR_IO;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return KAA_ERR_NOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	*out = buf;
	*len = got;
	return KAA_OK;
}

int kaa__lq_open(const char *path, size_t max_records, bool fsync_each, kaa__lq **out,
		 size_t *cut_bytes)
{
	kaa__lq *q = calloc(1, sizeof(*q));
	unsigned char *buf = NULL;
	size_t len = 0, good = 0;
	int rc;

	*out = NULL;
	if (!q)
		return KAA_ERR_NOMEM;
	q->fd = -1;
	q->fsync_each = fsync_each;
	q->max_records = max_records ? max_records : 100000;
	q->path = strdup(path);
	if (!q->path) {
		rc = KAA_ERR_NOMEM;
		goto out;
	}
	q->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (q->fd < 0) {
		rc = KAA_ERR_IO;
		goto out;
	}
	rc = read_fd(q->fd, &buf, &len);
	if (rc == KAA_OK)
		rc = replay(q, buf, len, &good);
	if (rc != KAA_OK)
		goto out;
	if (good < len) {
		/* a torn or corrupt tail: keep what precedes it */
		if (ftruncate(q->fd, (off_t)good) != 0 || fsync(q->fd) != 0) {
			rc = KAA_ERR_IO;
			goto out;
		}
	}
	if (cut_bytes)
		*cut_bytes = len - good;
	*out = q;
	q = NULL;
out:
	free(buf);
	kaa__lq_close(q);
	return rc;
}

void kaa__lq_close(kaa__lq *q)
{
	if (!q)
		return;
	if (q->fd >= 0)
		close(q->fd);
	for (size_t i = q->head; i < q->n; i++)
		free(q->recs[i].json);
	free(q->recs);
	free(q->bview);
	free(q->lview);
	free(q->path);
	free(q);
}

size_t kaa__lq_count(const kaa__lq *q)
{
	return live_count(q);
}

size_t kaa__lq_unbatched(const kaa__lq *q)
{
	size_t c = 0;
	for (size_t i = q->head; i < q->n; i++)
		if (q->recs[i].json && q->recs[i].batch == 0)
			c++;
	return c;
}

/* Rewrites the file with the live state when acknowledged entries make up
 * most of it: R entries in queue order, then a B entry per open batch (a
 * batch's records are contiguous among the batched records because a
 * batch always takes the oldest unbatched ones). */
static int maybe_compact(kaa__lq *q)
{
	size_t live = live_count(q);
	char tmp[PATH_MAX];
	int fd = -1, rc = KAA_OK;

	if (q->file_entries < 1024 || q->file_entries < 4 * (live + 1))
		return KAA_OK;
	if (snprintf(tmp, sizeof(tmp), "%s.compact", q->path) >= (int)sizeof(tmp))
		return KAA_ERR_INVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return KAA_ERR_IO;
	int saved = q->fd;
	size_t entries = 0;
	q->fd = fd;
	/* records already batched come first so that replaying B entries in
	 * order assigns the same records to the same batches */
	for (int pass = 0; pass < 2 && rc == KAA_OK; pass++)
		for (size_t i = q->head; i < q->n && rc == KAA_OK; i++) {
			lq_rec *r = &q->recs[i];
			if (r->json && (pass == 0) == (r->batch != 0)) {
				rc = append_entry(q, 'R', r->json, r->len, false);
				entries++;
			}
		}
	uint64_t last = 0;
	for (size_t i = q->head; i < q->n && rc == KAA_OK; i++) {
		lq_rec *r = &q->recs[i];
		if (!r->json || r->batch == 0 || r->batch == last)
			continue;
		last = r->batch;
		uint32_t cnt = 0;
		for (size_t j = i; j < q->n; j++)
			if (q->recs[j].json && q->recs[j].batch == last)
				cnt++;
		unsigned char p[12];
		put64(p, last);
		put32(p + 8, cnt);
		rc = append_entry(q, 'B', p, sizeof(p), false);
		entries++;
	}
	q->fd = saved;
	if (rc == KAA_OK && fsync(fd) != 0)
		rc = KAA_ERR_IO;
	close(fd);
	if (rc == KAA_OK && rename(tmp, q->path) != 0)
		rc = KAA_ERR_IO;
	if (rc != KAA_OK) {
		unlink(tmp);
		return rc;
	}
	fd = open(q->path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return KAA_ERR_IO;
	close(q->fd);
	q->fd = fd;
	q->file_entries = entries;
	/* in memory, batched records must also precede unbatched ones so that
	 * a later B entry picks the same records on replay */
	size_t w = 0;
	lq_rec *nr = malloc((live ? live : 1) * sizeof(*nr));
	if (!nr)
		return KAA_OK; /* order is still valid: B entries in the file match */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = q->head; i < q->n; i++)
			if (q->recs[i].json && (pass == 0) == (q->recs[i].batch != 0))
				nr[w++] = q->recs[i];
	free(q->recs);
	q->recs = nr;
	q->head = 0;
	q->n = w;
	q->cap = live ? live : 1;
	return KAA_OK;
}

int kaa__lq_append(kaa__lq *q, const char *rec, size_t len)
{
	int rc;

	if (!rec || len == 0 || len > LQ_MAX_PAYLOAD)
		return len > LQ_MAX_PAYLOAD ? KAA_ERR_TOO_BIG : KAA_ERR_INVAL;
	if (live_count(q) >= q->max_records)
		return KAA_ERR_TOO_BIG;
	rc = append_entry(q, 'R', rec, len, q->fsync_each);
	if (rc == KAA_OK)
		rc = push_rec(q, rec, len, 0);
	return rc;
}

static int view(kaa__lq *q, uint64_t id, kaa__lq_batch *out)
{
	size_t k = 0;

	for (size_t i = q->head; i < q->n; i++) {
		if (!q->recs[i].json || q->recs[i].batch != id)
			continue;
		if (k == q->vcap) {
			size_t nc = q->vcap ? q->vcap * 2 : 64;
			char **nb = realloc(q->bview, nc * sizeof(*nb));
			if (!nb)
				return KAA_ERR_NOMEM;
			q->bview = nb;
			size_t *nl = realloc(q->lview, nc * sizeof(*nl));
			if (!nl)
				return KAA_ERR_NOMEM;
			q->lview = nl;
			q->vcap = nc;
		}
		q->bview[k] = q->recs[i].json;
		q->lview[k++] = q->recs[i].len;
	}
	if (k == 0)
		return KAA_ERR_NOTFOUND;
	out->id = id;
	out->n = k;
	out->records = q->bview;
	out->lens = q->lview;
	return KAA_OK;
}

int kaa__lq_new_batch(kaa__lq *q, size_t max_records, size_t max_bytes, kaa__lq_batch *out)
{
	uint32_t cnt = 0;
	size_t bytes = 0;
	uint64_t id;
	unsigned char p[12];
	int rc;

	for (size_t i = q->head; i < q->n && cnt < max_records; i++) {
		lq_rec *r = &q->recs[i];
		if (!r->json || r->batch != 0)
			continue;
		if (cnt > 0 && bytes + r->len > max_bytes)
			break;
		bytes += r->len;
		cnt++;
	}
	if (cnt == 0)
		return KAA_ERR_NOTFOUND;
	do {
		id = kaa__sdk_random64();
	} while (id == 0 || kaa__lq_find(q, id, out) == KAA_OK);
	put64(p, id);
	put32(p + 8, cnt);
	/* persisted before the batch is ever sent: after a crash the same
	 * records go out under the same id, and the server stores them once */
	rc = append_entry(q, 'B', p, sizeof(p), true);
	if (rc != KAA_OK)
		return rc;
	apply_batch(q, id, cnt);
	return view(q, id, out);
}

size_t kaa__lq_batches(const kaa__lq *q)
{
	size_t c = 0;
	uint64_t last = 0;
	for (size_t i = q->head; i < q->n; i++) {
		const lq_rec *r = &q->recs[i];
		if (r->json && r->batch && r->batch != last) {
			c++;
			last = r->batch;
		}
	}
	return c;
}

int kaa__lq_batch_at(kaa__lq *q, size_t idx, kaa__lq_batch *out)
{
	size_t c = 0;
	uint64_t last = 0;
	for (size_t i = q->head; i < q->n; i++) {
		const lq_rec *r = &q->recs[i];
		if (r->json && r->batch && r->batch != last) {
			if (c++ == idx)
				return view(q, r->batch, out);
			last = r->batch;
		}
	}
	return KAA_ERR_NOTFOUND;
}

int kaa__lq_find(kaa__lq *q, uint64_t id, kaa__lq_batch *out)
{
	if (id == 0)
		return KAA_ERR_NOTFOUND;
	return view(q, id, out);
}

int kaa__lq_ack(kaa__lq *q, uint64_t id)
{
	unsigned char p[8];
	kaa__lq_batch b;
	int rc;

	if (kaa__lq_find(q, id, &b) != KAA_OK)
		return KAA_ERR_NOTFOUND;
	put64(p, id);
	rc = append_entry(q, 'A', p, sizeof(p), q->fsync_each);
	if (rc != KAA_OK)
		return rc;
	apply_ack(q, id);
	return maybe_compact(q);
}

int kaa__lq_reject(kaa__lq *q, uint64_t id, uint32_t index)
{
	unsigned char p[12];
	kaa__lq_batch b;
	int rc;

	if (kaa__lq_find(q, id, &b) != KAA_OK)
		return KAA_ERR_NOTFOUND;
	put64(p, id);
	put32(p + 8, index);
	rc = append_entry(q, 'X', p, sizeof(p), true);
	if (rc != KAA_OK)
		return rc;
	rc = apply_reject(q, id, index);
	return rc == KAA_OK ? maybe_compact(q) : rc;
}
