/* libkaa's key pair and endpoint state files. */
#include "cu_main.h"
#include "test_util.h"
#include "base/error.h"
#include "sdk_internal.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[256];

static int setup(void)
{
	return kaa__test_tmpdir(dir, sizeof(dir), "kaa-sdk-state");
}

static int teardown(void)
{
	return kaa__test_rm_tree(dir);
}

static void test_key_created_once(void)
{
	char sub[300], path[400];
	uint8_t *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	struct stat st;

	snprintf(sub, sizeof(sub), "%s/dev/nested", dir);
	CU_ASSERT_EQUAL_FATAL(kaa__sdk_mkdirs(sub), KAA_OK);
	CU_ASSERT_EQUAL_FATAL(kaa__sdk_key_load_or_create(sub, NULL, &a, &al), KAA_OK);
	CU_ASSERT(al > 60 && al < 200); /* DER SubjectPublicKeyInfo of a P-256 key: 91 */
	snprintf(path, sizeof(path), "%s/key.pem", sub);
	CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
	/* the second start loads the same key: same identity */
	CU_ASSERT_EQUAL_FATAL(kaa__sdk_key_load_or_create(sub, NULL, &b, &bl), KAA_OK);
	CU_ASSERT_EQUAL(al, bl);
	CU_ASSERT(memcmp(a, b, al) == 0);
	free(a);
	free(b);
	/* a file that is not a key is an error, not silently replaced */
	FILE *f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(kaa__sdk_key_load_or_create(sub, NULL, &b, &bl), KAA_ERR_IO);
	CU_ASSERT_PTR_NULL(b);
}

static void test_state_roundtrip(void)
{
	kaa__sdk_state st = {0}, back = {0};
	char path[400];

	CU_ASSERT_EQUAL(kaa__sdk_state_load(dir, &st), KAA_OK); /* absent: empty */
	CU_ASSERT_STRING_EQUAL(st.session_id, "");
	CU_ASSERT_EQUAL(st.n_streams, 0);
	strcpy(st.endpoint_key_hash, "abcDEF-_");
	strcpy(st.session_id, "s-42");
	strcpy(st.config_hash, "00ff");
	kaa__stream_pos *u = kaa__sdk_state_stream(&st, "");
	kaa__stream_pos *t = kaa__sdk_state_stream(&st, "topic-1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(u);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	u->last_seq = 7;
	t->last_seq = 18446744073709551615ull;
	CU_ASSERT_PTR_EQUAL(kaa__sdk_state_stream(&st, "topic-1"), t);
	CU_ASSERT_EQUAL(kaa__sdk_state_save(dir, &st, true), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_state_load(dir, &back), KAA_OK);
	CU_ASSERT_STRING_EQUAL(back.endpoint_key_hash, "abcDEF-_");
	CU_ASSERT_STRING_EQUAL(back.session_id, "s-42");
	CU_ASSERT_STRING_EQUAL(back.config_hash, "00ff");
	CU_ASSERT_EQUAL(back.n_streams, 2);
	CU_ASSERT_EQUAL(kaa__sdk_state_stream(&back, "")->last_seq, 7);
	CU_ASSERT_EQUAL(kaa__sdk_state_stream(&back, "topic-1")->last_seq, 18446744073709551615ull);
	/* an oversized topic id is refused, not truncated */
	char big[400];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CU_ASSERT_PTR_NULL(kaa__sdk_state_stream(&back, big));
	kaa__sdk_state_clear(&st);
	kaa__sdk_state_clear(&back);

	/* junk lines are ignored, known ones kept */
	snprintf(path, sizeof(path), "%s/state", dir);
	FILE *f = fopen(path, "w");
	fputs("version 1\ngarbage\nstream\nstream t notanumber\nsession_id s-9\n", f);
	fclose(f);
	CU_ASSERT_EQUAL(kaa__sdk_state_load(dir, &back), KAA_OK);
	CU_ASSERT_STRING_EQUAL(back.session_id, "s-9");
	CU_ASSERT_EQUAL(back.n_streams, 0);
	kaa__sdk_state_clear(&back);
}

static void test_files(void)
{
	char path[400], *data = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/f.txt", dir);
	CU_ASSERT_EQUAL(kaa__sdk_write_file(path, "hello", 5, 0600, true), KAA_OK);
	CU_ASSERT_EQUAL(kaa__sdk_read_file(path, 5, &data, &len), KAA_OK);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_STRING_EQUAL(data, "hello");
	free(data);
	CU_ASSERT_EQUAL(kaa__sdk_read_file(path, 4, &data, &len), KAA_ERR_TOO_BIG);
	snprintf(path, sizeof(path), "%s/absent", dir);
	CU_ASSERT_EQUAL(kaa__sdk_read_file(path, 4, &data, &len), KAA_ERR_NOTFOUND);
}

static const kaa__cu_test tests[] = {
	{"key pair created once and reloaded", test_key_created_once},
	{"endpoint state round trip", test_state_roundtrip},
	{"atomic file write and bounded read", test_files},
};

int main(void)
{
	return kaa__cu_run("sdk state", tests, KAA__CU_COUNT(tests), setup, teardown);
}
