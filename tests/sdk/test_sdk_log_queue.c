/* libkaa's persistent log queue: records and batches survive reopening, a
 * torn or corrupt tail is cut, acknowledged batches are gone. */
#include "cu_main.h"
#include "test_util.h"
#include "base/error.h"
#include "sdk_internal.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];
static char path[300];

static int setup(void)
{
	if (kaa__test_tmpdir(dir, sizeof(dir), "kaa-sdk-lq") != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/logs.q", dir);
	return 0;
}

static int teardown(void)
{
	return kaa__test_rm_tree(dir);
}

static void fresh(void)
{
	unlink(path);
}

static kaa__lq *open_q(size_t *cut)
{
	kaa__lq *q = NULL;
	CU_ASSERT_EQUAL(kaa__lq_open(path, 100, true, &q, cut), KAA_OK);
	return q;
}

static void add(kaa__lq *q, int i)
{
	char rec[64];
	int n = snprintf(rec, sizeof(rec), "{\"i\":%d}", i);
	CU_ASSERT_EQUAL(kaa__lq_append(q, rec, (size_t)n), KAA_OK);
}

static void test_reopen_keeps_records(void)
{
	kaa__lq_batch b;
	size_t cut = 99;

	fresh();
	kaa__lq *q = open_q(&cut);
	CU_ASSERT_EQUAL(cut, 0);
	for (int i = 0; i < 5; i++)
		add(q, i);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 5);
	kaa__lq_close(q);

	q = open_q(&cut);
	CU_ASSERT_EQUAL(cut, 0);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 5);
	CU_ASSERT_EQUAL(kaa__lq_unbatched(q), 5);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 3, 65536, &b), KAA_OK);
	CU_ASSERT_EQUAL(b.n, 3);
	CU_ASSERT_NOT_EQUAL(b.id, 0);
	CU_ASSERT_STRING_EQUAL(b.records[0], "{\"i\":0}");
	CU_ASSERT_STRING_EQUAL(b.records[2], "{\"i\":2}");
	kaa__lq_close(q);
}

static void test_batch_survives_restart(void)
{
	kaa__lq_batch b, b2;
	uint64_t id;

	fresh();
	kaa__lq *q = open_q(NULL);
	for (int i = 0; i < 4; i++)
		add(q, i);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 2, 65536, &b), KAA_OK);
	id = b.id;
	kaa__lq_close(q); /* "crash" before the server's status arrived */

	q = open_q(NULL);
	CU_ASSERT_EQUAL(kaa__lq_batches(q), 1);
	CU_ASSERT_EQUAL(kaa__lq_unbatched(q), 2);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_batch_at(q, 0, &b2), KAA_OK);
	/* the same id and records go out again: the server stores them once */
	CU_ASSERT_EQUAL(b2.id, id);
	CU_ASSERT_EQUAL(b2.n, 2);
	CU_ASSERT_STRING_EQUAL(b2.records[1], "{\"i\":1}");
	CU_ASSERT_EQUAL(kaa__lq_ack(q, id), KAA_OK);
	CU_ASSERT_EQUAL(kaa__lq_ack(q, id), KAA_ERR_NOTFOUND);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 2);
	kaa__lq_close(q);

	q = open_q(NULL);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 2);
	CU_ASSERT_EQUAL(kaa__lq_batches(q), 0);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 10, 65536, &b), KAA_OK);
	CU_ASSERT_EQUAL(b.n, 2);
	CU_ASSERT_STRING_EQUAL(b.records[0], "{\"i\":2}");
	CU_ASSERT_NOT_EQUAL(b.id, id);
	kaa__lq_close(q);
}

static void test_torn_tail(void)
{
	struct stat st;
	size_t cut = 0;

	fresh();
	kaa__lq *q = open_q(NULL);
	for (int i = 0; i < 3; i++)
		add(q, i);
	kaa__lq_close(q);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	/* the last record was half written when the device lost power */
	CU_ASSERT_EQUAL_FATAL(truncate(path, st.st_size - 3), 0);
	q = open_q(&cut);
	CU_ASSERT_EQUAL(cut, (size_t)(9 + 7 - 3));
	CU_ASSERT_EQUAL(kaa__lq_count(q), 2);
	/* appending after the cut works and survives another reopen */
	add(q, 9);
	kaa__lq_close(q);
	q = open_q(&cut);
	CU_ASSERT_EQUAL(cut, 0);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 3);
	kaa__lq_batch b;
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 10, 65536, &b), KAA_OK);
	CU_ASSERT_STRING_EQUAL(b.records[2], "{\"i\":9}");
	kaa__lq_close(q);
}

static void test_corrupt_tail(void)
{
	size_t cut = 0;
	int fd;

	fresh();
	kaa__lq *q = open_q(NULL);
	add(q, 1);
	add(q, 2);
	kaa__lq_close(q);
	/* flip a byte of the last record's payload: its checksum fails */
	fd = open(path, O_RDWR);
	CU_ASSERT_FATAL(fd >= 0);
	off_t end = lseek(fd, 0, SEEK_END);
	CU_ASSERT_EQUAL(pwrite(fd, "X", 1, end - 2), 1);
	close(fd);
	q = open_q(&cut);
	CU_ASSERT_EQUAL(cut, 16);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 1);
	kaa__lq_close(q);
	/* garbage appended after valid entries is cut too */
	fd = open(path, O_WRONLY | O_APPEND);
	CU_ASSERT_EQUAL(write(fd, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 10), 10);
	close(fd);
	q = open_q(&cut);
	CU_ASSERT_EQUAL(cut, 10);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 1);
	kaa__lq_close(q);
}

static void test_reject_and_limits(void)
{
	kaa__lq_batch b;
	kaa__lq *q = NULL;

	fresh();
	CU_ASSERT_EQUAL_FATAL(kaa__lq_open(path, 4, false, &q, NULL), KAA_OK);
	for (int i = 0; i < 4; i++)
		add(q, i);
	CU_ASSERT_EQUAL(kaa__lq_append(q, "{}", 2), KAA_ERR_TOO_BIG); /* full */
	CU_ASSERT_EQUAL(kaa__lq_append(q, "", 0), KAA_ERR_INVAL);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 3, 65536, &b), KAA_OK);
	uint64_t id = b.id;
	/* record 1 was invalid: dropped, 0 and 2 are queued again */
	CU_ASSERT_EQUAL(kaa__lq_reject(q, id, 1), KAA_OK);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 3);
	CU_ASSERT_EQUAL(kaa__lq_unbatched(q), 3);
	CU_ASSERT_EQUAL(kaa__lq_reject(q, id, 0), KAA_ERR_NOTFOUND);
	kaa__lq_close(q);
	q = open_q(NULL);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 3);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 10, 65536, &b), KAA_OK);
	CU_ASSERT_EQUAL(b.n, 3);
	CU_ASSERT_STRING_EQUAL(b.records[0], "{\"i\":3}");
	CU_ASSERT_STRING_EQUAL(b.records[1], "{\"i\":0}");
	CU_ASSERT_STRING_EQUAL(b.records[2], "{\"i\":2}");
	/* the byte bound: at least one record, then stop before overflowing */
	kaa__lq_close(q);
	fresh();
	q = open_q(NULL);
	for (int i = 0; i < 5; i++)
		add(q, i);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 10, 15, &b), KAA_OK);
	CU_ASSERT_EQUAL(b.n, 2);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 10, 1, &b), KAA_OK);
	CU_ASSERT_EQUAL(b.n, 1);
	kaa__lq_close(q);
}

static void test_compaction(void)
{
	kaa__lq_batch b;
	struct stat st1, st2;
	kaa__lq *q = NULL;

	fresh();
	CU_ASSERT_EQUAL_FATAL(kaa__lq_open(path, 100000, false, &q, NULL), KAA_OK);
	for (int round = 0; round < 400; round++) {
		for (int i = 0; i < 5; i++)
			add(q, round * 5 + i);
		CU_ASSERT_EQUAL_FATAL(kaa__lq_new_batch(q, 5, 65536, &b), KAA_OK);
		if (round % 50 != 7)
			CU_ASSERT_EQUAL(kaa__lq_ack(q, b.id), KAA_OK);
	}
	add(q, 99999);
	/* 8 batches of 5 never acknowledged, one unbatched record */
	CU_ASSERT_EQUAL(kaa__lq_count(q), 41);
	CU_ASSERT_EQUAL(kaa__lq_batches(q), 8);
	kaa__lq_close(q);
	CU_ASSERT_EQUAL(stat(path, &st1), 0);
	/* 400 rounds wrote 2800 entries; compaction kept the file small */
	CU_ASSERT(st1.st_size < 2800 * 16);
	q = open_q(NULL);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 41);
	CU_ASSERT_EQUAL(kaa__lq_batches(q), 8);
	CU_ASSERT_EQUAL(kaa__lq_unbatched(q), 1);
	CU_ASSERT_EQUAL_FATAL(kaa__lq_batch_at(q, 7, &b), KAA_OK);
	CU_ASSERT_EQUAL(b.n, 5);
	CU_ASSERT_STRING_EQUAL(b.records[0], "{\"i\":1785}");
	CU_ASSERT_EQUAL_FATAL(kaa__lq_batch_at(q, 0, &b), KAA_OK);
	CU_ASSERT_STRING_EQUAL(b.records[4], "{\"i\":39}");
	for (size_t k = kaa__lq_batches(q); k > 0; k--) {
		CU_ASSERT_EQUAL_FATAL(kaa__lq_batch_at(q, 0, &b), KAA_OK);
		CU_ASSERT_EQUAL(kaa__lq_ack(q, b.id), KAA_OK);
	}
	CU_ASSERT_EQUAL(kaa__lq_count(q), 1);
	kaa__lq_close(q);
	CU_ASSERT_EQUAL(stat(path, &st2), 0);
	q = open_q(NULL);
	CU_ASSERT_EQUAL(kaa__lq_count(q), 1);
	kaa__lq_close(q);
}

static const kaa__cu_test tests[] = {
	{"records survive reopening", test_reopen_keeps_records},
	{"a batch keeps its id and records across a restart", test_batch_survives_restart},
	{"a torn last record is cut, the rest kept", test_torn_tail},
	{"a corrupt tail is cut", test_corrupt_tail},
	{"rejected record dropped, queue and byte limits", test_reject_and_limits},
	{"compaction keeps open batches", test_compaction},
};

int main(void)
{
	return kaa__cu_run("sdk log queue", tests, KAA__CU_COUNT(tests), setup, teardown);
}
